//! The nursery guarantee along edges the other suites leave out: tasks awaited inline (a
//! `BlockingTask`, a `Task` with a timeout), klaw's blocking helpers running regions and scopes
//! in cancelled code (a cancelled task's destructor, a cancelled blocking closure), and
//! randomised cancels of scopes that mix every kind of child.
//!
//! The contract (book/src/scopes.md): "A scope returns only when it has **ended**, and so does
//! everything else that runs code: a task's handle resolves, a cancel region (`move_on_after`,
//! `Region::run`) returns, a scope returns, only after every descendant it started has ended,
//! transitively [...] A blocking child ends when its closure returns. This holds however the
//! cancellation arrived".

mod common;

use std::future::IntoFuture;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{
    Alive, FetchError, Flag, XorShift, fetch_ids, in_paused_task, in_task,
    last_step_of_a_cancelled_blocking_child, ms, runtime, until, wait_until, within,
};
use klaw::cancel::{Region, shield};
use klaw::task::{BlockingTask, ExitReason};
use klaw::{CancelReason, Error, Task, TaskError};

// ---- 1. A `BlockingTask` awaited inline ------------------------------------------------------

/// book/src/cancellation.md: "A region, like a scope, returns only after everything
/// started inside it has ended". book/src/scopes.md: "A blocking child ends when its closure
/// returns." A `BlockingTask` awaited inline inside a region starts a closure on the blocking
/// pool; the region's deadline must not let it return while that closure still runs.
#[test]
fn a_region_returns_only_after_a_blocking_task_awaited_inline_in_it() {
    in_task(|| async move {
        // A deadline that passes before the pool picks the job up withdraws it: that attempt
        // shows nothing (the closure never runs), and the next gives the pool longer. A closure
        // that starts runs 150 ms past the whole timeout, so the deadline always finds it running.
        let ended_first = common::until_a_deadline_finds_it_running(|timeout| async move {
            let started = Flag::default();
            let running = started.clone();
            let alive = Alive::default();
            let guard = alive.guard(Duration::ZERO);
            let outcome = klaw::cancel::move_on_after(timeout, async move {
                BlockingTask::new(move || {
                    running.set();
                    std::thread::sleep(timeout + ms(150));
                    drop(guard);
                })
                .await
            })
            .await;
            assert!(outcome.is_none(), "the deadline passed first");
            started.is_set().then(|| alive.count() == 0)
        })
        .await;
        assert!(ended_first, "the region returned while its blocking closure still ran");
    });
}

/// book/src/scopes.md (quoted at the top): a scope returns only after every descendant,
/// transitively, including blocking ones, whichever way the cancellation arrived (here, the
/// scope's own deadline). The child awaits a `BlockingTask` inline.
#[test]
fn a_timed_out_scope_returns_only_after_a_childs_inline_blocking_task() {
    in_task(|| async move {
        // A deadline that passes before the child is first polled, or before the pool picks its
        // job up, ends them unstarted: that attempt shows nothing (the closure never runs), and
        // the next gives them longer. A closure that starts runs 150 ms past the whole timeout,
        // so the deadline always finds it running.
        let ended_first = common::until_a_deadline_finds_it_running(|timeout| async move {
            let started = Flag::default();
            let running = started.clone();
            let alive = Alive::default();
            let guard = alive.guard(Duration::ZERO);
            let result: Result<(), Error> = klaw::scope!(timeout = timeout, |s| {
                s.spawn(async move {
                    let _ = BlockingTask::new(move || {
                        running.set();
                        std::thread::sleep(timeout + ms(150));
                        drop(guard);
                    })
                    .await;
                });
                Ok(())
            });
            assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
            started.is_set().then(|| alive.count() == 0)
        })
        .await;
        assert!(ended_first, "the scope returned while a grandchild closure still ran");
    });
}

/// A `#[klaw::task(blocking)]` function called and awaited inline by a task whose handle is
/// cancelled: the handle resolves "only after every descendant it started has ended"
/// (book/src/scopes.md). book/src/tasks.md presents inline await as one of the
/// ways to run such a task.
#[klaw::task(blocking)]
fn slow_checksum(started: Flag, done: Flag) -> u32 {
    started.set();
    // Still running when the cancel arrives, however late (bounded, so a cancel that never
    // arrives fails the test instead of hanging it), and for a while after.
    common::block_until_cancelled(Duration::from_secs(5));
    std::thread::sleep(ms(150));
    done.set();
    7
}

