//! What `#[klaw::main]` and `#[klaw::test]` expand to: build the runtime, block on the body,
//! shut down. Not public API (the macros reach it through `klaw::__private`).
#![forbid(unsafe_code)]

use std::future::Future;
use std::time::Duration;

use crate::cancel::Region;
use crate::runtime::{Handle, Runtime, RuntimeDump};
use crate::task::CancelReason;

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
    /// `start_paused = true` (tests only): the runtime's clock is virtual.
    pub start_paused: bool,
    /// `cancel_on_ctrl_c` (`main` only): Ctrl-C cancels the body with
    /// [`CancelReason::Interrupted`]; if it then does not return a value, the process exits with
    /// code 130.
    pub cancel_on_ctrl_c: bool,
    /// `tokio`: the runtime owns a tokio runtime for tokio-based crates (`Builder::tokio`).
    pub tokio: bool,
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
    builder = builder.start_paused(config.start_paused);
    // Without the feature the macro's expansion refuses the option, so `tokio` is false here.
    #[cfg(feature = "tokio")]
    {
        builder = builder.tokio(config.tokio);
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
    let output = match (config.timeout, config.cancel_on_ctrl_c) {
        (Some(limit), _) => {
            let handle = runtime.handle();
            runtime.block_on(async {
                match within_real_time(limit, handle, body).await {
                    Ok(output) => output,
                    Err(tree) => panic!(
                        "the test did not finish within its timeout of {limit:?}; what was still \
                         running then:\n{tree}"
                    ),
                }
            })
        }
        (None, true) => match until_ctrl_c(&runtime, body) {
            Ok(output) => output,
            Err(reason) => {
                drop(runtime); // cancels and ends what is left
                #[allow(clippy::print_stderr, reason = "main has nowhere else to report it")]
                {
                    eprintln!("error: {reason}");
                }
                std::process::exit(130); // as a shell reports SIGINT
            }
        },
        (None, false) => runtime.block_on(body),
    };
    drop(runtime);
    output
}

/// Without the `signal` feature the macro refuses `cancel_on_ctrl_c`, so this never runs.
#[cfg(not(feature = "signal"))]
fn until_ctrl_c<F: Future>(_: &Runtime, _: F) -> Result<F::Output, CancelReason> {
    unreachable!("`cancel_on_ctrl_c` needs klaw's `signal` feature; the macro refuses it without")
}

/// Runs `body` in a cancel region that Ctrl-C cancels with [`CancelReason::Interrupted`]. The
/// handler is installed before the body starts, so no Ctrl-C falls through to the default action.
#[cfg(feature = "signal")]
fn until_ctrl_c<F: Future>(runtime: &Runtime, body: F) -> Result<F::Output, CancelReason> {
    let ctrl_c = match crate::signal::CtrlC::install() {
        Ok(ctrl_c) => ctrl_c,
        Err(error) => {
            #[allow(clippy::print_stderr, reason = "main has nowhere else to report it")]
            {
                eprintln!("error: cannot listen for Ctrl-C: {error}");
            }
            std::process::exit(2);
        }
    };
    let region = Region::new();
    let interrupt = region.token();
    let listener = runtime.spawn(async move {
        if ctrl_c.await.is_ok() {
            interrupt.cancel(CancelReason::Interrupted);
        }
    });
    let outcome = runtime.block_on(region.run(body));
    listener.cancel(CancelReason::ParentCancelled);
    outcome
}

/// Runs `body` in a cancel region cancelled after `limit` of real time. A test's own timeout is
/// real time even under a paused clock: it bounds how long the test may take on the wall clock
/// (a test stuck on a channel, with no timer to jump to, still fails), and a virtual one would
/// be over as soon as the test waited on something that is not a timer.
/// When it passes, the runtime's tree is taken before anything is cancelled, so it shows where
/// the test was stuck.
async fn within_real_time<F: Future>(
    limit: Duration,
    runtime: Handle,
    body: F,
) -> Result<F::Output, RuntimeDump> {
    let region = Region::new();
    let token = region.token();
    let tree = std::sync::Mutex::new(None);
    let watchdog = async {
        async_io::Timer::after(limit).await;
        *tree.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(runtime.dump());
        token.cancel(CancelReason::Deadline);
        std::future::pending().await
    };
    let outcome = futures_lite::future::or(region.run(body), watchdog).await;
    outcome.map_err(|_| {
        let tree = tree.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        tree.unwrap_or_else(|| runtime.dump())
    })
}
