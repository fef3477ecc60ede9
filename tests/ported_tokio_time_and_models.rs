//! More of tokio's tests, translated to klaw, for the cases the existing ports
//! (`virtual_time.rs`, `ported_tokio_tasks.rs`, `ported_cancellation.rs`,
//! `ported_tokio_sync_primitives.rs`, `sync_primitives.rs`) do not cover. Read at tokio commit
//! `ea91b33ca57ff0581b38e735cc108f831bccbdaa`:
//!
//! - `tokio/tests/time_pause.rs` (`sleep_same_task`, `sleep_same_task_no_poll`),
//!   `rt_time_start_paused.rs`, `time_rt.rs`, `time_alt.rs`;
//! - tokio's loom models, run here as many rounds of real threads (a loom model explores the
//!   interleavings; these sample them): `tokio/src/sync/tests/loom_notify.rs`,
//!   `loom_semaphore_batch.rs`, `loom_rwlock.rs`, and tokio-util's
//!   `src/sync/tests/loom_cancellation_token.rs`;
//! - the rest of `tokio/src/sync/tests/semaphore_batch.rs`, `sync_semaphore_owned.rs`'s
//!   `stress_test`, `sync_rwlock.rs`'s uncontested cases.
//!
//! tokio's `time::pause()` is a runtime built with `start_paused(true)`; tokio's `Instant::now()`
//! is `klaw::time::now()`; tokio's batch semaphore's `release(n)` is `add_permits(n)` (or a
//! permit's drop), its `acquire(n)` `acquire_many(n)`. Nothing here asserts on how long anything
//! took in real time; anything that could hang runs under `common::with_deadline`.

mod common;

#[path = "common/mock_task.rs"]
mod mock_task;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEADLINE, ms, pause_spinning, paused, secs, within};
use klaw::cancel::Token;
use klaw::sync::{Notify, RwLock, RwLockWriteGuard, Semaphore};
use klaw::time::{Sleep, advance, now, sleep, sleep_until};
use klaw::{CancelReason, Handle};
use mock_task::{mock, pending, ready};

/// Rounds of each thread scenario (a loom model's interleavings, sampled).
const ROUNDS: usize = 2000;

/// Polls `future` once with a waker that does nothing.
fn poll_noop<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

fn block_on<F: Future>(future: F) -> F::Output {
    klaw::runtime::block_on(future)
}

// ---- tokio/tests/time_pause.rs ----------------------------------------------------------------

enum Stage {
    Begin,
    Advancing(Pin<Box<dyn Future<Output = ()> + Send>>),
    After,
}

/// tokio's `Tester`: polls the sleep (or not) and `advance`s the clock, all from one task.
struct SameTask {
    sleep: Sleep,
    stage: Stage,
    before: Option<Instant>,
    poll_first: bool,
}

impl Future for SameTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            match &mut this.stage {
                Stage::Begin => {
                    if this.poll_first {
                        assert!(Pin::new(&mut this.sleep).poll(cx).is_pending());
                    }
                    this.before = Some(now());
                    this.stage = Stage::Advancing(Box::pin(advance(ms(100))));
                }
                Stage::Advancing(advancing) => match advancing.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => this.stage = Stage::After,
                },
                Stage::After => {
                    assert_eq!(now() - this.before.unwrap(), ms(100));
                    assert!(Pin::new(&mut this.sleep).poll(cx).is_pending());
                    return Poll::Ready(());
                }
            }
        }
    }
}

async fn same_task(poll_first: bool) {
    let start = now();
    advance(ms(1)).await;
    let mut tester = SameTask {
        sleep: sleep_until(start + ms(300)),
        stage: Stage::Begin,
        before: None,
        poll_first,
    };
    (&mut tester).await;
    // And the sleep still completes at its own deadline.
    (&mut tester.sleep).await;
    assert_eq!(now() - start, ms(300));
}

/// tokio `time_pause::sleep_same_task`: a sleep polled by the task that then `advance`s the clock
/// by less than the sleep's deadline stays pending.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn sleep_same_task() {
    same_task(true).await;
}

/// tokio `time_pause::sleep_same_task_no_poll`: as above, the sleep never polled before the
/// `advance`.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn sleep_same_task_no_poll() {
    same_task(false).await;
}

// ---- tokio/tests/rt_time_start_paused.rs --------------------------------------------------------

/// tokio `rt_time_start_paused::test_start_paused`: a paused clock does not move while the thread
/// sleeps in real time.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn test_start_paused() {
    let start = now();
    for _ in 0..5 {
        std::thread::sleep(ms(1));
        assert_eq!(now(), start);
    }
}

