//! More ports of trio's own tests (cancel reasons, timeouts, shields and nested cancellation),
//! where the existing ports (`ported_trio_nursery.rs`, `ported_cancellation.rs`, `cancel_scopes.rs`,
//! `nursery_guarantee.rs`, `nursery_end_paths.rs`, `scopes.rs`) leave a gap. Sources, trio at
//! `60d0c2f8`:
//! - `src/trio/_core/_tests/test_cancelled.py` (cancel reasons: which reason each cancelled
//!   piece of code sees, and that a reason is never overwritten);
//! - `src/trio/_tests/test_timeouts.py` (`move_on_*` / `fail_*`, deadlines computed on entry,
//!   shielded timeouts inside a cancelled scope);
//! - `src/trio/_core/_tests/test_run.py` (`test_failed_abort`, `test_cancel_scope_nesting` and
//!   `test_cancel_shielding` with scopes rather than bare regions, `nursery.start` with the
//!   parent cancelled from outside, errors raised while children are cancelled).
//!
//! The mapping is the one `ported_trio_nursery.rs` describes: a nursery is `scope!`, trio's
//! `Cancelled` at a checkpoint is the future dropped at its `.await`, `except Cancelled: raise X`
//! is a child that waits for its own cancellation under a shield (it hears it through a region
//! token, which hears its task) and then returns `Err`. Every scenario runs on a thread of its
//! own with a deadline (`in_task`, `with_deadline`), so a hang fails the test.

mod common;
#[path = "common/crashes.rs"]
mod crashes;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Alive, Flag, in_task, runtime, until, with_deadline};
use crashes::{Crash, Record, Seen, converts_cancel, crashes};
use klaw::cancel::{Region, shield};
use klaw::scope::Ready;
use klaw::task::{ExitReason, TaskRef};
use klaw::{CancelReason, Error, Task, TaskError};

fn user(message: &'static str) -> CancelReason {
    CancelReason::user(message)
}

fn is_cancelled_with(result: &Result<(), Error>, expected: &CancelReason) -> bool {
    matches!(result, Err(Error::Task { error: TaskError::Cancelled(reason), .. }) if reason == expected)
}

// ---- test_cancelled.py: cancel reasons --------------------------------------------------------

/// trio `test_cancel_reason` (first two parts): a region cancelled with a reason reports that
/// reason; one whose deadline passed reports `Deadline`. And the nursery form: the reason given
/// to `Scope::cancel` is what each child is cancelled with and what the scope returns.
#[test]
fn a_cancel_reason_reaches_the_region_and_every_child_of_a_cancelled_scope() {
    in_task(|| async {
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                token.cancel("hello");
                klaw::cancel::checkpoint().await;
            })
            .await;
        assert_eq!(result, Err(user("hello")));

        let result = Region::new()
            .deadline(Instant::now())
            .run(klaw::time::sleep(Duration::from_secs(60)))
            .await;
        assert_eq!(result, Err(CancelReason::Deadline));

        let refs: Arc<Mutex<Vec<TaskRef>>> = Arc::default();
        let keep = refs.clone();
        let running = Arc::new(AtomicUsize::new(0));
        let result: Result<(), Error> = klaw::scope!(|s| {
            let counter = running.clone();
            let parallel = s.spawn(async move {
                counter.fetch_add(1, Ordering::SeqCst);
                pending::<()>().await;
            });
            let local = s.spawn_local(async {
                running.fetch_add(1, Ordering::SeqCst);
                pending::<()>().await;
            });
            keep.lock().unwrap().extend([parallel.task_ref(), local.task_ref()]);
            until(|| running.load(Ordering::SeqCst) == 2).await;
            s.cancel("hello");
            pending::<()>().await;
            Ok(())
        });
        assert!(is_cancelled_with(&result, &user("hello")), "{result:?}");
        for child in refs.lock().unwrap().iter() {
            assert_eq!(child.cancel_reason(), Some(user("hello")));
        }
    });
}

/// trio `test_cancel_reason_not_overwritten`: a region cancelled explicitly, whose deadline then
/// passes (while a shield holds it open), still reports the explicit reason.
#[test]
fn an_explicit_cancel_is_not_overwritten_by_a_later_deadline() {
    in_task(|| async {
        let deadline = Instant::now() + Duration::from_millis(10);
        let region = Region::new().deadline(deadline);
        let token = region.token();
        let result = region
            .run(async {
                token.cancel("explicit");
                // Held open past the deadline: the region's timer fires while it waits.
                shield(klaw::time::sleep_until(deadline + Duration::from_millis(20))).await;
                assert_eq!(token.reason(), Some(user("explicit")));
                klaw::cancel::checkpoint().await;
            })
            .await;
        assert_eq!(result, Err(user("explicit")));
        assert_eq!(token.reason(), Some(user("explicit")));
    });
}

/// trio `test_cancel_reason_not_overwritten_2`: a region whose deadline passed, then cancelled
/// explicitly (from inside a shield), still reports `Deadline`.
#[test]
fn a_deadline_is_not_overwritten_by_a_later_explicit_cancel() {
    in_task(|| async {
        let region = Region::new().timeout(Duration::from_millis(5));
        let token = region.token();
        let watcher = token.clone();
        let result = region
            .run(async {
                shield(async {
                    until(|| watcher.is_cancelled()).await; // the deadline passed
                    assert!(!watcher.cancel("explicit"), "a second reason decided the cancel");
                })
                .await;
                klaw::cancel::checkpoint().await;
            })
            .await;
        assert_eq!(result, Err(CancelReason::Deadline));
        assert_eq!(token.reason(), Some(CancelReason::Deadline));
    });
}

/// trio `test_cancel_reason_not_overwritten`, with a nursery's own deadline: a scope cancelled
/// with `Scope::cancel` whose `timeout` then passes reports the explicit cancel, not `Elapsed`
/// (a deadline that passes after the scope was cancelled anyway changed nothing).
#[test]
fn a_scope_cancelled_by_hand_is_not_turned_into_elapsed_by_its_later_deadline() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(timeout = Duration::from_millis(10), |s| {
            s.cancel("explicit");
            shield(klaw::time::sleep(Duration::from_millis(40))).await;
            Ok(())
        });
        assert!(is_cancelled_with(&result, &user("explicit")), "{result:?}");
    });
}

