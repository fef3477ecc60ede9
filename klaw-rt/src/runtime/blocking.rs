//! The blocking pool: threads for closures that block, started on demand up to a bound, and
//! retired after a while idle. Jobs beyond the bound wait in a queue; they never start a thread.
#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::runtime::tokio_context::TokioContext;
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::task::core::HeaderRef;
use crate::task::{CancelReason, TaskId};
use crate::time::clock::{Hold, VirtualClock};

/// A queued blocking task: runs its closure, or, if dropped unrun, publishes a cancellation.
pub(crate) trait BlockingJob: Send {
    fn run(self: Box<Self>);
}

struct Queued {
    job: Box<dyn BlockingJob>,
    task: HeaderRef,
    /// Under a paused clock: the clock does not move from the job's submission until it has
    /// run (and woken whoever waits for it) or been dropped.
    _hold: Option<Hold>,
}

#[derive(Default)]
struct PoolState {
    queue: JobQueue,
    threads: usize,
    idle: usize,
    shutdown: bool,
    /// Set by a shutdown's first step (`cancel_for_shutdown`): a job submitted from then on
    /// whose task is not under a shield is dropped, which cancels its task, as after `shutdown`.
    roots_refused: bool,
    /// Tasks running now, so shutdown can cancel them (they see `klaw::cancel::is_cancelled()`).
    running: HashMap<TaskId, HeaderRef>,
}

/// The queued jobs, in submission order. Each has a sequence number, its place in the order, by
/// which its cancel hook finds it in O(1): a job withdrawn from the middle leaves a hole (`None`),
/// skipped when it reaches the front; holes at either end are trimmed at once. So holes only lie
/// between waiting jobs, and the queue never holds more slots than it had jobs at its longest.
/// A number trimmed from the back is given again; a hook withdraws its number only if its own
/// task's job is there, since a job taken out before its task was cancelled (a shutdown's
/// `take_where`) keeps its hook until it is dropped.
#[derive(Default)]
struct JobQueue {
    slots: VecDeque<Option<Queued>>,
    /// The sequence number of `slots[0]`.
    head: u64,
    /// Jobs in `slots` (holes not counted).
    len: usize,
}

impl JobQueue {
    fn len(&self) -> usize {
        self.len
    }

    /// Queues `job`; returns its sequence number.
    fn push(&mut self, job: Queued) -> u64 {
        let seq = self.head + self.slots.len() as u64;
        self.slots.push_back(Some(job));
        self.len += 1;
        seq
    }

    fn pop(&mut self) -> Option<Queued> {
        while let Some(slot) = self.slots.pop_front() {
            self.head += 1;
            if slot.is_some() {
                self.len -= 1;
                return slot;
            }
        }
        None
    }

    /// Takes out job `seq` if it is still queued and is `task`'s.
    fn withdraw(&mut self, seq: u64, task: TaskId) -> Option<Queued> {
        let at = usize::try_from(seq.checked_sub(self.head)?).ok()?;
        let slot = self.slots.get_mut(at)?;
        if slot.as_ref()?.task.header().id() != task {
            return None;
        }
        let job = slot.take()?;
        self.len -= 1;
        while let Some(None) = self.slots.back() {
            self.slots.pop_back();
        }
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.head += 1;
        }
        Some(job)
    }

    /// Takes out every queued job whose task `take` picks, leaving the rest in their order.
    fn take_where(&mut self, take: impl Fn(&Queued) -> bool) -> Vec<Queued> {
        let picked: Vec<(u64, TaskId)> = (self.head..)
            .zip(&self.slots)
            .filter_map(|(seq, slot)| Some((seq, slot.as_ref().filter(|queued| take(queued))?)))
            .map(|(seq, queued)| (seq, queued.task.header().id()))
            .collect();
        picked.into_iter().filter_map(|(seq, task)| self.withdraw(seq, task)).collect()
    }

    fn take_all(&mut self) -> Vec<Queued> {
        self.head += self.slots.len() as u64;
        self.len = 0;
        self.slots.drain(..).flatten().collect()
    }
}

struct PoolShared {
    state: Mutex<PoolState>,
    work_available: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    thread_name: String,
    clock: Option<Arc<VirtualClock>>,
    /// Entered by each pool thread for its whole life (feature `tokio`).
    tokio: TokioContext,
}

