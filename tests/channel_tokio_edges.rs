//! The edges of `broadcast`, `oneshot` and the MPMC channel's tokio-style API, after
//! tokio's `sync_broadcast.rs`, `sync_oneshot.rs`, `sync_mpsc.rs` and `sync_mpsc_weak.rs`: the
//! cases the other channel suites leave out. Lag arithmetic, values queued when receivers go
//! (dropped once, and in the order they were sent), a value whose `Drop` panics (no wake-up
//! lost), oneshot `try_recv` states, weak senders, and the largest and smallest capacities.
//!
//! Where klaw's docs are silent, a test asserts what a demanding tokio user would expect, and
//! says so.

#[path = "common/reenter.rs"]
mod reenter;

mod common;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use common::{DEADLINE, ms, within};
use futures_lite::StreamExt;
use klaw::channel::{
    RecvError, TryRecvError, TrySendError, bounded, broadcast, oneshot, unbounded,
};
use reenter::{counting_waker, poll_into_line, poll_noop};

// ---- Helpers.

/// What happened to the tracked values: how many clones were made, and the ids dropped, in order.
#[derive(Clone, Default)]
struct Log {
    clones: Arc<AtomicUsize>,
    dropped: Arc<Mutex<Vec<u32>>>,
    /// The id whose next drop panics (once: the flag is cleared as it panics).
    panic_on: Arc<Mutex<Option<u32>>>,
}

impl Log {
    fn value(&self, id: u32) -> Tracked {
        Tracked { id, log: self.clone() }
    }
    fn dropped(&self) -> Vec<u32> {
        self.dropped.lock().unwrap().clone()
    }
    fn clones(&self) -> usize {
        self.clones.load(Ordering::SeqCst)
    }
    fn arm(&self, id: u32) {
        *self.panic_on.lock().unwrap() = Some(id);
    }
}

/// A message that logs its clones and drops, and whose drop panics once when armed.
struct Tracked {
    id: u32,
    log: Log,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.log.clones.fetch_add(1, Ordering::SeqCst);
        Tracked { id: self.id, log: self.log.clone() }
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.dropped.lock().unwrap().push(self.id);
        let mut armed = self.log.panic_on.lock().unwrap();
        if *armed == Some(self.id) {
            *armed = None;
            drop(armed);
            panic!("the drop of message {} panics", self.id);
        }
    }
}

/// Runs `scenario` within the suite's deadline (a hang fails instead of blocking).
fn bounded_in_time(scenario: impl FnOnce() + Send + 'static) {
    within(DEADLINE, scenario);
}

// ---- Broadcast: lag arithmetic.

/// tokio `lag_again_before_reading_retained_messages`: a second lag counts from where the first
/// left the cursor (the oldest kept then), not from where the receiver started.
#[test]
fn broadcast_a_second_lag_counts_from_the_oldest_kept_at_the_first() {
    bounded_in_time(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(2);
        for n in 1..=3 {
            tx.send(n).unwrap();
        }
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
        assert_eq!(rx.len(), 2, "2 and 3 are kept for it");
        for n in 4..=6 {
            tx.send(n).unwrap();
        }
        // Its cursor was at 2: 2, 3 and 4 fell out.
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(3)));
        assert_eq!(rx.try_recv(), Ok(5));
        assert_eq!(rx.try_recv(), Ok(6));
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Empty));
    });
}

/// tokio `lag_catch_up_then_lag_again` and `single_slot_capacity_lag_semantics`: with one slot,
/// each message past the first that the receiver did not read is one missed.
#[test]
fn broadcast_capacity_one_keeps_the_last_message_and_counts_every_other_as_missed() {
    bounded_in_time(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(1);
        tx.send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1), "within capacity: no lag");
        for n in 2..=5 {
            tx.send(n).unwrap();
        }
        assert_eq!(tx.len(), 1);
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(3)));
        assert_eq!(rx.try_recv(), Ok(5));
        tx.send(6).unwrap();
        tx.send(7).unwrap();
        drop(tx);
        // Sender gone with the receiver behind: the lag, then the kept value, then Closed.
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
        assert_eq!(rx.try_recv(), Ok(7));
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Closed));
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Closed), "and stays closed");
    });
}

