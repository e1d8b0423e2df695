//! `sluice bench nexmark`: runs a Nexmark query on the in-process generator
//! and reports what it measured — as a table on stdout and as one JSON line
//! appended to a results file.
//!
//! - Throughput mode (no `--rate`): events as fast as possible into a
//!   blackhole; events/s in total and per shard, CPU seconds, peak resident
//!   memory.
//! - Latency mode (`--rate R`): open loop. Event time runs at R events/s from a
//!   moment just ahead of now, and each event is offered when the wall clock
//!   reaches its event time (the generator's occasional delays are off, so
//!   the watermark trails by nothing but the 1 ms tick). Every result's latency
//!   is its emit time minus the moment what it depends on was offered (see
//!   [`crate::bench::latency_sink`]); percentiles come from an HDR histogram.

use sluice_engine::checkpoint::{CheckpointConfig, CheckpointTiming};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_engine::connectors::nexmark::{unix_nanos, NexmarkConfig};
use sluice_engine::connectors::{BadRecordPolicy, RecordFormat, SPLIT_BYTES_DEFAULT};
use sluice_engine::StreamEnv;

use crate::bench::latency_sink::{LatencyRecord, LatencySink};
use crate::job_file::{EventTimeSpec, JobFile, Program, RegisteredIo, SinkSpec, SourceSpec};
use crate::jobs;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub query: String,
    pub events: u64,
    pub shards: Option<u32>,
    pub seed: u64,
    /// Offered events/s (latency mode); `None`: as fast as possible.
    pub rate: Option<u64>,
    /// The job's `[params]`.
    pub params: toml::Table,
    /// How long a partly filled exchange batch may wait (the engine's default
    /// when `None`); 0 sends every batch at once.
    pub flush_timeout_ms: Option<u64>,
    /// Take checkpoints this often (into a temporary directory).
    pub checkpoint_interval_ms: Option<u64>,
    /// Incremental checkpoints, full at least every N (`None`: always full).
    pub checkpoint_full_every: Option<u32>,
    pub checkpoint_alignment: sluice_engine::checkpoint::BarrierAlignment,
    pub state_backend: sluice_engine::StateBackendKind,
    /// Run the query's SQL (`examples/nexmark-sql`) instead of the hand-written job.
    pub sql: bool,
    /// Read the events from this file (JSON lines, as `sluice nexmark
    /// generate` writes them; `events` of them) instead of generating them.
    pub events_file: Option<PathBuf>,
    /// How long idle shards poll before they park (`None`: park at once).
    pub spin_before_park: Option<Duration>,
}

/// The checkpoints of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckpointFigures {
    pub interval_ms: u64,
    pub completed: usize,
    pub duration_p50_ms: f64,
    pub duration_max_ms: f64,
    pub bytes_max: u64,
    /// The median checkpoint: bytes uploaded, and all its files (counting
    /// files shared with earlier ones).
    pub bytes_p50: u64,
    pub total_bytes_p50: u64,
    /// The largest checkpoint, all its files.
    pub total_bytes_max: u64,
    /// The longest any shard spent writing state on its core.
    pub sync_max_ms: f64,
    /// Every completed checkpoint, in order.
    pub each: Vec<sluice_engine::checkpoint::CompletedCheckpoint>,
}

