//! The channel methods beyond send and receive, one behaviour each, through the facade: weak
//! senders, `Sender::closed`, the length queries, `force_send`, the blocking forms, a oneshot's
//! `is_terminated` and `is_empty`, broadcast and watch receivers as streams, `resubscribe`, the
//! watch's in-place sends, `wait_for` and `mark_*`; then the wakers that come back into their
//! channel on the paths `channel_edges` does not take. Ported from tokio's `sync_*` and
//! async-channel's suites where they have the case.

#[path = "common/reenter.rs"]
mod reenter;

mod common;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::Duration;

use common::within;
use futures_lite::StreamExt;
use klaw::channel::{
    Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError, bounded, broadcast,
    oneshot, unbounded, watch,
};
use reenter::{
    PanicsOnClone, counting_waker, poll_into_line, poll_noop, poll_with_hook, without_deadlock,
};

/// Above this capacity `bounded` uses the growing buffer instead of the ring (`RING_MAX_CAPACITY`
/// in klaw-rt): the tests that fill a channel run on both.
const GROWING: usize = 4097;

/// A bounded channel of each buffer, and the unbounded one, with their names for messages.
fn every_mpmc() -> [(&'static str, Sender<u32>, Receiver<u32>); 3] {
    let (ring_tx, ring_rx) = bounded(2);
    let (list_tx, list_rx) = bounded(GROWING);
    let (unbounded_tx, unbounded_rx) = unbounded();
    [
        ("ring", ring_tx, ring_rx),
        ("list", list_tx, list_rx),
        ("unbounded", unbounded_tx, unbounded_rx),
    ]
}

/// Sends until the channel is full; how many went in.
fn fill(tx: &Sender<u32>) -> usize {
    let mut sent = 0;
    while tx.try_send(sent as u32).is_ok() {
        sent += 1;
    }
    sent
}

#[test]
fn mpmc_a_senders_is_full_counts_the_places_permits_hold() {
    for (name, tx, rx) in every_mpmc() {
        let Some(capacity) = tx.capacity() else { continue };
        for n in 0..capacity - 1 {
            tx.try_send(n as u32).unwrap();
        }
        assert!(!tx.is_full(), "{name}: one place is free");
        let Poll::Ready(Ok(permit)) = poll_noop(pin!(tx.reserve())) else {
            panic!("{name}: a free place is reserved at once")
        };
        // The last place is held: a send cannot get in, and the sender says so.
        assert!(matches!(tx.try_send(0), Err(TrySendError::Full(0))), "{name}");
        assert!(tx.is_full(), "{name}: a held place is not free");
        assert!(!rx.is_full(), "{name}: the receiver counts messages only");
        drop(permit);
        assert!(!tx.is_full(), "{name}: a dropped permit frees its place");
    }
}

// ---- MPMC: weak senders.

#[test]
fn mpmc_weak_senders_upgrade_only_while_a_strong_sender_lives() {
    for (name, tx, rx) in every_mpmc() {
        let weak = tx.downgrade();
        assert_eq!(tx.sender_count(), 1, "{name}: a weak sender is not counted");
        let upgraded = weak.upgrade().expect("a strong sender lives");
        assert_eq!(tx.sender_count(), 2, "{name}: an upgrade is a sender");
        upgraded.try_send(1).unwrap();
        drop(upgraded);
        assert!(!rx.is_closed(), "{name}: the original sender still keeps it open");

        // A weak sender of a clone dropped at once: what counts is the senders alive now.
        let of_a_clone = tx.clone().downgrade();
        let copy = weak.clone();
        drop(tx);
        assert!(weak.upgrade().is_none(), "{name}: no strong sender left");
        assert!(of_a_clone.upgrade().is_none() && copy.upgrade().is_none(), "{name}");
        assert_eq!(rx.sender_count(), 0, "{name}");
        assert_eq!(rx.try_recv(), Ok(1), "{name}: what was sent is still delivered");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "{name}");
    }
}

#[test]
fn mpmc_a_weak_sender_does_not_keep_a_waiting_receiver_waiting() {
    let (tx, rx) = bounded::<u32>(1);
    let _weak = tx.downgrade();
    let waker = counting_waker();
    let mut recv = pin!(rx.recv());
    assert!(poll_into_line(recv.as_mut()).is_pending());
    assert!(recv.as_mut().poll(&mut waker.cx()).is_pending());
    drop(tx);
    assert_eq!(waker.woken(), 1, "the last strong sender closed the channel");
    assert_eq!(recv.poll(&mut waker.cx()), Poll::Ready(Err(RecvError::Closed)));
}

#[test]
fn mpmc_an_upgrade_after_the_receivers_closed_the_channel_is_a_closed_sender() {
    let (tx, rx) = bounded::<u32>(1);
    let weak = tx.downgrade();
    assert!(rx.close());
    let upgraded = weak.upgrade().expect("a strong sender still lives");
    assert!(upgraded.is_closed());
    assert_eq!(upgraded.try_send(1), Err(TrySendError::Closed(1)));
}

// ---- MPMC: `Sender::closed`.

#[test]
fn mpmc_sender_closed_resolves_when_every_receiver_is_gone_and_not_before() {
    let (tx, rx) = bounded::<u32>(1);
    let rx2 = rx.clone();
    let waker = counting_waker();
    let mut closed = pin!(tx.closed());
    assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
    tx.try_send(1).unwrap();
    drop(rx);
    assert_eq!(waker.woken(), 0, "a receiver is left");
    assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
    drop(rx2);
    assert_eq!(waker.woken(), 1);
    assert_eq!(closed.poll(&mut waker.cx()), Poll::Ready(()));
    assert!(tx.is_closed());
    // Once closed, a new `closed()` is ready at once.
    assert_eq!(poll_noop(pin!(tx.closed())), Poll::Ready(()));
}

