//! A runtime's shutdown cancels in two steps: first every task but those under a shield (the
//! children of a scope opened in a shielded cleanup, and their descendants), which the shield
//! holds as it holds any cancel of its task; then, if tasks are left after its cancel grace
//! (1 s), every task directly. These are the edges of that first step: what it must still
//! refuse, what it must still let a shielded cleanup do, and what must not hang it. (Translated in spirit from tokio's
//! `rt_common.rs` shutdown tests and trio's `test_cancel_shield_abort`.)

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{DEADLINE, Flag, SetOnDrop, ms, runtime, secs, until, wait_for, within};
use klaw::runtime::ShutdownReport;
use klaw::task::BlockingTask;
use klaw::{CancelReason, Error, Handle, TaskError, TaskHandle};

/// One worker, one task whose shielded scope runs two CPU-bound children that stop when
/// cancelled: the first spins on the worker, the second waits in the shared queue.
///
/// Checks: `shutdown(0)` returns, nothing abandoned: its first step leaves both children to the
/// shield, and after its cancel grace its last resort cancels them directly.
///
/// Breaks (hangs; the test gives up after 5 s and releases the children) if the shutdown's own
/// thread ran tasks during the first step: it would poll the second child, which that step
/// leaves to the shield, and spin in it, never reaching the last resort.
#[test]
fn shutdown_returns_when_its_own_thread_picks_up_a_cpu_bound_child_of_a_scope() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let release = Flag::default();
        let spinning = Arc::new(AtomicUsize::new(0));
        let (release_in, spinning_in) = (release.clone(), spinning.clone());
        let _task = rt.spawn(klaw::cancel::shield(async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                for _ in 0..2 {
                    let (release, spinning) = (release_in.clone(), spinning_in.clone());
                    s.spawn(async move {
                        spinning.fetch_add(1, SeqCst);
                        // CPU-bound work that asks between steps; `release` only lets the test
                        // clean up if the shutdown hangs.
                        while !klaw::cancel::is_cancelled() && !release.is_set() {
                            std::hint::spin_loop();
                        }
                    });
                }
                Ok(())
            });
        }));
        wait_for("a child to spin on the only worker", || spinning.load(SeqCst) == 1);
        std::thread::sleep(ms(20));
        assert_eq!(spinning.load(SeqCst), 1, "the other child waits in the queue");

        let (report_tx, report_rx) = mpsc::channel();
        let shutting_down = std::thread::spawn(move || {
            let _ = report_tx.send(rt.shutdown(Duration::ZERO));
        });
        let report = report_rx.recv_timeout(secs(5));
        release.set();
        shutting_down.join().unwrap();
        let report = report.expect(
            "shutdown(0) hung: its own thread runs a child that the first step leaves to the \
             shield, and never reaches the last resort",
        );
        assert_eq!(report.abandoned, 0, "{report}");
    });
}

/// Spawns a blocking closure through `handle` when dropped (a task's destructor, run by the
/// shutdown that cancels the task), and sends its handle back.
struct SpawnBlockingOnDrop {
    handle: Handle,
    ran: Flag,
    spawned: mpsc::Sender<TaskHandle<()>>,
}

impl Drop for SpawnBlockingOnDrop {
    fn drop(&mut self) {
        // Long after the shutdown started cancelling, inside its first step (which waits for
        // this task).
        std::thread::sleep(ms(20));
        let ran = self.ran.clone();
        let late = self.handle.spawn_blocking(move || ran.set());
        let _ = self.spawned.send(late);
    }
}

/// Checks: a blocking closure spawned by a destructor that the shutdown runs never runs, and its
/// handle resolves `Cancelled(Shutdown)`, as an async task spawned there does
/// (`runtime_lifecycle_edges.rs::a_task_spawned_by_a_destructor_the_shutdown_runs_...`).
///
/// Breaks if the blocking pool takes (and runs, uncancelled) root closures submitted while the
/// shutdown's first step waits.
#[test]
fn a_blocking_closure_spawned_by_a_destructor_the_shutdown_runs_never_runs() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let ran = Flag::default();
        let (spawned_tx, spawned) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        let guard =
            SpawnBlockingOnDrop { handle: rt.handle(), ran: ran.clone(), spawned: spawned_tx };
        let _task = rt.spawn(async move {
            let _guard = guard;
            started_tx.send(()).unwrap();
            pending::<()>().await;
        });
        started.recv_timeout(secs(10)).unwrap();
        let report = rt.shutdown(Duration::ZERO);
        let late = spawned.recv_timeout(secs(10)).expect("the destructor ran");
        let outcome = klaw::runtime::block_on(late);
        assert!(!ran.is_set(), "a blocking closure spawned during the shutdown ran: {report}");
        assert_eq!(outcome, Err(TaskError::Cancelled(CancelReason::Shutdown)), "{report}");
    });
}

