//! Nexmark q7, highest bid: the bids with the highest price of their window.
//!
//! The reference selects `B.auction, B.price, B.bidder, B.dateTime, B.extra`
//! into the sink table `nexmark_q7 (auction, bidder, price, dateTime,
//! extra)`, and `INSERT INTO` maps columns by position: Flink's result has the
//! bid's price under `bidder` and its bidder under `price`. The output keeps
//! that, to the letter.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::window::{AggregateFunction, SlidingWindows, TimeWindow};
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{bids, WindowParams};
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

/// Per window, the bids of one shard or, merged, of all: the highest price
/// among the bids off the windows' edges and those bids, and every bid on an
/// edge (a time that is a multiple of the window size), kept whole because
/// such a bid is inside one window and at the closing end of the one before
/// (see [`HighestOfWindow`]).
#[derive(Debug, Clone, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Highest {
    /// `i64::MIN` while no bid off an edge has been seen.
    price: i64,
    at_price: Vec<HighestBid>,
    on_edges: Vec<HighestBid>,
}

/// The aggregate of q7's windows. Each window spans `[start, start + size]`,
/// both ends included as in the SQL's `BETWEEN` (a sliding window of
/// `size + 1` ms every `size` ms): its highest price is that of the bids in
/// `[start, start + size)`, and every bid of the span at that price is a
/// result. The accumulator cannot tell which window it serves, so it keeps
/// the bids on edges apart and [`results`](HighestOfWindow::results) sorts them out
/// once the window is known. The accumulators merge, so each shard folds its
/// own bids before the exchange (Flink's local-global aggregation) and the
/// window's owner merges one partial per shard: the window is no longer one
/// hot key that takes every bid.
#[derive(Debug, Clone, Copy)]
struct HighestOfWindow {
    size: i64,
}

impl HighestOfWindow {
    /// Window `window`'s results from its accumulator.
    fn results(&self, window: &TimeWindow, acc: Highest) -> Vec<HighestBid> {
        let (start, closing_edge) = (window.start, window.start + self.size);
        let highest = acc
            .on_edges
            .iter()
            .filter(|b| b.date_time == start)
            .map(|b| b.price)
            .fold(acc.price, i64::max);
        if highest == i64::MIN {
            return Vec::new(); // no bid inside the window
        }
        let mut results = if acc.price == highest {
            acc.at_price
        } else {
            Vec::new()
        };
        results.extend(acc.on_edges.into_iter().filter(|b| {
            b.price == highest && (b.date_time == start || b.date_time == closing_edge)
        }));
        results
    }
}

impl AggregateFunction<HighestBid> for HighestOfWindow {
    type Acc = Highest;
    type Out = Highest;

    fn create_accumulator(&self) -> Highest {
        Highest {
            price: i64::MIN,
            at_price: Vec::new(),
            on_edges: Vec::new(),
        }
    }

    fn add(&self, bid: &HighestBid, acc: &mut Highest) {
        if bid.date_time.rem_euclid(self.size) == 0 {
            acc.on_edges.push(bid.clone());
        } else if bid.price > acc.price {
            acc.price = bid.price;
            acc.at_price.clear();
            acc.at_price.push(bid.clone());
        } else if bid.price == acc.price {
            acc.at_price.push(bid.clone());
        }
    }

    fn get_result(&self, acc: &Highest) -> Highest {
        acc.clone()
    }

    fn merge(&self, mut a: Highest, mut b: Highest) -> Highest {
        a.on_edges.append(&mut b.on_edges);
        if b.price > a.price {
            a.price = b.price;
            a.at_price = b.at_price;
        } else if b.price == a.price {
            a.at_price.append(&mut b.at_price);
        }
        a
    }
}

/// Partials each shard may hold before sending them on: q7 has one key and
/// a window or two open at a time.
const MAX_PARTIALS: usize = 64;

/// Highest bid: the bids whose price is the highest of their 10 s tumbling
/// window (`B.dateTime BETWEEN window_end - 10 s AND window_end`, both
/// inclusive, as in the SQL definition).
pub fn q7(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let Some(span) = size.checked_add(1) else {
        return Err(file.invalid(
            "params.window_size_ms",
            format!("is {size}, too large for a window"),
        ));
    };
    let highest_of_window = HighestOfWindow { size };
    let highest = bids(file, env, "q7")?
        .map(|b: Bid| HighestBid {
            auction: b.auction,
            price: b.price,
            bidder: b.bidder,
            date_time: b.date_time,
            extra: b.extra,
        })
        .key_by(|_: &HighestBid| 0i64)
        .window(SlidingWindows::of(span, size))
        .aggregate_two_phase(
            highest_of_window,
            MAX_PARTIALS,
            move |_: &i64, window: &TimeWindow, acc: Highest| {
                highest_of_window.results(window, acc)
            },
        )
        .flat_map(|results: Vec<HighestBid>| results);
    crate::jobs::attach_sink(file, &highest);
    Ok(())
}
