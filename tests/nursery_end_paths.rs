//! The nursery guarantee along every way a future can end: completed, dropped by a region
//! (deadline, cancel scope), dropped by a sibling failure, dropped by a foreign executor, dropped
//! by the runtime's shutdown; combined with local, blocking, `start` and background children,
//! limited scopes, child sets, supervisor scopes, panicking destructors, a child that is itself a
//! scope, and cancels racing completion.
//!
//! What each test asserts is klaw's contract (the book's Scopes and Cancellation chapters): a
//! task, region or scope ends only after every descendant has ended, transitively; a limited
//! scope's slot is given back only when its child has ended, after everything it started;
//! nothing that failed is lost, and nothing is reported twice; the first terminal state of a task
//! wins.
//!
//! Every test runs its scenario on a thread of its own with a 30 s deadline (`with_deadline`,
//! `in_task`), so a hang fails instead of blocking. None asserts how long anything took: the slow
//! destructors and sleeps only widen the windows in which a broken guarantee can be seen.

mod common;

use std::future::pending;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::Duration;

use common::{
    Alive, DEADLINE, FetchError, Flag, Gauge, failing, fetch_ids, in_paused_task, in_task, ms,
    runtime, until, with_deadline, within,
};
use klaw::scope::Ready;
use klaw::task::{BlockingTask, Fallible};
use klaw::{CancelReason, Error, Runtime, Task, TaskError, TaskHandle};

/// Panics when dropped (unless already unwinding): a destructor that fails.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a destructor in the scope's body panicked");
        }
    }
}

fn is_cancelled(result: &Result<(), Error>) -> bool {
    matches!(result, Err(Error::Task { error: TaskError::Cancelled(_), .. }))
}

/// How long a slow child's drop takes (`Alive::pending_child`): a slow drop widens the window in
/// which a parent that ends first is seen.
const SLOW_DROP: Duration = Duration::from_millis(150);

/// A scope with one slow child (`Alive::pending_child`) whose body calls `spawned` and then waits forever: only a
/// cancel or a drop ends it.
async fn scope_with_a_slow_child(
    alive: &Alive,
    spawned: impl FnOnce() + Send,
) -> Result<(), Error> {
    scope_holding((), alive, spawned).await
}

/// [`scope_with_a_slow_child`] whose body holds a [`PanicOnDrop`], so the drop that ends it
/// panics inside the scope's own body.
async fn scope_whose_body_panics_on_drop(
    alive: &Alive,
    spawned: impl FnOnce() + Send,
) -> Result<(), Error> {
    scope_holding(PanicOnDrop, alive, spawned).await
}

/// One body for [`scope_with_a_slow_child`] and [`scope_whose_body_panics_on_drop`], which
/// differ only in what the body holds until it is dropped.
async fn scope_holding(
    held: impl Send,
    alive: &Alive,
    spawned: impl FnOnce() + Send,
) -> Result<(), Error> {
    klaw::scope!(|s| {
        let _held = held;
        s.spawn(alive.pending_child(SLOW_DROP));
        spawned();
        pending::<()>().await;
        Ok(())
    })
}

/// A scope with one blocking child running `work`, whose body waits forever: cancelled or
/// dropped, it ends only once `work` has returned, as a blocking child cannot be interrupted.
async fn scope_with_a_blocking_child(work: impl FnOnce() + Send + 'static) -> Result<(), Error> {
    klaw::scope!(|s| {
        s.spawn_blocking(work);
        pending::<()>().await;
        Ok(())
    })
}

/// A child inside `gauge` for an instant: the gauge's `most` goes above 1 only if it ran while
/// another child was inside.
fn enters_and_leaves(gauge: &Gauge) -> impl Future<Output = ()> + Send + 'static {
    let gauge = gauge.clone();
    async move {
        gauge.enter();
        gauge.leave();
    }
}

