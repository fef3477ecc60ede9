//! What runs a task's body: `AsyncRunner` (a future on the executor) and `BlockingRunner` (a
//! closure on the blocking pool). Both catch panics, honour a cancel that came first, discard a
//! completion that came last (reporting it if it was a failure), and publish exactly one output,
//! and only once every descendant the body left running has ended.
//!
//! A runner knows nothing of the runtime or of scopes: it reports through one small interface,
//! [`Report`], that the spawn pipeline gives it.
#![forbid(unsafe_code)]

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::coop;
use crate::task::core::{Completer, FailureTaker, Header, HeaderRef};
use crate::task::current::{self, Adopter};
use crate::task::descendants::Failures;
use crate::task::guard::{
    drop_contained, guarded, guarded_boxed, guarded_poll_boxed, kind_of, panic_of,
};
use crate::task::handle::TaskOutput;
use crate::task::spec::is_large;
use crate::task::state::Kind;
use crate::task::{CancelReason, Outcome, TaskError, TaskId};
use crate::time::{Sleep, sleep};

/// Where a runner reports what happens to its task beyond its handle: the runtime's counts, a
/// scope's bookkeeping of its children.
pub(crate) trait Report<E>: Send + 'static {
    /// True once the runtime's shutdown cancels `task` (see `ShutdownPhase`): a task first
    /// polled then never starts.
    fn shutdown_cancels(&self, task: &Header) -> bool;
    /// The task is about to wait for the first time (it returned `Pending`).
    fn first_wait(&mut self, task: HeaderRef);
    /// The body failed after the task's outcome was decided otherwise: its handle keeps that
    /// outcome, and the failure must still not be lost.
    fn raced(&self, task: &Header, error: TaskError<E>);
    /// Failures of scopes the body dropped before they returned (or of their children, after):
    /// the task's scope reports them; with no scope, they are logged.
    fn adopted(&self, failures: Failures);
    /// The outcome is decided; the output is about to be published. `waited`: whether the task
    /// ever waited (see `first_wait`).
    fn before_publish(&self, kind: Kind, id: TaskId, waited: bool);
    /// Who takes a failure the handle does not: the task's scope, or nobody.
    fn failure_taker(&self) -> FailureTaker;
    /// The output is published: the task has ended.
    fn ended(self);
    /// The task's own timeout passed (`at`); called as the task. In a scope's local child, the
    /// scope's deadline and the regions around the scope enclose the child, though their timers
    /// are not polled while it runs: one whose deadline passed first catches it, and cancels the
    /// child before its own timeout can decide (`frames::expire_enclosing`, past this module).
    fn own_timeout_passed(at: Instant);
    /// Runs `f`, a poll of the task or a look at its timeout (as the task), with what the
    /// task's scope tells code that finds a deadline passed: its region (see
    /// `cancel::parent_region`).
    fn as_child<T>(&self, f: impl FnOnce() -> T) -> T;
}

/// The output of a task whose outcome was decided without a value from its body.
fn output_without_value<T, E>(header: &Header, timeout: Option<Duration>) -> TaskOutput<T, E> {
    match header.kind() {
        Kind::Cancelled => {
            Err(TaskError::Cancelled(header.cancel_reason().unwrap_or(CancelReason::Shutdown)))
        }
        Kind::TimedOut => Err(TaskError::TimedOut(timeout.unwrap_or_default())),
        other => unreachable!("task state {other:?} has no output of its own"),
    }
}

