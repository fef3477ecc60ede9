//! Where the server is and how jobs are delivered: from the environment or set by hand, and
//! checked before anything connects.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::NatsError;

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

/// A secret: shown as `***` by `Debug`, never displayed.
///
/// ```
/// let secret = klaw_nats::Secret::new("s3cret");
/// assert_eq!(format!("{secret:?}"), "***");
/// assert_eq!(secret.expose(), "s3cret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    ///
    /// ```
    /// let _ = klaw_nats::Secret::new(String::from("t0ken"));
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that must send it.
    ///
    /// ```
    /// assert_eq!(klaw_nats::Secret::new("x").expose(), "x");
    /// ```
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How a client proves who it is, as the server's `authorization` (or operator mode) asks.
/// Credentials in the URL (`nats://user:password@host`, `nats://token@host`) are used when
/// this is `None`.
///
/// ```
/// use klaw_nats::{NatsAuth, NatsConfig, Secret};
/// let config = NatsConfig::new("nats://h:4222").auth(NatsAuth::Token(Secret::new("t0ken")));
/// assert!(!format!("{config:?}").contains("t0ken"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NatsAuth {
    /// No credentials (or those of the URL).
    #[default]
    None,
    /// A user and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// A token.
    Token(Secret),
    /// An NKey: the seed signs the server's challenge; the server knows the public key.
    NKey(Secret),
    /// A `.creds` file: a user JWT and its NKey seed (operator mode).
    CredsFile(PathBuf),
}

/// TLS beyond the system's roots: the CA that signed the server's certificate, and this
/// client's certificate for mutual TLS. A `tls://` URL, or any of these, makes TLS required.
///
/// ```
/// let tls = klaw_nats::NatsTls::default().ca("ca.pem").client_cert("me.pem", "me-key.pem");
/// assert!(tls.is_set());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NatsTls {
    /// The CA certificate (PEM) to trust.
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM).
    pub client_cert: Option<PathBuf>,
    /// This client's private key (PEM).
    pub client_key: Option<PathBuf>,
}

impl NatsTls {
    /// Trusts the CA certificate (PEM) at `path`.
    ///
    /// ```
    /// let tls = klaw_nats::NatsTls::default().ca("/etc/nats/ca.pem");
    /// assert!(tls.ca.is_some());
    /// ```
    #[must_use]
    pub fn ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }

    /// Presents this client certificate and key (PEM) for mutual TLS.
    ///
    /// ```
    /// let tls = klaw_nats::NatsTls::default().client_cert("me.pem", "me-key.pem");
    /// assert!(tls.client_key.is_some());
    /// ```
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }

    /// True if anything is set.
    ///
    /// ```
    /// assert!(!klaw_nats::NatsTls::default().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }
}

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
    /// a message id so that a retry never stores it twice. Zero: one try, and no id (about a
    /// tenth more throughput; an unanswered send is `Unavailable` at once). At most
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

const AUTH_EXPECTED: &str = "one way to authenticate: KLAW_NATS_USER with KLAW_NATS_PASSWORD, \
     or KLAW_NATS_TOKEN, or KLAW_NATS_NKEY_SEED, or KLAW_NATS_CREDS";
const TLS_EXPECTED: &str = "a client certificate and its key together (both or neither)";

/// The one way to authenticate the environment names, if any.
fn auth_from_env() -> Result<NatsAuth, NatsError> {
    let var = |name| std::env::var(name).ok().filter(|value: &String| !value.is_empty());
    let mut ways = Vec::new();
    match (var(USER_ENV), var(PASSWORD_ENV)) {
        (Some(user), Some(password)) => {
            ways.push((USER_ENV, NatsAuth::UserPassword { user, password: Secret::new(password) }));
        }
        (None, None) => {}
        (Some(_), None) => ways.push((PASSWORD_ENV, NatsAuth::None)),
        (None, Some(_)) => ways.push((USER_ENV, NatsAuth::None)),
    }
    if let Some(token) = var(TOKEN_ENV) {
        ways.push((TOKEN_ENV, NatsAuth::Token(Secret::new(token))));
    }
    if let Some(seed) = var(NKEY_SEED_ENV) {
        ways.push((NKEY_SEED_ENV, NatsAuth::NKey(Secret::new(seed))));
    }
    if let Some(path) = var(CREDS_ENV) {
        ways.push((CREDS_ENV, NatsAuth::CredsFile(PathBuf::from(path))));
    }
    match ways.len() {
        0 => Ok(NatsAuth::None),
        1 if ways[0].1 != NatsAuth::None => Ok(ways.remove(0).1),
        _ => Err(NatsError::Config {
            setting: ways.last().map_or(USER_ENV, |(name, _)| name),
            value: "(set, not shown)".to_owned(),
            expected: AUTH_EXPECTED,
        }),
    }
}

