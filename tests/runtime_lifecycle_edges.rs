//! The runtime's life from build to shutdown, at its edges: what `shutdown(grace)` and dropping
//! a runtime do to every kind of descendant (parallel, local, blocking and limited children, a
//! shield cleaning up), whether the report counts each task once and every handle resolves
//! before `shutdown` returns; spawning during the grace period, from a destructor the shutdown
//! runs, from a blocking closure that outlives the runtime and from other threads while it shuts
//! down; a destructor that blocks or panics during shutdown; `shutdown` called inside one of the
//! runtime's own tasks; a handle used after the runtime is gone; bad builder and `KLAW_WORKERS`
//! values.
//!
//! The cases follow tokio's `rt_common.rs`, `rt_threaded.rs`, `rt_basic.rs` and `rt_handle.rs`
//! (`shutdown_timeout`, `outstanding_tasks_dropped`, `shutdown_concurrent_spawn`,
//! `wake_during_shutdown`, `acquire_mutex_in_drop`, `drop_tasks_in_context`) and trio's
//! `test_run.py` (tasks when the run ends, `run_sync_soon` too late), translated to what klaw
//! documents: the book's Runtime chapter, `Runtime::shutdown`, `Handle`, `ShutdownReport`.
//! Where klaw's docs are silent, a comment says what a demanding tokio or trio user expects.
//!
//! Every scenario runs on a thread of its own under a deadline (`common::within`), so a hang
//! fails instead of blocking. None asserts how long anything took.

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{Alive, DEADLINE, Flag, in_child_process, ms, runtime, secs, wait_for, within};
use klaw::runtime::{
    BuildError, ConfigError, MachineInfo, RuntimeConfig, ShutdownReport, WorkersFrom,
};
use klaw::task::TaskRef;
use klaw::{CancelReason, Handle, Runtime, TaskError, TaskHandle};

/// Every task the report accounts for, however it ended.
fn total(report: &ShutdownReport) -> u64 {
    report.succeeded
        + report.failed
        + report.cancelled
        + report.panicked
        + report.timed_out
        + report.abandoned
}

/// Awaits `handle` outside any runtime (the runtime may be gone).
fn outcome<T: Send + 'static>(handle: TaskHandle<T>) -> Result<T, TaskError> {
    klaw::runtime::block_on(handle)
}

/// A future counted in `alive` from now until it is dropped (a drop that takes `drop_takes`),
/// which never ends by itself.
fn forever(alive: &Alive, drop_takes: Duration) -> impl Future<Output = ()> + Send + 'static {
    let guard = alive.guard(drop_takes);
    async move {
        let _guard = guard;
        pending::<()>().await;
    }
}

/// Panics when dropped, unless already unwinding.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a destructor panicked while the runtime shut down");
        }
    }
}

// ---- 1. What a shutdown does to every kind of descendant --------------------------------------

/// A task runs a scope with parallel, local and blocking children; another runs a `limit = 1`
/// scope with one running child and three waiting for its slot. `shutdown(0)` cancels all of
/// them: the report counts each of the twelve tasks once (all cancelled, none abandoned), every
/// descendant has been dropped before `shutdown` returns ("ended" is transitive), and every
/// handle resolves cancelled.
#[test]
fn shutdown_counts_every_kind_of_child_once_and_ends_each_before_it_returns() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let alive = Alive::default();
        let (refs_tx, refs) = mpsc::channel::<TaskRef>();
        let (ready_tx, ready) = mpsc::channel::<()>();

        let (mixed_alive, mixed_refs, mixed_ready) =
            (alive.clone(), refs_tx.clone(), ready_tx.clone());
        let mixed = rt.spawn(async move {
            klaw::scope!(|s| {
                for _ in 0..3 {
                    let child = s.spawn(forever(&mixed_alive, ms(30)));
                    mixed_refs.send(child.task_ref()).unwrap();
                }
                for _ in 0..2 {
                    let child = s.spawn_local(forever(&mixed_alive, ms(30)));
                    mixed_refs.send(child.task_ref()).unwrap();
                }
                let guard = mixed_alive.guard(Duration::ZERO);
                let blocking = s.spawn_blocking(move || {
                    let _guard = guard;
                    while !klaw::cancel::is_cancelled() {
                        std::thread::sleep(ms(1));
                    }
                });
                mixed_refs.send(blocking.task_ref()).unwrap();
                mixed_ready.send(()).unwrap();
                pending::<()>().await;
                Ok(())
            })
        });

        let (limited_alive, limited_refs, limited_ready) = (alive.clone(), refs_tx, ready_tx);
        let limited = rt.spawn(async move {
            klaw::scope!(limit = 1, |s| {
                for _ in 0..4 {
                    let child = s.spawn(forever(&limited_alive, ms(30)));
                    limited_refs.send(child.task_ref()).unwrap();
                }
                limited_ready.send(()).unwrap();
                pending::<()>().await;
                Ok(())
            })
        });
        for _ in 0..2 {
            ready.recv_timeout(secs(10)).expect("both scopes spawned their children");
        }
        let children: Vec<TaskRef> = refs.try_iter().collect();
        assert_eq!(children.len(), 10);

        let report = rt.shutdown(Duration::ZERO);
        assert_eq!(alive.count(), 0, "shutdown returned while a descendant was alive: {report}");
        assert_eq!(report.cancelled, 12, "{report}");
        assert_eq!(total(&report), 12, "every task counted once: {report}");
        assert_eq!(report.abandoned, 0, "{report}");
        for child in &children {
            let reason = child.cancel_reason();
            assert!(
                matches!(reason, Some(CancelReason::Shutdown | CancelReason::ParentCancelled)),
                "a child ended with {reason:?}"
            );
        }
        for task in [mixed, limited] {
            assert_eq!(outcome(task).map(drop), Err(TaskError::Cancelled(CancelReason::Shutdown)));
        }
    });
}

