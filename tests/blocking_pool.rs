//! The blocking pool is bounded: under a flood of blocking work, no more than
//! `max_blocking_threads` closures ever run at once, and every one of them runs.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klaw::{TaskError, task::ExitReason};

#[test]
fn the_bound_holds_under_load() {
    let rt = klaw::Runtime::builder().workers(2).max_blocking_threads(4).build().unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let (running, peak, threads) = (running.clone(), peak.clone(), threads.clone());
            rt.spawn_blocking(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                threads.lock().unwrap().insert(std::thread::current().name().map(str::to_owned));
                std::thread::sleep(Duration::from_millis(3));
                running.fetch_sub(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    let results = common::join_all(&rt, handles);
    assert_eq!(results, (0..64).collect::<Vec<_>>());
    assert_eq!(peak.load(Ordering::SeqCst), 4, "the bound is used and never exceeded");
    let names = threads.lock().unwrap();
    assert!(names.len() <= 4, "{names:?}");
    assert!(names.iter().all(|n| n.as_deref().is_some_and(|n| n.starts_with("klaw-blocking-"))));
}

#[test]
fn a_queued_blocking_task_cancelled_before_start_never_runs() {
    let rt = klaw::Runtime::builder().max_blocking_threads(1).build().unwrap();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let occupier = rt.spawn_blocking(move || wait.recv().unwrap());
    let ran = common::Flag::default();
    let body_ran = ran.clone();
    let queued = rt.spawn_blocking(move || body_ran.set());
    assert!(queued.cancel("not needed"));
    release.send(()).unwrap();
    assert!(matches!(rt.block_on(queued), Err(TaskError::Cancelled(_))));
    assert!(rt.block_on(occupier).is_ok());
    assert!(!ran.is_set());
}

#[test]
fn a_running_blocking_task_sees_is_cancelled_and_its_late_value_is_discarded() {
    let rt = klaw::Runtime::builder().build().unwrap();
    let (started_tx, started) = std::sync::mpsc::channel();
    let saw_cancel = common::Flag::default();
    let saw = saw_cancel.clone();
    let handle = rt.spawn_blocking(move || {
        started_tx.send(klaw::task::current_task_id()).unwrap();
        // Bounded: a cancel that never reaches the closure fails the test below, not hangs it.
        if common::block_until_cancelled(Duration::from_secs(10)) {
            saw.set();
        }
        "late value"
    });
    let id = started.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(id, Some(handle.id()));
    assert!(handle.cancel("stop"));
    let canceller = handle.task_ref();
    assert!(matches!(rt.block_on(handle), Err(TaskError::Cancelled(_))));
    assert!(saw_cancel.is_set(), "the running closure saw its cancel before its handle ended");
    assert_eq!(canceller.exit_reason(), ExitReason::Cancelled);
    assert!(!klaw::cancel::is_cancelled(), "no task is current on the test thread");
}

#[test]
fn a_panicking_blocking_task_is_reported() {
    let rt = klaw::Runtime::builder().build().unwrap();
    let handle = rt.spawn_blocking(|| -> u8 { panic!("blocking boom") });
    assert_eq!(rt.block_on(handle), Err(TaskError::Panicked("blocking boom".into())));
}
