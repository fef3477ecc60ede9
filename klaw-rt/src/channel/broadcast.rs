//! `broadcast(cap)`: every receiver sees every message; one that falls more than `cap` behind
//! is told how many it missed (`Lagged(n)`) and goes on from the oldest kept.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use std::task::{Context, Poll};

use crate::channel::error::SendError;
use crate::channel::wakers::{WaitUntil, Wake, WakerSet};
use crate::sync::{Mutex, MutexGuard};

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

/// `Stream` item error of a broadcast [`Receiver`]: it missed this many messages (the stream
/// goes on from the oldest kept).
///
/// ```
/// use futures_lite::StreamExt;
/// use klaw::channel::broadcast::Lagged;
/// let (tx, mut rx) = klaw::channel::broadcast::channel::<u8>(1);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// drop(tx);
/// klaw::runtime::block_on(async {
///     assert_eq!(rx.next().await, Some(Err(Lagged(1))));
///     assert_eq!(rx.next().await, Some(Ok(2)));
///     assert_eq!(rx.next().await, None); // closed
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the receiver lagged behind and missed {0} messages")]
pub struct Lagged(pub u64);

/// A message, and how many receivers have yet to read it. Shared as an `Arc` so that a receiver
/// clones the message itself outside the lock (a `Clone` that panics, or is slow, touches no
/// other receiver), and the last reader takes it without a clone, unless an earlier reader is
/// still cloning it outside the lock (then both clone: cloning under the lock would run user
/// code there).
struct Slot<T> {
    value: Arc<T>,
    unread: usize,
}

struct State<T> {
    /// The messages some receiver can still read, at most the last `capacity`; `buffer[0]` has
    /// sequence number `first`. A message every receiver has read is dropped at once: those
    /// form a prefix (each receiver reads in order, and one that came later is not counted in
    /// earlier messages).
    buffer: VecDeque<Slot<T>>,
    first: u64,
    senders: usize,
    receivers: usize,
    /// Receivers waiting for the next message.
    receiving: WakerSet,
    /// `Sender::closed` futures, waiting for the last receiver to go.
    closing: WakerSet,
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

    /// Pops the messages every receiver has read into `dropped`, to drop after the lock.
    fn drop_read(&mut self, dropped: &mut Vec<Arc<T>>) {
        while self.buffer.front().is_some_and(|slot| slot.unread == 0) {
            let slot = self.buffer.pop_front().expect("checked above");
            self.first += 1;
            dropped.push(slot.value);
        }
        crate::channel::give_back_room(&mut self.buffer);
    }
}

/// Wakes its waiters when dropped. Held while the messages nobody can read any more are dropped
/// (after the lock), so that a message whose `Drop` panics does not take the wake-up with it: the
/// waiters' wait is over (a message was queued, the last receiver went) whatever that drop does.
struct WakeAfter(Wake);

impl Drop for WakeAfter {
    fn drop(&mut self) {
        std::mem::take(&mut self.0).wake();
    }
}

/// The largest capacity: enough for any use, and far from what would overflow the sequence
/// numbers' arithmetic.
pub const MAX_CAPACITY: usize = usize::MAX >> 2;

/// A broadcast channel keeping the last `capacity` messages for slow receivers. Memory follows
/// the messages some receiver has yet to read, not the capacity.
///
/// # Panics
/// If `capacity` is 0 or more than [`MAX_CAPACITY`]; the message names the accepted range.
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
#[track_caller]
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = shared(capacity, 1);
    (Sender { shared: shared.clone() }, Receiver::at(shared, 0))
}

