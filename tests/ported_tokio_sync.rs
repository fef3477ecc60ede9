//! tokio's channel tests, ported to klaw: `tokio/tests/sync_mpsc.rs`, `sync_oneshot.rs`,
//! `sync_broadcast.rs` and `sync_watch.rs` at tokio commit
//! `ea91b33ca57ff0581b38e735cc108f831bccbdaa`, for the cases the other channel suites
//! (`channel_api`, `channel_edges`, `channels`, `cooperative`, `channel_memory`) do not cover
//! already. Each test names the tokio test it translates.
//!
//! Names: tokio's `mpsc::channel(n)` / `unbounded_channel()` are `klaw::channel::bounded(n)` /
//! `unbounded()` (MPMC); `recv().await` gives `Err(RecvError::Closed)` where tokio gives `None`,
//! and `try_recv` gives `TryRecvError::Closed` for `Disconnected`. `oneshot`, `broadcast` and
//! `watch` keep tokio's names under `klaw::channel::`. tokio-test's `task::spawn(..).poll()` and
//! `is_woken()` become a [`Task`] below: a waker that counts its wake-ups and its clones.
//!
//! Where the book's "Coming from tokio" or a method's doc says klaw differs (a permit does not
//! hold a closed channel open, `capacity()` is the bound, a sender that finds a place takes it
//! before a woken waiter does, the blocking forms do not panic in a task, a broadcast capacity is
//! not rounded up), tokio's assertion is left out and the test says so.

mod common;
#[path = "common/pinned_task.rs"]
mod pinned_task;

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, RefUnwindSafe, UnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{DEADLINE, within};
use futures_lite::Stream;
use klaw::channel::{
    OwnedPermit, Permit, Receiver, RecvError, Sender, TryRecvError, TrySendError, WeakSender,
    bounded, broadcast, oneshot, unbounded, watch,
};
use pinned_task::{Task, every_mpmc, poll_noop};

// ---- Helpers (and `pinned_task`).

/// Polls an MPMC `recv` or `send` until it waits in its channel's line (its `Debug` says so):
/// one that finds nothing first yields to its task (waking it) and waits on the next poll. The
/// task's wake-up flag is clear afterwards.
fn poll_into_line<F: Future + std::fmt::Debug>(task: &Task, mut future: Pin<&mut F>) {
    for _ in 0..8 {
        assert!(task.poll(future.as_mut()).is_pending(), "{future:?} completed");
        if format!("{future:?}").contains("waiting: true") {
            task.forget_wakes();
            return;
        }
    }
    panic!("{future:?} never joined its channel's line");
}

// ---- MPMC (tokio's `sync_mpsc.rs`).

/// tokio `reserve_disarm`. Left out: tokio's last check that a fresh `reserve` waits because the
/// freed places were handed to the woken waiters; in klaw a woken waiter only looks again, and
/// whoever comes first takes the place (book, "Who waits, and how fast").
#[test]
fn mpsc_reserve_disarm() {
    let (tx, rx) = bounded::<i32>(2);
    let (tx1, tx2, tx3, tx4) = (tx.clone(), tx.clone(), tx.clone(), tx);
    let permit1 = poll_noop(pin!(tx1.reserve()));
    let permit2 = poll_noop(pin!(tx2.reserve()));
    let (Poll::Ready(Ok(permit1)), Poll::Ready(Ok(permit2))) = (permit1, permit2) else {
        panic!("two places are free")
    };
    let (task3, task4) = (Task::new(), Task::new());
    let mut r3 = pin!(tx3.reserve());
    let mut r4 = pin!(tx4.reserve());
    assert!(task3.poll(r3.as_mut()).is_pending(), "both places are reserved");
    assert!(task4.poll(r4.as_mut()).is_pending());

    permit1.send(1).unwrap();
    assert!(!task3.is_woken(), "a used permit frees no place: the message holds it");
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(task3.is_woken(), "the receive freed a place: the oldest waiter is woken");
    assert!(!task4.is_woken(), "one place, one wake-up");

    drop(permit2);
    assert!(task4.is_woken(), "a dropped permit frees its place");
    assert!(matches!(task3.poll(r3.as_mut()), Poll::Ready(Ok(_))));
    assert!(matches!(task4.poll(r4.as_mut()), Poll::Ready(Ok(_))));
}

/// tokio `start_send_past_cap`: a reserve dropped while it waits is not woken, and the place
/// goes to the next waiter.
#[test]
fn mpsc_start_send_past_cap() {
    within(DEADLINE, || {
        let (tx1, rx) = bounded::<()>(1);
        let tx2 = tx1.clone();
        tx1.try_send(()).unwrap();
        let (task1, task2) = (Task::new(), Task::new());
        {
            let mut r1 = Box::pin(tx1.reserve());
            assert!(task1.poll(r1.as_mut()).is_pending());
            let mut r2 = pin!(tx2.reserve());
            assert!(task2.poll(r2.as_mut()).is_pending());
            drop(r1);
            assert_eq!(klaw::runtime::block_on(rx.recv()), Ok(()));
            assert!(task2.is_woken());
            assert!(!task1.is_woken(), "the dropped reserve was not woken");
        }
        drop((tx1, tx2));
        assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed));
    });
}

/// tokio `send_recv_buffer_limited`. Left out: tokio's `try_send` failing while the woken
/// reserve has not polled yet; klaw's `try_send` takes a free place even while others wait
/// (`Sender::try_send` doc).
#[test]
fn mpsc_send_recv_buffer_limited() {
    let (tx, rx) = bounded::<i32>(1);
    let Poll::Ready(Ok(p1)) = poll_noop(pin!(tx.reserve())) else { panic!("a free place") };
    p1.send(1).unwrap();
    let task = Task::new();
    let mut p2 = pin!(tx.reserve());
    assert!(task.poll(p2.as_mut()).is_pending());
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(task.is_woken());
    let Poll::Ready(Ok(permit)) = task.poll(p2.as_mut()) else { panic!("the freed place") };
    permit.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
}

/// tokio `drop_permit_releases_permit`.
#[test]
fn mpsc_drop_permit_releases_permit() {
    let (tx1, _rx) = bounded::<i32>(1);
    let tx2 = tx1.clone();
    let Poll::Ready(Ok(permit)) = poll_noop(pin!(tx1.reserve())) else { panic!("a free place") };
    let task = Task::new();
    let mut reserve2 = pin!(tx2.reserve());
    assert!(task.poll(reserve2.as_mut()).is_pending());
    drop(permit);
    assert!(task.is_woken());
    assert!(matches!(task.poll(reserve2.as_mut()), Poll::Ready(Ok(_))));
}

