//! Cases left out by the earlier ports of trio's `src/trio/_tests/test_sync.py` and
//! `src/trio/_core/_tests/test_parking_lot.py` (trio at `60d0c2f8`), tokio's `tokio/tests/*`
//! and tokio-util's `tests/task_tracker.rs` (tokio at `ea91b33ca`), for `klaw::sync`, the
//! blocking pool and a scope's limit, in the style of `ported_tokio_trio_sync_timeouts.rs`:
//!
//! - trio's generic lock tests (FIFO order of tasks that relock at once; exclusion) run in klaw
//!   tasks over every way klaw has to take a lock: `Mutex` (borrowed and owned), `Semaphore`
//!   (one permit, three at once, owned), `RwLock` writes (borrowed and owned) and the reads of an
//!   `RwLock::with_max_readers(_, 1)`;
//! - trio's `CapacityLimiter` whose total is lowered while tokens are held and tasks wait
//!   (klaw: a held permit `forget`), and acquires given up at their deadlines in tasks, which must
//!   leave the line (trio's issue 548) and give back what they had gathered;
//! - trio's `ParkingLot` and `Condition` as klaw spells them: `Notify` in tasks (one wake-up per
//!   `notify_one`, in line order, a cancelled waiter skipped), and the two condition idioms
//!   (`notify_waiters` with the future made before the check; `enable` with `notify_one`) under
//!   two workers, where a lost wake-up would hang;
//! - tokio's `test_waker_update` for `Event` and `Barrier` (ported for `Notify`, `Mutex` and
//!   `Semaphore` only);
//! - a blocking closure withdrawn from the pool's queue under a paused clock (tokio's
//!   `blocking_when_paused` with klaw's withdraw), and a `Barrier` wait cut short by a deadline;
//! - a scope's limit: children start in spawn order while the body spawns as others end
//!   (tokio-util's `TaskTracker` has no order to port; this is klaw's own promise).
//!
//! Every scenario that could hang runs under a deadline (`#[klaw::test(timeout = ..)]`).

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;

use klaw::cancel::move_on_after;
use klaw::sync::{Barrier, Event, Mutex, Notify, RwLock, Semaphore, TryAcquireError};
use klaw::time::{now, sleep, sleep_until};
use klaw::{Handle, TaskError};

#[path = "common/mock_task.rs"]
mod mock_task;

use common::{Flag, foreign_until, ms, secs, signalling, yield_once};
use mock_task::{WakeCount, mock, pending as is_pending, poll_with, ready};

// ---- Helpers.

/// trio's `wait_all_tasks_blocked`, on a paused clock: a timer there fires only once every
/// task waits, so when this returns every task spawned before it is blocked (or done).
async fn settle() {
    sleep(ms(1)).await;
}

/// Each way klaw has to take an exclusive lock, for trio's generic lock tests (trio runs them
/// over `Lock`, `StrictFIFOLock`, `Semaphore(1)`, `CapacityLimiter(1)` and channels).
#[derive(Clone)]
enum AnyLock {
    Lock(Arc<Mutex<()>>),
    LockOwned(Arc<Mutex<()>>),
    /// `acquire_many(n)` of a semaphore of `n` permits.
    Acquire(Arc<Semaphore>, usize),
    AcquireOwned(Arc<Semaphore>),
    Write(Arc<RwLock<()>>),
    WriteOwned(Arc<RwLock<()>>),
    /// `read()` of an `RwLock::with_max_readers(_, 1)`: one read at a time.
    CappedRead(Arc<RwLock<()>>),
}