/// trio `test_cancel_reason_not_overwritten_2`, with a nursery's own deadline: a scope whose
/// `timeout` passed, then cancelled by hand, fails with `Elapsed` alone.
#[test]
fn a_scope_whose_deadline_passed_stays_elapsed_when_cancelled_by_hand_later() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(timeout = Duration::from_millis(5), |s| {
            shield(async {
                until(|| s.is_cancelled()).await;
                s.cancel("explicit");
            })
            .await;
            Ok(())
        });
        assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
    });
}

/// trio `test_cancel_reason_nursery2`: two started children; the first fails once the second
/// is running. The second is cancelled because a sibling failed (`SiblingFailed`), turns that
/// into an error of its own, and the scope reports both, the first failure first.
#[test]
fn a_started_child_hears_sibling_failed_and_its_error_follows_the_first() {
    in_task(|| async {
        let second_running = Flag::default();
        let seen: Seen = Arc::default();
        let result: Result<(), Error> = klaw::scope!(|s| {
            let watching = second_running.clone();
            s.start(move |ready: Ready<()>| {
                Task::fallible(async move {
                    ready.ready(());
                    until(|| watching.is_set()).await;
                    Err::<(), _>(Crash("ValueError"))
                })
            })
            .await?;
            let (running, seen) = (second_running.clone(), seen.clone());
            s.start(move |ready: Ready<()>| {
                converts_cancel("TypeError", running, seen, Some(ready))
            })
            .await?;
            Ok(())
        });
        let error = result.unwrap_err();
        assert_eq!(crashes(&error), ["ValueError", "TypeError"], "{error:?}");
        assert_eq!(*seen.lock().unwrap(), Some(CancelReason::SiblingFailed));
    });
}

/// trio `test_cancel_reason_nursery3`: a started child fails before it is ready while a sibling
/// sleeps. The sibling is cancelled (klaw's rule: `SiblingFailed`; trio names the nursery's
/// body, since its `start` re-raises there), and the failure is reported once, as itself, not
/// twice (once from `start`, once from the scope).
#[test]
fn a_child_failing_before_ready_cancels_its_sibling_and_is_reported_once() {
    in_task(|| async {
        let sibling: Arc<Mutex<Option<TaskRef>>> = Arc::default();
        let keep = sibling.clone();
        let running = Flag::default();
        let result: Result<(), Error> = klaw::scope!(|s| {
            let flag = running.clone();
            let child = s.spawn(async move {
                flag.set();
                pending::<()>().await;
            });
            *keep.lock().unwrap() = Some(child.task_ref());
            until(|| running.is_set()).await;
            s.start(|_ready: Ready<()>| {
                Task::fallible(async { Err::<(), _>(Crash("ValueError")) })
            })
            .await?;
            Ok(())
        });
        let error = result.unwrap_err();
        assert!(!matches!(error, Error::Scope(_)), "reported more than once: {error:?}");
        assert_eq!(crashes(&error), ["ValueError"]);
        let sibling = sibling.lock().unwrap().take().unwrap();
        assert_eq!(sibling.cancel_reason(), Some(CancelReason::SiblingFailed));
    });
}

/// trio `test_nested_child_source`, for every kind of child: when the body fails, a parallel,
/// a local and a blocking child are all cancelled with `ParentCancelled`, and the scope's
/// error is the body's.
#[test]
fn a_body_error_cancels_every_kind_of_child_with_parent_cancelled() {
    in_task(|| async {
        let refs: Arc<Mutex<Vec<(&'static str, TaskRef)>>> = Arc::default();
        let keep = refs.clone();
        let running = Arc::new(AtomicUsize::new(0));
        let result: Result<(), Error> = klaw::scope!(|s| {
            let counter = running.clone();
            let parallel = s.spawn(async move {
                counter.fetch_add(1, Ordering::SeqCst);
                pending::<()>().await;
            });
            let local = s.spawn_local(async {
                running.fetch_add(1, Ordering::SeqCst);
                pending::<()>().await;
            });
            let counter = running.clone();
            let blocking = s.spawn_blocking(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                while !klaw::cancel::is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            keep.lock().unwrap().extend([
                ("parallel", parallel.task_ref()),
                ("local", local.task_ref()),
                ("blocking", blocking.task_ref()),
            ]);
            until(|| running.load(Ordering::SeqCst) == 3).await;
            Err(Crash("ValueError").into())
        });
        let error = result.unwrap_err();
        assert_eq!(crashes(&error), ["ValueError"], "{error:?}");
        for (kind, child) in refs.lock().unwrap().iter() {
            assert_eq!(child.exit_reason(), ExitReason::Cancelled, "the {kind} child");
            assert_eq!(
                child.cancel_reason(),
                Some(CancelReason::ParentCancelled),
                "the {kind} child's reason"
            );
        }
    });
}

/// trio `test_reason_delayed_ki`: a child raises `KeyboardInterrupt` (here it panics) while two
/// siblings loop on checkpoints; both siblings (one parallel, one local) are cancelled because a
/// sibling failed, and the scope's error is the panic alone.
#[test]
fn a_panicking_child_cancels_looping_siblings_with_sibling_failed() {
    in_task(|| async {
        let refs: Arc<Mutex<Vec<TaskRef>>> = Arc::default();
        let keep = refs.clone();
        let running = Arc::new(AtomicUsize::new(0));
        let result: Result<(), Error> = klaw::scope!(|s| {
            let counter = running.clone();
            let s1 = s.spawn(async move {
                counter.fetch_add(1, Ordering::SeqCst);
                loop {
                    klaw::cancel::checkpoint().await;
                    klaw::time::sleep(Duration::from_millis(1)).await;
                }
            });
            let s2 = s.spawn_local(async {
                running.fetch_add(1, Ordering::SeqCst);
                loop {
                    klaw::cancel::checkpoint().await;
                    klaw::time::sleep(Duration::from_millis(1)).await;
                }
            });
            keep.lock().unwrap().extend([s1.task_ref(), s2.task_ref()]);
            until(|| running.load(Ordering::SeqCst) == 2).await;
            s.spawn(async { panic!("KeyboardInterrupt") });
            Ok(())
        });
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Task { error: TaskError::Panicked(m), .. } if m == "KeyboardInterrupt"),
            "{error:?}"
        );
        for child in refs.lock().unwrap().iter() {
            assert_eq!(child.cancel_reason(), Some(CancelReason::SiblingFailed));
        }
    });
}

// ---- test_timeouts.py ---------------------------------------------------------------------------

