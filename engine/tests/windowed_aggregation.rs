//! The same windowed aggregation over generated out-of-order events gives the
//! same results for any shard count and batch size, and equals a plain
//! single-threaded computation.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_engine::connectors::{CollectSink, GeneratedEvent, GeneratorSource};
use sluice_engine::window::{AggregateFunction, TimeWindow, TumblingWindows};
use sluice_engine::{JobConfig, StreamEnv, WatermarkStrategy};

/// Count and sum of values.
#[derive(Clone, Copy)]
struct CountSum;

impl AggregateFunction<GeneratedEvent> for CountSum {
    type Acc = (u64, i64);
    type Out = (u64, i64);
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, e: &GeneratedEvent, acc: &mut (u64, i64)) {
        acc.0 += 1;
        acc.1 += e.value;
    }
    fn get_result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
    fn merge(&self, a: (u64, i64), b: (u64, i64)) -> (u64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

type Results = BTreeMap<(u64, i64), (u64, i64)>;

const WINDOW_MS: i64 = 1_000;

fn generator(events: u64) -> GeneratorSource {
    GeneratorSource {
        seed: 42,
        events: Some(events),
        keys: 500,
        partitions: 8,
        events_per_second: 20_000,
        delayed_percent: 20,
        max_delay_ms: 800,
        ..Default::default()
    }
}

/// `two_phase`: fold before the key exchange, holding at most this many
/// partial results per shard.
fn run(shards: u32, batch_bytes: usize, events: u64, two_phase: Option<usize>) -> Results {
    let config = JobConfig {
        shards,
        batch_bytes_limit: batch_bytes,
        flush_timeout: Duration::from_millis(2),
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    let (sink, collected) = CollectSink::new();
    let windows = env
        .source(
            generator(events),
            WatermarkStrategy::bounded_out_of_orderness(800),
        )
        .key_by(|e: &GeneratedEvent| e.key)
        .window(TumblingWindows::of(WINDOW_MS));
    let result = |key: &u64, w: &TimeWindow, (count, sum)| (*key, w.start, count, sum);
    match two_phase {
        None => windows.aggregate(CountSum, result),
        Some(max_partials) => windows.aggregate_two_phase(CountSum, max_partials, result),
    }
    .sink(sink);
    let report = env.execute().expect("job runs");
    assert_eq!(report.totals.records_in, events);
    let mut results = Results::new();
    for r in collected.lock().unwrap().iter() {
        let (key, start, count, sum) = r.value;
        assert_eq!(
            r.ts,
            start + WINDOW_MS - 1,
            "results carry the window's max timestamp"
        );
        let previous = results.insert((key, start), (count, sum));
        assert!(previous.is_none(), "window ({key}, {start}) fired twice");
    }
    results
}

fn plain(events: u64) -> Results {
    let source = generator(events);
    let mut results = Results::new();
    for i in 0..events {
        let e = source.event(i);
        let start = e.ts - e.ts.rem_euclid(WINDOW_MS);
        let entry = results.entry((e.key, start)).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += e.value;
    }
    results
}

#[test]
fn identical_for_any_shard_count_and_batch_size() {
    let events = 1_000_000;
    let expected = plain(events);
    assert!(expected.len() > 10_000);
    for (shards, batch_bytes) in [
        (1, 32 * 1024),
        (2, 32 * 1024),
        (4, 32 * 1024),
        (2, 1),
        (4, 1),
        (3, 500),
    ] {
        let got = run(shards, batch_bytes, events, None);
        assert_eq!(
            got.len(),
            expected.len(),
            "shards {shards}, batch {batch_bytes}"
        );
        assert!(
            got == expected,
            "shards {shards}, batch {batch_bytes}: results differ"
        );
    }
}

// Folding per shard before the exchange (local-global aggregation) changes
// no result, however little of it a shard may hold.
#[test]
fn two_phase_is_identical_for_any_shard_count_and_cap() {
    let events = 1_000_000;
    let expected = plain(events);
    for (shards, max_partials) in [(1, 100_000), (2, 100_000), (4, 1_000), (3, 1)] {
        let got = run(shards, 32 * 1024, events, Some(max_partials));
        assert_eq!(
            got.len(),
            expected.len(),
            "shards {shards}, cap {max_partials}"
        );
        assert!(
            got == expected,
            "shards {shards}, cap {max_partials}: results differ"
        );
    }
}

// A keyed stream nobody reads declares an exchange that no operator sends
// on: the job must still end (its shards end that exchange at once).
#[test]
fn an_unused_keyed_stream_does_not_hold_up_the_job() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let env = StreamEnv::new(JobConfig {
            shards: 2,
            ..Default::default()
        });
        let (sink, collected) = CollectSink::new();
        let events = env.source(generator(10_000), WatermarkStrategy::monotonous());
        let _unused = events.key_by(|e: &GeneratedEvent| e.key);
        events.map(|e: GeneratedEvent| e.key).sink(sink);
        let ran = env.execute().map(|report| report.totals.records_in);
        let _ = done.send(ran.map(|records_in| (records_in, collected.lock().unwrap().len())));
    });
    let (records_in, results) = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the job ended within a minute")
        .expect("the job ran");
    assert_eq!((records_in, results), (10_000, 10_000));
}