/// The same tree dropped with its runtime (`drop` is `shutdown(Duration::ZERO)`): when the drop
/// returns, every descendant has been dropped.
#[test]
fn dropping_the_runtime_ends_every_descendant_before_the_drop_returns() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let alive = Alive::default();
        let (ready_tx, ready) = mpsc::channel::<()>();
        let children = alive.clone();
        let task = rt.spawn(async move {
            klaw::scope!(limit = 2, |s| {
                for _ in 0..4 {
                    s.spawn(forever(&children, ms(20)));
                }
                s.spawn_local(async {
                    let _ = klaw::scope!(|inner| {
                        inner.spawn(forever(&children, ms(20)));
                        pending::<()>().await;
                        Ok(())
                    });
                });
                ready_tx.send(()).unwrap();
                pending::<()>().await;
                Ok(())
            })
        });
        ready.recv_timeout(secs(10)).unwrap();
        drop(rt);
        assert_eq!(alive.count(), 0, "the drop returned while a descendant was alive");
        assert_eq!(outcome(task).map(drop), Err(TaskError::Cancelled(CancelReason::Shutdown)));
    });
}

/// A task is in a shielded cleanup when `shutdown(0)` cancels it: the shield holds the
/// cancellation open (the runtime's cancelled tasks get a second to end), so the cleanup
/// finishes before `shutdown` returns, the rest of the body is dropped, and the task is
/// reported cancelled, not abandoned.
#[test]
fn a_shielded_cleanup_under_way_finishes_before_shutdown_returns() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let cleaned = Flag::default();
        let after = Flag::default();
        let (started_tx, started) = mpsc::channel();
        let (done, went_on) = (cleaned.clone(), after.clone());
        let task = rt.spawn(async move {
            klaw::cancel::shield(async move {
                started_tx.send(()).unwrap();
                klaw::time::sleep(ms(100)).await;
                done.set();
            })
            .await;
            klaw::time::sleep(ms(1)).await;
            went_on.set();
        });
        started.recv_timeout(secs(10)).unwrap();
        let report = rt.shutdown(Duration::ZERO);
        assert!(cleaned.is_set(), "shutdown returned before the shielded cleanup finished");
        assert!(!after.is_set(), "the body went on past its cancellation");
        assert_eq!((report.cancelled, report.abandoned), (1, 0), "{report}");
        assert_eq!(outcome(task), Err(TaskError::Cancelled(CancelReason::Shutdown)));
    });
}

