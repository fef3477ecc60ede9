//! A scope's deadline encloses its parallel children (`s.spawn`) as it does its local ones: when
//! a child's own timeout passes, a region in it finds its deadline passed, or a blocking child
//! asks `is_cancelled()`, a deadline of the scope (or of a region around the scope) that passed
//! first catches, though the scope's task has not been polled since (its body computes, its
//! worker is busy). trio's run loop expires the outermost cancel scope first, whatever task runs;
//! kotlinx.coroutines' `withTimeout` cancels the child job from the timer thread
//! (`WithTimeoutTest`). The child is cancelled with `Deadline` and the scope returns `Elapsed`.
//!
//! A region around the scope that catches so cancels the child with `ParentCancelled`, as the
//! scope's drop would; and a scope whose work ended in time (only its background children stop)
//! has no deadline left for a child to find passed.
//!
//! What would break these: a child that compares only its own frames (`frames::expire_enclosing`
//! stopping at the end of the task's frames), so the child's later deadline catches: its own
//! timeout fails the scope with `TimedOut`, its region returns into its body, its blocking loop
//! runs on.

mod common;

use std::future::pending;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Flag, in_task, ms};
use klaw::task::{ExitReason, TaskRef};
use klaw::{CancelReason, Error, Task};

/// Computes without an `.await` (trio: between two checkpoints) until `end`, and then on until
/// `done` says so, at most 5 s more (so a wake-up that never comes shows in the asserts below,
/// not as a hang).
fn busy_until(end: Instant, done: impl Fn() -> bool) {
    let cap = end + Duration::from_secs(5);
    while Instant::now() < end || (!done() && Instant::now() < cap) {
        std::thread::sleep(ms(1));
    }
}

/// The scope's deadline is 30 ms after it opens; its parallel child's own timeout is 40 ms from
/// the child's first poll, so it passes later. The body waits (awaiting) for that first poll,
/// then computes past both deadlines and until the child's outcome is decided, on its worker;
/// the child runs on the other worker.
///
/// Checks: the scope fails with `Elapsed`, and the child was cancelled with `Deadline` (not
/// timed out). Today: the child decides `TimedOut` on its own worker, which fails the scope, and
/// the scope returns that failure (`Error::Task { error: TimedOut(40ms), .. }`).
#[test]
fn a_scopes_deadline_that_passed_first_catches_though_a_parallel_childs_later_timeout_fires() {
    in_task(|| async {
        let kept: Arc<Mutex<Option<TaskRef>>> = Arc::default();
        let started: Arc<Mutex<Option<Instant>>> = Arc::default();
        let outer_at = Instant::now() + ms(30);
        let (keep, first_poll) = (kept.clone(), started.clone());
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            let seen = first_poll.clone();
            let child = s.spawn(
                Task::new(async move {
                    *seen.lock().unwrap() = Some(Instant::now());
                    pending::<()>().await;
                })
                .timeout(ms(40)),
            );
            let child_ref = child.task_ref();
            *keep.lock().unwrap() = Some(child_ref.clone());
            // The child's timeout counts from its first poll, after this scope opened: its
            // deadline is later than the scope's. (Should this wait outlast the scope's
            // deadline, the scope's own timer catches it here and the test shows nothing.)
            let started = loop {
                let first = *first_poll.lock().unwrap();
                if let Some(at) = first {
                    break at;
                }
                klaw::task::yield_now().await;
            };
            busy_until(outer_at.max(started + ms(40)) + ms(10), || {
                child_ref.exit_reason() != ExitReason::Pending
            });
            pending::<()>().await;
            Ok(())
        });
        let child = kept.lock().unwrap().take().expect("the child was spawned");
        assert!(
            matches!(result, Err(Error::Elapsed(_))),
            "the scope's deadline passed first and must catch, not its child's own later \
             timeout: {result:?} (child {:?})",
            child.exit_reason()
        );
        assert_eq!(child.cancel_reason(), Some(CancelReason::Deadline));
    });
}

/// The same with a region inside the parallel child whose deadline is 20 ms after the scope's:
/// once the scope's deadline has passed (first), the child's region must not catch and return
/// into the child. Today the region returns `None` and the child's next line runs, while the
/// scope's busy body has not yet let its own timer act.
#[test]
fn a_scopes_deadline_that_passed_first_catches_though_a_region_in_a_parallel_child_fires() {
    in_task(|| async {
        let ran_on = Flag::default();
        let kept: Arc<Mutex<Option<TaskRef>>> = Arc::default();
        let outer_at = Instant::now() + ms(30);
        let inner_at = outer_at + ms(20);
        let (flag, keep, polled) = (ran_on.clone(), kept.clone(), Flag::default());
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            let (set, first_poll) = (flag.clone(), polled.clone());
            let child = s.spawn(async move {
                first_poll.set();
                let _ = klaw::cancel::move_on_at(inner_at, pending::<()>()).await;
                set.set(); // code between the two regions: must not run
                pending::<()>().await;
            });
            let child_ref = child.task_ref();
            *keep.lock().unwrap() = Some(child_ref.clone());
            // The child runs (its region waits) before this worker goes busy.
            while !polled.is_set() {
                klaw::task::yield_now().await;
            }
            busy_until(inner_at + ms(10), || {
                flag.is_set() || child_ref.exit_reason() != ExitReason::Pending
            });
            pending::<()>().await;
            Ok(())
        });
        assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
        assert!(
            !ran_on.is_set(),
            "the parallel child's inner region caught a deadline that passed after its scope's"
        );
        let child = kept.lock().unwrap().take().expect("the child was spawned");
        assert_eq!(child.cancel_reason(), Some(CancelReason::Deadline));
    });
}

