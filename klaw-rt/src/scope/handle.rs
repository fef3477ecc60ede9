//! `ScopeHandle`: a child's handle, branded with its scope so it cannot leave it.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::TaskError;
use crate::task::TaskHandle;

/// The handle of a scope's child: everything a [`TaskHandle`] does (await the result, `cancel`,
/// `id`, `exit_reason`...), tied to the scope's lifetime so it cannot outlive the scope.
///
/// Dropping it does not stop the child: the scope still waits for it, and still reports its
/// failure. Awaiting it takes the child's result, failure included: a failure you awaited is
/// yours to handle and the scope does not report it a second time.
///
/// ```
/// # klaw::block_on(async {
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
    scope: PhantomData<&'scope ()>,
}

impl<T, E> ScopeHandle<'_, T, E> {
    pub(crate) fn new(handle: TaskHandle<T, E>) -> Self {
        Self { handle, scope: PhantomData }
    }
}

impl<T, E> Deref for ScopeHandle<'_, T, E> {
    type Target = TaskHandle<T, E>;

    fn deref(&self) -> &TaskHandle<T, E> {
        &self.handle
    }
}

impl<T: Send + 'static, E: Send + 'static> Future for ScopeHandle<'_, T, E> {
    type Output = Result<T, TaskError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.handle).poll(cx)
    }
}

impl<T, E> fmt::Debug for ScopeHandle<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}