#[test]
fn mpmc_sender_closed_resolves_when_someone_closes_while_receivers_live() {
    let (tx, rx) = unbounded::<u32>();
    let other = tx.clone();
    let waker = counting_waker();
    let mut closed = pin!(tx.closed());
    assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
    drop(other); // a sender going away does not close it
    assert_eq!(waker.woken(), 0);
    assert!(rx.close());
    assert_eq!(waker.woken(), 1);
    assert_eq!(closed.poll(&mut waker.cx()), Poll::Ready(()));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn mpmc_a_producer_selecting_on_closed_stops_when_the_consumer_leaves() {
    let (tx, rx) = bounded::<u64>(1);
    let consumer = klaw::Handle::current().unwrap().spawn(async move {
        let first = rx.recv().await;
        drop(rx); // leaves after one message
        first
    });
    let mut sent = 0u64;
    loop {
        klaw::select! {
            send(tx, sent) -> result => match result {
                Ok(()) => sent += 1,
                Err(_) => break,
            },
            tx.closed() -> _ => break,
        }
    }
    assert_eq!(consumer.await.unwrap(), Ok(0));
    assert!(tx.is_closed());
    assert!(sent <= 2, "it stopped once nobody received: sent {sent}");
}

// ---- MPMC: lengths.

#[test]
fn mpmc_len_is_empty_and_is_full_agree_on_both_ends() {
    for (name, tx, rx) in every_mpmc() {
        let both = |len: usize, full: bool| {
            assert_eq!((tx.len(), rx.len()), (len, len), "{name}: len");
            assert_eq!((tx.is_empty(), rx.is_empty()), (len == 0, len == 0), "{name}: is_empty");
            assert_eq!((tx.is_full(), rx.is_full()), (full, full), "{name}: is_full");
        };
        both(0, false);
        tx.try_send(1).unwrap();
        both(1, false);
        match tx.capacity() {
            Some(capacity) => {
                fill(&tx);
                both(capacity, true);
                rx.try_recv().unwrap();
                both(capacity - 1, false);
            }
            None => {
                for n in 0..10_000 {
                    tx.try_send(n).unwrap();
                }
                both(10_001, false); // never full
            }
        }
        let queued = tx.len();
        rx.close();
        both(queued, false); // closed, what is queued still counts
        while rx.try_recv().is_ok() {}
        both(0, false);
    }
}

// ---- MPMC: `force_send`.

#[test]
fn mpmc_force_send_gives_back_the_oldest_when_full() {
    for capacity in [2, GROWING] {
        let (tx, rx) = bounded::<u32>(capacity);
        for n in 0..capacity as u32 {
            assert_eq!(tx.force_send(n), Ok(None), "room: nothing displaced");
        }
        assert_eq!(tx.force_send(100), Ok(Some(0)), "full: the oldest made room");
        assert_eq!(tx.force_send(101), Ok(Some(1)));
        assert_eq!(tx.len(), capacity);
        let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let expected: Vec<u32> = (2..capacity as u32).chain([100, 101]).collect();
        assert_eq!(got, expected, "capacity {capacity}: order kept, newest last");
    }
}

#[test]
fn mpmc_force_send_on_a_closed_channel_gives_the_value_back() {
    let (tx, rx) = bounded::<u32>(1);
    tx.try_send(1).unwrap();
    rx.close();
    assert_eq!(tx.force_send(2), Err(TrySendError::Closed(2)), "closed though full");
    assert_eq!(rx.try_recv(), Ok(1), "and nothing queued was displaced");
    let (tx, rx) = unbounded::<u32>();
    drop(rx);
    assert_eq!(tx.force_send(3), Err(TrySendError::Closed(3)));
}

#[test]
fn mpmc_force_send_keeps_reserved_places_and_never_displaces_when_unbounded() {
    let (tx, rx) = bounded::<u32>(1);
    let permit = klaw::runtime::block_on(tx.reserve()).unwrap();
    // The only place is reserved and nothing is queued to take out: refused.
    assert_eq!(tx.force_send(1), Err(TrySendError::Full(1)));
    permit.send(2).unwrap();
    assert_eq!(tx.force_send(3), Ok(Some(2)), "a sent permit's message can be displaced");
    assert_eq!(rx.try_recv(), Ok(3));

    let (tx, rx) = unbounded::<u32>();
    for n in 0..100 {
        assert_eq!(tx.force_send(n), Ok(None));
    }
    assert_eq!(rx.len(), 100);
}

#[test]
fn mpmc_force_send_wakes_a_waiting_receiver() {
    let (tx, rx) = bounded::<u32>(1);
    let waker = counting_waker();
    let mut recv = pin!(rx.recv());
    assert!(poll_into_line(recv.as_mut()).is_pending());
    assert!(recv.as_mut().poll(&mut waker.cx()).is_pending());
    assert_eq!(tx.force_send(7), Ok(None));
    assert_eq!(waker.woken(), 1);
    assert_eq!(recv.poll(&mut waker.cx()), Poll::Ready(Ok(7)));
}

// ---- MPMC: the blocking forms, from plain threads.

#[test]
fn mpmc_send_blocking_waits_for_a_place_and_recv_blocking_for_a_message() {
    within(Duration::from_secs(10), || {
        let (tx, rx) = bounded::<u32>(1);
        tx.send_blocking(0).unwrap();
        let sent = Arc::new(AtomicBool::new(false));
        let producer = std::thread::spawn({
            let sent = sent.clone();
            move || {
                tx.send_blocking(1).unwrap(); // full: blocks until the receive below
                sent.store(true, Ordering::SeqCst);
                for n in 2..100 {
                    tx.send_blocking(n).unwrap();
                }
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!sent.load(Ordering::SeqCst), "send_blocking returned while the channel was full");
        let got: Vec<u32> = std::iter::from_fn(|| rx.recv_blocking().ok()).collect();
        producer.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>(), "in order, each once, then Closed");
    });
}

#[test]
fn mpmc_recv_blocking_waits_for_the_sender_and_the_blocking_forms_report_closed() {
    within(Duration::from_secs(10), || {
        let (tx, rx) = unbounded::<u32>();
        let consumer = std::thread::spawn(move || (rx.recv_blocking(), rx.recv_blocking()));
        std::thread::sleep(Duration::from_millis(20)); // the consumer is blocked by now
        tx.send_blocking(5).unwrap();
        drop(tx);
        assert_eq!(consumer.join().unwrap(), (Ok(5), Err(RecvError::Closed)));

        let (tx, rx) = bounded::<String>(1);
        drop(rx);
        assert_eq!(tx.send_blocking("back".into()), Err(SendError("back".to_string())));
    });
}

// ---- MPMC: what the book's "Coming from tokio" says differs.

#[test]
fn mpmc_closing_fails_the_permits_already_reserved_and_does_not_wait_for_them() {
    for capacity in [2, GROWING] {
        let (tx, rx) = bounded::<u32>(capacity);
        tx.try_send(1).unwrap();
        let permit = klaw::runtime::block_on(tx.reserve()).unwrap();
        assert!(rx.close());
        assert_eq!(rx.try_recv(), Ok(1), "what was queued is still received");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "the permit does not hold it open");
        assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed));
        assert_eq!(permit.send(2), Err(SendError(2)), "the permit fails, the value comes back");
    }
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn the_blocking_receives_do_not_panic_inside_a_task() {
    let (oneshot_tx, oneshot_rx) = oneshot::channel::<u32>();
    let (tx, rx) = unbounded::<u32>();
    let received = klaw::Handle::current().unwrap().spawn(async move {
        // Blocks this worker until a plain thread sends.
        (oneshot_rx.blocking_recv(), rx.recv_blocking())
    });
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        oneshot_tx.send(1).unwrap();
        tx.send_blocking(2).unwrap();
    });
    assert_eq!(received.await.unwrap(), (Ok(1), Ok(2)));
}