/// A task cancelled by its handle is in a shielded cleanup when a graceful shutdown starts: the
/// grace period waits for the cleanup, and the report says nothing was cut short.
#[test]
fn a_graceful_shutdown_waits_for_a_shielded_cleanup_of_a_cancelled_task() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let cleaned = Flag::default();
        let (started_tx, started) = mpsc::channel();
        let done = cleaned.clone();
        let task = rt.spawn(async move {
            klaw::cancel::shield(async move {
                started_tx.send(()).unwrap();
                klaw::time::sleep(ms(100)).await;
                done.set();
            })
            .await;
            pending::<()>().await;
        });
        started.recv_timeout(secs(10)).unwrap();
        assert!(task.cancel("stop"));
        let report = rt.shutdown(secs(20));
        assert!(cleaned.is_set());
        assert!(!report.grace_expired, "{report}");
        assert_eq!((report.cancelled, report.abandoned), (1, 0), "{report}");
        assert_eq!(outcome(task), Err(TaskError::Cancelled(CancelReason::user("stop"))));
    });
}

// ---- 2. Spawning while the runtime shuts down -------------------------------------------------

/// "Tasks may still spawn during the grace period": a chain of tasks, each spawning the next
/// through `Handle::current()` after a short sleep, all run within the grace period, and the
/// report counts each once as succeeded.
#[test]
fn tasks_spawned_during_the_grace_period_run_and_are_counted() {
    // Not an `async fn`: one that spawns itself cannot prove its own future `Send`.
    #[allow(clippy::manual_async_fn)]
    fn link(left: usize, ran: Arc<AtomicUsize>) -> impl Future<Output = ()> + Send + 'static {
        async move {
            klaw::time::sleep(ms(5)).await;
            ran.fetch_add(1, SeqCst);
            if left > 1 {
                drop(Handle::current().unwrap().spawn(link(left - 1, ran)));
            }
        }
    }

    within(DEADLINE, || {
        let rt = runtime(2);
        let ran = Arc::new(AtomicUsize::new(0));
        drop(rt.spawn(link(10, ran.clone())));
        let report = rt.shutdown(secs(20));
        assert!(!report.grace_expired, "{report}");
        assert_eq!(ran.load(SeqCst), 10);
        assert_eq!((report.succeeded, total(&report)), (10, 10), "{report}");
    });
}

/// Spawns a task through the current runtime when dropped, and sends its handle out.
struct SpawnOnDrop {
    spawned: mpsc::Sender<Option<TaskHandle<()>>>,
    ran: Flag,
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let ran = self.ran.clone();
        let handle = Handle::current().ok().map(|handle| handle.spawn(async move { ran.set() }));
        let _ = self.spawned.send(handle);
    }
}

/// A task's destructor, run by the shutdown that cancels it, spawns through the runtime (which
/// is current there): the new task is cancelled before it starts (reason `Shutdown`), its body
/// never runs, and the report counts it once. trio: `run_sync_soon` too late is an error, not
/// a callback that runs after the end.
#[test]
fn a_task_spawned_by_a_destructor_the_shutdown_runs_is_cancelled_and_counted() {
    within(DEADLINE, || {
        for drop_it in [false, true] {
            let rt = runtime(1);
            let (spawned_tx, spawned) = mpsc::channel();
            let (started_tx, started) = mpsc::channel();
            let ran = Flag::default();
            let guard = SpawnOnDrop { spawned: spawned_tx, ran: ran.clone() };
            let task = rt.spawn(async move {
                let _guard = guard;
                started_tx.send(()).unwrap();
                pending::<()>().await;
            });
            started.recv_timeout(secs(10)).unwrap();
            let report = if drop_it {
                drop(rt);
                None
            } else {
                Some(rt.shutdown(Duration::ZERO))
            };
            let late = spawned.recv_timeout(secs(10)).expect("the destructor ran");
            let late = late.expect("the runtime is current in a destructor the shutdown runs");
            assert_eq!(outcome(late), Err(TaskError::Cancelled(CancelReason::Shutdown)));
            assert!(!ran.is_set(), "a task spawned during shutdown ran its body");
            assert_eq!(outcome(task), Err(TaskError::Cancelled(CancelReason::Shutdown)));
            if let Some(report) = report {
                assert_eq!((report.cancelled, report.abandoned), (2, 0), "{report}");
                assert_eq!(total(&report), 2, "{report}");
            }
        }
    });
}

