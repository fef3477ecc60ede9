//! Fault tests of "nothing that failed is lost" and "a scope ends only after every descendant
//! has ended" (book/src/scopes.md, "The first failure cancels the rest", "When a scope has
//! ended", "Dropping a scope"; book/src/cancellation.md, "Shields"), on the newest code paths:
//! a scope under an enclosing cancellation that a shield holds open (`enclosing_held`), cleanup
//! that fails inside a shield after an outside cancel, supervisor and limited scopes, child
//! sets, `start`, blocking children, deep nesting under a handle's cancel, and a scope dropped
//! outside any frame (logged).
//!
//! Every failure is counted by an id (`FetchError(id)`, or a panic "boom id"), wherever it is
//! nested in the result (an `Error::Scope`, a task's error, a body's error), and every child
//! holds an `Alive` guard, so "ended before the scope returned" is `alive.count() == 0` right
//! after it returns.

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{
    Alive, FetchError, Flag, SetOnDrop, foreign_until, in_task, ms, runtime, until, with_deadline,
};
use futures_util::future::join;
use klaw::cancel::{Region, Token, move_on_after, shield};
use klaw::log::{HookId, LogEvent};
use klaw::task::{BlockingTask, BoxError};
use klaw::{CancelReason, Error, Task, TaskError};

const ZERO: Duration = Duration::ZERO;

// ---- helpers -------------------------------------------------------------------------------

/// Every failure id in `error`, wherever it is nested: `Error::Scope` entries, a task's own
/// error (which may be a `klaw::Error` of a nested scope), a body's error; panics "boom N".
fn ids(error: &Error) -> Vec<u32> {
    fn walk(error: &(dyn std::error::Error + 'static), out: &mut Vec<u32>) {
        if let Some(klaw) = error.downcast_ref::<Error>() {
            match klaw {
                Error::Scope(scope) => {
                    for entry in scope.errors() {
                        walk(entry, out);
                    }
                    return;
                }
                Error::Task { error: TaskError::Panicked(message), .. } => {
                    let n = message.trim_start_matches("boom ").parse().expect("a boom N panic");
                    out.push(n);
                    return;
                }
                _ => {}
            }
        }
        if let Some(fetch) = error.downcast_ref::<FetchError>() {
            out.push(fetch.0);
            return;
        }
        if let Some(source) = error.source() {
            walk(source, out);
        }
    }
    let mut out = Vec::new();
    walk(error, &mut out);
    out.sort_unstable();
    out
}

/// The ids in a scope's result (none for `Ok`).
fn result_ids<T: std::fmt::Debug>(result: &Result<T, Error>) -> Vec<u32> {
    match result {
        Ok(_) => Vec::new(),
        Err(error) => ids(error),
    }
}

/// Blocks this thread until `done` says so (bounded, so a bug cannot hang the pool forever).
fn spin_until(done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(ms(1));
    }
}

/// The shared state of a scenario: how many children entered their cleanup, the signal that
/// the outside cancel happened, how many produced their failure.
#[derive(Clone, Default)]
struct Gate {
    started: Arc<AtomicUsize>,
    go: Flag,
    failed: Arc<AtomicUsize>,
}

impl Gate {
    fn started(&self) -> usize {
        self.started.load(SeqCst)
    }
    fn failed(&self) -> usize {
        self.failed.load(SeqCst)
    }

    /// The cleanup of a failing child: counted in `started`, then held in a shield until `go`.
    async fn clean_up(&self) {
        shield(async {
            self.started.fetch_add(1, SeqCst);
            until(|| self.go.is_set()).await;
        })
        .await;
    }

    /// Counts a failure in `failed` before producing it, so a holder can wait for it.
    fn fail(&self, id: u32) -> Result<(), FetchError> {
        self.failed.fetch_add(1, SeqCst);
        Err(FetchError(id))
    }

    /// Once `n` children are in their cleanup, cancels through `cancel` and only then lets the
    /// cleanups go on, so every failure in them comes after the cancel.
    async fn cancel_once_started<R>(&self, n: usize, cancel: impl FnOnce() -> R) {
        until(|| self.started() == n).await;
        cancel();
        self.go.set();
    }

    /// [`Gate::cancel_once_started`] as the end of a scope body, which then waits until the
    /// cancel ends it (so the body is still running when the cancel lands).
    async fn cancel_once_started_then_wait<R>(
        &self,
        n: usize,
        cancel: impl FnOnce() -> R,
    ) -> Result<(), BoxError> {
        self.cancel_once_started(n, cancel).await;
        pending().await
    }
}

/// A fallible child that enters a shield (its cleanup) at once, waits there for `gate.go`
/// (set right after the outside cancel), then fails with `FetchError(id)`.
fn cleanup_fails(
    id: u32,
    gate: &Gate,
    alive: &Alive,
) -> Task<impl Future<Output = Result<(), FetchError>> + Send + 'static, klaw::task::Fallible> {
    let guard = alive.guard(ZERO);
    let gate = gate.clone();
    Task::fallible(async move {
        let _guard = guard;
        gate.clean_up().await;
        gate.fail(id)
    })
}

/// A fallible child that fails with `FetchError(id)` at once.
fn fails_at_once(
    id: u32,
) -> Task<impl Future<Output = Result<(), FetchError>> + Send + 'static, klaw::task::Fallible> {
    Task::fallible(async move { Err(FetchError(id)) })
}

/// A blocking child that counts itself in `gate.started`, blocks its thread until `gate.go`,
/// then (2 ms later, well after the cancel) counts its failure and fails with `FetchError(id)`.
fn blocking_fails(
    id: u32,
    gate: &Gate,
    alive: &Alive,
) -> BlockingTask<impl FnOnce() -> Result<(), FetchError> + Send + 'static, klaw::task::Fallible> {
    blocking_child(id, false, gate, alive)
}

/// [`blocking_fails`], but the child panics "boom id" instead of returning `Err`.
fn blocking_panics(
    id: u32,
    gate: &Gate,
    alive: &Alive,
) -> BlockingTask<impl FnOnce() -> Result<(), FetchError> + Send + 'static, klaw::task::Fallible> {
    blocking_child(id, true, gate, alive)
}

