-- Query 19: Auction TOP-10 Price (not in the original suite): the ten
-- highest bids of each auction, numbered. A Top-N: an upsert stream keyed
-- by (auction, rank_number); when a bid enters the top ten, the rows of
-- its rank and every rank below it are written again.
-- As in the Nexmark repository, unchanged. Where Flink ranks bids of equal
-- price by arrival (which depends on how shards interleave), Sluice ranks
-- the earlier bid by dateTime first, then the smaller row by its columns
-- in order, so the result is the same on any number of shards.

CREATE TABLE nexmark_q19 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    url  VARCHAR,
    dateTime  TIMESTAMP(3),
    extra  VARCHAR,
    rank_number  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q19
SELECT * FROM
(SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10;