/// A blocking closure that ignores its cancel outlives the runtime (reported abandoned), then
/// spawns through a `Handle` it was given, async and blocking: each handle resolves cancelled
/// with reason `Shutdown` and no body runs; nothing panics or hangs.
#[test]
fn a_blocking_closure_that_outlives_its_runtime_spawns_through_a_handle() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let handle = rt.handle();
        let (go_tx, go) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let ran = Flag::default();
        let body_ran = ran.clone();
        let stubborn = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            go.recv_timeout(secs(20)).unwrap();
            let ran_async = body_ran.clone();
            let late = handle.spawn(async move { ran_async.set() });
            let late_blocking = handle.spawn_blocking(move || body_ran.set());
            (outcome(late), outcome(late_blocking), handle.live_tasks())
        });
        started.recv_timeout(secs(10)).unwrap();
        let report = rt.shutdown(Duration::ZERO);
        assert_eq!(report.abandoned, 1, "{report}");
        go_tx.send(()).unwrap();
        // The closure's handle keeps its cancellation, decided by the shutdown; what the
        // closure saw comes back through a channel instead.
        let (seen_tx, seen) = mpsc::channel();
        let watcher = std::thread::spawn(move || seen_tx.send(outcome(stubborn)).unwrap());
        assert_eq!(
            seen.recv_timeout(secs(10)).unwrap(),
            Err(TaskError::Cancelled(CancelReason::Shutdown))
        );
        watcher.join().unwrap();
        assert!(!ran.is_set(), "a task spawned after shutdown ran its body");
    });
}

/// What the stubborn closure above saw, checked directly: a blocking closure that outlives the
/// runtime spawns through its `Handle`; both spawns resolve `Cancelled(Shutdown)` and no task is
/// left counted live.
#[test]
fn spawning_through_a_handle_from_a_blocking_thread_after_shutdown_is_cancelled() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let handle = rt.handle();
        let (go_tx, go) = mpsc::channel::<()>();
        let (seen_tx, seen) = mpsc::channel();
        let (started_tx, started) = mpsc::channel::<()>();
        drop(rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            go.recv_timeout(secs(20)).unwrap();
            let late = handle.spawn(async { 1 });
            let late_blocking = handle.spawn_blocking(|| 2);
            seen_tx.send((outcome(late), outcome(late_blocking))).unwrap();
        }));
        started.recv_timeout(secs(10)).unwrap();
        let _report = rt.shutdown(Duration::ZERO);
        go_tx.send(()).unwrap();
        let cancelled = Err(TaskError::Cancelled(CancelReason::Shutdown));
        assert_eq!(seen.recv_timeout(secs(10)).unwrap(), (cancelled.clone(), cancelled));
    });
}

/// tokio: `shutdown_concurrent_spawn`. Threads keep spawning through handles while the runtime
/// is dropped: every handle resolves, with its value or `Cancelled(Shutdown)`, nothing panics,
/// and a task that was cancelled never ran its body.
#[test]
fn spawns_from_other_threads_racing_the_drop_all_resolve() {
    within(DEADLINE, || {
        for _ in 0..20 {
            let rt = runtime(2);
            let stop = Arc::new(AtomicBool::new(false));
            let spawners: Vec<_> = (0..2)
                .map(|_| {
                    let handle = rt.handle();
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        let mut handles = Vec::new();
                        while !stop.load(SeqCst) || handles.len() < 50 {
                            let ran = Flag::default();
                            let body_ran = ran.clone();
                            handles.push((handle.spawn(async move { body_ran.set() }), ran));
                            if handles.len() > 5_000 {
                                break;
                            }
                        }
                        handles
                    })
                })
                .collect();
            std::thread::sleep(ms(2));
            drop(rt);
            stop.store(true, SeqCst);
            for spawner in spawners {
                for (handle, ran) in spawner.join().unwrap() {
                    match outcome(handle) {
                        Ok(()) => assert!(ran.is_set()),
                        Err(TaskError::Cancelled(CancelReason::Shutdown)) => {
                            assert!(!ran.is_set(), "a cancelled task ran its body")
                        }
                        other => panic!("a spawn racing the drop ended with {other:?}"),
                    }
                }
            }
        }
    });
}

/// A report counts what happened by the time `shutdown` returned: a task spawned from another
/// thread while the shutdown runs is either counted (ended) or not spawned yet, never counted
/// as abandoned, which the docs keep for a body that never yields and a blocking closure that
/// ignores its cancel.
#[test]
fn a_spawn_racing_the_shutdown_is_never_reported_abandoned() {
    within(DEADLINE, || {
        for round in 0..50 {
            let rt = runtime(1);
            let handle = rt.handle();
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = stop.clone();
            let spawner = std::thread::spawn(move || {
                let mut handles = Vec::new();
                while !stopped.load(SeqCst) {
                    handles.push(handle.spawn(async {}));
                }
                handles
            });
            std::thread::sleep(ms(1));
            let report = rt.shutdown(Duration::ZERO);
            stop.store(true, SeqCst);
            let handles = spawner.join().unwrap();
            assert_eq!(report.abandoned, 0, "round {round}: {report}");
            for handle in handles {
                assert!(matches!(
                    outcome(handle),
                    Ok(()) | Err(TaskError::Cancelled(CancelReason::Shutdown))
                ));
            }
        }
    });
}

