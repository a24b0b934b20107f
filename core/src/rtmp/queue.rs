//! The send queue between the app and the connection, bounded by the media time it holds.
//!
//! A live stream cares about how far behind real time the viewer falls, not about a
//! message count. With back-pressure (files), the queue admits messages while the span
//! between its oldest and newest timestamps stays under a limit and makes the app wait
//! otherwise. Live ([`CongestionPolicy::live`]), it never makes the app wait: it measures
//! the media waiting to be delivered — queued, written to the socket but not yet
//! acknowledged by the server (the driver reports both) — and drops video by the
//! [`Dropper`]'s ladder; audio and configuration are never dropped.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use super::congestion::{CongestionPolicy, DropCounts, DropReason, Dropper, MessageClass, Verdict};
use super::packetizer::{MediaMessage, MessageKind};

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
    dropper: Dropper,
    drops: DropCounts,
    /// Written to the socket, not yet acknowledged: (end offset in written bytes, RTMP
    /// timestamp), oldest first.
    in_flight: VecDeque<(u64, u32)>,
    written: u64,
    delivered: u64,
    /// Timestamp of the newest message handed in.
    newest: Option<u32>,
    peak_waiting_ms: u32,
    audio_bytes: u64,
    /// What the link carries when it has a backlog (bits per second), if measured.
    capacity_bps: Option<u64>,
}

/// `later - earlier` in RTMP milliseconds; 0 when `later` is older (wrap-aware).
fn span(later: u32, earlier: u32) -> u32 {
    let span = later.wrapping_sub(earlier);
    if span < 0x8000_0000 { span } else { 0 }
}

impl Inner {
    /// Media waiting to be delivered, up to `now` (an RTMP timestamp): the span from
    /// the oldest message not acknowledged, or, when the link's capacity is known and
    /// that is longer, the time the link needs to deliver every byte pending (a frame
    /// admitted now waits that long: the span alone lags behind a burst of large
    /// frames). `extra` bytes about to be queued count as pending.
    fn waiting_ms(&self, now: u32, extra: usize) -> u32 {
        let oldest = self
            .in_flight
            .front()
            .map(|(_, ts)| *ts)
            .or_else(|| self.items.front().map(|m| m.timestamp));
        let by_span = oldest.map_or(0, |oldest| span(now, oldest));
        let pending = (self.bytes + extra) as u64 + self.written.saturating_sub(self.delivered);
        let by_drain = self.capacity_bps.filter(|c| *c > 0).map_or(0, |capacity| {
            u32::try_from(pending * 8 * 1000 / capacity).unwrap_or(u32::MAX)
        });
        by_span.max(by_drain)
    }

    /// Queues `message` (the caller decided it goes out).
    fn admit(&mut self, message: MediaMessage) {
        if message.kind == MessageKind::Audio && message.is_frame {
            self.audio_bytes += message.len() as u64;
        }
        self.bytes += message.len();
        self.items.push_back(message);
    }

    fn class(message: &MediaMessage) -> MessageClass {
        if message.kind != MessageKind::Video || !message.is_frame {
            MessageClass::Protected
        } else if message.keyframe {
            MessageClass::Keyframe
        } else if message.disposable {
            MessageClass::Disposable
        } else {
            MessageClass::Reference
        }
    }

    /// Removes the video frames still queued (not the configuration); returns how many.
    fn drop_queued_video(&mut self) -> u64 {
        let before = self.items.len();
        let mut freed = 0;
        self.items.retain(|m| {
            let video_frame = m.kind == MessageKind::Video && m.is_frame;
            if video_frame {
                freed += m.len();
            }
            !video_frame
        });
        self.bytes -= freed;
        (before - self.items.len()) as u64
    }
}

/// A multi-producer, single-consumer queue of media messages bounded in time and bytes.
#[derive(Debug)]
pub struct MediaQueue {
    inner: Mutex<Inner>,
    policy: CongestionPolicy,
    max_span_ms: u32,
    max_bytes: usize,
    space: Notify,
    data: Notify,
}

impl MediaQueue {
    #[cfg(test)]
    /// A back-pressure queue holding at most `max_span` of media and `max_bytes` of
    /// payload.
    pub fn new(max_span: Duration, max_bytes: usize) -> Self {
        Self::with_policy(max_span, max_bytes, CongestionPolicy::back_pressure())
    }

