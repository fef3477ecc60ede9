//! A nursery of 10k parallel children: a klaw `scope!` vs tokio `JoinSet` vs raw async-executor
//! (spawn 10k, await all), each on 2 worker threads, in one run. Then the same 10k children with
//! at most 8 running at once: `scope!(limit = 8)` vs a tokio `JoinSet` whose children each take
//! a permit of a `Semaphore` (the usual way to cap a fan-out in tokio), both collecting outcomes
//! in the order they finish.
//!
//! `cargo bench -p klaw-benches --bench scope` prints criterion's estimates, then the medians
//! of interleaved rounds with ratios to raw async-executor.

use std::sync::Arc;

#[path = "common/rounds.rs"]
mod rounds;

use klaw_benches::{Contender, compare, criterion_config};

const CHILDREN: u64 = 10_000;
const WORKERS: usize = 2;
const ROUNDS: usize = 41;
const LIMIT: usize = 8;

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
    let tokio_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(WORKERS).build().unwrap();

    let contenders = vec![
        Contender::new("async-executor", || {
            let tasks: Vec<_> = (0..CHILDREN).map(|i| executor.spawn(async move { i })).collect();
            futures_lite::future::block_on(async {
                for task in tasks {
                    task.await;
                }
            });
        }),
        Contender::new("klaw scope!", || rounds::klaw_scope(&klaw_rt, CHILDREN)),
        Contender::new("klaw scope! + await all", || {
            klaw_rt
                .block_on(async {
                    klaw::scope!(|s| {
                        let handles: Vec<_> =
                            (0..CHILDREN).map(|i| s.spawn(async move { i })).collect();
                        for handle in handles {
                            handle.await?;
                        }
                        Ok(())
                    })
                })
                .unwrap();
        }),
        Contender::new("tokio JoinSet", || rounds::tokio_join_set(&tokio_rt, CHILDREN)),
    ];
    let mut criterion = criterion_config();
    compare(&mut criterion, "scope_10k_children", CHILDREN, ROUNDS, "async-executor", contenders);

    let bounded = vec![
        Contender::new("tokio JoinSet + Semaphore", || {
            tokio_rt.block_on(async {
                let permits = Arc::new(tokio::sync::Semaphore::new(LIMIT));
                let mut set = tokio::task::JoinSet::new();
                for i in 0..CHILDREN {
                    let permits = permits.clone();
                    set.spawn(async move {
                        let _permit = permits.acquire_owned().await.unwrap();
                        tokio::task::yield_now().await; // the work, while holding the permit
                        i
                    });
                }
                while let Some(result) = set.join_next().await {
                    result.unwrap();
                }
            });
        }),
        Contender::new("klaw scope!(limit) + child_set", || {
            klaw_rt
                .block_on(async {
                    klaw::scope!(limit = LIMIT, |s| {
                        let mut set = s.child_set();
                        for i in 0..CHILDREN {
                            set.spawn(async move {
                                futures_lite::future::yield_now().await; // the work
                                i
                            });
                        }
                        while let Some(result) = set.next_finished().await {
                            result?;
                        }
                        Ok(())
                    })
                })
                .unwrap();
        }),
    ];
    let name = "scope_10k_children_limit_8";
    compare(&mut criterion, name, CHILDREN, ROUNDS, "tokio JoinSet + Semaphore", bounded);
    criterion.final_summary();

    stop.notify(usize::MAX);
    for thread in executor_threads {
        thread.join().unwrap();
    }
}
