//! Least privilege on a real server: a submitter and a worker that hold only the permissions
//! `Permissions::submitter` and `Permissions::worker` list do their whole job (submit, cancel,
//! answer, purge, bury a job out of deliveries), and the submitter cannot forge an outcome or reach another namespace.

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::{NatsServer, submitter_runtime};
use klaw::Runtime;
use klaw::TaskError;
use klaw_nats::{NatsAuth, NatsConfig, Permissions, Secret, Worker};

#[klaw::task(remote)]
async fn triple(n: u64) -> u64 {
    3 * n
}

/// A server with three users in namespace `test`: `admin` (everything, for the test's own
/// checks), and `submitter` and `worker` with what their roles list and nothing more.
fn server_with_roles() -> (NatsServer, tempfile::TempDir) {
    let config = NatsConfig::new("nats://unused").namespace("test");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("server.conf");
    let users = format!(
        "authorization {{ users = [\n\
         {{ user: admin, password: admin }}\n\
         {{ user: submitter, password: sub, {} }}\n\
         {{ user: worker, password: wrk, {} }}\n\
         ] }}\n",
        Permissions::submitter(&config),
        Permissions::worker(&config),
    );
    std::fs::write(&conf, users).unwrap();
    (NatsServer::start_with(&["-c", conf.to_str().unwrap()]), dir)
}

/// `handle`'s result, or a panic after 20 s.
async fn within<T: Send + 'static>(handle: klaw::TaskHandle<T>) -> Result<T, TaskError> {
    let bounded = klaw::cancel::fail_after(Duration::from_secs(20), handle).await;
    bounded.expect("no answer within 20 s: a permission is missing")
}

fn as_user(server: &NatsServer, user: &str, password: &str) -> NatsConfig {
    let auth = NatsAuth::UserPassword { user: user.into(), password: Secret::new(password) };
    server.config().auth(auth).ack_wait(Duration::from_secs(2)).max_deliver(2)
}

/// Runs `body` with a JetStream context of `user`, on tokio (async-nats needs it).
fn with_client<T>(
    server: &NatsServer,
    user: &str,
    password: &str,
    body: impl AsyncFnOnce(async_nats::Client, jetstream::Context) -> T,
) -> T {
    klaw::runtime::block_on(async_compat::Compat::new(async {
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
                .connect(&server.url)
                .await
                .unwrap();
        let context = jetstream::new(client.clone());
        body(client, context).await
    }))
}

/// Messages in a stream, as the admin sees them.
fn messages_in(server: &NatsServer, stream: &str) -> u64 {
    with_client(server, "admin", "admin", async |_, js| {
        js.get_stream(stream).await.unwrap().info().await.unwrap().state.messages
    })
}

