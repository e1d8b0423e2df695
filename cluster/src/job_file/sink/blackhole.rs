//! `[sink] connector = "blackhole"`: counts records and drops them.

use serde::Deserialize;

/// The blackhole sink takes no fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlackholeSink {}
