//! Event-time progress: watermark strategies for sources and the combination of
//! watermarks from several inputs.
//!
//! Lives on one shard's core. Invariants of [`WatermarkCombiner`]: its output
//! never moves back; it is the minimum over the inputs that are neither idle nor
//! ended; while every remaining input is idle it does not advance; once every
//! input has ended it is `i64::MAX`.

use std::sync::Arc;
use std::time::Duration;

use sluice_network::WatermarkStatus;

/// Computes a record's event time.
pub(crate) type TimestampAssigner<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

/// How a source assigns event time and generates watermarks, per partition.
pub struct WatermarkStrategy<T> {
    /// Computes a record's event time; `None` keeps the timestamp the source
    /// reader gave it.
    pub(crate) timestamps: Option<TimestampAssigner<T>>,
    /// Bounded out-of-orderness in ms; `None`: no watermarks (processing time).
    pub(crate) out_of_orderness_ms: Option<i64>,
    /// A partition without records for this long stops holding back time.
    pub(crate) idle_timeout: Option<Duration>,
    /// Processing time: records are stamped with the clock when read, and the
    /// watermark follows the clock, with or without records.
    pub(crate) processing_time: bool,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        WatermarkStrategy {
            timestamps: self.timestamps.clone(),
            out_of_orderness_ms: self.out_of_orderness_ms,
            idle_timeout: self.idle_timeout,
            processing_time: self.processing_time,
        }
    }
}

impl<T> WatermarkStrategy<T> {
    /// Watermarks trail the largest timestamp seen by `out_of_orderness_ms`
    /// (Flink's `forBoundedOutOfOrderness`): watermark = max − bound − 1.
    pub fn bounded_out_of_orderness(out_of_orderness_ms: i64) -> Self {
        assert!(
            out_of_orderness_ms >= 0,
            "out-of-orderness must not be negative"
        );
        WatermarkStrategy {
            timestamps: None,
            out_of_orderness_ms: Some(out_of_orderness_ms),
            idle_timeout: None,
            processing_time: false,
        }
    }

    /// Timestamps only ever increase within a partition.
    pub fn monotonous() -> Self {
        Self::bounded_out_of_orderness(0)
    }

    /// No watermarks until the end of the input (and timestamps as the reader
    /// gives them): event-time windows and timers fire only when a bounded
    /// input ends.
    pub fn no_watermarks() -> Self {
        WatermarkStrategy {
            timestamps: None,
            out_of_orderness_ms: None,
            idle_timeout: None,
            processing_time: false,
        }
    }

    /// Processing time: every record is stamped with the shard's clock when its
    /// source reads it, and time advances with the clock even without records,
    /// so windows fire when the wall clock passes their end.
    pub fn processing_time() -> Self {
        WatermarkStrategy {
            timestamps: None,
            out_of_orderness_ms: Some(0),
            idle_timeout: None,
            processing_time: true,
        }
    }

    /// Assigns each record's event time with `f`.
    pub fn with_timestamps(mut self, f: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        self.timestamps = Some(Arc::new(f));
        self
    }

    /// Marks a partition idle after `timeout` without records.
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }
}

/// Watermark generator of one source partition (bounded out-of-orderness).
#[derive(Debug, Clone)]
pub struct PartitionWatermark {
    bound_ms: i64,
    max_timestamp: i64,
}

impl PartitionWatermark {
    pub fn new(bound_ms: i64) -> Self {
        PartitionWatermark {
            bound_ms,
            max_timestamp: i64::MIN,
        }
    }