/// A blocking child that sets `started`, runs until it sees a cancel and then fails with
/// `FetchError(id)`: a failure its body produces after the cancel.
fn fails_once_cancelled(
    id: u32,
    started: &Flag,
) -> BlockingTask<impl FnOnce() -> Result<(), FetchError> + Send + 'static, Fallible> {
    let started = started.clone();
    BlockingTask::fallible(move || {
        started.set();
        while !klaw::cancel::is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(FetchError(id))
    })
}

/// Spawns on `rt` the task `make` builds around a sender, and gives its handle once the task has
/// sent on it (within 10 s): the test then acts on a task in the state it set up.
fn spawn_and_wait_for_its_signal<F>(
    rt: &Runtime,
    make: impl FnOnce(mpsc::Sender<()>) -> F,
) -> TaskHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (signal, signalled) = mpsc::channel();
    let task = rt.spawn(make(signal));
    signalled.recv_timeout(Duration::from_secs(10)).unwrap();
    task
}

/// Runs the future `make` builds around a fresh [`Alive`] under `Runtime::block_on`, within the
/// 30 s deadline: klaw is current there, but no klaw task or frame is.
fn outside_any_task<F: Future<Output = ()>>(make: impl FnOnce(Alive) -> F + Send + 'static) {
    with_deadline(|| {
        let rt = runtime(2);
        rt.block_on(make(Alive::default()));
    });
}

// ---- 1. Limited scopes: a slot is held until everything the child started has ended ----------

/// A child cancelled through its handle drops its own scope, whose blocking grandchild runs on;
/// the child ends (and gives its slot back) only after that grandchild: the next waiting child
/// must not run alongside it.
#[test]
fn limit_slot_is_held_until_a_cancelled_childs_blocking_grandchild_has_ended() {
    in_task(|| async move {
        let gauge = Gauge::default();
        let started = Flag::default();
        let (grandchild_gauge, grandchild_started) = (gauge.clone(), started.clone());
        klaw::scope!(limit = 1, |s| {
            let first = s.spawn(async move {
                let _ = scope_with_a_blocking_child(move || {
                    grandchild_gauge.enter();
                    grandchild_started.set();
                    std::thread::sleep(Duration::from_millis(150));
                    grandchild_gauge.leave();
                })
                .await;
            });
            s.spawn(enters_and_leaves(&gauge));
            until(|| started.is_set()).await;
            first.cancel("stop");
            Ok(())
        })
        .unwrap();
        assert_eq!(
            gauge.most(),
            1,
            "the next child ran while the cancelled child's grandchild ran"
        );
    });
}

/// The same through the child's own timeout (a supervisor scope, so the timeout cancels nobody
/// else), with an async grandchild whose drop takes a while.
#[test]
fn limit_slot_is_held_until_a_timed_out_childs_grandchild_is_dropped() {
    in_task(|| async move {
        let gauge = Gauge::default();
        let grandchild_gauge = gauge.clone();
        let result = klaw::scope!(supervisor, limit = 1, |s| {
            s.spawn(
                Task::new(async move {
                    let _ = klaw::scope!(|inner| {
                        inner.spawn(async move {
                            let _inside = grandchild_gauge.inside(Duration::from_millis(150));
                            pending::<()>().await;
                        });
                        pending::<()>().await;
                        Ok(())
                    });
                })
                .timeout(Duration::from_millis(30)),
            );
            s.spawn(enters_and_leaves(&gauge));
            Ok(())
        });
        assert!(
            matches!(result, Err(Error::Task { error: TaskError::TimedOut(_), .. })),
            "{result:?}"
        );
        assert_eq!(
            gauge.most(),
            1,
            "the next child ran while the timed-out child's grandchild ran"
        );
    });
}

