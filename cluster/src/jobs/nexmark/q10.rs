//! Nexmark q10, log to file system: every bid with its day and minute, written
//! into a directory per minute of event time (`dt=yyyy-MM-dd/hm=HH:mm`), each
//! committed with a `_SUCCESS` file once the watermark is a commit delay past
//! its end (Flink's partition-time commit with the success-file policy). With
//! checkpoints the part files are exactly-once and a minute is marked only
//! once the checkpoint covering its rows has completed.
//!
//! With a `file` sink the rows go into the partitioned directories; with
//! `stdout` or `blackhole` they are plain rows. Unlike Flink's filesystem sink,
//! the partition columns stay in the rows as well, so each line stands alone.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::connectors::TimePartitionedFileSink;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::bids;
use super::calendar::{day_number, format_day, format_minute, minute_of_day};
use crate::job_file::{JobFileError, RegisteredJob, SinkSpec};

/// q10's output.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedBid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: SharedStr,
    pub dt: String,
    pub hm: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q10Params {
    /// How long after a minute ends (in event time) its partition is committed.
    #[serde(default = "one_minute")]
    commit_delay_ms: i64,
}

fn one_minute() -> i64 {
    60_000
}

/// The directory of the minute starting at `start`.
fn partition_path(start: i64) -> String {
    format!(
        "dt={}/hm={}",
        format_day(day_number(start)),
        format_minute(minute_of_day(start))
    )
}

/// `SELECT auction, bidder, price, dateTime, extra, DATE_FORMAT(dateTime,
/// 'yyyy-MM-dd'), DATE_FORMAT(dateTime, 'HH:mm') FROM bid`, partitioned by
/// (dt, hm).
pub fn q10(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let params: Q10Params = file.params()?;
    if params.commit_delay_ms < 0 {
        return Err(file.invalid(
            "params.commit_delay_ms",
            format!("is {}, expected at least 0", params.commit_delay_ms),
        ));
    }
    let rows = bids(file, env, "q10")?.map(|b: Bid| LoggedBid {
        dt: format_day(day_number(b.date_time)),
        hm: format_minute(minute_of_day(b.date_time)),
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        date_time: b.date_time,
        extra: b.extra,
    });
    match &file.sink {
        SinkSpec::File { directory, format } => rows.sink(TimePartitionedFileSink::new(
            directory.clone(),
            *format,
            60_000,
            params.commit_delay_ms,
            |row: &LoggedBid| row.date_time,
            partition_path,
        )),
        _ => crate::jobs::attach_sink(file, &rows),
    }
    Ok(())
}
