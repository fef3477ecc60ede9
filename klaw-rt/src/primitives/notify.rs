//! `Notify`: tokio's wake-up signal, with at most one stored permit.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::FusedFuture;

use crate::primitives::waiters::Queue;
use crate::sync::{Mutex, MutexGuard};

/// Wakes waiting tasks, as tokio's `Notify` does:
///
/// - [`notify_one`](Self::notify_one) wakes the first [`notified()`](Self::notified) in line;
///   if none waits, it stores one permit (at most one), which the next `notified()` takes at
///   once.
/// - [`notify_waiters`](Self::notify_waiters) wakes every `notified()` future that exists now
///   (even one not polled yet), and stores nothing.
///
/// Unlike an [`Event`](crate::primitives::Event), nothing stays set: a notification is consumed.
/// The usual use is "something changed, look again": check the condition, and if it does not
/// hold, wait for `notified()` and check again.
///
/// Works under any executor. No waker is woken or dropped, and no user code runs, while its
/// lock is held.
///
/// ```
/// use std::sync::Arc;
/// use klaw::sync::Notify;
///
/// #[klaw::main(workers = 2)]
/// async fn main() -> Result<(), klaw::Error> {
///     let notify = Arc::new(Notify::new());
///     klaw::scope!(|s| {
///         let waiter = notify.clone();
///         s.spawn(async move { waiter.notified().await });
///         notify.notify_one(); // wakes the waiter, or is stored for it
///         Ok(())
///     })?;
///     Ok(())
/// }
/// ```
pub struct Notify {
    state: Mutex<State>,
}

struct State {
    /// A `notify_one` that found nobody waiting.
    permit: bool,
    /// How many times `notify_waiters` was called: a `Notified` made before the last call is
    /// done.
    generation: u64,
    /// Polled `Notified`s that wait, with their wakers.
    queue: Queue<Option<Waker>>,
    /// Tickets that `notify_one` took out of the line, whose `Notified` has not been polled
    /// since. A dropped one passes its notification on.
    notified: BTreeSet<u64>,
}

impl State {
    /// One notification: to the first in line, else stored as the permit. The waker to wake.
    fn notify_one(&mut self) -> Option<Waker> {
        match self.queue.pop_first() {
            Some((ticket, waker)) => {
                self.notified.insert(ticket);
                waker
            }
            None => {
                self.permit = true;
                None
            }
        }
    }
}

