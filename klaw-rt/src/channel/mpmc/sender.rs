//! The sending half: `send`, `try_send`, `reserve` and `Sink`.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::channel::error::{SendError, TrySendError};
use crate::channel::mpmc::chan::Chan;
use crate::channel::mpmc::reserve::{OwnedPermit, Permit, Reserve, ReserveOwned};
use crate::channel::wakers::Ticket;

/// The sending half of an MPMC [`channel`](crate::channel::bounded()). Clone it for several producers;
/// the channel closes when the last sender is dropped. It is a [`Sink`](futures_sink::Sink).
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u32>(2);
/// let tx2 = tx.clone();
/// tx.try_send(1).unwrap();
/// tx2.try_send(2).unwrap();
/// drop((tx, tx2));
/// let all: Vec<u32> = klaw::runtime::block_on(futures_lite::StreamExt::collect(rx));
/// assert_eq!(all, [1, 2]);
/// ```
pub struct Sender<T> {
    pub(super) chan: Arc<Chan<T>>,
    /// The `Sink`'s place: waiting for one, or holding one for `start_send`.
    pub(super) sink: SinkPlace,
}

#[derive(Clone, Copy)]
pub(super) enum SinkPlace {
    None,
    Waiting(usize),
    Reserved,
}

impl<T> Sender<T> {
    pub(crate) fn new(chan: Arc<Chan<T>>) -> Self {
        Self { chan, sink: SinkPlace::None }
    }

