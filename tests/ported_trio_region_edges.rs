//! Behaviours of trio's `src/trio/_core/_tests/test_run.py` (trio at `60d0c2f8`) and tokio-util's
//! `tests/sync_cancellation_token.rs` (tokio at `ea91b33c`) that the existing ports
//! (`ported_cancellation.rs`, `ported_trio_cancellation.rs`, `ported_trio_nursery.rs`,
//! `ported_trio_edges.rs`, `cancel_tokens_and_time.rs`, ...) leave out. Same mapping as
//! `ported_trio_cancellation.rs`: a nursery is `scope!`, a cancel scope is a `Region`, trio's
//! `Cancelled` at a checkpoint is the future dropped at its `.await`, `except Cancelled:` cleanup
//! is a destructor, an uninterruptible wait is a shielded one. Every scenario runs on a thread of
//! its own with a deadline (`in_task`, `with_deadline`) or under `#[klaw::test(timeout)]`, so a
//! hang fails the test.

mod common;
#[path = "common/crashes.rs"]
mod crashes;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Flag, in_task, ms, runtime, secs, until, with_deadline};
use crashes::{Crash, crashes};
use klaw::cancel::{Region, Token, shield};
use klaw::scope::{ScopeOptions, scope_with};
use klaw::task::{BoxError, TaskRef};
use klaw::{CancelReason, Error, TaskError};

fn user(message: &'static str) -> CancelReason {
    CancelReason::user(message)
}

/// A destructor that writes `what` into a shared record (trio's `except Cancelled:` cleanup).
struct Record(Arc<Mutex<Vec<&'static str>>>, &'static str);

impl Drop for Record {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(self.1);
    }
}

// ---- test_run.py: test_basic_timeout -----------------------------------------------------------

/// trio `test_basic_timeout` (first part: once a scope has exited, nothing that happens later
/// changes its `cancel_called`). klaw's port, `a_deadline_that_passes_after_its_region_ended_
/// cancels_nothing`, checks only the region's own deadline. Here what comes after the region
/// ended is the cancellation of what enclosed it: an enclosing region, then (second part) the
/// task it ran in, cancelled through its handle. The ended region's token, and a child token
/// made of it for a worker, must not report it: no code of the region is inside what was
/// cancelled any more.
///
/// What would break it: a region registers with what encloses it when it starts
/// (`RegionState::listen_to` / `listen_to_task`) and leaves only when its state is dropped, which
/// a live token prevents; nothing unlinks it when the region ends.
#[test]
fn an_ended_regions_token_does_not_hear_a_later_cancellation_of_what_enclosed_it() {
    in_task(|| async {
        let kept: Arc<Mutex<Option<(Token, Token)>>> = Arc::default();
        let outer = Region::new();
        let outer_token = outer.token();
        let result = outer
            .run(async {
                let inner = Region::new();
                let (token, worker) = (inner.token(), inner.token().child());
                assert_eq!(inner.run(async { 1 }).await, Ok(1));
                *kept.lock().unwrap() = Some((token, worker));
                outer_token.cancel("after the inner region ended");
                klaw::cancel::checkpoint().await;
            })
            .await;
        assert_eq!(result, Err(user("after the inner region ended")));
        let (token, worker) = kept.lock().unwrap().take().expect("the inner region ran");
        assert_eq!(token.reason(), None, "an ended region's token heard a later enclosing cancel");
        assert_eq!(worker.reason(), None, "a child of an ended region's token heard it too");

        // The task the region ran in, cancelled through its handle after the region ended.
        let kept: Arc<Mutex<Option<Token>>> = Arc::default();
        let ended = Flag::default();
        let (slot, flag) = (kept.clone(), ended.clone());
        let task = klaw::Handle::current().unwrap().spawn(async move {
            let region = Region::new();
            *slot.lock().unwrap() = Some(region.token());
            let _ = region.run(async { 2 }).await;
            flag.set();
            pending::<()>().await;
        });
        until(|| ended.is_set()).await;
        assert!(task.cancel("after the region ended"));
        let _ = task.await;
        let token = kept.lock().unwrap().take().expect("the region ran");
        assert_eq!(token.reason(), None, "an ended region's token heard its task's later cancel");
    });
}

