//! The rule every video depacketizer applies between assembling a frame and handing it
//! out: nothing until a keyframe, at the start and after a loss; that keyframe carries
//! the discontinuity flag when frames went out before the gap.

use bytes::Bytes;

use super::AssembledFrame;

/// Whether assembled frames may go out.
#[derive(Debug, Clone)]
pub(crate) struct KeyframeGate {
    /// Frames were lost, or none came yet: nothing goes out until a keyframe.
    awaiting: bool,
    /// At least one frame went out.
    delivered: bool,
}

impl Default for KeyframeGate {
    fn default() -> Self {
        KeyframeGate {
            awaiting: true,
            delivered: false,
        }
    }
}

impl KeyframeGate {
    /// Whether only a keyframe may go out now (the caller should ask for one).
    pub(crate) fn awaiting_keyframe(&self) -> bool {
        self.awaiting
    }

    /// A frame was lost: wait for the next keyframe.
    pub(crate) fn frame_lost(&mut self) {
        self.awaiting = true;
    }

    /// Whether a frame that is, or is not, a keyframe would go out now.
    pub(crate) fn admits(&self, keyframe: bool) -> bool {
        keyframe || !self.awaiting
    }

    /// Hands out a complete frame, or `None` for a frame other than a keyframe while
    /// one is awaited.
    pub(crate) fn pass(
        &mut self,
        data: Bytes,
        timestamp: u32,
        keyframe: bool,
    ) -> Option<AssembledFrame> {
        if !self.admits(keyframe) {
            return None;
        }
        // Only a gap after delivered frames is a discontinuity for the app.
        let discontinuity = std::mem::replace(&mut self.awaiting, false) && self.delivered;
        self.delivered = true;
        Some(AssembledFrame {
            data,
            timestamp,
            keyframe,
            discontinuity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_wait_for_a_keyframe_and_a_gap_after_delivery_is_flagged() {
        let mut gate = KeyframeGate::default();
        let frame = |gate: &mut KeyframeGate, keyframe| gate.pass(Bytes::new(), 0, keyframe);
        assert!(
            frame(&mut gate, false).is_none(),
            "nothing before a keyframe"
        );
        let first = frame(&mut gate, true).expect("the first keyframe");
        assert!(!first.discontinuity, "nothing went out before it");
        assert!(frame(&mut gate, false).is_some());
        gate.frame_lost();
        assert!(gate.awaiting_keyframe());
        assert!(frame(&mut gate, false).is_none());
        assert!(frame(&mut gate, true).expect("a keyframe").discontinuity);
    }
}
