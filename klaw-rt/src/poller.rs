//! Which executor polls the code running on this thread, as far as a channel's wait is
//! concerned: a klaw task, a tokio task (feature `tokio`), or neither (a `block_on`, a blocking
//! helper such as `recv_blocking`, another executor).
//!
//! A channel with one sender and one receiver skips its yield before a wait when both ends run
//! in tasks of the same kind of executor, on a runtime with two workers or more
//! (`channel/mpmc/yielding.rs`): there the other end's hand-off keeps the woken task on the
//! waking worker, and the two ends take turns on one core. Ends on two kinds of executor can
//! never share a worker, so they keep their yields.
//!
//! Known misreadings, which cost speed and never a message: tokio's `LocalSet` tasks count as
//! tasks of their runtime's pool, though they never move; and a wait inside tokio's
//! `spawn_blocking` through another crate's `block_on` counts as a tokio task (klaw's own
//! blocking helpers mark their thread, [`outside_tasks`]).
#![forbid(unsafe_code)]

#[cfg(not(klaw_loom))]
use std::cell::Cell;

#[cfg(not(klaw_loom))]
use crate::cancel::frames::{self, FrameKind};
use crate::coop;

/// Who polls the code running here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Poller {
    /// No task: a `block_on`, a blocking helper, a plain thread, another executor.
    Outside = 0,
    /// A klaw task's body (its cooperative budget is set).
    Klaw = 1,
    /// A tokio task (feature `tokio`).
    Tokio = 2,
}

// Loom runs its threads on one OS thread, where a std thread-local would be shared; under the
// model checker no thread is marked (the models do not use the blocking helpers).
#[cfg(not(klaw_loom))]
thread_local! {
    /// Inside one of klaw's blocking helpers ([`outside_tasks`]).
    static BLOCKING: Cell<bool> = const { Cell::new(false) };
}

impl Poller {
    /// Who polls the code running here now.
    #[inline]
    pub(crate) fn here() -> Poller {
        if in_blocking_helper() {
            Poller::Outside
        } else if coop::in_klaw_task() {
            Poller::Klaw
        } else if in_tokio_task() {
            Poller::Tokio
        } else {
            Poller::Outside
        }
    }

    /// True if a task of this kind, polled here, may be moved to another worker when it
    /// yields: a klaw task on a runtime with two workers or more, or a task of a tokio runtime
    /// with two workers or more (whose handle is looked up: asked only before a channel waits).
    pub(crate) fn is_pool(self) -> bool {
        match self {
            Poller::Outside => false,
            Poller::Klaw => !coop::is_sole_worker(),
            #[cfg(all(feature = "tokio", not(klaw_loom)))]
            Poller::Tokio => tokio_task_in_pool(),
            #[cfg(not(all(feature = "tokio", not(klaw_loom))))]
            Poller::Tokio => false,
        }
    }
}

/// True inside one of klaw's blocking helpers ([`outside_tasks`]).
#[inline]
fn in_blocking_helper() -> bool {
    #[cfg(not(klaw_loom))]
    return BLOCKING.try_with(Cell::get).unwrap_or(false);
    #[cfg(klaw_loom)]
    false
}

/// True while a tokio task is polled here (feature `tokio`); tokio's `block_on` is not a task.
#[inline]
fn in_tokio_task() -> bool {
    #[cfg(all(feature = "tokio", not(klaw_loom)))]
    return tokio::task::try_id().is_some();
    #[cfg(not(all(feature = "tokio", not(klaw_loom))))]
    false
}

/// Whether the tokio task polled here belongs to a runtime with two workers or more.
///
/// tokio answers through its runtime's handle, an `Arc` that the question clones and drops:
/// two writes of a count that every worker asking shares, and whose cache line tokio's
/// scheduler reads as well. Measured on two workers, about 23 ns a question alone and 180 ns
/// when both workers ask at once, which a one-to-one channel's two ends did before each wait
/// (`benches/FINDINGS.md`, **A tokio task's runtime, asked once**). A task never changes
/// runtime, so its answer never changes: this thread keeps the answers for the last few tasks
/// it asked for, enough for a channel's two ends or `select!`'s four producers sharing one
/// worker. tokio may give a finished task's id to a new task; a stale answer would only cost
/// speed (see the module's doc), never a message.
#[cfg(all(feature = "tokio", not(klaw_loom)))]
fn tokio_task_in_pool() -> bool {
    /// How many tasks' answers a thread keeps.
    const KEPT: usize = 4;
    type Answers = ([Option<(tokio::task::Id, bool)>; KEPT], usize);
    thread_local! {
        /// The answers, and where the next one goes (the oldest is replaced).
        static ANSWERS: Cell<Answers> = const { Cell::new(([None; KEPT], 0)) };
    }
    let ask = || {
        tokio::runtime::Handle::try_current().is_ok_and(|tokio| tokio.metrics().num_workers() > 1)
    };
    let Some(task) = tokio::task::try_id() else {
        return ask();
    };
    ANSWERS
        .try_with(|answers| {
            let (mut kept, next) = answers.get();
            if let Some((_, in_pool)) = kept.iter().flatten().find(|(id, _)| *id == task) {
                return *in_pool;
            }
            let in_pool = ask();
            kept[next] = Some((task, in_pool));
            answers.set((kept, (next + 1) % KEPT));
            in_pool
        })
        .unwrap_or_else(|_| ask())
}

