-- Query 4: Average Price for a Category: the average of the winning bid
-- prices for all auctions in each category. A join and an aggregation
-- over another aggregation's result.
-- As in the Nexmark repository, unchanged. The inner GROUP BY is an
-- upsert stream keyed by (A.id, A.category): each time an auction's
-- highest bid rises, the outer AVG takes the auction's old price back and
-- the new one in (Flink's retraction), so a category's row is the average
-- over its auctions' current highest bids. The join keeps every auction
-- and bid (a regular join, as in Flink without state TTL).

CREATE TABLE nexmark_q4 (
  id BIGINT,
  final BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q4
SELECT
    Q.category,
    AVG(Q.final)
FROM (
    SELECT MAX(B.price) AS final, A.category
    FROM auction A, bid B
    WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
    GROUP BY A.id, A.category
) Q
GROUP BY Q.category;
