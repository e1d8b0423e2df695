//! `[source] connector = "file"`: lines of local files, split for parallel
//! reading; `format = "nexmark"` reads the Nexmark events that
//! `sluice nexmark generate` wrote (JSON lines) for the Nexmark jobs and
//! SQL tables of the `nexmark` connector's columns.

use std::path::PathBuf;

use serde::Deserialize;
use sluice_engine::connectors::{RecordFormat, SPLIT_BYTES_DEFAULT};

use super::super::{parse_format, FileContext, JobFileError};
use super::bad_record_policy::bad_record_policy;
use super::SourceSpec;

/// The file connector's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSource {
    paths: Option<Vec<PathBuf>>,
    format: Option<String>,
    split_bytes: Option<u64>,
    /// "fail" (default), "skip" or "side-output" (to `dead_letter_path`).
    on_bad_record: Option<String>,
    dead_letter_path: Option<PathBuf>,
}

impl RawFileSource {
    pub(super) fn spec(self, file: &FileContext) -> Result<SourceSpec, JobFileError> {
        let paths = self.paths.ok_or_else(|| {
            file.invalid(
                "source.paths",
                "is missing: the file connector needs a list of files",
            )
        })?;
        if paths.is_empty() {
            return Err(file.invalid("source.paths", "is empty, expected at least one file"));
        }
        let mut resolved = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let full = file.resolve(p);
            match std::fs::metadata(&full) {
                Ok(m) if m.is_file() => resolved.push(full),
                Ok(_) => {
                    return Err(file.invalid(
                        &format!("source.paths[{i}]"),
                        format!("`{}` is not a file", full.display()),
                    ))
                }
                Err(e) => {
                    return Err(file.invalid(
                        &format!("source.paths[{i}]"),
                        format!("`{}`: {e}", full.display()),
                    ))
                }
            }
        }
        // "nexmark": the JSON lines `sluice nexmark generate` writes, read
        // as Nexmark events (the `nexmark` connector's, from files).
        let format_name = self.format.as_deref().unwrap_or("text");
        let nexmark = format_name == "nexmark";
        let format = if nexmark {
            RecordFormat::JsonLines
        } else {
            parse_format(format_name).map_err(|_| {
                file.invalid(
                    "source.format",
                    format!(
                        "is \"{format_name}\", expected \"jsonl\", \"csv\", \"text\" or \"nexmark\""
                    ),
                )
            })?
        };
        let split_bytes = self.split_bytes.unwrap_or(SPLIT_BYTES_DEFAULT);
        if split_bytes == 0 {
            return Err(file.invalid("source.split_bytes", "is 0, expected at least 1"));
        }
        let bad_records =
            bad_record_policy(file, self.on_bad_record.as_deref(), self.dead_letter_path)?;
        Ok(SourceSpec::File {
            paths: resolved,
            format,
            nexmark,
            split_bytes,
            bad_records,
        })
    }
}
