//! The children of one scope, shared between the scope and the threads its children end on.
//!
//! The invariant the loom model checks: a child registered while the scope is being cancelled is
//! cancelled, whichever of the two takes the lock first; and the scope sees every child end.
#![forbid(unsafe_code)]

use std::sync::Arc;

use slab::Slab;

use crate::BoxError;
use crate::cancel::RegionState;
use crate::error::{Error, TaskFailure};
use crate::sync::{AtomicUsize, Mutex, Ordering};
use crate::task::CancelReason;
use crate::task::core::{self, Header, TaskCore};
use crate::task::handle::TaskOutput;

/// A child as its scope sees it: its state, and its failure if no handle took it.
pub(crate) trait ScopeChild: Send + Sync {
    fn header(&self) -> &Header;
    /// The child's failure, unless its handle already took it (then the body has it).
    fn take_failure(&self) -> Option<Error>;
}

impl<T, E> ScopeChild for TaskCore<TaskOutput<T, E>>
where
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    fn header(&self) -> &Header {
        TaskCore::header(self)
    }

    fn take_failure(&self) -> Option<Error> {
        let error = self.take_unclaimed()?.err()?;
        Some(Error::Task(error.map_failed(|error| TaskFailure::new(error.into()))))
    }
}

/// Something that made the scope fail, in the order it happened.
pub(crate) enum Failure {
    Child(Arc<dyn ScopeChild>),
    /// The body returned `Err`; the driver holds the error.
    Body,
    /// The scope's own deadline passed.
    Deadline,
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
    /// Children registered and not yet ended.
    live: AtomicUsize,
    /// The body's cancel region: cancelled with the scope, woken when the last child ends.
    pub(crate) region: Arc<RegionState>,
    supervisor: bool,
}

fn lock(mutex: &Mutex<Registry>) -> impl std::ops::DerefMut<Target = Registry> + '_ {
    // Nothing user-supplied runs under this lock, so poisoning cannot leave it inconsistent.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
            live: AtomicUsize::new(0),
            region: Arc::default(),
            supervisor,
        })
    }

    /// Adds a child that no executor has seen yet. If the scope is cancelled, so is the child,
    /// before it can start.
    pub(crate) fn register(self: &Arc<Self>, child: Arc<dyn ScopeChild>) -> ChildLink {
        // Counted before anything can run it, so its end never precedes its start in `live`.
        self.live.fetch_add(1, Ordering::AcqRel);
        let (key, cancelled, swept) = {
            let mut registry = lock(&self.registry);
            let swept = registry.sweep_if_due();
            let key = registry.children.insert(child.clone());
            (key, registry.cancelled.clone(), swept)
        };
        drop(swept); // outside the lock: these may be the last references to their cores
        if let Some(reason) = cancelled {
            child.header().cancel(reason);
        }
        ChildLink { scope: self.clone(), key }
    }

    /// Cancels the body and every child; the first reason wins. `failure` is recorded in the
    /// same critical section, so failures are listed in the order they happened.
    pub(crate) fn cancel_all(&self, reason: CancelReason, failure: Option<Failure>) {
        let victims = {
            let mut registry = lock(&self.registry);
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

    /// True when every registered child has ended.
    pub(crate) fn is_empty(&self) -> bool {
        self.live.load(Ordering::Acquire) == 0
    }

    pub(crate) fn take_failures(&self) -> Vec<Failure> {
        std::mem::take(&mut lock(&self.registry).failures)
    }

    fn child_ended(&self, key: usize, kind: usize) {
        let failed = matches!(kind, core::ERROR | core::PANICKED | core::TIMED_OUT);
        let mut victims = None;
        if failed {
            // Recorded before `live` drops, so whoever sees the scope empty sees the failure.
            let mut registry = lock(&self.registry);
            let child = registry.children.remove(key);
            registry.failures.push(Failure::Child(child));
            if !self.supervisor {
                victims = registry.start_cancel(&CancelReason::SiblingFailed);
            }
        }
        self.finish_cancel(CancelReason::SiblingFailed, victims);
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.region.wake();
        }
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
                header.is_done()
                    && !matches!(header.kind(), core::ERROR | core::PANICKED | core::TIMED_OUT)
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

/// Held by a child's runner; reports the child's end to its scope exactly once.
pub(crate) struct ChildLink {
    scope: Arc<ScopeShared>,
    key: usize,
}

impl ChildLink {
    pub(crate) fn child_ended(self, kind: usize) {
        self.scope.child_ended(self.key, kind);
    }
}
