//! The children of one scope, shared between the scope and the threads its children end on.
//!
//! The invariant the loom model checks: a child registered while the scope is being cancelled is
//! cancelled, whichever of the two takes the lock first; and the scope sees every child end.
//!
//! A failing child is recorded (and its siblings and the body cancelled) *before* its output is
//! published, so nobody can see a failed child's output while its scope still looks healthy:
//! whether the body awaited the child or not, the failure fails the scope.
#![forbid(unsafe_code)]

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use slab::Slab;

use crate::cancel::{RegionState, frames};
use crate::error::{Error, WithCauses};
use crate::runtime::limit::Limit;
use crate::runtime::spawn::ParentLink;
use crate::runtime::stats::Stats;
use crate::runtime::{ChildSnapshot, ScopeSnapshot, ScopeView};
use crate::sync::{AtomicBool, Mutex, Ordering};
use crate::task::core::{CoreRef, FailureTaker, Header, TaskCore, TaskHeader};
use crate::task::descendants::{AdoptedFailure, Descendants, TakesFailures};
use crate::task::error::{BoxError, TaskError, TaskInfo};
use crate::task::handle::TaskOutput;
use crate::task::state::Kind;
use crate::task::{CancelReason, TaskId, current, current_task_id};

/// A child as its scope sees it: a task (its header, through `TaskHeader`), and its failure if
/// no handle took it.
pub(crate) trait ScopeChild: TaskHeader {
    /// The child's failure, unless its handle already took it (then the body has it).
    fn take_failure(&self) -> Option<Error>;
}

impl<T, E> ScopeChild for TaskCore<TaskOutput<T, E>>
where
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    fn take_failure(&self) -> Option<Error> {
        let error = self.take_unclaimed()?.err()?;
        Some(Error::of_task(Some(task_info(self.header())), error))
    }
}

/// A shared reference to a child of any type.
pub(crate) type ChildRef = CoreRef<dyn ScopeChild>;

/// A child's core, as its scope lists it.
pub(crate) fn child_ref<T, E>(core: CoreRef<TaskCore<TaskOutput<T, E>>>) -> ChildRef
where
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    core.map(|core| core as &dyn ScopeChild)
}

/// Which child: a scope's reports name each failed child.
pub(crate) fn task_info(header: &Header) -> TaskInfo {
    TaskInfo::new(header.id(), header.name())
}

/// Something that made the scope fail, in the order it happened.
pub(crate) enum Failure {
    Child(ChildRef),
    /// The body returned `Err`; the driver holds the error.
    Body,
    /// The scope's own deadline passed.
    Deadline,
    /// A child's body failed after its outcome was already decided as cancelled: its handle
    /// says `Cancelled`, but the failure happened and is reported.
    Raced(Error),
}

impl Failure {
    /// A failure the body of task `id` produced after its outcome was decided.
    fn raced_by(&self, id: TaskId) -> bool {
        matches!(self, Failure::Raced(Error::Task { task: Some(task), .. }) if task.id() == id)
    }
}

/// What a scope keeps of the failures its body took: by child id, the stand-in it reports if the
/// body does not pass the failure on.
pub(crate) type Taken = Vec<(TaskId, Error)>;

/// The stand-in kept for child `id`'s failure, if the body took it (see [`ScopeShared::took`]).
pub(crate) fn take_stand_in(taken: &mut Taken, id: TaskId) -> Option<Error> {
    let at = taken.iter().position(|(taker, _)| *taker == id)?;
    Some(taken.swap_remove(at).1)
}

/// Children that fail are removed by their own end; the others stay until a sweep, so that a
/// child ending well costs one atomic decrement and no lock. Two sweeps, both run by
/// [`ScopeShared::list`] on the spawning thread:
/// - each listing looks at the next [`SWEEP_STEPS`] keys, round the keys in use, and takes out
///   the children there that ended well. While children end about as fast as they are spawned,
///   this keeps the list at a few dozen keys (14 in `benches/scope`), and frees each core a few
///   listings after its child ended, on the thread that allocated it: the spawning thread works
///   in memory it touched just before. Sweeping only in bulk let the list grow past 64 keys
///   and freed dozens of cores at once; the bench's scopes took about a fifth longer that way
///   (freeing the bulk sweep's cores a few at a time did not help: the list's size does).
/// - a bulk sweep takes out every child that ended well once the list has doubled since the
///   last one (at first, at [`FIRST_SWEEP`]), or when the step sweep starts a round and finds the
///   list longer than twice the scope's live children plus [`FIRST_SWEEP`]: amortised O(1) per
///   spawn, and a long-lived scope holds at most about twice its live children, whatever the
///   order children end in.
const FIRST_SWEEP: usize = 64;
const SWEEP_STEPS: usize = 2;

