//! One test suite for every backend: each behaves like a `BTreeMap` over
//! `(key, namespace)`, and state written by one restores into any other, on
//! any shard count (savepoints), and RocksDB's native checkpoints restore on
//! any shard count too.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use proptest::prelude::*;

use crate::rocks_backend::{NativeRestore, RocksInstance, RocksResources, RocksTable};
use crate::{
    KeyGroup, KeyGroupRange, KeyGroups, KeyedTable, MemoryTable, NamespacedMemoryTable, RestoreSet,
    SharedTable, Slot, SlotAction, SnapshotKind, StableKey, StateFileWriter, StateRegistry,
    TrackedTable,
};

type Model = BTreeMap<(String, u8), i64>;

#[derive(Debug, Clone)]
enum Op {
    Put(u16, u8, i64),
    Add(u16, u8, i64),
    Remove(u16, u8),
    Get(u16, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Up to 12 namespaces: the namespaced table switches from a vector
        // to a map past 8 in a key group.
        (0u16..60, 0u8..12, any::<i64>()).prop_map(|(k, n, v)| Op::Put(k, n, v)),
        (0u16..60, 0u8..12, -5i64..5).prop_map(|(k, n, v)| Op::Add(k, n, v)),
        (0u16..60, 0u8..12).prop_map(|(k, n)| Op::Remove(k, n)),
        (0u16..60, 0u8..12).prop_map(|(k, n)| Op::Get(k, n)),
    ]
}

/// Keys are strings, so encodings of different lengths are exercised.
fn key(k: u16) -> String {
    format!("key-{}", "x".repeat(k as usize % 7)) + &k.to_string()
}

fn group(layout: KeyGroups, key: &String) -> KeyGroup {
    layout.key_group_of_hash(key.stable_hash())
}

/// Applies `op` to `table` and `model`; checks what the op reads.
fn apply(
    table: &mut dyn KeyedTable<String, u8, i64>,
    model: &mut Model,
    layout: KeyGroups,
    op: &Op,
) -> Result<(), TestCaseError> {
    match *op {
        Op::Put(k, n, v) => {
            let k = key(k);
            table.put(group(layout, &k), &k, &n, v);
            model.insert((k, n), v);
        }
        Op::Add(k, n, d) => {
            // Add d; remove the entry when it reaches zero.
            let k = key(k);
            table.update(group(layout, &k), &k, &n, &mut |slot| match slot {
                Slot::Present(v) if *v + d == 0 => SlotAction::Remove,
                Slot::Present(v) => {
                    *v += d;
                    SlotAction::Keep
                }
                Slot::Absent if d == 0 => SlotAction::Keep,
                Slot::Absent => SlotAction::Put(d),
            });
            let entry = model.entry((k.clone(), n)).or_insert(0);
            *entry += d;
            if *entry == 0 {
                model.remove(&(k, n));
            }
        }
        Op::Remove(k, n) => {
            let k = key(k);
            let got = table.remove(group(layout, &k), &k, &n);
            prop_assert_eq!(got, model.remove(&(k, n)));
        }
        Op::Get(k, n) => {
            let k = key(k);
            let got = table.get(group(layout, &k), &k, &n);
            prop_assert_eq!(got, model.get(&(k.clone(), n)).copied());
            let mut read = None;
            table.read(group(layout, &k), &k, &n, &mut |v| read = v.copied());
            prop_assert_eq!(read, model.get(&(k, n)).copied());
        }
    }
    Ok(())
}

/// Everything `table` holds in `range`, by scanning group by group.
fn contents(table: &dyn KeyedTable<String, u8, i64>, range: KeyGroupRange) -> Model {
    let mut all = Model::new();
    for g in range.iter() {
        table.for_each_in_group(g, &mut |k, n, v| {
            all.insert((k.clone(), *n), *v);
        });
    }
    all
}

fn within(model: &Model, layout: KeyGroups, range: KeyGroupRange) -> Model {
    model
        .iter()
        .filter(|((k, _), _)| range.contains(group(layout, k)))
        .map(|(e, v)| (e.clone(), *v))
        .collect()
}

fn resources(dir: &tempfile::TempDir, shard: u32) -> RocksResources {
    RocksResources::new(dir.path().join(format!("shard-{shard}")), shard)
}

fn rocks_table(
    resources: &RocksResources,
    range: KeyGroupRange,
    restore: Vec<NativeRestore>,
) -> (Rc<RocksInstance>, RocksTable<String, u8, i64>) {
    let instance = Rc::new(RocksInstance::open(resources, 7, range, restore).unwrap());
    let table = RocksTable::new(instance.clone(), "counts").unwrap();
    (instance, table)
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Memory,
    NamespacedMemory,
    RocksDb,
}

const BACKENDS: [Backend; 3] = [Backend::Memory, Backend::NamespacedMemory, Backend::RocksDb];

