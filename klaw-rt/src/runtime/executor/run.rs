//! The run a worker is in: which executor's task this thread is running right now, whether a
//! schedule made during that run left its wake-up to this worker, and the task it runs next.
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
//! cores, and every message's cache lines cross between them. So this worker keeps the woken
//! task for itself and runs it as soon as the current run returns, before the queue's first
//! ([`NextTask`], tokio's LIFO slot): the two ends take turns on one core, and a task that
//! passes work on finds the one it woke running next, not behind every task queued meanwhile.
//! A second hand-off in the same run takes the slot, and the one it held goes to the queue
//! (with its wake-up left to this worker, as above). After [`MAX_KEPT_IN_A_ROW`] kept tasks in
//! a row the next one is queued, so that two tasks handing each other messages cannot hold the
//! worker for ever. Measured (`benches/FINDINGS.md`, **Channels on klaw's own runtime** and **A
//! channel's hand-off runs next on its worker**): on two workers of a 2-core virtual machine
//! whose cores were slow to share lines, two tasks passing 1M `u64` through `bounded(64)` took
//! 44–56 ns a message, and 11.2–12.6 once hand-offs stayed on the worker (the two ends waiting
//! for each other without a yield, see `channel/mpmc/yielding.rs`); with the slot, 11.0–11.4.
//! Four producers and four consumers on one worker went from 16.7–17.5 ns a message to
//! 10.8–12.0, where the queue had every task run in turn. The price is tokio's: a task that
//! hands over a message and then computes for long without waiting keeps the woken task from
//! every other worker until its poll returns. Every other schedule in the middle of a poll (a
//! spawn, a timer, a wake of another task) still goes to the queue and wakes a sleeper at once:
//! the poll may go on computing for long, and the task it queued should not wait for that.

#![allow(unsafe_code)]

use std::cell::Cell;

use super::State;
use super::own::Worker;
use super::queue::Entry;

/// What this thread's current run allows and owes.
#[derive(Clone, Copy)]
struct CurrentRun {
    /// The executor whose task runs here, or null between runs.
    executor: *const State,
    /// The running task is ending: what it queues now runs after it, on this worker.
    ending: bool,
    /// A schedule during this run left its wake-up to this worker.
    wake_owed: bool,
    /// Where a channel's hand-off made during this run is kept for this worker to run next
    /// (the worker's [`NextTask`]), or null.
    next: *const Cell<Option<Entry>>,
    /// The worker's own queue, if this run is a worker's inside `Executor::run`, or null.
    own: *const Worker,
}

impl CurrentRun {
    const NONE: CurrentRun = CurrentRun {
        executor: std::ptr::null(),
        ending: false,
        wake_owed: false,
        next: std::ptr::null(),
        own: std::ptr::null(),
    };
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
    /// The worker's slot for the task it runs next.
    next: &'a Cell<Option<Entry>>,
}

impl<'a> Run<'a> {
    /// `own`: the worker's own queue, if the worker is inside `Executor::run`.
    pub(super) fn enter(state: &'a State, next: &'a NextTask<'_>, own: Option<&'a Worker>) -> Self {
        let own = own.map_or(std::ptr::null(), std::ptr::from_ref);
        let run =
            CurrentRun { executor: state, ending: false, wake_owed: false, next: &next.slot, own };
        Run { state, outer: CURRENT.with(|current| current.replace(run)), next: &next.slot }
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        let run = CURRENT.with(|current| current.replace(self.outer));
        // This worker takes the next task itself (the one kept for it, or the queue's first); a
        // sleeper is needed only for the ones after.
        let kept = self.next.take();
        let taken_from_queue = usize::from(kept.is_none());
        self.next.set(kept);
        if run.wake_owed
            && self.state.queue.len() > taken_from_queue
            && self.state.sleeper_to_wake()
        {
            self.state.wake_one();
        }
    }
}

