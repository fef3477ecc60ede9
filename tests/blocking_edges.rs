//! Blocking work at its edges: the bounded pool (its limit, its idle threads retiring, a thread
//! kept through a panic), cancelling queued and running closures (handle, scope, region,
//! deadline, shutdown) and what `klaw::cancel::is_cancelled()` says meanwhile, what happens to a
//! closure's captures and value nobody awaits, klaw's per-task thread state on a pool thread, and
//! the blocking helpers used from blocking code.
//!
//! The contract: book/src/tasks.md "Blocking work", book/src/runtime.md "Blocking work" and
//! "Shutting down", book/src/cancellation.md "Code that does not `.await`".

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{
    DEADLINE, DropCount, Flag, Gauge, in_task, ms, pool_threads, secs, until, wait_for, wait_until,
    with_deadline, within,
};
use klaw::task::{BlockingTask, ExitReason};
use klaw::{CancelReason, Error, TaskError};

// ---- helpers ---------------------------------------------------------------------------------

/// A runtime whose blocking threads are named `<prefix>-blocking-<n>`, so they can be counted.
fn pool(prefix: &'static str, limit: usize) -> klaw::Runtime {
    klaw::Runtime::builder()
        .workers(2)
        .max_blocking_threads(limit)
        .thread_name(prefix)
        .build()
        .expect("runtime")
}

/// A closure that blocks its pool thread until `release` is sent (or 10 s pass), reporting when
/// it has started: it holds the pool's only thread for as long as a test needs.
fn occupier(rt: &klaw::Runtime) -> (mpsc::Sender<()>, klaw::TaskHandle<()>) {
    let (release, wait) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel::<()>();
    let handle = rt.spawn_blocking(move || {
        started.send(()).unwrap();
        let _ = wait.recv_timeout(secs(10));
    });
    is_started.recv_timeout(secs(10)).expect("the occupier started");
    (release, handle)
}

/// A value whose drop panics: the pool must contain it.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a destructor panicked");
        }
    }
}

// ---- 1. A queued closure that is cancelled -----------------------------------------------------

/// book/src/tasks.md: "past the bound, closures wait in a queue. A queued closure that is
/// cancelled never runs". book/src/runtime.md (shutdown): "Cancelling does not depend on the
/// workers: every task that is not being polled at that moment (queued, waiting, or not started
/// yet) is cancelled and its handle resolves". The docs do not say when the handle of a queued
/// closure resolves after `cancel`; a trio user (whose `to_thread.run_sync` waiting for its
/// `CapacityLimiter` is cancelled at once) expects it at once, since nothing of it runs: not
/// when some unrelated closure lets a thread go.
#[test]
fn a_cancelled_queued_blocking_job_resolves_without_waiting_for_a_thread() {
    within(secs(20), || {
        let rt = pool("bq1", 1);
        let (release, occupier) = occupier(&rt);
        let ran = Flag::default();
        let body_ran = ran.clone();
        let queued = rt.spawn_blocking(move || body_ran.set());
        assert!(queued.cancel("not needed"));
        let started = Instant::now();
        let outcome = rt.block_on(queued);
        let waited = started.elapsed();
        let _ = release.send(()); // the occupier may have given up waiting already
        assert!(matches!(outcome, Err(TaskError::Cancelled(_))), "{outcome:?}");
        assert!(
            waited < secs(2),
            "the cancelled queued closure's handle resolved only after {waited:?}, when the \
             occupier let its thread go"
        );
        assert_eq!(rt.block_on(occupier), Ok(()));
        assert!(!ran.is_set(), "a queued closure that was cancelled ran");
    });
}

/// Withdrawing a queued closure from anywhere in the queue (its back, its front, its middle,
/// next to another withdrawn one) takes out that one and no other: each cancelled handle resolves
/// at once, cancelled, while the only thread is held, and the rest run afterwards, in the order
/// they were queued.
#[test]
fn queued_blocking_jobs_cancelled_in_any_order_are_withdrawn_and_the_rest_run_in_order() {
    within(secs(20), || {
        let rt = pool("bq2", 1);
        let (release, occupier) = occupier(&rt);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles: Vec<_> = (0..10usize)
            .map(|i| {
                let order = order.clone();
                Some(rt.spawn_blocking(move || order.lock().unwrap().push(i)))
            })
            .collect();
        for i in [9, 0, 5, 4, 6, 8] {
            let handle = handles[i].take().unwrap();
            assert!(handle.cancel("not needed"));
            // At once: the thread is still held (a hang here fails the test at its deadline).
            let outcome = rt.block_on(handle);
            assert!(matches!(outcome, Err(TaskError::Cancelled(_))), "job {i}: {outcome:?}");
        }
        assert!(order.lock().unwrap().is_empty(), "a job ran while the thread was held");
        let _ = release.send(());
        assert_eq!(rt.block_on(occupier), Ok(()));
        for (i, handle) in handles.into_iter().enumerate() {
            if let Some(handle) = handle {
                assert_eq!(rt.block_on(handle), Ok(()), "job {i}");
            }
        }
        assert_eq!(*order.lock().unwrap(), [1, 2, 3, 7]);
        // Queued again after the withdrawals: the queue still works.
        assert_eq!(rt.block_on(rt.spawn_blocking(|| 42)), Ok(42));
    });
}

