//! tokio's `select!` tests, ported to `klaw::select!`: `tokio/tests/macros_select.rs` at tokio
//! commit `ea91b33ca57ff0581b38e735cc108f831bccbdaa`, for the cases `tests/select.rs` does not
//! cover already. Each test names the tokio test it translates; the last section adds edges the
//! brief asked for that tokio's file checks only indirectly (losing arms dropped, a panicking
//! arm, a select cancelled by a region, fairness of future arms).
//!
//! Mapping: tokio's `pattern = future => body` is `future -> pattern => body`; `else => ..` is
//! `default => ..` (which in klaw runs when no arm is ready at once, not when all are
//! disabled); `tokio::sync::oneshot` is `klaw::channel::oneshot`, `mpsc` is
//! `klaw::channel::{bounded, unbounded}` read with `recv(rx) -> msg` arms (a `Result`, closing
//! included). tokio-test's `task::spawn(..).poll()` / `is_woken()` is [`Probe`] below, and
//! `tokio::task::yield_now` is [`yield_once`].
//!
//! Deliberate differences (see the book's `select.md` and `from_tokio.md`), where tokio's
//! assertion is not made: a refutable pattern is a compile error (no arm is ever disabled by a
//! pattern), a `select!` with only `default` is a compile error, and klaw has no `, if cond`
//! precondition; where a tokio test used a precondition to stop polling a finished future, the
//! port wraps it in [`unless_done`] / [`Fuse`] instead.
//!
//! Five of these did not compile before klaw's `select!` was fixed for them (they are in
//! `compile_edges` at the end, and two more deny the lint they tripped):
//! `temporary_lifetime_extension` (E0716), `mut_ref_patterns`' `ref mut` case (E0596),
//! `biased_eventually_ready` as tokio writes it (an arm starting with `&mut` after a block body
//! without a comma did not parse), `never_branch_no_warnings` (an `unreachable_code` warning)
//! and `sync_one_lit_expr_block` (an `unused_braces` warning).

mod common;

use std::cell::Cell;
use std::future::{Future, IntoFuture};
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{DEADLINE, Fuse, within, yield_once};
use klaw::channel::{RecvError, oneshot};

// ---- Helpers.

/// Remembers whether its waker was woken.
#[derive(Default)]
struct WokenFlag(AtomicBool);

impl Wake for WokenFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A future polled by hand, as tokio-test's `task::spawn`: `poll` it, and ask whether it was
/// woken since the last poll.
struct Probe<F> {
    future: Pin<Box<F>>,
    woken: Arc<WokenFlag>,
}

impl<F: Future> Probe<F> {
    fn new(future: F) -> Self {
        Probe { future: Box::pin(future), woken: Arc::default() }
    }

    fn poll(&mut self) -> Poll<F::Output> {
        self.woken.0.store(false, Ordering::SeqCst);
        let waker = Waker::from(self.woken.clone());
        self.future.as_mut().poll(&mut Context::from_waker(&waker))
    }

    fn is_woken(&self) -> bool {
        self.woken.0.load(Ordering::SeqCst)
    }
}

/// A oneshot receiver's result, or pending for ever once it gave it (it must not be polled
/// again): tokio's `v = &mut rx, if v.is_none()`.
async fn unless_done<T>(rx: &mut oneshot::Receiver<T>) -> Result<T, RecvError> {
    if rx.is_terminated() {
        std::future::pending::<()>().await;
    }
    rx.await
}

async fn one() -> usize {
    1
}

async fn require_mutable(_: &mut i32) {}

async fn async_noop() {}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A future that never completes and sets `flag` when it is dropped, polled or not.
fn pending_until_dropped(flag: Arc<AtomicBool>) -> impl Future<Output = ()> {
    let guard = SetOnDrop(flag);
    async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    }
}

// ---- One arm: the forms of an arm's future and body.

/// tokio: `sync_one_lit_expr_comma`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn one_ready_async_block_arm_with_a_trailing_comma() {
    let got = klaw::select! {
        async { 1 } -> value => value,
    };
    assert_eq!(got, 1);
}

/// tokio: `sync_one_lit_expr_no_comma`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn one_arm_without_a_trailing_comma() {
    let got = klaw::select! {
        async { 1 } -> value => value
    };
    assert_eq!(got, 1);
}

