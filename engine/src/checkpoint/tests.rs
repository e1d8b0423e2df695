//! The checkpoint coordinator in a seeded, deterministic simulation: tasks
//! acknowledge after random delays, decline or never answer; manifests take
//! time and sometimes fail; the clock moves in uneven steps. Every run checks
//! the protocol's invariants after each step; a failing seed replays exactly.

use std::collections::BTreeMap;

use super::coordinator::*;
use super::sim_rng::Rng;

/// How unreliable the simulated world is, in percent.
#[derive(Clone, Copy)]
struct Faults {
    decline: u64,
    lost_ack: u64,
    manifest_fails: u64,
    max_ack_delay_ms: u64,
    max_manifest_delay_ms: u64,
}

const TIMING: CheckpointTiming = CheckpointTiming {
    interval_ms: 100,
    timeout_ms: 300,
    min_pause_ms: 40,
};
const MAX_STEP_MS: u64 = 15;

/// What the simulation saw of one checkpoint.
#[derive(Default, Debug)]
struct Seen {
    triggered_at: u64,
    manifest_requested: bool,
    manifest_written: bool,
    ended_at: Option<u64>,
    completed: bool,
}

/// Runs one seeded simulation for `duration_ms` of simulated time and checks
/// the invariants; returns the coordinator's stats.
fn simulate(seed: u64, tasks: u32, faults: Faults, duration_ms: u64) -> CheckpointStats {
    let mut rng = Rng::new(seed);
    let mut coordinator: CheckpointCoordinator<(TaskId, CheckpointId)> =
        CheckpointCoordinator::new(TIMING, tasks, 1);
    // Inputs due at a time: (due, order) -> input.
    let mut pending: BTreeMap<(u64, u64), CheckpointInput<(TaskId, CheckpointId)>> =
        BTreeMap::new();
    let mut order = 0u64;
    let mut seen: BTreeMap<CheckpointId, Seen> = BTreeMap::new();
    let mut last_trigger: Option<(CheckpointId, u64)> = None;
    let mut last_end: Option<u64> = None;
    let mut now = 0u64;
    let fail = |what: String| -> ! { panic!("seed {seed}: {what}") };

    while now < duration_ms {
        now += 1 + rng.below(MAX_STEP_MS);
        // Deliver what is due in time order, each after a tick at its time (a
        // driver tells the coordinator the time before each input), then tick.
        let due: Vec<_> = pending.range(..(now + 1, 0)).map(|(k, _)| *k).collect();
        let mut inputs = Vec::new();
        for key in due {
            inputs.push((key.0, CheckpointInput::Tick { now_ms: key.0 }));
            inputs.push((key.0, pending.remove(&key).unwrap()));
        }
        let step_end = now;
        inputs.push((step_end, CheckpointInput::Tick { now_ms: step_end }));
        for (now, input) in inputs {
            if let CheckpointInput::ManifestWritten { checkpoint } = &input {
                if let Some(s) = seen.get_mut(checkpoint) {
                    s.manifest_written = true;
                }
            }
            for action in coordinator.handle(input) {
                match action {
                    CheckpointAction::Trigger { checkpoint } => {
                        if let Some(open) = seen.values().find(|s| s.ended_at.is_none()) {
                            fail(format!(
                                "checkpoint {checkpoint} triggered while one from {} is open",
                                open.triggered_at
                            ));
                        }
                        if let Some((previous, at)) = last_trigger {
                            if checkpoint <= previous {
                                fail(format!("id {checkpoint} after {previous}"));
                            }
                            if now - at < TIMING.interval_ms {
                                fail(format!("triggered {} ms after the last", now - at));
                            }
                        }
                        if let Some(end) = last_end {
                            if now - end < TIMING.min_pause_ms {
                                fail(format!("triggered {} ms after an end", now - end));
                            }
                        }
                        last_trigger = Some((checkpoint, now));
                        seen.insert(
                            checkpoint,
                            Seen {
                                triggered_at: now,
                                ..Default::default()
                            },
                        );
                        // Each task answers (or not) after its own delay.
                        for task in 0..tasks {
                            if rng.chance(faults.lost_ack) {
                                continue;
                            }
                            let at = now + rng.below(faults.max_ack_delay_ms + 1);
                            let input = if rng.chance(faults.decline) {
                                CheckpointInput::Declined {
                                    checkpoint,
                                    task,
                                    reason: "simulated".into(),
                                }
                            } else {
                                CheckpointInput::Acknowledged {
                                    checkpoint,
                                    task,
                                    ack: (task, checkpoint),
                                }
                            };
                            order += 1;
                            pending.insert((at, order), input);
                            // Now and then a task repeats itself.
                            if rng.chance(5) {
                                order += 1;
                                pending.insert(
                                    (at + 1, order),
                                    CheckpointInput::Acknowledged {
                                        checkpoint,
                                        task,
                                        ack: (task, checkpoint),
                                    },
                                );
                            }
                        }
                    }
                    CheckpointAction::WriteManifest { checkpoint, acks } => {
                        let s = seen
                            .get_mut(&checkpoint)
                            .unwrap_or_else(|| fail(format!("manifest of unknown {checkpoint}")));
                        if s.manifest_requested || s.ended_at.is_some() {
                            fail(format!("manifest of {checkpoint} asked for twice or late"));
                        }
                        let expected: BTreeMap<_, _> =
                            (0..tasks).map(|t| (t, (t, checkpoint))).collect();
                        if acks != expected {
                            fail(format!("manifest of {checkpoint} from {acks:?}"));
                        }
                        s.manifest_requested = true;
                        let at = now + rng.below(faults.max_manifest_delay_ms + 1);
                        let input = if rng.chance(faults.manifest_fails) {
                            CheckpointInput::ManifestFailed {
                                checkpoint,
                                reason: "simulated".into(),
                            }
                        } else {
                            CheckpointInput::ManifestWritten { checkpoint }
                        };
                        order += 1;
                        pending.insert((at, order), input);
                    }
                    CheckpointAction::Completed { checkpoint } => {
                        let s = seen.get_mut(&checkpoint).unwrap();
                        if !(s.manifest_requested && s.manifest_written) || s.ended_at.is_some() {
                            fail(format!("{checkpoint} completed out of turn: {s:?}"));
                        }
                        s.completed = true;
                        s.ended_at = Some(now);
                        last_end = Some(now);
                    }
                    CheckpointAction::Aborted { checkpoint, .. } => {
                        let s = seen.get_mut(&checkpoint).unwrap();
                        if s.ended_at.is_some() {
                            fail(format!("{checkpoint} ended twice"));
                        }
                        s.ended_at = Some(now);
                        last_end = Some(now);
                    }
                }
            }
        }
        // No checkpoint outlives its timeout by more than a tick.
        for (id, s) in &seen {
            let deadline = s.triggered_at + TIMING.timeout_ms + MAX_STEP_MS;
            if s.ended_at.is_none() && now > deadline {
                fail(format!(
                    "{id} still open at {now}, triggered {}",
                    s.triggered_at
                ));
            }
        }
    }
    let stats = coordinator.stats();
    let completed = seen.values().filter(|s| s.completed).count() as u64;
    let aborted = seen
        .values()
        .filter(|s| s.ended_at.is_some() && !s.completed)
        .count() as u64;
    assert_eq!(
        (stats.triggered, stats.completed, stats.aborted),
        (seen.len() as u64, completed, aborted),
        "seed {seed}: stats"
    );
    stats
}