/// A child set under a limit, in a task cancelled from outside: every child, running or
/// waiting, has ended when the task's handle resolves, and no waiting child ever started.
#[test]
fn a_limited_child_set_in_a_cancelled_task_ends_every_child_before_the_handle_resolves() {
    with_deadline(|| {
        let rt = runtime(2);
        let alive = Alive::default();
        let started = Arc::new(AtomicUsize::new(0));
        let (children, count) = (alive.clone(), started.clone());
        let task = spawn_and_wait_for_its_signal(&rt, |ready| async move {
            klaw::scope!(limit = 2, |s| {
                let mut set = s.child_set();
                for _ in 0..10 {
                    let guard = children.guard(Duration::from_millis(30));
                    let started = count.clone();
                    set.spawn(async move {
                        started.fetch_add(1, SeqCst);
                        let _guard = guard;
                        pending::<()>().await;
                    });
                }
                until(|| count.load(SeqCst) == 2).await;
                ready.send(()).unwrap();
                let _ = set.next_finished().await;
                Ok(())
            })
        });
        task.cancel("stop");
        let result = rt.block_on(task);
        assert_eq!(result.unwrap_err(), TaskError::Cancelled(CancelReason::user("stop")));
        assert_eq!(alive.count(), 0, "the handle resolved while children of the set were alive");
        assert_eq!(started.load(SeqCst), 2, "a waiting child started");
    });
}

/// A waiting child cancelled through its handle while the running one ends and frees the slot:
/// the first terminal state wins, every time (a cancel that decided means `Cancelled`, one
/// that did not means the value).
#[test]
fn a_cancel_racing_a_waiting_childs_start_is_decided_once() {
    with_deadline(|| {
        let rt = runtime(2);
        for round in 0..200u32 {
            rt.block_on(async {
                klaw::scope!(limit = 1, |s| {
                    s.spawn(async {});
                    let second = s.spawn(async { 5u32 });
                    let canceller = second.task_ref();
                    let racer = std::thread::spawn(move || {
                        for _ in 0..(round % 20) * 50 {
                            std::hint::spin_loop();
                        }
                        canceller.cancel("race")
                    });
                    let result = second.await;
                    let decided = racer.join().unwrap();
                    match result {
                        Ok(5) => assert!(!decided, "round {round}: a cancel that decided lost"),
                        Err(Error::Task { error: TaskError::Cancelled(_), .. }) => {
                            assert!(decided, "round {round}: cancelled, though no cancel decided");
                        }
                        other => panic!("round {round}: {other:?}"),
                    }
                    Ok(())
                })
                .unwrap();
            });
        }
    });
}

// ---- 2. Panicking destructors: a drop that unwinds still hands the children over ------------

/// A task is cancelled; its scope's body holds a value whose destructor panics. The task's handle
/// resolves only after the scope's child has ended.
#[test]
fn a_cancelled_task_whose_scope_body_panics_on_drop_resolves_after_the_children() {
    with_deadline(|| {
        let rt = runtime(2);
        let alive = Alive::default();
        let children = alive.clone();
        let task = spawn_and_wait_for_its_signal(&rt, |spawned| async move {
            scope_whose_body_panics_on_drop(&children, || spawned.send(()).unwrap()).await
        });
        task.cancel("stop");
        let result = rt.block_on(task);
        assert!(result.is_err(), "{result:?}");
        assert_eq!(alive.count(), 0, "the handle resolved while the scope's child was alive");
    });
}

/// A scope future whose body panics on drop, dropped outside any task: the drop still blocks
/// until the children have ended, as `std::thread::scope` does.
#[test]
fn a_scope_whose_body_panics_on_drop_dropped_outside_any_task_blocks_until_its_children_end() {
    outside_any_task(|alive| async move {
        let mut scope = Box::pin(scope_whose_body_panics_on_drop(&alive, || {}));
        assert!(futures_lite::future::poll_once(&mut scope).await.is_none());
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(scope)));
        assert!(dropped.is_err(), "the destructor's panic comes out of the drop");
        assert_eq!(alive.count(), 0, "the dropped scope detached its child");
    });
}

