//! How a worker with nothing to run waits for work ([`WaitForWork`]: registered in `sleepers`,
//! with the last look at the queue that makes a lost wake-up impossible, see the executor's
//! module doc), and its share of `searching` once a schedule woke it ([`Searching`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::State;
use super::own::Watch;
use crate::sync::Ordering;

/// Resolves when a task may be runnable: the worker was woken by a schedule (`true`: it now
/// counts as searching), or the queue was not empty when it last looked (`false`). A worker
/// inside [`Executor::run`] (`watch`) is not counted in `active` while it sleeps, and keeps the
/// watch over the others' own queues if another worker is active and nobody keeps it.
pub(super) struct WaitForWork<'a, 'w> {
    pub(super) state: &'a State,
    /// Set while registered in `sleepers`.
    pub(super) ticket: Option<u64>,
    /// The worker has been busy ([`Pace`]): before it sleeps, it yields its thread once and
    /// then looks at the queue again.
    pub(super) yield_first: bool,
    /// The worker's watch, if it is inside [`Executor::run`].
    pub(super) watch: Option<&'a mut Watch<'w>>,
    /// Not counted in `active` (since it registered as a sleeper).
    pub(super) asleep: bool,
    /// Holds the watch (`watching`).
    pub(super) armed: bool,
}

impl Future for WaitForWork<'_, '_> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let state = self.state;
        // A waker's clone and drop are its executor's code: never under the lock. So the clone a
        // registration (or a new waker) needs is made first; a worker polled again with the
        // same waker drops it unused, after the lock. (It is polled only to sleep or wake.)
        let mut fresh = Some(cx.waker().clone());
        let mut replaced = None;
        let mut sleepers = state.sleepers.lock();
        match self.ticket {
            Some(ticket) => match sleepers.waiting.iter_mut().find(|(t, _)| *t == ticket) {
                // Registered, and taken off the list since: a schedule woke us.
                None => {
                    self.ticket = None;
                    drop(sleepers);
                    drop(fresh);
                    return self.wake(true);
                }
                Some((_, waker)) if !waker.will_wake(cx.waker()) => {
                    replaced = Some(std::mem::replace(waker, fresh.take().expect("cloned above")));
                }
                Some(_) => {}
            },
            None => {
                let ticket = sleepers.next_ticket;
                sleepers.next_ticket += 1;
                sleepers.waiting.push((ticket, fresh.take().expect("cloned above")));
                state.sleeping.store(sleepers.waiting.len(), Ordering::SeqCst);
                self.ticket = Some(ticket);
            }
        }
        drop(sleepers);
        drop((replaced, fresh)); // a waker is never dropped under the lock
        if self.watch.is_some() && !self.asleep {
            // After `sleeping` is published: a worker that pushes to its own queue after this
            // sees us asleep, and calls a watcher; one that was active before is counted below.
            self.asleep = true;
            state.active.fetch_sub(1, Ordering::SeqCst);
        }
        // The last look, after `sleeping` was published: a task pushed before it is seen here,
        // one pushed after it sees us in `sleeping`. A busy worker yields and looks once more;
        // a task pushed during the yield may have taken it off the list to wake it, which
        // `unregister` tells.
        loop {
            if !state.queue.is_empty() || state.closed.load(Ordering::SeqCst) {
                // Taken off the list meanwhile: woken, so counted as searching.
                let woken = !self.unregister();
                return self.wake(woken);
            }
            if !std::mem::take(&mut self.yield_first) {
                break;
            }
            crate::sync::yield_thread();
        }
        self.keep_watch(cx)
    }
}

impl WaitForWork<'_, '_> {
    /// A worker inside [`Executor::run`] about to sleep: if another worker is active and nobody
    /// keeps the watch, it takes it, and while it holds it, it looks at the others' own queues
    /// each time its timer fires. It stands down once no worker is active (then nothing can be
    /// left behind a worker: one empties its own queue before it sleeps), and looks at `active`
    /// again after it said so, against a worker that became active meanwhile and saw the watch
    /// still kept. Pending unless a look took tasks, which are then in this worker's own queue.
    fn keep_watch(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let state = self.state;
        let Some(watch) = self.watch.as_deref_mut() else { return Poll::Pending };
        if !self.armed
            && state.active.load(Ordering::SeqCst) > 0
            && state
                .watching
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.armed = true;
            watch.arm();
        }
        while self.armed && watch.poll_timer(cx) {
            if watch.look(true) > 0 {
                let woken = !self.unregister();
                return self.wake(woken);
            }
            if state.active.load(Ordering::SeqCst) == 0 {
                state.watching.store(false, Ordering::SeqCst);
                self.armed = state.active.load(Ordering::SeqCst) > 0
                    && state
                        .watching
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
            }
            if self.armed {
                watch.start_timer();
            }
        }
        Poll::Pending
    }

    /// Resolves: the worker is active again, and gives the watch up (see [`Self::leave`]).
    fn wake(&mut self, woken: bool) -> Poll<bool> {
        self.leave();
        Poll::Ready(woken)
    }

    /// Counts the worker active again, and gives the watch up if it held it: it is stored
    /// before `active` and its own queue are read, and if another worker is active or this one
    /// took tasks into its own queue, a sleeper is woken to keep the watch (against a worker
    /// that pushed while the watch was still kept, and so called no watcher).
    fn leave(&mut self) {
        let state = self.state;
        if std::mem::take(&mut self.asleep) {
            state.active.fetch_add(1, Ordering::SeqCst);
        }
        if std::mem::take(&mut self.armed) {
            state.watching.store(false, Ordering::SeqCst);
            let own_queued = self.watch.as_deref().is_some_and(|watch| watch.worker.len() > 0);
            if (own_queued || state.active.load(Ordering::SeqCst) > 1)
                && state.sleeping.load(Ordering::SeqCst) > 0
            {
                state.wake_one();
            }
        }
    }

    /// Leaves the list. False if we were no longer on it: a schedule picked us to wake.
    fn unregister(&mut self) -> bool {
        let Some(ticket) = self.ticket.take() else { return true };
        let removed = {
            let mut sleepers = self.state.sleepers.lock();
            let position = sleepers.waiting.iter().position(|(t, _)| *t == ticket);
            let removed = position.map(|index| sleepers.waiting.swap_remove(index));
            self.state.sleeping.store(sleepers.waiting.len(), Ordering::SeqCst);
            removed
        };
        let was_listed = removed.is_some();
        drop(removed); // outside the lock
        was_listed
    }
}

impl Drop for WaitForWork<'_, '_> {
    fn drop(&mut self) {
        // Picked to wake but dropped before running anything (the worker is stopping): it
        // stops searching and passes the wake-up on, or a queued task could wait for a sleeper
        // that already left. A watch it kept is handed on the same way.
        let woken = !self.unregister();
        self.leave();
        if woken {
            drop(Searching { state: self.state, counted: true });
        }
    }
}

/// A worker's share of `searching`: counted from the moment a schedule woke it until it runs a
/// task or goes back to sleep. Dropped while counted (its `tick` was dropped), it stops searching
/// and passes the search on.
pub(super) struct Searching<'a> {
    pub(super) state: &'a State,
    pub(super) counted: bool,
}

impl Searching<'_> {
    /// Stops searching; true if it was.
    pub(super) fn stop(&mut self) -> bool {
        if !std::mem::take(&mut self.counted) {
            return false;
        }
        let before = self.state.searching.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "searching is counted once per woken worker");
        true
    }
}

impl Drop for Searching<'_> {
    fn drop(&mut self) {
        if self.stop() {
            self.state.wake_next_if_queued();
        }
    }
}
