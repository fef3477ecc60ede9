//! A contended async `Mutex`: 8 tasks on 2 workers, each taking the lock 5,000 times to add one
//! to a counter; then 500 times each, holding the guard across a yield (what an async mutex is
//! for). klaw's `Mutex` (a one-permit FIFO semaphore) against tokio's (the baseline, also a FIFO
//! semaphore) and async-lock's (what `klaw::sync::Mutex` wrapped before), in one run.
//!
//! `cargo bench -p klaw-benches --bench sync -- --quick` prints the medians of interleaved
//! rounds with ratios to tokio's mutex on tokio.

use std::sync::Arc;

use klaw_benches::{Contender, compare, criterion_config};

const TASKS: u64 = 8;
const WORKERS: usize = 2;
const ROUNDS: usize = 31;
/// Locks a task takes in the short-hold group.
const SHORT_HOLDS: u64 = 5_000;
/// Locks a task takes in the group that holds each across a yield.
const HELD_ACROSS_YIELD: u64 = 500;

/// One task's part: `locks` times, lock, add one, and (if `across_yield`) yield with the guard
/// held. The same body for every mutex; `lock` is the mutex's `lock()` as an expression.
macro_rules! take_turns {
    ($mutex:ident, $locks:expr, $across_yield:expr) => {
        async move {
            for _ in 0..$locks {
                let mut guard = $mutex.lock().await;
                *guard += 1;
                if $across_yield {
                    futures_lite::future::yield_now().await;
                }
                drop(guard);
            }
        }
    };
}

/// A round on tokio: `TASKS` tokio tasks share `mutex`, and the count is checked at the end.
macro_rules! tokio_round {
    ($rt:expr, $new_mutex:expr, $locks:expr, $across_yield:expr) => {
        $rt.block_on(async {
            let shared = Arc::new($new_mutex);
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let mutex = shared.clone();
                    tokio::spawn(take_turns!(mutex, $locks, $across_yield))
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(*shared.lock().await, TASKS * $locks);
        })
    };
}

/// A round on klaw's runtime: `TASKS` children of one `scope!` share `mutex`.
macro_rules! klaw_round {
    ($rt:expr, $new_mutex:expr, $locks:expr, $across_yield:expr) => {
        $rt.block_on(async {
            let shared = Arc::new($new_mutex);
            klaw::scope!(|s| {
                for _ in 0..TASKS {
                    let mutex = shared.clone();
                    s.spawn(take_turns!(mutex, $locks, $across_yield));
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(*shared.lock().await, TASKS * $locks);
        })
    };
}

fn main() {
    klaw_benches::run_cpu_hog_if_asked();
    let klaw_rt = klaw::Runtime::builder().workers(WORKERS).build().unwrap();
    let tokio_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(WORKERS).build().unwrap();
    let mut criterion = criterion_config();

    for (group, locks, across_yield) in [
        ("mutex_8_tasks_short_holds", SHORT_HOLDS, false),
        ("mutex_8_tasks_held_across_a_yield", HELD_ACROSS_YIELD, true),
    ] {
        let contenders = vec![
            Contender::new("tokio Mutex (tokio)", || {
                tokio_round!(tokio_rt, tokio::sync::Mutex::new(0u64), locks, across_yield)
            }),
            Contender::new("klaw Mutex (tokio)", || {
                tokio_round!(tokio_rt, klaw::sync::Mutex::new(0u64), locks, across_yield)
            }),
            Contender::new("klaw Mutex (klaw)", || {
                klaw_round!(klaw_rt, klaw::sync::Mutex::new(0u64), locks, across_yield)
            }),
            Contender::new("async-lock Mutex (klaw)", || {
                klaw_round!(klaw_rt, async_lock::Mutex::new(0u64), locks, across_yield)
            }),
        ];
        compare(&mut criterion, group, TASKS * locks, ROUNDS, "tokio Mutex (tokio)", contenders);
    }
    criterion.final_summary();
}
