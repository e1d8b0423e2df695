//! The `/metrics` endpoint: an HTTP/1.1 server on a thread of its own (a
//! single-threaded tokio runtime with hyper), answering `GET /metrics` with
//! the registry encoded at that moment, and the dashboard's paths when it
//! is given one (`sluice run --ui`). Nothing here is on the record path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;

use crate::dashboard::BoardSource;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running endpoint.
#[derive(Debug, Clone, Copy)]
pub struct MetricsEndpoint {
    /// Where it listens (the port chosen, when asked for port 0).
    pub address: SocketAddr,
}

/// Serves `registry` at `http://<address>/metrics` until the process ends.
pub fn serve(address: SocketAddr, registry: Registry) -> Result<MetricsEndpoint, String> {
    serve_with_board(address, registry, None)
}

/// As [`serve`], with `board`'s dashboard at `/ui/` too.
pub fn serve_with_board(
    address: SocketAddr,
    registry: Registry,
    board: Option<Arc<dyn BoardSource>>,
) -> Result<MetricsEndpoint, String> {
    let listener = std::net::TcpListener::bind(address)
        .map_err(|e| format!("the metrics endpoint cannot listen on {address}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("the metrics endpoint's runtime: {e}"))?;
    let registry = Arc::new(registry);
    std::thread::Builder::new()
        .name("sluice-metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!("the metrics endpoint cannot listen: {e}");
                        return;
                    }
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (registry, board) = (registry.clone(), board.clone());
                    tokio::task::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let (registry, board) = (registry.clone(), board.clone());
                            async move {
                                let path = request.uri().path();
                                let ui = board.as_deref().and_then(|board| {
                                    crate::dashboard::answer(request.method(), path, board)
                                });
                                Ok::<_, Infallible>(
                                    ui.unwrap_or_else(|| metrics_answer(&request, &registry)),
                                )
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
    Ok(MetricsEndpoint { address })
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    (response.headers_mut()).insert(CONTENT_TYPE, content_type.parse().expect("a valid header"));
    response
}

/// The answer to `request` for `/metrics` (the coordinator's HTTP API uses
/// it too).
pub fn metrics_answer(request: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let plain = "text/plain; charset=utf-8";
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => text(StatusCode::OK, OPENMETRICS, body),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    plain,
                    format!("encoding the metrics failed: {e}\n"),
                ),
            }
        }
        (_, "/metrics") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            plain,
            "only GET /metrics\n".into(),
        ),
        (_, path) => text(
            StatusCode::NOT_FOUND,
            plain,
            format!("no such resource: {path} (metrics are at /metrics)\n"),
        ),
    }
}
