//! klaw's executor: tasks built with `async-task` (the crate under smol-rs's `async-executor`),
//! one queue of runnable tasks shared by the workers, a queue of its own for each worker (for
//! the tasks that yield on it, `executor/own.rs`), and a list of sleeping workers to wake.
//!
//! Why not `async-executor` itself: it keeps every live task in a slab behind one mutex, so
//! that dropping the executor can wake them all; every spawn and every task end takes that
//! lock, and with two or more workers it was the most contended thing in a spawn-heavy program
//! (a fifth of the time of `benches/spawn`). klaw already knows its live tasks (the runtime's
//! counts, and its list of waiting tasks, which shutdown cancels), and shutdown ends every task
//! before it drops the executor, so that slab only repeated what klaw does. Without it a spawn is
//! one allocation, one push and one load: in a prototype, spawn + join of 100k tasks took half
//! the time of `async-executor`'s, and klaw's own spawn + join went from 1.45x to about 1.0x
//! `tokio::spawn` (`benches/FINDINGS.md`).
//!
//! **No lost wake-up.** A worker with nothing to run registers in `sleepers` (its waker, under
//! the lock) and publishes how many sleep (`sleeping`, SeqCst) *before* it looks at the queue a
//! last time; a scheduler pushes *before* it reads `sleeping` (SeqCst). Of the two, at least one
//! sees the other: the worker finds the task, or the scheduler finds a sleeper to wake. A
//! sleeper that was picked but is dropped before it runs anything (its worker was told to stop)
//! passes the wake-up on. The loom models in `executor/loom.rs` check this.
//!
//! **One wake-up at a time.** Waking a worker is a system call for the scheduler and a context
//! switch for the worker, and a worker woken for every spawn falls asleep again at once when the
//! tasks are short. So, as tokio does, a scheduler wakes a sleeper only if no worker is already
//! `searching` (woken, and not yet running a task or asleep again). A searcher that finds a task
//! while more are queued wakes the next sleeper itself, so a burst still reaches every worker.
//! A searcher stops searching *before* its last look at the queue, so a task pushed while it
//! searched, which woke nobody, is seen by that look.
//!
//! **A busy worker yields before it sleeps** (`executor/pace.rs`): one that ran many tasks
//! lately lets the OS run another thread once, then looks at the queue again, because on a busy
//! machine the next task of a burst is often made by a thread waiting for a CPU, and sleeping
//! for it costs a wake-up call and a context switch.
//!
//! **A task queued as a run ends is left to the worker that queued it** (`executor/run.rs`): a
//! task started by a task as it ends (and a task woken during its own poll, when the worker is
//! not inside [`Executor::run`], which has no own queue). That worker looks at the queue next,
//! so it wakes a sleeper only if more than that one task is queued once the run has returned.
//!
//! **A task that yields waits in its worker's own queue** (`executor/own.rs`): a task woken
//! during its own poll, and a channel's hand-off that lost the `NextTask` slot (below), made on
//! a worker inside [`Executor::run`], go to that worker's queue, which it takes before the shared
//! one (the shared one's first every `own::FAIR_EVERY` ticks), and no sleeper is woken to run
//! them (not on a runtime's only worker, `coop::is_sole_worker`, which has no other core to keep
//! them from, and whose yields go to the back of the shared queue as the book promises). The
//! ends of a channel then stay on one core (MPMC 4×4 on klaw's runtime: 19 ns a message
//! against 60–85). Every other schedule goes to the shared queue as before. A worker whose `run`
//! returns or unwinds moves its own queue to the shared one and wakes a sleeper for it; a blocking
//! helper called in a run does the same first (`run::before_blocking`); the executor's drop, and a
//! push that finds it closed, drop what waits in every own queue; `try_tick` takes an own queue's
//! first when the shared queue is empty.
//!
//! **No task waits for ever behind a stuck worker**, which is the invariant of the own queues:
//! while a worker's own queue holds tasks, a sleeping worker keeps the watch (`watching`, at most
//! one: it sleeps with a timer of `own::PERIOD` and looks at every worker's epoch, the count of
//! runs it began, each time the timer fires), or a wake-up to make one keep it is under way, or
//! no worker sleeps (and every busy worker looks when it takes the shared queue's first, if a
//! period has passed). A look takes every task of a worker that held tasks at two looks a period
//! apart and began no run between them, and an idle looker half of those of a worker whose runs
//! averaged `own::LONG_RUN` or more. It holds by three rules, each a store then a load (SeqCst)
//! against another's store then load, so that of the two at least one sees the other:
//! - a worker counts itself in `active` while it is inside `run` and not asleep; one about to
//!   sleep publishes `sleeping`, leaves `active`, then takes the watch if any worker is active
//!   and nobody keeps it;
//! - a worker that pushes to its own queue publishes the push, then reads `watching`: if nobody
//!   keeps the watch and someone sleeps, it wakes a sleeper, which takes the watch as it goes
//!   back to sleep (this worker is active). One wake-up per busy stretch: the watch stays kept
//!   while any worker is active;
//! - the watcher stands down only when no worker is active (then every own queue is empty: only
//!   its worker pushes to it, and empties it before it sleeps): it clears `watching`, then reads
//!   `active` again and keeps the watch if a worker became active meanwhile (which may have seen
//!   the watch still kept, and called nobody). A watcher woken for work clears `watching` as it
//!   wakes, then wakes another sleeper if some worker is active or it took tasks into its own
//!   queue.
//!
//! The loom models in `executor/loom.rs` check each rule (a stuck worker's task taken by a worker
//! that slept before it got stuck; a watch that stands down as that worker becomes active again;
//! a run's end and the executor's drop), and `tests/executor_faults.rs`,
//! `tests/stuck_worker_faults.rs` and `tests/long_runs_spread.rs` the promises.
//!
//! **A channel's hand-off runs next on the worker that made it** (`executor/run.rs`,
//! `NextTask`): the task at the other end of a channel that a task's body just handed a message
//! or a place to is kept for this worker, which runs it as soon as the run returns, before the
//! queue (tokio's LIFO slot), at most three in a row. A second hand-off in the same run takes
//! the slot and sends the first to the queue (this worker's own queue inside `run`; elsewhere
//! the shared one, with its wake-up left to this worker, which then wakes a sleeper if any task
//! is queued at all). The fourth in a row goes to the back of the own queue inside `run`, to the
//! shared queue elsewhere.
//!
//! **After the executor is dropped** (the runtime has shut down), a task that is woken is
//! dropped instead of queued: nothing would ever run it, and queued it would keep itself alive.

