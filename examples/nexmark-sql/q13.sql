-- Query 13: Bounded Side Input Join (not in the original suite): each bid
-- enriched with the value its auction has (modulo 10,000) in a side table,
-- basic stream enrichment. A lookup join as of the processing time: the
-- table is read whole when the job starts, and a bid whose key it lacks
-- is dropped.
-- Changed from the Nexmark repository in two places. The side table is
-- declared with the 'filesystem' connector's options and reads
-- side_input.csv next to this file (keys 0 to 9,999, `value-<key>`); the
-- repository uses the legacy 'connector.type' = 'filesystem',
-- 'connector.path' and 'format.type' = 'csv' keys (its TODO is to move to
-- the new connector) and a file under ${FLINK_HOME}. And the query selects
-- B.dateTime into the sink's customTime where the repository selects
-- B.customTime, a column its bid view does not have.

CREATE TABLE side_input (
  key BIGINT,
  `value` VARCHAR
) WITH (
  'connector' = 'filesystem',
  'path' = 'side_input.csv',
  'format' = 'csv'
);

CREATE TABLE nexmark_q13 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  customTime  TIMESTAMP(3),
  `value`  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q13
SELECT
    B.auction,
    B.bidder,
    B.price,
    B.dateTime,
    S.`value`
FROM (SELECT *, PROCTIME() as p_time FROM bid) B
JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S
ON mod(B.auction, 10000) = S.key;
