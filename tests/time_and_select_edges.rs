//! The edges of virtual time, intervals, deadlines and `select!`: cases that
//! `virtual_time.rs`, `ported_tokio_time_and_models.rs`, `ported_tokio_tasks.rs`,
//! `cancel_tokens_and_time.rs`, `select.rs` and `ported_tokio_select.rs` do not check yet.
//! Translated from the ideas of tokio's `time_pause.rs`, `time_interval.rs`, `time_sleep.rs`,
//! `time_timeout.rs` and `macros_select.rs` (tokio's `Instant::now()` is `klaw::time::now()`,
//! its `pause()` a paused runtime). Nothing here asserts on real time; every test is bounded in
//! real time (`#[klaw::test(timeout = ..)]` or `common::within`), so a hang fails.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use common::{DEADLINE, ms, paused, secs, within, yield_once};
use klaw::Handle;
use klaw::channel::{RecvError, SendError};
use klaw::time::{self, MissedTickBehavior, advance, now, sleep, sleep_until};

/// Thirty years: what klaw documents a sleep too long for an `Instant` waits.
const THIRTY_YEARS: Duration = Duration::from_secs(86_400 * 365 * 30);
const YEAR: Duration = Duration::from_secs(86_400 * 365);

/// Polls `future` once with the caller's context.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

// ---- Long durations: no overflow anywhere ---------------------------------------------------

/// `sleep`'s documented rule (thirty years for a duration too long for an `Instant`), exactly,
/// and again from thirty years on: the second saturates from the new virtual now.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_sleep_of_duration_max_waits_exactly_thirty_years_each_time() {
    let start = now();
    let longest = sleep(Duration::MAX);
    assert_eq!(longest.deadline() - start, THIRTY_YEARS);
    longest.await;
    assert_eq!(now() - start, THIRTY_YEARS);
    sleep(Duration::MAX).await;
    assert_eq!(now() - start, THIRTY_YEARS * 2);
}

/// Deadlines far in the future (a thousand years) for every kind of deadline: a ready future
/// goes through, and under a paused clock a pending one elapses exactly there.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn deadlines_a_thousand_years_ahead_neither_overflow_nor_fire_early() {
    let far = YEAR * 1000;
    assert_eq!(klaw::cancel::move_on_at(now() + far, async { 1 }).await, Some(1));
    assert_eq!(klaw::cancel::fail_at(now() + far, async { 2 }).await, Ok(2));
    assert_eq!(klaw::cancel::fail_after(Duration::MAX, async { 3 }).await, Ok(3));
    assert_eq!(klaw::Task::new(async { 4 }).timeout(Duration::MAX).await, Ok(4));
    let deadline = now() + far;
    let scoped = klaw::scope!(deadline = deadline, |_s| Ok(5));
    assert_eq!(scoped.ok(), Some(5));

    let start = now();
    let elapsed = klaw::cancel::fail_at(start + far, std::future::pending::<()>()).await;
    assert_eq!(elapsed.unwrap_err().after(), far);
    assert_eq!(now() - start, far);
    // The clock is a thousand years on; the longest timeout still saturates from there.
    let start = now();
    let elapsed = klaw::cancel::fail_after(Duration::MAX, std::future::pending::<()>()).await;
    assert_eq!(elapsed.unwrap_err().after(), Duration::MAX);
    assert_eq!(now() - start, THIRTY_YEARS);
}

/// `sleep_until` a deadline already passed: ready at once, elapsed before it is polled, and the
/// virtual clock does not move (backwards or forwards).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn sleep_until_a_past_deadline_is_ready_at_once_and_the_clock_stays() {
    sleep(secs(60)).await;
    let start = now();
    let mut past = sleep_until(start - secs(30));
    assert!(past.is_elapsed());
    assert!(poll_once(&mut past).await.is_ready());
    sleep_until(start - secs(30)).await;
    assert_eq!(now(), start);
    // An `at` arm in the past is ready at once too, and is taken before `default`.
    let picked = klaw::select! {
        at(start - secs(1)) => "at",
        default => "default",
    };
    assert_eq!(picked, "at");
    assert_eq!(now(), start);
}

/// `select!`'s `default` "runs if no other arm is ready at once": a zero `after` is ready at
/// once, and a `Duration::MAX` one is not (and does not overflow).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_zero_after_arm_beats_default_and_a_longest_after_arm_does_not() {
    let start = now();
    let zero = klaw::select! {
        after(Duration::ZERO) => "after",
        default => "default",
    };
    assert_eq!(zero, "after");
    let longest = klaw::select! {
        after(Duration::MAX) => "after",
        default => "default",
    };
    assert_eq!(longest, "default");
    let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    let longest = klaw::select! {
        recv(rx) -> _msg => "message",
        after(Duration::MAX) => "after",
    };
    assert_eq!(longest, "after");
    assert_eq!(now() - start, THIRTY_YEARS);
}

