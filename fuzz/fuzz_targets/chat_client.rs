//! Chat frames on the client: a server's text frames decoded by `chat::protocol` and
//! applied to the client's state as its connection task (`chat/client/driver.rs`)
//! applies them: the connect reply, join results into the rooms' cursors, send
//! acknowledgements and refusals into the outbox, pushed messages through the cursors
//! (duplicates, gaps), kicks, disconnects with the backoff and the re-joins after them.
//!
//! Input: lines, one server frame each. The client joined rooms `a` and `b` (commands 2
//! and 3) and queued messages for `a`, `b` and `z`; a send gets the next command id
//! (the first is 4) when its room is joined and nothing is in flight.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use streamhub::chat::client::BackoffConfig;
use streamhub::chat::client::backoff::Backoff;
use streamhub::chat::client::cursor::{Arrival, RoomCursor};
use streamhub::chat::client::outbox::{Outbox, OutgoingMessage};
use streamhub::chat::protocol::{
    ConnectResult, ErrorBody, ErrorCode, JoinResult, Position, Reply, SendResult, ServerFrame,
};
use tokio::time::Instant;

enum Pending {
    Join(String),
    Send,
}

struct Room {
    cursor: RoomCursor,
    joined: bool,
}

struct Client {
    connected: bool,
    rooms: BTreeMap<String, Room>,
    outbox: Outbox<u32>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    backoff: Backoff,
    now: Instant,
}

/// Why the client stops reading this connection.
enum End {
    Reconnect(Option<Duration>),
    Fatal,
}

impl Client {
    fn new() -> Self {
        let mut client = Client {
            connected: false,
            rooms: BTreeMap::new(),
            outbox: Outbox::new(8),
            pending: HashMap::new(),
            next_id: 2,
            backoff: Backoff::new(BackoffConfig::default()),
            now: Instant::now(),
        };
        for room in ["a", "b"] {
            let room = room.to_string();
            client.rooms.insert(
                room.clone(),
                Room {
                    cursor: RoomCursor::new(),
                    joined: false,
                },
            );
        }
        for (tag, (room, text)) in [("a", "hi"), ("b", "yo"), ("a", "again"), ("z", "lost")]
            .into_iter()
            .enumerate()
        {
            let message = OutgoingMessage {
                room: room.into(),
                client_msg_id: format!("m{tag}"),
                text: text.into(),
            };
            client
                .outbox
                .push(message, tag as u32)
                .expect("room in the outbox");
        }
        client.rejoin();
        client
    }