/// A region's deadline drops a scope whose body panics on drop, inside a task: the panic makes
/// the task `Panicked`, and its handle still resolves only after the scope's child has ended.
#[test]
fn a_region_dropping_a_scope_whose_body_panics_on_drop_still_outlives_its_children() {
    with_deadline(|| {
        let rt = runtime(2);
        let alive = Alive::default();
        let children = alive.clone();
        let task = rt.spawn(async move {
            let scope = scope_whose_body_panics_on_drop(&children, || {});
            let _ = klaw::cancel::move_on_after(Duration::from_millis(10), scope).await;
        });
        let result = rt.block_on(task);
        assert!(matches!(result, Err(TaskError::Panicked(_))), "{result:?}");
        assert_eq!(alive.count(), 0, "the handle resolved while the scope's child was alive");
    });
}

/// A local child whose destructor panics, dropped with its scope by a region: the panic stays
/// in the child, and the region still waits for the scope's parallel child.
#[test]
fn a_local_child_panicking_on_drop_does_not_cut_the_regions_wait_short() {
    in_task(|| async move {
        let alive = Alive::default();
        let children = alive.clone();
        let outcome = klaw::cancel::move_on_after(Duration::from_millis(10), async move {
            klaw::scope!(|s| {
                s.spawn_local(async {
                    let _bomb = PanicOnDrop;
                    pending::<()>().await;
                });
                s.spawn(children.pending_child(SLOW_DROP));
                pending::<()>().await;
                Ok(())
            })
        })
        .await;
        assert!(outcome.is_none());
        assert_eq!(alive.count(), 0, "the region returned while the scope's child was alive");
    });
}

// ---- 3. Children that are scopes, local, started, background -------------------------------

/// A local child that is itself a scope, cancelled through its handle: the handle resolves only
/// after the grandchild it spawned in parallel has ended.
#[test]
fn a_local_child_that_is_a_scope_resolves_after_its_grandchildren_when_cancelled() {
    in_task(|| async move {
        let alive = Alive::default();
        klaw::scope!(|s| {
            let local = s.spawn_local(async {
                let _ = scope_with_a_slow_child(&alive, || {}).await;
            });
            until(|| alive.count() == 1).await;
            local.cancel("stop");
            let result = local.await;
            assert!(is_cancelled(&result), "{result:?}");
            assert_eq!(
                alive.count(),
                0,
                "the local child's handle resolved before its grandchild ended"
            );
            Ok(())
        })
        .unwrap();
    });
}

/// A child started with `start` opens its own scope and reports ready from inside it; the outer
/// scope is then cancelled: it returns only after the grandchild has ended.
#[test]
fn a_started_child_that_is_a_scope_is_waited_for_when_the_scope_is_cancelled() {
    in_task(|| async move {
        let alive = Alive::default();
        let children = alive.clone();
        let result: Result<(), Error> = klaw::scope!(|s| {
            let ((), _server) = s
                .start(move |ready: Ready<()>| async move {
                    let _ = scope_with_a_slow_child(&children, || ready.ready(())).await;
                })
                .await?;
            s.cancel("stop");
            pending::<()>().await;
            Ok(())
        });
        assert!(is_cancelled(&result), "{result:?}");
        assert_eq!(
            alive.count(),
            0,
            "the scope returned while the started child's grandchild was alive"
        );
    });
}

/// A background child of a scope that a region's deadline drops: the region returns only after
/// the background child has ended.
#[test]
fn a_background_child_of_a_scope_dropped_by_a_region_is_waited_for() {
    in_task(|| async move {
        let alive = Alive::default();
        let children = alive.clone();
        let outcome = klaw::cancel::move_on_after(Duration::from_millis(10), async move {
            klaw::scope!(|s| {
                s.spawn_background(children.pending_child(SLOW_DROP));
                pending::<()>().await;
                Ok(())
            })
        })
        .await;
        assert!(outcome.is_none());
        assert_eq!(alive.count(), 0, "the region returned while the background child was alive");
    });
}

// ---- 4. Nothing that failed is lost, nothing is reported twice -------------------------------

