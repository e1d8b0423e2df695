//! A worker's data plane: the listener other workers' shards connect to,
//! and the connections a task needs, one per pair of a shard here and a
//! shard elsewhere.
//!
//! Connections are made on plain threads with blocking sockets: the shard
//! with the lower index dials (`dial`), the other side's listener accepts.
//! Each proves the cluster secret before anything else is read; its
//! handshake context names the link: `job/attempt/from/to`. An accepted
//! connection waits in `pending` until the task of that job and attempt
//! takes it (`take`); connections of attempts no task will take are dropped
//! after [`PENDING_TTL`]. The engine then moves each connection to its
//! shard's core.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sluice_network::auth::{client_handshake, server_handshake, ClusterSecret};

/// How long a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an accepted connection waits for its task.
const PENDING_TTL: Duration = Duration::from_secs(120);
/// The largest handshake context a peer may send.
const CONTEXT_MAX: usize = 512;
/// Pause between attempts to dial a peer that is not listening yet.
const DIAL_RETRY: Duration = Duration::from_millis(100);

/// Which link a connection is, as seen from the side that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkKey {
    pub job: String,
    pub attempt: u32,
    /// The shard on this side.
    pub local: u32,
    /// The shard on the other side.
    pub remote: u32,
}

impl LinkKey {
    /// The handshake context of the dialing side (`local` → `remote`).
    fn context(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.job, self.attempt, self.local, self.remote
        )
    }

    /// The key the accepting side files a context under (its `local` is the
    /// dialer's `remote`).
    fn accepted(context: &str) -> Option<LinkKey> {
        let mut parts = context.rsplitn(4, '/');
        let to = parts.next()?.parse().ok()?;
        let from = parts.next()?.parse().ok()?;
        let attempt = parts.next()?.parse().ok()?;
        let job = parts.next()?.to_owned();
        Some(LinkKey {
            job,
            attempt,
            local: to,
            remote: from,
        })
    }
}

/// The listener and the connections waiting for their task.
pub struct DataPlane {
    address: SocketAddr,
    secret: ClusterSecret,
    pending: Mutex<HashMap<LinkKey, (TcpStream, Instant)>>,
    arrived: Condvar,
}

impl DataPlane {
    /// Listens on `bind` (port 0: any) and accepts on a thread of its own.
    pub fn start(bind: SocketAddr, secret: ClusterSecret) -> std::io::Result<Arc<DataPlane>> {
        let listener = TcpListener::bind(bind)?;
        let plane = Arc::new(DataPlane {
            address: listener.local_addr()?,
            secret,
            pending: Mutex::new(HashMap::new()),
            arrived: Condvar::new(),
        });
        let accepting = plane.clone();
        std::thread::Builder::new()
            .name("sluice-data-accept".into())
            .spawn(move || accepting.accept(listener))?;
        Ok(plane)
    }

