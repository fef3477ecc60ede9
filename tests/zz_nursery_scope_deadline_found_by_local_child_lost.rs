//! A scope's own deadline found passed by its local child, in the poll in which the scope ends.
//!
//! Code: klaw-rt/src/scope/drive.rs, `impl Future for Drive`, `poll`. A region (or a timeout) in
//! a local child that finds its own deadline passed looks past the child
//! (cancel/frames.rs `expire_enclosing`, `LocalChildrenMark`): the scope's deadline, which passed
//! no later, catches, so it `expire()`s the scope's region (own cancel `Deadline`, `expired` set)
//! and cancels the local child with `Deadline`. The scope records that as its failure only
//! through `shared.region.take_expired()` -> `cancel_all(Deadline, Some(Failure::Deadline))`,
//! which `poll` looks at right after `poll_body`, *before* `poll_locals`. When the local child
//! that expired the scope then ends in that same `poll_locals`, and the body had returned `Ok`
//! already, the scope's `foreground_ended` is true in this very poll: it sets `finished`, and
//! `result()` finds no failure and the body's output, and returns `Ok`. The expiry is never
//! taken, no `Elapsed` is recorded. A scope whose own timer is the one that fires in the same
//! situation (body returned, a child still running at the deadline) returns `Elapsed`.
//!
//! Peer: trio `test_run.py` `test_cancel_scope_nesting` / the `fail_at` family: a cancel scope
//! whose deadline cancels code inside it has `cancelled_caught`, and `fail_at` raises
//! `TooSlowError`, whichever checkpoint noticed the deadline. Kotlin: `withTimeout` whose timer
//! cancelled a child throws `TimeoutCancellationException`. klaw's own sibling test
//! `ported_trio_cancellation.rs::a_scopes_deadline_that_passed_first_catches_though_a_local_childs_region_looks_first`
//! checks this with a body that is still pending (so the next poll takes the expiry); here the
//! body returned before the deadline, and only the local child ran past it.
//!
//! Promise (book/src/scopes.md, options): "`timeout = "5s"` | cancels everything (reason
//! `Deadline`) after 5 s; the scope fails with `Error::Elapsed`"; the only exception the book
//! makes is for background children ("a scope's `timeout` that passes while it stops leaves the
//! scope's result as it was: the scope's work was done in time"). ARCHITECTURE.md (the outermost
//! cancelled region catches): "a scope so cancelled records `Elapsed`, `RegionState::take_expired`".
//!
//! No timing assertion: the deadlines only order the events; a machine too slow to poll the
//! scope before its deadline would make the scope's own timer fire first, and the test pass.

mod common;

use std::future::pending;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Flag, in_task};
use klaw::{CancelReason, Error, Task};

/// Computes, without awaiting, until `end` (as a CPU-bound step would).
fn busy_until(end: Instant) {
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The scope's body spawns a local child and returns `Ok` at once, well before the scope's
/// deadline. The child computes past the scope's deadline, then enters a region whose deadline
/// (`inner_later` after the scope's) has passed too: that region finds the scope's deadline
/// passed first, cancels the child with `Deadline`, and the child ends in the same poll.
/// Expected: the scope fails with `Elapsed`, as when its own timer catches a running child.
/// Today: `Ok(())`.
#[test]
fn a_scope_whose_deadline_a_local_child_found_passed_fails_elapsed_though_its_body_returned() {
    in_task(|| async {
        for inner_later in [Duration::ZERO, Duration::from_millis(20)] {
            let ran_on = Flag::default();
            let kept = Arc::new(Mutex::new(None));
            let outer_at = Instant::now() + Duration::from_millis(100);
            let inner_at = outer_at + inner_later;
            let (flag, keep) = (ran_on.clone(), kept.clone());
            let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
                let child = s.spawn_local(async move {
                    busy_until(inner_at + Duration::from_millis(5));
                    let _ = klaw::cancel::move_on_at(inner_at, pending::<()>()).await;
                    flag.set();
                });
                *keep.lock().unwrap() = Some(child.task_ref());
                Ok(())
            });
            let child = kept.lock().unwrap().take().expect("the child was spawned");
            assert!(!ran_on.is_set(), "the child's region returned into it");
            assert_eq!(
                child.cancel_reason(),
                Some(CancelReason::Deadline),
                "the child was cancelled for the scope's deadline"
            );
            assert!(
                matches!(result, Err(Error::Elapsed(_))),
                "the scope's deadline cancelled its running child, yet the scope reported \
                 {result:?} ({inner_later:?} between the deadlines)"
            );
        }
    });
}

/// The same with the local child's own timeout as the timer that looks first (its runner calls
/// `expire_enclosing` too): the child is spawned after the body computed past the scope's
/// deadline, with a zero timeout; the body returns `Ok` in that poll. The scope's deadline passed
/// first and cancels the child with `Deadline` (not `TimedOut`). Expected: `Elapsed`. Today:
/// `Ok(())`.
#[test]
fn a_scope_whose_deadline_a_local_childs_timeout_found_passed_fails_elapsed() {
    in_task(|| async {
        let outer_at = Instant::now() + Duration::from_millis(100);
        let kept = Arc::new(Mutex::new(None));
        let keep = kept.clone();
        let result: Result<(), Error> = klaw::scope!(deadline = outer_at, |s| {
            busy_until(outer_at + Duration::from_millis(30));
            let child = s.spawn_local(Task::new(pending::<()>()).timeout(Duration::ZERO));
            *keep.lock().unwrap() = Some(child.task_ref());
            Ok(())
        });
        let child = kept.lock().unwrap().take().expect("the child was spawned");
        assert_eq!(child.cancel_reason(), Some(CancelReason::Deadline));
        assert!(
            matches!(result, Err(Error::Elapsed(_))),
            "the scope's deadline cancelled its child, yet the scope reported {result:?}"
        );
    });
}
