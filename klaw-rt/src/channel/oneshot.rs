//! `oneshot()`: exactly one value, from one sender to one receiver.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::channel::error::{RecvError, SendError, TryRecvError};

struct State<T> {
    value: Option<T>,
    receiver_waker: Option<Waker>,
    sender_alive: bool,
    receiver_alive: bool,
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
        receiver_waker: None,
        sender_alive: true,
        receiver_alive: true,
    })));
    (Sender { shared: shared.clone() }, Receiver { shared })
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
        if !state.receiver_alive {
            return Err(SendError(value));
        }
        state.value = Some(value);
        let waker = state.receiver_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
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
        !self.shared.lock().receiver_alive
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sender_alive = false;
        let waker = state.receiver_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
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
/// ```
/// let (tx, mut rx): (_, klaw::channel::oneshot::Receiver<u8>) = klaw::channel::oneshot::channel();
/// tx.send(2).unwrap();
/// assert_eq!(klaw::runtime::block_on(&mut rx), Ok(2));
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
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
        match state.value.take() {
            Some(value) => Ok(value),
            None if state.sender_alive => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Closed),
        }
    }

    /// Refuses the value from now on: a later `send` fails and gives it back.
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::oneshot::channel::<u8>();
    /// rx.close();
    /// assert!(tx.send(1).is_err());
    /// ```
    pub fn close(&mut self) {
        self.shared.lock().receiver_alive = false;
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.lock();
        if let Some(value) = state.value.take() {
            return Poll::Ready(Ok(value));
        }
        if !state.sender_alive {
            return Poll::Ready(Err(RecvError::Closed));
        }
        if !state.receiver_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            state.receiver_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.lock().receiver_alive = false;
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("oneshot::Receiver")
            .field("ready", &state.value.is_some())
            .field("closed", &!state.sender_alive)
            .finish()
    }
}
