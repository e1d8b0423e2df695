//! Nexmark q18, find last bid: each bidder's latest bid on each auction, as
//! Flink's event-time deduplication keeping the last row (`ROW_NUMBER() OVER
//! (PARTITION BY bidder, auction ORDER BY dateTime DESC) <= 1`). An upsert
//! stream keyed by (bidder, auction): a row each time the latest bid changes.
//!
//! Flink gives ties in `dateTime` to the row that arrives later, which depends
//! on how shards interleave; here the greater bid by (price, channel, url,
//! extra) wins a tie, so the result is the same on any number of shards.

use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::keyed_state::ValueState;
use sluice_engine::operators::ProcessContext;
use sluice_engine::StreamEnv;

use super::{bids, NoParams};
use crate::job_file::{JobFileError, RegisteredJob};

type BidderAuction = (i64, i64);

/// The order of bids of one (bidder, auction) in which the last is kept.
pub fn recency(b: &Bid) -> (i64, i64, &str, &str, &str) {
    (b.date_time, b.price, &b.channel, &b.url, &b.extra)
}

struct LastBid {
    last: ValueState<BidderAuction, Option<Bid>>,
}

impl sluice_engine::operators::KeyedProcess<BidderAuction, Bid, Bid> for LastBid {
    fn process_element(&mut self, bid: Bid, ctx: &mut ProcessContext<'_, BidderAuction, Bid>) {
        let newer = self.last.modify(ctx, |last| {
            let newer = last.as_ref().is_none_or(|l| recency(&bid) > recency(l));
            if newer {
                *last = Some(bid.clone());
            }
            newer
        });
        if newer {
            ctx.collect(bid);
        }
    }
}

/// `SELECT auction, bidder, price, channel, url, dateTime, extra FROM (SELECT
/// *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC)
/// AS rank_number FROM bid) WHERE rank_number <= 1`
pub fn q18(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let rows = bids(file, env, "q18")?
        .key_by(|b: &Bid| (b.bidder, b.auction))
        .process(|state: &mut sluice_state::StateBackend| LastBid {
            last: ValueState::new(state, "q18/last"),
        });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
