//! The sink of `sluice bench nexmark --rate`: records, for every result, the
//! time from when what it depends on was offered to when it reached the sink,
//! in an HDR histogram per shard (and one per second of the run, for the
//! latency-over-time series).
//!
//! In latency mode the source offers each event when the wall clock reaches
//! its event time (1 ms ticks), so a result's timestamp names the tick that
//! made it possible: an event-driven result depends on the event it carries the
//! time of (offered at `ts`); a result fired by the watermark at `ts` (a window
//! end minus one, an expiry timer) depends on the first event past `ts`, which
//! is offered at `ts + 1`. That offset is the query's `dependency_offset_ms`.
//! Emit times are read once per batch with the same system clock the source
//! paces by. A source that falls behind its schedule still stamps the events
//! with their scheduled times, so a stall shows up as latency (no coordinated
//! omission).
//!
//! Results that depend on the first second of the schedule are warm-up: they
//! appear in the per-second series but not in the run's percentiles.
//! Results whose dependency lies past the last scheduled event (windows that
//! only the end of a bounded input closes) measure the end of the input, not
//! the engine: they are counted apart and left out of the percentiles.
//!
//! Writers run on their shard; they hand their histograms over when the
//! stream ends. A job file's latency sink (`[sink] connector = "latency"`,
//! for a job on a cluster, whose shards run in other processes) has each
//! shard also write its record to `latency-<shard>.json` under the sink's
//! directory, which [`read_reports`] merges.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use sluice_engine::connectors::nexmark::unix_nanos;
use sluice_engine::connectors::{Sink, SinkWriter};
use sluice_engine::Rec;

/// Latencies are recorded in µs, from 1 µs to an hour, to 3 significant digits.
const MAX_MICROS: u64 = 3_600_000_000;

fn histogram(digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, digits).expect("valid histogram bounds")
}

/// One second of the run: results and their latencies.
#[derive(Debug, Clone)]
pub struct SecondOfRun {
    pub results: u64,
    pub latency_us: Histogram<u64>,
}

/// What every shard recorded, merged.
#[derive(Debug, Clone)]
pub struct LatencyRecord {
    pub latency_us: Histogram<u64>,
    /// By second since the sink was created.
    pub seconds: Vec<SecondOfRun>,
    /// Results that arrived before the moment they depend on (a wrong offset
    /// or clock); recorded as 1 µs and counted here so they cannot hide.
    pub early: u64,
    /// Results fired by the end of the input (not in the histograms).
    pub at_input_end: u64,
    /// Results of the warm-up (in the per-second series only).
    pub warmup: u64,
}

impl LatencyRecord {
    fn empty() -> Self {
        LatencyRecord {
            latency_us: histogram(3),
            seconds: Vec::new(),
            early: 0,
            at_input_end: 0,
            warmup: 0,
        }
    }

    fn merge(&mut self, other: &LatencyRecord) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms of equal bounds");
        for (i, second) in other.seconds.iter().enumerate() {
            if self.seconds.len() <= i {
                self.seconds.push(SecondOfRun {
                    results: 0,
                    latency_us: histogram(2),
                });
            }
            self.seconds[i].results += second.results;
            self.seconds[i]
                .latency_us
                .add(&second.latency_us)
                .expect("histograms of equal bounds");
        }
        self.early += other.early;
        self.at_input_end += other.at_input_end;
        self.warmup += other.warmup;
    }
}

/// A sink that measures latency; clones share what they record.
#[derive(Debug, Clone)]
pub struct LatencySink {
    dependency_offset_ms: i64,
    counted_from_ms: i64,
    last_event_ms: i64,
    started_ns: i128,
    merged: Arc<Mutex<LatencyRecord>>,
    /// Where each shard writes its report at the end, if anywhere.
    report_directory: Option<PathBuf>,
}

/// One shard's record as written to its report file (the per-second series
/// stays in process).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ShardReport {
    shard: u32,
    early: u64,
    at_input_end: u64,
    warmup: u64,
    /// The histogram: (value in µs, count) per recorded bucket.
    latency_us: Vec<(u64, u64)>,
}

fn report_name(shard: u32) -> String {
    format!("latency-{shard:05}.json")
}

/// Merges the reports of shards `0..shards` under `directory`.
pub fn read_reports(directory: &Path, shards: u32) -> Result<LatencyRecord, String> {
    let mut merged = LatencyRecord::empty();
    for shard in 0..shards {
        let path = directory.join(report_name(shard));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let report: ShardReport = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a latency report: {e}", path.display()))?;
        let mut own = LatencyRecord::empty();
        for (value, count) in report.latency_us {
            own.latency_us
                .saturating_record_n(value.clamp(1, MAX_MICROS), count);
        }
        own.early = report.early;
        own.at_input_end = report.at_input_end;
        own.warmup = report.warmup;
        merged.merge(&own);
    }
    Ok(merged)
}

impl LatencySink {
    /// Results depending on times in `[counted_from_ms, last_event_ms]` (the
    /// schedule after its warm-up) make the percentiles.
    pub fn new(dependency_offset_ms: i64, counted_from_ms: i64, last_event_ms: i64) -> Self {
        LatencySink {
            dependency_offset_ms,
            counted_from_ms,
            last_event_ms,
            started_ns: unix_nanos(),
            merged: Arc::new(Mutex::new(LatencyRecord::empty())),
            report_directory: None,
        }
    }

    /// Each shard also writes its record under `directory` when its input
    /// ends (see the module docs).
    pub fn reporting_to(mut self, directory: PathBuf) -> Self {
        self.report_directory = Some(directory);
        self
    }

