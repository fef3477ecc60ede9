//! The link-time registry of remote tasks (name → start from encoded arguments), and the
//! codecs the macro's generated code uses.

use std::any::Any;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::remote::{RemoteError, WireOutcome};
use crate::task::Task;
use crate::task::error::TaskError;

/// A started remote run: resolves to the encoded [`WireOutcome`] to send back.
pub type RemoteRun = Pin<Box<dyn Future<Output = Vec<u8>> + Send + 'static>>;

/// One `#[klaw::task(remote)]`, as the registry holds it.
pub struct RemoteTaskDef {
    name: &'static str,
    build: &'static str,
    start: fn(&[u8]) -> Result<RemoteRun, RemoteError>,
}

impl RemoteTaskDef {
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        build: &'static str,
        start: fn(&[u8]) -> Result<RemoteRun, RemoteError>,
    ) -> Self {
        Self { name, build, start }
    }

    /// The registered name: the task's module path and function name, or its `name = ".."`.
    ///
    /// ```
    /// assert!(klaw::remote::find_task("no::such::task").is_none());
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The build it comes from: its crate, version and signature. A worker refuses a job made
    /// by another build.
    ///
    /// ```
    /// for task in klaw::remote::remote_tasks() {
    ///     assert!(task.build().contains('@'));
    /// }
    /// ```
    pub fn build(&self) -> &'static str {
        self.build
    }

    /// Decodes the arguments and starts the task: what a worker does with a job. The run is a
    /// future: run it as a task of its own, so that it can be cancelled.
    ///
    /// ```
    /// if let Some(task) = klaw::remote::remote_tasks().next() {
    ///     assert!(task.start(b"not msgpack").is_err());
    /// }
    /// ```
    pub fn start(&self, args: &[u8]) -> Result<RemoteRun, RemoteError> {
        (self.start)(args)
    }
}

impl fmt::Debug for RemoteTaskDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteTaskDef")
            .field("name", &self.name)
            .field("build", &self.build)
            .finish()
    }
}

/// A registry entry (what `#[klaw::task(remote)]` submits to `inventory`).
#[derive(Debug)]
pub struct Registration(#[doc(hidden)] pub &'static RemoteTaskDef);

inventory::collect!(Registration);

/// Every remote task linked into this binary.
///
/// ```
/// let names: Vec<&str> = klaw::remote::remote_tasks().map(|t| t.name()).collect();
/// assert!(names.iter().all(|name| !name.is_empty()));
/// ```
pub fn remote_tasks() -> impl Iterator<Item = &'static RemoteTaskDef> {
    inventory::iter::<Registration>.into_iter().map(|registration| registration.0)
}

/// The remote task registered under `name`.
///
/// ```
/// assert!(klaw::remote::find_task("app::missing").is_none());
/// ```
pub fn find_task(name: &str) -> Option<&'static RemoteTaskDef> {
    remote_tasks().find(|task| task.name == name)
}

/// A type that can be a remote task's argument or output: it must travel to a worker and back.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel to a worker: a remote task's arguments and output must be \
               serde types",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or remove `remote` to run \
            the task only in this process"
)]
pub trait Portable: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Portable for T {}

/// How one type travels: made once per argument and output, in a `const` where its bound is
/// checked, so a type that cannot travel gives one error at its own tokens, and the code that
/// uses the codec carries no bound of its own.
#[doc(hidden)]
pub struct Codec<T> {
    encode: fn(&T) -> Result<Vec<u8>, String>,
    decode: fn(&[u8]) -> Result<T, String>,
}

impl<T> Clone for Codec<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Codec<T> {}

impl<T> fmt::Debug for Codec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::any::type_name::<Self>())
    }
}

#[doc(hidden)]
pub const fn __codec<T: Portable>() -> Codec<T> {
    Codec { encode: encode_value::<T>, decode: decode_value::<T> }
}

fn encode_value<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(value).map_err(|error| error.to_string())
}

fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|error| error.to_string())
}

impl<T> Codec<T> {
    #[doc(hidden)]
    pub fn encode(&self, value: &T) -> Result<Vec<u8>, String> {
        (self.encode)(value)
    }

    #[doc(hidden)]
    pub fn decode(&self, bytes: &[u8]) -> Result<T, String> {
        (self.decode)(bytes)
    }

