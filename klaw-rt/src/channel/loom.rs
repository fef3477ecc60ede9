//! Loom models of the MPMC channel core (`mpmc/`): sends, receives, closes and permits racing,
//! with parked tasks, so a lost wake-up shows as a deadlock and a lost or duplicated message as
//! a failed assertion. Also: the growing buffer reallocating while full, and wakers that come
//! back into their channel (MPMC, oneshot, broadcast, watch), so a waker woken or dropped under
//! the channel's lock shows as a deadlock.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::Future;
use std::pin::{Pin, pin};
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

/// Two senders race for the ring's two places: each push's fast path starts from the tail's
/// last move as the other sender may have left it, or may be leaving it (`ring.rs`, `Cursor`),
/// so a stale guess must lose its CAS, never take a place twice or skip one.
#[test]
fn loom_two_senders_racing_on_a_stale_guess_each_take_their_own_place() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(2);
        let other = tx.clone();
        let second = thread::spawn(move || other.try_send(2).unwrap());
        tx.try_send(1).unwrap();
        second.join().unwrap();
        let mut got = [rx.try_recv().unwrap(), rx.try_recv().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(tx.try_send(3), Ok(()), "the next push finds the next place");
        assert_eq!(rx.try_recv(), Ok(3));
    });
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

fn reentering(hook: impl Fn() + Send + Sync + 'static) -> Waker {
    Waker::from(std::sync::Arc::new(Reenter(Box::new(hook))))
}

/// A receiver's hook: receives until the channel is empty (keeping what it took in `taken`),
/// then polls one more `recv`, which waits in line (the receivers' wait-list lock) and leaves it
/// as it is dropped (the lock again). So it takes that lock whatever the channel holds.
fn drain_then_wait_in_line(rx: &Receiver<u32>, taken: &std::sync::Mutex<Vec<u32>>) {
    loop {
        let received = pin!(rx.recv()).poll(&mut Context::from_waker(Waker::noop()));
        match received {
            Poll::Ready(Ok(message)) => taken.lock().unwrap().push(message),
            Poll::Ready(Err(RecvError::Closed)) | Poll::Pending => return,
        }
    }
}

/// A sender's hook, for a channel of capacity 1: reserves the place if it is free, and while
/// holding it polls a second `reserve`, which waits in line (the senders' wait-list lock) and
/// leaves it as it is dropped (the lock again). It sends nothing.
fn reserve_then_wait_in_line(tx: &Sender<u32>) {
    let noop = &mut Context::from_waker(Waker::noop());
    let reserved = pin!(tx.reserve()).poll(noop);
    if let Poll::Ready(Ok(permit)) = reserved {
        let _ = pin!(tx.reserve()).poll(noop);
        drop(permit);
    }
}

#[test]
fn loom_an_mpmc_receivers_waker_that_reenters_the_channel_never_runs_under_its_lock() {
    for channel in BUFFERS {
        loom::model(move || {
            let (tx, rx) = channel();
            let rx = std::sync::Arc::new(rx);
            let taken = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let waker = {
                let (rx, taken) = (rx.clone(), taken.clone());
                reentering(move || drain_then_wait_in_line(&rx, &taken))
            };
            // The push wakes the waiting receiver; the end of `tx` closes the channel.
            let sender = thread::spawn(move || tx.try_send(1).unwrap());
            let mut got = Vec::new();
            {
                let mut recv = pin!(rx.recv());
                let polled = recv.as_mut().poll(&mut Context::from_waker(&waker));
                // The channel may now hold the last clone: replacing, removing or waking it
                // runs the hook, on either thread.
                drop(waker);
                let received = match polled {
                    Poll::Ready(received) => received,
                    Poll::Pending => block_on(recv),
                };
                got.extend(received.ok());
            }
            sender.join().unwrap();
            got.append(&mut taken.lock().unwrap());
            assert_eq!(got, [1], "the message is received once, by the recv or by the hook");
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        });
    }
}

