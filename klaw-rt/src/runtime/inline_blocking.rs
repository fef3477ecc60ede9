//! A [`BlockingTask`] awaited inline: on the current runtime's blocking pool, or on this thread
//! when there is no runtime.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::Handle;
use crate::runtime::spawn::NoParent;
use crate::task::guard::guarded;
use crate::task::handle::TaskOutput;
use crate::task::runner::task_span;
use crate::task::{BlockingTask, Outcome, TaskHandle, TaskId};

/// A [`BlockingTask`] awaited inline: it runs on the current runtime's blocking pool, or on this
/// thread when there is no runtime (as under a plain `klaw::runtime::block_on`).
///
/// ```
/// use std::future::IntoFuture;
/// let inline: klaw::task::InlineBlockingTask<u8, _> = klaw::task::BlockingTask::new(|| 2u8).into_future();
/// assert_eq!(klaw::runtime::block_on(inline), Ok(2));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct InlineBlockingTask<T, E> {
    state: InlineBlocking<T, E>,
}

// Nothing in it is pinned in place: the handle is `Unpin` and the output is only moved out.
impl<T, E> Unpin for InlineBlockingTask<T, E> {}

enum InlineBlocking<T, E> {
    OnPool(TaskHandle<T, E>),
    Ran(Option<TaskOutput<T, E>>),
}

impl<F, O, M> IntoFuture for BlockingTask<F, M>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
{
    type Output = TaskOutput<M::Ok, M::Err>;
    type IntoFuture = InlineBlockingTask<M::Ok, M::Err>;

    /// ```
    /// klaw::runtime::block_on(async {
    ///     assert_eq!(klaw::task::BlockingTask::new(|| 6 * 7).await, Ok(42));
    /// });
    /// ```
    fn into_future(self) -> InlineBlockingTask<M::Ok, M::Err> {
        let state = match Handle::current() {
            Ok(runtime) => InlineBlocking::OnPool(runtime.spawn_blocking_child(
                self,
                Default::default(),
                |_| None::<NoParent>,
            )),
            Err(_) => {
                let span = task_span(TaskId::next(), self.name.as_deref(), None);
                let _span = span.as_ref().map(|span| span.enter());
                let body = self.body;
                let Poll::Ready(output) = guarded::<M, O>(|| Poll::Ready(body())) else {
                    unreachable!("a blocking body runs to its end")
                };
                InlineBlocking::Ran(Some(output))
            }
        };
        InlineBlockingTask { state }
    }
}

impl<T: Send + 'static, E: Send + 'static> Future for InlineBlockingTask<T, E> {
    type Output = TaskOutput<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            InlineBlocking::OnPool(handle) => Pin::new(handle).poll(cx),
            InlineBlocking::Ran(output) => Poll::Ready(
                output.take().expect("an InlineBlockingTask is polled to completion once"),
            ),
        }
    }
}

impl<T, E> fmt::Debug for InlineBlockingTask<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on_pool = matches!(self.state, InlineBlocking::OnPool(_));
        f.debug_struct("InlineBlockingTask").field("on_pool", &on_pool).finish()
    }
}
