//! Distributed channels at the edges of what they share with klaw's local channels (and with
//! tokio's and async-channel's, where klaw's docs are silent): closing from either side and what
//! every other handle then sees, `try_send`/`try_recv` on full, empty and closed channels,
//! `len`/`capacity`, many senders and receivers with cancelled `recv`s, broadcast lag, watch
//! values across opening races and reconnections, channel names (forbidden characters, the same
//! name twice, names of different kinds and namespaces) and values too large for the server.
//! Each "process" is its own connection to a real `nats-server -js`.

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use common::{NatsServer, Proxy};
use futures_util::StreamExt;
use klaw::channel::{RecvError, TryRecvError, broadcast};
use klaw_nats::channel::{SendError, TrySendError};
use klaw_nats::{Nats, NatsConfig, NatsError};

async fn connect(server: &NatsServer) -> Nats {
    Nats::connect(server.config()).await.unwrap()
}

async fn connect_with(config: NatsConfig) -> Nats {
    Nats::connect(config).await.unwrap()
}

/// Ready on its `polls + 1`th poll, waking itself each time before: a cut-off point for a
/// future raced against it finer than a timer's, so that a sweep of `polls` lands in each step
/// of the other future (a round trip to the server takes many polls).
fn after_polls(polls: u32) -> impl Future<Output = ()> {
    let mut left = polls;
    std::future::poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// `rx.recv()` cut short after `polls` polls: `Some` of what it returned, `None` if it was
/// dropped unfinished.
async fn recv_cut_after(rx: &klaw_nats::channel::mpmc::Receiver<u32>, polls: u32) -> Option<u32> {
    let recv = std::pin::pin!(rx.recv());
    match futures_util::future::select(recv, std::pin::pin!(after_polls(polls))).await {
        futures_util::future::Either::Left((received, _)) => Some(received.unwrap()),
        futures_util::future::Either::Right(_) => None,
    }
}

/// One poll of `future`: what it gave.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx))).await
}

/// Waits up to `within` for `condition`, checking every 10 ms (on klaw's timer).
async fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out after {within:?}: {what}");
        klaw::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- mpmc: cancellation ----

/// `Receiver::recv` documents that dropping it loses nothing, and klaw's contract says a `recv`
/// arm that loses a `select!` loses no message. A `recv` given up while it waited on an empty
/// channel must leave the next message to the next `recv`, at once (not after the 30 s ack
/// wait, which is what a tokio user would see as lost).
#[klaw::test(timeout = "30s")]
async fn a_recv_cancelled_while_waiting_leaves_the_next_message_to_the_next_recv() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, rx) = nats.channel::<u32>("cancelled", 8).await.unwrap();
    let gave_up = klaw::cancel::fail_after(Duration::from_millis(100), rx.recv()).await;
    assert!(gave_up.is_err(), "nothing was sent: the recv must time out");
    tx.send(1).await.unwrap();
    let next = klaw::cancel::fail_after(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(next.ok(), Some(Ok(1)), "the message went to the cancelled recv");
}

/// The same through another receiver (another process): the message a cancelled `recv` left
/// behind reaches whoever asks next.
#[klaw::test(timeout = "30s")]
async fn a_recv_cancelled_in_one_process_leaves_the_message_to_a_receiver_in_another() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx, first) = one.channel::<u32>("cancelled-two", 8).await.unwrap();
    let (_, second) = two.channel::<u32>("cancelled-two", 8).await.unwrap();
    let gave_up = klaw::cancel::fail_after(Duration::from_millis(100), first.recv()).await;
    assert!(gave_up.is_err());
    tx.send(7).await.unwrap();
    let got = klaw::cancel::fail_after(Duration::from_secs(5), second.recv()).await;
    assert_eq!(got.ok(), Some(Ok(7)), "the message went to the cancelled recv");
}