use std::future::Future;
use std::sync::Arc;
use std::task::Waker;

use async_task::Runnable;
use futures_lite::future;

use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};

#[cfg(all(test, klaw_loom))]
mod loom;
mod own;
mod pace;
mod queue;
mod run;
mod wait;

use own::{Watch, Worker};
use pace::Pace;
use queue::{Entry, Queue};
pub(crate) use run::at_end_of_run;
use run::{NextTask, Run};
use wait::{Searching, WaitForWork};

/// Ticks a worker runs between two looks at its reactor and at its stop signal. A tick runs one
/// task from the queue and the hand-offs kept for the worker after it (at most
/// `run::MAX_KEPT_IN_A_ROW`), so up to 800 polls.
const BATCH: usize = 200;

/// The executor of one runtime. Its workers call [`run`](Self::run); anyone may spawn through
/// its [`Spawner`].
pub(crate) struct Executor {
    spawner: Spawner,
}

/// What spawns onto an executor without keeping it alive: the executor's state, which outlives
/// it (a task spawned or woken once the executor is dropped is dropped, not queued). Handles
/// and tasks hold this, so a spawn touches no reference count but the task's own and the one
/// its schedule function keeps.
#[derive(Clone)]
pub(crate) struct Spawner {
    state: Arc<State>,
}

struct State {
    queue: Queue,
    /// How many workers are registered in `sleepers`: read without the lock by every schedule,
    /// which takes the lock only when someone sleeps.
    sleeping: AtomicUsize,
    sleepers: Mutex<Sleepers>,
    /// Workers woken (taken off `sleepers`) that have not yet run a task or gone back to sleep.
    /// Incremented under the `sleepers` lock by whoever takes a sleeper off; the woken worker's
    /// `tick` decrements it (see [`Searching`]).
    searching: AtomicUsize,
    /// Set when the executor is dropped: from then on a woken task is dropped, not queued.
    closed: AtomicBool,
    /// The workers inside [`Executor::run`], each with its own queue (`executor/own.rs`).
    workers: Mutex<Vec<Arc<Worker>>>,
    /// How many of those are not asleep: in a run, or looking for one.
    active: AtomicUsize,
    /// A sleeping worker keeps the watch over the others' own queues (see the module doc).
    watching: AtomicBool,
    /// Under the model checker, the watcher's timer: fires not yet seen, and the watcher's waker.
    #[cfg(klaw_loom)]
    loom_timer: Mutex<(usize, Option<Waker>)>,
}

