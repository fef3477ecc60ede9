//! Gaps in klaw's `select!` tests, found by reading peers' own suites: tokio's
//! `tokio/tests/macros_select.rs` (commit `ea91b33ca57ff0581b38e735cc108f831bccbdaa`) and
//! kotlinx.coroutines' `kotlinx-coroutines-core/common/test/selects/` (`SelectBufferedChannelTest`,
//! `SelectRendezvousChannelTest`, `SelectTimeoutTest`, `SelectMutexTest`, `SelectLoopTest`,
//! `SelectDeferredTest`). Only the cases `select.rs`, `ported_tokio_select.rs`,
//! `time_and_select_edges.rs`, `macro_runtime_edges.rs`, `cooperative.rs`, `virtual_time.rs` and
//! `channel_permit_edges.rs` do not check yet. Each test names the peer test it translates and
//! the promise it checks.
//!
//! Mapping: Kotlin's `select { ch.onReceive {..} }` is a `recv(rx) -> msg` arm (a `Result`, so
//! its `onReceiveCatching` too); `onSend` a `send(tx, v) -> res` arm; `onTimeout(ms)` an
//! `after(..)` arm (a negative timeout an `at(..)` in the past); `default {}` klaw's `default`;
//! `mutex.onLock` a `mutex.lock() -> guard` future arm; `deferred.onAwait` / `job.onJoin` a
//! task handle as a future arm. Kotlin's rendezvous channels have no klaw counterpart
//! (`bounded(0)` panics): the ports use `bounded(1)`. Kotlin's `expect(n)` ordering is checked
//! here with a paused clock (`advance(Duration::ZERO)`: every other task waits) and with spawned
//! tasks that do two things in one poll, as `time_and_select_edges.rs` does.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use common::{Fuse, secs};
use klaw::channel::{Receiver, RecvError};
use klaw::time::{advance, now, sleep};
use klaw::{Handle, TaskError};

// ---- The cooperative budget and `default` ---------------------------------------------------

/// tokio `select_is_budget_aware` with Kotlin `SelectBufferedChannelTest.
/// testSelectReceiveSuccessWithDefault` ("a ready receive beats `default`"). Promise: `default`
/// "runs if no other arm is ready at once", and with the budget spent `select!` yields "rather
/// than take its `default` arm while its channel arms have values waiting" (expand.rs,
/// `coop::__poll_budget_available`). Here the budget is not spent when the select starts: the
/// first (biased) arm spends it, draining another channel, and stays pending. The `recv` arm
/// below it then finds its message but yields for the budget, and the select must yield too,
/// not take `default`. What would break it: the budget checked only before the first arm (as it
/// was: the select took `default` with the message waiting), not again before `default`.
#[klaw::test(workers = 1, timeout = "10s")]
async fn an_arm_that_spends_the_budget_does_not_make_select_take_default_over_a_message() {
    let (busy_tx, busy_rx) = klaw::channel::unbounded::<u32>();
    for n in 0..1000 {
        busy_tx.try_send(n).unwrap();
    }
    let (tx, rx) = klaw::channel::bounded::<&str>(1);
    tx.try_send("waiting").unwrap();
    let mut drained = 0u32;
    let picked = klaw::select! {
        biased;
        async {
            while busy_rx.recv().await.is_ok() {
                drained += 1;
            }
        } -> () => "busy closed",
        recv(rx) -> msg => msg.unwrap(),
        default => "default",
    };
    assert_eq!(
        picked, "waiting",
        "select! took `{picked}` while a message waited (the first arm drained {drained} messages)"
    );
    assert!(rx.is_empty());
    drop(busy_tx);
}

