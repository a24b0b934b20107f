//! One live stream as one object: [`StreamSession`].
//!
//! A session composes the parts an app would otherwise wire up itself — the RTMP
//! [`Publisher`](crate::rtmp::Publisher) (broadcast) or the WHEP
//! [`Player`](crate::whep::Player) (watch), and optionally the stream's chat room through
//! a [`ChatClient`](crate::chat::ChatClient) — behind one lifecycle, one event stream and
//! one set of methods. The parts stay usable on their own.
//!
//! ```no_run
//! use streamhub::session::{BroadcastConfig, SessionEvent, StreamSession};
//!
//! # async fn run(frames: Vec<streamhub::media::VideoFrame>) -> Result<(), streamhub::session::SessionError> {
//! let (session, mut events) = StreamSession::broadcast(BroadcastConfig::new("rtmp://127.0.0.1/live/key"))?;
//! tokio::spawn(async move {
//!     while let Some(event) = events.next().await {
//!         if let SessionEvent::StateChanged(state) = event {
//!             println!("now {state:?}");
//!         }
//!     }
//! });
//! for frame in &frames {
//!     session.send_video(frame).await?;
//! }
//! let stats = session.stop().await;
//! println!("{} video frames sent", stats.video_frames);
//! # Ok(()) }
//! ```
//!
//! # Lifecycle
//!
//! [`SessionState`]: `Idle → Connecting → Live ⇄ Reconnecting → … → Ended | Failed`.
//!
//! - The constructors check the configuration (URLs parse; an error is returned at
//!   once), start the session's tasks and return in `Connecting`.
//! - **Live**, broadcast: the ingest answered `publish` with `NetStream.Publish.Start`.
//!   **Live**, watch: the first frame (audio or video) arrived on the new connection —
//!   an accepted WHEP offer alone does not prove that media flows.
//! - **Connection loss**, broadcast: a send fails because the connection broke (a
//!   broadcaster sends continuously, so the next frame finds out). Watch: the peer
//!   connection fails or closes, or no frame arrived for
//!   [`WatchConfig::stall_timeout`]. The session goes `Reconnecting { attempt, retry_in,
//!   reason }`, waits a full-jitter exponential backoff (the chat client's
//!   [`Backoff`](crate::net::Backoff): the window doubles from
//!   `base` to `cap`, and a connection that stayed up for `reset_after` starts again at
//!   `base`), and reconnects. A failed attempt goes back to `Reconnecting` with the next
//!   attempt number.
//! - After a reconnect, a broadcaster re-applies the codec configurations set with
//!   [`StreamSession::set_video_config`]/[`StreamSession::set_audio_config`] to the new
//!   publish (in-band SPS/PPS and ADTS headers travel with the frames anyway), and drops
//!   video until the next keyframe — and audio too, once the stream had video — so the
//!   new publish starts decodable. Frames sent while not Live are dropped, counted in
//!   [`SessionStats::frames_dropped`], and `send_*` returns `Ok`. A watcher closes the
//!   old WHEP session (DELETE, bounded) and posts a new offer; the first frame of the new
//!   connection has `discontinuity` set.
//! - Failures before the first Live: network errors are retried the same way (the state
//!   stays `Connecting { attempt }`). A refusal (wrong RTMP application, refused stream
//!   key) is terminal before the first Live and retried after it (the server may still
//!   hold our previous, dead connection). Terminal at any time: an invalid
//!   configuration, a TLS failure, WHEP 401/403 and other 4xx (except 404, 408, 409,
//!   429). A WHEP 404 is retried (the stream may not have started) and gives
//!   [`FailReason::NotFound`] if it never appears.
//! - **Failed** `{ reason: FailReason }` when a terminal error happens or more than
//!   [`ReconnectPolicy::max_attempts`] consecutive attempts fail.
//! - **Ended** after [`StreamSession::stop`] (or when every handle was dropped): a
//!   broadcaster sends what is queued and unpublishes (bounded by the publish config's
//!   flush timeout), a watcher DELETEs its WHEP session, the chat client waits up to 2 s
//!   for queued messages. Ended and Failed are final.
//!
//! The chat is never fatal: its failures arrive as [`SessionEvent::Error`], it
//! reconnects by itself, and a session without a working chat stays Live.
//!
//! # Events
//!
//! [`SessionEvents`] carries state changes, periodic [`SessionStats`], chat messages,
//! viewer counts and non-fatal errors. Media frames of a watch session are read with
//! [`StreamSession::next_frame`] instead (they are high-rate). Events are buffered up
//! to [`BroadcastConfig::event_capacity`], in one queue: the chat client hands its
//! events straight to it. Chat outcomes the app is owed — messages,
//! [`SessionEvent::ChatSent`], [`SessionEvent::ChatSendFailed`],
//! [`SessionEvent::ChatDeleted`], [`SessionEvent::ChatKicked`] — are never dropped: they
//! wait for room (the chat client then stops reading its socket) until the app stops the
//! session. Other events are
//! dropped when the buffer is full and counted in [`SessionStats::events_dropped`] —
//! [`StreamSession::state`] and [`StreamSession::stats`] are always current.
//!
//! # Threads
//!
//! [`StreamSession`] is `Send + Sync` and a cheap `Clone` (an `Arc`); every method takes
//! `&self`. The session runs on the tokio runtime it was created in.

