//! `sluice nexmark generate` writes exactly the events the generator produces.

use std::process::Command;

use sluice_engine::connectors::nexmark::{Bid, Event, NexmarkConfig, NexmarkGenerator};

fn generate(format: &str, events: u64, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "nexmark",
            "generate",
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
            "--format",
            format,
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

#[test]
fn jsonl_holds_every_event_in_order() {
    let dir = generate("jsonl", 5_000, 3);
    let text = std::fs::read_to_string(dir.path().join("out/events.jsonl")).unwrap();
    let got: Vec<Event> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed: 3,
        ..Default::default()
    });
    let want: Vec<Event> = (0..5_000).map(|n| generator.event(n)).collect();
    assert_eq!(got, want);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "person");
    assert!(
        first.get("emailAddress").is_some() && first.get("dateTime").is_some(),
        "{first}"
    );
}

#[test]
fn csv_has_one_file_per_kind_with_headers() {
    let dir = generate("csv", 5_000, 4);
    let count = |name: &str| {
        std::fs::read_to_string(dir.path().join("out").join(name))
            .unwrap()
            .lines()
            .count()
            - 1
    };
    assert_eq!(
        (count("person.csv"), count("auction.csv"), count("bid.csv")),
        (100, 300, 4_600)
    );
    let mut reader = csv::Reader::from_path(dir.path().join("out/bid.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["auction", "bidder", "price", "channel", "url", "dateTime", "extra"]
    );
    let bids: Vec<Bid> = reader.deserialize().map(|r| r.unwrap()).collect();
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed: 4,
        ..Default::default()
    });
    let want: Vec<Bid> = (0..5_000)
        .filter_map(|n| {
            if let Event::Bid(b) = generator.event(n) {
                Some(b)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(bids, want);
}