/// The workers waiting for a task, each with the ticket its [`WaitForWork`] holds.
#[derive(Default)]
struct Sleepers {
    next_ticket: u64,
    waiting: Vec<(u64, Waker)>,
}

impl Executor {
    pub(crate) fn new() -> Self {
        // A blocking helper called in a task's run hands on what the run left to its worker.
        #[cfg(not(klaw_loom))]
        let _ = crate::poller::BEFORE_BLOCKING.set(run::before_blocking);
        Executor {
            spawner: Spawner {
                state: Arc::new(State {
                    queue: Queue::new(),
                    sleeping: AtomicUsize::new(0),
                    sleepers: Mutex::new(Sleepers::default()),
                    searching: AtomicUsize::new(0),
                    closed: AtomicBool::new(false),
                    workers: Mutex::new(Vec::new()),
                    active: AtomicUsize::new(0),
                    watching: AtomicBool::new(false),
                    #[cfg(klaw_loom)]
                    loom_timer: Mutex::new((0, None)),
                }),
            },
        }
    }

    /// What spawns onto this executor.
    pub(crate) fn spawner(&self) -> &Spawner {
        &self.spawner
    }

    fn state(&self) -> &State {
        &self.spawner.state
    }

    /// Runs one queued task, if there is one: the shared queue's first, or else the first of a
    /// worker's own queue (this thread is not that worker, which may be stuck).
    pub(crate) fn try_tick(&self) -> bool {
        let entry = self.state().queue.pop().or_else(|| {
            let workers = self.state().workers.lock();
            workers.iter().find_map(|worker| worker.pop())
        });
        match entry {
            Some(entry) => {
                self.run_entry(entry, None);
                true
            }
            None => false,
        }
    }

    /// Runs one task, waiting for one if none is queued.
    pub(crate) async fn tick(&self) {
        self.tick_paced(&mut Pace::new(), None).await;
    }

    /// [`tick`](Self::tick) for a worker that keeps its [`Pace`]: if it has been busy, it
    /// yields its thread once before it sleeps. A worker inside [`run`](Self::run) has its
    /// [`Watch`]: it takes its own queue first, and keeps the watch while it sleeps.
    async fn tick_paced(&self, pace: &mut Pace, mut watch: Option<&mut Watch<'_>>) {
        let mut searching = Searching { state: self.state(), counted: false };
        loop {
            let entry = match watch.as_deref_mut() {
                Some(watch) => watch.next(),
                None => self.state().queue.pop(),
            };
            if let Some(entry) = entry {
                if searching.stop() {
                    self.state().wake_next_if_queued();
                }
                pace.ran();
                let own = watch
                    .as_deref()
                    .filter(|watch| watch.keeps_own_queue)
                    .map(|watch| &*watch.worker);
                self.run_entry(entry, own);
                return;
            }
            // Not searching any more *before* the last look that `WaitForWork` takes.
            searching.stop();
            let yield_first = pace.busy();
            searching.counted = WaitForWork {
                state: self.state(),
                ticket: None,
                yield_first,
                watch: watch.as_deref_mut(),
                asleep: false,
                armed: false,
            }
            .await;
        }
    }

    /// Runs one task, within a [`Run`] that pays the wake-ups its schedules left to this worker,
    /// and then the tasks its hand-offs kept for this worker ([`NextTask`]), one after another,
    /// at most `run::MAX_KEPT_IN_A_ROW`; the next one goes to the queue.
    /// `own`: the worker's own queue if this is a worker inside [`run`](Self::run); each run
    /// begun is counted in its epoch, which the watch reads.
    fn run_entry(&self, entry: Entry, own: Option<&Worker>) {
        let next = NextTask::new(self.state());
        let mut entry = entry;
        for kept_in_a_row in 0.. {
            {
                if let Some(own) = own {
                    own.began_run();
                }
                let _run = Run::enter(self.state(), &next, own);
                entry.run();
            }
            let Some(kept) = next.take() else { return };
            if kept_in_a_row == run::MAX_KEPT_IN_A_ROW {
                match own {
                    // Behind the tasks already in its own queue, on this worker still.
                    Some(own) => self.state().push_own(own, kept),
                    None => self.state().requeue_for_this_worker(kept),
                }
                return;
            }
            entry = kept;
        }
    }

