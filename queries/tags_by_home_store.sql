-- Tag distribution per home store: members carrying each tag (automatic or manual), by the
-- store where each member spends most (as in segments_by_home_store), with the share of the
-- store's members that carry it. Reads the member_store rollup.
WITH home AS (
    SELECT member_id, store FROM (
        SELECT member_id, coalesce(store_id, '(online)') AS store,
               row_number() OVER (PARTITION BY member_id ORDER BY purchase_amount - refund_amount DESC, coalesce(store_id, '(online)')) AS k
        FROM member_store
    ) WHERE k = 1
),
store_members AS (SELECT store, count(*) AS n FROM home GROUP BY store),
tagged AS (
    SELECT h.store, unnest(m.tags) AS tag FROM home h JOIN members m USING (member_id)
)
SELECT t.store AS home_store,
       t.tag,
       count(*) AS members,
       round(CAST(count(*) AS DOUBLE) / max(s.n), 4) AS share_of_store
FROM tagged t JOIN store_members s ON s.store = t.store
GROUP BY 1, 2
ORDER BY 1, 2
