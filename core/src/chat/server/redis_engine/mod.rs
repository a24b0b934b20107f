//! The decide step of a chat room on Redis, shared by every chat node (issue 15).
//!
//! One Lua function per send (`send.lua`, in a Redis function library) deduplicates by
//! `client_msg_id`, applies bans, timeouts, slow mode and the rate limit on Redis's clock
//! (one clock for every node), numbers the message (`HINCRBY`), appends it to the room's
//! stream (entry id `generation-seq`, trimmed to the history size), records the reply for
//! deduplication and publishes the message, all atomically. A second one (`fence.lua`)
//! rotates the room's epoch when a client holds a position Redis cannot vouch for, so
//! that no `(epoch, seq)` is ever handed out twice; a script (`after.lua`) reads what a
//! client missed, whole or not at all.
//!
//! Durability depends on Redis's: with `appendfsync always` an acknowledged send is
//! never lost ([`SequencerConfig::lossless_redis`]); with `everysec` a crash may lose the
//! last second of acknowledged sends, and fencing makes clients see a new epoch instead
//! of numbers handed out again: the scripts compare the Redis process that numbered a
//! room last (its `run_id`) with the one running them, and rotate the epoch when they
//! differ (`boot.lua`), before any number is handed out.
//!
//! Every message also goes to PostgreSQL ([`archive::Archive`]), copied from the stream by
//! [`RedisSequencer::archive_room`]. A node follows a room through [`mirror::RoomMirror`],
//! which delivers what the room publishes strictly in seq order. [`RedisEngine`] puts
//! all of it behind the server's [`super::ChatEngine`].

pub mod archive;
mod archiver;
mod engine;
mod follow;
mod keys;
pub(crate) mod mirror;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script, Value};
use serde::Deserialize;

pub use engine::{RedisEngine, RedisEngineConfig};
pub use follow::Followed;
pub use keys::RoomKeys;

use super::room::Moderated;
use super::store::new_epoch;
use crate::chat::protocol::{
    ChatMessage, ErrorBody, ErrorCode, Position, RateInfo, SendResult, UserInfo,
};

/// How long a Redis command may take, connecting included.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The connection or a command failed (Redis down, timed out, refused the script).
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The archive (PostgreSQL) failed.
    #[error("archive: {0}")]
    Archive(#[from] tokio_postgres::Error),
    /// Redis answered something the scripts never return.
    #[error("unexpected reply from Redis to {what}: {detail}")]
    Reply {
        /// The operation.
        what: &'static str,
        /// What came back.
        detail: String,
    },
}

/// The rules the scripts apply.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// Messages kept in each room's stream.
    pub history: usize,
    /// How long a `client_msg_id` is remembered.
    pub dedup_ttl: Duration,
    /// Sends allowed per user per window.
    pub rate: RateInfo,
    /// Whether archivers copy the streams ([`RedisSequencer::archive_room`]): they then
    /// trim the streams as they go, and a send trims only at
    /// [`ARCHIVE_SLACK`] times the history (a bound on Redis's memory should every
    /// archiver stop: past it the oldest entries are lost to the archive).
    pub archived: bool,
    /// Whether Redis loses nothing it acknowledged (`appendfsync always`, or `WAITAOF`
    /// before each reply): then a restart of Redis keeps the rooms' epochs. Otherwise
    /// (false, the safe default) the first send or join after a restart or failover
    /// rotates the room's epoch, since the restart may have lost its tail.
    pub lossless_redis: bool,
}

/// The function library of the scripts that hand out numbers (see `boot.lua` for why a
/// library and not EVAL scripts).
const LIBRARY: &str = concat!(
    "#!lua name=streamhub_chat\n",
    include_str!("boot.lua"),
    "\nredis.register_function('streamhub_send', function(KEYS, ARGV)\n",
    include_str!("send.lua"),
    "\nend)\nredis.register_function('streamhub_fence', function(KEYS, ARGV)\n",
    include_str!("fence.lua"),
    "\nend)\n"
);

/// Loads (or replaces) the function library.
async fn load_library(conn: &mut ConnectionManager) -> Result<(), EngineError> {
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(LIBRARY)
        .query_async(conn)
        .await?;
    Ok(())
}

/// How many histories a stream may hold while archivers are behind.
pub const ARCHIVE_SLACK: usize = 100;

