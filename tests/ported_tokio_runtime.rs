//! Tests ported (translated, not copied) from tokio at commit
//! `ea91b33ca57ff0581b38e735cc108f831bccbdaa`: `tokio/tests/rt_common.rs`, `rt_threaded.rs`,
//! `rt_basic.rs`, `rt_handle.rs`, `rt_handle_block_on.rs`, `rt_spawn_blocking.rs` and
//! `task_blocking.rs`, for the runtime behaviours klaw shares with tokio.
//!
//! The mapping:
//!
//! - tokio runs `rt_common` on a current-thread runtime and on multi-thread runtimes of 4 and 1
//!   workers; klaw has one kind of runtime, so those tests run on 1 and on 4 workers
//!   (`FLAVOURS`).
//! - `tokio::spawn` → `klaw::Handle::current()?.spawn` (`spawn` below); `JoinHandle` →
//!   `TaskHandle`; `JoinError::is_cancelled` → `TaskError::Cancelled(reason)`.
//! - `tokio::sync::oneshot` / `mpsc` → `klaw::channel::oneshot` / `bounded` / `unbounded`
//!   (an `UnboundedSender::send` is `try_send`); `tokio::sync::Barrier` → `klaw::sync::Barrier`.
//! - `task::spawn_blocking` → `Runtime::spawn_blocking` / `Handle::spawn_blocking`.
//! - `Runtime::shutdown_timeout(d)` → `Runtime::shutdown(d)`, which returns a report;
//!   `shutdown_background` and dropping → `drop` (`shutdown(Duration::ZERO)`).
//! - `tokio::net` → `async-net` on async-io, klaw's reactor; `tokio::time` → `klaw::time`;
//!   `tokio::time::timeout` → `klaw::cancel::fail_after`; `futures::executor::block_on` →
//!   `futures_lite::future::block_on`.
//! - `time::pause()` / `start_paused` → `Runtime::builder().start_paused(true)`.
//! - `block_in_place` has no klaw counterpart; where a tokio test uses it to block a worker
//!   while other work must go on, the port blocks the worker with klaw's own blocking helpers
//!   (`recv_blocking`, `klaw::runtime::block_on`), which the book allows inside a task.
//!
//! No test asserts on wall-clock time; everything that could hang runs on its own thread under a
//! 30 s deadline (`within`). Tests whose failure could abort the process (a panic inside a
//! thread-local destructor or during unwinding) run in a child process (`common::in_child_process`).
//!
//! Where klaw documents a different rule, the port asserts klaw's: `Runtime::block_on` panics
//! only on a worker thread (tokio's `nested_rt` panics for any nesting), and a runtime may be
//! built, dropped and shut down inside another runtime's `block_on` or task (tokio panics with
//! "Cannot drop a runtime in a context where blocking is not allowed").
//!
//! Skipped, and why:
//!
//! - `rt_common.rs` `coop`, `coop_unconstrained`, `coop_consume_budget`: ported in
//!   `cooperative.rs` inside tasks; tokio's run in `block_on`, where klaw's book says there is no
//!   budget. `yield_defers_until_park`, `coop_yield_defers_until_park`: tokio's promise that a
//!   yielded task waits for the I/O driver; klaw promises only "the back of the queue".
//!   `enter_and_spawn`, `local_set_*`: no `Runtime::enter`, no `LocalSet`.
//! - `rt_threaded.rs`: every `block_in_place` test (no such API; see the mapping above),
//!   `start_stop_callbacks_called` (no thread hooks), `global_queue_interval_set_to_one`,
//!   `test_tuning` (no such knobs), `max_blocking_threads*` and `single_thread`
//!   (`runtime_config.rs`), runtime names and ids (none).
//! - `task_blocking.rs` `block_in_*`, `*_block_in_place*`, `coop_disabled_in_block_in_place*`: no
//!   `block_in_place` (blocking helpers in a task are unbudgeted: `cooperative.rs`).
//! - `rt_handle.rs` `*enter*`, runtime ids: no `enter`, no ids. `rt_panic.rs`: klaw's builder
//!   returns typed errors instead of panicking, so there is no panic location to check.
//! - `coop_budget.rs`: UDP sockets are async-io's, outside klaw's budget (the book lists what
//!   takes part); `has_budget_remaining` has no counterpart. `task_yield_now.rs`: klaw has no
//!   `yield_now` of its own.

mod common;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{DEADLINE, in_child_process, ms, within};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use klaw::channel::{bounded, oneshot, unbounded};
use klaw::{CancelReason, Handle, Runtime, TaskError, TaskHandle};

/// The worker counts tokio's three `rt_common` flavours become.
const FLAVOURS: [usize; 2] = [1, 4];

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().expect("runtime")
}

/// Runs `test` on a runtime of each flavour, under the deadline.
fn for_each_flavour(test: impl Fn(Runtime) + Send + 'static) {
    within(DEADLINE, move || {
        for workers in FLAVOURS {
            test(rt(workers));
        }
    });
}

/// `tokio::spawn`: spawns on the current runtime.
fn spawn<F>(future: F) -> TaskHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Handle::current().expect("inside a runtime").spawn(future)
}

/// A task that never ends and never waits: it wakes itself on every poll.
fn spin_forever() -> TaskHandle<()> {
    spawn(async {
        loop {
            futures_lite::future::yield_now().await;
        }
    })
}

/// Runs `f` on drop.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

// ---- rt_common.rs --------------------------------------------------------------------------

/// tokio: `send_sync_bound`.
#[test]
fn runtime_and_handle_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Runtime>();
    is_send_sync::<Handle>();
}

/// tokio: `block_on_sync`.
#[test]
fn block_on_runs_a_future_that_borrows_the_callers_stack() {
    for_each_flavour(|rt| {
        let mut win = false;
        rt.block_on(async {
            win = true;
        });
        assert!(win);
    });
}

/// tokio: `block_on_async`.
#[test]
fn block_on_waits_for_a_value_sent_from_another_thread() {
    for_each_flavour(|rt| {
        let out = rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            std::thread::spawn(move || {
                std::thread::sleep(ms(50));
                tx.send("ZOMG").unwrap();
            });
            rx.await.unwrap()
        });
        assert_eq!(out, "ZOMG");
    });
}

/// tokio: `spawn_one_bg`, `spawn_one_join`.
#[test]
fn a_spawned_task_sends_to_block_on_and_its_handle_gives_its_value() {
    for_each_flavour(|rt| {
        let out = rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            let handle = spawn(async move {
                tx.send("ZOMG").unwrap();
                "DONE"
            });
            let msg = rx.await.unwrap();
            assert_eq!(handle.await, Ok("DONE"));
            msg
        });
        assert_eq!(out, "ZOMG");
    });
}

/// tokio: `rt_common::spawn_two`.
#[test]
fn two_spawned_tasks_pass_a_message_on() {
    for_each_flavour(|rt| {
        let out = rt.block_on(async {
            let (tx1, rx1) = oneshot::channel();
            let (tx2, rx2) = oneshot::channel();
            drop(spawn(async move { tx1.send("ZOMG").unwrap() }));
            drop(spawn(async move { tx2.send(rx1.await.unwrap()).unwrap() }));
            rx2.await.unwrap()
        });
        assert_eq!(out, "ZOMG");
    });
}

/// `ITER` tasks spawned here each wait for its number from another thread and report it.
async fn many_tasks_woken_from_another_thread(iter: usize) -> Vec<usize> {
    let (done_tx, done_rx) = unbounded::<usize>();
    let txs: Vec<_> = (0..iter)
        .map(|i| {
            let (tx, rx) = oneshot::channel::<usize>();
            let done_tx = done_tx.clone();
            drop(spawn(async move {
                let msg = rx.await.unwrap();
                assert_eq!(i, msg);
                done_tx.try_send(msg).unwrap();
            }));
            tx
        })
        .collect();
    drop(done_tx);
    std::thread::spawn(move || {
        for (i, tx) in txs.into_iter().enumerate() {
            tx.send(i).unwrap();
        }
    });
    let mut out = Vec::new();
    while let Ok(i) = done_rx.recv().await {
        out.push(i);
    }
    out.sort_unstable();
    out
}