/// tokio: `sync_one_lit_expr_block`. A block body `{ value }`, fine as a `match` arm's, must
/// not make rustc warn `unused_braces` (klaw's expansion once put it inside braces of its own):
/// the lint is denied here.
#[klaw::test(workers = 1, timeout = "30s")]
#[deny(unused_braces)]
async fn one_arm_whose_body_is_a_block() {
    let got = klaw::select! {
        async { 1 } -> value => { value }
    };
    assert_eq!(got, 1);
}

/// tokio: `sync_one_await`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn one_arm_calling_an_async_fn() {
    let got = klaw::select! {
        one() -> value => value,
    };
    assert_eq!(got, 1);
}

/// tokio: `sync_one_ident`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn one_arm_whose_future_is_a_variable() {
    let future = one();
    let got = klaw::select! {
        future -> value => value,
    };
    assert_eq!(got, 1);
}

/// tokio: `drop_in_fut`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_value_moved_into_an_arm_future_is_dropped_there() {
    let owned = String::from("moved in");
    let got = klaw::select! {
        async {
            let n = one().await;
            drop(owned);
            n
        } -> value => value
    };
    assert_eq!(got, 1);
}

/// tokio: `select_into_future`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn an_arm_takes_an_into_future_value() {
    struct Later;
    impl IntoFuture for Later {
        type Output = u8;
        type IntoFuture = std::future::Ready<u8>;

        fn into_future(self) -> Self::IntoFuture {
            std::future::ready(3)
        }
    }
    let got = klaw::select! {
        Later -> n => n,
    };
    assert_eq!(got, 3);
}

/// tokio: `mut_on_left_hand_side`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_mut_binding_of_a_pinned_future_by_mut_reference() {
    let got = async {
        let mut ready = pin!(async { 1 });
        klaw::select! {
            &mut ready -> mut n => {
                n += 1;
                n
            }
        }
    }
    .await;
    assert_eq!(got, 2);
}

/// tokio: `mut_ref_patterns` (its `Some(..)` patterns are refutable, a compile error in klaw:
/// the same bindings inside an irrefutable one-element tuple).
#[klaw::test(workers = 1, timeout = "30s")]
async fn mut_and_ref_bindings_in_an_arm_pattern() {
    klaw::select! {
        async { (String::from("a"),) } -> (mut text,) => {
            assert_eq!(text, "a");
            text = String::from("b");
            assert_eq!(text, "b");
        },
    }
    klaw::select! {
        async { (String::from("a"),) } -> (ref text,) => {
            assert_eq!(*text, "a");
        },
    }
    // The third of tokio's cases, `ref mut`, is
    // `compile_edges::a_ref_mut_binding_in_an_arm_pattern`.
}

// ---- Several arms.

/// tokio: `sync_two`. Two arms ready at once: only the winner's future runs at all.
#[klaw::test(workers = 1, timeout = "30s")]
async fn of_two_ready_arms_only_the_first_polled_runs() {
    let polled = Cell::new(0);
    let got = klaw::select! {
        async {
            polled.set(polled.get() + 1);
            1
        } -> a => a,
        async {
            polled.set(polled.get() + 1);
            2
        } -> b => b,
    };
    assert_eq!(polled.get(), 1, "a second ready arm was polled after the first won");
    assert!(got == 1 || got == 2);
}

/// tokio: `one_ready`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn the_one_ready_oneshot_wins() {
    let (tx1, rx1) = oneshot::channel::<i32>();
    let (_tx2, rx2) = oneshot::channel::<i32>();
    tx1.send(1).unwrap();
    let got = klaw::select! {
        rx1 -> res => res.unwrap(),
        rx2 -> _ => unreachable!("nothing was sent on rx2"),
    };
    assert_eq!(got, 1);
}

