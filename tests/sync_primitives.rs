//! `klaw::sync`: Mutex, RwLock, Semaphore, Barrier, Event, Notify.
//!
//! Ported from tokio's suites (`sync_mutex.rs`, `sync_rwlock.rs`, `sync_semaphore.rs`,
//! `sync_semaphore_owned.rs`, `sync_barrier.rs`, `sync_notify.rs`), translated to klaw's API:
//! tokio-test's mock task is `common/mock_task.rs`'s `MockTask`. Then klaw's own: for each primitive a
//! cancelled acquire, lock or wait that loses nothing (dropped while queued, and dropped after
//! it was woken but before it was polled again), the semaphore's fairness to `acquire_many`, a
//! stress test of threads racing acquires, cancels and releases, wakers that come back into the
//! primitive, and the primitives under a foreign executor.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use klaw::sync::{
    Barrier, Event, Mutex, Notify, OwnedRwLockWriteGuard, RwLock, RwLockWriteGuard, Semaphore,
    TryAcquireError,
};

// ---- A mock task: polls a future by hand and records whether it was woken.

#[path = "common/mock_task.rs"]
mod mock_task;

use common::{DropOnWake, within};
use mock_task::{MockTask, mock, pending, ready};

/// Two futures from `make`, polled in that order so that both wait in line: where the tests of
/// a wait cancelled in line, or cancelled after its wake-up, start.
#[track_caller]
fn two_in_line<F: Future>(mut make: impl FnMut() -> F) -> (MockTask<F>, MockTask<F>) {
    let mut first = mock(make());
    let mut second = mock(make());
    pending(first.poll());
    pending(second.poll());
    (first, second)
}

// ---- Mutex: ported from tokio's sync_mutex.rs.

#[test]
fn mutex_straight_execution() {
    let mutex = Mutex::new(100);
    for (seen, next) in [(100, 99), (99, 98)] {
        let mut task = mock(mutex.lock());
        let mut guard = ready(task.poll());
        assert_eq!(*guard, seen);
        *guard = next;
    }
    assert_eq!(*ready(mock(mutex.lock()).poll()), 98);
}

#[test]
fn mutex_readiness() {
    let mutex = Mutex::new(100);
    let mut first = mock(mutex.lock());
    let mut second = mock(mutex.lock());
    let guard = ready(first.poll());
    pending(second.poll());
    drop(guard);
    assert!(second.is_woken());
    let _second = ready(second.poll());
}

/// tokio's `aborted_future_1`: a future that holds the guard is dropped; the mutex is free.
#[test]
fn mutex_a_dropped_future_that_holds_the_guard_unlocks() {
    let mutex = Mutex::new(0);
    let mut holder = mock(async {
        let _guard = mutex.lock().await;
        std::future::pending::<()>().await;
    });
    pending(holder.poll());
    assert!(mutex.try_lock().is_none());
    drop(holder);
    assert!(mutex.try_lock().is_some());
}

/// tokio's `aborted_future_2`: a future waiting for the lock is dropped; nothing stays locked.
#[test]
fn mutex_a_dropped_waiting_future_leaves_it_unlocked() {
    let mutex = Mutex::new(0);
    let guard = mutex.try_lock().unwrap();
    let mut waiter = mock(mutex.lock());
    pending(waiter.poll());
    drop(waiter);
    drop(guard);
    assert!(mutex.try_lock().is_some());
}

#[test]
fn mutex_try_lock() {
    let mutex = Mutex::new(0);
    {
        let first = mutex.try_lock();
        assert!(first.is_some());
        assert!(mutex.try_lock().is_none());
    }
    assert!(mutex.try_lock().is_some());
}