    /// Sends `value`, waiting for a place if the channel is full. `Err(SendError(value))` if
    /// the channel is closed.
    ///
    /// Cancel safety: if the future is dropped before it completes, the value was not sent
    /// (a send only ever sends during its own poll); it is dropped with the future. To keep it,
    /// wait for a place with [`reserve`](Self::reserve) first (that future holds no value),
    /// then send.
    ///
    /// A send that finds the channel full first yields to its task once (it wakes the task and
    /// returns `Pending`, with its value kept), since a place usually frees within a poll, and
    /// only then waits in line. Waiting senders are woken in the order they
    /// started waiting, one for each place that frees; a woken sender that finds the place taken
    /// waits again where it first came in the line (ahead of every sender that came after it).
    ///
    /// In a klaw task it takes part in the [cooperative budget](crate::coop::consume_budget): a
    /// send polled once the task's budget is spent yields first, sending nothing.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u32>(1);
    /// klaw::runtime::block_on(async {
    ///     tx.send(1).await.unwrap();
    ///     assert_eq!(rx.recv().await, Ok(1));
    /// });
    /// ```
    pub fn send(&self, value: T) -> Send<'_, T> {
        Send { chan: &self.chan, value: Some(value), waiter: None, yielded: false }
    }

    /// Sends `value` if there is a place now; `Full(value)` or `Closed(value)` gives it back.
    /// A sender that finds a place takes it, even while others wait for one (they are woken as
    /// places free, in order): this is what keeps the uncontended path free of locks.
    ///
    /// ```
    /// use klaw::channel::TrySendError;
    /// let (tx, _rx) = klaw::channel::bounded::<u32>(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_push(value)
    }

    /// Waits for a place and reserves it: the [`Permit`](crate::channel::Permit) then sends without waiting. The value
    /// need not exist yet, which makes this the cancel-safe way to send.
    ///
    /// Cancel safety: dropping the future (or an unused permit) gives the place back.
    ///
    /// In a klaw task it takes part in the [cooperative budget](crate::coop::consume_budget), as
    /// [`send`](Self::send) does (so do `select!`'s `send` arms and the `Sink`).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<String>(1);
    /// klaw::runtime::block_on(async {
    ///     let permit = tx.reserve().await.unwrap();
    ///     permit.send("built after the place was secured".to_string()).unwrap();
    ///     assert_eq!(rx.len(), 1);
    /// });
    /// ```
    pub fn reserve(&self) -> Reserve<'_, T> {
        Reserve { chan: &self.chan, waiter: None }
    }

    /// Reserves a place now, without waiting: `Full(())` if every place is taken or reserved,
    /// `Closed(())` once the channel is closed. On an unbounded channel it fails only when
    /// closed. The permit gives its place back if dropped unused.
    ///
    /// ```
    /// use klaw::channel::TrySendError;
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// let permit = tx.try_reserve().unwrap();
    /// assert_eq!(tx.try_reserve().unwrap_err(), TrySendError::Full(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2))); // the place is reserved
    /// permit.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        self.chan.try_reserve().map(|()| Permit { chan: &self.chan })
    }

    /// Reserves a place as [`reserve`](Self::reserve) does, taking the sender: the
    /// [`OwnedPermit`](crate::channel::OwnedPermit) holds it, so it can be moved into another
    /// task or thread, and its `send` gives the sender back. `Err(SendError(()))` once the
    /// channel is closed (the sender is dropped).
    ///
    /// Cancel safety: dropping the future (or an unused permit) gives the place back.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<String>(1);
    /// # klaw::Runtime::builder().workers(1).build()?.block_on(async {
    /// let permit = tx.clone().reserve_owned().await.unwrap();
    /// let job = klaw::Handle::current().unwrap().spawn(async move {
    ///     permit.send("made where the place was used".to_string()).unwrap();
    /// });
    /// job.await.unwrap();
    /// assert_eq!(rx.recv().await.unwrap(), "made where the place was used");
    /// # });
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn reserve_owned(self) -> ReserveOwned<T> {
        ReserveOwned::new(self)
    }

    /// Reserves a place now, as [`try_reserve`](Self::try_reserve), taking the sender; on
    /// `Full` or `Closed` the error gives the sender back.
    ///
    /// ```
    /// use klaw::channel::TrySendError;
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// let permit = tx.clone().try_reserve_owned().unwrap();
    /// let Err(TrySendError::Full(tx)) = tx.try_reserve_owned() else { panic!("one place") };
    /// drop(permit);
    /// assert!(tx.try_reserve_owned().is_ok());
    /// ```
    pub fn try_reserve_owned(self) -> Result<OwnedPermit<T>, TrySendError<Sender<T>>> {
        super::reserve::try_reserve_owned(self)
    }

    /// Closes the channel for everyone: senders fail from now on, receivers still get what is
    /// queued. True if this call closed it.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// assert!(tx.close());
    /// assert!(!tx.close());
    /// assert!(rx.is_closed());
    /// ```
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Gives back what this sender's [`Sink`](futures_sink::Sink) holds: the place a ready
    /// `poll_ready` reserved (which `start_send` would have used), or its place in line while
    /// `poll_ready` waits. True if it held either. The sender stays open for other sends; a
    /// later `poll_ready` starts afresh. (tokio-util's `PollSender::abort_send`.)
    ///
    /// ```
    /// use std::pin::Pin;
    /// use futures_sink::Sink;
    /// let (mut tx, rx) = klaw::channel::bounded::<u32>(1);
    /// let ready = klaw::runtime::block_on(std::future::poll_fn(|cx| Pin::new(&mut tx).poll_ready(cx)));
    /// assert!(ready.is_ok());
    /// assert!(tx.try_send(1).is_err()); // the only place is the sink's
    /// assert!(tx.abort_send());
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert!(!tx.abort_send());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn abort_send(&mut self) -> bool {
        match std::mem::replace(&mut self.sink, SinkPlace::None) {
            SinkPlace::Waiting(key) => self.chan.leave_senders(key),
            SinkPlace::Reserved => self.chan.release_permit(),
            SinkPlace::None => return false,
        }
        true
    }

    /// True once the channel is closed: every receiver is gone, or someone closed it.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Sends `value` from blocking code, waiting for a place: for threads outside any async
    /// runtime (it would block a worker). `Err(SendError(value))` if the channel is closed.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u32>(1);
    /// let producer = std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send_blocking(i).unwrap();
    ///     }
    /// });
    /// let got: Vec<u32> = (0..3).map(|_| rx.recv_blocking().unwrap()).collect();
    /// producer.join().unwrap();
    /// assert_eq!(got, [0, 1, 2]);
    /// ```
    pub fn send_blocking(&self, value: T) -> Result<(), SendError<T>> {
        crate::poller::block_outside_tasks(self.send(value))
    }

    /// Sends `value` without waiting: if the channel is full, the oldest message is taken out
    /// to make room and given back (`Ok(Some(oldest))`); `Ok(None)` if there was room.
    /// `Err(TrySendError::Closed(value))` if the channel is closed. Unlike async-channel's,
    /// it can also give `Err(TrySendError::Full(value))`: when every free place is reserved by a
    /// [`reserve`](Self::reserve) permit and nothing is queued to take out, since a permit
    /// always keeps its place.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u32>(2);
    /// assert_eq!(tx.force_send(1), Ok(None));
    /// assert_eq!(tx.force_send(2), Ok(None));
    /// assert_eq!(tx.force_send(3), Ok(Some(1))); // full: the oldest made room
    /// assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(2), Ok(3)));
    /// ```
    pub fn force_send(&self, value: T) -> Result<Option<T>, TrySendError<T>> {
        self.chan.force_push(value)
    }

    /// Waits until the channel is closed: every receiver is gone, or someone closed it. A
    /// producer can `select!` on it to stop working for nobody.
    ///
    /// Cancel safety: dropping it loses nothing.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u32>(1);
    /// std::thread::spawn(move || drop(rx));
    /// klaw::runtime::block_on(tx.closed());
    /// assert!(tx.is_closed());
    /// ```
    pub fn closed(&self) -> Closed<'_, T> {
        Closed { chan: &self.chan, ticket: Ticket::default() }
    }

    /// A sender that does not keep the channel open: [`WeakSender::upgrade`] gives a sender
    /// back while another one still exists.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u32>(1);
    /// let weak = tx.downgrade();
    /// weak.upgrade().unwrap().try_send(1).unwrap();
    /// drop(tx);
    /// assert!(weak.upgrade().is_none());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender { chan: Arc::downgrade(&self.chan) }
    }

    /// The capacity given to [`channel`](crate::channel::bounded()), or `None` if unbounded. Stored,
    /// not derived from the queue.
    ///
    /// ```
    /// assert_eq!(klaw::channel::bounded::<u8>(8).0.capacity(), Some(8));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// How many messages are queued now.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(8);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if no message is queued now.
    ///
    /// ```
    /// assert!(klaw::channel::bounded::<u8>(8).0.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if a bounded channel has no free place now: its places hold messages or are held
    /// by [`reserve`](Self::reserve) permits, so `try_send` would give `Full`. (A receiver's
    /// [`is_full`](crate::channel::Receiver::is_full) counts messages only.)
    ///
    /// ```
    /// # klaw::Runtime::builder().workers(1).build()?.block_on(async {
    /// let (tx, rx) = klaw::channel::bounded::<u8>(2);
    /// tx.try_send(1).unwrap();
    /// let permit = tx.reserve().await.unwrap(); // holds the last place
    /// assert!(tx.is_full() && !rx.is_full());
    /// drop(permit);
    /// assert!(!tx.is_full());
    /// # });
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.capacity().is_some_and(|cap| self.len() + self.chan.reserved() >= cap)
    }

    /// How many receivers exist.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// drop(rx);
    /// assert_eq!(tx.receiver_count(), 0);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.chan.receiver_count()
    }

    /// How many senders exist.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// assert_eq!(tx.clone().sender_count(), 2);
    /// ```
    pub fn sender_count(&self) -> usize {
        self.chan.sender_count()
    }

    /// How many [`WeakSender`]s of the channel exist (tokio's `weak_count`).
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// let weak = tx.downgrade();
    /// assert_eq!(tx.weak_sender_count(), 1);
    /// drop(weak);
    /// assert_eq!(tx.weak_sender_count(), 0);
    /// ```
    pub fn weak_sender_count(&self) -> usize {
        weak_senders(&self.chan)
    }

    /// True if `other` sends into the same channel (tokio's and async-channel's `same_channel`).
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// let (other, _other_rx) = klaw::channel::bounded::<u8>(1);
    /// assert!(tx.same_channel(&tx.clone()));
    /// assert!(!tx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

