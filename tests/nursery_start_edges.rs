//! trio's nursery semantics at the edges of klaw's promises: `s.start` (trio's
//! `nursery.start`) when the child fails, times out, is cancelled or never becomes ready, when
//! `start` itself is dropped, under a `limit`; results in completion order (`next_finished`)
//! under cancellation; nested nurseries. Cases from trio's `src/trio/_core/_tests/test_run.py`
//! (`test_nursery_start`, `test_nursery_start_keeps_nursery_open`,
//! `test_nursery_start_with_cancelled_nursery`), translated, that klaw's own suites
//! (`ported_trio_nursery.rs`, `scope_tools.rs`, `scope_limit.rs`) do not cover yet.
//!
//! Every scenario runs under a deadline (`in_task`: a thread of its own, 30 s), and the ones that
//! could wait on something that never comes also bound that wait with `fail_after`, so a defect
//! fails with a message instead of hanging the suite. The two tests of a waiting child cancelled
//! while its handle is awaited (`an_awaited_waiting_child_cancelled_from_elsewhere_ends_at_once`,
//! `next_finished_after_cancel_all_returns_waiting_children_at_once`) hung until the slot's
//! holder ended before a waiting child's handle woke its awaiter on a cancel.

mod common;

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::{DropCount, FetchError, Flag, SetOnDrop, in_task, ms};
use klaw::scope::{NotReady, Ready};
use klaw::task::TaskId;
use klaw::{CancelReason, Error, Task, TaskError};

/// How long a wait may take before a test calls it stuck (the children in these scenarios
/// that hold something up sleep far longer).
const PROMPTLY: Duration = Duration::from_secs(5);

/// The `FetchError` of a failed child, or a panic that shows what came instead.
fn fetch_id(error: &Error) -> u32 {
    match error {
        Error::Task { error: TaskError::Failed(failure), .. } => {
            failure.downcast_ref::<FetchError>().unwrap_or_else(|| panic!("{error:?}")).0
        }
        other => panic!("not a single failed child: {other:?}"),
    }
}

// ---- start: a child that never becomes ready ---------------------------------------------------

/// trio: "child exiting cleanly before calling started -> RuntimeError", which the body may catch
/// while the nursery goes on. klaw documents `NotReady` as what `start` returns; it is not a child
/// failure (the child ended well), so in the default mode too a body that handles it keeps its
/// scope (the docs' "in the default mode the failure fails the scope" is about failures).
#[test]
fn not_ready_in_the_default_mode_is_the_bodys_to_handle_and_the_scope_goes_on() {
    in_task(|| async {
        let value = klaw::scope!(|s| {
            let started = s.start(|_ready: Ready<u16>| async {}).await;
            let Err(Error::Other(error)) = &started else { panic!("{started:?}") };
            assert!(error.downcast_ref::<NotReady>().is_some(), "{error}");
            let after = s.spawn(async { 5 });
            Ok(after.await?)
        });
        assert_eq!(value.unwrap(), 5);
    });
}

/// A started child with its own timeout that passes before `ready` (trio: the task's own
/// `fail_after` raising `TooSlowError` before `started()`): in supervisor mode `start` returns
/// that timeout, and the body that handled it leaves the scope well.
#[test]
fn a_started_child_timing_out_before_ready_comes_out_of_start_in_supervisor_mode() {
    in_task(|| async {
        let outcome = klaw::scope!(supervisor, |s| {
            let started = s
                .start(|ready: Ready<u16>| {
                    Task::new(async move {
                        klaw::time::sleep(Duration::from_secs(20)).await;
                        ready.ready(1);
                    })
                    .timeout(ms(10))
                })
                .await;
            Ok(started.map(|(port, _)| port))
        })
        .unwrap();
        assert!(
            matches!(&outcome, Err(Error::Task { error: TaskError::TimedOut(_), .. })),
            "{outcome:?}"
        );
    });
}