/// trio `test_sleep` (last part) and `test_fail` (the trivial parts): in a region whose
/// deadline is now, even a zero sleep is cancelled and nothing after it runs; a far deadline
/// lets a zero sleep through.
#[test]
fn a_deadline_of_now_cancels_even_a_zero_sleep_and_a_far_one_does_not() {
    in_task(|| async {
        let after = Flag::default();
        let flag = after.clone();
        let outcome = klaw::cancel::move_on_at(Instant::now(), async move {
            klaw::time::sleep(Duration::ZERO).await;
            flag.set();
        })
        .await;
        assert_eq!(outcome, None);
        assert!(!after.is_set(), "code after the sleep ran in an expired region");

        let failed = klaw::cancel::fail_at(
            Instant::now() - Duration::from_millis(1),
            klaw::time::sleep(Duration::ZERO),
        )
        .await;
        assert!(failed.is_err(), "fail_at with a deadline in the past let the body finish");

        let far = Instant::now() + Duration::from_secs(100);
        assert_eq!(
            klaw::cancel::fail_at(far, klaw::time::sleep(Duration::ZERO)).await.ok(),
            Some(())
        );
        assert_eq!(
            klaw::cancel::fail_after(Duration::from_secs(100), klaw::time::sleep(Duration::ZERO))
                .await
                .ok(),
            Some(())
        );
    });
}

/// trio `test_context_shields_from_outer`, for `move_on_after` and `fail_after`: a shielded
/// timeout region inside a cancelled region runs its body to the end (its checkpoints return,
/// `is_cancelled()` is false inside); after the shield, the outer cancellation applies again.
#[test]
fn a_shielded_timeout_keeps_an_outer_cancellation_out() {
    in_task(|| async {
        for fail in [false, true] {
            let (inside, after) = (Flag::default(), Flag::default());
            let outer = Region::new();
            let token = outer.token();
            let result = outer
                .run(async {
                    token.cancel("outer");
                    let body = async {
                        assert!(!klaw::cancel::is_cancelled(), "the shield let the outer in");
                        klaw::cancel::checkpoint().await;
                        klaw::time::sleep(Duration::from_millis(2)).await;
                        inside.set();
                    };
                    if fail {
                        let done = shield(klaw::cancel::fail_after(Duration::from_secs(60), body));
                        assert!(done.await.is_ok());
                    } else {
                        let done =
                            shield(klaw::cancel::move_on_after(Duration::from_secs(60), body));
                        assert_eq!(done.await, Some(()));
                    }
                    klaw::cancel::checkpoint().await;
                    after.set();
                })
                .await;
            assert_eq!(result, Err(user("outer")), "fail_after: {fail}");
            assert!(inside.is_set(), "the shielded body was cut short (fail_after: {fail})");
            assert!(!after.is_set(), "a checkpoint returned after the shield (fail_after: {fail})");
        }
    });
}

/// trio `test_move_on_after_moves_on_even_if_shielded` and `test_fail_after_fails_even_if_shielded`:
/// inside a cancelled region, a shielded timeout region still ends at its own deadline
/// (`None`, or `Elapsed`), and then the outer region catches its own cancellation.
#[test]
fn a_shielded_timeout_still_ends_at_its_own_deadline_inside_a_cancelled_region() {
    in_task(|| async {
        let outer = Region::new();
        let token = outer.token();
        let (moved_on, failed, after) = (Flag::default(), Flag::default(), Flag::default());
        let result = outer
            .run(async {
                token.cancel("outer");
                let none =
                    shield(klaw::cancel::move_on_after(Duration::from_millis(5), pending::<()>()))
                        .await;
                assert_eq!(none, None);
                moved_on.set();
                let elapsed =
                    shield(klaw::cancel::fail_after(Duration::from_millis(5), pending::<()>()))
                        .await;
                assert_eq!(elapsed.unwrap_err().after(), Duration::from_millis(5));
                failed.set();
                klaw::cancel::checkpoint().await;
                after.set();
            })
            .await;
        assert_eq!(result, Err(user("outer")));
        assert!(moved_on.is_set() && failed.is_set());
        assert!(!after.is_set());
    });
}

/// trio `test_timeout_deadline_on_entry`: a relative timeout counts from when its region is
/// entered (first polled), not from when the future was made. On a paused clock: made, then
/// 3 s pass, then entered with a 5 s timeout around a 4 s sleep, which must finish. The same
/// for a scope's `timeout` option.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_relative_timeout_counts_from_entry_not_from_construction() {
    let region = klaw::cancel::move_on_after(
        Duration::from_secs(5),
        klaw::time::sleep(Duration::from_secs(4)),
    );
    let failing =
        klaw::cancel::fail_after(Duration::from_secs(5), klaw::time::sleep(Duration::from_secs(4)));
    let scope = async {
        klaw::scope!(timeout = Duration::from_secs(5), |_s| {
            klaw::time::sleep(Duration::from_secs(4)).await;
            Ok(())
        })
    };
    klaw::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(region.await, Some(()), "move_on_after counted from construction");
    klaw::time::sleep(Duration::from_secs(3)).await;
    assert!(failing.await.is_ok(), "fail_after counted from construction");
    klaw::time::sleep(Duration::from_secs(3)).await;
    assert!(scope.await.is_ok(), "a scope's timeout counted from construction");
}

// ---- test_run.py ----------------------------------------------------------------------------------

/// trio `test_failed_abort`: a task is cancelled while it waits in something that cannot be
/// interrupted (here a shielded `recv`); the cancel does not wake it; once woken by hand it goes
/// on, and is cancelled at its next checkpoint, whose cleanup runs.
#[test]
fn a_cancel_that_cannot_interrupt_a_wait_lands_at_the_next_checkpoint() {
    in_task(|| async {
        let record: Arc<Mutex<Vec<&'static str>>> = Arc::default();
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let region = Region::new();
        let token = region.token();
        let rec = record.clone();
        let outcome = klaw::scope!(|s| {
            let child = s.spawn(Task::new(async move {
                region
                    .run(async move {
                        rec.lock().unwrap().push("sleep");
                        let x = shield(rx.recv()).await.expect("a value");
                        assert_eq!(x, 1);
                        rec.lock().unwrap().push("woke");
                        let _cleanup = Record(rec.clone(), "cancelled");
                        klaw::cancel::checkpoint().await;
                        rec.lock().unwrap().push("the checkpoint returned");
                    })
                    .await
            }));
            until(|| record.lock().unwrap().len() == 1).await;
            token.cancel("stubborn");
            klaw::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(*record.lock().unwrap(), ["sleep"], "the cancel woke the shielded wait");
            tx.send(1).await?;
            Ok(child.await?)
        })
        .unwrap();
        assert_eq!(outcome, Err(user("stubborn")));
        assert_eq!(*record.lock().unwrap(), ["sleep", "woke", "cancelled"]);
    });
}

