//! The Nexmark queries, as registered jobs `nexmark.qN`, with the semantics of
//! the Flink SQL definitions in the Nexmark repository. Each reads the `nexmark`
//! source connector and writes to the job file's sink.
//!
//! So far: q0 (pass-through), q1 (currency conversion), q2 (selection), q3
//! (local item suggestion, a stream join), q4 (average price per category, an
//! upsert stream), q5 (hot items), q7 (highest bid),
//! q8 (monitor new users, a window join), q11 (user sessions) and q12
//! (processing-time windows). The others follow in the
//! Nexmark issue. Records are projected to the fields a query needs before they
//! cross a key exchange.

use serde::Serialize;
use sluice_bench::nexmark::{Bid, Event, NexmarkSource};
use sluice_engine::{Stream, StreamEnv, WatermarkStrategy};

use crate::job_file::{JobFile, JobFileError, SourceSpec};

/// The bids of the job file's `nexmark` source.
fn bids(file: &JobFile, env: &StreamEnv, query: &str) -> Result<Stream<Bid>, JobFileError> {
    let strategy = WatermarkStrategy::bounded_out_of_orderness(file.event_time.out_of_orderness_ms);
    bids_with(file, env, query, strategy)
}

/// The events of the job file's `nexmark` source, with their time as `strategy` says.
fn events_with(
    file: &JobFile,
    env: &StreamEnv,
    query: &str,
    strategy: WatermarkStrategy<Event>,
) -> Result<Stream<Event>, JobFileError> {
    let SourceSpec::Nexmark(config) = &file.source else {
        return Err(file.invalid(
            "source.connector",
            format!("job `nexmark.{query}` reads Nexmark events: expected \"nexmark\""),
        ));
    };
    Ok(env.source(
        NexmarkSource {
            config: config.clone(),
        },
        strategy,
    ))
}

/// The events of the job file's `nexmark` source in event time.
fn events(file: &JobFile, env: &StreamEnv, query: &str) -> Result<Stream<Event>, JobFileError> {
    let strategy = WatermarkStrategy::bounded_out_of_orderness(file.event_time.out_of_orderness_ms);
    events_with(file, env, query, strategy)
}

/// The bids of the job file's `nexmark` source, with their time as `strategy` says.
fn bids_with(
    file: &JobFile,
    env: &StreamEnv,
    query: &str,
    strategy: WatermarkStrategy<Event>,
) -> Result<Stream<Bid>, JobFileError> {
    Ok(
        events_with(file, env, query, strategy)?.flat_map(|event: Event| match event {
            Event::Bid(bid) => Some(bid),
            _ => None,
        }),
    )
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

/// The persons and auctions of the job file's `nexmark` source.
fn persons_and_auctions(
    file: &JobFile,
    env: &StreamEnv,
    query: &str,
) -> Result<
    (
        Stream<sluice_bench::nexmark::Person>,
        Stream<sluice_bench::nexmark::Auction>,
    ),
    JobFileError,
> {
    let events = events(file, env, query)?;
    let persons = events.flat_map(|e: Event| {
        if let Event::Person(p) = e {
            Some(p)
        } else {
            None
        }
    });
    let auctions = events.flat_map(|e: Event| {
        if let Event::Auction(a) = e {
            Some(a)
        } else {
            None
        }
    });
    Ok((persons, auctions))
}

/// q3's output.
#[derive(Debug, Clone, Serialize)]
pub struct LocalItem {
    pub name: String,
    pub city: String,
    pub state: String,
    pub id: i64,
}

/// Joins auctions to their sellers as both arrive (an unbounded inner join).
struct SellerJoin {
    person: sluice_engine::keyed_state::ValueState<i64, (String, String, String)>,
    waiting: sluice_engine::keyed_state::ListState<i64, i64>,
}

type Ctx<'a, O> = sluice_engine::operators::ProcessContext<'a, i64, O>;

impl
    sluice_engine::operators::KeyedCoProcess<
        i64,
        (i64, i64),
        (i64, String, String, String),
        LocalItem,
    > for SellerJoin
{
    fn process_first(&mut self, (_seller, auction): (i64, i64), ctx: &mut Ctx<'_, LocalItem>) {
        match self.person.value(ctx) {
            Some((name, city, state)) => ctx.collect(LocalItem {
                name,
                city,
                state,
                id: auction,
            }),
            None => self.waiting.add(ctx, auction),
        }
    }
    fn process_second(
        &mut self,
        (_id, name, city, state): (i64, String, String, String),
        ctx: &mut Ctx<'_, LocalItem>,
    ) {
        for auction in self.waiting.get(ctx) {
            ctx.collect(LocalItem {
                name: name.clone(),
                city: city.clone(),
                state: state.clone(),
                id: auction,
            });
        }
        self.waiting.clear(ctx);
        self.person.update(ctx, (name, city, state));
    }
}

/// Local item suggestion: auctions of category 10 by sellers in OR, ID or CA.
pub fn q3(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let (persons, auctions) = persons_and_auctions(file, env, "q3")?;
    let sellers = persons
        .filter(|p: &sluice_bench::nexmark::Person| matches!(p.state.as_str(), "OR" | "ID" | "CA"))
        .map(|p: sluice_bench::nexmark::Person| (p.id, p.name, p.city, p.state))
        .key_by(|p: &(i64, String, String, String)| p.0);
    let items = auctions
        .filter(|a: &sluice_bench::nexmark::Auction| a.category == 10)
        .map(|a: sluice_bench::nexmark::Auction| (a.seller, a.id))
        .key_by(|a: &(i64, i64)| a.0)
        .connect(&sellers)
        .process(|state: &mut sluice_state::StateBackend| SellerJoin {
            person: sluice_engine::keyed_state::ValueState::new(state, "q3/person"),
            waiting: sluice_engine::keyed_state::ListState::new(state, "q3/waiting"),
        });
    super::attach_sink(file, &items);
    Ok(())
}

/// q8's output.
#[derive(Debug, Clone, Serialize)]
pub struct NewSeller {
    pub id: i64,
    pub name: String,
    pub starttime: i64,
}

/// Per person and tumbling window: the person's name (if they joined in it)
/// and the auctions they opened in it.
struct WindowJoin {
    size: i64,
    joined: sluice_engine::keyed_state::MapState<i64, i64, String>,
    auctions: sluice_engine::keyed_state::MapState<i64, i64, u64>,
}

impl WindowJoin {
    fn window_start(&self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.size)
    }
}