#[test]
fn a_cancelled_task_resolves_only_after_its_inline_blocking_task() {
    within(Duration::from_secs(30), || {
        let rt = runtime(2);
        let done = Flag::default();
        let started = Flag::default();
        let (task_done, task_started) = (done.clone(), started.clone());
        let handle = rt.spawn(async move {
            let _ = slow_checksum(task_started, task_done).await;
        });
        // Cancels once the closure runs: a job cancelled while still queued is withdrawn and
        // never runs, and there would be nothing to wait for.
        assert!(wait_until(Duration::from_secs(10), || started.is_set()));
        handle.cancel("stop");
        let outcome = rt.block_on(handle);
        assert!(matches!(outcome, Err(TaskError::Cancelled(_))), "{outcome:?}");
        assert!(done.is_set(), "the handle resolved while the task's blocking closure still ran");
    });
}

/// book/src/cancellation.md: "Blocking code (on the blocking pool) and CPU-bound loops
/// cannot be interrupted. They ask `klaw::cancel::is_cancelled()`, which is true when the task,
/// or an enclosing region up to the nearest shield, is cancelled." A `BlockingTask` awaited inline
/// in a region that is cancelled: its closure must learn it (it is the region's code), or it runs
/// on after the region returned.
#[test]
fn an_inline_blocking_task_hears_its_regions_cancellation() {
    in_task(|| async move {
        let (started, heard, ended) = (Flag::default(), Flag::default(), Flag::default());
        let (closure_started, closure_heard, closure_ended) =
            (started.clone(), heard.clone(), ended.clone());
        let region = Region::new();
        let canceller = cancel_once_set(region.token(), started);
        let outcome = region
            .run(async move {
                BlockingTask::new(move || {
                    closure_started.set();
                    let started = std::time::Instant::now();
                    while started.elapsed() < Duration::from_secs(3) {
                        if klaw::cancel::is_cancelled() {
                            closure_heard.set();
                            break;
                        }
                        std::thread::sleep(ms(1));
                    }
                    closure_ended.set();
                })
                .await
            })
            .await;
        canceller.join().unwrap();
        assert!(outcome.is_err(), "the region was cancelled");
        let ended_then = ended.is_set();
        // Whatever the region did, let the closure finish before the runtime goes.
        until(|| ended.is_set()).await;
        assert!(heard.is_set(), "the closure never saw its region's cancellation");
        assert!(ended_then, "the region returned before the closure ended");
    });
}

/// A blocking task awaited inline fails after its region's cancel reached it: "nothing that
/// failed is lost" (book/src/scopes.md), so the failure reaches the scope around the region, as
/// a cancelled blocking child's failure reaches its scope.
#[test]
fn an_inline_blocking_tasks_failure_after_its_regions_cancel_reaches_the_enclosing_scope() {
    in_task(|| async move {
        let result: Result<(), Error> = klaw::scope!(|_s| {
            let started = Flag::default();
            let running = started.clone();
            let region = Region::new();
            let canceller = cancel_once_set(region.token(), started);
            let outcome = region
                .run(
                    BlockingTask::fallible(move || {
                        running.set();
                        while !klaw::cancel::is_cancelled() {
                            std::thread::sleep(ms(1));
                        }
                        Err::<(), FetchError>(FetchError(7))
                    })
                    .into_future(),
                )
                .await;
            canceller.join().unwrap();
            assert!(outcome.is_err(), "the region was cancelled first");
            Ok(())
        });
        let error = result.expect_err("the closure's failure fails the scope");
        assert_eq!(fetch_ids(&error), [7], "{error:?}");
    });
}

/// Cancels `token` from a thread of its own once `started` is set: a blocking closure sets it
/// first, and a job cancelled while still queued is withdrawn and never runs.
fn cancel_once_set(token: klaw::cancel::Token, started: Flag) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        common::wait_for("the closure started", || started.is_set());
        token.cancel("stop");
    })
}

// ---- 2. A `Task` with a timeout awaited inline -----------------------------------------------

/// book/src/tasks.md: "`timeout = "5s"` bounds it wherever it runs", and inline await
/// gives "the same result type as awaiting a handle". book/src/cancellation.md: "A
/// shield holds klaw's cancellations of its own task (its handle, a cancel region, a scope
/// cancelling its body)". Spawned, a task's timeout is held by a shield in its body
/// (tests/held_shields.rs: `a_task_timeout_held_by_a_shield_freezes_the_branch_beside_it`);
/// awaited inline, it should be too.
#[test]
fn an_inline_tasks_timeout_waits_for_a_shield_in_its_body() {
    in_task(|| async move {
        let flushed = Flag::default();
        let flag = flushed.clone();
        let outcome = Task::new(async move {
            shield(async {
                klaw::time::sleep(ms(40)).await;
                flag.set();
            })
            .await;
        })
        .timeout(ms(5))
        .await;
        assert!(matches!(outcome, Err(TaskError::TimedOut(_))), "{outcome:?}");
        assert!(flushed.is_set(), "the inline task's timeout cut its shielded cleanup short");
    });
}

