//! The web dashboard: one page (HTML, script and style built into the
//! binary, nothing from a CDN) served by the coordinator and by `sluice run
//! --ui`, and the JSON it reads.
//!
//! - `GET /` redirects to `/ui/`; `GET /ui/` is the page, `/ui/app.js` and
//!   `/ui/style.css` its parts ([`assets`]);
//! - `GET /ui/api/overview`: jobs and workers ([`view::Overview`]);
//! - `GET /ui/api/jobs/<id>`: a job's graph with each operator's
//!   throughput and backpressure, its shards' watermarks, its checkpoint
//!   history and live series ([`view::JobView`]).
//!
//! These answer without a token: figures and names only, like `/metrics`.
//! The page's savepoint and cancel buttons call the coordinator's API,
//! which wants the bearer token: the page derives it from the secret the
//! user types (HMAC-SHA-256, as `ClusterSecret::http_token`), in the
//! browser; the secret itself is never sent.
//!
//! Served on the HTTP thread of its process; nothing here is on the record
//! path.

pub mod assets;
pub mod local;
pub mod operators;
pub mod series;
pub mod view;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use hyper::{Method, Response, StatusCode};

use view::{JobView, Overview};

/// Where a dashboard's figures come from.
pub trait BoardSource: Send + Sync {
    fn overview(&self) -> Overview;
    fn job(&self, id: &str) -> Option<JobView>;
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type.parse().expect("a valid header"));
    headers.insert(CACHE_CONTROL, "no-store".parse().expect("a valid header"));
    response
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_else(|e| {
        format!("{{\"error\":\"encoding the answer failed: {e}\"}}").into_bytes()
    });
    respond(status, "application/json", Bytes::from(body))
}

/// The dashboard's answer for `path`, or `None` when the path is not the
/// dashboard's.
pub fn answer(
    method: &Method,
    path: &str,
    source: &dyn BoardSource,
) -> Option<Response<Full<Bytes>>> {
    if path != "/" && path != "/ui" && !path.starts_with("/ui/") {
        return None;
    }
    if method != Method::GET && method != Method::HEAD {
        return Some(json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({ "error": "the dashboard is read with GET" }),
        ));
    }
    if path == "/" || path == "/ui" {
        let mut response = respond(
            StatusCode::FOUND,
            "text/plain",
            Bytes::from_static(b"/ui/\n"),
        );
        (response.headers_mut()).insert(LOCATION, "/ui/".parse().expect("a valid header"));
        return Some(response);
    }
    let rest = &path["/ui/".len()..];
    Some(match rest.split('/').collect::<Vec<_>>().as_slice() {
        ["api", "overview"] => json(StatusCode::OK, &source.overview()),
        ["api", "jobs", id] => match source.job(id) {
            Some(job) => json(StatusCode::OK, &job),
            None => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": format!("no job `{id}`") }),
            ),
        },
        _ => match assets::asset(rest) {
            Some((content_type, body)) => {
                respond(StatusCode::OK, content_type, Bytes::from_static(body))
            }
            None => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": format!("no such resource: {path}") }),
            ),
        },
    })
}
