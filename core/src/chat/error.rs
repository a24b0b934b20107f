//! The chat client's error type.

use crate::chat::protocol::ErrorBody;

/// Everything that can refuse or end a chat operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The chat URL could not be used.
    #[error("invalid chat URL: {0}")]
    InvalidUrl(String),
    /// The connection could not be made (refused, DNS, TLS, WebSocket upgrade).
    #[error("connecting to {addr}: {reason}")]
    Connect {
        /// Where.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The server does not speak this protocol version.
    #[error("the server is not a streamhub.chat.v1 server: {0}")]
    Incompatible(String),
    /// The token was refused for good (bad signature, malformed): retrying with it
    /// cannot help.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The app's token callback failed.
    #[error("getting a token: {0}")]
    Token(String),
    /// The server refused a command; `code`, `temporary` and `retry_after_ms` say why.
    #[error("the chat server refused: {0}")]
    Refused(ErrorBody),
    /// A step did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The offline send queue is full.
    #[error("the send queue is full ({0} messages wait for the server)")]
    QueueFull(usize),
    /// The command needs a live connection and there is none right now.
    #[error("not connected to the chat server")]
    NotConnected,
    /// The room was not joined through this client.
    #[error("room {0:?} is not joined")]
    NotJoined(String),
    /// The server broke the protocol.
    #[error("chat protocol error: {0}")]
    Protocol(String),
    /// The client was closed (or stopped after a terminal error).
    #[error("the chat client is closed")]
    Closed,
}

impl ChatError {
    /// The server's error object, when the server refused.
    pub fn refusal(&self) -> Option<&ErrorBody> {
        match self {
            ChatError::Refused(body) => Some(body),
            _ => None,
        }
    }
}