/// trio `test_cancel_scope_nesting` (first part) with nurseries rather than bare scopes: the
/// inner scope is cancelled, then the outer one, from inside the inner body. The outer catches
/// it: the code after the inner scope never runs, and the outer returns its own reason.
#[test]
fn the_outer_of_two_nested_scopes_cancelled_from_inside_catches_it() {
    in_task(|| async {
        for inner_first in [true, false] {
            let after_inner = Flag::default();
            let result: Result<(), Error> = klaw::scope!(|outer| {
                let inner_result: Result<(), Error> = klaw::scope!(|inner| {
                    inner.spawn(pending::<()>());
                    if inner_first {
                        inner.cancel("inner");
                        outer.cancel("outer");
                    } else {
                        outer.cancel("outer");
                        inner.cancel("inner");
                    }
                    pending::<()>().await;
                    Ok(())
                });
                after_inner.set();
                inner_result?;
                Ok(())
            });
            assert!(is_cancelled_with(&result, &user("outer")), "{result:?} ({inner_first})");
            assert!(!after_inner.is_set(), "code between the two scopes ran ({inner_first})");
        }
    });
}

/// trio `test_cancel_shielding` with a nursery inside the shield: a task cancelled through its
/// handle while a shielded scope in it runs a child to its end. The shield keeps the cancel
/// out of the scope (its child is not cancelled, the scope returns the child's value); after
/// the shield the task is cancelled at its next checkpoint.
#[test]
fn a_shield_around_a_scope_keeps_the_tasks_cancel_out_of_its_children() {
    with_deadline(|| {
        let rt = runtime(2);
        let (started, go, after) = (Flag::default(), Flag::default(), Flag::default());
        let child_ref: Arc<Mutex<Option<TaskRef>>> = Arc::default();
        let value: Arc<Mutex<Option<Result<u32, String>>>> = Arc::default();
        let (s2, g2, a2, c2, v2) =
            (started.clone(), go.clone(), after.clone(), child_ref.clone(), value.clone());
        let handle = rt.spawn(async move {
            let got = shield(async {
                klaw::scope!(|s| {
                    let (s2, g2) = (s2.clone(), g2.clone());
                    let child = s.spawn(async move {
                        s2.set();
                        until(|| g2.is_set()).await;
                        7u32
                    });
                    *c2.lock().unwrap() = Some(child.task_ref());
                    Ok(child.await?)
                })
            })
            .await;
            *v2.lock().unwrap() = Some(got.map_err(|e| format!("{e:?}")));
            klaw::cancel::checkpoint().await;
            a2.set();
        });
        while !started.is_set() {
            std::thread::sleep(Duration::from_millis(1));
        }
        handle.cancel("stop");
        std::thread::sleep(Duration::from_millis(10));
        go.set();
        let outcome = rt.block_on(handle);
        assert!(
            matches!(&outcome, Err(TaskError::Cancelled(reason)) if *reason == user("stop")),
            "{outcome:?}"
        );
        assert_eq!(*value.lock().unwrap(), Some(Ok(7)), "the shielded scope was cut short");
        let child = child_ref.lock().unwrap().take().unwrap();
        assert_eq!(
            child.cancel_reason(),
            None,
            "the task's cancel reached the shielded scope's child"
        );
        assert!(!after.is_set(), "a checkpoint returned after the shield");
    });
}

// ---- Children when the parent is cancelled from outside ---------------------------------------

/// trio's nursery guarantee (`test_cancel_inheritance`, `test_locals_destroyed_promptly_on_cancel`),
/// for every kind of child at once: a region around a scope is cancelled from another thread
/// while a parallel, a local, a blocking and a background child run. Each is cancelled with
/// `ParentCancelled`, and the region returns only after every one of them (their drops are slow)
/// has ended.
#[test]
fn a_scope_cancelled_from_another_thread_ends_every_kind_of_child_first() {
    in_task(|| async {
        let alive = Alive::default();
        let refs: Arc<Mutex<Vec<(&'static str, TaskRef)>>> = Arc::default();
        let running = Arc::new(AtomicUsize::new(0));
        let region = Region::new();
        let token = region.token();
        let slow = Duration::from_millis(20);
        let result = region
            .run(async {
                klaw::scope!(|s| {
                    let (guard, counter) = (alive.guard(slow), running.clone());
                    let parallel = s.spawn(async move {
                        let _guard = guard;
                        counter.fetch_add(1, Ordering::SeqCst);
                        pending::<()>().await;
                    });
                    let local = s.spawn_local(async {
                        let _guard = alive.guard(slow);
                        running.fetch_add(1, Ordering::SeqCst);
                        pending::<()>().await;
                    });
                    let (guard, counter) = (alive.guard(slow), running.clone());
                    let blocking = s.spawn_blocking(move || {
                        let _guard = guard;
                        counter.fetch_add(1, Ordering::SeqCst);
                        while !klaw::cancel::is_cancelled() {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    });
                    let (guard, counter) = (alive.guard(slow), running.clone());
                    let background = s.spawn_background(async move {
                        let _guard = guard;
                        counter.fetch_add(1, Ordering::SeqCst);
                        pending::<()>().await;
                    });
                    refs.lock().unwrap().extend([
                        ("parallel", parallel.task_ref()),
                        ("local", local.task_ref()),
                        ("blocking", blocking.task_ref()),
                        ("background", background.task_ref()),
                    ]);
                    until(|| running.load(Ordering::SeqCst) == 4).await;
                    let token = token.clone();
                    std::thread::spawn(move || token.cancel("stop"));
                    pending::<()>().await;
                    Ok(())
                })
            })
            .await;
        assert!(matches!(&result, Err(reason) if *reason == user("stop")), "{result:?}");
        assert_eq!(alive.count(), 0, "the region returned before every child had ended");
        for (kind, child) in refs.lock().unwrap().iter() {
            assert_eq!(child.exit_reason(), ExitReason::Cancelled, "the {kind} child");
            assert_eq!(
                child.cancel_reason(),
                Some(CancelReason::ParentCancelled),
                "the {kind} child's reason"
            );
        }
    });
}

/// trio `test_nursery_start` with the parent cancelled from outside while `start` waits for a
/// child that has not called `started()`: the region around the scope returns its reason only
/// after the child has ended, the body never goes on past `start`, and nothing failed.
#[test]
fn a_scope_cancelled_from_outside_while_start_waits_ends_the_child_first() {
    in_task(|| async {
        let alive = Alive::default();
        let (running, went_on) = (Flag::default(), Flag::default());
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                klaw::scope!(|s| {
                    let (guard, flag) = (alive.guard(Duration::from_millis(20)), running.clone());
                    // The cancel comes from a thread once the child runs (the body waits in start).
                    let (canceller, child_running) = (token.clone(), running.clone());
                    std::thread::spawn(move || {
                        while !child_running.is_set() {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        canceller.cancel("stop");
                    });
                    let started = s
                        .start(move |ready: Ready<u16>| async move {
                            let _guard = guard;
                            flag.set();
                            pending::<()>().await;
                            ready.ready(8080);
                        })
                        .await;
                    went_on.set();
                    started?;
                    Ok(())
                })
            })
            .await;
        assert!(matches!(&result, Err(reason) if *reason == user("stop")), "{result:?}");
        assert_eq!(alive.count(), 0, "the region returned before the started child ended");
        assert!(!went_on.is_set(), "the body went on past start after the cancel");
    });
}

/// trio `test_main_block_error_basic` with children whose `except Cancelled:` raises: the body
/// fails, which cancels both children (`ParentCancelled`); each turns that into an error. The
/// scope reports all three, the body's first (nothing that failed is lost).
#[test]
fn a_body_error_and_the_errors_of_children_it_cancelled_are_all_reported() {
    in_task(|| async {
        let (r1, r2) = (Flag::default(), Flag::default());
        let (seen1, seen2): (Seen, Seen) = (Arc::default(), Arc::default());
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn(converts_cancel("TypeError", r1.clone(), seen1.clone(), None));
            s.spawn(converts_cancel("KeyError", r2.clone(), seen2.clone(), None));
            until(|| r1.is_set() && r2.is_set()).await;
            Err(Crash("ValueError").into())
        });
        let error = result.unwrap_err();
        let mut found = crashes(&error);
        assert_eq!(found.first(), Some(&"ValueError"), "the body's error is not first: {error:?}");
        found.sort_unstable();
        assert_eq!(found, ["KeyError", "TypeError", "ValueError"], "{error:?}");
        assert_eq!(*seen1.lock().unwrap(), Some(CancelReason::ParentCancelled));
        assert_eq!(*seen2.lock().unwrap(), Some(CancelReason::ParentCancelled));
    });
}

