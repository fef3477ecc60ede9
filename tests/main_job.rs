//! The README's main job, `examples/dir_hasher`, driven as a user would: a full run on the
//! repository, a run cut by `--timeout 1ms`, and a run interrupted with SIGINT.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `cargo test` builds the examples next to the test binaries (`target/<profile>/examples`).
fn dir_hasher() -> Command {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let binary =
        profile_dir.join("examples").join(format!("dir_hasher{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: `cargo test` builds it, or `cargo build --example dir_hasher`",
        binary.display()
    );
    let mut command = Command::new(binary);
    command.env_remove("KLAW_LOG").env_remove("KLAW_WORKERS");
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_full_run_hashes_the_repository_and_reports() {
    let output = dir_hasher().output().unwrap();
    let report = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("result:      complete; tree digest "), "{report}");
    assert!(report.contains("cancelled:   0"), "{report}");
    // A complete run leaves no task for shutdown to wait out (the Ctrl-C listener once did,
    // which cost every run the whole grace period and printed this warning).
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(!errors.contains("grace period expired"), "{errors}");
    let found: u64 = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("files found: "))
        .and_then(|n| n.parse().ok())
        .expect("a file count");
    assert!(found > 50, "the repository has more files than {found}");
}

#[test]
fn a_deadline_ends_the_run_with_a_deadline_report() {
    let output = dir_hasher().args(["--timeout", "1ms"]).output().unwrap();
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(124), "{report}");
    assert!(report.contains("partial: the deadline of 1ms passed"), "{report}");
}

/// Whether process `pid` has `file` open (Linux: the links in `/proc/<pid>/fd`).
#[cfg(target_os = "linux")]
fn has_open(pid: u32, file: &std::path::Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == file))
}

/// Elsewhere there is no portable way to see a process's open files: half a second, which a
/// quiet machine's run takes to open the file.
#[cfg(not(target_os = "linux"))]
fn has_open(_pid: u32, _file: &std::path::Path) -> bool {
    std::thread::sleep(Duration::from_millis(500));
    true
}

#[test]
fn sigint_ends_the_run_promptly_with_a_partial_report() {
    // A 64 GiB sparse file takes no disk but long to hash: the run is surely mid-way. It is the
    // only file, so the report's count of cancelled files does not depend on the walk's order.
    let tree = std::env::temp_dir().join(format!("klaw-main-job-{}", std::process::id()));
    std::fs::create_dir_all(&tree).unwrap();
    let huge = tree.join("huge.bin");
    std::fs::File::create(&huge).unwrap().set_len(64 << 30).unwrap();
    let huge = std::fs::canonicalize(huge).unwrap();

    let mut child = dir_hasher()
        .arg(&tree)
        .args(["--workers", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The signal is sent once a hasher has the file open: mid-file, however slow the start
    // (it holds the file open until it is cancelled; the hash takes far longer than this wait).
    let hashing = common::wait_until(Duration::from_secs(60), || has_open(child.id(), &huge));
    if !hashing {
        let _ = child.kill();
    }
    assert!(hashing, "dir_hasher never opened {}", huge.display());
    let sent = Instant::now();
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    std::fs::remove_dir_all(&tree).unwrap();

    let report = stdout(&output);
    // Generous (no timing is asserted): it only catches a run that goes on hashing. The hashers
    // check for cancellation between chunks of 256 KiB.
    assert!(took < Duration::from_secs(10), "it took {took:?} to stop after SIGINT");
    assert_eq!(output.status.code(), Some(130), "{report}");
    assert!(report.contains("partial: interrupted (Ctrl-C)"), "{report}");
    assert!(report.contains("cancelled:   1"), "the huge file was cancelled mid-way: {report}");
    let _: PathBuf = tree;
}
