//! Nurseries: a [`Scope`] owns the tasks spawned in it and returns only when every one has ended.
//!
//! The first failure (an `Err` from a fallible child, a panic, a child's own timeout) cancels the
//! body and the siblings with [`CancelReason::SiblingFailed`] and is what the scope returns; any
//! later failure is kept next to it in [`ScopeError`](crate::error::ScopeError), never lost. In
//! supervisor mode nobody is cancelled and every failure is collected.
#![forbid(unsafe_code)]

mod drive;
mod handle;
#[cfg(all(test, klaw_loom))]
mod loom;
pub(crate) mod registry;
mod spawnable;

pub use drive::{
    ScopeBody, ScopeBodyError, ScopeResult, scope_with, scope_with_error, typed_scope_body,
};
pub use handle::ScopeHandle;
pub use spawnable::{
    ChildKind, ChildOutput, IsTask, PlainValue, ResultNeedsTaskFallibleOrTaskNew, SpawnTarget,
    Spawnable,
};

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::Handle;
use crate::runtime::spawn;
use crate::runtime::stats::Stats;
use crate::scope::registry::{ScopeChild, ScopeShared};
use crate::sync::Mutex;
use crate::task::error::BoxError;
use crate::task::spec::{ErrOf, OkOf};
use crate::task::{BlockingTask, CancelReason, IntoTask};

type LocalChild<'env> = Pin<Box<dyn Future<Output = ()> + Send + 'env>>;

/// How a scope behaves: its name, a deadline, supervisor mode. `scope!` builds this from its
/// options (`name = "..."`, `timeout = "5s"`, `deadline = expr`, `supervisor`).
///
/// ```
/// use klaw::scope::{ScopeOptions, scope_with};
/// use std::time::Duration;
/// let options = ScopeOptions::new().name("crawl").timeout(Duration::from_secs(5)).supervisor();
/// let name = klaw::runtime::block_on(scope_with(options, |s| {
///     Box::pin(async move { Ok(s.name().map(str::to_owned)) })
/// }));
/// assert_eq!(name.unwrap().as_deref(), Some("crawl"));
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ScopeOptions {
    name: Option<Cow<'static, str>>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    supervisor: bool,
}

impl ScopeOptions {
    /// The defaults: unnamed, no deadline, the first failure cancels the rest.
    ///
    /// ```
    /// let options = klaw::scope::ScopeOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the scope: its children's spans carry it as `scope`.
    ///
    /// ```
    /// let options = klaw::scope::ScopeOptions::new().name("io");
    /// # let _ = options;
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Cancels the scope with [`CancelReason::Deadline`] `timeout` after it starts; the scope
    /// then fails with [`Error::Elapsed`](crate::error::Error::Elapsed).
    ///
    /// ```
    /// let options = klaw::scope::ScopeOptions::new().timeout(std::time::Duration::from_secs(1));
    /// # let _ = options;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Cancels the scope with [`CancelReason::Deadline`] at `deadline`.
    ///
    /// ```
    /// let soon = std::time::Instant::now() + std::time::Duration::from_secs(1);
    /// let options = klaw::scope::ScopeOptions::new().deadline(soon);
    /// # let _ = options;
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Supervisor mode: a failing child cancels nobody; the scope waits for all and returns
    /// every failure.
    ///
    /// ```
    /// let options = klaw::scope::ScopeOptions::new().supervisor();
    /// # let _ = options;
    /// ```
    pub fn supervisor(mut self) -> Self {
        self.supervisor = true;
        self
    }