/// A send to decide.
#[derive(Debug, Clone)]
pub struct SendRequest<'a> {
    /// The room.
    pub room: &'a str,
    /// The author.
    pub user: &'a UserInfo,
    /// The text, already validated by the node.
    pub text: &'a str,
    /// The client's id for this message.
    pub client_msg_id: &'a str,
    /// Whether the author moderates the room (not held to slow mode).
    pub moderator: bool,
}

/// Where a message went: its epoch, number and time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Numbered {
    /// The room's epoch.
    pub epoch: String,
    /// The message's number in it.
    pub seq: u64,
    /// Redis's time, ms since the Unix epoch.
    pub ts: u64,
}

impl Numbered {
    /// The reply to the send.
    pub fn result(&self) -> SendResult {
        SendResult {
            id: format!("{}-{}", self.epoch, self.seq),
            seq: self.seq,
            ts: self.ts,
        }
    }
}

/// What Redis decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Numbered, stored and published.
    Sent(Numbered),
    /// This `client_msg_id` was sent before: its first reply, nothing stored again.
    Duplicate(Numbered),
    /// Refused by a ban, a timeout, slow mode or the rate limit.
    Refused(ErrorBody),
}

/// A room's position as Redis holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fenced {
    /// The epoch and top seq in force.
    pub top: Position,
    /// Whether the epoch was rotated by this call.
    pub rotated: bool,
}

/// The chat rooms' decide step on one Redis.
#[derive(Clone)]
pub struct RedisSequencer {
    client: Client,
    conn: ConnectionManager,
    config: SequencerConfig,
    after: Script,
    before: Script,
    delete: Script,
    trim: Script,
    audience: Script,
}

