//! Nexmark q19, auction top-10 price: the ten (`top`) highest bids of each
//! auction, numbered (`ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) <=
//! 10`). An upsert stream keyed by (auction, rank_number): when a bid enters
//! the top ten, the rows of its rank and every rank below it are emitted again.
//!
//! Among equal prices the earlier bid ranks first, then the smaller by
//! (bidder, channel, url, extra); Flink ranks ties by arrival, which depends on
//! how shards interleave, so this order keeps the result the same on any
//! number of shards.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::keyed_state::ValueState;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{at_least_one, bids, Ctx};
use crate::job_file::{JobFileError, RegisteredJob};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q19Params {
    /// How many of the highest bids each auction keeps.
    #[serde(default = "ten")]
    top: i64,
}

fn ten() -> i64 {
    10
}

/// q19's output: a bid at its rank in its auction.
#[derive(Debug, Clone, Serialize)]
pub struct RankedBid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: SharedStr,
    pub url: SharedStr,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: SharedStr,
    pub rank_number: u64,
}

/// The order of bids within an auction: the first ranks highest.
pub fn rank_order(b: &Bid) -> (std::cmp::Reverse<i64>, i64, i64, &str, &str, &str) {
    (
        std::cmp::Reverse(b.price),
        b.date_time,
        b.bidder,
        &b.channel,
        &b.url,
        &b.extra,
    )
}

struct TopBids {
    n: usize,
    top: ValueState<i64, Vec<Bid>>,
}

impl sluice_engine::operators::KeyedProcess<i64, Bid, RankedBid> for TopBids {
    fn process_element(&mut self, bid: Bid, ctx: &mut Ctx<'_, RankedBid>) {
        let mut changed = Vec::new();
        let n = self.n;
        self.top.modify(ctx, |top| {
            let at = top.partition_point(|b| rank_order(b) <= rank_order(&bid));
            if at >= n {
                return;
            }
            top.insert(at, bid);
            top.truncate(n);
            changed.extend(
                top[at..]
                    .iter()
                    .cloned()
                    .enumerate()
                    .map(|(i, b)| (at + i, b)),
            );
        });
        for (index, b) in changed {
            ctx.collect(RankedBid {
                auction: b.auction,
                bidder: b.bidder,
                price: b.price,
                channel: b.channel,
                url: b.url,
                date_time: b.date_time,
                extra: b.extra,
                rank_number: index as u64 + 1,
            });
        }
    }
}

/// `SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY
/// price DESC) AS rank_number FROM bid) WHERE rank_number <= 10`
pub fn q19(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let params: Q19Params = file.params()?;
    let n = at_least_one(file, "top", params.top)?;
    let rows = bids(file, env, "q19")?.key_by(|b: &Bid| b.auction).process(
        move |state: &mut sluice_state::StateBackend| TopBids {
            n,
            top: ValueState::new(state, "q19/top"),
        },
    );
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
