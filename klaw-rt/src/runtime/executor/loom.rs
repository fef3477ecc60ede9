//! Loom models of the executor's sleep and wake protocol: a task scheduled while a worker falls
//! asleep is run, several sleepers are each woken for their task, a sleeper picked to wake but
//! dropped before it ran anything passes the wake-up on, and what a run leaves to its own worker
//! (a yield, the tasks started as it ends) is run while the other worker sleeps; and a busy worker,
//! which yields its thread once between its last look and its sleep, is woken or finds its task
//! all the same. A lost wake-up shows as a deadlock
//! (every thread parked), a task run twice or never as a failed count.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::thread;

use super::{Executor, Pace};
use crate::sync::{AtomicUsize, Ordering};

/// A worker thread that runs one task, waiting (asleep) until there is one; if `busy`, it has
/// been busy ([`Pace`]), so before it sleeps it yields and looks at the queue again.
fn worker_running_one_task(executor: &Arc<Executor>, busy: bool) -> thread::JoinHandle<()> {
    let executor = executor.clone();
    let mut pace = if busy { Pace::always_busy() } else { Pace::new() };
    thread::spawn(move || block_on(executor.tick_paced(&mut pace)))
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
