//! Behaviours of kotlinx.coroutines' common tests about jobs, deferreds and their handlers
//! (`CoroutinesTest.kt`, `JobTest.kt`, `AwaitTest.kt`, `AsyncLazyTest.kt`, `LaunchLazyTest.kt`,
//! `ParentCancellationTest.kt`), translated to klaw where no existing test covers them.
//!
//! How Kotlin's concepts map (as in `ported_kotlin_scopes.rs`):
//! - `launch` / `async` is `s.spawn(..)`; a thrown exception is a fallible child's `Err`;
//!   `job.cancel()` is `handle.cancel(reason)`; `Job.isCancelled` / `isCompleted` are
//!   `exit_reason()` / `is_finished()`.
//! - `CoroutineStart.LAZY` is a child that waits for a slot of its scope's `limit`: spawned, with
//!   a handle, but not started (`has_started()` is false) until its turn.
//! - `invokeOnCompletion(onCancelling = true)` / `invokeOnCancellation` is `on_cancel`: it runs
//!   once if the task is cancelled or times out, never otherwise (where Kotlin calls it with
//!   `null`), and there is no `dispose`.
//! - `awaitAll(d1, d2, ..)` is draining a `ChildSet` with `?`: the first failure ends the wait.
//!   In klaw's default mode a failing child fails the scope before the body can see it, so the
//!   fail-fast part of `awaitAll` is the supervisor mode's.
//!
//! Every test runs on a thread of its own with a 30 s deadline (`in_task`), so a hang fails the
//! test instead of blocking the suite.

mod common;
#[path = "common/crashes.rs"]
mod crashes;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use common::{DropCount, Flag, SetOnDrop, block_until_cancelled, in_task, ms, secs, until};
use crashes::{Crash, Record, crash, crashes};
use klaw::cancel::shield;
use klaw::scope::{ScopeOptions, scope_with};
use klaw::task::{ExitReason, TaskRef};
use klaw::{CancelReason, Error, Task, TaskError};

fn options(supervisor: bool) -> ScopeOptions {
    if supervisor { ScopeOptions::new().supervisor() } else { ScopeOptions::new() }
}

// ---- 1. Lazy children and their handlers ------------------------------------------------------