/// What a sweep took out of the list: dropped by the caller, outside the lock.
#[derive(Default)]
struct Swept {
    steps: [Option<ChildRef>; SWEEP_STEPS],
    bulk: Vec<ChildRef>,
}

/// A child whose output is published and who did not fail.
fn ended_well(child: &dyn ScopeChild) -> bool {
    let header = child.header();
    header.is_done() && !header.kind().is_failure()
}

struct Registry {
    /// Every child not yet swept: the live ones, failed ones until their end is recorded, and
    /// ones that ended well since the last sweep. Keys stay stable, so a failing child finds
    /// itself.
    children: Slab<ChildRef>,
    /// The list's length at which the next bulk sweep runs.
    sweep_at: usize,
    /// The next key the step sweep looks at.
    cursor: usize,
    /// One past the highest key in use (at most): where the step sweep's cursor wraps.
    keys_in_use: usize,
    cancelled: Option<CancelReason>,
    failures: Vec<Failure>,
    /// What the scope keeps of each failure its body took from a child's handle (see
    /// [`ScopeShared::took`]).
    taken: Taken,
    /// Background children not yet stopped: cancelled once the rest of the scope is done.
    background: Vec<ChildRef>,
    /// Once the scope was dropped inside a frame: where its failures go, now and later (the
    /// descendants of that frame, which waits for this scope's children).
    forward_to: Option<Arc<Descendants>>,
}

pub(crate) struct ScopeShared {
    /// On a cache line of its own: the spawning thread takes the lock for every child, while
    /// the threads its children end on write the reference count beside the other fields.
    registry: CachePadded<Mutex<Registry>>,
    /// Children registered and not yet ended, and what the scope adopted from scopes its body
    /// dropped: the scope returns once this is empty.
    pub(crate) descendants: Arc<Descendants>,
    /// Background children not yet ended: counted apart, since the scope stops them (rather than
    /// waiting for them) once `descendants` is empty, and then waits for them.
    pub(crate) background: Arc<Descendants>,
    /// The body's cancel region: cancelled with the scope.
    pub(crate) region: Arc<RegionState>,
    /// Set when the scope was dropped before it returned: failures are logged, not returned.
    abandoned: AtomicBool,
    /// Set when the scope was dropped before it returned, in a frame or not: a runtime dump
    /// shows it while its children end, and not after.
    dropped: AtomicBool,
    /// Its entry in the runtime's list of open scopes, for a dump: left when the scope returns,
    /// or, for a scope dropped before it returned, when the last reference to it goes (its last
    /// child's link, usually), since its children still run after it is gone.
    view: Mutex<Option<OpenScope>>,
    supervisor: bool,
    /// `limit = n`: at most n children run at once; the rest wait, unstarted.
    pub(crate) limit: Option<Arc<Limit>>,
    /// What a runtime dump says of the scope.
    info: ScopeInfo,
}

/// A scope's name, the task it runs in, and when it opened: for a runtime dump. And whether it
/// is under a shield.
pub(crate) struct ScopeInfo {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) owner: Option<TaskId>,
    pub(crate) opened: Instant,
    /// The scope opened under a shield (`frames::scope_under_shield`): its children are marked
    /// so (`Header::mark_under_shield`), and a runtime's shutdown leaves them to the shield
    /// until its last resort.
    pub(crate) under_shield: bool,
}

impl ScopeInfo {
    /// A scope opening now, in the current task (if any).
    pub(crate) fn now(name: Option<Cow<'static, str>>) -> Self {
        ScopeInfo {
            name,
            owner: current_task_id(),
            opened: Instant::now(),
            under_shield: frames::scope_under_shield(),
        }
    }
}

/// A scope's place in its runtime's list of open scopes; leaving it closes the entry.
pub(crate) struct OpenScope {
    pub(crate) stats: Arc<Stats>,
    pub(crate) key: usize,
}

impl Drop for OpenScope {
    fn drop(&mut self) {
        self.stats.scope_closed(self.key);
    }
}