/// tokio `cancelled_reserve_wakes_closed_receiver`, translated: in klaw a close does not wait
/// for reserves, so what is left of it is that a reserve woken for a place and then dropped
/// passes the place on to the next waiting reserve.
#[test]
fn mpsc_cancelled_woken_reserve_passes_its_wake_up_on() {
    let (tx, _rx) = bounded::<()>(1);
    let Poll::Ready(Ok(permit)) = poll_noop(pin!(tx.reserve())) else { panic!("a free place") };
    let (task1, task2) = (Task::new(), Task::new());
    let mut first = Box::pin(tx.reserve());
    let mut second = pin!(tx.reserve());
    assert!(task1.poll(first.as_mut()).is_pending());
    assert!(task2.poll(second.as_mut()).is_pending());
    drop(permit);
    assert!(task1.is_woken() && !task2.is_woken(), "the oldest waiter gets the place");
    drop(first);
    assert!(task2.is_woken(), "the dropped reserve passed its wake-up on");
    assert!(matches!(task2.poll(second.as_mut()), Poll::Ready(Ok(_))));
}

/// tokio `permit_available_not_acquired_close`.
#[test]
fn mpsc_permit_available_not_acquired_close() {
    within(DEADLINE, || {
        let (tx1, rx) = bounded::<()>(1);
        let tx2 = tx1.clone();
        let Poll::Ready(Ok(permit1)) = poll_noop(pin!(tx1.reserve())) else { panic!() };
        let task = Task::new();
        let mut permit2 = Box::pin(tx2.reserve());
        assert!(task.poll(permit2.as_mut()).is_pending());
        rx.close();
        drop(permit1);
        assert!(task.is_woken());
        drop(permit2);
        assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed));
    });
}

/// tokio `recv_close_gets_none_reserved` and `failed_reserve_wakes_closed_receiver`: a close
/// wakes a waiting reserve, which then fails, also one already woken for a place. Left out:
/// tokio's `recv` waiting until the permit is used, and the permit's send succeeding; in klaw a
/// close fails the permits already reserved and `recv` does not wait for them (book, "Coming
/// from tokio", `Receiver::close()` row).
#[test]
fn mpsc_recv_close_gets_none_reserved() {
    within(DEADLINE, || {
        let (tx1, rx) = bounded::<i32>(1);
        let tx2 = tx1.clone();
        let Poll::Ready(Ok(permit1)) = poll_noop(pin!(tx1.reserve())) else { panic!() };
        let task = Task::new();
        let mut permit2 = pin!(tx2.reserve());
        assert!(task.poll(permit2.as_mut()).is_pending());
        rx.close();
        assert!(task.is_woken());
        assert!(matches!(task.poll(permit2), Poll::Ready(Err(_))));
        assert_eq!(permit1.send(123).unwrap_err().into_inner(), 123, "klaw: the permit fails");
        assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed));

        // Woken for a freed place first, then closed before it polls.
        let (tx, rx) = bounded::<()>(1);
        let Poll::Ready(Ok(permit)) = poll_noop(pin!(tx.reserve())) else { panic!() };
        let mut reserve = pin!(tx.reserve());
        assert!(task.poll(reserve.as_mut()).is_pending());
        drop(permit);
        assert!(task.is_woken());
        rx.close();
        assert!(matches!(task.poll(reserve), Poll::Ready(Err(_))));
        assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed));
    });
}

