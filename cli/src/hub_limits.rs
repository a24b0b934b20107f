//! `streamhub hub` flags for its limits against abuse and its RTMPS listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use streamhub::hub::{HubLimits, HubTls};

/// Limits against abuse (docs/security.md explains each).
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// RTMP connections from one IP address at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    rtmp_per_ip: usize,
    /// HTTP connections (WHEP signalling, API, page, chat) from one IP address at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    http_per_ip: usize,
    /// Chat WebSockets from one IP address at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    chat_per_ip: usize,
    /// WHEP viewers from one IP address at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    whep_per_ip: usize,
    /// WHEP viewers of one stream at once.
    #[arg(long, default_value_t = 500, value_name = "N")]
    whep_per_stream: usize,
    /// Apply the per-IP limits to loopback peers too (off: a reverse proxy on this host
    /// makes every visitor 127.0.0.1 and must limit them itself).
    #[arg(long)]
    limit_loopback: bool,
    /// Longest RTMP message a publisher may send, in bytes.
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES")]
    rtmp_max_message: usize,
    /// Largest WHEP offer or trickle body, in bytes.
    #[arg(long, default_value_t = 64 << 10, value_name = "BYTES")]
    sdp_max_bytes: usize,
    /// Time from an RTMP connection to its accepted publish, in ms.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    publish_deadline_ms: u64,
    /// Time allowed for an HTTP request's headers, in ms.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    http_header_timeout_ms: u64,
    /// Most chat rooms at once; joining a new room past it is refused.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_rooms: usize,
    /// An empty chat room is forgotten after this long without members, in ms.
    #[arg(long, default_value_t = 300_000, value_name = "MS")]
    room_idle_ms: u64,
}

impl LimitArgs {
    /// The hub's limits from the flags.
    pub fn hub_limits(&self) -> HubLimits {
        let mut limits = HubLimits::default();
        limits.rtmp_per_ip = self.rtmp_per_ip.max(1);
        limits.http_per_ip = self.http_per_ip.max(1);
        limits.chat_per_ip = self.chat_per_ip.max(1);
        limits.whep_per_ip = self.whep_per_ip.max(1);
        limits.whep_per_stream = self.whep_per_stream.max(1);
        limits.limit_loopback = self.limit_loopback;
        limits.rtmp_max_message = self.rtmp_max_message.clamp(64 << 10, 0xff_ffff);
        limits.sdp_max_bytes = self.sdp_max_bytes.max(4096);
        limits.publish_deadline = Duration::from_millis(self.publish_deadline_ms.max(100));
        limits.http_header_timeout = Duration::from_millis(self.http_header_timeout_ms.max(100));
        limits
    }

    /// Most chat rooms at once.
    pub fn max_rooms(&self) -> usize {
        self.max_rooms.max(1)
    }

    /// How long an empty room is kept.
    pub fn room_idle(&self) -> Duration {
        Duration::from_millis(self.room_idle_ms)
    }
}

/// The RTMPS listener.
#[derive(Debug, Args)]
pub struct RtmpsArgs {
    /// Address for RTMPS publishers (rtmps://ADDR/live/KEY); needs --tls-cert and
    /// --tls-key.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub rtmps: Option<SocketAddr>,
    /// PEM certificate chain (leaf first) the RTMPS listener presents.
    #[arg(long, value_name = "FILE", requires = "rtmps")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, value_name = "FILE", requires = "rtmps")]
    tls_key: Option<PathBuf>,
}

impl RtmpsArgs {
    /// The certificate, when --rtmps is given.
    pub fn tls(&self) -> Result<Option<HubTls>, String> {
        match (&self.rtmps, &self.tls_cert, &self.tls_key) {
            (Some(_), Some(cert), Some(key)) => HubTls::from_pem_files(cert, key)
                .map(Some)
                .map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    }
}
