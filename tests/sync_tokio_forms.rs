//! The forms of tokio's sync API that a port needs beyond the everyday ones: `Notify`'s
//! `notify_last`, `Notified::enable` and `notified_owned`; `RwLock::with_max_readers`; the
//! blocking `Mutex` and `RwLock` locks; a oneshot receiver that gave its result; and the MPMC
//! channel's `recv_many` (tokio's `sync_mpsc.rs` cases, with klaw's typed result: tokio's `0`
//! for a closed channel is `Err(Closed)`).
//!
//! The `Notify` ones are ported from tokio's `sync_notify.rs` and `sync_notify_owned.rs`
//! (translated: tokio-test's mock task is `common/mock_task.rs`'s `MockTask`); the rest are
//! klaw's own, each stating the rule it checks.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use klaw::sync::{Mutex, Notify, OwnedNotified, RwLock};

#[path = "common/mock_task.rs"]
mod mock_task;

use mock_task::{mock, pending, ready};

// ---- Notify::notify_last

/// tokio: notify_multi_notified_last
#[test]
fn notify_last_wakes_the_last_in_line_only() {
    let notify = Notify::new();
    let mut first = mock(notify.notified());
    let mut last = mock(notify.notified());
    pending(first.poll());
    pending(last.poll());
    notify.notify_last();
    pending(first.poll());
    ready(last.poll());
}

/// tokio: notified_multi_notify_last_drop: a `notify_last` given to a future dropped before it
/// returned goes on to the new last in line, not to the first.
#[test]
fn a_notify_last_whose_future_is_dropped_goes_to_the_next_last_in_line() {
    let notify = Notify::new();
    let mut first = mock(notify.notified());
    let mut middle = mock(notify.notified());
    let mut last = mock(notify.notified());
    pending(first.poll());
    pending(middle.poll());
    pending(last.poll());
    notify.notify_last();
    drop(last);
    assert!(middle.is_woken(), "the notification went on to the one now last");
    ready(middle.poll());
    pending(first.poll());
}

/// A `notify_one` passed on by a dropped future still goes to the first in line, whatever a
/// `notify_last` did before: each notification keeps its own end.
#[test]
fn each_passed_on_notification_keeps_the_end_it_was_sent_to() {
    let notify = Notify::new();
    let (mut a, mut b, mut c, mut d) = (
        mock(notify.notified()),
        mock(notify.notified()),
        mock(notify.notified()),
        mock(notify.notified()),
    );
    for task in [&mut a, &mut b, &mut c, &mut d] {
        pending(task.poll());
    }
    notify.notify_one(); // to a
    notify.notify_last(); // to d
    drop(a); // its notification goes to b, the first now
    drop(d); // its to c, the last now
    ready(b.poll());
    ready(c.poll());
}

/// With nobody waiting, `notify_last` stores the one permit, as `notify_one` does.
#[test]
fn notify_last_with_nobody_waiting_stores_the_permit() {
    let notify = Notify::new();
    notify.notify_last();
    notify.notify_last();
    ready(mock(notify.notified()).poll());
    pending(mock(notify.notified()).poll());
}

// ---- Notified::enable

/// tokio: test_notify_one_after_enable
#[test]
fn an_enabled_future_is_given_a_notify_one_and_says_so() {
    let notify = Notify::new();
    let mut notified = pin!(notify.notified());
    assert!(!notified.as_mut().enable());
    notify.notify_one();
    assert!(notified.as_mut().enable(), "enabled again: ready");
    ready(mock(notified).poll());
    pending(mock(notify.notified()).poll()); // it was not stored as a permit
}

/// tokio: test_poll_after_enable
#[test]
fn a_future_enabled_with_nothing_to_take_is_pending_when_polled() {
    let notify = Notify::new();
    let mut notified = mock(notify.notified());
    assert!(!notified.future.as_mut().enable());
    pending(notified.poll());
    notify.notify_one();
    assert!(notified.is_woken(), "the poll's waker was stored in its place in line");
    ready(notified.poll());
}

