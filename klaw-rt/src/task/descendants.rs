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
//!
//! What failed goes the same way. A dropped scope has no result to return its failures in, so it
//! hands them ([`AdoptedFailure`]) to the frame that adopts its children: a scope takes them
//! into its own result, a task reports them to its scope when it ends, and a region passes them
//! on to the frame around it when it returns or is dropped. Each arrives before the end of the
//! child that failed is counted, so it is there before the frame can see its descendants gone.
#![forbid(unsafe_code)]

use std::any::Any;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use crate::sync::{AtomicUsize, Mutex, MutexGuard, Ordering, WakerSlot};

/// A failure that a scope dropped before it returned can no longer report itself (the `scope`
/// module makes them; this module only carries them): the frame that adopted the scope's
/// children reports it with its own outcome, or logs it if nothing above takes it.
pub(crate) trait AdoptedFailure: Send + 'static {
    /// Nothing above takes it: it is logged. Called once the child that failed has ended.
    fn log(self: Box<Self>);
    /// Back to the type that made it.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// An owner that takes the failures its descendants hand it as they come (a scope: into its
/// list of failures, cancelling the rest as any failure does).
pub(crate) trait TakesFailures: Send + Sync {
    fn take_failure(&self, failure: Box<dyn AdoptedFailure>);
}

/// Failures adopted and not yet reported.
pub(crate) type Failures = Vec<Box<dyn AdoptedFailure>>;

/// What happens when the count reaches zero after the owner has gone.
enum Then {
    /// The owner was dropped: the frame it was handed to waits for one thing less.
    Parent(Arc<Descendants>),
    /// The owner finished and deferred its end (a task publishing its outcome) until now; it
    /// gets the failures adopted meanwhile.
    Run(Box<dyn FnOnce(Failures) + Send>),
}

/// What the owner left to do, and the failures kept for it.
#[derive(Default)]
struct Left {
    then: Option<Then>,
    failures: Failures,
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
    /// `then` is set once, when the owner goes away with descendants still running.
    left: Mutex<Left>,
    /// An owner that takes failures as they come; without one they are kept for the owner.
    owner: Option<Weak<dyn TakesFailures>>,
}

/// Set in `count` once the owner polls for zero or has gone away; never cleared.
const WATCHED: usize = 1 << (usize::BITS - 1);

impl Descendants {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Descendants whose failures go to `owner` as they come (a scope's children).
    pub(crate) fn owned_by(owner: Weak<dyn TakesFailures>) -> Arc<Self> {
        Arc::new(Descendants { owner: Some(owner), ..Descendants::default() })
    }

    fn lock(&self) -> MutexGuard<'_, Left> {
        self.left.lock()
    }

    /// A failure among these descendants that a scope dropped before it returned could not
    /// report: to the frame the owner went to, if it went away; else to the owner if it takes
    /// failures as they come; else kept for the owner ([`take_failures`](Self::take_failures)).
    pub(crate) fn adopt_failure(&self, failure: Box<dyn AdoptedFailure>) {
        let mut left = self.lock();
        if let Some(Then::Parent(parent)) = &left.then {
            let parent = parent.clone();
            drop(left);
            parent.adopt_failure(failure);
            return;
        }
        let owner = self.owner.as_ref().and_then(Weak::upgrade);
        match owner {
            Some(owner) => {
                drop(left);
                // Outside the lock: taking a failure cancels the owner's children.
                owner.take_failure(failure);
            }
            None => left.failures.push(failure),
        }
    }

    /// The failures kept for the owner so far.
    pub(crate) fn take_failures(&self) -> Failures {
        std::mem::take(&mut self.lock().failures)
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

    /// The owner is dropped with descendants still running: `parent` waits for them instead,
    /// and takes the failures kept for the owner, and those that come later.
    pub(crate) fn then_parent(&self, parent: Arc<Descendants>) {
        parent.add();
        // The failures go first, outside the lock (the parent may cancel its owner's children);
        // any that come meanwhile are kept, and go in the next round, until none is left when
        // `then` is set under the lock. All reach the parent before it can hear of zero: it
        // counts this owner until `then` runs.
        let mut left = loop {
            let mut left = self.lock();
            if left.failures.is_empty() {
                break left;
            }
            let failures = std::mem::take(&mut left.failures);
            drop(left);
            for failure in failures {
                parent.adopt_failure(failure);
            }
        };
        let previous = left.then.replace(Then::Parent(parent));
        drop(left);
        debug_assert!(previous.is_none(), "an owner goes away once");
        self.after_then();
    }

    /// The owner finished but must not end before its descendants: `end` runs once they have
    /// (at once, if they already have), on the thread that ends the last of them, with the
    /// failures kept for the owner.
    pub(crate) fn then_run(&self, end: Box<dyn FnOnce(Failures) + Send>) {
        let previous = self.lock().then.replace(Then::Run(end));
        debug_assert!(previous.is_none(), "an owner goes away once");
        self.after_then();
    }

    fn after_then(&self) {
        self.watch();
        // The last descendant may have ended before `then` was stored (or before `watch`), and
        // seen nothing to do. Whoever takes `then` out of the slot runs it, so it runs once.
        if self.is_empty() {
            self.run_then();
        }
    }

    fn run_then(&self) {
        let (then, failures) = {
            let mut left = self.lock();
            let then = left.then.take();
            let failures = match then {
                Some(Then::Run(_)) => std::mem::take(&mut left.failures),
                _ => Failures::new(),
            };
            (then, failures)
        };
        match then {
            Some(Then::Parent(parent)) => {
                parent.ended();
            }
            Some(Then::Run(end)) => end(failures),
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