// ---- When the paused clock may jump ---------------------------------------------------------

/// A task blocked on a channel whose sender sleeps between messages gets each message at the
/// sender's virtual time: the clock jumps to the sender's timers and no further.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_receiver_gets_each_message_at_its_sleeping_senders_virtual_time() {
    let (tx, rx) = klaw::channel::bounded::<u64>(1);
    let start = now();
    let sender = Handle::current().unwrap().spawn(async move {
        for n in 1..=5u64 {
            sleep(secs(n * 60)).await;
            tx.send(n).await.unwrap();
        }
        // A much later timer that must not be jumped to while the receiver has work.
        sleep(secs(86_400)).await;
    });
    let mut got = Vec::new();
    let mut at = Duration::ZERO;
    for n in 1..=5u64 {
        at += secs(n * 60);
        assert_eq!(rx.recv().await, Ok(n));
        got.push(now() - start);
        assert_eq!(now() - start, at, "message {n}");
    }
    sender.await.unwrap();
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
    assert_eq!(now() - start, at + secs(86_400));
}

/// A task that keeps yielding can always make progress, so the clock must not move while it
/// runs, though another task's timer is pending and the body waits.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn the_clock_stands_still_while_a_task_keeps_yielding() {
    let start = now();
    let handle = Handle::current().unwrap();
    let sleeper = handle.spawn(async {
        sleep(ms(1)).await;
        now()
    });
    let spinner = handle.spawn(async move {
        let mut moved = 0;
        for _ in 0..5_000 {
            yield_once().await;
            if now() != start {
                moved += 1;
            }
        }
        moved
    });
    assert_eq!(spinner.await, Ok(0), "the clock jumped while a task was runnable");
    assert_eq!(sleeper.await, Ok(start + ms(1)));
}

/// Two threads in `block_on` of one paused runtime: while one body is being polled (busy, on
/// its own thread), the clock must not jump to the other body's timer.
#[test]
fn a_busy_block_on_on_another_thread_holds_the_clock() {
    within(DEADLINE, || {
        let rt = Arc::new(paused());
        let start = rt.block_on(async { now() });
        let (inside_tx, inside_rx) = std::sync::mpsc::channel::<()>();
        let (sleeping_tx, sleeping_rx) = std::sync::mpsc::channel::<()>();
        let busy = std::thread::spawn({
            let rt = rt.clone();
            move || {
                rt.block_on(async move {
                    inside_tx.send(()).unwrap();
                    // The other thread's body registers its timer while this one is polled.
                    sleeping_rx.recv().unwrap();
                    let mut seen = Vec::new();
                    for _ in 0..20 {
                        std::thread::sleep(ms(2));
                        seen.push(now());
                    }
                    seen
                })
            }
        });
        inside_rx.recv().unwrap();
        let slept = rt.block_on(async {
            let mut nap = sleep(ms(1));
            assert!(poll_once(&mut nap).await.is_pending());
            sleeping_tx.send(()).unwrap();
            nap.await;
            now()
        });
        let seen = busy.join().unwrap();
        assert!(seen.iter().all(|&t| t == start), "the clock moved while a body ran: {seen:?}");
        assert_eq!(slept, start + ms(1));
    });
}

/// Under `limit = 1`, a waiting child starts at the virtual instant its slot frees: a timer of
/// someone else's two seconds later must not fire first.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_child_waiting_for_a_limit_slot_starts_when_the_slot_frees() {
    let start = now();
    let started = Arc::new(Mutex::new(Vec::new()));
    klaw::scope!(limit = 1, |s| {
        for n in 0..3u64 {
            let started = started.clone();
            s.spawn(async move {
                started.lock().unwrap().push(now() - start);
                sleep(secs(10 + n)).await;
            });
        }
        // The scope's own body sleeps too: its timer is between the children's.
        sleep(secs(12)).await;
        Ok(())
    })
    .unwrap();
    assert_eq!(*started.lock().unwrap(), [secs(0), secs(10), secs(21)]);
    assert_eq!(now() - start, secs(33));
}

// ---- Intervals --------------------------------------------------------------------------------

