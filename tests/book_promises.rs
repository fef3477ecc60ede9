//! The promises of the book's Scopes, Cancellation, Errors and Tasks chapters that no other test
//! pins down, each checked the way trio's, tokio's and Kotlin's own suites check theirs: races
//! in loops, and cancellation from every direction (a handle's cancel, the scope's own cancel, a
//! sibling's failure, a body's error, a deadline, a token cancelled from other threads, the
//! runtime's shutdown, a dropped future). Each test's doc comment quotes the book's sentence.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{Alive, DropCount, FetchError, Flag, XorShift, failing, foreign_until, ms, runtime};
use klaw::cancel::{Region, Token};
use klaw::scope::Ready;
use klaw::task::ExitReason;
use klaw::{CancelReason, Error, Task, TaskError};

fn spin_for(micros: u64) {
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes: "Awaiting a handle is a cancellation point."

/// Book (Scopes): "In a scope that is being cancelled, `.await` on a child's handle never
/// completes (outside a `shield`)". Here the child had already finished when the scope's own
/// cancel came: its value is ready, and still the await must not hand it over.
#[klaw::test(workers = 2, timeout = "10s")]
async fn awaiting_a_finished_childs_handle_after_the_scopes_cancel_never_completes() {
    let reached = Flag::default();
    let seen = reached.clone();
    let result: Result<(), Error> = klaw::scope!(|s| {
        let child = s.spawn(async { 1 });
        foreign_until(|| child.is_finished()).await;
        s.cancel("stop");
        let _ = child.await;
        seen.set();
        Ok(())
    });
    assert!(!reached.is_set(), "the await on a handle completed in a cancelled scope");
    assert!(
        matches!(&result, Err(Error::Task { error: TaskError::Cancelled(reason), .. }) if *reason == CancelReason::user("stop")),
        "{result:?}"
    );
}

/// Book (Scopes): "the body never sees, and cannot swallow, a failure that has already failed
/// its scope": nor a sibling's value once a failure is failing the scope. The awaited child had
/// finished well before the sibling failed.
#[klaw::test(workers = 2, timeout = "10s")]
async fn awaiting_a_finished_childs_handle_after_a_sibling_failed_never_completes() {
    let reached = Flag::default();
    let seen = reached.clone();
    let result: Result<(), Error> = klaw::scope!(|s| {
        let child = s.spawn(async { 1 });
        foreign_until(|| child.is_finished()).await;
        s.spawn(failing(3, Duration::ZERO));
        foreign_until(|| s.is_cancelled()).await;
        let _ = child.await;
        seen.set();
        Ok(())
    });
    assert!(!reached.is_set(), "the body went on past an await in a failing scope");
    assert_eq!(common::fetch_ids(&result.unwrap_err()), vec![3]);
}

/// Book (Scopes, Results as they finish): "In the default mode a failing child fails the whole
/// scope, so the body is cancelled and never sees the failure in the set". A set's
/// `next_finished` awaits handles, so it is a cancellation point too: after the scope's cancel it
/// hands over nothing, not even a child that had finished well.
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_child_set_in_a_cancelled_scope_hands_over_nothing() {
    let reached = Flag::default();
    let seen = reached.clone();
    let finished = Arc::new(AtomicUsize::new(0));
    let result: Result<(), Error> = klaw::scope!(|s| {
        let mut set = s.child_set();
        let done = finished.clone();
        set.spawn(async move {
            done.fetch_add(1, SeqCst);
        });
        foreign_until(|| finished.load(SeqCst) == 1).await;
        klaw::time::sleep(ms(5)).await; // the child's end is published
        s.cancel("stop");
        let _ = set.next_finished().await;
        seen.set();
        Ok(())
    });
    assert!(!reached.is_set(), "a child set handed an outcome over in a cancelled scope");
    assert!(result.is_err());
}

// ---------------------------------------------------------------------------------------------
// Scopes: "Siblings always get CancelReason::SiblingFailed."

/// Book (Scopes): "Siblings always get `CancelReason::SiblingFailed`", whatever kind of child
/// they are: parallel, local, blocking, background, started, or in a child set.
#[klaw::test(workers = 2, timeout = "10s")]
async fn every_kind_of_sibling_gets_sibling_failed() {
    let mut siblings = Vec::new();
    let result: Result<(), Error> = klaw::scope!(|s| {
        siblings.push(("spawn", s.spawn(std::future::pending::<()>()).task_ref()));
        siblings.push(("spawn_local", s.spawn_local(std::future::pending::<()>()).task_ref()));
        siblings.push((
            "spawn_blocking",
            s.spawn_blocking(|| {
                while !klaw::cancel::is_cancelled() {
                    std::thread::sleep(ms(1));
                }
            })
            .task_ref(),
        ));
        siblings.push((
            "spawn_background",
            s.spawn_background(std::future::pending::<()>()).task_ref(),
        ));
        let ((), started) = s
            .start(|ready: Ready<()>| async move {
                ready.ready(());
                std::future::pending::<()>().await
            })
            .await?;
        siblings.push(("start", started.task_ref()));
        let mut set = s.child_set();
        let in_set = s.spawn(std::future::pending::<()>());
        siblings.push(("child_set", in_set.task_ref()));
        set.insert(in_set);
        s.spawn(failing(9, ms(5)));
        std::future::pending::<()>().await;
        Ok(())
    });
    assert_eq!(common::fetch_ids(&result.unwrap_err()), vec![9]);
    for (kind, sibling) in siblings {
        assert_eq!(sibling.cancel_reason(), Some(CancelReason::SiblingFailed), "a {kind} sibling");
        assert_eq!(sibling.exit_reason(), ExitReason::Cancelled, "a {kind} sibling");
    }
}

/// Book (Scopes): "When the *body* returns `Err`, the children are cancelled with
/// `ParentCancelled`", the ones still waiting for a slot of the limit too.
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_body_error_ends_a_child_waiting_for_its_slot_with_parent_cancelled() {
    let ran = Flag::default();
    let mut children = Vec::new();
    let result: Result<(), Error> = klaw::scope!(limit = 1, |s| {
        children.push(s.spawn(std::future::pending::<()>()).task_ref());
        let body_ran = ran.clone();
        children.push(s.spawn(async move { body_ran.set() }).task_ref());
        klaw::time::sleep(ms(2)).await;
        Err("the body gave up")?;
        Ok(())
    });
    assert!(matches!(result, Err(Error::Body(_))), "{result:?}");
    assert!(!ran.is_set());
    for child in children {
        assert_eq!(child.cancel_reason(), Some(CancelReason::ParentCancelled));
    }
}

/// Book (Scopes): "A failed child fails its scope, whether or not the body awaits it", and "A
/// body that returns `Ok` after its scope was cancelled does not win": a child failing at once
/// races the body's `Ok`; the scope fails every time.
#[test]
fn a_failure_racing_the_bodys_ok_always_fails_the_scope() {
    common::with_deadline(|| {
        let rt = runtime(2);
        for round in 0..300u64 {
            let result: Result<(), Error> = rt.block_on(async move {
                klaw::scope!(|s| {
                    s.spawn(Task::fallible(async move {
                        spin_for(round % 7 * 10);
                        Err::<(), _>(FetchError(1))
                    }));
                    spin_for(round % 5 * 10);
                    Ok(())
                })
            });
            assert_eq!(common::fetch_ids(&result.unwrap_err()), vec![1], "round {round}");
        }
    });
}

/// Book (Scopes, Options): "`deadline = instant` the same [as `timeout`], at an absolute
/// `std::time::Instant`": a deadline already past fails the scope with `Error::Elapsed`, and a
/// child spawned before the body was stopped is cancelled with `Deadline`. (Whether the body runs
/// up to its first `.await` is left open: trio's does, Kotlin's `withTimeout(0)` does not.)
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_scope_deadline_already_past_fails_with_elapsed_and_cancels_with_deadline() {
    let mut child = None;
    let past = Instant::now() - ms(10);
    let result: Result<(), Error> = klaw::scope!(deadline = past, |s| {
        child = Some(s.spawn(klaw::time::sleep(Duration::from_secs(60))).task_ref());
        klaw::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    });
    assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
    if let Some(child) = child {
        assert_eq!(child.cancel_reason(), Some(CancelReason::Deadline));
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes: "When a scope has ended" — from the directions the book lists.

/// Book (Scopes): a task's handle resolves "only after every descendant it started has ended
/// ... however the cancellation arrived: ... the runtime's shutdown".
#[test]
fn a_task_ended_by_the_shutdown_resolves_after_its_blocking_grandchild() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let finished = Flag::default();
        let done = finished.clone();
        let started = Flag::default();
        let began = started.clone();
        let handle = rt.spawn(async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                s.spawn(async move {
                    let _: Result<(), Error> = klaw::scope!(|inner| {
                        inner.spawn_blocking(move || {
                            began.set();
                            std::thread::sleep(ms(60));
                            done.set();
                        });
                        Ok(())
                    });
                });
                std::future::pending::<()>().await;
                Ok(())
            });
        });
        common::wait_for("the blocking grandchild started", || started.is_set());
        let _report = rt.shutdown(Duration::ZERO);
        let outcome = klaw::runtime::block_on(handle);
        assert_eq!(outcome, Err(TaskError::Cancelled(CancelReason::Shutdown)));
        assert!(finished.is_set(), "the handle resolved before the blocking grandchild ended");
    });
}

