//! The memory backend's hash table: open addressing with linear probing,
//! entries inline, and growth that moves a few entries per insert instead
//! of all of them at once.
//!
//! Each slot holds the entry itself — its hash, key and value side by side
//! (a zero hash marks an empty slot) — and a byte per slot in a separate
//! array holds a tag of its hash (0: empty). A probe reads tags, one line
//! for 64 slots, and a slot only when its tag matches: a lookup that misses
//! (every new key) reads one line of a dense array that stays in cache, one
//! that hits reads one more, the entry's. Without the tags, misses of q18
//! read a 136-byte slot from memory per probe step, and its table update
//! took twice hashbrown's time. A snapshot walks contiguous arrays.
//! hashbrown's doubling copies every entry in one pause, which for a GiB of
//! state stalled the shard (q18's per-second p99).
//!
//! Arrays are zeroed memory (all slots empty). Large ones are mapped from
//! the kernel directly ([`SlotArray`]), and their pages are written once
//! (faulted in) a few per insert before the array takes entries; they go
//! back to the kernel when the array is dropped. Both alternatives stalled
//! q18, whose 64 key groups per shard grow within moments of each other:
//! clearing each new array at allocation (330 ms pauses), and leaving its
//! pages to the first lookup — a read maps the kernel's zero page, and the
//! first write then replaces it and flushes the other cores' TLBs (a third
//! of q18's time, 200–800 ms pauses).
//!
//! Growth is incremental. Past a fill between 18/32 and 3/4 (staggered
//! per key group), or once a prepared array is ready (a mapped array is
//! prepared just before: a few of its pages written per insert, see
//! `prepare_growth`), the slots become the *draining*
//! array and a new array of twice the size takes every insert; each insert
//! then moves at least [`DRAIN_PER_INSERT`] slots' worth of entries from the
//! draining array, whole probe runs at a time, so the draining array is
//! empty long before the new one needs to grow. Lookups probe the new array
//! and, while one drains, the old.
//!
//! Deletion shifts the following entries of the run back (no tombstones).
//!
//! Lives on its shard's core (no synchronization). Invariants: every key is
//! in exactly one array; the draining array's slots from its start slot
//! (empty when draining began) to the cursor are empty, and the slot at the
//! cursor is empty between steps, so no probe run is cut by the cursor;
//! nothing is ever inserted into the draining array.

use std::alloc::{self, Layout};
use std::mem::{self, MaybeUninit};
use std::ptr;

/// Slots a drain step moves at least per insert (it then finishes the run
/// it is in). Four would do: the new array, twice the old one's size,
/// begins to grow again past 16/32 full at the earliest, a quarter of the
/// old capacity in inserts after the drain began; eight ends the double
/// lookups of misses sooner.
const DRAIN_PER_INSERT: usize = 8;

/// The smallest array allocated.
const MIN_CAPACITY: usize = 8;

/// Fill (in 32nds) past which a table grows: from `GROW_AT_32NDS` up to
/// `STAGGER` 32nds less, depending on the table's stagger (see
/// [`OpenTable::staggered`]).
const GROW_AT_32NDS: usize = 24;
const STAGGER: usize = 6;

/// How many 32nds of fill before growing a mapped next array is prepared.
const PREPARE_32NDS_EARLY: usize = 2;

/// Slots' worth of a prepared array's bytes written per insert: the
/// array has twice the slots of the current one, which takes 2/32 of its
/// capacity in inserts while it is prepared; 64 finishes in half of that.
const TOUCH_SLOTS_PER_INSERT: usize = 64;

/// One slot: empty (`hash` 0, `entry` uninitialized) or full (`hash` the
/// entry's hash with the top bit set, `entry` initialized). All-zero bytes
/// are an empty slot, which is what lets arrays be allocated zeroed.
#[repr(C)] // the hash first, in the key's cache line
struct Slot<K, V> {
    hash: u64,
    entry: MaybeUninit<(K, V)>,
}

#[inline]
fn stored_hash(hash: u64) -> u64 {
    hash | 1 << 63
}