mod broadcast;
#[cfg(feature = "chat")]
mod chat;
#[cfg(not(feature = "chat"))]
#[path = "chat_off.rs"]
mod chat;
mod error;
mod event_queue;
mod events;
pub(crate) mod lifecycle;
mod typed;
#[cfg(feature = "whep")]
mod watch;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch as state_watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span};

#[cfg(feature = "chat")]
use crate::chat::ChatConfig;
use crate::chat::ChatMessage;
use crate::media::{AudioFrame, AudioSpecificConfig, AvcDecoderConfig, VideoFrame};
use crate::rtmp::{CongestionPolicy, CongestionReport, PublishConfig, PublishStats, RtmpUrl};
#[cfg(feature = "whep")]
use crate::whep::{MediaFrame, PlayConfig, PlayStats};

pub use error::SessionError;
pub use events::SessionEvents;
pub use lifecycle::{FailReason, OnStreamEnd, ReconnectPolicy, SessionState};
use lifecycle::{Failure, Lifecycle, Next};
pub use typed::BroadcastSession;
#[cfg(feature = "whep")]
pub use typed::WatchSession;

/// Without the `chat` feature there is no chat room: this type has no value, so a
/// config's `chat` is always `None`.
#[cfg(not(feature = "chat"))]
#[derive(Debug, Clone)]
pub enum SessionChat {}

/// The stream's chat room. Its `Debug` hides the token.
#[cfg(feature = "chat")]
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionChat {
    /// The chat server, e.g. `ws://127.0.0.1:8080/chat`.
    pub url: String,
    /// The room (one per stream, named like the stream).
    pub room: String,
    /// The JWT for `connect`.
    pub token: String,
    /// Client settings (timeouts, backoff).
    pub config: ChatConfig,
}

#[cfg(feature = "chat")]
impl SessionChat {
    /// A room on a server with the default client settings.
    pub fn new(url: impl Into<String>, room: impl Into<String>, token: impl Into<String>) -> Self {
        SessionChat {
            url: url.into(),
            room: room.into(),
            token: token.into(),
            config: ChatConfig::default(),
        }
    }
}

#[cfg(feature = "chat")]
impl std::fmt::Debug for SessionChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionChat")
            .field("url", &self.url)
            .field("room", &self.room)
            .field("token", &crate::redact::Hidden(&self.token))
            .field("config", &self.config)
            .finish()
    }
}

/// How to go live. Its `Debug` masks the stream keys.
#[derive(Clone)]
#[non_exhaustive]
pub struct BroadcastConfig {
    /// The ingest, `rtmp://host[:port]/app/key` or `rtmps://…`.
    pub url: String,
    /// Backup ingests (IVS and YouTube give one), tried in order after `url`: after
    /// [`Self::attempts_per_ingest`] failed attempts in a row on one ingest, the next
    /// one is tried (after the last, the first again). [`SessionEvent::IngestLive`] says
    /// which one is live.
    pub backup_urls: Vec<String>,
    /// Failed connection attempts in a row on one ingest before the next is tried (2).
    pub attempts_per_ingest: u32,
    /// The stream's chat room, if any.
    pub chat: Option<SessionChat>,
    /// Publish settings (timeouts, queue bounds, metadata, TLS, congestion policy); used
    /// for every connection. Sessions default to [`CongestionPolicy::live`]: `send_*`
    /// never waits, video is dropped by priority when media waits too long.
    pub publish: PublishConfig,
    /// What to do when the connection is lost.
    pub reconnect: ReconnectPolicy,
    /// How often [`SessionEvent::Stats`] is sent; zero turns it off (1 s).
    pub stats_interval: Duration,
    /// Events buffered for the app (256).
    pub event_capacity: usize,
}

