//! klaw's executor under races the loom models cannot reach at full size: spawns from several
//! outside threads at once while tasks spawn more tasks, yield, and wait on each other; bursts
//! after the workers fell asleep; a runtime dropped while tasks are being woken, or while they
//! yield in loops; and rings of tasks handing a token on through channels, which the executor
//! keeps for the worker. A lost wake-up shows as a test that hangs (each has a deadline), a lost
//! or doubled task as a wrong count.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::within;
use klaw::Runtime;

#[test]
fn spawns_from_four_outside_threads_and_from_tasks_all_run_once() {
    within(Duration::from_secs(60), || {
        let rt = Arc::new(Runtime::builder().workers(2).build().unwrap());
        let ran = Arc::new(AtomicUsize::new(0));
        let spawners: Vec<_> = (0..4)
            .map(|_| {
                let (rt, ran) = (rt.clone(), ran.clone());
                std::thread::spawn(move || {
                    let handles: Vec<_> = (0..5_000)
                        .map(|i| {
                            let ran = ran.clone();
                            rt.spawn(async move {
                                if i % 3 == 0 {
                                    futures_lite::future::yield_now().await;
                                }
                                // Every tenth task spawns a child from inside a worker.
                                if i % 10 == 0 {
                                    let child_ran = ran.clone();
                                    let child =
                                        klaw::Handle::current().unwrap().spawn(async move {
                                            child_ran.fetch_add(1, Ordering::SeqCst);
                                        });
                                    child.await.unwrap();
                                }
                                ran.fetch_add(1, Ordering::SeqCst);
                            })
                        })
                        .collect();
                    rt.block_on(async {
                        for handle in handles {
                            handle.await.unwrap();
                        }
                    });
                })
            })
            .collect();
        for spawner in spawners {
            spawner.join().unwrap();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 4 * (5_000 + 500));
    });
}

#[test]
fn bursts_after_the_workers_fell_asleep_reach_every_worker() {
    within(Duration::from_secs(60), || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        for _ in 0..200 {
            // Long enough for both workers to go to sleep.
            std::thread::sleep(Duration::from_micros(300));
            // Two tasks that each hold their worker until the other has started: they finish
            // only if both run at once, so the burst must wake both sleepers (one wake-up is in
            // flight at a time: the first worker must pass it on).
            let started = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let started = started.clone();
                    rt.spawn(async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        while started.load(Ordering::SeqCst) < 2 {
                            std::hint::spin_loop();
                        }
                    })
                })
                .collect();
            rt.block_on(async {
                for handle in handles {
                    handle.await.unwrap();
                }
            });
        }
    });
}

#[test]
fn a_runtime_shut_down_while_tasks_are_woken_ends_every_task() {
    within(Duration::from_secs(60), || {
        for _ in 0..50 {
            let rt = Runtime::builder().workers(2).build().unwrap();
            let (tx, rx) = klaw::channel::unbounded::<u32>();
            let handles: Vec<_> = (0..64)
                .map(|_| {
                    let rx = rx.clone();
                    rt.spawn(async move { while rx.recv().await.is_ok() {} })
                })
                .collect();
            // Wakes the receivers from outside while the runtime shuts down.
            let waker = std::thread::spawn(move || {
                for n in 0..10_000 {
                    if tx.try_send(n).is_err() {
                        break;
                    }
                }
            });
            let report = rt.shutdown(Duration::from_millis(1));
            waker.join().unwrap();
            let ended = report.completed() + report.cancelled + report.panicked + report.timed_out;
            assert_eq!(ended, 64, "{report}");
            assert!(handles.iter().all(|handle| handle.is_finished()));
        }
    });
}

#[test]
fn a_runtime_shut_down_while_tasks_yield_in_loops_ends_every_task() {
    // Tasks that yield are queued again at every poll, on two and on three workers: the
    // shutdown's cancel must reach each of them wherever it is queued, and every one ends.
    within(Duration::from_secs(60), || {
        for workers in [2, 3] {
            for round in 0..30 {
                let rt = Runtime::builder().workers(workers).build().unwrap();
                let polls = Arc::new(AtomicUsize::new(0));
                let handles: Vec<_> = (0..32)
                    .map(|_| {
                        let polls = polls.clone();
                        rt.spawn(async move {
                            loop {
                                polls.fetch_add(1, Ordering::Relaxed);
                                futures_lite::future::yield_now().await;
                            }
                        })
                    })
                    .collect();
                while polls.load(Ordering::Relaxed) < 1_000 * (round % 3) {
                    std::thread::yield_now();
                }
                let report = rt.shutdown(Duration::from_millis(50));
                assert_eq!(report.cancelled + report.timed_out, 32, "{report}");
                assert!(handles.iter().all(|handle| handle.is_finished()));
            }
        }
    });
}

/// Rings of `SIZE` tasks, each receiving on its own one-to-one channel (room for one token) and
/// sending on the next task's, with two tokens going round: every pass is a channel's hand-off,
/// which the worker that makes it keeps to run next, three in a row at most. With two tokens a
/// task may wait to send into a full channel, so one poll can hand a place back to the task
/// before it and a token on to the task after it: the second hand-off takes the slot and sends
/// the first to the queue. Every task ends, on two workers; with a shutdown in the middle too.
fn rings_passing_tokens(rt: &Runtime, rings: usize, passes: u32) -> Vec<klaw::TaskHandle<()>> {
    const SIZE: usize = 5;
    let mut handles = Vec::new();
    for _ in 0..rings {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..SIZE).map(|_| klaw::channel::bounded::<u32>(1)).unzip();
        let mut senders: std::collections::VecDeque<_> = senders.into();
        senders.rotate_left(1); // task `i` sends to task `i + 1`
        for (index, (rx, tx)) in receivers.into_iter().zip(senders).enumerate() {
            handles.push(rt.spawn(async move {
                if index == 0 {
                    for token in 0..2 {
                        tx.send(token).await.unwrap();
                    }
                }
                while let Ok(token) = rx.recv().await {
                    // A task that sees a token reach `passes` passes it on and ends; the one
                    // before it then finds its channel closed, and the one after it, once its
                    // channel is empty, finds it closed: the whole ring ends.
                    let next = if token < passes { token + 1 } else { token };
                    if tx.send(next).await.is_err() || token == passes {
                        break;
                    }
                }
            }));
        }
    }
    handles
}

#[test]
fn rings_of_tasks_handing_tokens_on_all_end() {
    within(Duration::from_secs(60), || {
        for _ in 0..10 {
            let rt = Runtime::builder().workers(2).build().unwrap();
            let handles = rings_passing_tokens(&rt, 8, 5_000);
            rt.block_on(async {
                for handle in handles {
                    handle.await.expect("every task of every ring ends");
                }
            });
        }
    });
}

#[test]
fn a_runtime_shut_down_while_tokens_are_handed_on_ends_every_task() {
    within(Duration::from_secs(60), || {
        for _ in 0..50 {
            let rt = Runtime::builder().workers(2).build().unwrap();
            let handles = rings_passing_tokens(&rt, 8, u32::MAX - 1);
            std::thread::sleep(Duration::from_millis(2));
            let report = rt.shutdown(Duration::from_millis(1));
            let ended = report.completed() + report.cancelled + report.panicked + report.timed_out;
            assert_eq!(ended, 40, "{report}");
            assert!(handles.iter().all(|handle| handle.is_finished()));
        }
    });
}
