-- Repeat-purchase rate per store: members who bought at the store, those who bought there on
-- two or more different days, and their share. Online orders are the store "(online)".
-- @param from date 2000-01-01 first business day included
-- @param to date 2999-12-31 last business day included
WITH visits AS (
    SELECT coalesce(store_id, '(online)') AS store, member_id, count(DISTINCT dt) AS days
    FROM events
    WHERE type = 'purchase' AND CAST(dt AS DATE) BETWEEN $from AND $to
    GROUP BY 1, 2
)
SELECT store,
       count(*) AS buyers,
       count(*) FILTER (WHERE days >= 2) AS repeat_buyers,
       round(CAST(count(*) FILTER (WHERE days >= 2) AS DOUBLE) / count(*), 4) AS repeat_rate
FROM visits
GROUP BY store
ORDER BY store
