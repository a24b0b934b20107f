//! The link poller's logic, without I/O: fed every 100 ms what the socket says (bytes
//! acknowledged, round-trip time), it tells the send queue what was delivered and what
//! the link carries, and decides when to probe. The publisher's poller and the
//! simulation both run it.
//!
//! # Clear links and probes
//!
//! The drop ladder judges waiting media partly by the link's capacity, and that
//! estimate was only measured while the link had a backlog. Once the ladder had dropped
//! enough for the link to idle, nothing measured it again: after a cap was lifted, the
//! capped rate stayed, each keyframe's own bytes read as most of a second of waiting,
//! and the frames after it were dropped again, one frame per keyframe interval for as
//! long as the stream lasted (issue 38). So no estimate that drives dropping is kept
//! unchecked while the link is clear — it delivers what is offered (nothing waits to be
//! sent) with a low round-trip time (under 100 ms, or within 50 ms of the lowest seen):
//!
//! - a burst the clear link delivered faster than the estimate raises it
//!   ([`CapacityFilter`]'s proven rates);
//! - an estimate the link has not measured for [`PROBE_AFTER`] while the link is clear
//!   is probed: the next keyframe, and what follows it, is judged by its media span
//!   alone until the link has delivered that keyframe, or until it had the time to at
//!   1.5 × the estimate. Delivered: the rate it proved (over at least 200 ms) raises the
//!   estimate. Not delivered by then: what the link delivered meanwhile, busy with the
//!   keyframe, is the estimate. Under a real cap a probe costs the keyframe's own
//!   sending time: the socket holds only what `TCP_NOTSENT_LOWAT` lets it, so the frames
//!   after the keyframe wait in the queue, where the ladder drops them once the probe
//!   has its answer.
//!
//! - a backlog that starts after an idle poll and is still there when the link should
//!   have delivered it at the estimate measures the link: it fell while idle, with
//!   nothing to measure it, and the frames queued behind a keyframe would otherwise be
//!   judged by the old rate until a second of backlog had passed.
//!
//! A probe keyframe goes out even when the stale estimate says it alone would wait too
//! long: otherwise a capacity measured under a low cap would keep every keyframe out
//! for good. Under a cap where one keyframe takes longer than the thresholds to send,
//! that keyframe arrives that late, once per probe.

use std::time::{Duration, Instant};

use super::capacity::{CapacityFilter, LinkPoll};
use crate::rtmp::queue::{MediaQueue, ProbeStatus};

/// Bytes waiting to be sent (queued, or in the socket and not sent yet) above which
/// the link counts as the bottleneck. What is in flight does not count: on a fast link
/// with a long round trip, a bandwidth-delay product of the app's own rate is in
/// flight, and counting it measured the app's rate as the link's.
pub const BACKLOG_BYTES: u64 = 16 * 1024;
/// A capacity estimate the link has not measured for this long is probed while the
/// link is clear.
pub const PROBE_AFTER: Duration = Duration::from_secs(2);
/// A round-trip time under this is low.
const LOW_RTT: Duration = Duration::from_millis(100);
/// Or within this of the lowest seen.
const RTT_MARGIN: Duration = Duration::from_millis(50);
/// The shortest window a probe measures over: a shaper's burst allowance inflates
/// shorter ones.
const PROBE_MIN: Duration = Duration::from_millis(200);
/// A probe has its answer by then at the latest.
const PROBE_MAX: Duration = Duration::from_secs(2);
/// The poller's period (`LINK_POLL` in the publisher).
const POLL: Duration = Duration::from_millis(100);

/// What one poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkReading {
    /// The link's capacity, bits per second, if measured.
    pub capacity_bps: Option<u64>,
    /// Whether the link had a backlog.
    pub backlogged: bool,
    /// Whether the link was clear (no backlog, low round-trip time).
    pub clear: bool,
}

