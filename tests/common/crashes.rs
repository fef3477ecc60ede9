//! The errors trio's and Kotlin's tests raise, as klaw failures: [`Crash`], a child that fails
//! with one, and the crashes an error lists. For the ports of trio's and kotlinx.coroutines'
//! tests. Included with `#[path = "common/crashes.rs"] mod crashes;`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;

use klaw::task::Fallible;
use klaw::{Error, Task, TaskError};

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
