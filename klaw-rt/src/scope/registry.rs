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
use crate::sync::Mutex;
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

struct Registry {
    children: Slab<Arc<dyn ScopeChild>>,
    cancelled: Option<CancelReason>,
    failures: Vec<Failure>,
}

pub(crate) struct ScopeShared {
    registry: Mutex<Registry>,
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
                cancelled: None,
                failures: Vec::new(),
            }),
            region: Arc::default(),
            supervisor,
        })
    }

    /// Adds a child that no executor has seen yet. If the scope is cancelled, so is the child,
    /// before it can start.
    pub(crate) fn register(self: &Arc<Self>, child: Arc<dyn ScopeChild>) -> ChildLink {
        let (key, cancelled) = {
            let mut registry = lock(&self.registry);
            let key = registry.children.insert(child.clone());
            (key, registry.cancelled.clone())
        };
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

    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.registry).children.is_empty()
    }

    pub(crate) fn take_failures(&self) -> Vec<Failure> {
        std::mem::take(&mut lock(&self.registry).failures)
    }

    fn child_ended(&self, key: usize, kind: usize) {
        let failed = matches!(kind, core::ERROR | core::PANICKED | core::TIMED_OUT);
        // One critical section: whoever next sees the registry empty also sees this failure.
        let (ended, victims, now_empty) = {
            let mut registry = lock(&self.registry);
            let child = registry.children.remove(key);
            let mut victims = None;
            let ended = if failed {
                registry.failures.push(Failure::Child(child));
                if !self.supervisor {
                    victims = registry.start_cancel(&CancelReason::SiblingFailed);
                }
                None
            } else {
                Some(child)
            };
            (ended, victims, registry.children.is_empty())
        };
        drop(ended); // outside the lock: it may be the last reference to the core
        self.finish_cancel(CancelReason::SiblingFailed, victims);
        if now_empty {
            self.region.wake();
        }
    }
}

impl Registry {
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
