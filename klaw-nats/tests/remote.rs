//! Remote tasks on a real `nats-server -js`, with the worker in this process: typed results,
//! refusals, cancel of a running and of a queued job, a task from another crate, and a long
//! task that keeps its claim.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{NatsServer, SetOnDrop, wait_until};
use klaw::remote::{RemoteBackend, RemoteError, RemoteJob, WireOutcome};
use klaw::{CancelReason, Runtime, TaskError, TaskHandle};
use klaw_nats::{NatsBackend, NatsConfig, Worker};

// Linked so that its remote task is in the registry (see `a_task_from_another_crate_runs`).
use klaw_nats_test_tasks as _;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{0} is odd")]
struct Odd(u64);

#[klaw::task(remote)]
async fn half(n: u64) -> Result<u64, Odd> {
    if n % 2 == 0 { Ok(n / 2) } else { Err(Odd(n)) }
}

#[klaw::task(remote)]
async fn explode(message: String) -> u8 {
    panic!("{message}")
}

static RUNNING_STARTED: AtomicBool = AtomicBool::new(false);
static RUNNING_DROPPED: AtomicBool = AtomicBool::new(false);

#[klaw::task(remote)]
async fn wait_forever() {
    let _dropped = SetOnDrop(&RUNNING_DROPPED);
    RUNNING_STARTED.store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

static QUEUED_RAN: AtomicBool = AtomicBool::new(false);

#[klaw::task(remote)]
async fn never_taken() {
    QUEUED_RAN.store(true, Ordering::SeqCst);
}

static LONG_STARTS: AtomicUsize = AtomicUsize::new(0);

#[klaw::task(remote)]
async fn long_job(millis: u64) -> u64 {
    LONG_STARTS.fetch_add(1, Ordering::SeqCst);
    klaw::time::sleep(Duration::from_millis(millis)).await;
    millis
}

/// A submitter runtime and a worker runtime on one server.
struct Cluster {
    server: NatsServer,
    backend: NatsBackend,
    submitter: Runtime,
    workers: Runtime,
}

impl Cluster {
    fn new(config: impl FnOnce(NatsConfig) -> NatsConfig) -> Self {
        let server = NatsServer::start();
        let config = config(server.config());
        let backend = klaw::runtime::block_on(NatsBackend::connect(config)).unwrap();
        let submitter =
            Runtime::builder().workers(1).backend(Arc::new(backend.clone())).build().unwrap();
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        Self { server, backend, submitter, workers }
    }

    fn config(&self) -> NatsConfig {
        self.server.config()
    }

    /// Starts a worker in this process; cancel the handle to stop it.
    fn start_worker(&self, config: NatsConfig) -> TaskHandle<Result<(), klaw::Error>> {
        let worker = klaw::runtime::block_on(Worker::connect(config)).unwrap().concurrency(4);
        self.workers.spawn(worker.run())
    }
}

#[test]
fn typed_results_failures_and_panics_come_back() {
    let cluster = Cluster::new(|c| c);
    let _worker = cluster.start_worker(cluster.config());
    let rt = &cluster.submitter;
    assert_eq!(rt.block_on(rt.spawn(half(42))), Ok(21));
    assert_eq!(rt.block_on(rt.spawn(half(7))), Err(TaskError::Failed(Odd(7))));
    assert_eq!(
        rt.block_on(rt.spawn(explode("remote boom".into()))),
        Err(TaskError::Panicked("remote boom".into()))
    );
    // Many at once, in a scope, as local code would.
    let sum = rt
        .block_on(async {
            klaw::scope!(|s| {
                let handles: Vec<_> = (0..20).map(|i| s.spawn(half(2 * i))).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await?;
                }
                Ok(sum)
            })
        })
        .unwrap();
    assert_eq!(sum, (0..20).sum::<u64>());
    assert_eq!(cluster.backend.in_flight(), 0);
}