/// tokio: test_enable_after_poll: enabling a future that waits keeps the waker of its poll.
#[test]
fn enabling_a_waiting_future_keeps_its_waker() {
    let notify = Notify::new();
    let mut notified = mock(notify.notified());
    pending(notified.poll());
    assert!(!notified.future.as_mut().enable());
    notify.notify_one();
    assert!(notified.is_woken());
}

/// tokio: test_enable_consumes_permit
#[test]
fn enable_takes_the_stored_permit() {
    let notify = Notify::new();
    notify.notify_one();
    let mut first = pin!(notify.notified());
    assert!(first.as_mut().enable());
    let mut second = pin!(notify.notified());
    assert!(!second.as_mut().enable(), "the one permit went to the first");
}

/// tokio's `enable` example: enable, check the condition, then wait; a `notify_one` between
/// the check and the wait is given to this future, so no wake-up is lost even when another
/// future enabled earlier has already gone.
#[test]
fn enabled_before_a_check_no_notify_one_is_lost_between_the_check_and_the_wait() {
    let notify = Notify::new();
    let mut notified = mock(notify.notified());
    assert!(!notified.future.as_mut().enable());
    // The check found nothing; now a producer notifies before the first poll.
    notify.notify_one();
    ready(notified.poll());
}

/// A future enabled, never polled, then dropped passes its notification on, as a polled one.
#[test]
fn an_enabled_future_dropped_unpolled_passes_its_notification_on() {
    let notify = Notify::new();
    let mut enabled = Box::pin(notify.notified());
    assert!(!enabled.as_mut().enable());
    let mut next = mock(notify.notified());
    pending(next.poll());
    notify.notify_one(); // to the enabled one: first in line
    pending(next.poll());
    drop(enabled);
    ready(next.poll());
}

// ---- Notify::notified_owned

/// tokio's sync_notify_owned.rs: notify_notified_one, notify_multi_notified_one, and the drop
/// that passes a notification on, with owned futures.
#[test]
fn owned_futures_wait_in_the_same_line_and_pass_a_notification_on_when_dropped() {
    let notify = Arc::new(Notify::new());
    let mut first = mock(notify.clone().notified_owned());
    let mut second = mock(notify.clone().notified_owned());
    pending(first.poll());
    pending(second.poll());
    notify.notify_one();
    drop(first); // given the notification, dropped before returning it
    ready(second.poll());
    let mut third: mock_task::MockTask<OwnedNotified> = mock(notify.clone().notified_owned());
    notify.notify_waiters();
    ready(third.poll());
}

/// An owned future is `'static`: it moves into a task on another worker, and the `Notify`
/// outlives its last `Arc` held here.
#[klaw::test(workers = 2, timeout = "10s")]
async fn an_owned_notified_moves_into_a_spawned_task() {
    let notify = Arc::new(Notify::new());
    let waiting = notify.clone().notified_owned();
    let seven = klaw::scope!(|s| {
        let handle = s.spawn(async move {
            waiting.await;
            7
        });
        notify.notify_one();
        drop(notify);
        Ok(handle.await?)
    })
    .unwrap();
    assert_eq!(seven, 7);
}

/// tokio: test_enable_consumes_permit, owned
#[test]
fn an_owned_future_can_be_enabled() {
    let notify = Arc::new(Notify::new());
    notify.notify_one();
    let mut owned = pin!(notify.clone().notified_owned());
    assert!(owned.as_mut().enable());
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(owned.as_mut().poll(&mut cx), Poll::Ready(()));
}

// ---- RwLock::with_max_readers

/// A lock made for at most two reads lets two in and makes the third wait until one ends; a
/// write waits for every read, and a read that comes after a waiting write waits behind it.
#[test]
fn with_max_readers_caps_the_reads_held_at_once() {
    let lock = RwLock::with_max_readers(1, 2);
    let (a, b) = (lock.try_read().unwrap(), lock.try_read().unwrap());
    assert!(lock.try_read().is_none());
    let mut third = mock(lock.read());
    pending(third.poll());
    drop(a);
    assert!(third.is_woken());
    let third_guard = ready(third.poll());
    let mut write = mock(lock.write());
    pending(write.poll());
    drop(b);
    pending(write.poll());
    drop(third_guard);
    let mut guard = ready(write.poll());
    *guard += 1;
    drop(guard);
    assert_eq!(*lock.try_read().unwrap(), 2);
}

