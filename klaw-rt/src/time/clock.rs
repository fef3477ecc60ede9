//! The virtual clock of a paused runtime, and which clock the current thread reads.
//!
//! A runtime built with `start_paused(true)` owns one [`VirtualClock`]. Its worker thread and
//! every thread inside its `block_on` have it as their *current* clock (this module's
//! thread-local, set by the runtime's context), so the timers made there ([`Sleep`], and through
//! it every deadline of klaw) are registered here instead of with `async-io`'s reactor. Any other
//! thread (no runtime, a real runtime, the blocking pool) has none, and its timers are real.
//!
//! Time stands still while anything can make progress. Anything that can is *holding* the
//! clock ([`Hold`]): a `block_on` future that is being polled or was woken, a blocking-pool job
//! queued or running. The runtime's one worker asks [`VirtualClock::try_jump`] whenever it has
//! nothing to run; with no hold either, the clock jumps to the earliest deadline and wakes the
//! timers due then, in deadline order (ties in the order they were registered). With no timer,
//! it stays where it is. `runtime/paused.rs` is the other half: the worker's loop and the
//! `block_on` that holds the clock.
//!
//! [`Sleep`]: crate::time::Sleep
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener};

use crate::sync::wakers::{Ticket, WakerSet, poll_or_wait};
use crate::sync::{Mutex, MutexGuard};

/// A registered timer: its deadline, then the order of registration (which breaks ties).
type TimerKey = (Instant, u64);

/// The clock of a runtime built with `start_paused(true)`.
pub(crate) struct VirtualClock {
    /// The real instant the clock started at: a virtual `Instant` is `start + elapsed`, a real
    /// `std::time::Instant` that APIs taking one accept.
    start: Instant,
    state: Mutex<ClockState>,
    /// Notified when the last hold ends, or when a first timer is registered (by a future
    /// polled outside the runtime, say, while the worker waits with no timer to jump to): the
    /// worker may find the runtime idle with somewhere to jump now.
    released: Event,
}

#[derive(Default)]
struct ClockState {
    elapsed: Duration,
    timers: BTreeMap<TimerKey, Waker>,
    next_id: u64,
    /// Things that can make progress without the clock moving (see [`Hold`]).
    holds: usize,
    /// Bumped by every new hold, so the worker sees one that came and went while it looked.
    generation: u64,
    /// `advance` futures waiting for the runtime to settle, and how many settlings there were.
    settling: usize,
    settle_epoch: u64,
    /// The wakers of those `advance` futures: a user's, so woken after the lock (`sync::wakers`),
    /// since one may come back into the clock.
    settle_waiters: WakerSet,
    /// Its runtime has shut down: nothing moves the clock any more, so every timer on it is due
    /// (see [`VirtualClock::stop`]).
    stopped: bool,
}

impl ClockState {
    fn now(&self, start: Instant) -> Instant {
        start + self.elapsed
    }

    /// True if a timer for `deadline` is due: its time has come, or the clock has stopped.
    fn is_due(&self, start: Instant, deadline: Instant) -> bool {
        self.stopped || self.now(start) >= deadline
    }

    /// Takes the timers due at the current time, in deadline order.
    fn take_due(&mut self, now: Instant) -> BTreeMap<TimerKey, Waker> {
        // Ids count up from 1, so no timer has the key (now, u64::MAX).
        let later = self.timers.split_off(&(now, u64::MAX));
        std::mem::replace(&mut self.timers, later)
    }
}

/// What the worker's look at the clock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Something ran, or might run: look again.
    Busy,
    /// The clock moved (or an `advance` settled): the woken tasks are runnable.
    Moved,
    /// Something holds the clock: wait for [`VirtualClock::released`].
    Held,
    /// Idle, and no timer is pending: the clock stays where it is until a task runs, or a
    /// first timer is registered (which notifies [`VirtualClock::released`]).
    NoTimer,
}