#[test]
fn each_role_does_its_job_with_only_its_listed_permissions() {
    let (server, _dir) = server_with_roles();
    let workers = Runtime::builder().workers(1).local().build().unwrap();
    // The worker comes first: it creates the streams and buckets, which a submitter may not.
    let worker = klaw::runtime::block_on(Worker::connect(as_user(&server, "worker", "wrk")));
    let running = workers.spawn(worker.unwrap().run());
    let submitter = submitter_runtime(as_user(&server, "submitter", "sub"));
    // Bounded, so that a missing permission fails the test instead of hanging it.
    let answered = submitter.block_on(within(submitter.spawn(triple(14))));
    assert_eq!(answered, Ok(42));
    // The submitter answered the worker, so nothing was stored.
    assert_eq!(messages_in(&server, "KV_test_outcomes"), 0);
    // An outcome stored for a submitter that was away: the submitter may purge it through the
    // stream's purge API (what it does once it has read it), which is no write to the key.
    with_client(&server, "worker", "wrk", async |_, js| {
        let outcomes = js.get_key_value("test_outcomes").await.unwrap();
        outcomes.put("someone.job9", "Returned([1])".into()).await.unwrap();
    });
    assert_eq!(messages_in(&server, "KV_test_outcomes"), 1);
    with_client(&server, "submitter", "sub", async |_, js| {
        let mut outcomes = js.get_stream("KV_test_outcomes").await.unwrap();
        outcomes.purge().filter("$KV.test_outcomes.someone.job9").await.unwrap();
        let _ = outcomes.info().await.unwrap();
    });
    assert_eq!(messages_in(&server, "KV_test_outcomes"), 0, "the submitter could not purge");
    // With no worker running, a cancelled job is deleted from the queue by its submitter.
    running.cancel("test: stop the worker");
    drop(workers);
    let queued = submitter.spawn(triple(1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(messages_in(&server, "test_jobs"), 1);
    queued.cancel("test: never mind");
    assert!(matches!(submitter.block_on(within(queued)), Err(TaskError::Cancelled(_))));
    let mut deleted = false;
    for _ in 0..50 {
        deleted = messages_in(&server, "test_jobs") == 0;
        if deleted {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(deleted, "the submitter could not delete its cancelled job");
    // With no worker running, a job that runs out of deliveries (taken by hand and never
    // acknowledged, as by workers that die holding it) is moved to the dead letters by its
    // submitter, from the advisory the exhausted stream keeps.
    let exhausted = submitter.spawn(triple(2));
    std::thread::sleep(Duration::from_millis(300));
    with_client(&server, "admin", "admin", async |_, js| {
        let workers = js.get_consumer_from_stream("test_workers", "test_jobs").await.unwrap();
        common::take_until_out_of_deliveries(&workers, 2, Duration::from_millis(2500)).await;
    });
    assert!(matches!(submitter.block_on(within(exhausted)), Err(TaskError::Remote(_))));
    let mut buried = false;
    for _ in 0..500 {
        buried = messages_in(&server, "test_dead") == 1 && messages_in(&server, "test_jobs") == 0;
        if buried {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(buried, "the submitter could not bury a job out of deliveries");
}

#[test]
fn a_submitter_cannot_forge_an_outcome_or_touch_another_namespace() {
    let (server, _dir) = server_with_roles();
    // The namespace's objects, and another namespace's jobs stream and cancel bucket.
    let worker = klaw::runtime::block_on(Worker::connect(as_user(&server, "worker", "wrk")));
    drop(worker.unwrap());
    with_client(&server, "admin", "admin", async |_, js| {
        js.create_stream(jetstream::stream::Config {
            name: "other_jobs".into(),
            subjects: vec!["other.jobs".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish("other.jobs", "a job of another namespace".into()).await.unwrap().await.unwrap();
        js.create_key_value(jetstream::kv::Config {
            bucket: "other_cancel".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let (heard, stored, cancelled) = with_client(&server, "admin", "admin", async |admin, js| {
        let mut replies = admin.subscribe("test.reply.>").await.unwrap();
        admin.flush().await.unwrap();
        with_client_inside(&server, async |forger| {
            // An outcome on a submitter's reply subject, and one stored in the bucket.
            forger.publish("test.reply.victim.job1", "Returned([6])".into()).await.unwrap();
            forger.publish("$KV.test_outcomes.victim.job1", "Returned([6])".into()).await.unwrap();
            // Another namespace's job: a cancel marker, and deleting it from its queue.
            forger.publish("$KV.other_cancel.job1", "cancelled".into()).await.unwrap();
            let delete = forger.request(
                "$JS.API.STREAM.MSG.DELETE.other_jobs",
                r#"{"seq":1,"no_erase":true}"#.into(),
            );
            let _ = tokio::time::timeout(Duration::from_secs(1), delete).await;
            forger.flush().await.unwrap();
        })
        .await;
        let heard = tokio::time::timeout(
            Duration::from_millis(500),
            futures_util::StreamExt::next(&mut replies),
        )
        .await
        .ok()
        .flatten();
        let outcomes = js.get_key_value("test_outcomes").await.unwrap();
        let stored = outcomes.get("victim.job1").await.unwrap();
        let other = js.get_key_value("other_cancel").await.unwrap();
        let cancelled = other.get("job1").await.unwrap();
        (heard.map(|message| message.payload), stored, cancelled)
    });
    assert_eq!(heard, None, "a submitter published on a reply subject");
    assert_eq!(stored, None, "a submitter stored an outcome");
    assert_eq!(cancelled, None, "a submitter cancelled another namespace's job");
    assert_eq!(
        messages_in(&server, "other_jobs"),
        1,
        "a submitter deleted another namespace's job"
    );
}

/// A raw client logged in as the submitter, inside an async block already on tokio.
async fn with_client_inside(server: &NatsServer, body: impl AsyncFnOnce(async_nats::Client)) {
    let client =
        async_nats::ConnectOptions::with_user_and_password("submitter".into(), "sub".into())
            .connect(&server.url)
            .await
            .unwrap();
    body(client).await;
}

/// A least-privilege submitter that starts before any worker finds no jobs stream and may not
/// create one: `connect` says so as soon as the server refuses (not after the request's
/// timeout), names what is missing and what to do, and does not blame the server's JetStream.
/// Once a worker has created the namespace's objects, it connects.
#[test]
fn a_submitter_started_before_any_worker_is_told_to_start_a_worker_first() {
    let (server, _dir) = server_with_roles();
    let refused = klaw::runtime::block_on(klaw_nats::NatsBackend::connect(as_user(
        &server,
        "submitter",
        "sub",
    )));
    let error = refused.expect_err("the submitter created what only a worker may create");
    assert!(
        matches!(&error, klaw_nats::NatsError::NotProvisioned { missing, .. } if missing.contains("test_jobs")),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("start a worker"), "{message}");
    assert!(!message.contains("-js"), "JetStream runs; the user lacks a permission: {message}");
    let worker = klaw::runtime::block_on(Worker::connect(as_user(&server, "worker", "wrk")));
    drop(worker.unwrap());
    let connected = klaw::runtime::block_on(klaw_nats::NatsBackend::connect(as_user(
        &server,
        "submitter",
        "sub",
    )));
    connected.expect("the worker created what the submitter needs");
}
