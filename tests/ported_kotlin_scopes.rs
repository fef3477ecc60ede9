//! Behaviours of kotlinx.coroutines' common tests (`SupervisorTest.kt`, `CoroutineScopeTest.kt`,
//! `WithTimeoutTest.kt`, `WithTimeoutOrNullTest.kt`, `NonCancellableTest.kt`, and the JVM
//! `exceptions/` tests), translated to klaw where no existing test covers them.
//!
//! How Kotlin's concepts map:
//! - `coroutineScope { .. }` is `klaw::scope!(|s| ..)`; `supervisorScope` is
//!   `klaw::scope!(supervisor, ..)` / `ScopeOptions::new().supervisor()`.
//! - `launch` / `async` is `s.spawn(..)`; a thrown exception is a fallible child's `Err`;
//!   `Deferred.await()` is awaiting the `ScopeHandle`; `Job.cancel()` is `handle.cancel(reason)`
//!   (Kotlin's `CancellationException(message)` is the typed `CancelReason`).
//! - `withTimeout` is `klaw::cancel::fail_after`, `withTimeoutOrNull` is `move_on_after`.
//! - `withContext(NonCancellable) { .. }` is `klaw::cancel::shield(..)`; code that turns its
//!   cancellation into an exception (`finally { throw E }`) is a child that waits for its
//!   cancellation inside a shield and then returns `Err` (`converts_cancel`).
//! - Kotlin's suppressed exceptions are the later entries of `Error::Scope`; the exception
//!   Kotlin throws is `error.first()`.
//!
//! Every test runs on a thread of its own with a 30 s deadline (`in_task`, `with_deadline`), so a
//! hang fails the test instead of blocking the suite. None asserts a wall-clock duration; the
//! two that compare times use the paused clock.

mod common;
#[path = "common/crashes.rs"]
mod crashes;

use std::future::pending;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use common::{DropCount, Flag, in_task, ms, runtime, secs, until, with_deadline};
use crashes::{Crash, Record, Seen, converts_cancel, crash, crashes};
use klaw::cancel::shield;
use klaw::scope::{ScopeOptions, scope_with};
use klaw::task::{ExitReason, TakenFailure, TaskRef};
use klaw::{CancelReason, Error, TaskError};

fn options(supervisor: bool) -> ScopeOptions {
    if supervisor { ScopeOptions::new().supervisor() } else { ScopeOptions::new() }
}

// ---- 1. A supervisor scope whose own body fails ----------------------------------------------