/// A root task whose drop tells that the shutdown has begun cancelling, and a task in a shielded
/// cleanup that waits for that, then opens a scope and spawns a parallel, a local and a blocking
/// child, awaiting each.
///
/// Checks: all three children run, and the scope returns `Ok`, within the shutdown's cancel
/// grace, as they would if the task had been cancelled through its handle.
///
/// Breaks if the first step refused every spawn (`Stats::begin_spawn`), as the shutdown did
/// before it left shielded scopes to their shields: the parallel child was refused (the local and blocking ones
/// ran), and the scope returned `Cancelled(Shutdown)` for it.
#[test]
fn a_shielded_scope_can_spawn_while_the_shutdown_waits_for_it() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let began = Flag::default();
        let marker_parked = Flag::default();
        let (guard, parked) = (SetOnDrop(began.clone()), marker_parked.clone());
        let _marker = rt.spawn(async move {
            let _guard = guard;
            parked.set();
            pending::<()>().await;
        });
        let (parallel, local, blocking) = (Flag::default(), Flag::default(), Flag::default());
        let outcome: Arc<Mutex<Option<Result<(), Error>>>> = Arc::default();
        let cleanup_started = Flag::default();
        let task = {
            let (parallel, local, blocking) = (parallel.clone(), local.clone(), blocking.clone());
            let (outcome, started) = (outcome.clone(), cleanup_started.clone());
            rt.spawn(async move {
                klaw::cancel::shield(async move {
                    started.set();
                    until(|| began.is_set()).await; // the shutdown cancels by now
                    let result: Result<(), Error> = klaw::scope!(|s| {
                        s.spawn(async move { parallel.set() }).await?;
                        s.spawn_local(async move { local.set() }).await?;
                        s.spawn_blocking(move || blocking.set()).await?;
                        Ok(())
                    });
                    *outcome.lock().unwrap() = Some(result);
                })
                .await;
                pending::<()>().await;
            })
        };
        wait_for("both tasks to run", || marker_parked.is_set() && cleanup_started.is_set());
        let report = rt.shutdown(Duration::ZERO);
        let outcome = outcome.lock().unwrap().take();
        assert!(
            matches!(outcome, Some(Ok(()))),
            "the shielded scope's children: {outcome:?}; {report}"
        );
        assert!(parallel.is_set() && local.is_set() && blocking.is_set(), "{report}");
        drop(task);
    });
}

/// A task whose shielded cleanup awaits a blocking closure inline: ten 10 ms steps, checking
/// `is_cancelled()` between them. Stops the task through its handle (`by_handle`) before
/// `shutdown`, or with `shutdown(0)` alone; returns whether the closure finished, and the report.
fn shielded_inline_blocking(by_handle: bool) -> (bool, ShutdownReport) {
    within(DEADLINE, move || {
        let rt = runtime(2);
        let (finished, started) = (Flag::default(), Flag::default());
        let (done, running) = (finished.clone(), started.clone());
        let task = rt.spawn(async move {
            klaw::cancel::shield(async move {
                let _ = BlockingTask::new(move || {
                    running.set();
                    for _ in 0..10 {
                        if klaw::cancel::is_cancelled() {
                            return;
                        }
                        std::thread::sleep(ms(10));
                    }
                    done.set();
                })
                .await;
            })
            .await;
            pending::<()>().await;
        });
        wait_for("the closure to start", || started.is_set());
        let report = if by_handle {
            assert!(task.cancel("stop"));
            rt.shutdown(secs(5))
        } else {
            rt.shutdown(Duration::ZERO)
        };
        (finished.is_set(), report)
    })
}

/// The control: cancelling the task through its handle, the shield holds the inline closure.
#[test]
fn a_shield_holds_an_inline_blocking_task_when_its_task_is_cancelled() {
    let (finished, report) = shielded_inline_blocking(true);
    assert!(finished, "{report}");
}

