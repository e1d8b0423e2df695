//! The catalog against a model: random commits of checkpoints that share
//! files, retention and discards; after every step each kept checkpoint loads
//! with all its files, and no file is left that only dropped ones needed.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    /// Commit the next checkpoint with these files of a pool of 8 (uploading
    /// the ones not there yet).
    Commit(BTreeSet<u8>),
    Retain(usize),
    /// Upload files for a checkpoint that is then aborted.
    Abort(BTreeSet<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let files = proptest::collection::btree_set(0u8..8, 0..4);
    prop_oneof![
        3 => files.clone().prop_map(Op::Commit),
        1 => (1usize..4).prop_map(Op::Retain),
        1 => files.prop_map(Op::Abort),
    ]
}

fn name(file: u8) -> String {
    format!("f{file}.sst")
}

fn manifest(checkpoint: u64, files: &BTreeMap<String, FileInfo>) -> Manifest {
    Manifest {
        checkpoint,
        job: "test".into(),
        created_unix_ms: checkpoint,
        files: files.clone(),
        tasks: BTreeMap::new(),
        finished: false,
    }
}

/// Applies `ops` to `catalog` and checks it against the model after each.
fn check_retention<S: ObjectStore>(
    catalog: CheckpointCatalog<S>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    // Model: committed checkpoints (id -> files), in order.
    let mut model: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut next = 1u64;
    for op in ops {
        match op {
            Op::Commit(files) => {
                let mut infos = BTreeMap::new();
                for f in files {
                    let bytes = format!("contents of {f}").into_bytes();
                    infos.insert(name(f), catalog.put_shared(&name(f), &bytes).unwrap());
                }
                catalog.commit(&manifest(next, &infos)).unwrap();
                model.insert(next, infos.into_keys().collect());
                next += 1;
            }
            Op::Retain(keep) => {
                let report = catalog.retain(keep).unwrap();
                let drop = model.len().saturating_sub(keep.max(1));
                let dropped: Vec<u64> = model.keys().take(drop).copied().collect();
                prop_assert_eq!(&report.dropped_checkpoints, &dropped);
                for id in dropped {
                    model.remove(&id);
                }
            }
            Op::Abort(files) => {
                let names: Vec<String> = files.iter().map(|&f| name(f)).collect();
                for n in &names {
                    catalog.put_shared(n, b"partial").unwrap();
                }
                catalog.discard(&names).unwrap();
                // A discarded upload that overwrote a committed file would
                // be caught by the size check below.
                for n in &names {
                    if model.values().any(|fs| fs.contains(n)) {
                        let original = format!("contents of {}", &n[1..n.len() - 4]).into_bytes();
                        catalog.put_shared(n, &original).unwrap();
                    }
                }
            }
        }
        // Every kept checkpoint loads with all its files.
        prop_assert_eq!(
            catalog.checkpoints().unwrap(),
            model.keys().copied().collect::<Vec<_>>()
        );
        for (&id, files) in &model {
            let m = catalog.load(id).unwrap();
            prop_assert_eq!(&m.files.keys().cloned().collect::<BTreeSet<_>>(), files);
            for (n, info) in &m.files {
                prop_assert!(catalog.get_shared(n, info).is_ok());
            }
        }
        // No shared file outlives every checkpoint that needed it.
        let needed: BTreeSet<String> = model
            .values()
            .flatten()
            .map(|n| format!("shared/{n}"))
            .collect();
        let present: BTreeSet<String> = catalog
            .store()
            .list("shared/")
            .unwrap()
            .into_iter()
            .collect();
        prop_assert!(
            present.is_subset(&needed),
            "left over: {:?}",
            present.difference(&needed).collect::<Vec<_>>()
        );
        prop_assert_eq!(present, needed);
    }
    Ok(())
}

proptest! {
    // Each case writes and syncs files: fewer cases than the default.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn retention_keeps_exactly_what_kept_checkpoints_need(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        check_retention(CheckpointCatalog::new(FileStore::new(dir.path())), ops)?;
    }
}

/// The same against a real S3-compatible server (a prefix per case):
/// requests are slower, so fewer cases.
#[test]
fn retention_in_s3_keeps_exactly_what_kept_checkpoints_need() {
    let server = s3_test_server::S3TestServer::start().unwrap();
    server.create_bucket("catalog").unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(4));
    let case = std::cell::Cell::new(0);
    runner
        .run(&proptest::collection::vec(op(), 1..20), |ops| {
            case.set(case.get() + 1);
            let prefix = format!("case-{}", case.get());
            let store = S3Store::new(server.settings("catalog", &prefix)).unwrap();
            check_retention(CheckpointCatalog::new(store), ops)
        })
        .unwrap();
}

#[test]
fn restore_falls_back_past_a_corrupt_manifest_and_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = CheckpointCatalog::new(FileStore::new(dir.path()));
    let one = [("a".to_owned(), catalog.put_shared("a", b"aaa").unwrap())].into();
    catalog.commit(&manifest(1, &one)).unwrap();
    let two = [("b".to_owned(), catalog.put_shared("b", b"bbb").unwrap())].into();
    catalog.commit(&manifest(2, &two)).unwrap();
    catalog.commit(&manifest(3, &one)).unwrap();
    // 3: torn manifest; 2: its file is gone.
    let key3 = "checkpoints/00000000000000000003/MANIFEST";
    let bytes = catalog.store().get(key3).unwrap();
    catalog
        .store()
        .put(key3, &bytes[..bytes.len() - 5])
        .unwrap();
    catalog.store().delete("shared/b").unwrap();
    let (latest, skipped) = catalog.latest().unwrap();
    assert_eq!(latest.map(|m| m.checkpoint), Some(1));
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[0].checkpoint, 3);
    assert!(
        skipped[0].reason.contains(key3) && skipped[0].reason.contains("checksum"),
        "{}",
        skipped[0].reason
    );
    assert_eq!(skipped[1].checkpoint, 2);
    assert!(
        skipped[1].reason.contains("shared/b") && skipped[1].reason.contains("missing"),
        "{}",
        skipped[1].reason
    );
    // A shared file whose contents changed is refused when read.
    catalog.store().put("shared/a", b"aab").unwrap();
    let info = &catalog.load(1).unwrap().files["a"];
    let err = catalog.get_shared("a", info).unwrap_err();
    assert!(
        err.contains("shared/a") && err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn a_streamed_shared_file_is_recorded_as_the_same_bytes_put_whole() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = CheckpointCatalog::new(FileStore::new(dir.path()));
    let whole = catalog.put_shared("whole", b"abcdefgh").unwrap();
    let mut upload = catalog.begin_shared("streamed").unwrap();
    for piece in [&b"abc"[..], b"", b"defgh"] {
        catalog.append_shared(&mut upload, piece).unwrap();
    }
    assert_eq!(upload.len(), 8);
    let streamed = catalog.finish_shared(upload).unwrap();
    assert_eq!(streamed, whole);
    assert_eq!(catalog.get_shared("streamed", &whole).unwrap(), b"abcdefgh");
    let mut aborted = catalog.begin_shared("aborted").unwrap();
    catalog.append_shared(&mut aborted, b"x").unwrap();
    catalog.abort_shared(aborted);
    assert!(catalog.get_shared("aborted", &whole).is_err());
}
