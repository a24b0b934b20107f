//! Where a player's track loops put the frames they assemble.
//!
//! A [`super::Player`] alone keeps them in a queue of its own that
//! [`super::Player::next_frame`] reads. A watch session gives each of its players a
//! sink into the session's one frame queue instead, so that a frame crosses one queue
//! on its way to the app, and is dropped (and counted) in one place when the app does
//! not keep up.

use tokio::sync::mpsc;

use super::MediaFrame;

/// Takes the frames of a playback as they are assembled, in order per track.
pub(crate) trait FrameSink: Send + Sync + 'static {
    /// Takes a frame without waiting; false when there was no room and it was dropped
    /// (the app is not keeping up: dropping beats buffering without bound).
    fn offer(&self, frame: MediaFrame) -> bool;
}

impl FrameSink for mpsc::Sender<MediaFrame> {
    fn offer(&self, frame: MediaFrame) -> bool {
        self.try_send(frame).is_ok()
    }
}
