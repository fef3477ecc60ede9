//! The live tree of a runtime: every open scope with its children, and every task that waits,
//! each with its name, id, state and how long it has been waiting. A hung program is one
//! [`Runtime::dump`](crate::runtime::Runtime::dump) away from an explanation; a
//! `#[klaw::test(timeout)]` that expires prints it.
//!
//! The runtime knows its waiting tasks (the shutdown list, with when each first waited) and its
//! open scopes (each registers a [`ScopeView`] for as long as it is open, and knows the task it
//! runs in and its children); the tree is built from those two lists when asked, so nothing is
//! paid for it while nobody asks.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use crate::task::core::HeaderRef;
use crate::task::{CancelReason, ExitReason, TaskId};

/// An open scope as a dump shows it.
pub(crate) trait ScopeView: Send + Sync {
    /// What the scope is doing now; `None` once it is gone (dropped before it returned, and
    /// every child it started has ended).
    fn snapshot(&self) -> Option<ScopeSnapshot>;
}

/// What a scope is doing now.
pub(crate) struct ScopeSnapshot {
    pub(crate) name: Option<String>,
    /// The task the scope runs in (`None`: a thread's `block_on`).
    pub(crate) owner: Option<TaskId>,
    pub(crate) opened: Instant,
    pub(crate) children: Vec<ChildSnapshot>,
    /// Children waiting for a slot of the limit (not tasks yet), and the limit.
    pub(crate) waiting: Option<(usize, usize)>,
    pub(crate) cancelled: Option<CancelReason>,
    /// Dropped before it returned (what enclosed it was cancelled): shown while its children
    /// end, under the task that dropped it.
    pub(crate) dropped: bool,
}

/// One child of a scope, as a dump shows it.
pub(crate) struct ChildSnapshot {
    pub(crate) id: TaskId,
    pub(crate) name: Option<String>,
    pub(crate) started: bool,
    /// The body is gone and the outcome published. A child whose outcome is decided (cancelled,
    /// failed) may still be running (a shield, descendants of a scope its body dropped): it has
    /// not ended until this.
    pub(crate) ended: bool,
    pub(crate) state: ExitReason,
    pub(crate) cancel_reason: Option<CancelReason>,
    pub(crate) background: bool,
}

/// The tree of everything a runtime runs right now: open scopes, their children, and the tasks
/// that wait, each with its name, id, state, and how long it has waited. Its `Display` is an
/// indented tree, one line per scope or task.
///
/// ```
/// # #[klaw::main(workers = 2)]
/// # async fn main() -> Result<(), klaw::Error> {
/// let (tx, rx) = klaw::channel::bounded::<u32>(1);
/// let result = klaw::scope!(name = "pipeline", timeout = "50ms", |s| {
///     s.spawn(klaw::Task::new(async move { rx.recv().await }).name("consumer"));
///     klaw::time::sleep(std::time::Duration::from_millis(10)).await;
///     let tree = klaw::Handle::current()?.dump().to_string();
///     assert!(tree.contains("scope `pipeline`"), "{tree}");
///     assert!(tree.contains("task `consumer`"), "{tree}");
///     drop(tx); // the forgotten drop the tree would point at
///     Ok(())
/// });
/// assert!(result.is_ok());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeDump {
    text: String,
}

impl RuntimeDump {
    pub(crate) fn new(
        live_tasks: usize,
        waiting: HashMap<TaskId, (HeaderRef, Instant)>,
        scopes: Vec<ScopeSnapshot>,
    ) -> Self {
        // The scopes each task runs, oldest first: looked up once per task shown, so a tree of
        // many tasks that each run a scope is not a scan of every scope per task.
        let mut owned: HashMap<TaskId, Vec<usize>> = HashMap::new();
        for (i, scope) in scopes.iter().enumerate() {
            if let Some(owner) = scope.owner {
                owned.entry(owner).or_default().push(i);
            }
        }
        for list in owned.values_mut() {
            list.sort_by_key(|&i| scopes[i].opened);
        }
        let written = vec![false; scopes.len()];
        Builder {
            now: Instant::now(),
            waiting,
            scopes,
            text: String::new(),
            shown: HashSet::new(),
            owned,
            written,
            stack: Vec::new(),
        }
        .build(live_tasks)
    }
}

impl fmt::Display for RuntimeDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A line still to write, with what nests under it.
enum Item {
    Scope { index: usize, depth: usize },
    Task { id: TaskId, name: Option<String>, state: String, background: bool, depth: usize },
}

struct Builder {
    now: Instant,
    waiting: HashMap<TaskId, (HeaderRef, Instant)>,
    scopes: Vec<ScopeSnapshot>,
    text: String,
    shown: HashSet<TaskId>,
    /// The scopes each task runs, oldest first; taken out when the task is written.
    owned: HashMap<TaskId, Vec<usize>>,
    /// Which scopes are written: each once.
    written: Vec<bool>,
    /// What is left to write, next on top. A stack, not recursion: a recursive job nests a task
    /// and a scope per level, and its tree is written whole however deep it goes.
    stack: Vec<Item>,
}

