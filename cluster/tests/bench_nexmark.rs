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
