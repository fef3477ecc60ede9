//! One connection to the server, and the JetStream objects remote tasks use (the jobs stream
//! and the cancel bucket), which channel-only users never create. async-nats needs a tokio
//! context; every call here runs inside `async_compat::Compat`, which provides one whatever
//! executor polls it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};

use crate::channel::closing::ClosedFlags;
use crate::channel::unconfirmed::UnconfirmedByChannel;
use crate::refusals::Refusals;
use crate::{NatsAuth, NatsConfig, NatsError, redact_url};

/// How long a cancel marker is kept: longer than any job waits in the queue.
const CANCEL_MARKER_AGE: Duration = Duration::from_secs(24 * 3600);

/// How long a dead letter is kept for an operator to look at.
pub const DEAD_LETTER_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What every handle of one channel opened on a connection shares, by the channel's key, while
/// a handle lives (its acknowledgements not yet confirmed, its closed flag).
pub(crate) type PerChannel<T> = Mutex<HashMap<String, Weak<T>>>;

/// The `T` that `channels` keeps for `key`, made if no handle holds one any more.
pub(crate) fn shared_per_channel<T: Default>(channels: &PerChannel<T>, key: &str) -> Arc<T> {
    let mut channels = channels.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(live) = channels.get(key).and_then(Weak::upgrade) {
        return live;
    }
    // Forget the channels no handle uses any more (only `Weak`s are dropped here).
    channels.retain(|_, shared| shared.strong_count() > 0);
    let made = Arc::new(T::default());
    channels.insert(key.to_owned(), Arc::downgrade(&made));
    made
}

#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) config: NatsConfig,
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    /// The tokio runtime async-nats runs on, for work started from sync code (cancel hooks).
    pub(crate) tokio: tokio::runtime::Handle,
    /// How many times the connection came back after it was lost: what was published to this
    /// client meanwhile is gone, so whoever waits for it looks again.
    pub(crate) reconnects: Arc<AtomicU64>,
    /// Each channel's acknowledgements sent on this connection and not yet confirmed, shared
    /// by every handle of the channel opened on it (see `channel::unconfirmed::Unconfirmed`).
    pub(crate) unconfirmed: Arc<UnconfirmedByChannel>,
    /// Each channel's closed flag on this connection, shared by every handle of the channel
    /// opened on it (see `channel::closing::Closing`).
    pub(crate) closed_flags: Arc<ClosedFlags>,
    /// The subjects the server refused to let this connection publish to.
    pub(crate) refusals: Arc<Refusals>,
}

