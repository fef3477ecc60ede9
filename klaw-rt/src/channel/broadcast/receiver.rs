//! A broadcast channel's receiving end: each [`Receiver`] reads every message from its own
//! place in the shared queue, and the last one to read a message lets it go.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::{Lagged, RecvError, Shared, State, TryRecvError, WakeAfter};
use crate::channel::wakers::{Ticket, Wake, leave, poll_or_wait};
use crate::coop;

/// Receives every message of a [`broadcast`](crate::channel::broadcast::channel()) channel, in
/// order. It is also a `futures::Stream` of `Result<T, Lagged>`, which ends when every sender
/// is gone and every message was seen.
///
/// ```
/// let (tx, mut rx): (_, klaw::channel::broadcast::Receiver<&str>) = klaw::channel::broadcast::channel(4);
/// tx.send("hello").unwrap();
/// assert_eq!(klaw::runtime::block_on(rx.recv()), Ok("hello"));
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// Sequence number of the next message this receiver will see.
    next: u64,
    ticket: Ticket,
}

impl<T> Receiver<T> {
    pub(super) fn at(shared: Arc<Shared<T>>, next: u64) -> Self {
        Receiver { shared, next, ticket: Ticket::default() }
    }

    /// How many messages this receiver has yet to read (those still kept).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::broadcast::channel::<u8>(4);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        let state = self.shared.lock();
        (state.end() - self.next.max(state.first)) as usize
    }

    /// True if this receiver has read every message kept.
    ///
    /// ```
    /// let (_tx, rx) = klaw::channel::broadcast::channel::<u8>(4);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new receiver that, like one from [`Sender::subscribe`](super::Sender::subscribe), sees the messages sent from
    /// now on (tokio's meaning).
    ///
    /// ```
    /// let (tx, mut a) = klaw::channel::broadcast::channel::<u8>(4);
    /// tx.send(1).unwrap();
    /// let mut b = a.resubscribe();
    /// tx.send(2).unwrap();
    /// assert_eq!((a.try_recv(), b.try_recv()), (Ok(1), Ok(2)));
    /// ```
    pub fn resubscribe(&self) -> Self {
        let mut state = self.shared.lock();
        state.receivers += 1;
        let next = state.end();
        drop(state);
        Receiver::at(self.shared.clone(), next)
    }
}

impl<T: Clone> Receiver<T> {
    /// Receives the next message.
    ///
    /// Cancel safety: a `recv` dropped before it completes consumes nothing; the message stays
    /// for the next call.
    ///
    /// In a klaw task it takes part in the [cooperative budget](crate::coop::consume_budget): a
    /// receive polled once the task's budget is spent yields first, taking nothing.
    ///
    /// # Panics
    /// If the message's `Clone` panics: the panic comes through this call, once, and the
    /// receiver has moved past that message.
    ///
    /// ```
    /// use klaw::channel::broadcast::RecvError;
    /// let (tx, mut rx) = klaw::channel::broadcast::channel::<u32>(2);
    /// for i in 0..5 {
    ///     tx.send(i).unwrap();
    /// }
    /// klaw::runtime::block_on(async {
    ///     assert_eq!(rx.recv().await, Err(RecvError::Lagged(3))); // 0, 1, 2 were dropped
    ///     assert_eq!(rx.recv().await, Ok(3));
    /// });
    /// ```
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { receiver: self }
    }

    /// Receives from blocking code, waiting for the next message: for threads outside any
    /// async runtime (it would block a worker). As `recv`: `Lagged(n)` if this receiver fell
    /// behind, `Closed` once every sender is gone and it has read everything.
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::broadcast::channel::<u32>(4);
    /// std::thread::spawn(move || tx.send(7).unwrap());
    /// assert_eq!(rx.blocking_recv(), Ok(7));
    /// assert_eq!(rx.blocking_recv(), Err(klaw::channel::broadcast::RecvError::Closed));
    /// ```
    pub fn blocking_recv(&mut self) -> Result<T, RecvError> {
        crate::poller::block_outside_tasks(self.recv())
    }

    /// Receives the next message if there is one.
    ///
    /// ```
    /// use klaw::channel::broadcast::TryRecvError;
    /// let (tx, mut rx) = klaw::channel::broadcast::channel::<u32>(2);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut dropped = Vec::new();
        let mut state = self.shared.lock();
        let taken = take(&mut self.next, &mut state, &mut dropped);
        // Found nothing: a wake-up a pending `recv` or stream poll of this receiver registered
        // stays, so the next send still wakes that task (it may return `Pending` after this).
        let removed = match &taken {
            Err(TryRecvError::Empty) => None,
            _ => state.receiving.remove(&mut self.ticket),
        };
        drop(state);
        drop(removed);
        drop(dropped);
        taken.map(into_value)
    }

    /// One poll of a `recv`, taking a unit of the task's cooperative budget when it completes
    /// (with the budget spent, it yields and takes nothing).
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let Receiver { shared, next, ticket } = self;
        let polled = coop::budgeted(cx, |cx| {
            poll_or_wait(
                &shared.state,
                |state| &mut state.receiving,
                ticket,
                cx,
                |state| {
                    let mut dropped = Vec::new();
                    match take(next, state, &mut dropped) {
                        Ok(value) => Some((Ok(value), dropped)),
                        Err(TryRecvError::Lagged(missed)) => {
                            Some((Err(RecvError::Lagged(missed)), dropped))
                        }
                        Err(TryRecvError::Closed) => Some((Err(RecvError::Closed), dropped)),
                        Err(TryRecvError::Empty) => None,
                    }
                },
            )
        });
        // Outside the lock: the messages every receiver has read are dropped, then this one's
        // value is cloned (or taken, if this receiver was its last reader).
        polled.map(|(taken, dropped)| {
            drop(dropped);
            taken.map(into_value)
        })
    }
}

