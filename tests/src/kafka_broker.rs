//! A real Kafka-API broker for tests: `tansu` 0.4.9, started on 127.0.0.1
//! with its log kept in memory, stopped (killed) when dropped.
//!
//! The binary is found at `$SLUICE_TANSU`, else where `scripts/test`
//! installs it (`/var/cache/sluice-tools/bin/tansu`, or under
//! `~/.cache/sluice-tools` when `/var/cache` is not writable).
//!
//! tansu's gaps, as measured (tests that meet them name them): topics are
//! not created on first use (create them through the admin API); a consumer
//! that resumes in the middle of a record batch skips the rest of that batch
//! (producers in tests send one record per batch: `batch.num.messages=1`);
//! `read_committed` consumers also see records of aborted transactions.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// See the module docs.
pub struct KafkaTestBroker {
    binary: PathBuf,
    directory: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn binary() -> Result<PathBuf, String> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("SLUICE_TANSU") {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(PathBuf::from("/var/cache/sluice-tools/bin/tansu"));
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/sluice-tools/bin/tansu"));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        "tansu is not installed: scripts/test installs it (cargo install tansu@0.4.9 --locked --debug --root /var/cache/sluice-tools), or set SLUICE_TANSU".into()
    })
}

impl KafkaTestBroker {
    /// Starts a broker with no topics.
    pub fn start() -> Result<KafkaTestBroker, String> {
        let directory = tempfile::tempdir().map_err(|e| format!("a directory for tansu: {e}"))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let mut broker = KafkaTestBroker {
            binary: binary()?,
            directory,
            port,
            child: None,
        };
        broker.resume()?;
        Ok(broker)
    }

    /// `127.0.0.1:<port>`: the bootstrap servers.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker: clients fail to reach it. Its log is in memory, so
    /// a broker resumed after this starts empty.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker (again) on the same port; waits (up to 10 s) until
    /// it accepts connections.
    pub fn resume(&mut self) -> Result<(), String> {
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.binary)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(self.directory.path())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("tansu did not listen on {address} within 10 s"))
    }
}

impl Drop for KafkaTestBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
