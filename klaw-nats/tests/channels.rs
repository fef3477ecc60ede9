//! Distributed channels on a real `nats-server -js`. Each "process" is its own connection.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::NatsServer;
use futures_util::{SinkExt, StreamExt};
use klaw::channel::{RecvError, TryRecvError, TrySendError, broadcast};
use klaw_nats::Nats;

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
