//! `#[klaw::task(remote)]` without a server: a backend that runs each job through the registry
//! in this process, as a worker would, so encoding, lookup, build checks and the relayed
//! outcome are tested on their own. The NATS backend's tests are in `klaw-nats/tests`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klaw::remote::{
    JobId, Relay, RemoteBackend, RemoteError, RemoteJob, SubmitFuture, WireOutcome,
};
use klaw::{CancelReason, Runtime, TaskError, task::ExitReason};

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("no page {0}")]
struct NotFound(u32);

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Page {
    id: u32,
    title: String,
}

#[klaw::task(remote)]
async fn fetch(id: u32, prefix: String) -> Result<Page, NotFound> {
    if id == 0 { Err(NotFound(id)) } else { Ok(Page { id, title: format!("{prefix}{id}") }) }
}

/// A `mut` argument stays the task's own.
#[klaw::task(remote)]
async fn shout(mut word: String) -> String {
    word.push('!');
    word
}

#[klaw::task(remote, timeout = "20ms")]
async fn too_slow() -> u8 {
    klaw::time::sleep(Duration::from_secs(60)).await;
    1
}

#[klaw::task(remote)]
async fn explode() -> u8 {
    panic!("remote boom")
}

#[klaw::task(remote)]
async fn forever() {
    std::future::pending::<()>().await;
}

/// Where the backend runs relays.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Relays {
    /// The default: it hands them back, and the runtime's workers run them.
    Runtime,
    /// Each on a thread of the backend's own, named [`RELAY_THREAD`].
    OwnThread,
    /// Dropped unpolled, as by an executor that has shut down.
    Dropped,
}

const RELAY_THREAD: &str = "backend relay";

/// Runs jobs through the registry on its own runtime, like a worker, and records cancels.
#[derive(Debug)]
struct InProcess {
    worker: Runtime,
    /// Overrides the build a job claims (to test the refusal).
    build: Option<&'static str>,
    relays: Relays,
    submitted: AtomicUsize,
    /// Submissions made on a relay thread of the backend's own.
    submitted_on_relay_thread: AtomicUsize,
    /// Submit futures dropped before they resolved (their waits abandoned).
    abandoned: Arc<AtomicUsize>,
    cancelled: Mutex<Vec<(JobId, CancelReason)>>,
}

impl InProcess {
    fn new() -> Arc<Self> {
        Self::with(None, Relays::Runtime)
    }

    fn with_build(build: Option<&'static str>) -> Arc<Self> {
        Self::with(build, Relays::Runtime)
    }

    fn with(build: Option<&'static str>, relays: Relays) -> Arc<Self> {
        let worker = Runtime::builder().workers(1).local().build().unwrap();
        Arc::new(Self {
            worker,
            build,
            relays,
            submitted: 0.into(),
            submitted_on_relay_thread: 0.into(),
            abandoned: Arc::default(),
            cancelled: Mutex::default(),
        })
    }
}

/// Counts a submit future dropped before it resolved.
struct Abandoned(Option<Arc<AtomicUsize>>);