impl BroadcastConfig {
    /// Defaults for everything but the ingest URL.
    pub fn new(url: impl Into<String>) -> Self {
        BroadcastConfig {
            url: url.into(),
            backup_urls: Vec::new(),
            attempts_per_ingest: 2,
            chat: None,
            publish: PublishConfig {
                congestion: CongestionPolicy::live(),
                ..PublishConfig::default()
            },
            // An ingest is cheap to call again: retry within half a second (a link that
            // comes back is used at once), for about a minute.
            reconnect: ReconnectPolicy {
                backoff: crate::net::BackoffConfig {
                    base: Duration::from_millis(200),
                    cap: Duration::from_millis(500),
                    reset_after: Duration::from_secs(30),
                },
                max_attempts: Some(120),
            },
            stats_interval: Duration::from_secs(1),
            event_capacity: 256,
        }
    }
}

impl std::fmt::Debug for BroadcastConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::{IngestUrl, IngestUrls};
        f.debug_struct("BroadcastConfig")
            .field("url", &IngestUrl(&self.url))
            .field("backup_urls", &IngestUrls(&self.backup_urls))
            .field("attempts_per_ingest", &self.attempts_per_ingest)
            .field("chat", &self.chat)
            .field("publish", &self.publish)
            .field("reconnect", &self.reconnect)
            .field("stats_interval", &self.stats_interval)
            .field("event_capacity", &self.event_capacity)
            .finish()
    }
}

/// How to watch.
#[cfg(feature = "whep")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WatchConfig {
    /// The WHEP endpoint, `http(s)://…`.
    pub url: String,
    /// The stream's chat room, if any.
    pub chat: Option<SessionChat>,
    /// Playback settings (token, timeouts, latency); used for every connection.
    pub play: PlayConfig,
    /// What to do when the connection is lost.
    pub reconnect: ReconnectPolicy,
    /// With no frame for this long, the connection counts as lost (3 s).
    pub stall_timeout: Duration,
    /// What to do once the sender ended the stream (wait for it to come back).
    pub on_stream_end: OnStreamEnd,
    /// How often [`SessionEvent::Stats`] is sent; zero turns it off (1 s).
    pub stats_interval: Duration,
    /// Events buffered for the app (256).
    pub event_capacity: usize,
    /// Frames buffered for [`StreamSession::next_frame`]; when full, frames are dropped
    /// and counted (512).
    pub frame_capacity: usize,
}

#[cfg(feature = "whep")]
impl WatchConfig {
    /// Defaults for everything but the WHEP URL.
    pub fn new(url: impl Into<String>) -> Self {
        WatchConfig {
            url: url.into(),
            chat: None,
            play: PlayConfig::default(),
            reconnect: ReconnectPolicy::default(),
            stall_timeout: Duration::from_secs(3),
            on_stream_end: OnStreamEnd::default(),
            stats_interval: Duration::from_secs(1),
            event_capacity: 256,
            frame_capacity: 512,
        }
    }
}

/// Counters of the chat part of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionChatStats {
    /// Connected to the chat server right now.
    pub connected: bool,
    /// Successful connections (the first included).
    pub connections: u64,
    /// Messages delivered to the app.
    pub messages_received: u64,
    /// Messages acknowledged by the server.
    pub messages_sent: u64,
    /// Messages refused for good.
    pub send_failures: u64,
}