/// A supervisor scope dropped by a region's deadline; its child fails after the drop (its
/// shielded cleanup ends, then it returns `Err`): the enclosing scope reports that failure, once.
/// On a paused clock, so that the child has started before the deadline passes (a child
/// cancelled before it starts never runs, and never fails).
#[test]
fn a_failure_after_a_supervisor_scope_was_dropped_reaches_the_enclosing_scope_once() {
    in_paused_task(|| async move {
        let result: Result<(), Error> = klaw::scope!(|_s| {
            let inner = async {
                klaw::scope!(supervisor, |inner| {
                    inner.spawn(Task::fallible(async {
                        klaw::cancel::shield(klaw::time::sleep(Duration::from_millis(30))).await;
                        Err::<(), _>(FetchError(1))
                    }));
                    pending::<()>().await;
                    Ok(())
                })
            };
            let _ = klaw::cancel::move_on_after(Duration::from_millis(5), inner).await;
            Ok(())
        });
        assert_eq!(fetch_ids(&result.unwrap_err()), [1]);
    });
}

/// A blocking grandchild that fails after its scope was dropped by a region inside a task
/// child: the failure travels region -> task -> the task's scope, which reports it once.
#[test]
fn a_blocking_grandchilds_failure_after_its_scope_was_dropped_fails_the_outer_scope_once() {
    in_task(|| async move {
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn(async {
                let region = klaw::cancel::Region::new();
                let token = region.token();
                let inner = async move {
                    klaw::scope!(|inner| {
                        let started = Flag::default();
                        inner.spawn(fails_once_cancelled(2, &started));
                        // Cancels once the closure runs: a job cancelled while still queued is
                        // withdrawn and never runs, and never fails.
                        until(|| started.is_set()).await;
                        token.cancel("stop");
                        pending::<()>().await;
                        Ok(())
                    })
                };
                let _ = region.run(inner).await;
            });
            // The failure fails this scope and cancels this wait; if it were lost, the body
            // would return `Ok` after the wait.
            klaw::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        });
        assert_eq!(fetch_ids(&result.unwrap_err()), [2]);
    });
}

// ---- 5. Foreign executors, regions outside tasks ---------------------------------------------

/// A scope future polled by a tokio runtime (inside `Runtime::block_on`, so klaw is current but
/// no klaw frame is) and dropped by it when another branch wins: the drop blocks until the
/// children have ended.
#[test]
fn a_scope_dropped_by_a_foreign_executor_blocks_until_its_children_end() {
    outside_any_task(|alive| async move {
        let tokio_rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let scope = async {
            let _ = scope_with_a_slow_child(&alive, || {}).await;
        };
        tokio_rt.block_on(futures_lite::future::or(scope, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }));
        assert_eq!(alive.count(), 0, "the foreign executor's drop detached the scope's child");
    });
}

/// A scope spawned as a tokio task, and the tokio runtime dropped while it waits: tokio drops the
/// future, and that drop blocks until the scope's children have ended.
#[test]
fn a_scope_in_a_foreign_runtime_that_is_dropped_blocks_until_its_children_end() {
    outside_any_task(|alive| async move {
        let tokio_rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let children = alive.clone();
        let _join = tokio_rt.spawn(async move {
            let _ = scope_with_a_slow_child(&children, || {}).await;
        });
        tokio_rt.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
        assert_eq!(alive.count(), 1, "the scope ran under tokio");
        drop(tokio_rt);
        assert_eq!(alive.count(), 0, "the foreign runtime's drop detached the scope's child");
    });
}

/// A region around a scope, polled once and dropped outside any task: the region's drop hands
/// what the scope left running to no frame, so it blocks until that has ended.
#[test]
fn a_region_around_a_scope_dropped_outside_any_task_blocks_until_the_children_end() {
    outside_any_task(|alive| async move {
        let scope = scope_with_a_slow_child(&alive, || {});
        let mut region = Box::pin(klaw::cancel::move_on_after(Duration::from_secs(60), scope));
        assert!(futures_lite::future::poll_once(&mut region).await.is_none());
        drop(region);
        assert_eq!(alive.count(), 0, "the dropped region detached the scope's child");
    });
}

// ---- 6. Runtime shutdown ---------------------------------------------------------------------