/// Checks: `shutdown(0)` cancels the task, and the shield holds the closure it awaits inline as
/// it does above, within the shutdown's cancel grace (as it now holds a scope's blocking child,
/// `shutdown_and_shields.rs::shutdown_lets_a_shielded_cleanup_finish_its_scopes_blocking_child`).
///
/// Breaks if the inline job were not marked as reached through its task
/// (`scope/inline_blocking.rs::inline`): `BlockingPool::cancel_for_shutdown` would cancel it directly,
/// and the closure would see `is_cancelled()` after one step and return.
#[test]
fn shutdown_lets_a_shielded_cleanup_finish_a_blocking_task_it_awaits_inline() {
    let (finished, report) = shielded_inline_blocking(false);
    assert!(finished, "the shielded cleanup's inline blocking task was cut short: {report}");
}

/// Captured by a closure that is still queued when the shutdown starts: its drop (on the
/// shutdown's thread, as `BlockingPool::cancel_for_shutdown` drops the jobs it withdrew, the first before the second)
/// says so, then waits until the shielded cleanup has queued its blocking child.
struct WaitOnDrop {
    dropping: Flag,
    child_queued: Flag,
}

impl Drop for WaitOnDrop {
    fn drop(&mut self) {
        self.dropping.set();
        let began = Instant::now();
        while !self.child_queued.is_set() && began.elapsed() < secs(5) {
            std::thread::sleep(ms(1));
        }
    }
}

/// One pool thread, held by a closure; two closures queued behind it; a task in a shielded
/// cleanup. `shutdown(0)`: the first step withdraws the two queued closures (trimming
/// the queue to nothing: its next number is the second's), and while it drops the first, the
/// cleanup queues a scope's blocking child, which gets the second's number.
///
/// Checks: the child runs once the pool's thread is free, and the scope returns `Ok`, within the
/// shutdown's cancel grace.
///
/// Breaks (the child never runs, the scope returns `Cancelled(Shutdown)` for it) if the queue
/// gave a number twice: a job the first step takes out keeps its cancel hook until it is
/// dropped, and that hook withdraws by number (`JobQueue::withdraw` trims the back).
#[test]
fn a_root_job_withdrawn_at_shutdown_does_not_take_a_later_job_with_it() {
    within(DEADLINE, || {
        let rt = klaw::Runtime::builder().workers(2).max_blocking_threads(1).build().unwrap();
        let (dropping, child_queued, occupied) =
            (Flag::default(), Flag::default(), Flag::default());

        // The pool's only thread, held (ignoring its cancel) until the child is queued and
        // the second withdrawn job has been dropped.
        let (occupying, queued) = (occupied.clone(), child_queued.clone());
        let _occupier = rt.spawn_blocking(move || {
            occupying.set();
            let began = Instant::now();
            while !queued.is_set() && began.elapsed() < secs(5) {
                std::thread::sleep(ms(1));
            }
            std::thread::sleep(ms(200));
        });
        wait_for("the occupier to hold the pool's thread", || occupied.is_set());

        // Two root closures, queued: the first step takes both out of the queue.
        let guard = WaitOnDrop { dropping: dropping.clone(), child_queued: child_queued.clone() };
        let _first = rt.spawn_blocking(move || drop(guard));
        let _second = rt.spawn_blocking(|| ());

        let ran = Flag::default();
        let outcome: Arc<Mutex<Option<Result<(), Error>>>> = Arc::default();
        let in_shield = Flag::default();
        let _task = {
            let (ran, outcome, in_shield) = (ran.clone(), outcome.clone(), in_shield.clone());
            let (dropping, queued) = (dropping.clone(), child_queued.clone());
            rt.spawn(async move {
                klaw::cancel::shield(async move {
                    in_shield.set();
                    // The shutdown cancels this task, and drops the first withdrawn job by now.
                    until(|| dropping.is_set()).await;
                    let result: Result<(), Error> = klaw::scope!(|s| {
                        let child = s.spawn_blocking(move || ran.set());
                        queued.set();
                        child.await?;
                        Ok(())
                    });
                    *outcome.lock().unwrap() = Some(result);
                })
                .await;
            })
        };
        wait_for("the cleanup to start", || in_shield.is_set());

        let report = rt.shutdown(Duration::ZERO);
        let outcome = outcome.lock().unwrap().take();
        assert!(
            matches!(outcome, Some(Ok(()))),
            "the shielded scope's blocking child: {outcome:?}; {report}"
        );
        assert!(ran.is_set(), "a stale cancel hook withdrew the shielded child: {report}");
    });
}