/// Latency percentiles of one run, in µs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyFigures {
    pub results: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p99_9_us: u64,
    pub p99_99_us: u64,
    pub max_us: u64,
    /// Results stamped before what they depend on (should be 0).
    pub early: u64,
    /// Results fired by the end of the input, left out of the percentiles.
    pub at_input_end: u64,
    /// Results of the first second, left out of the percentiles.
    pub warmup: u64,
    /// How long the offered schedule was (events / rate), against `elapsed_s`.
    pub scheduled_s: f64,
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub query: String,
    /// "sql" or "hand-written".
    pub job: &'static str,
    pub mode: &'static str,
    /// "generator" (in-process) or "events-file" (`--events-file`).
    pub input: &'static str,
    pub events: u64,
    pub shards: u32,
    pub seed: u64,
    pub rate: Option<u64>,
    pub flush_timeout_ms: u64,
    /// How long idle shards polled before they parked (none: at once).
    pub spin_before_park_us: Option<u64>,
    pub state_backend: &'static str,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    pub events_per_s_per_shard: f64,
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
    pub records_out: u64,
    pub latency: Option<LatencyFigures>,
    pub checkpoints: Option<CheckpointFigures>,
    pub commit: String,
    pub machine: String,
    /// Per second of a latency run: (results, p50 µs, p99 µs, max µs).
    pub seconds: Vec<(u64, u64, u64, u64)>,
    /// The engine's progress samples (once a second); for plots.
    #[serde(skip)]
    pub progress: Vec<sluice_engine::runtime::ProgressSample>,
}

/// The first second of a latency run is warm-up (allocations, first
/// tables, caches): its results stay out of the percentiles.
const WARMUP_MS: i64 = 1_000;

/// Whether a query's results are fired by the watermark (windows, expiry
/// timers) rather than by the arrival of an event: they depend on the first
/// event past their timestamp.
pub(crate) fn fired_by_watermark(query: &str) -> bool {
    matches!(
        query,
        "q4" | "q5" | "q6" | "q7" | "q8" | "q9" | "q11" | "q12"
    )
}