/// tokio `single_capacity_recvs_after_drop_1` and `dropping_sender_does_not_overwrite`: the
/// sender's drop neither overwrites nor drops what is kept.
#[test]
fn broadcast_the_senders_drop_keeps_what_is_queued_for_the_receiver() {
    bounded_in_time(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(1);
        tx.send(1).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Closed));

        let (tx, mut rx) = broadcast::channel::<u32>(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        drop(tx);
        klaw::runtime::block_on(async {
            assert_eq!(rx.recv().await, Ok(1));
            assert_eq!(rx.recv().await, Ok(2));
            assert_eq!(rx.recv().await, Err(broadcast::RecvError::Closed));
        });
    });
}

/// The largest capacity is accepted, allocates nothing up front, and never lags a receiver
/// within it; one past it panics naming the range (the doc's promise).
#[test]
fn broadcast_the_largest_capacity_works_and_one_past_it_panics_naming_the_range() {
    bounded_in_time(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(broadcast::MAX_CAPACITY);
        assert_eq!(tx.capacity(), broadcast::MAX_CAPACITY);
        for n in 0..1000 {
            assert_eq!(tx.send(n), Ok(1));
        }
        assert_eq!((tx.len(), rx.len()), (1000, 1000));
        for n in 0..1000 {
            assert_eq!(rx.try_recv(), Ok(n));
        }
        assert!(tx.is_empty() && rx.is_empty());

        let past = catch_unwind(|| broadcast::channel::<u32>(broadcast::MAX_CAPACITY + 1));
        let message = past.expect_err("one past the largest capacity panics");
        let message = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| message.downcast_ref::<&str>().unwrap().to_string());
        assert!(
            message.contains(&format!("1..={}", broadcast::MAX_CAPACITY)),
            "the panic names the accepted range: {message}"
        );
    });
}

// ---- Broadcast: receivers, subscriptions and the values they hold.

/// tokio `resubscribe_to_closed_channel`: a receiver made after the last sender went is closed
/// at once (it has nothing to wait for), and so is its stream.
#[test]
fn broadcast_a_resubscribed_receiver_of_a_closed_channel_is_closed_at_once() {
    bounded_in_time(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(2);
        tx.send(1).unwrap();
        drop(tx);
        let mut late = rx.resubscribe();
        assert_eq!(late.try_recv(), Err(broadcast::TryRecvError::Closed));
        assert_eq!(klaw::runtime::block_on(late.next()), None);
        assert_eq!(rx.try_recv(), Ok(1), "the first receiver still has its message");
    });
}

/// Values queued when receivers go are dropped exactly once, as soon as no receiver can read
/// them any more, and never while one still can. A receiver subscribed after some sends does
/// not hold the earlier messages.
#[test]
fn broadcast_values_are_dropped_once_when_no_remaining_receiver_needs_them() {
    bounded_in_time(|| {
        let log = Log::default();
        let (tx, first) = broadcast::channel::<Tracked>(8);
        tx.send(log.value(0)).unwrap();
        tx.send(log.value(1)).unwrap();
        let mut late = tx.subscribe(); // sees 2 and 3 only
        tx.send(log.value(2)).unwrap();
        tx.send(log.value(3)).unwrap();
        assert_eq!(late.len(), 2);
        assert!(log.dropped().is_empty());
        drop(first);
        assert_eq!(log.dropped(), [0, 1], "only the first receiver could still read 0 and 1");
        assert_eq!(tx.len(), 2);
        let two = late.try_recv().unwrap();
        assert_eq!(two.id, 2);
        assert_eq!(log.clones(), 0, "the last reader takes the message without a clone");
        drop(two);
        drop(late);
        assert_eq!(log.dropped(), [0, 1, 2, 3], "each once, in the order they were sent");
        assert!(tx.is_empty());
        drop(tx);
        assert_eq!(log.dropped(), [0, 1, 2, 3]);
    });
}

/// A lagging receiver's dropped messages and the ones it still had to read are each dropped
/// once (the evicted ones by the send, the kept ones with the receiver), none twice.
#[test]
fn broadcast_a_lagging_receiver_dropped_releases_each_kept_value_once() {
    bounded_in_time(|| {
        let log = Log::default();
        let (tx, mut keen) = broadcast::channel::<Tracked>(2);
        let slow = tx.subscribe();
        for n in 0..5 {
            tx.send(log.value(n)).unwrap();
            drop(keen.try_recv().unwrap()); // a clone: `slow` still needs it
        }
        assert_eq!(log.clones(), 5);
        let mut dropped = log.dropped();
        dropped.sort_unstable();
        // keen's five clones (0 to 4) and the originals the sends evicted (0, 1, 2).
        assert_eq!(dropped, [0, 0, 1, 1, 2, 2, 3, 4]);
        assert_eq!(slow.len(), 2);
        drop(slow);
        let mut dropped = log.dropped();
        dropped.sort_unstable();
        assert_eq!(dropped, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4], "the kept 3 and 4, once each");
        assert!(tx.is_empty());
    });
}

