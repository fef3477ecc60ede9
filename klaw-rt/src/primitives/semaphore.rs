//! `Semaphore`: a count of permits, handed out first come, first served.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::primitives::acquire::{Acquire, AcquireOwned};
use crate::primitives::error::{AcquireError, TryAcquireError};
use crate::primitives::permit::{OwnedSemaphorePermit, SemaphorePermit};
use crate::primitives::waiters::{Queue, Wake};
use crate::sync::{Mutex, MutexGuard};

/// A count of permits: at most that many holders at once. The usual use is a concurrency limit
/// (at most `n` requests in flight, `n` files open); `acquire` waits for a permit, and dropping
/// the permit gives it back.
///
/// **Fair.** Waiting acquires are served in the order they started waiting (FIFO), whatever
/// they ask for: a waiting `acquire_many(5)` gathers permits as they come back, and no
/// `acquire()` that comes later goes before it. `try_acquire` never jumps the line either.
///
/// **Turns on one worker.** In a task of klaw's runtime, permits given back go to the first in
/// line, and that task runs next on the same worker, before the tasks queued there, as tokio
/// runs a task woken by the running one next: a lock passed from task to task stays in one
/// worker's cache instead of waiting at the back of the queue for another worker to wake.
///
/// **Cancel safe.** Dropping an acquire future loses nothing: the permits it had gathered (or
/// all of them, when it had been given everything but not yet polled) go back, to the next in
/// line first, and that one is woken if it can now go on.
///
/// Works under any executor. It is not a lock around a value: for that, see
/// [`Mutex`](crate::primitives::Mutex).
///
/// ```
/// use std::sync::Arc;
/// use klaw::sync::Semaphore;
///
/// #[klaw::main(workers = 2)]
/// async fn main() -> Result<(), klaw::Error> {
///     let limit = Arc::new(Semaphore::new(2)); // at most 2 downloads at once
///     klaw::scope!(|s| {
///         for page in 0..6 {
///             let limit = limit.clone();
///             s.spawn(klaw::Task::fallible(async move {
///                 let _permit = limit.acquire().await?; // given back when dropped
///                 assert!(limit.available_permits() <= 1);
///                 Ok::<_, klaw::sync::AcquireError>(page)
///             }));
///         }
///         Ok(())
///     })?;
///     assert_eq!(limit.available_permits(), 2);
///     Ok(())
/// }
/// ```
pub struct Semaphore {
    state: Mutex<State>,
}

struct State {
    /// Free permits. While anyone waits (and the semaphore is open) this is 0: a permit that
    /// comes back goes to the first in line.
    permits: usize,
    /// Permits that exist: free, gathered by a waiter, granted or held (not forgotten).
    /// `add_permits` keeps it at most `MAX_PERMITS`, so the free ones never exceed that, however
    /// many come back.
    total: usize,
    closed: bool,
    queue: Queue<Waiter>,
    /// Acquires given all their permits that have not been polled since. The permits are
    /// theirs: a dropped one gives them back.
    granted: BTreeSet<u64>,
}

/// An acquire waiting in line.
struct Waiter {
    wanted: usize,
    /// Permits given to it so far: only the first in line is given any.
    gathered: usize,
    waker: Option<Waker>,
}

impl State {
    /// Hands free permits to the waiters, first in line first; those that have all they asked
    /// for leave the line for `granted`, and their wakers go to `wake`.
    fn hand_out(&mut self, wake: &mut Wake) {
        if self.closed {
            return;
        }
        while self.permits > 0 {
            let Some(mut first) = self.queue.first() else { break };
            let waiter = first.get_mut();
            let given = self.permits.min(waiter.wanted - waiter.gathered);
            waiter.gathered += given;
            self.permits -= given;
            if waiter.gathered < waiter.wanted {
                break; // every free permit went to it
            }
            let (ticket, waiter) = first.remove_entry();
            self.granted.insert(ticket);
            wake.push(waiter.waker);
        }
        debug_assert!(self.queue.is_empty() || self.permits == 0);
    }

    /// `n` permits come back: to the waiters first.
    fn release(&mut self, n: usize, wake: &mut Wake) {
        self.permits = self.permits.saturating_add(n);
        self.hand_out(wake);
    }
}

