//! The MPMC channel's reservation API and its `Sink`, at their edges, after tokio's
//! `sync_mpsc.rs` cases for `reserve` and tokio-util's `PollSender`: a permit dropped unused
//! gives its place back and wakes whoever waits for one (a `send`, a `reserve`, a `Sink`), on the
//! ring and on the growing buffer; `capacity()`, `len()` and `is_full()` while permits are out;
//! permits on an unbounded channel; a permit held across a close or the last receiver's drop;
//! reserves dropped while they wait leak no place; permits and sinks racing receivers on other
//! threads deliver every value once and never queue more than the capacity; and the `Sink`'s
//! `poll_ready` / `start_send` / `poll_flush` / `poll_close` contract, `send_all` included.
//!
//! Where klaw's docs are silent, a test asserts what a demanding tokio user would expect, and
//! says so.

#[path = "common/reenter.rs"]
mod reenter;

mod common;

use std::collections::HashSet;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use common::{DEADLINE, within};
use futures_util::{Sink, SinkExt};
use klaw::channel::{
    Permit, RecvError, Reserve, SendError, Sender, TryRecvError, TrySendError, bounded, unbounded,
};
use reenter::{counting_waker, poll_into_line, poll_noop};

/// Polls the sink's `poll_ready` once with `cx`.
fn ready_with<T>(
    tx: &mut Sender<T>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), SendError<Option<T>>>> {
    Pin::new(tx).poll_ready(cx)
}

/// Polls the sink's `poll_ready` once with a waker that does nothing.
fn ready_noop<T>(tx: &mut Sender<T>) -> Poll<Result<(), SendError<Option<T>>>> {
    ready_with(tx, &mut Context::from_waker(std::task::Waker::noop()))
}

/// A capacity on the ring, and one on the growing buffer (above 4096).
const CAPACITIES: [usize; 2] = [3, 5000];

// ---- Places given back.

/// Compile-time: permits and reserve futures cross threads (a task holding one may move between
/// workers), as tokio's do.
#[test]
fn permits_and_reserve_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Permit<'static, String>>();
    send_sync::<Reserve<'static, String>>();
    send_sync::<Sender<String>>();
}

/// tokio `drop_permit_releases_permit`, with a `send` waiting instead of a reserve: the place a
/// dropped permit gives back goes to the sender waiting in line, on the ring and on the growing
/// buffer.
#[test]
fn a_dropped_permit_wakes_a_send_waiting_for_its_place() {
    within(DEADLINE, || {
        for cap in CAPACITIES {
            let (tx, rx) = bounded::<usize>(cap);
            for i in 0..cap - 1 {
                tx.try_send(i).unwrap();
            }
            let permit = klaw::runtime::block_on(tx.reserve()).unwrap();
            assert_eq!(
                tx.try_send(99),
                Err(TrySendError::Full(99)),
                "cap {cap}: the permit's place counts"
            );
            let waker = counting_waker();
            let mut send = pin!(tx.send(cap));
            assert!(poll_into_line(send.as_mut()).is_pending(), "cap {cap}: full");
            // Now in line with the counting waker.
            assert!(send.as_mut().poll(&mut waker.cx()).is_pending());
            drop(permit);
            assert!(waker.woken() >= 1, "cap {cap}: the dropped permit woke the waiting send");
            assert_eq!(send.as_mut().poll(&mut waker.cx()), Poll::Ready(Ok(())), "cap {cap}");
            assert_eq!(rx.len(), cap, "cap {cap}");
            let got: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
            assert_eq!(got, (0..cap - 1).chain([cap]).collect::<Vec<_>>(), "cap {cap}");
        }
    });
}

