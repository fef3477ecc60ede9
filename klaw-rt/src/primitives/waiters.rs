//! What the hand-written primitives ([`Semaphore`](super::Semaphore), [`Notify`](super::Notify))
//! share: a FIFO queue of waiting futures, and the wakers taken out of it under the lock and
//! woken after it.

use std::collections::BTreeMap;
use std::collections::btree_map::OccupiedEntry;
use std::task::Waker;

/// Waiting futures in the order they arrived. Each gets a ticket, one more than the last, so the
/// first in line has the smallest ticket, and a cancelled one leaves from the middle of the line
/// in O(log n).
#[derive(Debug)]
pub(super) struct Queue<W> {
    waiting: BTreeMap<u64, W>,
    next: u64,
}

impl<W> Queue<W> {
    pub(super) const fn new() -> Self {
        Queue { waiting: BTreeMap::new(), next: 0 }
    }

    /// Puts `waiter` at the end of the line; its ticket.
    pub(super) fn push(&mut self, waiter: W) -> u64 {
        let ticket = self.next;
        self.next += 1;
        self.waiting.insert(ticket, waiter);
        ticket
    }

    pub(super) fn get_mut(&mut self, ticket: u64) -> Option<&mut W> {
        self.waiting.get_mut(&ticket)
    }

    pub(super) fn remove(&mut self, ticket: u64) -> Option<W> {
        self.waiting.remove(&ticket)
    }

    /// The first in line.
    pub(super) fn first(&mut self) -> Option<OccupiedEntry<'_, u64, W>> {
        self.waiting.first_entry()
    }

    pub(super) fn pop_first(&mut self) -> Option<(u64, W)> {
        self.waiting.pop_first()
    }

    /// The last in line: the one that joined it most recently.
    pub(super) fn pop_last(&mut self) -> Option<(u64, W)> {
        self.waiting.pop_last()
    }

    /// Empties the line, giving what waited in it.
    pub(super) fn take_all(&mut self) -> BTreeMap<u64, W> {
        std::mem::take(&mut self.waiting)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }
}

/// Wakers taken out under a lock, to be woken once it is released: [`Wake::wake`] after the
/// guard's `drop`. (Dropping a `Wake` drops its wakers, which must not happen under the lock
/// either.)
#[must_use = "the wakers must be woken after the lock is released"]
#[derive(Debug, Default)]
pub(super) struct Wake(Vec<Waker>);

impl Wake {
    pub(super) fn push(&mut self, waker: Option<Waker>) {
        self.0.extend(waker);
    }

    pub(super) fn wake(self) {
        for waker in self.0 {
            waker.wake();
        }
    }
}
