//! `#[klaw::main(cancel_on_ctrl_c)]`, driven as a user would: `examples/cancel_on_ctrl_c` is
//! started, sent SIGINT once it is ready, and must end at once with exit code 130 and the reason.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_cancels_main_with_a_typed_reason_and_exit_code_130() {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join("cancel_on_ctrl_c");
    assert!(binary.exists(), "{} is missing: `cargo test` builds it", binary.display());
    let mut child = Command::new(binary)
        .env_remove("KLAW_WORKERS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("ready"), "{ready:?}");

    let sent = Instant::now();
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted (Ctrl-C)"), "{stderr}");
    // Generous: it ends at the next `.await` of each task, not after the hour-long sleep.
    assert!(sent.elapsed() < Duration::from_secs(30));
}