/// One body for [`blocking_fails`] and [`blocking_panics`], so both fail the same way.
fn blocking_child(
    id: u32,
    panics: bool,
    gate: &Gate,
    alive: &Alive,
) -> BlockingTask<impl FnOnce() -> Result<(), FetchError> + Send + 'static, klaw::task::Fallible> {
    let guard = alive.guard(ms(5));
    let gate = gate.clone();
    BlockingTask::fallible(move || {
        let _guard = guard;
        gate.started.fetch_add(1, SeqCst);
        spin_until(|| gate.go.is_set());
        std::thread::sleep(ms(2));
        gate.failed.fetch_add(1, SeqCst);
        if panics {
            panic!("boom {id}");
        }
        Err(FetchError(id))
    })
}

/// A local child holding what encloses its scope open, until `gate.failed` reaches `n` (then a
/// little longer, so the failures are reported while it still holds).
fn holder(gate: &Gate, n: usize, alive: &Alive) -> impl Future<Output = ()> + Send + 'static {
    let guard = alive.guard(ZERO);
    let gate = gate.clone();
    shield(async move {
        let _guard = guard;
        gate.started.fetch_add(1, SeqCst);
        until(|| gate.failed() >= n).await;
        klaw::time::sleep(ms(3)).await;
    })
}

/// Runs `inner` in `region` inside an enclosing scope (the frame a dropped scope hands its
/// failures to) and gives that scope's result. `check` gets what the region returned while the
/// enclosing scope is still open, where "ended before the region returned" can be seen.
async fn in_an_enclosing_scope<T: Send>(
    region: Region,
    inner: impl Future<Output = T> + Send,
    check: impl FnOnce(Result<T, CancelReason>) + Send,
) -> Result<(), Error> {
    klaw::scope!(|_outer| {
        check(region.run(inner).await);
        Ok(())
    })
}

/// Runs `work` as a task of an enclosing scope, cancels it through its handle once `n`
/// children are in their cleanup, and gives the enclosing scope's result. `check` gets what
/// the handle said (awaited in a shield) while the enclosing scope is still open.
async fn with_a_task_cancelled_by_its_handle(
    gate: &Gate,
    n: usize,
    work: impl Future<Output = ()> + Send + 'static,
    check: impl FnOnce(Result<(), Error>) + Send,
) -> Result<(), Error> {
    klaw::scope!(|outer| {
        let task = outer.spawn(work);
        gate.cancel_once_started(n, || task.cancel("stop")).await;
        check(shield(async { (&mut { task }).await }).await);
        Ok(())
    })
}

/// An outside cancel: another thread cancels `token` once `ready(gate)`, then lets the
/// cleanups go on.
fn cancel_from_another_thread(
    gate: &Gate,
    token: Token,
    ready: impl Fn(&Gate) -> bool + Send + 'static,
) -> JoinHandle<()> {
    let gate = gate.clone();
    std::thread::spawn(move || {
        spin_until(|| ready(&gate));
        token.cancel("stop");
        gate.go.set();
    })
}

/// Another thread lets the cleanups go once the `n`th has started and every flag of `dropped`
/// is set (the scope's drop has begun, see [`drop_outside_any_frame`], and so has that of any
/// body whose nested scope must be dropped too), so the failures come while the drop waits for
/// the children, never before it (as a fixed sleep would allow on a busy machine).
fn release_once_dropped(gate: &Gate, n: usize, dropped: &[&Flag]) -> JoinHandle<()> {
    let gate = gate.clone();
    let dropped: Vec<Flag> = dropped.iter().map(|&flag| flag.clone()).collect();
    std::thread::spawn(move || {
        spin_until(|| gate.started() == n && dropped.iter().all(Flag::is_set));
        gate.go.set();
    })
}

// ---- (a) a child fails while a local shield holds an enclosing region's cancellation --------

/// (a) An enclosing region is cancelled while a local child's shield holds it open; the scope
/// cancels its other children (`enclosing_held`), and a parallel child fails in its own cleanup
/// after that. Promise: "every failure ... ends up in the scope's result or, for a scope that
/// was dropped before it returned, is handed to the enclosing frame": the enclosing scope's
/// result; and the region returns only after every child ended.
#[test]
fn a_parallel_child_failing_while_a_local_shield_holds_the_region_reaches_the_enclosing_scope() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(|s| {
                s.spawn_local(holder(&gate, 1, &alive));
                s.spawn(cleanup_fails(1, &gate, &alive));
                gate.cancel_once_started_then_wait(2, || token.cancel("stop")).await
            })
        };
        let result = in_an_enclosing_scope(region, inner, |ran| {
            assert!(ran.is_err(), "the region was cancelled: {ran:?}");
            assert_eq!(alive.count(), 0, "the region returned before its children ended");
        })
        .await;
        assert_eq!(result_ids(&result), [1], "{result:?}");
        assert_eq!(alive.count(), 0);
    });
}

/// (a) The same, but the child has no shield: it spins on a foreign future and returns `Err`
/// the instant the region is cancelled, racing the scope's cancel of it (50 rounds). Promise:
/// a failure "that raced a cancellation" is still reported; when the child produced its `Err`,
/// the enclosing scope's result has it.
#[test]
fn a_child_failing_the_instant_a_held_region_is_cancelled_is_reported() {
    in_task(|| async {
        for round in 0..50 {
            let (gate, alive) = (Gate::default(), Alive::default());
            let region = Region::new();
            let token = region.token();
            let inner = async {
                klaw::scope!(|s| {
                    s.spawn_local(holder(&gate, 0, &alive));
                    let guard = alive.guard(ZERO);
                    let child_gate = gate.clone();
                    s.spawn(Task::fallible(async move {
                        let _guard = guard;
                        child_gate.started.fetch_add(1, SeqCst);
                        foreign_until(|| child_gate.go.is_set()).await;
                        child_gate.fail(2)
                    }));
                    gate.cancel_once_started_then_wait(2, || token.cancel("stop")).await
                })
            };
            let result = in_an_enclosing_scope(region, inner, |_| {
                assert_eq!(alive.count(), 0, "round {round}: the region returned early");
            })
            .await;
            let expected: &[u32] = if gate.failed() == 1 { &[2] } else { &[] };
            assert_eq!(result_ids(&result), expected, "round {round}: {result:?}");
        }
    });
}

