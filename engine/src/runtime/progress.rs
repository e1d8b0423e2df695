//! Progress of a running job, on the thread that waits for the shards: a
//! sample of the totals every `progress_interval` (kept for the job report, so
//! benchmarks can plot throughput over time) and a line on stderr — redrawn in
//! place as a bar when stderr is a terminal and the expected number of input
//! records is known, one line per sample otherwise (logs stay readable).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::execute::format_watermark;
use crate::metrics::JobTotals;

/// The totals at one moment of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressSample {
    /// Seconds since the job started.
    pub elapsed_s: f64,
    pub records_in: u64,
    pub records_out: u64,
}

pub(crate) struct ProgressReporter {
    interval: Duration,
    expected_in: Option<u64>,
    bar: bool,
    next_at: Duration,
    samples: Vec<ProgressSample>,
}

impl ProgressReporter {
    pub(crate) fn new(interval: Duration, expected_in: Option<u64>) -> Self {
        ProgressReporter {
            interval,
            expected_in,
            bar: expected_in.is_some() && std::io::stderr().is_terminal(),
            next_at: interval,
            samples: Vec::new(),
        }
    }

    /// Samples and reports if an interval has passed.
    pub(crate) fn tick(&mut self, elapsed: Duration, totals: impl FnOnce() -> JobTotals) {
        if elapsed < self.next_at {
            return;
        }
        self.next_at = elapsed + self.interval;
        let t = totals();
        let previous = self.samples.last().copied();
        let sample = ProgressSample {
            elapsed_s: elapsed.as_secs_f64(),
            records_in: t.records_in,
            records_out: t.records_out,
        };
        self.samples.push(sample);
        let rate = previous.map_or(sample.records_in as f64 / sample.elapsed_s, |p| {
            (sample.records_in - p.records_in) as f64 / (sample.elapsed_s - p.elapsed_s)
        });
        let mut err = std::io::stderr().lock();
        let _ = match (self.bar, self.expected_in) {
            (true, Some(expected)) => write!(
                err,
                "\r{} {:.1}s {} events/s out {}   ",
                bar(sample.records_in, expected),
                sample.elapsed_s,
                si(rate),
                sample.records_out
            ),
            _ => writeln!(
                err,
                "progress: {:.1}s records in {} ({} /s) out {} exchanged {} MiB watermark {}",
                sample.elapsed_s,
                t.records_in,
                si(rate),
                t.records_out,
                t.bytes_exchanged >> 20,
                format_watermark(t.watermark)
            ),
        };
    }

    /// Ends the bar's line and returns the samples.
    pub(crate) fn finish(self) -> Vec<ProgressSample> {
        if self.bar && !self.samples.is_empty() {
            eprintln!();
        }
        self.samples
    }
}

/// `[#########...........]  45% 4.5M/10.0M`
fn bar(done: u64, total: u64) -> String {
    const WIDTH: usize = 30;
    let fraction = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (fraction * WIDTH as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}% {}/{}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        fraction * 100.0,
        si(done as f64),
        si(total as f64)
    )
}

/// 4.5M, 820.0k, 12
fn si(value: f64) -> String {
    match value {
        v if v >= 1e9 => format!("{:.1}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_numbers() {
        assert_eq!(bar(0, 10), format!("[{}]   0% 0/10", ".".repeat(30)));
        assert_eq!(
            bar(4_500_000, 10_000_000),
            format!("[{}{}]  45% 4.5M/10.0M", "#".repeat(14), ".".repeat(16))
        );
        assert_eq!(bar(12, 10), format!("[{}] 100% 12/10", "#".repeat(30)));
        assert_eq!(si(820_000.0), "820.0k");
    }

    #[test]
    fn samples_once_per_interval() {
        let mut reporter = ProgressReporter::new(Duration::from_secs(1), Some(100));
        let totals = |n: u64| {
            move || JobTotals {
                records_in: n,
                ..JobTotals::default()
            }
        };
        reporter.tick(Duration::from_millis(500), totals(5));
        reporter.tick(Duration::from_millis(1000), totals(10));
        reporter.tick(Duration::from_millis(1500), totals(15));
        reporter.tick(Duration::from_millis(2100), totals(21));
        let samples = reporter.finish();
        let got: Vec<(f64, u64)> = samples
            .iter()
            .map(|s| (s.elapsed_s, s.records_in))
            .collect();
        assert_eq!(got, [(1.0, 10), (2.1, 21)]);
    }
}
