-- Store-overlap matrix, all history: for each pair of stores (X, Y), how many members who
-- bought at X also bought at Y, and that as a share of X's buyers (the diagonal is X's
-- buyers). One row per pair; pivot store_y into columns in a spreadsheet or BI tool.
-- Reads the member_store rollup.
WITH member_stores AS (
    SELECT member_id, coalesce(store_id, '(online)') AS store FROM member_store WHERE orders > 0
),
buyers AS (SELECT store, count(*) AS n FROM member_stores GROUP BY store)
SELECT x.store AS store_x,
       y.store AS store_y,
       count(*) AS shared_members,
       round(CAST(count(*) AS DOUBLE) / max(b.n), 4) AS share_of_x
FROM member_stores x
JOIN member_stores y ON x.member_id = y.member_id
JOIN buyers b ON b.store = x.store
GROUP BY 1, 2
ORDER BY 1, 2