/// (a) A blocking child returns `Err` and another panics after the scope cancelled them under a
/// held enclosing region. Promise: both failures reach the enclosing scope, and the region
/// waits for the blocking closures ("A blocking child ends when its closure returns").
#[test]
fn blocking_children_failing_while_a_local_shield_holds_the_region_are_reported() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(|s| {
                s.spawn_local(holder(&gate, 2, &alive));
                s.spawn(blocking_fails(3, &gate, &alive));
                s.spawn(blocking_panics(4, &gate, &alive));
                gate.cancel_once_started_then_wait(3, || token.cancel("stop")).await
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| {
            assert_eq!(alive.count(), 0, "the region returned before its blocking children ended");
        })
        .await;
        assert_eq!(result_ids(&result), [3, 4], "{result:?}");
    });
}

/// (a) A local child fails in its own cleanup (its own shield holds the region), beside a
/// parallel child failing in its cleanup. Promise: both are in the enclosing scope's result.
#[test]
fn a_local_and_a_parallel_child_failing_in_cleanup_under_a_held_region_are_both_reported() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(|s| {
                s.spawn_local(cleanup_fails(5, &gate, &alive));
                s.spawn(cleanup_fails(6, &gate, &alive));
                gate.cancel_once_started_then_wait(2, || token.cancel("stop")).await
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| assert_eq!(alive.count(), 0)).await;
        assert_eq!(result_ids(&result), [5, 6], "{result:?}");
    });
}

/// (a) The shield holding the region sits beside the scope (a `join` branch), not in it: the
/// scope under the held cancellation cancels its children, which fail in their cleanup.
/// Promise: the failures reach the enclosing scope; the region waits for the children.
#[test]
fn children_failing_while_a_shield_beside_their_scope_holds_the_region_are_reported() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = join(holder(&gate, 2, &alive), async {
            klaw::scope!(|s| {
                s.spawn(cleanup_fails(7, &gate, &alive));
                s.spawn(cleanup_fails(8, &gate, &alive));
                gate.cancel_once_started_then_wait(3, || token.cancel("stop")).await
            })
        });
        let result = in_an_enclosing_scope(region, inner, |_| assert_eq!(alive.count(), 0)).await;
        assert_eq!(result_ids(&result), [7, 8], "{result:?}");
    });
}

// ---- (b) cleanup inside a child's own shield fails after an outside cancel ------------------

/// (b) The task running a scope is cancelled through its handle; the scope's child fails in its
/// cleanup afterwards. Promise: "a task reports them to its scope when it ends (its handle
/// keeps its own outcome)": the outer scope's result has the failure, the handle says
/// cancelled, and the child ended before the handle resolved.
#[test]
fn a_cleanup_failure_after_a_handle_cancel_of_the_task_reaches_the_tasks_scope() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let (g, a) = (gate.clone(), alive.clone());
        let work = async move {
            let _ = klaw::scope!(|s| {
                s.spawn(cleanup_fails(9, &g, &a));
                s.spawn(cleanup_fails(10, &g, &a));
                pending::<()>().await;
                Ok(())
            });
        };
        let result = with_a_task_cancelled_by_its_handle(&gate, 2, work, |awaited| {
            assert!(awaited.is_err(), "the task was cancelled: {awaited:?}");
            assert_eq!(alive.count(), 0, "the handle resolved before the grandchildren ended");
        })
        .await;
        assert_eq!(result_ids(&result), [9, 10], "{result:?}");
    });
}

/// (b) A scope's own `timeout` passes while its child cleans up, and the cleanup fails.
/// Promise: the scope returns both, "the first first": the deadline, then the child's failure.
///
/// On a paused clock: the child is surely running (in its cleanup) when the deadline passes;
/// one cancelled before its first poll would never run, and fail nothing.
#[test]
fn a_cleanup_failure_after_the_scopes_own_deadline_is_listed_after_it() {
    common::in_paused_task(|| async {
        let alive = Alive::default();
        let a = alive.clone();
        let result: Result<(), Error> = klaw::scope!(timeout = "5ms", |s| {
            let guard = a.guard(ZERO);
            s.spawn(Task::fallible(async move {
                let _guard = guard;
                shield(klaw::time::sleep(ms(30))).await;
                Err::<(), _>(FetchError(11))
            }));
            pending::<()>().await;
            Ok(())
        });
        assert_eq!(alive.count(), 0);
        let error = result.unwrap_err();
        assert_eq!(ids(&error), [11], "{error:?}");
        assert!(matches!(error.first(), Error::Elapsed(_)), "{error:?}");
    });
}

/// (b) `s.cancel` from the body while two children (one local, one parallel) clean up, and
/// both cleanups fail. Promise: "The scope then returns Err(TaskError::Cancelled(reason))
/// unless something failed first" -- here both failed after the cancel, and "a failure that
/// raced a cancel is reported": both are in the result.
#[test]
fn cleanup_failures_after_scope_cancel_are_both_in_the_result() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn_local(cleanup_fails(12, &gate, &alive));
            s.spawn(cleanup_fails(13, &gate, &alive));
            gate.cancel_once_started_then_wait(2, || s.cancel("enough")).await
        });
        assert_eq!(alive.count(), 0);
        assert_eq!(result_ids(&result), [12, 13], "{result:?}");
    });
}

/// (b) The book's example, deeper: `move_on_after` drops a scope whose local and parallel
/// children, and a grandchild scope's child, fail in their cleanup after the drop. Promise:
/// "That includes failures of children that end after the drop": all three reach the
/// enclosing scope.
///
/// On a paused clock: all three (the grandchild two spawns deep) are in their cleanup before
/// the 10 ms deadline passes, and the cleanups are let go on 30 ms after that, in the same
/// virtual time, by a sibling of the dropped region.
#[test]
fn cleanup_failures_of_children_and_grandchildren_after_a_deadline_drop_all_arrive() {
    common::in_paused_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let result: Result<(), Error> = klaw::scope!(|outer| {
            let inner = async {
                klaw::scope!(|s| {
                    s.spawn_local(cleanup_fails(14, &gate, &alive));
                    s.spawn(cleanup_fails(15, &gate, &alive));
                    let (g2, a2) = (gate.clone(), alive.clone());
                    s.spawn(async move {
                        let _ = klaw::scope!(|inner| {
                            inner.spawn(cleanup_fails(16, &g2, &a2));
                            pending::<()>().await;
                            Ok(())
                        });
                    });
                    pending::<()>().await;
                    Ok(())
                })
            };
            let setter = gate.clone();
            outer.spawn(async move {
                until(|| setter.started() == 3).await;
                klaw::time::sleep(ms(30)).await; // past the deadline
                setter.go.set();
            });
            let outcome = move_on_after(ms(10), inner).await;
            assert!(outcome.is_none());
            assert_eq!(alive.count(), 0, "the region returned before its descendants ended");
            Ok(())
        });
        assert_eq!(result_ids(&result), [14, 15, 16], "{result:?}");
    });
}