// ---- Oneshot.

#[test]
fn oneshot_sender_closed_waits_for_the_receiver_to_go() {
    let (mut tx, rx) = oneshot::channel::<u32>();
    assert!(!tx.is_closed());
    let waker = counting_waker();
    {
        let mut closed = pin!(tx.closed());
        assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
        assert!(closed.as_mut().poll(&mut waker.cx()).is_pending(), "still there");
        assert_eq!(waker.woken(), 0);
        drop(rx);
        assert_eq!(waker.woken(), 1);
        assert_eq!(closed.poll(&mut waker.cx()), Poll::Ready(()));
    }
    assert!(tx.is_closed());
    assert_eq!(poll_noop(pin!(tx.closed())), Poll::Ready(()));
    assert_eq!(tx.send(1).unwrap_err().into_inner(), 1);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn oneshot_a_sender_can_give_up_when_the_receiver_leaves() {
    let (mut tx, rx) = oneshot::channel::<u64>();
    let (left, has_left) = oneshot::channel::<()>();
    let receiver = klaw::Handle::current().unwrap().spawn(async move {
        klaw::time::sleep(Duration::from_millis(5)).await;
        drop(rx);
        left.send(()).unwrap();
    });
    klaw::select! {
        tx.closed() -> _ => {}
        after(Duration::from_secs(9)) => panic!("closed never resolved"),
    }
    assert!(tx.is_closed());
    assert_eq!(has_left.await, Ok(()));
    receiver.await.unwrap();
}

#[test]
fn oneshot_is_terminated_only_once_the_receiver_gave_its_result() {
    use futures_util::future::FusedFuture;
    // After a value, through the future and through `try_recv`.
    let (tx, mut rx) = oneshot::channel::<u32>();
    assert!(poll_noop(pin!(&mut rx)).is_pending());
    assert!(!rx.is_terminated(), "pending is not terminated");
    tx.send(17).unwrap();
    assert!(!rx.is_terminated(), "a value waiting is not terminated");
    assert_eq!(poll_noop(pin!(&mut rx)), Poll::Ready(Ok(17)));
    assert!(rx.is_terminated() && FusedFuture::is_terminated(&rx));
    // Polled again, it says its value is gone (tokio's panics).
    assert_eq!(poll_noop(pin!(&mut rx)), Poll::Ready(Err(RecvError::Closed)));

    let (tx, mut rx) = oneshot::channel::<u32>();
    tx.send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(rx.is_terminated(), "try_recv gave the value");

    // After `Closed`: the sender dropped, or the receiver closed.
    let (tx, mut rx) = oneshot::channel::<u32>();
    drop(tx);
    assert!(!rx.is_terminated());
    assert_eq!(poll_noop(pin!(&mut rx)), Poll::Ready(Err(RecvError::Closed)));
    assert!(rx.is_terminated());
    let (_tx, mut rx) = oneshot::channel::<u32>();
    rx.close();
    assert!(!rx.is_terminated(), "closing is not yielding");
    assert_eq!(poll_noop(pin!(&mut rx)), Poll::Ready(Err(RecvError::Closed)));
    assert!(rx.is_terminated());
}

#[test]
fn oneshot_is_empty_until_sent_and_again_once_received() {
    let (tx, mut rx) = oneshot::channel::<u32>();
    assert!(rx.is_empty());
    tx.send(1).unwrap();
    assert!(!rx.is_empty());
    rx.close();
    assert!(!rx.is_empty(), "a value sent before close is still there");
    assert_eq!(poll_noop(pin!(&mut rx)), Poll::Ready(Ok(1)));
    assert!(rx.is_empty());

    let (tx, mut rx) = oneshot::channel::<u32>();
    tx.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
    assert!(rx.is_empty());

    let (tx, rx) = oneshot::channel::<u32>();
    drop(tx);
    assert!(rx.is_empty(), "the sender is gone, nothing was sent");
}

#[test]
fn oneshot_blocking_recv_waits_on_a_plain_thread() {
    within(Duration::from_secs(10), || {
        let (tx, rx) = oneshot::channel::<String>();
        let receiver = std::thread::spawn(move || rx.blocking_recv());
        std::thread::sleep(Duration::from_millis(20)); // blocked by now
        tx.send("late".into()).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok("late".to_string()));

        let (tx, rx) = oneshot::channel::<String>();
        let receiver = std::thread::spawn(move || rx.blocking_recv());
        std::thread::sleep(Duration::from_millis(20));
        drop(tx);
        assert_eq!(receiver.join().unwrap(), Err(RecvError::Closed));
    });
}

// ---- Broadcast.

#[test]
fn broadcast_len_counts_what_some_receiver_has_yet_to_read() {
    let (tx, mut a) = broadcast::channel::<u32>(4);
    let mut b = tx.subscribe();
    assert!(tx.is_empty() && a.is_empty() && b.is_empty());
    for n in 1..=3 {
        tx.send(n).unwrap();
    }
    assert_eq!((tx.len(), a.len(), b.len()), (3, 3, 3));
    a.try_recv().unwrap();
    a.try_recv().unwrap();
    assert_eq!((tx.len(), a.len(), b.len()), (3, 1, 3), "b has read none");
    b.try_recv().unwrap();
    assert_eq!((tx.len(), a.len(), b.len()), (2, 1, 2), "both read the first: gone");
    for n in 4..=6 {
        tx.send(n).unwrap();
    }
    assert_eq!(tx.len(), 4, "never more than the capacity");
    assert!(!tx.is_empty() && !a.is_empty());
    assert_eq!(b.try_recv(), Err(broadcast::TryRecvError::Lagged(1)), "b missed 2");
    while a.try_recv().is_ok() {}
    assert_eq!(tx.len(), 4, "b has read none of those kept");
    while b.try_recv().is_ok() {}
    assert!(tx.is_empty() && a.is_empty() && b.is_empty());
}

