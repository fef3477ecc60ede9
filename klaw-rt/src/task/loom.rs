//! Loom models of a task's state machine (`core.rs`): every interleaving of completion,
//! cancellation, start, join and hook registration is explored. (Ending after descendants is
//! modelled with the scope that has them, in `scope/loom.rs`.)
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize as StdCounter;
use std::task::Poll;

use loom::future::block_on;
use loom::thread;

use crate::sync::Ordering;
use crate::task::core::{Completer, FailureTaker, new_task};
use crate::task::state::Kind;
use crate::task::{CancelReason, ExitReason, TaskId};

const CANCELLED_MARK: u32 = u32::MAX;

/// Publishes `value` if completion wins, otherwise the mark the cancellation implies.
fn complete(completer: Completer<u32>, value: u32) -> bool {
    let won = completer.decide(Kind::Success);
    completer.publish(if won { value } else { CANCELLED_MARK }, FailureTaker::Scope);
    won
}

#[test]
fn loom_cancel_racing_completion_has_exactly_one_winner_and_no_lost_wakeup() {
    loom::model(|| {
        let (completer, mut joiner) = new_task::<u32>(TaskId::next(), None);
        let canceller = joiner.header_ref();
        let runner = thread::spawn(move || complete(completer, 7));
        let cancel = thread::spawn(move || canceller.header().cancel(CancelReason::Shutdown));
        // The joiner parks on its waker: a lost wake-up is a deadlock, which loom reports.
        let output = block_on(poll_fn(|cx| joiner.poll_output(cx)));
        let completed = runner.join().unwrap();
        let cancelled = cancel.join().unwrap();
        assert!(completed ^ cancelled, "exactly one terminal transition wins");
        let exit = joiner.header().exit_reason();
        if completed {
            assert_eq!((output, exit), (7, ExitReason::Success));
        } else {
            assert_eq!((output, exit), (CANCELLED_MARK, ExitReason::Cancelled));
            assert_eq!(joiner.header().cancel_reason(), Some(CancelReason::Shutdown));
        }
    });
}

#[test]
fn loom_two_cancels_and_a_completion_decide_once() {
    loom::model(|| {
        let (completer, joiner) = new_task::<u32>(TaskId::next(), None);
        let (a, b) = (joiner.header_ref(), joiner.header_ref());
        let first = thread::spawn(move || a.header().cancel(CancelReason::user("a")));
        let second = thread::spawn(move || b.header().cancel(CancelReason::user("b")));
        let completed = complete(completer, 1);
        let wins = [first.join().unwrap(), second.join().unwrap(), completed];
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
        let reason = joiner.header().cancel_reason();
        match wins {
            [true, false, false] => assert_eq!(reason, Some(CancelReason::user("a"))),
            [false, true, false] => assert_eq!(reason, Some(CancelReason::user("b"))),
            _ => assert_eq!(reason, None),
        }
    });
}