/// Book (Scopes): "a dropped future" is one of the ways a cancellation arrives, and a task's
/// handle resolves only after every descendant its dropped scope started has ended: here a
/// `select!` drops a scope whose children take a while to drop.
#[test]
fn a_task_whose_select_dropped_a_scope_resolves_after_the_scopes_children() {
    common::with_deadline(|| {
        let rt = runtime(2);
        for round in 0..20 {
            let alive = Alive::default();
            let children = alive.clone();
            let handle = rt.spawn(async move {
                let scope = async {
                    klaw::scope!(|s| {
                        for _ in 0..3 {
                            let guard = children.guard(ms(5));
                            s.spawn(async move {
                                let _guard = guard;
                                std::future::pending::<()>().await
                            });
                        }
                        let guard = children.guard(ms(5));
                        s.spawn_blocking(move || {
                            let _guard = guard;
                            while !klaw::cancel::is_cancelled() {
                                std::thread::sleep(ms(1));
                            }
                        });
                        std::future::pending::<()>().await;
                        Ok(())
                    })
                };
                klaw::select! {
                    scope -> _r => unreachable!("the scope never ends on its own"),
                    after(ms(3)) => {}
                }
            });
            assert_eq!(rt.block_on(handle), Ok(()));
            assert_eq!(alive.count(), 0, "round {round}: the handle resolved before the children");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Tasks: "the first terminal state wins".

/// Book (Tasks): "Whatever happens first wins, and nothing overwrites it": a handle's cancel
/// racing the task's own timeout. `cancel()` returns true exactly when it decided the outcome.
#[test]
fn a_cancel_racing_the_tasks_own_timeout_agrees_with_the_outcome() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let handle = rt
                .spawn(Task::new(std::future::pending::<()>()).timeout(Duration::from_micros(500)));
            let canceller = handle.task_ref();
            let wait = rng.below(1_000);
            let cancel = std::thread::spawn(move || {
                spin_for(wait);
                canceller.cancel("race")
            });
            let watcher = handle.task_ref();
            let outcome = rt.block_on(handle);
            let decided = cancel.join().unwrap();
            if decided {
                assert_eq!(
                    outcome,
                    Err(TaskError::Cancelled(CancelReason::user("race"))),
                    "round {round}"
                );
                assert_eq!(watcher.exit_reason(), ExitReason::Cancelled, "round {round}");
            } else {
                assert_eq!(
                    outcome,
                    Err(TaskError::TimedOut(Duration::from_micros(500))),
                    "round {round}"
                );
                assert_eq!(watcher.exit_reason(), ExitReason::TimedOut, "round {round}");
            }
        }
    });
}

