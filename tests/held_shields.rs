//! Fault tests of "while a shield holds a decided cancellation open, only the shield runs on"
//! (book/src/cancellation.md, "Shields"): what runs beside a shield under a held cancellation
//! makes no progress and takes nothing, what runs inside the shield works normally, the
//! outermost cancelled region reports its reason, and nothing hangs that the shield itself
//! should finish. Every scenario runs on a thread of its own with a deadline (`in_task`,
//! `with_deadline`), so a hang fails the test.

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{
    Flag, block_until_cancelled, foreign_until, in_task, ms, runtime, secs, until, with_deadline,
    yield_once,
};
use futures_util::future::join;
use klaw::cancel::{Region, Token, move_on_after, shield};
use klaw::channel::{Receiver, Sender};
use klaw::task::BlockingTask;
use klaw::{CancelReason, Error, TaskError};

fn user(message: &'static str) -> CancelReason {
    CancelReason::user(message)
}

fn shared<T>() -> Arc<Mutex<Option<T>>> {
    Arc::new(Mutex::new(None))
}

// ---- Scenario pieces ---------------------------------------------------------------------------

/// Runs the future `body` makes in a fresh region, handing it the region's token. The token
/// comes by value so that the future can keep it and borrow nothing but the test's own locals.
async fn in_region<F: Future>(body: impl FnOnce(Token) -> F) -> Result<F::Output, CancelReason> {
    let region = Region::new();
    let token = region.token();
    region.run(body(token)).await
}

/// The scenario of most tests here: `beside` runs in a `join` next to a shield that cancels the
/// region ("stop") and then, with that cancellation held, runs `held`. Gives what the region
/// returns.
async fn beside_a_held_shield(
    beside: impl Future<Output = ()>,
    held: impl Future<Output = ()>,
) -> Result<(), CancelReason> {
    in_region(|token| async {
        join(
            beside,
            shield(async {
                cancel_and_hold(token, "stop").await;
                held.await;
            }),
        )
        .await;
    })
    .await
}

/// The wake-up scenarios: like [`beside_a_held_shield`], but the shield first spawns `other`, a
/// task that waits on the same channel as `beside`, in line after it, and cancels `other` when
/// `held` is done.
async fn beside_a_held_shield_with_another_in_line(
    beside: impl Future<Output = ()>,
    other: impl Future<Output = ()> + Send + 'static,
    held: impl Future<Output = ()>,
) -> Result<(), CancelReason> {
    in_region(|token| async {
        join(
            beside,
            shield(async {
                let other = klaw::Handle::current().unwrap().spawn(other);
                klaw::time::sleep(ms(20)).await; // the other task waits in line now
                cancel_and_hold(token, "stop").await;
                held.await;
                other.cancel("done");
            }),
        )
        .await;
    })
    .await
}

/// Runs `held` in a shield that first cancels its region ("stop"); the region's future then
/// waits forever, so that only the held cancellation ends it. Gives what the region returns.
async fn in_a_held_shield(held: impl Future<Output = ()>) -> Result<(), CancelReason> {
    in_region(|token| async {
        shield(async {
            cancel_and_hold(token, "stop").await;
            held.await;
        })
        .await;
        pending::<()>().await;
    })
    .await
}

/// Cancels the region of `token` with `reason` from inside a shield and lets a moment pass, so
/// that the polls from then on are held ones.
async fn cancel_and_hold(token: Token, reason: &'static str) {
    token.cancel(reason);
    klaw::time::sleep(ms(2)).await;
}

/// The branch beside a shield that must take nothing: a `recv` that sets `took` if it gets a
/// message.
async fn recv_then_flag(rx: &Receiver<u32>, took: &Flag) {
    if rx.recv().await.is_ok() {
        took.set();
    }
}

/// Sends `value` from inside a shield and keeps the shield open a while after, so that a frozen
/// branch beside it has every chance to take the message.
async fn send_then_stay(tx: &Sender<u32>, value: u32) {
    tx.send(value).await.unwrap();
    klaw::time::sleep(ms(10)).await;
}

/// Sends `0..count` through `channel`, receiving each message before the next send: channel work
/// that, on a channel of one place, waits and is woken at every message.
async fn round_trips((tx, rx): (Sender<u32>, Receiver<u32>), count: u32) {
    for i in 0..count {
        tx.send(i).await.unwrap();
        assert_eq!(rx.recv().await, Ok(i));
    }
}

/// Waits forever at a klaw operation (a `recv` that nothing sends to), so that only a cancel ends
/// the body it closes.
async fn recv_forever() {
    let (_keep, rx) = klaw::channel::bounded::<u32>(1);
    let _ = rx.recv().await;
}

/// Waits (bounded) until the region of `token` is cancelled: a region's token hears the
/// cancellation of the task the region runs in, which these tests start from outside the body.
async fn hear_cancel(token: Token) {
    let _ = move_on_after(secs(5), until(|| token.is_cancelled())).await;
}

/// Waits on the test's own thread (not in a task) until `flag` is set.
fn block_until_set(flag: &Flag) {
    while !flag.is_set() {
        std::thread::sleep(ms(1));
    }
}

/// Where a task waits inside its shield until its handle has been cancelled, so that the cancel
/// of [`cancel_at_gate`] always lands while the shield runs.
#[derive(Clone, Default)]
struct Gate {
    reached: Flag,
    open: Flag,
}

impl Gate {
    /// Says the task is in its shield, then waits there until the cancel has been sent.
    async fn pass(&self) {
        self.reached.set();
        until(|| self.open.is_set()).await;
    }
}

/// Spawns the task `body` makes on `rt`, cancels its handle ("stop") once the task has reached
/// its gate, then opens the gate; gives the handle's outcome.
fn cancel_at_gate<F>(
    rt: &klaw::Runtime,
    body: impl FnOnce(Gate) -> F,
) -> Result<F::Output, TaskError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let gate = Gate::default();
    let handle = rt.spawn(body(gate.clone()));
    block_until_set(&gate.reached);
    handle.cancel("stop");
    gate.open.set();
    rt.block_on(handle)
}

/// Spins on the test's thread until `started`, then a while longer that varies with `round`, so
/// that the cancel which follows lands at different points around the end of the shield.
fn spin_past_start(started: &Flag, round: u32) {
    while !started.is_set() {
        std::hint::spin_loop();
    }
    for _ in 0..(round % 7) * 50 {
        std::hint::spin_loop();
    }
}

/// The inner two of three nested regions: region `outer` around region `inner`, whose body runs
/// `shielded` in a shield and then waits long; `after_inner` is set if the code after `inner`
/// runs. Gives what `outer` returns.
async fn two_regions_around_a_shield(
    outer: Region,
    inner: Region,
    shielded: impl Future<Output = ()>,
    after_inner: &Flag,
) -> Result<(), CancelReason> {
    outer
        .run(async {
            let _ = inner
                .run(async {
                    shield(shielded).await;
                    klaw::time::sleep(secs(60)).await;
                })
                .await;
            after_inner.set();
        })
        .await
}