/// A downgraded write of a capped lock keeps one read and gives the rest back: the cap still
/// holds, and every permit returns once all guards are gone.
#[test]
fn a_downgraded_write_of_a_capped_lock_keeps_the_cap() {
    let lock = RwLock::with_max_readers(0u8, 3);
    let read = klaw::sync::RwLockWriteGuard::downgrade(lock.try_write().unwrap());
    let (b, c) = (lock.try_read().unwrap(), lock.try_read().unwrap());
    assert!(lock.try_read().is_none(), "three reads: the downgraded one and two");
    drop((read, b, c));
    assert!(lock.try_write().is_some(), "every permit came back");
    let owned = Arc::new(RwLock::with_max_readers(0u8, 2));
    let read = klaw::sync::OwnedRwLockWriteGuard::downgrade(owned.try_write_owned().unwrap());
    let other = owned.try_read_owned().unwrap();
    assert!(owned.try_read().is_none());
    drop((read, other));
    assert!(owned.try_write_owned().is_some());
}

/// A cap of 0 would let a write in with no permit, beside anything: refused, at the caller's
/// line.
#[test]
fn with_max_readers_of_zero_panics_naming_the_range() {
    let panic = std::panic::catch_unwind(|| RwLock::with_max_readers((), 0)).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("max_reads must be in 1..="), "{message}");
    assert!(std::panic::catch_unwind(|| RwLock::with_max_readers((), u32::MAX)).is_err());
}

// ---- blocking locks

/// `blocking_lock` waits in line from a plain thread while a task holds the mutex, and gets it
/// when the task lets go.
#[klaw::test(workers = 2, timeout = "10s")]
async fn blocking_lock_waits_on_its_thread_for_a_task_to_unlock() {
    let mutex = Arc::new(Mutex::new(0));
    let guard = mutex.lock().await;
    let (locked, was_locked) = std::sync::mpsc::channel();
    let other = mutex.clone();
    let thread = std::thread::spawn(move || {
        let mut guard = other.blocking_lock();
        *guard += 1;
        locked.send(()).unwrap();
    });
    klaw::time::sleep(Duration::from_millis(20)).await;
    assert!(was_locked.try_recv().is_err(), "the thread waits while the task holds the lock");
    drop(guard);
    klaw::scope!(|s| {
        s.spawn_blocking(move || thread.join().unwrap());
        Ok(())
    })
    .unwrap();
    assert_eq!(*mutex.lock().await, 1);
}

/// `blocking_write` from a klaw blocking task waits for a read held by an async task, and a
/// `blocking_read` from a plain thread shares the lock with that read.
#[klaw::test(workers = 2, timeout = "10s")]
async fn blocking_read_and_write_from_blocking_tasks_and_threads() {
    let lock = Arc::new(RwLock::new(1));
    let read = lock.read().await;
    let shared = lock.clone();
    // Shares the lock with the read held here (no write waits yet, so it does not queue).
    let thread = std::thread::spawn(move || *shared.blocking_read());
    assert_eq!(thread.join().unwrap(), 1);
    klaw::scope!(|s| {
        let writer = lock.clone();
        let write = s.spawn_blocking(move || *writer.blocking_write() += 1);
        klaw::time::sleep(Duration::from_millis(20)).await;
        assert!(!write.is_finished(), "the write waits for the read");
        assert_eq!(*read, 1);
        drop(read);
        write.await?;
        Ok(())
    })
    .unwrap();
    assert_eq!(*lock.read().await, 2);
}

/// A `Pin<&mut Notified>` is what tokio's `enable` takes; klaw's futures are `Unpin` too, so
/// `Pin::new` on a plain `&mut` works as well.
#[test]
fn enable_takes_a_pinned_or_a_plain_unpin_future() {
    let notify = Notify::new();
    let mut notified = notify.notified();
    assert!(!Pin::new(&mut notified).enable());
    notify.notify_waiters();
    assert!(Pin::new(&mut notified).enable());
}