/// trio `test_basic_timeout` ("changing deadline": a scope's deadline assigned again after the
/// scope was made), with klaw's own rule for a deadline set twice, `Region::deadline`: "the
/// earlier deadline wins if one was set already" (ported for regions as
/// `a_region_deadline_set_twice_keeps_the_earlier`). The same builder calls on a scope's options,
/// `ScopeOptions::deadline` (or `timeout`) twice with the near one first, must still end the
/// scope at the near one, as they do a region. On a paused clock.
///
/// What would break it: `ScopeOptions::deadline` and `ScopeOptions::timeout` overwrite the value
/// set before (`self.deadline = Some(deadline)`), so the later, far deadline wins.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_scopes_deadline_or_timeout_set_twice_keeps_the_earlier_as_a_regions_does() {
    let now = klaw::time::now();
    let region = Region::new().deadline(now + ms(10)).deadline(now + secs(60));
    let outcome = region.run(klaw::time::sleep(secs(1))).await;
    assert_eq!(outcome, Err(CancelReason::Deadline), "the region's rule");

    for what in ["deadline", "timeout"] {
        let now = klaw::time::now();
        let options = match what {
            "deadline" => ScopeOptions::new().deadline(now + ms(10)).deadline(now + secs(60)),
            _ => ScopeOptions::new().timeout(ms(10)).timeout(secs(60)),
        };
        let result = scope_with(options, |_s| {
            Box::pin(async {
                klaw::time::sleep(secs(1)).await;
                Ok::<(), BoxError>(())
            })
        })
        .await;
        assert!(matches!(result, Err(Error::Elapsed(_))), "{what} set twice: {result:?}");
    }
}

// ---- test_run.py: test_cancel_scope_no_cancellederror, for a nursery --------------------------

/// trio `test_cancel_scope_no_cancellederror` for a nursery rather than a bare cancel scope: the
/// scope is cancelled by its body (`Scope::cancel`) and the body then fails, at once, or after a
/// shielded cleanup. trio lets the error through. klaw's port (`a_region_cancelled_then_left_
/// with_an_error_reports_the_cancellation`) covers only a region, whose value after its own
/// cancel is dropped by design; a scope body's error is a failure, and nothing that failed is
/// lost, so the scope returns the body's error, not the cancellation. (The failures_kept tests
/// cover a body failing under an *enclosing* cancellation, not the scope's own.)
///
/// What would break it: the scope reports a cancellation when its own reason is set; a body
/// completing after that is dropped for an `Ok`, and the `Err` path must not be treated alike.
#[test]
fn a_scope_body_failing_after_its_own_cancel_is_reported_not_the_cancellation() {
    in_task(|| async {
        let running = Flag::default();
        let result: Result<(), Error> = klaw::scope!(|s| {
            let flag = running.clone();
            s.spawn(async move {
                flag.set();
                pending::<()>().await;
            });
            until(|| running.is_set()).await;
            s.cancel("stop");
            Err(Crash("ValueError").into())
        });
        let error = result.unwrap_err();
        assert_eq!(crashes(&error), ["ValueError"], "{error:?}");

        let cleaned = Flag::default();
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn(pending::<()>());
            s.cancel("stop");
            shield(klaw::time::sleep(ms(5))).await;
            cleaned.set();
            Err(Crash("RuntimeError").into())
        });
        assert!(cleaned.is_set(), "the shielded cleanup was cut short");
        let error = result.unwrap_err();
        assert_eq!(crashes(&error), ["RuntimeError"], "{error:?}");
    });
}

/// trio `test_cancel_scope_no_cancellederror` with the scope's own deadline (trio: a
/// `fail_after` block whose cleanup raises): the body, in a shielded cleanup that outlives the
/// scope's `timeout`, fails afterwards. Both are reported, `Elapsed` first, as they are for a
/// child (`a_scope_timeout_and_an_error_raised_in_the_cancelled_child_are_both_reported`).
///
/// What would break it: the deadline is recorded as a failure when it fires and the body's error
/// only when the body returns; the order, or one of the two, could be lost.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_scope_body_failing_after_its_own_timeout_is_reported_after_elapsed() {
    let result: Result<(), Error> = klaw::scope!(timeout = Duration::from_millis(10), |_s| {
        shield(klaw::time::sleep(ms(30))).await;
        Err(Crash("late").into())
    });
    let error = result.unwrap_err();
    assert_eq!(crashes(&error), ["Elapsed", "late"], "{error:?}");
}