#[test]
fn loom_a_waiting_mpmc_senders_waker_that_reenters_the_channel_never_runs_under_its_lock() {
    for channel in BUFFERS {
        loom::model(move || {
            let (tx, rx) = channel();
            tx.try_send(1).unwrap(); // full: the send below waits
            let waker = {
                let tx = tx.downgrade(); // weak: the hook does not keep the channel open
                reentering(move || {
                    if let Some(tx) = tx.upgrade() {
                        reserve_then_wait_in_line(&tx);
                    }
                })
            };
            let receiver = thread::spawn(move || {
                let got: Vec<u32> = (0..2).map(|_| block_on(rx.recv()).unwrap()).collect();
                got
            });
            {
                let mut send = pin!(tx.send(2));
                let polled = send.as_mut().poll(&mut Context::from_waker(&waker));
                // The channel may now hold the last clone: replacing, removing or waking it
                // runs the hook, on either thread.
                drop(waker);
                let outcome = match polled {
                    Poll::Ready(outcome) => outcome,
                    Poll::Pending => block_on(send),
                };
                assert_eq!(outcome, Ok(()));
            }
            assert_eq!(receiver.join().unwrap(), [1, 2]);
        });
    }
}

#[test]
fn loom_a_oneshot_receivers_waker_that_reenters_the_channel_never_runs_under_its_lock() {
    use crate::channel::oneshot;
    use loom::sync::Mutex;
    loom::model(|| {
        let (tx, rx) = oneshot::channel::<u32>();
        // The hook comes back through whichever end it can take: the receiver (between its
        // polls) or the sender (until its thread takes it to send). Loom mutexes let the model
        // see them, and `try_lock` never waits on a poll or a send in progress.
        let tx = std::sync::Arc::new(Mutex::new(Some(tx)));
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let waker = {
            let (tx, rx) = (tx.clone(), rx.clone());
            reentering(move || {
                if let Ok(rx) = rx.try_lock() {
                    let _ = rx.is_empty(); // takes the channel's lock
                }
                if let Ok(tx) = tx.try_lock() {
                    let _ = tx.as_ref().map(oneshot::Sender::is_closed);
                }
            })
        };
        let sender = thread::spawn(move || {
            let tx = tx.lock().unwrap().take().unwrap();
            tx.send(1).unwrap(); // wakes the receiver
        });
        let polled = Pin::new(&mut *rx.lock().unwrap()).poll(&mut Context::from_waker(&waker));
        // The channel may now hold the last clone: replacing (below) or waking it runs the hook.
        drop(waker);
        let received = match polled {
            Poll::Ready(received) => received,
            Poll::Pending => {
                block_on(std::future::poll_fn(|cx| Pin::new(&mut *rx.lock().unwrap()).poll(cx)))
            }
        };
        assert_eq!(received, Ok(1));
        sender.join().unwrap();
    });
}

#[test]
fn loom_the_growing_buffer_reallocates_while_full_and_senders_wait() {
    loom::model(|| {
        // The growing buffer allocates on demand: for `u32`, std's `VecDeque` takes 4 places
        // at its first push, so with a capacity of 5 the 5th message must reallocate.
        let (tx, rx) = __growing_bounded::<u32>(5);
        for message in 0..4 {
            tx.try_send(message).unwrap(); // the 4 places allocated, all used
        }
        assert_eq!(rx.try_recv(), Ok(0));
        tx.try_send(4).unwrap(); // wraps around to the front of the 4 places
        // The 5th place is reserved: the channel is full (4 + 1), its allocation is not.
        let permit = block_on(tx.reserve()).unwrap();
        let producer = {
            let tx = tx.clone();
            thread::spawn(move || {
                block_on(tx.send(6)).unwrap(); // waits while full
                block_on(tx.send(7)).unwrap();
            })
        };
        // Into the reserved place: the 5th message reallocates (moving the wrapped part)
        // while the producer waits for a place or is about to.
        permit.send(5).unwrap();
        drop(tx);
        // Draining wakes the producer, place by place.
        let got: Vec<u32> = (0..7).map(|_| block_on(rx.recv()).unwrap()).collect();
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}
