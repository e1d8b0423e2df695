//! Where each record of an exchange goes.

use std::marker::PhantomData;

use sluice_state::{KeyGroups, StableKey};

/// The destination of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Shard(u32),
    AllShards,
}

/// Chooses each record's destination shard. Runs per record on the sending
/// shard, so it must be cheap and must not allocate.
pub trait Partitioner<T>: 'static {
    fn route(&mut self, record: &T) -> Route;
}

/// Routes by key: stable hash → key group → owning shard.
pub struct KeyPartitioner<K, F> {
    key_of: F,
    groups: KeyGroups,
    _key: PhantomData<fn() -> K>,
}

impl<K, F> KeyPartitioner<K, F> {
    pub fn new(key_of: F, groups: KeyGroups) -> Self {
        KeyPartitioner {
            key_of,
            groups,
            _key: PhantomData,
        }
    }
}

impl<T, K: StableKey + 'static, F: Fn(&T) -> K + 'static> Partitioner<T> for KeyPartitioner<K, F> {
    #[inline]
    fn route(&mut self, record: &T) -> Route {
        let group = self
            .groups
            .key_group_of_hash((self.key_of)(record).stable_hash());
        Route::Shard(self.groups.shard_of(group))
    }
}

/// Spreads records evenly over all shards, starting with the next one.
pub struct RoundRobinPartitioner {
    next: u32,
    shards: u32,
}

impl RoundRobinPartitioner {
    pub fn new(shard: u32, shards: u32) -> Self {
        RoundRobinPartitioner {
            next: (shard + 1) % shards,
            shards,
        }
    }
}

impl<T> Partitioner<T> for RoundRobinPartitioner {
    #[inline]
    fn route(&mut self, _record: &T) -> Route {
        let shard = self.next;
        self.next = if self.next + 1 == self.shards {
            0
        } else {
            self.next + 1
        };
        Route::Shard(shard)
    }
}

/// Sends every record to every shard.
pub struct BroadcastPartitioner;

impl<T> Partitioner<T> for BroadcastPartitioner {
    #[inline]
    fn route(&mut self, _record: &T) -> Route {
        Route::AllShards
    }
}
