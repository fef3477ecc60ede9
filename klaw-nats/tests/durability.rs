//! Outcomes survive a submitter's lost connection, and workers reply only inside their
//! namespace. On a real `nats-server -js`; the connection is cut by a TCP proxy between the
//! submitter and the server, for longer than the jobs run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{NatsServer, Proxy, port_of, wait_until};
use klaw::Runtime;
use klaw_nats::{DeadLetters, NatsBackend, NatsConfig, Worker};

#[klaw::task(remote)]
async fn slow_double(n: u64, millis: u64) -> u64 {
    klaw::time::sleep(Duration::from_millis(millis)).await;
    2 * n
}

/// A worker in this process, on its own runtime: it runs until both are dropped.
struct InProcessWorker {
    _handle: klaw::TaskHandle<Result<(), klaw::Error>>,
    _runtime: Runtime,
}

fn start_worker(config: NatsConfig) -> InProcessWorker {
    let runtime = Runtime::builder().workers(2).local().build().unwrap();
    let worker = klaw::runtime::block_on(Worker::connect(config)).unwrap().concurrency(4);
    InProcessWorker { _handle: runtime.spawn(worker.run()), _runtime: runtime }
}

/// A submitter that reaches the server through a proxy that can cut it off, and a worker that
/// reaches the server directly; `config` sets both up (namespace, TTL).
struct CutOff {
    proxy: Proxy,
    backend: NatsBackend,
    submitter: Runtime,
    _worker: InProcessWorker,
    server: NatsServer,
}

impl CutOff {
    fn new(config: impl Fn(NatsConfig) -> NatsConfig) -> Self {
        let server = NatsServer::start();
        let proxy = Proxy::to(port_of(&server.url));
        let through_proxy = config(NatsConfig::new(proxy.url()));
        let backend = klaw::runtime::block_on(NatsBackend::connect(through_proxy)).unwrap();
        let submitter =
            Runtime::builder().workers(1).backend(Arc::new(backend.clone())).build().unwrap();
        let worker = start_worker(config(server.config()));
        CutOff { proxy, backend, submitter, _worker: worker, server }
    }

    /// Waits until the worker has taken `jobs` jobs, then cuts the submitter off for `cut`.
    fn cut_once_taken(&self, jobs: u64, cut: Duration) {
        wait_until(Duration::from_secs(10), "the jobs are taken", || {
            klaw::runtime::block_on(self.backend.queued()).unwrap() == jobs
        });
        self.proxy.cut();
        std::thread::sleep(cut);
        self.proxy.heal();
    }
}

#[test]
fn outcomes_stored_while_the_submitter_was_cut_off_arrive_after_it_reconnects() {
    let namespace = "durable";
    let cluster = CutOff::new(|config| config.namespace(namespace));
    let CutOff { backend, submitter, server, .. } = &cluster;
    let handles: Vec<_> = (1..=3).map(|n| submitter.spawn(slow_double(n, 1500))).collect();
    // Cut for 3 s: the jobs (1.5 s) end meanwhile, and their replies find nobody.
    cluster.cut_once_taken(3, Duration::from_secs(3));
    let results: Vec<_> = handles
        .into_iter()
        .map(|handle| {
            submitter
                .block_on(klaw::cancel::fail_after(Duration::from_secs(30), handle))
                .expect("the outcome arrived after the reconnect")
        })
        .collect();
    assert_eq!(results, [Ok(2), Ok(4), Ok(6)]);
    // A job submitted after the reconnect works too, and nothing stays behind.
    assert_eq!(submitter.block_on(submitter.spawn(slow_double(5, 0))), Ok(10));
    assert_eq!(backend.in_flight(), 0);
    let outcomes = klaw::runtime::block_on(outcome_count(server, namespace));
    wait_until(Duration::from_secs(10), "the outcomes read are purged", || {
        klaw::runtime::block_on(outcome_count(server, namespace)) == 0
    });
    #[allow(clippy::print_stderr, reason = "the sizes, for whoever runs it with --nocapture")]
    {
        eprintln!("outcomes bucket: {outcomes} entries just after, 0 once purged");
    }
}

/// Live entries in a namespace's outcomes bucket (purge markers not counted).
async fn outcome_count(server: &NatsServer, namespace: &str) -> usize {
    async_compat::Compat::new(async {
        let client = async_nats::connect(&server.url).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let name = server.config().namespace(namespace).outcomes_bucket();
        let bucket = jetstream.get_key_value(name).await.unwrap();
        let mut keys = bucket.keys().await.unwrap();
        let mut count = 0;
        while let Some(key) = futures_util::StreamExt::next(&mut keys).await {
            if key.is_ok() {
                count += 1;
            }
        }
        count
    })
    .await
}

