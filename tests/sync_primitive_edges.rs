//! `klaw::sync` at the edges of its promises, after tokio's `sync_mutex.rs`,
//! `sync_mutex_owned.rs`, `sync_rwlock.rs`, `sync_semaphore.rs`, `sync_semaphore_owned.rs`,
//! `sync_notify.rs` and `sync_barrier.rs`, for the cases `sync_primitives.rs` and
//! `ported_tokio_sync_primitives.rs` do not cover:
//!
//! - a wait that was granted or notified, then cancelled inside a klaw task before the task ran
//!   again (its worker held busy), for every primitive: the grant goes on, no waiter is stranded;
//!   and the same race unscheduled (grants from one thread, cancels from another), and threads
//!   that give up a `Mutex` or `RwLock` wait before or after its wake-up, at random;
//! - a scope cancelled, and a runtime shut down, while children wait on the primitives;
//! - the semaphore's edges: `acquire_many` beyond the total, `close` failing every kind of
//!   waiter with `AcquireError`, `add_permits` that would overflow, owned `split`/`merge`/`forget`,
//!   a granted acquire that keeps its permits from `try_acquire` and `forget_permits`;
//! - `RwLock` fairness: downgrade lets in only the reads queued before the next write, and a
//!   writer is not starved by readers that keep overlapping; `Mutex` order (first come, first
//!   served) against a thread that relocks at once;
//! - `Notify`: what `notify_waiters` stores (nothing), how many permits dropped futures pass on
//!   (at most one), and that a future completed by `notify_waiters` passes nothing on;
//! - `Barrier` of 0 and 1 and its generations in tasks;
//! - `Debug` of every primitive while locked or contended returns.
//!
//! Every scenario runs under a deadline (`common::within`), so a hang fails the test.

mod common;

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

use futures_util::future::FusedFuture;
use klaw::sync::{
    AcquireError, Barrier, Event, Mutex, Notify, OwnedRwLockWriteGuard, RwLock, RwLockWriteGuard,
    Semaphore, TryAcquireError,
};
use klaw::{TaskError, TaskHandle};

#[path = "common/mock_task.rs"]
mod mock_task;

use common::{DEADLINE, Flag, ms, occupy_worker, runtime, signalling, wait_for, within};
use mock_task::{mock, pending, ready};

// ---- Helpers.

/// Spawns `make(in_line)` on `rt` and returns once the task has waited in line once.
fn spawn_in_line<T, F>(rt: &klaw::Runtime, make: impl FnOnce(Flag) -> F) -> TaskHandle<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let in_line = Flag::default();
    let handle = rt.spawn(make(in_line.clone()));
    wait_for("the task waits in line", || in_line.is_set());
    handle
}

/// The scenario every "granted, then cancelled before it ran again" test walks, on a runtime of
/// one worker: `first` and `second` wait in line (in that order); the worker is held busy;
/// `grant` hands the primitive to `first` (which cannot run); `first` is cancelled; the worker
/// is let go. `first` must end cancelled, and `second` must get what `first` was given.
fn granted_then_cancelled<T: std::fmt::Debug + Send + 'static>(
    rt: &klaw::Runtime,
    first: TaskHandle<T>,
    second: TaskHandle<T>,
    grant: impl FnOnce(),
) -> T {
    let (release, blocker) = occupy_worker(rt);
    grant();
    assert!(first.cancel("cancelled after its grant"), "the first waiter had not ended");
    release.send(()).unwrap();
    rt.block_on(async move {
        blocker.await.unwrap();
        let first = first.await;
        assert!(matches!(first, Err(TaskError::Cancelled(_))), "{first:?}");
        second.await.expect("the second waiter got what the first was given")
    })
}

/// The text of `value`'s `Debug`, computed on another thread under a deadline: a `Debug` that
/// blocks fails the test instead of hanging it.
fn debug_within<T: std::fmt::Debug + Send + Sync + 'static>(value: &Arc<T>) -> String {
    let value = value.clone();
    within(Duration::from_secs(5), move || format!("{value:?}"))
}

// ---- Granted (or notified), then cancelled inside a klaw task before it ran again.

#[test]
fn semaphore_a_permit_granted_to_a_task_cancelled_before_it_ran_goes_to_the_next_task() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.clone().try_acquire_owned().unwrap();
        let waiter = |semaphore: Arc<Semaphore>| {
            move |in_line| async move {
                signalling(semaphore.acquire(), in_line).await.unwrap().num_permits()
            }
        };
        let first = spawn_in_line(&rt, waiter(semaphore.clone()));
        let second = spawn_in_line(&rt, waiter(semaphore.clone()));
        let got = granted_then_cancelled(&rt, first, second, move || drop(held));
        assert_eq!(got, 1);
        assert_eq!(semaphore.available_permits(), 1, "no permit lost");
    });
}

#[test]
fn semaphore_acquire_many_granted_to_a_task_cancelled_before_it_ran_goes_to_the_next_task() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let semaphore = Arc::new(Semaphore::new(3));
        let held = semaphore.clone().try_acquire_many_owned(3).unwrap();
        let first = {
            let semaphore = semaphore.clone();
            spawn_in_line(&rt, move |in_line| async move {
                signalling(semaphore.acquire_many_owned(3), in_line).await.unwrap().num_permits()
            })
        };
        let second = {
            let semaphore = semaphore.clone();
            spawn_in_line(&rt, move |in_line| async move {
                signalling(semaphore.acquire_many_owned(2), in_line).await.unwrap().num_permits()
            })
        };
        let got = granted_then_cancelled(&rt, first, second, move || drop(held));
        assert_eq!(got, 2);
        assert_eq!(semaphore.available_permits(), 3, "no permit lost");
    });
}