/// The same through a scope: a scope whose deadline passes while its blocking child waits in
/// the pool's queue (behind a closure of someone else's, which holds the only thread) must
/// return by its deadline: book/src/scopes.md: "A blocking child ends when its closure
/// returns", and this one never runs, so nothing is left to wait for.
#[test]
fn a_timed_out_scope_does_not_wait_for_a_thread_for_its_queued_blocking_child() {
    within(secs(20), || {
        let rt = pool("bq2", 1);
        let (release, occupier) = occupier(&rt);
        let ran = Flag::default();
        let body_ran = ran.clone();
        let started = Instant::now();
        let result = rt.block_on(rt.spawn(async move {
            klaw::scope!(timeout = "20ms", |s| {
                s.spawn_blocking(move || body_ran.set());
                Ok(())
            })
        }));
        let waited = started.elapsed();
        let _ = release.send(()); // the occupier may have given up waiting already
        assert!(matches!(result, Ok(Err(Error::Elapsed(_)))), "{result:?}");
        assert!(
            waited < secs(2),
            "the timed-out scope returned only after {waited:?}, when the pool's thread was free"
        );
        assert_eq!(rt.block_on(occupier), Ok(()));
        assert!(!ran.is_set(), "the queued child of a timed-out scope ran");
    });
}

/// The same for a `BlockingTask` awaited inline in a region whose deadline passes while the
/// closure waits in the pool's queue: book/src/cancellation.md: "A region, like a scope, returns
/// only after everything started inside it has ended"; the closure never starts, so the region
/// returns by its deadline.
#[test]
fn a_region_does_not_wait_for_a_thread_for_its_queued_inline_blocking_task() {
    within(secs(20), || {
        let rt = pool("bq3", 1);
        let (release, occupier) = occupier(&rt);
        let ran = Flag::default();
        let body_ran = ran.clone();
        let started = Instant::now();
        let outcome = rt.block_on(rt.spawn(async move {
            let closure = BlockingTask::new(move || body_ran.set());
            klaw::cancel::move_on_after(ms(20), async move { closure.await }).await
        }));
        let waited = started.elapsed();
        let _ = release.send(()); // the occupier may have given up waiting already
        assert_eq!(outcome, Ok(None));
        assert!(
            waited < secs(2),
            "the region returned only after {waited:?}, when the pool's thread was free"
        );
        assert_eq!(rt.block_on(occupier), Ok(()));
        assert!(!ran.is_set(), "the queued closure of a cancelled region ran");
    });
}

/// A blocking child waiting for a place in `scope!(limit = 1)` (not a task yet) that is
/// cancelled never runs, and its handle resolves without waiting for the place.
#[test]
fn a_blocking_child_waiting_for_the_scopes_limit_is_cancelled_at_once() {
    in_task(|| async move {
        let ran = Flag::default();
        let body_ran = ran.clone();
        let result: Result<(), Error> = klaw::scope!(limit = 1, |s| {
            let (release, wait) = mpsc::channel::<()>();
            let first = s.spawn_blocking(move || {
                let _ = wait.recv_timeout(secs(10));
            });
            let second = s.spawn_blocking(move || body_ran.set());
            assert!(second.cancel("not needed"));
            let started = Instant::now();
            let outcome = second.await;
            let waited = started.elapsed();
            release.send(()).unwrap();
            assert!(
                matches!(outcome, Err(Error::Task { error: TaskError::Cancelled(_), .. })),
                "{outcome:?}"
            );
            assert!(waited < secs(2), "resolved only after {waited:?}");
            first.await?;
            Ok(())
        });
        assert!(result.is_ok(), "{result:?}");
        assert!(!ran.is_set());
    });
}

// ---- 2. The pool's bound ----------------------------------------------------------------------

/// book/src/tasks.md: "The pool is bounded (`Builder::max_blocking_threads`) [...]: past the
/// bound, closures wait in a queue." book/src/scopes.md: blocking children share the runtime's
/// bound. With bounds of 1 and 2, closures from every source (the runtime, a `Handle`, a scope,
/// a `#[klaw::task(blocking)]`, a closure spawning more from a blocking thread) never run more
/// than the bound at once, and the pool never has more threads than that.
fn gauge_step(gauge: &Gauge, step: Duration) -> usize {
    gauge.enter();
    std::thread::sleep(step);
    gauge.leave();
    1
}

#[klaw::task(blocking)]
fn gauged(gauge: Gauge, step: Duration) -> usize {
    gauge_step(&gauge, step)
}

