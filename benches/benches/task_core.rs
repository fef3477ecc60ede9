//! Where a task's core should live: the prototype measured before klaw's tasks changed.
//!
//! Each klaw task has a core (its state machine, cancel reason, wakers and output slot;
//! 112 bytes). It used to live in an `Arc` of its own, next to the allocation `async-task`
//! makes for the future: two allocations per task, and a second reference count that the
//! spawning thread and the worker both write. `async-task` can carry the core in its own
//! allocation instead (`Builder::metadata`), which is where a task spawned on klaw's executor
//! keeps it now (`klaw-rt/src/runtime/in_task.rs`). This bench spawns and joins 10k trivial tasks on one minimal
//! executor (a shared queue and two workers) both ways, with a 112-byte core that the spawning
//! thread keeps a reference to (as a scope does) and reads when it joins:
//! - `core in the task`: the core is the task's metadata, one allocation per task;
//! - `core in an Arc`: the core in its own `Arc`, one reference moved into the future.
//!
//! klaw's `scope!` and tokio's `JoinSet` run the same 10k children on their own 2 workers, for
//! scale. `cargo bench -p klaw-benches --bench task_core -- --quick` prints the ratios to
//! `core in the task`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_task::Runnable;
use concurrent_queue::ConcurrentQueue;
use event_listener::{Event, Listener};
#[path = "common/rounds.rs"]
mod rounds;

use klaw_benches::{Contender, compare, criterion_config};

const CHILDREN: u64 = 10_000;
const WORKERS: usize = 2;
const ROUNDS: usize = 41;

/// A stand-in for klaw's task core: the same size.
type Core = [u64; 14];

/// The smallest executor that runs `async-task` tasks on worker threads: one queue, and an
/// event the workers sleep on when it is empty. Its tasks carry metadata `M`.
struct MiniExecutor<M> {
    queue: ConcurrentQueue<Runnable<M>>,
    work: Event,
    sleeping: AtomicUsize,
    stopped: AtomicBool,
}

impl<M: Send + Sync + 'static> MiniExecutor<M> {
    fn start() -> Arc<Self> {
        let executor = Arc::new(MiniExecutor {
            queue: ConcurrentQueue::unbounded(),
            work: Event::new(),
            sleeping: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        });
        for _ in 0..WORKERS {
            let executor = executor.clone();
            std::thread::spawn(move || executor.run());
        }
        executor
    }

    fn schedule(&self, runnable: Runnable<M>) {
        if self.queue.push(runnable).is_err() {
            return; // never closed
        }
        // SeqCst on both sides: a worker counts itself asleep before its last look at the queue.
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            self.work.notify(1);
        }
    }

    fn run(&self) {
        while !self.stopped.load(Ordering::Relaxed) {
            if let Ok(runnable) = self.queue.pop() {
                runnable.run();
                continue;
            }
            let listener = self.work.listen();
            self.sleeping.fetch_add(1, Ordering::SeqCst);
            if let Ok(runnable) = self.queue.pop() {
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
                runnable.run();
                continue;
            }
            listener.wait_timeout(std::time::Duration::from_millis(100));
            self.sleeping.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.work.notify(usize::MAX);
    }
}

fn main() {
    klaw_benches::run_cpu_hog_if_asked();
    let in_task = MiniExecutor::<Core>::start();
    let in_arc = MiniExecutor::<()>::start();
    let klaw_rt = klaw::Runtime::builder().workers(WORKERS).build().unwrap();
    let tokio_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(WORKERS).build().unwrap();

    let contenders = vec![
        Contender::new("core in the task", || {
            let tasks: Vec<_> = (0..CHILDREN)
                .map(|i| {
                    let executor = in_task.clone();
                    let (runnable, task) = async_task::Builder::new().metadata([i; 14]).spawn(
                        |core: &Core| {
                            let first = core[0];
                            async move { first }
                        },
                        move |runnable| executor.schedule(runnable),
                    );
                    runnable.schedule();
                    task
                })
                .collect();
            futures_lite::future::block_on(async {
                for task in tasks {
                    std::hint::black_box(task.metadata()[1]);
                    task.await;
                }
            });
        }),
        Contender::new("core in an Arc", || {
            let tasks: Vec<_> = (0..CHILDREN)
                .map(|i| {
                    let executor = in_arc.clone();
                    let core = Arc::new([i; 14]);
                    let in_future = core.clone();
                    let (runnable, task) =
                        async_task::spawn(async move { in_future[0] }, move |runnable| {
                            executor.schedule(runnable)
                        });
                    runnable.schedule();
                    (task, core)
                })
                .collect();
            futures_lite::future::block_on(async {
                for (task, core) in tasks {
                    std::hint::black_box(core[1]);
                    task.await;
                }
            });
        }),
        Contender::new("klaw scope!", || rounds::klaw_scope(&klaw_rt, CHILDREN)),
        Contender::new("tokio JoinSet", || rounds::tokio_join_set(&tokio_rt, CHILDREN)),
    ];
    let mut criterion = criterion_config();
    compare(&mut criterion, "task_core_10k", CHILDREN, ROUNDS, "core in the task", contenders);
    criterion.final_summary();
    in_task.stop();
    in_arc.stop();
}