/// Kotlin `SelectBufferedChannelTest.testSelectReceiveDispatchNonSuspending` and
/// `testSelectReceiveSuccessWithDefault`: a select whose `recv` arm is ready completes in the
/// poll that finds it, in each form of the expansion (one arm, several, one arm and `default`),
/// without a yield to the executor. Promise: a ready arm wins at once (the two-pass wait and the
/// receive's yield-before-waiting are for empty channels only).
#[test]
fn a_select_with_a_ready_recv_arm_completes_without_yielding() {
    let (got, polls) = common::polls_in_a_task(async {
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let (_idle_tx, idle) = klaw::channel::bounded::<u32>(1);
        tx.try_send(42).unwrap();
        let one = klaw::select! {
            recv(rx) -> msg => msg,
        };
        tx.try_send(43).unwrap();
        let several = klaw::select! {
            recv(idle) -> msg => msg,
            recv(rx) -> msg => msg,
            after(secs(60)) => Err(RecvError::Closed),
        };
        tx.try_send(44).unwrap();
        let with_default = klaw::select! {
            recv(rx) -> msg => msg.ok(),
            default => None,
        };
        (one, several, with_default)
    });
    assert_eq!(got, (Ok(42), Ok(43), Some(44)));
    assert_eq!(polls, 1, "a select with a ready arm yielded");
}

// ---- Losing arms leave nothing behind -------------------------------------------------------

/// No peer test for the select form (Kotlin's `testSelectAtomicFailure` is the nearest: a select
/// resumed by one channel is not changed by another); the `recv` twin of
/// `time_and_select_edges::a_send_arm_given_a_place_that_loses_passes_the_place_on`. Promise: a
/// `recv` arm that loses loses no message, and "the wake-up a waiting `recv` was given passes to
/// the next waiting receiver when it is dropped" (channels.md). The select waits in line on two
/// channels, a plain receive waits behind it; in one poll of one task, a message wakes the
/// select's `recv` arm and the (biased) arm above it becomes ready. The arm above wins, and the
/// message must reach the plain receive, which would otherwise wait for ever.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_recv_arm_woken_for_a_message_that_loses_passes_the_message_on() {
    let handle = Handle::current().unwrap();
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let (go_tx, go_rx) = klaw::channel::bounded::<()>(1);
    let selecting = handle.spawn({
        let rx = rx.clone();
        async move {
            klaw::select! {
                biased;
                recv(go_rx) -> go => { go.unwrap(); "go" }
                recv(rx) -> msg => { msg.unwrap(); "message" }
            }
        }
    });
    advance(Duration::ZERO).await; // the select waits in line on both channels
    let plain = handle.spawn({
        let rx = rx.clone();
        async move { rx.recv().await }
    });
    advance(Duration::ZERO).await; // the plain receive waits behind the select's arm
    let freer = handle.spawn(async move {
        tx.try_send(7).unwrap(); // wakes the first in line: the select's `recv(rx)` arm
        go_tx.try_send(()).unwrap(); // and readies the arm above it, in the same poll
        (tx, go_tx)
    });
    let _senders = freer.await.unwrap();
    assert_eq!(selecting.await, Ok("go"));
    let plain = klaw::cancel::move_on_after(secs(60), plain).await;
    assert_eq!(plain, Some(Ok(Ok(7))), "the message woke the losing arm and stopped there");
    assert!(rx.is_empty());
}