#[test]
fn the_pool_never_runs_more_than_its_limit_of_one_or_two() {
    with_deadline(|| {
        for (limit, prefix) in [(1, "bl1"), (2, "bl2")] {
            let rt = pool(prefix, limit);
            let handle = rt.handle();
            let gauge = Gauge::default();
            let most_threads = Arc::new(AtomicUsize::new(0));
            let sample = {
                let most_threads = most_threads.clone();
                move || {
                    most_threads.fetch_max(pool_threads(prefix), Ordering::SeqCst);
                }
            };
            for _round in 0..10 {
                let mut handles = Vec::new();
                for _ in 0..3 {
                    let (gauge, sample) = (gauge.clone(), sample.clone());
                    handles.push(rt.spawn_blocking(move || {
                        sample();
                        gauge_step(&gauge, ms(1))
                    }));
                }
                let (g, h) = (gauge.clone(), handle.clone());
                let sample_in_nested = sample.clone();
                // A closure that spawns more closures past the bound and does not wait for them.
                let nested = rt.spawn_blocking(move || {
                    g.enter();
                    let children: Vec<_> = (0..3)
                        .map(|_| {
                            let (g, sample) = (g.clone(), sample_in_nested.clone());
                            h.spawn_blocking(move || {
                                sample();
                                g.enter();
                                std::thread::sleep(ms(1));
                                g.leave();
                                1
                            })
                        })
                        .collect();
                    g.leave();
                    children
                });
                let g = gauge.clone();
                let in_scope = rt.spawn(async move {
                    klaw::scope!(|s| {
                        let a = s.spawn(gauged(g.clone(), ms(1)));
                        let b = s.spawn_blocking(move || gauge_step(&g, ms(1)));
                        Ok(a.await? + b.await?)
                    })
                });
                let mut done = common::join_all(&rt, handles).into_iter().sum::<usize>();
                let children = rt.block_on(nested).expect("the nested closure ran");
                done += common::join_all(&rt, children).into_iter().sum::<usize>();
                done += rt.block_on(in_scope).unwrap().expect("the scope succeeded");
                sample();
                assert_eq!(done, 8);
            }
            assert!(gauge.most() >= 1);
            assert!(
                gauge.most() <= limit,
                "{} closures ran at once past a bound of {limit}",
                gauge.most()
            );
            let threads = most_threads.load(Ordering::SeqCst);
            assert!(threads <= limit, "the pool had {threads} threads with a bound of {limit}");
        }
    });
}

// ---- 3. Panics --------------------------------------------------------------------------------

/// book/src/runtime.md: "A panic in a blocking closure, or in the destructor of a closure or
/// value the pool drops (one cancelled while queued, an output discarded after a late cancel),
/// is contained like a panic in an async task: its handle resolves and the pool keeps every one
/// of its threads." With a bound of one, each such panic is followed by a closure that must
/// still run, and the pool never has more than its one thread.
#[test]
fn a_panicking_blocking_job_is_reported_and_the_pool_keeps_its_thread() {
    with_deadline(|| {
        let rt = pool("bp1", 1);
        for round in 0..5 {
            let boom = rt.spawn_blocking(move || -> u32 { panic!("boom {round}") });
            let canceller = boom.task_ref();
            assert_eq!(rt.block_on(boom), Err(TaskError::Panicked(format!("boom {round}"))));
            assert_eq!(canceller.exit_reason(), ExitReason::Panicked);
            assert_eq!(rt.block_on(rt.spawn_blocking(move || round)), Ok(round));
            assert!(pool_threads("bp1") <= 1);
        }
    });
}

#[test]
fn a_panicking_destructor_of_a_cancelled_queued_closure_is_contained() {
    with_deadline(|| {
        let rt = pool("bp2", 1);
        let (release, occupier) = occupier(&rt);
        let bomb = PanicsOnDrop;
        let queued = rt.spawn_blocking(move || {
            let _bomb = &bomb;
        });
        assert!(queued.cancel("not needed"));
        release.send(()).unwrap();
        assert!(matches!(rt.block_on(queued), Err(TaskError::Cancelled(_))));
        assert_eq!(rt.block_on(occupier), Ok(()));
        assert_eq!(rt.block_on(rt.spawn_blocking(|| 5)), Ok(5), "the pool lost its thread");
        assert!(pool_threads("bp2") <= 1);
    });
}

#[test]
fn a_panicking_destructor_of_an_output_discarded_after_a_late_cancel_is_contained() {
    with_deadline(|| {
        let rt = pool("bp3", 1);
        let (started_tx, started) = mpsc::channel();
        let job = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
            PanicsOnDrop
        });
        started.recv_timeout(secs(10)).unwrap();
        assert!(job.cancel("late"));
        assert!(matches!(rt.block_on(job), Err(TaskError::Cancelled(_))));
        assert_eq!(rt.block_on(rt.spawn_blocking(|| 6)), Ok(6), "the pool lost its thread");
        assert!(pool_threads("bp3") <= 1);
    });
}

/// A panicking blocking child of a scope fails the scope with the panic (book/src/scopes.md:
/// "panics propagate as errors, not as lost tasks"), and the siblings see the cancellation.
#[test]
fn a_panicking_blocking_child_fails_its_scope_and_cancels_its_blocking_sibling() {
    in_task(|| async move {
        let (started, heard) = (Flag::default(), Flag::default());
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn_blocking(hears(&started, &heard));
            s.spawn_blocking(move || {
                // Panics only once the sibling runs: a job cancelled while still queued is
                // withdrawn and never runs, so it could not hear anything.
                wait_for("the listening sibling started", || started.is_set());
                panic!("blocking child boom")
            });
            Ok(())
        });
        let text = format!("{result:?}");
        assert!(text.contains("blocking child boom"), "{text}");
        assert!(heard.is_set(), "the blocking sibling never saw the scope's cancellation");
    });
}

// ---- 4. Blocking code spawning blocking code ----------------------------------------------------