impl sluice_engine::operators::KeyedCoProcess<i64, (i64, String), (i64, i64), NewSeller>
    for WindowJoin
{
    fn process_first(&mut self, (_id, name): (i64, String), ctx: &mut Ctx<'_, NewSeller>) {
        let start = self.window_start(ctx.timestamp());
        self.joined.put(ctx, start, name);
        ctx.register_event_timer(start + self.size - 1);
    }
    fn process_second(&mut self, (_seller, _auction): (i64, i64), ctx: &mut Ctx<'_, NewSeller>) {
        let start = self.window_start(ctx.timestamp());
        let n = self.auctions.get(ctx, &start).unwrap_or(0);
        self.auctions.put(ctx, start, n + 1);
        ctx.register_event_timer(start + self.size - 1);
    }
    fn on_timer(
        &mut self,
        time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut Ctx<'_, NewSeller>,
    ) {
        let start = time + 1 - self.size;
        let name = self.joined.remove(ctx, &start);
        let count = self.auctions.remove(ctx, &start).unwrap_or(0);
        if let Some(name) = name {
            let id = *ctx.key();
            for _ in 0..count {
                ctx.collect(NewSeller {
                    id,
                    name: name.clone(),
                    starttime: start,
                });
            }
        }
    }
}

/// Monitor new users: persons who opened auctions in the same tumbling window
/// (10 s) in which they joined; one row per such auction.
pub fn q8(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let (persons, auctions) = persons_and_auctions(file, env, "q8")?;
    let people = persons
        .map(|p: sluice_bench::nexmark::Person| (p.id, p.name))
        .key_by(|p: &(i64, String)| p.0);
    let sellers = auctions
        .map(|a: sluice_bench::nexmark::Auction| (a.seller, a.id))
        .key_by(|a: &(i64, i64)| a.0);
    let rows = people
        .connect(&sellers)
        .process(move |state: &mut sluice_state::StateBackend| WindowJoin {
            size,
            joined: sluice_engine::keyed_state::MapState::new(state, "q8/joined"),
            auctions: sluice_engine::keyed_state::MapState::new(state, "q8/auctions"),
        });
    super::attach_sink(file, &rows);
    Ok(())
}

/// q7's output: a bid with the highest price of its window.
#[derive(Debug, Clone, Serialize)]
pub struct HighestBid {
    pub auction: i64,
    pub price: i64,
    pub bidder: i64,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: String,
}

