//! A worker's own queue: where a task that yields, or a channel's hand-off that lost the
//! worker's next-task slot, waits for the worker that ran it, instead of the shared queue.
//!
//! Why: on the shared queue, such a task goes to whichever worker looks first. Tasks that pass
//! messages to each other (four producers and four consumers on one channel, say) then run on
//! both workers at once, a task rarely twice in a row on the same core, and every message's
//! cache lines, and each task's own state, cross between the cores. Kept on the worker that
//! ran them, they take turns on one core, as a channel's two ends already do through the
//! next-task slot (`run.rs`). Measured (`benches/README.md`, **A worker's own queue**): 1M `u64`
//! through `bounded(64)` between four producers and four consumers on two workers of klaw's
//! runtime, 62–64 ns a message before, 18–25 after (kanal on tokio: 23–29).
//!
//! **Nothing waits there for long.** The worker that queued a task takes its own queue's first
//! before the shared queue (but the shared queue's first on every [`SHARED_FIRST_EVERY`]th
//! task, so a stream of yields cannot hold it up). Only work that stays short stays together: a
//! run of [`HELP_AFTER`] (100 µs) or longer that ends with tasks in the worker's own queue wakes
//! a sleeping worker, which takes one from it ([`Registry::steal`]), as any woken worker that
//! finds the shared queue empty does. So tasks that compute for long between yields still
//! spread over the workers; the price is that two tasks whose runs stay shorter than that share
//! one worker while another sleeps. A run that never ends (a body that computes without an
//! `.await`, or blocks its thread outside klaw's blocking helpers) ends no run to call for help:
//! a worker that goes to sleep while tasks wait in another's own queue looks again after
//! [`STUCK_LOOK_FIRST`], and, while that worker keeps beginning runs, after twice as long each
//! time up to [`STUCK_LOOK_MAX`]; if it began none since, it is stuck, and the sleeper hands its
//! tasks to the shared queue ([`Stuck`]), where every worker finds them. A worker that stops, or that blocks in a blocking helper within a task's
//! run, first hands its own queue to the shared one (waking a sleeper for it); the thread that
//! drains the executor at shutdown takes from every own queue (`Executor::run_draining`).
//!
//! **No lost wake-up.** What is in a worker's own queue is that worker's to run, and it is awake:
//! the task was queued during one of its runs, it takes its own queue before it sleeps, and a
//! worker that stops or blocks hands its queue over. So no sleeper needs waking for it. A
//! sleeper that misses a call for help (it was registering as the call came) leaves the work to
//! its owner, and its watch over stuck workers still takes the tasks of one that never returns.

use std::sync::Arc;
#[cfg(not(klaw_loom))]
use std::time::Duration;

use super::State;
use super::queue::{Entry, Queue};
use crate::sync::{AtomicUsize, Mutex, Ordering};

/// A run at least this long that ends with tasks in the worker's own queue wakes a sleeping
/// worker to take them: a wake-up costs the waker a system call and the woken thread a context
/// switch, tens of microseconds on a busy virtual machine, so shorter runs keep their tasks.
/// Measured with four producers and four consumers on one channel (two workers): with 20 µs,
/// runs stretched by the OS now and then still woke the other worker, and rounds spread over
/// both took 20–44 ns a message (medians 21–34); with 100 µs, 20–26 (medians 21–25).
#[cfg(not(klaw_loom))]
pub(super) const HELP_AFTER: Duration = Duration::from_micros(100);

/// Every this many tasks, a worker takes the shared queue's first before its own queue's.
pub(super) const SHARED_FIRST_EVERY: u64 = 61;

/// A worker's own queue, and how many runs its worker has begun: a worker whose count does not
/// move while tasks wait in its queue is stuck in one run (see [`Stuck`]).
pub(super) struct WorkerQueue {
    pub(super) tasks: Queue,
    runs: AtomicUsize,
}

