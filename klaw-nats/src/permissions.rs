//! The NATS permissions each role needs, for least-privilege users: a submitter can submit,
//! cancel and read its outcomes, but cannot publish an outcome, store one, or touch another
//! namespace; a worker can take jobs and answer them. Rendered from the same names the code
//! uses, so the list an operator grants is the list the tests run with.

use std::fmt;

use crate::NatsConfig;
use crate::connection::BURIERS;

/// What one role may publish and subscribe to, as nats-server `permissions` take them.
///
/// Workers create the namespace's streams and buckets when they are missing, so start a worker
/// (or any process with the [`admin`](Self::admin) rights) before the first submitter. A
/// submitter that starts first fails to connect with
/// [`NatsError::NotProvisioned`](crate::NatsError::NotProvisioned) as soon as the server
/// refuses it.
/// Every role also subscribes to `_INBOX.>`, where JetStream sends its replies.
///
/// A subject begins with the namespace as it is (`my_app.jobs`); a stream or bucket named in
/// one begins with the namespace with each `_` written `__` (`$KV.my__app_cancel.>`), as
/// [`NatsConfig::namespace`] says.
///
/// ```
/// let config = klaw_nats::NatsConfig::new("nats://h:4222").namespace("billing");
/// let submitter = klaw_nats::Permissions::submitter(&config);
/// assert!(submitter.publish.contains(&"billing.jobs".to_owned()));
/// assert!(!submitter.publish.iter().any(|subject| subject.starts_with("billing.reply")));
/// println!("{submitter}"); // a `permissions: { .. }` block for the server's config
///
/// let config = klaw_nats::NatsConfig::new("nats://h:4222").namespace("my_app");
/// let submitter = klaw_nats::Permissions::submitter(&config);
/// assert!(submitter.publish.contains(&"my_app.jobs".to_owned()));
/// assert!(submitter.publish.contains(&"$KV.my__app_cancel.>".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Permissions {
    /// Subjects the role may publish to (JetStream API requests are publishes).
    pub publish: Vec<String>,
    /// Subjects the role may subscribe to.
    pub subscribe: Vec<String>,
    /// Whether the role may answer requests it receives (nats-server's `allow_responses`): a
    /// submitter answers a worker that hands it an outcome.
    pub allow_responses: bool,
}

impl Permissions {
    /// A process that submits remote tasks (`NatsBackend`): publishes jobs, cancels its jobs
    /// (a marker in the cancel bucket, and deleting a job still queued), hears its outcomes
    /// and answers the worker that sent one, reads those stored for it and purges them, hears
    /// the server's advisories of jobs out of deliveries, and takes its turn at burying such
    /// jobs from those the exhausted stream keeps. It can neither publish nor store an outcome.
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::new("nats://h:4222");
    /// let submitter = klaw_nats::Permissions::submitter(&config);
    /// assert!(!submitter.publish.contains(&"$KV.klaw_outcomes.>".to_owned()));
    /// ```
    pub fn submitter(config: &NatsConfig) -> Self {
        let names = Names::of(config);
        let Names { ns, jobs, dead, cancel, outcomes, .. } = &names;
        let mut publish = vec![
            config.jobs_subject(),
            format!("$KV.{cancel}.>"),
            format!("{ns}.dead.>"),
            format!("$JS.API.STREAM.MSG.DELETE.{jobs}"),
            format!("$JS.API.STREAM.MSG.GET.{jobs}"),
            format!("$JS.API.STREAM.MSG.GET.{dead}"),
            format!("$JS.API.STREAM.PURGE.KV_{outcomes}"),
        ];
        publish.extend(names.lookups());
        publish.extend(names.burying());
        publish.extend(reads(outcomes));
        let subscribe =
            vec![format!("{ns}.reply.>"), config.max_deliveries_advisory(), "_INBOX.>".to_owned()];
        Self { publish, subscribe, allow_responses: true }
    }

