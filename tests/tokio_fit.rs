//! klaw's `tokio` feature as a demanding tokio user meets it: tokio's timers, sockets
//! and pipes under klaw's deadlines and scopes, `tokio::spawn`/`spawn_blocking`/`block_in_place`
//! inside klaw tasks, tokio's `Handle::current()` on every kind of klaw thread, klaw channels
//! between tokio and klaw tasks under cancellation, shutdown with tokio resources held, nested
//! runtimes both ways, and the entry macros with `tokio`.
//!
//! Promises under test: book/src/io.md ("tokio's crates: the `tokio` feature", "`tokio::spawn`
//! escapes the scope"), book/src/from_tokio.md, book/src/runtime.md ("Shutting down"),
//! `klaw-rt/src/runtime/tokio_context.rs`, and the `tokio` feature's comment in `Cargo.toml`.
//!
//! (tokio's `sync` feature is not enabled by `cargo test -p klaw --features tokio`: klaw's
//! dev-dependency on tokio has `net`, `io-util`, `time`, `rt`. The `tokio::sync::mpsc` probe
//! asked for is replaced by the nearest tokio-owned wait available: `tokio::io::duplex`, whose
//! read is woken by tokio's own code, and a `tokio::net::UdpSocket` receive.)
#![cfg(feature = "tokio")]
#![allow(clippy::print_stderr)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Flag, SetOnDrop, XorShift, ms, with_deadline, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A klaw runtime with the tokio option.
fn tokio_runtime(workers: usize) -> klaw::Runtime {
    klaw::Runtime::builder().workers(workers).tokio(true).build().expect("runtime with tokio")
}

/// Runs the future `make` gives as a klaw task on a runtime with the tokio option, within
/// `common::DEADLINE`, then drops the runtime (inside the deadline too).
fn in_tokio_task<F, Fut>(workers: usize, make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_deadline(move || {
        let rt = tokio_runtime(workers);
        let outcome = rt.block_on(rt.spawn(make()));
        drop(rt);
        match outcome {
            Ok(()) => {}
            Err(klaw::TaskError::Panicked(message)) => panic!("{message}"),
            Err(other) => panic!("the test's task ended with {other:?}"),
        }
    });
}

/// Waits (really: a std thread sleep) until `done` holds, or panics after `limit`.
fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(ms(2));
    }
}

/// Sockets of this process whose local or remote TCP port is `port` (Linux: `/proc`). A closed
/// socket the kernel keeps in TIME_WAIT belongs to no process and is not counted.
fn open_sockets_on(port: u16) -> usize {
    let mut inodes = BTreeSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 {
                continue;
            }
            let port_of = |address: &str| {
                address.rsplit(':').next().and_then(|hex| u16::from_str_radix(hex, 16).ok())
            };
            if port_of(fields[1]) == Some(port) || port_of(fields[2]) == Some(port) {
                if let Ok(inode) = fields[9].parse::<u64>() {
                    if inode != 0 {
                        inodes.insert(inode);
                    }
                }
            }
        }
    }
    let mut open = 0;
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if let Some(inode) =
                    target.strip_prefix("socket:[").and_then(|rest| rest.strip_suffix(']'))
                {
                    if inode.parse::<u64>().is_ok_and(|inode| inodes.contains(&inode)) {
                        open += 1;
                    }
                }
            }
        }
    }
    open
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("<unnamed>").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Deadlines over tokio futures
// ---------------------------------------------------------------------------------------------

/// io.md: "klaw's scopes, deadlines and `select!` govern their futures" (from_tokio.md says the
/// same). A `tokio::time::sleep` of an hour under `move_on_after(30ms)` in a klaw task: the
/// region gives `None`, and the tokio future (with a guard beside it) is dropped by the time
/// `move_on_after` returns.
#[test]
fn tokio_sleep_under_move_on_after_is_cancelled_and_dropped_before_it_returns() {
    in_tokio_task(2, || async {
        let dropped = Flag::default();
        let guard = SetOnDrop(dropped.clone());
        let outcome = klaw::cancel::move_on_after(ms(30), async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            7
        })
        .await;
        assert_eq!(outcome, None);
        assert!(dropped.is_set(), "move_on_after returned before the tokio sleep was dropped");
    });
}

/// io.md / from_tokio.md (`tokio::time::timeout` → `klaw::cancel::fail_after`): a tokio
/// `TcpListener::accept` under `fail_after(30ms)` with no client fails with `Elapsed`, and the
/// listener moved into the future is closed when `fail_after` returns: no socket of this process
/// is left on its port, and the port can be bound again.
#[test]
fn tokio_accept_under_fail_after_is_cancelled_and_the_listener_closed() {
    in_tokio_task(2, || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(open_sockets_on(port), 1);
        let outcome =
            klaw::cancel::fail_after(ms(30), async move { listener.accept().await.map(|_| ()) })
                .await;
        let elapsed = outcome.expect_err("nobody connects: the deadline must win");
        assert_eq!(elapsed.after(), ms(30));
        assert_eq!(open_sockets_on(port), 0, "the listener outlived fail_after");
        let again = tokio::net::TcpListener::bind(("127.0.0.1", port)).await;
        assert!(again.is_ok(), "the port cannot be bound again: {again:?}");
    });
}

