//! Nexmark q12: bids per bidder in processing-time tumbling windows.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::{StreamEnv, WatermarkStrategy};

use super::{bids_with, WindowParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// q12's output: a bidder's bids in a processing-time window, under the
/// names of the reference's sink table (`bidder, bid_count, starttime,
/// endtime`).
#[derive(Debug, Clone, Serialize)]
pub struct BidderWindow {
    pub bidder: i64,
    pub bid_count: u64,
    #[serde(rename = "starttime")]
    pub window_start: i64,
    #[serde(rename = "endtime")]
    pub window_end: i64,
}

/// Bids per bidder in 10 s tumbling windows of processing time.
pub fn q12(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    use sluice_engine::window::{Count, TimeWindow, TumblingWindows};
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let counts = bids_with(file, env, "q12", WatermarkStrategy::processing_time())?
        .map(|b: Bid| b.bidder)
        .key_by(|bidder: &i64| *bidder)
        .window(TumblingWindows::of(size))
        .aggregate(Count, |bidder: &i64, w: &TimeWindow, bid_count: u64| {
            BidderWindow {
                bidder: *bidder,
                bid_count,
                window_start: w.start,
                window_end: w.end,
            }
        });
    crate::jobs::attach_sink(file, &counts);
    Ok(())
}
