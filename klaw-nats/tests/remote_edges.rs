//! Remote tasks at the edges of what a submitter is promised, on a real `nats-server -js` with
//! the worker in this process: cancels that arrive right after the spawn (with a worker
//! waiting), from a scope's deadline and from a runtime's shutdown, and that race the outcome;
//! a remote task's own timeout; a completed call that is never reported cancelled; a job that
//! leaves the queue with no outcome (removed by an operator) ending its handle within the
//! documented bound; a refused job kept once; a `.creds` file's secrets in no error.
//!
//! Every test runs under `within`: a hang fails it instead of blocking. One at a time (they
//! count runs in statics shared by their tasks).

mod common;
#[path = "common/counted.rs"]
mod counted;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{NatsServer, SetOnDrop, wait_until};
use counted::{RUNS, counted, runs_of};
use klaw::remote::RemoteError;
use klaw::task::ExitReason;
use klaw::{CancelReason, Runtime, TaskError, TaskHandle};
use klaw_nats::{NatsAuth, NatsBackend, NatsConfig, NatsError, Worker};

/// Runs `body` on its own thread: a hang fails the test after `limit`, a panic with its own
/// message. One test at a time, each from cleared counts.
fn within(limit: Duration, body: impl FnOnce() + Send + 'static) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial: MutexGuard<'_, ()> =
        ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    RUNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    for flag in [&HELD_STARTED, &HELD_DROPPED] {
        flag.store(false, Ordering::SeqCst);
    }
    TIMED_DROPPED.store(0, Ordering::SeqCst);
    common::watchdog(limit, body);
}

static HELD_STARTED: AtomicBool = AtomicBool::new(false);
static HELD_DROPPED: AtomicBool = AtomicBool::new(false);

/// Runs until cancelled; says when it started and when it was dropped.
#[klaw::task(remote)]
async fn held() {
    let _dropped = SetOnDrop(&HELD_DROPPED);
    HELD_STARTED.store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

static TIMED_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Outlives its own timeout.
#[klaw::task(remote, timeout = "300ms")]
async fn too_slow(n: u64) -> u64 {
    *RUNS.lock().unwrap().entry(n).or_default() += 1;
    struct Count;
    impl Drop for Count {
        fn drop(&mut self) {
            TIMED_DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    let _count = Count;
    klaw::time::sleep(Duration::from_secs(30)).await;
    n
}

/// A submitter (its own runtime and backend) and in-process workers on one server.
struct Cluster {
    server: NatsServer,
    config: NatsConfig,
    backend: NatsBackend,
    submitter: Runtime,
    workers: Runtime,
}

impl Cluster {
    fn new(namespace: &str) -> Self {
        Self::configured(namespace, |config| config)
    }

    fn configured(namespace: &str, configure: impl FnOnce(NatsConfig) -> NatsConfig) -> Self {
        let server = NatsServer::start();
        let config = configure(server.config().namespace(namespace));
        let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
        let submitter =
            Runtime::builder().workers(1).backend(Arc::new(backend.clone())).build().unwrap();
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        Self { server, config, backend, submitter, workers }
    }

    fn start_worker(&self) -> TaskHandle<Result<(), klaw::Error>> {
        let worker =
            klaw::runtime::block_on(Worker::connect(self.config.clone())).unwrap().concurrency(4);
        self.workers.spawn(worker.run())
    }

    fn queued(&self) -> u64 {
        klaw::runtime::block_on(self.backend.queued()).unwrap()
    }

    fn wait<T: Send + 'static>(
        &self,
        handle: TaskHandle<T>,
        limit: Duration,
    ) -> Result<T, TaskError> {
        self.submitter
            .block_on(klaw::cancel::fail_after(limit, handle))
            .unwrap_or_else(|_| panic!("the handle did not resolve within {limit:?}"))
    }
}

static FINISHED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Counts a run of `n`, works 2 s, then says it finished.
#[klaw::task(remote)]
async fn slow_counted(n: u64) -> u64 {
    *RUNS.lock().unwrap().entry(n).or_default() += 1;
    klaw::time::sleep(Duration::from_secs(2)).await;
    FINISHED.lock().unwrap().push(n);
    n
}

/// Calls cancelled right after their spawn, with a worker already waiting for jobs (so a job
/// may be taken the moment it is stored, before the cancel is heard): each handle ends
/// `Cancelled` with its reason, and no call's body runs to its end on the worker, whether its
/// job was deleted from the queue first or the cancel reached the worker running it.
#[test]
fn a_remote_task_cancelled_right_after_its_spawn_never_finishes_on_a_waiting_worker() {
    within(Duration::from_secs(90), || {
        FINISHED.lock().unwrap().clear();
        let cluster = Cluster::new("early-cancel");
        let _worker = cluster.start_worker();
        // The worker is up and taking jobs.
        let warm = cluster.submitter.spawn(counted(1000, 0));
        assert_eq!(cluster.wait(warm, Duration::from_secs(30)), Ok(2000));
        for n in 0..30 {
            let handle = cluster.submitter.spawn(slow_counted(n));
            assert!(handle.cancel("at once"), "call {n}: a fresh handle refused the cancel");
            assert_eq!(
                cluster.wait(handle, Duration::from_secs(10)),
                Err(TaskError::Cancelled(CancelReason::user("at once")))
            );
        }
        wait_until(Duration::from_secs(20), "the queue is empty", || cluster.queued() == 0);
        std::thread::sleep(Duration::from_secs(3));
        let finished = FINISHED.lock().unwrap().clone();
        assert!(
            finished.is_empty(),
            "calls cancelled right after their spawn finished: {finished:?}"
        );
        assert_eq!(cluster.backend.in_flight(), 0);
        let started: Vec<u64> = (0..30).filter(|&n| runs_of(n) > 0).collect();
        #[allow(
            clippy::print_stderr,
            reason = "how often the cancel lost the race, for --nocapture"
        )]
        {
            eprintln!(
                "{} of 30 cancelled calls were started by the worker: {started:?}",
                started.len()
            );
        }
    });
}