// ---- oneshot: a receiver that gave its result

/// tokio's oneshot: once `try_recv` said `Closed`, the receiver is terminated (tokio drops its
/// inner state for `Closed` as for a value). klaw's says so too, and polled again it gives
/// `Closed` rather than panicking; so does one polled again after its value.
#[test]
fn a_oneshot_receiver_that_gave_its_result_is_terminated_and_says_closed_again() {
    use klaw::channel::{RecvError, TryRecvError};
    let (tx, mut rx) = klaw::channel::oneshot::channel::<u8>();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(!rx.is_terminated());
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert!(rx.is_terminated(), "nothing can come any more");
    assert_eq!(ready(mock(&mut rx).poll()), Err(RecvError::Closed));

    let (tx, mut rx) = klaw::channel::oneshot::channel::<u8>();
    tx.send(4).unwrap();
    assert_eq!(ready(mock(&mut rx).poll()), Ok(4));
    assert!(rx.is_terminated());
    assert_eq!(ready(mock(&mut rx).poll()), Err(RecvError::Closed), "the value is gone");
}

// ---- Receiver::recv_many (tokio's sync_mpsc.rs)

/// tokio: async_send_recv_many_with_buffer: a limit of 0 returns at once; batches of up to the
/// limit, in order, from a sender that waits for room; closed and drained says so.
#[test]
fn recv_many_takes_batches_in_order_and_a_limit_of_zero_returns_at_once() {
    let rt = klaw::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(async {
        let (tx, rx) = klaw::channel::bounded::<i32>(2);
        let mut buffer = Vec::with_capacity(3);
        assert_eq!(rx.recv_many(&mut buffer, 0).await, Ok(0));
        let sender = klaw::Handle::current().unwrap().spawn(async move {
            for value in [1, 2, 7, 0] {
                tx.send(value).await.unwrap();
            }
        });
        let mut received = 0;
        while received < 4 {
            received += rx.recv_many(&mut buffer, 3).await.unwrap();
            assert_eq!(buffer.len(), received);
        }
        assert_eq!(buffer, [1, 2, 7, 0]);
        sender.await.unwrap();
        assert_eq!(rx.recv_many(&mut buffer, 3).await, Err(klaw::channel::RecvError::Closed));
    });
}

/// tokio: send_recv_many_bounded_capacity and send_recv_many_unbounded_capacity: a batch as
/// large as the buffer's room does not grow it; a message sent after the last sender was
/// handed to a task still comes; then `Closed`, the buffer as it was.
#[test]
fn recv_many_fills_the_buffers_room_and_then_reports_closed() {
    for bounded in [true, false] {
        let rt = klaw::Runtime::builder().workers(2).build().unwrap();
        rt.block_on(async {
            let (tx, rx) = match bounded {
                true => klaw::channel::bounded::<String>(100),
                false => klaw::channel::unbounded::<String>(),
            };
            let mut buffer: Vec<String> = Vec::with_capacity(9);
            let limit = buffer.capacity();
            let mut expected: Vec<String> = (0..limit).map(|x| x.to_string()).collect();
            for x in expected.clone() {
                tx.send(x).await.unwrap();
            }
            tx.send("one more".to_owned()).await.unwrap();
            assert_eq!(rx.recv_many(&mut buffer, limit).await, Ok(limit));
            assert_eq!(buffer, expected);
            assert_eq!(buffer.capacity(), limit, "the buffer grew for a batch that fit");
            assert_eq!(rx.recv_many(&mut buffer, limit).await, Ok(1));
            expected.push("one more".to_owned());
            assert_eq!(buffer, expected);
            let _sender = klaw::Handle::current().unwrap().spawn(async move {
                tx.send("final".to_owned()).await.unwrap();
            });
            assert_eq!(rx.recv_many(&mut buffer, limit).await, Ok(1));
            expected.push("final".to_owned());
            assert_eq!(buffer, expected);
            assert_eq!(
                rx.recv_many(&mut buffer, limit).await,
                Err(klaw::channel::RecvError::Closed)
            );
            assert_eq!(buffer, expected);
        });
    }
}

