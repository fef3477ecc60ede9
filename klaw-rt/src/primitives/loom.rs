//! Loom models of the hand-written primitives (`semaphore.rs`, `notify.rs`, `rwlock.rs` and
//! `mutex.rs` on the semaphore, `event.rs` and `barrier.rs`): acquires, releases, cancels and
//! closes racing, with parked tasks, so a lost wake-up shows as a deadlock and a lost or
//! duplicated permit as a failed count.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::thread;

use crate::primitives::{Barrier, Event, Mutex, Notify, RwLock, RwLockWriteGuard, Semaphore};

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn loom_two_tasks_share_one_permit_and_give_it_back() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let other = semaphore.clone();
        let racer = thread::spawn(move || {
            let permit = block_on(other.acquire()).unwrap();
            drop(permit);
        });
        let permit = block_on(semaphore.acquire()).unwrap(); // parks: a lost wake-up deadlocks
        drop(permit);
        racer.join().unwrap();
        assert_eq!(semaphore.available_permits(), 1);
        assert_eq!(semaphore.waiting(), 0);
    });
}

#[test]
fn loom_an_acquire_many_cancelled_while_permits_come_back_gives_back_what_it_gathered() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let held = semaphore.try_acquire_many_owned(2).unwrap();
        let releaser = thread::spawn(move || drop(held));
        {
            let mut acquire = pin!(semaphore.acquire_many(2));
            if let Poll::Ready(permit) = poll_once(acquire.as_mut()) {
                drop(permit.unwrap()); // the release came first
            }
        } // dropped in line, with what it gathered, or granted and never polled again
        releaser.join().unwrap();
        assert_eq!(semaphore.available_permits(), 2, "no permit lost");
        assert_eq!(semaphore.waiting(), 0);
    });
}

#[test]
fn loom_a_granted_acquire_dropped_unpolled_passes_the_permit_to_the_next_in_line() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(0));
        let mut first = Box::pin(semaphore.acquire());
        assert!(poll_once(first.as_mut()).is_pending());
        let next = semaphore.clone();
        let waiter = thread::spawn(move || {
            // In line behind `first`, or first in line once it left: it must get the permit.
            drop(block_on(next.acquire()).unwrap());
        });
        let adder = semaphore.clone();
        let adder = thread::spawn(move || adder.add_permits(1));
        drop(first); // in line or granted: either way the permit goes on
        adder.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(semaphore.available_permits(), 1);
    });
}

#[test]
fn loom_close_fails_a_parked_acquire_and_keeps_the_count() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let closer = semaphore.clone();
        let closer = thread::spawn(move || closer.close());
        // Gathers the free permit and parks for a second one, until the close wakes it.
        let result = block_on(semaphore.acquire_many(2));
        closer.join().unwrap();
        assert!(result.is_err());
        assert_eq!(semaphore.available_permits(), 1, "the gathered permit came back");
    });
}

#[test]
fn loom_notify_one_racing_notified_is_never_lost() {
    loom::model(|| {
        let notify = Arc::new(Notify::new());
        let notifier = notify.clone();
        let notifier = thread::spawn(move || notifier.notify_one());
        block_on(notify.notified()); // a permit or a wake-up: either way it returns
        notifier.join().unwrap();
    });
}

#[test]
fn loom_a_notified_dropped_after_its_notification_passes_it_on() {
    loom::model(|| {
        let notify = Arc::new(Notify::new());
        let mut first = Box::pin(notify.notified());
        assert!(poll_once(first.as_mut()).is_pending());
        let notifier = notify.clone();
        let notifier = thread::spawn(move || notifier.notify_one());
        drop(first); // before or after the notification: it is passed on or stored
        notifier.join().unwrap();
        block_on(notify.notified());
    });
}

#[test]
fn loom_a_write_waiting_behind_a_read_gets_the_lock_and_holds_new_reads_back() {
    loom::model(|| {
        let lock = Arc::new(RwLock::new(0));
        let read = lock.try_read().unwrap();
        let writer = lock.clone();
        let writer = thread::spawn(move || *block_on(writer.write()) += 1); // parks behind the read
        // A read that comes while the write waits (or once it is done) never sees a half-made
        // change, and never gets past a write that waits.
        if let Some(late) = lock.try_read() {
            assert_eq!(*late, 0, "a read got in while the write held the lock");
        }
        drop(read);
        writer.join().unwrap();
        assert_eq!(*lock.try_read().unwrap(), 1);
    });
}

#[test]
fn loom_a_released_or_downgraded_write_lets_every_waiting_read_in() {
    loom::model(|| {
        let lock = Arc::new(RwLock::new(0));
        let mut write = lock.try_write().unwrap();
        *write = 1;
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                // Each parks until the write goes: a read left unwoken deadlocks the model.
                thread::spawn(move || assert_eq!(*block_on(lock.read()), 1))
            })
            .collect();
        let read = RwLockWriteGuard::downgrade(write); // still held: readers join it
        for reader in readers {
            reader.join().unwrap();
        }
        drop(read);
        assert!(lock.try_write().is_some(), "a permit was lost");
    });
}

#[test]
fn loom_two_tasks_take_turns_on_a_mutex_and_neither_change_is_lost() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0));
        let other = mutex.clone();
        let racer = thread::spawn(move || *block_on(other.lock_owned()) += 1);
        *block_on(mutex.lock()) += 1; // parks while the other holds it: a lost wake-up deadlocks
        racer.join().unwrap();
        assert_eq!(*mutex.try_lock().unwrap(), 2);
    });
}

#[test]
fn loom_an_event_set_racing_a_wait_is_never_missed() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let setter = event.clone();
        let setter = thread::spawn(move || setter.set());
        block_on(event.wait()); // before or after the set: either way it returns
        setter.join().unwrap();
        assert!(event.is_set());
    });
}

#[test]
fn loom_a_barrier_of_two_opens_for_both_with_one_leader() {
    loom::model(|| {
        let barrier = Arc::new(Barrier::new(2));
        let other = barrier.clone();
        let other = thread::spawn(move || block_on(other.wait()).is_leader());
        let mine = block_on(barrier.wait()).is_leader(); // whichever arrives first parks
        assert!(mine ^ other.join().unwrap(), "exactly one leader");
    });
}