/// tokio: `select_streams`. No arm is disabled in klaw: a closed channel is ready with
/// `Err(Closed)`, so the loop counts the channels still open instead of taking `else`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_loop_over_two_channels_until_both_are_closed() {
    let (tx1, rx1) = klaw::channel::unbounded::<i32>();
    let (tx2, rx2) = klaw::channel::unbounded::<i32>();
    let sender = klaw::Handle::current().unwrap().spawn(async move {
        tx2.send(1).await.unwrap();
        yield_once().await;
        tx1.send(2).await.unwrap();
        yield_once().await;
        tx2.send(3).await.unwrap();
        yield_once().await;
        drop((tx1, tx2));
    });
    let (mut open1, mut open2) = (true, true);
    let mut received = Vec::new();
    while open1 || open2 {
        klaw::select! {
            recv(rx1) -> msg => match msg {
                Ok(x) => received.push(x),
                Err(RecvError::Closed) => open1 = false,
            },
            recv(rx2) -> msg => match msg {
                Ok(y) => received.push(y),
                Err(RecvError::Closed) => open2 = false,
            },
        }
    }
    sender.await.unwrap();
    received.sort_unstable();
    assert_eq!(received, [1, 2, 3]);
}

/// tokio: `move_uncompleted_futures`. The arms' futures (`&mut` borrows) are gone when the
/// body runs, so the body can await the loser itself.
#[klaw::test(workers = 1, timeout = "30s")]
async fn the_body_can_await_the_future_that_lost() {
    let (tx1, mut rx1) = oneshot::channel::<i32>();
    let (tx2, mut rx2) = oneshot::channel::<i32>();
    tx1.send(1).unwrap();
    tx2.send(2).unwrap();
    let ran;
    klaw::select! {
        &mut rx1 -> res => {
            assert_eq!(res, Ok(1));
            assert_eq!(rx2.await, Ok(2));
            ran = true;
        },
        &mut rx2 -> res => {
            assert_eq!(res, Ok(2));
            assert_eq!(rx1.await, Ok(1));
            ran = true;
        },
    }
    assert!(ran);
}

/// tokio: `mutable_borrowing_future_with_same_borrow_in_block`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_body_mutates_what_another_arm_future_borrowed_mutably() {
    let mut value = 234;
    klaw::select! {
        require_mutable(&mut value) -> () => {},
        async_noop() -> () => {
            value += 5;
        },
    }
    assert!(value >= 234);
}

/// tokio: `mutable_borrowing_future_with_same_borrow_in_block_and_else` (`else` is `default`).
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_body_and_default_mutate_what_an_arm_future_borrowed_mutably() {
    let mut value = 234;
    klaw::select! {
        require_mutable(&mut value) -> () => {},
        async_noop() -> () => {
            value += 5;
        },
        default => {
            value += 27;
        },
    }
    assert!(value >= 234);
}

/// tokio: `many_branches`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn sixty_four_arms() {
    let got = klaw::select! {
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
        async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x, async { 1 } -> x => x,
    };
    assert_eq!(got, 1);
}

// ---- Nesting.

/// tokio: `nested_one`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_select_as_an_arm_body_uses_the_outer_binding() {
    let got = klaw::select! {
        async { 1 } -> outer => klaw::select! {
            async { outer } -> inner => inner,
        },
    };
    assert_eq!(got, 1);
}

/// tokio: `nested`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_select_in_a_block_body_adds_to_the_outer_binding() {
    let got = klaw::select! {
        async { 1 } -> x => {
            klaw::select! {
                async { 2 } -> y => x + y,
            }
        }
    };
    assert_eq!(got, 3);
}

// ---- `biased;`.

/// tokio: `biased_one_not_ready`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn biased_takes_the_first_ready_arm_from_the_top() {
    let (_tx1, rx1) = oneshot::channel::<i32>();
    let (tx2, rx2) = oneshot::channel::<i32>();
    let (tx3, rx3) = oneshot::channel::<i32>();
    tx2.send(2).unwrap();
    tx3.send(3).unwrap();
    let got = klaw::select! {
        biased;
        rx1 -> _ => unreachable!("nothing was sent on rx1"),
        rx2 -> res => res.unwrap(),
        rx3 -> _ => panic!("rx3 won although rx2, above it, was ready"),
    };
    assert_eq!(got, 2);
}