// ---- What runs beside a held shield takes nothing --------------------------------------------

/// A `recv` in a `join` branch beside a shield, under the region's own cancel that the shield
/// holds, takes nothing: a message sent meanwhile stays in the channel, and the branch never
/// sees it ("return `Pending` without taking anything").
#[test]
fn a_recv_beside_a_held_shield_takes_nothing() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let took = Flag::default();
        let result = beside_a_held_shield(recv_then_flag(&rx, &took), send_then_stay(&tx, 5)).await;
        assert_eq!(result, Err(user("stop")));
        assert!(!took.is_set(), "the branch beside the shield received");
        assert_eq!(rx.try_recv(), Ok(5), "the message did not stay in the channel");
    });
}

/// The wake-up a send gives the first receiver in line must not be lost when that receiver is
/// frozen beside a held shield: another task waiting on the same channel (in line after it)
/// must get the message. The shield sends one message and waits (bounded) for the other task's
/// reply; it should finish, since the other task is neither cancelled nor frozen.
#[test]
fn a_wake_up_given_to_a_frozen_receiver_still_reaches_another_receiver() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let (reply_tx, reply_rx) = klaw::channel::bounded::<u32>(1);
        let other_rx = rx.clone();
        let took = Flag::default();
        let replied = shared();
        let result = beside_a_held_shield_with_another_in_line(
            recv_then_flag(&rx, &took),
            async move {
                let value = other_rx.recv().await.unwrap();
                reply_tx.send(value * 10).await.unwrap();
            },
            async {
                tx.send(1).await.unwrap();
                let reply = move_on_after(secs(5), reply_rx.recv()).await;
                *replied.lock().unwrap() = Some(reply);
            },
        )
        .await;
        assert_eq!(result, Err(user("stop")));
        assert!(!took.is_set(), "the frozen branch received");
        assert_eq!(
            replied.lock().unwrap().take(),
            Some(Some(Ok(10))),
            "the other receiver never got the message: the wake-up stayed with the frozen one"
        );
    });
}

/// The same for senders: a send beside a held shield waits for a place in a full channel,
/// first in line; another task's send waits after it. The shield takes one message (a place
/// frees up) and then waits (bounded) for the other task's message, which must come; the
/// frozen send must deliver nothing.
#[test]
fn a_wake_up_given_to_a_frozen_sender_still_reaches_another_sender() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        tx.try_send(0).unwrap();
        let other_tx = tx.clone();
        let sent = Flag::default();
        let got = shared();
        let result = beside_a_held_shield_with_another_in_line(
            async {
                if tx.send(100).await.is_ok() {
                    sent.set();
                }
            },
            async move {
                other_tx.send(200).await.unwrap();
            },
            async {
                assert_eq!(rx.recv().await, Ok(0));
                let next = move_on_after(secs(5), rx.recv()).await;
                *got.lock().unwrap() = Some(next);
            },
        )
        .await;
        assert_eq!(result, Err(user("stop")));
        assert!(!sent.is_set(), "the frozen send completed");
        assert_eq!(
            got.lock().unwrap().take(),
            Some(Some(Ok(200))),
            "the other sender never got the place: the wake-up stayed with the frozen one"
        );
        assert!(rx.try_recv().is_err(), "the frozen send delivered its value");
    });
}

/// A branch beside a held shield that sends in a loop on an unbounded channel (every send is
/// ready at once) delivers nothing more once the cancellation is held: the count of messages
/// the shield sees after its first held poll is the count at the end.
#[test]
fn sends_beside_a_held_shield_deliver_nothing() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::unbounded::<u32>();
        let at_hold = Arc::new(AtomicUsize::new(usize::MAX));
        let result = in_region(|token| {
            join(
                shield(async {
                    klaw::time::sleep(ms(2)).await;
                    cancel_and_hold(token, "stop").await; // a held poll: the loop is frozen by now
                    at_hold.store(rx.len(), Ordering::SeqCst);
                    klaw::time::sleep(ms(20)).await;
                }),
                async {
                    let mut i = 0;
                    loop {
                        if tx.send(i).await.is_err() {
                            break;
                        }
                        i += 1;
                    }
                },
            )
        })
        .await;
        assert_eq!(result, Err(user("stop")));
        let (held, end) = (at_hold.load(Ordering::SeqCst), rx.len());
        assert_ne!(held, usize::MAX, "the shield did not finish");
        assert_eq!(end, held, "{} messages were sent beside the shield while it held", end - held);
    });
}

/// Code after a shield in a region cancelled (on its own account) while the shield ran stops at
/// its next klaw operation: a send there delivers nothing, although the channel has room, and
/// the code after the send never runs.
#[test]
fn a_send_after_a_shield_in_a_cancelled_region_delivers_nothing() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::unbounded::<u32>();
        let (shielded, after) = (Flag::default(), Flag::default());
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                shield(async {
                    token.cancel("stop");
                    klaw::time::sleep(ms(5)).await;
                    shielded.set();
                })
                .await;
                tx.send(1).await.unwrap();
                after.set();
            })
            .await;
        assert_eq!(result, Err(user("stop")));
        assert!(shielded.is_set());
        assert!(!after.is_set(), "the code after the send ran");
        assert!(rx.try_recv().is_err(), "the send after the shield delivered");
    });
}

/// A task cancelled through its handle while its body runs a shield: the shield's channel work
/// completes; the send after the shield delivers nothing; the handle reports the cancel reason.
#[test]
fn a_task_cancelled_by_its_handle_runs_its_shield_and_nothing_after_it() {
    with_deadline(|| {
        let rt = runtime(2);
        let (tx, rx) = klaw::channel::unbounded::<u32>();
        let (done, after) = (Flag::default(), Flag::default());
        let (d2, a2) = (done.clone(), after.clone());
        let outcome = cancel_at_gate(&rt, |gate| async move {
            shield(async {
                gate.pass().await;
                round_trips(klaw::channel::bounded(1), 200).await;
                d2.set();
            })
            .await;
            tx.send(1).await.unwrap();
            a2.set();
        });
        assert!(
            matches!(&outcome, Err(TaskError::Cancelled(reason)) if *reason == user("stop")),
            "{outcome:?}"
        );
        assert!(done.is_set(), "the shield's work did not complete");
        assert!(!after.is_set(), "the code after the send ran");
        assert!(rx.try_recv().is_err(), "the send after the shield delivered");
    });
}