// ---- (c) a body that fails inside its shield while held ------------------------------------

/// (c) The body cancels the enclosing region and returns `Err` from inside its own shield.
/// Promise: the body's error reaches the enclosing scope (the dropped scope hands it on).
#[test]
fn a_body_failing_inside_its_shield_under_a_cancelled_region_reaches_the_enclosing_scope() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(|s| {
                s.spawn(cleanup_fails(17, &gate, &alive));
                until(|| gate.started() == 1).await;
                shield(async {
                    token.cancel("stop");
                    gate.go.set();
                    klaw::time::sleep(ms(3)).await;
                    Err::<(), _>(FetchError(18))
                })
                .await?;
                Ok(())
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| assert_eq!(alive.count(), 0)).await;
        assert_eq!(result_ids(&result), [17, 18], "{result:?}");
    });
}

/// (c) The same with a local child's shield also holding the region, and the body returning
/// `Err` right after its shield ends (in the same poll).
#[test]
fn a_body_failing_right_after_its_shield_while_a_local_shield_still_holds_is_reported() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(|s| {
                s.spawn_local(holder(&gate, 1, &alive));
                until(|| gate.started() == 1).await;
                shield(async {
                    token.cancel("stop");
                    klaw::time::sleep(ms(2)).await;
                })
                .await;
                gate.fail(19)?;
                Ok(())
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| assert_eq!(alive.count(), 0)).await;
        assert_eq!(result_ids(&result), [19], "{result:?}");
    });
}

/// (c) A task whose handle is cancelled runs a scope whose body fails inside its shield.
/// Promise: the body's failure reaches the task's scope.
#[test]
fn a_body_failing_inside_its_shield_in_a_cancelled_task_reaches_the_tasks_scope() {
    in_task(|| async {
        let gate = Gate::default();
        let result: Result<(), Error> = klaw::scope!(|outer| {
            let g = gate.clone();
            let task = outer.spawn(async move {
                let _ = klaw::scope!(|_s| {
                    shield(async {
                        g.started.fetch_add(1, SeqCst);
                        until(|| g.go.is_set()).await;
                        Err::<(), _>(FetchError(20))
                    })
                    .await?;
                    Ok(())
                });
            });
            gate.cancel_once_started(1, || task.cancel("stop")).await;
            Ok(())
        });
        assert_eq!(result_ids(&result), [20], "{result:?}");
    });
}

// ---- (d) supervisor scopes -----------------------------------------------------------------

/// (d) A supervisor scope whose children have already failed returns in the same poll in which
/// its body cancels the enclosing region (its result is `Err` with both failures). Promise:
/// "every failure a body or child actually produced ... ends up in the scope's result": a
/// region that drops that result must not drop the failures with it; the enclosing scope gets
/// them (as it does for a default-mode scope in the same spot).
#[test]
fn supervisor_failures_survive_an_enclosing_region_cancelled_as_the_scope_returns() {
    in_task(|| async {
        let alive = Alive::default();
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(supervisor, |s| {
                let mut handles = Vec::new();
                for id in [21u32, 22] {
                    let guard = alive.guard(ZERO);
                    handles.push(s.spawn(Task::fallible(async move {
                        let _guard = guard;
                        Err::<(), _>(FetchError(id))
                    })));
                }
                until(|| handles.iter().all(|h| h.is_finished())).await;
                token.cancel("stop"); // the region stops as the scope returns
                Ok(())
            })
        };
        let result = in_an_enclosing_scope(region, inner, |ran| {
            assert!(ran.is_err(), "the region was cancelled");
        })
        .await;
        assert_eq!(alive.count(), 0);
        assert_eq!(result_ids(&result), [21, 22], "{result:?}");
    });
}

/// (d) Control for the test above: the same, default mode (the first failure cancels the
/// scope, so the scope does not return while the region stops, and hands its failure on).
#[test]
fn default_mode_failure_survives_an_enclosing_region_cancelled_as_the_scope_returns() {
    in_task(|| async {
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(|s| {
                s.spawn_local(async {
                    token.cancel("stop");
                });
                s.spawn_local(fails_at_once(23));
                Ok(())
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| {}).await;
        assert_eq!(result_ids(&result), [23], "{result:?}");
    });
}

/// (d) The race behind the test above, from outside: another thread cancels the enclosing
/// region's token while the supervisor scope (whose children failed) is returning. 200 rounds.
/// Promise: whichever way it goes, both failures reach the outer scope -- through the region's
/// value when the scope's result won, through the frame when the cancel won.
#[test]
fn supervisor_failures_survive_a_racing_outside_cancel_of_the_enclosing_region() {
    with_deadline(|| {
        let rt = runtime(2);
        let mut dropped_rounds = 0;
        for round in 0..200u32 {
            let result: Result<(), Error> = rt.block_on(async {
                klaw::scope!(|_outer| {
                    let region = Region::new();
                    let token = region.token();
                    let go = Flag::default();
                    let g = go.clone();
                    let canceller = std::thread::spawn(move || {
                        spin_until(|| g.is_set());
                        token.cancel("stop");
                    });
                    let ran = region
                        .run(async {
                            klaw::scope!(supervisor, |s| {
                                let a = s.spawn(fails_at_once(1));
                                let b = s.spawn(fails_at_once(2));
                                until(|| a.is_finished() && b.is_finished()).await;
                                go.set();
                                for _ in 0..(round % 50) {
                                    std::hint::spin_loop();
                                }
                                Ok(())
                            })
                        })
                        .await;
                    canceller.join().unwrap();
                    match ran {
                        Ok(scope_result) => scope_result?,
                        Err(_cancelled) => {}
                    }
                    Ok(())
                })
            });
            if result.is_ok() {
                dropped_rounds += 1;
            }
            assert_eq!(
                result_ids(&result),
                [1, 2],
                "round {round} ({dropped_rounds} lost so far): {result:?}"
            );
        }
    });
}

/// (d) A supervisor scope under an enclosing region that a local shield holds: three children
/// fail in their cleanup after the cancel. Promise: "the scope returns every failure" -- here
/// the enclosing scope gets all three.
#[test]
fn supervisor_cleanup_failures_under_a_held_region_all_arrive() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(supervisor, |s| {
                s.spawn_local(holder(&gate, 3, &alive));
                for id in [24u32, 25, 26] {
                    s.spawn(cleanup_fails(id, &gate, &alive));
                }
                gate.cancel_once_started_then_wait(4, || token.cancel("stop")).await
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| assert_eq!(alive.count(), 0)).await;
        assert_eq!(result_ids(&result), [24, 25, 26], "{result:?}");
    });
}

