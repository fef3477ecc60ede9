//! `ChildSet`: some of a scope's children, whose outcomes come back in the order they finish
//! (tokio's `JoinSet::join_next`, inside a nursery).
//!
//! The order is `FuturesUnordered`'s queue of woken futures, which is the order the children
//! finished in only if each child was polled before it finished (its end then wakes it into the
//! queue). A child pushed and never polled waits in that queue from its push, ahead of older
//! children that finish before it: so the set polls each child as it is added (as tokio's
//! `JoinSet` registers each task's waker at its spawn). And the cooperative budget is taken by
//! the set, once per child handed over, not by each child's poll: a child whose poll found the
//! budget spent would wake itself to the back of the queue.
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::error::Error;
use crate::scope::registry::ScopeShared;
use crate::scope::{ChildKind, ChildOutput, Scope, ScopeHandle, Spawnable};
use crate::task::spec::is_large;
use crate::task::{BlockingTask, CancelReason};

/// Children of one scope whose outcomes come back as they finish, first finished first: made by
/// [`Scope::child_set`]. It is the scope's own `JoinSet`.
///
/// The children belong to the scope, not to the set: dropping the set neither cancels nor
/// detaches them (the scope still waits for each and still reports its failure). The scope's
/// rules hold for what the set gives back: in the default fail-fast mode a failed child fails the
/// whole scope (the body is cancelled, so [`next_finished`](Self::next_finished) never hands it
/// over), and in supervisor mode the failure is handed over, as the body's to report. With
/// `limit = n`, children wait their turn as usual and are handed over when they finish.
///
/// ```
/// # #[klaw::main(workers = 2)]
/// # async fn main() -> Result<(), klaw::Error> {
/// use std::time::Duration;
/// let order = klaw::scope!(|s| {
///     let mut set = s.child_set();
///     for ms in [30u64, 10, 20] {
///         set.spawn(async move {
///             klaw::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(ms) = set.next_finished().await {
///         order.push(ms?);
///     }
///     Ok(order)
/// })?;
/// assert_eq!(order, [10, 20, 30]);
/// # Ok(())
/// # }
/// ```
#[must_use = "a child set does nothing unless its children are awaited with `next_finished`"]
pub struct ChildSet<'s, 'env, T, E> {
    scope: &'s Scope<'env>,
    children: FuturesUnordered<Finished<'s, T, E>>,
    /// Children found finished when a child was added, in the order they finished: handed over
    /// before those still in `children`, which finished after them.
    finished: VecDeque<ScopeHandle<'s, T, E>>,
}

/// A child of the set, as a future that gives back its handle once the output may be taken:
/// the set takes it then, so that a large output leaves the child's core boxed and is moved out
/// of its box only into the value the set returns, never through `FuturesUnordered`'s frames.
struct Finished<'s, T, E>(Option<ScopeHandle<'s, T, E>>);

thread_local! {
    /// The scope whose children [`ChildSet::insert`] sets aside now, if any: that scope's only,
    /// since user code (a destructor of a child ended there) may run other scopes' sets inside.
    static SETTING_ASIDE: Cell<*const ScopeShared> = const { Cell::new(std::ptr::null()) };
}

/// True while a `ChildSet` of `scope` sets aside the children that finished already, in the
/// order they finished: none is handed over there (see `ScopeHandle::poll_finished`).
pub(super) fn setting_aside(scope: &ScopeShared) -> bool {
    SETTING_ASIDE.try_with(|cell| std::ptr::eq(cell.get(), scope)).unwrap_or(false)
}