/// The next message for a receiver at `next`, moving it on; the messages that every receiver
/// has now read go to `dropped`.
fn take<T>(
    next: &mut u64,
    state: &mut State<T>,
    dropped: &mut Vec<Arc<T>>,
) -> Result<Arc<T>, TryRecvError> {
    if *next < state.first {
        let missed = state.first - *next;
        *next = state.first;
        return Err(TryRecvError::Lagged(missed));
    }
    if *next < state.end() {
        let slot = &mut state.buffer[(*next - state.first) as usize];
        slot.unread -= 1;
        let value = slot.value.clone();
        *next += 1;
        state.drop_read(dropped);
        return Ok(value);
    }
    if state.senders == 0 { Err(TryRecvError::Closed) } else { Err(TryRecvError::Empty) }
}

/// A message as a receiver gets it: taken if nobody else holds it, cloned otherwise.
fn into_value<T: Clone>(value: Arc<T>) -> T {
    Arc::try_unwrap(value).unwrap_or_else(|shared| T::clone(&shared))
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut dropped = Vec::new();
        let mut state = self.shared.lock();
        state.receivers -= 1;
        // The messages it has not read no longer wait for it.
        let from = self.next.max(state.first);
        let first = state.first;
        for slot in state.buffer.range_mut((from - first) as usize..) {
            slot.unread -= 1;
        }
        state.drop_read(&mut dropped);
        let removed = state.receiving.remove(&mut self.ticket);
        let wake = WakeAfter(if state.receivers == 0 {
            state.closing.take_all()
        } else {
            Wake::default()
        });
        drop(state);
        drop(removed);
        drop(dropped);
        drop(wake);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Receiver").field("next", &self.next).finish()
    }
}

impl<T: Clone> Stream for Receiver<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(|received| match received {
            Ok(value) => Some(Ok(value)),
            Err(RecvError::Lagged(missed)) => Some(Err(Lagged(missed))),
            Err(RecvError::Closed) => None,
        })
    }
}

/// The future of [`Receiver::recv`].
///
/// ```
/// let (tx, mut rx) = klaw::channel::broadcast::channel::<u8>(4);
/// tx.send(1).unwrap();
/// let next: klaw::channel::broadcast::Recv<'_, u8> = rx.recv();
/// assert_eq!(klaw::runtime::block_on(next), Ok(1));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    receiver: &'a mut Receiver<T>,
}

impl<T: Clone> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.receiver.poll_recv(cx)
    }
}

impl<T> Drop for Recv<'_, T> {
    /// A `recv` dropped in line (it lost a `select!`, or timed out) lets go of its task's waker
    /// now, as tokio's does, instead of keeping it until the next send wakes that task for
    /// nothing. The waker is dropped outside the lock.
    fn drop(&mut self) {
        let Receiver { shared, ticket, .. } = &mut *self.receiver;
        leave(&shared.state, |state| &mut state.receiving, ticket);
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Recv").finish_non_exhaustive()
    }
}
