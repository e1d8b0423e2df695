//! The DataStream API end to end on real shards: keyed process functions with
//! every kind of keyed state and timers, connected streams, side outputs,
//! union, rebalance, broadcast, and idle partitions. Results are compared with
//! plain computations over the same input, for several shard counts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_engine::connectors::{
    CollectSink, GeneratedEvent, GeneratorSource, Sink, SinkWriter, Source, SourcePoll,
    SourceReader,
};
use sluice_engine::keyed_state::{
    AggregatingState, ListState, MapState, ReducingState, ValueState,
};
use sluice_engine::operators::{KeyedCoProcess, KeyedProcess, ProcessContext, TimeDomain};
use sluice_engine::window::{Count, TimeWindow, TumblingWindows};
use sluice_engine::{JobConfig, OutputTag, Rec, SourceError, StreamEnv, WatermarkStrategy};
use sluice_state::StateBackend;

fn config(shards: u32) -> JobConfig {
    JobConfig {
        shards,
        flush_timeout: Duration::from_millis(1),
        ..Default::default()
    }
}

fn generator(events: u64) -> GeneratorSource {
    GeneratorSource {
        seed: 11,
        events: Some(events),
        keys: 50,
        partitions: 5,
        max_delay_ms: 200,
        ..Default::default()
    }
}

/// Per key: count, values in arrival order are not comparable across shard
/// counts, so the list is summarized by its sorted contents.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct KeySummary {
    key: u64,
    count: u64,
    sorted_values: Vec<i64>,
    distinct_values: u64,
    max_value: i64,
    aggregate_count: u64,
}

struct Summarize {
    count: ValueState<u64, u64>,
    values: ListState<u64, i64>,
    distinct: MapState<u64, i64, u64>,
    max: ReducingState<u64, i64, fn(&i64, &i64) -> i64>,
    counted: AggregatingState<u64, GeneratedEvent, Count>,
}

fn max_of(a: &i64, b: &i64) -> i64 {
    *a.max(b)
}

impl KeyedProcess<u64, GeneratedEvent, KeySummary> for Summarize {
    fn process_element(
        &mut self,
        e: GeneratedEvent,
        ctx: &mut ProcessContext<'_, u64, KeySummary>,
    ) {
        assert_eq!(*ctx.key(), e.key);
        let n = self.count.value(ctx).unwrap_or(0);
        if n == 0 {
            ctx.register_event_timer(i64::MAX);
        }
        self.count.update(ctx, n + 1);
        self.values.add(ctx, e.value);
        let seen = self.distinct.get(ctx, &e.value).unwrap_or(0);
        self.distinct.put(ctx, e.value, seen + 1);
        self.max.add(ctx, e.value);
        self.counted.add(ctx, &e);
    }

    fn on_timer(
        &mut self,
        time: i64,
        domain: TimeDomain,
        ctx: &mut ProcessContext<'_, u64, KeySummary>,
    ) {
        assert_eq!((time, domain), (i64::MAX, TimeDomain::EventTime));
        let mut sorted_values = self.values.get(ctx);
        sorted_values.sort();
        let summary = KeySummary {
            key: *ctx.key(),
            count: self.count.value(ctx).unwrap(),
            sorted_values,
            distinct_values: self.distinct.entries(ctx).len() as u64,
            max_value: self.max.get(ctx).unwrap(),
            aggregate_count: self.counted.get(ctx).unwrap(),
        };
        ctx.collect(summary);
        self.count.clear(ctx);
    }
}