impl AnyLock {
    fn every() -> Vec<(&'static str, AnyLock)> {
        vec![
            ("Mutex::lock", AnyLock::Lock(Arc::new(Mutex::new(())))),
            ("Mutex::lock_owned", AnyLock::LockOwned(Arc::new(Mutex::new(())))),
            ("Semaphore(1)::acquire", AnyLock::Acquire(Arc::new(Semaphore::new(1)), 1)),
            ("Semaphore(3)::acquire_many(3)", AnyLock::Acquire(Arc::new(Semaphore::new(3)), 3)),
            ("Semaphore(1)::acquire_owned", AnyLock::AcquireOwned(Arc::new(Semaphore::new(1)))),
            ("RwLock::write", AnyLock::Write(Arc::new(RwLock::new(())))),
            ("RwLock::write_owned", AnyLock::WriteOwned(Arc::new(RwLock::new(())))),
            (
                "RwLock::with_max_readers(1)::read",
                AnyLock::CappedRead(Arc::new(RwLock::with_max_readers((), 1))),
            ),
        ]
    }

    /// Runs `section` holding the lock (trio's `async with lock:`).
    async fn hold<T>(&self, section: impl Future<Output = T>) -> T {
        match self {
            AnyLock::Lock(mutex) => {
                let _guard = mutex.lock().await;
                section.await
            }
            AnyLock::LockOwned(mutex) => {
                let _guard = mutex.lock_owned().await;
                section.await
            }
            AnyLock::Acquire(semaphore, n) => {
                let _permit = semaphore.acquire_many(*n).await.expect("never closed");
                section.await
            }
            AnyLock::AcquireOwned(semaphore) => {
                let _permit = semaphore.acquire_owned().await.expect("never closed");
                section.await
            }
            AnyLock::Write(lock) => {
                let _guard = lock.write().await;
                section.await
            }
            AnyLock::WriteOwned(lock) => {
                let _guard = lock.write_owned().await;
                section.await
            }
            AnyLock::CappedRead(lock) => {
                let _guard = lock.read().await;
                section.await
            }
        }
    }
}

// ---- trio's generic lock tests.

/// trio `test_generic_lock_fifo_fairness`: three tasks that each take the lock five times,
/// relocking as soon as they let go, take it in the same order every round. Ported only with
/// mock futures so far (`sync_primitives::mutex_waiters_are_served_first_come_first_served`,
/// `rwlock_write_order`); here in klaw tasks, through every lock form. klaw's lock does not yield
/// when it is free (trio's acquire always checkpoints), so each holder waits on a timer inside
/// the lock: on a paused clock it fires only once the other two wait in the line.
///
/// Promise: "`Mutex`, `RwLock` and `Semaphore` serve their waiters first come, first served"
/// (book, sync); an unlock hands the lock to the first in line, so the task that relocks at once
/// goes to the back. What would break it: a relock that takes permits handed to a waiter but
/// not yet polled (the `granted` set), the hand-off running the unlocking task again before the
/// woken one, or `acquire_many` serving a later, smaller waiter.
#[klaw::test(start_paused = true, timeout = "20s")]
async fn tasks_that_relock_at_once_keep_their_first_round_order_on_every_lock() {
    const LOOPS: usize = 5;
    for (name, lock) in AnyLock::every() {
        let record = Arc::new(std::sync::Mutex::new(Vec::new()));
        klaw::scope!(|s| {
            for task in 0..3usize {
                let (lock, record) = (lock.clone(), record.clone());
                s.spawn(async move {
                    for _ in 0..LOOPS {
                        lock.hold(async {
                            record.lock().unwrap().push(task);
                            sleep(ms(1)).await; // the other two join the line meanwhile
                        })
                        .await;
                    }
                });
            }
            Ok(())
        })
        .unwrap();
        let record = record.lock().unwrap().clone();
        assert_eq!(record.len(), 3 * LOOPS, "{name}: {record:?}");
        let first: HashSet<_> = record[..3].iter().collect();
        assert_eq!(first.len(), 3, "{name}: the first round is not one turn each: {record:?}");
        for round in record.chunks(3) {
            assert_eq!(round, &record[..3], "{name}: a round left the first's order: {record:?}");
        }
    }
}

