//! A job delivered again, out of deliveries, or run under another worker's consumer: what a
//! worker and a submitter do at the edges of JetStream's redelivery. A job delivered twice to
//! the worker that still runs it has both runs cancelled by one cancel; an outcome stored before
//! its job ran out of deliveries wins over `MaxDeliveries`; a worker renews its claims on the ack
//! wait the server enforces (the consumer's), not only its own config's.
//!
//! Every probe runs under a watchdog: a hang fails it. One at a time (statics count runs).

mod common;
#[path = "common/counted.rs"]
mod counted;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{self, PullConsumer};
use common::{NatsServer, Proxy, port_of, wait_until};
use counted::{RUNS, counted, runs_of};
use klaw::Runtime;
use klaw::TaskError;
use klaw::remote::{RemoteError, WireOutcome};
use klaw_nats::{NatsBackend, NatsConfig, Worker};

// ---------------------------------------------------------------------------------------------
// Harness.

fn probe(limit: Duration, body: impl FnOnce() + Send + 'static) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    RUNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    HELD_RUNS.store(0, Ordering::SeqCst);
    HELD_ENDS.store(0, Ordering::SeqCst);
    common::watchdog(limit, body);
}

fn on_tokio<T>(future: impl std::future::Future<Output = T>) -> T {
    klaw::runtime::block_on(async_compat::Compat::new(future))
}

/// Returns 42 (its outcome is written by hand in the tests that emulate a worker's last steps).
#[klaw::task(remote)]
async fn forty_two() -> u64 {
    42
}

static HELD_RUNS: AtomicUsize = AtomicUsize::new(0);
static HELD_ENDS: AtomicUsize = AtomicUsize::new(0);

