-- Query 11: User Sessions (not in the original suite): how many bids a
-- user made in each session they were active. Session windows: bids of
-- the same bidder no more than 10 seconds apart share a session; one row
-- per bidder and session when the watermark passes its end.
-- As in the Nexmark repository, unchanged. TIMESTAMP(3) columns are
-- written as milliseconds since the epoch; SESSION_END is the last bid's
-- time plus the gap, as in Flink.

CREATE TABLE nexmark_q11 (
  bidder BIGINT,
  bid_count BIGINT,
  starttime TIMESTAMP(3),
  endtime TIMESTAMP(3)
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q11
SELECT
    B.bidder,
    count(*) as bid_count,
    SESSION_START(B.dateTime, INTERVAL '10' SECOND) as starttime,
    SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime
FROM bid B
GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND);
