//! Behaviours left out by the ports of tokio's `sync_mutex.rs`, `sync_mutex_owned.rs` and
//! `sync_semaphore.rs` (tokio at `ea91b33ca`) and of trio's `src/trio/_tests/test_timeouts.py`
//! (trio at `60d0c2f8`), in the style of `sync_primitive_edges.rs`:
//!
//! - a waiting `lock()`, `lock_owned()` or `acquire_many()` polled again with another waker (its
//!   task moved) is woken through the new one, and the old one is let go;
//! - one `add_permits` serving several waiters for many permits, in line order, the next one
//!   gathering the rest; a grant dropped unpolled serving several waiters at once;
//! - a grant dropped unpolled after `close`; `acquire_many(MAX_PERMITS)`, the largest possible;
//! - an outer timeout that fires while a shielded inner timeout runs (it waits for the inner one
//!   to end, at the inner's own deadline or earlier); nested timeouts due at the same instant;
//! - a lock whose timeout falls due at the instant the mutex is handed to it.
//!
//! Every scenario that could hang runs under a deadline (`#[klaw::test(timeout = ..)]`).

mod common;

use std::future::pending;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use klaw::Handle;
use klaw::cancel::{
    checkpoint, fail_after, fail_at, is_cancelled, move_on_after, move_on_at, shield,
};
use klaw::sync::{Mutex, Semaphore, TryAcquireError};
use klaw::time::{now, sleep};

#[path = "common/mock_task.rs"]
mod mock_task;

use common::{Flag, secs};
use mock_task::{WakeCount, mock, pending as is_pending, poll_with, ready};

// ---- Helpers.

// ---- Sync: tokio's sync_mutex.rs, sync_mutex_owned.rs, sync_semaphore.rs.

/// tokio `sync_mutex::readiness` and `sync_mutex_owned::readiness` ("once g unlocks, t2 is
/// woken"), with the waiting task polled again from another waker in between, as a task moved
/// to another worker or executor (or a `select!` re-polling with its own waker) would be; and the
/// same for an `acquire_many` that has gathered part of what it asked for. The unlock (or the
/// permits coming back) wakes the waker of the last poll only, and the one it replaced is let go
/// (not kept in the line until the grant).
///
/// What would break it: `poll_acquire` keeping the first stored waker (a `will_wake` test
/// inverted, or a waker stored only when there is none): the new waker is never woken and the
/// moved task hangs; or the replaced waker kept alive in the waiter.
#[test]
fn a_waiting_lock_or_acquire_polled_again_with_another_waker_is_woken_through_the_new_one() {
    let mutex = Arc::new(Mutex::new(0u32));

    // `lock()`.
    let guard = mutex.try_lock_owned().unwrap();
    let (old, new) = (Arc::new(WakeCount::default()), Arc::new(WakeCount::default()));
    let mut lock = pin!(mutex.lock());
    assert!(poll_with(lock.as_mut(), &old).is_pending());
    assert!(poll_with(lock.as_mut(), &new).is_pending());
    assert_eq!(Arc::strong_count(&old), 1, "the replaced waker is still held by the mutex");
    drop(guard);
    assert_eq!((old.wakes(), new.wakes()), (0, 1), "(old, new) wake-ups");
    match poll_with(lock.as_mut(), &new) {
        Poll::Ready(mut guard) => *guard += 1,
        Poll::Pending => panic!("woken but not handed the mutex"),
    }

    // `lock_owned()`.
    let guard = mutex.try_lock_owned().unwrap();
    let (old, new) = (Arc::new(WakeCount::default()), Arc::new(WakeCount::default()));
    let mut lock = pin!(mutex.lock_owned());
    assert!(poll_with(lock.as_mut(), &old).is_pending());
    assert!(poll_with(lock.as_mut(), &new).is_pending());
    assert_eq!(Arc::strong_count(&old), 1);
    drop(guard);
    assert_eq!((old.wakes(), new.wakes()), (0, 1));
    assert!(matches!(poll_with(lock.as_mut(), &new), Poll::Ready(guard) if *guard == 1));

    // `acquire_many(3)` that gathered one permit before the waker changed.
    let semaphore = Semaphore::new(3);
    let held = semaphore.try_acquire_many(2).unwrap();
    let (old, new) = (Arc::new(WakeCount::default()), Arc::new(WakeCount::default()));
    let mut three = pin!(semaphore.acquire_many(3));
    assert!(poll_with(three.as_mut(), &old).is_pending());
    assert_eq!(semaphore.available_permits(), 0, "the free one was gathered");
    assert!(poll_with(three.as_mut(), &new).is_pending());
    assert_eq!(Arc::strong_count(&old), 1);
    drop(held);
    assert_eq!((old.wakes(), new.wakes()), (0, 1));
    match poll_with(three.as_mut(), &new) {
        Poll::Ready(permit) => assert_eq!(permit.unwrap().num_permits(), 3),
        Poll::Pending => panic!("woken but not given its permits"),
    }
    assert_eq!(semaphore.available_permits(), 3);
}

