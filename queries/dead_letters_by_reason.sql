-- Dead letters per reason: what kinds of bad input arrived, and how many of each.
-- Answers: is a producer sending broken messages? Parameters: none.
SELECT reason_kind, count(*) AS n
FROM dead_letters
GROUP BY 1
ORDER BY 1
