//! The runtime: worker threads on klaw's executor (`executor.rs`, on `async-task`), a bounded
//! blocking pool, and a graceful shutdown that reports what happened to every task.
//!
//! Safe code, but for two places: the run queue's entries (`executor/queue.rs`), which forget
//! the type of the task they hold so that tasks of every type share the queue; and a task whose
//! core lives in its own allocation (`in_task.rs`).
#![deny(unsafe_code)]

pub(crate) mod blocking;
mod builder;
mod config;
mod context;
mod dump;
#[doc(hidden)]
pub mod entry;
mod executor;
mod handle;
mod in_task;
mod inline_task;
pub(crate) mod limit;
mod paused;
mod shutdown;
pub(crate) mod spawn;
pub(crate) mod stats;
mod tokio_context;
mod waiting;

pub use builder::{BuildError, Builder};
pub use config::{
    ConfigError, DEFAULT_MAX_BLOCKING_THREADS, MAX_BLOCKING_THREADS, MAX_WORKERS, MachineInfo,
    RuntimeConfig, WORKERS_ENV, WorkersFrom,
};
pub use dump::RuntimeDump;
pub(crate) use dump::{ChildSnapshot, ScopeSnapshot, ScopeView};
pub use handle::{Handle, NoRuntime};
pub use stats::{ShutdownReport, ShutdownTimedOut};

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::runtime::executor::Executor;
use event_listener::Event;

use crate::remote::RemoteBackend;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use crate::task::TaskHandle;
use crate::task::spec::is_large;
use crate::time::clock::VirtualClock;
use blocking::BlockingPool;
pub(crate) use spawn::Placement;
use spawn::spawn_closure;
pub use spawn::{SpawnOn, Spawnable};

use context::Context;
pub use inline_task::InlineTask;
use stats::Stats;
use tokio_context::{OwnedTokio, TokioContext};

/// How long shutdown waits, after cancelling, for workers to leave their current poll and for
/// cancelled blocking closures to return, and for shielded cleanups to finish.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// How long shutdown waits once more if tasks are left after [`CANCEL_GRACE`], once it has
/// cancelled every task, a shielded scope's children included. What is still running then is
/// reported abandoned.
const LAST_RESORT_GRACE: Duration = Duration::from_millis(250);

/// What every handle of a runtime shares. It never owns the executor, so tasks (which hold this)
/// cannot keep the executor, and so themselves, alive after shutdown.
pub(crate) struct Shared {
    stats: Arc<Stats>,
    blocking: BlockingPool,
    config: RuntimeConfig,
    /// Where remote tasks go; `None`: they run here.
    backend: Option<Arc<dyn RemoteBackend>>,
    /// The virtual clock of a runtime built with `start_paused(true)`; `None`: real time.
    clock: Option<Arc<VirtualClock>>,
    /// The tokio runtime's handle (feature `tokio`, `Builder::tokio(true)`), which every thread
    /// that polls this runtime's tasks enters once.
    tokio: TokioContext,
}

/// Tells the workers to leave `Executor::run`, and counts them out.
#[derive(Default)]
struct Workers {
    stop: AtomicBool,
    stop_event: Event,
    exited: AtomicUsize,
    exit_event: Event,
}

impl Workers {
    async fn stopped(&self) {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let listener = self.stop_event.listen();
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }
}

/// Counts a worker out even if it unwinds.
struct ExitGuard(Arc<Workers>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.exited.fetch_add(1, Ordering::AcqRel);
        self.0.exit_event.notify(usize::MAX);
    }
}

/// A klaw runtime: `workers` threads polling tasks, plus a bounded pool for blocking closures.
///
/// Build one with [`Runtime::builder`]; `#[klaw::main]` and `#[klaw::test]` build one for you.
/// Dropping a runtime is `shutdown(Duration::ZERO)`: every task still live is cancelled.
///
/// ```
/// use std::time::Duration;
/// let rt = klaw::Runtime::builder().workers(2).build()?;
/// let handle = rt.spawn(async { 21 * 2 });
/// assert_eq!(rt.block_on(handle).unwrap(), 42);
/// let report = rt.shutdown(Duration::from_secs(1));
/// assert_eq!((report.succeeded, report.cancelled), (1, 0));
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
pub struct Runtime {
    /// `None` once shut down. Workers and `block_on` hold the other strong references.
    executor: Option<Arc<Executor>>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    workers: Arc<Workers>,
    /// The tokio runtime, if it has one; shut down after every klaw task has ended.
    tokio: OwnedTokio,
}

