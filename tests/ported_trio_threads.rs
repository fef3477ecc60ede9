//! Cases left out by the earlier ports of trio's `src/trio/_tests/test_threads.py` (trio at
//! `60d0c2f8`) and of tokio's `tokio/tests/task_blocking.rs` and `rt_common.rs` (tokio at
//! `ea91b33ca`), for klaw's blocking work: `spawn_blocking`, `BlockingTask` (spawned and awaited
//! inline), a scope's blocking children, and the blocking pool. In the style of
//! `ported_trio_tokio_sync_gaps.rs`.
//!
//! How trio's words map to klaw's:
//! - `to_thread.run_sync(f)` is `BlockingTask::new(f).await` (inline) or `s.spawn_blocking(f)`;
//!   klaw has no `abandon_on_cancel=True`: a cancelled closure is handed to the frame around its
//!   await, which ends only after it (book, tasks: "A blocking task awaited inline runs on the
//!   blocking pool as a descendant of the awaiting code").
//! - `from_thread.run(afn)` is `klaw::runtime::block_on(handle.spawn(fut))` with a `Handle` given
//!   to the closure (book, from_tokio: `Handle::current()` is `Err(NoRuntime)` on a pool thread).
//! - `from_thread.check_cancelled()` is `klaw::cancel::is_cancelled()`.
//! - the default `CapacityLimiter` is `max_blocking_threads`; a custom limiter is
//!   `scope!(limit = n)`.
//!
//! Every scenario that could hang runs under a deadline (`timeout = ..` or `common::within`).

mod common;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{
    Alive, DropCount, FetchError, Flag, Gauge, fetch_ids, ms, occupy_worker, pool_threads, runtime,
    secs, until, wait_for, wait_until, within,
};
use klaw::cancel::{Region, Token};
use klaw::task::BlockingTask;
use klaw::{CancelReason, Error, Handle, TaskError};

// ---- Helpers.