/// `SupervisorTest.testThrowingSupervisorScope`, `testSupervisorThrows` and
/// `testSupervisorThrowsWithFailingChild`: a supervisor scope lets siblings of a failed child run,
/// but its *body's* failure cancels every child (Kotlin: the supervisor job is cancelled), and
/// the body's error is what the scope throws; a child that fails in its cleanup is suppressed
/// into it (`TestException2` reaches the handler, `TestException1` is caught).
///
/// Checks, first scenario: two sleeping children of a supervisor scope whose body fails are
/// cancelled with `ParentCancelled`, their cleanup has run when the scope returns, and the
/// result is the body's error alone (not a group). Second scenario: a child converts that
/// cancellation into its own failure; the result lists both, the body's first.
///
/// What would break it: supervisor mode skipping the cancel on a *body* failure (it must only
/// skip it for children's failures); the children cancelled with `SiblingFailed`; a cleanup
/// failure listed before the body's error that caused it, or dropped because the supervisor
/// scope was "already failing".
#[test]
fn a_supervisor_body_failure_cancels_every_child_and_comes_first() {
    in_task(|| async {
        // testThrowingSupervisorScope / testSupervisorThrows
        let record = Arc::new(Mutex::new(Vec::new()));
        let mut children: Vec<TaskRef> = Vec::new();
        let result: Result<(), Error> = klaw::scope!(supervisor, |s| {
            let handles: Vec<_> = ["job1", "job2"]
                .into_iter()
                .map(|name| {
                    let cleanup = Record(record.clone(), name);
                    s.spawn(async move {
                        let _cleanup = cleanup; // `finally { expect(3) }`
                        pending::<()>().await;
                    })
                })
                .collect();
            children.extend(handles.iter().map(|handle| handle.task_ref()));
            until(|| handles.iter().all(|handle| handle.has_started())).await;
            Err(Crash("TestException1").into())
        });
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Body(_)), "the body's error alone: {error:?}");
        assert_eq!(crashes(&error), ["TestException1"]);
        let mut cleaned = record.lock().unwrap().clone();
        cleaned.sort_unstable();
        assert_eq!(cleaned, ["job1", "job2"], "the scope returned before its children's cleanup");
        for child in &children {
            assert_eq!(child.exit_reason(), ExitReason::Cancelled);
            assert_eq!(child.cancel_reason(), Some(CancelReason::ParentCancelled));
        }

        // testSupervisorThrowsWithFailingChild
        let (running, seen): (Flag, Seen) = (Flag::default(), Arc::default());
        let result: Result<(), Error> = klaw::scope!(supervisor, |s| {
            s.spawn(pending::<()>());
            s.spawn(converts_cancel("TestException2", running.clone(), seen.clone(), None));
            until(|| running.is_set()).await;
            Err(Crash("TestException1").into())
        });
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Scope(_)), "{error:?}");
        assert_eq!(crashes(&error), ["TestException1", "TestException2"], "{error:?}");
        assert!(matches!(error.first(), Error::Body(_)), "{error:?}");
        assert_eq!(*seen.lock().unwrap(), Some(CancelReason::ParentCancelled));
    });
}

// ---- 2. Cancelled, then failing, in the same step ---------------------------------------------

/// `CoroutineScopeTest.testCoroutineScopeCancellationVsException` and
/// `SupervisorTest.testSupervisorScopeCancellationVsException`: the job running a scope is
/// cancelled from inside the scope's body, which then throws at once, with no suspension in
/// between. Kotlin: the exception, not the cancellation, comes out of the scope.
///
/// klaw's rule differs in where it goes, not in whether it is kept: the task is cancelled, so
/// the scope does not return into it (the outermost cancelled frame catches it; the code after
/// the scope never runs), and the body's error is handed to the frame the scope is dropped in,
/// the task's, which reports it to the task's own scope. Checks, for a default and a supervisor
/// inner scope: the outer scope's result is the body's error; the task ended `Cancelled` with
/// the reason given; the code after the inner scope did not run.
///
/// What would break it: the driver taking the task's cancel as the outcome and dropping the
/// body's error it already holds (`Drive::drop` must hand `body_error` on even when the scope
/// returned `Pending` for the enclosing cancel in the very poll the body failed); or returning
/// `Err` into a cancelled task that discards it.
#[test]
fn a_task_cancelled_by_its_scope_body_that_then_fails_hands_the_failure_on() {
    in_task(|| async {
        for supervisor in [false, true] {
            let me: Arc<Mutex<Option<TaskRef>>> = Arc::default();
            let after_scope = Flag::default();
            let mut task_ref = None;
            let result: Result<(), Error> = klaw::scope!(|outer| {
                let (slot, after) = (me.clone(), after_scope.clone());
                let task = outer.spawn(async move {
                    until(|| slot.lock().unwrap().is_some()).await;
                    let me = slot.lock().unwrap().clone().expect("set above");
                    let inner: Result<(), Error> = scope_with(options(supervisor), |_s| {
                        Box::pin(async move {
                            yield_once().await; // "must suspend" once, as Kotlin's test does
                            me.cancel("cancelled before it throws"); // job!!.cancel()
                            // throw TestException1()
                            Err::<(), klaw::task::BoxError>(Crash("TestException1").into())
                        })
                    })
                    .await;
                    after.set();
                    drop(inner);
                });
                task_ref = Some(task.task_ref());
                *me.lock().unwrap() = Some(task.task_ref());
                Ok(())
            });
            let error = result.unwrap_err();
            assert_eq!(crashes(&error), ["TestException1"], "supervisor {supervisor}: {error:?}");
            let task = task_ref.expect("spawned");
            assert_eq!(task.exit_reason(), ExitReason::Cancelled, "supervisor {supervisor}");
            let reason = CancelReason::user("cancelled before it throws");
            assert_eq!(task.cancel_reason(), Some(reason));
            assert!(!after_scope.is_set(), "supervisor {supervisor}: the cancelled task ran on");
        }
    });
}

