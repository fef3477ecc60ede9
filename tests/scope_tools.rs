//! The everyday tools of a nursery: children collected as they finish (`ChildSet`) and children
//! that report readiness (`Scope::start`), with fail-fast, supervisor mode and limits.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::{FetchError, Flag, failing};
use futures_lite::StreamExt;
use klaw::scope::{NotReady, Ready};
use klaw::{CancelReason, Error, TaskError};

async fn sleeper(ms: u64) -> u64 {
    klaw::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// On a paused clock: the three sleeps start together and end in their order, however busy
/// the machine (on real time, a child first polled late could finish out of turn).
#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_child_set_gives_outcomes_in_the_order_the_children_finish() {
    let order = klaw::scope!(|s| {
        let mut set = s.child_set();
        for ms in [60, 0, 30] {
            set.spawn(sleeper(ms));
        }
        let mut order = Vec::new();
        while let Some(outcome) = set.next_finished().await {
            order.push(outcome?);
        }
        Ok(order)
    })
    .unwrap();
    assert_eq!(order, [0, 30, 60]);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_child_set_is_a_stream_of_outcomes() {
    let total: u64 = klaw::scope!(|s| {
        let mut set = s.child_set();
        for ms in 1..=4 {
            set.spawn(sleeper(ms));
        }
        let outcomes: Vec<_> = set.collect().await;
        Ok(outcomes.into_iter().map(Result::unwrap).sum())
    })
    .unwrap();
    assert_eq!(total, 10);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn under_a_limit_a_child_set_still_gives_every_outcome_as_it_finishes() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let count = klaw::scope!(limit = 2, |s| {
        let mut set = s.child_set();
        for i in 0..20u64 {
            let (running, most) = (running.clone(), most.clone());
            set.spawn(async move {
                most.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                klaw::time::sleep(Duration::from_millis(20 - i)).await;
                running.fetch_sub(1, SeqCst);
                i
            });
        }
        let mut seen = Vec::new();
        while let Some(i) = set.next_finished().await {
            seen.push(i?);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        Ok(seen.len())
    })
    .unwrap();
    assert_eq!(count, 20);
    assert_eq!(most.load(SeqCst), 2);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn in_fail_fast_mode_a_failure_in_the_set_fails_the_scope_and_is_never_handed_over() {
    let handed_over = Arc::new(AtomicUsize::new(0));
    let result: Result<(), Error> = klaw::scope!(|s| {
        let mut set = s.child_set();
        set.spawn(failing(3, Duration::from_millis(10)));
        set.spawn(klaw::Task::fallible(async {
            klaw::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, FetchError>(())
        }));
        while let Some(outcome) = set.next_finished().await {
            handed_over.fetch_add(1, SeqCst);
            outcome?;
        }
        Ok(())
    });
    let Err(Error::Task { error: TaskError::Failed(failure), .. }) = &result else {
        panic!("unexpected {result:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(3)));
    assert_eq!(handed_over.load(SeqCst), 0, "the body was cancelled before it saw the failure");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn in_supervisor_mode_the_set_hands_every_failure_to_the_body() {
    let (good, bad) = klaw::scope!(supervisor, |s| {
        let mut set = s.child_set();
        for i in 0..6 {
            set.spawn(klaw::Task::fallible(async move {
                if i % 2 == 0 { Err(FetchError(i)) } else { Ok(i) }
            }));
        }
        let (mut good, mut bad) = (0, 0);
        while let Some(outcome) = set.next_finished().await {
            match outcome {
                Ok(_) => good += 1,
                Err(Error::Task { error: TaskError::Failed(f), .. })
                    if f.downcast_ref::<FetchError>().is_some() =>
                {
                    bad += 1
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        Ok((good, bad))
    })
    .unwrap();
    assert_eq!((good, bad), (3, 3));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn dropping_a_set_neither_cancels_nor_detaches_its_children() {
    let finished = Flag::default();
    let flag = finished.clone();
    klaw::scope!(|s| {
        let mut set = s.child_set();
        set.spawn(async move {
            klaw::time::sleep(Duration::from_millis(30)).await;
            flag.set();
        });
        drop(set);
        Ok(())
    })
    .unwrap();
    assert!(finished.is_set(), "the scope waited for the set's child");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn cancelling_a_set_hands_back_cancelled_outcomes_including_waiting_children() {
    let outcomes = klaw::scope!(limit = 1, |s| {
        let mut set = s.child_set();
        for _ in 0..3 {
            set.spawn(std::future::pending::<()>());
        }
        set.cancel_all("enough");
        let mut reasons = Vec::new();
        while let Some(outcome) = set.next_finished().await {
            match outcome {
                Err(Error::Task { error: TaskError::Cancelled(reason), .. }) => {
                    reasons.push(reason)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        Ok(reasons)
    })
    .unwrap();
    assert_eq!(outcomes, vec![CancelReason::user("enough"); 3]);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn start_returns_the_ready_value_and_the_child_keeps_running() {
    let (tx, rx) = klaw::channel::bounded::<u32>(4);
    let echoed = klaw::scope!(|s| {
        let (greeting, server) = s
            .start(move |ready: Ready<String>| async move {
                ready.ready("listening".to_owned());
                let mut sum = 0;
                while let Ok(v) = rx.recv().await {
                    sum += v;
                }
                sum
            })
            .await?;
        assert_eq!(greeting, "listening");
        assert!(!server.is_finished());
        for v in [1, 2, 3] {
            tx.send(v).await?;
        }
        drop(tx);
        Ok(server.await?)
    })
    .unwrap();
    assert_eq!(echoed, 6);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn the_body_waits_at_start_until_the_child_is_ready() {
    let ready_at = Arc::new(AtomicUsize::new(0));
    let step = Arc::new(AtomicUsize::new(0));
    klaw::scope!(|s| {
        let (ready_step, step_in_child) = (ready_at.clone(), step.clone());
        s.start(move |ready| async move {
            klaw::time::sleep(Duration::from_millis(30)).await;
            ready_step.store(step_in_child.fetch_add(1, SeqCst) + 1, SeqCst);
            ready.ready(());
        })
        .await?;
        // The child's readiness came first.
        assert_eq!(step.fetch_add(1, SeqCst), 1);
        Ok(())
    })
    .unwrap();
    assert_eq!(ready_at.load(SeqCst), 1);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_child_that_fails_before_it_is_ready_makes_start_return_its_failure() {
    // Supervisor mode: the failure is start's to return.
    let outcome = klaw::scope!(supervisor, |s| {
        let started = s
            .start(|_ready: Ready<u16>| klaw::Task::fallible(async { Err::<(), _>(FetchError(9)) }))
            .await;
        Ok(started.map(|(port, _)| port))
    })
    .unwrap();
    let Err(Error::Task { error: TaskError::Failed(failure), .. }) = &outcome else {
        panic!("unexpected {outcome:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(9)));

    // Fail-fast mode: the failure fails the scope, which returns it.
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.start(|_ready: Ready<u16>| klaw::Task::fallible(async { Err::<(), _>(FetchError(8)) }))
            .await?;
        Ok(())
    });
    let Err(Error::Task { error: TaskError::Failed(failure), .. }) = &result else {
        panic!("unexpected {result:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(8)));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_child_that_ends_well_without_ready_makes_start_return_not_ready() {
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.start(|_ready: Ready<u16>| async {}).await?;
        Ok(())
    });
    let Err(Error::Other(error)) = &result else { panic!("unexpected {result:?}") };
    assert!(error.downcast_ref::<NotReady>().is_some(), "{error}");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_child_that_drops_its_ready_is_waited_for_to_the_end() {
    let ended = Flag::default();
    let flag = ended.clone();
    let result: Result<(), Error> = klaw::scope!(|s| {
        let started = s
            .start(move |ready: Ready<()>| async move {
                drop(ready);
                klaw::time::sleep(Duration::from_millis(30)).await;
                flag.set();
            })
            .await;
        assert!(ended.is_set(), "start returned only once the child had ended");
        started?;
        Ok(())
    });
    assert!(matches!(result, Err(Error::Other(_))), "unexpected {result:?}");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_cancelled_start_leaves_the_child_to_the_scope() {
    let served = Flag::default();
    let flag = served.clone();
    klaw::scope!(|s| {
        let start = s.start(move |ready: Ready<()>| async move {
            klaw::time::sleep(Duration::from_millis(30)).await;
            ready.ready(());
            flag.set();
        });
        let gave_up = klaw::cancel::move_on_after(Duration::from_millis(1), start).await;
        assert!(gave_up.is_none());
        Ok(())
    })
    .unwrap();
    assert!(served.is_set(), "the child went on after start was dropped, and the scope waited");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn start_under_a_limit_waits_for_a_slot_and_then_for_readiness() {
    let value = klaw::scope!(limit = 1, |s| {
        s.spawn(klaw::time::sleep(Duration::from_millis(20)));
        let (value, _) = s.start(|ready| async move { ready.ready(7) }).await?;
        Ok(value)
    })
    .unwrap();
    assert_eq!(value, 7);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_background_child_is_stopped_not_awaited_once_the_rest_is_done() {
    let dropped = Flag::default();
    let guard = common::SetOnDrop(dropped.clone());
    let mut heartbeat = None;
    let value = klaw::scope!(|s| {
        let beating = s.spawn_background(async move {
            let _guard = guard;
            loop {
                klaw::time::sleep(Duration::from_millis(1)).await;
            }
        });
        heartbeat = Some(beating.task_ref());
        s.spawn(klaw::time::sleep(Duration::from_millis(20)));
        Ok(7)
    })
    .unwrap();
    assert_eq!(value, 7, "a stopped background child is not a failure of the scope");
    assert!(dropped.is_set(), "the background child had ended when the scope returned");
    let heartbeat = heartbeat.unwrap();
    assert_eq!(heartbeat.cancel_reason(), Some(CancelReason::ScopeFinished));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_background_child_that_fails_first_fails_the_scope() {
    let result: Result<(), Error> = klaw::scope!(|s| {
        s.spawn_background(failing(5, Duration::ZERO));
        s.spawn(klaw::time::sleep(Duration::from_secs(30)));
        Ok(())
    });
    let Err(Error::Task { error: TaskError::Failed(failure), .. }) = &result else {
        panic!("unexpected {result:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(5)));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_background_child_does_not_take_a_slot_of_the_limit() {
    let ran = Arc::new(AtomicUsize::new(0));
    klaw::scope!(limit = 1, |s| {
        s.spawn_background(std::future::pending::<()>());
        for _ in 0..3 {
            let ran = ran.clone();
            s.spawn(async move { ran.fetch_add(1, SeqCst) });
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(ran.load(SeqCst), 3);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_scope_with_only_background_children_stops_them_when_the_body_returns() {
    let result = klaw::scope!(|s| {
        s.spawn_background(std::future::pending::<()>());
        s.spawn_background(klaw::Task::fallible(async {
            std::future::pending::<()>().await;
            Ok::<(), FetchError>(())
        }));
        Ok("body done")
    });
    assert_eq!(result.unwrap(), "body done");
}
