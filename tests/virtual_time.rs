//! Virtual time: `#[klaw::test(start_paused = true)]` and `Runtime::builder().start_paused(true)`.
//!
//! Every klaw timer follows the runtime's clock; under a paused clock time stands still while
//! anything can make progress and jumps to the next deadline when every task waits. No test
//! here asserts on real (wall-clock) time: only on virtual time and on outcomes.
//!
//! Ported (translated) from tokio's `tests/time_pause.rs` and `tests/time_interval.rs` and
//! trio's `_core/_tests/test_mock_clock.py`. tokio's timer wheel has millisecond granularity, so
//! its tests advance one extra millisecond first and expect `+ 1` after a reset; klaw's virtual
//! timers are exact, so these expect the exact instants.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::{Flag, ms, paused, secs, wait_for, within};
use futures_lite::StreamExt;
use klaw::time::{self, Interval, MissedTickBehavior, advance, now, sleep, sleep_until};
use klaw::{Error, Handle, Runtime, Task, TaskError};

/// Polls `future` once with the caller's context.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// Polls the interval's next tick once.
async fn poll_tick(interval: &mut Interval) -> Poll<Instant> {
    std::future::poll_fn(|cx| Poll::Ready(interval.poll_tick(cx))).await
}

/// Polls each tick: ready at `start + each` of `expected` (ms), then pending.
async fn check_ticks(interval: &mut Interval, start: Instant, expected: &[u64]) {
    for &at in expected {
        assert_eq!(poll_tick(interval).await, Poll::Ready(start + ms(at)), "tick at {at} ms");
    }
    assert!(poll_tick(interval).await.is_pending(), "no tick after {expected:?}");
}

/// A waker that records whether it was woken.
#[derive(Default)]
struct Probe(AtomicBool);

impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Probe {
    fn poll<F: Future + Unpin>(self: &Arc<Self>, future: &mut F) -> Poll<F::Output> {
        let waker = Waker::from(self.clone());
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    fn is_woken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

// ---- The acceptance case: an hour-long timeout and a half-hour select arm, 100 times ----

/// What one run observed: outcomes and virtual durations.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    timeout: Result<(), Duration>,
    timeout_took: Duration,
    select_winner: &'static str,
    select_took: Duration,
    late_message: u32,
    late_message_at: Duration,
    finish_order: Vec<(u64, Duration)>,
    total: Duration,
}

fn one_paused_run() -> Observed {
    let rt = paused();
    rt.block_on(async {
        let start = now();
        let timeout = klaw::cancel::fail_after(secs(3600), std::future::pending::<()>())
            .await
            .map_err(|elapsed| elapsed.after());
        let timeout_took = now() - start;

        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let late = Handle::current().unwrap().spawn(async move {
            sleep(secs(2400)).await;
            tx.send(7).await.unwrap();
        });
        let mark = now();
        let select_winner = klaw::select! {
            recv(rx) -> _message => "message",
            after(secs(1800)) => "after",
        };
        let select_took = now() - mark;
        late.await.unwrap();
        let late_message = rx.recv().await.unwrap();
        let late_message_at = now() - mark;

        let (done, finished) = klaw::channel::unbounded::<(u64, Duration)>();
        let mark = now();
        klaw::scope!(|s| {
            for minutes in [5u64, 3, 9, 1, 7] {
                let done = done.clone();
                s.spawn(async move {
                    sleep(secs(60 * minutes)).await;
                    done.send((minutes, now() - mark)).await.unwrap();
                });
            }
            Ok(())
        })
        .unwrap();
        drop(done);
        let finish_order = finished.collect::<Vec<_>>().await;

        Observed {
            timeout,
            timeout_took,
            select_winner,
            select_took,
            late_message,
            late_message_at,
            finish_order,
            total: now() - start,
        }
    })
}

#[test]
fn an_hour_timeout_and_a_half_hour_select_arm_run_in_virtual_time_the_same_way_every_time() {
    let expected = Observed {
        timeout: Err(secs(3600)),
        timeout_took: secs(3600),
        select_winner: "after",
        select_took: secs(1800),
        late_message: 7,
        late_message_at: secs(2400),
        finish_order: [1, 3, 5, 7, 9].map(|m| (m, secs(60 * m))).to_vec(),
        total: secs(3600 + 2400 + 9 * 60),
    };
    for run in 0..100 {
        assert_eq!(one_paused_run(), expected, "run {run}");
    }
}

// ---- Every klaw timer follows the clock ----

#[klaw::test(start_paused = true, timeout = "10s")]
async fn sleeps_fire_in_deadline_order() -> Result<(), Error> {
    let (done, finished) = klaw::channel::unbounded::<(u64, Duration)>();
    let start = now();
    klaw::scope!(|s| {
        for seconds in [50u64, 10, 40, 20, 30, 20, 0] {
            let done = done.clone();
            s.spawn(async move {
                sleep(secs(seconds)).await;
                done.send((seconds, now() - start)).await.unwrap();
            });
        }
        Ok(())
    })?;
    drop(done);
    let order = finished.collect::<Vec<_>>().await;
    let expected: Vec<_> = [0u64, 10, 20, 20, 30, 40, 50].map(|s| (s, secs(s))).to_vec();
    assert_eq!(order, expected);
    Ok(())
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn cancel_regions_use_the_virtual_clock() {
    let start = now();
    assert_eq!(klaw::cancel::move_on_after(secs(600), sleep(secs(601))).await, None);
    assert_eq!(now() - start, secs(600));
    let at = now() + secs(30);
    assert_eq!(klaw::cancel::move_on_at(at, sleep(secs(31))).await, None);
    assert_eq!(now(), at);
    let error = klaw::cancel::fail_at(now() + secs(90), std::future::pending::<()>()).await;
    assert_eq!(error.unwrap_err().after(), secs(90));
    assert_eq!(klaw::cancel::fail_after(secs(5), sleep(secs(4))).await, Ok(()));
    assert_eq!(now() - start, secs(600 + 30 + 90 + 4));
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_scope_timeout_and_deadline_use_the_virtual_clock() {
    let start = now();
    let result = klaw::scope!(timeout = "1h", |s| {
        s.spawn(sleep(secs(7200)));
        Ok(())
    });
    assert!(matches!(result, Err(Error::Elapsed(elapsed)) if elapsed.after() == secs(3600)));
    assert_eq!(now() - start, secs(3600));

    let deadline = now() + secs(120);
    let result = klaw::scope!(deadline = deadline, |_s| {
        sleep(secs(121)).await;
        Ok(())
    });
    assert!(matches!(result, Err(Error::Elapsed(_))));
    assert_eq!(now(), deadline);
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn task_timeouts_use_the_virtual_clock() {
    let start = now();
    let spawned =
        Handle::current().unwrap().spawn(Task::new(sleep(secs(7200))).timeout(secs(3600)));
    assert_eq!(spawned.await, Err(TaskError::TimedOut(secs(3600))));
    assert_eq!(now() - start, secs(3600));

    let inline = Task::new(sleep(secs(7200))).timeout(secs(1800)).await;
    assert_eq!(inline, Err(TaskError::TimedOut(secs(1800))));
    assert_eq!(now() - start, secs(5400));

    let in_time = Task::new(async { sleep(secs(10)).await }).timeout(secs(11)).await;
    assert_eq!(in_time, Ok(()));
    assert_eq!(now() - start, secs(5410));
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn select_after_and_at_arms_use_the_virtual_clock() {
    let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    let start = now();
    let picked = klaw::select! {
        recv(rx) -> _message => "message",
        after(secs(1800)) => "after",
        at(start + secs(3600)) => "at",
    };
    assert_eq!((picked, now() - start), ("after", secs(1800)));
    let picked = klaw::select! {
        recv(rx) -> _message => "message",
        after(secs(3600)) => "after",
        at(start + secs(2000)) => "at",
    };
    assert_eq!((picked, now() - start), ("at", secs(2000)));
}

// ---- Idle detection ----

#[klaw::test(start_paused = true, timeout = "10s")]
async fn without_a_timer_the_clock_stays_put_while_a_task_waits_on_a_channel() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let start = now();
    // A thread klaw does not know sends after a while of real time.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(ms(20));
        tx.send_blocking(5)
    });
    assert_eq!(rx.recv().await, Ok(5));
    assert_eq!(now(), start, "nothing to jump to: the clock did not move");
    sender.join().unwrap().unwrap();
}

#[klaw::test(start_paused = true, timeout = "50ms")]
#[should_panic(expected = "did not finish within its timeout of 50ms")]
async fn a_test_stuck_with_no_timer_still_fails_at_its_real_timeout() {
    let (_tx, rx) = klaw::channel::bounded::<u32>(1);
    let _ = rx.recv().await;
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn the_clock_jumps_to_the_next_timer_past_a_task_waiting_on_a_channel() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let waiting = Handle::current().unwrap().spawn(async move { rx.recv().await });
    let start = now();
    sleep(secs(3600)).await;
    assert_eq!(now() - start, secs(3600));
    assert!(!waiting.is_finished());
    tx.send(1).await.unwrap();
    assert_eq!(waiting.await, Ok(Ok(1)));
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_blocking_job_in_flight_holds_the_clock_back() {
    let handle = Handle::current().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let job = handle.spawn_blocking({
        let done = done.clone();
        move || {
            std::thread::sleep(ms(20)); // real time, on a blocking thread
            done.store(true, Ordering::SeqCst);
        }
    });
    let start = now();
    sleep(secs(1)).await;
    // The second could not pass while the job ran.
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(now() - start, secs(1));
    job.await.unwrap();
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_blocking_job_awaited_inline_holds_the_clock_back_too() {
    let start = now();
    let ticks = Arc::new(AtomicUsize::new(0));
    let counter = Handle::current().unwrap().spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                sleep(secs(1)).await;
                ticks.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let value = klaw::task::BlockingTask::new(|| {
        std::thread::sleep(ms(20));
        42
    })
    .await;
    assert_eq!(value, Ok(42));
    // The job held the clock from its submission until it had woken this future.
    assert_eq!(now(), start);
    assert_eq!(ticks.load(Ordering::SeqCst), 0);
    counter.cancel("done");
    let _ = counter.await;
}

#[test]
fn tasks_of_a_paused_runtime_run_without_a_block_on() {
    let rt = paused();
    let handle = rt.spawn(async {
        let start = now();
        sleep(secs(86_400)).await;
        now() - start
    });
    assert_eq!(rt.block_on(handle), Ok(secs(86_400)));
}

#[test]
fn a_paused_runtime_with_sleeping_tasks_shuts_down() {
    let rt = paused();
    let _ticker = rt.spawn(async {
        loop {
            sleep(secs(1)).await;
        }
    });
    let _sleeper = rt.spawn(sleep(secs(1_000_000)));
    let report = rt.shutdown(Duration::ZERO);
    assert_eq!((report.cancelled, report.abandoned), (2, 0));
}

// ---- now() and advance() ----

#[test]
fn now_is_real_time_outside_a_paused_runtime() {
    let before = Instant::now();
    let now = now();
    assert!(before <= now && now <= Instant::now());
    let rt = Runtime::builder().workers(1).build().unwrap();
    let inside = rt.block_on(async { time::now() });
    assert!(now <= inside && inside <= Instant::now());
}

#[test]
fn a_virtual_instant_starts_at_the_real_time_the_runtime_was_built() {
    let before = Instant::now();
    let rt = paused();
    let after = Instant::now();
    let (first, later) = rt.block_on(async {
        let first = now();
        sleep(secs(3600)).await;
        (first, now())
    });
    assert!(before <= first && first <= after);
    assert_eq!(later - first, secs(3600));
}

#[test]
#[should_panic(expected = "needs a paused clock")]
fn advance_outside_a_paused_runtime_panics() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.block_on(advance(secs(1)));
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn advance_returns_once_the_tasks_it_woke_wait_again() {
    let handle = Handle::current().unwrap();
    let rang = Arc::new(AtomicBool::new(false));
    let alarm = handle.spawn({
        let rang = rang.clone();
        async move {
            sleep(secs(60)).await;
            rang.store(true, Ordering::SeqCst);
            sleep(secs(60)).await;
        }
    });
    advance(secs(59)).await;
    assert!(!rang.load(Ordering::SeqCst));
    advance(secs(1)).await;
    assert!(rang.load(Ordering::SeqCst));
    assert!(!alarm.is_finished());
    advance(secs(60)).await;
    assert!(alarm.is_finished());
}

// tokio: advance_after_poll
#[klaw::test(start_paused = true, timeout = "10s")]
async fn advance_after_poll() {
    sleep(ms(1)).await;
    let start = now();
    let mut sleep = sleep_until(start + ms(300));
    assert!(poll_once(&mut sleep).await.is_pending());
    let before = now();
    advance(ms(100)).await;
    assert_eq!(now() - before, ms(100));
    assert!(poll_once(&mut sleep).await.is_pending());
}

// tokio: sleep_no_poll
#[klaw::test(start_paused = true, timeout = "10s")]
async fn sleep_no_poll() {
    let start = now();
    let mut sleep = sleep_until(start + ms(300));
    let before = now();
    advance(ms(100)).await;
    assert_eq!(now() - before, ms(100));
    assert!(poll_once(&mut sleep).await.is_pending());
    advance(ms(200)).await;
    assert!(poll_once(&mut sleep).await.is_ready());
}

// tokio: test_time_advance_sub_ms, test_time_advance_3ms_and_change, exact_1ms_advance
#[klaw::test(start_paused = true, timeout = "10s")]
async fn advance_moves_the_clock_by_exactly_the_duration() {
    for micros in [51_592, 1, 3_141_592, 3_123_456, 1_000, 1_000] {
        let before = now();
        advance(Duration::from_micros(micros)).await;
        assert_eq!(now() - before, Duration::from_micros(micros));
    }
}

// tokio: regression_3710_with_submillis_advance
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_sub_millisecond_advance_does_not_fire_a_later_timer() {
    let start = now();
    advance(ms(1)).await;
    let mut sleep = sleep_until(start + secs(60));
    assert!(poll_once(&mut sleep).await.is_pending());
    let before = now();
    advance(Duration::from_micros(51_592)).await;
    assert_eq!(now() - before, Duration::from_micros(51_592));
    assert!(poll_once(&mut sleep).await.is_pending());
}

// tokio: advance_once_with_timer
#[klaw::test(start_paused = true, timeout = "10s")]
async fn advance_once_past_a_timer_wakes_it() {
    let probe = Arc::new(Probe::default());
    let mut sleep = sleep(ms(1));
    assert!(probe.poll(&mut sleep).is_pending());
    advance(Duration::from_micros(250)).await;
    assert!(probe.poll(&mut sleep).is_pending());
    assert!(!probe.is_woken());
    advance(Duration::from_micros(1500)).await;
    assert!(probe.is_woken());
    assert!(probe.poll(&mut sleep).is_ready());
}

// tokio: advance_multi_with_timer
#[klaw::test(start_paused = true, timeout = "10s")]
async fn advancing_in_steps_wakes_the_timer_at_its_deadline() {
    let probe = Arc::new(Probe::default());
    let mut sleep = sleep(ms(1));
    assert!(probe.poll(&mut sleep).is_pending());
    for _ in 0..3 {
        advance(Duration::from_micros(250)).await;
        assert!(probe.poll(&mut sleep).is_pending());
    }
    assert!(!probe.is_woken());
    advance(Duration::from_micros(250)).await;
    assert!(probe.is_woken());
    assert!(probe.poll(&mut sleep).is_ready());
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn advance_wakes_the_timers_it_passes_in_deadline_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let handle = Handle::current().unwrap();
    let tasks: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|n| {
            let order = order.clone();
            handle.spawn(async move {
                sleep(secs(n)).await;
                order.lock().unwrap().push(n);
            })
        })
        .collect();
    advance(Duration::ZERO).await; // every task is waiting on its timer
    advance(secs(60)).await;
    assert_eq!(*order.lock().unwrap(), [10, 20, 30]);
    for task in tasks {
        task.await.unwrap();
    }
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_sleep_polled_after_it_completed_completes_again() {
    let mut sleep = sleep(secs(1));
    (&mut sleep).await;
    assert!(sleep.is_elapsed());
    assert!(poll_once(&mut sleep).await.is_ready());
    sleep.reset(now() + secs(5));
    assert!(!sleep.is_elapsed());
    let start = now();
    (&mut sleep).await;
    assert_eq!(now() - start, secs(5));
    assert!(format!("{sleep:?}").contains("virtual"));
}

#[test]
fn a_real_sleep_polled_after_it_completed_completes_again() {
    klaw::runtime::block_on(async {
        let mut sleep = sleep(ms(1));
        (&mut sleep).await;
        assert!(poll_once(&mut sleep).await.is_ready());
        assert!(format!("{sleep:?}").contains("real"));
    });
}

// ---- trio's MockClock with autojump_threshold = 0 ----

// trio: test_mock_clock_autojump
#[klaw::test(start_paused = true, timeout = "10s")]
async fn autojump_sleeps_take_exactly_their_virtual_time() {
    let mut virtual_start = now();
    for i in 0..10 {
        sleep(secs(10 * i)).await;
        assert_eq!(now(), virtual_start + secs(10 * i));
        virtual_start = now();
    }
}

// trio: test_mock_clock_autojump_preset (a long sleep, through the builder)
#[test]
fn a_ten_thousand_second_sleep_on_a_paused_runtime() {
    let rt = paused();
    let slept = rt.block_on(async {
        let start = now();
        sleep(secs(10_000)).await;
        now() - start
    });
    assert_eq!(slept, secs(10_000));
}

// trio: test_mock_clock_autojump_0_and_wait_all_tasks_blocked_0. `advance(ZERO)` waits until
// every other task waits, as `wait_all_tasks_blocked` does, and takes its turn before the clock
// jumps.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn waiting_for_every_task_to_wait_comes_before_a_jump() -> Result<(), Error> {
    let record = Arc::new(Mutex::new(Vec::new()));
    klaw::scope!(|s| {
        let sleeper = record.clone();
        s.spawn(async move {
            sleep(secs(100)).await;
            sleeper.lock().unwrap().push("yawn");
        });
        let waiter = record.clone();
        s.spawn(async move {
            advance(Duration::ZERO).await;
            waiter.lock().unwrap().push("waiter woke");
            sleep(secs(1000)).await;
            waiter.lock().unwrap().push("waiter done");
        });
        Ok(())
    })?;
    assert_eq!(*record.lock().unwrap(), ["waiter woke", "yawn", "waiter done"]);
    Ok(())
}

// tokio: paused_time_is_deterministic
#[test]
fn paused_time_is_deterministic() {
    fn run() -> Vec<Duration> {
        paused().block_on(async {
            let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
            let start = now();
            let mut times = Vec::new();
            for _ in 0..2_000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                sleep(Duration::from_nanos(seed % 1_000_000_000)).await;
                times.push(now() - start);
            }
            times
        })
    }
    let first = run();
    assert_eq!(first, run());
    assert!(first.windows(2).all(|pair| pair[0] <= pair[1]));
}

// ---- Intervals (tokio's time_interval.rs and time_pause.rs) ----

#[test]
#[should_panic(expected = "`period` must be non-zero")]
fn an_interval_of_zero_panics() {
    let _ = time::interval_at(Instant::now(), ms(0));
}

// tokio: time_pause.rs interval
#[klaw::test(start_paused = true, timeout = "10s")]
async fn interval_ticks_on_schedule_under_advance() {
    let start = now();
    let mut i = time::interval_at(start, ms(300));
    check_ticks(&mut i, start, &[0]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[300]).await;
    advance(ms(400)).await;
    check_ticks(&mut i, start, &[600]).await;
    advance(ms(500)).await;
    check_ticks(&mut i, start, &[900, 1200]).await;
}

// Expected ticks: |     1     |     2     |     3     |     4     |     5     |     6     |
// Actual ticks:   | work -----|          delay          | work | work | work -| work -----|
#[klaw::test(start_paused = true, timeout = "10s")]
async fn burst_catches_up_every_missed_tick() {
    let start = now();
    let mut i = time::interval_at(start, ms(300));
    assert_eq!(i.missed_tick_behavior(), MissedTickBehavior::Burst);
    check_ticks(&mut i, start, &[0]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[300]).await;
    advance(ms(650)).await;
    check_ticks(&mut i, start, &[600, 900]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[1200]).await;
    advance(ms(250)).await;
    check_ticks(&mut i, start, &[1500]).await;
    advance(ms(300)).await;
    check_ticks(&mut i, start, &[1800]).await;
}

// Expected ticks: |     1     |     2     |     3     |     4     |     5     |     6     |
// Actual ticks:   | work -----|          delay          | work -----| work -----| work -----|
#[klaw::test(start_paused = true, timeout = "10s")]
async fn delay_ticks_a_period_after_the_late_tick() {
    let start = now();
    let mut i = time::interval_at(start, ms(300));
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    check_ticks(&mut i, start, &[0]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[300]).await;
    advance(ms(650)).await; // at 950: the tick due at 600 is late
    check_ticks(&mut i, start, &[600]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[1250]).await;
    advance(ms(300)).await;
    check_ticks(&mut i, start, &[1550]).await;
    advance(ms(300)).await;
    check_ticks(&mut i, start, &[1850]).await;
}

// Expected ticks: |     1     |     2     |     3     |     4     |     5     |     6     |
// Actual ticks:   | work -----|          delay          | work ---| work -----| work -----|
#[klaw::test(start_paused = true, timeout = "10s")]
async fn skip_drops_missed_ticks_and_stays_on_the_grid() {
    let start = now();
    let mut i = time::interval_at(start, ms(300));
    i.set_missed_tick_behavior(MissedTickBehavior::Skip);
    check_ticks(&mut i, start, &[0]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[300]).await;
    advance(ms(650)).await;
    check_ticks(&mut i, start, &[600]).await;
    advance(ms(250)).await;
    check_ticks(&mut i, start, &[1200]).await;
    advance(ms(300)).await;
    check_ticks(&mut i, start, &[1500]).await;
    advance(ms(300)).await;
    check_ticks(&mut i, start, &[1800]).await;
}

/// The interval of tokio's reset tests: ticked at 0 and 300, now at 400.
async fn ticked_twice(start: Instant) -> Interval {
    let mut i = time::interval_at(start, ms(300));
    check_ticks(&mut i, start, &[0]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[300]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    i
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn reset() {
    let start = now();
    let mut i = ticked_twice(start).await;
    i.reset();
    advance(ms(250)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(50)).await;
    check_ticks(&mut i, start, &[700]).await;
    advance(ms(300)).await;
    check_ticks(&mut i, start, &[1000]).await;
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn reset_immediately() {
    let start = now();
    let mut i = ticked_twice(start).await;
    i.reset_immediately();
    check_ticks(&mut i, start, &[400]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[700]).await;
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn reset_after() {
    let start = now();
    let mut i = ticked_twice(start).await;
    i.reset_after(ms(20));
    advance(ms(20)).await;
    check_ticks(&mut i, start, &[420]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[720]).await;
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn reset_at() {
    let start = now();
    let mut i = ticked_twice(start).await;
    i.reset_at(now() + ms(40));
    advance(ms(40)).await;
    check_ticks(&mut i, start, &[440]).await;
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[]).await;
    advance(ms(200)).await;
    check_ticks(&mut i, start, &[740]).await;
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn reset_at_bigger_than_interval() {
    let start = now();
    let mut i = ticked_twice(start).await;
    i.reset_at(now() + ms(1000));
    for _ in 0..3 {
        advance(ms(300)).await;
        check_ticks(&mut i, start, &[]).await;
    }
    advance(ms(100)).await;
    check_ticks(&mut i, start, &[1400]).await;
    advance(ms(300)).await;
    check_ticks(&mut i, start, &[1700]).await;
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn an_interval_of_the_longest_duration_ticks_once_without_overflowing() {
    let mut i = time::interval(Duration::MAX);
    assert!(poll_tick(&mut i).await.is_ready());
    assert!(poll_tick(&mut i).await.is_pending());
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn missed_ticks_under_auto_advance() {
    // The work between ticks is a sleep: the clock jumps, and each behaviour reschedules.
    async fn ticks(behavior: MissedTickBehavior) -> Vec<Duration> {
        let start = now();
        let mut i = time::interval(ms(50));
        i.set_missed_tick_behavior(behavior);
        let mut taken = Vec::new();
        for round in 0..6 {
            i.tick().await;
            taken.push(now() - start);
            if round == 0 {
                sleep(ms(225)).await; // misses the ticks due at 50 to 200
            }
        }
        taken
    }
    let at = |list: [u64; 6]| list.map(ms).to_vec();
    assert_eq!(ticks(MissedTickBehavior::Burst).await, at([0, 225, 225, 225, 225, 250]));
    assert_eq!(ticks(MissedTickBehavior::Delay).await, at([0, 225, 275, 325, 375, 425]));
    assert_eq!(ticks(MissedTickBehavior::Skip).await, at([0, 225, 250, 300, 350, 400]));
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn an_interval_is_a_stream_of_its_ticks() {
    let start = now();
    let ticks: Vec<Instant> = time::interval(secs(2)).take(4).collect().await;
    assert_eq!(ticks, [0, 2, 4, 6].map(|s| start + secs(s)));
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_tick_that_loses_a_select_is_not_lost() {
    let mut i = time::interval(secs(10));
    let start = i.tick().await;
    let first = klaw::select! {
        i.tick() -> tick => Some(tick),
        after(secs(4)) => None,
    };
    assert_eq!(first, None);
    let second = klaw::select! {
        i.tick() -> tick => Some(tick),
        after(secs(60)) => None,
    };
    assert_eq!(second, Some(start + secs(10)));
    assert_eq!(now() - start, secs(10));
}

/// tokio's `IntervalStreamer`: counts ticks and yields every fourth; `wake_on_pending` says
/// whether it wakes itself after a tick it does not yield.
struct IntervalStreamer {
    counter: u32,
    timer: Interval,
    wake_on_pending: bool,
}

impl futures_lite::Stream for IntervalStreamer {
    type Item = u32;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        let this = self.get_mut();
        if this.counter > 12 {
            return Poll::Ready(None);
        }
        match this.timer.poll_tick(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                this.counter += 1;
                if this.counter % 4 == 0 {
                    Poll::Ready(Some(this.counter))
                } else {
                    if this.wake_on_pending {
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending
                }
            }
        }
    }
}

async fn stream_items(wake_on_pending: bool) -> Vec<u32> {
    let mut stream =
        IntervalStreamer { counter: 0, timer: time::interval(ms(10)), wake_on_pending };
    let (tx, rx) = klaw::channel::bounded(12);
    // Bounded, so that it ends even if the stream stalls.
    let relay =
        Handle::current().unwrap().spawn(klaw::cancel::move_on_after(ms(150), async move {
            while let Some(item) = stream.next().await {
                tx.send(item).await.unwrap();
            }
        }));
    let items = rx.collect::<Vec<_>>().await;
    relay.await.unwrap();
    items
}

// tokio: stream_with_interval_poll_tick_self_waking
#[klaw::test(start_paused = true, timeout = "10s")]
async fn poll_tick_in_a_stream_that_wakes_itself() {
    assert_eq!(stream_items(true).await, [4, 8, 12]);
}

// tokio: stream_with_interval_poll_tick_no_waking: `poll_tick` registers the waker only when
// it returns `Pending`, so a stream that returns `Pending` after a tick without waking itself
// stalls (until its deadline).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn poll_tick_in_a_stream_that_does_not_wake_itself_stalls() {
    assert_eq!(stream_items(false).await, Vec::<u32>::new());
}

// ---- The builder and the attribute ----

#[test]
fn a_paused_runtime_has_one_worker() {
    let rt = paused();
    assert_eq!(rt.worker_count(), 1);
    assert!(rt.config().start_paused);
    assert_eq!(rt.config().workers_from, klaw::runtime::WorkersFrom::Paused);
    let explicit = Runtime::builder().start_paused(true).workers(1).build().unwrap();
    assert_eq!(explicit.worker_count(), 1);
    let error = Runtime::builder().start_paused(true).workers(2).build().unwrap_err();
    assert_eq!(
        error.to_string(),
        "Builder::workers=2 is out of range: expected 1 to 1 (a runtime with start_paused has \
         one worker)"
    );
    assert!(!Runtime::builder().workers(1).build().unwrap().config().start_paused);
}

#[klaw::test(start_paused = true, workers = 1)]
async fn the_attribute_takes_one_worker_alongside_start_paused() {
    let handle = Handle::current().unwrap();
    assert_eq!(handle.config().workers, 1);
    assert!(handle.config().start_paused);
}

#[klaw::test(start_paused = false)]
async fn start_paused_false_is_real_time() {
    assert!(!Handle::current().unwrap().config().start_paused);
    let before = Instant::now();
    assert!(now() >= before);
}

/// A task's timeout is a deadline, which the cooperative budget never holds back (the book's
/// "Cooperative scheduling": deadlines are not budgeted). A local child is polled inside its
/// parent's poll, so its timeout must be seen even when the parent's body has spent the budget
/// in that poll: at the deadline the child ends `TimedOut`, which fails the scope, as a spawned
/// child with the same body and timeout does, and not with the value its body is ready with at
/// the same instant.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_local_childs_timeout_is_seen_after_its_parent_spent_the_budget() {
    for local in [false, true] {
        // In a task, whose budget the parent's loop below spends.
        let parent = Handle::current().unwrap().spawn(async move {
            klaw::scope!(|s| {
                let body = async {
                    sleep(secs(10)).await;
                    1u32
                };
                let timed = Task::new(body).timeout(secs(10));
                let child = if local { s.spawn_local(timed) } else { s.spawn(timed) };
                sleep(secs(10)).await;
                for _ in 0..300 {
                    klaw::task::consume_budget().await;
                }
                Ok(child.await)
            })
        });
        let outcome = parent.await.expect("the parent task itself ends well");
        let timed_out = matches!(
            &outcome,
            Err(Error::Task { error: TaskError::TimedOut(after), .. }) if *after == secs(10)
        );
        assert!(timed_out, "local: {local}, {outcome:?}");
    }
}

/// A message from a thread of its own, after some real time: what a shielded cleanup waits for
/// while the runtime has no timer of its own to wait for.
fn from_a_thread_later() -> klaw::channel::Receiver<()> {
    let (tx, rx) = klaw::channel::bounded::<()>(1);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        let _ = tx.send_blocking(());
    });
    rx
}

/// Runs `beside` next to a shield, inside a region whose token cancels it once both have run,
/// while the shield waits for a message from a real thread (so the paused clock may move, if
/// a timer is left on it); `after_cleanup` runs in the shield once the message came. Returns
/// the region's outcome and how far the paused clock moved meanwhile.
async fn beside_a_held_shield(
    beside: impl Future + Send,
    after_cleanup: impl FnOnce() + Send,
) -> (Result<(), klaw::CancelReason>, Duration) {
    let start = now();
    let cleanup = from_a_thread_later();
    let region = klaw::cancel::Region::new();
    let token = region.token();
    let outcome = region
        .run(async move {
            let held_open = klaw::cancel::shield(async move {
                let _ = cleanup.recv().await;
                after_cleanup();
            });
            let stop = async move {
                klaw::task::yield_now().await;
                token.cancel("stop");
            };
            let _ =
                futures_lite::future::zip(futures_lite::future::zip(held_open, beside), stop).await;
        })
        .await;
    (outcome, now() - start)
}

/// trio's autojump clock never jumps to the deadline of a cancel scope that was cancelled
/// (`cancel()` takes the deadline off the clock). A paused klaw runtime advances to the next
/// timer when everything waits, so a deadline that can no longer change anything must not be
/// one: a scope, a region and a task, each cancelled early and held open by a shielded cleanup
/// that waits for another thread, leave the clock where it was.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_deadline_that_can_no_longer_matter_does_not_move_the_paused_clock() {
    let start = now();

    let cleanup = from_a_thread_later();
    let result = klaw::scope!(timeout = "1h", |s| {
        let (started, is_started) = klaw::channel::oneshot::channel();
        s.spawn(klaw::cancel::shield(async move {
            started.send(()).unwrap();
            let _ = cleanup.recv().await;
        }));
        is_started.await.unwrap();
        s.cancel("stop");
        Ok(())
    });
    let cancelled = matches!(&result, Err(Error::Task { error: TaskError::Cancelled(_), .. }));
    assert!(cancelled, "{result:?}");
    assert_eq!(now(), start, "a scope's timeout");

    let cleanup = from_a_thread_later();
    let region = klaw::cancel::Region::new().timeout(secs(3600));
    let token = region.token();
    let outcome = region
        .run(async move {
            token.cancel("stop");
            klaw::cancel::shield(async move {
                let _ = cleanup.recv().await;
            })
            .await;
        })
        .await;
    assert!(outcome.is_err());
    assert_eq!(now(), start, "a region's timeout");

    let cleanup = from_a_thread_later();
    let (started, is_started) = klaw::channel::oneshot::channel();
    let task = Handle::current().unwrap().spawn(
        Task::new(klaw::cancel::shield(async move {
            started.send(()).unwrap();
            let _ = cleanup.recv().await;
        }))
        .timeout(secs(3600)),
    );
    is_started.await.unwrap();
    task.cancel("stop");
    assert!(task.await.is_err());
    assert_eq!(now(), start, "a task's timeout");
}

/// A region's deadline and its future falling due at the same instant: the deadline wins (the
/// region looks at its timer before it polls its future), as a trio cancel scope's deadline
/// does at a checkpoint; tokio's `timeout(d, sleep(d))` gives `Ok` (the book's "From tokio").
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_deadline_that_falls_due_with_its_future_wins() {
    let start = now();
    let tied = klaw::cancel::fail_after(secs(5), sleep(secs(5))).await;
    assert_eq!(tied.unwrap_err().after(), secs(5));
    assert_eq!(klaw::cancel::move_on_after(secs(5), sleep(secs(5))).await, None);
    let timed = Handle::current().unwrap().spawn(Task::new(sleep(secs(5))).timeout(secs(5)));
    assert_eq!(timed.await, Err(TaskError::TimedOut(secs(5))));
    assert_eq!(now() - start, secs(15));
}

/// A region whose body returned in time, and which then only waits for the child of a scope its
/// body dropped (in a shielded cleanup that waits for a real thread). Checks: the paused clock
/// stays where it was. What would break it: a region that keeps its deadline's timer after its
/// outcome is decided, so the clock jumps the hour to a deadline that can change nothing.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn a_region_whose_body_returned_does_not_pull_the_paused_clock_while_children_end() {
    let start = now();
    let cleanup = from_a_thread_later();
    let outcome = klaw::cancel::move_on_after(Duration::from_secs(3600), async move {
        let (started, is_started) = klaw::channel::oneshot::channel();
        // A scope whose child is in a shielded cleanup, dropped by `or` once the child runs:
        // the dropped scope hands the child to this region, which waits for it after its body.
        let scope = async move {
            let _: Result<(), klaw::Error> = klaw::scope!(|s| {
                s.spawn(klaw::cancel::shield(async move {
                    started.send(()).unwrap();
                    let _ = cleanup.recv().await;
                }));
                std::future::pending::<()>().await;
                Ok(())
            });
        };
        futures_lite::future::or(scope, async move { is_started.await.unwrap() }).await;
        5
    })
    .await;
    assert_eq!(outcome, Some(5), "the body returned in time");
    assert_eq!(
        now() - start,
        Duration::ZERO,
        "the paused clock jumped to the deadline of a region whose body had already returned"
    );
}

/// A 1 h `sleep` beside a shield, in a region cancelled while the shield waits for a real
/// thread: the sleep can never fire (what encloses it drops it once the shield ends). Checks:
/// the paused clock stays where it was. What would break it: a held sleep that keeps its timer
/// on the clock (registered at its first poll, before the cancel), which the clock jumps to.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn a_sleep_held_beside_a_shield_does_not_pull_the_paused_clock() {
    // Registered on the clock at its first poll, before the cancel.
    let beside = async { sleep(Duration::from_secs(3600)).await };
    let (outcome, moved) = beside_a_held_shield(beside, || {}).await;
    assert!(outcome.is_err(), "the region was cancelled: {outcome:?}");
    assert_eq!(
        moved,
        Duration::ZERO,
        "the paused clock jumped to a sleep that could no longer fire"
    );
}

// A region beside a shield: its deadline can change nothing once what encloses it stopped (it
// never returns; what encloses it drops it once the shield ends), so the clock must not jump to
// it. What would break these: the region polling its timer (which registers it) and returning
// `Pending` beside the shield with the timer still on the clock.

/// `move_on_after(1 h, pending())` beside a shield in a region cancelled by its token. The clock
/// must stay put; it jumps an hour.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn a_region_beside_a_shield_does_not_pull_the_paused_clock() {
    // Registered on the clock at its first poll (before the cancel), and polled again
    // after it while the shield holds the cancellation open.
    let beside =
        klaw::cancel::move_on_after(Duration::from_secs(3600), std::future::pending::<()>());
    let (outcome, moved) = beside_a_held_shield(beside, || {}).await;
    assert!(outcome.is_err(), "the region was cancelled: {outcome:?}");
    assert_eq!(
        moved,
        Duration::ZERO,
        "the paused clock jumped to the deadline of a region beside a shield, which can never \
         return (what encloses it drops it once the shield ends)"
    );
}

/// The same with an inline task's timeout (`Task::timeout` awaited, a `Cancellable` inside).
#[klaw::test(start_paused = true, timeout = "20s")]
async fn an_inline_task_timeout_beside_a_shield_does_not_pull_the_paused_clock() {
    let beside = async {
        let _ = Task::new(std::future::pending::<()>()).timeout(Duration::from_secs(3600)).await;
    };
    let (outcome, moved) = beside_a_held_shield(beside, || {}).await;
    assert!(outcome.is_err(), "the region was cancelled: {outcome:?}");
    assert_eq!(
        moved,
        Duration::ZERO,
        "the paused clock jumped to an inline task's timeout beside a shield"
    );
}

/// A spawned task cancelled while a shield in its body holds it open: a region beside that
/// shield inherits the task's cancellation and keeps its hour-long timer on the clock.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn a_region_beside_a_shield_in_a_cancelled_task_does_not_pull_the_paused_clock() {
    let start = now();
    let cleanup = from_a_thread_later();
    let (started, is_started) = klaw::channel::oneshot::channel();
    let task = Handle::current().unwrap().spawn(async move {
        let held_open = klaw::cancel::shield(async move {
            started.send(()).unwrap();
            let _ = cleanup.recv().await;
        });
        let beside =
            klaw::cancel::move_on_after(Duration::from_secs(3600), std::future::pending::<()>());
        futures_lite::future::zip(held_open, beside).await;
    });
    is_started.await.unwrap();
    task.cancel("stop");
    assert!(task.await.is_err(), "the task was cancelled");
    assert_eq!(
        now() - start,
        Duration::ZERO,
        "the paused clock jumped to the deadline of a region beside the shield of a cancelled task"
    );
}

/// A `block_on` of a paused runtime nested in another's poll: the outer future, blocked in the
/// inner one, does not hold the clock meanwhile, so the inner one's sleep completes. What would
/// break it: the outer `block_on` holding the clock for its whole poll, so that the clock never
/// moved while the inner one waited for it.
#[test]
fn a_sleep_in_a_block_on_nested_in_a_block_on_of_a_paused_runtime_completes() {
    let elapsed = common::within(secs(20), || {
        let rt = paused();
        rt.block_on(async {
            let start = klaw::time::now();
            rt.block_on(klaw::time::sleep(Duration::from_secs(3600)));
            klaw::time::now() - start
        })
    });
    assert_eq!(elapsed, Duration::from_secs(3600));
}

/// The same with the inner `block_on` awaiting a task that sleeps on the worker: the worker
/// cannot jump the clock either, since the outer `block_on`'s hold is still up.
#[test]
fn a_task_awaited_by_a_nested_block_on_of_a_paused_runtime_completes_its_sleep() {
    let value = common::within(secs(20), || {
        let rt = paused();
        rt.block_on(async {
            let sleeper = klaw::Handle::current().unwrap().spawn(async {
                klaw::time::sleep(Duration::from_secs(60)).await;
                7
            });
            rt.block_on(sleeper)
        })
    });
    assert_eq!(value, Ok(7));
}

/// time.md: "With no timer pending the clock does not move at all ... A shutdown's grace period
/// is real time too." A paused runtime's one task waits on a channel whose sender the test holds;
/// no timer is pending, so the virtual clock stands still. `shutdown(50 ms)` must still end:
/// after 50 ms of real time the grace has run out, the task is cancelled, and the report says so.
/// Checks: `grace_expired`, the task counted cancelled, and the shutdown took at least the grace
/// (a lower bound, which the shutdown's own wait guarantees).
///
/// What would break it: a grace measured on the runtime's virtual clock, which no timer moves
/// (the shutdown then hangs, and `within` fails the test), or one the clock jumps to at once
/// because every task waits (then it returns before the grace has passed in real time).
#[test]
fn a_paused_runtimes_grace_runs_out_in_real_time_while_a_task_waits_on_a_channel() {
    let report = within(secs(20), || {
        let rt = paused();
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let started = Flag::default();
        let running = started.clone();
        let task = rt.spawn(async move {
            running.set();
            rx.recv().await.ok()
        });
        wait_for("the task runs", || started.is_set());
        let report = rt.shutdown(ms(50));
        // Held until the shutdown returned: the channel stays open, so nothing but the
        // shutdown's cancel ends the task.
        drop(tx);
        drop(task);
        report
    });
    assert!(report.grace_expired, "the grace did not run out: {report:?}");
    assert_eq!(
        (report.succeeded, report.cancelled, report.abandoned),
        (0, 1, 0),
        "the waiting task was not cancelled at the end of the grace: {report:?}"
    );
}

/// time.md: "A shutdown's grace period is real time too." The other side: a paused runtime's
/// task waits on a channel (no timer pending), and a plain thread sends it a value 20 ms of real
/// time after the shutdown began, well inside a 20 s grace. Checks: the task ends on its own
/// within the grace, and is not cancelled: `grace_expired` is false, the task counted succeeded.
///
/// What would break it: a grace measured on the virtual clock that jumps to its end as soon as
/// every task waits (what `Runtime::shutdown_now`'s comment warns of): the task would be
/// cancelled before the value came, though it was on time in real time.
#[test]
fn a_task_released_by_a_thread_inside_a_paused_runtimes_grace_is_not_cancelled() {
    let report = within(secs(60), || {
        let rt = paused();
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let task = rt.spawn(async move { rx.recv().await.ok() });
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(ms(20));
            // Fails only if the task is gone already (cancelled), which the report then shows.
            let _ = tx.try_send(7);
        });
        let report = rt.shutdown(secs(20));
        releaser.join().expect("the releasing thread ran");
        drop(task);
        report
    });
    assert!(!report.grace_expired, "the grace ran out before the task ended: {report:?}");
    assert_eq!(
        (report.succeeded, report.cancelled, report.abandoned),
        (1, 0, 0),
        "the task released inside the grace was cancelled: {report:?}"
    );
}

