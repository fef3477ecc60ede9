//! More of the book's promises that no other test pins down: the Cancellation, Scopes, Channels,
//! Runtime, Time and "Coming from tokio" chapters. Each test's doc comment quotes the book's
//! sentence and names its chapter; each runs under a deadline, so a hang fails it.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};

use common::{
    DropCount, Flag, in_child_process, in_task, ms, paused, runtime, secs, until, with_deadline,
    yield_once,
};
use futures_util::future::join;
use klaw::TaskError;
use klaw::cancel::{Region, shield};
use klaw::channel::{TryRecvError, TrySendError};

// ---- Shared pieces -----------------------------------------------------------------------------

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A future polled by hand with a waker of its own that counts its wake-ups.
struct ByHand<F: Future> {
    future: Pin<Box<F>>,
    wakes: Arc<Wakes>,
    waker: Waker,
}

impl<F: Future> ByHand<F> {
    fn new(future: F) -> Self {
        let wakes = Arc::new(Wakes::default());
        Self { future: Box::pin(future), waker: Waker::from(wakes.clone()), wakes }
    }
    fn poll(&mut self) -> Poll<F::Output> {
        self.future.as_mut().poll(&mut Context::from_waker(&self.waker))
    }
    fn woken(&self) -> usize {
        self.wakes.0.load(SeqCst)
    }
}

impl<F: Future + std::fmt::Debug> ByHand<F> {
    /// Polls until the future waits in its channel's line (its `Debug` says so): a receive that
    /// finds no message yields to its task once before it joins the line.
    fn poll_into_line(&mut self) {
        for _ in 0..64 {
            assert!(self.poll().is_pending(), "ready, expected it to wait");
            if format!("{:?}", self.future).contains("waiting: true") {
                return;
            }
        }
        panic!("{:?} never joined its channel's line", self.future);
    }
}

// ---- Cancellation ------------------------------------------------------------------------------

/// Book (Cancellation): "a completion that comes after a region's own cancellation does not win
/// ... a message a `recv` took in the poll the cancellation overtook is dropped with it". The
/// message is neither handed out nor put back in the channel: it is dropped, once.
#[test]
fn a_message_a_recv_took_in_the_poll_its_regions_cancel_overtook_is_dropped_with_it() {
    with_deadline(|| {
        let drops = DropCount::default();
        let (tx, rx) = klaw::channel::bounded(4);
        assert!(tx.try_send(drops.value()).is_ok());
        let outcome = klaw::runtime::block_on(async {
            let region = Region::new();
            let token = region.token();
            region
                .run(async {
                    let message = rx.recv().await;
                    token.cancel("stop"); // lands in the poll in which the body completes
                    message
                })
                .await
        });
        assert!(matches!(outcome, Err(ref reason) if *reason == klaw::CancelReason::user("stop")));
        drop(outcome);
        assert_eq!(drops.get(), 1, "the message was dropped with the region's completion");
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Empty), "and not put back");
    });
}

/// Book (Cancellation, Shields): "Code beside a shield that awaits only other libraries'
/// futures (tokio's I/O, say), or klaw's locks and semaphores (which take no part in the
/// cooperative budget), runs on until the shield ends". The shield here ends only once the
/// branch beside it has taken a lock and a permit five more times after the cancel.
#[test]
fn klaws_locks_and_semaphores_beside_a_held_shield_run_on_until_it_ends() {
    in_task(|| async {
        let mutex = klaw::sync::Mutex::new(0u32);
        let semaphore = klaw::sync::Semaphore::new(1);
        let after_cancel = AtomicUsize::new(0);
        let cancelled = Flag::default();
        let region = Region::new();
        let token = region.token();
        let outcome = region
            .run(join(
                async {
                    loop {
                        *mutex.lock().await += 1;
                        drop(semaphore.acquire().await);
                        if cancelled.is_set() {
                            after_cancel.fetch_add(1, SeqCst);
                        }
                        yield_once().await; // a foreign await: lets the shield's branch run
                    }
                },
                shield(async {
                    token.cancel("stop");
                    cancelled.set();
                    until(|| after_cancel.load(SeqCst) >= 5).await;
                }),
            ))
            .await;
        assert_eq!(outcome.map(drop), Err(klaw::CancelReason::user("stop")));
        assert!(after_cancel.load(SeqCst) >= 5);
    });
}

