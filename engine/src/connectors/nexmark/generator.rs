//! The Nexmark event generator.
//!
//! Event number `n` decides everything, as in the reference: `n % 50` picks the
//! kind (persons : auctions : bids = 1 : 3 : 46 by default), the ids come from
//! `n` (so a bid refers to persons and auctions that exist or are about to),
//! event time is `base_time + n / first_event_rate`, and the random fields come
//! from an [`EventRng`] seeded by `(seed, n)`. A fraction `prob_delayed_event`
//! of the events is delayed by up to `occasional_delay_ms` (out of order).
//!
//! Deliberate differences from the reference: randomness is seeded per event
//! (the reference uses an unseeded `java.util.Random`, so runs differ); the hot
//! URLs and channel URLs are derived from the seed instead of process-random;
//! and a bid's bidder gets `FIRST_PERSON_ID` added once (the reference adds it
//! twice, so its hot bidders never match a person).
//!
//! Building an event allocates nothing for a bid or a person: short strings
//! are written into stack buffers and stored inline in their [`SharedStr`],
//! and URLs and the padding (`extra`, a cut of one of the pre-drawn padding
//! strings) are interned text shared by every generator of the same seed
//! (`SharedStr::interned`: no allocation, no reference count).
//! An auction's description longer than a `SharedStr` holds inline is the one
//! allocation left (6 % of the events by default).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use strength_reduce::StrengthReducedU64;

use crate::connectors::{Source, SourcePoll, SourceReader};
use crate::{Rec, SharedStr, SourceError};

use super::config::{FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID};
use super::event_rng::EventRng;
use super::{Auction, Bid, Event, NexmarkConfig, NumericBid, Person};

/// Persons and auctions a bid may name beyond the last one generated.
const ID_LEAD: u64 = 10;
/// Hot sellers, bidders and auctions are the first of each batch of this many.
const HOT_BATCH: i64 = 100;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const CHANNELS: u32 = 10_000;
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const MIN_STRING_LENGTH: u32 = 3;
/// Pre-drawn padding strings per generator.
const PADDING_STRINGS: u64 = 64;
/// The longest random string drawn (`next_string`'s `max_length`).
const LONGEST_RANDOM_STRING: usize = 100;

/// Generates Nexmark events by number; see the module docs.
#[derive(Debug, Clone)]
pub struct NexmarkGenerator {
    config: NexmarkConfig,
    hot_urls: [SharedStr; 4],
    /// Channel names and URLs, filled on first use (deterministic contents).
    channels: Vec<Option<(SharedStr, SharedStr)>>,
    /// Random letters the padding of events is cut from (drawn from the seed).
    padding: Vec<SharedStr>,
    /// The cycle of kinds (`total_proportion`) and `first_event_rate` as
    /// divisors by multiplication: every event divides by both, and the
    /// hardware divisions (the event time's of 128 bits) cost 5–9 % of the
    /// generator's throughput.
    cycle: StrengthReducedU64,
    event_rate: StrengthReducedU64,
}

/// Where event `n` falls in the cycle of kinds: `n / total_proportion` and
/// `n % total_proportion`, computed once per event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Place {
    pub(super) epoch: u64,
    pub(super) offset: u64,
}

/// The kind of an event, by its place in the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Person,
    Auction,
    Bid,
}

/// A string of up to `N` bytes built on the stack (`fmt::Write` fails
/// beyond that, which the generator's fixed formats never reach).
struct StackText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    fn new() -> Self {
        StackText {
            bytes: [0; N],
            len: 0,
        }
    }

    fn push_ascii(&mut self, byte: u8) {
        assert!(byte.is_ascii());
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn as_str(&self) -> &str {
        let written = &self.bytes[..self.len];
        debug_assert!(std::str::from_utf8(written).is_ok());
        // SAFETY: only `push_ascii` (ASCII bytes, asserted) and `write_str`
        // (whole `&str`s, appended at the end) write, so the written prefix
        // is a concatenation of valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(written) }
    }
}

