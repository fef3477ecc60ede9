//! The `tokio` feature at the edges tokio's own suites probe (`rt_common.rs`, `task_blocking.rs`,
//! `time_sleep.rs`, `tcp_*.rs`), as a klaw user meets them: a runtime with tokio kept in a
//! thread-local and dropped as its thread ends, runtimes with tokio built and dropped many times
//! (threads and file descriptors), runtimes dropped while their tasks wake each other through
//! tokio I/O, `tokio::task::yield_now` in klaw tasks, tokio's timers on a paused clock, a klaw
//! deadline over a tokio write that cannot progress, shutdown with a blocking child inside
//! tokio's `block_on`, tokio types in blocking children under a non-tokio `block_on`, klaw
//! channels and `select!` in the tasks of a separate tokio runtime under tokio's `timeout`, tokio
//! used on a runtime without the option, and klaw's `block_on` inside tokio's.
//!
//! Promises under test: book/src/io.md ("tokio's crates: the `tokio` feature", "Inside what tokio
//! runs"), book/src/from_tokio.md, book/src/time.md ("What klaw cannot see does not hold the
//! clock back"), book/src/runtime.md ("Shutting down") and `klaw-rt/src/runtime/tokio_context.rs`:
//! every klaw thread runs inside a tokio runtime's context, tokio-based code in klaw tasks is
//! governed by klaw's scopes and deadlines, and klaw's channels are executor-agnostic.
//!
//! klaw's dev-dependency on tokio has `net`, `io-util`, `time` and `rt` (no `sync`): the waits
//! here are tokio's sockets, pipes and timers.
#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{DEADLINE, Flag, SetOnDrop, XorShift, in_child_process, ms, with_deadline};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A klaw runtime with the tokio option.
fn tokio_runtime(workers: usize) -> klaw::Runtime {
    klaw::Runtime::builder().workers(workers).tokio(true).build().expect("runtime with tokio")
}

/// Threads of this process now (Linux: `/proc/self/task`).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|dir| dir.count()).unwrap_or(0)
}

/// Open file descriptors of this process now (Linux: `/proc/self/fd`).
fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|dir| dir.count()).unwrap_or(0)
}

/// A connected pair of tokio TCP streams (client, server).
async fn tcp_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (client, accepted) =
        futures_lite::future::zip(tokio::net::TcpStream::connect(address), listener.accept()).await;
    (client.unwrap(), accepted.unwrap().0)
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("<unnamed>").to_owned()
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Runtimes with tokio: thread-locals, repeated builds, drops while tasks wake each other
// ---------------------------------------------------------------------------------------------

/// tokio: `rt_common::runtime_in_thread_local`. A klaw runtime with tokio kept in a thread-local
/// is dropped while its thread's thread-locals are destroyed, after tokio's own thread-local
/// (which `Handle::enter` needs) is gone but while klaw's are still there: thread-locals are
/// destroyed in the reverse order of their first use, and here klaw's were used before the
/// runtime's, tokio's after. runtime/mod.rs (`Drop for Runtime`) promises a runtime dropped "by
/// a thread-local's destructor as its thread ends" shuts down; a demanding user expects the
/// same whichever library's thread-locals went first, not an abort of the process.
#[test]
fn a_runtime_with_tokio_in_a_thread_local_shuts_down_after_tokio_s_thread_local_is_gone() {
    in_child_process(
        "child_a_runtime_with_tokio_in_a_thread_local_after_tokio_s_thread_local",
        &[],
        DEADLINE + Duration::from_secs(30),
    );
}

#[test]
#[ignore = "run in a child process by \
            a_runtime_with_tokio_in_a_thread_local_shuts_down_after_tokio_s_thread_local_is_gone"]