#[test]
fn loom_cancel_before_start_never_starts_and_cancel_after_start_wakes_the_runner() {
    loom::model(|| {
        let (mut completer, mut joiner) = new_task::<u32>(TaskId::next(), None);
        let canceller = joiner.header_ref();
        let runner = thread::spawn(move || {
            // A body that never finishes on its own: only a cancel (and its wake-up) ends it.
            let mut started = None;
            block_on(poll_fn(|cx| {
                let may_run = *started.get_or_insert_with(|| completer.try_start(Some(cx.waker())));
                if !may_run || completer.header().kind() != Kind::Pending {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }));
            let started = started.unwrap();
            completer.publish(CANCELLED_MARK, FailureTaker::Scope);
            started
        });
        assert!(canceller.header().cancel(CancelReason::user("stop")));
        let output = block_on(poll_fn(|cx| joiner.poll_output(cx)));
        let started = runner.join().unwrap();
        assert_eq!(output, CANCELLED_MARK);
        assert_eq!(joiner.header().has_started(), started);
        assert_eq!(joiner.header().exit_reason(), ExitReason::Cancelled);
    });
}

#[test]
fn loom_a_hook_registered_while_cancelling_runs_exactly_once() {
    loom::model(|| {
        let (_completer, joiner) = new_task::<u32>(TaskId::next(), None);
        let runs = Arc::new(StdCounter::new(0));
        let canceller = joiner.header_ref();
        let cancel = thread::spawn(move || canceller.header().cancel(CancelReason::Shutdown));
        let counted = runs.clone();
        joiner.header().on_cancel(Box::new(move |reason| {
            assert_eq!(reason, &CancelReason::Shutdown);
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        assert!(cancel.join().unwrap());
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        let _ = Ordering::SeqCst; // the shim is what the core uses
    });
}

#[test]
fn loom_a_joiner_that_replaces_its_waker_is_still_woken() {
    loom::model(|| {
        let (completer, mut joiner) = new_task::<u32>(TaskId::next(), None);
        let runner = thread::spawn(move || complete(completer, 3));
        // First poll with one waker, then finish with another (block_on's), as a task that
        // moved between executors would.
        let noop = futures_lite::future::block_on(poll_fn(|cx| Poll::Ready(cx.waker().clone())));
        let mut first = std::task::Context::from_waker(&noop);
        if let Poll::Ready(value) = joiner.poll_output(&mut first) {
            assert_eq!(value, 3);
        } else {
            assert_eq!(block_on(poll_fn(|cx| joiner.poll_output(cx))), 3);
        }
        assert!(runner.join().unwrap());
    });
}

/// A value that counts its drops.
struct Counted(Arc<StdCounter>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Publishes a `Counted` as `kind` while the handle is dropped; how often it was dropped once
/// both are done, while another reference to the task (a `TaskRef`) still lives.
fn drops_while_a_reference_lives(kind: Kind, failure: FailureTaker) -> usize {
    let drops = Arc::new(StdCounter::new(0));
    let (completer, joiner) = new_task::<Counted>(TaskId::next(), None);
    let kept = joiner.header_ref();
    let value = Counted(drops.clone());
    let runner = thread::spawn(move || {
        assert!(completer.decide(kind));
        completer.publish(value, failure);
    });
    drop(joiner);
    runner.join().unwrap();
    let dropped = drops.load(std::sync::atomic::Ordering::SeqCst);
    drop(kept);
    assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 1, "dropped exactly once in all");
    dropped
}

#[test]
fn loom_a_value_published_as_its_handle_drops_is_dropped_once_before_both_return() {
    // Whichever of the publish and the handle's drop comes second drops it (`DETACHED`), so it
    // never waits for the last reference to the task.
    loom::model(|| {
        assert_eq!(drops_while_a_reference_lives(Kind::Success, FailureTaker::Scope), 1)
    });
}

#[test]
fn loom_a_failure_published_as_its_handle_drops_stays_for_its_scope() {
    // A failure is the scope's to collect: it stays until the last reference goes.
    loom::model(|| assert_eq!(drops_while_a_reference_lives(Kind::Error, FailureTaker::Scope), 0));
}

#[test]
fn loom_a_failure_no_scope_collects_published_as_its_handle_drops_is_dropped_once_before_both_return()
 {
    // Nobody but the handle could take it: it goes as a value does, never with the last
    // reference to the task (which may be a waker dropped under its holder's lock).
    loom::model(|| {
        assert_eq!(drops_while_a_reference_lives(Kind::Error, FailureTaker::HandleOnly), 1);
    });
}

#[test]
fn loom_a_hook_registered_while_the_task_completes_is_dropped_unrun_before_its_handle_resolves() {
    // A task that ends otherwise than cancelled never runs its hooks; what they hold goes by
    // the time its handle resolves, not with the last reference to the task.
    loom::model(|| {
        let (completer, mut joiner) = new_task::<u32>(TaskId::next(), None);
        let kept = joiner.header_ref();
        let runner = thread::spawn(move || complete(completer, 5));
        let drops = Arc::new(StdCounter::new(0));
        let held = Counted(drops.clone());
        joiner.header().on_cancel(Box::new(move |_| {
            drop(held);
            panic!("the hook of a task that completed ran");
        }));
        assert_eq!(block_on(poll_fn(|cx| joiner.poll_output(cx))), 5);
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 1, "the hook outlived the end");
        assert!(runner.join().unwrap());
        drop(kept);
    });
}
