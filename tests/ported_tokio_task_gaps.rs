//! Behaviours of tokio's `task_join_set.rs`, `task_abort.rs`, `rt_common.rs` and `rt_handle.rs`
//! (tokio at `ea91b33c`) that the existing ports and klaw's own tests do
//! not reach. Same mapping as there: `JoinSet` → a scope's `child_set` (`join_next` →
//! `next_finished`, `abort_all` → `cancel_all`), `JoinHandle::abort` → `TaskHandle::cancel`,
//! `AbortHandle` → `TaskRef` (`task_ref()`), `JoinError::is_panic` → `TaskError::Panicked`.
//! Where the book documents a difference (a dropped set neither cancels nor detaches; the first
//! terminal state wins over a destructor's panic; nothing that failed is lost), these assert
//! klaw's rule. Anything that could hang runs on its own thread under a deadline (`within`) or
//! in a `#[klaw::test]` with a timeout.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};

use common::{DEADLINE, Flag, failing, fetch_ids, ms, runtime, secs, wait_for, within};
use futures_lite::future::yield_now;
use klaw::cancel::fail_after;
use klaw::channel::oneshot;
use klaw::task::{ExitReason, TaskRef};
use klaw::{CancelReason, Error, Task, TaskError};

fn user(message: &'static str) -> CancelReason {
    CancelReason::user(message)
}

fn is_cancelled_with(outcome: &Result<impl Sized, Error>, reason: &CancelReason) -> bool {
    matches!(outcome, Err(Error::Task { error: TaskError::Cancelled(r), .. }) if r == reason)
}

/// A future that is ready at once with its value, and whose own destructor (run after it
/// completed, when its task drops it) panics with `message`.
struct ValueThenPanicOnDrop {
    value: Option<u32>,
    message: &'static str,
}

impl ValueThenPanicOnDrop {
    fn new(value: u32, message: &'static str) -> Self {
        ValueThenPanicOnDrop { value: Some(value), message }
    }
}

impl Future for ValueThenPanicOnDrop {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(self.value.take().expect("polled again after it completed"))
    }
}

impl Drop for ValueThenPanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.message);
        }
    }
}

// ------------------------------------------------------------------------------------------
// 1–2. A destructor that panics after the body completed (task_abort.rs / rt_common.rs)
// ------------------------------------------------------------------------------------------

/// tokio: `test_abort_task_that_panics_on_drop_returned` and rt_common's `panic_in_task`, the
/// other way round: the future *completed*, and only its destructor (run by the task after
/// `Ready`) panics. The first terminal state wins: the handle gives the value, `exit_reason`
/// stays `Success`, a late cancel changes nothing, and the worker goes on (the panic is
/// contained and, with no scope, logged).
///
/// What would break it: `drop_body_and_end` (runner.rs) letting the destructor's panic decide
/// or overwrite the outcome (`Panicked`), unwinding into the worker (the second spawn would
/// never run on the one worker), or publishing before the body was dropped.
#[test]
fn a_task_that_completed_keeps_its_value_when_its_future_panics_as_it_is_dropped() {
    within(DEADLINE, || {
        let rt = runtime(1);
        let handle = rt.spawn(ValueThenPanicOnDrop::new(7, "the future's own cleanup failed"));
        let watcher = handle.task_ref();
        assert_eq!(rt.block_on(handle), Ok(7));
        assert_eq!(watcher.exit_reason(), ExitReason::Success);
        assert!(!watcher.is_cancelled());
        assert!(!watcher.cancel("too late"), "a completed task was cancelled");
        assert_eq!(rt.block_on(rt.spawn(async { 8 })), Ok(8), "the worker did not survive");
    });
}

