//! The chat client's protocol without I/O, in the manner of quinn-proto: the driver
//! feeds it what arrives ([`Connection::handle_frame`], [`Connection::request`]) and the
//! time ([`Connection::handle_timeout`]), and takes out what to write
//! ([`Connection::poll_transmit`]), what the app is owed ([`Connection::poll_event`]),
//! when to wake it ([`Connection::poll_timeout`]) and how the link ended
//! ([`Connection::poll_end`]). It owns everything that outlives one WebSocket: the rooms
//! and their cursors, the outbox, the counters, a pending close.
//!
//! It never touches a socket or a clock. The app's waiters (`oneshot` senders that came
//! with its requests) are answered from here: that is handing a value to an in-memory
//! channel, not I/O. What stays with the driver: opening sockets, fetching tokens,
//! backoff sleeps, and the first connection's report to [`super::ChatClient::connect`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::cursor::{Arrival, JoinOutcome, RoomCursor};
use super::outbox::{Outbox, OutgoingMessage, Refusal};
use super::{ChatConfig, ChatEvent, ChatStats, JoinInfo, Request, Responder};
use crate::chat::ChatError;
use crate::chat::protocol::{
    ClientInfo, Command, CommandFrame, ConnectResult, ErrorBody, ErrorCode, JoinResult, SendResult,
    ServerFrame, close_code,
};

/// What to write on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outgoing {
    /// A text frame (a command).
    Text(String),
    /// A ping.
    Ping,
    /// A normal close ("client closing").
    Close,
}

/// What came from the WebSocket.
#[derive(Debug)]
pub(super) enum Incoming<'a> {
    /// A text frame.
    Text(&'a str),
    /// A close frame, with its code and reason if it had them.
    Close(Option<(u16, String)>),
    /// A ping, pong or binary frame: proof of life, nothing more.
    Other,
}

/// How a link ended.
#[derive(Debug)]
pub(super) enum End {
    /// Reconnect (after `retry_after`, with a new token if `expired`).
    Reconnect {
        reason: String,
        retry_after: Option<Duration>,
        expired: bool,
    },
    /// Stop for good.
    Fatal(ChatError),
    /// The app closed the client.
    Closed,
}

/// A room the app joined.
struct RoomEntry {
    cursor: RoomCursor,
    joined: bool,
    waiters: Vec<oneshot::Sender<Result<JoinInfo, ChatError>>>,
}

/// What a command on the wire waits for.
enum Pending {
    Join(String),
    Send,
    Refresh,
    Command(oneshot::Sender<Result<serde_json::Value, ChatError>>),
}

/// The app asked to close: once the outbox is empty, or at `deadline`.
struct Closing {
    deadline: Instant,
    reply: oneshot::Sender<ChatStats>,
}

/// The id of the `connect` command, the first on every link.
const CONNECT_ID: u64 = 1;

/// One WebSocket's state.
struct Link {
    /// `Some(deadline)` until the `connect` reply.
    handshake: Option<Instant>,
    next_id: u64,
    pending: HashMap<u64, (Pending, Instant)>,
    last_seen: Instant,
    next_ping: Instant,
    /// A token refresh was asked of the driver and has not come back.
    refreshing: bool,
}

/// The chat client's protocol state (see the module docs).
pub(super) struct Connection {
    config: ChatConfig,
    rooms: BTreeMap<String, RoomEntry>,
    outbox: Outbox<Responder>,
    closing: Option<Closing>,
    stats: ChatStats,
    link: Option<Link>,
    transmits: VecDeque<Outgoing>,
    events: VecDeque<ChatEvent>,
    end: Option<End>,
    wants_token: bool,
    /// The time of the latest input: when a command written now is due back.
    now: Instant,
}

impl Connection {
    /// No link yet, nothing joined.
    pub(super) fn new(config: ChatConfig, now: Instant) -> Self {
        Connection {
            now,
            outbox: Outbox::new(config.outbox_capacity),
            config,
            rooms: BTreeMap::new(),
            closing: None,
            stats: ChatStats::default(),
            link: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            end: None,
            wants_token: false,
        }
    }

