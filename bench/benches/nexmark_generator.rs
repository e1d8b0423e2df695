//! The Nexmark generator alone: events per second on one core, the ceiling for
//! every Nexmark query's source.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_bench::measuring;
use sluice_engine::connectors::nexmark::{NexmarkConfig, NexmarkGenerator};

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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