// ---- 3. Destructors that block or panic during shutdown ---------------------------------------

/// tokio: `acquire_mutex_in_drop`, `wake_during_shutdown`. A task's destructor, run by the
/// shutdown, blocks (`klaw::runtime::block_on`, which the book allows in a task) on a sibling
/// that the same shutdown cancels: the shutdown neither hangs nor abandons anything, and the
/// destructor sees the sibling cancelled.
#[test]
fn a_destructor_that_blocks_on_a_sibling_during_shutdown_does_not_hang() {
    struct WaitForSibling(Option<TaskHandle<()>>, mpsc::Sender<Result<(), TaskError>>);

    impl Drop for WaitForSibling {
        fn drop(&mut self) {
            if let Some(sibling) = self.0.take() {
                let _ = self.1.send(klaw::runtime::block_on(sibling));
            }
        }
    }

    within(DEADLINE, || {
        for workers in [1, 2] {
            for drop_it in [false, true] {
                let rt = runtime(workers);
                let sibling = rt.spawn(pending::<()>());
                let (seen_tx, seen) = mpsc::channel();
                let (started_tx, started) = mpsc::channel();
                let guard = WaitForSibling(Some(sibling), seen_tx);
                let task = rt.spawn(async move {
                    let _guard = guard;
                    started_tx.send(()).unwrap();
                    pending::<()>().await;
                });
                started.recv_timeout(secs(10)).unwrap();
                if drop_it {
                    drop(rt);
                } else {
                    let report = rt.shutdown(Duration::ZERO);
                    assert_eq!((report.cancelled, report.abandoned), (2, 0), "{report}");
                }
                assert_eq!(
                    seen.recv_timeout(secs(10)).unwrap(),
                    Err(TaskError::Cancelled(CancelReason::Shutdown))
                );
                assert_eq!(outcome(task), Err(TaskError::Cancelled(CancelReason::Shutdown)));
            }
        }
    });
}

/// Destructors that panic when the shutdown drops their tasks (waiting tasks, a task never
/// polled, a queued blocking closure) stay inside their tasks: `shutdown` returns a report
/// (no panic reaches its caller), the first terminal state wins (each is `Cancelled(Shutdown)`),
/// and every task is counted once.
#[test]
fn destructors_that_panic_during_shutdown_are_contained_and_counted_once() {
    within(DEADLINE, || {
        for drop_it in [false, true] {
            let rt = Runtime::builder().workers(1).max_blocking_threads(1).build().unwrap();
            let (started_tx, started) = mpsc::channel();
            let mut handles: Vec<TaskHandle<()>> = Vec::new();
            for _ in 0..3 {
                let started = started_tx.clone();
                handles.push(rt.spawn(async move {
                    let _panics = PanicOnDrop;
                    started.send(()).unwrap();
                    pending::<()>().await;
                }));
            }
            for _ in 0..3 {
                started.recv_timeout(secs(10)).unwrap();
            }
            // The only blocking thread is busy: the next closures stay queued until shutdown
            // drops them.
            handles.push(rt.spawn_blocking(|| {
                while !klaw::cancel::is_cancelled() {
                    std::thread::sleep(ms(1));
                }
            }));
            for _ in 0..2 {
                let panics = PanicOnDrop;
                handles.push(rt.spawn_blocking(move || drop(panics)));
            }
            let report = if drop_it {
                drop(rt);
                None
            } else {
                Some(rt.shutdown(Duration::ZERO))
            };
            for handle in handles {
                assert_eq!(outcome(handle), Err(TaskError::Cancelled(CancelReason::Shutdown)));
            }
            if let Some(report) = report {
                assert_eq!((report.cancelled, total(&report)), (6, 6), "{report}");
            }
        }
    });
}

// ---- 4. shutdown inside one of the runtime's own tasks ----------------------------------------

