//! Per-key timers of one keyed operator on one shard.
//!
//! Timers are `(time, key, namespace)` triples, deduplicated: registering the
//! same triple twice keeps one. Event-time timers fire when the watermark
//! reaches their time, in time order. Lives on its shard's core.

use std::collections::BTreeMap;

use sluice_state::{FastHashSet, StateKey};

pub struct TimerService<K, N> {
    by_time: BTreeMap<i64, FastHashSet<(K, N)>>,
    len: usize,
}

impl<K: StateKey, N: StateKey> Default for TimerService<K, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: StateKey, N: StateKey> TimerService<K, N> {
    pub fn new() -> Self {
        TimerService {
            by_time: BTreeMap::new(),
            len: 0,
        }
    }

    /// Registers a timer; returns false if it already existed.
    pub fn register(&mut self, time: i64, key: K, namespace: N) -> bool {
        let inserted = self
            .by_time
            .entry(time)
            .or_default()
            .insert((key, namespace));
        self.len += inserted as usize;
        inserted
    }

    /// Deletes a timer; returns false if there was none.
    pub fn delete(&mut self, time: i64, key: &K, namespace: &N) -> bool {
        let Some(set) = self.by_time.get_mut(&time) else {
            return false;
        };
        // The set owns (K, N); a borrowed lookup would need an Equivalent type,
        // deletes are rare (merging windows, user code), so clone.
        let removed = set.remove(&(key.clone(), namespace.clone()));
        if set.is_empty() {
            self.by_time.remove(&time);
        }
        self.len -= removed as usize;
        removed
    }

    /// Removes and appends to `out` every timer with time `<= up_to`, in time order.
    pub fn pop_due(&mut self, up_to: i64, out: &mut Vec<(i64, K, N)>) {
        while let Some(entry) = self.by_time.first_entry() {
            if *entry.key() > up_to {
                break;
            }
            let time = *entry.key();
            let set = entry.remove();
            self.len -= set.len();
            out.extend(set.into_iter().map(|(k, n)| (time, k, n)));
        }
    }

    /// The earliest timer's time.
    pub fn next_time(&self) -> Option<i64> {
        self.by_time.keys().next().copied()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_and_fires_in_time_order() {
        let mut t: TimerService<u32, ()> = TimerService::new();
        assert!(t.register(20, 1, ()));
        assert!(!t.register(20, 1, ()));
        assert!(t.register(10, 2, ()));
        assert!(t.register(30, 3, ()));
        assert!(t.delete(30, &3, &()));
        assert!(!t.delete(30, &3, &()));
        assert_eq!(t.len(), 2);
        let mut due = Vec::new();
        t.pop_due(25, &mut due);
        assert_eq!(due, vec![(10, 2, ()), (20, 1, ())]);
        assert!(t.is_empty());
    }
}