impl ScopeView for ScopeShared {
    fn snapshot(&self) -> Option<ScopeSnapshot> {
        let dropped = self.dropped.load(Ordering::Acquire);
        if dropped && self.descendants.is_empty() && self.background.is_empty() {
            return None; // dropped, and everything it started has ended: it is gone
        }
        let (children, cancelled) = {
            let registry = self.registry.lock();
            let background: HashSet<TaskId> =
                registry.background.iter().map(|child| child.header().id()).collect();
            let children = registry
                .children
                .iter()
                .map(|(_, child)| {
                    let header = child.header();
                    ChildSnapshot {
                        id: header.id(),
                        name: header.name().map(str::to_owned),
                        started: header.has_started(),
                        ended: header.is_done(),
                        state: header.exit_reason(),
                        cancel_reason: header.cancel_reason(),
                        background: background.contains(&header.id()),
                    }
                })
                .collect();
            (children, registry.cancelled.clone())
        };
        let waiting = self.limit.as_ref().map(|limit| (limit.counts().1, limit.limit()));
        Some(ScopeSnapshot {
            name: self.info.name.as_deref().map(str::to_owned),
            owner: self.info.owner,
            opened: self.info.opened,
            children,
            waiting,
            cancelled,
            dropped,
        })
    }
}

impl ScopeShared {
    pub(crate) fn new(supervisor: bool, limit: Option<Arc<Limit>>, info: ScopeInfo) -> Arc<Self> {
        Arc::new_cyclic(|scope: &std::sync::Weak<ScopeShared>| ScopeShared {
            registry: CachePadded::new(Mutex::new(Registry {
                children: Slab::new(),
                sweep_at: FIRST_SWEEP,
                cursor: 0,
                keys_in_use: 0,
                cancelled: None,
                failures: Vec::new(),
                taken: Vec::new(),
                background: Vec::new(),
                forward_to: None,
            })),
            // What failed in scopes the body drops comes to this scope's list as it happens.
            descendants: Descendants::owned_by(scope.clone()),
            background: Descendants::new(),
            region: RegionState::new(),
            abandoned: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            view: Mutex::new(None),
            supervisor,
            limit,
            info,
        })
    }

    /// Keeps the scope's entry in the runtime's list of open scopes (none outside a runtime).
    pub(crate) fn keep_view(&self, view: Option<OpenScope>) {
        *self.view.lock() = view;
    }

    /// The scope was dropped before it returned: its entry stays in the runtime's list while
    /// its children end.
    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    /// The scope's own value goes: it leaves the runtime's list unless it was dropped before it
    /// returned (then it leaves with the last reference to it, once its children have ended).
    pub(crate) fn close_view(&self) {
        if self.dropped.load(Ordering::Acquire) {
            return;
        }
        let view = self.view.lock().take();
        drop(view); // outside the lock: it takes the runtime's list's
    }

    /// Adds a child that no executor has seen yet. If the scope is cancelled, so is the child,
    /// before it can start.
    pub(crate) fn register<E: Into<BoxError>>(self: &Arc<Self>, child: ChildRef) -> ChildLink<E> {
        self.mark(child.header());
        // Counted before anything can run it, so its end never precedes its start.
        self.descendants.add();
        let key = self.list(child, self.heard_cancel());
        ChildLink { scope: self.clone(), key, error: PhantomData }
    }

    /// Adds a background child: like [`register`](Self::register), but counted apart, and
    /// stopped by [`stop_background`](Self::stop_background).
    pub(crate) fn register_background<E: Into<BoxError>>(
        self: &Arc<Self>,
        child: ChildRef,
    ) -> ChildLink<E> {
        self.mark(child.header());
        self.background.add();
        let ended = {
            let mut registry = self.registry.lock();
            // Kept only to be stopped: the ended ones go once the list outgrows twice the live
            // ones (amortised O(1) per child), or a long-lived scope kept every one it spawned.
            let ended = if registry.background.len() >= 2 * self.background.count() + FIRST_SWEEP {
                let (ended, live) = std::mem::take(&mut registry.background)
                    .into_iter()
                    .partition(|child: &ChildRef| child.header().is_done());
                registry.background = live;
                ended
            } else {
                Vec::new()
            };
            registry.background.push(child.clone());
            ended
        };
        drop(ended); // outside the lock: these may be the last references to their cores
        let key = self.list(child, self.heard_cancel()) | BACKGROUND;
        ChildLink { scope: self.clone(), key, error: PhantomData }
    }