#[test]
fn keyed_process_with_every_kind_of_state() {
    let events = 20_000;
    let source = generator(events);
    let mut expected: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for i in 0..events {
        let e = source.event(i);
        expected.entry(e.key).or_default().push(e.value);
    }
    let expected: Vec<KeySummary> = expected
        .into_iter()
        .map(|(key, mut values)| {
            values.sort();
            let mut distinct = values.clone();
            distinct.dedup();
            KeySummary {
                key,
                count: values.len() as u64,
                max_value: *values.iter().max().unwrap(),
                distinct_values: distinct.len() as u64,
                aggregate_count: values.len() as u64,
                sorted_values: values,
            }
        })
        .collect();
    for shards in [1, 3] {
        let env = StreamEnv::new(config(shards));
        let (sink, collected) = CollectSink::new();
        env.source(
            source.clone(),
            WatermarkStrategy::bounded_out_of_orderness(200),
        )
        .key_by(|e: &GeneratedEvent| e.key)
        .process(|state: &mut StateBackend| Summarize {
            count: ValueState::new(state, "count"),
            values: ListState::new(state, "values"),
            distinct: MapState::new(state, "distinct"),
            max: ReducingState::new(state, "max", max_of as fn(&i64, &i64) -> i64),
            counted: AggregatingState::new(state, "counted", Count),
        })
        .sink(sink);
        env.execute().unwrap();
        let mut got: Vec<KeySummary> = collected
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.value.clone())
            .collect();
        got.sort();
        assert_eq!(got, expected, "{shards} shards");
    }
}

/// Joins two streams per key: sums each side, emits the difference at the end.
struct Balance {
    debit: ValueState<u64, i64>,
    credit: ValueState<u64, i64>,
}

impl KeyedCoProcess<u64, GeneratedEvent, (u64, i64), (u64, i64)> for Balance {
    fn process_first(&mut self, e: GeneratedEvent, ctx: &mut ProcessContext<'_, u64, (u64, i64)>) {
        let d = self.debit.value(ctx).unwrap_or(0);
        self.debit.update(ctx, d + e.value);
        ctx.register_event_timer(i64::MAX);
    }
    fn process_second(
        &mut self,
        (_, amount): (u64, i64),
        ctx: &mut ProcessContext<'_, u64, (u64, i64)>,
    ) {
        let c = self.credit.value(ctx).unwrap_or(0);
        self.credit.update(ctx, c + amount);
        ctx.register_event_timer(i64::MAX);
    }
    fn on_timer(
        &mut self,
        _time: i64,
        _domain: TimeDomain,
        ctx: &mut ProcessContext<'_, u64, (u64, i64)>,
    ) {
        let balance = self.credit.value(ctx).unwrap_or(0) - self.debit.value(ctx).unwrap_or(0);
        ctx.collect((*ctx.key(), balance));
    }
}

#[test]
fn connected_streams_share_keyed_state() {
    let events = 10_000;
    let debits = generator(events);
    let credits = GeneratorSource {
        seed: 12,
        ..generator(events)
    };
    let mut expected: BTreeMap<u64, i64> = BTreeMap::new();
    for i in 0..events {
        let d = debits.event(i);
        *expected.entry(d.key).or_default() -= d.value;
        let c = credits.event(i);
        *expected.entry(c.key).or_default() += 2 * c.value;
    }
    for shards in [1, 2, 4] {
        let env = StreamEnv::new(config(shards));
        let (sink, collected) = CollectSink::new();
        let first = env
            .source(
                debits.clone(),
                WatermarkStrategy::bounded_out_of_orderness(200),
            )
            .key_by(|e: &GeneratedEvent| e.key);
        let second = env
            .source(
                credits.clone(),
                WatermarkStrategy::bounded_out_of_orderness(200),
            )
            .map(|e: GeneratedEvent| (e.key, 2 * e.value))
            .key_by(|p: &(u64, i64)| p.0);
        first
            .connect(&second)
            .process(|state: &mut StateBackend| Balance {
                debit: ValueState::new(state, "debit"),
                credit: ValueState::new(state, "credit"),
            })
            .sink(sink);
        env.execute().unwrap();
        let got: BTreeMap<u64, i64> = collected.lock().unwrap().iter().map(|r| r.value).collect();
        assert_eq!(got, expected, "{shards} shards");
    }
}