fn check_tls(setting: &'static str, tls: &NatsTls) -> Result<(), NatsError> {
    if tls.client_cert.is_some() == tls.client_key.is_some() {
        Ok(())
    } else {
        let value = "only one of the two".to_owned();
        Err(NatsError::Config { setting, value, expected: TLS_EXPECTED })
    }
}

const TLS_FILE_EXPECTED: &str = "the path of a readable PEM file";
const NKEY_SEED_EXPECTED: &str =
    "an NKey user seed: 58 characters starting `SU`, as `nk -gen user` prints it";
const URL_EXPECTED: &str = "one or more `nats://`, `tls://`, `ws://` or `wss://` URLs (or \
     `host:port`) separated by commas, each with a host and, if given, a port from 0 to 65535";

/// Each TLS file that is set can be read: a typo is reported here, naming its setting, rather
/// than as a failed connection that sends the user to check the server's address.
fn check_tls_files(settings: [&'static str; 3], tls: &NatsTls) -> Result<(), NatsError> {
    let [ca, cert, key] = settings;
    for (setting, path) in [(ca, &tls.ca), (cert, &tls.client_cert), (key, &tls.client_key)] {
        let Some(path) = path else { continue };
        if std::fs::File::open(path).is_err() {
            let value = path.display().to_string();
            return Err(NatsError::Config { setting, value, expected: TLS_FILE_EXPECTED });
        }
    }
    Ok(())
}

const CREDS_READABLE_EXPECTED: &str = "the path of a readable .creds file";
const CREDS_CONTENT_EXPECTED: &str = "a .creds file with a user JWT and its NKey seed";

/// The `.creds` file can be read and holds a JWT and a seed: checked here, so that the error
/// names the setting the user set (the client's own error names neither, and says "other" for
/// a missing file). Only the path is shown, never what the file holds.
fn check_creds_file(setting: &'static str, path: &std::path::Path) -> Result<(), NatsError> {
    let error =
        |expected| NatsError::Config { setting, value: path.display().to_string(), expected };
    let contents = std::fs::read_to_string(path).map_err(|_| error(CREDS_READABLE_EXPECTED))?;
    async_nats::ConnectOptions::with_credentials(&contents)
        .map(drop)
        .map_err(|_| error(CREDS_CONTENT_EXPECTED))
}

/// The seed decodes to a key pair. Its value is never shown, not even in part: a seed that is
/// nearly right is nearly a secret.
fn check_nkey_seed(setting: &'static str, seed: &Secret) -> Result<(), NatsError> {
    match nkeys::KeyPair::from_seed(seed.expose()) {
        Ok(_) => Ok(()),
        Err(_) => Err(NatsError::Config {
            setting,
            value: "(set, not shown)".to_owned(),
            expected: NKEY_SEED_EXPECTED,
        }),
    }
}

/// Every URL of the list has a scheme the client speaks, a host and a valid port, checked here
/// so that a typo is a `Config` error showing the URL (redacted), not a connection failure.
fn check_url(setting: &'static str, url: &str) -> Result<(), NatsError> {
    let valid = split_list(url).into_iter().all(|one| {
        let one = one.trim();
        let UrlParts { scheme, rest, .. } = url_parts(one);
        let known = ["", "nats://", "tls://", "ws://", "wss://"];
        // The host and port end where a path would begin (the client ignores one).
        let address = rest.split('/').next().unwrap_or("");
        known.contains(&scheme.to_ascii_lowercase().as_str()) && is_address(address)
    });
    if valid {
        Ok(())
    } else {
        Err(NatsError::Config { setting, value: redact_url(url), expected: URL_EXPECTED })
    }
}

/// `host`, `host:port`, `[ipv6]` or `[ipv6]:port`, with a port from 0 to 65535.
fn is_address(address: &str) -> bool {
    let (host, port) = match address.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match address.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        },
    };
    let host_ok = !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c == '@');
    host_ok && port.is_none_or(|port| port.parse::<u16>().is_ok())
}