    /// Runs tasks until `stop` completes, giving `stop` (and the reactor the caller's
    /// `block_on` drives) a turn every [`BATCH`] tasks.
    ///
    /// The caller is a worker of this executor for that time: it has an own queue, registered
    /// until `run` returns (or unwinds), when what is left in it goes to the shared queue.
    pub(crate) async fn run<T>(&self, stop: impl Future<Output = T>) -> T {
        let mut watch = Watch::register(self.state());
        let stopped = {
            let watch = &mut watch;
            let run_forever = async move {
                let mut pace = Pace::new();
                loop {
                    for _ in 0..BATCH {
                        self.tick_paced(&mut pace, Some(&mut *watch)).await;
                    }
                    future::yield_now().await;
                }
            };
            future::or(stop, run_forever).await
        };
        // Its own queue goes to the shared one, and a sleeper is woken for it.
        drop(watch);
        // A task this worker meant to take next (see `run`) goes to a sleeper instead.
        self.state().wake_next_if_queued();
        stopped
    }
}

impl Spawner {
    /// True once the executor is dropped: what is spawned from then on is dropped unrun.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::Acquire)
    }

    /// Spawns `future` and forgets it: klaw's runners publish their outcome themselves.
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.build_task((), move |()| future).schedule();
    }

    /// Builds a task whose allocation also holds `metadata`, and whose future `future` makes
    /// from a reference to it (which lives as long as the allocation, so the future may keep a
    /// pointer to it). The task is not scheduled: the caller finishes what must come before it
    /// can run, then calls `Runnable::schedule`. Dropping the runnable instead drops the future
    /// unpolled.
    pub(crate) fn build_task<M, F>(&self, metadata: M, future: impl FnOnce(&M) -> F) -> Runnable<M>
    where
        M: Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let state = self.state.clone();
        // `propagate_panic`: a panic that escaped the runner (its own code, not the user's,
        // which it catches) is kept in the detached task and dropped, not thrown on a worker.
        let (runnable, task) =
            async_task::Builder::new().metadata(metadata).propagate_panic(true).spawn(
                future,
                async_task::WithInfo(move |runnable, info: async_task::ScheduleInfo| {
                    state.schedule(Entry::new(runnable), info.woken_while_running);
                }),
            );
        task.detach();
        runnable
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.state().closed.store(true, Ordering::SeqCst);
        self.state().drop_queued();
        // Wake whoever still waits for work, so their `run` can see it stop (each is taken off
        // the list, so it counts as searching, like any worker a schedule wakes).
        let sleepers = {
            let mut sleepers = self.state().sleepers.lock();
            let woken = std::mem::take(&mut sleepers.waiting);
            self.state().searching.fetch_add(woken.len(), Ordering::SeqCst);
            self.state().sleeping.store(0, Ordering::SeqCst);
            woken
        };
        for (_, waker) in sleepers {
            waker.wake();
        }
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let own_queued: usize = self.state().workers.lock().iter().map(|worker| worker.len()).sum();
        f.debug_struct("Executor")
            .field("queued", &self.state().queue.len())
            .field("own_queued", &own_queued)
            .field("sleeping", &self.state().sleeping.load(Ordering::Relaxed))
            .finish()
    }
}

/// Drops tasks that a closed executor will never run: a task woken after the runtime shut down
/// (one a shutdown abandoned, whose body a shield kept waiting), and whatever a push after the
/// close found queued. This runs inside a waker's `wake`, and the waker's caller may hold a lock
/// while it wakes (event-listener's `notify` holds its list's lock). Dropping a task drops its
/// future: its destructors, its cancel hooks, and the wake-up of whoever awaits it run then, and
/// any of them may take that same lock. So the tasks are dropped on a thread of their own, as
/// tokio drops a task it shut down on its worker rather than in the waker's caller (every task
/// of this executor is `Send`). If no thread can be started, the closure and the tasks in it
/// are dropped here after all: rare, and no worse than before. Under the model checker they
/// are dropped here.
fn drop_late(tasks: Vec<Entry>) {
    if tasks.is_empty() {
        return;
    }
    #[cfg(not(klaw_loom))]
    {
        let _ = std::thread::Builder::new()
            .name("klaw-late-drop".to_owned())
            .spawn(move || drop(tasks));
    }
    #[cfg(klaw_loom)]
    drop(tasks);
}

impl State {
    /// What a woken task's waker calls: queue it, and wake a sleeping worker if there is one,
    /// unless the worker that queues it takes it next (see `run`): the task was woken during its
    /// own poll (`woken_while_running`), or queued as a task ends.
    fn schedule(&self, entry: Entry, woken_while_running: bool) {
        if self.closed.load(Ordering::Acquire) {
            drop_late(vec![entry]);
            return;
        }
        if let run::Keep::Queue { entry, hand_off } = run::keep_for_this_worker(self, entry) {
            // A yield, or a hand-off that lost the worker's slot: this worker's own queue.
            match run::own_queue_here(self, woken_while_running, hand_off) {
                Some(own) => self.push_own(own, entry),
                None => self.enqueue(entry, woken_while_running || hand_off),
            }
        }
    }

