//! The Nexmark queries added to the original suite (q10, q13–q22) through
//! `sluice run`, each compared on 100k events with a plain implementation over
//! the generator's events, for 1 and 3 shards. Upsert queries are compared on
//! the last row per key, which is the one a table would hold.
//!
//! Queries on calendar fields run the source at a few events per second of
//! event time, so the events span minutes, hours and days.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sluice_engine::connectors::nexmark::{Auction, Bid, Event};
use support::{all_events, bids, bids_of, events_at_rate, read_lines, run, run_at_rate, run_job};

/// Midnight UTC before the generator's first event (1_700_000_000_000 ms is
/// 2023-11-14T22:13:20Z).
const MIDNIGHT_2023_11_14: i64 = 1_700_000_000_000 - (22 * 3600 + 13 * 60 + 20) * 1000;

/// (`yyyy-MM-dd`, minute of the day) of an instant within the tests' days.
fn utc_day_minute(ms: i64) -> (String, i64) {
    let since = ms - MIDNIGHT_2023_11_14;
    let days = ["2023-11-14", "2023-11-15", "2023-11-16", "2023-11-17"];
    let day = days[usize::try_from(since / 86_400_000).expect("after the first midnight")];
    (day.to_owned(), since % 86_400_000 / 60_000)
}

fn hh_mm(minute: i64) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// The last row per key of an upsert stream, in file order.
fn last_rows(rows: Vec<Value>, key: impl Fn(&Value) -> String) -> BTreeMap<String, Value> {
    rows.into_iter().map(|row| (key(&row), row)).collect()
}

fn field(row: &Value, name: &str) -> String {
    row[name].to_string()
}

#[test]
fn q10_writes_each_minute_into_its_own_committed_partition() {
    let mut want: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for b in bids_of(&events_at_rate(100)) {
        let (day, minute) = utc_day_minute(b.date_time);
        let hm = hh_mm(minute);
        want.entry(format!("dt={day}/hm={hm}"))
            .or_default()
            .push(json!({
                "auction": b.auction, "bidder": b.bidder, "price": b.price,
                "dateTime": b.date_time, "extra": b.extra, "dt": day, "hm": hm,
            }));
    }
    for rows in want.values_mut() {
        rows.sort_by_key(|v| v.to_string());
    }
    assert!(want.len() >= 15, "{} partitions", want.len());
    for shards in [1, 3] {
        let dir = run_job("q10", shards, "events_per_second = 100", "");
        let mut got: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for day in std::fs::read_dir(dir.path().join("out")).unwrap() {
            let day = day.unwrap().path();
            for minute in std::fs::read_dir(&day).unwrap() {
                let minute = minute.unwrap().path();
                assert!(
                    minute.join("_SUCCESS").exists(),
                    "{} is not committed",
                    minute.display()
                );
                let name =
                    |p: &std::path::Path| p.file_name().unwrap().to_str().unwrap().to_owned();
                let mut rows = read_lines(&minute);
                rows.sort_by_key(|v| v.to_string());
                got.insert(format!("{}/{}", name(&day), name(&minute)), rows);
            }
        }
        assert_eq!(got, want, "{shards} shards");
    }
}

#[test]
fn q13_joins_bids_with_the_side_input_file() {
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("side.csv");
    let mut text = String::new();
    for key in (0..10_000).step_by(3) {
        text.push_str(&format!("{key},side {key}, with a comma\n"));
    }
    text.push('\n');
    std::fs::write(&side, text).unwrap();
    let want = support::sorted(
        bids()
            .into_iter()
            .filter(|b| (b.auction % 10_000) % 3 == 0)
            .map(|b| {
                json!({"auction": b.auction, "bidder": b.bidder, "price": b.price,
                       "dateTime": b.date_time, "value": format!("side {}, with a comma", b.auction % 10_000)})
            })
            .collect(),
    );
    assert!(want.len() > 10_000, "{}", want.len());
    let params = format!("side_input = {:?}", side.to_str().unwrap());
    for shards in [1, 3] {
        assert_eq!(run("q13", shards, &params), want, "{shards} shards");
    }
}

/// Runs `query` with `params` on a small input in `dir`, expects exit code 2
/// and no output, and returns the error message.
fn run_rejected(dir: &std::path::Path, query: &str, params: &str) -> String {
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"nexmark.{query}\"\n[source]\nconnector = \"nexmark\"\nevents = 1000\n\
             [sink]\nconnector = \"file\"\npath = \"out\"\n[params]\n{params}\n"
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(&job)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{query}: {stderr}");
    assert!(!dir.join("out").exists(), "{query} wrote output");
    stderr
}

