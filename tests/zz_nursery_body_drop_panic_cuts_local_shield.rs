//! A scope's body whose destructor panics when the cancelled scope drops it, while a local child
//! is in a shielded cleanup.
//!
//! Code: klaw-rt/src/scope/drive.rs, `Drive::poll_body`. A panic *in a poll* of the body is
//! caught (`guard::caught`), kept in `body_panic`, and goes on only once every child has ended,
//! a local child's shielded cleanup included (tested by
//! `nursery_end_paths.rs::a_body_panic_waits_for_a_local_childs_shielded_cleanup`). But the body
//! is also dropped by `poll_body` itself, outside that catch: `if shared.region.must_stop() {
//! self.drop_body(); return; }` (and `Poll::Pending if shared.region.must_stop() =>
//! self.drop_body()`). `drop_body` is `self.adopter.adopting(|| *body = None)`: a destructor in
//! the body that panics there (trio: a `finally:` in the nursery's body that raises while
//! `Cancelled` propagates) unwinds straight out of `Drive::poll`. The scope future is then
//! dropped on the way out, and `Drive::drop` drops the local children's runners
//! (`locals.clear()`): the shielded cleanup of a local child is cut mid-way, and the task resolves
//! `Panicked` before it ran to its end. (A parallel child is handed to the task and waited for;
//! a local child is not a task the executor holds, so it is simply dropped.)
//!
//! Peer: trio `test_run.py` `test_cancel_shield_abort` with a nursery body whose cleanup raises:
//! the exception goes into the nursery's `__aexit__`, which still waits for every child, whose
//! shielded code runs to its end. Kotlin: a `coroutineScope` block whose `finally` throws still
//! waits for its children (`withContext(NonCancellable)` cleanups included) before it rethrows.
//!
//! Promise (book/src/scopes.md): "A panic in the scope's own body is not caught into its result:
//! it cancels the children, waits for every one of them to end (a shielded cleanup runs to its
//! end, a local child's too), and then goes on out of `scope!`"; "`scope!` returns only when
//! every one of them has ended". book/src/cancellation.md: "`shield(future)` runs a future to its
//! end even if its task or the regions around it are cancelled meanwhile".

mod common;

use std::future::pending;
use std::time::Duration;

use common::{DEADLINE, Flag, PanicOnDrop, failing, ms, runtime, until, within};
use klaw::{Error, TaskError};

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
                    let _cleanup = PanicOnDrop("the scope body's cleanup failed");
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