/// Splits values: non-negative to the main output, odd ones also to a side output.
struct Split {
    odd: OutputTag<i64>,
}

impl KeyedProcess<u64, GeneratedEvent, i64> for Split {
    fn process_element(&mut self, e: GeneratedEvent, ctx: &mut ProcessContext<'_, u64, i64>) {
        ctx.collect(e.value);
        if e.value % 2 == 1 {
            ctx.output(&self.odd, e.value);
        }
    }
}

#[test]
fn side_outputs_of_a_process_function() {
    let events = 10_000;
    let source = generator(events);
    let all: Vec<i64> = (0..events).map(|i| source.event(i).value).collect();
    let odd_tag = OutputTag::<i64>::new("odd");
    for shards in [1, 2] {
        let env = StreamEnv::new(config(shards));
        let (main_sink, main) = CollectSink::new();
        let (side_sink, side) = CollectSink::new();
        let tag = odd_tag.clone();
        let values = env
            .source(
                source.clone(),
                WatermarkStrategy::bounded_out_of_orderness(200),
            )
            .key_by(|e: &GeneratedEvent| e.key)
            .process(move |_: &mut StateBackend| Split { odd: tag.clone() });
        values.side_output(&odd_tag).sink(side_sink);
        values.sink(main_sink);
        env.execute().unwrap();
        let mut got_main: Vec<i64> = main.lock().unwrap().iter().map(|r| r.value).collect();
        let mut got_side: Vec<i64> = side.lock().unwrap().iter().map(|r| r.value).collect();
        let mut want_main = all.clone();
        let mut want_side: Vec<i64> = all.iter().copied().filter(|v| v % 2 == 1).collect();
        for v in [&mut got_main, &mut got_side, &mut want_main, &mut want_side] {
            v.sort();
        }
        assert_eq!(got_main, want_main);
        assert_eq!(got_side, want_side);
        assert!(!want_side.is_empty());
    }
}

#[test]
fn union_rebalance_and_broadcast() {
    let a = GeneratorSource {
        seed: 1,
        events: Some(3_000),
        partitions: 3,
        ..Default::default()
    };
    let b = GeneratorSource {
        seed: 2,
        events: Some(2_000),
        partitions: 2,
        ..Default::default()
    };
    for shards in [1, 3] {
        let env = StreamEnv::new(config(shards));
        let (union_sink, unioned) = CollectSink::new();
        let (broadcast_sink, broadcasted) = CollectSink::new();
        let left = env.source(a.clone(), WatermarkStrategy::bounded_out_of_orderness(500));
        let right = env.source(b.clone(), WatermarkStrategy::bounded_out_of_orderness(500));
        left.union(&[right])
            .rebalance()
            .map(|e: GeneratedEvent| (e.seq, e.key))
            .sink(union_sink);
        env.source(
            GeneratorSource {
                seed: 3,
                events: Some(10),
                partitions: 1,
                ..Default::default()
            },
            WatermarkStrategy::monotonous(),
        )
        .broadcast()
        .map(|e: GeneratedEvent| e.seq)
        .sink(broadcast_sink);
        env.execute().unwrap();
        let mut got: Vec<(u64, u64)> = unioned.lock().unwrap().iter().map(|r| r.value).collect();
        got.sort();
        let mut want: Vec<(u64, u64)> = (0..3_000)
            .map(|i| {
                let e = a.event(i);
                (e.seq, e.key)
            })
            .chain((0..2_000).map(|i| {
                let e = b.event(i);
                (e.seq, e.key)
            }))
            .collect();
        want.sort();
        assert_eq!(got, want, "union of two sources, {shards} shards");
        let mut seqs: Vec<u64> = broadcasted
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.value)
            .collect();
        seqs.sort();
        let want: Vec<u64> = (0..10)
            .flat_map(|s| std::iter::repeat_n(s, shards as usize))
            .collect();
        assert_eq!(seqs, want, "every shard sees every broadcast record");
    }
}