/// One suspension: pending once, woken at once.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

// ---- 3. Timeouts against shields and failing children ----------------------------------------

/// `WithTimeoutTest.testSuppressExceptionWithResult` and
/// `WithTimeoutOrNullTest.testSuppressExceptionWithResult`: the timed block catches its
/// cancellation, finishes anyway and returns "OK"; the timeout still wins (`withTimeout` throws,
/// `withTimeoutOrNull` gives `null`). Here the whole timed future is a shield that outlasts the
/// deadline and then ends with a value.
///
/// Checks, on the paused clock: `fail_after(5 s, ..)` returns `Elapsed` of 5 s, `move_on_after`
/// returns `None`; each returned only when the shield ended (at 30 s, not at 5 s, not later);
/// the value the shield produced after the deadline is dropped exactly once, before the call
/// returns.
///
/// What would break it: a completion after the region's own cancel taken as the outcome (the
/// region must report the cancellation, as a task handle does); the region returning at its
/// deadline while the shield still runs; the late value leaked or dropped twice; `Elapsed`
/// reporting the time the shield took instead of the timeout.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_timeout_whose_shielded_future_outlasts_it_with_a_value_still_times_out() {
    let drops = DropCount::default();
    let start = klaw::time::now();
    let value = drops.value();
    let timed = klaw::cancel::fail_after(
        secs(5),
        shield(async move {
            klaw::time::sleep(secs(30)).await;
            value // "OK", after the deadline
        }),
    )
    .await;
    match timed {
        Ok(_) => panic!("the value completed after the deadline won"),
        Err(elapsed) => assert_eq!(elapsed.after(), secs(5)),
    }
    assert_eq!(klaw::time::now() - start, secs(30), "the region did not wait for the shield");
    assert_eq!(drops.get(), 1, "the late value was not dropped exactly once");

    let start = klaw::time::now();
    let value = drops.value();
    let or_null = klaw::cancel::move_on_after(
        secs(5),
        shield(async move {
            klaw::time::sleep(secs(30)).await;
            value
        }),
    )
    .await;
    assert!(or_null.is_none(), "the value completed after the deadline won");
    assert_eq!(klaw::time::now() - start, secs(30));
    assert_eq!(drops.get(), 2);
}

