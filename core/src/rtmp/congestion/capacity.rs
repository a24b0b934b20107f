//! What the link carries, from acknowledged bytes polled every 100 ms.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One poll of the link, as the filter needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPoll {
    /// When it was taken.
    pub at: Instant,
    /// Bytes acknowledged since the stream went live.
    pub acked: u64,
    /// Bytes written to the socket and not acknowledged yet.
    pub unacked: u64,
    /// Whether the link had a backlog (more pending than the socket's own share).
    pub backlogged: bool,
    /// Whether the link is clear: it delivered what was offered (no backlog), with a
    /// low round-trip time (no queue building in the network).
    pub clear: bool,
}

/// The link's capacity, from two kinds of measure:
///
/// - **Backlogged windows**: the mean delivery rate over the windows (up to 1 s, at
///   least 300 ms) during which the link had a backlog, among those of the last 5 s.
///   Windows in which the app sent little say nothing about the link and are left out.
///   (A max filter, as BBR keeps, overestimated it by the noise of ACK timing: 20 % on
///   a 1.5 Mbit/s tbf link, which let the delay overshoot.)
/// - **Proven rates**: when the link is clear, the bytes it delivered since a poll at
///   least 300 ms earlier at which it had no backlog (less what was in flight then)
///   prove a rate it carries. A proven rate above the estimate replaces it
///   ([`Self::raise`]): the link delivered a burst faster than the estimate says it
///   can. A probe the link delivered fast proves a rate the same way; one it delivered
///   slowly measures the link ([`Self::measured`]).
///
/// Once measured, the capacity is kept when no backlogged window was seen for 5 s: the
/// live policy drops video before the link stays backlogged for long, so such gaps are
/// the rule under a cap, and without a capacity only the media span of what waits
/// counts. That span hides the transmission time of a burst: a keyframe and 650 ms of
/// 4 Mbit/s video were 332 KB waiting for a 1.5 Mbit/s link, 1.8 s of sending behind a
/// 650 ms span (seen in `cli/tests/alone/throttle.rs`, glass-to-glass 1.9 s).
///
/// A kept capacity goes stale: after a lift, dropping keeps the link idle, so no
/// backlogged window measures the new rate, and the old one judged each keyframe's own
/// bytes as a second of waiting, dropping the frames after it (issue 38). Hence the
/// proven rates, and [`Self::stale`]: whether the estimate went unmeasured for a
/// while, after which the link monitor probes the link.
#[derive(Debug, Default)]
pub struct CapacityFilter {
    /// (time, acknowledged bytes, backlogged) every poll, the last second.
    recent: VecDeque<(Instant, u64, bool)>,
    /// (time, rate) of backlogged windows, the last 5 s.
    rates: VecDeque<(Instant, u64)>,
    /// The estimate: the mean of the last `rates` there were, or a rate proven since.
    last: Option<u64>,
    /// When the link was last measured while it was the bottleneck (a backlogged window
    /// or a slow probe).
    measured_at: Option<Instant>,
    /// (time, acknowledged bytes, unacknowledged bytes) of the polls without a backlog,
    /// the last 2 s: the starts of the windows that prove a rate.
    idle: VecDeque<(Instant, u64, u64)>,
}

/// The shortest window that proves a rate (a shaper's burst allowance inflates short
/// ones).
const PROVING_WINDOW: Duration = Duration::from_millis(300);

