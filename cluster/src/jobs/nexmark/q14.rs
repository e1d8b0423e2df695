//! Nexmark q14, calculation: bids priced between 1M and 50M euros, with the
//! time of day they were made in and a user-defined function, `count_char`,
//! applied to their `extra` field.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::calendar::hour;
use super::{bids, dollars_to_euros};
use crate::job_file::{JobFileError, RegisteredJob};

/// q14's output.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifiedBid {
    pub auction: i64,
    pub bidder: i64,
    pub price: f64,
    #[serde(rename = "bidTimeType")]
    pub bid_time_type: &'static str,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: SharedStr,
    pub c_counts: u64,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q14Params {
    /// Bids strictly between these prices in euros are kept.
    #[serde(default = "one_million")]
    min_euros: i64,
    #[serde(default = "fifty_million")]
    max_euros: i64,
    /// The character `count_char` counts.
    #[serde(default = "letter_c")]
    count_char: char,
}

fn one_million() -> i64 {
    1_000_000
}

fn fifty_million() -> i64 {
    50_000_000
}

fn letter_c() -> char {
    'c'
}

/// The user-defined function of q14: how often `c` occurs in `s`.
pub fn count_char(s: &str, c: char) -> u64 {
    s.matches(c).count() as u64
}

/// `CASE WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime'
/// WHEN HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20 THEN 'nightTime' ELSE
/// 'otherTime' END`
pub fn bid_time_type(date_time: i64) -> &'static str {
    match hour(date_time) {
        8..=18 => "dayTime",
        0..=6 | 20.. => "nightTime",
        _ => "otherTime",
    }
}

/// `SELECT auction, bidder, 0.908 * price AS price, <bidTimeType>, dateTime,
/// extra, count_char(extra, 'c') AS c_counts FROM bid WHERE 0.908 * price >
/// 1000000 AND 0.908 * price < 50000000`
pub fn q14(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let params: Q14Params = file.params()?;
    if params.min_euros >= params.max_euros {
        return Err(file.invalid(
            "params.min_euros",
            format!(
                "is {}, expected less than max_euros ({})",
                params.min_euros, params.max_euros
            ),
        ));
    }
    let (min, max) = (
        i128::from(params.min_euros) * 1000,
        i128::from(params.max_euros) * 1000,
    );
    let c = params.count_char;
    let rows = bids(file, env, "q14")?.flat_map(move |b: Bid| {
        // 0.908 * price compared exactly, in thousandths.
        let thousandths = i128::from(b.price) * 908;
        (thousandths > min && thousandths < max).then(|| ClassifiedBid {
            auction: b.auction,
            bidder: b.bidder,
            price: dollars_to_euros(b.price),
            bid_time_type: bid_time_type(b.date_time),
            date_time: b.date_time,
            c_counts: count_char(&b.extra, c),
            extra: b.extra,
        })
    });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_char_counts_ascii_and_other_characters() {
        assert_eq!(count_char("abcabcc", 'c'), 3);
        assert_eq!(count_char("", 'c'), 0);
        assert_eq!(count_char("çaç", 'ç'), 2);
    }

    #[test]
    fn time_types_cover_the_day() {
        let at = |h: i64| h * 3_600_000 + 59 * 60_000;
        let types: Vec<&str> = (0..24).map(|h| bid_time_type(at(h))).collect();
        assert_eq!(&types[0..7], ["nightTime"; 7]);
        assert_eq!(types[7], "otherTime");
        assert_eq!(&types[8..19], ["dayTime"; 11]);
        assert_eq!(&types[19], &"otherTime");
        assert_eq!(&types[20..24], ["nightTime"; 4]);
    }
}