/// The same for a scope's child. klaw's rule "nothing that failed is lost": in supervisor mode
/// the body takes the child's value (its handle keeps `Success`), and the scope's result still
/// holds the destructor's panic, named with the child's name and id. In the default mode the
/// panic fails the scope and cancels the sibling with `SiblingFailed`, though the child's own
/// outcome is a success.
///
/// What would break it: a raced failure after a *success* being dropped instead of reported
/// (`Report::raced` only wired for cancelled bodies), reported without the child's `TaskInfo`,
/// or the handle being turned into `Panicked`; in the default mode the scope would then wait
/// out the 60 s sibling and the test time out.
#[klaw::test(workers = 2, timeout = "30s")]
async fn a_childs_value_stands_and_the_panic_of_its_futures_drop_is_still_in_the_scopes_result() {
    let mut id = None;
    let mut got = None;
    let result: Result<(), Error> = klaw::scope!(supervisor, |s| {
        let child = s.spawn(Task::new(ValueThenPanicOnDrop::new(7, "tidy-up failed")).name("tidy"));
        id = Some(child.id());
        let watcher = child.task_ref();
        got = Some(child.await?);
        assert_eq!(watcher.exit_reason(), ExitReason::Success);
        Ok(())
    });
    assert_eq!(got, Some(7), "the body did not get the child's value");
    let id = id.expect("the child was spawned");
    let Err(Error::Task { task: Some(task), error: TaskError::Panicked(message), .. }) = &result
    else {
        panic!("the destructor's panic is not in the scope's result: {result:?}")
    };
    assert_eq!((task.id(), task.name()), (id, Some("tidy")));
    assert_eq!(message, "tidy-up failed");

    let mut sibling: Option<TaskRef> = None;
    let result: Result<(), Error> = klaw::scope!(|s| {
        let slow = s.spawn(klaw::time::sleep(secs(60)));
        sibling = Some(slow.task_ref());
        s.spawn(ValueThenPanicOnDrop::new(7, "tidy-up failed"));
        Ok(())
    });
    assert!(
        matches!(&result, Err(Error::Task { error: TaskError::Panicked(m), .. }) if m == "tidy-up failed"),
        "{result:?}"
    );
    let sibling = sibling.expect("the sibling was spawned");
    assert_eq!(sibling.cancel_reason(), Some(CancelReason::SiblingFailed));
}

// ------------------------------------------------------------------------------------------
// 3. exit_reason / is_finished while a cancelled body is being dropped (task_abort.rs)
// ------------------------------------------------------------------------------------------

/// Blocks its drop until released; says when the drop starts, and sets `done` when it ends.
struct SlowDrop {
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
    done: Flag,
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        let _ = self.entered.send(());
        let _ = self.release.recv_timeout(secs(10));
        self.done.set();
    }
}

/// tokio: `test_abort_without_panic_3662` (the drop flag is set before the result is seen) and
/// `AbortHandle::is_finished`, in a set. A child of a set is cancelled while its body's
/// destructor is slow: `exit_reason` says `Cancelled` at once (the cancel decided it, a second
/// cancel returns false), but the child is not finished and the set does not hand it over
/// (`try_next_finished` gives nothing, `len` is still 1) until the destructor has returned;
/// then `next_finished` gives the cancellation with its reason.
///
/// What would break it: publishing (`DONE`) before `body.set(None)` returns in
/// `drop_body_and_end`, `ChildSet` handing over on the decided outcome instead of the end
/// (`poll_done`), or `exit_reason` waiting for the drop.
#[klaw::test(workers = 2, timeout = "30s")]
async fn a_cancelled_child_is_not_handed_over_by_its_set_while_its_destructor_runs() {
    let dropped = Flag::default();
    let done = dropped.clone();
    klaw::scope!(|s| {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let guard = SlowDrop { entered: entered_tx, release: release_rx, done };
        let (started_tx, started) = oneshot::channel::<()>();
        let mut set = s.child_set::<(), Infallible>();
        let child = s.spawn(async move {
            let _guard = guard;
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
        });
        let watcher = child.task_ref();
        set.insert(child);
        started.await?;
        set.cancel_all("stop");
        entered.recv_timeout(secs(10)).expect("the cancelled child's body is being dropped");
        assert_eq!(watcher.exit_reason(), ExitReason::Cancelled, "decided when the cancel landed");
        assert_eq!(watcher.cancel_reason(), Some(user("stop")));
        assert!(!watcher.cancel("again"), "a second cancel decided it again");
        assert!(!watcher.is_finished(), "finished while its destructor still runs");
        assert!(set.try_next_finished().is_none(), "handed over while its destructor runs");
        assert_eq!(set.len(), 1);
        release.send(()).unwrap();
        let outcome = set.next_finished().await.expect("the child is still in the set");
        assert!(is_cancelled_with(&outcome, &user("stop")), "{outcome:?}");
        assert!(dropped.is_set(), "handed over before its destructor returned");
        assert!(watcher.is_finished());
        assert!(set.next_finished().await.is_none());
        Ok(())
    })
    .unwrap();
}