/// A scope's deadline cancels its remote child: the call ends here, and the cancel travels to
/// the worker running it, whose body is dropped (as for a handle's own cancel).
#[test]
fn a_scope_deadline_cancels_its_remote_child_on_the_worker() {
    within(Duration::from_secs(60), || {
        let cluster = Cluster::new("deadline");
        let _worker = cluster.start_worker();
        let outcome = cluster.submitter.block_on(klaw::cancel::move_on_after(
            Duration::from_secs(3),
            async {
                klaw::scope!(|s| {
                    s.spawn(held());
                    Ok(())
                })
            },
        ));
        assert!(outcome.is_none(), "the scope was not cut by its deadline: {outcome:?}");
        assert!(HELD_STARTED.load(Ordering::SeqCst), "the worker never ran the child");
        wait_until(Duration::from_secs(15), "the worker dropped the cancelled child", || {
            HELD_DROPPED.load(Ordering::SeqCst)
        });
        wait_until(Duration::from_secs(10), "the job left the queue", || cluster.queued() == 0);
        assert_eq!(cluster.backend.in_flight(), 0);
    });
}

/// A runtime shut down with a remote task running cancels it (the report counts it), and the
/// cancel reaches the worker: the body is dropped there, the job leaves the queue.
#[test]
fn a_submitters_shutdown_cancels_its_remote_tasks_on_their_worker() {
    within(Duration::from_secs(60), || {
        let cluster = Cluster::new("shutdown");
        let _worker = cluster.start_worker();
        let Cluster { server: _server, backend, submitter, workers: _workers, .. } = cluster;
        let handle = submitter.spawn(held());
        wait_until(Duration::from_secs(15), "the worker runs the task", || {
            HELD_STARTED.load(Ordering::SeqCst)
        });
        let report = submitter.shutdown(Duration::from_millis(200));
        assert!(handle.is_finished(), "a shut-down runtime left its remote task pending");
        assert_eq!(handle.exit_reason(), ExitReason::Cancelled, "report: {report:?}");
        wait_until(Duration::from_secs(15), "the worker dropped the task", || {
            HELD_DROPPED.load(Ordering::SeqCst)
        });
        wait_until(Duration::from_secs(10), "the job left the queue", || {
            klaw::runtime::block_on(backend.queued()).unwrap() == 0
        });
    });
}