struct CountOnDrop(&'static AtomicUsize);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs until cancelled; counts its starts and its ends (drops), across runs.
#[klaw::task(remote)]
async fn held_and_counted() {
    let _ended = CountOnDrop(&HELD_ENDS);
    HELD_RUNS.fetch_add(1, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

/// The fields of a job envelope a hand-driven worker needs (MessagePack, named fields).
#[derive(serde::Deserialize)]
struct Envelope {
    id: String,
    reply: String,
}

/// The workers' shared consumer, as `JobQueue::workers_consumer` makes it, for a worker driven
/// by hand (no klaw `Worker` runs in these tests).
fn hand_worker(server: &NatsServer, config: &NatsConfig, namespace: &str) -> PullConsumer {
    let name = format!("{namespace}_workers");
    let (url, stream, ack_wait, max_deliver) =
        (server.url.clone(), config.jobs_stream(), config.ack_wait, config.max_deliver);
    on_tokio(async move {
        let jetstream = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        jetstream
            .get_stream(stream)
            .await
            .unwrap()
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait,
                    max_deliver: i64::from(max_deliver),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    })
}

/// What `worker::reply` does once the submitter did not answer its request: stores the outcome
/// under `<client>.<job>` in the outcomes bucket. Runs on tokio.
async fn store_outcome_as_a_worker_would(
    jetstream: &async_nats::jetstream::Context,
    config: &NatsConfig,
    namespace: &str,
    job: &async_nats::jetstream::Message,
    value: u64,
) {
    let envelope: Envelope = rmp_serde::from_slice(&job.payload).unwrap();
    let key = envelope.reply.strip_prefix(&format!("{namespace}.reply.")).unwrap().to_owned();
    assert!(key.ends_with(&envelope.id), "{key}");
    let outcomes = jetstream.get_key_value(config.outcomes_bucket()).await.unwrap();
    let returned = WireOutcome::Returned(rmp_serde::to_vec_named(&value).unwrap());
    outcomes.put(key, returned.encode().into()).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// A job delivered again to the worker that still runs it (its claims lapsed for longer than the
// ack wait, a connection drop; with one worker the redelivery always lands there) runs twice
// there: the worker keeps a cancel token per run, so a cancel reaches both, and the run that ends
// first removes only its own. What would break it: tokens kept by job id alone, the second
// run's displacing the first's.

/// A job delivered twice to one worker (its link dropped for longer than the ack wait): a
/// cancel reaches both runs.
#[test]
fn a_cancel_reaches_both_runs_of_a_job_delivered_twice_to_one_worker() {
    probe(Duration::from_secs(150), || {
        let server = NatsServer::start();
        let proxy = Proxy::to(port_of(&server.url));
        let configure =
            |config: NatsConfig| config.namespace("twiceheld").ack_wait(Duration::from_secs(1));
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        let worker =
            klaw::runtime::block_on(Worker::connect(configure(NatsConfig::new(proxy.url()))))
                .unwrap()
                .concurrency(4);
        let _worker = workers.spawn(worker.run());
        let submitter = common::submitter_runtime(configure(server.config()));
        let handle = submitter.spawn(held_and_counted());
        wait_until(Duration::from_secs(20), "the worker runs the job", || {
            HELD_RUNS.load(Ordering::SeqCst) == 1
        });
        // Three ack waits without renewals: the server hands the job out again once the worker
        // is back, to the only worker there is, which still runs the first delivery.
        proxy.cut();
        std::thread::sleep(Duration::from_secs(3));
        proxy.heal();
        wait_until(
            Duration::from_secs(30),
            "the job is delivered again to the same worker",
            || HELD_RUNS.load(Ordering::SeqCst) == 2,
        );
        assert!(handle.cancel("stop every run"));
        let _ = submitter.block_on(klaw::cancel::fail_after(Duration::from_secs(10), handle));
        wait_until(Duration::from_secs(30), "both runs of the cancelled job were dropped", || {
            HELD_ENDS.load(Ordering::SeqCst) == 2
        });
    });
}

/// The same, deterministically: a second copy of the job (same id, as a redelivery is) reaches
/// the worker while it runs the first (here the test publishes the job's envelope again, as a
/// replay would). A cancel reaches both runs.
#[test]
fn a_cancel_reaches_both_runs_of_a_job_held_twice_by_one_worker() {
    probe(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let config = server.config().namespace("twicecopy");
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        let worker = klaw::runtime::block_on(Worker::connect(config.clone())).unwrap();
        let _worker = workers.spawn(worker.concurrency(4).run());
        let submitter = common::submitter_runtime(config.clone());
        let handle = submitter.spawn(held_and_counted());
        wait_until(Duration::from_secs(20), "the worker runs the job", || {
            HELD_RUNS.load(Ordering::SeqCst) == 1
        });
        let (url, stream, subject) =
            (server.url.clone(), config.jobs_stream(), config.jobs_subject());
        on_tokio(async move {
            let jetstream = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
            let mut jobs = jetstream.get_stream(stream).await.unwrap();
            let first = jobs.info().await.unwrap().state.first_sequence;
            let job = jobs.get_raw_message(first).await.unwrap();
            jetstream.publish(subject, job.payload).await.unwrap().await.unwrap();
        });
        wait_until(Duration::from_secs(20), "the worker runs the second copy", || {
            HELD_RUNS.load(Ordering::SeqCst) == 2
        });
        assert!(handle.cancel("stop every run"));
        let _ = submitter.block_on(klaw::cancel::fail_after(Duration::from_secs(10), handle));
        wait_until(Duration::from_secs(30), "both runs of the cancelled job were dropped", || {
            HELD_ENDS.load(Ordering::SeqCst) == 2
        });
    });
}

// ---------------------------------------------------------------------------------------------
// The server reports a job out of deliveries after its last delivery's worker stored the outcome
// (its request to the submitter unanswered) and lost its acknowledgement with its connection:
// that outcome is the call's, read from the bucket before the submitter settles for
// `MaxDeliveries`. What would break it: the advisory's fast path ending the call at once, and
// purging the stored outcome.

/// The last delivery's worker stored the outcome, then its ack was lost: the call gets the
/// outcome, not `MaxDeliveries`.
#[test]
fn an_outcome_stored_before_its_job_ran_out_of_deliveries_wins_over_max_deliveries() {
    probe(Duration::from_secs(90), || {
        let server = NatsServer::start();
        let namespace = "storedwins";
        let config = server
            .config()
            .namespace(namespace)
            .ack_wait(Duration::from_millis(400))
            .max_deliver(1);
        let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
        let submitter = Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap();
        let worker = hand_worker(&server, &config, namespace);
        // The sweep a new backend runs at once is behind us; the next comes after SWEEP_EVERY.
        std::thread::sleep(Duration::from_secs(1));
        let handle = submitter.spawn(forty_two());
        let url = server.url.clone();
        on_tokio(async {
            use futures_util::StreamExt;
            let jetstream = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
            let mut batch = worker
                .batch()
                .max_messages(1)
                .expires(Duration::from_secs(10))
                .messages()
                .await
                .unwrap();
            let job = batch.next().await.unwrap().unwrap();
            // The body ran; the request with the outcome went unanswered; the outcome is stored.
            store_outcome_as_a_worker_would(&jetstream, &config, namespace, &job, 42).await;
            drop(job); // its acknowledgement is lost with the worker's connection
            tokio::time::sleep(Duration::from_millis(800)).await;
            // The next pull finds the job out of deliveries: the server's advisory goes out.
            let again = worker
                .batch()
                .max_messages(1)
                .expires(Duration::from_millis(600))
                .messages()
                .await
                .unwrap();
            drop(again.collect::<Vec<_>>().await);
        });
        let result = submitter
            .block_on(klaw::cancel::fail_after(Duration::from_secs(30), handle))
            .expect("the handle resolved");
        assert_eq!(result, Ok(42), "a stored outcome lost to the burial of its job");
    });
}

// ---------------------------------------------------------------------------------------------
// The workers' consumer keeps the ack wait it was created with (by whichever worker came first):
// a worker renews its claims on that one, however its own config differs. What would break it:
// renewals paced by the worker's own longer ack wait, so its live jobs are redelivered while they
// run, run again, and end in `MaxDeliveries`.

/// The consumer was created by a worker with a 600 ms ack wait; a worker with the default
/// (30 s) runs a 3 s job: it runs once and the call gets its value.
#[test]
fn a_worker_keeps_its_job_under_the_ack_wait_the_consumer_was_created_with() {
    probe(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let config = server.config().namespace("ackwait");
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        let submitter = common::submitter_runtime(config.clone());
        let short = config.clone().ack_wait(Duration::from_millis(600));
        let first = workers.spawn(klaw::runtime::block_on(Worker::connect(short)).unwrap().run());
        let warm = submitter.spawn(counted(1, 0));
        let warm = submitter.block_on(klaw::cancel::fail_after(Duration::from_secs(30), warm));
        assert_eq!(warm.unwrap(), Ok(2));
        assert!(first.cancel("redeployed"));
        let _ = workers.block_on(klaw::cancel::fail_after(Duration::from_secs(30), first));
        let second = klaw::runtime::block_on(Worker::connect(config)).unwrap().concurrency(4);
        let _second = workers.spawn(second.run());
        let handle = submitter.spawn(counted(2, 3000));
        let result = submitter
            .block_on(klaw::cancel::fail_after(Duration::from_secs(60), handle))
            .expect("the call resolved");
        assert_eq!(result, Ok(4), "a live worker's job ended without its value");
        assert_eq!(runs_of(2), 1, "a live worker's job was delivered again while it ran");
    });
}

// ---------------------------------------------------------------------------------------------
// A submitter reads the outcomes bucket for its waiting jobs many at a time, so a pass over
// thousands of them still comes within the outcomes' TTL: an outcome stored while the submitter
// stayed connected (the worker's request lost for a moment) is read before it expires. What
// would break it: one read after another, two round trips a job, a pass longer than the TTL.

/// Five outcomes stored while 6000 other jobs wait (queued, no worker): each call gets its
/// outcome, none `OutcomeExpired`.
#[test]
fn outcomes_stored_while_connected_are_read_within_their_ttl_however_many_jobs_wait() {
    probe(Duration::from_secs(300), || {
        let server = NatsServer::start();
        let namespace = "manywaiting";
        let config = server.config().namespace(namespace).outcome_ttl(Duration::from_secs(1));
        let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
        let submitter = Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap();
        let worker = hand_worker(&server, &config, namespace);
        let jetstream = jetstream_of(&server);
        let targets: Vec<_> = (0..5).map(|_| submitter.spawn(forty_two())).collect();
        wait_until(Duration::from_secs(20), "the targets are queued", || {
            jobs_queued(&jetstream, &config) == 5
        });
        let waiting: Vec<_> = (100..6100).map(|n| submitter.spawn(counted(n, 0))).collect();
        wait_until(Duration::from_secs(120), "every job is queued", || {
            jobs_queued(&jetstream, &config) == 6005
        });
        on_tokio(async {
            use futures_util::StreamExt;
            let mut batch = worker
                .batch()
                .max_messages(5)
                .expires(Duration::from_secs(10))
                .messages()
                .await
                .unwrap();
            for _ in 0..5 {
                let job = batch.next().await.unwrap().unwrap();
                // A worker's last steps when its request went unanswered: store, then settle.
                store_outcome_as_a_worker_would(&jetstream, &config, namespace, &job, 42).await;
                job.double_ack().await.unwrap();
            }
        });
        let mut expired = Vec::new();
        for (i, handle) in targets.into_iter().enumerate() {
            let result = submitter
                .block_on(klaw::cancel::fail_after(Duration::from_secs(60), handle))
                .expect("the call resolved");
            match result {
                Ok(42) => {}
                Err(TaskError::Remote(error))
                    if matches!(*error, RemoteError::OutcomeExpired { .. }) =>
                {
                    expired.push(i);
                }
                other => panic!("target {i}: {other:?}"),
            }
        }
        drop(waiting);
        assert!(
            expired.is_empty(),
            "outcomes stored on a connected submitter expired before the sweep reached them: \
             {expired:?}"
        );
    });
}

/// A JetStream context of its own on `server` (made on tokio, usable from any later `on_tokio`).
fn jetstream_of(server: &NatsServer) -> async_nats::jetstream::Context {
    let url = server.url.clone();
    on_tokio(async move { async_nats::jetstream::new(async_nats::connect(url).await.unwrap()) })
}

/// How many jobs wait in the namespace's queue.
fn jobs_queued(jetstream: &async_nats::jetstream::Context, config: &NatsConfig) -> u64 {
    on_tokio(async {
        let mut jobs = jetstream.get_stream(config.jobs_stream()).await.unwrap();
        jobs.info().await.unwrap().state.messages
    })
}
