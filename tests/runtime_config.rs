//! The runtime really uses the detected worker count (a detected setting that nothing uses is a
//! bug), and a bad `KLAW_WORKERS` is a typed error that names the variable and the accepted
//! range.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use klaw::runtime::{BuildError, ConfigError, RuntimeConfig, WorkersFrom};

/// Waits until `parties` threads arrive or `timeout` passes; true if all arrived.
fn rendezvous(state: &(Mutex<usize>, Condvar), parties: usize, timeout: Duration) -> bool {
    let (count, all_here) = state;
    let mut count = count.lock().unwrap();
    *count += 1;
    all_here.notify_all();
    let (count, _) = all_here.wait_timeout_while(count, timeout, |c| *c < parties).unwrap();
    *count >= parties
}

#[test]
fn a_default_runtime_runs_exactly_the_detected_number_of_workers() {
    let detected = RuntimeConfig::detect().unwrap();
    let rt = klaw::Runtime::builder().build().unwrap();
    assert_eq!(rt.config().workers, detected.workers);
    assert_eq!(rt.worker_count(), detected.workers);
    assert_ne!(rt.config().workers_from, WorkersFrom::Builder);

    // Prove the workers exist: `n` tasks each block their thread until all `n` are running at
    // once, which only `n` distinct worker threads can do.
    let n = detected.workers;
    let meeting = Arc::new((Mutex::new(0), Condvar::new()));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let meeting = meeting.clone();
            rt.spawn(async move {
                let all_met = rendezvous(&meeting, n, Duration::from_secs(20));
                (all_met, std::thread::current().name().map(str::to_owned))
            })
        })
        .collect();
    let results = common::join_all(&rt, handles);
    assert!(results.iter().all(|(met, _)| *met), "fewer than {n} workers ran at once");
    let mut names: Vec<_> = results.into_iter().map(|(_, name)| name.unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
    assert!(names.iter().all(|name| name.starts_with("klaw-worker-")));
}

#[test]
fn builder_settings_are_checked_with_typed_errors() {
    for (workers, blocking) in [(0, 1), (1025, 1), (1, 0), (1, 4097)] {
        let err = klaw::Runtime::builder()
            .workers(workers)
            .max_blocking_threads(blocking)
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::Config(ConfigError::OutOfRange { .. })), "{err}");
    }
    let rt = klaw::Runtime::builder().workers(3).build().unwrap();
    assert_eq!((rt.worker_count(), rt.config().workers_from), (3, WorkersFrom::Builder));
}

const CHILD: &str = "child_builds_a_default_runtime_and_prints_the_error";

#[test]
fn a_bad_klaw_workers_is_a_typed_error_naming_the_variable_and_range() {
    // The environment is process-wide, so each value is tried in a child process: this same
    // test binary, running only the ignored child test below.
    let cases = [
        ("abc", "KLAW_WORKERS=\"abc\" is not a whole number: expected 1 to 1024"),
        ("0", "KLAW_WORKERS=0 is out of range: expected 1 to 1024"),
        ("100000", "KLAW_WORKERS=100000 is out of range: expected 1 to 1024"),
    ];
    for (value, expected) in cases {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CHILD, "--ignored", "--nocapture", "--test-threads=1"])
            .env("KLAW_WORKERS", value)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed for {value}: {stdout}");
        assert!(stdout.contains(expected), "for {value}, expected {expected:?} in: {stdout}");
    }
}

#[test]
#[ignore = "run in a child process by a_bad_klaw_workers_is_a_typed_error_naming_the_variable_and_range"]
#[allow(clippy::print_stdout, reason = "the parent test reads the child's stdout")]
fn child_builds_a_default_runtime_and_prints_the_error() {
    match klaw::Runtime::builder().build() {
        Err(BuildError::Config(error)) => println!("config error: {error}"),
        other => panic!("expected a typed config error, got {other:?}"),
    }
    // An explicit worker count overrides the bad variable and does not fail on it.
    assert_eq!(klaw::Runtime::builder().workers(2).build().unwrap().worker_count(), 2);
}
