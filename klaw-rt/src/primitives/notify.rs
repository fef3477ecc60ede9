//! `Notify`: tokio's wake-up signal, with at most one stored permit.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
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
    /// Tickets that `notify_one` or `notify_last` took out of the line, whose `Notified` has
    /// not been polled since, with the end of the line it was taken from. A dropped one passes
    /// its notification on to the same end (tokio's does too).
    notified: BTreeMap<u64, End>,
}

/// Which end of the line a notification goes to.
#[derive(Clone, Copy, Debug)]
enum End {
    First,
    Last,
}

impl State {
    /// One notification: to the first (or the last) in line, else stored as the permit. The
    /// waker to wake.
    fn notify(&mut self, end: End) -> Option<Waker> {
        let taken = match end {
            End::First => self.queue.pop_first(),
            End::Last => self.queue.pop_last(),
        };
        match taken {
            Some((ticket, waker)) => {
                self.notified.insert(ticket, end);
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
                notified: BTreeMap::new(),
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
        let waker = self.lock().notify(End::First);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Wakes the last `notified()` in line (the one that joined it most recently); if none
    /// waits, stores a permit, as [`notify_one`](Self::notify_one) does.
    ///
    /// ```
    /// use std::pin::pin;
    /// let notify = klaw::sync::Notify::new();
    /// let (mut first, mut last) = (pin!(notify.notified()), pin!(notify.notified()));
    /// assert!(!first.as_mut().enable());
    /// assert!(!last.as_mut().enable());
    /// notify.notify_last();
    /// assert!(last.as_mut().enable());
    /// assert!(!first.as_mut().enable());
    /// ```
    pub fn notify_last(&self) {
        let waker = self.lock().notify(End::Last);
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
        Notified { notify: self, wait: Wait::new(self) }
    }

    /// As [`notified`](Self::notified), but the future holds the `Notify` by `Arc`, so it can
    /// move into a spawned task.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use klaw::sync::Notify;
    ///
    /// #[klaw::main(workers = 2)]
    /// async fn main() -> Result<(), klaw::Error> {
    ///     let notify = Arc::new(Notify::new());
    ///     klaw::scope!(|s| {
    ///         s.spawn(notify.clone().notified_owned());
    ///         notify.notify_one();
    ///         Ok(())
    ///     })?;
    ///     Ok(())
    /// }
    /// ```
    pub fn notified_owned(self: Arc<Self>) -> OwnedNotified {
        OwnedNotified { wait: Wait::new(&self), notify: self }
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
    wait: Wait,
}

impl Notified<'_> {
    /// Joins the line without waiting, as a first poll would, but with no waker; `true` if the
    /// future is ready (a later poll gives `Ready`): a stored permit (which it takes), a
    /// `notify_waiters` since it was made, or a `notify_one` since it joined.
    ///
    /// The use: make the future, `enable` it, then check the condition and await only if it
    /// does not hold, so that a `notify_one` between the check and the await is not stored as a
    /// permit for someone else but given to this future. Enabling a future already in line
    /// keeps the waker of its last poll.
    ///
    /// ```
    /// use std::pin::pin;
    /// let notify = klaw::sync::Notify::new();
    /// let mut notified = pin!(notify.notified());
    /// assert!(!notified.as_mut().enable()); // in line now
    /// notify.notify_one(); // given to it, not stored
    /// assert!(notified.as_mut().enable());
    /// klaw::runtime::block_on(notified);
    /// ```
    pub fn enable(self: Pin<&mut Self>) -> bool {
        let this = self.get_mut();
        this.wait.poll(this.notify, None).is_ready()
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.wait.poll(this.notify, Some(cx.waker()))
    }
}

impl FusedFuture for Notified<'_> {
    fn is_terminated(&self) -> bool {
        self.wait.returned
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        self.wait.leave(self.notify);
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified").field("done", &self.wait.done).finish_non_exhaustive()
    }
}

/// The future of [`Notify::notified_owned`]: a [`Notified`] that holds its `Notify` by `Arc`,
/// so it is `'static` and can move into a spawned task.
///
/// # Cancel safety
/// As [`Notified`]'s: dropping it loses nothing.
///
/// ```
/// use std::sync::Arc;
/// let notify = Arc::new(klaw::sync::Notify::new());
/// let notified: klaw::sync::OwnedNotified = notify.clone().notified_owned();
/// notify.notify_one();
/// klaw::runtime::block_on(notified);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct OwnedNotified {
    notify: Arc<Notify>,
    wait: Wait,
}

impl OwnedNotified {
    /// As [`Notified::enable`]: joins the line with no waker; `true` if the future is ready.
    ///
    /// ```
    /// use std::{pin::pin, sync::Arc};
    /// let notify = Arc::new(klaw::sync::Notify::new());
    /// notify.notify_one(); // stored
    /// let mut notified = pin!(notify.clone().notified_owned());
    /// assert!(notified.as_mut().enable()); // took the permit
    /// ```
    pub fn enable(self: Pin<&mut Self>) -> bool {
        let this = self.get_mut();
        this.wait.poll(&this.notify, None).is_ready()
    }
}

impl Future for OwnedNotified {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.wait.poll(&this.notify, Some(cx.waker()))
    }
}