impl<const N: usize> std::fmt::Write for StackText<N> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The reference's random string before it is trimmed: letters with an
/// occasional `space`.
fn draw_string(rng: &mut EventRng, max_length: u32, space: u8) -> StackText<LONGEST_RANDOM_STRING> {
    debug_assert!(max_length as usize <= LONGEST_RANDOM_STRING);
    let len = MIN_STRING_LENGTH + rng.next_int(max_length - MIN_STRING_LENGTH);
    let mut drawn = StackText::new();
    for _ in 0..len {
        if rng.next_int(13) == 0 {
            drawn.push_ascii(space);
        } else {
            drawn.push_ascii(b'a' + rng.next_int(26) as u8);
        }
    }
    drawn
}

/// The reference's random string (trimmed).
fn next_string(rng: &mut EventRng, max_length: u32, space: u8) -> SharedStr {
    SharedStr::copy_of(draw_string(rng, max_length, space).as_str().trim())
}

/// `length` random lowercase letters, eight from each 64-bit draw (each byte
/// scaled into `0..26`): the padding of every event goes through here, so it
/// avoids a draw per letter.
fn next_exact_string(rng: &mut EventRng, length: usize) -> String {
    let mut letters = Vec::with_capacity(length + 8);
    while letters.len() < length {
        let bytes = rng.next_u64().to_le_bytes();
        letters.extend(bytes.map(|b| b'a' + ((b as u16 * 26) >> 8) as u8));
    }
    letters.truncate(length);
    String::from_utf8(letters).expect("ASCII letters")
}

/// Padding so that `current_size + padding` averages `average_size`: the
/// reference's length rule, with the letters taken from one of the generator's
/// pre-drawn padding strings (copying is ~10× cheaper than drawing letters, and
/// nothing reads the padding's content).
fn next_extra(
    rng: &mut EventRng,
    padding: &[SharedStr],
    current_size: usize,
    average_size: usize,
) -> SharedStr {
    if current_size > average_size {
        return SharedStr::new();
    }
    let desired = average_size - current_size;
    let delta = fifth_rounded(desired);
    let size = desired - delta
        + if delta == 0 {
            0
        } else {
            rng.next_int(2 * delta as u32) as usize
        };
    let source = &padding[rng.next_int(padding.len() as u32) as usize];
    source.slice(0..size.min(source.len()))
}

/// The reference's `round(desired * 0.2)` in integers: `desired / 5` has a
/// fraction of 0, .2, .4, .6 or .8, never near a half, so the float product's
/// rounding error cannot change where it rounds (and a libm `round` call
/// per event is saved).
pub(super) fn fifth_rounded(desired: usize) -> usize {
    (desired + 2) / 5
}

/// A price in cents, log-uniform over 1 to 10⁶ dollars (the reference's rule).
fn next_price(rng: &mut EventRng) -> i64 {
    price_of_draw(rng.next_double())
}

/// The reference's price for the uniform draw `u`: `round(10^(6u) * 100)`
/// as `10f64.powf(6u)` computes it, to the cent. `powf` and the libm
/// `round` were a quarter of the generator's time; `exp2` is several times
/// cheaper, and its result is within 1e-14 relative (1e-6 cents at the
/// largest price) of `powf`'s, so the two round to the same cent unless a
/// half cent lies within 1e-4 of it — then (once in ~5,000 draws) `powf`
/// decides, and the prices are exactly the reference formula's.
pub(super) fn price_of_draw(u: f64) -> i64 {
    let exponent = u * 6.0;
    let cents = (exponent * std::f64::consts::LOG2_10).exp2() * 100.0;
    let whole = cents as i64;
    let fraction = cents - whole as f64;
    if (fraction - 0.5).abs() > 1e-4 {
        whole + i64::from(fraction > 0.5)
    } else {
        (10f64.powf(exponent) * 100.0).round() as i64
    }
}

fn base_url(rng: &mut EventRng) -> String {
    format!(
        "https://www.nexmark.com/{}/{}/{}/item.htm?query=1",
        next_string(rng, 5, b'_'),
        next_string(rng, 5, b'_'),
        next_string(rng, 5, b'_')
    )
}

