//! Distributed channels on a real `nats-server -js`. Each "process" is its own connection.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::NatsServer;
use futures_util::{SinkExt, StreamExt};
use klaw::channel::{RecvError, TryRecvError, broadcast};
use klaw_nats::Nats;
use klaw_nats::channel::{SendError, TrySendError};

fn connect(server: &NatsServer) -> Nats {
    klaw::runtime::block_on(Nats::connect(server.config())).unwrap()
}

#[klaw::test(timeout = "60s")]
async fn each_message_goes_to_exactly_one_receiver_across_processes() {
    let server = NatsServer::start();
    let (a, b, c) = (connect(&server), connect(&server), connect(&server));
    let (tx_a, rx_a) = a.channel::<u32>("work", 32).await.unwrap();
    let (tx_b, rx_b) = b.channel::<u32>("work", 32).await.unwrap();
    let (_tx_c, rx_c) = c.channel::<u32>("work", 32).await.unwrap();
    let received = klaw::scope!(|s| {
        s.spawn(async move {
            for i in 0..150 {
                tx_a.send(i).await.unwrap();
            }
        });
        s.spawn(async move {
            for i in 150..300 {
                tx_b.send(i).await.unwrap();
            }
        });
        let receivers: Vec<_> = [rx_a, rx_b, rx_c]
            .into_iter()
            .map(|rx| {
                s.spawn(async move {
                    let mut got = Vec::new();
                    while let Ok(Ok(v)) =
                        klaw::cancel::fail_after(Duration::from_secs(2), rx.recv()).await
                    {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for receiver in receivers {
            all.extend(receiver.await?);
        }
        Ok(all)
    })
    .unwrap();
    let distinct: BTreeSet<_> = received.iter().copied().collect();
    assert_eq!(received.len(), 300, "duplicates or losses");
    assert_eq!(distinct, (0..300).collect());
}

#[klaw::test(timeout = "60s")]
async fn a_full_channel_refuses_try_send_and_gives_the_value_back() {
    let server = NatsServer::start();
    let nats = connect(&server);
    let (tx, rx) = nats.channel::<String>("small", 3).await.unwrap();
    assert_eq!(tx.capacity(), 3);
    for i in 0..3 {
        tx.try_send(format!("m{i}")).await.unwrap();
    }
    assert_eq!(tx.try_send("m3".to_owned()).await, Err(TrySendError::Full("m3".to_owned())));
    assert_eq!(tx.len().await.unwrap(), 3);
    assert_eq!(rx.recv().await.unwrap(), "m0");
    drop(rx); // hands back what it prefetched
    klaw::time::sleep(Duration::from_millis(200)).await;
    tx.try_send("m3".to_owned()).await.unwrap();
}

#[klaw::test(timeout = "60s")]
async fn send_waits_for_room_and_order_is_kept_per_sender() {
    let server = NatsServer::start();
    let nats = connect(&server);
    let (tx, rx) = nats.channel::<u32>("narrow", 2).await.unwrap();
    let got = klaw::scope!(|s| {
        s.spawn(async move {
            for i in 0..20 {
                tx.send(i).await.unwrap(); // waits whenever two are queued
            }
        });
        let mut got = Vec::new();
        for _ in 0..20 {
            got.push(rx.recv().await?);
        }
        Ok(got)
    })
    .unwrap();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
}

#[klaw::test(timeout = "60s")]
async fn close_lets_receivers_drain_then_says_closed() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server), connect(&server));
    let (tx, _) = one.channel::<u8>("closing", 8).await.unwrap();
    let (_, rx) = two.channel::<u8>("closing", 8).await.unwrap();
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    tx.close().await.unwrap();
    assert_eq!(tx.try_send(3).await, Err(TrySendError::Closed(3)));
    assert_eq!(rx.recv().await, Ok(1));
    assert_eq!(rx.recv().await, Ok(2));
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
    assert_eq!(rx.try_recv().await, Err(TryRecvError::Closed));
}

#[klaw::test(timeout = "60s")]
async fn a_dropped_receiver_hands_back_what_it_held() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server), connect(&server));
    let (tx, first) = one.channel::<u32>("handback", 16).await.unwrap();
    for i in 0..10 {
        tx.send(i).await.unwrap();
    }
    assert_eq!(first.recv().await, Ok(0)); // it pulled all ten, handed out one
    drop(first);
    let (_, second) = two.channel::<u32>("handback", 16).await.unwrap();
    let mut rest = Vec::new();
    for _ in 1..10 {
        // Well within the 30 s ack wait: they came back at once.
        rest.push(
            klaw::cancel::fail_after(Duration::from_secs(5), second.recv()).await.unwrap().unwrap(),
        );
    }
    rest.sort_unstable();
    assert_eq!(rest, (1..10).collect::<Vec<_>>());
}

#[klaw::test(timeout = "60s")]
async fn senders_are_sinks_and_receivers_are_streams() {
    let server = NatsServer::start();
    let nats = connect(&server);
    let (mut tx, rx) = nats.channel::<u16>("traits", 8).await.unwrap();
    let mut values = futures_util::stream::iter((0..5).map(Ok));
    tx.send_all(&mut values).await.unwrap();
    let got: Vec<u16> = rx.take(5).collect().await;
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[klaw::test(timeout = "60s")]
async fn every_broadcast_receiver_sees_every_message_and_a_slow_one_lags() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server), connect(&server));
    let (tx, mut fast) = one.broadcast::<u32>("events", 4).await.unwrap();
    let (_, mut slow) = two.broadcast::<u32>("events", 4).await.unwrap();
    for i in 0..3 {
        tx.send(i).await.unwrap();
    }
    for i in 0..3 {
        assert_eq!(fast.recv().await, Ok(i));
        assert_eq!(slow.recv().await, Ok(i));
    }
    for i in 3..10 {
        tx.send(i).await.unwrap();
        assert_eq!(fast.recv().await, Ok(i));
    }
    // The stream keeps 4: `slow` missed 3, 4 and 5, and goes on from 6.
    assert_eq!(slow.recv().await, Err(broadcast::RecvError::Lagged(3)));
    for i in 6..10 {
        assert_eq!(slow.recv().await, Ok(i));
    }
    tx.close().await.unwrap();
    assert_eq!(slow.recv().await, Err(broadcast::RecvError::Closed));
}

