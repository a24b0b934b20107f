//! The WHEP player's error type.

/// Everything that can refuse or end a WHEP playback.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WhepError {
    /// The WHEP URL could not be used.
    #[error("invalid WHEP URL: {0}")]
    InvalidUrl(String),
    /// The request could not be made (connection refused, TLS, DNS).
    #[error("WHEP request failed: {0}")]
    Http(String),
    /// The server answered with an error status.
    #[error("WHEP server answered {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the problem body.
        body: String,
    },
    /// The server's reply broke the protocol (no Location, bad SDP answer).
    #[error("WHEP protocol error: {0}")]
    Protocol(String),
    /// A step did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A connection that worked was lost: the peer connection failed or closed, or
    /// media stopped coming.
    #[error("{0}")]
    ConnectionLost(String),
    /// Connected, but the media did not come: what was seen instead (see
    /// [`super::silence`]).
    #[error("no media: {0}")]
    NoMedia(String),
    /// The WebRTC stack failed.
    #[error("WebRTC: {0}")]
    WebRtc(String),
}
