-- Campaign effect: purchases in the days after an audience's snapshot, target arm against
-- the control arm held out at export: members, buyers, conversion, orders, net revenue,
-- revenue per member, and the lift (target minus control) of conversion and revenue per
-- member. Counts business days after the snapshot's day (UTC date of the snapshot id) or --param since.
-- @param audience text latest the audience name (latest: the most recent export of any audience)
-- @param snapshot text latest the snapshot id, e.g. 20261122T183000Z (latest: the audience's most recent)
-- @param days int 30 business days after the snapshot day that count
-- @param since text snapshot count from this day (YYYY-MM-DD) instead of the snapshot's day, e.g. when replaying history
WITH snap AS (
    SELECT name, snapshot
    FROM audiences
    WHERE ($audience = 'latest' OR name = $audience) AND ($snapshot = 'latest' OR snapshot = $snapshot)
    GROUP BY name, snapshot
    ORDER BY snapshot DESC, name
    LIMIT 1
),
arms AS (
    SELECT a.member_id, a.arm,
           CAST(CASE WHEN $since = 'snapshot'
                     THEN concat(substr(s.snapshot, 1, 4), '-', substr(s.snapshot, 5, 2), '-', substr(s.snapshot, 7, 2))
                     ELSE $since END AS DATE) AS day
    FROM audiences a JOIN snap s ON a.name = s.name AND a.snapshot = s.snapshot
),
after AS (
    SELECT r.arm, r.member_id,
           count(*) FILTER (WHERE e.type = 'purchase') AS orders,
           sum(CASE WHEN e.type = 'purchase' THEN e.amount ELSE -e.amount END) AS revenue
    FROM arms r
    JOIN events e ON e.member_id = r.member_id
    WHERE e.type IN ('purchase', 'refund')
      AND CAST(e.dt AS DATE) > r.day
      AND CAST(e.dt AS DATE) <= r.day + CAST(concat(CAST($days AS VARCHAR), ' days') AS INTERVAL)
    GROUP BY r.arm, r.member_id
),
per_arm AS (
    SELECT r.arm,
           count(*) AS members,
           count(*) FILTER (WHERE f.orders > 0) AS buyers,
           coalesce(sum(f.orders), 0) AS orders,
           coalesce(sum(f.revenue), 0) AS revenue
    FROM arms r LEFT JOIN after f ON f.arm = r.arm AND f.member_id = r.member_id
    GROUP BY r.arm
)
SELECT (SELECT name FROM snap) AS audience,
       (SELECT snapshot FROM snap) AS snapshot,
       arm,
       members,
       buyers,
       round(CAST(buyers AS DOUBLE) / members, 4) AS conversion,
       orders,
       revenue,
       round(CAST(revenue AS DOUBLE) / members, 2) AS revenue_per_member,
       round(CAST(buyers AS DOUBLE) / members - max(CAST(buyers AS DOUBLE) / members) FILTER (WHERE arm = 'control') OVER (), 4) AS conversion_lift,
       round(CAST(revenue AS DOUBLE) / members - max(CAST(revenue AS DOUBLE) / members) FILTER (WHERE arm = 'control') OVER (), 2) AS revenue_per_member_lift
FROM per_arm
ORDER BY arm DESC
