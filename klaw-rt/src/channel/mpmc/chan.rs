//! The MPMC core: a [`Buffer`] for the messages, a [`WaitList`] per side, and a count of the
//! places reserved by permits.
//!
//! The fast path takes no lock: a push or a pop is one CAS on the ring plus a look at the flags
//! that CAS saw. Only a task that must wait, and whoever must wake it, touch a wait list.
//! Notifications are work-conserving: each push wakes one waiting receiver, each pop one waiting
//! sender, so a task never waits while the channel could serve it. A woken task looks again and,
//! if someone beat it to the message or the place, waits again where it first came in the line
//! (`waiters::Arrival`), so the line keeps its order however many woken tasks lose a race.
//!
//! Permits (`reserve`, the `Sink`, `select!`'s `send` arms) must find their place when they use
//! it, so while any are out, the `PERMITS_OUT` flag sends every push through the permit lock,
//! which counts them against the capacity (`chan/permits.rs`).
#![forbid(unsafe_code)]

use std::task::{Context, Poll};

use crossbeam_utils::CachePadded;

use crate::channel::error::{RecvError, SendError, TryRecvError, TrySendError};
use crate::channel::mpmc::buffer::Buffer;
use crate::channel::mpmc::ring::{Pop, Push, RECEIVERS_WAIT, SENDERS_WAIT};
use crate::channel::mpmc::waiters::{Arrival, Polled, WaitList};
use crate::channel::mpmc::yielding;
use crate::channel::wakers::{Ticket, WakerSet, leave, poll_or_wait};
use crate::coop;
use crate::sync::{AtomicUsize, Mutex, Ordering, SpinMutex};

mod permits;

pub(crate) struct Chan<T> {
    buffer: Buffer<T>,
    capacity: Option<usize>,
    // Written on the slow path only: kept off the cache lines every send and receive reads.
    receivers_waiting: CachePadded<WaitList>,
    senders_waiting: CachePadded<WaitList>,
    /// Places reserved by permits and not used yet (bounded channels only). While it is not
    /// zero, every push takes this lock, so no push can take a reserved place.
    permits: SpinMutex<usize>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    /// `Sender::closed` futures; woken by `close`, after the closed flag is set.
    closing: Mutex<WakerSet>,
}