/// Book (Tasks): "a completion that comes after a cancel is discarded (the value is dropped)",
/// with the task's own timeout as the cancel: the value is given or dropped, exactly once.
#[test]
fn a_value_racing_the_tasks_timeout_is_given_or_dropped_exactly_once() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let drops = DropCount::default();
        for round in 0..300usize {
            let value = drops.value();
            let handle = rt.spawn(
                Task::new(async move {
                    klaw::time::sleep(Duration::from_micros(300)).await;
                    value
                })
                .timeout(Duration::from_micros(300)),
            );
            let watcher = handle.task_ref();
            match rt.block_on(handle) {
                Ok(value) => {
                    assert_eq!(watcher.exit_reason(), ExitReason::Success, "round {round}");
                    drop(value);
                }
                Err(error) => {
                    assert_eq!(
                        error,
                        TaskError::TimedOut(Duration::from_micros(300)),
                        "round {round}"
                    );
                    assert_eq!(watcher.exit_reason(), ExitReason::TimedOut, "round {round}");
                }
            }
            assert!(
                common::wait_until(Duration::from_secs(5), || drops.get() == round + 1),
                "round {round}: {} values dropped",
                drops.get()
            );
        }
    });
}

/// Book (Tasks): "Backends attach `on_cancel` hooks to forward a cancel ... each hook runs at
/// most once": a hook registered while another thread cancels runs exactly once, with the
/// reason that won; one registered on a task that completed never runs.
#[test]
fn an_on_cancel_hook_racing_the_cancel_runs_exactly_once_with_the_winning_reason() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for round in 0..300 {
            let handle = rt.spawn(std::future::pending::<()>());
            let canceller = handle.task_ref();
            let wait = rng.below(50);
            let cancel = std::thread::spawn(move || {
                spin_for(wait);
                canceller.cancel("stop")
            });
            let (tx, rx) = std::sync::mpsc::channel();
            handle.on_cancel(move |reason| tx.send(reason.clone()).unwrap());
            assert!(cancel.join().unwrap());
            let _ = rt.block_on(handle);
            let reasons: Vec<_> = rx.try_iter().collect();
            assert_eq!(reasons, vec![CancelReason::user("stop")], "round {round}");
        }
        let done = rt.spawn(async { 1 });
        let watcher = done.task_ref();
        assert_eq!(rt.block_on(done), Ok(1));
        let ran = Flag::default();
        let hook_ran = ran.clone();
        watcher.on_cancel(move |_| hook_ran.set());
        assert!(!watcher.cancel("too late"));
        assert!(!ran.is_set(), "a hook ran for a task that completed");
    });
}

/// Book (Tasks, Shutting down): "`Runtime::shutdown(grace)` waits up to `grace` for live tasks to
/// end, then cancels the rest (reason `Shutdown`)": the handle, its hooks and the report agree.
#[test]
fn shutdown_cancels_what_is_left_with_reason_shutdown_everywhere() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let handle = rt.spawn(std::future::pending::<()>());
        let (tx, rx) = std::sync::mpsc::channel();
        handle.on_cancel(move |reason| tx.send(reason.clone()).unwrap());
        let watcher = handle.task_ref();
        let report = rt.shutdown(ms(20));
        assert!(report.grace_expired);
        assert_eq!(report.cancelled, 1);
        assert_eq!(rx.try_recv(), Ok(CancelReason::Shutdown));
        assert_eq!(watcher.cancel_reason(), Some(CancelReason::Shutdown));
        assert_eq!(
            klaw::runtime::block_on(handle),
            Err(TaskError::Cancelled(CancelReason::Shutdown))
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Cancellation: regions and tokens.

/// Book (Cancellation): "a completion that comes after a region's own cancellation does not win:
/// the region reports the cancellation. What the body returned then is dropped".
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_regions_value_after_its_own_cancel_is_dropped_when_it_returns() {
    let drops = DropCount::default();
    let region = Region::new();
    let token = region.token();
    let value = drops.value();
    let result = region
        .run(async move {
            token.cancel("changed my mind");
            value
        })
        .await;
    assert!(
        matches!(&result, Err(reason) if *reason == CancelReason::user("changed my mind")),
        "the region's own cancel did not win"
    );
    assert_eq!(drops.get(), 1, "the body's value was not dropped when the region returned");
}

/// Book (Cancellation): a region cancelled from another thread while its body completes either
/// returns the value or reports the cancellation and drops the value: exactly once, never both.
#[test]
fn a_region_cancelled_from_another_thread_gives_or_drops_its_value_exactly_once() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let drops = DropCount::default();
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for round in 0..300usize {
            let region = Region::new();
            let token = region.token();
            let wait = rng.below(400);
            let value = drops.value();
            let cancel = std::thread::spawn(move || {
                spin_for(wait);
                token.cancel("stop")
            });
            let result = rt.block_on(rt.spawn(async move {
                region
                    .run(async move {
                        klaw::time::sleep(Duration::from_micros(100)).await;
                        value
                    })
                    .await
            }));
            cancel.join().unwrap();
            match result.unwrap() {
                Ok(value) => drop(value),
                Err(reason) => assert_eq!(reason, CancelReason::user("stop"), "round {round}"),
            }
            assert_eq!(drops.get(), round + 1, "round {round}");
        }
    });
}

