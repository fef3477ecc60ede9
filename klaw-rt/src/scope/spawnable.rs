//! What a scope can spawn in parallel: futures, `Task`s and `BlockingTask`s.
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;

use crate::runtime::limit::Limit;
use crate::runtime::{Handle, Placement};
use crate::scope::registry::{ChildLink, ScopeShared, child_ref};
use crate::task::core::Joiner;
use crate::task::error::BoxError;
use crate::task::handle::TaskOutput;
use crate::task::spec::{ErrOf, OkOf, is_large};
use crate::task::{BlockingTask, IntoTask, Outcome, Task, TaskHandle};

/// Where a child goes: the runtime that runs it and the scope that owns it.
#[doc(hidden)]
pub struct SpawnTarget<'a> {
    pub(crate) runtime: &'a Handle,
    pub(crate) scope: &'a Arc<ScopeShared>,
    pub(crate) scope_name: Option<&'a str>,
    /// A background child: stopped, not awaited, once the rest of the scope is done.
    pub(crate) background: bool,
}

impl SpawnTarget<'_> {
    fn placement(&self) -> Placement<'_> {
        Placement {
            scope: self.scope_name,
            limit: self.limit(),
            under_shield: self.scope.under_shield(),
        }
    }

    /// The scope's limit, which background children do not count against.
    fn limit(&self) -> Option<&Arc<Limit>> {
        self.scope.limit.as_ref().filter(|_| !self.background)
    }

    /// The child's link to its scope. Under a limit, the scope lists the child only when it
    /// starts, so a waiting child costs no entry and ended children are swept as others start.
    fn enroll<T, E>(&self, joiner: &Joiner<TaskOutput<T, E>>) -> ChildLink<E>
    where
        T: Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        if self.limit().is_some() {
            return self.scope.enlist(joiner.header());
        }
        let child = child_ref(joiner.core());
        match self.background {
            true => self.scope.register_background(child),
            false => self.scope.register(child),
        }
    }
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
        let parent = |joiner: &Joiner<_>| Some(target.enroll::<Self::Ok, Self::Err>(joiner));
        // A large future goes down the layers of the spawn as a pointer: copied into each frame
        // of a debug build, it would overflow the stack. Decided at compile time: a small
        // future takes the second branch only, as it always did.
        if const { is_large::<T::Future>() } {
            target.runtime.spawn_child(self.into_task().boxed(), target.placement(), parent)
        } else {
            target.runtime.spawn_child(self.into_task(), target.placement(), parent)
        }
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
        let parent = |joiner: &Joiner<_>| Some(target.enroll::<Self::Ok, Self::Err>(joiner));
        // A large closure goes down the layers (and the pool thread's) as a pointer, as a large
        // future does; decided at compile time.
        if const { is_large::<F>() } {
            target.runtime.spawn_blocking_child(self.boxed(), target.placement(), parent)
        } else {
            target.runtime.spawn_blocking_child(self, target.placement(), parent)
        }
    }
}

/// What a scope accepts as a child, and how it tells a bare future that gives a value from one
/// that gives a `Result`. A `Task` (what `#[klaw::task]` builds) and a `BlockingTask` say
/// themselves whether an `Err` is a failure. A bare future's output must be a
/// [`ChildOutput`]: any value except a `Result`.
///
/// Why a `Result` is refused: a scope child's `Err` must never be lost unnoticed, and a bare
/// future cannot say whether its `Err` is a failure (trio's and Kotlin's rule) or a value. So
/// spawn `klaw::Task::fallible(future)` for a child whose `Err` fails the scope, or
/// `klaw::Task::new(future)` to keep the whole `Result` as the child's value. The `Marker` is
/// inferred; it exists so that a `Result` output matches two impls, which the compiler reports.
///
/// ```
/// fn child<M, T: klaw::scope::ChildKind<M>>(_: T) {}
/// child(async { 1 });                                            // a value
/// child(klaw::Task::fallible(async { "1".parse::<u8>() }));      // Err fails the scope
/// child(klaw::Task::new(async { "1".parse::<u8>() }));           // the Result is the value
/// ```
///
/// ```compile_fail,E0283
/// fn child<M, T: klaw::scope::ChildKind<M>>(_: T) {}
/// child(async { "1".parse::<u8>() }); // is an `Err` a failure or a value? say it with `Task`
/// ```
pub trait ChildKind<Marker> {}

impl<F: Future, Marker> ChildKind<Marker> for F where F::Output: ChildOutput<Marker> {}

impl<F, M> ChildKind<IsTask> for Task<F, M> {}

impl<F, M> ChildKind<IsTask> for BlockingTask<F, M> {}

/// The output of a bare future or a closure that a scope takes as its child's value: anything
/// but a `Result` (see [`ChildKind`]: a `Result` matches a second impl, so the compiler
/// refuses it as ambiguous and lists both).
///
/// ```
/// fn value<M, O: klaw::scope::ChildOutput<M>>(_: O) {}
/// value(1);
/// value(Some("x"));
/// ```
pub trait ChildOutput<Marker> {}

impl<O> ChildOutput<PlainValue> for O {}

impl<T, E> ChildOutput<ResultNeedsTaskFallibleOrTaskNew> for Result<T, E> {}

/// The marker of a child that is a `Task` or a `BlockingTask`.
///
/// ```
/// fn child<T: klaw::scope::ChildKind<klaw::scope::IsTask>>(_: T) {}
/// child(klaw::Task::new(async {}));
/// ```
#[derive(Debug)]
pub enum IsTask {}

/// The marker of a bare future's (or a closure's) output taken as the child's value.
///
/// ```
/// fn value<O: klaw::scope::ChildOutput<klaw::scope::PlainValue>>(_: O) {}
/// value(1);
/// ```
#[derive(Debug)]
pub enum PlainValue {}

/// The marker a `Result` output also matches, so that a bare future or a closure returning a
/// `Result` is refused as ambiguous: spawn `klaw::Task::fallible(..)` (an `Err` fails the
/// scope) or `klaw::Task::new(..)` (the `Result` is a value) instead.
///
/// ```
/// fn result<O: klaw::scope::ChildOutput<klaw::scope::ResultNeedsTaskFallibleOrTaskNew>>(_: O) {}
/// result(Ok::<u8, ()>(1));
/// ```
#[derive(Debug)]
pub enum ResultNeedsTaskFallibleOrTaskNew {}
