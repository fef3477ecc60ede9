//! Nurseries: a [`Scope`] owns the tasks spawned in it and returns only when every one has ended.
//!
//! The first failure (an `Err` from a fallible child, a panic, a child's own timeout) cancels the
//! body and the siblings with [`CancelReason::SiblingFailed`] and is what the scope returns; any
//! later failure is kept next to it in [`ScopeError`](crate::error::ScopeError), never lost. In
//! supervisor mode nobody is cancelled and every failure is collected.
#![forbid(unsafe_code)]

mod drive;
mod handle;
mod inline_blocking;
#[cfg(all(test, klaw_loom))]
mod loom;
pub(crate) mod registry;
mod set;
mod spawnable;
mod start;

pub use drive::{
    ScopeBody, ScopeBodyError, ScopeResult, scope_with, scope_with_error, typed_scope_body,
};
pub use handle::ScopeHandle;
pub use inline_blocking::InlineBlockingTask;
pub use set::ChildSet;
pub use spawnable::{
    ChildKind, ChildOutput, IsTask, PlainValue, ResultNeedsTaskFallibleOrTaskNew, SpawnTarget,
    Spawnable,
};
pub use start::{NotReady, Ready};

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::runtime::Handle;
use crate::runtime::ScopeView;
use crate::runtime::limit::Limit;
use crate::runtime::spawn;
use crate::runtime::stats::Stats;
use crate::scope::registry::{OpenScope, ScopeInfo, ScopeShared, child_ref};
use crate::sync::Mutex;
use crate::task::error::BoxError;
use crate::task::spec::{ErrOf, OkOf, is_large};
use crate::task::{BlockingTask, CancelReason, IntoTask, Outcome, Task, TaskHandle};

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
    limit: Option<usize>,
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

    /// Cancels the scope with [`CancelReason::Deadline`] `timeout` after it starts (the shorter
    /// timeout wins if one was set already, as for
    /// [`Region::deadline`](crate::cancel::Region::deadline)); the scope then fails with
    /// [`Error::Elapsed`]. The deadline covers the body and every child but the
    /// background ones: once the rest has ended, the scope stops those itself, and a deadline
    /// that passes while they stop leaves the body's result as it was.
    ///
    /// ```
    /// let options = klaw::scope::ScopeOptions::new().timeout(std::time::Duration::from_secs(1));
    /// # let _ = options;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(self.timeout.map_or(timeout, |t| t.min(timeout)));
        self
    }

    /// Cancels the scope with [`CancelReason::Deadline`] at `deadline` (the earlier deadline
    /// wins if one was set already, as for [`Region::deadline`](crate::cancel::Region::deadline)).
    ///
    /// ```
    /// let soon = std::time::Instant::now() + std::time::Duration::from_secs(1);
    /// let options = klaw::scope::ScopeOptions::new().deadline(soon);
    /// # let _ = options;
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
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

    /// At most `limit` children run at once; the others wait their turn, in spawn order, without
    /// being started: a waiting child is its future and its handle's state, not a task on the
    /// executor. [`Scope::spawn`] stays synchronous and returns the handle at once.
    ///
    /// - Children spawned with [`spawn`](Scope::spawn) and [`spawn_blocking`](Scope::spawn_blocking)
    ///   share the one limit (a blocking child holds its slot while it runs on the blocking pool,
    ///   which has its own, runtime-wide bound). [`spawn_local`](Scope::spawn_local) children are
    ///   not counted: the scope polls them itself, so they never run in parallel.
    /// - A slot is given back when its child has ended (after everything the child started).
    /// - A waiting child that is cancelled never starts. If the whole scope is cancelled (its
    ///   deadline, a failure, [`Scope::cancel`]), every waiting child ends at once; one cancelled
    ///   through its handle ends when its handle is awaited (at once, even if the await began
    ///   before the cancel) or its turn comes.
    ///
    /// `scope!(limit = 8, |s| ..)` sets it.
    ///
    /// # Panics
    /// If `limit` is 0.
    ///
    /// ```
    /// use klaw::scope::{ScopeOptions, scope_with};
    /// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    /// use std::sync::Arc;
    /// # #[klaw::main(workers = 2)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// scope_with(ScopeOptions::new().limit(2), |s| {
    ///     for _ in 0..10 {
    ///         let (running, peak) = (running.clone(), peak.clone());
    ///         s.spawn(async move {
    ///             peak.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
    ///             klaw::time::sleep(std::time::Duration::from_millis(1)).await;
    ///             running.fetch_sub(1, SeqCst);
    ///         });
    ///     }
    ///     Box::pin(async { Ok(()) })
    /// })
    /// .await?;
    /// assert!(peak.load(SeqCst) <= 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn limit(mut self, limit: usize) -> Self {
        assert!(limit > 0, "a scope's limit must be at least 1, got 0");
        self.limit = Some(limit);
        self
    }

    /// The deadline, from whichever of `timeout` and `deadline` comes first.
    fn effective_deadline(&self, start: Instant) -> Option<Instant> {
        // Saturating, as every klaw timeout: `Duration::MAX` means thirty years, not a panic.
        let from_timeout = self.timeout.map(|timeout| crate::time::deadline_after(start, timeout));
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
        let limit = options.limit.zip(runtime.clone());
        let limit = limit.map(|(n, rt)| Limit::new(n, rt, options.name.clone()));
        let info = ScopeInfo::now(options.name.clone());
        let shared = ScopeShared::new(options.supervisor, limit, info);
        let stats = runtime.as_ref().map(|runtime| runtime.stats().clone());
        let open = stats.as_ref().map(|stats| {
            let view: Weak<dyn ScopeView> = Arc::downgrade(&shared) as Weak<ScopeShared>;
            OpenScope { key: stats.scope_opened(view), stats: stats.clone() }
        });
        shared.keep_view(open);
        Scope {
            shared,
            stats,
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
        self.spawn_child(task, false)
    }

    fn spawn_child<T, M>(&self, task: T, background: bool) -> ScopeHandle<'_, T::Ok, T::Err>
    where
        T: Spawnable + ChildKind<M>,
    {
        let target = SpawnTarget {
            runtime: self.runtime(),
            scope: &self.shared,
            scope_name: self.name.as_deref(),
            background,
        };
        ScopeHandle::new(task.__spawn_child(target), &self.shared)
    }

    /// Spawns a background child: a progress reporter, a heartbeat, a cache refresher. It runs
    /// like any child spawned with [`spawn`](Self::spawn), but the scope does not wait for it:
    /// once the body and every other child have ended, the scope cancels it with
    /// [`CancelReason::ScopeFinished`] and returns when it has ended. Its failure before then fails
    /// the scope like any child's; its cancellation is not a failure, and neither is the scope's
    /// deadline passing while it stops. It does not count against the scope's `limit`.
    ///
    /// # Panics
    /// If the scope runs outside a klaw runtime.
    ///
    /// ```
    /// # #[klaw::main(workers = 2)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// use std::time::Duration;
    /// let (ticks, tx) = {
    ///     let (tx, rx) = klaw::channel::unbounded::<()>();
    ///     (rx, tx)
    /// };
    /// let done = klaw::scope!(|s| {
    ///     let heartbeat = s.spawn_background(async move {
    ///         loop {
    ///             let _ = tx.send(()).await;
    ///             klaw::time::sleep(Duration::from_millis(5)).await;
    ///         }
    ///     });
    ///     s.spawn(klaw::time::sleep(Duration::from_millis(20))); // the real work
    ///     let _ = heartbeat;
    ///     Ok("done")
    /// })?;
    /// assert_eq!(done, "done"); // the heartbeat did not keep the scope open
    /// assert!(ticks.len() >= 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_background<T, M>(&self, task: T) -> ScopeHandle<'_, T::Ok, T::Err>
    where
        T: Spawnable + ChildKind<M>,
    {
        self.spawn_child(task, true)
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
        // A large closure goes down as a pointer (see `Spawnable for BlockingTask`).
        if const { is_large::<F>() } {
            self.spawn(BlockingTask::new(Box::new(f)))
        } else {
            self.spawn(BlockingTask::new(f))
        }
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
        // A large future goes down to its runner as a pointer: copied into each frame of a debug
        // build, it would overflow the stack. Decided at compile time: a small future takes the
        // second branch only, as it always did.
        let handle = if const { is_large::<T::Future>() } {
            self.push_local(task.into_task().boxed())
        } else {
            self.push_local(task.into_task())
        };
        ScopeHandle::new(handle, &self.shared)
    }

    /// Makes a local child's runner and hands it to the scope to poll.
    fn push_local<F, M>(&self, task: Task<F, M>) -> TaskHandle<M::Ok, M::Err>
    where
        F: Future + Send + 'env,
        M: Outcome<F::Output> + 'static,
        M::Err: Into<BoxError>,
    {
        let local = spawn::local(self.stats.as_ref(), task, self.name.as_deref(), |joiner| {
            let child = child_ref(joiner.core());
            Some(self.shared.register::<M::Err>(child))
        });
        self.locals.lock().push(Box::pin(local.runner));
        local.handle
    }

    /// Spawns a child (as [`spawn`](Self::spawn) does) and returns once it has called
    /// [`Ready::ready`] on the [`Ready`] it was given, with the value it reported and its handle:
    /// trio's `nursery.start`. A server child reports the port it bound, and only then does the
    /// body start its clients.
    ///
    /// If the child ends before it is ready, `start` returns its failure (in supervisor mode; in
    /// the default mode the failure fails the scope, which then returns it), its cancellation,
    /// or [`NotReady`] if it ended well. A child that drops its `Ready` keeps running and `start`
    /// waits for it to end.
    ///
    /// # Cancel safety
    /// Dropping the future does not stop the child: it stays the scope's child, and what it
    /// reports is dropped.
    ///
    /// ```
    /// # #[klaw::main(workers = 2)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// let (tx, rx) = klaw::channel::bounded::<u32>(1);
    /// let got = klaw::scope!(|s| {
    ///     let (capacity, server) = s
    ///         .start(move |ready| async move {
    ///             ready.ready(rx.capacity()); // listening
    ///             rx.recv().await.unwrap()
    ///         })
    ///         .await?;
    ///     tx.send(capacity.unwrap() as u32).await?;
    ///     Ok(server.await?)
    /// })?;
    /// assert_eq!(got, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start<F, C, V, M>(
        &self,
        child: F,
    ) -> Result<(V, ScopeHandle<'_, C::Ok, C::Err>), Error>
    where
        F: FnOnce(Ready<V>) -> C,
        C: Spawnable + ChildKind<M>,
        V: Send + 'static,
    {
        let (sender, receiver) = crate::channel::oneshot::channel();
        let handle = self.spawn(child(Ready::new(sender)));
        start::wait_until_ready(receiver, handle).await
    }

    /// [`start`](Self::start) for a child that may borrow, polled by the scope itself (as
    /// [`spawn_local`](Self::spawn_local)).
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// let greeting = String::from("hello");
    /// let length = klaw::scope!(|s| {
    ///     let (length, _child) = s.start_local(|ready| async { ready.ready(greeting.len()) }).await?;
    ///     Ok(length)
    /// })
    /// .unwrap();
    /// assert_eq!(length, 5);
    /// # });
    /// ```
    pub async fn start_local<F, C, V, M>(
        &self,
        child: F,
    ) -> Result<(V, ScopeHandle<'_, OkOf<C>, ErrOf<C>>), Error>
    where
        F: FnOnce(Ready<V>) -> C,
        C: IntoTask + ChildKind<M>,
        C::Future: Send + 'env,
        ErrOf<C>: Into<BoxError>,
        V: Send + 'static,
    {
        let (sender, receiver) = crate::channel::oneshot::channel();
        let handle = self.spawn_local(child(Ready::new(sender)));
        start::wait_until_ready(receiver, handle).await
    }

    /// A set of children whose outcomes come back in the order they finish: see [`ChildSet`].
    ///
    /// ```
    /// # #[klaw::main(workers = 2)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// let first = klaw::scope!(|s| {
    ///     let mut set = s.child_set();
    ///     set.spawn(klaw::time::sleep(std::time::Duration::from_secs(9)));
    ///     set.spawn(async {});
    ///     let first = set.next_finished().await;
    ///     set.cancel_all("the first is enough");
    ///     Ok(first.is_some())
    /// })?;
    /// assert!(first);
    /// # Ok(())
    /// # }
    /// ```
    pub fn child_set<T, E>(&self) -> ChildSet<'_, 'env, T, E>
    where
        T: Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        ChildSet::new(self)
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

    /// True once the scope was cancelled: by [`cancel`](Self::cancel), a failure or its
    /// deadline, or by what encloses it (a cancel region, its task), as a region's
    /// [`Token`](crate::cancel::Token) reports; trio's `cancel_called` leaves out the last. Once
    /// it is true, a child spawned in the scope starts cancelled, and its body never runs. (One
    /// exception: a scope run by a foreign executor's `block_on` inside a blocking task's
    /// closure, which nothing can drop, runs on as if its task had not been cancelled.)
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

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        // A scope that returned leaves the runtime's list now; one dropped before it returned
        // stays in it while its children end (`ScopeShared::close_view`).
        self.shared.close_view();
    }
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.name)
            .field("cancelled", &self.shared.region.reason())
            .field("limit", &self.shared.limit)
            .finish_non_exhaustive()
    }
}
