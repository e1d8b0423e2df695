//! The command line's client of the coordinator's HTTP API: `sluice
//! submit`, `jobs --coordinator`, `status`, `cancel`, `savepoint ID`.
//!
//! One request per command, over HTTP/1.1 with hyper on a single-threaded
//! tokio runtime made for it, bounded by a timeout. The bearer token is
//! derived from the cluster secret; neither appears in any message.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sluice_network::auth::ClusterSecret;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A coordinator's API.
pub struct Client {
    /// `host:port`.
    authority: String,
    token: String,
}

/// A failed request: the coordinator's answer, or why there was none.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the coordinator answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the coordinator at {authority}: {reason}")]
    Unreachable { authority: String, reason: String },
}

impl Client {
    /// A client of the coordinator at `url` (`http://host:port` or
    /// `host:port`).
    pub fn new(url: &str, secret: &ClusterSecret) -> Result<Self, String> {
        let authority = url
            .strip_prefix("http://")
            .unwrap_or(url)
            .trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
            return Err(format!(
                "`{url}` is not a coordinator URL like http://127.0.0.1:7701"
            ));
        }
        Ok(Client {
            authority: authority.to_owned(),
            token: secret.http_token(),
        })
    }

    /// Sends one request; the answer's JSON if it succeeded.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        self.request_within(method, path, body, REQUEST_TIMEOUT)
    }

    /// As [`request`](Self::request), waiting up to `timeout` for the answer
    /// (a savepoint takes as long as its checkpoint).
    pub fn request_within(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable {
            authority: self.authority.clone(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        let (status, bytes) = runtime
            .block_on(async {
                tokio::time::timeout(timeout, self.exchange(method, path, body)).await
            })
            .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
            .map_err(unreachable)?;
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            let message = value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            Err(ClientError::Refused { status, message })
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Bytes), String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn(connection);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.authority)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, bytes))
    }
}