/// tokio `sync_semaphore::add_permits` (a waiter is served by `add_permits`), with several
/// waiters for many permits: one `add_permits(6)` before waiters for 3, 2 and 4 grants the first
/// two in line order and leaves the third with one gathered (it is not woken, and nothing is
/// free for `try_acquire`); the permits that come back later complete it, and what is left over
/// once nobody waits is free.
///
/// What would break it: `hand_out` stopping after the first grant (the waiter for 2 would wait
/// with permits free), serving a later, smaller waiter first (the 2 before the 3), waking the
/// third before it has all four, or leaving permits free while someone waits.
#[test]
fn one_add_permits_serves_several_waiters_for_many_in_line_order() {
    let semaphore = Semaphore::new(0);
    let mut three = mock(semaphore.acquire_many(3));
    let mut two = mock(semaphore.acquire_many(2));
    let mut four = mock(semaphore.acquire_many(4));
    is_pending(three.poll());
    is_pending(two.poll());
    is_pending(four.poll());
    semaphore.add_permits(6);
    assert!(three.is_woken() && two.is_woken());
    assert!(!four.is_woken(), "woken with one of four");
    assert_eq!(semaphore.available_permits(), 0, "the sixth went to the waiter for four");
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    let permit_of_three = ready(three.poll()).unwrap();
    let permit_of_two = ready(two.poll()).unwrap();
    assert_eq!((permit_of_three.num_permits(), permit_of_two.num_permits()), (3, 2));
    is_pending(four.poll());
    drop(permit_of_two); // three of four now
    assert!(!four.is_woken());
    assert_eq!(semaphore.available_permits(), 0);
    drop(permit_of_three); // one completes it, two are left over
    assert!(four.is_woken());
    assert_eq!(semaphore.available_permits(), 2);
    let permit_of_four = ready(four.poll()).unwrap();
    assert_eq!(permit_of_four.num_permits(), 4);
    drop(permit_of_four);
    assert_eq!(semaphore.available_permits(), 6);
}

/// tokio `sync_mutex::readiness` after a cancelled hand-off, and the semaphore's form: a grant
/// dropped before it was polled (an `acquire_many(3)`, a `lock()`) goes on down the line, to as
/// many waiters as it completes (here a waiter for 1 and one for 2, both woken by the one drop;
/// the one behind them not), and never back to the free count in between, where `try_acquire`
/// or `try_lock` would take it. For the mutex, two hand-offs dropped in a row.
///
/// What would break it: `leave` releasing a grant without `hand_out` (permits free while waiters
/// wait), handing it only to the first waiter behind, or to the free count before the line.
#[test]
fn a_grant_dropped_unpolled_goes_down_the_line_to_every_waiter_it_completes() {
    let semaphore = Semaphore::new(3);
    let held = semaphore.try_acquire_many(3).unwrap();
    let mut three = mock(semaphore.acquire_many(3));
    let mut one = mock(semaphore.acquire());
    let mut two = mock(semaphore.acquire_many(2));
    let mut late = mock(semaphore.acquire());
    is_pending(three.poll());
    is_pending(one.poll());
    is_pending(two.poll());
    is_pending(late.poll());
    drop(held);
    assert!(three.is_woken() && !one.is_woken() && !two.is_woken());
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(three); // given all three, never polled again
    assert!(one.is_woken() && two.is_woken(), "one drop completes both");
    assert!(!late.is_woken());
    assert_eq!(semaphore.available_permits(), 0);
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    let (permit_of_one, permit_of_two) = (ready(one.poll()).unwrap(), ready(two.poll()).unwrap());
    assert_eq!((permit_of_one.num_permits(), permit_of_two.num_permits()), (1, 2));
    is_pending(late.poll());
    drop(permit_of_one);
    assert!(late.is_woken());
    drop((permit_of_two, ready(late.poll()).unwrap()));
    assert_eq!(semaphore.available_permits(), 3);

    let mutex = Mutex::new(0u32);
    let guard = mutex.try_lock().unwrap();
    let mut first = mock(mutex.lock());
    let mut second = mock(mutex.lock());
    let mut third = mock(mutex.lock());
    is_pending(first.poll());
    is_pending(second.poll());
    is_pending(third.poll());
    drop(guard);
    drop(first); // handed the mutex, dropped
    assert!(second.is_woken() && !third.is_woken());
    assert!(mutex.try_lock().is_none(), "try_lock took a mutex handed down the line");
    drop(second); // handed it in turn, dropped
    assert!(third.is_woken());
    assert!(mutex.try_lock().is_none());
    *ready(third.poll()) += 1;
    assert_eq!(*mutex.try_lock().unwrap(), 1);
}