/// The same child in the default mode: its timeout is a failure, so it fails the scope, which
/// returns it (alone: the body never saw it, so it is not reported twice).
#[test]
fn a_started_child_timing_out_before_ready_fails_the_scope_once() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.start(|ready: Ready<u16>| {
                Task::new(async move {
                    klaw::time::sleep(Duration::from_secs(20)).await;
                    ready.ready(1);
                })
                .timeout(ms(10))
            })
            .await?;
            Ok(())
        });
        assert!(
            matches!(&result, Err(Error::Task { error: TaskError::TimedOut(_), .. })),
            "{result:?}"
        );
    });
}

/// `start_local` (a borrowing child polled by the scope) that fails before `ready`, in the
/// default mode: the scope returns that one failure, not a group, and not `NotReady`.
#[test]
fn a_local_started_child_failing_before_ready_fails_the_scope_once() {
    in_task(|| async {
        let borrowed = String::from("borrowed");
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.start_local(|_ready: Ready<usize>| {
                Task::fallible(async {
                    let _ = borrowed.len();
                    klaw::time::sleep(ms(5)).await;
                    Err::<(), _>(FetchError(3))
                })
            })
            .await?;
            Ok(())
        });
        assert_eq!(fetch_id(&result.unwrap_err()), 3);
    });
}

/// A `start_local` child that panics before `ready`, in the default mode: the scope returns the
/// panic (trio's `KeyboardInterrupt` before `started()` escapes the nursery).
#[test]
fn a_local_started_child_panicking_before_ready_fails_the_scope_with_the_panic() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.start_local(|_ready: Ready<()>| async {
                klaw::time::sleep(ms(5)).await;
                panic!("interrupted before ready")
            })
            .await?;
            Ok(())
        });
        assert!(
            matches!(&result, Err(Error::Task { error: TaskError::Panicked(m), .. }) if m == "interrupted before ready"),
            "{result:?}"
        );
    });
}

// ---- start: cancelled before ready --------------------------------------------------------------

/// The scope's own deadline passes while `start` waits for a child that is not ready yet: the
/// scope fails with `Elapsed`, promptly, and the child has been dropped when it returns.
#[test]
fn a_scope_deadline_before_ready_ends_the_scope_elapsed_and_the_child_first() {
    in_task(|| async {
        let dropped = Flag::default();
        let guard = SetOnDrop(dropped.clone());
        let began = std::time::Instant::now();
        let result: Result<(), Error> = klaw::scope!(timeout = "20ms", |s| {
            s.start(move |ready: Ready<()>| async move {
                let _guard = guard;
                klaw::time::sleep(Duration::from_secs(20)).await;
                ready.ready(());
            })
            .await?;
            Ok(())
        });
        assert!(matches!(&result, Err(Error::Elapsed(_))), "{result:?}");
        assert!(dropped.is_set(), "the scope returned before its started child ended");
        assert!(began.elapsed() < PROMPTLY, "the deadline did not stop the wait");
    });
}

/// A region around the whole scope whose deadline passes while `start` waits: the region
/// returns `None` only after the not-yet-ready child has ended, and that child never ran past
/// its `.await` (trio: the nursery inside a cancelled scope).
#[test]
fn a_region_deadline_around_the_scope_ends_a_child_that_was_not_ready() {
    in_task(|| async {
        let dropped = Flag::default();
        let ran_on = Flag::default();
        let (guard, after) = (SetOnDrop(dropped.clone()), ran_on.clone());
        let outcome = klaw::cancel::move_on_after(ms(20), async move {
            klaw::scope!(|s| {
                s.start(move |ready: Ready<()>| async move {
                    let _guard = guard;
                    klaw::time::sleep(Duration::from_secs(20)).await;
                    after.set();
                    ready.ready(());
                })
                .await?;
                Ok(())
            })
        })
        .await;
        assert!(outcome.is_none(), "{outcome:?}");
        assert!(dropped.is_set(), "the region returned before the started child ended");
        assert!(!ran_on.is_set());
    });
}

// ---- start: the start future dropped ----------------------------------------------------------

