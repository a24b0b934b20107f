//! The wire format of chat protocol v1 (`docs/chat-protocol.md`): JSON frames over a
//! WebSocket with the subprotocol [`SUBPROTOCOL`]. Client and server share these types.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The WebSocket subprotocol both sides must agree on.
pub const SUBPROTOCOL: &str = "streamhub.chat.v1";

/// Default longest message text, in Unicode scalar values.
pub const DEFAULT_MAX_TEXT_CHARS: usize = 500;

/// Default largest frame the server reads, in bytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024;

/// Longest `client_msg_id`, in bytes.
pub const MAX_CLIENT_MSG_ID_LEN: usize = 64;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads and sends messages; may delete their own.
    Viewer,
    /// The stream's owner: moderates the rooms their token names.
    Broadcaster,
    /// Moderates every room their token allows.
    Moderator,
}

impl Role {
    /// The role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Broadcaster => "broadcaster",
            Role::Moderator => "moderator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "broadcaster" => Ok(Role::Broadcaster),
            "moderator" => Ok(Role::Moderator),
            other => Err(format!(
                "unknown role {other:?} (viewer, broadcaster, moderator)"
            )),
        }
    }
}

/// A user as the server knows them from their token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The stable user id (the token's `sub`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The token's role.
    pub role: Role,
}

/// A point in a room's message sequence: the sequencer's lifetime and a number in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The sequencer's lifetime; changes when the server lost the room's history.
    pub epoch: String,
    /// The sequence number (1 is the first message of the epoch).
    pub seq: u64,
}

/// A published chat message, as pushed, replayed and returned by `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The room.
    pub room: String,
    /// The sequencer's epoch.
    pub epoch: String,
    /// Position in the room (1, 2, 3, … within the epoch).
    pub seq: u64,
    /// The server's message id.
    pub id: String,
    /// Server time of publication, milliseconds since the Unix epoch.
    pub ts: u64,
    /// The author.
    pub user: UserInfo,
    /// The text (empty when deleted).
    pub text: String,
    /// The author's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// True when a moderator or the author removed the message.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Information about the client software, sent with `connect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Software name.
    pub name: String,
    /// Software version.
    pub version: String,
}

/// A client command (the `type` field selects the variant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Authenticate; must be the first command.
    Connect {
        /// The JWT.
        token: String,
        /// Optional client description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<ClientInfo>,
    },
    /// Replace the token without reconnecting (same `sub`).
    Refresh {
        /// The new JWT.
        token: String,
    },
    /// Enter a room, optionally recovering what was missed since a position.
    Join {
        /// The room.
        room: String,
        /// The last position the client delivered to its app.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Position>,
    },
    /// Stop the pushes of a room.
    Leave {
        /// The room.
        room: String,
    },
    /// Publish a message.
    Send {
        /// The room.
        room: String,
        /// Idempotency key, unique per user.
        client_msg_id: String,
        /// The text.
        text: String,
    },
    /// Read older messages.
    History {
        /// The room.
        room: String,
        /// Only messages before this sequence number (default: the newest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_seq: Option<u64>,
        /// How many (1–100, default 50).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Tell the room the user is typing.
    Typing {
        /// The room.
        room: String,
    },
    /// Hide a message.
    Delete {
        /// The room.
        room: String,
        /// The message.
        seq: u64,
    },
    /// Stop a user from sending for a while.
    Timeout {
        /// The room.
        room: String,
        /// The user.
        user_id: String,
        /// How long.
        duration_ms: u64,
    },
    /// Remove a user from a room and keep them out.
    Ban {
        /// The room.
        room: String,
        /// The user.
        user_id: String,
    },
    /// Lift a ban.
    Unban {
        /// The room.
        room: String,
        /// The user.
        user_id: String,
    },
    /// One message per user per interval (0 turns it off).
    SlowMode {
        /// The room.
        room: String,
        /// The interval.
        interval_ms: u64,
    },
}

/// Every command type the protocol knows, for telling `unknown_command` from
/// `invalid_frame`.
pub const COMMAND_TYPES: &[&str] = &[
    "connect",
    "refresh",
    "join",
    "leave",
    "send",
    "history",
    "typing",
    "delete",
    "timeout",
    "ban",
    "unban",
    "slow_mode",
];

