//! The README's main job: hash every file of a directory tree (by default this repository) with
//! N hashing tasks fed by a bounded channel, all inside one `scope!`, and report.
//!
//! ```sh
//! cargo run --release --example dir_hasher                 # hash the repository
//! cargo run --release --example dir_hasher -- ~/src -w 4   # another tree, 4 hashing tasks
//! cargo run --release --example dir_hasher -- --timeout 2s # a deadline scope
//! ```
//!
//! Ctrl-C cancels cleanly: every task stops at its next step and a partial report is printed
//! (exit code 130). A deadline ends the same way (exit code 124). Unreadable files are listed in
//! the report, never abort the run. Logs go through klaw's tracing setup (`KLAW_LOG`,
//! `KLAW_LOG_FORMAT`); the default level here is `warn`.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a program that reports to its user")]

mod cli;
mod hashing;
mod report;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use klaw::{CancelReason, cancel::Region};

use crate::cli::Args;
use crate::hashing::{Counters, hash_tree};
use crate::report::{Ending, Report};

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(error) = init_logging() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let mut builder = klaw::Runtime::builder();
    if let Some(workers) = args.workers {
        builder = builder.workers(workers);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the klaw runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let hashers = args.workers.unwrap_or_else(|| runtime.worker_count());

    // Ctrl-C cancels the region the whole job runs in: the scope inside is dropped, which
    // cancels every child; blocking children see `klaw::cancel::is_cancelled()` at their next step.
    let region = Region::new();
    let interrupt = region.token();
    // Installed here, before the job starts, so an early Ctrl-C is not lost.
    let ctrl_c = match klaw::signal::CtrlC::install() {
        Ok(ctrl_c) => ctrl_c,
        Err(error) => {
            eprintln!("error: cannot listen for Ctrl-C: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = runtime.spawn(async move {
        if ctrl_c.await.is_ok() {
            interrupt.cancel(CancelReason::Interrupted);
        }
    });

    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let outcome = runtime.block_on(region.run(hash_tree(&args, hashers, counters.clone())));
    // The job is over: the listener has nothing left to interrupt. Left running, it would be
    // the one live task that shutdown waits its whole grace period for.
    listener.cancel(CancelReason::ParentCancelled);
    let ending = match outcome {
        Ok(Ok(digest)) => Ending::Complete(digest),
        Ok(Err(klaw::Error::Elapsed(_))) => Ending::Deadline(args.timeout.unwrap_or_default()),
        Ok(Err(error)) => Ending::Failed(error.to_string()),
        Err(reason) => Ending::Interrupted(reason.to_string()),
    };

    // Whatever happened, wait briefly for the blocking tasks to notice and stop, so the counts
    // are final; they check for cancellation between chunks of a few hundred KiB.
    let report = runtime.shutdown(Duration::from_millis(500));
    let summary = Report::new(&args.root, hashers, &counters, ending, started.elapsed());
    print!("{summary}");
    if report.grace_expired {
        eprintln!("warning: {report}");
    }
    summary.exit_code()
}

fn init_logging() -> Result<(), klaw::log::LogInitError> {
    let config = klaw::log::LogConfig::from_env()?;
    let config =
        if std::env::var_os(klaw::log::LOG_ENV).is_none() { config.filter("warn") } else { config };
    config.init()
}
