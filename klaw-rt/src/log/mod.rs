//! Logging: `init()` installs a `tracing` subscriber (human or JSON output, filtered by
//! `KLAW_LOG`), and hooks deliver every event it lets through to your callbacks.
//!
//! Every task runs in a span named `task` with the fields `task.id` and `task.name`, so events
//! from inside a task say which task they came from. The span only carries context, so it is at
//! ERROR: every filter that lets an event through (`warn` too) keeps the task's fields on it.
//!
//! ```
//! klaw::log::LogConfig::default().filter("info").without_output().init()?;
//! let (tx, rx) = std::sync::mpsc::channel();
//! klaw::log::add_hook(move |event| { let _ = tx.send(event.clone()); });
//!
//! let rt = klaw::Runtime::builder().workers(1).build()?;
//! let task = rt.spawn(klaw::Task::new(async { tracing::info!(rows = 3, "loaded") }).name("loader"));
//! let id = task.id();
//! rt.block_on(task)?;
//!
//! let event = rx.try_iter().find(|e| e.message == "loaded").expect("the hook saw the event");
//! assert_eq!(event.fields["rows"], "3");
//! assert_eq!((event.task_id(), event.task_name()), (Some(id.as_u64()), Some("loader")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod event;
mod hooks;

pub use event::LogEvent;
pub use hooks::{HookId, HookLayer, add_hook, clear_hooks, remove_hook};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

/// The environment variable with the filter directives (default `info`), e.g.
/// `KLAW_LOG=warn,my_app=debug`.
///
/// ```
/// assert_eq!(klaw::log::LOG_ENV, "KLAW_LOG");
/// ```
pub const LOG_ENV: &str = "KLAW_LOG";
/// The environment variable that picks the output format: `human` (default) or `json`.
///
/// ```
/// assert_eq!(klaw::log::LOG_FORMAT_ENV, "KLAW_LOG_FORMAT");
/// ```
pub const LOG_FORMAT_ENV: &str = "KLAW_LOG_FORMAT";

/// How log lines are written (to standard error).
///
/// ```
/// let config = klaw::log::LogConfig::default().format(klaw::log::Format::Json);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line, for log collectors (feature `json`).
    #[cfg(feature = "json")]
    Json,
}

/// Logging could not be set up.
///
/// ```
/// let lookup = |name: &str| (name == "KLAW_LOG_FORMAT").then(|| "xml".to_owned());
/// let error: klaw::log::LogInitError = klaw::log::LogConfig::from_lookup(lookup).unwrap_err();
/// assert!(error.to_string().contains("KLAW_LOG_FORMAT"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogInitError {
    /// The filter directives do not parse.
    #[error(
        "{setting}={value:?} is not a valid filter ({reason}); use directives like `info` or `warn,my_crate=debug`"
    )]
    BadFilter {
        /// Where the filter came from.
        setting: &'static str,
        /// The filter as given.
        value: String,
        /// What the parser said.
        reason: String,
    },
    /// The format is not one klaw knows.
    #[error("{LOG_FORMAT_ENV}={value:?} is not a log format; use `human` or `json`")]
    BadFormat {
        /// The format as given.
        value: String,
    },
    /// `KLAW_LOG_FORMAT=json`, in a program built without klaw's `json` feature.
    #[error(
        "{LOG_FORMAT_ENV}=json, but this program was built without klaw's `json` feature; use \
         `human`, or build with `features = [\"json\"]`"
    )]
    JsonNotBuilt,
    /// A global `tracing` subscriber is already installed (by an earlier `init`, or by other
    /// code). Add [`hook_layer`] to that subscriber instead.
    #[error(
        "a global tracing subscriber is already installed; add klaw::log::hook_layer() to it instead"
    )]
    AlreadyInitialized,
}

/// What `init` installs: a filter, an output format (or none), and the hook layer.
///
/// ```
/// use klaw::log::{Format, LogConfig, LogInitError};
/// let env = |name: &str| (name == "KLAW_LOG_FORMAT").then(|| "xml".to_owned());
/// assert_eq!(LogConfig::from_lookup(env), Err(LogInitError::BadFormat { value: "xml".into() }));
/// let config = LogConfig::default().filter("warn").format(Format::Json);
/// # drop(config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a LogConfig does nothing until `init` is called"]
pub struct LogConfig {
    filter: String,
    filter_from: &'static str,
    format: Format,
    output: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".to_owned(),
            filter_from: "LogConfig::filter",
            format: Format::Human,
            output: true,
        }
    }
}