/// The runtime is moved into one of its own tasks (or one of its blocking closures), which calls
/// `shutdown` with a grace period. It cannot wait for the task that called it, which holds a
/// thread of the runtime: as tokio refuses to block there (it panics), klaw refuses to wait,
/// but with a typed outcome instead of a panic. The call returns at once, long before its
/// grace period (an hour here, which the test's deadline would catch), with a report whose
/// `into_result` is an error that says what happened and what to do; it counts no task
/// abandoned. The shutdown goes on in the background: it ends once the other task has ended,
/// and what is spawned through a handle after it is cancelled before it starts.
#[test]
fn shutdown_inside_one_of_its_own_tasks_returns_at_once_with_a_typed_outcome() {
    within(DEADLINE, || {
        for (workers, blocking) in [(1, false), (2, false), (1, true)] {
            let rt = runtime(workers);
            let handle = rt.handle();
            let other = rt.spawn(pending::<()>());
            let slot = Arc::new(Mutex::new(Some(rt)));
            let (reported_tx, reported) = mpsc::channel();
            let mine = slot.clone();
            let stop = move || {
                let rt = mine.lock().unwrap().take().unwrap();
                reported_tx.send(rt.shutdown(secs(3600))).unwrap();
            };
            let own = {
                let guard = slot.lock().unwrap();
                let rt = guard.as_ref().unwrap();
                if blocking { rt.spawn_blocking(stop) } else { rt.spawn(async move { stop() }) }
            };
            let report = reported.recv_timeout(secs(20)).expect("shutdown waited its grace period");
            assert_eq!((report.abandoned, report.grace_expired), (0, false), "{report}");
            let error = report.clone().into_result().expect_err("a shutdown that did not happen");
            let text = error.to_string();
            assert!(text.contains("inside one of the runtime's own tasks"), "{text}");
            assert!(text.contains("from outside the runtime"), "{text}");
            assert_eq!(outcome(own), Ok(()));
            assert!(other.cancel("the test is done"));
            assert!(matches!(outcome(other), Err(TaskError::Cancelled(CancelReason::User(_)))));
            wait_for("the shutdown to end", || format!("{handle:?}").contains("shut_down: true"));
            let late = handle.spawn(async {});
            assert_eq!(outcome(late), Err(TaskError::Cancelled(CancelReason::Shutdown)));
            assert_eq!(handle.live_tasks(), 0);
        }
    });
}

// ---- 5. A handle after its runtime is gone ----------------------------------------------------

/// Everything a `Handle` offers still answers after its runtime was dropped, without a panic:
/// spawns of every kind (plain, named, fallible, with a timeout, blocking) resolve
/// `Cancelled(Shutdown)` without running, the live count is zero, the dump and `Debug` work.
#[test]
fn a_handle_answers_everything_after_its_runtime_is_dropped() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let handle = rt.handle();
        let copy = handle.clone();
        drop(rt);
        let ran = Flag::default();
        let (a, b, c, d) = (ran.clone(), ran.clone(), ran.clone(), ran.clone());
        let cancelled = Err(TaskError::Cancelled(CancelReason::Shutdown));
        assert_eq!(outcome(handle.spawn(async move { a.set() })), cancelled);
        assert_eq!(
            outcome(copy.spawn(klaw::Task::new(async move { b.set() }).name("late"))),
            cancelled
        );
        let fallible = handle.spawn(klaw::Task::fallible(async move {
            c.set();
            Ok::<(), std::fmt::Error>(())
        }));
        assert!(matches!(
            klaw::runtime::block_on(fallible),
            Err(TaskError::Cancelled(CancelReason::Shutdown))
        ));
        let timed = handle.spawn(klaw::Task::new(pending::<()>()).timeout(ms(1)));
        assert_eq!(outcome(timed), cancelled);
        assert_eq!(outcome(handle.spawn_blocking(move || d.set())), cancelled);
        assert!(!ran.is_set());
        assert_eq!(handle.live_tasks(), 0);
        assert!(handle.dump().to_string().starts_with("klaw runtime:"));
        assert!(format!("{handle:?}").contains("shut_down: true"), "{handle:?}");
        assert_eq!(handle.config().workers, 2);
    });
}