/// `JobExceptionHandlingTest.testExceptionOnChildCancellation` under a timeout, i.e.
/// `withTimeout(10) { coroutineScope { launch { try { awaitCancellation() } finally { throw
/// TestException() } } } }`: the timeout fires while a child turns its cancellation into a
/// failure. Kotlin: the child's exception wins over the `TimeoutCancellationException` (a
/// cancellation never suppresses a failure). The body passes the timeout on with `?`.
///
/// Checks, on the paused clock: nothing is lost, the child's failure comes first (it reached
/// the enclosing scope while `fail_after` waited for the dropped scope's child), then the body's
/// `Elapsed`; the child heard a cancellation.
///
/// What would break it: the region returning `Elapsed` before the dropped scope's child has
/// ended (its failure then arrives after the body's error, or nowhere); the dropped scope's
/// failure forwarded to the region's adopter and never handed over to the enclosing scope
/// (`hand_over_failures` at the region's end); the child's failure logged as "raced" but not
/// reported.
#[test]
fn a_timeout_firing_while_a_child_fails_in_cleanup_loses_neither() {
    common::in_paused_task(|| async {
        let (running, seen): (Flag, Seen) = (Flag::default(), Arc::default());
        let result: Result<(), Error> = klaw::scope!(|_outer| {
            klaw::cancel::fail_after(ms(10), async {
                klaw::scope!(|s| {
                    s.spawn(converts_cancel("TestException", running.clone(), seen.clone(), None));
                    pending::<()>().await;
                    Ok(())
                })
            })
            .await
            .map_err(Error::from)??;
            Ok(())
        });
        assert!(running.is_set(), "the child never ran");
        let error = result.unwrap_err();
        assert_eq!(crashes(&error), ["TestException", "Elapsed"], "{error:?}");
        assert!(seen.lock().unwrap().is_some(), "the child never heard its cancellation");
    });
}

// ---- 4. Shields after a cancel ----------------------------------------------------------------

/// `NonCancellableTest.testNonCancellableTwice` with `testNonCancellableWithException`'s typed
/// reason: a task is cancelled (with a reason of its own, "TEST") while in a first
/// `withContext(NonCancellable)`; right after it, with no suspension in between, it enters a
/// second one. Kotlin runs both to their end (expect 2, 4, 5, 6), then the task ends cancelled
/// with that reason; trio agrees (a shielded scope entered after a cancel runs).
///
/// Checks: both shields' work completes, each with a suspension inside; the code after the
/// second shield (past its next `.await`) does not run; the handle gives `Cancelled("TEST")`.
///
/// What would break it: the runner dropping the body as soon as the first shield's hold ends
/// (`shield_exit` wakes the task, and `must_stop` would be true for an instant); the second
/// shield's inner awaits seeing the held cancellation (`held_here`) as if they were beside a
/// shield rather than inside one; the reason replaced by a generic one.
#[test]
fn a_second_shield_entered_right_after_the_first_runs_to_its_end() {
    with_deadline(|| {
        let rt = runtime(2);
        let record = Arc::new(Mutex::new(Vec::new()));
        let (entered_tx, entered) = mpsc::channel();
        let go = Flag::default();
        let (log, release) = (record.clone(), go.clone());
        let handle = rt.spawn(async move {
            shield(async {
                entered_tx.send(()).unwrap();
                until(|| release.is_set()).await;
                log.lock().unwrap().push("first shield");
            })
            .await;
            shield(async {
                klaw::time::sleep(ms(5)).await;
                log.lock().unwrap().push("second shield");
            })
            .await;
            klaw::time::sleep(ms(1)).await;
            log.lock().unwrap().push("after both");
        });
        entered.recv_timeout(secs(10)).expect("the first shield was entered");
        assert!(handle.cancel(CancelReason::user("TEST")));
        go.set();
        let outcome = rt.block_on(handle);
        assert_eq!(outcome, Err(TaskError::Cancelled(CancelReason::user("TEST"))));
        assert_eq!(*record.lock().unwrap(), ["first shield", "second shield"]);
    });
}

// ---- 5. Cancellations are not failures ---------------------------------------------------------

