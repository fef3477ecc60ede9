//! A task whose core lives in its own allocation: the metadata that `async-task` allocates with
//! the task's future, so that a spawn makes one allocation instead of two (the core, then the
//! task), and a task takes less memory. (In a prototype on a minimal executor,
//! `benches/task_core`, a core in an `Arc` of its own cost 75–150 ns a task more; in klaw the
//! gain only showed once the spawning thread stopped sharing cache lines with the workers, see
//! `benches/FINDINGS.md`.)
//!
//! The metadata holds the core and the task's [`Links`]: where its runner reports (the runtime's
//! counts and its scope), and a clone of the task's own waker that keeps the allocation alive
//! until the task has ended. The runner reaches both through pointers into the metadata, which
//! outlives the future (`async-task` drops the future first, the metadata last). The order of a
//! spawn is what makes this sound:
//! 1. the task is built, unscheduled: nothing runs its runner yet;
//! 2. the spawner makes the task's handle, registers it with its scope, and writes the links;
//! 3. the task is scheduled, which publishes the links to the worker that runs it; from then
//!    on only the runner touches them, and its end takes them out.
//!
//! A runner can end after its future is gone: when the body left descendants running, its end
//! waits for them (`Descendants::then_run`). The waker in the links keeps the allocation alive
//! until then. A task nobody can wake any more while it waits is kept by that waker too (as
//! tokio keeps such a task in its list), until the runtime shuts down and cancels it.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::future::Future;
use std::ptr::NonNull;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::runtime::executor::Spawner;
use crate::sync::UnsafeCell;
use crate::task::core::{Completer, FailureTaker, Header, HeaderRef, Joiner, TaskCore};
use crate::task::descendants::Failures;
use crate::task::handle::TaskOutput;
use crate::task::runner::{AsyncRunner, Report};
use crate::task::state::Kind;
use crate::task::{Outcome, TaskError, TaskId};

/// What a task needs beyond its core until it ends.
struct Links<R> {
    /// Where the runner reports; `None` if the spawn unwound before it was linked.
    report: Option<R>,
    /// The task's own waker: the allocation stays until the runner has ended.
    keep: Waker,
}

/// The metadata of a task spawned on the executor: its core and its links.
struct InTask<O, R> {
    core: TaskCore<O>,
    /// Written by the spawner before the task is scheduled; then only the runner touches it.
    links: UnsafeCell<Option<Links<R>>>,
}

// SAFETY: the core is `Sync` when `O: Send`. The links are written by the spawner before the
// task is scheduled (scheduling publishes them) and from then on read and written only by the
// runner, one poll (or its end) at a time: never shared between threads at once. `R: Send`
// suffices for them to move to the worker.
unsafe impl<O: Send, R: Send> Sync for InTask<O, R> {}

/// Spawns `future` through `spawner` as a task whose core is in its own allocation, and returns its
/// handle's end. `report` registers the task (with its scope, in the runtime's counts) before
/// anything can run it, and gives where its runner reports: the task's cancel token exists, and
/// its scope knows it, before it is scheduled.
#[allow(clippy::too_many_arguments, reason = "the parts of one runner")]
pub(crate) fn spawn<F, M, R>(
    spawner: &Spawner,
    id: TaskId,
    name: Option<Cow<'static, str>>,
    future: F,
    timeout: Option<Duration>,
    span: Option<Box<tracing::Span>>,
    report: impl FnOnce(&Joiner<TaskOutput<M::Ok, M::Err>>) -> R,
) -> Joiner<TaskOutput<M::Ok, M::Err>>
where
    F: Future + Send + 'static,
    M: Outcome<F::Output> + 'static,
    R: Report<M::Err>,
{
    let runnable = spawner.build_task(InTask::new(id, name), move |task: &InTask<_, R>| {
        // SAFETY: the runner made here is the task's future, in the allocation whose metadata
        // `task` is.
        let (completer, slot) = unsafe { task.runner_ends() };
        AsyncRunner::<F, M, _>::new(future, completer, timeout, span, slot)
    });
    let task = runnable.metadata();
    // SAFETY: the task is not scheduled yet, and these are its own wakers. The waker that keeps
    // the allocation goes in first, so that an end deferred while `report` unwinds (the
    // runner dropped unpolled, its body handing running descendants over) still has it.
    let joiner = unsafe {
        task.keep(runnable.waker());
        Joiner::in_task(&task.core, runnable.waker())
    };
    // If this unwinds, the unscheduled runnable drops the runner unpolled: the task ends
    // cancelled, reporting to nobody.
    let report = report(&joiner);
    // SAFETY: still unscheduled.
    unsafe { task.set_report(report) };
    runnable.schedule();
    joiner
}

impl<O: Send + 'static, R> InTask<O, R> {
    fn new(id: TaskId, name: Option<Cow<'static, str>>) -> Self {
        InTask { core: TaskCore::new(id, name), links: UnsafeCell::new(None) }
    }

    /// The two ends the task's runner needs.
    ///
    /// # Safety
    /// The runner must live in the future of the allocation whose metadata this is.
    unsafe fn runner_ends(&self) -> (Completer<O>, SlotReport<R>) {
        // SAFETY: the allocation outlives its future; an end that outlives the future (see the
        // module's doc) is covered by the waker in the links.
        let completer = unsafe { Completer::in_task(&self.core) };
        (completer, SlotReport { links: NonNull::from(&self.links) })
    }

    /// Gives the runner the waker that keeps the allocation until it has ended.
    ///
    /// # Safety
    /// The task must not be scheduled yet, so that its runner does not run; `keep` must be the
    /// task's own waker.
    unsafe fn keep(&self, keep: Waker) {
        let replaced = self.links.with_mut(|links| {
            // SAFETY: unscheduled, so the runner does not read the links; the spawner is the one
            // caller.
            unsafe { (*links).replace(Links { report: None, keep }) }
        });
        drop(replaced);
    }

    /// Gives the runner where it reports.
    ///
    /// # Safety
    /// As for [`keep`](Self::keep), which must have come first.
    unsafe fn set_report(&self, report: R) {
        self.links.with_mut(|links| {
            // SAFETY: as in `keep`.
            let links = unsafe { &mut *links };
            links.as_mut().expect("the keep comes first").report = Some(report);
        });
    }
}

