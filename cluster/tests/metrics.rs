//! Prometheus metrics end to end: `sluice run --metrics-addr` and a worker's
//! `--metrics-addr` scraped over HTTP while real jobs run; the figures are
//! checked against what the job's sink wrote and against a slow sink's
//! backpressure. The coordinator's `/metrics` is scraped without a token.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::cluster::TestCluster;
use support::lines_of;
use support::scrape::{http_get, parse, sum};

/// Starts `sluice run job --metrics-addr 127.0.0.1:0` (with `extra`);
/// returns the child, where its metrics are, and its stderr lines.
fn run_with_metrics(job: &Path, extra: &[&str]) -> (Child, SocketAddr, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            job.to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines_in = lines_of(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut address = None;
    while let Ok(line) = lines_in.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(found) = line.strip_prefix("metrics at http://") {
            address = found.trim_end_matches("/metrics").parse().ok();
            break;
        }
    }
    match address {
        Some(address) => (child, address, lines_in),
        None => {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("no metrics address on stderr within 60 s");
        }
    }
}

/// Waits (bounded) for a stderr line containing `text`.
fn wait_for_line(lines: &Receiver<String>, text: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no line with `{text}` within {within:?}"));
        if line.contains(text) {
            return line;
        }
    }
}

fn is_sink(operator: &str) -> bool {
    operator.ends_with("_sink")
}

#[test]
fn records_in_and_out_add_up_to_what_the_sink_wrote() {
    const EVENTS: u64 = 300_000;
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 2\n[params]\nwindow = \"tumbling\"\nsize_ms = 1000\n\
             [source]\nconnector = \"generator\"\nseed = 3\nevents = {EVENTS}\nkeys = 500\n\
             events_per_second = 20000\ndelayed_percent = 10\nmax_delay_ms = 500\nout_of_orderness_ms = 500\n\
             [sink]\nconnector = \"file\"\npath = \"out\"\nformat = \"csv\"\n"
        ),
    )
    .unwrap();
    let (mut child, address, lines) = run_with_metrics(&job, &["--metrics-linger-s", "30"]);
    let summary = wait_for_line(&lines, "finished", Duration::from_secs(120));
    let (status, text) = http_get(address, "/metrics");
    assert_eq!(status, 200, "{text}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(text.ends_with("# EOF\n"), "an OpenMetrics exposition");
    let samples = parse(&text);
    let written: u64 = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count() as u64
        })
        .sum();
    assert!(written > 0, "{summary}");
    let any: &dyn Fn(&str) -> bool = &|_| true;
    let sink_in = sum(
        &samples,
        "sluice_operator_records_in_total",
        &[("operator", &is_sink)],
    );
    let shard_out = sum(&samples, "sluice_shard_records_out_total", &[("job", any)]);
    assert_eq!(sink_in as u64, written, "the sink took in what it wrote");
    assert_eq!(shard_out as u64, written, "the shards' sinks wrote it");
    // Every event left the source and crossed the key exchange once.
    let source: &dyn Fn(&str) -> bool = &|o| o.ends_with("_source");
    let key_by: &dyn Fn(&str) -> bool = &|o| o.ends_with("_key_by");
    let out = |f: &dyn Fn(&str) -> bool| {
        sum(
            &samples,
            "sluice_operator_records_out_total",
            &[("operator", f)],
        ) as u64
    };
    assert_eq!(out(source), EVENTS);
    assert_eq!(out(key_by), EVENTS);
    assert_eq!(
        sum(&samples, "sluice_shard_records_in_total", &[("job", any)]) as u64,
        EVENTS
    );
    // Per operator and shard, what an operator takes in is what its input
    // put out (the window's input is the exchange's output there).
    let window: &dyn Fn(&str) -> bool = &|o| o.ends_with("_window");
    assert_eq!(
        sum(
            &samples,
            "sluice_operator_records_in_total",
            &[("operator", window)]
        ) as u64,
        EVENTS
    );
    for shard in ["0", "1"] {
        let on: &dyn Fn(&str) -> bool = &move |s| s == shard;
        let busy = sum(
            &samples,
            "sluice_shard_busy_milliseconds_total",
            &[("shard", on)],
        );
        assert!(busy > 0.0, "shard {shard} was busy some time");
    }
    // The sinks' latency histogram counted batches, each in one bucket.
    let batches = sum(
        &samples,
        "sluice_sink_latency_seconds_count",
        &[("job", any)],
    );
    let in_buckets = sum(
        &samples,
        "sluice_sink_latency_seconds_bucket",
        &[("le", &|le| le == "+Inf")],
    );
    assert!(batches >= 1.0, "{text}");
    assert_eq!(batches, in_buckets);
}

