-- Repeat-purchase rate per store, all history: members who bought at the store, those who
-- bought there on two or more different business days, and their share. Online orders are
-- the store "(online)". Reads the member_store rollup (first/last purchase day per member
-- and store), so it answers quickly at any scale; for a period, query events directly.
SELECT coalesce(store_id, '(online)') AS store,
       count(*) AS buyers,
       count(*) FILTER (WHERE last_purchase_day > first_purchase_day) AS repeat_buyers,
       round(CAST(count(*) FILTER (WHERE last_purchase_day > first_purchase_day) AS DOUBLE) / count(*), 4) AS repeat_rate
FROM member_store
WHERE orders > 0
GROUP BY 1
ORDER BY 1
