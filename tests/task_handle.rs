//! The task state machine as a user sees it: cancel before, during and after; first terminal
//! state wins; panics, failures and timeouts are typed.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{DropCount, Flag, SetOnDrop, occupy_worker, runtime};
use futures_lite::future::yield_now;
use klaw::{CancelReason, Task, TaskError, task::ExitReason};

#[test]
fn cancel_before_start_means_the_body_never_runs() {
    let rt = runtime(1);
    let (release, blocker) = occupy_worker(&rt); // the only worker is busy: nothing else starts
    let ran = Flag::default();
    let body_ran = ran.clone();
    let handle = rt.spawn(async move { body_ran.set() });
    assert!(handle.cancel("before start"));
    assert_eq!(handle.exit_reason(), ExitReason::Cancelled);
    release.send(()).unwrap();
    assert!(!handle.has_started());
    let result = rt.block_on(async {
        blocker.await.unwrap();
        handle.await
    });
    assert_eq!(result, Err(TaskError::Cancelled(CancelReason::user("before start"))));
    assert!(!ran.is_set(), "a task cancelled before it started must never run its body");
}

#[test]
fn cancel_right_after_spawn_always_takes_effect() {
    // Whether or not a worker picked the task up in between, the cancel wins, and a body that
    // has not started never does.
    let rt = runtime(2);
    for _ in 0..2_000 {
        let ran = Flag::default();
        let body_ran = ran.clone();
        let handle = rt.spawn(async move {
            body_ran.set();
            std::future::pending::<()>().await;
        });
        assert!(handle.cancel("right away"));
        let canceller = handle.task_ref();
        let started_before_cancel = handle.has_started();
        let result = rt.block_on(handle);
        assert!(matches!(result, Err(TaskError::Cancelled(CancelReason::User(_)))));
        assert_eq!(canceller.exit_reason(), ExitReason::Cancelled);
        if !started_before_cancel {
            assert!(!ran.is_set(), "cancelled before start, yet the body ran");
        }
    }
}

