//! Loom models of the MPMC channel core (`mpmc/`): sends, receives, closes and permits racing,
//! with parked tasks, so a lost wake-up shows as a deadlock and a lost or duplicated message as
//! a failed assertion.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::thread;

use crate::channel::{__growing_bounded, Receiver, RecvError, Sender, TryRecvError, bounded};

type Pair = (Sender<u32>, Receiver<u32>);

/// The two buffers of a bounded channel, each at capacity 1 so that it fills: the lock-free ring,
/// and the growing buffer (what `bounded` uses above 4096).
const BUFFERS: [fn() -> Pair; 2] = [|| bounded(1), || __growing_bounded(1)];

#[test]
fn loom_a_blocked_sender_and_a_receiver_exchange_everything_in_order() {
    for channel in BUFFERS {
        loom::model(move || {
            let (tx, rx) = channel();
            let producer = thread::spawn(move || {
                block_on(tx.send(1)).unwrap();
                block_on(tx.send(2)).unwrap(); // waits for a place: the receiver must wake it
            });
            assert_eq!(block_on(rx.recv()), Ok(1));
            assert_eq!(block_on(rx.recv()), Ok(2));
            producer.join().unwrap();
            assert_eq!(block_on(rx.recv()), Err(RecvError::Closed));
        });
    }
}

#[test]
fn loom_closing_wakes_a_parked_receiver() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let closer = thread::spawn(move || {
            let _ = tx.try_send(5);
            drop(tx);
        });
        // Parks until the message or the close arrives; a missed wake-up is a deadlock.
        let first = block_on(rx.recv());
        closer.join().unwrap();
        assert_eq!(first, Ok(5), "the message sent before the close is delivered first");
        assert_eq!(block_on(rx.recv()), Err(RecvError::Closed));
    });
}

#[test]
fn loom_a_message_handed_to_a_cancelled_recv_is_not_lost() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let sender = thread::spawn(move || tx.try_send(9).is_ok());
        {
            let mut recv = pin!(rx.recv());
            // Registers as a waiter (or takes the message if it is already there).
            if let Poll::Ready(got) = recv.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                assert_eq!(got, Ok(9));
                assert!(sender.join().unwrap());
                return;
            }
        } // dropped while waiting: a message handed over meanwhile goes back
        assert!(sender.join().unwrap());
        assert_eq!(rx.try_recv(), Ok(9));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn loom_a_permit_racing_a_send_always_finds_its_place() {
    for channel in BUFFERS {
        loom::model(move || {
            let (tx, rx) = channel();
            let racer = tx.clone();
            let reserver = thread::spawn(move || {
                // Waits for the place if the racer took it; then the place is ours.
                let permit = block_on(tx.reserve()).unwrap();
                permit.send(1).unwrap();
            });
            let raced = racer.try_send(2).is_ok();
            drop(racer);
            let mut got = vec![block_on(rx.recv()).unwrap()];
            if raced {
                got.push(block_on(rx.recv()).unwrap());
            }
            reserver.join().unwrap();
            got.sort_unstable();
            assert_eq!(got, if raced { vec![1, 2] } else { vec![1] });
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        });
    }
}

#[test]
fn loom_closing_gives_a_waiting_send_its_value_back() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        tx.try_send(0).unwrap();
        let sender = thread::spawn(move || block_on(tx.send(1)));
        // Frees the place, then closes: the send either got in before the close or gets
        // its value back; it never waits forever (a missed wake-up is a deadlock).
        assert_eq!(rx.try_recv(), Ok(0));
        rx.close();
        let sent = sender.join().unwrap();
        match sent {
            Ok(()) => assert_eq!(rx.try_recv(), Ok(1)),
            Err(error) => assert_eq!(error.into_inner(), 1),
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn loom_a_wake_up_given_to_a_dropped_recv_passes_to_the_next_receiver() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let other = rx.clone();
        let noop = &mut Context::from_waker(Waker::noop());
        let mut first = Box::pin(rx.recv());
        let mut second = Box::pin(other.recv());
        assert!(first.as_mut().poll(noop).is_pending(), "nothing was sent yet");
        assert!(second.as_mut().poll(noop).is_pending(), "in line behind `first`");
        // Kept open, so only the wake-up for the 7 (not a close) can wake `second`.
        let _open = tx.clone();
        let sender = thread::spawn(move || tx.try_send(7).unwrap());
        // Races the send: a wake-up `first` was given for the 7 must pass to `second`.
        drop(first);
        assert_eq!(block_on(second.as_mut()), Ok(7));
        sender.join().unwrap();
    });
}

/// A waker that comes back into a channel when it is woken or dropped (through `hook`).
struct Reenter(Box<dyn Fn() + Send + Sync>);

impl std::task::Wake for Reenter {
    fn wake(self: std::sync::Arc<Self>) {
        (self.0)();
    }
}

impl Drop for Reenter {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn loom_a_broadcast_waker_that_reenters_the_channel_never_runs_under_its_lock() {
    use crate::channel::broadcast;
    loom::model(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(2);
        let tx = std::sync::Arc::new(tx);
        let hook = tx.clone();
        let waker = Waker::from(std::sync::Arc::new(Reenter(Box::new(move || {
            let _ = hook.receiver_count(); // takes the channel's lock
        }))));
        let sender = {
            let tx = tx.clone();
            thread::spawn(move || tx.send(1).unwrap())
        };
        {
            let mut recv = pin!(rx.recv());
            let polled = recv.as_mut().poll(&mut Context::from_waker(&waker));
            drop(waker); // the channel may now hold the last clone: its drop re-enters
            if polled.is_pending() {
                assert_eq!(block_on(recv), Ok(1));
            }
        }
        sender.join().unwrap();
    });
}

#[test]
fn loom_a_watch_waker_that_reenters_the_channel_never_runs_under_its_lock() {
    use crate::channel::watch;
    loom::model(|| {
        let (tx, mut rx) = watch::channel(0u32);
        let tx = std::sync::Arc::new(tx);
        let hook = tx.clone();
        let waker = Waker::from(std::sync::Arc::new(Reenter(Box::new(move || {
            let _ = hook.receiver_count(); // takes the channel's lock
        }))));
        let sender = {
            let tx = tx.clone();
            thread::spawn(move || tx.send(1).unwrap())
        };
        {
            let mut changed = pin!(rx.changed());
            let polled = changed.as_mut().poll(&mut Context::from_waker(&waker));
            drop(waker);
            if polled.is_pending() {
                assert_eq!(block_on(changed), Ok(()));
            }
        }
        sender.join().unwrap();
        assert_eq!(*rx.borrow(), 1);
    });
}

#[test]
fn loom_a_force_send_racing_a_close_and_a_receive_loses_nothing() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        tx.try_send(1).unwrap();
        let closer = tx.clone();
        let forcer = thread::spawn(move || tx.force_send(2));
        let closing = thread::spawn(move || {
            closer.close();
        });
        let early = rx.try_recv().ok();
        let forced = forcer.join().unwrap();
        closing.join().unwrap();
        // Every message is received, or given back by the force_send, exactly once.
        let mut seen: Vec<u32> = early.into_iter().collect();
        while let Ok(message) = rx.try_recv() {
            seen.push(message);
        }
        match forced {
            Ok(Some(oldest)) => {
                assert_eq!(oldest, 1, "only the queued message can make room");
                seen.push(oldest);
            }
            Ok(None) => {}
            Err(refused) => seen.push(refused.into_inner()),
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
    });
}
