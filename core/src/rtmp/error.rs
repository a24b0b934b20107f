//! The RTMP publisher's error type.

use std::io;
use std::time::Duration;

use crate::media::MediaError;

/// Everything that can end or refuse an RTMP publish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtmpError {
    /// The ingest URL could not be used.
    #[error("invalid RTMP URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The publish settings cannot work (for example congestion thresholds out of
    /// order).
    #[error("invalid publish configuration: {0}")]
    InvalidConfig(String),
    /// The host name did not resolve.
    #[error("could not resolve {host}: {source}")]
    Resolve {
        /// The host that was looked up.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The TCP connection could not be opened.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// `host:port` that was dialled.
        addr: String,
        /// The socket error.
        source: io::Error,
    },
    /// The TLS handshake failed (untrusted certificate, wrong name, protocol error).
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// The server name that was verified.
        host: String,
        /// The TLS error.
        source: io::Error,
    },
    /// The TLS configuration could not be built (e.g. an unreadable CA file).
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// A step did not finish in time.
    #[error("timed out after {after:?} during {stage}")]
    Timeout {
        /// The step that timed out.
        stage: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// The RTMP handshake failed.
    #[error("RTMP handshake failed: {0}")]
    Handshake(String),
    /// The server refused `connect` (wrong application, bad credentials), by an error
    /// reply or by closing the connection.
    #[error("connect refused by server: {code}: {description}")]
    ConnectRefused {
        /// The status code (`NetConnection.Connect.Rejected`, or `connection closed`).
        code: String,
        /// The server's description.
        description: String,
    },
    /// The server refused the publish (bad or in-use key), by an onStatus error or by
    /// closing the connection right after `publish` as nginx-rtmp does.
    #[error("publish refused by server: {code}: {description}")]
    PublishRefused {
        /// The status code (e.g. `NetStream.Publish.BadName`).
        code: String,
        /// The server's description.
        description: String,
    },
    /// The connection broke while the stream was live.
    #[error("connection lost while publishing: {reason}")]
    ConnectionLost {
        /// What was seen (reset, end of stream, onStatus error).
        reason: String,
    },
    /// The server sent bytes that are not valid RTMP.
    #[error("malformed data from server: {0}")]
    Protocol(String),
    /// A frame handed to the publisher could not be sent.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The publisher was already stopped or failed.
    #[error("publisher is closed")]
    Closed,
}

impl RtmpError {
    pub(crate) fn protocol(what: impl std::fmt::Display) -> Self {
        RtmpError::Protocol(what.to_string())
    }
}

impl From<crate::net::TlsConfigError> for RtmpError {
    fn from(error: crate::net::TlsConfigError) -> Self {
        RtmpError::TlsConfig(error.0)
    }
}
