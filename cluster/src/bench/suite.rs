//! `sluice bench nexmark --all`: every registered Nexmark query, first as fast
//! as possible, then in latency mode at half the throughput it just reached;
//! each run in its own process (so peak memory is the run's own), appended to
//! the results file, plotted, and summarized in a section of
//! `bench/RESULTS.md` that this command rewrites (the text around it is kept).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::jobs;

const BEGIN: &str = "<!-- nexmark-suite:begin -->";
const END: &str = "<!-- nexmark-suite:end -->";

/// What the suite runs.
#[derive(Debug, Clone)]
pub struct SuiteSpec {
    pub events: u64,
    pub shards: Option<u32>,
    pub latency_seconds: u64,
    pub flush_timeout_ms: Option<u64>,
    pub results: PathBuf,
    pub report: PathBuf,
    pub plots: PathBuf,
}

/// One query's two runs, as the JSON lines they wrote.
struct QueryRuns {
    query: String,
    throughput: serde_json::Value,
    latency: Option<serde_json::Value>,
}

/// The registered Nexmark queries, in registry order.
pub fn queries() -> Vec<&'static str> {
    jobs::REGISTRY
        .iter()
        .filter_map(|(name, _, _)| name.strip_prefix("nexmark."))
        .collect()
}

/// Half of `events_per_s`, rounded down to two significant digits.
pub fn half_rate(events_per_s: f64) -> u64 {
    let half = (events_per_s / 2.0).max(1.0) as u64;
    let scale = 10u64.pow((half.ilog10()).saturating_sub(1));
    (half / scale * scale).max(1)
}