/// A blocking helper (`block_on`, `recv_blocking`...) is about to block this thread, perhaps in
/// a task's run: what that run left to this worker cannot wait for it, since the helper may wait
/// for that very task (a body that hands a message on, then blocks for the answer). The task kept
/// to run next goes to the queue, waking a sleeper for it, and a wake-up left to this worker is
/// paid now. Outside a run it does nothing. (Not under loom, where nothing blocks outside tasks.)
#[cfg(not(klaw_loom))]
pub(crate) fn before_blocking() {
    let mut run = CURRENT.with(Cell::get);
    if run.executor.is_null() {
        return;
    }
    // SAFETY: a run sets `executor` from the `&State` it borrows for its whole length and resets
    // it when it ends; this is called within the run, on its thread.
    let state = unsafe { &*run.executor };
    let kept = if run.next.is_null() {
        None
    } else {
        // SAFETY: as in `keep_for_this_worker`: the worker's slot outlives its run.
        unsafe { &*run.next }.take()
    };
    let mut owed = std::mem::take(&mut run.wake_owed);
    CURRENT.with(|current| current.set(run));
    // Not left to this worker, which is about to block (even in a run that is ending).
    if let Some(entry) = kept {
        if state.push_unless_closed(entry) && state.sleeper_to_wake() {
            state.wake_one();
        }
    }
    // Its own queue too: the helper may wait for a task in it (a yielding answerer), and the
    // watch would take it only after a period, or never if this worker's run goes on meanwhile.
    if !run.own.is_null() {
        // SAFETY: `own` is the worker's `Watch`'s, alive for the whole `Executor::run` that this
        // run is part of (set by `Run::enter`, reset when the run ends).
        owed |= state.share_own_queue(unsafe { &*run.own });
    }
    if owed && !state.queue.is_empty() && state.sleeper_to_wake() {
        state.wake_one();
    }
}

/// How many tasks in a row a worker runs from its [`NextTask`] before the queue's first gets
/// its turn (tokio's number for its LIFO slot): two tasks that keep handing each other messages
/// would otherwise hold the worker for ever.
pub(super) const MAX_KEPT_IN_A_ROW: usize = 3;

/// The task a worker runs next, before it looks at the queue: a channel's hand-off made during
/// its last run. `run_entry` runs or queues what it keeps before it returns; if a run unwinds
/// instead, the drop queues it, so no task is lost.
pub(super) struct NextTask<'a> {
    state: &'a State,
    slot: Cell<Option<Entry>>,
}

impl<'a> NextTask<'a> {
    pub(super) fn new(state: &'a State) -> Self {
        NextTask { state, slot: Cell::new(None) }
    }

    pub(super) fn take(&self) -> Option<Entry> {
        self.slot.take()
    }
}

impl Drop for NextTask<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.slot.take() {
            self.state.enqueue(entry, false);
        }
    }
}

/// What [`keep_for_this_worker`] did with a schedule.
pub(super) enum Keep {
    /// It keeps the task for this worker to run next; nothing is displaced.
    Kept,
    /// `entry` goes to the queue: the schedule's own task, or the one kept before it that it
    /// displaced. `hand_off` if the schedule is a channel's hand-off made by a task body (see
    /// [`leave_wake_up_to_this_worker`]).
    Queue { entry: Entry, hand_off: bool },
}

/// A schedule onto `state`: if it is a channel's hand-off (`coop::hand_off`) made by the body
/// of one of `state`'s tasks running on this thread, keeps `entry` for this worker to run next
/// and gives back the task kept before, if any, for the queue; any other schedule gives `entry`
/// back.
pub(super) fn keep_for_this_worker(state: &State, entry: Entry) -> Keep {
    let hand_off = hand_off_by_a_task_body();
    let run = CURRENT.with(Cell::get);
    if !hand_off || !std::ptr::eq(run.executor, state) || run.next.is_null() {
        return Keep::Queue { entry, hand_off };
    }
    // SAFETY: `next` points to the `NextTask` of the worker running this run, on this thread's
    // stack, which outlives the run (`Run` borrows it), and is reset to null when the run ends.
    match unsafe { &*run.next }.replace(Some(entry)) {
        Some(displaced) => Keep::Queue { entry: displaced, hand_off },
        None => Keep::Kept,
    }
}

/// The own queue of this thread's worker, for a schedule onto `state` that is a yield
/// (`woken_while_running`: `async-task` queues the task on the thread that ran it, as its run
/// returns) or a channel's hand-off made by the running task's body that did not keep its task
/// (`hand_off`), if this thread is a worker of `state`'s executor inside `Executor::run`.
pub(super) fn own_queue_here(
    state: &State,
    woken_while_running: bool,
    hand_off: bool,
) -> Option<&Worker> {
    if !(woken_while_running || hand_off) {
        return None;
    }
    let run = CURRENT.with(Cell::get);
    if run.own.is_null() || !std::ptr::eq(run.executor, state) {
        return None;
    }
    // SAFETY: as in `before_blocking`: the worker's own queue outlives the run, which is on this
    // thread.
    Some(unsafe { &*run.own })
}

