-- Query 7: Highest Bid: the bids with the highest price of their 10 s
-- window. A regular join of the bids with the windows' highest prices on
-- the price, its output filtered by the bid's time.
-- As in the Nexmark repository, unchanged. Note what the text says to the
-- letter: `INSERT INTO` fills the sink's columns by position, so the bid's
-- price lands under `bidder` and its bidder under `price`; `BETWEEN` is
-- inclusive at both ends, so a bid exactly at a window's end is compared
-- with that window's highest price too. `B1.dateTime` is `window_end`, not
-- an event-time attribute, so this is a regular join (every bid is kept in
-- state), as it is in Flink.

CREATE TABLE nexmark_q7 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  extra  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q7
SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
from bid B
JOIN (
  SELECT MAX(price) AS maxprice, window_end as dateTime
  FROM TABLE(
          TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
  GROUP BY window_start, window_end
) B1
ON B.price = B1.maxprice
WHERE B.dateTime BETWEEN B1.dateTime  - INTERVAL '10' SECOND AND B1.dateTime;
