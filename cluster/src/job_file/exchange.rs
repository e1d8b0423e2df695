//! `[exchange]`: how records move between shards (batch size, flush
//! timeout, credits of a channel and floating credits of a link between
//! workers) and how shards sit on CPUs.

use std::time::Duration;

use serde::Deserialize;
use sluice_engine::config::{BATCH_BYTES_LIMIT_MAX, CHANNEL_BATCHES_MAX};
use sluice_engine::JobConfig;

use super::{FileContext, JobFileError};

/// Longest flush timeout.
const FLUSH_TIMEOUT_MS_MAX: u64 = 60_000;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExchange {
    batch_bytes: Option<usize>,
    flush_timeout_ms: Option<u64>,
    channel_batches: Option<usize>,
    floating_batches: Option<usize>,
    spin_before_park_us: Option<u64>,
    pin_cpus: Option<bool>,
}

impl RawExchange {
    /// Validates the section into `config`.
    pub(super) fn apply(
        &self,
        file: &FileContext,
        config: &mut JobConfig,
    ) -> Result<(), JobFileError> {
        if let Some(bytes) = self.batch_bytes {
            if bytes == 0 || bytes > BATCH_BYTES_LIMIT_MAX {
                return Err(file.invalid(
                    "exchange.batch_bytes",
                    format!("is {bytes}, expected 1..={BATCH_BYTES_LIMIT_MAX}"),
                ));
            }
            config.batch_bytes_limit = bytes;
        }
        if let Some(ms) = self.flush_timeout_ms {
            if ms > FLUSH_TIMEOUT_MS_MAX {
                return Err(file.invalid(
                    "exchange.flush_timeout_ms",
                    format!("is {ms}, expected 0..={FLUSH_TIMEOUT_MS_MAX}"),
                ));
            }
            config.flush_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.channel_batches {
            if n == 0 || n > CHANNEL_BATCHES_MAX {
                return Err(file.invalid(
                    "exchange.channel_batches",
                    format!("is {n}, expected 1..={CHANNEL_BATCHES_MAX}"),
                ));
            }
            config.channel_batches = n;
        }
        if let Some(n) = self.floating_batches {
            if n > CHANNEL_BATCHES_MAX {
                return Err(file.invalid(
                    "exchange.floating_batches",
                    format!("is {n}, expected 0..={CHANNEL_BATCHES_MAX}"),
                ));
            }
            config.link_floating_batches = n;
        }
        config.spin_before_park = self.spin_before_park_us.map(Duration::from_micros);
        if let Some(pin) = self.pin_cpus {
            config.pin_cpus = pin;
        }
        Ok(())
    }
}