/// `start` dropped (a region around it gave up), and the child, left to the scope, later becomes
/// ready and then fails: in the default mode the scope returns that failure (nothing that failed
/// is lost, though nobody waits for the child any more).
#[test]
fn a_child_whose_start_was_dropped_and_that_fails_later_fails_the_scope() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            let start = s.start(|ready: Ready<u16>| {
                Task::fallible(async move {
                    klaw::time::sleep(ms(30)).await;
                    ready.ready(80);
                    Err::<(), _>(FetchError(4))
                })
            });
            assert!(klaw::cancel::move_on_after(ms(1), start).await.is_none());
            Ok(())
        });
        assert_eq!(fetch_id(&result.unwrap_err()), 4);
    });
}

/// The same in supervisor mode, with a child that fails before it is ready: `start` is gone, so
/// nobody took the failure, and the scope must report it.
#[test]
fn in_supervisor_mode_a_failure_before_ready_after_start_was_dropped_is_the_scopes() {
    in_task(|| async {
        let result: Result<&str, Error> = klaw::scope!(supervisor, |s| {
            let start = s.start(|_ready: Ready<u16>| {
                Task::fallible(async move {
                    klaw::time::sleep(ms(30)).await;
                    Err::<(), _>(FetchError(5))
                })
            });
            assert!(klaw::cancel::move_on_after(ms(1), start).await.is_none());
            Ok("body done")
        });
        assert_eq!(fetch_id(&result.unwrap_err()), 5);
    });
}

/// A value given to `ready` is dropped exactly once whatever happens to `start`: taken by the
/// body, or dropped by `ready` (nobody waits any more), also when `start` is dropped at the very
/// moment the child becomes ready. Repeated to meet the race.
#[test]
fn a_ready_value_is_dropped_exactly_once_when_start_races_its_drop() {
    in_task(|| async {
        let drops = DropCount::default();
        let made = Arc::new(AtomicUsize::new(0));
        for round in 0..200u32 {
            let (drops, made) = (drops.clone(), made.clone());
            klaw::scope!(|s| {
                let start = s.start(move |ready| async move {
                    for _ in 0..round % 3 {
                        klaw::cancel::checkpoint().await;
                    }
                    made.fetch_add(1, SeqCst);
                    ready.ready(drops.value());
                });
                // Gives up after a random-ish short while, sometimes before, sometimes after.
                let took = klaw::cancel::move_on_after(
                    Duration::from_micros(u64::from(round % 7) * 20),
                    start,
                )
                .await;
                drop(took);
                Ok(())
            })
            .unwrap();
        }
        // A region whose deadline has passed when it starts never polls `start`, so some rounds
        // spawn no child at all (klaw's `start` is an `async fn`: nothing happens before its first
        // poll; trio would still run the child under the cancelled `start`).
        assert!(made.load(SeqCst) > 0);
        assert_eq!(drops.get(), made.load(SeqCst), "a ready value was leaked or dropped twice");
    });
}

// ---- start: nested nurseries --------------------------------------------------------------------

/// trio's `setup_nursery` pattern, nested: a started child opens its own scope, starts a
/// grandchild there, and becomes ready with the grandchild's value. The outer body gets it only
/// once the grandchild is ready, and the outer scope returns only after both have ended.
#[test]
fn a_started_child_may_start_a_grandchild_and_pass_its_readiness_up() {
    in_task(|| async {
        let grandchild_ended = Flag::default();
        let ended = grandchild_ended.clone();
        let (release, wait_release) = klaw::channel::bounded::<()>(1);
        let value = klaw::scope!(|s| {
            let (port, child) = s
                .start(move |ready: Ready<u16>| {
                    Task::fallible(async move {
                        klaw::scope!(|inner| {
                            let (port, _grandchild) = inner
                                .start(move |ready_inner: Ready<u16>| async move {
                                    let _guard = SetOnDrop(ended);
                                    klaw::time::sleep(ms(10)).await;
                                    ready_inner.ready(9000);
                                    let _ = wait_release.recv().await;
                                })
                                .await?;
                            ready.ready(port + 1);
                            Ok(())
                        })
                    })
                })
                .await?;
            assert!(!child.is_finished());
            assert!(!grandchild_ended.is_set());
            release.send(()).await?;
            Ok(port)
        });
        assert_eq!(value.unwrap(), 9001);
        assert!(grandchild_ended.is_set(), "the outer scope returned before the grandchild ended");
    });
}

