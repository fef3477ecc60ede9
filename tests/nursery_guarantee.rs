//! The nursery guarantee when cancellation comes from outside.
//!
//! - A task, cancel region or scope *ends* (its handle resolves, the region returns, the scope
//!   returns) only after every descendant it started, transitively, has ended: its future
//!   completed or was dropped. That holds whatever cancelled it: a handle's `cancel`, an
//!   enclosing region, a deadline, a dropped future.
//! - Nothing that failed is lost: a failure that raced a sibling's cancel is still in the
//!   scope's result, and so is one in a scope the body dropped (by a region, a `select!`),
//!   even one that comes after the drop.
//! - The first terminal state wins, for regions as for tasks; nested tokens see the
//!   cancellations around them.
//! - A failed child fails its scope, whether or not the body awaits it (trio's and Kotlin's
//!   rule); siblings get `SiblingFailed` every time.

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{Alive, FetchError, Flag, failing, fetch_ids, runtime};
use klaw::{
    CancelReason, Error, Task, TaskError,
    cancel::{Region, Token},
    task::{BlockingTask, ExitReason},
};

// ---- 1. Ended is transitive ----------------------------------------------------------------

#[test]
fn a_cancelled_task_resolves_only_after_the_children_of_its_scope_have_ended() {
    let rt = runtime(2);
    let alive = Alive::default();
    let (spawned_tx, spawned) = mpsc::channel();
    let children = alive.clone();
    let task = rt.spawn(async move {
        klaw::scope!(|s| {
            for _ in 0..2 {
                // Each child takes 100 ms to end once dropped (a slow destructor).
                let guard = children.guard(Duration::from_millis(100));
                s.spawn(async move {
                    let _guard = guard;
                    pending::<()>().await;
                });
            }
            spawned_tx.send(()).unwrap();
            pending::<()>().await;
            Ok(())
        })
    });
    spawned.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(alive.count(), 2);
    task.cancel("stop");
    let result = rt.block_on(task);
    assert_eq!(result.unwrap_err(), TaskError::Cancelled(CancelReason::user("stop")));
    assert_eq!(alive.count(), 0, "the handle resolved while its scope's children were alive");
}

#[klaw::test(workers = 2, timeout = "30s")]
async fn move_on_after_returns_only_after_a_blocking_child_of_its_scope_has_ended() {
    // A deadline that passes before the pool picks the job up withdraws it: that attempt shows
    // nothing (the closure never runs), and the next gives the pool longer. The closure starts
    // after the deadline's clock did and sleeps 200 ms past the deadline's length, ignoring it,
    // as blocking code does: it surely outlives the deadline.
    let ended_first = common::until_a_deadline_finds_it_running(|timeout| async move {
        let (started, ended) = (Flag::default(), Flag::default());
        let (running, done) = (started.clone(), ended.clone());
        let outcome = klaw::cancel::move_on_after(timeout, async move {
            klaw::scope!(|s| {
                s.spawn_blocking(move || {
                    running.set();
                    std::thread::sleep(timeout + Duration::from_millis(200));
                    done.set();
                });
                Ok(())
            })
        })
        .await;
        assert!(outcome.is_none(), "the deadline passed first");
        started.is_set().then(|| ended.is_set())
    })
    .await;
    assert!(ended_first, "the region returned while the blocking child still ran");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn cancelling_an_outer_scope_waits_for_the_grandchildren() {
    let alive = Alive::default();
    let result: Result<(), Error> = klaw::scope!(|s| {
        for _ in 0..2 {
            let grandchildren = alive.clone();
            s.spawn(async move {
                let _ = klaw::scope!(|inner| {
                    for _ in 0..2 {
                        let guard = grandchildren.guard(Duration::from_millis(20));
                        inner.spawn(async move {
                            let _guard = guard;
                            pending::<()>().await;
                        });
                    }
                    pending::<()>().await;
                    Ok(())
                });
            });
        }
        while alive.count() < 4 {
            klaw::time::sleep(Duration::from_millis(1)).await;
        }
        s.cancel("stop");
        Ok(())
    });
    assert_eq!(alive.count(), 0, "the outer scope returned while grandchildren were alive");
    assert!(
        matches!(result, Err(Error::Task { error: TaskError::Cancelled(_), .. })),
        "{result:?}"
    );
}

#[test]
fn a_runtime_task_cancelled_inside_a_region_resolves_after_its_blocking_grandchild() {
    let rt = runtime(2);
    let ended = Flag::default();
    let done = ended.clone();
    let (started_tx, started) = mpsc::channel();
    let task = rt.spawn(async move {
        klaw::cancel::move_on_after(Duration::from_secs(60), async move {
            klaw::scope!(|s| {
                s.spawn_blocking(move || {
                    started_tx.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(150));
                    done.set();
                });
                Ok(())
            })
        })
        .await
    });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    task.cancel("stop");
    assert!(rt.block_on(task).is_err());
    assert!(ended.is_set(), "the task's handle resolved while a blocking grandchild ran");
}