/// The link poller's state.
#[derive(Debug, Default)]
pub struct LinkMonitor {
    capacity: CapacityFilter,
    min_rtt: Option<Duration>,
    /// (time, acknowledged, unacknowledged) at the previous poll.
    previous: Option<(Instant, u64, u64)>,
    /// The probe under way, once seen.
    probe: Option<ProbeRun>,
    /// The backlog under way since an idle poll.
    burst: Option<Burst>,
    /// Whether the previous poll found a backlog.
    was_backlogged: bool,
}

/// A backlog that started after an idle poll.
#[derive(Debug, Clone, Copy)]
struct Burst {
    /// (time, acknowledged) when first seen.
    seen: (Instant, u64),
    /// When it should be over if the link carries its estimate; `None` once measured
    /// (one measure per backlog: then the filter's windows take over).
    deadline: Option<Instant>,
}

/// A probe under way.
#[derive(Debug, Clone, Copy)]
struct ProbeRun {
    /// (time, acknowledged, unacknowledged) at the poll before it was seen: what it
    /// measures from.
    base: (Instant, u64, u64),
    /// (time, acknowledged) when first seen: from then on the link was busy with it.
    seen: (Instant, u64),
    /// When it is slow.
    deadline: Instant,
}

impl LinkMonitor {
    /// One poll: `acked` bytes of media acknowledged since the stream went live, the
    /// bytes the socket holds and has not sent yet, and the smoothed round-trip time,
    /// where the platform tells them.
    pub fn poll(
        &mut self,
        queue: &MediaQueue,
        now: Instant,
        acked: u64,
        unsent: u64,
        rtt: Option<Duration>,
    ) -> LinkReading {
        queue.delivered(acked);
        let backlogged = queue.queued_bytes() as u64 + unsent > BACKLOG_BYTES;
        let unacked = queue.unacked_bytes();
        if let Some(rtt) = rtt {
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |min| min.min(rtt)));
        }
        let low_rtt = match (rtt, self.min_rtt) {
            (Some(rtt), Some(min)) => rtt < LOW_RTT.max(min + RTT_MARGIN),
            _ => true,
        };
        let clear = !backlogged && low_rtt;
        self.answer_probe(queue, now, acked, rtt);
        self.watch_burst(queue, now, acked, rtt, backlogged);
        self.capacity.sample(LinkPoll {
            at: now,
            acked,
            unacked,
            backlogged,
            clear,
        });
        let capacity_bps = self.capacity.estimate();
        queue.set_link_capacity(capacity_bps);
        queue.want_probe(clear && self.capacity.stale(now, PROBE_AFTER));
        self.previous = Some((now, acked, unacked));
        self.was_backlogged = backlogged;
        LinkReading {
            capacity_bps,
            backlogged,
            clear,
        }
    }

    /// Watches a backlog that starts after an idle poll: still there when the link
    /// should have delivered it at the estimate, and the link delivered less since, that
    /// is the estimate now (see the module docs).
    fn watch_burst(
        &mut self,
        queue: &MediaQueue,
        now: Instant,
        acked: u64,
        rtt: Option<Duration>,
        backlogged: bool,
    ) {
        let probing = matches!(queue.probe(), ProbeStatus::InFlight { .. });
        let (Some(estimate), true, false) = (self.capacity.estimate(), backlogged, probing) else {
            self.burst = None;
            return;
        };
        match &mut self.burst {
            None if !self.was_backlogged => {
                let pending = queue.pending_bytes() as f64 * 8.0;
                let at_estimate = Duration::from_secs_f64(pending / estimate.max(1) as f64);
                self.burst = Some(Burst {
                    seen: (now, acked),
                    deadline: Some(now + at_estimate + rtt.unwrap_or(Duration::ZERO) + POLL),
                });
            }
            Some(burst) if burst.deadline.is_some_and(|at| now >= at) => {
                let busy = now.saturating_duration_since(burst.seen.0).as_secs_f64();
                let carried =
                    (acked.saturating_sub(burst.seen.1) as f64 * 8.0 / busy.max(0.001)) as u64;
                if carried < estimate {
                    tracing::debug!(carried, estimate, "slower than its estimate");
                    self.capacity.measured(now, carried);
                }
                burst.deadline = None;
            }
            _ => {}
        }
    }

    /// Ends the probe under way once the link has shown how fast it delivers it.
    fn answer_probe(
        &mut self,
        queue: &MediaQueue,
        now: Instant,
        acked: u64,
        rtt: Option<Duration>,
    ) {
        let ProbeStatus::InFlight { end, delivered } = queue.probe() else {
            self.probe = None;
            return;
        };
        let estimate = self.capacity.estimate().unwrap_or(0);
        let probe = *self.probe.get_or_insert_with(|| {
            // First seen: the keyframe went out since the previous poll. The link has
            // until it would have delivered it at 1.5 × the estimate.
            let remaining = end.saturating_sub(acked) as f64 * 8.0;
            let at_estimate = Duration::from_secs_f64(remaining / (estimate.max(1) as f64 * 1.5));
            let deadline = (at_estimate + rtt.unwrap_or(Duration::ZERO) + POLL).min(PROBE_MAX);
            ProbeRun {
                base: self.previous.unwrap_or((now, acked, 0)),
                seen: (now, acked),
                deadline: now + deadline,
            }
        });
        let (since, base_acked, base_unacked) = probe.base;
        // Measured from the poll before the keyframe went out (at least 200 ms: a
        // shaper's burst allowance inflates shorter windows): a rate the link carries.
        let elapsed = now.saturating_duration_since(since).max(PROBE_MIN);
        let bytes = acked.saturating_sub(base_acked + base_unacked);
        let rate = (bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
        let (answer, rate) = if delivered {
            self.capacity.raise(rate);
            ("delivered", rate)
        } else if now >= probe.deadline {
            // The link was busy with the probe since it was seen: what it delivered
            // since is what it carries.
            let busy = now.saturating_duration_since(probe.seen.0).as_secs_f64();
            let carried = acked.saturating_sub(probe.seen.1) as f64 * 8.0 / busy.max(0.001);
            self.capacity.measured(now, carried as u64);
            ("slow", carried as u64)
        } else {
            return;
        };
        tracing::debug!(
            answer,
            rate,
            elapsed_ms = elapsed.as_millis() as u64,
            estimate,
            "probe"
        );
        queue.end_probe();
        self.probe = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::congestion::CongestionPolicy;
    use crate::rtmp::packetizer::{MediaMessage, MessageKind};
    use bytes::Bytes;
    use futures_util::FutureExt;

    fn video(ts: u32, len: usize, keyframe: bool) -> MediaMessage {
        MediaMessage {
            kind: MessageKind::Video,
            timestamp: ts,
            header: Bytes::new(),
            body: Bytes::from(vec![0; len]),
            is_frame: true,
            keyframe,
            disposable: false,
        }
    }

    fn push(queue: &MediaQueue, message: MediaMessage) {
        let pushed = queue.push(vec![message]).now_or_never();
        pushed.expect("live").expect("open");
    }

    /// Writes everything queued.
    fn write_all(queue: &MediaQueue) {
        let mut batch = Vec::new();
        queue.pop_batch(&mut batch, usize::MAX);
        for m in batch {
            queue.written(m.timestamp, m.len());
        }
    }

    #[test]
    fn a_capacity_measured_under_a_cap_is_probed_once_the_link_is_clear() {
        let queue =
            MediaQueue::with_policy(Duration::from_secs(10), 64 << 20, CongestionPolicy::live());
        let mut monitor = LinkMonitor::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let rtt = Some(Duration::from_millis(20));
        // 1 s with a backlog, delivering 1.5 Mbit/s.
        push(&queue, video(0, 400_000, true));
        for i in 0..=10u64 {
            let reading = monitor.poll(&queue, at(100 * i), i * 18_750, 0, rtt);
            assert!(reading.backlogged);
        }
        let capped = monitor.capacity.estimate().expect("measured");
        assert!((1_400_000..1_600_000).contains(&capped), "{capped}");
        // Then the rest is delivered, and the link idles with a low RTT: clear. Once
        // the estimate is 2 s old, the next keyframe is a probe.
        write_all(&queue);
        let mut t = 1100;
        while t <= 3000 {
            let reading = monitor.poll(&queue, at(t), 400_000, 0, rtt);
            assert!(reading.clear, "{t} ms");
            assert_eq!(queue.probe(), ProbeStatus::Idle);
            t += 100;
        }
        // 160 KB: 850 ms at the capped rate, so the frame after it would be dropped.
        push(&queue, video(3000, 160_000, true));
        push(&queue, video(3033, 20_000, false));
        assert_eq!(queue.drops().total(), 0, "judged by their span");
        write_all(&queue);
        assert!(matches!(queue.probe(), ProbeStatus::InFlight { .. }));
        // The link delivers it within 100 ms: the probe proves a rate, at least 160 KB
        // over 200 ms.
        monitor.poll(&queue, at(3100), 580_000, 0, rtt);
        assert_eq!(queue.probe(), ProbeStatus::Idle);
        let raised = monitor.capacity.estimate().expect("measured");
        assert!(raised >= 6_400_000, "{raised}");
        push(&queue, video(3066, 20_000, false));
        assert_eq!(queue.drops().total(), 0);
    }

    #[test]
    fn a_backlog_after_an_idle_poll_that_outlasts_the_estimate_measures_the_link() {
        let queue =
            MediaQueue::with_policy(Duration::from_secs(10), 64 << 20, CongestionPolicy::live());
        let mut monitor = LinkMonitor::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let rtt = Some(Duration::from_millis(20));
        // Measured at 3 Mbit/s, then everything delivered: an idle poll.
        push(&queue, video(0, 400_000, true));
        for i in 0..=10u64 {
            monitor.poll(&queue, at(100 * i), i * 37_500, 0, rtt);
        }
        write_all(&queue);
        assert!(!monitor.poll(&queue, at(1100), 400_000, 0, rtt).backlogged);
        // 100 KB that should take 270 ms at 3 Mbit/s (with a round trip and a poll: by
        // 1590 ms); the link now carries 0.5 Mbit/s.
        push(&queue, video(1150, 100_000, false));
        write_all(&queue);
        let mut acked = 400_000;
        for t in (1200..=1700).step_by(100) {
            let reading = monitor.poll(&queue, at(t), acked, 80_000, rtt);
            assert!(reading.backlogged);
            acked += 6_250;
        }
        let measured = monitor.capacity.estimate().expect("measured");
        assert!((400_000..=600_000).contains(&measured), "{measured}");
    }

    #[test]
    fn a_probe_the_link_delivers_slowly_measures_it() {
        let queue =
            MediaQueue::with_policy(Duration::from_secs(10), 64 << 20, CongestionPolicy::live());
        let mut monitor = LinkMonitor::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let rtt = Some(Duration::from_millis(20));
        // Measured at 3 Mbit/s, then idle and clear for 2 s.
        push(&queue, video(0, 400_000, true));
        for i in 0..=10u64 {
            monitor.poll(&queue, at(100 * i), i * 37_500, 0, rtt);
        }
        write_all(&queue);
        for i in 11..=31u64 {
            monitor.poll(&queue, at(100 * i), 400_000, 0, rtt);
        }
        // The link now carries 0.5 Mbit/s: the probe keyframe (100 KB, 180 ms at 1.5 ×
        // the estimate) is not delivered in time, and what the link delivered meanwhile
        // is the estimate.
        push(&queue, video(3100, 100_000, true));
        write_all(&queue);
        let mut t = 3200;
        let mut acked = 400_000;
        while matches!(queue.probe(), ProbeStatus::InFlight { .. }) {
            acked += 6_250;
            monitor.poll(&queue, at(t), acked, 0, rtt);
            t += 100;
            assert!(t < 5000, "the probe ends");
        }
        let measured = monitor.capacity.estimate().expect("measured");
        assert!(
            (400_000..=500_000).contains(&measured),
            "{measured} after {t} ms"
        );
    }
}