/// But a `block_on` of another paused runtime inside the poll does not move the poller's clock:
/// the outer future holds its own clock while it is polled, as before. What would break it: the
/// nested `block_on` suspending the outer one's hold whatever its clock.
#[test]
fn a_block_on_of_another_paused_runtime_inside_a_poll_does_not_move_the_pollers_clock() {
    let (moved, fired) = within(secs(30), || {
        let outer = paused();
        let other = paused();
        outer.block_on(async {
            let started = Arc::new(AtomicBool::new(false));
            let fired = Arc::new(AtomicBool::new(false));
            let (task_started, task_fired) = (started.clone(), fired.clone());
            let _sleeper = klaw::Handle::current().unwrap().spawn(async move {
                task_started.store(true, Ordering::SeqCst);
                klaw::time::sleep(Duration::from_secs(3600)).await;
                task_fired.store(true, Ordering::SeqCst);
            });
            // The worker runs the task while this poll holds the clock (it cannot jump).
            while !started.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            let start = klaw::time::now();
            // Still inside this future's poll: synchronous work on another runtime's clock.
            other.block_on(async { std::thread::sleep(Duration::from_millis(300)) });
            (klaw::time::now() - start, fired.load(Ordering::SeqCst))
        })
    });
    assert_eq!(
        moved,
        Duration::ZERO,
        "runtime A's paused clock moved while A's block_on future was being polled (it was \
         blocked in another paused runtime's block_on, which never waited on A's clock)"
    );
    assert!(!fired, "a timer of runtime A fired in the middle of a poll of A's block_on future");
}

