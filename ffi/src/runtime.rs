//! The library's one tokio runtime: created on first use, shut down by
//! [`shutdown`], never restarted.
//!
//! Every session of the process runs on it, whichever binding created the session. Its
//! worker threads are named `streamhub-rt`; callbacks never run on them (see the crate
//! docs), except the log callback.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

/// Why the runtime cannot run a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// [`shutdown`] was called; the library cannot be used any more in this process.
    #[error("the library was shut down")]
    ShutDown,
    /// A blocking call was made on a tokio runtime thread (from the log callback, say,
    /// which may run on the library's own threads), where it would deadlock.
    #[error("a blocking StreamHub call was made on a tokio runtime thread")]
    WrongThread,
    /// The runtime could not be created (the OS refused threads).
    #[error("the runtime could not be started")]
    StartFailed,
}

enum Slot {
    NotStarted,
    Running(Runtime),
    ShutDown,
}

static RUNTIME: Mutex<Slot> = Mutex::new(Slot::NotStarted);

/// A handle to the runtime, starting it on first use.
pub fn handle() -> Result<Handle, RuntimeError> {
    let mut slot = crate::dispatch::lock(&RUNTIME);
    match &*slot {
        Slot::Running(runtime) => Ok(runtime.handle().clone()),
        Slot::ShutDown => Err(RuntimeError::ShutDown),
        Slot::NotStarted => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("streamhub-rt")
                .enable_all()
                .build()
                .map_err(|_| RuntimeError::StartFailed)?;
            let handle = runtime.handle().clone();
            *slot = Slot::Running(runtime);
            Ok(handle)
        }
    }
}

/// Runs `future` on the runtime and waits for it on the calling thread. Refused on the
/// runtime's own threads.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, RuntimeError> {
    if Handle::try_current().is_ok() {
        return Err(RuntimeError::WrongThread);
    }
    let handle = handle()?;
    Ok(handle.block_on(future))
}

/// Runs `future` on the runtime and returns its output to an `async` caller on any
/// executor (uniffi's foreign executors included).
pub async fn spawn<F>(future: F) -> Result<F::Output, RuntimeError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = handle()?.spawn(future);
    // A task only fails to finish when the runtime shuts down under it (a panic inside
    // is caught by tokio and reported here too; the callers turn it into their own error).
    task.await.map_err(|_| RuntimeError::ShutDown)
}

/// True once [`shutdown`] was called.
pub fn is_shut_down() -> bool {
    matches!(&*crate::dispatch::lock(&RUNTIME), Slot::ShutDown)
}

/// Stops the runtime: its tasks are dropped (sessions not stopped before end abruptly),
/// and it waits up to `within` for its threads. Later calls of any function that needs
/// the runtime fail with [`RuntimeError::ShutDown`]. Idempotent.
pub fn shutdown(within: Duration) {
    let previous = {
        let mut slot = crate::dispatch::lock(&RUNTIME);
        std::mem::replace(&mut *slot, Slot::ShutDown)
    };
    if let Slot::Running(runtime) = previous {
        if Handle::try_current().is_ok() {
            // On a runtime thread: waiting here would wait for ourselves.
            runtime.shutdown_background();
        } else {
            runtime.shutdown_timeout(within);
        }
    }
}
