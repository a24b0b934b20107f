//! `streamhub_set_log_callback`: the library's `tracing` logs, handed to the app.

use std::ffi::{c_char, c_void};

use super::events::{UserData, c_string};
use super::result::*;
use crate::log::{LogLevel, LogSink, set_sink};

/// How much to log.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_log_level {
    /// Nothing.
    STREAMHUB_LOG_OFF = 0,
    /// Errors.
    STREAMHUB_LOG_ERROR = 1,
    /// And warnings.
    STREAMHUB_LOG_WARN = 2,
    /// And information (connections, state changes).
    STREAMHUB_LOG_INFO = 3,
    /// And debugging detail.
    STREAMHUB_LOG_DEBUG = 4,
    /// Everything.
    STREAMHUB_LOG_TRACE = 5,
}

/// Receives one log line: its level (a `streamhub_log_level`), its module path and its
/// message, NUL-terminated UTF-8 valid during the call. Runs on whichever thread logs
/// (the library's runtime threads among them), so it must be thread-safe, quick, and
/// must not call blocking StreamHub functions (they return `STREAMHUB_WRONG_THREAD`).
pub type streamhub_log_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        level: i32,
        target: *const c_char,
        message: *const c_char,
    ),
>;

struct CLogSink {
    callback: unsafe extern "C" fn(*mut c_void, i32, *const c_char, *const c_char),
    userdata: UserData,
}

impl LogSink for CLogSink {
    fn log(&self, level: LogLevel, target: &str, message: &str) {
        let target = c_string(target);
        let message = c_string(message);
        // SAFETY: the app's callback with its userdata; the strings live through it.
        unsafe {
            (self.callback)(
                self.userdata.0,
                level as i32,
                target.as_ptr(),
                message.as_ptr(),
            )
        }
    }
}

/// Sends the library's log lines at `level` and above to `callback` (NULL, or level
/// `STREAMHUB_LOG_OFF`, turns logging off). Replaces the previous callback; a line being
/// delivered to it finishes first on its thread. `level` is an int so that a wrong
/// value is refused (`STREAMHUB_INVALID_ARGUMENT`).
#[unsafe(no_mangle)]
pub extern "C" fn streamhub_set_log_callback(
    level: i32,
    callback: streamhub_log_callback,
    userdata: *mut c_void,
) -> streamhub_result {
    boundary(|| {
        let level = LogLevel::from_i32(level).ok_or_else(|| {
            CError::new(
                STREAMHUB_INVALID_ARGUMENT,
                format!("{level} is not a streamhub_log_level"),
            )
        })?;
        let sink = callback.map(|callback| {
            Box::new(CLogSink {
                callback,
                userdata: UserData(userdata),
            }) as Box<dyn LogSink>
        });
        set_sink(level, sink);
        Ok(())
    })
}