/// tokio `rt_time_start_paused::test_start_paused`, with a timer pending: while the test's body
/// is busy (sleeping for real, never awaiting), the paused clock does not jump to the timer of a
/// spawned task, though that task and the worker are idle.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn the_clock_stands_still_while_the_body_is_busy_with_a_timer_pending() {
    let start = now();
    let alarm = Handle::current().unwrap().spawn(sleep(ms(1)));
    advance(Duration::ZERO).await; // the task has reached its timer
    for _ in 0..5 {
        std::thread::sleep(ms(2));
        assert_eq!(now(), start, "the clock jumped while the body ran");
        assert!(!alarm.is_finished());
    }
    alarm.await.unwrap();
    assert_eq!(now() - start, ms(1));
}

/// tokio `time_pause::pause_time_in_task`, as klaw has it: `advance` called from a spawned task
/// (not the body) moves the clock and fires what is due, while the body waits on that task.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn advance_from_a_spawned_task() {
    let start = now();
    let handle = Handle::current().unwrap();
    let half = handle.spawn(async move {
        sleep(secs(1800)).await;
        now()
    });
    let mover = handle.spawn(async move {
        advance(secs(3600)).await;
        now()
    });
    assert_eq!(mover.await, Ok(start + secs(3600)));
    // The half-hour timer fired during the advance; its task read the clock after the move.
    assert_eq!(half.await, Ok(start + secs(3600)));
    assert_eq!(now() - start, secs(3600));
}

/// tokio `time_sleep::reset_sleep_to_past`, tokio's own assertion: a registered sleep reset to a
/// deadline that has passed wakes its task at once (klaw's port in `ported_tokio_tasks.rs`
/// checks only that a poll after the reset is ready).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn reset_sleep_to_past_wakes_the_task() {
    let start = now();
    let mut nap = mock(sleep_until(start + ms(5)));
    pending(nap.poll());
    sleep(ms(2)).await;
    assert!(!nap.is_woken());
    nap.future.as_mut().reset(start + ms(1));
    assert!(nap.is_woken(), "a sleep reset into the past did not wake its task");
    ready(nap.poll());
}

// ---- tokio/tests/time_rt.rs ---------------------------------------------------------------------

/// tokio `time_rt::timer_with_threaded_runtime` and `timer_with_current_thread_scheduler`: a
/// `sleep_until` in a task of a multi-worker (real-time) runtime, and in a one-worker runtime's
/// `block_on`, completes, and not before its deadline.
#[test]
fn timer_with_threaded_runtime() {
    within(DEADLINE, || {
        let rt = common::runtime(2);
        let (tx, rx) = std::sync::mpsc::channel();
        let _task = rt.spawn(async move {
            let when = now() + ms(10);
            sleep_until(when).await;
            tx.send(now() >= when).unwrap();
        });
        assert!(rx.recv().unwrap(), "woke before its deadline");

        let rt = common::runtime(1);
        rt.block_on(async {
            let when = now() + ms(10);
            sleep_until(when).await;
            assert!(now() >= when);
        });
    });
}

/// tokio's `Starve`: polls the inner future, and wakes itself at once each time it is pending.
struct Starve<F>(F, u64);

impl<F: Future<Output = ()> + Unpin> Future for Starve<F> {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        if Pin::new(&mut self.0).poll(cx).is_ready() {
            return Poll::Ready(self.1);
        }
        self.1 += 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// tokio `time_rt::starving`: a future that keeps waking itself still sees its sleep complete
/// (on real-time runtimes of one and two workers, in `block_on` and in a spawned task).
#[test]
fn starving() {
    within(DEADLINE, || {
        for workers in [1, 2] {
            let rt = common::runtime(workers);
            rt.block_on(async {
                let when = now() + ms(10);
                Starve(sleep_until(when), 0).await;
                assert!(now() >= when);
            });
            let spawned = rt.spawn(async {
                let when = now() + ms(10);
                Starve(sleep_until(when), 0).await;
                now() >= when
            });
            assert_eq!(rt.block_on(spawned), Ok(true), "{workers} workers");
        }
    });
}

/// tokio `time_rt::timeout_value`: a timeout around a oneshot whose sender stays alive elapses,
/// exactly at its deadline on a paused clock.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn timeout_value() {
    let (_tx, rx) = klaw::channel::oneshot::channel::<()>();
    let start = now();
    let outcome = klaw::cancel::fail_after(ms(10), rx).await;
    assert_eq!(outcome.map(|_| ()).unwrap_err().after(), ms(10));
    assert_eq!(now() - start, ms(10));
}