/// tokio: `spawn_many_from_block_on`.
#[test]
fn many_tasks_spawned_from_block_on_are_woken_from_another_thread() {
    for_each_flavour(|rt| {
        let out = rt.block_on(many_tasks_woken_from_another_thread(200));
        assert_eq!(out, (0..200).collect::<Vec<_>>());
    });
}

/// tokio: `spawn_many_from_task`.
#[test]
fn many_tasks_spawned_from_a_task_are_woken_from_another_thread() {
    for_each_flavour(|rt| {
        let out = rt.block_on(rt.spawn(many_tasks_woken_from_another_thread(500))).unwrap();
        assert_eq!(out, (0..500).collect::<Vec<_>>());
    });
}

/// tokio: `spawn_one_from_block_on_called_on_handle` (klaw's `Handle` has no `block_on`: the
/// task is spawned in one `block_on` and awaited in another).
#[test]
fn a_task_spawned_in_one_block_on_is_awaited_in_another() {
    for_each_flavour(|rt| {
        let (tx, rx) = oneshot::channel();
        #[allow(clippy::async_yields_async, reason = "the handle is what block_on gives back")]
        let handle = rt.block_on(async {
            spawn(async move {
                tx.send("ZOMG").unwrap();
                "DONE"
            })
        });
        let out = rt.block_on(async {
            let msg = rx.await.unwrap();
            assert_eq!(handle.await, Ok("DONE"));
            msg
        });
        assert_eq!(out, "ZOMG");
    });
}

/// tokio: `spawn_await_chain`.
#[test]
fn a_task_awaits_a_task_it_spawned() {
    for_each_flavour(|rt| {
        let out = rt.block_on(async { spawn(async { spawn(async { "hello" }).await }).await });
        assert_eq!(out, Ok(Ok("hello")));
    });
}

/// tokio: `outstanding_tasks_dropped`.
#[test]
fn dropping_the_runtime_drops_its_waiting_tasks() {
    for_each_flavour(|rt| {
        let cnt = Arc::new(());
        rt.block_on(async {
            let cnt = cnt.clone();
            drop(spawn(std::future::poll_fn(move |_| {
                assert_eq!(2, Arc::strong_count(&cnt));
                Poll::<()>::Pending
            })));
        });
        assert_eq!(2, Arc::strong_count(&cnt));
        drop(rt);
        assert_eq!(1, Arc::strong_count(&cnt));
    });
}

/// tokio: `nested_rt`. klaw's `Runtime::block_on` panics only on a worker thread (its docs):
/// nested in another runtime's `block_on` it runs, and the outer runtime is current again after.
#[test]
fn block_on_nested_in_another_runtimes_block_on_runs_and_gives_the_outer_runtime_back() {
    within(DEADLINE, || {
        let outer = rt(1);
        let inner = rt(2);
        let (seen_inside, seen_after) = outer.block_on(async {
            let inside = inner.block_on(async { Handle::current().unwrap().config().workers });
            (inside, Handle::current().unwrap().config().workers)
        });
        assert_eq!((seen_inside, seen_after), (2, 1));
        assert_eq!(outer.block_on(async { spawn(async { 7 }).await }), Ok(7));
    });
}

/// tokio: `nested_rt`, `rt_handle_block_on.rs` `nesting`: what klaw forbids is `block_on` on a
/// worker thread, of its own runtime or another's; the panic stays in the task, and the worker
/// goes on.
#[test]
fn block_on_inside_a_task_panics_and_the_panic_stays_in_the_task() {
    within(DEADLINE, || {
        let outer = Arc::new(rt(1));
        let inner = Arc::new(rt(1));
        for target in [outer.clone(), inner.clone()] {
            let result = outer.block_on(outer.spawn(async move { target.block_on(async { 1 }) }));
            match result {
                Err(TaskError::Panicked(message)) => {
                    assert!(message.contains("worker thread"), "{message}");
                }
                other => panic!("expected a panic in the task, got {other:?}"),
            }
        }
        let still = outer.block_on(outer.spawn(async { "worker still there" }));
        assert_eq!(still, Ok("worker still there"));
        assert_eq!(inner.block_on(async { 2 }), 2);
    });
}

/// tokio: `create_rt_in_block_on`, and the same from a task.
#[test]
fn a_runtime_built_in_block_on_or_in_a_task_can_be_used_afterwards() {
    for_each_flavour(|rt1| {
        let rt2 = rt1.block_on(async { rt(1) });
        assert_eq!(rt2.block_on(async { "ZOMG" }), "ZOMG");
        let rt3 = rt1.block_on(rt1.spawn(async { rt(2) })).unwrap();
        assert_eq!(rt3.block_on(rt3.spawn(async { "from a task" })), Ok("from a task"));
    });
}

/// tokio: `complete_block_on_under_load`.
#[test]
fn block_on_completes_while_a_task_spins() {
    for_each_flavour(|rt| {
        rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            drop(spin_forever());
            std::thread::spawn(move || {
                std::thread::sleep(ms(50));
                tx.send(()).unwrap();
            });
            rx.await.unwrap();
        });
    });
}

/// tokio: `complete_task_under_load`.
#[test]
fn a_task_woken_from_another_thread_completes_while_a_task_spins() {
    for_each_flavour(|rt| {
        rt.block_on(async {
            let (tx1, rx1) = oneshot::channel();
            let (tx2, rx2) = oneshot::channel();
            drop(spin_forever());
            std::thread::spawn(move || {
                std::thread::sleep(ms(50));
                tx1.send(()).unwrap();
            });
            drop(spawn(async move {
                rx1.await.unwrap();
                tx2.send(()).unwrap();
            }));
            rx2.await.unwrap();
        });
    });
}

/// tokio: `spawn_from_other_thread_idle`.
#[test]
fn a_task_spawned_from_another_thread_runs_on_an_idle_runtime() {
    for_each_flavour(|rt| {
        let handle = rt.handle();
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(ms(50));
            drop(handle.spawn(async move { tx.send(()).unwrap() }));
        });
        rt.block_on(async move { rx.await.unwrap() });
    });
}

/// tokio: `spawn_from_other_thread_under_load`.
#[test]
fn a_task_spawned_from_another_thread_runs_while_a_task_spins() {
    for_each_flavour(|rt| {
        let handle = rt.handle();
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            drop(handle.spawn(async move { tx.send(()).unwrap() }));
        });
        rt.block_on(async move {
            drop(spin_forever());
            rx.await.unwrap();
        });
    });
}

/// tokio: `sleep_at_root`, `sleep_in_spawn` (without their wall-clock assertions).
#[test]
fn a_sleep_completes_in_block_on_and_in_a_task() {
    for_each_flavour(|rt| {
        rt.block_on(klaw::time::sleep(ms(50)));
        rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            drop(spawn(async move {
                klaw::time::sleep(ms(50)).await;
                tx.send(()).unwrap();
            }));
            rx.await.unwrap();
        });
    });
}

/// tokio: `block_on_socket`.
#[test]
fn block_on_accepts_a_connection_in_a_task() {
    for_each_flavour(|rt| {
        rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            drop(spawn(async move {
                let _ = listener.accept().await;
                tx.send(()).unwrap();
            }));
            async_net::TcpStream::connect(addr).await.unwrap();
            rx.await.unwrap();
        });
    });
}

/// tokio: `spawn_from_blocking` and `spawn_blocking_from_blocking`. klaw differs, as
/// `Handle::current` and the book's "Coming from tokio" say: a blocking closure runs outside the
/// runtime, so it finds no current one (and spawns through a handle it is given, below).
#[test]
fn a_blocking_closure_finds_no_current_runtime() {
    for_each_flavour(|rt| {
        let found = rt.block_on(async {
            Handle::current().unwrap().spawn_blocking(|| Handle::current().is_ok()).await
        });
        assert_eq!(found, Ok(false));
    });
}

