-- Top categories by segment: per RFM segment, the item categories with the most revenue
-- (quantity x unit price of purchased items), with buyers and units, the top n of each.
-- Aggregates per member and category first, so memory stays bounded by those pairs.
-- @param n int 5 categories per segment
-- @param from date 2000-01-01 first business day included
-- @param to date 2999-12-31 last business day included
WITH items AS (
    SELECT member_id, unnest(items) AS item
    FROM events
    WHERE type = 'purchase' AND CAST(dt AS DATE) BETWEEN $from AND $to
),
per_member AS (
    SELECT member_id,
           coalesce(item['category'], '(none)') AS category,
           sum(item['qty'] * item['unit_price']) AS revenue,
           sum(item['qty']) AS units
    FROM items
    GROUP BY 1, 2
),
by_category AS (
    SELECT coalesce(m.rfm_segment, '(unscored)') AS rfm_segment,
           p.category,
           sum(p.revenue) AS revenue,
           sum(p.units) AS units,
           count(*) AS buyers
    FROM per_member p JOIN members m USING (member_id)
    GROUP BY 1, 2
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY rfm_segment ORDER BY revenue DESC NULLS LAST, category) AS rank
    FROM by_category
)
SELECT rfm_segment, rank, category, revenue, units, buyers
FROM ranked
WHERE rank <= $n
ORDER BY rfm_segment, rank
