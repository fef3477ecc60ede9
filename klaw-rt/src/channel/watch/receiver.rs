//! The receiving end of a watch channel: [`Receiver`], its borrows ([`Ref`]) and its wait for
//! a change ([`Changed`]).
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::Shared;
use crate::channel::error::RecvError;
use crate::channel::wakers::{Ticket, Wake, leave, poll_or_wait};
use crate::coop;
use crate::sync::RwLockReadGuard;

/// Watches the value of a [`watch`](crate::channel::watch::channel()) channel.
///
/// ```
/// let (tx, mut rx): (_, klaw::channel::watch::Receiver<u8>) = klaw::channel::watch::channel(0);
/// tx.send(5).unwrap();
/// klaw::runtime::block_on(rx.changed()).unwrap();
/// assert_eq!(*rx.borrow_and_update(), 5);
/// ```
pub struct Receiver<T> {
    pub(super) shared: Arc<Shared<T>>,
    /// The version this receiver has seen.
    pub(super) seen: u64,
    /// This receiver's place among the waiting.
    pub(super) ticket: Ticket,
}

impl<T> Receiver<T> {
    /// True if `other` is a receiver of the same channel.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(0);
    /// assert!(rx.same_channel(&tx.subscribe()));
    /// assert!(!rx.same_channel(&klaw::channel::watch::channel(0).1));
    /// ```
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The current value, without marking it seen. Hold the guard briefly: a send waits for it
    /// (see [`Ref`]).
    ///
    /// ```
    /// let (_tx, rx) = klaw::channel::watch::channel(String::from("x"));
    /// assert_eq!(rx.borrow().len(), 1);
    /// ```
    pub fn borrow(&self) -> Ref<'_, T> {
        let guard = self.shared.read();
        // Under the read guard no send can change the version (a send counts it under the
        // write lock), so `changed` describes the value this guard holds.
        let changed = self.shared.lock().version != self.seen;
        Ref { guard, changed }
    }

    /// The current value, marking it seen. Hold the guard briefly (see [`Ref`]).
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::watch::channel(1);
    /// tx.send(2).unwrap();
    /// assert_eq!(*rx.borrow_and_update(), 2);
    /// assert!(!rx.has_changed().unwrap());
    /// ```
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let guard = self.shared.read();
        let version = self.shared.lock().version;
        let changed = version != self.seen;
        self.seen = version;
        Ref { guard, changed }
    }

    /// True if the value changed since this receiver last marked it seen;
    /// `Err(RecvError::Closed)` if every sender is gone.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(1);
    /// assert_eq!(rx.has_changed(), Ok(false));
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.has_changed(), Ok(true));
    /// ```
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let waiting = self.shared.lock();
        if waiting.senders == 0 {
            return Err(RecvError::Closed);
        }
        Ok(waiting.version != self.seen)
    }

    /// Waits until the value changes (marking it seen); `Err(RecvError::Closed)` once every
    /// sender is gone. Intermediate values may be skipped: a watch keeps only the latest.
    ///
    /// Cancel safety: dropping the future marks nothing seen; a later `changed` still sees the
    /// change.
    ///
    /// In a klaw task it takes part in the [cooperative budget](crate::coop::consume_budget):
    /// polled once the task's budget is spent, it yields first, marking nothing seen.
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::watch::channel(0);
    /// std::thread::spawn(move || tx.send(1).unwrap());
    /// klaw::runtime::block_on(async {
    ///     rx.changed().await.unwrap();
    ///     assert_eq!(*rx.borrow(), 1);
    /// });
    /// ```
    pub fn changed(&mut self) -> Changed<'_, T> {
        Changed { receiver: self }
    }

    /// `changed`, taking a unit of the task's cooperative budget when it completes (with the
    /// budget spent, it yields and marks nothing seen).
    fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RecvError>> {
        let Receiver { shared, seen, ticket } = self;
        coop::budgeted(cx, |cx| poll_changed(shared, seen, ticket, cx))
    }

    /// Waits until the value satisfies `predicate` (checking the current value first), marks it
    /// seen, and gives it; `Err(RecvError::Closed)` if every sender goes before it does.
    /// `predicate` runs under the value's read lock: it must not use this channel.
    ///
    /// Cancel safety: dropping the future marks nothing seen but the values it checked.
    ///
    /// In a klaw task, the whole wait is one operation of the task's
    /// [cooperative budget](crate::coop::consume_budget).
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::watch::channel(0);
    /// std::thread::spawn(move || {
    ///     for n in 1..=10 {
    ///         tx.send(n).unwrap();
    ///     }
    /// });
    /// klaw::runtime::block_on(async {
    ///     // The sender may be gone by then: the last value it sent still counts.
    ///     let ten = rx.wait_for(|n| *n == 10).await.unwrap();
    ///     assert_eq!(*ten, 10);
    /// });
    /// ```
    pub async fn wait_for(
        &mut self,
        mut predicate: impl FnMut(&T) -> bool,
    ) -> Result<Ref<'_, T>, RecvError> {
        // Split, so that the guard the predicate passed is the one returned (a send between
        // the check and the return would otherwise give the caller a value that failed it).
        let Receiver { shared, seen, ticket } = self;
        let shared: &Shared<T> = shared;
        // One budgeted operation as a whole, even when the first check passes.
        // What the receiver had seen when the wait began: a value that comes during the wait is
        // new to the caller (`Ref::has_changed`), though the wait marks it seen to wake on it.
        let seen_before = *seen;
        coop::cooperative(async move {
            // Dropped in line (a lost `select!`, a timeout), the wait lets go of its waker.
            let line = LeaveLine { shared, ticket };
            loop {
                {
                    let guard = shared.read();
                    let version = shared.lock().version;
                    let changed = version != seen_before;
                    *seen = version;
                    if predicate(&guard) {
                        return Ok(Ref { guard, changed });
                    }
                }
                std::future::poll_fn(|cx| poll_changed(shared, seen, line.ticket, cx)).await?;
            }
        })
        .await
    }

    /// Makes the current value count as unseen: the next `changed` returns at once.
    ///
    /// ```
    /// let (_tx, mut rx) = klaw::channel::watch::channel(0);
    /// rx.mark_changed();
    /// assert_eq!(rx.has_changed(), Ok(true));
    /// ```
    pub fn mark_changed(&mut self) {
        self.seen = self.shared.lock().version.wrapping_sub(1);
    }

    /// Makes the current value count as seen, without reading it.
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::watch::channel(0);
    /// tx.send(1).unwrap();
    /// rx.mark_unchanged();
    /// assert_eq!(rx.has_changed(), Ok(false));
    /// ```
    pub fn mark_unchanged(&mut self) {
        self.seen = self.shared.lock().version;
    }
}

