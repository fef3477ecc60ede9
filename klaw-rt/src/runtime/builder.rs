//! `Runtime::builder()`: explicit settings win over `KLAW_WORKERS`, which wins over detection.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::remote::{BackendError, RemoteBackend, backend_from_env};

use crate::runtime::config::{
    ConfigError, MAX_BLOCKING_THREADS, MAX_WORKERS, check_range, check_range_with_hint,
};

/// Why a paused runtime takes only one worker.
const PAUSED_HINT: &str = " (a runtime with start_paused has one worker)";
use crate::runtime::{Runtime, RuntimeConfig, WorkersFrom};

/// The runtime could not be built.
///
/// ```
/// let error: klaw::runtime::BuildError = klaw::Runtime::builder().workers(0).build().unwrap_err();
/// println!("{error}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting (or `KLAW_WORKERS`) has a value klaw cannot use.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operating system refused to start a worker thread.
    #[error("could not start a worker thread: {0}")]
    SpawnThread(#[source] std::io::Error),
    /// The backend `KLAW_BACKEND` names is not linked, or could not connect.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The tokio runtime of [`Builder::tokio`] could not start (the OS refused its thread or its
    /// I/O driver).
    #[cfg(feature = "tokio")]
    #[error("could not start the tokio runtime: {0}")]
    Tokio(#[source] std::io::Error),
}

/// Builds a [`Runtime`]. Unset settings come from [`RuntimeConfig::detect`].
///
/// ```
/// let rt = klaw::Runtime::builder()
///     .workers(3)
///     .max_blocking_threads(16)
///     .thread_name("my-app")
///     .build()?;
/// assert_eq!(rt.worker_count(), 3);
/// let err = klaw::Runtime::builder().workers(0).build().unwrap_err();
/// assert_eq!(err.to_string(), "Builder::workers=0 is out of range: expected 1 to 1024");
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    backend: Option<Backend>,
    workers: Option<usize>,
    max_blocking_threads: Option<usize>,
    blocking_keep_alive: Duration,
    thread_name: Cow<'static, str>,
    start_paused: bool,
    tokio: bool,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Builder {
            backend: None,
            workers: None,
            max_blocking_threads: None,
            blocking_keep_alive: Duration::from_secs(10),
            thread_name: Cow::Borrowed("klaw"),
            start_paused: false,
            tokio: false,
        }
    }

    /// Where `#[klaw::task(remote)]` tasks run: this backend (e.g. `klaw_nats::NatsBackend`).
    /// Overrides `KLAW_BACKEND`. Other tasks always run here.
    ///
    /// ```
    /// # use klaw::remote::{JobId, RemoteBackend, RemoteError, RemoteJob, SubmitFuture};
    /// # #[derive(Debug)] struct Elsewhere;
    /// # impl RemoteBackend for Elsewhere {
    /// #     fn submit(&self, job: RemoteJob) -> SubmitFuture { Box::pin(async { Err(RemoteError::Transport("down".into())) }) }
    /// #     fn cancel(&self, _: &JobId, _: &klaw::CancelReason) {}
    /// # }
    /// let rt = klaw::Runtime::builder().backend(std::sync::Arc::new(Elsewhere)).build()?;
    /// assert!(rt.has_remote_backend());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn backend(mut self, backend: Arc<dyn RemoteBackend>) -> Self {
        self.backend = Some(Backend::Remote(backend));
        self
    }

    /// Runs every task here, remote ones included. Overrides `KLAW_BACKEND`.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().local().build()?;
    /// assert!(!rt.has_remote_backend());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn local(mut self) -> Self {
        self.backend = Some(Backend::Local);
        self
    }

    /// Worker threads (1 to 1024). Overrides `KLAW_WORKERS` and detection.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(4).build()?;
    /// assert_eq!(rt.worker_count(), 4);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The most blocking closures running at once (1 to 4096; default 512).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().max_blocking_threads(8).build()?;
    /// assert_eq!(rt.config().max_blocking_threads, 8);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn max_blocking_threads(mut self, threads: usize) -> Self {
        self.max_blocking_threads = Some(threads);
        self
    }

    /// How long an idle blocking thread waits for work before it exits (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().blocking_keep_alive(Duration::from_secs(1)).build()?;
    /// assert_eq!(rt.block_on(rt.spawn_blocking(|| 1)), Ok(1));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn blocking_keep_alive(mut self, keep_alive: Duration) -> Self {
        self.blocking_keep_alive = keep_alive;
        self
    }

    /// The prefix of thread names: `{name}-worker-{i}`, `{name}-blocking-{i}` (default `klaw`).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).thread_name("indexer").build()?;
    /// let name = rt.block_on(rt.spawn(async { std::thread::current().name().map(str::to_owned) }))?;
    /// assert_eq!(name.as_deref(), Some("indexer-worker-0"));
    /// # Ok::<(), klaw::Error>(())
    /// ```
    pub fn thread_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Gives the runtime a virtual clock, for tests (what `#[klaw::test(start_paused = true)]`
    /// does). Time stands still while any task can make progress; when every task waits (no
    /// task is runnable, no `block_on` future has been woken, no blocking-pool job is queued or
    /// running), the clock jumps to the next timer's deadline and fires it. A test of an
    /// hour-long timeout runs in a moment, the same way every time. Every klaw timer made on
    /// the runtime follows this clock (`klaw::time::now()` reads it, `klaw::time::advance`
    /// moves it by hand); `std::time::Instant::now()` stays real.
    ///
    /// Such a runtime has one worker, so that "no task is runnable" is something it can know,
    /// and the tasks a timer wakes run one at a time in deadline order: `workers` may only be 1
    /// (and `KLAW_WORKERS` is ignored). Its clock does not wait for what klaw cannot see: a
    /// thread klaw did not start, I/O in flight. With no timer pending the clock does not move.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().start_paused(true).build()?;
    /// assert_eq!((rt.worker_count(), rt.config().start_paused), (1, true));
    /// let waited = rt.block_on(async {
    ///     let start = klaw::time::now();
    ///     let late = klaw::cancel::fail_after(Duration::from_secs(3600), std::future::pending::<()>());
    ///     assert!(late.await.is_err()); // an hour, at once
    ///     klaw::time::now() - start
    /// });
    /// assert_eq!(waited, Duration::from_secs(3600));
    /// let err = klaw::Runtime::builder().start_paused(true).workers(4).build().unwrap_err();
    /// assert!(err.to_string().contains("Builder::workers=4"));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn start_paused(mut self, paused: bool) -> Self {
        self.start_paused = paused;
        self
    }

    /// Gives the runtime a tokio runtime, so that tokio-based crates work inside klaw tasks:
    /// `tokio::net`, `tokio::time`, and what is built on them (hyper, reqwest, axum, tonic,
    /// sqlx...). Off by default; `#[klaw::main(tokio)]` and `#[klaw::test(tokio)]` turn it on.
    /// Needs klaw's `tokio` feature.
    ///
    /// The tokio runtime runs no klaw task. It has one worker thread (`{name}-tokio`, see
    /// [`thread_name`](Self::thread_name)) that drives tokio's I/O and time drivers, and every
    /// thread that polls this runtime's tasks (each worker, each blocking-pool thread, and the
    /// thread inside [`Runtime::block_on`]) has entered its context once, for good. So a tokio
    /// `TcpStream` or `tokio::time::sleep` is polled by klaw's workers like any future, and
    /// klaw's scopes, deadlines and `select!` govern it: cancelling the task drops it.
    ///
    /// **`tokio::spawn` escapes the scope.** Inside a klaw task it spawns onto the tokio
    /// runtime, which no scope watches: the spawned future outlives the scope, its failure
    /// fails nothing, and cancelling the scope does not reach it. Spawn with `s.spawn(..)` in a
    /// `scope!` (or [`Runtime::spawn`]) instead; keep `tokio::spawn` for what a library does
    /// internally (hyper's connection tasks, for instance, which end with their connection).
    ///
    /// The tokio runtime is shut down with this runtime, after every klaw task has ended,
    /// without waiting for what `tokio::spawn` left on it (that is dropped on its own thread).
    /// Under [`start_paused`](Self::start_paused), tokio's own timers stay real time and do not
    /// hold the virtual clock.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = klaw::Runtime::builder().workers(2).tokio(true).build()?;
    /// assert!(rt.config().tokio);
    /// let same_peer = rt.block_on(async {
    ///     klaw::scope!(|s| {
    ///         let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    ///         let address = listener.local_addr()?;
    ///         let server = s.spawn(klaw::Task::fallible(async move {
    ///             let (_stream, peer) = listener.accept().await?;
    ///             Ok::<_, std::io::Error>(peer)
    ///         }));
    ///         let client = tokio::net::TcpStream::connect(address).await?;
    ///         // A klaw deadline over a tokio timer: the deadline wins, and drops the sleep.
    ///         let late = tokio::time::sleep(Duration::from_secs(3600));
    ///         assert!(klaw::cancel::move_on_after(Duration::from_millis(10), late).await.is_none());
    ///         Ok(server.await? == client.local_addr()?)
    ///     })
    /// })?;
    /// assert!(same_peer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tokio")]
    pub fn tokio(mut self, enabled: bool) -> Self {
        self.tokio = enabled;
        self
    }

    /// The configuration `build` would use, without starting anything.
    ///
    /// # Errors
    /// [`ConfigError`] for an out-of-range setting, a thread name with a NUL byte, or a bad
    /// `KLAW_WORKERS`.
    ///
    /// ```
    /// let config = klaw::Runtime::builder().workers(2).config()?;
    /// assert_eq!((config.workers, config.workers_from), (2, klaw::runtime::WorkersFrom::Builder));
    /// # Ok::<(), klaw::runtime::ConfigError>(())
    /// ```
    pub fn config(&self) -> Result<RuntimeConfig, ConfigError> {
        // An explicit count (a paused runtime's is one) must not fail on a bad variable it
        // overrides.
        let mut config = if self.workers.is_some() || self.start_paused {
            RuntimeConfig::from_env(|_| None, crate::runtime::MachineInfo::probe())?
        } else {
            RuntimeConfig::detect()?
        };
        if let Some(workers) = self.workers {
            config.workers = if self.start_paused {
                check_range_with_hint("Builder::workers", workers, 1, 1, PAUSED_HINT)?
            } else {
                check_range("Builder::workers", workers, 1, MAX_WORKERS)?
            };
            config.workers_from = WorkersFrom::Builder;
        } else if self.start_paused {
            config.workers = 1;
            config.workers_from = WorkersFrom::Paused;
        }
        // The OS takes thread names as C strings: std's spawn panics on a NUL byte, which would
        // come out of `build` halfway through starting the workers instead of as this error.
        if self.thread_name.contains('\0') {
            return Err(ConfigError::Invalid {
                setting: "Builder::thread_name",
                value: self.thread_name.clone().into_owned(),
                problem: "a thread name cannot hold a NUL byte",
            });
        }
        config.start_paused = self.start_paused;
        config.tokio = self.tokio;
        if let Some(threads) = self.max_blocking_threads {
            config.max_blocking_threads =
                check_range("Builder::max_blocking_threads", threads, 1, MAX_BLOCKING_THREADS)?;
        }
        Ok(config)
    }

    /// Starts the runtime's threads.
    ///
    /// # Errors
    /// [`BuildError::Config`] for a bad setting or `KLAW_WORKERS`; [`BuildError::SpawnThread`]
    /// if the OS refuses a thread.
    ///
    /// ```
    /// let err = klaw::Runtime::builder().max_blocking_threads(0).build().unwrap_err();
    /// assert!(err.to_string().contains("Builder::max_blocking_threads=0"));
    /// ```
    pub fn build(self) -> Result<Runtime, BuildError> {
        let config = self.config()?;
        let backend = match self.backend {
            Some(Backend::Remote(backend)) => Some(backend),
            Some(Backend::Local) => None,
            None => backend_from_env()?,
        };
        Runtime::start(config, self.thread_name.into_owned(), self.blocking_keep_alive, backend)
    }
}

/// The backend a builder was told to use.
#[derive(Debug, Clone)]
enum Backend {
    Local,
    Remote(Arc<dyn RemoteBackend>),
}
