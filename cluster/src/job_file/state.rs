//! `[state]`: the keyed-state backend and its local directory.

use serde::Deserialize;
use sluice_engine::JobConfig;
use sluice_state::StateBackendKind;

use super::{FileContext, JobFileError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    backend: Option<String>,
    directory: Option<String>,
}

impl RawState {
    /// Validates the section into `config`.
    pub(super) fn apply(
        &self,
        file: &FileContext,
        config: &mut JobConfig,
    ) -> Result<(), JobFileError> {
        config.state_backend = match self.backend.as_deref() {
            None | Some("memory") => StateBackendKind::Memory,
            Some("rocksdb") => StateBackendKind::RocksDb,
            Some(other) => {
                return Err(file.invalid(
                    "state.backend",
                    format!("is \"{other}\", expected \"memory\" or \"rocksdb\""),
                ))
            }
        };
        if let Some(directory) = &self.directory {
            if directory.is_empty() {
                return Err(file.invalid("state.directory", "is empty, expected a local directory"));
            }
            config.state_directory = Some(file.base.join(directory));
        }
        Ok(())
    }
}