/// The runtime is dropped while a task runs a scope whose child's own scope has a blocking
/// grandchild that cannot be interrupted: the task's handle resolves (cancelled by the
/// shutdown) only after that grandchild has returned.
#[test]
fn a_dropped_runtimes_scope_task_resolves_after_its_blocking_grandchild() {
    with_deadline(|| {
        let rt = runtime(2);
        let done = Flag::default();
        let finished = done.clone();
        let task = spawn_and_wait_for_its_signal(&rt, |started| async move {
            klaw::scope!(|s| {
                s.spawn(async move {
                    let _ = scope_with_a_blocking_child(move || {
                        started.send(()).unwrap();
                        std::thread::sleep(Duration::from_millis(200));
                        finished.set();
                    })
                    .await;
                });
                pending::<()>().await;
                Ok(())
            })
        });
        drop(rt);
        let result = futures_lite::future::block_on(task);
        assert_eq!(result.unwrap_err(), TaskError::Cancelled(CancelReason::Shutdown));
        assert!(done.is_set(), "the handle resolved while the blocking grandchild still ran");
    });
}

/// `shutdown` with a local child whose scope holds a parallel grandchild with a slow drop: the
/// task's handle resolves only after every descendant is gone.
#[test]
fn a_shut_down_runtimes_task_resolves_after_a_local_childs_grandchildren() {
    with_deadline(|| {
        let rt = runtime(2);
        let alive = Alive::default();
        let children = alive.clone();
        let task = spawn_and_wait_for_its_signal(&rt, |started| async move {
            klaw::scope!(|s| {
                s.spawn_local(async {
                    let _ = scope_with_a_slow_child(&children, || started.send(()).unwrap()).await;
                });
                pending::<()>().await;
                Ok(())
            })
        });
        let _report = rt.shutdown(Duration::ZERO);
        let result = futures_lite::future::block_on(task);
        assert!(matches!(result, Err(TaskError::Cancelled(_))), "{result:?}");
        assert_eq!(alive.count(), 0, "the handle resolved while a grandchild was alive");
    });
}

// ---- 7. Cancel racing completion -------------------------------------------------------------

/// A task whose body is a scope, cancelled from another thread while the scope completes: the
/// cancel decided exactly when the handle says `Cancelled`, and the handle resolves only after
/// the scope's children are gone, every round.
#[test]
fn a_cancel_racing_a_scope_tasks_completion_is_decided_once_and_waits_for_the_children() {
    with_deadline(|| {
        let rt = runtime(2);
        for round in 0..200u32 {
            let alive = Alive::default();
            let children = alive.clone();
            let task = rt.spawn(async move {
                klaw::scope!(|s| {
                    for _ in 0..2 {
                        let guard = children.guard(Duration::from_millis(1));
                        s.spawn(async move {
                            let _guard = guard;
                            klaw::time::sleep(Duration::from_micros(200)).await;
                        });
                    }
                    Ok(7u32)
                })
            });
            let canceller = task.task_ref();
            let racer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_micros(u64::from(round % 25) * 40));
                canceller.cancel("race")
            });
            let result = rt.block_on(task);
            let decided = racer.join().unwrap();
            assert_eq!(alive.count(), 0, "round {round}: resolved before the children ended");
            match result {
                Ok(Ok(7)) => assert!(!decided, "round {round}: a cancel that decided lost"),
                Err(TaskError::Cancelled(reason)) => {
                    assert!(decided, "round {round}: cancelled, though no cancel decided");
                    assert_eq!(reason, CancelReason::user("race"));
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
    });
}

// ---- 8. More failure paths: limits, background children, sibling failures --------------------

/// A blocking child of a limited scope, cancelled through its handle, returns `Err` after it saw
/// the cancel: its handle says `Cancelled`, and the scope still reports the failure, once.
#[test]
fn a_limited_blocking_childs_failure_after_its_handles_cancel_is_reported_once() {
    in_task(|| async move {
        let started = Flag::default();
        let result: Result<(), Error> = klaw::scope!(limit = 1, |s| {
            let child = s.spawn(fails_once_cancelled(4, &started));
            until(|| started.is_set()).await;
            child.cancel("stop");
            klaw::time::sleep(Duration::from_secs(10)).await; // the failure cancels this
            Ok(())
        });
        assert_eq!(fetch_ids(&result.unwrap_err()), [4]);
    });
}

