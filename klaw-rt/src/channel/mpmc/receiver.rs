//! The receiving half: `recv`, `try_recv`, and `Stream`.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::channel::error::{RecvError, TryRecvError};
use crate::channel::mpmc::chan::Chan;

/// The receiving half of an MPMC [`channel`](crate::channel::bounded()). Clone it for competing
/// consumers: each message goes to exactly **one** receiver (for every receiver to see every
/// message, use [`broadcast`](crate::channel::broadcast::channel())). It is a [`Stream`] that ends when
/// the channel is closed and drained.
///
/// When the last receiver is dropped the channel closes and the messages still queued are
/// dropped at once, as nobody can receive them, not when the last sender goes: whatever a
/// message holds (a reply's sender, a permit, a file) is released then. Those messages were
/// accepted by `send` and are never delivered; a sender that must know should keep a receiver,
/// or use [`Sender::closed`](crate::channel::Sender::closed) to stop sending.
///
/// ```
/// use std::sync::Arc;
/// let (tx, rx) = klaw::channel::bounded::<Arc<()>>(4);
/// let held = Arc::new(());
/// tx.try_send(held.clone()).unwrap();
/// drop(rx);
/// assert_eq!(Arc::strong_count(&held), 1); // the queued message was dropped with the receiver
/// assert!(tx.is_closed());
/// ```
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u32>(4);
/// let rx2 = rx.clone();
/// tx.try_send(1).unwrap();
/// tx.try_send(2).unwrap();
/// let a = rx.try_recv().unwrap();
/// let b = rx2.try_recv().unwrap(); // competing consumers: each message once
/// assert_eq!((a, b), (1, 2));
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// The waiter of this receiver's `Stream`, if it is waiting.
    stream_waiter: Option<usize>,
    /// The yields of this receiver's `Stream` since its last item (see `Chan::poll_recv`).
    stream_yielded: bool,
}

impl<T> Receiver<T> {
    pub(crate) fn new(chan: Arc<Chan<T>>) -> Self {
        Self { chan, stream_waiter: None, stream_yielded: false }
    }

