//! Behaviours of tokio's `tokio/tests/sync_broadcast.rs`, `sync_watch.rs`, `sync_oneshot.rs`,
//! `sync_mpsc.rs`, `sync_notify.rs`, `sync_semaphore_owned.rs`, `sync_rwlock.rs` and
//! `sync_barrier.rs` (tokio at `ea91b33c`) that the other ports leave out (those are in
//! `ported_tokio_sync`, `ported_tokio_sync_primitives`, `channel_tokio_edges`, `channel_api`,
//! `channel_edges`, `channel_value_ledger`, `channel_faults`, `sync_primitives`,
//! `sync_primitive_edges` and `sync_tokio_forms`). Each test names the tokio test it translates.
//!
//! Names and helpers as in `ported_tokio_sync.rs`: tokio-test's `task::spawn(..).poll()` and
//! `is_woken()` are `pinned_task::Task`. Where the book's "Coming from tokio" says klaw differs
//! (a broadcast capacity is not rounded up; the leader of a barrier group is its last arrival),
//! klaw's meaning is the one checked.

mod common;
#[path = "common/pinned_task.rs"]
mod pinned_task;

use std::cell::Cell;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use common::{DEADLINE, within};
use futures_lite::Stream;
use klaw::channel::{RecvError, TryRecvError, TrySendError, broadcast, unbounded, watch};
use klaw::sync::{Barrier, Notify, RwLock};
use pinned_task::{Task, every_mpmc, poll_noop};

// ---- Broadcast (tokio's `sync_broadcast.rs`).

/// tokio `resubscribe_lagged` and `lagged_count_matches_number_of_overwritten_messages`, for
/// receivers that came after some messages were sent (by `subscribe` and by `resubscribe`): a
/// lag counts only the messages that fell out after the receiver came, not those kept for the
/// receivers before it; and the drop of the first receiver, which released those, changes
/// nothing to it. (`channel_value_ledger`'s race subscribes late too, but checks no count before
/// a receiver's first value; `ported_tokio_sync` lags only receivers that were there first.)
#[test]
fn broadcast_a_late_receiver_lags_only_by_what_fell_out_after_it_came() {
    use broadcast::TryRecvError::{Empty, Lagged};
    let (tx, mut first) = broadcast::channel(2);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let mut subscribed = tx.subscribe();
    let mut resubscribed = first.resubscribe();
    assert_eq!(tx.receiver_count(), 3);
    for value in 3..=5 {
        tx.send(value).unwrap();
    }
    // Kept: 4 and 5. `first` missed 1, 2 and 3; the two late receivers only 3.
    assert_eq!(tx.len(), 2);
    assert_eq!((first.len(), subscribed.len(), resubscribed.len()), (2, 2, 2));
    assert_eq!(subscribed.try_recv(), Err(Lagged(1)), "charged for messages sent before it came");
    assert_eq!(resubscribed.try_recv(), Err(Lagged(1)), "charged for messages sent before it came");
    assert_eq!(first.try_recv(), Err(Lagged(3)));
    let receivers =
        [("first", &mut first), ("subscribed", &mut subscribed), ("resub", &mut resubscribed)];
    for (name, rx) in receivers {
        let read = (rx.try_recv(), rx.try_recv(), rx.try_recv());
        assert_eq!(read, (Ok(4), Ok(5), Err(Empty)), "{name}");
    }
    assert!(tx.is_empty());

    // The first receiver goes without reading: 1 (kept only for it) is dropped, 2 stays for
    // the late one, which then misses 2 alone when 3 and 4 come.
    let (tx, first) = broadcast::channel(2);
    tx.send(1).unwrap();
    let mut late = tx.subscribe();
    tx.send(2).unwrap();
    drop(first);
    assert_eq!((tx.len(), late.len()), (1, 1));
    tx.send(3).unwrap();
    tx.send(4).unwrap();
    assert_eq!(late.try_recv(), Err(Lagged(1)));
    assert_eq!((late.try_recv(), late.try_recv(), late.try_recv()), (Ok(3), Ok(4), Err(Empty)));
}

// ---- Watch (tokio's `sync_watch.rs`).

