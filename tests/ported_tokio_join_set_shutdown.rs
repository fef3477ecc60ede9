//! Translated from tokio's `tokio/tests/task_join_set.rs` (commit
//! `ea91b33ca`): `JoinSet::shutdown` (abort every task, then wait for each) and `abort_all`
//! followed by `join_next`, on klaw's `ChildSet` (`cancel_all`, then `next_finished` until
//! `None`), where a set's children may have descendants of their own and a cancelled child's
//! cleanup may fail.
//!
//! Not duplicated from `tests/ported_tokio_tasks.rs` (`abort_all`, `abort_tasks`,
//! `spawn_then_shutdown` on children without descendants) or `scope_tools.rs`.

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Alive, PanicOnDrop, in_task, ms, until};
use klaw::{CancelReason, Error, TaskError};

/// How long a slow child's drop takes (`Alive::pending_child`).
const SLOW_DROP: Duration = ms(30);

/// tokio: `JoinSet::shutdown` ("aborts all tasks and waits for them to finish shutting down"),
/// as `spawn_then_shutdown` uses it, with children that each run a scope of their own holding a
/// blocking grandchild (40 ms past its cancel) and a parallel grandchild (30 ms drop).
///
/// Checks: `cancel_all` then draining `next_finished` hands back four `Cancelled(shutdown)`
/// outcomes, and when the drain ends every grandchild has ended too (a set's `next_finished`
/// gives a child only once it has ended, which comes after its descendants).
///
/// Breaks if a set hands a child over when its output is decided rather than when it has ended
/// (after `end_after_descendants`), so the body runs on while grandchildren still run.
#[test]
fn cancel_all_then_drain_returns_only_after_every_childs_descendants_ended() {
    in_task(|| async move {
        let alive = Alive::default();
        let running = Arc::new(AtomicUsize::new(0));
        let result: Result<usize, Error> = klaw::scope!(|s| {
            let mut set = s.child_set();
            for _ in 0..4 {
                let (alive, running) = (alive.clone(), running.clone());
                set.spawn(async move {
                    let _: Result<(), Error> = klaw::scope!(|inner| {
                        let guard = alive.guard(Duration::ZERO);
                        let running = running.clone();
                        inner.spawn_blocking(move || {
                            let _guard = guard;
                            running.fetch_add(1, SeqCst);
                            while !klaw::cancel::is_cancelled() {
                                std::thread::sleep(ms(1));
                            }
                            std::thread::sleep(ms(40));
                        });
                        inner.spawn(alive.pending_child(SLOW_DROP));
                        pending::<()>().await;
                        Ok(())
                    });
                });
            }
            until(|| running.load(SeqCst) == 4).await;
            set.cancel_all("shutdown");
            let mut cancelled = 0;
            while let Some(outcome) = set.next_finished().await {
                match outcome {
                    Err(Error::Task { error: TaskError::Cancelled(reason), .. }) => {
                        assert_eq!(reason, CancelReason::user("shutdown"));
                        cancelled += 1;
                    }
                    other => panic!("a child came back as {other:?}"),
                }
            }
            assert_eq!(alive.count(), 0, "the drain ended while a grandchild still ran");
            Ok(cancelled)
        });
        assert_eq!(result.unwrap(), 4);
    });
}

/// tokio: `abort_all` then `join_next` (each aborted task comes back `is_cancelled`), combined
/// with `test_abort_task_that_panics_on_drop_returned`: in a supervisor scope (the mode in which a
/// set hands failures to the body), one of three children holds a value whose destructor panics.
///
/// Checks: all three come back `Cancelled("abort all")` (klaw: the cancel decided first), and the
/// scope still returns the cleanup panic as its error: a supervisor cancels nobody on a failure,
/// but "nothing that failed is lost" (`ChildLink::raced` → `Failure::Raced`).
///
/// Breaks if a raced failure in supervisor mode is treated as the body's to report (it never
/// reaches the body: the set handed back `Cancelled`) and so dropped.
#[test]
fn cancel_all_in_a_supervisor_hands_back_cancelled_and_the_scope_keeps_a_cleanup_panic() {
    in_task(|| async move {
        let started = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
        let record = seen.clone();
        let result: Result<(), Error> = klaw::scope!(supervisor, |s| {
            let mut set = s.child_set();
            for i in 0..3 {
                let started = started.clone();
                set.spawn(async move {
                    let _bomb = (i == 1).then(|| PanicOnDrop("the cleanup of child 1 failed"));
                    started.fetch_add(1, SeqCst);
                    pending::<()>().await;
                });
            }
            until(|| started.load(SeqCst) == 3).await;
            set.cancel_all("abort all");
            while let Some(outcome) = set.next_finished().await {
                let cancelled = matches!(
                    &outcome,
                    Err(Error::Task { error: TaskError::Cancelled(reason), .. })
                        if *reason == CancelReason::user("abort all")
                );
                record.lock().unwrap().push(cancelled);
            }
            Ok(())
        });
        assert_eq!(*seen.lock().unwrap(), [true, true, true]);
        let error = result.expect_err("the cleanup panic was lost");
        assert!(format!("{error:?}").contains("the cleanup of child 1 failed"), "{error:?}");
    });
}