    /// The rest of the scope is done: its background children are cancelled.
    pub(crate) fn stop_background(&self) {
        let background = std::mem::take(&mut self.registry.lock().background);
        for child in &background {
            child.cancel(CancelReason::ScopeFinished);
        }
        drop(background); // outside the lock: these may be the last references to their cores
    }

    /// Counts a child that waits for a slot of the scope's limit, unlisted until it starts
    /// ([`ChildLink::list`]). If the scope is cancelled, so is the child, before it can start.
    pub(crate) fn enlist<E>(self: &Arc<Self>, child: &Header) -> ChildLink<E> {
        self.mark(child);
        self.descendants.add();
        let cancelled = self.registry.lock().cancelled.clone();
        if let Some(reason) = cancelled.or_else(|| self.heard_cancel()) {
            child.cancel(reason);
        }
        ChildLink { scope: self.clone(), key: NOT_LISTED, error: PhantomData }
    }

    /// True if the scope opened under a shield (see [`ScopeInfo::under_shield`]).
    pub(crate) fn under_shield(&self) -> bool {
        self.info.under_shield
    }

    /// Marks a new child, before anything can run it, as under a shield if the scope is (see
    /// [`ScopeInfo::under_shield`]).
    fn mark(&self, child: &Header) {
        if self.info.under_shield {
            child.mark_under_shield();
        }
    }

    /// Lists a child that is starting; cancels it if the scope was cancelled meanwhile, or
    /// with `heard` (see [`heard_cancel`](Self::heard_cancel)), asked where it was spawned.
    fn list(&self, child: ChildRef, heard: Option<CancelReason>) -> usize {
        let (key, cancelled, swept) = {
            let mut registry = self.registry.lock();
            let swept = registry.sweep(|| self.descendants.count() + self.background.count());
            let key = registry.children.insert(child.clone());
            registry.keys_in_use = registry.keys_in_use.max(key + 1);
            (key, registry.cancelled.clone(), swept)
        };
        drop(swept); // outside the lock: these may be the last references to their cores
        if let Some(reason) = cancelled.or(heard) {
            child.cancel(reason);
        }
        key
    }

    /// What encloses the scope was cancelled, and the scope has heard it (`Scope::is_cancelled`
    /// says so) but not yet acted on it (its driver cancels its children when its task drops
    /// it, or at its next poll if a shield holds the task open): a child that starts now starts
    /// cancelled, as it would a moment later. A child listed before the cancellation is heard is
    /// cancelled by that act. Not in a blocking task's closure (under a foreign executor's
    /// `block_on`): nothing drops a scope there, which runs to its end as if uncancelled. (Outside
    /// any task, in a `block_on`, the region around the scope drops it, as a task would.) Asked
    /// where the child is spawned, which is where the scope runs: a child that waited for a
    /// slot of the scope's limit is listed later on whichever thread freed it, and is left to
    /// the scope's own cancelling.
    ///
    /// The reason is `ParentCancelled`, as the children listed before get when the scope acts on
    /// it: siblings cancelled by one cancel of what encloses them hear the same reason, whenever
    /// they were spawned.
    fn heard_cancel(&self) -> Option<CancelReason> {
        let heard = self.region.reason().is_some() && current::polled_or_outside_tasks();
        heard.then_some(CancelReason::ParentCancelled)
    }

    /// Cancels the body and every child; the first reason wins. `failure` is recorded in the
    /// same critical section, so failures are listed in the order they happened.
    pub(crate) fn cancel_all(&self, reason: CancelReason, failure: Option<Failure>) {
        let victims = {
            let mut registry = self.registry.lock();
            // A deadline that passes after the scope was cancelled anyway changed nothing.
            let late_deadline =
                matches!(failure, Some(Failure::Deadline)) && registry.cancelled.is_some();
            if !late_deadline {
                registry.failures.extend(failure);
            }
            registry.start_cancel(&reason)
        };
        self.finish_cancel(reason, victims);
    }

    fn finish_cancel(&self, reason: CancelReason, victims: Option<Vec<ChildRef>>) {
        let Some(victims) = victims else { return };
        self.region.cancel(reason.clone());
        for child in victims {
            child.cancel(reason.clone());
        }
        // Children still waiting for a slot end now, unstarted.
        if let Some(limit) = &self.limit {
            limit.close(&reason);
        }
    }