/// A table of `backend` for `range`, in a registry (as a shard creates it),
/// restored from `restore`.
fn registered(
    backend: Backend,
    dir: &tempfile::TempDir,
    range: KeyGroupRange,
    restore: RestoreSet,
) -> (StateRegistry, Box<dyn KeyedTable<String, u8, i64>>) {
    let mut registry = StateRegistry::new(range, restore);
    let table = match backend {
        Backend::Memory => in_registry(
            &mut registry,
            MemoryTable::new("counts", range),
            range,
            false,
        ),
        Backend::NamespacedMemory => in_registry(
            &mut registry,
            NamespacedMemoryTable::new("counts", range),
            range,
            false,
        ),
        Backend::RocksDb => {
            let shard = range.start as u32;
            let (_, table) = rocks_table(&resources(dir, shard), range, Vec::new());
            in_registry(&mut registry, table, range, true)
        }
    };
    (registry, table)
}

/// Registers `table` (as RocksDB's are, when `native`) and hands it out.
fn in_registry<T: KeyedTable<String, u8, i64> + 'static>(
    registry: &mut StateRegistry,
    table: T,
    range: KeyGroupRange,
    native: bool,
) -> Box<dyn KeyedTable<String, u8, i64>> {
    let tracked = Rc::new(RefCell::new(TrackedTable::new(table, range)));
    match native {
        true => registry.register_native("counts", 7, tracked.clone()),
        false => registry.register("counts", 7, tracked.clone()),
    };
    Box::new(SharedTable(tracked))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    // Every backend behaves like a BTreeMap over (key, namespace).
    #[test]
    fn every_backend_matches_the_btreemap_model(ops in proptest::collection::vec(op(), 1..300)) {
        let layout = KeyGroups::new(16, 1);
        let range = layout.range_of(0);
        let dir = tempfile::tempdir().unwrap();
        for backend in BACKENDS {
            let (_registry, mut table) = registered(backend, &dir, range, RestoreSet::default());
            let mut model = Model::new();
            for op in &ops {
                apply(&mut *table, &mut model, layout, op)?;
                if !matches!(backend, Backend::RocksDb) {
                    // RocksDB only estimates its length.
                    prop_assert_eq!(table.len(), model.len());
                }
            }
            prop_assert_eq!(contents(&*table, range), model, "{:?}", backend);
        }
    }

}

proptest! {
    // Each case opens 21 RocksDB instances: fewer cases.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    // A savepoint (full sections) written by any backend restores into any
    // backend on 1, 2 and 4 shards.
    #[test]
    fn savepoints_move_between_backends_and_shard_counts(ops in proptest::collection::vec(op(), 1..200)) {
        let from = KeyGroups::new(16, 1);
        let dir = tempfile::tempdir().unwrap();
        for written_by in BACKENDS {
            let (registry, mut table) = registered(written_by, &dir, from.range_of(0), RestoreSet::default());
            let mut model = Model::new();
            for op in &ops {
                apply(&mut *table, &mut model, from, op)?;
            }
            let mut file = StateFileWriter::new(SnapshotKind::Full);
            registry.snapshot_owner(7, &mut file).unwrap();
            let bytes = file.finish().to_vec();
            drop(table);
            drop(registry);
            for restored_by in BACKENDS {
                for shards in [1, 2, 4] {
                    let to = KeyGroups::new(16, shards);
                    for shard in 0..shards {
                        let range = to.range_of(shard);
                        let mut set = RestoreSet::default();
                        set.add_file("savepoint", &bytes, range).unwrap();
                        let target = tempfile::tempdir().unwrap();
                        let (registry, table) = registered(restored_by, &target, range, set);
                        prop_assert!(registry.restore_problems().is_empty());
                        prop_assert_eq!(
                            contents(&*table, range),
                            within(&model, to, range),
                            "{:?} -> {:?} on {} shards", written_by, restored_by, shards
                        );
                    }
                }
            }
        }
    }

    // A native RocksDB checkpoint holds the state at its barrier, not the
    // writes made while its memtables flush in the background, and
    // restores on any shard count: linked in place when the key groups
    // match, copied group by group when they do not.
    #[test]
    fn native_checkpoints_restore_on_any_shard_count(
        before in proptest::collection::vec(op(), 1..200),
        after in proptest::collection::vec(op(), 0..50),
    ) {
        let from = KeyGroups::new(16, 1);
        let dir = tempfile::tempdir().unwrap();
        let (instance, mut table) = rocks_table(&resources(&dir, 0), from.range_of(0), Vec::new());
        let mut model = Model::new();
        for op in &before {
            apply(&mut table, &mut model, from, op)?;
        }
        let mut pending = instance.begin_checkpoint(1).unwrap();
        let mut later = model.clone();
        for op in &after {
            apply(&mut table, &mut later, from, op)?;
        }
        let part = wait_for(&mut pending);
        prop_assert_eq!(contents(&table, from.range_of(0)), later);
        for shards in [1, 2, 4] {
            let to = KeyGroups::new(16, shards);
            for shard in 0..shards {
                let range = to.range_of(shard);
                let restore = vec![NativeRestore {
                    node: 7,
                    groups: part.groups,
                    directory: part.directory.clone(),
                    inherited: BTreeMap::new(),
                }];
                let target = tempfile::tempdir().unwrap();
                let (_instance, restored) = rocks_table(&resources(&target, shard), range, restore);
                // Every group scanned: nothing of other shards' groups came along.
                let everything = KeyGroupRange { start: 0, end: 16 };
                prop_assert_eq!(contents(&restored, everything), within(&model, to, range), "{} shards", shards);
            }
        }
    }
}