    /// A new connection: `connect` is command 1, then every room is joined again with
    /// its cursor.
    fn rejoin(&mut self) {
        self.connected = false;
        self.outbox.connection_lost();
        self.pending.clear();
        self.next_id = 2;
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            let entry = self.rooms.get_mut(&room).expect("listed");
            entry.joined = false;
            let _since: Option<Position> = entry.cursor.since();
            self.pending.insert(self.next_id, Pending::Join(room));
            self.next_id += 1;
        }
    }

    fn forget_room(&mut self, room: &str) {
        self.rooms.remove(room);
        for (message, _) in self.outbox.drain_room(room) {
            assert_eq!(message.room, room);
        }
    }

    fn frame(&mut self, frame: ServerFrame) -> Result<(), End> {
        if !self.connected {
            // Until `connect` is answered, only its reply counts.
            return match frame {
                ServerFrame::Reply(reply) if reply.id == 1 => self.connect_reply(reply),
                _ => Ok(()),
            };
        }
        match frame {
            ServerFrame::Reply(reply) => {
                let Some(pending) = self.pending.remove(&reply.id) else {
                    return Ok(());
                };
                let outcome = if reply.ok {
                    Ok(reply.result.unwrap_or(serde_json::Value::Null))
                } else {
                    Err(reply
                        .error
                        .unwrap_or_else(|| ErrorBody::new(ErrorCode::Internal, "no error")))
                };
                match pending {
                    Pending::Join(room) => self.join_reply(room, outcome)?,
                    Pending::Send => self.send_reply(reply.id, outcome)?,
                }
            }
            ServerFrame::Message(message) => {
                let Some(entry) = self.rooms.get_mut(&message.room) else {
                    return Ok(());
                };
                let arrival = entry.cursor.on_message(&message.epoch, message.seq);
                if let Arrival::Gap(missing) = &arrival {
                    assert!(missing.start() <= missing.end(), "an empty gap");
                    assert!(*missing.end() < message.seq);
                }
                if arrival != Arrival::Duplicate {
                    let since = entry
                        .cursor
                        .since()
                        .expect("a delivered message moves the cursor");
                    assert_eq!(
                        (since.epoch.as_str(), since.seq),
                        (message.epoch.as_str(), message.seq)
                    );
                }
            }
            ServerFrame::Kicked { room, .. } => self.forget_room(&room),
            ServerFrame::Disconnect(goodbye) => {
                return Err(if goodbye.reconnect {
                    End::Reconnect(goodbye.retry_after_ms.map(Duration::from_millis))
                } else {
                    End::Fatal
                });
            }
            ServerFrame::Deleted { .. }
            | ServerFrame::Viewers { .. }
            | ServerFrame::Member { .. }
            | ServerFrame::Typing { .. }
            | ServerFrame::RoomState { .. }
            | ServerFrame::TokenExpiring { .. }
            | ServerFrame::Error { .. }
            | ServerFrame::Unknown => {}
        }
        Ok(())
    }

    fn connect_reply(&mut self, reply: Reply) -> Result<(), End> {
        if !reply.ok {
            let error = reply
                .error
                .unwrap_or_else(|| ErrorBody::new(ErrorCode::Internal, "no error"));
            return Err(match error.code {
                ErrorCode::TokenExpired => End::Reconnect(None),
                _ if error.temporary => {
                    End::Reconnect(error.retry_after_ms.map(Duration::from_millis))
                }
                _ => End::Fatal,
            });
        }
        reply
            .result
            .and_then(|r| serde_json::from_value::<ConnectResult>(r).ok())
            .ok_or(End::Fatal)?;
        self.connected = true;
        Ok(())
    }

    fn join_reply(
        &mut self,
        room: String,
        outcome: Result<serde_json::Value, ErrorBody>,
    ) -> Result<(), End> {
        let result = match outcome {
            Ok(value) => serde_json::from_value::<JoinResult>(value).map_err(|_| End::Fatal)?,
            Err(error) if error.code == ErrorCode::TokenExpired => {
                return Err(End::Reconnect(None));
            }
            Err(error) if error.temporary => {
                return Err(End::Reconnect(
                    error.retry_after_ms.map(Duration::from_millis),
                ));
            }
            Err(_) => {
                self.forget_room(&room);
                return Ok(());
            }
        };
        let Some(entry) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        let _ = entry.cursor.on_join(&result);
        entry.joined = true;
        Ok(())
    }

    fn send_reply(
        &mut self,
        id: u64,
        outcome: Result<serde_json::Value, ErrorBody>,
    ) -> Result<(), End> {
        match outcome {
            Ok(value) => {
                let _: SendResult = serde_json::from_value(value).map_err(|_| End::Fatal)?;
                let _ = self.outbox.on_ack(id);
            }
            Err(error) if error.code == ErrorCode::TokenExpired => {
                return Err(End::Reconnect(None));
            }
            Err(error) => {
                let _ = self.outbox.on_refusal(id, &error, self.now);
            }
        }
        Ok(())
    }

    /// Puts the head of the outbox on the wire when its room is joined.
    fn pump(&mut self) {
        let rooms = &self.rooms;
        if self
            .outbox
            .next_to_send(self.now, |room| rooms.get(room).is_some_and(|r| r.joined))
            .is_some()
        {
            let id = self.next_id;
            self.next_id += 1;
            self.pending.insert(id, Pending::Send);
            self.outbox.mark_sent(id);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut client = Client::new();
    for line in data.split(|&b| b == b'\n') {
        client.now += Duration::from_millis(50);
        let Ok(frame) = serde_json::from_slice::<ServerFrame>(line) else {
            continue;
        };
        match client.frame(frame) {
            Ok(()) => client.pump(),
            Err(End::Fatal) => return,
            Err(End::Reconnect(retry_after)) => {
                let delay = client.backoff.next_delay(0.5, retry_after);
                // The driver waits offline until then.
                let _until = client.now + delay;
                client.rejoin();
            }
        }
        let _ = client.outbox.held_until();
    }
});
