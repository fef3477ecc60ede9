//! klaw-nats on loopback, side by side with raw async-nats doing the same work by hand:
//!
//! - remote-task round trip: a trivial `#[klaw::task(remote)]` spawned and awaited, one at a
//!   time, vs a core NATS request/reply (the floor: one publish each way, no JetStream), vs a
//!   job through a JetStream work queue and a plain reply, and vs every step of klaw's protocol
//!   done by hand (the baseline: the job and its publish ack, the cancel-marker lookup, the
//!   reply that the submitter confirms, the acknowledged ack);
//! - distributed channel throughput: 2,000 `u64` through `klaw_nats` `channel(256)`, one
//!   producer and one consumer, vs JetStream publish (with acks) then pull and ack by hand;
//!   with the default `publish_retry` (each send carries a message id, for the server to drop
//!   a retried duplicate) and with `publish_retry` 0 (one try, no id); and by hand with message
//!   ids, to tell the server's cost of duplicate tracking from klaw's.
//!
//! Starts its own `nats-server -js` (`NATS_SERVER` or the `PATH`).
//! `cargo bench -p klaw-benches --bench remote` prints the medians with ratios.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use klaw::Runtime;
use klaw_benches::{Contender, compare, criterion_config};
use klaw_nats::{Nats, NatsBackend, NatsConfig, Worker};

const CALLS: u64 = 50;
const MESSAGES: u64 = 2_000;
const ROUNDS: usize = 9;

#[klaw::task(remote)]
async fn echo(n: u64) -> u64 {
    n
}