impl VirtualClock {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(VirtualClock {
            start: Instant::now(),
            state: Mutex::new(ClockState { next_id: 1, ..ClockState::default() }),
            released: Event::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        self.state.lock()
    }

    /// The virtual time.
    pub(crate) fn now(&self) -> Instant {
        self.lock().now(self.start)
    }

    /// True if a timer for `deadline` is due: its time has come, or the clock has stopped (its
    /// runtime shut down), which makes every timer on it due.
    pub(crate) fn is_due(&self, deadline: Instant) -> bool {
        self.lock().is_due(self.start, deadline)
    }

    /// Holds the clock until the returned guard is dropped.
    pub(crate) fn hold(self: &Arc<Self>) -> Hold {
        let mut state = self.lock();
        state.holds += 1;
        state.generation += 1;
        drop(state);
        Hold(self.clone())
    }

    fn release(&self) {
        let mut state = self.lock();
        state.holds -= 1;
        let idle = state.holds == 0;
        drop(state);
        if idle {
            self.released.notify(usize::MAX);
        }
    }

    /// A listener notified when the last hold ends or a first timer is registered. Listen
    /// before looking, so that one in between is not missed.
    pub(crate) fn released(&self) -> EventListener {
        self.released.listen()
    }

    /// The worker has nothing to run: if nothing holds the clock either, and `run_one` (which
    /// runs one runnable task, if there is one) finds nothing, moves the clock. An `advance`
    /// waiting for the runtime to settle goes first; otherwise the clock jumps to the earliest
    /// deadline and wakes every timer due then.
    pub(crate) fn try_jump(&self, run_one: impl FnOnce() -> bool) -> Step {
        let generation = {
            let state = self.lock();
            if state.holds > 0 {
                return Step::Held;
            }
            state.generation
        };
        // Holds are counted before the work they stand for is handed over (a woken `block_on`
        // future, a finished blocking job's wake-ups), so this look sees that work.
        if run_one() {
            return Step::Busy;
        }
        let mut state = self.lock();
        if state.holds > 0 {
            return Step::Held;
        }
        if state.generation != generation {
            return Step::Busy; // a hold came and went: what it left may be runnable
        }
        if state.settling > 0 {
            state.settling = 0;
            state.settle_epoch += 1;
            let settled = state.settle_waiters.take_all();
            drop(state);
            settled.wake();
            return Step::Moved;
        }
        let Some(&(deadline, _)) = state.timers.keys().next() else {
            return Step::NoTimer;
        };
        let now = state.now(self.start).max(deadline);
        state.elapsed = now - self.start;
        let due = state.take_due(now);
        drop(state);
        wake_in_order(due);
        Step::Moved
    }

    /// Moves the clock forward by `by` and wakes every timer that is now due, in deadline order.
    ///
    /// # Panics
    /// If the time it would reach does not fit an `Instant`; the clock is left as it was, as
    /// tokio's is, so the panic (reported by the task that advanced) breaks nothing else.
    pub(crate) fn advance(&self, by: Duration) {
        let mut state = self.lock();
        let reached =
            state.elapsed.checked_add(by).filter(|e| self.start.checked_add(*e).is_some());
        let Some(elapsed) = reached else {
            drop(state);
            panic!(
                "klaw::time::advance({by:?}): the paused clock cannot go that far, an Instant \
                 cannot hold the time it would reach; advance by less"
            );
        };
        state.elapsed = elapsed;
        let now = state.now(self.start);
        let due = state.take_due(now);
        drop(state);
        wake_in_order(due);
    }

    /// Waits until the runtime is idle: every task waits, nothing holds the clock.
    pub(crate) async fn settled(&self) {
        let (epoch, first) = {
            let mut state = self.lock();
            state.settling += 1;
            (state.settle_epoch, state.settling == 1)
        };
        // As for a first timer (`poll_timer`): a worker that found no timer waits without
        // looking at the clock again, so an `advance` awaited outside the runtime (another
        // thread, another executor) while the runtime is idle would wait for a look that never
        // comes. Outside the lock: it wakes the worker.
        if first {
            self.released.notify(usize::MAX);
        }
        let mut waiting = Settling { clock: self, epoch, ticket: Ticket::default() };
        std::future::poll_fn(|cx| {
            let ticket = &mut waiting.ticket;
            poll_or_wait(
                &self.state,
                |s| &mut s.settle_waiters,
                ticket,
                cx,
                |s| (s.settle_epoch != epoch || s.stopped).then_some(()),
            )
        })
        .await;
        drop(waiting);
    }

    /// Registers (or re-registers) the timer `id` for `deadline`, unless it is due.
    pub(crate) fn poll_timer(
        &self,
        deadline: Instant,
        id: &mut Option<u64>,
        waker: &Waker,
    ) -> Poll<()> {
        let mut state = self.lock();
        if state.is_due(self.start, deadline) {
            let removed = id.take().and_then(|id| state.timers.remove(&(deadline, id)));
            drop(state);
            drop(removed); // outside the lock
            return Poll::Ready(());
        }
        if let Some(id) = *id {
            if state.timers.get(&(deadline, id)).is_some_and(|stored| stored.will_wake(waker)) {
                return Poll::Pending;
            }
        }
        drop(state);
        let fresh = waker.clone(); // outside the lock: cloning a waker may run any code
        let mut state = self.lock();
        if state.is_due(self.start, deadline) {
            // The clock moved (or stopped) meanwhile.
            let removed = id.take().and_then(|id| state.timers.remove(&(deadline, id)));
            drop(state);
            drop((removed, fresh));
            return Poll::Ready(());
        }
        let id = *id.get_or_insert_with(|| {
            state.next_id += 1;
            state.next_id
        });
        // The worker waits without looking at the clock again only when it found no timer (or
        // a hold, whose release notifies it). A first timer must wake it, or a sleep awaited
        // outside the runtime (another thread, another executor) waits for a jump that never
        // comes while the runtime is idle.
        let first = state.timers.is_empty();
        let replaced = state.timers.insert((deadline, id), fresh);
        drop(state);
        drop(replaced);
        if first {
            self.released.notify(usize::MAX); // outside the lock: it wakes the worker
        }
        Poll::Pending
    }

    /// Moves the timer `id` from `old` to `new`, keeping its waker, if it is registered; if
    /// `new` is due already, wakes it instead (as a real timer reset into the past fires at
    /// once), so its task polls it now rather than when the runtime is next idle.
    pub(crate) fn move_timer(&self, old: Instant, new: Instant, id: u64) {
        let mut state = self.lock();
        let Some(waker) = state.timers.remove(&(old, id)) else { return };
        if state.is_due(self.start, new) {
            drop(state);
            waker.wake(); // outside the lock
        } else {
            state.timers.insert((new, id), waker);
        }
    }

    /// Forgets the timer `id`, if it is registered.
    pub(crate) fn remove_timer(&self, deadline: Instant, id: u64) {
        let removed = self.lock().timers.remove(&(deadline, id));
        drop(removed); // outside the lock
    }

    /// The runtime has shut down: nothing moves this clock any more, so every timer on it is
    /// due now and from now on. The timers still waiting (of futures its runtime did not own:
    /// one awaited in another executor, or by hand) are woken, and their wakers let go (one may
    /// hold a task that holds this clock), so no such future waits forever for a time that
    /// never comes, as a tokio runtime's timers fire when it shuts down.
    pub(crate) fn stop(&self) {
        let (timers, settled) = {
            let mut state = self.lock();
            state.stopped = true;
            // No task of the runtime is left to wait for: an `advance` settles at once.
            state.settle_epoch += 1;
            (std::mem::take(&mut state.timers), state.settle_waiters.take_all())
        };
        wake_in_order(timers);
        settled.wake();
    }
}

fn wake_in_order(due: BTreeMap<TimerKey, Waker>) {
    for waker in due.into_values() {
        waker.wake();
    }
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("VirtualClock")
            .field("elapsed", &state.elapsed)
            .field("timers", &state.timers.len())
            .field("holds", &state.holds)
            .finish()
    }
}