impl WorkerQueue {
    /// The worker begins a run. Only it writes the count, so a load and a store do.
    pub(super) fn run_begins(&self) {
        self.runs.store(self.runs.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

/// Every worker's own queue, for a woken worker to take from.
#[derive(Default)]
pub(super) struct Registry {
    queues: Mutex<Vec<Arc<WorkerQueue>>>,
}

impl Registry {
    /// One task from another worker's own queue, for a worker that was woken (or found a worker
    /// stuck, or drains the executor at shutdown) and found the shared queue and its own empty.
    pub(super) fn steal(&self, mine: Option<&WorkerQueue>) -> Option<Entry> {
        let queues = self.queues.lock();
        queues
            .iter()
            .filter(|queue| mine.is_none_or(|mine| !std::ptr::eq(Arc::as_ptr(queue), mine)))
            .find_map(|queue| queue.tasks.pop())
    }

    /// Takes every queue's tasks out (the executor is dropped: nothing runs them any more).
    pub(super) fn drain(&self) -> Vec<Entry> {
        let queues: Vec<_> = self.queues.lock().clone();
        let mut drained = Vec::new();
        for queue in queues {
            while let Some(entry) = queue.tasks.pop() {
                drained.push(entry);
            }
        }
        drained
    }

    /// The other workers' queues that hold tasks now, each with its worker's count of runs.
    #[cfg(not(klaw_loom))]
    fn waiting_elsewhere(&self, mine: Option<&WorkerQueue>) -> Vec<(Arc<WorkerQueue>, usize)> {
        let queues = self.queues.lock();
        queues
            .iter()
            .filter(|queue| mine.is_none_or(|mine| !std::ptr::eq(Arc::as_ptr(queue), mine)))
            .filter(|queue| !queue.tasks.is_empty())
            .map(|queue| (queue.clone(), queue.runs.load(Ordering::Relaxed)))
            .collect()
    }
}

/// A worker's own queue while its `run` lasts, registered for others to take from. Dropped (the
/// worker stops), it hands what is left to the shared queue.
pub(super) struct OwnQueue<'a> {
    state: &'a State,
    queue: Arc<WorkerQueue>,
}

impl<'a> OwnQueue<'a> {
    pub(super) fn register(state: &'a State) -> Self {
        let queue = Arc::new(WorkerQueue { tasks: Queue::new(), runs: AtomicUsize::new(0) });
        state.own_queues.queues.lock().push(queue.clone());
        OwnQueue { state, queue }
    }

    pub(super) fn queue(&self) -> &WorkerQueue {
        &self.queue
    }
}

impl Drop for OwnQueue<'_> {
    fn drop(&mut self) {
        let removed = {
            let mut queues = self.state.own_queues.queues.lock();
            let position = queues.iter().position(|queue| Arc::ptr_eq(queue, &self.queue));
            position.map(|index| queues.swap_remove(index))
        };
        drop(removed); // outside the lock (this worker still holds the queue)
        hand_over(self.state, &self.queue.tasks);
    }
}

/// Moves what `own` holds to the shared queue and wakes a sleeper for it: its worker stops, or
/// blocks.
pub(super) fn hand_over(state: &State, own: &Queue) {
    let mut moved = false;
    while let Some(entry) = own.pop() {
        moved |= state.push_unless_closed(entry);
    }
    if moved && state.sleeper_to_wake() {
        state.wake_one();
    }
}

/// How long a worker that goes to sleep while tasks wait in another worker's own queue sleeps
/// before it looks whether that worker is stuck in one run; doubled after each look that finds
/// it was not, up to [`STUCK_LOOK_MAX`].
#[cfg(not(klaw_loom))]
pub(super) const STUCK_LOOK_FIRST: Duration = Duration::from_millis(1);

/// The longest a sleeping worker waits between two looks at another worker's own queue: how
/// long, at most, a task waits there behind a run that does not end.
#[cfg(not(klaw_loom))]
pub(super) const STUCK_LOOK_MAX: Duration = Duration::from_millis(32);

/// A sleeping worker's watch over the tasks that wait in other workers' own queues: a run that
/// never ends (a body that computes without yielding, or blocks its thread without one of
/// klaw's blocking helpers) ends no run, so no call for help comes from it. The sleeper looks
/// again after a while; a queue that still holds tasks while its worker began no run since is
/// behind a stuck worker, and the sleeper hands its tasks to the shared queue.
#[cfg(not(klaw_loom))]
pub(super) struct Stuck {
    seen: Vec<(Arc<WorkerQueue>, usize)>,
    timer: async_io::Timer,
}

#[cfg(not(klaw_loom))]
impl Stuck {
    /// A watch over what waits in other workers' queues now, or `None` if nothing does.
    pub(super) fn watch(
        state: &State,
        mine: Option<&WorkerQueue>,
        after: Duration,
    ) -> Option<Self> {
        let seen = state.own_queues.waiting_elsewhere(mine);
        (!seen.is_empty()).then(|| Stuck { seen, timer: async_io::Timer::after(after) })
    }

