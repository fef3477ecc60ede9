//! A concurrency limit for the children of one scope: at most `n` run at once, and the rest wait
//! in spawn order *without being started*. A waiting child is its runner in a queue (its body,
//! its task core for the handle, nothing on any executor or pool), so a million waiting children
//! cost their futures and their handles' state, not a million scheduled tasks.
//!
//! Invariants:
//! - `running` counts the slots handed out; a slot is given back when the child that holds it
//!   has ended (its runner is dropped after publishing), and the next waiting child starts then.
//! - While anyone waits, every slot is taken: a release always starts the next child that can
//!   still run, skipping (and ending, unstarted) the cancelled ones.
//! - Children start in spawn order: a child admitted while others wait, or while a release is
//!   starting waiting children, waits behind them.
//! - A waiting child whose task was cancelled never starts: it ends, unstarted, when it reaches
//!   the front, when its handle is polled ([`Limit::end_cancelled`]; a handle already awaited
//!   left a cancel hook that wakes its awaiter, since a waiting child has no runner for a cancel
//!   to wake), or at once when the whole scope is cancelled ([`Limit::close`]).
//! - Nothing is dropped, started or woken under the lock: a runner's drop runs user code (the
//!   body's destructors) and reports to the scope.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crate::runtime::Handle;
use crate::sync::Mutex;
use crate::task::CancelReason;
use crate::task::core::Header;
use crate::task::state::Kind;

/// A child kept until a slot frees: it starts on the runtime with the slot it is given.
pub(crate) trait Deferred: Send + 'static {
    /// The child's task, to see whether it was cancelled while it waited.
    fn header(&self) -> &Header;
    /// Hands the child to its executor or pool; it gives `slot` back when it has ended.
    fn start(self: Box<Self>, limit: &Limit, slot: Slot);
    /// Ends the child without starting it: its handle resolves (cancelled), its scope and the
    /// runtime count its end. Called outside the lock: this drops the body.
    fn end_unstarted(self: Box<Self>, limit: &Limit);
}

/// At most `limit` children of one scope run at once.
pub(crate) struct Limit {
    limit: usize,
    runtime: Handle,
    /// The scope's name, for the spans of children made when they start.
    scope_name: Option<Cow<'static, str>>,
    state: Mutex<State>,
}

struct State {
    running: usize,
    waiting: VecDeque<Box<dyn Deferred>>,
    /// The scope was cancelled (why): nothing waits any more, and a child admitted later is
    /// cancelled too and ends unstarted.
    closed: Option<CancelReason>,
    /// Some thread is starting waiting children. A slot given back meanwhile (on any thread,
    /// also by a child that could not start because the runtime is gone) only lowers
    /// `running`: that thread's loop sees it. So starting never recurses, however long the queue.
    starting: bool,
}

/// Clears `starting` if [`Limit::release`]'s loop unwinds while it is the loop's (`armed`).
struct StartingGuard<'a> {
    limit: &'a Limit,
    armed: bool,
}

impl Drop for StartingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.limit.state.lock().starting = false;
        }
    }
}

/// A running child's place under the limit; dropping it lets the next waiting child start.
pub(crate) struct Slot(Arc<Limit>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Slot")
    }
}

/// Whether a child may start now.
pub(crate) enum Admission<C> {
    /// It holds `Slot` and starts now.
    Now(C, Slot),
    /// It waits (or, its scope being cancelled, has ended unstarted).
    Later,
}

impl Limit {
    /// A limit of `limit` (at least 1) on the children of the scope `scope_name`, which start on
    /// `runtime`.
    pub(crate) fn new(
        limit: usize,
        runtime: Handle,
        scope_name: Option<Cow<'static, str>>,
    ) -> Arc<Self> {
        assert!(limit > 0, "a scope's limit must be at least 1");
        let state = State { running: 0, waiting: VecDeque::new(), closed: None, starting: false };
        Arc::new(Limit { limit, runtime, scope_name, state: Mutex::new(state) })
    }

