//! Runtime shutdown while scopes with blocking children and shields are running. Translated
//! from trio's `src/trio/_core/_tests/test_run.py` (`test_cancel_shield_abort`: a shield around
//! a nursery protects the nursery's children, the sleeper keeps sleeping while the outer scope
//! is cancelled) and tokio's `rt_common.rs` shutdown tests (`shutdown_timeout`,
//! `outstanding_tasks_dropped`).
//!
//! klaw's rules in play: a shield runs a future to its end even if its task or the regions
//! around it are cancelled, children of a scope opened in it included; "ended" is transitive on
//! every path, shutdown included, so a task's handle waits for a blocking child that outlives
//! the shutdown's cancel grace.

mod common;

use std::future::pending;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{DEADLINE, Flag, SetOnDrop, ms, runtime, secs, until, wait_for, within};
use klaw::runtime::ShutdownReport;
use klaw::{CancelReason, Error, TaskError};

/// What the three children of the shielded cleanup below finished.
#[derive(Clone, Default)]
struct Flushed {
    local: Flag,
    parallel: Flag,
    blocking: Flag,
}

/// A task body whose cleanup runs in a shield and delegates to a scope opened inside it: a local
/// child and a parallel child that each take 100 ms, and a blocking child that works in ten
/// 10 ms steps, checking `is_cancelled()` between steps as book/src/cancellation.md asks. It
/// signals `started` once the blocking child runs, then waits until all three are done; after the
/// shield the body waits forever.
async fn shielded_cleanup(flushed: Flushed, started: mpsc::Sender<()>) {
    klaw::cancel::shield(async move {
        let Flushed { local, parallel, blocking } = flushed;
        let _: Result<(), Error> = klaw::scope!(|s| {
            s.spawn_local(async move {
                klaw::time::sleep(ms(100)).await;
                local.set();
            });
            s.spawn(async move {
                klaw::time::sleep(ms(100)).await;
                parallel.set();
            });
            let running = Flag::default();
            let is_running = running.clone();
            s.spawn_blocking(move || {
                is_running.set();
                for _ in 0..10 {
                    if klaw::cancel::is_cancelled() {
                        return;
                    }
                    std::thread::sleep(ms(10));
                }
                blocking.set();
            });
            until(|| running.is_set()).await;
            started.send(()).unwrap();
            Ok(())
        });
    })
    .await;
    pending::<()>().await;
}

/// trio: `test_cancel_shield_abort` (while the shield is on, the nursery's child is not
/// cancelled), with klaw's abort of the task (`TaskHandle::cancel`) as the outer cancellation.
///
/// Checks: the shield holds the task's cancellation; the scope opened inside it hears nothing
/// (`frames::enclosing` stops at the shield), so its local, parallel and blocking children all
/// finish; the handle then resolves `Cancelled(stop)`.
///
/// Breaks if a cancellation reached past a shield into a scope opened inside it.
#[test]
fn a_shielded_cleanup_finishes_every_child_of_its_scope_when_its_task_is_cancelled() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let flushed = Flushed::default();
        let (started_tx, started) = mpsc::channel();
        let task = rt.spawn(shielded_cleanup(flushed.clone(), started_tx));
        started.recv_timeout(secs(10)).expect("the cleanup started");
        assert!(task.cancel("stop"));
        assert_eq!(rt.block_on(task), Err(TaskError::Cancelled(CancelReason::user("stop"))));
        assert!(flushed.local.is_set(), "the local child of the shielded scope was cut short");
        assert!(
            flushed.parallel.is_set(),
            "the parallel child of the shielded scope was cut short"
        );
        assert!(
            flushed.blocking.is_set(),
            "the blocking child of the shielded scope was cut short"
        );
    });
}