/// tokio: recv_many_with_non_empty_buffer_{bounded,unbounded}_rx_closed_and_idle: closed by
/// the receiver with a sender alive, nothing queued: `Closed`, and what the buffer held stays.
#[test]
fn recv_many_on_a_closed_idle_channel_leaves_the_buffer_as_it_was() {
    for (tx, rx) in [klaw::channel::bounded::<i32>(1), klaw::channel::unbounded::<i32>()] {
        let mut buffer = vec![1];
        rx.close();
        let result = klaw::runtime::block_on(rx.recv_many(&mut buffer, 1));
        assert_eq!(result, Err(klaw::channel::RecvError::Closed));
        assert_eq!(buffer, [1]);
        drop(tx);
    }
}

/// klaw's rule: a `recv_many` waiting for its first message and dropped takes none, and the
/// wake-up it was given passes on, as `recv`'s does: the message goes to the next receive.
#[test]
fn a_recv_many_dropped_while_waiting_takes_no_message() {
    let (tx, rx) = klaw::channel::bounded::<u8>(4);
    let mut buffer = Vec::new();
    {
        let mut waiting = mock(rx.recv_many(&mut buffer, 4));
        pending(waiting.poll());
        pending(waiting.poll());
        tx.try_send(5).unwrap();
    }
    assert!(buffer.is_empty());
    assert_eq!(rx.try_recv(), Ok(5));
}

// ---- watch: Ref::has_changed and Sender::sender_count

/// tokio's `Ref::has_changed` doc: a value borrowed without marking it seen is still new; one
/// borrowed and marked was new until then; `wait_for` tells whether the value it matched was
/// new to the receiver; the sender's own borrow never is.
#[test]
fn a_watch_ref_says_whether_its_value_was_new_to_its_receiver() {
    let (tx, mut rx) = klaw::channel::watch::channel(0);
    assert!(!rx.borrow().has_changed());
    tx.send(1).unwrap();
    assert!(rx.borrow().has_changed());
    assert!(rx.borrow().has_changed(), "borrow marked the value seen");
    assert!(rx.borrow_and_update().has_changed());
    assert!(!rx.borrow_and_update().has_changed());
    assert!(!tx.borrow().has_changed());
    klaw::runtime::block_on(async {
        assert!(!rx.wait_for(|n| *n == 1).await.unwrap().has_changed(), "seen already");
        tx.send(2).unwrap();
        assert!(rx.wait_for(|n| *n == 2).await.unwrap().has_changed());
        assert_eq!(rx.has_changed(), Ok(false), "wait_for marked it seen");
        // A value that passes only after the wait woke on it is new to the caller too.
        let sender = std::thread::spawn({
            let tx = tx.clone();
            move || {
                std::thread::sleep(Duration::from_millis(20));
                tx.send(3).unwrap();
            }
        });
        assert!(rx.wait_for(|n| *n == 3).await.unwrap().has_changed());
        sender.join().unwrap();
    });
}

/// The watch sender's count follows its clones and drops; the receivers' view of the end
/// (`Closed`) comes with the last.
#[test]
fn a_watch_sender_count_follows_clones_and_drops() {
    let (tx, rx) = klaw::channel::watch::channel(());
    let clone = tx.clone();
    assert_eq!((tx.sender_count(), clone.sender_count()), (2, 2));
    drop(clone);
    assert_eq!(tx.sender_count(), 1);
    assert_eq!(rx.has_changed(), Ok(false));
    drop(tx);
    assert!(rx.has_changed().is_err());
}

// ---- MPMC: owned permits, weak and strong counts (tokio's sync_mpsc.rs, sync_mpsc_weak.rs)

