//! The apply step of a room decided elsewhere (the Redis engine): the messages the
//! node's follower hands on, strictly in seq order, go to the node's members, and the
//! node keeps the newest of them in its own ring so that most rejoins need no Redis. A
//! member's own send is answered before its echo even when the echo, published by
//! Redis, reaches the node before the reply to the script does.

use tokio::sync::watch;

use super::{Member, Room};
use crate::chat::protocol::{ChatMessage, ErrorBody, Position, SendResult, ServerFrame, unix_ms};
use crate::chat::server::outbound::serialize;
use crate::chat::server::redis_engine::Followed;
use crate::chat::server::room::Caller;
use crate::chat::server::store::MemoryLog;

/// What a node knows of a room decided elsewhere.
#[derive(Debug, Default)]
pub(super) struct Remote {
    /// Set once the node follows the room; true once the follower knows where the room
    /// stands.
    ready: Option<watch::Sender<bool>>,
    /// Messages kept in the node's ring.
    capacity: usize,
    /// The room's audience across the nodes, once reported.
    pub(super) audience: Option<u64>,
}

/// Whether a join was served, or needs what only Redis holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Replied (joined, or refused).
    Done,
    /// The node's ring does not hold what the caller missed: read it from Redis.
    NeedsRead,
}

impl Room {
    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts following the room on this node, once: the readiness to wait for, and
    /// whether the caller must start the follower (true the first time only).
    pub fn start_following(&mut self, capacity: usize) -> (watch::Receiver<bool>, bool) {
        match &self.remote.ready {
            Some(ready) => (ready.subscribe(), false),
            None => {
                let (ready, waiting) = watch::channel(false);
                self.remote.ready = Some(ready);
                self.remote.capacity = capacity.max(1);
                (waiting, true)
            }
        }
    }

    /// Where the node's delivery stands: the last message handed to its members.
    pub fn delivered(&self) -> Position {
        Position {
            epoch: self.log.epoch().to_string(),
            seq: self.log.last_seq(),
        }
    }

    /// Applies what the follower hands on.
    pub fn on_followed(&mut self, followed: Followed) {
        match followed {
            Followed::Message(message) => self.deliver_remote(message),
            Followed::Discontinuity(at) => {
                // The first position, a rotated epoch or messages lost to the node: the
                // ring starts again there (a member still counting the old numbers sees
                // the new epoch, or a gap, in what comes next; never a silent skip).
                self.log = Box::new(MemoryLog::starting_at(
                    at.epoch,
                    at.seq,
                    self.remote.capacity,
                ));
                if let Some(ready) = &self.remote.ready {
                    ready.send_replace(true);
                }
            }
            Followed::Moderated(moderated) => self.apply(&moderated, unix_ms()),
            Followed::Deleted(at) => {
                if at.epoch == self.log.epoch() {
                    self.log.delete(at.seq);
                }
                let frame = ServerFrame::Deleted {
                    room: self.name.clone(),
                    epoch: at.epoch,
                    seq: at.seq,
                };
                self.broadcast(&frame, None);
            }
        }
    }

    fn deliver_remote(&mut self, message: ChatMessage) {
        if message.epoch != self.log.epoch() || message.seq != self.log.last_seq() + 1 {
            // The follower delivers in order; should that ever break, the ring restarts
            // at the message rather than holding a hole.
            self.log = Box::new(MemoryLog::starting_at(
                message.epoch.clone(),
                message.seq.saturating_sub(1),
                self.remote.capacity,
            ));
        }
        let text = serialize(&ServerFrame::Message(message.clone()));
        for member in self.members.values_mut() {
            if member.held.is_none() && is_echo_of_pending(member, &message) {
                // Its own send, before the reply: held until the reply is queued.
                member.held = Some(vec![text.clone()]);
            } else {
                member.push_text(text.clone());
            }
        }
        self.log.append(message);
    }