/// The server process, its store (removed on drop) and its URL.
struct Server(Child, #[allow(dead_code, reason = "kept for its Drop")] tempfile::TempDir, String);

impl Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let store = tempfile::tempdir().unwrap();
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on the PATH, or NATS_SERVER");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server(child, store, format!("nats://127.0.0.1:{port}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A work-queue stream on `subject` and its one durable pull consumer, both named `name`.
async fn work_queue(
    jetstream: &async_nats::jetstream::Context,
    name: &str,
    subject: &str,
) -> async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::Config> {
    use async_nats::jetstream::{consumer, stream};
    let stream = jetstream
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await
        .unwrap();
    let config =
        consumer::pull::Config { durable_name: Some(name.to_owned()), ..Default::default() };
    stream.get_or_create_consumer(name, config).await.unwrap()
}

/// `MESSAGES` published on `subject` with their acks (each with the next id from `ids`, if
/// given: unique across iterations, as klaw's are), pulled and acked from `consumer` at the
/// same time.
async fn by_hand(
    jetstream: &async_nats::jetstream::Context,
    subject: &'static str,
    consumer: &async_nats::jetstream::consumer::Consumer<
        async_nats::jetstream::consumer::pull::Config,
    >,
    ids: Option<&std::sync::atomic::AtomicU64>,
) {
    let producer = async {
        for n in 0..MESSAGES {
            let mut message = async_nats::jetstream::message::PublishMessage::build()
                .payload(n.to_le_bytes().to_vec().into());
            if let Some(ids) = ids {
                let id = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                message = message.message_id(id.to_string());
            }
            jetstream.send_publish(subject, message).await.unwrap().await.unwrap();
        }
    };
    let consumer = async {
        let mut got = 0;
        while got < MESSAGES {
            let mut batch = consumer.fetch().max_messages(256).messages().await.unwrap();
            while let Some(Ok(message)) = batch.next().await {
                message.ack().await.unwrap();
                got += 1;
            }
        }
    };
    futures_lite::future::zip(producer, consumer).await;
}

/// `MESSAGES` sent into a klaw_nats channel and received from it at the same time.
async fn through(
    tx: &klaw_nats::channel::mpmc::Sender<u64>,
    rx: &klaw_nats::channel::mpmc::Receiver<u64>,
) {
    let producer = async {
        for n in 0..MESSAGES {
            tx.send(n).await.unwrap();
        }
    };
    let consumer = async {
        for _ in 0..MESSAGES {
            std::hint::black_box(rx.recv().await.unwrap());
        }
    };
    futures_lite::future::zip(producer, consumer).await;
}

fn main() {
    klaw_benches::run_cpu_hog_if_asked();
    let server = Server::start();
    let config = NatsConfig::new(&server.2).namespace("bench");
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();

    // klaw: a submitter runtime with the backend, and a worker in this process.
    let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
    let submitter = Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap();
    let workers = Runtime::builder().workers(1).local().build().unwrap();
    let worker = klaw::runtime::block_on(Worker::connect(config.clone())).unwrap();
    let _worker = workers.spawn(worker.run());

    // Raw: a core NATS responder.
    let client = tokio.block_on(async_nats::connect(&server.2)).unwrap();
    let mut requests = tokio.block_on(client.subscribe("bench.echo")).unwrap();
    let responder = client.clone();
    tokio.spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                responder.publish(reply, request.payload).await.unwrap();
            }
        }
    });

    // By hand, a job through JetStream and a plain reply: a job published to a work-queue
    // stream, pulled by a worker that acks it and replies on core NATS to the subject it names.
    let jetstream = {
        let _context = tokio.enter(); // the JetStream context spawns onto tokio
        async_nats::jetstream::new(client.clone())
    };
    let job_consumer = tokio.block_on(work_queue(&jetstream, "byhand_jobs", "byhand.jobs"));
    let replier = client.clone();
    tokio.spawn(async move {
        let mut jobs = job_consumer.messages().await.unwrap();
        while let Some(Ok(job)) = jobs.next().await {
            let reply = String::from_utf8(job.payload.to_vec()).unwrap();
            replier.publish(reply, job.payload.clone()).await.unwrap();
            job.ack().await.unwrap();
        }
    });
    let mut replies = tokio.block_on(client.subscribe("byhand.replies.*")).unwrap();

    // By hand, every step of klaw's protocol: the job (with its id and reply subject) published
    // to a work queue, its publish ack awaited off the path; the worker looks for a cancel
    // marker in a key-value bucket, then requests on the reply subject, which the submitter
    // answers once it holds the outcome (until then the job stays claimed, so a reconnect
    // loses nothing), and acks the job with the server's confirmation. The worker has its own
    // connection, as klaw's worker does (and as a worker in another process would).
    let worker_client = tokio.block_on(async_nats::connect(&server.2)).unwrap();
    let worker_jetstream = {
        let _context = tokio.enter();
        async_nats::jetstream::new(worker_client.clone())
    };
    let markers = tokio
        .block_on(worker_jetstream.create_key_value(async_nats::jetstream::kv::Config {
            bucket: "byhand_cancels".to_owned(),
            ..Default::default()
        }))
        .unwrap();
    let protocol_consumer =
        tokio.block_on(work_queue(&worker_jetstream, "protocol_jobs", "protocol.jobs"));
    let requester = worker_client;
    tokio.spawn(async move {
        let mut jobs = protocol_consumer.messages().await.unwrap();
        while let Some(Ok(job)) = jobs.next().await {
            let (requester, markers) = (requester.clone(), markers.clone());
            tokio::spawn(async move {
                let header =
                    |name: &str| job.headers.as_ref().unwrap().get(name).unwrap().to_string();
                let (id, reply) = (header("id"), header("reply"));
                assert!(markers.get(&id).await.unwrap().is_none(), "nothing cancels a job here");
                requester.request(reply, job.payload.clone()).await.unwrap();
                job.double_ack().await.unwrap();
            });
        }
    });
    let mut protocol_replies = tokio.block_on(client.subscribe("protocol.replies.*")).unwrap();
    let job_ids = std::sync::atomic::AtomicU64::new(0);

    let mut criterion = criterion_config();
    let round_trip = vec![
        Contender::new("async-nats request/reply", || {
            tokio.block_on(async {
                for n in 0..CALLS {
                    let reply = client.request("bench.echo", n.to_le_bytes().to_vec().into()).await;
                    std::hint::black_box(reply.unwrap());
                }
            });
        }),
        Contender::new("JetStream job by hand", || {
            tokio.block_on(async {
                for n in 0..CALLS {
                    let reply = format!("byhand.replies.{n}");
                    let ack = jetstream.publish("byhand.jobs", reply.into_bytes().into());
                    ack.await.unwrap().await.unwrap();
                    std::hint::black_box(replies.next().await.unwrap());
                }
            });
        }),
        Contender::new("klaw's protocol by hand", || {
            tokio.block_on(async {
                for n in 0..CALLS {
                    let id = job_ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("id", id.as_str());
                    headers.insert("reply", format!("protocol.replies.{id}").as_str());
                    let ack = jetstream
                        .publish_with_headers(
                            "protocol.jobs",
                            headers,
                            n.to_le_bytes().to_vec().into(),
                        )
                        .await
                        .unwrap();
                    let published = tokio::spawn(async move { ack.await.unwrap() });
                    let outcome = protocol_replies.next().await.unwrap();
                    std::hint::black_box(&outcome.payload);
                    client.publish(outcome.reply.unwrap(), Vec::new().into()).await.unwrap();
                    published.await.unwrap();
                }
            });
        }),
        Contender::new("klaw remote task", || {
            submitter.block_on(async {
                for n in 0..CALLS {
                    assert_eq!(submitter.handle().spawn(echo(n)).await, Ok(n));
                }
            });
        }),
    ];
    compare(
        &mut criterion,
        "remote_round_trip",
        CALLS,
        ROUNDS,
        "klaw's protocol by hand",
        round_trip,
    );

    // Raw JetStream: publish with acks, then pull and ack, on a work-queue stream.
    let raw_consumer = tokio.block_on(work_queue(&jetstream, "bench_raw", "bench.raw"));
    // The same with a message id on each publish, as a retrying klaw_nats send carries one
    // (what the server's duplicate tracking costs by itself).
    let raw_ids_consumer = tokio.block_on(work_queue(&jetstream, "bench_raw_ids", "bench.raw_ids"));
    let next_id = std::sync::atomic::AtomicU64::new(0);
    let no_retry = config.clone().publish_retry(Duration::ZERO);
    let nats = klaw::runtime::block_on(Nats::connect(config)).unwrap();
    let (tx, rx) = klaw::runtime::block_on(nats.channel::<u64>("throughput", 256)).unwrap();
    let nats_no_retry = klaw::runtime::block_on(Nats::connect(no_retry)).unwrap();
    let (tx_once, rx_once) =
        klaw::runtime::block_on(nats_no_retry.channel::<u64>("throughput_once", 256)).unwrap();
    let throughput = vec![
        Contender::new("async-nats JetStream by hand", || {
            tokio.block_on(by_hand(&jetstream, "bench.raw", &raw_consumer, None));
        }),
        Contender::new("async-nats JetStream by hand, message ids", || {
            tokio.block_on(by_hand(&jetstream, "bench.raw_ids", &raw_ids_consumer, Some(&next_id)));
        }),
        Contender::new("klaw_nats channel", || submitter.block_on(through(&tx, &rx))),
        // Sends tried once, without a message id (no retry, so no duplicate to drop).
        Contender::new("klaw_nats channel, publish_retry 0", || {
            submitter.block_on(through(&tx_once, &rx_once));
        }),
    ];
    compare(
        &mut criterion,
        "channel_throughput",
        MESSAGES,
        ROUNDS,
        "async-nats JetStream by hand",
        throughput,
    );
    criterion.final_summary();
}