#[test]
fn mutex_a_lock_handed_to_a_task_cancelled_before_it_ran_goes_to_the_next_task() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let mutex = Arc::new(Mutex::new(0u32));
        let guard = mutex.clone().try_lock_owned().unwrap();
        let waiter = |mutex: Arc<Mutex<u32>>| {
            move |in_line| async move {
                let mut guard = signalling(mutex.lock_owned(), in_line).await;
                *guard += 1;
                *guard
            }
        };
        let first = spawn_in_line(&rt, waiter(mutex.clone()));
        let second = spawn_in_line(&rt, waiter(mutex.clone()));
        let got = granted_then_cancelled(&rt, first, second, move || drop(guard));
        assert_eq!(got, 1, "only the second changed the value");
        assert!(mutex.try_lock().is_some(), "the mutex is free again");
    });
}

#[test]
fn rwlock_a_write_handed_to_a_task_cancelled_before_it_ran_goes_to_the_next_write() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let lock = Arc::new(RwLock::new(0u32));
        let reader = lock.clone().try_read_owned().unwrap();
        let waiter = |lock: Arc<RwLock<u32>>| {
            move |in_line| async move {
                let mut guard = signalling(lock.write_owned(), in_line).await;
                *guard += 1;
                *guard
            }
        };
        let first = spawn_in_line(&rt, waiter(lock.clone()));
        let second = spawn_in_line(&rt, waiter(lock.clone()));
        let got = granted_then_cancelled(&rt, first, second, move || drop(reader));
        assert_eq!(got, 1);
        assert!(lock.try_write().is_some(), "the lock is free again");
    });
}

#[test]
fn rwlock_a_read_handed_to_a_task_cancelled_before_it_ran_does_not_hold_back_the_next_read() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let lock = Arc::new(RwLock::new(7u32));
        let writer = lock.clone().try_write_owned().unwrap();
        let waiter = |lock: Arc<RwLock<u32>>| {
            move |in_line| async move { *signalling(lock.read_owned(), in_line).await }
        };
        let first = spawn_in_line(&rt, waiter(lock.clone()));
        let second = spawn_in_line(&rt, waiter(lock.clone()));
        let got = granted_then_cancelled(&rt, first, second, move || drop(writer));
        assert_eq!(got, 7);
        assert!(lock.try_write().is_some(), "no read permit was left behind");
    });
}

#[test]
fn notify_a_notification_given_to_a_task_cancelled_before_it_ran_goes_to_the_next_task() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let notify = Arc::new(Notify::new());
        let waiter = |notify: Arc<Notify>| {
            move |in_line| async move { signalling(notify.notified(), in_line).await }
        };
        let first = spawn_in_line(&rt, waiter(notify.clone()));
        let second = spawn_in_line(&rt, waiter(notify.clone()));
        let by = notify.clone();
        granted_then_cancelled(&rt, first, second, move || by.notify_one());
        // The one notification was consumed by the second: none is left stored.
        let mut next = mock(notify.notified());
        pending(next.poll());
    });
}

#[test]
fn event_a_wait_woken_in_a_task_cancelled_before_it_ran_leaves_the_others_woken() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let event = Arc::new(Event::new());
        let waiter = |event: Arc<Event>| {
            move |in_line| async move { signalling(event.wait(), in_line).await }
        };
        let first = spawn_in_line(&rt, waiter(event.clone()));
        let second = spawn_in_line(&rt, waiter(event.clone()));
        let by = event.clone();
        granted_then_cancelled(&rt, first, second, move || by.set());
        assert!(event.is_set());
    });
}

/// Documented: a wait counts as arrived from its first poll, cancelled or not; the others go
/// on, and the next group starts from zero.
#[test]
fn barrier_a_wait_released_in_a_task_cancelled_before_it_ran_lets_the_group_and_the_next_go() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let barrier = Arc::new(Barrier::new(3));
        let waiter = |barrier: Arc<Barrier>| {
            move |in_line| async move { signalling(barrier.wait(), in_line).await.is_leader() }
        };
        let first = spawn_in_line(&rt, waiter(barrier.clone()));
        let second = spawn_in_line(&rt, waiter(barrier.clone()));
        let last = barrier.clone();
        let second_led = granted_then_cancelled(&rt, first, second, move || {
            assert!(klaw::runtime::block_on(last.wait()).is_leader(), "the third arrival leads");
        });
        assert!(!second_led);
        // The next group: three new arrivals, one leader.
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let barrier = barrier.clone();
                rt.spawn(async move { barrier.wait().await.is_leader() })
            })
            .collect();
        let leaders = common::join_all(&rt, handles).into_iter().filter(|led| *led).count();
        assert_eq!(leaders, 1);
    });
}

// ---- The same race, unscheduled: grants and cancels from different threads at once.