std::thread_local! {
    /// On a pool thread, its pool (`Arc::as_ptr`, compared only): so a runtime can tell that it
    /// is asked to shut down by one of its own blocking closures, which it cannot wait for.
    static POOL: std::cell::Cell<*const ()> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// A bounded pool of threads for blocking closures.
pub(crate) struct BlockingPool {
    shared: Arc<PoolShared>,
}

impl BlockingPool {
    pub(crate) fn new(
        max_threads: usize,
        keep_alive: Duration,
        thread_name: String,
        clock: Option<Arc<VirtualClock>>,
        tokio: TokioContext,
    ) -> Self {
        BlockingPool {
            shared: Arc::new(PoolShared {
                state: Mutex::new(PoolState::default()),
                work_available: Condvar::new(),
                max_threads,
                keep_alive,
                thread_name,
                clock,
                tokio,
            }),
        }
    }

    /// Queues `job`, starting a thread if queued jobs outnumber idle threads and the bound
    /// allows. After shutdown the job is dropped, which cancels its task. A job whose task is
    /// cancelled while it is queued is taken out and dropped at once.
    pub(crate) fn submit(&self, job: Box<dyn BlockingJob>, task: HeaderRef) {
        // Before the lock: holding takes the clock's.
        let hold = self.shared.clock.as_ref().map(VirtualClock::hold);
        let header = task.clone();
        let mut state = self.shared.lock();
        if state.shutdown || (state.roots_refused && !header.header().under_shield()) {
            drop(state);
            drop((job, hold));
            return;
        }
        let seq = state.queue.push(Queued { job, task, _hold: hold });
        if state.idle > 0 {
            self.shared.work_available.notify_one();
        }
        let start = (state.queue.len() > state.idle && state.threads < self.shared.max_threads)
            .then(|| {
                state.threads += 1;
                state.threads
            });
        drop(state);
        if let Some(number) = start {
            self.start_thread(number);
        }
        // A cancelled job never runs, so its handle (and the scope or region that waits for it)
        // must not wait for a thread to find it in the queue: with every thread busy with
        // closures that ignore cancellation, that could be never. Registered once the job is
        // queued and the lock is free: the hook runs at once if the task is cancelled already,
        // and it takes the lock. It holds the pool weakly: the task may outlive the runtime.
        let pool = Arc::downgrade(&self.shared);
        let id = header.header().id();
        header.header().on_cancel(Box::new(move |_| {
            if let Some(pool) = pool.upgrade() {
                pool.withdraw(seq, id);
            }
        }));
    }

    /// True on one of this pool's threads. (The pool outlives its threads, each of which holds
    /// it, so no other pool can have the same address meanwhile.)
    pub(crate) fn runs_this_thread(&self) -> bool {
        let this = Arc::as_ptr(&self.shared).cast::<()>();
        POOL.try_with(|pool| std::ptr::eq(pool.get(), this)).unwrap_or(false)
    }

    /// The runtime's thread name, which the pool's threads are named after.
    pub(crate) fn thread_name(&self) -> &str {
        &self.shared.thread_name
    }

    fn start_thread(&self, number: usize) {
        let shared = self.shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("{}-blocking-{number}", self.shared.thread_name))
            .spawn(move || {
                POOL.with(|pool| pool.set(Arc::as_ptr(&shared).cast()));
                // Once for the thread's life: a blocking closure may use tokio types too.
                let _tokio = shared.tokio.enter();
                shared.work();
            });
        if let Err(error) = spawned {
            let mut state = self.shared.lock();
            state.threads -= 1;
            // With no thread left to run them, queued jobs would wait forever: cancel them.
            let orphans: Vec<_> =
                if state.threads == 0 { state.queue.take_all() } else { Vec::new() };
            drop(state);
            for orphan in orphans {
                let reason = format!("the blocking pool could not start a thread: {error}");
                orphan.task.cancel(CancelReason::user(reason));
            }
        }
    }

    /// A shutdown's cancel (see `ShutdownPhase`): takes the queued blocking tasks out of the
    /// queue and cancels the running ones, all of them (`every_task`, the last resort, after
    /// which the threads retire) or those not under a shield (the first step: the threads go on
    /// running the rest, which the shield holds). A job submitted afterwards that the same step
    /// would cancel is dropped.
    pub(crate) fn cancel_for_shutdown(&self, every_task: bool) {
        let cancelled = |task: &HeaderRef| every_task || !task.header().under_shield();
        let mut state = self.shared.lock();
        state.roots_refused = true;
        state.shutdown |= every_task;
        // Out of the queue before any running closure hears its cancel: a thread that a
        // cancelled closure frees must not start one of these.
        let queued = if every_task {
            state.queue.take_all()
        } else {
            state.queue.take_where(|queued| cancelled(&queued.task))
        };
        let running: Vec<HeaderRef> =
            state.running.values().filter(|task| cancelled(task)).cloned().collect();
        drop(state);
        if every_task {
            self.shared.work_available.notify_all();
        }
        for task in running {
            task.cancel(CancelReason::Shutdown);
        }
        // Each dropped job publishes its task as cancelled (reason: shutdown).
        drop(queued);
    }
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Jobs run outside the lock and catch their panics, so poisoning cannot hide a bug here.
        self.state.lock()
    }

    /// Takes the job queued as `seq` for `task` out of the queue, if it is still there, and
    /// drops it, which ends its (cancelled) task unstarted. A job a thread has taken already is
    /// left to it: the thread sees the cancel and ends the task without running it.
    fn withdraw(&self, seq: u64, task: TaskId) {
        let withdrawn = self.lock().queue.withdraw(seq, task);
        // Outside the lock: the job drops user values and wakes whoever awaits its task.
        drop(withdrawn);
    }

    /// A pool thread: runs queued jobs; retires after `keep_alive` without work, or at shutdown.
    fn work(&self) {
        let mut state = self.lock();
        loop {
            if let Some(Queued { job, task, _hold: hold }) = state.queue.pop() {
                let id = task.header().id();
                state.running.insert(id, task);
                drop(state);
                // A job contains the panics of the closure and of the values it drops; this is
                // the last line, so that nothing can cost the pool a thread and its slot.
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job.run())) {
                    crate::task::guard::drop_payload(payload);
                    tracing::error!(
                        task.id = id.as_u64(),
                        "a blocking job panicked outside its task"
                    );
                }
                state = self.lock();
                let finished = state.running.remove(&id);
                drop(state);
                drop(finished); // outside the lock: it may be the last reference to the task
                drop(hold); // after the job has woken whoever waits for it
                state = self.lock();
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (next, timed_out) = self.work_available.wait_timeout(state, self.keep_alive);
            state = next;
            state.idle -= 1;
            if timed_out && state.queue.len() == 0 {
                break;
            }
        }
        state.threads -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::spawn::{Accounting, NoParent};
    use crate::runtime::stats::Stats;
    use crate::task::core::new_task;
    use crate::task::runner::BlockingRunner;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Nothing;
    impl BlockingJob for Nothing {
        fn run(self: Box<Self>) {}
    }

    fn queued() -> (Queued, TaskId) {
        let (completer, _joiner) = new_task::<()>(TaskId::next(), None);
        let task = completer.header_ref(None);
        let id = task.header().id();
        (Queued { job: Box::new(Nothing), task, _hold: None }, id)
    }

    /// Checks: a job taken out at a shutdown keeps its cancel hook, which withdraws by number;
    /// once that number is given to a later job (trimmed from the back, then pushed again), the
    /// stale hook leaves the later job queued.
    ///
    /// Breaks if `withdraw` took whatever sits at the number, whoever's it is.
    #[test]
    fn a_stale_withdraw_leaves_a_later_job_with_the_same_number() {
        let mut queue = JobQueue::default();
        let (waiting, _) = queued();
        queue.push(waiting);
        let (root, root_id) = queued();
        let root_seq = queue.push(root);
        let taken = queue.take_where(|job| job.task.header().id() == root_id);
        assert_eq!(taken.len(), 1);
        let (later, later_id) = queued();
        let later_seq = queue.push(later);
        assert_eq!(later_seq, root_seq, "the trimmed number is given again");
        assert!(queue.withdraw(root_seq, root_id).is_none(), "a stale hook took a later job");
        assert!(queue.withdraw(later_seq, later_id).is_some());
    }

    /// Checks: with one job waiting at the front, a job pushed and withdrawn 1,000 times never
    /// leaves the queue longer than two slots (it never held more than two jobs).
    ///
    /// Breaks if `push` left a hole for each number trimmed from the back since (as numbers that
    /// only go up would): each push would cost as many slots as jobs handed out before it.
    #[test]
    fn a_job_pushed_and_withdrawn_behind_a_waiting_one_adds_no_slots() {
        let mut queue = JobQueue::default();
        let (waiting, _) = queued();
        queue.push(waiting);
        for round in 0..1_000 {
            let (job, id) = queued();
            let seq = queue.push(job);
            assert!(queue.slots.len() <= 2, "round {round}: {} slots", queue.slots.len());
            assert!(queue.withdraw(seq, id).is_some());
        }
    }

    #[test]
    fn threads_never_exceed_the_bound_and_retire_when_idle() {
        let pool = BlockingPool::new(
            3,
            Duration::from_millis(50),
            "test".into(),
            None,
            TokioContext::default(),
        );
        let stats = Arc::new(Stats::default());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for _ in 0..30 {
            let (completer, _joiner) =
                new_task::<Result<(), crate::task::TaskError>>(TaskId::next(), None);
            let task = completer.header_ref(None);
            let (running, peak) = (running.clone(), peak.clone());
            stats.task_spawned();
            let job = BlockingRunner::<_, (), crate::task::Plain, _>::new(
                move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                },
                completer,
                None,
                Accounting::<NoParent>::new(Some(stats.clone()), None),
            );
            pool.submit(Box::new(job), task);
            assert!(pool.shared.lock().threads <= 3);
        }
        assert!(stats.wait_idle(std::time::Instant::now() + Duration::from_secs(10)));
        assert_eq!(peak.load(Ordering::SeqCst), 3, "the bound is reached and never passed");
        let retire_by = std::time::Instant::now() + Duration::from_secs(5);
        while pool.shared.lock().threads > 0 {
            assert!(std::time::Instant::now() < retire_by, "idle threads did not retire");
            thread::sleep(Duration::from_millis(10));
        }
    }
}