    /// How many children may run at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The runtime the children start on.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// The scope's name.
    pub(crate) fn scope_name(&self) -> Option<&str> {
        self.scope_name.as_deref()
    }

    /// A slot for `child` if one is free; otherwise `child` waits its turn, in spawn order.
    pub(crate) fn admit<C: Deferred>(self: &Arc<Self>, child: C) -> Admission<C> {
        let mut state = self.state.lock();
        if let Some(reason) = state.closed.clone() {
            drop(state);
            // Its scope was cancelled: so is it, and it ends unstarted (outside the lock).
            child.header().cancel(reason);
            Box::new(child).end_unstarted(self);
            return Admission::Later;
        }
        // A free slot is this child's only if nobody waits for one, and no release is between
        // giving a slot back and starting the next waiting child with it (`starting`): else the
        // newest child would start ahead of those already in line.
        if state.running < self.limit && state.waiting.is_empty() && !state.starting {
            state.running += 1;
            return Admission::Now(child, Slot(self.clone()));
        }
        state.waiting.push_back(Box::new(child));
        Admission::Later
    }

    /// A running child ended: waiting children that can still run take the free slots.
    fn release(self: &Arc<Self>) {
        {
            let mut state = self.state.lock();
            state.running -= 1;
            if state.starting {
                return; // the thread that is starting children sees this slot
            }
            state.starting = true;
        }
        // Should a child's start or end unwind (they run a task's bookkeeping, and drop what it
        // leaves), `starting` is cleared, so the next release starts waiting children again and a
        // child admitted later does not wait behind a loop that is gone.
        let mut unwinding = StartingGuard { limit: self, armed: true };
        loop {
            let mut ended = Vec::new();
            let next = {
                let mut state = self.state.lock();
                let mut next = None;
                while state.running < self.limit {
                    let Some(child) = state.waiting.pop_front() else { break };
                    if child.header().kind() == Kind::Pending {
                        state.running += 1;
                        next = Some(child);
                        break;
                    }
                    ended.push(child); // cancelled while it waited: it never starts
                }
                if next.is_none() {
                    state.starting = false;
                    unwinding.armed = false; // cleared here; another release may set it again
                }
                next
            };
            self.end_all(ended);
            match next {
                Some(child) => child.start(self, Slot(self.clone())),
                None => return,
            }
        }
    }

    /// The scope was cancelled: every waiting child is cancelled with `reason` and ends
    /// unstarted, now; a child admitted from now on too.
    pub(crate) fn close(&self, reason: &CancelReason) {
        let waiting = {
            let mut state = self.state.lock();
            state.closed = Some(reason.clone());
            std::mem::take(&mut state.waiting)
        };
        for child in &waiting {
            child.header().cancel(reason.clone());
        }
        self.end_all(waiting);
    }

    fn end_all(&self, children: impl IntoIterator<Item = Box<dyn Deferred>>) {
        for child in children {
            child.end_unstarted(self);
        }
    }

    /// Ends, unstarted, the waiting children that were cancelled one by one (their handles'
    /// `cancel`): called when such a handle is polled, so awaiting it does not wait for a slot.
    pub(crate) fn end_cancelled(&self) {
        let mut ended = Vec::new();
        {
            let mut state = self.state.lock();
            let capacity = state.waiting.len();
            let waiting = std::mem::replace(&mut state.waiting, VecDeque::with_capacity(capacity));
            for child in waiting {
                if child.header().kind() == Kind::Pending {
                    state.waiting.push_back(child);
                } else {
                    ended.push(child);
                }
            }
        }
        self.end_all(ended);
    }

    /// How many children run now, and how many wait.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.running, state.waiting.len())
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        // Its scope waits for every child, so nothing is left here; if something were, its
        // handle must still resolve.
        let waiting = std::mem::take(&mut self.state.lock().waiting);
        self.end_all(waiting);
    }
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (running, waiting) = self.counts();
        f.debug_struct("Limit")
            .field("limit", &self.limit)
            .field("running", &running)
            .field("waiting", &waiting)
            .finish()
    }
}