// ---- test_run.py: test_slow_abort_edge_cases ---------------------------------------------------

/// The record so far, the hooks run so far, and whether the late cancel decided anything.
type SeenBeforeWake = (Vec<&'static str>, usize, bool);

/// trio `test_slow_abort_edge_cases`: a child blocked in a wait a cancel cannot interrupt (here a
/// shielded `recv`) inside a nursery inside two nested cancel scopes; the outer scope is
/// cancelled, then the inner one, then (trio's "in fact that happens twice") the child itself
/// again. The abort callback, here the child's `on_cancel` hook, runs once, not once per cancel;
/// none of the cancels wakes the wait; once woken by hand, the child is cancelled at its next
/// checkpoint and its cleanup runs (the cancellation is delivered although it came while
/// shielded). The outer region catches it, and the child's reason is the one its hook saw.
///
/// What would break it: three cancellations reach one task, two of them while a shield holds it;
/// a hook run per delivery, a wait woken by one of them, or a cancel lost once the shield ends.
#[test]
fn a_child_in_an_uninterruptible_wait_cancelled_three_times_is_cancelled_once() {
    in_task(|| async {
        let record: Arc<Mutex<Vec<&'static str>>> = Arc::default();
        let hooks: Arc<Mutex<Vec<CancelReason>>> = Arc::default();
        // What the waking thread saw just before it woke the wait, and its own late cancel.
        let before_wake: Arc<Mutex<Option<SeenBeforeWake>>> = Arc::default();
        let child_ref: Arc<Mutex<Option<TaskRef>>> = Arc::default();
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let outer1 = Region::new();
        let outer2 = Region::new();
        let (t1, t2) = (outer1.token(), outer2.token());
        let result = outer1
            .run(outer2.run(async {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    let rec = record.clone();
                    let child = s.spawn(async move {
                        rec.lock().unwrap().push("sleeping");
                        let woken = shield(rx.recv()).await;
                        rec.lock().unwrap().push(if woken.is_ok() { "woke" } else { "closed" });
                        let _cleanup = Record(rec.clone(), "cancelled");
                        klaw::cancel::checkpoint().await;
                        rec.lock().unwrap().push("the checkpoint returned");
                    });
                    let seen = hooks.clone();
                    child.on_cancel(move |reason| seen.lock().unwrap().push(reason.clone()));
                    let task = child.task_ref();
                    *child_ref.lock().unwrap() = Some(task.clone());
                    until(|| record.lock().unwrap().len() == 1).await;
                    klaw::time::sleep(ms(10)).await; // the child is in its shield by now
                    // The waker: a thread, once the cancels have landed and had time to (wrongly)
                    // wake the wait or run the hook again; it cancels the child once more first.
                    let (rec, seen, out) = (record.clone(), hooks.clone(), before_wake.clone());
                    std::thread::spawn(move || {
                        let give_up = Instant::now() + Duration::from_secs(10);
                        while seen.lock().unwrap().is_empty() && Instant::now() < give_up {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        let again = task.cancel("once more");
                        std::thread::sleep(Duration::from_millis(30));
                        let snapshot = rec.lock().unwrap().clone();
                        let hooks_run = seen.lock().unwrap().len();
                        *out.lock().unwrap() = Some((snapshot, hooks_run, again));
                        tx.try_send(1).expect("room for the wake-up");
                    });
                    t1.cancel("outer1");
                    t2.cancel("outer2");
                    pending::<()>().await;
                    Ok(())
                });
            }))
            .await;
        assert!(matches!(&result, Err(reason) if *reason == user("outer1")), "{result:?}");
        let (snapshot, hooks_run, again) =
            before_wake.lock().unwrap().take().expect("the waking thread ran");
        assert_eq!(snapshot, ["sleeping"], "a cancel woke the uninterruptible wait");
        assert_eq!(hooks_run, 1, "the cancel hook ran once per cancel, not once");
        assert!(!again, "a third cancel of an already cancelled child decided something");
        assert_eq!(*record.lock().unwrap(), ["sleeping", "woke", "cancelled"]);
        let hooks = hooks.lock().unwrap().clone();
        let child = child_ref.lock().unwrap().take().expect("the child was spawned");
        assert_eq!(hooks.len(), 1, "{hooks:?}");
        assert_eq!(child.cancel_reason().as_ref(), hooks.first(), "the hook saw another reason");
        assert_eq!(child.cancel_reason(), Some(CancelReason::ParentCancelled));
    });
}

