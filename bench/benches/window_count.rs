//! Keyed tumbling-window count over numeric Nexmark bids: Sluice on 1 and
//! 2 shards against timely-dataflow on 1 and 2 workers, in the same run.
//! Isolates the keyed exchange plus window state and timers; sources are
//! in-process generators and results go to a blackhole. Sluice runs with its
//! defaults (shards park when idle) and with `spin_before_park` = 200 µs (the
//! polling mode a dedicated machine would use; timely's workers spin too).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_bench::{measuring, peers, window_count};

fn bench(c: &mut Criterion) {
    let events = if measuring() { 20_000_000 } else { 200_000 };
    let mut group = c.benchmark_group("window_count");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    let spin = Some(Duration::from_micros(200));
    for (shards, spin, mode) in [
        (1u32, None, "park"),
        (2, None, "park"),
        (1, spin, "spin"),
        (2, spin, "spin"),
    ] {
        group.bench_function(format!("sluice/{shards}-shards/{mode}"), |b| {
            b.iter(|| {
                let report = window_count::sluice(shards, events, spin);
                assert_eq!(report.totals.records_in, events / 50 * 46, "the bids");
                report.totals.records_out
            })
        });
    }
    for workers in [1usize, 2] {
        group.bench_function(format!("timely/{workers}-workers"), |b| {
            b.iter(|| peers::timely::window_count(workers, events))
        });
    }
    group.finish();
    // Both computed the same number of (key, window) results.
    assert_eq!(
        window_count::sluice(2, events, None).totals.records_out,
        peers::timely::window_count(2, events)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