/// The span every task runs in: `task` with `task.id`, `task.name` and `scope`. Boxed, and
/// only when some subscriber wants it, so a runner stays small when tracing is off.
///
/// It only carries context for the events inside it, so it is at ERROR, tracing's level for
/// such spans: every filter that lets an event through enables it too. At INFO, a `warn` filter
/// (`KLAW_LOG=warn`) disabled it, and a task's warnings and errors lost its name and id. The
/// level is not printed, and with no subscriber the span costs what an INFO one did: the same
/// check of the global maximum level.
pub(crate) fn task_span(
    id: TaskId,
    name: Option<&str>,
    scope: Option<&str>,
) -> Option<Box<tracing::Span>> {
    let span = tracing::error_span!(
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

/// A task's output on its way from the body to the handle: by value, or boxed when it is large
/// (see `BlockingRunner::run` and `Run::step`), so that each frame it passes holds a pointer, up
/// to the task's core, which keeps it.
trait Carried<T, E>: Send + 'static {
    fn from_output(output: TaskOutput<T, E>) -> Self;
    fn output(&self) -> &TaskOutput<T, E>;
    fn into_output(self) -> TaskOutput<T, E>;
    /// Publishes the output: a boxed one leaves its box only in the core's slot.
    fn publish(self, completer: Completer<TaskOutput<T, E>>, failure: FailureTaker);
    /// Runs one poll of a body with [`guarded`], the output carried as `Self`.
    fn guarded_poll<M: Outcome<O, Ok = T, Err = E>, O>(
        step: impl FnOnce() -> Poll<O>,
    ) -> Poll<Self>
    where
        Self: Sized;
}

impl<T: Send + 'static, E: Send + 'static> Carried<T, E> for TaskOutput<T, E> {
    #[inline(always)]
    fn from_output(output: TaskOutput<T, E>) -> Self {
        output
    }
    #[inline(always)]
    fn output(&self) -> &TaskOutput<T, E> {
        self
    }
    #[inline(always)]
    fn into_output(self) -> TaskOutput<T, E> {
        self
    }
    #[inline(always)]
    fn publish(self, completer: Completer<TaskOutput<T, E>>, failure: FailureTaker) {
        completer.publish(self, failure);
    }
    #[inline(always)]
    fn guarded_poll<M: Outcome<O, Ok = T, Err = E>, O>(
        step: impl FnOnce() -> Poll<O>,
    ) -> Poll<Self> {
        guarded::<M, O>(step)
    }
}

impl<T: Send + 'static, E: Send + 'static> Carried<T, E> for Box<TaskOutput<T, E>> {
    fn from_output(output: TaskOutput<T, E>) -> Self {
        Box::new(output)
    }
    fn output(&self) -> &TaskOutput<T, E> {
        self
    }
    fn into_output(self) -> TaskOutput<T, E> {
        *self
    }
    fn publish(self, completer: Completer<TaskOutput<T, E>>, failure: FailureTaker) {
        completer.publish_boxed(self, failure);
    }
    fn guarded_poll<M: Outcome<O, Ok = T, Err = E>, O>(
        step: impl FnOnce() -> Poll<O>,
    ) -> Poll<Self> {
        guarded_poll_boxed::<M, O>(step)
    }
}

/// What ends a task: the completer that publishes its output, and where it reports.
struct End<T, E, R> {
    completer: Completer<TaskOutput<T, E>>,
    report: R,
    /// Whether the body has been polled once (the task has started, or was cancelled first).
    started: bool,
    /// Whether the task ever waited (returned `Pending`).
    waited: bool,
}

impl<T: Send + 'static, E: Send + 'static, R: Report<E>> End<T, E, R> {
    /// Ends a task whose body (and everything it left running) is gone, reporting first what
    /// failed in scopes the body dropped (`adopted`).
    #[inline]
    fn end(self, output: impl Carried<T, E>, adopted: Failures) {
        let End { completer, report, waited, .. } = self;
        if !adopted.is_empty() {
            report.adopted(adopted);
        }
        let header = completer.header();
        report.before_publish(header.kind(), header.id(), waited);
        output.publish(completer, report.failure_taker());
        report.ended();
    }

    /// Ends now, or, if descendants the body left still run, once the last of them ends.
    #[inline]
    fn end_after_descendants(self, adopter: &Adopter, output: impl Carried<T, E>) {
        match adopter.running() {
            Some(descendants) => {
                descendants.then_run(Box::new(move |adopted| self.end(output, adopted)));
            }
            None => self.end(output, adopter.take_failures()),
        }
    }
}

/// What a finished body gave, against the task's state: `Some(output)` if it decided the
/// outcome; `None` if a cancel or timeout came first. A value that lost is dropped (a panic in
/// its destructor is contained); a failure that lost is reported, never lost.
#[inline(always)]
fn decide_by_output<T: Send + 'static, E: Send + 'static, R: Report<E>, C: Carried<T, E>>(
    completer: &Completer<TaskOutput<T, E>>,
    report: &R,
    output: C,
) -> Option<C> {
    let kind = kind_of(output.output());
    if completer.decide(kind) {
        return Some(output);
    }
    if kind.is_failure() {
        if let Err(error) = output.into_output() {
            report.raced(completer.header(), error);
        }
    } else {
        drop_contained(output);
    }
    None
}

/// A decided cancellation or timeout drops the body, unless a shield in it is still running.
fn must_stop(header: &Header) -> bool {
    header.kind() != Kind::Pending && !header.is_shielded()
}

/// A task's own timeout: how long it may run, and the timer started when it first runs.
struct Deadline {
    after: Duration,
    timer: Option<Sleep>,
}

/// Everything of a running task but its body (which is pinned) and its adopter.
struct Run<T, E, R> {
    // `None` once the body is gone and the task has ended (or will, after its descendants).
    end: Option<End<T, E, R>>,
    // Boxed: rare, and a timer is large; a small runner means fewer cache lines travel from the
    // spawning thread to the worker.
    deadline: Option<Box<Deadline>>,
    span: Option<Box<tracing::Span>>,
}

pin_project! {
    /// The future the executor runs for one task: it wraps the user's body.
    pub(crate) struct AsyncRunner<F, M, R>
    where
        F: Future,
        M: Outcome<F::Output>,
        R: Report<M::Err>,
    {
        #[pin]
        body: Option<F>,
        run: Run<M::Ok, M::Err, R>,
        // What scopes dropped in the body left running: the task ends after them.
        adopter: Adopter,
        mode: PhantomData<fn() -> M>,
    }

    impl<F, M, R> PinnedDrop for AsyncRunner<F, M, R>
    where
        F: Future,
        M: Outcome<F::Output>,
        R: Report<M::Err>,
    {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before finishing: the executor went away (runtime shutdown). The outcome is
            // cancelled unless something else decided it first.
            let this = this.project();
            if let Some(end) = this.run.end.as_ref() {
                end.completer.decide_if_pending(CancelReason::Shutdown);
                let (body, run, adopter) = (this.body, this.run, &*this.adopter);
                adopter.adopting(|| {
                    run.drop_body_and_end(body, adopter, None::<TaskOutput<_, _>>)
                });
            }
        }
    }
}

