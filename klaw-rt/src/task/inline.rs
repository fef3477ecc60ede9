//! Awaiting a [`Task`] or [`BlockingTask`] inline: the same result as spawning it and awaiting
//! its handle, without the spawn.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use pin_project_lite::pin_project;

use crate::task::handle::TaskOutput;
use crate::task::runner::{panic_message, task_span};
use crate::task::{BlockingTask, Outcome, Task, TaskHandle, TaskId};
use crate::{Handle, TaskError};

pin_project! {
    /// A [`Task`] awaited inline: it runs in the awaiting task, in its own span, with its
    /// timeout, and a panic in it becomes [`TaskError::Panicked`].
    ///
    /// ```
    /// use std::future::IntoFuture;
    /// let inline: klaw::InlineTask<_, klaw::Plain> = klaw::Task::new(async { 1 }).into_future();
    /// assert_eq!(klaw::block_on(inline), Ok(1));
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct InlineTask<F, M> {
        #[pin]
        future: F,
        span: Option<Box<tracing::Span>>,
        timeout: Option<(Duration, Option<Timer>)>,
        mode: PhantomData<fn() -> M>,
    }
}

impl<F: Future, M: Outcome<F::Output>> IntoFuture for Task<F, M> {
    type Output = TaskOutput<M::Ok, M::Err>;
    type IntoFuture = InlineTask<F, M>;

    /// ```
    /// use std::time::Duration;
    /// klaw::block_on(async {
    ///     let slow = klaw::Task::new(klaw::sleep(Duration::from_secs(60))).timeout(Duration::from_millis(5));
    ///     assert!(matches!(slow.await, Err(klaw::TaskError::TimedOut(_))));
    ///     assert_eq!(klaw::Task::fallible(async { "3".parse::<u8>() }).await, Ok(3));
    /// });
    /// ```
    fn into_future(self) -> InlineTask<F, M> {
        InlineTask {
            span: task_span(TaskId::next(), self.name.as_deref(), None),
            future: self.future,
            timeout: self.timeout.map(|after| (after, None)),
            mode: PhantomData,
        }
    }
}

impl<F: Future, M: Outcome<F::Output>> Future for InlineTask<F, M> {
    type Output = TaskOutput<M::Ok, M::Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some((after, timer)) = this.timeout.as_mut() {
            let timer = timer.get_or_insert_with(|| Timer::after(*after));
            if Pin::new(timer).poll(cx).is_ready() {
                return Poll::Ready(Err(TaskError::TimedOut(*after)));
            }
        }
        let _span = this.span.as_ref().map(|span| span.enter());
        match catch_unwind(AssertUnwindSafe(|| this.future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(M::split(output)),
            Err(payload) => Poll::Ready(Err(TaskError::Panicked(panic_message(payload.as_ref())))),
        }
    }
}

impl<F, M> fmt::Debug for InlineTask<F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineTask")
            .field("timeout", &self.timeout.as_ref().map(|(after, _)| after))
            .finish_non_exhaustive()
    }
}

/// A [`BlockingTask`] awaited inline: it runs on the current runtime's blocking pool, or on this
/// thread when there is no runtime (as under a plain `klaw::block_on`).
///
/// ```
/// use std::future::IntoFuture;
/// let inline: klaw::InlineBlockingTask<u8, _> = klaw::BlockingTask::new(|| 2u8).into_future();
/// assert_eq!(klaw::block_on(inline), Ok(2));
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
    /// klaw::block_on(async {
    ///     assert_eq!(klaw::BlockingTask::new(|| 6 * 7).await, Ok(42));
    /// });
    /// ```
    fn into_future(self) -> InlineBlockingTask<M::Ok, M::Err> {
        let state = match Handle::current() {
            Ok(runtime) => {
                InlineBlocking::OnPool(runtime.spawn_blocking_child(self, None, |_| None))
            }
            Err(_) => {
                let span = task_span(TaskId::next(), self.name.as_deref(), None);
                let _span = span.as_ref().map(|span| span.enter());
                let output = match catch_unwind(AssertUnwindSafe(self.body)) {
                    Ok(value) => M::split(value),
                    Err(payload) => Err(TaskError::Panicked(panic_message(payload.as_ref()))),
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