/// tokio's `spawn_blocking_from_blocking`: a closure can spawn another (through a `Handle`, as
/// book/src/from_tokio.md says: `Handle::current()` is `Err(NoRuntime)` there) and hand its
/// handle back; past the bound of one, the child waits until the parent has returned, then runs.
#[test]
fn a_blocking_job_can_spawn_blocking_jobs_past_the_limit_without_waiting_for_them() {
    with_deadline(|| {
        let rt = pool("bs1", 1);
        let handle = rt.handle();
        let parent = rt.spawn_blocking(move || {
            assert!(klaw::Handle::current().is_err(), "a pool thread is outside the runtime");
            (0..4).map(|i| handle.spawn_blocking(move || i * 10)).collect::<Vec<_>>()
        });
        let children = rt.block_on(parent).expect("the parent ran");
        assert_eq!(common::join_all(&rt, children), vec![0, 10, 20, 30]);
    });
}

// ---- 5. is_cancelled() -------------------------------------------------------------------------

/// book/src/cancellation.md: "They ask `klaw::cancel::is_cancelled()`, which is true when the
/// task, or an enclosing region up to the nearest shield, is cancelled." A closure that sets
/// `started` first (whoever cancels it waits for that: a job cancelled while still queued is
/// withdrawn and never runs), then asks for up to 5 s and sets `heard` once it hears the
/// cancellation.
fn hears(started: &Flag, heard: &Flag) -> impl FnOnce() + Send + 'static {
    let (started, heard) = (started.clone(), heard.clone());
    move || {
        started.set();
        let since = Instant::now();
        while since.elapsed() < secs(5) {
            if klaw::cancel::is_cancelled() {
                heard.set();
                return;
            }
            std::thread::sleep(ms(1));
        }
    }
}

#[test]
fn is_cancelled_turns_true_when_a_sibling_fails() {
    in_task(|| async move {
        let (started, heard) = (Flag::default(), Flag::default());
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn_blocking(hears(&started, &heard));
            let running = started.clone();
            s.spawn(klaw::Task::fallible(async move {
                // Fails only once the closure runs, so that it is there to hear it.
                until(|| running.is_set()).await;
                Err::<(), _>(common::FetchError(3))
            }));
            Ok(())
        });
        assert_eq!(common::fetch_ids(&result.unwrap_err()), vec![3]);
        assert!(heard.is_set());
    });
}

#[test]
fn is_cancelled_turns_true_at_the_scopes_deadline() {
    in_task(|| async move {
        // A deadline that passes before the pool picks the job up withdraws it: that attempt
        // shows nothing (the closure never runs), and the next gives the pool longer.
        let heard = common::until_a_deadline_finds_it_running(|timeout| async move {
            let (started, heard) = (Flag::default(), Flag::default());
            let deadline = klaw::time::now() + timeout;
            let result: Result<(), Error> = klaw::scope!(deadline = deadline, |s| {
                s.spawn_blocking(hears(&started, &heard));
                Ok(())
            });
            assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
            started.is_set().then(|| heard.is_set())
        })
        .await;
        assert!(heard, "the closure ran past its scope's deadline without hearing it");
    });
}

#[test]
fn is_cancelled_turns_true_when_the_scope_is_cancelled_by_hand() {
    in_task(|| async move {
        let (started, heard) = (Flag::default(), Flag::default());
        let _ = klaw::scope!(|s| {
            s.spawn_blocking(hears(&started, &heard));
            until(|| started.is_set()).await;
            s.cancel("enough");
            Ok(())
        });
        assert!(heard.is_set());
    });
}

/// A blocking grandchild: the task that runs the scope is cancelled through its handle, and the
/// cancellation reaches the closure (klaw's rule: "cancelling a scope cancels its children").
#[test]
fn is_cancelled_turns_true_when_an_ancestor_tasks_handle_cancels_it() {
    with_deadline(|| {
        let rt = pool("bc1", 4);
        let (started, heard) = (Flag::default(), Flag::default());
        let hear = hears(&started, &heard);
        let parent = rt.spawn(async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                s.spawn_blocking(hear);
                std::future::pending::<()>().await;
                Ok(())
            });
        });
        wait_for("the closure started", || started.is_set());
        assert!(parent.cancel("stop"));
        assert!(matches!(rt.block_on(parent), Err(TaskError::Cancelled(_))));
        assert!(heard.is_set(), "the handle resolved before the grandchild heard the cancel");
    });
}

/// A region cancelled from another thread through its token, with a `BlockingTask` awaited
/// inline in it.
#[test]
fn is_cancelled_turns_true_when_the_enclosing_region_is_cancelled() {
    in_task(|| async move {
        let (started, heard) = (Flag::default(), Flag::default());
        let region = klaw::cancel::Region::new();
        let token = region.token();
        let running = started.clone();
        let canceller = std::thread::spawn(move || {
            // Once the closure runs: a job cancelled while still queued is withdrawn.
            wait_for("the closure started", || running.is_set());
            token.cancel("from another thread");
        });
        let hear = hears(&started, &heard);
        let outcome = region.run(async move { BlockingTask::new(hear).await }).await;
        canceller.join().unwrap();
        assert!(outcome.is_err(), "the region was cancelled");
        assert!(heard.is_set());
    });
}