    /// Receives the oldest message, waiting for one if the channel is empty; `Err(Closed)` once
    /// the channel is closed and drained.
    ///
    /// Cancel safety: a `recv` dropped before it completes loses no message. Messages stay in
    /// the channel until a receive takes one, and the wake-up a waiting `recv` was given for a
    /// message passes to the next waiting receiver when it is dropped.
    ///
    /// A receive that finds the channel empty first yields to its task once (it wakes the task
    /// and returns `Pending`), since a message usually comes within a poll, and only then waits
    /// in line. Waiting receivers are woken in the order they started waiting,
    /// one per message.
    ///
    /// In a klaw task it takes part in the [cooperative budget](crate::coop::consume_budget): a
    /// receive polled once the task's budget is spent yields first, taking no message.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<&str>(1);
    /// std::thread::spawn(move || klaw::runtime::block_on(tx.send("hi")));
    /// assert_eq!(klaw::runtime::block_on(rx.recv()), Ok("hi"));
    /// ```
    pub fn recv(&self) -> Recv<'_, T> {
        Recv { chan: &self.chan, waiter: None, yielded: false }
    }

    /// Receives up to `limit` messages into `buffer`, waiting for the first if the channel is
    /// empty: tokio's `recv_many`, with a typed result. `Ok(n)` is how many were appended, in
    /// the order [`recv`](Self::recv) would give them: at least one, unless `limit` is 0 (then
    /// `Ok(0)` at once). The messages after the first are the ones ready then: it never waits
    /// for a second. `Err(Closed)` once the channel is closed and empty; `buffer` keeps what it
    /// held.
    ///
    /// Cancel safety: as `recv`, a `recv_many` dropped before it completes took no message.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u32>(8);
    /// for i in 0..5 {
    ///     tx.try_send(i).unwrap();
    /// }
    /// drop(tx);
    /// let mut batch = Vec::new();
    /// klaw::runtime::block_on(async {
    ///     assert_eq!(rx.recv_many(&mut batch, 3).await, Ok(3));
    ///     assert_eq!(rx.recv_many(&mut batch, 3).await, Ok(2));
    ///     assert!(rx.recv_many(&mut batch, 3).await.is_err()); // closed and drained
    /// });
    /// assert_eq!(batch, [0, 1, 2, 3, 4]);
    /// ```
    pub fn recv_many<'a>(&'a self, buffer: &'a mut Vec<T>, limit: usize) -> RecvMany<'a, T> {
        RecvMany { recv: self.recv(), buffer, limit }
    }

    /// [`recv_many`](Self::recv_many) from blocking code: for threads outside any async runtime
    /// (it would block a worker).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u32>(4);
    /// std::thread::spawn(move || tx.send_blocking(7).unwrap());
    /// let mut batch = Vec::new();
    /// assert_eq!(rx.recv_many_blocking(&mut batch, 4), Ok(1));
    /// assert_eq!(batch, [7]);
    /// ```
    pub fn recv_many_blocking(
        &self,
        buffer: &mut Vec<T>,
        limit: usize,
    ) -> Result<usize, RecvError> {
        crate::poller::block_outside_tasks(self.recv_many(buffer, limit))
    }

    /// Receives a message if one is ready.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// assert!(rx.try_recv().is_err());
    /// tx.try_send(9).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(9));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_pop()
    }

    /// Receives from blocking code, waiting for a message: for threads outside any async
    /// runtime (it would block a worker). `Err(RecvError::Closed)` once the channel is closed
    /// and empty.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u32>(1);
    /// std::thread::spawn(move || tx.send_blocking(7).unwrap());
    /// assert_eq!(rx.recv_blocking(), Ok(7));
    /// assert!(rx.recv_blocking().is_err()); // the sender is gone
    /// ```
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        crate::poller::block_outside_tasks(self.recv())
    }

    /// True if a bounded channel holds `capacity` messages (never, for an unbounded one).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// tx.try_send(1).unwrap();
    /// assert!(rx.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|capacity| self.chan.len() >= capacity)
    }

    /// Closes the channel for everyone: senders fail from now on, receivers still get what is
    /// queued. True if this call closed it.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(2);
    /// tx.try_send(1).unwrap();
    /// assert!(rx.close());
    /// assert!(tx.try_send(2).unwrap_err().is_closed());
    /// assert_eq!(rx.try_recv(), Ok(1)); // queued messages are still delivered
    /// assert!(rx.try_recv().is_err());
    /// ```
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// True once the channel is closed (messages may still be queued).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// The capacity given to [`channel`](crate::channel::bounded()), or `None` if unbounded. Stored,
    /// not derived from the queue.
    ///
    /// ```
    /// assert_eq!(klaw::channel::bounded::<u8>(64).1.capacity(), Some(64));
    /// assert_eq!(klaw::channel::unbounded::<u8>().1.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// How many messages are queued now.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(4);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if no message is queued now.
    ///
    /// ```
    /// assert!(klaw::channel::bounded::<u8>(4).1.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many senders exist.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// let _tx2 = tx.clone();
    /// assert_eq!(rx.sender_count(), 2);
    /// ```
    pub fn sender_count(&self) -> usize {
        self.chan.sender_count()
    }

    /// How many receivers exist.
    ///
    /// ```
    /// let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    /// assert_eq!(rx.clone().receiver_count(), 2);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.chan.receiver_count()
    }

    /// How many [`WeakSender`](crate::channel::WeakSender)s of the channel exist (tokio's
    /// `sender_weak_count`; `sender_count` is its `sender_strong_count`).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// let _weak = tx.downgrade();
    /// assert_eq!((rx.sender_count(), rx.weak_sender_count()), (1, 1));
    /// ```
    pub fn weak_sender_count(&self) -> usize {
        super::sender::weak_senders(&self.chan)
    }

    /// True if `other` receives from the same channel (async-channel's `same_channel`).
    ///
    /// ```
    /// let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    /// let (_other_tx, other) = klaw::channel::bounded::<u8>(1);
    /// assert!(rx.same_channel(&rx.clone()));
    /// assert!(!rx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

