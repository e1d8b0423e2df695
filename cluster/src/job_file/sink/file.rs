//! `[sink] connector = "file"`: part files in a directory (exactly once with
//! checkpoints).

use std::path::PathBuf;

use serde::Deserialize;

use super::super::{parse_format, FileContext, JobFileError};
use super::{sink_directory, SinkSpec};

/// The file sink's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSink {
    format: Option<String>,
    path: Option<PathBuf>,
}

impl RawFileSink {
    pub(super) fn spec(self, file: &FileContext) -> Result<SinkSpec, JobFileError> {
        let directory = sink_directory(file, self.path, "the file sink needs an output directory")?;
        Ok(SinkSpec::File {
            directory,
            format: parse_format(self.format.as_deref().unwrap_or("jsonl"))
                .map_err(|m| file.invalid("sink.format", m))?,
        })
    }
}