#[test]
fn a_scope_dropped_outside_any_task_blocks_until_its_children_have_ended() {
    let rt = runtime(2);
    let alive = Alive::default();
    rt.block_on(async {
        let children = alive.clone();
        let mut scope = Box::pin(async move {
            klaw::scope!(|s| {
                let guard = children.guard(Duration::from_millis(50));
                s.spawn(async move {
                    let _guard = guard;
                    pending::<()>().await;
                });
                pending::<()>().await;
                Ok(())
            })
        });
        assert!(futures_lite::future::poll_once(&mut scope).await.is_none());
        assert_eq!(alive.count(), 1);
        // Not inside a klaw task or region: the drop itself waits, as `std::thread::scope` does.
        drop(scope);
        assert_eq!(alive.count(), 0, "the dropped scope detached its child");
    });
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_scope_dropped_by_select_inside_a_task_is_waited_for_by_the_enclosing_scope() {
    let alive = Alive::default();
    let children = alive.clone();
    let outer: Result<&str, Error> = klaw::scope!(|_s| {
        let inner = async move {
            klaw::scope!(|s| {
                let guard = children.guard(Duration::from_millis(50));
                s.spawn(async move {
                    let _guard = guard;
                    pending::<()>().await;
                });
                pending::<()>().await;
                Ok(())
            })
        };
        // `select!` drops the losing scope; its child still takes 50 ms to end.
        klaw::select! {
            inner -> result => result?,
            after(Duration::from_millis(10)) => {},
        }
        Ok("the body went on")
    });
    assert_eq!(outer.unwrap(), "the body went on");
    assert_eq!(alive.count(), 0, "the enclosing scope returned before the orphaned child ended");
}

// ---- 2. Nothing that failed is lost ---------------------------------------------------------

/// A failing child that waits until `started` is set, so its sibling is surely running.
fn failing_once(
    id: u32,
    started: Flag,
) -> Task<impl Future<Output = Result<(), FetchError>>, klaw::task::Fallible> {
    Task::fallible(async move {
        while !started.is_set() {
            klaw::time::sleep(Duration::from_millis(1)).await;
        }
        Err(FetchError(id))
    })
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_failure_that_races_a_sibling_cancel_is_in_the_scopes_result() {
    let started = Flag::default();
    let running = started.clone();
    let error = klaw::scope!(|s| {
        // Running when the sibling fails; its `Err` comes after its handle says Cancelled: it
        // waits for that, as the sibling's failure is recorded before the siblings are cancelled.
        s.spawn(BlockingTask::fallible(move || {
            running.set();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err::<(), _>(FetchError(2))
        }));
        s.spawn(failing_once(1, started));
        Ok(())
    })
    .unwrap_err();
    assert_eq!(fetch_ids(&error), [1, 2], "{error:?}");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_panic_after_a_sibling_cancel_is_in_the_scopes_result() {
    let started = Flag::default();
    let shielded = started.clone();
    let cancelled = Flag::default();
    let heard = cancelled.clone();
    let error = klaw::scope!(|s| {
        let child = s.spawn(async move {
            // The cleanup outlasts the cancel (it ends only once the child is cancelled, which
            // comes after the sibling's failure is recorded); the body panics in the poll in
            // which it ends.
            klaw::cancel::shield(async move {
                shielded.set();
                common::until(|| heard.is_set()).await;
            })
            .await;
            panic!("late panic");
        });
        child.task_ref().on_cancel(move |_| cancelled.set());
        s.spawn(failing_once(1, started));
        Ok(())
    })
    .unwrap_err();
    let Error::Scope(errors) = &error else { panic!("expected both failures, got {error:?}") };
    assert_eq!(errors.len(), 2);
    assert_eq!(fetch_ids(&errors.errors()[0]), [1]);
    assert!(
        matches!(&errors.errors()[1], Error::Task { error: TaskError::Panicked(m), .. } if m == "late panic"),
        "{error:?}"
    );
}

/// A child whose cleanup fails: cancelled while in it (it sets `entered` first), it finishes the
/// cleanup in a shield and then fails with `FetchError(id)`, after its handle says Cancelled.
fn fails_in_its_cleanup(
    id: u32,
    entered: Flag,
) -> Task<impl Future<Output = Result<(), FetchError>>, klaw::task::Fallible> {
    Task::fallible(async move {
        klaw::cancel::shield(async {
            entered.set();
            klaw::time::sleep(Duration::from_millis(20)).await;
        })
        .await;
        Err(FetchError(id))
    })
}

async fn until(flag: &Flag) {
    while !flag.is_set() {
        klaw::time::sleep(Duration::from_millis(1)).await;
    }
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_failure_in_a_scope_a_cancelled_region_dropped_is_in_the_enclosing_scopes_result() {
    let entered = Flag::default();
    let error = klaw::scope!(|_s| {
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(|inner| {
                inner.spawn(fails_in_its_cleanup(7, entered.clone()));
                until(&entered).await;
                token.cancel("give up"); // the region drops the inner scope, mid-cleanup
                pending::<()>().await;
                Ok(())
            })
        };
        assert!(region.run(inner).await.is_err(), "the region was cancelled");
        Ok(())
    })
    .unwrap_err();
    // The region handed the failure, which came after the inner scope was gone, to the scope.
    assert_eq!(fetch_ids(&error), [7], "{error:?}");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_failure_in_a_scope_a_select_dropped_fails_the_enclosing_scope() {
    let entered = Flag::default();
    let went_on = Flag::default();
    let error = klaw::scope!(|_s| {
        let inner = async {
            klaw::scope!(|inner| {
                inner.spawn(fails_in_its_cleanup(8, entered.clone()));
                pending::<()>().await;
                Ok(())
            })
        };
        // `select!` drops the losing scope once its child is in its cleanup.
        klaw::select! {
            inner -> result => result?,
            until(&entered) -> () => {},
        }
        went_on.set();
        Ok(())
    })
    .unwrap_err();
    assert!(went_on.is_set(), "the body went on after the select");
    assert_eq!(fetch_ids(&error), [8], "{error:?}");
}

// ---- 3. Nested cancel regions -----------------------------------------------------------------

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_nested_region_token_sees_the_enclosing_cancellation_and_its_reason() {
    let outer = Region::new();
    let outer_token = outer.token();
    let inner = Region::new();
    let inner_token = inner.token();
    let seen = inner_token.clone();
    let result = outer
        .run(async move {
            inner
                .run(async move {
                    assert!(!seen.is_cancelled());
                    outer_token.cancel("outer stop");
                    assert!(seen.is_cancelled(), "the inner token missed the outer cancel");
                    pending::<()>().await;
                })
                .await
        })
        .await;
    assert_eq!(result, Err(CancelReason::user("outer stop")));
    assert_eq!(inner_token.reason(), Some(CancelReason::user("outer stop")));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_region_inside_a_child_sees_its_scope_being_cancelled() {
    let (token_tx, token_rx) = klaw::channel::oneshot::channel::<Token>();
    let (seen_tx, seen) = klaw::channel::oneshot::channel::<Token>();
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.spawn(async move {
            let region = Region::new();
            token_tx.send(region.token()).unwrap();
            let _ = region.run(pending::<()>()).await;
        });
        seen_tx.send(token_rx.await.unwrap()).unwrap();
        s.cancel("scope stop");
        Ok(())
    });
    // The child's region heard it, with the reason its task was cancelled with.
    let token = seen.await.unwrap();
    assert_eq!(token.reason(), Some(CancelReason::user("scope stop")));
    assert_eq!(token.cancelled().await, CancelReason::user("scope stop"));
    assert!(
        matches!(result, Err(Error::Task { error: TaskError::Cancelled(_), .. })),
        "{result:?}"
    );
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_child_token_is_cancelled_with_its_parent_and_wakes_every_waiter() {
    let parent = Token::new();
    let child = parent.child();
    let grandchild = child.child();
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let token = grandchild.clone();
            klaw::Handle::current().unwrap().spawn(async move { token.cancelled().await })
        })
        .collect();
    klaw::time::sleep(Duration::from_millis(5)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    drop(child); // the chain holds: the grandchild still hears the parent
    parent.cancel("parent stop");
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(grandchild.reason(), Some(CancelReason::user("parent stop")));
    // Cancelling a child does not cancel its parent.
    let other = Token::new();
    other.child().cancel("child only");
    assert!(!other.is_cancelled());
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn when_two_nested_regions_are_cancelled_at_once_the_outer_one_catches_it() {
    let outer = Region::new();
    let outer_token = outer.token();
    let ran_on = Flag::default();
    let after_inner = ran_on.clone();
    let result = outer
        .run(async move {
            let inner = Region::new();
            let inner_token = inner.token();
            // The inner future completes in the same poll in which both tokens fire.
            let _ = inner
                .run(async move {
                    outer_token.cancel("outer");
                    inner_token.cancel("inner");
                    5
                })
                .await;
            after_inner.set(); // never runs: the inner region does not return
            "the outer body completed"
        })
        .await;
    assert_eq!(result, Err(CancelReason::user("outer")), "the outermost region must catch it");
    assert!(!ran_on.is_set(), "code between the two cancelled regions ran on");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_completion_after_a_regions_own_cancel_does_not_win() {
    let region = Region::new();
    let token = region.token();
    let result = region
        .run(async move {
            token.cancel("first");
            "completed after the cancel"
        })
        .await;
    assert_eq!(result, Err(CancelReason::user("first")));
}

// ---- 4. The blocking pool survives panicking destructors ----------------------------------

struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a destructor panicked");
        }
    }
}

#[test]
fn panicking_destructors_do_not_cost_the_blocking_pool_its_threads() {
    let rt = klaw::Runtime::builder().workers(1).max_blocking_threads(2).build().unwrap();
    fn within<T: Send + 'static>(
        rt: &klaw::Runtime,
        handle: klaw::TaskHandle<T>,
    ) -> Result<Result<T, TaskError>, klaw::time::Elapsed> {
        rt.block_on(klaw::cancel::fail_after(Duration::from_secs(5), handle))
    }

    // A closure cancelled while still queued: both threads are busy, then its drop panics.
    let (release_tx, release) = mpsc::channel::<()>();
    let release = Arc::new(std::sync::Mutex::new(release));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let release = release.clone();
            rt.spawn_blocking(move || {
                let _ = release.lock().unwrap().recv_timeout(Duration::from_secs(10));
            })
        })
        .collect();
    let guard = PanicOnDrop;
    let queued = rt.spawn_blocking(move || drop(guard));
    assert!(queued.cancel("cancelled while queued"));
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    for handle in busy {
        within(&rt, handle).expect("resolves").unwrap();
    }
    let queued = within(&rt, queued).expect("the handle of a cancelled queued closure resolves");
    assert!(queued.unwrap_err().is_cancelled());

    // An output discarded after a late cancel, whose drop panics.
    let (started_tx, started) = mpsc::channel();
    let late = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        PanicOnDrop
    });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    late.cancel("too late");
    assert!(within(&rt, late).expect("resolves").is_err());

    // The pool still has both threads: two closures that need each other both finish.
    let (a_tx, a_rx) = mpsc::channel::<()>();
    let (b_tx, b_rx) = mpsc::channel::<()>();
    let a = rt.spawn_blocking(move || {
        a_tx.send(()).unwrap();
        b_rx.recv_timeout(Duration::from_secs(5)).is_ok()
    });
    let b = rt.spawn_blocking(move || {
        b_tx.send(()).unwrap();
        a_rx.recv_timeout(Duration::from_secs(5)).is_ok()
    });
    assert_eq!(within(&rt, a).expect("resolves"), Ok(true), "the pool lost a thread");
    assert_eq!(within(&rt, b).expect("resolves"), Ok(true), "the pool lost a thread");
}

