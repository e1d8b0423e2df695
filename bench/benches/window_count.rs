//! Keyed tumbling-window count over numeric Nexmark bids: Sluice on 1 and
//! 2 shards against timely-dataflow on 1 and 2 workers, in the same run.
//! Isolates the keyed exchange plus window state and timers; sources are
//! in-process generators and results go to a blackhole. Sluice runs with its
//! defaults (shards park when idle) and with `spin_before_park` = 200 µs (the
//! polling mode a dedicated machine would use; timely's workers spin too),
//! and in two phases (each shard counts before the exchange). A second
//! group: the rolling count per auction, in one phase and in two.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_bench::window_count::Phases;
use sluice_bench::{measuring, peers, window_count};

fn bench(c: &mut Criterion) {
    let events = if measuring() { 20_000_000 } else { 200_000 };
    let mut group = c.benchmark_group("window_count");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    let spin = Some(Duration::from_micros(200));
    let two = Phases::Two {
        max_partials: 100_000,
    };
    for (shards, spin, phases, mode) in [
        (1u32, None, Phases::One, "park"),
        (2, None, Phases::One, "park"),
        (1, spin, Phases::One, "spin"),
        (2, spin, Phases::One, "spin"),
        (1, None, two, "two-phase/park"),
        (2, None, two, "two-phase/park"),
    ] {
        group.bench_function(format!("sluice/{shards}-shards/{mode}"), |b| {
            b.iter(|| {
                let report = window_count::sluice(shards, events, spin, phases);
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
    // The rolling count: one update per bid against one per folded batch.
    let mut rolling = c.benchmark_group("rolling_count");
    rolling.sample_size(10);
    rolling.throughput(Throughput::Elements(events));
    for shards in [1u32, 2] {
        for (phases, mode) in [(Phases::One, "one-phase"), (two, "two-phase")] {
            rolling.bench_function(format!("sluice/{shards}-shards/{mode}"), |b| {
                b.iter(|| {
                    let report = window_count::sluice_rolling(shards, events, phases);
                    assert_eq!(report.totals.records_in, events / 50 * 46, "the bids");
                    report.totals.records_out
                })
            });
        }
    }
    rolling.finish();
    // All computed the same number of (key, window) results.
    let timely = peers::timely::window_count(2, events);
    assert_eq!(
        window_count::sluice(2, events, None, Phases::One)
            .totals
            .records_out,
        timely
    );
    assert_eq!(
        window_count::sluice(2, events, None, two)
            .totals
            .records_out,
        timely
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