/// Burst after a long stall: every one of the thousand missed ticks comes at once, each with its
/// own due instant and without the clock moving, then the schedule is back on its grid.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn burst_after_a_thousand_missed_ticks_gives_each_then_returns_to_the_grid() {
    let start = now();
    let mut ticks = time::interval(secs(1));
    assert_eq!(ticks.tick().await, start);
    sleep(ms(1_000_500)).await;
    let stalled = now();
    for k in 1..=1000u64 {
        assert_eq!(ticks.tick().await, start + secs(k), "missed tick {k}");
    }
    assert_eq!(now(), stalled, "the burst waited");
    assert_eq!(ticks.tick().await, start + secs(1001));
    assert_eq!(now() - start, secs(1001));
}

/// Skip when the late tick is taken exactly on a multiple of the period: the next tick is the
/// next multiple after now (as tokio's), and Delay a period after now; either way never a
/// second tick at the same instant.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn skip_and_delay_after_a_stall_ending_exactly_on_the_grid() {
    for behavior in [MissedTickBehavior::Skip, MissedTickBehavior::Delay] {
        let start = now();
        let mut ticks = time::interval(secs(10));
        ticks.set_missed_tick_behavior(behavior);
        ticks.tick().await;
        sleep(secs(30)).await;
        assert_eq!(ticks.tick().await, start + secs(10), "{behavior:?}: the late tick");
        assert_eq!(now() - start, secs(30));
        assert_eq!(ticks.tick().await - start, secs(40), "{behavior:?}: the next tick");
        assert_eq!(now() - start, secs(40), "{behavior:?}");
    }
}

/// `interval_at` a start already passed: the first tick is at once and gives `start`; then
/// Burst catches up on the grid, Skip joins the grid after now, Delay ticks a period after now.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn an_interval_starting_in_the_past_catches_up_by_its_behaviour() {
    let cases = [
        (MissedTickBehavior::Burst, vec![0u64, 0, 0, 0, 2]),
        (MissedTickBehavior::Skip, vec![0, 2, 5]),
        (MissedTickBehavior::Delay, vec![0, 3, 6]),
    ];
    for (behavior, taken_at) in cases {
        let origin = now();
        let start = origin - secs(10);
        let mut ticks = time::interval_at(start, secs(3));
        ticks.set_missed_tick_behavior(behavior);
        let mut due = Vec::new();
        let mut taken = Vec::new();
        for _ in 0..taken_at.len() {
            due.push(ticks.tick().await);
            taken.push((now() - origin).as_secs());
        }
        assert_eq!(taken, taken_at, "{behavior:?}: when the ticks were taken");
        assert_eq!(due[0], start, "{behavior:?}: the first tick gives its due start");
        if behavior == MissedTickBehavior::Burst {
            let expected: Vec<Instant> = (0..5).map(|k| start + secs(3 * k)).collect();
            assert_eq!(due, expected);
        }
        sleep(secs(100)).await; // apart from the next case
    }
}

/// `reset` after a long stall drops the missed ticks: the next tick is a period from now.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn reset_after_a_long_stall_drops_every_missed_tick() {
    let mut ticks = time::interval(secs(1));
    ticks.tick().await;
    sleep(secs(500)).await;
    ticks.reset();
    let reset_at = now();
    assert_eq!(ticks.tick().await, reset_at + secs(1));
    assert_eq!(now(), reset_at + secs(1));
    assert_eq!(ticks.tick().await, reset_at + secs(2));
}

// ---- select! ----------------------------------------------------------------------------------

/// Every channel closed and no `default`: the select does not hang or panic, it gives a typed
/// `Closed` (biased: from the first arm; fair: from either, and over many rounds from both).
#[klaw::test(workers = 1, timeout = "10s")]
async fn a_select_over_only_closed_channels_returns_a_typed_closed() {
    let (_, rx_a) = klaw::channel::bounded::<u8>(1);
    let (_, rx_b) = klaw::channel::bounded::<u8>(1);
    let (tx_c, rx_c) = klaw::channel::bounded::<String>(1);
    drop(rx_c);
    let biased = klaw::select! {
        biased;
        recv(rx_a) -> a => ("a", a),
        recv(rx_b) -> b => ("b", b),
    };
    assert_eq!(biased, ("a", Err(RecvError::Closed)));
    let mut seen = [0usize; 3];
    for _ in 0..300 {
        let picked = klaw::select! {
            recv(rx_a) -> a => { assert_eq!(a, Err(RecvError::Closed)); 0 }
            recv(rx_b) -> b => { assert_eq!(b, Err(RecvError::Closed)); 1 }
            send(tx_c, "back".to_string()) -> r => {
                assert_eq!(r, Err(SendError("back".to_string())));
                2
            }
        };
        seen[picked] += 1;
    }
    assert!(seen.iter().all(|&n| n > 0), "a fair select never picked some closed arm: {seen:?}");
}