/// scopes.md: "`timeout = "5s"` cancels everything (reason `Deadline`) after 5 s; the scope fails
/// with `Error::Elapsed`", and a scope returns only after its children ended. Three children wait
/// on tokio (a `tokio::io::duplex` read, standing in for `tokio::sync::mpsc::recv`; a UDP
/// receive; a tokio sleep) and the body on a tokio sleep too: the scope fails with `Elapsed`,
/// and every tokio future is dropped before `scope!` returns.
#[test]
fn tokio_waits_in_a_scope_with_a_timeout_are_dropped_before_the_scope_returns() {
    in_tokio_task(2, || async {
        let flags: Vec<Flag> = (0..4).map(|_| Flag::default()).collect();
        let (mut reader, writer) = tokio::io::duplex(64);
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp_port = udp.local_addr().unwrap().port();
        let guards: Vec<SetOnDrop> = flags.iter().cloned().map(SetOnDrop).collect();
        let mut guards = guards.into_iter();
        let (g0, g1, g2, g3) = (
            guards.next().unwrap(),
            guards.next().unwrap(),
            guards.next().unwrap(),
            guards.next().unwrap(),
        );
        let result: Result<(), klaw::Error> = klaw::scope!(timeout = "40ms", |s| {
            s.spawn(async move {
                let _g = g0;
                let mut buffer = [0u8; 8];
                let _ = reader.read(&mut buffer).await;
                panic!("the duplex read returned: nothing was written");
            });
            s.spawn(async move {
                let _g = g1;
                let mut buffer = [0u8; 8];
                let _ = udp.recv_from(&mut buffer).await;
                panic!("the UDP receive returned: nothing was sent");
            });
            s.spawn(async move {
                let _g = g2;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
            let _g = g3;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        assert!(matches!(result, Err(klaw::Error::Elapsed(_))), "{result:?}");
        for (index, flag) in flags.iter().enumerate() {
            assert!(flag.is_set(), "tokio future {index} outlived its scope");
        }
        assert!(
            std::net::UdpSocket::bind(("127.0.0.1", udp_port)).is_ok(),
            "the UDP socket outlived its scope"
        );
        drop(writer);
    });
}

/// io.md: tokio's futures under `select!`, whose `after` arm is klaw's timer. The losing arm's
/// tokio future (a sleep and a TCP read) is dropped when `select!` returns.
#[test]
fn select_after_beats_tokio_futures_and_drops_them() {
    in_tokio_task(2, || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client =
            tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (_server, _) = listener.accept().await.unwrap();
        let dropped = Flag::default();
        let guard = SetOnDrop(dropped.clone());
        let mut buffer = [0u8; 4];
        let won = klaw::select! {
            async move { let _g = guard; tokio::time::sleep(Duration::from_secs(3600)).await } -> _ => "tokio sleep",
            client.read(&mut buffer) -> _ => "read",
            after(ms(20)) => "after",
        };
        assert_eq!(won, "after");
        assert!(dropped.is_set(), "the losing tokio sleep outlived select!");
    });
}

/// from_tokio.md: `JoinHandle::abort` → cancelling a klaw task. A klaw task blocked on a tokio
/// TCP read is cancelled through its handle: awaiting the handle gives `Cancelled`, and by then
/// its socket is closed (the peer reads end-of-stream).
#[test]
fn a_klaw_task_cancelled_in_a_tokio_read_closes_its_socket_before_its_handle_resolves() {
    in_tokio_task(2, || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        drop(listener);
        let dropped = Flag::default();
        let guard = SetOnDrop(dropped.clone());
        let (started_tx, started_rx) = klaw::channel::oneshot::channel();
        let reader = klaw::Handle::current().unwrap().spawn(async move {
            let _g = guard;
            let mut client = client;
            let mut buffer = [0u8; 4];
            let _ = started_tx.send(());
            let _ = client.read(&mut buffer).await;
        });
        started_rx.await.unwrap();
        reader.cancel("enough");
        let outcome = reader.await;
        assert!(matches!(outcome, Err(klaw::TaskError::Cancelled(_))), "{outcome:?}");
        assert!(dropped.is_set());
        let mut buffer = [0u8; 4];
        let read =
            klaw::cancel::fail_after(Duration::from_secs(10), server.read(&mut buffer)).await;
        assert!(matches!(read, Ok(Ok(0))), "the cancelled task's socket is still open: {read:?}");
    });
}

/// io.md's TCP example, grown: an echo server (an accept loop with one child per connection, in
/// a scope of its own) and two clients, all children of one scope; the body cancels the scope
/// after some echoes. The scope returns `Cancelled`, and afterwards no socket of this process is
/// left on the port (listener, accepted and client sockets all closed) and the port binds again.
#[test]
fn an_echo_server_and_clients_in_one_scope_leave_no_socket_open_when_it_is_cancelled() {
    in_tokio_task(2, || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let echoes = Arc::new(AtomicUsize::new(0));
        let (echoed_tx, echoed_rx) = klaw::channel::unbounded::<usize>();
        let result: Result<(), klaw::Error> = klaw::scope!(|s| {
            s.spawn(klaw::Task::fallible(async move {
                klaw::scope!(|connections| {
                    loop {
                        let (mut socket, _) = listener.accept().await?;
                        connections.spawn(async move {
                            let mut buffer = [0u8; 64];
                            loop {
                                let n = match socket.read(&mut buffer).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => n,
                                };
                                if socket.write_all(&buffer[..n]).await.is_err() {
                                    return;
                                }
                            }
                        });
                    }
                    #[allow(unreachable_code)]
                    Ok(())
                })
            }));
            for client in 0..2usize {
                let echoes = echoes.clone();
                let echoed_tx = echoed_tx.clone();
                s.spawn(async move {
                    let mut stream =
                        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                    for round in 0usize.. {
                        let message = format!("client {client} round {round}");
                        // The cancellation reaches the server and the clients in any order, so a
                        // client polled on the other worker can see its connection closed (an
                        // early end of file, or a reset) before its own cancellation lands: that
                        // ends it quietly. Before the cancellation nothing closes a connection,
                        // and the count of echoes below shows the exchange worked.
                        if stream.write_all(message.as_bytes()).await.is_err() {
                            return;
                        }
                        let mut buffer = vec![0u8; message.len()];
                        if stream.read_exact(&mut buffer).await.is_err() {
                            return;
                        }
                        assert_eq!(buffer, message.as_bytes());
                        let total = echoes.fetch_add(1, SeqCst) + 1;
                        let _ = echoed_tx.send(total).await;
                    }
                });
            }
            while echoed_rx.recv().await? < 10 {}
            assert_eq!(open_sockets_on(port), 5, "listener, 2 clients, 2 accepted");
            s.cancel("enough echoes");
            std::future::pending::<()>().await;
            Ok(())
        });
        assert!(
            matches!(result, Err(klaw::Error::Task { error: klaw::TaskError::Cancelled(_), .. })),
            "{result:?}"
        );
        assert!(echoes.load(SeqCst) >= 10);
        assert_eq!(open_sockets_on(port), 0, "a socket outlived the cancelled scope");
        let again = tokio::net::TcpListener::bind(("127.0.0.1", port)).await;
        assert!(again.is_ok(), "the port cannot be bound again: {again:?}");
    });
}

