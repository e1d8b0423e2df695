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
