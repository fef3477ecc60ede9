//! A child of a limited scope before it starts: its body, its completer, its timeout and its link
//! to the scope, and nothing else. No task exists on any executor or pool yet, no span, no runner:
//! those are made when a slot frees (`Limit` hands it one), so a million waiting children cost
//! little more than their futures and their handles' state.
//!
//! A waiting child that never starts (cancelled, its scope cancelled, the runtime gone) is ended
//! by making its runner and dropping it unrun: exactly what ends a task dropped by a shut-down
//! executor, so its handle, its scope and the runtime's counts see one ordinary end.
#![forbid(unsafe_code)]

use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::runtime::limit::{Admission, Deferred, Limit, Slot};
use crate::runtime::spawn::{Accounting, ParentLink};
use crate::task::core::{Completer, FailureTaker, Header, HeaderRef};
use crate::task::descendants::Failures;
use crate::task::handle::TaskOutput;
use crate::task::runner::{AsyncRunner, BlockingRunner, Report, task_span};
use crate::task::state::Kind;
use crate::task::{Outcome, TaskError, TaskId};

/// Starts `child` now if its scope's limit has a free slot; else it waits its turn.
pub(crate) fn admit<C: Deferred + Launch>(limit: &std::sync::Arc<Limit>, child: C) {
    if let Admission::Now(child, slot) = limit.admit(child) {
        child.launch(limit, slot);
    }
}

/// Starting a waiting child, without boxing it when it need not wait.
pub(crate) trait Launch {
    fn launch(self, limit: &Limit, slot: Slot);
}

/// What every waiting child holds until it starts. The timeout is boxed: rare, and every byte
/// here is paid per waiting child.
struct Parts<B, T, E, P> {
    body: B,
    completer: Completer<TaskOutput<T, E>>,
    timeout: Option<Box<Duration>>,
    parent: Option<P>,
}

/// What a runner is made of: `Parts` with its span and its accounting.
struct Unpacked<B, T, E, P> {
    body: B,
    completer: Completer<TaskOutput<T, E>>,
    timeout: Option<Duration>,
    span: Option<Box<tracing::Span>>,
    accounting: Accounting<P>,
}

impl<B, T: Send + 'static, E: Send + 'static, P: ParentLink<E>> Parts<B, T, E, P> {
    /// What the runner needs beyond the body: its span and its accounting. A child that `starts`
    /// is listed by its scope first; one that ends unstarted is not (it never ran, so it can
    /// not have failed).
    fn unpack(self, limit: &Limit, starts: bool) -> Unpacked<B, T, E, P> {
        let Parts { body, completer, timeout, mut parent } = self;
        let span = if starts {
            if let Some(parent) = parent.as_mut() {
                parent.list(completer.shared_core());
            }
            let header = completer.header();
            task_span(header.id(), header.name(), limit.scope_name())
        } else {
            None
        };
        let accounting = Accounting::new(Some(limit.runtime().stats().clone()), parent);
        Unpacked { body, completer, timeout: timeout.map(|timeout| *timeout), span, accounting }
    }
}

/// A waiting child of [`Scope::spawn`](crate::scope::Scope::spawn).
pub(crate) struct WaitingChild<F, M, P>
where
    F: Future + Send + 'static,
    M: Outcome<F::Output> + 'static,
    P: ParentLink<M::Err>,
{
    parts: Parts<F, M::Ok, M::Err, P>,
    mode: PhantomData<fn() -> M>,
}

impl<F, M, P> WaitingChild<F, M, P>
where
    F: Future + Send + 'static,
    M: Outcome<F::Output> + 'static,
    P: ParentLink<M::Err>,
{
    pub(crate) fn new(
        future: F,
        completer: Completer<TaskOutput<M::Ok, M::Err>>,
        timeout: Option<Duration>,
        parent: Option<P>,
    ) -> Self {
        let timeout = timeout.map(Box::new);
        WaitingChild {
            parts: Parts { body: future, completer, timeout, parent },
            mode: PhantomData,
        }
    }

    fn runner<R: Report<M::Err>>(
        self,
        limit: &Limit,
        starts: bool,
        report: impl FnOnce(Accounting<P>) -> R,
    ) -> AsyncRunner<F, M, R> {
        let Unpacked { body, completer, timeout, span, accounting } =
            self.parts.unpack(limit, starts);
        AsyncRunner::new(body, completer, timeout, span, report(accounting))
    }
}