#[test]
fn mutex_debug_formats() {
    let mutex = Mutex::new("data".to_string());
    assert_eq!(format!("{:?}", mutex.try_lock().unwrap()), format!("{:?}", "data"));
    assert_eq!(format!("{mutex:?}"), r#"Mutex { data: "data" }"#);
    let _guard = mutex.try_lock().unwrap();
    assert_eq!(format!("{mutex:?}"), "Mutex { data: <locked> }");
}

// ---- Mutex: klaw's.

#[test]
fn mutex_a_lock_cancelled_in_line_loses_nothing() {
    let mutex = Mutex::new(0);
    let guard = mutex.try_lock().unwrap();
    let (cancelled, mut next) = two_in_line(|| mutex.lock());
    drop(cancelled);
    drop(guard);
    assert!(next.is_woken(), "the next in line is woken");
    let _guard = ready(next.poll());
}

#[test]
fn mutex_a_lock_cancelled_after_its_wake_up_passes_it_on() {
    let mutex = Mutex::new(0);
    let guard = mutex.try_lock().unwrap();
    let (woken, mut next) = two_in_line(|| mutex.lock());
    drop(guard);
    assert!(woken.is_woken());
    assert!(!next.is_woken());
    drop(woken); // woken, never polled again
    assert!(next.is_woken(), "the wake-up passed on");
    let mut guard = ready(next.poll());
    *guard += 1;
}

/// Documented (`Mutex`): "Fair, first come, first served: a waiting `lock()` gets the mutex
/// before any that came later, and `try_lock` does not jump the line". An unlock hands the mutex
/// to the first in line and wakes only that one, whatever order the others are polled in.
#[test]
fn mutex_waiters_are_served_first_come_first_served() {
    let mutex = Mutex::new(Vec::new());
    let guard = mutex.try_lock().unwrap();
    let mut waiters: Vec<_> = (0..3).map(|_| mock(mutex.lock())).collect();
    for waiter in &mut waiters {
        pending(waiter.poll());
    }
    drop(guard);
    assert!(waiters[0].is_woken() && !waiters[1].is_woken() && !waiters[2].is_woken());
    assert!(mutex.try_lock().is_none(), "try_lock went before the line");
    pending(waiters[2].poll());
    pending(waiters[1].poll());
    for i in 0..3 {
        let mut guard = ready(waiters[i].poll());
        guard.push(i);
        drop(guard);
        if let Some(next) = waiters.get(i + 1) {
            assert!(next.is_woken(), "the unlock wakes the next in line");
        }
    }
    assert_eq!(*mutex.try_lock().unwrap(), [0, 1, 2]);
}

#[test]
fn mutex_owned_guards_move_to_other_threads() {
    let mutex = Arc::new(Mutex::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mutex = mutex.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let mut guard = futures_lite::future::block_on(mutex.lock_owned());
                    *guard += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut mutex = Arc::into_inner(mutex).unwrap();
    assert_eq!(*mutex.get_mut(), 400);
    assert_eq!(mutex.into_inner(), 400);
}

// ---- RwLock: ported from tokio's sync_rwlock.rs.

#[test]
fn rwlock_into_inner() {
    assert_eq!(RwLock::new(42).into_inner(), 42);
}

#[test]
fn rwlock_read_shared() {
    let lock = RwLock::new(100);
    let _first = ready(mock(lock.read()).poll());
    let _second = ready(mock(lock.read()).poll());
}

#[test]
fn rwlock_write_shared_pending() {
    let lock = RwLock::new(100);
    let _reader = ready(mock(lock.read()).poll());
    pending(mock(lock.write()).poll());
}

#[test]
fn rwlock_read_exclusive_pending() {
    let lock = RwLock::new(100);
    let _writer = ready(mock(lock.write()).poll());
    pending(mock(lock.read()).poll());
}

#[test]
fn rwlock_write_exclusive_pending() {
    let lock = RwLock::new(100);
    let _writer = ready(mock(lock.write()).poll());
    pending(mock(lock.write()).poll());
}

#[test]
fn rwlock_write_shared_drop() {
    let lock = RwLock::new(100);
    let reader = ready(mock(lock.read()).poll());
    let mut writer = mock(lock.write());
    pending(writer.poll());
    drop(reader);
    assert!(writer.is_woken());
    let _writer = ready(writer.poll());
}

#[test]
fn rwlock_a_waiting_write_holds_new_reads_back() {
    let lock = RwLock::new(100);
    let _first = ready(mock(lock.read()).poll());
    let _second = ready(mock(lock.read()).poll());
    let mut writer = mock(lock.write());
    pending(writer.poll());
    pending(mock(lock.read()).poll());
}

/// tokio's `write_read_shared_drop_pending`: a write cancelled in line lets the reads through.
#[test]
fn rwlock_a_write_cancelled_in_line_lets_the_reads_through() {
    let lock = RwLock::new(100);
    let _reader = ready(mock(lock.read()).poll());
    let mut writer = mock(lock.write());
    pending(writer.poll());
    let mut blocked = mock(lock.read());
    pending(blocked.poll());
    drop(writer);
    assert!(blocked.is_woken());
    let _reader = ready(blocked.poll());
}

#[test]
fn rwlock_uncontested() {
    let lock = RwLock::new(100);
    klaw::runtime::block_on(async {
        assert_eq!(*lock.read().await, 100);
        let mut writer = lock.write().await;
        *writer += 50;
        assert_eq!(*writer, 150);
    });
}

/// Locks are taken in the order their futures are awaited.
#[test]
fn rwlock_write_order() {
    let lock = RwLock::new(Vec::new());
    klaw::runtime::block_on(async {
        let second = async { lock.write().await.push(2) };
        let first = async { lock.write().await.push(1) };
        first.await;
        second.await;
        assert_eq!(*lock.read().await, [1, 2]);
    });
}

#[klaw::test(workers = 2, timeout = "20s")]
async fn rwlock_multithreaded() {
    let lock = Arc::new(RwLock::new(0u32));
    let barrier = Arc::new(Barrier::new(5));
    klaw::scope!(|s| {
        for step in [2, 3, 5, 7] {
            let (lock, barrier) = (lock.clone(), barrier.clone());
            s.spawn(async move {
                for _ in 0..1000 {
                    *lock.write().await += step;
                }
                barrier.wait().await;
            });
        }
        barrier.wait().await;
        assert_eq!(*lock.read().await, 17_000);
        Ok(())
    })
    .unwrap();
}

#[test]
fn rwlock_try_write_and_try_read() {
    let lock = RwLock::new(15);
    {
        let first = lock.try_read().unwrap();
        assert_eq!(*first, 15);
        assert!(lock.try_write().is_none());
        assert_eq!(*lock.try_read().unwrap(), 15);
    }
    {
        let mut writer = lock.try_write().unwrap();
        *writer = 1515;
        assert!(lock.try_read().is_none());
    }
    assert_eq!(*lock.try_read().unwrap(), 1515);
}

/// After tokio's `downgrade_map`: a downgraded write lets the waiting reads in.
#[test]
fn rwlock_downgrade_lets_waiting_reads_in() {
    let lock = RwLock::new(0);
    let writer = lock.try_write().unwrap();
    let mut reader = mock(lock.read());
    pending(reader.poll());
    let downgraded = RwLockWriteGuard::downgrade(writer);
    let read = ready(reader.poll());
    assert!(std::ptr::eq(&*downgraded, &*read));
    drop((downgraded, read));

    let lock = Arc::new(RwLock::new(1));
    let reader = OwnedRwLockWriteGuard::downgrade(lock.try_write_owned().unwrap());
    assert_eq!(*reader, *lock.try_read_owned().unwrap());
}

// ---- RwLock: klaw's.

#[test]
fn rwlock_a_write_cancelled_after_its_wake_up_passes_the_lock_on() {
    let lock = RwLock::new(0);
    let reader = lock.try_read().unwrap();
    let (woken, mut next) = two_in_line(|| lock.write());
    drop(reader);
    assert!(woken.is_woken());
    drop(woken); // woken, never polled again
    assert!(next.is_woken(), "the next writer is woken");
    *ready(next.poll()) += 1;
    assert_eq!(*lock.try_read().unwrap(), 1);
}

#[test]
fn rwlock_a_read_cancelled_after_its_wake_up_passes_it_on() {
    let lock = RwLock::new(0);
    let writer = lock.try_write().unwrap();
    let (woken, mut next) = two_in_line(|| lock.read());
    drop(writer);
    drop(woken); // woken (or about to be), never polled again
    assert!(next.is_woken(), "the next reader is woken");
    let _reader = ready(next.poll());
}

#[test]
fn rwlock_a_read_cancelled_in_line_loses_nothing() {
    let lock = RwLock::new(0);
    let writer = lock.try_write().unwrap();
    let (cancelled, mut next) = two_in_line(|| lock.read());
    drop(cancelled);
    drop(writer);
    assert!(next.is_woken());
    let _reader = ready(next.poll());
    assert!(lock.try_write().is_none());
}

// ---- Semaphore: ported from tokio's sync_semaphore.rs and sync_semaphore_owned.rs.

#[test]
fn semaphore_with_no_permits() {
    let semaphore = Semaphore::new(0);
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
}

#[test]
fn semaphore_try_acquire() {
    let semaphore = Semaphore::new(1);
    {
        let first = semaphore.try_acquire();
        assert!(first.is_ok());
        assert!(semaphore.try_acquire().is_err());
    }
    assert!(semaphore.try_acquire().is_ok());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn semaphore_acquire_waits_for_a_release() {
    let semaphore = Arc::new(Semaphore::new(1));
    let held = semaphore.try_acquire_owned().unwrap();
    let waiter = semaphore.clone();
    let handle = klaw::Handle::current().unwrap().spawn(async move {
        let _permit = waiter.acquire().await.unwrap();
    });
    drop(held);
    handle.await.unwrap();
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn semaphore_add_permits_wakes_a_waiter() {
    let semaphore = Arc::new(Semaphore::new(0));
    let waiter = semaphore.clone();
    let handle = klaw::Handle::current().unwrap().spawn(async move {
        let _permit = waiter.acquire_owned().await.unwrap();
    });
    semaphore.add_permits(1);
    handle.await.unwrap();
}

/// Runs `check(semaphore, closed, size, n)` on a new semaphore of `size` permits, open and then
/// closed, for every `size` and `n` from 0 to 3: the grid both tests of changing the number of
/// permits walk.
fn each_small_semaphore_open_and_closed(mut check: impl FnMut(Semaphore, bool, usize, usize)) {
    for close in [false, true] {
        for size in 0..4 {
            for n in 0..4 {
                let semaphore = Semaphore::new(size);
                if close {
                    semaphore.close();
                }
                check(semaphore, close, size, n);
            }
        }
    }
}

#[test]
fn semaphore_add_permits_open_and_closed() {
    each_small_semaphore_open_and_closed(|semaphore, close, size, add| {
        semaphore.add_permits(add);
        assert_eq!(semaphore.available_permits(), size + add);
        assert_eq!(semaphore.is_closed(), close);
    });
}

#[test]
fn semaphore_forget() {
    let semaphore = Arc::new(Semaphore::new(2));
    let permit = semaphore.try_acquire().unwrap();
    permit.forget();
    let owned = semaphore.try_acquire_owned().unwrap();
    owned.forget();
    assert_eq!(semaphore.available_permits(), 0);
    assert!(semaphore.try_acquire().is_err());
}

#[test]
fn semaphore_forget_permits_open_and_closed() {
    each_small_semaphore_open_and_closed(|semaphore, close, size, sub| {
        let forgotten = semaphore.forget_permits(sub);
        let expected = size.saturating_sub(sub);
        assert_eq!(semaphore.available_permits(), expected, "{size} - {sub}");
        assert_eq!(forgotten, size - expected);
        assert_eq!(semaphore.is_closed(), close);
    });
}

#[test]
fn semaphore_merge() {
    let semaphore = Arc::new(Semaphore::new(3));
    {
        let mut first = semaphore.try_acquire().unwrap();
        first.merge(semaphore.try_acquire_many(2).unwrap());
        assert_eq!((first.num_permits(), semaphore.available_permits()), (3, 0));
    }
    assert_eq!(semaphore.available_permits(), 3);
    {
        let mut first = semaphore.try_acquire_owned().unwrap();
        first.merge(semaphore.try_acquire_many_owned(2).unwrap());
        assert_eq!((first.num_permits(), semaphore.available_permits()), (3, 0));
    }
    assert_eq!(semaphore.available_permits(), 3);
}

#[test]
#[should_panic(expected = "two different semaphores")]
fn semaphore_merge_unrelated_permits() {
    let (one, two) = (Semaphore::new(3), Semaphore::new(3));
    let mut first = one.try_acquire().unwrap();
    first.merge(two.try_acquire().unwrap());
}

#[test]
#[should_panic(expected = "two different semaphores")]
fn semaphore_merge_unrelated_owned_permits() {
    let (one, two) = (Arc::new(Semaphore::new(3)), Arc::new(Semaphore::new(3)));
    let mut first = one.try_acquire_owned().unwrap();
    first.merge(two.try_acquire_owned().unwrap());
}

#[test]
fn semaphore_split() {
    let semaphore = Semaphore::new(5);
    let mut first = semaphore.try_acquire_many(3).unwrap();
    assert_eq!(semaphore.available_permits(), 2);
    let mut second = first.split(1).unwrap();
    assert_eq!((first.num_permits(), second.num_permits()), (2, 1));
    let empty = first.split(0).unwrap();
    assert_eq!(empty.num_permits(), 0);
    drop(first);
    assert_eq!(semaphore.available_permits(), 4);
    let third = second.split(1).unwrap();
    assert_eq!((second.num_permits(), third.num_permits()), (0, 1));
    assert!(second.split(1).is_none());
    drop((second, empty));
    assert_eq!(semaphore.available_permits(), 4);
    drop(third);
    assert_eq!(semaphore.available_permits(), 5);
}

#[test]
fn semaphore_owned_try_acquire_many() {
    let semaphore = Arc::new(Semaphore::new(42));
    {
        let _all = semaphore.try_acquire_many_owned(42).unwrap();
        assert!(semaphore.try_acquire_owned().is_err());
    }
    let _most = semaphore.try_acquire_many_owned(32).unwrap();
    let _rest = semaphore.try_acquire_many_owned(10).unwrap();
    assert!(semaphore.try_acquire_owned().is_err());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn semaphore_owned_acquire_many() {
    let semaphore = Arc::new(Semaphore::new(42));
    let held = semaphore.try_acquire_many_owned(32).unwrap();
    let (got_ten, ten) = klaw::channel::oneshot::channel();
    let waiter = semaphore.clone();
    let handle = klaw::Handle::current().unwrap().spawn(async move {
        let _ten = waiter.acquire_many_owned(10).await.unwrap();
        got_ten.send(()).unwrap();
        let _more = waiter.acquire_many_owned(32).await.unwrap();
    });
    ten.await.unwrap();
    drop(held);
    handle.await.unwrap();
    assert_eq!(semaphore.available_permits(), 42);
}

/// tokio's `stress_test`: 1000 tasks through 5 permits, then exactly 5 are free.
#[klaw::test(workers = 2, timeout = "20s")]
async fn semaphore_a_thousand_tasks_through_five_permits() {
    let semaphore = Arc::new(Semaphore::new(5));
    klaw::scope!(|s| {
        for task in 0..1000 {
            let semaphore = semaphore.clone();
            s.spawn(async move {
                if task % 2 == 0 {
                    let _permit = semaphore.acquire().await.unwrap();
                } else {
                    let _permit = semaphore.acquire_owned().await.unwrap();
                }
            });
        }
        Ok(())
    })
    .unwrap();
    let _five = semaphore.try_acquire_many(5).unwrap();
    assert!(semaphore.try_acquire().is_err());
}

#[test]
fn semaphore_max_permits() {
    let semaphore = Semaphore::new(0);
    semaphore.add_permits(Semaphore::MAX_PERMITS);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
    let _ = Semaphore::new(Semaphore::MAX_PERMITS);
    let almost = Semaphore::new(Semaphore::MAX_PERMITS - 1);
    almost.add_permits(1);
}

#[test]
#[should_panic(expected = "would exceed Semaphore::MAX_PERMITS")]
fn semaphore_adding_past_max_permits_panics() {
    let semaphore = Semaphore::new(Semaphore::MAX_PERMITS - 1);
    semaphore.add_permits(1);
    semaphore.add_permits(1);
}

/// Held permits count towards `MAX_PERMITS`: they come back. Adding past it while some are
/// out panics at `add_permits`, instead of leaving more than `MAX_PERMITS` free once they are
/// back (for an `RwLock`, whose write takes them all, a write that could never be granted).
#[test]
fn semaphore_held_permits_count_towards_max_permits() {
    let semaphore = Semaphore::new(Semaphore::MAX_PERMITS);
    let held = semaphore.try_acquire_many(2).unwrap();
    let added = std::panic::catch_unwind(|| semaphore.add_permits(1));
    assert!(added.is_err(), "adding a permit while all MAX_PERMITS exist did not panic");
    drop(held);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);

    // Forgotten permits do not come back: their place can be added again.
    semaphore.try_acquire_many(2).unwrap().forget();
    assert_eq!(semaphore.forget_permits(1), 1);
    semaphore.add_permits(3);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
    let owned = std::sync::Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    owned.clone().try_acquire_owned().unwrap().forget();
    owned.add_permits(1);
    assert_eq!(owned.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
#[should_panic(expected = "at most Semaphore::MAX_PERMITS")]
fn semaphore_created_past_max_permits_panics() {
    let _ = Semaphore::new(Semaphore::MAX_PERMITS + 1);
}

// ---- Semaphore: klaw's.

#[test]
fn semaphore_an_acquire_cancelled_in_line_loses_nothing() {
    let semaphore = Semaphore::new(0);
    let (cancelled, mut next) = two_in_line(|| semaphore.acquire());
    drop(cancelled);
    semaphore.add_permits(1);
    assert!(next.is_woken());
    let permit = ready(next.poll()).unwrap();
    assert_eq!(semaphore.available_permits(), 0);
    drop(permit);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn semaphore_an_acquire_cancelled_after_it_was_given_its_permit_passes_it_on() {
    let semaphore = Semaphore::new(0);
    let (granted, mut next) = two_in_line(|| semaphore.acquire());
    semaphore.add_permits(1);
    assert!(granted.is_woken());
    assert!(!next.is_woken());
    drop(granted); // given the permit, never polled again
    assert!(next.is_woken(), "the permit went to the next in line");
    let permit = ready(next.poll()).unwrap();
    assert_eq!(semaphore.available_permits(), 0);
    drop(permit);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn semaphore_a_cancelled_acquire_many_gives_back_what_it_gathered() {
    let semaphore = Semaphore::new(3);
    let held = semaphore.try_acquire_many(3).unwrap();
    let mut big = mock(semaphore.acquire_many(5));
    let mut small = mock(semaphore.acquire());
    pending(big.poll());
    pending(small.poll());
    drop(held); // 3 go to `big`, first in line; `small` waits behind it
    assert_eq!(semaphore.available_permits(), 0);
    assert!(!small.is_woken());
    pending(big.poll());
    drop(big);
    assert!(small.is_woken(), "the gathered permits went on to the next in line");
    let permit = ready(small.poll()).unwrap();
    assert_eq!(semaphore.available_permits(), 2);
    drop(permit);
    assert_eq!(semaphore.available_permits(), 3);
}

#[test]
fn semaphore_acquire_many_is_not_starved_by_single_acquires() {
    let semaphore = Semaphore::new(5);
    let mut held = semaphore.try_acquire_many(5).unwrap();
    let mut big = mock(semaphore.acquire_many(5));
    pending(big.poll());
    let mut smalls: Vec<_> = (0..10).map(|_| mock(semaphore.acquire())).collect();
    for small in &mut smalls {
        pending(small.poll());
    }
    for released in 1..=4 {
        drop(held.split(1).unwrap());
        // Gathered by `big`: no single acquire, waiting or trying, goes before it.
        assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
        assert!(smalls.iter().all(|small| !small.is_woken()), "after {released}");
        pending(big.poll());
    }
    drop(held);
    assert!(big.is_woken());
    let five = ready(big.poll()).unwrap();
    assert_eq!(five.num_permits(), 5);
    assert!(smalls.iter().all(|small| !small.is_woken()));
    drop(five);
    let woken = smalls.iter().filter(|small| small.is_woken()).count();
    assert_eq!(woken, 5, "the next five in line");
    let permits: Vec<_> =
        smalls[..5].iter_mut().map(|small| ready(small.poll()).unwrap()).collect();
    pending(smalls[5].poll());
    drop(permits);
    assert!(smalls[5].is_woken());
}

#[test]
fn semaphore_acquire_many_completes_while_threads_keep_taking_single_permits() {
    within(Duration::from_secs(30), || {
        let semaphore = Arc::new(Semaphore::new(4));
        let stop = Arc::new(AtomicBool::new(false));
        let takers: Vec<_> = (0..3)
            .map(|_| {
                let (semaphore, stop) = (semaphore.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let permit = futures_lite::future::block_on(semaphore.acquire()).unwrap();
                        std::thread::yield_now();
                        drop(permit);
                    }
                })
            })
            .collect();
        for _ in 0..20 {
            let all = futures_lite::future::block_on(semaphore.acquire_many(4)).unwrap();
            assert_eq!(all.num_permits(), 4);
        }
        stop.store(true, Ordering::SeqCst);
        for taker in takers {
            taker.join().unwrap();
        }
        assert_eq!(semaphore.available_permits(), 4);
    });
}

#[test]
fn semaphore_close_fails_the_waiters_and_gives_back_what_they_gathered() {
    let semaphore = Semaphore::new(2);
    let held = semaphore.try_acquire_many(2).unwrap();
    let mut big = mock(semaphore.acquire_many(3));
    pending(big.poll());
    drop(held); // `big` gathers 2
    assert_eq!(semaphore.available_permits(), 0);
    semaphore.close();
    assert!(big.is_woken());
    assert_eq!(semaphore.available_permits(), 2);
    let error = ready(big.poll()).unwrap_err();
    assert!(error.to_string().contains("stop acquiring"), "{error}");
    assert!(klaw::runtime::block_on(semaphore.acquire()).is_err());
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::Closed);
}

#[test]
fn semaphore_permits_granted_before_close_are_kept() {
    let semaphore = Semaphore::new(0);
    let mut granted = mock(semaphore.acquire());
    pending(granted.poll());
    semaphore.add_permits(1);
    semaphore.close();
    let permit = ready(granted.poll()).unwrap();
    drop(permit);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn semaphore_acquire_many_zero_completes_at_once() {
    let semaphore = Semaphore::new(0);
    let mut other = mock(semaphore.acquire());
    pending(other.poll());
    let none = ready(mock(semaphore.acquire_many(0)).poll()).unwrap();
    assert_eq!(none.num_permits(), 0);
}

#[test]
fn semaphore_a_cancel_through_a_klaw_deadline_loses_nothing() {
    let semaphore = Arc::new(Semaphore::new(1));
    let held = semaphore.try_acquire().unwrap();
    let timed_out = klaw::runtime::block_on(klaw::cancel::move_on_after(
        Duration::from_millis(5),
        semaphore.acquire_many(1),
    ));
    assert!(timed_out.is_none());
    drop(held);
    assert_eq!(semaphore.available_permits(), 1);
}

/// Threads race acquires (one or several permits, borrowed or owned), acquires dropped while
/// in line, acquires dropped after being woken, and releases; at the end every permit is back,
/// and at no time were more than the permits held.
#[test]
fn semaphore_stress_racing_acquires_cancels_and_releases_keeps_the_count_exact() {
    const PERMITS: usize = 5;
    within(Duration::from_secs(60), || {
        let semaphore = Arc::new(Semaphore::new(PERMITS));
        let in_use = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4u64)
            .map(|seed| {
                let (semaphore, in_use) = (semaphore.clone(), in_use.clone());
                std::thread::spawn(move || {
                    let mut rng = (seed + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let mut next = move |bound: u64| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng % bound
                    };
                    for _ in 0..20000 {
                        let wanted = 1 + next(3) as usize;
                        let hold = |permits: usize| {
                            let now = in_use.fetch_add(permits, Ordering::SeqCst) + permits;
                            assert!(now <= PERMITS, "{now} permits held at once");
                            // Held a little while for the others to contend.
                            common::pause_spinning(64);
                            in_use.fetch_sub(permits, Ordering::SeqCst);
                        };
                        match next(6) {
                            0 => {
                                let permit =
                                    futures_lite::future::block_on(semaphore.acquire_many(wanted))
                                        .unwrap();
                                hold(permit.num_permits());
                            }
                            1 => {
                                let permit = futures_lite::future::block_on(
                                    semaphore.acquire_many_owned(wanted),
                                )
                                .unwrap();
                                hold(permit.num_permits());
                            }
                            2 => {
                                if let Ok(permit) = semaphore.try_acquire_many(wanted) {
                                    hold(permit.num_permits());
                                }
                            }
                            3 => {
                                // Dropped in line (or with its permits, if it got them).
                                let mut acquire = pin!(semaphore.acquire_many(wanted));
                                let first = futures_lite::future::block_on(
                                    futures_lite::future::poll_once(&mut acquire),
                                );
                                if let Some(permit) = first {
                                    hold(permit.unwrap().num_permits());
                                }
                            }
                            _ => {
                                // Dropped after a yield: possibly woken, given its permits, and
                                // never polled again.
                                let mut acquire = pin!(semaphore.acquire_many_owned(wanted));
                                futures_lite::future::block_on(async {
                                    if let Some(permit) =
                                        futures_lite::future::poll_once(&mut acquire).await
                                    {
                                        hold(permit.unwrap().num_permits());
                                        return;
                                    }
                                    std::thread::yield_now();
                                    futures_lite::future::yield_now().await;
                                    if next(2) == 0 {
                                        if let Some(permit) =
                                            futures_lite::future::poll_once(&mut acquire).await
                                        {
                                            hold(permit.unwrap().num_permits());
                                        }
                                    }
                                });
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(in_use.load(Ordering::SeqCst), 0);
        assert_eq!(semaphore.available_permits(), PERMITS, "every permit came back");
        let all = semaphore.try_acquire_many(PERMITS).unwrap();
        assert!(semaphore.try_acquire().is_err());
        drop(all);
    });
}

// ---- Barrier: ported from tokio's sync_barrier.rs.

#[test]
fn barrier_future_is_send() {
    fn send<T: Send>(_: T) {}
    let barrier = Barrier::new(0);
    send(barrier.wait());
}

#[test]
fn barrier_of_zero_or_one_does_not_block() {
    for n in [0, 1] {
        let barrier = Barrier::new(n);
        for _ in 0..3 {
            assert!(ready(mock(barrier.wait()).poll()).is_leader());
        }
    }
}

#[test]
fn barrier_tango() {
    let barrier = Barrier::new(2);
    let mut first = mock(barrier.wait());
    pending(first.poll());
    let second = ready(mock(barrier.wait()).poll());
    let first = ready(first.poll());
    assert!(first.is_leader() ^ second.is_leader());
}

#[test]
fn barrier_lots() {
    let barrier = Barrier::new(100);
    for _ in 0..10 {
        let mut waiting: Vec<_> = (0..99).map(|_| mock(barrier.wait())).collect();
        for wait in &mut waiting {
            pending(wait.poll());
        }
        for wait in &mut waiting {
            pending(wait.poll());
        }
        let mut leaders = usize::from(ready(mock(barrier.wait()).poll()).is_leader());
        for mut wait in waiting {
            leaders += usize::from(ready(wait.poll()).is_leader());
        }
        assert_eq!(leaders, 1);
    }
}

// ---- Barrier: klaw's.

/// A dropped wait counts as arrived (documented): the others go on, and the next group starts
/// from zero.
#[test]
fn barrier_a_wait_cancelled_after_it_arrived_still_counts_and_loses_no_wake_up() {
    let barrier = Barrier::new(3);
    let (cancelled, mut other) = two_in_line(|| barrier.wait());
    drop(cancelled);
    assert!(ready(mock(barrier.wait()).poll()).is_leader());
    assert!(other.is_woken());
    assert!(!ready(other.poll()).is_leader());
    // The next group: three new arrivals.
    let (mut first, mut second) = two_in_line(|| barrier.wait());
    ready(mock(barrier.wait()).poll());
    ready(first.poll());
    ready(second.poll());
}

#[test]
fn barrier_a_wait_cancelled_after_its_wake_up_loses_nothing() {
    let barrier = Barrier::new(3);
    let (woken, mut other) = two_in_line(|| barrier.wait());
    assert!(ready(mock(barrier.wait()).poll()).is_leader());
    assert!(woken.is_woken() && other.is_woken());
    drop(woken); // woken, never polled again
    assert!(!ready(other.poll()).is_leader());
    let mut next = mock(barrier.wait());
    pending(next.poll()); // the next group starts from zero
    drop(next);
}

#[test]
fn barrier_a_wait_dropped_before_its_first_poll_does_not_count() {
    let barrier = Barrier::new(2);
    drop(barrier.wait());
    let mut first = mock(barrier.wait());
    pending(first.poll());
    assert!(ready(mock(barrier.wait()).poll()).is_leader());
    ready(first.poll());
}

// ---- Event.

#[test]
fn event_set_wakes_every_waiter_present_and_future() {
    let event = Event::new();
    let mut waiters: Vec<_> = (0..3).map(|_| mock(event.wait())).collect();
    for waiter in &mut waiters {
        pending(waiter.poll());
    }
    assert!(!event.is_set());
    event.set();
    assert!(event.is_set());
    for waiter in &mut waiters {
        assert!(waiter.is_woken());
        ready(waiter.poll());
    }
    ready(mock(event.wait()).poll());
    event.set(); // again: nothing changes
    ready(mock(event.wait()).poll());
}

#[test]
fn event_a_wait_cancelled_in_line_loses_nothing() {
    let event = Event::new();
    let (cancelled, mut next) = two_in_line(|| event.wait());
    drop(cancelled);
    event.set();
    assert!(next.is_woken());
    ready(next.poll());
}

#[test]
fn event_a_wait_cancelled_after_its_wake_up_loses_nothing() {
    let event = Event::new();
    let (woken, mut next) = two_in_line(|| event.wait());
    event.set();
    drop(woken);
    assert!(next.is_woken());
    ready(next.poll());
    assert!(event.is_set());
}

#[test]
fn event_set_from_other_threads_under_a_foreign_executor() {
    within(Duration::from_secs(20), || {
        for _ in 0..200 {
            let event = Arc::new(Event::new());
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let event = event.clone();
                    std::thread::spawn(move || futures_lite::future::block_on(event.wait()))
                })
                .collect();
            event.set();
            for waiter in waiters {
                waiter.join().unwrap();
            }
        }
    });
}

// ---- Notify: ported from tokio's sync_notify.rs.

#[test]
fn notify_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Notify>();
    send_sync::<Semaphore>();
    send_sync::<Event>();
    send_sync::<Barrier>();
    send_sync::<Mutex<u32>>();
    send_sync::<RwLock<u32>>();
}

#[test]
fn notify_notified_one() {
    let notify = Notify::new();
    let mut notified = mock(notify.notified());
    notify.notify_one();
    ready(notified.poll());
}

#[test]
fn notify_multi_notified_one() {
    let notify = Notify::new();
    let (mut first, mut second) = two_in_line(|| notify.notified());
    notify.notify_one();
    ready(first.poll());
    pending(second.poll());
}

#[test]
fn notify_notified_one_notify() {
    let notify = Notify::new();
    let mut notified = mock(notify.notified());
    pending(notified.poll());
    notify.notify_one();
    assert!(notified.is_woken());
    ready(notified.poll());
}

#[test]
fn notify_notified_multi_notify() {
    let notify = Notify::new();
    let (mut first, mut second) = two_in_line(|| notify.notified());
    notify.notify_one();
    assert!(first.is_woken());
    assert!(!second.is_woken());
    ready(first.poll());
    pending(second.poll());
}

#[test]
fn notify_notify_notified_multi() {
    let notify = Notify::new();
    notify.notify_one();
    let mut first = mock(notify.notified());
    let mut second = mock(notify.notified());
    ready(first.poll());
    pending(second.poll());
    notify.notify_one();
    assert!(second.is_woken());
    ready(second.poll());
}

/// tokio's `notified_drop_notified_notify`: a notified cancelled in line loses nothing.
#[test]
fn notify_a_notified_cancelled_in_line_loses_nothing() {
    let notify = Notify::new();
    let mut cancelled = mock(notify.notified());
    let mut next = mock(notify.notified());
    pending(cancelled.poll());
    drop(cancelled);
    pending(next.poll());
    notify.notify_one();
    assert!(next.is_woken());
    ready(next.poll());
}

/// tokio's `notified_multi_notify_drop_one`: a notified cancelled after its wake-up passes it on.
#[test]
fn notify_a_notified_cancelled_after_its_wake_up_passes_it_on() {
    let notify = Notify::new();
    let (woken, mut next) = two_in_line(|| notify.notified());
    notify.notify_one();
    assert!(woken.is_woken());
    assert!(!next.is_woken());
    drop(woken);
    assert!(next.is_woken());
    ready(next.poll());
}

#[test]
fn notify_multi_notify_one_drop() {
    let notify = Notify::new();
    let mut first = mock(notify.notified());
    let mut second = mock(notify.notified());
    let mut third = mock(notify.notified());
    pending(first.poll());
    pending(second.poll());
    pending(third.poll());
    notify.notify_one();
    drop(first);
    ready(second.poll());
    pending(third.poll());
}

/// A notification passed on by a dropped `Notified` with nobody behind it is stored.
#[test]
fn notify_a_wake_up_passed_on_to_nobody_is_stored() {
    let notify = Notify::new();
    let mut woken = mock(notify.notified());
    pending(woken.poll());
    notify.notify_one();
    drop(woken);
    ready(mock(notify.notified()).poll());
    pending(mock(notify.notified()).poll());
}

#[test]
fn notify_in_drop_after_wake() {
    within(Duration::from_secs(10), || {
        struct NotifyOnDrop(Arc<Notify>);
        impl Wake for NotifyOnDrop {
            fn wake(self: Arc<Self>) {}
        }
        impl Drop for NotifyOnDrop {
            fn drop(&mut self) {
                self.0.notify_waiters();
            }
        }
        let notify = Arc::new(Notify::new());
        let mut notified = pin!(notify.notified());
        {
            let waker = Waker::from(Arc::new(NotifyOnDrop(notify.clone())));
            assert!(notified.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        }
        notify.notify_waiters(); // drops the waker, which notifies again: no deadlock
    });
}

#[test]
fn notify_one_after_dropped_all() {
    let notify = Notify::new();
    let mut first = mock(notify.notified());
    pending(first.poll());
    notify.notify_waiters();
    notify.notify_one();
    drop(first);
    ready(mock(notify.notified()).poll());
}

#[test]
fn notify_one_wakes_a_future_not_polled_yet() {
    let notify = Notify::new();
    let mut notified = mock(notify.notified());
    notify.notify_one();
    ready(notified.poll());
}

#[test]
fn notify_waker_update() {
    let notify = Notify::new();
    let mut notified = mock(notify.notified());
    // Polled with a noop waker, then with the task's: the task's is the one woken.
    pending(notified.future.as_mut().poll(&mut Context::from_waker(Waker::noop())));
    pending(notified.poll());
    notify.notify_one();
    assert!(notified.is_woken());
}

#[test]
fn notify_unpolled_future_completed_by_notify_waiters_keeps_the_notify_one_permit() {
    let notify = Notify::new();
    let first = notify.notified();
    notify.notify_waiters();
    notify.notify_one();
    assert!(futures_lite::future::block_on(futures_lite::future::poll_once(first)).is_some());
    let second = notify.notified();
    assert!(futures_lite::future::block_on(futures_lite::future::poll_once(second)).is_some());
}

// ---- Wakers that come back into the primitive: none is woken or dropped under its lock.

/// A waker that runs `hook` when it is woken and when it is dropped.
struct Reenter(Box<dyn Fn() + Send + Sync>);

impl Wake for Reenter {
    fn wake(self: Arc<Self>) {
        (self.0)();
    }
}

impl Drop for Reenter {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn semaphore_wakers_may_come_back_into_the_semaphore() {
    within(Duration::from_secs(10), || {
        let semaphore = Arc::new(Semaphore::new(0));
        let reenter = || {
            let inside = semaphore.clone();
            Waker::from(Arc::new(Reenter(Box::new(move || {
                let _ = inside.available_permits();
                drop(inside.try_acquire());
            }))))
        };
        let (first, second) = (reenter(), reenter());
        let mut acquire = pin!(semaphore.acquire());
        assert!(acquire.as_mut().poll(&mut Context::from_waker(&first)).is_pending());
        drop(first);
        // Another waker replaces the stored one, whose last clone is dropped.
        assert!(acquire.as_mut().poll(&mut Context::from_waker(&second)).is_pending());
        semaphore.add_permits(1); // wakes the stored one
        drop(second);
        let permit = futures_lite::future::block_on(acquire).unwrap();
        drop(permit); // no waiter: nothing to wake
        semaphore.close();
    });
}

#[test]
fn notify_wakers_may_come_back_into_the_notify() {
    within(Duration::from_secs(10), || {
        let notify = Arc::new(Notify::new());
        let inside = notify.clone();
        let waker = Waker::from(Arc::new(Reenter(Box::new(move || {
            let _ = format!("{inside:?}");
        }))));
        let mut notified = pin!(notify.notified());
        assert!(notified.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        drop(waker);
        notify.notify_one();
        assert!(notified.poll(&mut Context::from_waker(Waker::noop())).is_ready());
    });
}

/// Promise (ARCHITECTURE.md): "No waker is cloned, dropped or woken, and no user code runs,
/// under a lock". The mutex hands itself to the first `lock()` in line and wakes it; that
/// waker drops the second `lock()` in line, which leaves the line of the same mutex, and the
/// unlock returns.
#[test]
fn mutex_a_waiters_waker_may_drop_another_waiter_of_the_same_mutex() {
    let woken = within(Duration::from_secs(5), || {
        let mutex = Arc::new(Mutex::new(0));
        let guard = mutex.try_lock().unwrap();
        let drops = Arc::new(DropOnWake::new(None, None));
        let mut first = pin!(mutex.lock());
        let waker = Waker::from(drops.clone());
        assert!(first.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        let lock = mutex.lock_owned();
        drops.keep_waiting(async move { drop(lock.await) }); // second in line
        drop(guard); // hands the mutex to `first`, whose waker drops the other lock
        let guard = futures_lite::future::block_on(first);
        assert!(mutex.try_lock_owned().is_none(), "`first` holds it");
        drop(guard);
        assert!(mutex.try_lock().is_some(), "the dropped lock left the line");
        drops.woken_and_dropped()
    });
    assert_eq!(woken, (1, true), "(wake-ups, the other wait dropped)");
}

/// As above, for a barrier: the group's last arrival wakes the others, and one of them, woken,
/// drops another wait of the same group.
#[test]
fn barrier_a_waiters_waker_may_drop_another_waiter_of_the_same_barrier() {
    let woken = within(Duration::from_secs(5), || {
        let barrier = Arc::new(Barrier::new(3));
        let drops = Arc::new(DropOnWake::new(None, None));
        let mut first = pin!(barrier.wait());
        let waker = Waker::from(drops.clone());
        assert!(first.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        let other = barrier.clone();
        drops.keep_waiting(async move {
            other.wait().await;
        });
        let last = futures_lite::future::block_on(barrier.wait()); // the third: opens the group
        assert!(last.is_leader());
        assert!(!futures_lite::future::block_on(first).is_leader());
        drops.woken_and_dropped()
    });
    assert_eq!(woken, (1, true), "(wake-ups, the other wait dropped)");
}

/// As above, for an event: `set` wakes a waiter whose waker drops another wait of the same
/// event, and `set` returns.
#[test]
fn event_a_waiters_waker_may_drop_another_waiter_of_the_same_event() {
    let woken = within(Duration::from_secs(5), || {
        let event = Arc::new(Event::new());
        let drops = Arc::new(DropOnWake::new(None, None));
        let mut first = pin!(event.wait());
        let waker = Waker::from(drops.clone());
        assert!(first.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        let other = event.clone();
        drops.keep_waiting(async move { other.wait().await });
        event.set();
        futures_lite::future::block_on(first);
        drops.woken_and_dropped()
    });
    assert_eq!(woken, (1, true), "(wake-ups, the other wait dropped)");
}

// ---- Under a foreign executor, across threads.

#[test]
fn mutex_semaphore_and_notify_under_a_foreign_executor() {
    within(Duration::from_secs(30), || {
        let mutex = Arc::new(Mutex::new(0u64));
        let semaphore = Arc::new(Semaphore::new(2));
        let notify = Arc::new(Notify::new());
        let finished = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (mutex, semaphore) = (mutex.clone(), semaphore.clone());
                let (notify, finished) = (notify.clone(), finished.clone());
                std::thread::spawn(move || {
                    futures_lite::future::block_on(async {
                        for _ in 0..500 {
                            let _permit = semaphore.acquire().await.unwrap();
                            *mutex.lock().await += 1;
                        }
                        finished.fetch_add(1, Ordering::SeqCst);
                        notify.notify_one();
                    })
                })
            })
            .collect();
        futures_lite::future::block_on(async {
            // Look, and wait for a notification if it is not done: a `notify_one` between the
            // look and the wait is stored, so none is missed.
            while finished.load(Ordering::SeqCst) < 4 {
                notify.notified().await;
            }
        });
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*futures_lite::future::block_on(mutex.lock()), 2000);
        assert_eq!(semaphore.available_permits(), 2);
    });
}
