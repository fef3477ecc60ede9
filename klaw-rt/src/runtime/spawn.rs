//! The one place tasks are made: every spawn (on a runtime, in a scope, on the blocking pool,
//! local to a scope) registers its task here, before anything can run it, and gives its runner
//! the [`Accounting`] it reports through.
//!
//! The order is the guarantee: the task's core (and so its cancel token) exists, it is counted,
//! and its scope has registered it (cancelling it at once if the scope is already cancelled)
//! before any executor or pool sees it.
#![forbid(unsafe_code)]

use crate::cancel::RegionState;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::executor::Spawner;

use crate::remote::{JobId, RemoteBackend, run_remotely};
use crate::runtime::Shared;
use crate::runtime::blocking::BlockingJob;
use crate::runtime::in_task;
use crate::runtime::limit::Limit;
use crate::runtime::stats::Stats;
use crate::runtime::waiting::{self, WaitingBlocking, WaitingChild};
use crate::task::core::{
    Completer, CoreRef, FailureTaker, Header, HeaderRef, Joiner, TaskCore, new_task,
};
use crate::task::descendants::{AdoptedFailure, Failures};
use crate::task::guard::drop_contained;
use crate::task::handle::TaskOutput;
use crate::task::runner::{AsyncRunner, BlockingRunner, Report, task_span};
use crate::task::spec::{ErrOf, OkOf, Relayed, is_large};
use crate::task::state::Kind;
use crate::task::{BlockingTask, IntoTask, Outcome, Task, TaskError, TaskHandle, TaskId};

/// What [`Runtime::spawn`](crate::runtime::Runtime::spawn) and
/// [`Handle::spawn`](crate::runtime::Handle::spawn) take: what a scope's `s.spawn` takes, a
/// `Send + 'static` future, a [`Task`], or a [`BlockingTask`] (as `#[klaw::task]` and
/// `#[klaw::task(blocking)]` build them), which runs on the runtime's blocking pool.
///
/// ```
/// #[klaw::task(blocking)]
/// fn checksum(data: Vec<u8>) -> u64 {
///     data.iter().map(|&byte| u64::from(byte)).sum()
/// }
///
/// fn spawnable<T: klaw::runtime::Spawnable>(_: &T) {}
/// let task = checksum(vec![1, 2, 3]);
/// spawnable(&task);
/// spawnable(&async { 1 });
/// spawnable(&klaw::Task::fallible(async { "1".parse::<u8>() }));
///
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// assert_eq!(rt.block_on(rt.spawn(task)), Ok(6));
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task that a runtime can spawn",
    label = "expected a future, a `#[klaw::task]` call, a `klaw::Task` or a `klaw::task::BlockingTask`",
    note = "a closure runs on the blocking pool with `spawn_blocking(|| ...)`"
)]
pub trait Spawnable {
    /// What the task gives on success.
    type Ok: Send + 'static;
    /// What the task fails with.
    type Err: Send + 'static;

    #[doc(hidden)]
    fn __spawn_on(self, runtime: SpawnOn<'_>) -> TaskHandle<Self::Ok, Self::Err>;
}

/// Where [`Spawnable::__spawn_on`] puts a task: a runtime's executor (none once it has shut
/// down: the task is then cancelled before it starts) and what its handles share.
#[doc(hidden)]
pub struct SpawnOn<'a> {
    pub(crate) executor: Option<&'a Spawner>,
    pub(crate) shared: &'a Shared,
}

impl std::fmt::Debug for SpawnOn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnOn").finish_non_exhaustive()
    }
}

impl<T> Spawnable for T
where
    T: IntoTask,
    T::Future: Send + 'static,
{
    type Ok = OkOf<T>;
    type Err = ErrOf<T>;

    #[inline]
    fn __spawn_on(self, on: SpawnOn<'_>) -> TaskHandle<Self::Ok, Self::Err> {
        let (executor, shared) = (on.executor, on.shared);
        // A large future goes down the layers of the spawn as a pointer: copied into each frame
        // of a debug build, it would overflow the stack. Decided at compile time: a small
        // future takes the second branch only, as it always did.
        if const { is_large::<T::Future>() } {
            let task = self.into_task().boxed();
            spawn_on(executor, shared, task, Placement::default(), |_| None::<NoParent>)
        } else {
            let task = self.into_task();
            spawn_on(executor, shared, task, Placement::default(), |_| None::<NoParent>)
        }
    }
}