    /// The deadline, from whichever of `timeout` and `deadline` comes first.
    fn effective_deadline(&self, start: Instant) -> Option<Instant> {
        let from_timeout = self.timeout.map(|timeout| start + timeout);
        match (from_timeout, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A nursery: what `scope!` gives its body as `s`. Spawn children with [`spawn`](Self::spawn)
/// (parallel, `Send + 'static`), [`spawn_local`](Self::spawn_local) (may borrow from outside the
/// scope, polled inside it) and [`spawn_blocking`](Self::spawn_blocking).
///
/// ```
/// # #[klaw::main(workers = 2)]
/// # async fn main() -> Result<(), klaw::Error> {
/// let words = vec!["a", "bb", "ccc"];
/// let total = klaw::scope!(|s| {
///     let parallel = s.spawn(async { 40 });
///     let borrowing = s.spawn_local(async { words.iter().map(|w| w.len()).sum::<usize>() });
///     Ok(parallel.await? + borrowing.await?)
/// })?;
/// assert_eq!(total, 46);
/// # Ok(())
/// # }
/// ```
pub struct Scope<'env> {
    shared: Arc<ScopeShared>,
    runtime: Option<Handle>,
    stats: Option<Arc<Stats>>,
    locals: Mutex<Vec<LocalChild<'env>>>,
    name: Option<Cow<'static, str>>,
    // Invariant in 'env, like std::thread::Scope.
    env: PhantomData<&'env mut &'env ()>,
}

impl<'env> Scope<'env> {
    fn new(options: &ScopeOptions) -> Self {
        let runtime = Handle::current().ok();
        Scope {
            shared: ScopeShared::new(options.supervisor),
            stats: runtime.as_ref().map(|runtime| runtime.stats().clone()),
            runtime,
            locals: Mutex::new(Vec::new()),
            name: options.name.clone(),
            env: PhantomData,
        }
    }

    fn runtime(&self) -> &Handle {
        self.runtime.as_ref().unwrap_or_else(|| panic!("{}", crate::runtime::NoRuntime))
    }

    /// Spawns a child that runs in parallel on the runtime's workers (or, for a
    /// [`BlockingTask`], on its blocking pool). It must be `Send + 'static`: to borrow, use
    /// [`spawn_local`](Self::spawn_local).
    ///
    /// # Panics
    /// If the scope runs outside a klaw runtime (for example under a plain `klaw::runtime::block_on`).
    ///
    /// ```
    /// # #[klaw::main(workers = 2)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// let doubled = klaw::scope!(|s| {
    ///     let handles: Vec<_> = (0..4u64).map(|i| s.spawn(async move { i * 2 })).collect();
    ///     let mut sum = 0;
    ///     for handle in handles {
    ///         sum += handle.await?;
    ///     }
    ///     Ok(sum)
    /// })?;
    /// assert_eq!(doubled, 12);
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn<T, M>(&self, task: T) -> ScopeHandle<'_, T::Ok, T::Err>
    where
        T: Spawnable + ChildKind<M>,
    {
        let target = SpawnTarget {
            runtime: self.runtime(),
            scope: &self.shared,
            scope_name: self.name.as_deref(),
        };
        ScopeHandle::new(task.__spawn_child(target), &self.shared)
    }

    /// Spawns a closure on the runtime's blocking pool as a child of this scope. It can poll
    /// [`klaw::cancel::is_cancelled`](crate::cancel::is_cancelled) to stop early when the scope is cancelled.
    ///
    /// # Panics
    /// If the scope runs outside a klaw runtime.
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// let sum = klaw::scope!(|s| Ok(s.spawn_blocking(|| (1..=100u32).sum::<u32>()).await?))?;
    /// assert_eq!(sum, 5050);
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_blocking<F, R, M>(&self, f: F) -> ScopeHandle<'_, R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static + ChildOutput<M>,
    {
        self.spawn(BlockingTask::new(f))
    }

    /// Spawns a child that may borrow data from outside the scope. It is polled by the scope
    /// itself, inside the task that runs the scope, so it runs concurrently with the body but
    /// not in parallel. It is dropped, never leaked, if the scope is cancelled or dropped.
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// let mut hits = Vec::new();
    /// let log = std::sync::Mutex::new(&mut hits);
    /// klaw::scope!(|s| {
    ///     s.spawn_local(async { log.lock().unwrap().push("a") });
    ///     s.spawn_local(async { log.lock().unwrap().push("b") });
    ///     Ok(())
    /// })
    /// .unwrap();
    /// hits.sort();
    /// assert_eq!(hits, ["a", "b"]);
    /// # });
    /// ```
    pub fn spawn_local<T, M>(&self, task: T) -> ScopeHandle<'_, OkOf<T>, ErrOf<T>>
    where
        T: IntoTask + ChildKind<M>,
        T::Future: Send + 'env,
        ErrOf<T>: Into<BoxError>,
    {
        let local =
            spawn::local(self.stats.as_ref(), task.into_task(), self.name.as_deref(), |joiner| {
                let child: Arc<dyn ScopeChild> = joiner.core();
                Some(self.shared.register::<ErrOf<T>>(child))
            });
        self.locals.lock().push(Box::pin(local.runner));
        ScopeHandle::new(local.handle, &self.shared)
    }

    /// Cancels the whole scope: the body and every child, with `reason`. The scope then
    /// returns `Err(TaskError::Cancelled(reason))` unless something failed first.
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// let result: Result<(), klaw::Error> = klaw::scope!(|s| {
    ///     s.spawn_local(std::future::pending::<()>());
    ///     s.cancel("enough");
    ///     std::future::pending::<()>().await; // the body is cancelled too
    ///     Ok(())
    /// });
    /// assert!(matches!(result, Err(klaw::Error::Task { error: klaw::TaskError::Cancelled(_), .. })));
    /// # });
    /// ```
    pub fn cancel(&self, reason: impl Into<CancelReason>) {
        self.shared.cancel_all(reason.into(), None);
    }

    /// True once the scope was cancelled (by [`cancel`](Self::cancel), a failure or its
    /// deadline).
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// klaw::scope!(|s| {
    ///     assert!(!s.is_cancelled());
    ///     Ok(())
    /// })
    /// .unwrap();
    /// # });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.shared.region.is_cancelled()
    }

    /// The scope's name, from `scope!(name = "...", ...)`.
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// klaw::scope!(name = "io", |s| {
    ///     assert_eq!(s.name(), Some("io"));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// # });
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn take_locals(&self) -> Vec<LocalChild<'env>> {
        std::mem::take(&mut *self.locals.lock())
    }
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.name)
            .field("cancelled", &self.shared.region.reason())
            .finish_non_exhaustive()
    }
}
