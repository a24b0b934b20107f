//! The client's task: one connection at a time, reconnecting with backoff, re-joining
//! rooms with their cursors and replaying the outbox.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, warn};

use super::backoff::Backoff;
use super::cursor::{Arrival, JoinOutcome, RoomCursor};
use super::outbox::{Outbox, OutgoingMessage, Refusal};
use super::transport::{self, ChatSocket, ChatUrl};
use super::{
    ChatConfig, ChatEvent, ChatStats, JoinInfo, Request, Responder, TokenRequest, TokenSource,
};
use crate::chat::ChatError;
use crate::chat::protocol::{
    ClientInfo, Command, CommandFrame, ConnectResult, ErrorBody, ErrorCode, JoinResult, SendResult,
    ServerFrame, close_code,
};

type Sink = SplitSink<ChatSocket, Message>;

struct RoomEntry {
    cursor: RoomCursor,
    joined: bool,
    waiters: Vec<oneshot::Sender<Result<JoinInfo, ChatError>>>,
}

enum Pending {
    Join(String),
    Send,
    Refresh,
    Command(oneshot::Sender<Result<serde_json::Value, ChatError>>),
}

/// How a connection ended.
enum End {
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

struct Closing {
    deadline: Instant,
    reply: oneshot::Sender<ChatStats>,
}

pub(super) struct Driver {
    url: ChatUrl,
    tokens: TokenSource,
    config: ChatConfig,
    events: mpsc::Sender<ChatEvent>,
    requests: mpsc::Receiver<Request>,
    rooms: BTreeMap<String, RoomEntry>,
    outbox: Outbox<Responder>,
    backoff: Backoff,
    token: Option<String>,
    closing: Option<Closing>,
    stats: ChatStats,
}

/// A live connection's bookkeeping.
struct Link {
    sink: Sink,
    next_id: u64,
    pending: HashMap<u64, (Pending, Instant)>,
    refresh: Option<oneshot::Receiver<Result<String, String>>>,
}

impl Driver {
    pub(super) fn new(
        url: ChatUrl,
        tokens: TokenSource,
        config: ChatConfig,
        events: mpsc::Sender<ChatEvent>,
        requests: mpsc::Receiver<Request>,
    ) -> Self {
        Driver {
            url,
            tokens,
            backoff: Backoff::new(config.backoff),
            outbox: Outbox::new(config.outbox_capacity),
            config,
            events,
            requests,
            rooms: BTreeMap::new(),
            token: None,
            closing: None,
            stats: ChatStats::default(),
        }
    }

    async fn emit(&self, event: ChatEvent) {
        // An app that dropped its event stream still gets its sends and commands done.
        let _ = self.events.send(event).await;
    }

    async fn fetch_token(&mut self, why: TokenRequest) -> Result<String, ChatError> {
        let token = timeout(self.config.token_timeout, self.tokens.get(why))
            .await
            .map_err(|_| ChatError::Token("the token callback did not answer in time".into()))?
            .map_err(ChatError::Token)?;
        self.token = Some(token.clone());
        Ok(token)
    }