/// Rounds of: four tasks wait in line; one thread grants (enough for all four, one after
/// another), while this one cancels the first and the third. Whatever the interleaving, the
/// second and the fourth must end with what they waited for, and `check` must find the
/// primitive whole again.
fn race_grants_against_cancels<P, W>(
    make: impl Fn() -> (Arc<P>, Box<dyn FnOnce() + Send>),
    wait: impl Fn(Arc<P>, Flag) -> W,
    check: impl Fn(&P),
) where
    P: Send + Sync + 'static,
    W: Future<Output = ()> + Send + 'static,
{
    let rt = runtime(2);
    for round in 0..150 {
        let (primitive, grant) = make();
        let handles: Vec<_> = (0..4)
            .map(|_| spawn_in_line(&rt, |in_line| wait(primitive.clone(), in_line)))
            .collect();
        let granter = std::thread::spawn(grant);
        if round % 3 == 0 {
            std::thread::yield_now();
        }
        handles[0].cancel("raced a grant");
        handles[2].cancel("raced a grant");
        granter.join().unwrap();
        rt.block_on(async {
            for (index, handle) in handles.into_iter().enumerate() {
                let outcome = handle.await;
                if index % 2 == 1 {
                    outcome.unwrap_or_else(|error| {
                        panic!("round {round}: waiter {index} was not cancelled: {error:?}")
                    });
                }
            }
        });
        check(&primitive);
    }
}

#[test]
fn semaphore_grants_racing_cancels_lose_no_permit_and_strand_no_waiter() {
    within(Duration::from_secs(60), || {
        race_grants_against_cancels(
            || {
                let semaphore = Arc::new(Semaphore::new(1));
                let held = semaphore.clone().try_acquire_owned().unwrap();
                (semaphore, Box::new(move || drop(held)))
            },
            |semaphore, in_line| async move {
                drop(signalling(semaphore.acquire(), in_line).await.unwrap());
            },
            |semaphore| assert_eq!(semaphore.available_permits(), 1),
        );
    });
}

#[test]
fn mutex_unlocks_racing_cancels_strand_no_waiter() {
    within(Duration::from_secs(60), || {
        race_grants_against_cancels(
            || {
                let mutex = Arc::new(Mutex::new(0u32));
                let guard = mutex.clone().try_lock_owned().unwrap();
                (mutex, Box::new(move || drop(guard)))
            },
            |mutex, in_line| async move {
                *signalling(mutex.lock(), in_line).await += 1;
            },
            |mutex| assert!(mutex.try_lock().is_some()),
        );
    });
}

#[test]
fn rwlock_releases_racing_cancels_strand_no_writer() {
    within(Duration::from_secs(60), || {
        race_grants_against_cancels(
            || {
                let lock = Arc::new(RwLock::new(0u32));
                let reader = lock.clone().try_read_owned().unwrap();
                (lock, Box::new(move || drop(reader)))
            },
            |lock, in_line| async move {
                *signalling(lock.write(), in_line).await += 1;
            },
            |lock| assert!(lock.try_write().is_some()),
        );
    });
}

#[test]
fn notify_one_racing_cancels_strands_no_waiter() {
    within(Duration::from_secs(60), || {
        race_grants_against_cancels(
            || {
                let notify = Arc::new(Notify::new());
                let by = notify.clone();
                (notify, Box::new(move || (0..4).for_each(|_| by.notify_one())))
            },
            |notify, in_line| async move { signalling(notify.notified(), in_line).await },
            |_| {},
        );
    });
}

// ---- Threads that lock, give up waiting (before or after a wake-up) and wait, at random.

/// One thread's part of a stress run: `rounds` times, polls `make()` once, and then, at random,
/// holds what it got for a while, drops the future after a pause (possibly after it was woken),
/// or waits for it. Holds of up to a millisecond keep a line of waiters behind the holder.
fn lock_give_up_or_wait<'a, G>(
    seed: u64,
    rounds: usize,
    make: impl Fn() -> Pin<Box<dyn Future<Output = G> + 'a>>,
) -> usize {
    let mut rng = common::XorShift(seed);
    let mut held = 0;
    for _ in 0..rounds {
        let mut future = make();
        let first = futures_lite::future::block_on(futures_lite::future::poll_once(&mut future));
        let guard = match first {
            Some(guard) => Some(guard),
            None => {
                std::thread::sleep(Duration::from_micros(rng.below(700)));
                if rng.below(2) == 0 {
                    None // given up, woken or not
                } else {
                    Some(futures_lite::future::block_on(future.as_mut()))
                }
            }
        };
        if let Some(guard) = guard {
            held += 1;
            std::thread::sleep(Duration::from_micros(rng.below(1000)));
            drop(guard);
        }
    }
    held
}