/// The other side: a closure that nothing cancels never sees `is_cancelled()`, whether it is a
/// runtime's, a scope's child beside siblings that succeed, or awaited inline in a region whose
/// deadline is far.
#[test]
fn is_cancelled_stays_false_for_an_uncancelled_blocking_job() {
    fn watches(seen: &Flag) -> impl FnOnce() -> u32 + Send + 'static {
        let seen = seen.clone();
        move || {
            for _ in 0..20 {
                if klaw::cancel::is_cancelled() {
                    seen.set();
                }
                std::thread::sleep(ms(1));
            }
            1
        }
    }
    with_deadline(|| {
        let rt = pool("bu1", 4);
        let seen = Flag::default();
        assert_eq!(rt.block_on(rt.spawn_blocking(watches(&seen))), Ok(1));
        let in_task = seen.clone();
        let got = rt.block_on(rt.spawn(async move {
            let in_scope: u32 = klaw::scope!(|s| {
                let a = s.spawn_blocking(watches(&in_task));
                let b = s.spawn(async { 1u32 });
                Ok(a.await? + b.await?)
            })
            .unwrap();
            let in_region = klaw::cancel::move_on_after(secs(60), async {
                BlockingTask::new(watches(&in_task)).await
            })
            .await;
            (in_scope, in_region)
        }));
        assert_eq!(got, Ok((2, Some(Ok(1)))));
        assert!(!seen.is_set(), "an uncancelled closure saw is_cancelled()");
    });
}

/// "true when the task, or an enclosing region up to the nearest shield, is cancelled": a
/// `BlockingTask` awaited inline inside a shield, in a region that is cancelled meanwhile, is
/// behind the shield.
#[test]
fn is_cancelled_stays_false_behind_a_shield_in_a_cancelled_region() {
    in_task(|| async move {
        let seen = Flag::default();
        let in_closure = seen.clone();
        let outcome = klaw::cancel::move_on_after(ms(5), async move {
            klaw::cancel::shield(async move {
                BlockingTask::new(move || {
                    for _ in 0..30 {
                        if klaw::cancel::is_cancelled() {
                            in_closure.set();
                        }
                        std::thread::sleep(ms(1));
                    }
                })
                .await
            })
            .await
        })
        .await;
        // The shield ran to its end; the region's own outcome says it was cancelled or not.
        let _ = outcome;
        assert!(!seen.is_set(), "a shielded blocking closure saw its region's cancellation");
    });
}

// ---- 6. Shutdown ------------------------------------------------------------------------------

/// book/src/runtime.md: shutdown "cancels what is left with `CancelReason::Shutdown`"; "Only
/// such a stuck task, and a blocking closure that ignores `is_cancelled()`, are reported
/// `abandoned`." The queued closures never run and are counted cancelled; the one running
/// closure that ignores the cancel is abandoned; every task is counted exactly once.
#[test]
fn shutdown_cancels_queued_blocking_jobs_and_abandons_one_that_ignores_it() {
    with_deadline(|| {
        let rt = pool("bd1", 1);
        let (started_tx, started) = mpsc::channel();
        let stubborn = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            std::thread::sleep(ms(1500)); // ignores is_cancelled()
            "late"
        });
        started.recv_timeout(secs(10)).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let queued: Vec<_> = (0..3)
            .map(|_| {
                let ran = ran.clone();
                rt.spawn_blocking(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let report = rt.shutdown(Duration::ZERO);
        assert_eq!(report.abandoned, 1, "{report:?}");
        assert_eq!(report.cancelled, 3, "{report:?}");
        assert_eq!(
            report.succeeded
                + report.failed
                + report.cancelled
                + report.panicked
                + report.timed_out
                + report.abandoned,
            4,
            "every task counted once: {report:?}"
        );
        for handle in queued {
            let outcome = klaw::runtime::block_on(handle);
            assert_eq!(outcome, Err(TaskError::Cancelled(CancelReason::Shutdown)));
        }
        let late = klaw::runtime::block_on(stubborn);
        assert_eq!(late, Err(TaskError::Cancelled(CancelReason::Shutdown)));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a queued closure ran after shutdown");
        assert!(
            wait_until(secs(5), || pool_threads("bd1") == 0),
            "the pool's thread outlived its last closure after shutdown"
        );
    });
}

/// A running closure that checks `is_cancelled()` ends within the shutdown and is counted
/// cancelled, not abandoned; the reason it sees is `Shutdown`.
#[test]
fn shutdown_cancels_a_running_blocking_job_that_listens_and_counts_it_cancelled() {
    with_deadline(|| {
        let rt = pool("bd2", 2);
        let (started_tx, started) = mpsc::channel();
        let listener = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
        });
        started.recv_timeout(secs(10)).unwrap();
        let report = rt.shutdown(ms(20));
        assert!(report.grace_expired);
        assert_eq!((report.cancelled, report.abandoned), (1, 0), "{report:?}");
        assert_eq!(
            klaw::runtime::block_on(listener),
            Err(TaskError::Cancelled(CancelReason::Shutdown))
        );
    });
}

/// A closure spawned through a `Handle` after the runtime shut down never runs: its handle
/// resolves cancelled at once (book/src/runtime.md: "A task spawned once the cancelling has
/// begun [...] never runs: its handle resolves cancelled at once").
#[test]
fn a_blocking_job_spawned_after_shutdown_never_runs() {
    with_deadline(|| {
        let rt = pool("bd3", 1);
        let handle = rt.handle();
        let _ = rt.shutdown(Duration::ZERO);
        let ran = Flag::default();
        let body_ran = ran.clone();
        let late = handle.spawn_blocking(move || body_ran.set());
        assert!(matches!(klaw::runtime::block_on(late), Err(TaskError::Cancelled(_))));
        assert!(!ran.is_set());
    });
}