const NAMESPACE_EXPECTED: &str = "letters, digits, `-` and `_` (at least one; at most 243 \
     characters, each `_` counting twice; not `KV` alone or followed only by `_`, which \
     JetStream's key-value streams begin with)";
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

/// A name that can be one token of a subject and part of a stream or bucket name: letters,
/// digits, `-` and `_` (no `.`, no wildcard, no space), at least one.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The longest name JetStream gives a stream or a consumer.
pub(crate) const MAX_JETSTREAM_NAME: usize = 255;

/// What a stream, key-value bucket or consumer of a namespace is for: the word that follows the
/// namespace in its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The work-queue stream of jobs.
    Jobs,
    /// The workers' consumer of the jobs stream.
    Workers,
    /// The dead-letter stream.
    Dead,
    /// The bucket of cancel markers.
    Cancel,
    /// The bucket of outcomes.
    Outcomes,
    /// The bucket of the channels' closed flags.
    Channels,
    /// The bucket of the watch channels' values.
    Watch,
    /// An MPMC channel's stream and consumer (with the channel's name).
    Channel,
    /// A broadcast channel's stream (with the channel's name).
    Broadcast,
}

impl Kind {
    /// Every kind named after the namespace alone.
    const OF_NAMESPACE: [Kind; 7] = [
        Kind::Jobs,
        Kind::Workers,
        Kind::Dead,
        Kind::Cancel,
        Kind::Outcomes,
        Kind::Channels,
        Kind::Watch,
    ];

    /// Its word: lower-case letters, no two alike (the argument of [`jetstream_name`] needs
    /// words that hold no `_` and begin with a letter).
    fn word(self) -> &'static str {
        match self {
            Kind::Jobs => "jobs",
            Kind::Workers => "workers",
            Kind::Dead => "dead",
            Kind::Cancel => "cancel",
            Kind::Outcomes => "outcomes",
            Kind::Channels => "channels",
            Kind::Watch => "watch",
            Kind::Channel => "chan",
            Kind::Broadcast => "bcast",
        }
    }

    /// A key-value bucket, whose stream JetStream names `KV_<bucket>`.
    fn is_bucket(self) -> bool {
        matches!(self, Kind::Cancel | Kind::Outcomes | Kind::Channels | Kind::Watch)
    }
}

/// The name of the stream, key-value bucket or consumer of `kind` in `namespace`, and of the
/// channel `channel` for a channel's stream: `<namespace>_<kind>` or
/// `<namespace>_<kind>_<channel>`, with each `_` of the namespace written `__`
/// (`billing_jobs`, `my__app_chan_orders`). Subjects need none of this: the namespace and a
/// channel's name are whole tokens of them (neither may hold a `.`).
///
/// Namespaces and channel names may both hold `_`, so written as they are, namespace `ns` with
/// channel `x_chan_y` and namespace `ns_chan_x` with channel `y` were one stream. Written this
/// way, no two (namespace, kind, channel) ever give one name, because each can be read back
/// from the name:
/// - Every run of `_` in the written namespace has an even length. The `_` that follows it
///   makes the run it ends odd, and the kind's word after it begins with a letter. So the
///   first run of `_` of odd length ends with that separator: what comes before it, each
///   `__` read as `_`, is the namespace.
/// - The word holds no `_`: it runs to the next `_` or to the end, and no two kinds share one.
/// - If a `_` follows the word, the rest is the channel's name, as it is (nothing follows it).
///
/// JetStream names a bucket's stream `KV_<bucket>`. Read as above, `KV_` and then a bucket's
/// name has a namespace of `KV` followed only by `_`s (the `_` after `KV` and the even run
/// that begins the bucket's name make its first odd run), or none at all: those namespaces are
/// refused ([`check_namespace`]), so none of klaw's streams is also a bucket's stream.
///
/// Before this naming, a namespace's `_` was written as it is: a namespace holding a `_` finds
/// its streams and buckets under new names (see [`NatsConfig::namespace`]); every other
/// namespace keeps its names.
pub(crate) fn jetstream_name(namespace: &str, kind: Kind, channel: Option<&str>) -> String {
    let mut name = namespace.replace('_', "__");
    name.push('_');
    name.push_str(kind.word());
    if let Some(channel) = channel {
        name.push('_');
        name.push_str(channel);
    }
    name
}

