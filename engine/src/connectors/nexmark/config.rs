//! Parameters of the Nexmark generator, with the reference defaults
//! (`NexmarkConfiguration`).

/// Ids start here so that queries find matches even on small data sets.
pub const FIRST_AUCTION_ID: i64 = 1000;
pub const FIRST_PERSON_ID: i64 = 1000;
pub const FIRST_CATEGORY_ID: i64 = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkConfig {
    pub seed: u64,
    /// Events in total; `None`: unbounded.
    pub events: Option<u64>,
    /// Event-time rate: events per second of event time (all generators).
    pub first_event_rate: u64,
    /// Event time of event 0, ms since the epoch.
    pub base_time_ms: i64,
    pub person_proportion: u64,
    pub auction_proportion: u64,
    pub bid_proportion: u64,
    pub avg_person_byte_size: usize,
    pub avg_auction_byte_size: usize,
    pub avg_bid_byte_size: usize,
    pub hot_auction_ratio: u32,
    pub hot_sellers_ratio: u32,
    pub hot_bidders_ratio: u32,
    pub num_in_flight_auctions: u64,
    pub num_active_people: u64,
    pub num_categories: u32,
    /// Probability that an event is delayed (out of order) ...
    pub prob_delayed_event: f64,
    /// ... by up to this long.
    pub occasional_delay_ms: i64,
    /// Partitions (each a slice of the event numbers: `i % partitions`).
    pub partitions: u32,
    /// Wall-clock release rate over all partitions (events/s); `None`: as fast
    /// as possible.
    pub rate: Option<u64>,
    /// Release each event when the wall clock (Unix ms) reaches its event time
    /// instead of as fast as possible or at `rate`: with `base_time_ms` set to
    /// a moment just ahead and `first_event_rate` to the offered rate, events
    /// are offered on a fixed wall-clock schedule in 1 ms ticks, and a result's
    /// timestamp tells when what it depends on was offered (latency mode).
    pub release_at_event_time: bool,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            seed: 0,
            events: Some(1_000_000),
            first_event_rate: 10_000_000,
            base_time_ms: 1_700_000_000_000,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            avg_person_byte_size: 200,
            avg_auction_byte_size: 500,
            avg_bid_byte_size: 100,
            hot_auction_ratio: 2,
            hot_sellers_ratio: 4,
            hot_bidders_ratio: 4,
            num_in_flight_auctions: 100,
            num_active_people: 1000,
            num_categories: 5,
            prob_delayed_event: 0.1,
            occasional_delay_ms: 3_000,
            partitions: 8,
            rate: None,
            release_at_event_time: false,
        }
    }
}

impl NexmarkConfig {
    pub fn total_proportion(&self) -> u64 {
        self.person_proportion + self.auction_proportion + self.bid_proportion
    }

    /// Event time of event number `n` before any delay: the reference's
    /// `baseTime + n · interEventDelayUs / 1000` with one generator.
    pub fn timestamp_for_event(&self, n: u64) -> i64 {
        self.base_time_ms + ((n as u128 * 1000) / self.first_event_rate as u128) as i64
    }

    /// Checks the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.first_event_rate == 0 {
            return Err("first_event_rate is 0, expected at least 1".into());
        }
        if self.person_proportion == 0 || self.auction_proportion == 0 || self.bid_proportion == 0 {
            return Err("person, auction and bid proportions must all be at least 1".into());
        }
        for (name, ratio) in [
            ("hot_auction_ratio", self.hot_auction_ratio),
            ("hot_sellers_ratio", self.hot_sellers_ratio),
            ("hot_bidders_ratio", self.hot_bidders_ratio),
            ("num_categories", self.num_categories),
            ("partitions", self.partitions),
        ] {
            if ratio == 0 {
                return Err(format!("{name} is 0, expected at least 1"));
            }
        }
        if !(0.0..=1.0).contains(&self.prob_delayed_event) {
            return Err(format!(
                "prob_delayed_event is {}, expected 0..=1",
                self.prob_delayed_event
            ));
        }
        if self.occasional_delay_ms < 0 {
            return Err(format!(
                "occasional_delay_ms is {}, expected at least 0",
                self.occasional_delay_ms
            ));
        }
        if self.rate == Some(0) {
            return Err("rate is 0, expected at least 1 (or no rate)".into());
        }
        Ok(())
    }
}
