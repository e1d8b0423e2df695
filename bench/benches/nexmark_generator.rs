//! The Nexmark generator alone: events per second on one core, the ceiling for
//! every Nexmark query's source.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_bench::measuring;
use sluice_engine::connectors::nexmark::{NexmarkConfig, NexmarkGenerator, NexmarkSource};
use sluice_engine::connectors::{Source, SourcePoll};

fn bench(c: &mut Criterion) {
    let events: u64 = if measuring() { 1_000_000 } else { 1_000 };
    let mut group = c.benchmark_group("nexmark_generator");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.bench_function("events", |b| {
        let mut generator = NexmarkGenerator::new(NexmarkConfig::default());
        b.iter(|| {
            let mut bytes = 0usize;
            for n in 0..events {
                bytes += std::hint::black_box(generator.event(n)).date_time() as usize & 1;
            }
            bytes
        })
    });
    // The source's path: its reader filling batches of 1,024 records (one
    // partition), each batch emptied (its events dropped) before the next.
    group.bench_function("source_batches", |b| {
        let source = NexmarkSource {
            config: NexmarkConfig {
                events: None,
                partitions: 1,
                ..NexmarkConfig::default()
            },
        };
        let mut reader = source.open(0).expect("the generator opens");
        let mut batch = Vec::with_capacity(1024);
        b.iter(|| {
            let mut produced = 0;
            while produced < events {
                batch.clear();
                let poll = reader
                    .poll(&mut batch, 1024)
                    .expect("the generator never fails");
                assert_eq!(poll, SourcePoll::Ready);
                produced += std::hint::black_box(&batch).len() as u64;
            }
            produced
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
