//! Running user code so that its panics stay inside the task: the one place a body's panic is
//! caught (for a spawned task and for one awaited inline alike, and a scope's body, whose panic
//! goes on once the scope's children have ended), and the one place a value of user code is
//! dropped without letting its destructor's panic out.
#![forbid(unsafe_code)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Poll;

use crate::task::handle::TaskOutput;
use crate::task::state::Kind;
use crate::task::{Outcome, TaskError};

/// Runs one step of a task's body (a poll, or a whole blocking closure): what it gave, split by
/// the task's mode, or `Panicked` with the panic's message.
#[inline(always)]
pub(crate) fn guarded<M: Outcome<O>, O>(
    step: impl FnOnce() -> Poll<O>,
) -> Poll<TaskOutput<M::Ok, M::Err>> {
    match catch_unwind(AssertUnwindSafe(step)) {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(output)) => Poll::Ready(M::split(output)),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            drop_contained(payload);
            Poll::Ready(Err(TaskError::Panicked(message)))
        }
    }
}

/// [`guarded`] for a whole blocking closure whose output is large: the output is boxed inside the
/// call that caught the panic, so no frame below it holds it by value.
pub(crate) fn guarded_boxed<M: Outcome<O>, O>(
    body: impl FnOnce() -> O,
) -> Box<TaskOutput<M::Ok, M::Err>> {
    match catch_unwind(AssertUnwindSafe(|| Box::new(M::split(body())))) {
        Ok(output) => output,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            drop_contained(payload);
            Box::new(Err(TaskError::Panicked(message)))
        }
    }
}

/// [`guarded`] for one poll of a body whose output is large: the output is boxed inside the call
/// that caught the panic, so no frame below it holds it by value.
pub(crate) fn guarded_poll_boxed<M: Outcome<O>, O>(
    step: impl FnOnce() -> Poll<O>,
) -> Poll<Box<TaskOutput<M::Ok, M::Err>>> {
    let boxed = || match step() {
        Poll::Ready(output) => Poll::Ready(Box::new(M::split(output))),
        Poll::Pending => Poll::Pending,
    };
    match catch_unwind(AssertUnwindSafe(boxed)) {
        Ok(polled) => polled,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            drop_contained(payload);
            Poll::Ready(Box::new(Err(TaskError::Panicked(message))))
        }
    }
}

/// Runs one poll of a scope's body: its panic is caught and kept, to go on (`resume_unwind`)
/// once the scope's children have ended, as an exception out of a trio nursery's body does.
pub(crate) fn caught<R>(step: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(step))
}

/// The terminal state an output stands for.
pub(crate) fn kind_of<T, E>(output: &TaskOutput<T, E>) -> Kind {
    match output {
        Ok(_) => Kind::Success,
        Err(TaskError::Panicked(_)) => Kind::Panicked,
        Err(TaskError::TimedOut(_)) => Kind::TimedOut,
        Err(TaskError::Cancelled(_)) => Kind::Cancelled,
        Err(_) => Kind::Error,
    }
}

/// The message of a caught panic, as `std` would print it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// Drops a value of user code so that a panic in its destructor cannot unwind into the runtime.
pub(crate) fn drop_contained<T>(value: T) {
    contained(move || drop(value));
}

/// Runs `drop` (which drops user code: a scope's body, a region's future), then `then` even if a
/// destructor in `drop` panicked, then goes on with that panic. `then` is what makes the drop
/// an end (handing what still runs to the enclosing frame, or waiting for it): a panic that
/// skipped it would leave children running past the end of the scope that started them.
pub(crate) fn drop_then(drop: impl FnOnce(), then: impl FnOnce()) {
    let dropped = catch_unwind(AssertUnwindSafe(drop));
    then();
    if let Err(payload) = dropped {
        std::panic::resume_unwind(payload);
    }
}

/// Runs `f`, which drops values of user code, so that a panic in it cannot unwind into the
/// runtime.
pub(crate) fn contained(f: impl FnOnce()) {
    if let Some(message) = panic_of(f) {
        tracing::warn!(panic = %message, "a destructor panicked; the task's end is unaffected");
    }
}

/// Runs `f`, which drops values of user code; the message of a panic in it, caught. (For a
/// body's own destructors, whose panic is a failure of the task to report.)
pub(crate) fn panic_of(f: impl FnOnce()) -> Option<String> {
    let payload = catch_unwind(AssertUnwindSafe(f)).err()?;
    let message = panic_message(payload.as_ref());
    drop_payload(payload);
    Some(message)
}

/// Drops a caught panic's payload, whose own destructor is user code and may panic too: that
/// second panic is caught, and its payload forgotten (dropping it could panic again, without
/// end). Only such a payload leaks; every other is freed.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
    }
}