/// trio `test_generic_lock_exclusion`: five tasks take the lock ten times each and yield twice
/// inside it; never two inside at once, and every acquire happened. On two workers, so the
/// holders and the waiters really run in parallel, through every lock form (the existing
/// exclusion checks are `rwlock_multithreaded` and the `Mutex` doc example).
///
/// Promise: each lock is exclusive (one permit, all the permits, a cap of one read). What would
/// break it: a permit handed out twice (a grant that is also released when its acquire is
/// polled), `acquire_many(3)` completing with fewer, or a capped read let in past its cap.
#[klaw::test(workers = 2, timeout = "30s")]
async fn no_two_tasks_are_ever_inside_any_lock_at_once() {
    const LOOPS: usize = 10;
    const TASKS: usize = 5;
    for (name, lock) in AnyLock::every() {
        let inside = Arc::new(AtomicBool::new(false));
        let acquires = Arc::new(AtomicUsize::new(0));
        klaw::scope!(|s| {
            for _ in 0..TASKS {
                let (lock, inside, acquires) = (lock.clone(), inside.clone(), acquires.clone());
                s.spawn(async move {
                    for _ in 0..LOOPS {
                        lock.hold(async {
                            acquires.fetch_add(1, Ordering::SeqCst);
                            assert!(!inside.swap(true, Ordering::SeqCst), "{name}: two inside");
                            yield_once().await;
                            yield_once().await;
                            assert!(inside.swap(false, Ordering::SeqCst), "{name}: not inside");
                        })
                        .await;
                    }
                });
            }
            Ok(())
        })
        .unwrap();
        assert!(!inside.load(Ordering::SeqCst), "{name}");
        assert_eq!(acquires.load(Ordering::SeqCst), LOOPS * TASKS, "{name}");
    }
}

// ---- trio's CapacityLimiter: the total changed while tokens are held and tasks wait.

/// trio `test_CapacityLimiter_change_total_tokens` and `test_CapacityLimiter_zero_limit_tokens`:
/// lowering the total while every token is borrowed and tasks wait does not serve a waiter, and
/// raising it again serves them in line order. klaw lowers a semaphore's total with a held
/// permit's `forget` (also after `split`), and raises it with `add_permits` (book, sync:
/// "`add_permits(n)` raises it; `permit.forget()` or `forget_permits(n)` lowers it for good").
/// At the end the total is exactly what the changes made it: `forget_permits` takes it to
/// zero, so `add_permits(MAX_PERMITS)` must not panic.
///
/// What would break it: `forget` giving the permit back (a waiter served while the limit is
/// lower), `forget_held` not lowering `total` (the last `add_permits` panics), `split` counting
/// a permit twice, or the permits that come back served out of line order.
#[test]
fn a_limit_lowered_by_forgetting_held_permits_while_tasks_wait_serves_nobody_until_raised() {
    let semaphore = Semaphore::new(3);
    let mut held = semaphore.try_acquire_many(3).unwrap();
    let mut one = mock(semaphore.acquire());
    let mut two = mock(semaphore.acquire_many(2));
    let mut last = mock(semaphore.acquire());
    is_pending(one.poll());
    is_pending(two.poll());
    is_pending(last.poll());

    held.split(1).unwrap().forget(); // the total goes from 3 to 2
    assert!(!one.is_woken() && !two.is_woken() && !last.is_woken(), "a forget served a waiter");
    assert_eq!(semaphore.available_permits(), 0);
    drop(held); // two come back: `one` gets one, `two` gathers the other
    assert!(one.is_woken());
    assert!(!two.is_woken() && !last.is_woken());
    assert_eq!(semaphore.available_permits(), 0);
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    let permit_of_one = ready(one.poll()).unwrap();

    semaphore.add_permits(1); // back to 3: completes `two`, not `last`
    assert!(two.is_woken() && !last.is_woken());
    let permit_of_two = ready(two.poll()).unwrap();
    assert_eq!(permit_of_two.num_permits(), 2);
    is_pending(last.poll());

    permit_of_one.forget(); // down to 2 again, with `last` waiting
    assert!(!last.is_woken(), "a forgotten permit went to the waiter");
    drop(permit_of_two); // one to `last`, one free
    assert!(last.is_woken());
    assert_eq!(semaphore.available_permits(), 1);
    drop(ready(last.poll()).unwrap());
    assert_eq!(semaphore.available_permits(), 2, "3 - 1 forgotten + 1 added - 1 forgotten");
    assert_eq!(semaphore.forget_permits(5), 2);
    semaphore.add_permits(Semaphore::MAX_PERMITS); // the total is 0: the whole range is free
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);

    // Owned permits: the same through `OwnedSemaphorePermit::split` and `forget`.
    let semaphore = Arc::new(Semaphore::new(2));
    let mut held = semaphore.try_acquire_many_owned(2).unwrap();
    let mut waiter = mock(semaphore.acquire_owned());
    is_pending(waiter.poll());
    held.split(1).unwrap().forget();
    assert!(!waiter.is_woken(), "an owned forget served a waiter");
    drop(held);
    assert!(waiter.is_woken());
    drop(ready(waiter.poll()).unwrap());
    assert_eq!(semaphore.available_permits(), 1);
}

