//! klaw's futures run by other executors, and dropped by them: a `scope!` (and `scope_with`),
//! cancel regions, a `select!` over klaw channels, a shield and an inline `BlockingTask`, polled
//! by `futures_lite::future::block_on`, a hand-written single-threaded pool, and tokio runtimes
//! (current-thread; multi-thread with the `tokio` feature), and dropped mid-way by each: from the
//! thread that polled them, from another thread after being moved, by `tokio::time::timeout`, and
//! during that executor's own shutdown; and foreign blocking helpers (`futures_lite`'s and tokio's
//! `block_on`) running regions and scopes inside a cancelled blocking task.
//!
//! The contract (book/src/scopes.md, "When a scope has ended" and "Dropping a scope"): a task,
//! region or scope ends only after every descendant it started has ended, however its future
//! ended; a scope dropped outside any klaw task or region "blocks the dropping thread until the
//! children have ended, as `std::thread::scope` does. It never detaches them." The rustdoc of
//! `scope_with`: a scope future polled and then moved out of the task that polled it "takes its
//! children with it [...] whoever holds it then waits for them". book/src/cancellation.md: a
//! region returns at its own deadline, and a bounded last step in cancelled blocking code ends.
//!
//! Every scenario runs under a deadline (`within`), so a hang fails instead of blocking.

mod common;

use std::future::IntoFuture;
use std::future::pending;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::{
    Alive, FetchError, Flag, fetch_ids, last_step_of_a_cancelled_blocking_child, ms, runtime,
    wait_for, within,
};
use klaw::scope::{Ready, ScopeOptions, scope_with};
use klaw::task::BlockingTask;
use klaw::{Error, Task, TaskError};

const LIMIT: Duration = Duration::from_secs(20);

/// A current-thread tokio runtime with its timer.
fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

/// How long a slow child's drop takes (`Alive::pending_child`).
const SLOW_DROP: Duration = ms(50);

/// A scope with a child of each kind, every one counted in `alive` until it has ended, under
/// `limit = 5`: three parallel children, a blocking child that runs 60 ms past its cancel, a
/// started child that is itself a scope with a blocking grandchild (these five hold the slots),
/// a parallel child waiting for a slot, a local child and a background child. `ready` is set once
/// all are there; then the body waits forever, so only a drop ends it.
async fn scope_with_every_kind_of_child(alive: Alive, ready: Flag) -> Result<(), Error> {
    klaw::scope!(limit = 5, |s| {
        for _ in 0..3 {
            s.spawn(alive.pending_child(SLOW_DROP));
        }
        let guard = alive.guard(Duration::ZERO);
        s.spawn_blocking(move || {
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
            std::thread::sleep(ms(60));
            drop(guard);
        });
        let grandchildren = alive.clone();
        s.start(move |started: Ready<()>| async move {
            let _: Result<(), Error> = klaw::scope!(|inner| {
                let guard = grandchildren.guard(Duration::ZERO);
                inner.spawn_blocking(move || {
                    while !klaw::cancel::is_cancelled() {
                        std::thread::sleep(ms(1));
                    }
                    std::thread::sleep(ms(40));
                    drop(guard);
                });
                started.ready(());
                pending::<()>().await;
                Ok(())
            });
        })
        .await?;
        s.spawn(alive.pending_child(SLOW_DROP)); // waits for a slot
        s.spawn_local(alive.pending_child(SLOW_DROP));
        s.spawn_background(alive.pending_child(SLOW_DROP));
        ready.set();
        pending::<()>().await;
        Ok(())
    })
}