/// A value whose `Clone` panics in one receiver's `recv`: nothing is left locked, the other
/// receivers and the sender go on, and the value is dropped once.
#[test]
fn broadcast_a_clone_panic_leaves_the_channel_usable_by_everyone() {
    bounded_in_time(|| {
        use reenter::PanicsOnClone;
        let (tx, mut a) = broadcast::channel::<PanicsOnClone>(4);
        let mut b = tx.subscribe();
        let mut c = tx.subscribe();
        tx.send(PanicsOnClone(1)).unwrap();
        let rt = common::runtime(2);
        let panicked = rt.block_on(rt.spawn(async move {
            let _ = a.recv().await; // clones message 1 (b and c still need it): panics
        }));
        assert!(matches!(panicked, Err(klaw::TaskError::Panicked(_))), "{panicked:?}");
        assert_eq!(tx.len(), 1, "b and c still have to read it; the lock is free");
        assert_eq!(tx.send(PanicsOnClone(2)), Ok(2), "a is gone with its task");
        assert!(catch_unwind(AssertUnwindSafe(|| b.try_recv())).is_err(), "b clones too");
        assert_eq!(b.try_recv(), Ok(PanicsOnClone(2)));
        // c is the last reader of both: it takes them without a clone.
        assert_eq!(c.try_recv(), Ok(PanicsOnClone(1)));
        assert_eq!(rt.block_on(c.recv()), Ok(PanicsOnClone(2)));
        assert!(tx.is_empty());
    });
}

/// A send that evicts a message whose `Drop` panics still wakes the receivers waiting for the
/// message it queued: the message is in the channel (a later poll finds it), so a waiting
/// receiver must hear of it. (klaw drops evicted values outside the lock so that such a drop
/// touches no other receiver; tokio's users expect no wake-up lost to a panicking destructor.)
#[test]
fn broadcast_an_evicted_value_whose_drop_panics_still_wakes_the_waiting_receivers() {
    bounded_in_time(|| {
        let log = Log::default();
        let (tx, _slow) = broadcast::channel::<Tracked>(1);
        tx.send(log.value(0)).unwrap(); // only `_slow` holds it
        let mut waiting = tx.subscribe();
        let waker = counting_waker();
        {
            let mut recv = pin!(waiting.recv());
            assert!(recv.as_mut().poll(&mut waker.cx()).is_pending());
            log.arm(0);
            let sent = catch_unwind(AssertUnwindSafe(|| tx.send(log.value(1))));
            assert!(sent.is_err(), "the evicted value's panic comes through the send");
            assert_eq!(log.dropped(), [0], "the evicted value was dropped once");
            assert_eq!(
                waker.woken(),
                1,
                "the receiver waiting for the message the send queued was never woken"
            );
            match recv.poll(&mut waker.cx()) {
                Poll::Ready(Ok(value)) => assert_eq!(value.id, 1),
                other => panic!("the queued message is there: {other:?}"),
            }
        }
    });
}

/// The same in a runtime: a task waiting on `recv` gets the message although the send that
/// queued it panicked dropping the message it evicted.
#[test]
fn broadcast_a_task_waiting_on_recv_gets_a_message_whose_send_panicked_in_an_evicted_drop() {
    bounded_in_time(|| {
        let log = Log::default();
        let rt = common::runtime(2);
        let (tx, _slow) = broadcast::channel::<Tracked>(1);
        tx.send(log.value(0)).unwrap();
        let mut waiting = tx.subscribe();
        let started = Arc::new(AtomicBool::new(false));
        let is_started = started.clone();
        let receiver = rt.spawn(async move {
            is_started.store(true, Ordering::SeqCst);
            waiting.recv().await.map(|value| value.id)
        });
        common::wait_for("the receiving task started", || started.load(Ordering::SeqCst));
        std::thread::sleep(ms(50)); // it waits in recv
        log.arm(0);
        assert!(catch_unwind(AssertUnwindSafe(|| tx.send(log.value(1)))).is_err());
        let got = within(ms(2000), move || rt.block_on(receiver));
        assert_eq!(got.expect("the task ended"), Ok(1));
    });
}

