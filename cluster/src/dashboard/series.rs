//! A job's live figures over the last minutes, for the dashboard's charts:
//! one point a second of its records out (as a rate) and its sinks'
//! latency (99th percentile over the second).
//!
//! Kept by whoever samples the job (the coordinator's tick thread, or
//! `sluice run --ui`'s sampler), read by the dashboard's requests.

use std::collections::VecDeque;

use serde::Serialize;

/// How many points a series keeps (five minutes at one a second).
pub const POINTS_KEPT: usize = 300;

/// One job's series.
#[derive(Debug, Default, Clone)]
pub struct JobSeries {
    points: VecDeque<Point>,
    /// The last total of records out and when it was taken, with its
    /// attempt: a new attempt counts from zero again.
    last: Option<(i64, u64, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    at_ms: i64,
    records_out_per_s: f64,
    latency_p99_ms: Option<f64>,
}

/// The series as the dashboard reads it: parallel arrays.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct SeriesView {
    pub at_ms: Vec<i64>,
    pub records_out_per_s: Vec<f64>,
    pub latency_p99_ms: Vec<Option<f64>>,
}

impl JobSeries {
    /// The job's total records out at `at_ms` under `attempt`, and its
    /// sinks' latency over the last interval.
    pub fn record(
        &mut self,
        at_ms: i64,
        attempt: u32,
        records_out: u64,
        latency_p99_us: Option<u64>,
    ) {
        let rate = match self.last {
            Some((then, before, same)) if same == attempt && at_ms > then => {
                records_out.saturating_sub(before) as f64 * 1000.0 / (at_ms - then) as f64
            }
            Some((then, _, _)) if at_ms <= then => return,
            _ => 0.0,
        };
        self.last = Some((at_ms, records_out, attempt));
        if self.points.len() == POINTS_KEPT {
            self.points.pop_front();
        }
        self.points.push_back(Point {
            at_ms,
            records_out_per_s: rate,
            latency_p99_ms: latency_p99_us.map(|us| us as f64 / 1000.0),
        });
    }

    pub fn view(&self) -> SeriesView {
        SeriesView {
            at_ms: self.points.iter().map(|p| p.at_ms).collect(),
            records_out_per_s: self.points.iter().map(|p| p.records_out_per_s).collect(),
            latency_p99_ms: self.points.iter().map(|p| p.latency_p99_ms).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_successive_totals_and_a_new_attempt_starts_over() {
        let mut series = JobSeries::default();
        series.record(1_000, 1, 0, None);
        series.record(2_000, 1, 5_000, Some(2_500));
        series.record(2_500, 1, 6_000, None);
        // Attempt 2 counts from zero: no negative rate.
        series.record(3_500, 2, 100, None);
        series.record(3_500, 2, 200, None); // no time passed: dropped
        let view = series.view();
        assert_eq!(view.at_ms, [1_000, 2_000, 2_500, 3_500]);
        assert_eq!(view.records_out_per_s, [0.0, 5_000.0, 2_000.0, 0.0]);
        assert_eq!(view.latency_p99_ms, [None, Some(2.5), None, None]);
    }

    #[test]
    fn it_keeps_the_last_five_minutes() {
        let mut series = JobSeries::default();
        for i in 0..(POINTS_KEPT as i64 + 50) {
            series.record(i * 1000, 1, i as u64 * 10, None);
        }
        let view = series.view();
        assert_eq!(view.at_ms.len(), POINTS_KEPT);
        assert_eq!(view.at_ms[0], 50_000);
    }
}
