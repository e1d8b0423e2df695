//! A [`KeyedTable`] stored in one column family of a [`RocksInstance`].
//!
//! Lives on its shard's core. Every access encodes the key (see
//! [`key_layout`](super::key_layout)); reads decode the value into a fresh
//! one, and an update writes the value back unless the closure removed it.
//! A RocksDB error or an undecodable stored value on the record path fails the
//! task (the job then restarts from its last checkpoint, as its restart
//! strategy says): neither can be answered for one record.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use rocksdb::ReadOptions;

use super::instance::RocksInstance;
use super::key_layout::{decode_key, encode_key, range_bounds};
use crate::{KeyGroup, KeyGroupRange, KeyedTable, Slot, SlotAction, StateKey, StateValue};

/// Marks the key, namespace and value types without owning any.
type Types<K, N, V> = PhantomData<fn() -> (K, N, V)>;

/// See the module docs.
pub struct RocksTable<K, N, V> {
    instance: Rc<RocksInstance>,
    family: String,
    key: RefCell<Vec<u8>>,
    value: RefCell<Vec<u8>>,
    _types: Types<K, N, V>,
}

impl<K: StateKey, N: StateKey, V: StateValue> RocksTable<K, N, V> {
    /// The table stored in column family `family` (created if missing).
    pub fn new(instance: Rc<RocksInstance>, family: &str) -> Result<Self, String> {
        instance.ensure_family(family)?;
        Ok(RocksTable {
            instance,
            family: family.to_owned(),
            key: RefCell::new(Vec::with_capacity(64)),
            value: RefCell::new(Vec::with_capacity(256)),
            _types: PhantomData,
        })
    }

    fn fail(&self, what: &str, error: impl std::fmt::Display) -> ! {
        panic!("RocksDB state {}: {what}: {error}", self.family)
    }

    /// Encodes the stored key into the scratch buffer, taken out of the
    /// table until [`give_back`](Self::give_back) (so no allocation per access).
    fn encode(&self, group: KeyGroup, key: &K, namespace: &N) -> Vec<u8> {
        let mut buffer = std::mem::take(&mut *self.key.borrow_mut());
        if let Err(e) = encode_key(group, key, namespace, &mut buffer) {
            self.fail("encoding a key", e);
        }
        buffer
    }

    fn give_back(&self, buffer: Vec<u8>) {
        *self.key.borrow_mut() = buffer;
    }

    fn load(&self, stored: &[u8]) -> Option<V> {
        let db = self.instance.db();
        let family = db.cf_handle(&self.family).expect("created with the table");
        let value = match db.get_pinned_cf(family, stored) {
            Ok(Some(bytes)) => match V::decode_state(&bytes) {
                Ok(value) => Some(value),
                Err(e) => self.fail("decoding a stored value", e),
            },
            Ok(None) => None,
            Err(e) => self.fail("reading", e),
        };
        value
    }

    fn store(&self, stored: &[u8], value: &V) {
        let mut bytes = self.value.borrow_mut();
        bytes.clear();
        if let Err(e) = value.encode_state(&mut bytes) {
            self.fail("encoding a value", e);
        }
        let db = self.instance.db();
        let family = db.cf_handle(&self.family).expect("created with the table");
        if let Err(e) = db.put_cf_opt(family, stored, &*bytes, self.instance.write_options()) {
            self.fail("writing", e);
        }
    }

    fn delete(&self, stored: &[u8]) {
        let db = self.instance.db();
        let family = db.cf_handle(&self.family).expect("created with the table");
        if let Err(e) = db.delete_cf_opt(family, stored, self.instance.write_options()) {
            self.fail("deleting", e);
        }
    }
}

impl<K: StateKey, N: StateKey, V: StateValue> KeyedTable<K, N, V> for RocksTable<K, N, V> {
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Option<V>
    where
        V: Clone,
    {
        let stored = self.encode(group, key, namespace);
        let value = self.load(&stored);
        self.give_back(stored);
        value
    }

    fn read(&self, group: KeyGroup, key: &K, namespace: &N, f: &mut dyn FnMut(Option<&V>)) {
        let stored = self.encode(group, key, namespace);
        let value = self.load(&stored);
        self.give_back(stored);
        f(value.as_ref())
    }

    fn update(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    ) {
        let stored = self.encode(group, key, namespace);
        let mut current = self.load(&stored);
        let action = match current.as_mut() {
            Some(value) => f(Slot::Present(value)),
            None => f(Slot::Absent),
        };
        match (action, current) {
            // Changed in place, perhaps: write it back.
            (SlotAction::Keep, Some(value)) => self.store(&stored, &value),
            (SlotAction::Keep, None) => {}
            (SlotAction::Put(value), _) => self.store(&stored, &value),
            (SlotAction::Remove, Some(_)) => self.delete(&stored),
            (SlotAction::Remove, None) => {}
        }
        self.give_back(stored);
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Option<V> {
        let stored = self.encode(group, key, namespace);
        let value = self.load(&stored);
        if value.is_some() {
            self.delete(&stored);
        }
        self.give_back(stored);
        value
    }

    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) {
        let stored = self.encode(group, key, namespace);
        self.store(&stored, &value);
        self.give_back(stored);
    }

    fn for_each_in_group(&self, group: KeyGroup, f: &mut dyn FnMut(&K, &N, &V)) {
        let (lower, upper) = range_bounds(KeyGroupRange {
            start: group.0,
            end: group.0 + 1,
        });
        let db = self.instance.db();
        let family = db.cf_handle(&self.family).expect("created with the table");
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(lower.clone());
        read.set_iterate_upper_bound(upper);
        read.fill_cache(false);
        let mut iter = db.raw_iterator_cf_opt(family, read);
        iter.seek(&lower);
        while let (Some(stored), Some(bytes)) = (iter.key(), iter.value()) {
            let (_, k, n) = decode_key::<K, N>(stored)
                .unwrap_or_else(|e| self.fail("decoding a stored key", e));
            let v =
                V::decode_state(bytes).unwrap_or_else(|e| self.fail("decoding a stored value", e));
            f(&k, &n, &v);
            iter.next();
        }
        if let Err(e) = iter.status() {
            self.fail("scanning", e);
        }
    }

    /// RocksDB's estimate (exact only after compaction).
    fn len(&self) -> usize {
        let db = self.instance.db();
        let family = db.cf_handle(&self.family).expect("created with the table");
        db.property_int_value_cf(family, "rocksdb.estimate-num-keys")
            .ok()
            .flatten()
            .unwrap_or(0) as usize
    }
}