/// The name of the JetStream stream behind `kind` of `namespace`: a bucket's is `KV_<bucket>`.
fn stream_name(namespace: &str, kind: Kind) -> String {
    let name = jetstream_name(namespace, kind, None);
    if kind.is_bucket() { format!("KV_{name}") } else { name }
}

/// A namespace JetStream's key-value streams (`KV_<bucket>`) could be read as: `KV` followed
/// only by `_` (see [`jetstream_name`]).
fn is_key_value_prefix(namespace: &str) -> bool {
    namespace.strip_prefix("KV").is_some_and(|rest| rest.chars().all(|c| c == '_'))
}

fn check_namespace(setting: &'static str, namespace: String) -> Result<String, NatsError> {
    let fits = || {
        Kind::OF_NAMESPACE
            .iter()
            .all(|&kind| stream_name(&namespace, kind).len() <= MAX_JETSTREAM_NAME)
    };
    if is_plain_name(&namespace) && !is_key_value_prefix(&namespace) && fits() {
        Ok(namespace)
    } else {
        Err(NatsError::Config { setting, value: namespace, expected: NAMESPACE_EXPECTED })
    }
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

/// `url` with the credentials in it hidden: `nats://alice:***@host`, `nats://***@host` for a
/// token. Every URL of a comma-separated list is redacted.
///
/// Credentials are taken literally, up to the last `@` of their URL: a token or password may
/// hold `/`, `?`, `,`, `+`, `=` or `@` as they are (base64 does), without percent-encoding.
/// A comma belongs to the credentials when it comes after a URL's `://`, before any `@` of that
/// URL, and an `@` follows before the next `://`; so a second URL of a list that carries
/// credentials must have its scheme (`nats://a,nats://u:p@b`, not `nats://a,u:p@b`).
///
/// ```
/// assert_eq!(klaw_nats::redact_url("nats://alice:s3cret@h:4222"), "nats://alice:***@h:4222");
/// assert_eq!(klaw_nats::redact_url("tls://t0ken@h, nats://h2"), "tls://***@h, nats://h2");
/// assert_eq!(klaw_nats::redact_url("nats://a:p/w,x@h,nats://h2"), "nats://a:***@h,nats://h2");
/// ```
pub fn redact_url(url: &str) -> String {
    split_list(url)
        .into_iter()
        .map(|one| {
            let UrlParts { scheme, userinfo, rest } = url_parts(one);
            match userinfo.map(credentials) {
                Some((Some(user), _)) => format!("{scheme}{user}:***@{rest}"),
                Some((None, _)) => format!("{scheme}***@{rest}"),
                None => one.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `message` (a client's error) with the URL shown redacted and every secret of it hidden.
pub(crate) fn hide_secrets(message: &str, url: &str) -> String {
    let mut message = message.replace(url, &redact_url(url));
    for userinfo in split_list(url).into_iter().filter_map(|one| url_parts(one).userinfo) {
        let (_, secret) = credentials(userinfo);
        if !secret.is_empty() {
            message = message.replace(secret, "***");
        }
    }
    message
}

/// The URLs of a comma-separated list. A comma inside a URL's credentials does not split it
/// (see [`redact_url`] for the rule): splitting there would show the credentials' two halves
/// as a URL without credentials and one with a wrong token.
fn split_list(list: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut start = 0;
    for (comma, _) in list.match_indices(',') {
        if !comma_in_userinfo(&list[start..comma], &list[comma + 1..]) {
            urls.push(&list[start..comma]);
            start = comma + 1;
        }
    }
    urls.push(&list[start..]);
    urls
}

/// Whether the comma between `before` (the current URL so far) and `after` (the rest of the
/// list) is part of the current URL's credentials: the URL has a scheme, no `@` yet, and an
/// `@` comes before the next URL's `://`.
fn comma_in_userinfo(before: &str, after: &str) -> bool {
    let Some(scheme_end) = before.find("://") else { return false };
    if before[scheme_end..].contains('@') {
        return false;
    }
    match (after.find('@'), after.find("://")) {
        (Some(at), Some(next_scheme)) => at < next_scheme,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// One URL around its credentials: the scheme (with `://`), what comes before the last `@` if
/// anything, and the rest (host, port).
struct UrlParts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    rest: &'a str,
}

fn url_parts(one: &str) -> UrlParts<'_> {
    let (scheme, after) = match one.find("://") {
        Some(at) => one.split_at(at + 3),
        None => ("", one),
    };
    // The last `@`, not the first `/`, ends the credentials: a NATS URL has no path, and a
    // token or password may hold `/`, `?` or `@` (base64 tokens do), which ending them earlier
    // would show as the host.
    match after.rfind('@') {
        Some(at) => UrlParts { scheme, userinfo: Some(&after[..at]), rest: &after[at + 1..] },
        None => UrlParts { scheme, userinfo: None, rest: after },
    }
}

/// What credentials in a URL are: a user and its password (`user:password`), or a token.
fn credentials(userinfo: &str) -> (Option<&str>, &str) {
    match userinfo.split_once(':') {
        Some((user, password)) => (Some(user), password),
        None => (None, userinfo),
    }
}

/// The URL(s) without credentials, and the credentials the first URL carried, if any:
/// `user:password@` or `token@`. The client gets those through its options, so they never
/// appear in its own logs (which print the server address).
pub(crate) fn split_credentials(url: &str) -> (String, NatsAuth) {
    let mut auth = NatsAuth::None;
    let urls: Vec<String> = split_list(url)
        .into_iter()
        .map(|one| {
            let UrlParts { scheme, userinfo, rest } = url_parts(one.trim());
            if let (Some(userinfo), NatsAuth::None) = (userinfo, &auth) {
                auth = match credentials(userinfo) {
                    (Some(user), password) => NatsAuth::UserPassword {
                        user: user.to_owned(),
                        password: Secret::new(password),
                    },
                    (None, token) => NatsAuth::Token(Secret::new(token)),
                };
            }
            format!("{scheme}{rest}")
        })
        .collect();
    (urls.join(","), auth)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Every kind: those named after the namespace alone, and the channels' kinds.
    fn every_kind() -> Vec<Kind> {
        [Kind::OF_NAMESPACE.as_slice(), &[Kind::Channel, Kind::Broadcast]].concat()
    }

    /// A namespace, a kind, and a channel name for a channel's kind.
    type Resource = (String, Kind, Option<String>);

    /// Plain names made of pieces that make collisions likely: runs of `_`, the kinds' words,
    /// `KV` (JetStream's key-value streams begin `KV_`).
    fn plain_name() -> impl Strategy<Value = String> {
        let pieces = vec!["_", "__", "-", "a", "KV", "chan", "bcast", "jobs", "cancel", "watch"];
        prop::collection::vec(prop::sample::select(pieces), 1..7).prop_map(|pieces| pieces.concat())
    }

    fn resource() -> impl Strategy<Value = Resource> {
        let namespace = plain_name().prop_filter("a namespace the config accepts", |namespace| {
            check_namespace("namespace", namespace.clone()).is_ok()
        });
        (namespace, prop::sample::select(every_kind()), plain_name()).prop_map(
            |(namespace, kind, channel)| {
                let channel = matches!(kind, Kind::Channel | Kind::Broadcast).then_some(channel);
                (namespace, kind, channel)
            },
        )
    }

    fn name_of((namespace, kind, channel): &Resource) -> String {
        jetstream_name(namespace, *kind, channel.as_deref())
    }

    /// The name of the stream on the server: a bucket's is `KV_<bucket>`.
    fn stream_of(resource: &Resource) -> String {
        let name = name_of(resource);
        if resource.1.is_bucket() { format!("KV_{name}") } else { name }
    }

    /// The namespace, kind and channel a name was made of, read as `jetstream_name`'s comment
    /// argues it can be.
    fn read_back(name: &str) -> Option<Resource> {
        let mut at = 0;
        let separator = loop {
            let start = at + name[at..].find('_')?;
            let end = start + name[start..].find(|c: char| c != '_').unwrap_or(name.len() - start);
            if (end - start) % 2 == 1 {
                break end - 1;
            }
            at = end;
        };
        let namespace = name[..separator].replace("__", "_");
        let rest = &name[separator + 1..];
        let (word, channel) = match rest.split_once('_') {
            Some((word, channel)) => (word, Some(channel.to_owned())),
            None => (rest, None),
        };
        let kind = every_kind().into_iter().find(|kind| kind.word() == word)?;
        Some((namespace, kind, channel))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Each name reads back as the namespace, kind and channel it was made of: the naming
        /// is injective.
        #[test]
        fn every_name_reads_back_as_what_it_was_made_of(resource in resource()) {
            prop_assert_eq!(read_back(&name_of(&resource)), Some(resource));
        }

        /// Among many, no two resources share a stream (key-value buckets' `KV_` streams
        /// included), a bucket or a consumer name.
        #[test]
        fn no_two_resources_share_a_name(resources in prop::collection::vec(resource(), 64)) {
            let mut streams = HashMap::new();
            let mut names = HashMap::new();
            for resource in resources {
                if let Some(other) = streams.insert(stream_of(&resource), resource.clone()) {
                    prop_assert_eq!(&other, &resource, "one stream: {}", stream_of(&resource));
                }
                if let Some(other) = names.insert(name_of(&resource), resource.clone()) {
                    prop_assert_eq!(&other, &resource, "one name: {}", name_of(&resource));
                }
            }
        }
    }

    #[test]
    fn the_pairs_that_once_shared_a_stream_do_not() {
        let chan = |namespace: &str, channel: &str| {
            jetstream_name(namespace, Kind::Channel, Some(channel))
        };
        assert_ne!(chan("ns", "x_chan_y"), chan("ns_chan_x", "y"));
        assert_ne!(chan("a", "b_jobs"), jetstream_name("a_chan_b", Kind::Jobs, None));
        assert_eq!(chan("klaw", "orders"), "klaw_chan_orders", "a name without `_` changed");
        assert_eq!(chan("my_app", "x_y"), "my__app_chan_x_y");
    }

    #[test]
    fn a_namespace_a_key_value_stream_could_be_read_as_is_refused() {
        for namespace in ["KV", "KV_", "KV__"] {
            let error = check_namespace("namespace", namespace.to_owned()).unwrap_err();
            assert!(error.to_string().contains("not `KV`"), "{error}");
        }
        for namespace in ["KVx", "KV-", "KV_x", "kv", "xKV"] {
            assert!(check_namespace("namespace", namespace.to_owned()).is_ok(), "{namespace}");
        }
    }

    #[test]
    fn a_namespace_too_long_for_its_streams_is_refused_and_each_underscore_counts_twice() {
        assert!(check_namespace("namespace", "n".repeat(243)).is_ok());
        let error = check_namespace("namespace", "n".repeat(244)).unwrap_err();
        assert!(error.to_string().contains("at most 243"), "{error}");
        assert!(check_namespace("namespace", "_".repeat(121)).is_ok());
        assert!(check_namespace("namespace", "_".repeat(122)).is_err());
    }
}