/// A command with the id its reply will carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandFrame {
    /// Chosen by the client, unique per connection.
    pub id: u64,
    /// The command.
    #[serde(flatten)]
    pub command: Command,
}

/// Why a command failed. The wire names are the protocol's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not an object, missing `id`/`type`, wrong field types.
    InvalidFrame,
    /// Over the frame size limit; the connection is closed.
    FrameTooLarge,
    /// Unknown command type.
    UnknownCommand,
    /// A command before `connect` succeeded.
    NotConnected,
    /// `connect` sent twice.
    AlreadyConnected,
    /// Bad token: do not retry with it.
    Unauthorized,
    /// The token expired: get a new one.
    TokenExpired,
    /// The role or the token's rooms do not allow it.
    Forbidden,
    /// The room was not joined on this connection.
    NotJoined,
    /// The text is over the limit.
    MessageTooLong,
    /// Empty text, control characters, or a bad `client_msg_id`.
    InvalidText,
    /// Too many messages; wait `retry_after_ms`.
    RateLimited,
    /// The room's slow mode; wait `retry_after_ms`.
    SlowMode,
    /// The user is timed out; wait `retry_after_ms`.
    TimedOut,
    /// Banned from the room.
    Banned,
    /// No such message.
    NotFound,
    /// A bad argument (limit out of range, bad room name).
    InvalidArgument,
    /// Server fault; retry with backoff.
    Internal,
    /// A code this client does not know (from a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::NotConnected => "not_connected",
            ErrorCode::AlreadyConnected => "already_connected",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::MessageTooLong => "message_too_long",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SlowMode => "slow_mode",
            ErrorCode::TimedOut => "timed_out",
            ErrorCode::Banned => "banned",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// Whether retrying the same command later can succeed.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            ErrorCode::TokenExpired
                | ErrorCode::RateLimited
                | ErrorCode::SlowMode
                | ErrorCode::TimedOut
                | ErrorCode::Internal
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error object of a failed reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// For logs, not for users.
    pub message: String,
    /// Whether retrying later can succeed.
    pub temporary: bool,
    /// How long to wait before retrying, where waiting helps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    /// An error with the code's usual `temporary` flag.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            temporary: code.is_temporary(),
            retry_after_ms: None,
        }
    }

    /// The same error with a retry delay.
    pub fn retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(ms) = self.retry_after_ms {
            write!(f, " (retry after {ms} ms)")?;
        }
        Ok(())
    }
}

/// The reply to one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The command's id.
    pub id: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// The command's result when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// The limits a server enforces, sent in the `connect` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Longest text, in Unicode scalar values.
    pub max_text_chars: usize,
    /// Largest frame, in bytes.
    pub max_frame_bytes: usize,
    /// Messages allowed per user and room in each window.
    pub rate: RateInfo,
}

/// A rate limit: `messages` per `per_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateInfo {
    /// Messages in a window.
    pub messages: u32,
    /// The window.
    pub per_ms: u64,
}

/// The result of `connect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectResult {
    /// Who the token says the client is.
    pub user: UserInfo,
    /// The server's id for this connection.
    pub session: String,
    /// What the server enforces.
    pub limits: Limits,
    /// When the token expires, milliseconds since the Unix epoch.
    pub token_expires_at_ms: u64,
}

/// The current user's standing in a room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct YouState {
    /// Until when the user may not send (ms since the Unix epoch).
    #[serde(default)]
    pub timed_out_until: Option<u64>,
    /// Whether the user is banned.
    #[serde(default)]
    pub banned: bool,
}

/// A room's rules as they apply to the receiving user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    /// One message per user per this interval; 0 when off.
    pub slow_mode_ms: u64,
    /// The receiving user's standing.
    pub you: YouState,
}

/// The result of `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResult {
    /// The room.
    pub room: String,
    /// The sequencer's epoch.
    pub epoch: String,
    /// The room's last sequence number at the join.
    pub seq: u64,
    /// People in the room (chat members plus the stream's video viewers).
    pub viewers: u64,
    /// True when every message after `since` follows as a push (all or nothing).
    pub recovered: bool,
    /// The room's rules.
    pub state: RoomState,
}

/// The result of `send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResult {
    /// The server's message id.
    pub id: String,
    /// The message's sequence number.
    pub seq: u64,
    /// Publication time, ms since the Unix epoch.
    pub ts: u64,
}

