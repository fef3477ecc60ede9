//! Fault probes: a reviewer's scenarios that the other test files do not run. The server is
//! killed and started again (same port, same store) while a call waits, while a worker runs a
//! job, while a channel has messages in flight; a worker is shut down mid-job; a cancel is sent
//! while the server is away; many calls cross a restart; a job's outcome is too large; a
//! receiver holds a message past the ack wait; credentials of every kind are set and looked
//! for in every `Debug`, error and log line; bad TLS, NKey and URL settings.
//!
//! Every probe runs under a watchdog (`probe`): a hang fails it instead of blocking. No probe
//! asserts on how long something took.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{HELD_DROPPED, HELD_STARTED, NatsServer, held_until_cancelled, wait_until};
use klaw::remote::{RemoteBackend, RemoteError, RemoteJob, WireOutcome};
use klaw::{CancelReason, Runtime, TaskError, TaskHandle};
use klaw_nats::channel::TrySendError;
use klaw_nats::{NatsAuth, NatsBackend, NatsConfig, NatsError, NatsTls, Secret, Worker};

// ---------------------------------------------------------------------------------------------
// The watchdog, and a cluster in this process.

/// Runs `body` on its own thread and fails the test if it has not ended within `limit` (a
/// hang), or with the body's own panic. One probe at a time in this process, each starting
/// from cleared counts: they count runs in statics shared by their tasks, and each restarts
/// servers and loads the machine, so under `cargo test` (which runs a file's tests on several
/// threads, in one process) they would see each other's runs and time out on each other's
/// load. (nextest runs each in its own process.)
fn probe(limit: Duration, body: impl FnOnce() + Send + 'static) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // What the probe before counted is not this one's.
    RUNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    for flag in [&HELD_STARTED, &HELD_DROPPED, &CANCELLED_RAN] {
        flag.store(false, Ordering::SeqCst);
    }
    common::watchdog(limit, body);
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
    fn new(config: impl FnOnce(NatsConfig) -> NatsConfig) -> Self {
        let server = NatsServer::start();
        let config = config(server.config());
        let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
        let submitter =
            Runtime::builder().workers(1).backend(Arc::new(backend.clone())).build().unwrap();
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        Self { server, config, backend, submitter, workers }
    }

    /// Starts a worker in this process; cancel the handle to shut it down.
    fn start_worker(&self, concurrency: usize) -> TaskHandle<Result<(), klaw::Error>> {
        let worker = klaw::runtime::block_on(Worker::connect(self.config.clone()))
            .unwrap()
            .concurrency(concurrency);
        self.workers.spawn(worker.run())
    }

    /// Jobs in the queue, once the server answers (it may be recovering from a restart).
    fn queued(&self) -> u64 {
        let mut last = None;
        for _ in 0..200 {
            match klaw::runtime::block_on(self.backend.queued()) {
                Ok(queued) => return queued,
                Err(error) => last = Some(error),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the jobs stream could not be read: {last:?}");
    }

    /// Kills the server, keeps it down for `down`, starts it again (same port and store).
    fn restart_after(&mut self, down: Duration) {
        self.server.stop();
        std::thread::sleep(down);
        self.server.restart();
    }

    /// Waits for `handle` on the submitter, at most `limit` (a typed `Elapsed` otherwise).
    fn wait<T: Send + 'static>(
        &self,
        handle: TaskHandle<T>,
        limit: Duration,
    ) -> Result<Result<T, TaskError>, klaw::time::Elapsed> {
        self.submitter.block_on(klaw::cancel::fail_after(limit, handle))
    }
}

/// How many times each argument ran, on any worker of this process.
static RUNS: Mutex<BTreeMap<u64, u32>> = Mutex::new(BTreeMap::new());

fn runs_of(n: u64) -> u32 {
    RUNS.lock().unwrap().get(&n).copied().unwrap_or(0)
}

fn total_runs() -> u32 {
    RUNS.lock().unwrap().values().sum()
}

/// Counts a run of `n`, works `millis`, returns `2n`.
#[klaw::task(remote)]
async fn counted(n: u64, millis: u64) -> u64 {
    *RUNS.lock().unwrap().entry(n).or_default() += 1;
    klaw::time::sleep(Duration::from_millis(millis)).await;
    2 * n
}

static CANCELLED_RAN: AtomicBool = AtomicBool::new(false);

/// Says that it ran: a job cancelled before any worker took it must never run.
#[klaw::task(remote)]
async fn must_not_run() {
    CANCELLED_RAN.store(true, Ordering::SeqCst);
}

/// An outcome larger than the server's `max_payload` (1 MiB by default).
#[klaw::task(remote)]
async fn too_large_outcome(n: u64) -> Vec<u8> {
    *RUNS.lock().unwrap().entry(n).or_default() += 1;
    vec![7_u8; 2 << 20]
}

fn is_typed_remote_error<T>(result: &Result<T, TaskError>) -> bool {
    matches!(result, Err(TaskError::Remote(_)))
}

// ---------------------------------------------------------------------------------------------
// Remote tasks across a server restart.

/// The server is down for 2 s (less than the client's 5 s acknowledgement wait) while a worker
/// runs a 3 s job: the call gets its outcome, and the worker and the submitter go on serving.
#[test]
fn a_call_waiting_across_a_short_server_restart_gets_its_outcome() {
    probe(Duration::from_secs(120), || {
        let mut cluster = Cluster::new(|c| c.namespace("short"));
        let worker = cluster.start_worker(4);
        let handle = cluster.submitter.spawn(counted(1, 3000));
        wait_until(Duration::from_secs(20), "the worker runs the job", || runs_of(1) == 1);
        cluster.restart_after(Duration::from_secs(2));
        let result = cluster.wait(handle, Duration::from_secs(60)).expect("the call resolved");
        assert_eq!(result, Ok(2), "the outcome of a job that ran across a restart");
        assert!(!worker.is_finished(), "the worker stopped on a short restart");
        let after = cluster.submitter.spawn(counted(2, 0));
        let after = cluster.wait(after, Duration::from_secs(60)).expect("a later call resolved");
        assert_eq!(after, Ok(4));
        assert_eq!(cluster.backend.in_flight(), 0);
    });
}

/// The server is down for 7 s, longer than the client's 5 s acknowledgement wait, while a worker
/// runs a 1 s job (it ends while the server is away and its outcome cannot be stored at once).
/// At least once is documented, so the job may run again; the call must still get its outcome,
/// and the worker must still serve.
#[test]
fn a_call_whose_job_ends_while_the_server_is_down_gets_its_outcome() {
    probe(Duration::from_secs(150), || {
        let mut cluster = Cluster::new(|c| c.namespace("long"));
        let worker = cluster.start_worker(4);
        let handle = cluster.submitter.spawn(counted(1, 1000));
        wait_until(Duration::from_secs(20), "the worker runs the job", || runs_of(1) == 1);
        cluster.restart_after(Duration::from_secs(7));
        let result = cluster.wait(handle, Duration::from_secs(90)).expect("the call resolved");
        assert_eq!(result, Ok(2), "the outcome of a job that ended while the server was away");
        assert!(!worker.is_finished(), "the worker stopped: {:?}", {
            let rt = &cluster.workers;
            rt.block_on(worker)
        });
        let after = cluster.submitter.spawn(counted(2, 0));
        let after = cluster.wait(after, Duration::from_secs(60)).expect("a later call resolved");
        assert_eq!(after, Ok(4));
    });
}

/// A worker idle through a long restart (7 s) still takes the jobs submitted after it.
#[test]
fn an_idle_worker_serves_again_after_a_long_server_restart() {
    probe(Duration::from_secs(120), || {
        let mut cluster = Cluster::new(|c| c.namespace("idle"));
        let worker = cluster.start_worker(4);
        let warm = cluster.submitter.spawn(counted(1, 0));
        assert_eq!(cluster.wait(warm, Duration::from_secs(30)).unwrap(), Ok(2));
        cluster.restart_after(Duration::from_secs(7));
        // Until the server is back for the submitter too.
        let _ = cluster.queued();
        let after = cluster.submitter.spawn(counted(2, 0));
        let result = cluster.wait(after, Duration::from_secs(60));
        let finished = worker.is_finished();
        let why = finished.then(|| cluster.workers.block_on(worker));
        assert!(!finished, "Worker::run ended on a server restart: {why:?}");
        assert_eq!(result.expect("the call after the restart resolved"), Ok(4));
    });
}

/// Calls submitted while the server is down for 7 s: each resolves, and one reported as failed
/// (the job could not be published) must not run anyway once the server is back.
#[test]
fn a_call_reported_failed_while_the_server_was_down_never_runs() {
    probe(Duration::from_secs(150), || {
        let mut cluster = Cluster::new(|c| c.namespace("ghost"));
        let _worker = cluster.start_worker(4);
        let warm = cluster.submitter.spawn(counted(100, 0));
        assert_eq!(cluster.wait(warm, Duration::from_secs(30)).unwrap(), Ok(200));
        cluster.server.stop();
        let handles: Vec<_> = (1..=3).map(|n| cluster.submitter.spawn(counted(n, 0))).collect();
        std::thread::sleep(Duration::from_secs(7));
        cluster.server.restart();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| cluster.wait(h, Duration::from_secs(60)).expect("every call resolved"))
            .collect();
        // Let whatever the client still held reach the server and a worker.
        let _ = cluster.queued();
        wait_until(Duration::from_secs(30), "the queue is empty", || cluster.queued() == 0);
        std::thread::sleep(Duration::from_secs(2));
        let mut ghosts = Vec::new();
        for (n, result) in (1..=3).zip(&results) {
            match result {
                Ok(value) => {
                    assert_eq!(*value, 2 * n);
                    assert!(runs_of(n) >= 1);
                }
                Err(TaskError::Remote(_)) if runs_of(n) > 0 => {
                    ghosts.push((n, format!("{result:?}")))
                }
                Err(TaskError::Remote(_)) => {}
                other => panic!("call {n}: neither an outcome nor a typed error: {other:?}"),
            }
        }
        assert!(
            ghosts.is_empty(),
            "calls that ended with an error ran anyway once the server was back: {ghosts:?}"
        );
    });
}