/// A snapshot of a session: media counters over every connection, the current
/// connection's own stats, chat counters and time per state.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SessionStats {
    /// The state now.
    pub state: SessionState,
    /// Since the session was created.
    pub uptime: Duration,
    /// Total time Live.
    pub time_live: Duration,
    /// Total time Reconnecting.
    pub time_reconnecting: Duration,
    /// From creation to the first Live.
    pub time_to_live: Option<Duration>,
    /// Times the session went Live again after a loss.
    pub reconnects: u32,
    /// Video frames sent (broadcast) or delivered (watch), over every connection.
    pub video_frames: u64,
    /// Audio frames sent or delivered, over every connection.
    pub audio_frames: u64,
    /// Bytes sent (RTMP framing included) or frame bytes delivered.
    pub bytes: u64,
    /// Frames dropped: broadcast — sent while not Live or before the keyframe after a
    /// reconnect; watch — not read by the app in time.
    pub frames_dropped: u64,
    /// The current RTMP connection's stats (broadcast).
    pub publish: Option<PublishStats>,
    /// Broadcast: the link as last measured (waiting media now and at its peak, bytes
    /// per second delivered, recommended video bitrate, RTT), with the video frames
    /// dropped for congestion over every connection. Audio is never dropped.
    pub congestion: Option<CongestionReport>,
    /// Broadcast: which ingest is (or was last) live: 0 for `url`, 1 for the first
    /// backup, …
    pub ingest: usize,
    /// Broadcast: frames the app handed to `send_video`/`send_audio`; equals the frames
    /// written to connections plus `frames_dropped`.
    pub frames_sent_by_app: u64,
    /// The current WHEP connection's stats (watch), refreshed every 250 ms.
    #[cfg(feature = "whep")]
    pub play: Option<PlayStats>,
    /// Chat counters, when the session has a chat.
    pub chat: Option<SessionChatStats>,
    /// The room's audience (chat members plus video viewers) as last pushed.
    pub viewers: Option<u64>,
    /// Events dropped because the app did not read them.
    pub events_dropped: u64,
}

/// What the app learns from a session.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The lifecycle moved (see the module docs).
    StateChanged(SessionState),
    /// Periodic stats.
    Stats(Box<SessionStats>),
    /// Connected to the chat server (`reconnect` after a drop).
    ChatConnected {
        /// True after a drop.
        reconnect: bool,
    },
    /// The chat connection dropped; the chat client reconnects by itself.
    ChatDisconnected {
        /// Why.
        reason: String,
        /// When the next attempt starts.
        retry_in: Duration,
    },
    /// The room was (re-)joined.
    ChatJoined {
        /// The room.
        room: String,
        /// Its audience.
        viewers: u64,
    },
    /// A chat message, exactly once and in order.
    Chat(ChatMessage),
    /// A message sent with [`StreamSession::send_chat`] was published.
    ChatSent {
        /// The id `send_chat` returned.
        client_msg_id: String,
        /// Its sequence number in the room.
        seq: u64,
    },
    /// A message sent with [`StreamSession::send_chat`] was refused for good (too long,
    /// rate limit past its retries, muted…); it will not be sent.
    ChatSendFailed {
        /// The id `send_chat` returned.
        client_msg_id: String,
        /// Why.
        error: SessionError,
    },
    /// A message of the room was hidden by a moderator or its author.
    ChatDeleted {
        /// The room.
        room: String,
        /// The message's sequence number.
        seq: u64,
    },
    /// This session was removed from the chat room (banned): it no longer receives or
    /// sends there. The media part goes on.
    ChatKicked {
        /// The room.
        room: String,
        /// The server's reason, for logs.
        reason: String,
    },
    /// The room's audience changed.
    Viewers(u64),
    /// Broadcast, about once a second while live: the link as measured, with the video
    /// bitrate the app's encoder should use ([`CongestionReport::recommended_bps`]).
    Congestion(CongestionReport),
    /// Broadcast: live on this ingest (0 for `url`, then the backups in order).
    IngestLive {
        /// Its position.
        index: usize,
        /// The URL with the stream key masked.
        url: String,
    },
    /// Something failed that the session survives (a lost connection it reconnects, a
    /// refused chat message, a chat that cannot connect).
    Error(SessionError),
}