// ---- test_run.py: test_locals_destroyed_promptly_on_cancel, with drop guards ------------------

/// trio `test_locals_destroyed_promptly_on_cancel` (a cancelled child's locals are destroyed
/// before its nursery exits) where the locals are tokio-util-style drop guards
/// (`Token::cancel_on_drop`): a child holding the guard of a worker token is cancelled because a
/// sibling panicked while holding a guard of its own (dropped as it unwinds). Both tokens, and a
/// child token of the first, are cancelled with `ParentCancelled` (the guard's reason, its doc
/// says) by the time the scope returns, and a task outside the scope that awaits the child
/// token's `cancelled()` gets that reason. A guard disarmed before the cancel leaves its token
/// alone.
///
/// What would break it: a guard dropped by a panic's unwinding, or with a cancelled child's future
/// on another worker, might fire after the scope returned (or not at all); `disarm` is tested
/// only by its doc-test.
#[test]
fn drop_guards_of_cancelled_and_panicking_children_fire_before_their_scope_returns() {
    in_task(|| async {
        let (held, panicked, disarmed) = (Token::new(), Token::new(), Token::new());
        let worker = held.child();
        let waiter = {
            let worker = worker.clone();
            klaw::Handle::current().unwrap().spawn(async move { worker.cancelled().await })
        };
        let running = Arc::new(AtomicUsize::new(0));
        let result: Result<(), Error> = klaw::scope!(|s| {
            let (guard, counter) = (held.clone().cancel_on_drop(), running.clone());
            s.spawn(async move {
                let _guard = guard;
                counter.fetch_add(1, Ordering::SeqCst);
                pending::<()>().await;
            });
            let (guard, counter) = (disarmed.clone().cancel_on_drop(), running.clone());
            s.spawn(async move {
                let _token = guard.disarm();
                counter.fetch_add(1, Ordering::SeqCst);
                pending::<()>().await;
            });
            until(|| running.load(Ordering::SeqCst) == 2).await;
            let guard = panicked.clone().cancel_on_drop();
            s.spawn(async move {
                let _guard = guard;
                panic!("KeyboardInterrupt")
            });
            pending::<()>().await;
            Ok(())
        });
        let at_return = (held.reason(), worker.reason(), panicked.reason(), disarmed.reason());
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Task { error: TaskError::Panicked(m), .. } if m == "KeyboardInterrupt"),
            "{error:?}"
        );
        let parent = Some(CancelReason::ParentCancelled);
        assert_eq!(
            at_return,
            (parent.clone(), parent.clone(), parent, None),
            "(held, its child, the panicking child's, disarmed) when the scope returned"
        );
        assert_eq!(waiter.await, Ok(CancelReason::ParentCancelled));
    });
}

// ---- sync_cancellation_token.rs, for a region's token ------------------------------------------