/// The tag of a stored hash: its top bit (set) and seven bits above the
/// ones that pick the home slot.
#[inline]
fn tag(stored_hash: u64) -> u8 {
    (stored_hash >> 56) as u8
}

/// Arrays of at least this many bytes are mapped from the kernel (in unit
/// tests a few slots, so that the property test prepares arrays too).
const MAPPED_FROM_BYTES: usize = if cfg!(test) { 512 } else { 1 << 20 };

/// Zeroed memory for a power-of-two number of slots: from the allocator
/// when small, mapped from the kernel when large (see the module docs).
struct SlotArray<K, V> {
    memory: ptr::NonNull<Slot<K, V>>,
    capacity: usize,
}

impl<K, V> SlotArray<K, V> {
    fn zeroed(capacity: usize) -> Self {
        if capacity == 0 {
            return SlotArray {
                memory: ptr::NonNull::dangling(),
                capacity,
            };
        }
        let layout = Layout::array::<Slot<K, V>>(capacity).expect("a table that fits in memory");
        let memory = if layout.size() >= MAPPED_FROM_BYTES {
            // SAFETY: an anonymous private mapping of `layout.size()` bytes;
            // no file, no fixed address.
            let mapped = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if mapped == libc::MAP_FAILED {
                alloc::handle_alloc_error(layout);
            }
            mapped.cast::<Slot<K, V>>()
        } else {
            // SAFETY: the layout's size is not zero (a slot holds a u64).
            let allocated = unsafe { alloc::alloc_zeroed(layout) };
            if allocated.is_null() {
                alloc::handle_alloc_error(layout);
            }
            allocated.cast::<Slot<K, V>>()
        };
        SlotArray {
            memory: ptr::NonNull::new(memory).expect("allocation succeeded"),
            capacity,
        }
    }
}

impl<K, V> SlotArray<K, V> {
    /// Whether an array of `capacity` slots is mapped from the kernel.
    fn is_mapped(capacity: usize) -> bool {
        Layout::array::<Slot<K, V>>(capacity).is_ok_and(|l| l.size() >= MAPPED_FROM_BYTES)
    }

    /// Writes a zero byte to every page from byte `from` on, for `bytes`
    /// bytes (page faults taken now, on write: see `prepare_growth`);
    /// returns where it stopped.
    fn touch(&mut self, from: usize, bytes: usize) -> usize {
        const PAGE: usize = 4096;
        let size = self.capacity * mem::size_of::<Slot<K, V>>();
        let end = from.saturating_add(bytes).min(size);
        let base = self.memory.as_ptr().cast::<u8>();
        let mut offset = from.next_multiple_of(PAGE);
        while offset < end {
            // SAFETY: `offset` is inside the array; its slots are all empty
            // (it takes no entry before it is fully touched), and any byte
            // of an empty slot may be zero.
            unsafe { ptr::write_volatile(base.add(offset), 0) };
            offset += PAGE;
        }
        end
    }
}

impl<K, V> std::ops::Deref for SlotArray<K, V> {
    type Target = [Slot<K, V>];

    #[inline]
    fn deref(&self) -> &[Slot<K, V>] {
        // SAFETY: `memory` holds `capacity` slots' bytes, and any bytes are
        // a valid slot (a u64 and a `MaybeUninit`); zeroed, an empty one.
        unsafe { std::slice::from_raw_parts(self.memory.as_ptr(), self.capacity) }
    }
}

impl<K, V> std::ops::DerefMut for SlotArray<K, V> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Slot<K, V>] {
        // SAFETY: as in `deref`, and `&mut self` is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.memory.as_ptr(), self.capacity) }
    }
}

impl<K, V> Drop for SlotArray<K, V> {
    /// Frees the memory (the entries were dropped by [`Slots`]).
    fn drop(&mut self) {
        if self.capacity == 0 {
            return;
        }
        let layout = Layout::array::<Slot<K, V>>(self.capacity).expect("allocated before");
        if layout.size() >= MAPPED_FROM_BYTES {
            // SAFETY: mapped in `zeroed` with this size, unmapped once.
            unsafe { libc::munmap(self.memory.as_ptr().cast(), layout.size()) };
        } else {
            // SAFETY: allocated in `zeroed` with this layout, freed once.
            unsafe { alloc::dealloc(self.memory.as_ptr().cast(), layout) };
        }
    }
}