// ---- Scopes ------------------------------------------------------------------------------------

/// Book (Scopes, A concurrency limit): "`spawn_local` children are not counted: the scope polls
/// them itself". Under `limit = 1`, a parallel child that holds the only slot until a local
/// child has run, and a local child that waits for a parallel one, both end: a counted local
/// child would wait for the slot the other holds, for ever.
#[test]
fn spawn_local_children_are_not_counted_against_the_limit() {
    in_task(|| async {
        let result: Result<(), klaw::Error> = klaw::scope!(limit = 1, |s| {
            let local_ran = Flag::default();
            let seen = local_ran.clone();
            let holder = s.spawn(async move { until(|| seen.is_set()).await });
            s.spawn_local(async move { local_ran.set() });
            holder.await?;

            let parallel_ran = Flag::default();
            let seen = parallel_ran.clone();
            let waiter = s.spawn_local(async move { until(|| seen.is_set()).await });
            s.spawn(async move { parallel_ran.set() });
            waiter.await?;
            Ok(())
        });
        result.unwrap();
    });
}

/// Book (Scopes, A concurrency limit): "`limit` takes a literal (checked at compile time:
/// `limit = 0` is an error) or any `usize` expression (`limit = parallel * 2`; 0 panics)".
#[test]
fn a_limit_expression_of_zero_panics_saying_why() {
    with_deadline(|| {
        let rt = runtime(1);
        let outcome = rt.block_on(rt.spawn(async {
            let parallel = std::hint::black_box(0usize);
            let result: Result<(), klaw::Error> = klaw::scope!(limit = parallel * 2, |_s| Ok(()));
            result
        }));
        match outcome {
            Err(TaskError::Panicked(message)) => {
                assert!(message.contains("at least 1"), "{message}");
            }
            other => panic!("a limit of 0 did not panic: {other:?}"),
        }
    });
}

// ---- Channels ----------------------------------------------------------------------------------

/// Book (Channels, Who waits, and how fast): "Waiting receivers are woken in the order they
/// started waiting, one per message".
#[test]
fn waiting_receivers_are_woken_in_the_order_they_started_waiting_one_per_message() {
    with_deadline(|| {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let (rx2, rx3) = (rx.clone(), rx.clone());
        let mut first = ByHand::new(rx.recv());
        let mut second = ByHand::new(rx2.recv());
        let mut third = ByHand::new(rx3.recv());
        first.poll_into_line();
        second.poll_into_line();
        third.poll_into_line();
        let before = [first.woken(), second.woken(), third.woken()];
        let woken = |f: &ByHand<_>, s: &ByHand<_>, t: &ByHand<_>| {
            [f.woken() - before[0], s.woken() - before[1], t.woken() - before[2]]
        };

        tx.try_send(1).unwrap();
        assert_eq!(woken(&first, &second, &third), [1, 0, 0], "the first in line, alone");
        assert_eq!(first.poll(), Poll::Ready(Ok(1)));
        tx.try_send(2).unwrap();
        assert_eq!(woken(&first, &second, &third), [1, 1, 0], "then the second");
        assert_eq!(second.poll(), Poll::Ready(Ok(2)));
        tx.try_send(3).unwrap();
        assert_eq!(woken(&first, &second, &third), [1, 1, 1], "then the third");
        assert_eq!(third.poll(), Poll::Ready(Ok(3)));
    });
}

// ---- Runtime -----------------------------------------------------------------------------------

/// Book (Runtime, Workers): the settings table, "blocking threads | `.max_blocking_threads(n)`
/// | | 512".
#[test]
fn the_blocking_pool_is_bounded_at_512_threads_by_default() {
    with_deadline(|| {
        let rt = klaw::Runtime::builder().workers(1).build().unwrap();
        assert_eq!(rt.config().max_blocking_threads, 512);
    });
}