/// `LaunchLazyTest.testInvokeOnCompletionAndStart` and `AsyncLazyTest.testCancelBeforeStart`: a
/// handler registered on a child that has not started yet; one such child is cancelled before it
/// starts, the other starts later and completes. Here "not started" is a child waiting for the
/// only slot of a `limit = 1` scope. Second scenario: `s.cancel` with three children waiting.
///
/// Checks: the cancelled waiting child's hook runs once, inside `cancel` (before it returns),
/// with the cancel's reason; a second cancel returns false; awaiting it gives that cancellation
/// without waiting for the slot, its future already dropped, its body never run. The other
/// waiting child's hook never runs, and is dropped by the time its handle gives its value.
/// `s.cancel("enough")` runs the hook of every waiting child with "enough" before it returns,
/// and none of their bodies runs.
///
/// What would break it: `Limit::close` (runtime/limit.rs) ending waiting children without
/// deciding their cancellation through `Header::cancel` (no hooks, or the wrong reason); a
/// waiting child's core in its own `Arc` keeping its hooks past its end (`drop_unrun_hooks`,
/// task/core.rs, must run for a child that started late); `end_cancelled` publishing before
/// the body is dropped.
#[test]
fn hooks_of_children_waiting_for_a_slot_run_at_their_cancel_and_never_when_they_finish() {
    in_task(|| async {
        let seen: Arc<Mutex<Vec<(&'static str, CancelReason)>>> = Arc::default();
        let kept = DropCount::default();
        let (ran_w1, ran_w2, w1_dropped, release) =
            (Flag::default(), Flag::default(), Flag::default(), Flag::default());
        let result = klaw::scope!(limit = 1, |s| {
            let rel = release.clone();
            let holder = s.spawn(async move {
                until(|| rel.is_set()).await;
                1u32
            });
            let (r1, guard) = (ran_w1.clone(), SetOnDrop(w1_dropped.clone()));
            let w1 = s.spawn(async move {
                let _guard = guard;
                r1.set();
                10u32
            });
            let r2 = ran_w2.clone();
            let w2 = s.spawn(async move {
                r2.set();
                100u32
            });
            assert!(!w1.has_started() && !w2.has_started(), "both wait for the holder's slot");
            let log = seen.clone();
            w1.on_cancel(move |reason| log.lock().unwrap().push(("w1", reason.clone())));
            let (log, held) = (seen.clone(), kept.value());
            w2.on_cancel(move |reason| {
                drop(held);
                log.lock().unwrap().push(("w2", reason.clone()));
            });
            assert!(w1.cancel("not needed"), "a waiting child's cancel decided nothing");
            assert!(!w1.cancel("again"));
            assert_eq!(
                *seen.lock().unwrap(),
                [("w1", CancelReason::user("not needed"))],
                "the hook did not run inside the cancel"
            );
            assert_eq!(w1.exit_reason(), ExitReason::Cancelled);
            let w1_outcome = w1.await; // at once: the holder still has the slot
            assert!(w1_dropped.is_set(), "the handle resolved before the future was dropped");
            release.set();
            let w2_value = w2.await?;
            assert_eq!(kept.get(), 1, "the hook of a child that completed outlived its end");
            Ok((holder.await?, w1_outcome, w2_value))
        });
        let (holder, w1_outcome, w2_value) = result.unwrap();
        assert_eq!((holder, w2_value), (1, 100));
        assert!(
            matches!(&w1_outcome,
                Err(Error::Task { error: TaskError::Cancelled(r), .. })
                    if *r == CancelReason::user("not needed")),
            "{w1_outcome:?}"
        );
        assert!(!ran_w1.is_set(), "a child cancelled before it started ran its body");
        assert!(ran_w2.is_set());
        assert_eq!(seen.lock().unwrap().len(), 1, "the hook of a child that completed ran");

        // The whole scope cancelled with children waiting. The slot's holder is a blocking
        // child deaf to cancellation, so no slot frees (and no waiting child is started, then
        // cancelled on another thread) while `s.cancel` runs.
        let seen: Arc<Mutex<Vec<CancelReason>>> = Arc::default();
        let ran = Arc::new(AtomicUsize::new(0));
        let (entered, free) = (Flag::default(), Flag::default());
        let result: Result<(), Error> = klaw::scope!(limit = 1, |s| {
            let (e, f) = (entered.clone(), free.clone());
            s.spawn_blocking(move || {
                e.set();
                while !f.is_set() {
                    std::thread::sleep(ms(1));
                }
            });
            until(|| entered.is_set()).await; // it holds the only slot, and runs
            for _ in 0..3 {
                let ran = ran.clone();
                let waiting = s.spawn(async move {
                    ran.fetch_add(1, SeqCst);
                });
                let log = seen.clone();
                waiting.on_cancel(move |reason| log.lock().unwrap().push(reason.clone()));
            }
            s.cancel("enough");
            let heard_in_the_cancel = seen.lock().unwrap().clone();
            free.set();
            assert_eq!(
                heard_in_the_cancel,
                vec![CancelReason::user("enough"); 3],
                "the waiting children's hooks did not run inside the scope's cancel"
            );
            pending::<()>().await;
            Ok(())
        });
        assert!(
            matches!(&result, Err(Error::Task { task: None, error: TaskError::Cancelled(r), .. })
                if *r == CancelReason::user("enough")),
            "{result:?}"
        );
        assert_eq!(ran.load(SeqCst), 0, "a waiting child of a cancelled scope started");
        assert_eq!(seen.lock().unwrap().len(), 3, "a hook ran twice");
    });
}

// ---- 2. Handlers that throw, and handlers that come back into their task ----------------------

/// `JobTest.testManyHandlers`, `testExceptionsInHandler` and `testUnregisterInHandler`: many
/// handlers on one job; every one runs exactly once, also when they throw; a handler touches its
/// own job from inside. Here the job is a scope's child, cancelled by a sibling's failure, so the
/// hooks run on the failing sibling's thread, inside the scope's `fail`, while that sibling is
/// between its end and its publish.
///
/// Checks: each of 20 hooks ran exactly once although every other one panics; a hook that,
/// inside, cancels its task again (refused), reads its reason (`SiblingFailed`) and registers a
/// further hook (which runs at once, nested, with `SiblingFailed`) neither deadlocks nor runs
/// twice; the scope's error is the sibling's failure alone (no hook panic listed, nothing lost);
/// a later cancel runs nothing again. (Kotlin rethrows the handlers' exceptions to the canceller
/// as `CompletionHandlerException`; klaw's promise is that they are contained.)
///
/// What would break it: `run_hooks` (task/core.rs) holding the hooks' lock while it runs
/// them (the nested `on_cancel` would deadlock); `run_contained` (task/core.rs) letting a
/// panic out, which would skip the remaining hooks and unwind through the failing child's
/// `before_publish`; a hook's panic reported as a failure of the scope.
#[test]
fn every_cancel_hook_runs_once_though_half_of_them_panic_and_one_reenters_its_task() {
    const HOOKS: usize = 20;

    fn counts(fired: &[AtomicUsize]) -> Vec<usize> {
        fired.iter().map(|n| n.load(SeqCst)).collect()
    }

    #[derive(Default)]
    struct Reentry {
        outer: Option<CancelReason>,
        cancelled_again: Option<bool>,
        reason_inside: Option<CancelReason>,
        nested: Option<CancelReason>,
    }

    in_task(|| async {
        let fired: Arc<Vec<AtomicUsize>> =
            Arc::new((0..HOOKS).map(|_| AtomicUsize::new(0)).collect());
        let reentry: Arc<Mutex<Reentry>> = Arc::default();
        let mut victim: Option<TaskRef> = None;
        let result: Result<(), Error> = klaw::scope!(|s| {
            let job = s.spawn(pending::<()>());
            for i in 0..HOOKS {
                let fired = fired.clone();
                job.on_cancel(move |_| {
                    fired[i].fetch_add(1, SeqCst);
                    if i % 2 == 0 {
                        panic!("cancel hook {i} throws TestException");
                    }
                });
            }
            let (me, log) = (job.task_ref(), reentry.clone());
            job.on_cancel(move |reason| {
                let again = me.cancel("again");
                let inside = me.cancel_reason();
                let nested_log = log.clone();
                me.on_cancel(move |nested| {
                    nested_log.lock().unwrap().nested = Some(nested.clone());
                });
                let mut log = log.lock().unwrap();
                log.outer = Some(reason.clone());
                log.cancelled_again = Some(again);
                log.reason_inside = inside;
            });
            victim = Some(job.task_ref());
            s.spawn(crash("TestException"));
            pending::<()>().await;
            Ok(())
        });
        let error = result.unwrap_err();
        assert!(!matches!(error, Error::Scope(_)), "a hook's panic was listed: {error:?}");
        assert_eq!(crashes(&error), ["TestException"], "{error:?}");
        assert_eq!(counts(&fired), vec![1; HOOKS], "a hook did not run exactly once");
        let victim = victim.expect("spawned");
        assert_eq!(victim.cancel_reason(), Some(CancelReason::SiblingFailed));
        assert!(!victim.cancel("again"), "a second cancel decided the outcome again");
        assert_eq!(counts(&fired), vec![1; HOOKS], "a second cancel ran the hooks again");
        let reentry = reentry.lock().unwrap();
        assert_eq!(reentry.outer, Some(CancelReason::SiblingFailed));
        assert_eq!(reentry.cancelled_again, Some(false), "a cancel from inside a hook won");
        assert_eq!(reentry.reason_inside, Some(CancelReason::SiblingFailed));
        assert_eq!(reentry.nested, Some(CancelReason::SiblingFailed), "the nested hook never ran");
    });
}

// ---- 3. Cancelled, then failing -------------------------------------------------------------

/// `CoroutinesTest.testNotCancellableChildWithExceptionCancelled`: a child that cannot be
/// interrupted (`NonCancellable`, `ATOMIC`) is cancelled with a `CancellationException`, then
/// throws `TestException`. Kotlin: awaiting it throws `TestException`, the cancellation is
/// suppressed. klaw keeps the first terminal state in the handle (`Cancelled`) and reports the
/// failure to the scope, where in the default mode it is a failure like any other.
///
/// Checks, for a child cancelled through its own handle while inside a shield that then returns
/// `Err`: the child's handle says `Cancelled` with the handle's reason; the scope fails with the
/// child's crash alone, naming the child; the sibling is cancelled with `SiblingFailed`; the body
/// awaiting the child's handle is cancelled there and never runs the code after it.
///
/// What would break it: `decide_by_output` (task/runner.rs) dropping a failure that lost to a
/// cancel instead of reporting it (`raced`); `child_raced` (scope/registry.rs) recording it
/// without cancelling the siblings; the body seeing the child's `Cancelled` because the output
/// was published before the raced failure cancelled the scope.
#[test]
fn a_child_cancelled_through_its_handle_that_fails_in_its_shield_fails_the_scope() {
    in_task(|| async {
        let (running, release, after_await) = (Flag::default(), Flag::default(), Flag::default());
        let mut refs = None;
        let result: Result<(), Error> = klaw::scope!(|s| {
            let sibling = s.spawn(pending::<()>());
            let (r, g) = (running.clone(), release.clone());
            let d = s.spawn(
                Task::fallible(async move {
                    shield(async move {
                        r.set();
                        until(|| g.is_set()).await;
                        Err::<(), _>(Crash("TestException"))
                    })
                    .await
                })
                .name("d"),
            );
            refs = Some((d.task_ref(), sibling.task_ref()));
            until(|| running.is_set()).await;
            assert!(d.cancel(CancelReason::user("TestCancellationException")));
            release.set();
            let seen = d.await; // the raced failure cancels the body here
            after_await.set();
            drop(seen);
            Ok(())
        });
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Task { task: Some(task), error: TaskError::Failed(_), .. }
                if task.name() == Some("d")),
            "the failure after the cancel is not the scope's error: {error:?}"
        );
        assert_eq!(crashes(&error), ["TestException"]);
        let (d, sibling) = refs.expect("spawned");
        assert_eq!(d.exit_reason(), ExitReason::Cancelled, "the failure overwrote the cancel");
        assert_eq!(d.cancel_reason(), Some(CancelReason::user("TestCancellationException")));
        assert_eq!(sibling.cancel_reason(), Some(CancelReason::SiblingFailed));
        assert!(!after_await.is_set(), "the body saw the child's outcome in a failed scope");
    });
}