/// Runs [`shielded_cleanup`] in a task and, once its blocking child runs, shuts the runtime down
/// with no grace period: what finished, and the report.
fn shutdown_during_a_shielded_cleanup() -> (Flushed, ShutdownReport) {
    within(DEADLINE, || {
        let rt = runtime(2);
        let flushed = Flushed::default();
        let (started_tx, started) = mpsc::channel();
        let _task = rt.spawn(shielded_cleanup(flushed.clone(), started_tx));
        started.recv_timeout(secs(10)).expect("the cleanup started");
        let report = rt.shutdown(Duration::ZERO);
        (flushed, report)
    })
}

/// The test above with `shutdown(0)` as the outer cancellation, looking at the local child: a
/// shutdown cancels the task, and the shield holds the scope's children as it does for any
/// other cancel of the task, within the shutdown's cancel grace (1 s).
///
/// Breaks if shutdown cancelled each task directly (children of a scope in a shield included,
/// as it did): the local child cancelled itself at its next poll, 0 ms into its 100.
#[test]
fn shutdown_lets_a_shielded_cleanup_finish_its_scopes_local_child() {
    let (flushed, report) = shutdown_during_a_shielded_cleanup();
    assert!(flushed.local.is_set(), "the shielded scope's local child was cut short: {report}");
    assert_eq!(report.abandoned, 0, "{report}");
}

/// The same, looking at the parallel child of the shielded scope.
///
/// Breaks if the shutdown cancelled every waiting task directly (the parallel child sleeping its
/// 100 ms was cancelled at once).
#[test]
fn shutdown_lets_a_shielded_cleanup_finish_its_scopes_parallel_child() {
    let (flushed, report) = shutdown_during_a_shielded_cleanup();
    assert!(
        flushed.parallel.is_set(),
        "the shielded scope's parallel child was cut short: {report}"
    );
}

/// The same, looking at the blocking child, which checks `is_cancelled()` between steps.
///
/// Breaks if the blocking pool's shutdown cancelled every running closure directly (the closure
/// saw `is_cancelled()` and returned after one step).
#[test]
fn shutdown_lets_a_shielded_cleanup_finish_its_scopes_blocking_child() {
    let (flushed, report) = shutdown_during_a_shielded_cleanup();
    assert!(
        flushed.blocking.is_set(),
        "the shielded scope's blocking child was cut short: {report}"
    );
}

/// tokio: `rt_common::shutdown_timeout` / `rt_common::outstanding_tasks_dropped` with a task
/// whose scope has a blocking child that ignores its cancel for longer than the shutdown's cancel
/// grace (1 s, `runtime/mod.rs::CANCEL_GRACE`): held on a channel until the test releases it.
///
/// Checks: `shutdown(0)` returns (a blocking closure cannot hold it), reporting something
/// abandoned; the scope's task has *not* resolved while its blocking child still runs; once the
/// closure returns, the handle resolves `Cancelled(Shutdown)`, after it ("ended" means the same
/// on the shutdown path as on every other).
///
/// Breaks if dropping the executor after the cancel grace resolved a task whose end was deferred
/// until its descendants (`Descendants::then_run`), or if the deferred end never ran once the
/// runtime was gone.
#[test]
fn a_scope_tasks_handle_waits_for_a_blocking_child_that_outlives_the_shutdowns_cancel_grace() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let (release_tx, release) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let returned = Flag::default();
        let closure_returned = returned.clone();
        let task = rt.spawn(async move {
            klaw::scope!(|s| {
                s.spawn_blocking(move || {
                    started_tx.send(()).unwrap();
                    let _ = release.recv_timeout(secs(20)); // ignores is_cancelled()
                    closure_returned.set();
                });
                pending::<()>().await;
                Ok(())
            })
        });
        started.recv_timeout(secs(10)).expect("the blocking child runs");
        let report = rt.shutdown(Duration::ZERO);
        assert!(report.abandoned >= 1, "{report}");
        assert!(!returned.is_set());
        assert!(!task.is_finished(), "the task resolved while its blocking child still ran");
        release_tx.send(()).unwrap();
        let outcome = klaw::runtime::block_on(task);
        assert!(returned.is_set(), "the handle resolved before the blocking child returned");
        assert!(
            matches!(outcome, Err(TaskError::Cancelled(CancelReason::Shutdown))),
            "{outcome:?}"
        );
    });
}