/// `a_spawn_racing_the_shutdown_is_never_reported_abandoned` (runtime_lifecycle_edges.rs) with
/// `spawn_blocking`.
///
/// Checks: nothing is reported abandoned (no closure here ignores a cancel, and none is stuck).
///
/// Breaks if a blocking spawn did not go through `Stats::begin_spawn` (refused by the pool
/// instead, it was counted live for a moment that `settle_spawns` did not wait for).
#[test]
fn a_blocking_spawn_racing_the_shutdown_is_never_reported_abandoned() {
    within(DEADLINE, || {
        // Ten rounds: a round may also take the whole cancel grace, if the spawns keep the
        // first step from ever seeing no task live.
        for round in 0..10 {
            let rt = klaw::Runtime::builder().workers(1).max_blocking_threads(2).build().unwrap();
            let handle = rt.handle();
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = stop.clone();
            let spawner = std::thread::spawn(move || {
                let mut spawned = 0u64;
                while !stopped.load(SeqCst) && spawned < 2_000_000 {
                    drop(handle.spawn_blocking(|| ()));
                    spawned += 1;
                }
                spawned
            });
            std::thread::sleep(ms(1));
            let report = rt.shutdown(Duration::ZERO);
            stop.store(true, SeqCst);
            let _ = spawner.join().unwrap();
            assert_eq!(report.abandoned, 0, "round {round}: {report}");
        }
    });
}

/// What the cleanup saw: the two root spawns refused, the inline blocking task's success, the
/// scope's result.
type Seen = (bool, bool, bool, Option<Result<(), Error>>);

/// Checks: with a marker and a cleanup task (both cancelled), two refused root spawns, and six
/// children that all succeed, the report says 6 succeeded, 4 cancelled, nothing else.
#[test]
fn a_shutdown_during_a_shielded_cleanup_counts_every_task_once() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let began = Flag::default();
        let parked = Flag::default();
        let _marker = {
            let (guard, parked) = (SetOnDrop(began.clone()), parked.clone());
            rt.spawn(async move {
                let _guard = guard;
                parked.set();
                pending::<()>().await;
            })
        };
        let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
        let in_shield = Flag::default();
        let _cleanup = {
            let (seen, in_shield, began) = (seen.clone(), in_shield.clone(), began.clone());
            rt.spawn(async move {
                klaw::cancel::shield(async move {
                    in_shield.set();
                    until(|| began.is_set()).await; // the first step cancels by now
                    let handle = klaw::Handle::current().unwrap();
                    let root_refused = handle.spawn(async {}).await.is_err();
                    let root_blocking_refused = handle.spawn_blocking(|| ()).await.is_err();
                    let inline_ok = Flag::default();
                    let result: Result<(), Error> = klaw::scope!(|s| {
                        s.spawn(async {}).await?;
                        s.spawn_local(async {}).await?;
                        s.spawn_blocking(|| ()).await?;
                        if BlockingTask::new(|| ()).await.is_ok() {
                            inline_ok.set();
                        }
                        klaw::scope!(limit = 1, |t| {
                            t.spawn(klaw::time::sleep(Duration::from_millis(5)));
                            t.spawn(async {});
                            Ok(())
                        })?;
                        Ok(())
                    });
                    *seen.lock().unwrap() = Some((
                        root_refused,
                        root_blocking_refused,
                        inline_ok.is_set(),
                        Some(result),
                    ));
                })
                .await;
                pending::<()>().await;
            })
        };
        wait_for("both tasks to run", || in_shield.is_set() && parked.is_set());
        let report = rt.shutdown(Duration::ZERO);
        let seen = seen.lock().unwrap().take();
        let Some((root_refused, root_blocking_refused, inline_ok, Some(result))) = seen else {
            panic!("the cleanup did not finish: {report}");
        };
        assert!(root_refused && root_blocking_refused, "a root spawn ran: {report}");
        assert!(inline_ok, "{report}");
        assert!(result.is_ok(), "{result:?}; {report}");
        assert_eq!(
            (report.succeeded, report.cancelled),
            (6, 4),
            "parallel, local, blocking, inline and two limited children succeeded; the marker, \
             the cleanup's task and the two refused root spawns were cancelled: {report}"
        );
        assert_eq!(
            (report.failed, report.panicked, report.timed_out, report.abandoned),
            (0, 0, 0, 0),
            "{report}"
        );
    });
}