impl LogConfig {
    /// The configuration `KLAW_LOG` and `KLAW_LOG_FORMAT` ask for.
    ///
    /// # Errors
    /// [`LogInitError::BadFormat`] for a format other than `human` or `json`.
    ///
    /// ```
    /// // With neither KLAW_LOG nor KLAW_LOG_FORMAT set: `info`, human-readable.
    /// let config = klaw::log::LogConfig::from_env()?;
    /// # drop(config);
    /// # Ok::<(), klaw::log::LogInitError>(())
    /// ```
    pub fn from_env() -> Result<Self, LogInitError> {
        Self::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Like [`from_env`](Self::from_env), reading variables through `env`.
    ///
    /// # Errors
    /// [`LogInitError::BadFormat`] for a format other than `human` or `json`.
    ///
    /// ```
    /// use klaw::log::{Format, LogConfig};
    /// let env = |name: &str| match name {
    ///     "KLAW_LOG" => Some("warn".to_owned()),
    ///     "KLAW_LOG_FORMAT" => Some("json".to_owned()),
    ///     _ => None,
    /// };
    /// let config = LogConfig::from_lookup(env)?; // `warn` and above, as JSON lines
    /// config.format(Format::Json).without_output().init()?;
    /// # Ok::<(), klaw::log::LogInitError>(())
    /// ```
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Self, LogInitError> {
        let mut config = LogConfig::default();
        if let Some(filter) = env(LOG_ENV) {
            config.filter = filter;
            config.filter_from = LOG_ENV;
        }
        config.format = match env(LOG_FORMAT_ENV).as_deref().map(str::trim) {
            None | Some("human") => Format::Human,
            #[cfg(feature = "json")]
            Some("json") => Format::Json,
            #[cfg(not(feature = "json"))]
            Some("json") => return Err(LogInitError::JsonNotBuilt),
            Some(other) => return Err(LogInitError::BadFormat { value: other.to_owned() }),
        };
        Ok(config)
    }

    /// Filter directives, as `RUST_LOG` takes them (default `info`).
    ///
    /// ```
    /// klaw::log::LogConfig::default().filter("warn,my_app=debug").without_output().init()?;
    /// # Ok::<(), klaw::log::LogInitError>(())
    /// ```
    pub fn filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = directives.into();
        self.filter_from = "LogConfig::filter";
        self
    }

    /// The output format.
    ///
    /// ```
    /// klaw::log::LogConfig::default().format(klaw::log::Format::Json).init()?;
    /// tracing::info!(user = "ada", "signed in"); // {"timestamp":…,"level":"INFO","fields":{…}}
    /// # Ok::<(), klaw::log::LogInitError>(())
    /// ```
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Writes nothing: events reach the hooks only.
    ///
    /// ```
    /// klaw::log::LogConfig::default().without_output().init()?;
    /// tracing::info!("reaches hooks only");
    /// # Ok::<(), klaw::log::LogInitError>(())
    /// ```
    pub fn without_output(mut self) -> Self {
        self.output = false;
        self
    }

    /// Installs the subscriber as the global default.
    ///
    /// # Errors
    /// [`LogInitError::BadFilter`] for directives that do not parse;
    /// [`LogInitError::AlreadyInitialized`] if a global subscriber is already installed.
    ///
    /// ```
    /// use klaw::log::{LogConfig, LogInitError};
    /// let err = LogConfig::default().filter("info,[").init().unwrap_err();
    /// assert!(matches!(err, LogInitError::BadFilter { .. }));
    /// LogConfig::default().init()?;
    /// # Ok::<(), LogInitError>(())
    /// ```
    pub fn init(self) -> Result<(), LogInitError> {
        let filter = EnvFilter::try_new(&self.filter).map_err(|error| LogInitError::BadFilter {
            setting: self.filter_from,
            value: self.filter.clone(),
            reason: error.to_string(),
        })?;
        // Colour only for a person at a terminal, never into a file or a pipe.
        let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let human = (self.output && self.format == Format::Human).then(|| {
            tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour)
        });
        #[cfg(feature = "json")]
        let json = (self.output && self.format == Format::Json)
            .then(|| tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr));
        #[cfg(not(feature = "json"))]
        let json = None::<tracing_subscriber::layer::Identity>;
        let subscriber =
            tracing_subscriber::registry().with(filter).with(human).with(json).with(HookLayer);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| LogInitError::AlreadyInitialized)
    }
}

/// Installs logging as `KLAW_LOG` and `KLAW_LOG_FORMAT` say (default: human-readable, `info`).
///
/// # Errors
/// A [`LogInitError`] naming the bad variable, or `AlreadyInitialized`.
///
/// ```
/// klaw::log::init()?;
/// tracing::info!("written to stderr, and given to every hook");
/// assert_eq!(klaw::log::init(), Err(klaw::log::LogInitError::AlreadyInitialized));
/// # Ok::<(), klaw::log::LogInitError>(())
/// ```
pub fn init() -> Result<(), LogInitError> {
    LogConfig::from_env()?.init()
}

/// The hook layer, for a subscriber you build yourself.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// let subscriber = tracing_subscriber::registry().with(klaw::log::hook_layer());
/// tracing::subscriber::with_default(subscriber, || tracing::info!("seen by hooks"));
/// ```
pub fn hook_layer() -> HookLayer {
    HookLayer
}
