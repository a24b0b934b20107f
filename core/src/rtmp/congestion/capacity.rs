//! What the link carries, from acknowledged bytes polled while it has a backlog.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The link's capacity: the mean delivery rate over the windows (up to 1 s, at least
/// 300 ms) during which the link had a backlog, among those of the last 5 s. Windows
/// in which the app sent little say nothing about the link and are left out. (A max
/// filter, as BBR keeps, overestimated it by the noise of ACK timing: 20 % on a 1.5
/// Mbit/s tbf link, which let the delay overshoot.)
///
/// Once measured, the capacity is kept when no backlogged window was seen for 5 s: the
/// live policy drops video before the link stays backlogged for long, so such gaps are
/// the rule under a cap, and without a capacity only the media span of what waits
/// counts. That span hides the transmission time of a burst: a keyframe and 650 ms of
/// 4 Mbit/s video were 332 KB waiting for a 1.5 Mbit/s link, 1.8 s of sending behind a
/// 650 ms span (seen in `cli/tests/alone/throttle.rs`, glass-to-glass 1.9 s).
#[derive(Debug, Default)]
pub struct CapacityFilter {
    /// (time, acknowledged bytes, backlogged) every poll, the last second.
    recent: VecDeque<(Instant, u64, bool)>,
    /// (time, rate) of backlogged windows, the last 5 s.
    rates: VecDeque<(Instant, u64)>,
    /// The mean of the last `rates` there were.
    last: Option<u64>,
}

impl CapacityFilter {
    /// Takes a poll: bytes acknowledged so far, and whether the link had a backlog.
    pub fn sample(&mut self, now: Instant, acked: u64, backlogged: bool) {
        self.recent.push_back((now, acked, backlogged));
        while self
            .recent
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > Duration::from_secs(1))
        {
            self.recent.pop_front();
        }
        let window_backlogged = self.recent.len() >= 3 && self.recent.iter().all(|s| s.2);
        if let (true, Some(first)) = (window_backlogged, self.recent.front()) {
            let span = now.duration_since(first.0).as_secs_f64();
            if span > 0.0 {
                let rate = (acked.saturating_sub(first.1) as f64 * 8.0 / span) as u64;
                self.rates.push_back((now, rate));
            }
        }
        while self
            .rates
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(5))
        {
            self.rates.pop_front();
        }
        let total = self.rates.iter().map(|(_, rate)| *rate).sum::<u64>();
        if let Some(mean) = total.checked_div(self.rates.len() as u64) {
            self.last = Some(mean);
        }
    }

    /// The capacity in bits per second: the mean of the backlogged windows of the last
    /// 5 s, else the last such mean; `None` until a backlogged window was measured.
    pub fn estimate(&self) -> Option<u64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_backlogged_windows_count() {
        let start = Instant::now();
        let mut filter = CapacityFilter::default();
        // 1 s at 1.5 Mbit/s with a backlog, polled every 100 ms.
        for i in 0..=10u64 {
            filter.sample(start + Duration::from_millis(100 * i), i * 18_750, true);
        }
        let backlogged = filter.estimate().expect("measured");
        assert!((1_400_000..1_600_000).contains(&backlogged), "{backlogged}");
        // An idle second (little sent) changes nothing.
        for i in 11..=20u64 {
            filter.sample(
                start + Duration::from_millis(100 * i),
                187_500 + i * 100,
                false,
            );
        }
        assert_eq!(filter.estimate(), Some(backlogged));
        // Kept past 5 s without a backlogged window: a stale measure beats none.
        filter.sample(start + Duration::from_secs(7), 200_000, false);
        assert_eq!(filter.estimate(), Some(backlogged));
        // New backlogged seconds replace it (here: 0.75 Mbit/s).
        for i in 0..=15u64 {
            filter.sample(
                start + Duration::from_secs(7) + Duration::from_millis(100 * i),
                200_000 + i * 9_375,
                true,
            );
        }
        let slower = filter.estimate().expect("measured");
        assert!((700_000..800_000).contains(&slower), "{slower}");
    }
}