#[test]
fn a_reliable_world_completes_every_checkpoint_on_schedule() {
    let faults = Faults {
        decline: 0,
        lost_ack: 0,
        manifest_fails: 0,
        max_ack_delay_ms: 50,
        max_manifest_delay_ms: 30,
    };
    for seed in 0..200 {
        let stats = simulate(seed, 4, faults, 10_000);
        assert_eq!(stats.aborted, 0, "seed {seed}");
        // A checkpoint takes at most ~110 ms, then the interval rules: about
        // one every 100-150 ms over 10 s.
        assert!(
            (60..=100).contains(&stats.completed),
            "seed {seed}: {stats:?}"
        );
    }
}

#[test]
fn faults_abort_checkpoints_and_the_job_goes_on() {
    let faults = Faults {
        decline: 3,
        lost_ack: 3,
        manifest_fails: 10,
        max_ack_delay_ms: 250,
        max_manifest_delay_ms: 100,
    };
    for seed in 0..300 {
        let stats = simulate(seed, 3, faults, 20_000);
        assert!(stats.aborted > 0, "seed {seed}: {stats:?}");
        assert!(stats.completed > 10, "seed {seed}: {stats:?}");
    }
}

#[test]
fn checkpoints_slower_than_the_timeout_all_abort_without_piling_up() {
    let faults = Faults {
        decline: 0,
        lost_ack: 0,
        manifest_fails: 0,
        max_ack_delay_ms: 5_000,
        max_manifest_delay_ms: 10,
    };
    for seed in 0..100 {
        let stats = simulate(seed, 8, faults, 20_000);
        // Eight tasks each answering within 5 s: nearly none makes 300 ms.
        assert!(stats.aborted > 40, "seed {seed}: {stats:?}");
    }
}

#[test]
fn stale_duplicate_and_unknown_answers_change_nothing() {
    let mut c: CheckpointCoordinator<u8> = CheckpointCoordinator::new(TIMING, 2, 7);
    assert_eq!(
        c.handle(CheckpointInput::Tick { now_ms: 0 }),
        vec![CheckpointAction::Trigger { checkpoint: 7 }]
    );
    let ack = |checkpoint, task| CheckpointInput::Acknowledged {
        checkpoint,
        task,
        ack: task as u8,
    };
    assert!(c.handle(ack(6, 0)).is_empty(), "an older checkpoint");
    assert!(
        c.handle(ack(7, 5)).is_empty(),
        "a task the job does not have"
    );
    assert!(c.handle(ack(7, 0)).is_empty());
    assert!(c.handle(ack(7, 0)).is_empty(), "a repeated acknowledgement");
    assert!(
        c.handle(CheckpointInput::ManifestWritten { checkpoint: 7 })
            .is_empty(),
        "a manifest nobody asked for"
    );
    let write = c.handle(ack(7, 1));
    assert_eq!(
        write,
        vec![CheckpointAction::WriteManifest {
            checkpoint: 7,
            acks: [(0, 0), (1, 1)].into_iter().collect()
        }]
    );
    assert!(c
        .handle(CheckpointInput::Declined {
            checkpoint: 6,
            task: 0,
            reason: "old".into()
        })
        .is_empty());
    assert_eq!(
        c.handle(CheckpointInput::ManifestWritten { checkpoint: 7 }),
        vec![CheckpointAction::Completed { checkpoint: 7 }]
    );
    assert_eq!(c.stats().last_completed, Some(7));
    // Too early for the next one (interval 100 ms from the trigger at 0).
    assert!(c.handle(CheckpointInput::Tick { now_ms: 99 }).is_empty());
    assert_eq!(
        c.handle(CheckpointInput::Tick { now_ms: 100 }),
        vec![CheckpointAction::Trigger { checkpoint: 8 }]
    );
}
