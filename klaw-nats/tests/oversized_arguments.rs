//! A remote call whose arguments make its job larger than the server's `max_payload` can never
//! be sent: it ends with a typed refusal (`RemoteError::Arguments`, action "sent") that names the
//! server's limit and what to do, as an outcome too large ends with `OutcomeTooLarge`. What would
//! break it: the client's refusal folded into `RemoteError::Transport` ("could not publish the
//! job"), the error a caller retries on for ever.

mod common;

use std::time::Duration;

use common::{NatsServer, submitter_runtime, watchdog};
use klaw::TaskError;
use klaw::remote::RemoteError;

#[klaw::task(remote)]
async fn checksum(data: Vec<u8>) -> u64 {
    data.iter().map(|&b| u64::from(b)).sum()
}

/// 2 MiB of arguments against the default 1 MiB `max_payload`. Checks: not `Transport`, and the
/// error names 1048576 and `max_payload`.
#[test]
fn a_call_whose_arguments_exceed_max_payload_ends_with_a_typed_refusal_not_transport() {
    watchdog(Duration::from_secs(60), || {
        let server = NatsServer::start();
        let submitter = submitter_runtime(server.config().namespace("big-args"));
        // The server's default max_payload is 1 MiB.
        let data = vec![1_u8; 2 << 20];
        let result = submitter.block_on(klaw::cancel::fail_after(
            Duration::from_secs(30),
            submitter.spawn(checksum(data)),
        ));
        let result = result.expect("the call ended within the bound");
        let error = match result {
            Err(TaskError::Remote(error)) => error,
            other => panic!("expected a remote refusal, got {other:?}"),
        };
        let shown = error.to_string();
        assert!(
            !matches!(*error, RemoteError::Transport(_)),
            "arguments larger than max_payload can never be sent, yet the call ends with \
             `Transport` (the error a caller retries on): {shown}"
        );
        assert!(
            shown.contains("1048576") && shown.contains("max_payload"),
            "the error should name the server's limit and the setting to change: {shown}"
        );
    });
}
