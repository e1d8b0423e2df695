//! Where the brokers are and how to talk to them: the settings every Kafka
//! client of a job shares, and the errors that name the brokers.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;

/// Settings Sluice sets itself; `properties` may not name them.
pub const RESERVED_PROPERTIES: [&str; 6] = [
    "bootstrap.servers",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "transactional.id",
    "enable.idempotence",
];

/// The brokers, the librdkafka properties passed through, and the bound on
/// every request whose answer Sluice waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConnection {
    pub bootstrap_servers: String,
    /// librdkafka configuration properties (`security.protocol`, `sasl.*`,
    /// `fetch.max.bytes`, …), set after Sluice's own.
    pub properties: BTreeMap<String, String>,
    /// How long a request waits for the brokers (metadata, offsets, a
    /// flush, a transaction's commit) before it fails.
    pub request_timeout: Duration,
}

/// A Kafka request failed: names the brokers, what was asked and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("kafka at {servers}: {what}: {reason}")]
pub struct KafkaError {
    pub servers: String,
    pub what: String,
    pub reason: String,
}

impl KafkaConnection {
    pub fn new(bootstrap_servers: &str) -> Self {
        KafkaConnection {
            bootstrap_servers: bootstrap_servers.to_owned(),
            properties: BTreeMap::new(),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// A client configuration: the brokers, `own` settings, then the
    /// job's properties.
    pub fn client_config(&self, own: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        // A broker that is down is retried, not waited for forever: requests
        // fail after the timeout (librdkafka's defaults reach minutes).
        let timeout_ms = self.request_timeout.as_millis().to_string();
        config.set("socket.timeout.ms", &timeout_ms);
        config.set("socket.connection.setup.timeout.ms", &timeout_ms);
        for (key, value) in own {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// An error of this connection.
    pub fn error(&self, what: impl Into<String>, reason: impl std::fmt::Display) -> KafkaError {
        KafkaError {
            servers: self.bootstrap_servers.clone(),
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// A property the job sets that Sluice owns, if any.
    pub fn reserved_property(&self) -> Option<&str> {
        self.properties
            .keys()
            .map(String::as_str)
            .find(|key| RESERVED_PROPERTIES.contains(key))
    }
}