/// The panic messages among the errors of a scope's result.
fn panic_messages(error: &Error) -> Vec<String> {
    let errors: Vec<&Error> = match error {
        Error::Scope(scope) => scope.errors().iter().collect(),
        other => vec![other],
    };
    errors
        .into_iter()
        .filter_map(|error| match error {
            Error::Task { error: TaskError::Panicked(message), .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

// ---- 1. Cancelled before it enters.

/// trio `test_run_in_worker_thread_cancellation`, last part: "if we cancel *before* it enters,
/// the entry is itself a cancellation point" -- the function never runs. klaw: a
/// `BlockingTask` turned into its future (`into_future`, what `.await` does first) and not
/// polled for 100 ms, then awaited only inside a region that was cancelled before it started.
///
/// Promise: `InlineBlockingTask` is `#[must_use = "futures do nothing unless awaited"]`, and a
/// cancelled region drops its future unpolled (`Cancellable::poll`). What would break it: the job
/// submitted to the pool in `into_future` rather than at the first poll (as it was: the closure
/// ran though nothing ever awaited it).
#[klaw::test(workers = 2, timeout = "10s")]
async fn an_inline_blocking_task_starts_nothing_before_it_is_awaited() {
    let started = Flag::default();
    let running = started.clone();
    let unpolled = BlockingTask::new(move || running.set()).into_future();
    klaw::time::sleep(ms(100)).await;
    let started_unpolled = started.is_set();
    let region = Region::new();
    assert!(region.token().cancel("cancelled before entry"));
    let outcome = region.run(unpolled).await;
    assert_eq!(outcome, Err(CancelReason::user("cancelled before entry")));
    assert!(!started_unpolled, "the closure started when its future was made, before any poll");
    assert!(!started.is_set(), "a closure awaited only in an already-cancelled region ran");
}

// ---- 2. Cancelled while it runs: the caller waits; what it returns; calling back.

/// trio `test_run_in_worker_thread_cancellation` (`abandon_on_cancel=False`: "It's still
/// running ... Now it exits") and `test_from_thread_host_cancelled` (the thread cancels its own
/// caller's scope through `from_thread_run_sync(cancel_scope.cancel)`, then calls back into trio,
/// which still works). klaw: the closure cancels its caller's region through a token, hears it
/// (`is_cancelled()`), calls back into the runtime through a `Handle` (a task spawned there is
/// not the region's, so it runs), runs 50 ms more and returns a value.
///
/// Promise: book, scopes: a region "returns only after every descendant it started has ended",
/// "A blocking child ends when its closure returns"; book, tasks: a dropped inline await cancels
/// the closure "(`is_cancelled()` turns true in it)"; a value that lost to a cancel is dropped
/// once (runner.rs `decide_by_output`, before the task ends). What would break it: the region
/// returning while the closure runs (a missed `hand_over`); the cancel never reaching the closure;
/// the discarded value kept in the task's core past the region's return, or dropped twice; a
/// `Handle::spawn` from a cancelled closure refused.
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_closure_that_cancels_its_caller_runs_to_its_end_and_can_still_call_back() {
    let handle = Handle::current().unwrap();
    let drops = DropCount::default();
    let value = drops.clone();
    let (heard, done) = (Flag::default(), Flag::default());
    let (closure_heard, closure_done) = (heard.clone(), done.clone());
    let called_back = Arc::new(Mutex::new(None));
    let answer = called_back.clone();
    let region = Region::new();
    let token = region.token();
    let outcome = region
        .run(async move {
            BlockingTask::new(move || {
                token.cancel("cancelled from its own closure");
                if common::block_until_cancelled(secs(5)) {
                    closure_heard.set();
                }
                let back = klaw::runtime::block_on(handle.spawn(async { 6 * 7 }));
                *answer.lock().unwrap() = Some(back);
                std::thread::sleep(ms(50));
                closure_done.set();
                value.value()
            })
            .await
        })
        .await;
    let (done_then, drops_then) = (done.is_set(), drops.get());
    match outcome {
        Err(reason) => assert_eq!(reason, CancelReason::user("cancelled from its own closure")),
        Ok(_) => panic!("the region was cancelled before the closure returned"),
    }
    assert!(done_then, "the region returned while its closure still ran");
    assert!(heard.is_set(), "the closure never heard its caller's cancellation");
    assert_eq!(*called_back.lock().unwrap(), Some(Ok(42)), "the call back into the runtime");
    assert_eq!(drops_then, 1, "the discarded value is dropped once, before the region returns");
}

// ---- 3. A panic after the cancel.

/// trio `test_run_in_worker_thread` (an exception in the thread reaches the caller) combined with
/// a cancel that comes first: `select!` takes another arm while the closure runs, the closure
/// hears it and panics. klaw hands the closure to the scope around the `select!`.
///
/// Promise: book, tasks: "the region, scope or task around the await ends only after the closure
/// has returned, and a failure the closure returns then is theirs to report"; book, scopes:
/// "Nothing that failed is lost". What would break it: the raced panic dropped with the
/// `TaskHandle` inside the dropped future, or logged instead of handed to the scope
/// (`AwaitedBy::raced`, inline_blocking.rs); the scope returning before the closure.
#[klaw::test(workers = 2, timeout = "10s")]
async fn a_closure_that_panics_after_select_dropped_its_await_fails_the_enclosing_scope() {
    let alive = Alive::default();
    let (started, heard, went_on) = (Flag::default(), Flag::default(), Flag::default());
    let result: Result<(), Error> = klaw::scope!(|_s| {
        let guard = alive.guard(Duration::ZERO);
        let (running, hearing) = (started.clone(), heard.clone());
        let closure = async move {
            BlockingTask::new(move || {
                let _guard = guard;
                running.set();
                let cancelled = common::block_until_cancelled(secs(5));
                std::thread::sleep(ms(50));
                if cancelled {
                    hearing.set();
                    panic!("late boom");
                }
            })
            .await
        };
        klaw::select! {
            closure -> _ => {},
            until(|| started.is_set()) -> _ => {},
        }
        went_on.set();
        Ok(())
    });
    assert!(went_on.is_set(), "the body went on after the select");
    assert_eq!(alive.count(), 0, "the scope returned while the dropped closure still ran");
    assert!(heard.is_set(), "the closure never heard that its await was dropped");
    let error = result.expect_err("the closure's panic must fail the scope");
    assert_eq!(panic_messages(&error), ["late boom"], "{error:?}");
}

// ---- 4. The thread limit, with cancellations.

/// trio `test_run_in_worker_thread_limiter` with `cancel=True` and the default limiter: `2*MAX`
/// calls, each thread cancelling its own caller first; "the cancelled tasks don't release the
/// semaphore", only MAX threads ever run, and every call runs. klaw: `max_blocking_threads(3)`,
/// six inline closures each in its own region, each cancelling that region once it runs and
/// then ignoring the cancel until a gate opens; two more queued behind them and withdrawn by a
/// handle's cancel while every thread is held.
///
/// Promise: book, tasks: "past the bound, closures wait in a queue. A queued closure that is
/// cancelled never runs, and its handle resolves at once"; a cancelled running closure still
/// holds its thread (the pool cannot interrupt it). What would break it: a cancelled running job
/// counted as a free thread (a fourth closure starts, or a fourth thread is made); a withdrawn
/// job's hole confusing `JobQueue::pop` (blocking.rs) so a waiting closure is skipped or
/// run twice; a region that returns before its closure.
#[test]
fn the_thread_bound_holds_while_running_closures_are_cancelled_and_queued_ones_withdrawn() {
    within(secs(30), || {
        const MAX: usize = 3;
        let rt = klaw::Runtime::builder()
            .workers(2)
            .max_blocking_threads(MAX)
            .thread_name("ptt4")
            .build()
            .unwrap();
        let gauge = Gauge::default();
        let parked = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Flag::default();
        let callers: Vec<_> = (0..2 * MAX)
            .map(|_| {
                let (gauge, parked, ran, gate) =
                    (gauge.clone(), parked.clone(), ran.clone(), gate.clone());
                rt.spawn(async move {
                    let done = Flag::default();
                    let finished = done.clone();
                    let region = Region::new();
                    let token: Token = region.token();
                    let outcome = region
                        .run(async move {
                            BlockingTask::new(move || {
                                token.cancel("the closure cancels its caller");
                                gauge.enter();
                                ran.fetch_add(1, SeqCst);
                                parked.fetch_add(1, SeqCst);
                                wait_until(secs(10), || gate.is_set()); // ignores the cancel
                                parked.fetch_sub(1, SeqCst);
                                gauge.leave();
                                finished.set();
                            })
                            .await
                        })
                        .await;
                    (outcome.is_err(), done.is_set())
                })
            })
            .collect();
        wait_for("MAX closures hold every thread", || parked.load(SeqCst) == MAX);
        let never = Flag::default();
        for _ in 0..2 {
            let body = never.clone();
            let queued = rt.spawn_blocking(move || body.set());
            assert!(queued.cancel("not needed"));
            assert!(matches!(rt.block_on(queued), Err(TaskError::Cancelled(_))));
        }
        std::thread::sleep(ms(100));
        assert_eq!(parked.load(SeqCst), MAX, "a closure got past the bound");
        assert!(pool_threads("ptt4") <= MAX, "more pool threads than the bound");
        gate.set();
        for (i, caller) in callers.into_iter().enumerate() {
            assert_eq!(rt.block_on(caller), Ok((true, true)), "caller {i}: (cancelled, waited)");
        }
        assert_eq!(ran.load(SeqCst), 2 * MAX, "every call ran once");
        assert_eq!(gauge.most(), MAX);
        assert!(!never.is_set(), "a withdrawn closure ran");
    });
}

/// trio `test_run_in_worker_thread_limiter` with a custom `CapacityLimiter(MAX)` and
/// `cancel=True`: a cancelled call keeps its token until its thread is done. klaw's limiter is
/// `scope!(limit = n)`: its two running blocking children are cancelled through their handles
/// while they ignore it; no third child may start until they return.
///
/// Promise: book, scopes: "A blocking child holds its slot while it runs on the blocking pool";
/// runtime/waiting.rs `SlotHeld`: the slot goes back when the child has ended. What would break
/// it: the slot given back when the cancel decides the outcome (or when the handle resolves)
/// rather than when the closure returns: a third child runs beside the cancelled two.
#[klaw::test(workers = 2, max_blocking_threads = 8, timeout = "20s")]
async fn a_cancelled_blocking_child_keeps_its_limit_slot_until_its_closure_returns() {
    let gauge = Gauge::default();
    let parked = Arc::new(AtomicUsize::new(0));
    let gate = Flag::default();
    let (during, outcomes) = klaw::scope!(limit = 2, |s| {
        let children: Vec<_> = (0..4)
            .map(|_| {
                let (gauge, parked, gate) = (gauge.clone(), parked.clone(), gate.clone());
                s.spawn_blocking(move || {
                    gauge.enter();
                    parked.fetch_add(1, SeqCst);
                    wait_until(secs(10), || gate.is_set()); // ignores the cancel
                    parked.fetch_sub(1, SeqCst);
                    gauge.leave();
                })
            })
            .collect();
        until(|| parked.load(SeqCst) == 2).await;
        for child in &children[..2] {
            assert!(child.cancel("stop"));
        }
        klaw::time::sleep(ms(100)).await;
        let during = gauge.most();
        gate.set();
        let mut outcomes = Vec::new();
        for child in children {
            outcomes.push(child.await);
        }
        Ok((during, outcomes))
    })
    .unwrap();
    assert_eq!(during, 2, "a waiting child started while the cancelled two still ran");
    for outcome in &outcomes[..2] {
        assert!(
            matches!(outcome, Err(Error::Task { error: TaskError::Cancelled(_), .. })),
            "{outcome:?}"
        );
    }
    for outcome in &outcomes[2..] {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    assert_eq!(gauge.most(), 2);
}

// ---- 5. Calling back into the runtime.

/// trio `test_recursive_to_thread` (a thread calls back into trio, which runs another thread)
/// and `test_trio_from_thread_run` (the record shows the thread, then trio). klaw: a closure,
/// given a `Handle`, runs a task with `klaw::runtime::block_on(handle.spawn(..))`; the task finds
/// its runtime and awaits a second closure inline, which must run on the pool's other thread.
///
/// Promise: book, tasks: a closure that blocks until another closure it queued has run "needs a
/// second thread" -- with a bound of two it has one; book, from_tokio: pass the closure a
/// `Handle` to spawn from it. What would break it: `submit` not starting a second thread while
/// the only one is busy (`queue.len() > idle` at blocking.rs) -- a hang; the task spawned
/// from a pool thread not seeing its runtime (`Handle::current()` inside it).
#[klaw::test(workers = 2, max_blocking_threads = 2, timeout = "10s")]
async fn a_closure_calling_back_into_the_runtime_gets_another_closure_run_on_another_thread() {
    let handle = Handle::current().unwrap();
    let record = Arc::new(Mutex::new(Vec::new()));
    let rec = record.clone();
    let (outer, inner) = BlockingTask::new(move || {
        rec.lock().unwrap().push("in the closure");
        let here = std::thread::current().id();
        let back_in = rec.clone();
        let inner = klaw::runtime::block_on(handle.spawn(async move {
            let in_runtime = Handle::current().is_ok();
            back_in.lock().unwrap().push("back in the runtime");
            let there = BlockingTask::new(|| std::thread::current().id()).await;
            (in_runtime, there)
        }));
        (here, inner)
    })
    .await
    .expect("the outer closure ran");
    let (in_runtime, there) = inner.expect("the task spawned from the closure ran");
    assert!(in_runtime, "a task spawned from a closure did not find its runtime");
    let there = there.expect("the inner closure ran");
    assert_ne!(outer, there, "both closures ran on one thread");
    assert_eq!(*record.lock().unwrap(), ["in the closure", "back in the runtime"]);
}

/// trio `test_reentry_doesnt_deadlock` (GH-2827: four tasks loop `to_thread(from_thread_run,
/// sleep, 0)` until `move_on_after(2)`; the failure mode is a hang). klaw: four scope children
/// loop on a closure that runs a checkpoint task through `block_on(handle.spawn(..))`, twice as
/// many callers as pool threads, until a 300 ms region deadline drops the scope mid-call.
///
/// Promise: book, scopes: a region returns "only after every descendant it started has ended",
/// however the cancellation arrived; book, tasks: the bound holds. What would break it: a queued
/// job withdrawn while its await is being handed over (the frame then waits for an `ended` that
/// never comes: a hang); a closure still running after the region returned; more closures at
/// once than the bound.
#[klaw::test(workers = 2, max_blocking_threads = 2, timeout = "30s")]
async fn closures_reentering_the_runtime_in_a_loop_all_end_with_their_region() {
    let handle = Handle::current().unwrap();
    let alive = Alive::default();
    let gauge = Gauge::default();
    let rounds = Arc::new(AtomicUsize::new(0));
    let (h, a, g, r) = (handle.clone(), alive.clone(), gauge.clone(), rounds.clone());
    let outcome = klaw::cancel::move_on_after(ms(300), async move {
        let result: Result<(), Error> = klaw::scope!(|s| {
            for _ in 0..4 {
                let (h, a, g, r) = (h.clone(), a.clone(), g.clone(), r.clone());
                s.spawn(async move {
                    while !klaw::cancel::is_cancelled() {
                        let (h, a, g, r) = (h.clone(), a.clone(), g.clone(), r.clone());
                        let _ = BlockingTask::new(move || {
                            let _alive = a.guard(Duration::ZERO);
                            let _inside = g.inside(Duration::ZERO);
                            let _ = klaw::runtime::block_on(h.spawn(klaw::cancel::checkpoint()));
                            r.fetch_add(1, SeqCst);
                        })
                        .await;
                    }
                });
            }
            Ok(())
        });
        result
    })
    .await;
    assert!(outcome.is_none(), "the loops never end by themselves: {outcome:?}");
    assert_eq!(alive.count(), 0, "the region returned while a closure still ran");
    assert!(rounds.load(SeqCst) > 0, "no closure ever called back");
    assert!(gauge.most() <= 2, "{} closures at once past a bound of 2", gauge.most());
}

// ---- 6. Shutdown with closures queued.

/// tokio `rt_common::shutdown_timeout` / `task_blocking` shutdown cases and trio
/// `test_from_thread_run_during_shutdown`, for what the ports leave out: closures *queued* at
/// shutdown that a frame waits for -- one awaited inline by a task, one a scope's blocking child
/// -- behind an occupier that listens for the cancel.
///
/// Promise: book, runtime: shutdown "cancels what is left with `CancelReason::Shutdown`", every
/// task "is cancelled and its handle resolves", the report "counts how every task ended"; book,
/// tasks: a queued closure that is cancelled never runs. What would break it: the two ways a
/// queued job can go (the awaiting frame's drop withdraws it, `BlockingPool::shutdown` drops it,
/// blocking.rs) both ending it (counted twice) or neither (a frame waiting forever);
/// a queued closure run after all.
#[test]
fn shutdown_with_an_inline_and_a_scope_closure_queued_runs_neither_and_counts_each_once() {
    shutdown_with_an_inline_and_a_scope_closure_queued(false);
}

/// The same with both workers busy in a poll that does not return for 300 ms when the shutdown
/// starts, so the two tasks are polled (and their awaits dropped) only after the occupier, which
/// returns on its cancel, has freed the pool's thread.
///
/// What would break it: a shutdown that left a queued closure whose task it cancels to that
/// task's poll (to withdraw it) rather than taking it out before it cancels the running one:
/// the freed thread would start it.
#[test]
fn shutdown_with_closures_queued_runs_neither_while_the_workers_are_busy() {
    shutdown_with_an_inline_and_a_scope_closure_queued(true);
}

fn shutdown_with_an_inline_and_a_scope_closure_queued(busy_workers: bool) {
    within(secs(30), move || {
        let rt = klaw::Runtime::builder().workers(2).max_blocking_threads(1).build().unwrap();
        let (started_tx, started) = mpsc::channel();
        let occupier = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            common::block_until_cancelled(secs(10))
        });
        started.recv_timeout(secs(10)).expect("the occupier started");
        let (inline_ran, child_ran) = (Flag::default(), Flag::default());
        let awaiting = {
            let ran = inline_ran.clone();
            rt.spawn(async move { BlockingTask::new(move || ran.set()).await.is_ok() })
        };
        let scoped = {
            let ran = child_ran.clone();
            rt.spawn(async move {
                let result: Result<(), Error> = klaw::scope!(|s| {
                    let _child = s.spawn_blocking(move || ran.set());
                    std::future::pending::<()>().await;
                    Ok(())
                });
                result.is_ok()
            })
        };
        // The occupier, the two tasks and their two queued jobs.
        wait_for("both closures are queued", || rt.live_tasks() == 5);
        let mut hogs = Vec::new();
        if busy_workers {
            std::thread::sleep(ms(20)); // both tasks wait now
            let hogging = Arc::new(AtomicUsize::new(0));
            for _ in 0..2 {
                let hogging = hogging.clone();
                hogs.push(rt.spawn(async move {
                    hogging.fetch_add(1, SeqCst);
                    std::thread::sleep(ms(300));
                }));
            }
            wait_for("both workers to be busy", || hogging.load(SeqCst) == 2);
        }
        let report = rt.shutdown(Duration::ZERO);
        let total = report.succeeded
            + report.failed
            + report.cancelled
            + report.panicked
            + report.timed_out
            + report.abandoned;
        let expected = 5 + hogs.len() as u64;
        assert_eq!((total, report.abandoned), (expected, 0), "{report:?}");
        assert!(report.cancelled >= 5, "{report:?}");
        let shut = Err(TaskError::Cancelled(CancelReason::Shutdown));
        assert_eq!(klaw::runtime::block_on(awaiting), shut);
        assert_eq!(klaw::runtime::block_on(scoped), shut);
        assert!(matches!(klaw::runtime::block_on(occupier), Err(TaskError::Cancelled(_))));
        assert!(!inline_ran.is_set(), "the queued inline closure ran: {report}");
        assert!(!child_ran.is_set(), "the queued blocking child ran: {report}");
    });
}

// ---- 7. A failure read by nobody.

/// trio `test_run_in_worker_thread` (the thread's exception is raised in the caller) where the
/// caller's scope is cancelled after the thread failed and before the caller read the result:
/// with `abandon_on_cancel=False` trio still raises the thread's exception (its outcome is
/// delivered), so the nursery sees it. klaw: the closure returns `Err` while the only worker is
/// held, then the region around its await is cancelled; the region drops the await unpolled.
///
/// Promise: book, scopes: "Nothing that failed is lost ... every failure a body actually
/// produced is in the scope's result"; the inline closure is "a descendant of the awaiting code"
/// whose later failure is "theirs to report". What would break it: `Drop for
/// InlineBlockingTask` handing over only a closure still running, so a failure published before
/// the drop stayed in the `TaskHandle`, whose drop only logs it, and the scope returned `Ok(())`
/// (as it did).
#[test]
fn an_inline_closures_failure_is_not_lost_when_its_await_is_dropped_unread() {
    let result = dropped_unread(|running, gate_rx, token_tx| async move {
        let result: Result<(), Error> = klaw::scope!(|_s| {
            let region = Region::new();
            token_tx.send(region.token()).unwrap();
            let _ = region
                .run(async move {
                    BlockingTask::fallible(move || {
                        running.set();
                        let _ = gate_rx.recv_timeout(secs(10));
                        Err::<(), _>(FetchError(9))
                    })
                    .await
                })
                .await;
            Ok(())
        });
        result
    });
    let error = result.expect_err("the closure's failure must reach the scope");
    assert_eq!(fetch_ids(&error), [9], "{error:?}");
}

/// The scenario of an inline await dropped after its closure ended, unread, on a runtime of one
/// worker: `make(running, gate, token_to)` is the task, whose closure sets `running`, waits for
/// `gate`, and whose region's token goes to `token_to`. Once the closure runs, the worker is held,
/// the gate opened, and (the closure ended, its output published) the region cancelled; then the
/// worker is let go, so the region drops the await unpolled. Returns the task's output.
fn dropped_unread<T, F>(
    make: impl FnOnce(Flag, mpsc::Receiver<()>, mpsc::Sender<Token>) -> F + Send + 'static,
) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    within(secs(30), || {
        let rt = runtime(1);
        let started = Flag::default();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (token_tx, token_rx) = mpsc::channel::<Token>();
        let task = rt.spawn(make(started.clone(), gate_rx, token_tx));
        let token = token_rx.recv_timeout(secs(10)).expect("the region exists");
        wait_for("the closure runs", || started.is_set());
        let (release, blocker) = occupy_worker(&rt);
        gate_tx.send(()).unwrap();
        // The task and the blocker are left: the closure has ended, its output published.
        wait_for("the closure has ended", || rt.live_tasks() == 2);
        assert!(token.cancel("stop"));
        release.send(()).unwrap();
        assert_eq!(rt.block_on(blocker), Ok(()));
        rt.block_on(task).expect("the task ran")
    })
}

// ---- 8. What a dropped await leaves.

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("drop boom");
    }
}

