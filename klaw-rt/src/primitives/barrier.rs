//! `Barrier`: tasks wait until `n` of them have arrived, on smol-rs's `async-lock`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Makes `n` tasks wait for each other: each `wait()` returns once `n` of them have arrived,
/// and then the barrier starts over for the next `n`. One of each group is told it is the
/// leader.
///
/// Built on smol-rs's `async-lock`; works under any executor. A barrier of 0 behaves as one of
/// 1: every `wait()` returns at once, as the leader.
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
pub struct Barrier(async_lock::Barrier);

impl Barrier {
    /// A barrier for groups of `n` tasks.
    ///
    /// ```
    /// let barrier = klaw::sync::Barrier::new(1);
    /// assert!(klaw::runtime::block_on(barrier.wait()).is_leader());
    /// ```
    pub fn new(n: usize) -> Self {
        Barrier(async_lock::Barrier::new(n))
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
        BarrierWait { inner: self.0.wait() }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
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
        #[pin]
        inner: async_lock::futures::BarrierWait<'a>,
    }
}

impl Future for BarrierWait<'_> {
    type Output = BarrierWaitResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<BarrierWaitResult> {
        self.project().inner.poll(cx).map(|result| BarrierWaitResult(result.is_leader()))
    }
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait").finish_non_exhaustive()
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
