//! Workers as separate processes (this test binary, started in worker mode): one is killed
//! with SIGKILL mid-task and the task finishes on another; a task that kills every worker it
//! lands on is reported failed after its last delivery. Nothing is lost silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{NatsServer, Proxy, port_of, submitter_runtime, wait_until};
use klaw::remote::RemoteError;
use klaw::{Runtime, TaskError};
use klaw_nats::{NatsBackend, NatsConfig, Worker};

// Only linked, never named: its remote task must still be in the registry.
use klaw_nats_test_tasks as _;

const WORKER_MODE: &str = "KLAW_NATS_TEST_WORKER";
const SUBMITTER_MODE: &str = "KLAW_NATS_TEST_SUBMITTER";
const LIST_MODE: &str = "KLAW_NATS_TEST_LIST";

/// Marks that this process started the job, then works for a while; returns its pid.
#[klaw::task(remote)]
async fn mark_then_work(dir: String, millis: u64) -> u32 {
    let pid = std::process::id();
    std::fs::write(Path::new(&dir).join(format!("started-{pid}")), b"").unwrap();
    klaw::time::sleep(Duration::from_millis(millis)).await;
    pid
}

/// Takes its worker down with it.
#[klaw::task(remote)]
async fn crash_worker(dir: String) {
    let pid = std::process::id();
    std::fs::write(Path::new(&dir).join(format!("crashed-{pid}")), b"").unwrap();
    std::process::abort();
}

/// The worker process: configured only by the environment, as a deployed worker would be.
#[test]
#[ignore = "started by the other tests as a worker process"]
fn worker_process() {
    if std::env::var_os(WORKER_MODE).is_none() {
        return;
    }
    let rt = Runtime::builder().workers(2).build().unwrap();
    assert!(rt.has_remote_backend(), "KLAW_BACKEND=nats should have connected");
    let worker = rt.block_on(Worker::connect(klaw_nats::NatsConfig::from_env().unwrap())).unwrap();
    rt.block_on(worker.run()).unwrap();
}

/// A submitter that submits two jobs, says so in a file, and waits to be killed.
#[test]
#[ignore = "started by `a_killed_submitter_leaves_no_outcome_behind_after_the_ttl`"]
fn submitter_process() {
    let Some(dir) = std::env::var_os(SUBMITTER_MODE) else { return };
    let rt = submitter_runtime(klaw_nats::NatsConfig::from_env().unwrap());
    let dir = dir.to_string_lossy().into_owned();
    let _handles: Vec<_> = (0..2).map(|_| rt.spawn(mark_then_work(dir.clone(), 1000))).collect();
    std::fs::write(Path::new(&dir).join("submitted"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(600)); // until SIGKILL
}

/// Prints the registry, as a worker does when it starts.
#[test]
#[ignore = "started by `a_binary_lists_the_remote_tasks_of_a_crate_it_only_links`"]
fn list_tasks_process() {
    if std::env::var_os(LIST_MODE).is_none() {
        return;
    }
    for task in klaw::remote::remote_tasks() {
        #[allow(clippy::print_stdout, reason = "the parent test reads the list from stdout")]
        {
            println!("task {}", task.name());
        }
    }
}

#[test]
fn a_binary_lists_the_remote_tasks_of_a_crate_it_only_links() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "list_tasks_process", "--ignored", "--nocapture"])
        .env(LIST_MODE, "1")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(listed.contains("task klaw_nats_test_tasks::count_words"), "{listed}");
    assert!(listed.contains("task processes::mark_then_work"), "{listed}");
}

/// Worker processes, killed when the test ends.
struct Workers {
    children: Vec<Child>,
}

impl Workers {
    fn start(server: &NatsServer, ack_wait_ms: u64, max_deliver: u32) -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "worker_process", "--ignored", "--nocapture"])
            .env(WORKER_MODE, "1")
            .env("KLAW_BACKEND", "nats")
            .env(klaw_nats::URL_ENV, &server.url)
            .env(klaw_nats::NAMESPACE_ENV, "test")
            .env(klaw_nats::ACK_WAIT_ENV, ack_wait_ms.to_string())
            .env(klaw_nats::MAX_DELIVER_ENV, max_deliver.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn marks(dir: &Path, prefix: &str) -> Vec<String> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_prefix(prefix).map(str::to_owned))
        .collect();
    found.sort();
    found
}