/// async-channel's `mpmc` and tokio's many-senders tests, with the receivers' `recv`s cut short
/// again and again (as `select!` arms that lose): every message reaches exactly one receiver,
/// none lost, none twice, and promptly.
#[klaw::test(timeout = "60s")]
async fn many_senders_and_receivers_with_cancelled_recvs_deliver_each_message_once() {
    let server = NatsServer::start();
    let (a, b) = (connect(&server).await, connect(&server).await);
    let (tx_a, rx_a) = a.channel::<u32>("many", 16).await.unwrap();
    let (tx_b, rx_b) = b.channel::<u32>("many", 16).await.unwrap();
    let receivers = [rx_a.clone(), rx_a, rx_b.clone(), rx_b];
    let received = klaw::scope!(|s| {
        s.spawn(async move {
            for i in 0..100 {
                tx_a.send(i).await.unwrap();
            }
        });
        s.spawn(async move {
            for i in 100..200 {
                tx_b.send(i).await.unwrap();
            }
        });
        let handles: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(n, rx)| {
                s.spawn(async move {
                    let mut got = Vec::new();
                    let mut idle = Duration::ZERO;
                    // Short waits, each a cancelled recv when nothing came; stop after 3 s
                    // without a message.
                    let step = Duration::from_millis(5 + 10 * n as u64);
                    while idle < Duration::from_secs(3) {
                        match klaw::cancel::fail_after(step, rx.recv()).await {
                            Ok(Ok(v)) => {
                                got.push(v);
                                idle = Duration::ZERO;
                            }
                            Ok(Err(closed)) => panic!("{closed:?}"),
                            Err(_) => idle += step,
                        }
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.await?);
        }
        Ok(all)
    })
    .unwrap();
    let distinct: BTreeSet<_> = received.iter().copied().collect();
    assert_eq!(received.len(), distinct.len(), "a message reached two receivers");
    let missing: Vec<_> = (0..200).filter(|i| !distinct.contains(i)).collect();
    assert!(missing.is_empty(), "lost (or held past the ack wait): {missing:?}");
}

/// `send`'s cancel safety: "a send dropped while it waits for room has sent nothing".
#[klaw::test(timeout = "30s")]
async fn a_send_dropped_while_waiting_for_room_sends_nothing() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, rx) = nats.channel::<u32>("dropped-send", 1).await.unwrap();
    tx.send(1).await.unwrap();
    let waited = klaw::cancel::fail_after(Duration::from_millis(300), tx.send(2)).await;
    assert!(waited.is_err(), "a full channel took a second value");
    assert_eq!(rx.recv().await, Ok(1));
    klaw::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.try_recv().await, Err(TryRecvError::Empty), "the dropped send was sent");
}

/// A `recv` cut short at every point of the way (its pull request on its way out, waiting for
/// the server's answer, the message just arrived) leaves its message to the next `recv` of the
/// same receiver, at once (well within the 30 s ack wait), once; and once that `recv` returned
/// it, the channel is empty for `len` and `try_recv` in the same process.
#[klaw::test(timeout = "120s")]
async fn a_recv_cut_short_anywhere_leaves_its_message_to_the_next_recv_once() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, rx) = nats.channel::<u32>("cut-short", 4).await.unwrap();
    for round in 0..150 {
        tx.send(round).await.unwrap();
        if let Some(got) = recv_cut_after(&rx, round).await {
            assert_eq!(got, round);
        } else {
            let next = klaw::cancel::fail_after(Duration::from_secs(3), rx.recv()).await;
            assert_eq!(next.ok(), Some(Ok(round)), "round {round}: the cut-short recv kept it");
        }
        assert_eq!(tx.len().await.unwrap(), 0, "round {round}: a returned message still counts");
        assert_eq!(rx.try_recv().await, Err(TryRecvError::Empty), "round {round}: twice");
    }
}

/// A `recv` polled once more after its message has had ample time to reach the client (the
/// point a sweep of poll counts rarely lands on: a round trip takes thousands of polls, or
/// one) either returns it in that poll or, dropped then, leaves it to the next `recv` at once:
/// nothing between taking the message and returning it can be cut short.
#[klaw::test(timeout = "60s")]
async fn a_recv_dropped_once_its_message_has_arrived_leaves_it_to_the_next_recv() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, rx) = nats.channel::<u32>("arrived", 4).await.unwrap();
    for round in 0..20 {
        tx.send(round).await.unwrap();
        let mut recv = Box::pin(rx.recv());
        let got = match poll_once(&mut recv).await {
            Poll::Ready(got) => Some(got),
            Poll::Pending => {
                // Real time: the server does not follow klaw's clock.
                klaw::time::sleep(Duration::from_millis(100)).await;
                match poll_once(&mut recv).await {
                    Poll::Ready(got) => Some(got),
                    Poll::Pending => None,
                }
            }
        };
        drop(recv);
        let got = match got {
            Some(got) => got,
            None => klaw::cancel::fail_after(Duration::from_secs(3), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("round {round}: the dropped recv kept it")),
        };
        assert_eq!(got, Ok(round));
        assert_eq!(tx.len().await.unwrap(), 0, "round {round}: a returned message still counts");
        assert_eq!(rx.try_recv().await, Err(TryRecvError::Empty), "round {round}: twice");
    }
}

/// The same with the receiver dropped right after its `recv` was cut short: what it held, or
/// what the server sent to its pull request, goes to another receiver at once, once.
#[klaw::test(timeout = "120s")]
async fn a_receiver_dropped_after_a_recv_cut_short_anywhere_hands_its_message_on_once() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, rx) = nats.channel::<u32>("cut-short-dropped", 4).await.unwrap();
    for round in 0..150 {
        tx.send(round).await.unwrap();
        let cut = rx.clone();
        if let Some(got) = recv_cut_after(&cut, round).await {
            assert_eq!(got, round);
        } else {
            drop(cut);
            let next = klaw::cancel::fail_after(Duration::from_secs(3), rx.recv()).await;
            assert_eq!(next.ok(), Some(Ok(round)), "round {round}: the dropped receiver kept it");
        }
        assert_eq!(rx.try_recv().await, Err(TryRecvError::Empty), "round {round}: twice");
    }
}

