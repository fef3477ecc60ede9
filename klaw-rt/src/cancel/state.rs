//! The shared state of one cancel region (or standalone token): why it was cancelled, the
//! shields inside it, who waits for it, and the regions and tokens that hear it.
//!
//! A region is cancelled in one of two ways, and the difference matters:
//! - **its own** cancellation: its token, its deadline, or a parent *token* it was made a child
//!   of ([`Token::child`](crate::cancel::Token::child)). The region stops its future and
//!   returns the reason.
//! - an **enclosing** one: a region, scope or task it runs inside was cancelled. Its token sees
//!   that at once (`is_cancelled`, `reason`, `cancelled().await`), but the region does not stop
//!   on its own account: whatever encloses it drops it, so the outermost cancelled region is the
//!   one that catches the cancellation (trio's rule), and no code between the two runs on.
#![forbid(unsafe_code)]

use std::sync::{Arc, Weak};
use std::time::Instant;

use slab::Slab;

use crate::cancel::frames::{self, Enclosing};
use crate::sync::wakers::WakerSet;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering, SetOnce, WakerSlot};
use crate::task::CancelReason;
use crate::task::core::HeaderRef;

/// How a region is tied to what it hears: a parent token (its cancellation is the child's own)
/// or an enclosing frame (the child only observes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tie {
    Token,
    Enclosing,
}

/// Where a region is registered, so it can leave when it goes away.
enum Link {
    Region { parent: Arc<RegionState>, key: usize, tie: Tie },
    Task { task: HeaderRef, hook: usize },
}

#[derive(Default)]
pub(crate) struct RegionState {
    /// The first cancellation this region heard, its own or an enclosing one: what the token
    /// reports. Set once: the first reason wins.
    first: SetOnce<CancelReason>,
    /// Its own cancellation: what makes the region stop its future and return the reason.
    own: SetOnce<CancelReason>,
    /// Shields active inside the region; while any is, a cancelled region keeps polling.
    shielded: AtomicUsize,
    /// Set in the poll in which a scope inside returned failures having seen no cancellation
    /// of this region: a cancel that lands afterwards in that poll came after the scope's
    /// return, so the region's completion in that poll wins and the failures are delivered.
    /// Only the thread polling the region sets and takes it.
    completion_claimed: AtomicBool,
    /// The task that polls the region.
    waker: WakerSlot,
    /// Its deadline, if it has one, once it runs: so that a region inside that finds its own
    /// deadline passed can tell whether this one's passed first (`frames::expire_enclosing`).
    deadline: Mutex<Option<Instant>>,
    /// Set when a region inside cancelled this one for its deadline (`expire`), or a scope's
    /// parallel child did, on its own thread: a scope's driver then records the deadline as its
    /// timer would have (`take_expired`).
    expired: AtomicBool,
    /// Everyone awaiting `cancelled()` (`Cancelled`): taken out under the lock and woken after
    /// it, since a waker may come back into this token (drop another waiter, say).
    cancelled_waiters: Mutex<WakerSet>,
    /// The regions and tokens that hear this one, and how.
    children: Mutex<Slab<(Weak<RegionState>, Tie)>>,
    /// Where this one is registered: a parent token, an enclosing frame, or both (a region
    /// run until a token fires), so two places at most and no allocation.
    links: Mutex<[Option<Link>; 2]>,
}

