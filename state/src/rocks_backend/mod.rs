//! The RocksDB state backend (`state.backend = "rocksdb"`): keyed state on
//! local disk, for state larger than memory, with native incremental
//! checkpoints (only SST files the storage does not hold yet are uploaded).
//!
//! - [`key_layout`]: `key group | key | namespace` as one RocksDB key,
//! - [`RocksInstance`]: one RocksDB per plan node per shard, a column family
//!   per state, its checkpoints and its restore,
//! - [`RocksTable`]: a [`KeyedTable`](crate::KeyedTable) over one column family,
//! - [`native`]: what a checkpoint of an instance consists of,
//! - `barrier_view`: how a checkpoint holds the barrier's view while the
//!   memtables flush in the background.

mod barrier_view;
mod instance;
pub mod key_layout;
pub mod native;
mod table;

pub use instance::{PendingNative, RocksInstance, RocksResources};
pub use native::{NativeFile, NativeHandle, NativePart, NativeRestore, SharedFile};
pub use table::RocksTable;