/// State shared by the handle and the session's tasks.
pub(crate) struct Shared {
    lifecycle: Mutex<Lifecycle>,
    state: state_watch::Sender<SessionState>,
    events: event_queue::EventSender,
    chat: Option<chat::ChatShared>,
    /// Set once the session's tasks are over and their last event and frame are queued.
    finished: state_watch::Sender<bool>,
}

impl Shared {
    fn new(
        policy: ReconnectPolicy,
        event_capacity: usize,
        chat: Option<&SessionChat>,
    ) -> (Arc<Shared>, SessionEvents) {
        // Chat outcomes get the chat client's event budget (see event_queue).
        let owed_capacity = chat.map_or(1, chat::owed_capacity);
        let (events, rx) = event_queue::event_queue(event_capacity, owed_capacity);
        let (finished, finished_rx) = state_watch::channel(false);
        let shared = Arc::new(Shared {
            lifecycle: Mutex::new(Lifecycle::new(policy, Instant::now())),
            state: state_watch::Sender::new(SessionState::Idle),
            events,
            chat: chat.map(chat::ChatShared::for_session),
            finished,
        });
        (shared, SessionEvents::new(rx, finished_rx))
    }

    /// Sends an event without waiting; counts it when the app's buffer is full.
    pub(crate) fn emit(&self, event: SessionEvent) {
        self.events.emit(event);
    }

    pub(crate) fn state(&self) -> SessionState {
        self.state.borrow().clone()
    }

    fn lifecycle(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        crate::sync::lock(&self.lifecycle)
    }

    /// Applies a lifecycle step and announces the new state (outside the lock).
    fn step<T>(&self, f: impl FnOnce(&mut Lifecycle, Instant) -> (T, Option<SessionState>)) -> T {
        let (out, changed) = {
            let mut lifecycle = self.lifecycle();
            let (out, changed) = f(&mut lifecycle, Instant::now());
            if let Some(state) = &changed {
                self.state.send_replace(state.clone());
            }
            (out, changed)
        };
        if let Some(state) = changed {
            info!(?state, "session state");
            self.emit(SessionEvent::StateChanged(state));
        }
        out
    }

    pub(crate) fn start(&self) {
        self.step(|lc, now| ((), lc.start(now)));
    }

    pub(crate) fn live(&self) {
        self.step(|lc, now| ((), lc.live(now)));
    }

    pub(crate) fn stopped(&self) {
        self.step(|lc, now| ((), lc.stop(now)));
    }

    pub(crate) fn attempt_failed(&self, failure: Failure) -> Next {
        self.step(|lc, now| lc.attempt_failed(failure, rand::random::<f64>(), now))
    }

    pub(crate) fn lost(&self, reason: &str) -> Next {
        self.step(|lc, now| lc.lost(reason, rand::random::<f64>(), now))
    }

    #[cfg_attr(not(feature = "whep"), allow(dead_code))]
    pub(crate) fn stream_ended(&self, policy: OnStreamEnd) -> Next {
        self.step(|lc, now| lc.stream_ended(policy, rand::random::<f64>(), now))
    }

    /// `Err` with the terminal state's error, `Ok` otherwise.
    pub(crate) fn check_open(&self) -> Result<(), SessionError> {
        match self.state() {
            SessionState::Ended => Err(SessionError::Ended),
            SessionState::Failed { reason } => Err(SessionError::Failed(reason)),
            _ => Ok(()),
        }
    }

    fn base_stats(&self) -> SessionStats {
        let durations = self.lifecycle().durations(Instant::now());
        SessionStats {
            state: self.state(),
            uptime: durations.total,
            time_live: durations.live,
            time_reconnecting: durations.reconnecting,
            time_to_live: durations.time_to_live,
            reconnects: durations.reconnects,
            chat: self.chat.as_ref().map(|c| c.stats()),
            viewers: self.chat.as_ref().and_then(|c| c.viewers()),
            events_dropped: self.events.dropped(),
            ..SessionStats::default()
        }
    }
}

/// What the driver does after a failure: wait and retry, or stop.
pub(crate) enum AfterFailure {
    Retry,
    Stop,
    Failed,
}