/// tokio `time_rt::tickspace`: a sleep made on one paused runtime, reset inside another paused
/// runtime's `block_on`, keeps the clock of the runtime it was made on: awaited there, it takes
/// exactly the two milliseconds to its new deadline on that clock, and the other clock does not
/// move.
#[test]
fn tickspace() {
    within(DEADLINE, || {
        let rt_past = paused();
        std::thread::sleep(ms(1));
        let rt = paused();
        let (mut timer, t0) = rt_past.block_on(async { (sleep(ms(1)), now()) });
        assert!(poll_noop(&mut timer).is_pending());
        let deadline = timer.deadline();
        assert_eq!(deadline, t0 + ms(1));
        let rt_before = rt.block_on(async {
            timer.reset(deadline + ms(1));
            now()
        });
        rt_past.block_on(&mut timer);
        assert_eq!(rt_past.block_on(async { now() }) - t0, ms(2));
        assert_eq!(rt.block_on(async { now() }), rt_before, "the other runtime's clock moved");
    });
}

// ---- tokio/tests/time_alt.rs --------------------------------------------------------------------

/// tokio `time_alt::sleep`: a sleep in `block_on`, then 512 tasks that each sleep 10 ms; on a
/// paused clock each takes exactly 10 ms, and they all end at the same virtual instant.
#[klaw::test(start_paused = true, timeout = "30s")]
async fn time_alt_sleep() {
    let start = now();
    sleep(ms(10)).await;
    assert_eq!(now() - start, ms(10));
    let handle = Handle::current().unwrap();
    let tasks: Vec<_> = (0..512)
        .map(|_| {
            handle.spawn(async {
                let start = now();
                sleep(ms(10)).await;
                now() - start
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await, Ok(ms(10)));
    }
    assert_eq!(now() - start, ms(20));
}

/// tokio `time_alt::timeout`: as `sleep`, with a timeout around a future that never finishes.
#[klaw::test(start_paused = true, timeout = "30s")]
async fn time_alt_timeout() {
    let start = now();
    let elapsed = klaw::cancel::fail_after(ms(10), std::future::pending::<()>()).await;
    assert_eq!(elapsed.unwrap_err().after(), ms(10));
    let handle = Handle::current().unwrap();
    let tasks: Vec<_> = (0..512)
        .map(|_| {
            handle.spawn(async {
                let start = now();
                let elapsed = klaw::cancel::fail_after(ms(10), std::future::pending::<()>()).await;
                (elapsed.is_err(), now() - start)
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await, Ok((true, ms(10))));
    }
    assert_eq!(now() - start, ms(20));
}

/// tokio `time_alt::reset_should_stay_on_same_runtime`, first half: a sleep made in a task of one
/// paused runtime and reset in a task of another stays on the first runtime's clock.
#[test]
fn reset_should_stay_on_same_runtime() {
    within(DEADLINE, || {
        let rt1 = paused();
        let rt2 = paused();
        let (mut timer, t0) =
            rt1.block_on(rt1.spawn(async { (sleep(secs(3600)), now()) })).unwrap();
        assert!(poll_noop(&mut timer).is_pending());
        let rt2_before = rt2.block_on(async { now() });
        #[allow(clippy::async_yields_async, reason = "the sleep itself is what the task returns")]
        let mut timer = rt2
            .block_on(rt2.spawn(async move {
                let mut timer = timer;
                timer.reset(t0 + secs(7200));
                timer
            }))
            .unwrap();
        assert_eq!(rt2.block_on(async { now() }), rt2_before, "rt2's clock moved");
        rt1.block_on(&mut timer);
        assert_eq!(rt1.block_on(async { now() }) - t0, secs(7200));
    });
}

/// tokio `time_alt::reset_should_stay_on_same_runtime`, second half: once the runtime a sleep was
/// made on is dropped, the sleep does not stay pending forever (tokio fires every timer of a
/// runtime that shuts down, so the sleep is ready). First polled after the drop, and, as tokio's
/// is, before it (then the paused runtime's idle worker may jump its clock to that timer first,
/// or the drop fires it); either way it completes.
#[test]
fn a_sleep_of_a_dropped_runtime_does_not_stay_pending() {
    within(DEADLINE, || {
        for polled_before_the_drop in [false, true] {
            let rt1 = paused();
            #[allow(
                clippy::async_yields_async,
                reason = "the sleep itself is what the task returns"
            )]
            let mut timer = rt1.block_on(rt1.spawn(async { sleep(secs(3600)) })).unwrap();
            if polled_before_the_drop {
                let _ = poll_noop(&mut timer);
            }
            drop(rt1);
            // Awaited under another executor, with a real-time bound so a hang is a failure.
            let rt2 = common::runtime(1);
            let outcome = rt2.block_on(async {
                let outcome = klaw::cancel::move_on_after(Duration::from_secs(2), &mut timer).await;
                outcome.is_some()
            });
            assert!(
                outcome,
                "a sleep whose paused runtime was dropped never completes \
                 (polled before the drop: {polled_before_the_drop})"
            );
        }
    });
}

/// The same for `advance`: made on a paused runtime and first polled after that runtime shut
/// down, it completes ("nothing waits forever for a time that can no longer come", book
/// time.md): no task of the runtime is left to wait for. What would break it: the shutdown
/// waking the clock's timers but not the `advance` futures waiting for the runtime to settle.
#[test]
fn an_advance_of_a_shut_down_paused_runtime_completes() {
    within(DEADLINE, || {
        let rt = paused();
        #[allow(clippy::async_yields_async, reason = "the advance itself is what it returns")]
        let moving = rt.block_on(async { advance(secs(5)) });
        drop(rt);
        let outcome = klaw::runtime::block_on(klaw::cancel::move_on_after(secs(2), moving));
        assert_eq!(outcome, Some(()), "an advance of a shut-down paused runtime never completed");
    });
}

// ---- tokio/src/sync/tests/loom_notify.rs --------------------------------------------------------

/// tokio loom `notify_one`: a `notify_one` from one thread reaches a `notified()` awaited on
/// another, whichever comes first.
#[test]
fn loom_notify_one() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let tx = Arc::new(Notify::new());
            let rx = tx.clone();
            let th = thread::spawn(move || block_on(rx.notified()));
            tx.notify_one();
            th.join().unwrap();
        }
    });
}