    /// A worker process: takes jobs from the shared consumer and acknowledges them, watches
    /// the cancel bucket, publishes and stores outcomes, buries poison jobs and (with the
    /// submitters) jobs out of deliveries, and creates the namespace's streams, buckets and
    /// consumers when they are missing.
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::new("nats://h:4222");
    /// let worker = klaw_nats::Permissions::worker(&config);
    /// assert!(worker.publish.contains(&"klaw.reply.>".to_owned()));
    /// ```
    pub fn worker(config: &NatsConfig) -> Self {
        let names = Names::of(config);
        let Names { ns, jobs, cancel, outcomes, exhausted, .. } = &names;
        let consumer = config.workers_consumer();
        let mut publish = vec![
            format!("{ns}.reply.>"),
            format!("$KV.{outcomes}.>"),
            format!("{ns}.dead.>"),
            format!("$JS.ACK.{jobs}.>"),
            format!("$JS.API.CONSUMER.INFO.{jobs}.{consumer}"),
            format!("$JS.API.CONSUMER.CREATE.{jobs}.{consumer}"),
            format!("$JS.API.CONSUMER.CREATE.{jobs}.{consumer}.>"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{jobs}.{consumer}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{jobs}.{consumer}"),
            format!("$JS.API.STREAM.MSG.GET.{jobs}"),
            format!("$JS.API.STREAM.MSG.DELETE.{jobs}"),
            // The cancel bucket's watch: an ordered consumer, recreated after a reconnect.
            format!("$JS.API.CONSUMER.CREATE.KV_{cancel}"),
            format!("$JS.API.CONSUMER.CREATE.KV_{cancel}.>"),
            format!("$JS.API.CONSUMER.DELETE.KV_{cancel}.>"),
            format!("$JS.FC.KV_{cancel}.>"),
            format!("$JS.API.CONSUMER.CREATE.{exhausted}.{BURIERS}"),
            format!("$JS.API.CONSUMER.CREATE.{exhausted}.{BURIERS}.>"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{exhausted}.{BURIERS}"),
        ];
        publish.extend(names.lookups());
        publish.extend(names.creations());
        publish.extend(names.burying());
        publish.extend(reads(cancel));
        let subscribe = vec!["_INBOX.>".to_owned()];
        Self { publish, subscribe, allow_responses: false }
    }

    /// Everything in the namespace, for an operator's tools (creating or changing the streams
    /// and buckets, [`DeadLetters`](crate::DeadLetters)): the whole JetStream API, because
    /// JetStream's account-level requests (`$JS.API.INFO`, listing streams) name no stream.
    ///
    /// ```
    /// let admin = klaw_nats::Permissions::admin(&klaw_nats::NatsConfig::new("nats://h:4222"));
    /// assert!(admin.publish.contains(&"klaw.>".to_owned()));
    /// ```
    pub fn admin(config: &NatsConfig) -> Self {
        let Names { ns, cancel, outcomes, .. } = Names::of(config);
        let buckets = [cancel, outcomes, config.channels_bucket(), config.watch_bucket()];
        let mut publish = vec![format!("{ns}.>"), "$JS.>".to_owned()];
        publish.extend(buckets.iter().map(|bucket| format!("$KV.{bucket}.>")));
        let subscribe = vec![format!("{ns}.>"), "$JS.EVENT.>".to_owned(), "_INBOX.>".to_owned()];
        Self { publish, subscribe, allow_responses: false }
    }
}

/// A `permissions: { .. }` block for a user in nats-server's configuration.
impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |subjects: &[String]| {
            subjects.iter().map(|subject| format!("\"{subject}\"")).collect::<Vec<_>>().join(", ")
        };
        let responses = if self.allow_responses { ", allow_responses: true" } else { "" };
        write!(
            f,
            "permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }}{responses} }}",
            list(&self.publish),
            list(&self.subscribe)
        )
    }
}

/// The namespace's stream and bucket names (`NatsConfig` writes each `_` of the namespace
/// `__` in them, so that no two namespaces share one), and the namespace itself, for subjects.
struct Names {
    ns: String,
    jobs: String,
    dead: String,
    exhausted: String,
    cancel: String,
    outcomes: String,
}

impl Names {
    fn of(config: &NatsConfig) -> Self {
        Self {
            ns: config.namespace.clone(),
            jobs: config.jobs_stream(),
            dead: config.dead_letters_stream(),
            exhausted: config.exhausted_stream(),
            cancel: config.cancel_bucket(),
            outcomes: config.outcomes_bucket(),
        }
    }

    fn streams(&self) -> [String; 5] {
        let Self { jobs, dead, exhausted, cancel, outcomes, .. } = self;
        [
            jobs.clone(),
            dead.clone(),
            exhausted.clone(),
            format!("KV_{cancel}"),
            format!("KV_{outcomes}"),
        ]
    }

    /// Reading the exhausted stream's advisories from its shared consumer (created by a
    /// worker), and taking each off once its job is buried.
    fn burying(&self) -> [String; 3] {
        let exhausted = &self.exhausted;
        [
            format!("$JS.API.CONSUMER.INFO.{exhausted}.{BURIERS}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{exhausted}.{BURIERS}"),
            format!("$JS.ACK.{exhausted}.>"),
        ]
    }

    /// Finding the streams and buckets when a process starts.
    fn lookups(&self) -> impl Iterator<Item = String> {
        self.streams().into_iter().map(|stream| format!("$JS.API.STREAM.INFO.{stream}"))
    }

    /// Creating them when they are missing (creating a bucket first reads the account's
    /// JetStream limits).
    fn creations(&self) -> impl Iterator<Item = String> {
        self.streams()
            .into_iter()
            .map(|stream| format!("$JS.API.STREAM.CREATE.{stream}"))
            .chain(["$JS.API.INFO".to_owned()])
    }
}

/// Reading keys of `bucket` (direct gets, or message gets if the bucket has no direct access).
fn reads(bucket: &str) -> [String; 3] {
    [
        format!("$JS.API.DIRECT.GET.KV_{bucket}"),
        format!("$JS.API.DIRECT.GET.KV_{bucket}.>"),
        format!("$JS.API.STREAM.MSG.GET.KV_{bucket}"),
    ]
}
