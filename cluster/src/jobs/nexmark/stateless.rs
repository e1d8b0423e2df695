//! Nexmark q0 (pass-through), q1 (currency conversion) and q2 (selection):
//! stateless queries over bids.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{bids, NoParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// A bid without its channel and URL (q0 and q1).
#[derive(Debug, Clone, Serialize)]
pub struct BidRow<P> {
    pub auction: i64,
    pub bidder: i64,
    pub price: P,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: SharedStr,
}

/// `SELECT auction, bidder, price, dateTime, extra FROM bid`
pub fn q0(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let rows = bids(file, env, "q0")?.map(|b: Bid| BidRow {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        date_time: b.date_time,
        extra: b.extra,
    });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}

/// `SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid`
pub fn q1(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let rows = bids(file, env, "q1")?.map(|b: Bid| BidRow {
        auction: b.auction,
        bidder: b.bidder,
        price: dollars_to_euros(b.price),
        date_time: b.date_time,
        extra: b.extra,
    });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}

/// q1's conversion, `0.908 * price`: in Flink SQL an exact DECIMAL(23, 3).
/// Returned as the double nearest to that exact value (the thousandths are
/// exact in an `f64` below 2^53, and IEEE division rounds correctly), so it
/// prints as the decimal itself; `0.908 * price as f64` would round twice
/// and print e.g. 2.7239999999999998 for a price of 3.
pub fn dollars_to_euros(price: i64) -> f64 {
    (i128::from(price) * 908) as f64 / 1000.0
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

/// `SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0`
pub fn q2(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
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
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