#[test]
fn broadcast_a_lagging_receivers_len_counts_only_what_is_kept() {
    let (tx, mut rx) = broadcast::channel::<u32>(3);
    for n in [10, 20, 30, 40] {
        tx.send(n).unwrap();
    }
    assert_eq!(rx.len(), 3, "10 is gone");
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
    assert_eq!(rx.len(), 3, "the lag moved it to the oldest kept");
    assert_eq!(rx.try_recv(), Ok(20));
    assert_eq!(rx.len(), 2);
}

#[test]
fn broadcast_sender_closed_resolves_when_the_last_receiver_goes() {
    let (tx, rx) = broadcast::channel::<u32>(1);
    let rx2 = tx.subscribe();
    let waker = counting_waker();
    let mut closed = pin!(tx.closed());
    assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
    drop(tx.clone()); // a sender going away does not count
    drop(rx);
    assert_eq!(waker.woken(), 0, "a receiver is left");
    assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
    drop(rx2);
    assert_eq!(waker.woken(), 1);
    // A receiver that subscribes before the poll makes it wait again (tokio's
    // `broadcast_sender_closed_with_extra_subscribe`), and a send goes through to it.
    let rx3 = tx.subscribe();
    assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
    assert_eq!(tx.send(5), Ok(1));
    drop(rx3);
    assert_eq!(waker.woken(), 2);
    assert_eq!(closed.poll(&mut waker.cx()), Poll::Ready(()));
    assert_eq!(tx.send(6).unwrap_err().into_inner(), 6, "no receiver: the value comes back");
    assert_eq!(poll_noop(pin!(tx.closed())), Poll::Ready(()), "no receiver: ready at once");
    let _rx4 = tx.subscribe();
    assert!(poll_noop(pin!(tx.closed())).is_pending());
}

#[test]
fn broadcast_weak_senders_do_not_keep_the_channel_open() {
    let (tx, mut rx) = broadcast::channel::<u32>(4);
    let weak = tx.downgrade();
    let of_a_clone = tx.clone().downgrade();
    let upgraded = weak.upgrade().expect("a strong sender lives");
    assert_eq!(upgraded.send(1), Ok(1));
    drop(upgraded);
    let waker = counting_waker();
    assert_eq!(rx.try_recv(), Ok(1));
    let mut recv = pin!(rx.recv());
    assert!(recv.as_mut().poll(&mut waker.cx()).is_pending());
    drop(tx);
    assert_eq!(waker.woken(), 1, "the last strong sender closed it");
    assert_eq!(recv.poll(&mut waker.cx()), Poll::Ready(Err(broadcast::RecvError::Closed)));
    assert!(weak.upgrade().is_none() && of_a_clone.upgrade().is_none());
}

#[test]
fn broadcast_receiver_stream_yields_lagged_then_values_and_ends_when_senders_go() {
    let (tx, mut rx) = broadcast::channel::<u32>(2);
    for n in 0..5 {
        tx.send(n).unwrap();
    }
    let waker = counting_waker();
    let next = |rx: &mut broadcast::Receiver<u32>| Pin::new(rx).poll_next(&mut waker.cx());
    assert_eq!(next(&mut rx), Poll::Ready(Some(Err(broadcast::Lagged(3)))));
    assert_eq!(next(&mut rx), Poll::Ready(Some(Ok(3))));
    assert_eq!(next(&mut rx), Poll::Ready(Some(Ok(4))));
    assert_eq!(next(&mut rx), Poll::Pending, "nothing new, a sender lives");
    tx.send(5).unwrap();
    assert_eq!(waker.woken(), 1);
    assert_eq!(next(&mut rx), Poll::Ready(Some(Ok(5))));
    assert_eq!(next(&mut rx), Poll::Pending);
    drop(tx);
    assert_eq!(waker.woken(), 2);
    assert_eq!(next(&mut rx), Poll::Ready(None));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn broadcast_receivers_as_streams_each_see_every_message() {
    let (tx, rx) = broadcast::channel::<u32>(64);
    let rx2 = tx.subscribe();
    let handle = klaw::Handle::current().unwrap();
    let a = handle.spawn(async move { rx.collect::<Vec<_>>().await });
    let b = handle.spawn(async move { rx2.map(Result::unwrap).collect::<Vec<_>>().await });
    for n in 0..50 {
        tx.send(n).unwrap();
        klaw::task::consume_budget().await;
    }
    drop(tx);
    let expected: Vec<u32> = (0..50).collect();
    assert_eq!(a.await.unwrap(), expected.iter().copied().map(Ok).collect::<Vec<_>>());
    assert_eq!(b.await.unwrap(), expected);
}

#[test]
fn broadcast_resubscribe_starts_at_the_tail() {
    let (tx, mut rx) = broadcast::channel::<u32>(3);
    tx.send(1).unwrap();
    let mut resub = rx.resubscribe();
    assert_eq!(tx.receiver_count(), 2);
    assert_eq!(resub.try_recv(), Err(broadcast::TryRecvError::Empty), "1 came before it");
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(tx.send(2), Ok(2), "it counts as a receiver");
    assert_eq!(resub.try_recv(), Ok(2));
    tx.send(3).unwrap();
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(2), Ok(3)), "rx is not moved by it");
    assert_eq!(resub.try_recv(), Ok(3));
}

#[test]
fn broadcast_resubscribe_of_a_lagging_receiver_does_not_lag() {
    let (tx, mut rx) = broadcast::channel::<u32>(1);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let mut resub = rx.resubscribe();
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
    assert_eq!(resub.try_recv(), Err(broadcast::TryRecvError::Empty));
    assert_eq!(rx.try_recv(), Ok(2));
    // On a closed channel, the new receiver is closed too.
    drop(tx);
    let mut late = rx.resubscribe();
    assert_eq!(late.try_recv(), Err(broadcast::TryRecvError::Closed));
}