/// tokio `try_recv_bounded`: the ring wraps around and stays exact, full and empty.
#[test]
fn mpsc_try_recv_bounded() {
    let (tx, rx) = bounded::<&str>(5);
    for _ in 0..5 {
        tx.try_send("hello").unwrap();
    }
    assert!(tx.try_send("hello").is_err());
    for _ in 0..5 {
        assert_eq!(rx.try_recv(), Ok("hello"));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    for _ in 0..4 {
        tx.try_send("hello").unwrap();
    }
    assert_eq!(rx.try_recv(), Ok("hello"));
    tx.try_send("hello").unwrap();
    tx.try_send("hello").unwrap();
    assert!(tx.try_send("hello").is_err());
    for _ in 0..5 {
        assert_eq!(rx.try_recv(), Ok("hello"));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    for _ in 0..3 {
        tx.try_send("hello").unwrap();
    }
    drop(tx);
    for _ in 0..3 {
        assert_eq!(rx.try_recv(), Ok("hello"));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

/// tokio `try_recv_unbounded`.
#[test]
fn mpsc_try_recv_unbounded() {
    for num in 0..100 {
        let (tx, rx) = unbounded();
        for i in 0..num {
            tx.try_send(i).unwrap();
        }
        for i in 0..num {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }
}

/// tokio `test_is_empty_32_msgs` (a regression of tokio's block list), on every buffer and
/// across many laps of the ring.
#[test]
fn mpsc_test_is_empty_32_msgs() {
    for (name, tx, rx) in every_mpmc::<u32>(33) {
        for value in 1..1025 {
            tx.try_send(value).unwrap();
            assert_eq!(rx.try_recv(), Ok(value), "{name}");
            assert!(rx.is_empty(), "{name}: {value}, len {}", rx.len());
        }
    }
}

/// tokio `test_rx_is_closed_*`, `test_rx_is_empty_*`, `test_rx_len_*` and their
/// `test_rx_unbounded_*` twins, on every buffer.
#[test]
fn mpsc_test_rx_len_is_empty_and_is_closed() {
    for (name, tx, rx) in every_mpmc::<u32>(10) {
        // Not closed while a sender lives, even full.
        assert!(!rx.is_closed() && rx.is_empty(), "{name}");
        assert_eq!(rx.len(), 0, "{name}");
        for i in 0..10 {
            tx.try_send(i).unwrap();
            assert_eq!(rx.len(), i as usize + 1, "{name}");
        }
        assert!(!rx.is_closed() && !rx.is_empty(), "{name}");
        for _ in 0..9 {
            rx.try_recv().unwrap();
        }
        assert!(!rx.is_empty() && rx.len() == 1, "{name}: all but one consumed");
        rx.try_recv().unwrap();
        assert!(rx.is_empty(), "{name}");

        // Every sender gone, from another thread: closed, messages still counted.
        for i in 0..10 {
            tx.try_send(i).unwrap();
        }
        let another = tx.clone();
        std::thread::spawn(move || drop(another)).join().unwrap();
        drop(tx);
        assert!(rx.is_closed(), "{name}");
        assert_eq!(rx.len(), 10, "{name}: closing adds nothing to the count");
        for i in (0..10).rev() {
            rx.try_recv().unwrap();
            assert_eq!(rx.len(), i, "{name}");
        }
        assert!(rx.is_empty(), "{name}");
    }
    // `close()` by the receiver, before and after the senders went.
    for close_first in [true, false] {
        for (name, tx, rx) in every_mpmc::<u32>(10) {
            tx.try_send(1).unwrap();
            if close_first {
                rx.close();
                drop(tx);
            } else {
                drop(tx);
                rx.close();
            }
            assert!(rx.is_closed(), "{name}");
            assert_eq!(rx.len(), 1, "{name}");
        }
    }
    let (tx, rx) = bounded::<()>(10);
    drop(tx);
    assert_eq!(rx.len(), 0, "an empty channel without senders");
}

/// tokio `dropping_rx_closes_channel` and `dropping_rx_closes_channel_for_try`: once the last
/// receiver is gone nobody can receive the queued messages, and tokio drops them then.
#[test]
fn mpsc_dropping_rx_closes_channel() {
    let mut kept = Vec::new();
    for (name, tx, rx) in every_mpmc::<Arc<()>>(100) {
        let msg = Arc::new(());
        tx.try_send(msg.clone()).unwrap();
        drop(rx);
        assert!(klaw::runtime::block_on(tx.reserve()).is_err(), "{name}");
        assert!(matches!(tx.try_send(msg.clone()), Err(TrySendError::Closed(_))), "{name}");
        if Arc::strong_count(&msg) != 1 {
            kept.push(name);
        }
    }
    assert!(
        kept.is_empty(),
        "messages queued for nobody still held while a sender lives: {kept:?}"
    );
}

/// tokio `unconsumed_messages_are_dropped`, on every buffer.
#[test]
fn mpsc_unconsumed_messages_are_dropped() {
    for (name, tx, rx) in every_mpmc::<Arc<()>>(100) {
        let msg = Arc::new(());
        tx.try_send(msg.clone()).unwrap();
        assert_eq!(Arc::strong_count(&msg), 2, "{name}");
        drop((tx, rx));
        assert_eq!(Arc::strong_count(&msg), 1, "{name}");
    }
}

/// Counts the drops of [`PanicOnDrop`] values, per test.
static DROPS_WHEN_RECEIVER_GOES: AtomicUsize = AtomicUsize::new(0);
static DROPS_WHEN_CHANNEL_GOES: AtomicUsize = AtomicUsize::new(0);

/// A message whose drop counts itself and panics when `panics` is set.
struct PanicOnDrop {
    panics: bool,
    drops: &'static AtomicUsize,
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panics {
            panic!("a message's drop panics");
        }
    }
}

/// tokio `drop_all_elements_during_panic`, as tokio has it: the last receiver goes while a
/// sender lives, and every queued message is dropped even though the first one's drop panics.
#[test]
fn mpsc_drop_all_elements_during_panic() {
    let drops = &DROPS_WHEN_RECEIVER_GOES;
    let (tx, rx) = unbounded::<PanicOnDrop>();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let tx = tx.clone();
        tx.try_send(PanicOnDrop { panics: true, drops }).unwrap();
        tx.try_send(PanicOnDrop { panics: false, drops }).unwrap();
        tx.try_send(PanicOnDrop { panics: false, drops }).unwrap();
        drop(rx);
    }));
    let dropped_with_the_receiver = drops.load(Ordering::SeqCst);
    // Drops what is left (a panic here, while the assertion below unwinds, would abort).
    let _ = catch_unwind(AssertUnwindSafe(|| drop(tx)));
    assert_eq!(dropped_with_the_receiver, 3, "dropped when the last receiver went");
}

/// tokio `drop_all_elements_during_panic`, on the drop of the channel itself and on every
/// buffer: a message whose drop panics does not leak the messages queued after it.
#[test]
fn mpsc_drop_all_elements_during_panic_when_the_channel_is_dropped() {
    let drops = &DROPS_WHEN_CHANNEL_GOES;
    let mut leaked = Vec::new();
    for (name, tx, rx) in every_mpmc::<PanicOnDrop>(4) {
        drops.store(0, Ordering::SeqCst);
        tx.try_send(PanicOnDrop { panics: true, drops }).unwrap();
        tx.try_send(PanicOnDrop { panics: false, drops }).unwrap();
        tx.try_send(PanicOnDrop { panics: false, drops }).unwrap();
        let dropped = catch_unwind(AssertUnwindSafe(|| drop((tx, rx))));
        assert!(dropped.is_err(), "{name}: the first message's panic comes through");
        let count = drops.load(Ordering::SeqCst);
        if count != 3 {
            leaked.push((name, 3 - count));
        }
    }
    assert!(
        leaked.is_empty(),
        "messages never dropped after the first one's drop panicked: {leaked:?}"
    );
}

/// tokio `release_waker_on_rx_drop`: a waiting receiver's waker is let go when it goes, through
/// the receiver's `Stream` and through a `recv` future.
#[test]
fn mpsc_release_waker_on_rx_drop() {
    let task = Task::new();
    let (_tx, mut rx) = bounded::<()>(1);
    for _ in 0..2 {
        // The first poll yields, the second waits in line with the waker.
        let polled = Pin::new(&mut rx).poll_next(&mut Context::from_waker(task.waker()));
        assert!(polled.is_pending());
    }
    assert_eq!(task.wakers_held_elsewhere(), 1);
    drop(rx);
    assert_eq!(task.wakers_held_elsewhere(), 0, "dropping rx did not drop its waker");

    let (_tx, rx) = bounded::<()>(1);
    let mut recv = Box::pin(rx.recv());
    poll_into_line(&task, recv.as_mut());
    assert_eq!(task.wakers_held_elsewhere(), 1);
    drop(recv);
    assert_eq!(task.wakers_held_elsewhere(), 0, "dropping the recv did not drop its waker");
}

/// tokio `no_t_bounds_buffer` and `no_t_bounds_unbounded`: the handles are `Debug` and `Clone`
/// whatever the message type.
#[test]
fn mpsc_no_t_bounds() {
    struct NoImpls;
    fn is_debug<T: std::fmt::Debug>(_: &T) {}
    for (_, tx, rx) in every_mpmc::<NoImpls>(100) {
        is_debug(&tx);
        is_debug(&rx);
        is_debug(&tx.downgrade());
        assert!(tx.clone().try_send(NoImpls).is_ok());
        assert!(rx.clone().try_recv().is_ok());
    }
}

/// tokio's `AssertUnwindSafe` and `AssertRefUnwindSafe` impls at the top of `sync_mpsc.rs`: the
/// handles can be used across `catch_unwind` without `AssertUnwindSafe`, for any message type
/// (a `Cell` is not `RefUnwindSafe`). This compiles only if they are.
#[test]
fn mpsc_handles_are_unwind_safe() {
    fn both<T: UnwindSafe + RefUnwindSafe>() {}
    both::<Sender<Cell<i32>>>();
    both::<Receiver<Cell<i32>>>();
    both::<WeakSender<Cell<i32>>>();
    both::<Permit<'static, Cell<i32>>>();
    let (tx, rx) = bounded::<Cell<i32>>(1);
    let sent = catch_unwind(|| tx.try_send(Cell::new(1)));
    assert!(matches!(sent, Ok(Ok(()))));
    assert_eq!(catch_unwind(|| rx.try_recv().map(Cell::into_inner)).ok(), Some(Ok(1)));
}

// ---- Oneshot (tokio's `sync_oneshot.rs`).

/// tokio's `AssertSend` for oneshot, and `sync_broadcast.rs`'s `Send + Sync`.
#[test]
fn oneshot_and_broadcast_handles_are_send_and_sync() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<oneshot::Sender<i32>>();
    send::<oneshot::Receiver<i32>>();
    send_sync::<broadcast::Sender<i32>>();
    send_sync::<broadcast::Receiver<i32>>();
    send_sync::<broadcast::WeakSender<i32>>();
}