/// `CoroutineScopeTest.testAsyncCancellationFirst`'s `one.await() + two.await()` with the second
/// await in cleanup that must finish: `coroutineScope { val two = async { delay(MAX) }; val one
/// = async { throw TestException1() }; withContext(NonCancellable) { two.await() } }`. `two` is
/// cancelled by `one`'s failure, so `two.await()` throws a `CancellationException`, which the
/// body lets escape. Kotlin throws `TestException1` alone: a cancellation is never a failure
/// and is never added as suppressed; trio strips `Cancelled` from a group likewise.
///
/// Checks: the scope's error is the crash alone, not a group that also lists the sibling's
/// `Cancelled(SiblingFailed)`, an echo of the failure already listed.
///
/// What would break it: the body's `Err` listed as a failure whatever it is, so a cancellation
/// the body merely passed on becomes a second entry (`drive.rs::result` drops such an echo when
/// a real failure is listed; alone, a cancellation the body returned is still the scope's
/// error, as the book's table of errors says).
#[test]
fn a_sibling_cancellation_passed_on_by_the_body_does_not_join_the_failure() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            let two = s.spawn(pending::<()>());
            s.spawn(crash("TestException1"));
            shield(two).await?; // Err(Cancelled(SiblingFailed)), passed on
            Ok(())
        });
        let error = result.unwrap_err();
        assert!(
            !matches!(&error, Error::Scope(_)),
            "a cancellation joined the failure as an entry of its own: {error:?}"
        );
        assert_eq!(crashes(&error), ["TestException1"], "{error:?}");
    });
}

/// `SupervisorTest.testSupervisorScopeIsolation` (the body cancels a running child with
/// `job.cancel()` and returns "OK") and `testSupervisorJobCancellationException`
/// (`child.cancelAndJoin()` is no exception for anyone), with `NonCancellableTest`'s cleanup that
/// finishes after the cancel: the child's shielded cleanup ends with a value after its handle's
/// cancel with a typed reason. In both modes.
///
/// Checks: awaiting the child gives `Cancelled` with that reason and the child's name (the first
/// terminal state wins over the value produced later); a sibling is not cancelled and ends
/// well; the scope is not cancelled; the scope returns the body's "OK".
///
/// What would break it: a handle-cancelled child counted as a failure (default mode would then
/// cancel the sibling with `SiblingFailed` and fail the scope); the late value winning over the
/// cancel; the reason lost (`ParentCancelled` or `SiblingFailed` in its place).
#[test]
fn a_running_child_cancelled_through_its_handle_is_no_failure_in_either_mode() {
    in_task(|| async {
        for supervisor in [false, true] {
            let (running, release) = (Flag::default(), Flag::default());
            let result = scope_with(options(supervisor), |s| {
                Box::pin(async move {
                    let sibling = s.spawn(async {
                        klaw::time::sleep(ms(20)).await;
                        "sibling done"
                    });
                    let (r, g) = (running.clone(), release.clone());
                    let child = s.spawn(async move {
                        shield(async move {
                            r.set();
                            until(|| g.is_set()).await;
                            42u32 // the cleanup's value, produced after the cancel
                        })
                        .await
                    });
                    until(|| running.is_set()).await;
                    assert!(child.cancel(CancelReason::user("no longer needed")));
                    release.set();
                    let (child_ref, sibling_ref) = (child.task_ref(), sibling.task_ref());
                    let seen = child.await;
                    let sibling_value = sibling.await?;
                    assert!(!s.is_cancelled(), "a cancelled child cancelled its scope");
                    Ok((seen, child_ref, sibling_ref, sibling_value, "OK"))
                })
            })
            .await;
            let (seen, child, sibling, sibling_value, ok) =
                result.unwrap_or_else(|error| panic!("supervisor {supervisor}: {error:?}"));
            assert!(
                matches!(&seen,
                    Err(Error::Task { task: Some(_), error: TaskError::Cancelled(r), .. })
                        if *r == CancelReason::user("no longer needed")),
                "supervisor {supervisor}: {seen:?}"
            );
            assert_eq!(child.exit_reason(), ExitReason::Cancelled);
            assert_eq!(child.cancel_reason(), Some(CancelReason::user("no longer needed")));
            assert_eq!(sibling.cancel_reason(), None, "supervisor {supervisor}");
            assert_eq!(sibling.exit_reason(), ExitReason::Success);
            assert_eq!((sibling_value, ok), ("sibling done", "OK"));
        }
    });
}

// ---- 5. A failure the body took in a shield ---------------------------------------------------

