//! What a shard acknowledges for a checkpoint, and how its manifest records
//! it.
//!
//! The driver collects one [`ShardAck`] per shard (its state files, source
//! positions, channel states and RocksDB parts) and writes each as a
//! [`TaskEntry`] under the shard's number in the manifest's `tasks`. Restore
//! reads the entries back; an entry that does not parse makes the checkpoint
//! unusable. The JSON shape is the storage format of every checkpoint and
//! savepoint written so far: fields may be added (with defaults), never
//! renamed.

use serde::{Deserialize, Serialize};
use sluice_state::checkpoint_store::FileInfo;
use sluice_state::rocks_backend::NativeHandle;

use super::SourcePositions;

/// What a shard acknowledged: its state files and its source positions
/// (sent from a worker to the coordinator as JSON on a cluster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardAck {
    /// The shard's state files, in the order a restore applies them: a full
    /// one, then the changes after it.
    pub(super) files: Vec<(String, FileInfo)>,
    pub(super) sources: SourcePositions,
    /// Records in flight at unaligned barriers, if any.
    pub(super) channels: Option<(String, FileInfo)>,
    /// The shard's RocksDB instances, and the shared files they consist of.
    pub(super) native: Vec<NativeHandle>,
    pub(super) native_files: Vec<(String, FileInfo)>,
}

/// One shard's entry in a manifest's `tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TaskEntry {
    /// Its state files, in the order a restore applies them.
    pub state: Vec<String>,
    /// Source positions by `source-<node>/<partition>`.
    pub sources: SourcePositions,
    /// Its channel-state file, if records were in flight.
    #[serde(default)]
    pub channels: Option<String>,
    /// Its RocksDB instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rocksdb: Vec<NativeHandle>,
}

impl TaskEntry {
    pub fn of(ack: &ShardAck) -> Self {
        TaskEntry {
            state: ack.files.iter().map(|(name, _)| name.clone()).collect(),
            sources: ack.sources.clone(),
            channels: ack.channels.as_ref().map(|(name, _)| name.clone()),
            rocksdb: ack.native.clone(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a task entry is plain data")
    }

    pub fn from_json(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        TaskEntry::deserialize(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_the_shape_stored_checkpoints_have() {
        // As written before this type existed (`channels` always present,
        // `rocksdb` only when there are instances).
        let stored = serde_json::json!({
            "state": ["00000000000000000007-00001.state"],
            "sources": { "source-1/0": 42 },
            "channels": null,
        });
        let entry = TaskEntry::from_json(&stored).expect("parses");
        assert_eq!(entry.state, ["00000000000000000007-00001.state"]);
        assert_eq!(entry.sources["source-1/0"], 42);
        assert!(entry.rocksdb.is_empty());
        assert_eq!(entry.to_json(), stored);
        let malformed = serde_json::json!({ "state": "not a list", "sources": {} });
        assert!(TaskEntry::from_json(&malformed).is_err());
    }
}
