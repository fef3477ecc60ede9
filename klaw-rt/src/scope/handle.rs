//! `ScopeHandle`: a child's handle, branded with its scope so it cannot leave it.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::error::Error;
use crate::scope::registry::ScopeShared;
use crate::task::TaskHandle;
use crate::task::error::{BoxError, TaskError, TaskInfo};
use crate::task::spec::is_large;

/// The handle of a scope's child: everything a [`TaskHandle`] does (await the result, `cancel`,
/// `id`, `exit_reason`...), tied to the scope's lifetime so it cannot outlive the scope.
///
/// Dropping it does not stop the child: the scope still waits for it, and still reports its
/// failure. Awaiting it gives the child's value, or a [`klaw::Error`](crate::error::Error) that
/// names the child (`Error::Task { task: Some(..), .. }`) if it was cancelled. A child that
/// *fails* (an `Err` of a fallible task, a panic, its own timeout) fails the whole scope: the
/// body is cancelled and the scope returns the failure, whether or not the body was awaiting
/// that child (the rule of trio and Kotlin). Awaiting a handle is a cancellation point: in a
/// cancelled scope it never completes, outside a [`shield`](crate::cancel::shield). To handle a
/// child's error yourself, make it a value: spawn `Task::new(async move { task.await })`, whose
/// output is the whole `Result`, or use supervisor mode, where nothing is cancelled and an
/// awaited failure is the body's (as a `klaw::Error`, whatever the child's own error type, so
/// `?` takes it).
///
/// ```
/// # klaw::runtime::block_on(async {
/// let value = klaw::scope!(|s| {
///     let child = s.spawn_local(async { 20 });
///     assert!(child.name().is_none());
///     Ok(child.await? + 1)
/// });
/// assert_eq!(value.unwrap(), 21);
/// # });
/// ```
pub struct ScopeHandle<'scope, T, E = Infallible> {
    handle: TaskHandle<T, E>,
    scope: &'scope ScopeShared,
    /// While the child waits for a slot of the scope's limit and this handle is awaited: the
    /// key of the cancel hook that wakes the awaiter, and the waker it wakes. A waiting child
    /// has no runner for a cancel to wake, and its end (unstarted) is up to whoever polls this
    /// handle, so a cancel from elsewhere must wake the poller.
    cancel_wake: Option<(usize, Waker)>,
}

impl<'scope, T, E> ScopeHandle<'scope, T, E> {
    pub(crate) fn new(handle: TaskHandle<T, E>, scope: &'scope ScopeShared) -> Self {
        Self { handle, scope, cancel_wake: None }
    }

    /// Makes sure a cancel of the still waiting child wakes `waker`.
    fn wake_on_cancel(&mut self, waker: &Waker) {
        if self.cancel_wake.as_ref().is_some_and(|(_, known)| known.will_wake(waker)) {
            return;
        }
        self.forget_cancel_wake();
        // A cancel that came meanwhile runs the hook at once: the waker is woken, and the next
        // poll ends the child.
        if let Some(key) = self.handle.wake_on_cancel(waker.clone()) {
            self.cancel_wake = Some((key, waker.clone()));
        }
    }

    fn forget_cancel_wake(&mut self) {
        if let Some((key, waker)) = self.cancel_wake.take() {
            self.handle.forget_cancel_wake(key);
            drop(waker);
        }
    }
}

impl<T, E> Drop for ScopeHandle<'_, T, E> {
    fn drop(&mut self) {
        self.forget_cancel_wake();
    }
}

impl<T, E> Deref for ScopeHandle<'_, T, E> {
    type Target = TaskHandle<T, E>;

    fn deref(&self) -> &TaskHandle<T, E> {
        &self.handle
    }
}

impl<T, E> Future for ScopeHandle<'_, T, E>
where
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    type Output = Result<T, Error>;

    /// Budgeted as a [`TaskHandle`]'s poll is, so a child set drained of finished children
    /// yields too.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A large output comes up boxed and leaves its box only here, in the awaiting code's
        // last frame (see `is_large`). Decided at compile time: a small one takes its old path.
        if const { is_large::<Self::Output>() } {
            match crate::coop::budgeted(cx, |cx| self.poll_finished(cx)) {
                Poll::Ready(()) => Poll::Ready(self.take_boxed_output()),
                Poll::Pending => Poll::Pending,
            }
        } else {
            crate::coop::budgeted(cx, |cx| self.poll_child(cx))
        }
    }
}

impl<T, E> ScopeHandle<'_, T, E>
where
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    fn poll_child(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        if self.poll_finished(cx).is_pending() {
            return Poll::Pending;
        }
        let output = self.handle.take_output();
        Poll::Ready(output.map_err(|error| self.taken(error)))
    }

    /// The output, once [`poll_finished`](Self::poll_finished) was ready (the one a poll of the
    /// handle would give).
    pub(crate) fn into_finished_output(mut self) -> Result<T, Error> {
        // Decided at compile time, as in `poll`.
        if const { is_large::<Result<T, Error>>() } {
            self.take_boxed_output()
        } else {
            let output = self.handle.take_output();
            output.map_err(|error| self.taken(error))
        }
    }

    /// The output, once [`poll_finished`](Self::poll_finished) was ready: a large one, which
    /// comes up to here boxed (see `is_large`), moves out of its box only into the returned
    /// value.
    fn take_boxed_output(&mut self) -> Result<T, Error> {
        match *self.handle.take_output_boxed() {
            Ok(value) => Ok(value),
            Err(error) => Err(self.taken(error)),
        }
    }

    /// A child's failure, as the scope's body sees it: named. The scope keeps what it reports
    /// if the body does not pass the failure on ([`ScopeShared::took`]).
    fn taken(&self, error: TaskError<E>) -> Error {
        let task = TaskInfo::new(self.handle.id(), self.handle.name());
        let error = Error::of_task(Some(task), error);
        self.scope.took(self.handle.id(), &error);
        error
    }

    /// Ready once the child's output may be taken (with `take_boxed_output`, or as `poll_child`
    /// does): the child has ended, and the scope does not stop the awaiting code here.
    pub(crate) fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.handle.poll_done(cx).is_pending() {
            let Some(limit) = self.scope.limit.as_ref() else { return Poll::Pending };
            if !self.handle.is_cancelled_unstarted() {
                if self.handle.is_unstarted() {
                    self.wake_on_cancel(cx.waker());
                }
                return Poll::Pending;
            }
            // A child cancelled while it waits for a slot of the scope's limit ends here,
            // unstarted, rather than when its turn would have come.
            limit.end_cancelled();
            if self.handle.poll_done(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.forget_cancel_wake();
        // A cancellation point, checked after the child's end was seen: a failing child cancels
        // its scope before it publishes, so a body never sees (and handles) a failure that
        // fails its scope. The scope's driver drops the body right after this poll, unless a
        // shield the body enters later in this poll holds it open: woken, so that whoever keeps
        // this child (a `ChildSet`'s queue, which drops a child from it that returns `Pending`
        // unwoken) polls it again there, where it is handed over. Not while a `ChildSet` only
        // sets finished children aside, in order: nothing is handed over there.
        if self.scope.region.must_stop() && !super::set::setting_aside(self.scope) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}

impl<T, E> fmt::Debug for ScopeHandle<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}
