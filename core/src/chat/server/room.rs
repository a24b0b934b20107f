//! One chat room: its sequencer, members, limits and moderation state.
//!
//! Every command for a room runs under the room's lock, and every reply and push is
//! queued on the members' [`Outbound`]s before the lock is released. That gives the
//! ordering the protocol promises: a join's reply, then its replayed messages, then
//! new messages, with no gap and no reordering; a send's reply before its own echo.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::time::Instant;

mod remote;
mod upkeep;

pub use remote::Served;

use super::dedup::SendDedup;
use super::outbound::{Outbound, serialize};
use super::rate::{TokenBucket, slow_mode_wait};
use super::store::RoomLog;
use crate::chat::protocol::{
    ChatMessage, ErrorBody, ErrorCode, HistoryResult, JoinResult, MAX_CLIENT_MSG_ID_LEN,
    MemberEvent, Position, RateInfo, RoomState, SendResult, ServerFrame, UserInfo, YouState,
};

/// The rules every room applies.
#[derive(Debug, Clone)]
pub struct RoomRules {
    /// Longest text, in Unicode scalar values.
    pub max_text_chars: usize,
    /// Sends allowed per user per window.
    pub rate: RateInfo,
    /// How long a `client_msg_id` is remembered.
    pub dedup_ttl: Duration,
    /// At most this many remembered `client_msg_id`s per room.
    pub dedup_max: usize,
    /// Rooms with at most this many members get join/leave events.
    pub small_room: usize,
    /// At most one typing event per user per this interval.
    pub typing_interval: Duration,
}

/// A moderation's outcome, as every node applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moderated {
    /// The user may not send before `until_ms` (ms since the Unix epoch; past: lifted).
    TimedOut {
        /// Who.
        user_id: String,
        /// Until when.
        until_ms: u64,
    },
    /// The user is out of the room and may not join.
    Banned(String),
    /// The ban is lifted.
    Unbanned(String),
    /// One message per user per interval (0: off).
    SlowMode {
        /// The interval, in ms.
        interval_ms: u64,
    },
}

/// Who is asking, as the connection knows them.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    /// The connection.
    pub conn: u64,
    /// The token's user.
    pub user: &'a UserInfo,
    /// Whether the token may moderate this room.
    pub moderator: bool,
    /// The connection's queue, for replies.
    pub out: &'a Outbound,
    /// The command's id.
    pub command: u64,
}

struct Member {
    user: UserInfo,
    out: Outbound,
    /// A send decided elsewhere (Redis) whose reply is not queued yet: its
    /// `client_msg_id`. Its echo, should it come first, waits for the reply.
    pending: Option<String>,
    /// Frames held behind the reply of the pending send, in order.
    held: Option<Vec<Utf8Bytes>>,
}

impl Member {
    fn new(caller: &Caller<'_>) -> Self {
        Member {
            user: caller.user.clone(),
            out: caller.out.clone(),
            pending: None,
            held: None,
        }
    }

    /// Queues a frame, behind a pending reply if one holds the queue.
    fn push_text(&mut self, text: Utf8Bytes) {
        match &mut self.held {
            Some(held) => held.push(text),
            None => {
                self.out.push_text(text);
            }
        }
    }
}

/// A room's counters, for the hub's API and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSnapshot {
    /// The sequencer's epoch.
    pub epoch: String,
    /// The last sequence number.
    pub last_seq: u64,
    /// Connections in the room.
    pub members: usize,
    /// Members plus the stream's video viewers.
    pub viewers: u64,
}

/// One room.
pub struct Room {
    name: String,
    rules: Arc<RoomRules>,
    log: Box<dyn RoomLog>,
    members: HashMap<u64, Member>,
    dedup: SendDedup,
    buckets: HashMap<String, TokenBucket>,
    last_send: HashMap<String, Instant>,
    slow_mode: Duration,
    timeouts: HashMap<String, u64>,
    banned: HashSet<String>,
    typing: HashMap<String, Instant>,
    /// Video viewers the stream could not name.
    stream_viewers: u64,
    /// Video viewers by user id (they may also be chat members: counted once).
    stream_viewer_ids: HashSet<String>,
    pushed_viewers: u64,
    /// The node's side of a room decided elsewhere (Redis).
    remote: remote::Remote,
    /// The last time a member joined or left or the stream's audience changed.
    touched: Instant,
}

