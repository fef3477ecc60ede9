//! The nursery guarantee under races: each scenario of `nursery_guarantee.rs` whose outcome
//! depends on timing runs `ROUNDS` times on two workers, so that every interleaving the machine
//! produces is checked against the same rule.

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Alive, Flag, runtime};
use klaw::{CancelReason, Error, Task, TaskError, cancel::Region, task::BlockingTask};

const ROUNDS: usize = 200;

#[derive(Debug, thiserror::Error)]
#[error("child {0} failed")]
struct ChildFailed(usize);

#[test]
fn a_cancelled_task_always_resolves_after_its_scopes_children() {
    let rt = runtime(2);
    for round in 0..ROUNDS {
        let alive = Alive::default();
        let children = alive.clone();
        let task = rt.spawn(async move {
            klaw::scope!(|s| {
                for _ in 0..2 {
                    let guard = children.guard(Duration::from_micros(200));
                    s.spawn(async move {
                        let _guard = guard;
                        pending::<()>().await;
                    });
                }
                pending::<()>().await;
                Ok(())
            })
        });
        // Cancel at a different moment each round: before, while and after the body runs.
        for _ in 0..round % 4 {
            std::thread::yield_now();
        }
        task.cancel("stop");
        assert!(rt.block_on(task).is_err());
        assert_eq!(alive.count(), 0, "round {round}: resolved with children alive");
    }
}

#[klaw::test(workers = 2, timeout = "60s")]
async fn a_region_always_returns_after_the_blocking_child_of_its_scope() {
    for round in 0..ROUNDS {
        let alive = Alive::default();
        let children = alive.clone();
        let _ = klaw::cancel::move_on_after(Duration::from_micros(500), async move {
            klaw::scope!(|s| {
                let guard = children.guard(Duration::ZERO);
                s.spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(1));
                    drop(guard);
                });
                Ok(())
            })
        })
        .await;
        assert_eq!(alive.count(), 0, "round {round}: the region returned first");
    }
}

#[klaw::test(workers = 2, timeout = "60s")]
async fn cancelling_an_outer_scope_always_waits_for_every_grandchild() {
    for round in 0..ROUNDS {
        let alive = Alive::default();
        let _: Result<(), Error> = klaw::scope!(|s| {
            for _ in 0..2 {
                let grandchildren = alive.clone();
                s.spawn(async move {
                    let _ = klaw::scope!(|inner| {
                        for _ in 0..2 {
                            let guard = grandchildren.guard(Duration::from_micros(100));
                            inner.spawn(async move {
                                let _guard = guard;
                                pending::<()>().await;
                            });
                        }
                        pending::<()>().await;
                        Ok(())
                    });
                });
            }
            if round % 2 == 0 {
                while alive.count() < 4 {
                    klaw::time::sleep(Duration::from_micros(50)).await;
                }
            }
            s.cancel("stop");
            Ok(())
        });
        assert_eq!(alive.count(), 0, "round {round}: a grandchild outlived the outer scope");
    }
}

#[test]
fn nested_tokens_always_see_a_cancel_from_another_thread_and_the_outer_region_catches_it() {
    let rt = runtime(2);
    for round in 0..ROUNDS {
        let outer = Region::new();
        let outer_token = outer.token();
        let inner = Region::new();
        let inner_token = inner.token();
        let started = Flag::default();
        let inner_started = started.clone();
        let seen_at_the_end: Arc<Mutex<Option<Option<CancelReason>>>> = Arc::default();
        let (at_the_end, inner_seen) = (seen_at_the_end.clone(), inner.token());
        let canceller = std::thread::spawn(move || {
            while !started.is_set() {
                std::hint::spin_loop();
            }
            for _ in 0..round % 8 {
                std::thread::yield_now();
            }
            outer_token.cancel("outer");
        });
        let result = rt.block_on(outer.run(async {
            // The inner future completes soon; the outer cancel races it.
            let value = inner
                .run(async {
                    inner_started.set();
                    klaw::time::sleep(Duration::from_micros(50)).await;
                })
                .await;
            *at_the_end.lock().unwrap() = Some(inner_seen.reason());
            (value, klaw::time::sleep(Duration::from_secs(60)).await)
        }));
        canceller.join().unwrap();
        assert_eq!(result, Err(CancelReason::user("outer")), "round {round}");
        match seen_at_the_end.lock().unwrap().take() {
            // Dropped by the outer cancel before it ended: its token heard that cancel.
            None => assert_eq!(inner_token.reason(), Some(CancelReason::user("outer")), "{round}"),
            // Ended first: its token reports what it heard while it ran, and nothing after.
            Some(seen) => assert_eq!(inner_token.reason(), seen, "round {round}"),
        }
    }
}

#[klaw::test(workers = 2, timeout = "60s")]
async fn an_awaited_failure_always_fails_the_scope_and_siblings_always_get_sibling_failed() {
    for round in 0..ROUNDS {
        let mut siblings = Vec::new();
        let result: Result<&str, Error> = klaw::scope!(|s| {
            for _ in 0..2 {
                siblings.push(s.spawn(klaw::time::sleep(Duration::from_secs(60))).task_ref());
            }
            let bad = s.spawn(Task::fallible(async move {
                if round % 2 == 0 {
                    klaw::time::sleep(Duration::from_micros(50)).await;
                }
                Err::<(), _>(ChildFailed(round))
            }));
            match bad.await {
                Err(_) => Ok("recovered"),
                Ok(()) => Ok("impossible"),
            }
        });
        assert!(
            matches!(&result, Err(Error::Task { error: TaskError::Failed(f), .. }) if f.downcast_ref::<ChildFailed>().is_some()),
            "round {round}: {result:?}"
        );
        for sibling in &siblings {
            assert_eq!(sibling.cancel_reason(), Some(CancelReason::SiblingFailed), "round {round}");
        }
    }
}

#[klaw::test(workers = 2, timeout = "60s")]
async fn every_failure_a_body_produced_is_in_the_result_when_children_fail_together() {
    for round in 0..ROUNDS {
        let produced = Arc::new(AtomicUsize::new(0));
        let result: Result<(), Error> = klaw::scope!(|s| {
            for child in 0..4 {
                let produced = produced.clone();
                if child % 2 == 0 {
                    s.spawn(Task::fallible(async move {
                        klaw::time::sleep(Duration::from_micros(100)).await;
                        // Past this point the body has failed, whatever its handle will say.
                        produced.fetch_add(1, Ordering::SeqCst);
                        Err::<(), _>(ChildFailed(child))
                    }));
                } else {
                    // A blocking body cannot be stopped once it runs: it fails after the cancel.
                    s.spawn(BlockingTask::fallible(move || {
                        std::thread::sleep(Duration::from_micros(100));
                        produced.fetch_add(1, Ordering::SeqCst);
                        Err::<(), _>(ChildFailed(child))
                    }));
                }
            }
            Ok(())
        });
        let reported = match &result {
            Err(Error::Scope(errors)) => errors.len(),
            Err(Error::Task { error: TaskError::Failed(_), .. }) => 1,
            other => panic!("round {round}: {other:?}"),
        };
        assert_eq!(reported, produced.load(Ordering::SeqCst), "round {round}: a failure was lost");
    }
}
