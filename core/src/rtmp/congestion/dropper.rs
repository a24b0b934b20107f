//! Which video to drop when media waits too long: a pure decision per message, fed the
//! waiting delay (see [`super::CongestionPolicy`]).
//!
//! The ladder, from OBS's frame-dropping output (drop by priority once the send buffer
//! holds too much, resume at a keyframe):
//! 1. delay ≥ `drop_disposable_at` (700 ms): drop disposable video (frames no other frame
//!    refers to: non-reference B/P frames);
//! 2. delay ≥ `drop_until_keyframe_at` (900 ms): drop every video frame until the next
//!    keyframe, which is sent only once the delay is back under this threshold;
//! 3. delay ≥ `drop_gops_at` (the hard cap): the caller also removes the video still
//!    queued (whole groups of pictures), and video resumes at a keyframe.
//!
//! Audio, sequence headers and metadata are never dropped.

use super::CongestionPolicy;

/// What a message is, for the dropping decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageClass {
    /// Audio, sequence headers, metadata: never dropped.
    Protected,
    /// A video keyframe.
    Keyframe,
    /// A video frame other frames refer to.
    Reference,
    /// A video frame no other frame refers to.
    Disposable,
}

/// Why a video frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A disposable frame, past the first threshold.
    Disposable,
    /// Any video, waiting for a keyframe, past the second threshold.
    UntilKeyframe,
    /// Queued video removed at the hard cap (whole groups of pictures).
    Gop,
}

/// The decision for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Queue it.
    Send,
    /// Drop it.
    Drop(DropReason),
    /// Drop it and the video still queued: the hard cap was reached.
    DropQueuedVideo,
}

/// The dropping state: whether video is skipping to the next keyframe.
#[derive(Debug, Clone, Default)]
pub struct Dropper {
    skipping: bool,
}

impl Dropper {
    #[cfg(test)]
    /// True while video waits for a keyframe.
    pub fn skipping(&self) -> bool {
        self.skipping
    }

    /// Decides for a message of `class`, with `delay` ms of media waiting to be
    /// delivered (this message included).
    pub fn decide(
        &mut self,
        policy: &CongestionPolicy,
        class: MessageClass,
        delay_ms: u64,
    ) -> Verdict {
        let at = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if class == MessageClass::Protected {
            return Verdict::Send;
        }
        if delay_ms >= at(policy.drop_gops_at) {
            self.skipping = true;
            return Verdict::DropQueuedVideo;
        }
        let until_keyframe = delay_ms >= at(policy.drop_until_keyframe_at);
        if self.skipping {
            if class == MessageClass::Keyframe && !until_keyframe {
                self.skipping = false;
                return Verdict::Send;
            }
            return Verdict::Drop(DropReason::UntilKeyframe);
        }
        if until_keyframe {
            // A keyframe past the threshold starts the skipping too: it is as late as the
            // frames that would follow it.
            self.skipping = true;
            return Verdict::Drop(DropReason::UntilKeyframe);
        }
        if class == MessageClass::Disposable && delay_ms >= at(policy.drop_disposable_at) {
            return Verdict::Drop(DropReason::Disposable);
        }
        Verdict::Send
    }

    /// Video starts again at a keyframe (after the queued video was removed, or a new
    /// connection).
    pub fn skip_to_keyframe(&mut self) {
        self.skipping = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageClass::*;

    fn policy() -> CongestionPolicy {
        CongestionPolicy::live()
    }

    #[test]
    fn nothing_is_dropped_under_the_first_threshold() {
        let mut d = Dropper::default();
        for class in [Protected, Keyframe, Reference, Disposable] {
            assert_eq!(d.decide(&policy(), class, 699), Verdict::Send);
        }
    }

    #[test]
    fn disposable_frames_go_first() {
        let mut d = Dropper::default();
        assert_eq!(
            d.decide(&policy(), Disposable, 700),
            Verdict::Drop(DropReason::Disposable)
        );
        assert_eq!(d.decide(&policy(), Reference, 800), Verdict::Send);
        assert_eq!(d.decide(&policy(), Protected, 800), Verdict::Send);
        assert!(!d.skipping());
    }

    #[test]
    fn past_the_second_threshold_video_waits_for_a_keyframe_under_it() {
        let mut d = Dropper::default();
        assert_eq!(
            d.decide(&policy(), Reference, 900),
            Verdict::Drop(DropReason::UntilKeyframe)
        );
        // The delay falls, but only a keyframe restarts the video.
        assert_eq!(
            d.decide(&policy(), Reference, 100),
            Verdict::Drop(DropReason::UntilKeyframe)
        );
        assert_eq!(
            d.decide(&policy(), Disposable, 100),
            Verdict::Drop(DropReason::UntilKeyframe)
        );
        // A keyframe while still late is dropped too.
        assert_eq!(
            d.decide(&policy(), Keyframe, 950),
            Verdict::Drop(DropReason::UntilKeyframe)
        );
        assert_eq!(
            d.decide(&policy(), Protected, 950),
            Verdict::Send,
            "audio flows"
        );
        assert_eq!(d.decide(&policy(), Keyframe, 300), Verdict::Send);
        assert!(!d.skipping());
        assert_eq!(d.decide(&policy(), Reference, 300), Verdict::Send);
    }

    #[test]
    fn the_hard_cap_drops_queued_video_and_never_audio() {
        let mut d = Dropper::default();
        let cap = policy().drop_gops_at.as_millis() as u64;
        assert_eq!(
            d.decide(&policy(), Reference, cap),
            Verdict::DropQueuedVideo
        );
        assert_eq!(d.decide(&policy(), Protected, cap * 3), Verdict::Send);
        assert!(d.skipping());
        assert_eq!(d.decide(&policy(), Keyframe, 10), Verdict::Send);
    }

    #[test]
    fn back_pressure_mode_drops_nothing() {
        let mut d = Dropper::default();
        let policy = CongestionPolicy::back_pressure();
        for delay in [0, 700, 900, 10_000, 1_000_000] {
            for class in [Protected, Keyframe, Reference, Disposable] {
                assert_eq!(d.decide(&policy, class, delay), Verdict::Send);
            }
        }
    }
}
