//! Coordinator high availability on etcd: several coordinators campaign in
//! one election (`<prefix>/leader`) under leases of `lease_ttl`; the one
//! elected leads — it listens for workers and the API, and keeps the job
//! records and each job's checkpoint pointer under `<prefix>/jobs/` and
//! `<prefix>/checkpoints/` — while the others wait in the campaign.
//!
//! Threads: a small tokio runtime driven by whichever thread calls into it;
//! a lease thread that renews the lease every quarter of its TTL; a
//! watchdog thread. No shard core is involved.
//!
//! Invariants: a leader that has not renewed its lease for
//! [`Leadership::step_down_after`] (less than the TTL, counted from when
//! the last successful renewal was *sent*, which etcd received later) ends
//! its process before etcd can expire the lease and elect another; every
//! write is a transaction that applies only while this coordinator's
//! election key exists, so a leader that lost the election writes nothing.
//! A write that finds it lost ends the process too. Workers follow: their
//! connection breaks, they cancel their tasks and register with whichever
//! coordinator listens next.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp};

use super::config::HaConfig;

/// How long one request to etcd may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a failed connection or campaign is tried again.
const RETRY: Duration = Duration::from_millis(500);

/// This coordinator's place in the election: see the module docs.
pub struct Leadership {
    /// One runtime for every call: the lease thread drives it all the time
    /// (the client's connection tasks run there); other threads join in
    /// with `block_on`.
    runtime: Arc<tokio::runtime::Runtime>,
    client: Client,
    prefix: String,
    /// Our key in the election: it exists while we lead.
    leader_key: Vec<u8>,
    lease_ttl: Duration,
    /// When the last renewal that etcd answered was sent.
    renewed: Arc<Mutex<Instant>>,
}

/// The status with which a coordinator that lost its leadership exits.
pub const LOST_LEADERSHIP: i32 = 3;