/// A `Sink` whose `poll_ready` waits is woken by a dropped permit, and its `start_send` then
/// delivers (tokio-util's `PollSender` over tokio's permits does the same).
#[test]
fn a_dropped_permit_wakes_a_sink_waiting_in_poll_ready() {
    within(DEADLINE, || {
        for cap in CAPACITIES {
            let (mut tx, rx) = bounded::<usize>(cap);
            let holder = tx.clone();
            let mut permits: Vec<_> =
                (0..cap).map(|_| klaw::runtime::block_on(holder.reserve()).unwrap()).collect();
            let waker = counting_waker();
            assert!(
                ready_with(&mut tx, &mut waker.cx()).is_pending(),
                "cap {cap}: every place reserved"
            );
            permits.pop();
            assert!(waker.woken() >= 1, "cap {cap}: the sink was woken");
            assert!(
                matches!(ready_with(&mut tx, &mut waker.cx()), Poll::Ready(Ok(()))),
                "cap {cap}"
            );
            Pin::new(&mut tx).start_send(7).unwrap();
            assert_eq!(rx.try_recv(), Ok(7), "cap {cap}");
            drop(permits);
            assert!(!tx.is_full(), "cap {cap}: every place back");
        }
    });
}

/// Reserve futures dropped while they wait (some woken, some not) leak no place: afterwards the
/// whole capacity can be filled again, on the ring and the growing buffer.
#[test]
fn reserves_dropped_while_waiting_leak_no_place() {
    within(DEADLINE, || {
        for cap in CAPACITIES {
            let (tx, rx) = bounded::<usize>(cap);
            for i in 0..cap {
                tx.try_send(i).unwrap();
            }
            let mut waiting: Vec<_> = (0..8).map(|_| Box::pin(tx.reserve())).collect();
            for reserve in &mut waiting {
                assert!(poll_noop(reserve.as_mut()).is_pending(), "cap {cap}: full");
            }
            // Two places free: the two oldest reserves are woken; all are dropped unpolled.
            assert_eq!(rx.try_recv(), Ok(0));
            assert_eq!(rx.try_recv(), Ok(1));
            drop(waiting);
            assert!(!tx.is_full(), "cap {cap}: no place held by a dropped reserve");
            assert_eq!(tx.try_send(100), Ok(()), "cap {cap}");
            assert_eq!(tx.try_send(101), Ok(()), "cap {cap}");
            assert_eq!(tx.try_send(102), Err(TrySendError::Full(102)), "cap {cap}");
            while rx.try_recv().is_ok() {}
            for i in 0..cap {
                assert_eq!(tx.try_send(i), Ok(()), "cap {cap}: place {i} is free again");
            }
            assert!(tx.is_full());
        }
    });
}

/// tokio `test_tx_capacity` translated: klaw's `capacity()` is the stored capacity (its doc), so
/// it does not move while permits are out; `len()` counts messages only, and `is_full()` counts
/// permits' places too. Using a permit moves its place from "reserved" to "queued".
#[test]
fn capacity_stays_stored_while_permits_are_out_and_is_full_counts_them() {
    within(DEADLINE, || {
        for cap in CAPACITIES {
            let (tx, rx) = bounded::<usize>(cap);
            let permits: Vec<_> =
                (0..cap).map(|_| klaw::runtime::block_on(tx.reserve()).unwrap()).collect();
            assert_eq!(tx.capacity(), Some(cap), "cap {cap}");
            assert_eq!(rx.capacity(), Some(cap), "cap {cap}");
            assert_eq!((tx.len(), rx.len()), (0, 0), "cap {cap}: permits are not messages");
            assert!(tx.is_full() && !rx.is_full(), "cap {cap}");
            assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)), "cap {cap}");
            assert_eq!(tx.force_send(1), Err(TrySendError::Full(1)), "cap {cap}");
            for (i, permit) in permits.into_iter().enumerate() {
                permit.send(i).unwrap();
                assert_eq!(tx.len(), i + 1, "cap {cap}");
                assert!(tx.is_full(), "cap {cap}: still every place taken");
            }
            assert!(rx.is_full(), "cap {cap}");
            assert_eq!(tx.capacity(), Some(cap));
        }
    });
}

