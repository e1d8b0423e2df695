//! Nexmark q15, bidding statistics report: per day, how many bids, distinct
//! bidders and distinct auctions there were in total and per price rank. An
//! unbounded group aggregation: each bid updates its day's row (an upsert
//! stream keyed by `day`; the last row of a day is its final one).
//!
//! Every bid of a day meets in one shard, as in Flink without its
//! split-distinct optimization.

use serde::ser::{Serialize, SerializeStruct, Serializer};
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::StreamEnv;

use super::calendar::{day_number, format_day};
use super::price_ranks::{PriceRankCounts, PriceRankState, PriceRanks};
use super::{bids, Ctx};
use crate::job_file::{JobFileError, RegisteredJob};

/// q15's output: a day's statistics so far.
#[derive(Debug, Clone)]
pub struct DayStatistics {
    pub day: String,
    pub counts: PriceRankCounts,
}

impl Serialize for DayStatistics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("DayStatistics", 1 + PriceRankCounts::FIELDS)?;
        s.serialize_field("day", &self.day)?;
        self.counts.serialize_fields(&mut s)?;
        s.end()
    }
}

struct DayReport {
    state: PriceRankState<i64>,
}

impl sluice_engine::operators::KeyedProcess<i64, (i64, i64, i64, i64), DayStatistics>
    for DayReport
{
    fn process_element(
        &mut self,
        (day, bidder, auction, price): (i64, i64, i64, i64),
        ctx: &mut Ctx<'_, DayStatistics>,
    ) {
        let counts = self.state.add(ctx, bidder, auction, price);
        ctx.collect(DayStatistics {
            day: format_day(day),
            counts,
        });
    }
}

/// `SELECT DATE_FORMAT(dateTime, 'yyyy-MM-dd') AS day, count(*) AS total_bids,
/// count(*) FILTER (WHERE price < 10000) AS rank1_bids, …, count(DISTINCT
/// bidder) …, count(DISTINCT auction) … FROM bid GROUP BY day`
pub fn q15(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let ranks = PriceRanks::from_params(file)?;
    let rows = bids(file, env, "q15")?
        .map(|b: Bid| (day_number(b.date_time), b.bidder, b.auction, b.price))
        .key_by(|r: &(i64, i64, i64, i64)| r.0)
        .process(move |state: &mut sluice_state::StateBackend| DayReport {
            state: PriceRankState::new(state, "q15", ranks),
        });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
