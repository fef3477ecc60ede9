//! Loom models of the task state machine (`task::core`): every interleaving of completion,
//! cancellation, start, join and hook registration is explored.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize as StdCounter;
use std::task::Poll;

use loom::future::block_on;
use loom::thread;

use crate::sync::Ordering;
use crate::task::core::{self, Completer, new_task};
use crate::task::{CancelReason, ExitReason, TaskId};

const CANCELLED_MARK: u32 = u32::MAX;

/// Publishes `value` if completion wins, otherwise the mark the cancellation implies.
fn complete(completer: Completer<u32>, value: u32) -> bool {
    let won = completer.try_finish(core::SUCCESS);
    completer.publish(if won { value } else { CANCELLED_MARK });
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
                if !may_run || completer.header().kind() != core::PENDING {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }));
            let started = started.unwrap();
            completer.publish(CANCELLED_MARK);
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

mod nursery_models {
    //! Ending is transitive: a dropped scope hands its children to the enclosing frame, which
    //! waits for them; a task defers its end until they are gone; and region cancellations
    //! reach nested regions even while those are linking.

    use std::future::poll_fn;
    use std::sync::Arc;
    use std::task::Poll;

    use loom::future::block_on;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    use crate::TaskError;
    use crate::cancel::CancelScope;
    use crate::scope::registry::{ScopeChild, ScopeShared};
    use crate::sync::Ordering;
    use crate::task::core::{self, new_task};
    use crate::task::current::{self, Adopter};
    use crate::task::handle::TaskOutput;
    use crate::task::{CancelReason, TaskId};

    type Output = TaskOutput<u32, String>;

    #[test]
    fn loom_a_dropped_scope_hands_its_children_to_the_enclosing_frame() {
        loom::model(|| {
            let scope = ScopeShared::new(false);
            let (completer, joiner) = new_task::<Output>(TaskId::next(), None);
            let child: Arc<dyn ScopeChild> = joiner.core();
            let link = scope.register::<String>(child);
            let ended = Arc::new(AtomicBool::new(false));
            let child_ended = ended.clone();
            // The child, on another thread, ends at any moment relative to the hand-over.
            let runner = thread::spawn(move || {
                child_ended.store(true, Ordering::Release);
                let _ = completer.try_finish(core::CANCELLED);
                completer.publish(Err(TaskError::Cancelled(CancelReason::ParentCancelled)));
                link.ended();
            });
            // The scope is dropped inside a frame (a task runner or a region): it hands its
            // children over, and the frame waits for what it adopted before it ends.
            let frame = Adopter::default();
            {
                let _adopting = frame.enter();
                current::hand_over(&scope.descendants);
            }
            if let Some(adopted) = frame.running() {
                block_on(poll_fn(|cx| adopted.poll_empty(cx)));
            }
            assert!(
                ended.load(Ordering::Acquire),
                "the frame ended before the dropped scope's child"
            );
            runner.join().unwrap();
        });
    }

    #[test]
    fn loom_a_deferred_end_runs_once_after_the_last_descendant() {
        loom::model(|| {
            let scope = ScopeShared::new(false);
            let (completer, joiner) = new_task::<Output>(TaskId::next(), None);
            let child: Arc<dyn ScopeChild> = joiner.core();
            let link = scope.register::<String>(child);
            let child_done = Arc::new(AtomicBool::new(false));
            let done = child_done.clone();
            let runner = thread::spawn(move || {
                done.store(true, Ordering::Release);
                let _ = completer.try_finish(core::CANCELLED);
                completer.publish(Err(TaskError::Cancelled(CancelReason::ParentCancelled)));
                link.ended();
            });
            // A task whose body dropped the scope defers publishing its own end.
            let (tx, rx) = std::sync::mpsc::channel();
            let seen = child_done.clone();
            scope.descendants.then_run(Box::new(move || {
                tx.send(seen.load(Ordering::Acquire)).unwrap();
            }));
            runner.join().unwrap();
            assert_eq!(rx.try_recv(), Ok(true), "the end ran before its descendant ended");
            assert!(rx.try_recv().is_err(), "the deferred end ran twice");
        });
    }

