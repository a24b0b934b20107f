//! Per-user send limits: a token bucket (`messages` per `per`), and slow mode.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket holding up to `capacity` sends, refilled evenly over `per`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_token: Duration,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, per: Duration, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        TokenBucket {
            capacity,
            per_token: per.div_f64(capacity),
            tokens: capacity,
            updated: now,
        }
    }

    /// Takes one send, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated);
        if !self.per_token.is_zero() {
            self.tokens = (self.tokens + elapsed.as_secs_f64() / self.per_token.as_secs_f64())
                .min(self.capacity);
        } else {
            self.tokens = self.capacity;
        }
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.per_token.mul_f64(1.0 - self.tokens))
        }
    }
}

impl TokenBucket {
    /// Whether the bucket will be full at `now`: forgetting it then changes nothing.
    pub fn is_full_at(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated);
        self.per_token.is_zero()
            || self.tokens + elapsed.as_secs_f64() / self.per_token.as_secs_f64() >= self.capacity
    }
}

/// How long until `interval` has passed since `last`, if it has not.
pub fn slow_mode_wait(last: Option<Instant>, interval: Duration, now: Instant) -> Option<Duration> {
    let last = last?;
    let next = last + interval;
    (now < next).then(|| next - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_five_seconds() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(5, Duration::from_secs(5), start);
        for _ in 0..5 {
            assert!(bucket.try_take(start).is_ok());
        }
        let wait = bucket.try_take(start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(bucket.try_take(start + Duration::from_millis(999)).is_err());
        assert!(bucket.try_take(start + Duration::from_millis(2000)).is_ok());
        // Refills never exceed the capacity.
        let later = start + Duration::from_secs(3600);
        for _ in 0..5 {
            assert!(bucket.try_take(later).is_ok());
        }
        assert!(bucket.try_take(later).is_err());
    }

    #[test]
    fn slow_mode_waits_out_the_interval() {
        let now = Instant::now();
        let interval = Duration::from_secs(3);
        assert_eq!(slow_mode_wait(None, interval, now), None);
        assert_eq!(
            slow_mode_wait(Some(now), interval, now + Duration::from_secs(1)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(slow_mode_wait(Some(now), interval, now + interval), None);
    }
}