/// A task cancelled through its handle while one branch of its body is in a shield: the other
/// branch's `recv` takes nothing, the message the shield sends stays in the channel.
#[test]
fn a_task_cancelled_by_its_handle_freezes_the_branch_beside_its_shield() {
    with_deadline(|| {
        let rt = runtime(2);
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let rx_after = rx.clone();
        let (done, took) = (Flag::default(), Flag::default());
        let (d2, t2) = (done.clone(), took.clone());
        let outcome = cancel_at_gate(&rt, |gate| async move {
            let shielded = shield(async {
                gate.pass().await;
                send_then_stay(&tx, 8).await;
                d2.set();
            });
            join(recv_then_flag(&rx, &t2), shielded).await;
        });
        assert!(matches!(&outcome, Err(TaskError::Cancelled(_))), "{outcome:?}");
        assert!(done.is_set());
        assert!(!took.is_set(), "the branch beside the shield received");
        assert_eq!(rx_after.try_recv(), Ok(8), "the message did not stay in the channel");
    });
}

/// Every kind of klaw operation beside a held shield is frozen and takes nothing: a oneshot, a
/// broadcast and a watch receive, a sleep, and awaiting a task handle. After the region, the
/// oneshot's and the broadcast's values are still there, the watch still reads as changed, and
/// the handle still gives its output.
#[test]
fn every_kind_of_operation_beside_a_held_shield_takes_nothing() {
    in_task(|| async {
        let (one_tx, mut one_rx) = klaw::channel::oneshot::channel::<u32>();
        let (b_tx, mut b_rx) = klaw::channel::broadcast::channel::<u32>(4);
        let (w_tx, mut w_rx) = klaw::channel::watch::channel::<u32>(0);
        let (gate, task_done) = (Flag::default(), Flag::default());
        let (g2, d2) = (gate.clone(), task_done.clone());
        let mut handle = klaw::Handle::current().unwrap().spawn(async move {
            until(|| g2.is_set()).await;
            d2.set();
            7u32
        });
        let took: Arc<Mutex<Vec<&'static str>>> = Arc::default();
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                let push = |what| took.lock().unwrap().push(what);
                let beside = futures_util::future::join5(
                    async {
                        if (&mut one_rx).await.is_ok() {
                            push("oneshot");
                        }
                    },
                    async {
                        if b_rx.recv().await.is_ok() {
                            push("broadcast");
                        }
                    },
                    async {
                        if w_rx.changed().await.is_ok() {
                            push("watch");
                        }
                    },
                    async {
                        if (&mut handle).await.is_ok() {
                            push("handle");
                        }
                    },
                    async {
                        klaw::time::sleep(ms(1)).await;
                        push("sleep");
                    },
                );
                let shielded = shield(async {
                    token.cancel("stop");
                    klaw::time::sleep(ms(3)).await;
                    one_tx.send(1).unwrap();
                    b_tx.send(2).unwrap();
                    w_tx.send(3).unwrap();
                    gate.set();
                    until(|| task_done.is_set()).await;
                    klaw::time::sleep(ms(20)).await;
                });
                join(beside, shielded).await;
            })
            .await;
        assert_eq!(result, Err(user("stop")));
        assert_eq!(
            *took.lock().unwrap(),
            Vec::<&str>::new(),
            "operations beside the shield completed"
        );
        assert_eq!(one_rx.try_recv(), Ok(1), "the oneshot's value is gone");
        assert_eq!(b_rx.try_recv(), Ok(2), "the broadcast receiver moved past its message");
        assert_eq!(w_rx.has_changed(), Ok(true), "the watch value was marked seen");
        assert_eq!(handle.await, Ok(7), "the handle's output is gone");
    });
}

/// `checkpoint()` beside a held shield does not return (trio's checkpoint raises `Cancelled`),
/// while a `checkpoint()` inside the shield does.
#[test]
fn a_checkpoint_beside_a_held_shield_does_not_return_and_one_inside_does() {
    in_task(|| async {
        let (beside_passed, inside_passed) = (Flag::default(), Flag::default());
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                let shielded = shield(async {
                    cancel_and_hold(token.clone(), "stop").await;
                    for _ in 0..500 {
                        klaw::cancel::checkpoint().await;
                    }
                    inside_passed.set();
                    klaw::time::sleep(ms(5)).await;
                });
                let beside = async {
                    foreign_until(|| token.is_cancelled()).await;
                    klaw::cancel::checkpoint().await;
                    beside_passed.set();
                };
                join(shielded, beside).await;
            })
            .await;
        assert_eq!(result, Err(user("stop")));
        assert!(inside_passed.is_set(), "checkpoints inside the shield did not return");
        assert!(!beside_passed.is_set(), "a checkpoint beside the held shield returned");
    });
}

// ---- What runs inside the shield works ---------------------------------------------------------

/// A shield in a local child of a scope, in a task cancelled through its handle: channel
/// operations, sleeps, awaiting a handle and checkpoints inside the shield all work after the
/// cancel; the task reports the cancel.
#[test]
fn operations_inside_a_shield_in_a_local_child_of_a_cancelled_task_work() {
    with_deadline(|| {
        let rt = runtime(2);
        let done = Flag::default();
        let d2 = done.clone();
        let outcome = cancel_at_gate(&rt, |gate| async move {
            let _: Result<(), Error> = klaw::scope!(|s| {
                let (gate, d2) = (gate.clone(), d2.clone());
                s.spawn_local(shield(async move {
                    gate.pass().await;
                    round_trips(klaw::channel::bounded(1), 300).await;
                    klaw::time::sleep(ms(1)).await;
                    let other = klaw::Handle::current().unwrap().spawn(async { 5u32 });
                    assert_eq!(other.await, Ok(5));
                    klaw::cancel::checkpoint().await;
                    assert!(!klaw::cancel::is_cancelled());
                    d2.set();
                }));
                pending::<()>().await;
                Ok(())
            });
        });
        assert!(
            matches!(&outcome, Err(TaskError::Cancelled(reason)) if *reason == user("stop")),
            "{outcome:?}"
        );
        assert!(done.is_set(), "the local child's shield did not finish its work");
    });
}

/// A shield inside region B inside region A, A cancelled from inside the shield: every klaw
/// operation inside the shield works; A reports its reason.
#[test]
fn operations_inside_a_shield_in_a_region_inside_a_cancelled_region_work() {
    in_task(|| async {
        let done = Flag::default();
        let (a, b) = (Region::new(), Region::new());
        let ta = a.token();
        let result = a
            .run(async {
                let _ = b
                    .run(shield(async {
                        cancel_and_hold(ta, "a").await;
                        round_trips(klaw::channel::unbounded(), 300).await;
                        let (otx, orx) = klaw::channel::oneshot::channel::<u32>();
                        let h = klaw::Handle::current().unwrap().spawn(async move {
                            klaw::time::sleep(ms(1)).await;
                            otx.send(3).unwrap();
                        });
                        assert_eq!(orx.await, Ok(3));
                        assert_eq!(h.await, Ok(()));
                        klaw::cancel::checkpoint().await;
                        done.set();
                    }))
                    .await;
                pending::<()>().await;
            })
            .await;
        assert_eq!(result, Err(user("a")));
        assert!(done.is_set(), "the shield inside the inner region did not finish");
    });
}