/// A channel with messages 1 and 2 queued for `rx`, and another receiver so that `rx` must
/// clone them (the last reader of a message takes it without a clone).
fn panicking_broadcast() -> (
    broadcast::Sender<PanicsOnClone>,
    broadcast::Receiver<PanicsOnClone>,
    broadcast::Receiver<PanicsOnClone>,
) {
    let (tx, rx) = broadcast::channel(4);
    let other = tx.subscribe();
    tx.send(PanicsOnClone(1)).unwrap();
    tx.send(PanicsOnClone(2)).unwrap();
    (tx, rx, other)
}

#[test]
fn broadcast_a_clone_that_panics_in_recv_panics_once_and_the_receiver_moves_on() {
    let (tx, mut rx, mut other) = panicking_broadcast();
    let first = catch_unwind(AssertUnwindSafe(|| klaw::runtime::block_on(rx.recv())));
    assert!(first.is_err(), "the clone's panic comes through recv");
    assert_eq!(klaw::runtime::block_on(rx.recv()), Ok(PanicsOnClone(2)));
    drop(tx);
    assert_eq!(klaw::runtime::block_on(rx.recv()), Err(broadcast::RecvError::Closed));
    // The other receiver was not touched (it reads last: it takes, no clone).
    assert_eq!(other.try_recv(), Ok(PanicsOnClone(1)));
    assert_eq!(other.try_recv(), Ok(PanicsOnClone(2)));
}

#[test]
fn broadcast_a_clone_that_panics_in_a_waiting_recv_panics_once_and_the_receiver_moves_on() {
    let (tx, mut keeper) = broadcast::channel(4);
    let mut rx = tx.subscribe();
    let waker = counting_waker();
    let mut recv = pin!(rx.recv());
    assert!(recv.as_mut().poll(&mut waker.cx()).is_pending());
    tx.send(PanicsOnClone(1)).unwrap();
    tx.send(PanicsOnClone(3)).unwrap();
    assert_eq!(waker.woken(), 1);
    let woken = catch_unwind(AssertUnwindSafe(|| recv.as_mut().poll(&mut waker.cx())));
    assert!(woken.is_err(), "the clone's panic comes through the woken recv");
    assert_eq!(recv.poll(&mut waker.cx()), Poll::Ready(Ok(PanicsOnClone(3))));
    assert_eq!(keeper.try_recv(), Ok(PanicsOnClone(1)));
    assert_eq!(keeper.try_recv(), Ok(PanicsOnClone(3)));
}

#[test]
fn broadcast_a_clone_that_panics_in_a_stream_panics_once_and_the_stream_moves_on() {
    let (tx, mut rx, mut other) = panicking_broadcast();
    let first = catch_unwind(AssertUnwindSafe(|| klaw::runtime::block_on(rx.next())));
    assert!(first.is_err(), "the clone's panic comes through poll_next");
    assert_eq!(klaw::runtime::block_on(rx.next()), Some(Ok(PanicsOnClone(2))));
    drop(tx);
    assert_eq!(klaw::runtime::block_on(rx.next()), None);
    assert_eq!(other.try_recv(), Ok(PanicsOnClone(1)));
}

// ---- Watch.

#[test]
fn watch_send_modify_changes_in_place_and_tells_the_receivers() {
    let (tx, mut rx) = watch::channel(vec![1]);
    let waker = counting_waker();
    {
        let mut changed = pin!(rx.changed());
        assert!(changed.as_mut().poll(&mut waker.cx()).is_pending());
        tx.send_modify(|list| list.push(2));
        assert_eq!(waker.woken(), 1);
        assert_eq!(changed.poll(&mut waker.cx()), Poll::Ready(Ok(())));
    }
    assert_eq!(*rx.borrow_and_update(), [1, 2]);
    drop(rx);
    tx.send_modify(|list| list.push(3)); // nobody watches: still modified
    assert_eq!(*tx.borrow(), [1, 2, 3]);
}

