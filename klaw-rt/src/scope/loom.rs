//! Loom models of a scope's registry (`registry.rs`) and of ending (`task/descendants.rs`): a
//! child that registers while its scope is being cancelled is cancelled either way; the scope
//! sees every child end; a dropped scope hands its children to the enclosing frame, which waits
//! for them; a task's deferred end runs once, after the last of them; an owner that starts
//! waiting while the last descendant ends is woken or sees it gone.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::poll_fn;
use std::sync::Arc;

use loom::future::block_on;
use loom::sync::atomic::AtomicBool;
use loom::thread;

use crate::runtime::spawn::ParentLink;
use crate::scope::registry::{Failure, ScopeInfo, ScopeShared, child_ref};
use crate::sync::Ordering;
use crate::task::core::{FailureTaker, new_task};
use crate::task::current::{self, Adopter};
use crate::task::descendants::Descendants;
use crate::task::error::TaskError;
use crate::task::handle::TaskOutput;
use crate::task::state::Kind;
use crate::task::{CancelReason, TaskId};

type Output = TaskOutput<u32, String>;

#[test]
fn loom_a_dropped_scope_hands_its_children_to_the_enclosing_frame() {
    loom::model(|| {
        let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
        let (completer, joiner) = new_task::<Output>(TaskId::next(), None);
        let child = child_ref(joiner.core());
        let link = scope.register::<String>(child);
        let ended = Arc::new(AtomicBool::new(false));
        let child_ended = ended.clone();
        // The child, on another thread, ends at any moment relative to the hand-over.
        let runner = thread::spawn(move || {
            child_ended.store(true, Ordering::Release);
            let _ = completer.decide(Kind::Cancelled);
            completer.publish(
                Err(TaskError::Cancelled(CancelReason::ParentCancelled)),
                FailureTaker::Scope,
            );
            link.ended();
        });
        // The scope is dropped inside a frame (a task runner or a region): it hands its
        // children over, and the frame waits for what it adopted before it ends.
        let frame = Adopter::default();
        frame.adopting(|| current::hand_over(&scope.descendants));
        if let Some(adopted) = frame.running() {
            block_on(poll_fn(|cx| adopted.poll_empty(cx)));
        }
        assert!(ended.load(Ordering::Acquire), "the frame ended before the dropped scope's child");
        runner.join().unwrap();
    });
}

#[test]
fn loom_a_deferred_end_runs_once_after_the_last_descendant() {
    loom::model(|| {
        let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
        let (completer, joiner) = new_task::<Output>(TaskId::next(), None);
        let child = child_ref(joiner.core());
        let link = scope.register::<String>(child);
        let child_done = Arc::new(AtomicBool::new(false));
        let done = child_done.clone();
        let runner = thread::spawn(move || {
            done.store(true, Ordering::Release);
            let _ = completer.decide(Kind::Cancelled);
            completer.publish(
                Err(TaskError::Cancelled(CancelReason::ParentCancelled)),
                FailureTaker::Scope,
            );
            link.ended();
        });
        // A task whose body dropped the scope defers publishing its own end.
        let (tx, rx) = std::sync::mpsc::channel();
        let seen = child_done.clone();
        scope.descendants.then_run(Box::new(move |_| {
            tx.send(seen.load(Ordering::Acquire)).unwrap();
        }));
        runner.join().unwrap();
        assert_eq!(rx.try_recv(), Ok(true), "the end ran before its descendant ended");
        assert!(rx.try_recv().is_err(), "the deferred end ran twice");
    });
}

#[test]
fn loom_a_child_registering_while_its_parent_is_cancelled_is_cancelled() {
    loom::model(|| {
        let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
        let (mut completer, joiner) = new_task::<Output>(TaskId::next(), None);
        let parent = scope.clone();
        let cancel = thread::spawn(move || parent.cancel_all(CancelReason::ParentCancelled, None));

        let child = child_ref(joiner.core());
        let link = scope.register::<String>(child);
        // The runner: it may start before the cancel arrives, never after.
        let started = completer.try_start(None);
        cancel.join().unwrap();

        assert!(joiner.header().is_cancelled(), "a registering child escaped the cancel");
        assert_eq!(joiner.header().cancel_reason(), Some(CancelReason::ParentCancelled));
        assert!(!completer.decide(Kind::Success), "a cancelled child cannot complete");
        if !started {
            assert!(!joiner.header().has_started());
        }
        completer
            .publish(Err(TaskError::Cancelled(CancelReason::ParentCancelled)), FailureTaker::Scope);
        link.ended();
        assert!(scope.descendants.is_empty(), "the scope missed the child's end");
        assert!(scope.take_failures().is_empty(), "a cancellation is not a failure");
    });
}