/// Nested shields under a region cancelled meanwhile: operations work in the inner shield, and
/// in the outer one after the inner has ended (the outer still shields them); an inline
/// `Task` with a timeout awaited in the outer shield runs to its end.
#[test]
fn operations_in_nested_shields_work_before_and_after_the_inner_one_ends() {
    in_task(|| async {
        let (inner_done, outer_done) = (Flag::default(), Flag::default());
        let result = in_region(|token| async {
            shield(async {
                shield(async {
                    cancel_and_hold(token, "stop").await;
                    let (tx, rx) = klaw::channel::bounded::<u32>(1);
                    tx.send(1).await.unwrap();
                    assert_eq!(rx.recv().await, Ok(1));
                    inner_done.set();
                })
                .await;
                let (tx, rx) = klaw::channel::bounded::<u32>(1);
                tx.send(2).await.unwrap();
                assert_eq!(rx.recv().await, Ok(2));
                klaw::time::sleep(ms(1)).await;
                let inline = klaw::Task::new(async {
                    klaw::time::sleep(ms(1)).await;
                    9u32
                })
                .timeout(secs(5));
                assert_eq!(inline.await, Ok(9));
                outer_done.set();
            })
            .await;
            pending::<()>().await;
        })
        .await;
        assert_eq!(result, Err(user("stop")));
        assert!(inner_done.is_set(), "the inner shield did not finish");
        assert!(outer_done.is_set(), "the outer shield did not finish after the inner one");
    });
}

/// A scope opened inside a shield under a region cancelled meanwhile: its body, a local, a
/// parallel and a blocking child all run to their ends, and the scope returns their sum.
#[test]
fn a_scope_opened_inside_a_shield_under_a_cancelled_region_runs_everything() {
    in_task(|| async {
        let seen = shared();
        let result = in_a_held_shield(async {
            let got: Result<u32, Error> = klaw::scope!(|s| {
                let local = s.spawn_local(async {
                    klaw::time::sleep(ms(1)).await;
                    let (tx, rx) = klaw::channel::bounded::<u32>(1);
                    tx.send(1).await.unwrap();
                    rx.recv().await.unwrap()
                });
                let parallel = s.spawn(async {
                    klaw::time::sleep(ms(1)).await;
                    2u32
                });
                let blocking = s.spawn_blocking(|| 4u32);
                klaw::time::sleep(ms(1)).await;
                Ok(local.await? + parallel.await? + blocking.await?)
            });
            *seen.lock().unwrap() = Some(got.map_err(|e| format!("{e:?}")));
        })
        .await;
        assert_eq!(result, Err(user("stop")));
        assert_eq!(seen.lock().unwrap().take(), Some(Ok(7)), "the scope in the shield did not run");
    });
}

// ---- select! and join ----------------------------------------------------------------------------

/// `select!` inside a shield under a held cancellation works: a `recv` arm takes the waiting
/// message, and an `after` arm fires when nothing comes.
#[test]
fn select_inside_a_held_shield_works() {
    in_task(|| async {
        let seen = shared();
        let result = in_a_held_shield(async {
            let (tx, rx) = klaw::channel::bounded::<u32>(1);
            tx.try_send(5).unwrap();
            let got = klaw::select! {
                recv(rx) -> msg => msg.ok(),
                after(secs(5)) => None,
            };
            let timed = klaw::select! {
                recv(rx) -> _msg => Some(99),
                after(ms(5)) => None,
            };
            *seen.lock().unwrap() = Some((got, timed));
        })
        .await;
        assert_eq!(result, Err(user("stop")));
        assert_eq!(seen.lock().unwrap().take(), Some((Some(5), None)));
    });
}

/// `select!` whose one arm is a shield and other arm a `recv` outside it: under the held
/// cancellation the shield arm wins, the `recv` arm takes nothing (the message sent from
/// inside the shield stays), and the region reports its reason.
#[test]
fn select_with_a_shield_arm_and_a_recv_arm_takes_nothing_outside_the_shield() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let picked = shared();
        let result = in_region(|token| async {
            let which = klaw::select! {
                shield(async {
                    cancel_and_hold(token, "stop").await;
                    send_then_stay(&tx, 5).await;
                }) -> () => "shield",
                recv(rx) -> _msg => "recv",
            };
            *picked.lock().unwrap() = Some(which);
            pending::<()>().await;
        })
        .await;
        assert_eq!(result, Err(user("stop")));
        assert_eq!(picked.lock().unwrap().take(), Some("shield"));
        assert_eq!(rx.try_recv(), Ok(5), "the losing recv arm took the message");
    });
}

/// A `select!` beside a held shield (in a `join` branch) is frozen: neither its `recv` arm nor
/// its `after` arm completes; the message stays.
#[test]
fn select_beside_a_held_shield_is_frozen() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let took = shared();
        let result = beside_a_held_shield(
            async {
                let got = klaw::select! {
                    recv(rx) -> msg => msg.ok(),
                    after(ms(3)) => None,
                };
                *took.lock().unwrap() = Some(got);
            },
            async {
                tx.send(5).await.unwrap();
                klaw::time::sleep(ms(20)).await; // the `after` arm's time passes too
            },
        )
        .await;
        assert_eq!(result, Err(user("stop")));
        assert_eq!(took.lock().unwrap().take(), None, "the select beside the shield completed");
        assert_eq!(rx.try_recv(), Ok(5));
    });
}

// ---- Children ------------------------------------------------------------------------------------

/// A parallel (spawned) child with a shield, in a scope whose enclosing region is cancelled:
/// the child's shield holds only the child, so the region drops the scope and the child is
/// cancelled; its shield runs to its end, the branch beside its shield takes nothing, and the
/// region returns its reason only after the child has ended.
#[test]
fn a_shield_in_a_parallel_child_finishes_and_its_sibling_branch_takes_nothing() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let rx_after = rx.clone();
        let (started, done, took) = (Flag::default(), Flag::default(), Flag::default());
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    let (started2, done, took, tx, rx) =
                        (started.clone(), done.clone(), took.clone(), tx.clone(), rx.clone());
                    s.spawn(async move {
                        // A region token hears the child's own cancellation.
                        let _ = in_region(|heard| {
                            join(
                                recv_then_flag(&rx, &took),
                                shield(async {
                                    started2.set();
                                    hear_cancel(heard).await;
                                    klaw::time::sleep(ms(2)).await;
                                    send_then_stay(&tx, 9).await;
                                    done.set();
                                }),
                            )
                        })
                        .await;
                    });
                    until(|| started.is_set()).await;
                    token.cancel("stop");
                    pending::<()>().await;
                    Ok(())
                });
            })
            .await;
        assert_eq!(result, Err(user("stop")));
        assert!(done.is_set(), "the region returned before the child's shield ended");
        assert!(!took.is_set(), "the branch beside the child's shield received");
        assert_eq!(rx_after.try_recv(), Ok(9));
    });
}