/// The last receiver dropped with a message whose `Drop` panics still wakes `Sender::closed`:
/// `receiver_count()` is 0, so the future must end. (The MPMC channel closes before it drops
/// what is queued; see the next test.)
#[test]
fn broadcast_the_last_receivers_drop_wakes_sender_closed_even_if_a_value_drop_panics() {
    bounded_in_time(|| {
        let log = Log::default();
        let (tx, rx) = broadcast::channel::<Tracked>(4);
        tx.send(log.value(0)).unwrap();
        tx.send(log.value(1)).unwrap();
        let waker = counting_waker();
        let mut closed = pin!(tx.closed());
        assert!(closed.as_mut().poll(&mut waker.cx()).is_pending());
        log.arm(0);
        assert!(catch_unwind(AssertUnwindSafe(move || drop(rx))).is_err());
        assert_eq!(log.dropped(), [0, 1], "both dropped once, the one after the panic too");
        assert_eq!(tx.receiver_count(), 0);
        assert_eq!(waker.woken(), 1, "Sender::closed was never woken");
        assert!(closed.poll(&mut waker.cx()).is_ready());
    });
}

/// The MPMC counterpart: the last receiver's drop closes the channel (waking `closed()`)
/// before it drops what is queued, so a panicking drop loses no wake-up there.
#[test]
fn mpmc_the_last_receivers_drop_wakes_sender_closed_even_if_a_value_drop_panics() {
    bounded_in_time(|| {
        for (name, (tx, rx)) in [
            ("ring", bounded::<Tracked>(4)),
            ("list", bounded::<Tracked>(5000)),
            ("unbounded", unbounded::<Tracked>()),
        ] {
            let log = Log::default();
            tx.try_send(log.value(0)).unwrap();
            tx.try_send(log.value(1)).unwrap();
            let waker = counting_waker();
            let mut closed = pin!(tx.closed());
            assert!(closed.as_mut().poll(&mut waker.cx()).is_pending(), "{name}");
            log.arm(0);
            assert!(catch_unwind(AssertUnwindSafe(move || drop(rx))).is_err(), "{name}");
            assert_eq!(log.dropped(), [0, 1], "{name}");
            assert_eq!(waker.woken(), 1, "{name}");
            assert!(closed.poll(&mut waker.cx()).is_ready(), "{name}");
        }
    });
}

// ---- MPMC: what is queued when a channel goes.

/// The values queued in a channel whose last receiver goes are dropped once each, oldest first
/// (tokio's receiver drains its queue front to back; klaw's docs say only "dropped at once").
#[test]
fn mpmc_queued_values_are_dropped_once_oldest_first_when_the_last_receiver_goes() {
    bounded_in_time(|| {
        for (name, (tx, rx)) in [
            ("ring", bounded::<Tracked>(8)),
            ("list", bounded::<Tracked>(5000)),
            ("unbounded", unbounded::<Tracked>()),
        ] {
            let log = Log::default();
            for n in 0..6 {
                tx.try_send(log.value(n)).unwrap();
            }
            assert_eq!(rx.try_recv().map(|v| v.id).ok(), Some(0), "{name}");
            let other = rx.clone();
            drop(rx);
            assert_eq!(log.dropped(), [0], "{name}: a receiver remains; nothing else dropped");
            drop(other);
            assert_eq!(log.dropped(), [0, 1, 2, 3, 4, 5], "{name}");
            assert!(tx.is_closed(), "{name}");
            assert_eq!(tx.len(), 0, "{name}");
            let back = tx.try_send(log.value(9)).unwrap_err();
            assert!(back.is_closed(), "{name}");
            drop(back);
            drop(tx);
            assert_eq!(log.dropped(), [0, 1, 2, 3, 4, 5, 9], "{name}: nothing dropped twice");
        }
    });
}

/// Broadcast does the same: what the last receiver had yet to read is dropped oldest first.
#[test]
fn broadcast_queued_values_are_dropped_once_oldest_first_when_the_last_receiver_goes() {
    bounded_in_time(|| {
        let log = Log::default();
        let (tx, rx) = broadcast::channel::<Tracked>(4);
        for n in 0..6 {
            tx.send(log.value(n)).unwrap(); // 0 and 1 evicted on the way
        }
        assert_eq!(log.dropped(), [0, 1]);
        drop(rx);
        assert_eq!(log.dropped(), [0, 1, 2, 3, 4, 5]);
    });
}

// ---- MPMC: the tokio-style API.

