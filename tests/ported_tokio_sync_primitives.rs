//! tokio's sync-primitive tests, ported to `klaw::sync`, for the cases `sync_primitives.rs` (and
//! the unit tests under `klaw-rt/src/primitives/`) do not cover already. Read at tokio commit
//! `ea91b33ca57ff0581b38e735cc108f831bccbdaa`: `tokio/tests/sync_mutex.rs`,
//! `sync_mutex_owned.rs`, `sync_rwlock.rs`, `sync_semaphore.rs`, `sync_semaphore_owned.rs`,
//! `sync_notify.rs`, `sync_barrier.rs`, and tokio's unit tests of the same primitives,
//! `tokio/src/sync/tests/semaphore_batch.rs` and `tokio/src/sync/tests/notify.rs`. Each test names
//! the tokio test it translates.
//!
//! Names: tokio-test's `task::spawn(fut)`, `.poll()` and `.is_woken()` are `common/mock_task.rs`'s `MockTask`.
//! `try_lock`/`try_read`/`try_write` give an `Option` (tokio: a `Result`); the owned methods take
//! `&Arc<Self>` (tokio: `self: Arc<Self>`, hence no `.clone()` at the call). tokio's internal
//! `batch_semaphore::Semaphore` has `acquire(n)` and `release(n)` with no permit guard: here they
//! are `acquire_many(n)` (its permit kept, or `forget`-ten, where tokio leaks it) and
//! `add_permits(n)`. tokio's `timeout(1 ms, ..)` that cancels a future becomes
//! `klaw::cancel::move_on_after` on a paused (virtual) clock; nothing here asserts on wall-clock
//! time.
//!
//! `Mutex` and `RwLock` waiters are served first come, first served, as tokio's are; what an
//! `RwLock` promises beyond that (it lets no new reader in while a writer waits; a released or
//! cancelled write lets the reads it held back through) is tested in tokio's style below.

mod common;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, RawWaker, RawWakerVTable, Wake, Waker};
use std::time::Duration;

use klaw::sync::{
    Mutex, Notify, OwnedMutexGuard, OwnedRwLockWriteGuard, OwnedSemaphorePermit, RwLock,
    RwLockWriteGuard, Semaphore, TryAcquireError,
};

// ---- Helpers.

#[path = "common/mock_task.rs"]
mod mock_task;

use common::{DEADLINE, within};
use mock_task::{mock, pending, ready};

// ---- Mutex: tokio's sync_mutex_owned.rs (sync_mutex.rs is ported in sync_primitives.rs).

/// tokio `sync_mutex_owned::straight_execution`.
#[test]
fn mutex_owned_straight_execution() {
    let mutex = Arc::new(Mutex::new(100));
    for (before, after) in [(100, 99), (99, 98)] {
        let mut lock = mock(mutex.lock_owned());
        let mut guard = ready(lock.poll());
        assert_eq!(*guard, before);
        *guard = after;
    }
    let mut last = mock(mutex.lock_owned());
    assert_eq!(*ready(last.poll()), 98);
}

/// tokio `sync_mutex_owned::readiness`.
#[test]
fn mutex_owned_readiness() {
    let mutex = Arc::new(Mutex::new(100));
    let mut first = mock(mutex.lock_owned());
    let mut second = mock(mutex.lock_owned());
    let guard = ready(first.poll());
    pending(second.poll());
    drop(guard);
    assert!(second.is_woken(), "the waiting lock_owned is woken when the guard goes");
    let _second = ready(second.poll());
}

/// tokio `sync_mutex_owned::aborted_future_1`: a future holding an owned guard is cut short by a
/// deadline; the mutex is unlocked afterwards.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn mutex_owned_a_deadline_that_cuts_a_guard_holder_short_unlocks() {
    let mutex = Arc::new(Mutex::new(0usize));
    let holder = mutex.clone();
    let cut = klaw::cancel::move_on_after(Duration::from_millis(1), async move {
        let _guard = holder.lock_owned().await;
        klaw::time::sleep(Duration::from_secs(1)).await;
        klaw::time::sleep(Duration::from_secs(1)).await;
    })
    .await;
    assert!(cut.is_none(), "the deadline cut the holder short");
    assert!(mutex.try_lock_owned().is_some(), "no lock was left behind");
    let relocked = klaw::cancel::move_on_after(Duration::from_millis(1), mutex.lock_owned()).await;
    assert!(relocked.is_some(), "the mutex is locked");
}