/// A job envelope as a forger would write it: the wire format's named fields.
#[derive(serde::Serialize)]
struct ForgedJob {
    id: String,
    task: String,
    build: String,
    #[serde(with = "serde_bytes")]
    args: Vec<u8>,
    reply: String,
}

#[test]
fn a_worker_never_replies_outside_its_namespace() {
    let server = NatsServer::start();
    let config = server.config().namespace("guarded");
    let _worker = start_worker(config.clone());
    let name = klaw::remote::remote_tasks().find(|t| t.name().ends_with("::slow_double")).unwrap();
    let (heard, queued) = klaw::runtime::block_on(async_compat::Compat::new(async {
        let client = async_nats::connect(&server.url).await.unwrap();
        let mut probe = client.subscribe("probe.>").await.unwrap();
        let job = ForgedJob {
            id: "forged1".into(),
            task: name.name().into(),
            build: name.build().into(),
            args: rmp_serde::to_vec(&(21u64, 0u64)).unwrap(),
            reply: "probe.reply.hijack.any.subject".into(),
        };
        let jetstream = async_nats::jetstream::new(client.clone());
        let payload = rmp_serde::to_vec_named(&job).unwrap();
        jetstream.publish(config.jobs_subject(), payload.into()).await.unwrap().await.unwrap();
        let heard =
            tokio::time::timeout(Duration::from_secs(3), futures_util::StreamExt::next(&mut probe))
                .await
                .ok()
                .flatten();
        let mut stream = jetstream.get_stream(config.jobs_stream()).await.unwrap();
        let queued = stream.info().await.unwrap().state.messages;
        (heard.map(|message| message.subject.to_string()), queued)
    }));
    assert_eq!(heard, None, "the worker published an outcome outside its namespace");
    assert_eq!(queued, 0, "the forged job is settled, not redelivered forever");
    // It went to the dead letters, with its reason.
    let letters = klaw::runtime::block_on(DeadLetters::open(config)).unwrap();
    let listed = klaw::runtime::block_on(letters.list()).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].reason.contains("probe.reply.hijack"), "{}", listed[0].reason);
    assert_eq!(listed[0].job.as_deref(), Some("forged1"));
}

#[test]
fn a_poison_job_goes_to_the_dead_letters_and_can_be_replayed_or_removed() {
    let server = NatsServer::start();
    let config = server.config().namespace("poison");
    let _worker = start_worker(config.clone());
    let letters = klaw::runtime::block_on(DeadLetters::open(config.clone())).unwrap();
    let publish_garbage = || {
        klaw::runtime::block_on(async_compat::Compat::new(async {
            let client = async_nats::connect(&server.url).await.unwrap();
            let jetstream = async_nats::jetstream::new(client);
            let ack = jetstream.publish(config.jobs_subject(), "not msgpack {".into()).await;
            ack.unwrap().await.unwrap();
        }));
    };
    publish_garbage();
    let list = || klaw::runtime::block_on(letters.list()).unwrap();
    wait_until(Duration::from_secs(10), "the poison job is a dead letter", || list().len() == 1);
    let letter = list().remove(0);
    assert!(letter.reason.starts_with("not a klaw job"), "{}", letter.reason);
    assert_eq!((letter.deliveries, letter.task), (1, None));
    // Replayed, it goes back to the queue; the worker buries it again (a new letter).
    klaw::runtime::block_on(letters.replay(letter.sequence)).unwrap();
    wait_until(Duration::from_secs(10), "it is a dead letter again", || {
        list().iter().any(|again| again.sequence > letter.sequence)
    });
    assert_eq!(list().len(), 1, "the replayed letter left the stream");
    let again = list().remove(0);
    klaw::runtime::block_on(letters.remove(again.sequence)).unwrap();
    assert!(list().is_empty());
}

#[test]
fn a_handle_whose_outcome_expired_while_cut_off_ends_with_outcome_expired() {
    let ttl = Duration::from_secs(1);
    let cluster = CutOff::new(|config| config.namespace("expiring").outcome_ttl(ttl));
    let submitter = &cluster.submitter;
    let handle = submitter.spawn(slow_double(1, 300));
    // Cut for much longer than the job and the TTL: its outcome is stored, then expires.
    cluster.cut_once_taken(1, Duration::from_secs(5));
    let result = submitter
        .block_on(klaw::cancel::fail_after(Duration::from_secs(30), handle))
        .expect("the handle ended within the bound");
    match result {
        Err(klaw::TaskError::Remote(error)) => {
            assert!(
                matches!(*error, klaw::remote::RemoteError::OutcomeExpired { ttl_secs: 1, .. }),
                "{error}"
            );
        }
        other => panic!("expected OutcomeExpired, got {other:?}"),
    }
}