/// A blocking task goes to the blocking pool, as a scope's blocking child does.
impl<F, O, M> Spawnable for BlockingTask<F, M>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
{
    type Ok = M::Ok;
    type Err = M::Err;

    #[inline]
    fn __spawn_on(self, on: SpawnOn<'_>) -> TaskHandle<Self::Ok, Self::Err> {
        // A large closure goes down the layers (and the pool thread's) as a pointer, as a large
        // future does; decided at compile time.
        if const { is_large::<F>() } {
            spawn_blocking_on(on.shared, self.boxed(), Placement::default(), |_| None::<NoParent>)
        } else {
            spawn_blocking_on(on.shared, self, Placement::default(), |_| None::<NoParent>)
        }
    }
}

/// What a child's runner tells the scope it belongs to (the scope's `ChildLink`).
pub(crate) trait ParentLink<E>: Send + 'static {
    /// The outcome is decided and about to be published: a failure fails the scope first.
    fn before_publish(&self, kind: Kind);
    /// The body failed after the child's outcome was decided otherwise.
    fn raced(&self, task: &Header, error: TaskError<E>);
    /// A failure in a scope the body dropped before it returned: the parent reports it.
    fn adopted(&self, failure: Box<dyn AdoptedFailure>);
    /// The output is published: the child has ended.
    fn ended(self);
    /// Who takes a failure the child's handle does not: its scope, or nobody (the parent
    /// awaits the handle itself).
    fn failure_taker(&self) -> FailureTaker;
    /// A child that waited for a slot of its scope's limit starts: its scope lists it now.
    fn list<T: Send + 'static>(&mut self, task: CoreRef<TaskCore<TaskOutput<T, E>>>);
    /// The region of the child's scope (see `cancel::parent_region`).
    fn region(&self) -> Option<&Arc<RegionState>>;
}

/// The parent of a task that has none (spawned on a runtime, not in a scope).
pub(crate) enum NoParent {}

impl<E> ParentLink<E> for NoParent {
    fn before_publish(&self, _: Kind) {
        match *self {}
    }
    fn raced(&self, _: &Header, _: TaskError<E>) {
        match *self {}
    }
    fn adopted(&self, _: Box<dyn AdoptedFailure>) {
        match *self {}
    }
    fn ended(self) {
        match self {}
    }
    fn failure_taker(&self) -> FailureTaker {
        match *self {}
    }
    fn list<T: Send + 'static>(&mut self, _: CoreRef<TaskCore<TaskOutput<T, E>>>) {
        match *self {}
    }
    fn region(&self) -> Option<&Arc<RegionState>> {
        match *self {}
    }
}

/// How one task is accounted for: the runtime's counters and list of waiting tasks (none for a
/// scope's local child outside any runtime), and its scope.
pub(crate) struct Accounting<P> {
    stats: Option<Arc<Stats>>,
    parent: Option<P>,
}

impl<P> Accounting<P> {
    /// Accounting for a task counted by `stats` (if any), child of `parent` (if any).
    pub(crate) fn new(stats: Option<Arc<Stats>>, parent: Option<P>) -> Self {
        Accounting { stats, parent }
    }
}

impl<E: Send + 'static, P: ParentLink<E>> Report<E> for Accounting<P> {
    #[inline]
    fn shutdown_cancels(&self, task: &Header) -> bool {
        self.stats.as_ref().is_some_and(|stats| stats.shutdown_cancels(task))
    }

    fn first_wait(&mut self, task: HeaderRef) {
        if let Some(stats) = &self.stats {
            stats.park(task);
        }
    }

    fn raced(&self, task: &Header, error: TaskError<E>) {
        match &self.parent {
            Some(parent) => parent.raced(task, error),
            None => log_failure_after_the_end(task.id(), error),
        }
    }

    fn adopted(&self, failures: Failures) {
        for failure in failures {
            match &self.parent {
                Some(parent) => parent.adopted(failure),
                None => failure.log(),
            }
        }
    }

    #[inline]
    fn before_publish(&self, kind: Kind, id: TaskId, waited: bool) {
        // Counted first: once a handle resolves, the live count no longer includes its task.
        if let Some(stats) = &self.stats {
            if waited {
                stats.unpark(id);
            }
            stats.task_ended(kind);
        }
        if let Some(parent) = &self.parent {
            parent.before_publish(kind);
        }
    }

    #[inline]
    fn failure_taker(&self) -> FailureTaker {
        self.parent.as_ref().map_or(FailureTaker::HandleOnly, P::failure_taker)
    }

    #[inline]
    fn ended(self) {
        if let Some(parent) = self.parent {
            parent.ended();
        }
    }

    fn own_timeout_passed(at: Instant) {
        crate::cancel::frames::expire_enclosing(at);
    }

    #[inline]
    fn as_child<T>(&self, f: impl FnOnce() -> T) -> T {
        match self.parent.as_ref().and_then(P::region) {
            Some(region) => crate::cancel::parent_region::with(region, f),
            None => f(),
        }
    }
}