    #[inline]
    pub fn observe(&mut self, timestamp: i64) {
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// The current watermark (`i64::MIN` before any record).
    pub fn current(&self) -> i64 {
        if self.max_timestamp == i64::MIN {
            i64::MIN
        } else {
            self.max_timestamp
                .saturating_sub(self.bound_ms)
                .saturating_sub(1)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct InputClock {
    watermark: i64,
    idle: bool,
    ended: bool,
}

/// Combines the watermarks of several inputs; see the module docs.
#[derive(Debug, Clone)]
pub struct WatermarkCombiner {
    inputs: Vec<InputClock>,
    emitted: i64,
}

impl WatermarkCombiner {
    pub fn new(inputs: usize) -> Self {
        assert!(inputs > 0, "a combiner needs at least one input");
        WatermarkCombiner {
            inputs: vec![
                InputClock {
                    watermark: i64::MIN,
                    idle: false,
                    ended: false
                };
                inputs
            ],
            emitted: i64::MIN,
        }
    }

    /// Adds an input (at the next index), active, at the bottom of time: the
    /// combined watermark waits for it (or for it to turn idle).
    pub fn add_input(&mut self) -> usize {
        self.inputs.push(InputClock {
            watermark: i64::MIN,
            idle: false,
            ended: false,
        });
        self.inputs.len() - 1
    }

    /// The combined watermark emitted so far.
    pub fn current(&self) -> i64 {
        self.emitted
    }

    /// Input `input` reports watermark `watermark` (and is active). Returns the
    /// new combined watermark if it advanced.
    pub fn update(&mut self, input: usize, watermark: i64) -> Option<i64> {
        let clock = &mut self.inputs[input];
        assert!(!clock.ended, "bug: watermark on ended input {input}");
        clock.watermark = clock.watermark.max(watermark);
        clock.idle = false;
        self.advance()
    }

    /// Input `input` becomes idle or active again.
    pub fn set_idle(&mut self, input: usize, idle: bool) -> Option<i64> {
        let clock = &mut self.inputs[input];
        if clock.ended {
            return None;
        }
        clock.idle = idle;
        self.advance()
    }

    /// Input `input` has ended: it no longer holds back time.
    pub fn end(&mut self, input: usize) -> Option<i64> {
        self.inputs[input].ended = true;
        self.advance()
    }

    pub fn all_ended(&self) -> bool {
        self.inputs.iter().all(|c| c.ended)
    }

    /// The status the combined output should have: idle when every input that
    /// has not ended is idle (and at least one has not ended).
    pub fn status(&self) -> WatermarkStatus {
        let mut live = self.inputs.iter().filter(|c| !c.ended).peekable();
        if live.peek().is_some() && live.all(|c| c.idle) {
            WatermarkStatus::Idle
        } else {
            WatermarkStatus::Active
        }
    }

    fn advance(&mut self) -> Option<i64> {
        let mut min = i64::MAX;
        let mut any_active = false;
        let mut any_live = false;
        for c in &self.inputs {
            if c.ended {
                continue;
            }
            any_live = true;
            if !c.idle {
                any_active = true;
                min = min.min(c.watermark);
            }
        }
        if any_live && !any_active {
            return None;
        }
        if min > self.emitted {
            self.emitted = min;
            Some(min)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn minimum_over_inputs_and_never_back() {
        let mut c = WatermarkCombiner::new(3);
        assert_eq!(c.update(0, 10), None);
        assert_eq!(c.update(1, 5), None);
        assert_eq!(c.update(2, 7), Some(5));
        assert_eq!(c.update(1, 20), Some(7));
        // An input going back is ignored.
        assert_eq!(c.update(2, 1), None);
        assert_eq!(c.current(), 7);
        assert_eq!(c.update(2, 30), Some(10));
    }

    #[test]
    fn idle_inputs_do_not_hold_back_time() {
        let mut c = WatermarkCombiner::new(2);
        assert_eq!(c.update(0, 100), None);
        assert_eq!(c.set_idle(1, true), Some(100));
        assert_eq!(c.status(), WatermarkStatus::Active);
        assert_eq!(c.update(0, 150), Some(150));
        // The idle input returns behind the emitted watermark: no step back.
        assert_eq!(c.update(1, 120), None);
        assert_eq!(c.current(), 150);
        assert_eq!(c.update(1, 200), None);
        assert_eq!(c.update(0, 300), Some(200));
    }

    #[test]
    fn all_idle_does_not_advance_and_reports_idle() {
        let mut c = WatermarkCombiner::new(2);
        c.update(0, 5);
        c.update(1, 9);
        assert_eq!(c.current(), 5);
        assert_eq!(c.set_idle(0, true), Some(9));
        assert_eq!(c.set_idle(1, true), None);
        assert_eq!(c.status(), WatermarkStatus::Idle);
        assert_eq!(c.current(), 9);
    }

    #[test]
    fn ended_inputs_count_as_infinity() {
        let mut c = WatermarkCombiner::new(2);
        c.update(0, 5);
        assert_eq!(c.end(1), Some(5));
        assert_eq!(c.end(0), Some(i64::MAX));
        assert!(c.all_ended());
    }

    #[test]
    fn bounded_out_of_orderness_trails_max_timestamp() {
        let mut p = PartitionWatermark::new(100);
        assert_eq!(p.current(), i64::MIN);
        p.observe(1_000);
        p.observe(900);
        assert_eq!(p.current(), 899);
        p.observe(1_500);
        assert_eq!(p.current(), 1_399);
    }

    proptest! {
        // Against a model: the output is monotone and, when it moves, equals the
        // minimum over active inputs of their (monotone) maxima.
        #[test]
        fn combiner_matches_model(events in proptest::collection::vec((0usize..4, 0u8..3, 0i64..1000), 1..200)) {
            let mut c = WatermarkCombiner::new(4);
            let mut wm = [i64::MIN; 4];
            let mut idle = [false; 4];
            let mut last = i64::MIN;
            for (input, kind, value) in events {
                let out = match kind {
                    0 => { wm[input] = wm[input].max(value); idle[input] = false; c.update(input, value) }
                    1 => { idle[input] = true; c.set_idle(input, true) }
                    _ => { idle[input] = false; c.set_idle(input, false) }
                };
                let active: Vec<i64> = (0..4).filter(|&i| !idle[i]).map(|i| wm[i]).collect();
                let model = active.iter().copied().min();
                if let Some(new) = out {
                    prop_assert!(new > last);
                    prop_assert_eq!(Some(new), model);
                    last = new;
                } else if let Some(m) = model {
                    prop_assert!(m <= last);
                }
                prop_assert_eq!(c.current(), last);
            }
        }
    }
}
