//! A reorder buffer for one RTP stream: packets come out in sequence order; a missing
//! packet is waited for at most the wait target, learned from how long repairs take
//! ([`RepairWait`]), then reported lost. It never holds more than a fixed number of
//! packets, whatever the sender does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::repair_wait::RepairWait;
use super::unwrap::SeqUnwrapper;

/// What the buffer hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JitterOutput<P> {
    /// The next packet in sequence.
    Packet(P),
    /// This many packets are given up on; the next output follows the gap.
    Lost(u64),
}

/// How a packet arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// After every earlier one.
    InOrder,
    /// After later packets, in time to fill its gap: a retransmission, or reordering.
    Repaired,
    /// After its gap was given up on, or a second copy: dropped.
    Dropped,
}

/// The reorder buffer.
#[derive(Debug)]
pub struct JitterBuffer<P> {
    wait: RepairWait,
    max_packets: usize,
    unwrapper: SeqUnwrapper,
    next: Option<i64>,
    waiting: BTreeMap<i64, (Instant, P)>,
    duplicates: u64,
    highest: Option<i64>,
}

impl<P> JitterBuffer<P> {
    /// A buffer that waits `latency` for a missing packet until it has timed a repair,
    /// and holds at most `max_packets`.
    pub fn new(latency: Duration, max_packets: usize) -> Self {
        JitterBuffer {
            wait: RepairWait::new(latency),
            max_packets: max_packets.max(1),
            unwrapper: SeqUnwrapper::default(),
            next: None,
            waiting: BTreeMap::new(),
            duplicates: 0,
            highest: None,
        }
    }

    /// Adds a packet received at `now`.
    pub fn push(&mut self, seq: u16, packet: P, now: Instant) -> Arrival {
        let seq = self.unwrapper.unwrap(u64::from(seq));
        let next = *self.next.get_or_insert(seq);
        // A fill, even a late one, says how long repairs take.
        self.wait.arrived(seq, now);
        if seq < next || self.waiting.contains_key(&seq) {
            self.duplicates += 1; // late after being given up on, or a duplicate
            return Arrival::Dropped;
        }
        let arrival = match self.highest {
            Some(highest) if seq < highest => Arrival::Repaired,
            Some(highest) => {
                if seq > highest + 1 {
                    self.wait.gap(highest + 1, seq, now);
                }
                Arrival::InOrder
            }
            None => Arrival::InOrder,
        };
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        self.waiting.insert(seq, (now, packet));
        arrival
    }

    /// The stream's interarrival jitter, which widens the wait.
    pub fn set_jitter(&mut self, jitter: Duration) {
        self.wait.set_jitter(jitter);
    }

    /// Missing packets are asked for again every `interval` (NACK): the wait covers
    /// more than one round of requests ([`RepairWait::set_retry_interval`]).
    pub fn set_retry_interval(&mut self, interval: Duration) {
        self.wait.set_retry_interval(interval);
    }

    /// How long a missing packet is waited for now.
    pub fn target(&self) -> Duration {
        self.wait.target()
    }

    /// The next output available at `now`, if any.
    pub fn pop(&mut self, now: Instant) -> Option<JitterOutput<P>> {
        let next = self.next?;
        let (&first, &(arrived, _)) = self.waiting.first_key_value()?;
        if first == next {
            self.next = Some(next + 1);
            return self
                .waiting
                .pop_first()
                .map(|(_, (_, p))| JitterOutput::Packet(p));
        }
        // A gap before `first`: give up on it once the oldest waiting packet has waited
        // the latency target, or when the buffer is full.
        if now.duration_since(arrived) >= self.wait.target()
            || self.waiting.len() > self.max_packets
        {
            self.next = Some(first);
            return Some(JitterOutput::Lost((first - next) as u64));
        }
        None
    }

    /// When `pop` may next have something because of a gap timing out.
    pub fn next_deadline(&self) -> Option<Instant> {
        let next = self.next?;
        let (&first, &(arrived, _)) = self.waiting.first_key_value()?;
        (first != next).then_some(arrived + self.wait.target())
    }

    /// Packets currently held.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether no packet is held.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Duplicate or too-late packets dropped so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(buffer: &mut JitterBuffer<u16>, now: Instant) -> Vec<JitterOutput<u16>> {
        std::iter::from_fn(|| buffer.pop(now)).collect()
    }

    #[test]
    fn reorders_within_the_latency() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(Duration::from_millis(100), 64);
        b.push(10, 10, t0);
        b.push(12, 12, t0);
        assert_eq!(drain(&mut b, t0), vec![JitterOutput::Packet(10)]);
        b.push(11, 11, t0 + Duration::from_millis(30));
        assert_eq!(
            drain(&mut b, t0 + Duration::from_millis(30)),
            vec![JitterOutput::Packet(11), JitterOutput::Packet(12)]
        );
    }

    #[test]
    fn gives_up_on_a_gap_after_the_latency_target() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(Duration::from_millis(100), 64);
        b.push(65535, 1, t0);
        b.push(2, 2, t0 + Duration::from_millis(10));
        assert_eq!(
            drain(&mut b, t0 + Duration::from_millis(10)),
            vec![JitterOutput::Packet(1)]
        );
        assert_eq!(b.next_deadline(), Some(t0 + Duration::from_millis(110)));
        assert!(drain(&mut b, t0 + Duration::from_millis(109)).is_empty());
        assert_eq!(
            drain(&mut b, t0 + Duration::from_millis(110)),
            vec![JitterOutput::Lost(2), JitterOutput::Packet(2)],
            "0 and 1 are lost across the wrap"
        );
        // The lost packet arriving late is dropped, not delivered out of order.
        b.push(1, 99, t0 + Duration::from_millis(120));
        assert!(drain(&mut b, t0 + Duration::from_millis(500)).is_empty());
        assert_eq!(b.duplicates(), 1);
    }

    #[test]
    fn never_holds_more_than_its_bound() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(Duration::from_secs(3600), 8);
        b.push(0, 0, t0);
        assert_eq!(b.pop(t0), Some(JitterOutput::Packet(0)));
        for seq in 2..100u16 {
            b.push(seq, seq, t0);
            while let Some(out) = b.pop(t0) {
                if let JitterOutput::Lost(n) = out {
                    assert_eq!(n, 1);
                }
            }
            assert!(b.len() <= 9);
        }
    }

    #[test]
    fn a_packet_that_fills_a_gap_in_time_says_so() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(Duration::from_millis(100), 64);
        assert_eq!(b.push(1, 1, t0), Arrival::InOrder);
        assert_eq!(b.push(3, 3, t0), Arrival::InOrder);
        let repaired = t0 + Duration::from_millis(30);
        assert_eq!(b.push(2, 2, repaired), Arrival::Repaired, "2 came after 3");
        assert_eq!(b.push(2, 2, repaired), Arrival::Dropped, "a duplicate");
        // The repair took 30 ms: the wait is now 1.25 x 30 + 10, floored at 40 ms.
        assert_eq!(
            b.target(),
            Duration::from_millis(47) + Duration::from_micros(500)
        );
        assert_eq!(
            drain(&mut b, repaired),
            vec![
                JitterOutput::Packet(1),
                JitterOutput::Packet(2),
                JitterOutput::Packet(3)
            ]
        );
    }
}
