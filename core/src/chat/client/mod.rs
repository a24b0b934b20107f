//! The chat client: [`ChatClient`] and its event stream, [`ChatEvents`].
//!
//! ```no_run
//! use streamhub::chat::{ChatClient, ChatConfig, ChatEvent, TokenSource};
//!
//! # async fn run() -> Result<(), streamhub::chat::ChatError> {
//! let (client, mut events) =
//!     ChatClient::connect("ws://127.0.0.1:8080/chat", TokenSource::fixed("JWT"), ChatConfig::default())
//!         .await?;
//! client.join("cam1").await?;
//! client.send("cam1", "hello").await?;
//! while let Some(event) = events.next().await {
//!     if let ChatEvent::Message(m) = event {
//!         println!("{}: {}", m.user.name, m.text);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The client reconnects by itself (full-jitter exponential backoff, honouring the
//! server's `retry_after_ms`), re-joins every room with the last position it delivered,
//! drops duplicates, and resends unacknowledged messages with their original
//! `client_msg_id`: the app sees every message exactly once and in order, and nothing it
//! sent is published twice. A new token is asked from the app's [`TokenSource`] when the
//! server says the current one expires.

mod connection;
pub(crate) mod cursor;
mod driver;
pub(crate) mod fuzzing;
pub(crate) mod outbox;
mod outlet;
pub(crate) mod transport;

use std::future::Future;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::chat::ChatError;
use crate::chat::protocol::{
    ChatMessage, Command, ErrorBody, HistoryResult, MemberEvent, RoomState, SendResult, UserInfo,
};
pub use crate::net::BackoffConfig;
use crate::net::TlsOptions;
pub use cursor::JoinOutcome;
use outbox::OutgoingMessage;
pub(crate) use outlet::EventOutlet;
use transport::ChatUrl;

/// Why the client asks the app for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRequest {
    /// The first connection.
    Initial,
    /// The server said the token expires soon; it will be sent with `refresh`.
    Expiring,
    /// The server refused the token as expired; a reconnect needs a new one.
    Expired,
}

/// A token callback's future.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Where the client gets its JWTs: a fixed token, or the app's callback.
#[derive(Clone)]
pub struct TokenSource(Arc<dyn Fn(TokenRequest) -> TokenFuture + Send + Sync>);

impl TokenSource {
    /// Always the same token (it cannot be refreshed).
    pub fn fixed(token: impl Into<String>) -> Self {
        let token: String = token.into();
        TokenSource(Arc::new(move |_| {
            let token = token.clone();
            Box::pin(async move { Ok(token) })
        }))
    }

    /// Calls the app each time a token is needed.
    pub fn from_fn<F, Fut>(callback: F) -> Self
    where
        F: Fn(TokenRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        TokenSource(Arc::new(move |why| Box::pin(callback(why))))
    }

    fn get(&self, why: TokenRequest) -> TokenFuture {
        (self.0)(why)
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSource")
    }
}

/// How the client behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChatConfig {
    /// Limit for TCP, TLS, the upgrade and `connect` together (10 s).
    pub connect_timeout: Duration,
    /// Limit for a command's reply; a send past it counts the connection as dead (10 s).
    pub command_timeout: Duration,
    /// Limit for the app's token callback (10 s).
    pub token_timeout: Duration,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// Messages kept while unacknowledged (100).
    pub outbox_capacity: usize,
    /// Events buffered for the app; when full, reading from the server waits (1024).
    pub event_capacity: usize,
    /// Client pings (15 s).
    pub ping_interval: Duration,
    /// With nothing received for this long the connection counts as dead (40 s).
    pub idle_timeout: Duration,
    /// Trust settings for `wss://`.
    pub tls: TlsOptions,
    /// Largest frame accepted from the server (1 MiB: history pages are large).
    pub max_frame_bytes: usize,
    /// Software name sent with `connect`.
    pub client_name: String,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(10),
            token_timeout: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
            outbox_capacity: 100,
            event_capacity: 1024,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(40),
            tls: TlsOptions::default(),
            max_frame_bytes: 1 << 20,
            client_name: "streamhub-rust".into(),
        }
    }
}