/// The future of [`Sender::send`].
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u8>(1);
/// let sending: klaw::channel::Send<'_, u8> = tx.send(3);
/// assert_eq!(klaw::runtime::block_on(sending), Ok(()));
/// assert_eq!(rx.try_recv(), Ok(3));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Send<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    waiter: Option<usize>,
    yielded: bool,
}

// Nothing is pinned in place: the value is only moved out.
impl<T> Unpin for Send<'_, T> {}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), SendError<T>>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.chan.poll_send(&mut this.value, &mut this.waiter, &mut this.yielded, cx)
    }
}

impl<T> Drop for Send<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.waiter.take() {
            self.chan.leave_senders(key);
        }
        // A value still here was not sent: it is dropped with the future.
    }
}

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send").field("waiting", &self.waiter.is_some()).finish()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender::new(self.chan.clone())
    }
}

/// The future of [`Sender::closed`].
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u8>(1);
/// drop(rx);
/// let closed: klaw::channel::Closed<'_, u8> = tx.closed();
/// klaw::runtime::block_on(closed);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Closed<'a, T> {
    chan: &'a Chan<T>,
    ticket: Ticket,
}

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.chan.poll_closed(&mut this.ticket, cx)
    }
}

impl<T> Drop for Closed<'_, T> {
    fn drop(&mut self) {
        self.chan.leave_closing(&mut self.ticket);
    }
}

