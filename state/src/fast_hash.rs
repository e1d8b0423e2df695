//! A fast, non-cryptographic in-memory hasher for shard-local hash maps.
//!
//! This is *not* the stable key hash (see `stable_hash`): values may differ
//! between versions and are never persisted or sent. It is a multiply-rotate
//! hasher in the style of rustc's FxHash, chosen because state maps on the record
//! path hash small integer and string keys millions of times per second, and
//! SipHash's protection against hash flooding buys nothing inside a shard that
//! owns its keys. Keys from untrusted input still land in bounded key groups.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Multiply-rotate hasher; see the module docs.
#[derive(Default, Clone, Copy)]
pub struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("chunk of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        // A final avalanche so that the low bits hashbrown uses for buckets
        // depend on every input bit.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

/// A hashbrown map with [`FastHasher`].
pub type FastHashMap<K, V> = hashbrown::HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A hashbrown set with [`FastHasher`].
pub type FastHashSet<T> = hashbrown::HashSet<T, BuildHasherDefault<FastHasher>>;

/// Grows `map` before hashbrown would, once it is filled to a fraction
/// between 11/16 and 7/8 of its capacity that depends on `slot` (a key
/// group's position in its table).
///
/// The key groups of a table fill at the same pace, so left alone their maps
/// all double at the same moment: one pause that copies (and faults in) every
/// entry of the shard's table — hundreds of milliseconds for a GiB of state.
/// Staggered, each doubling copies one map while the others keep taking
/// records. Small maps are left alone. The cost is memory: maps run at a
/// lower fill.
#[inline]
pub fn grow_staggered<K, V>(map: &mut FastHashMap<K, V>, slot: usize)
where
    K: std::hash::Hash + Eq,
{
    const SMALL: usize = 4096;
    let capacity = map.capacity();
    if capacity < SMALL {
        return;
    }
    // In 64ths of the capacity: 44..=55, below hashbrown's own 64/64 (a
    // narrow band: a wider one spreads the pauses more and costs more memory).
    let threshold = 44 + slot * 7 % 12;
    if map.len() * 64 >= capacity * threshold {
        map.reserve(capacity + 1 - map.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The capacity at which each of `slots` maps doubled while all grew to
    /// `n` entries in step.
    fn doubling_points(slots: usize, n: usize) -> Vec<Vec<usize>> {
        let mut maps: Vec<FastHashMap<usize, ()>> =
            (0..slots).map(|_| FastHashMap::default()).collect();
        let mut points = vec![Vec::new(); slots];
        for i in 0..n {
            for (slot, map) in maps.iter_mut().enumerate() {
                let before = map.capacity();
                map.insert(i, ());
                grow_staggered(map, slot);
                if map.capacity() != before && before >= 4096 {
                    points[slot].push(i);
                }
            }
        }
        points
    }

    #[test]
    fn maps_filling_in_step_double_at_different_sizes() {
        let points = doubling_points(24, 60_000);
        // Every map grew past the small sizes, at one of 12 fills.
        let firsts: std::collections::BTreeSet<usize> =
            points.iter().map(|p| *p.first().expect("grew")).collect();
        assert_eq!(firsts.len(), 12, "{firsts:?}");
        // Spread from 11/16 to 7/8 full.
        let (min, max) = (firsts.first().unwrap(), firsts.last().unwrap());
        assert!(*max as f64 / *min as f64 > 1.2, "{min}..{max}");
    }

    #[test]
    fn small_maps_grow_as_hashbrown_grows_them() {
        let mut map: FastHashMap<usize, ()> = FastHashMap::default();
        let mut plain: FastHashMap<usize, ()> = FastHashMap::default();
        for i in 0..3000 {
            map.insert(i, ());
            plain.insert(i, ());
            grow_staggered(&mut map, 5);
            assert_eq!(map.capacity(), plain.capacity());
        }
    }
}
