//! A scope's deadline encloses its parallel children (`s.spawn`) as it does its local ones: when
//! a child's own timeout passes, a region in it finds its deadline passed, or a blocking child
//! asks `is_cancelled()`, a deadline of the scope (or of a region around the scope) that passed
//! first catches, though the scope's task has not been polled since (its body computes, its
//! worker is busy). trio's run loop expires the outermost cancel scope first, whatever task runs;
//! kotlinx.coroutines' `withTimeout` cancels the child job from the timer thread
//! (`WithTimeoutTest`). The child is cancelled with `Deadline` and the scope returns `Elapsed`.
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