/// tokio loom `notify_one`, as one long exchange: two threads pass a turn back and forth 20,000
/// times through two `Notify`s; a lost wake-up hangs, and the deadline fails it.
#[test]
fn loom_notify_one_ping_pong() {
    within(DEADLINE, || {
        let (ping, pong) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let other = {
            let (ping, pong) = (ping.clone(), pong.clone());
            thread::spawn(move || {
                block_on(async {
                    for _ in 0..20_000 {
                        ping.notified().await;
                        pong.notify_one();
                    }
                })
            })
        };
        block_on(async {
            for _ in 0..20_000 {
                ping.notify_one();
                pong.notified().await;
            }
        });
        other.join().unwrap();
    });
}

/// tokio loom `notify_waiters`: two `notified()` futures made before a `notify_waiters` on
/// another thread both complete.
#[test]
fn loom_notify_waiters() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let notify = Arc::new(Notify::new());
            let tx = notify.clone();
            let first = notify.notified();
            let second = notify.notified();
            let th = thread::spawn(move || tx.notify_waiters());
            block_on(async {
                first.await;
                second.await;
            });
            th.join().unwrap();
        }
    });
}

/// tokio loom `notify_waiters_and_one`: a `notify_waiters` and a `notify_one` racing a
/// `notified()` made on a third thread: it completes either way.
#[test]
fn loom_notify_waiters_and_one() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let notify = Arc::new(Notify::new());
            let (tx1, tx2) = (notify.clone(), notify.clone());
            let th1 = thread::spawn(move || tx1.notify_waiters());
            let th2 = thread::spawn(move || tx2.notify_one());
            let th3 = thread::spawn(move || block_on(notify.notified()));
            th1.join().unwrap();
            th2.join().unwrap();
            th3.join().unwrap();
        }
    });
}

/// tokio loom `notify_multi`: two threads each wait and pass the notification on; the one
/// `notify_one` goes round both and is left for the main thread.
#[test]
fn loom_notify_multi() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let notify = Arc::new(Notify::new());
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let notify = notify.clone();
                    thread::spawn(move || {
                        block_on(async {
                            notify.notified().await;
                            notify.notify_one();
                        })
                    })
                })
                .collect();
            notify.notify_one();
            for th in threads {
                th.join().unwrap();
            }
            block_on(notify.notified());
        }
    });
}

/// tokio loom `notify_drop`: a `notified()` polled once and dropped, racing another waiter for one
/// `notify_one`: if it was given the notification it passes it on, so the other waiter always
/// gets one.
#[test]
fn loom_notify_drop() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let notify = Arc::new(Notify::new());
            let (rx1, rx2) = (notify.clone(), notify.clone());
            let th1 = thread::spawn(move || {
                let mut recv = Box::pin(rx1.notified());
                block_on(std::future::poll_fn(|cx| {
                    if recv.as_mut().poll(cx).is_ready() {
                        rx1.notify_one();
                    }
                    Poll::Ready(())
                }));
            });
            let th2 = thread::spawn(move || {
                block_on(async {
                    rx2.notified().await;
                    rx2.notify_one(); // the second notification
                    rx2.notified().await;
                })
            });
            notify.notify_one();
            th1.join().unwrap();
            th2.join().unwrap();
        }
    });
}

/// tokio loom `notify_waiters_poll_consistency`: if the first of two `notified()` futures was
/// completed by a `notify_waiters` on another thread, so was the second; with each polled or not
/// before the call.
#[test]
fn loom_notify_waiters_poll_consistency() {
    within(DEADLINE, || {
        for setting in [[false, false], [true, false], [false, true], [true, true]] {
            for _ in 0..ROUNDS {
                let notify = Arc::new(Notify::new());
                let mut notified = [mock(notify.notified()), mock(notify.notified())];
                for (polled, future) in setting.iter().zip(notified.iter_mut()) {
                    if *polled {
                        pending(future.poll());
                    }
                }
                let tx = notify.clone();
                let th = thread::spawn(move || tx.notify_waiters());
                let first = notified[0].poll();
                let second = notified[1].poll();
                assert!(first.is_pending() || second.is_ready(), "{setting:?}");
                th.join().unwrap();
            }
        }
    });
}

