//! The chat server: rooms with one sequencer each, a bounded history ring, JWT auth,
//! moderation, rate and size limits, served on an axum route at `/chat`.
//!
//! ```no_run
//! use streamhub::chat::server::{ChatServer, ChatServerConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = ChatServer::new(ChatServerConfig::with_secret(b"dev secret"));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server.serve(listener).await // ws://127.0.0.1:8080/chat
//! # }
//! ```
//!
//! Storage is behind [`ChatStore`]; the in-memory [`MemoryStore`] keeps the newest
//! messages of each room (1000 by default) for recovery and `history`.

mod connection;
pub(crate) mod dedup;
pub(crate) mod engine;
pub(crate) mod fuzzing;
pub(crate) mod outbound;
pub(crate) mod rate;
pub mod redis_engine;
pub(crate) mod room;
pub(crate) mod store;
pub mod token;

use std::collections::HashMap;
use std::net::SocketAddr;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tracing::warn;

use crate::net::PerIp;
pub use crate::net::http::HttpLimits;

use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::chat::protocol::{
    DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_TEXT_CHARS, RateInfo, SUBPROTOCOL,
};
pub(crate) use connection::valid_room_name;
pub use engine::{ChatEngine, MemoryEngine, Moderation, RoomRef};
pub use room::{Moderated, RoomSnapshot};
use room::{Room, RoomRules};
pub use store::{ChatStore, MemoryStore, RoomLog};
pub use token::{Claims, PublicKeys, TokenKeys};

pub(crate) use crate::sync::lock;

/// How the server behaves. [`ChatServerConfig::with_secret`] gives the protocol's defaults.
#[derive(Clone)]
#[non_exhaustive]
pub struct ChatServerConfig {
    /// HS256 secret for tokens.
    pub secret: Vec<u8>,
    /// Public keys that also check tokens (RS256, EdDSA), for tokens an app's auth
    /// service signs; none by default.
    pub public_keys: PublicKeys,
    /// Longest text, in Unicode scalar values (500).
    pub max_text_chars: usize,
    /// Largest frame read, in bytes (16 KiB).
    pub max_frame_bytes: usize,
    /// Messages per user per room per window (5 per 5 s).
    pub rate: RateInfo,
    /// Messages kept per room for recovery and history (1000).
    pub history: usize,
    /// How long a `client_msg_id` is remembered (10 min).
    pub dedup_ttl: Duration,
    /// Remembered `client_msg_id`s per room, at most (100 000).
    pub dedup_max: usize,
    /// Frames queued per connection before it counts as too slow (4096).
    pub outbound_frames: usize,
    /// Server pings (25 s).
    pub ping_interval: Duration,
    /// Time allowed for any frame after a ping (10 s).
    pub pong_timeout: Duration,
    /// Time allowed for `connect` after the upgrade (5 s).
    pub connect_timeout: Duration,
    /// `token_expiring` is pushed this long before expiry (30 s).
    pub token_warning: Duration,
    /// Rooms up to this size get join/leave events (100).
    pub small_room: usize,
    /// One typing event per user per this (3 s).
    pub typing_interval: Duration,
    /// Viewer counts are pushed at most this often (1 s).
    pub viewers_interval: Duration,
    /// Most rooms held at once (1000); a join that would make one more is refused
    /// (`forbidden`) unless an idle room can be forgotten.
    pub max_rooms: usize,
    /// A room with no member and no stream audience for this long is forgotten, with
    /// its history when the store keeps it in memory (5 min).
    pub room_idle: Duration,
    /// Chat connections from one IP address at once (64).
    pub per_ip: usize,
    /// Whether `per_ip` counts loopback peers too (off: a local reverse proxy makes
    /// every visitor 127.0.0.1).
    pub limit_loopback: bool,
}

impl ChatServerConfig {
    /// The protocol's defaults with this token secret.
    pub fn with_secret(secret: &[u8]) -> Self {
        ChatServerConfig {
            secret: secret.to_vec(),
            public_keys: PublicKeys::default(),
            max_text_chars: DEFAULT_MAX_TEXT_CHARS,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            rate: RateInfo {
                messages: 5,
                per_ms: 5000,
            },
            history: 1000,
            dedup_ttl: Duration::from_secs(600),
            dedup_max: 100_000,
            outbound_frames: 4096,
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            token_warning: Duration::from_secs(30),
            small_room: 100,
            typing_interval: Duration::from_secs(3),
            viewers_interval: Duration::from_secs(1),
            max_rooms: 1000,
            room_idle: Duration::from_secs(300),
            per_ip: 64,
            limit_loopback: false,
        }
    }
}

impl std::fmt::Debug for ChatServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatServerConfig")
            .field("secret", &"hidden")
            .field("public_keys", &self.public_keys)
            .field("max_text_chars", &self.max_text_chars)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("rate", &self.rate)
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