/// A two-partition source: partition 0 trickles records for a while, partition
/// 1 stays silent (pending) and ends later.
#[derive(Clone)]
struct TrickleAndSilence;

struct Trickle {
    next: i64,
    last: Instant,
}

struct Silence {
    start: Instant,
}

impl SourceReader<i64> for Trickle {
    fn poll(&mut self, out: &mut Vec<Rec<i64>>, _max: usize) -> Result<SourcePoll, SourceError> {
        if self.next >= 40 {
            return Ok(SourcePoll::End);
        }
        if self.last.elapsed() < Duration::from_millis(5) {
            return Ok(SourcePoll::Pending);
        }
        self.last = Instant::now();
        out.push(Rec::new(self.next * 100, self.next));
        self.next += 1;
        Ok(SourcePoll::Ready)
    }
    fn position(&self) -> u64 {
        self.next as u64
    }
}

impl SourceReader<i64> for Silence {
    fn poll(&mut self, _out: &mut Vec<Rec<i64>>, _max: usize) -> Result<SourcePoll, SourceError> {
        Ok(if self.start.elapsed() > Duration::from_millis(600) {
            SourcePoll::End
        } else {
            SourcePoll::Pending
        })
    }
    fn position(&self) -> u64 {
        0
    }
}

impl Source<i64> for TrickleAndSilence {
    fn partitions(&self) -> u32 {
        2
    }
    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<i64>>, SourceError> {
        Ok(if partition == 0 {
            Box::new(Trickle {
                next: 0,
                last: Instant::now(),
            })
        } else {
            Box::new(Silence {
                start: Instant::now(),
            })
        })
    }
}

/// Records the watermark seen with each element.
struct SeenWatermark;

impl KeyedProcess<u8, i64, i64> for SeenWatermark {
    fn process_element(&mut self, _value: i64, ctx: &mut ProcessContext<'_, u8, i64>) {
        let wm = ctx.current_watermark();
        ctx.collect(wm);
    }
}

fn watermarks_seen(idleness: Option<Duration>) -> Vec<i64> {
    let env = StreamEnv::new(config(1));
    let (sink, collected) = CollectSink::new();
    let strategy = WatermarkStrategy::bounded_out_of_orderness(0);
    let strategy = match idleness {
        Some(t) => strategy.with_idleness(t),
        None => strategy,
    };
    env.source(TrickleAndSilence, strategy)
        .key_by(|_: &i64| 0u8)
        .process(|_: &mut StateBackend| SeenWatermark)
        .sink(sink);
    env.execute().unwrap();
    let seen: Vec<i64> = collected.lock().unwrap().iter().map(|r| r.value).collect();
    seen
}

#[test]
fn an_idle_partition_stops_holding_back_time() {
    // Without idleness the silent partition holds the watermark at its start.
    let held = watermarks_seen(None);
    assert_eq!(held.len(), 40);
    assert!(held.iter().all(|&wm| wm == i64::MIN), "{held:?}");
    // With a 50 ms idleness timeout, time follows the trickling partition.
    let moving = watermarks_seen(Some(Duration::from_millis(50)));
    assert_eq!(moving.len(), 40);
    assert!(
        moving.windows(2).all(|w| w[0] <= w[1]),
        "the watermark never moves back: {moving:?}"
    );
    let last = *moving.last().unwrap();
    assert!(
        last >= 2_000,
        "the watermark followed the active partition: {moving:?}"
    );
}

/// Ten records at once, then silence until `silence` has passed.
#[derive(Clone)]
struct BurstThenSilence {
    ended_at: Arc<Mutex<Option<Instant>>>,
    silence: Duration,
}

struct Burst {
    sent: bool,
    start: Instant,
    ended_at: Arc<Mutex<Option<Instant>>>,
    silence: Duration,
}