/// Where one acquire stands: how many permits it wants, and its ticket while it is in line
/// (or granted).
#[derive(Debug)]
pub(super) struct Place {
    pub(super) wanted: usize,
    ticket: Option<u64>,
    pub(super) done: bool,
}

impl Place {
    pub(super) fn new(wanted: usize) -> Self {
        Place { wanted, ticket: None, done: false }
    }
}

impl Semaphore {
    /// The most permits a semaphore holds: `usize::MAX >> 3`, as in tokio.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(klaw::sync::Semaphore::MAX_PERMITS);
    /// assert_eq!(semaphore.available_permits(), usize::MAX >> 3);
    /// ```
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` free permits.
    ///
    /// # Panics
    /// If `permits` is above [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(3);
    /// assert_eq!(semaphore.available_permits(), 3);
    /// ```
    #[track_caller]
    pub fn new(permits: usize) -> Self {
        assert!(
            permits <= Self::MAX_PERMITS,
            "a semaphore holds at most Semaphore::MAX_PERMITS ({}) permits, not {permits}",
            Self::MAX_PERMITS
        );
        Semaphore {
            state: Mutex::new(State {
                permits,
                total: permits,
                closed: false,
                queue: Queue::new(),
                granted: BTreeSet::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The permits free right now (0 while anyone waits: free permits go to the waiters).
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(3);
    /// let _two = semaphore.try_acquire_many(2).unwrap();
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.lock().permits
    }

    /// Adds `n` permits, waking the waiters that can now go on. A closed semaphore counts them
    /// too, but gives none out.
    ///
    /// # Panics
    /// If the permits would exceed [`MAX_PERMITS`](Self::MAX_PERMITS): the free ones and those
    /// held now (which come back), not counting those forgotten.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(0);
    /// semaphore.add_permits(2);
    /// assert_eq!(semaphore.try_acquire_many(2).unwrap().num_permits(), 2);
    /// ```
    #[track_caller]
    pub fn add_permits(&self, n: usize) {
        let mut wake = Wake::default();
        let mut state = self.lock();
        let total = state.total.checked_add(n).filter(|total| *total <= Self::MAX_PERMITS);
        let Some(total) = total else {
            let (free, had) = (state.permits, state.total);
            drop(state);
            panic!(
                "adding {n} permits to the {had} of this semaphore ({free} free, the others held \
                 and coming back) would exceed Semaphore::MAX_PERMITS ({}): add fewer, or forget \
                 some first",
                Self::MAX_PERMITS
            );
        };
        state.total = total;
        state.permits += n;
        state.hand_out(&mut wake);
        drop(state);
        wake.wake();
    }

    /// Removes up to `n` free permits for good (permits held now are not touched); how many it
    /// removed.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(3);
    /// assert_eq!(semaphore.forget_permits(5), 3);
    /// assert_eq!(semaphore.available_permits(), 0);
    /// ```
    pub fn forget_permits(&self, n: usize) -> usize {
        let mut state = self.lock();
        let forgotten = state.permits.min(n);
        state.permits -= forgotten;
        state.total -= forgotten;
        forgotten
    }

    /// Closes the semaphore: every acquire still waiting, and every later one, fails with
    /// [`AcquireError`] (the permits a waiting one had gathered go back). Permits held now stay
    /// valid and still come back when dropped.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(1);
    /// semaphore.close();
    /// assert!(semaphore.is_closed());
    /// assert!(semaphore.try_acquire().is_err());
    /// ```
    pub fn close(&self) {
        let mut wake = Wake::default();
        let mut state = self.lock();
        state.closed = true;
        for waiter in state.queue.take_all().into_values() {
            state.permits = state.permits.saturating_add(waiter.gathered);
            wake.push(waiter.waker);
        }
        drop(state);
        wake.wake();
    }

    /// True once [`close`](Self::close) was called.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(1);
    /// assert!(!semaphore.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Waits for one permit. Same as [`acquire_many(1)`](Self::acquire_many).
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: it leaves the line, and a permit it had been given
    /// goes to the next in line (which is woken) or back to the semaphore.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(1);
    /// let permit = klaw::runtime::block_on(semaphore.acquire()).unwrap();
    /// assert_eq!(semaphore.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits, taken together. The acquire waits in line: once it is first, it
    /// gathers the permits that come back until it has `n`, and none that comes later goes
    /// before it. Fails with [`AcquireError`] if the semaphore is (or gets) closed.
    /// `acquire_many(0)` completes at once.
    ///
    /// # Panics
    /// If `n` is above [`MAX_PERMITS`](Self::MAX_PERMITS), which no semaphore can ever give (the
    /// acquire would wait first in line for ever, holding back every acquire behind it).
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: it leaves the line and gives back the permits it
    /// had gathered (all `n`, if it had been given them but not yet polled), to the next in line
    /// first, which is woken if it can now go on.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(5);
    /// let permit = klaw::runtime::block_on(semaphore.acquire_many(3)).unwrap();
    /// assert_eq!(permit.num_permits(), 3);
    /// assert_eq!(semaphore.available_permits(), 2);
    /// ```
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        Acquire::new(self, Self::possible(n))
    }

    /// `n`, if some semaphore could give that many permits at once.
    fn possible(n: usize) -> usize {
        assert!(
            n <= Self::MAX_PERMITS,
            "acquiring {n} permits at once: a semaphore holds at most Semaphore::MAX_PERMITS ({}), \
             so this acquire could never complete; acquire fewer",
            Self::MAX_PERMITS
        );
        n
    }

    /// One permit if it is free now: no waiting, and no jumping the line.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(1);
    /// let permit = semaphore.try_acquire().unwrap();
    /// assert!(semaphore.try_acquire().is_err());
    /// drop(permit);
    /// assert!(semaphore.try_acquire().is_ok());
    /// ```
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// `n` permits if they are free now: no waiting, and no jumping the line.
    ///
    /// ```
    /// use klaw::sync::TryAcquireError;
    /// let semaphore = klaw::sync::Semaphore::new(2);
    /// assert_eq!(semaphore.try_acquire_many(3).unwrap_err(), TryAcquireError::NoPermits);
    /// assert_eq!(semaphore.try_acquire_many(2).unwrap().num_permits(), 2);
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take(n)?;
        Ok(SemaphorePermit::new(self, n))
    }

    /// [`acquire`](Self::acquire) for a semaphore in an `Arc`: the permit holds the `Arc`, so it
    /// is `'static` and can move into a spawned task.
    ///
    /// # Cancel safety
    /// As [`acquire`](Self::acquire): dropping the future loses nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(1));
    /// let permit: klaw::sync::OwnedSemaphorePermit =
    ///     klaw::runtime::block_on(semaphore.acquire_owned()).unwrap();
    /// std::thread::spawn(move || drop(permit)).join().unwrap();
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn acquire_owned(self: &Arc<Self>) -> AcquireOwned {
        self.acquire_many_owned(1)
    }

    /// [`acquire_many`](Self::acquire_many) for a semaphore in an `Arc`: the permits hold the
    /// `Arc`, so they are `'static`.
    ///
    /// # Panics
    /// As [`acquire_many`](Self::acquire_many): if `n` is above [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Cancel safety
    /// As [`acquire_many`](Self::acquire_many): dropping the future gives back what it gathered.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(4));
    /// let permits = klaw::runtime::block_on(semaphore.acquire_many_owned(3)).unwrap();
    /// assert_eq!(permits.num_permits(), 3);
    /// ```
    pub fn acquire_many_owned(self: &Arc<Self>, n: usize) -> AcquireOwned {
        AcquireOwned::new(self.clone(), Self::possible(n))
    }

    /// [`try_acquire`](Self::try_acquire) for a semaphore in an `Arc`: a `'static` permit.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(1));
    /// let permit = semaphore.try_acquire_owned().unwrap();
    /// assert!(semaphore.try_acquire_owned().is_err());
    /// drop(permit);
    /// ```
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_acquire_many_owned(1)
    }