/// tokio `sync_semaphore::add_permits_closed` and `forget_closed` count permits on a closed
/// semaphore; klaw's book adds that "an acquire whose permits were handed to it before
/// `Semaphore::close` keeps them". Here that acquire is dropped without being polled again, after
/// the close: its permits come back to the count (`available_permits`, `forget_permits`), the
/// waiter behind it, failed by the close, gets none, and acquires keep failing.
///
/// What would break it: `leave` forgetting a grant once the semaphore is closed (the two
/// permits lost), or handing them to a waiter the close already failed.
#[test]
fn a_grant_dropped_unpolled_after_close_gives_its_permits_back_to_the_count() {
    let semaphore = Semaphore::new(0);
    let mut granted = mock(semaphore.acquire_many(2));
    let mut behind = mock(semaphore.acquire());
    is_pending(granted.poll());
    is_pending(behind.poll());
    semaphore.add_permits(2);
    assert!(granted.is_woken() && !behind.is_woken());
    semaphore.close();
    assert!(behind.is_woken());
    assert!(ready(behind.poll()).is_err(), "the close failed the waiter behind");
    assert_eq!(semaphore.available_permits(), 0, "the two are the granted acquire's");
    drop(granted);
    assert_eq!(semaphore.available_permits(), 2, "the dropped grant's permits came back");
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::Closed);
    assert!(ready(mock(semaphore.acquire()).poll()).is_err());
    assert_eq!(semaphore.forget_permits(5), 2, "they count as the semaphore's, free");
}

/// tokio `sync_semaphore::no_panic_at_maxpermits` for acquires: klaw's `acquire_many` panics
/// above `MAX_PERMITS` (the book's "Coming from tokio"), so exactly `MAX_PERMITS` must still be
/// possible: on a full semaphore at once, and, waiting, gathered as the last held permit comes
/// back; borrowed and owned.
///
/// What would break it: the bound checked with `<` (`acquire_many(MAX_PERMITS)` panicking), or
/// an overflow in gathering `MAX_PERMITS` (the total kept at most `MAX_PERMITS`).
#[test]
fn acquire_many_of_exactly_max_permits_is_possible() {
    let semaphore = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    let all = ready(mock(semaphore.acquire_many(Semaphore::MAX_PERMITS)).poll()).unwrap();
    assert_eq!(all.num_permits(), Semaphore::MAX_PERMITS);
    drop(all);
    let one = semaphore.try_acquire_owned().unwrap();
    let mut all = mock(semaphore.acquire_many_owned(Semaphore::MAX_PERMITS));
    is_pending(all.poll());
    assert_eq!(semaphore.available_permits(), 0, "it gathered all but the held one");
    drop(one);
    assert!(all.is_woken());
    let all = ready(all.poll()).unwrap();
    assert_eq!(all.num_permits(), Semaphore::MAX_PERMITS);
    drop(all);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
}

// ---- Timeouts: trio's test_timeouts.py.

/// trio `test_move_on_after_moves_on_even_if_shielded` and
/// `test_fail_after_fails_even_if_shielded` with the outer cancellation an outer timeout that
/// fires first (the port in `ported_trio_cancellation.rs` cancels the outer region by a token,
/// and `cancel_scopes::a_region_inside_a_shield_still_has_its_own_deadline` accepts either
/// outcome on a real clock). On a paused clock: an outer `move_on_after(5 s)` around a shielded
/// `move_on_after(10 s)` (then `fail_after(10 s)`): inside the shield nothing is cancelled at
/// 7 s; the inner one ends at 10 s with `None` (`Elapsed` of 10 s) seen by the outer body; the
/// outer returns `None` at 10 s, and no code after the shield runs past its next checkpoint.
/// And shielded work that ends before its own deadline (at 8 s of 60) ends the outer region
/// then, whose body's value loses to its deadline.
///
/// What would break it: the inner region hearing the outer deadline through the shield (it would
/// end at 5 s, or never return), `enclosing_stopping` looking past the shield (the inner never
/// returns: a hang), the outer's fired timer pulling the clock again, or a completion after the
/// outer deadline winning (`Some("completed")`).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn an_outer_timeout_that_fires_first_waits_for_a_shielded_inner_timeout_to_end() {
    for fail in [false, true] {
        let start = now();
        let (quiet_inside, inner_ended, after_shield) =
            (Flag::default(), Flag::default(), Flag::default());
        let outer = move_on_after(secs(5), async {
            let inner_body = async {
                sleep(secs(7)).await; // past the outer deadline
                if !is_cancelled() {
                    quiet_inside.set();
                }
                pending::<()>().await;
            };
            if fail {
                let elapsed = shield(fail_after(secs(10), inner_body)).await.unwrap_err();
                assert_eq!(elapsed.after(), secs(10));
            } else {
                assert_eq!(shield(move_on_after(secs(10), inner_body)).await, None);
            }
            assert_eq!(now() - start, secs(10), "the inner timeout ended at its own deadline");
            inner_ended.set();
            checkpoint().await;
            after_shield.set();
        })
        .await;
        assert_eq!(outer, None, "fail_after: {fail}");
        assert_eq!(now() - start, secs(10), "fail_after: {fail}");
        assert!(quiet_inside.is_set(), "the outer deadline reached into the shield ({fail})");
        assert!(inner_ended.is_set(), "fail_after: {fail}");
        assert!(!after_shield.is_set(), "a checkpoint returned after the shield ({fail})");
    }

    let start = now();
    let done = Flag::default();
    let outer = move_on_after(secs(5), async {
        let inner = shield(move_on_after(secs(60), async {
            sleep(secs(8)).await;
            done.set();
        }))
        .await;
        assert_eq!(inner, Some(()));
        "completed"
    })
    .await;
    assert_eq!(outer, None);
    assert!(done.is_set());
    assert_eq!(now() - start, secs(8), "the outer region returned when the shield ended");
}

