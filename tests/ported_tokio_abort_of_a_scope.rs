//! A klaw scope run as a *tokio* task that tokio aborts
//! (`JoinHandle::abort`), translated from tokio's `tokio/tests/task_abort.rs`
//! (`test_abort_without_panic_3157`, `test_abort_wakes_task_3964`: after an abort, awaiting the
//! `JoinHandle` gives `is_cancelled` once the task's future is gone) at `ea91b33ca`.
//!
//! klaw's rule (book/src/scopes.md, "Dropping a scope"): a scope dropped outside any klaw task or
//! region blocks the dropping thread until its children have ended; dropped inside one, it hands
//! them to that frame, which ends only after them. `tests/foreign_executor_edges.rs` covers tokio
//! dropping a scope by `timeout` and by its runtime's shutdown, not by `abort`.
//!
//! The facade's dev-dependency on tokio has `rt` and `time` only: current-thread runtimes.

mod common;

use std::future::pending;
use std::time::Duration;

use common::{Alive, Flag, ms, runtime, within};
use klaw::Error;

const LIMIT: Duration = Duration::from_secs(20);

/// A current-thread tokio runtime with its timer.
fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

/// A child counted in `alive` until it is dropped (a drop that takes 50 ms); it never ends alone.
fn slow_child(alive: &Alive) -> impl Future<Output = ()> + Send + 'static {
    let guard = alive.guard(ms(50));
    async move {
        let _guard = guard;
        pending::<()>().await;
    }
}

/// A scope with a parallel, a local and a blocking child (60 ms past its cancel), all counted in
/// `alive`; sets `ready` once they are there, then waits forever.
async fn scope_with_three_children(alive: Alive, ready: Flag) {
    let _: Result<(), Error> = klaw::scope!(|s| {
        s.spawn(slow_child(&alive));
        s.spawn_local(slow_child(&alive));
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