impl NexmarkGenerator {
    pub fn new(config: NexmarkConfig) -> Self {
        let hot_urls = std::array::from_fn(|i| {
            SharedStr::interned(&base_url(&mut EventRng::new(
                config.seed,
                u64::MAX - i as u64,
            )))
        });
        let longest = [
            config.avg_person_byte_size,
            config.avg_auction_byte_size,
            config.avg_bid_byte_size,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
            * 6
            / 5
            + 1;
        let padding = (0..PADDING_STRINGS)
            .map(|i| {
                SharedStr::interned(&next_exact_string(
                    &mut EventRng::new(config.seed, u64::MAX - 1_000_000 - i),
                    longest,
                ))
            })
            .collect();
        // `validate` refuses zero proportions and rates; a generator of an
        // unvalidated configuration divides by one instead of panicking.
        let cycle = StrengthReducedU64::new(config.total_proportion().max(1));
        let event_rate = StrengthReducedU64::new(config.first_event_rate.max(1));
        NexmarkGenerator {
            config,
            hot_urls,
            channels: vec![None; CHANNELS as usize],
            padding,
            cycle,
            event_rate,
        }
    }

    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    fn total(&self) -> u64 {
        self.config.total_proportion()
    }

    pub(super) fn place(&self, n: u64) -> Place {
        let (epoch, offset) = StrengthReducedU64::div_rem(n, self.cycle);
        Place { epoch, offset }
    }

    fn kind(&self, place: Place) -> Kind {
        let c = &self.config;
        if place.offset < c.person_proportion {
            Kind::Person
        } else if place.offset < c.person_proportion + c.auction_proportion {
            Kind::Auction
        } else {
            Kind::Bid
        }
    }

    /// [`NexmarkConfig::timestamp_for_event`], dividing by multiplication
    /// while `n · 1000` fits 64 bits (every event number below 1.8 · 10¹⁶).
    pub(super) fn timestamp_for_event(&self, n: u64) -> i64 {
        match n.checked_mul(1000) {
            Some(scaled) => self.config.base_time_ms + (scaled / self.event_rate) as i64,
            None => self.config.timestamp_for_event(n),
        }
    }

    /// The last person id (base 0) at the event at `place`; the current one
    /// if that event is a person.
    fn last_base0_person_id(&self, place: Place) -> i64 {
        let offset = place.offset.min(self.config.person_proportion - 1);
        (place.epoch * self.config.person_proportion + offset) as i64
    }

    /// The last auction id (base 0) at the event at `place`; the current one
    /// if that event is an auction.
    fn last_base0_auction_id(&self, place: Place) -> i64 {
        let c = &self.config;
        let (mut epoch, mut offset) = (place.epoch as i64, place.offset as i64);
        let (persons, auctions) = (c.person_proportion as i64, c.auction_proportion as i64);
        if offset < persons {
            epoch -= 1;
            offset = auctions - 1;
        } else if offset >= persons + auctions {
            offset = auctions - 1;
        } else {
            offset -= persons;
        }
        epoch * auctions + offset
    }

    /// A random active person, or one of the next few.
    fn next_base0_person_id(&self, place: Place, rng: &mut EventRng) -> i64 {
        let people = self.last_base0_person_id(place) as u64 + 1;
        let active = people.min(self.config.num_active_people);
        (people - active + rng.next_long(active + ID_LEAD)) as i64
    }

    /// A random auction likely still in flight, or one of the next few.
    fn next_base0_auction_id(&self, place: Place, rng: &mut EventRng) -> i64 {
        let last = self.last_base0_auction_id(place);
        let min = (last - self.config.num_in_flight_auctions as i64).max(0);
        min + rng.next_long((last - min + 1) as u64 + ID_LEAD) as i64
    }

    fn person(&self, place: Place, ts: i64, rng: &mut EventRng) -> Person {
        // The longest name, e-mail address and card number fit in 32 bytes.
        // Written piece by piece: `write!`'s formatting machinery took 2–3 %
        // of the generator's time for 2 % of its events.
        let mut name = StackText::<32>::new();
        let _ = name.write_str(FIRST_NAMES[rng.next_int(FIRST_NAMES.len() as u32) as usize]);
        name.push_ascii(b' ');
        let _ = name.write_str(LAST_NAMES[rng.next_int(LAST_NAMES.len() as u32) as usize]);
        let mut email_address = StackText::<32>::new();
        let user = draw_string(rng, 7, b' ');
        let domain = draw_string(rng, 5, b' ');
        let _ = email_address.write_str(user.as_str().trim());
        email_address.push_ascii(b'@');
        let _ = email_address.write_str(domain.as_str().trim());
        let _ = email_address.write_str(".com");
        let mut credit_card = StackText::<32>::new();
        for i in 0..4 {
            if i > 0 {
                credit_card.push_ascii(b' ');
            }
            // `{:04}` of a number below 10,000.
            let group = rng.next_int(10_000);
            for divisor in [1000, 100, 10, 1] {
                credit_card.push_ascii(b'0' + (group / divisor % 10) as u8);
            }
        }
        let (name, email_address, credit_card) = (
            SharedStr::copy_of(name.as_str()),
            SharedStr::copy_of(email_address.as_str()),
            SharedStr::copy_of(credit_card.as_str()),
        );
        let city = SharedStr::from_static(US_CITIES[rng.next_int(US_CITIES.len() as u32) as usize]);
        let state =
            SharedStr::from_static(US_STATES[rng.next_int(US_STATES.len() as u32) as usize]);
        let size =
            8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
        let extra = next_extra(rng, &self.padding, size, self.config.avg_person_byte_size);
        Person {
            id: self.last_base0_person_id(place) + FIRST_PERSON_ID,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: ts,
            extra,
        }
    }

    fn auction(&self, n: u64, place: Place, ts: i64, rng: &mut EventRng) -> Auction {
        let c = &self.config;
        let seller = if rng.next_int(c.hot_sellers_ratio) > 0 {
            (self.last_base0_person_id(place) / HOT_BATCH) * HOT_BATCH
        } else {
            self.next_base0_person_id(place, rng)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + rng.next_int(c.num_categories) as i64;
        let initial_bid = next_price(rng);
        // Auctions last on average until `num_in_flight_auctions` more exist.
        let events_for_auctions = c.num_in_flight_auctions * self.total() / c.auction_proportion;
        let horizon_ms = self.timestamp_for_event(n + events_for_auctions) - ts;
        let expires = ts + 1 + rng.next_long((horizon_ms * 2).max(1) as u64) as i64;
        let item_name = next_string(rng, 20, b' ');
        let description = next_string(rng, 100, b' ');
        let reserve = initial_bid + next_price(rng);
        let size = 8 + item_name.len() + description.len() + 8 * 5;
        let extra = next_extra(rng, &self.padding, size, c.avg_auction_byte_size);
        Auction {
            id: self.last_base0_auction_id(place) + FIRST_AUCTION_ID,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time: ts,
            expires,
            seller,
            category,
            extra,
        }
    }

    fn channel(&mut self, channel: u32) -> (SharedStr, SharedStr) {
        let seed = self.config.seed;
        self.channels[channel as usize]
            .get_or_insert_with(|| {
                let mut rng = EventRng::new(seed, u64::MAX - 4 - channel as u64);
                let mut url = base_url(&mut rng);
                if rng.next_int(10) > 0 {
                    url.push_str(&format!(
                        "&channel_id={}",
                        (channel as i32).reverse_bits().unsigned_abs()
                    ));
                }
                (
                    SharedStr::from_string(format!("channel-{channel}")),
                    SharedStr::interned(&url),
                )
            })
            .clone()
    }

    #[inline]
    fn bid(&mut self, place: Place, ts: i64, rng: &mut EventRng) -> Bid {
        let (auction, bidder) = self.bid_ids(place, rng);
        let price = next_price(rng);
        let (channel, url) = if rng.next_int(2) > 0 {
            let i = rng.next_int(HOT_CHANNELS.len() as u32) as usize;
            (
                SharedStr::from_static(HOT_CHANNELS[i]),
                self.hot_urls[i].clone(),
            )
        } else {
            self.channel(rng.next_int(CHANNELS))
        };
        let extra = next_extra(rng, &self.padding, 32, self.config.avg_bid_byte_size);
        Bid {
            auction,
            bidder,
            price,
            channel,
            url,
            date_time: ts,
            extra,
        }
    }

    /// The numeric fields of event `n` if it is a bid: the same values as
    /// [`Self::event`] gives (they are drawn before the strings), without
    /// making the strings.
    pub fn numeric_bid(&self, n: u64) -> Option<NumericBid> {
        let mut rng = EventRng::new(self.config.seed, n);
        let ts = self.event_time(n, &mut rng);
        let place = self.place(n);
        if self.kind(place) != Kind::Bid {
            return None;
        }
        let (auction, bidder) = self.bid_ids(place, &mut rng);
        Some(NumericBid {
            auction,
            bidder,
            price: next_price(&mut rng),
            date_time: ts,
        })
    }

    /// A bid's auction and bidder ids: the first draws of a bid.
    fn bid_ids(&self, place: Place, rng: &mut EventRng) -> (i64, i64) {
        let c = &self.config;
        let auction = if rng.next_int(c.hot_auction_ratio) > 0 {
            (self.last_base0_auction_id(place) / HOT_BATCH) * HOT_BATCH
        } else {
            self.next_base0_auction_id(place, rng)
        } + FIRST_AUCTION_ID;
        let bidder = if rng.next_int(c.hot_bidders_ratio) > 0 {
            (self.last_base0_person_id(place) / HOT_BATCH) * HOT_BATCH + 1
        } else {
            self.next_base0_person_id(place, rng)
        } + FIRST_PERSON_ID;
        (auction, bidder)
    }

    /// Event number `n`: a pure function of the seed and `n`.
    pub fn event(&mut self, n: u64) -> Event {
        let mut rng = EventRng::new(self.config.seed, n);
        let ts = self.event_time(n, &mut rng);
        let place = self.place(n);
        match self.kind(place) {
            Kind::Person => Event::Person(self.person(place, ts, &mut rng)),
            Kind::Auction => Event::Auction(self.auction(n, place, ts, &mut rng)),
            Kind::Bid => Event::Bid(self.bid(place, ts, &mut rng)),
        }
    }

    /// Appends event number `n` (the same event as [`Self::event`]) to a
    /// batch, stamped with its event time. A bid, most events, is built
    /// where it is stored: returning the 168-byte `Event` and moving it into
    /// the batch read back what had just been written (two copies, a fifth
    /// of the source's time).
    pub fn push_event(&mut self, n: u64, out: &mut Vec<Rec<Event>>) {
        let mut rng = EventRng::new(self.config.seed, n);
        let ts = self.event_time(n, &mut rng);
        let place = self.place(n);
        let value = match self.kind(place) {
            Kind::Person => Event::Person(self.person(place, ts, &mut rng)),
            Kind::Auction => Event::Auction(self.auction(n, place, ts, &mut rng)),
            Kind::Bid => {
                out.reserve(1);
                let bid = self.bid(place, ts, &mut rng);
                let len = out.len();
                // SAFETY: `reserve(1)` made room for one record at `len`; it
                // is written whole before the length covers it.
                unsafe {
                    out.as_mut_ptr().add(len).write(Rec {
                        ts,
                        value: Event::Bid(bid),
                    });
                    out.set_len(len + 1);
                }
                return;
            }
        };
        out.push(Rec { ts, value });
    }

    /// Event `n`'s time: on time, or (the first draws of every event)
    /// delayed by up to `occasional_delay_ms`.
    fn event_time(&self, n: u64, rng: &mut EventRng) -> i64 {
        let mut ts = self.timestamp_for_event(n);
        if rng.next_double() < self.config.prob_delayed_event && self.config.occasional_delay_ms > 0
        {
            ts -= 1 + rng.next_long(self.config.occasional_delay_ms as u64) as i64;
        }
        ts
    }
}

/// Nanoseconds since the Unix epoch by the system clock (the clock the
/// engine's processing time and the latency sink read too).
pub fn unix_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// The generator as a partitioned source: partition `p` of `P` produces the
/// events `n ≡ p (mod P)` in increasing `n`.
#[derive(Debug, Clone)]
pub struct NexmarkSource {
    pub config: NexmarkConfig,
}

struct NexmarkReader {
    generator: NexmarkGenerator,
    next: u64,
    step: u64,
    produced: u64,
    /// When pacing began, and the events produced by then (a restored
    /// reader paces from its restored position).
    started: Option<(Instant, u64)>,
    /// When a paced reader's next event is due.
    ready_at: Option<Instant>,
}

impl SourceReader<Event> for NexmarkReader {
    fn poll(&mut self, out: &mut Vec<Rec<Event>>, max: usize) -> Result<SourcePoll, SourceError> {
        let config = self.generator.config();
        let (events, rate) = (config.events, config.rate);
        let mut allowed = max as u64;
        self.ready_at = None;
        if config.release_at_event_time {
            // Events whose time has come, in 1 ms ticks of the wall clock.
            let now_ms = (unix_nanos() / 1_000_000) as i64;
            let mut due = 0;
            let mut n = self.next;
            while due < allowed
                && events.is_none_or(|total| n < total)
                && config.timestamp_for_event(n) <= now_ms
            {
                due += 1;
                n += self.step;
            }
            if due == 0 && events.is_none_or(|total| n < total) {
                let wait_ns = config.timestamp_for_event(n) as i128 * 1_000_000 - unix_nanos();
                self.ready_at = Some(Instant::now() + Duration::from_nanos(wait_ns.max(0) as u64));
                return Ok(SourcePoll::Pending);
            }
            allowed = due;
        } else if let Some(rate) = rate {
            let produced = self.produced;
            let (started, base) = *self
                .started
                .get_or_insert_with(|| (Instant::now(), produced));
            let per_partition = rate as f64 / self.step as f64;
            let due = (started.elapsed().as_secs_f64() * per_partition) as u64 + 1;
            allowed = allowed.min(due.saturating_sub(self.produced - base));
            if allowed == 0 {
                return Ok(SourcePoll::Pending);
            }
        }
        for _ in 0..allowed {
            if events.is_some_and(|total| self.next >= total) {
                return Ok(SourcePoll::End);
            }
            self.generator.push_event(self.next, out);
            self.next += self.step;
            self.produced += 1;
        }
        Ok(if events.is_some_and(|total| self.next >= total) {
            SourcePoll::End
        } else {
            SourcePoll::Ready
        })
    }

    fn position(&self) -> u64 {
        self.produced
    }

    fn seek(&mut self, position: u64) -> Result<(), SourceError> {
        // `next` starts at the partition's first event; each produced event
        // moves it one step.
        self.next += position.saturating_sub(self.produced) * self.step;
        self.produced = position;
        Ok(())
    }

    fn ready_at(&self) -> Option<Instant> {
        self.ready_at
    }
}

impl Source<Event> for NexmarkSource {
    fn partitions(&self) -> u32 {
        self.config.partitions
    }

    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<Event>>, SourceError> {
        Ok(Box::new(NexmarkReader {
            generator: NexmarkGenerator::new(self.config.clone()),
            next: partition as u64,
            step: self.config.partitions as u64,
            produced: 0,
            started: None,
            ready_at: None,
        }))
    }
}

/// The numeric bids of the generator as a partitioned source: partition `p`
/// of `P` looks at the events `n ≡ p (mod P)` and produces those that are bids.
#[derive(Debug, Clone)]
pub struct NumericBidSource {
    pub config: NexmarkConfig,
}

struct NumericBidReader {
    generator: NexmarkGenerator,
    next: u64,
    step: u64,
}

impl SourceReader<NumericBid> for NumericBidReader {
    fn poll(
        &mut self,
        out: &mut Vec<Rec<NumericBid>>,
        max: usize,
    ) -> Result<SourcePoll, SourceError> {
        let end = self.generator.config().events;
        let mut looked = 0;
        while looked < max {
            if end.is_some_and(|total| self.next >= total) {
                return Ok(SourcePoll::End);
            }
            if let Some(bid) = self.generator.numeric_bid(self.next) {
                out.push(Rec {
                    ts: bid.date_time,
                    value: bid,
                });
            }
            self.next += self.step;
            looked += 1;
        }
        Ok(if end.is_some_and(|total| self.next >= total) {
            SourcePoll::End
        } else {
            SourcePoll::Ready
        })
    }

    fn position(&self) -> u64 {
        self.next
    }

    fn seek(&mut self, position: u64) -> Result<(), SourceError> {
        if position % self.step != self.next % self.step {
            return Err(SourceError::BadRecord {
                location: format!("numeric bids, partition {}", self.next % self.step),
                reason: format!(
                    "restored position {position} is not one of this partition's events"
                ),
            });
        }
        self.next = position;
        Ok(())
    }
}

impl Source<NumericBid> for NumericBidSource {
    fn partitions(&self) -> u32 {
        self.config.partitions
    }

    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<NumericBid>>, SourceError> {
        Ok(Box::new(NumericBidReader {
            generator: NexmarkGenerator::new(self.config.clone()),
            next: partition as u64,
            step: self.config.partitions as u64,
        }))
    }
}
