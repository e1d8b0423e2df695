//! The Nexmark benchmark: its event model and a generator that follows the
//! reference Nexmark generator (github.com/nexmark/nexmark, `NexmarkGenerator`,
//! `GeneratorConfig` and the person, auction and bid generators), with one
//! difference of principle: every event is a pure function of `(seed, event
//! number)`, so any shard can generate its own slice with no coordination and
//! every run with the same seed produces the same events.

mod config;
mod event_json;
mod event_rng;
mod generator;
mod model;

pub use config::NexmarkConfig;
pub use generator::{unix_nanos, NexmarkGenerator, NexmarkSource, NumericBidSource};
pub use model::{Auction, Bid, Event, NumericBid, Person};

#[cfg(test)]
mod tests;
