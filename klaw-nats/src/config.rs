//! Where the server is and how jobs are delivered: from the environment or set by hand.

use std::time::Duration;

/// The environment variable with the server's URL.
pub const URL_ENV: &str = "KLAW_NATS_URL";
/// The environment variable with the namespace (prefix of every stream, subject and bucket).
pub const NAMESPACE_ENV: &str = "KLAW_NATS_NAMESPACE";
/// The environment variable with the ack wait, in milliseconds.
pub const ACK_WAIT_ENV: &str = "KLAW_NATS_ACK_WAIT_MS";
/// The environment variable with the number of deliveries a job gets.
pub const MAX_DELIVER_ENV: &str = "KLAW_NATS_MAX_DELIVER";

/// How klaw uses a NATS server.
///
/// ```
/// let config = klaw_nats::NatsConfig::new("nats://10.0.0.5:4222").namespace("billing");
/// assert_eq!(config.jobs_stream(), "billing_jobs");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Prefix of every stream, subject and bucket, so that several applications (or tests) can
    /// share one server. Letters, digits, `-` and `_`.
    pub namespace: String,
    /// How long a worker may hold a job without a sign of life before it is redelivered.
    /// Workers send progress every third of it while a task runs, so only a dead worker's
    /// jobs are redelivered.
    pub ack_wait: Duration,
    /// How many times a job is delivered before it is reported failed
    /// ([`RemoteError::MaxDeliveries`](klaw_rt::remote::RemoteError::MaxDeliveries)).
    pub max_deliver: u32,
}

impl NatsConfig {
    /// The server at `url`, namespace `klaw`, ack wait 30 s, 5 deliveries.
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::new("nats://127.0.0.1:4222");
    /// assert_eq!(config.max_deliver, 5);
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: "klaw".to_owned(),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
        }
    }

    /// From `KLAW_NATS_URL` (default `nats://127.0.0.1:4222`), `KLAW_NATS_NAMESPACE`
    /// (default `klaw`), `KLAW_NATS_ACK_WAIT_MS` and `KLAW_NATS_MAX_DELIVER`. A number that
    /// does not parse is ignored with a warning.
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::from_env();
    /// assert!(config.url.starts_with("nats://") || std::env::var("KLAW_NATS_URL").is_ok());
    /// ```
    pub fn from_env() -> Self {
        let url = std::env::var(URL_ENV).unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
        let mut config = Self::new(url);
        if let Ok(namespace) = std::env::var(NAMESPACE_ENV) {
            config.namespace = namespace;
        }
        if let Some(millis) = number_from_env(ACK_WAIT_ENV) {
            config.ack_wait = Duration::from_millis(millis);
        }
        if let Some(deliveries) = number_from_env(MAX_DELIVER_ENV) {
            config.max_deliver = u32::try_from(deliveries).unwrap_or(u32::MAX);
        }
        config
    }

    /// Sets the namespace.
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::new("nats://127.0.0.1:4222").namespace("test-1");
    /// assert_eq!(config.jobs_subject(), "test-1.jobs");
    /// ```
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the ack wait.
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::new("nats://h:4222").ack_wait(std::time::Duration::from_secs(2));
    /// assert_eq!(config.ack_wait.as_secs(), 2);
    /// ```
    #[must_use]
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Sets how many deliveries a job gets.
    ///
    /// ```
    /// assert_eq!(klaw_nats::NatsConfig::new("nats://h:4222").max_deliver(2).max_deliver, 2);
    /// ```
    #[must_use]
    pub fn max_deliver(mut self, max_deliver: u32) -> Self {
        self.max_deliver = max_deliver;
        self
    }

    /// The work-queue stream of jobs.
    ///
    /// ```
    /// assert_eq!(klaw_nats::NatsConfig::new("nats://h:4222").jobs_stream(), "klaw_jobs");
    /// ```
    pub fn jobs_stream(&self) -> String {
        format!("{}_jobs", self.namespace)
    }

    /// The subject jobs are published on.
    ///
    /// ```
    /// assert_eq!(klaw_nats::NatsConfig::new("nats://h:4222").jobs_subject(), "klaw.jobs");
    /// ```
    pub fn jobs_subject(&self) -> String {
        format!("{}.jobs", self.namespace)
    }

    pub(crate) fn workers_consumer(&self) -> String {
        format!("{}_workers", self.namespace)
    }

    pub(crate) fn cancel_bucket(&self) -> String {
        format!("{}_cancel", self.namespace)
    }

    pub(crate) fn reply_prefix(&self, client: &str) -> String {
        format!("{}.reply.{client}", self.namespace)
    }

    pub(crate) fn max_deliveries_advisory(&self) -> String {
        format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
            self.jobs_stream(),
            self.workers_consumer()
        )
    }
}

fn number_from_env(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(number) => Some(number),
        Err(_) => {
            tracing::warn!("{name}={value:?} is not a whole number: ignored");
            None
        }
    }
}
