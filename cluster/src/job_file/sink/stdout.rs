//! `[sink] connector = "stdout"`: one line per record on standard output.

use serde::Deserialize;

use super::super::{parse_format, FileContext, JobFileError};
use super::SinkSpec;

/// The stdout sink's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStdoutSink {
    format: Option<String>,
}

impl RawStdoutSink {
    pub(super) fn spec(self, file: &FileContext) -> Result<SinkSpec, JobFileError> {
        Ok(SinkSpec::Stdout {
            format: parse_format(self.format.as_deref().unwrap_or("jsonl"))
                .map_err(|m| file.invalid("sink.format", m))?,
        })
    }
}
