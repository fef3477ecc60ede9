//! # klaw: structured concurrency for Rust
//!
//! Tasks whose first terminal state wins, cancel tokens that exist before a task is scheduled,
//! and a runtime on `async-executor` whose shutdown reports what happened to every task.
//!
//! ```
//! use klaw::prelude::*;
//! use std::time::Duration;
//!
//! #[klaw::main(workers = 2)]
//! async fn main() -> Result<(), klaw::Error> {
//!     let rt = klaw::Handle::current()?;
//!     let answer = rt.spawn(async { 6 * 7 });
//!     let stuck = rt.spawn(std::future::pending::<()>());
//!     stuck.cancel("not needed");
//!
//!     assert_eq!(answer.await?, 42);
//!     assert!(matches!(stuck.await, Err(TaskError::Cancelled(_))));
//!     assert!(klaw::timeout(Duration::from_millis(1), klaw::sleep(Duration::from_secs(9))).await.is_err());
//!     Ok(())
//! }
//! ```
//!
//! The tutorial is the book in `book/` (every snippet in it is compiled and run by
//! `cargo test`); `ARCHITECTURE.md` is the map of the code.
#![forbid(unsafe_code)]

pub use klaw_macros::{main, scope, select, task, test};
pub use klaw_rt::{
    BlockingTask, BoxError, BuildError, Builder, CancelReason, CancelScope, CancelToken,
    Cancellable, Canceller, ConfigError, DEFAULT_MAX_BLOCKING_THREADS, Elapsed, Error, ExitReason,
    Fallible, Handle, InlineBlockingTask, InlineTask, IntoTask, MAX_BLOCKING_THREADS, MAX_WORKERS,
    MachineInfo, NoRuntime, Outcome, Plain, Runtime, RuntimeConfig, Scope, ScopeBody, ScopeError,
    ScopeHandle, ScopeOptions, Shielded, ShutdownReport, ShutdownTimedOut, Spawnable, Task,
    TaskError, TaskFailure, TaskHandle, TaskId, WORKERS_ENV, WorkersFrom, block_on, checkpoint,
    current_task_id, fail_after, fail_at, is_cancelled, move_on_after, move_on_at, scope_with,
    shield, sleep, sleep_until, timeout, timeout_at,
};

pub use klaw_rt::{broadcast, channel, oneshot, unbounded, watch};

pub use klaw_rt::cancel;
pub use klaw_rt::log;
pub use klaw_rt::remote;

/// The NATS JetStream backend (feature `nats`): remote tasks on worker processes, and channels
/// across machines. Enabling it also lets `KLAW_BACKEND=nats` pick it.
#[cfg(feature = "nats")]
pub use klaw_nats as nats;

/// Time: `sleep`, `timeout` and deadlines (also re-exported at the crate root).
pub mod time {
    pub use klaw_rt::time::*;
}

/// The names most programs need: `use klaw::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CancelReason, CancelScope, Canceller, Error, ExitReason, Runtime, Scope, ScopeHandle, Task,
        TaskError, TaskHandle,
    };
}