#[test]
fn loom_a_failing_sibling_cancels_a_child_that_registers_concurrently() {
    loom::model(|| {
        let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
        let (failing, failing_joiner) = new_task::<Output>(TaskId::next(), None);
        let child = child_ref(failing_joiner.core());
        let failing_link = scope.register::<String>(child);
        let sibling = thread::spawn(move || {
            assert!(failing.decide(Kind::Error));
            failing_link.before_publish(Kind::Error);
            failing.publish(Err(TaskError::Failed("boom".to_owned())), FailureTaker::Scope);
            failing_link.ended();
        });

        let (mut late, late_joiner) = new_task::<Output>(TaskId::next(), None);
        let child = child_ref(late_joiner.core());
        let late_link = scope.register::<String>(child);
        let _ = late.try_start(None);
        sibling.join().unwrap();

        assert_eq!(late_joiner.header().cancel_reason(), Some(CancelReason::SiblingFailed));
        late.publish(Err(TaskError::Cancelled(CancelReason::SiblingFailed)), FailureTaker::Scope);
        late_link.ended();
        assert!(scope.descendants.is_empty());
        let failures = scope.take_failures();
        assert_eq!(failures.len(), 1, "exactly the one failure is recorded");
        let Failure::Child(failed) = &failures[0] else { panic!("not a child failure") };
        assert!(failed.take_failure().is_some(), "the unawaited failure is kept, not lost");
        drop(failing_joiner);
    });
}

#[test]
fn loom_an_owner_that_waits_while_the_last_descendant_ends_sees_it_end() {
    loom::model(|| {
        // An end that reaches zero wakes the owner only once the owner watches the count; one
        // that comes before must leave the owner's own look to see zero. Deadlocks if neither.
        let descendants = Descendants::new();
        descendants.add();
        descendants.add();
        let ending: Vec<_> = (0..2)
            .map(|_| {
                let descendants = descendants.clone();
                thread::spawn(move || {
                    descendants.ended();
                })
            })
            .collect();
        block_on(poll_fn(|cx| descendants.poll_empty(cx)));
        assert_eq!(descendants.count(), 0);
        for thread in ending {
            thread.join().unwrap();
        }
    });
}

#[test]
fn loom_a_failure_in_a_dropped_scope_reaches_the_frame_before_it_hears_the_child_end() {
    loom::model(|| {
        // A scope dropped inside a frame (a task runner, here) with a child still running, which
        // fails at any moment relative to the drop: its failure is with the frame by the time
        // the frame's deferred end runs (the task then reports it to its own scope).
        let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
        let (completer, joiner) = new_task::<Output>(TaskId::next(), None);
        let link = scope.register::<String>(child_ref(joiner.core()));
        drop(joiner); // nobody awaits the child: only the scope can report its failure
        let runner = thread::spawn(move || {
            let failure = TaskError::Failed("disk on fire".to_owned());
            if completer.decide(Kind::Error) {
                link.before_publish(Kind::Error);
                completer.publish(Err(failure), FailureTaker::Scope);
            } else {
                // The drop's cancel came first: the failure races it, and is still reported.
                link.raced(completer.header(), failure);
                link.before_publish(Kind::Cancelled);
                completer.publish(
                    Err(TaskError::Cancelled(CancelReason::ParentCancelled)),
                    FailureTaker::Scope,
                );
            }
            link.ended();
        });
        let frame = Adopter::default();
        frame.adopting(|| {
            scope.cancel_all(CancelReason::ParentCancelled, None);
            scope.abandon(current::frame_descendants(), None, &[]);
            current::hand_over(&scope.descendants);
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let reported = move |failures: crate::task::descendants::Failures| {
            tx.send(failures.len()).unwrap();
        };
        match frame.running() {
            Some(adopted) => adopted.then_run(Box::new(reported)),
            None => reported(frame.take_failures()),
        }
        runner.join().unwrap();
        assert_eq!(rx.try_recv(), Ok(1), "the frame ended without the failure");
        assert!(scope.take_failures().is_empty(), "the dropped scope kept the failure");
    });
}

#[test]
fn loom_failures_kept_for_an_owner_that_goes_away_reach_its_parent() {
    /// A failure, as the scope module would hand it on.
    struct Failed;
    impl crate::task::descendants::AdoptedFailure for Failed {
        fn log(self: Box<Self>) {}
        fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
            self
        }
    }
    loom::model(|| {
        // A region's descendants, with one running that fails and ends while the region goes
        // away to its parent frame: the parent has the failure before it sees them gone.
        let region = Descendants::new();
        region.add();
        let parent = Descendants::new();
        let ending = region.clone();
        let child = thread::spawn(move || {
            ending.adopt_failure(Box::new(Failed));
            ending.ended();
        });
        region.then_parent(parent.clone());
        block_on(poll_fn(|cx| parent.poll_empty(cx)));
        assert_eq!(parent.take_failures().len(), 1, "the parent ended without the failure");
        child.join().unwrap();
    });
}
