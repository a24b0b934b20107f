//! Idempotent sends: the first reply to each `(user, client_msg_id)`, remembered for a
//! while, so a retried `send` gets that reply instead of a second publication.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::chat::protocol::SendResult;

/// Remembered replies, forgotten after `ttl` or when more than `max_entries` are held
/// (oldest first).
#[derive(Debug)]
pub struct SendDedup {
    ttl: Duration,
    max_entries: usize,
    replies: HashMap<(String, String), SendResult>,
    order: VecDeque<(Instant, (String, String))>,
}

impl SendDedup {
    /// An empty memory.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        SendDedup {
            ttl,
            max_entries: max_entries.max(1),
            replies: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The first reply to this user's `client_msg_id`, if it is still remembered.
    pub fn get(&mut self, now: Instant, user: &str, client_msg_id: &str) -> Option<SendResult> {
        self.expire(now);
        self.replies
            .get(&(user.to_string(), client_msg_id.to_string()))
            .cloned()
    }

    /// Remembers the reply to a publication.
    pub fn insert(&mut self, now: Instant, user: &str, client_msg_id: &str, reply: SendResult) {
        let key = (user.to_string(), client_msg_id.to_string());
        if self.replies.insert(key.clone(), reply).is_none() {
            self.order.push_back((now, key));
        }
        while self.order.len() > self.max_entries {
            if let Some((_, key)) = self.order.pop_front() {
                self.replies.remove(&key);
            }
        }
    }

    #[cfg(test)]
    /// How many replies are remembered.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    #[cfg(test)]
    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.ttl {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.replies.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(seq: u64) -> SendResult {
        SendResult {
            id: format!("m{seq}"),
            seq,
            ts: 0,
        }
    }

    #[test]
    fn a_retry_gets_the_first_reply() {
        let now = Instant::now();
        let mut dedup = SendDedup::new(Duration::from_secs(600), 100);
        assert_eq!(dedup.get(now, "ada", "c1"), None);
        dedup.insert(now, "ada", "c1", reply(7));
        assert_eq!(dedup.get(now, "ada", "c1"), Some(reply(7)));
        assert_eq!(dedup.get(now, "bob", "c1"), None, "keys are per user");
    }

    #[test]
    fn forgets_after_the_ttl_and_beyond_the_bound() {
        let now = Instant::now();
        let mut dedup = SendDedup::new(Duration::from_secs(600), 2);
        dedup.insert(now, "ada", "c1", reply(1));
        dedup.insert(now, "ada", "c2", reply(2));
        dedup.insert(now, "ada", "c3", reply(3));
        assert_eq!(dedup.len(), 2);
        assert_eq!(dedup.get(now, "ada", "c1"), None);
        assert_eq!(
            dedup.get(now + Duration::from_secs(599), "ada", "c3"),
            Some(reply(3))
        );
        assert_eq!(dedup.get(now + Duration::from_secs(600), "ada", "c3"), None);
        assert!(dedup.is_empty());
    }
}
