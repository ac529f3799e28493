-- Revenue per store: purchases and their amounts (before refunds), online orders as "(online)".
-- Answers: which stores sell most? Parameters: none.
SELECT coalesce(store_id, '(online)') AS store,
       count(*) AS purchases,
       sum(amount) AS revenue
FROM events
WHERE type = 'purchase'
GROUP BY 1
ORDER BY revenue DESC
