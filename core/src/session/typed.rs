//! Typed session handles for Rust apps: a [`BroadcastSession`] has the sending methods
//! and a [`WatchSession`] the frames, so that calling the other kind's methods does not
//! compile:
//!
//! ```compile_fail
//! # async fn f(watch: streamhub::session::WatchSession, frame: streamhub::media::VideoFrame) {
//! watch.send_video(&frame).await; // a watcher has no send_video
//! # }
//! ```
//!
//! Both wrap a [`StreamSession`], the one handle the C ABI, Kotlin and Swift share (one
//! object with one lifecycle, event queue, chat and stats; a method of the other kind
//! returns [`SessionError::WrongKind`] there). [`BroadcastSession::session`] and
//! [`WatchSession::session`] lend it for code that serves both kinds.

use std::time::Duration;

#[cfg(feature = "whep")]
use futures_util::StreamExt;

use crate::media::{AudioFrame, AudioSpecificConfig, AvcDecoderConfig, VideoFrame};
#[cfg(feature = "whep")]
use crate::whep::MediaFrame;

#[cfg(feature = "whep")]
use super::WatchConfig;
use super::{
    BroadcastConfig, SessionError, SessionEvents, SessionState, SessionStats, StreamSession,
};

/// A session that goes live (RTMP publish); see [`StreamSession::broadcast`].
#[derive(Debug, Clone)]
pub struct BroadcastSession(StreamSession);

/// A session that watches (WHEP playback); see [`StreamSession::watch`].
#[cfg(feature = "whep")]
#[derive(Debug, Clone)]
pub struct WatchSession(StreamSession);

/// The methods both kinds have, each passed to the [`StreamSession`].
macro_rules! common_methods {
    () => {
        /// The state now.
        pub fn state(&self) -> SessionState {
            self.0.state()
        }

        /// Waits until the state satisfies `condition` or `within` passes; returns the
        /// state then.
        pub async fn wait_for_state(
            &self,
            within: Duration,
            condition: impl Fn(&SessionState) -> bool,
        ) -> SessionState {
            self.0.wait_for_state(within, condition).await
        }

        /// A snapshot of the counters.
        pub fn stats(&self) -> SessionStats {
            self.0.stats()
        }

        /// Queues a chat message for the session's room; see
        /// [`StreamSession::send_chat`].
        pub async fn send_chat(&self, text: &str) -> Result<String, SessionError> {
            self.0.send_chat(text).await
        }

        /// Ends the session and returns the final stats; see [`StreamSession::stop`].
        pub async fn stop(&self) -> SessionStats {
            self.0.stop().await
        }

        /// The kind-neutral handle, for code that serves both kinds.
        pub fn session(&self) -> &StreamSession {
            &self.0
        }
    };
}

impl BroadcastSession {
    /// Goes live; see [`StreamSession::broadcast`].
    pub fn start(config: BroadcastConfig) -> Result<(Self, SessionEvents), SessionError> {
        StreamSession::broadcast(config).map(|(session, events)| (Self(session), events))
    }

    common_methods!();

    /// Sends one H.264 frame; see [`StreamSession::send_video`].
    pub async fn send_video(&self, frame: &VideoFrame) -> Result<(), SessionError> {
        self.0.send_video(frame).await
    }

    /// Sends one AAC frame; see [`StreamSession::send_audio`].
    pub async fn send_audio(&self, frame: &AudioFrame) -> Result<(), SessionError> {
        self.0.send_audio(frame).await
    }

    /// Sets the H.264 configuration; see [`StreamSession::set_video_config`].
    pub fn set_video_config(&self, config: AvcDecoderConfig) -> Result<(), SessionError> {
        self.0.set_video_config(config)
    }

    /// Sets the AAC configuration; see [`StreamSession::set_audio_config`].
    pub fn set_audio_config(&self, config: AudioSpecificConfig) -> Result<(), SessionError> {
        self.0.set_audio_config(config)
    }

    /// The app's encoder now runs at `bps`; see [`StreamSession::set_encoder_bitrate`].
    pub fn set_encoder_bitrate(&self, bps: u64) -> Result<(), SessionError> {
        self.0.set_encoder_bitrate(bps)
    }
}

#[cfg(feature = "whep")]
impl WatchSession {
    /// Starts watching; see [`StreamSession::watch`].
    pub fn start(config: WatchConfig) -> Result<(Self, SessionEvents), SessionError> {
        StreamSession::watch(config).map(|(session, events)| (Self(session), events))
    }

    common_methods!();

    /// The next frame; see [`StreamSession::next_frame`].
    pub async fn next_frame(&self) -> Result<Option<MediaFrame>, SessionError> {
        self.0.next_frame().await
    }

    /// The frames as a [`futures_util::Stream`]; see [`StreamSession::frames`].
    pub fn frames(&self) -> impl futures_util::Stream<Item = MediaFrame> + Send + 'static {
        // A watch session always has frames: `frames` fails only on a broadcast.
        self.0.frames().map_or_else(
            |_| futures_util::stream::empty().left_stream(),
            |s| s.right_stream(),
        )
    }
}
