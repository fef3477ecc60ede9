//! trio's run-loop tests (`src/trio/_core/_tests/test_run.py`: `test_nursery_start`,
//! `test_system_task_crash_plus_Cancelled`, `test_main_and_task_both_crash`,
//! `test_cancel_shield_abort`, `test_cancel_inheritance`) at edges that klaw's own ports
//! (`ported_trio_nursery.rs`, `ported_trio_cancellation.rs`, `nursery_start_edges.rs`,
//! `failures_kept.rs`, `held_shields.rs`, `scope_tools.rs`) do not reach.
//!
//! Each test says what it expects from a reading of the code (`//! `//! (`in_task`), and a wait that a defect would make endless is bounded (`fail_after`,
//! `move_on_after`), so a defect fails with a message instead of hanging the suite.
//!
//! Self-contained (no `mod common;`), so it can be dropped into `tests/` as is.

use std::future::pending;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use klaw::cancel::{Region, fail_after, move_on_after, shield};
use klaw::scope::{NotReady, Ready};
use klaw::{CancelReason, Error, Task, TaskError};

// ---- helpers ------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("fetch {0} failed")]
struct FetchError(u32);

#[derive(Clone, Default)]
struct Flag(Arc<AtomicBool>);

impl Flag {
    fn set(&self) {
        self.0.store(true, SeqCst);
    }
    fn is_set(&self) -> bool {
        self.0.load(SeqCst)
    }
}

/// Sets its flag when dropped: the body that owns it was dropped.
struct SetOnDrop(Flag);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// A destructor that fails: Rust's form of trio's `except Cancelled: raise ...` / `finally: raise`.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Waits (at klaw's await points) until `done` says so.
async fn until(done: impl Fn() -> bool) {
    while !done() {
        klaw::time::sleep(ms(1)).await;
    }
}

/// Runs the future `make` builds as a klaw task on a two-worker runtime, on a thread of its
/// own, within 30 s: a hang fails the test, a panic fails it with its own message.
fn in_task<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = klaw::Runtime::builder().workers(2).build().expect("runtime");
        let outcome = rt.block_on(rt.spawn(make()));
        let _ = done.send(outcome);
    });
    match finished.recv_timeout(secs(30)) {
        Ok(Ok(())) => {}
        Ok(Err(TaskError::Panicked(message))) => panic!("{message}"),
        Ok(Err(other)) => panic!("the test's task ended with {other:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the scenario hung (30 s)"),
        Err(_) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the scenario returned without sending"),
        },
    }
}

/// Every failure in a scope's error, in the order the scope lists them, in words.
fn failures(error: &Error) -> Vec<String> {
    let listed: Vec<&Error> = match error {
        Error::Scope(scope) => scope.errors().iter().collect(),
        other => vec![other],
    };
    listed
        .into_iter()
        .map(|error| match error {
            Error::Task { error: TaskError::Failed(failure), .. } => {
                match failure.downcast_ref::<FetchError>() {
                    Some(FetchError(id)) => format!("fetch {id}"),
                    None => format!("{error:?}"),
                }
            }
            Error::Task { error: TaskError::Panicked(message), .. } => format!("panic: {message}"),
            Error::Task { error: TaskError::TimedOut(_), .. } => "timed out".to_owned(),
            Error::Task { error: TaskError::Cancelled(reason), .. } => {
                format!("cancelled: {reason}")
            }
            Error::Body(body) => match body.downcast_ref::<FetchError>() {
                Some(FetchError(id)) => format!("body {id}"),
                None => format!("{error:?}"),
            },
            other => format!("{other:?}"),
        })
        .collect()
}

// ---- errors raised during cleanup after a cancellation ------------------------------------------

/// trio `test_system_task_crash_plus_Cancelled` / `test_task_crash_propagation` with the
/// cleanup written the Rust way: a child cancelled because a sibling failed runs its cleanup in
/// a destructor (the only code a dropped future runs), and that cleanup fails (panics). In trio
/// the exception raised in `except Cancelled:` / `finally:` comes out of the nursery beside the
/// sibling's crash. klaw promises "every failure a body actually produced is in the scope's
/// result, even one that raced a sibling's cancel"; the same panic raised *in a poll* inside a
/// shield after the cancel is reported (`nursery_guarantee.rs::a_panic_after_a_sibling_cancel_
/// is_in_the_scopes_result`), and so is a blocking child's `Err` after its cancel.
#[test]
fn a_cancelled_childs_cleanup_that_panics_is_in_the_scopes_result() {
    in_task(|| async {
        let running = Flag::default();
        let result: Result<(), Error> = klaw::scope!(|s| {
            let running2 = running.clone();
            s.spawn(async move {
                let _cleanup = PanicOnDrop("cleanup failed");
                running2.set();
                pending::<()>().await;
            });
            until(|| running.is_set()).await;
            s.spawn(Task::fallible(async { Err::<(), _>(FetchError(1)) }));
            pending::<()>().await;
            Ok(())
        });
        let error = result.expect_err("the sibling failed");
        let listed = failures(&error);
        assert!(listed.contains(&"fetch 1".to_owned()), "{listed:?}");
        assert!(
            listed.contains(&"panic: cleanup failed".to_owned()),
            "the failure of the cancelled child's cleanup was lost: the scope reported {listed:?}"
        );
    });
}