/// An outcome the worker stored while its submitter stayed connected is read before its TTL
/// removes it. The worker's request with the outcome is lost (the submitter's link swallows
/// what it carries for a moment, and no socket closes, so nobody reconnects): the worker stores
/// the outcome, and nothing but the submitter's periodic read of the bucket can find it. With a
/// TTL of 2 s that read comes at least every second, and a read sent while the link swallowed
/// it gives way to the next one instead of waiting for the client's 5 s request timeout.
#[test]
fn an_outcome_stored_while_the_submitter_stayed_connected_is_read_within_its_ttl() {
    let cluster =
        CutOff::new(|config| config.namespace("unanswered").outcome_ttl(Duration::from_secs(2)));
    let CutOff { backend, submitter, proxy, .. } = &cluster;
    let handle = submitter.spawn(slow_double(21, 300));
    wait_until(Duration::from_secs(10), "the job is queued", || {
        klaw::runtime::block_on(backend.queued()).unwrap() == 1
    });
    // The job ends after 300 ms; its request to the submitter is swallowed, and the worker
    // stores the outcome a second later.
    proxy.freeze();
    std::thread::sleep(Duration::from_millis(900));
    proxy.resume();
    let result = submitter
        .block_on(klaw::cancel::fail_after(Duration::from_secs(8), handle))
        .expect("the outcome was read before it expired");
    assert_eq!(result, Ok(42));
}

static DELIVERED_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[klaw::task(remote)]
async fn counted_double(n: u64) -> u64 {
    DELIVERED_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    klaw::time::sleep(Duration::from_millis(300)).await;
    2 * n
}

/// A worker stopped after a job's body ended, while the job's outcome is still on its way (its
/// request to the submitter unanswered, on a link that swallows it): the outcome is still
/// stored and the job settled, so the call gets it once the submitter is back, and the job
/// does not run a second time. (A stopped worker used to cut that delivery short and hand the
/// job back, which no other worker was there to run.)
#[test]
fn a_worker_stopped_while_an_outcome_is_on_its_way_still_delivers_it() {
    let server = NatsServer::start();
    let proxy = Proxy::to(port_of(&server.url));
    let through_proxy = NatsConfig::new(proxy.url()).namespace("stopping");
    let backend = klaw::runtime::block_on(NatsBackend::connect(through_proxy)).unwrap();
    let submitter =
        Runtime::builder().workers(1).backend(Arc::new(backend.clone())).build().unwrap();
    let workers = Runtime::builder().workers(2).local().build().unwrap();
    let worker =
        klaw::runtime::block_on(Worker::connect(server.config().namespace("stopping"))).unwrap();
    let running = workers.spawn(worker.run());
    let handle = submitter.spawn(counted_double(5));
    wait_until(Duration::from_secs(10), "the job is queued", || {
        klaw::runtime::block_on(backend.queued()).unwrap() == 1
    });
    proxy.freeze();
    wait_until(Duration::from_secs(10), "the body ran", || {
        DELIVERED_RUNS.load(std::sync::atomic::Ordering::SeqCst) == 1
    });
    std::thread::sleep(Duration::from_millis(500)); // the body has ended; its request waits
    assert!(running.cancel("the worker stops"));
    let stopped = workers.block_on(klaw::cancel::fail_after(Duration::from_secs(10), running));
    assert!(stopped.is_ok(), "the worker's run did not end once cancelled");
    std::thread::sleep(Duration::from_secs(2)); // the worker stores the outcome meanwhile
    proxy.thaw(); // the submitter reconnects, and reads the bucket
    let result = submitter
        .block_on(klaw::cancel::fail_after(Duration::from_secs(20), handle))
        .expect("the outcome reached the call");
    assert_eq!(result, Ok(10));
    assert_eq!(DELIVERED_RUNS.load(std::sync::atomic::Ordering::SeqCst), 1, "the job ran again");
}

static UNPUBLISHED_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[klaw::task(remote)]
async fn doubled_once_counted(n: u64) -> u64 {
    UNPUBLISHED_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    2 * n
}

