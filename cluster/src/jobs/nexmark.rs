//! The Nexmark queries, as registered jobs `nexmark.qN`, with the semantics of
//! the Flink SQL definitions in the Nexmark repository. Each reads the `nexmark`
//! source connector and writes to the job file's sink.
//!
//! So far: q0 (pass-through), q1 (currency conversion), q2 (selection). The
//! remaining queries follow in the Nexmark issue.

use serde::Serialize;
use sluice_bench::nexmark::{Bid, Event, NexmarkSource};
use sluice_engine::{Stream, StreamEnv, WatermarkStrategy};

use crate::job_file::{JobFile, JobFileError, SourceSpec};

/// The bids of the job file's `nexmark` source.
fn bids(file: &JobFile, env: &StreamEnv, query: &str) -> Result<Stream<Bid>, JobFileError> {
    let SourceSpec::Nexmark(config) = &file.source else {
        return Err(file.invalid(
            "source.connector",
            format!("job `nexmark.{query}` reads Nexmark events: expected \"nexmark\""),
        ));
    };
    let strategy = WatermarkStrategy::bounded_out_of_orderness(file.event_time.out_of_orderness_ms);
    Ok(env
        .source(
            NexmarkSource {
                config: config.clone(),
            },
            strategy,
        )
        .flat_map(|event: Event| match event {
            Event::Bid(bid) => Some(bid),
            _ => None,
        }))
}

/// A bid without its channel and URL (q0 and q1).
#[derive(Debug, Clone, Serialize)]
pub struct BidRow<P> {
    pub auction: i64,
    pub bidder: i64,
    pub price: P,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: String,
}

/// `SELECT auction, bidder, price, dateTime, extra FROM bid`
pub fn q0(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let rows = bids(file, env, "q0")?.map(|b: Bid| BidRow {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        date_time: b.date_time,
        extra: b.extra,
    });
    super::attach_sink(file, &rows);
    Ok(())
}

/// `SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid`
pub fn q1(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let rows = bids(file, env, "q1")?.map(|b: Bid| BidRow {
        auction: b.auction,
        bidder: b.bidder,
        price: dollars_to_euros(b.price),
        date_time: b.date_time,
        extra: b.extra,
    });
    super::attach_sink(file, &rows);
    Ok(())
}

/// q1's conversion.
pub fn dollars_to_euros(price: i64) -> f64 {
    0.908 * price as f64
}

/// q2's output.
#[derive(Debug, Clone, Serialize)]
pub struct AuctionPrice {
    pub auction: i64,
    pub price: i64,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q2Params {
    #[serde(default = "q2_modulus")]
    modulus: i64,
}

fn q2_modulus() -> i64 {
    123
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// `SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0`
pub fn q2(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    let params: Q2Params = file.params()?;
    if params.modulus <= 0 {
        return Err(file.invalid(
            "params.modulus",
            format!("is {}, expected a positive number", params.modulus),
        ));
    }
    let modulus = params.modulus;
    let rows = bids(file, env, "q2")?
        .filter(move |b: &Bid| b.auction % modulus == 0)
        .map(|b: Bid| AuctionPrice {
            auction: b.auction,
            price: b.price,
        });
    super::attach_sink(file, &rows);
    Ok(())
}

/// Window sizes of the windowed queries, overridable in `[params]`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowParams {
    window_size_ms: Option<i64>,
    window_slide_ms: Option<i64>,
    session_gap_ms: Option<i64>,
}

impl WindowParams {
    fn positive(
        file: &JobFile,
        field: &str,
        value: Option<i64>,
        default: i64,
    ) -> Result<i64, JobFileError> {
        match value.unwrap_or(default) {
            v if v > 0 => Ok(v),
            v => Err(file.invalid(
                &format!("params.{field}"),
                format!("is {v}, expected a positive number of ms"),
            )),
        }
    }
}

/// q5's output: an auction with the most bids in a sliding window.
#[derive(Debug, Clone, Serialize)]
pub struct HotItem {
    pub auction: i64,
    pub num: u64,
}

/// Per window: the highest count and the auctions that reached it.
struct HottestInWindow {
    best: sluice_engine::keyed_state::ValueState<i64, (u64, Vec<i64>)>,
}

impl sluice_engine::operators::KeyedProcess<i64, (i64, i64, u64), HotItem> for HottestInWindow {
    fn process_element(
        &mut self,
        (window_end, auction, num): (i64, i64, u64),
        ctx: &mut sluice_engine::operators::ProcessContext<'_, i64, HotItem>,
    ) {
        let (max, mut auctions) = self.best.value(ctx).unwrap_or((0, Vec::new()));
        if max == 0 {
            // Every count of this window arrives before the watermark passes
            // its end (counts carry the window's last timestamp).
            ctx.register_event_timer(window_end - 1);
        }
        if num > max {
            auctions.clear();
        }
        if num >= max {
            auctions.push(auction);
            self.best.update(ctx, (num, auctions));
        }
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut sluice_engine::operators::ProcessContext<'_, i64, HotItem>,
    ) {
        if let Some((num, auctions)) = self.best.value(ctx) {
            for auction in auctions {
                ctx.collect(HotItem { auction, num });
            }
            self.best.clear(ctx);
        }
    }
}

/// Hot items: the auctions with the most bids in each sliding window (10 s
/// every 2 s); ties all count.
pub fn q5(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    use sluice_engine::window::{Count, SlidingWindows, TimeWindow};
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let slide = WindowParams::positive(file, "window_slide_ms", p.window_slide_ms, 2_000)?;
    if slide > size {
        return Err(file.invalid(
            "params.window_slide_ms",
            format!("is {slide}, expected at most window_size_ms ({size})"),
        ));
    }
    // Only the auction crosses the exchange (what a SQL planner would project).
    let counts = bids(file, env, "q5")?
        .map(|b: Bid| b.auction)
        .key_by(|auction: &i64| *auction)
        .window(SlidingWindows::of(size, slide))
        .aggregate(Count, |auction: &i64, w: &TimeWindow, num: u64| {
            (w.end, *auction, num)
        });
    let hottest = counts.key_by(|c: &(i64, i64, u64)| c.0).process(
        |state: &mut sluice_state::StateBackend| HottestInWindow {
            best: sluice_engine::keyed_state::ValueState::new(state, "q5/best"),
        },
    );
    super::attach_sink(file, &hottest);
    Ok(())
}

/// q11's output: a bidder's session.
#[derive(Debug, Clone, Serialize)]
pub struct BidderSession {
    pub bidder: i64,
    pub bid_count: u64,
    pub starttime: i64,
    pub endtime: i64,
}

/// User sessions: bids per bidder in session windows with a 10 s gap.
pub fn q11(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    use sluice_engine::window::{Count, SessionWindows, TimeWindow};
    let p: WindowParams = file.params()?;
    let gap = WindowParams::positive(file, "session_gap_ms", p.session_gap_ms, 10_000)?;
    let sessions = bids(file, env, "q11")?
        .key_by(|b: &Bid| b.bidder)
        .window(SessionWindows::with_gap(gap))
        .aggregate(Count, |bidder: &i64, w: &TimeWindow, bid_count: u64| {
            BidderSession {
                bidder: *bidder,
                bid_count,
                starttime: w.start,
                endtime: w.end,
            }
        });
    super::attach_sink(file, &sessions);
    Ok(())
}