/// A blocking child of a scope whose enclosing region is held open by a local child's shield
/// is cancelled (the scope cancels its children): it sees `is_cancelled()` and ends, and the
/// shield, which waits (bounded) for that, sees it end.
#[test]
fn a_blocking_child_is_cancelled_while_a_local_shield_holds_the_region() {
    in_task(|| async {
        let saw = Flag::default();
        let (running, shielded) = (Flag::default(), Flag::default());
        let waited = shared();
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    let (saw2, saw3, waited) = (saw.clone(), saw.clone(), waited.clone());
                    let (running2, shielded2) = (running.clone(), shielded.clone());
                    s.spawn_blocking(move || {
                        running2.set();
                        while !klaw::cancel::is_cancelled() {
                            std::thread::sleep(ms(1));
                        }
                        saw2.set();
                    });
                    s.spawn_local(shield(async move {
                        shielded2.set();
                        let seen = move_on_after(secs(5), until(|| saw3.is_set())).await;
                        *waited.lock().unwrap() = Some(seen.is_some());
                    }));
                    // Cancels once both children run: one cancelled before it starts never
                    // runs (a queued blocking job is withdrawn), and there would be no closure
                    // to see it, or no shield holding the region.
                    until(|| running.is_set() && shielded.is_set()).await;
                    token.cancel("stop");
                    pending::<()>().await;
                    Ok(())
                });
            })
            .await;
        assert_eq!(result, Err(user("stop")));
        assert_eq!(
            waited.lock().unwrap().take(),
            Some(true),
            "the blocking child was not cancelled while the shield held the region"
        );
        assert!(saw.is_set());
    });
}

/// Two local children in shields, of different lengths, hold the region: the scope's body does
/// not go round its loop again once the region is cancelled, both shields finish, and the
/// region reports its reason.
#[test]
fn two_local_shields_both_finish_and_the_body_stays_frozen() {
    in_task(|| async {
        let (short, long) = (Flag::default(), Flag::default());
        let ticks = AtomicUsize::new(0);
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    let (short, long) = (short.clone(), long.clone());
                    s.spawn_local(shield(async move {
                        klaw::time::sleep(ms(10)).await;
                        short.set();
                    }));
                    s.spawn_local(shield(async move {
                        klaw::time::sleep(ms(30)).await;
                        long.set();
                    }));
                    loop {
                        if ticks.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                            token.cancel("stop");
                        }
                        klaw::time::sleep(ms(1)).await;
                    }
                });
            })
            .await;
        assert_eq!(result, Err(user("stop")));
        assert!(short.is_set() && long.is_set(), "a shield was cut short");
        assert_eq!(ticks.load(Ordering::SeqCst), 3, "the body went on while the shields held");
    });
}

// ---- Races ---------------------------------------------------------------------------------------

/// A region's token cancelled from another thread while (or just after) its shield ends, over
/// many rounds on a two-worker runtime: the shield's work always completes, and the region
/// always returns the reason (its future waits forever after the shield).
#[test]
fn a_region_cancel_racing_the_end_of_its_shield_never_hangs_or_cuts_it_short() {
    with_deadline(|| {
        let rt = runtime(2);
        for round in 0..300u32 {
            let region = Region::new();
            let token = region.token();
            let (started, done) = (Flag::default(), Flag::default());
            let (s2, d2) = (started.clone(), done.clone());
            let handle = rt.spawn(async move {
                region
                    .run(async move {
                        shield(async {
                            s2.set();
                            round_trips(klaw::channel::bounded(1), round % 16).await;
                            klaw::cancel::checkpoint().await;
                            d2.set();
                        })
                        .await;
                        recv_forever().await;
                    })
                    .await
            });
            spin_past_start(&started, round);
            token.cancel("race");
            let outcome = rt.block_on(handle);
            assert_eq!(outcome, Ok(Err(user("race"))), "round {round}");
            assert!(done.is_set(), "round {round}: the shield was cut short");
        }
    });
}

/// A task's handle cancelled from another thread while (or just after) its shield ends, over
/// many rounds: the shield's work always completes, and the handle reports the cancel.
#[test]
fn a_handle_cancel_racing_the_end_of_a_shield_never_hangs_or_cuts_it_short() {
    with_deadline(|| {
        let rt = runtime(2);
        for round in 0..300u32 {
            let (started, done) = (Flag::default(), Flag::default());
            let (s2, d2) = (started.clone(), done.clone());
            let handle = rt.spawn(async move {
                shield(async {
                    s2.set();
                    round_trips(klaw::channel::bounded(1), round % 16).await;
                    d2.set();
                })
                .await;
                recv_forever().await;
            });
            spin_past_start(&started, round);
            handle.cancel("race");
            let outcome = rt.block_on(handle);
            assert!(
                matches!(&outcome, Err(TaskError::Cancelled(reason)) if *reason == user("race")),
                "round {round}: {outcome:?}"
            );
            assert!(done.is_set(), "round {round}: the shield was cut short");
        }
    });
}

// ---- The cooperative budget ----------------------------------------------------------------------