/// A runner's report that lives in its task's metadata ([`InTask`]).
struct SlotReport<R> {
    links: NonNull<UnsafeCell<Option<Links<R>>>>,
}

// SAFETY: the runner that owns this moves between worker threads with its task; the links it
// points to are touched only by that runner (see `InTask`), and `R: Send`.
unsafe impl<R: Send> Send for SlotReport<R> {}

impl<R> SlotReport<R> {
    fn with<T>(&self, f: impl FnOnce(Option<&R>) -> T) -> T {
        // SAFETY: the metadata outlives the runner's end (see `InTask::runner_ends`), and only
        // the runner, which owns this, touches the links once the task is scheduled.
        let cell = unsafe { self.links.as_ref() };
        cell.with(|links| {
            // SAFETY: as above: nobody writes the links while the runner reads them.
            f(unsafe { &*links }.as_ref().and_then(|links| links.report.as_ref()))
        })
    }
}

impl<E, R: Report<E>> Report<E> for SlotReport<R> {
    fn shutdown_cancels(&self, task: &Header) -> bool {
        self.with(|report| report.is_some_and(|report| report.shutdown_cancels(task)))
    }

    fn first_wait(&mut self, task: HeaderRef) {
        // SAFETY: as in `with`; `&mut self` is the runner's one access at this time.
        let cell = unsafe { self.links.as_ref() };
        cell.with_mut(|links| {
            // SAFETY: as above.
            let links = unsafe { &mut *links };
            if let Some(report) = links.as_mut().and_then(|links| links.report.as_mut()) {
                report.first_wait(task);
            }
        });
    }

    fn raced(&self, task: &Header, error: TaskError<E>) {
        self.with(|report| match report {
            Some(report) => report.raced(task, error),
            None => super::spawn::log_failure_after_the_end(task.id(), error),
        });
    }

    fn adopted(&self, failures: Failures) {
        self.with(|report| match report {
            Some(report) => report.adopted(failures),
            None => failures.into_iter().for_each(|failure| failure.log()),
        });
    }

    fn failure_taker(&self) -> FailureTaker {
        self.with(|report| report.map_or(FailureTaker::HandleOnly, R::failure_taker))
    }

    fn before_publish(&self, kind: Kind, id: TaskId, waited: bool) {
        self.with(|report| {
            if let Some(report) = report {
                report.before_publish(kind, id, waited);
            }
        });
    }

    fn ended(self) {
        let links = {
            // SAFETY: as in `with`.
            let cell = unsafe { self.links.as_ref() };
            cell.with_mut(|links| {
                // SAFETY: as above; this is the runner's last access.
                unsafe { (*links).take() }
            })
        };
        if let Some(Links { report, keep }) = links {
            if let Some(report) = report {
                report.ended();
            }
            // Last: this may be the last reference to the allocation, and so free the metadata.
            drop(keep);
        }
    }

    fn own_timeout_passed(at: Instant) {
        R::own_timeout_passed(at);
    }

    fn as_child<T>(&self, f: impl FnOnce() -> T) -> T {
        self.with(|report| match report {
            Some(report) => report.as_child(f),
            None => f(),
        })
    }
}

#[cfg(all(test, klaw_loom))]
mod loom_models {
    //! A task whose core is in its allocation stores no waker in it: a cancel wakes the task
    //! through the waker its reference holds. Deadlocks if that wake-up is lost.
    //!
    //! The cancel comes once the task waits. A cancel during the task's poll is `async-task`'s
    //! to hand on (a wake-up while running reschedules the task), through atomics loom does not
    //! see, so a model of it would report orderings that cannot happen.
    //!
    //! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`
    use std::sync::Arc;

    use loom::future::block_on;
    use loom::thread;

    use crate::runtime::executor::Executor;
    use crate::runtime::spawn::{Accounting, NoParent};
    use crate::task::{CancelReason, ExitReason, Plain, TaskId};

    #[test]
    fn loom_a_cancel_wakes_a_waiting_task_in_its_own_allocation() {
        loom::model(|| {
            let executor = Arc::new(Executor::new());
            let joiner = super::spawn::<_, Plain, _>(
                executor.spawner(),
                TaskId::next(),
                None,
                std::future::pending::<()>(),
                None,
                None,
                |_| Accounting::new(None, None::<NoParent>),
            );
            let task = joiner.header_ref();
            let (waiting, task_waits) = crate::channel::bounded::<()>(1);
            let worker = {
                let executor = executor.clone();
                thread::spawn(move || {
                    block_on(async {
                        executor.tick().await; // the task runs, and waits
                        waiting.try_send(()).unwrap();
                        // Woken by the cancel (or the worker sleeps for ever), it ends.
                        executor.tick().await;
                    });
                })
            };
            block_on(task_waits.recv()).unwrap();
            assert!(task.cancel(CancelReason::user("stop")));
            worker.join().unwrap();
            assert!(joiner.header().is_done());
            assert_eq!(joiner.header().exit_reason(), ExitReason::Cancelled);
        });
    }
}
