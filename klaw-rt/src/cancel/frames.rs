//! The cancel regions and shields being polled on this thread, innermost last: what
//! `is_cancelled()` asks, what a new shield holds up, and what a new region hears.
//!
//! Each frame is tagged with the task that pushed it, so a task polled inside another (a scope's
//! local child) sees only its own. Frames are pushed for the length of a closure ([`within`]),
//! so one can never be left behind. Only a shield, and a deadline found passed, look past its
//! task's frames: what encloses a local child's scope drops the child with it, so the shield
//! holds that too, and a deadline there that passed first catches before the child's own.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use crate::cancel::{RegionState, parent_region};
use crate::task::CancelReason;
use crate::task::core::{Header, HeaderRef};
use crate::task::current;

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// True once this thread's frames were destroyed (at its end).
pub(crate) fn destroyed() -> bool {
    FRAMES.try_with(|_| ()).is_err()
}

pub(crate) enum FrameKind {
    Region(Arc<RegionState>),
    Shield,
    /// A scope polling its local children, which are tasks of their own polled in its task's
    /// poll: see [`LocalChildrenMark`].
    LocalChildren(LocalChildrenMark),
    /// One of klaw's blocking helpers (`block_on`, `send_blocking`...) polls its own future
    /// here, outside any task (`poller::outside_tasks`). Nothing around the call reaches in:
    /// neither the regions nor the task it is called from cancel what the helper polls, nor
    /// does a shield in it hold them. A region or scope in there that took an enclosing
    /// cancellation for its own would wait to be dropped, which nothing does while the helper
    /// blocks its thread: a bounded last step (`block_on(move_on_after(..))`) in a cancelled
    /// task's destructor or blocking closure would never return. (The model checker's runs use
    /// no blocking helper.)
    #[cfg_attr(klaw_loom, allow(dead_code))]
    Blocking,
}

/// What a local child's code needs of the scope that polls it, and of that scope's task: the
/// task, for a shield in a child to hold (see [`shield_targets`]); and the scope's region and the
/// task's deadline, which a region in a child that finds its own deadline passed compares (see
/// [`expire_enclosing`]). The scope's region is no frame while it polls its children.
pub(crate) struct LocalChildrenMark {
    pub(crate) task: Option<HeaderRef>,
    pub(crate) scope: Arc<RegionState>,
    pub(crate) task_deadline: Option<Instant>,
    /// Whether that task is polled (see `task_drops_it`): a cancelled one drops the scope then.
    pub(crate) task_drops: bool,
    /// The region of that task's own scope, if it is a scope's child (see `parent_region`).
    pub(crate) parent_region: Option<Arc<RegionState>>,
}

struct Frame {
    task: *const (),
    kind: FrameKind,
}

/// Runs `f` inside a frame: a region or a shield polling what it runs, or a scope polling its
/// local children.
pub(crate) fn within<R>(kind: FrameKind, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            // Drop the frame outside the borrow: its `Arc` may be the last one.
            let frame = FRAMES.with(|frames| frames.borrow_mut().pop());
            drop(frame);
        }
    }
    let task = current::tag();
    FRAMES.with(|frames| frames.borrow_mut().push(Frame { task, kind }));
    let _pop = Pop;
    f()
}

/// The frames the current task pushed on this thread, innermost first (a scope's mark where it
/// polls local children is its task's, not the children's, and says nothing of cancellation).
fn own_frames(frames: &[Frame]) -> impl Iterator<Item = &FrameKind> {
    let tag = current::tag();
    frames
        .iter()
        .rev()
        .take_while(move |frame| frame.task == tag)
        .map(|frame| &frame.kind)
        .filter(|kind| !matches!(kind, FrameKind::LocalChildren(_)))
}