/// Forty calls in flight (queued, running, finishing) across a 3 s restart: every one resolves,
/// with its own outcome or a typed error; none hangs; the submitter waits for nothing after.
#[test]
fn many_calls_across_a_restart_each_resolve_with_their_outcome_or_a_typed_error() {
    probe(Duration::from_secs(180), || {
        many_calls_across_a_restart("many", Duration::from_secs(3), Duration::from_secs(90));
    });
}

/// Forty calls of various lengths; the server goes down for `down` once some ran: each call
/// resolves within `wait` with its own outcome or a typed error, and none is left in flight.
fn many_calls_across_a_restart(namespace: &'static str, down: Duration, wait: Duration) {
    let mut cluster = Cluster::new(|c| c.namespace(namespace));
    let _worker = cluster.start_worker(8);
    let calls = 40_u64;
    let handles: Vec<_> =
        (1..=calls).map(|n| cluster.submitter.spawn(counted(n, 200 + (n * 37) % 1300))).collect();
    wait_until(Duration::from_secs(20), "some jobs ran", || total_runs() >= 4);
    cluster.restart_after(down);
    let mut failed = Vec::new();
    for (n, handle) in (1..=calls).zip(handles) {
        match cluster.wait(handle, wait) {
            Err(elapsed) => panic!("call {n} hung: {elapsed}"),
            Ok(Ok(value)) => assert_eq!(value, 2 * n, "call {n} got another call's outcome"),
            Ok(other) if is_typed_remote_error(&other) => failed.push((n, other)),
            Ok(other) => panic!("call {n}: neither an outcome nor a typed error: {other:?}"),
        }
    }
    assert_eq!(cluster.backend.in_flight(), 0, "the submitter still waits for replies");
    #[allow(clippy::print_stderr, reason = "the failures, for --nocapture")]
    {
        eprintln!("{} of {calls} calls ended with a typed error: {failed:?}", failed.len());
    }
}

