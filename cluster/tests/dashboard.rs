//! The web dashboard in a real headless Chromium: against a running cluster
//! job the page shows the job's operators as a graph and numbers that move
//! (two screenshots, kept under the test target directory, differ), the
//! savepoint button with a wrong secret is refused and with the right one
//! writes a savepoint; `sluice run --ui` serves the same page for the job of
//! one process. The figures' payload sizes are printed (bench/RESULTS.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::browser::Browser;
use support::cluster::{sluice, TestCluster};
use support::lines_of;
use support::scrape::http_get;

/// A windowed aggregation paced at 100k events/s (about two minutes),
/// checkpointed every second, over `shards` shards into `out`.
fn paced_job(shards: u32) -> String {
    format!(
        "job = \"windowed_aggregation\"\nshards = {shards}\nprogress = false\n\
         [source]\nconnector = \"generator\"\nevents = 12_000_000\nkeys = 2_000\nseed = 3\nrate = 100_000\n\
         [sink]\nconnector = \"file\"\npath = \"out\"\n\
         [params]\nwindow = \"tumbling\"\nsize_ms = 500\n\
         [checkpoint]\ninterval_ms = 1_000\nstorage = \"file://checkpoints\"\n"
    )
}

/// Where the screenshots are kept for a look after the run.
fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn address_of(url: &str) -> SocketAddr {
    let rest = url.trim_start_matches("http://");
    rest.split('/').next().unwrap().parse().unwrap()
}

/// The graph's nodes as the page drew them: kind and records out.
fn drawn_nodes(browser: &mut Browser) -> Vec<(String, u64)> {
    let nodes = browser.evaluate(
        "Array.from(document.querySelectorAll('#graph g.node')).map(g => \
         [g.dataset.kind, Number(g.dataset.recordsOut)])",
    );
    (nodes.as_array().unwrap().iter())
        .map(|n| (n[0].as_str().unwrap().to_owned(), n[1].as_u64().unwrap()))
        .collect()
}

fn sink_records(nodes: &[(String, u64)]) -> u64 {
    nodes
        .iter()
        .filter(|(k, _)| k == "sink")
        .map(|(_, n)| n)
        .sum()
}

/// Types `secret` into the page and presses Savepoint; the message shown.
fn savepoint_with(browser: &mut Browser, secret: &str) -> String {
    browser.evaluate(&format!(
        "(() => {{ const s = document.getElementById('secret'); s.value = {secret:?}; \
         s.dispatchEvent(new Event('input')); document.getElementById('savepoint').click(); }})()"
    ));
    browser.wait_for(
        "(() => { const r = document.getElementById('action-result'); \
         return r !== null && (r.className === 'refused' || r.className === 'done'); })()",
        Duration::from_secs(90),
    );
    let result = browser.evaluate(
        "(() => { const r = document.getElementById('action-result'); \
         return r.className + ': ' + r.textContent; })()",
    );
    result.as_str().unwrap().to_owned()
}

