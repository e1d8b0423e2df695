//! Nexmark q4, average price per category: closing prices of auctions
//! (a keyed join of auctions and bids), averaged per category as an upsert
//! stream.
//!
//! The join looks like q9's winning-bid join but carries only ids, times and
//! prices: built on q9's full records instead, q4 measured 0.60 M events/s and
//! 506 MiB peak against 1.01 M/s and 120 MiB (`sluice bench nexmark --query q4
//! --events 5M`, 2 shards), so it keeps its own projected join.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Event;
use sluice_engine::StreamEnv;

use super::{events, Ctx, NoParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// How long a bid waits for its auction before it is dropped.
const EARLY_BID_HORIZON_MS: i64 = 60_000;

/// An auction's closing price: its highest bid between its start and expiry.
/// Keyed by auction id; bids that arrive before their auction wait for it.
struct ClosingPrice {
    /// (category, start, expires, highest valid price so far)
    auction: sluice_engine::keyed_state::ValueState<i64, (i64, i64, i64, Option<i64>)>,
    early_bids: sluice_engine::keyed_state::ListState<i64, (i64, i64)>,
}

impl
    sluice_engine::operators::KeyedCoProcess<i64, (i64, i64, i64, i64), (i64, i64, i64), (i64, i64)>
    for ClosingPrice
{
    fn process_first(
        &mut self,
        (_id, category, start, expires): (i64, i64, i64, i64),
        ctx: &mut Ctx<'_, (i64, i64)>,
    ) {
        let mut best = None;
        for (time, price) in self.early_bids.take(ctx) {
            if time >= start && time <= expires {
                best = best.max(Some(price));
            }
        }
        self.auction.update(ctx, (category, start, expires, best));
        // The price is final once no bid inside the auction can arrive.
        ctx.register_event_timer(expires);
    }

    fn process_second(
        &mut self,
        (_auction, price, time): (i64, i64, i64),
        ctx: &mut Ctx<'_, (i64, i64)>,
    ) {
        match self.auction.value(ctx) {
            Some((category, start, expires, best)) => {
                if time >= start && time <= expires && best.is_none_or(|b| price > b) {
                    self.auction
                        .update(ctx, (category, start, expires, Some(price)));
                }
            }
            None => {
                self.early_bids.add(ctx, (time, price));
                ctx.register_event_timer(time.saturating_add(EARLY_BID_HORIZON_MS));
            }
        }
    }

    fn on_timer(
        &mut self,
        time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut Ctx<'_, (i64, i64)>,
    ) {
        match self.auction.value(ctx) {
            Some((category, _, expires, best)) if time == expires => {
                if let Some(price) = best {
                    ctx.collect((category, price));
                }
                self.auction.clear(ctx);
            }
            // The cleanup timer of early bids already folded into their auction.
            Some(_) => {}
            // Bids whose auction never came (ids run at most a few auctions
            // ahead, so a minute of event time is far beyond any real wait).
            None => self.early_bids.clear(ctx),
        }
    }
}

/// q4's output: a category's average closing price so far, under the names
/// of Flink's sink table `nexmark_q4 (id, final)`, which `INSERT INTO` fills by
/// position from `SELECT Q.category, AVG(Q.final)`.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryAverage {
    #[serde(rename = "id")]
    pub category: i64,
    #[serde(rename = "final")]
    pub avg: i64,
}

/// Running average per category, emitted on every change (an upsert stream).
struct AveragePerCategory {
    totals: sluice_engine::keyed_state::ValueState<i64, (i64, i64)>,
}

impl sluice_engine::operators::KeyedProcess<i64, (i64, i64), CategoryAverage>
    for AveragePerCategory
{
    fn process_element(
        &mut self,
        (category, price): (i64, i64),
        ctx: &mut Ctx<'_, CategoryAverage>,
    ) {
        let (sum, count) = self.totals.value(ctx).unwrap_or((0, 0));
        let (sum, count) = (sum + price, count + 1);
        self.totals.update(ctx, (sum, count));
        // AVG over BIGINT is a BIGINT in Flink SQL: the quotient, truncated.
        ctx.collect(CategoryAverage {
            category,
            avg: sum / count,
        });
    }
}

/// Average price per category: the average of the closing prices of the
/// auctions in each category, updated as auctions close.
pub fn q4(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let events = events(file, env, "q4")?;
    let auctions = events
        .flat_map(|e: Event| {
            if let Event::Auction(a) = e {
                Some((a.id, a.category, a.date_time, a.expires))
            } else {
                None
            }
        })
        .key_by(|a: &(i64, i64, i64, i64)| a.0);
    let bids = events
        .flat_map(|e: Event| {
            if let Event::Bid(b) = e {
                Some((b.auction, b.price, b.date_time))
            } else {
                None
            }
        })
        .key_by(|b: &(i64, i64, i64)| b.0);
    let closing = auctions
        .connect(&bids)
        .process(|state: &mut sluice_state::StateBackend| ClosingPrice {
            auction: sluice_engine::keyed_state::ValueState::new(state, "q4/auction"),
            early_bids: sluice_engine::keyed_state::ListState::new(state, "q4/early_bids"),
        });
    let averages =
        closing
            .key_by(|c: &(i64, i64)| c.0)
            .process(
                |state: &mut sluice_state::StateBackend| AveragePerCategory {
                    totals: sluice_engine::keyed_state::ValueState::new(state, "q4/totals"),
                },
            );
    crate::jobs::attach_sink(file, &averages);
    Ok(())
}
