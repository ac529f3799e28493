-- Sales by store and month: orders (purchase events), revenue (purchase amounts minus refund
-- amounts), buying members, average order value (purchase amounts / orders) and the store's
-- share of the chain's member revenue that month. Online orders are the store "(online)".
-- Months are business months. Reads the store_day rollup the pipeline maintains (exact:
-- month_buyers_added sums to distinct buyers over whole months), so it answers in
-- milliseconds at any scale.
-- @param from date 2000-01-01 first business day included
-- @param to date 2999-12-31 last business day included
WITH sales AS (
    SELECT coalesce(store_id, '(online)') AS store,
           substr(CAST(dt AS VARCHAR), 1, 7) AS month,
           sum(orders) AS orders,
           sum(purchase_amount) AS purchases,
           sum(refund_amount) AS refunds,
           sum(month_buyers_added) AS members
    FROM store_day
    WHERE dt BETWEEN $from AND $to
    GROUP BY 1, 2
)
SELECT store,
       month,
       orders,
       purchases - refunds AS revenue,
       members,
       CASE WHEN orders > 0 THEN round(CAST(purchases AS DOUBLE) / orders, 2) END AS average_order_value,
       round(CAST(purchases - refunds AS DOUBLE) / sum(CAST(purchases - refunds AS DOUBLE)) OVER (PARTITION BY month), 4) AS share_of_chain_revenue
FROM sales
ORDER BY month, store
