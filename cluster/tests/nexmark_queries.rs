//! Nexmark queries through `sluice run`, each compared on 100k events with an
//! independent plain implementation over the generator's events, for 1 and
//! several shards (order-insensitive: these queries define no order).

use serde_json::{json, Value};
use sluice_engine::connectors::nexmark::{Bid, Event};

mod support;

use support::{all_events, bids, run, run_in_order, sorted};

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

/// The exact decimal `0.908 * price`, parsed from its text.
fn euros(price: i64) -> f64 {
    let thousandths = price * 908;
    let text = format!("{}.{:03}", thousandths / 1000, thousandths % 1000);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn q1_converts_prices() {
    // 0.908 * price is an exact DECIMAL(23, 3) in Flink SQL: the output must
    // print that decimal (not a twice-rounded double such as
    // 2.7239999999999998), so it must parse exactly as the decimal's text
    // does (serde_json's default parser may round the last bit, but alike).
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
                    b.extra.to_string(),
                    euros(b.price),
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
            assert_eq!(g.4, w.4, "price of {g:?}");
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

/// q5 by brute force: counts per (window, auction), then per window the
/// auctions that reach its maximum.
fn hot_items(size: i64, slide: i64) -> Vec<Value> {
    let mut counts: std::collections::BTreeMap<(i64, i64), u64> = Default::default();
    for b in bids() {
        let last_start = b.date_time - b.date_time.rem_euclid(slide);
        let mut start = last_start;
        while start > b.date_time - size {
            *counts.entry((start, b.auction)).or_default() += 1;
            start -= slide;
        }
    }
    let mut max: std::collections::BTreeMap<i64, u64> = Default::default();
    for (&(start, _), &n) in &counts {
        let m = max.entry(start).or_default();
        *m = (*m).max(n);
    }
    sorted(
        counts
            .iter()
            .filter(|&(&(start, _), &n)| n == max[&start])
            .map(|(&(_, auction), &n)| json!({"auction": auction, "num": n}))
            .collect(),
    )
}

#[test]
fn q5_finds_the_hottest_auctions_per_sliding_window() {
    for (size, slide, params) in [
        (10_000, 2_000, ""),
        (4, 1, "window_size_ms = 4\nwindow_slide_ms = 1"),
    ] {
        let want = hot_items(size, slide);
        assert!(!want.is_empty());
        for shards in [1, 3] {
            assert_eq!(
                run("q5", shards, params),
                want,
                "size {size}, slide {slide}, {shards} shards"
            );
        }
    }
}

/// q11 by brute force: per bidder, timestamps within `gap` of each other form a session.
fn sessions(gap: i64) -> Vec<Value> {
    let mut by_bidder: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for b in bids() {
        by_bidder.entry(b.bidder).or_default().push(b.date_time);
    }
    let mut out = Vec::new();
    for (bidder, mut times) in by_bidder {
        times.sort();
        let (mut start, mut last, mut count) = (times[0], times[0], 0u64);
        for &t in &times {
            if t > last + gap {
                out.push(json!({"bidder": bidder, "bid_count": count, "starttime": start, "endtime": last + gap}));
                (start, count) = (t, 0);
            }
            last = t;
            count += 1;
        }
        out.push(json!({"bidder": bidder, "bid_count": count, "starttime": start, "endtime": last + gap}));
    }
    sorted(out)
}

#[test]
fn q11_counts_bids_per_bidder_session() {
    for (gap, params) in [(10_000, ""), (1, "session_gap_ms = 1")] {
        let want = sessions(gap);
        for shards in [1, 3] {
            assert_eq!(
                run("q11", shards, params),
                want,
                "gap {gap}, {shards} shards"
            );
        }
    }
}

#[test]
fn q3_joins_local_sellers_to_their_auctions() {
    let events = all_events();
    let persons: Vec<&sluice_engine::connectors::nexmark::Person> = events
        .iter()
        .filter_map(|e| {
            if let Event::Person(p) = e {
                Some(p)
            } else {
                None
            }
        })
        .collect();
    // The reference constants, and others from [params].
    for (category, states, params) in [
        (10, &["OR", "ID", "CA"][..], ""),
        (
            12,
            &["WA", "AZ"][..],
            "category = 12\nstates = [\"WA\", \"AZ\"]",
        ),
    ] {
        let mut want = Vec::new();
        for e in &events {
            let Event::Auction(a) = e else { continue };
            if a.category != category {
                continue;
            }
            for p in &persons {
                if p.id == a.seller && states.contains(&p.state.as_str()) {
                    want.push(
                        json!({"name": p.name, "city": p.city, "state": p.state, "id": a.id}),
                    );
                }
            }
        }
        let want = sorted(want);
        assert!(want.len() > 10, "{}", want.len());
        for shards in [1, 3] {
            assert_eq!(run("q3", shards, params), want, "{params}, {shards} shards");
        }
    }
}

#[test]
/// Flink's q8: persons grouped by (id, name, window) joined to auctions
/// grouped by (seller, window) — one row per person and window with at
/// least one auction of theirs, not one per auction.
fn q8_finds_sellers_who_joined_in_the_same_window() {
    let events = all_events();
    for (size, params) in [(10_000i64, ""), (2, "window_size_ms = 2")] {
        let start = |ts: i64| ts - ts.rem_euclid(size);
        let sellers_by_window: std::collections::BTreeSet<(i64, i64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Auction(a) => Some((a.seller, start(a.date_time))),
                _ => None,
            })
            .collect();
        let persons_by_window: std::collections::BTreeSet<(i64, String, i64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Person(p) => Some((p.id, p.name.to_string(), start(p.date_time))),
                _ => None,
            })
            .collect();
        let mut auctions_per_row = 0;
        let mut want = Vec::new();
        for (id, name, window) in &persons_by_window {
            if sellers_by_window.contains(&(*id, *window)) {
                want.push(json!({"id": id, "name": name, "stime": window}));
                auctions_per_row += events
                    .iter()
                    .filter(|e| matches!(e, Event::Auction(a) if a.seller == *id && start(a.date_time) == *window))
                    .count();
            }
        }
        let want = sorted(want);
        assert!(!want.is_empty());
        // The events do hold persons with several auctions in their
        // window: a row per auction would differ.
        assert!(auctions_per_row > want.len(), "{auctions_per_row}");
        for shards in [1, 3] {
            assert_eq!(
                run("q8", shards, params),
                want,
                "size {size}, {shards} shards"
            );
        }
    }
}