// ---- 7. Idle threads ---------------------------------------------------------------------------

/// book/src/runtime.md: "The pool starts threads on demand, up to its bound, and retires idle
/// ones." With a keep-alive of 200 ms, three threads started together are all gone a while after
/// their last closure, while the runtime still lives; and closures that come one after another
/// (each once the previous one's thread waits idle again, well within the keep-alive) reuse one
/// thread instead of starting new ones.
#[test]
fn idle_blocking_threads_retire_after_their_keep_alive() {
    with_deadline(|| {
        let rt = klaw::Runtime::builder()
            .workers(1)
            .max_blocking_threads(3)
            .blocking_keep_alive(ms(200))
            .thread_name("bk1")
            .build()
            .unwrap();
        let barrier = Arc::new(Barrier::new(3));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let barrier = barrier.clone();
                rt.spawn_blocking(move || {
                    // Counted between two meetings, while all three closures surely run: none of
                    // the threads can have retired yet, however late this thread looks.
                    barrier.wait();
                    let threads = pool_threads("bk1");
                    barrier.wait();
                    threads
                })
            })
            .collect();
        assert_eq!(
            common::join_all(&rt, handles),
            [3, 3, 3],
            "three closures waiting for each other, three threads"
        );
        assert!(
            wait_until(secs(10), || pool_threads("bk1") == 0),
            "{} idle blocking threads never retired",
            pool_threads("bk1")
        );
        drop(rt);

        // Reuse, on a pool whose keep-alive no wait of this test can outlast.
        let rt = klaw::Runtime::builder()
            .workers(1)
            .max_blocking_threads(3)
            .blocking_keep_alive(secs(600))
            .thread_name("bk2")
            .build()
            .unwrap();
        let mut ids = HashSet::new();
        for _ in 0..5 {
            let (id, tid) = rt
                .block_on(rt.spawn_blocking(|| (std::thread::current().id(), own_tid())))
                .unwrap();
            ids.insert(id);
            // The closure's value is back before its thread is idle again; a closure that came
            // meanwhile would find no idle thread and start one (tokio's pool does the same). So
            // the next comes once this thread waits for work.
            wait_for("the pool thread waits idle again", || waits_for_work(&tid));
        }
        assert_eq!(ids.len(), 1, "closures one after another reused one thread");
        assert_eq!(pool_threads("bk2"), 1);
        drop(rt);
    });
}

/// The calling thread's id in `/proc/self/task` (Linux).
fn own_tid() -> String {
    let path = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// True while thread `tid` of this process sleeps in a wait with a timeout, which is how an idle
/// pool thread waits for work (for at most its keep-alive): `/proc/self/task/<tid>/syscall`
/// shows `futex` with a timeout (its 4th argument); a contended lock waits without one. Where
/// that file or the futex number is not to be had, any sleep counts.
fn waits_for_work(tid: &str) -> bool {
    let futex = match std::env::consts::ARCH {
        "x86_64" => Some("202"),
        "aarch64" | "riscv64" | "loongarch64" => Some("98"),
        _ => None,
    };
    let call = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"));
    if let (Some(futex), Ok(call)) = (futex, call) {
        let args: Vec<&str> = call.split_whitespace().collect();
        return args.first() == Some(&futex)
            && args.get(4).is_some_and(|timeout| *timeout != "0x0");
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"));
    stat.is_ok_and(|stat| {
        stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('S'))
    })
}

// ---- 8. Values nobody awaits ------------------------------------------------------------------

/// A closure's value is dropped exactly once when nobody awaits it: the handle dropped before
/// the closure ends, the handle dropped after, a late cancel that discards it, and a runtime
/// shut down with a handle unawaited. (tokio's `JoinHandle` drops an unread output with the
/// task; a value dropped twice or never is a double free or a leak in user terms.)
#[test]
fn a_blocking_jobs_value_nobody_awaits_is_dropped_once() {
    with_deadline(|| {
        let rt = pool("bv1", 2);
        // The handle dropped while the closure runs.
        let drops = DropCount::default();
        let value = drops.clone();
        drop(rt.spawn_blocking(move || {
            std::thread::sleep(ms(20));
            value.value()
        }));
        wait_for("the unawaited value is dropped", || drops.get() == 1);
        // The handle dropped after the closure ended.
        let later = DropCount::default();
        let value = later.clone();
        let handle = rt.spawn_blocking(move || value.value());
        wait_for("the closure ends", || handle.is_finished());
        assert_eq!(later.get(), 0, "the value is kept for the handle");
        drop(handle);
        assert_eq!(later.get(), 1);
        // A late cancel discards the value.
        let discarded = DropCount::default();
        let value = discarded.clone();
        let (started_tx, started) = mpsc::channel();
        let handle = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
            value.value()
        });
        started.recv_timeout(secs(10)).unwrap();
        assert!(handle.cancel("late"));
        assert!(matches!(rt.block_on(handle), Err(TaskError::Cancelled(_))));
        wait_for("the discarded value is dropped", || discarded.get() == 1);
        // A handle nobody awaits when the runtime shuts down.
        let kept = DropCount::default();
        let value = kept.clone();
        let handle = rt.spawn_blocking(move || value.value());
        wait_for("the closure ends", || handle.is_finished());
        let _ = rt.shutdown(Duration::ZERO);
        drop(handle);
        std::thread::sleep(ms(20));
        assert_eq!(
            (drops.get(), later.get(), discarded.get(), kept.get()),
            (1, 1, 1, 1),
            "each value dropped exactly once"
        );
    });
}

