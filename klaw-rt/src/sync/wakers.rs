//! The wakers of the futures waiting on a `broadcast`, `watch` or `oneshot` channel (and on a
//! cancel token, `cancel::Cancelled`, on `klaw::sync`'s `Event` and `Barrier`, and on a paused
//! clock's `advance`), kept inside the state they wait on (so "is there something to take" and
//! "register me" are one critical section), and never cloned, dropped or woken while that
//! state's lock is held: an executor's waker may run code that comes back into the channel,
//! token, primitive or clock, and would then deadlock on its lock.
//!
//! So a waker is cloned before the lock is taken, and every operation that removes wakers hands
//! them back for the caller to drop or wake once it has let the lock go. [`poll_or_wait`] is the
//! whole protocol of a waiting future.
#![forbid(unsafe_code)]

use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::{Mutex, MutexGuard};

/// The wakers of one kind of waiter (receivers waiting for a message, senders waiting for the
/// channel to close). Every [`take_all`](Self::take_all) starts a new epoch, so a waiter's key
/// is valid only in the epoch it was taken in.
#[derive(Default)]
pub(crate) struct WakerSet {
    wakers: Slab<Waker>,
    epoch: u64,
}

/// A waiting future's place in a [`WakerSet`], if it has one.
#[derive(Debug, Default)]
pub(crate) struct Ticket(Option<(usize, u64)>);

impl Ticket {
    /// True if it was given a place (which may have been woken since): a future dropped with
    /// one lets go of its waker by [`leave`].
    fn is_waiting(&self) -> bool {
        self.0.is_some()
    }
}

impl WakerSet {
    /// True if `ticket` holds a waker of this epoch that wakes the same task as `waker`.
    fn holds(&self, ticket: &Ticket, waker: &Waker) -> bool {
        match ticket.0 {
            Some((key, epoch)) if epoch == self.epoch => self.wakers[key].will_wake(waker),
            _ => false,
        }
    }

    /// Stores `fresh` (cloned before the lock was taken) for `ticket`; gives back the waker it
    /// replaces, to drop after the lock.
    fn register(&mut self, ticket: &mut Ticket, fresh: Waker) -> Option<Waker> {
        match ticket.0 {
            Some((key, epoch)) if epoch == self.epoch => {
                Some(std::mem::replace(&mut self.wakers[key], fresh))
            }
            _ => {
                ticket.0 = Some((self.wakers.insert(fresh), self.epoch));
                None
            }
        }
    }

    /// Takes `ticket`'s waker out, if it is still here; to drop after the lock.
    pub(crate) fn remove(&mut self, ticket: &mut Ticket) -> Option<Waker> {
        match ticket.0.take() {
            Some((key, epoch)) if epoch == self.epoch => self.wakers.try_remove(key),
            _ => None,
        }
    }

    /// Takes every waker out and starts a new epoch; to wake after the lock.
    pub(crate) fn take_all(&mut self) -> Wake {
        if self.wakers.is_empty() {
            return Wake(Vec::new());
        }
        self.epoch += 1;
        Wake(self.wakers.drain().collect())
    }
}

/// Wakers taken out of a [`WakerSet`] under its lock: wake them once the lock is let go.
#[must_use = "wake them once the lock is let go"]
#[derive(Default)]
pub(crate) struct Wake(Vec<Waker>);

impl Wake {
    pub(crate) fn wake(self) {
        for waker in self.0 {
            waker.wake();
        }
    }
}

/// Polls a waiting future: `check` looks for what it waits for, under the lock; if there is
/// nothing yet, the task's waker is registered in `set` for `ticket`, and a check made again
/// under the same lock as the registration, so no wake-up falls between the two. The waker is
/// cloned only when the one registered would not wake this task, and outside the lock; whatever
/// `check` returns, and any waker replaced or removed, is dropped outside it.
pub(crate) fn poll_or_wait<S, R>(
    lock: &Mutex<S>,
    set: impl Fn(&mut S) -> &mut WakerSet,
    ticket: &mut Ticket,
    cx: &Context<'_>,
    mut check: impl FnMut(&mut S) -> Option<R>,
) -> Poll<R> {
    let mut state = lock.lock();
    if let Some(ready) = check(&mut state) {
        return finish(state, &set, ticket, ready);
    }
    if set(&mut state).holds(ticket, cx.waker()) {
        return Poll::Pending;
    }
    drop(state);
    let fresh = cx.waker().clone();
    let mut state = lock.lock();
    if let Some(ready) = check(&mut state) {
        let polled = finish(state, &set, ticket, ready);
        drop(fresh);
        return polled;
    }
    let replaced = set(&mut state).register(ticket, fresh);
    drop(state);
    drop(replaced);
    Poll::Pending
}

/// A waiting future went away: takes its waker out of `set` (in the state `lock` guards), if it
/// has a place there, and drops it after the lock. A future that never waited, or whose wait
/// completed, holds no place and takes no lock.
pub(crate) fn leave<S>(
    lock: &Mutex<S>,
    set: impl FnOnce(&mut S) -> &mut WakerSet,
    ticket: &mut Ticket,
) {
    if ticket.is_waiting() {
        let removed = set(&mut lock.lock()).remove(ticket);
        drop(removed);
    }
}

fn finish<S, R>(
    mut state: MutexGuard<'_, S>,
    set: &impl Fn(&mut S) -> &mut WakerSet,
    ticket: &mut Ticket,
    ready: R,
) -> Poll<R> {
    let removed = set(&mut state).remove(ticket);
    drop(state);
    drop(removed);
    Poll::Ready(ready)
}
