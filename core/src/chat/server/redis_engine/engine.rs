//! [`RedisEngine`]: the server's [`ChatEngine`] on one Redis, shared by every chat
//! node. Sends are decided by the send script; each node follows the rooms its members
//! joined and hands what Redis publishes to them in seq order; joins are served from
//! the node's ring when it holds what the caller missed, from Redis when not; history
//! pages past the stream come from the archive.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::archive::Archive;
use super::{
    Claim, EngineError, Followed, RedisSequencer, SendOutcome, SendRequest, SequencerConfig,
};
use crate::chat::protocol::{ErrorBody, ErrorCode, HistoryResult, Position};
use crate::chat::server::engine::{ChatEngine, Moderation, RoomRef};
use crate::chat::server::lock;
use crate::chat::server::room::{Caller, Served, history_limit};

/// How long a join waits for the node to know where a room stands.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(5);
/// Follower items applied under one lock of the room, at most.
const APPLY_BATCH: usize = 256;
/// Reads of Redis a join may need while the node moves on under it.
const JOIN_READS: usize = 4;
/// Tries to mark a deletion in the archive, and the wait between them.
const ARCHIVE_DELETE_TRIES: usize = 30;
const ARCHIVE_DELETE_WAIT: Duration = Duration::from_secs(1);
/// Waits before a failed follower or archiver starts again.
const RESTART_WAIT: Duration = Duration::from_millis(500);

/// How a node uses Redis (and the archive).
#[derive(Debug, Clone)]
pub struct RedisEngineConfig {
    /// `redis://host:port/db`.
    pub redis_url: String,
    /// `postgres://…` of the archive, if any: every message is copied there and
    /// `history` pages past the stream from it.
    pub archive_url: Option<String>,
    /// This node's name: its audience reports and its archiver's consumer name. A
    /// restarted node should keep its name, so its archiver resumes its pending entries.
    pub node: String,
    /// What the scripts apply.
    pub sequencer: SequencerConfig,
    /// How long a node's audience report counts (a dead node's viewers are gone after
    /// it).
    pub audience_ttl: Duration,
}

/// The chat engine on Redis.
pub struct RedisEngine {
    sequencer: RedisSequencer,
    archive: Option<Arc<Archive>>,
    node: String,
    history: usize,
    audience_ttl: Duration,
}

impl std::fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEngine")
            .field("node", &self.node)
            .field("sequencer", &self.sequencer)
            .finish_non_exhaustive()
    }
}

impl RedisEngine {
    /// Connects to Redis (and the archive).
    pub async fn connect(config: RedisEngineConfig) -> Result<Self, EngineError> {
        let sequencer =
            RedisSequencer::connect(&config.redis_url, config.sequencer.clone()).await?;
        let archive = match &config.archive_url {
            Some(url) => Some(Arc::new(Archive::connect(url).await?)),
            None => None,
        };
        Ok(RedisEngine {
            sequencer,
            archive,
            node: config.node,
            history: config.sequencer.history,
            audience_ttl: config.audience_ttl,
        })
    }

    /// The decide step, for tools and tests.
    pub fn sequencer(&self) -> &RedisSequencer {
        &self.sequencer
    }

    /// Follows the room on this node (once) and waits until the node knows where it
    /// stands.
    async fn ensure_following(&self, room: &RoomRef) -> Result<String, ErrorBody> {
        let (name, mut ready, start) = {
            let mut guard = lock(room);
            let (ready, start) = guard.start_following(self.history);
            (guard.name().to_string(), ready, start)
        };
        if start {
            spawn_follower(self.sequencer.clone(), name.clone(), room.clone());
            if let Some(archive) = &self.archive {
                spawn_archiver(
                    self.sequencer.clone(),
                    archive.clone(),
                    name.clone(),
                    self.node.clone(),
                );
            }
        }
        match tokio::time::timeout(FOLLOW_TIMEOUT, ready.wait_for(|ready| *ready)).await {
            Ok(Ok(_)) => Ok(name),
            _ => Err(unavailable(&format!(
                "the node could not follow {name} on Redis in time"
            ))),
        }
    }

    async fn join_from_redis(
        &self,
        name: &str,
        room: &RoomRef,
        caller: &Caller<'_>,
        since: &Position,
        now_ms: u64,
    ) -> Result<(), EngineError> {
        for _ in 0..JOIN_READS {
            match self.sequencer.after(name, since).await? {
                Some(read) => {
                    if lock(room).join_from_read(caller, since, read, now_ms) == Served::Done {
                        return Ok(());
                    }
                }
                None => {
                    // Another epoch, older than the stream holds, or ahead of the room's
                    // top in its own epoch: then the epoch is rotated, so that the
                    // numbers the caller holds are never handed out again.
                    let fenced = self.sequencer.fence(name, Claim::Holds(since)).await?;
                    let mut guard = lock(room);
                    let top = if fenced.rotated {
                        fenced.top
                    } else {
                        guard.delivered()
                    };
                    guard.join_unrecovered(caller, top, now_ms);
                    return Ok(());
                }
            }
        }
        debug!(
            room = name,
            "the node moved on under every read: joined unrecovered"
        );
        let mut guard = lock(room);
        let top = guard.delivered();
        guard.join_unrecovered(caller, top, now_ms);
        Ok(())
    }

