//! What is running on this thread: the current task, and the cancel regions and shields its
//! body is inside, so code deep inside it can ask whether it was cancelled.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::cancel::RegionState;
use crate::task::TaskId;
use crate::task::core::{CurrentTask, Header, HeaderRef};
use crate::task::descendants::Descendants;

type TaskPtr = NonNull<dyn CurrentTask>;

thread_local! {
    static CURRENT: Cell<Option<TaskPtr>> = const { Cell::new(None) };
    /// The innermost frame being polled (or dropping what it ran) on this thread: where a scope
    /// dropped here hands the children it still has.
    static ADOPTER: Cell<Option<NonNull<Adopter>>> = const { Cell::new(None) };
    /// The regions and shields being polled on this thread, innermost last. Each frame is tagged
    /// with the task that pushed it, so a task polled inside another (a scope's local child) sees
    /// only its own.
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Marks a task as current on this thread until dropped; restores the previous one (tasks nest:
/// a scope polls its local children inside its parent's poll).
pub(crate) struct EnterGuard<'a> {
    previous: Option<TaskPtr>,
    // The guard must not outlive the task it points to: borrowck checks it through this.
    task: PhantomData<&'a dyn CurrentTask>,
}

/// Makes `task` the current task until the guard drops.
#[inline]
pub(crate) fn enter<'a>(task: &'a (dyn CurrentTask + 'static)) -> EnterGuard<'a> {
    let previous = CURRENT.with(|current| current.replace(Some(NonNull::from(task))));
    EnterGuard { previous, task: PhantomData }
}

impl Drop for EnterGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.previous));
    }
}

fn with_current<R>(f: impl FnOnce(&dyn CurrentTask) -> R) -> Option<R> {
    let task = CURRENT.with(Cell::get)?;
    // SAFETY: the pointer was set by `enter` from a reference that outlives its guard (the
    // guard's lifetime ties them); the guard restores the previous value when it drops, and
    // guards nest strictly on one thread, so the pointee is alive here.
    Some(f(unsafe { task.as_ref() }))
}

fn current_tag() -> *const () {
    CURRENT.with(Cell::get).map_or(std::ptr::null(), |task| task.as_ptr().cast::<()>().cast_const())
}

pub(crate) enum FrameKind {
    Region(Arc<RegionState>),
    Shield,
}

struct Frame {
    task: *const (),
    kind: FrameKind,
}

/// Keeps a frame on this thread's stack while a region or shield polls its inner future.
pub(crate) struct FrameGuard(PhantomData<*const ()>);

pub(crate) fn push_frame(kind: FrameKind) -> FrameGuard {
    let task = current_tag();
    FRAMES.with(|frames| frames.borrow_mut().push(Frame { task, kind }));
    FrameGuard(PhantomData)
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        // Drop the frame outside the borrow: its `Arc` may be the last one.
        let frame = FRAMES.with(|frames| frames.borrow_mut().pop());
        drop(frame);
    }
}

/// The descendants a frame (a task runner, a cancel region, a scope) must outlive: created on
/// first use, since most frames never adopt anything.
#[derive(Default)]
pub(crate) struct Adopter(Cell<Option<Arc<Descendants>>>);

impl Adopter {
    /// A frame that adopts into `descendants` (a scope: its children's count).
    pub(crate) fn with(descendants: Arc<Descendants>) -> Self {
        Adopter(Cell::new(Some(descendants)))
    }

    fn descendants(&self) -> Arc<Descendants> {
        let descendants = self.0.take().unwrap_or_default();
        self.0.set(Some(descendants.clone()));
        descendants
    }

    /// What this frame must still wait for, if anything.
    #[inline]
    pub(crate) fn running(&self) -> Option<Arc<Descendants>> {
        let descendants = self.0.take()?;
        let running = (!descendants.is_empty()).then(|| descendants.clone());
        self.0.set(Some(descendants));
        running
    }

    /// Makes this frame the one a scope dropped on this thread hands its children to, until
    /// the guard drops.
    #[inline]
    pub(crate) fn enter(&self) -> AdoptGuard<'_> {
        let previous = ADOPTER.with(|adopter| adopter.replace(Some(NonNull::from(self))));
        AdoptGuard { previous, adopter: PhantomData }
    }
}

impl std::fmt::Debug for Adopter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = self.running();
        f.debug_struct("Adopter").field("running", &running).finish()
    }
}

/// Restores the previous adopter when dropped.
pub(crate) struct AdoptGuard<'a> {
    previous: Option<NonNull<Adopter>>,
    // The guard must not outlive the adopter it points to: borrowck checks it through this.
    adopter: PhantomData<&'a Adopter>,
}

impl Drop for AdoptGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        ADOPTER.with(|adopter| adopter.set(self.previous));
    }
}