/// The same cleanup failure when the scope is cancelled by hand (trio: `nursery.cancel_scope.
/// cancel()` and a child whose `finally:` raises; the nursery raises that error, not a quiet
/// cancellation). klaw: "The scope then returns Err(TaskError::Cancelled(reason)) unless
/// something failed".
#[test]
fn a_scope_cancelled_by_hand_reports_a_childs_failing_cleanup() {
    in_task(|| async {
        let running = Flag::default();
        let result: Result<(), Error> = klaw::scope!(|s| {
            let running2 = running.clone();
            s.spawn(async move {
                let _cleanup = PanicOnDrop("flush failed");
                running2.set();
                pending::<()>().await;
            });
            until(|| running.is_set()).await;
            s.cancel("stop");
            Ok(())
        });
        let error = result.expect_err("cancelled");
        assert!(
            failures(&error).contains(&"panic: flush failed".to_owned()),
            "a failure of the cleanup was replaced by the cancellation: {error:?}"
        );
    });
}

// ---- start: readiness that outlives the child -----------------------------------------------------

/// trio `test_nursery_start`, "child exiting cleanly before calling started -> RuntimeError
/// 'exited without calling'". klaw documents (`Scope::start`, scopes.md "Waiting until a child
/// is ready"): "If the child ends before it is ready, `start` reports why: ... or
/// `klaw::scope::NotReady` if it ended well without calling `ready`." `Ready<V>` is `Send +
/// 'static`, so a child can hand it to someone else (a sibling, a channel) and end well. Here
/// the sibling is a background child that just holds it: without the bound below, the body
/// waits in `start` for ever, and the background child is stopped only once the body ends, so
/// the scope deadlocks.
#[test]
fn start_says_not_ready_when_the_child_ended_but_gave_its_ready_away() {
    in_task(|| async {
        let result: Result<&'static str, Error> = klaw::scope!(|s| {
            let (give, take) = klaw::channel::oneshot::channel::<Ready<u16>>();
            s.spawn_background(async move {
                let _held = take.await;
                pending::<()>().await;
            });
            let started = fail_after(
                secs(2),
                s.start(move |ready: Ready<u16>| async move {
                    let _ = give.send(ready); // hands its readiness on, then ends well
                }),
            )
            .await;
            Ok(match &started {
                Err(_) => "start still waited 2 s after the child had ended",
                Ok(Ok(_)) => "start returned a value",
                Ok(Err(Error::Other(error))) if error.downcast_ref::<NotReady>().is_some() => {
                    "not ready"
                }
                Ok(Err(_)) => "start returned another error",
            })
        });
        assert_eq!(result.expect("the scope ends well"), "not ready");
    });
}

// ---- a held cancellation and a scope that nobody polls ------------------------------------------