/// Polls `future` on this thread until `done()` or it completes (a busy loop of `poll_once`s
/// under `Runtime::block_on`, so klaw's runtime is current for its first poll, but no klaw frame
/// is), and gives it back unfinished.
fn poll_until<F: Future + Unpin>(rt: &klaw::Runtime, mut future: F, done: impl Fn() -> bool) -> F {
    rt.block_on(async {
        while !done() {
            assert!(futures_lite::future::poll_once(&mut future).await.is_none(), "it ended");
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    future
}

// ---- 1. Foreign blocking helpers in a cancelled blocking task --------------------------------

/// book/src/cancellation.md: a region returns at its own deadline, and "a bounded last step such
/// as `block_on(move_on_after(..))` ends by its own deadline" in a cancelled blocking closure.
/// The docs name klaw's `block_on`; a tokio user reaches for `futures::executor::block_on` or
/// `Handle::block_on` there, and expects the same: nothing can drop the region on the task's
/// behalf while the helper blocks the closure, so the region must return, not wait to be dropped.
#[test]
fn a_region_under_futures_lite_block_on_in_a_cancelled_blocking_task_returns_at_its_deadline() {
    within(LIMIT, || {
        let rt = runtime(1);
        let (started, returned) = (Flag::default(), Flag::default());
        let (running, region_returned) = (started.clone(), returned.clone());
        let handle = rt.spawn_blocking(move || {
            running.set();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
            let began = std::time::Instant::now();
            let outcome =
                futures_lite::future::block_on(klaw::cancel::move_on_after(ms(5), pending::<()>()));
            // At its deadline: not cut short (by the task's cancel, say), and not left waiting.
            if outcome.is_none() && began.elapsed() >= ms(5) {
                region_returned.set();
            }
            outcome
        });
        // Cancels once the closure runs: a job cancelled while still queued is withdrawn and
        // never runs, and there would be no region to return.
        wait_for("the closure started", || started.is_set());
        handle.cancel("stop");
        let outcome = rt.block_on(handle);
        assert!(matches!(outcome, Err(TaskError::Cancelled(_))), "{outcome:?}");
        assert!(
            returned.is_set(),
            "the handle resolved before the region under block_on returned at its deadline"
        );
    });
}

/// The same with a tokio current-thread runtime's `block_on` and `fail_after`.
#[test]
fn a_region_under_a_tokio_block_on_in_a_cancelled_blocking_child_returns_at_its_deadline() {
    within(LIMIT, || {
        let rt = runtime(2);
        let (result, step) = last_step_of_a_cancelled_blocking_child(&rt, || {
            tokio_current_thread().block_on(klaw::cancel::fail_after(ms(5), pending::<()>()))
        });
        assert!(
            matches!(result, Err(Error::Task { error: TaskError::Cancelled(_), .. })),
            "{result:?}"
        );
        let step = step.expect("the bounded last step did not return");
        assert!(step.is_err());
    });
}

/// A scope under `futures_lite`'s `block_on` in a cancelled blocking child, whose local child
/// fails: nothing encloses the nested scope that would drop it, so it must return the failure
/// (as the same scope under klaw's `block_on` does, tests/nursery_across_frames.rs).
#[test]
fn a_failing_scope_under_a_foreign_block_on_in_a_cancelled_blocking_child_returns_it() {
    within(LIMIT, || {
        let rt = runtime(2);
        let (_, step) = last_step_of_a_cancelled_blocking_child(&rt, || {
            let inner: Result<(), Error> = futures_lite::future::block_on(async {
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

/// A scope whose body awaits its local child, under a tokio `block_on` in a blocking task that
/// was cancelled: nothing encloses the scope that would drop it, so it must run to its end.
#[test]
fn a_scope_awaiting_its_child_under_a_foreign_block_on_in_a_cancelled_blocking_task_returns() {
    within(LIMIT, || {
        let rt = runtime(2);
        let (started, returned) = (Flag::default(), Flag::default());
        let (running, scope_returned) = (started.clone(), returned.clone());
        let handle = rt.spawn_blocking(move || {
            running.set();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
            let result = tokio_current_thread().block_on(async {
                klaw::scope!(|s| {
                    let child = s.spawn_local(async {
                        klaw::time::sleep(ms(5)).await;
                        21
                    });
                    Ok(child.await? * 2)
                })
            });
            scope_returned.set();
            result
        });
        // Cancels once the closure runs: a job cancelled while still queued is withdrawn and
        // never runs, and there would be no scope to return.
        wait_for("the closure started", || started.is_set());
        handle.cancel("stop");
        // The closure's value is discarded (the task was cancelled); it must end.
        let outcome = rt.block_on(handle);
        assert!(matches!(outcome, Err(TaskError::Cancelled(_))), "{outcome:?}");
        assert!(returned.is_set(), "the handle resolved before the scope under block_on returned");
    });
}

// ---- 2. Dropped by a foreign executor, on the thread that polled it or another -------------

/// A scope with every kind of child, polled under `Runtime::block_on` (klaw's runtime current, no
/// klaw frame), then moved to another thread and dropped there: that drop blocks until every
/// child, waiting, blocking, local, background and started ones included, has ended.
#[test]
fn a_scope_moved_to_another_thread_and_dropped_there_blocks_until_every_child_ended() {
    within(LIMIT, || {
        let rt = runtime(2);
        let (alive, ready) = (Alive::default(), Flag::default());
        let scope = Box::pin(scope_with_every_kind_of_child(alive.clone(), ready.clone()));
        let scope = poll_until(&rt, scope, || ready.is_set());
        assert!(alive.count() >= 5, "{} alive", alive.count());
        let dropper = std::thread::spawn(move || {
            drop(scope);
            alive.count()
        });
        assert_eq!(dropper.join().unwrap(), 0, "the drop on another thread detached children");
    });
}

/// The same scope polled by a tokio current-thread runtime and dropped by `tokio::time::timeout`:
/// when `timeout` returns `Elapsed`, every child has ended.
#[test]
fn a_scope_dropped_by_tokio_timeout_has_ended_every_kind_of_child() {
    within(LIMIT, || {
        let rt = runtime(2);
        let (alive, ready) = (Alive::default(), Flag::default());
        let children = alive.clone();
        rt.block_on(async move {
            let scope = scope_with_every_kind_of_child(children, ready.clone());
            let outcome = tokio_current_thread()
                .block_on(async { tokio::time::timeout(common::secs(1), scope).await });
            assert!(outcome.is_err(), "{outcome:?}");
            assert!(ready.is_set(), "the children started before the timeout");
            assert_eq!(alive.count(), 0, "tokio's timeout detached the scope's children");
        });
    });
}

/// A scope polled first under `Runtime::block_on`, then spawned on a tokio current-thread runtime
/// that runs on a thread of its own, and that runtime shut down (`shutdown_timeout`): tokio drops
/// the future there, and that drop blocks until the children have ended, so when the shutdown
/// returns nothing is alive.
#[test]
fn a_scope_moved_into_a_tokio_runtime_is_waited_for_when_that_runtime_shuts_down() {
    within(LIMIT, || {
        let rt = runtime(2);
        let (alive, ready) = (Alive::default(), Flag::default());
        let scope = Box::pin(scope_with_every_kind_of_child(alive.clone(), ready.clone()));
        let scope = poll_until(&rt, scope, || ready.is_set());
        let counted = alive.clone();
        let after_shutdown = std::thread::spawn(move || {
            let tokio_rt = tokio_current_thread();
            let polled = Flag::default();
            let seen = polled.clone();
            let _join = tokio_rt.spawn(async move {
                seen.set();
                let _ = scope.await;
            });
            tokio_rt.block_on(async { tokio::time::sleep(ms(20)).await });
            assert!(polled.is_set());
            tokio_rt.shutdown_timeout(Duration::ZERO);
            counted.count()
        });
        assert_eq!(after_shutdown.join().unwrap(), 0, "tokio's shutdown detached the children");
    });
}

/// A scope run as a task of a multi-thread tokio runtime (feature `tokio`: the facade's tests
/// have tokio's multi-thread scheduler only then), after its first poll under klaw's
/// `block_on`; the tokio runtime is dropped: the drop returns only once every child has ended.
#[cfg(feature = "tokio")]
#[test]
fn a_scope_moved_into_a_multi_thread_tokio_runtime_is_waited_for_when_it_is_dropped() {
    within(LIMIT, || {
        let rt = runtime(2);
        let (alive, ready) = (Alive::default(), Flag::default());
        let scope = Box::pin(scope_with_every_kind_of_child(alive.clone(), ready.clone()));
        let scope = poll_until(&rt, scope, || ready.is_set());
        let tokio_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let polled = Flag::default();
        let seen = polled.clone();
        let _join = tokio_rt.spawn(async move {
            seen.set();
            let _ = scope.await;
        });
        common::wait_for("tokio polled the scope", || polled.is_set());
        drop(tokio_rt);
        assert_eq!(alive.count(), 0, "the tokio runtime's drop detached the children");
    });
}

/// A scope that a klaw task polled and then returned as its output (the rustdoc of `scope_with`:
/// it "takes its children with it [...] whoever holds it then waits for them"). Dropped outside
/// any task, the drop blocks until they have ended; dropped inside another task, that task's
/// handle resolves only after them.
#[test]
#[allow(clippy::async_yields_async)] // the task returns the scope future it polled: the case
fn a_scope_returned_by_the_task_that_polled_it_is_waited_for_by_whoever_drops_it() {
    within(LIMIT, || {
        let rt = runtime(2);
        for inside_a_task in [false, true] {
            let (alive, ready) = (Alive::default(), Flag::default());
            let (children, started) = (alive.clone(), ready.clone());
            let moved = rt
                .block_on(rt.spawn(async move {
                    let mut scope =
                        Box::pin(scope_with_every_kind_of_child(children, started.clone()));
                    while !started.is_set() {
                        assert!(futures_lite::future::poll_once(&mut scope).await.is_none());
                        klaw::time::sleep(ms(1)).await;
                    }
                    scope
                }))
                .map_err(|error| format!("{error:?}"))
                .unwrap();
            assert!(ready.is_set());
            if inside_a_task {
                let task = rt.spawn(async move { drop(moved) });
                rt.block_on(task).unwrap();
                assert_eq!(
                    alive.count(),
                    0,
                    "the task that dropped it resolved before its children"
                );
            } else {
                drop(moved);
                assert_eq!(alive.count(), 0, "the drop outside any task detached the children");
            }
        }
    });
}

/// A minimal single-threaded pool, as `futures::executor::LocalPool` is: it polls its futures
/// until none makes progress; dropping it drops what is unfinished.
#[derive(Default)]
struct LocalPool {
    futures: Vec<Pin<Box<dyn Future<Output = ()>>>>,
}

struct Woken(AtomicUsize);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl LocalPool {
    fn spawn(&mut self, future: impl Future<Output = ()> + 'static) {
        self.futures.push(Box::pin(future));
    }

    /// Polls every future until they all wait, for at most `rounds` rounds.
    fn run_until_stalled(&mut self, rounds: usize) {
        let woken = Arc::new(Woken(AtomicUsize::new(1)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..rounds {
            if woken.0.swap(0, SeqCst) == 0 {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            self.futures.retain_mut(|future| future.as_mut().poll(&mut cx).is_pending());
        }
    }
}

/// `scope_with` (a scope given its body as a function) with a blocking and a parallel child,
/// run in the hand-written pool, under `Runtime::block_on`'s context; the pool is dropped with
/// the scope unfinished: the drop blocks until both children have ended.
#[test]
fn a_scope_with_in_a_local_pool_that_is_dropped_blocks_until_its_children_end() {
    within(LIMIT, || {
        let rt = runtime(2);
        let alive = Alive::default();
        let children = alive.clone();
        rt.block_on(async move {
            let mut pool = LocalPool::default();
            let counted = children.clone();
            pool.spawn(async move {
                let _ = scope_with(ScopeOptions::new(), |s| {
                    let guard = counted.guard(Duration::ZERO);
                    s.spawn_blocking(move || {
                        std::thread::sleep(ms(80));
                        drop(guard);
                    });
                    s.spawn(counted.pending_child(SLOW_DROP));
                    Box::pin(async {
                        pending::<()>().await;
                        Ok(())
                    })
                })
                .await;
            });
            pool.run_until_stalled(50);
            assert_eq!(children.count(), 2);
            drop(pool);
            assert_eq!(children.count(), 0, "the pool's drop detached the scope's children");
        });
    });
}

/// A scope with a `timeout` polled by tokio (the deadline is klaw's timer, which works under any
/// executor): it fails with `Elapsed`, and only after its blocking child has returned.
#[test]
fn a_timed_out_scope_polled_by_tokio_returns_elapsed_after_its_children() {
    within(LIMIT, || {
        let rt = runtime(2);
        let alive = Alive::default();
        let children = alive.clone();
        rt.block_on(async move {
            let result: Result<(), Error> = tokio_current_thread().block_on(async {
                klaw::scope!(timeout = "20ms", |s| {
                    let guard = children.guard(Duration::ZERO);
                    s.spawn_blocking(move || {
                        while !klaw::cancel::is_cancelled() {
                            std::thread::sleep(ms(1));
                        }
                        std::thread::sleep(ms(50));
                        drop(guard);
                    });
                    s.spawn(children.pending_child(SLOW_DROP));
                    pending::<()>().await;
                    Ok(())
                })
            });
            assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
            assert_eq!(children.count(), 0, "the scope returned before its children ended");
        });
    });
}

// ---- 3. Inline tasks, shields, select! under foreign executors ------------------------------

/// A `BlockingTask` awaited inline, polled by tokio and dropped by a foreign `select` (futures-
/// lite's `or`, whose other branch, a tokio timer, wins once the closure runs): the closure is a
/// descendant of the code awaiting it, so outside any klaw frame the drop blocks until the
/// closure has returned (and the closure hears the cancel). (A closure cancelled before it
/// started never runs, so the timer waits for it to start.)
#[test]
fn an_inline_blocking_task_dropped_by_a_foreign_select_blocks_until_its_closure_returns() {
    within(LIMIT, || {
        let rt = runtime(2);
        let (started, returned) = (Flag::default(), Flag::default());
        let (running, flag) = (started.clone(), returned.clone());
        rt.block_on(async move {
            let task = BlockingTask::new(move || {
                running.set();
                while !klaw::cancel::is_cancelled() {
                    std::thread::sleep(ms(1));
                }
                std::thread::sleep(ms(50));
                flag.set();
            });
            let timer = async {
                while !started.is_set() {
                    tokio::time::sleep(ms(1)).await;
                }
                tokio::time::sleep(ms(10)).await;
                None
            };
            let outcome = tokio_current_thread()
                .block_on(futures_lite::future::or(async { Some(task.await) }, timer));
            assert!(outcome.is_none());
            assert!(returned.is_set(), "the drop returned while the closure still ran");
        });
    });
}

/// An inline `Task` with a timeout, polled by `futures_lite`'s `block_on`, whose body's scope has
/// a blocking child: the timeout (a region) returns `TimedOut` only after that child returned.
#[test]
fn an_inline_tasks_timeout_under_a_foreign_block_on_waits_for_its_scopes_children() {
    within(LIMIT, || {
        let rt = runtime(2);
        let alive = Alive::default();
        let counted = alive.clone();
        rt.block_on(async move {
            let children = counted.clone();
            let outcome = futures_lite::future::block_on(
                Task::new(async move {
                    let _: Result<(), Error> = klaw::scope!(|s| {
                        let guard = children.guard(Duration::ZERO);
                        s.spawn_blocking(move || {
                            std::thread::sleep(ms(60));
                            drop(guard);
                        });
                        pending::<()>().await;
                        Ok(())
                    });
                })
                .timeout(ms(10))
                .into_future(),
            );
            assert!(matches!(outcome, Err(TaskError::TimedOut(_))), "{outcome:?}");
            assert_eq!(counted.count(), 0, "the timeout returned before the blocking child");
        });
    });
}

/// A shield polled by a foreign executor that drops it (book/src/cancellation.md: "A shield
/// cannot stop code that drops the future outright, such as a foreign `select!`"): the shielded
/// future is dropped with it, and a scope inside the shield still waits for its children.
#[test]
fn a_shield_dropped_by_a_foreign_select_drops_its_future_and_waits_for_its_scope() {
    within(LIMIT, || {
        let rt = runtime(2);
        let alive = Alive::default();
        let children = alive.clone();
        rt.block_on(async move {
            let tokio_rt = tokio_current_thread();
            let counted = children.clone();
            tokio_rt.block_on(async move {
                let shielded = klaw::cancel::shield(async move {
                    let _: Result<(), Error> = klaw::scope!(|s| {
                        s.spawn(counted.pending_child(SLOW_DROP));
                        pending::<()>().await;
                        Ok(())
                    });
                });
                // futures-lite's `or`, as a foreign `select!`: the timer wins, the shield is dropped.
                futures_lite::future::or(
                    async move {
                        shielded.await;
                        unreachable!("the shield never ends by itself")
                    },
                    tokio::time::sleep(ms(20)),
                )
                .await;
            });
            assert_eq!(children.count(), 0, "the dropped shield's scope detached its child");
        });
    });
}

/// A `select!` over klaw channels in a task of a tokio runtime, dropped by `tokio::time::timeout`
/// again and again while messages arrive: a `recv` arm that loses (here, to the drop) loses no
/// message (klaw's rule: "a `recv` arm that loses a `select!` loses no message").
#[test]
fn a_select_over_klaw_channels_dropped_by_tokio_timeout_loses_no_message() {
    within(LIMIT, || {
        let tokio_rt = tokio_current_thread();
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let (other_tx, other_rx) = klaw::channel::bounded::<u32>(4);
        let producer = std::thread::spawn(move || {
            for n in 0..500u32 {
                tx.send_blocking(n).unwrap();
                if n % 16 == 0 {
                    std::thread::sleep(ms(5));
                }
            }
        });
        let received = tokio_rt.block_on(async move {
            let mut received = Vec::new();
            let mut timeouts = 0u32;
            loop {
                let step = tokio::time::timeout(ms(1), async {
                    klaw::select! {
                        recv(rx) -> msg => msg.ok(),
                        recv(other_rx) -> msg => msg.ok(),
                    }
                })
                .await;
                match step {
                    Ok(Some(n)) => received.push(n),
                    Ok(None) => break,
                    Err(_) => timeouts += 1,
                }
            }
            drop(other_tx);
            assert!(timeouts > 0, "no select was dropped mid-way");
            received
        });
        producer.join().unwrap();
        assert_eq!(received, (0..500).collect::<Vec<_>>(), "a dropped select lost a message");
    });
}

// tokio aborting a task that runs a klaw scope (`JoinHandle::abort`), translated from tokio's
// `tokio/tests/task_abort.rs` (`test_abort_without_panic_3157`, `test_abort_wakes_task_3964`:
// after an abort, awaiting the `JoinHandle` gives `is_cancelled` once the task's future is
// gone). A scope dropped outside any klaw task or region blocks the dropping thread until its
// children have ended; dropped inside one, it hands them to that frame, which ends only after
// them.

/// A scope with a parallel, a local and a blocking child (60 ms past its cancel), all counted in
/// `alive`; sets `ready` once they are there, then waits forever.
async fn scope_with_three_children(alive: Alive, ready: Flag) {
    let _: Result<(), Error> = klaw::scope!(|s| {
        s.spawn(alive.pending_child(SLOW_DROP));
        s.spawn_local(alive.pending_child(SLOW_DROP));
        let guard = alive.guard(Duration::ZERO);
        s.spawn_blocking(move || {
            let _guard = guard;
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
            std::thread::sleep(ms(60));
        });
        ready.set();
        pending::<()>().await;
        Ok(())
    });
}

/// tokio: `test_abort_without_panic_3157` (abort a sleeping task, then await its handle), where
/// the tokio task is a klaw scope polled on a current-thread tokio runtime inside klaw's
/// `Runtime::block_on` (klaw's runtime current, no klaw frame).
///
/// Checks: the `JoinHandle` gives `is_cancelled`, and by then every child of the scope has ended
/// (tokio drops the future when it runs the aborted task; that drop blocks until the children
/// have ended).
///
/// Breaks if a scope dropped by tokio's abort outside any klaw frame detached its children.
#[test]
fn a_tokio_abort_of_a_task_running_a_scope_completes_after_every_child_ended() {
    within(LIMIT, || {
        let rt = runtime(2);
        let alive = Alive::default();
        let ready = Flag::default();
        let (counted, seen) = (alive.clone(), ready.clone());
        rt.block_on(async move {
            tokio_current_thread().block_on(async move {
                let join = tokio::spawn(scope_with_three_children(counted.clone(), seen.clone()));
                while !seen.is_set() {
                    tokio::time::sleep(ms(1)).await;
                }
                join.abort();
                let joined = join.await;
                assert!(joined.unwrap_err().is_cancelled());
                assert_eq!(counted.count(), 0, "the aborted task's scope left children running");
            });
        });
        assert_eq!(alive.count(), 0);
    });
}

/// The same abort with the tokio runtime driven from inside a klaw task: the scope is dropped in
/// that task's poll, so it hands its children to the task (it does not block), and tokio's
/// `JoinHandle` may complete while they still run. What the contract requires is that the klaw
/// task's own handle resolves only after them.
///
/// Checks: the klaw task's handle resolves after every child of the aborted scope has ended.
///
/// Breaks if a scope dropped by a foreign executor inside a klaw task's poll neither blocks nor
/// is adopted by that task (`current::frame_descendants`).
#[test]
fn a_tokio_abort_inside_a_klaw_task_leaves_the_scopes_children_to_that_task() {
    within(LIMIT, || {
        let rt = runtime(2);
        let alive = Alive::default();
        let counted = alive.clone();
        let task = rt.spawn(async move {
            let ready = Flag::default();
            tokio_current_thread().block_on(async move {
                let join = tokio::spawn(scope_with_three_children(counted, ready.clone()));
                while !ready.is_set() {
                    tokio::time::sleep(ms(1)).await;
                }
                join.abort();
                assert!(join.await.unwrap_err().is_cancelled());
            });
        });
        assert_eq!(rt.block_on(task), Ok(()));
        assert_eq!(alive.count(), 0, "the klaw task resolved while a child of the scope ran");
    });
}
