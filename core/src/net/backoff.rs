//! Reconnect delays: full-jitter exponential backoff.
//!
//! Attempt `n` (0-based) waits a uniformly random time in `[0, min(cap, base × 2^n)]`
//! ("full jitter"), so a thousand phones that lost the same server do not come back
//! in lock-step. A server's `retry_after_ms` is a floor on top of that.

use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// The ceiling of the first attempt's window.
    pub base: Duration,
    /// The largest window.
    pub cap: Duration,
    /// After this long connected, the next drop starts again at attempt 0.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

impl BackoffConfig {
    /// Windows from `base` doubling up to `cap`, starting over after 60 s connected.
    pub fn new(base: Duration, cap: Duration) -> Self {
        BackoffConfig {
            base,
            cap,
            ..BackoffConfig::default()
        }
    }

    /// The same windows, starting over after `reset_after` connected.
    #[must_use]
    pub fn with_reset_after(mut self, reset_after: Duration) -> Self {
        self.reset_after = reset_after;
        self
    }
}

/// The reconnect attempt counter.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    /// A counter at attempt 0.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff { config, attempt: 0 }
    }

    /// The attempt the next delay is for.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The window of the current attempt: `min(cap, base × 2^attempt)`.
    pub fn window(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.config
            .base
            .checked_mul(factor)
            .unwrap_or(self.config.cap)
            .min(self.config.cap)
    }

    /// The next delay, given a uniform random number in `[0, 1)`, and a server's
    /// `retry_after` floor; advances the attempt.
    pub fn next_delay(&mut self, unit_random: f64, retry_after: Option<Duration>) -> Duration {
        let jittered = self.window().mul_f64(unit_random.clamp(0.0, 1.0));
        self.attempt = self.attempt.saturating_add(1);
        match retry_after {
            Some(floor) => jittered.max(floor),
            None => jittered,
        }
    }

    /// Tells the counter how long the last connection stayed up; a long one resets it.
    pub fn connection_ended(&mut self, connected_for: Duration) {
        if connected_for >= self.config.reset_after {
            self.attempt = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BackoffConfig {
        BackoffConfig::default()
    }

    #[test]
    fn windows_double_from_half_a_second_to_the_cap() {
        let mut backoff = Backoff::new(config());
        let windows: Vec<u64> = (0..9)
            .map(|_| {
                let w = backoff.window().as_millis() as u64;
                backoff.next_delay(0.0, None);
                w
            })
            .collect();
        assert_eq!(
            windows,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn delays_span_the_whole_window() {
        let mut backoff = Backoff::new(config());
        for _ in 0..3 {
            backoff.next_delay(0.5, None);
        }
        let mut top = backoff.clone();
        assert_eq!(backoff.next_delay(0.0, None), Duration::ZERO);
        assert_eq!(top.next_delay(0.999_999, None).as_millis(), 3999);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut backoff = Backoff::new(config());
        let floor = Duration::from_millis(1800);
        assert_eq!(backoff.next_delay(0.1, Some(floor)), floor);
        // A larger jittered delay wins over a small floor.
        let mut backoff = Backoff::new(config());
        for _ in 0..5 {
            backoff.next_delay(0.0, None);
        }
        assert_eq!(
            backoff.next_delay(0.5, Some(Duration::from_millis(10))),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn never_overflows_after_many_attempts() {
        let mut backoff = Backoff::new(config());
        for _ in 0..10_000 {
            assert!(backoff.next_delay(1.0, None) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn only_a_stable_connection_resets_the_count() {
        let mut backoff = Backoff::new(config());
        for _ in 0..4 {
            backoff.next_delay(0.3, None);
        }
        backoff.connection_ended(Duration::from_secs(5));
        assert_eq!(backoff.attempt(), 4);
        backoff.connection_ended(Duration::from_secs(60));
        assert_eq!(backoff.attempt(), 0);
    }
}