/// `CoroutineScopeTest`'s `withContext(NonCancellable) { try { one.await() } catch (e) { } }`:
/// Kotlin fails the parent with a child's exception whoever caught it, and trio has no way to
/// catch a child's exception at all. In klaw a cancelled scope's body sees a sibling's failure
/// only by awaiting its handle in a shield; the error then goes to the body.
///
/// Checks, for a body that takes child `one`'s failure (from its handle, and from a child set):
/// - dropped: the scope still fails with `one`, by name, the failure's words kept in a
///   `TakenFailure`;
/// - returned with `?`, or wrapped as a cause: the failure is listed once, as the body's;
/// - replaced by an error of the body's own: both are listed, `one`'s first;
/// - in a supervisor scope: the body owns what it awaited, and the scope succeeds.
///
/// What would break it: the scope reporting only `Cancelled(SiblingFailed)`, which names no
/// failure, for a failure the body dropped (as it did before the scope kept stand-ins); a stand-in
/// listed beside the failure the body passed on (counted twice).
#[test]
fn a_failure_the_body_took_in_a_shield_and_dropped_still_fails_the_scope() {
    in_task(|| async {
        let dropped: Result<(), Error> = klaw::scope!(|s| {
            let one = s.spawn(crash("TestException1").name("one"));
            let taken = shield(one).await;
            assert!(matches!(taken, Err(Error::Task { .. })), "{taken:?}");
            Ok(())
        });
        let error = dropped.unwrap_err();
        let Error::Task { task: Some(task), error: TaskError::Failed(failure), .. } = &error else {
            panic!("the dropped failure is not the scope's error: {error:?}")
        };
        assert_eq!(task.name(), Some("one"));
        let taken = failure.downcast_ref::<TakenFailure>().unwrap_or_else(|| panic!("{error:?}"));
        assert_eq!(taken.message(), "TestException1 crashed");

        let from_a_set: Result<(), Error> = klaw::scope!(|s| {
            let mut set = s.child_set();
            set.spawn(crash("TestException1").name("one"));
            let taken = shield(set.next_finished()).await;
            assert!(matches!(taken, Some(Err(_))), "{taken:?}");
            Ok(())
        });
        let error = from_a_set.unwrap_err();
        assert!(
            matches!(&error, Error::Task { task: Some(task), error: TaskError::Failed(f), .. }
                if task.name() == Some("one") && f.downcast_ref::<TakenFailure>().is_some()),
            "{error:?}"
        );
    });
}

