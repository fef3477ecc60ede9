//! One connection to the server, and the JetStream objects remote tasks use (the jobs stream
//! and the cancel bucket), which channel-only users never create. async-nats needs a tokio
//! context; every call here runs inside `async_compat::Compat`, which provides one whatever
//! executor polls it.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};

use crate::{NatsConfig, NatsError};

/// How long a cancel marker is kept: longer than any job waits in the queue.
const CANCEL_MARKER_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) config: NatsConfig,
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    /// The tokio runtime async-nats runs on, for work started from sync code (cancel hooks).
    pub(crate) tokio: tokio::runtime::Handle,
}

impl Connection {
    /// Connects.
    pub(crate) async fn open(config: NatsConfig) -> Result<Self, NatsError> {
        async_compat::Compat::new(async {
            let client = async_nats::ConnectOptions::new()
                .name(format!("klaw {}", config.namespace))
                .connect(&config.url)
                .await
                .map_err(|error| NatsError::Connect {
                    url: config.url.clone(),
                    message: error.to_string(),
                })?;
            let jetstream = jetstream::new(client.clone());
            let tokio = tokio::runtime::Handle::current();
            Ok(Self { config, client, jetstream, tokio })
        })
        .await
    }
}

/// The jobs stream and the cancel bucket: what submitters and workers share.
#[derive(Debug, Clone)]
pub(crate) struct JobQueue {
    pub(crate) jobs: stream::Stream,
    pub(crate) cancels: kv::Store,
}

impl JobQueue {
    /// Creates (or finds) the jobs stream and the cancel bucket.
    pub(crate) async fn open(connection: &Connection) -> Result<Self, NatsError> {
        let (config, jetstream) = (&connection.config, &connection.jetstream);
        async_compat::Compat::new(async {
            let jobs = jetstream
                .get_or_create_stream(stream::Config {
                    name: config.jobs_stream(),
                    subjects: vec![config.jobs_subject()],
                    // Each job goes to one worker and leaves the stream once acknowledged.
                    retention: stream::RetentionPolicy::WorkQueue,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|error| {
                    NatsError::jetstream("creating the jobs stream")(error.to_string())
                })?;
            let cancels = jetstream
                .create_or_update_key_value(kv::Config {
                    bucket: config.cancel_bucket(),
                    description: "klaw: jobs cancelled by their submitter".to_owned(),
                    history: 1,
                    max_age: CANCEL_MARKER_AGE,
                    ..Default::default()
                })
                .await
                .map_err(|error| {
                    NatsError::jetstream("creating the cancel bucket")(error.to_string())
                })?;
            Ok(Self { jobs, cancels })
        })
        .await
    }

    /// The durable consumer all workers share: each job goes to one of them.
    pub(crate) async fn workers_consumer(
        &self,
        config: &NatsConfig,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, NatsError> {
        self.jobs
            .get_or_create_consumer(
                &config.workers_consumer(),
                consumer::pull::Config {
                    durable_name: Some(config.workers_consumer()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    max_deliver: i64::from(config.max_deliver),
                    ..Default::default()
                },
            )
            .await
            .map_err(|error| {
                NatsError::jetstream("creating the workers' consumer")(error.to_string())
            })
    }
}