/// Kotlin `SelectBufferedChannelTest.testSelectReceiveResourceCleanup`,
/// `testSelectSendResourceCleanup` and `testSelectReceiveWaitWithDefault` (after a select whose
/// receive lost to `default`, a send fills the buffer and the next one must wait: no receiver is
/// left behind). A thousand rounds of each, in the one-arm form (its arm polled as a plain
/// future, which may join the line) and the two-arm form (a look only). Promise: a losing arm's
/// future is dropped and keeps no place in line, so a plain receive or send waiting afterwards
/// is the one a message or a freed place wakes; a losing `send` never evaluates its value.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_thousand_arms_that_lose_to_default_leave_nobody_in_line() {
    let handle = Handle::current().unwrap();
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let (_other_tx, other) = klaw::channel::bounded::<u32>(1);
    for round in 0..1000 {
        let one = klaw::select! {
            recv(rx) -> msg => panic!("round {round}: an empty channel gave {msg:?}"),
            default => round,
        };
        let two = klaw::select! {
            recv(rx) -> msg => panic!("round {round}: an empty channel gave {msg:?}"),
            recv(other) -> msg => panic!("round {round}: an empty channel gave {msg:?}"),
            default => round,
        };
        assert_eq!((one, two), (round, round));
    }
    // testSelectReceiveWaitWithDefault: nobody took the first message; the second finds no room.
    tx.try_send(1).unwrap();
    assert!(tx.try_send(2).unwrap_err().is_full(), "a receiver left behind took a message");
    assert_eq!(rx.try_recv(), Ok(1));
    let plain = handle.spawn({
        let rx = rx.clone();
        async move { rx.recv().await }
    });
    advance(Duration::ZERO).await; // the plain receive waits in line
    tx.try_send(3).unwrap();
    let plain = klaw::cancel::move_on_after(secs(60), plain).await;
    assert_eq!(plain, Some(Ok(Ok(3))), "a stale waiter left by a losing arm took the wake-up");

    // The send side: the channel is full, every send arm loses to `default`.
    tx.try_send(10).unwrap();
    let evaluated = AtomicUsize::new(0);
    let value = || {
        evaluated.fetch_add(1, Ordering::SeqCst);
        99
    };
    for round in 0..1000 {
        let one = klaw::select! {
            send(tx, value()) -> res => panic!("round {round}: a full channel took a send: {res:?}"),
            default => round,
        };
        let two = klaw::select! {
            send(tx, value()) -> res => panic!("round {round}: a full channel took a send: {res:?}"),
            recv(other) -> msg => panic!("round {round}: an empty channel gave {msg:?}"),
            default => round,
        };
        assert_eq!((one, two), (round, round));
    }
    assert_eq!(evaluated.load(Ordering::SeqCst), 0, "a losing send arm evaluated its value");
    let plain_send = handle.spawn({
        let tx = tx.clone();
        async move { tx.send(11).await }
    });
    advance(Duration::ZERO).await; // the plain send waits in line for a place
    assert_eq!(rx.try_recv(), Ok(10));
    let plain_send = klaw::cancel::move_on_after(secs(60), plain_send).await;
    assert_eq!(plain_send, Some(Ok(Ok(()))), "the freed place went to a stale send arm");
    assert_eq!(rx.try_recv(), Ok(11));
    assert!(rx.is_empty());
}

/// Kotlin `SelectMutexTest.testSelectLockWait` (a select waiting on a locked mutex gets it when
/// it is unlocked), and its losing twin. Promise: a losing arm's future is dropped and loses
/// nothing: `Mutex::lock`'s cancel safety says a dropped `lock()` that had been handed the mutex
/// passes it on to the next waiting `lock()`, and through `select!` that must hold too.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_lock_arm_gets_the_mutex_when_unlocked_and_one_that_loses_passes_it_on() {
    let handle = Handle::current().unwrap();
    let mutex = Arc::new(klaw::sync::Mutex::new(0u32));

    // Winning: the select waits for the mutex, unlocked five seconds later.
    let held = mutex.try_lock_owned().expect("the mutex is free");
    let start = now();
    let unlocker = handle.spawn(async move {
        sleep(secs(5)).await;
        drop(held);
    });
    let picked = klaw::select! {
        mutex.lock() -> mut guard => {
            *guard += 1;
            *guard
        },
        after(secs(60)) => 0,
    };
    assert_eq!((picked, now() - start), (1, secs(5)));
    unlocker.await.unwrap();

    // Losing: the unlock hands the mutex to the select's `lock()` arm, and in the same poll the
    // (biased) arm above it becomes ready and wins.
    let held = mutex.try_lock_owned().expect("the select's guard is gone");
    let (go_tx, go_rx) = klaw::channel::bounded::<()>(1);
    let selecting = handle.spawn({
        let mutex = mutex.clone();
        async move {
            klaw::select! {
                biased;
                recv(go_rx) -> go => { go.unwrap(); "go" }
                mutex.lock() -> mut guard => { *guard += 100; "locked" }
            }
        }
    });
    advance(Duration::ZERO).await; // the select's `lock()` waits first in line
    let plain = handle.spawn({
        let mutex = mutex.clone();
        async move {
            let mut guard = mutex.lock().await;
            *guard += 10;
            *guard
        }
    });
    advance(Duration::ZERO).await; // the plain `lock()` waits behind it
    let freer = handle.spawn(async move {
        drop(held); // hands the mutex to the select's arm
        go_tx.try_send(()).unwrap();
        go_tx
    });
    let _go_tx = freer.await.unwrap();
    assert_eq!(selecting.await, Ok("go"));
    let plain = klaw::cancel::move_on_after(secs(60), plain).await;
    assert_eq!(plain, Some(Ok(11)), "the mutex handed to the losing arm was not passed on");
    assert_eq!(*mutex.try_lock().expect("free at the end"), 11);
}

