//! What a source does with a record it cannot read (`on_bad_record`):
//! fail the job naming where (the default), skip it, or skip it and write it
//! with its error to a dead-letter file (Flink's "side output" for records
//! that fail to deserialize).
//!
//! One [`BadRecords`] per source reader, on the reader's shard. Skipped
//! records are counted and logged with their position, at most one line per
//! second per reader (the next line says how many went unlogged). Dead
//! letters go to `<directory>/bad-records-<partition>.jsonl`, one JSON
//! object per record (`location`, `error`, `record`), appended and flushed
//! as they come (a Kafka partition's file is named
//! `bad-records-<topic>-<partition>.jsonl`): at least once — a record read again after a restore is
//! written again.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::SourceError;

/// See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BadRecordPolicy {
    #[default]
    Fail,
    Skip,
    SideOutput {
        directory: PathBuf,
    },
}

/// How often a reader logs a skipped record at most.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// One reader's bad records (see the module docs).
pub struct BadRecords {
    policy: BadRecordPolicy,
    /// The partition, as named in logs and dead-letter files.
    partition: String,
    skipped: u64,
    last_logged: Option<Instant>,
    unlogged: u64,
    dead_letters: Option<BufWriter<File>>,
}

impl BadRecords {
    /// A numbered partition's (a file split).
    pub fn new(policy: &BadRecordPolicy, partition: u32) -> Self {
        Self::named(policy, format!("{partition:05}"))
    }

    /// A named partition's (`topic-3`).
    pub fn named(policy: &BadRecordPolicy, partition: String) -> Self {
        BadRecords {
            policy: policy.clone(),
            partition,
            skipped: 0,
            last_logged: None,
            unlogged: 0,
            dead_letters: None,
        }
    }

    /// Records skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The record `raw` at `location` could not be read for `reason`: an
    /// error under `fail`, else skipped (and written to the dead letters).
    pub fn handle(
        &mut self,
        location: String,
        reason: String,
        raw: &str,
    ) -> Result<(), SourceError> {
        let directory = match &self.policy {
            BadRecordPolicy::Fail => return Err(SourceError::BadRecord { location, reason }),
            BadRecordPolicy::Skip => None,
            BadRecordPolicy::SideOutput { directory } => Some(directory.clone()),
        };
        if let Some(directory) = directory {
            self.dead_letter(&directory, &location, &reason, raw)?;
        }
        self.skipped += 1;
        if self.last_logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            let unlogged = std::mem::take(&mut self.unlogged);
            let more = match unlogged {
                0 => String::new(),
                n => format!(", and {n} more since the last line"),
            };
            tracing::warn!(
                "skipped a bad record at {location}: {reason} ({} skipped in partition {}{more})",
                self.skipped,
                self.partition
            );
            self.last_logged = Some(Instant::now());
        } else {
            self.unlogged += 1;
        }
        Ok(())
    }

    fn dead_letter(
        &mut self,
        directory: &Path,
        location: &str,
        reason: &str,
        raw: &str,
    ) -> Result<(), SourceError> {
        let path = directory.join(format!("bad-records-{}.jsonl", self.partition));
        let failed = |source| SourceError::Io {
            path: path.clone(),
            source,
        };
        if self.dead_letters.is_none() {
            std::fs::create_dir_all(directory).map_err(failed)?;
            let file = File::options()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(failed)?;
            self.dead_letters = Some(BufWriter::new(file));
        }
        let line = serde_json::json!({ "location": location, "error": reason, "record": raw });
        let out = self.dead_letters.as_mut().expect("opened above");
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_does_what_it_says() {
        let mut fail = BadRecords::new(&BadRecordPolicy::Fail, 0);
        let error = fail
            .handle("a.jsonl:3".into(), "invalid JSON".into(), "{")
            .unwrap_err();
        assert!(error.to_string().contains("a.jsonl:3"), "{error}");

        let mut skip = BadRecords::new(&BadRecordPolicy::Skip, 0);
        for _ in 0..3 {
            skip.handle("a.jsonl:3".into(), "invalid JSON".into(), "{")
                .unwrap();
        }
        assert_eq!(skip.skipped(), 3);

        let dir = tempfile::tempdir().unwrap();
        let letters = dir.path().join("dead");
        let policy = BadRecordPolicy::SideOutput {
            directory: letters.clone(),
        };
        let mut side = BadRecords::new(&policy, 7);
        side.handle("a.jsonl:3".into(), "invalid JSON".into(), "{oops")
            .unwrap();
        side.handle("a.jsonl:9".into(), "missing field".into(), "{}")
            .unwrap();
        let text = std::fs::read_to_string(letters.join("bad-records-00007.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["location"], "a.jsonl:3");
        assert_eq!(lines[0]["record"], "{oops");
        assert_eq!(lines[1]["error"], "missing field");

        // A dead-letter directory that cannot be made is an error naming it.
        std::fs::write(dir.path().join("file"), "").unwrap();
        let blocked = BadRecordPolicy::SideOutput {
            directory: dir.path().join("file"),
        };
        let error = BadRecords::new(&blocked, 0)
            .handle("x".into(), "y".into(), "z")
            .unwrap_err();
        assert!(
            error.to_string().contains("bad-records-00000.jsonl"),
            "{error}"
        );
    }
}
