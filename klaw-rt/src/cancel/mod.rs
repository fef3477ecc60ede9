//! Cancel regions: `Region`, `move_on_after` / `fail_after` and their absolute forms,
//! `shield` for cleanup that must finish, and `checkpoint` for CPU-bound async code.
//!
//! Cancellation in Rust is dropping a future. A region decides *when* to drop what it runs (its
//! token, its deadline) and *what* it reports (a typed [`CancelReason`]); shields decide what
//! must not be dropped yet; [`is_cancelled`] lets code ask.
#![deny(unsafe_code)] // `parent_region.rs` allows it: a borrowed region kept for the length of a poll

pub(crate) mod frames;
#[cfg(all(test, klaw_loom))]
mod loom;
pub(crate) mod parent_region;
mod region;
mod shield;
mod state;
mod token;

pub use frames::is_cancelled;
pub use region::{Cancellable, Region};
pub use shield::{Shielded, shield};
pub(crate) use state::RegionState;
pub use token::{CancelOnDrop, Cancelled, CancelledOwned, Token};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::task::CancelReason;
use crate::time::Elapsed;

/// Runs `future` for at most `duration`; `None` if the deadline passed first (the future is
/// then dropped). Regions nest: the innermost deadline that passes wins.
///
/// ```
/// use std::time::Duration;
/// klaw::runtime::block_on(async {
///     let slow = klaw::cancel::move_on_after(Duration::from_millis(5), klaw::time::sleep(Duration::from_secs(60)));
///     assert_eq!(slow.await, None);
///     assert_eq!(klaw::cancel::move_on_after(Duration::from_secs(60), async { 1 }).await, Some(1));
/// });
/// ```
pub fn move_on_after<F: Future>(
    duration: Duration,
    future: F,
) -> impl Future<Output = Option<F::Output>> {
    // Not an `async fn`, which would hold `future` twice (its argument, then inside the run): a
    // large future would be twice as large, and copied twice as much by the code awaiting it.
    Bounded {
        run: Region::new().run_for(duration, future),
        after: After::Lasting(duration),
        finish: move_on,
    }
}

fn move_on<O>(outcome: Result<O, CancelReason>, _: Duration) -> Option<O> {
    outcome.ok()
}

/// Runs `future` until `deadline`; `None` if the deadline passed first.
///
/// ```
/// use std::time::{Duration, Instant};
/// klaw::runtime::block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     assert_eq!(klaw::cancel::move_on_at(deadline, std::future::pending::<()>()).await, None);
/// });
/// ```
pub fn move_on_at<F: Future>(
    deadline: Instant,
    future: F,
) -> impl Future<Output = Option<F::Output>> {
    // Not an `async fn`: see `move_on_after`.
    let run = Region::new().deadline(deadline).run(future);
    Bounded { run, after: After::Until(deadline), finish: move_on }
}

/// Runs `future` for at most `duration`, or fails with a typed [`Elapsed`] (which `?` turns into
/// [`klaw::Error`](crate::error::Error)).
///
/// ```
/// use std::time::Duration;
/// klaw::runtime::block_on(async {
///     let error = klaw::cancel::fail_after(Duration::from_millis(5), std::future::pending::<()>()).await;
///     assert_eq!(error.unwrap_err().after(), Duration::from_millis(5));
/// });
/// ```
pub fn fail_after<F: Future>(
    duration: Duration,
    future: F,
) -> impl Future<Output = Result<F::Output, Elapsed>> {
    // Not an `async fn`: see `move_on_after`.
    Bounded {
        run: Region::new().run_for(duration, future),
        after: After::Lasting(duration),
        finish: fail,
    }
}

fn fail<O>(outcome: Result<O, CancelReason>, after: Duration) -> Result<O, Elapsed> {
    outcome.map_err(|_: CancelReason| Elapsed::new(after))
}

pin_project! {
    /// What [`move_on_after`], [`fail_after`], [`move_on_at`] and [`fail_at`] return: a
    /// region's run, whose outcome `finish` turns into theirs. (Not `FutureExt::map`, which
    /// moves the whole finished run, a large future included, onto the stack to take its
    /// function out.)
    struct Bounded<F: Future, T> {
        #[pin]
        run: Cancellable<F>,
        after: After,
        finish: fn(Result<F::Output, CancelReason>, Duration) -> T,
    }
}

/// How long a bounded run may last, which an [`Elapsed`] reports.
#[derive(Clone, Copy)]
enum After {
    Lasting(Duration),
    /// Until a deadline: as long as is left of it at the first poll, when the run starts.
    Until(Instant),
}

impl<F: Future, T> Future for Bounded<F, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        let after = match *this.after {
            After::Lasting(after) => after,
            After::Until(deadline) => {
                let after = deadline.saturating_duration_since(crate::time::now());
                *this.after = After::Lasting(after);
                after
            }
        };
        this.run.poll(cx).map(|outcome| (this.finish)(outcome, after))
    }
}

/// Runs `future` until `deadline`, or fails with a typed [`Elapsed`].
///
/// ```
/// use std::time::{Duration, Instant};
/// klaw::runtime::block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     assert!(klaw::cancel::fail_at(deadline, std::future::pending::<()>()).await.is_err());
/// });
/// ```
pub fn fail_at<F: Future>(
    deadline: Instant,
    future: F,
) -> impl Future<Output = Result<F::Output, Elapsed>> {
    // Not an `async fn`: see `move_on_after`.
    let run = Region::new().deadline(deadline).run(future);
    Bounded { run, after: After::Until(deadline), finish: fail }
}

/// A cancellation point for CPU-bound async code: if the task or an enclosing region was
/// cancelled, it never returns (whatever cancelled it drops the future right after); otherwise
/// it lets other tasks and the region's deadline have their turn. In a klaw task it takes a
/// unit of the task's cooperative budget, and yields when the budget is spent (once every 128
/// checkpoints, if the code does nothing else); outside any klaw task, or under
/// `task::unconstrained`, where nothing is counted, it yields every time.
///
/// ```
/// use std::time::Duration;
/// klaw::runtime::block_on(async {
///     let busy = async {
///         let mut rounds = 0u64;
///         loop {
///             rounds += 1; // some CPU-bound step
///             klaw::cancel::checkpoint().await;
///         }
///         #[allow(unreachable_code)]
///         rounds
///     };
///     assert_eq!(klaw::cancel::move_on_after(Duration::from_millis(5), busy).await, None);
/// });
/// ```
pub async fn checkpoint() {
    if is_cancelled() {
        std::future::pending::<()>().await;
    }
    crate::coop::checkpoint().await;
}
