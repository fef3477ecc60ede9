//! Awaiting a [`Task`] inline: the same result as spawning it and awaiting its handle, without
//! the spawn. (A blocking task awaited inline is `scope::InlineBlockingTask`: it
//! needs the runtime's pool.) Here, beside the runtime, since its timeout is a cancel region.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::cancel::{Cancellable, Region};
use crate::task::guard::{guarded, kind_of};
use crate::task::handle::TaskOutput;
use crate::task::runner::task_span;
use crate::task::{Outcome, Task, TaskError, TaskId};

pin_project! {
    /// A [`Task`] awaited inline: it runs in the awaiting task, in its own span, with its
    /// timeout, and a panic in it becomes [`TaskError::Panicked`].
    ///
    /// A timeout makes it a cancel region ([`Region`](crate::cancel::Region)) around its body,
    /// as a spawned task's timeout is a cancellation of that task: once it passes, the await
    /// gives [`TaskError::TimedOut`] only after a shield in the body has ended and after
    /// everything the body started (a scope's children) has. If the body, held open by a
    /// shield, fails after the timeout, the await gives that failure: nothing that failed is
    /// lost. (A spawned task's handle keeps `TimedOut`, and its scope reports the failure.)
    ///
    /// ```
    /// use std::future::IntoFuture;
    /// let inline: klaw::task::InlineTask<_, klaw::task::Plain> = klaw::Task::new(async { 1 }).into_future();
    /// assert_eq!(klaw::runtime::block_on(inline), Ok(1));
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct InlineTask<F, M>
    where
        F: Future,
        M: Outcome<F::Output>,
    {
        #[pin]
        run: Run<F, M>,
    }
}

pin_project! {
    /// How the body runs: as it is, or in a region that its timeout cancels.
    #[project = RunProjection]
    enum Run<F, M>
    where
        F: Future,
        M: Outcome<F::Output>,
    {
        Untimed { #[pin] body: Body<F, M> },
        Timed { #[pin] region: Cancellable<Body<F, M>>, after: Duration },
    }
}

pin_project! {
    /// A task's body polled inline: in its span, a panic caught, its output split by `M`.
    struct Body<F, M> {
        #[pin]
        future: F,
        span: Option<Box<tracing::Span>>,
        // In a timeout's region: a failure claims the completion of the regions around, so a
        // timeout that passed while a shield held the body open does not drop it.
        timed: bool,
        mode: PhantomData<fn() -> M>,
    }
}

impl<F: Future, M: Outcome<F::Output>> Future for Body<F, M> {
    type Output = TaskOutput<M::Ok, M::Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _span = this.span.as_ref().map(|span| span.enter());
        let future = this.future;
        let polled = guarded::<M, _>(|| future.poll(cx));
        if *this.timed && matches!(&polled, Poll::Ready(output) if kind_of(output).is_failure()) {
            // Every cancelled region around claimed, as by a scope that returns failures: the
            // failure goes through them to the code that can handle it, not dropped by one.
            crate::cancel::frames::claim_completion();
        }
        polled
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
        // Each kind built in a function of its own: in a debug build every temporary of a
        // function has a place in its frame, and a large future made a dozen of them here.
        match self.timeout {
            None => untimed(self),
            Some(after) => timed(self, after),
        }
    }
}

fn untimed<F: Future, M: Outcome<F::Output>>(task: Task<F, M>) -> InlineTask<F, M> {
    let span = task_span(TaskId::next(), task.name.as_deref(), None);
    let body = Body { future: task.future, span, timed: false, mode: PhantomData };
    InlineTask { run: Run::Untimed { body } }
}

fn timed<F: Future, M: Outcome<F::Output>>(task: Task<F, M>, after: Duration) -> InlineTask<F, M> {
    let span = task_span(TaskId::next(), task.name.as_deref(), None);
    let body = Body { future: task.future, span, timed: true, mode: PhantomData };
    // Counted from the first poll, on the clock current then, as `fail_after` counts (not from
    // when the task was turned into a future, which may be long before it is awaited).
    InlineTask { run: Run::Timed { region: Region::new().run_for(after, body), after } }
}

impl<F: Future, M: Outcome<F::Output>> Future for InlineTask<F, M> {
    type Output = TaskOutput<M::Ok, M::Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().run.project() {
            RunProjection::Untimed { body } => body.poll(cx),
            // Nothing but the timeout cancels this region (an enclosing cancellation is not
            // caught here: it drops the awaiting code instead).
            RunProjection::Timed { region, after } => {
                region.poll(cx).map(|outcome| outcome.unwrap_or(Err(TaskError::TimedOut(*after))))
            }
        }
    }
}

impl<F: Future, M: Outcome<F::Output>> fmt::Debug for InlineTask<F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let timeout = match &self.run {
            Run::Untimed { .. } => None,
            Run::Timed { after, .. } => Some(after),
        };
        f.debug_struct("InlineTask").field("timeout", &timeout).finish_non_exhaustive()
    }
}
