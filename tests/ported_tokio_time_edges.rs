//! Edges of tokio's time tests that the other ports leave out (tokio at `ea91b33c`:
//! `tests/time_interval.rs`, `time_timeout.rs`, `time_sleep.rs`, and `src/time/clock.rs`):
//!
//! - tokio's interval tests with their 1 ms offset kept, so that a tick is taken late by less
//!   than the 5 ms tolerance, and that tolerance's exact edge;
//! - when a timeout starts counting: at the region's first poll in klaw (as trio's scope, at
//!   its entry), where tokio's `timeout` counts from the call; a deadline (`fail_at`) falls at
//!   its instant either way;
//! - a sleep that completed because its paused runtime shut down says it has elapsed;
//! - an `advance` too far for an `Instant` panics and leaves the clock as it was, as tokio's.

use std::future::poll_fn;
use std::task::Poll;
use std::time::{Duration, Instant};

use klaw::cancel::{fail_after, fail_at, move_on_after};
use klaw::time::{Interval, MissedTickBehavior, advance, interval, interval_at, now, sleep};
use klaw::{Handle, Runtime, TaskError};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Polls the interval's next tick once, with the caller's waker.
async fn poll_tick(ticks: &mut Interval) -> Poll<Instant> {
    poll_fn(|cx| Poll::Ready(ticks.poll_tick(cx))).await
}

/// Polls each tick: ready with `start + each` of `due` (ms), then pending.
async fn expect_ticks(ticks: &mut Interval, start: Instant, due: &[u64]) {
    for &at in due {
        assert_eq!(poll_tick(ticks).await, Poll::Ready(start + ms(at)), "the tick due at {at} ms");
    }
    assert!(poll_tick(ticks).await.is_pending(), "a tick beyond {due:?}");
}

// ---- tokio/tests/time_interval.rs, with tokio's own 1 ms offset ------------------------------

/// tokio: time_interval::delay, as written (the clock 1 ms ahead of the schedule). After the late
/// tick the schedule shifts to 1251; from then on every tick is taken 1 ms after it is due, under
/// the 5 ms tolerance, so it stays on 1251 + k·300 and is not treated as missed again.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn delay_keeps_ticks_taken_a_millisecond_late_on_the_shifted_schedule() {
    let start = now();
    advance(ms(1)).await;
    let mut ticks = interval_at(start, ms(300));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    expect_ticks(&mut ticks, start, &[0]).await;
    advance(ms(100)).await;
    expect_ticks(&mut ticks, start, &[]).await;
    advance(ms(200)).await;
    expect_ticks(&mut ticks, start, &[300]).await;
    advance(ms(650)).await; // at 951: the tick due at 600 is late
    expect_ticks(&mut ticks, start, &[600]).await;
    advance(ms(100)).await;
    expect_ticks(&mut ticks, start, &[]).await;
    advance(ms(201)).await;
    expect_ticks(&mut ticks, start, &[1251]).await;
    advance(ms(300)).await;
    expect_ticks(&mut ticks, start, &[1551]).await;
    advance(ms(300)).await;
    expect_ticks(&mut ticks, start, &[1851]).await;
}

/// tokio: time_interval::reset and reset_immediately, as written (1 ms offset): a reset counts
/// the period from the clock's now, 401, not from the schedule.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn reset_and_reset_immediately_count_from_now_when_the_clock_is_off_the_grid() {
    for immediately in [false, true] {
        let start = now();
        advance(ms(1)).await;
        let mut ticks = interval_at(start, ms(300));
        expect_ticks(&mut ticks, start, &[0]).await;
        advance(ms(100)).await;
        expect_ticks(&mut ticks, start, &[]).await;
        advance(ms(200)).await;
        expect_ticks(&mut ticks, start, &[300]).await;
        advance(ms(100)).await; // at 401, the tick due at 600 registered
        expect_ticks(&mut ticks, start, &[]).await;
        if immediately {
            ticks.reset_immediately();
            expect_ticks(&mut ticks, start, &[401]).await;
            advance(ms(100)).await;
            expect_ticks(&mut ticks, start, &[]).await;
            advance(ms(200)).await;
            expect_ticks(&mut ticks, start, &[701]).await;
        } else {
            ticks.reset();
            advance(ms(250)).await;
            expect_ticks(&mut ticks, start, &[]).await;
            advance(ms(50)).await;
            expect_ticks(&mut ticks, start, &[701]).await;
            advance(ms(300)).await;
            expect_ticks(&mut ticks, start, &[1001]).await;
        }
        advance(secs(10)).await; // apart from the next round
    }
}

