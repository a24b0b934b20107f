//! The app's end of a session's event queue: an async `next()` and a
//! [`futures_util::Stream`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::watch;

use super::SessionEvent;
use super::event_queue::EventReceiver;

/// The queue and the flag that says the session is over.
struct Queue {
    rx: EventReceiver,
    finished: watch::Receiver<bool>,
}

impl Queue {
    /// The next event, handing the queue back with it (so that a pending read can live
    /// in a boxed future between polls).
    async fn next(mut self) -> (Option<SessionEvent>, Queue) {
        let event = tokio::select! {
            biased;
            event = self.rx.recv() => event,
            // Every event was queued before `finished` was set: drain, then end.
            _ = self.finished.wait_for(|done| *done) => self.rx.try_recv(),
        };
        (event, self)
    }
}

type NextEvent = Pin<Box<dyn Future<Output = (Option<SessionEvent>, Queue)> + Send + Sync>>;

/// The app's events; `None` from [`SessionEvents::next`] (or the end of the stream)
/// once the session has ended or failed and every event was read.
///
/// Reading is cancel-safe: a `next()` dropped half-way loses nothing, the read goes on
/// at the next call.
pub struct SessionEvents {
    /// The queue while no read is under way.
    idle: Option<Queue>,
    /// A read under way.
    reading: Option<NextEvent>,
}

impl SessionEvents {
    pub(super) fn new(rx: EventReceiver, finished: watch::Receiver<bool>) -> Self {
        SessionEvents {
            idle: Some(Queue { rx, finished }),
            reading: None,
        }
    }

    /// The next event; `None` once the session is over and every event was read, even
    /// while handles to the session are still held.
    pub async fn next(&mut self) -> Option<SessionEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for SessionEvents {
    type Item = SessionEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionEvent>> {
        let this = self.get_mut();
        if this.reading.is_none() {
            match this.idle.take() {
                Some(queue) => this.reading = Some(Box::pin(queue.next())),
                // Only after a read panicked half-way: nothing more to read.
                None => return Poll::Ready(None),
            }
        }
        let Some(reading) = this.reading.as_mut() else {
            return Poll::Ready(None);
        };
        match reading.as_mut().poll(cx) {
            Poll::Ready((event, queue)) => {
                this.reading = None;
                this.idle = Some(queue);
                Poll::Ready(event)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl fmt::Debug for SessionEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEvents")
            .field("reading", &self.reading.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn the_stream_drains_then_ends_and_a_dropped_read_loses_nothing() {
        let (tx, rx) = super::super::event_queue::event_queue(8, 8);
        let (finished_tx, finished) = watch::channel(false);
        let mut events = SessionEvents::new(rx, finished);
        // A read that is dropped while it waits...
        let waited = tokio::time::timeout(Duration::from_millis(20), events.next()).await;
        assert!(waited.is_err());
        // ... loses nothing sent after it.
        tx.emit(SessionEvent::Viewers(1));
        tx.emit(SessionEvent::Viewers(2));
        assert!(matches!(
            events.next().await,
            Some(SessionEvent::Viewers(1))
        ));
        tx.emit(SessionEvent::Viewers(3));
        // Over, with the sender still alive: what was queued, then the end.
        finished_tx.send_replace(true);
        let rest: Vec<_> = (&mut events).collect().await;
        assert!(
            matches!(
                rest.as_slice(),
                [SessionEvent::Viewers(2), SessionEvent::Viewers(3)]
            ),
            "{rest:?}"
        );
        assert!(events.next().await.is_none());
        drop(tx);
    }
}
