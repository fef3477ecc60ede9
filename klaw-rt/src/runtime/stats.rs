//! Counters of live and ended tasks, and the report `Runtime::shutdown` gives.
//!
//! Finished tasks leave nothing behind: a runtime that has run ten million short tasks holds no
//! more memory than one that ran ten. A finished task leaves only an increment in one of these
//! counters; the only per-task list is of the tasks *waiting* right now (so a shutdown can wake
//! them), and a task leaves it when it ends. `tests/no_leaks.rs` checks the heap.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::sync::Weak;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use event_listener::{Event, Listener};
use slab::Slab;

use crate::runtime::dump::{RuntimeDump, ScopeView};

use crate::sync::{AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering, fence};
use crate::task::core::{Header, HeaderRef};
use crate::task::shutdown_phase::ShutdownPhase;
use crate::task::state::Kind;
use crate::task::{CancelReason, TaskId};

/// Shards of the counters: each thread counts into its own cache line, so spawning on one thread
/// and finishing on another does not bounce a shared line for every task.
const SHARDS: usize = if cfg!(klaw_loom) { 2 } else { 16 };
// (Two under loom: every shard's counters are model objects, and a count reads them all.)

#[derive(Debug, Default)]
#[repr(align(128))] // two cache lines: also defeats the adjacent-line prefetcher
struct Shard {
    spawned: AtomicU64,
    /// Spawns under way on this shard's threads (see [`Stats::begin_spawn`]).
    spawning: AtomicU64,
    /// Indexed by [`Kind::index`]; index 0 (pending) is unused.
    ended: [AtomicU64; 6],
}

fn my_shard() -> usize {
    // A process-wide static outlives any loom model, so this counter is std's.
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// The tasks that are waiting to be woken (they returned `Pending` at least once and have not
/// ended): the ones a shutdown must wake to cancel, since no queue holds them. Sharded by task
/// id, so a task finds its entry without carrying a key; a task that never waits is never here.
/// Each with when it first waited, for [`RuntimeDump`](crate::runtime::RuntimeDump).
#[derive(Debug, Default)]
struct Parked {
    shards: [CachePadded<Mutex<ParkedShard>>; SHARDS],
}

/// The waiting tasks of one shard, each with when it first waited.
type ParkedShard = HashMap<TaskId, (HeaderRef, Instant)>;

impl Parked {
    fn shard(&self, id: TaskId) -> MutexGuard<'_, ParkedShard> {
        self.shards[(id.as_u64() % SHARDS as u64) as usize].lock()
    }
}

/// The scopes open on this runtime, for [`RuntimeDump`](crate::runtime::RuntimeDump). Weak: the
/// list never keeps a scope alive; each scope removes itself when it closes.
#[derive(Default)]
struct OpenScopes(Mutex<Slab<Weak<dyn ScopeView>>>);

impl fmt::Debug for OpenScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OpenScopes").field(&self.0.lock().len()).finish()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    shards: [Shard; SHARDS],
    /// Notified at every task end, so a shutdown waiting for zero live tasks re-counts.
    ended_event: Event,
    /// How many wait for `ended_event` (a shutdown does): only then does a task's end notify
    /// it. `Event::notify` takes the event's lock and a full fence even with nobody listening,
    /// and every task ends once.
    watching_ends: AtomicUsize,
    /// Set when shutdown starts cancelling: a task it cancels that is polled from then on
    /// cancels itself.
    shutting_down: ShutdownPhase,
    /// Tasks spawned after the runtime shut down: cancelled before they were ever live.
    refused: AtomicU64,
    parked: Parked,
    scopes: OpenScopes,
}

impl Stats {
    /// The phase itself, for a worker thread to show to the code it runs
    /// (`current::with_shutdown_phase`).
    pub(crate) fn shutdown_phase(&self) -> &ShutdownPhase {
        &self.shutting_down
    }

    /// True if shutdown has started cancelling what is left, and cancels `task` directly.
    #[inline]
    pub(crate) fn shutdown_cancels(&self, task: &Header) -> bool {
        self.shutting_down.cancels(task)
    }