/// A shielded scope whose task is stuck in a poll that never yields (the scope's body spins
/// after spawning a child), shut down with no grace period.
///
/// Checks: the shutdown's first step leaves the child to the shield, and the stuck task never
/// gets past its poll; when the cancel grace is over with tasks left, the shutdown cancels every
/// task directly, so the child is dropped before `shutdown` returns, and only the stuck task is
/// reported abandoned.
///
/// Breaks if the shutdown left the children of scopes under a shield to the shield with no last
/// resort: the child would wait for ever, held by the executor the stuck worker keeps.
#[test]
fn a_shielded_child_whose_scopes_task_is_stuck_in_a_poll_is_cancelled_at_the_last_resort() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let (release, child_dropped, child_started) =
            (Flag::default(), Flag::default(), Flag::default());
        let (spinning, dropped, started) =
            (release.clone(), child_dropped.clone(), child_started.clone());
        let _stuck = rt.spawn(klaw::cancel::shield(async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                s.spawn(async move {
                    let _dropped = SetOnDrop(dropped);
                    started.set();
                    pending::<()>().await;
                });
                // Never yields: this worker is stuck here until the test releases it.
                while !spinning.is_set() {
                    std::hint::spin_loop();
                }
                Ok(())
            });
        }));
        wait_for("the child to start", || child_started.is_set());
        let report = rt.shutdown(Duration::ZERO);
        let dropped_by_then = child_dropped.is_set();
        release.set();
        assert!(dropped_by_then, "the stuck task's child outlived the shutdown: {report}");
        assert_eq!(report.abandoned, 1, "{report}");
    });
}

/// A shielded cleanup whose scope's child takes longer than the shutdown's cancel grace (1 s).
///
/// Checks: `shutdown(0)` does not wait for it: once the grace is over, the child is cancelled
/// and dropped, the cleanup's scope returns, the task ends, and nothing is abandoned.
///
/// Breaks if a shield held a scope's children through the shutdown's last resort (the shutdown
/// would report the task abandoned, its child still waiting).
#[test]
fn a_shielded_cleanup_longer_than_the_shutdowns_grace_is_cut_at_its_last_resort() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let (child_finished, child_dropped, child_started) =
            (Flag::default(), Flag::default(), Flag::default());
        let (finished, dropped, started) =
            (child_finished.clone(), child_dropped.clone(), child_started.clone());
        let task = rt.spawn(async move {
            klaw::cancel::shield(async move {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    s.spawn(async move {
                        let _dropped = SetOnDrop(dropped);
                        started.set();
                        klaw::time::sleep(secs(60)).await;
                        finished.set();
                    });
                    Ok(())
                });
            })
            .await;
        });
        wait_for("the child to start", || child_started.is_set());
        let report = rt.shutdown(Duration::ZERO);
        assert!(child_dropped.is_set() && !child_finished.is_set(), "{report}");
        assert_eq!(report.abandoned, 0, "{report}");
        assert!(task.is_finished(), "{report}");
    });
}

/// A shielded cleanup's scope whose parallel child opens a scope of its own, with no shield in
/// that child, and a grandchild there that takes 100 ms.
///
/// Checks: `shutdown(0)` lets the grandchild finish: what a shield holds is the whole subtree
/// under it, as a handle's cancel of the task would leave it (trio: a shielded cancel scope
/// keeps outside cancellation from every task inside it).
///
/// Breaks if only the direct children of a scope under a shield were left to it
/// (`frames::scope_under_shield` not asking whether its task is under one).
#[test]
fn shutdown_lets_a_shielded_cleanup_finish_its_scopes_grandchildren() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let (finished, started) = (Flag::default(), Flag::default());
        let (grandchild_finished, grandchild_started) = (finished.clone(), started.clone());
        let _task = rt.spawn(async move {
            klaw::cancel::shield(async move {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    s.spawn(async move {
                        let _: Result<(), Error> = klaw::scope!(|s| {
                            s.spawn(async move {
                                grandchild_started.set();
                                klaw::time::sleep(ms(100)).await;
                                grandchild_finished.set();
                            });
                            Ok(())
                        });
                    });
                    Ok(())
                });
            })
            .await;
            pending::<()>().await;
        });
        wait_for("the grandchild to start", || started.is_set());
        let report = rt.shutdown(Duration::ZERO);
        assert!(finished.is_set(), "the shielded scope's grandchild was cut short: {report}");
        assert_eq!(report.abandoned, 0, "{report}");
    });
}