/// trio's `test_nursery_start_with_cancelled_nursery`, the inner variant: the started child's own
/// scope is cancelled just before the child becomes ready. The child then never gets to `ready`
/// (it is its own scope's body), so `start` reports the child's end: the inner scope's
/// cancellation comes back as the child's error (a scope cancelled by hand fails with that
/// cancellation), which in the default mode fails the outer scope.
#[test]
fn a_started_childs_own_scope_cancelled_before_ready_fails_the_outer_scope_with_it() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.start(|ready: Ready<()>| {
                Task::fallible(async move {
                    klaw::scope!(|inner| {
                        inner.spawn(pending::<()>());
                        inner.cancel("inner cancelled");
                        klaw::cancel::checkpoint().await;
                        ready.ready(());
                        Ok(())
                    })
                })
            })
            .await?;
            pending::<()>().await;
            Ok(())
        });
        let error = result.unwrap_err();
        assert!(
            matches!(
                &error,
                Error::Task { error: TaskError::Failed(_), .. }
                    | Error::Task { error: TaskError::Cancelled(_), .. }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("inner cancelled")
                || format!("{error:?}").contains("inner cancelled"),
            "{error:?}"
        );
    });
}

// ---- start and next_finished under a limit -------------------------------------------------------

/// `scope!(limit = 1)`: a waiting child's handle the body is *already* awaiting is cancelled
/// from elsewhere (a sibling holds its `task_ref`). The docs: "One cancelled through its own
/// handle ends when the handle is awaited, or when its turn comes"; a waiting child "never
/// starts once cancelled". A body awaiting the handle must see the cancellation promptly, not
/// only when the child holding the slot ends (here: 20 s later).
#[test]
fn an_awaited_waiting_child_cancelled_from_elsewhere_ends_at_once() {
    in_task(|| async {
        let started = Flag::default();
        let outcome = klaw::scope!(limit = 1, |s| {
            let blocker = s.spawn(klaw::time::sleep(Duration::from_secs(20)));
            let flag = started.clone();
            let waiting = s.spawn(async move { flag.set() });
            let remote = waiting.task_ref();
            s.spawn_local(async move {
                klaw::time::sleep(ms(20)).await;
                remote.cancel("not needed");
            });
            let outcome = klaw::cancel::fail_after(PROMPTLY, waiting).await;
            blocker.cancel("done");
            Ok(outcome)
        })
        .unwrap();
        let outcome = outcome.expect("the awaited, cancelled waiting child did not end");
        assert!(
            matches!(&outcome, Err(Error::Task { error: TaskError::Cancelled(r), .. }) if *r == CancelReason::user("not needed")),
            "{outcome:?}"
        );
        assert!(!started.is_set(), "a cancelled waiting child ran its body");
    });
}