    #[test]
    fn loom_a_region_cancelled_while_its_nested_region_completes() {
        loom::model(|| {
            let outer = CancelScope::new();
            let outer_token = outer.token();
            let inner = CancelScope::new();
            let inner_token = inner.token();
            let canceller = thread::spawn(move || outer_token.cancel("outer"));
            let mut inner_result = None;
            let result = block_on(outer.run(async {
                // Completes in its first poll, while the outer cancel may land at any point.
                inner_result = Some(inner.run(async { 5 }).await);
                poll_fn(|_| Poll::<()>::Pending).await;
            }));
            assert!(canceller.join().unwrap());
            // The outer region is the one that catches its cancellation (no lost wake-up: the
            // model would deadlock), and the inner region's token heard it whenever the inner
            // region had started, completed or not.
            assert_eq!(result, Err(CancelReason::user("outer")));
            if let Some(inner_result) = inner_result {
                assert_eq!(inner_result, Ok(5), "the inner region's own token never fired");
                assert_eq!(inner_token.reason(), Some(CancelReason::user("outer")));
            }
        });
    }

    #[test]
    fn loom_a_completion_after_the_regions_cancel_does_not_win() {
        loom::model(|| {
            let region = CancelScope::new();
            let token = region.token();
            let canceller = token.clone();
            let cancel = thread::spawn(move || canceller.cancel("stop"));
            let mut saw_cancel = false;
            let result = block_on(region.run(async {
                // Completes in its first poll; if the cancel is visible here, it came first.
                saw_cancel = token.is_cancelled();
                5
            }));
            assert!(cancel.join().unwrap());
            if saw_cancel {
                assert_eq!(result, Err(CancelReason::user("stop")), "a late completion won");
            }
            if let Err(reason) = result {
                assert_eq!(reason, CancelReason::user("stop"));
            }
        });
    }
}

mod scope_models {
    //! Cancel propagation in a scope's registry: a child that registers while its scope is
    //! being cancelled (by the parent, or by a failing sibling) is cancelled either way, and the
    //! scope sees every child end.

    use std::sync::Arc;

    use loom::thread;

    use crate::TaskError;
    use crate::scope::registry::{Failure, ScopeChild, ScopeShared};
    use crate::task::core::{self, new_task};
    use crate::task::handle::TaskOutput;
    use crate::task::{CancelReason, TaskId};

    type Output = TaskOutput<u32, String>;

    #[test]
    fn loom_a_child_registering_while_its_parent_is_cancelled_is_cancelled() {
        loom::model(|| {
            let scope = ScopeShared::new(false);
            let (mut completer, joiner) = new_task::<Output>(TaskId::next(), None);
            let parent = scope.clone();
            let cancel =
                thread::spawn(move || parent.cancel_all(CancelReason::ParentCancelled, None));

            let child: Arc<dyn ScopeChild> = joiner.core();
            let link = scope.register::<String>(child);
            // The runner: it may start before the cancel arrives, never after.
            let started = completer.try_start(None);
            cancel.join().unwrap();

            assert!(joiner.header().is_cancelled(), "a registering child escaped the cancel");
            assert_eq!(joiner.header().cancel_reason(), Some(CancelReason::ParentCancelled));
            assert!(!completer.try_finish(core::SUCCESS), "a cancelled child cannot complete");
            if !started {
                assert!(!joiner.header().has_started());
            }
            completer.publish(Err(TaskError::Cancelled(CancelReason::ParentCancelled)));
            link.ended();
            assert!(scope.descendants.is_empty(), "the scope missed the child's end");
            assert!(scope.take_failures().is_empty(), "a cancellation is not a failure");
        });
    }

    #[test]
    fn loom_a_failing_sibling_cancels_a_child_that_registers_concurrently() {
        loom::model(|| {
            let scope = ScopeShared::new(false);
            let (failing, failing_joiner) = new_task::<Output>(TaskId::next(), None);
            let child: Arc<dyn ScopeChild> = failing_joiner.core();
            let failing_link = scope.register::<String>(child);
            let sibling = thread::spawn(move || {
                assert!(failing.try_finish(core::ERROR));
                failing_link.before_publish(core::ERROR);
                failing.publish(Err(TaskError::Failed("boom".to_owned())));
                failing_link.ended();
            });

            let (mut late, late_joiner) = new_task::<Output>(TaskId::next(), None);
            let child: Arc<dyn ScopeChild> = late_joiner.core();
            let late_link = scope.register::<String>(child);
            let _ = late.try_start(None);
            sibling.join().unwrap();

            assert_eq!(late_joiner.header().cancel_reason(), Some(CancelReason::SiblingFailed));
            late.publish(Err(TaskError::Cancelled(CancelReason::SiblingFailed)));
            late_link.ended();
            assert!(scope.descendants.is_empty());
            let failures = scope.take_failures();
            assert_eq!(failures.len(), 1, "exactly the one failure is recorded");
            let Failure::Child(failed) = &failures[0] else { panic!("not a child failure") };
            assert!(failed.take_failure().is_some(), "the unawaited failure is kept, not lost");
            drop(failing_joiner);
        });
    }
}

