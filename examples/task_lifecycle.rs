//! Every way a task can end: a runtime with the detected worker count runs tasks that
//! succeed, fail, panic, time out and get cancelled, prints how each one ended, then shuts down
//! with a grace period and prints the report.
//!
//! Run it with `cargo run --example task_lifecycle`; try `KLAW_WORKERS=abc` for a config error,
//! `KLAW_LOG_FORMAT=json` for JSON logs.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a program that reports to its user")]

use std::fmt::Debug;
use std::time::Duration;

use klaw::{Runtime, Task, TaskHandle, task::ExitReason};

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), klaw::Error> {
    // klaw catches task panics and reports them; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        eprintln!("(a task panicked: {message:?}; klaw caught it and reports it below)");
    }));
    // Logs go to stderr, each line inside its task's span (KLAW_LOG, KLAW_LOG_FORMAT=json).
    klaw::log::init().map_err(klaw::Error::other)?;
    let rt = Runtime::builder().build()?;
    let config = rt.config();
    println!(
        "klaw runtime: {} workers ({}; {} physical cores), blocking pool up to {} threads\n",
        rt.worker_count(),
        config.workers_from,
        config.machine.physical_cores,
        config.max_blocking_threads,
    );

    // Each kind of ending, once.
    let answer = rt.spawn(
        Task::new(async {
            klaw::time::sleep(Duration::from_millis(5)).await;
            tracing::info!(answer = 42, "computed the answer");
            42
        })
        .name("answer"),
    );
    let parse = rt.spawn(Task::fallible(async { "forty-two".parse::<u32>() }).name("parse"));
    let panics = rt.spawn(Task::new(async { panic!("a deliberate panic") }).name("panics"));
    let slow = rt.spawn(
        Task::new(klaw::time::sleep(Duration::from_secs(60)))
            .name("slow")
            .timeout(Duration::from_millis(20)),
    );
    let early = rt.spawn(Task::new(async { "ran anyway" }).name("cancelled-at-once"));
    early.cancel("cancelled right after spawn");
    let running = rt.spawn(Task::new(std::future::pending::<()>()).name("cancelled-while-running"));
    let digest = rt.spawn_blocking(|| {
        let source = std::fs::read("Cargo.toml").unwrap_or_default();
        tracing::info!(bytes = source.len(), "hashing Cargo.toml on the blocking pool");
        source.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        })
    });
    // Left running on purpose: the shutdown's grace period runs out on it.
    let lingering =
        rt.spawn(Task::new(klaw::time::sleep(Duration::from_secs(60))).name("lingering"));

    rt.block_on(async {
        klaw::time::sleep(Duration::from_millis(10)).await;
        running.cancel("no longer needed");
        show(answer).await;
        show(parse).await;
        show(panics).await;
        show(slow).await;
        show(early).await;
        show(running).await;
        show(digest).await;
    });

    println!("\nshutting down with a 200 ms grace period; `lingering` is still running…");
    let lingering_state = lingering.task_ref();
    let report = rt.shutdown(Duration::from_millis(200));
    println!("lingering ended: {}", lingering_state.exit_reason());
    println!("shutdown report: {report}");
    Ok(())
}

/// Awaits a task and prints how it ended.
async fn show<T: Debug + Send + 'static, E: Debug + Send + 'static>(handle: TaskHandle<T, E>) {
    let name = handle.name().unwrap_or("(blocking)").to_owned();
    let id = handle.id();
    let canceller = handle.task_ref();
    let result = handle.await;
    let exit = canceller.exit_reason();
    let note = match exit {
        ExitReason::Cancelled => {
            " (a cancel came first, so the body's own result, if any, was discarded)"
        }
        _ => "",
    };
    println!("{name:<24} {id:<5} {exit:<10} {result:?}{note}");
}