/// Support for the macros' generated code. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    use crate::Runtime;

    pub use crate::{
        BlockingTask, Error, Fallible, Plain, Scope, ScopeOptions, Task, scope_with, sleep,
        sleep_until,
    };
    pub use klaw_rt::channel::{
        __finish_send as finish_send, __random_start as random_start, SelectRecv, SelectSend,
    };
    pub use klaw_rt::remote;

    /// Gives a scope body the type `scope_with` expects; the `Future<Output = Result<T, Error>>`
    /// bound is what lets `?` in the body infer `klaw::Error`.
    pub fn scope_body<'s, T, F>(body: F) -> crate::ScopeBody<'s, T>
    where
        F: Future<Output = Result<T, Error>> + Send + 's,
    {
        Box::pin(body)
    }

    /// Stands in for a `scope!` with a compile error, so the caller's code still type-checks and
    /// the user sees only the macro's message.
    pub async fn scope_stub<T>() -> Result<T, Error> {
        unreachable!("scope! had a compile error")
    }

    /// Counting the assertions of a book snippet (see `__book_asserts!`).
    pub mod book {
        use std::collections::HashSet;
        use std::sync::{Mutex, PoisonError};

        pub use crate::{
            __book_assert as assert, __book_assert_eq as assert_eq, __book_assert_ne as assert_ne,
        };

        /// Where an assertion is: the module of its snippet, its line and its column.
        type Site = (&'static str, u32, u32);

        /// Every assertion site that ran.
        static REACHED: Mutex<Option<HashSet<Site>>> = Mutex::new(None);

        /// An assertion at this site is about to run.
        pub fn reached(module: &'static str, line: u32, column: u32) {
            let mut reached = REACHED.lock().unwrap_or_else(PoisonError::into_inner);
            reached.get_or_insert_with(HashSet::new).insert((module, line, column));
        }

        /// Checks, when the snippet ends, that `expected` assertion sites ran.
        #[derive(Debug)]
        pub struct Expect {
            module: &'static str,
            expected: usize,
        }

        impl Expect {
            /// Expects `expected` assertion sites in the snippet of `module`.
            pub fn new(module: &'static str, expected: usize) -> Self {
                Expect { module, expected }
            }
        }

        impl Drop for Expect {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    return;
                }
                let reached = REACHED.lock().unwrap_or_else(PoisonError::into_inner);
                let ran = reached
                    .iter()
                    .flatten()
                    .filter(|(module, _, _)| *module == self.module)
                    .count();
                drop(reached);
                ::core::assert_eq!(
                    ran,
                    self.expected,
                    "only {ran} of this snippet's {} assertions ran",
                    self.expected
                );
            }
        }
    }

    /// Which attribute expanded.
    #[derive(Debug, Clone, Copy)]
    pub enum EntryKind {
        /// `#[klaw::main]`
        Main,
        /// `#[klaw::test]`
        Test,
    }

    /// The options of `#[klaw::main]` / `#[klaw::test]`, already validated by the macro.
    #[derive(Debug, Clone, Copy)]
    pub struct EntryConfig {
        /// Which attribute.
        pub kind: EntryKind,
        /// `workers = N`
        pub workers: Option<usize>,
        /// `max_blocking_threads = N`
        pub max_blocking_threads: Option<usize>,
        /// `timeout = "10s"` (tests only): past it the test fails instead of hanging.
        pub timeout: Option<std::time::Duration>,
    }

    /// Builds the runtime, blocks on `body`, and shuts down (cancelling what is left) when it
    /// returns. A runtime that cannot be built (a bad `KLAW_WORKERS`) ends `main` with the error
    /// and exit code 2, and fails a test with the error.
    pub fn run_entry<O, F: Future<Output = O>>(config: EntryConfig, body: F) -> O {
        let mut builder = Runtime::builder();
        if let Some(workers) = config.workers {
            builder = builder.workers(workers);
        }
        if let Some(threads) = config.max_blocking_threads {
            builder = builder.max_blocking_threads(threads);
        }
        let runtime = match (builder.build(), config.kind) {
            (Ok(runtime), _) => runtime,
            (Err(error), EntryKind::Main) => {
                #[allow(clippy::print_stderr, reason = "main has nowhere else to report it")]
                {
                    eprintln!("error: cannot start the klaw runtime: {error}");
                }
                std::process::exit(2);
            }
            (Err(error), EntryKind::Test) => panic!("cannot start the klaw runtime: {error}"),
        };
        let output = match config.timeout {
            None => runtime.block_on(body),
            Some(limit) => runtime.block_on(async {
                match crate::timeout(limit, body).await {
                    Ok(output) => output,
                    Err(_) => panic!("the test did not finish within its timeout of {limit:?}"),
                }
            }),
        };
        drop(runtime);
        output
    }
}

/// The assertion macros of the book's snippets: each records that it ran (see
/// `__private::book`), then asserts as `std`'s does.
#[doc(hidden)]
#[macro_export]
macro_rules! __book_assert {
    ($($arg:tt)*) => {{
        $crate::__private::book::reached(::core::module_path!(), ::core::line!(), ::core::column!());
        ::core::assert!($($arg)*)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __book_assert_eq {
    ($($arg:tt)*) => {{
        $crate::__private::book::reached(::core::module_path!(), ::core::line!(), ::core::column!());
        ::core::assert_eq!($($arg)*)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __book_assert_ne {
    ($($arg:tt)*) => {{
        $crate::__private::book::reached(::core::module_path!(), ::core::line!(), ::core::column!());
        ::core::assert_ne!($($arg)*)
    }};
}

/// The book's chapters, compiled and run as doc-tests so the tutorial cannot rot.
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../README.md")]
    mod readme {}
    #[doc = include_str!("../book/src/introduction.md")]
    mod introduction {}
    #[doc = include_str!("../book/src/why.md")]
    mod why {}
    #[doc = include_str!("../book/src/tasks.md")]
    mod tasks {}
    #[doc = include_str!("../book/src/scopes.md")]
    mod scopes {}
    #[doc = include_str!("../book/src/cancellation.md")]
    mod cancellation {}
    #[doc = include_str!("../book/src/channels.md")]
    mod channels {}
    #[doc = include_str!("../book/src/select.md")]
    mod select {}
    #[doc = include_str!("../book/src/logging.md")]
    mod logging {}
    #[doc = include_str!("../book/src/runtime.md")]
    mod runtime {}
    #[doc = include_str!("../book/src/from_tokio.md")]
    mod from_tokio {}
}
