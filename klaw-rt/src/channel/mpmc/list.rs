//! The growing buffer: a `VecDeque` under a short lock, with the same flags as the ring. It
//! holds an unbounded channel, and a bounded one whose capacity is too large to allocate up
//! front: its memory follows what is queued (and shrinks back when the queue empties).
//!
//! The flags sit in atomic words beside the lock, `flags` for the tail's, `head_flags` for
//! [`SENDERS_WAIT`]. A push and a pop read them inside the lock, and a waiting receiver (or
//! sender) sets its flag before it takes the lock to look again, so the lock orders the two:
//! either the look sees the value (or the place), or the push (or pop) sees the flag.
#![forbid(unsafe_code)]

use std::collections::VecDeque;

use crate::channel::mpmc::ring::{CLOSED, PERMITS_OUT, Pop, Push, RECEIVERS_WAIT, SENDERS_WAIT};
use crate::sync::{AtomicUsize, Ordering, SpinMutex};

pub(crate) struct List<T> {
    queue: SpinMutex<VecDeque<T>>,
    flags: AtomicUsize,
    head_flags: AtomicUsize,
    capacity: Option<usize>,
}

impl<T> List<T> {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        List {
            queue: SpinMutex::new(VecDeque::new()),
            flags: AtomicUsize::new(0),
            head_flags: AtomicUsize::new(0),
            capacity,
        }
    }

    /// As the ring's: `counted` when the caller holds the permit lock and has counted it.
    pub(crate) fn push(&self, value: T, counted: bool) -> Push<T> {
        let mut queue = self.queue.lock();
        let flags = self.flags.load(Ordering::Acquire);
        if flags & CLOSED != 0 {
            return Push::Closed(value);
        }
        if flags & PERMITS_OUT != 0 && !counted {
            return Push::PermitsOut(value);
        }
        if self.capacity.is_some_and(|capacity| queue.len() >= capacity) {
            return Push::Full(value);
        }
        queue.push_back(value);
        Push::Pushed { receivers_wait: flags & RECEIVERS_WAIT != 0 }
    }

    pub(crate) fn pop(&self) -> Pop<T> {
        let mut queue = self.queue.lock();
        match queue.pop_front() {
            Some(value) => {
                let senders_wait = self.head_flags.load(Ordering::Acquire) & SENDERS_WAIT != 0;
                crate::channel::give_back_room(&mut queue);
                Pop::Popped { value, senders_wait }
            }
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

    pub(crate) fn set_head_flag(&self, flag: usize) {
        self.head_flags.fetch_or(flag, Ordering::AcqRel);
    }

    pub(crate) fn clear_head_flag(&self, flag: usize) {
        self.head_flags.fetch_and(!flag, Ordering::AcqRel);
    }

    pub(crate) fn head_flags(&self) -> usize {
        self.head_flags.load(Ordering::Acquire)
    }
}
