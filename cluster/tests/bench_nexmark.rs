//! `sluice bench nexmark`: a table on stdout and one JSON line per run.

use std::process::Command;

#[test]
fn reports_throughput_as_a_table_and_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    for _ in 0..2 {
        let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "bench",
                "nexmark",
                "--query",
                "q2",
                "--events",
                "20k",
                "--shards",
                "2",
                "--results",
            ])
            .arg(&results)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let table = String::from_utf8_lossy(&output.stdout);
        assert!(
            table.starts_with("query")
                && table.lines().nth(1).unwrap().starts_with("q2      20000"),
            "{table}"
        );
    }
    let text = std::fs::read_to_string(&results).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "appended, not overwritten");
    for run in lines {
        assert_eq!(
            (
                run["query"].as_str(),
                run["events"].as_u64(),
                run["shards"].as_u64()
            ),
            (Some("q2"), Some(20_000), Some(2))
        );
        assert!(
            run["events_per_s"].as_f64().unwrap() > 0.0
                && run["peak_rss_mib"].as_f64().unwrap() > 0.0,
            "{run}"
        );
        assert!(run["machine"].as_str().unwrap().contains('×'), "{run}");
    }
}

#[test]
fn an_unknown_query_is_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "nexmark", "--query", "q99", "--events", "1k"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("query `q99` is not implemented") && stderr.contains("q5"),
        "{stderr}"
    );
}

#[test]
fn latency_mode_offers_events_on_a_schedule_and_reports_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    // q5: results fired by the watermark; q13: event-driven, with the bench's
    // default side table.
    // q5 in windows of 200 ms sliding by 100 ms, so many close within the run.
    for (query, params) in [
        (
            "q5",
            &[
                "--param",
                "window_size_ms=200",
                "--param",
                "window_slide_ms=100",
            ][..],
        ),
        ("q13", &["--plot", "PLOT"][..]),
    ] {
        let plot = dir.path().join("plots/q13.svg");
        let params: Vec<&str> = params
            .iter()
            .map(|&p| {
                if p == "PLOT" {
                    plot.to_str().unwrap()
                } else {
                    p
                }
            })
            .collect();
        let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["bench", "nexmark", "--query", query, "--events", "300k"])
            .args(&params)
            .args(["--shards", "2", "--rate", "100k", "--results"])
            .arg(&results)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("p99.99") && stdout.contains("100000 events/s offered"),
            "{stdout}"
        );
    }
    // The plot: throughput and latency panels with their axes.
    let svg = std::fs::read_to_string(dir.path().join("plots/q13.svg")).unwrap();
    for part in ["<svg", "M events/s in", "latency, ms", "p99", "<polyline"] {
        assert!(svg.contains(part), "{part} missing from the plot");
    }
    let text = std::fs::read_to_string(&results).unwrap();
    for line in text.lines() {
        let run: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(run["mode"], "latency", "{run}");
        let latency = &run["latency"];
        let results = latency["results"].as_u64().unwrap();
        let at_end = latency["at_input_end"].as_u64().unwrap();
        let warmup = latency["warmup"].as_u64().unwrap();
        assert!(results > 10 && warmup > 0, "{run}");
        assert_eq!(
            results + at_end + warmup,
            run["records_out"].as_u64().unwrap(),
            "{run}"
        );
        assert_eq!(
            latency["early"], 0,
            "nothing before what it depends on: {run}"
        );
        let p = |name: &str| latency[name].as_u64().unwrap();
        assert!(
            p("p50_us") <= p("p99_us") && p("p99_us") <= p("max_us"),
            "{run}"
        );
        // 3 s of schedule: nothing can have waited longer than the run.
        assert!(p("max_us") < 10_000_000, "{run}");
        assert!(run["elapsed_s"].as_f64().unwrap() >= 3.0, "{run}");
    }
}

/// `--events-file`: the events of a generated file, counted from it; the
/// hand-written job and the SQL one give the results they give on the
/// generator's same events.
#[test]
fn reads_the_events_from_a_generated_file() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let events = dir.path().join("events");
    let file = events.join("events.jsonl");
    let results = dir.path().join("results.jsonl");
    let (events, file, results) = (
        events.to_str().unwrap(),
        file.to_str().unwrap(),
        results.to_str().unwrap(),
    );
    sluice(&[
        "nexmark", "generate", "--events", "30k", "--seed", "5", "--out", events,
    ]);
    // The hand-written job and the SQL one, on the generator, then on the file.
    let q3 = [
        "bench", "nexmark", "--query", "q3", "--shards", "1", "--sql",
    ];
    let rest = ["--rounds", "1", "--results", results];
    sluice(&[&q3[..], &["--seed", "5", "--events", "30k"], &rest].concat());
    sluice(&[&q3[..], &["--events-file", file], &rest].concat());
    let text = std::fs::read_to_string(results).unwrap();
    let runs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r["input"].as_str().unwrap().to_owned(),
                r["job"].as_str().unwrap().to_owned(),
                r["events"].as_u64().unwrap(),
                r["records_out"].as_u64().unwrap(),
            )
        })
        .collect();
    let out = summary[0].3;
    assert!(out > 10, "{summary:?}");
    assert_eq!(
        summary,
        [
            ("generator".into(), "hand-written".into(), 30_000, out),
            ("generator".into(), "sql".into(), 30_000, out),
            ("events-file".into(), "hand-written".into(), 30_000, out),
            ("events-file".into(), "sql".into(), 30_000, out),
        ]
    );
}