/// tokio's two, with the handle passed in: how klaw code spawns from a blocking closure.
#[test]
fn a_blocking_closure_spawns_through_a_handle_it_was_given() {
    for_each_flavour(|rt| {
        let handle = rt.handle();
        let out = rt.block_on(async move {
            let (task, blocking) = rt_handle_spawns(handle.clone()).await;
            (task.await, blocking.await)
        });
        assert_eq!(out, (Ok("hello"), Ok("hello")));
    });
}

async fn rt_handle_spawns(handle: Handle) -> (TaskHandle<&'static str>, TaskHandle<&'static str>) {
    let inner = handle.clone();
    handle
        .spawn_blocking(move || (inner.spawn(async { "hello" }), inner.spawn_blocking(|| "hello")))
        .await
        .unwrap()
}

/// tokio: `sleep_from_blocking`.
#[test]
fn a_blocking_closure_sleeps_under_a_foreign_block_on() {
    for_each_flavour(|rt| {
        let slept = rt.block_on(rt.spawn_blocking(|| {
            futures_lite::future::block_on(klaw::time::sleep(ms(1)));
            "slept"
        }));
        assert_eq!(slept, Ok("slept"));
    });
}

/// tokio: `socket_from_blocking`.
#[test]
fn a_blocking_closure_connects_under_a_foreign_block_on() {
    for_each_flavour(|rt| {
        rt.block_on(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let peer = Handle::current().unwrap().spawn_blocking(move || {
                futures_lite::future::block_on(async {
                    async_net::TcpStream::connect(addr).await.unwrap();
                });
            });
            let _ = listener.accept().await.unwrap();
            peer.await.unwrap();
        });
    });
}

/// tokio: `always_active_parker`.
#[test]
fn two_threads_in_block_on_at_once_wait_for_each_other() {
    for_each_flavour(|rt| {
        let rt = Arc::new(rt);
        let rt2 = rt.clone();
        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        let jh1 = std::thread::spawn(move || {
            rt.block_on(async move {
                rx2.await.unwrap();
                klaw::time::sleep(ms(5)).await;
                tx1.send(()).unwrap();
            });
        });
        let jh2 = std::thread::spawn(move || {
            rt2.block_on(async move {
                tx2.send(()).unwrap();
                klaw::time::sleep(ms(5)).await;
                rx1.await.unwrap();
                klaw::time::sleep(ms(5)).await;
            });
        });
        jh1.join().unwrap();
        jh2.join().unwrap();
    });
}

/// tokio: `io_driver_called_when_under_load`.
#[test]
fn io_completes_while_a_hundred_tasks_spin() {
    for_each_flavour(|rt| {
        for _ in 0..100 {
            drop(rt.spawn(async {
                loop {
                    std::future::poll_fn::<(), _>(|cx| {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    })
                    .await;
                }
            }));
        }
        rt.block_on(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let srv = spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                stream.write_all(b"hello world").await.unwrap();
            });
            let cli = spawn(async move {
                let mut stream = async_net::TcpStream::connect(addr).await.unwrap();
                let mut dst = vec![0; 11];
                stream.read_exact(&mut dst).await.unwrap();
                assert_eq!(dst, b"hello world");
            });
            srv.await.unwrap();
            cli.await.unwrap();
        });
    });
}

/// A server task writes "hello"; the client reads it to the end, then sends on `tx`.
async fn client_server(tx: mpsc::Sender<()>) {
    let server = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    drop(spawn(async move {
        let (mut socket, _) = server.accept().await.unwrap();
        socket.write_all(b"hello").await.unwrap();
    }));
    let mut client = async_net::TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    client.read_to_end(&mut buf).await.unwrap();
    assert_eq!(buf, b"hello");
    tx.send(()).unwrap();
}

/// tokio: `client_server_block_on`.
#[test]
fn a_client_in_block_on_reads_what_a_server_task_writes() {
    for_each_flavour(|rt| {
        let (tx, rx) = mpsc::channel();
        rt.block_on(client_server(tx));
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
    });
}

/// tokio: `panic_in_task` (the future is dropped and the runtime goes on; that tokio drops it
/// while still unwinding is an implementation detail, not asserted).
#[test]
fn a_task_that_panics_in_poll_is_dropped_and_the_workers_go_on() {
    struct Boom(Option<oneshot::Sender<()>>);

    impl Future for Boom {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            panic!("boom");
        }
    }

    impl Drop for Boom {
        fn drop(&mut self) {
            self.0.take().unwrap().send(()).unwrap();
        }
    }

    for_each_flavour(|rt| {
        let (tx, rx) = oneshot::channel();
        let boom = rt.spawn(Boom(Some(tx)));
        rt.block_on(rx).unwrap();
        assert_eq!(rt.block_on(boom), Err(TaskError::Panicked("boom".to_owned())));
        // More panics than workers: every worker is still there afterwards.
        let panics: Vec<_> = (0..16).map(|_| rt.spawn(async { panic!("again") })).collect();
        for handle in panics {
            assert!(matches!(rt.block_on(handle), Err(TaskError::Panicked(_))));
        }
        let started = Arc::new(klaw::sync::Barrier::new(rt.worker_count()));
        let all: Vec<_> = (0..rt.worker_count())
            .map(|_| {
                let started = started.clone();
                rt.spawn(async move {
                    // Holds its worker until every worker has a task of its own.
                    let _ = klaw::runtime::block_on(started.wait());
                })
            })
            .collect();
        for handle in all {
            rt.block_on(handle).unwrap();
        }
    });
}

/// tokio: `panic_in_block_on`: the panic reaches the caller, and the runtime can be used again.
#[test]
fn a_panic_in_block_on_reaches_the_caller_and_the_runtime_goes_on() {
    for_each_flavour(|rt| {
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { panic!("boom") });
        }));
        let payload = panicked.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        assert_eq!(rt.block_on(rt.spawn(async { 1 })), Ok(1));
        assert!(Handle::current().is_err(), "block_on left its runtime current");
    });
}

/// tokio: `eagerly_drops_futures_on_shutdown`.
#[test]
fn dropping_the_runtime_drops_a_waiting_future_before_it_returns() {
    struct Never {
        drop_tx: mpsc::Sender<()>,
    }

    impl Future for Never {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl Drop for Never {
        fn drop(&mut self) {
            self.drop_tx.send(()).unwrap();
        }
    }

    for_each_flavour(|rt| {
        let (drop_tx, drop_rx) = mpsc::channel();
        let (run_tx, run_rx) = oneshot::channel();
        rt.block_on(async move {
            drop(spawn(async move {
                run_tx.send(()).unwrap();
                Never { drop_tx }.await;
            }));
            run_rx.await.unwrap();
        });
        drop(rt);
        drop_rx.try_recv().expect("the future was not dropped by the time the runtime was");
    });
}

/// tokio: `wake_while_rt_is_dropping`.
#[test]
fn tasks_whose_destructors_wake_each_other_while_the_runtime_drops() {
    for_each_flavour(|rt| {
        let (tx1, rx1) = oneshot::channel::<()>();
        let (tx2, rx2) = oneshot::channel::<()>();
        let barrier = Arc::new(klaw::sync::Barrier::new(3));
        let (barrier1, barrier2) = (barrier.clone(), barrier.clone());
        drop(rt.spawn(async move {
            let mut tx2 = Some(tx2);
            let _d = OnDrop(move || {
                let _ = tx2.take().unwrap().send(());
            });
            let _ = futures_lite::future::zip(rx1, barrier1.wait()).await;
        }));
        drop(rt.spawn(async move {
            let mut tx1 = Some(tx1);
            let _d = OnDrop(move || {
                let _ = tx1.take().unwrap().send(());
            });
            let _ = futures_lite::future::zip(rx2, barrier2.wait()).await;
        }));
        rt.block_on(barrier.wait());
        drop(rt);
    });
}

/// tokio: `io_notify_while_shutting_down`.
#[test]
fn a_runtime_shuts_down_while_udp_sockets_are_notified() {
    within(DEADLINE, || {
        for round in 1..10 {
            let runtime = rt(FLAVOURS[round % 2]);
            runtime.block_on(async {
                let socket = async_net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let addr = socket.local_addr().unwrap();
                let recv_half = socket.clone();
                drop(spawn(async move {
                    let mut buf = [0];
                    loop {
                        recv_half.recv_from(&mut buf).await.unwrap();
                        std::thread::sleep(ms(2));
                    }
                }));
                drop(spawn(async move {
                    let buf = [0];
                    loop {
                        socket.send_to(&buf, addr).await.unwrap();
                        klaw::time::sleep(ms(1)).await;
                    }
                }));
                klaw::time::sleep(ms(5)).await;
            });
        }
    });
}

/// tokio: `shutdown_timeout`: a blocking closure that never returns (and ignores
/// `is_cancelled`) does not hold the shutdown past its grace period; it is reported abandoned.
#[test]
fn shutdown_returns_while_a_blocking_closure_ignores_its_cancel() {
    for_each_flavour(|runtime| {
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        let stuck = runtime.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            let _ = wait.recv();
        });
        started.recv_timeout(DEADLINE).unwrap();
        let report = runtime.shutdown(ms(100));
        assert!(report.grace_expired, "{report}");
        assert_eq!(report.abandoned, 1, "{report}");
        release.send(()).unwrap();
        assert_eq!(
            klaw::runtime::block_on(stuck),
            Err(TaskError::Cancelled(CancelReason::Shutdown))
        );
    });
}