/// tokio-util `create_child_token_after_parent_was_cancelled`, `cancel_token` (a `cancelled()`
/// made after the cancel is ready at once, for every waiter) and `run_until_cancelled_test`
/// (third part: never polled once cancelled), for a region's token whose cancellation is
/// inherited, not its own: an outer region is cancelled while an inner one runs, whose body goes
/// on in a shield. A child of the inner region's token made afterwards is born cancelled with the
/// outer reason; `cancelled()` futures made after the cancel, awaited by several tasks and in
/// place, give it at once; and `run_until_cancelled` on the child never polls its future, inside
/// the shield too (where no enclosing cancellation reaches).
///
/// What would break it: the parent's cancellation here is `first` without `own`; a child made later
/// must read it (`listen_to`), and the run made inside a shield hears nothing around it, so only
/// its parent token can stop it.
#[test]
fn a_child_of_a_region_token_that_inherited_a_cancel_is_born_cancelled() {
    in_task(|| async {
        let checked = Flag::default();
        let outer = Region::new();
        let outer_token = outer.token();
        let result = outer
            .run(async {
                let inner = Region::new();
                let inner_token = inner.token();
                let _ = inner
                    .run(async {
                        outer_token.cancel("outer");
                        shield(async {
                            assert_eq!(inner_token.reason(), Some(user("outer")));
                            let child = inner_token.child();
                            assert_eq!(child.reason(), Some(user("outer")), "born not cancelled");
                            let rt = klaw::Handle::current().unwrap();
                            let waiters: Vec<_> = (0..4)
                                .map(|_| {
                                    let child = child.clone();
                                    rt.spawn(async move { child.cancelled_owned().await })
                                })
                                .collect();
                            for waiter in waiters {
                                assert_eq!(waiter.await, Ok(user("outer")));
                            }
                            assert_eq!(child.cancelled().await, user("outer"));
                            let polled = Flag::default();
                            let flag = polled.clone();
                            let outcome = child
                                .run_until_cancelled(async move {
                                    flag.set();
                                    7
                                })
                                .await;
                            assert_eq!(outcome, Err(user("outer")));
                            assert!(!polled.is_set(), "run_until_cancelled polled its future");
                            checked.set();
                        })
                        .await;
                        pending::<()>().await;
                    })
                    .await;
            })
            .await;
        assert_eq!(result, Err(user("outer")));
        assert!(checked.is_set(), "the shielded checks did not all run");
    });
}

// ---- races: which reason --------------------------------------------------------------------------

/// trio `test_cancel_reason_not_overwritten` / `_not_overwritten_2` (test_cancelled.py: of a
/// deadline and an explicit cancel, the first is the reason and the other never replaces it) and
/// tokio-util `cancel_child_token_through_parent`, with the two racing: a region's deadline
/// falls due while another thread cancels its token. Whichever won, the region returns it, the
/// thread's `cancel` returned true exactly when it won, and the token, a child token made before
/// the race and a `cancelled()` waiter in another task all report that same reason; a cancel of
/// the child afterwards decides nothing and changes nothing. Over many rounds, on a real runtime.
///
/// What would break it: the deadline is decided in the region's poll on a worker, the token's
/// cancel on another thread; the reason the region returns (`own`), the one the token reports
/// (`first`) and the one passed down to children are three writes that must agree.
#[test]
fn a_regions_deadline_racing_its_tokens_cancel_gives_everyone_one_reason() {
    with_deadline(|| {
        let rt = runtime(2);
        let mut wrong = Vec::new();
        let mut by_deadline = 0;
        for round in 0..200u64 {
            let made = Instant::now();
            let region = Region::new().timeout(ms(2));
            let token = region.token();
            let child = token.child();
            let waiter = {
                let child = child.clone();
                rt.spawn(async move { child.cancelled().await })
            };
            let task = rt.spawn(region.run(pending::<()>()));
            let canceller = {
                let token = token.clone();
                // Somewhere around the deadline: 1.5 ms to 2.5 ms after the region was made.
                let at = made + Duration::from_micros(1500 + (round % 11) * 100);
                std::thread::spawn(move || {
                    while Instant::now() < at {
                        std::hint::spin_loop();
                    }
                    token.cancel("stop")
                })
            };
            let outcome = rt.block_on(task).expect("the region's task ended");
            let decided = canceller.join().unwrap();
            let reason = outcome.expect_err("the region was cancelled one way or the other");
            let heard = rt.block_on(waiter).expect("the waiter ended");
            if reason == CancelReason::Deadline {
                by_deadline += 1;
            }
            let late = child.cancel("late");
            let seen = (decided, token.reason(), child.reason(), heard, late);
            let expected = (
                reason == user("stop"),
                Some(reason.clone()),
                Some(reason.clone()),
                reason.clone(),
                false,
            );
            if seen != expected {
                wrong.push((round, reason, seen));
            }
        }
        assert!(
            wrong.is_empty(),
            "(round, region's reason, (decided, token, child, waiter, late cancel)) that disagree, \
             {by_deadline} of 200 rounds won by the deadline: {:?}",
            &wrong[..wrong.len().min(5)]
        );
    });
}