/// Where a new task belongs: its scope's name (for its span) and its scope's limit, if any, and
/// whether the scope is under a shield (see `ScopeInfo::under_shield`).
#[derive(Clone, Copy, Default)]
pub(crate) struct Placement<'a> {
    pub(crate) scope: Option<&'a str>,
    pub(crate) limit: Option<&'a Arc<Limit>>,
    pub(crate) under_shield: bool,
}

/// A new task, before anything runs it.
struct NewTask<T, E, P> {
    span: Option<Box<tracing::Span>>,
    completer: Completer<TaskOutput<T, E>>,
    accounting: Accounting<P>,
    handle: TaskHandle<T, E>,
}

/// Creates a task and registers it: counted, and registered with its scope by `parent`.
#[inline]
fn register<T: Send + 'static, E: Send + 'static, P>(
    stats: Option<&Arc<Stats>>,
    name: Option<Cow<'static, str>>,
    scope: Option<&str>,
    parent: impl FnOnce(&Joiner<TaskOutput<T, E>>) -> Option<P>,
) -> NewTask<T, E, P> {
    let id = TaskId::next();
    let span = task_span(id, name.as_deref(), scope);
    let (completer, joiner) = new_task(id, name);
    let accounting = enroll(stats, &joiner, parent);
    NewTask { span, completer, accounting, handle: TaskHandle::new(joiner) }
}

/// Registers a new task with its scope (through `parent`) and counts it: what it reports to.
/// Called before any executor or pool sees the task, so a scope cancelled meanwhile cancels it
/// before it can start.
#[inline]
fn enroll<T: Send + 'static, E: Send + 'static, P>(
    stats: Option<&Arc<Stats>>,
    joiner: &Joiner<TaskOutput<T, E>>,
    parent: impl FnOnce(&Joiner<TaskOutput<T, E>>) -> Option<P>,
) -> Accounting<P> {
    let parent = parent(joiner);
    if let Some(stats) = stats {
        stats.task_spawned();
    }
    Accounting::new(stats.cloned(), parent)
}

/// Creates a task that waits for a slot of its scope's limit: counted, and enlisted with its
/// scope by `parent` (which cancels it if the scope is cancelled). Its span and its runner are
/// made when it starts, so that waiting costs as little as possible.
#[allow(clippy::type_complexity)]
fn enlist<T: Send + 'static, E: Send + 'static, P>(
    stats: &Arc<Stats>,
    name: Option<Cow<'static, str>>,
    parent: impl FnOnce(&Joiner<TaskOutput<T, E>>) -> Option<P>,
) -> (Completer<TaskOutput<T, E>>, Option<P>, TaskHandle<T, E>) {
    let (completer, joiner) = new_task(TaskId::next(), name);
    let parent = parent(&joiner);
    stats.task_spawned();
    (completer, parent, TaskHandle::new(joiner))
}

