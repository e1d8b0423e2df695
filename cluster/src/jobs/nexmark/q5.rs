//! Nexmark q5, hot items: the auctions with the most bids per sliding window.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::StreamEnv;

use super::{bids, WindowParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// q5's output: an auction with the most bids in a sliding window.
#[derive(Debug, Clone, Serialize)]
pub struct HotItem {
    pub auction: i64,
    pub num: u64,
}

/// Per window: the highest count and the auctions that reached it.
struct HottestInWindow {
    best: sluice_engine::keyed_state::ValueState<i64, (u64, Vec<i64>)>,
}

impl sluice_engine::operators::KeyedProcess<i64, (i64, i64, u64), HotItem> for HottestInWindow {
    fn process_element(
        &mut self,
        (window_end, auction, num): (i64, i64, u64),
        ctx: &mut sluice_engine::operators::ProcessContext<'_, i64, HotItem>,
    ) {
        let (max, mut auctions) = self.best.value(ctx).unwrap_or((0, Vec::new()));
        if max == 0 {
            // Every count of this window arrives before the watermark passes
            // its end (counts carry the window's last timestamp).
            ctx.register_event_timer(window_end - 1);
        }
        if num > max {
            auctions.clear();
        }
        if num >= max {
            auctions.push(auction);
            self.best.update(ctx, (num, auctions));
        }
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut sluice_engine::operators::ProcessContext<'_, i64, HotItem>,
    ) {
        if let Some((num, auctions)) = self.best.value(ctx) {
            for auction in auctions {
                ctx.collect(HotItem { auction, num });
            }
            self.best.clear(ctx);
        }
    }
}

/// Hot items: the auctions with the most bids in each sliding window (10 s
/// every 2 s); ties all count.
pub fn q5(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    use sluice_engine::window::{Count, SlidingWindows, TimeWindow};
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let slide = WindowParams::positive(file, "window_slide_ms", p.window_slide_ms, 2_000)?;
    if slide > size {
        return Err(file.invalid(
            "params.window_slide_ms",
            format!("is {slide}, expected at most window_size_ms ({size})"),
        ));
    }
    // Only the auction crosses the exchange (what a SQL planner would project).
    let counts = bids(file, env, "q5")?
        .map(|b: Bid| b.auction)
        .key_by(|auction: &i64| *auction)
        .window(SlidingWindows::of(size, slide))
        .aggregate(Count, |auction: &i64, w: &TimeWindow, num: u64| {
            (w.end, *auction, num)
        });
    let hottest = counts.key_by(|c: &(i64, i64, u64)| c.0).process(
        |state: &mut sluice_state::StateBackend| HottestInWindow {
            best: sluice_engine::keyed_state::ValueState::new(state, "q5/best"),
        },
    );
    crate::jobs::attach_sink(file, &hottest);
    Ok(())
}