/// A bid projected for q7, with the end of the window it is compared in and
/// whether it belongs to that window (or only touches its end).
type WindowedBid = (i64, bool, i64, i64, i64, i64, String);

/// Per window: the highest price of its bids, the bids at that price, and the
/// bids exactly at its end (which SQL's `BETWEEN` also compares with it).
struct HighestInWindow {
    best: sluice_engine::keyed_state::ValueState<i64, (i64, Vec<HighestBid>)>,
    at_end: sluice_engine::keyed_state::ListState<i64, HighestBid>,
}

impl sluice_engine::operators::KeyedProcess<i64, WindowedBid, HighestBid> for HighestInWindow {
    fn process_element(&mut self, bid: WindowedBid, ctx: &mut Ctx<'_, HighestBid>) {
        let (end, member, auction, price, bidder, date_time, extra) = bid;
        let bid = HighestBid {
            auction,
            price,
            bidder,
            date_time,
            extra,
        };
        // Fire once every bid up to and including `end` has arrived.
        ctx.register_event_timer(end);
        if !member {
            self.at_end.add(ctx, bid);
            return;
        }
        let (max, mut at_max) = self.best.value(ctx).unwrap_or((i64::MIN, Vec::new()));
        if price > max {
            self.best.update(ctx, (price, vec![bid]));
        } else if price == max {
            at_max.push(bid);
            self.best.update(ctx, (max, at_max));
        }
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut Ctx<'_, HighestBid>,
    ) {
        if let Some((max, at_max)) = self.best.value(ctx) {
            let at_end = self.at_end.get(ctx).into_iter().filter(|b| b.price == max);
            for bid in at_max.into_iter().chain(at_end) {
                ctx.collect(bid);
            }
        }
        self.best.clear(ctx);
        self.at_end.clear(ctx);
    }
}

/// Highest bid: the bids whose price is the highest of their 10 s tumbling
/// window (`B.dateTime BETWEEN window_end - 10 s AND window_end`, both
/// inclusive, as in the SQL definition).
pub fn q7(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let windowed = bids(file, env, "q7")?.flat_map(move |b: Bid| {
        let end = b.date_time - b.date_time.rem_euclid(size) + size;
        let member = (
            end,
            true,
            b.auction,
            b.price,
            b.bidder,
            b.date_time,
            b.extra.clone(),
        );
        // A bid at a window's start is also at the end of the window before.
        let boundary = (b.date_time.rem_euclid(size) == 0).then(|| {
            (
                end - size,
                false,
                b.auction,
                b.price,
                b.bidder,
                b.date_time,
                b.extra,
            )
        });
        std::iter::once(member).chain(boundary)
    });
    let highest =
        windowed
            .key_by(|b: &WindowedBid| b.0)
            .process(|state: &mut sluice_state::StateBackend| HighestInWindow {
                best: sluice_engine::keyed_state::ValueState::new(state, "q7/best"),
                at_end: sluice_engine::keyed_state::ListState::new(state, "q7/at_end"),
            });
    super::attach_sink(file, &highest);
    Ok(())
}

/// q12's output: a bidder's bids in a processing-time window.
#[derive(Debug, Clone, Serialize)]
pub struct BidderWindow {
    pub bidder: i64,
    pub bid_count: u64,
    pub window_start: i64,
    pub window_end: i64,
}

/// Bids per bidder in 10 s tumbling windows of processing time.
pub fn q12(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    use sluice_engine::window::{Count, TimeWindow, TumblingWindows};
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let counts = bids_with(file, env, "q12", WatermarkStrategy::processing_time())?
        .map(|b: Bid| b.bidder)
        .key_by(|bidder: &i64| *bidder)
        .window(TumblingWindows::of(size))
        .aggregate(Count, |bidder: &i64, w: &TimeWindow, bid_count: u64| {
            BidderWindow {
                bidder: *bidder,
                bid_count,
                window_start: w.start,
                window_end: w.end,
            }
        });
    super::attach_sink(file, &counts);
    Ok(())
}

/// How long a bid waits for its auction before it is dropped.
const EARLY_BID_HORIZON_MS: i64 = 60_000;

