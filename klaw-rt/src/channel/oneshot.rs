//! `oneshot()`: exactly one value, from one sender to one receiver.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::channel::error::{RecvError, SendError, TryRecvError};
use crate::channel::wakers::{Ticket, WaitUntil, WakerSet, leave, poll_or_wait};
use crate::coop;
use crate::sync::{Mutex, MutexGuard};

struct State<T> {
    value: Option<T>,
    /// The receiver, waiting for the value or the sender's end.
    receiver_waiting: WakerSet,
    /// `Sender::closed` futures, waiting for the receiver's end.
    sender_waiting: WakerSet,
    /// False once the sender sent (in `send` itself, not when it is dropped after) or was
    /// dropped: nothing more will come, so a receiver that took the value is closed at once.
    sender_alive: bool,
    /// False once the receiver was dropped or closed: nothing can be sent any more.
    receiver_open: bool,
}

struct Shared<T>(Mutex<State<T>>);

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.0.lock()
    }
}

/// A channel for exactly one value.
///
/// ```
/// let (tx, rx) = klaw::channel::oneshot::channel::<u32>();
/// std::thread::spawn(move || tx.send(7).unwrap());
/// assert_eq!(klaw::runtime::block_on(rx), Ok(7));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared(Mutex::new(State {
        value: None,
        receiver_waiting: WakerSet::default(),
        sender_waiting: WakerSet::default(),
        sender_alive: true,
        receiver_open: true,
    })));
    let sender = Sender { shared: shared.clone(), closed_ticket: Ticket::default() };
    (sender, Receiver { shared, ticket: Ticket::default(), done: false })
}

/// Sends the one value of a [`oneshot`](crate::channel::oneshot::channel()) channel.
///
/// ```
/// let (tx, rx): (klaw::channel::oneshot::Sender<u8>, _) = klaw::channel::oneshot::channel();
/// tx.send(1).unwrap();
/// assert_eq!(klaw::runtime::block_on(rx), Ok(1));
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
    /// The place of this sender's waker among `sender_waiting`, while
    /// [`poll_closed`](Self::poll_closed) waits (kept between polls, as tokio keeps it).
    closed_ticket: Ticket,
}

impl<T> Sender<T> {
    /// Sends the value; `Err(SendError(value))` if the receiver is gone.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::oneshot::channel::<u8>();
    /// drop(rx);
    /// assert_eq!(tx.send(1).unwrap_err().into_inner(), 1);
    /// ```
    pub fn send(self, value: T) -> Result<(), SendError<T>> {
        let mut state = self.shared.lock();
        if !state.receiver_open {
            return Err(SendError(value));
        }
        state.value = Some(value);
        state.sender_alive = false;
        let wake = state.receiver_waiting.take_all();
        drop(state);
        wake.wake();
        Ok(())
    }

    /// True if the receiver is gone, so a send would fail.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::oneshot::channel::<u8>();
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().receiver_open
    }

    /// Waits until the receiver is gone or closed, so that there is no point in computing the
    /// value any more.
    ///
    /// Cancel safety: dropping it loses nothing.
    ///
    /// ```
    /// let (mut tx, rx) = klaw::channel::oneshot::channel::<u8>();
    /// std::thread::spawn(move || drop(rx));
    /// klaw::runtime::block_on(tx.closed());
    /// assert!(tx.is_closed());
    /// ```
    pub fn closed(&mut self) -> Closed<'_, T> {
        let shared = &self.shared.0;
        Closed(WaitUntil::new(
            shared,
            |state| &mut state.sender_waiting,
            |state| !state.receiver_open,
        ))
    }
}

impl<T> Sender<T> {
    /// `Ready` once the receiver is gone or closed; otherwise `Pending`, and the task of `cx`
    /// is woken when it is. The waker is kept by the sender: only the task of the latest call
    /// is woken, and dropping the sender lets it go. For a hand-written `Future` or `poll_fn`;
    /// [`closed`](Self::closed) is the same as a future. Takes part in the
    /// [cooperative budget](crate::coop::consume_budget) as `closed` does.
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    ///
    /// let (mut tx, rx) = klaw::channel::oneshot::channel::<u8>();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert_eq!(tx.poll_closed(&mut cx), Poll::Pending);
    /// drop(rx);
    /// assert_eq!(tx.poll_closed(&mut cx), Poll::Ready(()));
    /// ```
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (shared, ticket) = (&self.shared.0, &mut self.closed_ticket);
        coop::budgeted(cx, |cx| {
            poll_or_wait(
                shared,
                |state| &mut state.sender_waiting,
                ticket,
                cx,
                |state| (!state.receiver_open).then_some(()),
            )
        })
    }
}

/// The future of [`Sender::closed`].
///
/// ```
/// let (mut tx, rx) = klaw::channel::oneshot::channel::<u8>();
/// drop(rx);
/// let closed: klaw::channel::oneshot::Closed<'_, u8> = tx.closed();
/// klaw::runtime::block_on(closed);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Closed<'a, T>(WaitUntil<'a, State<T>>);

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll(cx)
    }
}

impl<T> fmt::Debug for Closed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Closed").finish_non_exhaustive()
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // The waker `poll_closed` left, dropped after the lock.
        leave(&self.shared.0, |state| &mut state.sender_waiting, &mut self.closed_ticket);
        let mut state = self.shared.lock();
        state.sender_alive = false;
        let wake = state.receiver_waiting.take_all();
        drop(state);
        wake.wake();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").field("closed", &self.is_closed()).finish()
    }
}

