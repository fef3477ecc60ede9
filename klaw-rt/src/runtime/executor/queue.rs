//! The queue of runnable tasks: `concurrent-queue`'s unbounded lock-free queue (what
//! `async-executor` uses too), or, under the model checker, a loom mutex around a `VecDeque`
//! (the lock-free queue is not loom-instrumented; what the models check is the sleep and wake
//! protocol around it, which sees the queue only through `push`, `pop` and `is_empty`).
//!
//! Tasks of every metadata type share the queue: an [`Entry`] is a task's raw pointer and the
//! two functions that know its type.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use async_task::Runnable;

/// A runnable task whose metadata type is forgotten: `Runnable::into_raw`, and how to run or
/// drop it.
pub(super) struct Entry {
    task: NonNull<()>,
    vtable: &'static EntryVTable,
}

struct EntryVTable {
    run: unsafe fn(NonNull<()>) -> bool,
    drop: unsafe fn(NonNull<()>),
}

struct VTableOf<M>(PhantomData<M>);

impl<M: Send + Sync + 'static> VTableOf<M> {
    const VTABLE: EntryVTable = EntryVTable { run: run_raw::<M>, drop: drop_raw::<M> };
}

/// # Safety
/// `task` must come from `Runnable::<M>::into_raw`, and be used this once.
unsafe fn run_raw<M>(task: NonNull<()>) -> bool {
    // SAFETY: as the caller promised.
    unsafe { Runnable::<M>::from_raw(task) }.run()
}

/// # Safety
/// As for [`run_raw`].
unsafe fn drop_raw<M>(task: NonNull<()>) {
    // SAFETY: as the caller promised.
    drop(unsafe { Runnable::<M>::from_raw(task) });
}

// SAFETY: an entry owns a `Runnable<M>` with `M: Send + Sync` (see `Entry::new`), which is `Send`.
unsafe impl Send for Entry {}

impl Entry {
    pub(super) fn new<M: Send + Sync + 'static>(runnable: Runnable<M>) -> Self {
        Entry { task: runnable.into_raw(), vtable: &VTableOf::<M>::VTABLE }
    }

    /// Runs the task (see `Runnable::run`).
    pub(super) fn run(self) -> bool {
        let entry = ManuallyDrop::new(self);
        // SAFETY: the pointer came from `into_raw` of a `Runnable<M>` whose vtable this is, and
        // `ManuallyDrop` keeps `Drop` from using it a second time.
        unsafe { (entry.vtable.run)(entry.task) }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // SAFETY: as in `run`; an entry that is run is never dropped.
        unsafe { (self.vtable.drop)(self.task) }
    }
}

#[cfg(not(klaw_loom))]
pub(super) struct Queue(crossbeam_utils::CachePadded<concurrent_queue::ConcurrentQueue<Entry>>);

#[cfg(not(klaw_loom))]
impl Queue {
    pub(super) fn new() -> Self {
        Queue(crossbeam_utils::CachePadded::new(concurrent_queue::ConcurrentQueue::unbounded()))
    }

    pub(super) fn push(&self, entry: Entry) {
        // An unbounded queue is never full, and it is closed by nobody.
        if let Err(error) = self.0.push(entry) {
            drop(error.into_inner());
            unreachable!("the run queue is unbounded and never closed");
        }
    }

    pub(super) fn pop(&self) -> Option<Entry> {
        self.0.pop().ok()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(klaw_loom)]
pub(super) struct Queue(crate::sync::Mutex<std::collections::VecDeque<Entry>>);

#[cfg(klaw_loom)]
impl Queue {
    pub(super) fn new() -> Self {
        Queue(crate::sync::Mutex::new(std::collections::VecDeque::new()))
    }

    pub(super) fn push(&self, entry: Entry) {
        self.0.lock().push_back(entry);
    }

    pub(super) fn pop(&self) -> Option<Entry> {
        self.0.lock().pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.0.lock().len()
    }
}