/// (d) A supervisor scope in a task whose handle is cancelled: one child had failed before the
/// cancel, two fail in cleanup after it. Promise: all three reach the task's scope.
#[test]
fn supervisor_failures_before_and_after_a_handle_cancel_all_reach_the_tasks_scope() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let result: Result<(), Error> = klaw::scope!(|outer| {
            let (g, a) = (gate.clone(), alive.clone());
            let task = outer.spawn(async move {
                let _ = klaw::scope!(supervisor, |s| {
                    let early = s.spawn(fails_at_once(27));
                    s.spawn(cleanup_fails(28, &g, &a));
                    s.spawn(cleanup_fails(29, &g, &a));
                    until(|| early.is_finished()).await;
                    g.failed.fetch_add(1, SeqCst);
                    pending::<()>().await;
                    Ok(())
                });
            });
            until(|| gate.started() == 2 && gate.failed() == 1).await;
            task.cancel("stop");
            gate.go.set();
            Ok(())
        });
        assert_eq!(alive.count(), 0);
        assert_eq!(result_ids(&result), [27, 28, 29], "{result:?}");
    });
}

/// (d) A supervisor body takes a child's failure (awaiting its handle), then cancels the
/// enclosing region and returns that failure in the same poll, while a sibling fails in its
/// cleanup. Promise: the body's error and the sibling's failure both arrive, each once.
#[test]
fn a_supervisor_body_returning_a_taken_failure_as_the_region_stops_is_reported_once() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(supervisor, |s| {
                s.spawn(cleanup_fails(30, &gate, &alive));
                let taken = s.spawn(fails_at_once(31)).await;
                gate.cancel_once_started(1, || token.cancel("stop")).await;
                taken?;
                Ok(())
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| assert_eq!(alive.count(), 0)).await;
        assert_eq!(result_ids(&result), [30, 31], "{result:?}");
    });
}

// ---- (e) limited scopes --------------------------------------------------------------------

/// (e) `limit = 2`: two children run (cleaning up, then failing) and four wait, when the
/// enclosing region is cancelled while a local shield holds it. Promise: the two failures
/// arrive; "a waiting child that is cancelled never runs its body"; every child (queued ones
/// included) ended before the region returned.
#[test]
fn a_limited_scope_under_a_held_region_reports_its_running_failures_and_never_starts_the_rest() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let queued_ran = Flag::default();
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(limit = 2, |s| {
                s.spawn_local(holder(&gate, 2, &alive));
                s.spawn(cleanup_fails(32, &gate, &alive));
                s.spawn(cleanup_fails(33, &gate, &alive));
                for id in 100u32..104 {
                    let guard = alive.guard(ZERO);
                    let ran = queued_ran.clone();
                    s.spawn(Task::fallible(async move {
                        let _guard = guard;
                        ran.set();
                        Err::<(), _>(FetchError(id))
                    }));
                }
                gate.cancel_once_started_then_wait(3, || token.cancel("stop")).await
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| {
            assert_eq!(alive.count(), 0, "the region returned before every child ended");
        })
        .await;
        assert!(!queued_ran.is_set(), "a queued child ran after the cancel");
        assert_eq!(result_ids(&result), [32, 33], "{result:?}");
    });
}

/// (e) `limit = 2` in a task cancelled by its handle, with a local child's shield holding the
/// task: the running children fail in cleanup. Promise: both failures reach the task's scope,
/// queued children never run, nothing outlives the handle.
#[test]
fn a_limited_scope_in_a_cancelled_task_reports_its_running_failures() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let queued_ran = Flag::default();
        let (g, a, q) = (gate.clone(), alive.clone(), queued_ran.clone());
        let work = async move {
            let _ = klaw::scope!(limit = 2, |s| {
                s.spawn_local(holder(&g, 2, &a));
                s.spawn(cleanup_fails(34, &g, &a));
                s.spawn(cleanup_fails(35, &g, &a));
                for _ in 0..4 {
                    let ran = q.clone();
                    s.spawn(async move { ran.set() });
                }
                pending::<()>().await;
                Ok(())
            });
        };
        let result = with_a_task_cancelled_by_its_handle(&gate, 3, work, |_| {
            assert_eq!(alive.count(), 0, "the handle resolved before the grandchildren ended");
        })
        .await;
        assert!(!queued_ran.is_set(), "a queued child ran after the cancel");
        assert_eq!(result_ids(&result), [34, 35], "{result:?}");
    });
}

// ---- (f) child sets ------------------------------------------------------------------------

/// (f) A child set of three children that fail in cleanup, the body waiting in
/// `next_finished` when the enclosing region is cancelled under a held local shield.
/// Promise: none of the failures is lost, though nobody takes them out of the set.
#[test]
fn child_set_failures_never_taken_under_a_held_region_all_arrive() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let token = region.token();
        let inner = async {
            klaw::scope!(|s| {
                s.spawn_local(holder(&gate, 3, &alive));
                let mut set = s.child_set();
                for id in [36u32, 37, 38] {
                    set.spawn(cleanup_fails(id, &gate, &alive));
                }
                let waiting = async {
                    while let Some(outcome) = set.next_finished().await {
                        outcome?;
                    }
                    Ok::<(), Error>(())
                };
                let cancel = gate.cancel_once_started(4, || token.cancel("stop"));
                let (waited, ()) = join(waiting, cancel).await;
                waited?;
                Ok(())
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| assert_eq!(alive.count(), 0)).await;
        assert_eq!(result_ids(&result), [36, 37, 38], "{result:?}");
    });
}

