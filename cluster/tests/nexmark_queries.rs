//! Nexmark queries through `sluice run`, each compared on 100k events with an
//! independent plain implementation over the generator's events, for 1 and
//! several shards (order-insensitive: these queries define no order).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use sluice_bench::nexmark::{Bid, Event, NexmarkConfig, NexmarkGenerator};

const EVENTS: u64 = 100_000;
const SEED: u64 = 21;

fn bids() -> Vec<Bid> {
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed: SEED,
        ..Default::default()
    });
    (0..EVENTS)
        .filter_map(|n| {
            if let Event::Bid(b) = generator.event(n) {
                Some(b)
            } else {
                None
            }
        })
        .collect()
}

/// Runs `query` on `shards` shards and returns its output lines as JSON values, sorted.
fn run(query: &str, shards: u32, params: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"nexmark.{query}\"\nshards = {shards}\n[source]\nconnector = \"nexmark\"\nevents = {EVENTS}\nseed = {SEED}\n\
             [sink]\nconnector = \"file\"\npath = \"out\"\n[params]\n{params}\n"
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(&job)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    sorted(read_lines(&dir.path().join("out")))
}

fn read_lines(dir: &Path) -> Vec<Value> {
    let mut values = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        values.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    values
}

fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(|v| v.to_string());
    values
}

#[test]
fn q0_passes_every_bid_through() {
    let want = sorted(
        bids()
            .into_iter()
            .map(|b| json!({"auction": b.auction, "bidder": b.bidder, "price": b.price, "dateTime": b.date_time, "extra": b.extra}))
            .collect(),
    );
    assert!(want.len() > 90_000);
    for shards in [1, 3] {
        assert_eq!(run("q0", shards, ""), want, "{shards} shards");
    }
}

#[test]
fn q1_converts_prices() {
    // Prices are floats; serde_json's default parser may round the last bit,
    // so compare them with a relative tolerance and the rest exactly.
    type Row = (i64, i64, i64, String, f64);
    let row = |v: &Value| -> Row {
        (
            v["auction"].as_i64().unwrap(),
            v["bidder"].as_i64().unwrap(),
            v["dateTime"].as_i64().unwrap(),
            v["extra"].as_str().unwrap().to_owned(),
            v["price"].as_f64().unwrap(),
        )
    };
    let sort = |mut rows: Vec<Row>| {
        rows.sort_by(|a, b| {
            (a.0, a.1, a.2, &a.3)
                .cmp(&(b.0, b.1, b.2, &b.3))
                .then(a.4.total_cmp(&b.4))
        });
        rows
    };
    let want = sort(
        bids()
            .into_iter()
            .map(|b| {
                (
                    b.auction,
                    b.bidder,
                    b.date_time,
                    b.extra,
                    0.908 * b.price as f64,
                )
            })
            .collect(),
    );
    for shards in [1, 2] {
        let got = sort(run("q1", shards, "").iter().map(row).collect());
        assert_eq!(got.len(), want.len(), "{shards} shards");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.0, g.1, g.2, &g.3),
                (w.0, w.1, w.2, &w.3),
                "{shards} shards"
            );
            assert!(
                (g.4 - w.4).abs() <= w.4.abs() * 1e-12,
                "price {} against {}",
                g.4,
                w.4
            );
        }
    }
}

#[test]
fn q2_selects_auctions_by_modulus() {
    for (modulus, params) in [(123, ""), (7, "modulus = 7")] {
        let want = sorted(
            bids()
                .into_iter()
                .filter(|b| b.auction % modulus == 0)
                .map(|b| json!({"auction": b.auction, "price": b.price}))
                .collect(),
        );
        assert!(!want.is_empty());
        for shards in [1, 3] {
            assert_eq!(
                run("q2", shards, params),
                want,
                "modulus {modulus}, {shards} shards"
            );
        }
    }
}