/// Polls a native checkpoint until its files are listed (bounded).
fn wait_for(pending: &mut crate::rocks_backend::PendingNative) -> crate::rocks_backend::NativePart {
    for _ in 0..20_000 {
        if let Some(part) = pending.poll().unwrap() {
            return part;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("the background flush did not finish within 20 s");
}

/// An instance of one shard owning key groups 0..16 whose table holds
/// keys 0..100, each counted once.
fn instance_with_100_counts(
    dir: &tempfile::TempDir,
) -> (Rc<RocksInstance>, RocksTable<String, u8, i64>, Model) {
    let layout = KeyGroups::new(16, 1);
    let (instance, mut table) = rocks_table(&resources(dir, 0), layout.range_of(0), Vec::new());
    let mut model = Model::new();
    for k in 0..100u16 {
        apply(&mut table, &mut model, layout, &Op::Put(k, 0, 1)).unwrap();
    }
    (instance, table, model)
}

// Writes after the barrier that reach a table file before the checkpoint
// lists its files (a memtable filled and flushed meanwhile; forced here)
// make the checkpoint fail, instead of holding them.
#[test]
fn a_native_checkpoint_refuses_files_with_writes_after_its_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let (instance, mut table, mut model) = instance_with_100_counts(&dir);
    let layout = KeyGroups::new(16, 1);
    let mut pending = instance.begin_checkpoint(1).unwrap();
    for k in 0..100u16 {
        apply(&mut table, &mut model, layout, &Op::Put(k, 0, 2)).unwrap();
    }
    instance
        .db()
        .flush_cf(&instance.db().cf_handle("counts").unwrap())
        .unwrap();
    let refused = loop {
        match pending.poll() {
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Ok(Some(part)) => panic!("listed {:?}", part.files),
            Err(e) => break e,
        }
    };
    assert!(
        refused.contains("after the barrier of checkpoint 1"),
        "{refused}"
    );
    // The next checkpoint is taken as usual.
    let next = instance.checkpoint(2).unwrap();
    assert!(next.files.iter().any(|f| f.name.ends_with(".sst")));
}

// The last checkpoint of a bounded job is often still uploading when its
// shard ends: dropping the instance must not take its linked files along.
#[test]
fn a_native_checkpoint_outlives_its_instance_until_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let (instance, table, _model) = instance_with_100_counts(&dir);
    let part = instance.checkpoint(1).unwrap();
    drop(table);
    drop(instance);
    let database = dir.path().join("shard-0/node-7/db");
    assert!(!database.exists(), "{} stayed", database.display());
    for file in &part.files {
        let path = part.directory.join(&file.name);
        assert!(path.is_file(), "{} went with the instance", path.display());
    }
}

#[test]
fn a_second_native_checkpoint_shares_the_files_that_did_not_change() {
    let layout = KeyGroups::new(16, 1);
    let range = layout.range_of(0);
    let dir = tempfile::tempdir().unwrap();
    let (instance, mut table) = rocks_table(&resources(&dir, 0), range, Vec::new());
    let mut model = Model::new();
    for k in 0..2000u16 {
        apply(&mut table, &mut model, layout, &Op::Put(k, 0, k as i64)).unwrap();
    }
    let first = instance.checkpoint(1).unwrap();
    apply(&mut table, &mut model, layout, &Op::Put(1, 1, 1)).unwrap();
    let second = instance.checkpoint(2).unwrap();
    let ssts = |part: &crate::rocks_backend::NativePart| -> Vec<String> {
        (part.files.iter())
            .filter(|f| f.name.ends_with(".sst"))
            .map(|f| f.name.clone())
            .collect()
    };
    let (first, second) = (ssts(&first), ssts(&second));
    assert!(!first.is_empty());
    // Everything of the first is still live; the change added one file.
    assert!(
        first.iter().all(|f| second.contains(f)),
        "{first:?} {second:?}"
    );
    assert_eq!(second.len(), first.len() + 1, "{first:?} {second:?}");
}

#[test]
fn unclaimed_native_state_is_a_restore_problem() {
    let range = KeyGroups::new(16, 1).range_of(0);
    let mut set = RestoreSet::default();
    set.add_native(
        NativeRestore {
            node: 3,
            groups: range,
            directory: "/nonexistent".into(),
            inherited: BTreeMap::new(),
        },
        range,
    );
    let registry = StateRegistry::new(range, set);
    let problems = registry.restore_problems();
    assert!(
        problems.len() == 1 && problems[0].contains("plan node 3"),
        "{problems:?}"
    );
}
