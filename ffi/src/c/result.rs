//! Result codes, the calling thread's last error message, and the panic boundary every
//! `extern "C"` function goes through.

use std::cell::RefCell;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use streamhub::session::SessionError;

use crate::runtime::RuntimeError;
use crate::session::OpenError;

/// What a StreamHub C function reports. `STREAMHUB_OK` is zero; for any other value,
/// `streamhub_last_error_message` tells the details on the same thread.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_result {
    /// Success.
    STREAMHUB_OK = 0,
    /// A required pointer parameter was NULL.
    STREAMHUB_NULL_PARAMETER = 1,
    /// A string parameter was not valid UTF-8.
    STREAMHUB_INVALID_UTF8 = 2,
    /// A parameter was invalid: a URL that does not parse, a configuration that cannot
    /// work, media data the packetizer refuses.
    STREAMHUB_INVALID_ARGUMENT = 3,
    /// The handle is not (or no longer) a live StreamHub object: freed already, or
    /// never returned by this library.
    STREAMHUB_INVALID_HANDLE = 4,
    /// The function belongs to the other kind of session (sending on a watch session).
    STREAMHUB_WRONG_KIND = 5,
    /// The session has ended (`streamhub_session_stop`).
    STREAMHUB_SESSION_ENDED = 6,
    /// The session has failed; the message says why.
    STREAMHUB_SESSION_FAILED = 7,
    /// The session has no chat, or the chat refused the message (too long, refused by
    /// the server, queue full).
    STREAMHUB_CHAT_ERROR = 8,
    /// A file could not be read, or is not what it should be (FLV reader).
    STREAMHUB_IO_ERROR = 9,
    /// The output buffer is too small; the needed size was written where the function
    /// says.
    STREAMHUB_BUFFER_TOO_SMALL = 10,
    /// A blocking call was made on a thread where it would deadlock (from the log
    /// callback).
    STREAMHUB_WRONG_THREAD = 11,
    /// `streamhub_shutdown` was called; the library cannot be used any more.
    STREAMHUB_SHUT_DOWN = 12,
    /// Something failed inside the library that is not the caller's fault.
    STREAMHUB_INTERNAL_ERROR = 13,
    /// Rust code panicked inside the call. The panic was caught at the boundary; the
    /// object involved may be unusable, the process is not.
    STREAMHUB_PANIC = 14,
}

pub use streamhub_result::*;

const ALL_RESULTS: [streamhub_result; 15] = [
    STREAMHUB_OK,
    STREAMHUB_NULL_PARAMETER,
    STREAMHUB_INVALID_UTF8,
    STREAMHUB_INVALID_ARGUMENT,
    STREAMHUB_INVALID_HANDLE,
    STREAMHUB_WRONG_KIND,
    STREAMHUB_SESSION_ENDED,
    STREAMHUB_SESSION_FAILED,
    STREAMHUB_CHAT_ERROR,
    STREAMHUB_IO_ERROR,
    STREAMHUB_BUFFER_TOO_SMALL,
    STREAMHUB_WRONG_THREAD,
    STREAMHUB_SHUT_DOWN,
    STREAMHUB_INTERNAL_ERROR,
    STREAMHUB_PANIC,
];

/// An error of a C call: its code and its message.
#[derive(Debug)]
pub struct CError {
    /// The code returned to C.
    pub code: streamhub_result,
    /// The message `streamhub_last_error_message` returns.
    pub message: String,
}

impl CError {
    /// An error with a code and a message.
    pub fn new(code: streamhub_result, message: impl Into<String>) -> Self {
        CError {
            code,
            message: message.into(),
        }
    }

    /// A NULL pointer where `name` must point somewhere.
    pub fn null(name: &str) -> Self {
        CError::new(STREAMHUB_NULL_PARAMETER, format!("{name} is NULL"))
    }
}

impl From<RuntimeError> for CError {
    fn from(error: RuntimeError) -> Self {
        let code = match error {
            RuntimeError::ShutDown => STREAMHUB_SHUT_DOWN,
            RuntimeError::WrongThread => STREAMHUB_WRONG_THREAD,
            RuntimeError::StartFailed => STREAMHUB_INTERNAL_ERROR,
        };
        CError::new(code, error.to_string())
    }
}

impl From<SessionError> for CError {
    fn from(error: SessionError) -> Self {
        let code = match &error {
            SessionError::InvalidConfig(_) | SessionError::Rtmp { .. } => {
                STREAMHUB_INVALID_ARGUMENT
            }
            SessionError::WrongKind { .. } => STREAMHUB_WRONG_KIND,
            SessionError::Ended => STREAMHUB_SESSION_ENDED,
            SessionError::Failed(_) => STREAMHUB_SESSION_FAILED,
            SessionError::Chat { .. } | SessionError::ChatUnavailable(_) => STREAMHUB_CHAT_ERROR,
            SessionError::NoRuntime => STREAMHUB_SHUT_DOWN,
            _ => STREAMHUB_INTERNAL_ERROR,
        };
        CError::new(code, error.to_string())
    }
}

impl From<OpenError> for CError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Session(error) => error.into(),
            OpenError::Runtime(error) => error.into(),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: String) {
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Runs the body of an `extern "C"` function: catches a panic (returned as
/// `STREAMHUB_PANIC`), records the error message for `streamhub_last_error_message`.
pub fn boundary(body: impl FnOnce() -> Result<(), CError>) -> streamhub_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error(String::new());
            STREAMHUB_OK
        }
        Ok(Err(error)) => {
            set_last_error(error.message);
            error.code
        }
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(format!("panic inside StreamHub: {detail}"));
            STREAMHUB_PANIC
        }
    }
}