/// tokio `test_rx_len_when_close_is_called*`: `close` keeps what is queued (len counts it),
/// the capacity is unchanged, and a closed channel drains then says `Closed`, by `try_recv`,
/// `recv_blocking` and the `Stream` alike.
#[test]
fn mpmc_close_keeps_len_and_capacity_and_every_receive_form_drains_then_reports_closed() {
    bounded_in_time(|| {
        for (name, (tx, mut rx), capacity) in [
            ("ring", bounded::<u32>(4), Some(4)),
            ("list", bounded::<u32>(5000), Some(5000)),
            ("unbounded", unbounded::<u32>(), None),
        ] {
            for n in 0..3 {
                tx.try_send(n).unwrap();
            }
            assert!(rx.close(), "{name}");
            assert!(!tx.close(), "{name}: already closed");
            assert_eq!((tx.len(), rx.len(), rx.is_empty()), (3, 3, false), "{name}");
            assert_eq!((tx.capacity(), rx.capacity()), (capacity, capacity), "{name}");
            assert_eq!(tx.send_blocking(7).unwrap_err().into_inner(), 7, "{name}");
            assert_eq!(tx.try_send(8), Err(TrySendError::Closed(8)), "{name}");
            assert_eq!(rx.try_recv(), Ok(0), "{name}");
            assert_eq!(rx.recv_blocking(), Ok(1), "{name}");
            assert_eq!(klaw::runtime::block_on(rx.next()), Some(2), "{name}");
            assert!(rx.is_empty(), "{name}");
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "{name}");
            assert_eq!(rx.recv_blocking(), Err(RecvError::Closed), "{name}");
            assert_eq!(klaw::runtime::block_on(rx.next()), None, "{name}");
            assert_eq!(klaw::runtime::block_on(rx.next()), None, "{name}: ended stays ended");
            // tx is alive: a weak sender still upgrades, to a closed sender.
            let upgraded = tx.downgrade().upgrade().expect("a strong sender lives");
            assert!(upgraded.is_closed(), "{name}");
            klaw::runtime::block_on(upgraded.closed()); // resolves at once
        }
    });
}

/// tokio `test_rx_is_closed_when_dropping_all_senders_except_weak_senders` and
/// `actor_weak_sender`: weak senders neither keep the channel open nor count as senders; an
/// upgraded one is a sender until dropped; once the last strong sender is gone, no upgrade
/// succeeds although the receiver still lives, and the receiver drains then ends.
#[test]
fn mpmc_weak_senders_feed_an_actor_until_the_last_strong_sender_goes() {
    bounded_in_time(|| {
        let rt = common::runtime(2);
        let (tx, rx) = bounded::<u32>(2);
        let weak = tx.downgrade();
        let actor = rt.spawn(async move {
            let mut got = Vec::new();
            while let Ok(n) = rx.recv().await {
                got.push(n);
            }
            got
        });
        let feeder = {
            let weak = weak.clone();
            rt.spawn(async move {
                for n in 0..20 {
                    // Upgrade per message, as an actor's self-reference does.
                    let Some(tx) = weak.upgrade() else { return n };
                    if tx.send(n).await.is_err() {
                        return n;
                    }
                }
                20
            })
        };
        let fed = rt.block_on(feeder).expect("the feeder ended");
        assert_eq!(fed, 20, "the strong sender lived throughout");
        assert_eq!(tx.sender_count(), 1, "every upgrade was dropped; weak ones do not count");
        drop(tx);
        assert!(weak.upgrade().is_none(), "no strong sender left");
        let got = rt.block_on(actor).expect("the actor ended once only weak senders were left");
        assert_eq!(got, (0..20).collect::<Vec<_>>());
    });
}

/// A `send` cancelled while it waits in line drops its value with the future, once, and never
/// delivers it; the place it waited for goes to the next sender (book: "dropping it sends
/// nothing; the value is dropped with the future").
#[test]
fn mpmc_a_send_cancelled_in_line_drops_its_value_once_and_delivers_nothing() {
    bounded_in_time(|| {
        for (name, (tx, rx)) in
            [("ring", bounded::<Tracked>(1)), ("list", klaw::__private::growing_bounded(1))]
        {
            let log = Log::default();
            tx.try_send(log.value(0)).unwrap();
            {
                let mut cancelled = pin!(tx.send(log.value(1)));
                assert!(poll_into_line(cancelled.as_mut()).is_pending(), "{name}");
                let mut next = pin!(tx.send(log.value(2)));
                assert!(poll_into_line(next.as_mut()).is_pending(), "{name}");
                assert_eq!(rx.try_recv().map(|v| v.id).ok(), Some(0), "{name}");
                // The freed place was handed to `cancelled`, which is dropped unpolled.
            }
            assert_eq!(log.dropped(), [0, 2, 1], "{name}: both futures dropped their values");
            assert_eq!(rx.try_recv().map(|v| v.id), Err(TryRecvError::Empty), "{name}");
            drop(tx);
            assert_eq!(rx.try_recv().map(|v| v.id), Err(TryRecvError::Closed), "{name}");
        }
    });
}