/// A handle kept inside a task that the shutdown cancels, used from that task's destructor and
/// from a thread after the shutdown: both spawns are cancelled, and the handle's task counts
/// stay consistent (nothing live once everything has resolved).
#[test]
fn handles_kept_past_shutdown_leave_nothing_live() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let handle = rt.handle();
        for _ in 0..10 {
            drop(rt.spawn(pending::<()>()));
        }
        let report = rt.shutdown(Duration::ZERO);
        assert_eq!((report.cancelled, report.abandoned), (10, 0), "{report}");
        let late: Vec<_> = (0..10).map(|i| handle.spawn(async move { i })).collect();
        for task in late {
            assert_eq!(outcome(task), Err(TaskError::Cancelled(CancelReason::Shutdown)));
        }
        assert_eq!(handle.live_tasks(), 0);
    });
}

// ---- 6. block_on nesting ----------------------------------------------------------------------

/// `Runtime::block_on` nested in a `block_on` of the same runtime on a thread that is not a
/// worker: klaw's docs forbid only worker threads, so it runs, and the runtime is current in
/// both levels.
#[test]
fn block_on_nested_in_a_block_on_of_the_same_runtime_runs() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let value = rt.block_on(async {
            let inner = rt.block_on(async { Handle::current().unwrap().spawn(async { 20 }).await });
            inner.unwrap() + Handle::current().unwrap().spawn(async { 22 }).await.unwrap()
        });
        assert_eq!(value, 42);
    });
}

/// `Runtime::block_on` inside a blocking closure (a thread of the runtime's pool, not a worker)
/// runs, as the docs allow it everywhere but on a worker.
#[test]
fn block_on_of_the_same_runtime_inside_a_blocking_closure_runs() {
    within(DEADLINE, || {
        let rt = Arc::new(runtime(1));
        let inside = rt.clone();
        let value = rt.block_on(rt.spawn_blocking(move || {
            inside.block_on(async { Handle::current().unwrap().spawn(async { 5 }).await })
        }));
        assert_eq!(value, Ok(Ok(5)));
        drop(rt);
    });
}

// ---- 7. Bad configuration values --------------------------------------------------------------

/// A thread name the operating system cannot take (an interior NUL byte) is a bad setting:
/// `build` returns a typed error, as for every other bad setting, instead of panicking in the
/// middle of starting threads.
#[test]
fn a_thread_name_with_a_nul_byte_is_a_typed_error_not_a_panic() {
    within(DEADLINE, || {
        let built = std::panic::catch_unwind(|| {
            Runtime::builder().workers(1).thread_name("bad\0name").build().map(drop)
        });
        match built {
            Ok(Err(error)) => {
                let message = error.to_string();
                assert!(message.contains("thread_name"), "{message}");
            }
            Ok(Ok(())) => panic!("a runtime was built with a thread name holding a NUL byte"),
            Err(_) => panic!("Builder::build panicked on a thread name holding a NUL byte"),
        }
    });
}

const CHILD: &str = "child_reads_a_bad_klaw_workers_every_way";

/// A bad `KLAW_WORKERS` is the same typed error from `RuntimeConfig::detect`,
/// `Builder::config` and `Builder::build`, naming the variable, the value, the range and what
/// to do; a builder whose worker count is explicit (or paused) ignores it.
#[test]
fn a_bad_klaw_workers_is_one_typed_error_every_way_and_explicit_counts_ignore_it() {
    for value in ["", " ", "+2", "2 ", "0x10", "18446744073709551616", "1025", "-0"] {
        in_child_process(CHILD, &[("KLAW_WORKERS", value)], DEADLINE);
    }
}

