//! Channels: every operation returns a typed `Result`, every refused value comes back, and every
//! future documents its cancel safety. All of them work under any executor.
//!
//! | channel | who gets a message | when full |
//! |---|---|---|
//! | [`bounded(cap)`](crate::channel::bounded()) / [`unbounded()`](crate::channel::unbounded()) | exactly **one** receiver (competing consumers, MPMC) | `send` waits, `try_send` gives `Full(value)` back |
//! | [`broadcast(cap)`](crate::channel::broadcast::channel()) | **every** receiver | never waits: a receiver more than `cap` behind gets `Lagged(n)` |
//! | [`watch(initial)`](crate::channel::watch::channel()) | every receiver sees the **latest** value | never waits: only the latest is kept |
//! | [`oneshot()`](crate::channel::oneshot::channel()) | the one receiver, once | never waits |
//!
//! A clone of an MPMC [`Receiver`] is *another consumer*, not another subscriber: with two
//! receivers each message is received once, by one of them. When every receiver must see
//! every message, that is [`broadcast`](crate::channel::broadcast::channel()).
//!
//! Fairness: in a klaw task (and in `Runtime::block_on`), every channel future (and `select!`)
//! takes part in the task's [cooperative budget](crate::coop::consume_budget), so a loop over a
//! channel that always has a value ready still lets the other tasks of its worker run; one that
//! yields for the budget has taken nothing. Anywhere else there is no budget: under another
//! executor the channels behave as they would without it.
#![deny(unsafe_code)]

pub mod broadcast;
mod error;
#[cfg(all(test, klaw_loom))]
mod loom;
mod mpmc;
pub mod oneshot;
mod select;
mod wakers;
pub mod watch;

pub use error::{RecvError, SendError, TryRecvError, TrySendError};
pub use mpmc::{
    Closed, OwnedPermit, Permit, Receiver, Recv, RecvMany, Reserve, ReserveOwned, Send, Sender,
    WeakSender,
};
pub use select::{
    __finish_send, __random_start, __select_join, __select_look, SelectFuture, SelectRecv,
    SelectSend, select_any,
};

use std::collections::VecDeque;
use std::sync::Arc;

use mpmc::chan::Chan;

/// Below this many slots of spare room, a draining queue does not give memory back.
const KEEP: usize = 1024;

/// Gives a queue's memory back as it drains, so memory follows what is queued: down to a
/// quarter of its room, it keeps twice its length (amortised: it had to grow by as much first).
pub(crate) fn give_back_room<T>(queue: &mut VecDeque<T>) {
    let len = queue.len();
    if queue.capacity() > KEEP && len * 4 < queue.capacity() {
        queue.shrink_to((len * 2).max(KEEP));
    }
}

/// A bounded MPMC channel: up to `capacity` messages wait in it; each message is received by
/// exactly one receiver. Clone either end for more producers or consumers; the channel closes
/// when every sender (or every receiver) is gone, or on `close()`.
///
/// Memory: a capacity up to 4096 gets a lock-free ring allocated up front (the fast path);
/// a larger one grows and shrinks with what is queued, so `bounded(100_000_000)` costs nothing
/// until messages arrive.
///
/// # Panics
/// If `capacity` is 0: the accepted range is `1..=usize::MAX` (a rendezvous channel is not
/// offered; use 1).
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u32>(64);
/// klaw::runtime::block_on(async {
///     tx.send(1).await.unwrap();
///     assert_eq!(rx.recv().await, Ok(1));
///     assert_eq!(rx.capacity(), Some(64));
/// });
/// ```
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "a bounded channel's capacity must be in 1..=usize::MAX, not 0");
    pair(Some(capacity))
}

/// An unbounded MPMC channel: `send` never waits. Prefer a bounded channel unless the
/// producer is bounded by other means; an unbounded queue turns overload into memory growth.
///
/// ```
/// let (tx, rx) = klaw::channel::unbounded::<u32>();
/// for i in 0..1000 {
///     tx.try_send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    pair(None)
}

/// A bounded channel on the growing buffer whatever its capacity: what `bounded` gives above
/// 4096, here for small capacities, so that tests and models can fill it. Not public API.
#[doc(hidden)]
pub fn __growing_bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "a bounded channel's capacity must be in 1..=usize::MAX, not 0");
    let chan = Arc::new(Chan::growing(capacity));
    (Sender::new(chan.clone()), Receiver::new(chan))
}

fn pair<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(capacity));
    (Sender::new(chan.clone()), Receiver::new(chan))
}
