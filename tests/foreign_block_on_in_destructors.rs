//! A foreign executor's `block_on` (`futures_lite`'s, as `futures::executor::block_on` or
//! `pollster` would be) running a bounded klaw region or a scope in a destructor of a cancelled
//! async task's body: dropped in the poll that sees the cancel, and during the runtime's
//! shutdown. The body is dropped with its task current but not polled: nothing will drop what
//! such a destructor runs, so a region there returns at its own deadline and a scope there
//! gives its value, as under klaw's own `block_on` (`tests/nursery_across_frames.rs`) and in a
//! blocking closure (`tests/foreign_executor_edges.rs`).
//!
//! Peers: tokio's `tokio/tests/task_abort.rs` (`test_abort_task_that_panics_on_drop_*`: what a
//! destructor does while an abort drops the task must not escape or wedge it) and
//! `rt_basic.rs::acquire_mutex_in_drop` (a destructor run by the teardown blocks on something);
//! trio's cleanup in a `finally` bounded by `move_on_after`.
//!
//! Each scenario runs under a 10 s limit: the failure this guards against is a hang.

mod common;

use std::future::pending;
use std::time::Duration;

use common::{Flag, ms, runtime, secs, wait_for, within};
use klaw::Error;

/// Runs its closure when dropped, and sets its flag if the closure said it worked.
struct OnDrop(Option<Box<dyn FnOnce() -> bool + Send>>, Flag);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(step) = self.0.take() {
            if step() {
                self.1.set();
            }
        }
    }
}

/// Runs `last_step` in the destructor of a value the body of a task holds, once the task has
/// been cancelled through its handle (the runner drops the body in the poll that sees the cancel); true if `last_step` said it worked, once the handle resolved.
fn in_a_cancelled_tasks_destructor(last_step: impl FnOnce() -> bool + Send + 'static) -> bool {
    within(secs(10), move || {
        let rt = runtime(2);
        let (worked, started) = (Flag::default(), Flag::default());
        let value = OnDrop(Some(Box::new(last_step)), worked.clone());
        let running = started.clone();
        let task = rt.spawn(async move {
            let _value = value;
            running.set();
            pending::<()>().await;
        });
        wait_for("the task started", || started.is_set());
        assert!(task.cancel("stop"));
        let _ = rt.block_on(task);
        worked.is_set()
    })
}

/// tokio: `test_abort_task_that_panics_on_drop_contained` (a destructor run by an abort must not
/// wedge the task), with the destructor bounding an async cleanup by `move_on_after` under
/// `futures_lite::future::block_on`, as the book bounds one under klaw's `block_on`.
///
/// Checks: the region returns `None` at its 5 ms deadline, and the task's handle resolves.
///
/// Breaks if a region under a foreign `block_on` in a cancelled task's destructor waits to be
/// dropped by the task, which is blocked in that very destructor.
#[test]
fn a_bounded_cleanup_under_a_foreign_block_on_in_a_cancelled_tasks_destructor_returns() {
    let worked = in_a_cancelled_tasks_destructor(|| {
        let outcome =
            futures_lite::future::block_on(klaw::cancel::move_on_after(ms(5), pending::<()>()));
        outcome.is_none()
    });
    assert!(worked, "the region's own deadline did not end the cleanup");
}

/// The same destructor running a scope whose body awaits its local child (20 + 1), as
/// `nursery_across_frames.rs::a_scope_run_by_block_on_in_a_cancelled_tasks_destructor_completes`
/// does under klaw's `block_on`.
///
/// Checks: the scope gives 21 (or at least returns).
///
/// Breaks if a scope under a foreign `block_on` in a cancelled task's destructor takes the task's
/// cancellation for its own.
#[test]
fn a_scope_under_a_foreign_block_on_in_a_cancelled_tasks_destructor_gives_its_value() {
    let worked = in_a_cancelled_tasks_destructor(|| {
        let value: Result<u32, Error> = futures_lite::future::block_on(async {
            klaw::scope!(|s| {
                let child = s.spawn_local(async { 20u32 });
                Ok(child.await? + 1)
            })
        });
        value.ok() == Some(21)
    });
    assert!(worked, "the scope in the destructor did not give its value");
}

/// tokio: `rt_basic.rs::acquire_mutex_in_drop` (a destructor run by the runtime's teardown
/// blocks on something), with the bounded foreign cleanup of the first test: the runtime is shut
/// down (`shutdown(0)`) while the task waits.
///
/// Checks: the shutdown returns, the cleanup returned at its deadline, nothing is abandoned.
///
/// Breaks if the shutdown's cancel poll of the task runs the destructor with the task "polled"
/// and the region then waits forever: either a worker is stuck (reported abandoned, the cleanup
/// never returned) or the shutdown's own thread is (the shutdown never returns).
#[test]
fn shutdown_lets_a_bounded_foreign_cleanup_in_a_destructor_return() {
    within(secs(10), || {
        let rt = runtime(1);
        let (worked, started) = (Flag::default(), Flag::default());
        let value = OnDrop(
            Some(Box::new(|| {
                let outcome = futures_lite::future::block_on(klaw::cancel::move_on_after(
                    ms(5),
                    pending::<()>(),
                ));
                outcome.is_none()
            })),
            worked.clone(),
        );
        let running = started.clone();
        let _task = rt.spawn(async move {
            let _value = value;
            running.set();
            pending::<()>().await;
        });
        wait_for("the task started", || started.is_set());
        let report = rt.shutdown(Duration::ZERO);
        assert!(worked.is_set(), "the cleanup did not return at its deadline: {report}");
        assert_eq!(report.abandoned, 0, "{report}");
    });
}