/// On an unbounded channel a reserve never waits and reserves nothing countable; a permit held
/// across `close` gives its value back (the same promise as a bounded channel's, `Permit::send`).
#[test]
fn unbounded_permits_never_wait_and_fail_after_close_with_the_value_back() {
    within(DEADLINE, || {
        let (tx, rx) = unbounded::<u32>();
        let permits: Vec<_> =
            (0..1000).map(|_| klaw::runtime::block_on(tx.reserve()).unwrap()).collect();
        assert!(!tx.is_full());
        assert_eq!(tx.capacity(), None);
        tx.try_send(1).unwrap();
        let mut permits = permits.into_iter();
        permits.next().unwrap().send(2).unwrap();
        drop(permits.next());
        assert!(rx.close());
        assert_eq!(permits.next().unwrap().send(3), Err(SendError(3)));
        assert!(klaw::runtime::block_on(tx.reserve()).is_err(), "closed: no new permit");
        drop(permits);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

/// A permit held while the last receiver goes gives its value back (`Permit::send`'s doc: "the
/// channel closed meanwhile"), and a reserve waiting then fails instead of waiting forever.
#[test]
fn a_permit_held_across_the_last_receivers_drop_gives_its_value_back() {
    within(DEADLINE, || {
        for cap in CAPACITIES {
            let (tx, rx) = bounded::<String>(cap);
            let mut permits: Vec<_> =
                (0..cap).map(|_| klaw::runtime::block_on(tx.reserve()).unwrap()).collect();
            let waiting = std::thread::scope(|s| {
                let waiter = s.spawn(|| klaw::runtime::block_on(tx.reserve()).map(drop));
                std::thread::sleep(std::time::Duration::from_millis(20));
                drop(rx);
                waiter.join().unwrap()
            });
            assert_eq!(waiting, Err(SendError(())), "cap {cap}: the waiting reserve failed");
            assert!(tx.is_closed());
            let permit = permits.pop().unwrap();
            assert_eq!(permit.send("kept".to_string()), Err(SendError("kept".to_string())));
            drop(permits);
            assert!(!tx.is_full(), "cap {cap}: the dropped permits' places came back");
        }
    });
}

/// A permit reserved on one thread and used on another wakes a receiver waiting on a third.
#[test]
fn a_permit_sent_from_another_thread_wakes_a_waiting_receiver() {
    within(DEADLINE, || {
        let (tx, rx) = bounded::<u32>(1);
        std::thread::scope(|s| {
            let receiver = s.spawn(|| klaw::runtime::block_on(rx.recv()));
            let permit = klaw::runtime::block_on(tx.reserve()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            s.spawn(move || permit.send(5).unwrap()).join().unwrap();
            assert_eq!(receiver.join().unwrap(), Ok(5));
        });
    });
}

// ---- The Sink.

/// tokio-util's `PollSender`: `poll_ready` that is already ready holds its one place and reserves
/// no second one however often it is polled again.
#[test]
fn sink_poll_ready_twice_holds_one_place() {
    let (mut tx, rx) = bounded::<u32>(2);
    assert!(matches!(ready_noop(&mut tx), Poll::Ready(Ok(()))));
    assert!(matches!(ready_noop(&mut tx), Poll::Ready(Ok(()))));
    assert_eq!(tx.try_send(1), Ok(()), "one place is left");
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)), "the sink holds the other");
    Pin::new(&mut tx).start_send(3).unwrap();
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(1), Ok(3)));
    assert!(!tx.is_full());
}

