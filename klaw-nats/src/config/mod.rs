//! Where the server is and how jobs are delivered: from the environment or set by hand, and
//! checked before anything connects. How a client proves who it is lives in `credentials`,
//! what a URL may hold and how its secrets are hidden in `url`, and the names klaw gives its
//! streams, buckets and consumers in `names`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::NatsError;

mod credentials;
mod names;
mod url;

pub use credentials::{NatsAuth, NatsTls, Secret};
pub(crate) use names::{Kind, MAX_JETSTREAM_NAME, is_plain_name, jetstream_name};
pub use url::redact_url;
pub(crate) use url::{hide_secrets, split_credentials};

use credentials::{
    auth_from_env, check_creds_file, check_nkey_seed, check_one_auth, check_tls, check_tls_files,
};
use names::check_namespace;
use url::check_url;

/// The environment variable with the server's URL.
pub const URL_ENV: &str = "KLAW_NATS_URL";
/// The environment variable with the namespace (prefix of every stream, subject and bucket).
pub const NAMESPACE_ENV: &str = "KLAW_NATS_NAMESPACE";
/// The environment variable with the ack wait, in milliseconds.
pub const ACK_WAIT_ENV: &str = "KLAW_NATS_ACK_WAIT_MS";
/// The environment variable with the number of deliveries a job gets.
pub const MAX_DELIVER_ENV: &str = "KLAW_NATS_MAX_DELIVER";
/// The environment variable with how long an unread outcome is kept, in seconds.
pub const OUTCOME_TTL_ENV: &str = "KLAW_NATS_OUTCOME_TTL_S";
/// The variable that sets [`NatsConfig::publish_retry`], in milliseconds.
pub const PUBLISH_RETRY_ENV: &str = "KLAW_NATS_PUBLISH_RETRY_MS";

/// The environment variable with the user name (with `KLAW_NATS_PASSWORD`).
pub const USER_ENV: &str = "KLAW_NATS_USER";
/// The environment variable with the password (with `KLAW_NATS_USER`).
pub const PASSWORD_ENV: &str = "KLAW_NATS_PASSWORD";
/// The environment variable with an authentication token.
pub const TOKEN_ENV: &str = "KLAW_NATS_TOKEN";
/// The environment variable with an NKey seed (`SU...`).
pub const NKEY_SEED_ENV: &str = "KLAW_NATS_NKEY_SEED";
/// The environment variable with the path of a `.creds` file (a JWT and its NKey seed).
pub const CREDS_ENV: &str = "KLAW_NATS_CREDS";
/// The environment variable with the path of the CA certificate (PEM) that signed the server's.
pub const TLS_CA_ENV: &str = "KLAW_NATS_TLS_CA";
/// The environment variable with the path of this client's certificate (PEM), for mutual TLS.
pub const TLS_CERT_ENV: &str = "KLAW_NATS_TLS_CERT";
/// The environment variable with the path of this client's private key (PEM), for mutual TLS.
pub const TLS_KEY_ENV: &str = "KLAW_NATS_TLS_KEY";

/// The shortest ack wait: a shorter one would make workers do little but send progress.
pub const MIN_ACK_WAIT: Duration = Duration::from_millis(100);
/// The longest publish retry: the streams' duplicate window (2 minutes), within which the
/// server drops a retried message it already stored.
pub const MAX_PUBLISH_RETRY: Duration = Duration::from_secs(120);
/// The shortest outcome TTL the server can keep to (it expires entries about once a second).
pub const MIN_OUTCOME_TTL: Duration = Duration::from_secs(1);