/// As `an_inline_closures_failure_is_not_lost_when_its_await_is_dropped_unread`, but the closure
/// returns a value whose destructor panics, and nobody reads it. Checks: the value is dropped
/// with its panic contained, and the region's task ends as cancelled, not `Panicked`. What would
/// break it: the inline future's drop taking every unread output to look for a failure, and so
/// dropping a value bare, where the handle's own drop contains its destructor's panic.
#[test]
fn an_unread_value_whose_destructor_panics_is_dropped_contained() {
    let cancelled = dropped_unread(|running, gate_rx, token_tx| async move {
        let region = Region::new();
        token_tx.send(region.token()).unwrap();
        let outcome = region
            .run(async move {
                let value = BlockingTask::new(move || {
                    running.set();
                    let _ = gate_rx.recv_timeout(secs(10));
                    PanicsOnDrop
                })
                .await;
                std::mem::forget(value); // never reached: the region drops the await
            })
            .await;
        outcome.is_err()
    });
    assert!(cancelled, "the discarded value's destructor escaped");
}

/// Promise: book, scopes: "every failure a body actually produced ... is in the scope's result".
/// The inline closure fails, but its task ends only after a job the closure itself left running
/// (a nested inline await it dropped, handed to the closure's frame). Meanwhile the region around
/// the outer await is cancelled and drops it: the failure is decided, not yet published. Checks:
/// it still reaches the scope's result once it is published. What would break it: the dropped
/// await letting its handle go with the job unfinished, so the failure is only logged.
#[test]
fn an_inline_failure_published_after_its_await_was_dropped_reaches_the_scope() {
    let result = within(secs(30), || {
        let rt = runtime(1);
        // The closure runs its own step on a runtime of its own (a pool thread has none), which
        // outlives it: a runtime dropped in the closure would wait there for the nested job.
        let nested_rt = Arc::new(runtime(1));
        let nested_rt_kept = nested_rt.clone();
        let failed = Flag::default();
        let await_dropped = Flag::default();
        let (nested_gate_tx, nested_gate_rx) = mpsc::channel::<()>();
        let (token_tx, token_rx) = mpsc::channel::<Token>();
        let (closure_failed, dropped) = (failed.clone(), await_dropped.clone());
        let task = rt.spawn(async move {
            let result: Result<(), Error> = klaw::scope!(|_s| {
                let region = Region::new();
                token_tx.send(region.token()).unwrap();
                let job = BlockingTask::fallible(move || {
                    nested_rt.block_on(async move {
                        // Running, then dropped unfinished: the closure's frame waits for it.
                        let (started_tx, started_rx) = mpsc::channel::<()>();
                        let mut nested = BlockingTask::new(move || {
                            started_tx.send(()).unwrap();
                            let _ = nested_gate_rx.recv_timeout(secs(10));
                        })
                        .into_future();
                        assert!(futures_lite::future::poll_once(&mut nested).await.is_none());
                        started_rx.recv_timeout(secs(10)).expect("the nested job runs");
                    });
                    closure_failed.set();
                    Err::<(), _>(FetchError(9))
                });
                let _ = region.run(DropThen { inner: Some(job.into_future()), dropped }).await;
                Ok(())
            });
            result
        });
        let token = token_rx.recv_timeout(secs(10)).expect("the region exists");
        wait_for("the closure has failed", || failed.is_set());
        assert!(token.cancel("stop"));
        wait_for("the region dropped the await", || await_dropped.is_set());
        nested_gate_tx.send(()).unwrap();
        let result = rt.block_on(task).expect("the task ran");
        drop(nested_rt_kept);
        result
    });
    let error = result.expect_err("the closure's failure must reach the scope");
    assert_eq!(fetch_ids(&error), [9], "{error:?}");
}

/// A future that sets `dropped` once `inner` has been dropped.
struct DropThen<F> {
    inner: Option<F>,
    dropped: Flag,
}

impl<F: std::future::Future + Unpin> std::future::Future for DropThen<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        std::pin::Pin::new(self.inner.as_mut().expect("polled after it ended")).poll(cx)
    }
}

impl<F> Drop for DropThen<F> {
    fn drop(&mut self) {
        self.inner.take();
        self.dropped.set();
    }
}

/// An inline blocking task is `Sync` when its output is: a future started at its first poll
/// keeps what starts it where only `&mut` reaches it.
#[test]
fn an_inline_blocking_task_is_sync_when_its_output_is() {
    fn sync<T: Sync>(_: &T) {}
    let inline = BlockingTask::new(|| 1u8).into_future();
    sync(&inline);
}