impl<F, M, R> AsyncRunner<F, M, R>
where
    F: Future,
    M: Outcome<F::Output>,
    R: Report<M::Err>,
{
    #[inline]
    pub(crate) fn new(
        body: F,
        completer: Completer<TaskOutput<M::Ok, M::Err>>,
        timeout: Option<Duration>,
        span: Option<Box<tracing::Span>>,
        report: R,
    ) -> Self {
        Self {
            body: Some(body),
            run: Run {
                end: Some(End { completer, report, started: false, waited: false }),
                deadline: timeout.map(|after| Box::new(Deadline { after, timer: None })),
                span,
            },
            adopter: Adopter::default(),
            mode: PhantomData,
        }
    }
}

impl<F, M, R> Future for AsyncRunner<F, M, R>
where
    F: Future,
    M: Outcome<F::Output>,
    R: Report<M::Err>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let (body, run, adopter) = (this.body, this.run, &*this.adopter);
        // For the whole poll, body and end alike: a scope dropped here hands its children to
        // this task, which then ends only after them.
        adopter.adopting(|| run.step::<F, M>(body, adopter, cx))
    }
}

impl<T: Send + 'static, E: Send + 'static, R: Report<E>> Run<T, E, R> {
    #[inline]
    fn step<F, M>(
        &mut self,
        body: Pin<&mut Option<F>>,
        adopter: &Adopter,
        cx: &mut Context<'_>,
    ) -> Poll<()>
    where
        F: Future,
        M: Outcome<F::Output, Ok = T, Err = E>,
    {
        // A large output is boxed as soon as the body's poll returns it: copied by value into
        // each frame from the body to the task's core, it would overflow the worker's stack in a
        // debug build (see `BOX_FUTURE_THRESHOLD`). Decided at compile time: a small output
        // takes the path it always took.
        if const { is_large::<F::Output>() || is_large::<TaskOutput<T, E>>() } {
            self.step_with::<F, M, Box<TaskOutput<T, E>>>(body, adopter, cx)
        } else {
            self.step_with::<F, M, TaskOutput<T, E>>(body, adopter, cx)
        }
    }