/// Book (Cancellation): "`cancelled().await` gives the reason to any number of waiters", and a
/// child token is "cancelled whenever its parent is (with the parent's reason)": cancels from
/// four threads at once leave one reason, the one whose `cancel` returned true, everywhere.
#[test]
fn a_token_cancelled_from_many_threads_gives_everyone_the_one_winning_reason() {
    common::with_deadline(|| {
        let rt = runtime(2);
        for round in 0..100 {
            let token = Token::new();
            let children: Vec<Token> = (0..4).map(|_| token.child()).collect();
            let waiters: Vec<_> = (0..8)
                .map(|i| {
                    let waiting = if i % 2 == 0 { token.clone() } else { children[i / 2].clone() };
                    rt.spawn(async move { waiting.cancelled().await })
                })
                .collect();
            let barrier = Arc::new(std::sync::Barrier::new(4));
            let cancels: Vec<_> = (0..4)
                .map(|i| {
                    let (token, barrier) = (token.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        token.cancel(format!("thread {i}")).then_some(i)
                    })
                })
                .collect();
            let winners: Vec<usize> =
                cancels.into_iter().filter_map(|cancel| cancel.join().unwrap()).collect();
            assert_eq!(winners.len(), 1, "round {round}: {winners:?} each decided the cancel");
            let reason = CancelReason::user(format!("thread {}", winners[0]));
            assert_eq!(token.reason(), Some(reason.clone()), "round {round}");
            for child in &children {
                assert_eq!(child.reason(), Some(reason.clone()), "round {round}");
            }
            for waiter in common::join_all(&rt, waiters) {
                assert_eq!(waiter, reason, "round {round}");
            }
        }
    });
}

/// Book (Cancellation): "`cancel_on_drop()` cancels it when a guard goes away": the waiters of
/// the token and its children wake, with the guard's reason (`ParentCancelled`, as its rustdoc
/// says).
#[klaw::test(workers = 2, timeout = "10s")]
async fn dropping_a_cancel_on_drop_guard_wakes_every_waiter_of_the_token_and_its_children() {
    let token = Token::new();
    let child = token.child();
    let guard = token.clone().cancel_on_drop();
    let waiting = token.clone();
    let waiting_child = child.clone();
    let reasons = klaw::scope!(|s| {
        let a = s.spawn(async move { waiting.cancelled().await });
        let b = s.spawn(async move { waiting_child.cancelled().await });
        klaw::time::sleep(ms(5)).await;
        drop(guard);
        Ok((a.await?, b.await?))
    })
    .unwrap();
    assert_eq!(reasons, (CancelReason::ParentCancelled, CancelReason::ParentCancelled));
    assert!(child.is_cancelled());
}