/// Asks the cancellation state around the code running now: `region` of each enclosing region
/// of this task, innermost first, until one says yes or a shield says no; then `task` of the
/// task itself. False outside any task.
fn around_here(region: impl Fn(&RegionState) -> bool, task: impl FnOnce(&Header) -> bool) -> bool {
    let from_frames = FRAMES.with(|frames| {
        for frame in own_frames(&frames.borrow()) {
            match frame {
                FrameKind::Region(state) if region(state) => return Some(true),
                FrameKind::Region(_) | FrameKind::LocalChildren(_) => {}
                FrameKind::Shield | FrameKind::Blocking => return Some(false),
            }
        }
        None
    });
    from_frames.unwrap_or_else(|| current::with_current(task).unwrap_or(false))
}

/// True if something enclosing the code polled now, in this task and up to the nearest shield,
/// has decided to stop: a region cancelled on its own account, or the task itself, whether or
/// not a shield holds it open for now. A region (or scope) whose own cancellation lands while
/// one enclosing it also stops does not return: the outermost cancelled one catches the
/// cancellation, and no code between the two runs on, also while a shield elsewhere (a local
/// child's, a sibling branch's) holds the outer one open.
pub(crate) fn enclosing_stopping() -> bool {
    around_here(RegionState::stopping, |task| task_drops_it() && task.is_cancelled())
}

/// Whether the current task would drop the code polled now when it stops. A task stops by
/// dropping its body after a poll; in a blocking task's closure (or a body's destructor run
/// outside a poll) nothing of the task is polled, so what is polled there runs under a blocking
/// helper that is no klaw frame (a foreign executor's `block_on`; klaw's own push
/// [`FrameKind::Blocking`]), which nothing drops while it blocks the thread. A region or scope
/// there that waited to be dropped because the task is cancelled would never return.
fn task_drops_it() -> bool {
    current::task_is_polled()
}

/// True if something enclosing the code polled now has decided to stop but a shield holds it
/// open for now ([`enclosing_stopping`], and nothing must drop the code yet). Meanwhile what
/// runs outside that shield must not run on: a region in it stops polling its future, and a
/// scope in it cancels its children and drops its body. (Once nothing holds it, what encloses
/// the code drops it at the end of this poll: code runs on until its next `.await`, as in
/// trio until its next checkpoint.)
pub(crate) fn enclosing_held() -> bool {
    enclosing_stopping() && !enclosing_must_stop()
}

/// True if something enclosing the code polled now, in this task and up to the nearest shield,
/// is about to drop it: a region cancelled on its own account, or the task itself, with no
/// shield holding it open.
pub(crate) fn enclosing_must_stop() -> bool {
    around_here(RegionState::must_stop, |task| {
        task_drops_it() && task.is_cancelled() && !task.is_shielded()
    })
}

/// A scope polled now returns failures, having seen nothing around it stopping
/// ([`enclosing_stopping`] was false): each region of this task around it takes its completion
/// in this poll as coming before any cancel that lands meanwhile, so the failures are not
/// dropped with it. Past shields too: a region beyond a shield may have been cancelled long
/// before, but the scope could not see it (the shield held it off), so, as in trio, where a
/// cancel scope catches only its own `Cancelled`, the failures go through it to the code around.
pub(crate) fn claim_completion() {
    FRAMES.with(|frames| {
        for frame in own_frames(&frames.borrow()) {
            match frame {
                FrameKind::Region(state) => state.claim_completion(),
                FrameKind::Blocking => break,
                FrameKind::Shield | FrameKind::LocalChildren(_) => {}
            }
        }
    });
}

