//! `sluice bench nexmark`: runs a Nexmark query as fast as possible on the
//! in-process generator into a blackhole, and reports throughput (in total and
//! per shard), CPU seconds and peak resident memory — as a table on stdout and
//! as one JSON line appended to a results file.
//!
//! Throughput mode only, so far; the latency mode (open-loop offered rate,
//! percentiles), plots and the peers come with the rest of the Nexmark issue.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_bench::nexmark::NexmarkConfig;
use sluice_engine::StreamEnv;

use crate::job_file::{EventTimeSpec, JobFile, SinkSpec, SourceSpec};
use crate::jobs;

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub query: String,
    pub events: u64,
    pub shards: u32,
    pub seed: u64,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    pub events_per_s_per_shard: f64,
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
    pub records_out: u64,
    pub commit: String,
    pub machine: String,
}

/// Runs `nexmark.<query>` and returns what it measured.
pub fn run(
    query: &str,
    events: u64,
    shards: Option<u32>,
    seed: u64,
) -> Result<BenchResult, String> {
    let name = format!("nexmark.{query}");
    let build = jobs::find(&name).ok_or_else(|| {
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
        ..Default::default()
    };
    if let Some(shards) = shards {
        config.shards = shards;
        config.max_parallelism = config.max_parallelism.max(shards);
    }
    config.validate()?;
    let nexmark = NexmarkConfig {
        seed,
        events: Some(events),
        partitions: config.shards.max(8),
        ..Default::default()
    };
    let file = JobFile {
        path: PathBuf::from(format!("<sluice bench nexmark --query {query}>")),
        job: name,
        event_time: EventTimeSpec {
            processing_time: false,
            out_of_orderness_ms: nexmark.occasional_delay_ms,
            idle_timeout: None,
        },
        source: SourceSpec::Nexmark(nexmark),
        sink: SinkSpec::Blackhole,
        params: toml::Table::new(),
        config: config.clone(),
    };
    let env = StreamEnv::new(config);
    build(&file, &env).map_err(|e| e.to_string())?;
    let cpu_before = cpu_seconds();
    let report = env.execute().map_err(|e| e.to_string())?;
    let elapsed_s = report.elapsed.as_secs_f64();
    let events_per_s = events as f64 / elapsed_s.max(1e-9);
    Ok(BenchResult {
        query: query.to_owned(),
        events,
        shards: report.shards,
        seed,
        elapsed_s,
        events_per_s,
        events_per_s_per_shard: events_per_s / report.shards as f64,
        cpu_s: cpu_seconds() - cpu_before,
        peak_rss_mib: proc_status_kib("VmHWM") as f64 / 1024.0,
        records_out: report.totals.records_out,
        commit: git_commit(),
        machine: machine(),
    })
}

/// The result as a table.
pub fn table(r: &BenchResult) -> String {
    format!(
        "query   events      shards  seconds  events/s      per shard     CPU s   peak RSS MiB  results\n\
         {:<7} {:<11} {:<7} {:<8.3} {:<13.0} {:<13.0} {:<7.2} {:<13.1} {}\n",
        r.query, r.events, r.shards, r.elapsed_s, r.events_per_s, r.events_per_s_per_shard, r.cpu_s, r.peak_rss_mib, r.records_out
    )
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

fn git_commit() -> String {
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