/// trio `test_nursery_collapse`'s rule (errors raised while a nursery is cancelled are all kept,
/// the cancellation is not) in supervisor mode: a supervisor scope cancelled by hand, whose two
/// children each raise when cancelled, returns both errors and no cancellation.
#[test]
fn a_supervisor_scope_cancelled_by_hand_reports_every_error_raised_in_cleanup() {
    in_task(|| async {
        let (r1, r2) = (Flag::default(), Flag::default());
        let (seen1, seen2): (Seen, Seen) = (Arc::default(), Arc::default());
        let result: Result<(), Error> = klaw::scope!(supervisor, |s| {
            s.spawn(converts_cancel("TypeError", r1.clone(), seen1.clone(), None));
            s.spawn(converts_cancel("KeyError", r2.clone(), seen2.clone(), None));
            until(|| r1.is_set() && r2.is_set()).await;
            s.cancel("stop");
            Ok(())
        });
        let error = result.unwrap_err();
        let mut found = crashes(&error);
        found.sort_unstable();
        assert_eq!(found, ["KeyError", "TypeError"], "{error:?}");
        assert_eq!(*seen1.lock().unwrap(), Some(user("stop")));
        assert_eq!(*seen2.lock().unwrap(), Some(user("stop")));
    });
}

/// trio `fail_after` around a nursery whose child raises when cancelled: the scope's own
/// `timeout` passes, the child (cancelled with `Deadline`) raises; both the `Elapsed` and the
/// child's error are reported, `Elapsed` first.
///
/// On a paused clock: the child is surely running when the deadline passes (in trio it would
/// raise at its first checkpoint anyway; klaw never runs a child cancelled before it started).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_scope_timeout_and_an_error_raised_in_the_cancelled_child_are_both_reported() {
    let running = Flag::default();
    let seen: Seen = Arc::default();
    let result: Result<(), Error> = klaw::scope!(timeout = Duration::from_millis(10), |s| {
        s.spawn(converts_cancel("TypeError", running.clone(), seen.clone(), None));
        pending::<()>().await;
        Ok(())
    });
    assert!(running.is_set(), "the child never ran");
    let error = result.unwrap_err();
    assert_eq!(crashes(&error), ["Elapsed", "TypeError"], "{error:?}");
    assert_eq!(*seen.lock().unwrap(), Some(CancelReason::Deadline));
}

// ---- Shields and nested cancellation in one task ----------------------------------------------

/// trio `test_cancel_scope_nesting`'s rule ("the outermost cancelled scope catches it; the code
/// between does not run on") with a shielded sibling: a region around a scope whose local child
/// is in a shield. The scope's body runs an inner region and cancels both it and the outer one.
/// In trio the body's `Cancelled` goes up to the outer scope whatever a sibling task shields;
/// the code after the inner region must not run.
#[test]
fn a_shielded_local_sibling_does_not_let_code_between_two_cancelled_regions_run() {
    in_task(|| async {
        let (release, after_inner, late_child_ran) =
            (Flag::default(), Flag::default(), Flag::default());
        let outer = Region::new();
        let outer_token = outer.token();
        let result = outer
            .run(async {
                klaw::scope!(|s| {
                    let release_child = release.clone();
                    s.spawn_local(shield(async move { until(|| release_child.is_set()).await }));
                    let inner = Region::new();
                    let inner_token = inner.token();
                    let _ = inner
                        .run(async {
                            outer_token.cancel("outer");
                            inner_token.cancel("inner");
                            // The shielded sibling is released after a while, from a thread.
                            let release = release.clone();
                            std::thread::spawn(move || {
                                std::thread::sleep(Duration::from_millis(50));
                                release.set();
                            });
                            pending::<()>().await;
                        })
                        .await;
                    after_inner.set();
                    let ran = late_child_ran.clone();
                    s.spawn(async move { ran.set() });
                    Ok(())
                })
            })
            .await;
        assert!(matches!(&result, Err(reason) if *reason == user("outer")), "{result:?}");
        let (ran_on, late) = (after_inner.is_set(), late_child_ran.is_set());
        assert!(
            !ran_on && !late,
            "after both regions were cancelled: the code after the inner region ran on: {ran_on}; \
             a child it spawned then ran: {late}"
        );
    });
}

