//! Tasks that compute in runs of tens of µs and yield in a loop use the idle workers, as on
//! tokio, even though a task that yields waits in the own queue of the worker that ran it
//! (`klaw-rt/src/runtime/executor/own.rs`): the watch takes half of a worker's own queue when
//! its runs are long. (A backlog of short runs, such as a channel's ends, stays on its worker;
//! a poll that never returns is the stuck worker of `tests/stuck_worker_faults.rs`.) No timing
//! assertion: only that two such tasks were at some point inside a run at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{occupy_worker, runtime, wait_for, within};
use futures_lite::future::yield_now;

/// How many runs each task computes before it gives up waiting for the other: far more than
/// the few watch periods that spreading them takes.
const RUNS: usize = 4000;

/// Two tasks started on one worker of two (the other is held until both have been polled, so
/// both wait in that worker's own queue between their polls), which then compute for about
/// `run` and yield, in a loop, until both were inside a run at once (or [`RUNS`] each): gives
/// the most that were ever inside a run at once.
fn most_long_runs_at_once(run: Duration) -> usize {
    let rt = runtime(2);
    let (release, blocker) = occupy_worker(&rt);
    let go = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (go, started, inside, most) =
                (go.clone(), started.clone(), inside.clone(), most.clone());
            rt.spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                // Short runs while waiting: they stay on their worker.
                while !go.load(Ordering::SeqCst) {
                    yield_now().await;
                }
                for _ in 0..RUNS {
                    if most.load(Ordering::SeqCst) == 2 {
                        break;
                    }
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let began = Instant::now();
                    while began.elapsed() < run {
                        std::hint::spin_loop();
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                    yield_now().await;
                }
            })
        })
        .collect();
    wait_for("both tasks polled", || started.load(Ordering::SeqCst) == 2);
    release.send(()).unwrap();
    rt.block_on(blocker).unwrap();
    std::thread::sleep(Duration::from_millis(5)); // the freed worker falls asleep
    go.store(true, Ordering::SeqCst);
    for handle in handles {
        rt.block_on(handle).unwrap();
    }
    most.load(Ordering::SeqCst)
}

/// One test, its rounds one after another: two runtimes computing at once on a 2-core machine
/// would preempt each other's workers, and a worker preempted for a watch period is taken from
/// as a stuck one, which would hide a missing rule for long runs.
#[test]
fn two_tasks_computing_in_long_runs_in_one_workers_own_queue_run_at_once() {
    within(Duration::from_secs(60), || {
        for run in [100, 40, 100, 40] {
            assert_eq!(most_long_runs_at_once(Duration::from_micros(run)), 2, "runs of {run} us");
        }
    });
}