#[test]
fn an_output_nobody_takes_may_panic_in_its_destructor() {
    // A task's output waits in the task's memory for its handle. A value nobody took is dropped
    // by whichever of the handle's drop and the task's publish comes second (a failure stays
    // for the scope, and is dropped with that memory wherever the last reference goes): its
    // destructor's panic must stay there, neither aborting the process nor unwinding into a
    // worker or the dropping thread. Both orders: the handle goes before the task ends, and
    // after.
    let rt = klaw::Runtime::builder().workers(2).build().unwrap();
    for _ in 0..100 {
        let (ended_tx, ended) = mpsc::channel::<()>();
        let before_end = rt.spawn(async move {
            klaw::time::sleep(Duration::from_millis(1)).await;
            let _ended = ended_tx; // dropped after the output is made
            PanicOnDrop
        });
        drop(before_end);
        let _ = ended.recv_timeout(Duration::from_secs(10));
        let after_end = rt.spawn(async { PanicOnDrop });
        while !after_end.is_finished() {
            std::thread::yield_now();
        }
        drop(after_end);
    }
    // The workers are all still there: two tasks that need each other both finish.
    let (a_tx, a_rx) = klaw::channel::bounded::<()>(1);
    let (b_tx, b_rx) = klaw::channel::bounded::<()>(1);
    let a = rt.spawn(async move {
        a_tx.send(()).await.unwrap();
        b_rx.recv().await.is_ok()
    });
    let b = rt.spawn(async move {
        b_tx.send(()).await.unwrap();
        a_rx.recv().await.is_ok()
    });
    assert_eq!(rt.block_on(a), Ok(true));
    assert_eq!(rt.block_on(b), Ok(true));
}