/// tokio `send_recv` and `close_tx`: a waiting receiver is woken by the send, or by the
/// sender's drop.
#[test]
fn oneshot_send_recv_and_close_tx() {
    let task = Task::new();
    let (tx, mut rx) = oneshot::channel();
    assert!(task.poll(pin!(&mut rx)).is_pending());
    tx.send(1).unwrap();
    assert!(task.is_woken());
    assert_eq!(task.poll(pin!(&mut rx)), Poll::Ready(Ok(1)));

    let (tx, mut rx) = oneshot::channel::<i32>();
    assert!(task.poll(pin!(&mut rx)).is_pending());
    drop(tx);
    assert!(task.is_woken());
    assert_eq!(task.poll(pin!(&mut rx)), Poll::Ready(Err(RecvError::Closed)));
}

/// tokio `close_after_recv`, `try_recv_after_completion` and `try_recv_after_completion_await`.
#[test]
fn oneshot_try_recv_after_completion() {
    let (tx, mut rx) = oneshot::channel::<i32>();
    tx.send(17).unwrap();
    assert_eq!(rx.try_recv(), Ok(17));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    rx.close();

    let (tx, mut rx) = oneshot::channel::<i32>();
    tx.send(17).unwrap();
    assert_eq!(poll_noop(pin!(&mut rx)), Poll::Ready(Ok(17)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    rx.close();
}

/// tokio `drops_tasks`: once both ends are gone, neither holds a waker.
#[test]
fn oneshot_drops_tasks() {
    let (tx_task, rx_task) = (Task::new(), Task::new());
    let (mut tx, mut rx) = oneshot::channel::<i32>();
    {
        let mut closed = pin!(tx.closed());
        assert!(tx_task.poll(closed.as_mut()).is_pending());
        assert!(rx_task.poll(pin!(&mut rx)).is_pending());
        assert_eq!((tx_task.wakers_held_elsewhere(), rx_task.wakers_held_elsewhere()), (1, 1));
    }
    drop(tx);
    drop(rx);
    assert_eq!(tx_task.wakers_held_elsewhere(), 0);
    assert_eq!(rx_task.wakers_held_elsewhere(), 0);
}

/// tokio `receiver_changes_task`: polled by another task, the receiver keeps only that task's
/// waker, and the send wakes only it.
#[test]
fn oneshot_receiver_changes_task() {
    let (tx, mut rx) = oneshot::channel();
    let (task1, task2) = (Task::new(), Task::new());
    assert!(task1.poll(pin!(&mut rx)).is_pending());
    assert_eq!((task1.wakers_held_elsewhere(), task2.wakers_held_elsewhere()), (1, 0));
    assert!(task2.poll(pin!(&mut rx)).is_pending());
    assert_eq!((task1.wakers_held_elsewhere(), task2.wakers_held_elsewhere()), (0, 1));
    tx.send(1).unwrap();
    assert!(!task1.is_woken());
    assert!(task2.is_woken());
    assert_eq!(task2.poll(pin!(&mut rx)), Poll::Ready(Ok(1)));
}

/// tokio `sender_changes_task`, with `closed()` for tokio's `poll_closed`.
#[test]
fn oneshot_sender_changes_task() {
    let (mut tx, rx) = oneshot::channel::<i32>();
    let (task1, task2) = (Task::new(), Task::new());
    let mut closed = pin!(tx.closed());
    assert!(task1.poll(closed.as_mut()).is_pending());
    assert_eq!((task1.wakers_held_elsewhere(), task2.wakers_held_elsewhere()), (1, 0));
    assert!(task2.poll(closed.as_mut()).is_pending());
    assert_eq!((task1.wakers_held_elsewhere(), task2.wakers_held_elsewhere()), (0, 1));
    drop(rx);
    assert!(!task1.is_woken());
    assert!(task2.is_woken());
    assert_eq!(task2.poll(closed.as_mut()), Poll::Ready(()));
}

// ---- Broadcast (tokio's `sync_broadcast.rs`).

/// tokio `send_two_recv`, `send_recv_bounded` and `send_two_recv_bounded`.
#[test]
fn broadcast_send_two_recv_bounded() {
    let (tx, mut rx1) = broadcast::channel(16);
    let mut rx2 = tx.subscribe();
    assert_eq!(tx.send("hello"), Ok(2), "the number of receivers");
    assert_eq!((rx1.try_recv(), rx2.try_recv()), (Ok("hello"), Ok("hello")));
    assert_eq!(rx1.try_recv(), Err(broadcast::TryRecvError::Empty));

    let (task1, task2) = (Task::new(), Task::new());
    {
        let mut recv1 = pin!(rx1.recv());
        let mut recv2 = pin!(rx2.recv());
        assert!(task1.poll(recv1.as_mut()).is_pending());
        assert!(task2.poll(recv2.as_mut()).is_pending());
        tx.send("hello").unwrap();
        assert!(task1.is_woken() && task2.is_woken());
        assert_eq!(task1.poll(recv1), Poll::Ready(Ok("hello")));
        assert_eq!(task2.poll(recv2), Poll::Ready(Ok("hello")));
    }
    let mut recv1 = pin!(rx1.recv());
    assert!(task1.poll(recv1.as_mut()).is_pending());
    task2.forget_wakes();
    tx.send("world").unwrap();
    assert!(task1.is_woken());
    assert!(!task2.is_woken(), "rx2's new recv was never polled");
    assert_eq!(task1.poll(recv1), Poll::Ready(Ok("world")));
    assert_eq!(task2.poll(pin!(rx2.recv())), Poll::Ready(Ok("world")));
}

/// tokio `change_tasks`: a recv polled by another task wakes that task.
#[test]
fn broadcast_change_tasks() {
    let (tx, mut rx) = broadcast::channel(1);
    let mut recv = pin!(rx.recv());
    let (task1, task2) = (Task::new(), Task::new());
    assert!(task1.poll(recv.as_mut()).is_pending());
    assert!(task2.poll(recv.as_mut()).is_pending());
    tx.send("hello").unwrap();
    assert!(task2.is_woken());
    assert!(!task1.is_woken());
}

/// tokio `send_slow_rx`.
#[test]
fn broadcast_send_slow_rx() {
    let (tx, mut rx1) = broadcast::channel(16);
    let mut rx2 = tx.subscribe();
    let (task1, task2) = (Task::new(), Task::new());
    {
        let mut recv2 = pin!(rx2.recv());
        {
            let mut recv1 = pin!(rx1.recv());
            assert!(task1.poll(recv1.as_mut()).is_pending());
            assert!(task2.poll(recv2.as_mut()).is_pending());
            tx.send("one").unwrap();
            assert!(task1.is_woken() && task2.is_woken());
            tx.send("two").unwrap();
            assert_eq!(task1.poll(recv1), Poll::Ready(Ok("one")));
        }
        assert_eq!(poll_noop(pin!(rx1.recv())), Poll::Ready(Ok("two")));
        let mut recv1 = pin!(rx1.recv());
        assert!(task1.poll(recv1.as_mut()).is_pending());
        tx.send("three").unwrap();
        assert!(task1.is_woken());
        assert_eq!(task1.poll(recv1), Poll::Ready(Ok("three")));
        assert_eq!(task2.poll(recv2), Poll::Ready(Ok("one")));
    }
    assert_eq!(rx2.try_recv(), Ok("two"));
    assert_eq!(rx2.try_recv(), Ok("three"));
}

/// tokio `lagging_rx`.
#[test]
fn broadcast_lagging_rx() {
    use broadcast::TryRecvError::Lagged;
    let (tx, mut rx1) = broadcast::channel(2);
    let mut rx2 = tx.subscribe();
    tx.send("one").unwrap();
    tx.send("two").unwrap();
    assert_eq!(rx1.try_recv(), Ok("one"));
    tx.send("three").unwrap();
    assert_eq!(rx2.try_recv(), Err(Lagged(1)), "lagged too far");
    assert_eq!(rx2.try_recv(), Ok("two"), "then the next value");
    assert_eq!(rx1.try_recv(), Ok("two"));
    assert_eq!(rx1.try_recv(), Ok("three"));
    tx.send("four").unwrap();
    tx.send("five").unwrap();
    assert_eq!(rx2.try_recv(), Err(Lagged(1)));
    tx.send("six").unwrap();
    assert_eq!(rx2.try_recv(), Err(Lagged(1)));
}

/// tokio `send_no_rx` and `drop_rx_while_values_remain`.
#[test]
fn broadcast_send_no_rx() {
    let (tx, rx) = broadcast::channel(16);
    drop(rx);
    assert_eq!(tx.send("hello").unwrap_err().into_inner(), "hello");
    let mut rx = tx.subscribe();
    tx.send("world").unwrap();
    assert_eq!(rx.try_recv(), Ok("world"));

    let (tx, mut rx1) = broadcast::channel(16);
    let mut rx2 = tx.subscribe();
    tx.send("one").unwrap();
    tx.send("two").unwrap();
    rx1.try_recv().unwrap();
    rx2.try_recv().unwrap();
    drop(rx2);
    drop(rx1);
    assert!(tx.is_empty());
}

/// tokio `zero_capacity`.
#[test]
#[should_panic(expected = "capacity")]
fn broadcast_zero_capacity() {
    let _ = broadcast::channel::<()>(0);
}

/// tokio `capacity_too_big`.
#[test]
#[should_panic(expected = "capacity")]
fn broadcast_capacity_too_big() {
    let _ = broadcast::channel::<()>(1 + (usize::MAX >> 1));
}

/// tokio `dropping_tx_notifies_rx`: only the last sender's drop wakes the receivers.
#[test]
fn broadcast_dropping_tx_notifies_rx() {
    let (tx, mut rx1) = broadcast::channel::<()>(16);
    let mut rx2 = tx.subscribe();
    let tx2 = tx.clone();
    let (task1, task2) = (Task::new(), Task::new());
    let mut recv1 = pin!(rx1.recv());
    let mut recv2 = pin!(rx2.recv());
    assert!(task1.poll(recv1.as_mut()).is_pending());
    assert!(task2.poll(recv2.as_mut()).is_pending());
    drop(tx);
    assert!(task1.poll(recv1.as_mut()).is_pending());
    assert!(task2.poll(recv2.as_mut()).is_pending());
    drop(tx2);
    assert!(task1.is_woken() && task2.is_woken());
    assert_eq!(task1.poll(recv1), Poll::Ready(Err(broadcast::RecvError::Closed)));
    assert_eq!(task2.poll(recv2), Poll::Ready(Err(broadcast::RecvError::Closed)));
}

/// tokio `single_capacity_recvs`, `single_capacity_recvs_after_drop_1` and `_2`,
/// `dropping_sender_does_not_overwrite`, `lagging_receiver_recovers_after_wrap_closed_1` and
/// `_2`, `lagging_receiver_recovers_after_wrap_open`: what a receiver reads of `sent` on a
/// channel of `capacity`, with the sender dropped or not.
#[test]
fn broadcast_recovers_after_wrap_open_and_closed() {
    use broadcast::TryRecvError::{Closed, Empty, Lagged};
    type Case = (usize, &'static [i32], bool, &'static [Result<i32, broadcast::TryRecvError>]);
    let cases: [Case; 7] = [
        (1, &[1], false, &[Ok(1), Err(Empty)]),
        (1, &[1], true, &[Ok(1), Err(Closed)]),
        (1, &[1, 2], true, &[Err(Lagged(1)), Ok(2), Err(Closed)]),
        (2, &[1, 2], true, &[Ok(1), Ok(2), Err(Closed)]),
        (2, &[1, 2, 3], true, &[Err(Lagged(1)), Ok(2), Ok(3), Err(Closed)]),
        (2, &[1, 2, 3, 4], true, &[Err(Lagged(2)), Ok(3), Ok(4), Err(Closed)]),
        (2, &[1, 2, 3], false, &[Err(Lagged(1)), Ok(2), Ok(3), Err(Empty)]),
    ];
    for (capacity, sent, drop_sender, expected) in cases {
        let (tx, mut rx) = broadcast::channel(capacity);
        for value in sent {
            tx.send(*value).unwrap();
        }
        let _kept = if drop_sender {
            drop(tx);
            None
        } else {
            Some(tx)
        };
        let read: Vec<_> = expected.iter().map(|_| rx.try_recv()).collect();
        assert_eq!(read, expected, "capacity {capacity}, sent {sent:?}, dropped {drop_sender}");
    }
}

/// tokio `sender_len_random`, with a fixed pseudo-random sequence: the sender's `len` is what
/// the furthest-behind receiver has yet to read, at most the capacity.
#[test]
fn broadcast_sender_len_random() {
    let (tx, mut rx1) = broadcast::channel(16);
    let mut rx2 = tx.subscribe();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..1000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        match state % 4 {
            0 => {
                let _ = rx1.try_recv();
            }
            1 => {
                let _ = rx2.try_recv();
            }
            _ => {
                tx.send(0).unwrap();
            }
        }
        let expected = rx1.len().max(rx2.len()).min(16);
        assert_eq!(tx.len(), expected);
    }
}

/// A waker that sends on the broadcast channel when its last clone is dropped.
struct SendOnDrop(broadcast::Sender<()>);

impl Drop for SendOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Wake for SendOnDrop {
    fn wake(self: Arc<Self>) {}
}

/// tokio `send_in_waker_drop`: a waker whose drop sends on the channel is replaced, and woken,
/// without a deadlock.
#[test]
fn broadcast_send_in_waker_drop() {
    within(DEADLINE, || {
        let (tx, mut rx) = broadcast::channel(16);
        let mut recv = Box::pin(async move {
            let _ = rx.recv().await;
        });
        let waker = Waker::from(Arc::new(SendOnDrop(tx)));
        assert!(recv.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        drop(waker);
        let _ = poll_noop(recv.as_mut()); // replaces (drops) the waker: it sends

        let (tx, mut rx) = broadcast::channel(16);
        let mut recv = Box::pin(async move {
            let _ = rx.recv().await;
        });
        let waker = Waker::from(Arc::new(SendOnDrop(tx.clone())));
        assert!(recv.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        drop(waker);
        let _ = tx.send(()); // wakes (and so drops) the waker: it sends
    });
}

/// tokio `slow_receiver_within_capacity_does_not_lag` and `lag_is_per_receiver`.
#[test]
fn broadcast_lag_is_per_receiver() {
    use broadcast::TryRecvError::{Empty, Lagged};
    let (tx, mut slow) = broadcast::channel(2);
    let mut fast = tx.subscribe();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!((fast.try_recv(), fast.try_recv(), fast.try_recv()), (Ok(1), Ok(2), Err(Empty)));
    let mut within = slow.resubscribe();
    tx.send(3).unwrap();
    tx.send(4).unwrap();
    assert_eq!((within.try_recv(), within.try_recv()), (Ok(3), Ok(4)), "within capacity");
    assert_eq!((fast.try_recv(), fast.try_recv()), (Ok(3), Ok(4)));
    assert_eq!(slow.try_recv(), Err(Lagged(2)), "1 and 2 were overwritten");
    assert_eq!((slow.try_recv(), slow.try_recv()), (Ok(3), Ok(4)));
    assert_eq!((slow.try_recv(), fast.try_recv()), (Err(Empty), Err(Empty)));
}

/// tokio `capacity_overflow_reports_lagged_then_oldest_retained`,
/// `lagged_count_matches_number_of_overwritten_messages`, `lag_catch_up_then_lag_again`,
/// `lag_again_before_reading_retained_messages` and `single_slot_capacity_lag_semantics`.
#[test]
fn broadcast_lagged_counts_every_overwritten_message() {
    use broadcast::TryRecvError::{Empty, Lagged};
    let (tx, mut rx) = broadcast::channel(2);
    for value in [10, 20, 30] {
        tx.send(value).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(Lagged(1)));
    assert_eq!((rx.try_recv(), rx.try_recv(), rx.try_recv()), (Ok(20), Ok(30), Err(Empty)));
    for value in [40, 50, 60] {
        tx.send(value).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(Lagged(1)), "caught up, then lagged again from there");
    assert_eq!((rx.try_recv(), rx.try_recv(), rx.try_recv()), (Ok(50), Ok(60), Err(Empty)));

    let (tx, mut rx) = broadcast::channel(4);
    for value in 1..=4 {
        tx.send(value).unwrap();
    }
    assert_eq!(rx.try_recv(), Ok(1));
    for value in 5..=8 {
        tx.send(value).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(Lagged(3)), "2, 3 and 4 are gone");
    let rest: Vec<_> = (0..5).map(|_| rx.try_recv()).collect();
    assert_eq!(rest, [Ok(5), Ok(6), Ok(7), Ok(8), Err(Empty)]);

    let (tx, mut rx) = broadcast::channel(2);
    for value in 1..=3 {
        tx.send(value).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(Lagged(1)));
    for value in 4..=6 {
        tx.send(value).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(Lagged(3)), "from the cursor the first lag left: 2, 3, 4");
    assert_eq!((rx.try_recv(), rx.try_recv(), rx.try_recv()), (Ok(5), Ok(6), Err(Empty)));

    let (tx, mut rx) = broadcast::channel(1);
    tx.send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    tx.send(2).unwrap();
    tx.send(3).unwrap();
    assert_eq!((rx.try_recv(), rx.try_recv(), rx.try_recv()), (Err(Lagged(1)), Ok(3), Err(Empty)));
}

/// tokio `async_recv_lagged_then_resumes_from_oldest_retained`.
#[klaw::test(workers = 2, timeout = "30s")]
async fn broadcast_async_recv_lagged_then_resumes_from_oldest_retained() {
    let (tx, mut rx) = broadcast::channel(2);
    for value in [10, 20, 30] {
        tx.send(value).unwrap();
    }
    assert_eq!(rx.recv().await, Err(broadcast::RecvError::Lagged(1)));
    assert_eq!(rx.recv().await, Ok(20));
    assert_eq!(rx.recv().await, Ok(30));
}

/// tokio `receiver_len_after_lag_error_advances_cursor`. Left out: tokio's `len` of 4 before
/// the lag is seen (counted from the old cursor); klaw's counts the messages still kept
/// (`broadcast::Receiver::len` doc), which `channel_api` tests.
#[test]
fn broadcast_receiver_len_after_lag_error_advances_cursor() {
    let (tx, mut rx) = broadcast::channel(2);
    for value in 1..=4 {
        tx.send(value).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(2)));
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.len(), 1);
    assert_eq!(rx.try_recv(), Ok(4));
    assert_eq!(rx.len(), 0);
}

// ---- Watch (tokio's `sync_watch.rs`).

/// tokio `single_rx_recv`.
#[test]
fn watch_single_rx_recv() {
    let (tx, mut rx) = watch::channel("one");
    let task = Task::new();
    assert!(task.poll(pin!(rx.changed())).is_pending(), "not notified at first");
    assert_eq!(*rx.borrow(), "one");
    {
        let mut changed = pin!(rx.changed());
        assert!(task.poll(changed.as_mut()).is_pending());
        tx.send("two").unwrap();
        assert!(task.is_woken());
        assert_eq!(task.poll(changed), Poll::Ready(Ok(())));
    }
    assert_eq!(*rx.borrow(), "two");
    {
        let mut changed = pin!(rx.changed());
        assert!(task.poll(changed.as_mut()).is_pending());
        drop(tx);
        assert!(task.is_woken());
        assert_eq!(task.poll(changed), Poll::Ready(Err(RecvError::Closed)));
    }
    assert_eq!(*rx.borrow(), "two");
}

/// tokio `multi_rx`.
#[test]
fn watch_multi_rx() {
    let (tx, mut rx1) = watch::channel("one");
    let mut rx2 = rx1.clone();
    let (task1, task2) = (Task::new(), Task::new());
    assert!(task1.poll(pin!(rx1.changed())).is_pending());
    assert!(task2.poll(pin!(rx2.changed())).is_pending());
    assert_eq!((*rx1.borrow(), *rx2.borrow()), ("one", "one"));
    {
        let mut t2 = pin!(rx2.changed());
        {
            let mut t1 = pin!(rx1.changed());
            assert!(task1.poll(t1.as_mut()).is_pending());
            assert!(task2.poll(t2.as_mut()).is_pending());
            tx.send("two").unwrap();
            assert!(task1.is_woken() && task2.is_woken());
            assert_eq!(task1.poll(t1), Poll::Ready(Ok(())));
        }
        assert_eq!(*rx1.borrow(), "two");
        // `t2` was woken and not polled since: it sees "three" as its change.
        let mut t1 = pin!(rx1.changed());
        assert!(task1.poll(t1.as_mut()).is_pending());
        tx.send("three").unwrap();
        assert!(task1.is_woken() && task2.is_woken());
        assert_eq!(task1.poll(t1), Poll::Ready(Ok(())));
        assert_eq!(task2.poll(t2), Poll::Ready(Ok(())));
    }
    assert_eq!((*rx1.borrow(), *rx2.borrow()), ("three", "three"));
    {
        let mut t1 = pin!(rx1.changed());
        let mut t2 = pin!(rx2.changed());
        assert!(task1.poll(t1.as_mut()).is_pending());
        assert!(task2.poll(t2.as_mut()).is_pending());
        tx.send("four").unwrap();
        assert_eq!(task1.poll(t1), Poll::Ready(Ok(())));
        assert_eq!(task2.poll(t2), Poll::Ready(Ok(())));
    }
    assert_eq!((*rx1.borrow(), *rx2.borrow()), ("four", "four"));
}

/// tokio `rx_observes_final_value`.
#[test]
fn watch_rx_observes_final_value() {
    let (tx, mut rx) = watch::channel("one");
    drop(tx);
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Err(RecvError::Closed)));
    assert_eq!(*rx.borrow(), "one");

    let (tx, mut rx) = watch::channel("one");
    tx.send("two").unwrap();
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Ok(())));
    assert_eq!(*rx.borrow(), "two");
    let task = Task::new();
    {
        let mut changed = pin!(rx.changed());
        assert!(task.poll(changed.as_mut()).is_pending());
        tx.send("three").unwrap();
        drop(tx);
        assert!(task.is_woken());
        assert_eq!(task.poll(changed), Poll::Ready(Ok(())));
    }
    assert_eq!(*rx.borrow(), "three");
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Err(RecvError::Closed)));
    assert_eq!(*rx.borrow(), "three");
}