    /// A WebSocket is open: authenticate on it with `token`, by `deadline`. Then every
    /// joined room is joined again from its cursor and the outbox is resent.
    pub(super) fn open_link(&mut self, now: Instant, token: String, deadline: Instant) {
        self.now = now;
        self.end = None;
        self.transmits.clear();
        self.outbox.connection_lost();
        self.link = Some(Link {
            handshake: Some(deadline),
            next_id: CONNECT_ID + 1,
            pending: HashMap::new(),
            last_seen: now,
            next_ping: now + self.config.ping_interval,
            refreshing: false,
        });
        let connect = CommandFrame {
            id: CONNECT_ID,
            command: Command::Connect {
                token,
                client: Some(ClientInfo {
                    name: self.config.client_name.clone(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
            },
        };
        match serde_json::to_string(&connect) {
            Ok(text) => self.transmits.push_back(Outgoing::Text(text)),
            Err(e) => self.end_link(lost(e.to_string())),
        }
    }

    /// True once the server accepted the `connect` on the current link.
    pub(super) fn is_ready(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.handshake.is_none())
    }

    /// The socket failed or the server went away without a close frame.
    pub(super) fn link_lost(&mut self, reason: String) {
        if self.link.is_some() {
            self.end_link(lost(reason));
        }
    }

    /// A frame from the server.
    pub(super) fn handle_frame(&mut self, now: Instant, frame: Incoming<'_>) {
        self.now = now;
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.last_seen = now;
        let handshaking = link.handshake.is_some();
        match frame {
            Incoming::Close(close) => self.end_link(closed_by_server(close)),
            Incoming::Other => {}
            Incoming::Text(text) if handshaking => self.on_handshake_text(now, text),
            Incoming::Text(text) => self.on_text(now, text),
        }
        self.progress(now);
    }

    /// A request from the app. While a link is authenticating the driver holds them
    /// back (a command then waits for the link instead of failing as offline).
    pub(super) fn request(&mut self, now: Instant, request: Request) {
        self.now = now;
        if self.is_ready() {
            self.online_request(request);
        } else {
            self.offline_request(now, request);
        }
        self.progress(now);
    }

    /// The time has come (see [`Self::poll_timeout`]).
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(link) = self.link.as_mut() {
            if let Some(deadline) = link.handshake {
                if now >= deadline {
                    self.end_link(lost("no reply to connect in time".into()));
                }
            } else if now >= link.last_seen + self.config.idle_timeout {
                self.end_link(lost("nothing received from the server in time".into()));
            } else if link.pending.values().any(|(_, due)| now >= *due) {
                self.end_link(lost("a command got no reply in time".into()));
            } else if now >= link.next_ping {
                link.next_ping = now + self.config.ping_interval;
                self.transmits.push_back(Outgoing::Ping);
            }
        }
        self.progress(now);
    }

    /// The token the driver fetched after the server said the current one expires.
    pub(super) fn token_refreshed(&mut self, now: Instant, token: Result<String, String>) {
        self.now = now;
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.refreshing = false;
        match token {
            Ok(token) => self.send_command(Command::Refresh { token }, Pending::Refresh),
            // The server closes at expiry; the reconnect asks again.
            Err(e) => warn!("token callback failed: {e}"),
        }
        self.progress(now);
    }

    /// The next frame to write.
    pub(super) fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.transmits.pop_front()
    }

    /// The next event for the app.
    pub(super) fn poll_event(&mut self) -> Option<ChatEvent> {
        self.events.pop_front()
    }

    /// True once: the server said the token expires; fetch one and hand it to
    /// [`Self::token_refreshed`].
    pub(super) fn poll_token_wanted(&mut self) -> bool {
        std::mem::take(&mut self.wants_token)
    }

    /// How the link ended, once (also `Closed` when a close completes offline). Write
    /// what [`Self::poll_transmit`] still has (a close frame) before dropping the socket.
    pub(super) fn poll_end(&mut self) -> Option<End> {
        self.end.take()
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let closing = self.closing.as_ref().map(|c| c.deadline);
        let Some(link) = &self.link else {
            return closing;
        };
        let link_times = match link.handshake {
            Some(deadline) => vec![deadline],
            None => {
                let mut times = vec![link.last_seen + self.config.idle_timeout, link.next_ping];
                times.extend(link.pending.values().map(|(_, due)| *due));
                times.extend(self.outbox.held_until());
                times
            }
        };
        link_times.into_iter().chain(closing).min()
    }

