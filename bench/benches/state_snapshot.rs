//! Keyed state on one core: what change tracking costs per write, and how
//! fast a snapshot encodes, for q18's state (the last Nexmark bid per
//! bidder and auction, ~150 bytes encoded per entry).
//!
//! - `write/untracked` and `write/tracked`: one `update` per bid into a
//!   memory table, without and with change tracking (incremental
//!   checkpoints);
//! - `snapshot/changes` and `snapshot/full`: a snapshot of a table whose
//!   every entry changed since the last one, begun and written by steps
//!   into a state file, as a checkpoint does (bytes are the file's).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_bench::measuring;
use sluice_engine::connectors::nexmark::{Bid, Event, NexmarkConfig, NexmarkGenerator};
use sluice_state::{
    KeyGroupRange, KeyGroups, KeyedTable, Marked, MemoryTable, SlotAction, SnapshotKind,
    SnapshotState, StableKey, StateFileWriter, TrackedTable,
};

type Key = (i64, i64);

fn bids(n: usize) -> Vec<Bid> {
    let mut generator = NexmarkGenerator::new(NexmarkConfig::default());
    let mut bids = Vec::with_capacity(n);
    let mut i = 0;
    while bids.len() < n {
        if let Event::Bid(bid) = generator.event(i) {
            bids.push(bid);
        }
        i += 1;
    }
    bids
}

fn write_all(table: &mut dyn KeyedTable<Key, (), Bid>, layout: &KeyGroups, bids: &[Bid]) {
    for bid in bids {
        let key = (bid.bidder, bid.auction);
        let group = layout.key_group_of_hash(key.stable_hash());
        table.update(group, &key, &(), &mut |_| SlotAction::Put(bid.clone()));
    }
}

/// Begins a snapshot and writes it by steps into a state file; its size.
fn snapshot(table: &mut dyn SnapshotState, range: KeyGroupRange, kind: SnapshotKind) -> usize {
    let mut groups = table.begin_snapshot(range, kind).expect("begin");
    while groups.is_none() {
        groups = table.snapshot_step().expect("step");
    }
    let mut file = StateFileWriter::new(kind);
    file.section_of("bids", groups.expect("written"))
        .expect("section");
    file.finish().len()
}

fn bench(c: &mut Criterion) {
    let entries = if measuring() { 1_000_000 } else { 10_000 };
    let bids = bids(entries);
    let layout = KeyGroups::new(128, 1);
    let range = layout.range_of(0);

    let mut group = c.benchmark_group("state_snapshot");
    group.sample_size(10);
    group.throughput(Throughput::Elements(bids.len() as u64));
    group.bench_function("write/untracked", |b| {
        b.iter_batched_ref(
            || TrackedTable::new(MemoryTable::<Key, (), Bid>::new("bids", range), range),
            |table| write_all(table, &layout, &bids),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("write/tracked", |b| {
        b.iter_batched_ref(
            || {
                TrackedTable::tracking(
                    MemoryTable::<Key, (), Marked<Bid>>::new("bids", range),
                    range,
                )
            },
            |table| write_all(table, &layout, &bids),
            BatchSize::PerIteration,
        )
    });

    // A table whose every entry changed since its last (full) snapshot.
    let changed = || {
        let mut table = TrackedTable::tracking(
            MemoryTable::<Key, (), Marked<Bid>>::new("bids", range),
            range,
        );
        snapshot(&mut table, range, SnapshotKind::Full);
        write_all(&mut table, &layout, &bids);
        table
    };
    let bytes = snapshot(&mut changed(), range, SnapshotKind::Changes);
    group.throughput(Throughput::Bytes(bytes as u64));
    for (name, kind) in [
        ("snapshot/changes", SnapshotKind::Changes),
        ("snapshot/full", SnapshotKind::Full),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                changed,
                |table| {
                    let written = snapshot(table, range, kind);
                    assert!(written >= bytes * 9 / 10, "{written} of {bytes} bytes");
                    written
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
