//! Behaviours of tokio's time tests (tokio at `ea91b33c`:
//! `tests/time_pause.rs`, `time_sleep.rs`, `time_interval.rs`, `time_timeout.rs`,
//! `coop_budget.rs`), for the behaviours the existing ports (`virtual_time.rs`,
//! `ported_tokio_tasks.rs`, `ported_tokio_time_and_models.rs`, `ported_tokio_time_edges.rs`,
//! `time_and_select_edges.rs`, `cancel_tokens_and_time.rs`, `cooperative.rs`) leave out:
//!
//! - the paused clock with a thread of its own: an `advance` or a `Sleep` made on the paused
//!   runtime and awaited on that thread while the runtime is idle with no timer, and a task woken
//!   from such a thread;
//! - zero timeouts and deadlines of now, in every form klaw has (klaw's rule, not tokio's: a
//!   deadline that has come when the region starts cancels even a ready future);
//! - when an inline task's timeout starts counting;
//! - timers dropped (by their owner, by a reset and drop, by a cancelled task, by another task
//!   woken in a jump) never pull the clock afterwards;
//! - the cooperative budget's exact size for elapsed timers and for an interval's missed ticks;
//! - `Skip` on the longest period after a stall past the thirty years a saturated deadline gets.
//!
//! tokio's `time::pause()` is a runtime whose clock starts paused; its `Instant::now()` is
//! `klaw::time::now()`. Nothing here asserts on real time; every test is bounded in real time.

use std::future::{Future, IntoFuture, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use klaw::cancel::{fail_after, move_on_after, move_on_at};
use klaw::time::{Interval, MissedTickBehavior, Sleep, advance, interval, now, sleep};
use klaw::{Error, Handle, Task, TaskError};

/// What klaw documents a deadline too far for an `Instant` saturates to (`sleep`'s docs).
const THIRTY_YEARS: Duration = Duration::from_secs(86_400 * 365 * 30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Polls `future` once with the caller's context.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// Polls the interval's next tick once, with the caller's waker.
async fn poll_tick(ticks: &mut Interval) -> Poll<Instant> {
    poll_fn(|cx| Poll::Ready(ticks.poll_tick(cx))).await
}

// ---- tokio/tests/time_pause.rs: the paused clock and a thread of its own --------------------

/// tokio: time_pause::advance_after_poll (and pause_time_in_task, which klaw has as an `advance`
/// from a spawned task): here the `advance` is made in the test's body, on the paused clock, and
/// awaited on a thread klaw did not start, while the runtime is idle with no timer pending. The
/// runtime is settled ("every other task waits"), so it must move the clock by exactly 5 s and
/// return. A `Sleep` awaited the same way is woken because registering a *first* timer notifies
/// the idle worker (clock.rs `poll_timer`); an `advance`'s wait to settle notifies nothing.
///
/// What would break it: `VirtualClock::settled` registering its waiter without waking a worker
/// parked in `Step::NoTimer` (the worker then never looks at the clock again, and the advance
/// waits forever: here, until its 2 s real-time bound returns `None`).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn an_advance_awaited_on_a_thread_of_its_own_completes_while_the_runtime_idles() {
    let start = now();
    let moving = advance(secs(5)); // made here: it moves this runtime's clock
    let (tx, rx) = klaw::channel::bounded::<Option<()>>(1);
    let thread = std::thread::spawn(move || {
        // By now the worker has found the runtime idle with no timer, and waits.
        std::thread::sleep(ms(50));
        // No runtime on this thread: the bound is real time.
        let outcome = klaw::runtime::block_on(move_on_after(secs(2), moving));
        tx.send_blocking(outcome)
    });
    let outcome = rx.recv().await;
    thread.join().unwrap().unwrap();
    assert_eq!(outcome, Ok(Some(())), "an advance awaited off the runtime never completed");
    assert_eq!(now() - start, secs(5));
}

/// tokio: time_alt::reset_should_stay_on_same_runtime and time_sleep::delayed_sleep_level_0, with
/// the sleep polled off its runtime: a sleep made in the body (so on the paused clock, book
/// "A timer takes its clock when it is made") and awaited on a thread of its own while the
/// runtime idles with no other timer. The thread counts as waiting, so the clock jumps to the
/// sleep's deadline, the sleep completes, and the clock reads exactly an hour later.
///
/// What would break it: the first-timer notification of `VirtualClock::poll_timer` going (the
/// worker stays parked in `Step::NoTimer`), or the sleep taking real time on the foreign thread.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_paused_sleep_awaited_on_a_thread_of_its_own_fires_while_the_runtime_idles() {
    let start = now();
    let nap = sleep(secs(3600));
    let (tx, rx) = klaw::channel::bounded::<Option<()>>(1);
    let thread = std::thread::spawn(move || {
        std::thread::sleep(ms(50)); // the runtime is idle with no timer by now
        tx.send_blocking(klaw::runtime::block_on(move_on_after(secs(2), nap)))
    });
    assert_eq!(rx.recv().await, Ok(Some(())), "the paused sleep never fired");
    thread.join().unwrap().unwrap();
    assert_eq!(now() - start, secs(3600));
}