    /// [`try_acquire_many`](Self::try_acquire_many) for a semaphore in an `Arc`: `'static`
    /// permits.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(3));
    /// assert_eq!(semaphore.try_acquire_many_owned(3).unwrap().num_permits(), 3);
    /// ```
    pub fn try_acquire_many_owned(
        self: &Arc<Self>,
        n: usize,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take(n)?;
        Ok(OwnedSemaphorePermit::new(self.clone(), n))
    }

    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut state = self.lock();
        if state.closed {
            return Err(TryAcquireError::Closed);
        }
        // Free permits mean nobody waits (see `hand_out`): taking them jumps no line.
        if state.permits < n {
            return Err(TryAcquireError::NoPermits);
        }
        state.permits -= n;
        Ok(())
    }

    /// `n` held permits are forgotten (a permit's `forget`): they will not come back.
    pub(super) fn forget_held(&self, n: usize) {
        self.lock().total -= n;
    }

    /// Gives `n` permits back (a permit's drop).
    pub(super) fn give_back(&self, n: usize) {
        let mut wake = Wake::default();
        let mut state = self.lock();
        state.release(n, &mut wake);
        drop(state);
        // The task that gave them back goes on, soon to wait or yield: the one given them runs
        // next on this worker (klaw's runtime), as tokio's LIFO slot would run it. A contended
        // `Mutex` took 374 ns a lock with the waiter queued, 166 with it run next (`benches/sync`).
        crate::coop::hand_off(|| wake.wake());
    }

    /// Polls the acquire at `place`: takes the permits if nobody waits and they are free, else
    /// waits in line until it has been given them all.
    pub(super) fn poll_acquire(
        &self,
        place: &mut Place,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        assert!(!place.done, "a semaphore's acquire future was polled after it completed");
        // The waker to store, cloned before taking the lock, and only when one must be stored.
        let mut fresh: Option<Waker> = None;
        let poll = loop {
            let mut state = self.lock();
            let stale = match place.ticket {
                None if state.closed => break Poll::Ready(Err(AcquireError(()))),
                None if state.permits >= place.wanted => {
                    state.permits -= place.wanted;
                    break Poll::Ready(Ok(()));
                }
                None => {
                    let Some(waker) = fresh.take() else {
                        drop(state);
                        fresh = Some(cx.waker().clone());
                        continue;
                    };
                    // Free permits mean nobody waits: it is first in line, and takes them.
                    let gathered = std::mem::take(&mut state.permits);
                    let waiter = Waiter { wanted: place.wanted, gathered, waker: Some(waker) };
                    place.ticket = Some(state.queue.push(waiter));
                    None
                }
                Some(ticket) => {
                    if state.granted.remove(&ticket) {
                        place.ticket = None;
                        break Poll::Ready(Ok(()));
                    }
                    let Some(waiter) = state.queue.get_mut(ticket) else {
                        // `close` took it out of the line (and gave its permits back).
                        place.ticket = None;
                        break Poll::Ready(Err(AcquireError(())));
                    };
                    if waiter.waker.as_ref().is_some_and(|stored| stored.will_wake(cx.waker())) {
                        None
                    } else {
                        let Some(waker) = fresh.take() else {
                            drop(state);
                            fresh = Some(cx.waker().clone());
                            continue;
                        };
                        waiter.waker.replace(waker)
                    }
                }
            };
            drop(state);
            drop(stale); // a replaced waker, outside the lock
            break Poll::Pending;
        };
        place.done = poll.is_ready();
        poll // an unused `fresh` is dropped here, outside the lock
    }

    /// The acquire at `place` is dropped: it leaves the line, and the permits it had gathered
    /// (or been granted) go back, to the next in line first.
    pub(super) fn leave(&self, place: &mut Place) {
        let Some(ticket) = place.ticket.take() else { return };
        let mut wake = Wake::default();
        let mut state = self.lock();
        let (back, left) = if state.granted.remove(&ticket) {
            (place.wanted, None)
        } else {
            match state.queue.remove(ticket) {
                Some(waiter) => (waiter.gathered, Some(waiter)),
                None => (0, None), // `close` took it out already
            }
        };
        state.release(back, &mut wake);
        drop(state);
        drop(left); // its waker, outside the lock
        wake.wake();
    }

    /// The number of acquires waiting in line, for the loom model.
    #[cfg(all(test, klaw_loom))]
    pub(super) fn waiting(&self) -> usize {
        self.lock().queue.len()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let (permits, waiting, closed) = (state.permits, state.queue.len(), state.closed);
        drop(state);
        f.debug_struct("Semaphore")
            .field("permits", &permits)
            .field("waiting", &waiting)
            .field("closed", &closed)
            .finish()
    }
}