/// A worker shut down (its `run` cancelled) while it runs a job hands the job back: another
/// worker runs it, and the submitter gets that outcome, not `Cancelled`.
#[test]
fn a_worker_shut_down_mid_job_hands_it_back_and_the_call_gets_the_outcome() {
    probe(Duration::from_secs(120), || {
        let cluster = Cluster::new(|c| c.namespace("shutdown").ack_wait(Duration::from_secs(2)));
        let first = cluster.start_worker(4);
        let handle = cluster.submitter.spawn(counted(1, 3000));
        wait_until(Duration::from_secs(20), "the first worker runs the job", || runs_of(1) == 1);
        assert!(first.cancel("shutting down"));
        let stopped =
            cluster.workers.block_on(klaw::cancel::fail_after(Duration::from_secs(30), first));
        assert!(stopped.is_ok(), "the worker's run did not end once cancelled");
        assert!(!handle.is_finished(), "the call was decided by a worker's shutdown");
        let _second = cluster.start_worker(4);
        let result = cluster.wait(handle, Duration::from_secs(60)).expect("the call resolved");
        assert_eq!(result, Ok(2), "the call should get the outcome of the second run");
        assert_eq!(runs_of(1), 2, "one run per worker");
    });
}

/// A task whose outcome is larger than the server accepts: the call ends with a typed error,
/// and the task is not run again and again for an outcome that can never be sent.
#[test]
fn an_outcome_too_large_for_the_server_is_reported_and_not_run_again() {
    probe(Duration::from_secs(120), || {
        let cluster = Cluster::new(|c| c.namespace("large").max_deliver(3));
        let _worker = cluster.start_worker(4);
        let handle = cluster.submitter.spawn(too_large_outcome(1));
        let result = cluster.wait(handle, Duration::from_secs(90)).expect("the call resolved");
        assert!(is_typed_remote_error(&result), "{:?}", result.as_ref().map(Vec::len));
        let runs = runs_of(1);
        assert_eq!(
            runs,
            1,
            "the task ran {runs} times for one call; it ended with {result:?}",
            result = result.as_ref().map(Vec::len)
        );
    });
}

/// The job still queued when its cancel is sent with the server down (for longer than the
/// client waits for an acknowledgement): once the server is back, no worker runs it.
#[test]
fn a_cancel_sent_while_the_server_is_down_keeps_a_queued_job_from_running() {
    probe(Duration::from_secs(150), || {
        let mut cluster = Cluster::new(|c| c.namespace("cancel-down"));
        let handle = cluster.submitter.spawn(must_not_run());
        wait_until(Duration::from_secs(20), "the job is queued", || cluster.queued() == 1);
        cluster.server.stop();
        assert!(handle.cancel("cancelled while the server was away"));
        let result = cluster.wait(handle, Duration::from_secs(30)).expect("decided here");
        assert_eq!(
            result,
            Err(TaskError::Cancelled(CancelReason::user("cancelled while the server was away")))
        );
        std::thread::sleep(Duration::from_secs(7));
        cluster.server.restart();
        let _ = cluster.queued();
        std::thread::sleep(Duration::from_secs(2));
        let _worker = cluster.start_worker(4);
        wait_until(Duration::from_secs(30), "the queue is empty", || cluster.queued() == 0);
        std::thread::sleep(Duration::from_secs(1));
        assert!(!CANCELLED_RAN.load(Ordering::SeqCst), "a job cancelled while queued ran");
    });
}