/// A receiver's `changed`, on its fields (so `wait_for` can hold a guard of the value meanwhile).
fn poll_changed<T>(
    shared: &Shared<T>,
    seen: &mut u64,
    ticket: &mut Ticket,
    cx: &Context<'_>,
) -> Poll<Result<(), RecvError>> {
    poll_or_wait(
        &shared.waiting,
        |waiting| &mut waiting.changing,
        ticket,
        cx,
        |waiting| {
            if waiting.version != *seen {
                *seen = waiting.version;
                Some(Ok(()))
            } else if waiting.senders == 0 {
                Some(Err(RecvError::Closed))
            } else {
                None
            }
        },
    )
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.lock().receivers += 1;
        Receiver { shared: self.shared.clone(), seen: self.seen, ticket: Ticket::default() }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut waiting = self.shared.lock();
        waiting.receivers -= 1;
        let removed = waiting.changing.remove(&mut self.ticket);
        let wake =
            if waiting.receivers == 0 { waiting.closing.take_all() } else { Wake::default() };
        drop(waiting);
        drop(removed);
        wake.wake();
    }
}

/// A receiver is a `futures::Stream` of the values it sees change: each item is the value
/// after a change (a clone, marked seen), and the stream ends when every sender is gone. Like
/// `changed`, it skips intermediate values. (To get the current value first, read
/// `borrow_and_update()` before streaming, or call `mark_changed()`.) The value is cloned under
/// its read lock, as `borrow` reads it: a `Clone` that uses this channel would deadlock.
///
/// ```
/// use futures_lite::StreamExt;
/// let (tx, mut rx) = klaw::channel::watch::channel(0);
/// rx.mark_changed();
/// tx.send(1).unwrap();
/// drop(tx);
/// klaw::runtime::block_on(async {
///     assert_eq!(rx.next().await, Some(1));
///     assert_eq!(rx.next().await, None);
/// });
/// ```
impl<T: Clone> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        match this.poll_changed(cx) {
            // The value with the version it belongs to, marked seen together: a send since the
            // change was seen must not give its value now and again as the next change.
            Poll::Ready(Ok(())) => Poll::Ready(Some(T::clone(&this.borrow_and_update()))),
            Poll::Ready(Err(RecvError::Closed)) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Shows the value if it can be read at once, else `<locked>`. The value's `Debug` runs under
/// its read lock: it must not send on this channel.
impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.debug("watch::Receiver", f)
    }
}