/// Dropping a `Sender` whose sink holds a place gives it back and wakes a `send` waiting for it.
#[test]
fn a_dropped_sender_with_a_ready_sink_wakes_a_waiting_send() {
    within(DEADLINE, || {
        let (tx, rx) = bounded::<u32>(1);
        let mut sink = tx.clone();
        assert!(matches!(ready_noop(&mut sink), Poll::Ready(Ok(()))));
        let waker = counting_waker();
        let mut send = pin!(tx.send(1));
        assert!(poll_into_line(send.as_mut()).is_pending(), "the sink holds the only place");
        assert!(send.as_mut().poll(&mut waker.cx()).is_pending());
        drop(sink);
        assert!(waker.woken() >= 1, "the sink's place went to the waiting send");
        assert_eq!(send.as_mut().poll(&mut waker.cx()), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(1));
    });
}

/// The `Sink` doc: "A `poll_ready` still waiting keeps no freed place from other senders": a sink
/// left waiting and never polled again does not keep the freed place from a reserve waiting
/// behind it; polled later, it waits again and is woken by the next place that frees.
#[test]
fn a_sink_left_waiting_keeps_no_place_from_a_reserve_behind_it_and_waits_again() {
    within(DEADLINE, || {
        let (mut sink, rx) = bounded::<u32>(1);
        let tx = sink.clone();
        tx.try_send(0).unwrap();
        let sink_waker = counting_waker();
        assert!(ready_with(&mut sink, &mut sink_waker.cx()).is_pending());
        let reserve_waker = counting_waker();
        let mut reserve = pin!(tx.reserve());
        assert!(reserve.as_mut().poll(&mut reserve_waker.cx()).is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        assert!(reserve_waker.woken() >= 1, "the reserve behind the idle sink was woken");
        let Poll::Ready(Ok(permit)) = reserve.as_mut().poll(&mut reserve_waker.cx()) else {
            panic!("the reserve takes the freed place");
        };
        // The sink, polled now, finds no place and waits again.
        let before = sink_waker.woken();
        assert!(ready_with(&mut sink, &mut sink_waker.cx()).is_pending());
        permit.send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(sink_waker.woken() > before, "the sink is woken by the next freed place");
        assert!(matches!(ready_with(&mut sink, &mut sink_waker.cx()), Poll::Ready(Ok(()))));
        Pin::new(&mut sink).start_send(2).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
    });
}

/// `abort_send` on a sink waiting in line, after the place it was woken for freed: the place is
/// not lost, a `send` waiting behind it gets it.
#[test]
fn abort_send_of_a_woken_sink_passes_the_place_to_a_waiting_send() {
    within(DEADLINE, || {
        let (mut sink, rx) = bounded::<u32>(1);
        let tx = sink.clone();
        tx.try_send(0).unwrap();
        assert!(ready_noop(&mut sink).is_pending());
        let waker = counting_waker();
        let mut send = pin!(tx.send(1));
        assert!(poll_into_line(send.as_mut()).is_pending());
        assert!(send.as_mut().poll(&mut waker.cx()).is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        assert!(sink.abort_send(), "the sink was in line");
        assert!(waker.woken() >= 1, "the send got the freed place");
        assert_eq!(send.as_mut().poll(&mut waker.cx()), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(!sink.abort_send());
    });
}

/// `send_all` over a channel closed before it starts fails at once with `SendError(None)` (the
/// `Sink`'s error carries a value only when `start_send` had one) and sends nothing.
#[test]
fn send_all_over_a_closed_channel_fails_with_no_item_and_sends_nothing() {
    within(DEADLINE, || {
        let (mut tx, rx) = bounded::<u32>(4);
        rx.close();
        let mut items = futures_lite::stream::iter((0..3).map(Ok::<u32, SendError<Option<u32>>>));
        let sent = klaw::runtime::block_on(tx.send_all(&mut items));
        assert_eq!(sent, Err(SendError(None)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        // flush and close of a closed sink still succeed (nothing is buffered in the sink).
        assert_eq!(klaw::runtime::block_on(tx.flush()), Ok(()));
        assert_eq!(klaw::runtime::block_on(SinkExt::close(&mut tx)), Ok(()));
    });
}

/// `send_all` into a receiver that closes half-way: every item before the close is received
/// exactly once and in order, the stream's remaining items are not, and `send_all` fails.
#[test]
fn send_all_into_a_receiver_that_closes_half_way_delivers_a_prefix_and_fails() {
    within(DEADLINE, || {
        let (mut tx, rx) = bounded::<u32>(2);
        let got = std::thread::scope(|s| {
            let consumer = s.spawn(|| {
                let mut got = Vec::new();
                for _ in 0..50 {
                    got.push(klaw::runtime::block_on(rx.recv()).unwrap());
                }
                rx.close();
                while let Ok(v) = rx.try_recv() {
                    got.push(v);
                }
                got
            });
            let mut items =
                futures_lite::stream::iter((0..1000).map(Ok::<u32, SendError<Option<u32>>>));
            let sent = klaw::runtime::block_on(tx.send_all(&mut items));
            assert!(sent.is_err(), "the channel closed under send_all");
            consumer.join().unwrap()
        });
        assert!(got.len() >= 50);
        assert_eq!(got, (0..got.len() as u32).collect::<Vec<_>>(), "a prefix, in order, once each");
        assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed));
    });
}

/// `poll_flush` with a place reserved but unused neither sends nor gives back the place (nothing
/// was given to the sink); `poll_close` closes the channel for everyone (the doc) and a later
/// `start_send` on the still-reserved place gives the item back.
#[test]
fn sink_flush_keeps_the_reserved_place_and_close_closes_for_everyone() {
    within(DEADLINE, || {
        let (mut tx, rx) = bounded::<u32>(1);
        let other = tx.clone();
        assert!(matches!(ready_noop(&mut tx), Poll::Ready(Ok(()))));
        assert_eq!(klaw::runtime::block_on(tx.flush()), Ok(()));
        assert_eq!(other.try_send(1), Err(TrySendError::Full(1)), "the sink still holds the place");
        assert_eq!(rx.len(), 0);
        assert!(matches!(ready_noop(&mut tx), Poll::Ready(Ok(()))));
        assert_eq!(
            klaw::runtime::block_on(futures_util::future::poll_fn(
                |cx| Pin::new(&mut tx).poll_close(cx)
            )),
            Ok(())
        );
        assert!(other.is_closed() && rx.is_closed());
        assert_eq!(Pin::new(&mut tx).start_send(2), Err(SendError(Some(2))));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

// ---- Racing threads.

/// Producers on several threads reserve and send, drop permits unused, cancel reserves that
/// wait, and feed a `Sink`, while receivers on other threads take: every sent value is received
/// exactly once, none lost, and `len()` never exceeds the capacity, on the ring and on the
/// growing buffer. Run on plain threads with `block_on`, so no executor hides a lost wake-up.
#[test]
fn permits_and_sinks_racing_receivers_deliver_every_value_once_within_capacity() {
    for cap in [1, 2, 4097] {
        within(DEADLINE, move || race(cap, 4, 2, 2000));
    }
}

fn race(cap: usize, producers: usize, consumers: usize, per_producer: usize) {
    let (tx, rx) = bounded::<usize>(cap);
    let over_capacity = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let got = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for p in 0..producers {
            let mut tx = tx.clone();
            s.spawn(move || {
                for i in 0..per_producer {
                    let value = p * per_producer + i;
                    match i % 4 {
                        0 | 1 => {
                            if i % 8 == 1 {
                                // A permit dropped unused, and a reserve cancelled after one poll.
                                drop(klaw::runtime::block_on(tx.reserve()).unwrap());
                                drop(poll_noop(pin!(tx.reserve())));
                            }
                            let permit = klaw::runtime::block_on(tx.reserve()).unwrap();
                            permit.send(value).unwrap();
                        }
                        2 => klaw::runtime::block_on(tx.feed(value)).unwrap(),
                        _ => klaw::runtime::block_on(tx.send(value)).unwrap(),
                    }
                }
            });
        }
        drop(tx);
        for _ in 0..consumers {
            let rx = rx.clone();
            let received = received.clone();
            handles.push(s.spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = klaw::runtime::block_on(rx.recv()) {
                    got.push(v);
                    received.fetch_add(1, Ordering::Relaxed);
                }
                got
            }));
        }
        {
            let (rx, over, done) = (&rx, over_capacity.clone(), done.clone());
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if rx.len() > cap {
                        over.store(true, Ordering::Relaxed);
                    }
                    std::hint::spin_loop();
                }
            });
        }
        let got: Vec<Vec<usize>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::Relaxed);
        got
    });
    let all: Vec<usize> = got.into_iter().flatten().collect();
    let total = producers * per_producer;
    assert_eq!(all.len(), total, "cap {cap}: every value received once");
    let unique: HashSet<usize> = all.iter().copied().collect();
    assert_eq!(unique.len(), total, "cap {cap}: no value twice");
    assert!(!over_capacity.load(Ordering::Relaxed), "cap {cap}: len exceeded the capacity");
    assert_eq!(received.load(Ordering::Relaxed), total);
}