/// trio's server pattern under a limit: a server started with `start` holds the only slot, the
/// workers of a child set wait for it. The body waits a while for a first result
/// (`next_finished` under a deadline: nothing yet), then gives up on the workers with
/// `cancel_all` and drains the set: each waiting worker must come back cancelled at once
/// (tokio's `JoinSet::abort_all` then `join_next`), without waiting for the server to end.
#[test]
fn next_finished_after_cancel_all_returns_waiting_children_at_once() {
    in_task(|| async {
        let ran = Arc::new(AtomicUsize::new(0));
        let drained = klaw::scope!(limit = 1, |s| {
            let ((), server) = s
                .start(|ready: Ready<()>| async move {
                    ready.ready(());
                    klaw::time::sleep(Duration::from_secs(20)).await;
                })
                .await?;
            let mut set = s.child_set();
            for _ in 0..2 {
                let ran = ran.clone();
                set.spawn(async move {
                    ran.fetch_add(1, SeqCst);
                });
            }
            assert!(klaw::cancel::move_on_after(ms(20), set.next_finished()).await.is_none());
            set.cancel_all("enough");
            let drained = klaw::cancel::fail_after(PROMPTLY, async {
                let mut reasons = Vec::new();
                while let Some(outcome) = set.next_finished().await {
                    match outcome {
                        Err(Error::Task { error: TaskError::Cancelled(reason), .. }) => {
                            reasons.push(reason);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                reasons
            })
            .await;
            server.cancel("shut down");
            Ok(drained)
        })
        .unwrap();
        let reasons =
            drained.expect("cancelled waiting children did not come back from next_finished");
        assert_eq!(reasons, vec![CancelReason::user("enough"); 2]);
        assert_eq!(ran.load(SeqCst), 0, "a cancelled waiting child ran");
    });
}

/// `start` under a limit whose only slot is held: `start` waits for the slot, then for
/// readiness; when the holder ends, the started child runs and `start` returns its value.
/// Meanwhile the scope is cancelled by hand from a local sibling: the waiting, not-yet-started
/// child ends at once with the scope (never runs), and the scope returns promptly although the
/// slot's holder would sleep 20 s (it is cancelled too).
#[test]
fn a_start_waiting_for_a_slot_ends_with_its_scope_and_the_child_never_runs() {
    in_task(|| async {
        let ran = Flag::default();
        let began = std::time::Instant::now();
        let result: Result<(), Error> = klaw::scope!(limit = 1, |s| {
            s.spawn(klaw::time::sleep(Duration::from_secs(20)));
            let flag = ran.clone();
            let start = s.start(move |ready: Ready<()>| async move {
                flag.set();
                ready.ready(());
            });
            let cancel = async {
                klaw::time::sleep(ms(20)).await;
                s.cancel("stop");
            };
            let (started, ()) = futures_lite::future::zip(start, cancel).await;
            started?;
            Ok(())
        });
        assert!(
            matches!(&result, Err(Error::Task { error: TaskError::Cancelled(r), .. }) if *r == CancelReason::user("stop")),
            "{result:?}"
        );
        assert!(!ran.is_set(), "the waiting started child ran");
        assert!(began.elapsed() < PROMPTLY);
    });
}

// ---- next_finished under cancellation ------------------------------------------------------------

/// After `cancel_all`, children whose shielded cleanups take different times come back from
/// `next_finished` in the order their cleanups end (a child has ended only once its cleanup is
/// done: "ended" is transitive), each reported cancelled with the reason given.
///
/// On a paused clock: the cleanups' sleeps start together and end in their order, however busy
/// the machine (on real time, a cleanup first polled late could end out of turn).
#[klaw::test(start_paused = true, timeout = "30s")]
async fn cancelled_children_come_back_in_the_order_their_cleanups_end() {
    let order = klaw::scope!(supervisor, |s| {
        let mut set = s.child_set();
        let mut ids: Vec<(u64, TaskId)> = Vec::new();
        let started = Arc::new(AtomicUsize::new(0));
        let told = klaw::cancel::Token::new();
        for cleanup in [60u64, 10, 35] {
            let (started, heard) = (started.clone(), told.clone());
            let child = s.spawn(klaw::cancel::shield(async move {
                started.fetch_add(1, SeqCst);
                heard.cancelled().await; // cleanup starts after the cancel
                klaw::time::sleep(ms(cleanup)).await;
            }));
            ids.push((cleanup, child.id()));
            set.insert(child);
        }
        while started.load(SeqCst) < 3 {
            klaw::time::sleep(ms(1)).await;
        }
        set.cancel_all("enough");
        told.cancel("enough");
        let mut order = Vec::new();
        while let Some(outcome) = set.next_finished().await {
            let Err(Error::Task { error: TaskError::Cancelled(reason), task: Some(task), .. }) =
                &outcome
            else {
                panic!("unexpected {outcome:?}")
            };
            assert_eq!(*reason, CancelReason::user("enough"));
            let cleanup = ids.iter().find(|(_, id)| *id == task.id()).expect("a known child").0;
            order.push(cleanup);
        }
        Ok(order)
    })
    .unwrap();
    assert_eq!(order, [10, 35, 60]);
}

/// A child set in supervisor mode: a child fails while others are cancelled by the body; every
/// outcome comes back exactly once, the failure as itself, and it is the body's (handled), so
/// the scope ends well.
#[test]
fn every_outcome_comes_back_once_when_a_failure_and_a_cancel_race() {
    in_task(|| async {
        for _ in 0..50 {
            let seen = std::sync::Mutex::new((0, 0, 0));
            let result = klaw::scope!(supervisor, |s| {
                let mut set = s.child_set();
                set.spawn(Task::fallible(async {
                    klaw::cancel::checkpoint().await;
                    Err::<u32, _>(FetchError(6))
                }));
                for v in 0..3u32 {
                    set.spawn(Task::fallible(async move {
                        klaw::time::sleep(ms(u64::from(v) * 5)).await;
                        Ok::<u32, FetchError>(v)
                    }));
                }
                set.cancel_all("race");
                let (mut failed, mut cancelled, mut ok) = (0, 0, 0);
                while let Some(outcome) = set.next_finished().await {
                    match outcome {
                        Ok(_) => ok += 1,
                        Err(Error::Task { error: TaskError::Cancelled(_), .. }) => cancelled += 1,
                        Err(error) => {
                            assert_eq!(fetch_id(&error), 6);
                            failed += 1;
                        }
                    }
                }
                *seen.lock().unwrap() = (failed, cancelled, ok);
                Ok((failed, cancelled, ok))
            });
            let (failed, cancelled, ok) = *seen.lock().unwrap();
            assert_eq!(failed + cancelled + ok, 4);
            match result {
                // The body took the failure: it is the body's, and not reported again.
                Ok(_) => {}
                // The failure raced `cancel_all`: the handle keeps its first state (cancelled),
                // and the failure its body produced is the scope's (nothing that failed is lost).
                Err(error) => {
                    assert_eq!(fetch_id(&error), 6);
                    assert_eq!(failed, 0, "the failure was given to the body and reported again");
                }
            }
        }
    });
}

// ---- nested deadlines ---------------------------------------------------------------------------

/// trio's `test_cancel_scope_nesting` with deadlines: two nested scopes whose deadlines are the
/// same instant. Both are cancelled; the outermost catches it (klaw's rule: "when several enclosing
/// regions are cancelled, the outermost catches it"), so the inner scope never returns its
/// `Elapsed` into the outer body.
#[test]
fn nested_scopes_with_the_same_deadline_the_outer_catches_it() {
    in_task(|| async {
        for _ in 0..20 {
            let returned = Flag::default();
            let at = klaw::time::now() + ms(5);
            let result: Result<(), Error> = klaw::scope!(deadline = at, |_s| {
                let inner: Result<(), Error> = klaw::scope!(deadline = at, |_t| {
                    pending::<()>().await;
                    Ok(())
                });
                returned.set();
                let _ = inner;
                pending::<()>().await;
                Ok(())
            });
            assert!(matches!(&result, Err(Error::Elapsed(_))), "{result:?}");
            assert!(!returned.is_set(), "the inner scope returned into the cancelled outer body");
        }
    });
}

/// The inner of two nested scopes has the earlier deadline: it fails with `Elapsed`, which the
/// outer body may handle and go on (trio: the inner `move_on_after` catches its own
/// cancellation); the outer scope's later deadline does not fire.
#[test]
fn an_inner_scope_deadline_is_the_outer_bodys_to_handle() {
    in_task(|| async {
        let value = klaw::scope!(timeout = "10s", |_s| {
            let inner: Result<(), Error> = klaw::scope!(timeout = "10ms", |_t| {
                pending::<()>().await;
                Ok(())
            });
            assert!(matches!(&inner, Err(Error::Elapsed(_))), "{inner:?}");
            Ok("went on")
        });
        assert_eq!(value.unwrap(), "went on");
    });
}

/// A region's deadline set twice keeps the earlier one, in either order (documented on
/// `Region::deadline`; trio would let the later assignment win).
#[test]
fn a_region_deadline_set_twice_keeps_the_earlier() {
    in_task(|| async {
        let now = klaw::time::now();
        for (first, second) in
            [(ms(10), Duration::from_secs(20)), (Duration::from_secs(20), ms(10))]
        {
            let began = std::time::Instant::now();
            let region = klaw::cancel::Region::new().deadline(now + first).deadline(now + second);
            let outcome = region.run(pending::<()>()).await;
            assert_eq!(outcome, Err(CancelReason::Deadline));
            assert!(began.elapsed() < PROMPTLY);
        }
    });
}
