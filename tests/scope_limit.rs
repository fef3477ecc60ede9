//! `scope!(limit = n, ..)`: at most n children run at once, the rest wait in spawn order without
//! being started, and cancellation reaches the waiting ones too.

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{FetchError, Flag, Gauge, PanicOnDrop, failing, paused, runtime, secs, within};
use klaw::{CancelReason, Error, TaskError, cancel::Region, task::ExitReason};

#[klaw::test(workers = 4, timeout = "20s")]
async fn no_more_than_the_limit_run_at_once_and_every_child_runs() {
    let gauge = Gauge::default();
    let ran = Arc::new(AtomicUsize::new(0));
    klaw::scope!(limit = 3, |s| {
        for _ in 0..60 {
            let (gauge, ran) = (gauge.clone(), ran.clone());
            s.spawn(async move {
                gauge.enter();
                klaw::time::sleep(Duration::from_millis(2)).await;
                gauge.leave();
                ran.fetch_add(1, SeqCst);
            });
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(ran.load(SeqCst), 60);
    assert_eq!(gauge.most(), 3, "the limit is reached and never passed");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn waiting_children_start_in_spawn_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    klaw::scope!(limit = 1, |s| {
        for i in 0..20 {
            let order = order.clone();
            s.spawn(async move { order.lock().unwrap().push(i) });
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn spawn_returns_a_handle_at_once_and_a_waiting_child_has_not_started() {
    let release = klaw::channel::oneshot::channel::<()>();
    let (release_tx, release_rx) = release;
    let value = klaw::scope!(limit = 1, |s| {
        let first = s.spawn(async move { release_rx.await.ok() });
        let second = s.spawn(async { 2 });
        klaw::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.has_started(), "the second waits while the first holds the slot");
        assert_eq!(second.exit_reason(), ExitReason::Pending);
        release_tx.send(()).unwrap();
        assert_eq!(first.await?, Some(()));
        Ok(second.await?)
    })
    .unwrap();
    assert_eq!(value, 2);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_waiting_child_cancelled_through_its_handle_never_starts_and_ends_at_once() {
    let started = Flag::default();
    let blocker_done = Flag::default();
    let outcome = klaw::scope!(limit = 1, |s| {
        let done = blocker_done.clone();
        let blocker = s.spawn(async move {
            klaw::time::sleep(Duration::from_secs(30)).await;
            done.set();
        });
        let flag = started.clone();
        let waiting = s.spawn(async move { flag.set() });
        assert!(waiting.cancel("not needed"));
        // Awaiting it does not wait for the blocker's slot.
        let outcome = waiting.await;
        blocker.cancel("done");
        Ok(outcome)
    })
    .unwrap();
    let Err(Error::Task { error: TaskError::Cancelled(reason), .. }) = outcome else {
        panic!("unexpected {outcome:?}")
    };
    assert_eq!(reason, CancelReason::user("not needed"));
    assert!(!started.is_set(), "a cancelled waiting child never runs its body");
    assert!(!blocker_done.is_set());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_failure_cancels_the_waiting_children_which_never_start() {
    let started = Arc::new(AtomicUsize::new(0));
    let mut waiting = Vec::new();
    let result = klaw::scope!(limit = 2, |s| {
        s.spawn(failing(1, Duration::from_millis(10)));
        s.spawn(klaw::time::sleep(Duration::from_secs(30)));
        for _ in 0..100 {
            let started = started.clone();
            waiting.push(s.spawn(async move { started.fetch_add(1, SeqCst) }).task_ref());
        }
        std::future::pending::<()>().await;
        Ok(())
    });
    let Err(Error::Task { error: TaskError::Failed(failure), .. }) = &result else {
        panic!("unexpected {result:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(1)));
    assert_eq!(started.load(SeqCst), 0, "no waiting child started after the failure");
    for child in waiting {
        assert_eq!(child.cancel_reason(), Some(CancelReason::SiblingFailed));
        assert_eq!(child.exit_reason(), ExitReason::Cancelled);
    }
}

// On a paused clock: the deadline passes only once every task waits, so the first child has been
// polled by then however slowly the 1,000 spawns go (a child cancelled before it starts never
// runs).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_deadline_ends_the_waiting_children_with_the_scope() {
    let started = Arc::new(AtomicUsize::new(0));
    let result = klaw::scope!(limit = 1, timeout = "50ms", |s| {
        for _ in 0..1_000 {
            let started = started.clone();
            s.spawn(async move {
                started.fetch_add(1, SeqCst);
                klaw::time::sleep(Duration::from_secs(30)).await;
            });
        }
        Ok(())
    });
    assert!(matches!(result, Err(Error::Elapsed(_))), "unexpected {result:?}");
    assert_eq!(started.load(SeqCst), 1, "only the child holding the slot ever ran");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_scope_cancelled_from_outside_returns_only_after_the_waiting_children_ended() {
    let ended = Arc::new(AtomicUsize::new(0));
    struct CountOnDrop(Arc<AtomicUsize>);
    impl Drop for CountOnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let outcome = klaw::cancel::move_on_after(Duration::from_millis(30), async {
        klaw::scope!(limit = 2, |s| {
            for _ in 0..50 {
                let guard = CountOnDrop(ended.clone());
                s.spawn(async move {
                    let _guard = guard;
                    klaw::time::sleep(Duration::from_secs(30)).await;
                });
            }
            Ok(())
        })
    })
    .await;
    assert!(outcome.is_none());
    // Every child's future (running or waiting) was dropped before the region returned.
    assert_eq!(ended.load(SeqCst), 50);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn in_supervisor_mode_every_child_runs_and_every_failure_is_kept() {
    let ran = Arc::new(AtomicUsize::new(0));
    let result = klaw::scope!(supervisor, limit = 2, |s| {
        for i in 0..10 {
            let ran = ran.clone();
            s.spawn(klaw::Task::fallible(async move {
                ran.fetch_add(1, SeqCst);
                if i % 3 == 0 { Err(FetchError(i)) } else { Ok(()) }
            }));
        }
        Ok(())
    });
    assert_eq!(ran.load(SeqCst), 10);
    let Err(Error::Scope(scope)) = result else { panic!("unexpected {result:?}") };
    assert_eq!(scope.errors().len(), 4, "children 0, 3, 6 and 9 failed");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn blocking_children_share_the_limit_with_async_ones() {
    let gauge = Gauge::default();
    klaw::scope!(limit = 2, |s| {
        for i in 0..12 {
            let gauge = gauge.clone();
            if i % 2 == 0 {
                s.spawn_blocking(move || {
                    gauge.enter();
                    std::thread::sleep(Duration::from_millis(3));
                    gauge.leave();
                });
            } else {
                s.spawn(async move {
                    gauge.enter();
                    klaw::time::sleep(Duration::from_millis(3)).await;
                    gauge.leave();
                });
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(gauge.most(), 2);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_slot_is_given_back_only_when_everything_the_child_started_has_ended() {
    let gauge = Gauge::default();
    klaw::scope!(limit = 1, |s| {
        for _ in 0..5 {
            let gauge = gauge.clone();
            s.spawn(async move {
                // The child's own scope is dropped by a cancelled region while its blocking
                // grandchild still runs (it cannot be interrupted): the child, and so its slot,
                // ends only after the grandchild. The region is cancelled once the grandchild
                // runs: a job cancelled while still queued is withdrawn and never runs.
                let region = Region::new();
                let token = region.token();
                let inner = async move {
                    klaw::scope!(|inner_scope| {
                        let started = Flag::default();
                        let running = started.clone();
                        inner_scope.spawn_blocking(move || {
                            gauge.enter();
                            running.set();
                            // Still running when its scope is dropped, however late the cancel
                            // comes (bounded, so a cancel that never arrives fails the test).
                            common::block_until_cancelled(Duration::from_secs(5));
                            std::thread::sleep(Duration::from_millis(10));
                            gauge.leave();
                        });
                        common::until(|| started.is_set()).await;
                        token.cancel("the grandchild runs");
                        std::future::pending::<()>().await;
                        Ok(())
                    })
                };
                let _ = region.run(inner).await;
            });
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(gauge.most(), 1);
}

#[test]
fn a_limit_of_zero_is_refused_with_a_message_that_says_why() {
    let panic = std::panic::catch_unwind(|| klaw::scope::ScopeOptions::new().limit(0)).unwrap_err();
    let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("at least 1"), "{message}");
}

#[test]
fn a_runtime_shut_down_with_children_waiting_ends_them_unstarted() {
    let rt = common::runtime(2);
    let started = Arc::new(AtomicUsize::new(0));
    let count = started.clone();
    let scope = rt.spawn(async move {
        klaw::scope!(limit = 1, |s| {
            for _ in 0..100 {
                let started = count.clone();
                s.spawn(async move {
                    started.fetch_add(1, SeqCst);
                    std::future::pending::<()>().await;
                });
            }
            Ok(())
        })
    });
    // Shuts down once the child holding the slot runs, so that exactly one has started.
    common::wait_for("the first child started", || started.load(SeqCst) >= 1);
    let report = rt.shutdown(Duration::from_millis(100));
    assert_eq!(started.load(SeqCst), 1);
    // Every child, running or waiting, ends cancelled. The scope's own task is cancelled too,
    // unless shutdown reached its children first: then its body's `Ok(())` stands once they
    // have ended (the first terminal state wins), which is a success.
    assert_eq!(report.cancelled + report.succeeded, 101, "{report:?}");
    assert!(report.cancelled >= 100, "{report:?}");
    drop(scope);
}

const MESSAGE: &str = "the unstarted child's future was dropped";

// A child that never starts has its future dropped unpolled; a panic in that destructor is a
// failure its scope reports, with or without a limit. What would break the limited cases: the
// report of a failure after the outcome was decided expecting the child in the scope's list, where
// a child that waited for a slot never is (the second panic skipped the child's end, and the scope
// waited for ever).

/// A scope without a limit, cancelled, then a child spawned into it: the child starts
/// cancelled, its future is dropped unpolled, and the panic of its destructor is in the scope's
/// result.
#[test]
fn an_unlimited_scope_reports_the_drop_panic_of_a_child_spawned_after_its_cancel() {
    let reported = within(secs(10), || {
        let rt = runtime(2);
        rt.block_on(rt.spawn(async {
            let result: Result<(), Error> = klaw::scope!(|s| {
                s.cancel("stop");
                let bomb = PanicOnDrop(MESSAGE);
                s.spawn(async move {
                    let _bomb = bomb;
                });
                Ok(())
            });
            format!("{result:?}")
        }))
    });
    let reported = reported.expect("the task ended with a value");
    assert!(reported.contains(MESSAGE), "the drop panic was lost: {reported}");
}

/// The same with `limit = 1`: the child spawned after the cancel is ended at once by
/// `Limit::admit` (the queue is closed), never listed, and its destructor panics.
#[test]
fn a_limited_scope_ends_and_reports_the_drop_panic_of_a_child_spawned_after_its_cancel() {
    let reported = within(secs(10), || {
        let rt = runtime(2);
        rt.block_on(rt.spawn(async {
            let result: Result<(), Error> = klaw::scope!(limit = 1, |s| {
                s.cancel("stop");
                let bomb = PanicOnDrop(MESSAGE);
                s.spawn(async move {
                    let _bomb = bomb;
                });
                Ok(())
            });
            format!("{result:?}")
        }))
    });
    // Not `Panicked("a child that ran is listed")`: the scope itself returned.
    let reported = reported.expect("the task around the scope ended with a value, not a panic");
    assert!(reported.contains(MESSAGE), "the drop panic was lost: {reported}");
}

/// `limit = 1` and the scope's own deadline: one child holds the slot, one waits. At the
/// deadline `Drive::poll` cancels the scope and `Limit::close` ends the waiting child unstarted;
/// its destructor panics. The scope returns `Elapsed` with that panic beside it.
#[test]
fn a_limited_scope_whose_deadline_ends_a_waiting_child_with_a_panicking_drop_still_returns() {
    let reported = within(secs(10), || {
        let rt = paused();
        rt.block_on(rt.spawn(async {
            let result: Result<(), Error> = klaw::scope!(limit = 1, timeout = "10ms", |s| {
                s.spawn(pending::<()>()); // holds the only slot
                let bomb = PanicOnDrop(MESSAGE);
                s.spawn(async move {
                    let _bomb = bomb;
                }); // waits for the slot, never starts
                pending::<()>().await;
                Ok(())
            });
            format!("{result:?}")
        }))
    });
    let reported = reported.expect("the task around the scope ended with a value, not a panic");
    assert!(reported.contains("Elapsed"), "not the scope's deadline: {reported}");
    assert!(reported.contains(MESSAGE), "the drop panic was lost: {reported}");
}
