//! `SetOnce`: a value written at most once and read without a lock, through the loom shim.
#![allow(unsafe_code)]

use std::ptr;

use super::{AtomicPtr, Ordering};

/// Like `std::sync::OnceLock::set`/`get`, but on [`AtomicPtr`](super::AtomicPtr), so loom sees
/// every access. The first `set` wins; later ones hand their value back.
pub(crate) struct SetOnce<T> {
    value: AtomicPtr<T>,
}

impl<T> SetOnce<T> {
    pub(crate) fn new() -> Self {
        Self { value: AtomicPtr::new(ptr::null_mut()) }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        let value = self.value.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Box::into_raw` in `set` and was published with
        // release; it is freed only in `drop`, which cannot run while `&self` lives.
        unsafe { value.as_ref() }
    }

    pub(crate) fn is_set(&self) -> bool {
        !self.value.load(Ordering::Acquire).is_null()
    }

    /// Stores `value` unless one is stored already; `Err(value)` then.
    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        let boxed = Box::into_raw(Box::new(value));
        match self.value.compare_exchange(
            ptr::null_mut(),
            boxed,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            // SAFETY: `boxed` came from `Box::into_raw` above and was never shared.
            Err(_) => Err(*unsafe { Box::from_raw(boxed) }),
        }
    }
}

impl<T> Default for SetOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for SetOnce<T> {
    fn drop(&mut self) {
        let value = self.value.load(Ordering::Acquire);
        if !value.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` in `set`, and `&mut self` means no
            // reader is left.
            drop(unsafe { Box::from_raw(value) });
        }
    }
}

// SAFETY: a `SetOnce<T>` owns at most one `T`, moved in by `set` (so `T: Send` to cross threads)
// and shared by `get` (so `T: Sync` to be read from several).
unsafe impl<T: Send + Sync> Sync for SetOnce<T> {}
// SAFETY: as above: the owned `T` may be dropped on another thread.
unsafe impl<T: Send> Send for SetOnce<T> {}