/// Bytes read from a connection's socket at a time. Commands are a few hundred bytes;
/// tungstenite keeps (and zero-fills) a buffer this size per connection: 8 KiB gave
/// 20.8 KiB of hub memory per idle joined connection in `benches/chat_load.sh 1000`,
/// 1 KiB gives 13.9 KiB. A larger frame takes several reads.
const READ_BUFFER_BYTES: usize = 1024;

pub(crate) struct Shared {
    config: Arc<ChatServerConfig>,
    keys: TokenKeys,
    rules: Arc<RoomRules>,
    store: Arc<dyn ChatStore>,
    engine: Arc<dyn ChatEngine>,
    rooms: Mutex<HashMap<String, Arc<Mutex<Room>>>>,
    next_conn: AtomicU64,
    active: AtomicUsize,
    shutdown: watch::Sender<Option<u64>>,
    ticker_started: AtomicBool,
    per_ip: PerIp,
}

struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn connection_started(&self) -> ActiveGuard<'_> {
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(&self.active)
    }

    /// The room, made if it does not exist and the server holds fewer than
    /// `max_rooms` (idle rooms are forgotten first to make space); `None` when full.
    fn room(&self, name: &str) -> Option<Arc<Mutex<Room>>> {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get(name) {
            return Some(room.clone());
        }
        if rooms.len() >= self.config.max_rooms {
            evict_idle(&mut rooms, self.config.room_idle);
            if rooms.len() >= self.config.max_rooms {
                return None;
            }
        }
        let room = Arc::new(Mutex::new(Room::new(
            name,
            self.rules.clone(),
            self.store.open_room(name),
        )));
        rooms.insert(name.to_string(), room.clone());
        Some(room)
    }

    /// Rooms held now.
    fn room_count(&self) -> usize {
        lock(&self.rooms).len()
    }

    fn existing_room(&self, name: &str) -> Option<Arc<Mutex<Room>>> {
        lock(&self.rooms).get(name).cloned()
    }
}

/// Forgets rooms idle for `idle` that nobody else holds (a connection between finding
/// a room and joining it holds it, and so does a follower applying to it), and prunes
/// per-user state in the rest.
fn evict_idle(rooms: &mut HashMap<String, Arc<Mutex<Room>>>, idle: Duration) {
    let now = tokio::time::Instant::now();
    let now_ms = crate::chat::protocol::unix_ms();
    rooms.retain(|_, room| {
        let mut guard = lock(room);
        if Arc::strong_count(room) == 1 && guard.is_idle(now, idle) {
            return false;
        }
        guard.prune(now, now_ms);
        true
    });
}

/// The chat server. Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct ChatServer {
    shared: Arc<Shared>,
}

impl ChatServer {
    /// A server keeping history in memory.
    pub fn new(config: ChatServerConfig) -> Self {
        let store = Arc::new(MemoryStore::new(config.history));
        ChatServer::with_store(config, store)
    }

    /// A server over another store.
    pub fn with_store(config: ChatServerConfig, store: Arc<dyn ChatStore>) -> Self {
        ChatServer::with_engine_and_store(config, Arc::new(MemoryEngine), store)
    }

    /// A server whose rooms are decided by `engine` (the Redis engine, shared by several
    /// nodes); the node's rings keep `config.history` messages.
    pub fn with_engine(config: ChatServerConfig, engine: Arc<dyn ChatEngine>) -> Self {
        let store = Arc::new(MemoryStore::new(config.history));
        ChatServer::with_engine_and_store(config, engine, store)
    }

    fn with_engine_and_store(
        config: ChatServerConfig,
        engine: Arc<dyn ChatEngine>,
        store: Arc<dyn ChatStore>,
    ) -> Self {
        let per_ip = PerIp::new(config.per_ip, config.limit_loopback);
        let rules = Arc::new(RoomRules {
            max_text_chars: config.max_text_chars,
            rate: config.rate,
            dedup_ttl: config.dedup_ttl,
            dedup_max: config.dedup_max,
            small_room: config.small_room,
            typing_interval: config.typing_interval,
        });
        ChatServer {
            shared: Arc::new(Shared {
                keys: TokenKeys::hs256(&config.secret).with_public_keys(config.public_keys.clone()),
                config: Arc::new(config),
                rules,
                store,
                engine,
                rooms: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(0),
                active: AtomicUsize::new(0),
                shutdown: watch::Sender::new(None),
                ticker_started: AtomicBool::new(false),
                per_ip,
            }),
        }
    }

    /// The token keys, to issue tokens for this server.
    pub fn keys(&self) -> &TokenKeys {
        &self.shared.keys
    }

