//! What `#[klaw::main]` and `#[klaw::test]` expand to: build the runtime, block on the body,
//! shut down. Not public API (the macros reach it through `klaw::__private`).
#![forbid(unsafe_code)]

use std::future::Future;
use std::time::Duration;

use crate::cancel::fail_after;
use crate::runtime::Runtime;

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
    pub timeout: Option<Duration>,
}

/// Builds the runtime, blocks on `body`, and shuts down (cancelling what is left) when it
/// returns. A runtime that cannot be built (a bad `KLAW_WORKERS`) ends `main` with the error and
/// exit code 2, and fails a test with the error.
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
            match fail_after(limit, body).await {
                Ok(output) => output,
                Err(_) => panic!("the test did not finish within its timeout of {limit:?}"),
            }
        }),
    };
    drop(runtime);
    output
}
