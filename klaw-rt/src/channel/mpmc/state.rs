//! The MPMC core: one lock around a queue and two lists of waiters, with direct hand-off.
//!
//! Invariants (checked in debug builds): receivers wait only while the queue is empty, so a
//! sent value goes straight into the oldest waiting receiver's slot; senders wait only while the
//! channel is full, so a freed place is reserved for the oldest waiting sender, which then sends
//! in its own next poll. (Moving its value into the queue for it would be faster, but then a
//! `send` dropped after that move and before its next poll would have sent its value without
//! ever saying so.) Wakers are woken after the lock is released. A replaced or removed waker may
//! be dropped under the lock; executors drop a task's future before its last waker, so that
//! runs no user code.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::task::Waker;

use slab::Slab;

use crate::sync::SpinMutex;

/// A receiver waiting for a message; a sender hands one over into `slot`.
pub(crate) struct RecvWaiter<T> {
    waker: Waker,
    slot: Option<T>,
}

/// What a waiting sender waits for.
pub(crate) enum SendWait<T> {
    /// A place for the value it holds (`send`).
    Value(T),
    /// A place to reserve (`reserve`, and the `Sink`).
    Place,
    /// A place was reserved for it (`reserved` counts it); for a `send`, with its value still
    /// here, to be sent in its next poll.
    Granted(Option<T>),
}

pub(crate) struct SendWaiter<T> {
    waker: Waker,
    wait: SendWait<T>,
}

/// Waiters in arrival order. `order` holds the keys still waiting for their turn.
struct Waiters<W> {
    slab: Slab<W>,
    order: VecDeque<usize>,
}

impl<W> Waiters<W> {
    const fn new() -> Self {
        Self { slab: Slab::new(), order: VecDeque::new() }
    }

    fn push(&mut self, waiter: W) -> usize {
        let key = self.slab.insert(waiter);
        self.order.push_back(key);
        key
    }

    fn forget(&mut self, key: usize) -> W {
        if let Some(position) = self.order.iter().position(|&k| k == key) {
            self.order.remove(position);
        }
        self.slab.remove(key)
    }
}

pub(crate) struct State<T> {
    queue: VecDeque<T>,
    capacity: Option<usize>,
    /// Places granted to `reserve` and not yet used: they count against the capacity.
    reserved: usize,
    receivers_waiting: Waiters<RecvWaiter<T>>,
    senders_waiting: Waiters<SendWaiter<T>>,
    closed: bool,
    senders: usize,
    receivers: usize,
}

/// Wakers to wake once the lock is released.
pub(crate) type Wake = Vec<Waker>;

#[inline]
pub(crate) fn wake_all(wakers: Wake) {
    // The common case, nothing to wake, costs one comparison.
    if wakers.is_empty() {
        return;
    }
    for waker in wakers {
        waker.wake();
    }
}

pub(crate) struct Chan<T> {
    state: SpinMutex<State<T>>,
    capacity: Option<usize>,
}

impl<T> Chan<T> {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        let initial = capacity.map_or(0, |cap| cap.min(1024));
        Chan {
            state: SpinMutex::new(State {
                queue: VecDeque::with_capacity(initial),
                capacity,
                reserved: 0,
                receivers_waiting: Waiters::new(),
                senders_waiting: Waiters::new(),
                closed: false,
                senders: 1,
                receivers: 1,
            }),
            capacity,
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    pub(crate) fn lock(&self) -> impl std::ops::DerefMut<Target = State<T>> + '_ {
        // No user code runs under this lock (wakers are cloned under it, woken after it).
        self.state.lock()
    }
}

/// What happened to a value offered to the channel.
pub(crate) enum Offer<T> {
    /// Accepted: handed to a waiting receiver (wake it) or queued.
    Accepted(Option<Waker>),
    Full(T),
    Closed(T),
}