/// tokio: sending_last_owned_permit_wakes_closed_receiver, with klaw's close: a channel closed
/// by its receiver refuses permits already handed out (tokio's still send), so the owned
/// permit's `send` gives the value back, and the receiver sees `Closed` at once instead of
/// waiting for the permit.
#[test]
fn an_owned_permit_of_a_closed_channel_gives_its_value_back() {
    let (tx, rx) = klaw::channel::bounded::<u8>(100);
    let permit = tx.try_reserve_owned().unwrap();
    rx.close();
    let mut recv = mock(rx.recv());
    assert_eq!(ready(recv.poll()), Err(klaw::channel::RecvError::Closed));
    assert_eq!(permit.send(3).unwrap_err().into_inner(), 3);
}

/// tokio: releasing_last_owned_permit_wakes_closed_receiver and
/// dropping_last_owned_permit_wakes_closed_receiver: a place released or dropped is free
/// again, and a sender waiting for it is woken.
#[test]
fn an_owned_permit_released_or_dropped_frees_its_place_for_a_waiting_sender() {
    for release in [true, false] {
        let (tx, rx) = klaw::channel::bounded::<u8>(1);
        let permit = tx.clone().try_reserve_owned().unwrap();
        let mut waiting = mock(tx.reserve());
        pending(waiting.poll());
        pending(waiting.poll());
        match release {
            true => drop(permit.release()),
            false => drop(permit),
        }
        assert!(waiting.is_woken(), "the freed place woke nobody");
        ready(waiting.poll()).unwrap().send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
    }
}

/// tokio: dropping_rx_closes_channel_for_try (the owned form) and
/// test_rx_is_not_closed_when_there_are_permits_but_not_senders: an owned permit keeps the
/// channel open as its sender does; a closed channel's `try_reserve_owned` hands the sender
/// back.
#[test]
fn an_owned_permit_is_a_sender_and_try_reserve_owned_gives_the_sender_back() {
    let (tx, rx) = klaw::channel::bounded::<u8>(10);
    let permit = klaw::runtime::block_on(tx.reserve_owned()).unwrap();
    assert!(!rx.is_closed(), "the permit's sender keeps the channel open");
    assert_eq!(rx.sender_count(), 1);
    let tx = permit.send(7).unwrap();
    drop(rx);
    match tx.try_reserve_owned() {
        Err(klaw::channel::TrySendError::Closed(tx)) => assert!(tx.is_closed()),
        other => panic!("expected Closed with the sender, got {other:?}"),
    }
}

/// klaw's rule: a `reserve_owned` waiting for a place and dropped gives up its place in line,
/// and its sender with it (the channel closes when that was the last).
#[test]
fn a_reserve_owned_dropped_while_waiting_leaves_the_line_and_drops_its_sender() {
    let (tx, rx) = klaw::channel::bounded::<u8>(1);
    tx.try_send(1).unwrap();
    let mut waiting = mock(tx.reserve_owned());
    pending(waiting.poll());
    pending(waiting.poll());
    drop(waiting);
    assert!(rx.is_closed(), "the dropped future's sender was the last");
    assert_eq!(rx.try_recv(), Ok(1));
}

/// tokio: sender_strong_and_weak_conut (and the unbounded form), with klaw's names:
/// `sender_count` is tokio's `strong_count`, `weak_sender_count` its `weak_count`.
#[test]
fn sender_and_weak_sender_counts_follow_clones_downgrades_and_drops() {
    for (tx, rx) in [klaw::channel::bounded::<i32>(1), klaw::channel::unbounded::<i32>()] {
        let tx2 = tx.clone();
        let weak = tx.downgrade();
        let weak2 = tx2.downgrade();
        for count in [
            tx.sender_count(),
            tx2.sender_count(),
            weak.sender_count(),
            weak2.sender_count(),
            rx.sender_count(),
        ] {
            assert_eq!(count, 2);
        }
        for count in [
            tx.weak_sender_count(),
            tx2.weak_sender_count(),
            weak.weak_sender_count(),
            weak2.weak_sender_count(),
            rx.weak_sender_count(),
        ] {
            assert_eq!(count, 2);
        }
        drop(tx2);
        drop(weak2);
        assert_eq!((tx.sender_count(), weak.sender_count(), rx.sender_count()), (1, 1, 1));
        assert_eq!(
            (tx.weak_sender_count(), weak.weak_sender_count(), rx.weak_sender_count()),
            (1, 1, 1)
        );
        assert!(weak.same_channel(&tx.downgrade()));
        drop(tx);
        assert_eq!(weak.sender_count(), 0);
        assert!(weak.upgrade().is_none());
    }
}

