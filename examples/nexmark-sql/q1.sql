-- Query 1: Currency conversion: each bid's price from dollars to euros.
-- As in the Nexmark repository, unchanged (`0.908 * price` is an exact
-- DECIMAL(23, 3), as in Flink).

CREATE TABLE nexmark_q1 (
  auction  BIGINT,
  bidder  BIGINT,
  price  DECIMAL(23, 3),
  dateTime  TIMESTAMP(3),
  extra  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q1
SELECT
    auction,
    bidder,
    0.908 * price as price, -- convert dollar to euro
    dateTime,
    extra
FROM bid;
