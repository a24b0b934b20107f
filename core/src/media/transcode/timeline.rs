//! Output timestamps: continuous 20 ms steps from the first input pts, re-anchored when the
//! input jumps (see the rule in the [module docs](super)).

/// Duration of one Opus packet, in µs.
pub(super) const PACKET_DURATION_US: i64 = 20_000;

/// An input pts further than this from where the decoded audio says it should be starts a
/// new segment.
pub(super) const RESYNC_THRESHOLD_US: i64 = 100_000;

/// Where an access unit falls relative to the current segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// No segment yet (first access unit, or the first after a flush).
    Start,
    /// Within [`RESYNC_THRESHOLD_US`] of the expected pts.
    Continue,
    /// Too far from the expected pts (given, in µs): a new segment must start.
    Jump {
        /// Where the access unit should have been, in µs.
        expected_us: i64,
    },
}

/// A run of input audio with continuous timestamps.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// pts of its first access unit, in µs.
    start_us: i64,
    /// Input frames (samples per channel at the input rate) decoded in it so far.
    input_frames: u64,
    /// Opus packets stamped in it so far.
    packets: u64,
}

/// Tracks the input and output timelines of one stream.
#[derive(Debug)]
pub(super) struct Timeline {
    input_rate: u32,
    segment: Option<Segment>,
}

impl Timeline {
    /// A timeline for input at `input_rate` Hz (non-zero).
    pub(super) fn new(input_rate: u32) -> Self {
        Timeline {
            input_rate: input_rate.max(1),
            segment: None,
        }
    }

    /// Where the next access unit, stamped `pts_us`, falls.
    pub(super) fn place(&self, pts_us: i64) -> Placement {
        let Some(segment) = self.segment else {
            return Placement::Start;
        };
        let elapsed_us = i128::from(segment.input_frames) * 1_000_000 / i128::from(self.input_rate);
        let expected = i128::from(segment.start_us) + elapsed_us;
        if (i128::from(pts_us) - expected).abs() > i128::from(RESYNC_THRESHOLD_US) {
            Placement::Jump {
                expected_us: clamp_i64(expected),
            }
        } else {
            Placement::Continue
        }
    }

    /// Starts a new segment at `pts_us`.
    pub(super) fn start(&mut self, pts_us: i64) {
        self.segment = Some(Segment {
            start_us: pts_us,
            input_frames: 0,
            packets: 0,
        });
    }

    /// Ends the current segment: the next access unit starts a new one.
    pub(super) fn end(&mut self) {
        self.segment = None;
    }

    /// Records `frames` more decoded input frames in the current segment.
    pub(super) fn advance_input(&mut self, frames: u64) {
        if let Some(segment) = &mut self.segment {
            segment.input_frames = segment.input_frames.saturating_add(frames);
        }
    }

    /// The pts of the next Opus packet of the current segment: start + n × 20 ms.
    pub(super) fn next_packet_pts(&mut self) -> i64 {
        let Some(segment) = &mut self.segment else {
            return 0;
        };
        let offset = i128::from(segment.packets) * i128::from(PACKET_DURATION_US);
        segment.packets = segment.packets.saturating_add(1);
        clamp_i64(i128::from(segment.start_us) + offset)
    }
}

fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_step_by_20_ms_from_the_first_pts() {
        let mut timeline = Timeline::new(44_100);
        assert_eq!(timeline.place(5_000), Placement::Start);
        timeline.start(5_000);
        let pts: Vec<i64> = (0..3).map(|_| timeline.next_packet_pts()).collect();
        assert_eq!(pts, [5_000, 25_000, 45_000]);
    }

    #[test]
    fn jitter_is_tolerated_and_jumps_are_detected() {
        let mut timeline = Timeline::new(48_000);
        timeline.start(0);
        timeline.advance_input(48_000); // 1 s decoded: next expected at 1_000_000
        assert_eq!(timeline.place(1_000_000 + 100_000), Placement::Continue);
        assert_eq!(timeline.place(1_000_000 - 100_000), Placement::Continue);
        assert_eq!(
            timeline.place(1_000_000 + 100_001),
            Placement::Jump {
                expected_us: 1_000_000
            }
        );
        assert_eq!(
            timeline.place(0),
            Placement::Jump {
                expected_us: 1_000_000
            }
        );
        timeline.end();
        assert_eq!(timeline.place(0), Placement::Start);
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let mut timeline = Timeline::new(44_100);
        timeline.start(i64::MAX - 10);
        timeline.advance_input(u64::MAX);
        assert!(matches!(timeline.place(i64::MIN), Placement::Jump { .. }));
        timeline.next_packet_pts();
        assert_eq!(timeline.next_packet_pts(), i64::MAX);
    }
}