// ---- 4. awaitAll ------------------------------------------------------------------------------

/// `AwaitTest.testAwaitAllExceptionally` and `testAwaitAllFullyCompletedExceptionally` (with
/// `testAwaitAllMultipleExceptions`' two failures): `awaitAll` throws the first failure at once,
/// with a sibling still running. In klaw the body sees failures in supervisor mode; draining a
/// child set with `?` is `awaitAll`.
///
/// Checks, first scenario (one child done, one failing after it, one that never ends): the scope
/// fails with the crash alone (listed once, not once as the child's and once as the body's), the
/// done child stays `Success`, the endless one is cancelled with `ParentCancelled` (the body's
/// error cancels every child, in supervisor mode too). Second scenario (both failures happened
/// before the wait): whichever the set hands over first, the scope lists each crash exactly once.
///
/// What would break it: `ScopeShared::took` (scope/registry.rs) keeping a stand-in in
/// supervisor mode, or `result` (scope/drive.rs) listing a claimed child failure beside the
/// body's error that carries it; a failure the body never took dropped because the body returned
/// another.
#[test]
fn awaiting_all_in_a_supervisor_scope_fails_fast_and_lists_each_failure_once() {
    in_task(|| async {
        let mut refs: Vec<TaskRef> = Vec::new();
        let result: Result<Vec<u32>, Error> = klaw::scope!(supervisor, |s| {
            let d = s.spawn(Task::fallible(async { Ok::<u32, Crash>(1) }));
            let d_done = d.task_ref();
            let d2 = s.spawn(Task::fallible(async move {
                until(|| d_done.is_finished()).await;
                Err::<u32, _>(Crash("TestException"))
            }));
            let d3 = s.spawn(Task::fallible(async {
                pending::<()>().await;
                Ok::<u32, Crash>(3)
            }));
            refs.extend([d.task_ref(), d2.task_ref(), d3.task_ref()]);
            let mut set = s.child_set();
            set.insert(d);
            set.insert(d2);
            set.insert(d3);
            let mut values = Vec::new();
            while let Some(outcome) = set.next_finished().await {
                values.push(outcome?); // awaitAll: the first failure ends the wait
            }
            Ok(values)
        });
        let error = result.unwrap_err();
        assert!(!matches!(error, Error::Scope(_)), "the failure was listed twice: {error:?}");
        assert_eq!(crashes(&error), ["TestException"]);
        let [d, d2, d3] = &refs[..] else { panic!("three children") };
        assert_eq!(d.exit_reason(), ExitReason::Success);
        assert_eq!(d2.exit_reason(), ExitReason::Error);
        assert_eq!(d3.cancel_reason(), Some(CancelReason::ParentCancelled));

        // testAwaitAllFullyCompletedExceptionally: both failed before the wait begins.
        let result: Result<(), Error> = klaw::scope!(supervisor, |s| {
            let d1 = s.spawn(crash("TestException1"));
            let d2 = s.spawn(crash("TestException2"));
            let job = s.spawn(Task::fallible(async { Ok::<(), Crash>(()) }));
            until(|| d1.is_finished() && d2.is_finished() && job.is_finished()).await;
            let mut set = s.child_set();
            set.insert(d1);
            set.insert(d2);
            set.insert(job);
            while let Some(outcome) = set.next_finished().await {
                outcome?;
            }
            Ok(())
        });
        let error = result.unwrap_err();
        let mut listed = crashes(&error);
        listed.sort_unstable();
        assert_eq!(listed, ["TestException1", "TestException2"], "{error:?}");
    });
}

