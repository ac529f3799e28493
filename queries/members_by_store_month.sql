-- New, active and lapsed members per store and month. New: the member's first purchase ever
-- was in that month at that store. Active: bought at that store in that month. Lapsed: the
-- member's last purchase ever was at that store and its 180th day without a purchase fell in
-- that month (up to the members table's as-of day). Online orders are the store "(online)".
-- @param from date 2000-01-01 first business day of the months shown
-- @param to date 2999-12-31 last business day of the months shown
-- @param lapse_days int 180 days without a purchase after which a member counts as lapsed
WITH purchases AS (
    SELECT member_id, coalesce(store_id, '(online)') AS store, CAST(dt AS DATE) AS day, occurred_at
    FROM events
    WHERE type = 'purchase'
),
ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY member_id ORDER BY occurred_at, store) AS first_rank,
           row_number() OVER (PARTITION BY member_id ORDER BY occurred_at DESC, store DESC) AS last_rank
    FROM purchases
),
as_of AS (SELECT max(as_of) AS as_of_day FROM members),
lapse AS (SELECT CAST(concat(CAST($lapse_days AS VARCHAR), ' days') AS INTERVAL) AS after),
new_members AS (
    SELECT store, substr(CAST(day AS VARCHAR), 1, 7) AS month, count(*) AS n
    FROM ranked WHERE first_rank = 1 GROUP BY 1, 2
),
active AS (
    SELECT store, substr(CAST(day AS VARCHAR), 1, 7) AS month, count(DISTINCT member_id) AS n
    FROM purchases GROUP BY 1, 2
),
lapsed AS (
    SELECT store, substr(CAST(day + lapse.after AS VARCHAR), 1, 7) AS month, count(*) AS n
    FROM ranked, as_of, lapse
    WHERE last_rank = 1 AND day + lapse.after <= as_of_day
    GROUP BY 1, 2
),
keys AS (
    SELECT store, month FROM new_members UNION SELECT store, month FROM active UNION SELECT store, month FROM lapsed
)
SELECT k.store,
       k.month,
       coalesce(n.n, 0) AS new_members,
       coalesce(a.n, 0) AS active_members,
       coalesce(l.n, 0) AS lapsed_members
FROM keys k
LEFT JOIN new_members n ON n.store = k.store AND n.month = k.month
LEFT JOIN active a ON a.store = k.store AND a.month = k.month
LEFT JOIN lapsed l ON l.store = k.store AND l.month = k.month
WHERE k.month BETWEEN substr(CAST($from AS VARCHAR), 1, 7) AND substr(CAST($to AS VARCHAR), 1, 7)
ORDER BY k.month, k.store