/// tokio `changed_succeeds_on_closed_channel_with_unseen_value`, `rx_mark_changed` and
/// `rx_version_underflow`, for receivers cloned or marked after the last sender went: a clone
/// keeps what its original had not seen (as tokio's copies the version), each receiver sees
/// that value once as a change and then `Closed`, a clone of one that saw it sees `Closed` at
/// once, and `mark_changed` after the end gives exactly one more change (also to `wait_for`).
#[test]
fn watch_receivers_cloned_or_marked_after_the_sender_went_see_their_unseen_value_once() {
    let (tx, mut rx) = watch::channel("A");
    tx.send("B").unwrap();
    drop(tx);
    let mut clone = rx.clone();
    let closed = (Err(RecvError::Closed), Err(RecvError::Closed));
    assert_eq!((rx.has_changed(), clone.has_changed()), closed, "closed either way");
    assert!(clone.borrow().has_changed(), "the clone lost its original's unseen value");
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Ok(())));
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Err(RecvError::Closed)));
    assert_eq!(
        poll_noop(pin!(clone.changed())),
        Poll::Ready(Ok(())),
        "the original seeing B marked it seen for the clone too"
    );
    assert_eq!(*clone.borrow_and_update(), "B");
    assert_eq!(poll_noop(pin!(clone.changed())), Poll::Ready(Err(RecvError::Closed)));

    let mut seen_all = rx.clone();
    assert!(!seen_all.borrow().has_changed());
    assert_eq!(poll_noop(pin!(seen_all.changed())), Poll::Ready(Err(RecvError::Closed)));

    // Marked (twice) after the end: one change, then `Closed`; `has_changed` says `Closed`.
    rx.mark_changed();
    rx.mark_changed();
    assert_eq!(rx.has_changed(), Err(RecvError::Closed));
    assert!(rx.borrow().has_changed());
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Ok(())));
    assert_eq!(poll_noop(pin!(rx.changed())), Poll::Ready(Err(RecvError::Closed)));
    assert!(!seen_all.borrow().has_changed(), "marking one receiver marked another");

    rx.mark_changed();
    let found = klaw::runtime::block_on(rx.wait_for(|value| *value == "B"))
        .map(|value| (*value, value.has_changed()));
    assert_eq!(found, Ok(("B", true)), "the marked value, new to the receiver");
    let after = poll_noop(pin!(rx.changed()));
    assert_eq!(after, Poll::Ready(Err(RecvError::Closed)), "wait_for marked it seen");
}

/// tokio `send_modify_panic`'s "a change not told is not seen" and klaw's `send_if_modified` doc
/// ("the receivers hear of it only if it did"), for the two waits `channel_api` leaves out: a
/// `wait_for` already waiting, and a receiver polled as a `Stream`. A `send_if_modified` whose
/// closure changes the value but returns false wakes neither, and the waiting `wait_for` does
/// not run its predicate again (so does not return a value the receivers were never told of);
/// the next real change wakes both and each gets the value after it.
#[test]
fn watch_send_if_modified_returning_false_wakes_neither_a_waiting_wait_for_nor_the_stream() {
    let (tx, mut rx) = watch::channel(0u32);
    let mut stream = rx.clone();
    let (task, stream_task) = (Task::new(), Task::new());
    let poll_stream = |stream: &mut watch::Receiver<u32>| {
        Pin::new(stream).poll_next(&mut Context::from_waker(stream_task.waker()))
    };
    let checks = Cell::new(0);
    {
        let mut waiting = pin!(rx.wait_for(|value| {
            checks.set(checks.get() + 1);
            *value >= 1
        }));
        assert!(task.poll(waiting.as_mut()).is_pending());
        assert!(poll_stream(&mut stream).is_pending());
        assert_eq!(checks.get(), 1);

        assert!(!tx.send_if_modified(|value| {
            *value = 1; // changed, but said not to be
            false
        }));
        assert!(!task.is_woken(), "wait_for was woken by a change said not to be one");
        assert!(!stream_task.is_woken(), "the stream was woken");
        assert!(task.poll(waiting.as_mut()).is_pending());
        assert_eq!(checks.get(), 1, "the predicate ran again without a change it was told of");
        assert!(poll_stream(&mut stream).is_pending(), "the stream yielded an untold change");

        assert!(tx.send_if_modified(|value| {
            *value = 2;
            true
        }));
        assert!(task.is_woken());
        assert!(stream_task.is_woken());
        let Poll::Ready(Ok(found)) = task.poll(waiting.as_mut()) else {
            panic!("a change it was told of satisfies the predicate")
        };
        assert_eq!((*found, found.has_changed()), (2, true));
    }
    assert_eq!(checks.get(), 2);
    assert_eq!(poll_stream(&mut stream), Poll::Ready(Some(2)));
    assert_eq!(rx.has_changed(), Ok(false));
}

