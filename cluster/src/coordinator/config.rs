//! `cluster.toml`: how a coordinator is set up. Strict like job files:
//! unknown fields and impossible values are errors naming the file and the
//! field.
//!
//! ```toml
//! listen = "127.0.0.1:7700"          # for workers (port 0: any, printed)
//! http = "127.0.0.1:7701"            # the HTTP API (port 0: any, printed)
//! storage = "/var/lib/sluice"        # job records; relative to this file
//! secret_file = "cluster.secret"     # relative to this file; default:
//!                                    # SLUICE_SECRET_FILE or SLUICE_SECRET
//! heartbeat_interval_ms = 500
//! heartbeat_timeout_ms = 5000
//!
//! [ha]                               # optional: several coordinators,
//! etcd = ["10.0.0.1:2379"]           # one leading (see `leadership`)
//! name = "coordinator-1"             # default: the listen address
//! prefix = "/sluice/default"         # the cluster's keys in etcd
//! lease_ttl_s = 5                    # a dead leader is replaced after it
//! ```
//!
//! With `[ha]`, job records live in etcd and `storage` is not used for
//! them; every coordinator of the cluster lists the same etcd endpoints and
//! prefix.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sluice_network::auth::ClusterSecret;

use crate::control::load_secret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    http: String,
    storage: PathBuf,
    secret_file: Option<PathBuf>,
    heartbeat_interval_ms: Option<u64>,
    heartbeat_timeout_ms: Option<u64>,
    ha: Option<RawHa>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHa {
    etcd: Vec<String>,
    name: Option<String>,
    prefix: Option<String>,
    lease_ttl_s: Option<u64>,
}

/// `[ha]`: leader election and job records on etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// etcd's client endpoints (`HOST:PORT`).
    pub etcd: Vec<String>,
    /// This coordinator's name in the election.
    pub name: String,
    /// The cluster's keys in etcd start with it.
    pub prefix: String,
    pub lease_ttl: Duration,
}

/// A coordinator's settings.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub listen: SocketAddr,
    pub http: SocketAddr,
    pub storage: PathBuf,
    pub secret: ClusterSecret,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub ha: Option<HaConfig>,
}

impl CoordinatorConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let raw: RawConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |field: &str, message: String| {
            format!("{}: field `{field}`: {message}", path.display())
        };
        let address = |field: &str, text: &str| {
            text.to_socket_addrs()
                .map_err(|e| invalid(field, format!("`{text}` is not HOST:PORT ({e})")))?
                .next()
                .ok_or_else(|| invalid(field, format!("`{text}` resolves to nothing")))
        };
        let interval = raw.heartbeat_interval_ms.unwrap_or(500);
        let timeout = raw.heartbeat_timeout_ms.unwrap_or(5_000);
        if interval == 0 {
            return Err(invalid(
                "heartbeat_interval_ms",
                "is 0, expected at least 1".into(),
            ));
        }
        if timeout < 2 * interval {
            return Err(invalid(
                "heartbeat_timeout_ms",
                format!("is {timeout}, expected at least twice heartbeat_interval_ms ({interval})"),
            ));
        }
        let secret_file = raw.secret_file.map(|f| base.join(f));
        let secret = load_secret(secret_file.as_deref()).map_err(|e| invalid("secret_file", e))?;
        let listen = address("listen", &raw.listen)?;
        let ha = match raw.ha {
            None => None,
            Some(ha) => {
                if ha.etcd.is_empty() {
                    return Err(invalid(
                        "ha.etcd",
                        "is empty, expected at least one HOST:PORT".into(),
                    ));
                }
                let prefix = ha.prefix.unwrap_or_else(|| "/sluice/default".into());
                if !prefix.starts_with('/') || prefix.ends_with('/') {
                    return Err(invalid(
                        "ha.prefix",
                        format!("`{prefix}` must start with `/` and not end with one"),
                    ));
                }
                let ttl = ha.lease_ttl_s.unwrap_or(5);
                if !(1..=60).contains(&ttl) {
                    return Err(invalid(
                        "ha.lease_ttl_s",
                        format!("is {ttl}, expected 1 to 60"),
                    ));
                }
                Some(HaConfig {
                    etcd: ha.etcd,
                    name: ha.name.unwrap_or_else(|| listen.to_string()),
                    prefix,
                    lease_ttl: Duration::from_secs(ttl),
                })
            }
        };
        Ok(CoordinatorConfig {
            listen,
            http: address("http", &raw.http)?,
            storage: base.join(raw.storage),
            secret,
            heartbeat_interval: Duration::from_millis(interval),
            heartbeat_timeout: Duration::from_millis(timeout),
            ha,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<CoordinatorConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "a-cluster-secret-of-some-length\n").unwrap();
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, text).unwrap();
        CoordinatorConfig::load(&path)
    }

    #[test]
    fn a_good_file_and_bad_ones() {
        let c = load("listen = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nstorage = \"st\"\nsecret_file = \"s\"\n").unwrap();
        assert!(c.storage.ends_with("st"));
        assert_eq!(c.heartbeat_timeout, Duration::from_secs(5));
        let e = load("listen = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nstorage = \"st\"\nsecret_file = \"s\"\nport = 3\n").unwrap_err();
        assert!(e.contains("unknown field `port`"), "{e}");
        let e = load(
            "listen = \"nowhere\"\nhttp = \"127.0.0.1:0\"\nstorage = \"st\"\nsecret_file = \"s\"\n",
        )
        .unwrap_err();
        assert!(e.contains("field `listen`"), "{e}");
        let e = load("listen = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nstorage = \"st\"\nsecret_file = \"missing\"\n").unwrap_err();
        assert!(
            e.contains("field `secret_file`") && e.contains("missing"),
            "{e}"
        );
        let e = load("listen = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nstorage = \"st\"\nsecret_file = \"s\"\nheartbeat_interval_ms = 1000\nheartbeat_timeout_ms = 1500\n").unwrap_err();
        assert!(e.contains("heartbeat_timeout_ms"), "{e}");
        let base = "listen = \"127.0.0.1:7000\"\nhttp = \"127.0.0.1:0\"\nstorage = \"st\"\nsecret_file = \"s\"\n";
        let ha = load(&format!("{base}[ha]\netcd = [\"127.0.0.1:2379\"]\n"))
            .unwrap()
            .ha
            .unwrap();
        assert_eq!(ha.name, "127.0.0.1:7000");
        assert_eq!(ha.prefix, "/sluice/default");
        assert_eq!(ha.lease_ttl, Duration::from_secs(5));
        for (bad, field) in [
            ("etcd = []", "ha.etcd"),
            ("etcd = [\"e:1\"]\nprefix = \"sluice/\"", "ha.prefix"),
            ("etcd = [\"e:1\"]\nlease_ttl_s = 0", "ha.lease_ttl_s"),
            ("etcd = [\"e:1\"]\nleader = true", "unknown field `leader`"),
        ] {
            let e = load(&format!("{base}[ha]\n{bad}\n")).unwrap_err();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }
}