// ---- 5. Shutdown with a stuck worker ------------------------------------------------------

#[test]
fn shutdown_cancels_every_task_that_is_not_running_even_with_a_stuck_worker() {
    let rt = runtime(2);
    let release = Arc::new(AtomicBool::new(false));
    let (stuck_tx, stuck) = mpsc::channel();
    let spinning = release.clone();
    let _stuck = rt.spawn(async move {
        stuck_tx.send(()).unwrap();
        // Never yields: a worker is stuck in this poll until the test releases it.
        while !spinning.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
    });
    stuck.recv_timeout(Duration::from_secs(10)).unwrap();
    let polled = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..1000)
        .map(|_| {
            let polled = polled.clone();
            rt.spawn(async move {
                polled.fetch_add(1, Ordering::SeqCst);
                pending::<()>().await;
            })
        })
        .collect();
    let grace = Duration::from_millis(100);
    let started = Instant::now();
    let report = rt.shutdown(grace);
    let took = started.elapsed();
    let unresolved = handles.iter().filter(|handle| !handle.is_finished()).count();
    release.store(true, Ordering::Release);
    assert_eq!(unresolved, 0, "{report}");
    assert!(handles.iter().all(|h| h.exit_reason() == ExitReason::Cancelled));
    assert_eq!((report.cancelled, report.abandoned), (1000, 1), "{report}");
    assert!(took < grace + Duration::from_secs(3), "shutdown took {took:?}");
}

// ---- 6. A failed child fails its scope, awaited or not ------------------------------------

#[klaw::test(workers = 2, timeout = "20s")]
async fn a_failure_the_body_awaits_fails_the_scope_and_siblings_get_sibling_failed() {
    for _ in 0..20 {
        let mut siblings = Vec::new();
        let result: Result<&str, Error> = klaw::scope!(|s| {
            for _ in 0..3 {
                siblings.push(s.spawn(klaw::time::sleep(Duration::from_secs(60))).task_ref());
            }
            let bad = s.spawn(failing(1, Duration::ZERO));
            match bad.await {
                Err(_) => Ok("recovered"),
                Ok(()) => Ok("impossible"),
            }
        });
        let error = result.expect_err("the body recovered from a failure that fails the scope");
        assert_eq!(fetch_ids(&error), [1]);
        for sibling in &siblings {
            assert_eq!(sibling.cancel_reason(), Some(CancelReason::SiblingFailed));
        }
    }
}