/// A `send` arm waiting for a place on a full channel whose receivers then all go: the select
/// wakes when they go (not at its timeout) with the value handed back.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_waiting_send_arm_gets_its_value_back_when_the_receivers_go() {
    let (tx, rx) = klaw::channel::bounded::<String>(1);
    tx.try_send("queued".to_string()).unwrap();
    let start = now();
    let dropper = Handle::current().unwrap().spawn(async move {
        sleep(secs(10)).await;
        drop(rx);
    });
    let outcome = klaw::select! {
        send(tx, "mine".to_string()) -> res => Some(res),
        after(secs(3600)) => None,
    };
    assert_eq!(outcome, Some(Err(SendError("mine".to_string()))));
    assert_eq!(now() - start, secs(10));
    dropper.await.unwrap();
}

/// A `send` arm that waited in line and loses to a timer: its value is never evaluated nor sent,
/// and it holds no place afterwards (a later `try_send` fits once the queued message is taken).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_send_arm_that_waited_and_lost_to_a_timer_sends_nothing_and_keeps_no_place() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(0).unwrap();
    let evaluated = AtomicUsize::new(0);
    let value = || {
        evaluated.fetch_add(1, Ordering::SeqCst);
        9
    };
    let start = now();
    let picked = klaw::select! {
        send(tx, value()) -> res => { res.unwrap(); "sent" }
        after(secs(5)) => "timed out",
    };
    assert_eq!(picked, "timed out");
    assert_eq!(now() - start, secs(5));
    assert_eq!(evaluated.load(Ordering::SeqCst), 0);
    assert_eq!(rx.try_recv(), Ok(0));
    assert!(rx.try_recv().is_err(), "the losing send arm sent something");
    tx.try_send(1).expect("the losing send arm kept a place");
    assert_eq!(rx.try_recv(), Ok(1));
}

/// A `send` arm waiting in line is given the place a receive frees, and in the same moment
/// another arm becomes ready and wins: the place must go on to the plain `send` waiting behind
/// it (else that send waits for ever, with a free place in the channel).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_send_arm_given_a_place_that_loses_passes_the_place_on() {
    let handle = Handle::current().unwrap();
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(0).unwrap();
    let (go_tx, go_rx) = klaw::channel::bounded::<()>(1);
    let selecting = handle.spawn({
        let tx = tx.clone();
        async move {
            klaw::select! {
                biased;
                recv(go_rx) -> _go => "go",
                send(tx, 1) -> res => { res.unwrap(); "sent" }
            }
        }
    });
    advance(Duration::ZERO).await; // the select waits in line for a place
    let plain = handle.spawn({
        let tx = tx.clone();
        async move { tx.send(2).await }
    });
    advance(Duration::ZERO).await; // the plain send waits behind it
    // In one poll of one task (the selecting task cannot run in between): free a place, which
    // goes to the first in line, and make the select's other arm ready.
    let freer = handle.spawn(async move {
        let first = rx.try_recv();
        go_tx.try_send(()).unwrap();
        (first, rx)
    });
    let (first, rx) = freer.await.unwrap();
    assert_eq!(first, Ok(0));
    assert_eq!(selecting.await, Ok("go"));
    let plain = klaw::cancel::move_on_after(secs(60), plain).await;
    assert_eq!(plain, Some(Ok(Ok(()))), "the place given to the losing send arm was lost");
    assert_eq!(rx.try_recv(), Ok(2));
    assert!(rx.try_recv().is_err());
    drop(tx);
}

/// A `select!` loop over a channel that its sender closes mid-loop: every message at its
/// sender's virtual time, then `Closed` at the close (no `after` arm ever fires).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_select_loop_sees_every_message_then_the_close_at_its_time() {
    let (tx, rx) = klaw::channel::bounded::<u32>(4);
    let start = now();
    let sender = Handle::current().unwrap().spawn(async move {
        for n in 1..=3u32 {
            sleep(secs(1)).await;
            tx.send(n).await.unwrap();
        }
        sleep(secs(1)).await;
        drop(tx);
        sleep(secs(7200)).await; // a later timer the loop's wait must not run into
    });
    let mut got = Vec::new();
    let closed_at = loop {
        klaw::select! {
            recv(rx) -> msg => match msg {
                Ok(n) => got.push((n, now() - start)),
                Err(RecvError::Closed) => break now() - start,
            },
            after(secs(3600)) => panic!("the after arm fired at {:?}", now() - start),
        }
    };
    assert_eq!(got, [(1, secs(1)), (2, secs(2)), (3, secs(3))]);
    assert_eq!(closed_at, secs(4));
    sender.cancel("done");
    let _ = sender.await;
}