/// tokio `broadcast_sender_new_must_be_closed` and `sync_watch::reopened_after_subscribe`, for
/// the senders made without a receiver (`Sender::new`, tested by doctests only): closed at once
/// (`closed()` is ready, a send gives its value back and stores nothing), open while a
/// subscribed receiver lives (a `closed()` waits, and that receiver's drop wakes it), closed
/// again after.
#[test]
fn broadcast_and_watch_senders_made_without_a_receiver_are_closed_until_one_subscribes() {
    let task = Task::new();
    let tx = broadcast::Sender::<u8>::new(1);
    assert_eq!(tx.receiver_count(), 0);
    assert_eq!(poll_noop(pin!(tx.closed())), Poll::Ready(()), "no receiver: closed at once");
    assert_eq!(tx.send(1).unwrap_err().into_inner(), 1);
    let mut rx = tx.subscribe();
    {
        let mut closed = pin!(tx.closed());
        assert!(task.poll(closed.as_mut()).is_pending(), "a receiver lives");
        assert_eq!(tx.send(2), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2), "it got only what came after it");
        drop(rx);
        assert!(task.is_woken());
        assert_eq!(task.poll(closed), Poll::Ready(()));
    }
    assert_eq!(tx.send(3).unwrap_err().into_inner(), 3);

    let tx = watch::Sender::new(0u8);
    assert!(tx.is_closed());
    assert_eq!(tx.receiver_count(), 0);
    assert_eq!(poll_noop(pin!(tx.closed())), Poll::Ready(()), "no receiver: closed at once");
    assert_eq!(tx.send(1).unwrap_err().into_inner(), 1);
    assert_eq!(*tx.borrow(), 0, "a refused send stored its value");
    assert_eq!(tx.send_replace(2), 0);
    let rx = tx.subscribe();
    assert!(!tx.is_closed());
    assert_eq!(rx.has_changed(), Ok(false), "a new receiver has seen the current value");
    assert_eq!(*rx.borrow(), 2);
    {
        let mut closed = pin!(tx.closed());
        assert!(task.poll(closed.as_mut()).is_pending(), "a receiver lives");
        tx.send(3).unwrap();
        assert_eq!(rx.has_changed(), Ok(true));
        drop(rx);
        assert!(task.is_woken());
        assert_eq!(task.poll(closed), Poll::Ready(()));
    }
    assert!(tx.is_closed());
    assert_eq!(tx.send(4).unwrap_err().into_inner(), 4);
}

// ---- MPMC (tokio's `sync_mpsc.rs`).