/// The job running when its cancel is sent with the server down: once the server is back, the
/// worker cancels it (the cancel reaches the worker).
#[test]
fn a_cancel_sent_while_the_server_is_down_reaches_the_running_job() {
    probe(Duration::from_secs(150), || {
        let mut cluster = Cluster::new(|c| c.namespace("cancel-run"));
        let _worker = cluster.start_worker(4);
        let handle = cluster.submitter.spawn(held_until_cancelled());
        wait_until(Duration::from_secs(20), "the worker runs the job", || {
            HELD_STARTED.load(Ordering::SeqCst)
        });
        cluster.server.stop();
        assert!(handle.cancel("stop it"));
        let result = cluster.wait(handle, Duration::from_secs(30)).expect("decided here");
        assert_eq!(result, Err(TaskError::Cancelled(CancelReason::user("stop it"))));
        std::thread::sleep(Duration::from_secs(7));
        cluster.server.restart();
        wait_until(Duration::from_secs(60), "the worker dropped the cancelled task", || {
            HELD_DROPPED.load(Ordering::SeqCst)
        });
        wait_until(Duration::from_secs(30), "the job left the queue", || cluster.queued() == 0);
    });
}

/// After a server restart, a cancel sent with the server up still reaches a worker that was
/// watching for cancels before the restart.
#[test]
fn a_cancel_reaches_the_worker_after_a_server_restart() {
    probe(Duration::from_secs(120), || {
        let mut cluster = Cluster::new(|c| c.namespace("cancel-after"));
        let _worker = cluster.start_worker(4);
        let warm = cluster.submitter.spawn(counted(1, 0));
        assert_eq!(cluster.wait(warm, Duration::from_secs(30)).unwrap(), Ok(2));
        cluster.restart_after(Duration::from_secs(3));
        let _ = cluster.queued();
        let handle = cluster.submitter.spawn(held_until_cancelled());
        wait_until(Duration::from_secs(60), "the worker runs the job", || {
            HELD_STARTED.load(Ordering::SeqCst)
        });
        assert!(handle.cancel("stop"));
        let _ = cluster.wait(handle, Duration::from_secs(30)).expect("decided here");
        wait_until(Duration::from_secs(30), "the worker dropped the cancelled task", || {
            HELD_DROPPED.load(Ordering::SeqCst)
        });
    });
}

/// A job whose arguments do not decode as its task's is refused with a typed error, once, and
/// settled (not delivered again).
#[test]
fn a_job_whose_arguments_do_not_decode_is_refused_once() {
    probe(Duration::from_secs(60), || {
        let cluster = Cluster::new(|c| c.namespace("badargs"));
        let _worker = cluster.start_worker(4);
        let task = klaw::remote::remote_tasks().find(|t| t.name().ends_with("::counted")).unwrap();
        let job = RemoteJob::new(task.name(), task.build(), b"\xc1 not msgpack".to_vec());
        let reply = klaw::runtime::block_on(cluster.backend.submit(job)).unwrap();
        match WireOutcome::decode("counted", &reply).unwrap() {
            WireOutcome::Refused(RemoteError::Arguments { .. }) => {}
            other => panic!("expected refused arguments, got {other:?}"),
        }
        wait_until(Duration::from_secs(10), "the queue is empty", || cluster.queued() == 0);
        assert_eq!(total_runs(), 0);
    });
}

/// A submitter whose runtime and backend are dropped while the server is down, with calls in
/// flight, does not hang.
#[test]
fn a_submitter_dropped_while_the_server_is_down_does_not_hang() {
    probe(Duration::from_secs(60), || {
        let mut cluster = Cluster::new(|c| c.namespace("dropped"));
        let handles: Vec<_> = (1..=3).map(|n| cluster.submitter.spawn(counted(n, 0))).collect();
        wait_until(Duration::from_secs(20), "the jobs are queued", || cluster.queued() == 3);
        cluster.server.stop();
        drop(handles);
        let Cluster { backend, submitter, .. } = cluster;
        drop(submitter);
        drop(backend);
    });
}

// ---------------------------------------------------------------------------------------------
// Distributed channels.

fn nats(config: NatsConfig) -> klaw_nats::Nats {
    klaw::runtime::block_on(klaw_nats::Nats::connect(config)).unwrap()
}

/// A receiver takes a batch from the server (prefetch) but hands out one message; it holds the
/// others past the ack wait. Another receiver must not get them too: each message goes to
/// exactly one receiver (`Nats::channel`).
#[test]
fn a_message_held_by_one_receiver_past_the_ack_wait_is_not_given_to_another() {
    probe(Duration::from_secs(60), || {
        let server = NatsServer::start();
        let config = server.config().namespace("held").ack_wait(Duration::from_millis(500));
        klaw::runtime::block_on(async move {
            let one = klaw_nats::Nats::connect(config.clone()).await.unwrap();
            let two = klaw_nats::Nats::connect(config).await.unwrap();
            let (tx, rx1) = one.channel::<u32>("held", 16).await.unwrap();
            let (_tx2, rx2) = two.channel::<u32>("held", 16).await.unwrap();
            for value in 0..5 {
                tx.send(value).await.unwrap();
            }
            let mut received = vec![rx1.try_recv().await.unwrap()];
            // rx1's caller is busy for longer than the ack wait.
            std::thread::sleep(Duration::from_secs(2));
            while let Ok(value) = rx2.try_recv().await {
                received.push(value);
            }
            while let Ok(value) = rx1.try_recv().await {
                received.push(value);
            }
            received.sort_unstable();
            assert_eq!(received, [0, 1, 2, 3, 4], "a message went to two receivers (or none)");
            drop(server);
        });
    });
}