/// A shield under a held cancellation does 10 000 round trips with another task and 10 000
/// send/recv pairs of its own (far beyond one poll's budget of 128): it yields for the budget
/// and goes on, and completes every one; the branch beside it stays frozen.
#[test]
fn a_held_shield_doing_ten_thousand_channel_operations_completes() {
    in_task(|| async {
        let (to_peer, peer_rx) = klaw::channel::bounded::<u32>(1);
        let (peer_tx, from_peer) = klaw::channel::bounded::<u32>(1);
        let peer = klaw::Handle::current().unwrap().spawn(async move {
            while let Ok(value) = peer_rx.recv().await {
                if peer_tx.send(value + 1).await.is_err() {
                    break;
                }
            }
        });
        let (side_tx, side_rx) = klaw::channel::unbounded::<u32>();
        let trips = AtomicUsize::new(0);
        let took = Flag::default();
        let result = beside_a_held_shield(recv_then_flag(&side_rx, &took), async {
            side_tx.send(1).await.unwrap();
            for i in 0..10_000 {
                to_peer.send(i).await.unwrap();
                assert_eq!(from_peer.recv().await, Ok(i + 1));
                trips.fetch_add(1, Ordering::SeqCst);
            }
            let (tx, rx) = klaw::channel::unbounded::<u32>();
            for i in 0..10_000 {
                tx.send(i).await.unwrap();
                assert_eq!(rx.recv().await, Ok(i));
                trips.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await;
        assert_eq!(result, Err(user("stop")));
        assert_eq!(trips.load(Ordering::SeqCst), 20_000);
        assert!(!took.is_set(), "the branch beside the shield received");
        assert_eq!(side_rx.try_recv(), Ok(1));
        drop(to_peer);
        assert_eq!(peer.await, Ok(()));
    });
}

// ---- Runtime shutdown ------------------------------------------------------------------------------

/// The runtime shuts down while a shield that never ends holds a region's cancellation: the
/// shutdown returns (a shield cannot stop it), and the frozen `recv` beside the shield never
/// took the message sent meanwhile.
#[test]
fn shutdown_while_a_shield_holds_a_cancellation_returns_and_takes_nothing() {
    with_deadline(|| {
        let rt = runtime(2);
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let rx_after = rx.clone();
        let (started, took) = (Flag::default(), Flag::default());
        let (s2, t2) = (started.clone(), took.clone());
        let region = Region::new();
        let token = region.token();
        let _handle = rt.spawn(async move {
            let _ = region
                .run(join(
                    recv_then_flag(&rx, &t2),
                    shield(async {
                        s2.set();
                        pending::<()>().await;
                    }),
                ))
                .await;
        });
        block_until_set(&started);
        token.cancel("stop");
        std::thread::sleep(ms(10));
        tx.try_send(1).unwrap();
        std::thread::sleep(ms(10));
        let report = rt.shutdown(ms(20));
        assert!(report.cancelled + report.abandoned >= 1, "{report:?}");
        assert!(!took.is_set(), "the branch beside the shield received");
        assert_eq!(rx_after.try_recv(), Ok(1));
    });
}

/// The runtime shuts down (with a grace period) while a short shield holds a region's
/// cancellation: the shield finishes in the grace period and the task ends on its own.
#[test]
fn shutdown_with_grace_lets_a_held_shield_finish() {
    with_deadline(|| {
        let rt = runtime(2);
        let (started, done) = (Flag::default(), Flag::default());
        let (s2, d2) = (started.clone(), done.clone());
        let region = Region::new();
        let token = region.token();
        let _handle = rt.spawn(async move {
            let _ = region
                .run(async {
                    shield(async {
                        s2.set();
                        klaw::time::sleep(ms(30)).await;
                        let (tx, rx) = klaw::channel::bounded::<u32>(1);
                        tx.send(1).await.unwrap();
                        assert_eq!(rx.recv().await, Ok(1));
                        d2.set();
                    })
                    .await;
                    pending::<()>().await;
                })
                .await;
        });
        block_until_set(&started);
        token.cancel("stop");
        let report = rt.shutdown(secs(10));
        assert!(done.is_set(), "the shield did not finish in the grace period: {report:?}");
        assert!(!report.grace_expired, "{report:?}");
    });
}

// ---- Nested regions and the reported reason ------------------------------------------------------

/// Three nested regions, all three cancelled from inside a shield in the innermost: the
/// outermost catches the cancellation and returns its own reason; the code after the inner
/// regions never runs.
#[test]
fn three_nested_regions_all_cancelled_the_outermost_reports_its_reason() {
    in_task(|| async {
        let (shielded, after_c, after_b) = (Flag::default(), Flag::default(), Flag::default());
        let (a, b, c) = (Region::new(), Region::new(), Region::new());
        let (ta, tb, tc) = (a.token(), b.token(), c.token());
        let cancel_all = async {
            tc.cancel("c");
            tb.cancel("b");
            ta.cancel("a");
            klaw::time::sleep(ms(5)).await;
            shielded.set();
        };
        let result = a
            .run(async {
                let _ = two_regions_around_a_shield(b, c, cancel_all, &after_c).await;
                after_b.set();
            })
            .await;
        assert_eq!(result, Err(user("a")));
        assert!(shielded.is_set());
        assert!(!after_c.is_set() && !after_b.is_set(), "code between cancelled regions ran");
    });
}

/// Three nested regions, the inner two cancelled from inside a shield in the innermost: B (the
/// outermost cancelled one) returns its reason to A's future, which goes on; the code after C
/// never runs.
#[test]
fn three_nested_regions_the_middle_one_catches_when_the_outer_is_not_cancelled() {
    in_task(|| async {
        let (after_c, after_b) = (Flag::default(), Flag::default());
        let b_result = shared();
        let (a, b, c) = (Region::new(), Region::new(), Region::new());
        let (tb, tc) = (b.token(), c.token());
        let cancel_inner_two = async {
            tc.cancel("c");
            tb.cancel("b");
            klaw::time::sleep(ms(5)).await;
        };
        let result = a
            .run(async {
                let got = two_regions_around_a_shield(b, c, cancel_inner_two, &after_c).await;
                *b_result.lock().unwrap() = Some(got);
                klaw::time::sleep(ms(1)).await;
                after_b.set();
                5u32
            })
            .await;
        assert_eq!(result, Ok(5));
        assert_eq!(b_result.lock().unwrap().take(), Some(Err(user("b"))));
        assert!(!after_c.is_set(), "the code after the inner region ran");
        assert!(after_b.is_set());
    });
}

/// Three nested regions with the shield at the middle level, beside the innermost region (a
/// `join`): the outermost is cancelled; the innermost region's future makes no progress (its
/// `recv` takes nothing), and the outermost returns its reason.
#[test]
fn three_nested_regions_a_shield_in_the_middle_freezes_the_innermost_beside_it() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let (done, after_b) = (Flag::default(), Flag::default());
        let got: Arc<Mutex<Vec<u32>>> = Arc::default();
        let (a, b, c) = (Region::new(), Region::new(), Region::new());
        let ta = a.token();
        let result = a
            .run(async {
                let _ = b
                    .run(async {
                        let shielded = shield(async {
                            klaw::time::sleep(ms(2)).await;
                            ta.cancel("a");
                            klaw::time::sleep(ms(2)).await;
                            tx.send(1).await.unwrap();
                            klaw::time::sleep(ms(20)).await;
                            done.set();
                        });
                        let inner = c.run(async {
                            while let Ok(value) = rx.recv().await {
                                got.lock().unwrap().push(value);
                            }
                        });
                        let _ = join(shielded, inner).await;
                    })
                    .await;
                after_b.set();
            })
            .await;
        assert_eq!(result, Err(user("a")));
        assert!(done.is_set());
        assert!(!after_b.is_set());
        assert_eq!(*got.lock().unwrap(), Vec::<u32>::new(), "the innermost region received");
        assert_eq!(rx.try_recv(), Ok(1));
    });
}

/// A shield around region B inside region A, both cancelled inside B: B is inside the shield,
/// so it returns its own reason there; A, held until the shield ends, then returns its own, and
/// the code after the shield stops at its next checkpoint.
#[test]
fn a_region_inside_a_shield_returns_its_own_reason_and_the_outer_returns_its_own() {
    in_task(|| async {
        let after = Flag::default();
        let b_result = shared();
        let (a, b) = (Region::new(), Region::new());
        let (ta, tb) = (a.token(), b.token());
        let result = a
            .run(async {
                let got = shield(async {
                    b.run(async {
                        ta.cancel("a");
                        tb.cancel("b");
                        klaw::time::sleep(secs(60)).await;
                    })
                    .await
                })
                .await;
                *b_result.lock().unwrap() = Some(got);
                klaw::cancel::checkpoint().await;
                after.set();
            })
            .await;
        assert_eq!(result, Err(user("a")));
        assert_eq!(b_result.lock().unwrap().take(), Some(Err(user("b"))));
        assert!(!after.is_set(), "a checkpoint after the shield returned");
    });
}