/// The other half of the case above: a failure the body passes on is listed once, whether it
/// returns it with `?` or wraps it as the cause of its own error; an error of its own beside the
/// dropped failure is listed after it.
#[test]
fn a_failure_the_body_took_and_passed_on_is_listed_once() {
    #[derive(Debug, thiserror::Error)]
    #[error("cleanup saw a failure")]
    struct Saw(#[source] Error);

    in_task(|| async {
        let returned: Result<(), Error> = klaw::scope!(|s| {
            let one = s.spawn(crash("TestException1"));
            shield(one).await?;
            Ok(())
        });
        let error = returned.unwrap_err();
        assert!(!matches!(&error, Error::Scope(_)), "counted twice: {error:?}");
        assert_eq!(crashes(&error), ["TestException1"]);

        let wrapped: Result<(), Error> = klaw::scope!(|s| {
            let one = s.spawn(crash("TestException1"));
            let error = shield(one).await.unwrap_err();
            Err(Saw(error).into())
        });
        let error = wrapped.unwrap_err();
        let Error::Body(body) = &error else { panic!("counted twice: {error:?}") };
        assert!(body.downcast_ref::<Saw>().is_some(), "{error:?}");

        let replaced: Result<(), Error> = klaw::scope!(|s| {
            let one = s.spawn(crash("TestException1"));
            drop(shield(one).await);
            Err(Crash("the body").into())
        });
        let error = replaced.unwrap_err();
        let Error::Scope(group) = &error else { panic!("one failure lost: {error:?}") };
        let [first, second] = group.errors() else { panic!("{error:?}") };
        assert!(
            matches!(first, Error::Task { error: TaskError::Failed(f), .. }
                if f.downcast_ref::<TakenFailure>().is_some_and(|t| t.message() == "TestException1 crashed")),
            "{error:?}"
        );
        assert_eq!(crashes(second), ["the body"]);

        let supervised = scope_with(ScopeOptions::new().supervisor(), |s| {
            Box::pin(async move {
                let one = s.spawn(crash("TestException1"));
                assert!(shield(one).await.is_err());
                Ok("handled")
            })
        })
        .await;
        assert_eq!(supervised.unwrap(), "handled", "a supervisor's body owns what it awaited");
    });
}

/// A child cancelled by its scope's deadline, whose cancellation the body passes on (awaited in
/// a shield, returned with `?`: a graceful shutdown), is an echo of the scope's `Elapsed`, as
/// the `SiblingFailed` form above is of a failure: the scope returns `Error::Elapsed` alone, in
/// default and supervisor mode. (kotlinx.coroutines `withTimeout` around a `coroutineScope` that
/// awaits its child in `NonCancellable` throws the timeout alone; trio strips `Cancelled` from a
/// nursery's group.) A cancellation the body returns for a reason of its own is still listed.
///
/// What would break it: an echo test that knew only `SiblingFailed`, which returned
/// `Error::Scope([Elapsed, Cancelled(Deadline)])`.
#[test]
fn a_childs_deadline_cancellation_passed_on_by_the_body_does_not_join_the_scopes_elapsed() {
    in_task(|| async {
        // Graceful shutdown: the body waits for its worker to wind down, in a shield, and
        // passes on how it ended. `$($mode)*` is empty (default mode) or `supervisor`.
        macro_rules! timed_out_scope_passing_on_its_worker {
            ($($mode:ident)*) => {{
                let seen = std::sync::Mutex::new(None);
                let result: Result<(), Error> = klaw::scope!(timeout = "20ms", $($mode,)* |s| {
                    let worker = s.spawn(klaw::time::sleep(secs(60)));
                    let ended = shield(worker).await;
                    *seen.lock().unwrap() = Some(format!("{ended:?}"));
                    ended?;
                    Ok(())
                });
                let seen = seen.into_inner().unwrap();
                (result, seen.expect("the body saw the worker end, in its shield"))
            }};
        }
        for (supervisor, (result, seen)) in [
            (false, timed_out_scope_passing_on_its_worker!()),
            (true, timed_out_scope_passing_on_its_worker!(supervisor)),
        ] {
            assert!(seen.contains("Deadline"), "the worker was cancelled by the deadline: {seen}");
            assert!(
                matches!(result, Err(Error::Elapsed(_))),
                "supervisor {supervisor}: the scope timed out, and the worker's cancellation the \
                 body passed on is an echo of it, not a second failure: {result:?}"
            );
        }
        // The scope's own timeout alone, for comparison: `Elapsed`.
        let alone: Result<(), Error> = klaw::scope!(timeout = "20ms", |s| {
            s.spawn(klaw::time::sleep(secs(60)));
            Ok(())
        });
        assert!(matches!(alone, Err(Error::Elapsed(_))), "{alone:?}");
        // And a cancellation the body returns for a reason of its own is still listed (the
        // book's rule, kept by the fix): the scope's error names it.
        let own: Result<(), Error> = klaw::scope!(|s| {
            let worker = s.spawn(klaw::time::sleep(secs(60)));
            worker.cancel("not needed");
            worker.await?;
            Ok(())
        });
        assert!(
            matches!(&own, Err(Error::Task { error: TaskError::Cancelled(r), .. })
                if *r == CancelReason::user("not needed")),
            "{own:?}"
        );
    });
}