impl<T> Chan<T> {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Self::with_buffer(Buffer::new(capacity), capacity)
    }

    /// A bounded channel on the growing buffer, whatever its capacity (for tests and models).
    pub(crate) fn growing(capacity: usize) -> Self {
        Self::with_buffer(Buffer::growing(capacity), Some(capacity))
    }

    fn with_buffer(buffer: Buffer<T>, capacity: Option<usize>) -> Self {
        Chan {
            buffer,
            capacity,
            receivers_waiting: CachePadded::new(WaitList::new()),
            senders_waiting: CachePadded::new(WaitList::new()),
            permits: SpinMutex::new(0),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            closing: Mutex::new(WakerSet::default()),
        }
    }

    /// Polls `Sender::closed`: ready once the channel is closed (taking a unit of the budget).
    pub(crate) fn poll_closed(&self, ticket: &mut Ticket, cx: &mut Context<'_>) -> Poll<()> {
        // The flag is read under the lock `close` takes after setting it: no wake-up is lost.
        coop::budgeted(cx, |cx| {
            poll_or_wait(&self.closing, |set| set, ticket, cx, |_| self.is_closed().then_some(()))
        })
    }

    /// A `Sender::closed` future went away.
    pub(crate) fn leave_closing(&self, ticket: &mut Ticket) {
        leave(&self.closing, |set| set, ticket);
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Places held by permits and not used yet.
    pub(crate) fn reserved(&self) -> usize {
        *self.permits.lock()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.buffer.is_closed()
    }

    /// One sender and one receiver now: a send or receive in a task of a pool then waits at
    /// once for the other end, without a yield, if that end waits in tasks of the same kind
    /// (see `yielding`). Counts may change at any moment: this only decides how to yield.
    fn is_one_to_one(&self) -> bool {
        self.senders.load(Ordering::Relaxed) == 1 && self.receivers.load(Ordering::Relaxed) == 1
    }

    fn wake_a_receiver(&self) {
        self.receivers_waiting.notify_one(|| self.buffer.clear_tail_flag(RECEIVERS_WAIT)).wake();
    }

    fn wake_a_sender(&self) {
        self.senders_waiting.notify_one(|| self.buffer.clear_head_flag(SENDERS_WAIT)).wake();
    }

    /// `try_send`, and every attempt of `send`.
    #[inline]
    pub(crate) fn try_push(&self, value: T) -> Result<(), TrySendError<T>> {
        self.settle(self.buffer.push(value, false))
    }

    /// A try of `send`. A `retry` (the send yielded after finding no place) to a channel with one
    /// receiver first asks the ring whether it still looks full from the senders' side alone
    /// ([`Buffer::looks_full`]), and if so yields or waits again without pushing: a push that
    /// finds its place taken reads `head` to tell a full ring from a pop half-way through, and
    /// a sender retrying at a full ring took `head`'s cache line from the receiver, which
    /// writes it on every pop. The send's own first try, and every try once it waits in line,
    /// push as always (so a `Full` that makes it wait is exact). Measured (`benches/channel`,
    /// interleaved pairs): SPSC on a quiet machine 14–25 ns a message against 33–42 before;
    /// MPMC, where pops contend for `head` anyway and are often half-way, and everything under
    /// `--load`, within noise. Asking before the first try as well sped up `benches/select`
    /// (four producers at full channels, one consumer: 0.6–0.95x `tokio::select!` over tokio's
    /// mpsc against 1.1–1.25x) but slowed the channel bench (MPMC 25–47 ns against 16–23).
    #[inline]
    fn try_push_looking(&self, value: T, retry: bool) -> Result<(), TrySendError<T>> {
        if retry && self.buffer.looks_full() && self.receivers.load(Ordering::Relaxed) == 1 {
            return Err(TrySendError::Full(value));
        }
        self.try_push(value)
    }

    /// What a push came to. Inlined into each caller, so the `Push` is matched where it is
    /// returned: moving it around cost a store-forwarding stall per message.
    #[inline(always)]
    fn settle(&self, pushed: Push<T>) -> Result<(), TrySendError<T>> {
        match pushed {
            Push::Pushed { receivers_wait } => {
                if receivers_wait {
                    // The message is handed over: the receiver runs after this task.
                    coop::hand_off(|| self.wake_a_receiver());
                }
                Ok(())
            }
            Push::Full(value) => Err(TrySendError::Full(value)),
            Push::Closed(value) => Err(TrySendError::Closed(value)),
            // Only an uncounted push is sent back for counting, so this never recurses.
            Push::PermitsOut(value) => self.push_counting_permits(value),
        }
    }

    /// `try_recv`, and every attempt of `recv`.
    #[inline]
    pub(crate) fn try_pop(&self) -> Result<T, TryRecvError> {
        match self.buffer.pop() {
            Pop::Popped { value, senders_wait } => {
                if senders_wait {
                    // The place is handed over: the sender runs after this task.
                    coop::hand_off(|| self.wake_a_sender());
                }
                Ok(value)
            }
            Pop::Empty => Err(TryRecvError::Empty),
            Pop::Closed => Err(TryRecvError::Closed),
        }
    }

    /// One poll of a `recv`: a message, or a yield (recorded in `yielded`, see `yielding`), or a
    /// place in line in `waiter`. A completed receive takes a unit of the task's cooperative
    /// budget; with the budget spent it yields before it looks (taking nothing, and keeping a
    /// wake-up `waiter` was given for its next poll).
    #[inline]
    pub(crate) fn poll_recv(
        &self,
        waiter: &mut Option<usize>,
        yielded: &mut bool,
        lingers: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        if self.held_leaving_line(waiter, Self::leave_receivers) {
            return Poll::Pending;
        }
        coop::budgeted_unheld(cx, |cx| {
            if waiter.is_none() {
                if let Some(received) = self.recv_now() {
                    *yielded = false; // a stream polls on
                    return Poll::Ready(received);
                }
                if let Some(how) = yielding::again(yielded, self.is_one_to_one(), |here| {
                    self.senders_waiting.waits_in(here)
                }) {
                    how.wake(cx);
                    return Poll::Pending;
                }
            }
            let polled = self.wait_for_message(waiter, lingers, cx);
            if polled.is_ready() {
                *yielded = false; // a stream polls on
            }
            polled
        })
    }

    /// `select!`'s first look at a `recv` arm: a receive that waits in no line takes a message
    /// if one is there and otherwise stays out of line (`Pending`, no waker kept), so an arm
    /// that loses to a ready sibling never joins and leaves a wait list. One already in line is
    /// polled as usual. Budgeted as [`poll_recv`](Self::poll_recv) is.
    #[inline]
    pub(crate) fn poll_recv_now(
        &self,
        waiter: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        if waiter.is_some() {
            // In line: it looks and waits as any receive does (it yields only before it waits).
            return self.poll_recv(waiter, &mut false, false, cx);
        }
        coop::budgeted(cx, |_| self.recv_now().map_or(Poll::Pending, Poll::Ready))
    }

    /// `select!`'s second pass over a `recv` arm that is out of line: the first pass has just
    /// found the buffer empty, so it joins the line at once, and the look that follows the
    /// flag (as for every wait) catches a message pushed meanwhile.
    #[inline]
    pub(crate) fn poll_recv_join(
        &self,
        waiter: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        debug_assert!(waiter.is_none(), "a receive in line was polled by the first pass");
        coop::budgeted(cx, |cx| self.wait_for_message(waiter, false, cx))
    }

    /// A message or `Closed`, if either is there now; `None` if the buffer is empty.
    #[inline]
    fn recv_now(&self) -> Option<Result<T, RecvError>> {
        match self.try_pop() {
            Ok(value) => Some(Ok(value)),
            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
            Err(TryRecvError::Empty) => None,
        }
    }

    /// The slow path of a `recv`: the buffer was empty (when `waiter` is `None`), or it waits.
    #[cold]
    fn wait_for_message(
        &self,
        waiter: &mut Option<usize>,
        lingers: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let rejoins = match self.poll_waiter(&self.receivers_waiting, waiter, cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => None, // the caller just found the buffer empty
            Poll::Ready(Some(arrival)) => match self.recv_now() {
                Some(received) => return Poll::Ready(received),
                None => Some(arrival),
            },
        };
        let key = self.receivers_waiting.register(cx.waker(), rejoins, lingers, || {
            self.buffer.set_tail_flag(RECEIVERS_WAIT);
        });
        // Look again: a push before the flag went up is visible now; any after it wakes us.
        match self.try_pop() {
            Err(TryRecvError::Empty) => {
                *waiter = Some(key);
                Poll::Pending
            }
            done => {
                self.leave_receivers(key);
                Poll::Ready(done.map_err(|_| RecvError::Closed))
            }
        }
    }

    /// True if the operation polled now is cancelled beside a shield that holds its cancellation
    /// open (`coop::held_here`): then it takes nothing, not even a wake-up, so it leaves the line
    /// it waits in (`leave`), and a notification it was given goes on to the next in line.
    #[inline]
    fn held_leaving_line(&self, waiter: &mut Option<usize>, leave: fn(&Self, usize)) -> bool {
        if !coop::held_here() {
            return false;
        }
        if let Some(key) = waiter.take() {
            leave(self, key);
        }
        true
    }

    /// A receiver leaves the line; a notification it had not used goes to the next one.
    pub(crate) fn leave_receivers(&self, key: usize) {
        if self.receivers_waiting.leave(key, || self.buffer.clear_tail_flag(RECEIVERS_WAIT)) {
            self.wake_a_receiver();
        }
    }

    /// A sender leaves the line; a notification it had not used goes to the next one.
    pub(crate) fn leave_senders(&self, key: usize) {
        if self.senders_waiting.leave(key, || self.buffer.clear_head_flag(SENDERS_WAIT)) {
            self.wake_a_sender();
        }
    }

    /// The common start of a poll: `Pending` if `waiter` is still in line, else `Ready`, with
    /// its first arrival if it was notified (it waits where that puts it if it must again).
    fn poll_waiter(
        &self,
        list: &WaitList,
        waiter: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Arrival>> {
        let Some(key) = *waiter else { return Poll::Ready(None) };
        match list.poll(key, cx.waker()) {
            Polled::Waiting => Poll::Pending,
            Polled::Notified(arrival) => {
                *waiter = None;
                Poll::Ready(Some(arrival))
            }
        }
    }

    /// The slow path of waiting for a place. With no `waiter`, the caller has just tried and
    /// found no place; `attempt` takes the value from `slot` and gives it back with `Full` while
    /// there is none, and the value stays in `slot` while this waits in line in `waiter`. After
    /// the flag is up it looks once more (a pop before the flag is visible then; any pop after
    /// it wakes us). `lingers`: the waiter is kept in a handle (the `Sink`), see `waiters`.
    #[cold]
    fn wait_for_place<V>(
        &self,
        waiter: &mut Option<usize>,
        lingers: bool,
        cx: &mut Context<'_>,
        slot: &mut Option<V>,
        attempt: impl Fn(V) -> Result<(), TrySendError<V>>,
    ) -> Poll<Result<(), TrySendError<V>>> {
        let rejoins = match self.poll_waiter(&self.senders_waiting, waiter, cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(rejoins) => rejoins,
        };
        let value = slot.take().expect("a send or reserve future was polled after it completed");
        let value = if rejoins.is_some() {
            match attempt(value) {
                Err(TrySendError::Full(value)) => value,
                done => return Poll::Ready(done),
            }
        } else {
            value // the caller just found no place
        };
        let key = self.senders_waiting.register(cx.waker(), rejoins, lingers, || {
            self.buffer.set_head_flag(SENDERS_WAIT);
        });
        match attempt(value) {
            Err(TrySendError::Full(value)) => {
                *slot = Some(value);
                *waiter = Some(key);
                Poll::Pending
            }
            done => {
                self.leave_senders(key);
                Poll::Ready(done)
            }
        }
    }

    /// One poll of a `send`; `value` stays in place while it yields (recorded in `yielded`, see
    /// `yielding`) or waits, and is taken when it went in or came back. Budgeted as
    /// [`poll_recv`](Self::poll_recv) is: with the budget spent, it yields with `value` still
    /// in place.
    #[inline]
    pub(crate) fn poll_send(
        &self,
        value: &mut Option<T>,
        waiter: &mut Option<usize>,
        yielded: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        if self.held_leaving_line(waiter, Self::leave_senders) {
            return Poll::Pending; // the value stays in the future
        }
        coop::budgeted_unheld(cx, |cx| {
            if waiter.is_none() {
                let taken = value.take().expect("a Send future was polled after it completed");
                match self.try_push_looking(taken, *yielded) {
                    Ok(()) => return Poll::Ready(Ok(())),
                    Err(TrySendError::Closed(back)) => return Poll::Ready(Err(SendError(back))),
                    Err(TrySendError::Full(back)) => *value = Some(back),
                }
                if let Some(how) = yielding::again(yielded, self.is_one_to_one(), |here| {
                    self.receivers_waiting.waits_in(here)
                }) {
                    how.wake(cx);
                    return Poll::Pending;
                }
            }
            self.wait_for_place(waiter, false, cx, value, |value| self.try_push(value))
                .map(|sent| sent.map_err(|refused| SendError(refused.into_inner())))
        })
    }

    /// Closes the channel: pushes fail from now on, receivers drain what is queued. True if
    /// this call closed it.
    pub(crate) fn close(&self) -> bool {
        // Under the permit lock, so a `force_push` (which takes a message out before it puts its
        // own in) never sees the channel close in between and strands the message it took.
        let closed = {
            let _permits = self.permits.lock();
            self.buffer.close()
        };
        if !closed {
            return false;
        }
        let receivers = self.receivers_waiting.notify_all(|| {
            self.buffer.clear_tail_flag(RECEIVERS_WAIT);
        });
        let senders = self.senders_waiting.notify_all(|| self.buffer.clear_head_flag(SENDERS_WAIT));
        for waker in receivers.into_iter().chain(senders) {
            waker.wake();
        }
        let closing = self.closing.lock().take_all();
        closing.wake();
        true
    }

    pub(crate) fn add_sender(&self) {
        self.senders.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds a sender unless the last one is already gone (a weak sender's `upgrade`).
    pub(crate) fn add_sender_if_alive(&self) -> bool {
        let mut count = self.senders.load(Ordering::Relaxed);
        loop {
            if count == 0 {
                return false;
            }
            match self.senders.compare_exchange_weak(
                count,
                count + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => count = actual,
            }
        }
    }

    pub(crate) fn add_receiver(&self) {
        self.receivers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sender_count(&self) -> usize {
        self.senders.load(Ordering::Relaxed)
    }

    pub(crate) fn receiver_count(&self) -> usize {
        self.receivers.load(Ordering::Relaxed)
    }

    /// A sender went away; the last one closes the channel.
    pub(crate) fn drop_sender(&self) {
        if self.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }

    /// A receiver went away. The last one closes the channel and drops what is queued: nobody
    /// can receive it any more, and a message may hold what someone waits to see released (a
    /// oneshot sender, a permit, a file), which must not live on until the last sender goes.
    pub(crate) fn drop_receiver(&self) {
        if self.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
            drop_queued(&self.buffer);
        }
    }
}

/// Drops every message in `buffer`, which is closed: no push adds one any more, and a pop waits
/// for a push that claimed its place before the close. Each message is dropped with no lock
/// held; if one's drop panics, the messages after it are still dropped as the panic unwinds.
fn drop_queued<T>(buffer: &Buffer<T>) {
    /// Kept only while a message's drop unwinds: then drops the messages after it.
    struct TheRest<'a, T>(&'a Buffer<T>);
    impl<T> Drop for TheRest<'_, T> {
        fn drop(&mut self) {
            drop_queued(self.0);
        }
    }
    while let Pop::Popped { value, .. } = buffer.pop() {
        let the_rest = TheRest(buffer);
        drop(value);
        std::mem::forget(the_rest);
    }
}

// A panic cannot leave a channel half-updated: no user code (a message's `Drop`, a waker) runs
// while one of its locks is held, and messages are only moved in and out, never lent. So its
// handles may cross `catch_unwind` as tokio's do, and as std's `Mutex` may.
impl<T> std::panic::RefUnwindSafe for Chan<T> {}
impl<T> std::panic::UnwindSafe for Chan<T> {}