// ---- select!'s send arms, which reserve a place before they send.

/// A `send` arm that loses to a ready sibling keeps no place: after each of 400 fair rounds
/// (and biased ones where it comes second) the channel it would have sent to has its place free.
#[test]
fn a_losing_send_arm_gives_its_place_back_every_round() {
    within(DEADLINE, || {
        klaw::runtime::block_on(async {
            let (tx, rx) = bounded::<u32>(1);
            let (other_tx, other_rx) = bounded::<u32>(1);
            let mut send_won = 0;
            for round in 0..400 {
                other_tx.try_send(round).unwrap();
                let won = klaw::select! {
                    send(tx, round) -> r => { r.unwrap(); true }
                    recv(other_rx) -> m => { assert_eq!(m, Ok(round)); false }
                };
                if won {
                    send_won += 1;
                    assert_eq!(rx.try_recv(), Ok(round));
                    assert_eq!(other_rx.try_recv(), Ok(round));
                }
                assert!(!tx.is_full(), "round {round}: the losing send arm kept its place");
                let lost = klaw::select! {
                    biased;
                    recv(other_rx) -> m => m.is_err(),
                    send(tx, round) -> r => { r.unwrap(); true }
                };
                assert!(lost, "the biased send arm sent although it came second");
                assert_eq!(rx.len(), 1);
                assert_eq!(rx.try_recv(), Ok(round), "the second select's send arm won");
            }
            assert!((100..=300).contains(&send_won), "the send arm won {send_won} of 400");
        });
    });
}