impl RegionState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// True once cancelled in any way, its own or an enclosing one.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.first.is_set()
    }

    /// The first cancellation it heard.
    pub(crate) fn reason(&self) -> Option<&CancelReason> {
        self.first.get()
    }

    /// Its own cancellation, which is what stops the region.
    pub(crate) fn own_reason(&self) -> Option<&CancelReason> {
        self.own.get()
    }

    /// Cancels the region itself; true if this call decided it (the first reason wins). Either
    /// way, once it returns the region looks cancelled (`is_cancelled`, `reason`).
    pub(crate) fn cancel(&self, reason: CancelReason) -> bool {
        if let Err(reason) = self.own.set(reason.clone()) {
            // Another cancel decided it, and may not have recorded its reason as heard yet:
            // record it here. Whichever call records it tells the waiters and the children,
            // once.
            self.heard(self.own.get().cloned().unwrap_or(reason));
            return false;
        }
        self.heard(reason);
        self.waker.wake();
        true
    }

    /// Marks the region cancelled by something enclosing it: observers see it; the region runs
    /// on until that enclosing thing drops it.
    fn inherit(&self, reason: CancelReason) {
        self.heard(reason);
    }

    /// Records the first cancellation heard, wakes its waiters and tells the children.
    fn heard(&self, reason: CancelReason) {
        if self.first.set(reason.clone()).is_err() {
            return;
        }
        self.wake_waiters();
        // Iteratively, so a long chain of tokens cannot overflow the stack.
        let mut pending = self.hearing_children(&reason);
        while let Some((child, tie, reason)) = pending.pop() {
            let heard = match tie {
                Tie::Token => {
                    if child.own.set(reason.clone()).is_ok() {
                        child.waker.wake();
                    }
                    // A child token's own cancellation may have won the race against this one:
                    // what it reports is then its own reason, the one its `cancel` decided.
                    child.own.get().cloned().unwrap_or(reason)
                }
                Tie::Enclosing => reason,
            };
            if child.first.set(heard.clone()).is_ok() {
                child.wake_waiters();
                // And what runs the region (a scope, a region's future): if a shield holds
                // this cancellation open, nothing will drop it for now, and only its own poll
                // stops what it runs outside the shield. Whoever polls it may poll only what
                // was woken (a `FuturesUnordered`), so it is woken.
                child.waker.wake();
                pending.extend(child.hearing_children(&heard));
            }
        }
    }

    /// The children still alive, each with `reason`, collected under the lock and returned to
    /// be told outside it.
    fn hearing_children(
        &self,
        reason: &CancelReason,
    ) -> Vec<(Arc<RegionState>, Tie, CancelReason)> {
        self.children
            .lock()
            .iter()
            .filter_map(|(_, (child, tie))| Some((child.upgrade()?, *tie, reason.clone())))
            .collect()
    }

    /// Makes `self` hear `parent` from now on (at once, if `parent` is already cancelled).
    pub(crate) fn listen_to(self: &Arc<Self>, parent: &Arc<RegionState>, tie: Tie) {
        let (key, already) = {
            let mut children = parent.children.lock();
            let key = children.insert((Arc::downgrade(self), tie));
            // Read under the lock: a cancel that set `first` before we were inserted has
            // either listed us (after) or is seen here (before).
            (key, parent.first.get().cloned())
        };
        self.add_link(Link::Region { parent: parent.clone(), key, tie });
        if let Some(reason) = already {
            match tie {
                Tie::Token => {
                    self.cancel(reason);
                }
                Tie::Enclosing => self.inherit(reason),
            }
        }
    }

    /// Makes `self` hear the cancellation (or timeout) of the task it runs in.
    pub(crate) fn listen_to_task(self: &Arc<Self>, task: HeaderRef) {
        let weak = Arc::downgrade(self);
        let hook = task.header().on_cancel_keyed(Box::new(move |reason| {
            if let Some(region) = weak.upgrade() {
                region.inherit(reason.clone());
            }
        }));
        if let Some(hook) = hook {
            self.add_link(Link::Task { task, hook });
        }
    }

    fn add_link(&self, link: Link) {
        let mut links = self.links.lock();
        let free = links.iter_mut().find(|slot| slot.is_none());
        *free.expect("a region hears a parent token and an enclosing frame at most") = Some(link);
    }

    /// Makes `self` hear whatever encloses the code polling it now: the innermost region of
    /// the current task, or the task itself (nothing, inside a shield or outside any task).
    pub(crate) fn listen_to_enclosing(self: &Arc<Self>) {
        match frames::enclosing() {
            Enclosing::Region(parent) => self.listen_to(&parent, Tie::Enclosing),
            Enclosing::Task(task) => self.listen_to_task(task),
            Enclosing::Nothing => {}
        }
    }

    /// Cancelled by its own account, and no shield inside holds it open: the future it runs
    /// must be dropped now.
    pub(crate) fn must_stop(&self) -> bool {
        self.own.is_set() && self.shielded.load(Ordering::Acquire) == 0
    }

    /// Cancelled by its own account, whether or not a shield inside holds it open for now.
    pub(crate) fn stopping(&self) -> bool {
        self.own.is_set()
    }

    /// The deadline it runs to (set once it runs).
    pub(crate) fn set_deadline(&self, deadline: Instant) {
        *self.deadline.lock() = Some(deadline);
    }

    /// Cancels it for its deadline, which has passed, before its own timer was polled again.
    pub(crate) fn expire(&self) {
        self.expired.store(true, Ordering::Relaxed);
        self.cancel(CancelReason::Deadline);
    }

    /// True once if [`expire`](Self::expire) cancelled it. Only the thread polling the region
    /// takes it (a scope's child may set it on another thread, before the cancel that wakes
    /// the region's task).
    pub(crate) fn take_expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed) && self.expired.swap(false, Ordering::Relaxed)
    }

    /// Its deadline can change nothing any more (the scope's work ended in time; only its
    /// background children stop): nothing that finds a deadline passed expires it now.
    pub(crate) fn clear_deadline(&self) {
        *self.deadline.lock() = None;
    }

    /// True if it has a deadline no later than `at`.
    pub(crate) fn deadline_by(&self, at: Instant) -> bool {
        self.deadline.lock().is_some_and(|deadline| deadline <= at)
    }

    /// This region and the regions it hears as enclosing it, outward (in its task, up to a
    /// shield): those whose deadline is no later than `at`, and the reason a child of this
    /// region's scope is cancelled for, if one of them passed or stops already: this region's
    /// own reason (or `Deadline`, its deadline passed), else `ParentCancelled` (one around it),
    /// as the scope's cancel or drop would give it. What a scope's parallel child that finds a
    /// deadline passed compares (`frames::expire_enclosing`).
    pub(crate) fn passed_around(
        self: &Arc<Self>,
        at: Instant,
    ) -> (Vec<Arc<Self>>, Option<CancelReason>) {
        let mut passed = Vec::new();
        let mut reason = None;
        let mut region = Some(self.clone());
        while let Some(current) = region {
            let passed_now = current.deadline_by(at);
            if reason.is_none() {
                let own = Arc::ptr_eq(&current, self);
                reason = match current.own_reason() {
                    Some(stopping) if own => Some(stopping.clone()),
                    _ if own && passed_now => Some(CancelReason::Deadline),
                    Some(_) => Some(CancelReason::ParentCancelled),
                    None if passed_now => Some(CancelReason::ParentCancelled),
                    None => None,
                };
            }
            if passed_now {
                passed.push(current.clone());
            }
            region = current.enclosing_region();
        }
        (passed, reason)
    }

    /// The region this one hears as enclosing it, if any.
    fn enclosing_region(&self) -> Option<Arc<Self>> {
        self.links.lock().iter().find_map(|link| match link {
            Some(Link::Region { parent, tie: Tie::Enclosing, .. }) => Some(parent.clone()),
            _ => None,
        })
    }

    /// A scope inside returned failures, having seen no cancellation of this region (see
    /// `completion_claimed`).
    pub(crate) fn claim_completion(&self) {
        self.completion_claimed.store(true, Ordering::Relaxed);
    }

    /// Takes the claim of this poll, if a scope made one. A load first: a scope's driver asks
    /// after every poll of its body, and nearly always there is none (no write to the line).
    pub(crate) fn take_claim(&self) -> bool {
        self.completion_claimed.load(Ordering::Relaxed)
            && self.completion_claimed.swap(false, Ordering::Relaxed)
    }

    /// True while a shield inside holds the region open.
    pub(crate) fn is_shielded(&self) -> bool {
        self.shielded.load(Ordering::Acquire) != 0
    }

    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// The wakers of the `cancelled()` futures: each registers there, under the lock, only
    /// while `first` is unset as seen under that lock.
    pub(crate) fn cancelled_waiters(&self) -> &Mutex<WakerSet> {
        &self.cancelled_waiters
    }

    /// `first` was just set: wakes everyone awaiting `cancelled()`, outside the lock.
    fn wake_waiters(&self) {
        let wake = self.cancelled_waiters.lock().take_all();
        wake.wake();
    }

    pub(crate) fn shield_enter(&self) {
        self.shielded.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn shield_exit(&self) {
        let previous = self.shielded.fetch_sub(1, Ordering::AcqRel);
        if previous == 1 && self.own.is_set() {
            self.waker.wake(); // the cancellation waited for this shield; let the region act on it
        }
    }
}

