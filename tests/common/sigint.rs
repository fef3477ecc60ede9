//! Sends `SIGINT` to the test's own process, as a Ctrl-C would: for the tests of
//! `klaw::signal`, each a binary of its own (`#[path]`), so the signal reaches no other test.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub fn interrupt_this_process() {
    let status = std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success());
}
