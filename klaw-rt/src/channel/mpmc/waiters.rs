//! The tasks waiting on a channel, in arrival order: receivers for a message, senders for a
//! place. One list per side, each behind its own short lock, touched only on the slow path.
//!
//! Each list owns one flag of the buffer (see `ring`), raised and lowered under the list's lock,
//! so "the flag is up" and "someone waits unnotified" are the same fact. A notified waiter is
//! out of line but keeps its entry until it polls again or is dropped; dropped, it passes the
//! notification on, so a wake-up meant for "there is a message" or "there is a place" is never
//! swallowed by a future that went away.
//!
//! A waiter kept in a handle (a `Receiver`'s `Stream`, a `Sender`'s `Sink`) *lingers*: its
//! handle may never be polled again. A notification wakes every lingering waiter at the front of
//! the line and goes on to the first that does not linger, so a stream or sink left idle never
//! keeps a message or a place from a receive or send waiting behind it.
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
    /// When it first joined the line (see [`Arrival`]).
    arrival: Arrival,
    notified: bool,
    /// Kept in a handle rather than a future (see the module's doc).
    lingers: bool,
}

/// When a waiter first joined a line: a number that only goes up. A waiter that was notified and
/// lost the race joins again with the number it had, so the line stays in the order its waiters
/// first came, however many of them lose a race.
pub(crate) type Arrival = u64;

struct Waiters {
    entries: Slab<Entry>,
    /// Keys of the entries still waiting to be notified, by arrival, oldest first.
    order: VecDeque<usize>,
    /// The next newcomer's arrival.
    next_arrival: Arrival,
}

pub(crate) struct WaitList {
    waiters: SpinMutex<Waiters>,
    /// Who polled the last waiter to join this line (`Poller` as a number, or `NOBODY_YET`;
    /// see `yielding`). Written only when it changes, on the slow path.
    last_poller: AtomicU8,
}

/// The wakers a notification took, to wake once no lock is held: the waiter it was for, and
/// the lingering ones woken on the way to it.
#[derive(Default)]
pub(crate) struct Woken {
    first: Option<Waker>,
    lingering: Vec<Waker>,
}

impl Woken {
    pub(crate) fn wake(self) {
        if let Some(waker) = self.first {
            waker.wake();
        }
        self.lingering.into_iter().for_each(Waker::wake);
    }
}

/// What a waiter that polls again learns.
pub(crate) enum Polled {
    /// It was notified: its entry is gone; it should look again, and if it must wait again,
    /// join with this arrival.
    Notified(Arrival),
    /// Still in line (its waker is refreshed).
    Waiting,
}

impl WaitList {
    pub(crate) fn new() -> Self {
        WaitList {
            waiters: SpinMutex::new(Waiters {
                entries: Slab::new(),
                order: VecDeque::new(),
                next_arrival: 0,
            }),
            last_poller: AtomicU8::new(NOBODY_YET),
        }
    }

    /// True if the last waiter to join this line was polled by `poller`, or nobody waited yet.
    pub(crate) fn waits_in(&self, poller: Poller) -> bool {
        let last = self.last_poller.load(Ordering::Relaxed);
        last == poller as u8 || last == NOBODY_YET
    }

    /// Adds a waiter, at the back of the line, or, if it `rejoins` (it was notified and lost the
    /// race), where its first arrival puts it: ahead of everyone who came after it, so at the
    /// front unless another that came before it lost a race too. Raises the flag under the same
    /// lock. `lingers`: it is kept in a handle (see the module's doc).
    pub(crate) fn register(
        &self,
        waker: &Waker,
        rejoins: Option<Arrival>,
        lingers: bool,
        raise: impl FnOnce(),
    ) -> usize {
        let fresh = waker.clone(); // before the lock: a waker's clone is the executor's code
        let poller = Poller::here() as u8;
        if self.last_poller.load(Ordering::Relaxed) != poller {
            self.last_poller.store(poller, Ordering::Relaxed);
        }
        let mut waiters = self.waiters.lock();
        let Waiters { entries, order, next_arrival } = &mut *waiters;
        let arrival = rejoins.unwrap_or_else(|| {
            *next_arrival += 1;
            *next_arrival
        });
        let key = entries.insert(Entry { waker: Some(fresh), arrival, notified: false, lingers });
        if rejoins.is_some() {
            // Those who lost a race wait near the front: the walk is short.
            let at =
                order.iter().position(|&k| entries[k].arrival > arrival).unwrap_or(order.len());
            order.insert(at, key);
        } else {
            order.push_back(key);
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
        let arrival = removed.arrival;
        drop((removed, fresh)); // outside the lock
        Polled::Notified(arrival)
    }

    /// A waiter leaves (it got what it waited for, or its future was dropped). True if it had
    /// been notified and the notification was its alone (it does not linger): the caller passes
    /// it on.
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
        let pass_on = entry.notified && !entry.lingers;
        drop(entry); // its waker, outside the lock
        pass_on
    }

    /// Notifies the oldest waiter that does not linger, and every lingering one before it;
    /// lowers the flag once nobody is left in line. The wakers are for the caller to wake once
    /// it holds no lock.
    pub(crate) fn notify_one(&self, lower: impl FnOnce()) -> Woken {
        let mut woken = Woken::default();
        let mut waiters = self.waiters.lock();
        let Waiters { entries, order, .. } = &mut *waiters;
        let mut popped = false;
        while let Some(key) = order.pop_front() {
            popped = true;
            let entry = &mut entries[key];
            entry.notified = true;
            if !entry.lingers {
                woken.first = entry.waker.take();
                break;
            }
            woken.lingering.extend(entry.waker.take());
        }
        if popped && order.is_empty() {
            lower();
        }
        woken
    }

    /// Notifies everyone in line (the channel closed) and lowers the flag.
    pub(crate) fn notify_all(&self, lower: impl FnOnce()) -> Vec<Waker> {
        let mut waiters = self.waiters.lock();
        let Waiters { entries, order, .. } = &mut *waiters;
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
