//! Signals as futures: [`ctrl_c`] completes when the process receives Ctrl-C (`SIGINT` on Unix,
//! the console's Ctrl-C event on Windows). Built on smol-rs's `async-signal`, so it works under
//! any executor.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_signal::{Signal, Signals};
use futures_core::Stream;

/// Completes when the process next receives Ctrl-C. The handler is installed when the future is
/// first polled; to install it at once (so that a Ctrl-C that comes before the future is polled
/// is not lost to the default action, which ends the process), use [`CtrlC::install`].
///
/// While a listener exists, Ctrl-C no longer ends the process by itself: the program decides
/// what to do, typically cancel its work (with
/// [`CancelReason::Interrupted`](crate::task::CancelReason::Interrupted)) and return.
///
/// # Cancel safety
/// Cancel safe: dropping the future stops listening.
///
/// ```no_run
/// # #[klaw::main]
/// # async fn main() -> Result<(), klaw::Error> {
/// klaw::select! {
///     klaw::signal::ctrl_c() -> _ => println!("interrupted: cleaning up"),
///     after(std::time::Duration::from_secs(3600)) => println!("done"),
/// }
/// # Ok(())
/// # }
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    CtrlC::install()?.await
}

/// A Ctrl-C listener, installed when it is made: a future that completes at the next Ctrl-C.
///
/// ```
/// # #[klaw::main(workers = 1)]
/// # async fn main() -> Result<(), klaw::Error> {
/// let region = klaw::cancel::Region::new();
/// let stop = region.token();
/// let ctrl_c = klaw::signal::CtrlC::install().map_err(klaw::Error::other)?; // listening from here
/// klaw::Handle::current()?.spawn(async move {
///     if ctrl_c.await.is_ok() {
///         stop.cancel(klaw::CancelReason::Interrupted);
///     }
/// });
/// let outcome = region.run(async { "the work" }).await;
/// assert_eq!(outcome, Ok("the work"));
/// # Ok(())
/// # }
/// ```
#[must_use = "a listener does nothing unless awaited"]
pub struct CtrlC {
    signals: Signals,
}

impl CtrlC {
    /// Installs the handler now. Fails only if the platform refuses it.
    ///
    /// ```
    /// let listener = klaw::signal::CtrlC::install();
    /// assert!(listener.is_ok());
    /// ```
    pub fn install() -> io::Result<Self> {
        Ok(CtrlC { signals: Signals::new([Signal::Int])? })
    }
}

impl Future for CtrlC {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.signals).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(received)) => Poll::Ready(received.map(drop)),
            Poll::Ready(None) => {
                Poll::Ready(Err(io::Error::other("the Ctrl-C listener ended without a signal")))
            }
        }
    }
}

impl fmt::Debug for CtrlC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtrlC").finish_non_exhaustive()
    }
}