impl RegionState {
    /// The region has ended: it stops hearing what enclosed it (a region, a scope or its task),
    /// whose later cancellation no longer concerns it, since none of its code runs inside any
    /// more (trio: a cancel scope's `cancel_called` is fixed once it exits). Its token then
    /// reports what it heard while the region ran, and no more, and a long-lived task is not
    /// left with a hook per ended region whose token someone kept. A parent token it was made a
    /// child of is its own cancellation, and stays.
    ///
    /// `dropped`: the region ends because what ran it dropped it, maybe for a cancellation
    /// still on its way down to it. A cancel is decided (`own`) before it is recorded as heard
    /// (`first`) and told to the children, one level after another, and what it stops may be
    /// dropped meanwhile, on another thread. So a dropped region looks up the whole chain of
    /// what it heard, and takes in a cancellation decided anywhere there: the one that dropped
    /// it, which it must report.
    pub(crate) fn leave_enclosing(&self, dropped: bool) {
        let enclosing: Vec<Link> = {
            let mut links = self.links.lock();
            links
                .iter_mut()
                .filter(|slot| {
                    matches!(
                        slot,
                        Some(Link::Task { .. } | Link::Region { tie: Tie::Enclosing, .. })
                    )
                })
                .filter_map(Option::take)
                .collect()
        };
        // Outside this region's lock, as `unlink` does: a parent's lock is taken next, and the
        // parent itself may go with the link. A cancellation decided before the region left
        // may not have reached it yet (it is told after it is decided); it was heard while the
        // region ran, so the region inherits it here: a region dropped by an enclosing cancel
        // always reports it.
        for link in enclosing {
            let decided = match link {
                Link::Region { parent, key, .. } => {
                    let (removed, decided) = {
                        // Read under the lock a cancel lists the children under, after it set
                        // `first`: a cancel that missed this removal set it before.
                        let mut children = parent.children.lock();
                        (children.try_remove(key), parent.first.get().cloned())
                    };
                    drop(removed);
                    decided.or_else(|| if dropped { parent.decided_around() } else { None })
                }
                Link::Task { task, hook } => {
                    let header = task.header();
                    header.remove_hook(hook);
                    // A task's cancel runs its hooks after it is decided: one decided before
                    // the hook was withdrawn is read here (a timeout's reason is the deadline).
                    header
                        .is_cancelled()
                        .then(|| header.cancel_reason().unwrap_or(CancelReason::Deadline))
                }
            };
            if let Some(reason) = decided {
                self.inherit(reason);
            }
        }
    }