/// A remote task's own `timeout` fires on the worker: the call ends `TimedOut` here, the body
/// is dropped there, and the job is settled (not delivered again to time out again).
#[test]
fn a_remote_tasks_timeout_is_timed_out_here_and_runs_once() {
    within(Duration::from_secs(60), || {
        let cluster = Cluster::new("timeout");
        let _worker = cluster.start_worker();
        let handle = cluster.submitter.spawn(too_slow(7));
        match cluster.wait(handle, Duration::from_secs(20)) {
            Err(TaskError::TimedOut(after)) => assert_eq!(after, Duration::from_millis(300)),
            other => panic!("expected TimedOut(300ms), got {other:?}"),
        }
        assert_eq!(TIMED_DROPPED.load(Ordering::SeqCst), 1, "the body was not dropped");
        wait_until(Duration::from_secs(10), "the job left the queue", || cluster.queued() == 0);
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(runs_of(7), 1, "a timed-out job was run again");
    });
}

/// The first terminal state wins: a call that returned is never reported cancelled, by a
/// cancel after its outcome.
#[test]
fn a_completed_remote_call_is_never_reported_cancelled() {
    within(Duration::from_secs(60), || {
        let cluster = Cluster::new("completed");
        let _worker = cluster.start_worker();
        let handle = cluster.submitter.spawn(counted(3, 0));
        wait_until(Duration::from_secs(20), "the call has its outcome", || handle.is_finished());
        assert!(!handle.cancel("too late"), "a finished handle accepted a cancel");
        assert_eq!(handle.exit_reason(), ExitReason::Success);
        assert_eq!(cluster.wait(handle, Duration::from_secs(5)), Ok(6));
        assert_eq!(runs_of(3), 1);
    });
}

/// A cancel racing the outcome: each call ends once, with its outcome or `Cancelled` with the
/// reason given, never anything else, never a hang; nothing is left waiting.
#[test]
fn a_cancel_racing_the_outcome_ends_each_call_once_with_one_or_the_other() {
    within(Duration::from_secs(90), || {
        let cluster = Cluster::new("race");
        let _worker = cluster.start_worker();
        let (mut returned, mut cancelled) = (0, 0);
        for n in 0..20u64 {
            let handle = cluster.submitter.spawn(counted(n, 20));
            std::thread::sleep(Duration::from_millis(n * 7 % 60));
            let accepted = handle.cancel("race");
            match cluster.wait(handle, Duration::from_secs(20)) {
                Ok(v) => {
                    assert!(!accepted, "call {n}: the cancel was accepted, yet it returned");
                    assert_eq!(v, 2 * n);
                    returned += 1;
                }
                Err(TaskError::Cancelled(reason)) => {
                    assert!(accepted, "call {n}: cancelled although the cancel was refused");
                    assert_eq!(reason, CancelReason::user("race"));
                    cancelled += 1;
                }
                Err(other) => panic!("call {n}: neither outcome nor Cancelled: {other:?}"),
            }
        }
        assert_eq!(returned + cancelled, 20);
        wait_until(Duration::from_secs(10), "nothing is left waiting", || {
            cluster.backend.in_flight() == 0
        });
        wait_until(Duration::from_secs(20), "the queue is empty", || cluster.queued() == 0);
    });
}