    /// Checks a send before it goes to Redis; false when it was refused (replied).
    pub fn begin_send(&mut self, caller: &Caller<'_>, client_msg_id: &str, text: &str) -> bool {
        if !self.check_member(caller) {
            return false;
        }
        if let Err(error) = self.validate(client_msg_id, text) {
            caller.out.reply_err(caller.command, error);
            return false;
        }
        if let Some(member) = self.members.get_mut(&caller.conn) {
            member.pending = Some(client_msg_id.to_string());
        }
        true
    }

    /// Replies to a send Redis decided, then releases what waited behind the reply.
    pub fn end_send(&mut self, caller: &Caller<'_>, decided: Result<SendResult, ErrorBody>) {
        match decided {
            Ok(result) => caller.out.reply_ok(caller.command, &result),
            Err(error) => caller.out.reply_err(caller.command, error),
        };
        if let Some(member) = self.members.get_mut(&caller.conn) {
            member.pending = None;
            for text in member.held.take().into_iter().flatten() {
                member.out.push_text(text);
            }
        }
    }

    /// Serves a join from the node's ring when it holds what the caller missed.
    pub fn join_from_ring(
        &mut self,
        caller: &Caller<'_>,
        since: Option<&Position>,
        now_ms: u64,
    ) -> Served {
        if self.refuse_banned(caller) {
            return Served::Done;
        }
        let top = self.delivered();
        let replay = match since {
            None => None,
            Some(since) if since.epoch == top.epoch && since.seq <= top.seq => {
                match self.log.after(since.seq) {
                    Some(replay) => Some(replay),
                    None => return Served::NeedsRead,
                }
            }
            Some(_) => return Served::NeedsRead,
        };
        self.admit(caller, top, replay, now_ms);
        Served::Done
    }

    /// Serves a join with what Redis holds after `since` (`read`: the room's top and
    /// the messages after `since` up to it), merged with the node's ring so that the
    /// replay ends exactly where live delivery to the member begins. `NeedsRead` when
    /// they do not meet (the node moved on meanwhile): read again.
    pub fn join_from_read(
        &mut self,
        caller: &Caller<'_>,
        since: &Position,
        read: (u64, Vec<ChatMessage>),
        now_ms: u64,
    ) -> Served {
        if self.refuse_banned(caller) {
            return Served::Done;
        }
        let at = self.delivered();
        if at.epoch != since.epoch {
            return Served::NeedsRead;
        }
        let (top, mut messages) = read;
        if since.seq >= at.seq {
            // The node has not delivered up to the caller's position yet: what it
            // delivers next up to there the caller already holds (its cursor drops
            // them); nothing to replay.
            let joined = Position {
                epoch: at.epoch,
                seq: since.seq,
            };
            self.admit(caller, joined, Some(Vec::new()), now_ms);
            return Served::Done;
        }
        if top >= at.seq {
            messages.retain(|m| m.seq <= at.seq);
        } else {
            match self.log.after(top) {
                Some(rest) => messages.extend(rest),
                None => return Served::NeedsRead,
            }
        }
        self.admit(caller, at, Some(messages), now_ms);
        Served::Done
    }

    /// Joins the caller at `top` with nothing replayed (its position is of another
    /// epoch, older than Redis holds, or was fenced off).
    pub fn join_unrecovered(&mut self, caller: &Caller<'_>, top: Position, now_ms: u64) {
        if !self.refuse_banned(caller) {
            self.admit(caller, top, None, now_ms);
        }
    }

    /// Whether the node's ring holds message `seq`.
    pub fn holds(&self, seq: u64) -> bool {
        self.log.get(seq).is_some()
    }

    /// The room's audience across the nodes.
    pub fn set_audience(&mut self, total: u64) {
        self.remote.audience = Some(total);
    }
}

fn is_echo_of_pending(member: &Member, message: &ChatMessage) -> bool {
    member.user.id == message.user.id
        && member.pending.is_some()
        && member.pending.as_deref() == message.client_msg_id.as_deref()
}
