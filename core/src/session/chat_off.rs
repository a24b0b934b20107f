//! A session's chat without the `chat` feature: there is none. [`SessionChat`] has no
//! value, so a config's `chat` is `None` and nothing here is ever reached; the types
//! keep the session's code the same with and without the feature.

use std::sync::Arc;

use tokio::sync::watch;

use super::{SessionChat, SessionChatStats, SessionError, Shared};

/// Any config is fine: it cannot name a chat room.
pub(crate) fn check(_chat: Option<&SessionChat>) -> Result<(), SessionError> {
    Ok(())
}

/// Never called: there is no `SessionChat`.
pub(crate) fn owed_capacity(chat: &SessionChat) -> usize {
    match *chat {}
}

/// A room's shared state: none can exist.
#[derive(Debug)]
pub(crate) enum ChatShared {}

impl ChatShared {
    pub(crate) fn for_session(chat: &SessionChat) -> Self {
        match *chat {}
    }

    pub(crate) async fn send(&self, _text: &str) -> Result<String, SessionError> {
        match *self {}
    }

    pub(crate) fn stats(&self) -> SessionChatStats {
        match *self {}
    }

    pub(crate) fn viewers(&self) -> Option<u64> {
        match *self {}
    }
}

/// Never called: there is no `SessionChat` to run.
pub(crate) async fn run(_shared: Arc<Shared>, config: SessionChat, _halt: watch::Receiver<bool>) {
    match config {}
}
