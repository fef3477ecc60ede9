//! Translated from tokio's `tokio/tests/task_abort.rs` (commit
//! `ea91b33ca`): an abort (klaw: `TaskHandle::cancel`) that lands while the scope in the task's
//! body still has children running, in the ways tokio's file aborts a task (suspended, holding a
//! value whose destructor matters or panics). tokio's tasks have no children; klaw's promise adds
//! that the handle resolves only after every descendant has ended, and that a destructor's panic
//! anywhere below is a failure that reaches the nearest scope (book/src/scopes.md, "When a scope
//! has ended" and "Dropping a scope"; book/src/cancellation.md).
//!
//! Not duplicated from `tests/ported_tokio_tasks.rs` / `ported_tokio_task_gaps.rs`, which cover
//! the abort of a task with no children and a child's own destructor panic; nor from
//! `nursery_end_paths.rs`, which covers a blocking grandchild's failure after its scope dropped.
//!
//! Every scenario runs under a deadline (`within` / `in_task`), so a hang fails.

mod common;

use std::future::pending;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{
    Alive, DEADLINE, FetchError, Flag, PanicOnDrop, fetch_ids, in_task, ms, runtime, secs, until,
    within,
};
use klaw::task::TaskRef;
use klaw::{CancelReason, Error, Task, TaskError};

/// Records its name in a shared log when dropped, after a drop that takes `drop_takes`.
struct Logged {
    name: &'static str,
    log: Arc<Mutex<Vec<&'static str>>>,
    drop_takes: Duration,
}

impl Logged {
    fn new(name: &'static str, log: &Arc<Mutex<Vec<&'static str>>>, drop_takes: Duration) -> Self {
        Logged { name, log: log.clone(), drop_takes }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        std::thread::sleep(self.drop_takes);
        self.log.lock().unwrap().push(self.name);
    }
}

/// tokio: `test_abort_without_panic_3662` / `test_abort_wakes_task_3964` (the aborted task's
/// values are dropped, and `await` on the handle sees that), for a task whose body is a scope
/// with a local, a parallel and a blocking child.
///
/// Checks: when the cancelled task's handle resolves, every value of every descendant has been
/// dropped (five of them, the slow ones included), and the scope (awaited innermost, so dropped
/// first) drops its body's values and its local children before the task's own locals (trio's
/// `test_locals_destroyed_promptly_on_cancel`, one level down).
///
/// Breaks if the handle resolves before a parallel child's 60 ms drop or the blocking child's
/// 80 ms tail, or if a local child outlives the `Drive` that polls it.
#[test]
fn a_cancelled_tasks_handle_resolves_after_every_descendant_and_its_scope_unwinds_first() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready) = mpsc::channel::<()>();
        let task_log = log.clone();
        let task = rt.spawn(async move {
            let _task_local = Logged::new("task local", &task_log, Duration::ZERO);
            let _: Result<(), Error> = klaw::scope!(|s| {
                let _scope_body = Logged::new("scope body", &task_log, Duration::ZERO);
                let local = Logged::new("local child", &task_log, ms(20));
                s.spawn_local(async move {
                    let _held = local;
                    pending::<()>().await;
                });
                let parallel = Logged::new("parallel child", &task_log, ms(60));
                s.spawn(async move {
                    let _held = parallel;
                    pending::<()>().await;
                });
                let blocking = Logged::new("blocking child", &task_log, Duration::ZERO);
                s.spawn_blocking(move || {
                    let _held = blocking;
                    while !klaw::cancel::is_cancelled() {
                        std::thread::sleep(ms(1));
                    }
                    std::thread::sleep(ms(80));
                });
                ready_tx.send(()).unwrap();
                pending::<()>().await;
                Ok(())
            });
        });
        ready.recv_timeout(secs(10)).expect("the scope spawned its children");
        std::thread::sleep(ms(10)); // the children get going (not needed for the guarantee)
        assert!(task.cancel("abort"));
        let outcome = rt.block_on(task);
        assert_eq!(outcome, Err(TaskError::Cancelled(CancelReason::user("abort"))));
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 5, "the handle resolved before every value was dropped: {log:?}");
        let at = |name: &str| log.iter().position(|n| *n == name).unwrap();
        assert!(at("scope body") < at("task local"), "{log:?}");
        assert!(at("local child") < at("task local"), "{log:?}");
    });
}

/// tokio: `test_abort_task_that_panics_on_drop_returned` (an aborted task's destructor panics;
/// tokio reports `is_panic`), one level down: the panicking value is in a *grandchild*, the child
/// of a scope inside the aborted task, which is itself a child of an outer scope.
///
/// Checks: the aborted task's handle keeps `Cancelled(abort)` (klaw: the first terminal state
/// wins), and the grandchild's cleanup panic is not lost: the inner scope was dropped inside the
/// task, so the failure goes to the task (`ScopeShared::abandon`, `forward_to`), which reports it
/// to the outer scope when it ends (`Report::adopted`): the outer scope fails with it.
///
/// Breaks if a failure forwarded from a dropped scope is dropped when the frame it went to was
/// cancelled rather than completed, or if the outer body's sleep is not cancelled by it.
#[test]
fn a_grandchilds_panicking_destructor_during_its_parents_abort_fails_the_outer_scope() {
    in_task(|| async move {
        let message = "the grandchild's cleanup failed";
        let (result, middle) = abort_above_a_panicking_cleanup(false, message).await;
        let error = result.expect_err("the grandchild's cleanup panic was lost");
        assert!(format!("{error:?}").contains(message), "{error:?}");
        assert_eq!(middle.cancel_reason(), Some(CancelReason::user("abort")));
    });
}