    /// One poll of the task, its output carried as `C`.
    #[inline(always)]
    fn step_with<F, M, C>(
        &mut self,
        mut body: Pin<&mut Option<F>>,
        adopter: &Adopter,
        cx: &mut Context<'_>,
    ) -> Poll<()>
    where
        F: Future,
        M: Outcome<F::Output, Ok = T, Err = E>,
        C: Carried<T, E>,
    {
        let Some(end) = self.end.as_mut() else { return Poll::Ready(()) };
        let completer = &mut end.completer;

        // A task polled once shutdown cancels it is cancelled: one that never started never
        // starts, one that started drops its body now (unless a shield holds it). Shutdown
        // cancels every waiting task it reaches too, in no set order, so a task woken by
        // another's end (a parent whose child shutdown cancelled first) must not go on and
        // finish. A task under a shield is left to the shield until the shutdown's last resort.
        if end.report.shutdown_cancels(completer.header()) {
            completer.header().cancel(CancelReason::Shutdown);
        }
        if !end.started {
            end.started = true;
            // The executor's waker for this task never changes, so storing it once suffices
            // for a later cancel to reschedule us.
            if !completer.try_start(Some(cx.waker())) {
                self.drop_body_and_end(body, adopter, None::<C>);
                return Poll::Ready(());
            }
            if let Some(deadline) = self.deadline.as_mut() {
                deadline.timer = Some(sleep(deadline.after));
            }
        } else if must_stop(completer.header()) {
            // Cancelled while pending: drop the body now.
            self.drop_body_and_end(body, adopter, None::<C>);
            return Poll::Ready(());
        }

        if let Some(timer) = self.deadline.as_mut().and_then(|d| d.timer.as_mut()) {
            // A deadline, so outside the budget: a local child is polled inside its parent's
            // poll, whose body may have spent the budget, and must still see its timeout pass.
            if timer.poll_deadline(cx).is_ready() {
                // A deadline around the task that passed first catches it (see the trait).
                let at = timer.deadline();
                let report = &end.report;
                current::run_as(completer, None, || {
                    report.as_child(|| R::own_timeout_passed(at));
                });
                completer.decide(Kind::TimedOut);
                if let Some(deadline) = self.deadline.as_mut() {
                    deadline.timer = None; // fired once; a shield may keep the body a while
                }
                if must_stop(completer.header()) {
                    self.drop_body_and_end(body, adopter, None::<C>);
                    return Poll::Ready(());
                }
            } else if completer.header().kind() != Kind::Pending {
                // Decided otherwise (cancelled, with a shield in the body holding it open): the
                // timeout can change nothing now, so it goes, and a paused clock does not jump
                // to it while the shield runs.
                if let Some(deadline) = self.deadline.as_mut() {
                    deadline.timer = None;
                }
            }
        }

        let polled = {
            let _span = self.span.as_ref().map(|span| span.enter());
            let step = body.as_mut().as_pin_mut().expect("the body lives until finish");
            // A fresh cooperative budget for each poll of the body, or the enclosing task's for a
            // body polled inside its poll: a local child, an inline task (see `coop`).
            let running = cx.waker();
            let poll = || coop::with_body_budget(|| step.poll(cx));
            // Cancelled, but a shield in the body holds it open: only the shield runs on.
            let held = completer.header().kind() != Kind::Pending;
            // A timeout still running: a region in the body that finds its own deadline passed
            // looks whether this one passed first.
            let deadline =
                self.deadline.as_ref().and_then(|d| d.timer.as_ref()).map(Sleep::deadline);
            let report = &end.report;
            current::run_as(completer, Some(running), || {
                let poll = || coop::polling_held(held, || C::guarded_poll::<M, _>(poll));
                report.as_child(|| match deadline {
                    Some(deadline) => current::with_task_deadline(deadline, poll),
                    None => poll(),
                })
            })
        };
        let output = match polled {
            Poll::Pending if must_stop(completer.header()) => None, // a shield just ended
            Poll::Pending => {
                if !end.waited {
                    end.waited = true;
                    let task = completer.header_ref(Some(cx.waker()));
                    end.report.first_wait(task);
                }
                return Poll::Pending;
            }
            Poll::Ready(output) => decide_by_output(completer, &end.report, output),
        };
        self.drop_body_and_end(body, adopter, output);
        Poll::Ready(())
    }

