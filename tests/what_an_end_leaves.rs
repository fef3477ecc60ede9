//! What a finished task leaves in its memory, which lives until its last reference goes: a
//! `TaskRef`, or a waker that a timer, a channel or another executor still holds. That reference
//! may be dropped anywhere, also under its holder's lock (async-io drops the wakers of removed
//! timers under its timers' lock). So no user data waits for it: a failure nobody can collect goes
//! with the handle, and the cancel hooks of a task that ended otherwise go when it ends.

mod common;

use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use common::{DropCount, Flag, runtime};
use klaw::task::ExitReason;
use klaw::{Runtime, Task, TaskError};

/// A waker of the task under test, kept as a timer or a channel would keep it.
type Stash = Arc<Mutex<Option<Waker>>>;

/// Takes the stash's lock when dropped, as a destructor that shares a lock with whoever holds the
/// task's last waker would. Dropped under that lock, it would deadlock.
struct TakesTheLock {
    stash: Stash,
    dropped: Flag,
}

impl Drop for TakesTheLock {
    fn drop(&mut self) {
        drop(self.stash.lock());
        self.dropped.set();
    }
}

/// A task's failure that holds [`TakesTheLock`].
struct Failure(#[allow(dead_code, reason = "held for its drop")] TakesTheLock);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Failure")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a failure whose drop takes a lock")
    }
}

impl std::error::Error for Failure {}

/// Keeps the waker of the task that polls it in `stash`.
async fn stash_own_waker(stash: &Stash) {
    poll_fn(|cx| {
        *stash.lock().unwrap() = Some(cx.waker().clone());
        Poll::Ready(())
    })
    .await;
}

/// Lets the runtime's one worker finish whatever it runs now, so that the task before has let
/// go of its own references.
fn let_the_worker_finish(rt: &Runtime) {
    rt.block_on(rt.spawn(async {})).unwrap();
}

/// Drops the stashed waker, the task's last reference, while holding the stash's lock.
fn drop_the_last_waker_under_its_lock(stash: &Stash) {
    let mut held = stash.lock().unwrap();
    let waker = held.take().expect("the task stashed its waker");
    drop(waker);
    drop(held);
}

/// A top-level task whose handle was dropped fails: nobody can ever take that failure, so it goes
/// when the task ends, not with the task's last waker. Book (Tasks and handles): "the failure of
/// a task outside any scope whose handle was dropped: nobody can take it, so it is dropped then".
#[test]
fn a_failure_no_scope_collects_is_dropped_when_the_task_ends_not_under_its_last_wakers_lock() {
    common::with_deadline(|| {
        let rt = runtime(1);
        let stash = Stash::default();
        let dropped = Flag::default();
        let failure = Failure(TakesTheLock { stash: stash.clone(), dropped: dropped.clone() });
        let (go, wait) = klaw::channel::oneshot::channel::<()>();
        let body_stash = stash.clone();
        let handle = rt.spawn(Task::fallible(async move {
            stash_own_waker(&body_stash).await;
            let _ = wait.await;
            Err::<(), _>(failure)
        }));
        drop(handle);
        go.send(()).unwrap();
        let_the_worker_finish(&rt);
        assert!(dropped.is_set(), "the failure waits for the task's last reference");
        drop_the_last_waker_under_its_lock(&stash);
    });
}

/// The same failure, published before its handle is dropped: it goes with the handle, even while
/// a `TaskRef` lives.
#[test]
fn a_failure_no_scope_collects_goes_with_its_handle_while_a_task_ref_lives() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let stash = Stash::default();
        let dropped = Flag::default();
        let failure = Failure(TakesTheLock { stash, dropped: dropped.clone() });
        let handle = rt.spawn(Task::fallible(async move { Err::<(), _>(failure) }));
        let watcher = handle.task_ref();
        common::wait_for("the task finished", || handle.is_finished());
        assert!(!dropped.is_set(), "the handle has not taken the failure yet");
        drop(handle);
        assert!(dropped.is_set(), "the failure outlived its handle");
        assert_eq!(watcher.exit_reason(), ExitReason::Error);
    });
}

