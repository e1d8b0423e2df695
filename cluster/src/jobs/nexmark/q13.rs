//! Nexmark q13, bounded side input join: each bid enriched with the value its
//! `auction mod 10000` has in a side table read from a CSV file (`key,value`
//! per line), as Flink's lookup join `FOR SYSTEM_TIME AS OF` processing time
//! does with a bounded table. Bids whose key the table lacks are dropped
//! (an inner join).
//!
//! The table is read once when the job is built and shared read-only by every
//! shard; a malformed line fails the job before it starts, naming the file and
//! line.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::StreamEnv;
use sluice_state::FastHashMap;

use super::bids;
use crate::job_file::{JobFileError, RegisteredJob};

/// q13's output.
#[derive(Debug, Clone, Serialize)]
pub struct EnrichedBid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub value: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q13Params {
    /// The side table: a CSV file of `key,value` lines (relative paths are
    /// relative to the job file).
    side_input: Option<std::path::PathBuf>,
    #[serde(default = "ten_thousand")]
    modulus: i64,
}

fn ten_thousand() -> i64 {
    10_000
}

/// Reads `key,value` lines; the value is everything after the first comma.
/// Blank lines are skipped; a later line with the same key wins.
pub fn read_side_input(path: &Path) -> Result<FastHashMap<i64, String>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut table = FastHashMap::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let (key, value) = line
            .split_once(',')
            .ok_or_else(|| format!("{}: expected `key,value`, found {line:?}", at()))?;
        let key: i64 = key
            .trim()
            .parse()
            .map_err(|_| format!("{}: the key {key:?} is not an integer", at()))?;
        table.insert(key, value.to_owned());
    }
    Ok(table)
}

/// `SELECT B.auction, B.bidder, B.price, B.dateTime, S.value FROM bid B JOIN
/// side_input FOR SYSTEM_TIME AS OF B.p_time S ON mod(B.auction, 10000) = S.key`
pub fn q13(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let params: Q13Params = file.params()?;
    let Some(path) = params.side_input else {
        return Err(file.invalid(
            "params.side_input",
            "is missing: q13 joins bids with a CSV file of `key,value` lines",
        ));
    };
    if params.modulus <= 0 {
        return Err(file.invalid(
            "params.modulus",
            format!("is {}, expected a positive number", params.modulus),
        ));
    }
    let table = Arc::new(
        read_side_input(&file.resolve(&path))
            .map_err(|message| file.invalid("params.side_input", message))?,
    );
    let modulus = params.modulus;
    let rows = bids(file, env, "q13")?.flat_map(move |b: Bid| {
        table.get(&(b.auction % modulus)).map(|value| EnrichedBid {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            date_time: b.date_time,
            value: value.clone(),
        })
    });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