/// tokio `borrow_and_update`.
#[test]
fn watch_borrow_and_update() {
    let (tx, mut rx) = watch::channel("one");
    assert_eq!(rx.has_changed(), Ok(false));
    tx.send("two").unwrap();
    assert_eq!(rx.has_changed(), Ok(true));
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Ok(())));
    assert!(poll_noop(pin!(rx.changed())).is_pending());
    assert_eq!(rx.has_changed(), Ok(false));
    tx.send("three").unwrap();
    assert_eq!(rx.has_changed(), Ok(true));
    assert_eq!(*rx.borrow_and_update(), "three");
    assert!(poll_noop(pin!(rx.changed())).is_pending());
    assert_eq!(rx.has_changed(), Ok(false));
    drop(tx);
    assert_eq!(*rx.borrow_and_update(), "three");
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Err(RecvError::Closed)));
    assert_eq!(rx.has_changed(), Err(RecvError::Closed));
}

/// tokio `send_modify_panic`: the part `channel_api` leaves out, a `changed` already waiting
/// is neither woken nor ready after the panic, and is by the next `send_modify`.
#[test]
fn watch_send_modify_panic() {
    let (tx, mut rx) = watch::channel("one");
    tx.send_modify(|old| *old = "two");
    assert_eq!(*rx.borrow_and_update(), "two");
    let mut rx2 = rx.clone();
    assert_eq!(*rx2.borrow_and_update(), "two");
    let task = Task::new();
    let mut changed = pin!(rx2.changed());
    assert!(task.poll(changed.as_mut()).is_pending());
    let result = catch_unwind(AssertUnwindSafe(|| {
        tx.send_modify(|old| {
            *old = "panicked";
            panic!("in send_modify");
        })
    }));
    assert!(result.is_err());
    assert!(!task.is_woken());
    assert!(task.poll(changed.as_mut()).is_pending());
    assert_eq!(*rx.borrow(), "panicked");
    tx.send_modify(|old| *old = "three");
    assert_eq!(task.poll(changed), Poll::Ready(Ok(())));
    assert_eq!(*rx.borrow_and_update(), "three");
}

