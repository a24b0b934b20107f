//! A session's one event queue, with two budgets.
//!
//! Everything the app is told goes through one FIFO, so events keep their order. What
//! may be lost (states, stats, viewer counts: [`crate::session::StreamSession::state`]
//! and `stats` are always current) has a budget of its own, the session's
//! `event_capacity`: past it an event is dropped and counted. What the app is owed
//! (chat messages and the outcome of its own: sent, failed, deleted, kicked) has the
//! chat's `event_capacity`: past it the sender waits — the chat client stops reading
//! its socket until the app reads. A full budget of one kind never holds up the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Semaphore, mpsc};

use super::SessionEvent;

struct Queued {
    event: SessionEvent,
    owed: bool,
}

/// Budgets as semaphores: a permit is taken when an event is queued and given back when
/// the app reads it.
#[derive(Debug)]
struct Budgets {
    lossy: Semaphore,
    owed: Semaphore,
}

impl Budgets {
    fn of(&self, owed: bool) -> &Semaphore {
        if owed { &self.owed } else { &self.lossy }
    }
}

/// The session's end of the queue.
#[derive(Debug)]
pub(crate) struct EventSender {
    tx: mpsc::UnboundedSender<Queued>,
    budgets: Arc<Budgets>,
    dropped: AtomicU64,
}

/// The app's end of the queue (read through [`super::SessionEvents`]).
#[derive(Debug)]
pub(crate) struct EventReceiver {
    rx: mpsc::UnboundedReceiver<Queued>,
    budgets: Arc<Budgets>,
}

/// A queue holding up to `lossy` events that may be dropped and `owed` that may not.
pub(crate) fn event_queue(lossy: usize, owed: usize) -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let budgets = Arc::new(Budgets {
        lossy: Semaphore::new(lossy.max(1)),
        owed: Semaphore::new(owed.max(1)),
    });
    let sender = EventSender {
        tx,
        budgets: budgets.clone(),
        dropped: AtomicU64::new(0),
    };
    (sender, EventReceiver { rx, budgets })
}

impl EventSender {
    /// Queues an event that may be lost, without waiting; drops and counts it when its
    /// budget is spent or the app dropped its end.
    pub(crate) fn emit(&self, event: SessionEvent) {
        let queued = match self.budgets.lossy.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.tx.send(Queued { event, owed: false }).is_ok()
            }
            Err(_) => false,
        };
        if !queued {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues an event the app is owed, waiting while its budget is spent. False when
    /// the app dropped its end of the queue. Cancel-safe: a cancelled call queued
    /// nothing.
    #[cfg_attr(not(feature = "chat"), allow(dead_code))]
    pub(crate) async fn send_owed(&self, event: SessionEvent) -> bool {
        let Ok(permit) = self.budgets.owed.acquire().await else {
            return false;
        };
        permit.forget();
        self.tx.send(Queued { event, owed: true }).is_ok()
    }

    /// Counts an event that was not queued (a stopping session's unread chat event).
    #[cfg_attr(not(feature = "chat"), allow(dead_code))]
    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Events dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl EventReceiver {
    /// The next event; `None` once the session's end is gone and the queue is empty.
    /// Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Option<SessionEvent> {
        let queued = self.rx.recv().await?;
        Some(self.taken(queued))
    }

    /// The next event if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<SessionEvent> {
        let queued = self.rx.try_recv().ok()?;
        Some(self.taken(queued))
    }

    fn taken(&self, queued: Queued) -> SessionEvent {
        self.budgets.of(queued.owed).add_permits(1);
        queued.event
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        // Nobody will read: a sender waiting for room gives up instead of waiting forever.
        self.budgets.lossy.close();
        self.budgets.owed.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn viewers(n: u64) -> SessionEvent {
        SessionEvent::Viewers(n)
    }

    fn owed(seq: u64) -> SessionEvent {
        SessionEvent::ChatDeleted {
            room: "r".into(),
            seq,
        }
    }

    #[tokio::test]
    async fn lossy_events_are_dropped_past_their_budget_and_owed_ones_wait_in_order() {
        let (tx, mut rx) = event_queue(2, 2);
        for n in 0..4 {
            tx.emit(viewers(n));
        }
        assert_eq!(tx.dropped(), 2);
        // The lossy budget is spent; owed events still fit in theirs.
        assert!(tx.send_owed(owed(1)).await);
        assert!(tx.send_owed(owed(2)).await);
        // The third waits for the app...
        let third = tx.send_owed(owed(3));
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut third)
                .await
                .is_err()
        );
        // ... which reads in the order things were queued.
        let mut read = vec![];
        for _ in 0..3 {
            read.push(rx.recv().await.expect("an event"));
        }
        assert!(matches!(read[0], SessionEvent::Viewers(0)));
        assert!(matches!(read[1], SessionEvent::Viewers(1)));
        assert!(matches!(read[2], SessionEvent::ChatDeleted { seq: 1, .. }));
        assert!(third.await);
        // Reading gave the lossy budget back.
        tx.emit(viewers(9));
        assert_eq!(tx.dropped(), 2);
        let rest: Vec<_> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(rest.len(), 3, "{rest:?}");
    }

    #[tokio::test]
    async fn a_waiting_owed_event_gives_up_when_the_app_drops_its_end() {
        let (tx, rx) = event_queue(1, 1);
        assert!(tx.send_owed(owed(1)).await);
        let waiting = tokio::spawn(async move { tx.send_owed(owed(2)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(rx);
        assert!(!waiting.await.expect("the task"));
    }
}