/// tokio `move_uncompleted_futures` / Kotlin `SelectMutexTest.testSelectLock`, for the winner:
/// the winning arm's own future (here holding a mutex guard it does not return) is dropped
/// with the others before the body runs, so the body can take the lock. Promise: every arm's
/// future is dropped before the winning body runs (book: "A losing arm consumes nothing";
/// expand.rs: "all dropped before the winner's body runs").
#[klaw::test(workers = 1, timeout = "10s")]
async fn the_winning_arms_own_future_is_dropped_before_its_body_runs() {
    let mutex = klaw::sync::Mutex::new(5u32);
    let got = klaw::select! {
        biased;
        {
            let guard = mutex.try_lock().expect("the mutex is free");
            std::future::poll_fn(move |_| {
                let _still_held = &guard;
                Poll::Ready(1u32)
            })
        } -> one => mutex.try_lock().map(|guard| *guard + one),
        std::future::pending::<()>() -> () => None,
    };
    assert_eq!(got, Some(6), "the winning future still held its guard in the body");
}

// ---- Loops, nesting, borrowing --------------------------------------------------------------

/// Kotlin `SelectLoopTest.testChannelSelectLoop` (issue 1130: a select loop over a channel and
/// the job that sends on it, the job failing right after its send) and
/// `SelectDeferredTest.testSelectFailure` (a failed task's arm gives its failure). Promise: a
/// recv arm that loses to the task's arm loses no message, the handle's arm gives the typed
/// `Failed`, and `Closed` comes only after the message. Fair, so over the rounds both orders
/// happen.
#[klaw::test(workers = 2, timeout = "30s")]
async fn a_select_loop_over_a_channel_and_the_handle_of_its_failing_sender_loses_nothing() {
    let handle = Handle::current().unwrap();
    for round in 0..200u32 {
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let task = handle.spawn(klaw::Task::fallible(async move {
            tx.send(round).await.unwrap();
            "not a number".parse::<u8>()
        }));
        let mut task = Fuse(Some(Box::pin(task)));
        let (mut got, mut failed, mut closed) = (None, false, false);
        while !(failed && closed) {
            klaw::select! {
                recv(rx) -> msg => match msg {
                    Ok(n) => {
                        assert!(!closed, "round {round}: a message after `Closed`");
                        assert_eq!(got.replace(n), None, "round {round}: two messages");
                    }
                    Err(RecvError::Closed) => closed = true,
                },
                &mut task -> result => {
                    assert!(matches!(result, Err(TaskError::Failed(_))), "round {round}: {result:?}");
                    failed = true;
                }
            }
        }
        assert_eq!(got, Some(round), "round {round}: the message was lost");
    }
}

/// tokio `nested` / `nested_one` with channel arms. Promise: a select that is itself a losing
/// arm's future (dropped by the outer select's timer while its own `recv` arms wait in line)
/// leaves no message taken and nobody in line; and an outer `recv` arm that lost leaves its
/// message for a select nested in the winner's body.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn nested_selects_lose_no_message_and_leave_nobody_in_line() {
    let handle = Handle::current().unwrap();
    let (tx_a, rx_a) = klaw::channel::bounded::<u32>(1);
    let (tx_b, rx_b) = klaw::channel::bounded::<u32>(1);
    let start = now();
    let outer = klaw::select! {
        async {
            klaw::select! {
                recv(rx_a) -> msg => ("a", msg),
                recv(rx_b) -> msg => ("b", msg),
            }
        } -> inner => Some(inner),
        after(secs(30)) => None,
    };
    assert_eq!((outer, now() - start), (None, secs(30)));
    let plain = handle.spawn({
        let rx_b = rx_b.clone();
        async move { rx_b.recv().await }
    });
    advance(Duration::ZERO).await; // the plain receive waits in line on `b`
    tx_b.try_send(2).unwrap();
    let plain = klaw::cancel::move_on_after(secs(60), plain).await;
    assert_eq!(plain, Some(Ok(Ok(2))), "the dropped inner select's arm kept the wake-up");

    tx_a.try_send(10).unwrap();
    tx_b.try_send(20).unwrap();
    let got = klaw::select! {
        biased;
        recv(rx_a) -> a => klaw::select! {
            biased;
            recv(rx_a) -> again => (a, again),
            recv(rx_b) -> b => (a, b),
        },
        recv(rx_b) -> b => panic!("the biased outer select took `b` first: {b:?}"),
    };
    assert_eq!(got, (Ok(10), Ok(20)), "the outer select's losing arm took `b`'s message");
    assert!(rx_a.is_empty() && rx_b.is_empty());
}

