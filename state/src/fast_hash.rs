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