/// The same spawned, as the reference: the shield finishes before the handle resolves.
#[test]
fn a_spawned_tasks_timeout_waits_for_a_shield_in_its_body() {
    in_task(|| async move {
        let flushed = Flag::default();
        let flag = flushed.clone();
        let handle = klaw::Handle::current().unwrap().spawn(
            Task::new(async move {
                shield(async {
                    klaw::time::sleep(ms(40)).await;
                    flag.set();
                })
                .await;
            })
            .timeout(ms(5)),
        );
        let outcome = handle.await;
        assert!(matches!(outcome, Err(TaskError::TimedOut(_))), "{outcome:?}");
        assert!(flushed.is_set());
    });
}

/// A scope inside a `Task` with a timeout, awaited inline: the task "ends only after every
/// descendant it started has ended" (book/src/scopes.md), so when its `.await` gives
/// `TimedOut`, the scope's child (in shielded cleanup) must have ended.
#[test]
fn an_inline_tasks_timeout_returns_only_after_its_scopes_children() {
    in_task(|| async move {
        let alive = Alive::default();
        let children = alive.clone();
        let outcome = Task::new(async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                let guard = children.guard(Duration::ZERO);
                s.spawn(async move {
                    let _guard = guard;
                    shield(klaw::time::sleep(ms(60))).await;
                    std::future::pending::<()>().await;
                });
                std::future::pending::<()>().await;
                Ok(())
            });
        })
        .timeout(ms(10))
        .await;
        assert!(matches!(outcome, Err(TaskError::TimedOut(_))), "{outcome:?}");
        assert_eq!(alive.count(), 0, "the inline task's timeout returned before its grandchild");
    });
}

// ---- 3. A blocking helper running a scope in a cancelled task's destructor --------------------

/// Runs its closure when dropped, and records what it said.
struct OnDrop(Option<Box<dyn FnOnce() -> bool + Send>>, Flag);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(step) = self.0.take() {
            if step() {
                self.1.set();
            }
        }
    }
}

/// Runs `last_step` in the destructor of a value held by a task's body, once the task is
/// cancelled through its handle and drops its body; gives what `last_step` said (true: it
/// worked), after the task's handle resolved.
fn in_a_cancelled_tasks_destructor(last_step: impl FnOnce() -> bool + Send + 'static) -> bool {
    within(Duration::from_secs(20), move || {
        let rt = runtime(2);
        let (worked, started) = (Flag::default(), Flag::default());
        let cleanup = OnDrop(Some(Box::new(last_step)), worked.clone());
        let task_started = started.clone();
        let handle = rt.spawn(async move {
            let _cleanup = cleanup;
            task_started.set();
            std::future::pending::<()>().await;
        });
        assert!(wait_until(Duration::from_secs(10), || started.is_set()));
        handle.cancel("stop");
        let _ = rt.block_on(handle);
        worked.is_set()
    })
}

/// book/src/cancellation.md: "klaw's blocking helpers (`block_on`, `send_blocking`...) called
/// there, say from a destructor, work as anywhere." A destructor in the body of a task cancelled
/// through its handle runs a scope with `klaw::runtime::block_on`: the scope must complete (not
/// hang), and the task resolve after it.
#[test]
fn a_scope_run_by_block_on_in_a_cancelled_tasks_destructor_completes() {
    let ran = in_a_cancelled_tasks_destructor(|| scope_with_a_child_gives_21(false));
    assert!(ran, "the scope in the destructor did not give its value");
}

/// Runs, under `block_on`, a scope whose child (local, or `parallel`) gives 20; true if the scope
/// gave 21.
fn scope_with_a_child_gives_21(parallel: bool) -> bool {
    let value = klaw::runtime::block_on(async {
        klaw::scope!(|s| {
            let child = match parallel {
                true => s.spawn(async { 20 }),
                false => s.spawn_local(async { 20 }),
            };
            Ok(child.await? + 1)
        })
    });
    value.ok() == Some(21)
}

/// The same with a parallel child: `s.spawn` inside a scope run by `block_on` in a cancelled
/// task's destructor.
#[test]
fn a_scope_with_a_parallel_child_run_by_block_on_in_a_cancelled_tasks_destructor_completes() {
    let ran = in_a_cancelled_tasks_destructor(|| scope_with_a_child_gives_21(true));
    assert!(ran, "the scope in the destructor did not give its value");
}

/// The failures in `result` are those of the children whose flag in `started` is set (child `i`
/// fails with `FetchError(i)`), each exactly once.
fn assert_each_started_child_reported_once(
    result: &Result<(), Error>,
    started: &[Flag],
    round: u64,
    delay_us: u64,
) {
    let mut expected: Vec<u32> = started
        .iter()
        .enumerate()
        .filter(|(_, flag)| flag.is_set())
        .map(|(id, _)| u32::try_from(id).unwrap())
        .collect();
    let mut reported = match result {
        Ok(()) => Vec::new(),
        Err(error) => fetch_ids(error),
    };
    expected.sort_unstable();
    reported.sort_unstable();
    assert_eq!(reported, expected, "round {round} (cancel after {delay_us} µs)");
}

