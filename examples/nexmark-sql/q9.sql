-- Query 9: Winning Bids (not in the original suite): each auction with
-- its winning bid, the highest price among the bids made while it was
-- open, the earliest of those on ties. A regular join of auctions and
-- bids, then a Top-1 per auction: an upsert stream keyed by the auction,
-- a row each time its winner changes.
-- As in the Nexmark repository, except that the time columns are
-- `dateTime` and `bid_dateTime` (the repository's older text names them
-- `customTime` and `bid_customTime`). Bids tied on price and time rank by
-- the rest of the row, smaller first, where Flink would rank them by
-- arrival (see q19).

CREATE TABLE nexmark_q9 (
  id  BIGINT,
  itemName  VARCHAR,
  description  VARCHAR,
  initialBid  BIGINT,
  reserve  BIGINT,
  dateTime  TIMESTAMP(3),
  expires  TIMESTAMP(3),
  seller  BIGINT,
  category  BIGINT,
  extra  VARCHAR,
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  bid_dateTime  TIMESTAMP(3),
  bid_extra  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q9
SELECT
    id, itemName, description, initialBid, reserve, dateTime, expires, seller, category, extra,
    auction, bidder, price, bid_dateTime, bid_extra
FROM (
   SELECT A.*, B.auction, B.bidder, B.price, B.dateTime AS bid_dateTime, B.extra AS bid_extra,
     ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) AS rownum
   FROM auction A, bid B
   WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
)
WHERE rownum <= 1;