/// Spawns a task on `executor` (or, if the runtime has shut down, cancels it at once: its
/// runner is dropped unpolled). A remote task, with a backend, becomes a proxy that submits it
/// and relays its outcome. Under a scope's `limit`, it starts only once a slot is free.
pub(crate) fn spawn_on<F, M, P>(
    executor: Option<&Spawner>,
    shared: &Shared,
    task: Task<F, M>,
    placement: Placement<'_>,
    parent: impl FnOnce(&Joiner<TaskOutput<M::Ok, M::Err>>) -> Option<P>,
) -> TaskHandle<M::Ok, M::Err>
where
    F: Future + Send + 'static,
    M: Outcome<F::Output> + 'static,
    P: ParentLink<M::Err>,
{
    let Task { future, name, timeout, remote, .. } = task;
    if let (Some(call), Some(backend)) = (remote, shared.backend.as_ref()) {
        // A remote task: its body never runs here; a proxy submits it and relays the outcome.
        drop(future);
        let job = JobId::random();
        // The worker applies the task's own timeout: the proxy has none.
        let proxy = run_remotely::<M::Ok, M::Err>(backend.clone(), call, job.clone());
        let handle = spawn_future::<_, Relayed, P>(
            executor,
            Some(backend),
            shared,
            proxy,
            name,
            None,
            placement,
            parent,
        );
        let backend = backend.clone();
        handle.on_cancel(move |reason| backend.cancel(&job, reason));
        return handle;
    }
    spawn_future::<F, M, P>(executor, None, shared, future, name, timeout, placement, parent)
}

/// Registers a task and hands its runner to `executor`, or, for a remote task's relay, to
/// `relay_on` if that backend runs relays itself (see [`RemoteBackend::run_relay`]). Under a
/// scope's `limit` it waits for a slot and then starts on `executor`, relay or not. With no
/// executor (the runtime has shut down) the runner is dropped unpolled: the task is cancelled.
#[inline]
#[allow(clippy::too_many_arguments, reason = "one private function, called twice")]
fn spawn_future<F, M, P>(
    executor: Option<&Spawner>,
    relay_on: Option<&Arc<dyn RemoteBackend>>,
    shared: &Shared,
    future: F,
    name: Option<Cow<'static, str>>,
    timeout: Option<Duration>,
    placement: Placement<'_>,
    parent: impl FnOnce(&Joiner<TaskOutput<M::Ok, M::Err>>) -> Option<P>,
) -> TaskHandle<M::Ok, M::Err>
where
    F: Future + Send + 'static,
    M: Outcome<F::Output> + 'static,
    P: ParentLink<M::Err>,
{
    let Placement { scope, limit, under_shield } = placement;
    // Once a shutdown cancels what is left, a new task would only be polled to cancel itself;
    // refused at once, it cannot keep a shutdown waiting however fast it is spawned. (A child of
    // a scope under a shield is refused only once the shutdown cancels every task: until then,
    // the shield holds its scope open, and a shielded cleanup may spawn.)
    let under_way = shared.stats.begin_spawn(under_shield);
    let executor = executor.filter(|_| under_way.is_some());
    if let (Some(_), Some(limit)) = (executor, limit) {
        let (completer, parent, handle) = enlist(&shared.stats, name, parent);
        waiting::admit(limit, WaitingChild::<F, M, P>::new(future, completer, timeout, parent));
        return handle;
    }
    if let (Some(executor), None) = (executor, relay_on) {
        // The common case: the task's core lives in the task's own allocation.
        let id = TaskId::next();
        let span = task_span(id, name.as_deref(), scope);
        let joiner =
            in_task::spawn::<F, M, _>(executor, id, name, future, timeout, span, |joiner| {
                enroll(Some(&shared.stats), joiner, parent)
            });
        return TaskHandle::new(joiner);
    }
    // An executor here comes with a relay (without one, the common case returned above).
    let (Some(executor), Some(backend)) = (executor, relay_on) else {
        // The runtime has shut down, or is cancelling what is left: the task never runs, and its
        // handle resolves cancelled. It is counted as cancelled at once, never as live, so that
        // a shutdown's report read meanwhile (on another thread) cannot take it for a task left
        // running.
        shared.stats.task_refused();
        let NewTask { span, completer, accounting, handle } = register(None, name, scope, parent);
        drop(AsyncRunner::<F, M, _>::new(future, completer, timeout, span, accounting));
        return handle;
    };
    let NewTask { span, completer, accounting, handle } =
        register(Some(&shared.stats), name, scope, parent);
    let runner = AsyncRunner::<F, M, _>::new(future, completer, timeout, span, accounting);
    // A relay is klaw's code only (it submits the job and hands back the outcome): it may run
    // next to the backend's I/O, so the outcome reaches it without a thread hop.
    if let Err(runner) = backend.run_relay(Box::pin(runner)) {
        executor.spawn(runner);
    }
    handle
}