/// tokio: downgrade_get_permit_upgrade_no_senders: an owned permit is a sender, so a weak
/// sender still upgrades while only the permit holds one.
#[test]
fn a_weak_sender_upgrades_while_an_owned_permit_holds_the_last_sender() {
    let (tx, _rx) = klaw::channel::bounded::<i32>(1);
    let weak = tx.downgrade();
    let _permit = klaw::runtime::block_on(tx.reserve_owned()).unwrap();
    assert!(weak.upgrade().is_some());
}

// ---- Mutex: mapped guards (tokio's MutexGuard::map, try_map, OwnedMutexGuard::map)

/// A mapped guard keeps the mutex locked: a waiting `lock` gets it only when the mapped guard
/// is dropped, and sees what was written through it.
#[test]
fn a_mapped_guard_holds_the_lock_until_it_is_dropped() {
    let mutex = Mutex::new((0u32, String::new()));
    let mut name = klaw::sync::MutexGuard::map(mutex.try_lock().unwrap(), |pair| &mut pair.1);
    name.push_str("held");
    let mut waiting = mock(mutex.lock());
    pending(waiting.poll());
    assert!(mutex.try_lock().is_none());
    drop(name);
    assert!(waiting.is_woken(), "the mapped guard's drop woke nobody");
    let guard = ready(waiting.poll());
    assert_eq!(guard.1, "held");
}

/// `try_map` that finds nothing gives the guard back still locked; one that finds a part
/// narrows to it.
#[test]
fn try_map_gives_the_guard_back_when_it_finds_nothing() {
    let mutex = Mutex::new(vec![1, 2, 3]);
    let guard = klaw::sync::MutexGuard::try_map(mutex.try_lock().unwrap(), |list| list.get_mut(7))
        .unwrap_err();
    assert!(mutex.try_lock().is_none(), "the guard given back is still locked");
    let mut last = klaw::sync::MutexGuard::try_map(guard, |list| list.last_mut()).unwrap();
    *last = 30;
    drop(last);
    assert_eq!(*mutex.try_lock().unwrap(), [1, 2, 30]);
}

/// A map whose closure panics unlocks the mutex (the guard is dropped by the unwinding).
#[test]
fn a_map_whose_closure_panics_unlocks_the_mutex() {
    let mutex = Mutex::new(5);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let guard = mutex.try_lock().unwrap();
        let _mapped = klaw::sync::MutexGuard::map(guard, |_| -> &mut u8 { panic!("no part") });
    }));
    assert!(panicked.is_err());
    assert_eq!(*mutex.try_lock().expect("unlocked by the unwinding"), 5);
}

/// An owned mapped guard is `'static` and `Send`: moved to another thread, it unlocks there,
/// and a lock waiting in a task gets the value.
#[test]
fn an_owned_mapped_guard_unlocks_where_it_is_dropped() {
    let mutex = Arc::new(Mutex::new(vec![0u8; 2]));
    let guard = mutex.clone().try_lock_owned().unwrap();
    let mut second = klaw::sync::OwnedMutexGuard::map(guard, |bytes| &mut bytes[1]);
    let rt = klaw::Runtime::builder().workers(1).build().unwrap();
    let waiter = {
        let mutex = mutex.clone();
        rt.spawn(async move { mutex.lock().await.clone() })
    };
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        *second = 7;
    })
    .join()
    .unwrap();
    assert_eq!(rt.block_on(waiter).unwrap(), [0, 7]);
    let found =
        klaw::sync::OwnedMutexGuard::try_map(mutex.try_lock_owned().unwrap(), |b| b.get_mut(5));
    assert!(found.is_err());
}

// ---- RwLock: mapped guards (tokio's sync_rwlock.rs downgrade_map, try_downgrade_map)

