//! `broadcast(cap)`: every receiver sees every message; one that falls more than `cap` behind
//! is told how many it missed (`Lagged(n)`) and goes on from the oldest kept.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::channel::error::SendError;

/// Why a broadcast `recv` gave no message.
///
/// ```
/// use klaw::channel::broadcast::RecvError;
/// let (tx, mut rx) = klaw::channel::broadcast::channel::<u8>(1);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Lagged(1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// This receiver fell behind by more than the capacity and missed `n` messages; the next
    /// `recv` gives the oldest message still kept.
    #[error("the receiver lagged behind and missed {0} messages")]
    Lagged(u64),
    /// Every sender is gone and this receiver has seen every message.
    #[error("receiving on a closed broadcast channel")]
    Closed,
}

/// Why a broadcast `try_recv` gave no message.
///
/// ```
/// use klaw::channel::broadcast::TryRecvError;
/// let (_tx, mut rx) = klaw::channel::broadcast::channel::<u8>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing new yet.
    #[error("no new message")]
    Empty,
    /// Missed `n` messages, as [`RecvError::Lagged`].
    #[error("the receiver lagged behind and missed {0} messages")]
    Lagged(u64),
    /// Every sender is gone and every message was seen.
    #[error("receiving on a closed broadcast channel")]
    Closed,
}

struct State<T> {
    /// The last `capacity` messages; `buffer[0]` has sequence number `first`.
    buffer: VecDeque<T>,
    first: u64,
    senders: usize,
    receivers: usize,
    /// Wakers of receivers waiting for the next message. Every send drains them all and bumps
    /// `epoch`, so a receiver's key is valid only in the epoch it was taken in.
    waiting: Slab<Waker>,
    epoch: u64,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock()
    }
}

impl<T> State<T> {
    fn end(&self) -> u64 {
        self.first + self.buffer.len() as u64
    }
}

/// A broadcast channel keeping the last `capacity` messages for slow receivers.
///
/// # Panics
/// If `capacity` is 0.
///
/// ```
/// let (tx, mut a) = klaw::channel::broadcast::channel::<u32>(8);
/// let mut b = tx.subscribe();
/// tx.send(1).unwrap();
/// klaw::runtime::block_on(async {
///     assert_eq!(a.recv().await, Ok(1));
///     assert_eq!(b.recv().await, Ok(1)); // every receiver sees every message
/// });
/// ```
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "a broadcast channel needs a capacity of at least 1");
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buffer: VecDeque::with_capacity(capacity.min(1024)),
            first: 0,
            senders: 1,
            receivers: 1,
            waiting: Slab::new(),
            epoch: 0,
        }),
        capacity,
    });
    (Sender { shared: shared.clone() }, Receiver { shared, next: 0, waiter: None })
}

/// Sends to every receiver of a [`broadcast`](crate::channel::broadcast::channel()) channel.
///
/// ```
/// let (tx, mut rx): (klaw::channel::broadcast::Sender<u8>, _) = klaw::channel::broadcast::channel(4);
/// let tx2 = tx.clone();
/// tx2.send(1).unwrap();
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Sends `value` to every current receiver; the number of receivers, or
    /// `Err(SendError(value))` if there is none. Never waits: a receiver that falls behind by
    /// more than the capacity gets `Lagged`.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::broadcast::channel::<u8>(2);
    /// assert_eq!(tx.send(1), Ok(1));
    /// drop(rx);
    /// assert_eq!(tx.send(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let mut state = self.shared.lock();
        if state.receivers == 0 {
            return Err(SendError(value));
        }
        state.buffer.push_back(value);
        let evicted = if state.buffer.len() > self.shared.capacity {
            state.first += 1;
            state.buffer.pop_front()
        } else {
            None
        };
        let wakers: Vec<Waker> = state.waiting.drain().collect();
        state.epoch += 1;
        let receivers = state.receivers;
        drop(state);
        drop(evicted);
        for waker in wakers {
            waker.wake();
        }
        Ok(receivers)
    }

    /// A new receiver that sees the messages sent from now on.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::broadcast::channel::<u8>(2);
    /// tx.send(1).unwrap();
    /// let mut late = tx.subscribe();
    /// assert!(late.try_recv().is_err()); // it missed nothing: it came after
    /// ```
    pub fn subscribe(&self) -> Receiver<T> {
        let mut state = self.shared.lock();
        state.receivers += 1;
        let next = state.end();
        Receiver { shared: self.shared.clone(), next, waiter: None }
    }

    /// How many receivers exist.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::broadcast::channel::<u8>(2);
    /// assert_eq!(tx.receiver_count(), 1);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.shared.lock().receivers
    }

    /// The capacity: how many messages are kept for slow receivers.
    ///
    /// ```
    /// assert_eq!(klaw::channel::broadcast::channel::<u8>(16).0.capacity(), 16);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let wakers: Vec<Waker> = if state.senders == 0 {
            state.epoch += 1;
            state.waiting.drain().collect()
        } else {
            Vec::new()
        };
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Sender").field("capacity", &self.shared.capacity).finish()
    }
}

