//! `windowed_aggregation`: count and sum of `value` per `key` in event-time
//! windows over generated events (or events read from JSON lines / CSV files
//! or Kafka records with the fields `seq, key, value, ts`).
//!
//! Params: `window` = "tumbling" | "sliding" | "session", `size_ms`,
//! `slide_ms` (sliding), `gap_ms` (session), `allowed_lateness_ms`.

use serde::{Deserialize, Serialize};
use sluice_engine::connectors::{FileSource, GeneratedEvent};
use sluice_engine::window::{
    AggregateFunction, SessionWindows, SlidingWindows, TimeWindow, TumblingWindows,
};
use sluice_engine::{Stream, StreamEnv};

use crate::job_file::{JobFileError, RegisteredJob, SourceSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "tumbling")]
    window: String,
    #[serde(default = "second")]
    size_ms: i64,
    slide_ms: Option<i64>,
    gap_ms: Option<i64>,
    #[serde(default)]
    allowed_lateness_ms: i64,
}

fn tumbling() -> String {
    "tumbling".into()
}
fn second() -> i64 {
    1_000
}

/// One line of output: one key's window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowTotal {
    pub key: u64,
    pub window_start: i64,
    pub window_end: i64,
    pub count: u64,
    pub sum: i64,
}

/// Count and sum of `value`.
#[derive(Debug, Clone, Copy)]
pub struct CountSum;

impl AggregateFunction<GeneratedEvent> for CountSum {
    type Acc = (u64, i64);
    type Out = (u64, i64);
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    #[inline]
    fn add(&self, e: &GeneratedEvent, acc: &mut (u64, i64)) {
        acc.0 += 1;
        acc.1 = acc.1.wrapping_add(e.value);
    }
    fn get_result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
    fn merge(&self, a: (u64, i64), b: (u64, i64)) -> (u64, i64) {
        (a.0 + b.0, a.1.wrapping_add(b.1))
    }
}

fn total(key: &u64, w: &TimeWindow, (count, sum): (u64, i64)) -> WindowTotal {
    WindowTotal {
        key: *key,
        window_start: w.start,
        window_end: w.end,
        count,
        sum,
    }
}

pub fn build(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let p: Params = file.params()?;
    if p.size_ms <= 0 {
        return Err(file.invalid(
            "params.size_ms",
            format!("is {}, expected a positive window size", p.size_ms),
        ));
    }
    if p.allowed_lateness_ms < 0 {
        return Err(file.invalid(
            "params.allowed_lateness_ms",
            format!("is {}, expected at least 0", p.allowed_lateness_ms),
        ));
    }
    let strategy = file.event_time.strategy();
    let events: Stream<GeneratedEvent> = match &file.source {
        SourceSpec::Generator(g) => env.source(g.clone(), strategy),
        SourceSpec::File { nexmark: true, .. } => {
            return Err(file.invalid(
                "source.format",
                "job `windowed_aggregation` reads generated events, not Nexmark events: expected \"jsonl\" or \"csv\"",
            ))
        }
        SourceSpec::File {
            paths,
            format,
            split_bytes,
            bad_records,
            ..
        } => {
            let source = FileSource::<GeneratedEvent>::new(paths, *format, *split_bytes)
                .map_err(|e| file.invalid("source.paths", e.to_string()))?
                .with_bad_records(bad_records.clone());
            let strategy = if file.event_time.processing_time {
                strategy
            } else {
                strategy.with_timestamps(|e: &GeneratedEvent| e.ts)
            };
            env.source(source, strategy)
        }
        SourceSpec::Kafka(spec) => {
            super::kafka_records(file, env, spec, Some(|e: &GeneratedEvent| e.ts))?
        }
        SourceSpec::Nexmark(_) => return Err(file.invalid(
            "source.connector",
            "job `windowed_aggregation` reads generated events: expected \"generator\", \"file\" or \"kafka\"",
        )),
    };
    let keyed = events.key_by(|e: &GeneratedEvent| e.key);
    let lateness = p.allowed_lateness_ms;
    let totals = match p.window.as_str() {
        "tumbling" => keyed
            .window(TumblingWindows::of(p.size_ms))
            .allowed_lateness(lateness)
            .aggregate(CountSum, total),
        "sliding" => {
            let slide = p.slide_ms.ok_or_else(|| {
                file.invalid(
                    "params.slide_ms",
                    "is missing: sliding windows need a slide",
                )
            })?;
            if slide <= 0 || slide > p.size_ms {
                return Err(file.invalid(
                    "params.slide_ms",
                    format!("is {slide}, expected 1..=size_ms ({})", p.size_ms),
                ));
            }
            keyed
                .window(SlidingWindows::of(p.size_ms, slide))
                .allowed_lateness(lateness)
                .aggregate(CountSum, total)
        }
        "session" => {
            let gap = p.gap_ms.ok_or_else(|| {
                file.invalid("params.gap_ms", "is missing: session windows need a gap")
            })?;
            if gap <= 0 {
                return Err(file.invalid(
                    "params.gap_ms",
                    format!("is {gap}, expected a positive gap"),
                ));
            }
            keyed
                .window(SessionWindows::with_gap(gap))
                .allowed_lateness(lateness)
                .aggregate(CountSum, total)
        }
        other => {
            return Err(file.invalid(
                "params.window",
                format!("is \"{other}\", expected \"tumbling\", \"sliding\" or \"session\""),
            ))
        }
    };
    super::attach_sink(file, &totals);
    Ok(())
}
