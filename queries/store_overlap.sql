-- Store-overlap matrix: for each pair of stores (X, Y), how many members who bought at X also
-- bought at Y, and that as a share of X's buyers (the diagonal is X's buyers). One row per
-- pair; pivot store_y into columns in a spreadsheet or BI tool.
-- @param from date 2000-01-01 first business day included
-- @param to date 2999-12-31 last business day included
WITH member_stores AS (
    SELECT DISTINCT member_id, coalesce(store_id, '(online)') AS store
    FROM events
    WHERE type = 'purchase' AND CAST(dt AS DATE) BETWEEN $from AND $to
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