/// tokio loom `notify_waiters_poll_consistency_many`: as above, with 31 other waiters between
/// the two (tokio's wake list holds 32), polled in either order.
#[test]
fn loom_notify_waiters_poll_consistency_many() {
    within(DEADLINE, || {
        for order in [[0usize, 1], [1, 0]] {
            for _ in 0..ROUNDS / 4 {
                let notify = Arc::new(Notify::new());
                let mut futures: Vec<_> = (0..33).map(|_| mock(notify.notified())).collect();
                pending(futures[order[0]].poll());
                for future in &mut futures[2..] {
                    pending(future.poll());
                }
                pending(futures[order[1]].poll());
                let tx = notify.clone();
                let th = thread::spawn(move || tx.notify_waiters());
                let first = futures[0].poll();
                let second = futures[1].poll();
                assert!(first.is_pending() || second.is_ready(), "{order:?}");
                th.join().unwrap();
            }
        }
    });
}

/// tokio loom `notify_waiters_is_atomic`: once one of the 33 waiters has been completed by a
/// `notify_waiters` from another thread, every one of them was: a later `notify_one` goes to a
/// new waiter, not to an old one.
#[test]
fn loom_notify_waiters_is_atomic() {
    within(DEADLINE, || {
        for tested in [0usize, 32] {
            for _ in 0..ROUNDS / 4 {
                let notify = Arc::new(Notify::new());
                let mut futures: Vec<_> = (0..33).map(|_| mock(notify.notified())).collect();
                for future in &mut futures {
                    pending(future.poll());
                }
                let tx = notify.clone();
                let th = thread::spawn(move || tx.notify_waiters());
                let mut old = futures.remove(tested);
                block_on(std::future::poll_fn(|cx| old.future.as_mut().poll(cx)));
                let mut new = mock(notify.notified());
                pending(new.poll());
                notify.notify_one();
                ready(new.poll());
                th.join().unwrap();
            }
        }
    });
}

/// tokio loom `notify_waiters_sequential_notified_await`: one `notify_waiters` does not get
/// through two `notified()` futures made and awaited one after the other.
#[test]
fn loom_notify_waiters_sequential_notified_await() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS / 4 {
            let notify = Arc::new(Notify::new());
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let receiver = thread::spawn({
                let notify = notify.clone();
                move || {
                    let mut first = mock(notify.notified());
                    pending(first.poll());
                    let mut pile: Vec<_> = (0..33).map(|_| mock(notify.notified())).collect();
                    for future in &mut pile {
                        pending(future.poll());
                    }
                    ready_tx.send(()).unwrap();
                    block_on(std::future::poll_fn(|cx| first.future.as_mut().poll(cx)));
                    let mut second = mock(notify.notified());
                    pending(second.poll());
                    done_rx.recv().unwrap();
                    pending(second.poll());
                }
            });
            ready_rx.recv().unwrap();
            notify.notify_waiters();
            done_tx.send(()).unwrap();
            receiver.join().unwrap();
        }
    });
}

// ---- tokio/src/sync/tests/loom_semaphore_batch.rs -----------------------------------------------

/// tokio loom `basic_usage`: three threads through a semaphore of two: never more than two inside.
#[test]
fn loom_semaphore_basic_usage() {
    const NUM: usize = 2;
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let semaphore = Arc::new(Semaphore::new(NUM));
            let active = Arc::new(AtomicUsize::new(0));
            let actor = |semaphore: Arc<Semaphore>, active: Arc<AtomicUsize>| {
                block_on(async {
                    let _permit = semaphore.acquire().await.unwrap();
                    assert!(active.fetch_add(1, Ordering::SeqCst) < NUM);
                    pause_spinning(64); // where the loom model yields
                    assert!(active.fetch_sub(1, Ordering::SeqCst) <= NUM);
                })
            };
            let threads: Vec<_> = (0..NUM)
                .map(|_| {
                    let (semaphore, active) = (semaphore.clone(), active.clone());
                    thread::spawn(move || actor(semaphore, active))
                })
                .collect();
            actor(semaphore.clone(), active);
            for th in threads {
                th.join().unwrap();
            }
            assert_eq!(semaphore.available_permits(), NUM);
        }
    });
}