#[test]
fn q13_names_the_malformed_line_of_its_side_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("side.csv"), "1,one\n2,two\nthree,3\n").unwrap();
    let stderr = run_rejected(dir.path(), "q13", "side_input = \"side.csv\"");
    for part in ["job.toml", "params.side_input", "side.csv:3", "\"three\""] {
        assert!(stderr.contains(part), "expected {part:?} in: {stderr}");
    }
}

#[test]
fn q14_classifies_bids_in_the_price_band() {
    let bids = bids_of(&events_at_rate(1));
    // The reference band and character, and others from [params].
    for (min, max, c, params) in [
        (1_000_000, 50_000_000, 'c', ""),
        (
            100,
            20_000,
            'a',
            "min_euros = 100\nmax_euros = 20000\ncount_char = \"a\"",
        ),
    ] {
        let mut types = BTreeSet::new();
        let want = support::sorted(
            bids.iter()
                // 0.908 * price compared exactly, in thousandths.
                .filter(|b| b.price * 908 > min * 1000 && b.price * 908 < max * 1000)
                .map(|b| {
                    let hour = utc_day_minute(b.date_time).1 / 60;
                    let kind = if (8..=18).contains(&hour) {
                        "dayTime"
                    } else if hour <= 6 || hour >= 20 {
                        "nightTime"
                    } else {
                        "otherTime"
                    };
                    types.insert(kind);
                    // The exact DECIMAL(23, 3), printed as itself: it parses
                    // exactly as the decimal's text does.
                    let thousandths = b.price * 908;
                    let text = format!("{}.{:03}", thousandths / 1000, thousandths % 1000);
                    let price: f64 = serde_json::from_str(&text).unwrap();
                    json!({"auction": b.auction, "bidder": b.bidder, "price": price,
                           "bidTimeType": kind, "dateTime": b.date_time,
                           "c_counts": b.extra.chars().filter(|&x| x == c).count(), "extra": b.extra})
                })
                .collect(),
        );
        assert_eq!(types.len(), 3);
        assert!(want.len() > 5_000, "{}", want.len());
        for shards in [1, 3] {
            let got = support::sorted(run_at_rate("q14", shards, 1, params));
            assert_eq!(got, want, "{params}, {shards} shards");
        }
    }
}

/// The reference price ranks.
const RANKS: (i64, i64) = (10_000, 1_000_000);

fn rank_in(price: i64, (rank2_from, rank3_from): (i64, i64)) -> usize {
    if price < rank2_from {
        1
    } else if price < rank3_from {
        2
    } else {
        3
    }
}

fn rank(price: i64) -> usize {
    rank_in(price, RANKS)
}

/// q15's and q16's counts by brute force.
#[derive(Default)]
struct Statistics {
    bids: [u64; 4],
    bidders: [BTreeSet<i64>; 4],
    auctions: [BTreeSet<i64>; 4],
    latest_minute: i64,
}

impl Statistics {
    fn add(&mut self, b: &Bid) {
        self.add_ranked(b, RANKS);
    }

    fn add_ranked(&mut self, b: &Bid, ranks: (i64, i64)) {
        for r in [0, rank_in(b.price, ranks)] {
            self.bids[r] += 1;
            self.bidders[r].insert(b.bidder);
            self.auctions[r].insert(b.auction);
        }
        self.latest_minute = self.latest_minute.max(utc_day_minute(b.date_time).1);
    }

    fn columns(&self, row: &mut serde_json::Map<String, Value>) {
        let names = ["total", "rank1", "rank2", "rank3"];
        for (i, name) in names.iter().enumerate() {
            row.insert(format!("{name}_bids"), json!(self.bids[i]));
            row.insert(format!("{name}_bidders"), json!(self.bidders[i].len()));
            row.insert(format!("{name}_auctions"), json!(self.auctions[i].len()));
        }
    }
}

#[test]
fn q15_reports_bids_bidders_and_auctions_per_day_and_rank() {
    let bids = bids_of(&events_at_rate(1));
    for (ranks, params) in [
        (RANKS, ""),
        ((500, 50_000), "rank2_from = 500\nrank3_from = 50000"),
    ] {
        let mut days: BTreeMap<String, Statistics> = BTreeMap::new();
        for b in &bids {
            days.entry(utc_day_minute(b.date_time).0)
                .or_default()
                .add_ranked(b, ranks);
        }
        assert_eq!(days.len(), 3);
        let want: BTreeMap<String, Value> = days
            .iter()
            .map(|(day, s)| {
                let mut row = serde_json::Map::new();
                row.insert("day".into(), json!(day));
                s.columns(&mut row);
                (json!(day).to_string(), Value::Object(row))
            })
            .collect();
        for shards in [1, 3] {
            let rows = run_at_rate("q15", shards, 1, params);
            assert_eq!(rows.len(), bids.len(), "one update per bid");
            assert_eq!(
                last_rows(rows, |r| field(r, "day")),
                want,
                "{params}, {shards} shards"
            );
        }
    }
}