fn child_a_runtime_with_tokio_in_a_thread_local_after_tokio_s_thread_local() {
    use std::cell::RefCell;

    thread_local! {
        static R: RefCell<Option<klaw::Runtime>> = const { RefCell::new(None) };
    }

    let (dropped_tx, dropped) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        // klaw's thread-locals (context, cancel frames, clock) first: they outlive the runtime.
        assert!(klaw::Handle::current().is_err());
        klaw::runtime::block_on(async {
            let _ =
                klaw::cancel::move_on_after(ms(1), async { klaw::cancel::is_cancelled() }).await;
        });
        // Then the runtime's cell...
        R.with(|_| ());
        // ...and only then tokio's context, which building and entering the runtime first use:
        // it is destroyed before the runtime.
        let runtime = tokio_runtime(2);
        let (started_tx, started) = std::sync::mpsc::channel();
        drop(runtime.spawn(async move {
            let _dropped = dropped_tx;
            let (mut client, _server) = tcp_pair().await;
            started_tx.send(()).unwrap();
            let mut buffer = [0u8; 4];
            let _ = client.read(&mut buffer).await;
            std::future::pending::<()>().await;
        }));
        started.recv_timeout(DEADLINE).unwrap();
        R.with(|cell| *cell.borrow_mut() = Some(runtime));
    })
    .join()
    .unwrap();
    // The task (and its socket) was dropped by the shutdown.
    assert_eq!(
        dropped.recv_timeout(DEADLINE),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
    );
}

/// The brief of the feature: a klaw runtime with tokio, built, used (tokio TCP and timers in klaw
/// tasks, `tokio::spawn`, `tokio::task::spawn_blocking`, a klaw blocking child) and dropped 40
/// times in one process, leaves no thread and no file descriptor behind: once the last one is
/// dropped, the process's threads and descriptors come back to what they were (tokio's
/// `shutdown_background` lets its threads exit on their own, so this waits for them).
#[test]
fn runtimes_with_tokio_built_and_dropped_many_times_leave_no_thread_or_fd_behind() {
    in_child_process(
        "child_runtimes_with_tokio_built_and_dropped_many_times",
        &[],
        DEADLINE + Duration::from_secs(30),
    );
}

#[test]
#[ignore = "run in a child process by \
            runtimes_with_tokio_built_and_dropped_many_times_leave_no_thread_or_fd_behind"]
