//! Freezes of the delivered video, as the W3C WebRTC statistics define them: a frame
//! that comes more than `max(3 × the average frame interval, average + 150 ms)` after
//! the previous one ends a freeze of that length.

use std::time::Duration;

/// Counts freezes from the times frames were delivered.
#[derive(Debug, Clone, Default)]
pub struct FreezeMeter {
    last: Option<Duration>,
    /// Smoothed frame interval (1/30 weight), from intervals that were not freezes.
    average: Option<Duration>,
    freezes: u64,
    frozen: Duration,
}

impl FreezeMeter {
    /// A frame was delivered at `at` (time since the start); true when it ended a freeze.
    pub fn frame(&mut self, at: Duration) -> bool {
        let Some(last) = self.last.replace(at) else {
            return false;
        };
        let interval = at.saturating_sub(last);
        let Some(average) = self.average else {
            self.average = Some(interval);
            return false;
        };
        let threshold = (average * 3).max(average + Duration::from_millis(150));
        if interval > threshold {
            self.freezes += 1;
            self.frozen += interval;
            return true;
        }
        self.average = Some((average * 29 + interval) / 30);
        false
    }

    /// Freezes so far.
    pub fn freezes(&self) -> u64 {
        self.freezes
    }

    /// Their total length.
    pub fn frozen(&self) -> Duration {
        self.frozen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_well_past_the_frame_interval_is_a_freeze_and_jitter_is_not() {
        let ms = Duration::from_millis;
        let mut meter = FreezeMeter::default();
        let mut t = 0;
        for _ in 0..30 {
            assert!(!meter.frame(ms(t)));
            t += 33;
        }
        // 60 ms late is jitter, not a freeze (threshold: 33 + 150 ms).
        t += 60;
        assert!(!meter.frame(ms(t)));
        // A 500 ms hole is one.
        t += 500;
        assert!(meter.frame(ms(t)));
        assert_eq!(meter.freezes(), 1);
        assert_eq!(meter.frozen(), ms(500));
    }
}
