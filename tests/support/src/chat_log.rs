//! Chat clients for tests: quick-reconnect settings, a chat token, and a log of every
//! event a client produced.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamhub::chat::client::BackoffConfig;
use streamhub::chat::protocol::{ChatMessage, Role};
use streamhub::chat::server::{Claims, TokenKeys};
use streamhub::chat::{ChatConfig, ChatEvent, ChatEvents};

/// Client settings for tests: reconnects after 50 ms doubling up to 400 ms, commands
/// answered within 5 s.
pub fn client_config() -> ChatConfig {
    let mut config = ChatConfig::default();
    config.backoff = BackoffConfig::new(Duration::from_millis(50), Duration::from_millis(400));
    config.command_timeout = Duration::from_secs(5);
    config
}

/// Every event a client produced, collected by a task.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<ChatEvent>>>);

impl Log {
    /// A log filled from `events` by a task of its own.
    pub fn collect(mut events: ChatEvents) -> Log {
        let log = Log::default();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                sink.0.lock().unwrap().push(event);
            }
        });
        log
    }

    /// How many events match `pred`.
    pub fn count(&self, pred: impl Fn(&ChatEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| pred(e)).count()
    }

    /// Every delivered message of `room`, in delivery order.
    pub fn messages(&self, room: &str) -> Vec<ChatMessage> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Message(m) if m.room == room => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// `(seq, text)` of every delivered message of `room`, in delivery order.
    pub fn seq_texts(&self, room: &str) -> Vec<(u64, String)> {
        self.messages(room)
            .into_iter()
            .map(|m| (m.seq, m.text))
            .collect()
    }

    /// The last audience count pushed for `room`.
    pub fn viewers(&self, room: &str) -> Option<u64> {
        self.0.lock().unwrap().iter().rev().find_map(|e| match e {
            ChatEvent::Viewers { room: r, count } if r == room => Some(*count),
            ChatEvent::Joined {
                room: r, viewers, ..
            } if r == room => Some(*viewers),
            _ => None,
        })
    }
}

/// A chat token for `user` as `role` in every room, valid for `ttl_secs`, signed with
/// `keys` (a server's `keys()`, or `TokenKeys::hs256(secret)` for a hub in another
/// process).
pub fn token(keys: &TokenKeys, user: &str, role: Role, ttl_secs: u64) -> String {
    keys.issue(&Claims::new(user, role, vec!["*".into()], ttl_secs))
        .expect("issuing a chat token")
}