/// A region or scope polled now found its own `deadline` passed (or a task its own timeout: it
/// walks as the task, outside its own timeout): each region around it, up to
/// the nearest shield, whose deadline passed no later (and so first, or with it) is cancelled
/// now, as its own timer would have when next polled; and so is a task's own timeout. So the
/// outermost catches it and the code between does not run on, however long the code ran without
/// a look at a timer. Past the code's own task too: in a scope's local child, the scope's own
/// deadline, the regions around the scope and the timeout of the task that runs it enclose the
/// child (their timers are not polled while the child computes). If one of those passed, the
/// local children in between are cancelled at once, as the scope's next poll would: their
/// region must not return into their body meanwhile. Past the outermost task's frames too, for a
/// scope's parallel or blocking child: its scope's region and the regions that one hears
/// (`parent_region`); one that passed, or stops already, cancels the child as the scope would.
pub(crate) fn expire_enclosing(deadline: Instant) {
    let mut passed = Vec::new();
    // The local children walked past (`None`: the current task), innermost first, each with how
    // it ends now; and whether the outermost task's own timeout passed.
    let mut inner: Vec<(Option<HeaderRef>, Ending)> = Vec::new();
    let mut outermost_timed_out = None;
    // Or: what its scope catches it with.
    let mut outermost_cancelled: Option<(Option<HeaderRef>, CancelReason)> = None;
    // Something beyond the children walked so far catches: each is cancelled (a timeout of its
    // own that passed too is inside what catches, and loses to it).
    let stop_inner = |inner: &mut Vec<(Option<HeaderRef>, Ending)>| {
        for (_, ending) in inner.iter_mut() {
            if !matches!(ending, Ending::Cancelled(_)) {
                *ending = Ending::Cancelled(CancelReason::ParentCancelled);
            }
        }
    };
    FRAMES.with(|frames| {
        // The task whose frames are walked now: the current one, then, past each scope polling
        // its local children, the task that polls that scope.
        let mut tag = current::tag();
        let mut task: Option<HeaderRef> = None;
        let mut task_deadline = if task_drops_it() { current::task_deadline() } else { None };
        let passed_by =
            |task_deadline: Option<Instant>| task_deadline.is_some_and(|at| at <= deadline);
        // A task walked past (not the current one) that is cancelled, with no shield between:
        // it drops the scopes it polls, and so the local children walked past.
        let mut task_drops = false;
        // The region of that task's scope, for a scope's child: its scope's deadline, and those
        // of the regions around the scope, enclose the task though no frame here says so.
        let mut parent = parent_region::get();
        let cancelled = |task: &Option<HeaderRef>, drops: bool| {
            drops && task.as_ref().is_some_and(|t| t.header().is_cancelled())
        };
        for frame in frames.borrow().iter().rev() {
            if frame.task != tag {
                let FrameKind::LocalChildren(mark) = &frame.kind else { break };
                let timed_out = passed_by(task_deadline);
                if timed_out || cancelled(&task, task_drops) {
                    stop_inner(&mut inner);
                }
                let ending = if timed_out { Ending::TimedOut } else { Ending::Runs };
                inner.push((task.take(), ending));
                // The scope stops already (a sibling found its deadline passed, say) and cancels
                // its children at its next poll, or its deadline passed now: the child walked
                // past is cancelled as the scope cancels it, and must not run on meanwhile.
                let caught = if mark.scope.stopping() {
                    Some(mark.scope.own_reason().cloned().unwrap_or(CancelReason::ParentCancelled))
                } else if mark.scope.deadline_by(deadline) {
                    passed.push(mark.scope.clone());
                    Some(CancelReason::Deadline)
                } else {
                    None
                };
                if let Some(reason) = caught {
                    if let Some((_, ending)) = inner.last_mut() {
                        *ending = Ending::Cancelled(reason);
                    }
                    stop_inner(&mut inner);
                }
                // The task polling the scope is being polled: it drops what it polls.
                (tag, task, task_deadline, task_drops) =
                    (frame.task, mark.task.clone(), mark.task_deadline, mark.task_drops);
                parent = mark.parent_region.clone();
                continue;
            }
            match &frame.kind {
                // Stopping already (its deadline found by a sibling child, its token cancelled):
                // the local children walked past stop too, as the scope polling them would
                // cancel them at its next poll.
                FrameKind::Region(state) if state.stopping() => stop_inner(&mut inner),
                FrameKind::Region(state) if state.deadline_by(deadline) => {
                    passed.push(state.clone());
                    stop_inner(&mut inner);
                }
                FrameKind::Region(_) | FrameKind::LocalChildren(_) => {}
                FrameKind::Shield | FrameKind::Blocking => return,
            }
        }
        if cancelled(&task, task_drops) {
            stop_inner(&mut inner);
        }
        // The scope the outermost task is a child of, and the regions around that scope, enclose
        // it and its own timeout: one that passed, or that stops already, catches it.
        let (beyond, caught) = match parent.take() {
            Some(region) => region.passed_around(deadline),
            None => (Vec::new(), None),
        };
        if let Some(reason) = caught {
            // The local children walked past stop only if that task drops what it polls (not
            // under a blocking helper in its closure, which nothing drops).
            if task_drops {
                stop_inner(&mut inner);
            }
            outermost_cancelled = Some((task, reason));
            passed.extend(beyond);
            return;
        }
        // The task's own timeout is the outermost of all.
        if passed_by(task_deadline) {
            outermost_timed_out = Some(task);
            stop_inner(&mut inner);
        }
    });
    // Outside the frames' borrow: a cancel tells the tokens that hear the region.
    for state in passed {
        state.expire();
    }
    let cancel = |task: Option<HeaderRef>, reason: CancelReason| {
        match task {
            Some(task) => drop(task.cancel(reason)),
            None => match current::current_ref() {
                Some(task) => drop(task.cancel(reason)),
                // Not polled (its own timeout is being looked at): its runner acts on it next.
                None => drop(current::with_current(|task| task.cancel(reason))),
            },
        }
    };
    if let Some((task, reason)) = outermost_cancelled {
        cancel(task, reason);
    }
    let time_out = |task: Option<HeaderRef>| match task {
        Some(task) => drop(task.header().time_out()),
        None => drop(current::with_current(Header::time_out)),
    };
    if let Some(task) = outermost_timed_out {
        time_out(task);
    }
    for (task, ending) in inner {
        match ending {
            Ending::Runs => {}
            Ending::TimedOut => time_out(task),
            Ending::Cancelled(reason) => cancel(task, reason),
        }
    }
}