/// `bounded(usize::MAX)`, the largest capacity, is accepted, allocates nothing up front, and
/// its counts do not overflow: `is_full` is false, a permit and `force_send` displace nothing.
#[test]
fn mpmc_the_largest_capacity_works_without_overflow() {
    bounded_in_time(|| {
        let (tx, rx) = bounded::<u32>(usize::MAX);
        assert_eq!(rx.capacity(), Some(usize::MAX));
        for n in 0..100 {
            tx.try_send(n).unwrap();
        }
        assert!(!tx.is_full() && !rx.is_full());
        klaw::runtime::block_on(async {
            let permit = tx.reserve().await.expect("open");
            assert!(!tx.is_full());
            assert_eq!(tx.force_send(100), Ok(None));
            permit.send(101).unwrap();
        });
        assert_eq!(rx.len(), 102);
        assert_eq!(rx.try_recv(), Ok(0));
    });
}

// ---- Oneshot.

/// tokio `close_try_recv_poll`, `explicit_close_try_recv` and the `receiver_is_*_rx_close`
/// tests: after `close`, `try_recv` says `Closed`, awaiting still resolves `Closed` (and only
/// then is the receiver terminated), and `is_empty` is true.
#[test]
fn oneshot_close_then_try_recv_then_poll_each_say_closed() {
    bounded_in_time(|| {
        let (tx, mut rx) = oneshot::channel::<u32>();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        rx.close();
        assert!(rx.is_empty());
        assert!(!rx.is_terminated(), "not terminated until it gave its result");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(poll_noop(Pin::new(&mut rx)), Poll::Ready(Err(RecvError::Closed)));
        assert!(rx.is_terminated());
        assert_eq!(tx.send(3).unwrap_err().into_inner(), 3, "refused after close");
    });
}

/// tokio `receiver_is_*_drop` and `close_tx`: a sender dropped without sending makes
/// `try_recv` say `Closed` (not `Empty`) and a waiting receiver wake with `Closed`.
#[test]
fn oneshot_try_recv_states_follow_the_sender() {
    bounded_in_time(|| {
        let (tx, mut rx) = oneshot::channel::<u32>();
        let waker = counting_waker();
        assert!(Pin::new(&mut rx).poll(&mut waker.cx()).is_pending());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(waker.woken(), 1);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert!(rx.is_empty());
        assert!(rx.is_terminated(), "as tokio's: nothing can come any more");
        assert_eq!(Pin::new(&mut rx).poll(&mut waker.cx()), Poll::Ready(Err(RecvError::Closed)));
        assert!(rx.is_terminated());

        let (tx, mut rx) = oneshot::channel::<u32>();
        tx.send(4).unwrap();
        assert!(!rx.is_empty());
        assert_eq!(rx.try_recv(), Ok(4));
        assert!(rx.is_terminated() && rx.is_empty());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "the one value was taken");
    });
}

/// tokio `close_rx`, `explicit_close_poll`: `poll_closed` is `Pending` while the receiver is
/// there, its waker is woken by the receiver's `close` or drop, and it is `Ready` from then on.
#[test]
fn oneshot_poll_closed_is_woken_by_the_receivers_close_and_drop() {
    bounded_in_time(|| {
        for by_drop in [false, true] {
            let (mut tx, mut rx) = oneshot::channel::<u32>();
            let waker = counting_waker();
            assert_eq!(tx.poll_closed(&mut waker.cx()), Poll::Pending);
            assert_eq!(tx.poll_closed(&mut waker.cx()), Poll::Pending, "a second poll");
            if by_drop {
                drop(rx);
            } else {
                rx.close();
                assert_eq!(poll_noop(Pin::new(&mut rx)), Poll::Ready(Err(RecvError::Closed)));
            }
            assert_eq!(waker.woken(), 1, "by_drop: {by_drop}");
            assert!(tx.is_closed());
            assert_eq!(tx.poll_closed(&mut waker.cx()), Poll::Ready(()));
            assert_eq!(tx.send(1).unwrap_err().into_inner(), 1);
        }
    });
}