/// Book (Cancellation, Shields): "inside it `is_cancelled()` is `false`", and outside it, in the
/// cancelled code, true again; and "what a blocking helper runs is outside the task, so no
/// cancellation around the call reaches in (`is_cancelled()` is false there)", here a
/// cancelled task's destructor calling `block_on`.
#[test]
fn is_cancelled_is_false_inside_a_shield_and_inside_a_blocking_helper_of_cancelled_code() {
    common::with_deadline(|| {
        struct Probe(std::sync::mpsc::Sender<(&'static str, bool)>);
        impl Drop for Probe {
            fn drop(&mut self) {
                let here = klaw::cancel::is_cancelled();
                let inside = klaw::runtime::block_on(async { klaw::cancel::is_cancelled() });
                let _ = self.0.send(("destructor", here));
                let _ = self.0.send(("block_on in the destructor", inside));
            }
        }
        let rt = runtime(2);
        let (tx, rx) = std::sync::mpsc::channel();
        let (in_shield, shield_entered) = std::sync::mpsc::channel();
        let go = Flag::default();
        let released = go.clone();
        let handle = rt.spawn(async move {
            let _probe = Probe(tx.clone());
            klaw::cancel::shield(async {
                in_shield.send(()).unwrap();
                while !released.is_set() {
                    klaw::time::sleep(ms(1)).await;
                }
                tx.send(("shield", klaw::cancel::is_cancelled())).unwrap();
            })
            .await;
            tx.send(("after the shield", klaw::cancel::is_cancelled())).unwrap();
            std::future::pending::<()>().await;
        });
        shield_entered.recv().unwrap();
        assert!(handle.cancel("stop"));
        go.set();
        let _ = rt.block_on(handle);
        let seen: Vec<_> = rx.try_iter().collect();
        assert!(seen.contains(&("shield", false)), "{seen:?}");
        assert!(!seen.contains(&("after the shield", false)), "{seen:?}");
        assert!(seen.contains(&("block_on in the destructor", false)), "{seen:?}");
    });
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// Book (Errors): "A body that returns a `klaw::Error` (from a nested scope, say) gets it back as
/// it was, not wrapped twice": the inner scope's body error passes through the outer one.
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_nested_scopes_error_passed_on_with_question_mark_is_not_wrapped_twice() {
    let result: Result<(), Error> = klaw::scope!(|_outer| {
        klaw::scope!(|_inner| {
            Err("the inner body failed")?;
            Ok(())
        })?;
        Ok(())
    });
    let error = result.unwrap_err();
    let Error::Body(source) = &error else { panic!("{error:?}") };
    assert_eq!(source.to_string(), "the inner body failed", "wrapped twice: {error:?}");
    let chain = format!("{:#}", anyhow::Error::from(error));
    assert_eq!(chain, "the scope's body failed: the inner body failed");

    let result: Result<(), Error> = klaw::scope!(|_outer| {
        klaw::scope!(|inner| {
            inner.spawn(failing(4, Duration::ZERO));
            Ok(())
        })?;
        Ok(())
    });
    assert_eq!(common::fetch_ids(&result.unwrap_err()), vec![4]);
}

// ---------------------------------------------------------------------------------------------
// More of Scopes: limits, local handles, background children in supervisor mode.

/// Book (Scopes, A concurrency limit): a waiting child "cancelled through its own handle ends
/// when the handle is awaited (at once, also when the await began before the cancel, in a
/// `child_set` too)": the cancel comes from another thread while the set is being awaited.
#[test]
fn a_waiting_child_cancelled_while_its_set_is_awaited_ends_at_once() {
    common::with_deadline(|| {
        let rt = runtime(2);
        for round in 0..50 {
            let started = Flag::default();
            let outcome = rt.block_on(async {
                klaw::scope!(limit = 1, |s| {
                    let blocker = s.spawn(klaw::time::sleep(Duration::from_secs(30)));
                    let flag = started.clone();
                    let waiting = s.spawn(async move { flag.set() });
                    let canceller = waiting.task_ref();
                    let mut set = s.child_set();
                    set.insert(waiting);
                    let cancel = std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_micros(200));
                        canceller.cancel("not needed")
                    });
                    let outcome =
                        klaw::cancel::fail_after(Duration::from_secs(5), set.next_finished())
                            .await
                            .expect("the cancelled waiting child ended at once");
                    assert!(cancel.join().unwrap());
                    blocker.cancel("done");
                    Ok(outcome)
                })
            });
            let outcome = outcome.unwrap().expect("one child in the set");
            assert!(
                matches!(&outcome, Err(Error::Task { error: TaskError::Cancelled(reason), .. }) if *reason == CancelReason::user("not needed")),
                "round {round}: {outcome:?}"
            );
            assert!(!started.is_set(), "round {round}: a cancelled waiting child ran");
        }
    });
}

/// Book (Scopes, A concurrency limit): "at most `n` children run at once", and a waiting child
/// cancelled through its handle "ends when the handle is awaited ..., or when its turn comes".
/// Here the cancel races the child's turn coming: the limit still holds and every child after it
/// still runs.
#[test]
fn a_waiting_childs_cancel_racing_its_turn_keeps_the_limit_and_the_queue() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        for round in 0..300 {
            let gauge = common::Gauge::default();
            let after = Arc::new(AtomicUsize::new(0));
            let (first_wait, cancel_wait) = (rng.below(300), rng.below(300));
            let outcome = rt.block_on({
                let (gauge, after) = (gauge.clone(), after.clone());
                async move {
                    klaw::scope!(limit = 1, |s| {
                        let g = gauge.clone();
                        s.spawn(async move {
                            let _inside = g.inside(Duration::ZERO);
                            spin_for(first_wait);
                        });
                        let g = gauge.clone();
                        let racing = s.spawn(async move {
                            let _inside = g.inside(Duration::ZERO);
                            klaw::time::sleep(Duration::from_micros(50)).await;
                        });
                        let canceller = racing.task_ref();
                        for _ in 0..3 {
                            let (g, after) = (gauge.clone(), after.clone());
                            s.spawn(async move {
                                let _inside = g.inside(Duration::ZERO);
                                after.fetch_add(1, SeqCst);
                                klaw::time::sleep(Duration::from_micros(50)).await;
                            });
                        }
                        let cancel = std::thread::spawn(move || {
                            spin_for(cancel_wait);
                            canceller.cancel("race")
                        });
                        let outcome = racing.await;
                        let decided = cancel.join().unwrap();
                        Ok((outcome.is_ok(), decided))
                    })
                }
            });
            let (ok, decided) = outcome.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            assert_eq!(ok, !decided, "round {round}: the cancel's answer and the outcome disagree");
            assert_eq!(
                after.load(SeqCst),
                3,
                "round {round}: the children after it did not all run"
            );
            assert_eq!(gauge.most(), 1, "round {round}: more than the limit ran at once");
        }
    });
}

/// Book (Scopes): "Dropping a handle does not stop the child (the scope still waits for it and
/// still reports its failure)", for local children too, which the scope polls itself.
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_dropped_local_handle_neither_stops_its_child_nor_loses_its_failure() {
    let finished = Flag::default();
    let done = finished.clone();
    let value = klaw::scope!(|s| {
        drop(s.spawn_local(async move {
            klaw::time::sleep(ms(10)).await;
            done.set();
        }));
        Ok(1)
    })
    .unwrap();
    assert_eq!(value, 1);
    assert!(
        finished.is_set(),
        "the scope returned before the local child whose handle was dropped"
    );

    let result: Result<(), Error> = klaw::scope!(|s| {
        drop(s.spawn_local(failing(6, ms(5))));
        Ok(())
    });
    assert_eq!(common::fetch_ids(&result.unwrap_err()), vec![6]);
}

