//! A [`BlockingTask`] awaited inline: on the current runtime's blocking pool, or on this thread
//! when there is no runtime. (Here, beside the scopes: what the closure fails with after its
//! await was dropped is reported as a cancelled child's failure is.)
//!
//! On the pool, the closure is a descendant of the code that awaits it, as a scope's blocking
//! child is of its scope: an await dropped before the closure returned (its region or task was
//! cancelled, a `select!` took another arm) cancels the job, so that `is_cancelled()` is true in
//! it, and hands it to the innermost frame around the await (a region, a scope, a task), which
//! ends only after the closure has returned, as a dropped scope hands over its children
//! (`task::current::hand_over`). A failure the closure returns after that cancel is that
//! frame's to report, as a cancelled child's is its scope's.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::runtime::Handle;
use crate::runtime::spawn::ParentLink;
use crate::scope::registry::Failure;
use crate::task::core::{CoreRef, FailureTaker, TaskCore};
use crate::task::current;
use crate::task::descendants::{AdoptedFailure, Descendants};
use crate::task::error::BoxError;
use crate::task::guard::guarded_boxed;
use crate::task::handle::TaskOutput;
use crate::task::runner::task_span;
use crate::task::spec::is_large;
use crate::task::state::Kind;
use crate::task::{BlockingTask, CancelReason, Outcome, TaskError, TaskHandle, TaskId, TaskInfo};

/// A [`BlockingTask`] awaited inline: it runs on the current runtime's blocking pool, or on this
/// thread when there is no runtime (as under a plain `klaw::runtime::block_on`).
///
/// ```
/// use std::future::IntoFuture;
/// let inline: klaw::task::InlineBlockingTask<u8, _> = klaw::task::BlockingTask::new(|| 2u8).into_future();
/// assert_eq!(klaw::runtime::block_on(inline), Ok(2));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct InlineBlockingTask<T: Send + 'static, E: Send + 'static> {
    state: InlineBlocking<T, E>,
}

// Nothing in it is pinned in place: the handle is `Unpin` and the output is only moved out.
impl<T: Send + 'static, E: Send + 'static> Unpin for InlineBlockingTask<T, E> {}

enum InlineBlocking<T, E> {
    /// The job on the pool, and what counts it until it has ended: handed to the frame around
    /// the await if the await is dropped first.
    OnPool(TaskHandle<T, E>, Arc<Descendants>),
    /// Boxed: so the future is as small as its handle whatever the output, and a large output
    /// is not copied by value through the frames that made it.
    Ran(Option<Box<TaskOutput<T, E>>>),
}

/// How a job awaited inline reports to the code that awaits it: its end, and a failure after
/// its await was dropped (which cancelled it).
struct AwaitedBy {
    running: Arc<Descendants>,
    name: Option<String>,
}

impl<E: Into<BoxError> + Send + 'static> ParentLink<E> for AwaitedBy {
    /// The await gives the output, failure or not: there is no scope to fail.
    fn before_publish(&self, _: Kind) {}

    /// The closure failed after the await was dropped: the frame the job was handed to reports
    /// it (or, outside any frame, it is logged).
    fn raced(&self, id: TaskId, error: TaskError<E>) {
        let error = Error::of_task(Some(TaskInfo::new(id, self.name.as_deref())), error);
        self.running.adopt_failure(Box::new(Failure::Raced(error)));
    }

    fn adopted(&self, failure: Box<dyn AdoptedFailure>) {
        self.running.adopt_failure(failure);
    }

    fn ended(self) {
        self.running.ended();
    }

    /// The await takes the output, failure or not; dropped, it cancelled the job first.
    fn failure_taker(&self) -> FailureTaker {
        FailureTaker::HandleOnly
    }

    fn list<T: Send + 'static>(&mut self, _: CoreRef<TaskCore<TaskOutput<T, E>>>) {
        unreachable!("a blocking task awaited inline waits for no slot of a limit")
    }
}

impl<F, O, M> IntoFuture for BlockingTask<F, M>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    M::Err: Into<BoxError>,
{
    type Output = TaskOutput<M::Ok, M::Err>;
    type IntoFuture = InlineBlockingTask<M::Ok, M::Err>;

    /// ```
    /// klaw::runtime::block_on(async {
    ///     assert_eq!(klaw::task::BlockingTask::new(|| 6 * 7).await, Ok(42));
    /// });
    /// ```
    fn into_future(self) -> InlineBlockingTask<M::Ok, M::Err> {
        // A large closure goes down the layers (and the pool thread's) as a pointer, as a large
        // future does; decided at compile time.
        if const { is_large::<F>() } { inline(self.boxed()) } else { inline(self) }
    }
}

/// Starts `task` on the current runtime's blocking pool, or runs it here without a runtime.
fn inline<F, O, M>(task: BlockingTask<F, M>) -> InlineBlockingTask<M::Ok, M::Err>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    M::Err: Into<BoxError>,
{
    let state = match Handle::current() {
        Ok(runtime) => {
            let running = Descendants::new();
            running.add();
            let link = AwaitedBy {
                running: running.clone(),
                name: task.name.as_deref().map(str::to_owned),
            };
            let handle = runtime.spawn_blocking_child(task, Default::default(), |_| Some(link));
            InlineBlocking::OnPool(handle, running)
        }
        Err(_) => {
            let span = task_span(TaskId::next(), task.name.as_deref(), None);
            let _span = span.as_ref().map(|span| span.enter());
            InlineBlocking::Ran(Some(guarded_boxed::<M, O>(task.body)))
        }
    };
    InlineBlockingTask { state }
}

impl<T: Send + 'static, E: Send + 'static> Future for InlineBlockingTask<T, E> {
    type Output = TaskOutput<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            InlineBlocking::OnPool(handle, _) => Pin::new(handle).poll(cx),
            InlineBlocking::Ran(output) => Poll::Ready(
                *output.take().expect("an InlineBlockingTask is polled to completion once"),
            ),
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> Drop for InlineBlockingTask<T, E> {
    fn drop(&mut self) {
        let InlineBlocking::OnPool(handle, running) = &self.state else { return };
        if !running.is_empty() {
            // Dropped before the closure returned: it hears the cancel, and the frame around
            // the await waits for it (outside any frame, this blocks until it has returned).
            handle.cancel(CancelReason::ParentCancelled);
            current::hand_over(running);
        }
        // A failure after a cancel that came first (a shutdown's) while the await still ran.
        current::hand_over_failures(running.take_failures());
    }
}

impl<T: Send + 'static, E: Send + 'static> fmt::Debug for InlineBlockingTask<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on_pool = matches!(self.state, InlineBlocking::OnPool(..));
        f.debug_struct("InlineBlockingTask").field("on_pool", &on_pool).finish()
    }
}