/// Something that can make progress without the clock moving: while one exists, the clock does
/// not jump. Dropping it releases the clock.
pub(crate) struct Hold(Arc<VirtualClock>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl fmt::Debug for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hold")
    }
}

/// An `advance` waiting for the runtime to settle; counted out if dropped first.
struct Settling<'a> {
    clock: &'a VirtualClock,
    epoch: u64,
    /// Its waker's place among the settle waiters, once it waits.
    ticket: Ticket,
}

impl Drop for Settling<'_> {
    fn drop(&mut self) {
        let mut state = self.clock.lock();
        if state.settle_epoch == self.epoch {
            state.settling -= 1;
        }
        let removed = state.settle_waiters.remove(&mut self.ticket);
        drop(state);
        drop(removed); // outside the lock
    }
}

thread_local! {
    /// The clock of the runtime this thread runs for, if that runtime's clock is paused.
    static CURRENT: RefCell<Option<Arc<VirtualClock>>> = const { RefCell::new(None) };
}

/// True once this thread's clock slot was destroyed (at its end).
pub(crate) fn destroyed() -> bool {
    CURRENT.try_with(|_| ()).is_err()
}

/// The current thread's virtual clock, if it runs for a paused runtime.
#[inline]
pub(crate) fn current() -> Option<Arc<VirtualClock>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Calls `f` with the current thread's virtual clock, without cloning it.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<VirtualClock>>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow().as_ref()))
}

/// Makes `clock` the current thread's clock (`None`: real time) until the guard is dropped.
pub(crate) fn enter(clock: Option<Arc<VirtualClock>>) -> ClockGuard {
    let previous = CURRENT.with(|current| current.replace(clock));
    ClockGuard { previous }
}

/// Restores the thread's previous clock when dropped.
pub(crate) struct ClockGuard {
    previous: Option<Arc<VirtualClock>>,
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let replaced = CURRENT.with(|current| current.replace(previous));
        drop(replaced); // outside the borrow
    }
}

impl fmt::Debug for ClockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClockGuard")
    }
}