/// trio `test_cancel_inheritance` / `test_cancel_shield_abort`: a cancellation reaches every
/// task under the cancelled scope at once, whatever another task shields. klaw's book
/// (cancellation.md, "Shields"): "While a shield holds a decided cancellation open ... a scope
/// under it cancels its other children". `held_shields.rs` and `failures_kept.rs` check that
/// with the scope beside the shield in a `join`, which polls every branch on every wake-up.
/// Here the scope is a branch of a `FuturesUnordered` (as under `buffer_unordered`), which
/// polls only the branches whose own waker was woken.
#[test]
fn a_scope_in_a_futures_unordered_cancels_its_children_while_a_shield_holds_the_region() {
    in_task(|| async {
        let (running, dropped) = (Flag::default(), Flag::default());
        let seen = Arc::new(Mutex::new(None::<bool>));
        let region = Region::new();
        let token = region.token();
        let (running2, dropped2, running3, dropped3, seen2) =
            (running.clone(), dropped.clone(), running.clone(), dropped.clone(), seen.clone());
        let result = region
            .run(async move {
                let mut branches: FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send>>> =
                    FuturesUnordered::new();
                branches.push(Box::pin(async move {
                    let _: Result<(), Error> = klaw::scope!(|s| {
                        s.spawn(async move {
                            let _alive = SetOnDrop(dropped2);
                            running2.set();
                            pending::<()>().await;
                        });
                        pending::<()>().await;
                        Ok(())
                    });
                }));
                branches.push(Box::pin(shield(async move {
                    until(|| running3.is_set()).await;
                    token.cancel("stop");
                    let cancelled = move_on_after(secs(2), until(|| dropped3.is_set())).await;
                    *seen2.lock().unwrap() = Some(cancelled.is_some());
                })));
                while branches.next().await.is_some() {}
            })
            .await;
        assert_eq!(result, Err(CancelReason::user("stop")));
        assert!(dropped.is_set(), "the region returned before the scope's child ended");
        assert_eq!(
            seen.lock().unwrap().take(),
            Some(true),
            "the scope's child ran on for 2 s under the held cancellation (cancelled only when \
             the shield ended)"
        );
    });
}

// ---- the order of failures ----------------------------------------------------------------------

/// A child's own timeout passes while it is in a shielded cleanup (trio: its `fail_after`
/// fires inside a shielded `finally`), and the cleanup then fails. Both failures are kept
/// (klaw's rule); scopes.md: "Error::Scope, which lists them all, the first first;
/// `error.first()` gives the one that started it". The timeout came first.
#[test]
fn a_childs_timeout_is_listed_before_the_cleanup_failure_that_followed_it() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn(
                Task::fallible(async {
                    shield(klaw::time::sleep(ms(100))).await;
                    Err::<(), _>(FetchError(7))
                })
                .timeout(ms(10)),
            );
            Ok(())
        });
        let error = result.expect_err("the child timed out and failed");
        assert_eq!(failures(&error), ["timed out", "fetch 7"], "{error:?}");
    });
}

// ---- high-value gaps (expected to hold) ---------------------------------------------------------

/// trio `test_main_and_task_both_crash`, in the order klaw promises: a child crashes, which
/// cancels the body; the body, holding that cancellation open in a shield, then fails too.
/// Both are kept, the child's first (it happened first).
#[test]
fn a_body_failing_after_a_childs_crash_is_listed_after_it() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|s| {
            s.spawn(Task::fallible(async { Err::<(), _>(FetchError(1)) }));
            shield(until(|| s.is_cancelled())).await;
            Err(FetchError(2).into())
        });
        let error = result.expect_err("both failed");
        assert_eq!(failures(&error), ["fetch 1", "body 2"], "{error:?}");
    });
}

/// A supervisor scope with `limit = 1`, cancelled by hand; the body drains its child set in a
/// shield. Every child comes back, the running one and the three waiting for the slot, each
/// cancelled with the scope's reason; no waiting child ever ran; and the scope reports the
/// cancellation (the body's `Ok` after it does not win). trio has no limit; this is the
/// "limit-queued children when the scope is cancelled" edge: reported as cancelled through
/// their handles, never run, not counted as failures.
#[test]
fn a_cancelled_limited_supervisor_scope_hands_every_child_back_cancelled() {
    in_task(|| async {
        let ran = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Mutex::new(Vec::<String>::new()));
        let running = Flag::default();
        let (ran2, drained2, running2) = (ran.clone(), drained.clone(), running.clone());
        let result: Result<(), Error> = klaw::scope!(supervisor, limit = 1, |s| {
            let mut set = s.child_set::<(), std::convert::Infallible>();
            let holder = running2.clone();
            set.spawn(async move {
                holder.set();
                pending::<()>().await;
            });
            for _ in 0..3 {
                let ran = ran2.clone();
                set.spawn(async move {
                    ran.fetch_add(1, SeqCst);
                });
            }
            until(|| running2.is_set()).await;
            s.cancel("stop");
            shield(async {
                while let Some(outcome) = set.next_finished().await {
                    let said = match outcome {
                        Ok(()) => "ran".to_owned(),
                        Err(Error::Task { error: TaskError::Cancelled(reason), .. }) => {
                            format!("cancelled: {reason}")
                        }
                        Err(other) => format!("{other:?}"),
                    };
                    drained2.lock().unwrap().push(said);
                }
            })
            .await;
            Ok(())
        });
        assert!(
            matches!(&result, Err(Error::Task { error: TaskError::Cancelled(r), .. }) if *r == CancelReason::user("stop")),
            "{result:?}"
        );
        let stop = format!("cancelled: {}", CancelReason::user("stop"));
        assert_eq!(*drained.lock().unwrap(), vec![stop; 4]);
        assert_eq!(ran.load(SeqCst), 0, "a waiting child of a cancelled scope ran");
    });
}

