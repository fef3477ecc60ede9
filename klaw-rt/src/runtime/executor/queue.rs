//! The queue of runnable tasks: `concurrent-queue`'s unbounded lock-free queue (what
//! `async-executor` uses too), or, under the model checker, a loom mutex around a `VecDeque`
//! (the lock-free queue is not loom-instrumented; what the models check is the sleep and wake
//! protocol around it, which sees the queue only through `push`, `pop` and `is_empty`).

use async_task::Runnable;

#[cfg(not(klaw_loom))]
pub(super) struct Queue(crossbeam_utils::CachePadded<concurrent_queue::ConcurrentQueue<Runnable>>);

#[cfg(not(klaw_loom))]
impl Queue {
    pub(super) fn new() -> Self {
        Queue(crossbeam_utils::CachePadded::new(concurrent_queue::ConcurrentQueue::unbounded()))
    }

    pub(super) fn push(&self, runnable: Runnable) {
        // An unbounded queue is never full, and it is closed by nobody.
        if let Err(error) = self.0.push(runnable) {
            drop(error.into_inner());
            unreachable!("the run queue is unbounded and never closed");
        }
    }

    pub(super) fn pop(&self) -> Option<Runnable> {
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
pub(super) struct Queue(crate::sync::Mutex<std::collections::VecDeque<Runnable>>);

#[cfg(klaw_loom)]
impl Queue {
    pub(super) fn new() -> Self {
        Queue(crate::sync::Mutex::new(std::collections::VecDeque::new()))
    }

    pub(super) fn push(&self, runnable: Runnable) {
        self.0.lock().push_back(runnable);
    }

    pub(super) fn pop(&self) -> Option<Runnable> {
        self.0.lock().pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.0.lock().len()
    }
}