/// tokio `sync_mutex_owned::aborted_future_2`: a `lock_owned` waiting in line is cut short by a
/// deadline; once the holder lets go, the mutex is free.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn mutex_owned_a_deadline_that_cuts_a_waiting_lock_short_leaves_it_unlocked() {
    let mutex = Arc::new(Mutex::new(0usize));
    {
        let _held = mutex.lock_owned().await;
        let waiter = mutex.clone();
        let cut = klaw::cancel::move_on_after(Duration::from_millis(1), async move {
            let _guard = waiter.lock_owned().await;
        })
        .await;
        assert!(cut.is_none(), "the waiting lock was cut short");
    }
    let relocked = klaw::cancel::move_on_after(Duration::from_millis(1), mutex.lock_owned()).await;
    assert!(relocked.is_some(), "the mutex is locked");
}

/// tokio `sync_mutex_owned::try_lock_owned`.
#[test]
fn mutex_try_lock_owned() {
    let mutex = Arc::new(Mutex::new(0usize));
    {
        let first = mutex.try_lock_owned();
        assert!(first.is_some());
        assert!(mutex.try_lock_owned().is_none());
    }
    assert!(mutex.try_lock_owned().is_some());
}

/// tokio `sync_mutex_owned::debug_format`: an owned guard formats as its value.
#[test]
fn mutex_owned_guard_debug_format() {
    let text = "debug";
    let mutex = Arc::new(Mutex::new(text.to_string()));
    let guard: OwnedMutexGuard<String> = klaw::runtime::block_on(mutex.lock_owned());
    assert_eq!(format!("{guard:?}"), format!("{text:?}"));
}

// ---- RwLock: tokio's sync_rwlock.rs, for the owned guards (the borrowed ones are in
// sync_primitives.rs), then tokio's fairness tests in the cases klaw's docs promise.

/// tokio `sync_rwlock::read_shared`, `write_shared_pending`, `read_exclusive_pending`,
/// `write_exclusive_pending` and `write_shared_drop`, with owned guards.
#[test]
fn rwlock_owned_guards_share_and_exclude_as_borrowed_ones() {
    let lock = Arc::new(RwLock::new(100));
    let first = ready(mock(lock.read_owned()).poll());
    let second = ready(mock(lock.read_owned()).poll());
    let mut writer = mock(lock.write_owned());
    pending(writer.poll());
    drop(first);
    assert!(!writer.is_woken(), "a reader still holds the lock");
    drop(second);
    assert!(writer.is_woken(), "the last reader's drop wakes the writer");
    let guard: OwnedRwLockWriteGuard<i32> = ready(writer.poll());
    pending(mock(lock.read_owned()).poll());
    pending(mock(lock.write_owned()).poll());
    drop(guard);
    assert_eq!(*ready(mock(lock.read_owned()).poll()), 100);
}

/// tokio `sync_rwlock::write_read_shared_pending`, with the lock held by a writer instead of two
/// readers: a second write waits, and a read that comes after it must wait behind it once the
/// first writer is gone ("An `RwLock` lets no new reader in while a writer waits", the book;
/// `RwLock::write`: "From the moment it starts waiting, new reads wait behind it").
#[test]
fn rwlock_a_write_waiting_behind_a_write_holds_new_reads_back() {
    let lock = RwLock::new(100);
    let first = lock.try_write().unwrap();
    let mut second = mock(lock.write());
    pending(second.poll());
    drop(first);
    assert!(second.is_woken());
    // `second` waits for the lock (woken, not yet polled): no new read goes before it.
    assert!(lock.try_read().is_none(), "try_read got in ahead of a waiting writer");
    let mut late = mock(lock.read());
    pending(late.poll());
    let mut guard = ready(second.poll());
    *guard += 1;
    drop(guard);
    assert!(late.is_woken());
    assert_eq!(*ready(late.poll()), 101);
}

