//! A job split into parts that run as if in separate processes — each part
//! its own executors, the shards of different parts joined by TCP links over
//! 127.0.0.1 — gives exactly what one process gives; a link whose peer goes
//! away or sends garbage fails the part with an error naming the peer, never
//! a hang or a partial success.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_engine::connectors::{CollectSink, Collected, GeneratedEvent, GeneratorSource};
use sluice_engine::metrics::ShardFigures;
use sluice_engine::runtime::{JobCancel, JobPart, RemoteLink};
use sluice_engine::window::{AggregateFunction, SlidingWindows, TimeWindow};
use sluice_engine::{EngineError, JobConfig, StreamEnv, WatermarkStrategy};

/// Count and sum of values.
#[derive(Clone, Copy)]
struct CountSum;

impl AggregateFunction<GeneratedEvent> for CountSum {
    type Acc = (u64, i64);
    type Out = (u64, i64);
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, e: &GeneratedEvent, acc: &mut (u64, i64)) {
        acc.0 += 1;
        acc.1 += e.value;
    }
    fn get_result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
    fn merge(&self, a: (u64, i64), b: (u64, i64)) -> (u64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

type Results = BTreeMap<(u64, i64), (u64, i64)>;

fn config(shards: u32) -> JobConfig {
    JobConfig {
        shards,
        flush_timeout: Duration::from_millis(2),
        // Few credits, so that flow control across the links is exercised.
        channel_batches: 2,
        batch_bytes_limit: 4096,
        pin_cpus: false,
        ..Default::default()
    }
}

/// Count and sum per key in sliding windows: an exchange, event time,
/// watermarks from every shard, end of input.
fn build(shards: u32, events: u64) -> (StreamEnv, Collected<(u64, i64, u64, i64)>) {
    let env = StreamEnv::new(config(shards));
    let (sink, collected) = CollectSink::new();
    env.source(
        GeneratorSource {
            seed: 7,
            events: Some(events),
            keys: 300,
            partitions: 6,
            events_per_second: 20_000,
            delayed_percent: 10,
            max_delay_ms: 300,
            ..Default::default()
        },
        WatermarkStrategy::bounded_out_of_orderness(300),
    )
    .key_by(|e: &GeneratedEvent| e.key)
    .window(SlidingWindows::of(2_000, 500))
    .aggregate(CountSum, |key: &u64, w: &TimeWindow, (count, sum)| {
        (*key, w.start, count, sum)
    })
    .sink(sink);
    (env, collected)
}

fn results(collected: &[Collected<(u64, i64, u64, i64)>]) -> Results {
    let mut results = Results::new();
    for part in collected {
        for r in part.lock().unwrap().iter() {
            let (key, start, count, sum) = r.value;
            assert!(
                results.insert((key, start), (count, sum)).is_none(),
                "window ({key}, {start}) emitted twice"
            );
        }
    }
    results
}

/// A connected pair of loopback streams.
fn stream_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dialed = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    (dialed, accepted)
}

/// The parts of a job whose shards `placement` splits, with one connection
/// for every pair of shards in different parts.
fn parts(placement: &[Vec<u32>]) -> Vec<JobPart> {
    let mut parts: Vec<JobPart> = placement
        .iter()
        .map(|here| JobPart {
            here: here.clone(),
            links: Vec::new(),
            checkpoints: None,
            progress: None,
        })
        .collect();
    for (i, a) in placement.iter().enumerate() {
        for (j, b) in placement.iter().enumerate().skip(i + 1) {
            for &x in a {
                for &y in b {
                    let (one, other) = stream_pair();
                    parts[i].links.push(RemoteLink {
                        local: x,
                        remote: y,
                        peer: format!("part {j}"),
                        stream: one,
                    });
                    parts[j].links.push(RemoteLink {
                        local: y,
                        remote: x,
                        peer: format!("part {i}"),
                        stream: other,
                    });
                }
            }
        }
    }
    parts
}