/// tokio: downgrade_map: `f` runs under the write lock (a waiting read does not get in
/// meanwhile); after it, the waiting read gets in, and both see the same value.
#[test]
fn downgrade_map_lets_waiting_reads_in_only_after_its_closure() {
    let lock = RwLock::new(0);
    let write_guard = lock.try_write().unwrap();
    let mut read = mock(lock.read());
    pending(read.poll());
    let read_guard1 = klaw::sync::RwLockWriteGuard::downgrade_map(write_guard, |value| {
        pending(read.poll());
        value
    });
    let read_guard2 = ready(read.poll());
    assert_eq!(&*read_guard1 as *const i32, &*read_guard2 as *const i32);
}

/// tokio: try_downgrade_map: a closure that finds nothing gives the write lock back (the read
/// still waits); one that finds a part downgrades, and the read gets in.
#[test]
fn try_downgrade_map_keeps_the_write_lock_when_it_finds_nothing() {
    let lock = RwLock::new(0);
    let write_guard = lock.try_write().unwrap();
    let mut read = mock(lock.read());
    pending(read.poll());
    let write_guard = klaw::sync::RwLockWriteGuard::try_downgrade_map(write_guard, |_| {
        pending(read.poll());
        None::<&()>
    })
    .expect_err("nothing found");
    pending(read.poll());
    let read_guard1 =
        klaw::sync::RwLockWriteGuard::try_downgrade_map(write_guard, |value| Some(value))
            .expect("found");
    let read_guard2 = ready(read.poll());
    assert_eq!(&*read_guard1 as *const i32, &*read_guard2 as *const i32);
}

/// A mapped write guard keeps every permit: reads wait until it is dropped or downgraded, and
/// its `downgrade` lets them in with no moment unlocked.
#[test]
fn a_mapped_write_guard_holds_the_write_lock_and_downgrades() {
    let lock = RwLock::new((1, 2));
    let mut second =
        klaw::sync::RwLockWriteGuard::map(lock.try_write().unwrap(), |pair| &mut pair.1);
    *second = 20;
    let mut read = mock(lock.read());
    pending(read.poll());
    assert!(lock.try_write().is_none());
    let second = klaw::sync::MappedRwLockWriteGuard::downgrade(second);
    assert!(read.is_woken());
    assert_eq!(*ready(read.poll()), (1, 20));
    assert_eq!(*second, 20);
    assert!(lock.try_write().is_none(), "the downgraded guard still reads");
    drop(second);
    let mapped = klaw::sync::RwLockReadGuard::try_map(lock.try_read().unwrap(), |_| None::<&u8>);
    assert!(mapped.is_err());
}

// ---- task::yield_now and the channels' `error` modules

/// tokio: yield_now_outside_of_runtime: the first poll wakes the task and is pending, the
/// second completes.
#[test]
fn yield_now_wakes_itself_once_then_completes() {
    let mut task = mock(klaw::task::yield_now());
    pending(task.poll());
    assert!(task.is_woken());
    ready(task.poll());
}

/// tokio's import paths for the channels' errors name the same types as klaw's own.
#[test]
fn the_channels_errors_are_where_tokio_keeps_them() {
    use klaw::channel::{broadcast, oneshot, watch};
    let same = |a: std::any::TypeId, b: std::any::TypeId| assert_eq!(a, b);
    same(
        std::any::TypeId::of::<broadcast::error::RecvError>(),
        std::any::TypeId::of::<broadcast::RecvError>(),
    );
    same(
        std::any::TypeId::of::<broadcast::error::TryRecvError>(),
        std::any::TypeId::of::<broadcast::TryRecvError>(),
    );
    same(
        std::any::TypeId::of::<oneshot::error::TryRecvError>(),
        std::any::TypeId::of::<klaw::channel::TryRecvError>(),
    );
    same(
        std::any::TypeId::of::<oneshot::error::RecvError>(),
        std::any::TypeId::of::<klaw::channel::RecvError>(),
    );
    same(
        std::any::TypeId::of::<watch::error::SendError<u8>>(),
        std::any::TypeId::of::<klaw::channel::SendError<u8>>(),
    );
}