fn dir_string(dir: &tempfile::TempDir) -> String {
    PathBuf::from(dir.path()).to_string_lossy().into_owned()
}

#[test]
fn a_task_whose_worker_is_killed_finishes_on_another() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut workers = Workers { children: vec![Workers::start(&server, 1000, 5)] };
    let rt = submitter_runtime(server.config());
    let handle = rt.spawn(mark_then_work(dir_string(&dir), 1500));
    wait_until(Duration::from_secs(20), "the first worker started the task", || {
        !marks(dir.path(), "started-").is_empty()
    });
    let first = workers.children[0].id();
    assert_eq!(marks(dir.path(), "started-"), [first.to_string()]);
    workers.children[0].kill().unwrap(); // SIGKILL: no chance to hand the job back
    workers.children[0].wait().unwrap();
    workers.children.push(Workers::start(&server, 1000, 5));
    let second = workers.children[1].id();

    let pid = rt.block_on(klaw::cancel::fail_after(Duration::from_secs(30), handle)).unwrap();
    assert_eq!(pid, Ok(second), "the task should have finished on the second worker");
    let mut started = vec![first.to_string(), second.to_string()];
    started.sort();
    assert_eq!(marks(dir.path(), "started-"), started);
}

#[test]
fn a_task_that_kills_every_worker_is_reported_failed_after_its_last_delivery() {
    // Two deliveries allowed; every worker that takes the job dies. Workers come back (as a
    // supervisor would restart them): the third one is not given the job, and the submitter
    // learns that it failed.
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut workers = Workers { children: vec![Workers::start(&server, 500, 2)] };
    let rt = submitter_runtime(server.config());
    let handle = rt.spawn(crash_worker(dir_string(&dir)));
    for deliveries in 1..=2 {
        wait_until(Duration::from_secs(20), "a worker took the job and crashed", || {
            marks(dir.path(), "crashed-").len() == deliveries
        });
        workers.children.push(Workers::start(&server, 500, 2));
    }
    let result = rt.block_on(klaw::cancel::fail_after(Duration::from_secs(30), handle)).unwrap();
    match result {
        Err(TaskError::Remote(error)) if matches!(*error, RemoteError::MaxDeliveries { .. }) => {
            let RemoteError::MaxDeliveries { name, deliveries } = *error else { unreachable!() };
            assert!(name.ends_with("::crash_worker"), "{name}");
            assert_eq!(deliveries, 2);
        }
        other => panic!("expected MaxDeliveries, got {other:?}"),
    }
    assert_eq!(marks(dir.path(), "crashed-").len(), 2, "one crash per delivery, no more");
    // The job is a dead letter now, with its reason, and no longer in the queue.
    let letters = klaw::runtime::block_on(klaw_nats::DeadLetters::open(server.config())).unwrap();
    let list = || klaw::runtime::block_on(letters.list()).unwrap();
    wait_until(Duration::from_secs(10), "the job is a dead letter", || list().len() == 1);
    let letter = list().remove(0);
    assert!(letter.reason.contains("delivered 2 times"), "{}", letter.reason);
    assert!(letter.task.is_some_and(|task| task.ends_with("::crash_worker")));
    let backend = klaw::runtime::block_on(NatsBackend::connect(server.config())).unwrap();
    assert_eq!(klaw::runtime::block_on(backend.queued()).unwrap(), 0);
}

/// Messages and bytes in a namespace's outcomes bucket (its stream).
fn outcomes_size(server: &NatsServer, namespace: &str) -> (u64, u64) {
    klaw::runtime::block_on(async_compat::Compat::new(async {
        let client = async_nats::connect(&server.url).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let mut stream = jetstream.get_stream(format!("KV_{namespace}_outcomes")).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        (state.messages, state.bytes)
    }))
}