/// A channel's shared state, with one sender and `receivers` receivers.
#[track_caller]
fn shared<T>(capacity: usize, receivers: usize) -> Arc<Shared<T>> {
    assert!(
        (1..=MAX_CAPACITY).contains(&capacity),
        "a broadcast channel's capacity must be in 1..={MAX_CAPACITY}, not {capacity}"
    );
    Arc::new(Shared {
        state: Mutex::new(State {
            buffer: VecDeque::new(),
            first: 0,
            senders: 1,
            receivers,
            receiving: WakerSet::default(),
            closing: WakerSet::default(),
        }),
        capacity,
    })
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
    /// A sender of a new channel keeping `capacity` messages, with no receiver yet (tokio's
    /// `Sender::new`): [`subscribe`](Self::subscribe) makes them, and sees what is sent from
    /// then on. Until one exists, `send` fails and gives its value back.
    ///
    /// # Panics
    /// As [`channel`](crate::channel::broadcast::channel()): if `capacity` is 0 or more than
    /// [`MAX_CAPACITY`].
    ///
    /// ```
    /// let tx = klaw::channel::broadcast::Sender::<u8>::new(4);
    /// assert_eq!(tx.send(1).unwrap_err().into_inner(), 1); // nobody listens yet
    /// let mut rx = tx.subscribe();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(2));
    /// ```
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        Sender { shared: shared(capacity, 0) }
    }

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
        let value = Arc::new(value);
        let mut state = self.shared.lock();
        let receivers = state.receivers;
        if receivers == 0 {
            drop(state);
            let value = Arc::into_inner(value).expect("the only reference");
            return Err(SendError(value));
        }
        state.buffer.push_back(Slot { value, unread: receivers });
        let evicted = if state.buffer.len() > self.shared.capacity {
            state.first += 1;
            state.buffer.pop_front()
        } else {
            None
        };
        let wake = WakeAfter(state.receiving.take_all());
        drop(state);
        drop(evicted);
        drop(wake);
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
        drop(state);
        Receiver::at(self.shared.clone(), next)
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

    /// How many messages some receiver has yet to read (at most the capacity).
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::broadcast::channel::<u8>(4);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// rx.try_recv().unwrap();
    /// assert_eq!(tx.len(), 1); // every receiver read the first: it is gone
    /// ```
    pub fn len(&self) -> usize {
        self.shared.lock().buffer.len()
    }

    /// True if every receiver has read every message.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::broadcast::channel::<u8>(4);
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every receiver is gone (so a `send` would fail).
    ///
    /// Cancel safety: dropping it loses nothing.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::broadcast::channel::<u8>(4);
    /// std::thread::spawn(move || drop(rx));
    /// klaw::runtime::block_on(tx.closed());
    /// assert_eq!(tx.receiver_count(), 0);
    /// ```
    pub fn closed(&self) -> Closed<'_, T> {
        let shared = &self.shared.state;
        Closed(WaitUntil::new(shared, |state| &mut state.closing, |state| state.receivers == 0))
    }

    /// A sender that does not keep the channel open: [`WeakSender::upgrade`] gives a sender
    /// back while another one still exists.
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::broadcast::channel::<u8>(4);
    /// let weak = tx.downgrade();
    /// weak.upgrade().unwrap().send(1).unwrap();
    /// drop(tx);
    /// assert!(weak.upgrade().is_none());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender { shared: Arc::downgrade(&self.shared) }
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
        let wake = if state.senders == 0 { state.receiving.take_all() } else { Wake::default() };
        drop(state);
        wake.wake();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Sender").field("capacity", &self.shared.capacity).finish()
    }
}

/// A [`Sender`] that does not keep the channel open (see [`Sender::downgrade`]).
///
/// ```
/// let (tx, _rx) = klaw::channel::broadcast::channel::<u8>(4);
/// let weak: klaw::channel::broadcast::WeakSender<u8> = tx.downgrade();
/// assert!(weak.upgrade().is_some());
/// ```
pub struct WeakSender<T> {
    shared: std::sync::Weak<Shared<T>>,
}

impl<T> WeakSender<T> {
    /// A sender, if another sender still keeps the channel open.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::broadcast::channel::<u8>(4);
    /// let weak = tx.downgrade();
    /// drop(tx);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<Sender<T>> {
        let shared = self.shared.upgrade()?;
        let mut state = shared.lock();
        if state.senders == 0 {
            return None;
        }
        state.senders += 1;
        drop(state);
        Some(Sender { shared })
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        WeakSender { shared: self.shared.clone() }
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::WeakSender").finish_non_exhaustive()
    }
}

/// The future of [`Sender::closed`].
///
/// ```
/// let (tx, rx) = klaw::channel::broadcast::channel::<u8>(4);
/// drop(rx);
/// let closed: klaw::channel::broadcast::Closed<'_, u8> = tx.closed();
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
        f.debug_struct("broadcast::Closed").finish_non_exhaustive()
    }
}

mod receiver;
pub use receiver::{Receiver, Recv};

/// The channel's errors where tokio keeps them (`tokio::sync::broadcast::error`), so code
/// written against tokio's paths needs no change here.
///
/// ```
/// use klaw::channel::broadcast::error::{RecvError, SendError, TryRecvError};
/// let (tx, mut rx) = klaw::channel::broadcast::channel::<u8>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(rx);
/// assert_eq!(tx.send(1), Err(SendError(1)));
/// # let _: Option<RecvError> = None;
/// ```
pub mod error {
    pub use super::{RecvError, TryRecvError};
    pub use crate::channel::error::SendError;
}