/// A schedule onto `state` found a sleeper to wake. True if this thread is running a task of
/// the same executor and the schedule comes at the end of that run (`at_end`: the task was
/// woken while it ran, or it is queued inside [`at_end_of_run`]) or is a channel's hand-off
/// made by the task's body that did not keep its task (`at_end` too: another took the slot):
/// the wake-up is left to this worker, which pays it when the run returns if more tasks are
/// queued than the one it takes next.
pub(super) fn leave_wake_up_to_this_worker(state: &State, at_end: bool) -> bool {
    CURRENT.with(|current| {
        let mut run = current.get();
        if !std::ptr::eq(run.executor, state) || !(run.ending || at_end) {
            return false;
        }
        run.wake_owed = true;
        current.set(run);
        true
    })
}

/// A channel's hand-off made by a klaw task's body (`Poller::Klaw`). Not one made inside a
/// blocking helper (`block_on`, `recv_blocking`...) that the body calls (`poller::outside_tasks`):
/// the body, blocked in it, would hold up a task kept for this worker (or one whose wake-up was
/// left to it) until the helper returns, which may be never if it waits for that very task.
fn hand_off_by_a_task_body() -> bool {
    crate::coop::is_handing_off() && crate::poller::Poller::here() == crate::poller::Poller::Klaw
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

    /// A sleeper shared by the task that lets it fall asleep and the test.
    type SharedSleeper = Arc<std::sync::Mutex<Sleeper>>;
    /// The names of the tasks that ran, in order.
    type Log = Arc<std::sync::Mutex<Vec<String>>>;
    /// The wakers the waiting tasks left, by number.
    type Parked = Arc<std::sync::Mutex<Vec<Option<Waker>>>>;

    /// Spawns task `number`, whose first poll leaves its waker in `parked` and whose second
    /// logs its number and hands a message to task `number + 1`, if it waits, through `wake`.
    fn spawn_waiting(
        executor: &Arc<Executor>,
        (log, parked): (&Log, &Parked),
        number: usize,
        wake: fn(Waker),
    ) {
        let (log, parked) = (log.clone(), parked.clone());
        let mut polls = 0;
        executor.spawner().spawn(std::future::poll_fn(move |cx| {
            polls += 1;
            let mut wakers = parked.lock().unwrap();
            if polls == 1 {
                let len = wakers.len().max(number + 1);
                wakers.resize(len, None);
                wakers[number] = Some(cx.waker().clone());
                return Poll::Pending;
            }
            log.lock().unwrap().push(number.to_string());
            let next = wakers.get_mut(number + 1).and_then(Option::take);
            drop(wakers);
            if let Some(next) = next {
                wake(next);
            }
            Poll::Ready(())
        }));
        assert!(executor.try_tick(), "the waiting task's first poll");
    }

    /// Spawns a task that logs `name`, then wakes tasks `numbers`, in that order, through `wake`
    /// (the sleeper, if any, falls asleep first, while the queue is empty).
    fn spawn_waking(
        executor: &Arc<Executor>,
        (log, parked): (&Log, &Parked),
        (name, numbers): (&'static str, &'static [usize]),
        (sleeper, wake): (Option<SharedSleeper>, fn(Waker)),
    ) {
        let (log, parked) = (log.clone(), parked.clone());
        executor.spawner().spawn(async move {
            if let Some(sleeper) = sleeper {
                sleeper.lock().unwrap().fall_asleep();
            }
            log.lock().unwrap().push(name.to_owned());
            for &number in numbers {
                let waker = parked.lock().unwrap()[number].take();
                wake(waker.expect("the waiting task left its waker"));
            }
        });
    }

    /// A channel's hand-off, made by a klaw task's body (whose budget is set).
    fn hand_off(waker: Waker) {
        crate::coop::with_task_budget(|| crate::coop::hand_off(|| waker.wake()));
    }

    /// Waiting tasks, and a task that wakes them (`numbers`: `0..n`, in some order) in the
    /// middle of its poll, through `wake`, while the other worker sleeps: the wake-ups the
    /// sleeper was sent by the end of that tick, and the tasks that ran in it.
    fn wake_mid_poll(wake: fn(Waker), numbers: &'static [usize]) -> (usize, Vec<String>) {
        let executor = Arc::new(Executor::new());
        let sleeper = Sleeper::new(&executor);
        let (log, parked) = (Log::default(), Parked::default());
        for number in 0..numbers.len() {
            spawn_waiting(&executor, (&log, &parked), number, wake);
        }
        spawn_waking(&executor, (&log, &parked), ("waker", numbers), (Some(sleeper.clone()), wake));
        assert!(executor.try_tick(), "the task that wakes them");
        let wake_ups = sleeper.lock().unwrap().wake_ups();
        let ran = log.lock().unwrap().clone();
        while executor.try_tick() {}
        assert_eq!(log.lock().unwrap().len(), 1 + numbers.len(), "all ran, here or on the sleeper");
        (wake_ups, ran)
    }

    #[test]
    fn a_channel_hand_off_in_the_middle_of_a_poll_runs_next_on_this_worker() {
        let (wake_ups, ran) = wake_mid_poll(hand_off, &[0]);
        assert_eq!(wake_ups, 0, "kept for this worker, which runs it next");
        assert_eq!(ran, ["waker", "0"], "in the same tick");
    }

    #[test]
    fn any_other_wake_in_the_middle_of_a_poll_wakes_a_sleeper_at_once() {
        let (wake_ups, ran) = wake_mid_poll(Waker::wake, &[0]);
        assert_eq!(wake_ups, 1, "the poll may go on computing for long");
        assert_eq!(ran, ["waker"], "the woken task is queued");
    }

    #[test]
    fn a_second_hand_off_in_one_poll_queues_the_first_and_wakes_a_sleeper_for_it() {
        let (wake_ups, ran) = wake_mid_poll(hand_off, &[0, 1]);
        assert_eq!(ran, ["waker", "1"], "the last hand-off runs next");
        assert_eq!(wake_ups, 1, "the first is queued while this worker runs the second");
    }

    #[test]
    fn a_hand_off_inside_a_blocking_helper_is_queued_and_wakes_a_sleeper() {
        // A body blocked in `block_on` until the woken task answers would hold it for ever.
        let in_block_on = |waker: Waker| {
            crate::coop::with_task_budget(|| {
                crate::runtime::block_on(async { crate::coop::hand_off(|| waker.wake()) });
            });
        };
        let (wake_ups, ran) = wake_mid_poll(in_block_on, &[0]);
        assert_eq!(ran, ["waker"], "not kept for this worker");
        assert_eq!(wake_ups, 1, "nor its wake-up left to it");
    }

    #[test]
    fn hand_offs_run_before_the_queue_but_give_way_to_it_after_three_in_a_row() {
        let executor = Arc::new(Executor::new());
        let (log, parked) = (Log::default(), Parked::default());
        for number in 0..6 {
            spawn_waiting(&executor, (&log, &parked), number, hand_off);
        }
        spawn_waking(&executor, (&log, &parked), ("first", &[0]), (None, hand_off));
        executor.spawner().spawn({
            let log = log.clone();
            async move { log.lock().unwrap().push("queued".to_owned()) }
        });
        assert!(executor.try_tick());
        assert_eq!(*log.lock().unwrap(), ["first", "0", "1", "2"], "each hand-off runs next");
        assert!(executor.try_tick());
        assert_eq!(log.lock().unwrap()[4..], ["queued"], "the fourth waited behind the queue");
        assert!(executor.try_tick());
        assert_eq!(log.lock().unwrap()[5..], ["3", "4", "5"], "then hand-offs run next again");
        assert!(!executor.try_tick());
    }

    #[test]
    fn a_task_kept_for_a_worker_that_stops_goes_to_the_queue() {
        let executor = Arc::new(Executor::new());
        let ran = Arc::new(Count::default());
        let counted = ran.clone();
        let runnable = executor.spawner().build_task((), move |()| async move {
            counted.0.fetch_add(1, Ordering::SeqCst);
        });
        let next = super::NextTask::new(executor.state());
        next.slot.set(Some(super::Entry::new(runnable)));
        drop(next);
        assert!(executor.try_tick(), "it was queued");
        assert_eq!(ran.0.load(Ordering::SeqCst), 1);
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
