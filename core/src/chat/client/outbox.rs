//! The offline send queue: messages the app sent that the server has not acknowledged.
//!
//! One message is on the wire at a time, so a user's messages are published in the
//! order they were sent even when the server refuses one for a while (rate limit, slow
//! mode). A message leaves the queue only on an acknowledgement or a final refusal;
//! after a reconnect the head is sent again with the same `client_msg_id`, and the
//! server's deduplication makes sure it is published at most once.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::chat::protocol::ErrorBody;

/// A message waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The room.
    pub room: String,
    /// The idempotency key, the same on every attempt.
    pub client_msg_id: String,
    /// The text.
    pub text: String,
}

struct Entry<T> {
    message: OutgoingMessage,
    tag: T,
    attempts: u32,
}

/// What a refusal did to the head of the queue.
#[derive(Debug)]
pub enum Refusal<T> {
    /// A final refusal: the message left the queue.
    Dropped(OutgoingMessage, T),
    /// A temporary one: the head waits until then and is sent again.
    Held(Instant),
}

/// The bounded queue; `T` is whatever the driver keeps with each message (a responder).
pub struct Outbox<T> {
    queue: VecDeque<Entry<T>>,
    capacity: usize,
    in_flight: Option<u64>,
    hold_until: Option<Instant>,
}

/// How long the head waits after a temporary refusal that gave no `retry_after_ms`.
const DEFAULT_HOLD: Duration = Duration::from_secs(1);

impl<T> Outbox<T> {
    /// An empty queue holding at most `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            in_flight: None,
            hold_until: None,
        }
    }

    /// Messages queued (including the one on the wire).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues a message; gives it back when the queue is full.
    pub fn push(&mut self, message: OutgoingMessage, tag: T) -> Result<(), (OutgoingMessage, T)> {
        if self.queue.len() >= self.capacity {
            return Err((message, tag));
        }
        self.queue.push_back(Entry {
            message,
            tag,
            attempts: 0,
        });
        Ok(())
    }

    /// When the held head may be sent again, if it is held.
    pub fn held_until(&self) -> Option<Instant> {
        self.hold_until
    }

    /// The message to put on the wire now, if any: none is in flight, the head is not
    /// held, and its room is ready (`room_ready`).
    pub fn next_to_send(
        &mut self,
        now: Instant,
        room_ready: impl Fn(&str) -> bool,
    ) -> Option<&OutgoingMessage> {
        if self.in_flight.is_some() {
            return None;
        }
        if let Some(until) = self.hold_until {
            if now < until {
                return None;
            }
            self.hold_until = None;
        }
        let head = self.queue.front()?;
        room_ready(&head.message.room).then_some(&head.message)
    }

    /// Records that the head went out as command `command_id`.
    pub fn mark_sent(&mut self, command_id: u64) {
        if let Some(head) = self.queue.front_mut() {
            head.attempts += 1;
            self.in_flight = Some(command_id);
        }
    }

    /// Whether `command_id` is the send on the wire.
    pub fn is_in_flight(&self, command_id: u64) -> bool {
        self.in_flight == Some(command_id)
    }

    /// The head was acknowledged: it leaves the queue with its attempt count.
    pub fn on_ack(&mut self, command_id: u64) -> Option<(OutgoingMessage, T, u32)> {
        if !self.is_in_flight(command_id) {
            return None;
        }
        self.in_flight = None;
        self.queue
            .pop_front()
            .map(|entry| (entry.message, entry.tag, entry.attempts))
    }

    /// The head was refused.
    pub fn on_refusal(
        &mut self,
        command_id: u64,
        error: &ErrorBody,
        now: Instant,
    ) -> Option<Refusal<T>> {
        if !self.is_in_flight(command_id) {
            return None;
        }
        self.in_flight = None;
        if error.temporary {
            let wait = error
                .retry_after_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_HOLD);
            let until = now + wait;
            self.hold_until = Some(until);
            return Some(Refusal::Held(until));
        }
        self.queue
            .pop_front()
            .map(|entry| Refusal::Dropped(entry.message, entry.tag))
    }

    /// The connection dropped: whatever was on the wire will be sent again.
    pub fn connection_lost(&mut self) {
        self.in_flight = None;
    }

    /// Removes every message for `room` (its join was refused for good).
    pub fn drain_room(&mut self, room: &str) -> Vec<(OutgoingMessage, T)> {
        let mut removed = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for (index, entry) in self.queue.drain(..).enumerate() {
            if entry.message.room == room {
                if index == 0 {
                    self.in_flight = None;
                }
                removed.push((entry.message, entry.tag));
            } else {
                kept.push_back(entry);
            }
        }
        self.queue = kept;
        removed
    }

    /// Removes everything (the client is closing for good).
    pub fn drain_all(&mut self) -> Vec<(OutgoingMessage, T)> {
        self.in_flight = None;
        self.hold_until = None;
        self.queue
            .drain(..)
            .map(|entry| (entry.message, entry.tag))
            .collect()
    }
}