/// (f) Default mode: the body takes one failure out of the set inside a shield (where a
/// failure the body awaited is the body's to report) and returns it; another child's failure
/// is never taken. Promise: both reported, the taken one "not counted twice".
#[test]
fn a_failure_taken_from_a_set_in_a_shield_and_one_never_taken_are_each_reported_once() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn(cleanup_fails(39, &gate, &alive));
            until(|| gate.started() == 1).await;
            let mut set = s.child_set();
            set.spawn(fails_at_once(40));
            let taken = shield(async {
                let taken = set.next_finished().await;
                gate.go.set();
                taken
            })
            .await;
            taken.expect("one child")?;
            Ok(())
        });
        assert_eq!(alive.count(), 0);
        assert_eq!(result_ids(&result), [39, 40], "{result:?}");
    });
}

/// (f) Supervisor: the body takes one failure out of the set, the enclosing region is
/// cancelled from another thread, and the body returns it right after a shield; another
/// child failed and was never awaited, a third fails in cleanup. Promise: all three are reported.
#[test]
fn supervisor_set_failures_taken_and_not_taken_under_an_outside_cancel_all_arrive() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let canceller = cancel_from_another_thread(&gate, region.token(), |g| g.failed() == 2);
        let inner = async {
            klaw::scope!(supervisor, |s| {
                s.spawn(cleanup_fails(41, &gate, &alive));
                let mut set = s.child_set();
                set.spawn(fails_at_once(42));
                let never = s.spawn(fails_at_once(43));
                let taken = set.next_finished().await.expect("one child");
                until(|| never.is_finished()).await;
                shield(async {
                    gate.failed.fetch_add(2, SeqCst);
                    until(|| gate.go.is_set()).await;
                    klaw::time::sleep(ms(5)).await;
                })
                .await;
                taken?; // the taken failure goes back as the body's error
                Ok(())
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| {
            canceller.join().unwrap();
            assert_eq!(alive.count(), 0);
        })
        .await;
        assert_eq!(result_ids(&result), [41, 42, 43], "{result:?}");
    });
}

// ---- (g) start -----------------------------------------------------------------------------

/// (g) `s.start` children under an outside cancel (another thread cancels the region while a
/// local shield holds it): one fails in cleanup before calling `ready`, one after. Promise:
/// both failures reach the enclosing scope.
#[test]
fn started_children_failing_before_and_after_ready_under_a_held_region_are_reported() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let region = Region::new();
        let canceller = cancel_from_another_thread(&gate, region.token(), |g| g.started() == 3);
        let inner = async {
            klaw::scope!(|s| {
                s.spawn_local(holder(&gate, 2, &alive));
                let (g1, a1) = (gate.clone(), alive.clone());
                let (_, _after) = s
                    .start(move |ready: klaw::scope::Ready<u8>| {
                        let guard = a1.guard(ZERO);
                        Task::fallible(async move {
                            let _guard = guard;
                            ready.ready(1);
                            g1.clean_up().await;
                            g1.fail(44)
                        })
                    })
                    .await?;
                let (g2, a2) = (gate.clone(), alive.clone());
                let before = s.start(move |ready: klaw::scope::Ready<u8>| {
                    let guard = a2.guard(ZERO);
                    Task::fallible(async move {
                        let _guard = guard;
                        g2.clean_up().await;
                        g2.failed.fetch_add(1, SeqCst);
                        drop(ready);
                        Err::<(), _>(FetchError(45))
                    })
                });
                before.await?;
                Ok(())
            })
        };
        let result = in_an_enclosing_scope(region, inner, |_| {
            canceller.join().unwrap();
            assert_eq!(alive.count(), 0);
        })
        .await;
        assert_eq!(result_ids(&result), [44, 45], "{result:?}");
    });
}

// ---- (h) blocking children -----------------------------------------------------------------

/// (h) Blocking children return `Err` and panic after `s.cancel`. Promise: "a blocking child,
/// say, that returned Err after it was cancelled: its handle says Cancelled, and the scope
/// still reports its failure" -- both here, and the scope waits for both closures.
#[test]
fn blocking_children_failing_and_panicking_after_scope_cancel_are_reported() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let result: Result<(), Error> = klaw::scope!(|s| {
            let _handles = [
                s.spawn(blocking_fails(46, &gate, &alive)),
                s.spawn(blocking_panics(47, &gate, &alive)),
            ];
            let g = gate.clone();
            let a = alive.clone();
            s.spawn_blocking(move || {
                let _guard = a.guard(ZERO);
                g.started.fetch_add(1, SeqCst);
                spin_until(|| g.go.is_set());
                panic!("boom 48");
            });
            gate.cancel_once_started_then_wait(3, || s.cancel("enough")).await
        });
        assert_eq!(alive.count(), 0, "the scope returned before its blocking children ended");
        assert_eq!(result_ids(&result), [46, 47, 48], "{result:?}");
    });
}

/// (h) Blocking children fail after the task running their scope was cancelled by its handle.
/// Promise: the failures reach the task's scope; the handle resolves after the closures end.
#[test]
fn blocking_children_failing_after_a_handle_cancel_reach_the_tasks_scope() {
    in_task(|| async {
        let (gate, alive) = (Gate::default(), Alive::default());
        let (g, a) = (gate.clone(), alive.clone());
        let work = async move {
            let _ = klaw::scope!(|s| {
                s.spawn(blocking_fails(49, &g, &a));
                s.spawn(blocking_panics(50, &g, &a));
                pending::<()>().await;
                Ok(())
            });
        };
        let result = with_a_task_cancelled_by_its_handle(&gate, 2, work, |_| {
            assert_eq!(alive.count(), 0, "the handle resolved before the closures ended");
        })
        .await;
        assert_eq!(result_ids(&result), [49, 50], "{result:?}");
    });
}

