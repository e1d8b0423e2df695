//! A SQL file table's lines made rows on one core: Nexmark bids as JSON
//! lines (the shape `sluice nexmark generate` writes) and as CSV, read by a
//! table of the bid's columns; and as typed records, read and written by
//! the DataStream file source and sinks. What a file or Kafka source costs
//! per record before the first operator.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_bench::measuring;
use sluice_engine::connectors::nexmark::{Event, NexmarkConfig, NexmarkGenerator};
use sluice_engine::connectors::RecordFormat;
use sluice_engine::sql::catalog::Catalog;
use sluice_engine::sql::parse_script;
use sluice_engine::sql::scan::source_layout;
use sluice_engine::sql::text_rows::TextRows;

/// The bid table, its rows holding the columns `read`.
fn bid_rows(format: RecordFormat, read: &[&str]) -> TextRows {
    let ddl = "CREATE TABLE bid (`type` VARCHAR, auction BIGINT, bidder BIGINT, \
               price BIGINT, channel VARCHAR, url VARCHAR, `dateTime` BIGINT, \
               extra VARCHAR) WITH ('connector' = 'filesystem')";
    let mut catalog = Catalog::default();
    for statement in parse_script(ddl).expect("the bid table parses") {
        catalog
            .apply(&statement, &[])
            .expect("the bid table is valid");
    }
    let table = catalog.table("bid").expect("created above");
    let needed: Vec<bool> = (table.columns.iter())
        .map(|c| read.contains(&c.name.as_str()))
        .collect();
    TextRows::of_table(table, format, &source_layout(table, &needed)).expect("the table reads")
}

/// `count` bids of the default generator, as JSON lines and as CSV lines.
fn bid_lines(count: usize) -> (Vec<String>, Vec<String>) {
    let mut generator = NexmarkGenerator::new(NexmarkConfig::default());
    let (mut json, mut csv) = (Vec::new(), Vec::new());
    let mut n = 0;
    while json.len() < count {
        let event = generator.event(n);
        n += 1;
        if let Event::Bid(bid) = &event {
            json.push(serde_json::to_string(&event).expect("events serialize"));
            csv.push(format!(
                "bid,{},{},{},{},{},{},{}",
                bid.auction, bid.bidder, bid.price, bid.channel, bid.url, bid.date_time, bid.extra
            ));
        }
    }
    (json, csv)
}

fn bench(c: &mut Criterion) {
    let count = if measuring() { 200_000 } else { 1_000 };
    let (json, csv) = bid_lines(count);
    let mut group = c.benchmark_group("text_rows");
    group.throughput(Throughput::Elements(count as u64));
    group.sample_size(10);
    let q2 = ["auction", "price"];
    let every = [
        "type", "auction", "bidder", "price", "channel", "url", "dateTime", "extra",
    ];
    for (format, lines, name) in [
        (RecordFormat::JsonLines, &json, "json"),
        (RecordFormat::Csv, &csv, "csv"),
    ] {
        for (read, what) in [(&q2[..], "two_numbers"), (&every[..], "every_column")] {
            let rows = bid_rows(format, read);
            group.bench_function(format!("{name}_{what}"), |b| {
                b.iter(|| {
                    let mut width = 0;
                    for line in lines {
                        width += rows.parse(line).expect("a bid line reads").0.len();
                    }
                    width
                })
            });
        }
    }
    // The DataStream file source and file sinks: typed records as CSV.
    type BidRecord = (String, i64, i64, i64, String, String, i64, String);
    group.bench_function("csv_typed_parse", |b| {
        b.iter(|| {
            let mut total = 0i64;
            for line in &csv {
                let bid: BidRecord = RecordFormat::Csv.parse(line).expect("a bid line reads");
                total = total.wrapping_add(bid.3);
            }
            total
        })
    });
    let records: Vec<BidRecord> = (csv.iter())
        .map(|line| RecordFormat::Csv.parse(line).expect("a bid line reads"))
        .collect();
    group.bench_function("csv_typed_write", |b| {
        let mut out = Vec::with_capacity(64 << 20);
        b.iter(|| {
            out.clear();
            for record in &records {
                RecordFormat::Csv
                    .write(record, &mut out)
                    .expect("a bid writes");
            }
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