impl<T> std::fmt::Debug for Outbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("queued", &self.queue.len())
            .field("capacity", &self.capacity)
            .field("in_flight", &self.in_flight)
            .field("hold_until", &self.hold_until)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::ErrorCode;

    fn message(room: &str, id: &str) -> OutgoingMessage {
        OutgoingMessage {
            room: room.into(),
            client_msg_id: id.into(),
            text: format!("text {id}"),
        }
    }

    fn ready(_: &str) -> bool {
        true
    }

    #[test]
    fn one_message_on_the_wire_at_a_time_in_order() {
        let now = Instant::now();
        let mut outbox = Outbox::new(10);
        for id in ["a", "b", "c"] {
            outbox.push(message("r", id), ()).unwrap();
        }
        assert_eq!(outbox.next_to_send(now, ready).unwrap().client_msg_id, "a");
        outbox.mark_sent(1);
        assert!(outbox.next_to_send(now, ready).is_none());
        assert!(outbox.on_ack(2).is_none(), "a stale reply is ignored");
        let (acked, (), attempts) = outbox.on_ack(1).unwrap();
        assert_eq!((acked.client_msg_id.as_str(), attempts), ("a", 1));
        assert_eq!(outbox.next_to_send(now, ready).unwrap().client_msg_id, "b");
    }

    #[test]
    fn a_lost_connection_resends_the_head_with_the_same_id() {
        let now = Instant::now();
        let mut outbox = Outbox::new(10);
        outbox.push(message("r", "a"), ()).unwrap();
        outbox.next_to_send(now, ready);
        outbox.mark_sent(1);
        outbox.connection_lost();
        assert!(
            outbox.on_ack(1).is_none(),
            "the old connection's reply cannot arrive"
        );
        assert_eq!(outbox.next_to_send(now, ready).unwrap().client_msg_id, "a");
        outbox.mark_sent(5);
        assert_eq!(outbox.on_ack(5).unwrap().2, 2);
    }

    #[test]
    fn a_rate_limit_holds_the_queue_for_retry_after() {
        let now = Instant::now();
        let mut outbox = Outbox::new(10);
        outbox.push(message("r", "a"), ()).unwrap();
        outbox.push(message("r", "b"), ()).unwrap();
        outbox.next_to_send(now, ready);
        outbox.mark_sent(1);
        let limited = ErrorBody::new(ErrorCode::RateLimited, "slow down").retry_after(1800);
        let until = match outbox.on_refusal(1, &limited, now).unwrap() {
            Refusal::Held(until) => until,
            Refusal::Dropped(..) => panic!("a rate limit is temporary"),
        };
        assert_eq!(until - now, Duration::from_millis(1800));
        assert!(
            outbox
                .next_to_send(now + Duration::from_millis(1799), ready)
                .is_none()
        );
        let head = outbox.next_to_send(until, ready).unwrap();
        assert_eq!(
            head.client_msg_id, "a",
            "the refused message keeps its place"
        );
    }

    #[test]
    fn a_final_refusal_drops_only_the_head() {
        let now = Instant::now();
        let mut outbox = Outbox::new(10);
        outbox.push(message("r", "a"), 1).unwrap();
        outbox.push(message("r", "b"), 2).unwrap();
        outbox.next_to_send(now, ready);
        outbox.mark_sent(1);
        let too_long = ErrorBody::new(ErrorCode::MessageTooLong, "over 500");
        match outbox.on_refusal(1, &too_long, now).unwrap() {
            Refusal::Dropped(m, tag) => assert_eq!((m.client_msg_id.as_str(), tag), ("a", 1)),
            Refusal::Held(_) => panic!("message_too_long is final"),
        }
        assert_eq!(outbox.next_to_send(now, ready).unwrap().client_msg_id, "b");
    }

    #[test]
    fn bounded_and_waits_for_its_room() {
        let now = Instant::now();
        let mut outbox = Outbox::new(2);
        outbox.push(message("x", "a"), ()).unwrap();
        outbox.push(message("y", "b"), ()).unwrap();
        assert!(outbox.push(message("x", "c"), ()).is_err());
        assert!(outbox.next_to_send(now, |room| room == "y").is_none());
        let removed = outbox.drain_room("x");
        assert_eq!(removed.len(), 1);
        assert_eq!(
            outbox
                .next_to_send(now, |room| room == "y")
                .unwrap()
                .client_msg_id,
            "b"
        );
    }
}
