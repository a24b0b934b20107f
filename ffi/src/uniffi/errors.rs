//! One error enum per area, as Swift `Error`s and Kotlin exceptions.
//!
//! A panic inside the library is not one of these: uniffi catches it at the boundary
//! and raises its own internal error (`InternalException` in Kotlin).

use streamhub::session::SessionError as CoreError;

use crate::runtime::RuntimeError;
use crate::session::OpenError;

/// Creating or stopping a session.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SessionError {
    /// The options cannot work (a URL that does not parse, a chat without a room).
    #[error("invalid options: {detail}")]
    InvalidOptions {
        /// What is wrong.
        detail: String,
    },
    /// `shutdown()` was called; the library cannot be used any more.
    #[error("the library was shut down")]
    ShutDown,
    /// Something failed inside the library.
    #[error("internal error: {detail}")]
    Internal {
        /// What.
        detail: String,
    },
}

/// Sending or receiving media.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum MediaError {
    /// The frame or configuration is not valid (the packetizer refused it).
    #[error("invalid media: {detail}")]
    InvalidMedia {
        /// What is wrong.
        detail: String,
    },
    /// Sending on a watch session, or receiving on a broadcast.
    #[error("{detail}")]
    WrongKind {
        /// Which method on which kind.
        detail: String,
    },
    /// The session has ended.
    #[error("the session has ended")]
    Ended,
    /// The session has failed.
    #[error("the session has failed: {reason}")]
    Failed {
        /// Why.
        reason: String,
    },
    /// `shutdown()` was called.
    #[error("the library was shut down")]
    ShutDown,
    /// Something failed inside the library.
    #[error("internal error: {detail}")]
    Internal {
        /// What.
        detail: String,
    },
}

/// Chat.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ChatError {
    /// The session has no chat room.
    #[error("chat is not available: {detail}")]
    Unavailable {
        /// Why.
        detail: String,
    },
    /// The message was refused (too long, empty, queue full, refused by the server).
    #[error("the message was refused: {detail}")]
    Refused {
        /// Why.
        detail: String,
    },
    /// The session has ended or failed.
    #[error("the session is over: {detail}")]
    SessionOver {
        /// How it ended.
        detail: String,
    },
    /// `shutdown()` was called.
    #[error("the library was shut down")]
    ShutDown,
}

/// Reading a media file.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FileError {
    /// The file cannot be read, or is not (valid) FLV.
    #[error("{detail}")]
    Unreadable {
        /// What went wrong, with the byte offset where it applies.
        detail: String,
    },
}

impl From<RuntimeError> for SessionError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::ShutDown => SessionError::ShutDown,
            other => SessionError::Internal {
                detail: other.to_string(),
            },
        }
    }
}

impl From<OpenError> for SessionError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Runtime(error) => error.into(),
            OpenError::Session(CoreError::InvalidConfig(detail)) => {
                SessionError::InvalidOptions { detail }
            }
            OpenError::Session(other) => SessionError::InvalidOptions {
                detail: other.to_string(),
            },
        }
    }
}

impl From<RuntimeError> for MediaError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::ShutDown => MediaError::ShutDown,
            other => MediaError::Internal {
                detail: other.to_string(),
            },
        }
    }
}

impl From<CoreError> for MediaError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::WrongKind { .. } => MediaError::WrongKind {
                detail: error.to_string(),
            },
            CoreError::Ended => MediaError::Ended,
            CoreError::Failed(reason) => MediaError::Failed {
                reason: reason.to_string(),
            },
            CoreError::Rtmp { .. } | CoreError::InvalidConfig(_) => MediaError::InvalidMedia {
                detail: error.to_string(),
            },
            other => MediaError::Internal {
                detail: other.to_string(),
            },
        }
    }
}

impl From<RuntimeError> for ChatError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::ShutDown => ChatError::ShutDown,
            other => ChatError::Refused {
                detail: other.to_string(),
            },
        }
    }
}

impl From<CoreError> for ChatError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::ChatUnavailable(detail) => ChatError::Unavailable {
                detail: detail.to_string(),
            },
            CoreError::Ended | CoreError::Failed(_) => ChatError::SessionOver {
                detail: error.to_string(),
            },
            other => ChatError::Refused {
                detail: other.to_string(),
            },
        }
    }
}