    /// True if a failure waits to be reported (in the result, or handed on if the scope is
    /// dropped).
    pub(crate) fn has_failures(&self) -> bool {
        !self.registry.lock().failures.is_empty()
    }

    pub(crate) fn take_failures(&self) -> Vec<Failure> {
        std::mem::take(&mut self.registry.lock().failures)
    }

    /// The body took child `id`'s failure from its handle: the one way a failure listed by a
    /// scope that is not a supervisor reaches the body (in a shield, while the scope stops). The
    /// scope keeps a stand-in ([`TakenFailure`](crate::task::TakenFailure)) to report if the
    /// body does not return that failure, so a failure the body drops still fails the scope, as
    /// trio's and Kotlin's do. A supervisor's body owns what it awaits: nothing is kept.
    pub(crate) fn took(&self, id: TaskId, error: &Error) {
        if self.supervisor {
            return;
        }
        if let Some(stand_in) = error.taken_stand_in() {
            self.registry.lock().taken.push((id, stand_in));
        }
    }

    /// The children whose failure the body took.
    pub(crate) fn taken_ids(&self) -> Vec<TaskId> {
        self.registry.lock().taken.iter().map(|(id, _)| *id).collect()
    }

    /// The stand-ins of failures the body took, by child id.
    pub(crate) fn take_taken(&self) -> Taken {
        std::mem::take(&mut self.registry.lock().taken)
    }

    /// The scope was dropped before it returned, inside the frame whose descendants are `frame`
    /// (which adopts its children): what failed, and what fails from now on, goes there, to be
    /// reported with that frame's own outcome. Outside any frame it can only be logged, once
    /// every child has ended (here, or by the last child's end).
    /// `body_error` is the body's own error, which the driver held.
    /// `passed_on` are the children whose failure the body took and carries in its error: their
    /// stand-ins go nowhere.
    pub(crate) fn abandon(
        &self,
        frame: Option<Arc<Descendants>>,
        body_error: Option<Error>,
        passed_on: &[TaskId],
    ) {
        let Some(frame) = frame else {
            // What the body passed on is logged with its error, below; the rest is logged with
            // the failures (`log_abandoned`). Dropped outside the lock.
            let passed: Taken = {
                let mut registry = self.registry.lock();
                let (passed, kept) = std::mem::take(&mut registry.taken)
                    .into_iter()
                    .partition(|(id, _)| passed_on.contains(id));
                registry.taken = kept;
                passed
            };
            drop(passed);
            if let Some(error) = body_error {
                tracing::warn!(error = %WithCauses(&error), "the body of a scope that was dropped before it returned failed");
            }
            // SeqCst, with the count's in `ChildLink::ended`: either this sees the last child
            // gone, or that child sees the flag; both may, and the log drains the list once.
            self.abandoned.store(true, Ordering::SeqCst);
            if self.descendants.is_empty() && self.background.is_empty() {
                self.log_abandoned();
            }
            return;
        };
        let (failures, mut taken) = {
            let mut registry = self.registry.lock();
            registry.forward_to = Some(frame.clone());
            (std::mem::take(&mut registry.failures), std::mem::take(&mut registry.taken))
        };
        // Handed on in the order they happened: the body's error (which the driver held) where
        // the list says it came. A deadline is this scope's own way of being cancelled, not a
        // failure to pass on.
        let mut body_error = body_error;
        for failure in failures {
            match failure {
                Failure::Child(ref child) => {
                    // A failure the body took and is not passing on goes as its stand-in.
                    let id = child.header().id();
                    let stand_in =
                        take_stand_in(&mut taken, id).filter(|_| !passed_on.contains(&id));
                    frame.adopt_failure(Box::new(failure));
                    if let Some(stand_in) = stand_in {
                        frame.adopt_failure(Box::new(Failure::Raced(stand_in)));
                    }
                }
                Failure::Raced(_) => frame.adopt_failure(Box::new(failure)),
                Failure::Body => {
                    if let Some(error) = body_error.take() {
                        frame.adopt_failure(Box::new(Failure::Raced(error)));
                    }
                }
                Failure::Deadline => {}
            }
        }
        if let Some(error) = body_error {
            frame.adopt_failure(Box::new(Failure::Raced(error)));
        }
    }