    async fn page(
        &self,
        name: &str,
        before_seq: u64,
        limit: u32,
    ) -> Result<HistoryResult, EngineError> {
        let (epoch, mut messages) = self.sequencer.before(name, before_seq, limit).await?;
        let wanted = limit as usize;
        let first = messages.first().map_or(before_seq, |m| m.seq);
        if messages.len() < wanted
            && first > 1
            && let Some(archive) = &self.archive
        {
            // Past the stream: the archive, in the same epoch.
            let mut older = archive
                .page_in_epoch(name, &epoch, first, (wanted - messages.len()) as u32)
                .await?;
            older.extend(messages);
            messages = older;
        }
        // Older ones exist in the epoch; without an archive, only while the stream
        // filled the page.
        let has_more = messages.first().is_some_and(|m| m.seq > 1)
            && (self.archive.is_some() || messages.len() == wanted);
        Ok(HistoryResult {
            epoch,
            messages,
            has_more,
        })
    }
}

#[async_trait]
impl ChatEngine for RedisEngine {
    async fn join(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        since: Option<&Position>,
        now_ms: u64,
    ) {
        let name = match self.ensure_following(room).await {
            Ok(name) => name,
            Err(error) => {
                caller.out.reply_err(caller.command, error);
                return;
            }
        };
        // A ban made on another node.
        match self.sequencer.is_banned(&name, &caller.user.id).await {
            Ok(false) => {}
            Ok(true) => {
                caller.out.reply_err(
                    caller.command,
                    ErrorBody::new(ErrorCode::Banned, format!("banned from {name}")),
                );
                return;
            }
            Err(e) => {
                caller.out.reply_err(caller.command, failed("join", &e));
                return;
            }
        }
        if lock(room).join_from_ring(caller, since, now_ms) == Served::Done {
            return;
        }
        let Some(since) = since else {
            // The ring serves every join without a position.
            return;
        };
        if let Err(e) = self
            .join_from_redis(&name, room, caller, since, now_ms)
            .await
        {
            caller.out.reply_err(caller.command, failed("join", &e));
        }
    }

    async fn send(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        client_msg_id: &str,
        text: &str,
        _now: Instant,
        _now_ms: u64,
    ) {
        let name = {
            let mut guard = lock(room);
            if !guard.begin_send(caller, client_msg_id, text) {
                return;
            }
            guard.name().to_string()
        };
        let request = SendRequest {
            room: &name,
            user: caller.user,
            text,
            client_msg_id,
            moderator: caller.moderator,
        };
        let decided = match self.sequencer.send(&request).await {
            Ok(SendOutcome::Sent(numbered) | SendOutcome::Duplicate(numbered)) => {
                Ok(numbered.result())
            }
            Ok(SendOutcome::Refused(error)) => Err(error),
            // The script may have run: the client sends again with the same
            // `client_msg_id` and gets the first reply.
            Err(e) => Err(failed("send", &e)),
        };
        lock(room).end_send(caller, decided);
    }

    async fn history(
        &self,
        room: &RoomRef,
        caller: &Caller<'_>,
        before_seq: Option<u64>,
        limit: Option<u32>,
    ) {
        let name = {
            let guard = lock(room);
            if !guard.check_member(caller) {
                return;
            }
            guard.name().to_string()
        };
        let Some(limit) = history_limit(caller, limit) else {
            return;
        };
        match self
            .page(&name, before_seq.unwrap_or(u64::MAX), limit)
            .await
        {
            Ok(page) => caller.out.reply_ok(caller.command, &page),
            Err(e) => caller.out.reply_err(caller.command, failed("history", &e)),
        };
    }

    async fn delete(&self, room: &RoomRef, caller: &Caller<'_>, seq: u64) {
        let (name, epoch) = {
            let guard = lock(room);
            (guard.name().to_string(), guard.delivered().epoch)
        };
        let author = match self.sequencer.delete(&name, &epoch, seq, false).await {
            Ok(Some(author)) => author,
            Ok(None) => {
                caller.out.reply_err(
                    caller.command,
                    ErrorBody::new(ErrorCode::NotFound, format!("no message {seq} is held")),
                );
                return;
            }
            Err(e) => {
                caller.out.reply_err(caller.command, failed("delete", &e));
                return;
            }
        };
        if author.id != caller.user.id && !lock(room).check_moderator(caller) {
            return;
        }
        // Every node's members hear of it through the room's channel, this one's too.
        match self.sequencer.delete(&name, &epoch, seq, true).await {
            Ok(_) => caller.out.reply_ok(caller.command, serde_json::json!({})),
            Err(e) => caller.out.reply_err(caller.command, failed("delete", &e)),
        };
        if let Some(archive) = &self.archive {
            spawn_archive_deletion(archive.clone(), name, epoch, seq);
        }
    }

