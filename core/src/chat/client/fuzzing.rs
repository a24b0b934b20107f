//! For the fuzz targets (`fuzz/`), not part of the API: the client's protocol
//! ([`super::connection::Connection`]) driven frame by frame, with no socket and a
//! clock of the caller's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

use super::connection::{Connection, End, Incoming, Outgoing};
use super::cursor::JoinOutcome;
use super::outbox::OutgoingMessage;
use super::{ChatConfig, ChatEvent, Request, Responder};
use crate::chat::protocol::CommandFrame;
use crate::net::{Backoff, BackoffConfig};

/// A client that joined rooms `a` and `b` and queued messages for `a`, `b`, `a` and `z`
/// (never joined), on a link whose `connect` (command 1) was written; the joins are
/// commands 2 and 3 once `connect` is answered.
#[derive(Debug)]
pub struct DetachedClient {
    conn: Connection,
    now: Instant,
    backoff: Backoff,
    /// The last `(epoch, seq)` handed to the app, per room.
    delivered: HashMap<String, (String, u64)>,
}

impl Default for DetachedClient {
    fn default() -> Self {
        Self::new()
    }
}

impl DetachedClient {
    /// The client described above.
    pub fn new() -> Self {
        let now = Instant::now();
        let mut conn = Connection::new(ChatConfig::default(), now);
        let permits = Arc::new(Semaphore::new(8));
        for room in ["a", "b"] {
            let (reply, _) = oneshot::channel();
            conn.request(
                now,
                Request::Join {
                    room: room.into(),
                    reply,
                },
            );
        }
        for (n, (room, text)) in [("a", "hi"), ("b", "yo"), ("a", "again"), ("z", "lost")]
            .into_iter()
            .enumerate()
        {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                continue;
            };
            let message = OutgoingMessage {
                room: room.into(),
                client_msg_id: format!("m{n}"),
                text: text.into(),
            };
            let responder = Responder {
                reply: None,
                _permit: permit,
            };
            conn.request(now, Request::Enqueue { message, responder });
        }
        let mut client = DetachedClient {
            conn,
            now,
            backoff: Backoff::new(BackoffConfig::default()),
            delivered: HashMap::new(),
        };
        client.open();
        client
    }

    fn open(&mut self) {
        let deadline = self.now + Duration::from_secs(10);
        self.conn.open_link(self.now, "token".into(), deadline);
        self.check_output();
    }

    /// One text frame from the server, `after` the previous input; false once the
    /// client has stopped for good. Panics if the client breaks a rule: a command it
    /// writes that is not a command, a message handed to the app twice or out of order
    /// within an epoch (a join whose outcome is `EpochChanged` starts the count again),
    /// an empty gap.
    pub fn frame(&mut self, text: &str, after: Duration) -> bool {
        self.now += after;
        self.conn.handle_timeout(self.now);
        self.conn.handle_frame(self.now, Incoming::Text(text));
        self.check_output();
        match self.conn.poll_end() {
            None => true,
            Some(End::Reconnect { retry_after, .. }) => {
                // The driver waits offline for the delay, then opens a new link.
                self.now += self.backoff.next_delay(0.5, retry_after);
                self.conn.handle_timeout(self.now);
                self.open();
                true
            }
            Some(End::Fatal(error)) => {
                self.conn.finish(Some(error));
                self.check_output();
                false
            }
            Some(End::Closed) => {
                self.conn.finish(None);
                self.check_output();
                false
            }
        }
    }

    fn check_output(&mut self) {
        while let Some(out) = self.conn.poll_transmit() {
            if let Outgoing::Text(text) = out {
                let parsed = serde_json::from_str::<CommandFrame>(&text);
                assert!(parsed.is_ok(), "the client wrote {text:?}");
            }
        }
        while let Some(event) = self.conn.poll_event() {
            match event {
                ChatEvent::Gap { missing, .. } => {
                    assert!(missing.start() <= missing.end(), "an empty gap");
                }
                // Counting starts again for the app too (documented on the outcome).
                ChatEvent::Joined {
                    room,
                    outcome: JoinOutcome::EpochChanged,
                    ..
                } => {
                    self.delivered.remove(&room);
                }
                ChatEvent::Message(message) => {
                    let last = self.delivered.get(&message.room);
                    if let Some((epoch, seq)) = last
                        && *epoch == message.epoch
                    {
                        assert!(message.seq > *seq, "{message:?} after seq {seq}");
                    }
                    self.delivered
                        .insert(message.room.clone(), (message.epoch, message.seq));
                }
                _ => {}
            }
        }
    }
}