#[test]
fn q7_finds_the_highest_bids_per_window() {
    let bids = bids();
    for (size, params) in [(10_000i64, ""), (1, "window_size_ms = 1")] {
        let mut max: std::collections::BTreeMap<i64, i64> = Default::default();
        for b in &bids {
            let end = b.date_time - b.date_time.rem_euclid(size) + size;
            let m = max.entry(end).or_insert(i64::MIN);
            *m = (*m).max(b.price);
        }
        let mut want = Vec::new();
        for (&end, &m) in &max {
            for b in bids
                .iter()
                .filter(|b| b.date_time >= end - size && b.date_time <= end && b.price == m)
            {
                // The sink's columns by position: the price under `bidder`.
                want.push(json!({"auction": b.auction, "bidder": b.price, "price": b.bidder, "dateTime": b.date_time, "extra": b.extra}));
            }
        }
        let want = sorted(want);
        assert!(!want.is_empty());
        for shards in [1, 3] {
            assert_eq!(
                run("q7", shards, params),
                want,
                "size {size}, {shards} shards"
            );
        }
    }
}

#[test]
fn q12_counts_every_bid_once_in_processing_time_windows() {
    let mut want: std::collections::BTreeMap<i64, u64> = Default::default();
    for b in bids() {
        *want.entry(b.bidder).or_default() += 1;
    }
    for shards in [1, 3] {
        let mut got: std::collections::BTreeMap<i64, u64> = Default::default();
        for row in run("q12", shards, "window_size_ms = 50") {
            let (start, end) = (
                row["starttime"].as_i64().unwrap(),
                row["endtime"].as_i64().unwrap(),
            );
            assert_eq!((end - start, start % 50), (50, 0), "{row}");
            *got.entry(row["bidder"].as_i64().unwrap()).or_default() +=
                row["bid_count"].as_u64().unwrap();
        }
        assert_eq!(got, want, "{shards} shards");
    }
}

