//! book/src/runtime.md, "Ctrl-C": "`klaw::signal::ctrl_c()` is a future that completes at the
//! next Ctrl-C (usable in a `select!`)". `tests/signal.rs` checks `CtrlC::install()`; this checks
//! the free function. The test sends `SIGINT` to its own process, so it lives in its own binary,
//! with its cases in one test, one after the other (as `tests/signal.rs` does).
#![cfg(unix)]

#[path = "common/sigint.rs"]
mod sigint;

use sigint::interrupt_this_process;
use std::future::pending;
use std::time::Duration;

/// runtime.md: "`klaw::signal::ctrl_c()` is a future that completes at the next Ctrl-C (usable
/// in a `select!`)". A `biased` `select!` polls its `ctrl_c()` arm first (which installs the
/// handler), then an arm that sends `SIGINT` to this process and waits for ever, beside an
/// `after` arm that only bounds the wait. Twice: each call hears the next Ctrl-C. Checks: the
/// `ctrl_c()` arm wins, with `Ok(())`.
///
/// A listener made with `CtrlC::install()` is held for the whole test: while one exists, Ctrl-C
/// does not end the process, so if `ctrl_c()` had not installed its handler by the time the
/// signal came, the test fails at its `after` arm instead of taking the process down.
///
/// What would break it: `ctrl_c()` not completing at the signal (listening to another signal,
/// or its future never woken by the signal's arrival), or completing with an error.
#[klaw::test(workers = 2, timeout = "20s")]
async fn the_ctrl_c_function_completes_at_the_next_ctrl_c_as_a_select_arm() {
    let _safety_net = klaw::signal::CtrlC::install().unwrap();
    for round in ["first", "second"] {
        let heard = klaw::select! {
            biased;
            klaw::signal::ctrl_c() -> heard => heard.map(|()| round),
            async {
                interrupt_this_process();
                pending::<()>().await
            } -> _ => unreachable!("a pending future completed"),
            after(Duration::from_secs(5)) => {
                panic!("klaw::signal::ctrl_c() did not complete at the {round} Ctrl-C")
            }
        };
        assert_eq!(heard.unwrap(), round);
    }
}
