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
use std::marker::PhantomData;
use std::sync::Arc;

use slab::Slab;

use crate::cancel::RegionState;
use crate::error::{Error, WithCauses};
use crate::runtime::spawn::ParentLink;
use crate::sync::{AtomicBool, Mutex, Ordering};
use crate::task::core::{Header, TaskCore, TaskHeader};
use crate::task::descendants::Descendants;
use crate::task::error::{BoxError, TaskError, TaskInfo};
use crate::task::handle::TaskOutput;
use crate::task::state::Kind;
use crate::task::{CancelReason, TaskId};

/// A child as its scope sees it: a task (its header, through `TaskHeader`), and its failure if
/// no handle took it.
pub(crate) trait ScopeChild: TaskHeader {
    /// The child's failure, unless its handle already took it (then the body has it).
    fn take_failure(&self) -> Option<Error>;

    /// A failure its body produced after its outcome was decided otherwise, as the scope reports
    /// it. (It travels as `Any` so a child's link needs no conversion of its own: raced failures
    /// are rare, and every byte of a runner is paid per task.)
    fn raced_error(&self, error: Box<dyn Any + Send>) -> Error;
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

    fn raced_error(&self, error: Box<dyn Any + Send>) -> Error {
        match error.downcast::<TaskError<E>>() {
            Ok(error) => Error::of_task(Some(task_info(self.header())), *error),
            Err(_) => unreachable!("a child reports failures of its own type"),
        }
    }
}

/// Which child: a scope's reports name each failed child.
pub(crate) fn task_info(header: &Header) -> TaskInfo {
    TaskInfo::new(header.id(), header.name())
}

/// Something that made the scope fail, in the order it happened.
pub(crate) enum Failure {
    Child(Arc<dyn ScopeChild>),
    /// The body returned `Err`; the driver holds the error.
    Body,
    /// The scope's own deadline passed.
    Deadline,
    /// A child's body failed after its outcome was already decided as cancelled: its handle
    /// says `Cancelled`, but the failure happened and is reported.
    Raced(Error),
}

/// Children that fail are removed by their own end; the others stay until a sweep, so that a
/// child ending well costs one atomic decrement and no lock.
const FIRST_SWEEP: usize = 64;

struct Registry {
    /// Every child not yet swept: the live ones, failed ones until their end is recorded, and
    /// ones that ended well since the last sweep. Keys stay stable, so a failing child finds
    /// itself.
    children: Slab<Arc<dyn ScopeChild>>,
    sweep_at: usize,
    cancelled: Option<CancelReason>,
    failures: Vec<Failure>,
}

pub(crate) struct ScopeShared {
    registry: Mutex<Registry>,
    /// Children registered and not yet ended, and what the scope adopted from scopes its body
    /// dropped: the scope returns once this is empty.
    pub(crate) descendants: Arc<Descendants>,
    /// The body's cancel region: cancelled with the scope.
    pub(crate) region: Arc<RegionState>,
    /// Set when the scope was dropped before it returned: failures are logged, not returned.
    abandoned: AtomicBool,
    supervisor: bool,
}

impl ScopeShared {
    pub(crate) fn new(supervisor: bool) -> Arc<Self> {
        Arc::new(ScopeShared {
            registry: Mutex::new(Registry {
                children: Slab::new(),
                sweep_at: FIRST_SWEEP,
                cancelled: None,
                failures: Vec::new(),
            }),
            descendants: Descendants::new(),
            region: RegionState::new(),
            abandoned: AtomicBool::new(false),
            supervisor,
        })
    }