/// `Token::run_until_cancelled` around a shield, the parent token cancelled from inside the
/// shield: the shield finishes (its send is delivered), the send after it is not, and the
/// parent's reason is returned.
#[test]
fn run_until_cancelled_around_a_shield_returns_the_tokens_reason_after_it() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::unbounded::<u32>();
        let after = Flag::default();
        let parent = Token::new();
        let result = parent
            .run_until_cancelled(async {
                shield(async {
                    parent.cancel("p");
                    klaw::time::sleep(ms(5)).await;
                    tx.send(1).await.unwrap();
                })
                .await;
                tx.send(2).await.unwrap();
                after.set();
            })
            .await;
        assert_eq!(result, Err(user("p")));
        assert_eq!(rx.try_recv(), Ok(1), "the shield's send was not delivered");
        assert!(rx.try_recv().is_err(), "the send after the shield was delivered");
        assert!(!after.is_set());
    });
}

/// A task's own timeout passes while one branch of its body is in a shield: the shield finishes,
/// the branch beside it takes nothing, and the handle reports `TimedOut`.
#[test]
fn a_task_timeout_held_by_a_shield_freezes_the_branch_beside_it() {
    with_deadline(|| {
        let rt = runtime(2);
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let rx_after = rx.clone();
        let (done, took) = (Flag::default(), Flag::default());
        let (d2, t2) = (done.clone(), took.clone());
        let handle = rt.spawn(
            klaw::Task::new(async move {
                let _ = in_region(|heard| {
                    join(
                        recv_then_flag(&rx, &t2),
                        shield(async {
                            hear_cancel(heard).await;
                            klaw::time::sleep(ms(2)).await;
                            send_then_stay(&tx, 3).await;
                            d2.set();
                        }),
                    )
                })
                .await;
            })
            .timeout(ms(5)),
        );
        let outcome = rt.block_on(handle);
        assert!(matches!(&outcome, Err(TaskError::TimedOut(_))), "{outcome:?}");
        assert!(done.is_set(), "the shield was cut short");
        assert!(!took.is_set(), "the branch beside the shield received");
        assert_eq!(rx_after.try_recv(), Ok(3));
    });
}

/// A scope cancelled by its own `cancel`, from inside a shield in its body: the branch beside
/// the shield takes nothing, the code after the `join` never runs, and the scope reports the
/// cancellation with its reason.
#[test]
fn a_scopes_own_cancel_held_by_a_shield_in_its_body_freezes_the_branch_beside() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let (done, took, after) = (Flag::default(), Flag::default(), Flag::default());
        let result: Result<(), Error> = klaw::scope!(|s| {
            let shielded = shield(async {
                s.cancel("own");
                klaw::time::sleep(ms(2)).await;
                send_then_stay(&tx, 4).await;
                done.set();
            });
            join(recv_then_flag(&rx, &took), shielded).await;
            after.set();
            Ok(())
        });
        assert!(
            matches!(&result, Err(Error::Task { error: TaskError::Cancelled(reason), .. }) if *reason == user("own")),
            "{result:?}"
        );
        assert!(done.is_set());
        assert!(!took.is_set(), "the branch beside the shield received");
        assert!(!after.is_set());
        assert_eq!(rx.try_recv(), Ok(4));
    });
}

// ---- Blocking code under a held cancellation -----------------------------------------------------

/// Sends with `klaw::runtime::block_on` in a destructor (documented to work inside a task).
struct FlushOnDrop(klaw::channel::Sender<u32>);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        let _ = klaw::runtime::block_on(self.0.send(1));
    }
}

/// A scope body held by a local child's shield is dropped (the scope "drops its body"); a
/// destructor in it that flushes with `klaw::runtime::block_on(tx.send(..))` (to a channel with
/// room) must return as it would anywhere else, not block its worker forever: the shield and
/// the region must still finish, and the flushed message arrive.
#[test]
fn a_destructor_that_blocks_on_a_send_in_a_body_dropped_while_held_returns() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let done = Flag::default();
        let region = Region::new();
        let token = region.token();
        let result = region
            .run(async {
                let _: Result<(), Error> = klaw::scope!(|s| {
                    let done = done.clone();
                    s.spawn_local(shield(async move {
                        klaw::time::sleep(ms(20)).await;
                        done.set();
                    }));
                    let _flush = FlushOnDrop(tx.clone());
                    klaw::time::sleep(ms(2)).await;
                    token.cancel("stop");
                    pending::<()>().await;
                    Ok(())
                });
            })
            .await;
        assert_eq!(result, Err(user("stop")));
        assert!(done.is_set());
        assert_eq!(rx.try_recv(), Ok(1), "the destructor's flush did not arrive");
    });
}

/// Code beside a held shield that awaits only a foreign future runs on (the book says so); if
/// it then calls a blocking helper of klaw's (`send_blocking` on an unbounded channel, which
/// never waits), that must return, not park the worker forever: the shield beside it must
/// still finish.
#[test]
fn a_blocking_send_beside_a_held_shield_returns_and_the_shield_finishes() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::unbounded::<u32>();
        let (released, done, sent) = (Flag::default(), Flag::default(), Flag::default());
        let result = in_region(|token| {
            join(
                shield(async {
                    cancel_and_hold(token, "stop").await;
                    released.set();
                    klaw::time::sleep(ms(10)).await;
                    done.set();
                }),
                async {
                    foreign_until(|| released.is_set()).await;
                    let _ = tx.send_blocking(1);
                    sent.set();
                },
            )
        })
        .await;
        assert_eq!(result, Err(user("stop")));
        assert!(done.is_set(), "the shield did not finish");
        assert!(sent.is_set());
        assert_eq!(rx.try_recv(), Ok(1));
    });
}

/// A `select!` with a `default` arm beside a held shield, reached through a foreign future
/// (which the book says runs on): its `recv` arm must take nothing; the message stays. (Which
/// arm's body runs is reported: with every klaw operation beside the shield `Pending`, the
/// `default` body runs although a message is waiting, so code beside the shield goes on.)
#[test]
fn select_with_default_beside_a_held_shield_takes_nothing() {
    in_task(|| async {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        let (released, took, defaulted) = (Flag::default(), Flag::default(), Flag::default());
        let result = in_region(|token| {
            join(
                shield(async {
                    cancel_and_hold(token, "stop").await;
                    tx.send(5).await.unwrap();
                    released.set();
                    klaw::time::sleep(ms(10)).await;
                }),
                async {
                    foreign_until(|| released.is_set()).await;
                    klaw::select! {
                        recv(rx) -> _msg => took.set(),
                        default => defaulted.set(),
                    }
                },
            )
        })
        .await;
        assert_eq!(result, Err(user("stop")));
        assert!(!took.is_set(), "the recv arm beside the shield took the message");
        assert_eq!(rx.try_recv(), Ok(5));
        assert!(
            !defaulted.is_set(),
            "the default arm ran beside the held shield though a message was waiting"
        );
    });
}

