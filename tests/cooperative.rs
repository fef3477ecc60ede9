//! The cooperative budget: a task that keeps finding ready values (a channel that never empties
//! or never fills, a `select!` whose arms are always ready, a `watch`, `broadcast` or
//! `oneshot` with a value waiting, an elapsed `sleep`, `cancel::checkpoint`) yields once its
//! budget is spent, so the other tasks of its worker still run; nothing it was doing is lost
//! when it yields; `task::unconstrained` opts out; the future of `Runtime::block_on` (the body
//! of `#[klaw::main]`/`#[klaw::test]`) has a budget too, as tokio's has; and elsewhere (a
//! foreign executor, a blocking helper) nothing changes.
//!
//! Each loop below runs on a one-worker runtime and never awaits anything but the operation
//! under test. The sibling that stops it is queued on the same worker before the loop starts,
//! so it runs only if the loop yields: without the budget these tests hang until their timeout.
//!
//! Ported from tokio's cooperative-scheduling tests (`rt_common.rs` `coop`,
//! `coop_unconstrained`, `coop_consume_budget`; `sync_watch.rs`, `sync_broadcast.rs`
//! `*_is_cooperative`), translated to a sibling that must get its turn.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use klaw::channel::{Receiver, broadcast, oneshot, watch};

/// Runs `looping` in a task of the current (one-worker) runtime, after that task has spawned a
/// sibling which sets the flag `looping` is given. The sibling can only run when the loop
/// yields, and the loop stops when it sees the flag.
async fn loop_until_a_sibling_runs<L, F, T>(looping: L) -> T
where
    L: FnOnce(Arc<AtomicBool>) -> F + Send + 'static,
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let runtime = klaw::Handle::current().unwrap();
    let task = runtime.spawn(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let sibling = klaw::Handle::current().unwrap().spawn({
            let stop = stop.clone();
            async move { stop.store(true, Ordering::SeqCst) }
        });
        let output = looping(stop).await;
        sibling.await.unwrap();
        output
    });
    task.await.unwrap()
}

fn stopped(stop: &AtomicBool) -> bool {
    stop.load(Ordering::SeqCst)
}

/// How many receives complete in one poll of the current task (the last one that does not
/// complete is dropped, which gives up its place in line).
async fn ready_in_one_poll<T>(rx: &Receiver<T>) -> usize {
    std::future::poll_fn(|cx| {
        let mut ready = 0;
        while let Poll::Ready(Ok(_)) = pin!(rx.recv()).poll(cx) {
            ready += 1;
        }
        Poll::Ready(ready)
    })
    .await
}