/// A handle whose outcome cannot arrive ends with a typed error within the documented bound:
/// a job removed from the queue before any worker took it (an operator deleted it) has no
/// outcome to read, and the next sweep (every `SWEEP_EVERY`) ends its handle.
#[test]
fn a_job_removed_from_the_queue_ends_its_handle_with_a_typed_error_within_the_sweep() {
    within(Duration::from_secs(60), || {
        let cluster = Cluster::new("removed");
        let handle = cluster.submitter.spawn(counted(9, 0));
        wait_until(Duration::from_secs(10), "the job is queued", || cluster.queued() == 1);
        let stream = cluster.config.jobs_stream();
        klaw::runtime::block_on(async_compat::Compat::new(async {
            let client = async_nats::connect(&cluster.server.url).await.unwrap();
            let jetstream = async_nats::jetstream::new(client);
            let jobs = jetstream.get_stream(stream).await.unwrap();
            jobs.purge().await.unwrap();
        }));
        let removed = Instant::now();
        let bound = klaw_nats::SWEEP_EVERY + Duration::from_secs(5);
        let result = cluster.wait(handle, bound);
        match &result {
            Err(TaskError::Remote(error)) => {
                assert!(
                    matches!(
                        **error,
                        RemoteError::OutcomeExpired { .. } | RemoteError::Transport(_)
                    ),
                    "{error:?}"
                );
            }
            other => panic!("expected a typed remote error, got {other:?}"),
        }
        assert!(removed.elapsed() <= bound);
        assert_eq!(cluster.backend.in_flight(), 0);
        assert_eq!(runs_of(9), 0);
    });
}

/// A job whose cancel marker the worker cannot read (here its bucket is gone) does not run
/// until the read is answered: its submitter may have cancelled it. Once the bucket is back,
/// the job runs once and its handle gets its value.
#[test]
fn a_job_runs_only_once_its_cancel_marker_could_be_read() {
    within(Duration::from_secs(60), || {
        let cluster = Cluster::new("unread-marker");
        let _worker = cluster.start_worker();
        // A first call, so the worker is surely running (a worker that starts without its
        // cancel bucket does not start) before the bucket goes.
        assert_eq!(
            cluster.wait(cluster.submitter.spawn(counted(10, 0)), Duration::from_secs(20)),
            Ok(20)
        );
        // The namespace's cancel bucket, as `NatsConfig::namespace` names it.
        let bucket = "unread-marker_cancel";
        let operator = |remove: bool| {
            klaw::runtime::block_on(async_compat::Compat::new(async {
                let client = async_nats::connect(&cluster.server.url).await.unwrap();
                let jetstream = async_nats::jetstream::new(client);
                if remove {
                    jetstream.delete_key_value(bucket).await.unwrap();
                } else {
                    let config = async_nats::jetstream::kv::Config {
                        bucket: bucket.to_owned(),
                        history: 1,
                        ..Default::default()
                    };
                    jetstream.create_key_value(config).await.unwrap();
                }
            }));
        };
        operator(true);
        let handle = cluster.submitter.spawn(counted(11, 0));
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(runs_of(11), 0, "the job ran before its cancel marker could be read");
        operator(false);
        assert_eq!(cluster.wait(handle, Duration::from_secs(20)), Ok(22));
        assert_eq!(runs_of(11), 1);
    });
}