/// An auction's closing price: its highest bid between its start and expiry.
/// Keyed by auction id; bids that arrive before their auction wait for it.
struct ClosingPrice {
    /// (category, start, expires, highest valid price so far)
    auction: sluice_engine::keyed_state::ValueState<i64, (i64, i64, i64, Option<i64>)>,
    early_bids: sluice_engine::keyed_state::ListState<i64, (i64, i64)>,
}

impl
    sluice_engine::operators::KeyedCoProcess<i64, (i64, i64, i64, i64), (i64, i64, i64), (i64, i64)>
    for ClosingPrice
{
    fn process_first(
        &mut self,
        (_id, category, start, expires): (i64, i64, i64, i64),
        ctx: &mut Ctx<'_, (i64, i64)>,
    ) {
        let mut best = None;
        for (time, price) in self.early_bids.get(ctx) {
            if time >= start && time <= expires {
                best = best.max(Some(price));
            }
        }
        self.early_bids.clear(ctx);
        self.auction.update(ctx, (category, start, expires, best));
        // The price is final once no bid inside the auction can arrive.
        ctx.register_event_timer(expires);
    }

    fn process_second(
        &mut self,
        (_auction, price, time): (i64, i64, i64),
        ctx: &mut Ctx<'_, (i64, i64)>,
    ) {
        match self.auction.value(ctx) {
            Some((category, start, expires, best)) => {
                if time >= start && time <= expires && best.is_none_or(|b| price > b) {
                    self.auction
                        .update(ctx, (category, start, expires, Some(price)));
                }
            }
            None => {
                self.early_bids.add(ctx, (time, price));
                ctx.register_event_timer(time.saturating_add(EARLY_BID_HORIZON_MS));
            }
        }
    }

    fn on_timer(
        &mut self,
        time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut Ctx<'_, (i64, i64)>,
    ) {
        match self.auction.value(ctx) {
            Some((category, _, expires, best)) if time == expires => {
                if let Some(price) = best {
                    ctx.collect((category, price));
                }
                self.auction.clear(ctx);
            }
            // The cleanup timer of early bids already folded into their auction.
            Some(_) => {}
            // Bids whose auction never came (ids run at most a few auctions
            // ahead, so a minute of event time is far beyond any real wait).
            None => self.early_bids.clear(ctx),
        }
    }
}

/// q4's output: a category's average closing price so far.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryAverage {
    pub category: i64,
    pub avg: i64,
}

/// Running average per category, emitted on every change (an upsert stream).
struct AveragePerCategory {
    totals: sluice_engine::keyed_state::ValueState<i64, (i64, i64)>,
}

impl sluice_engine::operators::KeyedProcess<i64, (i64, i64), CategoryAverage>
    for AveragePerCategory
{
    fn process_element(
        &mut self,
        (category, price): (i64, i64),
        ctx: &mut Ctx<'_, CategoryAverage>,
    ) {
        let (sum, count) = self.totals.value(ctx).unwrap_or((0, 0));
        let (sum, count) = (sum + price, count + 1);
        self.totals.update(ctx, (sum, count));
        // AVG over BIGINT is a BIGINT in Flink SQL: the quotient, truncated.
        ctx.collect(CategoryAverage {
            category,
            avg: sum / count,
        });
    }
}

/// Average price per category: the average of the closing prices of the
/// auctions in each category, updated as auctions close.
pub fn q4(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let events = events(file, env, "q4")?;
    let auctions = events
        .flat_map(|e: Event| {
            if let Event::Auction(a) = e {
                Some((a.id, a.category, a.date_time, a.expires))
            } else {
                None
            }
        })
        .key_by(|a: &(i64, i64, i64, i64)| a.0);
    let bids = events
        .flat_map(|e: Event| {
            if let Event::Bid(b) = e {
                Some((b.auction, b.price, b.date_time))
            } else {
                None
            }
        })
        .key_by(|b: &(i64, i64, i64)| b.0);
    let closing = auctions
        .connect(&bids)
        .process(|state: &mut sluice_state::StateBackend| ClosingPrice {
            auction: sluice_engine::keyed_state::ValueState::new(state, "q4/auction"),
            early_bids: sluice_engine::keyed_state::ListState::new(state, "q4/early_bids"),
        });
    let averages =
        closing
            .key_by(|c: &(i64, i64)| c.0)
            .process(
                |state: &mut sluice_state::StateBackend| AveragePerCategory {
                    totals: sluice_engine::keyed_state::ValueState::new(state, "q4/totals"),
                },
            );
    super::attach_sink(file, &averages);
    Ok(())
}
