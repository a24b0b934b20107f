//! A connection's outgoing frame queue, shared by the rooms that push into it.
//!
//! Rooms never wait on a connection: a push that finds the queue full marks the
//! connection as too slow, and the connection closes with 4005 so that the client
//! reconnects and recovers what it missed from the room's history.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use crate::chat::protocol::{ErrorBody, Reply, ServerFrame};

/// The sending half of a connection's queue.
#[derive(Debug, Clone)]
pub struct Outbound {
    tx: mpsc::Sender<Utf8Bytes>,
    overflow: Arc<Overflow>,
}

/// Set once when a push found the queue full.
#[derive(Debug, Default)]
pub struct Overflow {
    flag: AtomicBool,
    notify: Notify,
}

impl Overflow {
    /// Waits until the queue overflowed.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.flag.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl Outbound {
    /// A queue holding `capacity` frames, with its receiving half.
    pub fn new(capacity: usize) -> (Outbound, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Outbound {
                tx,
                overflow: Arc::default(),
            },
            rx,
        )
    }

    /// The overflow signal, for the connection to wait on.
    pub fn overflow(&self) -> Arc<Overflow> {
        self.overflow.clone()
    }

    /// Queues an already serialized frame; false (and the overflow signal) when full.
    pub fn push_text(&self, text: Utf8Bytes) -> bool {
        match self.tx.try_send(text) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.flag.store(true, Ordering::Release);
                self.overflow.notify.notify_waiters();
                false
            }
            // The connection is gone; its rooms drop it when it cleans up.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Serializes and queues a frame.
    pub fn push(&self, frame: &ServerFrame) -> bool {
        self.push_text(serialize(frame))
    }

    /// Queues a successful reply.
    pub fn reply_ok(&self, id: u64, result: impl Serialize) -> bool {
        let result = serde_json::to_value(result).ok();
        self.push(&ServerFrame::Reply(Reply {
            id,
            ok: true,
            result,
            error: None,
        }))
    }

    /// Queues a failed reply.
    pub fn reply_err(&self, id: u64, error: ErrorBody) -> bool {
        self.push(&ServerFrame::Reply(Reply {
            id,
            ok: false,
            result: None,
            error: Some(error),
        }))
    }
}

/// One frame as WebSocket text, serialized once however many members receive it.
pub fn serialize(frame: &ServerFrame) -> Utf8Bytes {
    // Serializing these plain structs cannot fail; an empty object is never sent.
    Utf8Bytes::from(serde_json::to_string(frame).unwrap_or_else(|_| String::from("{}")))
}