// ---------------------------------------------------------------------------------------------
// tokio's own spawning inside klaw tasks
// ---------------------------------------------------------------------------------------------

/// io.md, "`tokio::spawn` escapes the scope": "The spawned future is not a child: the scope does
/// not wait for it, its failure fails nothing, and cancelling the scope does not reach it."
/// A tokio task spawned in a scope that is then cancelled runs on after `scope!` returned, on
/// the `klaw-tokio` thread, and a panic in it fails nothing.
#[test]
fn tokio_spawn_in_a_cancelled_scope_runs_on_after_it_and_fails_nothing() {
    in_tokio_task(2, || async {
        let (go_tx, go_rx) = klaw::channel::oneshot::channel::<()>();
        let (done_tx, done_rx) = klaw::channel::oneshot::channel::<String>();
        let result: Result<(), klaw::Error> = klaw::scope!(|s| {
            tokio::spawn(async move {
                go_rx.await.unwrap();
                let _ = done_tx.send(thread_name());
            });
            tokio::spawn(async { panic!("a tokio task's panic fails no scope") });
            s.cancel("stop");
            std::future::pending::<()>().await;
            Ok(())
        });
        assert!(matches!(result, Err(klaw::Error::Task { .. })), "{result:?}");
        go_tx.send(()).unwrap();
        let thread = klaw::cancel::fail_after(Duration::from_secs(10), done_rx).await;
        assert_eq!(thread.unwrap().unwrap(), "klaw-tokio");
    });
}