/// What the app learns from the client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ChatEvent {
    /// Connected and authenticated (`reconnect` after a drop).
    Connected {
        /// Who the server says we are.
        user: UserInfo,
        /// The server's connection id.
        session: String,
        /// True after a drop.
        reconnect: bool,
    },
    /// The connection dropped; the client reconnects after `retry_in`.
    Disconnected {
        /// Why.
        reason: String,
        /// When the next attempt starts.
        retry_in: Duration,
    },
    /// A room was (re-)joined.
    Joined {
        /// The room.
        room: String,
        /// People in the room.
        viewers: u64,
        /// What happened to messages missed while away.
        outcome: JoinOutcome,
        /// The room's rules.
        state: RoomState,
    },
    /// A new message, exactly once and in order.
    Message(ChatMessage),
    /// The server skipped these sequence numbers (never expected; load them with
    /// `history` if needed).
    Gap {
        /// The room.
        room: String,
        /// The missing numbers.
        missing: RangeInclusive<u64>,
    },
    /// A queued message was published.
    Sent {
        /// The room.
        room: String,
        /// Its idempotency key.
        client_msg_id: String,
        /// The server's acknowledgement.
        result: SendResult,
    },
    /// A queued message was refused for good.
    SendFailed {
        /// The room.
        room: String,
        /// Its idempotency key.
        client_msg_id: String,
        /// Why.
        error: ChatError,
    },
    /// A message was hidden.
    Deleted {
        /// The room.
        room: String,
        /// The message.
        seq: u64,
    },
    /// The audience changed.
    Viewers {
        /// The room.
        room: String,
        /// Chat members plus video viewers.
        count: u64,
    },
    /// Someone joined or left (small rooms).
    Member {
        /// The room.
        room: String,
        /// Who.
        user: UserInfo,
        /// Joined or left.
        event: MemberEvent,
    },
    /// Someone is typing.
    Typing {
        /// The room.
        room: String,
        /// Who.
        user: UserInfo,
    },
    /// The room's rules or our standing changed.
    RoomState {
        /// The room.
        room: String,
        /// The rules.
        state: RoomState,
    },
    /// We were removed from a room (banned); it is no longer joined.
    Kicked {
        /// The room.
        room: String,
        /// Why.
        error: ErrorBody,
    },
    /// A new token was accepted without reconnecting.
    TokenRefreshed,
    /// The client stopped for good (unauthorized, closed).
    Failed(ChatError),
}

/// The result of a join.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinInfo {
    /// People in the room.
    pub viewers: u64,
    /// The room's last sequence number at the join.
    pub seq: u64,
    /// What happened to missed messages.
    pub outcome: JoinOutcome,
    /// The room's rules.
    pub state: RoomState,
}

/// Counters of a client's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatStats {
    /// Successful connections (the first one included).
    pub connections: u64,
    /// Messages handed to the app.
    pub delivered: u64,
    /// Messages dropped as already delivered.
    pub duplicates_dropped: u64,
    /// Messages acknowledged by the server.
    pub sent: u64,
    /// Sends put on the wire again after a drop or a temporary refusal.
    pub resends: u64,
    /// Temporary refusals (rate limit, slow mode) waited out.
    pub waits: u64,
    /// Messages refused for good.
    pub send_failures: u64,
    /// Tokens accepted through `refresh`.
    pub refreshes: u64,
}

/// The app's events.
pub struct ChatEvents {
    rx: mpsc::Receiver<ChatEvent>,
}

impl ChatEvents {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn next(&mut self) -> Option<ChatEvent> {
        self.rx.recv().await
    }
}

pub(crate) struct Responder {
    reply: Option<oneshot::Sender<Result<SendResult, ChatError>>>,
    _permit: OwnedSemaphorePermit,
}

pub(crate) enum Request {
    Join {
        room: String,
        reply: oneshot::Sender<Result<JoinInfo, ChatError>>,
    },
    Leave {
        room: String,
        reply: oneshot::Sender<Result<(), ChatError>>,
    },
    Enqueue {
        message: OutgoingMessage,
        responder: Responder,
    },
    Command {
        command: Command,
        reply: oneshot::Sender<Result<serde_json::Value, ChatError>>,
    },
    Close {
        within: Duration,
        reply: oneshot::Sender<ChatStats>,
    },
}

/// A connection to a chat server that survives network drops.
#[derive(Debug, Clone)]
pub struct ChatClient {
    requests: mpsc::Sender<Request>,
    permits: Arc<Semaphore>,
    capacity: usize,
    command_timeout: Duration,
}