/// A receiver's Stream item given up while it waited (a `select!` arm that lost, a timeout),
/// then `recv` on the same receiver: the message sent meanwhile reaches that `recv` at once
/// (well within the 30 s ack wait), not held by the Stream's pull request nobody polls any more.
#[klaw::test(timeout = "60s")]
async fn a_stream_item_given_up_leaves_the_next_message_to_recv() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, mut rx) = nats.channel::<u32>("stream-then-recv", 4).await.unwrap();
    for round in 0..5 {
        // Long enough for the Stream's waiting pull request to be out.
        let gave_up = klaw::cancel::fail_after(Duration::from_millis(200), rx.next()).await;
        assert!(gave_up.is_err(), "round {round}: nothing was sent yet");
        tx.send(round).await.unwrap();
        let next = klaw::cancel::fail_after(Duration::from_secs(3), rx.recv()).await;
        assert_eq!(next.ok(), Some(Ok(round)), "round {round}: the given-up Stream item kept it");
        assert_eq!(rx.try_recv().await, Err(TryRecvError::Empty), "round {round}: twice");
    }
}

// ---- mpmc: full, empty, len, capacity ----

/// tokio's `try_send_fail_with_try_recv`: the room a `recv` frees is there for the very next
/// `try_send` (the docs: at most `capacity` messages "queued or being received"; one `recv`
/// returned is neither).
#[klaw::test(timeout = "30s")]
async fn the_room_a_recv_frees_is_there_for_the_next_try_send() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, rx) = nats.channel::<u32>("room", 1).await.unwrap();
    for round in 0..20 {
        tx.try_send(round).await.unwrap();
        assert_eq!(tx.try_send(99).await, Err(TrySendError::Full(99)));
        assert_eq!(rx.recv().await, Ok(round));
        assert_eq!(tx.try_send(round + 100).await, Ok(()), "round {round}: still full");
        assert_eq!(rx.recv().await, Ok(round + 100));
    }
}

/// The same through two openings of the channel in one process (as two modules that each open
/// it): a `recv` on one frees its room for a `try_send` on the other at once.
#[klaw::test(timeout = "30s")]
async fn the_room_a_recv_frees_is_there_for_a_try_send_through_another_opening() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, _) = nats.channel::<u32>("room-twice", 1).await.unwrap();
    let (_, rx) = nats.channel::<u32>("room-twice", 1).await.unwrap();
    for round in 0..20 {
        tx.try_send(round).await.unwrap();
        assert_eq!(rx.recv().await, Ok(round));
        assert_eq!(tx.try_send(round + 100).await, Ok(()), "round {round}: still full");
        assert_eq!(rx.recv().await, Ok(round + 100));
        assert!(tx.is_empty().await.unwrap(), "round {round}: a returned message still counts");
    }
}

/// async-channel's `len_empty_full`: `len` counts what is queued and goes down as `recv`
/// returns (a returned message is acknowledged: the docs count only unacknowledged ones).
#[klaw::test(timeout = "30s")]
async fn len_follows_sends_and_receives() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, rx) = nats.channel::<u32>("len", 4).await.unwrap();
    assert_eq!(tx.len().await.unwrap(), 0);
    assert!(tx.is_empty().await.unwrap());
    for i in 0..4 {
        tx.send(i).await.unwrap();
        assert_eq!(tx.len().await.unwrap(), i as usize + 1);
    }
    for i in 0..4 {
        assert_eq!(rx.recv().await, Ok(i));
        assert_eq!(tx.len().await.unwrap(), 3 - i as usize, "after receiving {i}");
    }
    assert!(tx.is_empty().await.unwrap());
}

/// async-channel's and tokio's receivers have `len`, `is_empty` and `capacity` too: a
/// receiver's count is the sender's, from any process.
#[klaw::test(timeout = "30s")]
async fn a_receiver_counts_what_its_senders_count() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx, _) = one.channel::<u32>("rx-len", 3).await.unwrap();
    let (_, rx) = two.channel::<u32>("rx-len", 5).await.unwrap();
    assert_eq!(rx.capacity(), 3, "the first opener sets the capacity");
    assert!(rx.is_empty().await.unwrap());
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    assert_eq!(rx.len().await.unwrap(), 2);
    assert!(!rx.is_empty().await.unwrap());
    assert_eq!(rx.recv().await, Ok(1));
    assert_eq!(rx.len().await.unwrap(), 1);
    assert_eq!(tx.len().await.unwrap(), 1);
    assert!(!rx.is_closed());
    tx.close().await.unwrap();
    eventually(Duration::from_secs(5), "the receiver sees the close", || rx.is_closed()).await;
}