/// tokio `mutable_borrowing_future_with_same_borrow_in_block`, with a channel future that
/// borrows a local: `recv_many(&mut batch, ..)` as a future arm. Promise: the body of another
/// arm may use the buffer the losing arm's future borrowed (it is dropped by then), and a
/// `recv_many` that loses takes nothing (its cancel safety, through `select!`); in a loop it
/// takes every message in order, then loses to the timer.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_recv_many_arm_borrowing_a_local_buffer_loses_nothing_and_frees_the_buffer() {
    let (tx, rx) = klaw::channel::bounded::<u32>(8);
    let (stop_tx, stop_rx) = klaw::channel::bounded::<()>(1);
    for n in 0..5 {
        tx.try_send(n).unwrap();
    }
    stop_tx.try_send(()).unwrap();
    let mut batch = Vec::new();
    let len = klaw::select! {
        biased;
        recv(stop_rx) -> stop => {
            stop.unwrap();
            batch.push(100);
            batch.len()
        },
        rx.recv_many(&mut batch, 3) -> taken => panic!("the biased select took {taken:?} first"),
    };
    assert_eq!(len, 1);
    assert_eq!(rx.len(), 5, "the losing recv_many arm took messages");
    let start = now();
    let mut batches = 0;
    loop {
        let more = klaw::select! {
            rx.recv_many(&mut batch, 3) -> taken => taken.is_ok(),
            after(secs(1)) => false,
        };
        if !more {
            break;
        }
        batches += 1;
        batch.push(1000 + batches);
    }
    assert_eq!(batch, [100, 0, 1, 2, 1001, 3, 4, 1002]);
    assert_eq!(now() - start, secs(1));
    tx.try_send(9).unwrap();
    assert_eq!(rx.try_recv(), Ok(9), "a receive left in line by the dropped arm");
    drop(stop_tx);
}

// ---- Many arms, timers, fairness ------------------------------------------------------------