/// A scope or region is going away while `descendants` still run: the innermost frame on this
/// thread waits for them instead. With no frame here (a plain `block_on`, a foreign executor),
/// this blocks until they have ended.
pub(crate) fn hand_over(descendants: &Arc<Descendants>) {
    if descendants.is_empty() {
        return;
    }
    match ADOPTER.with(Cell::get) {
        Some(adopter) => {
            // SAFETY: the pointer was set by `Adopter::enter` from a reference that outlives its
            // guard; guards restore the previous value when they drop and nest strictly on one
            // thread, so the adopter is alive here.
            let adopter = unsafe { adopter.as_ref() };
            let parent = adopter.descendants();
            debug_assert!(!Arc::ptr_eq(&parent, descendants), "a frame adopts its own children");
            descendants.then_parent(parent);
        }
        None => {
            tracing::debug!("a scope dropped outside any klaw task waits for its children");
            descendants.wait_blocking();
        }
    }
}

/// What a region that starts here hears: the innermost enclosing region of this task, or else
/// the task itself; nothing past a shield (a shield keeps outer cancellations out).
pub(crate) enum Enclosing {
    Region(Arc<RegionState>),
    Task(HeaderRef),
    Nothing,
}

pub(crate) fn enclosing() -> Enclosing {
    let task = current_tag();
    let innermost = FRAMES.with(|frames| {
        let frames = frames.borrow();
        let own = frames.iter().rev().take_while(|frame| frame.task == task);
        own.map(|frame| match &frame.kind {
            FrameKind::Region(region) => Some(region.clone()),
            FrameKind::Shield => None,
        })
        .next()
    });
    match innermost {
        Some(Some(region)) => Enclosing::Region(region),
        Some(None) => Enclosing::Nothing,
        None => with_current(|task| task.header_ref()).map_or(Enclosing::Nothing, Enclosing::Task),
    }
}

/// Asks the cancellation state around the code running now: `region` of each enclosing region
/// of this task, innermost first, until one says yes or a shield says no; then `task` of the
/// task itself. False outside any task.
fn around_here(region: impl Fn(&RegionState) -> bool, task: impl Fn(&Header) -> bool) -> bool {
    let tag = current_tag();
    let from_frames = FRAMES.with(|frames| {
        let frames = frames.borrow();
        for frame in frames.iter().rev().take_while(|frame| frame.task == tag) {
            match &frame.kind {
                FrameKind::Region(state) if region(state) => return Some(true),
                FrameKind::Region(_) => {}
                FrameKind::Shield => return Some(false),
            }
        }
        None
    });
    from_frames.unwrap_or_else(|| with_current(|current| task(current.header())).unwrap_or(false))
}

/// True if something enclosing the code polled now, in this task and up to the nearest shield,
/// is about to drop it: a region cancelled on its own account, or the task itself. A region (or
/// scope) whose own cancellation lands while one enclosing it also stops does not return: the
/// outermost cancelled one catches the cancellation, and no code between the two runs on.
pub(crate) fn enclosing_must_stop() -> bool {
    around_here(RegionState::must_stop, |task| task.is_cancelled() && !task.is_shielded())
}

/// What a new shield must hold up: the cancel regions it is inside and the task itself.
pub(crate) fn shield_targets() -> (Vec<Arc<RegionState>>, Option<HeaderRef>) {
    let task = current_tag();
    let regions = FRAMES.with(|frames| {
        let frames = frames.borrow();
        let own = frames.iter().rev().take_while(|frame| frame.task == task);
        own.filter_map(|frame| match &frame.kind {
            FrameKind::Region(region) => Some(region.clone()),
            FrameKind::Shield => None,
        })
        .collect()
    });
    (regions, with_current(|task| task.header_ref()))
}

/// True if the code running on this thread has been cancelled: an enclosing cancel region (up to
/// the nearest shield) was cancelled, or, with no shield in between, its task was.
///
/// Async code is stopped at its next `.await` when cancelled; blocking and CPU-bound code cannot
/// be, so it should check this between steps and return early. Outside any task it is `false`.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let handle = rt.spawn_blocking(|| {
///     let mut steps = 0u64;
///     while !klaw::is_cancelled() {
///         steps += 1;
///         std::thread::sleep(std::time::Duration::from_millis(1));
///     }
///     steps
/// });
/// std::thread::sleep(std::time::Duration::from_millis(20));
/// handle.cancel("enough");
/// assert!(rt.block_on(handle).is_err()); // cancelled: the steps are discarded
/// # Ok::<(), klaw::BuildError>(())
/// ```
pub fn is_cancelled() -> bool {
    around_here(RegionState::is_cancelled, Header::is_cancelled)
}

/// The id of the task running on this thread, if any.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let handle = rt.spawn(async { klaw::current_task_id() });
/// let id = handle.id();
/// assert_eq!(rt.block_on(handle).unwrap(), Some(id));
/// assert_eq!(klaw::current_task_id(), None);
/// # Ok::<(), klaw::BuildError>(())
/// ```
pub fn current_task_id() -> Option<TaskId> {
    with_current(|task| task.header().id())
}
