//! `shield`: cleanup that must finish even when the code around it is cancelled.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::cancel::RegionState;
use crate::cancel::frames::{self, FrameKind, shield_targets};
use crate::task::core::HeaderRef;

/// Runs `future` to completion even if the task or the cancel regions around it are cancelled
/// meanwhile: they wait for it before dropping what they contain, and inside it
/// [`is_cancelled`](crate::cancel::is_cancelled) is `false` (unless a region *inside* the shield is
/// cancelled). Use it for cleanup that must finish; bound it with
/// [`move_on_after`](crate::cancel::move_on_after) so it cannot hold a cancellation forever.
///
/// A shield holds up klaw's cancellations of its own task: the task's handle, a cancel region,
/// a scope cancelling its body. In a scope's local child it also holds what encloses the scope
/// in the task that polls the child (that task's regions and handle), since they would drop the
/// child with the scope; not the scope's own cancellation, which waits for its children anyway.
/// It cannot stop code that drops the future outright (a foreign `select!` dropping a losing
/// branch). A runtime's shutdown leaves what is under the shield to it, so the shield holds the
/// shutdown too, the children of a scope opened in it included, for as long as the shutdown's
/// cancel grace (a second) lasts; then the shutdown cancels every task left, each one directly,
/// and drops them.
///
/// ```
/// use klaw::{cancel::{Region, shield}};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
///
/// let flushed = AtomicBool::new(false);
/// klaw::runtime::block_on(async {
///     let region = Region::new();
///     let token = region.token();
///     let result = region
///         .run(async {
///             token.cancel("stop"); // cancelled while the cleanup runs
///             shield(async {
///                 assert!(!klaw::cancel::is_cancelled());
///                 klaw::time::sleep(Duration::from_millis(5)).await;
///                 flushed.store(true, Ordering::SeqCst);
///             })
///             .await;
///             klaw::time::sleep(Duration::from_secs(60)).await; // never completes: cancelled
///         })
///         .await;
///     assert!(result.is_err());
/// });
/// assert!(flushed.load(Ordering::SeqCst));
/// ```
pub fn shield<F: Future>(future: F) -> Shielded<F> {
    Shielded { future, hold: None }
}

/// What a running shield holds open; released when the shield finishes or is dropped.
struct Hold {
    regions: Vec<Arc<RegionState>>,
    /// Its task, and in a scope's local child the tasks that poll it (see `shield_targets`).
    tasks: Vec<HeaderRef>,
}

impl Hold {
    fn enter() -> Self {
        // What a cancellation held open by this shield asks of the code beside it.
        crate::coop::set_cancelled_here(frames::enclosing_stopping);
        let (regions, tasks) = shield_targets();
        for region in &regions {
            region.shield_enter();
        }
        for task in &tasks {
            task.header().shield_enter();
        }
        Hold { regions, tasks }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        for region in &self.regions {
            region.shield_exit();
        }
        for task in &self.tasks {
            task.shield_exit();
        }
    }
}

pin_project! {
    /// The future of [`shield`].
    ///
    /// ```
    /// let shielded: klaw::cancel::Shielded<_> = klaw::cancel::shield(async { "cleaned up" });
    /// assert_eq!(klaw::runtime::block_on(shielded), "cleaned up");
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct Shielded<F> {
        #[pin]
        future: F,
        hold: Option<Hold>,
    }
}

impl<F: Future> Future for Shielded<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.hold.is_none() {
            *this.hold = Some(Hold::enter());
        }
        let future = this.future;
        let polled = frames::within(FrameKind::Shield, || future.poll(cx));
        if polled.is_ready() {
            *this.hold = None;
        }
        polled
    }
}

impl<F> fmt::Debug for Shielded<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shielded").field("active", &self.hold.is_some()).finish_non_exhaustive()
    }
}