/// The tolerance's edge, as tokio's `poll_tick` has it (`now > due + 5 ms`): a tick taken exactly
/// 5 ms late keeps the schedule; one taken 5 ms and 1 ns late is missed, and Delay then ticks a
/// period after now, Skip and Burst at the next multiple of the period.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_tick_exactly_five_ms_late_is_on_time_and_a_nanosecond_more_is_missed() {
    let nano = Duration::from_nanos(1);
    for behavior in [MissedTickBehavior::Delay, MissedTickBehavior::Skip, MissedTickBehavior::Burst]
    {
        let start = now();
        let mut ticks = interval(ms(100));
        ticks.set_missed_tick_behavior(behavior);
        expect_ticks(&mut ticks, start, &[0]).await;
        advance(ms(105)).await; // exactly 5 ms late: not missed
        expect_ticks(&mut ticks, start, &[100]).await;
        advance(ms(95)).await;
        expect_ticks(&mut ticks, start, &[200]).await; // still on the grid
        advance(ms(105) + nano).await; // 5 ms and 1 ns late: missed
        expect_ticks(&mut ticks, start, &[300]).await;
        let next = match behavior {
            MissedTickBehavior::Delay => ms(405) + nano,
            MissedTickBehavior::Skip | MissedTickBehavior::Burst => ms(400),
        };
        advance(next - (ms(305) + nano) - nano).await;
        assert!(poll_tick(&mut ticks).await.is_pending(), "{behavior:?}: early");
        advance(nano).await;
        assert_eq!(poll_tick(&mut ticks).await, Poll::Ready(start + next), "{behavior:?}");
        advance(secs(10)).await; // apart from the next round
    }
}

// ---- tokio/tests/time_timeout.rs: when a timeout starts ------------------------------------

/// A region's timeout counts from its first poll, as documented (`Elapsed::after`, the book's
/// `tokio::time::timeout` row): a `fail_after` made, then awaited after four seconds of other
/// work, still gives its future the whole ten seconds. (tokio's `timeout` counts from the call,
/// which `fail_at(now() + d, ..)` gives: the next test.)
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_timeout_counts_from_its_first_poll_not_from_when_it_is_made() {
    let start = now();
    let bounded = fail_after(secs(10), std::future::pending::<()>());
    sleep(secs(4)).await; // other work before the timeout is awaited
    let elapsed = bounded.await.unwrap_err();
    assert_eq!(elapsed.after(), secs(10));
    assert_eq!(now() - start, secs(14), "fail_after counts from its first poll");

    let start = now();
    let bounded = move_on_after(secs(10), std::future::pending::<()>());
    sleep(secs(4)).await;
    assert_eq!(bounded.await, None);
    assert_eq!(now() - start, secs(14), "move_on_after counts from its first poll");
}

/// The control for the test above: a deadline (`fail_at`, tokio's `timeout_at`) made before other
/// work still falls at its instant.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_deadline_made_before_other_work_still_falls_at_its_instant() {
    let start = now();
    let bounded = fail_at(start + secs(10), std::future::pending::<()>());
    sleep(secs(4)).await;
    let elapsed = bounded.await.unwrap_err();
    assert_eq!(elapsed.after(), secs(6)); // what was left of it at the first poll
    assert_eq!(now() - start, secs(10));
}

// ---- tokio/tests/time_sleep.rs::is_elapsed, on a clock that stopped ------------------------

/// tokio's `is_elapsed`: a sleep that was awaited to completion is elapsed. A sleep made on a
/// paused runtime that was then dropped completes at once (book/src/time.md: "every timer still
/// waiting on it fires then ... and a later one is due at once"); having completed, it should
/// say so.
#[test]
fn a_sleep_completed_on_the_clock_of_a_dropped_runtime_reports_elapsed() {
    let rt = Runtime::builder().start_paused(true).build().expect("a paused runtime");
    #[allow(clippy::async_yields_async, reason = "the sleep itself is what is wanted")]
    let mut nap = rt.block_on(async { sleep(secs(3600)) });
    assert!(!nap.is_elapsed());
    drop(rt);
    // Real time here (no runtime): bounded, so a hang is a failure rather than a stuck test.
    let completed = klaw::runtime::block_on(move_on_after(secs(5), &mut nap));
    assert_eq!(completed, Some(()), "a sleep of a dropped runtime stayed pending");
    assert!(nap.is_elapsed(), "a sleep that completed reports it has not elapsed");
}

// ---- tokio/src/time/clock.rs::advance: an advance past the end of `Instant` ----------------

/// tokio's `advance` does `inner.base += duration` on an `Instant`: an overflow panics before
/// anything is stored, and the clock stays where it was. An advance too long for an `Instant`
/// (past `i64::MAX` seconds of the monotonic clock) panics in klaw too (the task reports it),
/// and afterwards the clock must still read, and still move.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn an_advance_past_the_end_of_instant_panics_and_leaves_the_clock_usable() {
    let before = now();
    let too_far = Duration::from_secs(u64::MAX / 2); // i64::MAX seconds
    let mover = Handle::current().unwrap().spawn(advance(too_far));
    let outcome = mover.await;
    assert!(matches!(outcome, Err(TaskError::Panicked(_))), "{outcome:?}");
    assert_eq!(now(), before, "the failed advance moved the clock");
    sleep(secs(1)).await;
    assert_eq!(now() - before, secs(1));
}