#[test]
fn mutex_locks_given_up_before_or_after_their_wake_up_never_strand_a_waiter() {
    within(Duration::from_secs(90), || {
        let mutex = Arc::new(Mutex::new(0usize));
        let threads: Vec<_> = (1..=4u64)
            .map(|seed| {
                let mutex = mutex.clone();
                std::thread::spawn(move || {
                    let mutex = &*mutex;
                    lock_give_up_or_wait(seed * 7919, 400, || Box::pin(mutex.lock()))
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(mutex.try_lock().is_some(), "the mutex is free at the end");
    });
}

#[test]
fn rwlock_reads_and_writes_given_up_before_or_after_their_wake_up_never_strand_a_waiter() {
    within(Duration::from_secs(90), || {
        let lock = Arc::new(RwLock::new(0usize));
        let threads: Vec<_> = (1..=4u64)
            .map(|seed| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    let (lock, writes) = (&*lock, seed % 2 == 0);
                    lock_give_up_or_wait(seed * 104_729, 400, move || {
                        if writes {
                            Box::pin(async move {
                                Box::new(lock.write().await) as Box<dyn std::fmt::Debug + '_>
                            })
                        } else {
                            Box::pin(async move {
                                Box::new(lock.read().await) as Box<dyn std::fmt::Debug + '_>
                            })
                        }
                    })
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(lock.try_write().is_some(), "the lock is free at the end");
    });
}

// ---- Scopes cancelled, runtimes shut down, while children wait.

#[test]
fn a_scope_cut_short_by_its_deadline_while_children_wait_leaves_every_primitive_free() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let semaphore = Arc::new(Semaphore::new(2));
        let mutex = Arc::new(Mutex::new(()));
        let lock = Arc::new(RwLock::new(()));
        let notify = Arc::new(Notify::new());
        let held_permits = semaphore.clone().try_acquire_many_owned(2).unwrap();
        let held_mutex = mutex.clone().try_lock_owned().unwrap();
        let held_read = lock.clone().try_read_owned().unwrap();
        let waiting = Arc::new(AtomicUsize::new(0));
        let outcome = {
            let (semaphore, mutex, lock, notify, waiting) =
                (semaphore.clone(), mutex.clone(), lock.clone(), notify.clone(), waiting.clone());
            rt.block_on(klaw::cancel::move_on_after(ms(100), async move {
                let _: Result<(), klaw::Error> = klaw::scope!(|s| {
                    for child in 0..12 {
                        let (semaphore, mutex, lock, notify, waiting) = (
                            semaphore.clone(),
                            mutex.clone(),
                            lock.clone(),
                            notify.clone(),
                            waiting.clone(),
                        );
                        s.spawn(async move {
                            waiting.fetch_add(1, Ordering::SeqCst);
                            match child % 4 {
                                0 => drop(semaphore.acquire_many(child % 3 + 1).await),
                                1 => drop(mutex.lock().await),
                                2 => drop(lock.write().await),
                                _ => notify.notified().await,
                            }
                        });
                    }
                    Ok(())
                });
            }))
        };
        assert!(outcome.is_none(), "the deadline cut the scope short");
        assert_eq!(waiting.load(Ordering::SeqCst), 12, "every child had started waiting");
        drop((held_permits, held_mutex, held_read));
        assert_eq!(semaphore.available_permits(), 2, "no permit lost");
        assert!(mutex.try_lock().is_some(), "the mutex is free");
        assert!(lock.try_write().is_some(), "no write or read is left in the lock");
        notify.notify_one(); // stored: nobody waits any more
        ready(mock(notify.notified()).poll());
    });
}

#[test]
fn a_runtime_shut_down_while_tasks_wait_leaves_every_primitive_free() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let semaphore = Arc::new(Semaphore::new(1));
        let mutex = Arc::new(Mutex::new(()));
        let lock = Arc::new(RwLock::new(()));
        let held_permit = semaphore.clone().try_acquire_owned().unwrap();
        let held_mutex = mutex.clone().try_lock_owned().unwrap();
        let held_write = lock.clone().try_write_owned().unwrap();
        let mut handles = Vec::new();
        for _ in 0..3 {
            let semaphore = semaphore.clone();
            handles.push(spawn_in_line(&rt, move |in_line| async move {
                drop(signalling(semaphore.acquire(), in_line).await);
            }));
            let mutex = mutex.clone();
            handles.push(spawn_in_line(&rt, move |in_line| async move {
                drop(signalling(mutex.lock(), in_line).await);
            }));
            let lock = lock.clone();
            handles.push(spawn_in_line(&rt, move |in_line| async move {
                drop(signalling(lock.read(), in_line).await);
            }));
        }
        let report = rt.shutdown(Duration::from_millis(50));
        assert_eq!(report.cancelled, 9, "{report:?}");
        drop((held_permit, held_mutex, held_write));
        assert_eq!(semaphore.available_permits(), 1);
        assert!(mutex.try_lock().is_some());
        assert!(lock.try_write().is_some());
        for handle in handles {
            assert!(handle.is_finished());
        }
    });
}

// ---- Semaphore edges.

/// tokio's batch semaphore: an acquire of more than the total waits (gathering what comes back)
/// until permits are added.
#[test]
fn semaphore_acquire_many_beyond_the_total_waits_until_permits_are_added() {
    let semaphore = Semaphore::new(3);
    let mut five = mock(semaphore.acquire_many(5));
    pending(five.poll());
    assert_eq!(semaphore.available_permits(), 0, "the free permits were gathered");
    semaphore.add_permits(1);
    assert!(!five.is_woken());
    pending(five.poll());
    semaphore.add_permits(1);
    assert!(five.is_woken());
    let permit = ready(five.poll()).unwrap();
    assert_eq!(permit.num_permits(), 5);
    drop(permit);
    assert_eq!(semaphore.available_permits(), 5);
}

#[test]
fn semaphore_acquire_many_beyond_the_total_fails_on_close_and_gives_back_what_it_gathered() {
    let semaphore = Semaphore::new(3);
    let mut five = mock(semaphore.acquire_many(5));
    pending(five.poll());
    semaphore.close();
    assert!(five.is_woken());
    let error: AcquireError = ready(five.poll()).unwrap_err();
    assert!(error.to_string().contains("closed"), "{error}");
    assert_eq!(semaphore.available_permits(), 3);
}