const QUEUED: u32 = 64;

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_recv_loop_on_a_channel_that_never_empties_lets_a_sibling_run_and_loses_nothing() {
    let (tx, rx) = klaw::channel::bounded::<u32>(QUEUED as usize);
    for n in 0..QUEUED {
        tx.try_send(n).unwrap();
    }
    let (rounds, rx) = loop_until_a_sibling_runs(move |stop| async move {
        let mut rounds = 0u64;
        while !stopped(&stop) {
            let message = rx.recv().await.unwrap();
            tx.try_send(message).unwrap(); // back in: the channel never empties
            rounds += 1;
        }
        (rounds, rx)
    })
    .await;
    assert!(rounds > 0);
    // A receive that yielded for the budget took nothing: every message is there, once.
    let mut left: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    left.sort_unstable();
    assert_eq!(left, (0..QUEUED).collect::<Vec<_>>());
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_recv_loop_gets_every_message_once_and_in_order_across_its_yields() {
    const MESSAGES: u32 = 10_000;
    let (tx, rx) = klaw::channel::unbounded::<u32>();
    for n in 0..MESSAGES {
        tx.try_send(n).unwrap();
    }
    drop(tx);
    let received = loop_until_a_sibling_runs(move |stop| async move {
        let mut received = Vec::new();
        while let Ok(message) = rx.recv().await {
            received.push(message);
        }
        // The loop yielded on the way (the sibling ran), yet missed nothing.
        assert!(stopped(&stop), "ten thousand receives and the sibling never ran");
        received
    })
    .await;
    assert_eq!(received, (0..MESSAGES).collect::<Vec<_>>());
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_send_loop_into_a_channel_that_never_fills_lets_a_sibling_run() {
    let (tx, rx) = klaw::channel::bounded::<u64>(4);
    let rx = loop_until_a_sibling_runs(move |stop| async move {
        let mut sent = 0u64;
        while !stopped(&stop) {
            tx.send(sent).await.unwrap();
            // A send that yielded for the budget sent nothing twice and lost nothing.
            assert_eq!(rx.try_recv(), Ok(sent));
            sent += 1;
        }
        rx
    })
    .await;
    assert!(rx.is_empty());
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_select_loop_whose_arms_are_always_ready_lets_a_sibling_run() {
    let (tx_a, rx_a) = klaw::channel::bounded::<u32>(1);
    let (tx_b, rx_b) = klaw::channel::bounded::<u32>(1);
    tx_a.try_send(1).unwrap();
    tx_b.try_send(2).unwrap();
    let (rx_a, rx_b) = loop_until_a_sibling_runs(move |stop| async move {
        while !stopped(&stop) {
            klaw::select! {
                recv(rx_a) -> message => tx_a.try_send(message.unwrap()).unwrap(),
                recv(rx_b) -> message => tx_b.try_send(message.unwrap()).unwrap(),
                after(Duration::ZERO) => {}
            }
        }
        (rx_a, rx_b)
    })
    .await;
    assert_eq!((rx_a.try_recv(), rx_b.try_recv()), (Ok(1), Ok(2)), "a message was lost");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_select_loop_with_a_default_arm_yields_rather_than_take_it_while_values_wait() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(7).unwrap();
    let defaults = loop_until_a_sibling_runs(move |stop| async move {
        let mut defaults = 0u64;
        while !stopped(&stop) {
            klaw::select! {
                recv(rx) -> message => tx.try_send(message.unwrap()).unwrap(),
                default => defaults += 1,
            }
        }
        defaults
    })
    .await;
    assert_eq!(defaults, 0, "select! took `default` while a message was waiting");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn watch_changed_and_wait_for_loops_let_a_sibling_run() {
    let (tx, mut rx) = watch::channel(0u64);
    let (tx, mut rx) = loop_until_a_sibling_runs(move |stop| async move {
        let mut value = 0;
        while !stopped(&stop) {
            value += 1;
            tx.send(value).unwrap();
            rx.changed().await.unwrap();
            assert_eq!(*rx.borrow(), value);
        }
        (tx, rx)
    })
    .await;
    // `wait_for` whose first check already passes: one budgeted operation all the same.
    tx.send(1).unwrap();
    loop_until_a_sibling_runs(move |stop| async move {
        while !stopped(&stop) {
            assert_eq!(*rx.wait_for(|value| *value == 1).await.unwrap(), 1);
        }
    })
    .await;
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_watch_loop_on_a_closed_channel_lets_a_sibling_run() {
    let (tx, mut rx) = watch::channel(());
    drop(tx);
    let mut rx = loop_until_a_sibling_runs(move |stop| async move {
        while !stopped(&stop) {
            assert!(rx.changed().await.is_err());
        }
        rx
    })
    .await;
    // tokio's `receiver_wait_for_is_cooperative`: a `wait_for` whose predicate never holds, on a
    // closed channel, fails at once every time, and is budgeted all the same.
    loop_until_a_sibling_runs(move |stop| async move {
        while !stopped(&stop) {
            assert!(rx.wait_for(|()| false).await.is_err());
        }
    })
    .await;
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_broadcast_recv_loop_lets_a_sibling_run() {
    let (tx, mut rx) = broadcast::channel::<u64>(8);
    loop_until_a_sibling_runs(move |stop| async move {
        let mut sent = 0;
        while !stopped(&stop) {
            sent += 1;
            tx.send(sent).unwrap();
            assert_eq!(rx.recv().await, Ok(sent));
        }
    })
    .await;
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_oneshot_loop_lets_a_sibling_run() {
    loop_until_a_sibling_runs(move |stop| async move {
        let mut sent = 0u64;
        while !stopped(&stop) {
            sent += 1;
            let (tx, rx) = oneshot::channel();
            tx.send(sent).unwrap();
            assert_eq!(rx.await, Ok(sent));
        }
    })
    .await;
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_loop_over_elapsed_sleeps_lets_a_sibling_run() {
    loop_until_a_sibling_runs(move |stop| async move {
        while !stopped(&stop) {
            klaw::time::sleep(Duration::ZERO).await;
        }
    })
    .await;
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn checkpoint_and_consume_budget_loops_let_a_sibling_run() {
    loop_until_a_sibling_runs(move |stop| async move {
        while !stopped(&stop) {
            klaw::cancel::checkpoint().await;
        }
    })
    .await;
    loop_until_a_sibling_runs(move |stop| async move {
        while !stopped(&stop) {
            klaw::task::consume_budget().await;
        }
    })
    .await;
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn consume_budget_yields_before_a_thousand_rounds_in_one_poll() {
    let rounds = klaw::Handle::current()
        .unwrap()
        .spawn(std::future::poll_fn(|cx| {
            let mut rounds = 0;
            while rounds < 1000 && pin!(klaw::task::consume_budget()).poll(cx).is_ready() {
                rounds += 1;
            }
            Poll::Ready(rounds)
        }))
        .await
        .unwrap();
    assert!(rounds < 1000, "consume_budget never yielded");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_local_child_of_a_scope_shares_its_tasks_budget() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(1).unwrap();
    loop_until_a_sibling_runs(move |stop| async move {
        klaw::scope!(|s| {
            s.spawn_local(async {
                while !stopped(&stop) {
                    tx.try_send(rx.recv().await.unwrap()).unwrap();
                }
            });
            Ok(())
        })
        .unwrap();
    })
    .await;
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn unconstrained_opts_out_of_the_budget() {
    const MESSAGES: usize = 1000;
    let (tx, rx) = klaw::channel::unbounded::<usize>();
    for n in 0..MESSAGES {
        tx.try_send(n).unwrap();
    }
    let (budgeted, unconstrained) = klaw::Handle::current()
        .unwrap()
        .spawn(async move {
            let budgeted = ready_in_one_poll(&rx).await;
            let unconstrained = klaw::task::unconstrained(ready_in_one_poll(&rx)).await;
            (budgeted, unconstrained)
        })
        .await
        .unwrap();
    assert!(budgeted < MESSAGES, "the budget never stopped a receive");
    assert_eq!(budgeted + unconstrained, MESSAGES, "unconstrained stopped, or a message was lost");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn blocking_helpers_and_block_on_inside_a_task_are_not_budgeted() {
    let (tx, rx) = klaw::channel::unbounded::<u32>();
    for n in 0..1000 {
        tx.try_send(n).unwrap();
    }
    let (first, blocked, rest) = klaw::Handle::current()
        .unwrap()
        .spawn(async move {
            // Spends the budget of this poll: everything below runs with none left.
            let first = ready_in_one_poll(&rx).await;
            let blocked = rx.recv_blocking().unwrap();
            tx.send_blocking(blocked).unwrap();
            let rest = klaw::runtime::block_on(ready_in_one_poll(&rx));
            (first, blocked, rest)
        })
        .await
        .unwrap();
    assert_eq!(blocked, first as u32);
    assert_eq!(first + rest, 1000);
}

#[test]
fn channels_under_a_foreign_executor_are_not_budgeted() {
    const MESSAGES: usize = 1000;
    let (tx, rx) = klaw::channel::unbounded::<usize>();
    for n in 0..MESSAGES {
        tx.try_send(n).unwrap();
    }
    assert_eq!(futures_lite::future::block_on(ready_in_one_poll(&rx)), MESSAGES);

    // The same, through every kind of channel, in one poll each.
    futures_lite::future::block_on(std::future::poll_fn(|cx| {
        let (tx, rx) = klaw::channel::unbounded::<usize>();
        let (watch_tx, mut watch_rx) = watch::channel(0);
        let (broadcast_tx, mut broadcast_rx) = broadcast::channel(1);
        for n in 0..MESSAGES {
            assert!(pin!(tx.send(n)).poll(cx).is_ready());
            assert_eq!(pin!(rx.recv()).poll(cx), Poll::Ready(Ok(n)));
            watch_tx.send(n).unwrap();
            assert!(pin!(watch_rx.changed()).poll(cx).is_ready());
            broadcast_tx.send(n).unwrap();
            assert_eq!(pin!(broadcast_rx.recv()).poll(cx), Poll::Ready(Ok(n)));
            assert!(pin!(klaw::time::sleep(Duration::ZERO)).poll(cx).is_ready());
            assert!(pin!(klaw::task::consume_budget()).poll(cx).is_ready());
        }
        Poll::Ready(())
    }));
}

/// The budget is the task's, whatever runs inside its poll: a scope's local children are polled
/// inside their parent's poll and share its 128 units, as the branches of a `join!` share a
/// tokio task's (`coop`'s module doc). So a parent whose local children all loop on ready
/// operations completes at most 128 of them in one poll, not 128 for each child.
#[klaw::test(workers = 1, timeout = "10s")]
async fn local_children_share_their_parents_budget_in_each_poll() {
    use std::sync::atomic::AtomicUsize;
    let done = Arc::new(AtomicUsize::new(0));
    let most_in_one_poll = Arc::new(AtomicUsize::new(0));
    let counted = done.clone();
    let scope = Box::pin(async move {
        klaw::scope!(|s| {
            for _ in 0..4 {
                let done = counted.clone();
                s.spawn_local(async move {
                    for _ in 0..1000 {
                        klaw::task::consume_budget().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Ok(())
        })
    });
    let (before, most) = (done.clone(), most_in_one_poll.clone());
    let mut scope = Some(scope);
    let watched = std::future::poll_fn(move |cx| {
        let start = before.load(Ordering::Relaxed);
        let polled = scope.as_mut().unwrap().as_mut().poll(cx);
        most.fetch_max(before.load(Ordering::Relaxed) - start, Ordering::Relaxed);
        polled
    });
    let parent = klaw::Handle::current().unwrap().spawn(watched);
    parent.await.unwrap().unwrap();
    assert_eq!(done.load(Ordering::Relaxed), 4000, "every child ran to its end");
    let most = most_in_one_poll.load(Ordering::Relaxed);
    assert!(most <= 128, "{most} operations completed in one poll of the parent");
}

/// tokio: `rt_common.rs` `coop`, as its own `block_on` runs it: the future of `block_on`
/// (the body of `#[klaw::main]` and `#[klaw::test]`) has a budget, as tokio's has, so a
/// receive that is always ready returns `Pending` once it is spent.
#[test]
fn block_on_has_a_budget_of_its_own() {
    let rt = klaw::Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = klaw::channel::unbounded::<u32>();
    for n in 0..1000 {
        tx.try_send(n).unwrap();
    }
    let in_one_poll = rt.block_on(ready_in_one_poll(&rx));
    assert!(in_one_poll < 1000, "the budget never stopped a receive");
    // tokio's `coop_unconstrained`: opted out, every receive is ready in one poll.
    let rest = rt.block_on(klaw::task::unconstrained(ready_in_one_poll(&rx)));
    assert_eq!(in_one_poll + rest, 1000, "a message was lost across the yield");
}

/// tokio's `*_is_cooperative` tests, as tokio runs them: in the test's body, a `select!` whose
/// first (biased) arm is a loop over a channel that is always ready. Only the budget makes
/// the loop return `Pending`, so that the other arm gets polled; without it the test hangs
/// until its timeout.
#[klaw::test(timeout = "10s")]
async fn a_loop_in_the_tests_body_lets_select_poll_its_other_arm() {
    let (tx, rx) = klaw::channel::bounded::<()>(1);
    klaw::select! {
        biased;
        async {
            loop {
                tx.try_send(()).unwrap();
                rx.recv().await.unwrap();
            }
        } -> () => unreachable!("the loop never ends"),
        klaw::task::yield_now() -> () => {}
    }
    let (btx, mut brx) = broadcast::channel::<()>(8);
    klaw::select! {
        biased;
        async {
            loop {
                btx.send(()).unwrap();
                brx.recv().await.unwrap();
            }
        } -> () => unreachable!("the loop never ends"),
        klaw::task::yield_now() -> () => {}
    }
}

/// tokio: `time_timeout.rs` `timeout_is_not_exhausted_by_future`, in the test's body as tokio
/// has it: a deadline ends a future that is always ready, since the budget makes it yield.
#[klaw::test(timeout = "10s")]
async fn a_deadline_ends_an_always_ready_loop_in_the_tests_body() {
    let (tx, rx) = klaw::channel::bounded::<u8>(1);
    let outcome = klaw::cancel::fail_after(Duration::from_millis(1), async move {
        loop {
            tx.try_send(0).unwrap();
            let _ = rx.recv().await;
        }
    })
    .await;
    assert!(outcome.is_err(), "the loop was not interrupted: {outcome:?}");
}