#[test]
fn a_worker_refuses_an_unknown_task_or_another_build() {
    let cluster = Cluster::new(|c| c);
    let _worker = cluster.start_worker(cluster.config());
    let submit = |job: RemoteJob| {
        let reply = klaw::runtime::block_on(cluster.backend.submit(job)).unwrap();
        WireOutcome::decode("test", &reply).unwrap()
    };
    let unknown = submit(RemoteJob::new("nowhere::nothing", "app@1.0.0 nothing() -> ()", vec![]));
    assert_eq!(
        unknown,
        WireOutcome::Refused(RemoteError::UnknownTask { name: "nowhere::nothing".into() })
    );
    let name = klaw::remote::remote_tasks().find(|t| t.name().ends_with("::half")).unwrap();
    let stale = submit(RemoteJob::new(name.name(), "remote@0.0.1 half(u64) -> u64", vec![0x91, 2]));
    match stale {
        WireOutcome::Refused(RemoteError::BuildMismatch { job, worker, .. }) => {
            assert_eq!(job, "remote@0.0.1 half(u64) -> u64");
            assert_eq!(worker, name.build());
        }
        other => panic!("expected a build mismatch, got {other:?}"),
    }
    // A refused job is settled, not redelivered.
    wait_until(Duration::from_secs(5), "the queue is empty", || {
        klaw::runtime::block_on(cluster.backend.queued()).unwrap() == 0
    });
}

#[test]
fn cancel_reaches_the_worker_running_the_task() {
    let cluster = Cluster::new(|c| c);
    let _worker = cluster.start_worker(cluster.config());
    let handle = cluster.submitter.spawn(wait_forever());
    wait_until(Duration::from_secs(10), "the worker runs the task", || {
        RUNNING_STARTED.load(Ordering::SeqCst)
    });
    assert!(handle.cancel("user stop"));
    let result = cluster.submitter.block_on(handle);
    assert_eq!(result, Err(TaskError::Cancelled(CancelReason::user("user stop"))));
    wait_until(Duration::from_secs(10), "the worker dropped the task", || {
        RUNNING_DROPPED.load(Ordering::SeqCst)
    });
    wait_until(Duration::from_secs(5), "the job left the queue", || {
        klaw::runtime::block_on(cluster.backend.queued()).unwrap() == 0
    });
}

#[test]
fn a_cancelled_job_still_queued_is_removed_before_any_worker_takes_it() {
    let cluster = Cluster::new(|c| c);
    let handle = cluster.submitter.spawn(never_taken());
    wait_until(Duration::from_secs(10), "the job is queued", || {
        klaw::runtime::block_on(cluster.backend.queued()).unwrap() == 1
    });
    assert!(handle.cancel("changed my mind"));
    wait_until(Duration::from_secs(5), "the job left the queue", || {
        klaw::runtime::block_on(cluster.backend.queued()).unwrap() == 0
    });
    // A worker that starts now finds nothing to run.
    let worker = cluster.start_worker(cluster.config());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!QUEUED_RAN.load(Ordering::SeqCst));
    worker.cancel("test over");
}

#[test]
fn a_task_from_another_crate_runs_and_the_worker_lists_it() {
    let cluster = Cluster::new(|c| c);
    let worker = klaw::runtime::block_on(Worker::connect(cluster.config())).unwrap();
    let names: Vec<_> = worker.tasks().iter().map(|t| t.name()).collect();
    assert!(names.contains(&"klaw_nats_test_tasks::count_words"), "{names:?}");
    let _worker = cluster.workers.spawn(worker.run());
    let rt = &cluster.submitter;
    let words = rt.block_on(rt.spawn(klaw_nats_test_tasks::count_words("a b  c".into())));
    assert_eq!(words, Ok(3));
}

#[test]
fn a_long_task_keeps_its_claim_while_its_worker_lives() {
    // The claim lapses after 1.8 s without news; the task takes 6 s, over three claims; a
    // second worker waits. The worker renews every 600 ms, so a renewal may come 1.2 s late
    // (other tests' servers and builds share the machine) before the job is redelivered.
    let ack_wait = Duration::from_millis(1800);
    let cluster = Cluster::new(|c| c.ack_wait(ack_wait));
    let config = cluster.config().ack_wait(ack_wait);
    let _first = cluster.start_worker(config.clone());
    let _second = cluster.start_worker(config);
    let rt = &cluster.submitter;
    assert_eq!(rt.block_on(rt.spawn(long_job(6000))), Ok(6000));
    assert_eq!(LONG_STARTS.load(Ordering::SeqCst), 1, "the job was redelivered while alive");
}