impl ChatClient {
    /// Connects, authenticates, and starts the client. The first connection must
    /// succeed (its error is returned); after that the client reconnects by itself.
    pub async fn connect(
        url: &str,
        token: TokenSource,
        config: ChatConfig,
    ) -> Result<(ChatClient, ChatEvents), ChatError> {
        let (first_tx, first_rx) = oneshot::channel();
        let started = ChatClient::spawn(url, token, config, Some(first_tx))?;
        first_rx.await.map_err(|_| ChatError::Closed)??;
        Ok(started)
    }

    /// Starts the client without waiting for a first connection: that one is retried
    /// like any later one (with backoff), its failures arrive as
    /// [`ChatEvent::Disconnected`], and a final refusal (unauthorized) as
    /// [`ChatEvent::Failed`]. Joins and messages asked meanwhile wait for the connection.
    /// For an app that wants the client whatever the network does now (a stream
    /// session); [`ChatClient::connect`] is for one that wants the first connection's
    /// error. Only a URL that cannot work is an error here. Call it inside a tokio
    /// runtime.
    pub fn start(
        url: &str,
        token: TokenSource,
        config: ChatConfig,
    ) -> Result<(ChatClient, ChatEvents), ChatError> {
        ChatClient::spawn(url, token, config, None)
    }

    /// Starts the client's task; see [`driver::Driver::run`] for `first`.
    fn spawn(
        url: &str,
        token: TokenSource,
        config: ChatConfig,
        first: Option<oneshot::Sender<Result<(), ChatError>>>,
    ) -> Result<(ChatClient, ChatEvents), ChatError> {
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
        let (client, _task) = ChatClient::spawn_into(url, token, config, first, events_tx)?;
        Ok((client, ChatEvents { rx: events_rx }))
    }

    /// [`ChatClient::start`] handing the events to `outlet` instead of a
    /// [`ChatEvents`]; the task ends once its last event was delivered.
    pub(crate) fn start_into<O: EventOutlet>(
        url: &str,
        token: TokenSource,
        config: ChatConfig,
        outlet: O,
    ) -> Result<(ChatClient, tokio::task::JoinHandle<()>), ChatError> {
        ChatClient::spawn_into(url, token, config, None, outlet)
    }

    fn spawn_into<O: EventOutlet>(
        url: &str,
        token: TokenSource,
        config: ChatConfig,
        first: Option<oneshot::Sender<Result<(), ChatError>>>,
        outlet: O,
    ) -> Result<(ChatClient, tokio::task::JoinHandle<()>), ChatError> {
        let url = ChatUrl::parse(url)?;
        let (requests, requests_rx) = mpsc::channel(64);
        let client = ChatClient {
            requests,
            permits: Arc::new(Semaphore::new(config.outbox_capacity.max(1))),
            capacity: config.outbox_capacity.max(1),
            command_timeout: config.command_timeout,
        };
        let driver = driver::Driver::new(url, token, config, outlet, requests_rx);
        Ok((client, tokio::spawn(driver.run(first))))
    }

