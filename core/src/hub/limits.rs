//! What one stranger may make the hub hold: connections, sessions, sizes and time.
//! Every limit has a default fit for a hub on the internet; `streamhub hub` exposes
//! them as flags and `docs/security.md` explains them.

use std::time::Duration;

use crate::rtmp::chunk_reader::ReaderLimits;

/// The hub's limits against abuse.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HubLimits {
    /// RTMP connections from one IP address at once (8).
    pub rtmp_per_ip: usize,
    /// HTTP connections (WHEP signalling, API, page, chat WebSockets) from one IP
    /// address at once (256).
    pub http_per_ip: usize,
    /// Chat WebSockets from one IP address at once (64).
    pub chat_per_ip: usize,
    /// WHEP sessions (viewers) from one IP address at once (16).
    pub whep_per_ip: usize,
    /// WHEP sessions of one stream at once (500).
    pub whep_per_stream: usize,
    /// Whether the per-IP limits also count loopback peers. Off by default: a reverse
    /// proxy on the same host makes every visitor 127.0.0.1, and must limit them itself.
    pub limit_loopback: bool,
    /// Longest RTMP message a publisher may send, in bytes (8 MiB).
    pub rtmp_max_message: usize,
    /// Largest SDP offer or trickle body accepted by WHEP, in bytes (64 KiB).
    pub sdp_max_bytes: usize,
    /// Time from an RTMP connection to its accepted `publish` (10 s).
    pub publish_deadline: Duration,
    /// Longest silence of a live publisher (20 s).
    pub idle_timeout: Duration,
    /// Time allowed for an HTTP request's headers to arrive (10 s).
    pub http_header_timeout: Duration,
    /// Time allowed for a whole HTTP request, body and answer (WebSocket upgrades end
    /// with the upgrade) (20 s).
    pub http_request_timeout: Duration,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            rtmp_per_ip: 8,
            http_per_ip: 256,
            chat_per_ip: 64,
            whep_per_ip: 16,
            whep_per_stream: 500,
            limit_loopback: false,
            rtmp_max_message: 8 << 20,
            sdp_max_bytes: 64 << 10,
            publish_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(20),
            http_header_timeout: Duration::from_secs(10),
            http_request_timeout: Duration::from_secs(20),
        }
    }
}

impl HubLimits {
    /// The chunk reader's limits for a publisher.
    pub(crate) fn rtmp_reader(&self) -> ReaderLimits {
        ReaderLimits {
            max_message_len: self.rtmp_max_message,
            max_buffered: self.rtmp_max_message.saturating_mul(2),
            ..ReaderLimits::default()
        }
    }
}
