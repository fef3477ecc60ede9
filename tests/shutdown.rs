//! `Runtime::shutdown(grace)`: graceful until the grace period ends, then every live task is
//! cancelled, and the report accounts for every task. A timeout is a report, never a panic.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::task::{Poll, Waker};
use std::time::Duration;

use common::{Flag, SetOnDrop, runtime};
use klaw::{CancelReason, Task, TaskError, task::ExitReason};

#[test]
fn graceful_shutdown_lets_running_tasks_finish() {
    let rt = runtime(2);
    let handles: Vec<_> = (0..20u64)
        .map(|i| rt.spawn(async move { klaw::time::sleep(Duration::from_millis(i)).await }))
        .collect();
    let cancellers: Vec<_> = handles.iter().map(|h| h.task_ref()).collect();
    let report = rt.shutdown(Duration::from_secs(30));
    assert!(!report.grace_expired, "{report}");
    assert_eq!((report.succeeded, report.cancelled, report.abandoned), (20, 0, 0), "{report}");
    assert!(cancellers.iter().all(|c| c.exit_reason() == ExitReason::Success));
    assert!(report.into_result().is_ok());
    drop(handles);
}

#[test]
fn shutdown_timeout_cancels_what_is_left_and_reports_every_task() {
    let rt = runtime(2);
    let (ready_tx, ready) = mpsc::channel();
    let quick = rt.spawn(async { 1 });
    let failing = rt.spawn(Task::fallible(async { Err::<(), _>(std::fmt::Error) }));
    let panicking = rt.spawn(async { panic!("boom") });
    let dropped = Flag::default();
    let guard = SetOnDrop(dropped.clone());
    let forever = rt.spawn(async move {
        let _guard = guard;
        ready_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    let polite_blocking = rt.spawn_blocking(|| {
        while !klaw::cancel::is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        "noticed the cancel"
    });
    ready.recv_timeout(Duration::from_secs(10)).unwrap();

    let report = rt.shutdown(Duration::from_millis(100));
    assert!(report.grace_expired, "{report}");
    assert_eq!(report.succeeded, 1, "{report}");
    assert_eq!(report.failed, 1, "{report}");
    assert_eq!(report.panicked, 1, "{report}");
    assert_eq!(report.cancelled, 2, "{report}");
    assert_eq!(report.abandoned, 0, "{report}");
    assert!(dropped.is_set(), "the cancelled body was dropped");
    assert!(report.clone().into_result().is_err());

    // Every handle resolves, with the reason.
    klaw::runtime::block_on(async {
        assert_eq!(quick.await, Ok(1));
        assert!(matches!(failing.await, Err(TaskError::Failed(_))));
        assert!(matches!(panicking.await, Err(TaskError::Panicked(_))));
        assert_eq!(forever.await, Err(TaskError::Cancelled(CancelReason::Shutdown)));
        assert_eq!(polite_blocking.await, Err(TaskError::Cancelled(CancelReason::Shutdown)));
    });
}

#[test]
fn a_body_that_never_yields_is_reported_abandoned_not_waited_for_forever() {
    let rt = runtime(1);
    let release = Arc::new(AtomicBool::new(false));
    let spinning = release.clone();
    let (started_tx, started) = mpsc::channel();
    let stuck = rt.spawn(async move {
        started_tx.send(()).unwrap();
        while !spinning.load(Ordering::SeqCst) {
            std::thread::yield_now(); // never returns to the executor
        }
    });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    let report = rt.shutdown(Duration::from_millis(10));
    assert!(report.grace_expired);
    assert_eq!(report.abandoned, 1, "{report}");
    release.store(true, Ordering::SeqCst);
    drop(stuck);
}

#[test]
fn spawning_through_a_handle_after_shutdown_cancels_before_start() {
    let rt = runtime(1);
    let handle = rt.handle();
    assert!(!rt.shutdown(Duration::from_secs(1)).grace_expired);
    let ran = Flag::default();
    let body_ran = ran.clone();
    let late = handle.spawn(async move { body_ran.set() });
    assert!(!late.has_started());
    assert_eq!(late.exit_reason(), ExitReason::Cancelled);
    assert_eq!(klaw::runtime::block_on(late), Err(TaskError::Cancelled(CancelReason::Shutdown)));
    let late_blocking = handle.spawn_blocking(|| 1);
    assert_eq!(
        klaw::runtime::block_on(late_blocking),
        Err(TaskError::Cancelled(CancelReason::Shutdown))
    );
    assert!(!ran.is_set());
}

#[test]
fn dropping_the_runtime_cancels_its_tasks() {
    let rt = runtime(1);
    let forever = rt.spawn(std::future::pending::<()>());
    drop(rt);
    assert_eq!(klaw::runtime::block_on(forever), Err(TaskError::Cancelled(CancelReason::Shutdown)));
}

/// A task a shutdown abandoned (its body holds off the cancel in a shield while it waits) is
/// dropped when something wakes it later, and not inside that `wake` call: the waker's caller
/// may hold a lock while it wakes (event-listener's `notify` holds its list's lock), and the
/// body's destructors may take the same lock, which would never return.
#[test]
fn an_abandoned_task_woken_under_a_lock_its_drop_takes_is_dropped_after_the_lock() {
    /// Takes the lock of the waker's slot when dropped, as a waiting future's drop takes the
    /// lock of the list it waits in.
    struct LocksOnDrop {
        slot: Arc<Mutex<Option<Waker>>>,
        dropped: mpsc::Sender<()>,
    }
    impl Drop for LocksOnDrop {
        fn drop(&mut self) {
            drop(self.slot.lock().unwrap_or_else(PoisonError::into_inner).take());
            let _ = self.dropped.send(());
        }
    }

    let rt = runtime(1);
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (dropped_tx, dropped) = mpsc::channel();
    let guard = LocksOnDrop { slot: slot.clone(), dropped: dropped_tx };
    let (waiting_tx, waiting) = mpsc::channel();
    let kept = slot.clone();
    let abandoned = rt.spawn(klaw::cancel::shield(async move {
        let _guard = guard;
        std::future::poll_fn(move |cx| {
            *kept.lock().unwrap() = Some(cx.waker().clone());
            let _ = waiting_tx.send(());
            Poll::<()>::Pending
        })
        .await;
    }));
    waiting.recv_timeout(Duration::from_secs(10)).unwrap();
    let report = rt.shutdown(Duration::from_millis(10));
    assert!(report.grace_expired, "{report}");

    // Woken under the slot's lock, on a thread of its own, so that a `wake` that dropped the
    // task in place fails the test rather than hanging it.
    let (woke_tx, woke) = mpsc::channel();
    let waking = slot.clone();
    std::thread::spawn(move || {
        let mut held = waking.lock().unwrap();
        if let Some(waker) = held.take() {
            waker.wake();
        }
        drop(held);
        let _ = woke_tx.send(());
    });
    assert!(
        woke.recv_timeout(Duration::from_secs(10)).is_ok(),
        "the wake-up never returned: the task's drop ran inside it, under the waker's lock"
    );
    dropped
        .recv_timeout(Duration::from_secs(10))
        .expect("the woken task was dropped, after the waker's lock");
    assert_eq!(
        klaw::runtime::block_on(abandoned),
        Err(TaskError::Cancelled(CancelReason::Shutdown))
    );
}
