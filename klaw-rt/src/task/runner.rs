//! What runs a task's body: `AsyncRunner` (a future on the executor) and `BlockingRunner` (a
//! closure on the blocking pool). Both catch panics, honour a cancel that came first, discard a
//! completion that came last, and publish exactly one output.
#![forbid(unsafe_code)]

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use pin_project_lite::pin_project;

use crate::TaskError;
use crate::runtime::stats::Stats;
use crate::scope::ChildLink;
use crate::task::core::{self, Completer, Header};
use crate::task::handle::TaskOutput;
use crate::task::{CancelReason, Outcome, TaskId, current};

/// The output of a task whose outcome was decided without a value from its body.
fn output_without_value<T, E>(header: &Header, timeout: Option<Duration>) -> TaskOutput<T, E> {
    match header.kind() {
        core::CANCELLED => {
            Err(TaskError::Cancelled(header.cancel_reason().unwrap_or(CancelReason::Shutdown)))
        }
        core::TIMED_OUT => Err(TaskError::TimedOut(timeout.unwrap_or_default())),
        other => unreachable!("task state {other} has no output of its own"),
    }
}

/// The span every task runs in: INFO `task` with `task.id` and `task.name`. Boxed, and only
/// when some subscriber wants it, so a runner stays small when tracing is off.
/// The span every task runs in: its id, its name, and the scope it belongs to.
pub(crate) fn task_span(
    id: TaskId,
    name: Option<&str>,
    scope: Option<&str>,
) -> Option<Box<tracing::Span>> {
    let span = tracing::info_span!(
        "task",
        task.id = id.as_u64(),
        task.name = tracing::field::Empty,
        scope = tracing::field::Empty
    );
    if span.is_disabled() {
        return None;
    }
    if let Some(name) = name {
        span.record("task.name", name);
    }
    if let Some(scope) = scope {
        span.record("scope", scope);
    }
    Some(Box::new(span))
}

/// The message of a caught panic, as `std` would print it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// Ends a task whose body is gone: counts it, then publishes its output. Counting first means
/// that once a handle resolves, the runtime's live count no longer includes its task.
fn conclude<T: Send + 'static, E: Send + 'static>(
    completer: Completer<TaskOutput<T, E>>,
    output: TaskOutput<T, E>,
    stats: Option<&Stats>,
    parent: Option<ChildLink>,
) {
    let kind = completer.header().kind();
    if let Some(stats) = stats {
        stats.task_ended(kind);
    }
    completer.publish(output);
    // After publishing: a scope that sees its last child end may collect its output at once.
    if let Some(parent) = parent {
        parent.child_ended(kind);
    }
}

/// Splits a body's result per its mode; returns the state to decide and the output to publish.
/// A decided cancellation or timeout drops the body, unless a shield in it is still running.
fn must_stop(header: &Header) -> bool {
    header.kind() != core::PENDING && !header.is_shielded()
}

fn classify<M: Outcome<O>, O>(output: O) -> (usize, TaskOutput<M::Ok, M::Err>) {
    match M::split(output) {
        Ok(value) => (core::SUCCESS, Ok(value)),
        Err(error) => {
            let kind = match &error {
                TaskError::Panicked(_) => core::PANICKED,
                TaskError::TimedOut(_) => core::TIMED_OUT,
                TaskError::Cancelled(_) => core::CANCELLED,
                _ => core::ERROR,
            };
            (kind, Err(error))
        }
    }
}

/// A task's own timeout: how long it may run, and the timer started when it first runs.
pub(crate) struct Deadline {
    after: Duration,
    timer: Option<Timer>,
}

pin_project! {
    /// The future the executor runs for one task: it wraps the user's body.
    pub(crate) struct AsyncRunner<F, M>
    where
        F: Future,
        M: Outcome<F::Output>,
    {
        #[pin]
        body: Option<F>,
        // `None` once the output is published.
        completer: Option<Completer<TaskOutput<M::Ok, M::Err>>>,
        // Boxed: rare, and a timer is large; a small runner means fewer cache lines travel
        // from the spawning thread to the worker.
        deadline: Option<Box<Deadline>>,
        span: Option<Box<tracing::Span>>,
        started: bool,
        stats: Option<Arc<Stats>>,
        parent: Option<ChildLink>,
        mode: PhantomData<fn() -> M>,
    }

    impl<F, M> PinnedDrop for AsyncRunner<F, M>
    where
        F: Future,
        M: Outcome<F::Output>,
    {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before finishing: the executor went away (runtime shutdown). The outcome is
            // cancelled unless something else decided it first.
            let mut this = this.project();
            if let Some(completer) = this.completer.as_ref() {
                completer.ensure_decided(CancelReason::Shutdown);
                let timeout = this.deadline.as_ref().map(|d| d.after);
                finish(this.body.as_mut(), this.completer, this.stats, this.parent, timeout, None);
            }
        }
    }
}

impl<F, M> AsyncRunner<F, M>
where
    F: Future,
    M: Outcome<F::Output>,
{
    pub(crate) fn new(
        body: F,
        completer: Completer<TaskOutput<M::Ok, M::Err>>,
        timeout: Option<Duration>,
        span: Option<Box<tracing::Span>>,
        stats: Option<Arc<Stats>>,
        parent: Option<ChildLink>,
    ) -> Self {
        Self {
            body: Some(body),
            completer: Some(completer),
            deadline: timeout.map(|after| Box::new(Deadline { after, timer: None })),
            span,
            started: false,
            stats,
            parent,
            mode: PhantomData,
        }
    }
}

