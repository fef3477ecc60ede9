//! [`Handle`]: a cloneable, `Send` handle to a runtime that does not keep it alive, for
//! spawning from other threads and from inside tasks; and [`NoRuntime`], the error of
//! [`Handle::current`] where no runtime is current.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::executor::Spawner;
use super::spawn::{ParentLink, SpawnOn, Spawnable, spawn_blocking_on, spawn_closure, spawn_on};
use super::stats::Stats;
use super::{Placement, RuntimeConfig, RuntimeDump, Shared, context};
use crate::task::core::Joiner;
use crate::task::handle::TaskOutput;
use crate::task::{BlockingTask, Outcome, Task, TaskHandle};

/// A cloneable, `Send` handle to a runtime, for spawning from other threads or from inside
/// tasks. It does not keep the runtime alive.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let answer = rt.block_on(async {
///     let handle = klaw::Handle::current().expect("inside block_on");
///     handle.spawn(async { 42 }).await
/// });
/// assert_eq!(answer.unwrap(), 42);
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    /// Never the executor itself: a handle (which tasks hold) must not keep it alive after
    /// shutdown. Spawning through a spawner whose executor is gone cancels the task.
    pub(super) spawner: Spawner,
    pub(super) shared: Arc<Shared>,
}

/// No klaw runtime is current on this thread.
///
/// ```
/// let error: klaw::runtime::NoRuntime = klaw::Handle::current().unwrap_err();
/// assert!(error.to_string().contains("no klaw runtime"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no klaw runtime is current on this thread: call this inside a task, inside \
     `Runtime::block_on`, or under `#[klaw::main]`/`#[klaw::test]`"
)]
pub struct NoRuntime;

impl Handle {
    /// The runtime of the task (or `block_on`) running on this thread.
    ///
    /// Not in a `spawn_blocking` closure: the blocking pool's threads are outside the runtime
    /// (its clock too), unlike tokio's. Give the closure a `Handle` (it is `Clone + Send`).
    ///
    /// # Errors
    /// [`NoRuntime`] outside any klaw runtime, including on the blocking pool's threads.
    ///
    /// ```
    /// assert!(klaw::Handle::current().is_err()); // not inside a runtime
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// assert!(rt.block_on(async { klaw::Handle::current() }).is_ok());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn current() -> Result<Handle, NoRuntime> {
        context::with_current(|context| {
            context
                .map(|c| Handle { spawner: c.executor.spawner().clone(), shared: c.shared.clone() })
                .ok_or(NoRuntime)
        })
    }

    /// Spawns on the runtime a future, a [`Task`] or a [`BlockingTask`]; see
    /// [`Runtime::spawn`](super::Runtime::spawn). After shutdown the task is cancelled before it
    /// starts (reason `Shutdown`) and its body never runs.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.handle();
    /// assert_eq!(rt.block_on(handle.spawn(async { "spawned through a handle" })), Ok("spawned through a handle"));
    /// let blocking = handle.spawn(klaw::task::BlockingTask::new(|| 6 * 7).name("answer"));
    /// assert_eq!(rt.block_on(blocking), Ok(42));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn spawn<T: Spawnable>(&self, task: T) -> TaskHandle<T::Ok, T::Err> {
        task.__spawn_on(SpawnOn { executor: self.spawner(), shared: &self.shared })
    }

    /// Runs `f` on the blocking pool; see
    /// [`Runtime::spawn_blocking`](super::Runtime::spawn_blocking).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.handle();
    /// assert_eq!(rt.block_on(handle.spawn_blocking(|| 6 * 7)), Ok(42));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> TaskHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        spawn_closure(&self.shared, f)
    }

    /// Tasks spawned and not yet ended.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// assert_eq!(rt.handle().live_tasks(), 0);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn live_tasks(&self) -> usize {
        self.shared.stats.live()
    }

    /// The live tree of the runtime: see [`Runtime::dump`](super::Runtime::dump).
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// let tree = klaw::Handle::current()?.dump().to_string();
    /// assert!(tree.starts_with("klaw runtime:"), "{tree}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn dump(&self) -> RuntimeDump {
        self.shared.stats.dump()
    }

    /// The configuration the runtime was built with.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(2).build()?;
    /// assert_eq!(rt.handle().config().workers, 2);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }
}

impl Handle {
    /// Where this runtime's tasks are spawned; `None` once it has shut down.
    pub(crate) fn spawner(&self) -> Option<&Spawner> {
        (!self.spawner.is_closed()).then_some(&self.spawner)
    }

    /// Spawns a scope's parallel child: registered with `parent` before it is scheduled.
    pub(crate) fn spawn_child<F, M, P>(
        &self,
        task: Task<F, M>,
        placement: Placement<'_>,
        parent: impl FnOnce(&Joiner<TaskOutput<M::Ok, M::Err>>) -> Option<P>,
    ) -> TaskHandle<M::Ok, M::Err>
    where
        F: Future + Send + 'static,
        M: Outcome<F::Output> + 'static,
        P: ParentLink<M::Err>,
    {
        spawn_on(self.spawner(), &self.shared, task, placement, parent)
    }

    /// Spawns a scope's blocking child (or a blocking task awaited inline, whose parent is the
    /// code awaiting it): registered with `parent` before it is queued.
    pub(crate) fn spawn_blocking_child<F, O, M, P>(
        &self,
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
        spawn_blocking_on(&self.shared, task, placement, parent)
    }

    pub(crate) fn stats(&self) -> &Arc<Stats> {
        &self.shared.stats
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("shut_down", &self.spawner.is_closed())
            .field("live_tasks", &self.shared.stats.live())
            .finish()
    }
}