/// tokio: time_pause's auto-advance (`paused_time_stress_run`), with a task woken from a thread
/// klaw did not start. Book: "What klaw cannot see does not hold the clock back: a thread it did
/// not start ... A task waiting on one of those counts as waiting, and the clock may jump past
/// other timers meanwhile." A task waits for a message from such a thread, which sends only once
/// a half-hour sleeper has run (so the clock must jump while that task waits), and only after
/// the runtime has gone idle with no timer; woken, the task sleeps an hour, which the clock must
/// jump to as well.
///
/// What would break it: counting a task that waits on a foreign thread as busy (the half hour
/// never passes and the thread never sends), or a worker parked with no timer that a foreign
/// wake-up does not rouse, or whose next look at the clock misses the woken task's new timer.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_task_woken_from_a_thread_of_its_own_runs_and_its_next_sleep_is_jumped_to() {
    let start = now();
    let handle = Handle::current().unwrap();
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let half_hour_passed = Arc::new(AtomicBool::new(false));
    let sleeper = handle.spawn({
        let passed = half_hour_passed.clone();
        async move {
            sleep(secs(1800)).await;
            passed.store(true, Ordering::SeqCst);
        }
    });
    let receiver = handle.spawn(async move {
        let got = rx.recv().await;
        let received_at = now();
        sleep(secs(3600)).await;
        (got, received_at, now())
    });
    let thread = std::thread::spawn(move || {
        let limit = std::time::Instant::now() + secs(5);
        while !half_hour_passed.load(Ordering::SeqCst) && std::time::Instant::now() < limit {
            std::thread::sleep(ms(1));
        }
        std::thread::sleep(ms(20)); // the runtime is idle, with no timer, by now
        tx.send_blocking(7)
    });
    sleeper.await.unwrap();
    let (got, received_at, ended) = receiver.await.unwrap();
    thread.join().unwrap().unwrap();
    assert_eq!(got, Ok(7));
    assert_eq!(received_at - start, secs(1800), "the clock waited for the foreign thread");
    assert_eq!(ended - start, secs(5400));
    assert_eq!(now() - start, secs(5400));
}

// ---- tokio/tests/time_timeout.rs: zero timeouts, and when a timeout starts ------------------

/// tokio: time_timeout::simultaneous_deadline_future_completion (`timeout_at(now, ready)` is
/// `Ok` in tokio). klaw's rule (from_tokio.md, the `tokio::time::timeout` row): "A deadline
/// already passed when the region starts cancels it at once, even if its future is ready", and
/// so does one that falls due with the future. A zero timeout is such a deadline: checked here
/// in every form klaw has, with a ready future each time: `fail_after`, `move_on_after`,
/// `move_on_at(now())`, a spawned and an inline `Task::timeout`, `scope!(timeout = ..)` and
/// `scope!(deadline = now())`. Each reports its typed timeout with a zero allowance, and none
/// moves the paused clock.
///
/// What would break it: a zero timeout treated as "no timeout", a body polled before the
/// deadline is looked at (the ready value would win), `is_due` as `now > deadline`, or one form
/// disagreeing with the others.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_zero_timeout_or_a_deadline_of_now_cancels_a_ready_future_in_every_form() {
    let start = now();
    let failed = fail_after(Duration::ZERO, async { 1 }).await;
    assert_eq!(failed.map_err(|elapsed| elapsed.after()), Err(Duration::ZERO));
    assert_eq!(move_on_after(Duration::ZERO, async { 2 }).await, None);
    assert_eq!(move_on_at(now(), async { 3 }).await, None);

    let spawned = Handle::current().unwrap().spawn(Task::new(async { 4 }).timeout(Duration::ZERO));
    assert_eq!(spawned.await, Err(TaskError::TimedOut(Duration::ZERO)));
    let inline = Task::new(async { 5 }).timeout(Duration::ZERO).await;
    assert_eq!(inline, Err(TaskError::TimedOut(Duration::ZERO)));

    let scoped = klaw::scope!(timeout = Duration::ZERO, |_s| Ok(6));
    assert!(
        matches!(&scoped, Err(Error::Elapsed(elapsed)) if elapsed.after() == Duration::ZERO),
        "{scoped:?}"
    );
    let deadline = now();
    let scoped = klaw::scope!(deadline = deadline, |_s| Ok(7));
    assert!(matches!(&scoped, Err(Error::Elapsed(_))), "{scoped:?}");

    assert_eq!(now(), start, "a zero timeout moved the paused clock");
}