/// Book (Scopes, Background children): "Until then it is a child like any other: its failure
/// fails the scope", and in supervisor mode "failures cancel nobody": a failing background
/// child in a supervisor scope is reported and its siblings run to their end.
///
/// On a paused clock, so that the background child surely fails (at 1 ms) while the scope is
/// still open: on a busy machine it could otherwise be first polled only after the sibling's
/// 20 ms, when the scope cancels it unrun and there is no failure to report.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_background_childs_failure_in_supervisor_mode_is_reported_and_cancels_nobody() {
    let finished = Flag::default();
    let done = finished.clone();
    let result: Result<(), Error> = klaw::scope!(supervisor, |s| {
        s.spawn_background(failing(8, ms(1)));
        s.spawn(async move {
            klaw::time::sleep(ms(20)).await;
            done.set();
        });
        klaw::time::sleep(ms(10)).await;
        assert!(!s.is_cancelled(), "a supervisor scope was cancelled by a failure");
        Ok(())
    });
    assert_eq!(common::fetch_ids(&result.unwrap_err()), vec![8]);
    assert!(finished.is_set(), "the sibling was not let run to its end");
}

// ---------------------------------------------------------------------------------------------
// Cancellation: "Code that does not .await".

/// Book (Cancellation): `checkpoint().await` "never returns once the code is cancelled": once a
/// handle's `cancel` (from another thread) has returned, the task's loop passes at most the one
/// checkpoint it was already past.
#[test]
fn a_checkpoint_never_returns_after_a_handle_cancel_returned() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let mut rng = XorShift(0x0f0f_1234_4321_f0f0);
        for round in 0..200 {
            let cancelled = Flag::default();
            let seen = cancelled.clone();
            let passed = Arc::new(AtomicUsize::new(0));
            let counted = passed.clone();
            let (running, is_running) = std::sync::mpsc::channel();
            let handle = rt.spawn(async move {
                running.send(()).unwrap();
                loop {
                    if seen.is_set() {
                        counted.fetch_add(1, SeqCst);
                    }
                    klaw::cancel::checkpoint().await;
                }
            });
            is_running.recv().unwrap();
            spin_for(rng.below(200));
            assert!(handle.cancel("stop"));
            cancelled.set();
            let _ = rt.block_on(handle);
            assert!(
                passed.load(SeqCst) <= 1,
                "round {round}: {} checkpoints returned after the cancel",
                passed.load(SeqCst)
            );
        }
    });
}