/// A queued closure cancelled before it runs drops its captures once (and never runs).
#[test]
fn a_cancelled_queued_blocking_jobs_captures_are_dropped_once() {
    with_deadline(|| {
        let rt = pool("bv2", 1);
        let (release, occupier) = occupier(&rt);
        let drops = DropCount::default();
        let captured = drops.value();
        let queued = rt.spawn_blocking(move || drop(captured));
        assert!(queued.cancel("not needed"));
        release.send(()).unwrap();
        assert!(matches!(rt.block_on(queued), Err(TaskError::Cancelled(_))));
        assert_eq!(rt.block_on(occupier), Ok(()));
        assert_eq!(drops.get(), 1);
    });
}

// ---- 9. klaw's thread state on a pool thread ----------------------------------------------------

/// On a pool thread, `current_task_id()` is the closure's own task, and nothing of a previous
/// closure stays behind on the thread: one that was cancelled (and saw `is_cancelled()`) or
/// panicked leaves the next closure on the same thread uncancelled and with its own id; between
/// closures, no task is current.
#[test]
fn a_pool_thread_carries_no_task_state_from_one_job_to_the_next() {
    with_deadline(|| {
        let rt = pool("bt1", 1);
        let thread_of = Arc::new(Mutex::new(Vec::new()));
        let report = |thread_of: &Arc<Mutex<Vec<_>>>| {
            let thread_of = thread_of.clone();
            move || {
                thread_of.lock().unwrap().push(std::thread::current().id());
                (klaw::task::current_task_id(), klaw::cancel::is_cancelled())
            }
        };
        // A cancelled closure.
        let (started_tx, started) = mpsc::channel();
        let cancelled = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
        });
        started.recv_timeout(secs(10)).unwrap();
        cancelled.cancel("stop");
        assert!(rt.block_on(cancelled).is_err());
        let next = rt.spawn_blocking(report(&thread_of));
        let id = next.id();
        assert_eq!(rt.block_on(next), Ok((Some(id), false)));
        // A panicking closure.
        let boom = rt.spawn_blocking(|| -> () { panic!("boom") });
        assert!(rt.block_on(boom).is_err());
        let next = rt.spawn_blocking(report(&thread_of));
        let id = next.id();
        assert_eq!(rt.block_on(next), Ok((Some(id), false)));
        // A #[klaw::task(blocking)] in a scope.
        let got = rt.block_on(rt.spawn(async move {
            let outer = klaw::task::current_task_id();
            klaw::scope!(|s| {
                let child = s.spawn(gauged(Gauge::default(), ms(1)));
                let child_id = child.id();
                let probe = s.spawn_blocking(klaw::task::current_task_id);
                let probe_id = probe.id();
                assert_eq!(child.await?, 1);
                Ok((outer, probe.await?, probe_id, child_id))
            })
        }));
        let (outer, seen, probe_id, _child) = got.unwrap().unwrap();
        assert_eq!(seen, Some(probe_id));
        assert_ne!(seen, outer);
        let threads = thread_of.lock().unwrap();
        assert!(threads.windows(2).all(|w| w[0] == w[1]), "one pool thread ran them all");
    });
}

/// book/src/time.md: "A timer takes its clock when it is made: [...] anywhere else (no
/// runtime, a blocking-pool thread, [...]) real time." On a paused runtime, a closure that
/// sleeps under `klaw::runtime::block_on` sleeps in real time (the virtual clock, which the
/// running closure holds still, would never get there), and the paused clock does not move
/// while the closure runs.
#[test]
fn a_sleep_in_a_blocking_job_of_a_paused_runtime_is_real_time() {
    within(secs(20), || {
        let rt = common::paused();
        let virtual_before = rt.block_on(async { klaw::time::now() });
        let handle = rt.spawn_blocking(|| {
            let started = Instant::now();
            klaw::runtime::block_on(klaw::time::sleep(ms(20)));
            started.elapsed()
        });
        let took = rt.block_on(handle).unwrap();
        assert!(took >= ms(20), "{took:?}");
        let virtual_after = rt.block_on(async { klaw::time::now() });
        assert!(virtual_after - virtual_before < secs(1));
    });
}

// ---- 10. Blocking helpers from blocking code ----------------------------------------------------