#[test]
fn backpressure_shows_on_the_exchange_before_a_slow_sink() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    // q18 sends every bid through a key exchange and emits one upsert per
    // bid; the sink takes 2,000 records per second and shard.
    std::fs::write(
        &job,
        "job = \"nexmark.q18\"\nshards = 2\n[source]\nconnector = \"nexmark\"\nevents = 10000000\nseed = 1\n\
         [sink]\nconnector = \"blackhole\"\nrecords_per_second = 2000\n",
    )
    .unwrap();
    let (mut child, address, _lines) = run_with_metrics(&job, &[]);
    let exchange: &dyn Fn(&str) -> bool = &|o| o.ends_with("_key_by");
    let started = Instant::now();
    let mut waited_ms = 0.0;
    let mut fullest_input: f64 = 0.0;
    let mut last = String::new();
    // Bounded: 40 scrapes, 30 s.
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(750));
        let (status, text) = http_get(address, "/metrics");
        assert_eq!(status, 200, "{text}");
        let samples = parse(&text);
        waited_ms = sum(
            &samples,
            "sluice_operator_backpressured_milliseconds_total",
            &[("operator", exchange)],
        );
        for sample in samples
            .iter()
            .filter(|s| s.name == "sluice_operator_input_queue_fill")
        {
            fullest_input = fullest_input.max(sample.value);
        }
        last = text;
        if waited_ms >= 1000.0 || started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        waited_ms >= 1000.0,
        "the exchange before the slow sink waited {waited_ms} ms for credit:\n{last}"
    );
    assert!(
        fullest_input > 0.0,
        "the slow sink's shard had batches waiting at its input:\n{last}"
    );
    // Every shard publishes its second's shares, adding up to 1,000 ms, and
    // the entries of q18's state (the last bid per bidder and auction).
    let samples = parse(&last);
    let process: &dyn Fn(&str) -> bool = &|o| o.ends_with("_process");
    let entries = sum(
        &samples,
        "sluice_operator_state_entries",
        &[("operator", process)],
    );
    assert!(entries > 0.0, "q18's state entries:\n{last}");
    for shard in ["0", "1"] {
        let on: &dyn Fn(&str) -> bool = &move |s| s == shard;
        let second: f64 = [
            "sluice_shard_busy_time_ms_per_second",
            "sluice_shard_backpressured_time_ms_per_second",
            "sluice_shard_idle_time_ms_per_second",
        ]
        .iter()
        .map(|name| sum(&samples, name, &[("shard", on)]))
        .sum();
        assert_eq!(second, 1000.0, "shard {shard}:\n{last}");
    }
}

#[test]
fn a_worker_and_the_coordinator_serve_metrics() {
    let mut cluster = TestCluster::start();
    let worker_metrics: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let address = worker_metrics.to_string();
    cluster.add_worker_with("w1", 2, &["--metrics-addr", &address]);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "job = \"nexmark.q18\"\n[source]\nconnector = \"nexmark\"\nevents = 10000000\nseed = 1\n\
         [sink]\nconnector = \"blackhole\"\nrecords_per_second = 5000\n",
    )
    .unwrap();
    let id = cluster.submit(&job);
    cluster.wait_for(&id, &["running"], Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    let worker_text = loop {
        let (status, text) = http_get(worker_metrics, "/metrics");
        assert_eq!(status, 200, "{text}");
        let samples = parse(&text);
        let job_id: &dyn Fn(&str) -> bool = &|v| v == id;
        let read = sum(
            &samples,
            "sluice_shard_records_in_total",
            &[("job_id", job_id)],
        );
        if read > 0.0 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the task's metrics never showed:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(worker_text.contains("worker=\"w1\""), "{worker_text}");
    let api: SocketAddr = cluster.http.trim_start_matches("http://").parse().unwrap();
    let (status, text) = http_get(api, "/metrics");
    assert_eq!(status, 200, "{text}");
    let samples = parse(&text);
    let running: &dyn Fn(&str) -> bool = &|v| v == "running";
    assert_eq!(
        sum(&samples, "sluice_job_state", &[("state", running)]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "sluice_coordinator_worker_alive",
            &[("worker", &|w| w == "w1")]
        ),
        1.0
    );
    // The rest of the API still wants the token.
    assert_eq!(http_get(api, "/jobs").0, 401);
    // The worker's lines about the task name its job and attempt; none
    // carries the secret.
    let log = cluster.worker_log("w1");
    assert!(
        log.contains(&format!(
            "sluice: job{{job_id={id} attempt=1}}: task {id}#1"
        )),
        "{log}"
    );
    assert!(
        log.contains("shard{shard=0}") || log.contains("starting shard(s)"),
        "{log}"
    );
    let secret = std::fs::read_to_string(cluster.secret()).unwrap();
    assert!(
        !log.contains(secret.trim()),
        "the worker logged the cluster secret"
    );
    cluster.command(&["cancel", &id]);
}