mod channel_models {
    //! The MPMC channel core: sends, receives and closes racing, with parked tasks, so a lost
    //! wake-up shows as a deadlock and a lost or duplicated message as a failed assertion.

    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use loom::future::block_on;
    use loom::thread;

    use crate::channel::{RecvError, TryRecvError, channel};

    #[test]
    fn loom_a_blocked_sender_and_a_receiver_exchange_everything_in_order() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(1);
            let producer = thread::spawn(move || {
                block_on(tx.send(1)).unwrap();
                block_on(tx.send(2)).unwrap(); // waits for a place: the receiver must wake it
            });
            assert_eq!(block_on(rx.recv()), Ok(1));
            assert_eq!(block_on(rx.recv()), Ok(2));
            producer.join().unwrap();
            assert_eq!(block_on(rx.recv()), Err(RecvError::Closed));
        });
    }

    #[test]
    fn loom_closing_wakes_a_parked_receiver() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(1);
            let closer = thread::spawn(move || {
                let _ = tx.try_send(5);
                drop(tx);
            });
            // Parks until the message or the close arrives; a missed wake-up is a deadlock.
            let first = block_on(rx.recv());
            closer.join().unwrap();
            assert_eq!(first, Ok(5), "the message sent before the close is delivered first");
            assert_eq!(block_on(rx.recv()), Err(RecvError::Closed));
        });
    }

    #[test]
    fn loom_a_message_handed_to_a_cancelled_recv_is_not_lost() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(1);
            let sender = thread::spawn(move || tx.try_send(9).is_ok());
            {
                let mut recv = pin!(rx.recv());
                // Registers as a waiter (or takes the message if it is already there).
                if let Poll::Ready(got) =
                    recv.as_mut().poll(&mut Context::from_waker(Waker::noop()))
                {
                    assert_eq!(got, Ok(9));
                    assert!(sender.join().unwrap());
                    return;
                }
            } // dropped while waiting: a message handed over meanwhile goes back
            assert!(sender.join().unwrap());
            assert_eq!(rx.try_recv(), Ok(9));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        });
    }

    #[test]
    fn loom_a_permit_racing_a_send_always_finds_its_place() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(1);
            let racer = tx.clone();
            let reserver = thread::spawn(move || {
                // Waits for the place if the racer took it; then the place is ours.
                let permit = block_on(tx.reserve()).unwrap();
                permit.send(1).unwrap();
            });
            let raced = racer.try_send(2).is_ok();
            drop(racer);
            let mut got = vec![block_on(rx.recv()).unwrap()];
            if raced {
                got.push(block_on(rx.recv()).unwrap());
            }
            reserver.join().unwrap();
            got.sort_unstable();
            assert_eq!(got, if raced { vec![1, 2] } else { vec![1] });
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        });
    }

    #[test]
    fn loom_closing_gives_a_waiting_send_its_value_back() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(1);
            tx.try_send(0).unwrap();
            let sender = thread::spawn(move || block_on(tx.send(1)));
            // Frees the place, then closes: the send either got in before the close or gets
            // its value back; it never waits forever (a missed wake-up is a deadlock).
            assert_eq!(rx.try_recv(), Ok(0));
            rx.close();
            let sent = sender.join().unwrap();
            match sent {
                Ok(()) => assert_eq!(rx.try_recv(), Ok(1)),
                Err(error) => assert_eq!(error.into_inner(), 1),
            }
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        });
    }

    #[test]
    fn loom_a_wake_up_given_to_a_dropped_recv_passes_to_the_next_receiver() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(1);
            let other = rx.clone();
            let noop = &mut Context::from_waker(Waker::noop());
            let mut first = Box::pin(rx.recv());
            let mut second = Box::pin(other.recv());
            assert!(first.as_mut().poll(noop).is_pending(), "nothing was sent yet");
            assert!(second.as_mut().poll(noop).is_pending(), "in line behind `first`");
            // Kept open, so only the wake-up for the 7 (not a close) can wake `second`.
            let _open = tx.clone();
            let sender = thread::spawn(move || tx.try_send(7).unwrap());
            // Races the send: a wake-up `first` was given for the 7 must pass to `second`.
            drop(first);
            assert_eq!(block_on(second.as_mut()), Ok(7));
            sender.join().unwrap();
        });
    }
}