/// tokio: `biased_eventually_ready` (its `, if count < n` preconditions become [`Fuse`]: a
/// finished future stays pending, and the loop ends when all three have run, not on `else`).
/// Without the commas after the block bodies, see
/// `compile_edges::an_arm_after_a_block_body_may_start_with_an_operator`.
#[klaw::test(workers = 1, timeout = "30s")]
async fn biased_in_a_loop_over_mut_futures_that_become_ready_in_turn() {
    let mut first = Fuse(Some(pin!(async {})));
    let mut second = Fuse(Some(pin!(async { yield_once().await })));
    let mut third = Fuse(Some(pin!(async { yield_once().await })));
    let mut count = 0u8;
    while count < 3 {
        klaw::select! {
            biased;
            &mut second -> () => {
                count += 1;
                assert_eq!(count, 2);
            },
            &mut third -> () => {
                count += 1;
                assert_eq!(count, 3);
            },
            &mut first -> () => {
                count += 1;
                assert_eq!(count, 1);
            }
        }
    }
    assert_eq!(count, 3);
}

// ---- Waking and polling by hand.

/// tokio: `join_with_select` (its `, if a.is_none()` preconditions become [`unless_done`]).
#[test]
fn a_select_loop_joins_two_oneshots_and_is_woken_by_each() {
    let (tx1, mut rx1) = oneshot::channel::<i32>();
    let (tx2, mut rx2) = oneshot::channel::<i32>();
    let mut joined = Probe::new(async {
        let (mut a, mut b) = (None, None);
        while a.is_none() || b.is_none() {
            klaw::select! {
                unless_done(&mut rx1) -> v1 => a = Some(v1.unwrap()),
                unless_done(&mut rx2) -> v2 => b = Some(v2.unwrap()),
            }
        }
        (a.unwrap(), b.unwrap())
    });
    assert!(joined.poll().is_pending());
    tx1.send(123).unwrap();
    assert!(joined.is_woken());
    assert!(joined.poll().is_pending());
    tx2.send(456).unwrap();
    assert!(joined.is_woken());
    assert_eq!(joined.poll(), Poll::Ready((123, 456)));
}

/// tokio: `select_is_budget_aware`. In a klaw task, once the task's 128 units are spent (here
/// by the first arm of each select), a `select!` yields instead of polling its arms.
#[test]
fn select_is_budget_aware() {
    const BUDGET: usize = 128;
    let ready = within(DEADLINE, || {
        let rt = klaw::Runtime::builder().workers(1).build().unwrap();
        let task = rt.spawn(async {
            std::future::poll_fn(|cx| {
                let mut ready = Vec::new();
                for _ in 0..=BUDGET {
                    let mut select = Box::pin(async {
                        klaw::select! {
                            biased;
                            klaw::task::consume_budget() -> () => {},
                            std::future::ready(()) -> () => {},
                        }
                    });
                    ready.push(select.as_mut().poll(cx).is_ready());
                }
                Poll::Ready(ready)
            })
            .await
        });
        rt.block_on(task).unwrap()
    });
    assert!(ready[..BUDGET].iter().all(|&r| r), "a select completed late: {ready:?}");
    assert!(!ready[BUDGET], "the select after the budget was spent completed");
}

/// tokio: `default_numeric_fallback` (tokio issue 3830): the expansion must not trip the
/// lint in the user's crate. Checked by `cargo clippy --test ported_tokio_select -D warnings`.
#[warn(clippy::default_numeric_fallback)]
async fn select_with_default_and_clippy_numeric_fallback() {
    klaw::select! {
        async {} -> () => (),
        default => (),
    }
}

#[klaw::test(workers = 1, timeout = "30s")]
async fn default_numeric_fallback_runs() {
    select_with_default_and_clippy_numeric_fallback().await;
}

// ---- Compile-time checks (see the module doc).

/// tokio: `never_branch_no_warnings`. An arm whose future's output is `!` must not make rustc
/// warn (`unreachable_code`) about the macro's own code: the lint is denied here.
#[klaw::test(workers = 1, timeout = "30s")]
#[deny(unreachable_code)]
async fn an_arm_whose_output_is_never_type() {
    async fn never() -> ! {
        std::future::pending().await
    }
    let got = klaw::select! {
        never() -> _ => 0,
        one() -> ready => ready,
    };
    assert_eq!(got, 1);
}

/// What did not compile before `select!` was fixed for it; each test says what rustc answered.
mod compile_edges {
    use std::pin::pin;

