-- Query 12: Processing Time Windows (not in the original suite): how many
-- bids does a user make within a fixed processing time limit? Bids grouped
-- by bidder into tumbling windows of 10 seconds of processing time, the
-- count per window emitted.
-- As in the Nexmark repository, unchanged. A window of PROCTIME() makes
-- the job read the events table in processing time: each row's time is
-- when its source read it, and windows close as the wall clock passes
-- their end (the table's WATERMARK is not used by this job).

CREATE TABLE discard_sink (
  bidder BIGINT,
  bid_count BIGINT,
  starttime TIMESTAMP(3),
  endtime TIMESTAMP(3)
) WITH (
  'connector' = 'blackhole'
);

CREATE VIEW B AS SELECT *, PROCTIME() as p_time FROM bid;

INSERT INTO discard_sink
SELECT
    bidder,
    count(*) as bid_count,
    window_start AS starttime,
    window_end AS endtime
FROM TABLE(
        TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
GROUP BY bidder, window_start, window_end;