// ---- (i) nested 3 deep, a handle's cancel racing the innermost failure ------------------------

/// (i) A task runs three nested scopes, each level passing its scope's result up (fallible
/// tasks and local children); the innermost child fails (a foreign spin released by a flag)
/// in the same instant as the task's handle is cancelled. 300 rounds on two workers. Promise:
/// whenever the child produced its `Err`, the failure is in the outer scope's result exactly
/// once, whichever won; and the innermost child ended before the outer scope returned.
#[test]
fn three_nested_scopes_a_handle_cancel_racing_the_innermost_failure_loses_nothing() {
    nested_race(false);
}

/// (i) The same race, with a local shield in the middle scope holding the task open while the
/// cancel lands (`enclosing_held` in the scopes of that task). 300 rounds.
#[test]
fn three_nested_scopes_with_a_held_middle_a_racing_failure_is_kept() {
    nested_race(true);
}

fn nested_race(held_middle: bool) {
    with_deadline(move || {
        let rt = runtime(2);
        let mut produced_rounds = 0;
        for round in 0..300u32 {
            let alive = Alive::default();
            let go = Flag::default();
            let produced = Flag::default();
            let ready = Arc::new(AtomicUsize::new(0));
            let (a, g, p, r) = (alive.clone(), go.clone(), produced.clone(), ready.clone());
            let result: Result<(), Error> = rt.block_on(async move {
                klaw::scope!(|outer| {
                    let task = outer.spawn(Task::fallible(async move {
                        klaw::scope!(|s1| {
                            s1.spawn_local(Task::fallible(async {
                                klaw::scope!(|s2| {
                                    if held_middle {
                                        let (g, r) = (g.clone(), r.clone());
                                        s2.spawn_local(shield(async move {
                                            r.fetch_add(1, SeqCst);
                                            foreign_until(|| g.is_set()).await;
                                            klaw::time::sleep(ms(1)).await;
                                        }));
                                    }
                                    let (a, g, p, r) = (a.clone(), g.clone(), p.clone(), r.clone());
                                    s2.spawn(Task::fallible(async move {
                                        klaw::scope!(|s3| {
                                            let guard = a.guard(ZERO);
                                            s3.spawn(Task::fallible(async move {
                                                let _guard = guard;
                                                r.fetch_add(1, SeqCst);
                                                foreign_until(|| g.is_set()).await;
                                                p.set(); // the failure is produced
                                                Err::<(), _>(FetchError(round))
                                            }));
                                            pending::<()>().await;
                                            Ok(())
                                        })
                                    }));
                                    pending::<()>().await;
                                    Ok(())
                                })
                            }));
                            pending::<()>().await;
                            Ok(())
                        })
                    }));
                    let needed = if held_middle { 2 } else { 1 };
                    until(|| ready.load(SeqCst) == needed).await;
                    go.set();
                    task.cancel("stop");
                    Ok(())
                })
            });
            assert_eq!(alive.count(), 0, "round {round}: returned before the child ended");
            let expected: &[u32] = if produced.is_set() { &[round] } else { &[] };
            produced_rounds += usize::from(produced.is_set());
            assert_eq!(
                result_ids(&result),
                expected,
                "round {round} ({produced_rounds} rounds produced a failure): {result:?}"
            );
        }
    });
}

// ---- (j) a scope dropped outside any frame logs what fails afterwards ------------------------

/// Installs a hook-only subscriber once; serialises the logging tests.
fn logging() -> std::sync::MutexGuard<'static, ()> {
    static INIT: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    INIT.call_once(|| {
        klaw::log::LogConfig::default().filter("info").without_output().init().unwrap();
    });
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serialises a logging test ([`logging`]) and collects every event through a hook, which the
/// test removes itself (checking that it was still there).
fn collect_log_events() -> (std::sync::MutexGuard<'static, ()>, HookId, Arc<Mutex<Vec<LogEvent>>>) {
    let serial = logging();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let hook = klaw::log::add_hook(move |event| sink.lock().unwrap().push(event.clone()));
    (serial, hook, events)
}

/// The ids in warn events that say a failure could only be logged, collected by a hook.
fn dropped_failure_ids(events: &Mutex<Vec<LogEvent>>, ids: &[u32]) -> Vec<u32> {
    let mut found = Vec::new();
    for event in events.lock().unwrap().iter() {
        if event.level != tracing::Level::WARN || !event.message.contains("dropped before") {
            continue;
        }
        let error = event.fields.get("error").cloned().unwrap_or_default();
        for id in ids {
            if error.contains(&format!("fetch {id} failed"))
                || error.contains(&format!("boom {id}"))
            {
                found.push(*id);
            }
        }
    }
    found.sort_unstable();
    found
}

/// Runs `scope` in a `block_on` outside any klaw task, and drops it (with
/// `futures_lite::future::or`) once `ready` says so: no frame there to hand failures to.
/// `dropping` is set as the drop begins, before the scope's own drop runs.
fn drop_outside_any_frame<T>(
    rt: &klaw::Runtime,
    scope: impl Future<Output = T>,
    ready: impl Fn() -> bool,
    dropping: &Flag,
) {
    let scope = FlagBeforeDrop { flag: dropping.clone(), future: Box::pin(scope) };
    rt.block_on(futures_lite::future::or(
        async {
            let _ = scope.await;
        },
        until(ready),
    ));
}

/// A future that sets `flag` when it is dropped, before the future it wraps is (a struct's own
/// `drop` runs before its fields are dropped).
struct FlagBeforeDrop<F> {
    flag: Flag,
    future: std::pin::Pin<Box<F>>,
}

impl<F: Future> Future for FlagBeforeDrop<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<F> Drop for FlagBeforeDrop<F> {
    fn drop(&mut self) {
        self.flag.set();
    }
}

