//! Savepoints of a running embedded job: a checkpoint taken on request, with
//! every shard writing everything, copied into a location of its own
//! (`<dir>/savepoint-<id>`, a directory or S3 prefix laid out like checkpoint
//! storage) so that it
//! needs nothing else to restore — on any shard count — and outlives the
//! job's retention.
//!
//! `sluice savepoint job.toml` asks through the job's checkpoint storage: it
//! writes [`REQUEST_KEY`] there and waits for the driver's response file.
//! The driver (on the job's waiting thread) polls for requests, triggers the
//! checkpoint, copies it when it completes and answers. With `stop`, as in
//! Flink, sources read nothing after that checkpoint's barrier, and the job
//! stops once the savepoint is written, committing nothing past it (if it
//! fails, the sources read on).

use std::time::{Duration, Instant};

use sluice_state::checkpoint_store::{CheckpointCatalog, ObjectStore, StorageLocation};

use super::CheckpointId;

/// Where a request waits in the checkpoint storage.
pub const REQUEST_KEY: &str = "savepoint-request.json";

/// A request for a savepoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavepointRequest {
    /// Names the response.
    pub request: String,
    /// Where the savepoint goes (`<target>/savepoint-<id>`): a path or an
    /// `s3://` URL.
    pub target: String,
    /// Stop the job once the savepoint is taken.
    pub stop: bool,
}

/// The driver's answer: where the savepoint is, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavepointResponse {
    pub request: String,
    pub path: Option<String>,
    pub error: Option<String>,
}

fn response_key(request: &str) -> String {
    format!("savepoint-response-{request}.json")
}

/// Asks the job checkpointing into `storage` for a savepoint in `target`
/// and waits up to `timeout` for it; returns where it is.
pub fn request_savepoint(
    storage: &StorageLocation,
    target: &StorageLocation,
    stop: bool,
    timeout: Duration,
) -> Result<String, String> {
    let store = storage.open()?;
    let request = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let body = serde_json::to_vec(&SavepointRequest {
        request: request.clone(),
        target: target.to_string(),
        stop,
    })
    .expect("a request serializes");
    store.put(REQUEST_KEY, &body).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let key = response_key(&request);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let Ok(bytes) = store.get(&key) else { continue };
        let _ = store.delete(&key);
        let response: SavepointResponse = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{storage}/{key}: malformed response: {e}"))?;
        return match (response.path, response.error) {
            (Some(path), _) => Ok(path),
            (None, error) => Err(error.unwrap_or_else(|| "the job gave no reason".into())),
        };
    }
    // Nobody answered: take the request back so a later job does not act on it.
    let _ = store.delete(REQUEST_KEY);
    Err(format!(
        "no running job answered within {} s (is one running with this job file's checkpoint storage, {}?)",
        timeout.as_secs(),
        storage
    ))
}

/// Takes a pending request out of `storage`, if there is one.
pub fn take_request(storage: &dyn ObjectStore) -> Option<Result<SavepointRequest, String>> {
    let bytes = storage.get(REQUEST_KEY).ok()?;
    let _ = storage.delete(REQUEST_KEY);
    Some(
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{REQUEST_KEY}: malformed savepoint request: {e}")),
    )
}

/// Answers `request` in `storage`.
pub fn respond(storage: &dyn ObjectStore, request: &str, result: Result<StorageLocation, String>) {
    let (path, error) = match result {
        Ok(location) => (Some(location.to_string()), None),
        Err(e) => (None, Some(e)),
    };
    let body = serde_json::to_vec(&SavepointResponse {
        request: request.to_owned(),
        path,
        error,
    })
    .expect("a response serializes");
    if let Err(e) = storage.put(&response_key(request), &body) {
        tracing::warn!("answering savepoint request {request}: {e}");
    }
}

/// Copies checkpoint `id` of `catalog` (its manifest and every file it
/// refers to, checked on the way) to `<target>/savepoint-<id>`.
pub fn copy_checkpoint<S: ObjectStore>(
    catalog: &CheckpointCatalog<S>,
    id: CheckpointId,
    target: &StorageLocation,
) -> Result<StorageLocation, String> {
    let manifest = catalog.load(id)?;
    let root = target.join(&format!("savepoint-{id}"));
    let target = CheckpointCatalog::new(root.open()?);
    for (name, info) in &manifest.files {
        let bytes = catalog.get_shared(name, info)?;
        target
            .put_shared(name, &bytes)
            .map_err(|e| format!("writing the savepoint: {e}"))?;
    }
    target
        .commit(&manifest)
        .map_err(|e| format!("writing the savepoint's manifest: {e}"))?;
    Ok(root)
}