/// tokio: `shutdown_timeout`, for a task instead of a blocking closure: CPU-bound code in a task
/// that checks `klaw::cancel::is_cancelled()` between steps (what its docs tell "blocking and
/// CPU-bound code" to do) sees the shutdown's cancel and stops, so nothing is abandoned and its
/// handle says it was shut down; whether or not it waited once before it started computing.
#[test]
fn a_cpu_bound_task_that_never_waited_sees_the_shutdown_cancel() {
    /// Stops the loop when the test ends, even if it failed.
    struct Stop(Arc<AtomicBool>);

    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    within(DEADLINE, || {
        for waits_first in [true, false] {
            let rt = rt(1);
            let stop = Stop(Arc::default());
            let escape = stop.0.clone();
            let (started_tx, started) = mpsc::channel();
            let busy = rt.spawn(async move {
                if waits_first {
                    futures_lite::future::yield_now().await;
                }
                started_tx.send(()).unwrap();
                let mut steps = 0u64;
                while !klaw::cancel::is_cancelled() && !escape.load(Ordering::SeqCst) {
                    steps += 1;
                    std::thread::sleep(ms(1));
                }
                steps
            });
            started.recv().unwrap();
            let report = rt.shutdown(ms(50));
            assert_eq!(
                (report.cancelled, report.abandoned),
                (1, 0),
                "waits first: {waits_first}: {report}"
            );
            assert_eq!(
                klaw::runtime::block_on(busy),
                Err(TaskError::Cancelled(CancelReason::Shutdown)),
                "waits first: {waits_first}"
            );
            drop(stop);
        }
    });
}

/// tokio: `shutdown_timeout_0`: the same with no grace at all, through `drop`.
#[test]
fn dropping_the_runtime_returns_while_a_blocking_closure_sleeps() {
    for_each_flavour(|runtime| {
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        drop(runtime.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            let _ = wait.recv();
        }));
        started.recv_timeout(DEADLINE).unwrap();
        drop(runtime);
        release.send(()).unwrap();
    });
}

/// tokio: `shutdown_wakeup_time`: with nothing left to run, a shutdown with a long grace period
/// returns at once (here: before the deadline) and reports every task ended.
#[test]
fn a_shutdown_with_nothing_left_returns_without_waiting_out_its_grace() {
    for_each_flavour(|runtime| {
        runtime.block_on(klaw::time::sleep(ms(100)));
        let report = runtime.shutdown(Duration::from_secs(10_000));
        assert!(!report.grace_expired, "{report}");
    });
}

/// tokio: `runtime_in_thread_local`: a runtime kept in a thread-local is dropped while the
/// thread's thread-locals are destroyed, after another runtime was used on that thread.
#[test]
fn a_runtime_in_a_thread_local_is_dropped_when_its_thread_ends() {
    in_child_process(
        "child_a_runtime_in_a_thread_local_is_dropped_when_its_thread_ends",
        &[],
        DEADLINE,
    );
}

#[test]
#[ignore = "run in a child process by a_runtime_in_a_thread_local_is_dropped_when_its_thread_ends"]
fn child_a_runtime_in_a_thread_local_is_dropped_when_its_thread_ends() {
    use std::cell::RefCell;

    thread_local! {
        static R: RefCell<Option<Runtime>> = const { RefCell::new(None) };
    }

    for workers in FLAVOURS {
        std::thread::spawn(move || {
            R.with(|cell| *cell.borrow_mut() = Some(rt(workers)));
            let _rt = rt(workers);
        })
        .join()
        .unwrap();
    }
}

/// A runtime in a thread-local whose destructor runs after some of klaw's own thread-locals
/// are gone (thread-locals are destroyed in the reverse order of their first use, here klaw's
/// frames and clock after the runtime's, its context before) still shuts down, its tasks
/// dropped, instead of aborting the process on a destroyed thread-local.
#[test]
fn a_runtime_in_a_thread_local_outlived_by_only_some_of_klaws_own_shuts_down() {
    in_child_process(
        "child_a_runtime_in_a_thread_local_outlived_by_only_some_of_klaws_own_shuts_down",
        &[],
        DEADLINE,
    );
}

#[test]
#[ignore = "run in a child process by \
            a_runtime_in_a_thread_local_outlived_by_only_some_of_klaws_own_shuts_down"]
fn child_a_runtime_in_a_thread_local_outlived_by_only_some_of_klaws_own_shuts_down() {
    use std::cell::RefCell;

    thread_local! {
        static R: RefCell<Option<Runtime>> = const { RefCell::new(None) };
    }

    for workers in FLAVOURS {
        let (dropped_tx, dropped) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            // klaw's runtime context is first used before the runtime is stored: it outlives it.
            assert!(Handle::current().is_err());
            let runtime = rt(workers);
            let (started_tx, started) = mpsc::channel();
            drop(runtime.spawn(async move {
                let _dropped = dropped_tx;
                started_tx.send(()).unwrap();
                klaw::cancel::move_on_after(Duration::from_secs(3600), async {
                    klaw::scope!(|s| {
                        s.spawn_local(std::future::pending::<()>());
                        Ok(())
                    })
                })
                .await
            }));
            started.recv_timeout(DEADLINE).unwrap();
            R.with(|cell| *cell.borrow_mut() = Some(runtime));
            // klaw's frames and clock are first used after it: they are destroyed before it.
            klaw::runtime::block_on(async {
                let _ = klaw::cancel::move_on_after(ms(1), async { klaw::cancel::is_cancelled() })
                    .await;
            });
        })
        .join()
        .unwrap();
        // The task was dropped by the shutdown (its sender with it).
        assert_eq!(dropped.recv_timeout(DEADLINE), Err(mpsc::RecvTimeoutError::Disconnected));
    }
}

/// tokio: `ping_pong_saturation`: pairs of tasks that keep handing each other messages (which
/// the executor runs next on the worker, like tokio's LIFO slot) do not keep a task that
/// yields from running.
#[test]
fn ping_pong_pairs_do_not_starve_a_task_that_yields() {
    const NUM: usize = 100;
    for_each_flavour(|rt| {
        let running = Arc::new(AtomicBool::new(true));
        rt.block_on(async {
            let (spawned_tx, spawned_rx) = unbounded::<()>();
            let mut tasks = Vec::new();
            for _ in 0..NUM {
                let (tx1, rx1) = unbounded::<()>();
                let (tx2, rx2) = unbounded::<()>();
                let spawned_tx = spawned_tx.clone();
                let running = running.clone();
                tasks.push(spawn(async move {
                    spawned_tx.try_send(()).unwrap();
                    while running.load(Ordering::Relaxed) {
                        tx1.try_send(()).unwrap();
                        rx2.recv().await.unwrap();
                    }
                    drop(tx1);
                    assert!(rx2.recv().await.is_err());
                }));
                tasks.push(spawn(async move {
                    while rx1.recv().await.is_ok() {
                        tx2.try_send(()).unwrap();
                    }
                }));
            }
            for _ in 0..NUM {
                spawned_rx.recv().await.unwrap();
            }
            let handle = spawn(async {
                for _ in 0..5 {
                    futures_lite::future::yield_now().await;
                }
            });
            handle.await.unwrap();
            running.store(false, Ordering::Relaxed);
            for task in tasks {
                task.await.unwrap();
            }
        });
    });
}

