//! Channels as a user sees them: typed results, values that come back, MPMC delivers each
//! message once, and every future is cancel-safe as documented.

mod common;
#[path = "common/reenter.rs"]
mod reenter;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_lite::StreamExt;
use futures_util::SinkExt;
use klaw::channel::{RecvError, SendError, TryRecvError, TrySendError, bounded, broadcast};

fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

/// `reenter::poll_into_line` for a boxed future.
fn poll_into_line<F: Future + std::fmt::Debug>(future: &mut Pin<Box<F>>) -> Poll<F::Output> {
    reenter::poll_into_line(future.as_mut())
}

#[test]
fn values_refused_by_a_full_or_closed_channel_come_back() {
    let (tx, rx) = klaw::channel::bounded::<String>(1);
    tx.try_send("a".into()).unwrap();
    assert_eq!(tx.try_send("b".into()), Err(TrySendError::Full("b".into())));
    drop(rx);
    assert_eq!(tx.try_send("c".into()), Err(TrySendError::Closed("c".into())));
    let error: SendError<String> = klaw::runtime::block_on(tx.send("d".into())).unwrap_err();
    assert_eq!(error.into_inner(), "d");
}

#[test]
fn a_closed_channel_still_delivers_what_it_queued() {
    let (tx, rx) = klaw::channel::bounded::<u32>(4);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    drop(tx);
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(klaw::runtime::block_on(rx.recv()), Ok(2));
    assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn capacity_is_stored_and_len_counts_the_queue() {
    let (tx, rx) = klaw::channel::bounded::<u8>(3);
    assert_eq!((tx.capacity(), rx.capacity()), (Some(3), Some(3)));
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!((tx.len(), rx.len(), tx.is_full()), (2, 2, false));
    tx.try_send(3).unwrap();
    assert!(tx.is_full());
}

#[test]
fn a_recv_dropped_after_a_message_was_handed_to_it_loses_nothing() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let mut first = Box::pin(rx.recv());
    assert!(poll_into_line(&mut first).is_pending()); // waiting: the next send goes straight to it
    tx.try_send(7).unwrap();
    drop(first); // cancelled before it saw the message
    assert_eq!(rx.try_recv(), Ok(7), "the handed-over message went back to the channel");
}

#[test]
fn a_message_handed_to_a_cancelled_recv_goes_to_the_next_waiting_receiver() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let rx2 = rx.clone();
    let mut first = Box::pin(rx.recv());
    let mut second = Box::pin(rx2.recv());
    assert!(poll_into_line(&mut first).is_pending());
    assert!(poll_into_line(&mut second).is_pending());
    tx.try_send(1).unwrap(); // to `first`, the oldest waiter
    drop(first);
    assert_eq!(poll_once(&mut second), Poll::Ready(Ok(1)));
}

#[test]
fn a_cancelled_send_delivers_nothing() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(1).unwrap();
    let mut blocked = Box::pin(tx.send(2));
    assert!(poll_into_line(&mut blocked).is_pending()); // full: it waits with its value
    drop(blocked);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "a cancelled send was delivered");
}

#[test]
fn a_waiting_send_completes_when_a_place_frees() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(1).unwrap();
    let mut blocked = Box::pin(tx.send(2));
    assert!(poll_into_line(&mut blocked).is_pending());
    assert_eq!(rx.try_recv(), Ok(1)); // its value moves into the freed place
    assert_eq!(poll_once(&mut blocked), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn a_recv_that_finds_nothing_yields_to_its_task_before_it_waits_in_line() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let waker = reenter::counting_waker();
    let mut recv = Box::pin(rx.recv());
    let mut cx = waker.cx();
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    assert_eq!(waker.woken(), 1, "it asked its task to poll it again");
    assert_eq!(format!("{recv:?}"), "Recv { waiting: false }", "not in the line yet");
    tx.try_send(5).unwrap();
    assert_eq!(recv.as_mut().poll(&mut cx), Poll::Ready(Ok(5)), "found on the next poll");
    assert_eq!(waker.woken(), 1, "nobody had to wake it");

    // A recv that finds nothing poll after poll waits in line after one yield (the yield
    // above paid, which is no reason for more), and from then on only a message (or the
    // close) wakes it.
    let mut recv = Box::pin(rx.recv());
    let mut polls = 0;
    while format!("{recv:?}") != "Recv { waiting: true }" {
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        polls += 1;
        assert!(polls <= 2, "it yielded {polls} times and still did not wait");
    }
    let before = waker.woken();
    assert!(recv.as_mut().poll(&mut cx).is_pending(), "waiting");
    assert_eq!(waker.woken(), before, "a waiting recv does not wake itself");
    tx.try_send(6).unwrap();
    assert_eq!(waker.woken(), before + 1, "the message woke it");
    assert_eq!(recv.as_mut().poll(&mut cx), Poll::Ready(Ok(6)));
}