    /// Adds a child that no executor has seen yet. If the scope is cancelled, so is the child,
    /// before it can start.
    pub(crate) fn register<E: Into<BoxError>>(
        self: &Arc<Self>,
        child: Arc<dyn ScopeChild>,
    ) -> ChildLink<E> {
        // Counted before anything can run it, so its end never precedes its start.
        self.descendants.add();
        let (key, cancelled, swept) = {
            let mut registry = self.registry.lock();
            let swept = registry.sweep_if_due();
            let key = registry.children.insert(child.clone());
            (key, registry.cancelled.clone(), swept)
        };
        drop(swept); // outside the lock: these may be the last references to their cores
        if let Some(reason) = cancelled {
            child.header().cancel(reason);
        }
        ChildLink { scope: self.clone(), key, error: PhantomData }
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

    fn finish_cancel(&self, reason: CancelReason, victims: Option<Vec<Arc<dyn ScopeChild>>>) {
        let Some(victims) = victims else { return };
        self.region.cancel(reason.clone());
        for child in victims {
            child.header().cancel(reason.clone());
        }
    }

    pub(crate) fn take_failures(&self) -> Vec<Failure> {
        std::mem::take(&mut self.registry.lock().failures)
    }

    /// The scope was dropped before it returned: what failed can only be logged, once every
    /// child has ended (here, or by the last child's end).
    pub(crate) fn abandon(&self) {
        // SeqCst, with the count's in `ChildLink::ended`: either this sees the last child gone,
        // or that child sees the flag; both may, and the log drains the list once.
        self.abandoned.store(true, Ordering::SeqCst);
        if self.descendants.is_empty() {
            self.log_abandoned();
        }
    }

    fn log_abandoned(&self) {
        for failure in self.take_failures() {
            let error = match failure {
                Failure::Child(child) => child.take_failure(),
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
    fn fail(&self, failure: impl FnOnce(&mut Registry) -> Failure) {
        let victims = {
            let mut registry = self.registry.lock();
            let failure = failure(&mut registry);
            registry.failures.push(failure);
            if self.supervisor { None } else { registry.start_cancel(&CancelReason::SiblingFailed) }
        };
        self.finish_cancel(CancelReason::SiblingFailed, victims);
    }
}

impl Registry {
    /// Drops the children that ended well, once the list has doubled since the last sweep:
    /// amortised O(1) per spawn, and a long-lived scope holds at most about twice its live
    /// children. Failed children stay: their own end removes them.
    fn sweep_if_due(&mut self) -> Vec<Arc<dyn ScopeChild>> {
        if self.children.len() < self.sweep_at {
            return Vec::new();
        }
        let mut swept = Vec::new();
        let ended_well: Vec<usize> = self
            .children
            .iter()
            .filter(|(_, child)| {
                let header = child.header();
                header.is_done() && !header.kind().is_failure()
            })
            .map(|(key, _)| key)
            .collect();
        for key in ended_well {
            swept.push(self.children.remove(key));
        }
        self.sweep_at = (self.children.len() * 2).max(FIRST_SWEEP);
        swept
    }

    /// Marks the scope cancelled; the children to cancel, or `None` if it already was.
    fn start_cancel(&mut self, reason: &CancelReason) -> Option<Vec<Arc<dyn ScopeChild>>> {
        if self.cancelled.is_some() {
            return None;
        }
        self.cancelled = Some(reason.clone());
        Some(self.children.iter().map(|(_, child)| child.clone()).collect())
    }
}

/// Held by a child's runner: reports the child's failure and its end to its scope.
pub(crate) struct ChildLink<E> {
    scope: Arc<ScopeShared>,
    key: usize,
    error: PhantomData<fn(E)>,
}

impl<E: Send + 'static> ParentLink<E> for ChildLink<E> {
    /// Before the output is published: a failed child fails its scope first.
    fn before_publish(&self, kind: Kind) {
        if kind.is_failure() {
            self.scope.child_failed(self.key);
        }
    }

    /// The body failed after a cancel had decided its outcome.
    fn raced(&self, id: TaskId, error: TaskError<E>) {
        // The child is still listed: it leaves the list once it has published its output.
        let child = self.scope.registry.lock().children.get(self.key).cloned();
        let child = child.expect("a child is listed until its end");
        let error = child.raced_error(Box::new(error));
        tracing::warn!(task.id = id.as_u64(), error = %WithCauses(&error), "a child failed after it was cancelled; its scope reports the failure");
        self.scope.child_raced(error);
    }

    /// After the output is published: the child has ended.
    fn ended(self) {
        let last = self.scope.descendants.ended();
        if last && self.scope.abandoned.load(Ordering::SeqCst) {
            self.scope.log_abandoned();
        }
    }
}