/// A `block_on` nested in one of the same clock with another runtime's `block_on` between them
/// suspends the outer one of its clock too. What would break it: looking only at the innermost
/// `block_on` polled on the thread.
#[test]
fn a_paused_block_on_nested_through_another_paused_runtimes_block_on_still_moves_its_clock() {
    let elapsed = within(secs(20), || {
        let a = paused();
        let b = paused();
        a.block_on(async {
            let start = klaw::time::now();
            b.block_on(async {
                // Made inside A's block_on, so it sleeps on A's clock.
                a.block_on(async { klaw::time::sleep(Duration::from_secs(3600)).await });
            });
            klaw::time::now() - start
        })
    });
    assert_eq!(elapsed, Duration::from_secs(3600));
}

/// A sleep and a region nested inside a region beside a shield, both registered on the clock
/// before the cancel: the region beside the shield drops its future at the cancel (it can never
/// return: what encloses it drops it once the shield ends), so neither timer is left on the
/// clock, and the clock stays put while the shield waits for another thread. Checks: no time
/// passes, and the nested future's destructor ran before the shield ended, as a trio checkpoint
/// raises `Cancelled` at once.
///
/// What would break it: the region beside the shield keeping its future (unpolled) until the
/// shield ends, whose nested timers, registered before the cancel, pull the clock an hour on.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn timers_nested_in_a_region_beside_a_shield_do_not_pull_the_paused_clock() {
    struct SetOnDrop(Flag);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set();
        }
    }
    let nested_dropped = Flag::default();
    let (dropped, seen) = (nested_dropped.clone(), nested_dropped.clone());
    let dropped_first = Flag::default();
    let dropped_first_seen = dropped_first.clone();
    let beside = klaw::cancel::move_on_after(Duration::from_secs(7200), async move {
        let _guard = SetOnDrop(dropped);
        let inner = klaw::cancel::move_on_after(
            Duration::from_secs(5400),
            sleep(Duration::from_secs(3600)),
        );
        let _ = inner.await;
        std::future::pending::<()>().await;
    });
    let (outcome, moved) = beside_a_held_shield(beside, move || {
        if seen.is_set() {
            dropped_first.set();
        }
    })
    .await;
    assert!(outcome.is_err(), "the region was cancelled: {outcome:?}");
    assert!(
        dropped_first_seen.is_set(),
        "the future beside the shield was dropped only after the shield ended"
    );
    assert_eq!(
        moved,
        Duration::ZERO,
        "the paused clock jumped to a timer nested in a region beside a shield"
    );
}