/// tokio: `shutdown_concurrent_spawn`: the runtime is dropped while another thread wakes its
/// ten thousand waiting tasks.
#[test]
fn dropping_the_runtime_while_another_thread_wakes_its_tasks() {
    const NUM_TASKS: usize = 10_000;
    within(DEADLINE, || {
        for round in 0..5 {
            let rt = rt(FLAVOURS[round % 2]);
            let (ready_tx, ready) = mpsc::channel();
            let mut txs = Vec::with_capacity(NUM_TASKS);
            let mut handles = Vec::with_capacity(NUM_TASKS);
            for _ in 0..NUM_TASKS {
                let (tx, rx) = oneshot::channel::<()>();
                txs.push(tx);
                handles.push(rt.spawn(async move { rx.await.unwrap() }));
            }
            rt.block_on(futures_lite::future::yield_now());
            let th = std::thread::spawn(move || {
                ready_tx.send(()).unwrap();
                for tx in txs {
                    let _ = tx.send(());
                }
            });
            ready.recv().unwrap();
            drop(rt);
            th.join().unwrap();
            assert!(handles.iter().all(TaskHandle::is_finished), "a task outlived its runtime");
        }
    });
}

/// tokio: `wake_by_ref_from_thread_local`, `wake_by_val_from_thread_local`: a waker kept in a
/// worker thread's thread-local wakes its (finished) task when that thread ends, after the
/// runtime is gone.
fn wake_from_thread_local(by_ref: bool) {
    use std::cell::RefCell;

    struct TlData {
        by_ref: bool,
        waker: Option<Waker>,
        done: mpsc::Sender<bool>,
    }

    impl Drop for TlData {
        fn drop(&mut self) {
            if self.by_ref {
                self.waker.take().unwrap().wake_by_ref();
            } else {
                self.waker.take().unwrap().wake();
            }
            let _ = self.done.send(true);
        }
    }

    thread_local! {
        static TL_DATA: RefCell<Option<TlData>> = const { RefCell::new(None) };
    }

    for_each_flavour(move |rt| {
        let (send, recv) = mpsc::channel();
        std::thread::spawn(move || {
            rt.block_on(rt.spawn(std::future::poll_fn(move |cx| {
                let data = TlData { by_ref, waker: Some(cx.waker().clone()), done: send.clone() };
                TL_DATA.with(|tl| tl.replace(Some(data)));
                Poll::Ready(())
            })))
            .unwrap();
        })
        .join()
        .unwrap();
        assert!(recv.recv_timeout(DEADLINE).unwrap());
    });
}

#[test]
fn a_waker_woken_by_ref_from_a_worker_threads_thread_local_after_shutdown() {
    wake_from_thread_local(true);
}

#[test]
fn a_waker_woken_by_value_from_a_worker_threads_thread_local_after_shutdown() {
    wake_from_thread_local(false);
}

/// A waker of a task that was still waiting outlives its runtime: waking it (by reference, by
/// value) and dropping it later does nothing, and the task's handle says it was shut down.
#[test]
fn a_waiting_tasks_waker_outlives_its_runtime() {
    for_each_flavour(|rt| {
        let kept: Arc<Mutex<Option<Waker>>> = Arc::default();
        let slot = kept.clone();
        let (polled_tx, polled) = mpsc::channel();
        let waiting = rt.spawn(std::future::poll_fn(move |cx| {
            *slot.lock().unwrap() = Some(cx.waker().clone());
            let _ = polled_tx.send(());
            Poll::<()>::Pending
        }));
        polled.recv_timeout(DEADLINE).unwrap();
        drop(rt);
        let waker = kept.lock().unwrap().take().expect("the task left its waker");
        waker.wake_by_ref();
        let clone = waker.clone();
        waker.wake();
        drop(clone);
        assert_eq!(
            klaw::runtime::block_on(waiting),
            Err(TaskError::Cancelled(CancelReason::Shutdown))
        );
    });
}

// ---- rt_threaded.rs ------------------------------------------------------------------------

/// tokio: `many_oneshot_futures`.
#[test]
fn a_thousand_tasks_spawned_from_outside_all_run_before_the_runtime_drops() {
    const NUM: usize = 1_000;
    within(DEADLINE, || {
        for round in 0..5 {
            let (tx, rx) = mpsc::channel();
            let rt = rt(FLAVOURS[round % 2]);
            let cnt = Arc::new(AtomicUsize::new(0));
            for _ in 0..NUM {
                let (cnt, tx) = (cnt.clone(), tx.clone());
                drop(rt.spawn(async move {
                    if cnt.fetch_add(1, Ordering::Relaxed) + 1 == NUM {
                        tx.send(()).unwrap();
                    }
                }));
            }
            rx.recv().unwrap();
            drop(rt);
        }
    });
}

/// tokio: `rt_threaded::spawn_two`.
#[test]
fn a_task_spawned_by_a_task_spawned_in_block_on_sends_back() {
    for_each_flavour(|rt| {
        let out = rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            drop(spawn(async move {
                drop(spawn(async move { tx.send("ZOMG").unwrap() }));
            }));
            rx.await.unwrap()
        });
        assert_eq!(out, "ZOMG");
    });
}

/// tokio: `many_multishot_futures` (5 rounds instead of 50).
#[test]
fn chains_of_forwarding_tasks_cycle_messages_to_the_end() {
    const CHAIN: usize = 200;
    const CYCLES: usize = 5;
    const TRACKS: usize = 50;
    within(DEADLINE, || {
        for round in 0..5 {
            let rt = rt(FLAVOURS[round % 2]);
            let mut start_txs = Vec::with_capacity(TRACKS);
            let mut final_rxs = Vec::with_capacity(TRACKS);
            for _ in 0..TRACKS {
                let (start_tx, mut chain_rx) = bounded::<&str>(10);
                for _ in 0..CHAIN {
                    let (next_tx, next_rx) = bounded(10);
                    drop(rt.spawn(async move {
                        while let Ok(v) = chain_rx.recv().await {
                            next_tx.send(v).await.unwrap();
                        }
                    }));
                    chain_rx = next_rx;
                }
                let (final_tx, final_rx) = bounded(10);
                let cycle_tx = start_tx.clone();
                drop(rt.spawn(async move {
                    for rem in (0..CYCLES).rev() {
                        let msg = chain_rx.recv().await.unwrap();
                        if rem == 0 {
                            final_tx.send(msg).await.unwrap();
                        } else {
                            cycle_tx.send(msg).await.unwrap();
                        }
                    }
                }));
                start_txs.push(start_tx);
                final_rxs.push(final_rx);
            }
            rt.block_on(async move {
                for start_tx in start_txs {
                    start_tx.send("ping").await.unwrap();
                }
                for final_rx in final_rxs {
                    final_rx.recv().await.unwrap();
                }
            });
        }
    });
}

/// tokio: `lifo_slot_budget`: a task that spawns itself for ever does not keep `block_on` from
/// completing, nor the runtime from shutting down.
#[test]
fn a_task_that_respawns_itself_for_ever_does_not_stop_the_runtime() {
    fn spawn_another() {
        drop(spawn(my_fn()));
    }

    async fn my_fn() {
        spawn_another();
    }

    within(DEADLINE, || {
        let rt = rt(1);
        let (send, recv) = oneshot::channel();
        drop(rt.spawn(async move {
            drop(spawn(my_fn()));
            let _ = send.send(());
        }));
        let _ = rt.block_on(recv);
        drop(rt);
    });
}