    /// The `/chat` route, to merge into an app's router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/chat", get(upgrade))
            .with_state(self.shared.clone())
    }

    /// Serves `/chat` on a listener until [`ChatServer::shutdown`].
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_with(listener, Router::new()).await
    }

    /// Serves `/chat` and the app's own `routes` on one listener until
    /// [`ChatServer::shutdown`], with the default HTTP limits.
    pub async fn serve_with(
        &self,
        listener: tokio::net::TcpListener,
        routes: Router,
    ) -> std::io::Result<()> {
        self.serve_limited(listener, routes, HttpLimits::default())
            .await
    }

    /// [`ChatServer::serve_with`] with these HTTP limits (connections per address,
    /// header and request deadlines).
    pub async fn serve_limited(
        &self,
        listener: tokio::net::TcpListener,
        routes: Router,
        limits: HttpLimits,
    ) -> std::io::Result<()> {
        let mut stop = self.shared.shutdown.subscribe();
        let shutdown = async move {
            let _ = stop.wait_for(|retry| retry.is_some()).await;
        };
        crate::net::http::serve(listener, self.router().merge(routes), limits, shutdown).await
    }

    /// A room's counters, if the room exists.
    pub fn room(&self, name: &str) -> Option<RoomSnapshot> {
        self.shared
            .existing_room(name)
            .map(|room| lock(&room).snapshot())
    }

    /// Whether a member of a room here is known as `name` (user id or display name,
    /// ASCII case aside), guests aside: a guest may not take the name of a real user.
    pub fn real_user_named(&self, name: &str) -> bool {
        let rooms: Vec<_> = lock(&self.shared.rooms).values().cloned().collect();
        rooms
            .iter()
            .any(|room| lock(room).has_real_user_named(name))
    }

    /// Counts a stream's video viewers in its room's audience.
    pub fn set_stream_viewers(&self, room: &str, count: u64) {
        self.set_stream_audience(room, count, Vec::new());
    }

    /// Counts a stream's video viewers in its room's audience: `anonymous` ones and
    /// those known by user id, who are counted once even when they also chat.
    pub fn set_stream_audience(&self, room: &str, anonymous: u64, users: Vec<String>) {
        match self.shared.room(room) {
            Some(room) => lock(&room).set_stream_audience(anonymous, users),
            None => warn!(
                room,
                "the stream's room cannot be made: the room limit is reached"
            ),
        }
    }

    /// Rooms held now (live, or idle for less than `room_idle`).
    pub fn rooms(&self) -> usize {
        self.shared.room_count()
    }

    /// Per-user entries (rate, slow mode, timeouts, typing) held over all rooms; for
    /// tests and benchmarks of the pruning.
    #[doc(hidden)]
    pub fn per_user_entries(&self) -> usize {
        let rooms: Vec<_> = lock(&self.shared.rooms).values().cloned().collect();
        rooms.iter().map(|room| lock(room).per_user_entries()).sum()
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Tells every client to reconnect after `retry_after` (queued frames are sent
    /// first), stops accepting, and waits up to `within` for the connections to close.
    pub async fn shutdown(&self, retry_after: Duration, within: Duration) {
        self.shared
            .shutdown
            .send_replace(Some(retry_after.as_millis() as u64));
        let deadline = tokio::time::Instant::now() + within;
        while self.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    if shared.shutdown.borrow().is_some() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let Some(slot) = shared.per_ip.try_acquire(peer.ip()) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many chat connections from this address",
        )
            .into_response();
    };
    let ws = ws.protocols([SUBPROTOCOL]);
    let offered = ws
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .is_some_and(|p| p == SUBPROTOCOL);
    if !offered {
        return (
            StatusCode::BAD_REQUEST,
            format!("offer the WebSocket subprotocol {SUBPROTOCOL}"),
        )
            .into_response();
    }
    start_ticker(&shared);
    let max = shared.config.max_frame_bytes.saturating_mul(4);
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before reading,
    // which made it resident for every connection; commands are small.
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            connection::run(shared, socket).await
        })
}

/// Pushes changed viewer counts once per interval while the server lives.
fn start_ticker(shared: &Arc<Shared>) {
    if shared.ticker_started.swap(true, Ordering::AcqRel) {
        return;
    }
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let interval = shared.config.viewers_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let Some(shared) = weak.upgrade() else { return };
            let rooms: Vec<_> = {
                let mut rooms = lock(&shared.rooms);
                evict_idle(&mut rooms, shared.config.room_idle);
                rooms.values().cloned().collect()
            };
            shared.engine.count_audience(&rooms).await;
            for room in rooms {
                lock(&room).flush_viewers();
            }
        }
    });
}

impl std::fmt::Debug for ChatServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatServer").finish_non_exhaustive()
    }
}