// ---- 5. A child failing after the body completed --------------------------------------------

/// `CoroutinesTest.testCancelParentOnChildException` and `CompletableDeferredTest.
/// testCompleteAndAwaitParentWaitChildren`: the parent completes its own work with a value while
/// a child still runs; the child then fails. Kotlin's `coroutineScope` throws the child's
/// exception, not the value. (Kotlin's `supervisorScope` would return the value and hand the
/// exception to the handler; klaw's supervisor returns every failure instead.)
///
/// Checks, in both modes, for a body that returned `Ok(value)` before a child failed: the scope
/// returns the child's crash alone; the body's value is dropped exactly once, by the time the
/// scope returns; the failed child ended `Error`. Default mode: a sibling still running is
/// cancelled with `SiblingFailed`. Supervisor mode: the sibling runs to its end.
///
/// What would break it: `poll_body` (scope/drive.rs) keeping the body's value as the result
/// because the body completed before the failure; the value leaked (never dropped) or dropped
/// twice; a failure after the body's end not cancelling the siblings (the region's cancel must
/// still reach them with the body gone).
#[test]
fn a_child_failing_after_the_body_returned_its_value_fails_the_scope() {
    in_task(|| async {
        for supervisor in [false, true] {
            let drops = DropCount::default();
            let body_gone = Flag::default();
            let refs: Arc<Mutex<Option<(TaskRef, TaskRef)>>> = Arc::default();
            let (value, gone, slot) = (drops.value(), body_gone.clone(), refs.clone());
            let result = scope_with(options(supervisor), |s| {
                Box::pin(async move {
                    let _gone = SetOnDrop(gone.clone()); // set as the body returns
                    let late = s.spawn(Task::fallible(async move {
                        until(|| gone.is_set()).await;
                        klaw::time::sleep(ms(10)).await;
                        Err::<(), _>(Crash("TestException"))
                    }));
                    let watched = late.task_ref();
                    let sibling = s.spawn(async move {
                        until(|| watched.is_finished()).await;
                        klaw::time::sleep(ms(5)).await;
                    });
                    *slot.lock().unwrap() = Some((late.task_ref(), sibling.task_ref()));
                    Ok(value)
                })
            })
            .await;
            let Err(error) = result else {
                panic!("supervisor {supervisor}: the body's value won over a later failure")
            };
            assert!(body_gone.is_set());
            assert!(!matches!(error, Error::Scope(_)), "supervisor {supervisor}: {error:?}");
            assert_eq!(crashes(&error), ["TestException"], "supervisor {supervisor}");
            assert_eq!(drops.get(), 1, "supervisor {supervisor}: the value was not dropped once");
            let (late, sibling) = refs.lock().unwrap().clone().expect("spawned");
            assert_eq!(late.exit_reason(), ExitReason::Error);
            if supervisor {
                assert_eq!(sibling.exit_reason(), ExitReason::Success, "a supervisor cancelled");
            } else {
                assert_eq!(sibling.cancel_reason(), Some(CancelReason::SiblingFailed));
            }
        }
    });
}