/// Receives the one value of a [`oneshot`](crate::channel::oneshot::channel()) channel: await it.
///
/// Cancel safety: the receiver is itself the future, so dropping it drops the value with it
/// (and a later `send` fails, giving the value back to the sender). To wait in a `select!`
/// without giving it up, await `&mut rx`: the losing arm then drops only the borrow.
///
/// In a klaw task, awaiting it takes part in the [cooperative budget](crate::coop::consume_budget):
/// polled once the task's budget is spent, it yields first, taking nothing.
///
/// ```
/// let (tx, mut rx): (_, klaw::channel::oneshot::Receiver<u8>) = klaw::channel::oneshot::channel();
/// tx.send(2).unwrap();
/// assert_eq!(klaw::runtime::block_on(&mut rx), Ok(2));
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    ticket: Ticket,
    /// Set once the receiver gave its result (as a future, it is then terminated).
    done: bool,
}

impl<T> Receiver<T> {
    /// The value if it has been sent.
    ///
    /// ```
    /// use klaw::channel::TryRecvError;
    /// let (tx, mut rx) = klaw::channel::oneshot::channel::<u8>();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(3));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        let result = match state.value.take() {
            Some(value) => Ok(value),
            None if state.sender_alive && state.receiver_open => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Closed),
        };
        drop(state);
        // The value taken, or none to come: either way this receiver is finished (as tokio's,
        // `is_terminated` says so).
        self.done |= !matches!(result, Err(TryRecvError::Empty));
        result
    }

    /// Refuses the value from now on: a later `send` fails and gives it back, and the receiver
    /// resolves at once, with the value if it was already sent, else with
    /// [`RecvError::Closed`]. A sender waiting in [`Sender::closed`] wakes up.
    ///
    /// ```
    /// use klaw::channel::RecvError;
    /// let (tx, mut rx) = klaw::channel::oneshot::channel::<u8>();
    /// rx.close();
    /// assert_eq!(klaw::runtime::block_on(&mut rx), Err(RecvError::Closed));
    /// assert_eq!(tx.send(1).unwrap_err().into_inner(), 1);
    /// ```
    pub fn close(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_open = false;
        let wake = state.sender_waiting.take_all();
        drop(state);
        wake.wake();
    }

    /// True if nothing was sent yet (or the value was already received).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::oneshot::channel::<u8>();
    /// assert!(rx.is_empty());
    /// tx.send(1).unwrap();
    /// assert!(!rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shared.lock().value.is_none()
    }

    /// True once the receiver gave its result: awaiting it again would panic, as for any
    /// finished future. It is what its `FusedFuture` says to `futures::select!`; `klaw::select!`
    /// does not ask, so leave a finished receiver out of the arms (a loop over several can
    /// check this first, or keep each in an `Option`).
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::oneshot::channel::<u8>();
    /// tx.send(1).unwrap();
    /// assert!(!rx.is_terminated());
    /// assert_eq!(klaw::runtime::block_on(&mut rx), Ok(1));
    /// assert!(rx.is_terminated());
    /// ```
    pub fn is_terminated(&self) -> bool {
        self.done
    }

    /// Blocks the thread until the value arrives or the sender is gone: for blocking code, not
    /// for async code (it would block a worker).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::oneshot::channel::<u8>();
    /// std::thread::spawn(move || tx.send(5).unwrap());
    /// assert_eq!(rx.blocking_recv(), Ok(5));
    /// ```
    pub fn blocking_recv(self) -> Result<T, RecvError> {
        crate::poller::block_outside_tasks(self)
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    /// Polled again after it gave its result (here or through `try_recv`), it gives
    /// `Err(Closed)`: its value is gone (tokio's panics).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.done {
            // Still a unit of the budget: a loop that awaits a finished receiver again and again
            // (a `select!` arm whose `Err` does not break) yields to its worker's other tasks.
            return coop::budgeted(cx, |_| Poll::Ready(Err(RecvError::Closed)));
        }
        let (shared, ticket) = (&this.shared.0, &mut this.ticket);
        let polled = coop::budgeted(cx, |cx| {
            poll_or_wait(
                shared,
                |state| &mut state.receiver_waiting,
                ticket,
                cx,
                |state| match state.value.take() {
                    Some(value) => Some(Ok(value)),
                    None if !state.sender_alive || !state.receiver_open => {
                        Some(Err(RecvError::Closed))
                    }
                    None => None,
                },
            )
        });
        this.done = polled.is_ready();
        polled
    }
}

impl<T> FusedFuture for Receiver<T> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_open = false;
        let removed = state.receiver_waiting.remove(&mut self.ticket);
        // A value sent and never received is the receiver's: dropped with it, outside the lock.
        let value = state.value.take();
        let wake = state.sender_waiting.take_all();
        drop(state);
        drop(removed);
        drop(value);
        wake.wake();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        let ready = state.value.is_some();
        let closed = !state.sender_alive || !state.receiver_open;
        drop(state);
        f.debug_struct("oneshot::Receiver").field("ready", &ready).field("closed", &closed).finish()
    }
}

/// The channel's errors where tokio keeps them (`tokio::sync::oneshot::error`), so code written
/// against tokio's paths needs no change here. They are the MPMC channel's.
///
/// ```
/// use klaw::channel::oneshot::error::{RecvError, TryRecvError};
/// let (tx, mut rx) = klaw::channel::oneshot::channel::<u8>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(klaw::runtime::block_on(rx), Err(RecvError::Closed));
/// ```
pub mod error {
    pub use crate::channel::error::{RecvError, SendError, TryRecvError};
}
