//! Delivers a session's events to the app's listeners on a thread of its own.
//!
//! A session has one event queue ([`SessionEvents`]); the first subscriber starts a
//! `streamhub-events` thread that reads it and hands each event to every current
//! subscriber in turn. The subscriber list is copied before the calls, so no lock is
//! held while app code runs, and a listener may subscribe, cancel or call any other
//! function from inside its callback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};

use streamhub::session::{SessionEvent, SessionEvents};
use tracing::warn;

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
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: Mutex<Option<ThreadId>>,
}

impl Dispatcher {
    /// A dispatcher for the events of one session; nothing runs until
    /// [`Dispatcher::subscribe`].
    pub fn new(events: SessionEvents) -> Self {
        Dispatcher {
            queue: Mutex::new(Some(events)),
            sinks: Arc::new(Mutex::new(Vec::new())),
            next_id: AtomicU64::new(1),
            thread: Mutex::new(None),
            thread_id: Mutex::new(None),
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
            let thread = std::thread::Builder::new()
                .name("streamhub-events".into())
                .spawn(move || deliver_all(queue, sinks))
                .map_err(|_| runtime::RuntimeError::StartFailed)?;
            *lock(&self.thread_id) = Some(thread.thread().id());
            *lock(&self.thread) = Some(thread);
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
        *lock(&self.thread_id) == Some(std::thread::current().id())
    }

    /// Ends delivery. Unless called from inside a callback, first waits for the delivery
    /// thread to hand out the events still queued and end (it ends once the session is
    /// over, so stop the session first); then drops every subscriber. From inside a
    /// callback it only drops the subscribers: the running callback is the last.
    pub fn close(&self) {
        if !self.is_delivery_thread() {
            let thread = lock(&self.thread).take();
            if let Some(thread) = thread
                && thread.join().is_err()
            {
                warn!("the event delivery thread panicked");
            }
        }
        lock(&self.sinks).clear();
    }
}

fn deliver_all(mut queue: SessionEvents, sinks: Arc<Mutex<Sinks>>) {
    loop {
        let event = match runtime::block_on(queue.next()) {
            Ok(Some(event)) => event,
            Ok(None) | Err(_) => return,
        };
        let current: Vec<Arc<dyn EventSink>> =
            lock(&sinks).iter().map(|(_, sink)| sink.clone()).collect();
        for sink in current {
            // A panicking listener must not end delivery for the others.
            let delivered =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.deliver(&event)));
            if delivered.is_err() {
                warn!("an event listener panicked; the event was skipped for it");
            }
        }
    }
}

/// Locks a mutex, recovering from a poisoned one (the data here stays consistent: a
/// `Vec` push/retain or an `Option` take).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