/// "The first process to open it sets its capacity": a second opener with another capacity
/// gets the first one's, in `capacity()` and in when `Full` comes.
#[klaw::test(timeout = "30s")]
async fn the_first_opener_sets_the_capacity_every_process_sees() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx_one, _rx) = one.channel::<u8>("capacity", 2).await.unwrap();
    let (tx_two, _) = two.channel::<u8>("capacity", 5).await.unwrap();
    assert_eq!(tx_one.capacity(), 2);
    assert_eq!(tx_two.capacity(), 2);
    tx_two.try_send(1).await.unwrap();
    tx_two.try_send(2).await.unwrap();
    assert_eq!(tx_two.try_send(3).await, Err(TrySendError::Full(3)));
    assert_eq!(tx_one.try_send(4).await, Err(TrySendError::Full(4)));
}

/// A local `channel(0)` panics naming the range; the docs of `Nats::channel` say nothing of 0.
/// What a user may rely on at least: `capacity()` is what the channel really holds, and that
/// many `try_send`s succeed before `Full`.
#[klaw::test(timeout = "30s")]
async fn a_zero_capacity_channel_reports_the_capacity_it_really_has() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, _rx) = nats.channel::<u8>("zero", 0).await.unwrap();
    let capacity = tx.capacity();
    for i in 0..capacity {
        tx.try_send(i as u8).await.unwrap();
    }
    assert_eq!(tx.try_send(9).await, Err(TrySendError::Full(9)));
}

/// tokio's `try_recv_bounded` and `try_recv_close_while_empty`: `Empty` while open, the queued
/// values after a close, then `Closed` (never `Empty` once closed and drained).
#[klaw::test(timeout = "30s")]
async fn try_recv_says_empty_while_open_and_closed_only_once_drained() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, rx) = nats.channel::<u32>("try-recv", 4).await.unwrap();
    assert_eq!(rx.try_recv().await, Err(TryRecvError::Empty));
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    assert_eq!(rx.try_recv().await, Ok(1));
    rx.close().await.unwrap();
    assert_eq!(rx.try_recv().await, Ok(2));
    assert_eq!(rx.try_recv().await, Err(TryRecvError::Closed));
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
}

// ---- mpmc: closing from either side ----

/// async-channel's `close_wakes_sender` and tokio's `dropping_rx_closes_channel`, across
/// processes: a receiver's `close` in one process reaches a sender in another (`is_closed`,
/// then `Closed` with the value back from `try_send` and `send`), and a sender waiting for room
/// there ends with `Closed` instead of waiting for ever.
#[klaw::test(timeout = "30s")]
async fn a_receiver_s_close_reaches_senders_in_other_processes_even_a_waiting_one() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx, _) = one.channel::<u32>("closed-by-rx", 1).await.unwrap();
    let (_, rx) = two.channel::<u32>("closed-by-rx", 1).await.unwrap();
    tx.send(1).await.unwrap();
    let waiting = {
        let tx = tx.clone();
        klaw::Handle::current().unwrap().spawn(async move { tx.send(2).await })
    };
    klaw::time::sleep(Duration::from_millis(200)).await;
    rx.close().await.unwrap();
    let ended = klaw::cancel::fail_after(Duration::from_secs(5), waiting).await;
    assert_eq!(ended.expect("the waiting send never ended").unwrap(), Err(SendError::Closed(2)));
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(3).await, Err(TrySendError::Closed(3)));
    assert_eq!(tx.send(4).await, Err(SendError::Closed(4)));
    // The value queued before the close is still delivered, then `Closed`.
    assert_eq!(rx.recv().await, Ok(1));
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
}

/// async-channel's `close_wakes_receiver`: a `recv` waiting on an empty channel in one process
/// ends with `Closed` when another process closes it.
#[klaw::test(timeout = "30s")]
async fn a_waiting_recv_ends_with_closed_when_another_process_closes() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (_, rx) = one.channel::<u32>("close-wakes", 4).await.unwrap();
    let (tx, _) = two.channel::<u32>("close-wakes", 4).await.unwrap();
    let waiting = klaw::Handle::current().unwrap().spawn(async move { rx.recv().await });
    klaw::time::sleep(Duration::from_millis(200)).await;
    tx.close().await.unwrap();
    let ended = klaw::cancel::fail_after(Duration::from_secs(5), waiting).await;
    assert_eq!(ended.expect("the waiting recv never ended").unwrap(), Err(RecvError::Closed));
}

/// A receiver used as a `Stream` gives what was queued, then ends (`None`), after a close from
/// another process.
#[klaw::test(timeout = "30s")]
async fn a_receiver_stream_ends_after_the_queued_values_once_closed() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx, _) = one.channel::<u32>("stream-end", 8).await.unwrap();
    let (_, rx) = two.channel::<u32>("stream-end", 8).await.unwrap();
    for i in 0..3 {
        tx.send(i).await.unwrap();
    }
    tx.close().await.unwrap();
    let got: Vec<u32> = rx.collect().await;
    assert_eq!(got, [0, 1, 2]);
}