/// tokio `test_rx_is_closed_when_calling_close_with_sender`, `try_recv_close_while_empty_*` and
/// `tx_close_gets_none`, for a receiver made after the channel closed, on every buffer: it is
/// closed too, shares what was queued with the receiver it was cloned from, keeps the queue when
/// that one goes (the queue is dropped with the *last* receiver), drains it, then says `Closed`
/// by `try_recv`, `recv` and its `Stream`; its `close` says the channel was closed already.
#[test]
fn mpmc_a_receiver_cloned_after_close_drains_the_queue_then_ends() {
    within(DEADLINE, || {
        for (name, tx, rx) in every_mpmc::<u32>(4) {
            for value in 1..=3 {
                tx.try_send(value).unwrap();
            }
            assert!(rx.close(), "{name}");
            let mut late = rx.clone();
            assert!(late.is_closed(), "{name}");
            assert_eq!(late.receiver_count(), 2, "{name}");
            assert!(!late.close(), "{name}: the channel was closed already");
            assert_eq!(late.try_recv(), Ok(1), "{name}");
            drop(rx);
            assert_eq!(late.len(), 2, "{name}: the first receiver's drop dropped the queue");
            assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)), "{name}");
            assert_eq!(late.try_recv(), Ok(2), "{name}");
            assert_eq!(klaw::runtime::block_on(late.recv()), Ok(3), "{name}");
            assert_eq!(late.try_recv(), Err(TryRecvError::Closed), "{name}");
            assert_eq!(klaw::runtime::block_on(late.recv()), Err(RecvError::Closed), "{name}");
            let next = Pin::new(&mut late).poll_next(&mut Context::from_waker(Waker::noop()));
            assert_eq!(next, Poll::Ready(None), "{name}");
        }

        // Cloned after every sender went, then the original dropped: the clone gets the rest.
        let (tx, rx) = unbounded::<u32>();
        tx.try_send(7).unwrap();
        drop(tx);
        let late = rx.clone();
        drop(rx);
        assert!(late.is_closed());
        assert_eq!(klaw::runtime::block_on(late.recv()), Ok(7));
        assert_eq!(klaw::runtime::block_on(late.recv()), Err(RecvError::Closed));
    });
}

// ---- RwLock (tokio's `sync_rwlock.rs`).

/// tokio `exhaust_reading`, `write_read_shared_pending` and `write_order`, together, on a lock
/// capped at two reads (`with_max_readers`): a read that waits for the cap, then a write, then a
/// read are served in that order. The permit a read gives back goes to the read that waited
/// first, not to the write behind it; the write is woken only once it has every permit, and holds
/// the lock from then on even before it is polled; the read behind the write waits for it;
/// `try_read` never jumps the waiting write. (`sync_tokio_forms` caps reads with no read waiting
/// in front of the write.)
#[test]
fn rwlock_a_capped_lock_serves_reads_and_writes_in_arrival_order() {
    let lock = RwLock::with_max_readers(0u32, 2);
    let (r1, r2) = (lock.try_read().unwrap(), lock.try_read().unwrap());
    let (t3, tw, t4) = (Task::new(), Task::new(), Task::new());
    let mut r3 = pin!(lock.read());
    let mut w = pin!(lock.write());
    let mut r4 = pin!(lock.read());
    assert!(t3.poll(r3.as_mut()).is_pending(), "two reads at most");
    assert!(tw.poll(w.as_mut()).is_pending());
    assert!(t4.poll(r4.as_mut()).is_pending());

    drop(r1);
    assert!(t3.is_woken(), "the freed permit did not go to the read that waited first");
    assert!(!tw.is_woken() && !t4.is_woken());
    let Poll::Ready(g3) = t3.poll(r3.as_mut()) else { panic!("r3 was given its permit") };
    assert!(lock.try_read().is_none(), "try_read jumped the waiting write");

    drop(r2);
    assert!(!tw.is_woken(), "the write was woken before it had every permit");
    assert!(tw.poll(w.as_mut()).is_pending());
    drop(g3);
    assert!(tw.is_woken());
    assert!(!t4.is_woken(), "the read behind the write was let in with it");
    assert!(lock.try_read().is_none() && lock.try_write().is_none(), "the granted write holds it");
    let Poll::Ready(mut g) = tw.poll(w.as_mut()) else { panic!("the write has every permit") };
    *g += 1;
    assert!(t4.poll(r4.as_mut()).is_pending());
    drop(g);
    assert!(t4.is_woken());
    let Poll::Ready(g4) = t4.poll(r4.as_mut()) else { panic!("the write is gone") };
    assert_eq!(*g4, 1);
    assert!(lock.try_read().is_some(), "one of two reads is held");
}

// ---- Barrier (tokio's `sync_barrier.rs`).