fn child_runtimes_with_tokio_built_and_dropped_many_times() {
    // One round first, so what a first use sets up for good (tokio's global state, the
    // async-io reactor's thread and descriptors) is in the baseline.
    let round = |parked: &Arc<AtomicUsize>| {
        let rt = tokio_runtime(2);
        let parked = parked.clone();
        let echoed = rt.block_on(rt.spawn(async move {
            let (mut client, mut server) = tcp_pair().await;
            client.write_all(b"ping").await.unwrap();
            let mut buffer = [0u8; 4];
            server.read_exact(&mut buffer).await.unwrap();
            tokio::time::sleep(ms(1)).await;
            // Left pending on the tokio runtime, holding a socket and a timer.
            tokio::spawn(async move {
                let _server = server;
                parked.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
            let blocking = tokio::task::spawn_blocking(|| 6 * 7).await.unwrap();
            let klaw_blocking = klaw::scope!(|s| Ok(s.spawn_blocking(|| 7).await?)).unwrap();
            (buffer, blocking, klaw_blocking, client)
        }));
        let (buffer, blocking, klaw_blocking, client) = echoed.unwrap();
        assert_eq!((&buffer, blocking, klaw_blocking), (b"ping", 42, 7));
        drop(client);
        drop(rt);
    };
    let parked = Arc::new(AtomicUsize::new(0));
    round(&parked);
    let settle = |threads: usize, fds: usize| {
        common::wait_until(Duration::from_secs(10), || {
            thread_count() <= threads && fd_count() <= fds
        })
    };
    // Let the first round's threads go before taking the baseline.
    std::thread::sleep(ms(300));
    let (threads, fds) = (thread_count(), fd_count());
    for _ in 0..40 {
        round(&parked);
    }
    let settled = settle(threads, fds);
    assert!(
        settled,
        "after 40 runtimes: {} threads (before: {threads}), {} descriptors (before: {fds})",
        thread_count(),
        fd_count()
    );
    // (A task left to `tokio::spawn` may be dropped by the shutdown before its first poll.)
    assert!(parked.load(SeqCst) <= 41);
}

/// tokio: `rt_common::wake_while_rt_is_dropping`. Two klaw tasks wait on tokio I/O (each reads
/// its own `tokio::io::duplex`), and each holds a guard whose drop writes to the other's pipe,
/// waking the other task while the runtime is being dropped. The drop returns (no hang, no
/// panic) and both tasks are dropped.
#[test]
fn dropping_a_runtime_whose_tasks_wake_each_other_through_tokio_io_from_their_drops_returns() {
    struct OnDrop<F: FnMut()>(F);
    impl<F: FnMut()> Drop for OnDrop<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }

    with_deadline(|| {
        for round in 0..20 {
            let rt = tokio_runtime(2);
            let dropped = Arc::new(AtomicUsize::new(0));
            let (started_tx, started) = std::sync::mpsc::channel::<()>();
            let (reader_a, writer_a, reader_b, writer_b) = rt.block_on(async {
                let (reader_a, writer_a) = tokio::io::duplex(64);
                let (reader_b, writer_b) = tokio::io::duplex(64);
                (reader_a, writer_a, reader_b, writer_b)
            });
            for (mut reader, writer) in [(reader_a, writer_b), (reader_b, writer_a)] {
                let started = started_tx.clone();
                let dropped = dropped.clone();
                drop(rt.spawn(async move {
                    let mut writer = Some(writer);
                    let _wake_other = OnDrop(move || {
                        // A non-blocking write from a destructor: poll it once, outside tokio's
                        // task machinery, which is what a guard's drop can do.
                        if let Some(mut writer) = writer.take() {
                            let _ = futures_lite::future::block_on(
                                futures_lite::future::poll_once(writer.write_all(b"x")),
                            );
                        }
                        dropped.fetch_add(1, SeqCst);
                    });
                    started.send(()).unwrap();
                    let mut buffer = [0u8; 1];
                    let _ = reader.read(&mut buffer).await;
                    std::future::pending::<()>().await;
                }));
            }
            for _ in 0..2 {
                started.recv_timeout(DEADLINE).unwrap();
            }
            drop(rt);
            assert_eq!(dropped.load(SeqCst), 2, "round {round}: a task outlived its runtime");
        }
    });
}

/// tokio: `rt_common::io_notify_while_shutting_down`. Ten times: klaw tasks send and receive
/// tokio UDP datagrams in loops (the receiver blocking its worker 2 ms a datagram, the sender
/// pacing itself with tokio's timer), and the runtime is dropped 5 ms in. No panic (a tokio
/// resource meeting a driver already shut down would panic in a task, and the report would say
/// so), no hang, and everything is cancelled or dropped.
#[test]
fn runtimes_dropped_while_their_tasks_exchange_tokio_udp_datagrams_shut_down_cleanly() {
    with_deadline(|| {
        for round in 0..10 {
            let rt = tokio_runtime(2);
            rt.block_on(async {
                let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let address = socket.local_addr().unwrap();
                let send_half = Arc::new(socket);
                let recv_half = send_half.clone();
                let handle = klaw::Handle::current().unwrap();
                drop(handle.spawn(async move {
                    let mut buffer = [0u8; 1];
                    loop {
                        recv_half.recv_from(&mut buffer).await.unwrap();
                        std::thread::sleep(ms(2));
                    }
                }));
                drop(handle.spawn(async move {
                    loop {
                        send_half.send_to(&[0u8], address).await.unwrap();
                        tokio::time::sleep(ms(1)).await;
                    }
                }));
                tokio::time::sleep(ms(5)).await;
            });
            let report = rt.shutdown(Duration::ZERO);
            assert_eq!(
                (report.panicked, report.cancelled, report.abandoned),
                (0, 2, 0),
                "round {round}: {report:?}"
            );
        }
    });
}

/// `tokio_context.rs`: the tokio runtime's one thread is named `{thread_name}-tokio`.
#[test]
fn the_tokio_thread_takes_the_runtime_s_thread_name() {
    with_deadline(|| {
        let rt =
            klaw::Runtime::builder().workers(1).thread_name("edges").tokio(true).build().unwrap();
        let name = rt.block_on(async { tokio::spawn(async { thread_name() }).await.unwrap() });
        assert_eq!(name, "edges-tokio");
    });
}

// ---------------------------------------------------------------------------------------------
// tokio's task API inside klaw tasks
// ---------------------------------------------------------------------------------------------

/// Not in the book: `tokio::task::yield_now` in a klaw task. A tokio user expects it to give the
/// worker to the other tasks: on a runtime with one worker, a task that loops on it until a flag
/// is set lets the task that sets the flag run; and a klaw deadline around such a loop ends it.
#[test]
fn tokio_yield_now_in_a_klaw_task_lets_the_other_task_of_its_worker_run() {
    with_deadline(|| {
        let rt = tokio_runtime(1);
        let flag = Arc::new(AtomicBool::new(false));
        let spinning = flag.clone();
        let spins = rt.spawn(async move {
            let mut spins = 0u64;
            while !spinning.load(SeqCst) {
                tokio::task::yield_now().await;
                spins += 1;
            }
            spins
        });
        let setter = rt.spawn(async move { flag.store(true, SeqCst) });
        assert_eq!(rt.block_on(setter), Ok(()));
        assert!(rt.block_on(spins).is_ok());
        let ended = rt.block_on(rt.spawn(klaw::cancel::move_on_after(ms(20), async {
            loop {
                tokio::task::yield_now().await;
            }
        })));
        assert_eq!(ended, Ok(None::<()>));
    });
}

/// tokio: `rt_common::sleep_from_blocking`, `socket_from_blocking` ("use the futures' block_on fn
/// to make sure we aren't setting any tokio context"). io.md: blocking-pool threads have entered
/// the tokio context for good. In a klaw blocking child, a tokio sleep and a tokio TCP round
/// trip driven by a non-tokio `block_on` (futures-lite's, and klaw's own) work.
#[test]
fn tokio_timers_and_sockets_work_in_a_blocking_child_under_a_non_tokio_block_on() {
    with_deadline(|| {
        let rt = tokio_runtime(2);
        let outcome = rt.block_on(rt.spawn(async {
            klaw::scope!(|s| {
                let lite = s.spawn_blocking(|| {
                    futures_lite::future::block_on(async {
                        let started = Instant::now();
                        tokio::time::sleep(ms(5)).await;
                        let (mut client, mut server) = tcp_pair().await;
                        client.write_all(b"lite").await.unwrap();
                        let mut buffer = [0u8; 4];
                        server.read_exact(&mut buffer).await.unwrap();
                        (started.elapsed() >= ms(5), buffer)
                    })
                });
                let own = s.spawn_blocking(|| {
                    klaw::runtime::block_on(async {
                        let (mut client, mut server) = tcp_pair().await;
                        server.write_all(b"klaw").await.unwrap();
                        let mut buffer = [0u8; 4];
                        client.read_exact(&mut buffer).await.unwrap();
                        buffer
                    })
                });
                Ok((lite.await?, own.await?))
            })
        }));
        let ((slept, lite), own) = outcome.unwrap().unwrap();
        assert!(slept, "the tokio sleep returned early");
        assert_eq!((&lite, &own), (b"lite", b"klaw"));
    });
}

/// io.md: "Without the option, the same code panics with "there is no reactor running"." With
/// the feature built but a runtime without the option, a klaw task that makes a tokio timer
/// panics with tokio's message, which the task's handle reports as `Panicked` (and a scope as a
/// failed child), and the runtime goes on.
#[test]
fn tokio_on_a_runtime_without_the_option_panics_with_tokio_s_message_in_the_task() {
    with_deadline(|| {
        let rt = klaw::Runtime::builder().workers(2).build().unwrap();
        let outcome = rt.block_on(rt.spawn(async {
            tokio::time::sleep(ms(1)).await;
        }));
        match outcome {
            Err(klaw::TaskError::Panicked(message)) => {
                assert!(message.contains("there is no reactor running"), "{message}");
            }
            other => panic!("a tokio timer without the option: {other:?}"),
        }
        let in_scope: Result<(), klaw::Error> = rt.block_on(async {
            klaw::scope!(|s| {
                s.spawn(async {
                    let _ = tokio::net::TcpListener::bind("127.0.0.1:0").await;
                });
                Ok(())
            })
        });
        assert!(
            matches!(in_scope, Err(klaw::Error::Task { error: klaw::TaskError::Panicked(_), .. })),
            "{in_scope:?}"
        );
        assert_eq!(rt.block_on(rt.spawn(async { 7 })), Ok(7), "the runtime goes on");
    });
}

// ---------------------------------------------------------------------------------------------
// Deadlines over tokio I/O that cannot progress
// ---------------------------------------------------------------------------------------------

/// io.md: "cancelling the task drops the future, which closes what it held". tokio's
/// `tcp_stream` tests fill a socket whose peer never reads; here a klaw `fail_after(30ms)` ends a
/// `write_all` of 16 MiB stuck on a full socket buffer: `Elapsed` (the write could not finish),
/// and the socket is closed by the time `fail_after` returns (the peer, reading, gets what was
/// written and then the end of the stream or a reset).
#[test]
fn a_klaw_deadline_ends_a_tokio_write_to_a_peer_that_never_reads_and_closes_the_socket() {
    with_deadline(|| {
        let rt = tokio_runtime(2);
        rt.block_on(rt.spawn(async {
            let (client, mut server) = tcp_pair().await;
            let written = Arc::new(AtomicUsize::new(0));
            let counted = written.clone();
            let outcome = klaw::cancel::fail_after(ms(30), async move {
                let mut client = client;
                let chunk = vec![7u8; 64 * 1024];
                for _ in 0..256 {
                    client.write_all(&chunk).await.unwrap();
                    counted.fetch_add(chunk.len(), SeqCst);
                }
            })
            .await;
            assert!(outcome.is_err(), "16 MiB went into a socket nobody read");
            // The peer drains what was sent, then sees the socket closed.
            let drained = klaw::cancel::fail_after(Duration::from_secs(10), async {
                let mut buffer = vec![0u8; 64 * 1024];
                let mut total = 0usize;
                loop {
                    match server.read(&mut buffer).await {
                        Ok(0) | Err(_) => return total,
                        Ok(n) => total += n,
                    }
                }
            })
            .await;
            let total = drained.expect("the writer's socket outlived fail_after");
            assert!(total >= written.load(SeqCst), "{total} < {}", written.load(SeqCst));
        }))
        .unwrap();
    });
}

/// runtime.md ("Shutting down": a blocking closure that ignores `is_cancelled()` is reported
/// `abandoned`) and tokio_context.rs (the tokio runtime is shut down without waiting).
/// A blocking child blocked in tokio's `Handle::block_on` on a read that never comes: shutdown
/// returns within a few seconds, and once the tokio runtime is shut down the read fails (tokio's
/// drivers wake what waits on them at shutdown), so the closure ends on its own too.
#[test]
fn shutdown_returns_while_a_blocking_child_waits_in_tokio_s_block_on_and_the_closure_ends() {
    with_deadline(|| {
        let rt = tokio_runtime(2);
        let ended = Flag::default();
        let ended_in = ended.clone();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (client, server) = rt.block_on(tcp_pair());
        drop(rt.spawn_blocking(move || {
            let _ended = SetOnDrop(ended_in);
            let mut client = client;
            started_tx.send(()).unwrap();
            let mut buffer = [0u8; 4];
            tokio::runtime::Handle::current().block_on(client.read(&mut buffer))
        }));
        started.recv_timeout(DEADLINE).unwrap();
        std::thread::sleep(ms(10));
        let began = Instant::now();
        let report = rt.shutdown(ms(10));
        assert!(began.elapsed() < Duration::from_secs(5), "shutdown took {:?}", began.elapsed());
        assert_eq!(report.cancelled + report.abandoned, 1, "{report:?}");
        assert!(
            common::wait_until(Duration::from_secs(10), || ended.is_set()),
            "the blocking closure still waits on tokio I/O after the runtime shut down"
        );
        drop(server);
    });
}

// ---------------------------------------------------------------------------------------------
// Virtual time and tokio's timers
// ---------------------------------------------------------------------------------------------

/// time.md: "With no timer pending the clock does not move at all", and io.md: "only klaw's
/// timers follow a test's paused clock". On a paused runtime with tokio and no klaw timer, a
/// task that waits on a 30 ms *tokio* sleep waits 30 ms of real time, and klaw's clock has not
/// moved when it wakes.
#[test]
fn on_a_paused_runtime_a_tokio_sleep_takes_real_time_and_leaves_klaw_s_clock_still() {
    with_deadline(|| {
        let rt = klaw::Runtime::builder().start_paused(true).tokio(true).build().unwrap();
        let (real, virtual_moved) = rt.block_on(async {
            let (real_start, virtual_start) = (Instant::now(), klaw::time::now());
            let child = klaw::Handle::current().unwrap().spawn(tokio::time::sleep(ms(30)));
            child.await.unwrap();
            (real_start.elapsed(), klaw::time::now() - virtual_start)
        });
        assert!(real >= ms(30), "the tokio sleep took {real:?}");
        assert_eq!(virtual_moved, Duration::ZERO, "klaw's paused clock moved for a tokio timer");
    });
}

/// time.md: what klaw cannot see "counts as waiting, and the clock may jump past other timers
/// meanwhile". On a paused runtime with tokio, a `scope!(timeout = "1h")` around a child waiting
/// on a 50 ms tokio sleep: the clock jumps the hour at once (real time: well under the tokio
/// sleep), and the scope fails with `Elapsed`, its child dropped.
#[test]
fn on_a_paused_runtime_a_klaw_scope_timeout_jumps_past_a_pending_tokio_sleep() {
    with_deadline(|| {
        let rt = klaw::Runtime::builder().start_paused(true).tokio(true).build().unwrap();
        let dropped = Flag::default();
        let guard = SetOnDrop(dropped.clone());
        let (outcome, real) = rt.block_on(async move {
            let started = Instant::now();
            let outcome: Result<(), klaw::Error> = klaw::scope!(timeout = "1h", |s| {
                s.spawn(async move {
                    let _g = guard;
                    tokio::time::sleep(ms(50)).await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                });
                Ok(())
            });
            (outcome, started.elapsed())
        });
        assert!(matches!(outcome, Err(klaw::Error::Elapsed(_))), "{outcome:?}");
        assert!(dropped.is_set());
        assert!(real < Duration::from_secs(10), "the hour took {real:?} of real time");
    });
}

// ---------------------------------------------------------------------------------------------
// klaw channels and select! in the tasks of a separate tokio runtime
// ---------------------------------------------------------------------------------------------

/// from_tokio.md: klaw's "channels, timers and `select!` work under any executor, tokio's
/// included"; channels.md: a `recv` arm that loses a `select!` loses no message. On a tokio
/// runtime of its own (no klaw runtime anywhere on its threads), two producers send on two klaw
/// channels, and a consumer runs `select!` over both with an `after` arm, each `select!` under a
/// random `tokio::time::timeout` that may drop it mid-wait: every message is received exactly
/// once.
#[test]
fn klaw_select_in_tokio_tasks_under_tokio_timeouts_receives_every_message_once() {
    with_deadline(|| {
        let foreign = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        const N: u64 = 2000;
        let received = foreign.block_on(async {
            let (tx_a, rx_a) = klaw::channel::bounded::<u64>(2);
            let (tx_b, rx_b) = klaw::channel::bounded::<u64>(2);
            let a = tokio::spawn(async move {
                for n in 0..N {
                    tx_a.send(n).await.unwrap();
                }
            });
            let b = tokio::spawn(async move {
                for n in N..2 * N {
                    tx_b.send(n).await.unwrap();
                    if n % 64 == 0 {
                        tokio::time::sleep(ms(1)).await;
                    }
                }
            });
            let consumer = tokio::spawn(async move {
                let mut got = Vec::new();
                let mut random = XorShift(0x2545_F491_4F6C_DD1D);
                let (mut a_open, mut b_open) = (true, true);
                let mut afters = 0u64;
                while a_open || b_open {
                    let limit = Duration::from_micros(random.below(300));
                    // A closed channel's arm is always ready: once one is closed, the loop waits
                    // on the other alone (a loop on an always-ready arm would never yield, and
                    // in a tokio task nothing makes it: klaw's channels take no part in tokio's
                    // budget).
                    let step = tokio::time::timeout(limit, async {
                        match (a_open, b_open) {
                            (true, true) => klaw::select! {
                                recv(rx_a) -> msg => msg.map_err(|_| 'a'),
                                recv(rx_b) -> msg => msg.map_err(|_| 'b'),
                                after(Duration::from_micros(200)) => Err('t'),
                            },
                            (true, false) => klaw::select! {
                                recv(rx_a) -> msg => msg.map_err(|_| 'a'),
                                after(Duration::from_micros(200)) => Err('t'),
                            },
                            _ => klaw::select! {
                                recv(rx_b) -> msg => msg.map_err(|_| 'b'),
                                after(Duration::from_micros(200)) => Err('t'),
                            },
                        }
                    })
                    .await;
                    match step {
                        Ok(Ok(value)) => got.push(value),
                        Ok(Err('a')) => a_open = false,
                        Ok(Err('b')) => b_open = false,
                        Ok(Err(_)) => afters += 1,
                        Err(_elapsed) => {}
                    }
                }
                (got, afters)
            });
            a.await.unwrap();
            b.await.unwrap();
            consumer.await.unwrap()
        });
        foreign.shutdown_background();
        let (mut got, _afters) = received;
        got.sort_unstable();
        let expected: Vec<u64> = (0..2 * N).collect();
        assert_eq!(got.len(), expected.len(), "lost or doubled messages");
        assert_eq!(got, expected);
    });
}

/// receiver.rs / channels.md cancel safety, on a tokio runtime of its own: a klaw `recv`
/// dropped by `tokio::time::timeout` takes nothing, and leaves no waiter behind that a later
/// message would go to: with two receivers, the one whose `recv` timed out is not served, and
/// the other, waiting, gets the message.
#[test]
fn a_klaw_recv_dropped_by_tokio_timeout_takes_no_message_and_leaves_no_waiter() {
    with_deadline(|| {
        let foreign = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        foreign.block_on(async {
            let (tx, rx) = klaw::channel::bounded::<u32>(4);
            let other = rx.clone();
            let timed_out = tokio::time::timeout(ms(10), rx.recv()).await;
            assert!(timed_out.is_err());
            let waiting = tokio::spawn(async move { other.recv().await });
            tokio::task::yield_now().await;
            tx.send(1).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(10), waiting).await;
            assert_eq!(got.expect("the waiting receiver was never served").unwrap(), Ok(1));
            assert_eq!(rx.try_recv(), Err(klaw::channel::TryRecvError::Empty));
            assert_eq!(rx.len(), 0);
        });
    });
}

