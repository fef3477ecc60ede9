//! A runtime's end: [`Runtime::shutdown`] (a grace period, then every task left cancelled, then
//! a report) and what dropping a runtime does, wherever that happens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::context::{self, Context};
use super::stats::wait_until;
use super::{CANCEL_GRACE, LAST_RESORT_GRACE, Runtime, ShutdownReport};
use crate::sync::{Mutex, Ordering};

impl Runtime {
    /// Shuts down: waits up to `grace` for live tasks to end, then cancels the rest (reason
    /// `Shutdown`) and returns what happened. A timeout is never a panic or an untyped error
    /// that could escape: a grace period that ran out is `report.grace_expired`.
    ///
    /// Tasks may still spawn during the grace period. After it, every task is cancelled at once
    /// but those under a shield: a shield holds the shutdown as it holds any cancel of its task,
    /// and a scope opened in it keeps its children (and may start more). After one more second,
    /// every task left is cancelled directly; a worker stuck in a body that never yields, and
    /// blocking closures, get a quarter of a second more to notice, then are reported
    /// `abandoned`.
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
        // Nobody reads this report: the caller got its own when it asked.
        spawn_detached(name, self, move |mut runtime| {
            let _report = runtime.shutdown_now(grace);
        })
        .err()
    }

    /// Runs the executor on threads of the shutdown's own until `deadline` or until every task
    /// has ended, so the cancelled tasks are polled (and dropped) even if every worker is stuck;
    /// they steal from the workers' queues. Each task polled there is cancelled before its body
    /// runs, but a shield's own code goes on, and may block the thread that polls it for good.
    /// So not this thread, which only starts the runners and waits for them until `deadline`:
    /// one runner now, and another every [`RUNNER_EVERY`] while none has ended, so that a
    /// runner stuck in one task's poll (left, with that task reported abandoned, as a stuck
    /// worker is) holds up no task queued behind it (a runner is a worker for that time, which
    /// takes the queues of stuck workers). If no thread can be started, this one runs the
    /// executor itself.
    fn last_resort(&self, deadline: Instant) {
        let (ran, has_run) = std::sync::mpsc::channel::<()>();
        loop {
            let executor = self.executor().clone();
            let shared = self.shared.clone();
            let run = move || {
                let context = Context {
                    executor: executor.clone(),
                    shared: shared.clone(),
                    is_worker: false,
                };
                // The tasks polled (and dropped) here may hold tokio resources.
                let _tokio = shared.tokio.enter();
                let _context = context::enter(context);
                async_io::block_on(executor.run(shared.stats.idle(deadline)));
            };
            let ran = ran.clone();
            let name = format!("{}-last-resort", self.shared.blocking.thread_name());
            let started = spawn_detached(name, run, move |run| {
                run();
                let _ = ran.send(());
            });
            if let Err(run) = started {
                run();
                return;
            }
            let wait = RUNNER_EVERY.min(deadline.saturating_duration_since(Instant::now()));
            match has_run.recv_timeout(wait) {
                // A runner ended: every task has, or the deadline passed.
                Ok(()) => return,
                Err(_) if Instant::now() >= deadline => return,
                // Every runner is still at it, one perhaps stuck in a poll: one more.
                Err(_) => {}
            }
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

        // Cancel what is left but what a shield holds: every task not under a shield is
        // cancelled if it waits, or cancels itself when next polled, and the blocking pool
        // cancels such closures. The children of a scope under a shield are left to the shield,
        // which holds the cancel of its own task, as on every other path. If every worker is
        // stuck in a body that never yields, the cancelled tasks are dropped at the last resort
        // below, which does not depend on any worker.
        stats.cancel_for_shutdown(false);
        self.shared.blocking.cancel_for_shutdown(false);
        let cancel_deadline = Instant::now() + CANCEL_GRACE;
        let mut last_deadline = cancel_deadline;
        // Only the workers run tasks meanwhile. Were this thread to run one, it could be a child
        // this step leaves to its scope's task, computing until it hears a cancel that only its
        // scope's next poll (queued behind it) or the last resort below would bring.
        let all_cancelled_ended = stats.wait_idle(cancel_deadline);
        // Every task is cancelled now, directly, or has ended: the last resort if tasks are
        // left (a stuck worker, a cleanup longer than the grace, a task under a stuck one that
        // never heard the cancel). From here on every spawn is refused, a scope's child
        // included, and the pool's threads may retire.
        stats.cancel_for_shutdown(true);
        self.shared.blocking.cancel_for_shutdown(true);
        if !all_cancelled_ended {
            last_deadline = Instant::now() + LAST_RESORT_GRACE;
            self.last_resort(last_deadline);
        }

        // Stop the workers; each leaves after its current poll.
        self.workers.stop.store(true, Ordering::Release);
        self.workers.stop_event.notify(usize::MAX);
        let worker_count = self.threads.len();
        wait_until(&self.workers.exit_event, last_deadline, || {
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
        stats.settle_spawns(last_deadline);
        stats.wait_idle(last_deadline);
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

/// How often the shutdown's last resort starts another runner while none has ended (see
/// `Runtime::last_resort`).
const RUNNER_EVERY: Duration = Duration::from_millis(25);

/// Runs `run(value)` on a new thread named `name`, which nothing joins; gives `value` back if no
/// thread could be started. Through a slot rather than moved into the thread's closure: a thread
/// that cannot be started drops its closure, and `value` must come back rather than be dropped.
fn spawn_detached<V: Send + 'static>(
    name: String,
    value: V,
    run: impl FnOnce(V) + Send + 'static,
) -> Result<(), V> {
    let slot = Arc::new(Mutex::new(Some(value)));
    let handed = slot.clone();
    let started = std::thread::Builder::new().name(name).spawn(move || {
        let value = handed.lock().take();
        if let Some(value) = value {
            run(value);
        }
    });
    let given_back = match started {
        Ok(_detached) => None,
        Err(_) => slot.lock().take(),
    };
    given_back.map_or(Ok(()), Err)
}