/// Runs `nexmark.<query>` and returns what it measured.
pub fn run(spec: &BenchSpec) -> Result<BenchResult, String> {
    let query = spec.query.as_str();
    let name = format!("nexmark.{query}");
    jobs::find(&name).ok_or_else(|| {
        let known: Vec<&str> = jobs::REGISTRY
            .iter()
            .filter_map(|(n, _, _)| n.strip_prefix("nexmark."))
            .collect();
        format!(
            "query `{query}` is not implemented; expected one of: {}",
            known.join(", ")
        )
    })?;
    let mut config = sluice_engine::JobConfig {
        progress_interval: Some(Duration::from_secs(1)),
        expected_records_in: Some(spec.events),
        ..Default::default()
    };
    if let Some(ms) = spec.flush_timeout_ms {
        config.flush_timeout = Duration::from_millis(ms);
    }
    config.state_backend = spec.state_backend;
    config.spin_before_park = spec.spin_before_park;
    if let Some(shards) = spec.shards {
        config.shards = shards;
        config.max_parallelism = config.max_parallelism.max(shards);
    }
    let checkpoint_dir = match spec.checkpoint_interval_ms {
        Some(0) => return Err("--checkpoint-interval-ms is 0, expected at least 1".into()),
        Some(interval_ms) => {
            let dir = tempfile::tempdir().map_err(|e| format!("checkpoint directory: {e}"))?;
            config.checkpoint = Some(CheckpointConfig {
                storage: sluice_engine::checkpoint::StorageLocation::Directory(
                    dir.path().to_owned(),
                ),
                timing: CheckpointTiming {
                    interval_ms,
                    timeout_ms: 600_000,
                    min_pause_ms: 0,
                },
                retain: 1,
                restore: None,
                restore_storage: None,
                job_name: format!("nexmark.{query}"),
                full_every: spec.checkpoint_full_every,
                alignment: spec.checkpoint_alignment,
            });
            Some(dir)
        }
        None => None,
    };
    config.validate()?;
    let mut nexmark = NexmarkConfig {
        seed: spec.seed,
        events: Some(spec.events),
        partitions: config.shards.max(8),
        ..Default::default()
    };
    let latency_sink = match spec.rate {
        Some(0) => return Err("--rate is 0, expected at least 1 event/s".into()),
        Some(rate) => {
            nexmark.first_event_rate = rate;
            nexmark.release_at_event_time = true;
            nexmark.prob_delayed_event = 0.0;
            // Start on the next whole second, a moment ahead, so every shard is
            // running when the first tick is offered.
            let now_ms = (unix_nanos() / 1_000_000) as i64;
            nexmark.base_time_ms = (now_ms / 1000 + 1) * 1000 + 500;
            let last_event_ms = nexmark.timestamp_for_event(spec.events.saturating_sub(1));
            Some(LatencySink::new(
                i64::from(fired_by_watermark(query)),
                nexmark.base_time_ms + WARMUP_MS,
                last_event_ms,
            ))
        }
        None => None,
    };
    if spec.events_file.is_some() && latency_sink.is_some() {
        return Err("--events-file reads events as fast as it can: no --rate".into());
    }
    if spec.sql && (latency_sink.is_some() || !spec.params.is_empty()) {
        return Err("--sql runs the SQL file as written: no --rate or --param yet".into());
    }
    let mut params = spec.params.clone();
    let side_input = side_input_for(query, &mut params)?;
    let file = if spec.sql {
        let side_input = params.get("side_input").and_then(|p| p.as_str());
        let events = match &spec.events_file {
            Some(path) => super::nexmark_sql::EventsFrom::File(path),
            None => super::nexmark_sql::EventsFrom::Generator {
                events: spec.events,
                seed: spec.seed,
                partitions: nexmark.partitions,
            },
        };
        let script = super::nexmark_sql::script(query, events, side_input)?;
        JobFile::from_sql(
            Path::new(&format!("<sluice bench nexmark --sql --query {query}>")),
            &script,
            config.clone(),
        )
        .map_err(|e| e.to_string())?
    } else {
        let out_of_orderness_ms = if spec.rate.is_some() {
            0
        } else {
            nexmark.occasional_delay_ms
        };
        let source = match &spec.events_file {
            Some(path) => SourceSpec::File {
                paths: vec![path.clone()],
                format: RecordFormat::JsonLines,
                nexmark: true,
                split_bytes: SPLIT_BYTES_DEFAULT,
                bad_records: BadRecordPolicy::Fail,
            },
            None => SourceSpec::Nexmark(nexmark.clone()),
        };
        registered_file(
            name,
            source,
            out_of_orderness_ms,
            &latency_sink,
            params,
            &config,
        )
    };
    let config_flush_timeout_ms = config.flush_timeout.as_millis() as u64;
    let env = StreamEnv::new(config);
    crate::run::build_on(&file, &env).map_err(|e| e.to_string())?;
    let cpu_before = cpu_seconds();
    let report = env.execute().map_err(|e| e.to_string())?;
    drop(side_input);
    drop(checkpoint_dir);
    let checkpoints = spec.checkpoint_interval_ms.map(|interval_ms| {
        let mut durations: Vec<f64> = report.checkpoints.iter().map(|c| c.duration_ms).collect();
        durations.sort_by(f64::total_cmp);
        CheckpointFigures {
            interval_ms,
            completed: report.checkpoints.len(),
            duration_p50_ms: durations.get(durations.len() / 2).copied().unwrap_or(0.0),
            duration_max_ms: durations.last().copied().unwrap_or(0.0),
            bytes_max: report
                .checkpoints
                .iter()
                .map(|c| c.bytes)
                .max()
                .unwrap_or(0),
            bytes_p50: median(report.checkpoints.iter().map(|c| c.bytes)),
            total_bytes_p50: median(report.checkpoints.iter().map(|c| c.total_bytes)),
            total_bytes_max: report
                .checkpoints
                .iter()
                .map(|c| c.total_bytes)
                .max()
                .unwrap_or(0),
            sync_max_ms: report
                .checkpoints
                .iter()
                .map(|c| c.sync_max_ms)
                .fold(0.0, f64::max),
            each: report.checkpoints.clone(),
        }
    });
    let elapsed_s = report.elapsed.as_secs_f64();
    let events_per_s = spec.events as f64 / elapsed_s.max(1e-9);
    let (latency, seconds) = match (&latency_sink, spec.rate) {
        (Some(sink), Some(rate)) => {
            let record = sink.record();
            let figures = latency_figures(&record, spec.events as f64 / rate as f64);
            (Some(figures), per_second(&record))
        }
        _ => (None, Vec::new()),
    };
    Ok(BenchResult {
        query: query.to_owned(),
        job: if spec.sql { "sql" } else { "hand-written" },
        mode: if spec.rate.is_some() {
            "latency"
        } else {
            "throughput"
        },
        input: if spec.events_file.is_some() {
            "events-file"
        } else {
            "generator"
        },
        events: spec.events,
        shards: report.shards,
        seed: spec.seed,
        rate: spec.rate,
        flush_timeout_ms: config_flush_timeout_ms,
        spin_before_park_us: spec.spin_before_park.map(|d| d.as_micros() as u64),
        state_backend: spec.state_backend.name(),
        elapsed_s,
        events_per_s,
        events_per_s_per_shard: events_per_s / report.shards as f64,
        cpu_s: cpu_seconds() - cpu_before,
        peak_rss_mib: proc_status_kib("VmHWM") as f64 / 1024.0,
        records_out: report.totals.records_out,
        latency,
        checkpoints,
        commit: git_commit(),
        machine: machine(),
        seconds,
        progress: report.progress,
    })
}

