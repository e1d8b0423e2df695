//! The bid statistics of q15 and q16: bids, distinct bidders and distinct
//! auctions, in total and per price rank (below 10,000; up to 1,000,000;
//! above), as `count(*)` and `count(DISTINCT …)` with `FILTER` clauses give
//! them.
//!
//! Distinct counts keep, per group and per bidder (or auction), a bit mask of
//! the ranks it has been seen in: a bidder counts towards a rank the first time
//! its bit is set.

use serde::ser::SerializeStruct;
use sluice_engine::keyed_state::{CurrentKey, MapState, ValueState};
use sluice_state::{StateBackend, StateKey};

use crate::job_file::{JobFileError, RegisteredJob};

/// Where the price ranks start: rank 1 below `rank2_from`, rank 2 below
/// `rank3_from`, rank 3 from there (10,000 and 1,000,000 in the reference;
/// `[params]` of q15, q16 and q17 may change them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRanks {
    #[serde(default = "ten_thousand")]
    pub rank2_from: i64,
    #[serde(default = "one_million")]
    pub rank3_from: i64,
}

fn ten_thousand() -> i64 {
    10_000
}

fn one_million() -> i64 {
    1_000_000
}

impl PriceRanks {
    /// The job file's ranks, checked to be in order.
    pub fn from_params(file: &RegisteredJob) -> Result<Self, JobFileError> {
        let ranks: PriceRanks = file.params()?;
        if ranks.rank2_from >= ranks.rank3_from {
            return Err(file.invalid(
                "params.rank2_from",
                format!(
                    "is {}, expected less than rank3_from ({})",
                    ranks.rank2_from, ranks.rank3_from
                ),
            ));
        }
        Ok(ranks)
    }

    /// The rank of a price: 1, 2 or 3 (index 0 of the counts is the total).
    pub fn rank(&self, price: i64) -> usize {
        if price < self.rank2_from {
            1
        } else if price < self.rank3_from {
            2
        } else {
            3
        }
    }
}

/// Counts of a group: index 0 is the total, 1..=3 the price ranks.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct PriceRankCounts {
    pub bids: [u64; 4],
    pub bidders: [u64; 4],
    pub auctions: [u64; 4],
}

const NAMES: [[&str; 4]; 3] = [
    ["total_bids", "rank1_bids", "rank2_bids", "rank3_bids"],
    [
        "total_bidders",
        "rank1_bidders",
        "rank2_bidders",
        "rank3_bidders",
    ],
    [
        "total_auctions",
        "rank1_auctions",
        "rank2_auctions",
        "rank3_auctions",
    ],
];

impl PriceRankCounts {
    /// How many columns [`Self::serialize_fields`] writes.
    pub const FIELDS: usize = 12;

    /// Writes the twelve counts as the columns of the reference queries.
    pub fn serialize_fields<S: SerializeStruct>(&self, s: &mut S) -> Result<(), S::Error> {
        for (names, counts) in NAMES
            .iter()
            .zip([&self.bids, &self.bidders, &self.auctions])
        {
            for (name, count) in names.iter().zip(counts) {
                s.serialize_field(name, count)?;
            }
        }
        Ok(())
    }
}

/// The keyed state behind [`PriceRankCounts`] for groups of type `K`.
pub struct PriceRankState<K> {
    ranks: PriceRanks,
    counts: ValueState<K, PriceRankCounts>,
    bidders: MapState<K, i64, u8>,
    auctions: MapState<K, i64, u8>,
}

impl<K: StateKey> PriceRankState<K> {
    pub fn new(state: &mut StateBackend, name: &str, ranks: PriceRanks) -> Self {
        PriceRankState {
            ranks,
            counts: ValueState::new(state, &format!("{name}/counts")),
            bidders: MapState::new(state, &format!("{name}/bidders")),
            auctions: MapState::new(state, &format!("{name}/auctions")),
        }
    }

    /// Counts a bid in the current group and returns the group's new counts.
    pub fn add(
        &mut self,
        ctx: &impl CurrentKey<K>,
        bidder: i64,
        auction: i64,
        price: i64,
    ) -> PriceRankCounts {
        let rank = self.ranks.rank(price);
        // Bit 0: seen at all; bit r: seen in rank r.
        let seen = |mask: &mut u8| {
            let before = *mask;
            *mask |= 1 | (1 << rank);
            [before & 1 == 0, before & (1 << rank) == 0]
        };
        let [new_bidder, new_bidder_in_rank] = self.bidders.modify(ctx, bidder, seen);
        let [new_auction, new_auction_in_rank] = self.auctions.modify(ctx, auction, seen);
        self.counts.modify(ctx, |c| {
            c.bids[0] += 1;
            c.bids[rank] += 1;
            c.bidders[0] += u64::from(new_bidder);
            c.bidders[rank] += u64::from(new_bidder_in_rank);
            c.auctions[0] += u64::from(new_auction);
            c.auctions[rank] += u64::from(new_auction_in_rank);
            *c
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_split_at_ten_thousand_and_a_million() {
        let reference = PriceRanks {
            rank2_from: 10_000,
            rank3_from: 1_000_000,
        };
        assert_eq!(
            [-1, 9_999, 10_000, 999_999, 1_000_000].map(|p| reference.rank(p)),
            [1, 1, 2, 2, 3]
        );
    }
}
