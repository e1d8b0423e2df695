//! The coordinator's HTTP API (JSON), on a thread of its own running a
//! single-threaded tokio runtime with hyper; nothing here is on the record
//! path.
//!
//! Every request must carry `Authorization: Bearer <token>`, the token
//! derived from the cluster secret (`ClusterSecret::http_token`); anything
//! else is answered 401 before its body is read.
//!
//! - `GET /jobs`: every job, briefly;
//! - `POST /jobs` with `{"path": ..., "text": ...}`: submits a job file
//!   (validated here as `sluice run` validates it; 400 with the error if it is
//!   unusable) and answers 201 `{"id": ...}`;
//! - `GET /jobs/<id>`: the job's state, attempt, placement and tasks (per
//!   worker: shards, records in and out);
//! - `POST /jobs/<id>/cancel`;
//! - `POST /jobs/<id>/savepoint[?stop=true]` with an optional body
//!   `{"dir": ..., "timeout_s": ...}`: takes a savepoint of the running job
//!   through its checkpoint storage, as `sluice savepoint job.toml` does in
//!   process (the attempt's checkpoint leader, in this process, answers),
//!   and answers `{"location": ...}` once it is written;
//! - `GET /workers`;
//! - `GET /metrics`: the coordinator's figures in the Prometheus text format
//!   ([`CoordinatorFigures`]), without a token, so that Prometheus can
//!   scrape it (they carry no secret);
//! - `GET /` and `/ui/…`: the web dashboard and the figures it reads
//!   ([`crate::dashboard`]), without a token; its buttons call the
//!   endpoints above with one.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_engine::checkpoint::savepoint;
use sluice_state::checkpoint_store::StorageLocation;

use super::state::NewJob;
use super::Shared;
use crate::control::message::MESSAGE_MAX_BYTES;
use crate::dashboard::view::{JobView, Overview};
use crate::dashboard::{self, BoardSource};
use crate::job_file::JobFile;
use crate::metrics::{metrics_answer, CoordinatorFigures};

/// A submission as the CLI sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The job file's path where it was submitted (relative paths in it
    /// are relative to its directory).
    pub path: String,
    pub text: String,
    /// What the first attempt restores (`sluice submit --restore`): a
    /// checkpoint or savepoint location as `sluice run --restore` reads it.
    #[serde(default)]
    pub restore: Option<String>,
}

/// Starts the API on `listener` on a thread of its own.
pub(super) fn start(listener: std::net::TcpListener, shared: Arc<Shared>) -> Result<(), String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(CoordinatorFigures {
        shared: shared.clone(),
    }));
    let metrics = Arc::new(registry);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("the HTTP API's runtime: {e}"))?;
    std::thread::Builder::new()
        .name("sluice-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!("the HTTP API cannot listen: {e}");
                        return;
                    }
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (shared, metrics) = (shared.clone(), metrics.clone());
                    tokio::task::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let (shared, metrics) = (shared.clone(), metrics.clone());
                            async move {
                                if request.uri().path() == "/metrics" {
                                    return Ok::<_, Infallible>(metrics_answer(&request, &metrics));
                                }
                                let board = CoordinatorBoard(&shared);
                                let path = request.uri().path();
                                if let Some(answer) =
                                    dashboard::answer(request.method(), path, &board)
                                {
                                    return Ok(answer);
                                }
                                Ok::<_, Infallible>(handle(request, &shared).await)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The dashboard's figures from the coordinator's state.
struct CoordinatorBoard<'a>(&'a Shared);

impl BoardSource for CoordinatorBoard<'_> {
    fn overview(&self) -> Overview {
        let cluster = self.0.cluster.lock().expect("cluster lock");
        self.0.board.overview(&cluster)
    }

    fn job(&self, id: &str) -> Option<JobView> {
        let cluster = self.0.cluster.lock().expect("cluster lock");
        self.0.board.job(&cluster, id, dashboard::view::now_ms())
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/json".parse().expect("a valid header"),
    );
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    reply(status, json!({ "error": message.into() }))
}

async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let authorized = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| shared.config.secret.accepts_http_token(token.trim()));
    if !authorized {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "a bearer token derived from the cluster secret is required",
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, "Bearer".parse().expect("a valid header"));
        return response;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["jobs"]) => list_jobs(shared),
        (Method::POST, ["jobs"]) => {
            let body = Limited::new(request.into_body(), MESSAGE_MAX_BYTES as usize);
            match body.collect().await {
                Ok(collected) => submit(shared, &collected.to_bytes()).await,
                Err(e) => error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
            }
        }
        (Method::GET, ["jobs", id]) => job_status(shared, id),
        (Method::POST, ["jobs", id, "cancel"]) => {
            match shared.act(|cluster| match cluster.cancel(id) {
                Ok(out) => (Ok(()), out),
                Err(e) => (Err(e), Vec::new()),
            }) {
                Ok(()) => match persisted(shared, id).await {
                    Ok(()) => reply(StatusCode::OK, json!({ "id": id, "state": "cancelled" })),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
                },
                Err(e) if e.starts_with("no job") => error(StatusCode::NOT_FOUND, e),
                Err(e) => error(StatusCode::CONFLICT, e),
            }
        }
        (Method::POST, ["jobs", id, "savepoint"]) => {
            let body = Limited::new(request.into_body(), MESSAGE_MAX_BYTES as usize);
            match body.collect().await {
                Ok(collected) => savepoint(shared, id, &query, &collected.to_bytes()).await,
                Err(e) => error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
            }
        }
        (Method::GET, ["workers"]) => {
            let cluster = shared.cluster.lock().expect("cluster lock");
            let workers: Vec<&super::state::Worker> = cluster.workers.values().collect();
            reply(StatusCode::OK, json!({ "workers": workers }))
        }
        (_, ["jobs"] | ["jobs", _] | ["jobs", _, _] | ["workers"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        }
        _ => error(StatusCode::NOT_FOUND, format!("no such resource: {path}")),
    }
}

