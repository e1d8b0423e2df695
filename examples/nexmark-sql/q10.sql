-- Query 10: Log to File System (not in the original suite): every bid with
-- its day and minute, written into a directory per minute of event time
-- (dt=yyyy-MM-dd/hm=HH%3Amm, the ':' escaped as Flink escapes it), each
-- committed with a _SUCCESS file once the watermark passes the minute's
-- start plus one minute. The files hold the columns besides dt and hm.
-- Changed from the Nexmark repository in one place: the path, which there
-- is 'file://${NEXMARK_DIR}/data/output/${SUBMIT_TIME}/bid/' (variables its
-- launcher fills in); here a plain directory. The rolling options are
-- checked and bound nothing more: Sluice's part files roll at every
-- checkpoint and partition commit.

CREATE TABLE nexmark_q10 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  extra  VARCHAR,
  dt STRING,
  hm STRING
) PARTITIONED BY (dt, hm) WITH (
  'connector' = 'filesystem',
  'path' = '/tmp/sluice-nexmark/q10/bid',
  'format' = 'csv',
  'sink.partition-commit.trigger' = 'partition-time',
  'sink.partition-commit.delay' = '1 min',
  'sink.partition-commit.policy.kind' = 'success-file',
  'partition.time-extractor.timestamp-pattern' = '$dt $hm:00',
  'sink.rolling-policy.rollover-interval' = '1min',
  'sink.rolling-policy.check-interval' = '1min'
);

INSERT INTO nexmark_q10
SELECT auction, bidder, price, dateTime, extra, DATE_FORMAT(dateTime, 'yyyy-MM-dd'), DATE_FORMAT(dateTime, 'HH:mm')
FROM bid;