impl Leadership {
    /// Connects to etcd and campaigns; returns once this coordinator leads
    /// (a standby waits here as long as another leads).
    pub fn campaign(config: &HaConfig) -> Result<Leadership, String> {
        let runtime = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("the etcd client's runtime: {e}"))?,
        );
        let options = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT);
        let mut logged = None::<Instant>;
        loop {
            let attempt = runtime.block_on(Self::try_campaign(config, options.clone()));
            match attempt {
                Ok((client, lease, leader_key, renewed)) => {
                    let leadership = Leadership {
                        runtime,
                        client,
                        prefix: config.prefix.clone(),
                        leader_key,
                        lease_ttl: config.lease_ttl,
                        renewed,
                    };
                    leadership.keep_renewing(lease)?;
                    return Ok(leadership);
                }
                Err(e) => {
                    if logged.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                        tracing::warn!("etcd at {:?}: {e}; trying again", config.etcd);
                        logged = Some(Instant::now());
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
    }

    /// One campaign: a lease, renewed while the campaign waits, then the
    /// election.
    async fn try_campaign(
        config: &HaConfig,
        options: ConnectOptions,
    ) -> Result<(Client, i64, Vec<u8>, Arc<Mutex<Instant>>), String> {
        let mut client = Client::connect(&config.etcd, Some(options))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let ttl = config.lease_ttl.as_secs().max(1) as i64;
        let lease = (client.lease_grant(ttl, None).await)
            .map_err(|e| format!("cannot take a lease: {e}"))?
            .id();
        // The lease is renewed while the campaign waits for the leader to go.
        let renewed = Arc::new(Mutex::new(Instant::now()));
        let waiting = tokio::spawn(renew(
            client.clone(),
            lease,
            config.lease_ttl,
            renewed.clone(),
        ));
        let election = format!("{}/leader", config.prefix);
        let answer = client
            .election_client()
            .campaign(election, config.name.clone(), lease)
            .await;
        waiting.abort();
        let answer = answer.map_err(|e| format!("the campaign failed: {e}"))?;
        let key = (answer.leader())
            .map(|l| l.key().to_vec())
            .ok_or("the campaign answered without a leader key")?;
        let since = *renewed.lock().unwrap_or_else(|p| p.into_inner());
        if since.elapsed() >= step_down_after(config.lease_ttl) {
            return Err("the lease was not renewed while campaigning".into());
        }
        Ok((client, lease, key, renewed))
    }

    /// Renews the lease on a thread of its own, and ends the process once
    /// it may have expired.
    fn keep_renewing(&self, lease: i64) -> Result<(), String> {
        let (client, ttl, renewed) = (self.client.clone(), self.lease_ttl, self.renewed.clone());
        let runtime = self.runtime.clone();
        std::thread::Builder::new()
            .name("sluice-etcd-lease".into())
            .spawn(move || runtime.block_on(renew(client, lease, ttl, renewed)))
            .map_err(|e| e.to_string())?;
        let renewed = self.renewed.clone();
        let limit = step_down_after(ttl);
        std::thread::Builder::new()
            .name("sluice-etcd-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(50));
                let since = *renewed.lock().unwrap_or_else(|p| p.into_inner());
                if since.elapsed() > limit {
                    tracing::error!(
                        "the etcd lease was not renewed for {limit:?}: another coordinator may \
                         lead soon; stepping down"
                    );
                    std::process::exit(LOST_LEADERSHIP);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// How long a leader goes on without a renewal before it steps down.
    pub fn step_down_after(&self) -> Duration {
        step_down_after(self.lease_ttl)
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}/{kind}/{id}", self.prefix)
    }

    /// Every value under `<prefix>/<kind>/`, by id.
    pub fn read_all(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        let start = self.key(kind, "");
        let mut client = self.client.clone();
        let answer = self
            .runtime
            .block_on(client.get(start.clone(), Some(GetOptions::new().with_prefix())))
            .map_err(|e| format!("reading {start}: {e}"))?;
        Ok((answer.kvs().iter())
            .map(|kv| {
                let id = String::from_utf8_lossy(&kv.key()[start.len()..]).into_owned();
                (id, kv.value().to_vec())
            })
            .collect())
    }

    /// Writes `<prefix>/<kind>/<id>` if this coordinator still leads.
    /// `Ok(false)`: it does not (the write was not applied).
    pub fn put_if_leading(&self, kind: &str, id: &str, value: Vec<u8>) -> Result<bool, String> {
        let key = self.key(kind, id);
        let txn = Txn::new()
            .when([Compare::version(
                self.leader_key.clone(),
                CompareOp::Greater,
                0,
            )])
            .and_then([TxnOp::put(key.clone(), value, None)]);
        let mut client = self.client.clone();
        let answer = self
            .runtime
            .block_on(client.txn(txn))
            .map_err(|e| format!("writing {key}: {e}"))?;
        Ok(answer.succeeded())
    }

    /// Writes until etcd takes it; ends the process if this coordinator no
    /// longer leads (the watchdog ends it once the lease may have expired,
    /// which bounds the retries).
    pub fn put_durably(&self, kind: &str, id: &str, value: Vec<u8>) {
        let mut warned = None::<Instant>;
        loop {
            match self.put_if_leading(kind, id, value.clone()) {
                Ok(true) => return,
                Ok(false) => {
                    tracing::error!(
                        "writing {kind}/{id}: this coordinator no longer leads; stepping down"
                    );
                    std::process::exit(LOST_LEADERSHIP);
                }
                Err(e) => {
                    if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
                        tracing::warn!("{e}: trying again while the lease holds");
                        warned = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// A leader steps down when its last renewal is this old: a margin before
/// the lease's TTL for its watchdog's tick and clock drift.
fn step_down_after(ttl: Duration) -> Duration {
    ttl.saturating_sub((ttl / 4).max(Duration::from_millis(300)))
}

/// Renews `lease` every quarter of `ttl`, recording when each renewal that
/// etcd answered was sent; a broken stream is opened again.
async fn renew(client: Client, lease: i64, ttl: Duration, renewed: Arc<Mutex<Instant>>) {
    let every = (ttl / 4).max(Duration::from_millis(100));
    loop {
        let mut client = client.clone();
        let opened = tokio::time::timeout(REQUEST_TIMEOUT, client.lease_keep_alive(lease)).await;
        let Ok(Ok((mut keeper, mut answers))) = opened else {
            tokio::time::sleep(every).await;
            continue;
        };
        loop {
            let sent = Instant::now();
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(REQUEST_TIMEOUT, answers.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                    *renewed.lock().unwrap_or_else(|p| p.into_inner()) = sent;
                }
                // Expired (TTL 0), closed or failed: the watchdog decides.
                Ok(Ok(Some(_))) | Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            }
            tokio::time::sleep(every.saturating_sub(sent.elapsed())).await;
        }
        tokio::time::sleep(every.min(Duration::from_millis(200))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_steps_down_before_its_lease_can_expire() {
        assert_eq!(
            step_down_after(Duration::from_secs(5)),
            Duration::from_millis(3750)
        );
        assert_eq!(
            step_down_after(Duration::from_secs(1)),
            Duration::from_millis(700)
        );
        assert!(step_down_after(Duration::from_secs(2)) < Duration::from_secs(2));
    }
}