#[test]
fn q4_averages_closing_prices_per_category() {
    let events = all_events();
    let bids: Vec<&Bid> = events
        .iter()
        .filter_map(|e| if let Event::Bid(b) = e { Some(b) } else { None })
        .collect();
    let mut totals: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for e in &events {
        let Event::Auction(a) = e else { continue };
        let closing = bids
            .iter()
            .filter(|b| b.auction == a.id && b.date_time >= a.date_time && b.date_time <= a.expires)
            .map(|b| b.price)
            .max();
        if let Some(price) = closing {
            let t = totals.entry(a.category).or_default();
            t.0 += price;
            t.1 += 1;
        }
    }
    let want: std::collections::BTreeMap<i64, i64> =
        totals.iter().map(|(&c, &(sum, n))| (c, sum / n)).collect();
    assert_eq!(want.len(), 5);
    for shards in [1, 3] {
        // An upsert stream: the last row per category is its final average.
        let mut got: std::collections::BTreeMap<i64, i64> = Default::default();
        for row in run_in_order("q4", shards, "") {
            got.insert(row["id"].as_i64().unwrap(), row["final"].as_i64().unwrap());
        }
        assert_eq!(got, want, "{shards} shards");
    }
}

#[test]
fn q9_finds_each_auctions_winning_bid() {
    let events = all_events();
    let bids: Vec<&Bid> = events
        .iter()
        .filter_map(|e| if let Event::Bid(b) = e { Some(b) } else { None })
        .collect();
    let mut want = Vec::new();
    for e in &events {
        let Event::Auction(a) = e else { continue };
        let winner = bids
            .iter()
            .filter(|b| b.auction == a.id && b.date_time >= a.date_time && b.date_time <= a.expires)
            .min_by(|x, y| {
                (std::cmp::Reverse(x.price), x.date_time, x.bidder, &x.extra).cmp(&(
                    std::cmp::Reverse(y.price),
                    y.date_time,
                    y.bidder,
                    &y.extra,
                ))
            });
        if let Some(b) = winner {
            want.push(json!({
                "id": a.id, "itemName": a.item_name, "description": a.description, "initialBid": a.initial_bid,
                "reserve": a.reserve, "dateTime": a.date_time, "expires": a.expires, "seller": a.seller,
                "category": a.category, "extra": a.extra, "auction": b.auction, "bidder": b.bidder,
                "price": b.price, "bid_dateTime": b.date_time, "bid_extra": b.extra,
            }));
        }
    }
    let want = sorted(want);
    assert!(want.len() > 100, "{}", want.len());
    for shards in [1, 3] {
        assert_eq!(run("q9", shards, ""), want, "{shards} shards");
    }
}

#[test]
fn q6_averages_each_sellers_last_ten_closing_prices() {
    let events = all_events();
    let bids: Vec<&Bid> = events
        .iter()
        .filter_map(|e| if let Event::Bid(b) = e { Some(b) } else { None })
        .collect();
    // Closings per seller: (closing time, auction, price of the winning bid).
    let mut closings: std::collections::BTreeMap<i64, Vec<(i64, i64, i64)>> = Default::default();
    for e in &events {
        let Event::Auction(a) = e else { continue };
        let price = bids
            .iter()
            .filter(|b| b.auction == a.id && b.date_time >= a.date_time && b.date_time <= a.expires)
            .map(|b| b.price)
            .max();
        if let Some(price) = price {
            closings
                .entry(a.seller)
                .or_default()
                .push((a.expires, a.id, price));
        }
    }
    for (n, params) in [(10, ""), (3, "last_auctions = 3")] {
        let mut want = Vec::new();
        for (seller, list) in &closings {
            let mut list = list.clone();
            list.sort();
            let mut last: Vec<i64> = Vec::new();
            for (_, _, price) in list {
                if last.len() == n {
                    last.remove(0);
                }
                last.push(price);
                want.push(
                    json!({"seller": seller, "avg_price": last.iter().sum::<i64>() / last.len() as i64}),
                );
            }
        }
        let want = sorted(want);
        assert!(want.len() > 100);
        for shards in [1, 3] {
            assert_eq!(run("q6", shards, params), want, "{params}, {shards} shards");
        }
    }
}

#[test]
fn source_time_processing_times_nexmark_queries_by_the_clock() {
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = now_ms();
    let dir = support::run_job("q11", 2, "time = \"processing\"", "");
    let after = now_ms();
    let rows = support::read_lines(&dir.path().join("out"));
    // Sessions in processing time: now, not in the generator's 2023.
    for row in &rows {
        let start = row["starttime"].as_i64().unwrap();
        assert!((before..=after).contains(&start), "{row}");
    }
    let counted: u64 = rows.iter().map(|r| r["bid_count"].as_u64().unwrap()).sum();
    assert_eq!(counted, bids().len() as u64, "every bid once");
}