/// `close` wakes every waiter, borrowed and owned, one permit or several, first in line or
/// behind, in klaw tasks: each ends with `AcquireError`.
#[test]
fn semaphore_close_fails_every_waiting_task_with_acquire_error() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let semaphore = Arc::new(Semaphore::new(2));
        let held = semaphore.clone().try_acquire_owned().unwrap();
        let mut handles = Vec::new();
        for waiter in 0..8usize {
            let semaphore = semaphore.clone();
            handles.push(spawn_in_line(&rt, move |in_line| async move {
                let n = waiter % 3 + 2; // 2 to 4: more than the one free permit
                if waiter % 2 == 0 {
                    signalling(semaphore.acquire_many(n), in_line).await.map(|p| p.num_permits())
                } else {
                    signalling(semaphore.acquire_many_owned(n), in_line)
                        .await
                        .map(|p| p.num_permits())
                }
            }));
        }
        semaphore.close();
        for handle in handles {
            let outcome = rt.block_on(handle).expect("the task ended by itself");
            assert!(outcome.is_err(), "{outcome:?}");
        }
        drop(held);
        assert_eq!(semaphore.available_permits(), 2, "what the first had gathered came back");
        assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::Closed);
    });
}

/// An acquire of more than `MAX_PERMITS` at once could never complete: first in line, it would
/// gather every permit that comes back for ever and hold back every acquire behind it. It panics
/// when it is made, naming the limit (tokio's takes a `u32` and asserts the same), and the
/// semaphore goes on working.
#[test]
fn semaphore_acquire_many_beyond_max_permits_panics_and_holds_back_nobody() {
    let semaphore = std::sync::Arc::new(Semaphore::new(2));
    for owned in [false, true] {
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if owned {
                drop(semaphore.acquire_many_owned(Semaphore::MAX_PERMITS + 1));
            } else {
                drop(semaphore.acquire_many(Semaphore::MAX_PERMITS + 1));
            }
        }));
        let message =
            *made.expect_err("an impossible acquire panics").downcast::<String>().unwrap();
        assert!(message.contains("MAX_PERMITS"), "{message}");
    }
    let mut next = mock(semaphore.acquire_many(2));
    assert_eq!(ready(next.poll()).unwrap().num_permits(), 2, "nobody holds the line");
    assert!(semaphore.try_acquire_many(Semaphore::MAX_PERMITS + 1).is_err());
}

/// `add_permits` that would overflow `usize` (not only `MAX_PERMITS`) panics naming the limit
/// and changes nothing: the semaphore goes on working, and a waiter is not disturbed.
#[test]
fn semaphore_add_permits_overflowing_usize_panics_and_changes_nothing() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire().unwrap();
    let mut waiter = mock(semaphore.acquire_many(2));
    pending(waiter.poll());
    let added = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        semaphore.add_permits(usize::MAX);
    }));
    let message =
        *added.expect_err("adding usize::MAX permits panics").downcast::<String>().unwrap();
    assert!(message.contains("MAX_PERMITS"), "{message}");
    assert!(!waiter.is_woken());
    pending(waiter.poll());
    semaphore.add_permits(1);
    drop(held);
    assert_eq!(ready(waiter.poll()).unwrap().num_permits(), 2);
    assert_eq!(semaphore.available_permits(), 2);
}

/// tokio `sync_semaphore_owned::split` and `merge`, with `forget` of a part.
#[test]
fn semaphore_owned_permits_split_merge_and_forget_keep_the_count() {
    let semaphore = Arc::new(Semaphore::new(5));
    let mut four = semaphore.try_acquire_many_owned(4).unwrap();
    let one = four.split(1).unwrap();
    assert!(four.split(4).is_none(), "three left, four asked");
    assert_eq!((four.num_permits(), one.num_permits()), (3, 1));
    assert!(Arc::ptr_eq(one.semaphore(), &semaphore));
    let mut three = four;
    three.merge(one);
    assert_eq!(three.num_permits(), 4);
    let two = three.split(2).unwrap();
    two.forget();
    assert_eq!(semaphore.available_permits(), 1);
    drop(three);
    assert_eq!(semaphore.available_permits(), 3, "the forgotten two never come back");
    // The forgotten ones do not count towards MAX_PERMITS any more.
    semaphore.add_permits(Semaphore::MAX_PERMITS - 3);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
}

/// A permit granted to an acquire that has not been polled since is that acquire's: neither
/// `try_acquire` nor `forget_permits` takes it.
#[test]
fn semaphore_a_granted_unpolled_acquire_keeps_its_permit_from_try_acquire_and_forget() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire().unwrap();
    let mut granted = mock(semaphore.acquire());
    pending(granted.poll());
    drop(held);
    assert!(granted.is_woken());
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    assert_eq!(semaphore.forget_permits(1), 0);
    assert_eq!(ready(granted.poll()).unwrap().num_permits(), 1);
    assert_eq!(semaphore.available_permits(), 1);
}

/// `forget_permits` takes only free permits, never what a waiter in line has gathered.
#[test]
fn semaphore_forget_permits_leaves_what_a_waiter_gathered() {
    let semaphore = Semaphore::new(2);
    let mut three = mock(semaphore.acquire_many(3));
    pending(three.poll());
    assert_eq!(semaphore.forget_permits(2), 0);
    semaphore.add_permits(1);
    assert_eq!(ready(three.poll()).unwrap().num_permits(), 3);
    assert_eq!(semaphore.available_permits(), 3);
}