impl Notify {
    /// A `Notify` with no permit stored.
    ///
    /// ```
    /// let notify = klaw::sync::Notify::new();
    /// notify.notify_one(); // stored: nobody waits
    /// klaw::runtime::block_on(notify.notified()); // takes it
    /// ```
    pub fn new() -> Self {
        Notify {
            state: Mutex::new(State {
                permit: false,
                generation: 0,
                queue: Queue::new(),
                notified: BTreeSet::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Wakes the first `notified()` in line; if none waits, stores a permit for the next one
    /// (a permit already stored stays one).
    ///
    /// ```
    /// let notify = klaw::sync::Notify::new();
    /// notify.notify_one();
    /// notify.notify_one(); // still one permit
    /// klaw::runtime::block_on(notify.notified());
    /// let mut second = std::pin::pin!(notify.notified());
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(second.as_mut().poll(&mut cx).is_pending());
    /// ```
    pub fn notify_one(&self) {
        let waker = self.lock().notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Wakes every `notified()` future that exists now, polled or not. Stores no permit, and
    /// does not take the stored one.
    ///
    /// ```
    /// let notify = klaw::sync::Notify::new();
    /// let (a, b) = (notify.notified(), notify.notified());
    /// notify.notify_waiters();
    /// klaw::runtime::block_on(async { a.await; b.await });
    /// ```
    pub fn notify_waiters(&self) {
        let mut state = self.lock();
        state.generation += 1;
        let waiting = state.queue.take_all();
        drop(state);
        for waker in waiting.into_values().flatten() {
            waker.wake();
        }
    }

    /// Waits for a notification: a stored permit (taken at once), a [`notify_one`] when this is
    /// first in line, or a [`notify_waiters`] after this future was made.
    ///
    /// The future joins the line when first polled; but a `notify_waiters` call after it was
    /// made (before its first poll too) completes it.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: a `notify_one` it was given and had not yet returned
    /// passes on to the next in line, or is stored as the permit.
    ///
    /// [`notify_one`]: Self::notify_one
    /// [`notify_waiters`]: Self::notify_waiters
    ///
    /// ```
    /// let notify = klaw::sync::Notify::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| notify.notify_one());
    ///     klaw::runtime::block_on(notify.notified());
    /// });
    /// ```
    pub fn notified(&self) -> Notified<'_> {
        let generation = self.lock().generation;
        Notified { notify: self, generation, ticket: None, done: false }
    }
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let (permit, waiting) = (state.permit, state.queue.len());
        drop(state);
        f.debug_struct("Notify").field("permit", &permit).field("waiting", &waiting).finish()
    }
}

/// The future of [`Notify::notified`].
///
/// # Cancel safety
/// Dropping it loses nothing: a `notify_one` it was given passes on to the next in line, or is
/// stored as the permit.
///
/// ```
/// let notify = klaw::sync::Notify::new();
/// let notified: klaw::sync::Notified<'_> = notify.notified();
/// notify.notify_waiters();
/// klaw::runtime::block_on(notified);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Notified<'a> {
    notify: &'a Notify,
    /// `notify_waiters` calls before this future was made.
    generation: u64,
    /// Its place in line (or among the notified), once polled.
    ticket: Option<u64>,
    done: bool,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            // Ready again, as tokio's is: a loop that selects over `&mut notified` may poll it
            // once more, and the notification it took stays taken.
            return Poll::Ready(());
        }
        // The waker to store, cloned before taking the lock, and only when one must be stored.
        let mut fresh: Option<Waker> = None;
        let poll = loop {
            let mut state = this.notify.lock();
            if let Some(ticket) = this.ticket {
                if state.notified.remove(&ticket) {
                    this.ticket = None;
                    break Poll::Ready(());
                }
            }
            if state.generation != this.generation {
                // `notify_waiters` took it out of the line already, if it was in it.
                this.ticket = None;
                break Poll::Ready(());
            }
            if state.permit {
                // A permit is stored only while nobody waits, so it was not in line.
                state.permit = false;
                break Poll::Ready(());
            }
            let stale = match this.ticket {
                None => {
                    let Some(waker) = fresh.take() else {
                        drop(state);
                        fresh = Some(cx.waker().clone());
                        continue;
                    };
                    this.ticket = Some(state.queue.push(Some(waker)));
                    None
                }
                Some(ticket) => {
                    let stored =
                        state.queue.get_mut(ticket).expect("a waiting `Notified` is in line");
                    if stored.as_ref().is_some_and(|stored| stored.will_wake(cx.waker())) {
                        None
                    } else {
                        let Some(waker) = fresh.take() else {
                            drop(state);
                            fresh = Some(cx.waker().clone());
                            continue;
                        };
                        stored.replace(waker)
                    }
                }
            };
            drop(state);
            drop(stale); // a replaced waker, outside the lock
            break Poll::Pending;
        };
        this.done = poll.is_ready();
        poll // an unused `fresh` is dropped here, outside the lock
    }
}

impl FusedFuture for Notified<'_> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else { return };
        let mut state = self.notify.lock();
        let (left, waker) = if state.notified.remove(&ticket) {
            (None, state.notify_one()) // its notification goes on
        } else {
            (state.queue.remove(ticket), None)
        };
        drop(state);
        drop(left); // its own waker, outside the lock
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified").field("done", &self.done).finish_non_exhaustive()
    }
}