/// tokio: `spawn_shutdown`.
#[test]
fn clients_spawned_from_block_on_and_from_outside_finish_then_the_runtime_drops() {
    within(DEADLINE, || {
        let rt = rt(4);
        let (tx, rx) = mpsc::channel();
        rt.block_on(async {
            drop(spawn(client_server(tx.clone())));
        });
        drop(rt.spawn(client_server(tx)));
        rx.recv_timeout(DEADLINE).unwrap();
        rx.recv_timeout(DEADLINE).unwrap();
        drop(rt);
        assert!(rx.try_recv().is_err());
    });
}

/// tokio: `drop_threadpool_drops_futures` (without thread start/stop hooks, which klaw lacks).
#[test]
fn dropping_the_runtime_drops_a_never_ending_future_every_time() {
    struct Never(Arc<AtomicUsize>);

    impl Future for Never {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl Drop for Never {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    within(DEADLINE, || {
        for round in 0..200 {
            let num_drop = Arc::new(AtomicUsize::new(0));
            let rt = rt(FLAVOURS[round % 2]);
            drop(rt.spawn(Never(num_drop.clone())));
            drop(rt);
            assert_eq!(num_drop.load(Ordering::Relaxed), 1, "round {round}");
        }
    });
}

/// tokio: `rt_threaded::blocking` (there four `block_in_place` tasks hand their workers off):
/// tasks that block their workers and never yield leave the last worker free, and it runs
/// every other task, whether the blockers were spawned from outside or from a task.
#[test]
fn tasks_that_hold_their_workers_leave_the_last_one_to_run_every_other_task() {
    const NUM: usize = 1_000;
    within(DEADLINE, || {
        for round in 0..10 {
            let from_a_task = round % 2 == 1;
            let rt = rt(4);
            let (tx, rx) = mpsc::channel();
            let cnt = Arc::new(AtomicUsize::new(0));
            // Three blockers and this thread.
            let block = Arc::new(std::sync::Barrier::new(4));
            let spawn_blockers = {
                let block = block.clone();
                move || {
                    for _ in 0..3 {
                        let block = block.clone();
                        drop(spawn(async move {
                            block.wait();
                            block.wait();
                        }));
                    }
                }
            };
            if from_a_task {
                rt.block_on(rt.spawn(async move { spawn_blockers() })).unwrap();
            } else {
                rt.block_on(async move { spawn_blockers() });
            }
            block.wait();
            for _ in 0..NUM {
                let (cnt, tx) = (cnt.clone(), tx.clone());
                drop(rt.spawn(async move {
                    if cnt.fetch_add(1, Ordering::Relaxed) + 1 == NUM {
                        tx.send(()).unwrap();
                    }
                }));
            }
            rx.recv().unwrap();
            block.wait();
        }
    });
}

/// tokio: `multi_threadpool`.
#[test]
fn a_task_of_one_runtime_wakes_a_task_of_another() {
    within(DEADLINE, || {
        let rt1 = rt(2);
        let rt2 = rt(2);
        let (tx, rx) = oneshot::channel();
        let (done_tx, done_rx) = mpsc::channel();
        drop(rt2.spawn(async move {
            rx.await.unwrap();
            done_tx.send(()).unwrap();
        }));
        drop(rt1.spawn(async move { tx.send(()).unwrap() }));
        done_rx.recv().unwrap();
    });
}

/// tokio: `wake_during_shutdown`: a future's destructor wakes a sibling during shutdown.
#[test]
fn a_destructor_wakes_a_sibling_while_the_runtime_shuts_down() {
    struct Shared {
        waker: Option<Waker>,
    }

    struct MyFuture {
        shared: Arc<Mutex<Shared>>,
        put_waker: bool,
    }

    impl MyFuture {
        fn new() -> (Self, Self) {
            let shared = Arc::new(Mutex::new(Shared { waker: None }));
            (
                MyFuture { shared: shared.clone(), put_waker: true },
                MyFuture { shared, put_waker: false },
            )
        }
    }

    impl Future for MyFuture {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let me = Pin::into_inner(self);
            let mut lock = me.shared.lock().unwrap();
            if me.put_waker {
                lock.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        }
    }

    impl Drop for MyFuture {
        fn drop(&mut self) {
            let mut lock = self.shared.lock().unwrap();
            if !self.put_waker {
                // The other may have been dropped first (klaw's order is not tokio's), or never
                // polled: wake only a waker that is there.
                if let Some(waker) = lock.waker.take() {
                    waker.wake();
                }
            }
            drop(lock);
        }
    }

    within(DEADLINE, || {
        for _ in 0..50 {
            let rt = rt(1);
            let (f1, f2) = MyFuture::new();
            drop(rt.spawn(f1));
            drop(rt.spawn(f2));
            rt.block_on(klaw::time::sleep(ms(20)));
        }
    });
}

/// tokio (unstable): `test_disable_lifo_slot`: a task spawns another and blocks its worker until
/// that one has run; the other worker runs it.
#[test]
fn a_task_blocking_its_worker_on_a_task_it_spawned_is_answered_by_the_other_worker() {
    within(DEADLINE, || {
        let rt = rt(2);
        for _ in 0..50 {
            let out = rt.block_on(rt.spawn(async {
                klaw::runtime::block_on(spawn(async { "ran elsewhere" })).unwrap()
            }));
            assert_eq!(out, Ok("ran elsewhere"));
        }
    });
}

/// tokio: `test_disable_lifo_slot` and `wake_deferred_tasks_before_block_in_place` (#4730,
/// #7877), as klaw meets them: a task hands a message to a task waiting on a channel (which
/// klaw keeps for this worker to run next, like tokio's LIFO slot), then blocks its worker with
/// `recv_blocking` for the answer, which the book allows in a task "so the message must come
/// from elsewhere". With a second worker idle, the woken task must run there.
#[test]
fn a_task_that_hands_a_message_on_then_blocks_its_worker_for_the_answer_is_answered() {
    within(DEADLINE, || {
        let rt = rt(2);
        for round in 0..20u32 {
            let (tx, rx) = bounded::<u32>(1);
            let (reply_tx, reply_rx) = bounded::<u32>(1);
            let (waiting_tx, waiting) = mpsc::channel();
            let echo = rt.spawn(async move {
                waiting_tx.send(()).unwrap();
                let n = rx.recv().await.unwrap();
                reply_tx.send(n + 1).await.unwrap();
            });
            waiting.recv().unwrap();
            // Only so that the echo task waits in its `recv` when the message comes.
            std::thread::sleep(ms(5));
            let asker = rt.spawn(async move {
                tx.try_send(round).unwrap();
                reply_rx.recv_blocking().unwrap()
            });
            assert_eq!(rt.block_on(asker), Ok(round + 1), "round {round}");
            rt.block_on(echo).unwrap();
        }
    });
}

/// The same when the task hands messages to two waiting tasks before it blocks: the second
/// takes the place kept for this worker and the first goes to the queue with its wake-up left to
/// this worker, which then blocks waiting for the first one's answer.
#[test]
fn a_task_that_hands_messages_to_two_tasks_then_blocks_for_the_first_ones_answer_is_answered() {
    within(DEADLINE, || {
        let rt = rt(2);
        for round in 0..20u32 {
            let (tx1, rx1) = bounded::<u32>(1);
            let (tx2, rx2) = bounded::<u32>(1);
            let (reply_tx, reply_rx) = bounded::<u32>(1);
            let (waiting_tx, waiting) = mpsc::channel();
            let first = rt.spawn({
                let waiting_tx = waiting_tx.clone();
                async move {
                    waiting_tx.send(()).unwrap();
                    let n = rx1.recv().await.unwrap();
                    reply_tx.send(n + 1).await.unwrap();
                }
            });
            let second = rt.spawn(async move {
                waiting_tx.send(()).unwrap();
                rx2.recv().await.unwrap()
            });
            waiting.recv().unwrap();
            waiting.recv().unwrap();
            // Only so that both wait in their `recv` when the messages come.
            std::thread::sleep(ms(5));
            let asker = rt.spawn(async move {
                tx1.try_send(round).unwrap();
                tx2.try_send(round).unwrap();
                reply_rx.recv_blocking().unwrap()
            });
            assert_eq!(rt.block_on(asker), Ok(round + 1), "round {round}");
            rt.block_on(first).unwrap();
            assert_eq!(rt.block_on(second), Ok(round));
        }
    });
}

/// tokio: `hang_on_shutdown`: a task blocked in a blocking helper when the runtime shuts down
/// does not hang the shutdown (it is reported abandoned).
#[test]
fn a_task_blocked_in_recv_blocking_does_not_hang_the_shutdown() {
    within(DEADLINE, || {
        let rt = rt(2);
        let (tx, rx) = bounded::<()>(1);
        let (started_tx, started) = mpsc::channel();
        let blocked = rt.spawn(async move {
            started_tx.send(()).unwrap();
            rx.recv_blocking()
        });
        started.recv().unwrap();
        let report = rt.shutdown(ms(100));
        assert_eq!(report.abandoned, 1, "{report}");
        drop(tx);
        // Its handle resolves once the helper returns (with what, see
        // `a_cpu_bound_task_that_never_waited_sees_the_shutdown_cancel`).
        let _ = klaw::runtime::block_on(blocked);
    });
}

/// tokio: `yield_now_in_block_in_place`: a blocking helper inside a task runs a future that
/// yields.
#[test]
fn block_on_of_a_yield_inside_a_task_completes() {
    for_each_flavour(|rt| {
        let out = rt.block_on(rt.spawn(async {
            klaw::runtime::block_on(futures_lite::future::yield_now());
            "yielded"
        }));
        assert_eq!(out, Ok("yielded"));
    });
}

// ---- rt_basic.rs ---------------------------------------------------------------------------

/// tokio: `no_extra_poll`: a task is polled once when it starts and once per wake-up.
#[test]
fn a_task_is_polled_once_per_wake_up() {
    for_each_flavour(|rt| {
        let polls = Arc::new(AtomicUsize::new(0));
        let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
        let (polled_tx, polled) = mpsc::channel();
        let (counted, slot) = (polls.clone(), waker.clone());
        let task = rt.spawn(std::future::poll_fn(move |cx| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            let _ = polled_tx.send(n);
            if n >= 3 { Poll::Ready(n) } else { Poll::Pending }
        }));
        assert_eq!(polled.recv_timeout(DEADLINE).unwrap(), 1);
        for expected in 2..=3 {
            let waker = waker.lock().unwrap().take().unwrap();
            waker.wake();
            assert_eq!(polled.recv_timeout(DEADLINE).unwrap(), expected, "an extra poll");
        }
        assert_eq!(rt.block_on(task), Ok(3));
        assert_eq!(polls.load(Ordering::SeqCst), 3);
    });
}

/// tokio: `acquire_mutex_in_drop`: tasks whose destructors send to each other while the
/// runtime drops them.
#[test]
fn destructors_that_send_to_waiting_tasks_while_the_runtime_drops() {
    for_each_flavour(|rt| {
        let (tx1, rx1) = oneshot::channel::<()>();
        let (tx2, rx2) = oneshot::channel::<()>();
        drop(rt.spawn(async move {
            let _ = rx2.await;
            unreachable!();
        }));
        drop(rt.spawn(async move {
            let _ = rx1.await;
            tx2.send(()).unwrap();
            unreachable!();
        }));
        drop(rt.spawn(async move {
            std::future::pending::<()>().await;
            tx1.send(()).unwrap();
        }));
        rt.block_on(futures_lite::future::yield_now());
        drop(rt);
    });
}

/// tokio: `drop_tasks_in_context`: a task dropped by the shutdown is dropped where its runtime
/// is current.
#[test]
fn a_task_dropped_by_the_shutdown_sees_its_runtime() {
    struct ContextOnDrop(mpsc::Sender<bool>);

    impl Future for ContextOnDrop {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl Drop for ContextOnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(Handle::current().is_ok());
        }
    }

    for_each_flavour(|rt| {
        let (tx, rx) = mpsc::channel();
        let (polled_tx, polled) = mpsc::channel();
        drop(rt.spawn(async move {
            polled_tx.send(()).unwrap();
            ContextOnDrop(tx).await;
        }));
        drop(rt.spawn(ContextOnDrop(mpsc::channel().0)));
        polled.recv_timeout(DEADLINE).unwrap();
        drop(rt);
        assert_eq!(rx.try_recv(), Ok(true));
    });
}

