//! Translated from tokio-util's
//! `tokio-util/tests/sync_cancellation_token.rs` (commit `ea91b33ca`), at the seams between
//! klaw's `Token` and the structured side tokio-util's token does not have: `run_until_cancelled`
//! whose future leaves children running, a child token of a region's token when the task around
//! the region is aborted, and `cancel_on_drop` (tokio-util's `DropGuard`) run by an abort and by a
//! runtime shutdown.
//!
//! Not duplicated from `tests/ported_cancellation.rs` (every tokio-util case on bare tokens),
//! `cancel_tokens_and_time.rs` (races, long chains) or `held_shields.rs`
//! (`run_until_cancelled_around_a_shield_...`).

mod common;

use std::future::pending;
use std::sync::mpsc;
use std::time::Duration;

use common::{DEADLINE, FetchError, Flag, fetch_ids, in_task, ms, runtime, secs, until, within};
use klaw::cancel::{Region, Token};
use klaw::task::BlockingTask;
use klaw::{CancelReason, Error, TaskError};

fn user(message: &'static str) -> CancelReason {
    CancelReason::user(message)
}

/// tokio-util: `run_until_cancelled_test` (first part: the token fires while the future is
/// pending, and `run_until_cancelled` gives `None`), where the future is a scope whose blocking
/// child is the one that cancels the token and then runs 50 ms more.
///
/// Checks: `run_until_cancelled` gives `Err(stop)` only after the blocking child has returned
/// (it is a region: "A region, like a scope, returns only after everything started inside it has
/// ended").
///
/// Breaks if the region built by `run_until_cancelled` (`Token::child` + `Region::run`) did not
/// adopt the children of the scope it drops.
#[test]
fn run_until_cancelled_returns_only_after_the_scope_inside_ended_its_blocking_child() {
    in_task(|| async move {
        let token = Token::new();
        let stop = token.clone();
        let done = Flag::default();
        let finished = done.clone();
        let outcome = token
            .run_until_cancelled(async move {
                klaw::scope!(|s| {
                    s.spawn_blocking(move || {
                        stop.cancel("stop");
                        std::thread::sleep(ms(50));
                        finished.set();
                    });
                    pending::<()>().await;
                    Ok(())
                })
            })
            .await;
        assert_eq!(outcome.err(), Some(user("stop")));
        assert!(done.is_set(), "run_until_cancelled returned while the blocking child still ran");
    });
}

/// tokio-util: `run_until_cancelled_test`, where the future's work fails *because* of the cancel:
/// a blocking child cancels the token, sees its scope cancelled and then returns `Err`.
///
/// Checks "nothing that failed is lost": the failure came after the token's cancel decided the
/// region's outcome, so `run_until_cancelled` still gives `Err(stop)`, and the failure reaches
/// the enclosing scope (book/src/cancellation.md: a scope in a cancelled region hands its
/// failures "to what encloses the region"), which fails with `FetchError(9)`, once.
///
/// Breaks if the region of `run_until_cancelled` drops failures it adopted instead of handing
/// them to the frame around it (`current::hand_over_failures`).
#[test]
fn a_failure_after_the_tokens_cancel_inside_run_until_cancelled_reaches_the_enclosing_scope() {
    in_task(|| async move {
        let token = Token::new();
        let result: Result<(), Error> = klaw::scope!(|_outer| {
            let stop = token.clone();
            let outcome = token
                .run_until_cancelled(async move {
                    klaw::scope!(|s| {
                        s.spawn(BlockingTask::fallible(move || {
                            stop.cancel("stop");
                            while !klaw::cancel::is_cancelled() {
                                std::thread::sleep(ms(1));
                            }
                            std::thread::sleep(ms(20));
                            Err::<(), _>(FetchError(9))
                        }));
                        pending::<()>().await;
                        Ok(())
                    })
                })
                .await;
            assert_eq!(outcome.err(), Some(user("stop")));
            Ok(())
        });
        assert_eq!(fetch_ids(&result.expect_err("the failure was lost")), [9]);
    });
}