/// Book (Cancellation): the same, for a region's token cancelled from another thread around an
/// `async` CPU-bound loop (`is_cancelled()` "is true when ... an enclosing region ... is
/// cancelled", and `checkpoint` never returns then).
#[test]
fn a_checkpoint_never_returns_after_a_regions_token_was_cancelled() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let mut rng = XorShift(0x7777_1111_2222_3333);
        for round in 0..200 {
            let region = Region::new();
            let token = region.token();
            let passed = Arc::new(AtomicUsize::new(0));
            let counted = passed.clone();
            let (running, is_running) = std::sync::mpsc::channel();
            let probe = token.clone();
            let handle = rt.spawn(async move {
                region
                    .run(async move {
                        running.send(()).unwrap();
                        loop {
                            if probe.is_cancelled() {
                                counted.fetch_add(1, SeqCst);
                                assert!(
                                    klaw::cancel::is_cancelled(),
                                    "is_cancelled() missed the region's cancel"
                                );
                            }
                            klaw::cancel::checkpoint().await;
                        }
                    })
                    .await
            });
            is_running.recv().unwrap();
            spin_for(rng.below(200));
            token.cancel("stop");
            let outcome = rt.block_on(handle);
            assert_eq!(outcome, Ok(Err(CancelReason::user("stop"))), "round {round}");
            assert!(
                passed.load(SeqCst) <= 1,
                "round {round}: {} checkpoints returned after the cancel",
                passed.load(SeqCst)
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Cancellation: "Nested regions, and tokens that hear them".

/// A region waiting for ever, whose token is put in `slot` first.
async fn region_waiting(slot: Arc<std::sync::Mutex<Option<Token>>>) {
    let region = Region::new();
    *slot.lock().unwrap() = Some(region.token());
    let _ = region.run(std::future::pending::<()>()).await;
}

fn heard(slot: &Arc<std::sync::Mutex<Option<Token>>>) -> Option<CancelReason> {
    slot.lock().unwrap().as_ref().expect("the region was entered").reason()
}

/// Book (Cancellation): "A region's token hears more than its own `cancel`: the cancellation of
/// anything the region runs inside (an enclosing region, its scope, its task) reaches it at once,
/// with that cancellation's reason", from each direction the reasons table lists: a handle's
/// cancel (`User`), `Scope::cancel` (`User`), a sibling's failure (`SiblingFailed`), the body's
/// error (`ParentCancelled`), a deadline (`Deadline`), the shutdown (`Shutdown`).
///
/// The deadlines run on a paused clock: a child or task cancelled before its first poll never
/// runs, and would leave its slot empty; there, time moves only once every task waits, so each
/// is in its region before its deadline passes.
#[test]
fn a_regions_token_hears_each_enclosing_cancellation_with_its_reason() {
    type Slot = Arc<std::sync::Mutex<Option<Token>>>;
    common::with_deadline(|| {
        let rt = runtime(2);
        let paused = common::paused();
        let slot = || -> Slot { Arc::default() };

        let by_handle = slot();
        let handle = rt.spawn(region_waiting(by_handle.clone()));
        common::wait_for("the region was entered", || by_handle.lock().unwrap().is_some());
        handle.cancel("by the handle");
        let _ = rt.block_on(handle);
        assert_eq!(
            heard(&by_handle),
            Some(CancelReason::user("by the handle")),
            "a handle's cancel"
        );

        let by_timeout = slot();
        let _ = paused
            .block_on(paused.spawn(Task::new(region_waiting(by_timeout.clone())).timeout(ms(5))));
        assert_eq!(heard(&by_timeout), Some(CancelReason::Deadline), "the task's timeout");

        let (in_child, in_local) = (slot(), slot());
        let (c, l) = (in_child.clone(), in_local.clone());
        let _ = rt.block_on(async move {
            klaw::scope!(|s| {
                s.spawn(region_waiting(c.clone()));
                s.spawn_local(region_waiting(l.clone()));
                foreign_until(|| c.lock().unwrap().is_some() && l.lock().unwrap().is_some()).await;
                s.cancel("by the scope");
                Ok(())
            })
        });
        for (what, slot) in [("a parallel child", &in_child), ("a local child", &in_local)] {
            assert_eq!(
                heard(slot),
                Some(CancelReason::user("by the scope")),
                "Scope::cancel, {what}"
            );
        }

        let (sibling, local_sibling) = (slot(), slot());
        let (c, l) = (sibling.clone(), local_sibling.clone());
        let _ = rt.block_on(async move {
            klaw::scope!(|s| {
                s.spawn(region_waiting(c.clone()));
                s.spawn_local(region_waiting(l.clone()));
                foreign_until(|| c.lock().unwrap().is_some() && l.lock().unwrap().is_some()).await;
                s.spawn(failing(1, Duration::ZERO));
                std::future::pending::<()>().await;
                Ok(())
            })
        });
        for (what, slot) in [("a parallel child", &sibling), ("a local child", &local_sibling)] {
            assert_eq!(
                heard(slot),
                Some(CancelReason::SiblingFailed),
                "a sibling's failure, {what}"
            );
        }

        let by_body = slot();
        let c = by_body.clone();
        let _ = rt.block_on(async move {
            klaw::scope!(|s| {
                s.spawn(region_waiting(c.clone()));
                foreign_until(|| c.lock().unwrap().is_some()).await;
                Err("the body gave up")?;
                Ok(())
            })
        });
        assert_eq!(heard(&by_body), Some(CancelReason::ParentCancelled), "the body's error");

        let (by_deadline, by_scope_timeout) = (slot(), slot());
        let (c, t) = (by_deadline.clone(), by_scope_timeout.clone());
        paused
            .block_on(paused.spawn(async move {
                let _ = klaw::cancel::move_on_after(ms(5), region_waiting(c)).await;
                let _: Result<(), Error> = klaw::scope!(timeout = "5ms", |s| {
                    s.spawn(region_waiting(t));
                    Ok(())
                });
            }))
            .unwrap();
        assert_eq!(
            heard(&by_deadline),
            Some(CancelReason::Deadline),
            "an enclosing region's deadline"
        );
        assert_eq!(heard(&by_scope_timeout), Some(CancelReason::Deadline), "the scope's timeout");

        let by_shutdown = slot();
        let handle = rt.spawn(region_waiting(by_shutdown.clone()));
        common::wait_for("the region was entered", || by_shutdown.lock().unwrap().is_some());
        let _ = rt.shutdown(Duration::ZERO);
        let _ = klaw::runtime::block_on(handle);
        assert_eq!(heard(&by_shutdown), Some(CancelReason::Shutdown), "the shutdown");
    });
}

// ---------------------------------------------------------------------------------------------
// Tasks: when the outcome is decided.

/// Book (Tasks): "`handle.exit_reason()` is `Pending` until the task's outcome is decided, and
/// then one of ... forever", and `cancel` "returns true" when "this call decided the outcome":
/// a task whose cleanup runs in a shield is decided the moment the cancel lands, not when the
/// shield ends; its handle resolves after.
#[test]
fn a_cancelled_tasks_outcome_is_decided_when_the_cancel_lands_not_when_its_shield_ends() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let release = Flag::default();
        let released = release.clone();
        let (in_shield, shield_entered) = std::sync::mpsc::channel();
        let handle = rt.spawn(async move {
            klaw::cancel::shield(async {
                in_shield.send(()).unwrap();
                common::until(|| released.is_set()).await;
            })
            .await;
            std::future::pending::<()>().await;
        });
        shield_entered.recv().unwrap();
        assert!(handle.cancel("first"));
        assert_eq!(handle.exit_reason(), ExitReason::Cancelled, "the cancel decided the outcome");
        assert!(!handle.cancel("second"), "a second cancel decided it again");
        assert!(!handle.is_finished(), "the handle is finished while its shield runs");
        release.set();
        assert_eq!(rt.block_on(handle), Err(TaskError::Cancelled(CancelReason::user("first"))));
    });
}

