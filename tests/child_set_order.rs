//! The order in which a scope's `ChildSet` hands its children over: the order they finished
//! ("first finished first", as tokio's `JoinSet::join_next`), whenever the body looks, however
//! many there are, and whenever a child was added. From tokio's `task_join_set.rs`
//! (`test_with_sleep`, `join_set_coop`, `alternating`; tokio at `ea91b33c`), checked for order.

mod common;

use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use common::{Flag, in_task, ms, secs, until};
use futures_lite::StreamExt;
use klaw::Error;
use klaw::time::sleep;

/// Adds a child per duration to `set` that sleeps that many milliseconds and returns it.
fn spawn_sleepers<const N: usize>(
    set: &mut klaw::scope::ChildSet<'_, '_, u64, Infallible>,
    after: [u64; N],
) {
    for after in after {
        set.spawn(async move {
            sleep(ms(after)).await;
            after
        });
    }
}

/// What a cancelled scope's body may still do in a shield: takes every child left in `set`, in
/// the order the set hands them over (after `pause`), each as its value or `None` if it failed.
async fn drain_in_a_shield(
    set: &mut klaw::scope::ChildSet<'_, '_, u64, Infallible>,
    pause: std::time::Duration,
) -> Vec<Option<u64>> {
    klaw::cancel::shield(async {
        sleep(pause).await;
        let mut outcomes = Vec::new();
        while let Some(outcome) = set.next_finished().await {
            outcomes.push(outcome.ok());
        }
        outcomes
    })
    .await
}

/// tokio `task_join_set::test_with_sleep` (join_next as children finish). Children that all
/// finished before the body first looked at the set are handed over in finish order.
// What would break it: children queued in the order they were added until first polled.
#[klaw::test(start_paused = true, timeout = "30s")]
async fn a_set_first_polled_after_its_children_finished_gives_them_in_finish_order() {
    let order = klaw::scope!(|s| {
        let mut set = s.child_set::<u64, Infallible>();
        spawn_sleepers(&mut set, [60, 0, 30]);
        sleep(ms(100)).await; // all three finish meanwhile: 0, then 30, then 60
        let mut order = Vec::new();
        while let Some(outcome) = set.next_finished().await {
            order.push(outcome?);
        }
        Ok(order)
    })
    .unwrap();
    assert_eq!(order, [0, 30, 60]);
}

/// The same through the set's `Stream` (tokio `join_all` / `test_with_sleep`).
#[klaw::test(start_paused = true, timeout = "30s")]
async fn a_set_collected_as_a_stream_after_its_children_finished_is_in_finish_order() {
    let order = klaw::scope!(|s| {
        let mut set = s.child_set::<u64, Infallible>();
        spawn_sleepers(&mut set, [60, 0, 30]);
        sleep(ms(100)).await;
        let outcomes: Vec<_> = set.collect().await;
        Ok(outcomes.into_iter().map(Result::unwrap).collect::<Vec<_>>())
    })
    .unwrap();
    assert_eq!(order, [0, 30, 60]);
}

/// tokio `task_join_set::join_set_coop` + completion order: more finished children than one
/// poll's budget (128) come back in the order they finished, across the yields.
// What would break it: a child whose poll found the budget spent waking itself to the back.
#[klaw::test(start_paused = true, timeout = "30s")]
async fn a_set_drained_past_the_cooperative_budget_keeps_finish_order() {
    const CHILDREN: u64 = 200;
    let order = klaw::scope!(|s| {
        let mut set = s.child_set::<u64, Infallible>();
        for i in 0..CHILDREN {
            set.spawn(async move {
                sleep(ms(i + 1)).await;
                i
            });
        }
        // Polls every child once (registering its waker), as a body waiting in the set would.
        assert!(set.try_next_finished().is_none());
        sleep(secs(1)).await; // child i finishes at i + 1 ms, in index order
        let mut order = Vec::new();
        while let Some(outcome) = set.next_finished().await {
            order.push(outcome?);
        }
        Ok(order)
    })
    .unwrap();
    assert_eq!(order, (0..CHILDREN).collect::<Vec<_>>());
}

/// tokio `task_join_set::alternating` (spawn into a set already being joined) + completion
/// order: a child added to a set that was already polled, and that finishes later than an
/// older child, comes after it.
// What would break it: the new child waiting in the set's queue from its push, ahead of the
// older child, queued only when it finishes.
#[klaw::test(start_paused = true, timeout = "30s")]
async fn a_child_added_to_a_polled_set_that_finishes_later_comes_after_the_older_one() {
    let order = klaw::scope!(|s| {
        let mut set = s.child_set::<u64, Infallible>();
        set.spawn(async {
            sleep(ms(10)).await;
            10
        });
        assert!(set.try_next_finished().is_none()); // the first child is polled and waits
        set.spawn(async {
            sleep(ms(50)).await;
            50
        });
        sleep(ms(100)).await; // 10 finishes, then 50
        let mut order = Vec::new();
        while let Some(outcome) = set.next_finished().await {
            order.push(outcome?);
        }
        Ok(order)
    })
    .unwrap();
    assert_eq!(order, [10, 50]);
}

