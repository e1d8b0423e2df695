//! Nexmark q9, winning bids: each auction with its winning bid — the highest
//! price among the bids inside the auction's lifetime, the earliest on ties
//! (then the lowest bidder and `extra`, so that results are deterministic).
//! Emitted once the auction has expired, so each auction appears once with its
//! final winner (the end state of Flink's top-1 upsert stream).

use serde::Serialize;
use sluice_engine::connectors::nexmark::{Auction, Event};
use sluice_engine::SharedStr;
use sluice_engine::{Stream, StreamEnv};

use super::{events, Ctx, NoParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// How long a bid waits for its auction before it is dropped (as in q4).
const EARLY_BID_HORIZON_MS: i64 = 60_000;

/// A bid as q9 needs it: auction, bidder, price, dateTime, extra.
type WinnerBid = (i64, i64, i64, i64, SharedStr);

/// q9's output: the auction's fields, then its winning bid's.
#[derive(Debug, Clone, Serialize)]
pub struct WinningBid {
    pub id: i64,
    #[serde(rename = "itemName")]
    pub item_name: SharedStr,
    pub description: SharedStr,
    #[serde(rename = "initialBid")]
    pub initial_bid: i64,
    pub reserve: i64,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub expires: i64,
    pub seller: i64,
    pub category: i64,
    pub extra: SharedStr,
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    #[serde(rename = "bid_dateTime")]
    pub bid_date_time: i64,
    pub bid_extra: SharedStr,
}

/// True if `a` beats `b`: higher price, then earlier, then lower bidder, then extra.
fn beats(a: &WinnerBid, b: &WinnerBid) -> bool {
    (std::cmp::Reverse(a.2), a.3, a.1, &a.4) < (std::cmp::Reverse(b.2), b.3, b.1, &b.4)
}

struct Winner {
    auction: sluice_engine::keyed_state::ValueState<i64, (Auction, Option<WinnerBid>)>,
    early_bids: sluice_engine::keyed_state::ListState<i64, WinnerBid>,
}

fn inside(auction: &Auction, bid: &WinnerBid) -> bool {
    bid.3 >= auction.date_time && bid.3 <= auction.expires
}

impl sluice_engine::operators::KeyedCoProcess<i64, Auction, WinnerBid, WinningBid> for Winner {
    fn process_first(&mut self, auction: Auction, ctx: &mut Ctx<'_, WinningBid>) {
        let mut best: Option<WinnerBid> = None;
        for bid in self.early_bids.take(ctx) {
            if inside(&auction, &bid) && best.as_ref().is_none_or(|b| beats(&bid, b)) {
                best = Some(bid);
            }
        }
        ctx.register_event_timer(auction.expires);
        self.auction.update(ctx, (auction, best));
    }

    fn process_second(&mut self, bid: WinnerBid, ctx: &mut Ctx<'_, WinningBid>) {
        match self.auction.value(ctx) {
            Some((auction, best)) => {
                if inside(&auction, &bid) && best.as_ref().is_none_or(|b| beats(&bid, b)) {
                    self.auction.update(ctx, (auction, Some(bid)));
                }
            }
            None => {
                ctx.register_event_timer(bid.3.saturating_add(EARLY_BID_HORIZON_MS));
                self.early_bids.add(ctx, bid);
            }
        }
    }

    fn on_timer(
        &mut self,
        time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut Ctx<'_, WinningBid>,
    ) {
        match self.auction.value(ctx) {
            Some((a, best)) if time == a.expires => {
                if let Some((auction, bidder, price, bid_date_time, bid_extra)) = best {
                    ctx.collect(WinningBid {
                        id: a.id,
                        item_name: a.item_name,
                        description: a.description,
                        initial_bid: a.initial_bid,
                        reserve: a.reserve,
                        date_time: a.date_time,
                        expires: a.expires,
                        seller: a.seller,
                        category: a.category,
                        extra: a.extra,
                        auction,
                        bidder,
                        price,
                        bid_date_time,
                        bid_extra,
                    });
                }
                self.auction.clear(ctx);
            }
            Some(_) => {}
            None => self.early_bids.clear(ctx),
        }
    }
}

/// Winning bids: every auction with its winning bid.
pub fn q9(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let winners = winning_bids(file, env, "q9")?;
    crate::jobs::attach_sink(file, &winners);
    Ok(())
}

/// The winning bids of the job file's `nexmark` source, each with the auction's
/// expiry as its event time.
pub(super) fn winning_bids(
    file: &RegisteredJob,
    env: &StreamEnv,
    query: &str,
) -> Result<Stream<WinningBid>, JobFileError> {
    let events = events(file, env, query)?;
    let auctions = events
        .flat_map(|e: Event| {
            if let Event::Auction(a) = e {
                Some(a)
            } else {
                None
            }
        })
        .key_by(|a: &Auction| a.id);
    let bids = events
        .flat_map(|e: Event| {
            if let Event::Bid(b) = e {
                Some((b.auction, b.bidder, b.price, b.date_time, b.extra))
            } else {
                None
            }
        })
        .key_by(|b: &WinnerBid| b.0);
    Ok(auctions
        .connect(&bids)
        .process(|state: &mut sluice_state::StateBackend| Winner {
            auction: sluice_engine::keyed_state::ValueState::new(state, "q9/auction"),
            early_bids: sluice_engine::keyed_state::ListState::new(state, "q9/early_bids"),
        }))
}
