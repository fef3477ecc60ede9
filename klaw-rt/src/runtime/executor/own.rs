//! A worker's own queue, and the watch that keeps the tasks in it reachable by the other workers.
//!
//! Why: with one shared queue, every yield of a task (MPMC channel ends yield once before they
//! wait) lets the task run next on whichever worker looks first, so four producers and four
//! consumers of one channel ran on both workers at once, and the ring's cache lines crossed
//! between the cores at every message: 60–65 ns a message on klaw's runtime against 19–20 once a
//! task that yields (and a channel's hand-off that lost the worker's `NextTask` slot) waited in
//! a queue of the worker that ran it (`benches/FINDINGS.md`, **A worker's own queue**). Only those
//! go here, and only from a worker inside [`Executor::run`](super::Executor::run): every other
//! schedule (a spawn, a timer, a wake from another task or thread, a limited scope's next child)
//! goes to the shared queue as before, since it is not known to belong with this worker.
//!
//! The price of such a queue is that its tasks wait for their worker. That is right while the
//! worker makes progress in short runs, and wrong in two cases, each handled by the **watch**:
//! - the worker is stuck in a poll that never returns (a body that spins, or blocks its thread):
//!   its tasks would never run, and a shutdown would find them abandoned instead of cancelled;
//! - its runs are long (tasks that compute for tens of µs and yield): two of them in one own
//!   queue would take turns on one core while another core idles.
//!
//! Each worker counts the runs it begins (`epoch`, written by the worker only, read by the
//! others). A look at another worker's queue ([`Watch::look`]) compares its epoch with the
//! previous look, at least [`PERIOD`] before: if the queue held tasks at both looks and no run
//! began between them, the worker is stuck and every task in its queue is taken; if runs began
//! but they were long ([`LONG_RUN`] or more on average: the time between the looks over the
//! runs begun, so no clock is read per run), half of its queue is taken. A backlog of short runs
//! (a channel's ends, about 1 µs a run) is left where it is: the gain comes from *not* spreading
//! those. What is taken goes to the own queue of the worker that took it.
//!
//! Who looks: an idle worker keeps the watch (`State::watching`: at most one holds it), asleep
//! with a timer of [`PERIOD`] instead of indefinitely, while any worker is in a run; and a busy
//! worker looks every [`FAIR_EVERY`] ticks if [`PERIOD`] has passed (for a worker stuck while the
//! others are busy: nobody would be idle to watch). The rules that keep a watch armed without a
//! race are in `executor.rs`' module doc (**A worker's own queue**) and checked by the loom models
//! in `executor/loom.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
#[cfg(not(klaw_loom))]
use std::time::{Duration, Instant};

use super::State;
use super::queue::Entry;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, SpinMutex};

/// How often the watcher looks at the other workers' queues, and so how long a worker must have
/// begun no run, with tasks in its queue, to be found stuck (between one and two periods). Short
/// enough that a task behind a stuck worker waits little (the book promises at most 32 ms);
/// long enough that a worker making progress is never mistaken for a stuck one, and that the
/// watcher's timer costs nothing measurable. See `benches/FINDINGS.md`, **A worker's own queue,
/// with a watch**, for the measurements.
#[cfg(not(klaw_loom))]
pub(super) const PERIOD: Duration = Duration::from_micros(500);

/// The average run, over a period in which a worker's queue held tasks at both looks, from
/// which half of its queue is taken: its tasks compute rather than pass messages, and should
/// use the idle cores as they would on tokio.
#[cfg(not(klaw_loom))]
const LONG_RUN: Duration = Duration::from_micros(25);

/// A worker takes the shared queue's first before its own every this many ticks (tokio's
/// number), so that a worker whose own queue never empties still runs spawns and wakes from
/// elsewhere; it then also looks at the other workers' queues if [`PERIOD`] has passed.
pub(super) const FAIR_EVERY: u32 = 61;

/// One worker's own queue and its count of runs begun. Written by its worker; other workers
/// read `len` and `epoch`, and take its tasks when the watch says so. On a line of its own.
#[repr(align(128))]
pub(super) struct Worker {
    tasks: SpinMutex<VecDeque<Entry>>,
    /// `tasks.len()`, published (SeqCst) by every push and pop, so that a look needs no lock.
    len: AtomicUsize,
    /// Runs begun. Only the worker writes it.
    epoch: AtomicU64,
}

