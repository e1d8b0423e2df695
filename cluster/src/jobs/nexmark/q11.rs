//! Nexmark q11, user sessions: bids per bidder per session window.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::StreamEnv;

use super::{bids, WindowParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// q11's output: a bidder's session.
#[derive(Debug, Clone, Serialize)]
pub struct BidderSession {
    pub bidder: i64,
    pub bid_count: u64,
    pub starttime: i64,
    pub endtime: i64,
}

/// User sessions: bids per bidder in session windows with a 10 s gap.
pub fn q11(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    use sluice_engine::window::{Count, SessionWindows, TimeWindow};
    let p: WindowParams = file.params()?;
    let gap = WindowParams::positive(file, "session_gap_ms", p.session_gap_ms, 10_000)?;
    let sessions = bids(file, env, "q11")?
        .key_by(|b: &Bid| b.bidder)
        .window(SessionWindows::with_gap(gap))
        .aggregate(Count, |bidder: &i64, w: &TimeWindow, bid_count: u64| {
            BidderSession {
                bidder: *bidder,
                bid_count,
                starttime: w.start,
                endtime: w.end,
            }
        });
    crate::jobs::attach_sink(file, &sessions);
    Ok(())
}
