//! A real etcd for tests (Debian's `etcd-server`, 3.4): one member on
//! 127.0.0.1 with its data in a temporary directory, killed when dropped.
//! It can be frozen (SIGSTOP) and woken to play an etcd that is away.
//!
//! The binary is `$SLUICE_ETCD`, else `/usr/bin/etcd` (`scripts/test`
//! installs the package).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// See the module docs.
pub struct EtcdTestServer {
    child: Child,
    client_port: u16,
    _data: tempfile::TempDir,
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("a free port: {e}"))
}

impl EtcdTestServer {
    /// Starts etcd; waits (up to 20 s) until it accepts clients.
    pub fn start() -> Result<EtcdTestServer, String> {
        let binary = std::env::var_os("SLUICE_ETCD")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
        if !binary.is_file() {
            return Err(format!(
                "etcd is not installed at {}: scripts/test installs Debian's etcd-server, or set SLUICE_ETCD",
                binary.display()
            ));
        }
        let data = tempfile::tempdir().map_err(|e| format!("a directory for etcd: {e}"))?;
        let (client_port, peer_port) = (free_port()?, free_port()?);
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(&binary)
            .args(["--name", "test"])
            .arg("--data-dir")
            .arg(data.path())
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("test={peer}")])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let server = EtcdTestServer {
            child,
            client_port,
            _data: data,
        };
        let address: SocketAddr = ([127, 0, 0, 1], client_port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err("etcd did not accept clients within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// `127.0.0.1:<port>`: the client endpoint.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Freezes (`STOP`) or wakes (`CONT`) etcd.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} etcd");
    }
}

impl Drop for EtcdTestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
