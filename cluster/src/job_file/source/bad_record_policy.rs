//! `on_bad_record` and `dead_letter_path`: what a source (file or Kafka)
//! does with a record it cannot read.

use std::path::PathBuf;

use sluice_engine::connectors::BadRecordPolicy;

use super::super::{FileContext, JobFileError};

/// Reads the policy: "fail" (default), "skip", or "side-output" to
/// `dead_letter_path` (which only that policy takes).
pub(super) fn bad_record_policy(
    file: &FileContext,
    on_bad_record: Option<&str>,
    dead_letter_path: Option<PathBuf>,
) -> Result<BadRecordPolicy, JobFileError> {
    match (on_bad_record, dead_letter_path) {
        (None | Some("fail"), None) => Ok(BadRecordPolicy::Fail),
        (Some("skip"), None) => Ok(BadRecordPolicy::Skip),
        (Some("side-output"), Some(path)) => Ok(BadRecordPolicy::SideOutput {
            directory: file.resolve(&path),
        }),
        (Some("side-output"), None) => Err(file.invalid(
            "source.dead_letter_path",
            "is missing: on_bad_record = \"side-output\" writes bad records there",
        )),
        (Some("fail" | "skip") | None, Some(_)) => Err(file.invalid(
            "source.dead_letter_path",
            "applies only with on_bad_record = \"side-output\"",
        )),
        (Some(other), _) => Err(file.invalid(
            "source.on_bad_record",
            format!("is \"{other}\", expected \"fail\", \"skip\" or \"side-output\""),
        )),
    }
}