/// A blocking child that computes and asks `is_cancelled()`, in a scope whose task computes past
/// the scope's deadline: the child sees the deadline, though the scope's timer is not polled.
#[test]
fn a_blocking_childs_is_cancelled_sees_its_scopes_deadline_while_the_scopes_task_computes() {
    in_task(|| async {
        let outer_at = Instant::now() + ms(30);
        let saw = Flag::default();
        let seen = saw.clone();
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            let saw = saw.clone();
            let child = s.spawn(klaw::task::BlockingTask::new(move || {
                let cap = Instant::now() + Duration::from_secs(5);
                while Instant::now() < cap {
                    if klaw::cancel::is_cancelled() {
                        saw.set();
                        return;
                    }
                    std::thread::sleep(ms(1));
                }
            }));
            let child_ref = child.task_ref();
            busy_until(outer_at + ms(10), || child_ref.exit_reason() != ExitReason::Pending);
            pending::<()>().await;
            Ok(())
        });
        assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
        assert!(seen.is_set(), "the blocking child never saw its scope's deadline");
    });
}

/// A region around the scope passes first (30 ms); the parallel child's own region (50 ms) looks
/// first, while the scope's task computes. Checks: the region around returns `None`, and the
/// child was cancelled with `ParentCancelled`, as when that region's own timer catches, and as a
/// local child there is. What would break it: the child cancelled with `Deadline` for a deadline
/// that is not its scope's.
#[test]
fn a_parallel_child_caught_by_a_region_around_its_scope_is_cancelled_as_its_scope_cancels_it() {
    in_task(|| async {
        let kept: Arc<Mutex<Option<TaskRef>>> = Arc::default();
        let outer_at = Instant::now() + ms(30);
        let inner_at = outer_at + ms(20);
        let (keep, polled) = (kept.clone(), Flag::default());
        let outer = klaw::cancel::move_on_at(outer_at, async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                let first_poll = polled.clone();
                let child = s.spawn(async move {
                    first_poll.set();
                    let _ = klaw::cancel::move_on_at(inner_at, pending::<()>()).await;
                    pending::<()>().await;
                });
                let child_ref = child.task_ref();
                *keep.lock().unwrap() = Some(child_ref.clone());
                while !polled.is_set() {
                    klaw::task::yield_now().await;
                }
                busy_until(inner_at + ms(10), || child_ref.exit_reason() != ExitReason::Pending);
                pending::<()>().await;
                Ok(())
            });
        })
        .await;
        assert_eq!(outer, None);
        let child = kept.lock().unwrap().take().expect("the child was spawned");
        assert_eq!(
            child.cancel_reason(),
            Some(CancelReason::ParentCancelled),
            "the region around the scope caught; the scope cancels its children with \
             ParentCancelled (as for a local child, and as when that region's timer fires)"
        );
    });
}

/// The scope's deadline is 500 ms after it opens; its body returns `Ok` as soon as its one
/// background child (blocking) runs, so the foreground ends before the deadline and the
/// background child is cancelled with `ScopeFinished`. The child then runs a bounded last step,
/// a 1 s region under `futures_lite`'s `block_on`, which ends after the scope's deadline.
/// Checks: the last step ran to its own deadline, and the scope returns `Ok(())`. What would
/// break it: a scope whose deadline still counts once its work ended in time, which the child's
/// region finds passed and expires, so the scope returns `Elapsed`.
#[test]
fn a_background_blocking_childs_bounded_last_step_does_not_fail_a_scope_done_in_time() {
    in_task(|| async {
        let (started, stepped) = (Flag::default(), Flag::default());
        let (running, step_done) = (started.clone(), stepped.clone());
        let opened = Instant::now();
        let scope_timeout = ms(500);
        let result: Result<(), Error> = klaw::scope!(timeout = scope_timeout, |s| {
            let _background = s.spawn_background(klaw::task::BlockingTask::new(move || {
                running.set();
                let cap = Instant::now() + Duration::from_secs(5);
                while !klaw::cancel::is_cancelled() && Instant::now() < cap {
                    std::thread::sleep(ms(1));
                }
                // The bounded last step, which outlasts the scope's deadline.
                let outcome = futures_lite::future::block_on(klaw::cancel::move_on_after(
                    ms(1000),
                    pending::<()>(),
                ));
                if outcome.is_none() {
                    step_done.set();
                }
            }));
            // A job cancelled while still queued never runs: wait for the closure to start.
            while !started.is_set() {
                klaw::task::yield_now().await;
            }
            Ok(())
        });
        assert!(
            started.is_set() && opened.elapsed() >= scope_timeout,
            "setup: the background child's last step should end after the scope's deadline"
        );
        assert!(stepped.is_set(), "the background child's last step did not run to its deadline");
        assert!(
            result.is_ok(),
            "the scope's foreground ended in time; its background child's cleanup after the \
             deadline must not fail it: {result:?}"
        );
    });
}
