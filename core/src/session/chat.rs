//! The chat part of a session: one [`ChatClient`] in the stream's room, its events
//! turned into [`SessionEvent`]s. Never fatal for the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

use super::{SessionChat, SessionChatStats, SessionError, SessionEvent, Shared};
use crate::chat::client::EventOutlet;
use crate::chat::{ChatClient, ChatEvent, TokenSource};

/// How long `send_chat` waits for the chat's first connection.
const FIRST_CONNECTION_WAIT: Duration = Duration::from_secs(10);

/// How long a stopping session gives queued chat messages.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

pub(crate) fn check(chat: Option<&SessionChat>) -> Result<(), SessionError> {
    let Some(chat) = chat else { return Ok(()) };
    crate::chat::client::transport::ChatUrl::parse(&chat.url)
        .map_err(|e| SessionError::InvalidConfig(e.to_string()))?;
    if chat.room.is_empty() {
        return Err(SessionError::InvalidConfig("empty chat room".into()));
    }
    Ok(())
}

/// Chat events the app is owed that the session's queue holds for it before the chat
/// client waits: the client's own `event_capacity`.
pub(crate) fn owed_capacity(chat: &SessionChat) -> usize {
    chat.config.event_capacity
}

#[derive(Debug)]
pub(crate) struct ChatShared {
    room: String,
    /// The chat client once it has connected and joined the room (until the chat stops).
    client: watch::Sender<Option<ChatClient>>,
    connected: AtomicBool,
    connections: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
    send_failures: AtomicU64,
    viewers: AtomicU64,
    has_viewers: AtomicBool,
}

impl ChatShared {
    /// The shared state of `chat`'s room.
    pub(crate) fn for_session(chat: &SessionChat) -> Self {
        Self::new(&chat.room)
    }

    pub(crate) fn new(room: &str) -> Self {
        ChatShared {
            room: room.to_string(),
            client: watch::Sender::new(None),
            connected: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            send_failures: AtomicU64::new(0),
            viewers: AtomicU64::new(0),
            has_viewers: AtomicBool::new(false),
        }
    }

    fn set_client(&self, client: Option<ChatClient>) {
        self.client.send_replace(client);
    }

