//! What runs a task's body: `AsyncRunner` (a future on the executor) and `BlockingRunner` (a
//! closure on the blocking pool). Both catch panics, honour a cancel that came first, discard a
//! completion that came last (reporting it if it was a failure), and publish exactly one output,
//! and only once every descendant the body left running has ended.
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
use crate::runtime::stats::{ParkedKey, Stats};
use crate::scope::ChildLink;
use crate::task::core::{self, Completer, Header};
use crate::task::current::{self, Adopter};
use crate::task::handle::TaskOutput;
use crate::task::{CancelReason, Outcome, TaskId};

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

/// The span every task runs in: INFO `task` with `task.id`, `task.name` and `scope`. Boxed, and
/// only when some subscriber wants it, so a runner stays small when tracing is off.
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

/// Drops a value of user code so that a panic in its destructor cannot unwind into the runtime.
pub(crate) fn drop_contained<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        tracing::warn!(panic = %panic_message(payload.as_ref()), "a destructor panicked; the task's end is unaffected");
        // The payload's own destructor could panic too; it is not worth a second guard.
        std::mem::forget(payload);
    }
}

/// Where a task reports its end: the runtime's counters and, for a scope's child, the scope.
struct Ending<E> {
    stats: Option<Arc<Stats>>,
    parked: Option<ParkedKey>,
    parent: Option<ChildLink<E>>,
}

impl<E> Ending<E> {
    /// Ends a task whose body (and everything it left running) is gone: counts it, lets a
    /// failure fail its scope, publishes the output, then tells the scope the child ended.
    /// Counting first means that once a handle resolves, the live count no longer includes it.
    fn conclude<T: Send + 'static>(
        self,
        completer: Completer<TaskOutput<T, E>>,
        output: TaskOutput<T, E>,
    ) where
        E: Send + 'static,
    {
        let kind = completer.header().kind();
        if let Some(stats) = &self.stats {
            if let Some(key) = self.parked {
                stats.unpark(key);
            }
            stats.task_ended(kind);
        }
        if let Some(parent) = &self.parent {
            parent.before_publish(kind);
        }
        completer.publish(output);
        if let Some(parent) = self.parent {
            parent.ended();
        }
    }

    /// A failure the body produced after its outcome was decided otherwise: the scope reports
    /// it; a task outside any scope can only log it.
    fn raced(&self, id: TaskId, error: TaskError<E>) {
        match &self.parent {
            Some(parent) => parent.raced(id, error),
            None => {
                tracing::warn!(
                    task.id = id.as_u64(),
                    "a task failed after it was cancelled; its handle keeps the cancellation"
                );
                drop_contained(error);
            }
        }
    }
}

/// What a finished body gave, against the task's state: `Some(output)` if it decided the
/// outcome; `None` if a cancel or timeout came first. A value that lost is dropped (a panic in
/// its destructor is contained); a failure that lost is reported, never lost.
#[inline(always)]
fn settle<M: Outcome<O>, O>(
    completer: &Completer<TaskOutput<M::Ok, M::Err>>,
    ending: &Ending<M::Err>,
    result: std::thread::Result<O>,
) -> Option<TaskOutput<M::Ok, M::Err>> {
    let (kind, output) = match result {
        Ok(value) => classify::<M, _>(value),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            drop_contained(payload);
            (core::PANICKED, Err(TaskError::Panicked(message)))
        }
    };
    if completer.try_finish(kind) {
        return Some(output);
    }
    match output {
        Err(error) if core::is_failure(kind) => ending.raced(completer.header().id(), error),
        lost => drop_contained(lost),
    }
    None
}

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
        // `None` once the body is gone and the end is concluded (or deferred).
        completer: Option<Completer<TaskOutput<M::Ok, M::Err>>>,
        // Boxed: rare, and a timer is large; a small runner means fewer cache lines travel
        // from the spawning thread to the worker.
        deadline: Option<Box<Deadline>>,
        span: Option<Box<tracing::Span>>,
        started: bool,
        ending: Option<Ending<M::Err>>,
        // What scopes dropped in the body left running: the task ends after them.
        adopter: Adopter,
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
            let this = this.project();
            if let Some(completer) = this.completer.as_ref() {
                completer.ensure_decided(CancelReason::Shutdown);
                let timeout = this.deadline.as_ref().map(|d| d.after);
                let adopter: &Adopter = this.adopter;
                let _adopting = adopter.enter();
                finish(this.body, this.completer, this.ending, adopter, timeout, None);
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
        parent: Option<ChildLink<M::Err>>,
    ) -> Self {
        Self {
            body: Some(body),
            completer: Some(completer),
            deadline: timeout.map(|after| Box::new(Deadline { after, timer: None })),
            span,
            started: false,
            ending: Some(Ending { stats, parked: None, parent }),
            adopter: Adopter::default(),
            mode: PhantomData,
        }
    }
}