/// tokio loom `release`: two threads take turns with one permit.
#[test]
fn loom_semaphore_release() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let semaphore = Arc::new(Semaphore::new(1));
            let th = {
                let semaphore = semaphore.clone();
                thread::spawn(move || drop(block_on(semaphore.acquire()).unwrap()))
            };
            drop(block_on(semaphore.acquire()).unwrap());
            th.join().unwrap();
            assert_eq!(semaphore.available_permits(), 1);
        }
    });
}

/// tokio loom `basic_closing`: closing a semaphore that two threads are acquiring and releasing
/// ends them (their acquires fail), and the permit held during the close comes back.
#[test]
fn loom_semaphore_basic_closing() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let semaphore = Arc::new(Semaphore::new(1));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let semaphore = semaphore.clone();
                    thread::spawn(move || {
                        for _ in 0..2 {
                            let Ok(permit) = block_on(semaphore.acquire()) else { return };
                            drop(permit);
                        }
                    })
                })
                .collect();
            semaphore.close();
            for th in threads {
                th.join().unwrap();
            }
            assert_eq!(semaphore.available_permits(), 1);
        }
    });
}

/// tokio loom `concurrent_close`: three threads each acquire, release and close.
#[test]
fn loom_semaphore_concurrent_close() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let semaphore = Arc::new(Semaphore::new(1));
            let threads: Vec<_> = (0..3)
                .map(|_| {
                    let semaphore = semaphore.clone();
                    thread::spawn(move || {
                        if let Ok(permit) = block_on(semaphore.acquire()) {
                            drop(permit);
                        }
                        semaphore.close();
                    })
                })
                .collect();
            for th in threads {
                th.join().unwrap();
            }
            assert!(semaphore.is_closed());
            assert_eq!(semaphore.available_permits(), 1);
        }
    });
}

/// tokio loom `concurrent_cancel`: threads that poll two acquires once and drop them, racing a
/// release of 10 permits: no permit is lost.
#[test]
fn loom_semaphore_concurrent_cancel() {
    fn poll_and_cancel(semaphore: Arc<Semaphore>) {
        block_on(async {
            let mut first = Some(semaphore.acquire());
            let mut second = Some(semaphore.acquire());
            std::future::poll_fn(|cx| {
                if let Some(acquire) = first.take() {
                    let _ = std::pin::pin!(acquire).poll(cx);
                }
                if let Some(acquire) = second.take() {
                    let _ = std::pin::pin!(acquire).poll(cx);
                }
                Poll::Ready(())
            })
            .await
        })
    }
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let semaphore = Arc::new(Semaphore::new(0));
            let spawn = |semaphore: &Arc<Semaphore>| {
                let semaphore = semaphore.clone();
                thread::spawn(move || poll_and_cancel(semaphore))
            };
            let (t1, t2, t3) = (spawn(&semaphore), spawn(&semaphore), spawn(&semaphore));
            t1.join().unwrap();
            semaphore.add_permits(10);
            t2.join().unwrap();
            t3.join().unwrap();
            assert_eq!(semaphore.available_permits(), 10);
        }
    });
}

/// tokio loom `batch`: two threads take 4, 10 and 8 of 10 permits in turn: never more than 10
/// out, and all 10 back at the end.
#[test]
fn loom_semaphore_batch() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let semaphore = Arc::new(Semaphore::new(10));
            let active = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (semaphore, active) = (semaphore.clone(), active.clone());
                    thread::spawn(move || {
                        for n in [4, 10, 8] {
                            let permit = block_on(semaphore.acquire_many(n)).unwrap();
                            active.fetch_add(n, Ordering::SeqCst);
                            assert!(active.load(Ordering::SeqCst) <= 10);
                            pause_spinning(64); // where the loom model yields
                            active.fetch_sub(n, Ordering::SeqCst);
                            drop(permit);
                        }
                    })
                })
                .collect();
            for th in threads {
                th.join().unwrap();
            }
            assert_eq!(semaphore.available_permits(), 10);
        }
    });
}

/// tokio loom `release_during_acquire`: an `acquire_many(4)` waiting for 8 permits that come back
/// on another thread.
#[test]
fn loom_semaphore_release_during_acquire() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let semaphore = Arc::new(Semaphore::new(10));
            let eight = semaphore.clone().try_acquire_many_owned(8).expect("uncontended");
            let th = {
                let semaphore = semaphore.clone();
                thread::spawn(move || block_on(semaphore.acquire_many_owned(4)).unwrap())
            };
            drop(eight);
            let four = th.join().unwrap();
            assert_eq!(four.num_permits(), 4);
            drop(four);
            assert_eq!(semaphore.available_permits(), 10);
        }
    });
}