/// tokio `sender_changes_task` and `drops_tasks`: the sender keeps the waker of the latest
/// `poll_closed` only (the earlier task's is let go, and not woken), and lets it go when it is
/// dropped.
#[test]
fn oneshot_poll_closed_keeps_the_latest_waker_and_drops_it_with_the_sender() {
    bounded_in_time(|| {
        let (mut tx, rx) = oneshot::channel::<u32>();
        let (first, second) = (counting_waker(), counting_waker());
        assert_eq!(tx.poll_closed(&mut first.cx()), Poll::Pending);
        assert_eq!((first.held_elsewhere(), second.held_elsewhere()), (1, 0));
        assert_eq!(tx.poll_closed(&mut second.cx()), Poll::Pending);
        assert_eq!((first.held_elsewhere(), second.held_elsewhere()), (0, 1));
        drop(rx);
        assert_eq!((first.woken(), second.woken()), (0, 1));
        assert_eq!(tx.poll_closed(&mut second.cx()), Poll::Ready(()));

        let (mut tx, _rx) = oneshot::channel::<u32>();
        let waiting = counting_waker();
        assert_eq!(tx.poll_closed(&mut waiting.cx()), Poll::Pending);
        assert_eq!(waiting.held_elsewhere(), 1);
        drop(tx);
        assert_eq!(waiting.held_elsewhere(), 0, "the dropped sender kept its waker");
        assert_eq!(waiting.woken(), 0);
    });
}

/// The sender's `closed()` in a task is woken by the receiver's `close` from another task and
/// by the receiver's drop; the value sent afterwards comes back whole.
#[test]
fn oneshot_sender_closed_in_a_task_wakes_on_close_and_on_drop_and_the_value_comes_back() {
    for by_drop in [false, true] {
        bounded_in_time(move || {
            let log = Log::default();
            let rt = common::runtime(2);
            let (mut tx, mut rx) = oneshot::channel::<Tracked>();
            let value = log.value(7);
            let producer = rt.spawn(async move {
                tx.closed().await;
                assert!(tx.is_closed());
                tx.send(value).unwrap_err().into_inner()
            });
            std::thread::sleep(ms(20));
            let receiver = rt.spawn(async move {
                if by_drop {
                    drop(rx);
                } else {
                    rx.close();
                    assert_eq!((&mut rx).await.map(|v| v.id), Err(RecvError::Closed));
                }
            });
            rt.block_on(receiver).unwrap();
            let back = within(ms(2000), move || rt.block_on(producer)).expect("producer ended");
            assert_eq!(back.id, 7);
            assert!(log.dropped().is_empty(), "the refused value was not dropped");
            drop(back);
            assert_eq!(log.dropped(), [7]);
        });
    }
}

/// A value sent, then the receiver closed and dropped without receiving: dropped once, with the
/// receiver.
#[test]
fn oneshot_a_sent_value_the_receiver_never_takes_is_dropped_once_with_it() {
    bounded_in_time(|| {
        let log = Log::default();
        let (tx, mut rx) = oneshot::channel::<Tracked>();
        tx.send(log.value(1)).unwrap();
        rx.close();
        assert!(!rx.is_empty(), "close keeps a value already sent");
        assert!(log.dropped().is_empty());
        drop(rx);
        assert_eq!(log.dropped(), [1]);
    });
}

// ---- Futures dropped while they wait.

/// A broadcast `recv` dropped while it waits (a `select!` arm that lost, a timeout) lets go of
/// its task's waker, as tokio's `Recv` does when dropped: the receiver may live on for long
/// without receiving, and should not keep the task's waker (and through it the task) until the
/// next send. (klaw's docs are silent; this is what a tokio user expects.)
#[test]
fn broadcast_a_recv_dropped_while_waiting_lets_go_of_its_waker() {
    bounded_in_time(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(2);
        let tracker = Arc::new(WakeCount::default());
        let waker = std::task::Waker::from(tracker.clone());
        {
            let mut recv = pin!(rx.recv());
            assert!(recv.as_mut().poll(&mut std::task::Context::from_waker(&waker)).is_pending());
        }
        drop(waker);
        assert_eq!(
            Arc::strong_count(&tracker),
            1,
            "the dropped recv's waker is still held by the channel"
        );
        tx.send(1).unwrap();
        assert_eq!(tracker.0.load(Ordering::SeqCst), 0, "nobody waits: nobody is woken");
        assert_eq!(rx.try_recv(), Ok(1), "and the message was not taken");
    });
}