// ---- names ----

/// NATS subjects and stream names forbid `.`, `*`, `>`, whitespace, `/` and `\`; each kind of
/// channel refuses such a name (and the empty name) with `NatsError::BadName` naming it,
/// before anything reaches the server; never a panic or a server error.
#[klaw::test(timeout = "30s")]
async fn names_nats_forbids_are_a_typed_bad_name_error_for_every_kind_of_channel() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    for name in ["", "a.b", "a*", ">", "a b", "tab\there", "a/b", "a\\b", "ä", "nul\0", "a\nb"] {
        let bad = |error: NatsError| matches!(&error, NatsError::BadName { name: n } if n == name);
        assert!(bad(nats.channel::<u8>(name, 1).await.unwrap_err()), "channel {name:?}");
        assert!(bad(nats.broadcast::<u8>(name, 1).await.unwrap_err()), "broadcast {name:?}");
        assert!(bad(nats.watch::<u8>(name, 0).await.unwrap_err()), "watch {name:?}");
    }
}

/// A name of allowed characters but too long for a stream name on the server: a typed error
/// (`BadName`: "cannot be part of a stream or subject name"), not a JetStream failure that
/// blames a server without `-js`.
#[klaw::test(timeout = "30s")]
async fn a_name_too_long_for_the_server_is_a_bad_name() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let name = "n".repeat(300);
    match nats.channel::<u8>(&name, 1).await {
        Err(NatsError::BadName { name: n }) => assert_eq!(n, name),
        Err(other) => panic!("channel: not BadName: {other}"),
        Ok(_) => {} // the server took it: nothing to check
    }
    match nats.broadcast::<u8>(&name, 1).await {
        Err(NatsError::BadName { name: n }) => assert_eq!(n, name),
        Err(other) => panic!("broadcast: not BadName: {other}"),
        Ok(_) => {}
    }
}

/// Two opens of the same name in one process are one channel: a value sent through one
/// handle is received through the other, and a close through either is seen by both.
#[klaw::test(timeout = "30s")]
async fn the_same_name_opened_twice_in_one_process_is_one_channel() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx_one, rx_one) = nats.channel::<u32>("twice", 4).await.unwrap();
    let (tx_two, rx_two) = nats.channel::<u32>("twice", 4).await.unwrap();
    tx_one.send(1).await.unwrap();
    assert_eq!(rx_two.recv().await, Ok(1));
    tx_two.send(2).await.unwrap();
    assert_eq!(rx_one.recv().await, Ok(2));
    rx_two.close().await.unwrap();
    eventually(Duration::from_secs(5), "the other handle sees the close", || tx_one.is_closed())
        .await;
    assert_eq!(tx_one.try_send(3).await, Err(TrySendError::Closed(3)));
    assert_eq!(rx_one.recv().await, Err(RecvError::Closed));
}

/// Channels of different kinds are different channels whatever their names: closing the MPMC
/// channel `bcast-news` leaves the broadcast `news` open (and the other way round).
#[klaw::test(timeout = "30s")]
async fn closing_one_channel_never_closes_a_channel_of_another_kind_or_name() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (queue, _queue_rx) = nats.channel::<u32>("bcast-news", 4).await.unwrap();
    let (events, mut listener) = nats.broadcast::<u32>("news", 4).await.unwrap();
    let (other_queue, _other_rx) = nats.channel::<u32>("news", 4).await.unwrap();
    queue.close().await.unwrap();
    klaw::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events.send(1).await, Ok(()), "the broadcast `news` was closed");
    assert_eq!(listener.recv().await, Ok(1));
    assert_eq!(other_queue.try_send(2).await, Ok(()));
    events.close().await.unwrap();
    klaw::time::sleep(Duration::from_millis(300)).await;
    assert!(!other_queue.is_closed(), "the MPMC `news` was closed by the broadcast's close");
    assert_eq!(other_queue.try_send(3).await, Ok(()));
}

/// Channels of the same name in two namespaces are separate: a value sent in one is not
/// received in the other, and a close in one leaves the other open.
#[klaw::test(timeout = "30s")]
async fn the_same_name_in_two_namespaces_is_two_channels() {
    let server = NatsServer::start();
    let a = connect_with(server.config().namespace("alpha")).await;
    let b = connect_with(server.config().namespace("beta")).await;
    let (tx_a, _rx_a) = a.channel::<u32>("shared", 4).await.unwrap();
    let (tx_b, rx_b) = b.channel::<u32>("shared", 4).await.unwrap();
    tx_a.send(1).await.unwrap();
    assert_eq!(rx_b.try_recv().await, Err(TryRecvError::Empty));
    tx_a.close().await.unwrap();
    klaw::time::sleep(Duration::from_millis(300)).await;
    assert!(!tx_b.is_closed());
    tx_b.send(2).await.unwrap();
    assert_eq!(rx_b.recv().await, Ok(2));
}