#[test]
fn watch_a_send_modify_that_panics_keeps_its_changes_and_tells_nobody() {
    let (tx, mut rx) = watch::channel("one");
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        tx.send_modify(|value| {
            *value = "panicked";
            panic!("in send_modify");
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(*rx.borrow(), "panicked");
    assert_eq!(rx.has_changed(), Ok(false), "the receivers were not told");
    tx.send_modify(|value| *value = "three");
    assert_eq!(rx.has_changed(), Ok(true));
    assert_eq!(*rx.borrow_and_update(), "three");
}

#[test]
fn watch_send_if_modified_tells_the_receivers_only_when_it_returns_true() {
    let (tx, mut rx) = watch::channel(0u32);
    let waker = counting_waker();
    {
        let mut changed = pin!(rx.changed());
        assert!(changed.as_mut().poll(&mut waker.cx()).is_pending());
        let modified = tx.send_if_modified(|n| {
            *n += 1; // changed, but said not to be
            false
        });
        assert!(!modified);
        assert_eq!(*tx.borrow(), 1);
        assert_eq!(waker.woken(), 0, "false: nobody is told");
        assert!(changed.as_mut().poll(&mut waker.cx()).is_pending());
        assert!(tx.send_if_modified(|n| {
            *n += 1;
            true
        }));
        assert_eq!(waker.woken(), 1);
        assert_eq!(changed.poll(&mut waker.cx()), Poll::Ready(Ok(())));
    }
    assert_eq!(*rx.borrow(), 2);
}

#[test]
fn watch_send_replace_returns_the_old_value_and_works_without_receivers() {
    let (tx, mut rx) = watch::channel(String::from("a"));
    assert_eq!(tx.send_replace("b".into()), "a");
    assert_eq!(rx.has_changed(), Ok(true), "the receivers are told");
    assert_eq!(*rx.borrow_and_update(), "b");
    drop(rx);
    assert!(tx.send("refused".into()).is_err(), "send needs a receiver");
    assert_eq!(tx.send_replace("c".into()), "b", "send_replace does not");
    let rx = tx.subscribe();
    assert_eq!(*rx.borrow(), "c");
    assert_eq!(rx.has_changed(), Ok(false));
}

#[test]
fn watch_wait_for_checks_the_current_value_first_and_marks_it_seen() {
    let (tx, mut rx) = watch::channel(5u32);
    tx.send(6).unwrap();
    let checked = {
        let mut checked = Vec::new();
        let value = klaw::runtime::block_on(rx.wait_for(|n| {
            checked.push(*n);
            *n > 5
        }))
        .unwrap();
        assert_eq!(*value, 6);
        checked
    };
    assert_eq!(checked, [6], "the current value satisfied it: no wait");
    assert_eq!(rx.has_changed(), Ok(false), "the value it returned is marked seen");
}

#[test]
fn watch_wait_for_waits_through_changes_until_the_predicate_holds() {
    within(Duration::from_secs(10), || {
        let (tx, mut rx) = watch::channel(0u32);
        let sender = std::thread::spawn(move || {
            for n in 1..=5 {
                std::thread::sleep(Duration::from_millis(2));
                tx.send(n).unwrap();
            }
            tx // kept alive until joined: no Closed
        });
        let mut checked = Vec::new();
        let value = *klaw::runtime::block_on(rx.wait_for(|n| {
            checked.push(*n);
            *n >= 3
        }))
        .unwrap();
        let _tx = sender.join().unwrap();
        assert!(value >= 3);
        assert_eq!(checked.first(), Some(&0));
        assert!(checked.windows(2).all(|w| w[0] < w[1]), "each value checked once: {checked:?}");
        assert!(checked.iter().rev().skip(1).all(|n| *n < 3), "stopped at the first match");
    });
}

#[test]
fn watch_wait_for_reports_closed_unless_the_last_value_satisfies_it() {
    let (tx, mut rx) = watch::channel("A");
    tx.send("B").unwrap();
    drop(tx);
    let found = klaw::runtime::block_on(rx.wait_for(|v| *v == "B")).map(|v| *v);
    assert_eq!(found, Ok("B"), "the sender is gone, its last value still counts");
    let missing = klaw::runtime::block_on(rx.wait_for(|v| *v == "C")).map(|v| *v);
    assert_eq!(missing, Err(RecvError::Closed));
}

#[test]
fn watch_mark_changed_makes_the_next_changed_return_at_once_for_that_receiver_only() {
    let (tx, mut rx) = watch::channel("one");
    let mut other = rx.clone();
    rx.mark_changed();
    rx.mark_changed(); // twice: still one change to see
    assert_eq!(rx.has_changed(), Ok(true));
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Ok(())));
    assert!(poll_noop(pin!(rx.changed())).is_pending(), "seen now");
    assert_eq!(other.has_changed(), Ok(false), "a clone is not marked");
    assert!(poll_noop(pin!(other.changed())).is_pending());
    other.mark_changed();
    assert_eq!(*other.borrow_and_update(), "one");
    assert_eq!(other.has_changed(), Ok(false), "borrow_and_update marks it seen");
    // Marked changed, the sender gone: the change is seen before Closed.
    rx.mark_changed();
    drop(tx);
    assert_eq!(klaw::runtime::block_on(rx.changed()), Ok(()));
    assert_eq!(klaw::runtime::block_on(rx.changed()), Err(RecvError::Closed));
}

#[test]
fn watch_mark_unchanged_makes_a_sent_value_count_as_seen_without_reading_it() {
    let (tx, mut rx) = watch::channel("one");
    let mut other = rx.clone();
    tx.send("two").unwrap();
    rx.mark_unchanged();
    assert_eq!(rx.has_changed(), Ok(false));
    assert!(poll_noop(pin!(rx.changed())).is_pending());
    assert_eq!(*rx.borrow(), "two", "the value is there, only marked seen");
    assert_eq!(other.has_changed(), Ok(true), "a clone is not marked");
    assert_eq!(poll_noop(pin!(other.changed())), Poll::Ready(Ok(())));
    rx.mark_changed();
    rx.mark_unchanged();
    assert_eq!(rx.has_changed(), Ok(false), "mark_unchanged undoes mark_changed");
}

#[test]
fn watch_sender_closed_and_is_closed_follow_the_receivers() {
    let (tx, rx) = watch::channel(0u32);
    let rx2 = rx.clone();
    assert!(!tx.is_closed());
    let waker = counting_waker();
    {
        let mut closed = pin!(tx.closed());
        assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
        drop(rx);
        assert_eq!(waker.woken(), 0, "a receiver is left");
        assert!(!tx.is_closed());
        drop(rx2);
        assert_eq!(waker.woken(), 1);
        assert!(tx.is_closed());
        assert_eq!(closed.poll(&mut waker.cx()), Poll::Ready(()));
    }
    assert!(tx.send(1).is_err());
    // Reopened by a new receiver.
    let rx = tx.subscribe();
    assert!(!tx.is_closed());
    assert!(poll_noop(pin!(tx.closed())).is_pending());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(poll_noop(pin!(tx.closed())), Poll::Ready(()));
}

#[test]
fn watch_receiver_stream_yields_the_latest_after_each_change_then_ends() {
    let (tx, mut rx) = watch::channel(0u32);
    let waker = counting_waker();
    let next = |rx: &mut watch::Receiver<u32>| Pin::new(rx).poll_next(&mut waker.cx());
    assert_eq!(next(&mut rx), Poll::Pending, "the initial value counts as seen");
    for n in 1..=3 {
        tx.send(n).unwrap();
    }
    assert_eq!(waker.woken(), 1);
    assert_eq!(next(&mut rx), Poll::Ready(Some(3)), "1 and 2 are skipped");
    assert_eq!(next(&mut rx), Poll::Pending);
    tx.send(4).unwrap();
    drop(tx);
    assert_eq!(next(&mut rx), Poll::Ready(Some(4)), "a change before the end is still seen");
    assert_eq!(next(&mut rx), Poll::Ready(None));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn watch_a_receiver_stream_in_a_task_sees_the_last_value_and_ends() {
    let (tx, rx) = watch::channel(0u32);
    let watcher = klaw::Handle::current().unwrap().spawn(rx.collect::<Vec<_>>());
    for n in 1..=20 {
        tx.send(n).unwrap();
        klaw::task::consume_budget().await;
    }
    drop(tx);
    let seen = watcher.await.unwrap();
    assert_eq!(seen.last(), Some(&20));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order: {seen:?}");
}

/// A value and the version it belongs to are read together: a receiver's stream never yields
/// a value twice, even when a send lands between its seeing a change and its reading the value
/// (it used to read the newer value with the older version marked seen, then yield it again).
#[test]
fn watch_a_stream_racing_sends_never_yields_a_value_twice() {
    for _ in 0..300 {
        let (tx, rx) = watch::channel(0u32);
        let sender = std::thread::spawn(move || {
            for n in 1..=300 {
                tx.send(n).unwrap();
            }
        });
        let seen: Vec<u32> = klaw::runtime::block_on(rx.collect());
        sender.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "a value came twice: {seen:?}");
        assert_eq!(seen.last(), Some(&300));
    }
}