/// `tokio_context.rs`: "Shuts the tokio runtime down without waiting: its worker drops what
/// `tokio::spawn` left there and exits on its own." A tokio task a klaw task spawned and left
/// pending (holding a guard and a tokio timer) is dropped once the klaw runtime is dropped.
#[test]
fn a_tokio_spawned_task_is_dropped_when_the_klaw_runtime_shuts_down() {
    with_deadline(|| {
        let rt = tokio_runtime(1);
        let dropped = Flag::default();
        let guard = SetOnDrop(dropped.clone());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        rt.block_on(async move {
            tokio::spawn(async move {
                let _g = guard;
                started_tx.send(()).unwrap();
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
        });
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(!dropped.is_set());
        drop(rt);
        eventually(Duration::from_secs(10), "the tokio task was dropped", || dropped.is_set());
    });
}

/// Not in the book (which names `tokio::spawn` only, and tokio's blocking pool for
/// `tokio::fs`): `tokio::task::spawn_blocking` in a klaw task works, on the tokio runtime's
/// blocking pool, and, like `tokio::spawn`, escapes klaw's cancellation: a deadline that drops
/// its `JoinHandle` leaves the closure running.
#[test]
fn tokio_spawn_blocking_in_a_klaw_task_works_and_escapes_cancellation() {
    in_tokio_task(2, || async {
        let value = tokio::task::spawn_blocking(|| (6 * 7, thread_name())).await.unwrap();
        assert_eq!(value.0, 42);
        assert!(value.1.starts_with("klaw-tokio"), "ran on {}", value.1);

        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let finished_in = finished.clone();
        let outcome = klaw::cancel::move_on_after(
            ms(20),
            tokio::task::spawn_blocking(move || {
                release_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                finished_in.store(true, SeqCst);
            }),
        )
        .await;
        assert!(outcome.is_none());
        assert!(!finished.load(SeqCst));
        release_tx.send(()).unwrap();
        let start = Instant::now();
        while !finished.load(SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(10), "the closure never finished");
            klaw::time::sleep(ms(2)).await;
        }
    });
}

/// Not in the book: `tokio::task::block_in_place` in a klaw task (and in a klaw blocking child)
/// does not panic; it runs the closure inline, on the calling klaw thread, blocking that klaw
/// worker (tokio's own would hand the worker's queue to another thread first).
#[test]
fn tokio_block_in_place_in_a_klaw_task_runs_inline_on_the_worker() {
    in_tokio_task(2, || async {
        let here = std::thread::current().id();
        let (value, there, name) =
            tokio::task::block_in_place(|| (6 * 7, std::thread::current().id(), thread_name()));
        assert_eq!(value, 42);
        assert_eq!(there, here, "block_in_place moved the closure to another thread");
        assert!(name.starts_with("klaw-worker-"), "{name}");
        let in_pool = klaw::scope!(|s| {
            Ok(s.spawn_blocking(|| tokio::task::block_in_place(thread_name)).await?)
        })
        .unwrap();
        assert!(in_pool.starts_with("klaw-blocking-"), "{in_pool}");
    });
}

// ---------------------------------------------------------------------------------------------
// tokio's Handle on klaw's threads
// ---------------------------------------------------------------------------------------------

/// io.md: "Every thread that polls klaw's tasks (each worker, each blocking-pool thread, the
/// thread inside `block_on`, which polls `main`'s body) has entered its context". tokio's
/// `Handle::current()` is found, and is the one tokio runtime, in a task body, a spawned child,
/// a blocking child, a local child, a `BlockingTask` awaited inline, a `#[klaw::task(blocking)]`
/// and the `block_on` thread; and a blocking child can use it to run tokio I/O.
#[test]
fn tokio_handle_current_is_the_runtime_s_own_in_every_kind_of_klaw_child() {
    #[klaw::task(blocking)]
    fn blocking_task() -> tokio::runtime::Id {
        tokio::runtime::Handle::current().id()
    }

    with_deadline(|| {
        let rt = tokio_runtime(2);
        let in_block_on = rt.block_on(async { tokio::runtime::Handle::current().id() });
        let ids = rt.block_on(rt.spawn(async {
            let id = || tokio::runtime::Handle::current().id();
            let in_task = id();
            let children = klaw::scope!(|s| {
                let spawned = s.spawn(async move { id() });
                let blocking = s.spawn_blocking(id);
                let local = s.spawn_local(async move { id() });
                let marked = s.spawn(blocking_task());
                // A blocking child drives tokio I/O with the runtime's handle.
                let io = s.spawn_blocking(|| {
                    let handle = tokio::runtime::Handle::current();
                    handle.block_on(async {
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                        let address = listener.local_addr().unwrap();
                        let (client, accepted) = futures_lite::future::zip(
                            tokio::net::TcpStream::connect(address),
                            listener.accept(),
                        )
                        .await;
                        client.is_ok() && accepted.is_ok()
                    })
                });
                Ok((spawned.await?, blocking.await?, local.await?, marked.await?, io.await?))
            })
            .unwrap();
            let inline = klaw::task::BlockingTask::new(id).await.unwrap();
            (in_task, children, inline)
        }));
        let (in_task, (spawned, blocking, local, marked, io), inline) = ids.unwrap();
        for (what, id) in [
            ("task", in_task),
            ("spawned child", spawned),
            ("blocking child", blocking),
            ("local child", local),
            ("#[klaw::task(blocking)]", marked),
            ("BlockingTask awaited", inline),
        ] {
            assert_eq!(id, in_block_on, "{what} sees another tokio runtime");
        }
        assert!(io, "tokio I/O driven from a blocking child failed");
    });
}

// ---------------------------------------------------------------------------------------------
// klaw channels between tokio tasks and klaw tasks
// ---------------------------------------------------------------------------------------------

/// What happened to every value of a channel run.
#[derive(Default)]
struct Ledger {
    /// `send` returned `Ok`.
    sent: Mutex<Vec<u64>>,
    /// `send` returned `Err`, and the error gave the value back.
    handed_back: Mutex<Vec<u64>>,
    /// The `send` future was dropped by a deadline: not sent (sender.rs: "the value was not
    /// sent").
    cancelled: Mutex<Vec<u64>>,
    /// A `recv` gave it.
    received: Mutex<Vec<u64>>,
    /// Taken with `try_recv` after the channel was closed.
    drained: Mutex<Vec<u64>>,
}

impl Ledger {
    fn push(list: &Mutex<Vec<u64>>, value: u64) {
        list.lock().unwrap().push(value);
    }
    fn received(&self) -> usize {
        self.received.lock().unwrap().len()
    }
    /// Every value had exactly one fate, and the values received are exactly those sent.
    fn check(&self, n: u64, label: &str) {
        let take = |list: &Mutex<Vec<u64>>| list.lock().unwrap().clone();
        let mut fates = take(&self.sent);
        fates.extend(take(&self.handed_back));
        fates.extend(take(&self.cancelled));
        fates.sort_unstable();
        assert_eq!(fates, (0..n).collect::<Vec<_>>(), "{label}: a value had no fate, or two");
        let mut sent = take(&self.sent);
        sent.sort_unstable();
        let mut got = take(&self.received);
        got.extend(take(&self.drained));
        got.sort_unstable();
        assert_eq!(got, sent, "{label}: values sent and values received differ (lost or doubled)");
    }
}

/// Awaits `future` under a deadline picked by `pick`: none; klaw's `move_on_after` of a few
/// microseconds (or zero, which cancels even a ready future); or tokio's `timeout` (1 ms, its
/// timer's grain). klaw's deadline works on any executor (from_tokio.md), tokio's needs the
/// tokio context, which a klaw thread with the option has.
async fn with_random_deadline<F: std::future::Future>(pick: u64, future: F) -> Option<F::Output> {
    match pick % 5 {
        0 | 1 => Some(future.await),
        2 => klaw::cancel::move_on_after(Duration::from_micros(pick % 40), future).await,
        3 => klaw::cancel::move_on_after(Duration::ZERO, future).await,
        _ => tokio::time::timeout(ms(1), future).await.ok(),
    }
}

async fn produce(tx: klaw::channel::Sender<u64>, n: u64, ledger: Arc<Ledger>, seed: u64) {
    let mut rng = XorShift(seed);
    for value in 0..n {
        match with_random_deadline(rng.next(), tx.send(value)).await {
            Some(Ok(())) => Ledger::push(&ledger.sent, value),
            Some(Err(error)) => Ledger::push(&ledger.handed_back, error.into_inner()),
            None => Ledger::push(&ledger.cancelled, value),
        }
        if rng.below(8) == 0 {
            tokio::task::yield_now().await;
        }
    }
}

/// Receives under random deadlines. With `stop_after`, once that many are received it closes
/// the channel and drains what is queued; otherwise it runs until the channel closes (or its
/// task is cancelled from outside).
async fn consume(
    rx: klaw::channel::Receiver<u64>,
    ledger: Arc<Ledger>,
    stop_after: Option<usize>,
    seed: u64,
) {
    let mut rng = XorShift(seed);
    loop {
        if stop_after.is_some_and(|stop| ledger.received() >= stop) {
            rx.close();
            while let Ok(value) = rx.try_recv() {
                Ledger::push(&ledger.drained, value);
            }
            return;
        }
        match with_random_deadline(rng.next(), rx.recv()).await {
            Some(Ok(value)) => Ledger::push(&ledger.received, value),
            Some(Err(_closed)) => return,
            None => {}
        }
    }
}

/// Where the tokio side runs: a tokio runtime of its own with two workers (where klaw's
/// channels recognise tokio's tasks, channels.md), or klaw's own tokio runtime (`tokio::spawn`
/// from inside the klaw runtime: the `klaw-tokio` thread).
#[derive(Clone, Copy, Debug)]
enum TokioSide {
    Foreign,
    Own,
}

/// One run: a producer and a consumer on opposite sides, `n` values, random deadlines on both
/// sides, and the consumer either stopping cleanly (close, drain) or cancelled abruptly (klaw
/// `cancel` or tokio `abort`) while a spare receiver keeps the queue, closed and drained after.
fn channel_run(
    rt: &klaw::Runtime,
    foreign: &tokio::runtime::Runtime,
    side: TokioSide,
    klaw_sends: bool,
    abrupt: bool,
    capacity: usize,
    seed: u64,
) {
    let label = format!(
        "side {side:?}, klaw sends {klaw_sends}, abrupt {abrupt}, capacity {capacity}, seed {seed}"
    );
    let n = 200u64;
    let stop = 60usize;
    rt.block_on(async {
        let ledger = Arc::new(Ledger::default());
        let (tx, rx) = klaw::channel::bounded::<u64>(capacity);
        let spare = abrupt.then(|| rx.clone());
        let on_tokio =
            |future: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| match side {
                TokioSide::Foreign => foreign.spawn(future),
                TokioSide::Own => tokio::spawn(future),
            };
        let stop_after = (!abrupt).then_some(stop);
        let producer = produce(tx, n, ledger.clone(), seed);
        let consumer = consume(rx, ledger.clone(), stop_after, seed.wrapping_mul(31) | 1);
        let klaw_rt = klaw::Handle::current().unwrap();
        // Which side is which.
        let (klaw_task, tokio_task) = if klaw_sends {
            (klaw_rt.spawn(producer), on_tokio(Box::pin(consumer)))
        } else {
            (klaw_rt.spawn(consumer), on_tokio(Box::pin(producer)))
        };
        if abrupt {
            // Cancel the consumer once it has received `stop` (or the producer is done).
            loop {
                let producer_done =
                    if klaw_sends { klaw_task.is_finished() } else { tokio_task.is_finished() };
                if ledger.received() >= stop || producer_done {
                    break;
                }
                klaw::time::sleep(Duration::from_micros(200)).await;
            }
            if klaw_sends {
                tokio_task.abort();
            } else {
                klaw_task.cancel("consumer cancelled");
            }
        }
        // Both ends end now: the consumer cancelled (abrupt) or done, the producer on its own.
        let ended = klaw::cancel::fail_after(Duration::from_secs(20), async {
            let klaw_outcome = klaw_task.await;
            let tokio_outcome = tokio_task.await;
            let consumer_cancelled = abrupt;
            if klaw_sends {
                assert!(klaw_outcome.is_ok(), "{label}: the klaw producer: {klaw_outcome:?}");
                assert!(
                    tokio_outcome.is_ok()
                        || (consumer_cancelled
                            && tokio_outcome.as_ref().unwrap_err().is_cancelled()),
                    "{label}: the tokio consumer: {tokio_outcome:?}"
                );
            } else {
                assert!(tokio_outcome.is_ok(), "{label}: the tokio producer: {tokio_outcome:?}");
                assert!(
                    klaw_outcome.is_ok()
                        || (consumer_cancelled
                            && matches!(klaw_outcome, Err(klaw::TaskError::Cancelled(_)))),
                    "{label}: the klaw consumer: {klaw_outcome:?}"
                );
            }
        });
        // The producer may wait on a full channel that only the spare receiver holds open:
        // close it (from here, concurrently) once the consumer is gone.
        let spare_closer = async {
            if let Some(spare) = &spare {
                // Give the cancel a moment to land, then close and drain.
                klaw::time::sleep(ms(1)).await;
                spare.close();
            }
            std::future::pending::<Result<(), klaw::time::Elapsed>>().await
        };
        let ended = futures_lite::future::or(ended, spare_closer).await;
        if let Some(spare) = spare {
            while let Ok(value) = spare.try_recv() {
                Ledger::push(&ledger.drained, value);
            }
        }
        assert!(ended.is_ok(), "{label}: an end never finished");
        ledger.check(n, &label);
    });
}

fn run_channel_rounds(klaw_sends: bool) {
    with_deadline(move || {
        let rt = tokio_runtime(2);
        let foreign = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for side in [TokioSide::Foreign, TokioSide::Own] {
            for abrupt in [false, true] {
                for capacity in [1, 3] {
                    for _ in 0..6 {
                        seed = XorShift(seed).next();
                        channel_run(&rt, &foreign, side, klaw_sends, abrupt, capacity, seed);
                    }
                }
            }
        }
        foreign.shutdown_background();
    });
}

/// from_tokio.md: "its channels, timers and `select!` work under any executor, tokio's
/// included"; sender.rs/receiver.rs cancel safety: a dropped `send` did not send, a dropped
/// `recv` loses no message. A klaw task sends to a tokio task (on a tokio runtime of its own,
/// and on klaw's `klaw-tokio` thread), both under random deadlines (klaw's and tokio's), the
/// consumer either closing and draining or aborted by tokio mid-wait with a spare receiver:
/// every value is sent-and-received exactly once, handed back, or reported not sent.
#[test]
fn klaw_channel_from_a_klaw_task_to_a_tokio_task_loses_nothing_under_cancellation() {
    run_channel_rounds(true);
}

/// The other direction: a tokio task sends to a klaw task, with the klaw consumer cancelled
/// through its handle mid-wait (or closing and draining), deadlines on both sides. Same promise,
/// same accounting.
#[test]
fn klaw_channel_from_a_tokio_task_to_a_klaw_task_loses_nothing_under_cancellation() {
    run_channel_rounds(false);
}

// ---------------------------------------------------------------------------------------------
// Shutdown with tokio resources held
// ---------------------------------------------------------------------------------------------

/// runtime.md, "Shutting down": shutdown "cancels what is left with `CancelReason::Shutdown`",
/// and tokio_context.rs: the tokio runtime is shut down "after klaw's own tasks are gone, so
/// none of them meets a tokio resource whose driver has stopped". Five detached klaw tasks wait
/// on a tokio sleep, a tokio interval, a listener's accept and both ends of a TCP connection:
/// `shutdown` returns without panic or hang, reports all five cancelled and none abandoned,
/// every one was dropped, and no socket is left on the port.
#[test]
fn runtime_shutdown_while_klaw_tasks_hold_tokio_timers_and_sockets_drops_them_all() {
    with_deadline(|| {
        let rt = tokio_runtime(2);
        let flags: Vec<Flag> = (0..5).map(|_| Flag::default()).collect();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let guards: Vec<SetOnDrop> = flags.iter().cloned().map(SetOnDrop).collect();
        let port = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let (client, accepted) = futures_lite::future::zip(
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
                listener.accept(),
            )
            .await;
            let (mut client, mut server) = (client.unwrap(), accepted.unwrap().0);
            let handle = klaw::Handle::current().unwrap();
            let mut guards = guards.into_iter();
            let started = started_tx.clone();
            let guard = guards.next().unwrap();
            let _detached = handle.spawn(async move {
                let _g = guard;
                started.send(()).unwrap();
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
            let started = started_tx.clone();
            let guard = guards.next().unwrap();
            let _detached = handle.spawn(async move {
                let _g = guard;
                let mut interval = tokio::time::interval(ms(1));
                started.send(()).unwrap();
                loop {
                    interval.tick().await;
                }
            });
            let started = started_tx.clone();
            let guard = guards.next().unwrap();
            let _detached = handle.spawn(async move {
                let _g = guard;
                started.send(()).unwrap();
                let _ = listener.accept().await;
                std::future::pending::<()>().await;
            });
            let started = started_tx.clone();
            let guard = guards.next().unwrap();
            let _detached = handle.spawn(async move {
                let _g = guard;
                started.send(()).unwrap();
                let mut buffer = [0u8; 8];
                let _ = client.read(&mut buffer).await;
                std::future::pending::<()>().await;
            });
            let started = started_tx;
            let guard = guards.next().unwrap();
            let _detached = handle.spawn(async move {
                let _g = guard;
                started.send(()).unwrap();
                let mut buffer = [0u8; 8];
                let _ = server.read(&mut buffer).await;
                std::future::pending::<()>().await;
            });
            port
        });
        for _ in 0..5 {
            started_rx.recv_timeout(Duration::from_secs(10)).expect("a task did not start");
        }
        assert_eq!(open_sockets_on(port), 3);
        let report = rt.shutdown(ms(20));
        assert_eq!((report.cancelled, report.abandoned), (5, 0), "{report:?}");
        for (index, flag) in flags.iter().enumerate() {
            assert!(flag.is_set(), "task {index}'s tokio resource was not dropped by shutdown");
        }
        assert_eq!(open_sockets_on(port), 0, "a socket outlived the runtime");
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    });
}

/// runtime.md: shutdown cancels, and "a `shield` lets cleanup finish" (its Ctrl-C section; the
/// same cancellation); tokio_context.rs: the tokio runtime is shut down last, after klaw's tasks.
/// A task whose cleanup, shielded, waits on a tokio timer and writes to a tokio socket when
/// shutdown cancels it: the cleanup completes (the peer reads its goodbye), and the report counts
/// the task cancelled, not abandoned.
#[test]
fn shutdown_lets_a_shielded_cleanup_on_tokio_io_finish() {
    use std::io::Read;
    with_deadline(|| {
        let rt = tokio_runtime(2);
        let cleaned = Flag::default();
        let cleaned_in = cleaned.clone();
        let peer_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = peer_listener.local_addr().unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let _task = rt.spawn(async move {
            let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
            klaw::cancel::shield(async {
                started_tx.send(()).unwrap();
                // Shutdown cancels the task during this sleep; the shield holds it open (inside
                // it `is_cancelled()` is false, shield.rs).
                tokio::time::sleep(ms(100)).await;
                client.write_all(b"bye").await.unwrap();
                cleaned_in.set();
            })
            .await;
            std::future::pending::<()>().await;
        });
        let (mut peer, _) = peer_listener.accept().unwrap();
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let report = rt.shutdown(Duration::ZERO);
        assert!(cleaned.is_set(), "the shielded tokio cleanup did not finish: {report:?}");
        assert_eq!((report.cancelled, report.abandoned), (1, 0), "{report:?}");
        peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buffer = [0u8; 3];
        peer.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer, b"bye");
    });
}

