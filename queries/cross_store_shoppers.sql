-- Cross-store shoppers: per store, its buying members and how many of them also bought at
-- another store (online counts as a store, "(online)"); the row "(all stores)" is the chain.
-- @param from date 2000-01-01 first business day included
-- @param to date 2999-12-31 last business day included
WITH member_stores AS (
    SELECT DISTINCT member_id, coalesce(store_id, '(online)') AS store
    FROM events
    WHERE type = 'purchase' AND CAST(dt AS DATE) BETWEEN $from AND $to
),
reach AS (
    SELECT member_id, count(*) AS stores FROM member_stores GROUP BY member_id
),
per_store AS (
    SELECT s.store, count(*) AS buyers, count(*) FILTER (WHERE r.stores >= 2) AS cross_store_buyers
    FROM member_stores s JOIN reach r USING (member_id)
    GROUP BY s.store
    UNION ALL
    SELECT '(all stores)', count(*), count(*) FILTER (WHERE stores >= 2) FROM reach
)
SELECT store, buyers, cross_store_buyers, round(CAST(cross_store_buyers AS DOUBLE) / buyers, 4) AS cross_store_share
FROM per_store
ORDER BY store = '(all stores)', store