impl Room {
    /// A room over its log.
    pub fn new(name: &str, rules: Arc<RoomRules>, log: Box<dyn RoomLog>) -> Self {
        let dedup = SendDedup::new(rules.dedup_ttl, rules.dedup_max);
        Room {
            name: name.to_string(),
            rules,
            log,
            members: HashMap::new(),
            dedup,
            buckets: HashMap::new(),
            last_send: HashMap::new(),
            slow_mode: Duration::ZERO,
            timeouts: HashMap::new(),
            banned: HashSet::new(),
            typing: HashMap::new(),
            stream_viewers: 0,
            stream_viewer_ids: HashSet::new(),
            pushed_viewers: 0,
            remote: remote::Remote::default(),
            touched: Instant::now(),
        }
    }

    /// The room's counters.
    pub fn snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            epoch: self.log.epoch().to_string(),
            last_seq: self.log.last_seq(),
            members: self.members.len(),
            viewers: self.viewers(),
        }
    }

    /// Whether `conn` is a member.
    pub fn has_member(&self, conn: u64) -> bool {
        self.members.contains_key(&conn)
    }

    /// Whether a member who is not a guest has `name` as user id or display name (ASCII
    /// case aside).
    pub fn has_real_user_named(&self, name: &str) -> bool {
        self.members.values().any(|m| {
            !super::token::is_guest_id(&m.user.id)
                && (m.user.id.eq_ignore_ascii_case(name) || m.user.name.eq_ignore_ascii_case(name))
        })
    }

    /// The audience: distinct people among chat members and named video viewers, plus
    /// anonymous video viewers.
    fn viewers(&self) -> u64 {
        self.remote.audience.unwrap_or_else(|| self.local_viewers())
    }

    /// The audience on this node alone.
    pub fn local_viewers(&self) -> u64 {
        let mut people: HashSet<&str> = self.members.values().map(|m| m.user.id.as_str()).collect();
        people.extend(self.stream_viewer_ids.iter().map(String::as_str));
        people.len() as u64 + self.stream_viewers
    }

    fn state_for(&self, user_id: &str, now_ms: u64) -> RoomState {
        RoomState {
            slow_mode_ms: self.slow_mode.as_millis() as u64,
            you: YouState {
                timed_out_until: self.timeouts.get(user_id).copied().filter(|&t| t > now_ms),
                banned: self.banned.contains(user_id),
            },
        }
    }

    fn broadcast(&mut self, frame: &ServerFrame, except: Option<u64>) {
        let text = serialize(frame);
        for (conn, member) in &mut self.members {
            if Some(*conn) != except {
                member.push_text(text.clone());
            }
        }
    }

    fn member_event(&mut self, user: &UserInfo, event: MemberEvent, except: u64) {
        if self.members.len() <= self.rules.small_room {
            let frame = ServerFrame::Member {
                room: self.name.clone(),
                user: user.clone(),
                event,
            };
            self.broadcast(&frame, Some(except));
        }
    }

    /// `join`: adds the connection, replies, and replays what it missed when the log
    /// still holds all of it.
    pub fn join(&mut self, caller: &Caller<'_>, since: Option<&Position>, now_ms: u64) {
        if self.refuse_banned(caller) {
            return;
        }
        let replay = since
            .filter(|pos| pos.epoch == self.log.epoch())
            .and_then(|pos| self.log.after(pos.seq));
        let top = Position {
            epoch: self.log.epoch().to_string(),
            seq: self.log.last_seq(),
        };
        self.admit(caller, top, replay, now_ms);
    }

    /// Replies `banned` if the caller is banned here.
    fn refuse_banned(&self, caller: &Caller<'_>) -> bool {
        if !self.banned.contains(&caller.user.id) {
            return false;
        }
        caller.out.reply_err(
            caller.command,
            ErrorBody::new(ErrorCode::Banned, format!("banned from {}", self.name)),
        );
        true
    }

    /// Adds the connection and replies that it joined at `top`, then replays `replay`
    /// (the messages up to `top` it missed; `None`: not recovered).
    fn admit(
        &mut self,
        caller: &Caller<'_>,
        top: Position,
        replay: Option<Vec<ChatMessage>>,
        now_ms: u64,
    ) {
        self.touched = Instant::now();
        let rejoin = self
            .members
            .insert(caller.conn, Member::new(caller))
            .is_some();
        let result = JoinResult {
            room: self.name.clone(),
            epoch: top.epoch,
            seq: top.seq,
            viewers: self.viewers(),
            recovered: replay.is_some(),
            state: self.state_for(&caller.user.id, now_ms),
        };
        caller.out.reply_ok(caller.command, &result);
        for message in replay.unwrap_or_default() {
            caller.out.push(&ServerFrame::Message(message));
        }
        if !rejoin {
            self.member_event(caller.user, MemberEvent::Join, caller.conn);
        }
    }

    /// Removes a connection (leave, disconnect); true if it was a member.
    pub fn remove(&mut self, conn: u64) -> bool {
        match self.members.remove(&conn) {
            Some(member) => {
                self.touched = Instant::now();
                // Frames held behind a reply that will not come now still go out.
                for text in member.held.into_iter().flatten() {
                    member.out.push_text(text);
                }
                self.member_event(&member.user, MemberEvent::Leave, conn);
                true
            }
            None => false,
        }
    }

    /// Replies `not_joined` unless the caller is a member; true if it is.
    pub(crate) fn check_member(&self, caller: &Caller<'_>) -> bool {
        if self.members.contains_key(&caller.conn) {
            return true;
        }
        caller.out.reply_err(
            caller.command,
            ErrorBody::new(ErrorCode::NotJoined, format!("join {} first", self.name)),
        );
        false
    }

    /// `send`: validates, deduplicates, applies limits, numbers and publishes.
    pub fn send(
        &mut self,
        caller: &Caller<'_>,
        client_msg_id: &str,
        text: &str,
        now: Instant,
        now_ms: u64,
    ) {
        if !self.check_member(caller) {
            return;
        }
        if let Err(error) = self.validate(client_msg_id, text) {
            caller.out.reply_err(caller.command, error);
            return;
        }
        let user_id = caller.user.id.as_str();
        if let Some(first) = self.dedup.get(now, user_id, client_msg_id) {
            caller.out.reply_ok(caller.command, &first);
            return;
        }
        if let Err(error) = self.check_allowed(caller, now, now_ms) {
            caller.out.reply_err(caller.command, error);
            return;
        }
        let seq = self.log.last_seq() + 1;
        let message = ChatMessage {
            room: self.name.clone(),
            epoch: self.log.epoch().to_string(),
            seq,
            id: format!("{}-{seq}", self.log.epoch()),
            ts: now_ms,
            user: caller.user.clone(),
            text: text.to_string(),
            client_msg_id: Some(client_msg_id.to_string()),
            deleted: false,
        };
        let result = SendResult {
            id: message.id.clone(),
            seq,
            ts: now_ms,
        };
        self.dedup
            .insert(now, user_id, client_msg_id, result.clone());
        self.last_send.insert(user_id.to_string(), now);
        caller.out.reply_ok(caller.command, &result);
        let frame = ServerFrame::Message(message.clone());
        self.log.append(message);
        self.broadcast(&frame, None);
    }

    fn validate(&self, client_msg_id: &str, text: &str) -> Result<(), ErrorBody> {
        if client_msg_id.is_empty() || client_msg_id.len() > MAX_CLIENT_MSG_ID_LEN {
            return Err(ErrorBody::new(
                ErrorCode::InvalidArgument,
                format!("client_msg_id must be 1-{MAX_CLIENT_MSG_ID_LEN} bytes"),
            ));
        }
        let chars = text.chars().count();
        if chars > self.rules.max_text_chars {
            return Err(ErrorBody::new(
                ErrorCode::MessageTooLong,
                format!(
                    "the text has {chars} characters; at most {} are allowed",
                    self.rules.max_text_chars
                ),
            ));
        }
        if text.trim().is_empty() {
            return Err(ErrorBody::new(ErrorCode::InvalidText, "the text is empty"));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ErrorBody::new(
                ErrorCode::InvalidText,
                "the text has control characters",
            ));
        }
        Ok(())
    }

    fn check_allowed(
        &mut self,
        caller: &Caller<'_>,
        now: Instant,
        now_ms: u64,
    ) -> Result<(), ErrorBody> {
        let user_id = caller.user.id.as_str();
        if self.banned.contains(user_id) {
            return Err(ErrorBody::new(ErrorCode::Banned, "banned from this room"));
        }
        if let Some(&until) = self.timeouts.get(user_id)
            && until > now_ms
        {
            return Err(
                ErrorBody::new(ErrorCode::TimedOut, "timed out by a moderator")
                    .retry_after(until - now_ms),
            );
        }
        if !caller.moderator {
            let wait = slow_mode_wait(self.last_send.get(user_id).copied(), self.slow_mode, now);
            if let Some(wait) = wait.filter(|_| !self.slow_mode.is_zero()) {
                return Err(ErrorBody::new(
                    ErrorCode::SlowMode,
                    format!(
                        "slow mode: one message per {} ms",
                        self.slow_mode.as_millis()
                    ),
                )
                .retry_after(ceil_ms(wait)));
            }
        }
        let rate = self.rules.rate;
        let bucket = self.buckets.entry(user_id.to_string()).or_insert_with(|| {
            TokenBucket::new(rate.messages, Duration::from_millis(rate.per_ms), now)
        });
        bucket.try_take(now).map_err(|wait| {
            ErrorBody::new(
                ErrorCode::RateLimited,
                format!("at most {} messages per {} ms", rate.messages, rate.per_ms),
            )
            .retry_after(ceil_ms(wait))
        })
    }

    /// `history`: a page of older messages.
    pub fn history(&self, caller: &Caller<'_>, before_seq: Option<u64>, limit: Option<u32>) {
        if !self.check_member(caller) {
            return;
        }
        let Some(limit) = history_limit(caller, limit) else {
            return;
        };
        let (messages, has_more) = self
            .log
            .before(before_seq.unwrap_or(u64::MAX), limit as usize);
        let result = HistoryResult {
            epoch: self.log.epoch().to_string(),
            messages,
            has_more,
        };
        caller.out.reply_ok(caller.command, &result);
    }

    /// `typing`: forwarded to the others at most once per user per interval.
    pub fn typing(&mut self, caller: &Caller<'_>, now: Instant) {
        if !self.check_member(caller) {
            return;
        }
        let last = self.typing.get(&caller.user.id).copied();
        if slow_mode_wait(last, self.rules.typing_interval, now).is_none() {
            self.typing.insert(caller.user.id.clone(), now);
            let frame = ServerFrame::Typing {
                room: self.name.clone(),
                user: caller.user.clone(),
            };
            self.broadcast(&frame, Some(caller.conn));
        }
        caller.out.reply_ok(caller.command, serde_json::json!({}));
    }

    /// Replies `forbidden` unless the caller moderates the room; true if it does.
    pub(crate) fn check_moderator(&self, caller: &Caller<'_>) -> bool {
        if caller.moderator {
            return true;
        }
        caller.out.reply_err(
            caller.command,
            ErrorBody::new(
                ErrorCode::Forbidden,
                format!(
                    "only moderators and the broadcaster may do this in {}",
                    self.name
                ),
            ),
        );
        false
    }

    /// `delete`: moderators, or the author of the message.
    pub fn delete(&mut self, caller: &Caller<'_>, seq: u64) {
        let author = match self.log.get(seq) {
            Some(message) => message.user.id.clone(),
            None => {
                caller.out.reply_err(
                    caller.command,
                    ErrorBody::new(ErrorCode::NotFound, format!("no message {seq} is held")),
                );
                return;
            }
        };
        if author != caller.user.id && !self.check_moderator(caller) {
            return;
        }
        self.log.delete(seq);
        caller.out.reply_ok(caller.command, serde_json::json!({}));
        let frame = ServerFrame::Deleted {
            room: self.name.clone(),
            epoch: self.log.epoch().to_string(),
            seq,
        };
        self.broadcast(&frame, None);
    }

    fn push_state_to(&mut self, user_id: &str, now_ms: u64) {
        let text = serialize(&ServerFrame::RoomState {
            room: self.name.clone(),
            state: self.state_for(user_id, now_ms),
        });
        for member in self.members.values_mut().filter(|m| m.user.id == user_id) {
            member.push_text(text.clone());
        }
    }

    /// `timeout`: the user may not send for `duration_ms` (0 lifts it).
    pub fn timeout(&mut self, caller: &Caller<'_>, user_id: &str, duration_ms: u64, now_ms: u64) {
        if !self.check_moderator(caller) {
            return;
        }
        caller.out.reply_ok(caller.command, serde_json::json!({}));
        self.apply(
            &Moderated::TimedOut {
                user_id: user_id.to_string(),
                until_ms: now_ms.saturating_add(duration_ms),
            },
            now_ms,
        );
    }

    /// `ban`: removes the user's connections from the room and keeps them out.
    pub fn ban(&mut self, caller: &Caller<'_>, user_id: &str) {
        if !self.check_moderator(caller) {
            return;
        }
        caller.out.reply_ok(caller.command, serde_json::json!({}));
        self.apply(&Moderated::Banned(user_id.to_string()), 0);
    }

    /// `unban`.
    pub fn unban(&mut self, caller: &Caller<'_>, user_id: &str) {
        if !self.check_moderator(caller) {
            return;
        }
        caller.out.reply_ok(caller.command, serde_json::json!({}));
        self.apply(&Moderated::Unbanned(user_id.to_string()), 0);
    }

    /// `slow_mode`: one message per user per interval; every member is told.
    pub fn slow_mode(&mut self, caller: &Caller<'_>, interval_ms: u64, now_ms: u64) {
        if !self.check_moderator(caller) {
            return;
        }
        caller.out.reply_ok(caller.command, serde_json::json!({}));
        self.apply(&Moderated::SlowMode { interval_ms }, now_ms);
    }

    /// Applies a moderation decided here or on another node: the room's state, and what
    /// the members concerned are told.
    pub fn apply(&mut self, moderated: &Moderated, now_ms: u64) {
        match moderated {
            Moderated::TimedOut { user_id, until_ms } => {
                if *until_ms > now_ms {
                    self.timeouts.insert(user_id.clone(), *until_ms);
                } else {
                    self.timeouts.remove(user_id);
                }
                self.push_state_to(user_id, now_ms);
            }
            Moderated::Banned(user_id) => {
                self.banned.insert(user_id.clone());
                self.kick(user_id);
            }
            Moderated::Unbanned(user_id) => {
                self.banned.remove(user_id);
            }
            Moderated::SlowMode { interval_ms } => {
                self.slow_mode = Duration::from_millis(*interval_ms);
                self.push_state_to_all(now_ms);
            }
        }
    }

    fn kick(&mut self, user_id: &str) {
        let kicked: Vec<u64> = self
            .members
            .iter()
            .filter(|(_, m)| m.user.id == user_id)
            .map(|(conn, _)| *conn)
            .collect();
        let text = serialize(&ServerFrame::Kicked {
            room: self.name.clone(),
            code: ErrorCode::Banned,
            message: format!("banned from {}", self.name),
        });
        for conn in kicked {
            if let Some(member) = self.members.get_mut(&conn) {
                member.push_text(text.clone());
            }
            self.remove(conn);
        }
    }

    fn push_state_to_all(&mut self, now_ms: u64) {
        let frames: Vec<(u64, Utf8Bytes)> = self
            .members
            .iter()
            .map(|(conn, member)| {
                let state = self.state_for(&member.user.id, now_ms);
                let frame = ServerFrame::RoomState {
                    room: self.name.clone(),
                    state,
                };
                (*conn, serialize(&frame))
            })
            .collect();
        for (conn, text) in frames {
            if let Some(member) = self.members.get_mut(&conn) {
                member.push_text(text);
            }
        }
    }

    /// Sets the stream's video viewers counted in the room's audience: `anonymous`
    /// ones, and those known by user id (counted once even when they also chat).
    pub fn set_stream_audience(&mut self, anonymous: u64, users: impl IntoIterator<Item = String>) {
        self.touched = Instant::now();
        self.stream_viewers = anonymous;
        self.stream_viewer_ids = users.into_iter().collect();
    }

    /// Pushes the audience to every member if it changed since the last push.
    pub fn flush_viewers(&mut self) {
        let count = self.viewers();
        if count != self.pushed_viewers {
            self.pushed_viewers = count;
            let frame = ServerFrame::Viewers {
                room: self.name.clone(),
                count,
            };
            self.broadcast(&frame, None);
        }
    }
}