impl Runtime {
    /// A builder; `Runtime::builder().build()` gives the detected configuration.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().build()?; // detected workers, KLAW_WORKERS honoured
    /// assert!(rt.worker_count() >= 1);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn start(
        config: RuntimeConfig,
        thread_name: String,
        blocking_keep_alive: Duration,
        backend: Option<Arc<dyn RemoteBackend>>,
    ) -> Result<Self, BuildError> {
        // A paused runtime has one worker (the builder checks it), which moves the clock.
        let clock = config.start_paused.then(VirtualClock::new);
        // First, so that every thread started below can enter it.
        #[cfg(feature = "tokio")]
        let (owned_tokio, tokio) =
            if config.tokio { OwnedTokio::start(&thread_name)? } else { Default::default() };
        // Without the feature `config.tokio` is never set: `Builder::tokio` does not exist.
        #[cfg(not(feature = "tokio"))]
        let (owned_tokio, tokio) = <(OwnedTokio, TokioContext)>::default();
        let blocking = BlockingPool::new(
            config.max_blocking_threads,
            blocking_keep_alive,
            thread_name.clone(),
            clock.clone(),
            tokio.clone(),
        );
        let workers = config.workers;
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared { stats, blocking, config, backend, clock, tokio });
        let mut runtime = Runtime {
            executor: Some(Arc::new(Executor::new())),
            shared,
            threads: Vec::with_capacity(workers),
            workers: Arc::new(Workers::default()),
            tokio: owned_tokio,
        };
        // On a runtime's only worker a task that yields stays there (see `coop::is_sole_worker`).
        let sole_worker = workers == 1;
        for index in 0..workers {
            let context = Context {
                executor: runtime.executor().clone(),
                shared: runtime.shared.clone(),
                is_worker: true,
            };
            let workers = runtime.workers.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{thread_name}-worker-{index}"))
                .spawn(move || {
                    let _exit = ExitGuard(workers.clone());
                    let executor = context.executor.clone();
                    let clock = context.shared.clock.clone();
                    // Once for the thread's life, not per poll (before klaw's context, so the
                    // guards drop in reverse order).
                    let tokio = context.shared.tokio.clone();
                    let _tokio = tokio.enter();
                    let shared = context.shared.clone();
                    let _context = context::enter(context);
                    crate::coop::set_sole_worker(sole_worker);
                    let shutdown = shared.stats.shutdown_phase();
                    crate::task::current::with_shutdown_phase(shutdown, || match clock {
                        None => async_io::block_on(executor.run(workers.stopped())),
                        Some(clock) => {
                            async_io::block_on(paused::drive(&executor, &clock, &workers));
                        }
                    });
                })
                .map_err(BuildError::SpawnThread)?;
            runtime.threads.push(thread);
        }
        Ok(runtime)
    }

    fn executor(&self) -> &Arc<Executor> {
        self.executor.as_ref().expect("the executor lives until shutdown")
    }

    /// Spawns a task: what a scope's `s.spawn` takes ([`Spawnable`]). A future
    /// (`Send + 'static`) or a [`Task`](crate::task::Task) runs on the workers; a
    /// [`BlockingTask`](crate::task::BlockingTask) (what `#[klaw::task(blocking)]` builds) runs
    /// on the blocking pool. The returned handle's cancel
    /// token exists before the task is scheduled.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(2).build()?;
    /// let handles: Vec<_> = (0..4u64).map(|i| rt.spawn(async move { i * i })).collect();
    /// let squares: Vec<u64> = rt.block_on(async {
    ///     let mut out = Vec::new();
    ///     for h in handles { out.push(h.await.unwrap()); }
    ///     out
    /// });
    /// assert_eq!(squares, [0, 1, 4, 9]);
    ///
    /// #[klaw::task(blocking)]
    /// fn file_len(path: String) -> std::io::Result<u64> {
    ///     Ok(std::fs::metadata(path)?.len())
    /// }
    /// let len = rt.spawn(file_len("Cargo.toml".into())); // on the blocking pool
    /// assert!(rt.block_on(len).unwrap() > 0);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn spawn<T: Spawnable>(&self, task: T) -> TaskHandle<T::Ok, T::Err> {
        task.__spawn_on(SpawnOn { executor: Some(self.executor().spawner()), shared: &self.shared })
    }

    /// Runs `f` on the blocking pool, so it cannot stall the workers. At most
    /// `max_blocking_threads` closures run at once; the rest wait their turn. A cancelled
    /// closure that has not started never runs; one that has should poll
    /// [`is_cancelled`](crate::cancel::is_cancelled).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().max_blocking_threads(2).build()?;
    /// let len = rt.spawn_blocking(|| std::fs::read_to_string("Cargo.toml").map(|s| s.len()));
    /// assert!(rt.block_on(len).unwrap().is_ok());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> TaskHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        spawn_closure(&self.shared, f)
    }

    /// Runs `future` to completion on this thread, with this runtime as the current one (so
    /// [`Handle::current`] finds it). Tasks keep running on the workers meanwhile.
    ///
    /// # Panics
    /// If called on one of a runtime's worker threads, where blocking would stall the tasks that
    /// `future` may wait for: `.await` it instead.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let sum = rt.block_on(async {
    ///     let a = klaw::Handle::current().unwrap().spawn(async { 1 });
    ///     a.await.unwrap() + 1
    /// });
    /// assert_eq!(sum, 2);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn block_on<F: std::future::IntoFuture>(&self, future: F) -> F::Output {
        // A large future goes down as a pointer: copied into each frame of a debug build, it
        // would overflow the stack. Decided at compile time: a small future takes the second
        // branch only, as it always did.
        if const { is_large::<F>() || is_large::<F::IntoFuture>() } {
            self.block_on_future(boxed_future(future))
        } else {
            self.block_on_future(future.into_future())
        }
    }

    fn block_on_future<F: Future>(&self, future: F) -> F::Output {
        assert!(
            !context::with_current(|c| c.is_some_and(|c| c.is_worker)),
            "Runtime::block_on called on a klaw worker thread; `.await` the future instead"
        );
        let context = Context {
            executor: self.executor().clone(),
            shared: self.shared.clone(),
            is_worker: false,
        };
        // For the whole call: the root future of `#[klaw::main]`/`#[klaw::test]` polls here.
        let _tokio = self.shared.tokio.enter();
        let _context = context::enter(context);
        // A budget for each poll, as in a task (and as tokio's `block_on` gives): a loop there
        // over always-ready channels yields, so a `select!`'s other arms and a deadline get in.
        let future = crate::coop::block_on_budget(future);
        match &self.shared.clock {
            None => async_io::block_on(future),
            Some(clock) => paused::block_on(clock, future),
        }
    }

    /// A cloneable handle for spawning from elsewhere. It does not keep the runtime alive:
    /// after shutdown, what it spawns is cancelled at once (reason `Shutdown`).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.handle();
    /// let from_thread = std::thread::spawn(move || handle.spawn(async { 7 })).join().unwrap();
    /// assert_eq!(rt.block_on(from_thread), Ok(7));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn handle(&self) -> Handle {
        Handle { spawner: self.executor().spawner().clone(), shared: self.shared.clone() }
    }

    /// Worker threads actually running.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(3).build()?;
    /// assert_eq!(rt.worker_count(), 3);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn worker_count(&self) -> usize {
        self.threads.len()
    }

    /// The configuration this runtime was built with.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(2).build()?;
    /// assert_eq!(rt.config().workers, 2);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// Tasks spawned and not yet ended (async and blocking).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let forever = rt.spawn(std::future::pending::<()>());
    /// assert_eq!(rt.live_tasks(), 1);
    /// forever.cancel("done");
    /// let _ = rt.block_on(forever);
    /// assert_eq!(rt.live_tasks(), 0);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn live_tasks(&self) -> usize {
        self.shared.stats.live()
    }

    /// The live tree of this runtime: every open scope with its children (name, id, state),
    /// and every task that waits, with how long ago it first waited. Print it to see why a
    /// program hangs (a `#[klaw::test(timeout)]` that expires prints it); see [`RuntimeDump`].
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let stuck = rt.spawn(klaw::Task::new(std::future::pending::<()>()).name("stuck"));
    /// std::thread::sleep(std::time::Duration::from_millis(20)); // let it start and wait
    /// let tree = rt.dump().to_string();
    /// assert!(tree.contains("task `stuck`"), "{tree}");
    /// stuck.cancel("seen");
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn dump(&self) -> RuntimeDump {
        self.shared.stats.dump()
    }

    /// True if remote tasks spawned here go to a remote backend.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().local().build()?;
    /// assert!(!rt.has_remote_backend());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn has_remote_backend(&self) -> bool {
        self.shared.backend.is_some()
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.threads.len())
            .field("live_tasks", &self.shared.stats.live())
            .field("config", &self.shared.config)
            .finish()
    }
}

