//! `LogEvent`: an owned copy of a tracing event and the fields of the spans around it.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;

use tracing::Level;
use tracing::field::{Field, Visit};

/// One event, as a hook receives it: its level, target and message, its own fields, and the
/// fields of the spans it happened in (innermost wins), such as the task's `task.id` and
/// `task.name`.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(klaw::log::hook_layer()));
/// let (tx, rx) = std::sync::mpsc::channel::<klaw::log::LogEvent>();
/// let id = klaw::log::add_hook(move |event| { let _ = tx.send(event.clone()); });
/// tracing::warn!(rows = 3, "loaded");
/// klaw::log::remove_hook(id);
/// let event = rx.try_iter().find(|e| e.message == "loaded").unwrap();
/// assert_eq!((event.level, event.fields["rows"].as_str()), (tracing::Level::WARN, "3"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogEvent {
    /// The event's level.
    pub level: Level,
    /// The module (or explicit target) that emitted it.
    pub target: String,
    /// The formatted message (`tracing::info!("this part")`), empty if none.
    pub message: String,
    /// The event's own fields, formatted.
    pub fields: BTreeMap<&'static str, String>,
    /// The fields of the enclosing spans, formatted; inner spans override outer ones, also
    /// with a field they declare and leave empty (which is then absent).
    pub span_fields: BTreeMap<&'static str, String>,
}

impl LogEvent {
    /// The id of the klaw task the event happened in, if any.
    ///
    /// ```
    /// klaw::log::LogConfig::default().without_output().init()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// klaw::log::add_hook(move |event| { let _ = tx.send(event.task_id()); });
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let task = rt.spawn(async { tracing::info!("inside") });
    /// let id = task.id().as_u64();
    /// rt.block_on(task)?;
    /// assert!(rx.try_iter().any(|seen| seen == Some(id)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_id(&self) -> Option<u64> {
        self.span_fields.get("task.id")?.parse().ok()
    }

    /// The name of the klaw task the event happened in, if it has one.
    ///
    /// ```
    /// klaw::log::LogConfig::default().without_output().init()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// klaw::log::add_hook(move |event| { let _ = tx.send(event.task_name().map(str::to_owned)); });
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// rt.block_on(rt.spawn(klaw::Task::new(async { tracing::info!("hi") }).name("greeter")))?;
    /// assert!(rx.try_iter().any(|name| name.as_deref() == Some("greeter")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_name(&self) -> Option<&str> {
        self.span_fields.get("task.name").map(String::as_str)
    }

    /// The name of the scope whose child the event happened in, if the scope has one.
    ///
    /// ```
    /// klaw::log::LogConfig::default().without_output().init()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// klaw::log::add_hook(move |event| { let _ = tx.send(event.scope_name().map(str::to_owned)); });
    /// klaw::runtime::block_on(async {
    ///     klaw::scope!(name = "crawl", |s| {
    ///         s.spawn_local(async { tracing::info!("child") });
    ///         Ok(())
    ///     })
    /// })?;
    /// assert!(rx.try_iter().any(|scope| scope.as_deref() == Some("crawl")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope_name(&self) -> Option<&str> {
        self.span_fields.get("scope").map(String::as_str)
    }
}

/// Formats every field of an event or span into a map (the `message` field separately).
#[derive(Default)]
pub(crate) struct FieldMap {
    pub(crate) message: Option<String>,
    pub(crate) fields: BTreeMap<&'static str, String>,
}

impl Visit for FieldMap {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, format!("{value:?}"));
    }
}

impl FieldMap {
    fn insert(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.insert(field.name(), value);
        }
    }
}