/// tokio: time_timeout::future_and_timeout_in_future, and klaw's documented difference from it:
/// `Task::timeout` ends the task "if it has not finished `timeout` after it first starts
/// running" (task/spec.rs), as `fail_after` counts "from the future's first poll" (time/mod.rs,
/// checked by ported_tokio_time_edges.rs for regions). An inline task first runs at its first
/// poll, so an `InlineTask` made (`into_future`), then awaited after four seconds of other work,
/// must still give its body the whole ten seconds: it times out fourteen seconds after it was
/// made, not ten.
///
/// What would break it: the inline task's region taking its deadline when the `InlineTask` is
/// built (`Region::new().timeout(after)`, which reads the clock then) instead of at its first
/// poll (`run_for`, what `fail_after` uses).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn an_inline_tasks_timeout_counts_from_its_first_poll_not_from_into_future() {
    let start = now();
    let inline = Task::new(std::future::pending::<()>()).timeout(secs(10)).into_future();
    sleep(secs(4)).await; // other work before the inline task is awaited
    assert_eq!(inline.await, Err(TaskError::TimedOut(secs(10))));
    assert_eq!(now() - start, secs(14), "the inline task's timeout counted from into_future");
}

// ---- tokio/tests/time_sleep.rs: timers dropped, and the clock ------------------------------

/// tokio: time_sleep::drop_after_reschedule_at_new_scheduled_time and drop_from_wake, asking what
/// they leave behind: a timer that is gone must never be jumped to. Dropped here: a registered
/// sleep; one registered then reset later; one registered then reset earlier; the sleep of a
/// task cancelled while it waits; and a registered sleep that another task, woken by a jump to
/// 10 s, drops. Then the body waits for a message from a thread of its own (real milliseconds)
/// with no timer left: the clock must still read 10 s. (Cancelling the task must not let the
/// clock jump either: the cancelled task is runnable until it has dropped its sleep.)
///
/// What would break it: `Sleep`'s drop or `reset` leaving an entry in the clock's timer map
/// (`remove_timer`/`move_timer` with the wrong key), or a cancelled task's body kept alive.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn timers_that_were_dropped_never_pull_the_paused_clock() {
    let start = now();
    let handle = Handle::current().unwrap();

    let mut plain = sleep(secs(100));
    assert!(poll_once(&mut plain).await.is_pending());
    drop(plain);
    let mut later = sleep(secs(200));
    assert!(poll_once(&mut later).await.is_pending());
    later.reset(start + secs(300));
    drop(later);
    let mut earlier = sleep(secs(400));
    assert!(poll_once(&mut earlier).await.is_pending());
    earlier.reset(start + secs(50));
    drop(earlier);

    let sleeper = handle.spawn(sleep(secs(600)));
    advance(Duration::ZERO).await; // the task has registered its timer
    assert!(sleeper.cancel("not needed"));
    assert!(sleeper.await.is_err());
    assert_eq!(now(), start, "the clock jumped while a cancelled task was dropping its sleep");

    let shared: Arc<Mutex<Option<Sleep>>> = Arc::new(Mutex::new(None));
    {
        let mut far = sleep(secs(500));
        assert!(Pin::new(&mut far).poll(&mut Context::from_waker(Waker::noop())).is_pending());
        *shared.lock().unwrap() = Some(far);
    }
    let dropper = handle.spawn({
        let shared = shared.clone();
        async move {
            sleep(secs(10)).await;
            drop(shared.lock().unwrap().take()); // in the jump to 10 s
        }
    });
    dropper.await.unwrap();
    assert_eq!(now() - start, secs(10));

    // Nothing left to jump to: the clock stays put while the body waits for a real thread.
    let (tx, rx) = klaw::channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        std::thread::sleep(ms(30));
        tx.send_blocking(())
    });
    assert_eq!(rx.recv().await, Ok(()));
    thread.join().unwrap().unwrap();
    assert_eq!(now() - start, secs(10), "the clock jumped to a timer that was dropped");
}

// ---- tokio/tests/coop_budget.rs: the budget's size for timers -------------------------------