/// Waits out a retry delay unless the app stops the session first.
pub(crate) async fn wait_retry(next: Next, stop: &mut state_watch::Receiver<bool>) -> AfterFailure {
    match next {
        Next::Fail(reason) => {
            info!(%reason, "session failed");
            AfterFailure::Failed
        }
        Next::End => AfterFailure::Stop,
        Next::RetryAfter(delay) => {
            debug!(?delay, "retrying");
            tokio::select! {
                _ = tokio::time::sleep(delay) => AfterFailure::Retry,
                _ = stop_requested(stop) => AfterFailure::Stop,
            }
        }
    }
}

/// Resolves when the app asked to stop (or dropped every handle).
pub(crate) async fn stop_requested(stop: &mut state_watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

#[derive(Clone)]
enum Kind {
    Broadcast(Arc<broadcast::Media>),
    #[cfg(feature = "whep")]
    Watch(Arc<watch::Media>),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Broadcast(_) => "broadcast",
            #[cfg(feature = "whep")]
            Kind::Watch(_) => "watch",
        }
    }
}

fn snapshot(shared: &Shared, kind: &Kind) -> SessionStats {
    let mut stats = shared.base_stats();
    match kind {
        Kind::Broadcast(media) => media.fill_stats(&mut stats),
        #[cfg(feature = "whep")]
        Kind::Watch(media) => media.fill_stats(&mut stats),
    }
    stats
}

struct Inner {
    shared: Arc<Shared>,
    kind: Kind,
    stop: state_watch::Sender<bool>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: the tasks end the session as `stop` would.
        self.stop.send_replace(true);
    }
}

/// One live stream: a broadcast ([`StreamSession::broadcast`]) or a watch
/// ([`StreamSession::watch`]), with its chat. See the [module docs](self) for the
/// lifecycle.
#[derive(Clone)]
pub struct StreamSession {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StreamSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSession")
            .field("kind", &self.inner.kind.name())
            .field("state", &self.inner.shared.state())
            .finish_non_exhaustive()
    }
}

// The handle crosses threads and FFI boundaries.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<StreamSession>();
    assert_send_sync::<SessionEvents>();
    assert_send_sync::<SessionEvent>();
    assert_send_sync::<SessionStats>();
    assert_send_sync::<SessionError>();
};