impl Abandoned {
    fn resolved(&mut self) {
        self.0 = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(count) = self.0.take() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl RemoteBackend for InProcess {
    fn submit(&self, job: RemoteJob) -> SubmitFuture {
        self.submitted.fetch_add(1, Ordering::SeqCst);
        if std::thread::current().name() == Some(RELAY_THREAD) {
            self.submitted_on_relay_thread.fetch_add(1, Ordering::SeqCst);
        }
        let Some(task) = klaw::remote::find_task(job.task) else {
            let refused =
                WireOutcome::Refused(RemoteError::UnknownTask { name: job.task.to_owned() });
            return Box::pin(async move { Ok(refused.encode()) });
        };
        let build = self.build.unwrap_or(job.build);
        if build != task.build() {
            let refused = WireOutcome::Refused(RemoteError::BuildMismatch {
                name: job.task.to_owned(),
                job: build.to_owned(),
                worker: task.build().to_owned(),
            });
            return Box::pin(async move { Ok(refused.encode()) });
        }
        match task.start(&job.args) {
            Ok(run) => {
                let handle = self.worker.spawn(run);
                let mut abandoned = Abandoned(Some(self.abandoned.clone()));
                Box::pin(async move {
                    let reply = handle.await;
                    abandoned.resolved();
                    reply.map_err(|error| RemoteError::Transport(error.to_string()))
                })
            }
            Err(error) => Box::pin(async move { Ok(WireOutcome::Refused(error).encode()) }),
        }
    }

    fn cancel(&self, job: &JobId, reason: &CancelReason) {
        self.cancelled.lock().unwrap().push((job.clone(), reason.clone()));
    }

    fn run_relay(&self, relay: Relay) -> Result<(), Relay> {
        match self.relays {
            Relays::Runtime => Err(relay),
            Relays::OwnThread => {
                std::thread::Builder::new()
                    .name(RELAY_THREAD.to_owned())
                    .spawn(move || klaw::runtime::block_on(relay))
                    .unwrap();
                Ok(())
            }
            Relays::Dropped => {
                drop(relay);
                Ok(())
            }
        }
    }
}

fn runtime_with(backend: &Arc<InProcess>) -> Runtime {
    Runtime::builder().workers(2).backend(backend.clone()).build().unwrap()
}

#[test]
fn a_remote_task_goes_to_the_backend_and_its_typed_result_comes_back() {
    let backend = InProcess::new();
    let rt = runtime_with(&backend);
    let page = rt.block_on(rt.spawn(fetch(7, "page ".into())));
    assert_eq!(page, Ok(Page { id: 7, title: "page 7".into() }));
    let failed = rt.block_on(rt.spawn(fetch(0, String::new())));
    assert_eq!(failed, Err(TaskError::Failed(NotFound(0))));
    assert_eq!(rt.block_on(rt.spawn(shout("hey".into()))), Ok("hey!".to_owned()));
    assert_eq!(backend.submitted.load(Ordering::SeqCst), 3);
}

#[test]
fn without_a_backend_a_remote_task_runs_here() {
    let rt = Runtime::builder().workers(1).local().build().unwrap();
    assert!(!rt.has_remote_backend());
    assert_eq!(rt.block_on(rt.spawn(fetch(3, "p".into()))), Ok(Page { id: 3, title: "p3".into() }));
    // Awaited inline it always runs in place.
    assert_eq!(
        klaw::runtime::block_on(fetch(4, "q".into())),
        Ok(Page { id: 4, title: "q4".into() })
    );
}

#[test]
fn a_remote_panic_or_timeout_is_the_same_outcome_here() {
    let backend = InProcess::new();
    let rt = runtime_with(&backend);
    let panicked = rt.spawn(explode());
    assert_eq!(rt.block_on(&mut { panicked }), Err(TaskError::Panicked("remote boom".into())));
    let slow = rt.spawn(too_slow());
    let result = rt.block_on(async { (&mut { slow }).await });
    assert_eq!(result, Err(TaskError::TimedOut(Duration::from_millis(20))));
}

#[test]
fn exit_reasons_are_relayed() {
    let backend = InProcess::new();
    let rt = runtime_with(&backend);
    let panicked = rt.spawn(explode());
    let failed = rt.spawn(fetch(0, String::new()));
    rt.block_on(async {
        while !(panicked.is_finished() && failed.is_finished()) {
            klaw::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert_eq!(panicked.exit_reason(), ExitReason::Panicked);
    assert_eq!(failed.exit_reason(), ExitReason::Error);
}

#[test]
fn cancelling_the_handle_tells_the_backend_once() {
    let backend = InProcess::new();
    let rt = runtime_with(&backend);
    let handle = rt.spawn(forever());
    assert!(handle.cancel("user stop"));
    assert!(!handle.cancel("again"));
    let result = rt.block_on(handle);
    assert_eq!(result, Err(TaskError::Cancelled(CancelReason::user("user stop"))));
    let cancelled = backend.cancelled.lock().unwrap();
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    assert_eq!(cancelled[0].1, CancelReason::user("user stop"));
}

#[test]
fn a_scope_that_fails_cancels_its_remote_children_on_the_backend() {
    let backend = InProcess::new();
    let rt = runtime_with(&backend);
    let result = rt.block_on(async {
        klaw::scope!(|s| {
            s.spawn(forever());
            s.spawn(fetch(0, String::new()));
            Ok(())
        })
    });
    assert!(
        matches!(result, Err(klaw::Error::Task { error: TaskError::Failed(_), .. })),
        "{result:?}"
    );
    let cancelled = backend.cancelled.lock().unwrap();
    assert_eq!(
        cancelled.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        [CancelReason::SiblingFailed]
    );
}

#[test]
fn a_backend_may_run_relays_next_to_its_io() {
    let backend = InProcess::with(None, Relays::OwnThread);
    let rt = runtime_with(&backend);
    assert_eq!(
        rt.block_on(rt.spawn(fetch(7, "page ".into()))),
        Ok(Page { id: 7, title: "page 7".into() })
    );
    let failed = rt.block_on(rt.spawn(fetch(0, String::new())));
    assert_eq!(failed, Err(TaskError::Failed(NotFound(0))));
    // In a scope too: the scope returns once its relayed children have ended.
    let pages = rt.block_on(async {
        klaw::scope!(|s| {
            let a = s.spawn(fetch(1, "a".into()));
            let b = s.spawn(fetch(2, "b".into()));
            Ok((a.await?, b.await?))
        })
    });
    let pages = pages.unwrap();
    assert_eq!((pages.0.id, pages.1.id), (1, 2));
    assert_eq!(backend.submitted_on_relay_thread.load(Ordering::SeqCst), 4);
    // The default leaves relays to the runtime's workers.
    let default = InProcess::new();
    let rt = runtime_with(&default);
    assert_eq!(rt.block_on(rt.spawn(shout("a".into()))), Ok("a!".to_owned()));
    assert_eq!(default.submitted_on_relay_thread.load(Ordering::SeqCst), 0);
}

#[test]
fn cancelling_a_relayed_task_abandons_its_wait_and_tells_the_backend_once() {
    let backend = InProcess::with(None, Relays::OwnThread);
    let rt = runtime_with(&backend);
    let handle = rt.spawn(forever());
    // Once it is submitted, the relay waits for the outcome on the backend's thread.
    rt.block_on(async {
        while backend.submitted.load(Ordering::SeqCst) == 0 {
            klaw::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert!(handle.cancel("user stop"));
    let result = rt.block_on(handle);
    assert_eq!(result, Err(TaskError::Cancelled(CancelReason::user("user stop"))));
    // The handle resolved after the relay ended: its submit future is gone.
    assert_eq!(backend.abandoned.load(Ordering::SeqCst), 1);
    let cancelled = backend.cancelled.lock().unwrap();
    assert_eq!(
        cancelled.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        [CancelReason::user("user stop")]
    );
}

#[test]
fn a_relay_its_backend_drops_ends_its_task_cancelled() {
    let backend = InProcess::with(None, Relays::Dropped);
    let rt = runtime_with(&backend);
    let result = rt.block_on(rt.spawn(fetch(7, String::new())));
    assert_eq!(result, Err(TaskError::Cancelled(CancelReason::Shutdown)));
    assert_eq!(backend.submitted.load(Ordering::SeqCst), 0, "a dropped relay submits nothing");
    // A scope with such a child returns, and reports it cancelled.
    let scoped = rt.block_on(async {
        klaw::scope!(|s| {
            let page = s.spawn(fetch(1, String::new()));
            Ok(page.await)
        })
    });
    let page = scoped.unwrap();
    assert!(
        matches!(
            &page,
            Err(klaw::Error::Task { error: TaskError::Cancelled(CancelReason::Shutdown), .. })
        ),
        "{page:?}"
    );
}

#[test]
fn a_worker_refuses_another_build_with_a_typed_error() {
    let backend = InProcess::with_build(Some("other@9.9.9 fetch(u32) -> ()"));
    let rt = runtime_with(&backend);
    match rt.block_on(rt.spawn(fetch(1, String::new()))) {
        Err(TaskError::Remote(error)) if matches!(*error, RemoteError::BuildMismatch { .. }) => {
            let RemoteError::BuildMismatch { name, job, worker } = *error else { unreachable!() };
            assert!(name.ends_with("remote_tasks::fetch"), "{name}");
            assert_eq!(job, "other@9.9.9 fetch(u32) -> ()");
            assert!(worker.starts_with("klaw@0.1.0 fetch(u32, String)"), "{worker}");
        }
        other => panic!("expected a build mismatch, got {other:?}"),
    }
}

#[test]
fn the_registry_lists_every_remote_task_of_this_binary() {
    let mut names: Vec<_> = klaw::remote::remote_tasks().map(|t| t.name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "remote_tasks::explode",
            "remote_tasks::fetch",
            "remote_tasks::forever",
            "remote_tasks::shout",
            "remote_tasks::too_slow"
        ]
    );
    let fetch = klaw::remote::find_task("remote_tasks::fetch").unwrap();
    assert_eq!(fetch.build(), "klaw@0.1.0 fetch(u32, String) -> Result < Page, NotFound >");
    // Arguments that do not decode as (u32, String) are refused, not guessed.
    let garbage = rmp_serde_encode_unit();
    assert!(matches!(fetch.start(&garbage), Err(RemoteError::Arguments { .. })));
}

fn rmp_serde_encode_unit() -> Vec<u8> {
    // MessagePack `nil`: not a (u32, String).
    vec![0xc0]
}
