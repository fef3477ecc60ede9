//! Loom models of the executor's sleep and wake protocol: a task scheduled while a worker falls
//! asleep is run, several sleepers are each woken for their task, a sleeper picked to wake but
//! dropped before it ran anything passes the wake-up on, and what a run leaves to its own worker
//! (a yield, the tasks started as it ends) is run while the other worker sleeps; and a busy worker,
//! which yields its thread once between its last look and its sleep, is woken or finds its task
//! all the same. Workers' own queues (`executor/own.rs`): a task in the own queue of a worker
//! stuck in a run is taken by a worker that slept since before, which is woken to keep the
//! watch; a watcher that stands down as the stuck worker becomes active again still sees it, or
//! is woken; a run that ends hands its own queue on; the executor's drop drops what waits in an
//! own queue, also a task pushed there as it closes. The watcher's timer is the model's: each
//! model fires it ([`fire_watch_timer`]) three times after its worker got stuck, so a watch
//! kept then must take the task. A lost wake-up shows as a deadlock
//! (every thread parked), a task run twice or never as a failed count.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::thread;

use super::queue::Entry;
use super::{Executor, Pace, State, Watch};
use crate::sync::{AtomicUsize, Ordering};

/// A worker thread that runs one task, waiting (asleep) until there is one; if `busy`, it has
/// been busy ([`Pace`]), so before it sleeps it yields and looks at the queue again.
fn worker_running_one_task(executor: &Arc<Executor>, busy: bool) -> thread::JoinHandle<()> {
    let executor = executor.clone();
    let mut pace = if busy { Pace::always_busy() } else { Pace::new() };
    thread::spawn(move || block_on(executor.tick_paced(&mut pace, None)))
}