/// Permits added to a closed semaphore count, but wake nobody and give nothing.
#[test]
fn semaphore_add_permits_after_close_wakes_nobody_and_gives_nothing() {
    let semaphore = Semaphore::new(0);
    let mut waiter = mock(semaphore.acquire());
    pending(waiter.poll());
    semaphore.close();
    assert!(ready(waiter.poll()).is_err());
    semaphore.add_permits(2);
    assert_eq!(semaphore.available_permits(), 2);
    assert!(ready(mock(semaphore.acquire()).poll()).is_err());
    assert!(ready(mock(semaphore.acquire_many(0)).poll()).is_err(), "closed fails even 0");
}

// ---- RwLock edges.

/// After tokio's `downgrade_map`: a downgrade lets in the reads queued before the next write,
/// not the write (it needs the downgraded read gone too), nor the reads behind that write.
#[test]
fn rwlock_downgrade_lets_in_only_the_reads_queued_before_the_next_write() {
    let lock = RwLock::new(0);
    let mut writer = lock.try_write().unwrap();
    let mut read_before = mock(lock.read());
    let mut next_write = mock(lock.write());
    let mut read_after = mock(lock.read());
    pending(read_before.poll());
    pending(next_write.poll());
    pending(read_after.poll());
    *writer = 1;
    let downgraded = RwLockWriteGuard::downgrade(writer);
    assert!(read_before.is_woken());
    let before = ready(read_before.poll());
    assert_eq!((*downgraded, *before), (1, 1));
    pending(next_write.poll());
    pending(read_after.poll());
    assert!(lock.try_read().is_none(), "no read jumps the waiting write");
    drop(downgraded);
    assert!(!next_write.is_woken());
    drop(before);
    assert!(next_write.is_woken());
    let mut write = ready(next_write.poll());
    *write = 2;
    pending(read_after.poll());
    drop(write);
    assert_eq!(*ready(read_after.poll()), 2);
}

#[test]
fn rwlock_owned_downgrade_lets_in_only_the_reads_queued_before_the_next_write() {
    let lock = Arc::new(RwLock::new(0));
    let writer = lock.try_write_owned().unwrap();
    let mut read_before = mock(lock.read_owned());
    let mut next_write = mock(lock.write_owned());
    let mut read_after = mock(lock.read_owned());
    pending(read_before.poll());
    pending(next_write.poll());
    pending(read_after.poll());
    let downgraded = OwnedRwLockWriteGuard::downgrade(writer);
    let before = ready(read_before.poll());
    pending(next_write.poll());
    pending(read_after.poll());
    drop((downgraded, before));
    let write = ready(next_write.poll());
    pending(read_after.poll());
    drop(write);
    drop(ready(read_after.poll()));
}

/// A writer is not starved by readers whose read locks keep overlapping (the lock is never
/// free of readers unless it lets the writer in): documented first come, first served.
#[test]
fn rwlock_a_writer_is_not_starved_by_overlapping_readers() {
    within(DEADLINE, || {
        let lock = Arc::new(RwLock::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (lock, stop) = (lock.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let guard = futures_lite::future::block_on(lock.read());
                        std::thread::sleep(Duration::from_micros(200));
                        drop(guard);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        std::thread::sleep(ms(20));
        for _ in 0..20 {
            *futures_lite::future::block_on(lock.write()) += 1;
        }
        stop.store(true, Ordering::SeqCst);
        for reader in readers {
            reader.join().unwrap();
        }
        assert_eq!(*lock.try_read().unwrap(), 20);
    });
}

// ---- Mutex edges.

/// Documented (`Semaphore`, and so `Mutex`): permits given back in a task of klaw's runtime go
/// to the first in line, and that task runs next on the same worker, before tasks queued
/// earlier, as tokio runs a task woken by the running one next (its LIFO slot): the mutex's
/// turns stay on one worker instead of waiting at the back of the queue. One worker here, so
/// the order is the queue's: the task queued before the unlock would otherwise run first.
#[test]
fn an_unlock_in_a_task_runs_the_next_in_line_next_on_its_worker() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = order.clone();
        let task = rt.spawn(async move {
            let mutex = Arc::new(Mutex::new(()));
            let guard = mutex.clone().try_lock_owned().unwrap();
            klaw::scope!(|s| {
                let (waiter, record_waiter) = (mutex.clone(), record.clone());
                s.spawn(async move {
                    let _guard = waiter.lock().await;
                    record_waiter.lock().unwrap().push("next in line");
                });
                futures_lite::future::yield_now().await; // the waiter runs and joins the line
                assert!(mutex.try_lock().is_none());
                let record_queued = record.clone();
                s.spawn(async move { record_queued.lock().unwrap().push("queued before") });
                drop(guard);
                Ok(())
            })
            .unwrap();
        });
        rt.block_on(task).unwrap();
        assert_eq!(*order.lock().unwrap(), ["next in line", "queued before"]);
    });
}

