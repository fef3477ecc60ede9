//! Wake-ups and the cooperative budget at two edges of the channels that tokio's suites reach:
//! a `try_recv` that finds nothing between a pending poll and the next send, and a finished
//! oneshot receiver awaited again.
//!
//! - A broadcast receiver's `try_recv` that finds nothing keeps the wake-up its pending `recv` or
//!   stream poll registered, as the MPMC and oneshot receivers' do (tokio's `sync_broadcast.rs`
//!   `change_tasks`: a pending receive is woken by the next `send`). It took the wake-up out, and
//!   a poll that polled the stream, then drained with `try_recv`, was never woken again.
//! - A oneshot receiver polled again after it gave its result answers `Err(Closed)` through the
//!   cooperative budget, as every other re-pollable channel future does (tokio's `sync_watch.rs`
//!   `receiver_changed_is_cooperative`, applied to the receiver that klaw, unlike tokio, lets be
//!   polled again). It answered at once, outside the budget: a loop re-awaiting it never
//!   yielded, starving the other arms of a `biased` `select!` (and its worker's other tasks:
//!   `ported_tokio_sync.rs`, `a_finished_oneshot_receiver_awaited_again_is_cooperative`).

#[path = "common/reenter.rs"]
mod reenter;

use std::future::Future as _;
use std::pin::Pin;
use std::task::Poll;

use futures_lite::Stream;
use klaw::channel::broadcast::{self, TryRecvError};
use klaw::channel::{RecvError, oneshot};
use reenter::counting_waker;

/// A stream poll of a broadcast receiver waits (`Pending`), a `try_recv` finds nothing, then a
/// send: the waker of the stream poll is woken. What would break it: a `try_recv` that takes the
/// receiver's wake-up out whatever it finds.
#[test]
fn broadcast_a_try_recv_that_finds_nothing_keeps_the_wake_up_a_pending_stream_poll_asked_for() {
    let (tx, mut rx) = broadcast::channel::<u32>(4);
    let task = counting_waker();

    // The task waits on the stream: it asks to be woken by the next message.
    assert!(Pin::new(&mut rx).poll_next(&mut task.cx()).is_pending());
    // In the same poll it drains what is there: nothing.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    // It returns `Pending`; the next message must wake it.
    tx.send(7).unwrap();
    assert_eq!(
        task.woken(),
        1,
        "the send woke nobody: try_recv took out the waker the stream's pending poll registered"
    );
    assert_eq!(Pin::new(&mut rx).poll_next(&mut task.cx()), Poll::Ready(Some(Ok(7))));
}

/// The same shape on the MPMC and oneshot receivers keeps the wake-up too.
#[test]
fn mpmc_and_oneshot_a_try_recv_that_finds_nothing_keeps_a_pending_polls_wake_up() {
    let (tx, mut rx) = klaw::channel::bounded::<u32>(4);
    let task = counting_waker();
    // A receive that finds nothing yields once before it joins the line: poll until it waits.
    for _ in 0..4 {
        assert!(Pin::new(&mut rx).poll_next(&mut task.cx()).is_pending());
    }
    let before = task.woken();
    assert!(rx.try_recv().is_err());
    tx.try_send(7).unwrap();
    assert!(task.woken() > before, "the MPMC stream is woken");

    let (tx, mut rx) = klaw::channel::oneshot::channel::<u32>();
    let task = counting_waker();
    assert!(Pin::new(&mut rx).poll(&mut task.cx()).is_pending());
    assert_eq!(rx.try_recv(), Err(klaw::channel::TryRecvError::Empty));
    tx.send(7).unwrap();
    assert_eq!(task.woken(), 1, "the oneshot receiver is woken");
}

/// A `biased` `select!` whose first arm re-awaits a finished oneshot receiver (its `Err` arm
/// does not break) still polls its other arm once the budget is spent. What would break it: a
/// finished receiver that answers outside the budget, so the loop never yields (a hang, caught
/// by the timeout).
#[klaw::test(timeout = "10s")]
async fn a_loop_awaiting_a_finished_oneshot_receiver_lets_select_poll_its_other_arm() {
    let (tx, mut rx) = oneshot::channel::<u32>();
    drop(tx);
    klaw::select! {
        biased;
        async {
            loop {
                assert_eq!((&mut rx).await, Err(RecvError::Closed));
            }
        } -> () => unreachable!("the loop never ends"),
        klaw::task::yield_now() -> () => {}
    }
}