/// How klaw uses a NATS server.
///
/// ```
/// let config = klaw_nats::NatsConfig::new("nats://10.0.0.5:4222").namespace("billing");
/// assert_eq!(config.jobs_stream(), "billing_jobs");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The server, e.g. `nats://127.0.0.1:4222`. Credentials in it (`nats://user:pass@host`)
    /// never appear in an error, `Debug` or a log line.
    pub url: String,
    /// What every stream, subject and bucket of klaw's is named after, so that several
    /// applications (or tests) can share one server. Letters, digits, `-` and `_`; not `KV`
    /// alone or followed only by `_` (JetStream names a key-value bucket's stream `KV_<bucket>`);
    /// at most 243 characters, each `_` counting twice.
    ///
    /// It is the first token of every subject (`billing.jobs`), and begins every stream and
    /// bucket name with each `_` written `__` (`billing_jobs`; `my__app_jobs` for `my_app`), so
    /// that no two namespaces, kinds and channel names ever give one name. Before this, a
    /// namespace's `_` was written as it is: a namespace with a `_` finds its streams and
    /// buckets under new names, empty (move what they held, or drain them first).
    pub namespace: String,
    /// How long a worker may hold a job without a sign of life before it is redelivered.
    /// Workers send progress every third of it while a task runs, so only a dead worker's
    /// jobs are redelivered. At least [`MIN_ACK_WAIT`].
    pub ack_wait: Duration,
    /// How many times a job is delivered before it is reported failed
    /// ([`RemoteError::MaxDeliveries`](klaw_rt::remote::RemoteError::MaxDeliveries)). At least 1.
    pub max_deliver: u32,
    /// How long a job's outcome is kept for its submitter to read, if it has not yet: a
    /// submitter that lost its connection reads it when it is back; one that never comes back
    /// leaves nothing behind after this. At least [`MIN_OUTCOME_TTL`]. It takes effect when
    /// the namespace's outcomes bucket is created (by the first process to connect, usually a
    /// worker); the bucket then keeps it, whatever later processes are configured with.
    pub outcome_ttl: Duration,
    /// How long a channel send keeps trying while the server does not take the value (it is
    /// restarting, or the connection is down) before it hands the value back as
    /// [`SendError::Unavailable`](crate::channel::SendError::Unavailable). Each send carries
    /// a message id so that a retry does not store it twice, with one exception: a server that
    /// restarts forgets the ids of the messages it no longer holds, so an attempt stored (its
    /// acknowledgement lost) and received before a restart is stored again by the retry after
    /// it. A send whose retries ran out after an unanswered attempt ends
    /// [`SendError::Unconfirmed`](crate::channel::SendError::Unconfirmed). Zero: one try, and
    /// no id (about a tenth more throughput; an unanswered send is `Unconfirmed` at once, one
    /// never handed to the server `Unavailable`). At most
    /// [`MAX_PUBLISH_RETRY`]. A send ends within this plus one acknowledgement wait (5 s).
    pub publish_retry: Duration,
    /// How this client authenticates.
    pub auth: NatsAuth,
    /// TLS settings.
    pub tls: NatsTls,
}

/// Shows the URL without its credentials.
impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &redact_url(&self.url))
            .field("namespace", &self.namespace)
            .field("ack_wait", &self.ack_wait)
            .field("max_deliver", &self.max_deliver)
            .field("outcome_ttl", &self.outcome_ttl)
            .field("publish_retry", &self.publish_retry)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .finish()
    }
}

