//! A failure the scope's body takes from a child's handle in a shield (the one place a
//! default-mode body sees a sibling's failure): it is listed once, in the place the child's
//! failure came, whether the body drops it, passes it on, or the scope is dropped before it
//! returns; a later failure of the same child is a failure of its own. The first cases are in
//! `ported_kotlin_scopes.rs` (`a_failure_the_body_took_...`); these are the paths around them.
//! Same harness as that file (a 30 s deadline per test).

mod common;
#[path = "common/crashes.rs"]
mod crashes;

use std::sync::Arc;

use common::{Flag, in_paused_task, in_task, ms, until};
use crashes::{Crash, Seen, converts_cancel, crash, crashes};
use klaw::cancel::shield;
use klaw::{Error, Task, TaskError};

/// A body error type of the kind `scope_with_error`'s doc shows: one that holds klaw's errors.
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("the body gave up")]
    GaveUp,
    #[error(transparent)]
    Klaw(#[from] Error),
}

/// `one` times out (decided at 10 ms), then its shielded cleanup fails (a failure of its own,
/// about `one` too). The body takes the timeout and drops it. Checks: the scope lists the
/// timeout first, then the cleanup's failure. What would break it: any listed error about `one`
/// counting as the body passing the timeout on (only the body's error does), so the timeout that
/// started everything was lost and `first()` was the cleanup.
#[test]
fn a_taken_failure_is_kept_beside_a_later_failure_of_the_same_child() {
    in_paused_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            let one = s.spawn(
                Task::fallible(async {
                    shield(klaw::time::sleep(ms(100))).await;
                    Err::<(), _>(Crash("cleanup"))
                })
                .timeout(ms(10))
                .name("one"),
            );
            let taken = shield(one).await;
            assert!(
                matches!(taken, Err(Error::Task { error: TaskError::TimedOut(_), .. })),
                "{taken:?}"
            );
            Ok(())
        });
        let error = result.unwrap_err();
        let Error::Scope(group) = &error else {
            panic!("the timeout the body took and dropped was lost: {error:?}")
        };
        let [first, second] = group.errors() else { panic!("{error:?}") };
        assert!(matches!(first, Error::Task { error: TaskError::TimedOut(_), .. }), "{error:?}");
        assert_eq!(crashes(second), ["cleanup"]);
    });
}

/// Two failures taken: `two` fails at 20 ms, `slow` (timed out at 5 ms, in a shielded cleanup
/// until 50 ms) is listed at 50 ms, and the body returns an error of its own type carrying
/// `two`'s. An error of the body's own type cannot be looked into, and counts as carrying every
/// failure it took. Checks: the scope's error is the body's alone. What would break it: removing
/// one stand-in shifting the others' places, so one was kept beside the error that carries it.
#[test]
fn two_taken_failures_under_a_typed_body_error_are_treated_alike() {
    in_paused_task(|| async {
        let result = klaw::scope!(|s| -> Result<(), AppError> {
            let slow = s.spawn(
                Task::new(async { shield(klaw::time::sleep(ms(50))).await })
                    .timeout(ms(5))
                    .name("slow"),
            );
            let two = s.spawn(
                Task::fallible(async {
                    klaw::time::sleep(ms(20)).await;
                    Err::<(), _>(Crash("two"))
                })
                .name("two"),
            );
            let (two, slow) = shield(async move { (two.await, slow.await) }).await;
            assert!(
                matches!(&slow, Err(Error::Task { error: TaskError::TimedOut(_), .. })),
                "{slow:?}"
            );
            Err(AppError::Klaw(two.unwrap_err()))
        });
        match result {
            Err(AppError::Klaw(Error::Task {
                task: Some(task),
                error: TaskError::Failed(f),
                ..
            })) => {
                assert_eq!(task.name(), Some("two"));
                assert!(f.downcast_ref::<Crash>().is_some(), "{f:?}");
            }
            other => panic!("`two` counted twice (stand-in + the body's error): {other:?}"),
        }
    });
}

