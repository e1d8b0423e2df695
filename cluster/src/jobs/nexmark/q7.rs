//! Nexmark q7, highest bid: the bids with the highest price of their window.
//!
//! The reference selects `B.auction, B.price, B.bidder, B.dateTime, B.extra`
//! into the sink table `nexmark_q7 (auction, bidder, price, dateTime,
//! extra)`, and `INSERT INTO` maps columns by position: Flink's result has the
//! bid's price under `bidder` and its bidder under `price`. The output keeps
//! that, to the letter.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{bids, Ctx, WindowParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// q7's output: a bid with the highest price of its window, in the sink
/// table's columns filled by position (the price under `bidder`, the bidder
/// under `price`; see the module doc).
#[derive(Debug, Clone, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct HighestBid {
    pub auction: i64,
    #[serde(rename = "bidder")]
    pub price: i64,
    #[serde(rename = "price")]
    pub bidder: i64,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: SharedStr,
}

/// A bid projected for q7, with the end of the window it is compared in and
/// whether it belongs to that window (or only touches its end).
type WindowedBid = (i64, bool, i64, i64, i64, i64, SharedStr);

/// Per window: the highest price of its bids, the bids at that price, and the
/// bids exactly at its end (which SQL's `BETWEEN` also compares with it).
struct HighestInWindow {
    best: sluice_engine::keyed_state::ValueState<i64, (i64, Vec<HighestBid>)>,
    at_end: sluice_engine::keyed_state::ListState<i64, HighestBid>,
}

impl sluice_engine::operators::KeyedProcess<i64, WindowedBid, HighestBid> for HighestInWindow {
    fn process_element(&mut self, bid: WindowedBid, ctx: &mut Ctx<'_, HighestBid>) {
        let (end, member, auction, price, bidder, date_time, extra) = bid;
        let bid = HighestBid {
            auction,
            price,
            bidder,
            date_time,
            extra,
        };
        // Fire once every bid up to and including `end` has arrived.
        ctx.register_event_timer(end);
        if !member {
            self.at_end.add(ctx, bid);
            return;
        }
        let (max, mut at_max) = self.best.value(ctx).unwrap_or((i64::MIN, Vec::new()));
        if price > max {
            self.best.update(ctx, (price, vec![bid]));
        } else if price == max {
            at_max.push(bid);
            self.best.update(ctx, (max, at_max));
        }
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut Ctx<'_, HighestBid>,
    ) {
        if let Some((max, at_max)) = self.best.value(ctx) {
            let at_end = self.at_end.get(ctx).into_iter().filter(|b| b.price == max);
            for bid in at_max.into_iter().chain(at_end) {
                ctx.collect(bid);
            }
        }
        self.best.clear(ctx);
        self.at_end.clear(ctx);
    }
}

/// Highest bid: the bids whose price is the highest of their 10 s tumbling
/// window (`B.dateTime BETWEEN window_end - 10 s AND window_end`, both
/// inclusive, as in the SQL definition).
pub fn q7(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let windowed = bids(file, env, "q7")?.flat_map(move |b: Bid| {
        let end = b.date_time - b.date_time.rem_euclid(size) + size;
        let member = (
            end,
            true,
            b.auction,
            b.price,
            b.bidder,
            b.date_time,
            b.extra.clone(),
        );
        // A bid at a window's start is also at the end of the window before.
        let boundary = (b.date_time.rem_euclid(size) == 0).then(|| {
            (
                end - size,
                false,
                b.auction,
                b.price,
                b.bidder,
                b.date_time,
                b.extra,
            )
        });
        std::iter::once(member).chain(boundary)
    });
    let highest =
        windowed
            .key_by(|b: &WindowedBid| b.0)
            .process(|state: &mut sluice_state::StateBackend| HighestInWindow {
                best: sluice_engine::keyed_state::ValueState::new(state, "q7/best"),
                at_end: sluice_engine::keyed_state::ListState::new(state, "q7/at_end"),
            });
    crate::jobs::attach_sink(file, &highest);
    Ok(())
}