/// The same for a watch receiver's `changed` and `wait_for`: dropped in line, each lets go of
/// its task's waker, and the next send wakes nobody. (Both kept it until that send before.)
#[test]
fn watch_changed_and_wait_for_dropped_while_waiting_let_go_of_their_wakers() {
    bounded_in_time(|| {
        let (tx, mut rx) = klaw::channel::watch::channel(0u32);
        let tracker = Arc::new(WakeCount::default());
        let waker = std::task::Waker::from(tracker.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        {
            let mut changed = pin!(rx.changed());
            assert!(changed.as_mut().poll(&mut cx).is_pending());
        }
        {
            let mut wait_for = pin!(rx.wait_for(|value| *value == 1));
            assert!(wait_for.as_mut().poll(&mut cx).is_pending());
        }
        drop(waker);
        assert_eq!(Arc::strong_count(&tracker), 1, "a dropped wait's waker is still held");
        tx.send(1).unwrap();
        assert_eq!(tracker.0.load(Ordering::SeqCst), 0, "nobody waits: nobody is woken");
        assert_eq!(*rx.borrow_and_update(), 1);
    });
}

/// The same for an MPMC `recv` and a `send` in line, and a `Sender::closed` of each channel:
/// each lets go of its waker when dropped (these pass; they are the contrast).
#[test]
fn mpmc_futures_and_sender_closed_dropped_while_waiting_let_go_of_their_wakers() {
    bounded_in_time(|| {
        let tracker = Arc::new(WakeCount::default());
        let waker = std::task::Waker::from(tracker.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let (tx, rx) = bounded::<u32>(1);
        {
            let mut recv = pin!(rx.recv());
            assert!(poll_into_line(recv.as_mut()).is_pending());
            assert!(recv.as_mut().poll(&mut cx).is_pending());
        }
        tx.try_send(1).unwrap();
        {
            let mut send = pin!(tx.send(2));
            assert!(poll_into_line(send.as_mut()).is_pending());
            assert!(send.as_mut().poll(&mut cx).is_pending());
        }
        {
            let mut closed = pin!(tx.closed());
            assert!(closed.as_mut().poll(&mut cx).is_pending());
        }
        let (btx, _brx) = broadcast::channel::<u32>(1);
        {
            let mut closed = pin!(btx.closed());
            assert!(closed.as_mut().poll(&mut cx).is_pending());
        }
        let (mut otx, _orx) = oneshot::channel::<u32>();
        {
            let mut closed = pin!(otx.closed());
            assert!(closed.as_mut().poll(&mut cx).is_pending());
        }
        drop(waker);
        assert_eq!(Arc::strong_count(&tracker), 1, "a dropped future kept its waker");
    });
}

#[derive(Default)]
struct WakeCount(AtomicUsize);

impl std::task::Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// ---- The Sink.

/// `Sink::poll_close` closes the channel for everyone (the doc's promise); a `poll_ready` after
/// it fails, and a place reserved before the close gives the item back from `start_send`.
#[test]
fn mpmc_sink_close_refuses_later_items_and_gives_a_reserved_items_value_back() {
    bounded_in_time(|| {
        use futures_util::Sink;
        let (mut tx, rx) = bounded::<u32>(2);
        let mut other = tx.clone();
        let ready = poll_noop(pin!(std::future::poll_fn(|cx| Pin::new(&mut other).poll_ready(cx))));
        assert!(matches!(ready, Poll::Ready(Ok(()))));
        let closed = poll_noop(pin!(std::future::poll_fn(|cx| Pin::new(&mut tx).poll_close(cx))));
        assert!(matches!(closed, Poll::Ready(Ok(()))));
        assert!(rx.is_closed());
        let refused = Pin::new(&mut other).start_send(5).unwrap_err();
        assert_eq!(refused.into_inner(), Some(5), "the reserved item comes back");
        let again = poll_noop(pin!(std::future::poll_fn(|cx| Pin::new(&mut tx).poll_ready(cx))));
        match again {
            Poll::Ready(Err(error)) => assert_eq!(error.into_inner(), None),
            other => panic!("a closed sink is not ready: {other:?}"),
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}