    /// Lists a task that is about to wait. If the shutdown cancels it, it is cancelled here,
    /// since the shutdown may have looked at the list before it was on it.
    pub(crate) fn park(&self, task: HeaderRef) {
        let id = task.header().id();
        let replaced = self.parked.shard(id).insert(id, (task.clone(), Instant::now()));
        debug_assert!(replaced.is_none(), "a task is listed once");
        // The shard's lock orders this with `cancel_for_shutdown`: whichever takes it second
        // sees the other's task or phase.
        if self.shutting_down.cancels(task.header()) {
            task.cancel(CancelReason::Shutdown);
        }
    }

    /// The task ended: it no longer waits.
    pub(crate) fn unpark(&self, id: TaskId) {
        let removed = self.parked.shard(id).remove(&id);
        drop(removed); // outside the lock: it may be the last reference to the task's core
    }

    /// Starts the end, or its last resort (`every_task`; see `ShutdownPhase`): from now on
    /// every task the shutdown cancels cancels itself when polled, and each such task waiting now
    /// is cancelled (which wakes it, so it is dropped when next polled).
    pub(crate) fn cancel_for_shutdown(&self, every_task: bool) {
        if every_task {
            self.shutting_down.cancel_every_task();
        } else {
            self.shutting_down.cancel_roots();
        }
        for shard in &self.parked.shards {
            let waiting: Vec<HeaderRef> = shard
                .lock()
                .values()
                .filter(|(task, _)| self.shutting_down.cancels(task.header()))
                .map(|(task, _)| task.clone())
                .collect();
            // Outside the shard's lock: a cancel runs the task's hooks.
            for task in waiting {
                task.cancel(CancelReason::Shutdown);
            }
        }
    }

    /// A scope opened on this runtime; the key closes it.
    pub(crate) fn scope_opened(&self, scope: Weak<dyn ScopeView>) -> usize {
        self.scopes.0.lock().insert(scope)
    }

    pub(crate) fn scope_closed(&self, key: usize) {
        let removed = self.scopes.0.lock().try_remove(key);
        drop(removed); // outside the lock
    }

    /// The live tree: open scopes and waiting tasks.
    pub(crate) fn dump(&self) -> RuntimeDump {
        let mut waiting = HashMap::new();
        for shard in &self.parked.shards {
            waiting.extend(shard.lock().iter().map(|(id, entry)| (*id, entry.clone())));
        }
        let scopes: Vec<_> = self.scopes.0.lock().iter().map(|(_, s)| s.clone()).collect();
        // Snapshots outside the list's lock: each takes its own scope's lock.
        let scopes = scopes.iter().filter_map(|s| s.upgrade()?.snapshot()).collect();
        RuntimeDump::new(self.live(), waiting, scopes)
    }

    pub(crate) fn task_spawned(&self) {
        // Release: whoever sees this task's end also sees its spawn (see `live`).
        self.shards[my_shard()].spawned.fetch_add(1, Ordering::Release);
    }