/// tokio `sync_rwlock::read_exclusive_pending` then `write_shared_drop`'s release, with two
/// waiting reads: once the writer is gone, every waiting read gets the lock, in whatever order
/// they are polled (`RwLock::read`: it "waits while a writer holds the lock or waits for it").
#[test]
fn rwlock_a_released_write_lets_every_waiting_read_in() {
    let lock = RwLock::new(100);
    let writer = lock.try_write().unwrap();
    let mut first = mock(lock.read());
    let mut second = mock(lock.read());
    pending(first.poll());
    pending(second.poll());
    drop(writer);
    assert!(lock.try_read().is_some(), "no writer holds or waits for the lock");
    // `first` is kept (busy elsewhere, say) but not polled: `second` must not need it.
    let _second = ready(second.poll());
    let _first = ready(first.poll());
}

/// What the test above costs under a real executor: a read woken first but kept unpolled (its
/// task busy elsewhere) must not hold back another read on another thread once the writer is
/// gone. In tokio the release goes to every waiting read, so the other thread finishes.
#[test]
fn rwlock_a_woken_but_unpolled_read_does_not_hold_back_the_other_reads() {
    within(DEADLINE, || {
        let lock = RwLock::new(7);
        let writer = lock.try_write().unwrap();
        let mut mine = pin!(lock.read());
        assert!(mine.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        std::thread::scope(|s| {
            let (parked, is_parked) = std::sync::mpsc::channel();
            let lock = &lock;
            let other = s.spawn(move || {
                futures_lite::future::block_on(async {
                    let mut read = pin!(lock.read());
                    assert!(futures_lite::future::poll_once(read.as_mut()).await.is_none());
                    parked.send(()).unwrap();
                    *read.await
                })
            });
            is_parked.recv().unwrap();
            drop(writer);
            assert_eq!(other.join().unwrap(), 7, "the other thread's read got the lock");
        });
        assert!(mine.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
    });
}

/// tokio `sync_rwlock::write_read_shared_drop_pending`, with two reads held back: the cancelled
/// write wakes both (`RwLock::write`'s cancel safety: "the reads it was holding back ... are
/// woken").
#[test]
fn rwlock_a_cancelled_write_wakes_every_read_it_held_back() {
    let lock = RwLock::new(100);
    let _reader = lock.try_read().unwrap();
    let mut writer = mock(lock.write());
    pending(writer.poll());
    let mut first = mock(lock.read());
    let mut second = mock(lock.read());
    pending(first.poll());
    pending(second.poll());
    drop(writer);
    assert!(first.is_woken(), "the first read held back is woken");
    assert!(second.is_woken(), "the second read held back is woken");
    let _second = ready(second.poll());
    let _first = ready(first.poll());
}

/// tokio `sync_rwlock::downgrade_map`, with two waiting reads: after the downgrade both get in
/// (`RwLockWriteGuard::downgrade`: "readers that waited get in too").
#[test]
fn rwlock_downgrade_lets_every_waiting_read_in() {
    let lock = RwLock::new(0);
    let writer = lock.try_write().unwrap();
    let mut first = mock(lock.read());
    let mut second = mock(lock.read());
    pending(first.poll());
    pending(second.poll());
    let downgraded = RwLockWriteGuard::downgrade(writer);
    let read = ready(second.poll());
    assert!(std::ptr::eq(&*downgraded, &*read));
    let _first = ready(first.poll());
}

// ---- Semaphore: tokio's sync_semaphore.rs and sync_semaphore_owned.rs.

/// tokio `sync_semaphore::add_more_than_max_amount_permits1`.
#[test]
#[should_panic(expected = "would exceed Semaphore::MAX_PERMITS")]
fn semaphore_adding_max_permits_to_one_panics() {
    let semaphore = Semaphore::new(1);
    semaphore.add_permits(Semaphore::MAX_PERMITS);
}

/// tokio `sync_semaphore_owned::try_acquire`.
#[test]
fn semaphore_owned_try_acquire() {
    let semaphore = Arc::new(Semaphore::new(1));
    {
        let first = semaphore.try_acquire_owned();
        assert!(first.is_ok());
        assert_eq!(semaphore.try_acquire_owned().unwrap_err(), TryAcquireError::NoPermits);
    }
    assert!(semaphore.try_acquire_owned().is_ok());
}

/// tokio `sync_semaphore_owned::split`.
#[test]
fn semaphore_owned_split() {
    let semaphore = Arc::new(Semaphore::new(5));
    let mut first = semaphore.try_acquire_many_owned(3).unwrap();
    assert_eq!((semaphore.available_permits(), first.num_permits()), (2, 3));
    let mut second = first.split(1).unwrap();
    assert_eq!(semaphore.available_permits(), 2);
    assert_eq!((first.num_permits(), second.num_permits()), (2, 1));
    let empty = first.split(0).unwrap();
    assert_eq!(empty.num_permits(), 0);
    drop(first);
    assert_eq!(semaphore.available_permits(), 4);
    let third = second.split(1).unwrap();
    assert_eq!((second.num_permits(), third.num_permits()), (0, 1));
    assert!(second.split(1).is_none());
    drop(second);
    assert_eq!(semaphore.available_permits(), 4);
    drop(empty);
    assert_eq!(semaphore.available_permits(), 4);
    drop(third);
    assert_eq!(semaphore.available_permits(), 5);
}

// ---- Semaphore: tokio's src/sync/tests/semaphore_batch.rs.

/// tokio `semaphore_batch::poll_acquire_one_unavailable`.
#[test]
fn semaphore_poll_acquire_one_unavailable() {
    let semaphore = Semaphore::new(1);
    ready(mock(semaphore.acquire()).poll()).unwrap().forget();
    assert_eq!(semaphore.available_permits(), 0);
    let mut second = mock(semaphore.acquire());
    pending(second.poll());
    assert_eq!(semaphore.available_permits(), 0);
    semaphore.add_permits(1);
    assert_eq!(semaphore.available_permits(), 0, "the permit went to the waiter");
    assert!(second.is_woken());
    ready(second.poll()).unwrap().forget();
    assert_eq!(semaphore.available_permits(), 0);
    semaphore.add_permits(1);
    assert_eq!(semaphore.available_permits(), 1);
}

/// tokio `semaphore_batch::poll_acquire_many_unavailable`: a waiting `acquire_many(5)` gathers
/// what comes back; the `acquire_many(3)` behind it is woken only once it has all three.
#[test]
fn semaphore_poll_acquire_many_unavailable() {
    let semaphore = Semaphore::new(5);
    let _one = ready(mock(semaphore.acquire()).poll()).unwrap();
    assert_eq!(semaphore.available_permits(), 4);
    let mut five = mock(semaphore.acquire_many(5));
    pending(five.poll());
    assert_eq!(semaphore.available_permits(), 0, "the first in line gathered the four");
    let mut three = mock(semaphore.acquire_many(3));
    pending(three.poll());
    assert_eq!(semaphore.available_permits(), 0);
    semaphore.add_permits(1);
    assert_eq!(semaphore.available_permits(), 0);
    assert!(five.is_woken());
    let _five = ready(five.poll()).unwrap();
    assert!(!three.is_woken());
    assert_eq!(semaphore.available_permits(), 0);
    semaphore.add_permits(1);
    assert!(!three.is_woken(), "one of three gathered");
    assert_eq!(semaphore.available_permits(), 0);
    semaphore.add_permits(2);
    assert!(three.is_woken());
    assert_eq!(ready(three.poll()).unwrap().num_permits(), 3);
}

/// tokio `semaphore_batch::try_acquire_many_unavailable`.
#[test]
fn semaphore_try_acquire_many_unavailable() {
    let semaphore = Semaphore::new(5);
    semaphore.try_acquire().unwrap().forget();
    assert_eq!(semaphore.available_permits(), 4);
    assert_eq!(semaphore.try_acquire_many(5).unwrap_err(), TryAcquireError::NoPermits);
    semaphore.add_permits(1);
    assert_eq!(semaphore.available_permits(), 5);
    semaphore.try_acquire_many(5).unwrap().forget();
    semaphore.add_permits(1);
    assert_eq!(semaphore.available_permits(), 1);
    semaphore.add_permits(1);
    assert_eq!(semaphore.available_permits(), 2);
}

/// tokio `semaphore_batch::close_semaphore_prevents_acquire`: failed acquires on a closed
/// semaphore take nothing.
#[test]
fn semaphore_close_prevents_acquire() {
    let semaphore = Semaphore::new(5);
    semaphore.close();
    assert_eq!(semaphore.available_permits(), 5);
    for _ in 0..2 {
        assert!(ready(mock(semaphore.acquire()).poll()).is_err());
        assert_eq!(semaphore.available_permits(), 5);
    }
}

/// tokio `semaphore_batch::close_semaphore_notifies_permit2`: close wakes every waiter with an
/// error; permits held before still come back, and acquires still fail.
#[test]
fn semaphore_close_notifies_every_waiter() {
    let semaphore = Semaphore::new(2);
    let first = ready(mock(semaphore.acquire()).poll()).unwrap();
    let second = ready(mock(semaphore.acquire()).poll()).unwrap();
    let mut third = mock(semaphore.acquire());
    let mut fourth = mock(semaphore.acquire());
    pending(third.poll());
    pending(fourth.poll());
    semaphore.close();
    assert!(third.is_woken());
    assert!(fourth.is_woken());
    assert!(ready(third.poll()).is_err());
    assert!(ready(fourth.poll()).is_err());
    assert_eq!(semaphore.available_permits(), 0);
    drop(first);
    assert_eq!(semaphore.available_permits(), 1);
    assert!(ready(mock(semaphore.acquire()).poll()).is_err());
    drop(second);
    assert_eq!(semaphore.available_permits(), 2);
}

/// tokio `semaphore_batch::cancel_acquire_releases_permits`.
#[test]
fn semaphore_cancel_acquire_releases_permits() {
    let semaphore = Semaphore::new(10);
    let _four = semaphore.try_acquire_many(4).expect("uncontended try_acquire_many succeeds");
    assert_eq!(semaphore.available_permits(), 6);
    let mut eight = mock(semaphore.acquire_many(8));
    pending(eight.poll());
    assert_eq!(semaphore.available_permits(), 0);
    drop(eight);
    assert_eq!(semaphore.available_permits(), 6);
    assert!(semaphore.try_acquire_many(6).is_ok());
}

/// tokio `semaphore_batch::release_permits_at_drop`: a waker that holds a permit, dropped when a
/// new waker replaces it, gives the permit back into the semaphore from inside `poll`; no
/// deadlock.
#[test]
fn semaphore_release_permits_at_waker_drop() {
    within(DEADLINE, || {
        struct PermitInWaker(#[allow(dead_code)] Option<OwnedSemaphorePermit>);
        impl Wake for PermitInWaker {
            fn wake(self: Arc<Self>) {}
        }
        let semaphore = Arc::new(Semaphore::new(1));
        let mut acquire = Box::pin(async {
            let _permit = semaphore.acquire().await.unwrap();
        });
        for _ in 0..2 {
            let held = semaphore.try_acquire_owned().ok();
            let waker = Waker::from(Arc::new(PermitInWaker(held)));
            assert!(acquire.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        }
    });
}

/// tokio `semaphore_batch::update_permits_many_times`.
#[test]
fn semaphore_update_permits_many_times() {
    let semaphore = Semaphore::new(5);
    let mut seven = mock(semaphore.acquire_many(7));
    pending(seven.poll());
    semaphore.add_permits(5);
    let _seven = ready(seven.poll()).unwrap();
    assert_eq!(semaphore.available_permits(), 3);
    assert_eq!(semaphore.forget_permits(3), 3);
    assert_eq!(semaphore.available_permits(), 0);
}

// ---- Notify: tokio's src/sync/tests/notify.rs (sync_notify.rs is ported in sync_primitives.rs).

/// tokio `notify::notify_simple`: `notify_waiters` wakes both waiting futures.
#[test]
fn notify_waiters_wakes_every_waiting_future() {
    let notify = Notify::new();
    let mut first = mock(notify.notified());
    pending(first.poll());
    let mut second = mock(notify.notified());
    pending(second.poll());
    notify.notify_waiters();
    assert!(first.is_woken() && second.is_woken());
    ready(first.poll());
    ready(second.poll());
}

/// A waker whose `clone` runs `notify_one` on the `Notify` it points to: code that must not run
/// under the `Notify`'s lock.
mod notify_on_clone {
    use super::*;

    const VTABLE: RawWakerVTable = RawWakerVTable::new(clone, never, never, drop);

    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` came from `Arc::into_raw` of an `Arc<Notify>` that is still alive
        // (every `RawWaker` made here owns one count of it).
        unsafe { Arc::increment_strong_count(data.cast::<Notify>()) };
        // SAFETY: as above, the `Notify` is alive.
        unsafe { &*data.cast::<Notify>() }.notify_one();
        RawWaker::new(data, &VTABLE)
    }

    unsafe fn never(_: *const ()) {
        unreachable!("the waker is only cloned and dropped here");
    }

    unsafe fn drop(data: *const ()) {
        // SAFETY: this `RawWaker` owns one count of the `Arc<Notify>` at `data`.
        std::mem::drop(unsafe { Arc::from_raw(data.cast::<Notify>()) });
    }

    pub(super) fn waker(notify: Arc<Notify>) -> Waker {
        let raw = RawWaker::new(Arc::into_raw(notify).cast::<()>(), &VTABLE);
        // SAFETY: the vtable's functions keep the `Arc` count right and are thread safe, as
        // `Notify` is `Send + Sync`.
        unsafe { Waker::from_raw(raw) }
    }
}

/// tokio `notify::notify_clones_waker_before_lock`: polling a `notified()` clones the waker
/// outside the `Notify`'s lock, so a clone that calls back into the `Notify` does not deadlock.
#[test]
fn notify_clones_the_waker_before_taking_its_lock() {
    within(DEADLINE, || {
        let notify = Arc::new(Notify::new());
        let waker = notify_on_clone::waker(notify.clone());
        let mut notified = pin!(notify.notified());
        // Ready or pending does not matter: that it returns does.
        let _ = notified.as_mut().poll(&mut Context::from_waker(&waker));
    });
}

/// tokio `notify::notify_waiters_handles_panicking_waker`: a waker that panics in `wake` makes
/// `notify_waiters` panic, but every other waiting future is still notified.
#[test]
fn notify_waiters_survives_a_panicking_waker() {
    struct Panics;
    impl Wake for Panics {
        fn wake(self: Arc<Self>) {
            panic!("waker panicked");
        }
    }
    let notify = Notify::new();
    let mut bad = pin!(notify.notified());
    let panicking = Waker::from(Arc::new(Panics));
    assert!(bad.as_mut().poll(&mut Context::from_waker(&panicking)).is_pending());
    let mut others: Vec<_> = (0..32).map(|_| mock(notify.notified())).collect();
    for other in &mut others {
        pending(other.poll());
    }
    let woke = catch_unwind(AssertUnwindSafe(|| notify.notify_waiters()));
    assert!(woke.is_err(), "the waker's panic comes out of notify_waiters");
    for other in &mut others {
        ready(other.poll());
    }
}