/// Starts one worker per entry of `busy` (see [`worker_running_one_task`]), then spawns as many
/// tasks while they fall asleep, each of which counts itself once it runs; checks every task
/// ran once.
fn each_task_runs_once_on(busy: &[bool]) {
    let executor = Arc::new(Executor::new());
    let ran = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> =
        busy.iter().map(|&busy| worker_running_one_task(&executor, busy)).collect();
    for _ in busy {
        let ran = ran.clone();
        executor.spawner().spawn(async move {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(ran.load(Ordering::SeqCst), busy.len());
}

#[test]
fn loom_a_task_scheduled_while_the_worker_falls_asleep_is_run() {
    loom::model(|| each_task_runs_once_on(&[false]));
}

#[test]
fn loom_two_sleepers_are_each_woken_for_their_task() {
    loom::model(|| each_task_runs_once_on(&[false, false]));
}

#[test]
fn loom_a_busy_worker_runs_a_task_scheduled_while_it_yields() {
    loom::model(|| each_task_runs_once_on(&[true]));
}

#[test]
fn loom_a_busy_worker_and_a_sleeper_are_each_woken_for_their_task() {
    loom::model(|| each_task_runs_once_on(&[true, false]));
}

#[test]
fn loom_a_picked_sleeper_that_leaves_passes_the_wake_up_on() {
    loom::model(|| {
        let executor = Arc::new(Executor::new());
        let (done, finished) = crate::channel::bounded::<()>(1);
        // A worker told to stop: its `tick` is polled once (it may run the task, or register as
        // a sleeper) and then dropped, whether or not the schedule picked it to wake meanwhile.
        let leaving = {
            let executor = executor.clone();
            thread::spawn(move || {
                let mut tick = pin!(executor.tick());
                let _ = tick.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            })
        };
        // Runs tasks until the one task has run, here or on the leaving worker. Deadlocks if the
        // wake-up meant for a sleeper went to the one that left and stopped there.
        let staying = {
            let executor = executor.clone();
            thread::spawn(move || {
                block_on(executor.run(async move {
                    let _ = finished.recv().await;
                }));
            })
        };
        executor.spawner().spawn(async move {
            let _ = done.try_send(());
        });
        leaving.join().unwrap();
        staying.join().unwrap();
    });
}

/// Set once, by the last task of a model; the workers run until it is set.
#[derive(Default)]
struct Done(crate::sync::Mutex<(bool, Vec<Waker>)>);

impl Done {
    fn set(&self) {
        let wakers = {
            let mut done = self.0.lock();
            done.0 = true;
            std::mem::take(&mut done.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut done = self.0.lock();
            if done.0 {
                return Poll::Ready(());
            }
            done.1.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

/// Two workers that run tasks until `done` is set.
fn two_workers_until(executor: &Arc<Executor>, done: &Arc<Done>) -> Vec<thread::JoinHandle<()>> {
    (0..2)
        .map(|_| {
            let (executor, done) = (executor.clone(), done.clone());
            thread::spawn(move || block_on(executor.run(done.wait())))
        })
        .collect()
}

#[test]
fn loom_a_task_that_yields_runs_on_while_the_other_worker_sleeps() {
    loom::model(|| {
        let executor = Arc::new(Executor::new());
        let done = Arc::new(Done::default());
        let workers = two_workers_until(&executor, &done);
        // Its yield leaves the wake-up to the worker that ran it. Deadlocks if that worker
        // then leaves it queued while the other sleeps.
        let mut yielded = false;
        executor.spawner().spawn(std::future::poll_fn(move |cx| {
            if !std::mem::replace(&mut yielded, true) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            done.set();
            Poll::Ready(())
        }));
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

#[test]
fn loom_tasks_started_as_a_task_ends_all_run() {
    loom::model(|| {
        let executor = Arc::new(Executor::new());
        let done = Arc::new(Done::default());
        let workers = two_workers_until(&executor, &done);
        let ran = Arc::new(AtomicUsize::new(0));
        let spawner = executor.spawner().clone();
        // Two tasks started as it ends, left to the worker that ran it: that worker must hand
        // the second to the sleeper (or run both), and every one of them must run.
        executor.spawner().spawn(async move {
            super::at_end_of_run(|| {
                for _ in 0..2 {
                    let (ran, done) = (ran.clone(), done.clone());
                    spawner.spawn(async move {
                        if ran.fetch_add(1, Ordering::SeqCst) == 1 {
                            done.set();
                        }
                    });
                }
            });
        });
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

#[test]
fn loom_a_task_woken_after_the_executor_is_dropped_is_dropped() {
    loom::model(|| {
        let executor = Executor::new();
        let waker = Arc::new(crate::sync::Mutex::new(None::<Waker>));
        let parked = waker.clone();
        // A task that waits forever, leaving its waker where another thread can wake it.
        executor.spawner().spawn(std::future::poll_fn(move |cx| {
            *parked.lock() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        assert!(executor.try_tick());
        let waker = waker.lock().take().expect("the task ran once");
        let waking = thread::spawn(move || waker.wake());
        drop(executor);
        waking.join().unwrap();
        // Nothing to assert beyond loom's own checks: the runnable is dropped wherever the
        // wake-up lands, never queued on a closed executor (which would leak it).
    });
}

/// The watcher's timer fires once (under the model checker a look is due for each fire).
fn fire_watch_timer(state: &State) {
    let waker = {
        let mut timer = state.loom_timer.lock();
        timer.0 += 1;
        timer.1.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// A task that sets `done` when it runs, as an own-queue entry.
fn setting(executor: &Executor, done: &Arc<Done>) -> Entry {
    let done = done.clone();
    Entry::new(executor.spawner().build_task((), move |()| async move { done.set() }))
}

/// A worker that runs tasks until `done` is set.
fn worker_until(executor: &Arc<Executor>, done: &Arc<Done>) -> thread::JoinHandle<()> {
    let (executor, done) = (executor.clone(), done.clone());
    thread::spawn(move || block_on(executor.run(done.wait())))
}

/// A worker stuck in a run: it registers, begins a run, and in it queues a task in its own
/// queue (as a yield does), then never begins another run until that task has run elsewhere.
/// After `idle_first`, it first goes idle and active again (as a worker that sleeps and is
/// woken), with the timer firing while it is idle, so that a watch kept meanwhile stands down.
fn stuck_worker(executor: &Arc<Executor>, done: &Arc<Done>, idle_first: bool) {
    let (executor, done) = (executor.clone(), done.clone());
    let state = executor.state();
    let watch = Watch::register(state);
    if idle_first {
        fire_watch_timer(state);
        state.active.fetch_sub(1, Ordering::SeqCst);
        fire_watch_timer(state);
        state.active.fetch_add(1, Ordering::SeqCst);
    }
    watch.worker.began_run();
    state.push_own(&watch.worker, setting(&executor, &done));
    // Stuck from here on: the timer fires three times. A watch armed by now looks at each
    // fire; the push's call for a watcher may wake a watcher armed before it, which re-arms
    // (forgetting its first look) at most once, so two looks of one watch remain.
    for _ in 0..3 {
        fire_watch_timer(state);
    }
    block_on(done.wait());
    drop(watch);
}

#[test]
fn loom_a_task_in_the_own_queue_of_a_stuck_worker_is_taken_by_the_worker_that_slept() {
    loom::model(|| {
        let executor = Arc::new(Executor::new());
        let done = Arc::new(Done::default());
        let watcher = worker_until(&executor, &done);
        stuck_worker(&executor, &done, false);
        watcher.join().unwrap();
    });
}

#[test]
fn loom_a_watch_that_stands_down_as_the_stuck_worker_becomes_active_is_kept_again() {
    loom::model(|| {
        let executor = Arc::new(Executor::new());
        let done = Arc::new(Done::default());
        let watcher = worker_until(&executor, &done);
        stuck_worker(&executor, &done, true);
        watcher.join().unwrap();
    });
}

#[test]
fn loom_a_run_that_ends_hands_its_own_queue_to_the_other_worker() {
    loom::model(|| {
        let executor = Arc::new(Executor::new());
        let done = Arc::new(Done::default());
        let other = worker_until(&executor, &done);
        {
            let state = executor.state();
            let watch = Watch::register(state);
            watch.worker.began_run();
            state.push_own(&watch.worker, setting(&executor, &done));
            drop(watch); // the run returns with the task still in its own queue
        }
        other.join().unwrap();
    });
}

#[test]
fn loom_the_executors_drop_drops_what_waits_in_an_own_queue() {
    loom::model(|| {
        let executor = Executor::new();
        let alive = Arc::new(());
        let spawner = executor.spawner().clone();
        let queued = {
            let alive = alive.clone();
            Entry::new(spawner.build_task((), move |()| async move { drop(alive) }))
        };
        let (pushed, has_pushed) = crate::channel::bounded::<()>(1);
        let (release, released) = crate::channel::bounded::<()>(1);
        // A worker pushes to its own queue while the executor closes, and stays registered
        // until the check (its run's end would hand the queue on, and hide a task left there).
        let worker = thread::spawn(move || {
            let state = &*spawner.state;
            let watch = Watch::register(state);
            state.push_own(&watch.worker, queued);
            pushed.try_send(()).unwrap();
            let _ = block_on(released.recv());
            drop(watch);
        });
        drop(executor);
        block_on(has_pushed.recv()).unwrap();
        assert_eq!(Arc::strong_count(&alive), 1, "the task was dropped, not left queued");
        drop(release);
        worker.join().unwrap();
    });
}
