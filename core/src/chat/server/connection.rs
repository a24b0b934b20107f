//! One WebSocket connection on the server: authentication, command dispatch, token
//! expiry, liveness, and the orderly goodbye (a `disconnect` push and a close code).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tracing::{Instrument, debug, info_span};

use super::engine::Moderation;
use super::outbound::{Outbound, serialize};
use super::room::{Caller, Room};
use super::token::Claims;
use super::{Shared, lock};
use crate::chat::protocol::{
    COMMAND_TYPES, Command, ConnectResult, Disconnect, ErrorBody, ErrorCode, Limits, ServerFrame,
    close_code, unix_ms,
};

/// How long a write to the socket may take before the client counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the goodbye may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

enum Control {
    Ping,
    Close {
        goodbye: Utf8Bytes,
        code: u16,
        drain: bool,
    },
}

/// Why the connection ends.
enum Ending {
    /// The peer closed or the socket failed.
    Gone,
    /// We end it with a goodbye.
    Disconnect {
        code: u16,
        goodbye: Disconnect,
        drain: bool,
    },
}

fn goodbye(
    code: u16,
    name: &str,
    message: &str,
    reconnect: bool,
    retry_after_ms: Option<u64>,
) -> Ending {
    Ending::Disconnect {
        code,
        goodbye: Disconnect {
            code: name.to_string(),
            message: message.to_string(),
            reconnect,
            retry_after_ms,
        },
        // What was queued before the goodbye (the error reply that caused it, the
        // last messages before a shutdown) goes out first; only a client too slow to
        // read its queue is not waited for.
        drain: code != close_code::TOO_SLOW,
    }
}

pub(super) struct Conn {
    id: u64,
    shared: Arc<Shared>,
    out: Outbound,
    claims: Option<Claims>,
    expires_at: Option<Instant>,
    warned: bool,
    rooms: HashMap<String, Arc<std::sync::Mutex<Room>>>,
}

/// Serves one upgraded WebSocket until it ends.
pub(super) async fn run(shared: Arc<Shared>, socket: WebSocket) {
    let id = shared.next_conn();
    let span = info_span!("chat_conn", conn = id);
    let keep = shared.clone();
    let _active = keep.connection_started();
    serve(shared, socket, id).instrument(span).await;
}

