-- Query 18: Find last bid (not in the original suite): each bidder's
-- latest bid on each auction. A deduplication keeping the last row by
-- event time: an upsert stream keyed by (bidder, auction), a row each
-- time the latest bid changes.
-- As in the Nexmark repository, unchanged. Where Flink keeps the later
-- arrival of two bids with the same dateTime (which depends on how shards
-- interleave), Sluice keeps the greater row by its columns in order, so
-- the result is the same on any number of shards.

CREATE TABLE nexmark_q18 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    url  VARCHAR,
    dateTime  TIMESTAMP(3),
    extra  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q18
SELECT auction, bidder, price, channel, url, dateTime, extra
 FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC) AS rank_number
       FROM bid)
 WHERE rank_number <= 1;