    /// Ready once the time is up: true if a worker was stuck (its queue still held tasks and it
    /// began no run since), whose tasks it then handed to the shared queue, all of them at once,
    /// for any worker to take.
    pub(super) fn poll_stuck(
        &mut self,
        state: &State,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<bool> {
        use std::future::Future;
        std::pin::Pin::new(&mut self.timer).poll(cx).map(|_| {
            let mut found = false;
            for (queue, runs) in &self.seen {
                if !queue.tasks.is_empty() && queue.runs.load(Ordering::Relaxed) == *runs {
                    hand_over(state, &queue.tasks);
                    found = true;
                }
            }
            found
        })
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Poll;

    use std::future::Future;

    use super::super::Executor;
    use super::{OwnQueue, STUCK_LOOK_FIRST, WorkerQueue};

    /// Spawns a task that yields `yields` times, counting its polls in `polls`.
    fn spawn_yielding(executor: &Executor, yields: usize, polls: &Arc<AtomicUsize>) {
        let polls = polls.clone();
        executor.spawner().spawn(std::future::poll_fn(move |cx| {
            if polls.fetch_add(1, Ordering::SeqCst) == yields {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
    }

    #[test]
    fn a_worker_that_stops_hands_its_own_queue_to_the_shared_one() {
        let executor = Executor::new();
        let state = executor.state();
        let own = OwnQueue::register(state);
        let polls = Arc::new(AtomicUsize::new(0));
        spawn_yielding(&executor, 1, &polls);
        // Taken from the shared queue and run as this worker would: the yield stays with it.
        let entry = state.queue.pop().expect("spawned");
        executor.run_entry(entry, Some(own.queue()));
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert!(state.queue.is_empty(), "the yield waits in the worker's own queue");
        assert_eq!(own.queue().tasks.len(), 1);
        drop(own); // the worker stops
        assert_eq!(state.queue.len(), 1, "handed to the shared queue");
        assert!(executor.try_tick());
        assert_eq!(polls.load(Ordering::SeqCst), 2, "and run from there");
    }

    /// A worker goes to sleep while a task waits in another worker's own queue; after a while
    /// it looks again (its timer wakes it), once `meanwhile` has run. Gives whether it took and
    /// ran that task.
    fn sleeper_after_a_while(meanwhile: impl FnOnce(&WorkerQueue)) -> bool {
        let executor = Executor::new();
        let state = executor.state();
        let (busy, sleeping) = (OwnQueue::register(state), OwnQueue::register(state));
        let polls = Arc::new(AtomicUsize::new(0));
        spawn_yielding(&executor, 0, &polls);
        busy.queue().tasks.push(state.queue.pop().expect("spawned"));
        let mut pace = super::super::Pace::new();
        let mut tick = std::pin::pin!(executor.tick_paced(&mut pace, Some(sleeping.queue())));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(tick.as_mut().poll(&mut cx).is_pending(), "nothing to take yet: it sleeps");
        std::thread::sleep(4 * STUCK_LOOK_FIRST);
        meanwhile(busy.queue());
        let took = tick.as_mut().poll(&mut cx).is_ready();
        assert_eq!(polls.load(Ordering::SeqCst), usize::from(took));
        took
    }

    #[test]
    fn a_sleeping_worker_takes_from_the_own_queue_of_a_worker_stuck_in_one_run() {
        assert!(sleeper_after_a_while(|_| {}), "the other worker began no run since");
    }

    #[test]
    fn a_sleeping_worker_leaves_the_own_queue_of_a_worker_that_moves_on_to_it() {
        let took = sleeper_after_a_while(WorkerQueue::run_begins);
        assert!(!took, "the other worker is running its tasks: they stay with it");
    }

    #[test]
    fn another_worker_takes_from_a_workers_own_queue_only_when_it_steals() {
        let executor = Executor::new();
        let state = executor.state();
        let (mine, theirs) = (OwnQueue::register(state), OwnQueue::register(state));
        let polls = Arc::new(AtomicUsize::new(0));
        spawn_yielding(&executor, 1, &polls);
        let entry = state.queue.pop().expect("spawned");
        executor.run_entry(entry, Some(theirs.queue()));
        assert!(state.own_queues.steal(Some(theirs.queue())).is_none(), "not from its own");
        let stolen = state.own_queues.steal(Some(mine.queue())).expect("the other's yield");
        executor.run_entry(stolen, Some(mine.queue()));
        assert_eq!(polls.load(Ordering::SeqCst), 2, "it ran on the worker that took it");
    }
}
