//! `sluice run` end to end: real processes running registered jobs, their
//! output checked against plain computations done here.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn sluice_run(job: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(job)
        .output()
        .unwrap()
}

fn read_parts(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

#[test]
fn wordcount_matches_a_plain_count_for_any_shard_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut paths = Vec::new();
    for file in 0..3 {
        let mut text = String::new();
        for line in 0..2_000u64 {
            let words: Vec<String> = (0..(line % 7))
                .map(|w| format!("w{}", (line * 31 + w * 17 + file) % 301))
                .collect();
            for w in &words {
                *expected.entry(w.clone()).or_default() += 1;
            }
            text.push_str(&words.join(" "));
            text.push('\n');
        }
        let name = format!("text-{file}.txt");
        std::fs::write(dir.path().join(&name), text).unwrap();
        paths.push(format!("\"{name}\""));
    }
    for shards in [1, 2, 4] {
        let out = dir.path().join(format!("out-{shards}"));
        let job = dir.path().join(format!("wordcount-{shards}.toml"));
        std::fs::write(
            &job,
            format!(
                "job = \"wordcount\"\nshards = {shards}\n[source]\nconnector = \"file\"\npaths = [{}]\nsplit_bytes = 4096\n[sink]\nconnector = \"file\"\npath = \"{}\"\n",
                paths.join(", "),
                out.display()
            ),
        )
        .unwrap();
        let output = sluice_run(&job);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains("job `wordcount` finished") && stderr.contains("records in"),
            "{stderr}"
        );
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for line in read_parts(&out) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let previous = got.insert(
                v["word"].as_str().unwrap().to_owned(),
                v["count"].as_u64().unwrap(),
            );
            assert!(previous.is_none(), "a word was counted twice: {line}");
        }
        assert_eq!(got, expected, "{shards} shards");
    }
}

#[test]
fn windowed_aggregation_is_the_same_on_1_2_and_4_shards() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (shards, batch_bytes) in [(1, 32768), (2, 64), (4, 32768)] {
        let out = dir.path().join(format!("out-{shards}"));
        let job = dir.path().join(format!("job-{shards}.toml"));
        std::fs::write(
            &job,
            format!(
                "job = \"windowed_aggregation\"\nshards = {shards}\n[exchange]\nbatch_bytes = {batch_bytes}\n\
                 [source]\nconnector = \"generator\"\nevents = 300000\nkeys = 300\nseed = 9\nevents_per_second = 50000\n\
                 [sink]\nconnector = \"file\"\npath = \"{}\"\nformat = \"csv\"\n[params]\nwindow = \"sliding\"\nsize_ms = 2000\nslide_ms = 500\n",
                out.display()
            ),
        )
        .unwrap();
        let output = sluice_run(&job);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut lines = read_parts(&out);
        lines.sort();
        outputs.push(lines);
    }
    assert!(outputs[0].len() > 1000);
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

/// Four events of key 7 in one window; line 3 is not JSON.
const EVENTS_WITH_A_BAD_LINE: &str = "{\"seq\":0,\"key\":7,\"value\":5,\"ts\":1000}\n{\"seq\":1,\"key\":7,\"value\":6,\"ts\":1500}\n{\"seq\":2,\"key\":7,\"value\":oops,\"ts\":1600}\n{\"seq\":3,\"key\":7,\"value\":1,\"ts\":1700}\n";

/// `on_bad_record = "skip"` and `"side-output"`: the malformed line is
/// left out and the job succeeds; the side output holds the line, where it
/// was and why it was refused.
#[test]
fn malformed_records_are_skipped_or_written_aside_as_the_source_says() {
    for policy in ["skip", "side-output"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events.jsonl"), EVENTS_WITH_A_BAD_LINE).unwrap();
        let dead_letters = match policy {
            "side-output" => "dead_letter_path = \"bad\"\n",
            _ => "",
        };
        let job = dir.path().join("job.toml");
        std::fs::write(
            &job,
            format!(
                "job = \"windowed_aggregation\"\nshards = 1\n[source]\nconnector = \"file\"\n\
                 paths = [\"events.jsonl\"]\nformat = \"jsonl\"\non_bad_record = \"{policy}\"\n{dead_letters}\
                 [sink]\nconnector = \"file\"\npath = \"out\"\n"
            ),
        )
        .unwrap();
        let output = sluice_run(&job);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{policy}: {stderr}");
        assert!(
            stderr.contains("skipped a bad record at") && stderr.contains("events.jsonl:3"),
            "{policy}: {stderr}"
        );
        let lines = read_parts(&dir.path().join("out"));
        assert_eq!(
            lines,
            vec![
                "{\"key\":7,\"window_start\":1000,\"window_end\":2000,\"count\":3,\"sum\":12}"
                    .to_string()
            ],
            "{policy}"
        );
        let aside = dir.path().join("bad").join("bad-records-00000.jsonl");
        if policy == "skip" {
            assert!(!aside.exists());
            continue;
        }
        let text = std::fs::read_to_string(&aside).unwrap();
        let letters: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(letters.len(), 1, "{text}");
        assert!(letters[0]["location"]
            .as_str()
            .unwrap()
            .ends_with("events.jsonl:3"));
        assert!(letters[0]["record"].as_str().unwrap().contains("oops"));
        assert!(letters[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON"));
    }
}

#[test]
fn a_malformed_record_fails_the_job_naming_it_and_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl"), EVENTS_WITH_A_BAD_LINE).unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "job = \"windowed_aggregation\"\nshards = 1\n[source]\nconnector = \"file\"\npaths = [\"events.jsonl\"]\nformat = \"jsonl\"\n[sink]\nconnector = \"file\"\npath = \"out\"\n",
    )
    .unwrap();
    let output = sluice_run(&job);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("events.jsonl:3") && stderr.contains("invalid JSON"),
        "{stderr}"
    );
    let lines = read_parts(&dir.path().join("out"));
    assert_eq!(
        lines,
        vec![
            "{\"key\":7,\"window_start\":1000,\"window_end\":2000,\"count\":2,\"sum\":11}"
                .to_string()
        ]
    );
}