/// tokio `multiple_sender` and `receiver_is_notified_when_last_sender_is_dropped`.
#[test]
fn watch_multiple_sender() {
    let (tx1, mut rx) = watch::channel(0);
    let tx2 = tx1.clone();
    let task = Task::new();
    let mut both = pin!(async {
        rx.changed().await.unwrap();
        let v1 = *rx.borrow_and_update();
        rx.changed().await.unwrap();
        let v2 = *rx.borrow_and_update();
        (v1, v2, rx)
    });
    tx1.send(1).unwrap();
    assert!(task.poll(both.as_mut()).is_pending());
    tx2.send(2).unwrap();
    let Poll::Ready((v1, v2, mut rx)) = task.poll(both) else { panic!("both changes were seen") };
    assert_eq!((v1, v2), (1, 2));

    let mut changed = pin!(rx.changed());
    assert!(task.poll(changed.as_mut()).is_pending());
    drop(tx1);
    assert!(!task.is_woken(), "a sender is left");
    drop(tx2);
    assert!(task.is_woken());
}

/// tokio `changed_succeeds_on_closed_channel_with_unseen_value`,
/// `changed_errors_on_closed_channel_with_seen_value`,
/// `has_changed_errors_on_closed_channel_with_unseen_value` and `_with_seen_value`, and
/// `wait_for_errors_on_closed_channel_true_predicate`.
#[test]
fn watch_closed_channel_unseen_and_seen_values() {
    within(DEADLINE, || {
        let (tx, mut rx) = watch::channel("A");
        tx.send("B").unwrap();
        drop(tx);
        assert_eq!(rx.has_changed(), Err(RecvError::Closed), "closed, even with a value unseen");
        assert_eq!(klaw::runtime::block_on(rx.changed()), Ok(()), "the unseen value first");

        let (tx, mut rx) = watch::channel("A");
        drop(tx);
        assert_eq!(rx.has_changed(), Err(RecvError::Closed));
        assert_eq!(klaw::runtime::block_on(rx.changed()), Err(RecvError::Closed));

        let (tx, mut rx) = watch::channel("A");
        tx.send("B").unwrap();
        drop(tx);
        let found = klaw::runtime::block_on(rx.wait_for(|_| true)).map(|value| *value);
        assert_eq!(found, Ok("B"));
    });
}