impl SourceReader<u64> for Burst {
    fn poll(&mut self, out: &mut Vec<Rec<u64>>, _max: usize) -> Result<SourcePoll, SourceError> {
        if !self.sent {
            self.sent = true;
            out.extend((0..10).map(|i| Rec::new(0, i)));
            return Ok(SourcePoll::Ready);
        }
        if self.start.elapsed() < self.silence {
            return Ok(SourcePoll::Pending);
        }
        *self.ended_at.lock().unwrap() = Some(Instant::now());
        Ok(SourcePoll::End)
    }
    fn position(&self) -> u64 {
        self.sent as u64
    }
}

impl Source<u64> for BurstThenSilence {
    fn partitions(&self) -> u32 {
        1
    }
    fn open(&self, _partition: u32) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        Ok(Box::new(Burst {
            sent: false,
            start: Instant::now(),
            ended_at: self.ended_at.clone(),
            silence: self.silence,
        }))
    }
}

/// Remembers when each record arrived.
#[derive(Clone, Default)]
struct ArrivalSink(Arc<Mutex<Vec<(Instant, u64)>>>);

struct ArrivalWriter(Arc<Mutex<Vec<(Instant, u64)>>>);

impl SinkWriter<u64> for ArrivalWriter {
    fn write(&mut self, batch: &[Rec<u64>]) -> Result<(), String> {
        let now = Instant::now();
        self.0
            .lock()
            .unwrap()
            .extend(batch.iter().map(|r| (now, r.value)));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

impl Sink<u64> for ArrivalSink {
    fn open(&self, _shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<u64>>, String> {
        Ok(Box::new(ArrivalWriter(self.0.clone())))
    }
}

#[test]
fn processing_time_windows_fire_on_the_clock_without_new_records() {
    let source = BurstThenSilence {
        ended_at: Arc::default(),
        silence: Duration::from_millis(700),
    };
    let sink = ArrivalSink::default();
    let env = StreamEnv::new(config(2));
    env.source(source.clone(), WatermarkStrategy::processing_time())
        .key_by(|v: &u64| v % 2)
        .window(TumblingWindows::of(100))
        .aggregate(Count, |_key: &u64, _w: &TimeWindow, count: u64| count)
        .sink(sink.clone());
    env.execute().unwrap();
    let ended_at = source.ended_at.lock().unwrap().expect("source ended");
    let arrivals = sink.0.lock().unwrap().clone();
    assert_eq!(
        arrivals.iter().map(|(_, c)| c).sum::<u64>(),
        10,
        "{arrivals:?}"
    );
    for (at, _) in &arrivals {
        // The windows closed by the clock ~100 ms after the burst, long before
        // the source ended at 700 ms.
        assert!(
            ended_at.duration_since(*at) >= Duration::from_millis(300),
            "a window fired only at the end"
        );
    }
}

#[test]
fn rolling_reduce_and_aggregate_emit_running_values() {
    let events = 5_000;
    let source = generator(events);
    let mut sums: BTreeMap<u64, i64> = BTreeMap::new();
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 0..events {
        let e = source.event(i);
        *sums.entry(e.key).or_default() += e.value;
        *counts.entry(e.key).or_default() += 1;
    }
    for shards in [1, 2] {
        let env = StreamEnv::new(config(shards));
        let (reduced_sink, reduced) = CollectSink::new();
        let (counted_sink, counted) = CollectSink::new();
        let keyed = env
            .source(
                source.clone(),
                WatermarkStrategy::bounded_out_of_orderness(200),
            )
            .key_by(|e: &GeneratedEvent| e.key);
        keyed
            .reduce(|a: &GeneratedEvent, b: &GeneratedEvent| GeneratedEvent {
                value: a.value + b.value,
                ..*b
            })
            .map(|e: GeneratedEvent| (e.key, e.value))
            .sink(reduced_sink);
        keyed.aggregate(Count).sink(counted_sink);
        env.execute().unwrap();
        // One output per input; the largest running count per key is its total,
        // and the last reduced value per key (in arrival order) is its sum.
        let reduced = reduced.lock().unwrap().clone();
        let counted = counted.lock().unwrap().clone();
        assert_eq!(reduced.len() as u64, events);
        assert_eq!(counted.len() as u64, events);
        let mut max_count: BTreeMap<u64, u64> = BTreeMap::new();
        for r in &counted {
            let m = max_count.entry(r.value.0).or_default();
            *m = (*m).max(r.value.1);
        }
        assert_eq!(max_count, counts);
        // Per key, the reduced values arrive in order, so the final one is the sum.
        let mut last: BTreeMap<u64, i64> = BTreeMap::new();
        let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
        for r in &reduced {
            last.insert(r.value.0, r.value.1);
            *seen.entry(r.value.0).or_default() += 1;
        }
        assert_eq!(seen, counts);
        assert_eq!(last, sums);
    }
}

// The rolling aggregate in two phases: the same totals per key, each
// key's updates still rising one by one to its total, and fewer of them
// (each shard folds a batch's records of a key into one partial).
#[test]
fn two_phase_rolling_aggregate_reaches_the_same_totals_with_fewer_updates() {
    let events = 20_000;
    let source = generator(events);
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 0..events {
        *counts.entry(source.event(i).key).or_default() += 1;
    }
    for shards in [1, 2, 3] {
        let env = StreamEnv::new(config(shards));
        let (sink, counted) = CollectSink::new();
        env.source(
            source.clone(),
            WatermarkStrategy::bounded_out_of_orderness(200),
        )
        .key_by(|e: &GeneratedEvent| e.key)
        .aggregate_two_phase(Count)
        .sink(sink);
        let report = env.execute().unwrap();
        assert_eq!(report.totals.records_in, events);
        let counted = counted.lock().unwrap().clone();
        // A key's updates come from its owner in order: each one larger.
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        for r in &counted {
            let previous = last.insert(r.value.0, r.value.1).unwrap_or(0);
            assert!(
                r.value.1 > previous,
                "{shards} shards: key {} went from {previous} to {}",
                r.value.0,
                r.value.1
            );
        }
        assert_eq!(last, counts, "{shards} shards");
        assert!(
            (counted.len() as u64) < events / 2,
            "{shards} shards: {} updates for {events} records",
            counted.len()
        );
    }
}

/// A sink that cannot be opened on shard 1.
struct BrokenOnShardOne;

impl Sink<u64> for BrokenOnShardOne {
    fn open(&self, shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<u64>>, String> {
        if shard == 1 {
            Err("cannot open the output of shard 1".into())
        } else {
            Ok(Box::new(ArrivalWriter(Arc::default())))
        }
    }
}

#[test]
fn a_shard_that_cannot_start_fails_the_job_without_hanging() {
    let env = StreamEnv::new(config(3));
    env.source(
        generator(100_000),
        WatermarkStrategy::bounded_out_of_orderness(200),
    )
    .key_by(|e: &GeneratedEvent| e.key)
    .stream()
    .map(|e: GeneratedEvent| e.seq)
    .sink(BrokenOnShardOne);
    let error = env.execute().unwrap_err().to_string();
    assert!(
        error.contains("cannot open the output of shard 1"),
        "{error}"
    );
}

#[test]
fn a_panicking_operator_fails_the_job_without_hanging() {
    let env = StreamEnv::new(config(2));
    let (sink, _) = CollectSink::new();
    env.source(
        generator(100_000),
        WatermarkStrategy::bounded_out_of_orderness(200),
    )
    .key_by(|e: &GeneratedEvent| e.key)
    .stream()
    .map(|e: GeneratedEvent| {
        assert!(e.seq != 50_000, "a bug in user code");
        e.seq
    })
    .sink(sink);
    let error = env.execute().unwrap_err().to_string();
    assert!(error.contains("stopped abnormally"), "{error}");
}