// Another executor's `block_on` (`futures_lite`'s, as `futures::executor::block_on` or
// `pollster` would be) in the same destructor pushes no klaw frame: the body is dropped with its
// task current but not polled, so what it runs there is not the task's to drop either.

/// tokio: `test_abort_task_that_panics_on_drop_contained` (a destructor run by an abort must not
/// wedge the task), with the destructor bounding an async cleanup by `move_on_after` under
/// `futures_lite::future::block_on`, as the book bounds one under klaw's `block_on`.
///
/// Checks: the region returns `None` at its 5 ms deadline, and the task's handle resolves.
///
/// Breaks if a region under a foreign `block_on` in a cancelled task's destructor waits to be
/// dropped by the task, which is blocked in that very destructor.
#[test]
fn a_bounded_cleanup_under_a_foreign_block_on_in_a_cancelled_tasks_destructor_returns() {
    let worked = in_a_cancelled_tasks_destructor(|| {
        let outcome = futures_lite::future::block_on(klaw::cancel::move_on_after(
            ms(5),
            std::future::pending::<()>(),
        ));
        outcome.is_none()
    });
    assert!(worked, "the region's own deadline did not end the cleanup");
}

/// The same destructor running a scope whose body awaits its local child (20 + 1), as
/// `a_scope_run_by_block_on_in_a_cancelled_tasks_destructor_completes` does under klaw's
/// `block_on`.
///
/// Checks: the scope gives 21 (or at least returns).
///
/// Breaks if a scope under a foreign `block_on` in a cancelled task's destructor takes the task's
/// cancellation for its own.
#[test]
fn a_scope_under_a_foreign_block_on_in_a_cancelled_tasks_destructor_gives_its_value() {
    let worked = in_a_cancelled_tasks_destructor(|| {
        let value: Result<u32, Error> = futures_lite::future::block_on(async {
            klaw::scope!(|s| {
                let child = s.spawn_local(async { 20u32 });
                Ok(child.await? + 1)
            })
        });
        value.ok() == Some(21)
    });
    assert!(worked, "the scope in the destructor did not give its value");
}

/// tokio: `rt_basic.rs::acquire_mutex_in_drop` (a destructor run by the runtime's teardown
/// blocks on something), with the bounded foreign cleanup of the first test: the runtime is shut
/// down (`shutdown(0)`) while the task waits.
///
/// Checks: the shutdown returns, the cleanup returned at its deadline, nothing is abandoned.
///
/// Breaks if the shutdown's cancel poll of the task runs the destructor with the task "polled"
/// and the region then waits forever: either a worker is stuck (reported abandoned, the cleanup
/// never returned) or the shutdown's own thread is (the shutdown never returns).
#[test]
fn shutdown_lets_a_bounded_foreign_cleanup_in_a_destructor_return() {
    within(Duration::from_secs(10), || {
        let rt = runtime(1);
        let (worked, started) = (Flag::default(), Flag::default());
        let value = OnDrop(
            Some(Box::new(|| {
                let outcome = futures_lite::future::block_on(klaw::cancel::move_on_after(
                    ms(5),
                    std::future::pending::<()>(),
                ));
                outcome.is_none()
            })),
            worked.clone(),
        );
        let running = started.clone();
        let _task = rt.spawn(async move {
            let _value = value;
            running.set();
            std::future::pending::<()>().await;
        });
        assert!(wait_until(Duration::from_secs(10), || started.is_set()));
        let report = rt.shutdown(Duration::ZERO);
        assert!(worked.is_set(), "the cleanup did not return at its deadline: {report}");
        assert_eq!(report.abandoned, 0, "{report}");
    });
}

// ---- 4. Failures racing cancels: each failure that happened is reported exactly once -------