/// A job whose cancel marker can never be read (the bucket stays gone) does not hold the
/// worker for ever: after an ack wait of failed reads it goes back to the queue, and after
/// `max_deliver` deliveries its handle ends with `MaxDeliveries`, the job never run.
#[test]
fn a_job_whose_cancel_marker_stays_unreadable_ends_in_max_deliveries_unrun() {
    within(Duration::from_secs(60), || {
        let cluster = Cluster::configured("unreadable-marker", |mut config| {
            config.ack_wait = Duration::from_millis(600);
            config.max_deliver(2)
        });
        let _worker = cluster.start_worker();
        assert_eq!(
            cluster.wait(cluster.submitter.spawn(counted(12, 0)), Duration::from_secs(20)),
            Ok(24)
        );
        klaw::runtime::block_on(async_compat::Compat::new(async {
            let client = async_nats::connect(&cluster.server.url).await.unwrap();
            async_nats::jetstream::new(client)
                .delete_key_value("unreadable-marker_cancel")
                .await
                .unwrap();
        }));
        let result = cluster.wait(cluster.submitter.spawn(counted(13, 0)), Duration::from_secs(30));
        match result {
            Err(TaskError::Remote(error)) => {
                assert!(matches!(*error, RemoteError::MaxDeliveries { .. }), "{error:?}");
            }
            other => panic!("expected MaxDeliveries, got {other:?}"),
        }
        assert_eq!(runs_of(13), 0, "a job whose cancel marker was never read ran");
    });
}

static BLOCKING_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Computes for `millis` without an `.await`: it blocks its worker thread meanwhile.
#[klaw::task(remote)]
async fn blocks_its_thread(millis: u64) -> u64 {
    BLOCKING_RUNS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

/// A body that blocks its thread for four ack waits still keeps its job: the claim is renewed
/// from elsewhere than the body's thread, so the server does not hand the job to another
/// thread or worker, and the task runs once.
#[test]
fn a_body_that_blocks_its_thread_past_the_ack_wait_runs_once() {
    within(Duration::from_secs(60), || {
        BLOCKING_RUNS.store(0, Ordering::SeqCst);
        let cluster = Cluster::configured("blocking-body", |mut config| {
            config.ack_wait = Duration::from_millis(500);
            config
        });
        let _worker = cluster.start_worker();
        let handle = cluster.submitter.spawn(blocks_its_thread(2_000));
        assert_eq!(cluster.wait(handle, Duration::from_secs(30)), Ok(2_000));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            BLOCKING_RUNS.load(Ordering::SeqCst),
            1,
            "the job was delivered again while it ran"
        );
    });
}

/// A `.creds` file that does not hold what it should: a typed `Config` error that shows
/// neither the JWT nor the seed it holds, whether the file was set in the config or the
/// environment; and its setting is the one the user set (`NatsConfig::auth` when set there).
#[test]
fn a_bad_creds_file_is_a_config_error_that_shows_none_of_its_content() {
    within(Duration::from_secs(30), || {
        let server = NatsServer::start();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.creds");
        let seed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
        let jwt_part = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.not-a-claim";
        std::fs::write(
            &path,
            format!(
                "-----BEGIN NATS USER JWT-----\n{jwt_part}\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{seed}x\n------END USER NKEY SEED------\n"
            ),
        )
        .unwrap();
        let config = server.config().auth(NatsAuth::CredsFile(path.clone()));
        assert!(!format!("{config:?}").contains(seed));
        let error = klaw::runtime::block_on(klaw_nats::Nats::connect(config)).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(seed) && !shown.contains(jwt_part), "{shown}");
        let boxed: klaw::Error = error.into();
        let shown = format!("{boxed} {boxed:?}");
        assert!(!shown.contains(seed) && !shown.contains(jwt_part), "{shown}");
        let missing = server.config().auth(NatsAuth::CredsFile(dir.path().join("none.creds")));
        let error = klaw::runtime::block_on(NatsBackend::connect(missing)).unwrap_err();
        match &error {
            NatsError::Config { setting, expected, .. } => {
                assert!(
                    setting.contains("NatsConfig"),
                    "a creds file set in the config is reported as {setting}: {error}"
                );
                assert!(expected.contains("readable"), "a missing file is not said so: {error}");
            }
            other => panic!("a missing creds file should be a Config error, got {other}"),
        }
    });
}