/// Documented: waiters are served first come, first served, so a thread that relocks at once
/// does not keep a waiting task out: its unlock hands the mutex to the task in line.
#[test]
fn mutex_a_waiter_is_not_starved_by_a_thread_that_relocks_at_once() {
    within(DEADLINE, || {
        let mutex = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let hog = {
            let (mutex, stop) = (mutex.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let mut guard = futures_lite::future::block_on(mutex.lock());
                    *guard += 1;
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        };
        std::thread::sleep(ms(10));
        for _ in 0..50 {
            drop(futures_lite::future::block_on(mutex.lock()));
        }
        stop.store(true, Ordering::SeqCst);
        hog.join().unwrap();
    });
}

/// tokio `sync_mutex_owned::readiness` for a lock handed on by a dropped owned lock future.
#[test]
fn mutex_a_lock_owned_cancelled_after_its_wake_up_passes_it_on() {
    let mutex = Arc::new(Mutex::new(0));
    let guard = mutex.try_lock_owned().unwrap();
    let mut woken = mock(mutex.lock_owned());
    let mut next = mock(mutex.lock_owned());
    pending(woken.poll());
    pending(next.poll());
    drop(guard);
    assert!(woken.is_woken());
    drop(woken);
    assert!(next.is_woken(), "the wake-up passed on");
    *ready(next.poll()) += 1;
    assert_eq!(*mutex.try_lock().unwrap(), 1);
}

// ---- Notify edges.

/// `notify_waiters` stores nothing, and leaves a stored permit where it is.
#[test]
fn notify_waiters_stores_nothing_and_leaves_the_stored_permit() {
    let notify = Notify::new();
    notify.notify_waiters();
    pending(mock(notify.notified()).poll());
    notify.notify_one();
    notify.notify_waiters();
    ready(mock(notify.notified()).poll());
    pending(mock(notify.notified()).poll());
}

/// Two notifications given to two futures that are both dropped unpolled: passed on with
/// nobody waiting, they leave one permit (at most one is stored, as tokio's).
#[test]
fn notify_notifications_passed_on_to_nobody_store_at_most_one_permit() {
    let notify = Notify::new();
    let mut first = mock(notify.notified());
    let mut second = mock(notify.notified());
    pending(first.poll());
    pending(second.poll());
    notify.notify_one();
    notify.notify_one();
    assert!(first.is_woken() && second.is_woken());
    drop(first);
    drop(second);
    ready(mock(notify.notified()).poll());
    pending(mock(notify.notified()).poll());
}

/// A future completed by `notify_waiters`, then dropped without a poll, passes nothing on: the
/// next waiter is not woken, and nothing is stored.
#[test]
fn notify_a_future_woken_by_notify_waiters_and_dropped_passes_nothing_on() {
    let notify = Notify::new();
    let mut woken = mock(notify.notified());
    pending(woken.poll());
    notify.notify_waiters();
    let mut later = mock(notify.notified());
    pending(later.poll());
    drop(woken);
    assert!(!later.is_woken());
    pending(later.poll());
    drop(later);
    pending(mock(notify.notified()).poll());
}

/// The stored permit is taken by the next `notified()` in a klaw task (tokio's
/// `notify_notified_one` across tasks), and only once.
#[test]
fn notify_one_before_any_waiter_is_taken_by_one_task_only() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let notify = Arc::new(Notify::new());
        notify.notify_one();
        let taker = notify.clone();
        rt.block_on(rt.spawn(async move { taker.notified().await })).unwrap();
        let waiter = notify.clone();
        let waiting = spawn_in_line(&rt, move |in_line| async move {
            signalling(waiter.notified(), in_line).await
        });
        std::thread::sleep(ms(10));
        assert!(!waiting.is_finished(), "the one permit was taken already");
        notify.notify_one();
        rt.block_on(waiting).unwrap();
    });
}

// ---- Barrier edges.

/// tokio's `zero_does_not_block` and `single`, in klaw tasks: every wait leads at once.
#[test]
fn barrier_of_zero_or_one_lets_every_task_through_as_leader() {
    within(DEADLINE, || {
        let rt = runtime(2);
        for n in [0, 1] {
            let barrier = Arc::new(Barrier::new(n));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let barrier = barrier.clone();
                    rt.spawn(async move { barrier.wait().await.is_leader() })
                })
                .collect();
            assert!(common::join_all(&rt, handles).into_iter().all(|led| led), "n = {n}");
        }
    });
}

/// tokio's `lots`, across tasks: groups of 4 go through one after another, one leader each.
#[test]
fn barrier_generations_in_tasks_have_one_leader_each() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let barrier = barrier.clone();
                rt.spawn(async move {
                    let mut led = 0;
                    for _ in 0..50 {
                        led += usize::from(barrier.wait().await.is_leader());
                    }
                    led
                })
            })
            .collect();
        let leaders: usize = common::join_all(&rt, handles).into_iter().sum();
        assert_eq!(leaders, 50);
    });
}

// ---- Debug does not hang.

/// tokio `sync_mutex::mutex_debug` and the others': the `Debug` of a primitive that is locked,
/// contended, or waited on returns at once.
#[test]
fn debug_of_every_primitive_while_locked_or_contended_returns() {
    let mutex = Arc::new(Mutex::new(1u32));
    let guard = mutex.try_lock_owned().unwrap();
    let mut waiting_lock = mock(mutex.lock_owned());
    pending(waiting_lock.poll());
    assert_eq!(debug_within(&mutex), "Mutex { data: <locked> }");
    assert_eq!(format!("{guard:?}"), "1");
    drop((guard, waiting_lock));

    let lock = Arc::new(RwLock::new(2u32));
    let reader = lock.try_read_owned().unwrap();
    let mut waiting_write = mock(lock.write_owned());
    pending(waiting_write.poll());
    assert_eq!(debug_within(&lock), "RwLock { data: <locked> }");
    assert_eq!(format!("{reader:?}"), "2");
    drop((reader, waiting_write));
    let writer = lock.try_write_owned().unwrap();
    assert_eq!(debug_within(&lock), "RwLock { data: <locked> }");
    drop(writer);
    assert_eq!(debug_within(&lock), "RwLock { data: 2 }");

    let semaphore = Arc::new(Semaphore::new(1));
    let permit = semaphore.try_acquire_owned().unwrap();
    let mut waiting_acquire = mock(semaphore.acquire_owned());
    pending(waiting_acquire.poll());
    let text = debug_within(&semaphore);
    assert!(text.contains("waiting: 1"), "{text}");
    drop((permit, waiting_acquire));

    let notify = Arc::new(Notify::new());
    let mut waiting_notified = mock(notify.notified());
    pending(waiting_notified.poll());
    assert!(debug_within(&notify).contains("waiting: 1"));
    drop(waiting_notified);

    let barrier = Arc::new(Barrier::new(2));
    let mut waiting_barrier = mock(barrier.wait());
    pending(waiting_barrier.poll());
    debug_within(&barrier);
    drop(waiting_barrier);

    let event = Arc::new(Event::new());
    let mut waiting_event = mock(event.wait());
    pending(waiting_event.poll());
    assert_eq!(debug_within(&event), "Event { set: false }");
}