/// tokio: `wake_in_drop_after_panic`: a panic in `block_on` drops the runtime while unwinding,
/// and the tasks' destructors wake each other: the panic reaches the caller (no abort).
#[test]
fn a_panic_in_block_on_unwinds_through_the_runtimes_drop() {
    in_child_process("child_a_panic_in_block_on_unwinds_through_the_runtimes_drop", &[], DEADLINE);
}

#[test]
#[ignore = "run in a child process by a_panic_in_block_on_unwinds_through_the_runtimes_drop"]
fn child_a_panic_in_block_on_unwinds_through_the_runtimes_drop() {
    struct WakeOnDrop(Option<oneshot::Sender<()>>);

    impl Drop for WakeOnDrop {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(());
        }
    }

    for workers in FLAVOURS {
        let panicked = std::panic::catch_unwind(move || {
            let rt = rt(workers);
            let (tx1, rx1) = oneshot::channel::<()>();
            let (tx2, rx2) = oneshot::channel::<()>();
            drop(rt.spawn(async move {
                let _wake_on_drop = WakeOnDrop(Some(tx2));
                let _ = rx1.await;
                unreachable!()
            }));
            drop(rt.spawn(async move {
                let _wake_on_drop = WakeOnDrop(Some(tx1));
                let _ = rx2.await;
                unreachable!()
            }));
            rt.block_on(async {
                futures_lite::future::yield_now().await;
                panic!("boom");
            });
        });
        assert_eq!(panicked.unwrap_err().downcast_ref::<&str>(), Some(&"boom"));
    }
}

// ---- rt_handle.rs --------------------------------------------------------------------------

/// tokio: `drop_tasks_with_reference_cycle`: two tasks that each hold (and have polled) the
/// other's handle are both freed.
#[test]
fn tasks_holding_each_others_handles_are_freed() {
    for_each_flavour(|rt| {
        let marker = Arc::new(());
        let (weak_a, weak_b) = (Arc::downgrade(&marker), Arc::downgrade(&marker));
        rt.block_on(async {
            let (tx, rx) = bounded::<TaskHandle<()>>(1);
            let barrier = Arc::new(klaw::sync::Barrier::new(3));
            let (barrier_a, barrier_b) = (barrier.clone(), barrier.clone());
            let (marker_a, marker_b) = (marker.clone(), marker.clone());
            let a = spawn(async move {
                let _marker = marker_a;
                let mut b = rx.recv().await.unwrap();
                let _ = futures_lite::future::poll_once(&mut b).await;
                barrier_a.wait().await;
                drop(b);
            });
            let b = spawn(async move {
                let _marker = marker_b;
                let mut a = a;
                let _ = futures_lite::future::poll_once(&mut a).await;
                barrier_b.wait().await;
                drop(a);
            });
            tx.send(b).await.unwrap();
            barrier.wait().await;
        });
        drop(marker);
        drop(rt);
        assert!(weak_a.upgrade().is_none() && weak_b.upgrade().is_none(), "a task leaked");
    });
}

// ---- rt_handle_block_on.rs -----------------------------------------------------------------

/// tokio: `spawn_blocking_started_before_shutdown_continues`.
#[test]
fn a_blocking_closure_started_before_a_graceful_shutdown_finishes() {
    within(DEADLINE, || {
        let rt = rt(1);
        let (started_tx, started) = mpsc::channel();
        let handle = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            std::thread::sleep(ms(100));
            42
        });
        started.recv().unwrap();
        let report = rt.shutdown(Duration::from_secs(1000));
        assert!(!report.grace_expired, "{report}");
        assert_eq!(report.succeeded, 1, "{report}");
        assert_eq!(klaw::runtime::block_on(handle), Ok(42));
    });
}

// ---- task_blocking.rs ----------------------------------------------------------------------