/// `replay` and `remove` of a dead letter that does not exist are typed errors, not panics.
#[test]
fn replaying_or_removing_a_dead_letter_that_is_not_there_is_a_typed_error() {
    within(Duration::from_secs(30), || {
        let server = NatsServer::start();
        let config = server.config().namespace("letters");
        let letters = klaw::runtime::block_on(klaw_nats::DeadLetters::open(config)).unwrap();
        assert!(klaw::runtime::block_on(letters.list()).unwrap().is_empty());
        let replayed = klaw::runtime::block_on(letters.replay(42));
        assert!(matches!(replayed, Err(NatsError::JetStream { .. })), "{replayed:?}");
        let removed = klaw::runtime::block_on(letters.remove(42));
        assert!(matches!(removed, Err(NatsError::JetStream { .. })), "{removed:?}");
    });
}

/// A worker in another process that is cut off from the server mid-task (its connection
/// gone, as in a partition): the call is not lost; another worker runs the job once the claim
/// lapses, and the call gets an outcome.
#[test]
fn a_worker_cut_off_mid_task_does_not_lose_the_call() {
    within(Duration::from_secs(90), || {
        let server = NatsServer::start();
        let config = server.config().namespace("partition").ack_wait(Duration::from_secs(2));
        let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
        let submitter =
            Runtime::builder().workers(1).backend(Arc::new(backend.clone())).build().unwrap();
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        let proxy = common::Proxy::to(common::port_of(&server.url));
        let cut_config =
            NatsConfig::new(proxy.url()).namespace("partition").ack_wait(Duration::from_secs(2));
        let first = klaw::runtime::block_on(Worker::connect(cut_config)).unwrap().concurrency(1);
        let _first = workers.spawn(first.run());
        let handle = submitter.spawn(counted(5, 6000));
        wait_until(Duration::from_secs(20), "the first worker runs the job", || runs_of(5) == 1);
        proxy.cut();
        let second = klaw::runtime::block_on(Worker::connect(config)).unwrap().concurrency(1);
        let _second = workers.spawn(second.run());
        let result = submitter
            .block_on(klaw::cancel::fail_after(Duration::from_secs(60), handle))
            .expect("the call resolved");
        assert_eq!(result, Ok(10));
        assert!(runs_of(5) >= 2, "the job was not run again by the second worker");
        proxy.heal();
    });
}