/// How the task running the cleanup is stopped.
#[derive(Clone, Copy)]
enum Stop {
    Handle,
    Shutdown,
}

/// A task whose shield waits until the task is being stopped, then runs, through
/// `klaw::runtime::block_on`, a scope with one parallel child that takes 20 ms. Returns what
/// that scope returned and whether the child ran to its end.
fn scope_under_block_on_in_a_shield(stop: Stop) -> (Option<Result<(), Error>>, bool) {
    within(DEADLINE, move || {
        let rt = runtime(2);
        let stopping = Flag::default();
        // For the shutdown: a root task whose drop says the first step has begun cancelling.
        let marker_parked = Flag::default();
        let _marker = {
            let (guard, parked) = (SetOnDrop(stopping.clone()), marker_parked.clone());
            rt.spawn(async move {
                let _guard = guard;
                parked.set();
                pending::<()>().await;
            })
        };
        let (ran, in_shield) = (Flag::default(), Flag::default());
        let outcome: Arc<Mutex<Option<Result<(), Error>>>> = Arc::default();
        let task = {
            let (ran, in_shield, outcome, stopping) =
                (ran.clone(), in_shield.clone(), outcome.clone(), stopping.clone());
            rt.spawn(async move {
                klaw::cancel::shield(async move {
                    in_shield.set();
                    until(|| stopping.is_set()).await;
                    let result = klaw::runtime::block_on(async move {
                        klaw::scope!(|s| {
                            s.spawn(async move {
                                klaw::time::sleep(ms(20)).await;
                                ran.set();
                            })
                            .await?;
                            Ok(())
                        })
                    });
                    *outcome.lock().unwrap() = Some(result);
                })
                .await;
                pending::<()>().await;
            })
        };
        wait_for("both tasks to run", || in_shield.is_set() && marker_parked.is_set());
        match stop {
            Stop::Handle => {
                assert!(task.cancel("stop"));
                stopping.set();
                let _ = rt.block_on(task);
                let _report = rt.shutdown(Duration::ZERO);
            }
            Stop::Shutdown => {
                let report = rt.shutdown(Duration::ZERO);
                assert_eq!(report.abandoned, 0, "{report}");
                drop(task);
            }
        }
        let result = outcome.lock().unwrap().take();
        (result, ran.is_set())
    })
}

/// The control: a handle's cancel of the task does not reach the scope under `block_on`.
#[test]
fn a_scope_under_block_on_in_a_shield_runs_its_child_when_its_task_is_cancelled() {
    let (result, ran) = scope_under_block_on_in_a_shield(Stop::Handle);
    assert!(matches!(result, Some(Ok(()))), "{result:?}");
    assert!(ran);
}

/// Checks: at `shutdown(0)`, the shield holds the shutdown as it holds the handle's cancel, and
/// the scope it runs under `block_on` starts and finishes its child within the cancel grace.
///
/// Breaks if the scope is not taken for one under a shield: its child is refused at once and
/// the scope returns `Cancelled(Shutdown)`.
#[test]
fn a_scope_under_block_on_in_a_shield_runs_its_child_during_a_shutdown() {
    let (result, ran) = scope_under_block_on_in_a_shield(Stop::Shutdown);
    assert!(matches!(result, Some(Ok(()))), "the scope's child was cut: {result:?}");
    assert!(ran, "the scope's child never ran to its end");
}