impl<F, M, P> Launch for WaitingChild<F, M, P>
where
    F: Future + Send + 'static,
    M: Outcome<F::Output> + 'static,
    P: ParentLink<M::Err>,
{
    /// Runs the child, holding `slot` until it has ended (see [`SlotHeld`]).
    fn launch(self, limit: &Limit, slot: Slot) {
        let Some(executor) = limit.runtime().spawner() else {
            return Deferred::end_unstarted(Box::new(self), limit); // the runtime is gone
        };
        executor.spawn(self.runner(limit, true, |report| SlotHeld { report, slot }));
    }
}

impl<F, M, P> Deferred for WaitingChild<F, M, P>
where
    F: Future + Send + 'static,
    M: Outcome<F::Output> + 'static,
    P: ParentLink<M::Err>,
{
    fn header(&self) -> &Header {
        self.parts.completer.header()
    }

    fn start(self: Box<Self>, limit: &Limit, slot: Slot) {
        self.launch(limit, slot);
    }

    fn end_unstarted(self: Box<Self>, limit: &Limit) {
        // Unpolled, it publishes its cancellation and ends.
        drop(self.runner(limit, false, |report| report));
    }
}

/// A waiting child of [`Scope::spawn_blocking`](crate::scope::Scope::spawn_blocking).
pub(crate) struct WaitingBlocking<F, O, M, P>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    P: ParentLink<M::Err>,
{
    parts: Parts<F, M::Ok, M::Err, P>,
    mode: PhantomData<fn() -> (O, M)>,
}

impl<F, O, M, P> WaitingBlocking<F, O, M, P>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    P: ParentLink<M::Err>,
{
    pub(crate) fn new(
        body: F,
        completer: Completer<TaskOutput<M::Ok, M::Err>>,
        parent: Option<P>,
    ) -> Self {
        WaitingBlocking {
            parts: Parts { body, completer, timeout: None, parent },
            mode: PhantomData,
        }
    }

    fn runner<R: Report<M::Err>>(
        self,
        limit: &Limit,
        starts: bool,
        report: impl FnOnce(Accounting<P>) -> R,
    ) -> BlockingRunner<F, O, M, R> {
        let Unpacked { body, completer, span, accounting, .. } = self.parts.unpack(limit, starts);
        BlockingRunner::new(body, completer, span, report(accounting))
    }
}

impl<F, O, M, P> Launch for WaitingBlocking<F, O, M, P>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    P: ParentLink<M::Err>,
{
    /// Queues the child on the blocking pool, holding `slot` until it has ended (see
    /// [`SlotHeld`]).
    fn launch(self, limit: &Limit, slot: Slot) {
        let runner = self.runner(limit, true, |report| SlotHeld { report, slot });
        let header = runner.header_ref();
        limit.runtime().shared.blocking.submit(Box::new(runner), header);
    }
}

impl<F, O, M, P> Deferred for WaitingBlocking<F, O, M, P>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    P: ParentLink<M::Err>,
{
    fn header(&self) -> &Header {
        self.parts.completer.header()
    }

    fn start(self: Box<Self>, limit: &Limit, slot: Slot) {
        self.launch(limit, slot);
    }

    fn end_unstarted(self: Box<Self>, limit: &Limit) {
        // Unrun, it publishes its cancellation and ends.
        drop(self.runner(limit, false, |report| report));
    }
}

/// A started child's report, holding its slot of the scope's limit. The slot is given back when
/// the child has ended: after its output is published, which, when its body left descendants
/// running (scopes it dropped), is when the last of them ends, not when its runner returns. So
/// the next waiting child never runs beside what the one before it started.
struct SlotHeld<R> {
    report: R,
    slot: Slot,
}

impl<E, R: Report<E>> Report<E> for SlotHeld<R> {
    fn shutdown_cancels(&self, task: &Header) -> bool {
        self.report.shutdown_cancels(task)
    }

    fn first_wait(&mut self, task: HeaderRef) {
        self.report.first_wait(task);
    }

    fn raced(&self, task: &Header, error: TaskError<E>) {
        self.report.raced(task, error);
    }

    fn adopted(&self, failures: Failures) {
        self.report.adopted(failures);
    }

    fn before_publish(&self, kind: Kind, id: TaskId, waited: bool) {
        self.report.before_publish(kind, id, waited);
    }

    fn failure_taker(&self) -> FailureTaker {
        self.report.failure_taker()
    }

    fn ended(self) {
        let SlotHeld { report, slot } = self;
        report.ended();
        // The next waiting child starts here: this worker runs it next.
        crate::runtime::executor::at_end_of_run(|| drop(slot));
    }

    fn own_timeout_passed(at: Instant) {
        R::own_timeout_passed(at);
    }

    fn as_child<T>(&self, f: impl FnOnce() -> T) -> T {
        self.report.as_child(f)
    }
}