// ---- `Sender::closed` is cooperative (tokio's `sync_watch.rs` `sender_closed_is_cooperative`).

/// Runs `looping` in a task of the current one-worker runtime, after spawning a sibling that
/// sets the flag `looping` is given: the sibling runs only if the loop yields.
async fn loop_until_a_sibling_runs<L, F>(looping: L)
where
    L: FnOnce(Arc<AtomicBool>) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handle = klaw::Handle::current().unwrap();
    let task = handle.spawn(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let sibling = klaw::Handle::current().unwrap().spawn({
            let stop = stop.clone();
            async move { stop.store(true, Ordering::SeqCst) }
        });
        looping(stop).await;
        sibling.await.unwrap();
    });
    task.await.unwrap();
}

/// tokio `receiver_changed_is_cooperative`, for a oneshot receiver that klaw, unlike tokio, lets
/// be awaited again after it gave its result (`Err(Closed)` each time): a loop re-awaiting it
/// lets the other tasks of its worker run. What would break it: a finished receiver that answers
/// outside the cooperative budget, so the loop never yields (a hang, caught by the timeout).
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_finished_oneshot_receiver_awaited_again_is_cooperative() {
    loop_until_a_sibling_runs(move |stop| async move {
        let (tx, mut rx) = oneshot::channel::<u32>();
        tx.send(1).unwrap();
        assert_eq!((&mut rx).await, Ok(1));
        while !stop.load(Ordering::SeqCst) {
            assert_eq!((&mut rx).await, Err(RecvError::Closed));
        }
    })
    .await;
}

