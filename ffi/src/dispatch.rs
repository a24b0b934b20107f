//! Delivers a session's events to the app's listeners on a thread of its own.
//!
//! A session has one event queue ([`SessionEvents`]); the first subscriber starts a
//! `streamhub-events` thread that reads it and hands each event to every current
//! subscriber in turn. The subscriber list is copied before the calls, so no lock that
//! another call takes is held while app code runs (only closing the session from
//! another thread waits for the callback running then, see [`CallbackGate`]), and a
//! listener may subscribe, cancel or call any other function from inside its callback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use streamhub::session::{SessionEvent, SessionEvents};
use tracing::warn;

use crate::gate::{CallbackGate, Delivery};
use crate::runtime;

/// Something that takes a session's events (a C callback, a uniffi listener).
pub trait EventSink: Send + Sync {
    /// Called on the session's `streamhub-events` thread, once per event, in order.
    fn deliver(&self, event: &SessionEvent);
}

type Sinks = Vec<(u64, Arc<dyn EventSink>)>;

/// The fan-out of one session's events.
pub struct Dispatcher {
    queue: Mutex<Option<SessionEvents>>,
    sinks: Arc<Mutex<Sinks>>,
    next_id: AtomicU64,
    gate: Arc<CallbackGate>,
    /// Set by the delivery thread when it ends.
    ended: Arc<(Mutex<bool>, Condvar)>,
}

impl Dispatcher {
    /// A dispatcher for the events of one session; nothing runs until
    /// [`Dispatcher::subscribe`].
    pub fn new(events: SessionEvents) -> Self {
        Dispatcher {
            queue: Mutex::new(Some(events)),
            sinks: Arc::new(Mutex::new(Vec::new())),
            next_id: AtomicU64::new(1),
            gate: Arc::new(CallbackGate::new()),
            ended: Arc::default(),
        }
    }

    /// Adds a subscriber and returns its id; starts the delivery thread for the first.
    /// Events that happened before the first subscriber are queued (up to the session's
    /// event capacity) and delivered to it.
    pub fn subscribe(&self, sink: Arc<dyn EventSink>) -> Result<u64, runtime::RuntimeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.sinks).push((id, sink));
        let queue = lock(&self.queue).take();
        if let Some(queue) = queue {
            let sinks = self.sinks.clone();
            let gate = self.gate.clone();
            let ended = self.ended.clone();
            // Detached: it ends with the session's events, or at the first event after
            // the gate is shut.
            std::thread::Builder::new()
                .name("streamhub-events".into())
                .spawn(move || {
                    deliver_all(queue, &sinks, &gate);
                    *lock(&ended.0) = true;
                    ended.1.notify_all();
                })
                .map_err(|_| runtime::RuntimeError::StartFailed)?;
        }
        Ok(id)
    }

    /// Removes a subscriber. An event being delivered to it right now still completes;
    /// none starts after this returns.
    pub fn unsubscribe(&self, id: u64) {
        lock(&self.sinks).retain(|(sink_id, _)| *sink_id != id);
    }

    /// True when called from this dispatcher's delivery thread (inside a callback).
    pub fn is_delivery_thread(&self) -> bool {
        self.gate.is_delivery_thread()
    }

    /// Ends delivery at once: no callback starts after this returns, and one running now
    /// on another thread has finished (called from inside a callback, that callback is
    /// the last). Events still queued are not delivered. Never waits for the session.
    pub fn close(&self) {
        self.gate.shut();
        lock(&self.sinks).clear();
    }

    /// Waits up to `within` until every event of the session was handed out (call it
    /// once the session is over); true when done. Immediate without subscribers, and
    /// from inside a callback (which would wait for itself).
    pub fn wait_delivered(&self, within: Duration) -> bool {
        if lock(&self.queue).is_some() || self.is_delivery_thread() {
            return true;
        }
        let (ended, changed) = &*self.ended;
        let guard = lock(ended);
        let (guard, _) = changed
            .wait_timeout_while(guard, within, |ended| !*ended)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

fn deliver_all(mut queue: SessionEvents, sinks: &Mutex<Sinks>, gate: &CallbackGate) {
    gate.bind_current_thread();
    while gate.is_open() {
        let event = match runtime::block_on(queue.next()) {
            Ok(Some(event)) => event,
            Ok(None) | Err(_) => return,
        };
        let current: Vec<Arc<dyn EventSink>> =
            lock(sinks).iter().map(|(_, sink)| sink.clone()).collect();
        for sink in current {
            // A panicking listener must not end delivery for the others.
            match gate.run(|| sink.deliver(&event)) {
                Delivery::Done => {}
                Delivery::Panicked => {
                    warn!("an event listener panicked; the event was skipped for it");
                }
                Delivery::Shut => return,
            }
        }
    }
}

/// Locks a mutex, recovering from a poisoned one (the data here stays consistent: a
/// `Vec` push/retain or an `Option` take).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}