impl std::fmt::Debug for RedisSequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never shown.
        f.debug_struct("RedisSequencer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisSequencer {
    /// Connects to the Redis at `url` (`redis://host:port/db`); reconnects by itself.
    pub async fn connect(url: &str, config: SequencerConfig) -> Result<Self, EngineError> {
        let client = Client::open(url)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2);
        let mut conn = ConnectionManager::new_with_config(client.clone(), manager).await?;
        load_library(&mut conn).await?;
        Ok(RedisSequencer {
            client,
            conn,
            config,
            after: Script::new(include_str!("after.lua")),
            before: Script::new(include_str!("before.lua")),
            delete: Script::new(include_str!("delete.lua")),
            trim: Script::new(include_str!("trim.lua")),
            audience: Script::new(include_str!("audience.lua")),
        })
    }

    /// Decides one send (see the module's documentation).
    pub async fn send(&self, request: &SendRequest<'_>) -> Result<SendOutcome, EngineError> {
        let keys = RoomKeys::new(request.room);
        let user_id = request.user.id.as_str();
        let user = serde_json::to_string(request.user).map_err(|e| EngineError::Reply {
            what: "send",
            detail: format!("the author does not serialize: {e}"),
        })?;
        let rate = self.config.rate;
        let mut call = redis::cmd("FCALL");
        call.arg("streamhub_send")
            .arg(5)
            .arg(keys.meta())
            .arg(keys.stream())
            .arg(keys.dedup(user_id, request.client_msg_id))
            .arg(keys.sender(user_id))
            .arg(keys.moderation())
            .arg(user_id)
            .arg(user)
            .arg(request.text)
            .arg(request.client_msg_id)
            .arg(new_epoch())
            .arg(self.stream_cap())
            .arg(self.config.dedup_ttl.as_millis().max(1) as u64)
            .arg(rate.messages.max(1))
            .arg(rate.per_ms.max(1))
            .arg(if request.moderator { "1" } else { "0" })
            .arg(keys.channel())
            .arg(self.boot_check());
        let reply = self.function(&call).await?;
        let bad = |detail: String| EngineError::Reply {
            what: "send",
            detail,
        };
        let numbered = |value: Option<&Value>| -> Result<Numbered, EngineError> {
            let text = value
                .and_then(text)
                .ok_or_else(|| bad(format!("{reply:?}")))?;
            serde_json::from_str(&text).map_err(|e| bad(format!("{e}: {text}")))
        };
        match reply.first().and_then(text).as_deref() {
            Some("ok") => Ok(SendOutcome::Sent(numbered(reply.get(1))?)),
            Some("dup") => Ok(SendOutcome::Duplicate(numbered(reply.get(1))?)),
            Some("err") => {
                let code = reply.get(1).and_then(text).unwrap_or_default();
                let wait = reply.get(2).and_then(int).unwrap_or(0);
                Ok(SendOutcome::Refused(refusal(&code, wait, rate)))
            }
            _ => Err(bad(format!("{reply:?}"))),
        }
    }

    /// Calls a function of the library, loading the library first when Redis lost it
    /// (a restart without persistence).
    async fn function(&self, call: &redis::Cmd) -> Result<Vec<Value>, EngineError> {
        let mut conn = self.conn.clone();
        match call.query_async(&mut conn).await {
            Err(e) if e.to_string().contains("Function not found") => {
                load_library(&mut conn).await?;
                Ok(call.query_async(&mut conn).await?)
            }
            other => Ok(other?),
        }
    }

    /// The scripts' flag: "1" to rotate epochs after a restart of Redis.
    fn boot_check(&self) -> &'static str {
        if self.config.lossless_redis { "0" } else { "1" }
    }

    /// The most entries a send leaves in a stream.
    fn stream_cap(&self) -> usize {
        let history = self.config.history.max(1);
        if self.config.archived {
            history.saturating_mul(ARCHIVE_SLACK)
        } else {
            history
        }
    }

    /// The room's position; its epoch is rotated first when `claim` is
    /// [`Claim::Reconnected`], or a position ahead of the room's top in its own epoch.
    pub async fn fence(&self, room: &str, claim: Claim<'_>) -> Result<Fenced, EngineError> {
        let keys = RoomKeys::new(room);
        let (mode, seq) = match claim {
            Claim::Reconnected => ("always", 0),
            Claim::Holds(position) => (position.epoch.as_str(), position.seq),
            Claim::Nothing => ("", 0),
        };
        let mut call = redis::cmd("FCALL");
        call.arg("streamhub_fence")
            .arg(1)
            .arg(keys.meta())
            .arg(new_epoch())
            .arg(mode)
            .arg(seq)
            .arg(self.boot_check());
        let reply = self.function(&call).await?;
        match (
            reply.first().and_then(text),
            reply.get(1).and_then(int),
            reply.get(2).and_then(int),
        ) {
            (Some(epoch), Some(seq), Some(rotated)) => Ok(Fenced {
                top: Position { epoch, seq },
                rotated: rotated == 1,
            }),
            _ => Err(EngineError::Reply {
                what: "fence",
                detail: format!("{reply:?}"),
            }),
        }
    }

    /// Every message of `room` after `since`, oldest first, with the room's top seq; `None`
    /// when `since` is of another epoch, ahead of the top, or older than the stream holds.
    pub async fn after(
        &self,
        room: &str,
        since: &Position,
    ) -> Result<Option<(u64, Vec<ChatMessage>)>, EngineError> {
        let keys = RoomKeys::new(room);
        let reply: Vec<Value> = self
            .after
            .key(keys.meta())
            .key(keys.stream())
            .key(keys.deleted())
            .arg(&since.epoch)
            .arg(since.seq)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let bad = |detail: String| EngineError::Reply {
            what: "after",
            detail,
        };
        match reply.first().and_then(text).as_deref() {
            Some("none") => Ok(None),
            Some("ok") => {
                let top = reply
                    .get(1)
                    .and_then(int)
                    .ok_or_else(|| bad(format!("{reply:?}")))?;
                let messages = reply[2..]
                    .iter()
                    .map(|entry| stream_entry(room, entry).ok_or_else(|| bad(format!("{entry:?}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some((top, messages)))
            }
            _ => Err(bad(format!("{reply:?}"))),
        }
    }

    /// Up to `limit` messages of `room`'s epoch before `before_seq` that its stream still
    /// holds, oldest first, with the epoch.
    pub async fn before(
        &self,
        room: &str,
        before_seq: u64,
        limit: u32,
    ) -> Result<(String, Vec<ChatMessage>), EngineError> {
        let keys = RoomKeys::new(room);
        let reply: Vec<Value> = self
            .before
            .key(keys.meta())
            .key(keys.stream())
            .key(keys.deleted())
            .arg(before_seq)
            .arg(limit.max(1))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let bad = |detail: String| EngineError::Reply {
            what: "before",
            detail,
        };
        let epoch = reply
            .first()
            .and_then(text)
            .ok_or_else(|| bad(format!("{reply:?}")))?;
        let mut messages = reply
            .iter()
            .skip(2)
            .map(|entry| stream_entry(room, entry).ok_or_else(|| bad(format!("{entry:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok((epoch, messages))
    }

    /// The author of message `seq` of `room`'s `epoch`, and, when `hide`, hides it for
    /// every node (recorded, then published); `None` when the stream no longer holds it.
    pub async fn delete(
        &self,
        room: &str,
        epoch: &str,
        seq: u64,
        hide: bool,
    ) -> Result<Option<UserInfo>, EngineError> {
        let keys = RoomKeys::new(room);
        let reply: Vec<Value> = self
            .delete
            .key(keys.meta())
            .key(keys.stream())
            .key(keys.deleted())
            .arg(epoch)
            .arg(seq)
            .arg(keys.channel())
            .arg(if hide { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await?;
        match reply.first().and_then(text).as_deref() {
            Some("gone") => Ok(None),
            Some("ok") => {
                let author = reply.get(1).and_then(text).unwrap_or_default();
                serde_json::from_str(&author)
                    .map(Some)
                    .map_err(|e| EngineError::Reply {
                        what: "delete",
                        detail: format!("the author does not parse: {e}"),
                    })
            }
            _ => Err(EngineError::Reply {
                what: "delete",
                detail: format!("{reply:?}"),
            }),
        }
    }

    /// Whether `user` is banned from `room`.
    pub async fn is_banned(&self, room: &str, user: &str) -> Result<bool, EngineError> {
        let keys = RoomKeys::new(room);
        let banned: bool = redis::cmd("HEXISTS")
            .arg(keys.moderation())
            .arg(format!("b:{user}"))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(banned)
    }

    /// Reports this node's audience of `room` (`count` people, valid for `ttl`: report
    /// again well within it); the room's audience across the nodes whose reports are
    /// still valid. A person connected to two nodes counts on each.
    pub async fn report_audience(
        &self,
        room: &str,
        node: &str,
        count: u64,
        ttl: Duration,
    ) -> Result<u64, EngineError> {
        let keys = RoomKeys::new(room);
        let total: u64 = self
            .audience
            .key(keys.audience())
            .key(keys.audience_expiry())
            .arg(node)
            .arg(count)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(total)
    }

    /// Bans `user` from `room` (or lifts the ban), and tells every node.
    pub async fn set_banned(
        &self,
        room: &str,
        user: &str,
        banned: bool,
    ) -> Result<(), EngineError> {
        let keys = RoomKeys::new(room);
        let field = format!("b:{user}");
        let mut pipe = redis::pipe();
        pipe.atomic();
        if banned {
            pipe.hset(keys.moderation(), field, 1).ignore();
        } else {
            pipe.hdel(keys.moderation(), field).ignore();
        }
        let published = if banned {
            Moderated::Banned(user.to_string())
        } else {
            Moderated::Unbanned(user.to_string())
        };
        pipe.publish(keys.channel(), encode_moderation(&published))
            .ignore();
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Times `user` out of `room` for `duration` from now, on Redis's clock, and tells
    /// every node.
    pub async fn time_out(
        &self,
        room: &str,
        user: &str,
        duration: Duration,
    ) -> Result<(), EngineError> {
        let keys = RoomKeys::new(room);
        let (seconds, micros): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut self.conn.clone())
            .await?;
        let until = seconds * 1000 + micros / 1000 + duration.as_millis() as u64;
        let published = Moderated::TimedOut {
            user_id: user.to_string(),
            until_ms: until,
        };
        redis::pipe()
            .atomic()
            .hset(keys.moderation(), format!("t:{user}"), until)
            .ignore()
            .publish(keys.channel(), encode_moderation(&published))
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Sets `room`'s slow mode (zero turns it off), and tells every node.
    pub async fn set_slow_mode(&self, room: &str, interval: Duration) -> Result<(), EngineError> {
        let keys = RoomKeys::new(room);
        let interval_ms = interval.as_millis() as u64;
        redis::pipe()
            .atomic()
            .hset(keys.meta(), "slow_ms", interval_ms)
            .ignore()
            .publish(
                keys.channel(),
                encode_moderation(&Moderated::SlowMode { interval_ms }),
            )
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

/// A moderation as published on the room's channel.
#[derive(serde::Serialize, Deserialize)]
struct PublishedModeration {
    k: String,
    a: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
}

fn encode_moderation(moderated: &Moderated) -> String {
    let (a, u, n) = match moderated {
        Moderated::Banned(user) => ("ban", Some(user.clone()), None),
        Moderated::Unbanned(user) => ("unban", Some(user.clone()), None),
        Moderated::TimedOut { user_id, until_ms } => {
            ("timeout", Some(user_id.clone()), Some(*until_ms))
        }
        Moderated::SlowMode { interval_ms } => ("slow", None, Some(*interval_ms)),
    };
    let published = PublishedModeration {
        k: "m".into(),
        a: a.into(),
        u,
        n,
    };
    serde_json::to_string(&published).unwrap_or_default()
}

/// A published moderation (the payload on the room's channel).
pub fn decode_moderation(payload: &[u8]) -> Option<Moderated> {
    let p: PublishedModeration = serde_json::from_slice(payload).ok()?;
    if p.k != "m" {
        return None;
    }
    match (p.a.as_str(), p.u, p.n) {
        ("ban", Some(user), _) => Some(Moderated::Banned(user)),
        ("unban", Some(user), _) => Some(Moderated::Unbanned(user)),
        ("timeout", Some(user_id), Some(until_ms)) => {
            Some(Moderated::TimedOut { user_id, until_ms })
        }
        ("slow", _, Some(interval_ms)) => Some(Moderated::SlowMode { interval_ms }),
        _ => None,
    }
}

/// What a caller of [`RedisSequencer::fence`] knows.
#[derive(Debug, Clone, Copy)]
pub enum Claim<'a> {
    /// The connection to Redis was just made again: Redis may have lost its tail.
    Reconnected,
    /// A client joins from this position.
    Holds(&'a Position),
    /// Nothing: just read the position.
    Nothing,
}

/// A published deletion (the payload on the room's channel): the message's epoch and
/// seq.
pub fn decode_deletion(payload: &[u8]) -> Option<Position> {
    #[derive(Deserialize)]
    struct Deleted {
        k: String,
        e: String,
        s: u64,
    }
    let d: Deleted = serde_json::from_slice(payload).ok()?;
    (d.k == "d").then_some(Position {
        epoch: d.e,
        seq: d.s,
    })
}

/// A published message (the payload on the room's channel).
pub fn decode_publication(room: &str, payload: &[u8]) -> Option<ChatMessage> {
    #[derive(Deserialize)]
    struct Published {
        e: String,
        s: u64,
        ts: u64,
        u: String,
        x: String,
        c: String,
    }
    let p: Published = serde_json::from_slice(payload).ok()?;
    message(room, p.e, p.s, p.ts, &p.u, p.x, p.c)
}

fn message(
    room: &str,
    epoch: String,
    seq: u64,
    ts: u64,
    user: &str,
    text: String,
    client_msg_id: String,
) -> Option<ChatMessage> {
    let user: UserInfo = serde_json::from_str(user).ok()?;
    Some(ChatMessage {
        room: room.to_string(),
        id: format!("{epoch}-{seq}"),
        epoch,
        seq,
        ts,
        user,
        text,
        client_msg_id: Some(client_msg_id),
        deleted: false,
    })
}

/// A stream entry (`[id, [field, value, …]]`) as a message.
fn stream_entry(room: &str, entry: &Value) -> Option<ChatMessage> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let Value::Array(fields) = parts.get(1)? else {
        return None;
    };
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair.first().and_then(text).as_deref() == Some(name))
            .and_then(|pair| pair.get(1))
            .and_then(text)
    };
    let mut message = message(
        room,
        field("e")?,
        field("s")?.parse().ok()?,
        field("ts")?.parse().ok()?,
        &field("u")?,
        field("x")?,
        field("c")?,
    )?;
    if field("del").is_some() {
        message.deleted = true;
        message.text.clear();
    }
    Some(message)
}

/// The refusal the script named, as the protocol's error.
fn refusal(code: &str, retry_after_ms: u64, rate: RateInfo) -> ErrorBody {
    match code {
        "banned" => ErrorBody::new(ErrorCode::Banned, "banned from this room"),
        "timed_out" => ErrorBody::new(ErrorCode::TimedOut, "timed out by a moderator")
            .retry_after(retry_after_ms),
        "slow_mode" => ErrorBody::new(ErrorCode::SlowMode, "slow mode").retry_after(retry_after_ms),
        "rate_limited" => ErrorBody::new(
            ErrorCode::RateLimited,
            format!("at most {} messages per {} ms", rate.messages, rate.per_ms),
        )
        .retry_after(retry_after_ms),
        other => ErrorBody::new(ErrorCode::Internal, format!("refused: {other}")),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}
