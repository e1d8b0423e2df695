//! The plot of one `sluice bench nexmark` run, as SVG: input throughput per
//! second over the run and, in latency mode, the p50, p99 and maximum latency
//! of the results of each second (log scale).

use std::path::Path;

use plotters::prelude::*;

use crate::bench::nexmark::BenchResult;

/// (x, y) pairs of a line.
type Points = Vec<(f64, f64)>;

/// Events read per second, from the progress samples: (end of interval in s,
/// M events/s).
fn throughput_points(r: &BenchResult) -> Points {
    let mut points = Vec::new();
    let mut previous = (0.0, 0u64);
    for s in &r.progress {
        let seconds = s.elapsed_s - previous.0;
        if seconds > 0.0 {
            let rate = (s.records_in - previous.1) as f64 / seconds / 1e6;
            points.push((s.elapsed_s, rate));
        }
        previous = (s.elapsed_s, s.records_in);
    }
    points
}

/// Writes the plot of `r` to `path` (an `.svg` file).
pub fn write_svg(path: &Path, r: &BenchResult) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("plotting {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let latency = !r.seconds.is_empty();
    let root = SVGBackend::new(path, (900, if latency { 620 } else { 320 })).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (upper, lower) = if latency {
        root.split_vertically(300)
    } else {
        (root.clone(), root.clone())
    };

    let points = throughput_points(r);
    let x_max = points.last().map_or(1.0, |p| p.0).max(r.elapsed_s).max(1.0);
    let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(0.001) * 1.15;
    let title = format!(
        "nexmark {} · {} shards · {} · {}",
        r.query,
        r.shards,
        match r.rate {
            Some(rate) => format!("{rate} events/s offered"),
            None => "as fast as possible".into(),
        },
        r.commit
    );
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("M events/s in")
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(points, &BLUE))
        .map_err(|e| fail(&e))?;

    if latency {
        let ms = |us: u64| (us as f64 / 1000.0).max(0.001);
        type Pick = fn(&(u64, u64, u64, u64)) -> u64;
        let picks: [(&str, RGBColor, Pick); 3] = [
            ("p50", GREEN, |s| s.1),
            ("p99", BLUE, |s| s.2),
            ("max", RED, |s| s.3),
        ];
        let series: Vec<(&str, RGBColor, Points)> = picks
            .iter()
            .map(|&(name, color, pick)| {
                let points = r
                    .seconds
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.0 > 0)
                    .map(|(i, s)| (i as f64 + 1.0, ms(pick(s))))
                    .collect();
                (name, color, points)
            })
            .collect();
        let top = series
            .iter()
            .flat_map(|(_, _, p)| p.iter().map(|q| q.1))
            .fold(1.0, f64::max)
            * 2.0;
        let mut chart = ChartBuilder::on(&lower)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x_max, (0.001..top).log_scale())
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("latency, ms")
            .draw()
            .map_err(|e| fail(&e))?;
        for (name, color, points) in series {
            chart
                .draw_series(LineSeries::new(points, &color))
                .map_err(|e| fail(&e))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}