    /// What the shards recorded (complete once the job has ended).
    pub fn record(&self) -> LatencyRecord {
        self.merged.lock().expect("latency record lock").clone()
    }
}

struct LatencyWriter {
    shard: u32,
    sink: LatencySink,
    own: LatencyRecord,
}

impl LatencyWriter {
    /// Writes this shard's report (through a temporary file, so a reader
    /// never sees half of one).
    fn write_report(&self, directory: &Path) -> Result<(), String> {
        let report = ShardReport {
            shard: self.shard,
            early: self.own.early,
            at_input_end: self.own.at_input_end,
            warmup: self.own.warmup,
            latency_us: (self.own.latency_us.iter_recorded())
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        };
        let text = serde_json::to_string(&report).expect("a report is plain data");
        let path = directory.join(report_name(self.shard));
        let temporary = directory.join(format!(".{}", report_name(self.shard)));
        std::fs::create_dir_all(directory)
            .and_then(|()| std::fs::write(&temporary, text))
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

impl<T> SinkWriter<T> for LatencyWriter {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        let now_ns = unix_nanos();
        let second = ((now_ns - self.sink.started_ns).max(0) / 1_000_000_000) as usize;
        while self.own.seconds.len() <= second {
            self.own.seconds.push(SecondOfRun {
                results: 0,
                latency_us: histogram(2),
            });
        }
        let this_second = &mut self.own.seconds[second];
        this_second.results += batch.len() as u64;
        for r in batch {
            let depends_ms = r.ts.saturating_add(self.sink.dependency_offset_ms);
            if depends_ms > self.sink.last_event_ms {
                self.own.at_input_end += 1;
                continue;
            }
            let depends_ns = i128::from(depends_ms) * 1_000_000;
            let micros = (now_ns - depends_ns) / 1_000;
            if micros < 0 {
                self.own.early += 1;
            }
            let micros = micros.clamp(1, i128::from(MAX_MICROS)) as u64;
            this_second.latency_us.saturating_record(micros);
            if depends_ms < self.sink.counted_from_ms {
                self.own.warmup += 1;
            } else {
                self.own.latency_us.saturating_record(micros);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        if let Some(directory) = &self.sink.report_directory {
            self.write_report(directory)?;
        }
        self.sink
            .merged
            .lock()
            .map_err(|_| "the latency record's lock is poisoned".to_owned())?
            .merge(&self.own);
        Ok(())
    }
}

impl<T: 'static> Sink<T> for LatencySink {
    fn open(&self, shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        Ok(Box::new(LatencyWriter {
            shard,
            sink: self.clone(),
            own: LatencyRecord::empty(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts: i64) -> [Rec<()>; 1] {
        [Rec { ts, value: () }]
    }

    #[test]
    fn latency_is_emit_time_minus_the_dependency() {
        let now_ms = (unix_nanos() / 1_000_000) as i64;
        let sink = LatencySink::new(1, now_ms - 100, now_ms + 60_000);
        let mut a: Box<dyn SinkWriter<()>> = sink.open(0, 2).unwrap();
        let mut b: Box<dyn SinkWriter<()>> = sink.open(1, 2).unwrap();
        // Depends on now_ms - 50 + 1: about 49 ms ago.
        a.write(&at(now_ms - 50)).unwrap();
        // In the future but within the schedule: early, recorded as 1 µs and
        // counted.
        b.write(&at(now_ms + 30_000)).unwrap();
        // Warm-up: in the series, not in the percentiles.
        a.write(&at(now_ms - 200)).unwrap();
        // Past the schedule's end: fired by the end of the input.
        b.write(&at(now_ms + 60_000)).unwrap();
        a.finish().unwrap();
        b.finish().unwrap();
        let record = sink.record();
        assert_eq!(record.latency_us.len(), 2);
        assert_eq!(
            (record.early, record.at_input_end, record.warmup),
            (1, 1, 1)
        );
        assert_eq!(record.latency_us.min(), 1);
        let max = record.latency_us.max();
        assert!((48_000..1_000_000).contains(&max), "{max} µs");
        assert_eq!(record.seconds.iter().map(|s| s.results).sum::<u64>(), 4);
    }

    #[test]
    fn shards_reports_merge_into_what_the_process_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let now_ms = (unix_nanos() / 1_000_000) as i64;
        let sink =
            LatencySink::new(0, now_ms - 1_000, now_ms + 60_000).reporting_to(dir.path().into());
        let mut writers: Vec<Box<dyn SinkWriter<()>>> =
            (0..2).map(|shard| sink.open(shard, 2).unwrap()).collect();
        for (i, ago) in [5, 40, 300, 700].into_iter().enumerate() {
            writers[i % 2].write(&at(now_ms - ago)).unwrap();
        }
        writers[1].write(&at(now_ms + 60_001)).unwrap();
        for w in &mut writers {
            w.finish().unwrap();
        }
        let here = sink.record();
        let read = read_reports(dir.path(), 2).unwrap();
        assert_eq!(read.latency_us.len(), 4);
        assert_eq!(read.at_input_end, 1);
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(
                read.latency_us.value_at_quantile(q),
                here.latency_us.value_at_quantile(q),
                "quantile {q}"
            );
        }
        let error = read_reports(dir.path(), 3).unwrap_err();
        assert!(error.contains("latency-00002.json"), "{error}");
        std::fs::write(dir.path().join("latency-00001.json"), "{\"shard\": 1").unwrap();
        let error = read_reports(dir.path(), 2).unwrap_err();
        assert!(
            error.contains("latency-00001.json: not a latency report"),
            "{error}"
        );
    }
}
