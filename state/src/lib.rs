//! Keyed state for Sluice: key groups and the state backends that store by them.
//!
//! This crate is a leaf: it knows nothing of shards, operators or the network.
//! It defines
//! - the **stable key hash** ([`StableKey`]) that every machine and build computes
//!   identically,
//! - **key groups** ([`KeyGroup`], [`KeyGroupRange`]): the unit in which state is
//!   stored, snapshotted and moved between shards,
//! - the **backend contract** ([`KeyedTable`], [`StateBackend`]) and the
//!   in-memory backend ([`MemoryTable`]). The RocksDB backend implements the same
//!   contract,
//! - the **RocksDB backend** ([`rocks_backend`]): state on local disk with
//!   native incremental checkpoints,
//! - **checkpoint storage** ([`checkpoint_store`]): object stores and the
//!   catalog of a job's checkpoints (manifests, shared files, retention).
//!
//! Backends are single-threaded by design: a backend instance belongs to one
//! shard and lives on that shard's core. Checkpoint storage blocks on I/O and
//! runs on an I/O thread.

mod backend;
#[cfg(test)]
mod backend_suite;
pub mod checkpoint_store;
mod codec;
mod fast_hash;
mod key_group;
mod memory;
mod namespaced_memory;
mod open_table;
pub mod rocks_backend;
mod snapshot;
mod stable_hash;
mod tracked_table;

pub use backend::{
    KeyedTable, Slot, SlotAction, StateBackend, StateBackendKind, StateKey, StateValue,
};
pub use codec::{CodecError, PartReader, PartWriter, StateCodec, StateMap, StateOption, StateVec};
pub use fast_hash::{FastHashMap, FastHashSet, FastHasher};
pub use key_group::{
    KeyGroup, KeyGroupRange, KeyGroups, DEFAULT_MAX_PARALLELISM, MAX_PARALLELISM_LIMIT,
};
pub use memory::MemoryTable;
pub use namespaced_memory::NamespacedMemoryTable;
pub use snapshot::{
    EntryPart, EntryWriter, GroupBytes, OwnerSnapshot, RestoreSet, SharedTable, SnapshotKind,
    SnapshotState, StateFile, StateFileWriter, StateRegistry, CHANGE_TAG_DELETE, CHANGE_TAG_PUT,
};
pub use stable_hash::StableKey;
pub use tracked_table::{Marked, StoredValue, TrackedTable};