impl<T> State<T> {
    fn has_room(&self) -> bool {
        self.capacity.is_none_or(|cap| self.queue.len() + self.reserved < cap)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Gives `value` to the oldest waiting receiver, or queues it. The caller owns a place.
    fn admit(&mut self, value: T) -> Option<Waker> {
        if let Some(key) = self.receivers_waiting.order.pop_front() {
            let waiter = &mut self.receivers_waiting.slab[key];
            debug_assert!(waiter.slot.is_none());
            waiter.slot = Some(value);
            return Some(waiter.waker.clone());
        }
        self.queue.push_back(value);
        None
    }

    /// `try_send` and the first poll of `send`.
    pub(crate) fn offer(&mut self, value: T) -> Offer<T> {
        if self.closed {
            return Offer::Closed(value);
        }
        if !self.receivers_waiting.order.is_empty() {
            return Offer::Accepted(self.admit(value));
        }
        // Waiting senders go first: a newcomer must not overtake them.
        if !self.senders_waiting.order.is_empty() || !self.has_room() {
            return Offer::Full(value);
        }
        self.queue.push_back(value);
        Offer::Accepted(None)
    }

    /// Takes the oldest message, then lets the oldest waiting sender into the freed place.
    pub(crate) fn take(&mut self) -> Option<(T, Wake)> {
        let value = self.queue.pop_front()?;
        let mut wake = Wake::new();
        if self.senders_waiting.order.is_empty() {
            return Some((value, wake));
        }
        // Waiting senders are let in once the queue is half empty, and then as many as fit:
        // one wake-up lets a sender send a batch instead of a single message.
        if self.capacity.is_some_and(|cap| self.queue.len() + self.reserved <= cap / 2) {
            while let Some(waker) = self.refill() {
                wake.push(waker);
            }
        }
        Some((value, wake))
    }

    /// A place is free: give it to the oldest waiting sender (its value moves into the queue)
    /// or reserver (it gets a permit).
    fn refill(&mut self) -> Option<Waker> {
        if !self.has_room() || self.closed {
            return None;
        }
        let key = self.senders_waiting.order.pop_front()?;
        let waiter = &mut self.senders_waiting.slab[key];
        waiter.wait = match std::mem::replace(&mut waiter.wait, SendWait::Place) {
            SendWait::Value(value) => SendWait::Granted(Some(value)),
            SendWait::Place => SendWait::Granted(None),
            SendWait::Granted(_) => unreachable!("a served sender was in line"),
        };
        self.reserved += 1;
        Some(waiter.waker.clone())
    }

    /// Registers a receiver that found nothing.
    pub(crate) fn wait_recv(&mut self, waker: &Waker) -> usize {
        debug_assert!(self.queue.is_empty());
        self.receivers_waiting.push(RecvWaiter { waker: waker.clone(), slot: None })
    }

    /// A waiting receiver polls again: its message, or `None` (its waker is refreshed).
    pub(crate) fn poll_recv_waiter(&mut self, key: usize, waker: &Waker) -> Option<T> {
        let waiter = &mut self.receivers_waiting.slab[key];
        if let Some(value) = waiter.slot.take() {
            self.receivers_waiting.slab.remove(key);
            return Some(value);
        }
        if !waiter.waker.will_wake(waker) {
            waiter.waker = waker.clone();
        }
        None
    }

    /// A waiting receiver gives up (closed, or its future was dropped). A message already
    /// handed to it goes to the next receiver, or back to the front of the queue: never lost.
    pub(crate) fn cancel_recv(&mut self, key: usize) -> Option<Waker> {
        let waiter = self.receivers_waiting.forget(key);
        let value = waiter.slot?;
        if let Some(next) = self.receivers_waiting.order.pop_front() {
            let next = &mut self.receivers_waiting.slab[next];
            next.slot = Some(value);
            return Some(next.waker.clone());
        }
        self.queue.push_front(value);
        None
    }

    /// Registers a sender that found the channel full; it parks its value here.
    pub(crate) fn wait_send(&mut self, waker: &Waker, wait: SendWait<T>) -> usize {
        self.senders_waiting.push(SendWaiter { waker: waker.clone(), wait })
    }

    /// A waiting sender polls again: `Some(outcome)` once served or closed out.
    pub(crate) fn poll_send_waiter(&mut self, key: usize, waker: &Waker) -> Option<SendWait<T>> {
        let waiter = &mut self.senders_waiting.slab[key];
        match &waiter.wait {
            SendWait::Granted(_) => Some(self.senders_waiting.slab.remove(key).wait),
            SendWait::Value(_) | SendWait::Place if self.closed => {
                Some(self.senders_waiting.forget(key).wait)
            }
            SendWait::Value(_) | SendWait::Place => {
                if !waiter.waker.will_wake(waker) {
                    waiter.waker = waker.clone();
                }
                None
            }
        }
    }

    /// A waiting sender's future was dropped: its value (if still here) is returned to be dropped
    /// outside the lock; a place granted to it is passed on.
    pub(crate) fn cancel_send(&mut self, key: usize) -> (Option<T>, Option<Waker>) {
        match self.senders_waiting.forget(key).wait {
            SendWait::Value(value) => (Some(value), None),
            SendWait::Granted(value) => (value, self.release_place()),
            SendWait::Place => (None, None),
        }
    }

    /// A reserved place comes back unused.
    pub(crate) fn release_place(&mut self) -> Option<Waker> {
        self.reserved -= 1;
        self.refill()
    }

    /// Reserves a place now, if there is one and nobody waits ahead.
    pub(crate) fn try_reserve(&mut self) -> bool {
        if self.senders_waiting.order.is_empty() && self.has_room() {
            self.reserved += 1;
            true
        } else {
            false
        }
    }

    /// Uses a reserved place. On a closed channel the value comes back.
    pub(crate) fn send_reserved(&mut self, value: T) -> Result<Option<Waker>, T> {
        self.reserved -= 1;
        if self.closed {
            return Err(value);
        }
        Ok(self.admit(value))
    }

    /// Closes the channel: senders fail from now on, receivers drain what is queued. True if
    /// this call closed it.
    pub(crate) fn close(&mut self, wake: &mut Wake) -> bool {
        if self.closed {
            return false;
        }
        self.closed = true;
        wake.extend(self.receivers_waiting.slab.iter().map(|(_, w)| w.waker.clone()));
        wake.extend(self.senders_waiting.slab.iter().map(|(_, w)| w.waker.clone()));
        true
    }

    pub(crate) fn add_sender(&mut self) {
        self.senders += 1;
    }

    pub(crate) fn add_receiver(&mut self) {
        self.receivers += 1;
    }

    pub(crate) fn sender_count(&self) -> usize {
        self.senders
    }

    pub(crate) fn receiver_count(&self) -> usize {
        self.receivers
    }

    /// A sender went away; the last one closes the channel.
    pub(crate) fn drop_sender(&mut self, wake: &mut Wake) {
        self.senders -= 1;
        if self.senders == 0 {
            self.close(wake);
        }
    }

    /// A receiver went away; the last one closes the channel.
    pub(crate) fn drop_receiver(&mut self, wake: &mut Wake) {
        self.receivers -= 1;
        if self.receivers == 0 {
            self.close(wake);
        }
    }
}