/// A `send` arm waiting in line that is woken for a freed place, and then loses to a sibling
/// that became ready meanwhile, passes the place on to the `send` waiting behind it (tokio's
/// `cancelled_reserve_wakes_closed_receiver`, through `select!`).
#[test]
fn a_woken_send_arm_that_loses_passes_the_place_to_the_next_sender() {
    within(DEADLINE, || {
        let (tx, rx) = bounded::<u32>(1);
        let (gate_tx, gate_rx) = bounded::<()>(1);
        tx.try_send(0).unwrap();
        let mut selecting = Box::pin(async {
            klaw::select! {
                biased;
                recv(gate_rx) -> _ => "gate",
                send(tx, 1) -> r => { r.unwrap(); "send" }
            }
        });
        assert!(poll_noop(selecting.as_mut()).is_pending(), "nothing ready: both arms wait");
        let waker = counting_waker();
        let mut behind = pin!(tx.send(2));
        assert!(poll_into_line(behind.as_mut()).is_pending());
        assert!(behind.as_mut().poll(&mut waker.cx()).is_pending());
        assert_eq!(rx.try_recv(), Ok(0)); // wakes the send arm, first in line
        gate_tx.try_send(()).unwrap();
        assert_eq!(poll_noop(selecting.as_mut()), Poll::Ready("gate"));
        drop(selecting);
        assert!(waker.woken() >= 1, "the place went on to the send behind the losing arm");
        assert_eq!(behind.as_mut().poll(&mut waker.cx()), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(2));
        assert!(!tx.is_full());
    });
}

