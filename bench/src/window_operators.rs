//! The window operators one at a time: numeric Nexmark bids keyed by auction
//! through each kind of window and window function on one shard (no exchange
//! serialization), results to the blackhole. Compares the operators with one
//! another on the same input; `window_count` compares one of them with timely.

use sluice_engine::connectors::BlackholeSink;
use sluice_engine::runtime::JobReport;
use sluice_engine::window::{Count, SessionWindows, SlidingWindows, TimeWindow, TumblingWindows};
use sluice_engine::{JobConfig, StreamEnv, WatermarkStrategy};

use crate::window_count::bids;
use sluice_engine::connectors::nexmark::NumericBid;

/// A window operator configuration (Nexmark's sizes, at 1M events/s of event
/// time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// 10 s tumbling windows, incremental count.
    TumblingCount,
    /// 10 s windows sliding by 2 s (5 windows per bid), incremental count.
    SlidingCount,
    /// Session windows with a 10 ms gap (merging), incremental count.
    SessionCount,
    /// 10 s tumbling windows, the highest price by a reduce function.
    TumblingReduce,
    /// 10 s tumbling windows, all bids buffered and the highest price found
    /// when the window fires.
    TumblingProcess,
}

impl WindowKind {
    pub const ALL: [WindowKind; 5] = [
        WindowKind::TumblingCount,
        WindowKind::SlidingCount,
        WindowKind::SessionCount,
        WindowKind::TumblingReduce,
        WindowKind::TumblingProcess,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WindowKind::TumblingCount => "tumbling-count",
            WindowKind::SlidingCount => "sliding-count",
            WindowKind::SessionCount => "session-count",
            WindowKind::TumblingReduce => "tumbling-reduce",
            WindowKind::TumblingProcess => "tumbling-process",
        }
    }
}

/// Runs `kind` over `events` Nexmark events on one shard; returns the report
/// (results are (auction, window start, value) triples).
pub fn run(kind: WindowKind, events: u64) -> JobReport {
    let env = StreamEnv::new(JobConfig {
        shards: 1,
        ..Default::default()
    });
    let keyed = env
        .source(bids(events, 1), WatermarkStrategy::monotonous())
        .key_by(|b: &NumericBid| b.auction);
    let count = |auction: &i64, w: &TimeWindow, n: u64| (*auction, w.start, n as i64);
    let highest = |a: &NumericBid, b: &NumericBid| if b.price > a.price { *b } else { *a };
    let results = match kind {
        WindowKind::TumblingCount => keyed
            .window(TumblingWindows::of(10_000))
            .aggregate(Count, count),
        WindowKind::SlidingCount => keyed
            .window(SlidingWindows::of(10_000, 2_000))
            .aggregate(Count, count),
        WindowKind::SessionCount => keyed
            .window(SessionWindows::with_gap(10))
            .aggregate(Count, count),
        WindowKind::TumblingReduce => keyed
            .window(TumblingWindows::of(10_000))
            .reduce(highest, |auction: &i64, w: &TimeWindow, b: &NumericBid| {
                (*auction, w.start, b.price)
            }),
        WindowKind::TumblingProcess => keyed.window(TumblingWindows::of(10_000)).process(
            |auction: &i64, w: &TimeWindow, bids: &[NumericBid], out: &mut Vec<(i64, i64, i64)>| {
                let price = bids.iter().map(|b| b.price).max().unwrap_or(0);
                out.push((*auction, w.start, price));
            },
        ),
    };
    results.sink(BlackholeSink);
    env.execute().expect("window operator job")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_every_bid_and_emits_results() {
        for kind in WindowKind::ALL {
            let report = run(kind, 50_000);
            assert_eq!(report.totals.records_in, 46_000, "{}", kind.name());
            assert!(report.totals.records_out > 0, "{}", kind.name());
        }
    }
}