// ---- What a tokio port asserts about where a misuse panics and what a finished future does.

/// tokio's `sync_panic.rs`: a misuse panics at the caller's line (`#[track_caller]`), so the
/// report points at the user's code: merging permits of two semaphores, a semaphore of more
/// than `MAX_PERMITS`, and `add_permits` past it.
#[test]
fn semaphore_misuse_panics_at_the_callers_line() {
    fn panicked_in(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let file = Arc::new(std::sync::Mutex::new(String::new()));
        let seen = file.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            *seen.lock().unwrap() =
                info.location().map(|l| l.file().to_owned()).unwrap_or_default();
        }));
        let caught = std::panic::catch_unwind(f);
        std::panic::set_hook(previous);
        assert!(caught.is_err(), "no panic");
        file.lock().unwrap().clone()
    }
    let merged = panicked_in(|| {
        let (a, b) = (Semaphore::new(1), Semaphore::new(1));
        let mut permit = a.try_acquire().unwrap();
        permit.merge(b.try_acquire().unwrap());
    });
    assert_eq!(merged, file!());
    let merged_owned = panicked_in(|| {
        let (a, b) = (Arc::new(Semaphore::new(1)), Arc::new(Semaphore::new(1)));
        let mut permit = a.try_acquire_owned().unwrap();
        permit.merge(b.try_acquire_owned().unwrap());
    });
    assert_eq!(merged_owned, file!());
    assert_eq!(panicked_in(|| drop(Semaphore::new(Semaphore::MAX_PERMITS + 1))), file!());
    let added = panicked_in(|| Semaphore::new(Semaphore::MAX_PERMITS).add_permits(1));
    assert_eq!(added, file!());
}

/// tokio's `Notified` is ready again when polled after it completed (a loop that selects over
/// `&mut notified` may do so); klaw's was a panic. The notification it took is not taken twice.
#[test]
fn a_notified_polled_again_after_it_completed_is_ready_again() {
    let notify = Notify::new();
    let mut notified = mock(notify.notified());
    pending(notified.poll());
    notify.notify_one();
    ready(notified.poll());
    ready(notified.poll());
    let mut next = mock(notify.notified());
    pending(next.poll());
}

#[test]
fn a_notified_that_enable_found_ready_is_not_terminated_until_a_poll_returns_it() {
    let mut cx = Context::from_waker(Waker::noop());

    // A stored permit, taken by `enable`.
    let notify = Notify::new();
    notify.notify_one();
    let mut stored = pin!(notify.notified());
    assert!(stored.as_mut().enable(), "enable took the stored permit");
    assert!(
        !stored.is_terminated(),
        "enable() found it ready but no poll returned it: a select! would skip it and lose it"
    );
    assert!(stored.as_mut().poll(&mut cx).is_ready());
    assert!(stored.is_terminated(), "terminated once a poll gave its result");

    // A `notify_one` given to a future already in line.
    let mut in_line = pin!(notify.notified());
    assert!(!in_line.as_mut().enable());
    notify.notify_one();
    assert!(in_line.as_mut().enable(), "the notify_one went to it");
    assert!(!in_line.is_terminated(), "given a notify_one, not yet returned by a poll");
    assert!(in_line.as_mut().poll(&mut cx).is_ready());

    // The owned form.
    let shared = Arc::new(Notify::new());
    shared.notify_one();
    let mut owned = pin!(shared.clone().notified_owned());
    assert!(owned.as_mut().enable());
    assert!(!owned.is_terminated(), "OwnedNotified: enable() is no poll that returned");
    assert!(owned.as_mut().poll(&mut cx).is_ready());
}

/// The consequence, with a minimal `select` that, like `futures::select!`, polls only the
/// futures that are not terminated: the notification `enable` took never comes out.
#[test]
fn a_fused_select_after_enable_takes_the_notification() {
    let notify = Notify::new();
    notify.notify_one(); // a producer notified before the consumer checked its condition
    let mut notified = pin!(notify.notified());
    let _ = notified.as_mut().enable(); // in line before the check, as the book advises
    let mut cx = Context::from_waker(Waker::noop());
    // `select! { _ = notified => .., complete => .. }`, polled once.
    let taken = !notified.is_terminated() && notified.as_mut().poll(&mut cx).is_ready();
    assert!(taken, "the select! skipped the notified arm: the notification is lost");
}