/// book/src/scopes.md: "Nothing that failed is lost. [...] every failure a body actually
/// produced is in the scope's result, even one that raced a sibling's cancel (a blocking child,
/// say, that returned `Err` after it was cancelled [...])". Children that fail without any
/// `.await` (so each one that starts produces its failure) are cancelled through their handles
/// from another thread at random moments; the scope (supervisor, so nothing else cancels them)
/// must report each started one exactly once.
#[test]
fn failures_racing_handle_cancels_from_another_thread_are_each_reported_once() {
    within(Duration::from_secs(120), || {
        let rt = runtime(2);
        let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..300u64 {
            let delay_us = random.below(400);
            let started: Vec<Flag> = (0..4).map(|_| Flag::default()).collect();
            let flags = started.clone();
            let result = rt.block_on(rt.spawn(async move {
                klaw::scope!(supervisor, |s| {
                    let mut refs = Vec::new();
                    for (id, flag) in flags.iter().cloned().enumerate() {
                        let id = u32::try_from(id).unwrap();
                        let handle = if id % 2 == 0 {
                            s.spawn(BlockingTask::fallible(move || {
                                flag.set();
                                let spin = std::time::Instant::now();
                                while spin.elapsed() < Duration::from_micros(200) {}
                                Err::<(), _>(FetchError(id))
                            }))
                        } else {
                            s.spawn(Task::fallible(async move {
                                flag.set();
                                let spin = std::time::Instant::now();
                                while spin.elapsed() < Duration::from_micros(200) {}
                                Err::<(), _>(FetchError(id))
                            }))
                        };
                        refs.push(handle.task_ref());
                    }
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_micros(delay_us));
                        for task in refs {
                            task.cancel("racing");
                        }
                    });
                    Ok(())
                })
            }));
            let result = result.expect("the scope's task ran");
            assert_each_started_child_reported_once(&result, &started, round, delay_us);
        }
    });
}

// ---- 5. Randomised cancels of a scope that has every kind of child ---------------------------

/// Spawns in `s` (a scope with `limit = 1`) a child of every kind, each counted in `alive` until
/// it has ended: three limited children (two wait their turn), a blocking child, a local child in
/// shielded cleanup (if `local`), a background child, and a started child that is itself a
/// scope with a blocking grandchild; then lets them run 3 ms.
async fn spawn_every_kind_of_child(s: &klaw::Scope<'_>, alive: &Alive, local: bool) {
    for _ in 0..3 {
        let guard = alive.guard(ms(1));
        s.spawn(async move {
            let _guard = guard;
            klaw::time::sleep(ms(2)).await;
        });
    }
    let guard = alive.guard(Duration::ZERO);
    s.spawn_blocking(move || {
        std::thread::sleep(ms(3));
        drop(guard);
    });
    if local {
        let guard = alive.guard(Duration::ZERO);
        s.spawn_local(async move {
            let _guard = guard;
            shield(klaw::time::sleep(ms(2))).await;
            std::future::pending::<()>().await;
        });
    }
    let guard = alive.guard(ms(1));
    s.spawn_background(async move {
        let _guard = guard;
        loop {
            klaw::time::sleep(ms(1)).await;
        }
    });
    let grandchildren = alive.clone();
    let _ = s
        .start(move |ready: klaw::scope::Ready<()>| async move {
            let _: Result<(), Error> = klaw::scope!(|inner| {
                let guard = grandchildren.guard(Duration::ZERO);
                inner.spawn_blocking(move || {
                    std::thread::sleep(ms(4));
                    drop(guard);
                });
                ready.ready(());
                klaw::time::sleep(ms(5)).await;
                Ok(())
            });
        })
        .await;
    klaw::time::sleep(ms(3)).await;
}

/// Builds, in one task, a scope with: a limited pool (limit 1) with waiting children, a blocking
/// child, a local child in shielded cleanup, a started child that is itself a scope with a
/// blocking grandchild, and a background child; then cancels the task through its handle at a
/// random moment. When the handle resolves, nothing may be alive (book/src/scopes.md).
#[test]
fn a_task_cancelled_at_random_moments_resolves_after_every_kind_of_descendant() {
    within(Duration::from_secs(240), || {
        let rt = runtime(2);
        let mut random = XorShift(0x1234_5678_9ABC_DEF1);
        for round in 0..200u64 {
            let alive = Alive::default();
            let delay_us = random.below(3_000);
            let children = alive.clone();
            let handle = rt.spawn(async move {
                let alive = children;
                let _: Result<(), Error> = klaw::scope!(limit = 1, |s| {
                    spawn_every_kind_of_child(s, &alive, true).await;
                    Ok(())
                });
            });
            std::thread::sleep(Duration::from_micros(delay_us));
            handle.cancel("random");
            let _ = rt.block_on(handle);
            assert_eq!(
                alive.count(),
                0,
                "round {round}: the task resolved with descendants alive (cancel after {delay_us} µs)"
            );
        }
    });
}