#[test]
fn a_send_that_finds_no_place_yields_to_its_task_before_it_waits_in_line() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(1).unwrap();
    let waker = reenter::counting_waker();
    let mut cx = waker.cx();
    let mut send = Box::pin(tx.send(2));
    assert!(send.as_mut().poll(&mut cx).is_pending());
    assert_eq!(waker.woken(), 1, "it asked its task to poll it again");
    assert_eq!(format!("{send:?}"), "Send { waiting: false }", "not in the line yet");
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(())), "the freed place, next poll");
    assert_eq!(waker.woken(), 1, "nobody had to wake it");
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn a_waiting_send_gets_its_value_back_when_the_channel_closes() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(1).unwrap();
    let mut blocked = Box::pin(tx.send(2));
    assert!(poll_into_line(&mut blocked).is_pending());
    drop(rx);
    assert_eq!(poll_once(&mut blocked), Poll::Ready(Err(SendError(2))));
}

#[test]
fn reserve_holds_no_value_and_a_dropped_permit_gives_its_place_back() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let permit = klaw::runtime::block_on(tx.reserve()).unwrap();
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)), "the reserved place counts");
    drop(permit);
    tx.try_send(1).unwrap();
    let mut waiting = Box::pin(tx.reserve());
    assert!(poll_once(&mut waiting).is_pending());
    drop(waiting); // cancelled while waiting: nothing reserved, nothing lost
    assert_eq!(rx.try_recv(), Ok(1));
    let permit = klaw::runtime::block_on(tx.reserve()).unwrap();
    permit.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn a_woken_sender_that_lost_its_place_waits_at_the_front_of_the_line() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(0).unwrap();
    let mut one = Box::pin(tx.send(1));
    let mut two = Box::pin(tx.send(2));
    assert!(poll_into_line(&mut one).is_pending());
    assert!(poll_into_line(&mut two).is_pending());
    assert_eq!(rx.try_recv(), Ok(0)); // wakes `one`
    tx.try_send(3).unwrap(); // a sender that was not waiting takes the place first
    assert!(poll_once(&mut one).is_pending(), "no place: `one` waits again");
    assert_eq!(rx.try_recv(), Ok(3)); // wakes `one` again, not `two`
    assert!(poll_once(&mut two).is_pending());
    assert_eq!(poll_once(&mut one), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(poll_once(&mut two), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn a_wake_up_given_to_a_dropped_send_passes_to_the_next_sender() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(0).unwrap();
    let mut one = Box::pin(tx.send(1));
    let mut two = Box::pin(tx.send(2));
    assert!(poll_into_line(&mut one).is_pending());
    assert!(poll_into_line(&mut two).is_pending());
    assert_eq!(rx.try_recv(), Ok(0)); // a place: wakes `one`
    drop(one); // cancelled before it used it: `two` is woken instead
    assert_eq!(poll_once(&mut two), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn a_woken_receiver_that_lost_its_message_waits_at_the_front_of_the_line() {
    let (tx, rx) = klaw::channel::bounded::<u32>(4);
    let (rx1, rx2) = (rx.clone(), rx.clone());
    let mut one = Box::pin(rx1.recv());
    let mut two = Box::pin(rx2.recv());
    assert!(poll_into_line(&mut one).is_pending());
    assert!(poll_into_line(&mut two).is_pending());
    tx.try_send(1).unwrap(); // wakes `one`, the oldest
    assert_eq!(rx.try_recv(), Ok(1)); // a receiver that was not waiting takes it first
    assert!(poll_once(&mut one).is_pending(), "nothing left: `one` waits again");
    tx.try_send(2).unwrap(); // wakes `one` again, not `two`
    assert!(poll_once(&mut two).is_pending());
    assert_eq!(poll_once(&mut one), Poll::Ready(Ok(2)));
}

#[test]
fn waiting_senders_keep_their_order() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(0).unwrap();
    let mut one = Box::pin(tx.send(1));
    let mut two = Box::pin(tx.send(2));
    assert!(poll_into_line(&mut one).is_pending());
    assert!(poll_into_line(&mut two).is_pending());
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)), "full: the value comes back");
    assert_eq!(rx.try_recv(), Ok(0)); // frees a place and wakes `one`, the oldest
    assert_eq!(poll_once(&mut one), Poll::Ready(Ok(())));
    assert!(poll_once(&mut two).is_pending());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(poll_once(&mut two), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn mpmc_receivers_compete_each_message_is_received_once() {
    let (tx, rx) = klaw::channel::bounded::<u32>(8);
    let total = klaw::scope!(|s| {
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                s.spawn(async move {
                    let mut got = Vec::new();
                    while let Ok(value) = rx.recv().await {
                        got.push(value);
                    }
                    got
                })
            })
            .collect();
        drop(rx);
        for i in 0..1000 {
            tx.send(i).await?;
        }
        drop(tx);
        let mut all = Vec::new();
        for consumer in consumers {
            all.extend(consumer.await?);
        }
        Ok(all)
    })
    .unwrap();
    let mut sorted = total.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>(), "each message exactly once");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn receivers_are_streams_and_senders_are_sinks() {
    let (mut tx, rx) = klaw::channel::bounded::<u32>(2);
    let producer = klaw::Handle::current().unwrap().spawn(async move {
        for i in 0..10 {
            tx.send(i).await.unwrap(); // SinkExt::send: poll_ready reserves, start_send uses it
        }
        SinkExt::close(&mut tx).await.unwrap();
    });
    let got: Vec<u32> = rx.collect().await;
    producer.await.unwrap();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn broadcast_every_receiver_sees_every_message_and_a_slow_one_lags() {
    let (tx, mut fast) = klaw::channel::broadcast::channel::<u32>(4);
    let mut slow = tx.subscribe();
    for i in 0..4 {
        tx.send(i).unwrap();
        assert_eq!(fast.recv().await, Ok(i));
    }
    for i in 4..10 {
        tx.send(i).unwrap();
    }
    assert_eq!(slow.recv().await, Err(broadcast::RecvError::Lagged(6)));
    let rest: Vec<u32> =
        [slow.recv().await, slow.recv().await].into_iter().map(Result::unwrap).collect();
    assert_eq!(rest, [6, 7]);
    drop(tx);
    // `fast` read nothing of the last six either: it missed two, then gets the four kept.
    assert_eq!(fast.recv().await, Err(broadcast::RecvError::Lagged(2)));
    for i in 6..10 {
        assert_eq!(fast.recv().await, Ok(i));
    }
    assert_eq!(fast.recv().await, Err(broadcast::RecvError::Closed));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_broadcast_receiver_waiting_is_woken_by_a_send_from_another_task() {
    let (tx, mut rx) = klaw::channel::broadcast::channel::<&str>(1);
    let waiter = klaw::Handle::current().unwrap().spawn(async move { rx.recv().await });
    klaw::time::sleep(Duration::from_millis(5)).await;
    tx.send("wake").unwrap();
    assert_eq!(waiter.await.unwrap(), Ok("wake"));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn watch_keeps_the_latest_and_changed_waits_for_a_new_one() {
    let (tx, mut rx) = klaw::channel::watch::channel(0u32);
    let watcher = klaw::Handle::current().unwrap().spawn(async move {
        let mut seen = Vec::new();
        while rx.changed().await.is_ok() {
            seen.push(*rx.borrow_and_update());
        }
        seen
    });
    for i in 1..=3 {
        klaw::time::sleep(Duration::from_millis(2)).await;
        tx.send(i).unwrap();
    }
    klaw::time::sleep(Duration::from_millis(2)).await;
    drop(tx);
    let seen = watcher.await.unwrap();
    assert_eq!(seen.last(), Some(&3), "the latest value is always seen: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn oneshot_delivers_once_or_reports_the_sender_gone() {
    let (tx, rx) = klaw::channel::oneshot::channel::<String>();
    let sender =
        klaw::Handle::current().unwrap().spawn(async move { tx.send("done".into()).unwrap() });
    assert_eq!(rx.await, Ok("done".to_string()));
    sender.await.unwrap();
    let (tx, rx) = klaw::channel::oneshot::channel::<String>();
    drop(tx);
    assert_eq!(rx.await, Err(RecvError::Closed));
}

#[test]
fn receivers_wait_across_threads_without_a_runtime() {
    let (tx, rx) = klaw::channel::unbounded::<u64>();
    let consumer = std::thread::spawn(move || {
        klaw::runtime::block_on(async {
            let mut sum = 0;
            while let Ok(v) = rx.recv().await {
                sum += v;
            }
            sum
        })
    });
    for i in 1..=100 {
        tx.try_send(i).unwrap();
    }
    drop(tx);
    assert_eq!(consumer.join().unwrap(), 5050);
}

#[test]
fn stream_poll_keeps_a_handed_message_until_the_next_poll() {
    let (tx, mut rx) = klaw::channel::bounded::<u32>(1);
    assert!(Pin::new(&mut rx).poll_next(&mut Context::from_waker(Waker::noop())).is_pending());
    tx.try_send(5).unwrap();
    drop(tx);
    let got: Vec<u32> = klaw::runtime::block_on(rx.collect());
    assert_eq!(got, [5]);
}

#[test]
fn a_dropped_receiver_hands_its_stream_message_to_another() {
    let (tx, mut rx) = klaw::channel::bounded::<u32>(1);
    let rx2 = rx.clone();
    assert!(Pin::new(&mut rx).poll_next(&mut Context::from_waker(Waker::noop())).is_pending());
    tx.try_send(9).unwrap(); // handed to `rx`'s stream
    drop(rx);
    assert_eq!(rx2.try_recv(), Ok(9));
}

/// Two woken senders that both lose their place to a sender that was not waiting. Checks: the
/// next place goes to the one that started waiting first. What would break it: each rejoining
/// the line at its front, so the one that rejoined last (the later one) goes first.
#[test]
fn two_woken_senders_that_both_lose_their_place_keep_their_order() {
    let (tx, rx) = bounded::<u32>(1);
    tx.try_send(0).unwrap(); // full
    let mut first = Box::pin(tx.send(1));
    let mut second = Box::pin(tx.send(2));
    assert!(poll_into_line(&mut first).is_pending());
    assert!(poll_into_line(&mut second).is_pending());
    assert_eq!(rx.try_recv(), Ok(0)); // a place for `first`, taken by a sender not waiting
    tx.try_send(10).unwrap();
    assert_eq!(rx.try_recv(), Ok(10)); // a place for `second`, taken the same way
    tx.try_send(11).unwrap();
    assert!(poll_once(&mut first).is_pending(), "no place: `first` waits again");
    assert!(poll_once(&mut second).is_pending(), "no place: `second` waits again");
    assert_eq!(rx.try_recv(), Ok(11)); // the next place: `first`'s
    assert_eq!(poll_once(&mut second), Poll::Pending, "`second` went ahead of `first`");
    assert_eq!(poll_once(&mut first), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(1));
}

/// The receivers' twin: two woken receivers that both lose their message to a receive that was
/// not waiting. Checks: the next message goes to the one that started waiting first.
#[test]
fn two_woken_receivers_that_both_lose_their_message_keep_their_order() {
    let (tx, rx) = bounded::<u32>(4);
    let (rx1, rx2) = (rx.clone(), rx.clone());
    let mut first = Box::pin(rx1.recv());
    let mut second = Box::pin(rx2.recv());
    assert!(poll_into_line(&mut first).is_pending());
    assert!(poll_into_line(&mut second).is_pending());
    tx.try_send(1).unwrap(); // for `first`, taken by a receive not waiting
    assert_eq!(rx.try_recv(), Ok(1));
    tx.try_send(2).unwrap(); // for `second`, taken the same way
    assert_eq!(rx.try_recv(), Ok(2));
    assert!(poll_once(&mut first).is_pending(), "nothing: `first` waits again");
    assert!(poll_once(&mut second).is_pending(), "nothing: `second` waits again");
    tx.try_send(3).unwrap(); // the next message: `first`'s
    assert_eq!(poll_once(&mut second), Poll::Pending, "`second` went ahead of `first`");
    assert_eq!(poll_once(&mut first), Poll::Ready(Ok(3)));
}