    /// Starts a spawn: `None` once a shutdown cancels what is left (for a child of a scope under
    /// a shield, `under_shield`, once it cancels every task), and the task must then be refused
    /// ([`task_refused`](Self::task_refused)). A SeqCst fence between the count and the phase's
    /// load, and one between the last phase's store in
    /// [`cancel_for_shutdown`](Self::cancel_for_shutdown) and the loads of
    /// [`settle_spawns`](Self::settle_spawns): either the shutdown sees this spawn under way and
    /// waits for it (its task then ends or is live, and counted either way), or this spawn sees
    /// the phase. Without it, a task spawned from another thread while the shutdown reports
    /// could be counted as spawned and not yet ended, and reported abandoned. (Fences, not
    /// SeqCst accesses: the two sides touch different words, and loom checks fences.)
    pub(crate) fn begin_spawn(&self, under_shield: bool) -> Option<SpawnUnderWay<'_>> {
        let under_way = SpawnUnderWay(&self.shards[my_shard()].spawning);
        under_way.0.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        // Refused, it is no longer under way: the guard's drop says so.
        (!self.shutting_down.refuses(under_shield, Ordering::Relaxed)).then_some(under_way)
    }

    /// Waits until no spawn that began before the shutdown started cancelling is under way (a
    /// spawn takes microseconds), or `deadline` passes.
    pub(crate) fn settle_spawns(&self, deadline: Instant) {
        // Pairs with the fence in `begin_spawn`; the flag was stored before this is called.
        fence(Ordering::SeqCst);
        // Acquire, with the release of `SpawnUnderWay`'s drop: the spawn's counts are seen.
        while self.shards.iter().any(|shard| shard.spawning.load(Ordering::Acquire) != 0) {
            if Instant::now() >= deadline {
                return;
            }
            crate::sync::yield_thread();
        }
    }

    /// A task spawned after shutdown, which never runs: counted as cancelled, never as live.
    pub(crate) fn task_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn task_ended(&self, kind: Kind) {
        // SeqCst, with `watching_ends` here and in `WatchEnds::new`, and with the loads of
        // `live`: either a watcher's count of live tasks sees this end, or this sees the
        // watcher and notifies it (it listens before it counts).
        self.shards[my_shard()].ended[kind.index()].fetch_add(1, Ordering::SeqCst);
        if self.watching_ends.load(Ordering::SeqCst) != 0 {
            self.ended_event.notify(usize::MAX);
        }
    }

    /// Counts the caller as waiting for task ends while the guard lives.
    fn watch_ends(&self) -> WatchEnds<'_> {
        self.watching_ends.fetch_add(1, Ordering::SeqCst);
        WatchEnds(&self.watching_ends)
    }

    fn ended_total(&self, kind: Kind) -> u64 {
        self.shards.iter().map(|shard| shard.ended[kind.index()].load(Ordering::SeqCst)).sum()
    }

    /// Tasks spawned and not yet ended. Ends are summed before spawns: every end we count has
    /// its spawn counted too, so the result is never below the true count at the moment the
    /// ends were read, and zero means none was live then.
    pub(crate) fn live(&self) -> usize {
        let ended: u64 = Kind::TERMINAL.iter().map(|kind| self.ended_total(*kind)).sum();
        let spawned: u64 = self.shards.iter().map(|s| s.spawned.load(Ordering::Acquire)).sum();
        usize::try_from(spawned.saturating_sub(ended)).unwrap_or(usize::MAX)
    }

    /// Blocks until no task is live or `deadline` passes; returns whether none is live.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> bool {
        let _watching = self.watch_ends();
        wait_until(&self.ended_event, deadline, || self.live() == 0)
    }

    /// Like [`wait_idle`](Self::wait_idle), as a future, for a thread that runs the executor
    /// while it waits.
    pub(crate) async fn idle(&self, deadline: Instant) -> bool {
        // Real time even under a paused clock: shutdown's grace bounds how long the thread that
        // shuts down blocks (see `Runtime::shutdown_now`).
        let mut timer = async_io::Timer::at(deadline);
        let _watching = self.watch_ends();
        loop {
            if self.live() == 0 {
                return true;
            }
            let listener = self.ended_event.listen();
            if self.live() == 0 {
                return true;
            }
            let timed_out = futures_lite::future::or(
                async {
                    listener.await;
                    false
                },
                async {
                    (&mut timer).await;
                    true
                },
            )
            .await;
            if timed_out {
                return self.live() == 0;
            }
        }
    }

    pub(crate) fn report(&self, grace_expired: bool, elapsed: Duration) -> ShutdownReport {
        ShutdownReport {
            succeeded: self.ended_total(Kind::Success),
            failed: self.ended_total(Kind::Error),
            cancelled: self.ended_total(Kind::Cancelled) + self.refused.load(Ordering::Relaxed),
            panicked: self.ended_total(Kind::Panicked),
            timed_out: self.ended_total(Kind::TimedOut),
            abandoned: self.live() as u64,
            grace_expired,
            inside_runtime: false,
            elapsed,
        }
    }
}

/// A spawn under way (see [`Stats::begin_spawn`]), until dropped.
pub(crate) struct SpawnUnderWay<'a>(&'a AtomicU64);