/// A `history` page's size (50 by default); replies `invalid_argument` outside 1-100.
pub(crate) fn history_limit(caller: &Caller<'_>, limit: Option<u32>) -> Option<u32> {
    let limit = limit.unwrap_or(50);
    if (1..=100).contains(&limit) {
        return Some(limit);
    }
    caller.out.reply_err(
        caller.command,
        ErrorBody::new(ErrorCode::InvalidArgument, "limit must be 1-100"),
    );
    None
}

fn ceil_ms(wait: Duration) -> u64 {
    wait.as_micros().div_ceil(1000).max(1) as u64
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("name", &self.name)
            .field("members", &self.members.len())
            .field("slow_mode", &self.slow_mode)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::ws::Utf8Bytes;
    use tokio::sync::mpsc;

    use super::*;
    use crate::chat::protocol::{Reply, Role};
    use crate::chat::server::store::MemoryLog;

    fn rules() -> Arc<RoomRules> {
        Arc::new(RoomRules {
            max_text_chars: 500,
            rate: RateInfo {
                messages: 5,
                per_ms: 5000,
            },
            dedup_ttl: Duration::from_secs(600),
            dedup_max: 10_000,
            small_room: 100,
            typing_interval: Duration::from_secs(3),
        })
    }

    struct Conn {
        id: u64,
        user: UserInfo,
        out: Outbound,
        rx: mpsc::Receiver<Utf8Bytes>,
        moderator: bool,
        next_command: u64,
    }

    impl Conn {
        fn new(id: u64, name: &str, role: Role) -> Conn {
            let (out, rx) = Outbound::new(4096);
            Conn {
                id,
                user: UserInfo {
                    id: name.into(),
                    name: name.into(),
                    role,
                },
                out,
                rx,
                moderator: role != Role::Viewer,
                next_command: 0,
            }
        }

        fn caller(&mut self) -> Caller<'_> {
            self.next_command += 1;
            Caller {
                conn: self.id,
                user: &self.user,
                moderator: self.moderator,
                out: &self.out,
                command: self.next_command,
            }
        }

        fn frames(&mut self) -> Vec<ServerFrame> {
            let mut frames = Vec::new();
            while let Ok(text) = self.rx.try_recv() {
                frames.push(serde_json::from_str(text.as_str()).unwrap());
            }
            frames
        }

        fn last_reply(&mut self) -> Reply {
            self.frames()
                .into_iter()
                .filter_map(|f| match f {
                    ServerFrame::Reply(r) => Some(r),
                    _ => None,
                })
                .next_back()
                .expect("a reply")
        }
    }

    fn room(capacity: usize) -> Room {
        Room::new(
            "cam1",
            rules(),
            Box::new(MemoryLog::new("e1".into(), capacity)),
        )
    }

    fn messages(frames: &[ServerFrame]) -> Vec<(u64, String)> {
        frames
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Message(m) => Some((m.seq, m.text.clone())),
                _ => None,
            })
            .collect()
    }

    fn send(room: &mut Room, conn: &mut Conn, id: &str, text: &str, now: Instant) -> Reply {
        room.send(&conn.caller(), id, text, now, 1000);
        conn.last_reply()
    }

    #[test]
    fn the_sequencer_numbers_from_one_and_echoes_after_the_reply() {
        let now = Instant::now();
        let mut room = room(100);
        let mut ada = Conn::new(1, "ada", Role::Viewer);
        let mut bob = Conn::new(2, "bob", Role::Viewer);
        room.join(&ada.caller(), None, 0);
        room.join(&bob.caller(), None, 0);
        ada.frames();
        bob.frames();
        for i in 1..=3 {
            room.send(&ada.caller(), &format!("c{i}"), &format!("m{i}"), now, 1000);
        }
        let frames = ada.frames();
        assert!(matches!(&frames[0], ServerFrame::Reply(r) if r.ok));
        assert!(matches!(&frames[1], ServerFrame::Message(m) if m.seq == 1));
        assert_eq!(
            messages(&bob.frames()),
            [(1, "m1".into()), (2, "m2".into()), (3, "m3".into())]
        );
        assert_eq!(room.snapshot().last_seq, 3);
    }

    #[test]
    fn a_retried_send_is_published_once_and_gets_the_first_reply() {
        let now = Instant::now();
        let mut room = room(100);
        let mut ada = Conn::new(1, "ada", Role::Viewer);
        room.join(&ada.caller(), None, 0);
        let first = send(&mut room, &mut ada, "same", "hello", now);
        let again = send(&mut room, &mut ada, "same", "hello", now);
        assert_eq!(first.result, again.result);
        assert_eq!(room.snapshot().last_seq, 1);
        // The retry does not spend the rate limit either: four more fit.
        for i in 0..4 {
            assert!(send(&mut room, &mut ada, &format!("x{i}"), "t", now).ok);
        }
    }

    #[test]
    fn join_replays_everything_missed_or_nothing() {
        let now = Instant::now();
        let mut room = room(5);
        let mut ada = Conn::new(1, "ada", Role::Viewer);
        room.join(&ada.caller(), None, 0);
        for i in 1..=8 {
            let reply = send(
                &mut room,
                &mut ada,
                &format!("c{i}"),
                &format!("m{i}"),
                now + Duration::from_secs(i * 2),
            );
            assert!(reply.ok, "{reply:?}");
        }
        let mut bob = Conn::new(2, "bob", Role::Viewer);
        let since = Position {
            epoch: "e1".into(),
            seq: 5,
        };
        room.join(&bob.caller(), Some(&since), 0);
        let frames = bob.frames();
        let ServerFrame::Reply(reply) = &frames[0] else {
            panic!("reply first")
        };
        let result: JoinResult = serde_json::from_value(reply.result.clone().unwrap()).unwrap();
        assert!(result.recovered);
        assert_eq!(result.seq, 8);
        assert_eq!(
            messages(&frames[1..])
                .iter()
                .map(|m| m.0)
                .collect::<Vec<_>>(),
            [6, 7, 8]
        );

        // Held: 4..=8. Since 2 would need 3: not recovered, nothing replayed.
        let mut eve = Conn::new(3, "eve", Role::Viewer);
        room.join(
            &eve.caller(),
            Some(&Position {
                epoch: "e1".into(),
                seq: 2,
            }),
            0,
        );
        let frames = eve.frames();
        assert!(messages(&frames).is_empty());
        let ServerFrame::Reply(reply) = &frames[0] else {
            panic!("reply first")
        };
        assert_eq!(reply.result.as_ref().unwrap()["recovered"], false);
        // Another epoch: not recovered.
        let mut fay = Conn::new(4, "fay", Role::Viewer);
        room.join(
            &fay.caller(),
            Some(&Position {
                epoch: "old".into(),
                seq: 7,
            }),
            0,
        );
        assert_eq!(fay.last_reply().result.unwrap()["recovered"], false);
    }

    #[test]
    fn limits_and_validation() {
        let now = Instant::now();
        let mut room = room(100);
        let mut ada = Conn::new(1, "ada", Role::Viewer);
        assert_eq!(
            send(&mut room, &mut ada, "a", "x", now).error.unwrap().code,
            ErrorCode::NotJoined
        );
        room.join(&ada.caller(), None, 0);
        let long = "é".repeat(501);
        assert_eq!(
            send(&mut room, &mut ada, "a", &long, now)
                .error
                .unwrap()
                .code,
            ErrorCode::MessageTooLong
        );
        assert!(send(&mut room, &mut ada, "b", &"é".repeat(500), now).ok);
        assert_eq!(
            send(&mut room, &mut ada, "c", "  \n ", now)
                .error
                .unwrap()
                .code,
            ErrorCode::InvalidText
        );
        assert_eq!(
            send(&mut room, &mut ada, "d", "bell\u{7}", now)
                .error
                .unwrap()
                .code,
            ErrorCode::InvalidText
        );
        assert_eq!(
            send(&mut room, &mut ada, "", "x", now).error.unwrap().code,
            ErrorCode::InvalidArgument
        );
        for i in 0..4 {
            assert!(send(&mut room, &mut ada, &format!("r{i}"), "x", now).ok);
        }
        let limited = send(&mut room, &mut ada, "r5", "x", now).error.unwrap();
        assert_eq!(limited.code, ErrorCode::RateLimited);
        assert!(limited.temporary);
        assert_eq!(limited.retry_after_ms, Some(1000));
        assert!(
            send(
                &mut room,
                &mut ada,
                "r5",
                "x",
                now + Duration::from_millis(1000)
            )
            .ok
        );
    }

    #[test]
    fn moderation_is_enforced_by_role() {
        let now = Instant::now();
        let mut room = room(100);
        let mut ada = Conn::new(1, "ada", Role::Viewer);
        let mut bob = Conn::new(2, "bob", Role::Viewer);
        let mut mod_ = Conn::new(3, "mo", Role::Moderator);
        for conn in [&mut ada, &mut bob, &mut mod_] {
            room.join(&conn.caller(), None, 0);
        }
        assert!(send(&mut room, &mut ada, "a1", "hi", now).ok);
        // A viewer may not delete another's message, nor time anyone out.
        room.delete(&bob.caller(), 1);
        assert_eq!(bob.last_reply().error.unwrap().code, ErrorCode::Forbidden);
        room.timeout(&bob.caller(), "ada", 1000, 0);
        assert_eq!(bob.last_reply().error.unwrap().code, ErrorCode::Forbidden);
        // The author may.
        room.delete(&ada.caller(), 1);
        assert!(ada.last_reply().ok);
        assert!(
            bob.frames()
                .iter()
                .any(|f| matches!(f, ServerFrame::Deleted { seq: 1, .. }))
        );

        room.timeout(&mod_.caller(), "ada", 30_000, 1000);
        assert!(mod_.last_reply().ok);
        assert!(ada.frames().iter().any(|f| matches!(f, ServerFrame::RoomState { state, .. } if state.you.timed_out_until == Some(31_000))));
        let refused = send(&mut room, &mut ada, "a2", "hi", now).error.unwrap();
        assert_eq!(
            (refused.code, refused.retry_after_ms),
            (ErrorCode::TimedOut, Some(30_000))
        );

        room.ban(&mod_.caller(), "bob");
        assert!(bob.frames().iter().any(|f| matches!(
            f,
            ServerFrame::Kicked {
                code: ErrorCode::Banned,
                ..
            }
        )));
        assert!(!room.has_member(2));
        room.join(&bob.caller(), None, 0);
        assert_eq!(bob.last_reply().error.unwrap().code, ErrorCode::Banned);

        room.slow_mode(&mod_.caller(), 3000, 0);
        mod_.frames();
        let mut cy = Conn::new(4, "cy", Role::Viewer);
        room.join(&cy.caller(), None, 0);
        assert!(send(&mut room, &mut cy, "c1", "one", now).ok);
        let slow = send(
            &mut room,
            &mut cy,
            "c2",
            "two",
            now + Duration::from_millis(1000),
        )
        .error
        .unwrap();
        assert_eq!(
            (slow.code, slow.retry_after_ms),
            (ErrorCode::SlowMode, Some(2000))
        );
        // Moderators are not slowed down.
        assert!(send(&mut room, &mut mod_, "m1", "one", now).ok);
        assert!(send(&mut room, &mut mod_, "m2", "two", now).ok);
    }

    #[test]
    fn typing_is_throttled_and_members_are_announced() {
        let now = Instant::now();
        let mut room = room(10);
        let mut ada = Conn::new(1, "ada", Role::Viewer);
        let mut bob = Conn::new(2, "bob", Role::Viewer);
        room.join(&ada.caller(), None, 0);
        room.join(&bob.caller(), None, 0);
        assert!(ada.frames().iter().any(|f| matches!(f,
            ServerFrame::Member { user, event: MemberEvent::Join, .. } if user.id == "bob")));
        for offset_ms in [0, 1000, 2999, 3000] {
            room.typing(&bob.caller(), now + Duration::from_millis(offset_ms));
            assert!(bob.last_reply().ok);
        }
        let typing = ada
            .frames()
            .iter()
            .filter(|f| matches!(f, ServerFrame::Typing { .. }))
            .count();
        assert_eq!(typing, 2, "at 0 ms and 3000 ms only");
        assert!(room.remove(2));
        assert!(ada.frames().iter().any(|f| matches!(
            f,
            ServerFrame::Member {
                event: MemberEvent::Leave,
                ..
            }
        )));
        assert!(!room.remove(2));
    }

    #[test]
    fn viewer_counts_are_pushed_when_they_change() {
        let mut room = room(10);
        let mut ada = Conn::new(1, "ada", Role::Viewer);
        room.join(&ada.caller(), None, 0);
        room.set_stream_audience(4, Vec::new());
        room.flush_viewers();
        room.flush_viewers();
        // Ada also watches (named by her token): still one person. Bob only watches.
        room.set_stream_audience(4, vec!["ada".to_string(), "bob".to_string()]);
        room.flush_viewers();
        // A second chat connection of Ada's is still Ada.
        let mut ada_again = Conn::new(2, "ada", Role::Viewer);
        room.join(&ada_again.caller(), None, 0);
        room.flush_viewers();
        let _ = ada_again.frames();
        let counts: Vec<u64> = ada
            .frames()
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Viewers { count, .. } => Some(*count),
                _ => None,
            })
            .collect();
        assert_eq!(counts, [5, 6]);
    }
}
