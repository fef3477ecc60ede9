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
use std::sync::mpsc;
use std::time::Duration;

use common::{DEADLINE, Flag, ms, runtime, secs, until, within};
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