// ------------------------------------------------------------------------------------------
// 4. A child spawned from a destructor while its scope is torn down (rt_common.rs)
// ------------------------------------------------------------------------------------------

/// Which kind of child [`SpawnsOnDrop`] spawns.
#[derive(Clone, Copy, Debug)]
enum Spawned {
    Parallel,
    Local,
    Blocking,
}

/// Held by a scope's body: when the body is dropped, spawns a child of `kind` in that scope
/// (which is being torn down by then) and sends its `TaskRef` out.
struct SpawnsOnDrop<'a, 'env> {
    scope: &'a klaw::Scope<'env>,
    kind: Spawned,
    ran: Flag,
    spawned: mpsc::Sender<TaskRef>,
}

impl Drop for SpawnsOnDrop<'_, '_> {
    fn drop(&mut self) {
        let ran = self.ran.clone();
        let task = match self.kind {
            Spawned::Parallel => self.scope.spawn(async move { ran.set() }).task_ref(),
            Spawned::Local => self.scope.spawn_local(async move { ran.set() }).task_ref(),
            Spawned::Blocking => self.scope.spawn_blocking(move || ran.set()).task_ref(),
        };
        let _ = self.spawned.send(task);
    }
}

/// tokio: rt_common's `wake_while_rt_is_dropping` / `shutdown_concurrent_spawn` and task_abort's
/// destructor tests, for a scope: a sibling fails, the scope cancels its body, and the body's
/// destructor spawns one more child in the same scope (parallel, local, blocking). The book:
/// "once [the scope is cancelled], a child spawned in the scope starts cancelled, and its body
/// never runs", and a scope returns only after all its children ended. So the late child ends
/// cancelled (`SiblingFailed`) without running, has ended by the time the scope returns, and
/// the scope's result is the sibling's failure alone (not a list with the late cancellation).
///
/// What would break it: `ScopeShared::list` / `enlist` not cancelling a child listed after the
/// cancel (it would run), `Drive::poll` returning without seeing a local child pushed during
/// `drop_body` or a descendant counted after it looked (the `TaskRef` would not be finished,
/// or the local child's runner would be leaked), or a cancellation listed as a failure.
#[klaw::test(workers = 2, timeout = "30s")]
async fn a_child_spawned_by_the_bodys_destructor_in_a_failing_scope_never_runs_and_is_waited_for() {
    for kind in [Spawned::Parallel, Spawned::Local, Spawned::Blocking] {
        let ran = Flag::default();
        let (spawned, from_drop) = mpsc::channel::<TaskRef>();
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn(failing(1, ms(10)));
            let _tears_down = SpawnsOnDrop { scope: s, kind, ran: ran.clone(), spawned };
            std::future::pending::<()>().await;
            Ok(())
        });
        let error = result.expect_err("the sibling's failure fails the scope");
        assert_eq!(fetch_ids(&error), [1], "{kind:?}: {error:?}");
        let late = from_drop.try_recv().expect("the body was dropped and its destructor spawned");
        assert!(late.is_finished(), "{kind:?}: the scope returned before its last child ended");
        assert_eq!(late.cancel_reason(), Some(CancelReason::SiblingFailed), "{kind:?}");
        assert!(!ran.is_set(), "{kind:?}: a child spawned in a cancelled scope ran its body");
    }
}