// ---- the edges a scope's own end leaves ---------------------------------------------------------

/// A scope's deadline that passes while only its background children are left, being stopped
/// by the scope itself (one holds its cancellation open in a shield), finds the scope's work
/// done: the body's value stands. trio's `fail_after` around a nursery raises only if its own
/// cancellation was caught, and here the scope had cancelled what was left before the deadline.
#[test]
fn a_deadline_passing_while_background_children_stop_keeps_the_bodys_value() {
    in_task(|| async {
        let started = Flag::default();
        let result: Result<u32, Error> = klaw::scope!(timeout = "40ms", |s| {
            let running = started.clone();
            s.spawn_background(async move {
                running.set();
                shield(klaw::time::sleep(ms(150))).await;
            });
            until(|| started.is_set()).await;
            Ok(7)
        });
        assert_eq!(result.expect("the body and its foreground ended in time"), 7);
    });
}

/// The foreground still running when the deadline passes makes it count: the same scope with a
/// slow foreground child reports `Elapsed`, as before.
#[test]
fn a_deadline_passing_while_a_foreground_child_runs_is_the_scopes_error() {
    in_task(|| async {
        let result: Result<u32, Error> = klaw::scope!(timeout = "20ms", |s| {
            s.spawn_background(shield(klaw::time::sleep(ms(150))));
            s.spawn(klaw::time::sleep(secs(10)));
            Ok(7)
        });
        assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
    });
}

/// A scope dropped before it returned hands its failures to the frame it was dropped in in the
/// order they happened: the child's crash, then the body's error that followed it.
#[test]
fn a_dropped_scope_hands_on_its_failures_in_the_order_they_happened() {
    in_task(|| async {
        let result: Result<(), Error> = klaw::scope!(|_outer| {
            let inner = Box::pin(async {
                let inner: Result<(), Error> = klaw::scope!(|s| {
                    // Keeps the inner scope open after its body has failed.
                    let started = Flag::default();
                    let running = started.clone();
                    s.spawn(async move {
                        running.set();
                        shield(klaw::time::sleep(ms(150))).await;
                    });
                    until(|| started.is_set()).await;
                    s.spawn(Task::fallible(async { Err::<(), _>(FetchError(1)) }));
                    shield(until(|| s.is_cancelled())).await;
                    Err(FetchError(2).into())
                });
                inner
            });
            let waited =
                futures_util::future::select(inner, Box::pin(klaw::time::sleep(ms(50)))).await;
            let returned = matches!(waited, futures_util::future::Either::Left(_));
            assert!(!returned, "the inner scope returned");
            drop(waited); // drops the inner scope mid-way
            Ok(())
        });
        let error = result.expect_err("the dropped scope's failures are the outer scope's");
        assert_eq!(failures(&error), ["fetch 1", "body 2"], "{error:?}");
    });
}

/// Once a scope says it is cancelled (what encloses it was cancelled from outside), a child it
/// spawns starts cancelled and never runs, as a child spawned after `s.cancel` does: trio
/// delivers the nursery's cancellation at the child's first checkpoint, Kotlin's `launch` in a
/// cancelled scope does not start the body.
#[test]
fn a_child_spawned_after_the_scope_heard_an_outside_cancel_never_runs() {
    in_task(|| async {
        let ran = Flag::default();
        let (asked, told) = (Flag::default(), Flag::default());
        let (ran2, asked2, told2) = (ran.clone(), asked.clone(), told.clone());
        let task = klaw::Handle::current().expect("in a task").spawn(async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                asked2.set();
                // No await: the task cannot be dropped meanwhile, as code between two awaits.
                while !s.is_cancelled() {
                    std::hint::spin_loop();
                }
                let ran = ran2.clone();
                s.spawn(async move { ran.set() });
                // Gives the child time to run on the other worker before the task's next poll.
                std::thread::sleep(ms(50));
                told2.set();
                Ok(())
            });
        });
        until(|| asked.is_set()).await;
        task.cancel("stop");
        let _ = task.await;
        assert!(told.is_set());
        assert!(!ran.is_set(), "a child spawned after the scope said it was cancelled ran");
    });
}