    /// tokio: `temporary_lifetime_extension` (tokio issue 6721): a temporary borrowed in an
    /// arm's future expression lives as long as the select. klaw: error E0716 ("temporary
    /// value dropped while borrowed").
    #[klaw::test(workers = 1, timeout = "30s")]
    async fn a_temporary_borrowed_in_an_arm_future_lives_through_the_select() {
        klaw::select! {
            &mut std::future::ready(()) -> () => {},
        }
    }

    /// tokio: `mut_ref_patterns`, third case (tokio issue 4182). klaw: error E0596 ("cannot
    /// borrow value as mutable, as `output` is not declared as mutable").
    #[klaw::test(workers = 1, timeout = "30s")]
    async fn a_ref_mut_binding_in_an_arm_pattern() {
        klaw::select! {
            async { (String::from("a"),) } -> (ref mut text,) => {
                assert_eq!(*text, "a");
                *text = String::from("b");
                assert_eq!(*text, "b");
            },
        }
        klaw::select! {
            async { String::from("a") } -> ref mut text => text.push('b'),
        }
    }

    /// tokio: `biased_eventually_ready`, as tokio writes it: no comma after a block body
    /// (klaw's docs: "separated by commas (optional after a block)"), and the next arm starts
    /// with `&mut`. klaw: "expected an expression" at `mut`, the block and `&` having been
    /// read as one binary expression.
    #[klaw::test(workers = 1, timeout = "30s")]
    async fn an_arm_after_a_block_body_may_start_with_an_operator() {
        let mut first = pin!(async { 1 });
        let mut second = pin!(async { 2 });
        let got = klaw::select! {
            biased;
            std::future::pending::<u8>() -> _ => { 0 }
            &mut first -> n => { n }
            &mut second -> n => n,
        };
        assert_eq!(got, 1);
    }
}

// ---- Beyond tokio's file: losing arms, panics, cancellation, fairness.

/// Every losing arm's future is dropped before the winning body runs (book: "A losing arm
/// consumes nothing"), so the body sees its flag set.
#[klaw::test(workers = 1, timeout = "30s")]
async fn losing_arm_futures_are_dropped_before_the_winning_body_runs() {
    let dropped = Arc::new(AtomicBool::new(false));
    let seen_in_body = klaw::select! {
        pending_until_dropped(dropped.clone()) -> () => unreachable!("it never completes"),
        async { 1 } -> _ => dropped.load(Ordering::SeqCst),
    };
    assert!(seen_in_body, "the losing arm's future was still alive in the winning body");
}

/// A panic in an arm's future propagates out of the `select!`, and the other arms' futures
/// are dropped on the way.
#[test]
fn a_panicking_arm_future_propagates_and_drops_the_other_arms() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        klaw::runtime::block_on(async {
            klaw::select! {
                biased;
                pending_until_dropped(flag) -> () => 0,
                async { panic!("the arm's future panics") } -> () => 1,
            }
        })
    }));
    let message = caught.expect_err("the panic did not propagate");
    assert_eq!(message.downcast_ref::<&str>(), Some(&"the arm's future panics"));
    assert!(dropped.load(Ordering::SeqCst), "the other arm's future was not dropped");
}

/// A `select!` inside `move_on_after` whose deadline passes is dropped while its `recv` arm
/// waits in line: it takes no message, and the channel works on for the next receive.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_select_cut_short_by_move_on_after_takes_no_message() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let got = klaw::cancel::move_on_after(Duration::from_millis(20), async {
        klaw::select! {
            recv(rx) -> msg => Some(msg),
            std::future::pending::<()>() -> () => None,
        }
    })
    .await;
    assert_eq!(got, None, "the region's deadline should have ended the select");
    tx.send(5).await.unwrap();
    assert_eq!(rx.recv().await, Ok(5));
}

