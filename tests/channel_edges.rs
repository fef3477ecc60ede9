//! The edges of the channels that tokio's and async-channel's suites probe: a oneshot closed by
//! its receiver, wakers that come back into their channel when they are dropped or woken, a
//! broadcast message whose `Clone` panics, and broadcast messages nobody can read any more.

#[path = "common/reenter.rs"]
mod reenter;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use klaw::channel::{RecvError, TryRecvError, broadcast, oneshot, watch};
use reenter::{PanicsOnClone, counting_waker, poll_into_line, poll_with_hook, without_deadlock};

// ---- A oneshot closed by its receiver.

#[test]
fn a_closed_oneshot_receiver_resolves_closed_though_the_sender_lives() {
    let (tx, mut rx) = oneshot::channel::<u32>();
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(klaw::runtime::block_on(&mut rx), Err(RecvError::Closed));
    assert_eq!(tx.send(1).unwrap_err().into_inner(), 1);
}

#[test]
fn a_oneshot_value_sent_before_close_is_still_received() {
    let (tx, mut rx) = oneshot::channel::<u32>();
    tx.send(7).unwrap();
    rx.close();
    assert_eq!(klaw::runtime::block_on(&mut rx), Ok(7));
    assert!(rx.is_terminated());
}

#[test]
fn close_wakes_a_receiver_already_waiting_and_the_senders_closed() {
    let (mut tx, mut rx) = oneshot::channel::<u32>();
    let waker = counting_waker();
    let mut cx = Context::from_waker(&waker.waker);
    assert!(pin!(&mut rx).poll(&mut cx).is_pending());
    let mut closed = pin!(tx.closed());
    let sender_waker = counting_waker();
    assert!(closed.as_mut().poll(&mut Context::from_waker(&sender_waker.waker)).is_pending());
    rx.close();
    assert_eq!(sender_waker.woken(), 1);
    assert!(closed.poll(&mut Context::from_waker(&sender_waker.waker)).is_ready());
    assert_eq!(pin!(&mut rx).poll(&mut cx), Poll::Ready(Err(RecvError::Closed)));
}

// ---- Wakers that come back into their channel.

#[test]
fn mpmc_wakers_that_reenter_the_channel_do_not_deadlock() {
    without_deadlock(|| {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let hooked = || {
            let tx = tx.clone();
            // A push wakes a waiting receiver: it takes the receivers' wait list lock.
            move || {
                let _ = tx.try_send(0);
            }
        };
        {
            let mut recv = pin!(rx.recv());
            assert!(poll_into_line(recv.as_mut()).is_pending());
            assert!(poll_with_hook(recv.as_mut(), hooked()).is_pending());
            // A different waker replaces the first, whose drop pushes (and the push wakes the
            // second, which pushes again).
            let _ = poll_with_hook(recv.as_mut(), hooked());
        }
        while rx.try_recv().is_ok() {}
        let mut recv = pin!(rx.recv());
        assert!(poll_into_line(recv.as_mut()).is_pending());
        assert!(poll_with_hook(recv.as_mut(), hooked()).is_pending());
        // Dropping the waiting future removes its waker, whose drop pushes.
    });
}

#[test]
fn oneshot_wakers_that_reenter_the_channel_do_not_deadlock() {
    without_deadlock(|| {
        let (tx, mut rx) = oneshot::channel::<u32>();
        let tx = Arc::new(tx);
        let hooked = || {
            let tx = tx.clone();
            move || {
                let _ = tx.is_closed();
            }
        };
        assert!(poll_with_hook(pin!(&mut rx), hooked()).is_pending());
        assert!(poll_with_hook(pin!(&mut rx), hooked()).is_pending()); // replaces
        rx.close();
        drop(rx); // removes the last waker
    });
}

#[test]
fn broadcast_wakers_that_reenter_the_channel_do_not_deadlock() {
    without_deadlock(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(4);
        let tx = Arc::new(tx);
        let hooked = || {
            let tx = tx.clone();
            move || {
                let _ = tx.receiver_count();
            }
        };
        {
            let mut recv = pin!(rx.recv());
            assert!(poll_with_hook(recv.as_mut(), hooked()).is_pending());
            assert!(poll_with_hook(recv.as_mut(), hooked()).is_pending()); // replaces
            tx.send(1).unwrap(); // wakes the second
            assert_eq!(poll_with_hook(recv.as_mut(), hooked()), Poll::Ready(Ok(1)));
        }
        let mut recv = Box::pin(rx.recv());
        assert!(poll_with_hook(recv.as_mut(), hooked()).is_pending());
        std::mem::forget(recv); // a leaked recv leaves its waker in line...
        drop(rx); // ...and the receiver's drop removes it
    });
}

#[test]
fn watch_wakers_that_reenter_the_channel_do_not_deadlock() {
    without_deadlock(|| {
        let (tx, mut rx) = watch::channel(0u32);
        let tx = Arc::new(tx);
        let hooked = || {
            let tx = tx.clone();
            move || {
                let _ = tx.receiver_count();
            }
        };
        {
            let mut changed = pin!(rx.changed());
            assert!(poll_with_hook(changed.as_mut(), hooked()).is_pending());
            assert!(poll_with_hook(changed.as_mut(), hooked()).is_pending()); // replaces
            tx.send(1).unwrap(); // wakes the second
            assert_eq!(poll_with_hook(changed.as_mut(), hooked()), Poll::Ready(Ok(())));
        }
        let mut changed = Box::pin(rx.changed());
        assert!(poll_with_hook(changed.as_mut(), hooked()).is_pending());
        std::mem::forget(changed); // a leaked wait leaves its waker in line...
        drop(rx); // ...and the receiver's drop removes it
    });
}

// ---- Broadcast: a `Clone` that panics, and messages nobody can read.

#[test]
fn a_broadcast_clone_that_panics_panics_once_and_the_receiver_moves_on() {
    let (tx, mut a) = broadcast::channel(4);
    let mut b = tx.subscribe(); // so that `a` must clone (the last reader takes, no clone)
    tx.send(PanicsOnClone(1)).unwrap();
    tx.send(PanicsOnClone(2)).unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| a.try_recv())).is_err());
    assert_eq!(a.try_recv(), Ok(PanicsOnClone(2)));
    // The other receiver was not touched: it reads both (the last reader takes, no clone).
    assert_eq!(b.try_recv(), Ok(PanicsOnClone(1)));
    assert_eq!(b.try_recv(), Ok(PanicsOnClone(2)));
}

/// Counts how many are alive (clones too).
struct Alive(Arc<AtomicUsize>);

impl Clone for Alive {
    fn clone(&self) -> Self {
        Alive::new(&self.0)
    }
}

impl Alive {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Alive(count.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn a_broadcast_message_is_dropped_once_every_receiver_has_read_it() {
    let alive = Arc::new(AtomicUsize::new(0));
    let (tx, mut a) = broadcast::channel(8);
    let mut b = tx.subscribe();
    for _ in 0..3 {
        tx.send(Alive::new(&alive)).unwrap();
    }
    assert_eq!(alive.load(Ordering::SeqCst), 3);
    drop(a.try_recv().unwrap());
    assert_eq!(alive.load(Ordering::SeqCst), 3, "b has not read the first yet");
    drop(b.try_recv().unwrap());
    assert_eq!(alive.load(Ordering::SeqCst), 2, "both read the first: it is gone");
    drop(b); // the messages only `a` still has to read stay
    assert_eq!(alive.load(Ordering::SeqCst), 2);
    drop(a); // nobody can read them any more
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    assert!(tx.is_empty());
}