/// The same body, passing the failure on in an error of its own type: run to its end, and
/// dropped by `move_on_after` while a child still cleans up (its failures then go to the
/// enclosing scope). Checks: listed once both ways. What would break it: a dropped scope deciding
/// what the body passed on after boxing its error, where an `#[error(transparent)]` wrapper hides
/// the failure, so the enclosing scope got the stand-in and the body's error.
#[test]
fn a_dropped_scope_forwards_a_passed_on_failure_once() {
    in_paused_task(|| async {
        let ended = klaw::scope!(|s| -> Result<(), AppError> {
            s.spawn(async { shield(klaw::time::sleep(ms(50))).await });
            let one = s.spawn(crash("one").name("one"));
            Err(AppError::Klaw(shield(one).await.unwrap_err()))
        });
        assert!(matches!(ended, Err(AppError::Klaw(Error::Task { .. }))), "{ended:?}");

        let outer: Result<(), Error> = klaw::scope!(|_outer| {
            let _ = klaw::cancel::move_on_after(ms(20), async {
                klaw::scope!(|s| -> Result<(), AppError> {
                    s.spawn(async { shield(klaw::time::sleep(ms(50))).await });
                    let one = s.spawn(crash("one").name("one"));
                    Err(AppError::Klaw(shield(one).await.unwrap_err()))
                })
            })
            .await;
            Ok(())
        });
        let error = outer.unwrap_err();
        assert!(!matches!(&error, Error::Scope(_)), "`one` forwarded twice: {error:?}");
    });
}

/// `one` fails first and cancels the scope; `two` fails in its cleanup after; the body passes
/// `one`'s failure on with `?`. Checks: `one` is listed first (`first()` is the failure that
/// started it). What would break it: the body's error listed where the body ended, after `two`.
#[test]
fn a_passed_on_failure_keeps_its_place_before_later_failures() {
    in_task(|| async {
        let (running, seen): (Flag, Seen) = (Flag::default(), Arc::default());
        let result: Result<(), Error> = klaw::scope!(|s| {
            let two = s.spawn(converts_cancel("two", running.clone(), seen.clone(), None));
            until(|| running.is_set()).await;
            let one = s.spawn(crash("one"));
            shield(async move {
                let one = one.await;
                let _ = two.await; // resolves after two's raced failure is listed
                one
            })
            .await?;
            Ok(())
        });
        let error = result.unwrap_err();
        assert_eq!(crashes(&error), ["one", "two"], "{error:?}");
        assert_eq!(crashes(error.first()), ["one"]);
    });
}

/// A supervisor's body owns the failures it awaits; one it passes on is still listed where it
/// came. `one` fails at 10 ms, `two` at 20 ms; the body, having waited for both to end, awaits
/// only `one` and returns its failure with `?`. Checks: `one` is listed first, `two` after it,
/// each once; a failure the body awaited and dropped (`three`) is not listed. What would break
/// it: the body's error listed where the body ended, after `two` (as it was), so `first()` named
/// the later failure.
#[test]
fn a_supervisors_passed_on_failure_keeps_its_place() {
    in_paused_task(|| async {
        let result = klaw::scope::scope_with(klaw::scope::ScopeOptions::new().supervisor(), |s| {
            Box::pin(async move {
                let fails_at = |who: &'static str, at: u64| {
                    Task::fallible(async move {
                        klaw::time::sleep(ms(at)).await;
                        Err::<(), _>(Crash(who))
                    })
                };
                let three = s.spawn(fails_at("three", 5));
                let one = s.spawn(fails_at("one", 10));
                let two = s.spawn(fails_at("two", 20));
                assert!(three.await.is_err());
                let two = two.task_ref();
                until(|| two.is_finished()).await;
                one.await?;
                Ok(())
            })
        })
        .await;
        let error = result.unwrap_err();
        assert_eq!(crashes(&error), ["one", "two"], "{error:?}");
        assert_eq!(crashes(error.first()), ["one"]);
    });
}

/// A supervisor's body awaits `handled` (fails at 10 ms) and handles it; `two` (never awaited)
/// fails at 20 ms; at 30 ms the body fails with an error of its own type that carries neither.
/// Checks: `two` is listed first. What would break it: an error of the body's own type, which
/// cannot be looked into, counted as carrying the failure the body handled, and so moved up to
/// that failure's place, before `two`.
#[test]
fn a_supervisors_unrelated_typed_error_is_not_listed_before_an_earlier_failure() {
    in_paused_task(|| async {
        let fails_at = |who: &'static str, at: u64| {
            Task::fallible(async move {
                klaw::time::sleep(ms(at)).await;
                Err::<(), _>(Crash(who))
            })
        };
        let result = klaw::scope!(supervisor, |s| -> Result<(), AppError> {
            let handled = s.spawn(fails_at("handled", 10));
            let _two = s.spawn(fails_at("two", 20));
            assert!(handled.await.is_err());
            klaw::time::sleep(ms(30)).await;
            Err(AppError::GaveUp)
        });
        let Err(AppError::Klaw(error)) = &result else { panic!("{result:?}") };
        assert!(matches!(error.first(), Error::Task { .. }), "body hoisted first: {error:?}");
        assert_eq!(crashes(error.first()), ["two"], "{error:?}");
    });
}