/// trio's rule that unshielded code is cancelled at its next checkpoint, with a shielded
/// sibling in the same task: a region around a scope is cancelled while a local child of the
/// scope is in a shield. In trio the body raises `Cancelled` at its next `await sleep(..)`;
/// here the body must not go round its loop again while the sibling's shield holds the region.
#[test]
fn a_shielded_local_sibling_does_not_keep_the_cancelled_body_running() {
    in_task(|| async {
        let release = Flag::default();
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticks_at_cancel = Arc::new(AtomicUsize::new(usize::MAX));
        let outer = Region::new();
        let token = outer.token();
        let result = outer
            .run(async {
                klaw::scope!(|s| {
                    let release_child = release.clone();
                    s.spawn_local(shield(async move { until(|| release_child.is_set()).await }));
                    while ticks.load(Ordering::SeqCst) < 1_000_000 {
                        let tick = ticks.fetch_add(1, Ordering::SeqCst) + 1;
                        if tick == 3 {
                            ticks_at_cancel.store(tick, Ordering::SeqCst);
                            token.cancel("outer");
                            // The shielded sibling is released after a while, from a thread.
                            let release = release.clone();
                            std::thread::spawn(move || {
                                std::thread::sleep(Duration::from_millis(50));
                                release.set();
                            });
                        }
                        klaw::time::sleep(Duration::from_millis(1)).await;
                    }
                    Ok(())
                })
            })
            .await;
        assert!(matches!(&result, Err(reason) if *reason == user("outer")), "{result:?}");
        let extra = ticks.load(Ordering::SeqCst) - ticks_at_cancel.load(Ordering::SeqCst);
        assert_eq!(extra, 0, "the cancelled body went round its loop {extra} more times");
    });
}

/// The same with two branches of one future (`join`): the region is cancelled while one branch
/// is shielded; the other branch, unshielded, must not run on past its next `.await`.
#[test]
fn a_shielded_branch_does_not_keep_its_cancelled_sibling_branch_running() {
    in_task(|| async {
        let ticks = Arc::new(AtomicUsize::new(0));
        let outer = Region::new();
        let token = outer.token();
        let release = Flag::default();
        let result = outer
            .run(async {
                let shielded = shield(async {
                    until(|| release.is_set()).await;
                });
                let looping = async {
                    while ticks.load(Ordering::SeqCst) < 1_000_000 {
                        let tick = ticks.fetch_add(1, Ordering::SeqCst) + 1;
                        if tick == 3 {
                            token.cancel("outer");
                            let release = release.clone();
                            std::thread::spawn(move || {
                                std::thread::sleep(Duration::from_millis(50));
                                release.set();
                            });
                        }
                        klaw::time::sleep(Duration::from_millis(1)).await;
                    }
                };
                futures_util::future::join(shielded, looping).await;
            })
            .await;
        assert_eq!(result, Err(user("outer")));
        let extra = ticks.load(Ordering::SeqCst) - 3;
        assert_eq!(extra, 0, "the unshielded branch went round its loop {extra} more times");
    });
}

/// trio `test_cancel_shielding` / `test_cancel_edge_cases`: `cancel_called` of a nursery's cancel
/// scope is true only once *that* scope was cancelled. klaw differs by design: `Scope::is_cancelled`
/// reports an enclosing region's cancel too, as a region's token does (its doc says so); its own
/// `cancel` then changes nothing of what it reports.
#[test]
fn a_scopes_is_cancelled_reports_an_enclosing_cancellation_as_a_token_does() {
    in_task(|| async {
        let seen: Arc<Mutex<Option<(bool, bool)>>> = Arc::default();
        let outer = Region::new();
        let token = outer.token();
        let result = outer
            .run(async {
                klaw::scope!(|s| {
                    token.cancel("outer");
                    shield(async {
                        let enclosing_only = s.is_cancelled();
                        s.cancel("own");
                        *seen.lock().unwrap() = Some((enclosing_only, s.is_cancelled()));
                    })
                    .await;
                    Ok(())
                })
            })
            .await;
        assert!(matches!(&result, Err(reason) if *reason == user("outer")), "{result:?}");
        let (enclosing_only, own) = seen.lock().unwrap().take().expect("the shield ran");
        assert!(own, "Scope::is_cancelled is false after Scope::cancel");
        assert!(enclosing_only, "Scope::is_cancelled missed the enclosing region's cancel");
    });
}

/// trio's `test_cancel_inheritance` ("propagates immediately to all children") and
/// `test_cancel_points`: a scope's body cancels the region around the scope, while a local child
/// loops on `checkpoint()`. Checks: no checkpoint of the child returns once the region is
/// cancelled (`checkpoint`: "if the task or an enclosing region was cancelled, it never
/// returns"). What would break it: the scope polling its local children on in the poll that
/// cancelled it (each is a task of its own, not cancelled until the scope is dropped), so the
/// child's checkpoints return until the task's budget is spent.
#[test]
fn a_local_childs_checkpoint_never_returns_once_the_region_around_its_scope_is_cancelled() {
    in_task(|| async {
        let running = Flag::default();
        let after_cancel = AtomicUsize::new(0);
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    s.spawn_local(async {
                        running.set();
                        loop {
                            klaw::cancel::checkpoint().await;
                            if token.is_cancelled() {
                                after_cancel.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    });
                    until(|| running.is_set()).await;
                    token.cancel("stop");
                    pending::<()>().await;
                    Ok(())
                });
            })
            .await;
        assert_eq!(result, Err(user("stop")));
        assert_eq!(after_cancel.load(Ordering::SeqCst), 0, "checkpoints returned after the cancel");
    });
}

