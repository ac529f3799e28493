-- Cross-store shoppers, all history: per store, its buying members and how many of them also
-- bought at another store (online counts as a store, "(online)"); the row "(all stores)" is
-- the chain. Reads the member_store rollup.
WITH member_stores AS (
    SELECT member_id, coalesce(store_id, '(online)') AS store FROM member_store WHERE orders > 0
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
