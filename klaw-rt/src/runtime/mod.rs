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
use std::time::{Duration, Instant};

use crate::runtime::executor::Executor;
use event_listener::Event;

use crate::remote::RemoteBackend;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::task::TaskHandle;
use crate::task::spec::is_large;
use crate::time::clock::VirtualClock;
use blocking::BlockingPool;
pub(crate) use spawn::Placement;
use spawn::spawn_closure;
pub use spawn::{SpawnOn, Spawnable};

use context::Context;
pub use inline_task::InlineTask;
use stats::{Stats, wait_until};
use tokio_context::{OwnedTokio, TokioContext};

/// How long shutdown waits, after cancelling, for workers to leave their current poll and for
/// cancelled blocking closures to return. What is still running then is reported abandoned.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

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
                    let shutdown = shared.stats.shutdown_flag();
                    crate::task::current::with_shutdown_flag(shutdown, || match clock {
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

    /// Shuts down: waits up to `grace` for live tasks to end, then cancels the rest (reason
    /// `Shutdown`) and returns what happened. A timeout is never a panic or an untyped error
    /// that could escape: a grace period that ran out is `report.grace_expired`.
    ///
    /// Tasks may still spawn during the grace period. After it, pending tasks are cancelled at
    /// once; a worker stuck in a body that never yields, and blocking closures, get one more
    /// second to notice, then are reported `abandoned`.
    ///
    /// Call it from outside the runtime: the thread that built it, once its `block_on` has
    /// returned. Inside one of the runtime's own tasks or blocking closures it cannot wait for
    /// the task that called it, which holds a thread of the runtime (tokio panics there). It
    /// then returns at once, without waiting, with `report.inside_runtime` set, and
    /// [`into_result`](ShutdownReport::into_result) is an error that says so; the shutdown goes
    /// on in the background as asked (the grace period, then cancelling), and so does dropping
    /// the runtime there. To stop work from inside, cancel it: through its task's handle, a
    /// cancel [`Token`](crate::cancel::Token), or by returning from the scope.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().workers(2).build()?;
    /// let quick = rt.spawn(klaw::time::sleep(Duration::from_millis(1)));
    /// let slow = rt.spawn(klaw::time::sleep(Duration::from_secs(60)));
    /// let report = rt.shutdown(Duration::from_millis(200));
    /// assert_eq!((report.succeeded, report.cancelled, report.grace_expired), (1, 1, true));
    /// # drop((quick, slow));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        if !self.runs_this_thread() {
            return self.shutdown_now(grace);
        }
        // Counted now: the tasks that end from here on end after this call has returned.
        let started = Instant::now();
        let report = self.shared.stats.report(false, Duration::ZERO);
        if let Some(mut runtime) = self.take().shut_down_elsewhere(grace) {
            // No thread to hand it to: shut down here after all, as slow as that is.
            return runtime.shutdown_now(grace);
        }
        ShutdownReport { abandoned: 0, inside_runtime: true, elapsed: started.elapsed(), ..report }
    }

    /// True on a thread of this runtime: one of its workers, or of its blocking pool's threads.
    /// A shutdown there would wait for the very task (or destructor) that asked for it.
    fn runs_this_thread(&self) -> bool {
        let worker = context::with_current(|current| {
            current.is_some_and(|c| c.is_worker && Arc::ptr_eq(&c.shared, &self.shared))
        });
        worker || self.shared.blocking.runs_this_thread()
    }

    /// Moves the runtime out of `self`, which is left shut down (its drop does nothing).
    fn take(&mut self) -> Runtime {
        Runtime {
            executor: self.executor.take(),
            shared: self.shared.clone(),
            threads: std::mem::take(&mut self.threads),
            workers: self.workers.clone(),
            tokio: std::mem::take(&mut self.tokio),
        }
    }

    /// Shuts down on a thread of its own, which nothing joins: what a shutdown asked for on one
    /// of the runtime's own threads does. Gives the runtime back if no thread could be started.
    fn shut_down_elsewhere(self, grace: Duration) -> Option<Runtime> {
        let name = format!("{}-shutdown", self.shared.blocking.thread_name());
        // Through a slot rather than moved into the closure: a thread that cannot be started
        // drops its closure, and the runtime must come back rather than be dropped here.
        let slot = Arc::new(Mutex::new(Some(self)));
        let handed = slot.clone();
        let started = std::thread::Builder::new().name(name).spawn(move || {
            let runtime = handed.lock().take();
            if let Some(mut runtime) = runtime {
                // Nobody reads this report: the caller got its own when it asked.
                let _report = runtime.shutdown_now(grace);
            }
        });
        match started {
            Ok(_detached) => None,
            Err(_) => slot.lock().take(),
        }
    }

    fn shutdown_now(&mut self, grace: Duration) -> ShutdownReport {
        // The grace periods are real time even under a paused clock: they bound how long this
        // thread blocks, and a stuck worker must not hold it longer. (A virtual grace period
        // would also be over as soon as every task waited, cancelling tasks that were on time.)
        let started = Instant::now();
        let stats = self.shared.stats.clone();
        // Saturating: a grace period too long for an `Instant` (`Duration::MAX`) waits thirty
        // years, as klaw's timers do, rather than panic.
        let all_ended = stats.wait_idle(crate::time::deadline_after(started, grace));

        // Cancel what is left: every task polled from now on cancels itself, every waiting task
        // is cancelled (and so woken), and the blocking pool cancels its queued and running
        // closures. This does not depend on any worker: a worker stuck in a body that never
        // yields holds up only that task.
        stats.cancel_all_for_shutdown();
        self.shared.blocking.shutdown();
        let cancel_deadline = Instant::now() + CANCEL_GRACE;
        // This thread runs the executor too, so the cancelled tasks are polled (and dropped)
        // even if every worker is stuck; it steals from their queues.
        let executor = self.executor().clone();
        let context =
            Context { executor: executor.clone(), shared: self.shared.clone(), is_worker: false };
        {
            // The tasks polled (and dropped) here may hold tokio resources.
            let _tokio = self.shared.tokio.enter();
            let _context = context::enter(context);
            async_io::block_on(executor.run(stats.idle(cancel_deadline)));
        }
        drop(executor);

        // Stop the workers; each leaves after its current poll.
        self.workers.stop.store(true, Ordering::Release);
        self.workers.stop_event.notify(usize::MAX);
        let worker_count = self.threads.len();
        wait_until(&self.workers.exit_event, cancel_deadline, || {
            self.workers.exited.load(Ordering::Acquire) == worker_count
        });
        for thread in std::mem::take(&mut self.threads) {
            if thread.is_finished() {
                // A worker that panicked outside any task has nothing left to report.
                let _ = thread.join();
            }
        }
        // With the workers gone this is the last strong reference: dropping the executor drops
        // every task still in it, and each publishes `Cancelled(Shutdown)` as it goes. (A stuck
        // worker keeps its own reference; its one task is what the report calls abandoned.)
        drop(self.executor.take());
        // A spawn from another thread that began before the cancelling has its task counted
        // (live, then ended) before the report; any later one is refused, counted as cancelled.
        stats.settle_spawns(cancel_deadline);
        stats.wait_idle(cancel_deadline);
        if let Some(clock) = &self.shared.clock {
            // Nothing moves the clock now: what still waits on it is due (and a timer's waker,
            // which can hold a task that holds the clock, is let go).
            clock.stop();
        }
        // Last: klaw's tasks, which may hold tokio resources, are gone now.
        self.tokio.shutdown();
        stats.report(!all_ended, started.elapsed())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.executor.is_none() {
            return;
        }
        if context::thread_is_ending() || self.shared.tokio.thread_local_destroyed() {
            // Dropped by a thread-local's destructor as its thread ends: klaw's own thread-locals
            // (the current runtime, clock, task, frames) may be gone already, and a shutdown polls
            // and drops tasks, which reads them. So may tokio's (feature `tokio`), which entering
            // its context needs: tokio panics there, and a panic in a thread-local's destructor
            // aborts the process. It runs on a thread of its own instead.
            std::thread::scope(|scope| {
                scope.spawn(|| self.shutdown_now(Duration::ZERO));
            });
            return;
        }
        if self.runs_this_thread() {
            // Dropped by one of its own tasks (or a destructor one runs): as `shutdown` there,
            // it goes on in the background, once that task has returned.
            if let Some(mut runtime) = self.take().shut_down_elsewhere(Duration::ZERO) {
                runtime.shutdown_now(Duration::ZERO);
            }
            return;
        }
        self.shutdown_now(Duration::ZERO);
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