#[test]
fn bad_params_are_named() {
    for (query, params, expected) in [
        ("q14", "min_euros = 5\nmax_euros = 5", "params.min_euros"),
        (
            "q15",
            "rank2_from = 10\nrank3_from = 1",
            "params.rank2_from",
        ),
        ("q19", "top = 0", "params.top"),
        ("q6", "last_auctions = -1", "params.last_auctions"),
        ("q3", "states = \"CA\"", "params"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let stderr = run_rejected(dir.path(), query, params);
        assert!(
            stderr.contains("job.toml") && stderr.contains(expected),
            "{query}: expected {expected:?} in {stderr}"
        );
    }
}

#[test]
fn q16_reports_q15s_statistics_per_channel_and_day() {
    let bids = bids_of(&events_at_rate(1));
    let mut groups: BTreeMap<(String, String), Statistics> = BTreeMap::new();
    for b in &bids {
        let day = utc_day_minute(b.date_time).0;
        groups
            .entry((b.channel.to_string(), day))
            .or_default()
            .add(b);
    }
    assert!(groups.len() > 100, "{}", groups.len());
    let want: BTreeMap<String, Value> = groups
        .iter()
        .map(|((channel, day), s)| {
            let mut row = serde_json::Map::new();
            row.insert("channel".into(), json!(channel));
            row.insert("day".into(), json!(day));
            row.insert("minute".into(), json!(hh_mm(s.latest_minute)));
            s.columns(&mut row);
            (
                format!("{}{}", json!(channel), json!(day)),
                Value::Object(row),
            )
        })
        .collect();
    for shards in [1, 3] {
        let rows = run_at_rate("q16", shards, 1, "");
        assert_eq!(rows.len(), bids.len(), "one update per bid");
        let got = last_rows(rows, |r| field(r, "channel") + &field(r, "day"));
        assert_eq!(got, want, "{shards} shards");
    }
}

#[test]
fn q17_reports_price_statistics_per_auction_and_day() {
    let bids = bids_of(&events_at_rate(1));
    let mut groups: BTreeMap<(i64, String), Vec<i64>> = BTreeMap::new();
    for b in &bids {
        let day = utc_day_minute(b.date_time).0;
        groups.entry((b.auction, day)).or_default().push(b.price);
    }
    let want: BTreeMap<String, Value> = groups
        .iter()
        .map(|((auction, day), prices)| {
            let count = |r: usize| prices.iter().filter(|&&p| rank(p) == r).count();
            let sum: i64 = prices.iter().sum();
            let row = json!({
                "auction": auction, "day": day, "total_bids": prices.len(),
                "rank1_bids": count(1), "rank2_bids": count(2), "rank3_bids": count(3),
                "min_price": prices.iter().min(), "max_price": prices.iter().max(),
                "avg_price": sum / prices.len() as i64, "sum_price": sum,
            });
            (format!("{auction}{}", json!(day)), row)
        })
        .collect();
    let days: BTreeSet<&String> = groups.keys().map(|(_, day)| day).collect();
    assert_eq!(days.len(), 3);
    for shards in [1, 3] {
        let rows = run_at_rate("q17", shards, 1, "");
        assert_eq!(rows.len(), bids.len(), "one update per bid");
        let got = last_rows(rows, |r| field(r, "auction") + &field(r, "day"));
        assert_eq!(got, want, "{shards} shards");
    }
}

fn bid_json(b: &Bid) -> Value {
    json!({"auction": b.auction, "bidder": b.bidder, "price": b.price, "channel": b.channel,
           "url": b.url, "dateTime": b.date_time, "extra": b.extra})
}

#[test]
fn q18_keeps_each_bidders_last_bid_per_auction() {
    let mut last: BTreeMap<(i64, i64), Bid> = BTreeMap::new();
    for b in bids() {
        let key = (b.bidder, b.auction);
        let newer = |l: &Bid| {
            (b.date_time, b.price, &b.channel, &b.url, &b.extra)
                > (l.date_time, l.price, &l.channel, &l.url, &l.extra)
        };
        if last.get(&key).is_none_or(newer) {
            last.insert(key, b);
        }
    }
    let want: BTreeMap<String, Value> = last
        .values()
        .map(|b| (format!("{}/{}", b.bidder, b.auction), bid_json(b)))
        .collect();
    for shards in [1, 3] {
        let got = last_rows(run_in_order("q18", shards), |r| {
            format!("{}/{}", r["bidder"], r["auction"])
        });
        assert_eq!(got, want, "{shards} shards");
    }
}

fn run_in_order(query: &str, shards: u32) -> Vec<Value> {
    support::run_in_order(query, shards, "")
}

#[test]
fn q19_ranks_the_ten_highest_bids_of_each_auction() {
    let mut per_auction: BTreeMap<i64, Vec<Bid>> = BTreeMap::new();
    for b in bids() {
        per_auction.entry(b.auction).or_default().push(b);
    }
    for list in per_auction.values_mut() {
        list.sort_by(|x, y| {
            (
                std::cmp::Reverse(x.price),
                x.date_time,
                x.bidder,
                &x.channel,
                &x.url,
                &x.extra,
            )
                .cmp(&(
                    std::cmp::Reverse(y.price),
                    y.date_time,
                    y.bidder,
                    &y.channel,
                    &y.url,
                    &y.extra,
                ))
        });
    }
    for (top, params) in [(10, ""), (3, "top = 3")] {
        let mut want = BTreeMap::new();
        for (auction, list) in &per_auction {
            for (i, b) in list.iter().take(top).enumerate() {
                let mut row = bid_json(b);
                row["rank_number"] = json!(i + 1);
                want.insert(format!("{auction}/{}", i + 1), row);
            }
        }
        assert!(want.len() > 1_000);
        for shards in [1, 3] {
            let rows = support::run_in_order("q19", shards, params);
            let got = last_rows(rows, |r| format!("{}/{}", r["auction"], r["rank_number"]));
            assert_eq!(got, want, "{params}, {shards} shards");
        }
    }
}

#[test]
fn q20_expands_bids_of_category_ten_auctions() {
    let events = all_events();
    let auctions: BTreeMap<i64, &Auction> = events
        .iter()
        .filter_map(|e| match e {
            Event::Auction(a) if a.category == 10 => Some((a.id, a)),
            _ => None,
        })
        .collect();
    let want = support::sorted(
        bids_of(&events)
            .iter()
            .filter_map(|b| {
                let a = auctions.get(&b.auction)?;
                Some(json!({
                    "auction": b.auction, "bidder": b.bidder, "price": b.price, "channel": b.channel,
                    "url": b.url, "bid_dateTime": b.date_time, "bid_extra": b.extra,
                    "itemName": a.item_name, "description": a.description, "initialBid": a.initial_bid,
                    "reserve": a.reserve, "auction_dateTime": a.date_time, "expires": a.expires,
                    "seller": a.seller, "category": a.category, "auction_extra": a.extra,
                }))
            })
            .collect(),
    );
    assert!(want.len() > 1_000, "{}", want.len());
    for shards in [1, 3] {
        assert_eq!(run("q20", shards, ""), want, "{shards} shards");
    }
}

#[test]
fn q21_adds_channel_ids() {
    let want = support::sorted(
        bids()
            .into_iter()
            .filter_map(|b| {
                let known = ["apple", "google", "facebook", "baidu"]
                    .iter()
                    .position(|c| b.channel.to_lowercase() == *c)
                    .map(|i| i.to_string());
                // (&|^)channel_id=([^&]*): the pieces between '&' that start with it.
                let from_url = b
                    .url
                    .split('&')
                    .find_map(|part| part.strip_prefix("channel_id="))
                    .map(str::to_owned);
                let id = known.or(from_url)?;
                Some(
                    json!({"auction": b.auction, "bidder": b.bidder, "price": b.price,
                            "channel": b.channel, "channel_id": id}),
                )
            })
            .collect(),
    );
    let with_url_ids = want
        .iter()
        .filter(|r| r["channel"].as_str().unwrap().starts_with("channel-"))
        .count();
    assert!(with_url_ids > 100, "{with_url_ids}");
    for shards in [1, 3] {
        assert_eq!(run("q21", shards, ""), want, "{shards} shards");
    }
}

#[test]
fn q22_splits_urls_into_directories() {
    let want = support::sorted(
        bids()
            .into_iter()
            .map(|b| {
                let parts: Vec<&str> = b.url.split('/').collect();
                json!({"auction": b.auction, "bidder": b.bidder, "price": b.price, "channel": b.channel,
                       "dir1": parts.get(3), "dir2": parts.get(4), "dir3": parts.get(5)})
            })
            .collect(),
    );
    for shards in [1, 3] {
        assert_eq!(run("q22", shards, ""), want, "{shards} shards");
    }
}