    /// The client stops for good: queued messages fail (with `error`, or `Closed`),
    /// waiting joins are answered, the app gets `Failed` when there is an error, and a
    /// pending close gets the final counters.
    pub(super) fn finish(&mut self, error: Option<ChatError>) {
        self.link = None;
        let error_for_queue = error.clone().unwrap_or(ChatError::Closed);
        for (message, responder) in self.outbox.drain_all() {
            let event = self.fail(message, responder, error_for_queue.clone());
            self.events.push_back(event);
        }
        for (_, entry) in std::mem::take(&mut self.rooms) {
            for waiter in entry.waiters {
                let _ = waiter.send(Err(error_for_queue.clone()));
            }
        }
        if let Some(error) = error {
            self.events.push_back(ChatEvent::Failed(error));
        }
        if let Some(closing) = self.closing.take() {
            let _ = closing.reply.send(self.stats.clone());
        }
    }

    /// Ends the link: the driver reads `end` and drops the socket.
    fn end_link(&mut self, end: End) {
        self.link = None;
        self.outbox.connection_lost();
        if self.end.is_none() {
            self.end = Some(end);
        }
    }

    /// After every input: finish a close that is due, and put the outbox's head on the
    /// wire when it may go.
    fn progress(&mut self, now: Instant) {
        if let Some(closing) = &self.closing
            && (self.outbox.is_empty() || now >= closing.deadline)
            && self.end.is_none()
        {
            if self.is_ready() {
                self.transmits.push_back(Outgoing::Close);
            }
            self.link = None;
            self.outbox.connection_lost();
            self.end = Some(End::Closed);
            return;
        }
        if self.is_ready() {
            self.pump_outbox(now);
        }
    }

    fn pump_outbox(&mut self, now: Instant) {
        let rooms = &self.rooms;
        let Some(message) = self
            .outbox
            .next_to_send(now, |room| rooms.get(room).is_some_and(|e| e.joined))
        else {
            return;
        };
        let command = Command::Send {
            room: message.room.clone(),
            client_msg_id: message.client_msg_id.clone(),
            text: message.text.clone(),
        };
        if let Some(id) = self.send_command_id(command, Pending::Send) {
            self.outbox.mark_sent(id);
        }
    }

    fn send_command(&mut self, command: Command, pending: Pending) {
        self.send_command_id(command, pending);
    }

    /// Queues a command frame and remembers what its reply is for; its id.
    fn send_command_id(&mut self, command: Command, pending: Pending) -> Option<u64> {
        let due = self.now + self.config.command_timeout;
        let link = self.link.as_mut()?;
        let id = link.next_id;
        link.next_id += 1;
        match serde_json::to_string(&CommandFrame { id, command }) {
            Ok(text) => {
                // The reply is due `command_timeout` after the frame is queued; the
                // driver writes it at once.
                link.pending.insert(id, (pending, due));
                self.transmits.push_back(Outgoing::Text(text));
                Some(id)
            }
            Err(e) => {
                self.end_link(End::Fatal(ChatError::Protocol(e.to_string())));
                None
            }
        }
    }

    fn on_handshake_text(&mut self, now: Instant, text: &str) {
        let Ok(ServerFrame::Reply(reply)) = serde_json::from_str::<ServerFrame>(text) else {
            return;
        };
        if reply.id != CONNECT_ID {
            return;
        }
        if !reply.ok {
            let error = reply.error.unwrap_or_else(|| {
                ErrorBody::new(ErrorCode::Internal, "a failed reply without an error")
            });
            self.end_link(match error.code {
                ErrorCode::TokenExpired => End::Reconnect {
                    reason: error.to_string(),
                    retry_after: None,
                    expired: true,
                },
                _ if error.temporary => End::Reconnect {
                    reason: error.to_string(),
                    retry_after: error.retry_after_ms.map(Duration::from_millis),
                    expired: false,
                },
                ErrorCode::Unauthorized => End::Fatal(ChatError::Unauthorized(error.message)),
                _ => End::Fatal(ChatError::Refused(error)),
            });
            return;
        }
        let Some(connected) = reply
            .result
            .and_then(|r| serde_json::from_value::<ConnectResult>(r).ok())
        else {
            self.end_link(End::Fatal(ChatError::Protocol(
                "a connect result without a user".into(),
            )));
            return;
        };
        if let Some(link) = self.link.as_mut() {
            link.handshake = None;
            link.last_seen = now;
            link.next_ping = now + self.config.ping_interval;
        }
        self.stats.connections += 1;
        self.events.push_back(ChatEvent::Connected {
            user: connected.user,
            session: connected.session,
            reconnect: self.stats.connections > 1,
        });
        let rooms: Vec<(String, _)> = self
            .rooms
            .iter_mut()
            .map(|(room, entry)| {
                entry.joined = false;
                (room.clone(), entry.cursor.since())
            })
            .collect();
        for (room, since) in rooms {
            self.send_command(
                Command::Join {
                    room: room.clone(),
                    since,
                },
                Pending::Join(room),
            );
        }
    }