/// Drops the body (containing a panic in its destructor), then publishes the output: `output`
/// if the body produced the winning one, else the one the decided outcome implies.
fn finish<F, T: Send + 'static, E: Send + 'static>(
    mut body: Pin<&mut Option<F>>,
    completer: &mut Option<Completer<TaskOutput<T, E>>>,
    stats: &Option<Arc<Stats>>,
    parent: &mut Option<ChildLink>,
    timeout: Option<Duration>,
    output: Option<TaskOutput<T, E>>,
) {
    // The body must be gone before the handle resolves: a joined task has stopped running.
    let _ = catch_unwind(AssertUnwindSafe(|| body.set(None)));
    let completer = completer.take().expect("a task is finished once");
    let output = output.unwrap_or_else(|| output_without_value(completer.header(), timeout));
    conclude(completer, output, stats.as_deref(), parent.take());
}

impl<F, M> Future for AsyncRunner<F, M>
where
    F: Future,
    M: Outcome<F::Output>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(completer) = this.completer.as_mut() else { return Poll::Ready(()) };
        let timeout = this.deadline.as_ref().map(|d| d.after);

        if !*this.started {
            *this.started = true;
            // The executor's waker for this task never changes, so storing it once suffices
            // for a later cancel to reschedule us.
            if !completer.try_start(Some(cx.waker())) {
                finish(this.body.as_mut(), this.completer, this.stats, this.parent, timeout, None);
                return Poll::Ready(());
            }
            if let Some(deadline) = this.deadline.as_mut() {
                deadline.timer = Some(Timer::after(deadline.after));
            }
        } else if must_stop(completer.header()) {
            // Cancelled while pending: drop the body now.
            finish(this.body.as_mut(), this.completer, this.stats, this.parent, timeout, None);
            return Poll::Ready(());
        }

        if let Some(timer) = this.deadline.as_mut().and_then(|d| d.timer.as_mut()) {
            if Pin::new(timer).poll(cx).is_ready() {
                completer.try_finish(core::TIMED_OUT);
                if let Some(deadline) = this.deadline.as_mut() {
                    deadline.timer = None; // fired once; a shield may keep the body a while
                }
                if must_stop(completer.header()) {
                    finish(
                        this.body.as_mut(),
                        this.completer,
                        this.stats,
                        this.parent,
                        timeout,
                        None,
                    );
                    return Poll::Ready(());
                }
            }
        }

        let polled = {
            let _span = this.span.as_ref().map(|span| span.enter());
            let _current = current::enter(&*completer);
            let body = this.body.as_mut().as_pin_mut().expect("the body lives until finish");
            catch_unwind(AssertUnwindSafe(|| body.poll(cx)))
        };
        let output = match polled {
            Ok(Poll::Pending) if must_stop(completer.header()) => None, // a shield just ended
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => {
                let (kind, output) = classify::<M, _>(value);
                // Loses only to a cancel that came first; then the value is discarded.
                completer.try_finish(kind).then_some(output)
            }
            Err(payload) => completer
                .try_finish(core::PANICKED)
                .then(|| Err(TaskError::Panicked(panic_message(payload.as_ref())))),
        };
        finish(this.body.as_mut(), this.completer, this.stats, this.parent, timeout, output);
        Poll::Ready(())
    }
}

/// A closure queued on the blocking pool, with the completer of its task.
pub(crate) struct BlockingRunner<F, O, M: Outcome<O>> {
    body: Option<F>,
    span: Option<Box<tracing::Span>>,
    completer: Option<Completer<TaskOutput<M::Ok, M::Err>>>,
    stats: Arc<Stats>,
    parent: Option<ChildLink>,
    output: PhantomData<fn() -> O>,
}

impl<F, O, M> BlockingRunner<F, O, M>
where
    F: FnOnce() -> O + Send + 'static,
    M: Outcome<O>,
{
    pub(crate) fn new(
        body: F,
        completer: Completer<TaskOutput<M::Ok, M::Err>>,
        span: Option<Box<tracing::Span>>,
        stats: Arc<Stats>,
        parent: Option<ChildLink>,
    ) -> Self {
        Self {
            body: Some(body),
            span,
            completer: Some(completer),
            stats,
            parent,
            output: PhantomData,
        }
    }

    pub(crate) fn run(mut self) {
        let mut completer = self.completer.take().expect("a blocking task runs once");
        let body = self.body.take().expect("a blocking task runs once");
        let output = if completer.try_start(None) {
            let result = {
                let _span = self.span.as_ref().map(|span| span.enter());
                let _current = current::enter(&completer);
                catch_unwind(AssertUnwindSafe(body))
            };
            match result {
                Ok(value) => {
                    let (kind, output) = classify::<M, O>(value);
                    completer.try_finish(kind).then_some(output)
                }
                Err(payload) => completer
                    .try_finish(core::PANICKED)
                    .then(|| Err(TaskError::Panicked(panic_message(payload.as_ref())))),
            }
        } else {
            drop(body);
            None
        };
        let output = output.unwrap_or_else(|| output_without_value(completer.header(), None));
        conclude(completer, output, Some(&self.stats), self.parent.take());
    }
}

impl<F, O, M: Outcome<O>> Drop for BlockingRunner<F, O, M> {
    fn drop(&mut self) {
        // Dropped unrun: the pool shut down (or could not start a thread) with this job queued.
        if let Some(completer) = self.completer.take() {
            completer.ensure_decided(CancelReason::Shutdown);
            drop(self.body.take());
            let output = output_without_value(completer.header(), None);
            conclude(completer, output, Some(&self.stats), self.parent.take());
        }
    }
}

impl<F, O, M> crate::runtime::blocking::BlockingJob for BlockingRunner<F, O, M>
where
    F: FnOnce() -> O + Send + 'static,
    M: Outcome<O>,
{
    fn run(self: Box<Self>) {
        (*self).run();
    }
}