/// The 64 `recv` arms of [`sixty_four_recv_arms_each_win_wait_and_share_fairly`].
async fn first_of_64(rxs: &[Receiver<usize>]) -> (usize, Result<usize, RecvError>) {
    klaw::select! {
        recv(rxs[0]) -> m => (0, m),
        recv(rxs[1]) -> m => (1, m),
        recv(rxs[2]) -> m => (2, m),
        recv(rxs[3]) -> m => (3, m),
        recv(rxs[4]) -> m => (4, m),
        recv(rxs[5]) -> m => (5, m),
        recv(rxs[6]) -> m => (6, m),
        recv(rxs[7]) -> m => (7, m),
        recv(rxs[8]) -> m => (8, m),
        recv(rxs[9]) -> m => (9, m),
        recv(rxs[10]) -> m => (10, m),
        recv(rxs[11]) -> m => (11, m),
        recv(rxs[12]) -> m => (12, m),
        recv(rxs[13]) -> m => (13, m),
        recv(rxs[14]) -> m => (14, m),
        recv(rxs[15]) -> m => (15, m),
        recv(rxs[16]) -> m => (16, m),
        recv(rxs[17]) -> m => (17, m),
        recv(rxs[18]) -> m => (18, m),
        recv(rxs[19]) -> m => (19, m),
        recv(rxs[20]) -> m => (20, m),
        recv(rxs[21]) -> m => (21, m),
        recv(rxs[22]) -> m => (22, m),
        recv(rxs[23]) -> m => (23, m),
        recv(rxs[24]) -> m => (24, m),
        recv(rxs[25]) -> m => (25, m),
        recv(rxs[26]) -> m => (26, m),
        recv(rxs[27]) -> m => (27, m),
        recv(rxs[28]) -> m => (28, m),
        recv(rxs[29]) -> m => (29, m),
        recv(rxs[30]) -> m => (30, m),
        recv(rxs[31]) -> m => (31, m),
        recv(rxs[32]) -> m => (32, m),
        recv(rxs[33]) -> m => (33, m),
        recv(rxs[34]) -> m => (34, m),
        recv(rxs[35]) -> m => (35, m),
        recv(rxs[36]) -> m => (36, m),
        recv(rxs[37]) -> m => (37, m),
        recv(rxs[38]) -> m => (38, m),
        recv(rxs[39]) -> m => (39, m),
        recv(rxs[40]) -> m => (40, m),
        recv(rxs[41]) -> m => (41, m),
        recv(rxs[42]) -> m => (42, m),
        recv(rxs[43]) -> m => (43, m),
        recv(rxs[44]) -> m => (44, m),
        recv(rxs[45]) -> m => (45, m),
        recv(rxs[46]) -> m => (46, m),
        recv(rxs[47]) -> m => (47, m),
        recv(rxs[48]) -> m => (48, m),
        recv(rxs[49]) -> m => (49, m),
        recv(rxs[50]) -> m => (50, m),
        recv(rxs[51]) -> m => (51, m),
        recv(rxs[52]) -> m => (52, m),
        recv(rxs[53]) -> m => (53, m),
        recv(rxs[54]) -> m => (54, m),
        recv(rxs[55]) -> m => (55, m),
        recv(rxs[56]) -> m => (56, m),
        recv(rxs[57]) -> m => (57, m),
        recv(rxs[58]) -> m => (58, m),
        recv(rxs[59]) -> m => (59, m),
        recv(rxs[60]) -> m => (60, m),
        recv(rxs[61]) -> m => (61, m),
        recv(rxs[62]) -> m => (62, m),
        recv(rxs[63]) -> m => (63, m),
    }
}

/// tokio `many_branches` (64 future arms, in `ported_tokio_select.rs`), with 64 `recv` arms:
/// the expansion's two passes (a look, then a place in line) over 64 arms. Promise: each arm
/// gets its own channel's message and no other arm takes one; a select waiting on all 64 is
/// woken by a message on any (here the last); a fair select spreads its wins over all 64; closed
/// channels give a typed `Closed`.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn sixty_four_recv_arms_each_win_wait_and_share_fairly() {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..64).map(|_| klaw::channel::bounded::<usize>(1)).unzip();
    for (k, tx) in txs.iter().enumerate() {
        tx.try_send(k).unwrap();
        assert_eq!(first_of_64(&rxs).await, (k, Ok(k)));
        assert!(rxs.iter().all(Receiver::is_empty), "arm {k}: another arm took a message");
    }
    let start = now();
    let last = txs[63].clone();
    let sender = Handle::current().unwrap().spawn(async move {
        sleep(secs(5)).await;
        last.send(630).await.unwrap();
    });
    assert_eq!(first_of_64(&rxs).await, (63, Ok(630)));
    assert_eq!(now() - start, secs(5));
    sender.await.unwrap();

    for (k, tx) in txs.iter().enumerate() {
        tx.try_send(k).unwrap();
    }
    let mut wins = [0usize; 64];
    for _ in 0..64 * 100 {
        let (k, msg) = first_of_64(&rxs).await;
        assert_eq!(msg, Ok(k));
        wins[k] += 1;
        txs[k].try_send(k).unwrap();
    }
    // 100 each on average (a standard deviation of about 10): 40 is six below.
    assert!(wins.iter().all(|&w| w > 40), "{wins:?}");
    drop(txs);
    // Every channel is closed with one message queued: each arm gives its message, then (once
    // its channel is drained) a typed `Closed`, never a second message.
    let mut taken = [false; 64];
    let closed = loop {
        match first_of_64(&rxs).await {
            (k, Ok(n)) => {
                assert_eq!(n, k);
                assert!(!std::mem::replace(&mut taken[k], true), "arm {k} gave two messages");
            }
            (k, Err(RecvError::Closed)) => break k,
        }
    };
    assert!(taken[closed] && rxs[closed].is_empty(), "arm {closed} gave `Closed` over a message");
}

