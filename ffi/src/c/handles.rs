//! Handle tables: a C handle is a number dressed as a pointer, never dereferenced.
//!
//! Each object the C ABI hands out is kept in a table under a number that is never
//! reused; the pointer C receives carries that number. So a NULL handle, a handle
//! already freed, or a pointer that never came from this library is recognised and
//! refused with `STREAMHUB_INVALID_HANDLE` instead of being followed into freed memory,
//! and `_free` twice is harmless.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::result::{CError, STREAMHUB_INVALID_HANDLE};
use crate::dispatch::lock;

/// Numbers are handed out from here on, in steps of 16 per object (so that, like real
/// allocations, handles look aligned), across every table.
static NEXT: AtomicUsize = AtomicUsize::new(0x5000);

/// A table of live objects of type `T`, reached through handles `*mut H`.
pub struct Table<T, H> {
    objects: Mutex<Option<HashMap<usize, Arc<T>>>>,
    kind: &'static str,
    _handle: PhantomData<fn() -> H>,
}

impl<T, H> Table<T, H> {
    /// An empty table; `kind` names the object in error messages.
    pub const fn new(kind: &'static str) -> Self {
        Table {
            objects: Mutex::new(None),
            kind,
            _handle: PhantomData,
        }
    }

    /// Stores `object` and returns its handle.
    pub fn insert(&self, object: Arc<T>) -> *mut H {
        let id = NEXT.fetch_add(16, Ordering::Relaxed);
        lock(&self.objects)
            .get_or_insert_with(HashMap::new)
            .insert(id, object);
        std::ptr::without_provenance_mut(id)
    }

    /// The object behind `handle`.
    pub fn get(&self, handle: *const H) -> Result<Arc<T>, CError> {
        if handle.is_null() {
            return Err(CError::null(self.kind));
        }
        lock(&self.objects)
            .as_ref()
            .and_then(|objects| objects.get(&handle.addr()).cloned())
            .ok_or_else(|| {
                CError::new(
                    STREAMHUB_INVALID_HANDLE,
                    format!(
                        "{} {handle:p} is not a live handle (freed already?)",
                        self.kind
                    ),
                )
            })
    }

    /// Takes the object behind `handle` out of the table; `None` for NULL or a handle
    /// that is not (any more) in it.
    pub fn remove(&self, handle: *const H) -> Option<Arc<T>> {
        if handle.is_null() {
            return None;
        }
        lock(&self.objects).as_mut()?.remove(&handle.addr())
    }

    /// Takes every object out (at shutdown).
    pub fn drain(&self) -> Vec<Arc<T>> {
        lock(&self.objects)
            .take()
            .map(|objects| objects.into_values().collect())
            .unwrap_or_default()
    }
}

impl<T, H> std::fmt::Debug for Table<T, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