    /// Drops the body (containing a panic in its destructor; the caller is adopting for
    /// `adopter`, so what scopes in it leave running is adopted), then concludes with `output`
    /// if the body produced the winning one, else with the one the decided outcome implies.
    ///
    /// The body is dropped as part of its task, as tokio does: in the task's span, with the task
    /// current, so its destructors see `current_task_id()` and `is_cancelled()` as its code did.
    /// But not as polled, even inside a poll: nothing of the body is polled again, and a
    /// destructor that blocks on an async cleanup (under a foreign executor's `block_on`, which
    /// pushes no klaw frame) runs it where nothing will drop it. A region there returns at its
    /// own deadline and a scope there starts its children uncancelled, as in a blocking task's
    /// closure, rather than waiting to be dropped by a task that is busy dropping them.
    #[inline]
    fn drop_body_and_end<F, C: Carried<T, E>>(
        &mut self,
        mut body: Pin<&mut Option<F>>,
        adopter: &Adopter,
        output: Option<C>,
    ) {
        // The body must be gone before the handle resolves: a joined task has stopped running.
        if let Some(end) = self.end.as_ref() {
            let _span = self.span.as_ref().map(|span| span.enter());
            let panicked = current::run_as(&end.completer, None, || panic_of(|| body.set(None)));
            if let Some(message) = panicked {
                // Its cleanup failed (a destructor of a cancelled body is the only cleanup it
                // runs, like trio's `finally`): a failure of the task, which its handle's
                // outcome (decided already) does not show, so it is reported, never lost: to
                // the task's scope, or, with none, logged once by the report.
                end.report.raced(end.completer.header(), TaskError::Panicked(message));
            }
        }
        let end = self.end.take().expect("a task ends once");
        let timeout = self.deadline.as_ref().map(|d| d.after);
        let output = output.unwrap_or_else(|| {
            C::from_output(output_without_value(end.completer.header(), timeout))
        });
        end.end_after_descendants(adopter, output);
    }
}

/// A closure queued on the blocking pool, with the completer of its task.
pub(crate) struct BlockingRunner<F, O, M: Outcome<O>, R: Report<M::Err>> {
    body: Option<F>,
    span: Option<Box<tracing::Span>>,
    completer: Option<Completer<TaskOutput<M::Ok, M::Err>>>,
    report: Option<R>,
    output: PhantomData<fn() -> O>,
}

impl<F, O, M, R> BlockingRunner<F, O, M, R>
where
    F: FnOnce() -> O + Send + 'static,
    M: Outcome<O>,
    R: Report<M::Err>,
{
    #[inline]
    pub(crate) fn new(
        body: F,
        completer: Completer<TaskOutput<M::Ok, M::Err>>,
        span: Option<Box<tracing::Span>>,
        report: R,
    ) -> Self {
        Self {
            body: Some(body),
            span,
            completer: Some(completer),
            report: Some(report),
            output: PhantomData,
        }
    }

    /// The task, for the pool's list of what it runs.
    pub(crate) fn header_ref(&self) -> HeaderRef {
        self.completer.as_ref().expect("a blocking task runs once").header_ref(None)
    }

    pub(crate) fn run(self) {
        // A large output is boxed as soon as the body returns: copied by value into each frame
        // from the body to the task's core, it would overflow the pool thread's stack in a debug
        // build, as a large closure would (see `BOX_FUTURE_THRESHOLD`). Decided at compile time.
        if const { is_large::<O>() || is_large::<TaskOutput<M::Ok, M::Err>>() } {
            self.run_with(|body| guarded_boxed::<M, O>(body))
        } else {
            self.run_with(|body| {
                let ran = guarded::<M, O>(|| Poll::Ready(body()));
                let Poll::Ready(output) = ran else {
                    unreachable!("a blocking body runs to its end")
                };
                output
            });
        }
    }

    /// Runs the body through `call`, which gives its output as the task carries it.
    #[inline(always)]
    fn run_with<C: Carried<M::Ok, M::Err>>(mut self, call: impl FnOnce(F) -> C) {
        let mut completer = self.completer.take().expect("a blocking task runs once");
        let report = self.report.take().expect("a blocking task runs once");
        let body = self.body.take().expect("a blocking task runs once");
        let adopter = Adopter::default();
        let output = adopter.adopting(|| {
            if !completer.try_start(None) {
                drop_contained(body);
                return None;
            }
            let _span = self.span.as_ref().map(|span| span.enter());
            // As its scope's child: `is_cancelled()` in the closure sees the scope's deadline.
            let output = current::run_as(&completer, None, || report.as_child(|| call(body)));
            decide_by_output(&completer, &report, output)
        });
        let output = output
            .unwrap_or_else(|| C::from_output(output_without_value(completer.header(), None)));
        End { completer, report, started: true, waited: false }
            .end_after_descendants(&adopter, output);
    }
}

impl<F, O, M: Outcome<O>, R: Report<M::Err>> Drop for BlockingRunner<F, O, M, R> {
    fn drop(&mut self) {
        // Dropped unrun: the pool shut down (or could not start a thread) with this job queued,
        // or its task was cancelled while it was queued.
        if let (Some(completer), Some(report)) = (self.completer.take(), self.report.take()) {
            completer.decide_if_pending(CancelReason::Shutdown);
            drop_contained(self.body.take());
            let output = output_without_value(completer.header(), None);
            End { completer, report, started: false, waited: false }.end(output, Failures::new());
        }
    }
}
