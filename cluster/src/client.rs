//! The command line's client of the coordinator's HTTP API: `sluice
//! submit`, `jobs --coordinator`, `status`, `cancel`, `savepoint ID`.
//!
//! One request per command, over HTTP/1.1 with hyper on a single-threaded
//! tokio runtime made for it, bounded by a timeout. The bearer token is
//! derived from the cluster secret; neither appears in any message.
//!
//! With coordinators on etcd only the leader listens, so a client may be
//! given all of them: it connects to each in turn and sends the request to
//! the first that accepts. Only a refused or timed-out connection moves on
//! to the next; a request once sent is never sent again elsewhere (a
//! submission must not be made twice).

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
/// How long connecting to one coordinator may take before the next is
/// tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A coordinator's API.
pub struct Client {
    /// `host:port` of each coordinator, in the order they are tried.
    authorities: Vec<String>,
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
    /// A client of the coordinator at `urls` (`http://host:port` or
    /// `host:port`), or of the first of several, comma-separated, that
    /// accepts a connection.
    pub fn new(urls: &str, secret: &ClusterSecret) -> Result<Self, String> {
        let authorities = urls
            .split(',')
            .map(|url| {
                let url = url.trim();
                let authority = url
                    .strip_prefix("http://")
                    .unwrap_or(url)
                    .trim_end_matches('/');
                if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
                    return Err(format!(
                        "`{url}` is not a coordinator URL like http://127.0.0.1:7701"
                    ));
                }
                Ok(authority.to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Client {
            authorities,
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
            authority: self.authorities.join(","),
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
        let (authority, stream) = self.connect().await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn(connection);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, authority)
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

    /// A connection to the first coordinator that accepts one, and its
    /// authority; else why each refused.
    async fn connect(&self) -> Result<(&str, tokio::net::TcpStream), String> {
        let mut refused = Vec::new();
        for authority in &self.authorities {
            let connecting = tokio::net::TcpStream::connect(authority.as_str());
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(Ok(stream)) => return Ok((authority, stream)),
                Ok(Err(e)) => refused.push((authority, e.to_string())),
                Err(_) => refused.push((
                    authority,
                    format!("no connection within {CONNECT_TIMEOUT:?}"),
                )),
            }
        }
        Err(match refused.as_slice() {
            [(_, reason)] => reason.clone(),
            _ => {
                let each: Vec<String> = refused.iter().map(|(a, r)| format!("{a}: {r}")).collect();
                format!("none accepted a connection ({})", each.join("; "))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    fn secret() -> ClusterSecret {
        ClusterSecret::new("a-cluster-secret-for-tests-only").unwrap()
    }

    /// An address nothing listens on.
    fn closed_address() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    }

    /// Answers one request with `{"ok":true}`; gives back the request's head.
    fn answer_once(listener: TcpListener) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                stream.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let body = br#"{"ok":true}"#;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(body).unwrap();
            String::from_utf8(head).unwrap()
        })
    }

    #[test]
    fn the_request_goes_to_the_first_coordinator_that_accepts() {
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let live_address = live.local_addr().unwrap().to_string();
        let server = answer_once(live);
        let urls = format!("http://{}, http://{live_address}/", closed_address());
        let client = Client::new(&urls, &secret()).unwrap();
        let answer = client.request(Method::GET, "/jobs", None).unwrap();
        assert_eq!(answer["ok"], true);
        let head = server.join().unwrap().to_ascii_lowercase();
        assert!(head.starts_with("get /jobs "), "{head}");
        assert!(
            head.contains(&format!("host: {live_address}\r\n")),
            "{head}"
        );
        assert!(head.contains("authorization: bearer "), "{head}");
    }

    #[test]
    fn when_none_accepts_the_error_names_each() {
        let (first, second) = (closed_address(), closed_address());
        let client = Client::new(&format!("{first},{second}"), &secret()).unwrap();
        let error = client
            .request(Method::GET, "/jobs", None)
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("{first}: ")), "{error}");
        assert!(error.contains(&format!("{second}: ")), "{error}");
        let client = Client::new(&first, &secret()).unwrap();
        let error = client
            .request(Method::GET, "/jobs", None)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!("the coordinator at {first}: "))
                && error.matches(&first).count() == 1,
            "{error}"
        );
    }

    #[test]
    fn a_malformed_url_in_the_list_is_named() {
        let error = Client::new("http://127.0.0.1:7701,http://bad/x", &secret())
            .err()
            .unwrap();
        assert!(error.contains("`http://bad/x`"), "{error}");
    }
}