    pub(crate) fn log_abandoned(&self) {
        let mut taken = self.take_taken();
        for failure in self.take_failures() {
            let error = match failure {
                Failure::Child(child) => {
                    let id = child.header().id();
                    child.take_failure().or_else(|| take_stand_in(&mut taken, id))
                }
                Failure::Raced(error) => Some(error),
                Failure::Body | Failure::Deadline => None,
            };
            if let Some(error) = error {
                tracing::warn!(error = %WithCauses(&error), "a child failed in a scope that was dropped before it returned");
            }
        }
    }

    /// A child failed: recorded, and (unless supervising) everyone else cancelled, before its
    /// output is published.
    fn child_failed(&self, key: usize) {
        self.fail(|registry| Failure::Child(registry.children.remove(key)));
    }

    /// A child's body failed after its outcome was decided otherwise (its handle says
    /// `Cancelled`): the failure is still reported, and cancels the rest like any other.
    fn child_raced(&self, error: Error) {
        self.fail(|_| Failure::Raced(error));
    }

    /// Records a child's failure and, unless supervising, cancels everyone else with
    /// `SiblingFailed`, in one critical section, so failures are listed in the order they happened.
    ///
    /// In a scope that was dropped inside a frame, the failure goes to that frame instead (see
    /// [`abandon`](Self::abandon)); everything here is cancelled already.
    fn fail(&self, failure: impl FnOnce(&mut Registry) -> Failure) {
        let (victims, forward) = {
            let mut registry = self.registry.lock();
            let failure = failure(&mut registry);
            match registry.forward_to.clone() {
                Some(frame) => (None, Some((frame, failure))),
                None => {
                    // A child's decided failure (its own timeout, say) is told at its end, but
                    // it came before any failure its body produced after it (a cleanup that
                    // failed, already told as raced): listed before those, so the first listed
                    // is the one that started it.
                    let before = match &failure {
                        Failure::Child(child) => {
                            let id = child.header().id();
                            registry.failures.iter().position(|f| f.raced_by(id))
                        }
                        _ => None,
                    };
                    match before {
                        Some(at) => registry.failures.insert(at, failure),
                        None => registry.failures.push(failure),
                    }
                    let victims = match self.supervisor {
                        true => None,
                        false => registry.start_cancel(&CancelReason::SiblingFailed),
                    };
                    (victims, None)
                }
            }
        };
        if let Some((frame, failure)) = forward {
            frame.adopt_failure(Box::new(failure));
            return;
        }
        self.finish_cancel(CancelReason::SiblingFailed, victims);
    }
}

impl TakesFailures for ScopeShared {
    /// A failure in a scope this scope's body dropped (or one a child task dropped): it fails
    /// this scope as a child's failure does.
    fn take_failure(&self, failure: Box<dyn AdoptedFailure>) {
        let failure = failure.into_any().downcast::<Failure>();
        let failure = *failure.unwrap_or_else(|_| unreachable!("scopes adopt scopes' failures"));
        self.fail(|_| failure);
    }
}