/// The same scope, dropped outside any klaw task (in `Runtime::block_on`, by futures-lite's `or`
/// racing it against a busy timer) at a random moment: "Dropped outside any klaw task or region
/// [...] the drop itself blocks the dropping thread until the children have ended"
/// (book/src/scopes.md).
#[test]
fn a_scope_with_every_kind_of_child_dropped_by_a_foreign_executor_blocks_until_all_end() {
    within(Duration::from_secs(240), || {
        let rt = runtime(2);
        let _enter = rt.handle();
        let mut random = XorShift(0x0BAD_CAFE_DEAD_BEEF);
        for round in 0..100u64 {
            let alive = Alive::default();
            let delay_us = random.below(6_000);
            let children = alive.clone();
            rt.block_on(async move {
                let alive = children;
                let scope = async {
                    let _: Result<(), Error> = klaw::scope!(limit = 1, |s| {
                        spawn_every_kind_of_child(s, &alive, false).await;
                        Ok(())
                    });
                };
                let timer = async {
                    let until = std::time::Instant::now() + Duration::from_micros(delay_us);
                    std::future::poll_fn(|cx| {
                        if std::time::Instant::now() >= until {
                            std::task::Poll::Ready(())
                        } else {
                            cx.waker().wake_by_ref();
                            std::task::Poll::Pending
                        }
                    })
                    .await;
                };
                futures_lite::future::or(scope, timer).await;
                assert_eq!(
                    alive.count(),
                    0,
                    "round {round}: the foreign drop left descendants alive (after {delay_us} µs)"
                );
            });
        }
    });
}

// ---- 6. Runtime shutdown with every kind of child ---------------------------------------------

/// The runtime is dropped while a task's scope has waiting (limited) children, a background
/// child, a blocking child and a local child: "This holds however the cancellation arrived: [...]
/// the runtime's shutdown" (book/src/scopes.md). The task's handle (watched through a
/// `TaskRef`) resolves only after every descendant ended.
#[test]
fn a_dropped_runtime_ends_a_scope_task_only_after_every_kind_of_child() {
    within(Duration::from_secs(30), || {
        let rt = runtime(2);
        let alive = Alive::default();
        let children = alive.clone();
        let started = Flag::default();
        let task_started = started.clone();
        let handle = rt.spawn(async move {
            let alive = children;
            let _: Result<(), Error> = klaw::scope!(limit = 1, |s| {
                for _ in 0..3 {
                    let guard = alive.guard(ms(5));
                    s.spawn(async move {
                        let _guard = guard;
                        klaw::time::sleep(Duration::from_secs(60)).await;
                    });
                }
                let guard = alive.guard(ms(5));
                s.spawn_background(async move {
                    let _guard = guard;
                    klaw::time::sleep(Duration::from_secs(60)).await;
                });
                let guard = alive.guard(ms(5));
                s.spawn_local(async move {
                    let _guard = guard;
                    klaw::time::sleep(Duration::from_secs(60)).await;
                });
                task_started.set();
                klaw::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            });
        });
        assert!(wait_until(Duration::from_secs(10), || started.is_set()));
        std::thread::sleep(ms(10));
        drop(rt);
        let outcome = futures_lite::future::block_on(handle);
        assert!(matches!(outcome, Err(TaskError::Cancelled(_))), "{outcome:?}");
        assert_eq!(alive.count(), 0, "the handle resolved with descendants alive");
    });
}

// ---- 7. `start` edges --------------------------------------------------------------------------

/// book/src/scopes.md: "If the child ends before it is ready, `start` reports why: its
/// failure (in supervisor mode [...])". A started blocking child fails before calling `ready`: in
/// supervisor mode `start` returns that failure, and the body returning it reports it once.
#[test]
fn a_started_blocking_child_failing_before_ready_is_reported_once_in_supervisor_mode() {
    in_task(|| async move {
        let result: Result<(), Error> = klaw::scope!(supervisor, |s| {
            s.start(|_ready: klaw::scope::Ready<u8>| {
                BlockingTask::fallible(|| Err::<(), _>(FetchError(5)))
            })
            .await?;
            Ok(())
        });
        let error = result.expect_err("the started child failed");
        assert_eq!(fetch_ids(&error), vec![5], "{error:?}");
    });
}

/// The scope is cancelled (its deadline) while the body waits in `start`, and the started child
/// calls `ready` in its cleanup afterwards, then fails: the failure is reported once, after the
/// deadline (book/src/scopes.md). On a paused clock, so that the child has started before
/// the deadline passes (a child cancelled before it starts never runs).
#[test]
fn a_started_child_readying_then_failing_after_the_deadline_is_reported_once() {
    in_paused_task(|| async move {
        let result: Result<(), Error> = klaw::scope!(timeout = "10ms", |s| {
            s.start(|ready: klaw::scope::Ready<u8>| {
                Task::fallible(async move {
                    shield(klaw::time::sleep(ms(30))).await;
                    ready.ready(1);
                    Err::<(), _>(FetchError(9))
                })
            })
            .await?;
            std::future::pending::<()>().await;
            Ok(())
        });
        let Err(Error::Scope(errors)) = &result else { panic!("two failures: {result:?}") };
        assert_eq!(errors.len(), 2, "{result:?}");
        assert!(matches!(errors.errors()[0], Error::Elapsed(_)), "{result:?}");
        assert_eq!(fetch_ids(&errors.errors()[1]), vec![9]);
    });
}

// ---- 8. Regions and scopes run by `block_on` in cancelled code ----------------------------------