/// trio `test_CapacityLimiter_memleak_548` (a cancelled acquire must not stay among the
/// pending borrowers) and the fairness part of `test_CapacityLimiter`, in klaw tasks whose
/// acquires are cut short by `move_on_after`, on a paused clock. Two permits, held until 3 s;
/// five acquires in line: 0 wants 1 (gives up at 1 s), 1 wants 2, 2 wants 1 (gives up at 2 s),
/// 3 wants 1, 4 wants 2 (gives up at 6 s, having gathered one at 5 s). Expected: 1 at 3 s, 3 at
/// 5 s; at 5.5 s one permit is held and one gathered; at 6.5 s the gathered one is free again
/// and nobody is left in the line (`Debug` says `waiting: 0`); at the end both are free. The
/// existing checks (`sync_primitive_edges::a_scope_cut_short_by_its_deadline_..`) look at the
/// count only after the whole scope ended, and never at an acquire that gathered part.
///
/// Promise: `Semaphore::acquire_many`'s cancel safety ("it leaves the line and gives back the
/// permits it had gathered, to the next in line first") and first come, first served. What
/// would break it: a given-up acquire left in the line (the permits at 3 s go to a ghost: waiter
/// 1 hangs, or `waiting` is not 0), the gathered permit lost, or waiter 3 served before 1.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn acquires_given_up_at_their_deadlines_leave_the_line_and_give_back_what_they_gathered() {
    let handle = Handle::current().unwrap();
    let semaphore = Arc::new(Semaphore::new(2));
    let start = now();
    let granted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = semaphore.try_acquire_many_owned(2).unwrap();
    let holder = handle.spawn(async move {
        sleep(secs(3)).await;
        drop(held);
    });
    // (waiter, permits wanted, deadline in seconds (0: none), seconds it holds what it got)
    let plan: [(usize, usize, u64, u64); 5] =
        [(0, 1, 1, 0), (1, 2, 0, 2), (2, 1, 2, 0), (3, 1, 0, 2), (4, 2, 6, 0)];
    let mut waiters = Vec::new();
    for (id, wanted, deadline, hold) in plan {
        let (semaphore, granted) = (semaphore.clone(), granted.clone());
        let in_line = Flag::default();
        let signal = in_line.clone();
        waiters.push(handle.spawn(async move {
            let acquire = signalling(semaphore.acquire_many_owned(wanted), signal);
            let permit = if deadline == 0 {
                Some(acquire.await.unwrap())
            } else {
                move_on_after(secs(deadline), acquire).await.map(Result::unwrap)
            };
            let Some(permit) = permit else { return false };
            granted.lock().unwrap().push((id, now() - start));
            sleep(secs(hold)).await;
            drop(permit);
            true
        }));
        foreign_until(|| in_line.is_set()).await; // in line in plan order; no time passes
    }
    let debug = format!("{semaphore:?}");
    assert!(debug.contains("waiting: 5"), "{debug}");

    sleep_until(start + ms(5_500)).await;
    assert_eq!(semaphore.available_permits(), 0, "one held by waiter 3, one gathered by 4");
    let debug = format!("{semaphore:?}");
    assert!(debug.contains("waiting: 1"), "only waiter 4 is left in line: {debug}");

    sleep_until(start + ms(6_500)).await;
    assert_eq!(semaphore.available_permits(), 1, "waiter 4 gave back the permit it gathered");
    let debug = format!("{semaphore:?}");
    assert!(debug.contains("waiting: 0"), "a given-up acquire is still in line: {debug}");

    holder.await.unwrap();
    let mut outcomes = Vec::new();
    for waiter in waiters {
        outcomes.push(waiter.await.unwrap());
    }
    assert_eq!(outcomes, [false, true, false, true, false]);
    assert_eq!(*granted.lock().unwrap(), [(1, secs(3)), (3, secs(5))]);
    assert_eq!(semaphore.available_permits(), 2);
}