/// Runs a future to completion on this thread, without a runtime: timers and channels work,
/// spawning needs a [`Runtime`]. For tests and small tools. The future runs with no
/// cooperative budget, even when this is called inside a task, and on real time, even on a
/// paused runtime's thread (whose virtual clock could not move while this blocks it).
///
/// ```
/// assert_eq!(klaw::runtime::block_on(async { 1 + 1 }), 2);
/// ```
pub fn block_on<F: std::future::IntoFuture>(future: F) -> F::Output {
    // As in `Runtime::block_on`: a large future goes down as a pointer, decided at compile time.
    if const { is_large::<F>() || is_large::<F::IntoFuture>() } {
        block_on_outside_tasks(boxed_future(future))
    } else {
        block_on_outside_tasks(future.into_future())
    }
}

/// `future` as a future on the heap. A function of its own, so that the copies a debug build
/// makes on the way are in a frame that is gone before the future is polled.
fn boxed_future<F: std::future::IntoFuture>(future: F) -> std::pin::Pin<Box<F::IntoFuture>> {
    Box::pin(future.into_future())
}

fn block_on_outside_tasks<F: Future>(future: F) -> F::Output {
    crate::poller::outside_tasks(|| {
        // Without a runtime means real time too, also on a paused runtime's thread (its worker,
        // its `block_on`): a timer made there would take the virtual clock, which cannot move
        // while this call blocks the thread the clock waits for.
        let _real_time = crate::time::clock::enter(None);
        async_io::block_on(crate::coop::unconstrained(future))
    })
}
