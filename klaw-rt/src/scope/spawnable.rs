//! What a scope can spawn in parallel: futures, `Task`s and `BlockingTask`s.
#![forbid(unsafe_code)]

use std::sync::Arc;

use crate::runtime::Handle;
use crate::scope::registry::{ScopeChild, ScopeShared};
use crate::task::error::BoxError;
use crate::task::spec::{ErrOf, OkOf};
use crate::task::{BlockingTask, IntoTask, Outcome, TaskHandle};

/// Where a child goes: the runtime that runs it and the scope that owns it.
#[doc(hidden)]
pub struct SpawnTarget<'a> {
    pub(crate) runtime: &'a Handle,
    pub(crate) scope: &'a Arc<ScopeShared>,
    pub(crate) scope_name: Option<&'a str>,
}

impl std::fmt::Debug for SpawnTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnTarget").finish_non_exhaustive()
    }
}

/// Anything [`Scope::spawn`](crate::scope::Scope::spawn) runs in parallel: a `Send + 'static` future, a
/// [`Task`](crate::task::Task), or a [`BlockingTask`] (as `#[klaw::task]` and
/// `#[klaw::task(blocking)]` build them). A failure must be convertible into a boxed error so
/// the scope can report it.
///
/// ```
/// fn spawnable<T: klaw::scope::Spawnable>(_: T) {}
/// spawnable(async { 1 });
/// spawnable(klaw::Task::fallible(async { "1".parse::<u8>() }));
/// spawnable(klaw::task::BlockingTask::new(|| 1));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task that a scope can spawn",
    label = "expected a future, a `#[klaw::task]` call, a `klaw::Task` or a `klaw::task::BlockingTask`",
    note = "a closure runs on the blocking pool with `s.spawn_blocking(|| ...)`",
    note = "a future that borrows local data runs inside the scope with `s.spawn_local(...)`"
)]
pub trait Spawnable {
    /// What the child gives on success.
    type Ok: Send + 'static;
    /// What the child fails with.
    type Err: Into<BoxError> + Send + 'static;

    #[doc(hidden)]
    fn __spawn_child(self, target: SpawnTarget<'_>) -> TaskHandle<Self::Ok, Self::Err>;
}

impl<T> Spawnable for T
where
    T: IntoTask,
    T::Future: Send + 'static,
    ErrOf<T>: Into<BoxError>,
{
    type Ok = OkOf<T>;
    type Err = ErrOf<T>;

    fn __spawn_child(self, target: SpawnTarget<'_>) -> TaskHandle<Self::Ok, Self::Err> {
        let scope = target.scope;
        target.runtime.spawn_child(self.into_task(), target.scope_name, |joiner| {
            let child: Arc<dyn ScopeChild> = joiner.core();
            Some(scope.register::<Self::Err>(child))
        })
    }
}

impl<F, O, M> Spawnable for BlockingTask<F, M>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    M::Err: Into<BoxError>,
{
    type Ok = M::Ok;
    type Err = M::Err;

    fn __spawn_child(self, target: SpawnTarget<'_>) -> TaskHandle<Self::Ok, Self::Err> {
        let scope = target.scope;
        target.runtime.spawn_blocking_child(self, target.scope_name, |joiner| {
            let child: Arc<dyn ScopeChild> = joiner.core();
            Some(scope.register::<Self::Err>(child))
        })
    }
}