/// `Runtime::spawn_blocking` and `Handle::spawn_blocking`: `f` as a top-level blocking task.
pub(crate) fn spawn_closure<F, R>(shared: &Shared, f: F) -> TaskHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    // A large closure goes down the layers (and the pool thread's) as a pointer, as a large
    // future does; decided at compile time.
    if const { is_large::<F>() } {
        let task = BlockingTask::new(Box::new(f));
        spawn_blocking_on(shared, task, Placement::default(), |_| None::<NoParent>)
    } else {
        let task = BlockingTask::new(f);
        spawn_blocking_on(shared, task, Placement::default(), |_| None::<NoParent>)
    }
}

/// Queues a closure on the blocking pool (after shutdown, cancels it at once).
pub(crate) fn spawn_blocking_on<F, O, M, P>(
    shared: &Shared,
    task: BlockingTask<F, M>,
    placement: Placement<'_>,
    parent: impl FnOnce(&Joiner<TaskOutput<M::Ok, M::Err>>) -> Option<P>,
) -> TaskHandle<M::Ok, M::Err>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    P: ParentLink<M::Err>,
{
    let Placement { scope, limit, under_shield } = placement;
    // Refused as `spawn_future` refuses a task, so that the shutdown's report waits for it or
    // never counts it. (Once a shutdown's first step has begun, the pool also drops a closure
    // not under a shield that reaches it some other way: one that waited for a slot.)
    let Some(_under_way) = shared.stats.begin_spawn(under_shield) else {
        shared.stats.task_refused();
        let NewTask { span, completer, accounting, handle } =
            register(None, task.name, scope, parent);
        // Dropped unrun, it publishes its cancellation.
        drop(BlockingRunner::<F, O, M, _>::new(task.body, completer, span, accounting));
        return handle;
    };
    if let Some(limit) = limit {
        let (completer, parent, handle) = enlist(&shared.stats, task.name, parent);
        waiting::admit(limit, WaitingBlocking::<F, O, M, P>::new(task.body, completer, parent));
        return handle;
    }
    let NewTask { span, completer, accounting, handle } =
        register(Some(&shared.stats), task.name, scope, parent);
    let header = completer.header_ref(None);
    let runner = BlockingRunner::<F, O, M, _>::new(task.body, completer, span, accounting);
    shared.blocking.submit(Box::new(runner), header);
    handle
}

/// A scope's local child, made: the runner the scope polls itself, and the child's handle.
pub(crate) struct Local<F: Future, M: Outcome<F::Output>, P: ParentLink<M::Err>> {
    pub(crate) runner: AsyncRunner<F, M, Accounting<P>>,
    pub(crate) handle: TaskHandle<M::Ok, M::Err>,
}

/// A scope's local child: its runner, for the scope to poll itself, and its handle. Counted by
/// `stats` if the scope runs on a runtime.
pub(crate) fn local<F, M, P>(
    stats: Option<&Arc<Stats>>,
    task: Task<F, M>,
    scope: Option<&str>,
    parent: impl FnOnce(&Joiner<TaskOutput<M::Ok, M::Err>>) -> Option<P>,
) -> Local<F, M, P>
where
    F: Future,
    M: Outcome<F::Output>,
    P: ParentLink<M::Err>,
{
    let Task { future, name, timeout, .. } = task;
    let NewTask { span, completer, accounting, handle } = register(stats, name, scope, parent);
    Local { runner: AsyncRunner::new(future, completer, timeout, span, accounting), handle }
}

impl<F, O, M, R> BlockingJob for BlockingRunner<F, O, M, R>
where
    F: FnOnce() -> O + Send + 'static,
    M: Outcome<O>,
    R: Report<M::Err>,
{
    fn run(self: Box<Self>) {
        (*self).run();
    }
}

/// A failure of a task with no scope to report it to, produced after its outcome was decided
/// (a destructor of its cancelled body panicked, or it failed after a cancel won): its handle
/// keeps the outcome, so this event is the failure's one report.
pub(crate) fn log_failure_after_the_end<E>(id: TaskId, error: TaskError<E>) {
    tracing::warn!(
        task.id = id.as_u64(),
        error = %error,
        "a task failed after its outcome was decided; its handle keeps that outcome"
    );
    drop_contained(error);
}