// ------------------------------------------------------------------------------------------
// 5. Cancel racing completion, watched from a third thread (task_abort.rs, AbortHandle)
// ------------------------------------------------------------------------------------------

/// tokio: `AbortHandle::is_finished` under `abort` racing completion (task_abort's #3662
/// cross-thread abort). Each round a task that yields once races a cancel from another
/// thread, while a third thread keeps reading its `TaskRef`. The watcher must never see it
/// finished while its outcome is still `Pending`, never see the outcome change once decided
/// ("changes at most once"), and its last reading (after the handle resolved) must be the
/// outcome the handle gave, with `cancel()`'s return value agreeing.
///
/// What would break it: `DONE` published before (or without) the kind bits, a terminal kind
/// rewritten (a `decide` that is not a compare-and-swap from `Pending`), or a cancel that
/// reports winning while the completion is published.
#[test]
fn a_watcher_never_sees_a_task_finished_before_its_outcome_nor_its_outcome_change() {
    within(DEADLINE, || {
        let rt = runtime(2);
        for round in 0..500u32 {
            let handle = rt.spawn(async move {
                yield_now().await;
                round
            });
            let (racer_ref, watcher_ref) = (handle.task_ref(), handle.task_ref());
            let stop = Arc::new(AtomicBool::new(false));
            let stopping = stop.clone();
            let watcher = std::thread::spawn(move || {
                let mut seen = ExitReason::Pending;
                loop {
                    let last = stopping.load(Ordering::SeqCst);
                    let finished = watcher_ref.is_finished();
                    let reason = watcher_ref.exit_reason();
                    assert!(!finished || reason.is_terminal(), "finished while {reason:?}");
                    if seen.is_terminal() {
                        assert_eq!(reason, seen, "the outcome changed once decided");
                    }
                    seen = reason;
                    if last {
                        assert!(finished, "the handle resolved but the task is not finished");
                        return seen;
                    }
                    std::hint::spin_loop();
                }
            });
            let racer = std::thread::spawn(move || racer_ref.cancel("race"));
            let result = rt.block_on(handle);
            let cancel_won = racer.join().unwrap();
            stop.store(true, Ordering::SeqCst);
            let seen = watcher.join().expect("the watcher saw an inconsistent state");
            match result {
                Ok(value) => {
                    assert_eq!(value, round);
                    assert!(!cancel_won, "round {round}: cancel() won, yet the task succeeded");
                    assert_eq!(seen, ExitReason::Success, "round {round}");
                }
                Err(TaskError::Cancelled(reason)) => {
                    assert_eq!(reason, user("race"));
                    assert!(cancel_won, "round {round}: cancelled, yet no cancel() won");
                    assert_eq!(seen, ExitReason::Cancelled, "round {round}");
                }
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
    });
}

// ------------------------------------------------------------------------------------------
// 6. A canceller kept past its task and its runtime (rt_handle.rs / task_join_set runtime_gone)
// ------------------------------------------------------------------------------------------

/// tokio: `runtime_gone` and an `AbortHandle` used after its task ended. Three tasks' handles
/// are dropped (their `TaskRef`s alone remain): one completed, one timed out, one still
/// waiting, which the runtime's drop cancels. After the runtime is gone every `TaskRef` still
/// answers: `cancel` returns false, `exit_reason`, `cancel_reason` and `is_cancelled` say how
/// each ended (a timeout is "cancelled" but has no cancel reason), and a hook registered now
/// runs at once for the timed out (`Deadline`) and the shut down (`Shutdown`) ones, and never
/// for the completed one.
///
/// What would break it: `TaskRef` reaching freed memory once the executor is gone (its core
/// lives in the task's allocation, kept by a waker), a late `cancel` waking a task of a dropped
/// executor, `on_cancel_keyed` running a completed task's hook or dropping a cancelled task's
/// unrun, or the reason of a timeout other than `Deadline`.
#[test]
fn task_refs_kept_past_their_runtime_answer_and_run_late_hooks_only_for_cancelled_tasks() {
    within(DEADLINE, || {
        let rt = runtime(2);
        let completed = rt.spawn(async { 1u32 });
        let timed_out = rt.spawn(Task::new(std::future::pending::<()>()).timeout(ms(1)));
        let (started_tx, started) = mpsc::channel();
        let waiting = rt.spawn(async move {
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        started.recv_timeout(secs(10)).expect("the waiting task started");
        wait_for("the first two ended", || completed.is_finished() && timed_out.is_finished());
        let (completed_ref, timed_out_ref, waiting_ref) =
            (completed.task_ref(), timed_out.task_ref(), waiting.task_ref());
        drop((completed, timed_out, waiting));
        drop(rt);

        for task in [&completed_ref, &timed_out_ref, &waiting_ref] {
            assert!(task.is_finished(), "{task:?}");
            assert!(!task.cancel("late"), "a late cancel decided an ended task: {task:?}");
        }
        assert_eq!(completed_ref.exit_reason(), ExitReason::Success);
        assert_eq!(completed_ref.cancel_reason(), None);
        assert!(!completed_ref.is_cancelled());
        assert_eq!(timed_out_ref.exit_reason(), ExitReason::TimedOut);
        assert_eq!(timed_out_ref.cancel_reason(), None);
        assert!(timed_out_ref.is_cancelled());
        assert_eq!(waiting_ref.exit_reason(), ExitReason::Cancelled);
        assert_eq!(waiting_ref.cancel_reason(), Some(CancelReason::Shutdown));
        assert!(waiting_ref.is_cancelled());

        let (hook_tx, hooks) = mpsc::channel();
        for (name, task) in [
            ("completed", &completed_ref),
            ("timed out", &timed_out_ref),
            ("waiting", &waiting_ref),
        ] {
            let tx = hook_tx.clone();
            task.on_cancel(move |reason| tx.send((name, reason.clone())).unwrap());
        }
        drop(hook_tx);
        let ran: Vec<(&str, CancelReason)> = hooks.try_iter().collect();
        assert_eq!(
            ran,
            [("timed out", CancelReason::Deadline), ("waiting", CancelReason::Shutdown)],
            "late hooks run at once, only for tasks that were cancelled or timed out"
        );
    });
}

// ------------------------------------------------------------------------------------------
// 7. next_finished after some waiting children were cancelled elsewhere (task_join_set.rs)
// ------------------------------------------------------------------------------------------

/// tokio: `abort_tasks` (abort through the handles `spawn` returned, then `join_next`), with the
/// cancels coming from another thread through `TaskRef`s while the body already waits in
/// `next_finished`, under `limit = 1` with the slot held by a child that never ends by itself.
/// The two cancelled children (0 and 2) wait for the slot: they must come back cancelled at
/// once (not when the slot frees), without ever running; once the slot holder is cancelled,
/// the other two (1 and 3) run and come back with their values.
///
/// What would break it: a waiting child's cancel not waking the set (the hook
/// `ScopeHandle::wake_on_cancel` registers from `Finished::poll`), `Limit::end_cancelled` not
/// ending it unstarted, or a cancelled waiting child being started when the slot frees.
#[klaw::test(workers = 2, timeout = "30s")]
async fn waiting_children_cancelled_from_another_thread_come_back_at_once_and_the_rest_run() {
    let ran: Vec<Flag> = (0..4).map(|_| Flag::default()).collect();
    let (cancelled, completed) = klaw::scope!(limit = 1, |s| {
        let holder = s.spawn(std::future::pending::<()>()); // takes the only slot
        let mut set = s.child_set::<usize, Infallible>();
        let mut remote = Vec::new();
        for (i, flag) in ran.iter().enumerate() {
            let flag = flag.clone();
            let child = s.spawn(async move {
                flag.set();
                i
            });
            if i % 2 == 0 {
                remote.push(child.task_ref());
            }
            set.insert(child);
        }
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(ms(20)); // the body is waiting in next_finished by then
            remote.into_iter().map(|task| task.cancel("remote")).collect::<Vec<bool>>()
        });
        let mut cancelled = 0;
        for _ in 0..2 {
            let outcome = fail_after(secs(10), set.next_finished())
                .await?
                .expect("four children are in the set");
            assert!(is_cancelled_with(&outcome, &user("remote")), "{outcome:?}");
            cancelled += 1;
        }
        assert_eq!(canceller.join().unwrap(), [true, true]);
        holder.cancel("done");
        let mut completed = Vec::new();
        while let Some(outcome) = set.next_finished().await {
            completed.push(outcome?);
        }
        completed.sort_unstable();
        Ok((cancelled, completed))
    })
    .unwrap();
    assert_eq!(cancelled, 2);
    assert_eq!(completed, [1, 3]);
    assert!(!ran[0].is_set() && !ran[2].is_set(), "a cancelled waiting child ran its body");
    assert!(ran[1].is_set() && ran[3].is_set());
}

// ------------------------------------------------------------------------------------------
// 8. What a cancel runs stays contained (task_abort.rs)
// ------------------------------------------------------------------------------------------

/// A panic payload whose own destructor panics.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("the hook's panic payload panicked as it was dropped");
        }
    }
}