// ---------------------------------------------------------------------------------------------
// Runtimes inside runtimes
// ---------------------------------------------------------------------------------------------

/// tokio_context.rs: guards "must be dropped in the reverse order of entering (tokio checks it),
/// which a guard held ... for one `block_on` call always is"; the klaw runtime's tokio runtime is
/// shut down "without waiting" because "tokio panics if a runtime is dropped the blocking way
/// inside an async context". A klaw runtime with the option, built, used (tokio I/O in a klaw
/// task) and dropped inside a tokio runtime's `spawn_blocking`: no panic; inside `block_on`
/// tokio's current handle is klaw's own, and after it the outer tokio runtime's again.
#[test]
fn a_klaw_runtime_built_and_dropped_inside_tokio_spawn_blocking() {
    with_deadline(|| {
        let outer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outer_id = outer.handle().id();
        let result = outer.block_on(async move {
            tokio::task::spawn_blocking(move || {
                let rt = tokio_runtime(2);
                let (in_block_on, in_task, echoed) = rt.block_on(async {
                    let in_block_on = tokio::runtime::Handle::current().id();
                    let task = klaw::Handle::current().unwrap().spawn(async {
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                        let address = listener.local_addr().unwrap();
                        let (client, accepted) = futures_lite::future::zip(
                            tokio::net::TcpStream::connect(address),
                            listener.accept(),
                        )
                        .await;
                        let (mut client, mut server) = (client.unwrap(), accepted.unwrap().0);
                        client.write_all(b"hi").await.unwrap();
                        let mut buffer = [0u8; 2];
                        server.read_exact(&mut buffer).await.unwrap();
                        tokio::time::sleep(ms(1)).await;
                        (tokio::runtime::Handle::current().id(), buffer)
                    });
                    let (in_task, buffer) = task.await.unwrap();
                    (in_block_on, in_task, buffer)
                });
                let after = tokio::runtime::Handle::current().id();
                drop(rt);
                (in_block_on, in_task, echoed, after)
            })
            .await
        });
        let (in_block_on, in_task, echoed, after) = result.expect("the blocking closure panicked");
        assert_ne!(in_block_on, outer_id, "block_on did not enter klaw's tokio runtime");
        assert_eq!(in_task, in_block_on);
        assert_eq!(&echoed, b"hi");
        assert_eq!(after, outer_id, "block_on did not restore the outer tokio context");
    });
}