#[test]
fn cancel_during_drops_the_body_before_the_handle_resolves() {
    let rt = runtime(2);
    let (started_tx, started) = mpsc::channel();
    let dropped = Flag::default();
    let guard = SetOnDrop(dropped.clone());
    let handle = rt.spawn(async move {
        let _guard = guard;
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(handle.has_started());
    assert!(handle.cancel(CancelReason::user("during")));
    let result = rt.block_on(handle);
    assert_eq!(result, Err(TaskError::Cancelled(CancelReason::user("during"))));
    assert!(dropped.is_set(), "the handle resolved while the body still existed");
}

#[test]
fn cancel_after_completion_changes_nothing() {
    let rt = runtime(1);
    let handle = rt.spawn(async { 5 });
    let canceller = handle.task_ref();
    assert_eq!(rt.block_on(handle), Ok(5));
    assert!(!canceller.cancel("too late"));
    assert_eq!(canceller.exit_reason(), ExitReason::Success);
    assert!(!canceller.is_cancelled());
}

#[test]
fn completion_after_cancel_is_discarded() {
    // The body is inside its poll when the cancel lands, then returns a value: the cancel came
    // first, so it wins, and the late value is dropped (not leaked, not delivered).
    let rt = runtime(1);
    let (in_poll_tx, in_poll) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let drops = DropCount::default();
    let value = drops.value();
    let handle = rt.spawn(async move {
        in_poll_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        value
    });
    in_poll.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(handle.cancel("first"));
    go.send(()).unwrap();
    let canceller = handle.task_ref();
    let result = rt.block_on(handle);
    assert!(
        matches!(&result, Err(TaskError::Cancelled(reason)) if *reason == CancelReason::user("first"))
    );
    assert_eq!(canceller.exit_reason(), ExitReason::Cancelled);
    assert_eq!(drops.get(), 1, "the discarded value is dropped exactly once");
}

#[test]
fn double_cancel_keeps_the_first_reason() {
    let rt = runtime(1);
    let handle = rt.spawn(std::future::pending::<()>());
    assert!(handle.cancel("first"));
    assert!(!handle.cancel("second"));
    assert!(!handle.task_ref().cancel(CancelReason::Shutdown));
    assert_eq!(handle.cancel_reason(), Some(CancelReason::user("first")));
    assert_eq!(rt.block_on(handle), Err(TaskError::Cancelled(CancelReason::user("first"))));
}

#[test]
fn cancel_racing_completion_from_another_thread_is_consistent() {
    let rt = runtime(2);
    let (mut cancelled, mut completed) = (0, 0);
    for round in 0..3_000 {
        let handle = rt.spawn(async move {
            yield_now().await;
            round
        });
        let canceller = handle.task_ref();
        let racer = std::thread::spawn(move || canceller.cancel("race"));
        let exit = handle.task_ref();
        let result = rt.block_on(handle);
        let cancel_won = racer.join().unwrap();
        match result {
            Ok(value) => {
                assert_eq!(value, round);
                assert!(!cancel_won, "cancel() said it won, but the task reported success");
                assert_eq!(exit.exit_reason(), ExitReason::Success);
                completed += 1;
            }
            Err(TaskError::Cancelled(reason)) => {
                assert_eq!(reason, CancelReason::user("race"));
                assert!(cancel_won, "the task reports cancelled, but no cancel() won");
                assert_eq!(exit.exit_reason(), ExitReason::Cancelled);
                cancelled += 1;
            }
            other => panic!("unexpected result {other:?}"),
        }
    }
    assert_eq!(cancelled + completed, 3_000);
}

#[test]
fn a_panicking_task_is_reported_and_the_runtime_goes_on() {
    let rt = runtime(2);
    let handle = rt.spawn(async {
        yield_now().await;
        panic!("boom {}", 7);
    });
    let canceller = handle.task_ref();
    assert_eq!(rt.block_on(handle), Err(TaskError::Panicked("boom 7".to_owned())));
    assert_eq!(canceller.exit_reason(), ExitReason::Panicked);
    assert_eq!(rt.block_on(rt.spawn(async { "still running" })), Ok("still running"));
}

#[test]
fn a_fallible_task_that_returns_err_ends_with_error() {
    let rt = runtime(1);
    let handle = rt.spawn(Task::fallible(async { "nope".parse::<u8>() }).name("parse"));
    assert_eq!(handle.name(), Some("parse"));
    let canceller = handle.task_ref();
    let error = rt.block_on(handle).unwrap_err();
    assert!(matches!(error, TaskError::Failed(_)));
    assert_eq!(canceller.exit_reason(), ExitReason::Error);
    // A plain task that returns a Result keeps it as its value (like tokio::spawn).
    let plain = rt.spawn(async { "nope".parse::<u8>() });
    assert!(rt.block_on(plain).unwrap().is_err());
}

#[test]
fn a_task_timeout_ends_it_as_timed_out_and_runs_its_cancel_hooks() {
    let rt = runtime(1);
    let dropped = Flag::default();
    let guard = SetOnDrop(dropped.clone());
    let handle = rt.spawn(
        Task::new(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        })
        .timeout(Duration::from_millis(10)),
    );
    let (hook_tx, hook_rx) = mpsc::channel();
    handle.on_cancel(move |reason| hook_tx.send(reason.clone()).unwrap());
    let canceller = handle.task_ref();
    assert_eq!(rt.block_on(handle), Err(TaskError::TimedOut(Duration::from_millis(10))));
    assert_eq!(canceller.exit_reason(), ExitReason::TimedOut);
    assert!(dropped.is_set());
    assert_eq!(hook_rx.try_recv(), Ok(CancelReason::Deadline));
}

#[test]
fn cancel_hooks_run_once_per_task_and_a_panicking_hook_is_contained() {
    let rt = runtime(1);
    let handle = rt.spawn(std::future::pending::<()>());
    let (hook_tx, hook_rx) = mpsc::channel();
    handle.on_cancel(|_| panic!("a broken backend hook"));
    let tx = hook_tx.clone();
    handle.on_cancel(move |reason| tx.send(reason.clone()).unwrap());
    let canceller = handle.task_ref();
    let from_thread = std::thread::spawn(move || canceller.cancel("remote stop"));
    assert!(from_thread.join().expect("the hook's panic must not reach the canceller"));
    assert!(!handle.cancel("again"));
    assert_eq!(hook_rx.try_iter().collect::<Vec<_>>(), [CancelReason::user("remote stop")]);
    assert!(rt.block_on(handle).is_err());
}

#[test]
fn handles_are_debug_and_ids_are_unique() {
    let rt = runtime(1);
    let a = rt.spawn(Task::new(async {}).name("alpha"));
    let b = rt.spawn(async {});
    assert_ne!(a.id(), b.id());
    let shown = format!("{a:?}");
    assert!(shown.contains("alpha") && shown.contains("TaskHandle"), "{shown}");
    rt.block_on(async {
        a.await.unwrap();
        b.await.unwrap();
    });
}

#[test]
fn once_a_handle_resolves_its_task_is_no_longer_counted_live() {
    let rt = runtime(2);
    for round in 0..20_000 {
        let handle = rt.spawn(async move { round });
        assert_eq!(rt.block_on(handle), Ok(round));
        assert_eq!(rt.live_tasks(), 0, "round {round}: the ended task is still counted live");
    }
}