/// tokio-util: `cancel_child_token_through_parent` and `create_child_token_after_parent_was_
/// cancelled`, where the parent is the token of a region running in a task, and what cancels it
/// is the task's abort (the region's token "hears the cancellation of anything the region runs
/// inside ... with that cancellation's reason").
///
/// Checks: a child made inside the region, kept outside, is cancelled with the abort's reason;
/// it keeps it after the region ended (trio: `cancel_called` does not change after exit); its
/// `cancelled_owned` completes outside any runtime; a grandchild made afterwards is born
/// cancelled, and `run_until_cancelled` on it never polls its future.
///
/// Breaks if `RegionState::heard` did not pass an *enclosing* cancellation on to `Tie::Token`
/// children, or `leave_enclosing` reset anything a child already heard.
#[test]
fn a_child_of_a_regions_token_hears_the_tasks_abort_and_keeps_it_after_the_region_ended() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let (child_tx, child_rx) = mpsc::channel::<Token>();
        let task = rt.spawn(async move {
            let region = Region::new();
            let token = region.token();
            let _ = region
                .run(async move {
                    child_tx.send(token.child()).unwrap();
                    pending::<()>().await;
                })
                .await;
        });
        let child = child_rx.recv_timeout(secs(10)).unwrap();
        assert!(!child.is_cancelled());
        assert!(task.cancel("abort"));
        assert_eq!(rt.block_on(task), Err(TaskError::Cancelled(user("abort"))));
        assert_eq!(child.reason(), Some(user("abort")));
        assert_eq!(klaw::runtime::block_on(child.clone().cancelled_owned()), user("abort"));
        let born = child.child();
        assert_eq!(born.reason(), Some(user("abort")));
        let polled = Flag::default();
        let saw = polled.clone();
        let outcome = klaw::runtime::block_on(born.run_until_cancelled(async move { saw.set() }));
        assert_eq!(outcome, Err(user("abort")));
        assert!(!polled.is_set(), "run_until_cancelled polled a future on a cancelled token");
    });
}

/// tokio-util: `DropGuard` (its `drop_guard` cancels the token when the guard goes), held by a
/// scope's child when the *runtime* shuts down, with a waiter on `cancelled_owned` on a plain
/// thread outside the runtime (tokio's `rt_common::shutdown_timeout`-style teardown).
///
/// Checks: the shutdown drops the child's body, the guard cancels the token with
/// `ParentCancelled`, the outside waiter wakes with it, and nothing is abandoned.
///
/// Breaks if a body dropped by the shutdown (its runner cancelled and polled, or dropped with the
/// executor) did not run its destructors, or a `cancelled_owned` woken from a destructor during
/// shutdown were lost.
#[test]
fn a_cancel_on_drop_guard_fires_during_runtime_shutdown_and_wakes_a_waiter_outside() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let token = Token::new();
        let guard = token.clone().cancel_on_drop();
        let (started_tx, started) = mpsc::channel::<()>();
        let _task = rt.spawn(async move {
            klaw::scope!(|s| {
                s.spawn(async move {
                    let _guard = guard;
                    started_tx.send(()).unwrap();
                    pending::<()>().await;
                });
                pending::<()>().await;
                Ok(())
            })
        });
        started.recv_timeout(secs(10)).unwrap();
        let waiting = token.clone();
        let waiter = std::thread::spawn(move || klaw::runtime::block_on(waiting.cancelled_owned()));
        std::thread::sleep(ms(10)); // the waiter waits (not needed for the outcome)
        let report = rt.shutdown(Duration::ZERO);
        assert_eq!(report.abandoned, 0, "{report}");
        assert_eq!(waiter.join().unwrap(), CancelReason::ParentCancelled);
    });
}

/// tokio-util: `drop_parent_before_child_tokens` + `run_until_cancelled_test`, inside a scope:
/// a sibling awaits `run_until_cancelled` on a grandchild token whose middle token was dropped,
/// and the body cancels the grandparent once the sibling waits.
///
/// Checks: the chain holds through the dropped middle (`RegionState` keeps its parent alive
/// through the link), the sibling gets the grandparent's reason, and the scope returns it.
///
/// Breaks if dropping a middle token unlinked its children from the grandparent.
#[test]
fn run_until_cancelled_on_a_grandchild_token_hears_the_grandparent_through_a_dropped_parent() {
    in_task(|| async move {
        let grandparent = Token::new();
        let parent = grandparent.child();
        let grandchild = parent.child();
        drop(parent);
        let waiting = Flag::default();
        let result: Result<CancelReason, Error> = klaw::scope!(|s| {
            let signal = waiting.clone();
            let sibling = s.spawn(async move {
                signal.set();
                grandchild.run_until_cancelled(pending::<()>()).await.unwrap_err()
            });
            until(|| waiting.is_set()).await;
            klaw::time::sleep(ms(2)).await;
            grandparent.cancel("from the top");
            Ok(sibling.await?)
        });
        assert_eq!(result.unwrap(), user("from the top"));
    });
}