    /// Serves a request while there is no authenticated link.
    fn offline_request(&mut self, now: Instant, request: Request) {
        match request {
            Request::Join { room, reply } => {
                let entry = self.rooms.entry(room).or_insert_with(new_room);
                entry.waiters.push(reply);
            }
            Request::Leave { room, reply } => {
                let events = self.forget_room(&room, ChatError::NotJoined(room.clone()));
                self.events.extend(events);
                let _ = reply.send(Ok(()));
            }
            Request::Enqueue { message, responder } => self.enqueue(message, responder),
            Request::Command { reply, .. } => {
                let _ = reply.send(Err(ChatError::NotConnected));
            }
            Request::Close { within, reply } => {
                self.closing = Some(Closing {
                    deadline: now + within,
                    reply,
                });
            }
        }
    }

    fn online_request(&mut self, request: Request) {
        match request {
            Request::Join { room, reply } => {
                let entry = self.rooms.entry(room.clone()).or_insert_with(new_room);
                entry.waiters.push(reply);
                let since = entry.cursor.since();
                let already = self.link.as_ref().is_some_and(|link| {
                    link.pending
                        .values()
                        .any(|(p, _)| matches!(p, Pending::Join(r) if *r == room))
                });
                if !already {
                    self.send_command(
                        Command::Join {
                            room: room.clone(),
                            since,
                        },
                        Pending::Join(room),
                    );
                }
            }
            Request::Leave { room, reply } => {
                let events = self.forget_room(&room, ChatError::NotJoined(room.clone()));
                self.events.extend(events);
                let (tx, _rx) = oneshot::channel();
                self.send_command(Command::Leave { room }, Pending::Command(tx));
                let _ = reply.send(Ok(()));
            }
            Request::Enqueue { message, responder } => self.enqueue(message, responder),
            Request::Command { command, reply } => {
                self.send_command(command, Pending::Command(reply));
            }
            Request::Close { within, reply } => {
                self.closing = Some(Closing {
                    deadline: self.now + within,
                    reply,
                });
            }
        }
    }

    /// Queues a message; one that cannot be queued fails at once (its outcome is owed
    /// to the app either way).
    fn enqueue(&mut self, message: OutgoingMessage, responder: Responder) {
        if !self.rooms.contains_key(&message.room) {
            let error = ChatError::NotJoined(message.room.clone());
            let event = self.fail(message, responder, error);
            self.events.push_back(event);
            return;
        }
        if let Err((message, responder)) = self.outbox.push(message, responder) {
            // The permit bounds the queue; this only happens if the sizes disagree.
            warn!(room = %message.room, "outbox full");
            let error = ChatError::QueueFull(self.outbox.len());
            let event = self.fail(message, responder, error);
            self.events.push_back(event);
        }
    }

    /// Drops a room and fails its queued messages; their events.
    fn forget_room(&mut self, room: &str, error: ChatError) -> Vec<ChatEvent> {
        let mut events = Vec::new();
        if let Some(entry) = self.rooms.remove(room) {
            for waiter in entry.waiters {
                let _ = waiter.send(Err(error.clone()));
            }
        }
        for (message, responder) in self.outbox.drain_room(room) {
            events.push(self.fail(message, responder, error.clone()));
        }
        events
    }

    /// A queued message failed for good: its waiter is told; the app's event.
    fn fail(
        &mut self,
        message: OutgoingMessage,
        mut responder: Responder,
        error: ChatError,
    ) -> ChatEvent {
        self.stats.send_failures += 1;
        if let Some(reply) = responder.reply.take() {
            let _ = reply.send(Err(error.clone()));
        }
        ChatEvent::SendFailed {
            room: message.room,
            client_msg_id: message.client_msg_id,
            error,
        }
    }

