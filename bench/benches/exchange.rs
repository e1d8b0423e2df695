//! Records between shards through a key exchange (generator → key_by →
//! blackhole), and the serialization that is its only copy: records/s at
//! several batch sizes, and bytes serialized per record that changed shard.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rkyv::{Archive, Deserialize, Serialize};
use sluice_bench::{exchange, measuring};
use sluice_network::BatchBuilder;

#[derive(Archive, Serialize, Deserialize, Clone, Copy)]
struct Event {
    key: u64,
    value: i64,
    ts: i64,
    seq: u64,
}

fn shards(c: &mut Criterion) {
    let events = if measuring() { 20_000_000 } else { 100_000 };
    let mut group = c.benchmark_group("exchange");
    group.sample_size(10);
    let spin = Some(Duration::from_micros(200));
    for (shards, batch_bytes, spin, mode) in [
        (1u32, 32 * 1024, None, "park"),
        (2, 32 * 1024, None, "park"),
        (2, 32 * 1024, spin, "spin"),
        (2, 4 * 1024, spin, "spin"),
        (2, 256, spin, "spin"),
    ] {
        // Tiny batches are slow by design: a tenth of the events keeps the run short.
        let events = if batch_bytes < 1024 {
            events / 10
        } else {
            events
        };
        group.throughput(Throughput::Elements(events));
        group.bench_with_input(
            BenchmarkId::new(format!("{shards}-shards/{mode}"), batch_bytes),
            &batch_bytes,
            |b, &batch_bytes| {
                b.iter(|| {
                    exchange::sluice(shards, events, batch_bytes, spin)
                        .totals
                        .records_in
                })
            },
        );
    }
    group.finish();
    let t = exchange::sluice(2, events, 32 * 1024, None).totals;
    eprintln!(
        "exchange, 2 shards, 32 KiB batches: {} of {} records changed shard, {:.1} bytes serialized per such record, {:.0} records per batch",
        t.records_exchanged,
        t.records_in,
        t.bytes_exchanged as f64 / t.records_exchanged.max(1) as f64,
        t.records_exchanged as f64 / t.batches_exchanged.max(1) as f64,
    );
}

fn serialization(c: &mut Criterion) {
    let records: u64 = if measuring() { 1 << 20 } else { 1 << 10 };
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(records));
    group.bench_function("serialize", |b| {
        let mut builder = BatchBuilder::<Event>::new(32 * 1024);
        b.iter(|| {
            let mut bytes = 0;
            for i in 0..records {
                builder
                    .push(
                        i as i64,
                        &Event {
                            key: i,
                            value: 1,
                            ts: i as i64,
                            seq: i,
                        },
                    )
                    .unwrap();
                if builder.is_full() {
                    bytes += builder.take().byte_len();
                }
            }
            bytes + builder.take().byte_len()
        })
    });
    group.bench_function("read_trusted", |b| {
        let mut builder = BatchBuilder::<Event>::new(usize::MAX >> 8);
        for i in 0..records.min(60_000) {
            builder
                .push(
                    i as i64,
                    &Event {
                        key: i,
                        value: 1,
                        ts: i as i64,
                        seq: i,
                    },
                )
                .unwrap();
        }
        let batch = builder.take();
        b.iter(|| {
            let mut sum = 0u64;
            for i in 0..batch.len() {
                // SAFETY: built above by a BatchBuilder<Event> in this process.
                sum = sum.wrapping_add(unsafe { batch.read_trusted::<Event>(i) }.key);
            }
            sum
        })
    });
    group.finish();
}

criterion_group!(benches, shards, serialization);
criterion_main!(benches);