/// Runs one `sluice bench nexmark` in a child process and returns the JSON line
/// it appended to the results file.
fn run_child(args: &[String], results: &Path) -> Result<serde_json::Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding the sluice binary: {e}"))?;
    let before = std::fs::read_to_string(results)
        .unwrap_or_default()
        .lines()
        .count();
    let status = Command::new(&exe)
        .args(["bench", "nexmark"])
        .args(args)
        .arg("--results")
        .arg(results)
        .status()
        .map_err(|e| format!("running {}: {e}", exe.display()))?;
    if !status.success() {
        return Err(format!(
            "`sluice bench nexmark {}` failed: {status}",
            args.join(" ")
        ));
    }
    let text = std::fs::read_to_string(results)
        .map_err(|e| format!("reading {}: {e}", results.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != before + 1 {
        return Err(format!(
            "{}: expected one new line from `sluice bench nexmark {}`",
            results.display(),
            args.join(" ")
        ));
    }
    serde_json::from_str(lines[before]).map_err(|e| format!("{}: {e}", results.display()))
}

/// Runs the suite and rewrites the report's section.
pub fn run(spec: &SuiteSpec) -> Result<(), String> {
    let mut runs = Vec::new();
    for query in queries() {
        let mut common = vec!["--query".to_owned(), query.to_owned()];
        if let Some(shards) = spec.shards {
            common.extend(["--shards".to_owned(), shards.to_string()]);
        }
        if let Some(ms) = spec.flush_timeout_ms {
            common.extend(["--flush-timeout-ms".to_owned(), ms.to_string()]);
        }
        let mut args = common.clone();
        args.extend([
            "--events".to_owned(),
            spec.events.to_string(),
            "--plot".to_owned(),
            plot_path(&spec.plots, query, "throughput"),
        ]);
        eprintln!("== {query}: throughput");
        let throughput = run_child(&args, &spec.results)?;
        let peak = throughput["events_per_s"].as_f64().unwrap_or(0.0);
        // q12 windows by processing time: its results do not follow the
        // schedule's event time, so it is measured for throughput only.
        let latency = if peak > 0.0 && query != "q12" {
            let rate = half_rate(peak);
            let mut args = common;
            args.extend([
                "--rate".to_owned(),
                rate.to_string(),
                "--events".to_owned(),
                (rate * spec.latency_seconds).to_string(),
                "--plot".to_owned(),
                plot_path(&spec.plots, query, "latency"),
            ]);
            eprintln!("== {query}: latency at {rate} events/s");
            Some(run_child(&args, &spec.results)?)
        } else {
            None
        };
        runs.push(QueryRuns {
            query: query.to_owned(),
            throughput,
            latency,
        });
    }
    let section = section(spec, &runs);
    let old = std::fs::read_to_string(&spec.report).unwrap_or_default();
    std::fs::write(&spec.report, replace_section(&old, &section))
        .map_err(|e| format!("writing {}: {e}", spec.report.display()))?;
    eprintln!("rewrote the suite section of {}", spec.report.display());
    Ok(())
}

fn plot_path(dir: &Path, query: &str, mode: &str) -> String {
    dir.join(format!("nexmark-{query}-{mode}.svg"))
        .display()
        .to_string()
}

/// The report's section (markers included).
fn section(spec: &SuiteSpec, runs: &[QueryRuns]) -> String {
    let first = runs.first().map(|r| &r.throughput);
    let field = |name: &str| {
        first
            .and_then(|v| v[name].as_str())
            .unwrap_or("unknown")
            .to_owned()
    };
    let today =
        crate::jobs::nexmark::calendar::format_day(crate::jobs::nexmark::calendar::day_number(
            (sluice_engine::connectors::nexmark::unix_nanos() / 1_000_000) as i64,
        ));
    let mut out = format!(
        "{BEGIN}\n### Nexmark suite ({today}, commit {}, {})\n\n\
         Written by `sluice bench nexmark --all --events {}{}{} --latency-seconds {}`; plots in `{}`.\n\
         Throughput: as fast as possible into a blackhole. Latency: open loop at half that\n\
         throughput for {} s, from the offer of what a result depends on to its arrival at the sink.\n\n\
         | query | events/s | per shard | CPU s | peak RSS MiB | offered/s | p50 ms | p99 ms | p99.9 ms | p99.99 ms | max ms | results |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        field("commit"),
        field("machine"),
        spec.events,
        spec.shards.map(|s| format!(" --shards {s}")).unwrap_or_default(),
        spec.flush_timeout_ms
            .map(|ms| format!(" --flush-timeout-ms {ms}"))
            .unwrap_or_default(),
        spec.latency_seconds,
        spec.plots.display(),
        spec.latency_seconds,
    );
    // A latency run whose results all came at the end of the input (or in
    // the warm-up) has no percentiles to show.
    let ms = |v: &serde_json::Value, name: &str| match v["latency"]["results"].as_u64() {
        Some(n) if n > 0 => v["latency"][name]
            .as_u64()
            .map_or("—".to_owned(), |us| format!("{:.3}", us as f64 / 1000.0)),
        _ => "—".to_owned(),
    };
    for r in runs {
        let t = &r.throughput;
        let none = serde_json::Value::Null;
        let l = r.latency.as_ref().unwrap_or(&none);
        out.push_str(&format!(
            "| {} | {:.2}M | {:.2}M | {:.1} | {:.0} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.query,
            t["events_per_s"].as_f64().unwrap_or(0.0) / 1e6,
            t["events_per_s_per_shard"].as_f64().unwrap_or(0.0) / 1e6,
            t["cpu_s"].as_f64().unwrap_or(0.0),
            t["peak_rss_mib"].as_f64().unwrap_or(0.0),
            l["rate"].as_u64().map_or("—".into(), |r| r.to_string()),
            ms(l, "p50_us"),
            ms(l, "p99_us"),
            ms(l, "p99_9_us"),
            ms(l, "p99_99_us"),
            ms(l, "max_us"),
            l["latency"]["results"]
                .as_u64()
                .map_or("—".into(), |n| n.to_string()),
        ));
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// `old` with its suite section replaced by `section` (appended if absent).
pub fn replace_section(old: &str, section: &str) -> String {
    match (old.find(BEGIN), old.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            let after = &old[end + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..begin])
        }
        _ if old.is_empty() => section.to_owned(),
        _ => format!("{}\n\n{section}", old.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_rates_keep_two_digits() {
        assert_eq!(half_rate(4_472_496.0), 2_200_000);
        assert_eq!(half_rate(985_758.0), 490_000);
        assert_eq!(half_rate(30.0), 15);
        assert_eq!(half_rate(1.0), 1);
    }

    #[test]
    fn the_section_is_replaced_and_the_rest_kept() {
        let section = format!("{BEGIN}\nnew\n{END}\n");
        let old = format!("intro\n{BEGIN}\nold\n{END}\nafter\n");
        assert_eq!(
            replace_section(&old, &section),
            format!("intro\n{BEGIN}\nnew\n{END}\nafter\n")
        );
        assert_eq!(
            replace_section("intro\n", &section),
            format!("intro\n\n{section}")
        );
        assert_eq!(replace_section("", &section), section);
    }
}