#[klaw::test(timeout = "60s")]
async fn a_watch_value_set_in_one_process_is_seen_in_another() {
    let server = NatsServer::start();
    let (one, two) = (connect(&server), connect(&server));
    let (tx, _rx_one) = one.watch::<String>("mode", "normal".to_owned()).await.unwrap();
    let (_, mut rx) = two.watch::<String>("mode", "ignored: already set".to_owned()).await.unwrap();
    assert_eq!(*rx.borrow(), "normal");
    tx.send("maintenance".to_owned()).await.unwrap();
    klaw::cancel::fail_after(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
    assert_eq!(*rx.borrow_and_update(), "maintenance");
}

/// Connects to `server` with sends retried for `publish_retry`.
async fn connect_retrying(server: &NatsServer, publish_retry: Duration) -> Nats {
    Nats::connect(server.config().publish_retry(publish_retry)).await.unwrap()
}

#[klaw::test(timeout = "90s")]
async fn sends_across_a_server_restart_arrive_once_and_never_say_closed() {
    let mut server = NatsServer::start();
    let nats = connect_retrying(&server, Duration::from_secs(30)).await;
    let (tx, rx) = nats.channel::<u32>("restart", 8).await.unwrap();
    let (events, mut listener) = nats.broadcast::<u32>("restart", 8).await.unwrap();
    let (mode, mut current) = nats.watch::<u32>("restart", 0).await.unwrap();
    server.stop();
    // Down for longer than the client waits for an acknowledgement (5 s): a send that does
    // not try again fails. Before, that failure was `SendError` "sending on a closed channel".
    let restarted = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(6));
        server.restart();
        server
    });
    tx.send(1).await.unwrap();
    events.send(2).await.unwrap();
    mode.send(3).await.unwrap();
    let _server = restarted.join().unwrap();
    assert_eq!(rx.recv().await, Ok(1));
    assert_eq!(rx.try_recv().await, Err(TryRecvError::Empty), "a retried send arrived twice");
    assert_eq!(listener.recv().await, Ok(2));
    klaw::cancel::fail_after(Duration::from_secs(10), current.changed()).await.unwrap().unwrap();
    assert_eq!(*current.borrow_and_update(), 3);
    assert!(!tx.is_closed());
}

#[klaw::test(timeout = "90s")]
async fn a_send_while_the_server_stays_away_hands_the_value_back_as_unavailable() {
    let mut server = NatsServer::start();
    let nats = connect_retrying(&server, Duration::from_secs(1)).await;
    let (tx, rx) = nats.channel::<u32>("away", 8).await.unwrap();
    let (events, _listener) = nats.broadcast::<u32>("away", 8).await.unwrap();
    let (mode, _current) = nats.watch::<u32>("away", 0).await.unwrap();
    // Tried once, without a message id.
    let once = connect_retrying(&server, Duration::ZERO).await;
    let (tx_once, _) = once.channel::<u32>("away", 8).await.unwrap();
    server.stop();
    // Once the client knows: a value given to it just before would be on its way, and could
    // still arrive after the reconnect (the one case in which a value handed back is sent).
    common::wait_until(Duration::from_secs(10), "the client sees the server gone", || {
        !nats.is_connected()
    });
    common::wait_until(Duration::from_secs(10), "the other client sees it too", || {
        !once.is_connected()
    });
    assert_eq!(tx.try_send(1).await, Err(TrySendError::Unavailable(1)));
    assert_eq!(tx_once.send(9).await, Err(SendError::Unavailable(9)));
    assert_eq!(tx.send(2).await, Err(SendError::Unavailable(2)));
    assert_eq!(events.send(3).await, Err(SendError::Unavailable(3)));
    assert_eq!(mode.send(4).await, Err(SendError::Unavailable(4)));
    assert!(!tx.is_closed(), "the channel is not closed, only unreachable");
    server.restart();
    // Open as before; and a value handed back was never queued in the client to go out
    // after the reconnect: only 5 arrives.
    let mut sent = Err(SendError::Unavailable(5));
    for _ in 0..30 {
        sent = tx.send(5).await;
        if sent.is_ok() {
            break;
        }
    }
    assert_eq!(sent, Ok(()));
    assert_eq!(rx.recv().await, Ok(5));
    klaw::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.try_recv().await, Err(TryRecvError::Empty), "a value handed back arrived");
}

#[klaw::test(timeout = "60s")]
async fn a_value_too_large_for_the_server_is_rejected_not_closed() {
    let server = NatsServer::start();
    let nats = connect(&server);
    let (tx, rx) = nats.channel::<Vec<u8>>("large", 8).await.unwrap();
    // The server's default max_payload is 1 MiB.
    let large = vec![7_u8; 2 << 20];
    let Err(TrySendError::Rejected { value, reason }) = tx.try_send(large.clone()).await else {
        panic!("a 2 MiB value was not rejected");
    };
    assert_eq!(value, large);
    assert!(reason.contains("payload"), "{reason}");
    tx.send(vec![1]).await.unwrap();
    assert_eq!(rx.recv().await, Ok(vec![1]));
}