/// A job that runs out of deliveries while its submitter is cut off, with no worker there to
/// hear of it either: the server's advisory of it goes out on core NATS, which nobody then
/// reads. Once the submitter is back, its handle still ends with `MaxDeliveries`, and the job
/// is in the dead letters and out of the queue (the server keeps the advisory in the
/// exhausted stream, which the submitter reads when it is back). Before, the job stayed in the
/// queue, nobody ever buried it, and the handle waited for ever.
#[test]
fn a_job_out_of_deliveries_while_nobody_listened_still_ends_its_handle() {
    use async_nats::jetstream::consumer;
    within(Duration::from_secs(90), || {
        let server = NatsServer::start();
        let proxy = common::Proxy::to(common::port_of(&server.url));
        let namespace = "unheard";
        let configure = |mut config: NatsConfig| {
            config.ack_wait = Duration::from_millis(400);
            config.max_deliver(2)
        };
        let config = configure(NatsConfig::new(proxy.url()).namespace(namespace));
        let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
        let submitter = Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap();
        let (direct, jetstream) = klaw::runtime::block_on(async_compat::Compat::new(async {
            let direct = async_nats::connect(&server.url).await.unwrap();
            (direct.clone(), async_nats::jetstream::new(direct))
        }));
        // A worker that takes the job and dies holding it, each time: a consumer as klaw's
        // workers share, read by hand, never acknowledged.
        let jobs_stream = config.jobs_stream();
        let workers_consumer = format!("{namespace}_workers");
        let (dying_worker, mut advisories) =
            klaw::runtime::block_on(async_compat::Compat::new(async {
                let stream = jetstream.get_stream(&jobs_stream).await.unwrap();
                let dying_worker = stream
                    .get_or_create_consumer(
                        &workers_consumer,
                        consumer::pull::Config {
                            durable_name: Some(workers_consumer.clone()),
                            ack_policy: consumer::AckPolicy::Explicit,
                            ack_wait: config.ack_wait,
                            max_deliver: 2,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                let subject = format!(
                    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{jobs_stream}.{workers_consumer}"
                );
                (dying_worker, direct.subscribe(subject).await.unwrap())
            }));
        let handle = submitter.spawn(counted(31, 0));
        wait_until(Duration::from_secs(20), "the job is queued", || {
            let info = klaw::runtime::block_on(async_compat::Compat::new(async {
                jetstream
                    .get_stream(&jobs_stream)
                    .await
                    .unwrap()
                    .info()
                    .await
                    .unwrap()
                    .state
                    .messages
            }));
            info == 1
        });
        proxy.cut();
        klaw::runtime::block_on(async_compat::Compat::new(async {
            use futures_util::StreamExt;
            // The server says so, to nobody listening but this test.
            common::take_until_out_of_deliveries(&dying_worker, 2, Duration::from_millis(600))
                .await;
            let advisory = tokio::time::timeout(Duration::from_secs(20), advisories.next()).await;
            assert!(matches!(advisory, Ok(Some(_))), "the server sent no advisory");
        }));
        proxy.heal();
        let outcome = submitter.block_on(klaw::cancel::fail_after(Duration::from_secs(30), handle));
        match outcome {
            Ok(Err(TaskError::Remote(error))) => {
                assert!(matches!(*error, RemoteError::MaxDeliveries { .. }), "{error:?}");
            }
            other => panic!("expected MaxDeliveries, got {other:?}"),
        }
        let (queued, dead) = klaw::runtime::block_on(async_compat::Compat::new(async {
            let count = |name: String| {
                let jetstream = jetstream.clone();
                async move {
                    jetstream.get_stream(name).await.unwrap().info().await.unwrap().state.messages
                }
            };
            (count(jobs_stream.clone()).await, count(config.dead_letters_stream()).await)
        }));
        assert_eq!(
            (queued, dead),
            (0, 1),
            "the job is not out of the queue and in the dead letters"
        );
        assert_eq!(runs_of(31), 0);
    });
}

static GAUGE_NOW: AtomicUsize = AtomicUsize::new(0);
static GAUGE_MOST: AtomicUsize = AtomicUsize::new(0);

/// Counts itself among the bodies running now for 300 ms, and records the most seen at once.
#[klaw::task(remote)]
async fn gauged(n: u64) -> u64 {
    let now = GAUGE_NOW.fetch_add(1, Ordering::SeqCst) + 1;
    GAUGE_MOST.fetch_max(now, Ordering::SeqCst);
    klaw::time::sleep(Duration::from_millis(300)).await;
    GAUGE_NOW.fetch_sub(1, Ordering::SeqCst);
    n
}

/// A worker runs at most `concurrency` jobs at once: a job's place is taken when the job is
/// taken from the queue (before its cancel marker is read, on the connection's runtime) and
/// freed only once the job is settled, after its body ran on a klaw worker. With six jobs
/// queued at once and room for two, two run side by side, never three, and every call ends.
#[test]
fn a_worker_runs_at_most_its_concurrency_of_jobs_at_once() {
    within(Duration::from_secs(60), || {
        let cluster = Cluster::new("gauge");
        let worker = klaw::runtime::block_on(Worker::connect(cluster.config.clone()))
            .unwrap()
            .concurrency(2);
        let handles: Vec<_> = (0..6).map(|n| cluster.submitter.spawn(gauged(n))).collect();
        let _worker = cluster.workers.spawn(worker.run());
        for (n, handle) in (0..6).zip(handles) {
            assert_eq!(cluster.wait(handle, Duration::from_secs(30)), Ok(n));
        }
        assert_eq!(GAUGE_MOST.load(Ordering::SeqCst), 2, "the most jobs run at once");
    });
}
