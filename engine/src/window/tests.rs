//! Property tests: every window kind against a brute-force model, with late
//! data, allowed lateness and the late side output.
//!
//! The operator is driven directly with elements and (increasing) watermarks;
//! after each step its output is compared, as a sorted list, with what the model
//! says that step emits. Output order within a step is unspecified.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use proptest::prelude::*;
use sluice_state::{KeyGroups, StateBackend, StateBackendKind};

use super::*;
use crate::metrics::ShardMetrics;
use crate::operators::FanOut;
use crate::push::{Control, EdgeId, Push};
use crate::Rec;

type Element = (u8, i64);

#[derive(Debug, Clone)]
enum Step {
    Element { key: u8, ts: i64, value: i64 },
    Watermark(i64),
}

/// A sink for the tests: appends to a shared list.
struct Collect<T>(Rc<RefCell<Vec<Rec<T>>>>);

impl<T> Push<T> for Collect<T> {
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        self.0.borrow_mut().append(batch);
    }
    fn control(&mut self, _event: Control) {}
    fn reachable_edges(&self, _out: &mut Vec<EdgeId>) {}
}

/// (key, start, end, count, sum)
type Fired = (u8, i64, i64, u64, i64);

#[derive(Clone, Copy)]
struct CountSum;

impl AggregateFunction<Element> for CountSum {
    type Acc = (u64, i64);
    type Out = (u64, i64);
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, v: &Element, acc: &mut (u64, i64)) {
        acc.0 += 1;
        acc.1 += v.1;
    }
    fn get_result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
    fn merge(&self, a: (u64, i64), b: (u64, i64)) -> (u64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

/// The keyed state of one shard that owns every key group of `groups`.
fn memory_backend(groups: KeyGroups) -> StateBackend {
    StateBackend::new(
        StateBackendKind::Memory,
        groups.range_of(0),
        Default::default(),
    )
}

/// Runs the operator over `steps`; returns per step (sorted fired, sorted late).
fn run_operator<A: WindowAssigner<W = TimeWindow>>(
    assigner: A,
    lateness: i64,
    steps: &[Step],
) -> Vec<(Vec<Fired>, Vec<i64>)>
where
    EventTimeTrigger: Trigger<Element, TimeWindow>,
{
    let fired = Rc::new(RefCell::new(Vec::new()));
    let late_records = Rc::new(RefCell::new(Vec::new()));
    let late = FanOut::<Element>::new();
    late.add(Box::new(Collect(late_records.clone())));
    let groups = KeyGroups::new(16, 1);
    let mut backend = memory_backend(groups);
    let spec = WindowSpec {
        assigner,
        trigger: EventTimeTrigger,
        allowed_lateness_ms: lateness,
    };
    let logic = AggregateLogic {
        function: CountSum,
        finish: |k: &u8, w: &TimeWindow, (c, s): (u64, i64)| (*k, w.start, w.end, c, s),
    };
    let mut op = WindowOperator::new(
        "w",
        |e: &Element| e.0,
        groups,
        spec,
        logic,
        &mut backend,
        Box::new(Collect(fired.clone())),
        Some(late),
        Arc::new(ShardMetrics::default()),
    );
    let mut out = Vec::new();
    for step in steps {
        match *step {
            Step::Element { key, ts, value } => op.push(&mut vec![Rec {
                ts,
                value: (key, value),
            }]),
            Step::Watermark(wm) => op.control(Control::Watermark(wm)),
        }
        let mut f: Vec<Fired> = fired
            .borrow_mut()
            .drain(..)
            .map(|r| {
                assert_eq!(
                    r.ts,
                    r.value.2 - 1,
                    "a result carries its window's max timestamp"
                );
                r.value
            })
            .collect();
        let mut l: Vec<i64> = late_records.borrow_mut().drain(..).map(|r| r.ts).collect();
        f.sort();
        l.sort();
        out.push((f, l));
    }
    out
}

/// The model of non-merging event-time windows (see the module docs).
fn model_fixed(
    assign: impl Fn(i64) -> Vec<(i64, i64)>,
    lateness: i64,
    steps: &[Step],
) -> Vec<(Vec<Fired>, Vec<i64>)> {
    let mut state: BTreeMap<(u8, i64, i64), (u64, i64)> = BTreeMap::new();
    let mut wm = i64::MIN;
    let mut out = Vec::new();
    for step in steps {
        let mut fired = Vec::new();
        let mut late = Vec::new();
        match *step {
            Step::Element { key, ts, value } => {
                let mut skipped = true;
                for (start, end) in assign(ts) {
                    if end - 1 + lateness <= wm {
                        continue;
                    }
                    skipped = false;
                    let acc = state.entry((key, start, end)).or_insert((0, 0));
                    acc.0 += 1;
                    acc.1 += value;
                    if end - 1 <= wm {
                        fired.push((key, start, end, acc.0, acc.1));
                    }
                }
                if skipped && ts + lateness <= wm {
                    late.push(ts);
                }
            }
            Step::Watermark(new) => {
                for (&(k, s, e), &(c, sum)) in &state {
                    if e - 1 > wm && e - 1 <= new {
                        fired.push((k, s, e, c, sum));
                    }
                }
                state.retain(|&(_, _, e), _| e - 1 + lateness > new);
                wm = new;
            }
        }
        fired.sort();
        late.sort();
        out.push((fired, late));
    }
    out
}

/// The model of session windows: merge to a fixpoint, then as above.
fn model_sessions(gap: i64, lateness: i64, steps: &[Step]) -> Vec<(Vec<Fired>, Vec<i64>)> {
    let mut sessions: BTreeMap<u8, Vec<(i64, i64, u64, i64)>> = BTreeMap::new();
    let mut wm = i64::MIN;
    let mut out = Vec::new();
    for step in steps {
        let mut fired = Vec::new();
        let mut late = Vec::new();
        match *step {
            Step::Element { key, ts, value } => {
                let list = sessions.entry(key).or_default();
                let (mut start, mut end) = (ts, ts + gap);
                let mut merged: Vec<usize> = Vec::new();
                loop {
                    let before = merged.len();
                    for (i, s) in list.iter().enumerate() {
                        if !merged.contains(&i) && start <= s.1 && end >= s.0 {
                            start = start.min(s.0);
                            end = end.max(s.1);
                            merged.push(i);
                        }
                    }
                    if merged.len() == before {
                        break;
                    }
                }
                if end - 1 + lateness <= wm {
                    if ts + lateness <= wm {
                        late.push(ts);
                    }
                } else {
                    let (mut count, mut sum) = (1, value);
                    merged.sort_unstable();
                    for &i in merged.iter().rev() {
                        let s = list.remove(i);
                        count += s.2;
                        sum += s.3;
                    }
                    list.push((start, end, count, sum));
                    if end - 1 <= wm {
                        fired.push((key, start, end, count, sum));
                    }
                }
            }
            Step::Watermark(new) => {
                for (&k, list) in sessions.iter_mut() {
                    for &(s, e, c, sum) in list.iter() {
                        if e - 1 > wm && e - 1 <= new {
                            fired.push((k, s, e, c, sum));
                        }
                    }
                    list.retain(|&(_, e, _, _)| e - 1 + lateness > new);
                }
                wm = new;
            }
        }
        fired.sort();
        late.sort();
        out.push((fired, late));
    }
    out
}

/// Elements with timestamps around a rising watermark, some of them late.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec((0u8..10, 0u8..3, 0i64..40, -5i64..5), 1..120).prop_map(|raw| {
        let mut wm = -20i64;
        let mut steps = Vec::new();
        for (kind, key, jitter, value) in raw {
            if kind == 0 {
                wm += jitter % 15 + 1;
                steps.push(Step::Watermark(wm));
            } else {
                // Around the watermark: up to 15 behind (late) to 25 ahead.
                let ts = wm + jitter - 15;
                steps.push(Step::Element { key, ts, value });
            }
        }
        steps.push(Step::Watermark(i64::MAX));
        steps
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn tumbling_matches_model(steps in steps(), size in 1i64..20, lateness in 0i64..15) {
        let got = run_operator(TumblingWindows::of(size), lateness, &steps);
        let want = model_fixed(|ts| { let s = ts - ts.rem_euclid(size); vec![(s, s + size)] }, lateness, &steps);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn sliding_matches_model(steps in steps(), size in 1i64..20, slide_seed in 1i64..20, lateness in 0i64..15) {
        let slide = 1 + (slide_seed - 1) % size;
        let got = run_operator(SlidingWindows::of(size, slide), lateness, &steps);
        let want = model_fixed(|ts| {
            // Brute force: every window start on the slide grid whose window holds ts.
            (ts - size - slide..=ts).filter(|s| s.rem_euclid(slide) == 0 && *s <= ts && ts < s + size).map(|s| (s, s + size)).collect()
        }, lateness, &steps);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn sessions_match_model(steps in steps(), gap in 1i64..12, lateness in 0i64..15) {
        let got = run_operator(SessionWindows::with_gap(gap), lateness, &steps);
        let want = model_sessions(gap, lateness, &steps);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn count_windows_match_model(elements in proptest::collection::vec((0u8..3, -5i64..5), 1..200), n in 1u64..6) {
        let fired = Rc::new(RefCell::new(Vec::new()));
        let groups = KeyGroups::new(16, 1);
        let mut backend = memory_backend(groups);
        let spec = WindowSpec { assigner: GlobalWindows, trigger: PurgingTrigger(CountTrigger::of(n)), allowed_lateness_ms: 0 };
        let logic = AggregateLogic { function: CountSum, finish: |k: &u8, _: &GlobalWindow, r: (u64, i64)| (*k, r) };
        let mut op = WindowOperator::new("c", |e: &Element| e.0, groups, spec, logic, &mut backend,
            Box::new(Collect(fired.clone())), None, Arc::new(ShardMetrics::default()));
        let mut model: BTreeMap<u8, (u64, i64)> = BTreeMap::new();
        for (i, &(key, value)) in elements.iter().enumerate() {
            op.push(&mut vec![Rec { ts: i as i64, value: (key, value) }]);
            let acc = model.entry(key).or_default();
            acc.0 += 1;
            acc.1 += value;
            let expected: Vec<(u8, (u64, i64))> = if acc.0 == n { let r = vec![(key, *acc)]; *acc = (0, 0); r } else { vec![] };
            let got: Vec<(u8, (u64, i64))> = fired.borrow_mut().drain(..).map(|r| r.value).collect();
            prop_assert_eq!(got, expected);
        }
        // The end of time fires nothing more: count windows only fire by count.
        op.control(Control::Watermark(i64::MAX));
        prop_assert!(fired.borrow().is_empty());
    }
}

#[test]
fn late_firing_updates_a_result_within_allowed_lateness() {
    let steps = [
        Step::Element {
            key: 1,
            ts: 5,
            value: 10,
        },
        Step::Watermark(20),
        Step::Element {
            key: 1,
            ts: 6,
            value: 1,
        },
        Step::Watermark(40),
        Step::Element {
            key: 1,
            ts: 7,
            value: 1,
        },
    ];
    let got = run_operator(TumblingWindows::of(10), 25, &steps);
    assert_eq!(got[1].0, vec![(1, 0, 10, 1, 10)], "on time");
    assert_eq!(got[2].0, vec![(1, 0, 10, 2, 11)], "late firing");
    assert_eq!(got[4], (vec![], vec![7]), "too late: side output");
}

/// A custom trigger: fires when an element's value is negative, and at the end.
#[derive(Clone, Copy)]
struct FireOnNegative;

impl Trigger<Element, TimeWindow> for FireOnNegative {
    type State = ();
    fn on_element(
        &self,
        value: &Element,
        _ts: i64,
        _w: &TimeWindow,
        _s: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if value.1 < 0 {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
    fn on_event_time(
        &self,
        time: i64,
        w: &TimeWindow,
        _s: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if time == w.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
}

#[test]
fn custom_trigger_fires_early() {
    let fired = Rc::new(RefCell::new(Vec::new()));
    let groups = KeyGroups::new(16, 1);
    let mut backend = memory_backend(groups);
    let spec = WindowSpec {
        assigner: TumblingWindows::of(100),
        trigger: FireOnNegative,
        allowed_lateness_ms: 0,
    };
    let logic = AggregateLogic {
        function: CountSum,
        finish: |k: &u8, w: &TimeWindow, (c, s): (u64, i64)| (*k, w.start, c, s),
    };
    let mut op = WindowOperator::new(
        "t",
        |e: &Element| e.0,
        groups,
        spec,
        logic,
        &mut backend,
        Box::new(Collect(fired.clone())),
        None,
        Arc::new(ShardMetrics::default()),
    );
    op.push(&mut vec![
        Rec {
            ts: 1,
            value: (0, 5),
        },
        Rec {
            ts: 2,
            value: (0, -1),
        },
        Rec {
            ts: 3,
            value: (0, 7),
        },
    ]);
    let early: Vec<_> = fired.borrow_mut().drain(..).map(|r| r.value).collect();
    assert_eq!(early, vec![(0, 0, 2, 4)]);
    // No timer was registered by this trigger, but the cleanup timer fires the
    // end-of-window `on_event_time` too.
    op.control(Control::Watermark(i64::MAX));
    let last: Vec<_> = fired.borrow_mut().drain(..).map(|r| r.value).collect();
    assert_eq!(last, vec![(0, 0, 3, 11)]);
}

/// Forwards records to a shared operator and, of the watermarks of several
/// inputs, their minimum (what an exchange does for the receiving shard).
struct MinWatermark<T> {
    operator: Rc<RefCell<Box<dyn Push<T>>>>,
    marks: Rc<RefCell<Vec<i64>>>,
    input: usize,
}

impl<T> Push<T> for MinWatermark<T> {
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        self.operator.borrow_mut().push(batch);
    }
    fn control(&mut self, event: Control) {
        if let Control::Watermark(mark) = event {
            let mut marks = self.marks.borrow_mut();
            let before = marks.iter().copied().min().expect("inputs");
            marks[self.input] = marks[self.input].max(mark);
            let after = marks.iter().copied().min().expect("inputs");
            if after > before {
                self.operator
                    .borrow_mut()
                    .control(Control::Watermark(after));
            }
        }
    }
    fn reachable_edges(&self, _out: &mut Vec<EdgeId>) {}
}

/// Two-phase aggregation: `shards` local phases (element `i` goes to
/// `routes[i] % shards`; a route ≥ 200 also sends every local phase a
/// barrier after the step) feeding one global phase. Returns what fired
/// per step, sorted.
fn run_two_phase<A: FixedSizeWindows>(
    assigner: A,
    lateness: i64,
    shards: usize,
    max_partials: usize,
    routes: &[u8],
    steps: &[Step],
) -> Vec<Vec<Fired>> {
    let fired = Rc::new(RefCell::new(Vec::new()));
    let groups = KeyGroups::new(16, 1);
    let mut backend = memory_backend(groups);
    let spec = WindowSpec {
        assigner: WindowsEndingAt {
            size_ms: assigner.size_ms(),
        },
        trigger: EventTimeTrigger,
        allowed_lateness_ms: lateness,
    };
    let logic = AggregateLogic {
        function: MergeAccumulators::<Element, _>::new(CountSum),
        finish: |k: &u8, w: &TimeWindow, (c, s): (u64, i64)| (*k, w.start, w.end, c, s),
    };
    let global: Box<dyn Push<(u8, (u64, i64))>> = Box::new(WindowOperator::new(
        "g",
        |p: &(u8, (u64, i64))| p.0,
        groups,
        spec,
        logic,
        &mut backend,
        Box::new(Collect(fired.clone())),
        None,
        Arc::new(ShardMetrics::default()),
    ));
    let global = Rc::new(RefCell::new(global));
    let marks = Rc::new(RefCell::new(vec![i64::MIN; shards]));
    let mut locals: Vec<_> = (0..shards)
        .map(|input| {
            LocalWindowAggregate::new(
                |e: &Element| e.0,
                assigner.clone(),
                CountSum,
                max_partials,
                Box::new(MinWatermark {
                    operator: global.clone(),
                    marks: marks.clone(),
                    input,
                }),
            )
        })
        .collect();
    let barrier = sluice_network::CheckpointBarrier {
        id: 1,
        timestamp_ms: 0,
    };
    let mut out = Vec::new();
    for (step, route) in steps.iter().zip(routes.iter().cycle()) {
        match *step {
            Step::Element { key, ts, value } => {
                locals[*route as usize % shards].push(&mut vec![Rec {
                    ts,
                    value: (key, value),
                }])
            }
            Step::Watermark(wm) => locals
                .iter_mut()
                .for_each(|l| l.control(Control::Watermark(wm))),
        }
        if *route >= 200 {
            locals
                .iter_mut()
                .for_each(|l| l.control(Control::Barrier(barrier)));
        }
        let mut f: Vec<Fired> = fired.borrow_mut().drain(..).map(|r| r.value).collect();
        f.sort();
        out.push(f);
    }
    out
}

fn fired_only(model: Vec<(Vec<Fired>, Vec<i64>)>) -> Vec<Vec<Fired>> {
    model.into_iter().map(|(fired, _)| fired).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    // Folding before the exchange changes nothing in what fires, or when:
    // any number of local phases, any cap on what they hold, barriers
    // anywhere.
    #[test]
    fn two_phase_tumbling_matches_model(
        steps in steps(), size in 1i64..20, lateness in 0i64..15, shards in 1usize..4,
        max_partials in 1usize..8, routes in proptest::collection::vec(any::<u8>(), 1..50),
    ) {
        let got = run_two_phase(TumblingWindows::of(size), lateness, shards, max_partials, &routes, &steps);
        let want = model_fixed(|ts| { let s = ts - ts.rem_euclid(size); vec![(s, s + size)] }, lateness, &steps);
        prop_assert_eq!(got, fired_only(want));
    }

    #[test]
    fn two_phase_sliding_matches_model(
        steps in steps(), size in 1i64..20, slide_seed in 1i64..20, lateness in 0i64..15,
        shards in 1usize..4, max_partials in 1usize..8,
        routes in proptest::collection::vec(any::<u8>(), 1..50),
    ) {
        let slide = 1 + (slide_seed - 1) % size;
        let got = run_two_phase(SlidingWindows::of(size, slide), lateness, shards, max_partials, &routes, &steps);
        let want = model_fixed(|ts| {
            (ts - size - slide..=ts).filter(|s| s.rem_euclid(slide) == 0 && *s <= ts && ts < s + size).map(|s| (s, s + size)).collect()
        }, lateness, &steps);
        prop_assert_eq!(got, fired_only(want));
    }
}