/// tokio loom `concurrent_permit_updates`: `add_permits(3)`, a `try_acquire` (its permit
/// forgotten, as tokio's batch semaphore keeps it) and `forget_permits(2)` on three threads.
#[test]
fn loom_semaphore_concurrent_permit_updates() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let semaphore = Arc::new(Semaphore::new(5));
            let t1 = {
                let semaphore = semaphore.clone();
                thread::spawn(move || semaphore.add_permits(3))
            };
            let t2 = {
                let semaphore = semaphore.clone();
                thread::spawn(move || semaphore.try_acquire().expect("a free permit").forget())
            };
            let t3 = {
                let semaphore = semaphore.clone();
                thread::spawn(move || semaphore.forget_permits(2))
            };
            t1.join().unwrap();
            t2.join().unwrap();
            assert_eq!(t3.join().unwrap(), 2);
            assert_eq!(semaphore.available_permits(), 5);
        }
    });
}

// ---- tokio/src/sync/tests/semaphore_batch.rs, tokio/tests/sync_semaphore_owned.rs ---------------

/// tokio `semaphore_batch::poll_acquire_one_zero_permits`: an acquire waiting on an empty
/// semaphore is woken by a release and completes.
#[test]
fn semaphore_poll_acquire_one_zero_permits() {
    let semaphore = Semaphore::new(0);
    assert_eq!(semaphore.available_permits(), 0);
    let mut acquire = mock(semaphore.acquire());
    pending(acquire.poll());
    semaphore.add_permits(1);
    assert!(acquire.is_woken());
    assert_eq!(ready(acquire.poll()).unwrap().num_permits(), 1);
}

/// tokio `semaphore_batch::close_semaphore_notifies_permit1`: closing wakes a waiting acquire,
/// which then fails.
#[test]
fn semaphore_close_notifies_permit1() {
    let semaphore = Semaphore::new(0);
    let mut acquire = mock(semaphore.acquire());
    pending(acquire.poll());
    semaphore.close();
    assert!(acquire.is_woken());
    assert!(ready(acquire.poll()).is_err());
}

/// tokio `semaphore_batch::forget_permits_basic`.
#[test]
fn semaphore_forget_permits_basic() {
    let semaphore = Semaphore::new(10);
    assert_eq!(semaphore.forget_permits(4), 4);
    assert_eq!(semaphore.available_permits(), 6);
    assert_eq!(semaphore.forget_permits(10), 6);
    assert_eq!(semaphore.available_permits(), 0);
}

/// tokio `sync_semaphore_owned::stress_test`: 1000 tasks through 5 owned permits on two workers,
/// then exactly 5 are free.
#[test]
fn semaphore_owned_stress_test() {
    within(DEADLINE, || {
        let rt = common::runtime(2);
        let semaphore = Arc::new(Semaphore::new(5));
        let handles: Vec<_> = (0..1000)
            .map(|_| {
                let semaphore = semaphore.clone();
                rt.spawn(async move {
                    let _permit = semaphore.acquire_owned().await.unwrap();
                    klaw::cancel::checkpoint().await;
                })
            })
            .collect();
        common::join_all(&rt, handles);
        let _held: Vec<_> = (0..5).map(|_| semaphore.try_acquire_owned().unwrap()).collect();
        assert!(semaphore.try_acquire_owned().is_err());
    });
}

// ---- tokio/src/sync/tests/loom_rwlock.rs, tokio/tests/sync_rwlock.rs ----------------------------

/// tokio loom `concurrent_write`: a `write` and a `write_owned` on two threads: both changes are
/// kept.
#[test]
fn loom_rwlock_concurrent_write() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let lock = Arc::new(RwLock::new(0u32));
            let l1 = lock.clone();
            let t1 = thread::spawn(move || block_on(async { *l1.write().await += 5 }));
            let l2 = lock.clone();
            let t2 = thread::spawn(move || block_on(async { *l2.write_owned().await += 5 }));
            t1.join().unwrap();
            t2.join().unwrap();
            assert_eq!(*block_on(lock.read()), 10);
        }
    });
}

/// tokio loom `concurrent_read_write`: two writers and two readers on four threads: a reader sees
/// 0, 5 or 10, never a torn value, and the end value is 10.
#[test]
fn loom_rwlock_concurrent_read_write() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let lock = Arc::new(RwLock::new(0u32));
            let l1 = lock.clone();
            let t1 = thread::spawn(move || block_on(async { *l1.write().await += 5 }));
            let l2 = lock.clone();
            let t2 = thread::spawn(move || block_on(async { *l2.write_owned().await += 5 }));
            let l3 = lock.clone();
            let t3 = thread::spawn(move || {
                let seen = *block_on(l3.read());
                assert!(matches!(seen, 0 | 5 | 10), "read {seen}");
            });
            {
                let seen = *block_on(lock.read_owned());
                assert!(matches!(seen, 0 | 5 | 10), "read {seen}");
            }
            t1.join().unwrap();
            t2.join().unwrap();
            t3.join().unwrap();
            assert_eq!(*block_on(lock.read()), 10);
        }
    });
}