    /// Decodes argument `index` of the task `name`.
    #[doc(hidden)]
    pub fn decode_arg(&self, name: &str, args: &[Vec<u8>], index: usize) -> Result<T, RemoteError> {
        let bytes = args.get(index).ok_or_else(|| arguments_error(name, "decoded", "too few"))?;
        self.decode(bytes).map_err(|message| arguments_error(name, "decoded", &message))
    }
}

fn arguments_error(name: &str, action: &str, message: &str) -> RemoteError {
    RemoteError::Arguments {
        name: name.to_owned(),
        action: action.to_owned(),
        message: message.to_owned(),
    }
}

/// Packs the encoded arguments: a MessagePack array of each argument's own MessagePack.
#[doc(hidden)]
pub fn __encode_args<const N: usize>(
    name: &str,
    args: [Result<Vec<u8>, String>; N],
) -> Result<Vec<u8>, RemoteError> {
    let mut parts = Vec::with_capacity(N);
    for arg in args {
        parts.push(serde_bytes::ByteBuf::from(
            arg.map_err(|message| arguments_error(name, "encoded", &message))?,
        ));
    }
    rmp_serde::to_vec(&parts).map_err(|error| arguments_error(name, "encoded", &error.to_string()))
}

/// Unpacks what [`__encode_args`] packed: exactly `count` arguments.
#[doc(hidden)]
pub fn __split_args(name: &str, bytes: &[u8], count: usize) -> Result<Vec<Vec<u8>>, RemoteError> {
    let parts: Vec<serde_bytes::ByteBuf> = rmp_serde::from_slice(bytes)
        .map_err(|error| arguments_error(name, "decoded", &error.to_string()))?;
    if parts.len() != count {
        let message = format!("expected {count} arguments, got {}", parts.len());
        return Err(arguments_error(name, "decoded", &message));
    }
    Ok(parts.into_iter().map(serde_bytes::ByteBuf::into_vec).collect())
}

/// Runs a task inline, as a worker does, and encodes its outcome. The task's output is
/// encoded whole (a fallible task's `Result` too): the submitter splits it by the task's mode.
#[doc(hidden)]
pub fn __run<F, M>(name: &'static str, task: Task<F, M>, output: Codec<F::Output>) -> RemoteRun
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = task.into_plain();
    Box::pin(async move {
        let outcome = match task.into_future().await {
            Ok(value) => match output.encode(&value) {
                Ok(bytes) => WireOutcome::Returned(bytes),
                Err(message) => WireOutcome::Refused(RemoteError::Result {
                    name: name.to_owned(),
                    message: format!("the worker could not encode it: {message}"),
                }),
            },
            Err(TaskError::Panicked(message)) => WireOutcome::Panicked(message),
            Err(TaskError::TimedOut(after)) => {
                WireOutcome::TimedOut(u64::try_from(after.as_millis()).unwrap_or(u64::MAX))
            }
            Err(TaskError::Cancelled(reason)) => WireOutcome::Cancelled(reason.to_string()),
            Err(TaskError::Remote(error)) => WireOutcome::Refused(*error),
            Err(TaskError::Failed(never)) => match never {},
        };
        outcome.encode()
    })
}

/// Decodes a reply into the boxed `Result<M::Ok, TaskError<M::Err>>` of the task's types.
pub(crate) fn decode_reply<O, M>(name: &str, bytes: &[u8], output: Codec<O>) -> Box<dyn Any + Send>
where
    M: crate::task::Outcome<O>,
{
    let result: Result<M::Ok, TaskError<M::Err>> = match WireOutcome::decode(name, bytes) {
        Ok(WireOutcome::Returned(value)) => match output.decode(&value) {
            Ok(value) => M::split(value),
            Err(message) => Err(TaskError::Remote(Box::new(RemoteError::Result {
                name: name.to_owned(),
                message,
            }))),
        },
        Ok(WireOutcome::Panicked(message)) => Err(TaskError::Panicked(message)),
        Ok(WireOutcome::TimedOut(millis)) => {
            Err(TaskError::TimedOut(std::time::Duration::from_millis(millis)))
        }
        Ok(WireOutcome::Cancelled(reason)) => {
            Err(TaskError::Remote(Box::new(RemoteError::CancelledRemotely {
                name: name.to_owned(),
                reason,
            })))
        }
        Ok(WireOutcome::Refused(error)) | Err(error) => Err(TaskError::Remote(Box::new(error))),
    };
    Box::new(result)
}