/// The same from tokio's async context (a `tokio::spawn`ed task, where tokio forbids blocking
/// drops of its own runtimes): a klaw runtime with the option is built, blocked on and dropped
/// there without a panic (tokio_context.rs: "a klaw runtime may be dropped" in an async
/// context).
#[test]
fn a_klaw_runtime_built_and_dropped_inside_a_tokio_task() {
    with_deadline(|| {
        let outer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let value = outer.block_on(async {
            tokio::spawn(async {
                let rt = tokio_runtime(1);
                let value = rt.block_on(rt.spawn(async {
                    tokio::time::sleep(ms(1)).await;
                    6 * 7
                }));
                drop(rt);
                value
            })
            .await
        });
        assert_eq!(value.expect("the tokio task panicked"), Ok(42));
    });
}

/// io.md: blocking-pool threads are in the klaw runtime's tokio context "for good". A tokio
/// runtime of the user's own (current-thread and multi-thread) built inside a klaw blocking
/// child: `block_on`, `spawn` and tokio I/O work there, its handle is current inside its
/// `block_on` and klaw's again after it, and dropping it does not panic.
#[test]
fn a_tokio_runtime_built_inside_a_klaw_blocking_child() {
    in_tokio_task(2, || async {
        let klaw_tokio = tokio::runtime::Handle::current().id();
        let checks = klaw::scope!(|s| {
            Ok(s.spawn_blocking(move || {
                let mut checks = Vec::new();
                for multi in [false, true] {
                    let own = if multi {
                        tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(1)
                            .enable_all()
                            .build()
                    } else {
                        tokio::runtime::Builder::new_current_thread().enable_all().build()
                    }
                    .unwrap();
                    let own_id = own.handle().id();
                    let (inside, spawned) = own.block_on(async {
                        let inside = tokio::runtime::Handle::current().id();
                        let spawned = tokio::spawn(async {
                            tokio::time::sleep(ms(1)).await;
                            let listener =
                                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                            listener.local_addr().unwrap().port() != 0
                        })
                        .await
                        .unwrap();
                        (inside, spawned)
                    });
                    let after = tokio::runtime::Handle::current().id();
                    drop(own);
                    checks.push((inside == own_id, spawned, after == klaw_tokio));
                }
                checks
            })
            .await?)
        })
        .unwrap();
        assert_eq!(checks, vec![(true, true, true); 2]);
    });
}