/// A blocking background child stopped with `ScopeFinished` that returns `Err` once it sees the
/// stop: a failure its body produced, so the scope reports it (nothing that failed is lost).
#[test]
fn a_background_childs_failure_after_it_was_stopped_is_in_the_scopes_result() {
    in_task(|| async move {
        let started = Flag::default();
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn_background(fails_once_cancelled(5, &started));
            until(|| started.is_set()).await;
            Ok(())
        });
        assert_eq!(fetch_ids(&result.unwrap_err()), [5]);
    });
}

/// A sibling's failure cancels a child that is a scope whose local child opened a scope of its
/// own with a blocking great-grandchild: the outer scope returns the failure, once, only after
/// the great-grandchild has returned.
#[test]
fn a_sibling_failure_waits_for_a_local_grandchilds_blocking_great_grandchild() {
    in_task(|| async move {
        let done = Flag::default();
        let started = Flag::default();
        let (finished, seen) = (done.clone(), started.clone());
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn(async move {
                let _ = klaw::scope!(|middle| {
                    middle.spawn_local(async {
                        let _ = scope_with_a_blocking_child(move || {
                            seen.set();
                            std::thread::sleep(Duration::from_millis(150));
                            finished.set();
                        })
                        .await;
                    });
                    pending::<()>().await;
                    Ok(())
                });
            });
            until(|| started.is_set()).await;
            s.spawn(Task::fallible(async { Err::<(), _>(FetchError(6)) }));
            pending::<()>().await;
            Ok(())
        });
        assert!(done.is_set(), "the scope returned while the blocking great-grandchild ran");
        assert_eq!(fetch_ids(&result.unwrap_err()), [6]);
    });
}

/// A task whose scope has one child (local or parallel) whose whole body is a 50 ms shielded
/// cleanup; once the cleanup has begun, the scope's body panics. Returns whether the task
/// resolved `Panicked`, and whether the cleanup had finished by then.
fn panic_beside_a_shielded_child(local: bool) -> (bool, bool) {
    within(DEADLINE, move || {
        let rt = runtime(2);
        let (entered, cleaned) = (Flag::default(), Flag::default());
        let task = {
            let (entered, cleaned) = (entered.clone(), cleaned.clone());
            rt.spawn(async move {
                let seen = entered.clone();
                let _: Result<(), Error> = klaw::scope!(|s| {
                    let cleanup = klaw::cancel::shield(async move {
                        entered.set();
                        klaw::time::sleep(ms(50)).await;
                        cleaned.set();
                    });
                    if local {
                        s.spawn_local(cleanup);
                    } else {
                        s.spawn(cleanup);
                    }
                    until(|| seen.is_set()).await;
                    panic!("boom");
                    #[allow(unreachable_code)]
                    Ok(())
                });
            })
        };
        let outcome = rt.block_on(task);
        let cleaned_by_then = cleaned.is_set();
        let _report = rt.shutdown(Duration::from_secs(1));
        (matches!(outcome, Err(TaskError::Panicked(_))), cleaned_by_then)
    })
}

/// The control: a parallel child's shielded cleanup finishes before the task resolves.
#[test]
fn a_body_panic_waits_for_a_parallel_childs_shielded_cleanup() {
    let (panicked, cleaned) = panic_beside_a_shielded_child(false);
    assert!(panicked, "the task did not resolve Panicked");
    assert!(cleaned, "the task resolved before its child's shielded cleanup finished");
}

/// Checks: a local child's shielded cleanup also finishes before the task resolves `Panicked`.
///
/// Breaks if the dropped scope drops its local child's shield mid-way: `cleaned` is never set.
#[test]
fn a_body_panic_waits_for_a_local_childs_shielded_cleanup() {
    let (panicked, cleaned) = panic_beside_a_shielded_child(true);
    assert!(panicked, "the task did not resolve Panicked");
    assert!(cleaned, "the local child's shielded cleanup was cut short by the body's panic");
}

