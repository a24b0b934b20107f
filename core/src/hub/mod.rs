//! The hub: a local development server in the spirit of MediaMTX or
//! `livekit-server --dev`, so that apps and tests have a real counterpart on one machine.
//!
//! - RTMP ingest ([`ingest`]): publishers go live at `rtmp://ADDR/APP/KEY`; the key is
//!   the stream name unless [`StreamKeys`] says otherwise; a second publisher of a live
//!   stream is refused.
//! - WHEP egress ([`egress`]) at `POST /whep/{name}`: many viewers per stream, H.264
//!   passed through (SPS/PPS before each keyframe; a new viewer starts from the cached
//!   group of pictures), AAC transcoded to Opus (feature `transcode`), Opus passed
//!   through.
//! - Chat at `/chat` ([`crate::chat::server`]); each stream's room counts its WHEP
//!   viewers in its audience.
//! - `GET /api/streams`, `POST /api/token` ([`api`]) and the development page at `/`
//!   ([`page`]).
//!
//! Safe by default (`docs/auth.md`): dev tokens only on a loopback HTTP listener, guest
//! names only, for rooms that exist; no CORS unless [`HubConfig::cors_origins`] allows
//! origins; watch tokens for WHEP when [`HubConfig::watch_tokens`] asks for them; stream
//! keys never in logs or `/api/streams`.
//!
//! ```no_run
//! use streamhub::hub::{Hub, HubConfig};
//!
//! # async fn run() -> Result<(), streamhub::hub::HubError> {
//! let hub = Hub::new(HubConfig::with_secret(b"dev secret"));
//! let http = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let rtmp = tokio::net::TcpListener::bind("127.0.0.1:1935").await?;
//! hub.serve(http, rtmp).await
//! # }
//! ```

pub(crate) mod api;
pub(crate) mod cors;
pub(crate) mod egress;
pub(crate) mod ingest;
pub mod keys;
pub(crate) mod limits;
pub(crate) mod page;
pub(crate) mod registry;
pub(crate) mod stream;
mod tls;
pub(crate) mod watch_tokens;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::chat::server::{ChatEngine, ChatServer, ChatServerConfig};
use api::DevTokens;
pub use api::{StreamList, StreamSummary};
pub use cors::CorsOrigins;
pub use keys::{KeyRefusal, StreamKeys};
pub use limits::HubLimits;
use registry::Registry;
use stream::LiveStream;
pub use tls::HubTls;
pub use watch_tokens::WatchTokens;

/// A hub failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// A listener or socket failed.
    #[error("hub I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration is unusable.
    #[error("hub configuration: {0}")]
    Config(String),
    /// An RTMP publisher's connection failed.
    #[error("RTMP ingest: {0}")]
    Rtmp(String),
    /// A viewer's offer cannot be answered.
    #[error("bad WHEP offer: {0}")]
    BadOffer(String),
    /// The WebRTC stack failed.
    #[error("WebRTC: {0}")]
    WebRtc(String),
}

/// How a hub behaves.
#[derive(Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// The chat server's settings (token secret, limits).
    pub chat: ChatServerConfig,
    /// Keyed streams; every other name is open.
    pub keys: StreamKeys,
    /// The address viewers' media sockets bind to; `None` uses the HTTP listener's IP
    /// (127.0.0.1 when that is unspecified).
    pub webrtc_ip: Option<IpAddr>,
    /// Opus bitrate for transcoded AAC, in bits per second.
    pub opus_bitrate: u32,
    /// Whether `POST /api/token` hands out guest tokens (for the development page). Even
    /// when true, it only does on a loopback HTTP listener (`403` otherwise).
    pub dev_tokens: bool,
    /// The other origins whose pages may read the API and WHEP answers; by default none
    /// (the hub's own page only).
    pub cors_origins: CorsOrigins,
    /// The streams whose WHEP viewers need a token for them; by default none.
    pub watch_tokens: WatchTokens,
    /// Where chat rooms are decided; `None`: in this process
    /// ([`MemoryEngine`](crate::chat::server::MemoryEngine)). The
    /// Redis engine lets several hubs serve one set of rooms.
    pub chat_engine: Option<Arc<dyn ChatEngine>>,
    /// Limits against abuse (connections per address, sizes, deadlines).
    pub limits: HubLimits,
}