impl Connection {
    /// Checks the configuration, then connects.
    pub(crate) async fn open(config: NatsConfig) -> Result<Self, NatsError> {
        config.validate()?;
        let reconnects = Arc::new(AtomicU64::new(0));
        let counter = reconnects.clone();
        let refusals = Arc::new(Refusals::default());
        let heard = refusals.clone();
        let (url, url_auth) = crate::config::split_credentials(&config.url);
        let auth = if config.auth == NatsAuth::None { url_auth } else { config.auth.clone() };
        let raw_url = config.url.clone();
        let connect_error = move |message: String| NatsError::Connect {
            url: redact_url(&raw_url),
            message: crate::config::hide_secrets(&message, &raw_url),
        };
        async_compat::Compat::new(async {
            let mut options = match &auth {
                NatsAuth::None => async_nats::ConnectOptions::new(),
                NatsAuth::UserPassword { user, password } => {
                    async_nats::ConnectOptions::with_user_and_password(
                        user.clone(),
                        password.expose().to_owned(),
                    )
                }
                NatsAuth::Token(token) => {
                    async_nats::ConnectOptions::with_token(token.expose().to_owned())
                }
                NatsAuth::NKey(seed) => {
                    async_nats::ConnectOptions::with_nkey(seed.expose().to_owned())
                }
                NatsAuth::CredsFile(path) => {
                    async_nats::ConnectOptions::with_credentials_file(path).await.map_err(
                        |error| NatsError::Config {
                            // `validate` checked the file; it changed since.
                            setting: "NatsConfig::auth",
                            value: path.display().to_string(),
                            expected: if error.kind() == std::io::ErrorKind::NotFound {
                                "the path of a readable .creds file"
                            } else {
                                "a .creds file with a user JWT and its NKey seed"
                            },
                        },
                    )?
                }
            };
            if let Some(ca) = &config.tls.ca {
                options = options.add_root_certificates(ca.clone());
            }
            if let (Some(cert), Some(key)) = (&config.tls.client_cert, &config.tls.client_key) {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
            if config.tls.is_set() || url.starts_with("tls://") {
                options = options.require_tls(true);
            }
            let client = options
                .name(format!("klaw {}", config.namespace))
                .event_callback(move |event| {
                    let counter = counter.clone();
                    let heard = heard.clone();
                    async move {
                        match event {
                            async_nats::Event::ServerError(async_nats::ServerError::Other(
                                error,
                            )) => {
                                // A permission refusal answers the request that caused it.
                                heard.hear(&error);
                                tracing::warn!(%error, "the NATS server refused a request");
                            }
                            async_nats::Event::Connected => {
                                counter.fetch_add(1, Ordering::SeqCst);
                            }
                            async_nats::Event::Disconnected => {
                                tracing::warn!("lost the connection to NATS; reconnecting");
                            }
                            _ => {}
                        }
                    }
                })
                .connect(url.as_str())
                .await
                .map_err(|error| connect_error(error.to_string()))?;
            let jetstream = jetstream::new(client.clone());
            let tokio = tokio::runtime::Handle::current();
            let (unconfirmed, closed_flags) = (Arc::default(), Arc::default());
            Ok(Self {
                config,
                client,
                jetstream,
                tokio,
                reconnects,
                unconfirmed,
                closed_flags,
                refusals,
            })
        })
        .await
    }
}

/// The subject under which `key` of `store` is written in the bucket's stream, as the key-value
/// API writes it: for publishing to a key directly, or purging it through the stream.
pub(crate) fn key_subject(store: &kv::Store, key: &str) -> String {
    format!("{}{key}", store.put_prefix.as_ref().unwrap_or(&store.prefix))
}

/// The bucket `config` describes: found if it exists (a lookup, which a least-privilege
/// submitter may do), else created. An existing bucket keeps its TTL. `what` names it for an
/// error, `action` for a failure to create it.
async fn bucket(
    connection: &Connection,
    config: kv::Config,
    (what, action): (&'static str, &'static str),
) -> Result<kv::Store, NatsError> {
    let name = config.bucket.clone();
    let jetstream = &connection.jetstream;
    let Ok(found) = jetstream.get_key_value(&name).await else {
        // Missing (or the lookup failed: then creating fails too, and says why).
        let create = jetstream.create_key_value(config);
        // A bucket is the stream `KV_<name>`.
        let tail = format!(".STREAM.CREATE.KV_{name}");
        return match connection.refusals.unless_refused(&tail, create).await {
            Some(created) => {
                created.map_err(|error| NatsError::jetstream(action)(error.to_string()))
            }
            None => Err(NatsError::NotProvisioned { missing: format!("{what} `{name}`") }),
        };
    };
    let kept = found.stream.cached_info().config.max_age;
    if kept != config.max_age {
        // The bucket keeps the TTL it was created with: processes configured differently
        // would otherwise take turns setting it. An operator changes it on the server.
        tracing::info!(bucket = %name, ?kept, wanted = ?config.max_age, "the bucket keeps its own TTL");
    }
    Ok(found)
}

/// The stream `config` describes: found if it exists (a lookup, which a least-privilege
/// submitter may do), else created. `what` names it for an error, `action` for a failure to
/// create it.
async fn find_or_create_stream(
    connection: &Connection,
    config: stream::Config,
    (what, action): (&'static str, &'static str),
) -> Result<stream::Stream, NatsError> {
    let name = config.name.clone();
    let found_or_created = connection.jetstream.get_or_create_stream(config);
    let tail = format!(".STREAM.CREATE.{name}");
    match connection.refusals.unless_refused(&tail, found_or_created).await {
        Some(stream) => stream.map_err(|error| NatsError::jetstream(action)(error.to_string())),
        None => Err(NatsError::NotProvisioned { missing: format!("{what} `{name}`") }),
    }
}

/// The jobs stream, the cancel bucket and the outcomes bucket: what submitters and workers
/// share.
#[derive(Debug, Clone)]
pub(crate) struct JobQueue {
    pub(crate) jobs: stream::Stream,
    pub(crate) cancels: kv::Store,
    /// A job's outcome, keyed `<client>.<job>`, from the worker's `put` until its submitter
    /// reads (and purges) it, or `outcome_ttl` passes.
    pub(crate) outcomes: kv::Store,
    /// Poison jobs, with their reason, for an operator to inspect or replay.
    pub(crate) dead: stream::Stream,
    /// The server's advisories of jobs out of deliveries, kept until a process buried the job.
    pub(crate) exhausted: stream::Stream,
}

/// The durable consumer of the exhausted stream that every worker and submitter reads from:
/// each advisory goes to one of them.
pub(crate) const BURIERS: &str = "buriers";

impl JobQueue {
    /// Creates (or finds) the jobs stream, the cancel and outcomes buckets, the dead-letter
    /// stream and the exhausted stream: five requests, sent together, so a process starts after
    /// one round trip.
    pub(crate) async fn open(connection: &Connection) -> Result<Self, NatsError> {
        let config = &connection.config;
        async_compat::Compat::new(async {
            let jobs = find_or_create_stream(
                connection,
                stream::Config {
                    name: config.jobs_stream(),
                    subjects: vec![config.jobs_subject()],
                    // Each job goes to one worker and leaves the stream once acknowledged.
                    retention: stream::RetentionPolicy::WorkQueue,
                    storage: stream::StorageType::File,
                    ..Default::default()
                },
                ("the jobs stream", "creating the jobs stream"),
            );
            let cancels = bucket(
                connection,
                kv::Config {
                    bucket: config.cancel_bucket(),
                    description: "klaw: jobs cancelled by their submitter".to_owned(),
                    history: 1,
                    max_age: CANCEL_MARKER_AGE,
                    ..Default::default()
                },
                ("the cancel bucket", "creating the cancel bucket"),
            );
            let outcomes = bucket(
                connection,
                kv::Config {
                    bucket: config.outcomes_bucket(),
                    description: "klaw: job outcomes waiting for their submitters".to_owned(),
                    history: 1,
                    max_age: config.outcome_ttl,
                    storage: stream::StorageType::File,
                    ..Default::default()
                },
                ("the outcomes bucket", "creating the outcomes bucket"),
            );
            let dead = find_or_create_stream(
                connection,
                stream::Config {
                    name: config.dead_letters_stream(),
                    subjects: vec![config.dead_letters_subjects()],
                    description: Some(
                        "klaw: jobs that could not run, with their reason".to_owned(),
                    ),
                    storage: stream::StorageType::File,
                    max_age: DEAD_LETTER_AGE,
                    // A job dead-lettered by several processes at once is kept once.
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                },
                ("the dead-letter stream", "creating the dead-letter stream"),
            );
            let exhausted = find_or_create_stream(
                connection,
                stream::Config {
                    name: config.exhausted_stream(),
                    // The server publishes these on core NATS: a process away when one is sent
                    // would never hear of it, and its job would stay in the queue.
                    subjects: vec![config.max_deliveries_advisory()],
                    description: Some(
                        "klaw: jobs out of deliveries, until one is in the dead letters".to_owned(),
                    ),
                    // Each advisory is taken off once a process has buried its job.
                    retention: stream::RetentionPolicy::WorkQueue,
                    storage: stream::StorageType::File,
                    max_age: DEAD_LETTER_AGE,
                    ..Default::default()
                },
                ("the exhausted stream", "creating the exhausted stream"),
            );
            // All five are awaited, and an error reported in this order (the jobs stream first),
            // not in the order the server answered: a user refused all five (a submitter started
            // before any worker) is told the same thing every time.
            let (jobs, cancels, outcomes, dead, exhausted) =
                futures_util::future::join5(jobs, cancels, outcomes, dead, exhausted).await;
            Ok(Self {
                jobs: jobs?,
                cancels: cancels?,
                outcomes: outcomes?,
                dead: dead?,
                exhausted: exhausted?,
            })
        })
        .await
    }

    /// The durable consumer of the exhausted stream that every worker and submitter shares:
    /// each advisory goes to one of them.
    pub(crate) async fn buriers_consumer(
        &self,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, NatsError> {
        self.exhausted
            .get_or_create_consumer(
                BURIERS,
                consumer::pull::Config {
                    durable_name: Some(BURIERS.to_owned()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .map_err(|error| {
                NatsError::jetstream("creating the exhausted stream's consumer")(error.to_string())
            })
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
