//! The promise of `streamhub_session_free`: once it returns, no callback of the session
//! runs any more — without waiting for the session itself to end.
//!
//! Each delivery thread (a session's events, a C watch session's frames) runs the app's
//! callbacks through a [`CallbackGate`]. Shutting the gate waits only for the callback
//! running at that moment on another thread (the app's own code, usually microseconds);
//! the session's network shutdown goes on in the background.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

use crate::dispatch::lock;

/// Lets one thread run the app's callbacks until the gate is shut.
#[derive(Debug)]
pub struct CallbackGate {
    open: AtomicBool,
    /// Held while a callback runs, so that [`CallbackGate::shut`] can wait for it.
    running: Mutex<()>,
    /// The thread that calls through the gate.
    thread: OnceLock<ThreadId>,
}

impl Default for CallbackGate {
    fn default() -> Self {
        CallbackGate {
            open: AtomicBool::new(true),
            running: Mutex::new(()),
            thread: OnceLock::new(),
        }
    }
}

impl CallbackGate {
    /// An open gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the calling thread as the one that runs callbacks through this gate.
    pub fn bind_current_thread(&self) {
        let _ = self.thread.set(std::thread::current().id());
    }

    /// True when called from the thread bound by [`CallbackGate::bind_current_thread`].
    pub fn is_delivery_thread(&self) -> bool {
        self.thread.get() == Some(&std::thread::current().id())
    }

    /// False once the gate is shut.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Runs `callback` unless the gate is shut, and says what happened. A panic inside
    /// is caught: it must not end delivery, nor unwind into C.
    pub fn run(&self, callback: impl FnOnce()) -> Delivery {
        let _running = lock(&self.running);
        if !self.is_open() {
            return Delivery::Shut;
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback)) {
            Ok(()) => Delivery::Done,
            Err(_) => Delivery::Panicked,
        }
    }

    /// Shuts the gate: no callback starts after this returns, and one running now on
    /// another thread has finished. Called from the delivery thread itself (inside a
    /// callback), the callback running now is the last.
    pub fn shut(&self) {
        self.open.store(false, Ordering::Release);
        if !self.is_delivery_thread() {
            drop(lock(&self.running));
        }
    }

    /// Shuts the gate without waiting for a callback running now (for `Drop`, which
    /// must never block).
    pub fn shut_without_waiting(&self) {
        self.open.store(false, Ordering::Release);
    }
}

/// What [`CallbackGate::run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The callback ran.
    Done,
    /// The callback panicked; the panic was caught.
    Panicked,
    /// The gate is shut; nothing ran.
    Shut,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn shut_waits_for_the_running_callback_and_nothing_runs_after() {
        let gate = Arc::new(CallbackGate::new());
        let (started_tx, started_rx) = mpsc::channel();
        let (finish_tx, finish_rx) = mpsc::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let worker = {
            let gate = gate.clone();
            let finished = finished.clone();
            std::thread::spawn(move || {
                gate.bind_current_thread();
                gate.run(|| {
                    started_tx.send(()).unwrap();
                    finish_rx.recv().unwrap();
                    finished.store(true, Ordering::SeqCst);
                })
            })
        };
        started_rx.recv().unwrap();
        let shutter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.shut())
        };
        // The shut waits for the callback: let it finish, then the shut returns.
        std::thread::sleep(Duration::from_millis(20));
        assert!(!shutter.is_finished(), "shut returned during the callback");
        finish_tx.send(()).unwrap();
        shutter.join().unwrap();
        assert!(finished.load(Ordering::SeqCst));
        assert_eq!(worker.join().unwrap(), Delivery::Done);
        assert_eq!(gate.run(|| panic!("ran after the shut")), Delivery::Shut);
    }

    #[test]
    fn a_shut_from_inside_a_callback_does_not_wait_for_itself() {
        let gate = CallbackGate::new();
        gate.bind_current_thread();
        assert_eq!(gate.run(|| gate.shut()), Delivery::Done);
        assert!(!gate.is_open());
    }

    #[test]
    fn a_panicking_callback_is_caught_and_the_gate_stays_usable() {
        let gate = CallbackGate::new();
        assert_eq!(gate.run(|| panic!("app bug")), Delivery::Panicked);
        assert_eq!(gate.run(|| {}), Delivery::Done);
    }
}