/// Like [`boundary`] for functions that return nothing (the `_free` functions): a panic
/// is caught and logged.
pub fn boundary_void(body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        tracing::error!("panic inside a StreamHub free function (caught)");
    }
}

/// Reads a NUL-terminated UTF-8 string parameter.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
pub unsafe fn c_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, CError> {
    if ptr.is_null() {
        return Err(CError::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|e| CError::new(STREAMHUB_INVALID_UTF8, format!("{name} is not UTF-8: {e}")))
}

/// Reads an optional string parameter: NULL is `None`.
///
/// # Safety
/// As [`c_str`].
pub unsafe fn c_str_opt<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, CError> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { c_str(ptr, name) }.map(Some)
    }
}

/// Reads a byte buffer parameter; `len == 0` accepts a NULL pointer. A length above
/// `isize::MAX` (a negative length cast to `size_t`, usually) is refused: no buffer can
/// be that long, and a slice of it would be undefined behaviour.
///
/// # Safety
/// `ptr` points to `len` readable bytes (or `len` is 0).
pub unsafe fn c_bytes<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], CError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(CError::null(name));
    }
    if isize::try_from(len).is_err() {
        return Err(CError::new(
            STREAMHUB_INVALID_ARGUMENT,
            format!("{name}: a length of {len} bytes cannot be a buffer's"),
        ));
    }
    // SAFETY: the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Writes `value` through an out-parameter.
///
/// # Safety
/// `out` is NULL (an error) or valid for writes.
pub unsafe fn write_out<T>(out: *mut T, value: T, name: &str) -> Result<(), CError> {
    if out.is_null() {
        return Err(CError::null(name));
    }
    // SAFETY: non-NULL and writable per the caller's contract.
    unsafe { out.write(value) };
    Ok(())
}

/// Copies the calling thread's last error message into `buf` (at most `len` bytes,
/// NUL-terminated, cut at a character boundary) and stores the full message length
/// (without the NUL) in `*out_len` when `out_len` is not NULL. An empty message means
/// the last call succeeded. Returns `STREAMHUB_BUFFER_TOO_SMALL` when the message was
/// cut.
///
/// # Safety
/// `buf` points to `len` writable bytes (or is NULL with `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> streamhub_result {
    // Not through `boundary`: that would overwrite the message being read.
    let message = LAST_ERROR.with(|last| last.borrow().clone());
    if !out_len.is_null() {
        // SAFETY: non-NULL, writable per the contract.
        unsafe { out_len.write(message.len()) };
    }
    if buf.is_null() || len == 0 {
        return if message.is_empty() {
            STREAMHUB_OK
        } else {
            STREAMHUB_BUFFER_TOO_SMALL
        };
    }
    let mut cut = message.len().min(len - 1);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    // SAFETY: `buf` has `len` bytes and we write `cut + 1 <= len`.
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), cut);
        buf.add(cut).write(0);
    }
    if cut < message.len() {
        STREAMHUB_BUFFER_TOO_SMALL
    } else {
        STREAMHUB_OK
    }
}

/// A static, NUL-terminated name of a result code (`"STREAMHUB_NULL_PARAMETER"`), or
/// `"STREAMHUB_UNKNOWN"` for a value that is not one.
#[unsafe(no_mangle)]
pub extern "C" fn streamhub_result_name(result: i32) -> *const c_char {
    let known = ALL_RESULTS.iter().find(|code| **code as i32 == result);
    let name: &'static CStr = match known {
        None => c"STREAMHUB_UNKNOWN",
        Some(STREAMHUB_OK) => c"STREAMHUB_OK",
        Some(STREAMHUB_NULL_PARAMETER) => c"STREAMHUB_NULL_PARAMETER",
        Some(STREAMHUB_INVALID_UTF8) => c"STREAMHUB_INVALID_UTF8",
        Some(STREAMHUB_INVALID_ARGUMENT) => c"STREAMHUB_INVALID_ARGUMENT",
        Some(STREAMHUB_INVALID_HANDLE) => c"STREAMHUB_INVALID_HANDLE",
        Some(STREAMHUB_WRONG_KIND) => c"STREAMHUB_WRONG_KIND",
        Some(STREAMHUB_SESSION_ENDED) => c"STREAMHUB_SESSION_ENDED",
        Some(STREAMHUB_SESSION_FAILED) => c"STREAMHUB_SESSION_FAILED",
        Some(STREAMHUB_CHAT_ERROR) => c"STREAMHUB_CHAT_ERROR",
        Some(STREAMHUB_IO_ERROR) => c"STREAMHUB_IO_ERROR",
        Some(STREAMHUB_BUFFER_TOO_SMALL) => c"STREAMHUB_BUFFER_TOO_SMALL",
        Some(STREAMHUB_WRONG_THREAD) => c"STREAMHUB_WRONG_THREAD",
        Some(STREAMHUB_SHUT_DOWN) => c"STREAMHUB_SHUT_DOWN",
        Some(STREAMHUB_INTERNAL_ERROR) => c"STREAMHUB_INTERNAL_ERROR",
        Some(STREAMHUB_PANIC) => c"STREAMHUB_PANIC",
    };
    name.as_ptr()
}
