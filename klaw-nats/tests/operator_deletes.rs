//! What an operator may do to the server under a running klaw: delete the workers' consumer,
//! the jobs stream, or a channel's consumer. A call is served again or ends with a typed error,
//! and a value a channel accepted is still received; none waits for ever.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NatsServer, wait_until};
use klaw::remote::RemoteError;
use klaw::{Runtime, TaskError};
use klaw_nats::{NatsBackend, Worker};

#[klaw::task(remote)]
async fn tripled(n: u64) -> u64 {
    3 * n
}

/// A worker whose consumer was deleted finds or makes it again at its next failed pull, and
/// serves the calls that come after. What would break it: a worker that made its consumer once
/// and pulled from the deleted one for ever, every call waiting.
#[test]
fn a_worker_whose_consumer_an_operator_deleted_serves_again_or_reports_it() {
    common::watchdog(Duration::from_secs(150), || {
        let server = NatsServer::start();
        // No `_` in the namespace: the consumer is then named `<namespace>_workers`.
        let namespace = "wgone";
        let config = server.config().namespace(namespace);
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        let worker = klaw::runtime::block_on(Worker::connect(config.clone())).unwrap();
        let running = workers.spawn(worker.run());
        let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
        let submitter = Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap();

        // The worker serves.
        let first = submitter.spawn(tripled(1));
        let first = submitter
            .block_on(klaw::cancel::fail_after(Duration::from_secs(30), first))
            .expect("the first call ended");
        assert_eq!(first, Ok(3));

        // An operator deletes the workers' consumer (the worker keeps running).
        let jobs_stream = config.jobs_stream();
        let consumer = format!("{namespace}_workers");
        let url = server.url.clone();
        klaw::runtime::block_on(async_compat::Compat::new(async move {
            let client = async_nats::connect(&url).await.unwrap();
            let jetstream = async_nats::jetstream::new(client);
            let jobs = jetstream.get_stream(&jobs_stream).await.unwrap();
            let deleted = jobs.delete_consumer(&consumer).await.unwrap();
            assert!(deleted.success, "the consumer was not deleted");
        }));

        // A call submitted now: the worker must serve it (making its consumer again), or its
        // `run` must end with an error. 45 s is many times what the call takes when served.
        let second = submitter.spawn(tripled(2));
        let second = submitter.block_on(klaw::cancel::fail_after(Duration::from_secs(45), second));
        let served = matches!(second, Ok(Ok(6)));
        let reported = running.is_finished() && matches!(workers.block_on(running), Ok(Err(_)));
        assert!(
            served || reported,
            "after its consumer was deleted the worker neither served the call nor ended with \
             an error (call: {second:?}); it pulls from a consumer that no longer exists, for \
             ever, and the call waits for ever"
        );
    });
}

/// A call whose queued job went with its deleted stream ends with a typed error at a sweep, as
/// one whose job was purged does. What would break it: "stream not found" read as "still
/// queued", so the handle waited for ever.
#[test]
fn a_call_whose_queued_job_went_with_its_deleted_stream_ends_with_a_typed_error() {
    common::watchdog(Duration::from_secs(150), || {
        let server = NatsServer::start();
        let config = server.config().namespace("sgone");
        // No worker: the job stays queued until the stream goes.
        let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
        let submitter =
            Runtime::builder().workers(1).backend(Arc::new(backend.clone())).build().unwrap();
        let handle = submitter.spawn(tripled(7));
        wait_until(Duration::from_secs(10), "the job is queued", || {
            klaw::runtime::block_on(backend.queued()).unwrap() == 1
        });
        // Let the submitter record the job's place in the stream (it does so on the ack).
        std::thread::sleep(Duration::from_millis(500));

        // An operator deletes the jobs stream, and the queued job with it.
        let jobs_stream = config.jobs_stream();
        let url = server.url.clone();
        klaw::runtime::block_on(async_compat::Compat::new(async move {
            let client = async_nats::connect(&url).await.unwrap();
            let jetstream = async_nats::jetstream::new(client);
            let deleted = jetstream.delete_stream(&jobs_stream).await.unwrap();
            assert!(deleted.success, "the jobs stream was not deleted");
        }));

        // The job has left the queue with no outcome: the next sweeps must end the handle. The
        // bound is only a hang detector (several sweeps), not a timing claim.
        let bound = klaw_nats::SWEEP_EVERY * 3 + Duration::from_secs(10);
        let result = submitter
            .block_on(klaw::cancel::fail_after(bound, handle))
            .expect("the handle never ended: the sweep takes a deleted stream for a queued job");
        match &result {
            Err(TaskError::Remote(error)) => assert!(
                matches!(
                    **error,
                    RemoteError::OutcomeExpired { .. }
                        | RemoteError::Transport(_)
                        | RemoteError::MaxDeliveries { .. }
                ),
                "{error:?}"
            ),
            other => panic!("expected a typed remote error, got {other:?}"),
        }
        assert_eq!(backend.in_flight(), 0);
    });
}

/// A channel whose consumer was deleted makes it again at a failed pull: a value it accepted
/// is still received. What would break it: every failed pull taken for a server away, so the
/// receiver waited for ever with the value in the stream.
#[test]
fn a_value_sent_after_an_operator_deleted_the_channel_s_consumer_is_still_received() {
    common::watchdog(Duration::from_secs(90), || {
        let server = NatsServer::start();
        // No `_` in the namespace or the name: the stream and its consumer are
        // `<namespace>_chan_<name>`.
        let (namespace, name) = ("chgone", "orders");
        let config = server.config().namespace(namespace);
        let url = server.url.clone();
        klaw::runtime::block_on(async move {
            let nats = klaw_nats::Nats::connect(config).await.unwrap();
            let (tx, rx) = nats.channel::<u32>(name, 8).await.unwrap();
            // The channel works.
            tx.send(1).await.unwrap();
            let first = klaw::cancel::fail_after(Duration::from_secs(10), rx.recv()).await;
            assert_eq!(first.expect("the first value came"), Ok(1));

            // An operator deletes the channel's consumer; the stream stays.
            let consumer = format!("{namespace}_chan_{name}");
            async_compat::Compat::new(async {
                let client = async_nats::connect(&url).await.unwrap();
                let jetstream = async_nats::jetstream::new(client);
                let stream = jetstream.get_stream(&consumer).await.unwrap();
                let deleted = stream.delete_consumer(&consumer).await.unwrap();
                assert!(deleted.success, "the consumer was not deleted");
            })
            .await;

            // The channel accepts a value...
            tx.send(2).await.expect("the channel accepted the value");
            assert_eq!(rx.len().await.unwrap(), 1, "the value is in the channel's stream");
            // ...which must reach the receiver (a bound many times a round trip: a hang
            // detector, not a timing claim).
            let second = klaw::cancel::fail_after(Duration::from_secs(30), rx.recv()).await;
            assert_eq!(
                second.ok(),
                Some(Ok(2)),
                "a value the channel accepted never reached the waiting receiver: it pulls from \
                 a consumer that no longer exists, for ever"
            );
        });
    });
}
