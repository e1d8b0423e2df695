-- Query 6: Average Selling Price by Seller: the average selling price per
-- seller for their last 10 closed auctions. Shares the 'winning bids'
-- core of Query 4, and illustrates a specialized combiner.
--
-- Flink does not run this query: the Nexmark repository's text carries
-- "TODO: this query is not supported yet in Flink SQL, because the OVER
-- WINDOW operator doesn't support to consume retractions" — the winning
-- bids (ROW_NUMBER() ... <= 1 over a join) are an updating table, and an
-- OVER aggregation reads only append-only ones. Sluice refuses it for the
-- same reason, by name, at the OVER clause (`sluice run q6.toml` exits 2).
-- The hand-written `nexmark.q6` computes what the query means.
--
-- Changed from the Nexmark repository where its text (never run) is not
-- valid SQL: B.dateTime and A.dateTime where it reads customTime, a column
-- its views do not have (as in q13); the ranking partitions and orders by
-- the derived table's id, seller and price where it names A.id, A.seller
-- and B.price, which are not in scope there; and `WHERE rownum <= 1` is
-- moved out of the SELECT that defines rownum (a WHERE cannot read its own
-- SELECT's aliases) into the usual Top-1 form.

CREATE TABLE nexmark_q6 (
  seller VARCHAR,
  avg_price  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q6
SELECT
    Q.seller,
    AVG(Q.price) OVER
        (PARTITION BY Q.seller ORDER BY Q.dateTime ROWS BETWEEN 10 PRECEDING AND CURRENT ROW)
FROM (
    SELECT * FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY id, seller ORDER BY price DESC) AS rownum
        FROM (SELECT A.id, A.seller, B.price, B.dateTime
            FROM auction AS A,
                bid AS B
            WHERE A.id = B.auction
                and B.dateTime between A.dateTime and A.expires)
    )
    WHERE rownum <= 1
) AS Q;