/// Kotlin `SelectTimeoutTest` (and `SelectTimeoutDurationTest`): `testBasic` (of three
/// timeouts the shortest wins, wherever it is written), `testZeroTimeout`,
/// `testNegativeTimeout` (a deadline already past wins at once) and
/// `testUnbiasedNegativeTimeout` (a fair select over a past deadline, a zero timeout and a long
/// one: the first two share the wins, the long one never wins). Promise: `after`/`at` arms are
/// timeouts on the runtime's clock, each ready exactly at its time.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn of_several_timer_arms_the_earliest_wins_and_a_past_deadline_at_once() {
    let start = now();
    let picked = klaw::select! {
        after(secs(1000)) => 1000,
        after(secs(100)) => 100,
        after(secs(500)) => 500,
    };
    assert_eq!((picked, now() - start), (100, secs(100)));
    let start = now();
    let picked = klaw::select! {
        biased;
        after(secs(1000)) => 1000,
        at(start + secs(500)) => 500,
        after(secs(100)) => 100,
    };
    assert_eq!((picked, now() - start), (100, secs(100)));

    let start = now();
    let picked = klaw::select! {
        biased;
        after(secs(1000)) => "long",
        after(Duration::ZERO) => "zero",
    };
    assert_eq!((picked, now()), ("zero", start));
    let picked = klaw::select! {
        biased;
        after(secs(1000)) => "long",
        at(start - secs(10)) => "past",
    };
    assert_eq!((picked, now()), ("past", start));

    let mut wins = [0usize; 3];
    for _ in 0..2000 {
        let picked = klaw::select! {
            at(now() - secs(10)) => 0,
            after(Duration::ZERO) => 1,
            after(secs(1000)) => 2,
        };
        wins[picked] += 1;
    }
    assert_eq!(wins[2], 0, "a timer a thousand seconds away won: {wins:?}");
    assert!(wins[0] > 500 && wins[1] > 500, "{wins:?}");
    assert_eq!(now(), start, "the clock moved while the selects were ready at once");
}

/// Kotlin `SelectBiasTest.testUnbiased` / `testBiased`, on the waiting path: the existing
/// fairness tests all find their arms ready on the first look. Here the select waits in line on
/// two channels and both get a message in the same poll of another task. Promise: a fair
/// select picks either over the rounds (a biased one always the first), and the losing arm,
/// woken too, leaves its message in the channel.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn a_select_woken_by_two_channels_at_once_picks_fairly_and_the_loser_keeps_its_message() {
    let handle = Handle::current().unwrap();
    let (tx_a, rx_a) = klaw::channel::bounded::<u32>(1);
    let (tx_b, rx_b) = klaw::channel::bounded::<u32>(1);
    let mut fair_wins = [0usize; 2];
    for round in 0..400u32 {
        let biased = round % 2 == 1;
        let selecting = handle.spawn({
            let (rx_a, rx_b) = (rx_a.clone(), rx_b.clone());
            async move {
                if biased {
                    klaw::select! {
                        biased;
                        recv(rx_a) -> msg => (0usize, msg),
                        recv(rx_b) -> msg => (1, msg),
                    }
                } else {
                    klaw::select! {
                        recv(rx_a) -> msg => (0usize, msg),
                        recv(rx_b) -> msg => (1, msg),
                    }
                }
            }
        });
        advance(Duration::ZERO).await; // the select waits in line on both channels
        let (a, b) = (tx_a.clone(), tx_b.clone());
        handle
            .spawn(async move {
                a.try_send(round).unwrap();
                b.try_send(round).unwrap();
            })
            .await
            .unwrap();
        let (won, msg) = selecting.await.unwrap();
        assert_eq!(msg, Ok(round));
        let loser = if won == 0 { &rx_b } else { &rx_a };
        assert_eq!(loser.try_recv(), Ok(round), "round {round}: the losing arm took its message");
        if biased {
            assert_eq!(won, 0, "round {round}: a biased select took the second arm");
        } else {
            fair_wins[won] += 1;
        }
    }
    // 200 fair rounds, 100 each on average (a standard deviation of about 7).
    assert!(fair_wins.iter().all(|&w| w > 50), "{fair_wins:?}");
}