/// tokio: coop_budget::test_has_budget_remaining (128 units, then none). klaw has no
/// `has_budget_remaining`; what it promises (coop.rs, book/src/runtime.md) is that an elapsed
/// sleep takes one of a task's 128 units per poll, a budget-refused poll takes nothing and wakes
/// the task, and an `Interval` ticks through a `Sleep`. So in a task, 300 elapsed sleeps complete
/// 128, 128 and 44 per poll; and a burst of missed interval ticks comes 128, 128, 44 per poll,
/// each tick once, in order (none taken by a refused poll), without the clock moving.
///
/// What would break it: elapsed timers outside the budget ([300]), a refused poll spending a
/// unit or taking a tick (127s, or a gap in the ticks), a budget of another size, or the clock
/// jumping while the task yields for its budget.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_task_completes_exactly_128_elapsed_timers_or_missed_ticks_per_poll() {
    let handle = Handle::current().unwrap();
    let start = now();
    let sleeps = handle
        .spawn(async {
            klaw::task::yield_now().await; // what follows starts with a fresh budget
            let mut per_poll = Vec::new();
            let mut done = 0;
            poll_fn(|cx| {
                let mut this_poll = 0;
                while done < 300 {
                    let mut nap = sleep(Duration::ZERO);
                    if Pin::new(&mut nap).poll(cx).is_pending() {
                        per_poll.push(this_poll);
                        return Poll::Pending;
                    }
                    this_poll += 1;
                    done += 1;
                }
                per_poll.push(this_poll);
                Poll::Ready(())
            })
            .await;
            per_poll
        })
        .await
        .unwrap();
    assert_eq!(sleeps, [128, 128, 44], "elapsed sleeps completed per poll");

    let (per_poll, dues) = handle
        .spawn(async {
            let mut ticks = interval(ms(1));
            let origin = ticks.tick().await;
            sleep(ms(1000)).await; // a thousand ticks due at once (Burst)
            klaw::task::yield_now().await;
            let mut per_poll = Vec::new();
            let mut dues = Vec::new();
            poll_fn(|cx| {
                let mut this_poll = 0;
                while dues.len() < 300 {
                    match ticks.poll_tick(cx) {
                        Poll::Ready(due) => {
                            dues.push(due - origin);
                            this_poll += 1;
                        }
                        Poll::Pending => {
                            per_poll.push(this_poll);
                            return Poll::Pending;
                        }
                    }
                }
                per_poll.push(this_poll);
                Poll::Ready(())
            })
            .await;
            (per_poll, dues)
        })
        .await
        .unwrap();
    assert_eq!(per_poll, [128, 128, 44], "missed ticks taken per poll");
    assert_eq!(dues, (1..=300).map(ms).collect::<Vec<_>>(), "a tick lost or repeated");
    assert_eq!(now() - start, ms(1000), "the clock moved while the task yielded");
}

// ---- tokio/tests/time_interval.rs: the longest period after a long stall --------------------

/// tokio: time_interval::interval_doesnt_panic_max_duration_when_polling, carried past the first
/// tick (klaw's port stops there). `interval(Duration::MAX)` saturates its second tick to thirty
/// years after the first (`deadline_after`). After sixty years of stall, the second tick is taken
/// thirty years late; `Skip` then ticks "at the next multiple of the period from the start",
/// `Delay` "a period from now", and either way never a second tick at the same instant (the rule
/// time_and_select_edges.rs states for a stall ending on the grid). Delay is the control.
///
/// What would break it: `MissedTickBehavior::next_timeout`'s Skip arm computing
/// `deadline_after(now, period) - (now - due) % period` with the unsaturated period: with
/// `now + period` saturated to `now + 30 y` and 30 y behind, the next tick is `now` itself.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn skip_on_the_longest_period_never_ticks_twice_at_one_instant_after_a_long_stall() {
    let mut ticked_twice = Vec::new();
    for behavior in [MissedTickBehavior::Delay, MissedTickBehavior::Skip] {
        let start = now();
        let mut ticks = interval(Duration::MAX);
        ticks.set_missed_tick_behavior(behavior);
        assert_eq!(ticks.tick().await, start);
        sleep(Duration::MAX).await; // thirty years: the second tick is due
        sleep(Duration::MAX).await; // thirty more: it is taken thirty years late
        assert_eq!(now() - start, THIRTY_YEARS * 2);
        assert_eq!(poll_tick(&mut ticks).await, Poll::Ready(start + THIRTY_YEARS), "{behavior:?}");
        if poll_tick(&mut ticks).await.is_ready() {
            ticked_twice.push(behavior);
        }
    }
    assert!(ticked_twice.is_empty(), "ticked again at the same instant: {ticked_twice:?}");
}