    /// A cancellation decided for this region or anything it hears, up the chain (each level's
    /// own decision, before it is told down), or `None`. Iterative, one lock at a time.
    fn decided_around(self: &Arc<Self>) -> Option<CancelReason> {
        let mut next = vec![self.clone()];
        while let Some(region) = next.pop() {
            if let Some(reason) = region.first.get().or(region.own.get()) {
                return Some(reason.clone());
            }
            let links = region.links.lock();
            for link in links.iter().flatten() {
                match link {
                    Link::Region { parent, .. } => next.push(parent.clone()),
                    Link::Task { task, .. } => {
                        let header = task.header();
                        if header.is_cancelled() {
                            return Some(header.cancel_reason().unwrap_or(CancelReason::Deadline));
                        }
                    }
                }
            }
        }
        None
    }

    /// Leaves the parent token and the task it was registered with; gives back the parents.
    fn unlink(&self) -> Vec<Arc<RegionState>> {
        let links = std::mem::take(&mut *self.links.lock());
        let mut parents = Vec::new();
        for link in links.into_iter().flatten() {
            match link {
                Link::Region { parent, key, .. } => {
                    let removed = parent.children.lock().try_remove(key);
                    drop(removed);
                    parents.push(parent);
                }
                Link::Task { task, hook } => task.header().remove_hook(hook),
            }
        }
        parents
    }
}

impl Drop for RegionState {
    fn drop(&mut self) {
        // A parent whose last reference was this link goes with it, and so on up the chain:
        // iteratively (each one's links taken before it drops), so that dropping the last of a
        // long chain of child tokens cannot overflow the stack.
        let mut parents = self.unlink();
        while let Some(parent) = parents.pop() {
            if let Some(last) = Arc::into_inner(parent) {
                parents.extend(last.unlink());
            }
        }
    }
}

impl std::fmt::Debug for RegionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionState")
            .field("reason", &self.first.get())
            .field("own", &self.own.get())
            .finish_non_exhaustive()
    }
}