// ---------------------------------------------------------------------------------------------
// klaw's block_on inside tokio's
// ---------------------------------------------------------------------------------------------

/// tokio_context.rs: `Runtime::block_on` enters the klaw runtime's tokio context for the call.
/// Called inside a tokio runtime's own `block_on` (not a task: the one place tokio lets another
/// runtime block), tokio types made in the body use klaw's tokio runtime, and after the call the
/// outer tokio runtime is current again and its timers still work.
#[test]
fn klaw_block_on_inside_tokio_s_block_on_uses_klaw_s_tokio_and_restores_the_outer() {
    with_deadline(|| {
        let outer = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outer_id = outer.handle().id();
        let rt = tokio_runtime(2);
        let (inside, after) = outer.block_on(async {
            let inside = rt.block_on(async {
                let (mut client, mut server) = tcp_pair().await;
                client.write_all(b"in").await.unwrap();
                let mut buffer = [0u8; 2];
                server.read_exact(&mut buffer).await.unwrap();
                tokio::time::sleep(ms(1)).await;
                tokio::runtime::Handle::current().id()
            });
            tokio::time::sleep(ms(1)).await;
            (inside, tokio::runtime::Handle::current().id())
        });
        assert_ne!(inside, outer_id, "klaw's block_on did not enter its own tokio runtime");
        assert_eq!(after, outer_id);
        drop(rt);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            outer.block_on(async { tokio::time::sleep(ms(1)).await })
        }));
        assert!(caught.is_ok(), "{:?}", caught.map_err(|p| panic_text(&*p)));
    });
}