/// The same as the test above with the panicking value in a *local* child of the aborted task's
/// scope: the local child's runner is dropped inside `Drive::drop` (`locals.clear()`), after
/// `abandon` set where failures go, so its `raced` report must be forwarded the same way.
///
/// Breaks if a local child's cleanup panic during its scope's drop is only logged (or lost)
/// instead of reaching the outer scope.
#[test]
fn a_local_childs_panicking_destructor_during_its_tasks_abort_fails_the_outer_scope() {
    in_task(|| async move {
        let message = "the local child's cleanup failed";
        let (result, _) = abort_above_a_panicking_cleanup(true, message).await;
        let error = result.expect_err("the local child's cleanup panic was lost");
        assert!(format!("{error:?}").contains(message), "{error:?}");
    });
}

/// A scope whose child (`middle`) runs a scope with a child of its own, spawned or `local`,
/// that holds a value whose destructor panics with `message`; `middle` is aborted once that
/// child runs, and the outer body then sleeps (the reported failure cancels the sleep). Gives the
/// outer scope's result, and `middle`.
async fn abort_above_a_panicking_cleanup(
    local: bool,
    message: &'static str,
) -> (Result<(), Error>, TaskRef) {
    let started = Flag::default();
    let middle_ref: Arc<Mutex<Option<TaskRef>>> = Arc::default();
    let kept = middle_ref.clone();
    let result: Result<(), Error> = klaw::scope!(|s| {
        let seen = started.clone();
        let middle = s.spawn(async move {
            let _: Result<(), Error> = klaw::scope!(|inner| {
                let holds_the_bomb = async move {
                    let _bomb = PanicOnDrop(message);
                    seen.set();
                    pending::<()>().await;
                };
                if local {
                    drop(inner.spawn_local(holds_the_bomb));
                } else {
                    drop(inner.spawn(holds_the_bomb));
                }
                pending::<()>().await;
                Ok(())
            });
        });
        *kept.lock().unwrap() = Some(middle.task_ref());
        until(|| started.is_set()).await;
        assert!(middle.cancel("abort"));
        klaw::time::sleep(secs(20)).await; // the reported failure cancels this
        Ok(())
    });
    let middle = middle_ref.lock().unwrap().take().expect("the middle task was spawned");
    (result, middle)
}

/// A guard counted in `alive` whose drop first sets `dropping`, then takes 200 ms.
struct SlowDrop {
    dropping: Flag,
    _alive: common::AliveGuard,
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        self.dropping.set();
        std::thread::sleep(ms(200));
    }
}

/// tokio: `test_abort_without_panic_3157` (abort a suspended task), with the task suspended in
/// the one state tokio has no analogue for: its scope has already *failed* (a child returned
/// `Err`, the siblings are cancelled) and waits for a sibling's slow drop before returning.
///
/// Checks "nothing that failed is lost (a failure racing a cancel is still reported)": the abort
/// drops the failing scope; its recorded failure goes to the aborted task, then to the outer
/// scope, which fails with `FetchError(7)` once; and everything has ended when it returns.
///
/// Breaks if `Drive::drop` → `ScopeShared::abandon` loses a `Failure::Child` already in the list,
/// or if the outer scope returns before the slow sibling's drop.
#[test]
fn aborting_a_task_whose_scope_already_failed_keeps_the_failure() {
    in_task(|| async move {
        let alive = Alive::default();
        let dropping = Flag::default();
        let result: Result<(), Error> = klaw::scope!(|s| {
            let (counted, signal) = (alive.clone(), dropping.clone());
            let middle = s.spawn(async move {
                let _: Result<(), Error> = klaw::scope!(|inner| {
                    let slow = SlowDrop { dropping: signal, _alive: counted.guard(Duration::ZERO) };
                    inner.spawn(async move {
                        let _slow = slow;
                        pending::<()>().await;
                    });
                    inner.spawn(Task::fallible(async {
                        klaw::time::sleep(ms(5)).await;
                        Err::<(), _>(FetchError(7))
                    }));
                    pending::<()>().await;
                    Ok(())
                });
            });
            // The inner scope has failed and is waiting for the slow sibling's drop.
            until(|| dropping.is_set()).await;
            middle.cancel("abort");
            klaw::time::sleep(secs(20)).await;
            Ok(())
        });
        assert_eq!(alive.count(), 0, "the outer scope returned before the slow sibling ended");
        assert_eq!(fetch_ids(&result.expect_err("the failure was lost")), [7]);
    });
}
