//! Publishing over a link slower than the stream: what to drop, and what bitrate to
//! recommend to the app's encoder. Pure state machines, fed by the publisher's driver
//! with what the socket delivered (see [`crate::net::link`]).
//!
//! # Waiting media
//!
//! Everything the decisions look at is *waiting media*: the time between the newest
//! message handed to the publisher and the oldest one the server has not acknowledged
//! yet — in the send queue, in the socket's buffer, or in flight. The socket's own
//! buffer is kept small (`TCP_NOTSENT_LOWAT`, 16 KiB by default), so the kernel cannot
//! hide seconds of media behind the queue, and acknowledged bytes come from `TCP_INFO`.
//!
//! # Modes
//!
//! [`CongestionPolicy::live`] (the default of stream sessions): `send_*` never waits;
//! video is dropped by the ladder of [`dropper`] once media waits too long.
//! [`CongestionPolicy::back_pressure`] (files, `streamhub publish` without
//! `--realtime`): nothing is dropped and `send_*` waits while the queue is full.

pub(crate) mod capacity;
pub(crate) mod dropper;
pub(crate) mod estimator;
#[cfg(test)]
mod simulation;

use std::time::Duration;

pub use capacity::CapacityFilter;
pub use dropper::{DropReason, Dropper, MessageClass, Verdict};
pub use estimator::{BitrateEstimator, EstimatorConfig, LinkSample};

/// How the publisher treats media that waits too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongestionPolicy {
    /// Live: `send_*` never waits and video is dropped past the thresholds. Otherwise
    /// back-pressure: `send_*` waits while the queue is full, and nothing is dropped.
    pub live: bool,
    /// Waiting media past which disposable video (non-reference frames) is dropped
    /// (700 ms).
    pub drop_disposable_at: Duration,
    /// Waiting media past which all video is dropped until a keyframe (900 ms).
    pub drop_until_keyframe_at: Duration,
    /// The hard cap: the video still queued is dropped too (whole groups of pictures)
    /// (1 s: with the glass-to-glass path after it, the delay stays under 1.5 s even when
    /// the link was measured 20 % faster than it is). Audio is never dropped.
    pub drop_gops_at: Duration,
    /// Unsent bytes the kernel may hold for the socket (`TCP_NOTSENT_LOWAT`; 16 KiB).
    pub socket_unsent_limit: u32,
}

impl CongestionPolicy {
    /// Drop video by priority, never wait (the default for stream sessions).
    pub fn live() -> Self {
        CongestionPolicy {
            live: true,
            drop_disposable_at: Duration::from_millis(700),
            drop_until_keyframe_at: Duration::from_millis(900),
            drop_gops_at: Duration::from_millis(1000),
            socket_unsent_limit: 16 * 1024,
        }
    }

    /// Live, with the three thresholds given (checked by [`Self::check`]).
    pub fn live_with(
        drop_disposable_at: Duration,
        drop_until_keyframe_at: Duration,
        drop_gops_at: Duration,
    ) -> Self {
        CongestionPolicy {
            drop_disposable_at,
            drop_until_keyframe_at,
            drop_gops_at,
            ..CongestionPolicy::live()
        }
    }

    /// Whether the policy can work: in live mode the thresholds are above zero and in
    /// order (disposable ≤ until-keyframe ≤ GOPs); the socket limit is at least 1 KiB.
    pub fn check(&self) -> Result<(), String> {
        if self.socket_unsent_limit < 1024 {
            return Err(format!(
                "socket_unsent_limit {} is below 1024 bytes",
                self.socket_unsent_limit
            ));
        }
        if !self.live {
            return Ok(());
        }
        let (a, b, c) = (
            self.drop_disposable_at,
            self.drop_until_keyframe_at,
            self.drop_gops_at,
        );
        if a.is_zero() || a > b || b > c {
            return Err(format!(
                "congestion thresholds must be above zero and in order \
                 (disposable {a:?} <= until keyframe {b:?} <= GOPs {c:?})"
            ));
        }
        Ok(())
    }

    /// Never drop; `send_*` waits while the queue is full (files).
    pub fn back_pressure() -> Self {
        CongestionPolicy {
            live: false,
            drop_disposable_at: Duration::MAX,
            drop_until_keyframe_at: Duration::MAX,
            drop_gops_at: Duration::MAX,
            ..CongestionPolicy::live()
        }
    }
}

impl Default for CongestionPolicy {
    fn default() -> Self {
        CongestionPolicy::back_pressure()
    }
}

/// Video frames dropped, by reason. Audio is never dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Disposable frames dropped past the first threshold.
    pub disposable: u64,
    /// Frames dropped while waiting for a keyframe.
    pub until_keyframe: u64,
    /// Queued frames removed at the hard cap.
    pub gop: u64,
}

impl DropCounts {
    /// All video frames dropped.
    pub fn total(&self) -> u64 {
        self.disposable + self.until_keyframe + self.gop
    }

    pub(crate) fn count(&mut self, reason: DropReason, frames: u64) {
        match reason {
            DropReason::Disposable => self.disposable += frames,
            DropReason::UntilKeyframe => self.until_keyframe += frames,
            DropReason::Gop => self.gop += frames,
        }
    }
}

/// How the link is doing, as the publisher last measured it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CongestionReport {
    /// Media waiting to be delivered now.
    pub waiting: Duration,
    /// The longest wait seen since the stream went live.
    pub peak_waiting: Duration,
    /// Bits per second the server acknowledged over the last second.
    pub delivered_bps: u64,
    /// The video bitrate the app's encoder should use.
    pub recommended_bps: u64,
    /// Smoothed round-trip time, where the platform tells it.
    pub rtt: Option<Duration>,
    /// Video frames dropped so far.
    pub dropped: DropCounts,
}