#[test]
fn a_killed_submitter_leaves_no_outcome_behind_after_the_ttl() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(2);
    let config = server.config().outcome_ttl(ttl);
    // The worker runs here, with the same TTL (the bucket keeps what the last to open it set).
    let workers = Runtime::builder().workers(2).local().build().unwrap();
    let worker = klaw::runtime::block_on(Worker::connect(config.clone())).unwrap();
    let _worker = workers.spawn(worker.run());
    let mut submitter = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "submitter_process", "--ignored", "--nocapture"])
        .env(SUBMITTER_MODE, dir.path())
        .env(klaw_nats::URL_ENV, &server.url)
        .env(klaw_nats::NAMESPACE_ENV, "test")
        .env(klaw_nats::OUTCOME_TTL_ENV, ttl.as_secs().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // (Both jobs run in this process, so they leave one `started-` mark between them.)
    wait_until(Duration::from_secs(20), "the submitter submitted its jobs", || {
        dir.path().join("submitted").exists() && !marks(dir.path(), "started-").is_empty()
    });
    submitter.kill().unwrap(); // SIGKILL while its jobs run: it never reads their outcomes
    submitter.wait().unwrap();
    wait_until(Duration::from_secs(20), "both outcomes are stored", || {
        outcomes_size(&server, "test").0 == 2
    });
    let stored = outcomes_size(&server, "test");
    wait_until(Duration::from_secs(20), "the TTL removed them", || {
        outcomes_size(&server, "test") == (0, 0)
    });
    #[allow(clippy::print_stderr, reason = "the sizes, for whoever runs it with --nocapture")]
    {
        eprintln!(
            "outcomes bucket: {stored:?} (messages, bytes) after the kill, (0, 0) after the TTL"
        );
    }
    // The jobs themselves were settled: nothing is left in the queue either.
    let backend = klaw::runtime::block_on(NatsBackend::connect(config)).unwrap();
    assert_eq!(klaw::runtime::block_on(backend.queued()).unwrap(), 0);
}

#[test]
fn a_job_that_runs_out_of_deliveries_while_its_submitter_is_cut_off_is_reported_after() {
    // As above, but the submitter is cut off (through a proxy) from the first crash until the
    // job is a dead letter: it never hears the server's advisory, and learns of the failure
    // from the dead letter when it is back. Its own max_deliver (the default, 5) differs from
    // the workers' (2): the letter's reason decides, not the reader's setting.
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut workers = Workers { children: vec![Workers::start(&server, 500, 2)] };
    let proxy = Proxy::to(port_of(&server.url));
    let rt = submitter_runtime(NatsConfig::new(proxy.url()).namespace("test"));
    let handle = rt.spawn(crash_worker(dir_string(&dir)));
    wait_until(Duration::from_secs(20), "a worker took the job and crashed", || {
        marks(dir.path(), "crashed-").len() == 1
    });
    proxy.cut();
    workers.children.push(Workers::start(&server, 500, 2));
    wait_until(Duration::from_secs(20), "the second worker crashed", || {
        marks(dir.path(), "crashed-").len() == 2
    });
    workers.children.push(Workers::start(&server, 500, 2));
    let letters = klaw::runtime::block_on(klaw_nats::DeadLetters::open(server.config())).unwrap();
    wait_until(Duration::from_secs(20), "the job is a dead letter", || {
        klaw::runtime::block_on(letters.list()).unwrap().len() == 1
    });
    assert!(!handle.is_finished(), "decided while cut off: the submitter heard something");
    proxy.heal();
    // Within one sweep of the reconnect.
    let result = rt.block_on(klaw::cancel::fail_after(Duration::from_secs(30), handle)).unwrap();
    match result {
        Err(TaskError::Remote(error)) if matches!(*error, RemoteError::MaxDeliveries { .. }) => {
            let RemoteError::MaxDeliveries { deliveries, .. } = *error else { unreachable!() };
            assert_eq!(deliveries, 2);
        }
        other => panic!("expected MaxDeliveries, got {other:?}"),
    }
}