    async fn moderate(&self, room: &RoomRef, caller: &Caller<'_>, action: Moderation, now_ms: u64) {
        if !caller.moderator {
            // The refusal.
            lock(room).moderate(caller, &action, now_ms);
            return;
        }
        let name = lock(room).name().to_string();
        // Every node, this one too, applies it when Redis publishes it.
        let decided = match &action {
            Moderation::Timeout {
                user_id,
                duration_ms,
            } => {
                self.sequencer
                    .time_out(&name, user_id, Duration::from_millis(*duration_ms))
                    .await
            }
            Moderation::Ban { user_id } => self.sequencer.set_banned(&name, user_id, true).await,
            Moderation::Unban { user_id } => self.sequencer.set_banned(&name, user_id, false).await,
            Moderation::SlowMode { interval_ms } => {
                self.sequencer
                    .set_slow_mode(&name, Duration::from_millis(*interval_ms))
                    .await
            }
        };
        match decided {
            Ok(()) => caller.out.reply_ok(caller.command, serde_json::json!({})),
            Err(e) => caller
                .out
                .reply_err(caller.command, failed("moderation", &e)),
        };
    }

    async fn count_audience(&self, rooms: &[RoomRef]) {
        for room in rooms {
            let (name, local) = {
                let guard = lock(room);
                (guard.name().to_string(), guard.local_viewers())
            };
            match self
                .sequencer
                .report_audience(&name, &self.node, local, self.audience_ttl)
                .await
            {
                Ok(total) => lock(room).set_audience(total),
                Err(e) => debug!(room = name, "reporting the audience failed: {e}"),
            }
        }
    }
}

/// Follows `name` on Redis and applies what comes to the room, in order, until the
/// process ends (a node follows a room once its first member joined).
fn spawn_follower(sequencer: RedisSequencer, name: String, room: RoomRef) {
    let (tx, mut rx) = mpsc::channel::<Followed>(4096);
    let follower = name.clone();
    tokio::spawn(async move {
        loop {
            match sequencer.follow(&follower, tx.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(
                        room = follower,
                        "following the room failed, trying again: {e}"
                    );
                    tokio::time::sleep(RESTART_WAIT).await;
                }
            }
        }
    });
    // The applier holds the room weakly: once the server forgets an idle room, the
    // applier ends, which closes the channel and ends the follow.
    let room = Arc::downgrade(&room);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let Some(room) = room.upgrade() else { break };
            let mut guard = lock(&room);
            guard.on_followed(first);
            for _ in 1..APPLY_BATCH {
                match rx.try_recv() {
                    Ok(next) => guard.on_followed(next),
                    Err(_) => break,
                }
            }
        }
        debug!(room = name, "the follower ended");
    });
}

/// Copies `name`'s stream into the archive as consumer `node`, for as long as the
/// process runs.
fn spawn_archiver(sequencer: RedisSequencer, archive: Arc<Archive>, name: String, node: String) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = sequencer.archive_room(&archive, &name, &node).await {
                debug!(room = name, "the archiver stopped, starting again: {e}");
            }
            tokio::time::sleep(RESTART_WAIT).await;
        }
    });
}

/// Marks a deletion in the archive. The archiver may not have copied the message yet:
/// then the mark is tried again for a while.
fn spawn_archive_deletion(archive: Arc<Archive>, room: String, epoch: String, seq: u64) {
    tokio::spawn(async move {
        for _ in 0..ARCHIVE_DELETE_TRIES {
            match archive.mark_deleted(&room, &epoch, seq).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => debug!(room, seq, "marking a deletion in the archive failed: {e}"),
            }
            tokio::time::sleep(ARCHIVE_DELETE_WAIT).await;
        }
        warn!(
            room,
            seq, "the archive never got the deleted message: not marked there"
        );
    });
}

/// A temporary failure: the client tries again.
fn unavailable(message: &str) -> ErrorBody {
    // `internal` is temporary: the client sends again.
    ErrorBody::new(ErrorCode::Internal, message).retry_after(200)
}

fn failed(what: &str, e: &EngineError) -> ErrorBody {
    warn!("{what} failed on Redis: {e}");
    unavailable(&format!("{what} failed on the chat engine; try again"))
}