#[test]
#[ignore = "run in a child process by a_bad_klaw_workers_is_one_typed_error_every_way_and_explicit_counts_ignore_it"]
fn child_reads_a_bad_klaw_workers_every_way() {
    let value = std::env::var("KLAW_WORKERS").unwrap();
    let detected = RuntimeConfig::detect();
    if value.trim() == "2" {
        // Surrounding blanks are accepted.
        assert_eq!(detected.unwrap().workers, 2);
        return;
    }
    let error = detected.unwrap_err();
    assert!(
        matches!(
            &error,
            ConfigError::NotANumber { setting: "KLAW_WORKERS", .. }
                | ConfigError::OutOfRange { setting: "KLAW_WORKERS", .. }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.starts_with("KLAW_WORKERS="), "{message}");
    assert!(message.contains("expected 1 to 1024"), "{message}");
    assert!(message.contains("unset it"), "{message}");
    assert_eq!(Runtime::builder().config().unwrap_err(), error);
    match Runtime::builder().build() {
        Err(BuildError::Config(built)) => assert_eq!(built, error),
        other => panic!("expected the config error, got {other:?}"),
    }
    assert_eq!(Runtime::builder().workers(2).build().unwrap().worker_count(), 2);
    assert_eq!(Runtime::builder().start_paused(true).build().unwrap().worker_count(), 1);
}

const BUILT: &str = "child_builds_runtimes_under_a_valid_klaw_workers";
const TEST_DEFAULT: &str = "child_a_klaw_test_without_workers_runs_klaw_workers_workers";
const TEST_EXPLICIT: &str = "child_a_klaw_test_with_workers_ignores_klaw_workers";

/// The worker count `KLAW_WORKERS` asks for in the child processes: 3, or 4 where the detection
/// itself gives 3, so a runtime that ignored the variable could not pass by chance.
fn wanted_by_the_variable() -> usize {
    if MachineInfo::probe().recommended_workers() == 3 { 4 } else { 3 }
}

/// The value of `KLAW_WORKERS` in a child process, checked to differ from the detection.
fn klaw_workers_in_this_child() -> usize {
    let value = std::env::var("KLAW_WORKERS").expect("run with KLAW_WORKERS set");
    let wanted: usize = value.parse().expect("KLAW_WORKERS is a number");
    assert_ne!(wanted, MachineInfo::probe().recommended_workers(), "it must differ from detection");
    wanted
}

/// runtime.md: "`KLAW_WORKERS` overrides the detection; the builder overrides both." Runs the
/// three children below with a valid `KLAW_WORKERS` (3, or 4 where 3 is what the machine gives).
///
/// What would break it: a default runtime (`Runtime::builder().build()`, or the one a
/// `#[klaw::test]` or `#[klaw::main]` without `workers` starts) that ignored `KLAW_WORKERS` and
/// ran the detected count, or an explicit count (`Builder::workers`, `workers = N`) that the
/// variable overrode.
#[test]
fn a_valid_klaw_workers_sets_the_worker_count_and_an_explicit_count_overrides_it() {
    let value = wanted_by_the_variable().to_string();
    for child in [BUILT, TEST_DEFAULT, TEST_EXPLICIT] {
        in_child_process(child, &[("KLAW_WORKERS", value.as_str())], DEADLINE);
    }
}

/// A runtime built with defaults under `KLAW_WORKERS=N` starts N worker threads, its config
/// saying they came from the variable; `.workers(2)` runs 2 whatever the variable says.
#[test]
#[ignore = "run in a child process by a_valid_klaw_workers_sets_the_worker_count_and_an_explicit_count_overrides_it"]
fn child_builds_runtimes_under_a_valid_klaw_workers() {
    let wanted = klaw_workers_in_this_child();
    let rt = Runtime::builder().build().expect("a runtime with defaults");
    assert_eq!(rt.worker_count(), wanted, "the worker threads it started");
    assert_eq!((rt.config().workers, rt.config().workers_from), (wanted, WorkersFrom::Env));
    drop(rt);

    let rt = Runtime::builder().workers(2).build().expect("a runtime with 2 workers");
    assert_eq!(rt.worker_count(), 2, "the builder's count did not win over KLAW_WORKERS");
    assert_eq!((rt.config().workers, rt.config().workers_from), (2, WorkersFrom::Builder));
}

/// The runtime of a `#[klaw::test]` without `workers` (built as `#[klaw::main]`'s is, by the
/// entry macros' `build_runtime`) runs the count `KLAW_WORKERS` gives.
#[klaw::test]
#[ignore = "run in a child process by a_valid_klaw_workers_sets_the_worker_count_and_an_explicit_count_overrides_it"]
async fn child_a_klaw_test_without_workers_runs_klaw_workers_workers() {
    let wanted = klaw_workers_in_this_child();
    let handle = Handle::current().expect("inside the test's runtime");
    let config = handle.config();
    assert_eq!((config.workers, config.workers_from), (wanted, WorkersFrom::Env));
}

/// The runtime of a `#[klaw::test(workers = 2)]` runs 2 workers whatever `KLAW_WORKERS` says.
#[klaw::test(workers = 2)]
#[ignore = "run in a child process by a_valid_klaw_workers_sets_the_worker_count_and_an_explicit_count_overrides_it"]
async fn child_a_klaw_test_with_workers_ignores_klaw_workers() {
    klaw_workers_in_this_child();
    let handle = Handle::current().expect("inside the test's runtime");
    let config = handle.config();
    assert_eq!((config.workers, config.workers_from), (2, WorkersFrom::Builder));
}