    fn on_text(&mut self, now: Instant, text: &str) {
        let frame: ServerFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                warn!("ignoring a frame the client cannot read: {e}");
                return;
            }
        };
        match frame {
            ServerFrame::Reply(reply) => {
                let Some((pending, _)) = self
                    .link
                    .as_mut()
                    .and_then(|link| link.pending.remove(&reply.id))
                else {
                    return;
                };
                let outcome = if reply.ok {
                    Ok(reply.result.unwrap_or(serde_json::Value::Null))
                } else {
                    Err(reply.error.unwrap_or_else(|| {
                        ErrorBody::new(ErrorCode::Internal, "a failed reply without an error")
                    }))
                };
                self.on_reply(now, reply.id, pending, outcome);
            }
            ServerFrame::Message(message) => {
                let Some(entry) = self.rooms.get_mut(&message.room) else {
                    return;
                };
                match entry.cursor.on_message(&message.epoch, message.seq) {
                    Arrival::Duplicate => self.stats.duplicates_dropped += 1,
                    Arrival::Deliver => {
                        self.stats.delivered += 1;
                        self.events.push_back(ChatEvent::Message(message));
                    }
                    Arrival::Gap(missing) => {
                        self.stats.delivered += 1;
                        self.events.push_back(ChatEvent::Gap {
                            room: message.room.clone(),
                            missing,
                        });
                        self.events.push_back(ChatEvent::Message(message));
                    }
                }
            }
            ServerFrame::Deleted { room, seq, .. } => {
                self.events.push_back(ChatEvent::Deleted { room, seq })
            }
            ServerFrame::Viewers { room, count } => {
                self.events.push_back(ChatEvent::Viewers { room, count })
            }
            ServerFrame::Member { room, user, event } => {
                self.events
                    .push_back(ChatEvent::Member { room, user, event })
            }
            ServerFrame::Typing { room, user } => {
                self.events.push_back(ChatEvent::Typing { room, user })
            }
            ServerFrame::RoomState { room, state } => {
                self.events.push_back(ChatEvent::RoomState { room, state })
            }
            ServerFrame::TokenExpiring { .. } => {
                if let Some(link) = self.link.as_mut()
                    && !link.refreshing
                {
                    link.refreshing = true;
                    self.wants_token = true;
                }
            }
            ServerFrame::Kicked {
                room,
                code,
                message,
            } => {
                let error = ErrorBody::new(code, message);
                let events = self.forget_room(&room, ChatError::Refused(error.clone()));
                self.events.push_back(ChatEvent::Kicked { room, error });
                self.events.extend(events);
            }
            ServerFrame::Disconnect(goodbye) => {
                self.end_link(if goodbye.reconnect {
                    End::Reconnect {
                        expired: goodbye.code == ErrorCode::TokenExpired.as_str(),
                        reason: format!(
                            "the server disconnected: {} ({})",
                            goodbye.message, goodbye.code
                        ),
                        retry_after: goodbye.retry_after_ms.map(Duration::from_millis),
                    }
                } else if goodbye.code == ErrorCode::Unauthorized.as_str() {
                    End::Fatal(ChatError::Unauthorized(goodbye.message))
                } else {
                    End::Fatal(ChatError::Protocol(format!(
                        "the server disconnected for good: {} ({})",
                        goodbye.message, goodbye.code
                    )))
                });
            }
            ServerFrame::Error { error } => warn!("the server refused a frame: {error}"),
            ServerFrame::Unknown => {}
        }
    }

    fn on_reply(
        &mut self,
        now: Instant,
        id: u64,
        pending: Pending,
        outcome: Result<serde_json::Value, ErrorBody>,
    ) {
        match pending {
            Pending::Join(room) => self.on_join_reply(room, outcome),
            Pending::Send => self.on_send_reply(now, id, outcome),
            Pending::Refresh => match outcome {
                Ok(_) => {
                    self.stats.refreshes += 1;
                    self.events.push_back(ChatEvent::TokenRefreshed);
                }
                Err(error) => warn!("refresh refused: {error}"),
            },
            Pending::Command(reply) => {
                let _ = reply.send(outcome.map_err(ChatError::Refused));
            }
        }
    }

    fn on_join_reply(&mut self, room: String, outcome: Result<serde_json::Value, ErrorBody>) {
        let result = match outcome {
            Ok(value) => match serde_json::from_value::<JoinResult>(value) {
                Ok(result) => result,
                Err(e) => {
                    let error = ChatError::Protocol(format!("bad join result: {e}"));
                    return self.end_link(End::Fatal(error));
                }
            },
            Err(error) if error.code == ErrorCode::TokenExpired => {
                return self.end_link(End::Reconnect {
                    reason: error.to_string(),
                    retry_after: None,
                    expired: true,
                });
            }
            Err(error) if error.temporary => {
                return self.end_link(End::Reconnect {
                    reason: format!("joining {room}: {error}"),
                    retry_after: error.retry_after_ms.map(Duration::from_millis),
                    expired: false,
                });
            }
            Err(error) => {
                let events = self.forget_room(&room, ChatError::Refused(error));
                self.events.extend(events);
                return;
            }
        };
        let Some(entry) = self.rooms.get_mut(&room) else {
            return;
        };
        let outcome = entry.cursor.on_join(&result);
        entry.joined = true;
        let info = JoinInfo {
            viewers: result.viewers,
            seq: result.seq,
            outcome: outcome.clone(),
            state: result.state.clone(),
        };
        for waiter in entry.waiters.drain(..) {
            let _ = waiter.send(Ok(info.clone()));
        }
        if let JoinOutcome::Missed(range) = &outcome {
            debug!(%room, ?range, "the server could not replay everything missed");
        }
        self.events.push_back(ChatEvent::Joined {
            room,
            viewers: result.viewers,
            outcome,
            state: result.state,
        });
    }

    fn on_send_reply(
        &mut self,
        now: Instant,
        id: u64,
        outcome: Result<serde_json::Value, ErrorBody>,
    ) {
        match outcome {
            Ok(value) => {
                let result: SendResult = match serde_json::from_value(value) {
                    Ok(result) => result,
                    Err(e) => {
                        let error = ChatError::Protocol(format!("bad send result: {e}"));
                        return self.end_link(End::Fatal(error));
                    }
                };
                if let Some((message, mut responder, attempts)) = self.outbox.on_ack(id) {
                    self.stats.sent += 1;
                    self.stats.resends += u64::from(attempts.saturating_sub(1));
                    if let Some(reply) = responder.reply.take() {
                        let _ = reply.send(Ok(result.clone()));
                    }
                    drop(responder);
                    self.events.push_back(ChatEvent::Sent {
                        room: message.room,
                        client_msg_id: message.client_msg_id,
                        result,
                    });
                }
            }
            Err(error) if error.code == ErrorCode::TokenExpired => {
                self.end_link(End::Reconnect {
                    reason: error.to_string(),
                    retry_after: None,
                    expired: true,
                });
            }
            Err(error) => match self.outbox.on_refusal(id, &error, now) {
                Some(Refusal::Held(until)) => {
                    self.stats.waits += 1;
                    debug!(wait = ?until.saturating_duration_since(now), "send held: {error}");
                }
                Some(Refusal::Dropped(message, responder)) => {
                    let event = self.fail(message, responder, ChatError::Refused(error));
                    self.events.push_back(event);
                }
                None => {}
            },
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("rooms", &self.rooms.keys().collect::<Vec<_>>())
            .field("outbox", &self.outbox)
            .field("linked", &self.link.is_some())
            .field("ready", &self.is_ready())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn new_room() -> RoomEntry {
    RoomEntry {
        cursor: RoomCursor::new(),
        joined: false,
        waiters: Vec::new(),
    }
}

/// A lost link, to be retried.
pub(super) fn lost(reason: String) -> End {
    End::Reconnect {
        reason,
        retry_after: None,
        expired: false,
    }
}

/// Reads the server's close code (its `retry_after_ms` came in the `disconnect` push).
fn closed_by_server(frame: Option<(u16, String)>) -> End {
    let Some((code, text)) = frame else {
        return lost("the server closed the connection".into());
    };
    let reason = format!("the server closed the connection ({code} {text})");
    match code {
        close_code::UNAUTHORIZED => End::Fatal(ChatError::Unauthorized(reason)),
        close_code::BANNED | close_code::PROTOCOL_ERROR => End::Fatal(ChatError::Protocol(reason)),
        close_code::TOKEN_EXPIRED => End::Reconnect {
            reason,
            retry_after: None,
            expired: true,
        },
        _ => lost(reason),
    }
}

#[cfg(all(test, feature = "server"))]
#[path = "connection_tests.rs"]
mod tests;
