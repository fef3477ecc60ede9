//! Readiness: [`Scope::start`](crate::scope::Scope::start) spawns a child and returns once the
//! child says it is ready (trio's `nursery.start`), with the value it reported.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::channel::oneshot;
use crate::error::Error;
use crate::scope::ScopeHandle;
use crate::task::TaskInfo;
use crate::task::error::BoxError;

/// Waits for the child's `ready`, or for its end, and reports why it never became ready.
///
/// Both at once: a child may hand its `Ready` on (it is `Send + 'static`) and end, and whoever
/// holds it then may never use it nor drop it; the child's end is what says that `start` will
/// get no value (trio's "exited without calling started"). A `ready` the child called before
/// it ended wins, since the readiness is looked at first.
pub(crate) async fn wait_until_ready<'s, V, T, E>(
    mut readiness: oneshot::Receiver<V>,
    mut child: ScopeHandle<'s, T, E>,
) -> Result<(V, ScopeHandle<'s, T, E>), Error>
where
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    let task = TaskInfo::new(child.id(), child.name());
    let mut dropped = false;
    let value = std::future::poll_fn(|cx| {
        if !dropped {
            match Pin::new(&mut readiness).poll(cx) {
                Poll::Ready(Ok(value)) => return Poll::Ready(Some(value)),
                // Dropped unused: the child's end says why.
                Poll::Ready(Err(_)) => dropped = true,
                Poll::Pending => {}
            }
        }
        // Waits for the end without taking the output: a `ready` may still win, and the handle
        // returned with it gives the child's output when awaited.
        std::task::ready!(crate::coop::budgeted(cx, |cx| child.poll_finished(cx)));
        // The child may have called `ready` after the look above, and ended since: what it
        // reported before it ended wins.
        if !dropped {
            if let Ok(value) = readiness.try_recv() {
                return Poll::Ready(Some(value));
            }
        }
        Poll::Ready(None)
    })
    .await;
    match value {
        Some(value) => Ok((value, child)),
        None => match child.into_finished_output() {
            Ok(_) => Err(Error::Other(Box::new(NotReady::new(task)))),
            Err(error) => Err(error),
        },
    }
}

/// Given to a child started with [`Scope::start`](crate::scope::Scope::start): the child calls
/// [`ready`](Self::ready) once it can serve (a listener bound, a connection made), and `start`
/// returns with the value. Dropping it without calling `ready` is allowed: `start` then waits
/// for the child to end and reports that it never became ready ([`NotReady`]) or its failure.
///
/// ```
/// # #[klaw::main(workers = 2)]
/// # async fn main() -> Result<(), klaw::Error> {
/// klaw::scope!(|s| {
///     let (port, server) = s
///         .start(|ready: klaw::scope::Ready<u16>| async move {
///             ready.ready(8080); // bound: tell the body which port
///             std::future::pending::<()>().await; // serve
///         })
///         .await?;
///     assert_eq!(port, 8080);
///     server.cancel("done");
///     Ok(())
/// })?;
/// # Ok(())
/// # }
/// ```
#[must_use = "a started child must call `ready`, or `start` waits until it ends"]
pub struct Ready<V> {
    sender: oneshot::Sender<V>,
}

impl<V> Ready<V> {
    pub(crate) fn new(sender: oneshot::Sender<V>) -> Self {
        Ready { sender }
    }

    /// Reports that the child is ready, with `value` for the body that started it. If `start`
    /// was cancelled meanwhile (nobody waits any more), `value` is dropped.
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// let value = klaw::scope!(|s| {
    ///     let (value, _child) = s.start_local(|ready| async move { ready.ready("up") }).await?;
    ///     Ok(value)
    /// })
    /// .unwrap();
    /// assert_eq!(value, "up");
    /// # });
    /// ```
    pub fn ready(self, value: V) {
        // Refused only if `start` is gone; the value then has nobody to go to.
        let _ = self.sender.send(value);
    }
}

impl<V> fmt::Debug for Ready<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready").finish_non_exhaustive()
    }
}

/// A child started with [`Scope::start`](crate::scope::Scope::start) ended well without calling
/// [`Ready::ready`]: the body that waited for it cannot go on as planned.
///
/// ```
/// # klaw::runtime::block_on(async {
/// let result = klaw::scope!(|s| {
///     s.start_local(|_ready: klaw::scope::Ready<u16>| async {}).await?;
///     Ok(())
/// });
/// let error = result.unwrap_err(); // a `klaw::Error::Other`, whose source is the `NotReady`
/// let not_ready = std::error::Error::source(&error).unwrap();
/// assert!(not_ready.to_string().contains("ended without calling `ready`"), "{not_ready}");
/// # });
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the started child {task} ended without calling `ready`: call `ready.ready(value)` once it \
     can serve, or spawn it with `spawn` if nobody needs to wait for it"
)]
pub struct NotReady {
    task: TaskInfo,
}

impl NotReady {
    pub(crate) fn new(task: TaskInfo) -> Self {
        NotReady { task }
    }

    /// The child that never became ready.
    ///
    /// ```
    /// # klaw::runtime::block_on(async {
    /// let result = klaw::scope!(|s| {
    ///     s.start_local(|_ready: klaw::scope::Ready<()>| async {}).await?;
    ///     Ok(())
    /// });
    /// let klaw::Error::Other(error) = result.unwrap_err() else { panic!() };
    /// let not_ready = error.downcast_ref::<klaw::scope::NotReady>().unwrap();
    /// assert!(not_ready.task().name().is_none());
    /// # });
    /// ```
    pub fn task(&self) -> &TaskInfo {
        &self.task
    }
}