impl Worker {
    fn new() -> Self {
        Worker {
            tasks: SpinMutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// Queues `entry` at the back (the worker's own thread only; see `State::push_own`).
    pub(super) fn push(&self, entry: Entry) {
        let mut tasks = self.tasks.lock();
        tasks.push_back(entry);
        self.len.store(tasks.len(), Ordering::SeqCst);
    }

    fn extend(&self, entries: VecDeque<Entry>) {
        let mut tasks = self.tasks.lock();
        tasks.extend(entries);
        self.len.store(tasks.len(), Ordering::SeqCst);
    }

    pub(super) fn pop(&self) -> Option<Entry> {
        if self.len() == 0 {
            return None;
        }
        let mut tasks = self.tasks.lock();
        let entry = tasks.pop_front();
        self.len.store(tasks.len(), Ordering::SeqCst);
        entry
    }

    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    /// Takes every task, oldest first. Always under the lock, without a look at `len` first:
    /// a close that drains the queue and a push that then checks `closed` are ordered by the
    /// lock (and the loom model of that race needs nothing stronger than it).
    pub(super) fn take_all(&self) -> VecDeque<Entry> {
        let mut tasks = self.tasks.lock();
        let all = std::mem::take(&mut *tasks);
        self.len.store(0, Ordering::SeqCst);
        all
    }

    /// Takes the older half (rounded up, so a lone task waiting is taken).
    #[cfg_attr(klaw_loom, allow(dead_code))]
    fn take_half(&self) -> VecDeque<Entry> {
        let mut tasks = self.tasks.lock();
        let len = tasks.len();
        let rest = tasks.split_off(len - len / 2);
        let taken = std::mem::replace(&mut *tasks, rest);
        self.len.store(tasks.len(), Ordering::SeqCst);
        taken
    }

    /// Counts a run begun (the worker's own thread only: a load and a store, no lock prefix).
    pub(super) fn began_run(&self) {
        self.epoch.store(self.epoch.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }
}

/// What a look saw of another worker: its epoch, and whether its queue held tasks.
struct Seen {
    /// The worker's address (only compared, never followed: an address keeps `Watch` `Send`).
    worker: usize,
    epoch: u64,
    had_tasks: bool,
}

/// A worker inside [`Executor::run`](super::Executor::run): its own queue, registered with the
/// executor (so that the others can watch it, and shutdown can drain it) for as long as this
/// lives, and what it needs to watch the others. Counted in `State::active` while it is not
/// asleep. Dropped when the run returns (or unwinds): its queue goes to the shared one.
pub(super) struct Watch<'a> {
    state: &'a State,
    pub(super) worker: Arc<Worker>,
    /// Whether this worker queues its yields in its own queue: not on a runtime's only worker
    /// (`coop::is_sole_worker`), where there is no other core for a task to move to and the own
    /// queue, taken before the shared one, would only keep a task that yields (its budget spent,
    /// say) ahead of the ones queued before it for 60 ticks, where the book promises they run.
    pub(super) keeps_own_queue: bool,
    /// Ticks taken, for [`FAIR_EVERY`].
    ticks: u32,
    /// The other workers as the last look saw them.
    seen: Vec<Seen>,
    #[cfg(not(klaw_loom))]
    last_look: Instant,
    /// The watcher's timer, and when it fires. Kept between watches: registering a timer wakes
    /// the thread that waits for the reactor (`async-io` notifies it), so a watch armed while
    /// the timer is still pending (a worker that sleeps again soon after it woke) reuses it.
    #[cfg(not(klaw_loom))]
    timer: Option<(async_io::Timer, Instant)>,
}

impl<'a> Watch<'a> {
    /// Registers a new worker of `state`'s executor, counted as active.
    pub(super) fn register(state: &'a State) -> Self {
        let worker = Arc::new(Worker::new());
        state.workers.lock().push(worker.clone());
        state.active.fetch_add(1, Ordering::SeqCst);
        Watch {
            state,
            worker,
            keeps_own_queue: !crate::coop::is_sole_worker(),
            ticks: 0,
            seen: Vec::new(),
            #[cfg(not(klaw_loom))]
            last_look: Instant::now(),
            #[cfg(not(klaw_loom))]
            timer: None,
        }
    }

    /// The next task for this worker: its own queue's first, or the shared queue's; every
    /// [`FAIR_EVERY`] ticks the shared queue's first, and a look at the other workers.
    pub(super) fn next(&mut self) -> Option<Entry> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % FAIR_EVERY == 0 {
            if self.period_passed() {
                self.look(false);
            }
            return self.state.queue.pop().or_else(|| self.worker.pop());
        }
        self.worker.pop().or_else(|| self.state.queue.pop())
    }

    /// True if a look now would come at least [`PERIOD`] after the last one.
    fn period_passed(&self) -> bool {
        #[cfg(klaw_loom)]
        return true;
        #[cfg(not(klaw_loom))]
        {
            self.last_look.elapsed() >= PERIOD
        }
    }

    /// Looks at every other worker, and takes into this worker's own queue the tasks of one
    /// found stuck (all of them) or, if this worker is `idle`, found running long runs (half);
    /// gives how many it took. The caller made sure the last look was [`PERIOD`] ago or more.
    pub(super) fn look(&mut self, idle: bool) -> usize {
        #[cfg(not(klaw_loom))]
        return self.look_at(idle, Instant::now());
        #[cfg(klaw_loom)]
        self.look_at(idle)
    }

    /// [`look`](Self::look) at `now` (a parameter for the unit tests).
    fn look_at(&mut self, idle: bool, #[cfg(not(klaw_loom))] now: Instant) -> usize {
        #[cfg(not(klaw_loom))]
        let elapsed = now.saturating_duration_since(std::mem::replace(&mut self.last_look, now));
        #[cfg(klaw_loom)]
        let _ = idle;
        let mut seen = Vec::with_capacity(self.seen.len());
        let mut taken = VecDeque::new();
        {
            let workers = self.state.workers.lock();
            for peer in workers.iter().filter(|peer| !Arc::ptr_eq(peer, &self.worker)) {
                let (epoch, has_tasks) = (peer.epoch(), peer.len() > 0);
                let address = std::ptr::from_ref::<Worker>(peer).addr();
                let before = self.seen.iter().find(|seen| seen.worker == address);
                if let Some(before) = before.filter(|before| before.had_tasks && has_tasks) {
                    let runs = epoch.wrapping_sub(before.epoch);
                    if runs == 0 {
                        // No run begun for a whole period, with tasks waiting: stuck.
                        taken.extend(peer.take_all());
                    } else {
                        #[cfg(not(klaw_loom))]
                        if idle && elapsed / u32::try_from(runs).unwrap_or(u32::MAX) >= LONG_RUN {
                            taken.extend(peer.take_half());
                        }
                    }
                }
                seen.push(Seen { worker: address, epoch, had_tasks: has_tasks });
            }
        }
        self.seen = seen;
        let count = taken.len();
        if count > 0 {
            self.worker.extend(taken);
            if self.state.closed.load(Ordering::SeqCst) {
                self.state.drop_queued();
            }
        }
        count
    }

    /// Arms the watch: forgets what earlier looks saw (runs counted since a watch long ago
    /// would make a worker's runs look long), so that the first look only notes, and makes sure
    /// the timer will fire: the one still pending, or one a [`PERIOD`] from now.
    pub(super) fn arm(&mut self) {
        self.seen.clear();
        #[cfg(not(klaw_loom))]
        {
            let now = Instant::now();
            if self.timer.as_ref().is_none_or(|(_, at)| *at <= now) {
                self.set_timer(now + PERIOD);
            }
        }
    }

    /// Starts the watcher's timer again after a look, for one [`PERIOD`] from it.
    #[cfg(not(klaw_loom))]
    pub(super) fn start_timer(&mut self) {
        self.set_timer(self.last_look + PERIOD);
    }

    #[cfg(not(klaw_loom))]
    fn set_timer(&mut self, at: Instant) {
        match &mut self.timer {
            Some((timer, when)) => {
                timer.set_at(at);
                *when = at;
            }
            None => self.timer = Some((async_io::Timer::at(at), at)),
        }
    }

    /// Polls the watcher's timer: true when a look is due. The watcher that stays armed after
    /// the look starts the timer again ([`start_timer`](Self::start_timer)); one that stands
    /// down leaves it spent, so that it is not woken for nothing.
    #[cfg(not(klaw_loom))]
    pub(super) fn poll_timer(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        use std::future::Future;
        let Some((timer, _)) = &mut self.timer else { return false };
        std::pin::Pin::new(timer).poll(cx).is_ready()
    }

    /// Under the model checker the timer is the model's: a look is due each time the model
    /// fires it ([`State::fire_watch_timer`]), and the watcher sleeps until then.
    #[cfg(klaw_loom)]
    pub(super) fn start_timer(&mut self) {}

    #[cfg(klaw_loom)]
    pub(super) fn poll_timer(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        let mut timer = self.state.loom_timer.lock();
        if timer.0 > 0 {
            timer.0 -= 1;
            return true;
        }
        timer.1 = Some(cx.waker().clone());
        false
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        // Leaves the registry first, so that no look takes from this queue after it is moved.
        {
            let mut workers = self.state.workers.lock();
            workers.retain(|worker| !Arc::ptr_eq(worker, &self.worker));
        }
        // What waited behind this worker goes to the shared queue, for the others.
        self.state.share_own_queue(&self.worker);
        self.state.active.fetch_sub(1, Ordering::SeqCst);
        self.state.wake_next_if_queued();
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};
    use std::thread::ThreadId;
    use std::time::{Duration, Instant};

    use super::super::Executor;
    use super::*;

    fn entry(executor: &Executor) -> Entry {
        Entry::new(executor.spawner().build_task((), |()| async {}))
    }

    /// Two workers registered with one executor; `queued` tasks wait in the first one's own
    /// queue. The second looks once, the first begins `runs` runs, and the second looks again
    /// one [`PERIOD`] later, `idle` or busy: gives how many tasks that look took, and how many
    /// were left to the first worker.
    fn taken_by_a_look(queued: usize, runs: u64, idle: bool) -> (usize, usize) {
        let executor = Executor::new();
        let first = Watch::register(executor.state());
        let mut second = Watch::register(executor.state());
        (0..queued).for_each(|_| first.worker.push(entry(&executor)));
        let start = Instant::now();
        assert_eq!(second.look_at(idle, start), 0, "a first look only notes what it saw");
        (0..runs).for_each(|_| first.worker.began_run());
        let taken = second.look_at(idle, start + PERIOD);
        assert_eq!(second.worker.len(), taken, "what is taken goes to the looker's own queue");
        (taken, first.worker.len())
    }

    #[test]
    fn the_own_queue_of_a_worker_that_began_no_run_for_a_period_is_taken_whole() {
        assert_eq!(taken_by_a_look(3, 0, true), (3, 0));
        assert_eq!(taken_by_a_look(3, 0, false), (3, 0), "by a busy worker too");
    }

    #[test]
    fn the_own_queue_of_a_worker_that_makes_progress_in_short_runs_is_left_to_it() {
        // 100 runs in a period of 500 us: 5 us a run, a channel's ends.
        assert_eq!(taken_by_a_look(3, 100, true), (0, 3));
        assert_eq!(taken_by_a_look(1, 1_000, true), (0, 1));
    }

    #[test]
    fn an_idle_worker_takes_half_the_own_queue_of_a_worker_whose_runs_are_long() {
        // 5 runs in a period: 100 us a run.
        assert_eq!(taken_by_a_look(3, 5, true), (2, 1), "the older half, rounded up");
        assert_eq!(taken_by_a_look(1, 5, true), (1, 0), "a lone task waiting too");
        assert_eq!(taken_by_a_look(3, 5, false), (0, 3), "a busy worker leaves them");
    }

    /// The names of the polls that ran, and on which thread.
    type Log = Arc<Mutex<Vec<(&'static str, ThreadId)>>>;

    fn log(log: &Log, name: &'static str) {
        log.lock().unwrap().push((name, std::thread::current().id()));
    }

    /// `workers` threads inside `Executor::run` until the returned sender is dropped.
    fn workers(
        executor: &Arc<Executor>,
        workers: usize,
    ) -> (crate::channel::Sender<()>, Vec<std::thread::JoinHandle<()>>) {
        let (stop, stopped) = crate::channel::bounded::<()>(1);
        let threads = (0..workers)
            .map(|_| {
                let (executor, stopped) = (executor.clone(), stopped.clone());
                std::thread::spawn(move || {
                    async_io::block_on(executor.run(async move {
                        let _ = stopped.recv().await;
                    }));
                })
            })
            .collect();
        (stop, threads)
    }

    #[test]
    fn a_task_that_yields_runs_again_on_its_worker_before_the_shared_queue() {
        let executor = Arc::new(Executor::new());
        let (stop, threads) = workers(&executor, 1);
        let (ran, done) = (Log::default(), std::sync::mpsc::channel::<()>());
        let (spawner, finished) = (executor.spawner().clone(), done.0);
        let mut polls = 0;
        // Its first poll queues another task (in the shared queue), then yields: the yield
        // waits in the worker's own queue, which the worker takes first.
        executor.spawner().spawn(std::future::poll_fn({
            let ran = ran.clone();
            move |cx| {
                polls += 1;
                if polls == 2 {
                    log(&ran, "yielded");
                    return Poll::Ready(());
                }
                let (ran, finished) = (ran.clone(), finished.clone());
                spawner.spawn(async move {
                    log(&ran, "queued");
                    finished.send(()).unwrap();
                });
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }));
        done.1.recv_timeout(Duration::from_secs(10)).expect("both ran");
        drop(stop);
        threads.into_iter().for_each(|thread| thread.join().unwrap());
        let ran = ran.lock().unwrap();
        let names: Vec<_> = ran.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["yielded", "queued"]);
    }

    /// The worker that runs a task's yield gets stuck right after (in the task that the yield's
    /// poll handed a message to, which runs next on that worker and blocks its thread), while
    /// the other worker sleeps, since before the yield: the other worker must be woken to keep
    /// the watch, find the stuck worker after a period, and run the yielded task.
    #[test]
    fn a_task_in_the_own_queue_of_a_worker_stuck_in_a_poll_runs_on_the_other_worker() {
        let executor = Arc::new(Executor::new());
        let (stop, threads) = workers(&executor, 2);
        let ran = Log::default();
        let parked = Arc::new(Mutex::new(None::<Waker>));
        let (waiting, is_waiting) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let mut stuck_polls = 0;
        executor.spawner().spawn(std::future::poll_fn({
            let (ran, parked) = (ran.clone(), parked.clone());
            move |cx| {
                stuck_polls += 1;
                if stuck_polls == 1 {
                    *parked.lock().unwrap() = Some(cx.waker().clone());
                    waiting.send(()).unwrap();
                    return Poll::Pending;
                }
                log(&ran, "stuck");
                let _ = released.recv_timeout(Duration::from_secs(10));
                Poll::Ready(())
            }
        }));
        is_waiting.recv_timeout(Duration::from_secs(10)).unwrap();
        std::thread::sleep(Duration::from_millis(20)); // both workers fall asleep
        let (again, ran_again) = std::sync::mpsc::channel::<()>();
        let mut polls = 0;
        executor.spawner().spawn(std::future::poll_fn({
            let ran = ran.clone();
            move |cx| {
                polls += 1;
                if polls == 2 {
                    log(&ran, "yielded");
                    again.send(()).unwrap();
                    return Poll::Ready(());
                }
                log(&ran, "handed off");
                let consumer = parked.lock().unwrap().take().unwrap();
                crate::coop::with_task_budget(|| crate::coop::hand_off(|| consumer.wake()));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }));
        let ran_while_stuck = ran_again.recv_timeout(Duration::from_secs(5)).is_ok();
        release.send(()).unwrap();
        ran_again.recv_timeout(Duration::from_secs(10)).ok();
        drop(stop);
        threads.into_iter().for_each(|thread| thread.join().unwrap());
        assert!(ran_while_stuck, "the yielded task waited for the stuck worker");
        let ran = ran.lock().unwrap();
        let thread_of = |name| ran.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(thread_of("handed off"), thread_of("stuck"), "the hand-off ran next there");
        assert_ne!(thread_of("yielded"), thread_of("stuck"));
    }
}