// ---- 6. Parent cancellation reaching children and grandchildren ------------------------------

/// `JobTest.testCancelledParent` and `ParentCancellationTest` (the parent's cancellation is what
/// its children see): a task running a scope is cancelled from outside with a reason of its own.
/// The scope hears it at once (`s.is_cancelled()`), and its body, between two awaits, spawns one
/// more child. Every child of that scope is cancelled because its parent was: the one spawned
/// before and the one spawned after the scope heard.
///
/// Checks: the task's handle gives the outside reason; neither child's body ran after the
/// cancel (the late one never ran); both children ended `Cancelled` with `ParentCancelled`, the
/// reason the book's table gives for "the enclosing scope was cancelled, failed, or dropped",
/// and the one the early child gets when the task drops the scope.
///
/// What would break it: `ScopeShared::heard_cancel` (used by `register` and `enlist`) cancelling
/// a child spawned after the scope heard with the enclosing frame's own reason (`User("stop")`
/// here, `Deadline` under an enclosing deadline), as it did, while `Drive::drop` cancels the
/// children listed before with `ParentCancelled`: two siblings, cancelled by one event, reported
/// two reasons.
#[test]
fn every_child_of_a_scope_whose_task_was_cancelled_gets_parent_cancelled() {
    in_task(|| async {
        let children: Arc<Mutex<Vec<(&'static str, TaskRef)>>> = Arc::default();
        let (asked, late_ran) = (Flag::default(), Flag::default());
        let (kids, asked2, ran) = (children.clone(), asked.clone(), late_ran.clone());
        let task = klaw::Handle::current().expect("in a task").spawn(async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                let early = s.spawn(pending::<()>());
                kids.lock().unwrap().push(("early", early.task_ref()));
                asked2.set();
                // No await: the task cannot be dropped meanwhile, as code between two awaits.
                while !s.is_cancelled() {
                    std::hint::spin_loop();
                }
                let late = s.spawn(async move { ran.set() });
                kids.lock().unwrap().push(("late", late.task_ref()));
                Ok(())
            });
        });
        until(|| asked.is_set()).await;
        assert!(task.cancel("stop"));
        assert_eq!(task.await, Err(TaskError::Cancelled(CancelReason::user("stop"))));
        assert!(!late_ran.is_set(), "a child spawned into a cancelled scope ran");
        let children = children.lock().unwrap().clone();
        assert_eq!(children.len(), 2);
        for (name, child) in &children {
            assert_eq!(child.exit_reason(), ExitReason::Cancelled, "{name}");
            assert_eq!(child.cancel_reason(), Some(CancelReason::ParentCancelled), "{name}");
        }
    });
}