impl Drop for SpawnUnderWay<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// Blocks until `done()` holds or `deadline` passes, waking on `event`. Returns `done()`.
/// A waiter for task ends, counted in `Stats::watching_ends` until dropped.
struct WatchEnds<'a>(&'a AtomicUsize);

impl Drop for WatchEnds<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) fn wait_until(event: &Event, deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        let listener = event.listen();
        if done() {
            return true;
        }
        if listener.wait_deadline(deadline).is_none() {
            return done();
        }
    }
}

/// What happened to the runtime's tasks, over its whole life, as counted when
/// [`Runtime::shutdown`](crate::runtime::Runtime::shutdown) returned.
///
/// A shutdown that runs out of time is not an error that can escape: it is this report with
/// `grace_expired` set (use [`into_result`](Self::into_result) to treat it as one).
///
/// ```
/// use std::time::Duration;
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let _forever = rt.spawn(std::future::pending::<()>());
/// let report = rt.shutdown(Duration::from_millis(10));
/// assert!(report.grace_expired);
/// assert_eq!(report.cancelled, 1);
/// assert!(report.into_result().is_err());
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tasks whose body returned a value (or `Ok`).
    pub succeeded: u64,
    /// Fallible tasks whose body returned `Err`.
    pub failed: u64,
    /// Tasks cancelled before they finished, by user code or by this shutdown. A task spawned
    /// once the shutdown has begun cancelling (from another thread, or by a destructor the
    /// shutdown runs) never runs and is counted here, unless it is under a shield (a child of a
    /// shielded cleanup's scope, or a blocking task such a cleanup awaits), which may start until
    /// the shutdown's cancel grace is over.
    pub cancelled: u64,
    /// Tasks whose body panicked.
    pub panicked: u64,
    /// Tasks whose own timeout passed.
    pub timed_out: u64,
    /// Tasks still running when shutdown returned: a body that never yields, or a blocking
    /// closure that ignores [`is_cancelled`](crate::cancel::is_cancelled). They are cancelled and end
    /// when they next yield or return; nothing waits for them.
    pub abandoned: u64,
    /// True if live tasks remained when the grace period ran out, so they were cancelled.
    pub grace_expired: bool,
    /// True if `shutdown` was called inside one of the runtime's own tasks or blocking closures,
    /// which it cannot wait for: it returned at once, with the counts of that moment and
    /// nothing `abandoned`, and the shutdown goes on in the background once that task has
    /// returned. [`into_result`](Self::into_result) is then an error that says so.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let report = rt.shutdown(Duration::from_secs(1));
    /// assert!(!report.inside_runtime); // called from outside: a full report
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub inside_runtime: bool,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

impl ShutdownReport {
    /// Tasks whose body ran to the end: `succeeded + failed`.
    ///
    /// ```
    /// use klaw::Task;
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let ok = rt.spawn(async { 1 });
    /// let err = rt.spawn(Task::fallible(async { Err::<(), _>(std::fmt::Error) }));
    /// rt.block_on(async { let _ = (ok.await, err.await); });
    /// let report = rt.shutdown(std::time::Duration::from_secs(1));
    /// assert_eq!((report.completed(), report.succeeded, report.failed), (2, 1, 1));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn completed(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// `Ok(self)` if every task ended within the grace period, else a typed error holding the
    /// report (nothing is lost); an error too for a shutdown called inside one of the runtime's
    /// own tasks ([`inside_runtime`](Self::inside_runtime)), which did not wait for anything.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let report = rt.shutdown(std::time::Duration::from_secs(1)).into_result().expect("nothing was running");
    /// assert!(!report.grace_expired);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn into_result(self) -> Result<Self, ShutdownTimedOut> {
        if self.grace_expired || self.abandoned > 0 || self.inside_runtime {
            Err(ShutdownTimedOut(self))
        } else {
            Ok(self)
        }
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} completed ({} succeeded, {} failed), {} cancelled, {} panicked, {} timed out, \
             {} abandoned, in {:?}",
            self.completed(),
            self.succeeded,
            self.failed,
            self.cancelled,
            self.panicked,
            self.timed_out,
            self.abandoned,
            self.elapsed,
        )?;
        if self.grace_expired {
            f.write_str(" (grace period expired: live tasks were cancelled)")?;
        }
        if self.inside_runtime {
            f.write_str(" (so far: called inside one of the runtime's own tasks, it goes on in the background)")?;
        }
        Ok(())
    }
}