/// `select_any` waiting on a dynamic list is woken by a receiver closing (its sender dropped),
/// with that receiver's index and a typed `Closed`, at the virtual time of the drop.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn select_any_reports_a_receiver_closed_while_it_waits() {
    let (mut senders, receivers): (Vec<_>, Vec<_>) =
        (0..3).map(|_| klaw::channel::bounded::<u8>(1)).unzip();
    let closing = senders.remove(1);
    let start = now();
    let dropper = Handle::current().unwrap().spawn(async move {
        sleep(secs(5)).await;
        drop(closing);
    });
    let got = klaw::cancel::move_on_after(secs(3600), klaw::channel::select_any(&receivers)).await;
    assert_eq!(got, Some(Some((1, Err(RecvError::Closed)))));
    assert_eq!(now() - start, secs(5));
    dropper.await.unwrap();
    drop(senders);
}

/// A fair `select!` over a ready `recv` arm and a due `after` arm picks each some of the time;
/// a biased one always the first; and a losing `recv` arm takes nothing.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn fair_select_between_a_message_and_a_due_timer_takes_both_and_loses_nothing() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let (mut messages, mut timers) = (0, 0);
    for n in 0..400u32 {
        tx.try_send(n).unwrap();
        let picked = klaw::select! {
            recv(rx) -> msg => { assert_eq!(msg, Ok(n)); true }
            after(Duration::ZERO) => false,
        };
        if picked {
            messages += 1;
        } else {
            timers += 1;
            assert_eq!(rx.try_recv(), Ok(n), "the losing recv arm took the message");
        }
    }
    assert!(messages > 50 && timers > 50, "messages {messages}, timers {timers}");
}

// ---- Timeouts of the longest duration outside `cancel` and `time` ----------------------------

/// A scope's `timeout` of `Duration::MAX` saturates as every other klaw timeout does (`sleep`'s
/// docs: thirty years, as in tokio; `fail_after` and `Task::timeout` take it): a ready body
/// gives its value, a pending one elapses thirty virtual years later with a typed error, and
/// nothing panics with "overflow when adding duration to instant".
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_scope_timeout_of_the_longest_duration_saturates_instead_of_panicking() {
    let quick = klaw::scope!(timeout = Duration::MAX, |_s| Ok(5));
    assert_eq!(quick.ok(), Some(5));
    let start = now();
    let stuck = klaw::scope!(timeout = Duration::MAX, |_s| {
        std::future::pending::<()>().await;
        Ok(())
    });
    assert!(matches!(stuck, Err(klaw::Error::Elapsed(_))), "{stuck:?}");
    assert_eq!(now() - start, THIRTY_YEARS);
}

/// `shutdown(Duration::MAX)` ("take all the time you need") is a grace period like any other:
/// it returns its report once every task has ended, and does not panic on the addition of the
/// grace period to the start (klaw's rule: "a timeout is a typed error, never an unhandled panic").
#[test]
fn a_shutdown_with_the_longest_grace_period_waits_and_reports() {
    within(DEADLINE, || {
        let rt = common::runtime(1);
        let _quick = rt.spawn(async { sleep(ms(5)).await });
        let report = rt.shutdown(Duration::MAX);
        assert_eq!((report.succeeded, report.cancelled), (1, 0));
        assert!(!report.grace_expired);
    });
}

/// On real time too, a zero `after` arm is ready at once and so is taken before `default`.
#[klaw::test(workers = 1, timeout = "10s")]
async fn on_real_time_a_zero_after_arm_beats_default() {
    for _ in 0..50 {
        let picked = klaw::select! {
            after(Duration::ZERO) => "after",
            default => "default",
        };
        assert_eq!(picked, "after");
    }
}

/// A `send` arm on an unbounded channel whose receivers are gone gives its value back, typed.
#[klaw::test(workers = 1, timeout = "10s")]
async fn a_send_arm_on_an_unbounded_channel_without_receivers_gives_the_value_back() {
    let (tx, rx) = klaw::channel::unbounded::<String>();
    drop(rx);
    let (_keep, idle) = klaw::channel::bounded::<u8>(1);
    let outcome = klaw::select! {
        biased;
        recv(idle) -> _msg => None,
        send(tx, "back".to_string()) -> res => Some(res),
    };
    assert_eq!(outcome, Some(Err(SendError("back".to_string()))));
}
