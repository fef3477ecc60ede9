//! A runtime's shutdown cancels from the top of the tree down: first the tasks nothing else
//! reaches (spawned on the runtime, children of a scope outside any task), whose cancel reaches
//! the rest through their scopes, so that a shield holds a scope's children here as on every
//! other path; then, if tasks are left after its cancel grace (1 s), every task directly. These
//! are the edges of that first step: what it must still refuse, what it must still let a
//! shielded cleanup do, and what must not hang it. (Translated in spirit from tokio's
//! `rt_common.rs` shutdown tests and trio's `test_cancel_shield_abort`.)

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{DEADLINE, Flag, SetOnDrop, ms, runtime, secs, until, wait_for, within};
use klaw::runtime::ShutdownReport;
use klaw::task::BlockingTask;
use klaw::{CancelReason, Error, Handle, TaskError, TaskHandle};

/// One worker, one task whose scope runs two CPU-bound children that stop when cancelled: the
/// first spins on the worker, the second waits in the shared queue, ahead of the scope's task
/// (which the shutdown's first step wakes). `shutdown(0)`'s own thread takes the second child
/// first.
///
/// Checks: `shutdown(0)` returns, nothing abandoned: after its cancel grace at the latest, its
/// last resort cancels both children directly.
///
/// Breaks (hangs; the test gives up after 5 s and releases the children) if the shutdown's own
/// thread ran tasks during the first step: it would poll the second child, which that step
/// leaves to its scope's task, and that task would never be polled (the worker spins in the
/// first child, the shutdown thread in the second), nor the last resort reached.
#[test]
fn shutdown_returns_when_its_own_thread_picks_up_a_cpu_bound_child_of_a_scope() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let release = Flag::default();
        let spinning = Arc::new(AtomicUsize::new(0));
        let (release_in, spinning_in) = (release.clone(), spinning.clone());
        let _task = rt.spawn(async move {
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
                pending::<()>().await;
                Ok(())
            });
        });
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
            "shutdown(0) hung: its own thread runs a child that the first step leaves to its scope's \
             task, and that task, queued behind the child, is never polled",
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
/// before it cancelled from the top: the parallel child was refused (the local and blocking ones
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
/// (`scope/inline_blocking.rs::inline`): `BlockingPool::cancel_roots` would cancel it directly,
/// and the closure would see `is_cancelled()` after one step and return.
#[test]
fn shutdown_lets_a_shielded_cleanup_finish_a_blocking_task_it_awaits_inline() {
    let (finished, report) = shielded_inline_blocking(false);
    assert!(finished, "the shielded cleanup's inline blocking task was cut short: {report}");
}
