//! The run a worker is in: which executor's task this thread is running right now, and whether a
//! schedule made during that run left its wake-up to this worker.
//!
//! A schedule wakes a sleeping worker so that the task it queued does not wait. But some
//! schedules come at the very end of a run, when the worker that makes them is about to take the
//! next task from the queue itself:
//! - a task woken during its own poll (a yield: `async-task` queues it right after the poll
//!   returns);
//! - what a task starts as it ends ([`at_end_of_run`]): the child a limited scope starts when a
//!   running one gives its slot back.
//!
//! Waking a sleeper for those is a system call for the scheduler and a context switch for the
//! sleeper, which then mostly finds the queue already emptied by the worker that queued the task,
//! and sleeps again. With a limit of 8 and children that yield once, that was four context
//! switches for every five children (`benches/scope`'s limited scope). So such a schedule leaves
//! its wake-up to this worker: when the run ends, the worker wakes a sleeper only if more tasks
//! are queued than the one it takes next. Both cases are needed: in that bench, leaving only the
//! new child's wake-up measured 1.29–1.54x tokio's `JoinSet` + `Semaphore` and leaving both
//! 1.26–1.42x (interleaved pairs), where leaving neither was 1.59–1.68x; leaving only the
//! yield's measured no gain in a loop of the same round.
//!
//! No task waits for it: the worker is awake and about to look at the queue, so it stands in for
//! the sleeper that was not woken, exactly as a searching worker does.
//!
//! A third case comes in the middle of a poll: a channel's hand-off (`coop::hand_off`), a send
//! or a receive waking the task at the other end, which waited for the message or the place this
//! one just gave it. Woken on another worker, the two ends of a channel run at once on two
//! cores, and every message's cache lines cross between them; left to this worker, they take
//! turns on one, as tokio's LIFO slot keeps them. On a 2-core virtual machine whose cores were
//! slow to share lines, two tasks passing 1M `u64` through `bounded(64)` took 44–56 ns a message
//! on two workers against 10 on one; with the hand-off left here (and the two ends waiting for
//! each other without a yield, see `channel/mpmc/yielding.rs`), 11.2–12.6 on two workers
//! (`benches/README.md`, **Channels on klaw's own runtime**). The price is tokio's: a task that
//! hands over a message and then computes for long without waiting keeps the woken task queued
//! until its poll returns, unless another worker is awake to take it. Every other schedule in the middle of a poll (a spawn, a timer, a wake of another
//! task) still wakes a sleeper at once: the poll may go on computing for long, and the task it
//! queued should not wait for that.

use std::cell::Cell;

use super::State;

/// What this thread's current run allows and owes.
#[derive(Clone, Copy)]
struct CurrentRun {
    /// The executor whose task runs here, or null between runs.
    executor: *const State,
    /// The running task is ending: what it queues now runs after it, on this worker.
    ending: bool,
    /// A schedule during this run left its wake-up to this worker.
    wake_owed: bool,
}

impl CurrentRun {
    const NONE: CurrentRun =
        CurrentRun { executor: std::ptr::null(), ending: false, wake_owed: false };
}

#[cfg(not(klaw_loom))]
std::thread_local! {
    static CURRENT: Cell<CurrentRun> = const { Cell::new(CurrentRun::NONE) };
}

// Loom runs its threads on one OS thread: a std thread-local would be shared by all of them.
#[cfg(klaw_loom)]
loom::thread_local! {
    static CURRENT: Cell<CurrentRun> = Cell::new(CurrentRun::NONE);
}

/// One task's run on a worker of `state`'s executor; dropped when the run returns (or unwinds),
/// it pays a wake-up that a schedule left to it.
pub(super) struct Run<'a> {
    state: &'a State,
    /// The run this one is nested in (a task that ticks an executor itself), restored on drop.
    outer: CurrentRun,
}