/// trio `test_fail` / `test_move_on_after` nested, at a tie: two nested timeouts that fall due at
/// the same instant (relative ones first polled together, then absolute ones of the same
/// `Instant`) are both cancelled; the outermost catches it (the book: "the outermost cancelled
/// one catches it"), so the inner one never returns its `Elapsed` or `None` into the outer
/// body, and the outer reports its own timeout at that instant. The scope form of this is
/// `nursery_start_edges::nested_scopes_with_the_same_deadline_the_outer_catches_it`; this is
/// the regions'.
///
/// What would break it: a region that catches a deadline of its own while its enclosing region
/// also stops (the inner returns, `returned` is set), e.g. the inner's timer looked at before
/// `enclosing_stopping`, or the outer polling its body before its own timer at the tie.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn nested_timeouts_due_at_the_same_instant_are_caught_by_the_outer_one() {
    let returned = Flag::default();
    let start = now();
    let outer = move_on_after(secs(5), async {
        let inner = fail_after(secs(5), pending::<()>()).await;
        returned.set();
        inner
    })
    .await;
    assert_eq!(outer, None);
    assert!(!returned.is_set(), "the inner timeout returned into the outer body");
    assert_eq!(now() - start, secs(5));

    let at = now() + secs(3);
    let outer = fail_at(at, async {
        let inner = move_on_at(at, pending::<()>()).await;
        returned.set();
        inner
    })
    .await;
    assert_eq!(outer.unwrap_err().after(), secs(3));
    assert!(!returned.is_set(), "the inner deadline returned into the outer body");
    assert_eq!(now(), at);
}

/// tokio `sync_mutex::aborted_future_2` (a lock cut short by a timeout leaves the mutex
/// unlocked) with trio's tie rule (`virtual_time::a_deadline_that_falls_due_with_its_future_wins`):
/// on a paused clock, a `lock()` bounded by `move_on_after(5 s)` waits behind a guard released at
/// exactly 5 s, and a third task waits behind it. Whichever of the two due timers' tasks runs
/// first, the bounded lock gives `None` (the deadline wins the tie, even if the mutex was handed
/// to it a moment before), never changes the value, and the mutex goes on to the third task at
/// 5 s.
///
/// What would break it: the region polling its body before its timer (the bounded lock takes the
/// mutex at its deadline: the value ends 11, or the outcome is `Some`), or a lock handed to a
/// future its deadline dropped that is not passed on (the third task hangs: the test times out).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_lock_whose_timeout_falls_due_as_the_mutex_is_handed_to_it_passes_it_on() {
    let start = now();
    let handle = Handle::current().unwrap();
    let mutex = Arc::new(Mutex::new(0u32));
    let guard = mutex.try_lock_owned().unwrap();
    let holder = handle.spawn(async move {
        sleep(secs(5)).await;
        drop(guard);
    });
    let bounded = handle.spawn({
        let mutex = mutex.clone();
        async move { move_on_after(secs(5), async { *mutex.lock().await += 1 }).await }
    });
    let next = handle.spawn({
        let mutex = mutex.clone();
        async move {
            sleep(secs(1)).await; // in line behind the bounded lock
            let mut guard = mutex.lock().await;
            *guard += 10;
            now() - start
        }
    });
    holder.await.unwrap();
    assert_eq!(bounded.await.unwrap(), None, "the lock won the tie with its deadline");
    assert_eq!(next.await.unwrap(), secs(5), "the mutex went on at once");
    assert_eq!(*mutex.try_lock().unwrap(), 10, "the bounded lock changed the value");
}