// ---- trio's ParkingLot and Condition, as klaw's Notify.

/// trio `test_parking_lot_basic` ("1-by-1 wakeups are strict FIFO") and
/// `test_parking_lot_cancel` (a cancelled parker leaves the lot; the others still wake), for
/// `Notify` in klaw tasks on a paused clock: four tasks wait in this order; the second is
/// cancelled through its handle; two `notify_one` wake the first and the third, one each; a
/// `notify_waiters` wakes the fourth; the cancelled one never wakes, and no waiter or permit is
/// left (the mock ports, `sync_primitives::notify_a_notified_cancelled_in_line_loses_nothing`,
/// drop the future by hand rather than cancel a task).
///
/// Promise: `notify_one` "wakes the first `notified()` in line" (book, sync), and
/// `Notify::notified`'s cancel safety. What would break it: the dropped future's place kept in
/// the line (the second `notify_one` lost on it: waiter 2 wakes only at `notify_waiters`), a
/// wake-up passed on twice (3 woken by a `notify_one`), or a permit stored though someone waited.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn notify_one_wakes_waiting_tasks_one_by_one_in_line_order_skipping_a_cancelled_one() {
    let handle = Handle::current().unwrap();
    let notify = Arc::new(Notify::new());
    let record = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = || record.lock().unwrap().clone();
    let mut waiters = Vec::new();
    for i in 0..4 {
        let (notify, record) = (notify.clone(), record.clone());
        waiters.push(handle.spawn(async move {
            record.lock().unwrap().push(format!("sleep {i}"));
            notify.notified().await;
            record.lock().unwrap().push(format!("wake {i}"));
        }));
        settle().await; // in line in this order
    }
    assert!(waiters[1].cancel("cancelled in line"));
    settle().await;
    let slept = ["sleep 0", "sleep 1", "sleep 2", "sleep 3"];
    assert_eq!(log(), slept);

    notify.notify_one();
    settle().await;
    assert_eq!(log()[4..], ["wake 0"]);
    notify.notify_one();
    settle().await;
    assert_eq!(log()[4..], ["wake 0", "wake 2"], "the cancelled waiter took the wake-up");
    notify.notify_waiters();
    settle().await;
    assert_eq!(log()[4..], ["wake 0", "wake 2", "wake 3"]);
    let debug = format!("{notify:?}");
    assert!(debug.contains("permit: false") && debug.contains("waiting: 0"), "{debug}");
    for (i, waiter) in waiters.into_iter().enumerate() {
        let outcome = waiter.await;
        assert_eq!(matches!(outcome, Err(TaskError::Cancelled(_))), i == 1, "{i}: {outcome:?}");
    }
    let mut next = mock(notify.notified());
    is_pending(next.poll()); // nothing was stored by wake-ups that found a waiter
}