impl<'a> Run<'a> {
    pub(super) fn enter(state: &'a State) -> Self {
        let run = CurrentRun { executor: state, ending: false, wake_owed: false };
        Run { state, outer: CURRENT.with(|current| current.replace(run)) }
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        let run = CURRENT.with(|current| current.replace(self.outer));
        // This worker takes the next task itself; a sleeper is needed only for the ones after.
        if run.wake_owed && self.state.queue.len() > 1 && self.state.sleeper_to_wake() {
            self.state.wake_one();
        }
    }
}

/// A schedule onto `state` found a sleeper to wake. True if this thread is running a task of
/// the same executor and the schedule comes at the end of that run (`woken_while_running`, or
/// inside [`at_end_of_run`]) or is a channel's hand-off (`coop::hand_off`): the wake-up is left
/// to this worker, which pays it when the run returns if more than one task is queued.
pub(super) fn leave_wake_up_to_this_worker(state: &State, woken_while_running: bool) -> bool {
    CURRENT.with(|current| {
        let mut run = current.get();
        let left = run.ending || woken_while_running || crate::coop::is_handing_off();
        if !std::ptr::eq(run.executor, state) || !left {
            return false;
        }
        run.wake_owed = true;
        current.set(run);
        true
    })
}

/// Runs `end`, the last thing a task does in its run: tasks it queues on this worker's executor
/// (a limited scope's next child) are taken by this worker next, without waking a sleeper for
/// them. Outside a run it just runs `end`.
pub(crate) fn at_end_of_run<R>(end: impl FnOnce() -> R) -> R {
    /// What `ending` was before, restored on drop, also if `end` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_ending(self.0);
        }
    }
    let _restore = Restore(set_ending(true));
    end()
}