/// A child that finished before its scope was cancelled, added to a set after the cancel, and
/// collected in a shield (which holds the cancelled scope's body open for its cleanup): it is
/// handed over there. What would break it: the set polling the child as it is added, finding the
/// scope stopping, and dropping the child from its queue unwoken, so the shield waits for ever.
#[klaw::test(timeout = "30s")]
async fn a_child_added_to_a_cancelled_scopes_set_is_handed_over_in_a_shield() {
    let collected = std::sync::Mutex::new(Vec::new());
    let result: Result<(), klaw::Error> = klaw::scope!(|s| {
        let mut set = s.child_set::<u64, Infallible>();
        let child = s.spawn(async { 7u64 });
        common::foreign_until(|| child.is_finished()).await;
        s.cancel("stop");
        set.insert(child);
        *collected.lock().unwrap() = drain_in_a_shield(&mut set, ms(0)).await;
        Ok(())
    });
    assert!(result.is_err(), "the scope was cancelled");
    assert_eq!(*collected.lock().unwrap(), [Some(7)]);
}

/// Three children that finish at 10, 20 and 30 ms (paused clock: exactly in that order); the
/// first two are in the set from the start, the third is added after the scope was cancelled,
/// and the set is drained in a shield.
///
/// Checks: the order is 10, 20, 30 (first finished first).
///
/// Breaks if the insert left the third child ahead of the two that woke themselves in the
/// set's queue: the order is then 30, 10, 20.
#[klaw::test(start_paused = true, timeout = "30s")]
async fn a_child_added_while_the_scope_stops_comes_after_children_that_finished_before_it() {
    let collected = Mutex::new(Vec::new());
    let result: Result<(), klaw::Error> = klaw::scope!(|s| {
        let mut set = s.child_set::<u64, Infallible>();
        spawn_sleepers(&mut set, [10, 20]);
        let late = s.spawn(async {
            sleep(ms(30)).await;
            30u64
        });
        sleep(ms(100)).await; // 10, then 20, then 30 have finished
        s.cancel("stop");
        set.insert(late);
        *collected.lock().unwrap() = drain_in_a_shield(&mut set, ms(0)).await;
        Ok(())
    });
    assert!(result.is_err(), "the scope was cancelled");
    let in_order = [Some(10), Some(20), Some(30)];
    assert_eq!(*collected.lock().unwrap(), in_order, "not in the order they finished");
}

/// The same with the third child spawned by the set itself after the cancel (it starts
/// cancelled and ends at once, after the other two): it must still come last.
#[klaw::test(start_paused = true, timeout = "30s")]
async fn a_child_spawned_into_a_stopping_scopes_set_comes_after_the_finished_ones() {
    let collected = Mutex::new(Vec::new());
    let _: Result<(), klaw::Error> = klaw::scope!(|s| {
        let mut set = s.child_set::<u64, Infallible>();
        spawn_sleepers(&mut set, [10, 20]);
        sleep(ms(100)).await;
        s.cancel("stop");
        set.spawn(async { 99 }); // cancelled before it starts
        // The cancelled child ends during the pause.
        *collected.lock().unwrap() = drain_in_a_shield(&mut set, ms(10)).await;
        Ok(())
    });
    let collected = collected.into_inner().unwrap();
    assert_eq!(collected.len(), 3, "{collected:?}");
    assert_eq!(collected[2], None, "the cancelled late child was handed over first: {collected:?}");
}

/// A child's destructor run inside another set's `insert` (a limited scope's child cancelled
/// while it waited for a slot ends there, unstarted) runs an async cleanup: a scope whose set
/// hands over a child after the scope was cancelled sets `handed`. What would break it: the
/// flag by which `insert` only sets finished children aside, raised for the thread rather than
/// for its own scope, so that the cleanup's set skipped its scope's cancellation point.
struct Probe {
    ran: Flag,
    handed: Flag,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let (ran, handed) = (self.ran.clone(), self.handed.clone());
        klaw::runtime::block_on(async move {
            let _: Result<(), Error> = klaw::scope!(|t| {
                let mut set = t.child_set();
                let child = t.spawn(async { 1u32 });
                until(|| child.is_finished()).await;
                set.insert(child); // set aside: it has finished
                t.cancel("stop");
                // A cancellation point: the scope stops, nothing is handed over here.
                if set.next_finished().await.is_some() {
                    handed.set();
                }
                Ok(())
            });
        });
        ran.set();
    }
}

#[test]
fn a_child_set_of_a_stopping_scope_in_a_destructor_run_by_insert_hands_nothing_over() {
    in_task(|| async {
        let (ran, handed) = (Flag::default(), Flag::default());
        let probe = Probe { ran: ran.clone(), handed: handed.clone() };
        let holder_may_end = ran.clone();
        let _: Result<(), Error> = klaw::scope!(limit = 1, |s| {
            let mut set = s.child_set();
            // Holds the only slot until the probe has run.
            set.spawn(until(move || holder_may_end.is_set()));
            let waiting = s.spawn(async move {
                let _probe = probe;
                klaw::time::sleep(Duration::from_millis(1)).await;
            });
            assert!(waiting.cancel("never mind"));
            // Ends `waiting` unstarted (dropping the probe) while the flag is raised.
            set.insert(waiting);
            while set.next_finished().await.is_some() {}
            Ok(())
        });
        assert!(ran.is_set(), "the probe never ran");
        assert!(
            !handed.is_set(),
            "a ChildSet handed a child over after its scope was cancelled: the \
             SETTING_ASIDE flag of another set's insert was up on this thread"
        );
    });
}