/// trio `test_Condition` (`notify_all`), as klaw spells a condition variable (book, sync: "make
/// the `notified()` future, check the condition, and wait only if it does not hold"): two tasks
/// on two workers take 20 000 turns on a counter under a klaw `Mutex`, each checking under the
/// lock whether it is its turn and waiting on one `Notify` otherwise; each turn ends with
/// `notify_waiters`, which stores nothing, so a wake-up that fell between a check and its wait
/// would be lost for good and the test would hang. The book's snippet checks this on one
/// thread; here the check and the notification race on two.
///
/// Promise: `notify_waiters` "wakes every `notified()` future that exists now, even one not
/// polled yet". What would break it: the generation read when the future is made racing
/// `notify_waiters` (taken outside the lock), or a future made before the call but polled after
/// it treated as new.
#[klaw::test(workers = 2, timeout = "60s")]
async fn a_condition_on_notify_waiters_loses_no_wake_up_between_the_check_and_the_wait() {
    const TURNS: u64 = 20_000;
    let turn = Arc::new(Mutex::new(0u64));
    let changed = Arc::new(Notify::new());
    klaw::scope!(|s| {
        for me in 0..2u64 {
            let (turn, changed) = (turn.clone(), changed.clone());
            s.spawn(async move {
                loop {
                    let notified = changed.notified(); // before the check
                    {
                        let mut turn = turn.lock().await;
                        if *turn >= TURNS {
                            break;
                        }
                        if *turn % 2 == me {
                            *turn += 1;
                            drop(turn);
                            changed.notify_waiters();
                            continue;
                        }
                    }
                    notified.await;
                }
            });
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(*turn.lock().await, TURNS);
}

/// trio `test_Condition` (`notify`: one waiter goes on per call), as klaw's other idiom (book,
/// sync: "`enable()` puts the future in line at once, without a waker, so such a notification
/// is given to it"): three consumers on two workers take 20 000 items a producer counts in
/// under a klaw `Mutex`, each enabling its `notified()` before it checks and waiting only if
/// nothing is there; the producer calls `notify_one` per item, then sets `done` and calls
/// `notify_waiters`. Every item is taken, and nobody sleeps while items wait (a hang).
///
/// Promise: `enable` joins the line, so a `notify_one` between the check and the wait goes to
/// this future, and a stored permit only ever exists while nobody is in line. What would break
/// it: `enable` not joining the line (the wake-up stored for a consumer that already checked and
/// went on), a notification given to a future that is then dropped and not passed on (the
/// consumer `continue`s after taking an item), or `notify_waiters` missing an enabled future.
#[klaw::test(workers = 2, timeout = "60s")]
async fn a_condition_on_enable_and_notify_one_hands_every_item_to_a_waiting_consumer() {
    const ITEMS: usize = 20_000;
    const CONSUMERS: usize = 3;
    let state = Arc::new(Mutex::new((0usize, false))); // (items ready, producer done)
    let ready_items = Arc::new(Notify::new());
    let taken = Arc::new(AtomicUsize::new(0));
    klaw::scope!(|s| {
        for _ in 0..CONSUMERS {
            let (state, ready_items, taken) = (state.clone(), ready_items.clone(), taken.clone());
            s.spawn(async move {
                loop {
                    let mut notified = pin!(ready_items.notified());
                    notified.as_mut().enable(); // in line before the check
                    {
                        let mut state = state.lock().await;
                        if state.0 > 0 {
                            state.0 -= 1;
                            taken.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                        if state.1 {
                            break;
                        }
                    }
                    notified.await;
                }
            });
        }
        let (state, ready_items) = (state.clone(), ready_items.clone());
        s.spawn(async move {
            for item in 0..ITEMS {
                state.lock().await.0 += 1;
                ready_items.notify_one();
                if item % 8 == 0 {
                    yield_once().await;
                }
            }
            state.lock().await.1 = true;
            ready_items.notify_waiters();
        });
        Ok(())
    })
    .unwrap();
    assert_eq!(taken.load(Ordering::SeqCst), ITEMS);
    assert_eq!(state.lock().await.0, 0);
}

// ---- tokio's test_waker_update, for the primitives on `sync::wakers`.

/// tokio `sync_notify::test_waker_update` (ported for `Notify` as
/// `sync_primitives::notify_waker_update`, and for `Mutex` and `Semaphore` in
/// `ported_tokio_trio_sync_timeouts`), for `Event` and `Barrier`, whose wakers live in a
/// `WakerSet` instead: a waiting `wait()` polled again with another waker (its task moved) is
/// woken through the new one only, the old one is let go, and the barrier counts the task once.
///
/// Promise: `Event::set` wakes every waiter; a `Barrier` of two opens at the second arrival.
/// What would break it: `WakerSet::register` adding a second slot instead of replacing (the old
/// waker kept and woken), `holds` inverted (the new waker never stored: the moved task hangs),
/// or a barrier re-poll counting a second arrival (the second `wait()` would then start a new
/// group and pend, or the first would lead).
#[test]
fn an_event_or_barrier_wait_polled_again_with_another_waker_is_woken_through_the_new_one() {
    let event = Event::new();
    let (old, new) = (Arc::new(WakeCount::default()), Arc::new(WakeCount::default()));
    let mut wait = pin!(event.wait());
    assert!(poll_with(wait.as_mut(), &old).is_pending());
    assert!(poll_with(wait.as_mut(), &new).is_pending());
    assert_eq!(Arc::strong_count(&old), 1, "the replaced waker is still held by the event");
    event.set();
    assert_eq!((old.wakes(), new.wakes()), (0, 1), "(old, new) wake-ups");
    assert!(poll_with(wait.as_mut(), &new).is_ready());

    let barrier = Barrier::new(2);
    let (old, new) = (Arc::new(WakeCount::default()), Arc::new(WakeCount::default()));
    let mut first = pin!(barrier.wait());
    assert!(poll_with(first.as_mut(), &old).is_pending());
    assert!(poll_with(first.as_mut(), &new).is_pending(), "a re-poll counted a second arrival");
    assert_eq!(Arc::strong_count(&old), 1, "the replaced waker is still held by the barrier");
    let second = ready(mock(barrier.wait()).poll());
    assert!(second.is_leader(), "the second arrival opens the group of two");
    assert_eq!((old.wakes(), new.wakes()), (0, 1), "(old, new) wake-ups");
    match poll_with(first.as_mut(), &new) {
        Poll::Ready(result) => assert!(!result.is_leader()),
        Poll::Pending => panic!("woken, but the barrier had not opened for it"),
    }
}

// ---- The blocking pool and a paused clock.

/// tokio `task_blocking::blocking_when_paused` ("do not auto-advance time when we have started a
/// blocking task that has not yet finished"; ported as
/// `ported_tokio_runtime::a_paused_clock_does_not_move_while_a_blocking_closure_runs`) with the
/// klaw case it does not reach: a queued closure that is cancelled is withdrawn from the pool's
/// queue (`blocking_pool::a_queued_blocking_task_cancelled_before_start_never_runs`, on a real
/// clock), and then it must stop holding the paused clock too. One pool thread, held by an
/// occupier; the queued closure is cancelled, its handle resolves at once; the occupier is let
/// go; then a 60 s sleep must end at once in real time, at exactly 60 s of virtual time.
///
/// Promise: "A queued closure that is cancelled never runs" (book, tasks), and the paused
/// clock waits only while "a blocking-pool job is queued or running". What would break it: a
/// withdrawn job's `Hold` kept (in a hole of the queue, or by its cancel hook): the sleep never
/// ends and the test times out; or the withdrawn closure run anyway.
#[klaw::test(start_paused = true, max_blocking_threads = 1, timeout = "10s")]
async fn a_blocking_closure_cancelled_while_queued_lets_a_paused_clock_move_on() {
    let handle = Handle::current().unwrap();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let occupier = handle.spawn_blocking(move || {
        let _ = wait.recv_timeout(std::time::Duration::from_secs(9));
    });
    let ran = Flag::default();
    let queued = handle.spawn_blocking({
        let ran = ran.clone();
        move || ran.set()
    });
    assert!(queued.cancel("not needed"));
    let outcome = queued.await;
    assert!(matches!(outcome, Err(TaskError::Cancelled(_))), "{outcome:?}");
    release.send(()).unwrap();
    occupier.await.unwrap();
    let start = now();
    sleep(secs(60)).await; // never ends if the withdrawn closure still holds the clock
    assert_eq!(now() - start, secs(60));
    assert!(!ran.is_set(), "a closure cancelled while queued ran");
}

// ---- Barrier with a cancelled waiter.

/// tokio `sync_barrier::tango`/`lots` with a waiter cut short by a deadline, in tasks on a
/// paused clock (the existing ports cancel it by hand or through its handle): in a barrier of
/// three, a wait given up at 1 s still counts as arrived, so the arrivals at 2 s and 3 s go on
/// at 3 s, the last one leading; the next group counts from zero (arrivals at 4, 5 and 6 s all
/// go on at 6 s, the last leading).
///
/// Promise: `Barrier::wait`'s cancel safety ("once polled, the task counts as arrived, dropped or
/// not: the barrier opens when the others arrive"), and `is_leader` is "the last to arrive".
/// What would break it: a dropped wait taken back out of the count (the barrier would wait for a
/// third live task: a hang), or still counted in the next group (it would open at 5 s).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_barrier_wait_cut_short_by_a_deadline_still_counts_and_the_next_group_starts_at_zero() {
    let handle = Handle::current().unwrap();
    let barrier = Arc::new(Barrier::new(3));
    let start = now();
    let arrive = |after: u64| {
        let barrier = barrier.clone();
        handle.spawn(async move {
            sleep(secs(after)).await;
            let leader = barrier.wait().await.is_leader();
            (leader, now() - start)
        })
    };
    let gave_up = {
        let barrier = barrier.clone();
        handle.spawn(async move { move_on_after(secs(1), barrier.wait()).await.is_none() })
    };
    let (second, third) = (arrive(2), arrive(3));
    assert!(gave_up.await.unwrap(), "the deadline at 1 s cut the wait short");
    assert_eq!(second.await.unwrap(), (false, secs(3)));
    assert_eq!(third.await.unwrap(), (true, secs(3)), "the last arrival leads");

    let group: Vec<_> = (1..=3).map(arrive).collect(); // at 4, 5 and 6 s
    let mut results = Vec::new();
    for member in group {
        results.push(member.await.unwrap());
    }
    assert_eq!(results, [(false, secs(6)), (false, secs(6)), (true, secs(6))]);
}

// ---- A scope's limit: spawn order while children end.

/// klaw's own promise for `scope!(limit = n)` (book, scopes: "The others wait their turn in
/// spawn order"; `runtime/limit.rs`: "While anyone waits, every slot is taken"), where
/// `scope_limit::waiting_children_start_in_spawn_order` does not look: while the body is still
/// spawning and the running child ends on another worker at the same moment. tokio-util's
/// `TaskTracker` tests have no order to port (`close_during_exit`, `notify_on_last_task` only
/// count); this is the closest klaw promise they touch. With a limit of one, start order is
/// record order, so any child recorded before an earlier one jumped the line.
///
/// What would break it: `Limit::release` lowers `running` and lets the lock go before it takes
/// the next waiting child under the lock again; an `admit` that took any free slot (as it did)
/// would, in between, start the newest child ahead of those waiting. `admit` now queues while
/// anyone waits or a release is starting children.
#[klaw::test(workers = 4, timeout = "60s")]
async fn under_a_limit_of_one_children_start_in_spawn_order_while_others_end_meanwhile() {
    const ROUNDS: usize = 40;
    const CHILDREN: usize = 2_000;
    for round in 0..ROUNDS {
        let started = Arc::new(std::sync::Mutex::new(Vec::with_capacity(CHILDREN)));
        klaw::scope!(limit = 1, |s| {
            for child in 0..CHILDREN {
                let started = started.clone();
                s.spawn(async move { started.lock().unwrap().push(child) });
            }
            Ok(())
        })
        .unwrap();
        let started = started.lock().unwrap().clone();
        assert_eq!(started.len(), CHILDREN, "round {round}");
        if let Some(at) = started.windows(2).position(|pair| pair[0] > pair[1]) {
            let around = &started[at.saturating_sub(3)..(at + 5).min(CHILDREN)];
            panic!(
                "round {round}: child {} started before child {}, spawned earlier and waiting: \
                 {around:?}",
                started[at],
                started[at + 1]
            );
        }
    }
}