/// book/src/channels.md: "Blocking code (a `spawn_blocking` closure, a plain thread) uses
/// `send_blocking` and `recv_blocking`". A closure and a task trade messages both ways with a
/// capacity of one (each side waits for the other), and a closure runs an async step under
/// `klaw::runtime::block_on` (a klaw channel's `recv` fed by a task).
#[test]
fn a_blocking_job_trades_with_a_task_through_the_blocking_helpers() {
    with_deadline(|| {
        let rt = pool("bh1", 1);
        let (to_task, from_job) = klaw::channel::bounded::<u32>(1);
        let (to_job, from_task) = klaw::channel::bounded::<u32>(1);
        let echo = rt.spawn(async move {
            while let Ok(n) = from_job.recv().await {
                if to_job.send(n * 2).await.is_err() {
                    break;
                }
            }
        });
        let job = rt.spawn_blocking(move || {
            let mut got = Vec::new();
            for n in 0..50 {
                to_task.send_blocking(n).unwrap();
                let back = if n % 2 == 0 {
                    from_task.recv_blocking().unwrap()
                } else {
                    klaw::runtime::block_on(from_task.recv()).unwrap()
                };
                got.push(back);
            }
            got
        });
        let got = rt.block_on(job).unwrap();
        assert_eq!(got, (0..50).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(rt.block_on(echo), Ok(()));
    });
}

/// A cancelled closure's blocking helpers still work (book/src/cancellation.md: "what a blocking
/// helper runs is outside the task, so no cancellation around the call reaches in
/// (`is_cancelled()` is false there)"): a closure that saw `is_cancelled()` flushes its last
/// message with `send_blocking` to a task that is still running, and `is_cancelled()` under
/// `block_on` is false.
#[test]
fn a_cancelled_blocking_job_can_still_flush_through_the_blocking_helpers() {
    with_deadline(|| {
        let rt = pool("bh2", 1);
        let (tx, rx) = klaw::channel::bounded::<&'static str>(1);
        let (started_tx, started) = mpsc::channel();
        let job = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            while !klaw::cancel::is_cancelled() {
                std::thread::sleep(ms(1));
            }
            let inside = klaw::runtime::block_on(async { klaw::cancel::is_cancelled() });
            tx.send_blocking("flushed").unwrap();
            tx.send_blocking("and again").unwrap();
            inside
        });
        started.recv_timeout(secs(10)).unwrap();
        let reader = rt.spawn(async move {
            let mut got = Vec::new();
            while let Ok(m) = rx.recv().await {
                got.push(m);
            }
            got
        });
        assert!(job.cancel("stop"));
        assert!(matches!(rt.block_on(job), Err(TaskError::Cancelled(_))));
        assert_eq!(rt.block_on(reader), Ok(vec!["flushed", "and again"]));
    });
}

/// The handle of a blocking task names it (`#[klaw::task(blocking, name = ..)]`,
/// `BlockingTask::name`), and its exit reason moves from `Pending` to `Success`.
#[klaw::task(blocking, name = "checksum")]
fn named_checksum(data: Vec<u8>) -> u32 {
    data.iter().map(|&b| u32::from(b)).sum()
}

#[test]
fn a_named_blocking_task_reports_its_name_and_exit() {
    with_deadline(|| {
        let rt = pool("bn1", 1);
        let (release, occupier) = occupier(&rt);
        let got = rt.block_on(rt.spawn(async move {
            klaw::scope!(|s| {
                let a = s.spawn(named_checksum(vec![1, 2, 3]));
                let b = s.spawn(BlockingTask::new(|| 4u32).name("four"));
                assert_eq!(a.name(), Some("checksum"));
                assert_eq!(b.name(), Some("four"));
                assert_eq!(a.exit_reason(), ExitReason::Pending, "queued behind the occupier");
                release.send(()).unwrap();
                let a_ref = a.task_ref();
                let sum = a.await? + b.await?;
                assert_eq!(a_ref.exit_reason(), ExitReason::Success);
                Ok(sum)
            })
        }));
        assert_eq!(got.unwrap().unwrap(), 10);
        assert_eq!(rt.block_on(occupier), Ok(()));
    });
}

// ---- a blocking task value given to a runtime ------------------------------------------------

#[klaw::task(blocking, name = "checksum")]
fn checksum(data: Vec<u8>) -> u64 {
    data.iter().map(|&byte| u64::from(byte)).sum()
}

#[klaw::task(blocking)]
fn parse_port(text: String) -> Result<u16, std::num::ParseIntError> {
    text.parse()
}

/// book/src/tasks.md: a task value "can be `.await`ed inline, spawned in a scope, or submitted to
/// a runtime". What a scope's `s.spawn` takes, `Runtime::spawn` and `Handle::spawn` take too: a
/// `#[klaw::task(blocking)]` value (and a `BlockingTask`) runs on the blocking pool, with its
/// name, and a fallible one's `Err` is its failure, as for a plain future and a `Task`.
#[test]
fn runtime_and_handle_spawn_what_a_scope_spawns_blocking_task_values_too() {
    within(DEADLINE, || {
        let rt = pool("blspawn", 2);
        let handle = rt.handle();
        let summed = rt.spawn(checksum(vec![1, 2, 3]));
        assert_eq!(summed.name(), Some("checksum"));
        assert_eq!(rt.block_on(summed), Ok(6));
        let port = handle.spawn(parse_port("8080".into()));
        assert_eq!(rt.block_on(port), Ok(8080));
        let bad = rt.spawn(parse_port("eighty".into()));
        assert!(matches!(rt.block_on(bad), Err(TaskError::Failed(_))));
        let thread =
            rt.spawn(BlockingTask::new(|| std::thread::current().name().map(str::to_owned)));
        let thread = rt.block_on(thread).unwrap().unwrap_or_default();
        assert!(thread.starts_with("blspawn-blocking-"), "ran on {thread}");
        // And what it took before, unchanged.
        assert_eq!(rt.block_on(handle.spawn(async { 1 })), Ok(1));
        let fallible = rt.spawn(klaw::Task::fallible(async { "x".parse::<u8>() }));
        assert!(matches!(rt.block_on(fallible), Err(TaskError::Failed(_))));
    });
}
