-- New, active and lapsed members per store and month. New: the member's first purchase day
-- ever was in that month at that store (same-day purchases at several stores: the smaller
-- store id). Active: bought at that store in that month. Lapsed: the member's last purchase
-- ever was at that store and its lapse_days-th day without a purchase fell in that month (up
-- to the members table's as-of day). Online orders are the store "(online)". Reads the
-- rollups (member_store, store_day) and the members table, not the raw events.
-- @param from date 2000-01-01 first business day of the months shown
-- @param to date 2999-12-31 last business day of the months shown
-- @param lapse_days int 180 days without a purchase after which a member counts as lapsed
WITH as_of AS (SELECT max(as_of) AS as_of_day FROM members),
lapse AS (SELECT CAST(concat(CAST($lapse_days AS VARCHAR), ' days') AS INTERVAL) AS after),
firsts AS (
    SELECT coalesce(store_id, '(online)') AS store, first_purchase_day AS day,
           row_number() OVER (PARTITION BY member_id ORDER BY first_purchase_day, coalesce(store_id, '(online)')) AS k
    FROM member_store
    WHERE orders > 0
),
new_members AS (
    SELECT store, substr(CAST(day AS VARCHAR), 1, 7) AS month, count(*) AS n FROM firsts WHERE k = 1 GROUP BY 1, 2
),
active AS (
    SELECT coalesce(store_id, '(online)') AS store, substr(CAST(dt AS VARCHAR), 1, 7) AS month, sum(month_buyers_added) AS n
    FROM store_day GROUP BY 1, 2 HAVING sum(month_buyers_added) > 0
),
lapsed AS (
    SELECT coalesce(m.last_store_id, '(online)') AS store,
           substr(CAST(ms.last_purchase_day + lapse.after AS VARCHAR), 1, 7) AS month,
           count(*) AS n
    FROM members m
    JOIN member_store ms ON ms.member_id = m.member_id AND coalesce(ms.store_id, '(online)') = coalesce(m.last_store_id, '(online)')
    CROSS JOIN as_of CROSS JOIN lapse
    WHERE m.last_purchase_at IS NOT NULL AND ms.last_purchase_day + lapse.after <= as_of.as_of_day
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
