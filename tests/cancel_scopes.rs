//! Cancel regions: nesting, deadlines, shields that hold a cancellation until cleanup is done,
//! and `is_cancelled` / `checkpoint` for code that cannot be interrupted.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Flag, in_task, ms, runtime, secs, until};
use klaw::{CancelReason, Error, Task, TaskError, cancel::Region};

#[klaw::test(workers = 1, timeout = "10s")]
async fn nested_move_on_after_the_inner_deadline_wins_when_it_is_first() {
    let started = Instant::now();
    let outer = klaw::cancel::move_on_after(Duration::from_secs(60), async {
        let inner = klaw::cancel::move_on_after(
            Duration::from_millis(10),
            klaw::time::sleep(Duration::from_secs(60)),
        )
        .await;
        assert_eq!(inner, None);
        "the outer region goes on"
    })
    .await;
    assert_eq!(outer, Some("the outer region goes on"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn nested_move_on_after_the_outer_deadline_cancels_the_inner_region() {
    let inner_returned = Flag::default();
    let returned = inner_returned.clone();
    let outer = klaw::cancel::move_on_after(Duration::from_millis(10), async move {
        let _ = klaw::cancel::move_on_after(
            Duration::from_secs(60),
            klaw::time::sleep(Duration::from_secs(60)),
        )
        .await;
        returned.set(); // never reached: the outer region dropped everything inside it
    })
    .await;
    assert_eq!(outer, None);
    assert!(!inner_returned.is_set());
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn is_cancelled_sees_the_innermost_cancelled_region() {
    let region = Region::new();
    let token = region.token();
    let result = region
        .run(async {
            assert!(!klaw::cancel::is_cancelled());
            token.cancel("stop");
            assert!(klaw::cancel::is_cancelled(), "the enclosing region is cancelled");
            klaw::cancel::checkpoint().await; // never returns: the region drops us here
            unreachable!("checkpoint returned in a cancelled region");
        })
        .await;
    assert_eq!(result, Err(CancelReason::user("stop")));
    assert!(!klaw::cancel::is_cancelled(), "outside the region nothing is cancelled");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn fail_after_is_a_typed_error_for_question_mark() {
    async fn bounded() -> Result<(), Error> {
        klaw::cancel::fail_after(
            Duration::from_millis(5),
            klaw::time::sleep(Duration::from_secs(60)),
        )
        .await?;
        Ok(())
    }
    assert!(
        matches!(bounded().await, Err(Error::Elapsed(e)) if e.after() == Duration::from_millis(5))
    );
}

#[test]
fn shielded_cleanup_runs_to_the_end_when_the_task_is_cancelled() {
    let rt = runtime(2);
    let cleaned = Flag::default();
    let after_shield = Flag::default();
    let (cleaned2, after2) = (cleaned.clone(), after_shield.clone());
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let handle = rt.spawn(async move {
        klaw::cancel::shield(async {
            entered_tx.send(()).unwrap();
            klaw::time::sleep(Duration::from_millis(30)).await; // cancelled meanwhile
            assert!(!klaw::cancel::is_cancelled(), "a shield hides the cancellation");
            cleaned2.set();
        })
        .await;
        assert!(klaw::cancel::is_cancelled(), "after the shield the cancellation is visible again");
        klaw::time::sleep(Duration::from_secs(60)).await; // dropped here
        after2.set();
    });
    entered.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(handle.cancel("shutting down"));
    let result = rt.block_on(handle);
    assert_eq!(result, Err(TaskError::Cancelled(CancelReason::user("shutting down"))));
    assert!(cleaned.is_set(), "the shielded cleanup was cut short");
    assert!(!after_shield.is_set());
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_shield_holds_a_region_open_until_the_cleanup_is_done() {
    let cleaned = Flag::default();
    let outcome = klaw::cancel::move_on_after(Duration::from_millis(5), async {
        klaw::cancel::shield(async {
            klaw::time::sleep(Duration::from_millis(30)).await; // outlives the deadline
            cleaned.set();
        })
        .await;
        klaw::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    assert_eq!(outcome, None);
    assert!(cleaned.is_set());
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_region_inside_a_shield_still_has_its_own_deadline() {
    let outcome = klaw::cancel::move_on_after(Duration::from_millis(5), async {
        klaw::cancel::shield(klaw::cancel::move_on_after(
            Duration::from_millis(10),
            std::future::pending::<()>(),
        ))
        .await
    })
    .await;
    // The inner deadline ended the shielded work; then the outer region, cancelled meanwhile,
    // could drop the rest. Either way nothing hangs.
    assert!(outcome.is_none() || outcome == Some(None));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn shielded_cleanup_in_a_scope_body_survives_a_sibling_failure() {
    let cleaned = Flag::default();
    let done = cleaned.clone();
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.spawn(klaw::Task::fallible(async {
            klaw::time::sleep(Duration::from_millis(5)).await;
            Err::<(), _>(Error::other("child failed"))
        }));
        klaw::cancel::shield(async {
            klaw::time::sleep(Duration::from_millis(30)).await;
            done.set();
        })
        .await;
        std::future::pending::<()>().await;
        Ok(())
    });
    assert!(result.is_err());
    assert!(cleaned.is_set());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn blocking_children_see_is_cancelled_when_their_scope_fails() {
    let steps = Arc::new(AtomicUsize::new(0));
    let counted = steps.clone();
    let started = Instant::now();
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.spawn_blocking(move || {
            while !klaw::cancel::is_cancelled() {
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        // Fails once the closure has taken a step: a job cancelled while still queued is
        // withdrawn and never runs.
        until(|| steps.load(Ordering::SeqCst) > 0).await;
        Err(Error::other("stop everything").into())
    });
    assert!(result.is_err());
    assert!(steps.load(Ordering::SeqCst) > 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the scope waited for the blocking child to notice"
    );
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn checkpoint_lets_a_deadline_stop_cpu_bound_async_code() {
    let mut rounds = 0u64;
    let outcome = klaw::cancel::move_on_after(Duration::from_millis(10), async {
        loop {
            rounds += 1;
            klaw::cancel::checkpoint().await;
        }
    })
    .await;
    assert_eq!(outcome, None::<()>);
    assert!(rounds > 0);
}

// trio's `cancel_called` looks at the clock, and a Kotlin loop on `isActive` under `withTimeout`
// stops: a CPU-bound loop that asks `is_cancelled()`, and never awaits, sees a deadline around it
// pass. What would break these: a deadline becoming a cancellation only when its timer is polled,
// which the loop's own task never gets to do.

/// A CPU-bound loop: steps until `is_cancelled()` says so, for at most `limit`. Whether it said so.
fn compute_until_cancelled(limit: Duration) -> bool {
    let started = Instant::now();
    while !klaw::cancel::is_cancelled() && started.elapsed() < limit {
        std::hint::spin_loop(); // one step of work
    }
    klaw::cancel::is_cancelled()
}

/// `move_on_after(20 ms, loop)`: the region's deadline passes while the loop runs.
#[test]
fn a_cpu_bound_loop_in_a_region_sees_the_regions_deadline_pass() {
    in_task(|| async {
        let saw = Flag::default();
        let seen = saw.clone();
        let _ = klaw::cancel::move_on_after(ms(20), async move {
            if compute_until_cancelled(secs(3)) {
                seen.set();
            }
        })
        .await;
        assert!(
            saw.is_set(),
            "is_cancelled() stayed false for 3 s after the region's 20 ms deadline"
        );
    });
}

/// A scope with `timeout = "20ms"` whose local child computes (the scope's timer is polled by
/// the same task, which the child keeps busy).
#[test]
fn a_cpu_bound_local_child_sees_its_scopes_deadline_pass() {
    in_task(|| async {
        let saw = Flag::default();
        let seen = saw.clone();
        let result: Result<(), Error> = klaw::scope!(timeout = "20ms", |s| {
            s.spawn_local(async move {
                if compute_until_cancelled(secs(3)) {
                    seen.set();
                }
            });
            Ok(())
        });
        assert!(
            saw.is_set(),
            "is_cancelled() stayed false for 3 s after the scope's deadline: {result:?}"
        );
    });
}

/// A task with a 20 ms timeout whose body computes.
#[test]
fn a_cpu_bound_task_sees_its_own_timeout_pass() {
    in_task(|| async {
        let saw = Flag::default();
        let seen = saw.clone();
        let handle = klaw::Handle::current().unwrap().spawn(
            Task::new(async move {
                if compute_until_cancelled(secs(3)) {
                    seen.set();
                }
            })
            .timeout(ms(20)),
        );
        let outcome = handle.await;
        assert!(
            saw.is_set(),
            "is_cancelled() stayed false for 3 s after the task's timeout: {outcome:?}"
        );
    });
}

/// Two local children computing: the first to ask finds the scope's deadline passed and
/// cancels the scope; the second, polled after it in the same round, sees it too, though the
/// scope cancels its children only once the round is over. What would break it: the walk past
/// a scope that stops already (its deadline found by a sibling) taking it for one that runs.
#[test]
fn every_cpu_bound_local_child_sees_its_scopes_deadline_pass() {
    in_task(|| async {
        let (first, second) = (Flag::default(), Flag::default());
        let (seen_first, seen_second) = (first.clone(), second.clone());
        let result: Result<(), Error> = klaw::scope!(timeout = "20ms", |s| {
            s.spawn_local(async move {
                if compute_until_cancelled(secs(2)) {
                    seen_first.set();
                }
            });
            s.spawn_local(async move {
                if compute_until_cancelled(secs(2)) {
                    seen_second.set();
                }
            });
            Ok(())
        });
        assert!(
            first.is_set() && second.is_set(),
            "is_cancelled() stayed false after the scope's deadline in a local child (first: \
             {}, second: {}): {result:?}",
            first.is_set(),
            second.is_set()
        );
    });
}

/// Outside any task, in a `block_on`: the deadline of the region around the loop counts too, as
/// a cancel of its token does. What would break it: the deadlines looked at only in a task.
#[test]
fn in_block_on_a_cpu_bound_loop_sees_the_regions_deadline_pass() {
    common::with_deadline(|| {
        let rt = runtime(1);
        let saw = Flag::default();
        let seen = saw.clone();
        let outcome = rt.block_on(klaw::cancel::move_on_after(ms(20), async move {
            if compute_until_cancelled(secs(3)) {
                seen.set();
            }
        }));
        assert!(saw.is_set(), "is_cancelled() stayed false after the region's deadline");
        assert_eq!(outcome, None, "the region gave its value after its deadline had passed");
    });
}

/// The same with the deadline of a region around the scope (then of a scope around it): the
/// first child to ask cancels the region; the second, polled after it in the same round, sees
/// it too. What would break these: the walk past a region that stops already taking it for one
/// that runs.
#[test]
fn every_cpu_bound_local_child_sees_the_deadline_of_the_region_around_its_scope_pass() {
    in_task(|| async {
        let (first, second) = (Flag::default(), Flag::default());
        let (seen_first, seen_second) = (first.clone(), second.clone());
        let outcome = klaw::cancel::move_on_after(ms(20), async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                s.spawn_local(async move {
                    if compute_until_cancelled(secs(2)) {
                        seen_first.set();
                    }
                });
                s.spawn_local(async move {
                    if compute_until_cancelled(secs(2)) {
                        seen_second.set();
                    }
                });
                Ok(())
            });
        })
        .await;
        assert!(
            first.is_set() && second.is_set(),
            "is_cancelled() stayed false in a local child after the deadline of the region \
             around its scope had passed (first: {}, second: {}); region outcome: {outcome:?}",
            first.is_set(),
            second.is_set()
        );
        assert_eq!(outcome, None);
    });
}

#[test]
fn every_cpu_bound_local_child_sees_the_deadline_of_an_enclosing_scope_pass() {
    in_task(|| async {
        let (first, second) = (Flag::default(), Flag::default());
        let (seen_first, seen_second) = (first.clone(), second.clone());
        let result: Result<(), Error> = klaw::scope!(timeout = "20ms", |_outer| {
            let _: Result<(), Error> = klaw::scope!(|s| {
                s.spawn_local(async move {
                    if compute_until_cancelled(secs(2)) {
                        seen_first.set();
                    }
                });
                s.spawn_local(async move {
                    if compute_until_cancelled(secs(2)) {
                        seen_second.set();
                    }
                });
                Ok(())
            });
            Ok(())
        });
        assert!(
            first.is_set() && second.is_set(),
            "is_cancelled() stayed false in a local child after the deadline of the scope \
             enclosing its scope had passed (first: {}, second: {}): {result:?}",
            first.is_set(),
            second.is_set()
        );
        assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
    });
}

/// A cancel that is no deadline reaches a CPU-bound local child that asks too: a region around
/// its scope cancelled by its token from another thread, then the task that polls the scope
/// cancelled through its handle. The scope cannot poll again while the child computes, so what
/// would break these is `is_cancelled()` looking only at the child's own task.
#[test]
fn a_cpu_bound_local_child_sees_a_token_cancel_of_the_region_around_its_scope() {
    in_task(|| async {
        let saw = Flag::default();
        let seen = saw.clone();
        let region = Region::new();
        let token = region.token();
        std::thread::spawn(move || {
            std::thread::sleep(ms(20));
            token.cancel("stop");
        });
        let _ = region
            .run(async move {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    s.spawn_local(async move {
                        if compute_until_cancelled(secs(3)) {
                            seen.set();
                        }
                    });
                    Ok(())
                });
            })
            .await;
        assert!(saw.is_set(), "is_cancelled() stayed false after the region's token was cancelled");
    });
}

#[test]
fn a_cpu_bound_local_child_sees_a_cancel_of_the_task_that_polls_its_scope() {
    in_task(|| async {
        let saw = Flag::default();
        let seen = saw.clone();
        let handle = klaw::Handle::current().unwrap().spawn(async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                s.spawn_local(async move {
                    if compute_until_cancelled(secs(3)) {
                        seen.set();
                    }
                });
                Ok(())
            });
        });
        let task = handle.task_ref();
        std::thread::spawn(move || {
            std::thread::sleep(ms(20));
            task.cancel("stop");
        });
        let _ = handle.await;
        assert!(saw.is_set(), "is_cancelled() stayed false after the task was cancelled");
    });
}
