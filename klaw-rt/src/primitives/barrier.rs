//! `Barrier`: tasks wait until `n` of them have arrived.
//!
//! A count of arrivals and a generation under one lock; the waiters' wakers sit in a `WakerSet`
//! beside them, and `sync::wakers` clones, drops and wakes them only outside the lock, so a
//! waker may come back into the barrier when it is woken.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::sync::Mutex;
use crate::sync::wakers::{Ticket, Wake, WakerSet, leave, poll_or_wait};

/// Makes `n` tasks wait for each other: each `wait()` returns once `n` of them have arrived,
/// and then the barrier starts over for the next `n`. One of each group is told it is the
/// leader.
///
/// Works under any executor. A barrier of 0 behaves as one of 1: every `wait()` returns at
/// once, as the leader.
///
/// ```
/// use std::sync::Arc;
/// use klaw::sync::Barrier;
///
/// #[klaw::main(workers = 2)]
/// async fn main() -> Result<(), klaw::Error> {
///     let barrier = Arc::new(Barrier::new(3));
///     let leaders = klaw::scope!(|s| {
///         let waits: Vec<_> = (0..3)
///             .map(|_| {
///                 let barrier = barrier.clone();
///                 s.spawn(async move { barrier.wait().await.is_leader() })
///             })
///             .collect();
///         let mut leaders = 0;
///         for wait in waits {
///             leaders += usize::from(wait.await?);
///         }
///         Ok(leaders)
///     })?;
///     assert_eq!(leaders, 1);
///     Ok(())
/// }
/// ```
pub struct Barrier {
    /// The size of a group (at least 1).
    n: usize,
    state: Mutex<State>,
}

struct State {
    /// Tasks of the current group that have arrived: always below `n` between two polls.
    arrived: usize,
    /// Groups opened so far: a waiter goes on once it differs from the one it arrived in.
    generation: u64,
    /// The wakers of the current group's waiting tasks.
    waiters: WakerSet,
}

impl Barrier {
    /// A barrier for groups of `n` tasks.
    ///
    /// ```
    /// let barrier = klaw::sync::Barrier::new(1);
    /// assert!(klaw::runtime::block_on(barrier.wait()).is_leader());
    /// ```
    pub fn new(n: usize) -> Self {
        let state = State { arrived: 0, generation: 0, waiters: WakerSet::default() };
        Barrier { n: n.max(1), state: Mutex::new(state) }
    }

    /// Waits until `n` tasks (this one included) have called `wait()` on this barrier.
    ///
    /// # Cancel safety
    /// Not fully: the task counts as arrived from the future's first poll, and dropping the
    /// future afterwards does not take that back. The barrier then opens when the other `n - 1`
    /// arrive, and they all go on (no wake-up is lost, and the next group starts from zero). A
    /// future dropped before its first poll, or after the barrier opened for it, changes
    /// nothing.
    ///
    /// ```
    /// let barrier = klaw::sync::Barrier::new(2);
    /// let one_leader = std::thread::scope(|s| {
    ///     let other = s.spawn(|| klaw::runtime::block_on(barrier.wait()).is_leader());
    ///     let mine = klaw::runtime::block_on(barrier.wait()).is_leader();
    ///     mine ^ other.join().unwrap()
    /// });
    /// assert!(one_leader);
    /// ```
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait { barrier: self, arrived_in: None, ticket: Ticket::default() }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").field("n", &self.n).finish_non_exhaustive()
    }
}

/// The future of [`Barrier::wait`].
///
/// # Cancel safety
/// Not fully: once polled, the task counts as arrived even if the future is then dropped
/// (see [`Barrier::wait`]).
///
/// ```
/// let barrier = klaw::sync::Barrier::new(1);
/// let wait: klaw::sync::BarrierWait<'_> = barrier.wait();
/// assert!(klaw::runtime::block_on(wait).is_leader());
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    /// The generation its task arrived in, from its first poll on.
    arrived_in: Option<u64>,
    /// Its waker's place among the barrier's waiters, once it waits.
    ticket: Ticket,
}

/// How a group opened, for one of its tasks.
enum Opened {
    /// This task arrived last: it opened the group, and wakes the others after the lock.
    Leader(Wake),
    Follower,
}

impl Future for BarrierWait<'_> {
    type Output = BarrierWaitResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<BarrierWaitResult> {
        let this = self.get_mut();
        let n = this.barrier.n;
        let arrived_in = &mut this.arrived_in;
        let opened = poll_or_wait(
            &this.barrier.state,
            |s| &mut s.waiters,
            &mut this.ticket,
            cx,
            |s| {
                if let Some(generation) = *arrived_in {
                    return (s.generation != generation).then_some(Opened::Follower);
                }
                s.arrived += 1;
                if s.arrived < n {
                    *arrived_in = Some(s.generation);
                    return None;
                }
                // A poll after it completed finds its generation gone and does not arrive again.
                *arrived_in = Some(s.generation);
                s.arrived = 0;
                s.generation = s.generation.wrapping_add(1);
                Some(Opened::Leader(s.waiters.take_all()))
            },
        );
        Poll::Ready(match std::task::ready!(opened) {
            Opened::Leader(others) => {
                others.wake(); // after the lock
                BarrierWaitResult(true)
            }
            Opened::Follower => BarrierWaitResult(false),
        })
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        leave(&self.barrier.state, |s| &mut s.waiters, &mut self.ticket);
    }
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("arrived", &self.arrived_in.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`Barrier::wait`] returns: whether this task is its group's leader.
///
/// ```
/// let barrier = klaw::sync::Barrier::new(1);
/// let result: klaw::sync::BarrierWaitResult = klaw::runtime::block_on(barrier.wait());
/// assert!(result.is_leader());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one task of each group: the last to arrive.
    ///
    /// ```
    /// let barrier = klaw::sync::Barrier::new(1);
    /// assert!(klaw::runtime::block_on(barrier.wait()).is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}