impl StreamSession {
    /// Goes live: starts publishing to `config.url` (and joins the chat room) in the
    /// background and returns at once, in [`SessionState::Connecting`]. Must be called
    /// within a tokio runtime.
    pub fn broadcast(
        config: BroadcastConfig,
    ) -> Result<(StreamSession, SessionEvents), SessionError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SessionError::NoRuntime)?;
        let url =
            RtmpUrl::parse(&config.url).map_err(|e| SessionError::InvalidConfig(e.to_string()))?;
        let mut urls = vec![url.clone()];
        for backup in &config.backup_urls {
            urls.push(
                RtmpUrl::parse(backup).map_err(|e| SessionError::InvalidConfig(e.to_string()))?,
            );
        }
        chat::check(config.chat.as_ref())?;
        config
            .publish
            .congestion
            .check()
            .map_err(SessionError::InvalidConfig)?;
        let span = info_span!("stream_session", kind = "broadcast", url = %url);
        let (shared, events) = Shared::new(
            config.reconnect,
            config.event_capacity,
            config.chat.as_ref(),
        );
        let (media, lost) =
            broadcast::Media::new(urls, config.attempts_per_ingest.max(1), config.publish);
        let media = Arc::new(media);
        let (stop, stop_rx) = state_watch::channel(false);
        let driver = broadcast::drive(shared.clone(), media.clone(), lost, stop_rx);
        Ok(Self::launch(
            runtime,
            stop,
            shared,
            Kind::Broadcast(media),
            config.chat,
            config.stats_interval,
            driver,
            span,
            events,
        ))
    }

    /// Starts watching `config.url` (and joins the chat room) in the background and
    /// returns at once, in [`SessionState::Connecting`]. Must be called within a tokio
    /// runtime.
    #[cfg(feature = "whep")]
    pub fn watch(config: WatchConfig) -> Result<(StreamSession, SessionEvents), SessionError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SessionError::NoRuntime)?;
        watch::check_url(&config.url)?;
        chat::check(config.chat.as_ref())?;
        let span = info_span!("stream_session", kind = "watch", url = %config.url);
        let (shared, events) = Shared::new(
            config.reconnect,
            config.event_capacity,
            config.chat.as_ref(),
        );
        let (media, frames) = watch::Media::new(&config);
        let media = Arc::new(media);
        let (stop, stop_rx) = state_watch::channel(false);
        let driver = watch::drive(
            shared.clone(),
            media.clone(),
            frames,
            config.play,
            config.stall_timeout,
            config.on_stream_end,
            stop_rx,
        );
        Ok(Self::launch(
            runtime,
            stop,
            shared,
            Kind::Watch(media),
            config.chat,
            config.stats_interval,
            driver,
            span,
            events,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        runtime: tokio::runtime::Handle,
        stop: state_watch::Sender<bool>,
        shared: Arc<Shared>,
        kind: Kind,
        chat: Option<SessionChat>,
        stats_interval: Duration,
        driver: impl std::future::Future<Output = ()> + Send + 'static,
        span: tracing::Span,
        events: SessionEvents,
    ) -> (StreamSession, SessionEvents) {
        // Chat and stats run until the media part has ended, whatever ended it.
        let (halt, halt_rx) = state_watch::channel(false);
        shared.start();
        let supervisor = {
            let shared = shared.clone();
            let kind = kind.clone();
            runtime.spawn(
                async move {
                    let chat_task = chat.map(|chat| {
                        tokio::spawn(
                            chat::run(shared.clone(), chat, halt_rx.clone())
                                .instrument(tracing::Span::current()),
                        )
                    });
                    let stats_task = (!stats_interval.is_zero()).then(|| {
                        tokio::spawn(stats_loop(
                            shared.clone(),
                            kind.clone(),
                            stats_interval,
                            halt_rx.clone(),
                        ))
                    });
                    driver.await;
                    halt.send_replace(true);
                    if let Some(mut task) = chat_task
                        && tokio::time::timeout(Duration::from_secs(5), &mut task)
                            .await
                            .is_err()
                    {
                        task.abort();
                    }
                    if let Some(task) = stats_task {
                        task.abort();
                    }
                    shared.stopped();
                    shared.finished.send_replace(true);
                }
                .instrument(span),
            )
        };
        let session = StreamSession {
            inner: Arc::new(Inner {
                shared,
                kind,
                stop,
                supervisor: Mutex::new(Some(supervisor)),
            }),
        };
        (session, events)
    }

    /// The state now.
    pub fn state(&self) -> SessionState {
        self.inner.shared.state()
    }

    /// Waits until the state satisfies `condition` or `within` passes; returns the
    /// state then.
    pub async fn wait_for_state(
        &self,
        within: Duration,
        condition: impl Fn(&SessionState) -> bool,
    ) -> SessionState {
        let mut rx = self.inner.shared.state.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|s| condition(s))).await;
        self.state()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SessionStats {
        snapshot(&self.inner.shared, &self.inner.kind)
    }

    #[cfg_attr(not(feature = "whep"), allow(unused_variables))]
    fn broadcast_media(&self, method: &'static str) -> Result<&broadcast::Media, SessionError> {
        match &self.inner.kind {
            Kind::Broadcast(media) => Ok(media),
            #[cfg(feature = "whep")]
            Kind::Watch(_) => Err(SessionError::WrongKind {
                method,
                kind: "watch",
            }),
        }
    }

    /// Sends one H.264 frame (broadcast), waiting while the send queue is full. While
    /// not Live, and after a reconnect until the next keyframe, the frame is dropped
    /// and counted, and `Ok` is returned. Errors: a frame the packetizer refuses, or a
    /// session that has ended or failed.
    pub async fn send_video(&self, frame: &VideoFrame) -> Result<(), SessionError> {
        let media = self.broadcast_media("send_video")?;
        media.send_video(&self.inner.shared, frame).await
    }

    /// Sends one AAC frame (broadcast); like [`StreamSession::send_video`].
    pub async fn send_audio(&self, frame: &AudioFrame) -> Result<(), SessionError> {
        let media = self.broadcast_media("send_audio")?;
        media.send_audio(&self.inner.shared, frame).await
    }

    /// Sets the H.264 configuration explicitly (broadcast); kept and applied again on
    /// every reconnect.
    pub fn set_video_config(&self, config: AvcDecoderConfig) -> Result<(), SessionError> {
        self.broadcast_media("set_video_config")?
            .set_video_config(config);
        Ok(())
    }

    /// Sets the AAC configuration explicitly (broadcast; required for raw AAC); kept and
    /// applied again on every reconnect.
    pub fn set_audio_config(&self, config: AudioSpecificConfig) -> Result<(), SessionError> {
        self.broadcast_media("set_audio_config")?
            .set_audio_config(config);
        Ok(())
    }

    /// Broadcast: the app's video encoder now runs at `bps` (for example after following
    /// [`SessionEvent::Congestion`]'s `recommended_bps`): the recommendations start from
    /// there, on this connection and the next ones.
    pub fn set_encoder_bitrate(&self, bps: u64) -> Result<(), SessionError> {
        self.broadcast_media("set_encoder_bitrate")?
            .set_encoder_bitrate(bps);
        Ok(())
    }

    #[cfg(feature = "whep")]
    /// The next frame (watch), across reconnects; `None` once the session has ended or
    /// failed and every buffered frame was read. The first frame after a reconnect has
    /// `discontinuity` set.
    pub async fn next_frame(&self) -> Result<Option<MediaFrame>, SessionError> {
        match &self.inner.kind {
            Kind::Watch(media) => Ok(media
                .next_frame(self.inner.shared.finished.subscribe())
                .await),
            Kind::Broadcast(_) => Err(SessionError::WrongKind {
                method: "next_frame",
                kind: "broadcast",
            }),
        }
    }

    #[cfg(feature = "whep")]
    /// The frames (watch) as a [`futures_util::Stream`]: what [`Self::next_frame`]
    /// returns, ending once the session has ended or failed and every buffered frame was
    /// read. One reader at a time: two streams of one session share its frames.
    pub fn frames(
        &self,
    ) -> Result<impl futures_util::Stream<Item = MediaFrame> + Send + 'static, SessionError> {
        if let Kind::Broadcast(_) = &self.inner.kind {
            return Err(SessionError::WrongKind {
                method: "frames",
                kind: "broadcast",
            });
        }
        Ok(futures_util::stream::unfold(
            self.clone(),
            |session| async move {
                match session.next_frame().await {
                    Ok(Some(frame)) => Some((frame, session)),
                    _ => None,
                }
            },
        ))
    }

    /// Queues a chat message for the session's room; returns its `client_msg_id`. The
    /// outcome arrives as [`SessionEvent::ChatSent`] or [`SessionEvent::ChatSendFailed`],
    /// never dropped; the message survives chat reconnects. Before the chat's first connection (a session
    /// can be Live before its chat is) it waits for it, up to 10 s.
    pub async fn send_chat(&self, text: &str) -> Result<String, SessionError> {
        self.inner.shared.check_open()?;
        let chat = self
            .inner
            .shared
            .chat
            .as_ref()
            .ok_or(SessionError::ChatUnavailable("no chat configured"))?;
        chat.send(text).await
    }

    /// Ends the session (see the module docs) and returns the final stats. It cannot
    /// fail: every step is bounded (about a minute at worst). Idempotent: later calls,
    /// from any clone, wait for the end and return the stats.
    pub async fn stop(&self) -> SessionStats {
        self.inner.stop.send_replace(true);
        let supervisor = crate::sync::lock(&self.inner.supervisor).take();
        // Bounded: the publisher's flush timeout, a WHEP DELETE, 5 s for the chat.
        let limit = Duration::from_secs(60);
        match supervisor {
            Some(task) => {
                if tokio::time::timeout(limit, task).await.is_err() {
                    debug!("session tasks did not end within {limit:?}");
                }
            }
            None => {
                let mut rx = self.inner.shared.state.subscribe();
                let _ = tokio::time::timeout(limit, rx.wait_for(SessionState::is_terminal)).await;
            }
        }
        self.stats()
    }
}

async fn stats_loop(
    shared: Arc<Shared>,
    kind: Kind,
    interval: Duration,
    mut halt: state_watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => shared.emit(SessionEvent::Stats(Box::new(snapshot(&shared, &kind)))),
            _ = stop_requested(&mut halt) => return,
        }
    }
}