/// An `#[error(transparent)]` wrapper of klaw's error: its `source()` is the source of the error
/// it holds (the child's own error), so klaw's error naming the child is not in its chain.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Hidden(Error);

/// Whether `error`, or a cause of it, is `Crash(who)`.
fn causes_reach_the_crash(error: &(dyn std::error::Error + 'static), who: &str) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.downcast_ref::<Crash>().is_some_and(|crash| crash.0 == who) {
            return true;
        }
        next = error.source();
    }
    false
}

/// Checks that `error` lists the failure of the child `one` twice: first the stand-in the scope
/// keeps for a failure its body took (a `TakenFailure` under the child's name, with its words),
/// then the body's own error, whose causes reach the child's `Crash`. Gives the body's error.
fn listed_twice(error: &Error) -> &(dyn std::error::Error + Send + Sync + 'static) {
    let Error::Scope(group) = error else {
        panic!("the failure the body took is not listed twice: {error:?}")
    };
    let [first, second] = group.errors() else { panic!("{error:?}") };
    assert!(
        matches!(first, Error::Task { task: Some(task), error: TaskError::Failed(failure), .. }
            if task.name() == Some("one")
                && failure.downcast_ref::<klaw::task::TakenFailure>()
                    .is_some_and(|taken| taken.message() == "TestException1 crashed")),
        "the stand-in of the failure the body took is not listed first: {error:?}"
    );
    let Error::Body(body) = second else {
        panic!("the body's error is not listed after the stand-in: {error:?}")
    };
    assert!(causes_reach_the_crash(&**body, "TestException1"), "{error:?}");
    &**body
}

/// scopes.md: "A box that hides its cause (anyhow's ...) boxed into the default `scope!`'s error
/// lists it a second time: said twice, never lost." The body takes `one`'s failure in a shield
/// and passes it on with `?` through an `anyhow::Error`: the box anyhow makes is its own type,
/// whose `source()` is the source of klaw's error (the `Crash`), so the scope cannot see that it
/// carries `one`'s failure. Checks: the scope lists the stand-in under `one`'s name first, then
/// the body's error.
///
/// What would break it: the scope counting a body error it cannot see into as carrying every
/// failure the body took (as it counts an error of the body's own type, `body_names` with
/// `own_type_names_all`, for a `BoxError` too): the stand-in would be dropped, and the scope's
/// error would be the body's alone, which no longer names `one`. Or the body's error dropped in
/// favour of the stand-in.
#[test]
fn a_taken_failure_passed_on_in_an_anyhow_error_from_a_default_scope_is_listed_twice() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            let one = s.spawn(crash("TestException1").name("one"));
            shield(one).await.map_err(anyhow::Error::from)?;
            Ok(())
        });
        let error = result.unwrap_err();
        let body = listed_twice(&error);
        assert!(body.downcast_ref::<Error>().is_none(), "anyhow's box is not klaw's error");
    });
}

/// scopes.md: "A box that hides its cause (... an `#[error(transparent)]` wrapper's) boxed into
/// the default `scope!`'s error lists it a second time: said twice, never lost." The body takes
/// `one`'s failure in a shield and returns it in `Hidden`, a transparent wrapper, whose
/// `source()` skips klaw's error and gives the child's `Crash`. Checks: the scope lists the
/// stand-in under `one`'s name first, then the body's `Hidden`.
///
/// What would break it: as for the anyhow case, the scope counting a body error it cannot see
/// into as carrying the failure (the stand-in dropped: listed once, under no child's name), or
/// keeping only the stand-in (the body's error lost).
#[test]
fn a_taken_failure_returned_in_a_transparent_wrapper_from_a_default_scope_is_listed_twice() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            let one = s.spawn(crash("TestException1").name("one"));
            let error = shield(one).await.unwrap_err();
            Err(Hidden(error).into())
        });
        let error = result.unwrap_err();
        let body = listed_twice(&error);
        assert!(body.downcast_ref::<Hidden>().is_some(), "{error:?}");
    });
}
