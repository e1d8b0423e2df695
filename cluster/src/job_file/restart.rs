//! `[restart]`: what happens when a job fails.

use std::time::Duration;

use serde::Deserialize;
use sluice_engine::checkpoint::RestartStrategy;

use super::JobFileError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRestart {
    strategy: String,
    attempts: Option<u32>,
    delay_ms: Option<u64>,
    initial_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
}

/// The `[restart]` section, validated.
pub(super) fn restart_strategy(
    r: &RawRestart,
    invalid: impl Fn(&str, String) -> JobFileError,
) -> Result<RestartStrategy, JobFileError> {
    let not_for = |field: &str, present: bool| {
        if present {
            Err(invalid(
                &format!("restart.{field}"),
                format!("does not apply to strategy \"{}\"", r.strategy),
            ))
        } else {
            Ok(())
        }
    };
    let attempts = r.attempts.unwrap_or(3);
    Ok(match r.strategy.as_str() {
        "none" => {
            not_for("attempts", r.attempts.is_some())?;
            not_for("delay_ms", r.delay_ms.is_some())?;
            not_for("initial_delay_ms", r.initial_delay_ms.is_some())?;
            not_for("max_delay_ms", r.max_delay_ms.is_some())?;
            RestartStrategy::None
        }
        "fixed-delay" => {
            not_for("initial_delay_ms", r.initial_delay_ms.is_some())?;
            not_for("max_delay_ms", r.max_delay_ms.is_some())?;
            RestartStrategy::FixedDelay {
                attempts,
                delay: Duration::from_millis(r.delay_ms.unwrap_or(1_000)),
            }
        }
        "exponential-backoff" => {
            not_for("delay_ms", r.delay_ms.is_some())?;
            let initial = r.initial_delay_ms.unwrap_or(1_000);
            let max = r.max_delay_ms.unwrap_or(60_000);
            if max < initial {
                return Err(invalid(
                    "restart.max_delay_ms",
                    format!("is {max}, expected at least initial_delay_ms ({initial})"),
                ));
            }
            RestartStrategy::ExponentialBackoff {
                attempts,
                initial: Duration::from_millis(initial),
                max: Duration::from_millis(max),
            }
        }
        other => {
            return Err(invalid(
                "restart.strategy",
                format!(
                    "is \"{other}\", expected \"none\", \"fixed-delay\" or \"exponential-backoff\""
                ),
            ))
        }
    })
}