impl<T> fmt::Debug for Closed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed").finish_non_exhaustive()
    }
}

/// A [`Sender`] that does not keep the channel open (see [`Sender::downgrade`]).
///
/// ```
/// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
/// let weak: klaw::channel::WeakSender<u8> = tx.downgrade();
/// assert!(weak.upgrade().is_some());
/// ```
pub struct WeakSender<T> {
    chan: std::sync::Weak<Chan<T>>,
}

impl<T> WeakSender<T> {
    /// A sender, if another sender still exists.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// let weak = tx.downgrade();
    /// drop(tx);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<Sender<T>> {
        let chan = self.chan.upgrade()?;
        chan.add_sender_if_alive().then(|| Sender::new(chan))
    }

    /// How many senders exist (tokio's `WeakSender::strong_count`): 0 once the last is gone.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// let weak = tx.downgrade();
    /// assert_eq!(weak.sender_count(), 1);
    /// drop(tx);
    /// assert_eq!(weak.sender_count(), 0);
    /// ```
    pub fn sender_count(&self) -> usize {
        self.chan.upgrade().map_or(0, |chan| chan.sender_count())
    }

    /// How many weak senders of the channel exist, this one included (tokio's
    /// `WeakSender::weak_count`), while the channel lives (a sender or a receiver holds it);
    /// 0 once it is gone.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// let weak = tx.downgrade();
    /// assert_eq!(weak.clone().weak_sender_count(), 2);
    /// assert_eq!(weak.weak_sender_count(), 1);
    /// ```
    pub fn weak_sender_count(&self) -> usize {
        self.chan.weak_count()
    }

    /// True if `other` is a weak sender of the same channel.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// let (other, _other_rx) = klaw::channel::bounded::<u8>(1);
    /// assert!(tx.downgrade().same_channel(&tx.downgrade()));
    /// assert!(!tx.downgrade().same_channel(&other.downgrade()));
    /// ```
    pub fn same_channel(&self, other: &WeakSender<T>) -> bool {
        self.chan.ptr_eq(&other.chan)
    }
}

/// How many weak senders a channel has: only a [`WeakSender`] holds a `Weak` of a channel, so
/// the allocation's weak count is theirs.
pub(super) fn weak_senders<T>(chan: &Arc<Chan<T>>) -> usize {
    Arc::weak_count(chan)
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        WeakSender { chan: self.chan.clone() }
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSender").finish_non_exhaustive()
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.abort_send();
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.chan.len())
            .field("capacity", &self.chan.capacity())
            .field("closed", &self.chan.is_closed())
            .finish()
    }
}