async fn serve(shared: Arc<Shared>, socket: WebSocket, id: u64) {
    let config = shared.config.clone();
    let (out, frames) = Outbound::new(config.outbound_frames);
    let overflow = out.overflow();
    let (sink, mut stream) = socket.split();
    let (control, control_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(sink, frames, control_rx));
    let mut shutdown = shared.shutdown.subscribe();
    let mut conn = Conn::new(id, shared, out);

    let connect_deadline = Instant::now() + config.connect_timeout;
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.tick().await;
    let mut last_seen = Instant::now();
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let ending = loop {
        let expiry = conn.expires_at.unwrap_or(far);
        let warn_at = expiry.checked_sub(config.token_warning).unwrap_or(expiry);
        tokio::select! {
            frame = stream.next() => {
                last_seen = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(ending) = conn.handle_text(text.as_str()).await {
                            break ending;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => conn.frame_error(ErrorBody::new(
                        ErrorCode::InvalidFrame,
                        "binary frames are not part of the protocol; send JSON text",
                    )),
                    Some(Ok(Message::Close(_))) | None => break Ending::Gone,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        debug!("read failed: {e}");
                        break Ending::Gone;
                    }
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > config.ping_interval + config.pong_timeout {
                    debug!("no pong: closing");
                    break Ending::Gone;
                }
                let _ = control.send(Control::Ping);
            }
            _ = overflow.wait() => {
                break goodbye(close_code::TOO_SLOW, "too_slow", "the client read too slowly", true, None);
            }
            changed = shutdown.changed() => {
                let retry = *shutdown.borrow();
                if changed.is_err() || retry.is_some() {
                    break goodbye(close_code::GOING_AWAY, "shutting_down", "the server is shutting down", true, retry);
                }
            }
            _ = sleep_until(connect_deadline), if conn.claims.is_none() => {
                break goodbye(close_code::PROTOCOL_ERROR, "connect_timeout", "no connect within the deadline", false, None);
            }
            _ = sleep_until(warn_at), if conn.expires_at.is_some() && !conn.warned => {
                conn.warned = true;
                let left = expiry.saturating_duration_since(Instant::now());
                conn.out.push(&ServerFrame::TokenExpiring { expires_in_ms: left.as_millis() as u64 });
            }
            _ = sleep_until(expiry), if conn.expires_at.is_some() => {
                break goodbye(close_code::TOKEN_EXPIRED, "token_expired", "the token expired; reconnect with a new one", true, None);
            }
        }
    };

    conn.leave_all();
    match ending {
        Ending::Gone => drop(control),
        Ending::Disconnect {
            code,
            goodbye,
            drain,
        } => {
            debug!(code, "closing: {}", goodbye.message);
            let _ = control.send(Control::Close {
                goodbye: serialize(&ServerFrame::Disconnect(goodbye)),
                code,
                drain,
            });
        }
    }
    drop(conn);
    let abort = writer.abort_handle();
    if tokio::time::timeout(CLOSE_TIMEOUT, writer).await.is_err() {
        abort.abort();
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut frames: mpsc::Receiver<Utf8Bytes>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    async fn write(
        sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
        message: Message,
    ) -> bool {
        matches!(
            tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await,
            Ok(Ok(()))
        )
    }
    loop {
        tokio::select! {
            biased;
            command = control.recv() => match command {
                Some(Control::Ping) => {
                    if !write(&mut sink, Message::Ping(Default::default())).await {
                        return;
                    }
                }
                Some(Control::Close { goodbye, code, drain }) => {
                    if drain {
                        while let Ok(text) = frames.try_recv() {
                            if !write(&mut sink, Message::Text(text)).await {
                                return;
                            }
                        }
                    }
                    let _ = write(&mut sink, Message::Text(goodbye)).await;
                    let frame = CloseFrame { code, reason: Utf8Bytes::from_static("") };
                    let _ = write(&mut sink, Message::Close(Some(frame))).await;
                    return;
                }
                None => return,
            },
            text = frames.recv() => match text {
                Some(text) => {
                    if !write_batch(&mut sink, text, &mut frames).await {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}

/// Frames written before one flush.
const BATCH_FRAMES: usize = 64;

/// Writes `first` and whatever else is already queued (up to [`BATCH_FRAMES`]), then
/// flushes once: a busy room costs one system call per batch, not per frame.
async fn write_batch(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    first: Utf8Bytes,
    frames: &mut mpsc::Receiver<Utf8Bytes>,
) -> bool {
    let batch = async {
        sink.feed(Message::Text(first)).await?;
        for _ in 1..BATCH_FRAMES {
            match frames.try_recv() {
                Ok(text) => sink.feed(Message::Text(text)).await?,
                Err(_) => break,
            }
        }
        sink.flush().await
    };
    matches!(tokio::time::timeout(WRITE_TIMEOUT, batch).await, Ok(Ok(())))
}

pub(crate) fn valid_room_name(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

impl Conn {
    /// A connection not yet authenticated, in no room.
    fn new(id: u64, shared: Arc<Shared>, out: Outbound) -> Self {
        Conn {
            id,
            shared,
            out,
            claims: None,
            expires_at: None,
            warned: false,
            rooms: HashMap::new(),
        }
    }

    /// A connection with no socket, for [`super::fuzzing`]: what it sends goes to the
    /// returned queue.
    pub(super) fn detached(shared: Arc<Shared>) -> (Conn, mpsc::Receiver<Utf8Bytes>) {
        let (out, frames) = Outbound::new(shared.config.outbound_frames);
        let conn = Conn::new(shared.next_conn(), shared, out);
        (conn, frames)
    }

    /// Runs one text frame as [`serve`] does; true when the server ends the connection.
    pub(super) async fn text_frame(&mut self, text: &str) -> bool {
        self.handle_text(text).await.is_some()
    }

    fn frame_error(&self, error: ErrorBody) {
        self.out.push(&ServerFrame::Error { error });
    }

    /// Parses and runs one text frame; `Some` ends the connection.
    async fn handle_text(&mut self, text: &str) -> Option<Ending> {
        let max = self.shared.config.max_frame_bytes;
        if text.len() > max {
            self.frame_error(ErrorBody::new(
                ErrorCode::FrameTooLarge,
                format!(
                    "the frame has {} bytes; at most {max} are allowed",
                    text.len()
                ),
            ));
            return Some(goodbye(
                close_code::PROTOCOL_ERROR,
                "frame_too_large",
                "frame too large",
                false,
                None,
            ));
        }
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                self.frame_error(ErrorBody::new(
                    ErrorCode::InvalidFrame,
                    format!("not JSON: {e}"),
                ));
                return None;
            }
        };
        let Some(id) = value.get("id").and_then(|id| id.as_u64()) else {
            self.frame_error(ErrorBody::new(
                ErrorCode::InvalidFrame,
                "a command must be an object with an integer id",
            ));
            return None;
        };
        let Some(kind) = value
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_string)
        else {
            self.out.reply_err(
                id,
                ErrorBody::new(ErrorCode::InvalidFrame, "a command needs a string type"),
            );
            return None;
        };
        if !COMMAND_TYPES.contains(&kind.as_str()) {
            self.out.reply_err(
                id,
                ErrorBody::new(
                    ErrorCode::UnknownCommand,
                    format!("unknown command {kind:?}"),
                ),
            );
            return None;
        }
        match serde_json::from_value::<Command>(value) {
            Ok(command) => self.dispatch(id, command).await,
            Err(e) => {
                self.out.reply_err(
                    id,
                    ErrorBody::new(ErrorCode::InvalidFrame, format!("bad {kind} command: {e}")),
                );
                None
            }
        }
    }

    fn accept_claims(&mut self, claims: Claims) -> u64 {
        let expires_ms = claims.exp.saturating_mul(1000);
        let left = Duration::from_millis(expires_ms.saturating_sub(unix_ms()));
        self.expires_at = Some(Instant::now() + left);
        self.warned = false;
        self.claims = Some(claims);
        expires_ms
    }

    async fn dispatch(&mut self, id: u64, command: Command) -> Option<Ending> {
        let claims = match (&self.claims, &command) {
            (None, Command::Connect { token, .. }) => {
                return match self.shared.keys.verify_or_refresh(token).await {
                    Ok(claims) => {
                        let user = claims.user();
                        let expires = self.accept_claims(claims);
                        let config = &self.shared.config;
                        self.out.reply_ok(
                            id,
                            ConnectResult {
                                user,
                                session: format!("s{}", self.id),
                                limits: Limits {
                                    max_text_chars: config.max_text_chars,
                                    max_frame_bytes: config.max_frame_bytes,
                                    rate: config.rate,
                                },
                                token_expires_at_ms: expires,
                            },
                        );
                        None
                    }
                    // The client may send `connect` again with a fresh token.
                    Err(error) if error.code == ErrorCode::TokenExpired => {
                        self.out.reply_err(id, error);
                        None
                    }
                    Err(error) => {
                        let message = error.message.clone();
                        self.out.reply_err(id, error);
                        Some(goodbye(
                            close_code::UNAUTHORIZED,
                            "unauthorized",
                            &message,
                            false,
                            None,
                        ))
                    }
                };
            }
            (None, _) => {
                self.out.reply_err(
                    id,
                    ErrorBody::new(ErrorCode::NotConnected, "send connect first"),
                );
                return None;
            }
            (Some(_), Command::Connect { .. }) => {
                self.out.reply_err(
                    id,
                    ErrorBody::new(
                        ErrorCode::AlreadyConnected,
                        "already connected; use refresh",
                    ),
                );
                return None;
            }
            (Some(claims), _) => claims.clone(),
        };
        let now = Instant::now();
        let now_ms = unix_ms();
        let room_name = match &command {
            Command::Refresh { token } => {
                match self.shared.keys.verify_or_refresh(token).await {
                    Ok(fresh) if fresh.sub == claims.sub => {
                        let expires = self.accept_claims(fresh);
                        self.out
                            .reply_ok(id, serde_json::json!({ "token_expires_at_ms": expires }));
                    }
                    Ok(_) => {
                        self.out.reply_err(
                            id,
                            ErrorBody::new(
                                ErrorCode::Unauthorized,
                                "the new token is for another user",
                            ),
                        );
                    }
                    Err(error) => {
                        self.out.reply_err(id, error);
                    }
                }
                return None;
            }
            Command::Connect { .. } => return None,
            Command::Join { room, .. }
            | Command::Leave { room }
            | Command::Send { room, .. }
            | Command::History { room, .. }
            | Command::Typing { room }
            | Command::Delete { room, .. }
            | Command::Timeout { room, .. }
            | Command::Ban { room, .. }
            | Command::Unban { room, .. }
            | Command::SlowMode { room, .. } => room.clone(),
        };
        if !valid_room_name(&room_name) {
            self.out.reply_err(
                id,
                ErrorBody::new(
                    ErrorCode::InvalidArgument,
                    "a room name is 1-64 characters of A-Z a-z 0-9 _ - . :",
                ),
            );
            return None;
        }
        if !claims.allows_room(&room_name) {
            self.out.reply_err(
                id,
                ErrorBody::new(
                    ErrorCode::Forbidden,
                    format!("the token does not allow room {room_name}"),
                ),
            );
            return None;
        }
        let user = claims.user();
        let caller = Caller {
            conn: self.id,
            user: &user,
            moderator: claims.may_moderate(&room_name),
            out: &self.out,
            command: id,
        };
        if let Command::Leave { room } = &command {
            if let Some(joined) = self.rooms.remove(room) {
                lock(&joined).remove(self.id);
            }
            self.out.reply_ok(id, serde_json::json!({}));
            return None;
        }
        // Only a join, or a moderator's decision, makes a room; anything else on a room
        // this server does not hold is from someone who is not in it.
        let makes_room = matches!(command, Command::Join { .. }) || caller.moderator;
        let room = if makes_room {
            self.shared.room(&room_name)
        } else {
            self.shared.existing_room(&room_name)
        };
        let Some(room) = room else {
            let error = if makes_room {
                ErrorBody::new(
                    ErrorCode::Forbidden,
                    format!(
                        "this server holds its limit of {} rooms; try again later",
                        self.shared.config.max_rooms
                    ),
                )
            } else {
                ErrorBody::new(ErrorCode::NotJoined, format!("not in room {room_name}"))
            };
            self.out.reply_err(id, error);
            return None;
        };
        let engine = self.shared.engine.clone();
        match command {
            Command::Join { since, .. } => {
                engine.join(&room, &caller, since.as_ref(), now_ms).await;
                if lock(&room).has_member(self.id) {
                    self.rooms.insert(room_name, room.clone());
                }
            }
            Command::Send {
                client_msg_id,
                text,
                ..
            } => {
                engine
                    .send(&room, &caller, &client_msg_id, &text, now, now_ms)
                    .await
            }
            Command::History {
                before_seq, limit, ..
            } => engine.history(&room, &caller, before_seq, limit).await,
            Command::Typing { .. } => lock(&room).typing(&caller, now),
            Command::Delete { seq, .. } => engine.delete(&room, &caller, seq).await,
            Command::Timeout {
                user_id,
                duration_ms,
                ..
            } => {
                let action = Moderation::Timeout {
                    user_id,
                    duration_ms,
                };
                engine.moderate(&room, &caller, action, now_ms).await
            }
            Command::Ban { user_id, .. } => {
                let action = Moderation::Ban { user_id };
                engine.moderate(&room, &caller, action, now_ms).await
            }
            Command::Unban { user_id, .. } => {
                let action = Moderation::Unban { user_id };
                engine.moderate(&room, &caller, action, now_ms).await
            }
            Command::SlowMode { interval_ms, .. } => {
                let action = Moderation::SlowMode { interval_ms };
                engine.moderate(&room, &caller, action, now_ms).await
            }
            Command::Connect { .. } | Command::Refresh { .. } | Command::Leave { .. } => {}
        }
        None
    }

    pub(super) fn leave_all(&mut self) {
        for (_, room) in self.rooms.drain() {
            lock(&room).remove(self.id);
        }
    }
}
