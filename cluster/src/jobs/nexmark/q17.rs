//! Nexmark q17, auction statistics report: per auction and day, the number
//! of bids in total and per price rank, and the minimum, maximum, average and
//! sum of their prices. An upsert stream keyed by (auction, day).

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::keyed_state::ValueState;
use sluice_engine::operators::ProcessContext;
use sluice_engine::StreamEnv;

use super::bids;
use super::calendar::{day_number, format_day};
use super::price_ranks::PriceRanks;
use crate::job_file::{JobFileError, RegisteredJob};

/// q17's output: an auction's statistics of a day so far.
#[derive(Debug, Clone, Serialize)]
pub struct AuctionDayStatistics {
    pub auction: i64,
    pub day: String,
    pub total_bids: u64,
    pub rank1_bids: u64,
    pub rank2_bids: u64,
    pub rank3_bids: u64,
    pub min_price: i64,
    pub max_price: i64,
    pub avg_price: i64,
    pub sum_price: i64,
}

type AuctionDay = (i64, i64);

#[derive(Debug, Clone, Copy, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Totals {
    bids: [u64; 4],
    min: i64,
    max: i64,
    sum: i64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            bids: [0; 4],
            min: i64::MAX,
            max: i64::MIN,
            sum: 0,
        }
    }
}

struct AuctionReport {
    ranks: PriceRanks,
    totals: ValueState<AuctionDay, Totals>,
}

impl sluice_engine::operators::KeyedProcess<AuctionDay, (AuctionDay, i64), AuctionDayStatistics>
    for AuctionReport
{
    fn process_element(
        &mut self,
        (_, price): (AuctionDay, i64),
        ctx: &mut ProcessContext<'_, AuctionDay, AuctionDayStatistics>,
    ) {
        let rank = self.ranks.rank(price);
        let t = self.totals.modify(ctx, |t| {
            t.bids[0] += 1;
            t.bids[rank] += 1;
            t.min = t.min.min(price);
            t.max = t.max.max(price);
            t.sum = t.sum.wrapping_add(price);
            *t
        });
        let &(auction, day) = ctx.key();
        ctx.collect(AuctionDayStatistics {
            auction,
            day: format_day(day),
            total_bids: t.bids[0],
            rank1_bids: t.bids[1],
            rank2_bids: t.bids[2],
            rank3_bids: t.bids[3],
            min_price: t.min,
            max_price: t.max,
            // AVG over BIGINT is a BIGINT in Flink SQL: the quotient, truncated.
            avg_price: t.sum / t.bids[0] as i64,
            sum_price: t.sum,
        });
    }
}

/// `SELECT auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd') AS day, count(*) AS
/// total_bids, count(*) FILTER (…) AS rank1_bids, …, min(price), max(price),
/// avg(price), sum(price) FROM bid GROUP BY auction, day`
pub fn q17(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let ranks = PriceRanks::from_params(file)?;
    let rows = bids(file, env, "q17")?
        .map(|b: Bid| ((b.auction, day_number(b.date_time)), b.price))
        .key_by(|r: &(AuctionDay, i64)| r.0)
        .process(
            move |state: &mut sluice_state::StateBackend| AuctionReport {
                ranks,
                totals: ValueState::new(state, "q17/totals"),
            },
        );
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