impl FusedFuture for OwnedNotified {
    fn is_terminated(&self) -> bool {
        self.wait.returned
    }
}

impl Drop for OwnedNotified {
    fn drop(&mut self) {
        self.wait.leave(&self.notify);
    }
}

impl fmt::Debug for OwnedNotified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedNotified").field("done", &self.wait.done).finish_non_exhaustive()
    }
}

/// One wait for a notification, whichever way its future holds the `Notify`.
struct Wait {
    /// `notify_waiters` calls before this future was made.
    generation: u64,
    /// Its place in line (or among the notified), once polled or enabled.
    ticket: Option<u64>,
    /// It took its notification (a later poll or `enable` is ready at once).
    done: bool,
    /// A poll returned `Ready`: `FusedFuture::is_terminated` says so only then, not after an
    /// `enable` that found the notification (a fused `select!` would skip the future, and the
    /// notification `enable` took would be lost).
    returned: bool,
}

impl Wait {
    fn new(notify: &Notify) -> Self {
        Wait { generation: notify.lock().generation, ticket: None, done: false, returned: false }
    }

    /// A poll (`waker` given) or an `enable` (none: it joins the line with no waker, and keeps
    /// a stored one).
    fn poll(&mut self, notify: &Notify, waker: Option<&Waker>) -> Poll<()> {
        if self.done {
            // Ready again, as tokio's is: a loop that selects over `&mut notified` may poll it
            // once more, and the notification it took stays taken.
            self.returned |= waker.is_some();
            return Poll::Ready(());
        }
        // The waker to store, cloned before taking the lock, and only when one must be stored.
        let mut fresh: Option<Waker> = None;
        let poll = loop {
            let mut state = notify.lock();
            if let Some(ticket) = self.ticket {
                if state.notified.remove(&ticket).is_some() {
                    self.ticket = None;
                    break Poll::Ready(());
                }
            }
            if state.generation != self.generation {
                // `notify_waiters` took it out of the line already, if it was in it.
                self.ticket = None;
                break Poll::Ready(());
            }
            if state.permit {
                // A permit is stored only while nobody waits, so it was not in line.
                state.permit = false;
                break Poll::Ready(());
            }
            let stale = match (self.ticket, waker) {
                (None, None) => {
                    self.ticket = Some(state.queue.push(None));
                    None
                }
                (None, Some(waker)) => {
                    let Some(fresh) = fresh.take() else {
                        drop(state);
                        fresh = Some(waker.clone());
                        continue;
                    };
                    self.ticket = Some(state.queue.push(Some(fresh)));
                    None
                }
                (Some(_), None) => None,
                (Some(ticket), Some(waker)) => {
                    let stored =
                        state.queue.get_mut(ticket).expect("a waiting `Notified` is in line");
                    if stored.as_ref().is_some_and(|stored| stored.will_wake(waker)) {
                        None
                    } else {
                        let Some(fresh) = fresh.take() else {
                            drop(state);
                            fresh = Some(waker.clone());
                            continue;
                        };
                        stored.replace(fresh)
                    }
                }
            };
            drop(state);
            drop(stale); // a replaced waker, outside the lock
            break Poll::Pending;
        };
        self.done = poll.is_ready();
        self.returned = self.done && waker.is_some();
        poll // an unused `fresh` is dropped here, outside the lock
    }

    /// Its future is dropped: it leaves the line, and a notification it was given and had not
    /// returned goes on to the next in line (or is stored).
    fn leave(&mut self, notify: &Notify) {
        let Some(ticket) = self.ticket.take() else { return };
        let mut state = notify.lock();
        let (left, waker) = if let Some(end) = state.notified.remove(&ticket) {
            (None, state.notify(end)) // its notification goes on
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