/// Namespaces and names may both hold `_`: namespace `ns` with channel `x_chan_y` and
/// namespace `ns_chan_x` with channel `y` are different channels, and each works (a send is
/// taken at once, not refused as unavailable after the retry bound).
#[klaw::test(timeout = "40s")]
async fn a_namespace_and_a_name_with_underscores_never_share_a_stream_with_another_pair() {
    let server = NatsServer::start();
    let config = |namespace: &str| {
        server.config().namespace(namespace).publish_retry(Duration::from_secs(1))
    };
    let first = connect_with(config("ns")).await;
    let second = connect_with(config("ns_chan_x")).await;
    let (tx_first, rx_first) = first.channel::<u32>("x_chan_y", 4).await.unwrap();
    let opened = second.channel::<u32>("y", 4).await;
    let (tx_second, rx_second) = opened.expect("the second channel could not be opened");
    assert_eq!(tx_first.send(1).await, Ok(()));
    assert_eq!(tx_second.send(2).await, Ok(()), "the second channel cannot take a value");
    assert_eq!(rx_first.recv().await, Ok(1));
    assert_eq!(rx_second.recv().await, Ok(2));
}

/// The same for a broadcast channel: namespace `ns` with broadcast `x_bcast_y` and namespace
/// `ns_bcast_x` with broadcast `y` are different channels, and each works.
#[klaw::test(timeout = "40s")]
async fn a_broadcast_never_shares_a_stream_with_another_pair() {
    let server = NatsServer::start();
    let config = |namespace: &str| {
        server.config().namespace(namespace).publish_retry(Duration::from_secs(1))
    };
    let first = connect_with(config("ns")).await;
    let second = connect_with(config("ns_bcast_x")).await;
    let (tx_first, mut rx_first) = first.broadcast::<u32>("x_bcast_y", 4).await.unwrap();
    let opened = second.broadcast::<u32>("y", 4).await;
    let (tx_second, mut rx_second) = opened.expect("the second broadcast could not be opened");
    assert_eq!(tx_first.send(1).await, Ok(()));
    assert_eq!(tx_second.send(2).await, Ok(()), "the second broadcast cannot take a value");
    assert_eq!(rx_first.recv().await, Ok(1));
    assert_eq!(rx_second.recv().await, Ok(2));
}

/// A namespace's own streams never share a stream with a channel: namespace `a_chan_b`'s jobs
/// stream (made by the first process of that namespace) and namespace `a`'s channel `b_jobs`
/// are different streams, and the channel works.
#[klaw::test(timeout = "40s")]
async fn a_namespace_s_jobs_never_share_a_stream_with_a_channel() {
    let server = NatsServer::start();
    let config = |namespace: &str| {
        server.config().namespace(namespace).publish_retry(Duration::from_secs(1))
    };
    // Opening the dead letters makes the namespace's jobs stream (and its other streams).
    let _letters = klaw_nats::DeadLetters::open(config("a_chan_b")).await.unwrap();
    let other = connect_with(config("a")).await;
    let opened = other.channel::<u32>("b_jobs", 4).await;
    let (tx, rx) = opened.expect("the channel could not be opened");
    assert_eq!(tx.send(3).await, Ok(()), "the channel cannot take a value");
    assert_eq!(rx.recv().await, Ok(3));
}

// ---- values too large ----

/// A value larger than the server's `max_payload` (1 MiB by default) is `Rejected` with the
/// value back, on every kind of channel, and the reason names its size and the limit.
#[klaw::test(timeout = "30s")]
async fn a_value_too_large_is_rejected_naming_its_size_on_every_kind_of_channel() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let large = vec![1_u8; 2 << 20];
    let check = |error: SendError<Vec<u8>>, kind: &str| {
        let SendError::Rejected { value, reason } = error else {
            panic!("{kind}: not Rejected: {error:?}");
        };
        assert_eq!(value.len(), 2 << 20, "{kind}: the value did not come back whole");
        assert!(reason.contains("1048576"), "{kind}: the reason does not name the limit: {reason}");
        let named_size = reason
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|number| number.parse::<usize>().ok())
            .any(|number| number >= 2 << 20);
        assert!(named_size, "{kind}: the reason does not name the size: {reason}");
    };
    let (tx, _rx) = nats.channel::<Vec<u8>>("large-mpmc", 4).await.unwrap();
    check(tx.send(large.clone()).await.unwrap_err(), "channel");
    let (events, _listener) = nats.broadcast::<Vec<u8>>("large-bcast", 4).await.unwrap();
    check(events.send(large.clone()).await.unwrap_err(), "broadcast");
    let (mode, current) = nats.watch::<Vec<u8>>("large-watch", vec![0]).await.unwrap();
    check(mode.send(large).await.unwrap_err(), "watch");
    assert_eq!(*current.borrow(), vec![0]);
    // Still usable.
    tx.send(vec![2]).await.unwrap();
    events.send(vec![3]).await.unwrap();
    mode.send(vec![4]).await.unwrap();
}

