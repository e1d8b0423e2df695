//! Key groups: the unit of state ownership.
//!
//! A key's stable hash picks one of `max_parallelism` key groups
//! (`hash % max_parallelism`); shards own contiguous ranges of key groups. The
//! range of shard `s` out of `n` is `[ceil(s·M/n), ceil((s+1)·M/n))` — the same
//! split Flink uses — so every shard owns `floor(M/n)` or `ceil(M/n)` groups,
//! and shard of group `g` is `g·n / M`. State is stored, snapshotted and moved in
//! key-group units, so a job can restart on another number of shards as long as
//! `max_parallelism` stays the same.
//!
//! Invariants: `1 <= shards <= max_parallelism <= MAX_PARALLELISM_LIMIT`; the
//! ranges of all shards partition `0..max_parallelism` in order.

use std::fmt;

use strength_reduce::{StrengthReducedU32, StrengthReducedU64};

/// Default number of key groups, as in Flink for small jobs.
pub const DEFAULT_MAX_PARALLELISM: u32 = 128;
/// Upper limit on `max_parallelism` (key groups are stored as `u16`).
pub const MAX_PARALLELISM_LIMIT: u32 = 32_768;

/// One key group, `0..max_parallelism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyGroup(pub u16);

impl KeyGroup {
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for KeyGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key group {}", self.0)
    }
}

/// A contiguous, half-open range of key groups `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGroupRange {
    pub start: u16,
    pub end: u16,
}

impl KeyGroupRange {
    #[inline]
    pub fn contains(&self, group: KeyGroup) -> bool {
        group.0 >= self.start && group.0 < self.end
    }
    #[inline]
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// Position of `group` within this range; the caller guarantees containment.
    #[inline]
    pub fn offset(&self, group: KeyGroup) -> usize {
        debug_assert!(self.contains(group), "{group} outside {self:?}");
        (group.0 - self.start) as usize
    }
    pub fn iter(&self) -> impl Iterator<Item = KeyGroup> {
        (self.start..self.end).map(KeyGroup)
    }
}

/// The key-group layout of one job: how many groups, how many shards.
///
/// Both mappings run per record on the exchange path, so their divisions by the
/// job's constants are strength-reduced (multiply and shift) once here.
#[derive(Debug, Clone, Copy)]
pub struct KeyGroups {
    max_parallelism: u32,
    shards: u32,
    groups_divisor: StrengthReducedU64,
    shard_divisor: StrengthReducedU32,
}

impl PartialEq for KeyGroups {
    fn eq(&self, other: &Self) -> bool {
        self.max_parallelism == other.max_parallelism && self.shards == other.shards
    }
}

impl Eq for KeyGroups {}

impl KeyGroups {
    /// Panics if the invariants in the module docs do not hold: callers validate
    /// user input (the job file) before building a layout.
    pub fn new(max_parallelism: u32, shards: u32) -> Self {
        assert!(shards >= 1, "at least one shard");
        assert!(
            shards <= max_parallelism && max_parallelism <= MAX_PARALLELISM_LIMIT,
            "shards {shards} <= max_parallelism {max_parallelism} <= {MAX_PARALLELISM_LIMIT}"
        );
        KeyGroups {
            max_parallelism,
            shards,
            groups_divisor: StrengthReducedU64::new(max_parallelism as u64),
            shard_divisor: StrengthReducedU32::new(max_parallelism),
        }
    }

    pub fn max_parallelism(&self) -> u32 {
        self.max_parallelism
    }
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The key group of a stable key hash.
    #[inline]
    pub fn key_group_of_hash(&self, hash: u64) -> KeyGroup {
        KeyGroup((hash % self.groups_divisor) as u16)
    }

    /// The shard that owns a key group.
    #[inline]
    pub fn shard_of(&self, group: KeyGroup) -> u32 {
        (group.0 as u32 * self.shards) / self.shard_divisor
    }

    /// The key groups owned by `shard`.
    pub fn range_of(&self, shard: u32) -> KeyGroupRange {
        assert!(shard < self.shards, "shard {shard} of {}", self.shards);
        let m = self.max_parallelism;
        let n = self.shards;
        let start = (shard * m).div_ceil(n);
        let end = ((shard + 1) * m).div_ceil(n);
        KeyGroupRange {
            start: start as u16,
            end: end as u16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StableKey;
    use proptest::prelude::*;

    #[test]
    fn pinned_mapping() {
        let layout = KeyGroups::new(128, 4);
        assert_eq!(layout.range_of(0), KeyGroupRange { start: 0, end: 32 });
        assert_eq!(
            layout.range_of(3),
            KeyGroupRange {
                start: 96,
                end: 128
            }
        );
        let layout = KeyGroups::new(128, 3);
        assert_eq!(layout.range_of(0), KeyGroupRange { start: 0, end: 43 });
        assert_eq!(layout.range_of(1), KeyGroupRange { start: 43, end: 86 });
        assert_eq!(
            layout.range_of(2),
            KeyGroupRange {
                start: 86,
                end: 128
            }
        );
        // Key → group → shard, pinned end to end.
        let g = layout.key_group_of_hash(42u64.stable_hash());
        assert_eq!(g, KeyGroup((0xd5a6_f8c8_38df_27c8u64 % 128) as u16));
        assert_eq!(g, KeyGroup(72));
        assert_eq!(layout.shard_of(g), 1);
        assert_eq!(
            KeyGroups::new(128, 2).key_group_of_hash("sluice".stable_hash()),
            KeyGroup(29)
        );
    }

    proptest! {
        #[test]
        fn ranges_partition_groups_and_agree_with_shard_of(m in 1u32..2048, n_seed in 0u32..10_000) {
            let n = 1 + n_seed % m;
            let layout = KeyGroups::new(m, n);
            let mut next = 0u16;
            for s in 0..n {
                let r = layout.range_of(s);
                prop_assert_eq!(r.start, next);
                prop_assert!(r.len() == (m / n) as usize || r.len() == m.div_ceil(n) as usize);
                for g in r.iter() {
                    prop_assert_eq!(layout.shard_of(g), s);
                }
                next = r.end;
            }
            prop_assert_eq!(next as u32, m);
        }

        #[test]
        fn strength_reduced_mapping_equals_plain_division(m in 1u32..=MAX_PARALLELISM_LIMIT, n_seed in 0u32..10_000, hash in any::<u64>()) {
            let n = 1 + n_seed % m;
            let layout = KeyGroups::new(m, n);
            let group = layout.key_group_of_hash(hash);
            prop_assert_eq!(group.0 as u64, hash % m as u64);
            prop_assert_eq!(layout.shard_of(group), group.0 as u32 * n / m);
        }
    }
}