impl HubConfig {
    /// Defaults with this chat token secret: open stream names, 64 kbit/s Opus, dev
    /// tokens on (on a loopback listener), no CORS, no watch tokens.
    pub fn with_secret(secret: &[u8]) -> Self {
        HubConfig {
            chat: ChatServerConfig::with_secret(secret),
            keys: StreamKeys::default(),
            webrtc_ip: None,
            opus_bitrate: 64_000,
            dev_tokens: true,
            cors_origins: CorsOrigins::same_origin(),
            watch_tokens: WatchTokens::Off,
            chat_engine: None,
            limits: HubLimits::default(),
        }
    }
}

/// What the hub's tasks share.
pub(crate) struct HubShared {
    pub(crate) registry: Registry,
    pub(crate) keys: StreamKeys,
    pub(crate) chat: ChatServer,
    pub(crate) sessions: egress::Sessions,
    pub(crate) opus_bitrate: u32,
    pub(crate) dev_tokens: DevTokens,
    pub(crate) watch_tokens: WatchTokens,
    pub(crate) webrtc_ip: IpAddr,
    pub(crate) http_addr: SocketAddr,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) limits: HubLimits,
    pub(crate) whep_per_ip: crate::net::PerIp,
}

impl HubShared {
    /// The stream's audience changed: the chat room hears of it.
    pub(crate) fn viewers_changed(&self, stream: &LiveStream) {
        let (anonymous, named) = stream.audience();
        self.chat
            .set_stream_audience(stream.name(), anonymous, named);
    }

    pub(crate) fn summaries(&self) -> Vec<StreamSummary> {
        self.registry
            .list()
            .iter()
            .map(|stream| {
                let room = self.chat.room(stream.name());
                StreamSummary::of(stream, room.as_ref())
            })
            .collect()
    }
}

/// Resolves once a stop flag turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The sockets a hub serves.
#[derive(Debug)]
pub struct HubListeners {
    /// HTTP: WHEP, the API, the page and chat.
    pub http: TcpListener,
    /// RTMP ingest.
    pub rtmp: TcpListener,
    /// RTMPS ingest: a listener and the certificate it presents.
    pub rtmps: Option<(TcpListener, HubTls)>,
}

/// A running hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    config: HubConfig,
    chat: ChatServer,
    stop: watch::Sender<bool>,
    shared: Arc<watch::Sender<Option<Arc<HubShared>>>>,
}

impl Hub {
    /// A hub that is not serving yet.
    pub fn new(mut config: HubConfig) -> Self {
        config.chat.per_ip = config.limits.chat_per_ip;
        config.chat.limit_loopback = config.limits.limit_loopback;
        Hub {
            chat: match &config.chat_engine {
                Some(engine) => ChatServer::with_engine(config.chat.clone(), engine.clone()),
                None => ChatServer::new(config.chat.clone()),
            },
            config,
            stop: watch::Sender::new(false),
            shared: Arc::new(watch::Sender::new(None)),
        }
    }

    /// The chat server (tokens, rooms).
    pub fn chat(&self) -> &ChatServer {
        &self.chat
    }

    /// Live streams now (empty before [`Hub::serve`]).
    pub fn streams(&self) -> Vec<StreamSummary> {
        self.shared
            .borrow()
            .as_ref()
            .map(|shared| shared.summaries())
            .unwrap_or_default()
    }

    /// Serves HTTP (WHEP, API, page, chat) and RTMP until [`Hub::shutdown`].
    pub async fn serve(&self, http: TcpListener, rtmp: TcpListener) -> Result<(), HubError> {
        self.serve_all(HubListeners {
            http,
            rtmp,
            rtmps: None,
        })
        .await
    }