/// A read guard on a watch channel's value.
///
/// A send waits until every guard of its channel is dropped, so hold one briefly, and never
/// across an `.await`. Drop it before this thread reads the channel's value again through any
/// of its handles (another `borrow`, `borrow_and_update`, `wait_for`): while a send waits, the
/// lock underneath (`std::sync::RwLock`) may make that second read wait for the send, which
/// waits for the first guard, for ever (tokio's `watch` has the same rule).
///
/// ```
/// let (_tx, rx) = klaw::channel::watch::channel(vec![1, 2]);
/// let value: klaw::channel::watch::Ref<'_, Vec<i32>> = rx.borrow();
/// assert_eq!(value.len(), 2);
/// ```
pub struct Ref<'a, T> {
    pub(super) guard: RwLockReadGuard<'a, T>,
    /// The value was new to the receiver that borrowed it (see [`Ref::has_changed`]).
    pub(super) changed: bool,
}

impl<T> Ref<'_, T> {
    /// True if the receiver that borrowed this value had not seen it yet (tokio's
    /// `Ref::has_changed`): for [`Receiver::borrow`], whether it is unseen still; for
    /// [`Receiver::borrow_and_update`] and [`Receiver::wait_for`], whether it was unseen before
    /// they marked it seen. Always false for [`Sender::borrow`](super::Sender::borrow).
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::watch::channel(1);
    /// assert!(!rx.borrow().has_changed());
    /// tx.send(2).unwrap();
    /// assert!(rx.borrow().has_changed()); // `borrow` marks nothing seen
    /// assert!(rx.borrow_and_update().has_changed());
    /// assert!(!rx.borrow_and_update().has_changed());
    /// ```
    pub fn has_changed(&self) -> bool {
        self.changed
    }
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: fmt::Debug> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// The future of [`Receiver::changed`].
///
/// ```
/// let (tx, mut rx) = klaw::channel::watch::channel(0);
/// tx.send(1).unwrap();
/// let changed: klaw::channel::watch::Changed<'_, i32> = rx.changed();
/// assert_eq!(klaw::runtime::block_on(changed), Ok(()));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Changed<'a, T> {
    receiver: &'a mut Receiver<T>,
}

impl<T> Future for Changed<'_, T> {
    type Output = Result<(), RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.receiver.poll_changed(cx)
    }
}

impl<T> Drop for Changed<'_, T> {
    /// A `changed` dropped in line (it lost a `select!`, or timed out) lets go of its task's
    /// waker now, as tokio's does, instead of keeping it until the next send wakes that task
    /// for nothing.
    fn drop(&mut self) {
        let Receiver { shared, ticket, .. } = &mut *self.receiver;
        drop(LeaveLine { shared, ticket });
    }
}

/// A waiting future's place in the line of `changed`, given up when the future is dropped (the
/// waker dropped outside the lock). A completed wait holds no place.
struct LeaveLine<'a, T> {
    shared: &'a Shared<T>,
    ticket: &'a mut Ticket,
}

impl<T> Drop for LeaveLine<'_, T> {
    fn drop(&mut self) {
        leave(&self.shared.waiting, |waiting| &mut waiting.changing, self.ticket);
    }
}

impl<T> fmt::Debug for Changed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Changed").finish_non_exhaustive()
    }
}