/// tokio: `basic_blocking`.
#[test]
fn a_task_awaits_a_blocking_closure_a_hundred_times() {
    within(DEADLINE, || {
        let rt = rt(2);
        for _ in 0..100 {
            let out = rt.block_on(rt.spawn(async {
                Handle::current()
                    .unwrap()
                    .spawn_blocking(|| {
                        std::thread::sleep(ms(5));
                        "hello"
                    })
                    .await
            }));
            assert_eq!(out, Ok(Ok("hello")));
        }
    });
}

/// tokio: `can_enter_current_thread_rt_from_within_block_in_place` (the blocking pool stands in
/// for `block_in_place`).
#[test]
fn a_runtime_is_built_and_used_inside_a_blocking_closure() {
    for_each_flavour(|outer| {
        let out = outer.block_on(outer.spawn_blocking(|| {
            let inner = rt(1);
            inner.block_on(inner.spawn(async { "inner" }))
        }));
        assert_eq!(out, Ok(Ok("inner")));
    });
}

/// tokio: `useful_panic_message_when_dropping_rt_in_rt`,
/// `can_shutdown_with_zero_timeout_in_runtime`, `can_shutdown_now_in_runtime`. klaw has no rule
/// against it: a runtime built inside another's `block_on` or task can be shut down, or
/// dropped, there; its tasks end as after any shutdown.
#[test]
fn a_runtime_is_shut_down_or_dropped_inside_another_runtimes_block_on_and_task() {
    fn use_and_end(drop_it: bool) -> (Result<u32, TaskError>, Result<(), TaskError>) {
        let inner = rt(1);
        let (tx, rx) = mpsc::channel();
        let done = inner.spawn(async move { tx.send(5).unwrap() });
        let forever = inner.spawn(std::future::pending::<()>());
        let value = rx.recv_timeout(DEADLINE).unwrap();
        if drop_it {
            drop(inner);
        } else {
            let report = inner.shutdown(Duration::ZERO);
            assert_eq!(report.cancelled, 1, "{report}");
        }
        let done = klaw::runtime::block_on(done).map(|()| value);
        (done, klaw::runtime::block_on(forever))
    }

    for_each_flavour(|outer| {
        for drop_it in [false, true] {
            let expected = (Ok(5), Err(TaskError::Cancelled(CancelReason::Shutdown)));
            assert_eq!(outer.block_on(async move { use_and_end(drop_it) }), expected);
            assert_eq!(
                outer.block_on(outer.spawn(async move { use_and_end(drop_it) })),
                Ok(expected)
            );
        }
    });
}

/// A runtime whose last owner is one of its own tasks is dropped inside that task: the drop
/// returns (it cannot wait for the task it runs in) and the task's handle resolves.
#[test]
fn a_runtime_dropped_inside_one_of_its_own_tasks_does_not_hang() {
    within(DEADLINE, || {
        for workers in FLAVOURS {
            let runtime = Arc::new(rt(workers));
            let (go_tx, go) = oneshot::channel::<()>();
            let mine = runtime.clone();
            let task = runtime.spawn(async move {
                go.await.unwrap();
                drop(mine);
                "after the drop"
            });
            drop(runtime);
            go_tx.send(()).unwrap();
            let ended = klaw::runtime::block_on(task);
            assert!(
                matches!(
                    ended,
                    Ok("after the drop") | Err(TaskError::Cancelled(CancelReason::Shutdown))
                ),
                "{ended:?}"
            );
        }
    });
}

/// tokio: `blocking_when_paused`: under a paused clock, time does not move while a blocking
/// closure is queued or running (klaw's book: "no blocking-pool job is queued or running").
#[test]
fn a_paused_clock_does_not_move_while_a_blocking_closure_runs() {
    within(DEADLINE, || {
        let rt = Runtime::builder().start_paused(true).build().unwrap();
        rt.block_on(async {
            let handle = Handle::current().unwrap();
            let quick = klaw::cancel::fail_after(
                Duration::from_secs(3),
                handle.spawn_blocking(|| std::thread::sleep(ms(1))),
            )
            .await;
            assert_eq!(quick, Ok(Ok(())), "the timeout should not trigger");
            let slow = klaw::cancel::fail_after(
                ms(1),
                handle.spawn_blocking(|| std::thread::sleep(ms(50))),
            )
            .await;
            assert_eq!(slow, Ok(Ok(())), "the timeout should not trigger");
        });
    });
}

/// tokio: `blocking_task_wakes_paused_runtime`, `unawaited_blocking_task_wakes_paused_runtime`,
/// `panicking_blocking_task_wakes_paused_runtime`: a blocking closure that ends lets a paused
/// clock move on (the deadline stands in for tokio's wall-clock check).
#[test]
fn a_blocking_closure_that_ends_lets_a_paused_clock_move_on() {
    within(DEADLINE, || {
        let rt = Runtime::builder().start_paused(true).build().unwrap();
        rt.block_on(async {
            let handle = Handle::current().unwrap();
            let awaited = klaw::cancel::fail_after(
                Duration::from_secs(15),
                handle.spawn_blocking(|| std::thread::sleep(ms(1))),
            )
            .await;
            assert_eq!(awaited, Ok(Ok(())));

            let unawaited = handle.spawn_blocking(|| std::thread::sleep(ms(1)));
            klaw::time::sleep(Duration::from_secs(15)).await;
            assert_eq!(unawaited.await, Ok(()));

            let panicking = klaw::cancel::fail_after(
                Duration::from_secs(15),
                handle.spawn_blocking(|| {
                    std::thread::sleep(ms(1));
                    panic!("blocking task panicked");
                }),
            )
            .await;
            assert_eq!(
                panicking,
                Ok(Err::<(), _>(TaskError::Panicked("blocking task panicked".to_owned())))
            );
        });
    });
}

// ---- rt_spawn_blocking.rs ------------------------------------------------------------------

/// tokio: `issue_8056_regression_test`: blocking closures spawned while the pool's threads go
/// idle, wake and retire, with long-lived closures parked in `recv_blocking`, all get a thread.
#[test]
fn no_blocking_closure_is_lost_while_the_pool_churns() {
    type Writer = (Vec<klaw::channel::Sender<()>>, Vec<TaskHandle<()>>);

    fn make_writer(handle: &Handle) -> Writer {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..2 {
            let (tx, rx) = bounded::<()>(1);
            senders.push(tx);
            handles.push(handle.spawn_blocking(move || while rx.recv_blocking().is_ok() {}));
        }
        (senders, handles)
    }

    async fn drive_writer((senders, handles): Writer) {
        for tx in &senders {
            tx.send(()).await.unwrap();
        }
        drop(senders);
        for handle in handles {
            handle.await.unwrap();
        }
    }

    within(DEADLINE, || {
        for _ in 0..200 {
            let rt = rt(1);
            rt.block_on(async {
                let handle = Handle::current().unwrap();
                let quick = || handle.spawn_blocking(|| {});
                quick().await.unwrap();
                quick().await.unwrap();
                let persistent = make_writer(&handle);
                for _ in 0..2 {
                    quick().await.unwrap();
                    quick().await.unwrap();
                    let (senders, writers) = make_writer(&handle);
                    drop(senders);
                    for writer in writers {
                        writer.await.unwrap();
                    }
                }
                quick().await.unwrap();
                quick().await.unwrap();
                let second = make_writer(&handle);
                drive_writer(persistent).await;
                drive_writer(second).await;
            });
        }
    });
}

/// The blocking pool's queue is first come, first served: with one thread, closures run in the
/// order they were spawned (the book: "past the bound, closures wait in a queue").
#[test]
fn with_one_blocking_thread_closures_run_in_spawn_order() {
    within(DEADLINE, || {
        let rt = Runtime::builder().workers(1).max_blocking_threads(1).build().unwrap();
        let (release, wait) = mpsc::channel::<()>();
        let occupier = rt.spawn_blocking(move || wait.recv().unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let order = order.clone();
                rt.spawn_blocking(move || order.lock().unwrap().push(i))
            })
            .collect();
        release.send(()).unwrap();
        rt.block_on(occupier).unwrap();
        for handle in handles {
            rt.block_on(handle).unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    });
}
