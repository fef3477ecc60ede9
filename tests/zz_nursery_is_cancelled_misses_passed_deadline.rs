//! `klaw::cancel::is_cancelled()` in code that does not `.await`, once a deadline around it has
//! passed: a region's (`move_on_after`), a scope's (`timeout`, for its local child), the task's
//! own (`Task::timeout`).
//!
//! Code: klaw-rt/src/cancel/frames.rs, `is_cancelled` -> `around_here(RegionState::is_cancelled,
//! |task| task.is_cancelled() || runtime_shutdown_cancels(..))`. A region's or scope's deadline
//! becomes a cancellation only when its timer is polled (cancel/region.rs `Cancellable::poll`,
//! scope/drive.rs `Drive::poll`, task/runner.rs `step_with`), i.e. at the next poll of the code
//! around it, or when a region inside finds its own deadline passed
//! (`frames::expire_enclosing`). Code that computes without awaiting is in the middle of that
//! poll: the timer fires on the reactor and only wakes a task that is already running, nothing
//! records the cancellation, and `is_cancelled()` (which reads `RegionState::first` and the
//! task's state, and never compares a deadline with the clock) stays `false` for ever. A
//! cancel through a handle or a token, and a runtime's shutdown (ARCHITECTURE.md: "one in the
//! middle of a poll that never waits sees `is_cancelled()` (which then cancels it) through its
//! worker's shutdown phase"), do reach such code; a deadline never does, so a CPU-bound loop that
//! checks `is_cancelled()` under `move_on_after` runs for ever.
//!
//! Peers: trio's `CancelScope.cancel_called` compares the deadline with the clock while the
//! scope is active ("make sure cancel_called is true if the deadline has passed",
//! `_core/_run.py`; `test_run.py::test_cancel_unbound` checks it for a scope not yet entered).
//! Kotlin's `withTimeout` is delivered by another thread: `withTimeout(d) { while (isActive) {
//! compute() } }` on `Dispatchers.Default` stops at `d`.
//!
//! Promise (book/src/cancellation.md, "Code that does not `.await`"): "Blocking code (on the
//! blocking pool) and CPU-bound loops cannot be interrupted. They ask
//! `klaw::cancel::is_cancelled()`, which is true when the task, or an enclosing region up to the
//! nearest shield, is cancelled"; `Region`'s doc: "the future it runs is dropped when the region
//! is cancelled by its `Token` or when its deadline passes"; `move_on_after(d, future)` "runs a
//! future for at most `d`".
//! book/src/tasks.md: "Code that does not `.await` (a CPU-bound loop, a blocking call on the
//! blocking pool) checks `klaw::cancel::is_cancelled()`."
//!
//! The loops are bounded (3 s of real time, against deadlines of 20 ms) so that today's
//! behaviour fails the assertion instead of hanging; nothing asserts how long anything took.

mod common;

use std::time::{Duration, Instant};

use common::{Flag, in_task, ms, secs};
use klaw::{Error, Task};

/// A CPU-bound loop: steps until `is_cancelled()` says so, for at most `limit`. Whether it said so.
fn compute_until_cancelled(limit: Duration) -> bool {
    let started = Instant::now();
    while !klaw::cancel::is_cancelled() && started.elapsed() < limit {
        std::hint::spin_loop(); // one step of work
    }
    klaw::cancel::is_cancelled()
}

/// `move_on_after(20 ms, loop)`: the region's deadline passes while the loop runs.
#[test]
fn a_cpu_bound_loop_in_a_region_sees_the_regions_deadline_pass() {
    in_task(|| async {
        let saw = Flag::default();
        let seen = saw.clone();
        let _ = klaw::cancel::move_on_after(ms(20), async move {
            if compute_until_cancelled(secs(3)) {
                seen.set();
            }
        })
        .await;
        assert!(saw.is_set(), "is_cancelled() stayed false for 3 s after the region's 20 ms deadline");
    });
}

/// A scope with `timeout = "20ms"` whose local child computes (the scope's timer is polled by
/// the same task, which the child keeps busy).
#[test]
fn a_cpu_bound_local_child_sees_its_scopes_deadline_pass() {
    in_task(|| async {
        let saw = Flag::default();
        let seen = saw.clone();
        let result: Result<(), Error> = klaw::scope!(timeout = "20ms", |s| {
            s.spawn_local(async move {
                if compute_until_cancelled(secs(3)) {
                    seen.set();
                }
            });
            Ok(())
        });
        assert!(saw.is_set(), "is_cancelled() stayed false for 3 s after the scope's deadline: {result:?}");
    });
}

/// A task with a 20 ms timeout whose body computes.
#[test]
fn a_cpu_bound_task_sees_its_own_timeout_pass() {
    in_task(|| async {
        let saw = Flag::default();
        let seen = saw.clone();
        let handle = klaw::Handle::current().unwrap().spawn(
            Task::new(async move {
                if compute_until_cancelled(secs(3)) {
                    seen.set();
                }
            })
            .timeout(ms(20)),
        );
        let outcome = handle.await;
        assert!(saw.is_set(), "is_cancelled() stayed false for 3 s after the task's timeout: {outcome:?}");
    });
}