impl AdoptedFailure for Failure {
    fn log(self: Box<Self>) {
        let error = match *self {
            Failure::Child(child) => child.take_failure(),
            Failure::Raced(error) => Some(error),
            Failure::Body | Failure::Deadline => None,
        };
        if let Some(error) = error {
            tracing::warn!(error = %WithCauses(&error), "a child failed in a scope that was dropped before it returned, and no scope above it takes the failure");
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

impl Registry {
    /// Takes out the children that ended well among the next keys, and all of them if a bulk
    /// sweep is due (see [`FIRST_SWEEP`]; `live` counts the scope's children that have not
    /// ended, read only when a round starts). Failed children stay: their own end removes
    /// them. The caller drops what it gets once it holds no lock.
    fn sweep(&mut self, live: impl FnOnce() -> usize) -> Swept {
        let mut swept = Swept::default();
        let mut new_round = false;
        for slot in &mut swept.steps {
            if self.keys_in_use == 0 {
                break;
            }
            let key = self.cursor % self.keys_in_use;
            new_round |= key == 0;
            self.cursor = key + 1;
            if self.children.get(key).is_some_and(|child| ended_well(&**child)) {
                *slot = Some(self.children.remove(key));
            }
        }
        let listed = self.children.len();
        // `listed > FIRST_SWEEP` first: it spares most rounds the read of the live counts,
        // whose cache lines the workers write as children end.
        let overgrown = new_round && listed > FIRST_SWEEP && listed > 2 * live() + FIRST_SWEEP;
        if listed >= self.sweep_at || overgrown {
            let ended: Vec<usize> = self
                .children
                .iter()
                .filter(|(_, child)| ended_well(&***child))
                .map(|(key, _)| key)
                .collect();
            // Highest key first, so the lowest freed key is the next one handed out (the list
            // reuses the last key freed): new children fill the low keys, and the step sweep's
            // round shrinks back to the keys in use.
            for &key in ended.iter().rev() {
                swept.bulk.push(self.children.remove(key));
            }
            self.keys_in_use = self.children.iter().next_back().map_or(0, |(key, _)| key + 1);
            self.sweep_at = (self.children.len() * 2).max(FIRST_SWEEP);
        }
        swept
    }

    /// Marks the scope cancelled; the children to cancel, or `None` if it already was.
    fn start_cancel(&mut self, reason: &CancelReason) -> Option<Vec<ChildRef>> {
        if self.cancelled.is_some() {
            return None;
        }
        self.cancelled = Some(reason.clone());
        Some(self.children.iter().map(|(_, child)| child.clone()).collect())
    }
}

/// The key of a child that waits for a slot of its scope's limit and is not listed yet.
const NOT_LISTED: usize = usize::MAX;
/// Set in the key of a background child (never limited, so always listed). No slab reaches it.
const BACKGROUND: usize = 1 << (usize::BITS - 1);

/// Held by a child's runner: reports the child's failure and its end to its scope.
pub(crate) struct ChildLink<E> {
    scope: Arc<ScopeShared>,
    key: usize,
    error: PhantomData<fn(E)>,
}

impl<E> ChildLink<E> {
    fn is_background(&self) -> bool {
        self.key != NOT_LISTED && self.key & BACKGROUND != 0
    }

    /// Its key in the scope's list, if it is listed.
    fn listed_key(&self) -> Option<usize> {
        (self.key != NOT_LISTED).then_some(self.key & !BACKGROUND)
    }
}

impl<E: Into<BoxError> + Send + 'static> ParentLink<E> for ChildLink<E> {
    /// Before the output is published: a failed child fails its scope first. (A child that was
    /// never listed never ran, so it cannot have failed.)
    fn before_publish(&self, kind: Kind) {
        if let (true, Some(key)) = (kind.is_failure(), self.listed_key()) {
            self.scope.child_failed(key);
        }
    }

    fn list<T: Send + 'static>(&mut self, task: CoreRef<TaskCore<TaskOutput<T, E>>>) {
        debug_assert_eq!(self.key, NOT_LISTED, "a child is listed once");
        self.key = self.scope.list(child_ref(task), None);
    }

    #[inline]
    fn region(&self) -> Option<&Arc<RegionState>> {
        Some(&self.scope.region)
    }

    /// The body failed after a cancel had decided its outcome: in its code, or, for a child that
    /// never started (a limited scope's, ended while it waited for a slot, and never listed), in
    /// the destructor of its unpolled future.
    fn raced(&self, task: &Header, error: TaskError<E>) {
        let error = Error::of_task(Some(task_info(task)), error);
        tracing::warn!(task.id = task.id().as_u64(), error = %WithCauses(&error), "a child failed after it was cancelled; its scope reports the failure");
        self.scope.child_raced(error);
    }

    fn adopted(&self, failure: Box<dyn AdoptedFailure>) {
        self.scope.take_failure(failure);
    }

    /// A failed child is the scope's to report (`child_failed`, before the publish).
    fn failure_taker(&self) -> FailureTaker {
        FailureTaker::Scope
    }

    /// After the output is published: the child has ended.
    fn ended(self) {
        let scope = &self.scope;
        let (own, other) = match self.is_background() {
            true => (&scope.background, &scope.descendants),
            false => (&scope.descendants, &scope.background),
        };
        // SeqCst, like `abandon`: of the last foreground and the last background child, at
        // least one sees the other count empty. It logs before the frame that adopted the
        // children hears they have ended, so what failed is logged once that frame returns.
        own.ended_then(|| {
            if other.is_empty() && scope.abandoned.load(Ordering::SeqCst) {
                scope.log_abandoned();
            }
        });
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests;