#[test]
fn the_dashboard_shows_a_running_job_live_and_guards_its_actions_with_the_secret() {
    let mut cluster = TestCluster::start();
    cluster.add_worker("a", 2);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("paced.toml");
    std::fs::write(&job, paced_job(2)).unwrap();
    let id = cluster.submit(&job);
    cluster.wait_until(&id, "writing", Duration::from_secs(60), |s| {
        s["state"] == "running" && s["last_checkpoint"].as_u64().is_some()
    });
    let http = address_of(&cluster.http);

    // The figures the page reads, and their sizes.
    let (status, page) = http_get(http, "/ui/");
    assert_eq!(status, 200);
    assert!(page.contains("/ui/app.js"), "{page}");
    let (status, script) = http_get(http, "/ui/app.js");
    assert_eq!(status, 200);
    let (status, style) = http_get(http, "/ui/style.css");
    assert_eq!(status, 200);
    let (status, overview) = http_get(http, "/ui/api/overview");
    assert_eq!(status, 200, "{overview}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let job_view = loop {
        let (status, body) = http_get(http, &format!("/ui/api/jobs/{id}"));
        assert_eq!(status, 200, "{body}");
        let view: Value = serde_json::from_str(&body).unwrap();
        if view["series"]["at_ms"].as_array().unwrap().len() >= 3 {
            break body;
        }
        assert!(Instant::now() < deadline, "no series: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "dashboard payloads: page {} B, app.js {} B, style.css {} B, overview {} B, job {} B",
        page.len(),
        script.len(),
        style.len(),
        overview.len(),
        job_view.len()
    );
    let view: Value = serde_json::from_str(&job_view).unwrap();
    assert!(
        !job_view.contains("a-cluster-secret"),
        "no secret in the figures"
    );
    let kinds: Vec<&str> = (view["operators"].as_array().unwrap().iter())
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["source", "key_by", "window", "sink"]);
    // The exchange (key_by) shows its credit waits; the others have none.
    let waits: Vec<bool> = (view["operators"].as_array().unwrap().iter())
        .map(|o| o["backpressured_ms_per_s"].is_u64())
        .collect();
    assert_eq!(waits, [false, true, false, false]);
    assert_eq!(view["shards"].as_array().unwrap().len(), 2, "{view}");

    let mut browser = Browser::start(1400, 1100);
    browser.navigate(&format!("{}/ui/#/jobs/{id}", cluster.http));
    browser.wait_for(
        "document.querySelectorAll('#graph g.node').length > 0 && \
         document.querySelector('#chart-throughput polyline') !== null",
        Duration::from_secs(30),
    );
    let first = drawn_nodes(&mut browser);
    let drawn_kinds: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(drawn_kinds, kinds, "every operator drawn");
    let shards_shown = browser.evaluate("document.querySelectorAll('#shards tbody tr').length");
    assert_eq!(shards_shown, 2);
    let shot_1 = browser.screenshot();
    std::thread::sleep(Duration::from_millis(2_500));
    let second = drawn_nodes(&mut browser);
    let shot_2 = browser.screenshot();
    assert!(
        sink_records(&second) > sink_records(&first),
        "the sink's count moved: {first:?} then {second:?}"
    );
    let screenshots = screenshot_dir();
    std::fs::write(screenshots.join("cluster-job-1.png"), &shot_1).unwrap();
    std::fs::write(screenshots.join("cluster-job-2.png"), &shot_2).unwrap();
    assert!(shot_1.starts_with(b"\x89PNG") && shot_1.len() > 10_000);
    assert_ne!(shot_1, shot_2, "the numbers on the page moved");

    // A wrong secret is refused by the coordinator; the job runs on and no
    // savepoint is written.
    let refused = savepoint_with(&mut browser, "not-the-cluster-secret-at-all");
    assert!(refused.starts_with("refused: refused (401)"), "{refused}");
    assert_eq!(cluster.status(&id)["state"], "running");
    assert!(!dir.path().join("checkpoints/savepoints").exists());
    // The right one: the token the page derives is the coordinator's.
    let secret = std::fs::read_to_string(cluster.secret()).unwrap();
    let done = savepoint_with(&mut browser, &secret);
    assert!(done.starts_with("done: savepoint written: "), "{done}");
    let location = done.trim_start_matches("done: savepoint written: ");
    assert!(
        location.contains("savepoints"),
        "a savepoint location: {location}"
    );
    std::fs::write(
        screenshots.join("cluster-job-savepoint.png"),
        browser.screenshot(),
    )
    .unwrap();
}

#[test]
fn sluice_run_ui_serves_the_dashboard_of_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("paced.toml");
    std::fs::write(&job, paced_job(2)).unwrap();
    let mut child = sluice()
        .arg("run")
        .arg(&job)
        .args(["--ui", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines_in = lines_of(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let line = lines_in
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no dashboard address within 60 s");
        if let Some(url) = line.strip_prefix("dashboard at ") {
            break url.trim_end_matches("/ui/").to_owned();
        }
    };
    let address = address_of(&url);
    let (status, overview) = http_get(address, "/ui/api/overview");
    assert_eq!(status, 200, "{overview}");
    let overview: Value = serde_json::from_str(&overview).unwrap();
    assert_eq!(overview["mode"], "local");
    assert_eq!(overview["actions"], false);
    let (status, metrics) = http_get(address, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("sluice_operator_records_out"), "{metrics}");

    let mut browser = Browser::start(1400, 1000);
    // The page goes to the one job by itself.
    browser.navigate(&format!("{url}/ui/"));
    browser.wait_for(
        "location.hash === '#/jobs/local' && \
         document.querySelectorAll('#graph g.node').length > 0",
        Duration::from_secs(30),
    );
    let first = drawn_nodes(&mut browser);
    assert!(first.iter().any(|(k, _)| k == "source"), "{first:?}");
    std::thread::sleep(Duration::from_millis(2_500));
    let second = drawn_nodes(&mut browser);
    assert!(
        sink_records(&second) > sink_records(&first),
        "{first:?} then {second:?}"
    );
    let no_buttons = browser.evaluate("document.getElementById('savepoint') === null");
    assert_eq!(no_buttons, true, "one process offers no actions");
    std::fs::write(screenshot_dir().join("run-ui.png"), browser.screenshot()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}