/// A watch whose initial value is too large for the server cannot be set for anyone: opening
/// it is a typed error, rather than a receiver that shows a value no other process ever sees.
#[klaw::test(timeout = "30s")]
async fn a_watch_whose_initial_value_is_too_large_is_a_typed_error() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let opened = nats.watch::<Vec<u8>>("large-initial", vec![1_u8; 2 << 20]).await;
    assert!(opened.is_err(), "a watch was opened on a value the server never stored");
}

// ---- broadcast ----

/// tokio's `lag_again_before_reading_retained_messages`: a receiver told it lagged, which lags
/// again before reading what was kept, is told the second gap too, then goes on from the oldest
/// kept.
#[klaw::test(timeout = "30s")]
async fn a_broadcast_receiver_that_lags_twice_is_told_each_gap() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, mut rx) = nats.broadcast::<u32>("lag-twice", 2).await.unwrap();
    for i in 1..=3 {
        tx.send(i).await.unwrap();
    }
    assert_eq!(rx.recv().await, Err(broadcast::RecvError::Lagged(1)));
    for i in 4..=6 {
        tx.send(i).await.unwrap();
    }
    assert_eq!(rx.recv().await, Err(broadcast::RecvError::Lagged(3)));
    assert_eq!(rx.recv().await, Ok(5));
    assert_eq!(rx.recv().await, Ok(6));
}

/// tokio's `lagging_receiver_recovers_after_wrap_closed`: after a close, a lagging receiver is
/// still told how many it missed, then gets what was kept, then `Closed`.
#[klaw::test(timeout = "30s")]
async fn a_lagging_broadcast_receiver_after_a_close_gets_lagged_then_the_rest_then_closed() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx, _) = one.broadcast::<u32>("lag-closed", 2).await.unwrap();
    let (_, mut rx) = two.broadcast::<u32>("lag-closed", 2).await.unwrap();
    for i in 1..=4 {
        tx.send(i).await.unwrap();
    }
    tx.close().await.unwrap();
    klaw::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.recv().await, Err(broadcast::RecvError::Lagged(2)));
    assert_eq!(rx.recv().await, Ok(3));
    assert_eq!(rx.recv().await, Ok(4));
    assert_eq!(rx.recv().await, Err(broadcast::RecvError::Closed));
    assert_eq!(tx.send(5).await, Err(SendError::Closed(5)));
}

/// tokio's `resubscribe_points_to_tail` and `resubscribe_to_closed_channel`: a receiver
/// subscribed later sees only what follows, and one subscribed to a closed channel gets
/// `Closed` at once.
#[klaw::test(timeout = "30s")]
async fn a_later_broadcast_subscriber_sees_only_what_follows_and_closed_once_closed() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, mut early) = nats.broadcast::<u32>("tail", 8).await.unwrap();
    tx.send(1).await.unwrap();
    let mut late = tx.subscribe().await.unwrap();
    tx.send(2).await.unwrap();
    assert_eq!(late.recv().await, Ok(2));
    assert_eq!(early.recv().await, Ok(1));
    assert_eq!(early.recv().await, Ok(2));
    tx.close().await.unwrap();
    let mut closed = tx.subscribe().await.unwrap();
    let got = klaw::cancel::fail_after(Duration::from_secs(2), closed.recv()).await;
    assert_eq!(got.ok(), Some(Err(broadcast::RecvError::Closed)));
}

/// A broadcast `recv` given up while it waited loses nothing: the next `recv` gets the value
/// sent after.
#[klaw::test(timeout = "30s")]
async fn a_broadcast_recv_cancelled_while_waiting_loses_nothing() {
    let server = NatsServer::start();
    let nats = connect(&server).await;
    let (tx, mut rx) = nats.broadcast::<u32>("bcast-cancel", 8).await.unwrap();
    for _ in 0..3 {
        let gave_up = klaw::cancel::fail_after(Duration::from_millis(50), rx.recv()).await;
        assert!(gave_up.is_err());
    }
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    let got = klaw::cancel::fail_after(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(got.ok(), Some(Ok(1)));
    assert_eq!(rx.recv().await, Ok(2));
}

/// A local klaw broadcast receiver (and tokio-stream's `BroadcastStream`) is a `Stream` of
/// `Result<T, Lagged>` that ends once the channel is closed and read; so is a distributed one.
/// It goes on from where `recv` left off, with the receive a `recv` cut short had started.
#[klaw::test(timeout = "30s")]
async fn a_broadcast_receiver_is_a_stream_of_values_and_lags_that_ends_once_closed() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx, _) = one.broadcast::<u32>("bcast-stream", 2).await.unwrap();
    let (_, mut rx) = two.broadcast::<u32>("bcast-stream", 2).await.unwrap();
    tx.send(1).await.unwrap();
    assert_eq!(rx.next().await, Some(Ok(1)));
    let gave_up = klaw::cancel::fail_after(Duration::from_millis(50), rx.recv()).await;
    assert!(gave_up.is_err(), "nothing was sent: the recv must time out");
    for i in 2..=5 {
        tx.send(i).await.unwrap();
    }
    tx.close().await.unwrap();
    // The stream keeps 2: 2 and 3 were dropped unread.
    let got: Vec<_> = rx.by_ref().collect().await;
    assert_eq!(got, [Err(broadcast::Lagged(2)), Ok(4), Ok(5)]);
    assert_eq!(rx.recv().await, Err(broadcast::RecvError::Closed));
}

