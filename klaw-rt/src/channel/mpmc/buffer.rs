//! Where a channel keeps its messages: the lock-free [`Ring`] when bounded by at most
//! [`RING_MAX_CAPACITY`], the growing [`List`] otherwise (unbounded, or a capacity too large to
//! allocate up front). Both speak the same flag protocol (see `ring`), so the channel above is
//! written once.
#![forbid(unsafe_code)]

use crate::channel::mpmc::list::List;
use crate::channel::mpmc::ring::{CLOSED, Pop, Push, Ring};

#[allow(
    clippy::large_enum_variant,
    reason = "one per channel, inside its `Arc`; boxing the ring would add a pointer chase to every send"
)]
pub(crate) enum Buffer<T> {
    Ring(Ring<T>),
    List(List<T>),
}

/// The largest capacity whose slots are allocated up front, in the ring. Above it, the channel's
/// memory follows what is queued: a `bounded(100_000_000)` costs nothing until it fills.
pub(crate) const RING_MAX_CAPACITY: usize = 4096;

impl<T> Buffer<T> {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        match capacity {
            Some(capacity) if capacity <= RING_MAX_CAPACITY => Buffer::Ring(Ring::new(capacity)),
            capacity => Buffer::List(List::new(capacity)),
        }
    }

    /// The growing buffer, bounded by `capacity` however small it is.
    pub(crate) fn growing(capacity: usize) -> Self {
        Buffer::List(List::new(Some(capacity)))
    }

    /// Pushes `value`; `counted` when the caller holds the permit lock and has counted it.
    #[inline(always)]
    pub(crate) fn push(&self, value: T, counted: bool) -> Push<T> {
        match self {
            Buffer::Ring(ring) => ring.push(value, counted),
            Buffer::List(list) => list.push(value, counted),
        }
    }

    /// True if a push would find the buffer full, as far as the pushing side alone can tell
    /// (see `Ring::looks_full`); the growing buffer never says so.
    #[inline]
    pub(crate) fn looks_full(&self) -> bool {
        match self {
            Buffer::Ring(ring) => ring.looks_full(),
            Buffer::List(_) => false,
        }
    }

    #[inline(always)]
    pub(crate) fn pop(&self) -> Pop<T> {
        match self {
            Buffer::Ring(ring) => ring.pop(),
            Buffer::List(list) => list.pop(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Buffer::Ring(ring) => ring.len(),
            Buffer::List(list) => list.len(),
        }
    }

    /// Sets a flag of the tail word (`CLOSED`, `RECEIVERS_WAIT`, `PERMITS_OUT`); the word before.
    pub(crate) fn set_tail_flag(&self, flag: usize) -> usize {
        match self {
            Buffer::Ring(ring) => ring.set_tail_flag(flag),
            Buffer::List(list) => list.set_flag(flag),
        }
    }

    pub(crate) fn clear_tail_flag(&self, flag: usize) {
        match self {
            Buffer::Ring(ring) => ring.clear_tail_flag(flag),
            Buffer::List(list) => list.clear_flag(flag),
        }
    }

    /// Sets a flag of the head word (`SENDERS_WAIT`).
    pub(crate) fn set_head_flag(&self, flag: usize) {
        match self {
            Buffer::Ring(ring) => ring.set_head_flag(flag),
            Buffer::List(list) => list.set_head_flag(flag),
        }
    }

    pub(crate) fn clear_head_flag(&self, flag: usize) {
        match self {
            Buffer::Ring(ring) => ring.clear_head_flag(flag),
            Buffer::List(list) => list.clear_head_flag(flag),
        }
    }

    pub(crate) fn head_flags(&self) -> usize {
        match self {
            Buffer::Ring(ring) => ring.head_flags(),
            Buffer::List(list) => list.head_flags(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        let flags = match self {
            Buffer::Ring(ring) => ring.tail_flags(),
            Buffer::List(list) => list.flags(),
        };
        flags & CLOSED != 0
    }

    /// Closes the buffer: no push succeeds from now on. True if this call closed it.
    pub(crate) fn close(&self) -> bool {
        self.set_tail_flag(CLOSED) & CLOSED == 0
    }
}