/// How [`expire_enclosing`] ends a local child it walked past.
enum Ending {
    /// Nothing around it that passed reaches it.
    Runs,
    /// Its own timeout passed, and nothing beyond it did.
    TimedOut,
    /// Something beyond it caught.
    Cancelled(CancelReason),
}

/// What a region that starts here hears: the innermost enclosing region of this task, or else
/// the task itself; nothing past a shield (a shield keeps outer cancellations out).
pub(crate) enum Enclosing {
    Region(Arc<RegionState>),
    Task(HeaderRef),
    Nothing,
}

pub(crate) fn enclosing() -> Enclosing {
    let innermost = FRAMES.with(|frames| {
        own_frames(&frames.borrow()).next().map(|frame| match frame {
            FrameKind::Region(region) => Some(region.clone()),
            FrameKind::Shield | FrameKind::LocalChildren(_) | FrameKind::Blocking => None,
        })
    });
    match innermost {
        Some(Some(region)) => Enclosing::Region(region),
        Some(None) => Enclosing::Nothing,
        None => current::current_ref().map_or(Enclosing::Nothing, Enclosing::Task),
    }
}

/// True if a scope opening here is under a shield: one around it in the current task (in its
/// poll, or around a call of one of klaw's blocking helpers there, which runs what it polls to
/// its end whatever happens around it, as the shield does), or one that holds the task itself
/// (the task is a child of a scope under a shield, or a blocking task awaited there). A runtime's
/// shutdown leaves such a scope's children to the cancel of the task above the shield, which the
/// shield holds, rather than cancelling them directly (see `ShutdownPhase`), as a cancel of that
/// task through its handle leaves them. Outside any task nothing is under a shield: nothing
/// there is cancelled but by the shutdown itself.
pub(crate) fn scope_under_shield() -> bool {
    if current::tag().is_null() {
        return false;
    }
    let in_shield = FRAMES.with(|frames| {
        own_frames(&frames.borrow()).any(|frame| matches!(frame, FrameKind::Shield))
    });
    in_shield || current::with_current(Header::under_shield).unwrap_or(false)
}

