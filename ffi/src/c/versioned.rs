//! Structs the app and the library both know, sized by a leading `struct_size`, so
//! that either side can be newer than the other (the way `cbSize` works in Win32 and
//! `copy_struct_from_user` in Linux).
//!
//! The rule, also in the header:
//! - The structs that can grow start with `uint32_t struct_size`: the session
//!   configuration, stats, state info, event and frame. Fields are only ever appended,
//!   each version's first new field at the previous version's `sizeof` (checked with
//!   `offset_of!` where the `Versioned` impls are), and none is embedded by value in
//!   another. The media structs the app fills per frame are fixed; more would come as
//!   new functions.
//! - The app sets `struct_size = sizeof` before handing a struct in (the `_init`
//!   function does it for a configuration) or out. The library reads the fields that fit
//!   in `struct_size` and takes the defaults for the rest (an older app); bytes past
//!   what it knows must be zero (a newer app that sets none of the newer fields), else
//!   `STREAMHUB_INVALID_ARGUMENT`. It writes no more than `struct_size` bytes and sets
//!   `struct_size` to what it wrote.
//! - Structs the library hands to a callback carry the library's `struct_size`: an app
//!   newer than the library reads a newer field only when `struct_size` covers it.

use std::mem::{MaybeUninit, size_of};

use super::result::{CError, STREAMHUB_INVALID_ARGUMENT};

/// A `struct_size` larger than this is refused outright: no struct will grow so much,
/// and it bounds the bytes checked for zero.
const MAX_STRUCT_SIZE: usize = 4096;

/// A `#[repr(C)]` struct whose first field is `struct_size: u32`.
///
/// # Safety
/// The implementor is `#[repr(C)]`, starts with a `u32` `struct_size`, and every bit
/// pattern of its fields past `OLDEST_SIZE` is valid when written by a C app (integers,
/// pointers, `Option` of function pointers; no `bool` or enum there).
pub unsafe trait Versioned: Sized {
    /// The size of the first layout with `struct_size` (what the oldest supported app
    /// passes).
    const OLDEST_SIZE: usize;
    /// The struct's C name, for error messages.
    const NAME: &'static str;
}

/// The `struct_size` the library writes into a struct it fills itself.
pub fn own_size<T>() -> u32 {
    // A few hundred bytes at most (the tests check the sizes against MAX_STRUCT_SIZE).
    u32::try_from(size_of::<T>()).unwrap_or(u32::MAX)
}

/// Checks an app's `struct_size` against what the library can honour.
fn checked_size<T: Versioned>(size: u32, name: &str) -> Result<usize, CError> {
    let size = size as usize;
    if size < T::OLDEST_SIZE || size > MAX_STRUCT_SIZE {
        return Err(CError::new(
            STREAMHUB_INVALID_ARGUMENT,
            format!(
                "{name}->struct_size is {size}: set it to sizeof({}) ({} in this library, \
                 at least {}; a program built before struct_size existed must be rebuilt)",
                T::NAME,
                size_of::<T>(),
                T::OLDEST_SIZE
            ),
        ));
    }
    Ok(size)
}

/// Reads the app's `*ptr` into the library's layout: the fields past the app's
/// `struct_size` keep their value in `defaults`.
///
/// # Safety
/// `ptr` is non-NULL and points to at least `struct_size` readable bytes (the app's
/// contract), starting with that `u32`.
pub unsafe fn read_in<T: Versioned>(ptr: *const T, defaults: T, name: &str) -> Result<T, CError> {
    // SAFETY: the first field is a u32, readable per the contract.
    let size = unsafe { ptr.cast::<u32>().read_unaligned() };
    let size = checked_size::<T>(size, name)?;
    let known = size_of::<T>();
    if size > known {
        // SAFETY: `size` bytes are readable per the contract.
        let tail = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>().add(known), size - known) };
        if let Some(at) = tail.iter().position(|&b| b != 0) {
            return Err(CError::new(
                STREAMHUB_INVALID_ARGUMENT,
                format!(
                    "{name} sets a field this library ({}) does not know (byte {} of \
                     {size}; it knows {known}): update the library",
                    env!("CARGO_PKG_VERSION"),
                    known + at
                ),
            ));
        }
    }
    let mut value = MaybeUninit::new(defaults);
    // SAFETY: both are valid for min(size, known) bytes and do not overlap; every bit
    // pattern the app wrote there is a valid field value (the trait's contract).
    unsafe {
        std::ptr::copy_nonoverlapping(
            ptr.cast::<u8>(),
            value.as_mut_ptr().cast::<u8>(),
            size.min(known),
        );
    }
    // SAFETY: initialised from `defaults`, then overwritten with valid field values.
    let mut value = unsafe { value.assume_init() };
    // SAFETY: the first field is the u32 struct_size.
    unsafe { (&raw mut value).cast::<u32>().write(own_size::<T>()) };
    Ok(value)
}

/// Checks the `struct_size` of the app's non-NULL `*out` before a call that would
/// fill it only after waiting.
///
/// # Safety
/// `out` is non-NULL and starts with a readable `u32`.
pub unsafe fn check_out<T: Versioned>(out: *const T, name: &str) -> Result<(), CError> {
    // SAFETY: per the contract.
    let size = unsafe { out.cast::<u32>().read_unaligned() };
    checked_size::<T>(size, name).map(drop)
}

/// Writes `value` into the app's `*out`, no more than the app's `struct_size` bytes,
/// and sets `struct_size` to the bytes written.
///
/// # Safety
/// `out` is NULL (an error) or points to at least `struct_size` writable bytes,
/// starting with that `u32` (the app's contract).
pub unsafe fn write_out<T: Versioned>(out: *mut T, value: T, name: &str) -> Result<(), CError> {
    if out.is_null() {
        return Err(CError::null(name));
    }
    // SAFETY: the first field is a u32, readable per the contract.
    let size = unsafe { out.cast::<u32>().read_unaligned() };
    let written = checked_size::<T>(size, name)?.min(size_of::<T>());
    let value = MaybeUninit::new(value);
    // SAFETY: `written` bytes are writable per the contract and readable from `value`.
    unsafe {
        std::ptr::copy_nonoverlapping(value.as_ptr().cast::<u8>(), out.cast::<u8>(), written);
        // Under MAX_STRUCT_SIZE.
        out.cast::<u32>().write_unaligned(written as u32);
    }
    Ok(())
}

/// Fills the app's `*out` of `struct_size` bytes with `defaults`: the library's layout
/// up to there, zeros past it, and `struct_size` set to the app's size.
///
/// # Safety
/// `out` is NULL (an error) or points to `struct_size` writable bytes.
pub unsafe fn init<T: Versioned>(
    out: *mut T,
    struct_size: usize,
    defaults: T,
    name: &str,
) -> Result<(), CError> {
    if out.is_null() {
        return Err(CError::null(name));
    }
    let size = u32::try_from(struct_size).unwrap_or(u32::MAX);
    let size = checked_size::<T>(size, name)?;
    let known = size_of::<T>();
    let value = MaybeUninit::new(defaults);
    // SAFETY: `size` bytes are writable per the contract; `min(size, known)` readable
    // from `value`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            value.as_ptr().cast::<u8>(),
            out.cast::<u8>(),
            size.min(known),
        );
        if size > known {
            std::ptr::write_bytes(out.cast::<u8>().add(known), 0, size - known);
        }
        // Under MAX_STRUCT_SIZE.
        out.cast::<u32>().write_unaligned(size as u32);
    }
    Ok(())
}