/// What a scenario keeps of the dropped region: which future won instead, the region's token,
/// and a child token made of it (as a worker would be given).
type Kept = Arc<Mutex<Option<(&'static str, Token, Token)>>>;

/// cancellation.md: "Once the region has ended (returned, or been dropped), nothing of it runs
/// inside what enclosed it any more, so a later cancellation there no longer reaches a token of
/// it someone kept: the token keeps what it heard while the region ran". Here the inner region
/// starts inside an outer region (so it hears the outer one), and `futures_lite::future::or`, a
/// combinator klaw does not know, drops it unfinished when its other future wins. Then the outer
/// region is cancelled. Checks: the kept token, and a child of it, report no cancellation.
///
/// What would break it: a dropped region not leaving what encloses it (`Cancellable`'s
/// `PinnedDrop` no longer calling `leave_enclosing(true)`): the outer region still lists it as a
/// child, the kept token keeps its state alive, and the outer cancellation reaches the token.
#[test]
fn a_region_a_foreign_or_dropped_does_not_hear_a_later_cancellation_of_its_enclosing_region() {
    in_task(|| async {
        let kept: Kept = Arc::default();
        let slot = kept.clone();
        let outer = Region::new();
        let outer_token = outer.token();
        let result = outer
            .run(async move {
                let inner = Region::new();
                let (token, worker) = (inner.token(), inner.token().child());
                // `or` polls the inner region first (it starts, and hears the outer region from
                // then on), then the ready future, which wins: the inner region is dropped
                // before it finished.
                let won = futures_lite::future::or(
                    async {
                        let _ = inner.run(pending::<()>()).await;
                        "the region"
                    },
                    async { "the other future" },
                )
                .await;
                *slot.lock().unwrap() = Some((won, token, worker));
                outer_token.cancel("after the inner region was dropped");
                klaw::cancel::checkpoint().await;
            })
            .await;
        assert_eq!(result, Err(CancelReason::user("after the inner region was dropped")));
        let (won, token, worker) = kept.lock().unwrap().take().expect("the outer region ran");
        assert_eq!(won, "the other future");
        assert_eq!(
            token.reason(),
            None,
            "a dropped region's token heard a later cancel of the region that enclosed it"
        );
        assert_eq!(worker.reason(), None, "a child of a dropped region's token heard it too");
    });
}

/// cancellation.md: "Once the region has ended (returned, or been dropped), ... a later
/// cancellation there no longer reaches a token of it someone kept". Here the region runs
/// directly in a task (so it hears the task's cancellation), as an arm of a `biased` `select!`
/// whose next arm is ready: the region is polled (started), then dropped with the losing arms.
/// The task then waits, and is cancelled through its handle. Checks: the kept token, and a child
/// of it, report no cancellation.
///
/// What would break it: a dropped region keeping its `on_cancel` hook on the task
/// (`leave_enclosing(true)` not called from `Cancellable`'s `PinnedDrop`): the hook holds the
/// region's state through the kept token, and the task's cancel reaches the token.
#[test]
fn a_region_a_select_dropped_does_not_hear_a_later_cancellation_of_its_task() {
    in_task(|| async {
        let kept: Kept = Arc::default();
        let dropped = Flag::default();
        let (slot, flag) = (kept.clone(), dropped.clone());
        let task = klaw::Handle::current().unwrap().spawn(async move {
            let region = Region::new();
            let (token, worker) = (region.token(), region.token().child());
            let running = region.run(pending::<()>());
            let won = klaw::select! {
                biased;
                running -> _ => "the region",
                async { "the other arm" } -> other => other,
            };
            *slot.lock().unwrap() = Some((won, token, worker));
            flag.set();
            pending::<()>().await;
        });
        until(|| dropped.is_set()).await;
        assert!(task.cancel("after the region was dropped"));
        let _ = task.await;
        let (won, token, worker) = kept.lock().unwrap().take().expect("the task ran");
        assert_eq!(won, "the other arm");
        assert_eq!(
            token.reason(),
            None,
            "a dropped region's token heard a later cancel of the task it ran in"
        );
        assert_eq!(worker.reason(), None, "a child of a dropped region's token heard it too");
    });
}