/// tokio `sender_closed_is_cooperative`, for every channel's `closed()`: a loop awaiting it on
/// a closed channel lets the other tasks of its worker run.
#[klaw::test(workers = 1, timeout = "30s")]
async fn sender_closed_is_cooperative() {
    let (tx, rx) = watch::channel(());
    drop(rx);
    loop_until_a_sibling_runs(move |stop| async move {
        while !stop.load(Ordering::SeqCst) {
            tx.closed().await;
        }
    })
    .await;
    let (tx, rx) = broadcast::channel::<()>(1);
    drop(rx);
    loop_until_a_sibling_runs(move |stop| async move {
        while !stop.load(Ordering::SeqCst) {
            tx.closed().await;
        }
    })
    .await;
    let (tx, rx) = bounded::<()>(1);
    drop(rx);
    loop_until_a_sibling_runs(move |stop| async move {
        while !stop.load(Ordering::SeqCst) {
            tx.closed().await;
        }
    })
    .await;
    let (mut tx, rx) = oneshot::channel::<()>();
    drop(rx);
    loop_until_a_sibling_runs(move |stop| async move {
        while !stop.load(Ordering::SeqCst) {
            tx.closed().await;
        }
    })
    .await;
}

/// A waker that, the first time it is woken, tells the receiving thread and waits until that
/// thread has done its checks: the `wake` call `Sender::send` makes returns only then.
struct HandOver {
    first: AtomicBool,
    woken: Mutex<mpsc::Sender<()>>,
    resume: Mutex<mpsc::Receiver<()>>,
}

impl Wake for HandOver {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.first.swap(false, Ordering::SeqCst) {
            self.woken.lock().unwrap().send(()).unwrap();
            self.resume
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10))
                .expect("the receiving thread resumed the sender");
        }
    }
}

/// tokio's `try_recv_after_completion_await`, with the value sent by another thread: the
/// receiver, woken by `send`, takes the value before `send` has returned, and `try_recv` then
/// says `Closed` ("polled again after it gave its result, through `await` or `try_recv`, it gives
/// `Closed`", book/src/from_tokio.md). The waker makes that order (which a runtime with two
/// workers gives by itself) certain. What would break it: only the sender's drop marking that
/// nothing more will come, so that between the wake-up and the end of `send` `try_recv` said
/// `Empty`, "wait".
#[test]
fn a_oneshot_receiver_that_took_the_value_says_closed_not_empty_while_send_returns() {
    let (woken_tx, woken_rx) = mpsc::channel::<()>();
    let (resume_tx, resume_rx) = mpsc::channel::<()>();
    let waker = Waker::from(Arc::new(HandOver {
        first: AtomicBool::new(true),
        woken: Mutex::new(woken_tx),
        resume: Mutex::new(resume_rx),
    }));

    let (tx, mut rx) = oneshot::channel::<u32>();
    // The receiving task waits: its waker is the hand-over one.
    assert!(Pin::new(&mut rx).poll(&mut Context::from_waker(&waker)).is_pending());
    drop(waker);

    let (polled_tx, polled_rx) = mpsc::channel::<(Poll<Result<u32, RecvError>>, bool)>();
    let (tried_tx, tried_rx) = mpsc::channel::<Result<u32, TryRecvError>>();
    let receiving = std::thread::spawn(move || {
        woken_rx.recv_timeout(Duration::from_secs(10)).expect("send woke the receiver");
        // The woken receiver runs (on another worker) while `send` has not returned yet.
        let polled = Pin::new(&mut rx).poll(&mut Context::from_waker(Waker::noop()));
        polled_tx.send((polled, rx.is_terminated())).unwrap();
        tried_tx.send(rx.try_recv()).unwrap();
        resume_tx.send(()).unwrap();
        rx
    });

    assert_eq!(tx.send(7), Ok(()));
    let rx = receiving.join().expect("the receiving thread");
    let (polled, terminated) = polled_rx.recv().unwrap();
    assert_eq!(polled, Poll::Ready(Ok(7)), "the woken receiver takes the value");
    assert!(terminated, "and is terminated: it gave its result");
    assert_eq!(
        tried_rx.recv().unwrap(),
        Err(TryRecvError::Closed),
        "the one value was taken: nothing can come any more, so `try_recv` must say `Closed` \
         (tokio's does), not `Empty`"
    );
    drop(rx);
}

/// Compiles only if `T` may cross `catch_unwind` by value and by reference.
fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}

/// channels.md: "The handles may cross `catch_unwind` without `AssertUnwindSafe`, as tokio's
/// do." Checks, at compile time, that the broadcast `Sender`, `Receiver` and `WeakSender`, the
/// watch `Sender` and `Receiver`, the oneshot `Sender` and `Receiver`, and the MPMC
/// `OwnedPermit` are `UnwindSafe + RefUnwindSafe`, for a message type that is not.
///
/// What would break it: a `Cell`, `RefCell` or `UnsafeCell` (or anything else not
/// `RefUnwindSafe`) added to a handle or to the state it shares outside a std lock, or a message
/// kept outside one: this file then no longer compiles.
#[test]
fn broadcast_watch_and_oneshot_handles_and_owned_permits_are_unwind_safe() {
    unwind_safe::<broadcast::Sender<Cell<i32>>>();
    unwind_safe::<broadcast::Receiver<Cell<i32>>>();
    unwind_safe::<broadcast::WeakSender<Cell<i32>>>();
    unwind_safe::<watch::Sender<Cell<i32>>>();
    unwind_safe::<watch::Receiver<Cell<i32>>>();
    unwind_safe::<oneshot::Sender<Cell<i32>>>();
    unwind_safe::<oneshot::Receiver<Cell<i32>>>();
    unwind_safe::<OwnedPermit<Cell<i32>>>();
}

/// channels.md: "The handles may cross `catch_unwind` without `AssertUnwindSafe`". Each handle
/// used inside a `catch_unwind` closure as a user would: borrowed (`RefUnwindSafe`) or moved in
/// (`UnwindSafe`). Checks: each operation worked inside it.
///
/// What would break it: as above (a compile error here), or an operation that fails once its
/// handle has crossed `catch_unwind`.
#[test]
fn each_handle_is_used_across_catch_unwind_without_assert_unwind_safe() {
    let (tx, mut rx) = broadcast::channel::<Cell<i32>>(4);
    assert_eq!(catch_unwind(|| tx.send(Cell::new(1)).is_ok()).ok(), Some(true));
    let got = catch_unwind(move || rx.try_recv().map(Cell::into_inner).ok());
    assert_eq!(got.ok(), Some(Some(1)));

    let (tx, rx) = watch::channel(Cell::new(0));
    assert_eq!(catch_unwind(|| tx.send(Cell::new(5)).is_ok()).ok(), Some(true));
    assert_eq!(catch_unwind(|| rx.borrow().get()).ok(), Some(5));

    let (tx, mut rx) = oneshot::channel::<Cell<i32>>();
    assert_eq!(catch_unwind(move || tx.send(Cell::new(3)).is_ok()).ok(), Some(true));
    let got = catch_unwind(move || rx.try_recv().map(Cell::into_inner).ok());
    assert_eq!(got.ok(), Some(Some(3)));

    let (tx, rx) = bounded::<Cell<i32>>(1);
    let Ok(permit) = tx.try_reserve_owned() else { panic!("the channel has room") };
    assert_eq!(catch_unwind(move || permit.send(Cell::new(9)).is_ok()).ok(), Some(true));
    assert_eq!(rx.try_recv().map(Cell::into_inner).ok(), Some(9));
}