/// `CoroutinesTest.testWaitNestedChild`, `JobTest.testCancelAndJoinParentWaitChildren` and
/// `ParentCancellationTest` one level down: a child is cancelled through its handle while the
/// scope it runs has a grandchild of every kind: parallel, blocking (running), waiting for a slot
/// of the inner scope's `limit` (Kotlin's lazy child), and local.
///
/// Checks: the child's handle gives the handle's reason, and resolves only after every started
/// grandchild's cleanup ran; every grandchild ended `Cancelled` with `ParentCancelled`; the
/// waiting grandchild never ran; the outer scope is not cancelled (a child cancelled through its
/// handle is no failure).
///
/// What would break it: `Drive::drop` (scope/drive.rs) not closing the inner limit
/// (`Limit::close`), so the waiting grandchild starts when the parallel one ends; a grandchild of
/// one kind (blocking, local) missed by `cancel_all`'s victims or cancelled with the child's own
/// reason; the child's handle resolving before a blocking grandchild has returned.
#[test]
fn cancelling_a_child_reaches_every_kind_of_grandchild_before_its_handle_resolves() {
    in_task(|| async {
        let record = Arc::new(Mutex::new(Vec::new()));
        let grandchildren: Arc<Mutex<Vec<(&'static str, TaskRef)>>> = Arc::default();
        let (all_running, waiting_ran) = (Flag::default(), Flag::default());
        let (rec, kids, running, ran) =
            (record.clone(), grandchildren.clone(), all_running.clone(), waiting_ran.clone());
        let result = klaw::scope!(|s| {
            let child = s.spawn(async move {
                let _: Result<(), Error> = scope_with(ScopeOptions::new().limit(2), |inner| {
                    Box::pin(async move {
                        let cleanup = Record(rec.clone(), "parallel");
                        let parallel = inner.spawn(async move {
                            let _cleanup = cleanup;
                            pending::<()>().await;
                        });
                        let cleanup = Record(rec.clone(), "blocking");
                        let blocking = inner.spawn_blocking(move || {
                            let _cleanup = cleanup;
                            block_until_cancelled(secs(20));
                        });
                        let waiting = inner.spawn(async move { ran.set() }); // no slot left
                        let cleanup = Record(rec.clone(), "local");
                        let local = inner.spawn_local(async move {
                            let _cleanup = cleanup;
                            pending::<()>().await;
                        });
                        kids.lock().unwrap().extend([
                            ("parallel", parallel.task_ref()),
                            ("blocking", blocking.task_ref()),
                            ("waiting", waiting.task_ref()),
                            ("local", local.task_ref()),
                        ]);
                        until(|| parallel.has_started() && blocking.has_started()).await;
                        running.set();
                        pending::<()>().await;
                        Ok::<(), klaw::task::BoxError>(())
                    })
                })
                .await;
            });
            until(|| all_running.is_set()).await;
            assert!(child.cancel("stop"));
            let outcome = child.await;
            let mut cleaned = record.lock().unwrap().clone();
            cleaned.sort_unstable();
            assert_eq!(
                cleaned,
                ["blocking", "local", "parallel"],
                "the child's handle resolved before its grandchildren's cleanup"
            );
            assert!(!s.is_cancelled(), "a child cancelled through its handle cancelled its scope");
            Ok(outcome)
        });
        let outcome = result.expect("the outer scope is not failed by a cancelled child");
        assert!(
            matches!(&outcome, Err(Error::Task { error: TaskError::Cancelled(r), .. })
                if *r == CancelReason::user("stop")),
            "{outcome:?}"
        );
        assert!(!waiting_ran.is_set(), "the waiting grandchild started after the cancel");
        let grandchildren = grandchildren.lock().unwrap().clone();
        assert_eq!(grandchildren.len(), 4);
        for (name, grandchild) in &grandchildren {
            assert!(grandchild.is_finished(), "{name} had not ended");
            assert_eq!(grandchild.exit_reason(), ExitReason::Cancelled, "{name}");
            assert_eq!(grandchild.cancel_reason(), Some(CancelReason::ParentCancelled), "{name}");
        }
    });
}

// ---- 7. First terminal state wins, seen from a scope -----------------------------------------

/// `CoroutinesTest.testCancelAndJoinChildCrash` (`cancelAndJoin` of a child that has already
/// crashed: the crash stands) and `JobTest.testState` / `AsyncLazyTest.testSimple` (a completed
/// deferred keeps its value): a cancel that comes after a child's end.
///
/// Checks, supervisor scope: a cancel of a child that already failed, and of one that already
/// completed, returns false; the failed one stays `Error` with no cancel reason; its failure,
/// never awaited and its handle dropped, is still the scope's error, by the child's name; the
/// completed one still gives its value. Default scope: `s.cancel` after a child completed leaves
/// it `Success`, with no cancel reason; in a shield the body still gets its value; the scope
/// reports its own cancellation, not the body's late `Ok`.
///
/// What would break it: `Header::cancel` (task/core.rs) deciding over a published outcome; a
/// refused cancel marking the child's failure as taken, so `take_failure` finds nothing and the
/// scope returns the body's value; `cancel_all`'s victims (finished children not yet swept)
/// rewritten as cancelled.
#[test]
fn a_cancel_after_a_childs_end_changes_nothing_and_its_failure_stands() {
    in_task(|| async {
        let result: Result<u32, Error> = klaw::scope!(supervisor, |s| {
            let failed = s.spawn(crash("TestException").name("failed"));
            let done = s.spawn(async { 42u32 });
            until(|| failed.is_finished() && done.is_finished()).await;
            assert!(!failed.cancel("too late"), "a cancel overwrote a failure");
            assert!(!done.cancel("too late"), "a cancel overwrote a value");
            assert_eq!(failed.exit_reason(), ExitReason::Error);
            assert_eq!(failed.cancel_reason(), None);
            drop(failed); // never awaited: the scope still owns its failure
            let value = done.await?;
            assert_eq!(value, 42);
            Ok(value)
        });
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Task { task: Some(task), error: TaskError::Failed(_), .. }
                if task.name() == Some("failed")),
            "{error:?}"
        );
        assert_eq!(crashes(&error), ["TestException"]);

        let mut done_ref = None;
        let result: Result<u32, Error> = klaw::scope!(|s| {
            let done = s.spawn(async { 42u32 });
            until(|| done.is_finished()).await;
            done_ref = Some(done.task_ref());
            s.cancel("late");
            assert!(!done.cancel("later"));
            let value = shield(done).await?;
            assert_eq!(value, 42, "the scope's cancel took a finished child's value");
            Ok(value)
        });
        assert!(
            matches!(&result, Err(Error::Task { task: None, error: TaskError::Cancelled(r), .. })
                if *r == CancelReason::user("late")),
            "{result:?}"
        );
        let done = done_ref.expect("spawned");
        assert_eq!(done.exit_reason(), ExitReason::Success);
        assert_eq!(done.cancel_reason(), None);
    });
}
