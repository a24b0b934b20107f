//! The session's error type.

use crate::chat::ChatError;
use crate::rtmp::RtmpError;
#[cfg(feature = "whep")]
use crate::whep::WhepError;

use super::FailReason;

/// Everything a [`super::StreamSession`] can report: the failures of the parts it
/// composes, with what the session was doing, and its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The configuration cannot work (checked when the session is created).
    #[error("invalid session configuration: {0}")]
    InvalidConfig(String),
    /// The RTMP publish failed or refused a frame.
    #[error("{context}: {source}")]
    Rtmp {
        /// What the session was doing.
        context: &'static str,
        /// The publisher's error.
        source: RtmpError,
    },
    /// The WHEP playback failed.
    #[cfg(feature = "whep")]
    #[error("{context}: {source}")]
    Whep {
        /// What the session was doing.
        context: &'static str,
        /// The player's error.
        source: WhepError,
    },
    /// The chat failed (never fatal for the session).
    #[error("{context}: {source}")]
    Chat {
        /// What the session was doing.
        context: &'static str,
        /// The chat client's error.
        source: ChatError,
    },
    /// The session has no chat (none configured, or it is not connected yet).
    #[error("chat is not available: {0}")]
    ChatUnavailable(&'static str),
    /// The method belongs to the other kind of session (e.g. `send_video` on a watch).
    #[error("{method} is not available on a {kind} session")]
    WrongKind {
        /// The method called.
        method: &'static str,
        /// `broadcast` or `watch`.
        kind: &'static str,
    },
    /// No tokio runtime to run the session on.
    #[error("no tokio runtime: create the session from within one")]
    NoRuntime,
    /// The session has ended (stopped by the app).
    #[error("the session has ended")]
    Ended,
    /// The session has failed.
    #[error("the session has failed: {0}")]
    Failed(FailReason),
}

impl SessionError {
    pub(crate) fn rtmp(context: &'static str) -> impl FnOnce(RtmpError) -> SessionError {
        move |source| SessionError::Rtmp { context, source }
    }

    #[cfg(feature = "whep")]
    pub(crate) fn whep(context: &'static str) -> impl FnOnce(WhepError) -> SessionError {
        move |source| SessionError::Whep { context, source }
    }

    #[cfg(feature = "chat")]
    pub(crate) fn chat(context: &'static str) -> impl FnOnce(ChatError) -> SessionError {
        move |source| SessionError::Chat { context, source }
    }
}