/// The future of [`Receiver::recv`].
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u8>(1);
/// tx.try_send(4).unwrap();
/// let receiving: klaw::channel::Recv<'_, u8> = rx.recv();
/// assert_eq!(klaw::runtime::block_on(receiving), Ok(4));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    chan: &'a Chan<T>,
    waiter: Option<usize>,
    yielded: bool,
}

impl<T> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.chan.poll_recv(&mut this.waiter, &mut this.yielded, false, cx)
    }
}

impl<T> Recv<'_, T> {
    /// `select!`'s first pass over its arms: see [`__select_look`](crate::channel::__select_look).
    #[inline]
    pub(crate) fn poll_look(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        self.chan.poll_recv_now(&mut self.waiter, cx)
    }

    /// `select!`'s second pass: see [`__select_join`](crate::channel::__select_join).
    #[inline]
    pub(crate) fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        if self.waiter.is_some() {
            return Poll::Pending; // in line already: the first pass polled it
        }
        self.chan.poll_recv_join(&mut self.waiter, cx)
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.waiter.take() {
            self.chan.leave_receivers(key);
        }
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").field("waiting", &self.waiter.is_some()).finish()
    }
}

/// The future of [`Receiver::recv_many`]: the number of messages it appended to the buffer.
///
/// ```
/// let (tx, rx) = klaw::channel::unbounded::<u8>();
/// tx.try_send(1).unwrap();
/// let mut batch = Vec::new();
/// let receiving: klaw::channel::RecvMany<'_, u8> = rx.recv_many(&mut batch, 10);
/// assert_eq!(klaw::runtime::block_on(receiving), Ok(1));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct RecvMany<'a, T> {
    recv: Recv<'a, T>,
    buffer: &'a mut Vec<T>,
    limit: usize,
}

impl<T> Future for RecvMany<'_, T> {
    type Output = Result<usize, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.limit == 0 {
            return Poll::Ready(Ok(0));
        }
        // The first as `recv` takes it (waiting, yielding, in the budget), the rest as ready.
        let first = std::task::ready!(Pin::new(&mut this.recv).poll(cx))?;
        this.buffer.push(first);
        let mut taken = 1;
        while taken < this.limit {
            let Ok(next) = this.recv.chan.try_pop() else { break };
            this.buffer.push(next);
            taken += 1;
        }
        Poll::Ready(Ok(taken))
    }
}

impl<T> fmt::Debug for RecvMany<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvMany")
            .field("limit", &self.limit)
            .field("waiting", &self.recv.waiter.is_some())
            .finish()
    }
}

/// A receiver is a [`Stream`] of the messages: each item is one message, received as by
/// [`recv`](Receiver::recv) (so clones of a receiver still compete for them), and the stream
/// ends once the channel is closed and drained.
///
/// ```
/// use futures_lite::StreamExt;
/// let (tx, mut rx) = klaw::channel::bounded::<u32>(4);
/// let other = rx.clone();
/// for i in 1..=4 {
///     tx.try_send(i).unwrap();
/// }
/// drop(tx);
/// klaw::runtime::block_on(async {
///     assert_eq!(rx.next().await, Some(1));
///     assert_eq!(other.try_recv(), Ok(2)); // a clone competes: 2 is not the stream's
///     let evens: Vec<u32> = rx.filter(|n| n % 2 == 0).collect().await;
///     assert_eq!(evens, [4]); // 3, then 4, then the end: closed and drained
/// });
/// ```
impl<T> Stream for Receiver<T> {
    type Item = T;

    /// A stream that waits keeps its place in line in the receiver, which may never poll it
    /// again (a `next()` that lost a race): a message that wakes it also wakes the next receive
    /// in line, so an idle stream keeps no message from the others.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        let (waiter, yielded) = (&mut this.stream_waiter, &mut this.stream_yielded);
        this.chan.poll_recv(waiter, yielded, true, cx).map(Result::ok)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.add_receiver();
        Receiver::new(self.chan.clone())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Some(key) = self.stream_waiter.take() {
            self.chan.leave_receivers(key);
        }
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.chan.len())
            .field("capacity", &self.chan.capacity())
            .field("closed", &self.chan.is_closed())
            .finish()
    }
}
