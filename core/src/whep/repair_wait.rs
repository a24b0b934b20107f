//! How long the reorder buffer waits for a missing packet, learned from how long gaps
//! actually take to fill.
//!
//! A fixed wait is wrong both ways: on a LAN a retransmission comes back in a few
//! milliseconds and every extra millisecond is a frozen picture, and on a long path a
//! retransmission takes an RTT plus the NACK delay and a 100 ms wait gives up on every
//! repair. Here each gap is timed from when it opened (the first packet after it
//! arrived) to when it filled, late fills included (a packet that came after the
//! buffer gave up still says how long it would have had to wait). The wait is then
//! `1.25 × repair time + 2 × jitter + 10 ms`, plus [`RETRIES_WAITED`] more rounds of
//! retransmission requests when the stream is NACKed, bounded. A request or its answer
//! is lost as often as the packet was (2 % loss each way fails one first round in 25),
//! and the next round only goes out one NACK interval later: a wait that covers one round
//! gives up on a packet the second round was bringing. The repair time follows a longer
//! sample at once and a shorter one slowly (1/16 per sample), so one quick repair does
//! not undo what a slow one taught. Before any repair, the configured wait is used
//! (at least 3 × jitter + 20 ms).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Shortest wait: a gap on loopback still needs a NACK interval and a turn-around.
pub const MIN_WAIT: Duration = Duration::from_millis(40);
/// Longest wait: beyond this a frozen picture costs more than a keyframe request.
pub const MAX_WAIT: Duration = Duration::from_millis(500);
/// Rounds of retransmission requests waited for beyond the first, when the stream is
/// NACKed: with each round lost with probability p (a request or its answer lost), a
/// packet is given up with probability p⁴ (2.5e-6 at 2 % loss each way).
pub const RETRIES_WAITED: u32 = 3;
/// Gaps remembered at most (the oldest are forgotten first).
const MAX_OPEN_GAPS: usize = 512;

/// The learned wait.
#[derive(Debug, Clone)]
pub struct RepairWait {
    initial: Duration,
    repair: Option<Duration>,
    jitter: Duration,
    /// How often missing packets are asked for again; zero for a stream not NACKed.
    retry_interval: Duration,
    /// Missing sequence numbers and when their gap opened.
    open: BTreeMap<i64, Instant>,
}

impl RepairWait {
    /// A wait that starts at `initial` until a repair has been timed.
    pub fn new(initial: Duration) -> Self {
        RepairWait {
            initial,
            repair: None,
            jitter: Duration::ZERO,
            retry_interval: Duration::ZERO,
            open: BTreeMap::new(),
        }
    }

    /// The stream's missing packets are asked for again every `interval` (the NACK
    /// generator's): the wait covers [`RETRIES_WAITED`] more rounds.
    pub fn set_retry_interval(&mut self, interval: Duration) {
        self.retry_interval = interval;
    }

    /// Sequence numbers `from..to` went missing at `now`.
    pub fn gap(&mut self, from: i64, to: i64, now: Instant) {
        let horizon = MAX_WAIT * 4;
        while let Some((_, &opened)) = self.open.first_key_value() {
            if now.duration_since(opened) > horizon || self.open.len() >= MAX_OPEN_GAPS {
                self.open.pop_first();
            } else {
                break;
            }
        }
        // A huge jump (a sender restart) is not a gap to time.
        for seq in from..to.min(from + MAX_OPEN_GAPS as i64) {
            self.open.insert(seq, now);
        }
    }

    /// Packet `seq` arrived at `now`; if it filled a timed gap, its repair time is
    /// learned.
    pub fn arrived(&mut self, seq: i64, now: Instant) {
        let Some(opened) = self.open.remove(&seq) else {
            return;
        };
        let sample = now.duration_since(opened);
        self.repair = Some(match self.repair {
            Some(repair) if sample < repair => repair - (repair - sample) / 16,
            _ => sample,
        });
    }

    /// The interarrival jitter of the stream, as measured.
    pub fn set_jitter(&mut self, jitter: Duration) {
        self.jitter = jitter;
    }

    /// How long to wait for a missing packet now.
    pub fn target(&self) -> Duration {
        let wait = match self.repair {
            Some(repair) => repair * 5 / 4 + self.jitter * 2 + Duration::from_millis(10),
            None => self
                .initial
                .max(self.jitter * 3 + Duration::from_millis(20)),
        };
        (wait + self.retry_interval * RETRIES_WAITED).clamp(MIN_WAIT, MAX_WAIT)
    }

    #[cfg(test)]
    /// The repair time learned so far.
    pub fn repair_time(&self) -> Option<Duration> {
        self.repair
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_at_the_configured_wait_and_follows_the_measured_repair_time() {
        let t0 = Instant::now();
        let mut wait = RepairWait::new(100 * MS);
        assert_eq!(wait.target(), 100 * MS);
        // Repairs on a LAN: 20 ms. The wait shrinks to 1.25 x 20 + 10 = 35, floored at 40.
        wait.gap(10, 11, t0);
        wait.arrived(10, t0 + 20 * MS);
        assert_eq!(wait.target(), MIN_WAIT);
        // A long path: a repair takes 300 ms; the wait follows at once.
        wait.gap(20, 22, t0 + 100 * MS);
        wait.arrived(21, t0 + 400 * MS);
        assert_eq!(wait.target(), 385 * MS);
        // One quick repair does not undo it: 1/16 of the way down.
        wait.gap(30, 31, t0 + 500 * MS);
        wait.arrived(30, t0 + 510 * MS);
        assert_eq!(wait.repair_time(), Some(300 * MS - (290 * MS) / 16));
        // Jitter widens it, the bound caps it.
        wait.set_jitter(200 * MS);
        assert_eq!(wait.target(), MAX_WAIT);
    }

    #[test]
    fn a_nacked_stream_waits_for_more_rounds_of_requests() {
        let t0 = Instant::now();
        let mut wait = RepairWait::new(100 * MS);
        wait.set_retry_interval(20 * MS);
        assert_eq!(wait.target(), 160 * MS);
        // Loopback: a first round takes 20 ms; three more rounds of 20 ms are waited for.
        wait.gap(10, 11, t0);
        wait.arrived(10, t0 + 20 * MS);
        assert_eq!(wait.target(), 95 * MS);
    }

    #[test]
    fn unknown_packets_teach_nothing_and_old_gaps_are_forgotten() {
        let t0 = Instant::now();
        let mut wait = RepairWait::new(100 * MS);
        wait.arrived(5, t0);
        assert_eq!(wait.repair_time(), None);
        wait.gap(0, 1_000_000, t0);
        assert_eq!(wait.open.len(), MAX_OPEN_GAPS);
        wait.gap(2_000_000, 2_000_001, t0 + MAX_WAIT * 5);
        assert_eq!(
            wait.open.len(),
            1,
            "gaps older than the horizon are dropped"
        );
        assert_eq!(RepairWait::new(MS).target(), MIN_WAIT);
    }
}