fn run_parts(placement: &[Vec<u32>], events: u64) -> Results {
    let shards = placement.iter().map(Vec::len).sum::<usize>() as u32;
    let mut threads = Vec::new();
    let mut collected = Vec::new();
    let figures: Arc<Mutex<Vec<Vec<ShardFigures>>>> = Arc::default();
    for (i, mut part) in parts(placement).into_iter().enumerate() {
        figures.lock().unwrap().push(Vec::new());
        let reported = figures.clone();
        part.progress = Some(Box::new(move |now: &[ShardFigures]| {
            reported.lock().unwrap()[i] = now.to_vec();
        }));
        let (sender, receiver) = std::sync::mpsc::channel();
        threads.push(std::thread::spawn(move || {
            let (env, output) = build(shards, events);
            sender.send(output).unwrap();
            env.execute_part(part, JobCancel::default())
        }));
        collected.push(receiver.recv().unwrap());
    }
    let mut records_in = 0;
    for thread in threads {
        records_in += thread.join().unwrap().expect("part runs").totals.records_in;
    }
    assert_eq!(records_in, events, "every event read once over the parts");
    // Each part's last report names its own shards, and they read everything.
    let figures = figures.lock().unwrap();
    for (here, reported) in placement.iter().zip(figures.iter()) {
        let shards: Vec<u32> = reported.iter().map(|f| f.shard).collect();
        assert_eq!(&shards, here);
    }
    let reported_in: u64 = figures.iter().flatten().map(|f| f.records_in).sum();
    assert_eq!(reported_in, events);
    results(&collected)
}

#[test]
fn parts_joined_by_links_equal_one_process() {
    let events = 60_000;
    let (env, collected) = build(3, events);
    env.execute().unwrap();
    let expected = results(&[collected]);
    assert!(expected.len() > 1_000, "{} windows", expected.len());
    assert_eq!(run_parts(&[vec![0], vec![1], vec![2]], events), expected);
    assert_eq!(run_parts(&[vec![2], vec![0, 1]], events), expected);
    let (env, collected) = build(4, events);
    env.execute().unwrap();
    assert_eq!(results(&[collected]), expected);
    assert_eq!(run_parts(&[vec![0, 3], vec![1, 2]], events), expected);
}

/// Runs part 0 of a two-shard job whose other shard is `peer`: a thread
/// given the other end of the connection.
fn run_against(peer: impl FnOnce(TcpStream) + Send + 'static) -> Result<u64, EngineError> {
    let (env, _) = build(2, 200_000);
    let (ours, theirs) = stream_pair();
    let peer = std::thread::spawn(move || peer(theirs));
    let part = JobPart {
        here: vec![0],
        links: vec![RemoteLink {
            local: 0,
            remote: 1,
            peer: "the test's peer at 127.0.0.1".into(),
            stream: ours,
        }],
        checkpoints: None,
        progress: None,
    };
    let result = env.execute_part(part, JobCancel::default());
    peer.join().unwrap();
    result.map(|report| report.totals.records_in)
}

/// A link error naming the peer, with one of `reasons`.
fn assert_link_error(result: Result<u64, EngineError>, reasons: &[&str]) {
    match result {
        Err(EngineError::Link(message)) => {
            assert!(
                message.contains("the test's peer at 127.0.0.1")
                    && reasons.iter().any(|reason| message.contains(reason)),
                "{message}"
            );
        }
        other => panic!("expected a link error with one of {reasons:?}, got {other:?}"),
    }
}

#[test]
fn a_peer_that_goes_away_fails_the_part() {
    let result = run_against(|stream| {
        std::thread::sleep(Duration::from_millis(50));
        drop(stream);
    });
    // A close or a reset, depending on what the peer's kernel saw unread.
    assert_link_error(result, &["closed the link", "reading failed"]);
}

#[test]
fn a_peer_that_sends_garbage_fails_the_part() {
    let result = run_against(|mut stream| {
        let _ = stream.write_all(&[0xAB; 4096]);
        std::thread::sleep(Duration::from_millis(200));
    });
    assert_link_error(result, &["bad frame"]);
}

#[test]
fn a_cancelled_part_stops_while_its_peer_is_silent() {
    let (env, _) = build(2, u64::MAX / 2);
    let (ours, theirs) = stream_pair();
    let cancel = JobCancel::default();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let part = JobPart {
        here: vec![1],
        links: vec![RemoteLink {
            local: 1,
            remote: 0,
            peer: "a silent peer".into(),
            stream: ours,
        }],
        checkpoints: None,
        progress: None,
    };
    // The peer never reads nor writes: without the cancel this never ends.
    let result = env.execute_part(part, cancel);
    canceller.join().unwrap();
    drop(theirs);
    assert!(
        result.is_ok() || matches!(result, Err(EngineError::Link(_))),
        "{result:?}"
    );
}
