//! Log lines of `sluice run` end to end: as text and as JSON
//! (`SLUICE_LOG_FORMAT`), each line about a job within its `job` span.

use std::path::Path;
use std::process::Command;

/// A small job file (wordcount over one file) in `dir`.
fn small_job(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("words.txt"), "a b c\nb c\nc\n").unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        "job = \"wordcount\"\nshards = 2\n[source]\nconnector = \"file\"\npaths = [\"words.txt\"]\n\
         [sink]\nconnector = \"stdout\"\n",
    )
    .unwrap();
    job
}

#[test]
fn log_lines_name_their_job_and_shard_as_text_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let job = small_job(dir.path());
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", job.to_str().unwrap()])
            .env("SLUICE_LOG_FORMAT", format)
            .output()
            .unwrap()
    };
    let text = run("text");
    assert!(text.status.success(), "{text:?}");
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("sluice: job{job=wordcount}: starting shard(s) [0, 1] of 2")),
        "{stderr}"
    );
    let json = run("json");
    assert!(json.status.success(), "{json:?}");
    let stderr = String::from_utf8_lossy(&json.stderr);
    let starting = (stderr.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            (v["fields"]["message"].as_str()).is_some_and(|m| m.starts_with("starting shard(s)"))
        })
        .unwrap_or_else(|| panic!("no JSON line about the start:\n{stderr}"));
    assert_eq!(starting["level"], "INFO");
    assert_eq!(starting["spans"][0]["name"], "job");
    assert_eq!(starting["spans"][0]["job"], "wordcount");
    let bad = run("yaml");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SLUICE_LOG_FORMAT is `yaml`"));
}