/// `sluice bench nexmark --sql`: the hand-written job and the query's SQL,
/// alternating for `rounds` rounds in one process (this machine is noisy:
/// a ratio is only fair between neighbouring runs); each run's table is
/// printed and its JSON line appended to `results`. Returns the summary:
/// each job's median events/s and SQL's share of the hand-written job's.
pub fn compare_sql(spec: &BenchSpec, rounds: u32, results: &Path) -> Result<String, String> {
    let mut rates: [Vec<f64>; 2] = Default::default();
    for _ in 0..rounds.max(1) {
        for (i, sql) in [false, true].into_iter().enumerate() {
            let result = run(&BenchSpec {
                sql,
                ..spec.clone()
            })?;
            print!("{}", table(&result));
            append_json(results, &result)?;
            rates[i].push(result.events_per_s);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (v[(n - 1) / 2] + v[n / 2]) / 2.0
    };
    let [mut hand, mut sql] = rates;
    let (hand, sql) = (median(&mut hand), median(&mut sql));
    Ok(format!(
        "{}: hand-written {hand:.0} events/s, SQL {sql:.0} events/s (medians of {rounds} alternating rounds): SQL at {:.1} % of the hand-written job\n",
        spec.query,
        100.0 * sql / hand
    ))
}

/// The job file of the hand-written `nexmark.<query>` job `name`.
fn registered_file(
    name: String,
    source: SourceSpec,
    out_of_orderness_ms: i64,
    latency_sink: &Option<LatencySink>,
    params: toml::Table,
    config: &sluice_engine::JobConfig,
) -> JobFile {
    JobFile {
        path: PathBuf::from(format!("<sluice bench nexmark --query {name}>")),
        job: name,
        cluster: Default::default(),
        config: config.clone(),
        program: Program::Registered(Box::new(RegisteredIo {
            event_time: EventTimeSpec {
                processing_time: false,
                out_of_orderness_ms,
                idle_timeout: None,
            },
            source,
            sink: match latency_sink {
                Some(sink) => SinkSpec::Latency(sink.clone()),
                None => SinkSpec::Blackhole {
                    records_per_second: None,
                },
            },
            params,
        })),
    }
}

/// The events in `path`, a file `sluice nexmark generate` wrote: its lines.
pub fn events_in_file(path: &Path) -> Result<u64, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("events file `{}`: {e}", path.display()))?;
    let mut buffer = vec![0u8; 1 << 20];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = std::io::Read::read(&mut file, &mut buffer)
            .map_err(|e| format!("events file `{}`: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buffer[n - 1];
    }
    // A last line without its newline is an event too.
    Ok(lines + u64::from(last != b'\n'))
}