/// tokio `tango` and `lots`, with the barrier reused while followers of the groups before have
/// not been polled since they were woken: each late poll completes its wait as a follower of its
/// own group, and does not count as an arrival in the group under way (which would open it one
/// task short, with the wrong leader). The leader of each group is its last arrival (klaw's
/// `BarrierWaitResult::is_leader` doc).
#[test]
fn barrier_a_follower_polled_after_the_next_group_began_is_not_counted_in_it() {
    let leads = |poll: Poll<klaw::sync::BarrierWaitResult>| poll.map(|result| result.is_leader());
    let barrier = Barrier::new(2);
    let (t1, t3) = (Task::new(), Task::new());
    let mut w1 = pin!(barrier.wait());
    assert!(t1.poll(w1.as_mut()).is_pending());
    assert_eq!(leads(poll_noop(pin!(barrier.wait()))), Poll::Ready(true));
    assert!(t1.is_woken());
    // The next group begins before w1 polls again.
    let mut w3 = pin!(barrier.wait());
    assert!(t3.poll(w3.as_mut()).is_pending());
    assert_eq!(leads(t1.poll(w1.as_mut())), Poll::Ready(false));
    assert!(!t3.is_woken(), "w1's late poll counted as an arrival of the next group");
    assert!(t3.poll(w3.as_mut()).is_pending());
    assert_eq!(leads(poll_noop(pin!(barrier.wait()))), Poll::Ready(true));
    assert!(t3.is_woken());
    assert_eq!(leads(t3.poll(w3.as_mut())), Poll::Ready(false));

    // Groups of three: two open before any of their followers polls again.
    let barrier = Barrier::new(3);
    let mut followers = Vec::new();
    for group in 0..2 {
        for _ in 0..2 {
            let (task, mut wait) = (Task::new(), Box::pin(barrier.wait()));
            assert!(task.poll(wait.as_mut()).is_pending(), "group {group}");
            followers.push((task, wait));
        }
        assert_eq!(leads(poll_noop(pin!(barrier.wait()))), Poll::Ready(true), "group {group}");
    }
    for (i, (task, mut wait)) in followers.into_iter().enumerate() {
        assert!(task.is_woken(), "follower {i}");
        assert_eq!(leads(task.poll(wait.as_mut())), Poll::Ready(false), "follower {i}");
    }
    // The late polls counted for nothing: the next group still takes three.
    let (a, b) = (Task::new(), Task::new());
    let mut first = pin!(barrier.wait());
    let mut second = pin!(barrier.wait());
    assert!(a.poll(first.as_mut()).is_pending());
    assert!(b.poll(second.as_mut()).is_pending(), "the group opened a task short");
    assert_eq!(leads(poll_noop(pin!(barrier.wait()))), Poll::Ready(true));
    assert!(a.is_woken() && b.is_woken());
    assert_eq!(leads(a.poll(first)), Poll::Ready(false));
    assert_eq!(leads(b.poll(second)), Poll::Ready(false));
}

// ---- Notify (tokio's `sync_notify.rs`).

/// tokio `notified_multi_notify_drop_one` and
/// `unpolled_future_completed_by_notify_waiters_preserves_notify_one_permit`, crossed: a
/// `notify_one` given to a waiting future, then a `notify_waiters`, then that future dropped
/// before it returned. The `notify_one` was never used, so it passes on to the next in line (a
/// future made after the `notify_waiters`), as tokio's drop passes on a `Notification::One`;
/// the `notify_waiters` does not count as what the dropped future took, and nothing is stored.
#[test]
fn notify_a_notify_one_given_before_notify_waiters_passes_on_when_its_future_is_dropped() {
    let notify = Notify::new();
    let (task, next_task) = (Task::new(), Task::new());
    let mut given = Box::pin(notify.notified());
    assert!(task.poll(given.as_mut()).is_pending());
    notify.notify_one();
    assert!(task.is_woken(), "the notify_one went to it");
    notify.notify_waiters();
    let mut next = pin!(notify.notified());
    assert!(next_task.poll(next.as_mut()).is_pending(), "made after notify_waiters");
    drop(given); // given the notify_one, dropped before it returned
    assert!(next_task.is_woken(), "the unused notify_one was lost with the dropped future");
    assert_eq!(next_task.poll(next.as_mut()), Poll::Ready(()));
    assert!(poll_noop(pin!(notify.notified())).is_pending(), "a permit was stored besides");
}