/// A shutdown whose grace period ran out before every task ended, or that was called inside
/// one of the runtime's own tasks and so could not wait for them
/// ([`ShutdownReport::inside_runtime`]); holds the full report.
///
/// ```
/// use std::time::Duration;
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let _stuck = rt.spawn(std::future::pending::<()>());
/// let error: klaw::runtime::ShutdownTimedOut = rt.shutdown(Duration::from_millis(5)).into_result().unwrap_err();
/// println!("{error}");
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", headline(.0), .0)]
pub struct ShutdownTimedOut(pub ShutdownReport);

/// What went wrong with the shutdown `report` tells of, and for a call inside the runtime, what
/// to do instead.
fn headline(report: &ShutdownReport) -> &'static str {
    if report.inside_runtime {
        INSIDE_RUNTIME
    } else {
        "shutdown did not finish within its grace period"
    }
}

const INSIDE_RUNTIME: &str = "Runtime::shutdown was called inside one of the runtime's own \
    tasks, which it cannot wait for, so it returned at once and goes on in the background; call \
    it from outside the runtime (after its block_on has returned), or stop the work from inside \
    by cancelling it (a task's handle, a cancel token)";

#[cfg(all(test, klaw_loom))]
mod loom_models {
    //! A spawn racing a shutdown's report: the report counts the spawn (its task live, or ended)
    //! or the spawn is refused; never a task counted after the report was read. And a task
    //! starting to wait as the shutdown begins.
    //!
    //! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use loom::thread;

    use super::Stats;
    use crate::sync::Ordering;
    use crate::task::TaskId;
    use crate::task::core::new_task;

    /// A task that starts to wait as the shutdown's first step begins (`park` racing
    /// `cancel_for_shutdown`): whichever takes the list's shard second sees the other, so a task
    /// not under a shield is cancelled either way, and one under a shield is left to it until
    /// the last resort, which cancels it too.
    #[test]
    fn loom_a_task_that_starts_to_wait_as_the_shutdown_begins_is_cancelled_unless_shielded() {
        loom::model(|| {
            let stats = Arc::new(Stats::default());
            let (root, _root_handle) = new_task::<()>(TaskId::next(), None);
            let (child, _child_handle) = new_task::<()>(TaskId::next(), None);
            child.header().mark_under_shield();
            let (root_ref, child_ref) = (root.header_ref(None), child.header_ref(None));
            let waiting = {
                let stats = stats.clone();
                thread::spawn(move || {
                    stats.park(root_ref);
                    stats.park(child_ref);
                })
            };
            stats.cancel_for_shutdown(false);
            waiting.join().unwrap();
            assert!(root.header().is_cancelled(), "the first step missed a root task");
            assert!(!child.header().is_cancelled(), "the first step cut a scope's child");
            stats.cancel_for_shutdown(true);
            assert!(child.header().is_cancelled(), "the last resort missed a scope's child");
        });
    }

    #[test]
    fn loom_a_spawn_racing_a_shutdown_is_in_its_report_or_refused() {
        loom::model(|| {
            let stats = Arc::new(Stats::default());
            let spawner = {
                let stats = stats.clone();
                thread::spawn(move || match stats.begin_spawn(false) {
                    // Its task stays live: a report must count it.
                    Some(_under_way) => stats.task_spawned(),
                    None => stats.task_refused(),
                })
            };
            stats.shutting_down.cancel_roots();
            // Real time, bounding a model's wait (never reached: the spawn settles).
            let started = Instant::now();
            stats.settle_spawns(started + Duration::from_secs(3600));
            let reported = stats.live();
            spawner.join().unwrap();
            assert_eq!(reported, stats.live(), "a task spawned after the report was read");
        });
    }
}