/// The same for `changed` then `borrow_and_update`, and for `has_changed`: after a change is
/// seen with the value read, the next change is a newer value.
#[test]
fn watch_borrow_and_update_racing_sends_never_sees_a_value_twice() {
    for _ in 0..300 {
        let (tx, mut rx) = watch::channel(0u32);
        let sender = std::thread::spawn(move || {
            for n in 1..=300 {
                tx.send(n).unwrap();
            }
        });
        let mut seen = Vec::new();
        while klaw::runtime::block_on(rx.changed()).is_ok() {
            seen.push(*rx.borrow_and_update());
        }
        sender.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "a value came twice: {seen:?}");
    }
}

/// channels.md: a watch's guard "holds the value's read lock, so a send waits until it is
/// dropped". A send on another thread does not end while a receiver's guard lives, and ends
/// once it is dropped, with the value the guard showed unchanged until then.
#[test]
fn a_watch_send_waits_until_the_receivers_guard_is_dropped() {
    within(Duration::from_secs(10), || {
        let (tx, rx) = watch::channel(1u32);
        let guard = rx.borrow();
        let sent = Arc::new(AtomicBool::new(false));
        let sender = {
            let sent = sent.clone();
            std::thread::spawn(move || {
                tx.send(2).unwrap();
                sent.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!sent.load(Ordering::SeqCst), "the send ended while a guard was held");
        assert_eq!(*guard, 1);
        drop(guard);
        sender.join().unwrap();
        assert_eq!(*rx.borrow(), 2);
    });
}

/// A watch handle's `Debug` shows the value, and never waits for the lock: formatting one while
/// this thread holds a guard and a send waits for it shows `<locked>` (a read there could wait
/// for the send, which waits for the guard).
#[test]
fn a_watch_handles_debug_shows_the_value_and_never_waits_for_a_waiting_send() {
    within(Duration::from_secs(10), || {
        let (tx, rx) = watch::channel(7u32);
        assert_eq!(format!("{tx:?}"), "watch::Sender { value: 7 }");
        assert_eq!(format!("{rx:?}"), "watch::Receiver { value: 7 }");
        let guard = rx.borrow();
        let sender = std::thread::spawn(move || tx.send(8).unwrap());
        std::thread::sleep(Duration::from_millis(50)); // the send waits for the guard now
        let shown = format!("{rx:?}");
        assert!(
            shown == "watch::Receiver { value: <locked> }"
                || shown == "watch::Receiver { value: 7 }",
            "{shown}"
        );
        drop(guard);
        sender.join().unwrap();
        assert_eq!(format!("{rx:?}"), "watch::Receiver { value: 8 }");
    });
}

// ---- Wakers that come back into their channel (see `channel_edges` for the receivers'
// wakers of every channel). Each scenario deadlocks if a waker is dropped or woken while the
// channel holds the lock its hook takes.

/// A sender's hook: fills the channel, then polls one more send, which waits in line (taking
/// the senders' wait-list lock) and leaves it when dropped (taking it again).
fn fill_then_wait_in_line(tx: &Sender<u32>) {
    loop {
        match poll_into_line(pin!(tx.send(99))) {
            Poll::Ready(Ok(())) => continue,
            Poll::Ready(Err(_)) | Poll::Pending => return,
        }
    }
}

#[test]
fn mpmc_a_waiting_senders_waker_that_reenters_the_channel_does_not_deadlock() {
    for capacity in [1, GROWING] {
        without_deadlock(move || {
            let (tx, rx) = bounded::<u32>(capacity);
            fill(&tx);
            let hooked = || {
                let tx = tx.clone();
                move || fill_then_wait_in_line(&tx)
            };
            {
                let mut send = pin!(tx.send(1));
                assert!(poll_into_line(send.as_mut()).is_pending(), "full: it waits");
                assert!(poll_with_hook(send.as_mut(), hooked()).is_pending());
                // Polled again with another waker: the first one is dropped.
                assert!(poll_with_hook(send.as_mut(), hooked()).is_pending());
                // A receive frees a place and wakes it: the hook takes that place.
                assert_eq!(rx.try_recv(), Ok(0));
                assert!(
                    poll_with_hook(send.as_mut(), hooked()).is_pending(),
                    "the hook ran and took the place, so the send waits again"
                );
            } // dropped while waiting: its waker is dropped
            while rx.try_recv().is_ok() {}

            // Closing wakes a waiting sender. On a closed channel a send no longer waits, so
            // this hook drops another waiting send, which leaves the line (the lock).
            fill(&tx);
            let spare_tx: &'static Sender<u32> = Box::leak(Box::new(tx.clone()));
            let mut spare = Box::pin(spare_tx.send(2));
            assert!(poll_into_line(spare.as_mut()).is_pending());
            let spare = Arc::new(Mutex::new(Some(spare)));
            let mut send = pin!(tx.send(3));
            let hook = move || drop(spare.lock().unwrap().take());
            assert!(poll_into_line(send.as_mut()).is_pending());
            assert!(poll_with_hook(send.as_mut(), hook).is_pending());
            rx.close();
            assert_eq!(poll_noop(send), Poll::Ready(Err(SendError(3))));
        });
    }
}

/// A receiver's hook: receives until the channel is empty, then polls one more `recv`, which
/// waits in line (taking the receivers' wait-list lock) and leaves it when dropped (again).
fn drain_then_wait_in_line(rx: &Receiver<u32>) {
    while let Poll::Ready(Ok(_)) = poll_into_line(pin!(rx.recv())) {}
}

#[test]
fn mpmc_a_waiting_receivers_waker_that_waits_in_line_itself_does_not_deadlock() {
    // `channel_edges` has a receiver's hook that sends; this one takes the receivers' lock
    // whatever the channel holds, so it also catches a wake or a drop under that lock when
    // the receiver is notified, leaves the line, or is woken by the close.
    for capacity in [Some(1), Some(GROWING), None] {
        without_deadlock(move || {
            let (tx, rx) = capacity.map_or_else(unbounded::<u32>, bounded);
            let hooked = || {
                let rx = rx.clone();
                move || drain_then_wait_in_line(&rx)
            };
            {
                let mut recv = pin!(rx.recv());
                assert!(poll_into_line(recv.as_mut()).is_pending(), "empty: it waits");
                assert!(poll_with_hook(recv.as_mut(), hooked()).is_pending());
                assert!(poll_with_hook(recv.as_mut(), hooked()).is_pending()); // replaces
                tx.try_send(1).unwrap(); // wakes it: the hook takes the message
                assert!(
                    poll_with_hook(recv.as_mut(), hooked()).is_pending(),
                    "the hook ran and took the message, so the recv waits again"
                );
            } // dropped while waiting: its waker is dropped
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

            // Closing wakes a waiting receiver. On a closed channel a recv no longer waits, so
            // this hook drops another waiting recv, which leaves the line (the lock).
            let spare_rx: &'static Receiver<u32> = Box::leak(Box::new(rx.clone()));
            let mut spare = Box::pin(spare_rx.recv());
            assert!(poll_into_line(spare.as_mut()).is_pending());
            let spare = Arc::new(Mutex::new(Some(spare)));
            let mut recv = pin!(rx.recv());
            let hook = move || drop(spare.lock().unwrap().take());
            assert!(poll_into_line(recv.as_mut()).is_pending());
            assert!(poll_with_hook(recv.as_mut(), hook).is_pending());
            tx.close();
            assert_eq!(poll_noop(recv), Poll::Ready(Err(RecvError::Closed)));
        });
    }
}

/// A `closed()` future's waker through its whole life, each waker running the hook `hooked`
/// makes when it is woken or dropped: registered, replaced, removed with the future; then
/// registered again and woken by `close`.
fn closed_waker_life<F, H>(closed: impl Fn() -> F, hooked: impl Fn() -> H, close: impl FnOnce())
where
    F: Future<Output = ()>,
    H: Fn() + Send + Sync + 'static,
{
    {
        let mut first = pin!(closed());
        assert!(poll_with_hook(first.as_mut(), hooked()).is_pending());
        assert!(poll_with_hook(first.as_mut(), hooked()).is_pending()); // replaces
    } // dropped while waiting: its waker is removed
    let mut second = pin!(closed());
    assert!(poll_with_hook(second.as_mut(), hooked()).is_pending());
    close();
    assert_eq!(poll_noop(second), Poll::Ready(()));
}

#[test]
fn mpmc_sender_closed_wakers_that_reenter_the_channel_do_not_deadlock() {
    without_deadlock(|| {
        let (tx, rx) = bounded::<u32>(1);
        // Polls a `closed` future and drops it: both take the closed waiters' lock.
        let hooked = || {
            let tx = tx.clone();
            move || {
                let _ = poll_noop(pin!(tx.closed()));
            }
        };
        closed_waker_life(|| tx.closed(), hooked, || drop(rx) /* closes: wakes it */);
    });
}

#[test]
fn broadcast_sender_closed_wakers_that_reenter_the_channel_do_not_deadlock() {
    without_deadlock(|| {
        let (tx, rx) = broadcast::channel::<u32>(1);
        let tx = Arc::new(tx);
        let hooked = || {
            let tx = tx.clone();
            move || {
                let _ = tx.receiver_count(); // takes the channel's lock
            }
        };
        closed_waker_life(
            || tx.closed(),
            hooked,
            || drop(rx), /* the last receiver: wakes it */
        );
    });
}

#[test]
fn watch_sender_closed_wakers_that_reenter_the_channel_do_not_deadlock() {
    without_deadlock(|| {
        let (tx, rx) = watch::channel(0u32);
        let tx = Arc::new(tx);
        let hooked = || {
            let tx = tx.clone();
            move || {
                let _ = tx.receiver_count();
            }
        };
        closed_waker_life(|| tx.closed(), hooked, || drop(rx));
    });
}

#[test]
fn oneshot_sender_closed_wakers_that_reenter_the_channel_do_not_deadlock() {
    without_deadlock(|| {
        let (mut tx, rx) = oneshot::channel::<u32>();
        // While `closed` borrows the sender, the hooks come back through the receiver.
        let rx = Arc::new(rx);
        let hooked = || {
            let rx = rx.clone();
            move || {
                let _ = rx.is_empty(); // takes the channel's lock
            }
        };
        {
            let mut closed = pin!(tx.closed());
            assert!(poll_with_hook(closed.as_mut(), hooked()).is_pending());
            assert!(poll_with_hook(closed.as_mut(), hooked()).is_pending()); // replaces
        } // removed
        let mut rx = Arc::into_inner(rx).expect("every hooked waker was dropped");

        // Woken by the receiver's close: the hook needs the sender, so the pending `closed` is
        // forgotten (its waker stays registered) and the sender handed to the hook.
        let sender = Arc::new(OnceLock::<oneshot::Sender<u32>>::new());
        let hook = {
            let sender = sender.clone();
            move || {
                if let Some(tx) = sender.get() {
                    let _ = tx.is_closed();
                }
            }
        };
        let mut closed = tx.closed();
        assert!(poll_with_hook(Pin::new(&mut closed), hook).is_pending());
        std::mem::forget(closed);
        sender.set(tx).unwrap();
        rx.close();
        assert!(sender.get().unwrap().is_closed());
    });
}

#[test]
fn oneshot_a_receivers_waker_woken_by_send_or_by_the_senders_drop_does_not_deadlock() {
    for send in [true, false] {
        without_deadlock(move || {
            let (tx, rx) = oneshot::channel::<u32>();
            let rx = Arc::new(Mutex::new(rx));
            let hook = {
                let rx = rx.clone();
                move || {
                    let _ = rx.lock().unwrap().is_empty(); // takes the channel's lock
                }
            };
            let polled = poll_with_hook(Pin::new(&mut *rx.lock().unwrap()), hook);
            assert!(polled.is_pending());
            let expected = if send {
                tx.send(1).unwrap(); // wakes it
                Ok(1)
            } else {
                drop(tx); // wakes it
                Err(RecvError::Closed)
            };
            assert_eq!(poll_noop(Pin::new(&mut *rx.lock().unwrap())), Poll::Ready(expected));
        });
    }
}
