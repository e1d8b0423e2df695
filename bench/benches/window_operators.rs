//! The window operators side by side on one shard: tumbling, sliding and
//! session windows with an incremental count, and tumbling windows with a
//! reduce and with a buffering process function, over the same numeric
//! Nexmark bids (see `sluice_bench::window_operators`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_bench::measuring;
use sluice_bench::window_operators::{run, WindowKind};

fn bench(c: &mut Criterion) {
    let events = if measuring() { 10_000_000 } else { 100_000 };
    let mut group = c.benchmark_group("window_operators");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    for kind in WindowKind::ALL {
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                let report = run(kind, events);
                assert_eq!(report.totals.records_in, events / 50 * 46);
                report.totals.records_out
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