    /// A queue with a congestion policy: back-pressure bounded by `max_span` and
    /// `max_bytes`, or live (never waits, drops video by the policy's thresholds).
    pub fn with_policy(max_span: Duration, max_bytes: usize, policy: CongestionPolicy) -> Self {
        MediaQueue {
            inner: Mutex::new(Inner::default()),
            policy,
            max_span_ms: max_span.as_millis().min(u128::from(u32::MAX >> 1)) as u32,
            max_bytes,
            space: Notify::new(),
            data: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep going.
        crate::sync::lock(&self.inner)
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

    /// Live: queues the message or drops it by the policy; never waits.
    fn push_live(&self, message: MediaMessage) -> Result<(), QueueClosed> {
        let mut inner = self.lock();
        if let Some(closed) = &inner.closed {
            return Err(closed.clone());
        }
        inner.newest = Some(message.timestamp);
        // The message's own bytes count: a large keyframe admitted at the edge would
        // arrive its own transmission time later still.
        let waiting = inner.waiting_ms(message.timestamp, message.len());
        inner.peak_waiting_ms = inner.peak_waiting_ms.max(waiting);
        let class = Inner::class(&message);
        let over_bytes = inner.bytes + message.len() > self.max_bytes;
        let verdict = if over_bytes && class != MessageClass::Protected {
            inner.dropper.skip_to_keyframe();
            Verdict::DropQueuedVideo
        } else {
            inner
                .dropper
                .decide(&self.policy, class, u64::from(waiting))
        };
        if class == MessageClass::Keyframe || verdict == Verdict::DropQueuedVideo {
            tracing::trace!(
                ts = message.timestamp,
                ?class,
                waiting,
                ?verdict,
                bytes = message.len(),
                "video decision"
            );
        }
        match verdict {
            Verdict::Send => {
                inner.admit(message);
                drop(inner);
                self.data.notify_one();
            }
            Verdict::Drop(reason) => inner.drops.count(reason, 1),
            Verdict::DropQueuedVideo => {
                let removed = inner.drop_queued_video();
                inner.drops.count(DropReason::Gop, removed + 1);
            }
        }
        Ok(())
    }

    /// Queues messages in order: live, at once (dropping video by the policy);
    /// otherwise waiting while the queue is full.
    pub async fn push(&self, messages: Vec<MediaMessage>) -> Result<(), QueueClosed> {
        if self.policy.live {
            return messages.into_iter().try_for_each(|m| self.push_live(m));
        }
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
                        inner.newest = Some(message.timestamp);
                        inner.admit(message);
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

    /// Audio and video frames queued (not configuration or metadata).
    pub fn queued_frames(&self) -> u64 {
        self.lock().items.iter().filter(|m| m.is_frame).count() as u64
    }

    #[cfg(test)]
    /// Payload bytes queued.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The driver wrote a message with RTMP timestamp `timestamp` as `wire_bytes` bytes
    /// to the socket.
    pub fn written(&self, timestamp: u32, wire_bytes: usize) {
        let mut inner = self.lock();
        inner.written += wire_bytes as u64;
        let end = inner.written;
        inner.in_flight.push_back((end, timestamp));
    }

    /// The server has acknowledged `delivered` of the bytes written since the stream
    /// went live.
    pub fn delivered(&self, delivered: u64) {
        let mut inner = self.lock();
        inner.delivered = inner.delivered.max(delivered.min(inner.written));
        let upto = inner.delivered;
        while inner.in_flight.front().is_some_and(|(end, _)| *end <= upto) {
            inner.in_flight.pop_front();
        }
    }

    /// What the link carries while it has a backlog, as the driver measures it (`None`:
    /// not known).
    pub fn set_link_capacity(&self, bps: Option<u64>) {
        self.lock().capacity_bps = bps;
    }

    /// Bytes queued or written but not yet acknowledged.
    pub fn pending_bytes(&self) -> u64 {
        let inner = self.lock();
        inner.bytes as u64 + inner.written.saturating_sub(inner.delivered)
    }

    /// Media waiting to be delivered now (see the module docs).
    pub fn waiting(&self) -> Duration {
        let inner = self.lock();
        let now = inner.newest.unwrap_or(0);
        Duration::from_millis(u64::from(inner.waiting_ms(now, 0)))
    }

    /// The longest wait a message met on arrival.
    pub fn peak_waiting(&self) -> Duration {
        Duration::from_millis(u64::from(self.lock().peak_waiting_ms))
    }

    /// Video frames dropped so far.
    pub fn drops(&self) -> DropCounts {
        self.lock().drops
    }

    /// Audio payload bytes handed in so far.
    pub fn audio_bytes(&self) -> u64 {
        self.lock().audio_bytes
    }

    /// Bytes written to the socket so far (media messages, chunk headers included).
    pub fn written_bytes(&self) -> u64 {
        self.lock().written
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
            keyframe: false,
            disposable: false,
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

    fn frame(kind: MessageKind, ts: u32, keyframe: bool, disposable: bool) -> MediaMessage {
        MediaMessage {
            kind,
            timestamp: ts,
            header: Bytes::new(),
            body: Bytes::from(vec![0; 100]),
            is_frame: true,
            keyframe,
            disposable,
        }
    }

    /// 30 fps video (keyframe every 60 frames, every other frame disposable) and 50
    /// audio frames a second (80 messages a second) for `seconds`, pushed to a live
    /// queue while the link writes and delivers `link_per_s` messages a second, in
    /// order. Returns the messages that were written.
    async fn live_run(queue: &MediaQueue, seconds: u32, link_per_s: u32) -> Vec<MediaMessage> {
        let mut written = Vec::new();
        let mut sent = 0u32;
        for ms in 0..seconds * 1000 {
            if ms % 33 == 0 {
                let n = ms / 33;
                let m = frame(MessageKind::Video, ms, n % 60 == 0, n % 2 == 1);
                queue.push(vec![m]).await.unwrap();
            }
            if ms % 20 == 0 {
                queue
                    .push(vec![frame(MessageKind::Audio, ms, false, false)])
                    .await
                    .unwrap();
            }
            let budget = ms * link_per_s / 1000;
            while sent < budget {
                let mut out = Vec::new();
                queue.pop_batch(&mut out, 1);
                let Some(m) = out.pop() else { break };
                queue.written(m.timestamp, m.len());
                queue.delivered(queue.written_bytes());
                sent += 1;
                written.push(m);
            }
        }
        written
    }

    #[tokio::test]
    async fn live_never_waits_drops_only_video_and_resumes_at_keyframes() {
        let queue =
            MediaQueue::with_policy(Duration::from_secs(2), 1 << 30, CongestionPolicy::live());
        // A link at 60 of the 80 messages a second needed, for 10 s.
        let written = live_run(&queue, 10, 60).await;
        let drops = queue.drops();
        assert!(drops.total() > 0, "{drops:?}");
        assert!(
            drops.disposable > 0 && drops.until_keyframe > 0,
            "{drops:?}"
        );
        // Every audio frame was queued (none dropped): 500 of them, written or queued.
        let audio_written = written
            .iter()
            .filter(|m| m.kind == MessageKind::Audio)
            .count();
        let mut rest = Vec::new();
        queue.pop_batch(&mut rest, usize::MAX);
        let audio_queued = rest.iter().filter(|m| m.kind == MessageKind::Audio).count();
        assert_eq!(audio_written + audio_queued, 500);
        // After every gap in the video the first frame written is a keyframe, unless only
        // disposable frames were skipped.
        let video: Vec<&MediaMessage> = written
            .iter()
            .filter(|m| m.kind == MessageKind::Video)
            .collect();
        for pair in video.windows(2) {
            let gap = pair[1].timestamp - pair[0].timestamp;
            if gap > 70 {
                assert!(
                    pair[1].keyframe,
                    "video resumed at {} without a keyframe",
                    pair[1].timestamp
                );
            }
        }
        // The waiting media stays bounded near the hard cap (plus audio's own pace).
        assert!(
            queue.peak_waiting() < Duration::from_millis(2600),
            "{:?}",
            queue.peak_waiting()
        );
    }

    #[tokio::test]
    async fn a_fast_link_drops_nothing_and_back_pressure_never_drops() {
        let live =
            MediaQueue::with_policy(Duration::from_secs(2), 1 << 30, CongestionPolicy::live());
        live_run(&live, 3, 200).await;
        assert_eq!(live.drops().total(), 0);
        assert!(live.peak_waiting() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn waiting_counts_what_is_written_but_not_acknowledged() {
        let queue =
            MediaQueue::with_policy(Duration::from_secs(2), 1 << 30, CongestionPolicy::live());
        queue
            .push(vec![frame(MessageKind::Audio, 0, false, false)])
            .await
            .unwrap();
        let mut out = Vec::new();
        queue.pop_batch(&mut out, usize::MAX);
        queue.written(0, 150);
        queue
            .push(vec![frame(MessageKind::Audio, 800, false, false)])
            .await
            .unwrap();
        assert_eq!(
            queue.waiting(),
            Duration::from_millis(800),
            "the unacknowledged frame counts"
        );
        queue.delivered(150);
        assert_eq!(
            queue.waiting(),
            Duration::ZERO,
            "only the queued one is left, just in"
        );
    }
}
