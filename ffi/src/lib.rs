//! StreamHub for native apps: one library with a C ABI (`include/streamhub.h`) for
//! C/C++ desktop apps and uniffi exports for Swift and Kotlin.
//!
//! Both faces wrap the same [`session::Session`] (a core
//! [`streamhub::session::StreamSession`]), so a C app and a Kotlin app see the same
//! lifecycle, events and counters.
//!
//! # Threads
//!
//! - **One runtime.** The library owns one tokio runtime (two worker threads named
//!   `streamhub-rt`), started on first use. Every session runs on it.
//! - **Calls.** Every function may be called from any thread. Blocking C calls
//!   (`streamhub_session_send_video`, `…_stop`, …) wait on the calling thread; they
//!   refuse to run on a runtime thread (`STREAMHUB_WRONG_THREAD`) rather than deadlock.
//!   Swift/Kotlin `async` methods run on the runtime, whatever executor awaits them.
//! - **Callbacks.** A session's events are delivered on its own `streamhub-events`
//!   thread, in order, one at a time; a C watch session's frames on its own
//!   `streamhub-frames` thread. No lock that another call takes is held while a
//!   callback runs (only freeing the session from another thread waits for the
//!   callback running then), so a callback may call anything — send a chat message,
//!   read stats, stop or free its own session. A slow callback delays only its own session's events (which queue up to
//!   256, then non-chat events are dropped and counted) or frames (512, then dropped
//!   and counted). The log callback is the exception: it runs on whichever thread logs,
//!   runtime threads included, and must not make blocking calls.
//! - **Ending.** `streamhub_session_stop` stops the session and returns once its events
//!   were delivered. `streamhub_session_free` returns at once: no callback of that
//!   session runs after it returns, and the session stops in the background
//!   (`streamhub_shutdown` waits for those stops). Dropping a Swift/Kotlin session object ends it
//!   in the background; `Subscription.cancel()` (or dropping it) ends a subscription.
//!   Every `Drop` is safe on any thread.
//! - **Shutdown.** `streamhub_shutdown` (C) or `shutdown()` stops the sessions and the
//!   runtime; afterwards calls fail with `STREAMHUB_SHUT_DOWN` / `ShutDown`. The library
//!   cannot be started again in the same process. Apps that live as long as the process
//!   need not call it.
//! - **Panics.** A panic never crosses the boundary: C functions return
//!   `STREAMHUB_PANIC`, uniffi raises an internal error in Swift/Kotlin. The library is
//!   built with `panic = "unwind"` for this.

// Library code does not unwrap what the network, a file or a caller gives it; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_debug_implementations)]

pub mod c;
pub mod dispatch;
pub mod flv;
pub mod gate;
pub mod log;
pub mod runtime;
pub mod session;
pub mod uniffi;

::uniffi::setup_scaffolding!("streamhub");
