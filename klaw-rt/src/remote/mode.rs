//! How a task's failure travels: a fallible task's error is encoded as itself; a plain task
//! cannot fail, so its error slot travels as `()` and never carries a value.

use std::convert::Infallible;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::task::{Fallible, Outcome, Plain};

/// A task mode whose failures can travel between processes.
#[doc(hidden)]
pub trait RemoteMode<O>: Outcome<O> {
    /// The error as it travels.
    type WireErr: Serialize + DeserializeOwned + Send + 'static;
    /// Before sending.
    fn to_wire(error: Self::Err) -> Self::WireErr;
    /// After receiving; `None` if this mode has no such error (the reply is malformed).
    fn from_wire(error: Self::WireErr) -> Option<Self::Err>;
}

impl<O: Send + 'static> RemoteMode<O> for Plain {
    type WireErr = ();
    fn to_wire(error: Infallible) {
        match error {}
    }
    fn from_wire((): ()) -> Option<Infallible> {
        None
    }
}

impl<T, E> RemoteMode<Result<T, E>> for Fallible
where
    T: Send + 'static,
    E: Serialize + DeserializeOwned + Send + 'static,
{
    type WireErr = E;
    fn to_wire(error: E) -> E {
        error
    }
    fn from_wire(error: E) -> Option<E> {
        Some(error)
    }
}
