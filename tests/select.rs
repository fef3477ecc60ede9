//! `select!`: typed channel arms, fairness, `biased;`, `default`, timers, and losing arms that
//! consume nothing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{in_task, secs};
use klaw::channel::{Receiver, RecvError, SendError, Sender, bounded};

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_recv_arm_binds_a_typed_result_so_closing_is_handled() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(1).unwrap();
    drop(tx);
    let mut seen = Vec::new();
    loop {
        klaw::select! {
            recv(rx) -> msg => match msg {
                Ok(v) => seen.push(v),
                Err(RecvError::Closed) => break,
            },
        }
    }
    assert_eq!(seen, [1]);
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_losing_recv_arm_consumes_nothing() {
    let (tx_a, rx_a) = klaw::channel::bounded::<&str>(1);
    let (tx_b, rx_b) = klaw::channel::bounded::<&str>(1);
    tx_a.try_send("a").unwrap();
    tx_b.try_send("b").unwrap();
    let first = klaw::select! {
        recv(rx_a) -> msg => msg.unwrap(),
        recv(rx_b) -> msg => msg.unwrap(),
    };
    let second = if first == "a" { rx_b.try_recv() } else { rx_a.try_recv() };
    assert_eq!(second, Ok(if first == "a" { "b" } else { "a" }), "the losing arm took its message");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_losing_send_arm_neither_sends_nor_evaluates_its_value() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let (ready_tx, ready_rx) = klaw::channel::bounded::<u32>(1);
    ready_tx.try_send(5).unwrap();
    let evaluated = AtomicUsize::new(0);
    let value = || {
        evaluated.fetch_add(1, Ordering::SeqCst);
        9
    };
    tx.try_send(0).unwrap(); // full: the send arm cannot win
    let got = klaw::select! {
        send(tx, value()) -> res => { res.unwrap(); 0 }
        recv(ready_rx) -> msg => msg.unwrap(),
    };
    assert_eq!(got, 5);
    assert_eq!(evaluated.load(Ordering::SeqCst), 0);
    assert_eq!(rx.try_recv(), Ok(0));
    assert!(rx.try_recv().is_err(), "the losing send arm sent something");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_send_arm_on_a_closed_channel_gives_the_value_back() {
    let (tx, rx) = klaw::channel::bounded::<String>(1);
    drop(rx);
    let res = klaw::select! {
        send(tx, "kept".to_string()) -> res => res,
    };
    assert_eq!(res, Err(SendError("kept".to_string())));
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn select_is_fair_by_default_and_ordered_when_biased() {
    let (tx_a, rx_a) = klaw::channel::bounded::<u8>(1);
    let (tx_b, rx_b) = klaw::channel::bounded::<u8>(1);
    let (mut fair_a, mut biased_a) = (0, 0);
    for _ in 0..400 {
        let _ = tx_a.try_send(1);
        let _ = tx_b.try_send(2);
        let fair = klaw::select! {
            recv(rx_a) -> m => m.unwrap(),
            recv(rx_b) -> m => m.unwrap(),
        };
        fair_a += usize::from(fair == 1);
        let _ = tx_a.try_send(1);
        let _ = tx_b.try_send(2);
        let biased = klaw::select! {
            biased;
            recv(rx_a) -> m => m.unwrap(),
            recv(rx_b) -> m => m.unwrap(),
        };
        biased_a += usize::from(biased == 1);
    }
    assert!((100..=300).contains(&fair_a), "fair select chose the first arm {fair_a} of 400 times");
    assert_eq!(biased_a, 400, "biased select always tries the first arm first");
}

/// `recv` arms are looked at in the arms' order with the other arms, not before them: a biased
/// `select!` takes a ready future arm above a ready `recv` arm, and a ready `recv` arm above a
/// ready future arm.
#[klaw::test(workers = 1, timeout = "10s")]
async fn biased_select_keeps_the_arms_order_across_kinds() {
    let (tx, rx) = klaw::channel::bounded::<&str>(2);
    tx.try_send("message").unwrap();
    let got = klaw::select! {
        biased;
        std::future::ready("future") -> v => v,
        recv(rx) -> msg => msg.unwrap(),
    };
    assert_eq!(got, "future");
    assert_eq!(rx.len(), 1, "the recv arm below took its message");
    let got = klaw::select! {
        biased;
        recv(rx) -> msg => msg.unwrap(),
        std::future::ready("future") -> v => v,
    };
    assert_eq!(got, "message");
}

/// Messages per lane for `a_waiting_select_*`.
const PER_SENDER: u64 = 2_000;

/// Four lanes, each a thread sending `0..PER_SENDER` with pauses into its own `bounded(1)`, so
/// that messages land both while the consumer looks and while it waits.
struct Lanes {
    threads: Vec<std::thread::JoinHandle<()>>,
    receivers: Vec<klaw::channel::Receiver<u64>>,
    /// The message each lane must give next.
    next: [u64; 4],
}

impl Lanes {
    fn start() -> Self {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..4).map(|_| klaw::channel::bounded::<u64>(1)).unzip();
        let threads = senders
            .into_iter()
            .enumerate()
            .map(|(lane, tx)| {
                std::thread::spawn(move || {
                    for n in 0..PER_SENDER {
                        if n % (lane as u64 + 2) == 0 {
                            common::pause_spinning(256);
                        }
                        tx.send_blocking(n).unwrap();
                    }
                })
            })
            .collect();
        Lanes { threads, receivers, next: [0; 4] }
    }

    fn done(&self) -> bool {
        self.next.iter().all(|&next| next == PER_SENDER)
    }

    /// What `lane` gave: every message once, in order. (A lane whose sender is done is closed,
    /// ready with `Closed`, once drained.)
    fn record(&mut self, lane: usize, polled: Result<u64, RecvError>) {
        if let Ok(n) = polled {
            assert_eq!(n, self.next[lane], "lane {lane} lost or repeated a message");
            self.next[lane] += 1;
        }
    }

    fn join(self) {
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

/// A `select!` that found every channel empty waits on all of them: whichever channel a message
/// arrives on, however soon after the look, wakes it. A lost wake-up hangs the test.
#[klaw::test(workers = 2, timeout = "30s")]
async fn a_waiting_select_is_woken_by_a_message_on_any_of_its_channels() {
    let mut lanes = Lanes::start();
    while !lanes.done() {
        let (lane, polled) = klaw::select! {
            recv(lanes.receivers[0]) -> m => (0, m),
            recv(lanes.receivers[1]) -> m => (1, m),
            recv(lanes.receivers[2]) -> m => (2, m),
            recv(lanes.receivers[3]) -> m => (3, m),
        };
        lanes.record(lane, polled);
    }
    lanes.join();
}

/// The same for `select_any`, which waits in the same two passes.
#[klaw::test(workers = 2, timeout = "30s")]
async fn a_waiting_select_any_is_woken_by_a_message_on_any_of_its_channels() {
    let mut lanes = Lanes::start();
    while !lanes.done() {
        let (lane, polled) = klaw::channel::select_any(&lanes.receivers).await.unwrap();
        lanes.record(lane, polled);
    }
    lanes.join();
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn default_runs_when_nothing_is_ready() {
    let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    let got = klaw::select! {
        recv(rx) -> _msg => "message",
        default => "nothing ready",
    };
    assert_eq!(got, "nothing ready");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn after_and_at_arms_are_timeouts() {
    let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    let started = Instant::now();
    let got = klaw::select! {
        recv(rx) -> _msg => "message",
        after(Duration::from_millis(10)) => "timed out",
    };
    assert_eq!(got, "timed out");
    assert!(started.elapsed() >= Duration::from_millis(10));
    let deadline = Instant::now() + Duration::from_millis(5);
    let got = klaw::select! {
        std::future::pending::<()>() -> () => "never",
        at(deadline) => "deadline",
    };
    assert_eq!(got, "deadline");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn future_arms_bind_irrefutable_patterns_and_bodies_can_use_question_mark() {
    async fn run() -> Result<u32, klaw::Error> {
        let handle = klaw::Handle::current()?.spawn(async { (1, 2) });
        let sum = klaw::select! {
            handle -> result => {
                let (a, b) = result?;
                a + b
            }
            after(Duration::from_secs(5)) => 0,
        };
        Ok(sum)
    }
    assert_eq!(run().await.unwrap(), 3);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn select_any_waits_on_a_dynamic_list() {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..5).map(|_| klaw::channel::bounded::<usize>(1)).unzip();
    let sender = klaw::Handle::current().unwrap().spawn(async move {
        klaw::time::sleep(Duration::from_millis(5)).await;
        senders[3].send(33).await.unwrap();
        senders
    });
    assert_eq!(klaw::channel::select_any(&receivers).await, Some((3, Ok(33))));
    drop(sender.await.unwrap());
    assert_eq!(klaw::channel::select_any::<usize>(&[]).await, None);
    let (index, result) = klaw::channel::select_any(&receivers).await.unwrap();
    assert_eq!(result, Err(RecvError::Closed), "closed receivers are ready, typed (index {index})");
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn the_select_of_the_first_example_compiles_and_runs() -> Result<(), klaw::Error> {
    // A select! with every kind of channel arm, as a first program writes it.
    let (tx, rx) = klaw::channel::bounded::<u32>(64);
    let mut got = None;
    klaw::select! {
        recv(rx) -> msg => match msg {
            Ok(v) => got = Some(v),
            Err(RecvError::Closed) => {}
        },
        send(tx, 7) -> res => { res?; }
        after(Duration::from_secs(1)) => {}
    }
    let v = rx.try_recv().ok().or(got);
    assert_eq!(v, Some(7), "the send arm is the only one ready at first");
    Ok(())
}

/// A `recv` or `send` arm takes "a receiver or sender, or a reference to one" (`SelectRecv`,
/// `SelectSend`): written `&rx`, returned by a getter, or held as `&mut`. What would break it: the
/// macro borrowing what the user wrote as a temporary that dies before the arm's future (E0716),
/// or no impl for `&mut`.
#[klaw::test(workers = 1, timeout = "10s")]
async fn a_recv_arm_takes_a_reference_to_a_receiver() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    tx.try_send(7).unwrap();
    let got = klaw::select! {
        recv(&rx) -> msg => msg,
    };
    assert_eq!(got, Ok(7));
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_send_arm_takes_a_reference_to_a_sender() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let sent = klaw::select! {
        send(&tx, 8) -> res => res,
    };
    assert_eq!(sent, Ok(()));
    assert_eq!(rx.try_recv(), Ok(8));
}

/// The same through a getter that returns `&Receiver` (a value, not a place).
struct Inbox {
    rx: klaw::channel::Receiver<u32>,
}

impl Inbox {
    fn receiver(&self) -> &klaw::channel::Receiver<u32> {
        &self.rx
    }
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_recv_arm_takes_a_receiver_returned_by_reference() {
    let (tx, rx) = klaw::channel::bounded::<u32>(2);
    let inbox = Inbox { rx };
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    let first = klaw::select! {
        biased;
        recv(inbox.receiver()) -> msg => msg,
        after(std::time::Duration::from_secs(5)) => Err(klaw::channel::RecvError::Closed),
    };
    assert_eq!(first, Ok(1));
    assert_eq!(inbox.rx.try_recv(), Ok(2), "a losing or winning arm took one message only");
}

async fn next_or_closed(rx: &mut Receiver<u32>) -> Result<u32, RecvError> {
    klaw::select! {
        recv(rx) -> msg => msg,
    }
}

async fn offer(tx: &mut Sender<u32>, value: u32) -> Result<(), SendError<u32>> {
    klaw::select! {
        send(tx, value) -> res => res,
    }
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn recv_and_send_arms_take_mutable_references() {
    let (mut tx, mut rx) = klaw::channel::bounded::<u32>(1);
    assert_eq!(offer(&mut tx, 3).await, Ok(()));
    assert_eq!(next_or_closed(&mut rx).await, Ok(3));
    drop(tx);
    assert_eq!(next_or_closed(&mut rx).await, Err(RecvError::Closed));
}

enum Side {
    Left(u32),
    Right(u32),
}

/// An arm's pattern may be an or-pattern, as a `match` arm's may.
#[klaw::test(workers = 1, timeout = "10s")]
async fn a_future_arm_binds_an_irrefutable_or_pattern() {
    let got = klaw::select! {
        async { Ok::<u32, u32>(4) } -> Ok(v) | Err(v) => v,
    };
    assert_eq!(got, 4);

    let got = klaw::select! {
        async { if got == 0 { Side::Left(0) } else { Side::Right(5) } } -> Side::Left(n) | Side::Right(n) => n,
        after(std::time::Duration::from_secs(5)) => 0,
    };
    assert_eq!(got, 5);
}

// A send arm's sender is free again in the arms' bodies, as with tokio's `select!` over
// `tx.send(v)`: what would break these (they would not compile) is the winner's permit, which
// borrows the sender, kept alive through the bodies.

struct Relay {
    out: Sender<u32>,
    sent: u32,
    failed: bool,
}

impl Relay {
    fn record(&mut self, res: Result<(), SendError<u32>>) {
        match res {
            Ok(()) => self.sent += 1,
            Err(_) => self.failed = true,
        }
    }

    /// The actor shape: the arm's body calls a `&mut self` method.
    async fn push(&mut self, value: u32) {
        klaw::select! {
            send(self.out, value) -> res => self.record(res),
        }
    }
}

#[klaw::test(workers = 1, timeout = "30s")]
async fn a_send_arm_body_may_call_a_mut_self_method() {
    let (tx, rx) = bounded::<u32>(1);
    let mut relay = Relay { out: tx, sent: 0, failed: false };
    relay.push(7).await;
    assert_eq!((relay.sent, relay.failed), (1, false));
    assert_eq!(rx.try_recv(), Ok(7));
}

/// A producer loop that closes its channel when told to stop: another arm's body drops the
/// sender the `send` arm used, then leaves the loop.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_body_may_drop_the_sender_a_send_arm_used() {
    let (tx, rx) = bounded::<u32>(4);
    let (stop_tx, stop) = bounded::<()>(1);
    stop_tx.try_send(()).unwrap();
    let mut next = 0u32;
    loop {
        klaw::select! {
            biased;
            recv(stop) -> _ => {
                drop(tx); // close the channel: the receiver sees the end
                break;
            }
            send(tx, next) -> res => {
                res.unwrap();
                next += 1;
            }
        }
    }
    assert_eq!(next, 0, "biased: the stop arm came first");
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
}

/// The names the macro binds are its own: a user variable of the same name keeps its value in a
/// body. What would break it: the macro's binding spanned at the user's pattern, so that it
/// shadowed the variable.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_user_variable_named_like_the_macros_binding_keeps_its_value_in_a_body() {
    let __klaw_won: u32 = 100;
    let got = klaw::select! {
        std::future::ready(1u32) -> n => n + __klaw_won,
    };
    assert_eq!(got, 101, "the body read the macro's binding instead of the user's variable");
}

/// A `const { .. }` body ends at its `}`, as a block does, so no comma is needed after it, as
/// in a `match` (it was "expected `,`").
#[klaw::test(workers = 1, timeout = "30s")]
async fn an_inline_const_block_body_needs_no_comma_as_in_a_match() {
    let got = klaw::select! {
        biased;
        std::future::ready(1u32) -> _ => const { 10u32 }
        std::future::pending::<u32>() -> n => n,
    };
    assert_eq!(got, 10);
}

/// This file's own `after`: ready at once with what it was given. (The `after` keyword's arm
/// is a timer that binds nothing.)
async fn after(value: u32) -> u32 {
    value
}

mod my_mod {
    /// Another `after` of the file's own, in a module: ready at once with ten times its value.
    pub(super) async fn after(value: u32) -> u32 {
        value * 10
    }
}

/// select.md: "To select on a future your own `async fn after(..)` returns, name it by a path
/// (`self::after(..)`, ...) ... and give it as a future arm." `self::after(7) -> value` beside a
/// keyword `after(1 h)` arm. Checks: the future arm wins with the file's function's output, 7.
///
/// What would break it: the macro reading a path whose last segment is `after` as the keyword
/// (`select/parse.rs::keyword` looking at the last segment instead of a single-identifier
/// path): the arm would be a timer, and its `-> value` a compile error ("`after(..)` binds
/// nothing"), or, were the binding dropped, a timer of `7` that cannot be a `Duration`.
#[test]
fn a_future_arm_written_self_after_calls_the_files_own_after() {
    in_task(|| async {
        let got = klaw::select! {
            self::after(7) -> value => value,
            after(secs(3600)) => 0,
        };
        assert_eq!(got, 7);
    });
}

/// select.md: "name it by a path (..., `my_mod::after(..)`)". `my_mod::after(4) -> value` beside
/// a keyword `after(1 h)` arm. Checks: the future arm wins with `my_mod::after`'s output, 40.
///
/// What would break it: as above, a path ending in `after` read as the keyword.
#[test]
fn a_future_arm_written_my_mod_after_calls_the_modules_after() {
    in_task(|| async {
        let got = klaw::select! {
            my_mod::after(4) -> value => value,
            after(secs(3600)) => 0,
        };
        assert_eq!(got, 40);
    });
}

/// select.md: "... or bind it first, and give it as a future arm." `let soon = after(3)` (the
/// file's function, outside the macro), then `soon -> value` beside a keyword `after(1 h)` arm,
/// in a `biased` select and a fair one. Checks: the future arm wins both times, with 3.
///
/// What would break it: a future given by a plain name not taken as a future arm (a compile
/// error), or the bound future of the file's `after` losing to the keyword's hour-long timer.
#[test]
fn a_bound_future_of_the_files_own_after_is_a_future_arm() {
    in_task(|| async {
        let soon = after(3);
        let got = klaw::select! {
            biased;
            soon -> value => value,
            after(secs(3600)) => 0,
        };
        assert_eq!(got, 3);

        let soon = after(5);
        let got = klaw::select! {
            after(secs(3600)) => 0,
            soon -> value => value,
        };
        assert_eq!(got, 5);
    });
}

fn seven() -> u8 {
    7
}

/// A future arm's head may hold a `->` of its own, inside a turbofish's angle brackets: only a
/// `->` at the head's top level (outside `<...>`) leads to the pattern. Checks: the arm with
/// `ready::<fn() -> u8>(seven)` compiles and binds the function, which returns 7.
///
/// What would break it: a head cut at its first `->` (`ready::<fn()`), which does not parse.
#[klaw::test(workers = 1, timeout = "30s")]
async fn a_future_arms_head_may_hold_an_arrow_inside_a_turbofish() {
    let got = klaw::select! {
        std::future::ready::<fn() -> u8>(seven) -> f => f(),
    };
    assert_eq!(got, 7);
}