/// A destructor in the body of a task cancelled through its handle bounds its cleanup with
/// `move_on_after` under `block_on`: the region's own deadline must end it (nothing that
/// encloses it will drop it).
#[test]
fn a_bounded_cleanup_run_by_block_on_in_a_cancelled_tasks_destructor_returns() {
    let ran = in_a_cancelled_tasks_destructor(|| {
        let outcome = klaw::runtime::block_on(klaw::cancel::move_on_after(
            ms(5),
            std::future::pending::<()>(),
        ));
        outcome.is_none()
    });
    assert!(ran, "the region's deadline did not end the cleanup");
}

/// The same with a scope with its own `timeout` in the destructor: it must return `Elapsed`.
#[test]
fn a_timed_scope_run_by_block_on_in_a_cancelled_tasks_destructor_returns() {
    let ran = in_a_cancelled_tasks_destructor(|| {
        let result: Result<(), Error> = klaw::runtime::block_on(async {
            klaw::scope!(timeout = "5ms", |_s| {
                std::future::pending::<()>().await;
                Ok(())
            })
        });
        matches!(result, Err(Error::Elapsed(_)))
    });
    assert!(ran, "the scope's deadline did not end it");
}

/// A blocking child that sees its scope's cancellation (`is_cancelled()`, as
/// book/src/cancellation.md asks) and then bounds a last step with `move_on_after` under
/// `block_on`: the region's deadline must end that step, so the closure returns and the scope
/// with it.
#[test]
fn a_cancelled_blocking_childs_bounded_last_step_under_block_on_returns() {
    within(Duration::from_secs(10), || {
        let rt = runtime(2);
        let (result, step) = last_step_of_a_cancelled_blocking_child(&rt, || {
            klaw::runtime::block_on(klaw::cancel::move_on_after(
                ms(5),
                std::future::pending::<()>(),
            ))
        });
        assert!(
            matches!(result, Err(Error::Task { error: TaskError::Cancelled(_), .. })),
            "{result:?}"
        );
        assert!(step.is_some());
    });
}

/// A blocking child of a cancelled scope runs a nested scope under `block_on` whose child fails:
/// the nested scope must return the failure (nothing encloses it that would drop it).
#[test]
fn a_failing_scope_under_block_on_in_a_cancelled_blocking_child_returns() {
    within(Duration::from_secs(10), || {
        let rt = runtime(2);
        let (_, step) = last_step_of_a_cancelled_blocking_child(&rt, || {
            let inner: Result<(), Error> = klaw::runtime::block_on(async {
                klaw::scope!(|inner| {
                    inner.spawn_local(Task::fallible(async { Err::<(), _>(FetchError(4)) }));
                    Ok(())
                })
            });
            inner.map_err(|error| fetch_ids(&error))
        });
        assert_eq!(step, Some(Err(vec![4])));
    });
}

/// The smallest form of the four above: a runtime's blocking task, cancelled through its handle,
/// sees it and runs `move_on_after(5ms, pending)` under `block_on`. The region must return at
/// its own deadline, and the handle resolve only after it did.
#[test]
fn a_region_under_block_on_in_a_cancelled_blocking_task_returns() {
    within(Duration::from_secs(10), || {
        let rt = runtime(1);
        let (started, returned) = (Flag::default(), Flag::default());
        let (running, region_returned) = (started.clone(), returned.clone());
        let handle = rt.spawn_blocking(move || {
            running.set();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
            let outcome = klaw::runtime::block_on(klaw::cancel::move_on_after(
                ms(5),
                std::future::pending::<()>(),
            ));
            region_returned.set();
            outcome
        });
        // Cancels once the closure runs: a job cancelled while still queued is withdrawn and
        // never runs, and there would be no region to return.
        common::wait_for("the closure started", || started.is_set());
        handle.cancel("stop");
        let outcome = rt.block_on(handle);
        assert!(matches!(outcome, Err(TaskError::Cancelled(_))), "{outcome:?}");
        assert!(returned.is_set(), "the handle resolved before the region under block_on returned");
    });
}

// ---- 9. Failures of a scope in a region cancelled from another thread ---------------------