/// Book (Tasks): "Whatever happens first wins, and nothing overwrites it": a task's own timeout
/// that passed while a shield in its body holds it has decided the outcome (`TimedOut`); a
/// handle's cancel after that returns false and changes nothing. On a paused clock, so the task
/// is surely polled (and in its shield) before its timeout passes: a real 5 ms could pass before
/// a busy machine's first poll, and a task timed out unstarted never runs its body.
#[test]
fn a_cancel_after_the_tasks_timeout_passed_under_a_shield_does_not_win() {
    common::with_deadline(|| {
        let rt = common::paused();
        let release = Flag::default();
        let released = release.clone();
        let handle = rt.spawn(
            Task::new(async move {
                klaw::cancel::shield(common::until(move || released.is_set())).await;
                std::future::pending::<()>().await;
            })
            .timeout(ms(5)),
        );
        common::wait_for("the timeout decided the outcome", || {
            handle.exit_reason() == ExitReason::TimedOut
        });
        assert!(!handle.is_finished(), "the shield still runs");
        assert!(!handle.cancel("late"), "a cancel after the timeout decided the outcome");
        release.set();
        assert_eq!(rt.block_on(handle), Err(TaskError::TimedOut(ms(5))));
    });
}

// ---------------------------------------------------------------------------------------------
// Scopes: start, and timeouts racing the body.

/// Book (Scopes, Waiting until a child is ready): "If the child ends before it is ready, `start`
/// reports why: ... its cancellation": awaited in a shield while a sibling's failure cancels the
/// scope, `start` gives the child's cancellation (`SiblingFailed`), and the scope returns the
/// failure.
#[klaw::test(workers = 2, timeout = "10s")]
async fn start_reports_the_childs_cancellation_when_it_is_cancelled_before_ready() {
    let mut started = None;
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.spawn(failing(5, ms(5)));
        let outcome = klaw::cancel::shield(s.start(|ready: Ready<u8>| async move {
            klaw::time::sleep(Duration::from_secs(60)).await;
            ready.ready(1);
        }))
        .await;
        started = Some(outcome.map(|(value, _)| value).map_err(|error| error.to_string()));
        Ok(())
    });
    assert_eq!(common::fetch_ids(&result.unwrap_err()), vec![5]);
    let outcome = started.expect("start returned inside its shield");
    let error = outcome.expect_err("the child was never ready");
    assert!(error.contains("was cancelled"), "{error}");
    assert!(error.contains(&CancelReason::SiblingFailed.to_string()), "{error}");
}

/// Book (Scopes): "A body that returns `Ok` after its scope was cancelled does not win": with the
/// scope's own `timeout` racing a body that returns a child's value, the scope gives the value or
/// `Elapsed`, and the value is given or dropped exactly once.
#[test]
fn a_scope_timeout_racing_the_bodys_value_gives_or_drops_it_exactly_once() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let drops = DropCount::default();
        let mut rng = XorShift(0x5555_aaaa_1234_9876);
        for round in 0..300usize {
            let value = drops.value();
            let work = rng.below(1_500);
            let result = rt.block_on(rt.spawn(async move {
                klaw::scope!(timeout = Duration::from_micros(700), |s| {
                    let child = s.spawn(async move {
                        spin_for(work);
                        klaw::cancel::checkpoint().await;
                        value
                    });
                    Ok(child.await?)
                })
            }));
            let what = match result.unwrap() {
                Ok(value) => {
                    drop(value);
                    "given"
                }
                Err(Error::Elapsed(_)) => "elapsed",
                Err(other) => panic!("round {round}: {other:?}"),
            };
            if drops.get() != round + 1 {
                let later = common::wait_until(Duration::from_secs(2), || drops.get() == round + 1);
                panic!(
                    "round {round} ({what}): the value was not dropped when the scope returned (dropped later: {later})"
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// What a finished child leaves behind.

/// Book (Scopes): "No child outlives it, so no child is ever leaked, forgotten or left running
/// after an error"; klaw's rule: "Finished tasks leave nothing behind". A child's value that the body
/// never took (it was cancelled first) is dropped by the time the scope returns, also while a
/// `task_ref()` of the child is kept, as the book's own snippets keep one to read the child's
/// cancel reason. (tokio drops a finished task's output when its `JoinHandle` is dropped, whatever
/// `AbortHandle`s remain.)
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_childs_value_the_body_never_took_is_dropped_when_the_scope_returns() {
    let drops = DropCount::default();
    let value = drops.value();
    let mut watcher = None;
    let result: Result<(), Error> = klaw::scope!(|s| {
        let child = s.spawn(async move { value });
        watcher = Some(child.task_ref());
        foreign_until(|| child.is_finished()).await;
        s.cancel("no longer needed");
        std::future::pending::<()>().await;
        Ok(())
    });
    assert!(result.is_err());
    assert_eq!(watcher.as_ref().unwrap().exit_reason(), ExitReason::Success);
    assert_eq!(drops.get(), 1, "the child's value outlived its scope");
}

/// klaw's rule: "Finished tasks leave nothing behind", and tokio's rule: dropping the handle of a
/// finished task drops its output then, even while a cancel-only handle (`task_ref()`, tokio's
/// `AbortHandle`) is kept.
#[test]
fn a_finished_tasks_output_is_dropped_with_its_handle_while_a_task_ref_lives() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let drops = DropCount::default();
        let value = drops.value();
        let handle = rt.spawn(async move { value });
        let watcher = handle.task_ref();
        common::wait_for("the task finished", || handle.is_finished());
        drop(handle);
        assert_eq!(drops.get(), 1, "the output outlived its handle");
        assert_eq!(watcher.exit_reason(), ExitReason::Success);
    });
}