/// A job whose publish acknowledgement is lost: the submitter's link loses the server's answers
/// (its requests still arrive), so the server stores the job and a worker (connected directly)
/// runs it, while the submitter's publish times out; the worker's request with the outcome goes
/// unanswered, so it stores the outcome in the bucket. Checks: the call ends with the outcome
/// (the job ran once), not with "could not publish the job". What would break it: a submitter
/// that stores the job's cancel marker and reports the failed publish without looking for what
/// a worker made of the job before the marker (the call was reported failed, the outcome left
/// unread in the bucket).
#[test]
fn a_job_that_ran_although_its_publish_was_not_acknowledged_ends_with_its_outcome() {
    common::watchdog(Duration::from_secs(90), || {
        let ProxiedSubmitter { server: _server, proxy, _workers, _running, submitter } =
            proxied_submitter("acklostjob");

        proxy.freeze_answers();
        let handle = submitter.spawn(doubled_once_counted(21));
        wait_until(Duration::from_secs(10), "the worker ran the job", || {
            UNPUBLISHED_RUNS.load(std::sync::atomic::Ordering::SeqCst) == 1
        });
        // The worker's request with the outcome goes unanswered for 1 s; it then stores it.
        std::thread::sleep(Duration::from_secs(2));
        proxy.resume();

        let result = submitter
            .block_on(klaw::cancel::fail_after(Duration::from_secs(40), handle))
            .expect("the call ended");
        assert_eq!(UNPUBLISHED_RUNS.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(result, Ok(42), "the job ran and its outcome is stored");
    });
}

static LATE_READ_RUNS: AtomicU32 = AtomicU32::new(0);

#[klaw::task(remote)]
async fn doubled_read_late(n: u64) -> u64 {
    LATE_READ_RUNS.fetch_add(1, SeqCst);
    2 * n
}

/// Waits (on a client of its own, straight to the server) until `stream` holds a message:
/// the job's cancel marker. False if `within` passed first.
fn marker_stored(url: &str, stream: &str, within: Duration) -> bool {
    let (url, stream) = (url.to_owned(), stream.to_owned());
    klaw::runtime::block_on(async_compat::Compat::new(async move {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Ok(mut found) = js.get_stream(&stream).await {
                if let Ok(info) = found.info().await {
                    if info.state.last_sequence >= 1 {
                        return true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }))
}

/// A job whose publish was not acknowledged ran and stored its outcome; after the submitter
/// stores its cancel marker, the one read of the outcomes bucket gets no answer (the link loses
/// answers again for a while). Checks: the call still ends with the outcome. What would break it:
/// a submitter that takes an unanswered read for "no outcome" and reports the failed publish
/// (nothing reads the bucket for that job again). (A periodic sweep in the short time answers
/// flow can read the outcome first: then this passes either way.)
#[test]
fn an_unpublished_job_that_ran_keeps_its_outcome_though_one_read_gets_no_answer() {
    common::watchdog(Duration::from_secs(150), || {
        let ProxiedSubmitter { server, proxy, _workers, _running, submitter } =
            proxied_submitter("latereadjob");

        proxy.freeze_answers();
        let published_at = Instant::now();
        let handle = submitter.spawn(doubled_read_late(21));
        wait_until(Duration::from_secs(10), "the worker ran the job", || {
            LATE_READ_RUNS.load(SeqCst) == 1
        });
        // Still frozen (no sweep reads the outcome) until just before the publish attempt, whose
        // answer was lost, gives up after the client's 5 s: the marker put that follows is
        // answered.
        let resume_at = published_at + Duration::from_millis(4500);
        std::thread::sleep(resume_at.saturating_duration_since(Instant::now()));
        proxy.resume();
        assert!(
            marker_stored(&server.url, "KV_latereadjob_cancel", Duration::from_secs(30)),
            "the submitter never stored the job's cancel marker"
        );
        std::thread::sleep(Duration::from_millis(300)); // its confirmation has passed the proxy
        // The one late read of the outcomes bucket (2 s from now) gets no answer within 5 s.
        proxy.freeze_answers();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_secs(12));
                proxy.resume(); // for good: a submitter that looks again finds the outcome
            });
            let result = submitter
                .block_on(klaw::cancel::fail_after(Duration::from_secs(60), handle))
                .expect("the call ended");
            assert_eq!(LATE_READ_RUNS.load(SeqCst), 1, "the job ran again");
            assert_eq!(
                result,
                Ok(42),
                "the job ran and its outcome is stored, but one unanswered read of the bucket \
                 made the call report a failed publish"
            );
        });
    });
}

/// A server, a worker connected to it directly (running on a runtime of its own), and a
/// submitter connected through a proxy, in `namespace`.
struct ProxiedSubmitter {
    server: NatsServer,
    proxy: Proxy,
    _workers: Runtime,
    _running: klaw::TaskHandle<Result<(), klaw::Error>>,
    submitter: Runtime,
}

fn proxied_submitter(namespace: &str) -> ProxiedSubmitter {
    let server = NatsServer::start();
    let proxy = Proxy::to(port_of(&server.url));
    let workers = Runtime::builder().workers(2).local().build().unwrap();
    let worker =
        klaw::runtime::block_on(Worker::connect(server.config().namespace(namespace))).unwrap();
    let running = workers.spawn(worker.run());
    let through_proxy = NatsConfig::new(proxy.url()).namespace(namespace);
    let backend = klaw::runtime::block_on(NatsBackend::connect(through_proxy)).unwrap();
    let submitter = Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap();
    ProxiedSubmitter { server, proxy, _workers: workers, _running: running, submitter }
}