/// Receives every message of a [`broadcast`](crate::channel::broadcast::channel()) channel, in order.
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
    /// This receiver's waker key, and the epoch it belongs to.
    waiter: Option<(usize, u64)>,
}

impl<T: Clone> Receiver<T> {
    /// Receives the next message.
    ///
    /// Cancel safety: a `recv` dropped before it completes consumes nothing; the message stays
    /// for the next call.
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
        let Receiver { shared, next, waiter } = self;
        let mut state = shared.lock();
        let result = take(next, &state);
        stop_waiting(waiter, &mut state);
        result
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let Receiver { shared, next, waiter } = self;
        let mut state = shared.lock();
        let result = match take(next, &state) {
            Ok(value) => Ok(value),
            Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
            Err(TryRecvError::Empty) => {
                let epoch = state.epoch;
                match *waiter {
                    Some((key, at)) if at == epoch => {
                        let waker = &mut state.waiting[key];
                        if !waker.will_wake(cx.waker()) {
                            *waker = cx.waker().clone();
                        }
                    }
                    _ => *waiter = Some((state.waiting.insert(cx.waker().clone()), epoch)),
                }
                return Poll::Pending;
            }
        };
        stop_waiting(waiter, &mut state);
        Poll::Ready(result)
    }
}

/// The next message for a receiver at `next`, moving it on.
fn take<T: Clone>(next: &mut u64, state: &State<T>) -> Result<T, TryRecvError> {
    if *next < state.first {
        let missed = state.first - *next;
        *next = state.first;
        return Err(TryRecvError::Lagged(missed));
    }
    if *next < state.end() {
        let value = state.buffer[(*next - state.first) as usize].clone();
        *next += 1;
        return Ok(value);
    }
    if state.senders == 0 { Err(TryRecvError::Closed) } else { Err(TryRecvError::Empty) }
}

/// Removes a receiver's waker, if it is still registered (same epoch).
fn stop_waiting<T>(waiter: &mut Option<(usize, u64)>, state: &mut State<T>) {
    if let Some((key, at)) = waiter.take() {
        if at == state.epoch {
            state.waiting.remove(key);
        }
    }
}

impl<T> Receiver<T> {
    /// A new receiver at the same position as this one.
    ///
    /// ```
    /// let (tx, mut a) = klaw::channel::broadcast::channel::<u8>(4);
    /// tx.send(1).unwrap();
    /// let mut b = a.resubscribe();
    /// assert_eq!((a.try_recv(), b.try_recv()), (Ok(1), Ok(1)));
    /// ```
    pub fn resubscribe(&self) -> Self {
        self.shared.lock().receivers += 1;
        Receiver { shared: self.shared.clone(), next: self.next, waiter: None }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receivers -= 1;
        stop_waiting(&mut self.waiter, &mut state);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Receiver").field("next", &self.next).finish()
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

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Recv").finish_non_exhaustive()
    }
}
