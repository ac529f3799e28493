-- Segment distribution per home store: members per RFM segment, by the store where each
-- member spends most (net of refunds, all time; ties: the smaller store id; online orders
-- are "(online)"; members without purchases or refunds have no home store and are left
-- out), with the segment's share of the store's members. Reads the member_store rollup.
WITH home AS (
    SELECT member_id, store FROM (
        SELECT member_id, coalesce(store_id, '(online)') AS store,
               row_number() OVER (PARTITION BY member_id ORDER BY purchase_amount - refund_amount DESC, coalesce(store_id, '(online)')) AS k
        FROM member_store
    ) WHERE k = 1
)
SELECT h.store AS home_store,
       coalesce(m.rfm_segment, '(unscored)') AS rfm_segment,
       count(*) AS members,
       round(CAST(count(*) AS DOUBLE) / sum(count(*)) OVER (PARTITION BY h.store), 4) AS share_of_store
FROM home h JOIN members m USING (member_id)
GROUP BY 1, 2
ORDER BY 1, 2