/// q13 needs a side table: unless `side_input` is given, a standard one (keys
/// 0..10,000) is written to a temporary file that lives as long as the result.
fn side_input_for(
    query: &str,
    params: &mut toml::Table,
) -> Result<Option<tempfile::NamedTempFile>, String> {
    if query != "q13" || params.contains_key("side_input") {
        return Ok(None);
    }
    let mut file = tempfile::NamedTempFile::new().map_err(|e| format!("side input: {e}"))?;
    let mut text = String::with_capacity(200_000);
    for key in 0..10_000 {
        text.push_str(&format!("{key},value-{key}\n"));
    }
    file.write_all(text.as_bytes())
        .map_err(|e| format!("side input {}: {e}", file.path().display()))?;
    params.insert(
        "side_input".into(),
        toml::Value::String(file.path().display().to_string()),
    );
    Ok(Some(file))
}

pub(crate) fn latency_figures(record: &LatencyRecord, scheduled_s: f64) -> LatencyFigures {
    let h = &record.latency_us;
    LatencyFigures {
        results: h.len(),
        p50_us: h.value_at_quantile(0.5),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        p99_9_us: h.value_at_quantile(0.999),
        p99_99_us: h.value_at_quantile(0.9999),
        max_us: h.max(),
        early: record.early,
        at_input_end: record.at_input_end,
        warmup: record.warmup,
        scheduled_s,
    }
}

fn per_second(record: &LatencyRecord) -> Vec<(u64, u64, u64, u64)> {
    record
        .seconds
        .iter()
        .map(|s| {
            let h = &s.latency_us;
            (
                s.results,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
            )
        })
        .collect()
}

/// The result as a table.
pub fn table(r: &BenchResult) -> String {
    let query = match r.job {
        "sql" => format!("{} sql", r.query),
        _ => r.query.clone(),
    };
    let mut out = format!(
        "query   events      shards  seconds  events/s      per shard     CPU s   peak RSS MiB  results\n\
         {:<7} {:<11} {:<7} {:<8.3} {:<13.0} {:<13.0} {:<7.2} {:<13.1} {}\n",
        query, r.events, r.shards, r.elapsed_s, r.events_per_s, r.events_per_s_per_shard, r.cpu_s, r.peak_rss_mib, r.records_out
    );
    if let Some(l) = r.latency.as_ref().filter(|l| l.results == 0) {
        out.push_str(&format!(
            "latency: no result within the schedule after the warm-up ({} at the input's end, {} in the warm-up)\n",
            l.at_input_end, l.warmup
        ));
    }
    if let (Some(l), Some(rate)) = (r.latency.as_ref().filter(|l| l.results > 0), r.rate) {
        let ms = |us: u64| us as f64 / 1000.0;
        out.push_str(&format!(
            "latency at {rate} events/s offered ({:.1} s scheduled, {:.1} s taken), ms:\n\
             p50      p90      p99      p99.9    p99.99   max      early\n\
             {:<8.3} {:<8.3} {:<8.3} {:<8.3} {:<8.3} {:<8.3} {}\n",
            l.scheduled_s,
            r.elapsed_s,
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.p99_9_us),
            ms(l.p99_99_us),
            ms(l.max_us),
            l.early
        ));
    }
    if let Some(c) = &r.checkpoints {
        out.push_str(&format!(
            "checkpoints every {} ms: {} completed, duration p50 {:.1} ms, max {:.1} ms; uploaded p50 {} / max {} bytes, in all p50 {} / max {} bytes; longest synchronous part {:.2} ms\n",
            c.interval_ms, c.completed, c.duration_p50_ms, c.duration_max_ms, c.bytes_p50, c.bytes_max, c.total_bytes_p50, c.total_bytes_max, c.sync_max_ms
        ));
    }
    out
}

fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Appends the result as one JSON line to `path`.
pub fn append_json(path: &Path, r: &BenchResult) -> Result<(), String> {
    let line = serde_json::to_string(r).map_err(|e| e.to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(file, "{line}").map_err(|e| format!("{}: {e}", path.display()))
}

/// User plus system CPU time of this process (`/proc/self/stat`, in clock ticks
/// of 1/100 s, the Linux default).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned());
    format!(
        "{} × {}",
        sluice_engine::config::available_cpus(),
        model.unwrap_or_else(|| "unknown CPU".into())
    )
}
