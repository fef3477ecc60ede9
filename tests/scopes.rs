//! Nurseries as a user sees them: no child outlives its scope, the first failure cancels the
//! rest with a typed reason and is returned, nothing failing is ever lost.

mod common;

use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{FetchError, Flag, SetOnDrop, failing, runtime, until};
use futures_util::future::{Either, select};
use klaw::{CancelReason, Error, TaskError, task::ExitReason};

#[klaw::test(workers = 2, timeout = "10s")]
async fn the_first_failure_cancels_the_siblings_with_sibling_failed() {
    let mut siblings = Vec::new();
    let result: Result<(), Error> = klaw::scope!(|s| {
        let slow: Vec<_> =
            (0..3).map(|_| s.spawn(klaw::time::sleep(Duration::from_secs(60)))).collect();
        siblings.extend(slow.iter().map(|handle| handle.task_ref()));
        s.spawn(failing(7, Duration::from_millis(10)));
        for handle in slow {
            handle.await?; // a cancellation point: the body is dropped here
        }
        Ok(())
    });
    let error = result.unwrap_err();
    let Error::Task { error: TaskError::Failed(failure), .. } = &error else {
        panic!("unexpected {error:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(7)));
    assert_eq!(siblings.len(), 3);
    for sibling in siblings {
        assert_eq!(sibling.cancel_reason(), Some(CancelReason::SiblingFailed));
    }
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn in_supervisor_mode_a_failure_the_body_awaits_is_the_bodys() {
    let outcome = klaw::scope!(supervisor, |s| {
        let bad = s.spawn(failing(4, Duration::ZERO));
        match bad.await {
            Err(Error::Task { error: TaskError::Failed(failure), .. })
                if failure.downcast_ref() == Some(&FetchError(4)) =>
            {
                Ok("handled")
            }
            other => panic!("unexpected {other:?}"),
        }
    });
    assert_eq!(outcome.unwrap(), "handled");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn inside_a_shield_the_body_gets_a_failed_childs_error_and_reports_it() {
    let error = klaw::scope!(|s| {
        let bad = s.spawn(failing(5, Duration::ZERO));
        // Cleanup that must finish may look at the child: the failure is then the body's.
        let seen = klaw::cancel::shield(bad).await;
        assert!(
            matches!(&seen, Err(Error::Task { error: TaskError::Failed(f), .. }) if f.downcast_ref() == Some(&FetchError(5))),
            "{seen:?}"
        );
        seen?;
        Ok(())
    })
    .unwrap_err();
    let Error::Task { error: TaskError::Failed(failure), .. } = &error else {
        panic!("unexpected {error:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(5)));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_body_that_completes_after_its_scope_was_cancelled_reports_the_cancellation() {
    let result = klaw::scope!(|s| {
        s.cancel("enough");
        Ok("completed anyway")
    });
    assert!(
        matches!(&result, Err(Error::Task { error: TaskError::Cancelled(r), .. }) if *r == CancelReason::user("enough")),
        "{result:?}"
    );
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_failure_cancels_a_body_that_waits_forever() {
    let started = Instant::now();
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.spawn(failing(1, Duration::from_millis(5)));
        std::future::pending::<()>().await;
        Ok(())
    });
    assert!(matches!(result, Err(Error::Task { error: TaskError::Failed(_), .. })));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn supervisor_mode_cancels_nobody_and_collects_every_failure() {
    let finished = Arc::new(AtomicUsize::new(0));
    let done = finished.clone();
    let error = klaw::scope!(supervisor, |s| {
        for id in 0..5 {
            s.spawn(failing(id, Duration::from_millis(u64::from(id) * 3)));
        }
        s.spawn(async move {
            klaw::time::sleep(Duration::from_millis(40)).await;
            done.fetch_add(1, Ordering::SeqCst); // a sibling that outlives every failure
        });
        Ok(())
    })
    .unwrap_err();
    assert_eq!(finished.load(Ordering::SeqCst), 1, "supervisor mode cancelled a sibling");
    let Error::Scope(failures) = error else { panic!("expected every failure, got {error:?}") };
    assert_eq!(failures.len(), 5);
    let mut ids: Vec<u32> = failures
        .errors()
        .iter()
        .map(|error| match error {
            Error::Task { error: TaskError::Failed(failure), .. } => {
                failure.downcast_ref::<FetchError>().unwrap().0
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn later_failures_are_kept_after_the_first() {
    let error = klaw::scope!(|s| {
        let child = s.spawn(failing(1, Duration::ZERO));
        // The shield holds the body open until the child has failed (a child cancelled by the
        // body's error before it started would never run, and fail nothing).
        klaw::cancel::shield(until(|| child.is_finished())).await;
        Err::<(), _>(Error::other("the body failed too").into())
    })
    .unwrap_err();
    let Error::Scope(failures) = &error else { panic!("expected both failures, got {error:?}") };
    assert_eq!(failures.len(), 2);
    assert!(
        matches!(error.first(), Error::Task { error: TaskError::Failed(f), .. } if f.downcast_ref() == Some(&FetchError(1)))
    );
    assert_eq!(failures.errors()[1].source().unwrap().to_string(), "the body failed too");
    let report = error.to_string();
    assert!(report.starts_with("2 failures in one scope:\n  1. task #"), "{report}");
    assert!(
        report.ends_with(" failed: fetch 1 failed\n  2. an operation failed: the body failed too"),
        "{report}"
    );
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn plain_tasks_return_err_as_a_value_not_a_failure() {
    let values = klaw::scope!(|s| {
        let a = s.spawn(klaw::task::BlockingTask::new(|| Err::<(), _>(FetchError(1))));
        let b = s.spawn(klaw::Task::new(async { Err::<(), _>(FetchError(2)) }));
        Ok((a.await?, b.await?))
    })
    .unwrap();
    assert_eq!(values, (Err(FetchError(1)), Err(FetchError(2))));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_failure_the_body_awaited_is_reported_once() {
    let error = klaw::scope!(|s| {
        let child = s.spawn(failing(3, Duration::ZERO));
        child.await?;
        Ok(())
    })
    .unwrap_err();
    let Error::Task { error: TaskError::Failed(failure), .. } = &error else {
        panic!("unexpected {error:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(3)));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_body_error_cancels_the_children_with_parent_cancelled() {
    let canceller = Arc::new(std::sync::Mutex::new(None));
    let keep = canceller.clone();
    let error = klaw::scope!(|s| {
        let child = s.spawn(klaw::time::sleep(Duration::from_secs(60)));
        *keep.lock().unwrap() = Some(child.task_ref());
        Err::<(), _>(Error::other("the body gave up").into())
    })
    .unwrap_err();
    assert_eq!(error.source().unwrap().to_string(), "the body gave up");
    let child = canceller.lock().unwrap().take().unwrap();
    assert_eq!(child.exit_reason(), ExitReason::Cancelled);
    assert_eq!(child.cancel_reason(), Some(CancelReason::ParentCancelled));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_panicking_child_is_an_error_and_the_process_goes_on() {
    let error = klaw::scope!(|s| {
        s.spawn(async { panic!("boom in a child") });
        s.spawn_local(klaw::time::sleep(Duration::from_secs(60)));
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(&error, Error::Task { error: TaskError::Panicked(message), .. } if message == "boom in a child")
    );
    // The runtime is fine: a new scope works.
    assert_eq!(klaw::scope!(|s| Ok(s.spawn(async { 5 }).await?)).unwrap(), 5);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn borrowed_children_see_the_callers_data() {
    let names = ["ada".to_string(), "grace".to_string()];
    let mut lengths = vec![0; names.len()];
    let slots = std::sync::Mutex::new(&mut lengths);
    klaw::scope!(|s| {
        for (index, name) in names.iter().enumerate() {
            let slots = &slots;
            s.spawn_local(async move {
                klaw::time::sleep(Duration::from_millis(1)).await;
                slots.lock().unwrap()[index] = name.len();
            });
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(lengths, [3, 5]);
}

#[test]
fn dropping_a_scope_future_cancels_its_children_and_none_runs_afterwards() {
    let rt = runtime(2);
    let ticks = Arc::new(AtomicUsize::new(0));
    let local_ticks = AtomicUsize::new(0);
    let parallel_dropped = Flag::default();
    rt.block_on(async {
        let ticking = ticks.clone();
        let dropped = parallel_dropped.clone();
        let scope = async {
            klaw::scope!(|s| {
                s.spawn(async move {
                    let _dropped = SetOnDrop(dropped);
                    loop {
                        ticking.fetch_add(1, Ordering::SeqCst);
                        klaw::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                s.spawn_local(async {
                    loop {
                        local_ticks.fetch_add(1, Ordering::SeqCst);
                        klaw::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                std::future::pending::<()>().await;
                Ok(())
            })
        };
        // Drop the scope future once both children have run (a child cancelled before it
        // started would never run, nor build its guard).
        let both_ran =
            until(|| ticks.load(Ordering::SeqCst) > 0 && local_ticks.load(Ordering::SeqCst) > 0);
        match select(Box::pin(scope), Box::pin(both_ran)).await {
            Either::Left((ended, _)) => panic!("the scope ended on its own: {ended:?}"),
            Either::Right(((), scope)) => drop(scope),
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !parallel_dropped.is_set() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(parallel_dropped.is_set(), "the parallel child was not cancelled");
    let (parallel, local) = (ticks.load(Ordering::SeqCst), local_ticks.load(Ordering::SeqCst));
    assert!(parallel > 0 && local > 0, "both children ran before the drop");
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        parallel,
        "a parallel child ran after its scope was dropped"
    );
    assert_eq!(
        local_ticks.load(Ordering::SeqCst),
        local,
        "a local child ran after its scope was dropped"
    );
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_scope_timeout_cancels_everything_with_deadline_and_fails_with_elapsed() {
    let child = Arc::new(std::sync::Mutex::new(None));
    let keep = child.clone();
    let error = klaw::scope!(timeout = "20ms", |s| {
        let handle = s.spawn(klaw::time::sleep(Duration::from_secs(60)));
        *keep.lock().unwrap() = Some(handle.task_ref());
        std::future::pending::<()>().await;
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(error, Error::Elapsed(elapsed) if elapsed.after() == Duration::from_millis(20))
    );
    let child = child.lock().unwrap().take().unwrap();
    assert_eq!(child.cancel_reason(), Some(CancelReason::Deadline));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_deadline_option_takes_an_instant() {
    let deadline = Instant::now() + Duration::from_millis(10);
    let error = klaw::scope!(deadline = deadline, name = "bounded", |s| {
        assert_eq!(s.name(), Some("bounded"));
        klaw::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    });
    assert!(matches!(error, Err(Error::Elapsed(_))));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_child_spawned_after_the_scope_was_cancelled_never_runs() {
    let ran = Flag::default();
    let body_ran = ran.clone();
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.cancel("stop");
        let late = s.spawn(async move { body_ran.set() });
        assert_eq!(late.exit_reason(), ExitReason::Cancelled);
        assert!(matches!(
            late.await,
            Err(Error::Task { error: TaskError::Cancelled(reason), .. }) if reason == CancelReason::user("stop")
        ));
        Ok(())
    });
    assert!(matches!(
        result,
        Err(Error::Task { error: TaskError::Cancelled(CancelReason::User(_)), .. })
    ));
    assert!(!ran.is_set());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_scope_waits_for_every_child_even_detached_ones() {
    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    klaw::scope!(|s| {
        for _ in 0..50 {
            let counter = counter.clone();
            let _detached = s.spawn(async move {
                klaw::time::sleep(Duration::from_millis(5)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            });
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 50);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn nested_scopes_cancel_from_the_outside_in() {
    let inner_child = Arc::new(std::sync::Mutex::new(None));
    let keep = inner_child.clone();
    let result: Result<(), Error> = klaw::scope!(|outer| {
        outer.spawn(failing(1, Duration::from_millis(10)));
        klaw::scope!(|inner| {
            let child = inner.spawn(klaw::time::sleep(Duration::from_secs(60)));
            *keep.lock().unwrap() = Some(child.task_ref());
            std::future::pending::<()>().await;
            Ok(())
        })?;
        Ok(())
    });
    assert!(matches!(result, Err(Error::Task { error: TaskError::Failed(_), .. })));
    let child = inner_child.lock().unwrap().take().unwrap();
    assert_eq!(child.cancel_reason(), Some(CancelReason::ParentCancelled));
}