/// Values queued when the server restarts, and values sent while it restarts: each is
/// received exactly once, none lost. Delivery is at least once (documented): a value `recv`
/// returned just before the server was killed may come again, because its acknowledgement can
/// be lost with the server (the server keeps acknowledgements on disk a moment after it takes
/// them). No other value may come twice.
#[test]
fn channel_values_in_flight_across_a_restart_arrive_exactly_once() {
    probe(Duration::from_secs(150), || {
        let mut server = NatsServer::start();
        let config = server.config().namespace("inflight").publish_retry(Duration::from_secs(30));
        let nats = nats(config);
        let (tx, rx) = klaw::runtime::block_on(nats.channel::<u32>("inflight", 64)).unwrap();
        let mut received = Vec::new();
        klaw::runtime::block_on(async {
            for value in 0..20 {
                tx.send(value).await.unwrap();
            }
            for _ in 0..3 {
                received.push(rx.recv().await.unwrap());
            }
        });
        let before_the_crash = received.clone();
        server.stop();
        let restarted = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            server.restart();
            server
        });
        klaw::runtime::block_on(async {
            for value in 20..40 {
                tx.send(value).await.unwrap();
            }
        });
        let _server = restarted.join().unwrap();
        let distinct =
            |received: &[u32]| received.iter().collect::<std::collections::BTreeSet<_>>().len();
        klaw::runtime::block_on(async {
            while distinct(&received) < 40 {
                let next = klaw::cancel::fail_after(Duration::from_secs(30), rx.recv()).await;
                match next {
                    Ok(Ok(value)) => received.push(value),
                    other => panic!("after {} values: {other:?} ({received:?})", received.len()),
                }
            }
            // Anything that would still come twice comes now.
            klaw::time::sleep(Duration::from_secs(1)).await;
            while let Ok(value) = rx.try_recv().await {
                received.push(value);
            }
        });
        received.sort_unstable();
        let mut once = received.clone();
        once.dedup();
        assert_eq!(once, (0..40).collect::<Vec<_>>(), "lost: {received:?}");
        let mut twice: Vec<u32> =
            received.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        twice.retain(|value| !before_the_crash.contains(value));
        assert!(twice.is_empty(), "values in flight came twice: {twice:?} in {received:?}");
    });
}

/// A receiver waiting (in `recv`) when the server restarts receives what is sent after.
#[test]
fn a_receiver_waiting_across_a_restart_receives_what_is_sent_after() {
    probe(Duration::from_secs(120), || {
        let mut server = NatsServer::start();
        let config = server.config().namespace("waiting").publish_retry(Duration::from_secs(30));
        let receiving = nats(config.clone());
        let sending = nats(config);
        let (_, rx) = klaw::runtime::block_on(receiving.channel::<u32>("waiting", 8)).unwrap();
        let (_, mut listener) =
            klaw::runtime::block_on(receiving.broadcast::<u32>("waiting", 8)).unwrap();
        let (tx, _) = klaw::runtime::block_on(sending.channel::<u32>("waiting", 8)).unwrap();
        let (events, _) = klaw::runtime::block_on(sending.broadcast::<u32>("waiting", 8)).unwrap();
        let rt = Runtime::builder().workers(2).local().build().unwrap();
        let mpmc = rt.spawn(async move { rx.recv().await });
        let bcast = rt.spawn(async move { listener.recv().await });
        std::thread::sleep(Duration::from_millis(500));
        server.stop();
        std::thread::sleep(Duration::from_secs(3));
        server.restart();
        klaw::runtime::block_on(async {
            tx.send(7).await.unwrap();
            events.send(8).await.unwrap();
        });
        let limit = Duration::from_secs(30);
        assert_eq!(rt.block_on(klaw::cancel::fail_after(limit, mpmc)), Ok(Ok(Ok(7))));
        assert_eq!(rt.block_on(klaw::cancel::fail_after(limit, bcast)), Ok(Ok(Ok(8))));
    });
}