/// tokio: `test_abort_task_that_panics_on_drop_contained` ("aborting a task whose destructor
/// panics does not allow the panic to escape"), for what a klaw cancel runs besides the body's
/// drop: its `on_cancel` hooks. `TaskHandle::on_cancel` promises "a panicking hook is contained:
/// it neither reaches the canceller nor stops other hooks"; klaw's log hooks (and `panic_of`)
/// keep that promise even for a payload that panics again when dropped, by not dropping it.
/// Here the first hook panics with such a payload: `cancel` must still return `true` to its
/// caller, the second hook must run, and the task (its core in its own allocation, woken by the
/// canceller after the hooks) must end cancelled.
///
/// What would break it: `run_contained` (task/core.rs) dropping the caught payload with
/// `let _ = catch_unwind(..)`: the payload's destructor then panics outside the catch, unwinds
/// through `run_hooks` (the remaining hooks are dropped unrun) and out of `cancel()` before
/// `CoreRef::cancel` wakes the task, so the body is never dropped and the handle never
/// resolves.
#[test]
fn a_cancel_hook_whose_panic_payload_panics_when_dropped_reaches_neither_the_canceller_nor_the_other_hooks()
 {
    within(DEADLINE, || {
        let rt = runtime(1);
        let (started_tx, started) = mpsc::channel();
        let handle = rt.spawn(async move {
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        started.recv_timeout(secs(10)).expect("the task started");
        let other = Flag::default();
        let other_ran = other.clone();
        handle.on_cancel(|_| std::panic::panic_any(PanicsWhenDropped));
        handle.on_cancel(move |_| other_ran.set());
        let cancelled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.cancel("stop")));
        assert!(matches!(cancelled, Ok(true)), "the hook's panic reached the canceller");
        assert!(other.is_set(), "a broken hook kept the next one from running");
        let ended = rt.block_on(fail_after(secs(10), handle));
        assert_eq!(ended, Ok(Err(TaskError::Cancelled(user("stop")))), "the task was not woken");
    });
}