// ---- watch ----

/// A process that opens a watch while another sets it ends up with the latest value: a change
/// made between reading the current value and starting to watch must not be missed (it would
/// leave the receiver on a stale value until the next change, which may never come).
#[klaw::test(timeout = "60s")]
async fn a_watch_opened_while_another_process_sets_it_ends_on_the_latest_value() {
    let server = NatsServer::start();
    let (setter, opener) = (connect(&server).await, connect(&server).await);
    for round in 0..30_u32 {
        let name = format!("race-{round}");
        let (tx, _keep) = setter.watch::<u32>(&name, 0).await.unwrap();
        let (opened, ()) = futures_util::future::join(opener.watch::<u32>(&name, 0), async {
            // Land inside the other process's open: it takes a few round trips.
            klaw::time::sleep(Duration::from_micros(300 * u64::from(round % 10))).await;
            tx.send(round + 1).await.unwrap();
        })
        .await;
        let (_, rx) = opened.unwrap();
        let latest = round + 1;
        let mut seen = *rx.borrow();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while seen != latest && std::time::Instant::now() < deadline {
            klaw::time::sleep(Duration::from_millis(20)).await;
            seen = *rx.borrow();
        }
        assert_eq!(seen, latest, "round {round}: the receiver missed a change made as it opened");
    }
}

/// tokio's watch: `changed` then `borrow` gives the latest value. Across a network cut: a value
/// set by another process while this one was cut off reaches it once it is back.
#[klaw::test(timeout = "60s")]
async fn a_watch_change_made_while_a_process_was_cut_off_reaches_it_after_reconnection() {
    let server = NatsServer::start();
    let proxy = Proxy::to(common::port_of(&server.url));
    let cut_off = connect_with(NatsConfig::new(proxy.url()).namespace("test")).await;
    let other = connect(&server).await;
    let (_, mut rx) = cut_off.watch::<String>("cut", "before".to_owned()).await.unwrap();
    let (tx, _) = other.watch::<String>("cut", "ignored".to_owned()).await.unwrap();
    assert_eq!(*rx.borrow_and_update(), "before");
    proxy.cut();
    eventually(Duration::from_secs(10), "the client sees the cut", || !cut_off.is_connected())
        .await;
    tx.send("during".to_owned()).await.unwrap();
    tx.send("latest".to_owned()).await.unwrap();
    proxy.heal();
    let changed = klaw::cancel::fail_after(Duration::from_secs(20), async {
        loop {
            rx.changed().await.unwrap();
            if *rx.borrow_and_update() == "latest" {
                return;
            }
        }
    })
    .await;
    assert!(changed.is_ok(), "the change never arrived: still {:?}", *rx.borrow());
}

/// A local klaw watch receiver (and tokio-stream's `WatchStream`) is a `Stream` of the values
/// it sees change; the receiver of a distributed watch is one, of changes made in any process.
#[klaw::test(timeout = "30s")]
async fn a_watch_receiver_is_a_stream_of_the_changes_another_process_makes() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx, _) = one.watch::<u32>("watch-stream", 0).await.unwrap();
    let (_, mut rx) = two.watch::<u32>("watch-stream", 0).await.unwrap();
    for value in 1..=3 {
        tx.send(value).await.unwrap();
        // Values in between may be skipped (and the opening value may come first).
        let seen = klaw::cancel::fail_after(Duration::from_secs(5), async {
            while let Some(seen) = rx.next().await {
                if seen == value {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(seen.ok(), Some(true), "the stream never gave {value}");
    }
}

/// A watch is never closed and a value too small to matter is never refused: many sends in a
/// row end with every process on the last one (tokio's `multiple_sender`, across processes).
#[klaw::test(timeout = "30s")]
async fn watch_senders_in_two_processes_leave_everyone_on_the_last_value() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server).await, connect(&server).await);
    let (tx_one, rx_one) = one.watch::<u32>("last", 0).await.unwrap();
    let (tx_two, rx_two) = two.watch::<u32>("last", 0).await.unwrap();
    for i in 1..=10 {
        tx_one.send(i).await.unwrap();
    }
    for i in 11..=20 {
        tx_two.send(i).await.unwrap();
    }
    eventually(Duration::from_secs(5), "both see 20", || {
        *rx_one.borrow() == 20 && *rx_two.borrow() == 20
    })
    .await;
}