/// The same race between tasks of a two-worker runtime: producers reserve (some under a short
/// `fail_after`, so reserves are cancelled while they wait), feed their `Sink` and abort some of
/// its reservations, and consumers receive: every value sent arrives exactly once.
#[test]
fn tasks_reserving_under_timeouts_and_aborting_sinks_lose_no_value() {
    within(DEADLINE, || {
        let rt = common::runtime(2);
        let (tx, rx) = bounded::<usize>(2);
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for p in 0..4usize {
            let mut tx = tx.clone();
            let sent = sent.clone();
            handles.push(rt.spawn(async move {
                for i in 0..500 {
                    let value = p * 500 + i;
                    let delivered = match i % 3 {
                        0 => match klaw::cancel::fail_after(
                            std::time::Duration::from_micros(50),
                            tx.reserve(),
                        )
                        .await
                        {
                            Ok(Ok(permit)) => permit.send(value).is_ok(),
                            _ => false, // cancelled while waiting
                        },
                        1 => {
                            std::future::poll_fn(|cx| Pin::new(&mut tx).poll_ready(cx))
                                .await
                                .unwrap();
                            if i % 2 == 0 {
                                assert!(tx.abort_send());
                                false
                            } else {
                                Pin::new(&mut tx).start_send(value).is_ok()
                            }
                        }
                        _ => tx.send(value).await.is_ok(),
                    };
                    if delivered {
                        sent.lock().unwrap().push(value);
                    }
                }
            }));
        }
        drop(tx);
        let mut consumers = Vec::new();
        for _ in 0..2 {
            let rx = rx.clone();
            consumers.push(rt.spawn(async move {
                let mut got = Vec::new();
                while let Ok(v) = rx.recv().await {
                    got.push(v);
                }
                got
            }));
        }
        drop(rx);
        common::join_all(&rt, handles);
        let mut got: Vec<usize> = common::join_all(&rt, consumers).into_iter().flatten().collect();
        let mut sent = sent.lock().unwrap().clone();
        got.sort_unstable();
        sent.sort_unstable();
        assert_eq!(got, sent, "exactly the values sent, once each");
    });
}

/// tokio's `try_reserve_fails`: a second `try_reserve` on a channel of one place whose place a
/// permit holds is `Full`; the permit's send is received; a permit dropped unused gives its place
/// back to the next `try_reserve`. Then what tokio also promises and that test leaves out: a
/// closed channel's `try_reserve` is `Closed`, and an unbounded channel's never `Full`.
#[test]
fn try_reserve_is_full_while_a_permit_holds_the_place_and_closed_once_closed() {
    let (tx, rx) = bounded::<&str>(1);
    let permit = tx.try_reserve().unwrap();
    assert_eq!(tx.try_reserve().unwrap_err(), TrySendError::Full(()));
    assert_eq!(
        tx.try_send("pushed past the permit"),
        Err(TrySendError::Full("pushed past the permit"))
    );
    permit.send("foo").unwrap();
    assert_eq!(rx.try_recv(), Ok("foo"));
    let permit = tx.try_reserve().unwrap();
    drop(permit);
    let held = tx.try_reserve().unwrap();
    drop(rx); // the last receiver: the channel closes, and the held permit fails
    assert_eq!(tx.try_reserve().unwrap_err(), TrySendError::Closed(()));
    assert_eq!(held.send("late"), Err(SendError("late")));

    let (tx, _rx) = unbounded::<u32>();
    let permits: Vec<Permit<'_, u32>> = (0..100).map(|_| tx.try_reserve().unwrap()).collect();
    drop(permits);
    assert!(tx.close());
    assert_eq!(tx.try_reserve().unwrap_err(), TrySendError::Closed(()));
}