/// (j) A scope is dropped by `futures_lite::future::or` in a `block_on` outside any task; its
/// children (a parallel one in cleanup, a blocking one, a grandchild scope's child) fail after
/// the drop. Promise: "Only a scope dropped outside any klaw task or region logs them (a warn
/// event, which klaw::log hooks receive)": each failure logged once; and the drop blocked
/// until every child ended.
#[test]
fn a_scope_dropped_outside_any_frame_logs_failures_that_come_after_the_drop() {
    let (_serial, hook, events) = collect_log_events();
    with_deadline(|| {
        let rt = runtime(2);
        let (gate, alive, dropping) = (Gate::default(), Alive::default(), Flag::default());
        // The grandchild fails once its parent's body (and with it the nested scope) is dropped:
        // failing before that, it would cancel the nested scope, whose error the body discards.
        let body_dropped = Flag::default();
        let setter = release_once_dropped(&gate, 3, &[&dropping, &body_dropped]);
        let scope = async {
            klaw::scope!(|s| {
                s.spawn(cleanup_fails(51, &gate, &alive));
                s.spawn(blocking_fails(52, &gate, &alive));
                let (g, a, dropped) = (gate.clone(), alive.clone(), body_dropped.clone());
                s.spawn(async move {
                    let _dropped = SetOnDrop(dropped); // dropped after the nested scope
                    let _ = klaw::scope!(|inner| {
                        inner.spawn(cleanup_fails(53, &g, &a));
                        pending::<()>().await;
                        Ok(())
                    });
                });
                pending::<()>().await;
                Ok(())
            })
        };
        drop_outside_any_frame(&rt, scope, || gate.started() == 3, &dropping);
        assert_eq!(alive.count(), 0, "the drop returned before the children ended");
        setter.join().unwrap();
    });
    // Give a late log line a moment (there should be none: logged before the drop returned).
    std::thread::sleep(ms(20));
    assert!(klaw::log::remove_hook(hook));
    assert_eq!(dropped_failure_ids(&events, &[51, 52, 53]), [51, 52, 53]);
}

/// (j) The same drop with a local child's shield running and a child that already failed
/// before the drop: the local child is dropped with the scope (a foreign `or` drops outright);
/// the early failure and a later one are each logged once.
#[test]
fn a_scope_dropped_outside_any_frame_logs_an_early_and_a_late_failure_once_each() {
    let (_serial, hook, events) = collect_log_events();
    with_deadline(|| {
        let rt = runtime(2);
        let (gate, alive, dropping) = (Gate::default(), Alive::default(), Flag::default());
        let setter = release_once_dropped(&gate, 2, &[&dropping]);
        let scope = async {
            klaw::scope!(supervisor, |s| {
                s.spawn_local(holder(&gate, 99, &alive));
                s.spawn(cleanup_fails(54, &gate, &alive));
                let early = s.spawn(fails_at_once(55));
                until(|| early.is_finished()).await;
                gate.failed.fetch_add(100, SeqCst);
                pending::<()>().await;
                Ok(())
            })
        };
        drop_outside_any_frame(
            &rt,
            scope,
            || gate.started() == 2 && gate.failed() >= 100,
            &dropping,
        );
        assert_eq!(alive.count(), 0, "the drop returned before the children ended");
        setter.join().unwrap();
    });
    std::thread::sleep(ms(20));
    assert!(klaw::log::remove_hook(hook));
    assert_eq!(dropped_failure_ids(&events, &[54, 55]), [54, 55]);
}

// ---- (k) a task with no scope logs a failure after its end once ------------------------------

/// Panics when dropped (not while a panic unwinds already).
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// The warn events about task `id`.
fn warnings_about(events: &Mutex<Vec<LogEvent>>, id: u64) -> Vec<LogEvent> {
    let events = events.lock().unwrap();
    let about =
        |event: &&LogEvent| event.level == tracing::Level::WARN && event.task_id() == Some(id);
    events.iter().filter(about).cloned().collect()
}

/// A top-level task (no scope to report to) cancelled while its body holds a value whose
/// destructor panics: its handle keeps the cancellation, and the panic, a failure of the task
/// that nothing else shows, is logged once, with its message (it was logged twice: once by the
/// body's drop and once by the report of a failure after the end, which left the message out).
#[test]
fn a_top_level_tasks_cleanup_panic_is_logged_once_with_its_message() {
    let (_serial, hook, events) = collect_log_events();
    let rt = runtime(1);
    let (started_tx, started) = std::sync::mpsc::channel();
    let task = rt.spawn(async move {
        let _cleanup = PanicsOnDrop("cleanup of the top-level task failed");
        started_tx.send(()).unwrap();
        pending::<()>().await;
    });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    let id = task.id().as_u64();
    assert!(task.cancel("stop"));
    assert!(matches!(rt.block_on(task), Err(TaskError::Cancelled(_))));
    assert!(klaw::log::remove_hook(hook));
    let warnings = warnings_about(&events, id);
    assert_eq!(warnings.len(), 1, "one report of the one failure: {warnings:#?}");
    let says_why = warnings[0]
        .fields
        .values()
        .any(|value| value.contains("cleanup of the top-level task failed"));
    assert!(says_why, "the report leaves out the panic's message: {warnings:#?}");
}

/// The same inside a scope: a child cancelled by its handle while a value of its body panics as
/// it is dropped. The failure is in the scope's result, and logged once (it was logged twice:
/// by the body's drop and by the scope's report of a failure after the child's end).
#[test]
fn a_childs_cleanup_panic_is_in_the_scopes_result_and_logged_once() {
    let (_serial, hook, events) = collect_log_events();
    let rt = runtime(1);
    let child_id = Arc::new(Mutex::new(None));
    let result: Result<(), Error> = rt.block_on(async {
        klaw::scope!(|s| {
            let (started_tx, started) = klaw::channel::oneshot::channel::<()>();
            let child = s.spawn(async move {
                let _cleanup = PanicsOnDrop("cleanup of the child failed");
                let _ = started_tx.send(());
                pending::<()>().await;
            });
            *child_id.lock().unwrap() = Some(child.id().as_u64());
            started.await.unwrap();
            assert!(child.cancel("stop"));
            Ok(())
        })
    });
    assert!(klaw::log::remove_hook(hook));
    let in_result = result
        .as_ref()
        .is_err_and(|error| format!("{error:?}").contains("cleanup of the child failed"));
    assert!(in_result, "the scope's result leaves out the failure: {result:?}");
    let id = child_id.lock().unwrap().expect("the child was spawned");
    let warnings = warnings_about(&events, id);
    assert_eq!(warnings.len(), 1, "one report of the one failure: {warnings:#?}");
}
