//! The errors trio's and Kotlin's tests raise, as klaw failures: [`Crash`], a child that fails
//! with one, and the crashes an error lists. For the ports of trio's and kotlinx.coroutines'
//! tests. Included with `#[path = "common/crashes.rs"] mod crashes;`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::sync::{Arc, Mutex};

use klaw::cancel::{Region, shield};
use klaw::scope::Ready;
use klaw::task::Fallible;
use klaw::{CancelReason, Error, Task, TaskError};

use crate::common::Flag;

/// What trio's tests raise (`KeyboardInterrupt`, `ValueError`) and Kotlin's throw
/// (`TestException1`): an error that names who raised it.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0} crashed")]
pub struct Crash(pub &'static str);

/// A fallible child that fails at once (trio's `async def crasher(): raise ...`, Kotlin's
/// `async { throw TestException1() }`).
pub fn crash(who: &'static str) -> Task<impl Future<Output = Result<(), Crash>>, Fallible> {
    Task::fallible(async move { Err(Crash(who)) })
}

/// Every `Crash` in an error, groups flattened, in the order the error lists them; an
/// `Elapsed` is listed as "Elapsed". Anything else (a cancellation, say) is a test failure.
pub fn crashes(error: &Error) -> Vec<&'static str> {
    match error {
        Error::Scope(group) => group.errors().iter().flat_map(crashes).collect(),
        Error::Task { error: TaskError::Failed(failure), .. } => {
            vec![failure.downcast_ref::<Crash>().unwrap_or_else(|| panic!("{error:?}")).0]
        }
        Error::Body(body) => {
            vec![body.downcast_ref::<Crash>().unwrap_or_else(|| panic!("{error:?}")).0]
        }
        Error::Elapsed(_) => vec!["Elapsed"],
        other => panic!("not a crash: {other:?}"),
    }
}

/// A destructor that writes `what` into a shared record (trio's `except Cancelled:` cleanup,
/// Kotlin's `finally { expect(n) }`).
pub struct Record(pub Arc<Mutex<Vec<&'static str>>>, pub &'static str);

impl Drop for Record {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(self.1);
    }
}

/// Where a child writes the reason it was cancelled with.
pub type Seen = Arc<Mutex<Option<CancelReason>>>;

/// trio's `except Cancelled as e: record(e); raise X`, Kotlin's `try { delay(MAX) } finally {
/// throw E }`: a child that, once running (it sets `running`, and calls `ready` if it was
/// started), waits for its own cancellation, writes the reason into `seen`, and fails with
/// `Crash(tag)`. The wait is shielded, so the child finishes it; it hears its cancellation
/// through a region token, which hears the task it runs in.
pub fn converts_cancel(
    tag: &'static str,
    running: Flag,
    seen: Seen,
    ready: Option<Ready<()>>,
) -> Task<impl Future<Output = Result<(), Crash>>, Fallible> {
    Task::fallible(async move {
        let region = Region::new();
        let token = region.token();
        let outcome = region
            .run(shield(async move {
                running.set();
                if let Some(ready) = ready {
                    ready.ready(());
                }
                let reason = token.cancelled().await;
                *seen.lock().unwrap() = Some(reason);
                Err::<(), _>(Crash(tag))
            }))
            .await;
        match outcome {
            Ok(result) => result,
            Err(reason) => panic!("the child's own region caught {reason:?}"),
        }
    })
}
