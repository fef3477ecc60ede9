//! A shared reference to a task's core, wherever the core lives: in an `Arc` of its own, or in
//! the task's allocation (`async-task`'s metadata), kept alive there by a clone of the task's
//! waker. Cancelling through a `CoreRef` also wakes the task, so that its runner drops the body:
//! a core in the task's allocation cannot store the task's waker (it would keep its own
//! allocation alive), so the reference that cancels must hold one.
#![allow(unsafe_code)]

use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::Waker;

use crate::task::CancelReason;
use crate::task::core::{Header, TaskHeader};

/// What keeps the core of a [`CoreRef`] alive.
#[derive(Clone)]
enum Keep {
    /// The core is in this `Arc`. Its runner stores its waker in the header.
    Shared(
        #[allow(dead_code, reason = "held, never read: it keeps the core alive")]
        Arc<dyn TaskHeader>,
    ),
    /// The core is the metadata of this waker's task. Waking it schedules the task.
    InTask(Waker),
}

/// A shared reference to a task's core (`D` is the core's type, or a trait object of it).
pub(crate) struct CoreRef<D: ?Sized> {
    core: NonNull<D>,
    keep: Keep,
}

/// A shared reference to a task of any output type.
pub(crate) type HeaderRef = CoreRef<dyn TaskHeader>;

// SAFETY: a `CoreRef` gives shared access to `D` from any thread and keeps it alive, like
// `Arc<D>`, which is `Send` and `Sync` when `D` is both. Both kinds of `Keep` are `Send + Sync`.
unsafe impl<D: ?Sized + Send + Sync> Send for CoreRef<D> {}
// SAFETY: as above.
unsafe impl<D: ?Sized + Send + Sync> Sync for CoreRef<D> {}

impl<D: TaskHeader + 'static> CoreRef<D> {
    /// A reference to a core in an `Arc` of its own.
    pub(crate) fn shared(core: Arc<D>) -> Self {
        let pointer = NonNull::from(&*core);
        CoreRef { core: pointer, keep: Keep::Shared(core) }
    }
}

impl HeaderRef {
    /// A reference to a task of any output type whose core is in this `Arc`.
    pub(crate) fn shared_dyn(core: Arc<dyn TaskHeader>) -> Self {
        let pointer = NonNull::from(&*core);
        CoreRef { core: pointer, keep: Keep::Shared(core) }
    }
}

impl<D: ?Sized> CoreRef<D> {
    /// A reference to `core`, the metadata of the task whose waker is `waker`.
    ///
    /// # Safety
    /// `core` must be the metadata of `waker`'s task: the waker keeps it alive.
    pub(crate) unsafe fn in_task(core: &D, waker: Waker) -> Self {
        CoreRef { core: NonNull::from(core), keep: Keep::InTask(waker) }
    }

    /// The same core, seen as `U` (a trait object of it, or a part of it).
    pub(crate) fn map<U: ?Sized>(self, part: for<'a> fn(&'a D) -> &'a U) -> CoreRef<U> {
        // `part` returns a reference that lives as long as its argument's: into the core (or
        // into something that outlives it), so the same `keep` keeps it alive.
        let core = NonNull::from(part(&self));
        CoreRef { core, keep: self.keep }
    }
}

impl<D: ?Sized + TaskHeader> CoreRef<D> {
    /// This task of any output type.
    pub(crate) fn into_header_ref(self) -> HeaderRef
    where
        D: Sized + 'static,
    {
        self.map(|core| core as &dyn TaskHeader)
    }

    pub(crate) fn header(&self) -> &Header {
        (**self).header()
    }

    /// Cancels the task if its outcome is still pending, and wakes it so its runner drops the
    /// body (waking a task that has not started, or has ended, does nothing). True if this call
    /// decided the outcome.
    pub(crate) fn cancel(&self, reason: CancelReason) -> bool {
        let decided = self.header().cancel(reason);
        if decided {
            self.wake_runner();
        }
        decided
    }

    /// A shield in the task's body ended; wakes the task if a cancellation now stops it.
    pub(crate) fn shield_exit(&self) {
        if self.header().shield_exit() {
            self.wake_runner();
        }
    }

    /// Wakes a task whose core is in its allocation (the header wakes one that stored a waker).
    fn wake_runner(&self) {
        if let Keep::InTask(waker) = &self.keep {
            waker.wake_by_ref();
        }
    }
}

impl<D: ?Sized> Deref for CoreRef<D> {
    type Target = D;

    fn deref(&self) -> &D {
        // SAFETY: `keep` keeps the core alive as long as this reference (see `Keep`), and a core
        // is only ever reached through shared references once it is shared.
        unsafe { self.core.as_ref() }
    }
}

impl<D: ?Sized> Clone for CoreRef<D> {
    fn clone(&self) -> Self {
        CoreRef { core: self.core, keep: self.keep.clone() }
    }
}

impl<D: ?Sized + TaskHeader> fmt::Debug for CoreRef<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("id", &self.header().id()).finish_non_exhaustive()
    }
}