/// Drops the body (containing a panic in its destructor; the caller has entered `adopter`, so
/// what scopes in it leave running is adopted), then concludes with `output` if the body
/// produced the winning one, else with the one the decided outcome implies. If descendants
/// still run, the conclusion waits for them.
fn finish<F, T: Send + 'static, E: Send + 'static>(
    mut body: Pin<&mut Option<F>>,
    completer: &mut Option<Completer<TaskOutput<T, E>>>,
    ending: &mut Option<Ending<E>>,
    adopter: &Adopter,
    timeout: Option<Duration>,
    output: Option<TaskOutput<T, E>>,
) {
    // The body must be gone before the handle resolves: a joined task has stopped running.
    drop_contained_in_place(body.as_mut());
    let completer = completer.take().expect("a task is finished once");
    let ending = ending.take().expect("a task is finished once");
    let output = output.unwrap_or_else(|| output_without_value(completer.header(), timeout));
    match adopter.running() {
        Some(descendants) => {
            descendants.then_run(Box::new(move || ending.conclude(completer, output)));
        }
        None => ending.conclude(completer, output),
    }
}

#[inline(always)]
fn drop_contained_in_place<F>(body: Pin<&mut Option<F>>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
        let mut body = body;
        body.set(None);
    })) {
        tracing::warn!(panic = %panic_message(payload.as_ref()), "a task's body panicked while it was dropped");
        std::mem::forget(payload);
    }
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
        // For the whole poll, body and `finish` alike: a scope dropped here hands its children
        // to this task, which then ends only after them.
        let adopter: &Adopter = this.adopter;
        let _adopting = adopter.enter();
        let ending = this.ending.as_mut().expect("the ending lives with the completer");
        let timeout = this.deadline.as_ref().map(|d| d.after);

        if !*this.started {
            *this.started = true;
            // A task first polled once shutdown has begun never starts. (One that started
            // before is cancelled by shutdown, or by `park` when it first waits.)
            if ending.stats.as_ref().is_some_and(|stats| stats.is_shutting_down()) {
                completer.header().cancel(CancelReason::Shutdown);
            }
            // The executor's waker for this task never changes, so storing it once suffices
            // for a later cancel to reschedule us.
            if !completer.try_start(Some(cx.waker())) {
                finish(this.body, this.completer, this.ending, adopter, timeout, None);
                return Poll::Ready(());
            }
            if let Some(deadline) = this.deadline.as_mut() {
                deadline.timer = Some(Timer::after(deadline.after));
            }
        } else if must_stop(completer.header()) {
            // Cancelled while pending: drop the body now.
            finish(this.body, this.completer, this.ending, adopter, timeout, None);
            return Poll::Ready(());
        }

        if let Some(timer) = this.deadline.as_mut().and_then(|d| d.timer.as_mut()) {
            if Pin::new(timer).poll(cx).is_ready() {
                completer.try_finish(core::TIMED_OUT);
                if let Some(deadline) = this.deadline.as_mut() {
                    deadline.timer = None; // fired once; a shield may keep the body a while
                }
                if must_stop(completer.header()) {
                    finish(this.body, this.completer, this.ending, adopter, timeout, None);
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
            Ok(Poll::Pending) => {
                if ending.parked.is_none() {
                    if let Some(stats) = &ending.stats {
                        ending.parked = Some(stats.park(completer.header_ref()));
                    }
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(value)) => settle::<M, _>(completer, ending, Ok(value)),
            Err(payload) => settle::<M, F::Output>(completer, ending, Err(payload)),
        };
        finish(this.body, this.completer, this.ending, adopter, timeout, output);
        Poll::Ready(())
    }
}

/// A closure queued on the blocking pool, with the completer of its task.
pub(crate) struct BlockingRunner<F, O, M: Outcome<O>> {
    body: Option<F>,
    span: Option<Box<tracing::Span>>,
    completer: Option<Completer<TaskOutput<M::Ok, M::Err>>>,
    ending: Option<Ending<M::Err>>,
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
        parent: Option<ChildLink<M::Err>>,
    ) -> Self {
        Self {
            body: Some(body),
            span,
            completer: Some(completer),
            ending: Some(Ending { stats: Some(stats), parked: None, parent }),
            output: PhantomData,
        }
    }

    pub(crate) fn run(mut self) {
        let mut completer = self.completer.take().expect("a blocking task runs once");
        let ending = self.ending.take().expect("a blocking task runs once");
        let body = self.body.take().expect("a blocking task runs once");
        let adopter = Adopter::default();
        let output = if completer.try_start(None) {
            let result = {
                let _span = self.span.as_ref().map(|span| span.enter());
                let _current = current::enter(&completer);
                let _adopting = adopter.enter();
                catch_unwind(AssertUnwindSafe(body))
            };
            settle::<M, O>(&completer, &ending, result)
        } else {
            drop_contained(body);
            None
        };
        let output = output.unwrap_or_else(|| output_without_value(completer.header(), None));
        match adopter.running() {
            Some(descendants) => {
                descendants.then_run(Box::new(move || ending.conclude(completer, output)));
            }
            None => ending.conclude(completer, output),
        }
    }
}

impl<F, O, M: Outcome<O>> Drop for BlockingRunner<F, O, M> {
    fn drop(&mut self) {
        // Dropped unrun: the pool shut down (or could not start a thread) with this job queued.
        if let (Some(completer), Some(ending)) = (self.completer.take(), self.ending.take()) {
            completer.ensure_decided(CancelReason::Shutdown);
            drop_contained(self.body.take());
            let output = output_without_value(completer.header(), None);
            ending.conclude(completer, output);
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
