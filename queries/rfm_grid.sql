-- RFM grid: for each of the 25 (r_score, f_score) cells, the members in it and their
-- monetary value (net purchases in the window), empty cells included.
WITH grid AS (
    SELECT r.column1 AS r_score, f.column1 AS f_score
    FROM (VALUES (1), (2), (3), (4), (5)) r CROSS JOIN (VALUES (1), (2), (3), (4), (5)) f
)
SELECT g.r_score,
       g.f_score,
       count(m.member_id) AS members,
       coalesce(sum(m.monetary), 0) AS revenue
FROM grid g
LEFT JOIN members m ON m.r_score = g.r_score AND m.f_score = g.f_score
GROUP BY 1, 2
ORDER BY 1 DESC, 2 DESC
