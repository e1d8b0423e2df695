//! A real S3-compatible server for tests: `s3s-fs`, started on 127.0.0.1 with
//! a temporary directory, stopped (killed) when dropped.
//!
//! Test support, not part of any production crate: the end-to-end tests use
//! it as `sluice_tests::s3_server`, and the state crate's own S3 tests
//! compile this same file into their test build (`#[path]`), which is why it
//! names `S3Settings` through `super`.
//!
//! The binary is found at `$SLUICE_S3S_FS`, else where `scripts/test`
//! installs it (`/var/cache/sluice-tools/bin/s3s-fs`, or under
//! `~/.cache/sluice-tools` when `/var/cache` is not writable). A bucket is a
//! directory under the server's root.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::S3Settings;

pub const ACCESS_KEY: &str = "sluice-test-access";
pub const SECRET_KEY: &str = "sluice-test-secret-0123456789";

/// See the module docs.
pub struct S3TestServer {
    binary: PathBuf,
    root: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn binary() -> Result<PathBuf, String> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("SLUICE_S3S_FS") {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(PathBuf::from("/var/cache/sluice-tools/bin/s3s-fs"));
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/sluice-tools/bin/s3s-fs"));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        "s3s-fs is not installed: scripts/test installs it (cargo install s3s-fs@0.14.1 --features binary --locked --root /var/cache/sluice-tools), or set SLUICE_S3S_FS".into()
    })
}

impl S3TestServer {
    /// Starts a server with an empty root directory.
    pub fn start() -> Result<S3TestServer, String> {
        let root = tempfile::tempdir().map_err(|e| format!("a root for s3s-fs: {e}"))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let mut server = S3TestServer {
            binary: binary()?,
            root,
            port,
            child: None,
        };
        server.resume()?;
        Ok(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates bucket `name`.
    pub fn create_bucket(&self, name: &str) -> Result<(), String> {
        std::fs::create_dir_all(self.root.path().join(name))
            .map_err(|e| format!("creating bucket {name}: {e}"))
    }

    /// Settings that reach `s3://<bucket>/<prefix>` on this server.
    pub fn settings(&self, bucket: &str, prefix: &str) -> S3Settings {
        S3Settings {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".to_owned()),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(SECRET_KEY.to_owned()),
            path_style: true,
        }
    }

    /// The `[checkpoint]` lines of a job file that checkpoints into
    /// `s3://<bucket>/<prefix>` on this server.
    pub fn job_file_lines(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "storage = \"s3://{bucket}/{prefix}\"\n[checkpoint.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n",
            self.endpoint()
        )
    }

    /// Kills the server (requests fail until [`resume`](Self::resume)).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and root; waits (up to 10 s)
    /// until it accepts connections.
    pub fn resume(&mut self) -> Result<(), String> {
        self.stop();
        let child = Command::new(&self.binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err(format!("s3s-fs did not listen on {address} within 10 s"))
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
