//! The chat part of a session: one [`ChatClient`] in the stream's room, its events
//! turned into [`SessionEvent`]s. Never fatal for the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

use super::{SessionChat, SessionChatStats, SessionError, SessionEvent, Shared};
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

/// A chat event as a session event. Chat outcomes the app is owed (messages, sent,
/// send failed, deleted, kicked) wait for room in the app's buffer — until the session
/// stops; the rest is dropped and counted when the buffer is full.
async fn forward(
    shared: &Shared,
    chat: &ChatShared,
    event: ChatEvent,
    halt: &mut watch::Receiver<bool>,
) {
    let owed = match event {
        ChatEvent::Connected { reconnect, .. } => {
            chat.connected.store(true, Ordering::Relaxed);
            chat.connections.fetch_add(1, Ordering::Relaxed);
            shared.emit(SessionEvent::ChatConnected { reconnect });
            return;
        }
        ChatEvent::Disconnected { reason, retry_in } => {
            chat.connected.store(false, Ordering::Relaxed);
            shared.emit(SessionEvent::ChatDisconnected { reason, retry_in });
            return;
        }
        ChatEvent::Joined { room, viewers, .. } => {
            chat.set_viewers(viewers);
            shared.emit(SessionEvent::ChatJoined { room, viewers });
            return;
        }
        ChatEvent::Viewers { count, .. } => {
            chat.set_viewers(count);
            shared.emit(SessionEvent::Viewers(count));
            return;
        }
        ChatEvent::Failed(error) => {
            chat.connected.store(false, Ordering::Relaxed);
            shared.emit(SessionEvent::Error(SessionError::chat("chat stopped")(
                error,
            )));
            return;
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
        _ => return,
    };
    tokio::select! {
        // Room in the buffer wins over a stop: a stopping session still hands over what
        // fits.
        biased;
        sent = shared.events.send(owed) => {
            if sent.is_err() {
                debug!("the app dropped its events");
            }
        }
        _ = super::stop_requested(halt) => debug!("stopping with a chat event unread"),
    }
}

/// Starts the chat client, joins the room and forwards events until
/// the session's media part has ended.
pub(crate) async fn run(shared: Arc<Shared>, config: SessionChat, mut halt: watch::Receiver<bool>) {
    let Some(chat) = shared.chat.as_ref() else {
        return;
    };
    // The client retries every connection itself, the first one included: its
    // failures arrive as `Disconnected` events, a final refusal as `Failed`.
    let token = TokenSource::fixed(config.token.clone());
    let (client, mut events) = match ChatClient::start(&config.url, token, config.config.clone()) {
        Ok(started) => started,
        Err(error) => {
            warn!(%error, "chat cannot start");
            shared.emit(SessionEvent::Error(SessionError::chat(
                "connecting to chat",
            )(error)));
            return;
        }
    };
    // The join's own `Joined` event arrives through `events`.
    let join = {
        let client = client.clone();
        let room = config.room.clone();
        async move { client.join(&room).await }
    };
    tokio::pin!(join);
    let mut joining = true;
    loop {
        tokio::select! {
            result = &mut join, if joining => {
                joining = false;
                match result {
                    // Only now can `send_chat` queue: the client refuses messages for a
                    // room it was not asked to join.
                    Ok(_) => chat.set_client(Some(client.clone())),
                    Err(error) => shared.emit(SessionEvent::Error(SessionError::chat(
                        "joining the room",
                    )(error))),
                }
            }
            event = events.next() => match event {
                Some(event) => forward(&shared, chat, event, &mut halt).await,
                None => break,
            },
            _ = super::stop_requested(&mut halt) => break,
        }
    }
    chat.set_client(None);
    chat.connected.store(false, Ordering::Relaxed);
    // The outcomes of the messages the close flushes (sent, or failed as closed) are
    // forwarded while it runs, and the rest once the client has stopped.
    let drain = async {
        while let Some(event) = events.next().await {
            forward(&shared, chat, event, &mut halt).await;
        }
    };
    let closing = async { tokio::join!(client.close(CLOSE_WITHIN), drain).0 };
    match tokio::time::timeout(CLOSE_WITHIN + Duration::from_secs(6), closing).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => debug!(%error, "closing the chat client"),
        Err(_) => warn!("the chat client did not stop in time"),
    }
    chat.connected.store(false, Ordering::Relaxed);
}
