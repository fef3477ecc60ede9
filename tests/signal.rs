//! `klaw::signal`: Ctrl-C as a future. The test sends `SIGINT` to its own process, so it lives in
//! its own binary, and runs its cases one after the other.
#![cfg(unix)]

#[path = "common/sigint.rs"]
mod sigint;

use std::time::Duration;

use klaw::CancelReason;
use sigint::interrupt_this_process;

#[klaw::test(workers = 2, timeout = "10s")]
async fn ctrl_c_completes_on_sigint_and_can_cancel_the_work_with_a_typed_reason() {
    // Installed before the signal is sent: the default action (ending the process) never runs.
    let ctrl_c = klaw::signal::CtrlC::install().unwrap();
    let region = klaw::cancel::Region::new();
    let stop = region.token();
    let listener = klaw::Handle::current().unwrap().spawn(async move {
        ctrl_c.await.unwrap();
        stop.cancel(CancelReason::Interrupted);
    });
    let work = region.run(async {
        interrupt_this_process();
        klaw::time::sleep(Duration::from_secs(60)).await;
        "finished"
    });
    assert_eq!(work.await, Err(CancelReason::Interrupted));
    listener.await.unwrap();

    // A new listener hears the next one; the first, gone, does not keep it.
    let second = klaw::signal::CtrlC::install().unwrap();
    interrupt_this_process();
    assert!(second.await.is_ok());
}