impl Builder {
    fn build(mut self, live_tasks: usize) -> RuntimeDump {
        let children: HashSet<TaskId> =
            self.scopes.iter().flat_map(|scope| scope.children.iter().map(|c| c.id)).collect();
        let _ = writeln!(
            self.text,
            "klaw runtime: {live_tasks} live tasks, {} waiting, {} open scopes",
            self.waiting.len(),
            self.scopes.len()
        );
        // Roots: scopes run by a thread (`block_on`) or by a task nobody else shows, then tasks
        // that are nobody's child (spawned on the runtime itself).
        let mut roots: Vec<usize> = (0..self.scopes.len())
            .filter(|&i| match self.scopes[i].owner {
                None => true,
                Some(owner) => !children.contains(&owner) && !self.waiting.contains_key(&owner),
            })
            .collect();
        roots.sort_by_key(|&i| self.scopes[i].opened);
        for i in roots {
            self.root(i);
        }
        let mut loose: Vec<TaskId> =
            self.waiting.keys().copied().filter(|id| !children.contains(id)).collect();
        loose.sort();
        for id in loose {
            let (task, _) = &self.waiting[&id];
            let header = task.header();
            let name = header.name().map(str::to_owned);
            let state = describe(header.has_started(), header.exit_reason(), None);
            self.write(Item::Task { id, name, state, background: false, depth: 0 });
        }
        // Scopes are snapshot one at a time: a scope's owner may have ended (and left its
        // parent's snapshot) after the scope's own was taken. The scope was open when seen, so
        // it is shown, as a root, rather than counted in the header and left out.
        let mut unreached: Vec<usize> =
            (0..self.scopes.len()).filter(|&i| !self.written[i]).collect();
        unreached.sort_by_key(|&i| self.scopes[i].opened);
        for i in unreached {
            self.root(i);
        }
        RuntimeDump { text: self.text }
    }

    /// A scope whose owner is shown nowhere else: its owner's line, then the owner's scopes.
    fn root(&mut self, index: usize) {
        if self.written[index] {
            return; // its owner's line came with an older scope of the same task
        }
        match self.scopes[index].owner {
            None => {
                self.line(0, "block_on (a thread, not a task)");
                self.write(Item::Scope { index, depth: 1 });
            }
            Some(owner) => {
                self.line(0, &format!("task {owner}"));
                let owned = self.owned.remove(&owner).unwrap_or_default();
                self.stack
                    .extend(owned.into_iter().rev().map(|index| Item::Scope { index, depth: 1 }));
                self.write_stack();
            }
        }
    }

    fn write(&mut self, item: Item) {
        self.stack.push(item);
        self.write_stack();
    }

    fn write_stack(&mut self) {
        while let Some(item) = self.stack.pop() {
            match item {
                Item::Scope { index, depth } => self.scope(index, depth),
                Item::Task { id, name, state, background, depth } => {
                    self.task(id, name.as_deref(), &state, background, depth)
                }
            }
        }
    }

    fn line(&mut self, depth: usize, text: &str) {
        let _ = writeln!(self.text, "{:indent$}{text}", "", indent = depth * 2);
    }

    /// Writes a scope's line and queues its children under it.
    fn scope(&mut self, index: usize, depth: usize) {
        if std::mem::replace(&mut self.written[index], true) {
            return;
        }
        let scope = &self.scopes[index];
        let mut line = match &scope.name {
            Some(name) => format!("scope `{name}`"),
            None => "scope".to_owned(),
        };
        let _ = write!(line, ", open {}", since(self.now, scope.opened));
        if scope.dropped {
            line.push_str(", dropped before it returned");
        }
        let live = scope.children.iter().filter(|c| !c.ended).count();
        let _ = write!(line, ", {live} children not ended");
        if let Some((waiting, limit)) = scope.waiting {
            let _ = write!(line, ", {waiting} waiting for a slot (limit {limit})");
        }
        if let Some(reason) = &scope.cancelled {
            let _ = write!(line, ", cancelled: {reason}");
        }
        let children: Vec<Item> = scope
            .children
            .iter()
            .filter(|c| !c.ended)
            .map(|c| Item::Task {
                id: c.id,
                name: c.name.clone(),
                state: describe(c.started, c.state, c.cancel_reason.as_ref()),
                background: c.background,
                depth: depth + 1,
            })
            .collect();
        self.line(depth, &line);
        self.stack.extend(children.into_iter().rev());
    }

    /// Writes a task's line (once) and queues the scopes it runs under it.
    fn task(
        &mut self,
        id: TaskId,
        name: Option<&str>,
        state: &str,
        background: bool,
        depth: usize,
    ) {
        if !self.shown.insert(id) {
            return;
        }
        let mut line = match name {
            Some(name) => format!("task `{name}` ({id})"),
            None => format!("task {id}"),
        };
        if background {
            line.push_str(" [background]");
        }
        let _ = write!(line, ": {state}");
        if let Some((_, first_wait)) = self.waiting.get(&id) {
            let _ = write!(line, ", first waited {}", since(self.now, *first_wait));
        }
        self.line(depth, &line);
        let owned = self.owned.remove(&id).unwrap_or_default();
        self.stack
            .extend(owned.into_iter().rev().map(|index| Item::Scope { index, depth: depth + 1 }));
    }
}

fn describe(started: bool, state: ExitReason, reason: Option<&CancelReason>) -> String {
    match (state, started, reason) {
        (ExitReason::Pending, false, _) => "not started".to_owned(),
        (ExitReason::Pending, true, _) => "started".to_owned(),
        (ExitReason::Cancelled, _, Some(reason)) => format!("cancelled ({reason}), ending"),
        (other, _, _) => format!("{other:?}, ending"),
    }
}

fn since(now: Instant, then: Instant) -> String {
    let elapsed = now.saturating_duration_since(then);
    format!("{:.1?} ago", Duration::from_millis(elapsed.as_millis() as u64))
}
