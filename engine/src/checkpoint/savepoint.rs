//! Savepoints of a running embedded job: a checkpoint taken on request, with
//! every shard writing everything, copied into a directory of its own
//! (`<dir>/savepoint-<id>`, laid out like checkpoint storage) so that it
//! needs nothing else to restore — on any shard count — and outlives the
//! job's retention.
//!
//! `sluice savepoint job.toml` asks through the job's checkpoint storage: it
//! writes [`REQUEST_KEY`] there and waits for the driver's response file.
//! The driver (on the job's waiting thread) polls for requests, triggers the
//! checkpoint, copies it when it completes and answers; with `stop` the job
//! then stops without committing anything past the savepoint.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sluice_state::checkpoint_store::{CheckpointCatalog, FileStore, ObjectStore};

use super::CheckpointId;

/// Where a request waits in the checkpoint storage.
pub const REQUEST_KEY: &str = "savepoint-request.json";

/// A request for a savepoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavepointRequest {
    /// Names the response.
    pub request: String,
    /// Where the savepoint goes (`<directory>/savepoint-<id>`).
    pub directory: PathBuf,
    /// Stop the job once the savepoint is taken.
    pub stop: bool,
}

/// The driver's answer: the savepoint's path, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavepointResponse {
    pub request: String,
    pub path: Option<PathBuf>,
    pub error: Option<String>,
}

fn response_key(request: &str) -> String {
    format!("savepoint-response-{request}.json")
}

/// Asks the job checkpointing into `storage` for a savepoint in `directory`
/// and waits up to `timeout` for it; returns its path.
pub fn request_savepoint(
    storage: &Path,
    directory: &Path,
    stop: bool,
    timeout: Duration,
) -> Result<PathBuf, String> {
    let store = FileStore::new(storage);
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
        directory: directory.to_owned(),
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
            .map_err(|e| format!("{}: malformed response: {e}", storage.join(&key).display()))?;
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
        storage.display()
    ))
}

/// Takes a pending request out of `storage`, if there is one.
pub fn take_request(storage: &FileStore) -> Option<Result<SavepointRequest, String>> {
    let bytes = storage.get(REQUEST_KEY).ok()?;
    let _ = storage.delete(REQUEST_KEY);
    Some(
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{REQUEST_KEY}: malformed savepoint request: {e}")),
    )
}

/// Answers `request` in `storage`.
pub fn respond(storage: &FileStore, request: &str, result: Result<PathBuf, String>) {
    let (path, error) = match result {
        Ok(path) => (Some(path), None),
        Err(e) => (None, Some(e)),
    };
    let body = serde_json::to_vec(&SavepointResponse {
        request: request.to_owned(),
        path,
        error,
    })
    .expect("a response serializes");
    if let Err(e) = storage.put(&response_key(request), &body) {
        eprintln!("sluice: answering savepoint request {request}: {e}");
    }
}

/// Copies checkpoint `id` of `catalog` (its manifest and every file it
/// refers to, checked on the way) to `<directory>/savepoint-<id>`.
pub fn copy_checkpoint(
    catalog: &CheckpointCatalog<FileStore>,
    id: CheckpointId,
    directory: &Path,
) -> Result<PathBuf, String> {
    let manifest = catalog.load(id)?;
    let root = directory.join(format!("savepoint-{id}"));
    let target = CheckpointCatalog::new(FileStore::new(&root));
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