/// What a new shield must hold up: the cancel regions it is inside and the task itself, and, in
/// a scope's local child, what encloses the scope in the task that polls the child (its regions
/// and that task, and so on out), since any of them dropping the scope drops the child with
/// it. Up to the nearest enclosing shield, which holds what is beyond.
pub(crate) fn shield_targets() -> (Vec<Arc<RegionState>>, Vec<HeaderRef>) {
    let mut tasks = Vec::new();
    let mut inside_blocking_helper = false;
    let regions = FRAMES.with(|frames| {
        let mut regions = Vec::new();
        for frame in frames.borrow().iter().rev() {
            match &frame.kind {
                FrameKind::Region(region) => regions.push(region.clone()),
                FrameKind::LocalChildren(mark) => tasks.extend(mark.task.clone()),
                FrameKind::Shield => break,
                // The frames below belong to the code that called the helper; so does the task,
                // if it is the one that called it (a scope's local child polled inside the
                // helper is a task of its own, which its shield holds).
                FrameKind::Blocking => {
                    inside_blocking_helper = frame.task == current::tag();
                    break;
                }
            }
        }
        regions
    });
    if !inside_blocking_helper {
        tasks.extend(current::current_ref());
    }
    (regions, tasks)
}

/// True if the code running on this thread has been cancelled: an enclosing cancel region (up to
/// the nearest shield) was cancelled, or, with no shield in between, its task was. A deadline
/// there that has passed counts (a region's, a scope's, the task's timeout): asking cancels, as
/// the deadline's timer would have at the next `.await`.
///
/// Async code is stopped at its next `.await` when cancelled; blocking and CPU-bound code cannot
/// be, so it should check this between steps and return early. Outside any task and any region
/// it is `false` (a region in a `block_on` is one); and in what one of klaw's blocking helpers
/// (`block_on`...) runs inside a task, the task and the regions around the call do not count:
/// that is outside the task, and a cancellation around the call does not reach in.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let handle = rt.spawn_blocking(|| {
///     let mut steps = 0u64;
///     while !klaw::cancel::is_cancelled() {
///         steps += 1;
///         std::thread::sleep(std::time::Duration::from_millis(1));
///     }
///     steps
/// });
/// std::thread::sleep(std::time::Duration::from_millis(20));
/// handle.cancel("enough");
/// assert!(rt.block_on(handle).is_err()); // cancelled: the steps are discarded
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
pub fn is_cancelled() -> bool {
    // A deadline around here (a region's, a scope's, the task's own timeout) that passed while
    // the code computed without an `.await` cancels now, as its timer would have at the next
    // poll: a loop that asks, and never awaits, stops at a deadline too (trio's `cancel_called`
    // and a Kotlin `isActive` under `withTimeout` say so as well).
    cancelled_here()
        || (deadlines_may_enclose() && {
            expire_enclosing(crate::time::now());
            cancelled_here()
        })
}

/// False where no deadline can enclose the code (no task, no region): the clock is not read.
fn deadlines_may_enclose() -> bool {
    !current::tag().is_null() || FRAMES.with(|frames| !frames.borrow().is_empty())
}

/// [`is_cancelled`], as the cancels that reached here say.
fn cancelled_here() -> bool {
    // A task on a worker whose runtime's shutdown cancels it is cancelled, though the shutdown
    // may not have reached it yet (it does at the task's next poll, or here): seeing it cancels
    // the task, so that what it returns now loses to the cancellation, as after any cancel it saw.
    around_here(RegionState::is_cancelled, |task| {
        task.is_cancelled()
            || (current::runtime_shutdown_cancels(task) && {
                task.cancel(CancelReason::Shutdown);
                true
            })
    })
}