impl CapacityFilter {
    /// Takes a poll.
    pub fn sample(&mut self, poll: LinkPoll) {
        let now = poll.at;
        self.recent.push_back((now, poll.acked, poll.backlogged));
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
                let rate = (poll.acked.saturating_sub(first.1) as f64 * 8.0 / span) as u64;
                self.rates.push_back((now, rate));
                self.measured_at = Some(now);
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
        if poll.clear {
            let proven = self
                .idle
                .iter()
                .filter(|(at, _, _)| now.duration_since(*at) >= PROVING_WINDOW)
                .map(|(at, acked, unacked)| {
                    let bytes = poll.acked.saturating_sub(acked + unacked);
                    (bytes as f64 * 8.0 / now.duration_since(*at).as_secs_f64()) as u64
                })
                .max();
            if let Some(proven) = proven {
                self.raise(proven);
            }
        }
        if !poll.backlogged {
            self.idle.push_back((now, poll.acked, poll.unacked));
        }
        while self
            .idle
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > Duration::from_secs(2))
        {
            self.idle.pop_front();
        }
    }

    /// The link carried `bps` (a proven rate): if that is above the estimate, it
    /// becomes the estimate, and the backlogged windows before it no longer count. A
    /// link never measured keeps no estimate (what an idle link proves can be far below
    /// what it carries).
    pub fn raise(&mut self, bps: u64) {
        if self.last.is_some_and(|estimate| bps > estimate) {
            self.last = Some(bps);
            self.rates.clear();
        }
    }

    /// The link carried `bps` while it was busy (a probe that was slow): that is the
    /// estimate now, measured.
    pub fn measured(&mut self, now: Instant, bps: u64) {
        self.last = Some(bps);
        self.rates.clear();
        self.measured_at = Some(now);
    }

    /// Whether there is an estimate and the link was not measured for `after` (proven
    /// rates do not count: the link may carry more than the app offered it).
    pub fn stale(&self, now: Instant, after: Duration) -> bool {
        self.last.is_some()
            && self
                .measured_at
                .is_none_or(|at| now.saturating_duration_since(at) >= after)
    }

    /// The capacity in bits per second: the mean of the backlogged windows of the last
    /// 5 s, or a rate proven since, else the last such estimate; `None` until a
    /// backlogged window was measured.
    pub fn estimate(&self) -> Option<u64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(at: Instant, acked: u64, backlogged: bool) -> LinkPoll {
        LinkPoll {
            at,
            acked,
            unacked: 0,
            backlogged,
            clear: !backlogged,
        }
    }

    #[test]
    fn only_backlogged_windows_count() {
        let start = Instant::now();
        let mut filter = CapacityFilter::default();
        // 1 s at 1.5 Mbit/s with a backlog, polled every 100 ms.
        for i in 0..=10u64 {
            filter.sample(poll(
                start + Duration::from_millis(100 * i),
                i * 18_750,
                true,
            ));
        }
        let backlogged = filter.estimate().expect("measured");
        assert!((1_400_000..1_600_000).contains(&backlogged), "{backlogged}");
        // An idle second (little sent) changes nothing.
        for i in 11..=20u64 {
            let at = start + Duration::from_millis(100 * i);
            filter.sample(poll(at, 187_500 + i * 100, false));
        }
        assert_eq!(filter.estimate(), Some(backlogged));
        // Kept past 5 s without a backlogged window: a stale measure beats none.
        filter.sample(poll(start + Duration::from_secs(7), 200_000, false));
        assert_eq!(filter.estimate(), Some(backlogged));
        // New backlogged seconds replace it (here: 0.75 Mbit/s).
        for i in 0..=15u64 {
            let at = start + Duration::from_secs(7) + Duration::from_millis(100 * i);
            filter.sample(poll(at, 200_000 + i * 9_375, true));
        }
        let slower = filter.estimate().expect("measured");
        assert!((700_000..800_000).contains(&slower), "{slower}");
    }

    #[test]
    fn a_clear_link_that_delivers_a_burst_fast_proves_a_higher_rate() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut filter = CapacityFilter::default();
        for i in 0..=10u64 {
            filter.sample(poll(at(100 * i), i * 18_750, true));
        }
        let capped = filter.estimate().expect("measured");
        // Idle: nothing proven, and after 2 s the estimate is stale.
        filter.sample(poll(at(1100), 187_500, false));
        filter.sample(poll(at(2000), 190_000, false));
        assert_eq!(filter.estimate(), Some(capped));
        assert!(!filter.stale(at(2000), Duration::from_secs(2)));
        assert!(filter.stale(at(3000), Duration::from_secs(2)));
        // 160 KB delivered, then clear: 3.2 Mbit/s over the 400 ms since the last idle
        // poll (none while the RTT says a queue built up).
        let mut queued = LinkPoll {
            clear: false,
            ..poll(at(2300), 350_000, false)
        };
        filter.sample(queued);
        assert_eq!(filter.estimate(), Some(capped));
        queued.at = at(2400);
        queued.clear = true;
        filter.sample(queued);
        let proven = filter.estimate().expect("measured");
        assert!(proven > 3_000_000, "{proven}");
        // Stale 2 s after the backlogged window all the same: what the app offered says
        // nothing of what more the link carries.
        assert!(filter.stale(at(3000), Duration::from_secs(2)));
        // A slower proven rate lowers nothing.
        filter.sample(poll(at(3000), 360_000, false));
        assert_eq!(filter.estimate(), Some(proven));
        // A measure does, and it is fresh.
        filter.measured(at(3000), 1_000_000);
        assert_eq!(filter.estimate(), Some(1_000_000));
        assert!(!filter.stale(at(3000), Duration::from_secs(2)));
    }

    #[test]
    fn a_link_never_backlogged_has_no_estimate_to_raise() {
        let start = Instant::now();
        let mut filter = CapacityFilter::default();
        for i in 0..=20u64 {
            filter.sample(poll(
                start + Duration::from_millis(100 * i),
                i * 5_000,
                false,
            ));
        }
        assert_eq!(filter.estimate(), None);
        assert!(!filter.stale(start + Duration::from_secs(9), Duration::from_secs(2)));
    }
}
