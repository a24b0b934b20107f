//! The send queue between the app and the connection, bounded by the media time it holds.
//!
//! A live stream cares about how far behind real time the viewer falls, not about a
//! message count: the queue admits messages while the span between its oldest and
//! newest timestamps stays under a limit, and makes the app wait (back-pressure)
//! otherwise. A later drop policy (skip to the next keyframe) and reconnects plug in
//! here: the queue keeps whole messages with their kind and timestamps.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use super::packetizer::MediaMessage;

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueClosed {
    /// The app finished the stream.
    Finished,
    /// The connection failed; the reason is in the text.
    Failed(String),
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<MediaMessage>,
    bytes: usize,
    closed: Option<QueueClosed>,
}

/// A multi-producer, single-consumer queue of media messages bounded in time and bytes.
#[derive(Debug)]
pub struct MediaQueue {
    inner: Mutex<Inner>,
    max_span_ms: u32,
    max_bytes: usize,
    space: Notify,
    data: Notify,
}

impl MediaQueue {
    /// A queue holding at most `max_span` of media and `max_bytes` of payload.
    pub fn new(max_span: Duration, max_bytes: usize) -> Self {
        MediaQueue {
            inner: Mutex::new(Inner::default()),
            max_span_ms: max_span.as_millis().min(u128::from(u32::MAX >> 1)) as u32,
            max_bytes,
            space: Notify::new(),
            data: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_room(&self, inner: &Inner, message: &MediaMessage) -> bool {
        let Some(oldest) = inner.items.front() else {
            return true; // one message always fits
        };
        let span = message.timestamp.wrapping_sub(oldest.timestamp);
        // A span "over 2^31" means the new message is older than the oldest: no growth.
        let span_ok = span <= self.max_span_ms || span >= 0x8000_0000;
        span_ok && inner.bytes + message.len() <= self.max_bytes
    }

    /// Queues messages in order, waiting while the queue is full.
    pub async fn push(&self, messages: Vec<MediaMessage>) -> Result<(), QueueClosed> {
        for message in messages {
            loop {
                let notified = self.space.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let mut inner = self.lock();
                    if let Some(closed) = &inner.closed {
                        return Err(closed.clone());
                    }
                    if self.has_room(&inner, &message) {
                        inner.bytes += message.len();
                        inner.items.push_back(message);
                        drop(inner);
                        self.data.notify_one();
                        break;
                    }
                }
                notified.await;
            }
        }
        Ok(())
    }

    /// Takes queued messages up to about `max_bytes` (at least one if any are queued).
    pub fn pop_batch(&self, out: &mut Vec<MediaMessage>, max_bytes: usize) {
        let mut inner = self.lock();
        let mut taken = 0;
        while let Some(front) = inner.items.front() {
            if taken > 0 && taken + front.len() > max_bytes {
                break;
            }
            taken += front.len();
            inner.bytes -= front.len();
            if let Some(message) = inner.items.pop_front() {
                out.push(message);
            }
        }
        drop(inner);
        if taken > 0 {
            self.space.notify_waiters();
        }
    }

    /// Waits until a message is queued or the queue is closed.
    pub async fn ready(&self) {
        loop {
            let notified = self.data.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let inner = self.lock();
                if !inner.items.is_empty() || inner.closed.is_some() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Closes the queue: producers get `reason`; queued messages can still be taken.
    pub fn close(&self, reason: QueueClosed) {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.closed = Some(reason);
        }
        drop(inner);
        self.space.notify_waiters();
        self.data.notify_one();
    }

    /// Whether the queue is closed and empty.
    pub fn is_drained(&self) -> bool {
        let inner = self.lock();
        inner.closed.is_some() && inner.items.is_empty()
    }

    /// Media time between the oldest and newest queued message.
    pub fn queued_span(&self) -> Duration {
        let inner = self.lock();
        match (inner.items.front(), inner.items.back()) {
            (Some(first), Some(last)) => {
                let span = last.timestamp.wrapping_sub(first.timestamp);
                Duration::from_millis(u64::from(if span < 0x8000_0000 { span } else { 0 }))
            }
            _ => Duration::ZERO,
        }
    }

    /// Payload bytes queued.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::packetizer::MessageKind;
    use bytes::Bytes;
    use std::sync::Arc;

    fn msg(ts: u32, len: usize) -> MediaMessage {
        MediaMessage {
            kind: MessageKind::Video,
            timestamp: ts,
            header: Bytes::new(),
            body: Bytes::from(vec![0; len]),
            is_frame: true,
        }
    }

    #[tokio::test]
    async fn admits_up_to_the_time_span_then_applies_back_pressure() {
        let queue = Arc::new(MediaQueue::new(Duration::from_millis(100), 1 << 20));
        queue
            .push(vec![msg(0, 10), msg(50, 10), msg(100, 10)])
            .await
            .unwrap();
        assert_eq!(queue.queued_span(), Duration::from_millis(100));
        let pusher = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.push(vec![msg(101, 10)]).await })
        };
        tokio::task::yield_now().await;
        assert!(!pusher.is_finished(), "a message past the span must wait");
        let mut out = Vec::new();
        queue.pop_batch(&mut out, 10);
        assert_eq!(out.len(), 1, "a batch takes at least one message");
        pusher.await.unwrap().unwrap();
        assert_eq!(queue.queued_span(), Duration::from_millis(51));
    }

    #[tokio::test]
    async fn bounded_in_bytes_too() {
        let queue = MediaQueue::new(Duration::from_secs(10), 25);
        queue.push(vec![msg(0, 20)]).await.unwrap();
        let blocked = tokio::time::timeout(Duration::from_millis(20), queue.push(vec![msg(1, 10)]));
        assert!(blocked.await.is_err());
        assert_eq!(queue.queued_bytes(), 20);
    }

    #[tokio::test]
    async fn close_wakes_waiting_producers_and_keeps_queued_messages() {
        let queue = Arc::new(MediaQueue::new(Duration::from_millis(10), 1 << 20));
        queue.push(vec![msg(0, 1)]).await.unwrap();
        let pusher = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.push(vec![msg(500, 1)]).await })
        };
        tokio::task::yield_now().await;
        queue.close(QueueClosed::Failed("reset".into()));
        assert_eq!(
            pusher.await.unwrap(),
            Err(QueueClosed::Failed("reset".into()))
        );
        queue.ready().await;
        let mut out = Vec::new();
        queue.pop_batch(&mut out, 1 << 20);
        assert_eq!(out.len(), 1);
        assert!(queue.is_drained());
    }
}