/// A scope's body panics while its parallel child is in a shielded cleanup, inside a region
/// whose deadline passes while the scope waits for the child. Checks: the task ends `Panicked`
/// and its code after the region never runs. What would break it: a scope dropped while it
/// waits (the region's deadline) that turns the panic into a failure handed to the region, which
/// then returns `None` as if only cancelled.
#[test]
fn a_body_panic_is_not_swallowed_by_a_region_that_times_out_while_children_end() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let (entered, ran_on) = (Flag::default(), Flag::default());
        let task = {
            let (entered, ran_on) = (entered.clone(), ran_on.clone());
            rt.spawn(async move {
                let seen = entered.clone();
                let _ = klaw::cancel::move_on_after(ms(50), async move {
                    let _: Result<(), Error> = klaw::scope!(|s| {
                        s.spawn(klaw::cancel::shield(async move {
                            entered.set();
                            klaw::time::sleep(ms(400)).await;
                        }));
                        until(|| seen.is_set()).await;
                        panic!("boom");
                        #[allow(unreachable_code)]
                        Ok(())
                    });
                })
                .await;
                // Code after the region: must never run, the scope's body panicked.
                ran_on.set();
            })
        };
        let outcome = rt.block_on(task);
        let _report = rt.shutdown(Duration::from_secs(1));
        assert!(
            !ran_on.is_set(),
            "the task's body went on after its scope's body panicked (the region's deadline \
             caught the panic): {outcome:?}"
        );
        assert!(matches!(outcome, Err(TaskError::Panicked(_))), "{outcome:?}");
    });
}

/// A task whose scope has a local child whose whole body is a 50 ms shielded cleanup; once the
/// cleanup has begun, a sibling fails, so the scope is cancelled and drops its body, whose
/// destructor panics. Returns whether the task resolved `Panicked`, and whether the cleanup had
/// finished by then.
fn body_drop_panic_beside_a_shielded_local_child() -> (TaskError, bool) {
    within(DEADLINE, || {
        let rt = runtime(2);
        let (entered, cleaned) = (Flag::default(), Flag::default());
        let task = {
            let (entered, cleaned) = (entered.clone(), cleaned.clone());
            rt.spawn(async move {
                let seen = entered.clone();
                let _: Result<(), Error> = klaw::scope!(|s| {
                    // Dropped with the body when the cancelled scope drops it: its destructor,
                    // the body's cleanup, fails.
                    let _cleanup = common::PanicOnDrop("the scope body's cleanup failed");
                    s.spawn_local(klaw::cancel::shield(async move {
                        entered.set();
                        klaw::time::sleep(ms(50)).await;
                        cleaned.set();
                    }));
                    until(|| seen.is_set()).await;
                    s.spawn(failing(1, Duration::ZERO)); // cancels the scope
                    pending::<()>().await;
                    Ok(())
                });
            })
        };
        let outcome = rt.block_on(task);
        let cleaned_by_then = cleaned.is_set();
        let _report = rt.shutdown(Duration::from_secs(1));
        (outcome.expect_err("the body's cleanup panicked"), cleaned_by_then)
    })
}

/// The same as `a_body_panic_waits_for_a_local_childs_shielded_cleanup`, with the panic in the
/// body's destructor (the cancelled scope drops its body): the scope waits for its children
/// first, a local child's shielded cleanup too. What would break it: the body dropped outside
/// the catch its polls have, so the panic unwound out of the scope and dropped the local child.
#[test]
fn a_body_whose_drop_panics_still_waits_for_a_local_childs_shielded_cleanup() {
    let (outcome, cleaned) = body_drop_panic_beside_a_shielded_local_child();
    assert!(matches!(outcome, TaskError::Panicked(_)), "{outcome:?}");
    assert!(
        cleaned,
        "the local child's shielded cleanup was cut short: the panic of the body's destructor \
         left the scope without waiting for its children"
    );
}
