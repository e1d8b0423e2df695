//! Restart strategies: how often, and after how long, a failed job that takes
//! checkpoints is started again from its last completed checkpoint (Flink's
//! `restart-strategy`). Runs on the thread that waits for the job.

use std::time::Duration;

/// `[restart]` in the job file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartStrategy {
    /// A failure fails the job (restart it by hand with `--restore latest`).
    #[default]
    None,
    /// Up to `attempts` restarts, each after `delay`.
    FixedDelay { attempts: u32, delay: Duration },
    /// Up to `attempts` restarts; the first after `initial`, each next one
    /// after twice the previous delay, at most `max`.
    ExponentialBackoff {
        attempts: u32,
        initial: Duration,
        max: Duration,
    },
}

impl RestartStrategy {
    /// The delay before restart number `restart` (1, 2, …), or `None` when
    /// the strategy allows no more.
    pub fn delay_before(&self, restart: u32) -> Option<Duration> {
        match *self {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                (restart <= attempts).then_some(delay)
            }
            RestartStrategy::ExponentialBackoff {
                attempts,
                initial,
                max,
            } => (restart <= attempts).then(|| {
                let factor = 1u32.checked_shl(restart - 1).unwrap_or(u32::MAX);
                initial.saturating_mul(factor).min(max)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_strategy() {
        assert_eq!(RestartStrategy::None.delay_before(1), None);
        let fixed = RestartStrategy::FixedDelay {
            attempts: 2,
            delay: Duration::from_millis(5),
        };
        assert_eq!(fixed.delay_before(1), Some(Duration::from_millis(5)));
        assert_eq!(fixed.delay_before(2), Some(Duration::from_millis(5)));
        assert_eq!(fixed.delay_before(3), None);
        let backoff = RestartStrategy::ExponentialBackoff {
            attempts: 40,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (1..=6)
            .map(|n| backoff.delay_before(n).unwrap().as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.delay_before(40), Some(Duration::from_secs(1)));
        assert_eq!(backoff.delay_before(41), None);
    }
}