    /// Where other workers reach it.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    fn accept(self: Arc<Self>, listener: TcpListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let plane = self.clone();
            // A handshake may stall (a peer that sends nothing): each has a
            // thread and a timeout, so none holds up the others.
            let _ = std::thread::Builder::new()
                .name("sluice-data-handshake".into())
                .spawn(move || plane.admit(stream));
        }
    }

    /// Authenticates an accepted connection and files it for its task.
    fn admit(&self, mut stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .map_or("an unknown peer".into(), |a| a.to_string());
        let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
        let context = match server_handshake(&mut stream, &self.secret, CONTEXT_MAX) {
            Ok(context) => context,
            Err(e) => {
                tracing::warn!("data connection from {peer} refused: {e}");
                return;
            }
        };
        let key = std::str::from_utf8(&context)
            .ok()
            .and_then(LinkKey::accepted);
        let Some(key) = key else {
            tracing::warn!("data connection from {peer} refused: it names no link");
            return;
        };
        let _ = stream.set_read_timeout(None);
        let _ = stream.set_write_timeout(None);
        let mut pending = self.pending.lock().expect("pending lock");
        let now = Instant::now();
        pending.retain(|_, (_, since)| now.duration_since(*since) < PENDING_TTL);
        pending.insert(key, (stream, now));
        self.arrived.notify_all();
    }

    /// The connection the peer dialed for `key`, waiting until `deadline`
    /// or until `cancelled` says to stop.
    pub fn take(
        &self,
        key: &LinkKey,
        deadline: Instant,
        cancelled: impl Fn() -> bool,
    ) -> Result<TcpStream, String> {
        let mut pending = self.pending.lock().expect("pending lock");
        loop {
            if let Some((stream, _)) = pending.remove(key) {
                return Ok(stream);
            }
            let now = Instant::now();
            if now >= deadline || cancelled() {
                return Err(format!(
                    "shard {} of another worker did not connect to shard {} in time",
                    key.remote, key.local
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            pending = self
                .arrived
                .wait_timeout(pending, wait)
                .expect("pending lock")
                .0;
        }
    }

    /// Drops the connections of every attempt of `job` before `attempt`.
    pub fn forget_before(&self, job: &str, attempt: u32) {
        let mut pending = self.pending.lock().expect("pending lock");
        pending.retain(|key, _| key.job != job || key.attempt >= attempt);
    }

    /// Dials the shard `key.remote` at `address` for `key`, retrying until
    /// `deadline` while the peer is not listening.
    pub fn dial(
        &self,
        address: &str,
        key: &LinkKey,
        deadline: Instant,
        cancelled: impl Fn() -> bool,
    ) -> Result<TcpStream, String> {
        let fail = |e: String| {
            format!(
                "connecting shard {} to shard {} at {address}: {e}",
                key.local, key.remote
            )
        };
        let target = address
            .to_socket_addrs()
            .map_err(|e| fail(e.to_string()))?
            .next()
            .ok_or_else(|| fail("the address resolves to nothing".into()))?;
        let mut stream = loop {
            match TcpStream::connect_timeout(&target, HANDSHAKE_TIMEOUT) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline || cancelled() => {
                    return Err(fail(e.to_string()))
                }
                Err(_) => std::thread::sleep(DIAL_RETRY),
            }
        };
        stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
            .map_err(|e| fail(e.to_string()))?;
        client_handshake(&mut stream, &self.secret, key.context().as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        stream
            .set_read_timeout(None)
            .and_then(|()| stream.set_write_timeout(None))
            .map_err(|e| fail(e.to_string()))?;
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn secret(text: &str) -> ClusterSecret {
        ClusterSecret::new(text).unwrap()
    }

    /// A data plane on any port of 127.0.0.1 that knows `text` as the secret.
    fn plane(text: &str) -> Arc<DataPlane> {
        DataPlane::start("127.0.0.1:0".parse().unwrap(), secret(text)).unwrap()
    }

    fn key(local: u32, remote: u32) -> LinkKey {
        LinkKey {
            job: "job/with/slashes".into(),
            attempt: 3,
            local,
            remote,
        }
    }

    #[test]
    fn a_dialed_link_is_taken_by_its_task_on_the_other_side() {
        let a = plane("s3cret-s3cret-s3cret");
        let b = plane("s3cret-s3cret-s3cret");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut dialed = a
            .dial(&b.address().to_string(), &key(0, 1), deadline, || false)
            .unwrap();
        let mut accepted = b.take(&key(1, 0), deadline, || false).unwrap();
        dialed.write_all(b"ping").unwrap();
        let mut bytes = [0; 4];
        accepted.read_exact(&mut bytes).unwrap();
        assert_eq!(&bytes, b"ping");
    }

    #[test]
    fn a_wrong_secret_files_nothing() {
        let a = plane("s3cret-s3cret-s3cret");
        let b = plane("another-secret-entirely");
        let deadline = Instant::now() + Duration::from_secs(5);
        let error = a
            .dial(&b.address().to_string(), &key(0, 1), deadline, || false)
            .unwrap_err();
        assert!(
            error.contains("does not know the cluster secret"),
            "{error}"
        );
        let error = b
            .take(
                &key(1, 0),
                Instant::now() + Duration::from_millis(300),
                || false,
            )
            .unwrap_err();
        assert!(error.contains("did not connect"), "{error}");
    }

    #[test]
    fn contexts_round_trip_and_garbage_names_no_link() {
        let k = key(4, 9);
        let accepted = LinkKey::accepted(&k.context()).unwrap();
        assert_eq!((accepted.local, accepted.remote), (9, 4));
        assert_eq!(
            (accepted.job.as_str(), accepted.attempt),
            ("job/with/slashes", 3)
        );
        for bad in ["", "a/b/c", "job/x/1/2", "job/1/2/-3"] {
            assert!(LinkKey::accepted(bad).is_none(), "{bad}");
        }
    }
}
