//! Loom models of the executor's sleep and wake protocol: a task scheduled while a worker falls
//! asleep is run, several sleepers are each woken for their task, and a sleeper picked to wake
//! but dropped before it ran anything passes the wake-up on. A lost wake-up shows as a deadlock
//! (every thread parked), a task run twice or never as a failed count.
//!
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::thread;

use super::Executor;
use crate::sync::{AtomicUsize, Ordering};

/// A worker thread that runs one task, waiting (asleep) until there is one.
fn worker_running_one_task(executor: &Arc<Executor>) -> thread::JoinHandle<()> {
    let executor = executor.clone();
    thread::spawn(move || block_on(executor.tick()))
}

/// Spawns a task that counts itself once it runs.
fn spawn_counted(executor: &Executor, ran: &Arc<AtomicUsize>) {
    let ran = ran.clone();
    executor.spawner().spawn(async move {
        ran.fetch_add(1, Ordering::SeqCst);
    });
}

#[test]
fn loom_a_task_scheduled_while_the_worker_falls_asleep_is_run() {
    loom::model(|| {
        let executor = Arc::new(Executor::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let worker = worker_running_one_task(&executor);
        spawn_counted(&executor, &ran);
        worker.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn loom_two_sleepers_are_each_woken_for_their_task() {
    loom::model(|| {
        let executor = Arc::new(Executor::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2).map(|_| worker_running_one_task(&executor)).collect();
        spawn_counted(&executor, &ran);
        spawn_counted(&executor, &ran);
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    });
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