/// tokio loom `downgrade`: a write downgraded while another thread waits to write: the
/// downgraded guard reads the old value, and the waiting write gets in once it is dropped.
#[test]
fn loom_rwlock_downgrade() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let lock = Arc::new(RwLock::new(1));
            let write = block_on(lock.write());
            let other = lock.clone();
            let th = thread::spawn(move || *block_on(other.write()) = 2);
            let read = RwLockWriteGuard::downgrade(write);
            assert_eq!(*read, 1);
            drop(read);
            th.join().unwrap();
            assert_eq!(*block_on(lock.read()), 2);
        }
    });
}

/// tokio `sync_rwlock::read_uncontested` and `write_uncontested`.
#[test]
fn rwlock_read_and_write_uncontested() {
    let lock = RwLock::new(100);
    assert_eq!(*block_on(lock.read()), 100);
    let mut guard = block_on(lock.write());
    *guard += 50;
    assert_eq!(*guard, 150);
}

// ---- tokio-util/src/sync/tests/loom_cancellation_token.rs ---------------------------------------

/// tokio-util loom `cancel_with_child`: a token and its child awaited on two threads, the token
/// cancelled on a third: both waiters get the reason.
#[test]
fn loom_cancel_with_child() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let token = Token::new();
            let (token1, token2, child) = (token.clone(), token.clone(), token.child());
            let th1 = thread::spawn(move || block_on(token1.cancelled()));
            let th2 = thread::spawn(move || token2.cancel("stop"));
            let th3 = thread::spawn(move || block_on(child.cancelled()));
            assert_eq!(th1.join().unwrap(), CancelReason::user("stop"));
            assert!(th2.join().unwrap());
            assert_eq!(th3.join().unwrap(), CancelReason::user("stop"));
        }
    });
}

/// tokio-util loom `drop_token_no_child` and `drop_token_with_children`: clones, and a parent
/// and its children, dropped on three threads at once; a grandchild that outlives them all still
/// hears nothing, and can still be cancelled on its own.
#[test]
fn loom_drop_tokens_concurrently() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let token = Token::new();
            let (a, b) = (token.clone(), token.clone());
            let ths = [thread::spawn(move || drop(a)), thread::spawn(move || drop(b))];
            drop(token);
            for th in ths {
                th.join().unwrap();
            }

            let parent = Token::new();
            let (child1, child2) = (parent.child(), parent.child());
            let grandchild = child2.child();
            let ths = [
                thread::spawn(move || drop(parent)),
                thread::spawn(move || drop(child1)),
                thread::spawn(move || drop(child2)),
            ];
            for th in ths {
                th.join().unwrap();
            }
            assert!(!grandchild.is_cancelled());
            assert!(grandchild.cancel("alone"));
            assert_eq!(grandchild.reason(), Some(CancelReason::user("alone")));
        }
    });
}

/// tokio-util loom `drop_and_cancel_token`: the parent dropped on one thread, cancelled through a
/// clone on another, its child dropped on a third: a clone of the child kept here hears the
/// cancellation.
#[test]
fn loom_drop_and_cancel_token() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let token1 = Token::new();
            let token2 = token1.clone();
            let child = token1.child();
            let observer = child.clone();
            let th1 = thread::spawn(move || drop(token1));
            let th2 = thread::spawn(move || token2.cancel("parent"));
            let th3 = thread::spawn(move || drop(child));
            th1.join().unwrap();
            th2.join().unwrap();
            th3.join().unwrap();
            assert_eq!(observer.reason(), Some(CancelReason::user("parent")));
            assert_eq!(block_on(observer.cancelled()), CancelReason::user("parent"));
        }
    });
}

/// tokio-util loom `cancel_parent_and_child`: the parent dropped, cancelled, and its child
/// cancelled, on three threads: the parent keeps its own reason, the child has one of the two,
/// and a waiter on the child sees the same one.
#[test]
fn loom_cancel_parent_and_child() {
    within(DEADLINE, || {
        for _ in 0..ROUNDS {
            let token1 = Token::new();
            let token2 = token1.clone();
            let parent = token1.clone();
            let child = token1.child();
            let observer = child.clone();
            let waiter = {
                let observer = child.clone();
                thread::spawn(move || block_on(observer.cancelled()))
            };
            let th1 = thread::spawn(move || drop(token1));
            let th2 = thread::spawn(move || token2.cancel("parent"));
            let th3 = thread::spawn(move || child.cancel("child"));
            th1.join().unwrap();
            th2.join().unwrap();
            th3.join().unwrap();
            assert_eq!(parent.reason(), Some(CancelReason::user("parent")));
            let reason = observer.reason().expect("the child was cancelled");
            assert!(
                reason == CancelReason::user("parent") || reason == CancelReason::user("child"),
                "{reason:?}"
            );
            assert_eq!(waiter.join().unwrap(), reason);
        }
    });
}