impl<'s, T, E> Future for Finished<'s, T, E>
where
    T: Send + 'static,
    E: Into<crate::task::BoxError> + Send + 'static,
{
    type Output = ScopeHandle<'s, T, E>;

    /// Not budgeted: the set is (see the module's comment).
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let child = self.0.as_mut().expect("a finished child is not polled again");
        match child.poll_finished(cx) {
            Poll::Ready(()) => Poll::Ready(self.0.take().expect("checked above")),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<'s, 'env, T, E> ChildSet<'s, 'env, T, E>
where
    T: Send + 'static,
    E: Into<crate::task::BoxError> + Send + 'static,
{
    pub(crate) fn new(scope: &'s Scope<'env>) -> Self {
        ChildSet { scope, children: FuturesUnordered::new(), finished: VecDeque::new() }
    }

    /// Spawns a child in the scope, as [`Scope::spawn`] does, and adds it to the set.
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// klaw::scope!(|s| {
    ///     let mut set = s.child_set();
    ///     set.spawn(async { 1 });
    ///     assert_eq!(set.len(), 1);
    ///     Ok(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn<C, M>(&mut self, task: C)
    where
        C: Spawnable<Ok = T, Err = E> + ChildKind<M>,
    {
        self.insert(self.scope.spawn(task));
    }

    /// Spawns a closure on the blocking pool, as [`Scope::spawn_blocking`] does, and adds it.
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// let sum = klaw::scope!(|s| {
    ///     let mut set = s.child_set();
    ///     set.spawn_blocking(|| 2 + 2);
    ///     Ok(set.next_finished().await.unwrap()?)
    /// })?;
    /// assert_eq!(sum, 4);
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_blocking<F, M>(&mut self, f: F)
    where
        F: FnOnce() -> T + Send + 'static,
        T: ChildOutput<M>,
        BlockingTask<F>: Spawnable<Ok = T, Err = E>,
        BlockingTask<Box<F>>: Spawnable<Ok = T, Err = E>,
    {
        // A large closure goes down as a pointer (see `Scope::spawn_blocking`).
        if const { is_large::<F>() } {
            self.insert(self.scope.spawn(BlockingTask::new(Box::new(f))));
        } else {
            self.insert(self.scope.spawn(BlockingTask::new(f)));
        }
    }

    /// Adds a child the scope already spawned, by its handle.
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// klaw::scope!(|s| {
    ///     let mut set = s.child_set();
    ///     let child = s.spawn(async { 5 });
    ///     let id = child.id();
    ///     set.insert(child);
    ///     assert_eq!(set.next_finished().await.unwrap()?, 5);
    ///     # let _ = id;
    ///     Ok(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert(&mut self, child: ScopeHandle<'s, T, E>) {
        self.children.push(Finished(Some(child)));
        // Polled at once, so that from now on its end wakes it into the queue in turn. What
        // the queue holds before it has finished already, in order: kept in `finished`. The
        // waker the set's own poll registers is of no use here; the next poll sets it again.
        // Nothing is handed over here, so a stopping scope's cancellation point does not apply
        // (`setting_aside`): a finished child that met it would wake itself to the back of the
        // queue, and the queue gives up after two of those, before the new child, which then
        // came first.
        let mut cx = Context::from_waker(Waker::noop());
        let (children, finished) = (&mut self.children, &mut self.finished);
        crate::coop::with_flag(&SETTING_ASIDE, std::sync::Arc::as_ptr(&self.scope.shared), || {
            while let Poll::Ready(Some(done)) = children.poll_next_unpin(&mut cx) {
                finished.push_back(done);
            }
        });
    }

    /// The outcome of the next child to finish, or `None` once the set is empty. A cancelled
    /// child gives `Err` with [`TaskError::Cancelled`](crate::task::TaskError::Cancelled).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future before it completes loses no outcome; the child stays in
    /// the set and the next call gives it.
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// klaw::scope!(|s| {
    ///     let mut set = s.child_set::<u8, std::convert::Infallible>();
    ///     assert!(set.next_finished().await.is_none(), "an empty set is finished at once");
    ///     Ok(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_finished(&mut self) -> impl Future<Output = Option<Result<T, Error>>> + '_ {
        // Not an `async fn`, whose state would hold the output once more on its way out.
        std::future::poll_fn(|cx| self.poll_next_finished(cx))
    }

    /// A child that has finished already, without waiting (tokio's `JoinSet::try_join_next`):
    /// `None` if none has finished yet, or the set is empty. Outside the cooperative budget,
    /// so a loop of it drains every finished child, as tokio's does.
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// klaw::scope!(|s| {
    ///     let mut set = s.child_set();
    ///     assert!(set.try_next_finished().is_none(), "nothing yet");
    ///     set.spawn(async { 7 });
    ///     let (done, is_done) = klaw::channel::oneshot::channel();
    ///     s.spawn(async move { done.send(()).unwrap() });
    ///     is_done.await?; // the set's child was queued first, so it has run
    ///     assert_eq!(set.try_next_finished().unwrap()?, 7);
    ///     Ok(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_next_finished(&mut self) -> Option<Result<T, Error>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // A waiting `next_finished` registers its own waker again when it is polled, and a
        // child that finishes meanwhile is queued in the set whatever waker it wakes.
        match crate::coop::without_budget(|| self.poll_next_finished(&mut cx)) {
            Poll::Ready(finished) => finished,
            Poll::Pending => None,
        }
    }

    /// The next child to finish, its output taken (see [`Finished`]): what the set returns,
    /// so the last place a large output is moved to.
    /// Budgeted as a handle's poll is: one unit a child handed over.
    fn poll_next_finished(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        let (children, finished) = (&mut self.children, &mut self.finished);
        let next = crate::coop::budgeted(cx, |cx| match finished.front_mut() {
            // Finished already: its poll is only the cancellation point every child's is.
            Some(done) => done.poll_finished(cx).map(|()| finished.pop_front()),
            None => children.poll_next_unpin(cx),
        });
        let Poll::Ready(child) = next else { return Poll::Pending };
        Poll::Ready(child.map(ScopeHandle::into_finished_output))
    }

    /// How many children have not been handed over yet.
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// klaw::scope!(|s| {
    ///     let set = s.child_set::<(), std::convert::Infallible>();
    ///     assert_eq!(set.len(), 0);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// # });
    /// ```
    pub fn len(&self) -> usize {
        self.children.len() + self.finished.len()
    }

    /// True when every child has been handed over.
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// klaw::scope!(|s| {
    ///     assert!(s.child_set::<(), std::convert::Infallible>().is_empty());
    ///     Ok(())
    /// })
    /// .unwrap();
    /// # });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.children.is_empty() && self.finished.is_empty()
    }

    /// Cancels every child not handed over yet, with `reason`; their outcomes still come back
    /// (as cancelled, unless they finished first).
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// klaw::scope!(|s| {
    ///     let mut set = s.child_set();
    ///     set.spawn(std::future::pending::<()>());
    ///     set.cancel_all("enough");
    ///     assert!(set.next_finished().await.unwrap().is_err());
    ///     Ok(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn cancel_all(&self, reason: impl Into<CancelReason>) {
        let reason = reason.into();
        // Those in `finished` have finished: a cancel would change nothing.
        for child in self.children.iter().filter_map(|child| child.0.as_ref()) {
            child.cancel(reason.clone());
        }
    }
}

/// The outcomes, as they finish: the same as [`next_finished`](ChildSet::next_finished).
impl<T, E> Stream for ChildSet<'_, '_, T, E>
where
    T: Send + 'static,
    E: Into<crate::task::BoxError> + Send + 'static,
{
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_finished(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl<T, E> fmt::Debug for ChildSet<'_, '_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let children = self.children.len() + self.finished.len();
        f.debug_struct("ChildSet").field("children", &children).finish()
    }
}
