//! Property: whatever producers and consumers do (send, try_send, force_send, reserve and its
//! permit, recv, try_recv, clone, drop, close, and futures cancelled half-way), on a
//! multi-threaded runtime, with a bounded or an unbounded channel, every message the channel
//! accepted is received exactly once or given back by the `force_send` that made room, and every
//! other one came back to its sender or was dropped unsent with a cancelled `send`. Zero lost,
//! zero duplicated.

#[path = "common/reenter.rs"]
mod reenter;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klaw::channel::{Receiver, Sender, TrySendError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum ProducerOp {
    Send,
    TrySend,
    /// `force_send`: a full channel gives its oldest message back to make room.
    ForceSend,
    /// A `send` polled once, then dropped: if it had to wait, nothing is delivered.
    CancelledSend,
    /// `reserve`, then send with the permit (the `select!` send arm's path).
    ReserveThenSend,
    /// `reserve`, then drop the permit: its place must come back.
    ReserveThenDrop,
    CloneAndDrop,
    Close,
    Yield,
}

#[derive(Debug, Clone)]
enum ConsumerOp {
    Recv,
    TryRecv,
    /// A `recv` polled once, then dropped: a message handed to it must not be lost.
    CancelledRecv,
    Yield,
}

fn producer_op() -> impl Strategy<Value = ProducerOp> {
    prop_oneof![
        4 => Just(ProducerOp::Send),
        3 => Just(ProducerOp::TrySend),
        2 => Just(ProducerOp::ForceSend),
        2 => Just(ProducerOp::CancelledSend),
        2 => Just(ProducerOp::ReserveThenSend),
        1 => Just(ProducerOp::ReserveThenDrop),
        1 => Just(ProducerOp::CloneAndDrop),
        1 => Just(ProducerOp::Close),
        1 => Just(ProducerOp::Yield),
    ]
}

fn consumer_op() -> impl Strategy<Value = ConsumerOp> {
    prop_oneof![
        4 => Just(ConsumerOp::Recv),
        3 => Just(ConsumerOp::TryRecv),
        2 => Just(ConsumerOp::CancelledRecv),
        1 => Just(ConsumerOp::Yield),
    ]
}

/// What happened to every message, by id.
#[derive(Default)]
struct Ledger {
    accepted: Vec<u64>,
    returned: Vec<u64>,
    /// Accepted, then taken back out by a `force_send` that made room.
    displaced: Vec<u64>,
    cancelled: Vec<u64>,
    received: Vec<u64>,
}

const PATIENCE: Duration = Duration::from_millis(20);

async fn produce(id: u64, tx: Sender<u64>, ops: Vec<ProducerOp>, ledger: Arc<Mutex<Ledger>>) {
    for (seq, op) in ops.into_iter().enumerate() {
        let message = (id << 32) | seq as u64;
        let log =
            |f: fn(&mut Ledger) -> &mut Vec<u64>| f(&mut ledger.lock().unwrap()).push(message);
        match op {
            ProducerOp::Send => match klaw::cancel::fail_after(PATIENCE, tx.send(message)).await {
                Ok(Ok(())) => log(|l| &mut l.accepted),
                Ok(Err(error)) => {
                    assert_eq!(error.into_inner(), message);
                    log(|l| &mut l.returned);
                }
                Err(_) => log(|l| &mut l.cancelled), // the timeout dropped the waiting send
            },
            ProducerOp::TrySend => match tx.try_send(message) {
                Ok(()) => log(|l| &mut l.accepted),
                Err(TrySendError::Full(back) | TrySendError::Closed(back)) => {
                    assert_eq!(back, message);
                    log(|l| &mut l.returned);
                }
            },
            ProducerOp::ForceSend => match tx.force_send(message) {
                Ok(None) => log(|l| &mut l.accepted),
                Ok(Some(oldest)) => {
                    assert_ne!(oldest, message, "the oldest message made room, not this one");
                    let mut ledger = ledger.lock().unwrap();
                    ledger.accepted.push(message);
                    ledger.displaced.push(oldest);
                }
                // Closed, or every place held by a permit: the message came back.
                Err(TrySendError::Full(back) | TrySendError::Closed(back)) => {
                    assert_eq!(back, message);
                    log(|l| &mut l.returned);
                }
            },
            ProducerOp::CancelledSend => {
                let mut send = std::pin::pin!(tx.send(message));
                match reenter::poll_into_line(send.as_mut()) {
                    std::task::Poll::Ready(Ok(())) => log(|l| &mut l.accepted),
                    std::task::Poll::Ready(Err(_)) => log(|l| &mut l.returned),
                    std::task::Poll::Pending => log(|l| &mut l.cancelled),
                }
            }
            ProducerOp::ReserveThenSend => {
                match klaw::cancel::fail_after(PATIENCE, tx.reserve()).await {
                    Ok(Ok(permit)) => match permit.send(message) {
                        Ok(()) => log(|l| &mut l.accepted),
                        Err(error) => {
                            assert_eq!(error.into_inner(), message);
                            log(|l| &mut l.returned);
                        }
                    },
                    Ok(Err(_)) => log(|l| &mut l.returned), // closed: the value was never given
                    Err(_) => log(|l| &mut l.cancelled),
                }
            }
            ProducerOp::ReserveThenDrop => {
                let _ = klaw::cancel::fail_after(PATIENCE, tx.reserve()).await;
            }
            ProducerOp::CloneAndDrop => drop(tx.clone()),
            ProducerOp::Close => {
                tx.close();
            }
            ProducerOp::Yield => futures_lite::future::yield_now().await,
        }
    }
}

async fn consume(rx: Receiver<u64>, ops: Vec<ConsumerOp>, ledger: Arc<Mutex<Ledger>>) {
    for op in ops {
        let got = match op {
            ConsumerOp::Recv => {
                klaw::cancel::fail_after(PATIENCE, rx.recv()).await.ok().and_then(Result::ok)
            }
            ConsumerOp::TryRecv => rx.try_recv().ok(),
            ConsumerOp::CancelledRecv => {
                let mut recv = std::pin::pin!(rx.recv());
                match reenter::poll_into_line(recv.as_mut()) {
                    std::task::Poll::Ready(result) => result.ok(),
                    std::task::Poll::Pending => None,
                }
            }
            ConsumerOp::Yield => {
                futures_lite::future::yield_now().await;
                None
            }
        };
        if let Some(message) = got {
            ledger.lock().unwrap().received.push(message);
        }
    }
}

/// `capacity` 0 stands for an unbounded channel; 1..=5 for the ring of `bounded`; 6 and up for
/// the growing buffer that `bounded` uses above 4096, with a capacity of `capacity - 5`.
fn check(capacity: usize, producers: Vec<Vec<ProducerOp>>, consumers: Vec<Vec<ConsumerOp>>) {
    let rt = klaw::Runtime::builder().workers(2).build().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (tx, rx) = match capacity {
        0 => klaw::channel::unbounded::<u64>(),
        1..=5 => klaw::channel::bounded::<u64>(capacity),
        _ => klaw::__private::growing_bounded::<u64>(capacity - 5),
    };
    rt.block_on(async {
        klaw::scope!(|s| {
            // Parallel tasks on two workers, so operations really race.
            for (id, ops) in producers.into_iter().enumerate() {
                s.spawn(produce(id as u64, tx.clone(), ops, ledger.clone()));
            }
            for ops in consumers {
                s.spawn(consume(rx.clone(), ops, ledger.clone()));
            }
            Ok(())
        })
        .unwrap();
    });
    drop(tx);
    // Drain what is left: nothing accepted may stay behind.
    while let Ok(message) = rx.try_recv() {
        ledger.lock().unwrap().received.push(message);
    }
    let ledger = Arc::into_inner(ledger).unwrap().into_inner().unwrap();
    let out: Vec<u64> = ledger.received.iter().chain(&ledger.displaced).copied().collect();
    let received: HashSet<u64> = out.iter().copied().collect();
    assert_eq!(received.len(), out.len(), "a message was received (or given back) twice");
    let accepted: HashSet<u64> = ledger.accepted.iter().copied().collect();
    assert_eq!(received, accepted, "accepted and received differ: lost or phantom messages");
    for message in ledger.returned.iter().chain(&ledger.cancelled) {
        assert!(!received.contains(message), "message {message:#x} was refused yet received");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_accepted_message_is_received_exactly_once(
        capacity in 0usize..11,
        producers in prop::collection::vec(prop::collection::vec(producer_op(), 0..24), 1..=4),
        consumers in prop::collection::vec(prop::collection::vec(consumer_op(), 0..24), 1..=4),
    ) {
        check(capacity, producers, consumers);
    }
}