/// Not in the book: a tokio runtime built and blocked on inside a klaw *async* task. tokio's own
/// tasks get "Cannot start a runtime from within a runtime" for this; a klaw worker is not a
/// tokio runtime thread, so tokio cannot tell: `block_on` runs (blocking the klaw worker) and
/// the drop does not panic. This records that behaviour.
#[test]
fn a_tokio_runtime_blocked_on_inside_a_klaw_async_task_is_not_refused() {
    in_tokio_task(2, || async {
        let own = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let value = own.block_on(async {
            tokio::time::sleep(ms(1)).await;
            7
        });
        assert_eq!(value, 7);
        drop(own);
        // And the klaw runtime's own tokio handle blocks the worker the same way.
        let handle = tokio::runtime::Handle::current();
        assert_eq!(handle.block_on(async { 8 }), 8);
    });
}

// ---------------------------------------------------------------------------------------------
// Inside tokio's tasks: what of klaw works there
// ---------------------------------------------------------------------------------------------

/// io.md: "hyper runs each client connection in a task it gives to `tokio::spawn`, and
/// `axum::serve` each server connection" — so a handler runs on the `klaw-tokio` thread, in a
/// tokio task. from_tokio.md: klaw's "channels, timers and `select!` work under any executor".
/// io.md ("Inside what tokio runs"): in a tokio task spawned from a klaw task, klaw's timers,
/// regions and channels work, but `klaw::Handle::current()` is `Err(NoRuntime)`, so `s.spawn`
/// in a `scope!` there panics.
#[test]
fn inside_a_tokio_spawned_task_klaw_timers_work_but_there_is_no_klaw_runtime() {
    in_tokio_task(2, || async {
        let observed = tokio::spawn(async {
            let thread = thread_name();
            let timed = klaw::cancel::move_on_after(ms(5), std::future::pending::<()>()).await;
            klaw::time::sleep(ms(1)).await;
            let has_klaw = klaw::Handle::current().is_ok();
            let scope_with_spawn = std::panic::AssertUnwindSafe(async {
                klaw::scope!(|s| Ok(s.spawn(async { 1 }).await?))
            });
            let spawned = futures_lite::FutureExt::catch_unwind(scope_with_spawn).await;
            (thread, timed.is_none(), has_klaw, spawned.map(|r| r.ok()).map_err(|_| ()))
        })
        .await
        .unwrap();
        let (thread, timed_out, has_klaw, spawned) = observed;
        assert_eq!(thread, "klaw-tokio");
        assert!(timed_out, "klaw's move_on_after did not fire in a tokio task");
        assert!(!has_klaw, "a klaw runtime is current in a tokio task");
        assert!(spawned.is_err(), "scope!+spawn in a tokio task: {spawned:?}");
    });
}

/// io.md ("Inside what tokio runs"): the way to fan out from a tokio task (an axum handler) is a
/// `klaw::Handle` kept from outside: `handle.spawn(async { scope!(..) })`, awaited in the tokio
/// task, runs the scope and its children on klaw's runtime and gives their result back.
#[test]
fn a_tokio_task_fans_out_through_a_klaw_handle_it_was_given() {
    in_tokio_task(2, || async {
        let klaw = klaw::Handle::current().expect("a klaw task has its runtime");
        let total = tokio::spawn(async move {
            let fan_out = klaw.spawn(async {
                klaw::scope!(|s| {
                    let children: Vec<_> =
                        (1..=4u64).map(|n| s.spawn(async move { n * n })).collect();
                    let mut total = 0;
                    for child in children {
                        total += child.await?;
                    }
                    Ok(total)
                })
            });
            fan_out.await
        })
        .await
        .unwrap();
        assert_eq!(total.unwrap().unwrap(), 30);
    });
}

// ---------------------------------------------------------------------------------------------
// The entry macros
// ---------------------------------------------------------------------------------------------

/// from_tokio.md / io.md: `#[klaw::test(tokio)]` gives the test's runtime a tokio runtime. The
/// body (on the `block_on` thread) and its children use tokio's TCP and timers, under klaw's
/// `fail_after` and a `scope!(timeout = ..)` that cancels a silent read.
#[klaw::test(tokio, workers = 2, timeout = "30s")]
async fn klaw_test_with_tokio_runs_tokio_io_under_klaw_deadlines() -> TestResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (client, accepted) =
        futures_lite::future::zip(tokio::net::TcpStream::connect(address), listener.accept()).await;
    let (mut client, mut server) = (client?, accepted?.0);
    tokio::time::sleep(ms(1)).await;
    let silent: Result<(), klaw::Error> = klaw::scope!(timeout = "20ms", |s| {
        s.spawn(async move {
            let mut buffer = [0u8; 4];
            let _ = server.read(&mut buffer).await;
        });
        Ok(())
    });
    assert!(matches!(silent, Err(klaw::Error::Elapsed(_))), "{silent:?}");
    // The server end went with its cancelled child: the client reads end-of-stream.
    let mut buffer = [0u8; 4];
    let read = klaw::cancel::fail_after(Duration::from_secs(10), client.read(&mut buffer)).await?;
    assert_eq!(read?, 0);
    Ok(())
}

