//! The tasks waiting on a channel, in arrival order: receivers for a message, senders for a
//! place. One list per side, each behind its own short lock, touched only on the slow path.
//!
//! Each list owns one flag of the buffer (see `ring`), raised and lowered under the list's lock,
//! so "the flag is up" and "someone waits unnotified" are the same fact. A notified waiter is
//! out of line but keeps its entry until it polls again or is dropped; dropped, it passes the
//! notification on, so a wake-up meant for "there is a message" or "there is a place" is never
//! swallowed by a future that went away.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::task::Waker;

use slab::Slab;

use crate::poller::Poller;
use crate::sync::{AtomicU8, Ordering, SpinMutex};

/// `WaitList::last_poller` before anyone waited: counts as any poller.
const NOBODY_YET: u8 = u8::MAX;

struct Entry {
    /// Taken by the notifier, which wakes it outside the lock.
    waker: Option<Waker>,
    notified: bool,
}

struct Waiters {
    entries: Slab<Entry>,
    /// Keys of the entries still waiting to be notified, oldest first.
    order: VecDeque<usize>,
}

pub(crate) struct WaitList {
    waiters: SpinMutex<Waiters>,
    /// Who polled the last waiter to join this line (`Poller` as a number, or `NOBODY_YET`;
    /// see `yielding`). Written only when it changes, on the slow path.
    last_poller: AtomicU8,
}

/// What a waiter that polls again learns.
pub(crate) enum Polled {
    /// It was notified: its entry is gone; it should look again.
    Notified,
    /// Still in line (its waker is refreshed).
    Waiting,
}

impl WaitList {
    pub(crate) fn new() -> Self {
        WaitList {
            waiters: SpinMutex::new(Waiters { entries: Slab::new(), order: VecDeque::new() }),
            last_poller: AtomicU8::new(NOBODY_YET),
        }
    }

    /// True if the last waiter to join this line was polled by `poller`, or nobody waited yet.
    pub(crate) fn waits_in(&self, poller: Poller) -> bool {
        let last = self.last_poller.load(Ordering::Relaxed);
        last == poller as u8 || last == NOBODY_YET
    }

    /// Adds a waiter, at the front of the line if it had been `first` already (it was notified
    /// and lost the race), and raises the flag under the same lock.
    pub(crate) fn register(&self, waker: &Waker, first: bool, raise: impl FnOnce()) -> usize {
        let fresh = waker.clone(); // before the lock: a waker's clone is the executor's code
        let poller = Poller::here() as u8;
        if self.last_poller.load(Ordering::Relaxed) != poller {
            self.last_poller.store(poller, Ordering::Relaxed);
        }
        let mut waiters = self.waiters.lock();
        let key = waiters.entries.insert(Entry { waker: Some(fresh), notified: false });
        if first {
            waiters.order.push_front(key);
        } else {
            waiters.order.push_back(key);
        }
        raise();
        key
    }

    /// A waiter polls again. Its entry is removed only by itself (here or in `leave`), so it is
    /// still there after the lock is let go to clone a new waker.
    pub(crate) fn poll(&self, key: usize, waker: &Waker) -> Polled {
        let mut waiters = self.waiters.lock();
        let entry = &waiters.entries[key];
        if !entry.notified && entry.waker.as_ref().is_some_and(|old| old.will_wake(waker)) {
            return Polled::Waiting;
        }
        let mut fresh = None;
        if !entry.notified {
            drop(waiters);
            fresh = Some(waker.clone());
            waiters = self.waiters.lock();
            let entry = &mut waiters.entries[key];
            if !entry.notified {
                let replaced = std::mem::replace(&mut entry.waker, fresh.take());
                drop(waiters);
                drop(replaced); // outside the lock
                return Polled::Waiting;
            }
        }
        let removed = waiters.entries.remove(key);
        drop(waiters);
        drop((removed, fresh)); // outside the lock
        Polled::Notified
    }

    /// A waiter leaves (it got what it waited for, or its future was dropped). True if it had
    /// been notified: the caller passes the notification on.
    pub(crate) fn leave(&self, key: usize, lower: impl FnOnce()) -> bool {
        let mut waiters = self.waiters.lock();
        let entry = waiters.entries.remove(key);
        if !entry.notified {
            if let Some(position) = waiters.order.iter().position(|&k| k == key) {
                waiters.order.remove(position);
            }
            if waiters.order.is_empty() {
                lower();
            }
        }
        drop(waiters);
        let notified = entry.notified;
        drop(entry); // its waker, outside the lock
        notified
    }

    /// Notifies the oldest waiter; lowers the flag once nobody is left in line. The waker is for
    /// the caller to wake once it holds no lock.
    pub(crate) fn notify_one(&self, lower: impl FnOnce()) -> Option<Waker> {
        let mut waiters = self.waiters.lock();
        let key = waiters.order.pop_front()?;
        if waiters.order.is_empty() {
            lower();
        }
        let entry = &mut waiters.entries[key];
        entry.notified = true;
        entry.waker.take()
    }

    /// Notifies everyone in line (the channel closed) and lowers the flag.
    pub(crate) fn notify_all(&self, lower: impl FnOnce()) -> Vec<Waker> {
        let mut waiters = self.waiters.lock();
        let Waiters { entries, order } = &mut *waiters;
        let wakers = order
            .drain(..)
            .filter_map(|key| {
                let entry = &mut entries[key];
                entry.notified = true;
                entry.waker.take()
            })
            .collect();
        lower();
        wakers
    }
}
