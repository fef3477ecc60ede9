//! A concurrent link checker, klaw with tokio-based crates: it serves a generated site with axum
//! on loopback, then checks every link reachable from its root with N reqwest fetchers in one
//! bounded `scope!`, with retries and exponential backoff for transient failures (some pages
//! answer 503 the first time), a deadline, progress on stderr and a report on stdout.
//!
//! ```sh
//! cargo run --release -p klaw-tokio-interop --example link_checker
//! cargo run --release -p klaw-tokio-interop --example link_checker -- --fetchers 32 --pages 5000
//! cargo run --release -p klaw-tokio-interop --example link_checker -- --timeout 500ms
//! ```
//!
//! Exit codes: 0 when the check completed (1 with `--strict` if it found a broken link), 124 at
//! the deadline, 130 on Ctrl-C, 2 when it cannot start. A deadline or a Ctrl-C cancels every
//! fetch in flight (each is a child of the check's scope, so the check returns only once all
//! have ended), and the report is partial: what was checked until then.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a program that reports to its user")]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use klaw_tokio_interop::{CheckOptions, Progress, Site, SiteSpec, check_generated_site};

/// Check every link of a generated site, served on loopback, with N concurrent fetchers.
#[derive(Debug, Parser)]
#[command(name = "link_checker")]
struct Args {
    /// Requests in flight at once.
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    fetchers: u16,

    /// Stop after this long and report what was checked: `500ms`, `10s`, `1m`.
    #[arg(short, long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// Pages of the generated site.
    #[arg(long, default_value_t = 500)]
    pages: usize,

    /// How long a slow page (one in 23) takes: `200ms`.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    slow: Duration,

    /// A progress line on stderr every this many pages (0: none).
    #[arg(long, default_value_t = 100)]
    progress_every: usize,

    /// Exit with code 1 when a broken link was found.
    #[arg(long)]
    strict: bool,
}

// `tokio`: axum and reqwest need a tokio reactor and timer, which the runtime now owns.
#[klaw::main(tokio)]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Installed before the check starts, so an early Ctrl-C is not lost to the default action.
    let ctrl_c = match klaw::signal::CtrlC::install() {
        Ok(ctrl_c) => ctrl_c,
        Err(error) => {
            eprintln!("error: cannot listen for Ctrl-C: {error}");
            return ExitCode::from(2);
        }
    };
    let interrupt = async move {
        if ctrl_c.await.is_err() {
            // No more Ctrl-C to wait for: never interrupt.
            std::future::pending::<()>().await;
        }
    };
    let spec = SiteSpec { pages: args.pages, slow_delay: args.slow, ..SiteSpec::default() };
    let site = Arc::new(Site::generate(spec));
    let options = CheckOptions {
        fetchers: usize::from(args.fetchers),
        timeout: Some(args.timeout),
        progress_every: args.progress_every,
        ..CheckOptions::default()
    };
    eprintln!(
        "checking a generated site of {} pages with {} fetchers (deadline {:?})",
        site.spec().pages,
        options.fetchers,
        args.timeout
    );
    let progress = |progress: &Progress| eprintln!("  {progress}");
    match check_generated_site(site, &options, interrupt, &progress).await {
        Ok(report) => {
            print!("{report}");
            ExitCode::from(report.exit_code(args.strict))
        }
        Err(error) => {
            let mut message = error.to_string();
            let mut cause = std::error::Error::source(&error);
            while let Some(error) = cause {
                message = format!("{message}: {error}");
                cause = error.source();
            }
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
