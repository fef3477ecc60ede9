//! Loom models of cancel regions (`region.rs`, `state.rs`): a region cancelled while the region
//! nested in it completes, or while it drops that region, and a completion that comes after a
//! region's own cancel.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::poll_fn;
use std::task::Poll;

use loom::future::block_on;
use loom::thread;

use crate::cancel::{Region, Token};
use crate::task::CancelReason;

#[test]
fn loom_a_region_cancelled_while_its_nested_region_completes() {
    loom::model(|| {
        let outer = Region::new();
        let outer_token = outer.token();
        let inner = Region::new();
        let inner_token = inner.token();
        let canceller = thread::spawn(move || outer_token.cancel("outer"));
        let ended_token = inner_token.clone();
        let mut inner_result = None;
        let mut heard_at_the_end = None;
        let result = block_on(outer.run(async {
            // Completes in its first poll, while the outer cancel may land at any point.
            inner_result = Some(inner.run(async { 5 }).await);
            heard_at_the_end = Some(ended_token.reason());
            poll_fn(|_| Poll::<()>::Pending).await;
        }));
        assert!(canceller.join().unwrap());
        // The outer region is the one that catches its cancellation (no lost wake-up: the
        // model would deadlock), and the inner region's token, once the region ended, keeps
        // what it heard while it ran: a cancel that came later does not reach it.
        assert_eq!(result, Err(CancelReason::user("outer")));
        if let Some(inner_result) = inner_result {
            assert_eq!(inner_result, Ok(5), "the inner region's own token never fired");
            assert_eq!(Some(inner_token.reason()), heard_at_the_end);
        }
    });
}

#[test]
fn loom_a_region_dropped_by_an_enclosing_cancel_reports_it() {
    loom::model(|| {
        let outer = Region::new();
        let outer_token = outer.token();
        let inner = Region::new();
        let inner_token = inner.token();
        let canceller = thread::spawn(move || outer_token.cancel("outer"));
        let mut inner_started = false;
        let result = block_on(outer.run(async {
            let _ = inner
                .run(async {
                    inner_started = true;
                    poll_fn(|_| Poll::<()>::Pending).await;
                })
                .await;
        }));
        assert!(canceller.join().unwrap());
        assert_eq!(result, Err(CancelReason::user("outer")));
        // The outer cancel dropped the inner region, which leaves the outer one as it goes:
        // however that raced the cancel telling its children, the inner token heard it.
        if inner_started {
            assert_eq!(inner_token.reason(), Some(CancelReason::user("outer")));
        }
    });
}

#[test]
fn loom_a_region_dropped_by_a_cancel_two_levels_up_reports_it() {
    loom::model(|| {
        let outer = Region::new();
        let outer_token = outer.token();
        let (middle, inner) = (Region::new(), Region::new());
        let inner_token = inner.token();
        let canceller = thread::spawn(move || outer_token.cancel("outer"));
        let mut inner_started = false;
        let result = block_on(outer.run(async {
            let running_inner = inner.run(async {
                inner_started = true;
                poll_fn(|_| Poll::<()>::Pending).await;
            });
            let _ = middle.run(running_inner).await;
        }));
        assert!(canceller.join().unwrap());
        assert_eq!(result, Err(CancelReason::user("outer")));
        // The cancel is told down one level at a time, and the drop may overtake it: the inner
        // region looks past the middle one, not yet told, to the outer one that decided.
        if inner_started {
            assert_eq!(inner_token.reason(), Some(CancelReason::user("outer")));
        }
    });
}

#[test]
fn loom_a_completion_after_the_regions_cancel_does_not_win() {
    loom::model(|| {
        let region = Region::new();
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

/// A parent token and its child cancelled at once: a child `cancel` that says it decided the
/// cancellation ("the first reason wins") leaves the child reporting its own reason, one that
/// says it did not the parent's. (The parent's cancel reaching the child between the child's
/// own decision and its record of it made the child report the parent's reason.)
#[test]
fn loom_a_child_tokens_cancel_that_decided_is_the_reason_it_reports() {
    loom::model(|| {
        let parent = Token::new();
        let child = parent.child();
        let canceller = parent.clone();
        let th = thread::spawn(move || canceller.cancel("parent"));
        let decided = child.cancel("child");
        assert!(th.join().unwrap());
        let expected = CancelReason::user(if decided { "child" } else { "parent" });
        assert_eq!(child.reason(), Some(expected), "decided by the child: {decided}");
        assert_eq!(parent.reason(), Some(CancelReason::user("parent")));
    });
}
