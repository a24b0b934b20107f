//! Where a room's messages live: the [`ChatStore`] trait and its in-memory ring.
//!
//! The room's sequencer numbers messages and appends them here; recovery and `history`
//! read them back. A persistent or shared store (several server nodes) implements the
//! same traits.

use std::collections::VecDeque;

use crate::chat::protocol::ChatMessage;

/// One room's message log.
pub trait RoomLog: Send {
    /// The sequencer's lifetime; a store that lost its messages starts a new one.
    fn epoch(&self) -> &str;
    /// The last sequence number handed out (0 before the first message).
    fn last_seq(&self) -> u64;
    /// Appends the message numbered `last_seq() + 1`.
    fn append(&mut self, message: ChatMessage);
    /// Every message after `seq`, oldest first, or `None` when the log no longer holds
    /// all of them (never a partial answer).
    fn after(&self, seq: u64) -> Option<Vec<ChatMessage>>;
    /// Up to `limit` messages before `before_seq`, oldest first, and whether older
    /// ones are still held.
    fn before(&self, before_seq: u64, limit: usize) -> (Vec<ChatMessage>, bool);
    /// The message numbered `seq`, if still held.
    fn get(&self, seq: u64) -> Option<&ChatMessage>;
    /// Hides a message (its text is dropped, its number stays); false if not held.
    fn delete(&mut self, seq: u64) -> bool;
}

/// Opens room logs.
pub trait ChatStore: Send + Sync {
    /// The log of `room` (a new, empty one if the store has none).
    fn open_room(&self, room: &str) -> Box<dyn RoomLog>;
}

/// Keeps the newest messages of every room in memory.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    capacity: usize,
}

impl MemoryStore {
    /// A store keeping `capacity` messages per room.
    pub fn new(capacity: usize) -> Self {
        MemoryStore {
            capacity: capacity.max(1),
        }
    }
}

impl ChatStore for MemoryStore {
    fn open_room(&self, _room: &str) -> Box<dyn RoomLog> {
        Box::new(MemoryLog::new(new_epoch(), self.capacity))
    }
}

/// A random epoch name.
pub fn new_epoch() -> String {
    format!("e{:016x}", rand::random::<u64>())
}

/// A ring of the newest messages of one room.
#[derive(Debug)]
pub struct MemoryLog {
    epoch: String,
    capacity: usize,
    last_seq: u64,
    ring: VecDeque<ChatMessage>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new(epoch: String, capacity: usize) -> Self {
        MemoryLog {
            epoch,
            capacity: capacity.max(1),
            last_seq: 0,
            ring: VecDeque::new(),
        }
    }

    /// An empty log whose next message is numbered `last_seq + 1` (a node's mirror of
    /// a room numbered elsewhere, starting where it joined the room).
    pub fn starting_at(epoch: String, last_seq: u64, capacity: usize) -> Self {
        MemoryLog {
            last_seq,
            ..MemoryLog::new(epoch, capacity)
        }
    }

    fn first_held(&self) -> u64 {
        self.ring.front().map_or(self.last_seq + 1, |m| m.seq)
    }

    fn index(&self, seq: u64) -> Option<usize> {
        let first = self.ring.front()?.seq;
        (seq >= first && seq <= self.last_seq).then(|| (seq - first) as usize)
    }
}

impl RoomLog for MemoryLog {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn append(&mut self, message: ChatMessage) {
        debug_assert_eq!(message.seq, self.last_seq + 1);
        self.last_seq = message.seq;
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(message);
    }

    fn after(&self, seq: u64) -> Option<Vec<ChatMessage>> {
        if seq > self.last_seq {
            return None;
        }
        if seq + 1 < self.first_held() {
            return None;
        }
        let start = self.index(seq + 1).unwrap_or(self.ring.len());
        Some(self.ring.iter().skip(start).cloned().collect())
    }

    fn before(&self, before_seq: u64, limit: usize) -> (Vec<ChatMessage>, bool) {
        let end = before_seq.min(self.last_seq + 1);
        let first = self.first_held();
        if end <= first {
            return (Vec::new(), false);
        }
        let start = end.saturating_sub(limit as u64).max(first);
        let messages = self
            .ring
            .iter()
            .skip((start - first) as usize)
            .take((end - start) as usize)
            .cloned()
            .collect();
        (messages, start > first)
    }

    fn get(&self, seq: u64) -> Option<&ChatMessage> {
        self.index(seq).and_then(|i| self.ring.get(i))
    }

    fn delete(&mut self, seq: u64) -> bool {
        match self.index(seq).and_then(|i| self.ring.get_mut(i)) {
            Some(message) => {
                message.deleted = true;
                message.text.clear();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::{Role, UserInfo};

    fn message(seq: u64) -> ChatMessage {
        ChatMessage {
            room: "r".into(),
            epoch: "e".into(),
            seq,
            id: format!("m{seq}"),
            ts: seq,
            user: UserInfo {
                id: "u".into(),
                name: "u".into(),
                role: Role::Viewer,
            },
            text: format!("t{seq}"),
            client_msg_id: None,
            deleted: false,
        }
    }

    fn log_with(capacity: usize, count: u64) -> MemoryLog {
        let mut log = MemoryLog::new("e".into(), capacity);
        for seq in 1..=count {
            log.append(message(seq));
        }
        log
    }

    fn seqs(messages: &[ChatMessage]) -> Vec<u64> {
        messages.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn recovery_is_all_or_nothing() {
        let log = log_with(5, 12); // holds 8..=12
        assert_eq!(seqs(&log.after(7).unwrap()), [8, 9, 10, 11, 12]);
        assert_eq!(seqs(&log.after(10).unwrap()), [11, 12]);
        assert_eq!(log.after(12).unwrap(), []);
        assert!(log.after(6).is_none(), "7 is gone: no partial replay");
        assert!(
            log.after(13).is_none(),
            "a position from the future is not ours"
        );
        let empty = log_with(5, 0);
        assert_eq!(empty.after(0).unwrap(), []);
    }

    #[test]
    fn history_pages_backwards() {
        let log = log_with(10, 25); // holds 16..=25
        let (page, more) = log.before(u64::MAX, 4);
        assert_eq!((seqs(&page), more), (vec![22, 23, 24, 25], true));
        let (page, more) = log.before(22, 4);
        assert_eq!((seqs(&page), more), (vec![18, 19, 20, 21], true));
        let (page, more) = log.before(18, 4);
        assert_eq!((seqs(&page), more), (vec![16, 17], false));
        assert_eq!(log.before(16, 4), (vec![], false));
    }

    #[test]
    fn delete_keeps_the_number() {
        let mut log = log_with(10, 3);
        assert!(log.delete(2));
        assert!(!log.delete(9));
        let m = log.get(2).unwrap();
        assert!(m.deleted && m.text.is_empty());
        assert_eq!(seqs(&log.after(0).unwrap()), [1, 2, 3]);
    }
}
