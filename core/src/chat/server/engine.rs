//! Where a room's decisions are made: the [`ChatEngine`] trait and the in-process
//! [`MemoryEngine`].
//!
//! A command runs in two steps. The *decide* step (deduplication by `client_msg_id`,
//! bans, timeouts, slow mode, the rate limit, numbering, the history, fan-out to the
//! nodes) belongs to the engine. The *apply* step (the node's members, their queues and
//! the reply-before-echo order) is the node's [`Room`], under its lock.
//!
//! [`MemoryEngine`] decides under the room's lock, as one process always did: no hop,
//! no network, the embedded default. The Redis engine
//! ([`super::redis_engine::RedisEngine`]) decides in Redis for every node and applies
//! what Redis publishes, in seq order, on each.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::time::Instant;

use super::lock;
use super::room::{Caller, Room};
use crate::chat::protocol::Position;

/// A room on this node, shared by its connections.
pub type RoomRef = Arc<Mutex<Room>>;

/// The decide step of every room, and how its outcome reaches the room's members.
///
/// Each method replies to the caller (on `caller.out`) exactly once.
#[async_trait]
pub trait ChatEngine: Send + Sync + 'static {
    /// `join`: the reply, then what the caller missed since `since`, then live messages.
    async fn join(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        since: Option<&Position>,
        now_ms: u64,
    );

    /// `send`: the reply, then (for every member, the author included) the message.
    async fn send(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        client_msg_id: &str,
        text: &str,
        now: Instant,
        now_ms: u64,
    );

    /// `history`: a page of older messages.
    async fn history(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        before_seq: Option<u64>,
        limit: Option<u32>,
    );

    /// `delete`: by a moderator or the author.
    async fn delete(&self, room: &RoomRef, caller: &Caller<'_>, seq: u64);

    /// A moderator's command: `timeout`, `ban`, `unban` or `slow_mode`.
    async fn moderate(&self, room: &RoomRef, caller: &Caller<'_>, action: Moderation, now_ms: u64);

    /// Called once per viewers interval with every room of the node: an engine shared
    /// by several nodes counts the audience across them here.
    async fn count_audience(&self, _rooms: &[RoomRef]) {}
}

/// A moderator's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moderation {
    /// The user may not send for `duration_ms` (0 lifts it).
    Timeout {
        /// Who.
        user_id: String,
        /// How long, in ms.
        duration_ms: u64,
    },
    /// The user's connections leave the room and may not join again.
    Ban {
        /// Who.
        user_id: String,
    },
    /// Lifts a ban.
    Unban {
        /// Who.
        user_id: String,
    },
    /// One message per user per interval (0 turns it off).
    SlowMode {
        /// The interval, in ms.
        interval_ms: u64,
    },
}

impl Room {
    /// Applies a moderator's command to the node's room (and replies).
    pub fn moderate(&mut self, caller: &Caller<'_>, action: &Moderation, now_ms: u64) {
        match action {
            Moderation::Timeout {
                user_id,
                duration_ms,
            } => self.timeout(caller, user_id, *duration_ms, now_ms),
            Moderation::Ban { user_id } => self.ban(caller, user_id),
            Moderation::Unban { user_id } => self.unban(caller, user_id),
            Moderation::SlowMode { interval_ms } => self.slow_mode(caller, *interval_ms, now_ms),
        }
    }
}

/// Every room decided in this process, under its lock: today's single-node server.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryEngine;

#[async_trait]
impl ChatEngine for MemoryEngine {
    async fn join(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        since: Option<&Position>,
        now_ms: u64,
    ) {
        lock(room).join(caller, since, now_ms);
    }

    async fn send(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        client_msg_id: &str,
        text: &str,
        now: Instant,
        now_ms: u64,
    ) {
        lock(room).send(caller, client_msg_id, text, now, now_ms);
    }

    async fn history(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        before_seq: Option<u64>,
        limit: Option<u32>,
    ) {
        lock(room).history(caller, before_seq, limit);
    }

    async fn delete(&self, room: &RoomRef, caller: &Caller<'_>, seq: u64) {
        lock(room).delete(caller, seq);
    }

    async fn moderate(&self, room: &RoomRef, caller: &Caller<'_>, action: Moderation, now_ms: u64) {
        lock(room).moderate(caller, &action, now_ms);
    }
}