    /// Queues a message; before the chat's first connection and join, waits for them up
    /// to [`FIRST_CONNECTION_WAIT`] (a session can be Live before its chat is connected).
    pub(crate) async fn send(&self, text: &str) -> Result<String, SessionError> {
        let mut client_rx = self.client.subscribe();
        let client = tokio::time::timeout(FIRST_CONNECTION_WAIT, async {
            client_rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|client| client.clone())
        })
        .await
        .ok()
        .flatten()
        .ok_or(SessionError::ChatUnavailable(
            "not connected to the chat (waited 10 s)",
        ))?;
        client
            .enqueue(&self.room, text)
            .await
            .map_err(SessionError::chat("sending a chat message"))
    }

    pub(crate) fn stats(&self) -> SessionChatStats {
        SessionChatStats {
            connected: self.connected.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            messages_received: self.received.load(Ordering::Relaxed),
            messages_sent: self.sent.load(Ordering::Relaxed),
            send_failures: self.send_failures.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn viewers(&self) -> Option<u64> {
        self.has_viewers
            .load(Ordering::Relaxed)
            .then(|| self.viewers.load(Ordering::Relaxed))
    }

    fn set_viewers(&self, count: u64) {
        self.viewers.store(count, Ordering::Relaxed);
        self.has_viewers.store(true, Ordering::Relaxed);
    }
}

/// The session's outlet for its chat client: each chat event becomes a session event
/// in the session's own queue, the one the app reads. Chat outcomes the app is owed
/// (messages, sent, send failed, deleted, kicked) wait for room there — until the
/// session stops; the rest is dropped and counted when the queue is full.
struct SessionOutlet {
    shared: Arc<Shared>,
    halt: watch::Receiver<bool>,
}

impl EventOutlet for SessionOutlet {
    async fn deliver(&mut self, event: ChatEvent) {
        let Some(chat) = self.shared.chat.as_ref() else {
            return;
        };
        let Some(owed) = session_event(chat, &self.shared, event) else {
            return;
        };
        tokio::select! {
            // Room in the queue wins over a stop: a stopping session still hands over
            // what fits.
            biased;
            queued = self.shared.events.send_owed(owed) => {
                if !queued {
                    debug!("the app dropped its events");
                }
            }
            _ = super::stop_requested(&mut self.halt) => {
                debug!("stopping with a chat event the app did not read");
                self.shared.events.count_dropped();
            }
        }
    }
}

/// Counts a chat event; emits it at once if the app may miss it, or returns it if the
/// app is owed it. `None` for what a session does not surface.
fn session_event(chat: &ChatShared, shared: &Shared, event: ChatEvent) -> Option<SessionEvent> {
    let owed = match event {
        ChatEvent::Connected { reconnect, .. } => {
            chat.connected.store(true, Ordering::Relaxed);
            chat.connections.fetch_add(1, Ordering::Relaxed);
            shared.emit(SessionEvent::ChatConnected { reconnect });
            return None;
        }
        ChatEvent::Disconnected { reason, retry_in } => {
            chat.connected.store(false, Ordering::Relaxed);
            shared.emit(SessionEvent::ChatDisconnected { reason, retry_in });
            return None;
        }
        ChatEvent::Joined { room, viewers, .. } => {
            chat.set_viewers(viewers);
            shared.emit(SessionEvent::ChatJoined { room, viewers });
            return None;
        }
        ChatEvent::Viewers { count, .. } => {
            chat.set_viewers(count);
            shared.emit(SessionEvent::Viewers(count));
            return None;
        }
        ChatEvent::Failed(error) => {
            chat.connected.store(false, Ordering::Relaxed);
            shared.emit(SessionEvent::Error(SessionError::chat("chat stopped")(
                error,
            )));
            return None;
        }
        ChatEvent::Message(message) => {
            chat.received.fetch_add(1, Ordering::Relaxed);
            SessionEvent::Chat(message)
        }
        ChatEvent::Sent {
            client_msg_id,
            result,
            ..
        } => {
            chat.sent.fetch_add(1, Ordering::Relaxed);
            SessionEvent::ChatSent {
                client_msg_id,
                seq: result.seq,
            }
        }
        ChatEvent::SendFailed {
            client_msg_id,
            error,
            ..
        } => {
            chat.send_failures.fetch_add(1, Ordering::Relaxed);
            SessionEvent::ChatSendFailed {
                client_msg_id,
                error: SessionError::chat("sending a chat message")(error),
            }
        }
        ChatEvent::Deleted { room, seq } => SessionEvent::ChatDeleted { room, seq },
        ChatEvent::Kicked { room, error } => SessionEvent::ChatKicked {
            room,
            reason: error.message,
        },
        // Gaps, members, typing, room rules and token refreshes are the chat client's
        // business; a session does not surface them.
        _ => return None,
    };
    Some(owed)
}

/// Starts the chat client, joins the room, and closes the client once the session's
/// media part has ended. The client hands its events straight to the session's queue.
pub(crate) async fn run(shared: Arc<Shared>, config: SessionChat, mut halt: watch::Receiver<bool>) {
    let Some(chat) = shared.chat.as_ref() else {
        return;
    };
    // The client retries every connection itself, the first one included: its
    // failures arrive as `Disconnected` events, a final refusal as `Failed`.
    let token = TokenSource::fixed(config.token.clone());
    let outlet = SessionOutlet {
        shared: shared.clone(),
        halt: halt.clone(),
    };
    let (client, mut task) =
        match ChatClient::start_into(&config.url, token, config.config.clone(), outlet) {
            Ok(started) => started,
            Err(error) => {
                warn!(%error, "chat cannot start");
                shared.emit(SessionEvent::Error(SessionError::chat(
                    "connecting to chat",
                )(error)));
                return;
            }
        };
    // The join's own `Joined` event arrives through the outlet. The task ends by itself
    // only when the client gave up (a final refusal, delivered as `Failed`).
    let joined = async {
        match client.join(&config.room).await {
            // Only now can `send_chat` queue: the client refuses messages for a room it
            // was not asked to join.
            Ok(_) => chat.set_client(Some(client.clone())),
            Err(error) => shared.emit(SessionEvent::Error(SessionError::chat("joining the room")(
                error,
            ))),
        }
        // Joined or not, the chat runs until the session stops or the client gives up.
        std::future::pending::<std::convert::Infallible>().await
    };
    let task_over = tokio::select! {
        never = joined => match never {},
        _ = super::stop_requested(&mut halt) => false,
        _ = &mut task => true,
    };
    chat.set_client(None);
    chat.connected.store(false, Ordering::Relaxed);
    // The outcomes of the messages the close flushes (sent, or failed as closed) are
    // delivered before the task ends, and the session's queue ends after that.
    if !task_over {
        let closing = async {
            if let Err(error) = client.close(CLOSE_WITHIN).await {
                debug!(%error, "closing the chat client");
            }
            let _ = (&mut task).await;
        };
        if tokio::time::timeout(CLOSE_WITHIN + Duration::from_secs(6), closing)
            .await
            .is_err()
        {
            warn!("the chat client did not stop in time");
            task.abort();
        }
    }
    chat.connected.store(false, Ordering::Relaxed);
}