/// Code that runs without a look at a timer until both of two nested deadlines have passed
/// (trio: between two checkpoints).
fn busy_until(end: Instant) {
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// trio's `test_cancel_scope_nesting` ("the outer one wins") with deadlines, and the book's
/// "the deadline that passes first wins": the outer region's deadline passes first (or with the
/// inner's), but the code runs on without a look at a timer until both have passed, and then
/// enters the inner region, whose timer is the first polled. Checks: the outer region catches,
/// and the code after the inner region never runs. What would break it: each region looking only
/// at its own timer, so the inner one, polled first, caught the deadline and returned.
#[test]
fn an_outer_region_whose_deadline_passed_first_catches_though_the_inner_one_looks_first() {
    in_task(|| async {
        for inner_later in [Duration::ZERO, Duration::from_millis(20)] {
            let between = Flag::default();
            let ran_on = between.clone();
            let start = Instant::now();
            let outer_at = start + Duration::from_millis(30);
            let inner_at = outer_at + inner_later;
            let outer = klaw::cancel::move_on_at(outer_at, async move {
                busy_until(inner_at + Duration::from_millis(5));
                let _ = klaw::cancel::move_on_at(inner_at, pending::<()>()).await;
                ran_on.set();
                pending::<()>().await;
            })
            .await;
            assert_eq!(outer, None);
            assert!(!between.is_set(), "the inner region caught it ({inner_later:?} later)");
        }
    });
}

/// As `an_outer_region_whose_deadline_passed_first_catches_though_the_inner_one_looks_first`,
/// with two nested scopes' own deadlines: the outer scope fails with `Elapsed`, and the inner
/// scope's `Elapsed` never reaches the outer body. What would break it: the outer scope's
/// deadline recorded only by its own timer (it would end cancelled, not `Elapsed`).
#[test]
fn an_outer_scope_whose_deadline_passed_first_catches_though_the_inner_scope_looks_first() {
    in_task(|| async {
        for inner_later in [Duration::ZERO, Duration::from_millis(20)] {
            let between = Flag::default();
            let start = Instant::now();
            let outer_at = start + Duration::from_millis(30);
            let inner_at = outer_at + inner_later;
            let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |_s| {
                busy_until(inner_at + Duration::from_millis(5));
                let inner: Result<(), Error> = klaw::scope!(deadline = inner_at, |_t| {
                    pending::<()>().await;
                    Ok(())
                });
                between.set();
                let _ = inner;
                pending::<()>().await;
                Ok(())
            });
            assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
            assert!(!between.is_set(), "the inner scope returned ({inner_later:?} later)");
        }
    });
}

/// As `an_outer_region_whose_deadline_passed_first_catches_though_the_inner_one_looks_first`,
/// with a task's own timeout (the outermost region of all) around an inner region: the task's
/// timeout passed first, so the inner region must not return into the body. What would break
/// it: the task's deadline known only to its own timer, polled after the body's.
#[test]
fn a_task_timeout_that_passed_first_catches_though_an_inner_region_looks_first() {
    in_task(|| async {
        let between = Flag::default();
        let ran_on = between.clone();
        let inner_at = Instant::now() + Duration::from_millis(50);
        let handle = klaw::Handle::current().unwrap().spawn(
            Task::new(async move {
                busy_until(inner_at + Duration::from_millis(5));
                let _ = klaw::cancel::move_on_at(inner_at, pending::<()>()).await;
                ran_on.set();
                pending::<()>().await;
            })
            .timeout(Duration::from_millis(30)),
        );
        let outcome = handle.await;
        assert!(matches!(outcome, Err(TaskError::TimedOut(_))), "{outcome:?}");
        assert!(!between.is_set(), "the inner region caught a deadline that passed later");
    });
}

/// The local child's body: it computes past both deadlines, then enters a region whose deadline
/// is `inner_at`; `ran_on` is set if that region returned into it.
async fn local_child(inner_at: Instant, ran_on: Flag) {
    busy_until(inner_at + Duration::from_millis(5));
    let _ = klaw::cancel::move_on_at(inner_at, pending::<()>()).await;
    ran_on.set();
    pending::<()>().await;
}

/// The outer deadline is the scope's own.
///
/// Checks: the scope fails with `Elapsed`, and the code after the child's inner region never
/// runs.
#[test]
fn a_scopes_deadline_that_passed_first_catches_though_a_local_childs_region_looks_first() {
    in_task(|| async {
        for inner_later in [Duration::ZERO, Duration::from_millis(20)] {
            let ran_on = Flag::default();
            let outer_at = Instant::now() + Duration::from_millis(30);
            let inner_at = outer_at + inner_later;
            let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
                s.spawn_local(local_child(inner_at, ran_on.clone()));
                pending::<()>().await;
                Ok(())
            });
            assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
            assert!(
                !ran_on.is_set(),
                "the local child's inner region caught a deadline that passed later \
                 ({inner_later:?} after the scope's)"
            );
        }
    });
}

/// The outer deadline is a region's around the scope.
#[test]
fn a_regions_deadline_around_the_scope_catches_though_a_local_childs_region_looks_first() {
    in_task(|| async {
        let ran_on = Flag::default();
        let outer_at = Instant::now() + Duration::from_millis(30);
        let inner_at = outer_at + Duration::from_millis(20);
        let outer = klaw::cancel::move_on_at(outer_at, async {
            let _: Result<(), Error> = klaw::scope!(|s| {
                s.spawn_local(local_child(inner_at, ran_on.clone()));
                pending::<()>().await;
                Ok(())
            });
        })
        .await;
        assert_eq!(outer, None);
        assert!(!ran_on.is_set(), "the local child's inner region caught a later deadline");
    });
}

/// The outer deadline is the timeout of the task that runs the scope (the outermost region of
/// all, `tests/ported_trio_cancellation.rs::a_task_timeout_that_passed_first_catches_...`).
#[test]
fn a_task_timeout_that_passed_first_catches_though_a_local_childs_region_looks_first() {
    in_task(|| async {
        let ran_on = Flag::default();
        let inner_at = Instant::now() + Duration::from_millis(50);
        let seen = ran_on.clone();
        let handle = klaw::Handle::current().unwrap().spawn(
            Task::new(async move {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    s.spawn_local(local_child(inner_at, seen.clone()));
                    pending::<()>().await;
                    Ok(())
                });
            })
            .timeout(Duration::from_millis(30)),
        );
        let outcome = handle.await;
        assert!(matches!(outcome, Err(TaskError::TimedOut(_))), "{outcome:?}");
        assert!(!ran_on.is_set(), "the local child's inner region caught a later deadline");
    });
}

/// A local child's own timeout is a deadline inside its scope too: the scope's deadline, which
/// passed first, catches, though the child's timer is the first polled. The body runs past the
/// scope's deadline before the child exists, and the child's timeout is zero. What would break
/// it: the child's runner deciding `TimedOut` without looking past the child, so the scope
/// failed with the child's `TimedOut` and its own deadline, later, added nothing.
#[test]
fn a_scopes_deadline_that_passed_first_catches_though_a_local_childs_own_timeout_looks_first() {
    in_task(|| async {
        let outer_at = Instant::now() + Duration::from_millis(30);
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            busy_until(outer_at + Duration::from_millis(30));
            s.spawn_local(Task::new(pending::<()>()).timeout(Duration::ZERO));
            pending::<()>().await;
            Ok(())
        });
        assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
    });
}