    pub(super) async fn run(mut self, first: oneshot::Sender<Result<(), ChatError>>) {
        let mut first = Some(first);
        let mut why = TokenRequest::Initial;
        let mut expired_in_a_row = 0u32;
        loop {
            let attempt = self.attempt(why).await;
            let end = match attempt {
                Ok((socket, connected)) => {
                    expired_in_a_row = 0;
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                    self.stats.connections += 1;
                    self.emit(ChatEvent::Connected {
                        user: connected.user,
                        session: connected.session,
                        reconnect: self.stats.connections > 1,
                    })
                    .await;
                    let started = Instant::now();
                    let end = self.session(socket).await;
                    self.backoff.connection_ended(started.elapsed());
                    end
                }
                Err(end) => end,
            };
            let (reason, retry_after) = match end {
                End::Closed => return self.finish(None).await,
                End::Fatal(error) => {
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(error));
                        return self.finish(None).await;
                    }
                    return self.finish(Some(error)).await;
                }
                End::Reconnect {
                    reason,
                    retry_after,
                    expired,
                } => {
                    why = if expired {
                        expired_in_a_row += 1;
                        TokenRequest::Expired
                    } else {
                        TokenRequest::Initial
                    };
                    (reason, retry_after)
                }
            };
            let replace_token_now = why == TokenRequest::Expired && expired_in_a_row <= 1;
            if let Some(waiting) = first.take() {
                // The first connection is the app's to retry: it learns why it failed.
                // Only an expired token is replaced first.
                if !replace_token_now {
                    let _ = waiting.send(Err(ChatError::Connect {
                        addr: self.url.addr(),
                        reason,
                    }));
                    return self.finish(None).await;
                }
                first = Some(waiting);
            }
            // A token that expired is replaced at once; anything else waits.
            let delay = if replace_token_now {
                Duration::ZERO
            } else {
                self.backoff.next_delay(rand::random::<f64>(), retry_after)
            };
            debug!(?delay, %reason, "chat connection lost");
            self.emit(ChatEvent::Disconnected {
                reason,
                retry_in: delay,
            })
            .await;
            if !self.wait_offline(Instant::now() + delay).await {
                return self.finish(None).await;
            }
        }
    }

    /// Connects and authenticates once.
    async fn attempt(&mut self, why: TokenRequest) -> Result<(ChatSocket, ConnectResult), End> {
        let token = match (&self.token, why) {
            (Some(token), TokenRequest::Initial) => token.clone(),
            _ => match self.fetch_token(why).await {
                Ok(token) => token,
                Err(error) => {
                    return Err(End::Reconnect {
                        reason: error.to_string(),
                        retry_after: None,
                        expired: false,
                    });
                }
            },
        };
        let deadline = Instant::now() + self.config.connect_timeout;
        let mut socket = transport::open(
            &self.url,
            &self.config.tls,
            self.config.max_frame_bytes,
            self.config.connect_timeout,
        )
        .await
        .map_err(|e| {
            if e.retry {
                End::Reconnect {
                    reason: e.error.to_string(),
                    retry_after: e.retry_after,
                    expired: false,
                }
            } else {
                End::Fatal(e.error)
            }
        })?;
        let connect = CommandFrame {
            id: 1,
            command: Command::Connect {
                token,
                client: Some(ClientInfo {
                    name: self.config.client_name.clone(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
            },
        };
        let lost = |reason: String| End::Reconnect {
            reason,
            retry_after: None,
            expired: false,
        };
        let text = serde_json::to_string(&connect).map_err(|e| lost(e.to_string()))?;
        timeout(
            deadline.saturating_duration_since(Instant::now()),
            socket.send(Message::text(text)),
        )
        .await
        .map_err(|_| lost("timed out sending connect".into()))?
        .map_err(|e| lost(format!("sending connect: {e}")))?;
        loop {
            let frame = timeout(
                deadline.saturating_duration_since(Instant::now()),
                socket.next(),
            )
            .await
            .map_err(|_| lost("no reply to connect in time".into()))?;
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => return Err(closed_by_server(frame)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(lost(format!("reading the connect reply: {e}"))),
                None => return Err(lost("the server closed before replying to connect".into())),
            };
            let Ok(ServerFrame::Reply(reply)) = serde_json::from_str::<ServerFrame>(text.as_str())
            else {
                continue;
            };
            if reply.id != 1 {
                continue;
            }
            if reply.ok {
                let result = reply
                    .result
                    .and_then(|r| serde_json::from_value::<ConnectResult>(r).ok())
                    .ok_or_else(|| {
                        End::Fatal(ChatError::Protocol(
                            "a connect result without a user".into(),
                        ))
                    })?;
                return Ok((socket, result));
            }
            let error = reply.error.unwrap_or_else(|| {
                ErrorBody::new(ErrorCode::Internal, "a failed reply without an error")
            });
            let _ = socket.close(None).await;
            return Err(match error.code {
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
        }
    }

    /// Serves requests while disconnected until `until`; false when the client is done.
    async fn wait_offline(&mut self, until: Instant) -> bool {
        loop {
            if let Some(closing) = &self.closing
                && (self.outbox.is_empty() || Instant::now() >= closing.deadline)
            {
                return false;
            }
            let close_by = self.closing.as_ref().map(|c| c.deadline).unwrap_or(until);
            tokio::select! {
                _ = sleep_until(until.min(close_by)) => {
                    if Instant::now() >= until {
                        return true;
                    }
                }
                request = self.requests.recv() => match request {
                    None => return false,
                    Some(request) => {
                        if let Some(event) = self.offline_request(request) {
                            self.emit(event).await;
                        }
                    }
                }
            }
        }
    }

    /// Serves a request while disconnected; the event it caused, if any.
    fn offline_request(&mut self, request: Request) -> Option<ChatEvent> {
        match request {
            Request::Join { room, reply } => {
                let entry = self.rooms.entry(room).or_insert_with(new_room);
                entry.waiters.push(reply);
            }
            Request::Leave { room, reply } => {
                self.forget_room(&room, ChatError::NotJoined(room.clone()));
                let _ = reply.send(Ok(()));
            }
            Request::Enqueue { message, responder } => return self.enqueue(message, responder),
            Request::Command { reply, .. } => {
                let _ = reply.send(Err(ChatError::NotConnected));
            }
            Request::Close { within, reply } => {
                self.closing = Some(Closing {
                    deadline: Instant::now() + within,
                    reply,
                });
            }
        }
        None
    }

    /// Queues a message; a message that cannot be queued fails, and its event is
    /// returned (a queued message's outcome is owed to the app either way).
    fn enqueue(&mut self, message: OutgoingMessage, responder: Responder) -> Option<ChatEvent> {
        if !self.rooms.contains_key(&message.room) {
            let error = ChatError::NotJoined(message.room.clone());
            return Some(self.fail(message, responder, error));
        }
        if let Err((message, responder)) = self.outbox.push(message, responder) {
            // The permit bounds the queue; this only happens if the sizes disagree.
            warn!(room = %message.room, "outbox full");
            let error = ChatError::QueueFull(self.outbox.len());
            return Some(self.fail(message, responder, error));
        }
        None
    }

    /// Drops a room and fails its queued messages.
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

    /// A queued message failed for good: its waiter is told, and the event for the app
    /// is returned.
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

    async fn finish(mut self, error: Option<ChatError>) {
        let error_for_queue = error.clone().unwrap_or(ChatError::Closed);
        for (message, responder) in self.outbox.drain_all() {
            let event = self.fail(message, responder, error_for_queue.clone());
            self.emit(event).await;
        }
        for (_, entry) in std::mem::take(&mut self.rooms) {
            for waiter in entry.waiters {
                let _ = waiter.send(Err(error_for_queue.clone()));
            }
        }
        if let Some(error) = error {
            self.emit(ChatEvent::Failed(error)).await;
        }
        if let Some(closing) = self.closing.take() {
            let _ = closing.reply.send(self.stats.clone());
        }
        // Anything asked after this point fails with Closed as the channel drops.
    }

    /// Runs one authenticated connection until it ends.
    async fn session(&mut self, socket: ChatSocket) -> End {
        let (sink, mut stream) = socket.split();
        let mut link = Link {
            sink,
            next_id: 2,
            pending: HashMap::new(),
            refresh: None,
        };
        self.outbox.connection_lost();
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            if let Some(entry) = self.rooms.get_mut(&room) {
                entry.joined = false;
            }
            let since = self.rooms.get(&room).and_then(|e| e.cursor.since());
            if let Err(end) = self
                .send_command(
                    &mut link,
                    Command::Join {
                        room: room.clone(),
                        since,
                    },
                    Pending::Join(room),
                )
                .await
            {
                return end;
            }
        }
        let mut ping = tokio::time::interval(self.config.ping_interval);
        ping.tick().await;
        let mut last_seen = Instant::now();
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            if let Some(end) = self.check_closing(&mut link).await {
                return end;
            }
            if let Err(end) = self.pump_outbox(&mut link).await {
                return end;
            }
            let held = self.outbox.held_until().unwrap_or(far);
            let reply_due = link
                .pending
                .values()
                .map(|(_, due)| *due)
                .min()
                .unwrap_or(far);
            let close_by = self.closing.as_ref().map(|c| c.deadline).unwrap_or(far);
            let idle_by = last_seen + self.config.idle_timeout;
            tokio::select! {
                frame = stream.next() => {
                    last_seen = Instant::now();
                    let result = match frame {
                        Some(Ok(Message::Text(text))) => self.on_text(&mut link, text.as_str()).await,
                        Some(Ok(Message::Close(frame))) => Err(closed_by_server(frame)),
                        Some(Ok(_)) => Ok(()),
                        Some(Err(e)) => Err(reconnect(format!("connection lost: {e}"))),
                        None => Err(reconnect("the server closed the connection".into())),
                    };
                    if let Err(end) = result {
                        self.outbox.connection_lost();
                        return end;
                    }
                }
                request = self.requests.recv() => match request {
                    None => return End::Closed,
                    Some(request) => {
                        if let Err(end) = self.online_request(&mut link, request).await {
                            return end;
                        }
                    }
                },
                token = async { match link.refresh.as_mut() { Some(rx) => rx.await, None => std::future::pending().await } }, if link.refresh.is_some() => {
                    link.refresh = None;
                    match token {
                        Ok(Ok(token)) => {
                            self.token = Some(token.clone());
                            if let Err(end) = self.send_command(&mut link, Command::Refresh { token }, Pending::Refresh).await {
                                return end;
                            }
                        }
                        // The server closes at expiry; the reconnect asks again.
                        Ok(Err(e)) => warn!("token callback failed: {e}"),
                        Err(_) => {}
                    }
                }
                _ = ping.tick() => {
                    if timeout(self.config.command_timeout, link.sink.send(Message::Ping(Default::default()))).await.map(|r| r.is_err()).unwrap_or(true) {
                        return reconnect("writing a ping failed".into());
                    }
                }
                _ = sleep_until(idle_by) => return reconnect("nothing received from the server in time".into()),
                _ = sleep_until(reply_due) => return reconnect("a command got no reply in time".into()),
                _ = sleep_until(held) => {}
                _ = sleep_until(close_by) => {}
            }
        }
    }

    async fn check_closing(&mut self, link: &mut Link) -> Option<End> {
        let closing = self.closing.as_ref()?;
        if self.outbox.is_empty() || Instant::now() >= closing.deadline {
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "client closing".into(),
            };
            let _ = timeout(
                Duration::from_secs(2),
                link.sink.send(Message::Close(Some(frame))),
            )
            .await;
            return Some(End::Closed);
        }
        None
    }

    async fn pump_outbox(&mut self, link: &mut Link) -> Result<(), End> {
        let rooms = &self.rooms;
        let Some(message) = self.outbox.next_to_send(Instant::now(), |room| {
            rooms.get(room).is_some_and(|e| e.joined)
        }) else {
            return Ok(());
        };
        let command = Command::Send {
            room: message.room.clone(),
            client_msg_id: message.client_msg_id.clone(),
            text: message.text.clone(),
        };
        let id = self.send_command(link, command, Pending::Send).await?;
        self.outbox.mark_sent(id);
        Ok(())
    }

    async fn send_command(
        &mut self,
        link: &mut Link,
        command: Command,
        pending: Pending,
    ) -> Result<u64, End> {
        let id = link.next_id;
        link.next_id += 1;
        let text = serde_json::to_string(&CommandFrame { id, command })
            .map_err(|e| End::Fatal(ChatError::Protocol(e.to_string())))?;
        match timeout(
            self.config.command_timeout,
            link.sink.send(Message::text(text)),
        )
        .await
        {
            Ok(Ok(())) => {
                link.pending
                    .insert(id, (pending, Instant::now() + self.config.command_timeout));
                Ok(id)
            }
            Ok(Err(e)) => Err(reconnect(format!("writing failed: {e}"))),
            Err(_) => Err(reconnect("writing timed out".into())),
        }
    }

    async fn online_request(&mut self, link: &mut Link, request: Request) -> Result<(), End> {
        match request {
            Request::Join { room, reply } => {
                let entry = self.rooms.entry(room.clone()).or_insert_with(new_room);
                entry.waiters.push(reply);
                let since = entry.cursor.since();
                let already = link
                    .pending
                    .values()
                    .any(|(p, _)| matches!(p, Pending::Join(r) if *r == room));
                if !already {
                    self.send_command(
                        link,
                        Command::Join {
                            room: room.clone(),
                            since,
                        },
                        Pending::Join(room),
                    )
                    .await?;
                }
            }
            Request::Leave { room, reply } => {
                let events = self.forget_room(&room, ChatError::NotJoined(room.clone()));
                for event in events {
                    self.emit(event).await;
                }
                let (tx, _rx) = oneshot::channel();
                self.send_command(link, Command::Leave { room }, Pending::Command(tx))
                    .await?;
                let _ = reply.send(Ok(()));
            }
            Request::Enqueue { message, responder } => {
                if let Some(event) = self.enqueue(message, responder) {
                    self.emit(event).await;
                }
            }
            Request::Command { command, reply } => {
                self.send_command(link, command, Pending::Command(reply))
                    .await?;
            }
            Request::Close { within, reply } => {
                self.closing = Some(Closing {
                    deadline: Instant::now() + within,
                    reply,
                });
            }
        }
        Ok(())
    }

    async fn on_text(&mut self, link: &mut Link, text: &str) -> Result<(), End> {
        let frame: ServerFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                warn!("ignoring a frame the client cannot read: {e}");
                return Ok(());
            }
        };
        match frame {
            ServerFrame::Reply(reply) => {
                let Some((pending, _)) = link.pending.remove(&reply.id) else {
                    return Ok(());
                };
                let outcome = if reply.ok {
                    Ok(reply.result.unwrap_or(serde_json::Value::Null))
                } else {
                    Err(reply.error.unwrap_or_else(|| {
                        ErrorBody::new(ErrorCode::Internal, "a failed reply without an error")
                    }))
                };
                self.on_reply(reply.id, pending, outcome).await?;
            }
            ServerFrame::Message(message) => {
                let Some(entry) = self.rooms.get_mut(&message.room) else {
                    return Ok(());
                };
                match entry.cursor.on_message(&message.epoch, message.seq) {
                    Arrival::Duplicate => self.stats.duplicates_dropped += 1,
                    Arrival::Deliver => {
                        self.stats.delivered += 1;
                        self.emit(ChatEvent::Message(message)).await;
                    }
                    Arrival::Gap(missing) => {
                        self.stats.delivered += 1;
                        self.emit(ChatEvent::Gap {
                            room: message.room.clone(),
                            missing,
                        })
                        .await;
                        self.emit(ChatEvent::Message(message)).await;
                    }
                }
            }
            ServerFrame::Deleted { room, seq, .. } => {
                self.emit(ChatEvent::Deleted { room, seq }).await
            }
            ServerFrame::Viewers { room, count } => {
                self.emit(ChatEvent::Viewers { room, count }).await
            }
            ServerFrame::Member { room, user, event } => {
                self.emit(ChatEvent::Member { room, user, event }).await
            }
            ServerFrame::Typing { room, user } => self.emit(ChatEvent::Typing { room, user }).await,
            ServerFrame::RoomState { room, state } => {
                self.emit(ChatEvent::RoomState { room, state }).await
            }
            ServerFrame::TokenExpiring { .. } => {
                if link.refresh.is_none() {
                    let (tx, rx) = oneshot::channel();
                    let source = self.tokens.clone();
                    let limit = self.config.token_timeout;
                    tokio::spawn(async move {
                        let token = timeout(limit, source.get(TokenRequest::Expiring))
                            .await
                            .unwrap_or_else(|_| {
                                Err("the token callback did not answer in time".into())
                            });
                        let _ = tx.send(token);
                    });
                    link.refresh = Some(rx);
                }
            }
            ServerFrame::Kicked {
                room,
                code,
                message,
            } => {
                let error = ErrorBody::new(code, message);
                let events = self.forget_room(&room, ChatError::Refused(error.clone()));
                self.emit(ChatEvent::Kicked { room, error }).await;
                for event in events {
                    self.emit(event).await;
                }
            }
            ServerFrame::Disconnect(goodbye) => {
                return Err(if goodbye.reconnect {
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
        Ok(())
    }

    async fn on_reply(
        &mut self,
        id: u64,
        pending: Pending,
        outcome: Result<serde_json::Value, ErrorBody>,
    ) -> Result<(), End> {
        match pending {
            Pending::Join(room) => self.on_join_reply(room, outcome).await?,
            Pending::Send => self.on_send_reply(id, outcome).await?,
            Pending::Refresh => match outcome {
                Ok(_) => {
                    self.stats.refreshes += 1;
                    self.emit(ChatEvent::TokenRefreshed).await;
                }
                Err(error) => warn!("refresh refused: {error}"),
            },
            Pending::Command(reply) => {
                let _ = reply.send(outcome.map_err(ChatError::Refused));
            }
        }
        Ok(())
    }

    async fn on_join_reply(
        &mut self,
        room: String,
        outcome: Result<serde_json::Value, ErrorBody>,
    ) -> Result<(), End> {
        let result = match outcome {
            Ok(value) => serde_json::from_value::<JoinResult>(value)
                .map_err(|e| End::Fatal(ChatError::Protocol(format!("bad join result: {e}"))))?,
            Err(error) if error.code == ErrorCode::TokenExpired => {
                return Err(End::Reconnect {
                    reason: error.to_string(),
                    retry_after: None,
                    expired: true,
                });
            }
            Err(error) if error.temporary => {
                return Err(End::Reconnect {
                    reason: format!("joining {room}: {error}"),
                    retry_after: error.retry_after_ms.map(Duration::from_millis),
                    expired: false,
                });
            }
            Err(error) => {
                let events = self.forget_room(&room, ChatError::Refused(error));
                for event in events {
                    self.emit(event).await;
                }
                return Ok(());
            }
        };
        let Some(entry) = self.rooms.get_mut(&room) else {
            return Ok(());
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
        self.emit(ChatEvent::Joined {
            room,
            viewers: result.viewers,
            outcome,
            state: result.state,
        })
        .await;
        Ok(())
    }

    async fn on_send_reply(
        &mut self,
        id: u64,
        outcome: Result<serde_json::Value, ErrorBody>,
    ) -> Result<(), End> {
        match outcome {
            Ok(value) => {
                let result: SendResult = serde_json::from_value(value).map_err(|e| {
                    End::Fatal(ChatError::Protocol(format!("bad send result: {e}")))
                })?;
                if let Some((message, mut responder, attempts)) = self.outbox.on_ack(id) {
                    self.stats.sent += 1;
                    self.stats.resends += u64::from(attempts.saturating_sub(1));
                    if let Some(reply) = responder.reply.take() {
                        let _ = reply.send(Ok(result.clone()));
                    }
                    drop(responder);
                    self.emit(ChatEvent::Sent {
                        room: message.room,
                        client_msg_id: message.client_msg_id,
                        result,
                    })
                    .await;
                }
            }
            Err(error) if error.code == ErrorCode::TokenExpired => {
                return Err(End::Reconnect {
                    reason: error.to_string(),
                    retry_after: None,
                    expired: true,
                });
            }
            Err(error) => match self.outbox.on_refusal(id, &error, Instant::now()) {
                Some(Refusal::Held(until)) => {
                    self.stats.waits += 1;
                    debug!(wait = ?until.saturating_duration_since(Instant::now()), "send held: {error}");
                }
                Some(Refusal::Dropped(message, responder)) => {
                    let event = self.fail(message, responder, ChatError::Refused(error));
                    self.emit(event).await;
                }
                None => {}
            },
        }
        Ok(())
    }
}

fn new_room() -> RoomEntry {
    RoomEntry {
        cursor: RoomCursor::new(),
        joined: false,
        waiters: Vec::new(),
    }
}

fn reconnect(reason: String) -> End {
    End::Reconnect {
        reason,
        retry_after: None,
        expired: false,
    }
}

/// Reads the server's close code (its `retry_after_ms` came in the `disconnect` push).
fn closed_by_server(frame: Option<CloseFrame>) -> End {
    let Some(frame) = frame else {
        return reconnect("the server closed the connection".into());
    };
    let code = u16::from(frame.code);
    let reason = format!("the server closed the connection ({code} {})", frame.reason);
    match code {
        close_code::UNAUTHORIZED => End::Fatal(ChatError::Unauthorized(reason)),
        close_code::BANNED | close_code::PROTOCOL_ERROR => End::Fatal(ChatError::Protocol(reason)),
        close_code::TOKEN_EXPIRED => End::Reconnect {
            reason,
            retry_after: None,
            expired: true,
        },
        _ => End::Reconnect {
            reason,
            retry_after: None,
            expired: false,
        },
    }
}
