//! Every klaw timer goes through the runtime's clock: `time::Sleep` (which is real time, or a
//! paused runtime's virtual clock) is the only timer, and deadlines are computed from
//! `time::now()`. A timer made any other way would not follow `start_paused`, and a test of it
//! would wait in real time, or race.
//!
//! This reads the code of `src/` (comments aside; unit tests, after `#[cfg(test)]`, aside) and
//! fails on an `async_io::Timer`, or a deadline computed from `Instant::now()`, outside `time/`,
//! except the few listed below, each real time on purpose. (A timestamp taken only to be shown,
//! as a runtime dump's, is not a timer.) `tests/virtual_time.rs` (in the facade) checks the
//! behaviour: each kind of timer under a paused clock.

use std::path::{Path, PathBuf};

/// What may use real time directly, how often, and why.
const REAL_TIME: &[(&str, &str, usize, &str)] = &[
    (
        "runtime/shutdown.rs",
        "Instant::now() +",
        2,
        "shutdown's grace periods (the cancel grace, then the last resort's) bound how long the \
         calling thread blocks",
    ),
    ("runtime/stats.rs", "async_io::Timer", 1, "shutdown's wait for the cancelled tasks"),
    (
        "runtime/executor/own.rs",
        "async_io::Timer",
        2,
        "the watcher's timer: how long a worker began no run, whatever the runtime's clock",
    ),
];

const PATTERNS: &[&str] = &[
    "async_io::Timer",
    "Instant::now() +",
    "Instant::now().checked_add",
    "Instant::now().saturating_duration_since",
];

/// The code of a file, without comments and without its unit tests.
fn code_only(text: &str) -> String {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    before_tests
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_timer_and_clock_reading_outside_time_is_a_listed_exception() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if relative.starts_with("time/") {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for pattern in PATTERNS {
            let found = code.matches(pattern).count();
            let allowed = REAL_TIME
                .iter()
                .find(|(path, allowed, _, _)| *path == relative && allowed == pattern)
                .map_or(0, |(_, _, count, _)| *count);
            if found != allowed {
                wrong.push(format!("{relative}: {found} × `{pattern}`, expected {allowed}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "every klaw timer is a `time::Sleep`, and deadlines come from `time::now()`, so that \
         they follow a paused clock; a real-time one must be listed in REAL_TIME with its \
         reason:\n{}",
        wrong.join("\n")
    );
}