/// A select waiting in line on a channel before another receiver is cancelled (by its
/// region's token) right after a message arrives: the message is taken exactly once, by the
/// select if it ran first, else by the other receiver, whose wake-up the cancelled arm passes
/// on. Repeated, since which one wins depends on scheduling. One more outcome is klaw's
/// documented rule: a select that took the message in a poll the cancel overtook completes
/// after its region's cancellation, which does not win, so the region drops the message; then
/// it was dropped once and is not left in the channel (a stranded wake-up would leave it there,
/// with the other receiver waiting).
#[test]
fn a_cancelled_select_passes_on_the_wake_up_it_was_given() {
    within(DEADLINE, || {
        let rt = klaw::Runtime::builder().workers(2).build().unwrap();
        for round in 0..200u32 {
            let dropped = Arc::new(AtomicBool::new(false));
            let (tx, rx) = klaw::channel::bounded::<Message>(1);
            let other_rx = rx.clone();
            let left_in_channel = rx.clone(); // never receives: tells whether one is left
            let (_keep, idle) = klaw::channel::bounded::<Message>(1);
            let region = klaw::cancel::Region::new();
            let token = region.token();
            let selecting = rt.spawn(async move {
                region
                    .run(async {
                        klaw::select! {
                            recv(rx) -> msg => msg.unwrap(),
                            recv(idle) -> msg => msg.unwrap(),
                        }
                    })
                    .await
                    .ok()
            });
            // Most rounds, the select is in line before the other receiver (the outcome is
            // checked whatever the order).
            std::thread::sleep(Duration::from_millis(1));
            let other = rt.spawn(async move {
                klaw::cancel::move_on_after(Duration::from_secs(5), other_rx.recv()).await
            });
            std::thread::sleep(Duration::from_millis(1));
            tx.try_send(Message(round, dropped.clone())).unwrap();
            token.cancel("round over");
            let by_select = rt.block_on(selecting).unwrap().map(|message| message.0);
            if by_select.is_some() {
                drop(tx); // the other receiver then ends with `Closed`
            }
            let by_other = rt.block_on(other).unwrap().map(|got| got.map(|message| message.0));
            match (by_select, by_other) {
                (Some(n), Some(Err(RecvError::Closed))) | (None, Some(Ok(n))) => {
                    assert_eq!(n, round)
                }
                // Taken by the select after the cancel, and dropped by its region.
                (None, None) if dropped.load(Ordering::SeqCst) && left_in_channel.is_empty() => {}
                outcome => panic!("round {round}: the message went astray: {outcome:?}"),
            }
        }
    });
}

/// Without `biased;`, every one of several always-ready future arms wins some of the time.
#[klaw::test(workers = 1, timeout = "30s")]
async fn fair_select_spreads_wins_over_ready_future_arms() {
    let mut wins = [0usize; 3];
    for _ in 0..300 {
        let arm = klaw::select! {
            async { 0 } -> n => n,
            async { 1 } -> n => n,
            async { 2 } -> n => n,
        };
        wins[arm] += 1;
    }
    assert!(wins.iter().all(|&w| w > 0), "an arm never won: {wins:?}");
}

/// `default` runs only when no arm is ready at once: not beside a zero `after`, a past `at`,
/// or a ready future (tokio's `else` is a different thing: all arms disabled).
#[klaw::test(workers = 1, timeout = "30s")]
async fn default_is_not_taken_beside_an_arm_ready_at_once() {
    for _ in 0..50 {
        let zero = klaw::select! {
            after(Duration::ZERO) => "after",
            default => "default",
        };
        assert_eq!(zero, "after");
        let past = klaw::select! {
            at(std::time::Instant::now() - Duration::from_millis(5)) => "at",
            default => "default",
        };
        assert_eq!(past, "at");
        let ready = klaw::select! {
            std::future::ready("ready") -> r => r,
            std::future::pending::<&str>() -> r => r,
            default => "default",
        };
        assert_eq!(ready, "ready");
    }
}

/// A body may move a value that another arm's future borrowed: that future is gone by then.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_body_moves_what_a_losing_future_borrowed() {
    let text = String::from("borrowed, then moved");
    let moved = klaw::select! {
        async { std::future::pending::<()>().await; text.len() } -> n => n.to_string(),
        async {} -> () => text,
    };
    assert_eq!(moved, "borrowed, then moved");
}

/// A message that records its drop.
#[derive(Debug)]
struct Message(u32, Arc<AtomicBool>);

impl Drop for Message {
    fn drop(&mut self) {
        assert!(!self.1.swap(true, Ordering::SeqCst), "a message dropped twice");
    }
}