/// A close that fails (the server is away) leaves no process alone in thinking the channel
/// closed: once the server is back, this process and another agree on whether it is closed.
#[test]
fn a_close_that_failed_while_the_server_was_away_is_seen_alike_by_every_process() {
    probe(Duration::from_secs(120), || {
        let mut server = NatsServer::start();
        let config = server.config().namespace("closing");
        let here = nats(config.clone());
        let there = nats(config);
        let (tx, _rx) = klaw::runtime::block_on(here.channel::<u32>("closing", 8)).unwrap();
        let (other, _orx) = klaw::runtime::block_on(there.channel::<u32>("closing", 8)).unwrap();
        server.stop();
        wait_until(Duration::from_secs(10), "the client sees the server gone", || {
            !here.is_connected()
        });
        let closed = klaw::runtime::block_on(tx.close());
        server.restart();
        wait_until(Duration::from_secs(30), "the client is back", || here.is_connected());
        std::thread::sleep(Duration::from_secs(3));
        let sent = klaw::runtime::block_on(tx.try_send(1));
        assert_eq!(
            tx.is_closed(),
            other.is_closed(),
            "close() said {closed:?}; here closed={}, there closed={}, a send here: {sent:?}",
            tx.is_closed(),
            other.is_closed()
        );
        if !other.is_closed() {
            assert!(!matches!(sent, Err(TrySendError::Closed(_))), "Closed on an open channel");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Secrets and configuration.

const PASSWORD: &str = "Pw-s3cret-9f2";
const TOKEN: &str = "Tk-s3cret-77a";

fn assert_hidden(shown: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!shown.contains(secret), "a secret appears in: {shown}");
    }
}

/// Every public type's `Debug` (and every error's `Display` and `Debug`) with credentials set,
/// from the config and from the URL, on connections that work and ones the server refuses.
#[test]
fn no_credential_appears_in_the_debug_output_of_any_type_or_error() {
    probe(Duration::from_secs(90), || {
        let server = NatsServer::start_with(&["--user", "alice", "--pass", PASSWORD]);
        let host = server.url.trim_start_matches("nats://").to_owned();
        let by_config = server
            .config()
            .auth(NatsAuth::UserPassword { user: "alice".into(), password: Secret::new(PASSWORD) });
        let by_url = NatsConfig::new(format!("nats://alice:{PASSWORD}@{host}")).namespace("test");
        let secrets = [PASSWORD, TOKEN];
        for config in [by_config, by_url] {
            assert_hidden(&format!("{config:?}"), &secrets);
            assert_hidden(&format!("{:?}", config.auth), &secrets);
            let nats = nats(config.clone());
            assert_hidden(&format!("{nats:?}"), &secrets);
            let (tx, rx) = klaw::runtime::block_on(nats.channel::<u32>("dbg", 4)).unwrap();
            assert_hidden(&format!("{tx:?} {rx:?}"), &secrets);
            let (btx, brx) = klaw::runtime::block_on(nats.broadcast::<u32>("dbg", 4)).unwrap();
            assert_hidden(&format!("{btx:?} {brx:?}"), &secrets);
            let (wtx, wrx) = klaw::runtime::block_on(nats.watch::<u32>("dbg", 0)).unwrap();
            assert_hidden(&format!("{wtx:?} {wrx:?}"), &secrets);
            let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
            assert_hidden(&format!("{backend:?}"), &secrets);
            let worker = klaw::runtime::block_on(Worker::connect(config.clone())).unwrap();
            assert_hidden(&format!("{worker:?}"), &secrets);
            let letters = klaw::runtime::block_on(klaw_nats::DeadLetters::open(config)).unwrap();
            assert_hidden(&format!("{letters:?}"), &secrets);
        }
        // Refused: a wrong password, a token the server does not take, from config and URL.
        let refused = [
            server.config().auth(NatsAuth::UserPassword {
                user: "alice".into(),
                password: Secret::new(format!("{PASSWORD}-wrong")),
            }),
            server.config().auth(NatsAuth::Token(Secret::new(TOKEN))),
            NatsConfig::new(format!("nats://alice:{PASSWORD}x@{host}")),
            NatsConfig::new(format!("nats://{TOKEN}@{host}")),
        ];
        for config in refused {
            let error = klaw::runtime::block_on(klaw_nats::Nats::connect(config)).unwrap_err();
            assert_hidden(&format!("{error} {error:?}"), &secrets);
            let boxed: klaw::Error = error.into();
            assert_hidden(&format!("{boxed} {boxed:?}"), &secrets);
        }
    });
}

/// Tokens and passwords are often base64: `/`, `+`, `=`; a comma is legal too. In a URL they
/// must still never be shown (`redact_url`, `NatsConfig`'s `Debug`, a connect error), and a
/// comma in a password must not split the URL list (which would show its first half as a URL).
#[test]
fn a_url_secret_with_a_slash_or_a_comma_is_still_hidden() {
    probe(Duration::from_secs(60), || {
        // The URL, its secret, and how `redact_url` must show it.
        let urls = [
            ("nats://AbC/dEf+gh=@127.0.0.1:1", "AbC/dEf+gh=", "nats://***@127.0.0.1:1"),
            ("nats://alice:pA/ss+w0rd=@127.0.0.1:1", "pA/ss+w0rd=", "nats://alice:***@127.0.0.1:1"),
            ("nats://alice:pa,ss-word@127.0.0.1:1", "pa,ss-word", "nats://alice:***@127.0.0.1:1"),
            ("nats://alice:pass,word-9@127.0.0.1:1", "pass,word-9", "nats://alice:***@127.0.0.1:1"),
            ("nats://alice:pw?x=1@127.0.0.1:1", "pw?x=1", "nats://alice:***@127.0.0.1:1"),
            (
                "nats://alice:pass,w/rd@127.0.0.1:1,nats://127.0.0.1:2",
                "pass,w/rd",
                "nats://alice:***@127.0.0.1:1,nats://127.0.0.1:2",
            ),
            (
                "nats://127.0.0.1:2,nats://T0k,en/x@127.0.0.1:1",
                "T0k,en/x",
                "nats://127.0.0.1:2,nats://***@127.0.0.1:1",
            ),
        ];
        let mut leaks = Vec::new();
        for (url, secret, expected) in urls {
            let redacted = klaw_nats::redact_url(url);
            if redacted != expected {
                leaks.push(format!("redact_url({url:?}) = {redacted:?}, expected {expected:?}"));
            }
            let debug = format!("{:?}", NatsConfig::new(url));
            let error = klaw::runtime::block_on(klaw_nats::Nats::connect(NatsConfig::new(url)))
                .map(|_| ())
                .unwrap_err();
            for shown in [redacted, debug, format!("{error}"), format!("{error:?}")] {
                // The secret, or its longest part around the character that broke parsing.
                let parts = secret.split([',', '/', '?']).filter(|part| part.len() >= 3);
                if shown.contains(secret) || parts.into_iter().any(|part| shown.contains(part)) {
                    leaks.push(shown);
                }
            }
        }
        assert!(leaks.is_empty(), "secrets shown, or URLs split wrongly: {leaks:#?}");
    });
}

/// No secret in any log line (klaw's or the client's) while connecting with credentials from
/// the config, being refused, and living through a server restart.
#[test]
fn no_credential_appears_in_a_log_line_of_connects_refusals_and_reconnects() {
    probe(Duration::from_secs(120), || {
        klaw::log::LogConfig::default().filter("trace").without_output().init().unwrap();
        let logged = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = logged.clone();
        let hook = klaw::log::add_hook(move |event| {
            let mut line = event.message.clone();
            for (name, value) in &event.fields {
                line.push_str(&format!(" {name}={value}"));
            }
            sink.lock().unwrap().push(line);
        });
        let mut server = NatsServer::start_with(&["--user", "alice", "--pass", PASSWORD]);
        let host = server.url.trim_start_matches("nats://").to_owned();
        let good = server
            .config()
            .auth(NatsAuth::UserPassword { user: "alice".into(), password: Secret::new(PASSWORD) });
        let nats = nats(good.clone());
        let backend = klaw::runtime::block_on(NatsBackend::connect(good)).unwrap();
        let _ = klaw::runtime::block_on(klaw_nats::Nats::connect(NatsConfig::new(format!(
            "nats://alice:{PASSWORD}-x@{host}"
        ))));
        let _ = klaw::runtime::block_on(klaw_nats::Nats::connect(
            server.config().auth(NatsAuth::Token(Secret::new(TOKEN))),
        ));
        server.stop();
        std::thread::sleep(Duration::from_secs(1));
        server.restart();
        wait_until(Duration::from_secs(30), "the client is back", || nats.is_connected());
        let _ = klaw::runtime::block_on(backend.queued());
        assert!(klaw::log::remove_hook(hook));
        let logged = logged.lock().unwrap();
        assert!(!logged.is_empty(), "the hook heard nothing: is the client's logging wired?");
        let leaks: Vec<_> =
            logged.iter().filter(|l| l.contains(PASSWORD) || l.contains(TOKEN)).collect();
        assert!(leaks.is_empty(), "{leaks:#?}");
    });
}

/// A malformed NKey seed: the error never shows the seed, and is a typed `Config` error that
/// names the setting (not "could not connect ... is nats-server running there?").
#[test]
fn a_malformed_nkey_seed_is_a_config_error_that_does_not_show_it() {
    probe(Duration::from_secs(60), || {
        let server = NatsServer::start();
        let seed = "SUAMNOTAVALIDSEEDATALLXYZ";
        let config = server.config().auth(NatsAuth::NKey(Secret::new(seed)));
        let error = klaw::runtime::block_on(klaw_nats::Nats::connect(config)).unwrap_err();
        assert_hidden(&format!("{error} {error:?}"), &[seed, &seed[2..]]);
        assert!(
            matches!(&error, NatsError::Config { setting, .. } if setting.contains("NKEY") || setting.contains("auth")),
            "a bad seed should be a Config error naming the NKey setting, got: {error}"
        );
    });
}

/// A TLS CA (or client certificate) file that does not exist is a typed `Config` error naming
/// the setting, before connecting: not a connect error that says to check KLAW_NATS_URL.
#[test]
fn a_missing_tls_file_is_a_config_error_naming_the_setting() {
    probe(Duration::from_secs(60), || {
        let server = NatsServer::start();
        let missing = "/nonexistent/klaw-faults/ca.pem";
        let configs = [
            server.config().tls(NatsTls::default().ca(missing)),
            server.config().tls(NatsTls::default().client_cert(missing, missing)),
        ];
        for config in configs {
            let error = klaw::runtime::block_on(klaw_nats::Nats::connect(config)).unwrap_err();
            assert!(
                matches!(&error, NatsError::Config { setting, .. } if setting.to_lowercase().contains("tls")),
                "a missing TLS file should be a Config error naming the TLS setting, got: {error}"
            );
        }
    });
}

/// A URL that cannot be one (no port number, a scheme NATS does not know, empty) is a typed
/// `Config` error naming the URL setting.
#[test]
fn a_url_that_cannot_be_parsed_is_a_config_error_naming_the_url() {
    probe(Duration::from_secs(60), || {
        let mut wrong = Vec::new();
        for url in ["nats://127.0.0.1:notaport", "http://127.0.0.1:4222", ""] {
            let error = klaw::runtime::block_on(klaw_nats::Nats::connect(NatsConfig::new(url)))
                .unwrap_err();
            if !matches!(&error, NatsError::Config { setting, .. } if setting.to_lowercase().contains("url"))
            {
                wrong.push(format!("{url:?}: {error}"));
            }
        }
        assert!(wrong.is_empty(), "not Config errors naming the URL: {wrong:#?}");
    });
}

/// Forty calls across a 7 s restart (longer than the client's acknowledgement wait, so jobs
/// end while their outcomes cannot be stored): every call resolves, with its own outcome or a
/// typed error; none hangs.
#[test]
fn many_calls_across_a_long_restart_each_resolve_with_their_outcome_or_a_typed_error() {
    probe(Duration::from_secs(240), || {
        many_calls_across_a_restart("many-long", Duration::from_secs(7), Duration::from_secs(120));
    });
}

/// A receiver dropped while the server is down, holding prefetched values it never handed
/// out (its hand-back cannot reach the server): another receiver still gets every one of them.
#[test]
fn values_held_by_a_receiver_dropped_while_the_server_is_down_reach_another() {
    probe(Duration::from_secs(120), || {
        let mut server = NatsServer::start();
        let config = server.config().namespace("dropped-rx").ack_wait(Duration::from_secs(2));
        let one = nats(config.clone());
        let two = nats(config);
        let (tx, rx1) = klaw::runtime::block_on(one.channel::<u32>("held", 16)).unwrap();
        let (_, rx2) = klaw::runtime::block_on(two.channel::<u32>("held", 16)).unwrap();
        let first = klaw::runtime::block_on(async {
            for value in 0..10 {
                tx.send(value).await.unwrap();
            }
            rx1.try_recv().await.unwrap()
        });
        server.stop();
        drop(rx1);
        std::thread::sleep(Duration::from_secs(2));
        server.restart();
        let mut received = vec![first];
        let distinct =
            |received: &[u32]| received.iter().collect::<std::collections::BTreeSet<_>>().len();
        klaw::runtime::block_on(async {
            while distinct(&received) < 10 {
                match klaw::cancel::fail_after(Duration::from_secs(30), rx2.recv()).await {
                    Ok(Ok(value)) => received.push(value),
                    other => panic!("a value was lost: after {received:?}: {other:?}"),
                }
            }
        });
        received.sort_unstable();
        // Delivery is at least once (documented): the value `recv` returned just before the
        // crash may come again if its acknowledgement was lost with the server. No other may.
        let mut twice: Vec<u32> =
            received.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        twice.retain(|value| *value != first);
        assert!(
            twice.is_empty(),
            "values held (never returned) came twice: {twice:?} in {received:?}"
        );
    });
}

/// Consumers on a stream of `namespace`'s server, as the server counts them.
fn consumers_on(server: &NatsServer, stream: &str) -> usize {
    klaw::runtime::block_on(async_compat::Compat::new(async {
        let client = async_nats::connect(&server.url).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let mut stream = jetstream.get_stream(stream).await.unwrap();
        stream.info().await.unwrap().state.consumer_count
    }))
}

/// Channels opened and dropped leave nothing on the server: each open watches the channel's
/// closed flag (and a watch channel its key) with a consumer; once every handle of the channel
/// is dropped, that consumer goes too, or a long-lived process that opens channels as it works
/// piles them up.
#[test]
fn channels_opened_and_dropped_leave_no_consumer_behind() {
    probe(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let nats = nats(server.config().namespace("leak"));
        for _ in 0..10 {
            let opened = klaw::runtime::block_on(nats.channel::<u32>("leak", 4)).unwrap();
            drop(opened);
            let opened = klaw::runtime::block_on(nats.watch::<u32>("leak", 0)).unwrap();
            drop(opened);
        }
        let closing = || consumers_on(&server, "KV_leak_channels");
        let watching = || consumers_on(&server, "KV_leak_watch");
        let settled = (0..150).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            closing() == 0 && watching() == 0
        });
        assert!(
            settled,
            "consumers left after 10 channels and 10 watches were dropped: {} on the channels \
             bucket, {} on the watch bucket",
            closing(),
            watching()
        );
    });
}

/// A worker shut down (its `run` cancelled, the `Worker` gone) leaves no consumer behind: its
/// watch of the cancel bucket ends with it.
#[test]
fn a_worker_shut_down_leaves_no_consumer_behind() {
    probe(Duration::from_secs(120), || {
        let cluster = Cluster::new(|c| c.namespace("worker-leak"));
        for _ in 0..3 {
            let worker = cluster.start_worker(2);
            let warm = cluster.submitter.spawn(counted(1, 0));
            assert_eq!(cluster.wait(warm, Duration::from_secs(30)).unwrap(), Ok(2));
            assert!(worker.cancel("shutting down"));
            let _ =
                cluster.workers.block_on(klaw::cancel::fail_after(Duration::from_secs(30), worker));
        }
        let cancels = || consumers_on(&cluster.server, "KV_worker-leak_cancel");
        let settled = (0..150).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            cancels() == 0
        });
        assert!(settled, "{} consumers on the cancel bucket after 3 workers shut down", cancels());
    });
}
