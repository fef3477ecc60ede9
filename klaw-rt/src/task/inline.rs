//! Awaiting a [`Task`] inline: the same result as spawning it and awaiting its handle, without
//! the spawn. (A blocking task awaited inline is `runtime::InlineBlockingTask`: it needs the
//! runtime's pool.)
#![forbid(unsafe_code)]

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::task::guard::guarded;
use crate::task::handle::TaskOutput;
use crate::task::runner::task_span;
use crate::task::{Outcome, Task, TaskError, TaskId};
use crate::time::{Sleep, sleep};

pin_project! {
    /// A [`Task`] awaited inline: it runs in the awaiting task, in its own span, with its
    /// timeout, and a panic in it becomes [`TaskError::Panicked`].
    ///
    /// ```
    /// use std::future::IntoFuture;
    /// let inline: klaw::task::InlineTask<_, klaw::task::Plain> = klaw::Task::new(async { 1 }).into_future();
    /// assert_eq!(klaw::runtime::block_on(inline), Ok(1));
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct InlineTask<F, M> {
        #[pin]
        future: F,
        span: Option<Box<tracing::Span>>,
        timeout: Option<(Duration, Option<Sleep>)>,
        mode: PhantomData<fn() -> M>,
    }
}

impl<F: Future, M: Outcome<F::Output>> IntoFuture for Task<F, M> {
    type Output = TaskOutput<M::Ok, M::Err>;
    type IntoFuture = InlineTask<F, M>;

    /// ```
    /// use std::time::Duration;
    /// klaw::runtime::block_on(async {
    ///     let slow = klaw::Task::new(klaw::time::sleep(Duration::from_secs(60))).timeout(Duration::from_millis(5));
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
            let timer = timer.get_or_insert_with(|| sleep(*after));
            if timer.poll_deadline(cx).is_ready() {
                return Poll::Ready(Err(TaskError::TimedOut(*after)));
            }
        }
        let _span = this.span.as_ref().map(|span| span.enter());
        let future = this.future;
        guarded::<M, _>(|| future.poll(cx))
    }
}

impl<F, M> fmt::Debug for InlineTask<F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineTask")
            .field("timeout", &self.timeout.as_ref().map(|(after, _)| after))
            .finish_non_exhaustive()
    }
}
