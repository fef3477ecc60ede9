//! What `#[klaw::main]` and `#[klaw::test]` expand to: build the runtime, block on the body,
//! shut down. Not public API (the macros reach it through `klaw::__private`).
#![forbid(unsafe_code)]

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{ExitCode, Termination};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cancel::Region;
use crate::runtime::Runtime;
use crate::sync::{Condvar, Mutex};
use crate::task::CancelReason;
use crate::time::deadline_after;

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
/// exit code 2, and fails a test with the error. A test with a `timeout` runs through
/// [`run_test_within`] instead.
pub fn run_entry<O, F: Future<Output = O>>(config: EntryConfig, body: F) -> O {
    let runtime = build_runtime(config);
    let output = if config.cancel_on_ctrl_c {
        match until_ctrl_c(&runtime, body) {
            Ok(output) => output,
            Err(reason) => {
                drop(runtime); // cancels and ends what is left
                #[allow(clippy::print_stderr, reason = "main has nowhere else to report it")]
                {
                    eprintln!("error: {reason}");
                }
                std::process::exit(130); // as a shell reports SIGINT
            }
        }
    } else {
        runtime.block_on(body)
    };
    drop(runtime);
    output
}

/// How long a test past its timeout waits for its cancelled body to end (so that what it left
/// is cleaned up in the usual case) before it fails anyway, leaving the body's thread behind.
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// What `#[klaw::test(timeout = ..)]` runs: the body (made by `make_body`), and the runtime's
/// whole life, on a thread of its own, which the test's thread waits for for `limit` of real
/// time, so that nothing the body does can hold the test past it (a body that blocks its thread,
/// a `shield` that never ends). Past `limit` the test's thread takes the runtime's tree, cancels
/// the body, waits up to a second (`TIMEOUT_GRACE`) for it to end, and fails the test with the
/// tree, whether or not the body ended (a body that did not is left running on its thread).
///
/// The body's output need not be `Send`: it is turned into its report on the body's thread (an
/// `Err` prints `Error: {e:?}`, as a test returning it does), and the report's exit code is what
/// the test returns. A panic of the body fails the test with the body's own payload. The body
/// logs to the `tracing` subscriber and span current on the test's thread, as it would there.
///
/// ```
/// use klaw_rt::runtime::entry::{EntryConfig, EntryKind, run_test_within};
/// use std::process::ExitCode;
/// use std::time::Duration;
///
/// let config = EntryConfig {
///     kind: EntryKind::Test,
///     workers: Some(1),
///     max_blocking_threads: None,
///     start_paused: false,
///     cancel_on_ctrl_c: false,
///     tokio: false,
/// };
/// // An error that is not `Send` stays on the body's thread; its report's exit code comes back.
/// let code = run_test_within(config, Duration::from_secs(10), || async {
///     Err::<(), _>(std::rc::Rc::new("the disk is full"))
/// });
/// assert_eq!(code, ExitCode::FAILURE);
/// let code = run_test_within(config, Duration::from_secs(10), || async { assert_eq!(6 * 7, 42) });
/// assert_eq!(code, ExitCode::SUCCESS);
/// ```
pub fn run_test_within<O, F, M>(config: EntryConfig, limit: Duration, make_body: M) -> ExitCode
where
    M: FnOnce() -> F + Send + 'static,
    F: Future<Output = O>,
    O: Termination,
{
    let runtime = build_runtime(config);
    let handle = runtime.handle();
    let region = Region::new();
    let token = region.token();
    let ended = Arc::new(Ended::default());
    let started = Instant::now();
    // Named after the test's thread (libtest names it after the test), so that a panic message
    // printed there names the test.
    let name = std::thread::current().name().unwrap_or("klaw-test").to_owned();
    // What the test's thread logs to: a default subscriber and a span that a log-capturing test
    // attribute (tracing-test's `#[traced_test]`) set up around this function. The body logs to
    // them as it does without a timeout, on the test's thread. No subscriber at all is not
    // passed on: as a default it would hide a global one that the body installs.
    let subscriber = tracing::dispatcher::get_default(|current| {
        (!current.is::<tracing::subscriber::NoSubscriber>()).then(|| current.clone())
    });
    let span = tracing::Span::current();
    let body_thread = std::thread::Builder::new()
        .name(name)
        .spawn({
            let ended = ended.clone();
            move || {
                let outcome = {
                    // Left before the outcome is set: the body's logging ends with the body.
                    let _subscriber = subscriber.as_ref().map(tracing::dispatcher::set_default);
                    let _span = span.entered();
                    catch_unwind(AssertUnwindSafe(|| {
                        let output = runtime.block_on(region.run(make_body()));
                        drop(runtime); // cancels and ends what is left, as `run_entry` does
                        output.map(Termination::report)
                    }))
                };
                ended.set(outcome);
            }
        })
        .unwrap_or_else(|error| panic!("cannot start the thread of the test's body: {error}"));

    if let Some(outcome) = ended.wait_until(deadline_after(started, limit)) {
        // It has set its outcome: only its thread's exit is left.
        let _ = body_thread.join();
        match outcome {
            Ok(Ok(code)) => return code,
            Ok(Err(reason)) => panic!("the test's body was cancelled: {reason}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    // The tree is taken before anything is cancelled, so it shows where the test was stuck.
    let tree = handle.dump();
    token.cancel(CancelReason::Deadline);
    // Whether it ended is not looked at: either way the test failed, with the same message.
    drop(ended.wait_until(deadline_after(Instant::now(), TIMEOUT_GRACE)));
    panic!(
        "the test did not finish within its timeout of {limit:?}; what was still running \
         then:\n{tree}"
    )
}

/// How the body of a test with a timeout ended, which its thread sets and the test's thread
/// waits for.
#[derive(Default)]
struct Ended {
    outcome: Mutex<Option<BodyOutcome>>,
    changed: Condvar,
}

/// The body's report, `Err` if it was cancelled, or its panic.
type BodyOutcome = std::thread::Result<Result<ExitCode, CancelReason>>;

impl Ended {
    fn set(&self, outcome: BodyOutcome) {
        *self.outcome.lock() = Some(outcome);
        self.changed.notify_all();
    }

    /// The outcome, once it is set; `None` if `deadline` passed first.
    fn wait_until(&self, deadline: Instant) -> Option<BodyOutcome> {
        let mut outcome = self.outcome.lock();
        loop {
            // Taken out here and dropped by the caller, after the lock: a panic's payload is
            // the user's value.
            if let Some(outcome) = outcome.take() {
                return Some(outcome);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            outcome = self.changed.wait_timeout(outcome, left).0;
        }
    }
}

/// The runtime `config` asks for. One that cannot be built ends `main` with the error and exit
/// code 2, and fails a test with the error.
fn build_runtime(config: EntryConfig) -> Runtime {
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
    match (builder.build(), config.kind) {
        (Ok(runtime), _) => runtime,
        (Err(error), EntryKind::Main) => {
            #[allow(clippy::print_stderr, reason = "main has nowhere else to report it")]
            {
                eprintln!("error: cannot start the klaw runtime: {error}");
            }
            std::process::exit(2);
        }
        (Err(error), EntryKind::Test) => panic!("cannot start the klaw runtime: {error}"),
    }
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
