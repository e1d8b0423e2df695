//! Nexmark q6 (from the original NEXMark paper), average selling price by
//! seller: after each auction a seller closes, the average of the closing
//! prices of that seller's last 10 closed auctions.
//!
//! Closings come from q9's winning bids (keyed by auction, so they reach the
//! seller's shard in no particular order); the seller's function holds them
//! until the watermark passes their closing time and applies them in
//! (closing time, auction id) order, so results do not depend on shard counts.

use serde::Serialize;
use sluice_engine::StreamEnv;

use super::q9::{winning_bids, WinningBid};
use super::{at_least_one, Ctx};
use crate::job_file::{JobFileError, RegisteredJob};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q6Params {
    /// Closed auctions averaged per seller.
    #[serde(default = "ten")]
    last_auctions: i64,
}

fn ten() -> i64 {
    10
}

/// q6's output, under the names of the reference's sink table
/// `nexmark_q6 (seller, avg_price)`.
#[derive(Debug, Clone, Serialize)]
pub struct SellerAverage {
    pub seller: i64,
    #[serde(rename = "avg_price")]
    pub avg: i64,
}

struct AverageSellingPrice {
    last_auctions: usize,
    /// Closings not yet applied: (closing time, auction, price).
    pending: sluice_engine::keyed_state::ListState<i64, (i64, i64, i64)>,
    /// The latest closing prices, oldest first (at most `last_auctions`).
    last: sluice_engine::keyed_state::ValueState<i64, Vec<i64>>,
}

impl sluice_engine::operators::KeyedProcess<i64, (i64, i64, i64, i64), SellerAverage>
    for AverageSellingPrice
{
    fn process_element(
        &mut self,
        (_seller, expires, auction, price): (i64, i64, i64, i64),
        ctx: &mut Ctx<'_, SellerAverage>,
    ) {
        self.pending.add(ctx, (expires, auction, price));
        ctx.register_event_timer(expires);
    }

    fn on_timer(
        &mut self,
        time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut Ctx<'_, SellerAverage>,
    ) {
        let (mut due, later): (Vec<_>, Vec<_>) =
            self.pending.get(ctx).into_iter().partition(|c| c.0 <= time);
        due.sort();
        self.pending.clear(ctx);
        for closing in later {
            self.pending.add(ctx, closing);
        }
        let mut last = self.last.value(ctx).unwrap_or_default();
        let seller = *ctx.key();
        for (_, _, price) in due {
            if last.len() == self.last_auctions {
                last.remove(0);
            }
            last.push(price);
            ctx.collect(SellerAverage {
                seller,
                avg: last.iter().sum::<i64>() / last.len() as i64,
            });
        }
        self.last.update(ctx, last);
    }
}

/// Average selling price by seller over their last 10 (`last_auctions`)
/// closed auctions.
pub fn q6(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let params: Q6Params = file.params()?;
    let last_auctions = at_least_one(file, "last_auctions", params.last_auctions)?;
    let closings = winning_bids(file, env, "q6")?
        .map(|w: WinningBid| (w.seller, w.expires, w.id, w.price))
        .key_by(|c: &(i64, i64, i64, i64)| c.0);
    let averages =
        closings.process(
            move |state: &mut sluice_state::StateBackend| AverageSellingPrice {
                last_auctions,
                pending: sluice_engine::keyed_state::ListState::new(state, "q6/pending"),
                last: sluice_engine::keyed_state::ValueState::new(state, "q6/last"),
            },
        );
    crate::jobs::attach_sink(file, &averages);
    Ok(())
}
