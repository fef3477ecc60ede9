//! What a remote backend does for the runtime, and how `KLAW_BACKEND` picks one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::task::CancelReason;
use crate::task::error::BoxError;
use crate::task::remote::RemoteError;

/// The environment variable that picks the backend: `local` (the default) or the name of a
/// linked backend, such as `nats` (the `klaw-nats` crate).
pub const BACKEND_ENV: &str = "KLAW_BACKEND";

/// A job's id: unique across processes (128 random bits, in hex).
///
/// ```
/// let (a, b) = (klaw::remote::JobId::random(), klaw::remote::JobId::random());
/// assert_ne!(a, b);
/// assert_eq!(a.as_str().len(), 32);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId(String);

impl JobId {
    /// A fresh id.
    ///
    /// ```
    /// assert!(klaw::remote::JobId::random().as_str().chars().all(|c| c.is_ascii_hexdigit()));
    /// ```
    pub fn random() -> Self {
        Self(format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)))
    }

    /// An id received from elsewhere.
    ///
    /// ```
    /// assert_eq!(klaw::remote::JobId::from_string("ab12".into()).as_str(), "ab12");
    /// ```
    pub fn from_string(id: String) -> Self {
        Self(id)
    }

    /// The id as text (also usable in a NATS subject: hex only).
    ///
    /// ```
    /// assert!(!klaw::remote::JobId::random().as_str().is_empty());
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One submission of a remote task.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteJob {
    /// Unique per submission; the worker's reply and a cancel name it.
    pub id: JobId,
    /// The registered task name.
    pub task: &'static str,
    /// The build of the task's crate, which the worker must have too.
    pub build: &'static str,
    /// The encoded arguments. (The task's own timeout needs no field: the worker builds the
    /// task from the same function, timeout included.)
    pub args: Vec<u8>,
}

impl RemoteJob {
    /// A job for the task registered as `task`, made by `build`, with encoded `args`. The
    /// runtime makes these; a backend's own tests may too.
    ///
    /// ```
    /// let job = klaw::remote::RemoteJob::new("app::fetch", "app@1.0.0 fetch(u32) -> ()", vec![]);
    /// assert_eq!(job.task, "app::fetch");
    /// ```
    pub fn new(task: &'static str, build: &'static str, args: Vec<u8>) -> Self {
        Self { id: JobId::random(), task, build, args }
    }
}

/// What [`RemoteBackend::submit`] returns: the encoded `WireOutcome` (feature `remote`).
pub type SubmitFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, RemoteError>> + Send>>;

/// A place where remote tasks run: the runtime hands it every remote task spawned while it is
/// configured. Implemented by `klaw_nats::NatsBackend`.
///
/// ```
/// use klaw::remote::{JobId, RemoteBackend, RemoteError, RemoteJob, SubmitFuture};
/// #[derive(Debug)]
/// struct Refuse;
/// impl RemoteBackend for Refuse {
///     fn submit(&self, job: RemoteJob) -> SubmitFuture {
///         Box::pin(async move { Err(RemoteError::UnknownTask { name: job.task.into() }) })
///     }
///     fn cancel(&self, _job: &JobId, _reason: &klaw::CancelReason) {}
/// }
/// let rt = klaw::Runtime::builder().workers(1).backend(std::sync::Arc::new(Refuse)).build()?;
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
pub trait RemoteBackend: Send + Sync + fmt::Debug + 'static {
    /// Submits a job; resolves with the worker's encoded reply. Dropping the future before it
    /// resolves abandons the wait, not the job: the runtime calls [`cancel`](Self::cancel) too.
    fn submit(&self, job: RemoteJob) -> SubmitFuture;

    /// Cancels a job: removes it if still queued, stops it if running. Called from whichever
    /// thread cancelled the task, so it must not block; the work goes on in the background.
    fn cancel(&self, job: &JobId, reason: &CancelReason);

    /// Runs a remote task's [`Relay`] on the backend's own executor, next to its I/O, so that
    /// a job's outcome reaches its task without waking a worker thread on the way; `Err(relay)`
    /// (the default) hands it back, and the runtime runs it on its workers.
    ///
    /// A relay runs klaw's code only (the submit, and the task's end), never the task's body.
    /// It must be polled to its end or dropped: dropped unfinished (the executor shut down),
    /// its task ends as cancelled, as when a runtime's own executor goes away.
    ///
    /// ```
    /// use klaw::remote::{JobId, Relay, RemoteBackend, RemoteError, RemoteJob, SubmitFuture};
    /// #[derive(Debug)]
    /// struct OwnThread;
    /// impl RemoteBackend for OwnThread {
    ///     fn submit(&self, job: RemoteJob) -> SubmitFuture {
    ///         Box::pin(async move { Err(RemoteError::UnknownTask { name: job.task.into() }) })
    ///     }
    ///     fn cancel(&self, _job: &JobId, _reason: &klaw::CancelReason) {}
    ///     fn run_relay(&self, relay: Relay) -> Result<(), Relay> {
    ///         // Where this backend's I/O would run; here, a thread of its own.
    ///         std::thread::spawn(move || klaw::runtime::block_on(relay));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn run_relay(&self, relay: Relay) -> Result<(), Relay> {
        Err(relay)
    }
}

/// A remote task's relay: the future that submits its job and hands the outcome to its handle
/// (feature `remote`). See [`RemoteBackend::run_relay`].
pub type Relay = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A backend that `KLAW_BACKEND=<name>` can pick: a linked crate registers one with
/// `inventory::submit!`.
#[cfg(feature = "remote")]
#[derive(Debug)]
pub struct BackendFactory {
    /// The name `KLAW_BACKEND` gives.
    pub name: &'static str,
    /// Connects, configured from the environment.
    pub connect: fn() -> Result<Arc<dyn RemoteBackend>, BoxError>,
}

#[cfg(feature = "remote")]
inventory::collect!(BackendFactory);

/// The backend `KLAW_BACKEND` asks for: `Ok(None)` for `local` or unset.
pub(crate) fn backend_from_env() -> Result<Option<Arc<dyn RemoteBackend>>, BackendError> {
    let name = match std::env::var(BACKEND_ENV) {
        Ok(name) if !name.is_empty() && name != "local" => name,
        _ => return Ok(None),
    };
    #[cfg(feature = "remote")]
    {
        let linked = || inventory::iter::<BackendFactory>.into_iter();
        let factory =
            linked().find(|factory| factory.name == name).ok_or_else(|| BackendError::Unknown {
                name: name.clone(),
                linked: linked().map(|factory| factory.name).collect::<Vec<_>>().join(", "),
            })?;
        (factory.connect)().map(Some).map_err(|source| BackendError::Connect { name, source })
    }
    // Without remote tasks no backend can be linked.
    #[cfg(not(feature = "remote"))]
    Err(BackendError::Unknown { name, linked: String::new() })
}

/// Why the backend named by `KLAW_BACKEND` could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No linked crate provides it.
    #[error(
        "KLAW_BACKEND={name}, but no such backend is linked (linked: [{linked}]; `local` is \
         built in): depend on the backend's crate, e.g. klaw's `nats` feature for `nats`"
    )]
    Unknown {
        /// The name asked for.
        name: String,
        /// The backends that are linked.
        linked: String,
    },
    /// It is linked but could not connect.
    #[error("KLAW_BACKEND={name}: could not connect: {source}")]
    Connect {
        /// The backend.
        name: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}