/// Book (Runtime, Fairness): "a task's handle (and a scope's `child_set`) giving an ended task's
/// result ... take one unit when they complete; once the budget is spent, the next one yields".
/// A loop over the handles of a thousand ended tasks lets a task queued behind it run.
#[test]
fn awaiting_the_handles_of_ended_tasks_spends_the_budget_and_lets_a_sibling_run() {
    with_deadline(|| {
        let rt = runtime(1);
        let sibling_ran_meanwhile = rt
            .block_on(rt.spawn(async {
                let handle = klaw::Handle::current().unwrap();
                let ended = Arc::new(AtomicUsize::new(0));
                let children: Vec<_> = (0..1000)
                    .map(|_| {
                        let ended = ended.clone();
                        handle.spawn(async move {
                            ended.fetch_add(1, SeqCst);
                        })
                    })
                    .collect();
                until(|| ended.load(SeqCst) == 1000).await;
                let sibling = Flag::default();
                let ran = sibling.clone();
                let _queued = handle.spawn(async move { ran.set() });
                for child in children {
                    child.await.unwrap();
                }
                sibling.is_set()
            }))
            .unwrap();
        assert!(sibling_ran_meanwhile, "the loop over ready handles never yielded");
    });
}

/// Book (Runtime, Fairness): "(the `try_` methods never wait, and take none)": a thousand
/// `try_send`/`try_recv` rounds leave the whole budget, so 128 `consume_budget` calls after
/// them still complete in the same poll.
#[test]
fn the_try_methods_take_no_budget() {
    let ((), polls) = common::polls_in_a_task(async {
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let (news, mut reader) = klaw::channel::broadcast::channel::<u32>(1);
        for n in 0..1000 {
            tx.try_send(n).unwrap();
            assert_eq!(rx.try_recv(), Ok(n));
            news.send(n).unwrap();
            assert_eq!(reader.try_recv(), Ok(n));
        }
        for _ in 0..128 {
            klaw::task::consume_budget().await;
        }
    });
    assert_eq!(polls, 1, "the try_ methods spent some of the budget");
}

/// Book (Runtime, Ctrl-C): "`klaw::signal::CtrlC::install()` starts listening at once, so a
/// Ctrl-C that comes before the future is first polled is not lost to the default action (which
/// ends the process)". Run in a child process, since it interrupts its own process.
#[cfg(unix)]
#[test]
fn a_ctrl_c_before_the_installed_future_is_first_polled_is_not_lost() {
    in_child_process("child_ctrl_c_before_the_first_poll", &[], secs(20));
}

#[cfg(unix)]
#[klaw::test(workers = 1, timeout = "10s")]
#[ignore = "run in a child process by a_ctrl_c_before_the_installed_future_is_first_polled_is_not_lost"]
async fn child_ctrl_c_before_the_first_poll() {
    let ctrl_c = klaw::signal::CtrlC::install().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Time for the signal to arrive: the default action would end the process meanwhile.
    klaw::time::sleep(ms(100)).await;
    let heard = klaw::cancel::fail_after(secs(5), ctrl_c).await;
    assert!(matches!(heard, Ok(Ok(()))), "{heard:?}");
}

/// Book (Runtime, Seeing the tree): "When a `#[klaw::test(timeout = "..")]` expires, the test
/// prints this tree with its failure".
#[test]
fn an_expired_test_prints_the_runtimes_tree_with_its_failure() {
    let (passed, text) = common::child_test_outcome("child_stuck_on_a_channel", secs(20))
        .expect("the stuck test hung");
    assert!(!passed, "the stuck test passed:\n{text}");
    assert!(text.contains("did not finish within its timeout"), "{text}");
    assert!(text.contains("scope `stuck`"), "the tree is missing:\n{text}");
    assert!(text.contains("task `waiter`"), "the tree is missing:\n{text}");
}

#[klaw::test(workers = 1, timeout = "200ms")]
#[ignore = "run in a child process by an_expired_test_prints_the_runtimes_tree_with_its_failure"]
async fn child_stuck_on_a_channel() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let result: Result<(), klaw::Error> = klaw::scope!(name = "stuck", |s| {
        s.spawn(klaw::Task::new(async move { while rx.recv().await.is_ok() {} }).name("waiter"));
        Ok(())
    });
    drop(tx);
    result.unwrap();
}