    /// Joins a room (and re-joins it after every reconnect). Messages from now on
    /// arrive as [`ChatEvent::Message`].
    pub async fn join(&self, room: &str) -> Result<JoinInfo, ChatError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Join {
            room: room.to_string(),
            reply,
        })
        .await?;
        self.wait(rx, "join").await?
    }

    /// Leaves a room; its queued messages are dropped.
    pub async fn leave(&self, room: &str) -> Result<(), ChatError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Leave {
            room: room.to_string(),
            reply,
        })
        .await?;
        self.wait(rx, "leave").await?
    }

    /// Queues a message, waiting while the queue is full; returns its `client_msg_id`.
    /// The outcome arrives as [`ChatEvent::Sent`] or [`ChatEvent::SendFailed`].
    pub async fn enqueue(&self, room: &str, text: &str) -> Result<String, ChatError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ChatError::Closed)?;
        self.queue(room, text, permit, None).await
    }

    /// Queues a message if the queue has room; [`ChatError::QueueFull`] otherwise.
    pub async fn try_enqueue(&self, room: &str, text: &str) -> Result<String, ChatError> {
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ChatError::QueueFull(self.capacity))?;
        self.queue(room, text, permit, None).await
    }

    /// Sends a message and waits for the server's acknowledgement, across reconnects
    /// and rate-limit waits.
    pub async fn send(&self, room: &str, text: &str) -> Result<SendResult, ChatError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ChatError::Closed)?;
        let (reply, rx) = oneshot::channel();
        self.queue(room, text, permit, Some(reply)).await?;
        rx.await.map_err(|_| ChatError::Closed)?
    }

    async fn queue(
        &self,
        room: &str,
        text: &str,
        permit: OwnedSemaphorePermit,
        reply: Option<oneshot::Sender<Result<SendResult, ChatError>>>,
    ) -> Result<String, ChatError> {
        let client_msg_id = new_client_msg_id();
        self.request(Request::Enqueue {
            message: OutgoingMessage {
                room: room.to_string(),
                client_msg_id: client_msg_id.clone(),
                text: text.to_string(),
            },
            responder: Responder {
                reply,
                _permit: permit,
            },
        })
        .await?;
        Ok(client_msg_id)
    }

    /// Loads older messages of a joined room.
    pub async fn history(
        &self,
        room: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<HistoryResult, ChatError> {
        let value = self
            .command(Command::History {
                room: room.to_string(),
                before_seq,
                limit: Some(limit),
            })
            .await?;
        serde_json::from_value(value)
            .map_err(|e| ChatError::Protocol(format!("bad history result: {e}")))
    }

    /// Tells the room we are typing.
    pub async fn typing(&self, room: &str) -> Result<(), ChatError> {
        self.command(Command::Typing {
            room: room.to_string(),
        })
        .await
        .map(drop)
    }

    /// Hides a message (moderators, the broadcaster, or its author).
    pub async fn delete(&self, room: &str, seq: u64) -> Result<(), ChatError> {
        self.command(Command::Delete {
            room: room.to_string(),
            seq,
        })
        .await
        .map(drop)
    }

    /// Stops a user from sending for a while (moderators and the broadcaster).
    pub async fn timeout_user(
        &self,
        room: &str,
        user_id: &str,
        duration: Duration,
    ) -> Result<(), ChatError> {
        self.command(Command::Timeout {
            room: room.to_string(),
            user_id: user_id.to_string(),
            duration_ms: duration.as_millis() as u64,
        })
        .await
        .map(drop)
    }

    /// Bans a user from a room (moderators and the broadcaster).
    pub async fn ban(&self, room: &str, user_id: &str) -> Result<(), ChatError> {
        self.command(Command::Ban {
            room: room.to_string(),
            user_id: user_id.to_string(),
        })
        .await
        .map(drop)
    }

    /// Lifts a ban.
    pub async fn unban(&self, room: &str, user_id: &str) -> Result<(), ChatError> {
        self.command(Command::Unban {
            room: room.to_string(),
            user_id: user_id.to_string(),
        })
        .await
        .map(drop)
    }

    /// Sets the room's slow mode (zero turns it off).
    pub async fn slow_mode(&self, room: &str, interval: Duration) -> Result<(), ChatError> {
        self.command(Command::SlowMode {
            room: room.to_string(),
            interval_ms: interval.as_millis() as u64,
        })
        .await
        .map(drop)
    }

    /// Sends any command and returns its raw result; fails with
    /// [`ChatError::NotConnected`] while reconnecting.
    pub async fn command(&self, command: Command) -> Result<serde_json::Value, ChatError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Command { command, reply }).await?;
        self.wait(rx, "command").await?
    }

    /// Waits up to `within` for queued messages to be acknowledged, then closes the
    /// connection and stops the client. Messages still queued then get
    /// [`ChatEvent::SendFailed`] with [`ChatError::Closed`].
    pub async fn close(&self, within: Duration) -> Result<ChatStats, ChatError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Close { within, reply }).await?;
        tokio::time::timeout(within + Duration::from_secs(5), rx)
            .await
            .map_err(|_| ChatError::Timeout("closing the chat client".into()))?
            .map_err(|_| ChatError::Closed)
    }

    async fn request(&self, request: Request) -> Result<(), ChatError> {
        self.requests
            .send(request)
            .await
            .map_err(|_| ChatError::Closed)
    }

    async fn wait<T>(&self, rx: oneshot::Receiver<T>, what: &str) -> Result<T, ChatError> {
        tokio::time::timeout(self.command_timeout, rx)
            .await
            .map_err(|_| ChatError::Timeout(format!("no reply to {what}")))?
            .map_err(|_| ChatError::Closed)
    }
}

/// The length of every `client_msg_id` this client makes ([`new_client_msg_id`]): 32
/// hex digits. A binding can check an app's buffer against it before queueing.
pub const CLIENT_MSG_ID_LEN: usize = 32;

/// A fresh idempotency key: 128 random bits in hex ([`CLIENT_MSG_ID_LEN`] characters).
pub fn new_client_msg_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl std::fmt::Debug for ChatEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatEvents")
            .field("queued", &self.rx.len())
            .finish()
    }
}
