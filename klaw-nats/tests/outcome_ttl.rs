//! `RemoteError::OutcomeExpired` names the TTL the outcomes bucket applied: the one the process
//! that created the bucket chose (usually a worker), which the bucket keeps whatever later
//! processes are configured with (distributed.md), not this submitter's own `outcome_ttl`. Its
//! advice ("keep outcomes longer") must point at the setting that removed the outcome.
//!
//! What would break it: an error that reports the submitter's setting (an hour by default),
//! while the bucket kept the outcome 1 s.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NatsServer, Proxy, port_of, wait_until};
use klaw::Runtime;
use klaw_nats::{NatsBackend, NatsConfig, Worker};

#[klaw::task(remote)]
async fn slow_triple(n: u64, millis: u64) -> u64 {
    klaw::time::sleep(Duration::from_millis(millis)).await;
    3 * n
}

/// A worker creates the bucket with a 1 s TTL; the submitter keeps the default hour and is cut
/// off (a proxy) while its job runs and its outcome expires unread. Checks: the call ends
/// `OutcomeExpired` with `ttl_secs == 1`.
#[test]
fn outcome_expired_names_the_ttl_the_bucket_kept_not_the_submitters_setting() {
    let namespace = "ttl-shown";
    let server = NatsServer::start();
    // The worker connects first: it creates the outcomes bucket, with a TTL of 1 s.
    let workers = Runtime::builder().workers(2).local().build().unwrap();
    let worker_config = server.config().namespace(namespace).outcome_ttl(Duration::from_secs(1));
    let worker = klaw::runtime::block_on(Worker::connect(worker_config)).unwrap();
    let _running = workers.spawn(worker.run());
    // The submitter keeps the default TTL (an hour), through a proxy that can cut it off.
    let proxy = Proxy::to(port_of(&server.url));
    let submitter_config = NatsConfig::new(proxy.url()).namespace(namespace);
    assert_eq!(submitter_config.outcome_ttl, Duration::from_secs(3600));
    let backend = klaw::runtime::block_on(NatsBackend::connect(submitter_config)).unwrap();
    let submitter =
        Runtime::builder().workers(1).backend(Arc::new(backend.clone())).build().unwrap();

    let handle = submitter.spawn(slow_triple(1, 300));
    wait_until(Duration::from_secs(10), "the job is taken", || {
        klaw::runtime::block_on(backend.queued()).unwrap() == 1
    });
    // Cut off far longer than the job and the bucket's 1 s TTL: the outcome is stored, then
    // expires unread.
    proxy.cut();
    std::thread::sleep(Duration::from_secs(5));
    proxy.heal();

    let result = submitter
        .block_on(klaw::cancel::fail_after(Duration::from_secs(30), handle))
        .expect("the handle ended within the bound");
    match result {
        Err(klaw::TaskError::Remote(error)) => match *error {
            klaw::remote::RemoteError::OutcomeExpired { ttl_secs, .. } => assert_eq!(
                ttl_secs, 1,
                "the outcome was kept for the bucket's TTL (1 s), yet the error says {ttl_secs} s \
                 (the submitter's own outcome_ttl), and its advice points at a setting the bucket \
                 ignores"
            ),
            other => panic!("expected OutcomeExpired, got {other}"),
        },
        other => panic!("expected OutcomeExpired, got {other:?}"),
    }
}