/// `#[klaw::main(tokio)]` (from_tokio.md: "write `#[klaw::main(tokio)]`"), on a function of its
/// own called from a test: tokio's TCP and timers work in its body and children, and when it
/// returns its tokio runtime is gone (what is spawned on the handle it used is cancelled) and
/// the listener it left in a detached task is closed.
#[test]
fn klaw_main_with_tokio_serves_and_leaves_nothing_behind() {
    #[klaw::main(tokio, workers = 2)]
    async fn app() -> Result<(tokio::runtime::Handle, u16), Box<dyn std::error::Error + Send + Sync>>
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let echoed = klaw::scope!(|s| {
            let server = s.spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = [0u8; 4];
                socket.read_exact(&mut buffer).await.unwrap();
                socket.write_all(&buffer).await.unwrap();
                // Keeps a listener of its own alive in a task nobody awaits.
                let stray = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
                let stray_port = stray.local_addr().unwrap().port();
                let _detached = klaw::Handle::current().unwrap().spawn(async move {
                    let _ = stray.accept().await;
                });
                stray_port
            });
            let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            client.write_all(b"ping").await?;
            let mut buffer = [0u8; 4];
            client.read_exact(&mut buffer).await?;
            assert_eq!(&buffer, b"ping");
            Ok(server.await?)
        })?;
        Ok((tokio::runtime::Handle::current(), echoed))
    }

    with_deadline(|| {
        let (tokio_handle, stray_port) = app().expect("app");
        assert_eq!(open_sockets_on(stray_port), 0, "the detached task's listener outlived main");
        let spawned = tokio_handle.block_on(tokio_handle.spawn(async { 7 }));
        assert!(
            spawned.is_err_and(|error| error.is_cancelled()),
            "the tokio runtime outlived main"
        );
    });
}

/// time.md: "What klaw cannot see does not hold the clock back: ... I/O in flight ... the clock
/// may jump past other timers meanwhile", and io.md: "only klaw's timers follow a test's paused
/// clock". On a paused runtime with tokio, a tokio TCP round trip whose server answers after a
/// 20 ms *tokio* sleep, under a klaw `fail_after` of an hour: the klaw deadline fires first,
/// since every task waits on what klaw cannot see. (Documented; recorded because a tokio user
/// porting `#[tokio::test(start_paused = true)]` will meet it.)
#[klaw::test(tokio, start_paused = true, timeout = "30s")]
async fn a_paused_clock_jumps_past_tokio_io_in_flight() -> TestResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let outcome = klaw::scope!(|s| {
        s.spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(ms(20)).await;
            let _ = socket.write_all(b"late").await;
        });
        let round_trip = klaw::cancel::fail_after(Duration::from_secs(3600), async move {
            let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
            let mut buffer = [0u8; 4];
            client.read_exact(&mut buffer).await.unwrap();
        })
        .await;
        Ok(round_trip.is_err())
    })?;
    assert!(outcome, "the hour-long klaw deadline did not jump ahead of tokio's I/O");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// More edges
// ---------------------------------------------------------------------------------------------

/// time.md: "With no timer pending the clock does not move at all: a task waiting on a channel
/// with nothing else to do waits as long as it would in real time". On a paused runtime with
/// tokio, a TCP round trip whose server answers after a real 20 ms tokio sleep, with no klaw
/// timer pending: the paused driver must wait for tokio's wake-up, not hang nor fail.
#[klaw::test(tokio, start_paused = true, timeout = "30s")]
async fn a_paused_runtime_with_no_klaw_timer_waits_for_tokio_io() -> TestResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let echoed = klaw::scope!(|s| {
        s.spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(ms(20)).await;
            socket.write_all(b"late").await.unwrap();
        });
        let mut client = tokio::net::TcpStream::connect(address).await?;
        let mut buffer = [0u8; 4];
        client.read_exact(&mut buffer).await?;
        Ok(buffer)
    })?;
    assert_eq!(&echoed, b"late");
    Ok(())
}

/// tokio_context.rs: the tokio runtime is shut down "without waiting" so that a klaw runtime
/// may be dropped in an async context. The hardest such context: the klaw runtime's last owner
/// is a tokio task running on that runtime's own `klaw-tokio` thread (as when an `Arc` of app
/// state holding it is dropped by a hyper/axum connection task). The drop returns, without a
/// panic, and the task goes on after it.
#[test]
fn a_klaw_runtime_dropped_on_its_own_tokio_thread_shuts_down() {
    with_deadline(|| {
        let rt = Arc::new(tokio_runtime(2));
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<String, String>>();
        let owner = rt.clone();
        let tokio_handle = rt.block_on(async move {
            let _detached = tokio::spawn(async move {
                // Wait (blocking this thread, which is fine here) until the test let go of it.
                go_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    assert_eq!(Arc::strong_count(&owner), 1, "the last owner");
                    drop(owner);
                    thread_name()
                }));
                let _ = done_tx.send(dropped.map_err(|panic| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                }));
            });
            tokio::runtime::Handle::current()
        });
        drop(rt);
        go_tx.send(()).unwrap();
        let outcome =
            done_rx.recv_timeout(Duration::from_secs(20)).expect("the drop never returned");
        assert_eq!(outcome, Ok("klaw-tokio".to_string()));
        drop(tokio_handle);
    });
}

/// io.md ("tokio's budget in klaw tasks"): a loop over tokio I/O that is always ready
/// (`tokio::io::repeat`, standing for a socket a fast peer floods) takes none of klaw's budget,
/// and tokio's own is not set on klaw's threads; with a `checkpoint` in it, a klaw deadline ends
/// it.
#[test]
fn an_always_ready_tokio_loop_with_a_checkpoint_is_ended_by_a_klaw_deadline() {
    within(Duration::from_secs(10), || {
        let rt = tokio_runtime(2);
        let outcome = rt.block_on(rt.spawn(async {
            klaw::cancel::move_on_after(ms(20), async {
                let mut source = tokio::io::repeat(7);
                let mut buffer = [0u8; 16];
                loop {
                    source.read_exact(&mut buffer).await.unwrap();
                    klaw::cancel::checkpoint().await;
                }
            })
            .await
        }));
        assert_eq!(outcome, Ok(None::<()>));
    });
}