/// A failure its handle takes is the handle's: nothing drops it early.
#[test]
fn a_failure_the_handle_takes_is_given_whole() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let dropped = Flag::default();
        let failure = Failure(TakesTheLock { stash: Stash::default(), dropped: dropped.clone() });
        let handle = rt.spawn(Task::fallible(async move { Err::<(), _>(failure) }));
        match rt.block_on(handle) {
            Err(TaskError::Failed(failure)) => {
                assert!(!dropped.is_set());
                drop(failure);
            }
            other => panic!("expected the failure, got {other:?}"),
        }
        assert!(dropped.is_set());
    });
}

/// A task that completes never runs its cancel hooks: they are dropped by the time its handle
/// resolves, not with its last waker, wherever that goes. Book (Tasks and handles): "The
/// `on_cancel` hooks of a task that ended otherwise than cancelled never run, and are dropped by
/// the time its handle resolves".
#[test]
fn the_hooks_of_a_task_that_completed_are_dropped_before_its_handle_resolves() {
    common::with_deadline(|| {
        let rt = runtime(1);
        let stash = Stash::default();
        let dropped = Flag::default();
        let held = TakesTheLock { stash: stash.clone(), dropped: dropped.clone() };
        let (go, wait) = klaw::channel::oneshot::channel::<()>();
        let body_stash = stash.clone();
        let handle = rt.spawn(async move {
            stash_own_waker(&body_stash).await;
            let _ = wait.await;
            7
        });
        handle.on_cancel(move |_| {
            drop(held);
            panic!("the hook of a task that completed ran");
        });
        let watcher = handle.task_ref();
        go.send(()).unwrap();
        assert_eq!(rt.block_on(handle), Ok(7));
        assert!(dropped.is_set(), "the hook outlived the task's end");
        let_the_worker_finish(&rt);
        drop(watcher);
        drop_the_last_waker_under_its_lock(&stash);
    });
}

/// A hook registered after the task completed never runs either, and goes at once.
#[test]
fn a_hook_registered_after_the_task_completed_is_dropped_at_once() {
    common::with_deadline(|| {
        let rt = runtime(1);
        let drops = DropCount::default();
        let handle = rt.spawn(async { 1 });
        common::wait_for("the task finished", || handle.is_finished());
        let held = drops.value();
        handle.on_cancel(move |_| drop(held));
        assert_eq!(drops.get(), 1);
        assert_eq!(rt.block_on(handle), Ok(1));
    });
}

/// A cancelled task runs its hooks once, as before: ending is not dropping them unrun.
#[test]
fn the_hooks_of_a_cancelled_task_still_run_once() {
    common::with_deadline(|| {
        let rt = runtime(2);
        let runs = DropCount::default();
        let handle = rt.spawn(std::future::pending::<()>());
        for _ in 0..3 {
            let run = runs.clone();
            handle.on_cancel(move |_| drop(run.value()));
        }
        handle.cancel("no longer needed");
        assert!(matches!(rt.block_on(handle), Err(TaskError::Cancelled(_))));
        assert_eq!(runs.get(), 3);
    });
}

/// The book (Tasks and handles): a value whose handle was dropped is dropped when its task
/// ends, not kept for the task's last reference. In a scope that means before the scope
/// returns: the child's end is counted after its output went. (The failure's case is above.)
#[test]
fn a_value_whose_handle_was_dropped_goes_at_its_tasks_end_before_the_scope_returns() {
    let rt = runtime(2);
    for local in [false, true] {
        let dropped = Flag::default();
        let set = dropped.clone();
        rt.block_on(async {
            klaw::scope!(|s| {
                let (go, wait) = klaw::channel::oneshot::channel::<()>();
                let child = async move {
                    let _ = wait.await;
                    common::SetOnDrop(set)
                };
                if local {
                    drop(s.spawn_local(child));
                } else {
                    drop(s.spawn(child));
                }
                go.send(()).unwrap(); // the handle went first: nobody takes the value
                Ok(())
            })
            .unwrap();
        });
        assert!(dropped.is_set(), "the value outlived its scope (local: {local})");
    }
}
