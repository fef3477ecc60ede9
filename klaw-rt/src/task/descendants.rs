//! What a frame must outlive: the descendants it started that have not ended yet.
//!
//! klaw cancels by dropping futures, and a drop cannot wait. So a scope or cancel region that is
//! dropped while its children still run hands them to the innermost enclosing *frame* (a task
//! runner, a cancel region, a scope), and that frame waits for them before it ends: a task
//! before it publishes its outcome, a region or scope before it returns. Ending is therefore
//! transitive, whichever way the cancellation came. With no frame on the thread (a scope future
//! dropped by a plain `block_on` or a foreign executor), the drop itself blocks until they have
//! ended, as `std::thread::scope` does.
//!
//! [`Descendants`] is the counter a frame waits on; [`current`](crate::task::current) keeps the
//! innermost frame of each thread so a dropped scope finds it.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::sync::{AtomicUsize, Mutex, MutexGuard, Ordering, WakerSlot};

/// What happens when the count reaches zero after the owner has gone.
enum Then {
    /// The owner was dropped: the frame it was handed to waits for one thing less.
    Parent(Arc<Descendants>),
    /// The owner finished and deferred its end (a task publishing its outcome) until now.
    Run(Box<dyn FnOnce() + Send>),
}

/// A count of things still running that an owner must outlive: a scope's children, plus the
/// descendants handed to it by things it dropped. The owner waits with [`poll_empty`]
/// (Self::poll_empty); once it has gone, [`then_parent`](Self::then_parent) or
/// [`then_run`](Self::then_run) say what happens at zero.
#[derive(Default)]
pub(crate) struct Descendants {
    /// How many have not ended, and [`WATCHED`] once the owner waits or has gone: only then
    /// does an end that reaches zero wake it or run what it left (children end about as fast as
    /// a busy scope spawns them, so the count reaches zero often while nobody watches it).
    count: AtomicUsize,
    /// The owner's waker while it polls.
    waker: WakerSlot,
    /// Set once, when the owner goes away with descendants still running.
    then: Mutex<Option<Then>>,
}

/// Set in `count` once the owner polls for zero or has gone away; never cleared.
const WATCHED: usize = 1 << (usize::BITS - 1);

impl Descendants {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Then>> {
        self.then.lock()
    }

    /// One more descendant to outlive. Counted before it can run, so its end never precedes it.
    pub(crate) fn add(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// One descendant ended. At zero: wake the owner, or do what it left to do; true then.
    pub(crate) fn ended(&self) -> bool {
        self.ended_then(|| {})
    }

    /// Like [`ended`](Self::ended); at zero, runs `at_zero` first, before the owner (or the
    /// frame it went to) can see that its descendants have ended.
    pub(crate) fn ended_then(&self, at_zero: impl FnOnce()) -> bool {
        // SeqCst (the same instruction as AcqRel on x86): a scope that was dropped pairs this
        // with its own flag, so the last child or the scope logs what failed.
        // Unwatched, the owner's next look sees zero itself: it sets `WATCHED` (SeqCst)
        // before it looks, and of that and this decrement, the later one sees the other.
        let previous = self.count.fetch_sub(1, Ordering::SeqCst);
        let last = previous & !WATCHED == 1;
        if last {
            at_zero();
        }
        if last && previous & WATCHED != 0 {
            self.waker.wake();
            self.run_then();
        }
        last
    }

    /// How many have not ended yet.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire) & !WATCHED
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Ordering::SeqCst) & !WATCHED == 0
    }

    /// From now on, the end that reaches zero wakes the owner and runs what it left.
    fn watch(&self) {
        self.count.fetch_or(WATCHED, Ordering::SeqCst);
    }

    /// For the owner while it polls: ready once every descendant has ended.
    pub(crate) fn poll_empty(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_empty() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        self.watch();
        if self.is_empty() { Poll::Ready(()) } else { Poll::Pending }
    }

    /// The owner is dropped with descendants still running: `parent` waits for them instead.
    pub(crate) fn then_parent(&self, parent: Arc<Descendants>) {
        parent.add();
        self.set_then(Then::Parent(parent));
    }

    /// The owner finished but must not end before its descendants: `end` runs once they have
    /// (at once, if they already have), on the thread that ends the last of them.
    pub(crate) fn then_run(&self, end: Box<dyn FnOnce() + Send>) {
        self.set_then(Then::Run(end));
    }

    fn set_then(&self, then: Then) {
        let previous = self.lock().replace(then);
        debug_assert!(previous.is_none(), "an owner goes away once");
        self.watch();
        // The last descendant may have ended before `then` was stored (or before `watch`), and
        // seen nothing to do. Whoever takes `then` out of the slot runs it, so it runs once.
        if self.is_empty() {
            self.run_then();
        }
    }

    fn run_then(&self) {
        let then = self.lock().take();
        match then {
            Some(Then::Parent(parent)) => {
                parent.ended();
            }
            Some(Then::Run(end)) => end(),
            None => {}
        }
    }

    /// Blocks this thread until every descendant has ended: for a drop with no frame to hand
    /// them to (outside any klaw task or region).
    pub(crate) fn wait_blocking(&self) {
        futures_lite::future::block_on(poll_fn(|cx| self.poll_empty(cx)));
    }
}

impl fmt::Debug for Descendants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Descendants").field("running", &self.count()).finish()
    }
}
