//! `[sink] connector = "blackhole"`: counts records and drops them;
//! with `records_per_second`, at most that many per shard (a slow consumer,
//! for trying backpressure).

use serde::Deserialize;

use super::SinkSpec;
use crate::job_file::{FileContext, JobFileError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlackholeSink {
    records_per_second: Option<u64>,
}

impl RawBlackholeSink {
    pub(super) fn spec(self, file: &FileContext) -> Result<SinkSpec, JobFileError> {
        if self.records_per_second == Some(0) {
            return Err(file.invalid(
                "sink.records_per_second",
                "is 0, expected at least 1 (or no limit: leave it out)",
            ));
        }
        Ok(SinkSpec::Blackhole {
            records_per_second: self.records_per_second,
        })
    }
}
