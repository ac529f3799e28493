-- Segment distribution per home store: members per RFM segment, by the store where each
-- member spends most (net of refunds, all time; ties: the smaller store id; online orders
-- are "(online)"; members without purchases have no home store and are left out), with the
-- segment's share of the store's members.
WITH spend AS (
    SELECT member_id, coalesce(store_id, '(online)') AS store,
           sum(CASE WHEN type = 'purchase' THEN amount ELSE -amount END) AS net
    FROM events
    WHERE type IN ('purchase', 'refund')
    GROUP BY 1, 2
),
home AS (
    SELECT member_id, store FROM (
        SELECT member_id, store, row_number() OVER (PARTITION BY member_id ORDER BY net DESC, store) AS k FROM spend
    ) WHERE k = 1
)
SELECT h.store AS home_store,
       coalesce(m.rfm_segment, '(unscored)') AS rfm_segment,
       count(*) AS members,
       round(CAST(count(*) AS DOUBLE) / sum(count(*)) OVER (PARTITION BY h.store), 4) AS share_of_store
FROM home h JOIN members m USING (member_id)
GROUP BY 1, 2
ORDER BY 1, 2