// ---- Time --------------------------------------------------------------------------------------

/// Book (Time, When the clock moves): "Once the runtime has shut down nothing moves its clock, so
/// every timer still waiting on it ... fires then, ... and a later one is due at once: nothing
/// waits forever for a time that can no longer come". Here a sleep of a dropped paused runtime,
/// reset an hour later, is awaited under another runtime.
#[test]
fn a_timer_of_a_shut_down_runtime_reset_to_a_later_time_is_due_at_once() {
    with_deadline(|| {
        let rt = paused();
        #[allow(clippy::async_yields_async, reason = "the sleep itself is what the block returns")]
        let mut timer = rt.block_on(async { klaw::time::sleep(secs(60)) });
        drop(rt);
        let later = timer.deadline() + secs(3600);
        timer.reset(later);
        let other = runtime(1);
        let fired = other
            .block_on(async { klaw::cancel::move_on_after(secs(5), &mut timer).await.is_some() });
        assert!(fired, "a timer reset past a shut-down runtime's frozen clock never fired");
    });
}

/// Book (Time, Reading and moving the clock): "A timer takes its clock when it is made ... A sleep
/// made before it is passed to that `block_on` has already taken its clock": an hour's sleep made
/// inside a paused runtime's `block_on` and awaited by the free `klaw::runtime::block_on` on
/// another thread is an hour of the paused runtime's virtual clock, which jumps.
#[test]
fn a_sleep_made_on_a_paused_runtime_keeps_its_virtual_clock_under_the_free_block_on() {
    with_deadline(|| {
        let rt = paused();
        let (start, timer) =
            rt.block_on(async { (klaw::time::now(), klaw::time::sleep(secs(3600))) });
        std::thread::spawn(move || klaw::runtime::block_on(timer)).join().unwrap();
        assert!(rt.block_on(async { klaw::time::now() }) - start >= secs(3600));
    });
}

// ---- Coming from tokio -------------------------------------------------------------------------

/// Book (Coming from tokio, `mpsc`): "`send_blocking(v)`: **never panics for that**; it blocks
/// the calling thread (in a task, its worker) until there is a place".
#[test]
fn send_blocking_in_a_task_does_not_panic_and_waits_for_a_place() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let consumer = std::thread::spawn(move || {
            std::thread::sleep(ms(10));
            (rx.recv_blocking(), rx.recv_blocking())
        });
        tx.send_blocking(1).unwrap();
        tx.send_blocking(2).unwrap(); // full: blocks this worker until the thread receives
        assert_eq!(consumer.join().unwrap(), (Ok(1), Ok(2)));
    });
}

/// Book (Coming from tokio, `mpsc`): "the synchronous form is `try_send(v)`, which on an
/// unbounded channel fails only with `Closed`".
#[test]
fn try_send_on_an_unbounded_channel_fails_only_when_closed() {
    with_deadline(|| {
        let (tx, rx) = klaw::channel::unbounded::<u32>();
        for n in 0..100_000 {
            assert_eq!(tx.try_send(n), Ok(()));
        }
        drop(rx);
        assert_eq!(tx.try_send(7), Err(TrySendError::Closed(7)));
    });
}

/// Book (Coming from tokio, `watch`): "the receiver is itself a `Stream` of the values **after
/// each change**; call `mark_changed()` first to get the current one too".
#[test]
fn a_watch_stream_after_mark_changed_yields_the_current_value_first() {
    with_deadline(|| {
        let (tx, mut rx) = klaw::channel::watch::channel(5u32);
        rx.mark_changed();
        let mut next = ByHand::new(futures_lite::StreamExt::next(&mut rx));
        assert_eq!(next.poll(), Poll::Ready(Some(5)), "the current value, first");
        drop(next);
        let mut next = ByHand::new(futures_lite::StreamExt::next(&mut rx));
        assert!(next.poll().is_pending(), "then only changes");
        tx.send(6).unwrap();
        assert_eq!(next.woken(), 1);
        assert_eq!(next.poll(), Poll::Ready(Some(6)));
    });
}