/// The same with a child started before the body computes past both deadlines (its timeout
/// 40 ms, the scope's 30 ms): the child's timer has fired by the scope's next poll, which polls
/// the child before its own timer. If the timer's wake-up comes late this shows nothing, and
/// still passes.
#[test]
fn a_scopes_deadline_that_passed_first_catches_though_a_started_local_childs_timeout_fired() {
    in_task(|| async {
        let outer_at = Instant::now() + Duration::from_millis(30);
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            s.spawn_local(Task::new(pending::<()>()).timeout(Duration::from_millis(40)));
            common::yield_once().await; // the child's first poll starts its timeout
            busy_until(outer_at + Duration::from_millis(60));
            pending::<()>().await;
            Ok(())
        });
        assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
    });
}

/// The scope's body spawns a local child and returns `Ok` at once, well before the scope's
/// deadline. The child computes past the scope's deadline, then enters a region whose deadline
/// (`inner_later` after the scope's) has passed too: that region finds the scope's deadline
/// passed first, cancels the child with `Deadline`, and the child ends in the same poll.
/// The scope fails with `Elapsed`, as when its own timer catches a running child. What would
/// break it: the scope recording an expiry found inside it only after its body's poll, not after
/// its local children's, so that it returned `Ok(())`.
#[test]
fn a_scope_whose_deadline_a_local_child_found_passed_fails_elapsed_though_its_body_returned() {
    in_task(|| async {
        for inner_later in [Duration::ZERO, Duration::from_millis(20)] {
            let ran_on = Flag::default();
            let kept = Arc::new(Mutex::new(None));
            let outer_at = Instant::now() + Duration::from_millis(100);
            let inner_at = outer_at + inner_later;
            let (flag, keep) = (ran_on.clone(), kept.clone());
            let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
                let child = s.spawn_local(async move {
                    busy_until(inner_at + Duration::from_millis(5));
                    let _ = klaw::cancel::move_on_at(inner_at, pending::<()>()).await;
                    flag.set();
                });
                *keep.lock().unwrap() = Some(child.task_ref());
                Ok(())
            });
            let child = kept.lock().unwrap().take().expect("the child was spawned");
            assert!(!ran_on.is_set(), "the child's region returned into it");
            assert_eq!(
                child.cancel_reason(),
                Some(CancelReason::Deadline),
                "the child was cancelled for the scope's deadline"
            );
            assert!(
                matches!(result, Err(Error::Elapsed(_))),
                "the scope's deadline cancelled its running child, yet the scope reported \
                 {result:?} ({inner_later:?} between the deadlines)"
            );
        }
    });
}

/// The same with the local child's own timeout as the timer that looks first (its runner calls
/// `expire_enclosing` too): the child is spawned after the body computed past the scope's
/// deadline, with a zero timeout; the body returns `Ok` in that poll. The scope's deadline passed
/// first and cancels the child with `Deadline` (not `TimedOut`), and the scope fails with
/// `Elapsed`.
#[test]
fn a_scope_whose_deadline_a_local_childs_timeout_found_passed_fails_elapsed() {
    in_task(|| async {
        let outer_at = Instant::now() + Duration::from_millis(100);
        let kept = Arc::new(Mutex::new(None));
        let keep = kept.clone();
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            busy_until(outer_at + Duration::from_millis(30));
            let child = s.spawn_local(Task::new(pending::<()>()).timeout(Duration::ZERO));
            *keep.lock().unwrap() = Some(child.task_ref());
            Ok(())
        });
        let child = kept.lock().unwrap().take().expect("the child was spawned");
        assert_eq!(child.cancel_reason(), Some(CancelReason::Deadline));
        assert!(
            matches!(result, Err(Error::Elapsed(_))),
            "the scope's deadline cancelled its child, yet the scope reported {result:?}"
        );
    });
}

/// The child's own timeout counts from its first poll, which comes just before its body starts;
/// `started + 40 ms` is therefore no earlier than the child's own deadline.
fn past_both(outer_at: Instant, started: Instant) -> Instant {
    outer_at.max(started + Duration::from_millis(40)) + Duration::from_millis(10)
}

/// A local child with a timeout of its own, later than its scope's deadline, computes past both
/// and then asks `is_cancelled()`: the scope's deadline, which passed first, catches (`Elapsed`),
/// not the child's own timeout. What would break it: the walk of the deadlines timing the child
/// out as soon as its own timeout had passed, before it looked whether the scope's had too.
#[test]
fn a_scopes_earlier_deadline_catches_when_a_local_child_asks_is_cancelled_past_its_own_timeout() {
    in_task(|| async {
        let outer_at = Instant::now() + Duration::from_millis(30);
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            s.spawn_local(
                Task::new(async move {
                    let started = Instant::now();
                    busy_until(past_both(outer_at, started));
                    // Both deadlines have passed, the scope's first: asking cancels "as the
                    // deadline's timer would have at the next `.await`".
                    let _ = klaw::cancel::is_cancelled();
                })
                .timeout(Duration::from_millis(40)),
            );
            pending::<()>().await;
            Ok(())
        });
        assert!(
            matches!(result, Err(Error::Elapsed(_))),
            "the scope's deadline passed first and must catch, not the local child's own later \
             timeout: {result:?}"
        );
    });
}

/// The same with a region in the child whose timer fires first.
#[test]
fn a_scopes_earlier_deadline_catches_when_a_region_in_a_local_child_fires_past_its_own_timeout() {
    in_task(|| async {
        let outer_at = Instant::now() + Duration::from_millis(30);
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            s.spawn_local(
                Task::new(async move {
                    let started = Instant::now();
                    busy_until(past_both(outer_at, started));
                    // A region whose deadline is now: its timer fires at its first poll, and it
                    // looks past itself (`expire_enclosing`).
                    let _ = klaw::cancel::move_on_at(Instant::now(), pending::<()>()).await;
                })
                .timeout(Duration::from_millis(40)),
            );
            pending::<()>().await;
            Ok(())
        });
        assert!(
            matches!(result, Err(Error::Elapsed(_))),
            "the scope's deadline passed first and must catch, not the local child's own later \
             timeout: {result:?}"
        );
    });
}