impl NatsConfig {
    /// The server at `url`, namespace `klaw`, ack wait 30 s, 5 deliveries, outcomes kept an
    /// hour, channel sends retried for 10 s.
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
            outcome_ttl: Duration::from_secs(3600),
            publish_retry: Duration::from_secs(10),
            auth: NatsAuth::None,
            tls: NatsTls::default(),
        }
    }

    /// From `KLAW_NATS_URL` (default `nats://127.0.0.1:4222`), `KLAW_NATS_NAMESPACE`
    /// (default `klaw`), `KLAW_NATS_ACK_WAIT_MS`, `KLAW_NATS_MAX_DELIVER`,
    /// `KLAW_NATS_OUTCOME_TTL_S` and `KLAW_NATS_PUBLISH_RETRY_MS`; credentials and TLS from the
    /// variables named by [`NatsAuth`] and [`NatsTls`].
    ///
    /// # Errors
    /// A variable whose value is not valid: [`NatsError::Config`], naming the variable and the
    /// values it accepts.
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::from_env()?;
    /// assert!(config.url.starts_with("nats://") || std::env::var("KLAW_NATS_URL").is_ok());
    /// # Ok::<(), klaw_nats::NatsError>(())
    /// ```
    pub fn from_env() -> Result<Self, NatsError> {
        let url = std::env::var(URL_ENV).unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
        let mut config = Self::new(url);
        if let Ok(namespace) = std::env::var(NAMESPACE_ENV) {
            config.namespace = check_namespace(NAMESPACE_ENV, namespace)?;
        }
        if let Some(millis) = number_from_env(ACK_WAIT_ENV, ACK_WAIT_EXPECTED)? {
            config.ack_wait = check_ack_wait(ACK_WAIT_ENV, Duration::from_millis(millis))?;
        }
        if let Some(deliveries) = number_from_env(MAX_DELIVER_ENV, MAX_DELIVER_EXPECTED)? {
            let deliveries = u32::try_from(deliveries).map_err(|_| NatsError::Config {
                setting: MAX_DELIVER_ENV,
                value: deliveries.to_string(),
                expected: MAX_DELIVER_EXPECTED,
            })?;
            config.max_deliver = check_max_deliver(MAX_DELIVER_ENV, deliveries)?;
        }
        if let Some(seconds) = number_from_env(OUTCOME_TTL_ENV, OUTCOME_TTL_EXPECTED)? {
            config.outcome_ttl = check_outcome_ttl(OUTCOME_TTL_ENV, Duration::from_secs(seconds))?;
        }
        if let Some(millis) = number_from_env(PUBLISH_RETRY_ENV, PUBLISH_RETRY_EXPECTED)? {
            config.publish_retry =
                check_publish_retry(PUBLISH_RETRY_ENV, Duration::from_millis(millis))?;
        }
        config.auth = auth_from_env()?;
        config.tls = NatsTls {
            ca: std::env::var_os(TLS_CA_ENV).map(PathBuf::from),
            client_cert: std::env::var_os(TLS_CERT_ENV).map(PathBuf::from),
            client_key: std::env::var_os(TLS_KEY_ENV).map(PathBuf::from),
        };
        check_tls(TLS_CERT_ENV, &config.tls)?;
        check_tls_files([TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV], &config.tls)?;
        check_url(URL_ENV, &config.url)?;
        let auth_variable = match &config.auth {
            NatsAuth::UserPassword { .. } => USER_ENV,
            NatsAuth::Token(_) => TOKEN_ENV,
            NatsAuth::NKey(_) => NKEY_SEED_ENV,
            _ => CREDS_ENV,
        };
        check_one_auth(auth_variable, &config.url, &config.auth)?;
        if let NatsAuth::NKey(seed) = &config.auth {
            check_nkey_seed(NKEY_SEED_ENV, seed)?;
        }
        if let NatsAuth::CredsFile(path) = &config.auth {
            check_creds_file(CREDS_ENV, path)?;
        }
        Ok(config)
    }

    /// Checks every setting, as connecting does first: the numbers and the namespace, the
    /// URL (scheme, host, port), that each TLS file set can be read, that an NKey seed decodes,
    /// that a `.creds` file can be read and holds a JWT and a seed.
    ///
    /// # Errors
    /// The first setting that is not valid: [`NatsError::Config`], naming it and the values it
    /// accepts. A URL is shown without its credentials; a seed is not shown.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = klaw_nats::NatsConfig::new("nats://h:4222").ack_wait(Duration::ZERO);
    /// let error = config.validate().unwrap_err();
    /// assert!(error.to_string().contains("ack_wait"));
    /// ```
    pub fn validate(&self) -> Result<(), NatsError> {
        check_namespace("NatsConfig::namespace", self.namespace.clone())?;
        check_ack_wait("NatsConfig::ack_wait", self.ack_wait)?;
        check_max_deliver("NatsConfig::max_deliver", self.max_deliver)?;
        check_outcome_ttl("NatsConfig::outcome_ttl", self.outcome_ttl)?;
        check_publish_retry("NatsConfig::publish_retry", self.publish_retry)?;
        check_tls("NatsConfig::tls", &self.tls)?;
        check_tls_files(
            ["NatsConfig::tls.ca", "NatsConfig::tls.client_cert", "NatsConfig::tls.client_key"],
            &self.tls,
        )?;
        check_url("NatsConfig::url", &self.url)?;
        check_one_auth("NatsConfig::auth", &self.url, &self.auth)?;
        if let NatsAuth::NKey(seed) = &self.auth {
            check_nkey_seed("NatsConfig::auth", seed)?;
        }
        if let NatsAuth::CredsFile(path) = &self.auth {
            check_creds_file("NatsConfig::auth", path)?;
        }
        Ok(())
    }

    /// Sets how this client authenticates.
    ///
    /// ```
    /// use klaw_nats::{NatsAuth, Secret};
    /// let config = klaw_nats::NatsConfig::new("nats://h:4222")
    ///     .auth(NatsAuth::UserPassword { user: "alice".into(), password: Secret::new("s3cret") });
    /// assert!(!format!("{config:?}").contains("s3cret"));
    /// ```
    #[must_use]
    pub fn auth(mut self, auth: NatsAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets TLS.
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::new("tls://h:4222").tls(klaw_nats::NatsTls::default().ca("ca.pem"));
    /// assert!(config.tls.is_set());
    /// ```
    #[must_use]
    pub fn tls(mut self, tls: NatsTls) -> Self {
        self.tls = tls;
        self
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

    /// Sets how long an unread outcome is kept.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = klaw_nats::NatsConfig::new("nats://h:4222").outcome_ttl(Duration::from_secs(60));
    /// assert_eq!(config.outcome_ttl.as_secs(), 60);
    /// ```
    #[must_use]
    pub fn outcome_ttl(mut self, outcome_ttl: Duration) -> Self {
        self.outcome_ttl = outcome_ttl;
        self
    }

    /// Sets how long a channel send keeps trying while the server does not take the value.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = klaw_nats::NatsConfig::new("nats://h:4222").publish_retry(Duration::from_secs(2));
    /// assert_eq!(config.publish_retry.as_secs(), 2);
    /// ```
    #[must_use]
    pub fn publish_retry(mut self, publish_retry: Duration) -> Self {
        self.publish_retry = publish_retry;
        self
    }

    /// The work-queue stream of jobs.
    ///
    /// ```
    /// assert_eq!(klaw_nats::NatsConfig::new("nats://h:4222").jobs_stream(), "klaw_jobs");
    /// ```
    ///
    /// Each `_` of the namespace is written `__` (see [`namespace`](Self::namespace)):
    ///
    /// ```
    /// let config = klaw_nats::NatsConfig::new("nats://h:4222").namespace("my_app");
    /// assert_eq!(config.jobs_stream(), "my__app_jobs");
    /// assert_eq!(config.jobs_subject(), "my_app.jobs");
    /// ```
    pub fn jobs_stream(&self) -> String {
        jetstream_name(&self.namespace, Kind::Jobs, None)
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
        jetstream_name(&self.namespace, Kind::Workers, None)
    }

    pub(crate) fn cancel_bucket(&self) -> String {
        jetstream_name(&self.namespace, Kind::Cancel, None)
    }

    /// The key-value bucket of the distributed channels' closed flags.
    pub(crate) fn channels_bucket(&self) -> String {
        jetstream_name(&self.namespace, Kind::Channels, None)
    }

    /// The key-value bucket of the distributed watch channels' values.
    pub(crate) fn watch_bucket(&self) -> String {
        jetstream_name(&self.namespace, Kind::Watch, None)
    }

    /// The stream of the MPMC channel `name` (and the name of its consumer).
    pub(crate) fn channel_stream(&self, name: &str) -> String {
        jetstream_name(&self.namespace, Kind::Channel, Some(name))
    }

    /// The stream of the broadcast channel `name`.
    pub(crate) fn broadcast_stream(&self, name: &str) -> String {
        jetstream_name(&self.namespace, Kind::Broadcast, Some(name))
    }

    /// The key-value bucket where outcomes wait for their submitters.
    ///
    /// ```
    /// assert_eq!(klaw_nats::NatsConfig::new("nats://h:4222").outcomes_bucket(), "klaw_outcomes");
    /// ```
    pub fn outcomes_bucket(&self) -> String {
        jetstream_name(&self.namespace, Kind::Outcomes, None)
    }

    /// The stream of dead letters: jobs that could not be decoded, or used up their deliveries.
    ///
    /// ```
    /// assert_eq!(klaw_nats::NatsConfig::new("nats://h:4222").dead_letters_stream(), "klaw_dead");
    /// ```
    pub fn dead_letters_stream(&self) -> String {
        jetstream_name(&self.namespace, Kind::Dead, None)
    }

    /// The stream that keeps the server's advisories of jobs that ran out of deliveries
    /// (`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<jobs>.<workers>`), until a process has
    /// moved each such job to the dead letters: an advisory sent while no process listened is
    /// read when one comes back, so no such job stays in the queue, its handle waiting.
    ///
    /// ```
    /// assert_eq!(klaw_nats::NatsConfig::new("nats://h:4222").exhausted_stream(), "klaw_exhausted");
    /// ```
    pub fn exhausted_stream(&self) -> String {
        jetstream_name(&self.namespace, Kind::Exhausted, None)
    }

    /// The dead letter of the job at `origin` in the jobs stream: one subject per job, so its
    /// submitter can find it.
    pub(crate) fn dead_letter_subject(&self, origin: u64) -> String {
        format!("{}.dead.{origin}", self.namespace)
    }

    pub(crate) fn dead_letters_subjects(&self) -> String {
        format!("{}.dead.>", self.namespace)
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

const ACK_WAIT_EXPECTED: &str = "a whole number of milliseconds, at least 100";
const MAX_DELIVER_EXPECTED: &str = "a whole number from 1 to 4294967295";
const OUTCOME_TTL_EXPECTED: &str = "a whole number of seconds, at least 1";
const PUBLISH_RETRY_EXPECTED: &str =
    "a whole number of milliseconds, at most 120000 (the duplicate window; 0: one try)";

fn check_publish_retry(setting: &'static str, retry: Duration) -> Result<Duration, NatsError> {
    if retry <= MAX_PUBLISH_RETRY {
        Ok(retry)
    } else {
        let value = retry.as_millis().to_string();
        Err(NatsError::Config { setting, value, expected: PUBLISH_RETRY_EXPECTED })
    }
}

fn number_from_env(name: &'static str, expected: &'static str) -> Result<Option<u64>, NatsError> {
    let Ok(value) = std::env::var(name) else { return Ok(None) };
    value.trim().parse().map(Some).map_err(|_| NatsError::Config { setting: name, value, expected })
}

fn check_ack_wait(setting: &'static str, ack_wait: Duration) -> Result<Duration, NatsError> {
    if ack_wait >= MIN_ACK_WAIT {
        Ok(ack_wait)
    } else {
        let value = format!("{}", ack_wait.as_millis());
        Err(NatsError::Config { setting, value, expected: ACK_WAIT_EXPECTED })
    }
}

fn check_max_deliver(setting: &'static str, max_deliver: u32) -> Result<u32, NatsError> {
    if max_deliver >= 1 {
        Ok(max_deliver)
    } else {
        let value = max_deliver.to_string();
        Err(NatsError::Config { setting, value, expected: MAX_DELIVER_EXPECTED })
    }
}

fn check_outcome_ttl(setting: &'static str, ttl: Duration) -> Result<Duration, NatsError> {
    if ttl >= MIN_OUTCOME_TTL {
        Ok(ttl)
    } else {
        let value = format!("{}", ttl.as_secs());
        Err(NatsError::Config { setting, value, expected: OUTCOME_TTL_EXPECTED })
    }
}