fn list_jobs(shared: &Shared) -> Response<Full<Bytes>> {
    let cluster = shared.cluster.lock().expect("cluster lock");
    let jobs: Vec<Value> = (cluster.jobs.values())
        .map(|j| {
            json!({
                "id": j.id,
                "name": j.name,
                "state": j.state,
                "attempt": j.attempt,
                "shards": j.placement.len(),
                "error": j.error,
            })
        })
        .collect();
    reply(StatusCode::OK, json!({ "jobs": jobs }))
}

fn job_status(shared: &Shared, id: &str) -> Response<Full<Bytes>> {
    let cluster = shared.cluster.lock().expect("cluster lock");
    match cluster.jobs.get(id) {
        Some(job) => reply(StatusCode::OK, json!(job)),
        None => error(StatusCode::NOT_FOUND, format!("no job `{id}`")),
    }
}

/// A savepoint request's optional body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavepointOptions {
    /// Where the savepoint goes (default `<checkpoint storage>/savepoints`):
    /// a path on the coordinator's machine or an `s3://` URL.
    pub dir: Option<String>,
    /// How long to wait for the savepoint (default 120 s, at most 3600 s).
    pub timeout_s: Option<u64>,
}

/// Asks the running job `id` for a savepoint and waits for it, off the
/// API's thread (the wait polls storage).
async fn savepoint(shared: &Shared, id: &str, query: &str, body: &[u8]) -> Response<Full<Bytes>> {
    let stop = query.split('&').any(|p| p == "stop=true");
    let options: SavepointOptions = if body.iter().all(u8::is_ascii_whitespace) {
        SavepointOptions::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(options) => options,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("a malformed savepoint request: {e}"),
                )
            }
        }
    };
    let storage = {
        let cluster = shared.cluster.lock().expect("cluster lock");
        let Some(job) = cluster.jobs.get(id) else {
            return error(StatusCode::NOT_FOUND, format!("no job `{id}`"));
        };
        if job.state.is_terminal() {
            return error(
                StatusCode::CONFLICT,
                format!("job `{id}` has ended ({:?})", job.state),
            );
        }
        let Some(checkpoints) = &job.checkpoints else {
            return error(
                StatusCode::CONFLICT,
                format!("job `{id}` does not checkpoint: savepoints are taken through its [checkpoint] storage"),
            );
        };
        checkpoints.storage.clone()
    };
    let target = match options.dir.as_deref() {
        None => storage.join("savepoints"),
        Some(text) => match StorageLocation::resolve(text, &storage) {
            Ok(location) => location,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("dir: {e}")),
        },
    };
    let timeout = Duration::from_secs(options.timeout_s.unwrap_or(120).clamp(1, 3600));
    let asked = tokio::task::spawn_blocking(move || {
        savepoint::request_savepoint(&storage, &target, stop, timeout)
    })
    .await;
    match asked {
        Ok(Ok(location)) => {
            tracing::info!("job {id}: savepoint {location}");
            reply(StatusCode::OK, json!({ "id": id, "location": location }))
        }
        Ok(Err(e)) => error(StatusCode::CONFLICT, e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the savepoint request failed: {e}"),
        ),
    }
}

/// Validates a submitted job file as `sluice run` would, then queues it.
async fn submit(shared: &Shared, body: &[u8]) -> Response<Full<Bytes>> {
    let submission: Submission = match serde_json::from_slice(body) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("a malformed submission: {e}"),
            )
        }
    };
    let path = Path::new(&submission.path);
    let file = match JobFile::parse(path, &submission.text)
        .and_then(|mut file| match &submission.restore {
            Some(given) => crate::run::apply_restore(&mut file, given).map(|()| file),
            None => Ok(file),
        })
        .and_then(|file| crate::run::build_job(&file).map(|_| file))
    {
        Ok(file) => file,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let new = NewJob {
        name: file.job.clone(),
        path: submission.path,
        text: submission.text,
        requested_shards: file.cluster.shards,
        max_parallelism: file.config.max_parallelism,
        checkpoints: file.config.checkpoint.clone(),
        restart: file.config.restart,
        restore_from: submission.restore,
    };
    let id = shared.act(|cluster| (cluster.submit(new), Vec::new()));
    if let Err(e) = persisted(shared, &id).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e);
    }
    tracing::info!("job {id} ({}) submitted", file.job);
    reply(StatusCode::CREATED, json!({ "id": id }))
}

/// Writes job `id`'s record durably before the API acknowledges a change
/// to it (off the coordinator's lock and the API's thread: with etcd this
/// may wait).
async fn persisted(shared: &Shared, id: &str) -> Result<(), String> {
    if !shared.records.writes_later() {
        return Ok(());
    }
    let job = (shared.cluster.lock().expect("cluster lock").jobs.get(id)).cloned();
    let Some(job) = job else { return Ok(()) };
    let records = shared.records.clone();
    tokio::task::spawn_blocking(move || records.write_durably(&job))
        .await
        .map_err(|e| format!("writing the job record failed: {e}"))?
}