/// Runs `block`, one of klaw's blocking helpers (`block_on`, `recv_blocking`, `send_blocking`,
/// a oneshot's `blocking_recv`), with this thread counted as outside any task: also when a
/// klaw task's body calls it, and inside tokio's `spawn_blocking` (which polls a task).
pub(crate) fn outside_tasks<R>(block: impl FnOnce() -> R) -> R {
    #[cfg(not(klaw_loom))]
    if let Some(before) = BEFORE_BLOCKING.get() {
        before();
    }
    #[cfg(not(klaw_loom))]
    return coop::with_flag_raised(&BLOCKING, || {
        frames::within(FrameKind::Blocking, || coop::not_held(block))
    });
    #[cfg(klaw_loom)]
    block()
}

/// What a blocking helper does first, on any thread: the runtime's executor sets it (to hand on
/// what the run it interrupts left to its worker, which the helper may be waiting for). A hook,
/// so this module, below the runtime, needs nothing of it.
#[cfg(not(klaw_loom))]
pub(crate) static BEFORE_BLOCKING: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Blocks this thread on `future` as klaw's channel helpers do (`recv_blocking`,
/// `send_blocking`, a oneshot's `blocking_recv`): outside any task, with no cooperative budget.
pub(crate) fn block_outside_tasks<F: std::future::Future>(future: F) -> F::Output {
    outside_tasks(|| futures_lite::future::block_on(coop::unconstrained(future)))
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use super::Poller;
    use crate::coop;

    #[test]
    fn a_klaw_task_s_body_is_polled_by_klaw_but_not_inside_a_blocking_helper_it_calls() {
        assert_eq!(Poller::here(), Poller::Outside, "a plain thread");
        assert_eq!(coop::with_task_budget(Poller::here), Poller::Klaw);
        let in_helper = coop::with_task_budget(|| super::outside_tasks(Poller::here));
        assert_eq!(in_helper, Poller::Outside);
        assert_eq!(coop::with_task_budget(Poller::here), Poller::Klaw, "and after it again");
        assert!(!Poller::Outside.is_pool());
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_s_tasks_and_blocking_pool_are_polled_by_tokio_except_in_klaw_s_blocking_helpers() {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let in_task =
            runtime.block_on(runtime.spawn(async { (Poller::here(), Poller::here().is_pool()) }));
        assert_eq!(in_task.unwrap(), (Poller::Tokio, true), "two workers: a pool");
        let in_pool = runtime.block_on(
            runtime.spawn_blocking(|| (Poller::here(), super::outside_tasks(Poller::here))),
        );
        assert_eq!(
            in_pool.unwrap(),
            (Poller::Tokio, Poller::Outside),
            "tokio polls a blocking closure as a task; klaw's blocking helpers mark their thread"
        );
        assert_eq!(runtime.block_on(async { Poller::here() }), Poller::Outside, "not a task");
        let one_thread = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let there = one_thread.block_on(one_thread.spawn(async { Poller::here().is_pool() }));
        assert!(!there.unwrap(), "a current-thread runtime is no pool");
    }

    /// A thread keeps each task's answer (`tokio_task_in_pool`), never one for the thread: the
    /// same thread polls tasks of a current-thread runtime (no pool) and of a two-worker
    /// runtime's `LocalSet` (a pool, as the module's doc says), more of them than it keeps,
    /// each asked twice.
    #[cfg(feature = "tokio")]
    #[test]
    fn a_thread_that_polls_tasks_of_two_runtimes_answers_for_each_task() {
        let pool = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let one_thread = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let twice = || (Poller::here().is_pool(), Poller::here().is_pool());
        for round in 0..6 {
            let local = tokio::task::LocalSet::new();
            let in_pool = local.spawn_local(async move { (std::thread::current().id(), twice()) });
            let in_pool = pool.block_on(local.run_until(in_pool));
            let alone = one_thread
                .block_on(one_thread.spawn(async move { (std::thread::current().id(), twice()) }));
            let (in_pool, alone) = (in_pool.unwrap(), alone.unwrap());
            assert_eq!(in_pool.0, alone.0, "both on this thread");
            assert_eq!((in_pool.1, alone.1), ((true, true), (false, false)), "round {round}");
        }
    }
}