    /// Queues `entry` in this worker's own queue (`own`, whose worker is this thread, in a run).
    /// No sleeper is woken to run it, but one is woken to keep the watch if nobody keeps it:
    /// the push is published (SeqCst) before `watching` is read, and a watcher that stands down
    /// stores `watching` before it reads `active` again, which counts this worker.
    fn push_own(&self, own: &Worker, entry: Entry) {
        own.push(entry);
        if self.closed.load(Ordering::SeqCst) {
            drop_late(self.take_queued());
            return;
        }
        self.call_a_watcher();
    }

    /// Wakes a sleeper to keep the watch, if nobody keeps it (it arms as it goes back to sleep,
    /// since this worker is active). Not limited by `searching`: a searcher may be about to run
    /// a task, not to sleep. Once per busy stretch: the watch stays armed while any worker is
    /// active.
    fn call_a_watcher(&self) {
        if !self.watching.load(Ordering::SeqCst) && self.sleeping.load(Ordering::SeqCst) > 0 {
            self.wake_one();
        }
    }

    /// Queues `entry` and wakes a sleeper for it, unless the wake-up is left to this worker
    /// (`at_end`: see `run::leave_wake_up_to_this_worker`).
    fn enqueue(&self, entry: Entry, at_end: bool) {
        if self.push_unless_closed(entry)
            && self.sleeper_to_wake()
            && !run::leave_wake_up_to_this_worker(self, at_end)
        {
            self.wake_one();
        }
    }

    /// Queues `entry`, which this worker was to run next, as it goes to take the queue's
    /// first itself: a sleeper is woken only for the tasks after that one.
    fn requeue_for_this_worker(&self, entry: Entry) {
        if self.push_unless_closed(entry) && self.queue.len() > 1 && self.sleeper_to_wake() {
            self.wake_one();
        }
    }

    /// Pushes `entry` onto the queue; false if the executor closed meanwhile, and then drops
    /// what is queued, since the close may have drained the queue before this push.
    fn push_unless_closed(&self, entry: Entry) -> bool {
        self.queue.push(entry);
        if self.closed.load(Ordering::SeqCst) {
            drop_late(self.take_queued());
            return false;
        }
        true
    }

    /// Moves a worker's own queue to the shared queue, for the other workers, in its order; stops
    /// (dropping the rest) if the executor closed meanwhile. True if anything was moved.
    fn share_own_queue(&self, worker: &own::Worker) -> bool {
        let mut moved = false;
        for entry in worker.take_all() {
            if !self.push_unless_closed(entry) {
                break;
            }
            moved = true;
        }
        moved
    }

    /// Drops every queued task, in the shared queue and in every worker's own queue, which drops
    /// its future (klaw's runner reports it cancelled): what the executor's drop does.
    fn drop_queued(&self) {
        drop(self.take_queued());
    }

    /// Takes every queued task out: the shared queue's, and every worker's own queue's.
    fn take_queued(&self) -> Vec<Entry> {
        let mut taken: Vec<Entry> = std::iter::from_fn(|| self.queue.pop()).collect();
        let own: Vec<_> = {
            let workers = self.workers.lock();
            workers.iter().map(|worker| worker.take_all()).collect()
        };
        taken.extend(own.into_iter().flatten()); // outside the lock
        taken
    }

    /// Someone sleeps and nobody already woken is still searching: one wake-up in flight at a
    /// time.
    fn sleeper_to_wake(&self) -> bool {
        self.sleeping.load(Ordering::SeqCst) > 0 && self.searching.load(Ordering::SeqCst) == 0
    }

    /// A searcher found a task: if more are queued and nobody else is searching, it passes the
    /// search on to a sleeper.
    fn wake_next_if_queued(&self) {
        if !self.queue.is_empty() && self.sleeper_to_wake() {
            self.wake_one();
        }
    }

    /// Takes one sleeper off the list and wakes it, outside the lock.
    fn wake_one(&self) {
        let woken = {
            let mut sleepers = self.sleepers.lock();
            let woken = sleepers.waiting.pop();
            if woken.is_some() {
                self.searching.fetch_add(1, Ordering::SeqCst);
            }
            self.sleeping.store(sleepers.waiting.len(), Ordering::SeqCst);
            woken
        };
        if let Some((_, waker)) = woken {
            waker.wake();
        }
    }
}