/// The result of `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryResult {
    /// The sequencer's epoch.
    pub epoch: String,
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
    /// Whether older messages are still held.
    pub has_more: bool,
}

/// Member events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberEvent {
    /// Someone joined.
    Join,
    /// Someone left.
    Leave,
}

/// The server's closing message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    /// Why.
    pub code: String,
    /// For logs.
    pub message: String,
    /// Whether the client should reconnect.
    pub reconnect: bool,
    /// How long to wait first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Everything the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// The reply to a command.
    Reply(Reply),
    /// A published message.
    Message(ChatMessage),
    /// A message was hidden.
    Deleted {
        /// The room.
        room: String,
        /// The epoch of the message.
        epoch: String,
        /// The message.
        seq: u64,
    },
    /// The room's audience changed.
    Viewers {
        /// The room.
        room: String,
        /// Chat members plus video viewers.
        count: u64,
    },
    /// Someone joined or left (small rooms only).
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
    /// The room's rules changed, or the receiver's standing in it.
    RoomState {
        /// The room.
        room: String,
        /// The rules.
        #[serde(flatten)]
        state: RoomState,
    },
    /// The token expires soon: send `refresh`.
    TokenExpiring {
        /// Time left.
        expires_in_ms: u64,
    },
    /// The connection was removed from a room (banned).
    Kicked {
        /// The room.
        room: String,
        /// Why (`banned`).
        code: ErrorCode,
        /// For logs.
        message: String,
    },
    /// An error about a frame that had no readable `id` (not JSON, binary, too large).
    Error {
        /// What was wrong.
        error: ErrorBody,
    },
    /// The server is about to close the connection.
    Disconnect(Disconnect),
    /// A push type this client does not know (from a newer server); ignored.
    #[serde(other)]
    Unknown,
}

/// WebSocket close codes the server uses.
pub mod close_code {
    /// Server shutting down or restarting: reconnect.
    pub const GOING_AWAY: u16 = 4000;
    /// Bad token: do not reconnect with it.
    pub const UNAUTHORIZED: u16 = 4001;
    /// The token expired: reconnect with a new one.
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// Banned from every room the connection held.
    pub const BANNED: u16 = 4003;
    /// Protocol error (a client bug): do not reconnect.
    pub const PROTOCOL_ERROR: u16 = 4004;
    /// The client read too slowly and its queue on the server overflowed: reconnect.
    pub const TOO_SLOW: u16 = 4005;
}

/// Milliseconds since the Unix epoch on this machine's clock.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trips_with_its_type_tag() {
        let frame = CommandFrame {
            id: 7,
            command: Command::Send {
                room: "cam1".into(),
                client_msg_id: "c1".into(),
                text: "hi".into(),
            },
        };
        let json = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            json,
            r#"{"id":7,"type":"send","room":"cam1","client_msg_id":"c1","text":"hi"}"#
        );
        assert_eq!(serde_json::from_str::<CommandFrame>(&json).unwrap(), frame);
    }

    #[test]
    fn error_reply_matches_the_document() {
        let reply = ServerFrame::Reply(Reply {
            id: 8,
            ok: false,
            result: None,
            error: Some(
                ErrorBody::new(ErrorCode::RateLimited, "5 messages per 5 s").retry_after(1800),
            ),
        });
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"type":"reply","id":8,"ok":false,"error":{"code":"rate_limited","message":"5 messages per 5 s","temporary":true,"retry_after_ms":1800}}"#
        );
    }

    #[test]
    fn unknown_pushes_and_codes_are_tolerated() {
        let frame: ServerFrame =
            serde_json::from_str(r#"{"type":"poll_started","room":"x"}"#).unwrap();
        assert_eq!(frame, ServerFrame::Unknown);
        let body: ErrorBody = serde_json::from_str(
            r#"{"code":"quota_exceeded","message":"m","temporary":false,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(body.code, ErrorCode::Unknown);
    }

    #[test]
    fn room_state_push_is_flat() {
        let frame = ServerFrame::RoomState {
            room: "r".into(),
            state: RoomState {
                slow_mode_ms: 3000,
                you: YouState::default(),
            },
        };
        let json = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            json,
            r#"{"type":"room_state","room":"r","slow_mode_ms":3000,"you":{"timed_out_until":null,"banned":false}}"#
        );
        assert_eq!(serde_json::from_str::<ServerFrame>(&json).unwrap(), frame);
    }
}
