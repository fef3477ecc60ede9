//! The unbounded buffer: a `VecDeque` under a short lock, with the same flags as the ring.
//!
//! The flags sit in one atomic word beside the lock. A push reads them inside the lock, and a
//! receiver sets [`RECEIVERS_WAIT`] before it takes the lock to look again, so the lock orders
//! the two: either the receiver's look sees the value, or the push sees the flag.
#![forbid(unsafe_code)]

use std::collections::VecDeque;

use crate::channel::mpmc::ring::{CLOSED, Pop, Push, RECEIVERS_WAIT};
use crate::sync::{AtomicUsize, Ordering, SpinMutex};

pub(crate) struct List<T> {
    queue: SpinMutex<VecDeque<T>>,
    flags: AtomicUsize,
}

impl<T> List<T> {
    pub(crate) fn new() -> Self {
        List { queue: SpinMutex::new(VecDeque::new()), flags: AtomicUsize::new(0) }
    }

    pub(crate) fn push(&self, value: T) -> Push<T> {
        let mut queue = self.queue.lock();
        let flags = self.flags.load(Ordering::Acquire);
        if flags & CLOSED != 0 {
            return Push::Closed(value);
        }
        queue.push_back(value);
        Push::Pushed { receivers_wait: flags & RECEIVERS_WAIT != 0 }
    }

    pub(crate) fn pop(&self) -> Pop<T> {
        let mut queue = self.queue.lock();
        match queue.pop_front() {
            Some(value) => Pop::Popped { value, senders_wait: false },
            None if self.flags.load(Ordering::Acquire) & CLOSED != 0 => Pop::Closed,
            None => Pop::Empty,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.lock().len()
    }

    /// Sets `flag`; returns the flags before. `CLOSED` is set under the lock, so no push that
    /// read the flags before it completes after it.
    pub(crate) fn set_flag(&self, flag: usize) -> usize {
        if flag == CLOSED {
            let _queue = self.queue.lock();
            return self.flags.fetch_or(flag, Ordering::AcqRel);
        }
        self.flags.fetch_or(flag, Ordering::AcqRel)
    }

    pub(crate) fn clear_flag(&self, flag: usize) {
        self.flags.fetch_and(!flag, Ordering::AcqRel);
    }

    pub(crate) fn flags(&self) -> usize {
        self.flags.load(Ordering::Acquire)
    }
}
