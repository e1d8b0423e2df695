//! Nexmark q20, expand bid with auction: every bid joined with its auction,
//! for auctions of category 10 (a regular inner join on `auction = id`).
//!
//! Keyed by auction id. An auction is kept for good, as in Flink's unbounded
//! join: the whole record when it is of category 10, otherwise a marker that
//! drops its bids at once. Auction ids are unique, so a bid that arrives
//! before its auction waits for it, and waits at most `early_bid_horizon_ms`
//! of event time (one minute by default; the generator's bids follow their
//! auction by at most its 3 s of delay). This bound is the one departure from
//! Flink, which keeps unmatched bids forever.

use serde::Serialize;
use sluice_engine::connectors::nexmark::{Auction, Bid, Event};
use sluice_engine::keyed_state::{ListState, ValueState};
use sluice_engine::operators::{KeyedCoProcess, TimeDomain};
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{events, Ctx};
use crate::job_file::{JobFileError, RegisteredJob};

/// q20's output.
#[derive(Debug, Clone, Serialize)]
pub struct ExpandedBid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: SharedStr,
    pub url: SharedStr,
    #[serde(rename = "bid_dateTime")]
    pub bid_date_time: i64,
    pub bid_extra: SharedStr,
    #[serde(rename = "itemName")]
    pub item_name: SharedStr,
    pub description: SharedStr,
    #[serde(rename = "initialBid")]
    pub initial_bid: i64,
    pub reserve: i64,
    #[serde(rename = "auction_dateTime")]
    pub auction_date_time: i64,
    pub expires: i64,
    pub seller: i64,
    pub category: i64,
    pub auction_extra: SharedStr,
}

fn expand(bid: Bid, a: &Auction) -> ExpandedBid {
    ExpandedBid {
        auction: bid.auction,
        bidder: bid.bidder,
        price: bid.price,
        channel: bid.channel,
        url: bid.url,
        bid_date_time: bid.date_time,
        bid_extra: bid.extra,
        item_name: a.item_name.clone(),
        description: a.description.clone(),
        initial_bid: a.initial_bid,
        reserve: a.reserve,
        auction_date_time: a.date_time,
        expires: a.expires,
        seller: a.seller,
        category: a.category,
        auction_extra: a.extra.clone(),
    }
}

/// What is known of an auction id.
#[derive(Debug, Clone, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
enum AuctionSeen {
    #[default]
    NotYet,
    OtherCategory,
    Joined(Box<Auction>),
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q20Params {
    #[serde(default = "one_minute")]
    early_bid_horizon_ms: i64,
    #[serde(default = "ten")]
    category: i64,
}

fn one_minute() -> i64 {
    60_000
}

fn ten() -> i64 {
    10
}

struct ExpandJoin {
    category: i64,
    horizon_ms: i64,
    auction: ValueState<i64, AuctionSeen>,
    early_bids: ListState<i64, Bid>,
}

impl KeyedCoProcess<i64, Auction, Bid, ExpandedBid> for ExpandJoin {
    fn process_first(&mut self, auction: Auction, ctx: &mut Ctx<'_, ExpandedBid>) {
        let early = self.early_bids.take(ctx);
        if auction.category == self.category {
            for bid in early {
                ctx.collect(expand(bid, &auction));
            }
            self.auction
                .update(ctx, AuctionSeen::Joined(Box::new(auction)));
        } else {
            self.auction.update(ctx, AuctionSeen::OtherCategory);
        }
    }

    fn process_second(&mut self, bid: Bid, ctx: &mut Ctx<'_, ExpandedBid>) {
        let mut waiting = None;
        let joined = self.auction.modify(ctx, |seen| match seen {
            AuctionSeen::Joined(a) => Some(expand(bid, a)),
            AuctionSeen::OtherCategory => None,
            AuctionSeen::NotYet => {
                waiting = Some(bid);
                None
            }
        });
        if let Some(row) = joined {
            ctx.collect(row);
        } else if let Some(bid) = waiting {
            let deadline = bid.date_time.saturating_add(self.horizon_ms);
            // One timer per waiting key: the first bid's deadline (later bids'
            // deadlines are set when it fires).
            if self.early_bids.add(ctx, bid) == 1 {
                ctx.register_event_timer(deadline);
            }
        }
    }

    fn on_timer(&mut self, time: i64, _domain: TimeDomain, ctx: &mut Ctx<'_, ExpandedBid>) {
        // Drop the bids that waited their horizon; the others wait on, with a
        // timer for the earliest of their deadlines.
        let mut next_deadline = None::<i64>;
        for bid in self.early_bids.take(ctx) {
            let deadline = bid.date_time.saturating_add(self.horizon_ms);
            if deadline > time {
                next_deadline = Some(next_deadline.map_or(deadline, |d| d.min(deadline)));
                self.early_bids.add(ctx, bid);
            }
        }
        if let Some(deadline) = next_deadline {
            ctx.register_event_timer(deadline);
        }
    }
}

/// `SELECT auction, bidder, price, channel, url, B.dateTime, B.extra,
/// itemName, description, initialBid, reserve, A.dateTime, expires, seller,
/// category, A.extra FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id
/// WHERE A.category = 10`
pub fn q20(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let params: Q20Params = file.params()?;
    if params.early_bid_horizon_ms < 0 {
        return Err(file.invalid(
            "params.early_bid_horizon_ms",
            format!("is {}, expected at least 0", params.early_bid_horizon_ms),
        ));
    }
    let events = events(file, env, "q20")?;
    let auctions = events
        .flat_map(|e: Event| match e {
            Event::Auction(a) => Some(a),
            _ => None,
        })
        .key_by(|a: &Auction| a.id);
    let bids = events
        .flat_map(|e: Event| match e {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .key_by(|b: &Bid| b.auction);
    let (category, horizon_ms) = (params.category, params.early_bid_horizon_ms);
    let rows = auctions
        .connect(&bids)
        .process(move |state: &mut sluice_state::StateBackend| ExpandJoin {
            category,
            horizon_ms,
            auction: ValueState::new(state, "q20/auction"),
            early_bids: ListState::new(state, "q20/early_bids"),
        });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