// ---- A scope's failures inside a shield, in a cancelled region ---------------------------------

/// Book, cancellation: "So does a scope that returns failures inside a shield ... the failures
/// go through every cancelled region around the shield, in the body's value" (trio's
/// `test_cancel_scope_no_cancellederror`: a cancel scope catches only its own `Cancelled`). A
/// region is cancelled, by its token and by its deadline, and then a scope in a shield in it
/// returns a child's failure. Checks: the region gives the body's value, which holds the
/// failure. What would break it: the region dropping what its body returned after its own
/// cancellation, failure and all (the scope's claim on the region stopped at the shield).
#[test]
fn a_failure_a_shielded_scope_returns_goes_through_the_cancelled_regions_around_it() {
    in_task(|| async {
        let region = Region::new();
        let token = region.token();
        let by_token = region
            .run(async move {
                token.cancel("stop");
                shield(async {
                    klaw::scope!(|s| {
                        s.spawn(common::failing(701, ms(20)));
                        Ok(())
                    })
                })
                .await
            })
            .await;
        let Ok(Err(error)) = by_token else { panic!("the failure was dropped: {by_token:?}") };
        assert_eq!(common::fetch_ids(&error), [701]);

        // Two regions, the outer one's deadline passing while the shielded scope runs.
        let by_deadline = move_on_after(
            ms(10),
            Region::new().run(shield(async {
                klaw::scope!(|s| {
                    s.spawn(common::failing(703, ms(40)));
                    Ok(())
                })
            })),
        )
        .await;
        let Some(Ok(Err(error))) = by_deadline else {
            panic!("the failure was dropped: {by_deadline:?}")
        };
        assert_eq!(common::fetch_ids(&error), [703]);
    });
}

/// Book, tasks: "If the body, held open by a shield, fails after the timeout, the await gives
/// that failure" (trio's `test_fail_after_fails_even_if_shielded`: a deadline's scope catches
/// only its own `Cancelled`). A task awaited inline, whose timeout passes while a shield in its
/// body runs, and then fails: the await gives the failure, not `TimedOut`. Spawned, its handle
/// keeps `TimedOut` and the scope reports the failure. What would break it: the timeout's region
/// dropping what the body returned after the timeout, failure and all.
#[test]
fn a_task_awaited_inline_that_fails_in_a_shield_after_its_timeout_gives_the_failure() {
    fn late_failure(
        id: u32,
    ) -> klaw::Task<impl Future<Output = Result<(), common::FetchError>>, klaw::task::Fallible>
    {
        klaw::Task::fallible(async move {
            shield(async move {
                klaw::time::sleep(ms(40)).await;
                Err(common::FetchError(id))
            })
            .await
        })
        .timeout(ms(10))
    }
    in_task(|| async {
        let inline = late_failure(702).await;
        assert_eq!(inline, Err(TaskError::Failed(common::FetchError(702))));

        // A region around the await whose deadline also passes while the shield runs: the
        // failure goes through it too.
        let around = move_on_after(ms(20), async { late_failure(705).await }).await;
        assert_eq!(around, Some(Err(TaskError::Failed(common::FetchError(705)))));

        let spawned: Result<(), Error> = klaw::scope!(|s| {
            let handle = s.spawn(late_failure(704));
            assert!(matches!(handle.await, Err(Error::Task { error: TaskError::TimedOut(_), .. })));
            Ok(())
        });
        // The child's timeout fails the scope, and its failure after it is listed too.
        let Err(Error::Scope(scope)) = spawned else { panic!("{spawned:?}") };
        let late = scope.errors().iter().filter(|e| format!("{e:?}").contains("FetchError(704)"));
        assert_eq!(late.count(), 1, "{scope:?}");
    });
}

// A blocking task awaited inline beside a shield that holds its region's cancellation open:
// "an await reached in a region already cancelled never runs the closure" (tasks.md), and a
// closure running hears the cancel at once, as a scope's blocking child does. What would break
// these: the await starting its job, and cancelling it, only by what it looks at when it is
// dropped, which comes once the shield has ended.

#[test]
fn an_inline_blocking_task_first_awaited_beside_a_held_shield_never_runs_its_closure() {
    in_task(|| async {
        let ran = Flag::default();
        let closure_ran = ran.clone();
        let region = Region::new();
        let token = region.token();
        let outcome = region
            .run(async {
                let shielded = shield(async {
                    token.cancel("stop");
                    // Holds the cancellation open: until the closure has run, at most 300 ms (a
                    // closure started runs at once on an idle pool thread).
                    let _ = move_on_after(ms(300), until(|| ran.is_set())).await;
                });
                let beside = async move {
                    // Pending once (a foreign yield): the await below is reached on the
                    // region's next poll, its own cancellation decided and held by the shield.
                    yield_once().await;
                    let _ = BlockingTask::new(move || closure_ran.set()).await;
                };
                join(shielded, beside).await;
            })
            .await;
        assert_eq!(outcome, Err(CancelReason::user("stop")));
        assert!(
            !ran.is_set(),
            "a blocking task first awaited in a region already cancelled (beside the shield that \
             held it open) ran its closure"
        );
    });
}

#[test]
fn a_closure_awaited_inline_beside_a_held_shield_hears_its_regions_cancel_while_it_is_held() {
    in_task(|| async {
        let (started, heard, heard_while_held) =
            (Flag::default(), Flag::default(), Flag::default());
        let (closure_started, closure_heard) = (started.clone(), heard.clone());
        let region = Region::new();
        let token = region.token();
        let outcome = region
            .run(async {
                let beside = async move {
                    let _ = BlockingTask::new(move || {
                        closure_started.set();
                        if block_until_cancelled(secs(3)) {
                            closure_heard.set();
                        }
                    })
                    .await;
                };
                let shielded = shield(async {
                    // Cancels only once the closure runs (a job cancelled while still queued is
                    // withdrawn and never runs).
                    until(|| started.is_set()).await;
                    token.cancel("stop");
                    // The cancellation is decided and held open here: the closure, code of the
                    // cancelled region outside this shield, should hear it now.
                    let _ = move_on_after(secs(2), until(|| heard.is_set())).await;
                    if heard.is_set() {
                        heard_while_held.set();
                    }
                });
                join(beside, shielded).await;
            })
            .await;
        assert_eq!(outcome, Err(CancelReason::user("stop")));
        assert!(
            heard_while_held.is_set(),
            "a blocking closure awaited inline beside a shield never saw is_cancelled() while \
             the shield held its region's cancellation open"
        );
    });
}