    /// Serves every listener (HTTP, RTMP and optionally RTMPS) until [`Hub::shutdown`].
    pub async fn serve_all(&self, listeners: HubListeners) -> Result<(), HubError> {
        let HubListeners { http, rtmp, rtmps } = listeners;
        let http_addr = http.local_addr()?;
        let webrtc_ip = self
            .config
            .webrtc_ip
            .unwrap_or(if http_addr.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                http_addr.ip()
            });
        let shared = Arc::new(HubShared {
            registry: Registry::default(),
            keys: self.config.keys.clone(),
            chat: self.chat.clone(),
            sessions: egress::Sessions::default(),
            opus_bitrate: self.config.opus_bitrate,
            dev_tokens: DevTokens::decide(self.config.dev_tokens, http_addr.ip()),
            watch_tokens: self.config.watch_tokens.clone(),
            webrtc_ip,
            http_addr,
            stop: self.stop.clone(),
            limits: self.config.limits.clone(),
            whep_per_ip: crate::net::PerIp::new(
                self.config.limits.whep_per_ip,
                self.config.limits.limit_loopback,
            ),
        });
        self.shared.send_replace(Some(shared.clone()));
        if shared.dev_tokens == DevTokens::NotLoopback {
            info!(http = %http_addr, "dev tokens off: the HTTP listener is not on loopback");
        }
        let cors = Arc::new(self.config.cors_origins.clone());
        let routes = Router::new()
            .route("/", get(page::index))
            .route("/app.js", get(page::app_js))
            .route("/style.css", get(page::style_css))
            .route("/api/streams", get(api::streams))
            .route("/api/token", post(api::token).options(api::token_options))
            .route("/whep/{name}", post(egress::post).options(egress::options))
            .route(
                "/whep/{name}/{id}",
                axum::routing::delete(egress::delete)
                    .patch(egress::patch)
                    .options(egress::options),
            )
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(cors, cors::layer));
        let limits = &self.config.limits;
        let rtmp_per_ip = crate::net::PerIp::new(limits.rtmp_per_ip, limits.limit_loopback);
        let ingest = tokio::spawn(ingest::serve(
            rtmp,
            shared.clone(),
            rtmp_per_ip.clone(),
            None,
        ));
        let ingest_tls = rtmps.map(|(listener, tls)| {
            tokio::spawn(ingest::serve(
                listener,
                shared.clone(),
                rtmp_per_ip,
                Some(tls.acceptor()),
            ))
        });
        let http_limits = crate::net::http::HttpLimits {
            per_ip: limits.http_per_ip,
            limit_loopback: limits.limit_loopback,
            header_timeout: limits.http_header_timeout,
            request_timeout: limits.http_request_timeout,
        };
        let served = self.chat.serve_limited(http, routes, http_limits).await;
        shared.sessions.stop_all();
        ingest.abort();
        if let Some(task) = ingest_tls {
            task.abort();
        }
        served.map_err(HubError::Io)
    }

    /// Stops the hub: viewers are disconnected, chat clients are told to come back after
    /// `retry_after`, publishers are dropped; waits up to `within` for chat to close.
    pub async fn shutdown(&self, retry_after: Duration, within: Duration) {
        self.stop.send_replace(true);
        if let Some(shared) = self.shared.borrow().as_ref() {
            shared.sessions.stop_all();
        }
        self.chat.shutdown(retry_after, within).await;
    }
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `keys` shows stream names only; the chat config hides its secret.
        f.debug_struct("HubConfig")
            .field("chat", &self.chat)
            .field("keys", &self.keys)
            .field("webrtc_ip", &self.webrtc_ip)
            .field("opus_bitrate", &self.opus_bitrate)
            .field("dev_tokens", &self.dev_tokens)
            .field("chat_engine", &self.chat_engine.as_ref().map(|_| "custom"))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
