//! Spawn + join of 100k trivial tasks: klaw vs raw async-executor vs `tokio::spawn` vs tokio
//! `JoinSet`, each on 2 worker threads, in one run.
//!
//! `cargo bench -p klaw-benches --bench spawn` prints criterion's estimates, then the medians
//! of interleaved rounds with ratios to raw async-executor.

use std::sync::Arc;

#[path = "common/rounds.rs"]
mod rounds;

use klaw_benches::{Contender, compare, criterion_config};

const TASKS: u64 = 100_000;
const WORKERS: usize = 2;
const ROUNDS: usize = 31;

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(WORKERS).build().unwrap()
}

fn main() {
    klaw_benches::run_cpu_hog_if_asked();
    let klaw_rt = klaw::Runtime::builder().workers(WORKERS).build().unwrap();

    let executor = Arc::new(async_executor::Executor::new());
    let stop = event_listener::Event::new();
    let executor_threads: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (executor, stopped) = (executor.clone(), stop.listen());
            std::thread::spawn(move || futures_lite::future::block_on(executor.run(stopped)))
        })
        .collect();

    let tokio_spawn_rt = tokio_runtime();
    let tokio_join_set_rt = tokio_runtime();

    let contenders = vec![
        Contender::new("async-executor", || {
            let tasks: Vec<_> = (0..TASKS).map(|i| executor.spawn(async move { i })).collect();
            futures_lite::future::block_on(async {
                for task in tasks {
                    task.await;
                }
            });
        }),
        Contender::new("klaw spawn+await", || {
            let handles: Vec<_> = (0..TASKS).map(|i| klaw_rt.spawn(async move { i })).collect();
            klaw_rt.block_on(async {
                for handle in handles {
                    handle.await.unwrap();
                }
            });
        }),
        Contender::new("tokio::spawn", || {
            tokio_spawn_rt.block_on(async {
                let handles: Vec<_> = (0..TASKS).map(|i| tokio::spawn(async move { i })).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            });
        }),
        Contender::new("tokio JoinSet", || rounds::tokio_join_set(&tokio_join_set_rt, TASKS)),
    ];
    let mut criterion = criterion_config();
    compare(&mut criterion, "spawn_join_100k", TASKS, ROUNDS, "async-executor", contenders);
    criterion.final_summary();

    stop.notify(usize::MAX);
    for thread in executor_threads {
        thread.join().unwrap();
    }
}