/// book/src/cancellation.md and book/src/scopes.md: failures of a scope in a
/// region that is cancelled are handed out to the frame around the region, never dropped. An
/// outer scope runs a region around a supervisor scope whose children (blocking and async, none
/// with an `.await` before its `Err`) each fail once started; the region's token is cancelled from
/// another thread at random moments. The outer scope must report each started child's failure
/// exactly once.
#[test]
fn failures_in_a_region_cancelled_from_another_thread_reach_the_outer_scope_once() {
    within(Duration::from_secs(120), || {
        let rt = runtime(2);
        let mut random = XorShift(0x5151_7A7A_0101_CAFE);
        for round in 0..300u64 {
            let delay_us = random.below(500);
            let started: Vec<Flag> = (0..4).map(|_| Flag::default()).collect();
            let flags = started.clone();
            let result = rt.block_on(rt.spawn(async move {
                klaw::scope!(|_outer| {
                    let region = klaw::cancel::Region::new();
                    let token = region.token();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_micros(delay_us));
                        token.cancel("racing");
                    });
                    let _ = region
                        .run(async move {
                            klaw::scope!(supervisor, |s| {
                                for (id, flag) in flags.iter().cloned().enumerate() {
                                    let id = u32::try_from(id).unwrap();
                                    if id % 2 == 0 {
                                        s.spawn(BlockingTask::fallible(move || {
                                            flag.set();
                                            std::thread::sleep(Duration::from_micros(100));
                                            Err::<(), _>(FetchError(id))
                                        }));
                                    } else {
                                        s.spawn(Task::fallible(async move {
                                            flag.set();
                                            Err::<(), _>(FetchError(id))
                                        }));
                                    }
                                }
                                std::future::pending::<()>().await;
                                Ok(())
                            })
                        })
                        .await;
                    Ok(())
                })
            }));
            let result = result.expect("the outer scope's task ran");
            assert_each_started_child_reported_once(&result, &started, round, delay_us);
        }
    });
}

/// `Scope::is_cancelled`: "Once it is true, a child spawned in the scope starts cancelled, and
/// its body never runs", outside any task too: in a `block_on`, the region around the scope is
/// cancelled from the scope's body, which then spawns. What would break it: a scope hearing what
/// encloses it only in a polled task, taking "no task" for a blocking closure that nothing drops.
#[test]
fn in_block_on_a_child_spawned_after_the_scope_heard_an_enclosing_cancel_never_runs() {
    common::with_deadline(|| {
        let rt = common::runtime(2);
        let ran = Flag::default();
        // (what `s.is_cancelled()` said before the spawn, the child's state right after it)
        let seen: Arc<Mutex<Option<(bool, ExitReason)>>> = Arc::default();
        let outcome = rt.block_on(async {
            let region = Region::new();
            let token = region.token();
            region
                .run(async {
                    let result: Result<(), Error> = klaw::scope!(|s| {
                        // The region around the scope is cancelled from inside, between two
                        // awaits: nothing can drop the scope before this poll returns.
                        token.cancel("stop");
                        let heard = s.is_cancelled();
                        let (ran_tx, ran_rx) = mpsc::channel::<()>();
                        let child_ran = ran.clone();
                        let child = s.spawn(async move {
                            child_ran.set();
                            let _ = ran_tx.send(());
                        });
                        *seen.lock().unwrap() = Some((heard, child.exit_reason()));
                        // Only to see the consequence: an idle worker runs the child at once if
                        // it was scheduled uncancelled. (With the promise kept, this waits out
                        // its bound: the child never runs.)
                        let _ = ran_rx.recv_timeout(Duration::from_secs(1));
                        Ok(())
                    });
                    result
                })
                .await
        });
        let (heard, at_spawn) = seen.lock().unwrap().take().expect("the scope's body ran");
        assert!(heard, "the scope did not hear the enclosing region's cancel");
        assert_eq!(
            at_spawn,
            ExitReason::Cancelled,
            "a child spawned after `s.is_cancelled()` turned true did not start cancelled"
        );
        assert!(!ran.is_set(), "a child spawned into a scope that said it was cancelled ran");
        assert!(
            matches!(&outcome, Err(reason) if *reason == CancelReason::user("stop")),
            "{outcome:?}"
        );
    });
}

/// `Scope::is_cancelled`'s exception: a scope run by a foreign executor's `block_on` inside a
/// cancelled blocking task's closure, which nothing can drop, runs on as if its task had not
/// been cancelled; so does its local child that asks `is_cancelled()`. What would break it: the
/// walk of what encloses the child taking the cancelled blocking task for one that drops what it
/// polls.
#[test]
fn a_local_child_asking_is_cancelled_under_a_foreign_block_on_in_a_cancelled_blocking_task_runs_on()
{
    let step = within(Duration::from_secs(20), || {
        let rt = runtime(2);
        let (_, step) = last_step_of_a_cancelled_blocking_child(&rt, || {
            let scoped: Result<i32, klaw::Error> = futures_lite::future::block_on(async {
                klaw::scope!(|s| {
                    let child = s.spawn_local(async {
                        // A CPU-bound child looking between its steps; whatever it sees, it
                        // finishes its work.
                        let _ = klaw::cancel::is_cancelled();
                        7
                    });
                    Ok(child.await?)
                })
            });
            scoped.map_err(|error| error.to_string())
        });
        step
    });
    assert_eq!(
        step,
        Some(Ok(7)),
        "a scope under a foreign block_on in a cancelled blocking task must run on as if the task \
         had not been cancelled; its local child was cancelled for asking is_cancelled()"
    );
}