/// A power-of-two array of slots and how many are full.
struct Slots<K, V> {
    /// Per slot, 0 if empty, else [`tag`] of its hash: probes read these
    /// (a 64-byte line covers 64 slots, and a shard's tags stay in the
    /// L3 cache where its slots do not), and only a matching tag's slot.
    tags: Box<[u8]>,
    slots: SlotArray<K, V>,
    len: usize,
}

impl<K, V> Slots<K, V> {
    fn with_capacity(capacity: usize) -> Self {
        debug_assert!(capacity == 0 || capacity.is_power_of_two());
        // Written, not left to calloc: the kernel's zero page under a read
        // tag page would cost a TLB flush at its first write (module docs).
        // Ones first: a zero fill straight after calloc is optimized away.
        let mut tags = vec![1u8; capacity].into_boxed_slice();
        tags.fill(0);
        Slots {
            tags,
            slots: SlotArray::zeroed(capacity),
            len: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The entry of a full slot.
    #[inline]
    fn entry(&self, index: usize) -> &(K, V) {
        let slot = &self.slots[index];
        assert_ne!(slot.hash, 0, "an entry of an empty slot");
        // SAFETY: a slot with a non-zero hash holds an initialized entry.
        unsafe { slot.entry.assume_init_ref() }
    }

    #[inline]
    fn entry_mut(&mut self, index: usize) -> &mut (K, V) {
        let slot = &mut self.slots[index];
        assert_ne!(slot.hash, 0, "an entry of an empty slot");
        // SAFETY: as in `entry`.
        unsafe { slot.entry.assume_init_mut() }
    }

    /// The index of the entry with `hash` for which `eq` holds.
    #[inline]
    fn find(&self, hash: u64, eq: &mut impl FnMut(&K) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let wanted = tag(hash);
        let mut index = hash as usize & mask;
        loop {
            let found = self.tags[index];
            if found == 0 {
                return None;
            }
            if found == wanted && self.slots[index].hash == hash && eq(&self.entry(index).0) {
                return Some(index);
            }
            index = (index + 1) & mask;
        }
    }

    /// Puts an entry that is not in the array into its first free slot
    /// (the array has one: it is never full).
    #[inline]
    fn place(&mut self, hash: u64, entry: (K, V)) {
        debug_assert_ne!(hash, 0);
        let mask = self.mask();
        let mut index = hash as usize & mask;
        while self.tags[index] != 0 {
            index = (index + 1) & mask;
        }
        let slot = &mut self.slots[index];
        slot.entry.write(entry);
        slot.hash = hash;
        self.tags[index] = tag(hash);
        self.len += 1;
    }

    /// Takes the entry at `index` out (with its hash) and shifts the rest of
    /// its run back over the hole, so that every entry stays reachable from
    /// its home.
    fn take(&mut self, index: usize) -> (u64, (K, V)) {
        let mask = self.mask();
        let taken = self.take_alone(index);
        let mut hole = index;
        let mut next = (index + 1) & mask;
        while self.tags[next] != 0 {
            let home = self.slots[next].hash as usize & mask;
            // The entry may fill the hole unless its home lies after the
            // hole, up to its own slot (cyclically).
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.slots.swap(hole, next);
                self.tags.swap(hole, next);
                hole = next;
            }
            next = (next + 1) & mask;
        }
        taken
    }

    /// Takes the entry at `index` out without shifting the rest of its
    /// run: for draining, which takes whole runs in one step, and for
    /// `take`, which shifts after it.
    fn take_alone(&mut self, index: usize) -> (u64, (K, V)) {
        let slot = &mut self.slots[index];
        let hash = mem::replace(&mut slot.hash, 0);
        assert_ne!(hash, 0, "taking from an empty slot");
        // SAFETY: the slot was full; its hash now marks it empty, so the
        // entry is read out once.
        let taken = unsafe { slot.entry.assume_init_read() };
        self.tags[index] = 0;
        self.len -= 1;
        (hash, taken)
    }

    fn entries(&self) -> impl Iterator<Item = &(K, V)> {
        self.slots.iter().filter(|slot| slot.hash != 0).map(|slot| {
            // SAFETY: the slot is full.
            unsafe { slot.entry.assume_init_ref() }
        })
    }
}

impl<K, V> Drop for Slots<K, V> {
    fn drop(&mut self) {
        if !mem::needs_drop::<(K, V)>() || self.len == 0 {
            return;
        }
        for slot in self.slots.iter_mut().filter(|slot| slot.hash != 0) {
            slot.hash = 0;
            // SAFETY: the slot was full and is dropped once.
            unsafe { slot.entry.assume_init_drop() };
        }
    }
}

/// An array being emptied into the new one (see the module docs).
struct Draining<K, V> {
    slots: Slots<K, V>,
    /// The next slot to move (counting on past the end, modulo capacity).
    cursor: usize,
    /// Where the cursor stops: the start slot plus the capacity.
    end: usize,
}

/// Where an entry is: which array and which slot.
#[derive(Clone, Copy, Debug)]
pub struct Position {
    in_draining: bool,
    index: usize,
}

/// An open-addressing hash table; see the module docs. Callers hash keys
/// themselves and pass an equality test, so lookups can take borrowed forms
/// of the key.
pub struct OpenTable<K, V> {
    current: Slots<K, V>,
    draining: Option<Draining<K, V>>,
    /// The next (mapped) array while it is prepared, and how many of its
    /// bytes are touched.
    next: Option<(Slots<K, V>, usize)>,
    /// The fill (in 32nds) past which the table grows.
    grow_at_32nds: usize,
}

impl<K, V> Default for OpenTable<K, V> {
    fn default() -> Self {
        OpenTable::staggered(0)
    }
}

impl<K, V> OpenTable<K, V> {
    /// An empty table that grows at a fill set by `stagger` (any number;
    /// seven fills from 18/32 to 3/4). Tables that fill at the same pace —
    /// the key groups of a shard — then grow at different moments, so
    /// their prepared and draining arrays do not all hold memory at once.
    pub fn staggered(stagger: usize) -> Self {
        OpenTable {
            current: Slots::with_capacity(0),
            draining: None,
            next: None,
            grow_at_32nds: GROW_AT_32NDS - stagger % (STAGGER + 1),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.current.len + self.draining.as_ref().map_or(0, |d| d.slots.len)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot where a lookup of `hash` starts (in the array that takes
    /// inserts): lookups in this order walk the array from start to end.
    #[inline]
    pub fn home(&self, hash: u64) -> usize {
        stored_hash(hash) as usize & self.current.mask()
    }

    /// Where the entry with `hash` for which `eq` holds is.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(&K) -> bool) -> Option<Position> {
        let hash = stored_hash(hash);
        if let Some(index) = self.current.find(hash, &mut eq) {
            return Some(Position {
                in_draining: false,
                index,
            });
        }
        let draining = self.draining.as_ref()?;
        draining.slots.find(hash, &mut eq).map(|index| Position {
            in_draining: true,
            index,
        })
    }

    #[inline]
    fn slots(&self, position: Position) -> &Slots<K, V> {
        if position.in_draining {
            &self.draining.as_ref().expect("a draining array").slots
        } else {
            &self.current
        }
    }

    #[inline]
    fn slots_mut(&mut self, position: Position) -> &mut Slots<K, V> {
        if position.in_draining {
            &mut self.draining.as_mut().expect("a draining array").slots
        } else {
            &mut self.current
        }
    }

    /// The key and value at `position` (from [`find`](Self::find), with no
    /// change to the table since).
    #[inline]
    pub fn entry(&self, position: Position) -> (&K, &V) {
        let (key, value) = self.slots(position).entry(position.index);
        (key, value)
    }

    /// The value at `position`, to change in place.
    #[inline]
    pub fn value_mut(&mut self, position: Position) -> &mut V {
        &mut self.slots_mut(position).entry_mut(position.index).1
    }

    /// Removes the entry at `position`.
    pub fn remove_at(&mut self, position: Position) -> (K, V) {
        self.slots_mut(position).take(position.index).1
    }

    /// The value of the key with `hash` for which `eq` holds.
    #[inline]
    pub fn get(&self, hash: u64, eq: impl FnMut(&K) -> bool) -> Option<&V> {
        let position = self.find(hash, eq)?;
        Some(self.entry(position).1)
    }

    /// Inserts a key that is not in the table (the caller found it absent),
    /// moving a few entries of a draining array first.
    pub fn insert_new(&mut self, hash: u64, key: K, value: V) {
        if self.draining.is_some() {
            self.drain_step(DRAIN_PER_INSERT);
        }
        self.prepare_growth();
        self.current.place(stored_hash(hash), (key, value));
    }

    /// Grows the table when the next insert would pass its fill (at most
    /// 3/4). A mapped next array is prepared first, from 2/32 below that
    /// fill on: each insert writes
    /// to a few of its pages, so that none is first read (the kernel would
    /// map its zero page, and the first write then replace it and flush
    /// the other cores' TLBs — q18 spent a third of its time there) and
    /// the page faults are spread over the inserts.
    fn prepare_growth(&mut self) {
        let capacity = self.current.slots.len();
        let fill = self.current.len + 1;
        let full = fill * 32 > capacity * self.grow_at_32nds;
        if let Some((next, touched)) = &mut self.next {
            let bytes = mem::size_of_val::<[Slot<K, V>]>(&next.slots);
            let step = if full {
                bytes
            } else {
                TOUCH_SLOTS_PER_INSERT * mem::size_of::<Slot<K, V>>()
            };
            *touched = next.slots.touch(*touched, step);
            if *touched >= bytes {
                let (next, _) = self.next.take().expect("a next array");
                self.grow_into(next);
            }
            return;
        }
        let next_capacity = (capacity * 2).max(MIN_CAPACITY);
        if full {
            self.grow_into(Slots::with_capacity(next_capacity));
        } else if fill * 32 > capacity * (self.grow_at_32nds - PREPARE_32NDS_EARLY)
            && SlotArray::<K, V>::is_mapped(next_capacity)
        {
            self.next = Some((Slots::with_capacity(next_capacity), 0));
        }
    }

    /// Makes the current array the draining one under `next` (finishing
    /// any drain still going on first).
    fn grow_into(&mut self, next: Slots<K, V>) {
        while self.draining.is_some() {
            self.drain_step(usize::MAX);
        }
        let old = mem::replace(&mut self.current, next);
        if old.len == 0 {
            return;
        }
        let start = old
            .tags
            .iter()
            .position(|&tag| tag == 0)
            .expect("an array below full has an empty slot");
        self.draining = Some(Draining {
            end: start + old.slots.len(),
            cursor: start,
            slots: old,
        });
    }

    /// Moves at least `budget` slots' worth of the draining array (then up
    /// to the next empty slot) into the current one; drops it when empty.
    fn drain_step(&mut self, budget: usize) {
        let Some(draining) = self.draining.as_mut() else {
            return;
        };
        let mask = draining.slots.mask();
        let mut moved = 0usize;
        while draining.cursor < draining.end {
            let index = draining.cursor & mask;
            if draining.slots.tags[index] != 0 {
                let (hash, entry) = draining.slots.take_alone(index);
                self.current.place(hash, entry);
            } else if moved >= budget {
                break;
            }
            moved += 1;
            draining.cursor += 1;
        }
        if draining.cursor >= draining.end || draining.slots.len == 0 {
            debug_assert_eq!(draining.slots.len, 0);
            self.draining = None;
        }
    }

    /// Every entry (order unspecified).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let draining = self.draining.iter().flat_map(|d| d.slots.entries());
        self.current
            .entries()
            .chain(draining)
            .map(|(key, value)| (key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A weak hash (many collisions, long runs) for the model test.
    fn hash(key: u32, spread: u32) -> u64 {
        (key % spread) as u64 * 0x9e37_79b9
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u32, i64),
        Remove(u32),
        Get(u32),
        Drop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u32..400, any::<i64>()).prop_map(|(k, v)| Op::Upsert(k, v)),
            3 => (0u32..400).prop_map(Op::Remove),
            2 => (0u32..400).prop_map(Op::Get),
            1 => Just(Op::Drop),
        ]
    }

    fn check(table: &OpenTable<u32, i64>, model: &BTreeMap<u32, i64>, spread: u32) {
        assert_eq!(table.len(), model.len());
        let mut listed: Vec<(u32, i64)> = table.iter().map(|(k, v)| (*k, *v)).collect();
        listed.sort_unstable();
        let expected: Vec<(u32, i64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(listed, expected);
        for (key, value) in model {
            assert_eq!(table.get(hash(*key, spread), |k| k == key), Some(value));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Inserts, updates, removals and growth (drains interleaved with
        /// every other operation) behave like a `BTreeMap`, with hashes
        /// from well spread to colliding in long runs.
        #[test]
        fn behaves_like_a_btreemap(
            ops in proptest::collection::vec(op(), 1..1500),
            spread in prop_oneof![Just(7u32), Just(61), Just(u32::MAX)],
        ) {
            let mut table = OpenTable::default();
            let mut model = BTreeMap::new();
            for op in &ops {
                match *op {
                    Op::Upsert(key, value) => {
                        let h = hash(key, spread);
                        match table.find(h, |k| *k == key) {
                            Some(position) => *table.value_mut(position) = value,
                            None => table.insert_new(h, key, value),
                        }
                        model.insert(key, value);
                    }
                    Op::Remove(key) => {
                        let removed = table
                            .find(hash(key, spread), |k| *k == key)
                            .map(|position| table.remove_at(position));
                        prop_assert_eq!(removed, model.remove(&key).map(|v| (key, v)));
                    }
                    Op::Get(key) => {
                        prop_assert_eq!(
                            table.get(hash(key, spread), |k| *k == key),
                            model.get(&key)
                        );
                    }
                    Op::Drop => {
                        table = OpenTable::default();
                        model.clear();
                        prop_assert!(table.is_empty());
                    }
                }
                prop_assert_eq!(table.len(), model.len());
            }
            check(&table, &model, spread);
        }
    }

    #[test]
    fn growth_moves_entries_a_few_at_a_time() {
        let mut table = OpenTable::default();
        let mut longest_drain = 0;
        let mut drained_inserts = 0;
        for key in 0u32..100_000 {
            let h = (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let before = table.draining.as_ref().map(|d| d.slots.len);
            table.insert_new(h, key, key as i64);
            if let (Some(before), Some(after)) =
                (before, table.draining.as_ref().map(|d| d.slots.len))
            {
                longest_drain = longest_drain.max(before - after);
            }
            if table.draining.is_some() {
                drained_inserts += 1;
            }
        }
        // No insert moved more than a few runs' worth of entries, and the
        // table was draining for a good part of the inserts.
        assert!(longest_drain < 64, "moved {longest_drain} at once");
        assert!(drained_inserts > 10_000, "{drained_inserts}");
        let model: BTreeMap<u32, i64> = (0..100_000).map(|k| (k, k as i64)).collect();
        assert_eq!(table.len(), model.len());
        for key in [0u32, 77, 65_535, 99_999] {
            let h = (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            assert_eq!(table.get(h, |k| *k == key), Some(&(key as i64)));
        }
    }

    #[test]
    fn a_slot_costs_its_entry_and_a_hash() {
        assert_eq!(mem::size_of::<Slot<u64, u64>>(), 24);
    }

    /// Entries that own heap memory are dropped exactly once, whether
    /// removed or dropped with the table after draining and shifting moved
    /// them (counted by an `Rc`'s strong count).
    #[test]
    fn owned_entries_are_dropped_exactly_once() {
        use std::rc::Rc;
        let live = Rc::new(());
        let mut table = OpenTable::default();
        for key in 0u32..5_000 {
            table.insert_new(hash(key, 61), key, live.clone());
        }
        for key in (0u32..5_000).step_by(3) {
            let position = table.find(hash(key, 61), |k| *k == key).expect("present");
            drop(table.remove_at(position));
        }
        assert_eq!(Rc::strong_count(&live), 1 + table.len());
        drop(table);
        assert_eq!(Rc::strong_count(&live), 1);
    }
}
