//! Sending recorded media at the pace it was captured, for file sources, demos and
//! tests: a live source (camera, microphone) is paced by its encoder instead.

use std::time::Duration;

use tokio::time::Instant;

/// Paces media by its timestamps: media stamped `origin_us` is due at `start`, media
/// stamped later that much later (earlier stamps are due at once).
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start: Instant,
    origin_us: Option<i64>,
}

impl Pacer {
    /// A pacer starting now whose origin is the first timestamp it is given.
    pub fn from_first_timestamp() -> Self {
        Pacer {
            start: Instant::now(),
            origin_us: None,
        }
    }

    /// A pacer where media stamped `origin_us` is due at `start`.
    pub fn new(start: Instant, origin_us: i64) -> Self {
        Pacer {
            start,
            origin_us: Some(origin_us),
        }
    }

    /// How far into the media `ts_us` is: its distance from the origin (zero before
    /// it). The first call sets the origin if it was not given.
    pub fn offset(&mut self, ts_us: i64) -> Duration {
        let origin = *self.origin_us.get_or_insert(ts_us);
        Duration::from_micros(u64::try_from(ts_us.saturating_sub(origin)).unwrap_or(0))
    }

    /// When media stamped `ts_us` is due.
    pub fn due(&mut self, ts_us: i64) -> Instant {
        self.start + self.offset(ts_us)
    }

    /// Waits until media stamped `ts_us` is due.
    pub async fn wait(&mut self, ts_us: i64) {
        tokio::time::sleep_until(self.due(ts_us)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_is_due_at_its_distance_from_the_origin() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start, 1_000_000);
        assert_eq!(pacer.due(1_000_000), start);
        assert_eq!(pacer.due(1_500_000), start + Duration::from_millis(500));
        assert_eq!(pacer.due(0), start, "earlier stamps are due at once");
    }

    #[test]
    fn without_an_origin_the_first_timestamp_is_it() {
        let mut pacer = Pacer::from_first_timestamp();
        assert_eq!(pacer.offset(90_000), Duration::ZERO);
        assert_eq!(pacer.offset(123_000), Duration::from_millis(33));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_until_due() {
        let mut pacer = Pacer::new(Instant::now(), 0);
        pacer.wait(2_000_000).await;
        assert!(Instant::now() >= pacer.due(2_000_000));
    }
}