/// Sets whether the running task is ending; returns what it was.
fn set_ending(ending: bool) -> bool {
    CURRENT.with(|current| {
        let run = current.get();
        current.set(CurrentRun { ending, ..run });
        run.ending
    })
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use super::super::Executor;
    use super::at_end_of_run;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    type Tick = Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Another worker, which falls asleep when [`fall_asleep`] polls its tick: the queue is
    /// empty then, so it registers as a sleeper, and `woken` counts the wake-ups it is sent.
    struct Sleeper {
        tick: Tick,
        woken: Arc<Count>,
    }

    impl Sleeper {
        /// Shared: the task that lets it fall asleep and the test that counts its wake-ups.
        fn new(executor: &Arc<Executor>) -> Arc<std::sync::Mutex<Self>> {
            let executor = executor.clone();
            let tick: Tick = Box::pin(async move { executor.tick().await });
            Arc::new(std::sync::Mutex::new(Sleeper { tick, woken: Arc::default() }))
        }

        fn fall_asleep(&mut self) {
            let waker = Waker::from(self.woken.clone());
            let polled = self.tick.as_mut().poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending(), "the queue is empty while the task runs");
        }

        fn wake_ups(&self) -> usize {
            self.woken.0.load(Ordering::SeqCst)
        }
    }

    /// Spawns a task whose first poll calls `first` with its waker and returns `Pending`, and
    /// whose second poll ends it.
    fn spawn_polled_twice(executor: &Arc<Executor>, first: impl Fn(&Waker) + Send + 'static) {
        let mut polls = 0;
        executor.spawner().spawn(std::future::poll_fn(move |cx| {
            polls += 1;
            if polls > 1 {
                return Poll::Ready(());
            }
            first(cx.waker());
            Poll::Pending
        }));
    }

    /// Spawns a task whose first poll calls `first` (with the sleeper) and yields, and whose
    /// second poll ends it; the sleeper is shared with the test, which keeps it registered.
    fn spawn_yielding_once(
        executor: &Arc<Executor>,
        sleeper: &Arc<std::sync::Mutex<Sleeper>>,
        first: impl Fn(&mut Sleeper) + Send + 'static,
    ) {
        let sleeper = sleeper.clone();
        spawn_polled_twice(executor, move |waker| {
            first(&mut sleeper.lock().unwrap());
            waker.wake_by_ref();
        });
    }

    #[test]
    fn a_task_that_yields_is_left_to_the_worker_that_ran_it() {
        let executor = Arc::new(Executor::new());
        let sleeper = Sleeper::new(&executor);
        spawn_yielding_once(&executor, &sleeper, Sleeper::fall_asleep);
        assert!(executor.try_tick(), "the task's first poll");
        assert_eq!(sleeper.lock().unwrap().wake_ups(), 0, "the yield woke the sleeper");
        assert!(executor.try_tick(), "this worker runs it again");
        assert!(!executor.try_tick());
    }

    #[test]
    fn a_task_started_as_a_run_ends_is_left_to_the_worker_that_started_it() {
        let executor = Arc::new(Executor::new());
        let sleeper = Sleeper::new(&executor);
        let (asleep, spawner) = (sleeper.clone(), executor.spawner().clone());
        executor.spawner().spawn(async move {
            asleep.lock().unwrap().fall_asleep();
            at_end_of_run(|| spawner.spawn(async {}));
        });
        assert!(executor.try_tick(), "the first task");
        assert_eq!(sleeper.lock().unwrap().wake_ups(), 0, "the start woke the sleeper");
        assert!(executor.try_tick(), "this worker runs the one it started");
        assert!(!executor.try_tick());
    }

    #[test]
    fn a_run_that_leaves_more_than_one_task_queued_wakes_a_sleeper() {
        let executor = Arc::new(Executor::new());
        let sleeper = Sleeper::new(&executor);
        let spawner = executor.spawner().clone();
        spawn_yielding_once(&executor, &sleeper, move |sleeper| {
            sleeper.fall_asleep();
            // Started as the run ends: left to this worker, like the yield.
            at_end_of_run(|| spawner.spawn(async {}));
            assert_eq!(sleeper.wake_ups(), 0, "nothing is owed before the run returns");
        });
        assert!(executor.try_tick());
        assert_eq!(sleeper.lock().unwrap().wake_ups(), 1, "two tasks queued: one for a sleeper");
    }

    /// A waiting task, and a task that wakes it in the middle of its poll, through `wake`, while
    /// the other worker sleeps; the wake-ups the sleeper was sent by the end of that run.
    fn wake_mid_poll(wake: fn(Waker)) -> usize {
        let executor = Arc::new(Executor::new());
        let sleeper = Sleeper::new(&executor);
        let parked = Arc::new(std::sync::Mutex::new(None));
        let waiting = parked.clone();
        spawn_polled_twice(&executor, move |waker| *waiting.lock().unwrap() = Some(waker.clone()));
        assert!(executor.try_tick(), "the waiting task's first poll");
        let asleep = sleeper.clone();
        executor.spawner().spawn(async move {
            asleep.lock().unwrap().fall_asleep();
            wake(parked.lock().unwrap().take().expect("the waiting task left its waker"));
        });
        assert!(executor.try_tick(), "the task that wakes it");
        let wake_ups = sleeper.lock().unwrap().wake_ups();
        assert!(executor.try_tick(), "the woken task, here or on the sleeper");
        assert!(!executor.try_tick());
        wake_ups
    }

    #[test]
    fn a_channel_hand_off_in_the_middle_of_a_poll_is_left_to_the_worker() {
        let wake_ups = wake_mid_poll(|waker| crate::coop::hand_off(|| waker.wake()));
        assert_eq!(wake_ups, 0, "one task queued, which this worker takes next");
    }

    #[test]
    fn any_other_wake_in_the_middle_of_a_poll_wakes_a_sleeper_at_once() {
        assert_eq!(wake_mid_poll(Waker::wake), 1, "the poll may go on computing for long");
    }

    #[test]
    fn a_spawn_in_the_middle_of_a_poll_wakes_a_sleeper_at_once() {
        let executor = Arc::new(Executor::new());
        let sleeper = Sleeper::new(&executor);
        let spawner = executor.spawner().clone();
        spawn_yielding_once(&executor, &sleeper, move |sleeper| {
            sleeper.fall_asleep();
            spawner.spawn(async {});
            // The poll may compute for long after this: the new task must not wait for it.
            assert_eq!(sleeper.wake_ups(), 1);
        });
        assert!(executor.try_tick());
        assert_eq!(sleeper.lock().unwrap().wake_ups(), 1, "one wake-up in flight at a time");
    }
}
