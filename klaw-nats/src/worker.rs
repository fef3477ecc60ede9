//! The worker's side: take jobs from the work queue, run each task in its own cancel scope,
//! keep the claim alive while it runs, publish the outcome, then acknowledge.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use klaw_rt::cancel::Token;
use klaw_rt::remote::{RemoteError, RemoteTaskDef, WireOutcome, find_task, remote_tasks};
use klaw_rt::scope::ScopeOptions;
use klaw_rt::task::CancelReason;

use crate::backoff::Backoff;
use crate::connection::{Connection, JobQueue};
use crate::dead;
use crate::kv_watch::KvWatch;
use crate::protocol::JobEnvelope;
use crate::{NatsConfig, NatsError};

mod claim;
mod take;

use claim::Renewals;
use take::{JobTaker, OnTokio, ReadyJob};

/// How long one fetch waits for jobs before it looks again.
const FETCH_WAIT: Duration = Duration::from_secs(1);
/// How long a worker waits for a submitter to confirm it holds an outcome before it stores the
/// outcome for the submitter to read later.
pub(crate) const CONFIRM_WAIT: Duration = Duration::from_secs(1);

/// Runs the remote tasks linked into this binary for whoever submits them.
///
/// ```no_run
/// # async fn demo() -> Result<(), klaw::Error> {
/// let worker = klaw_nats::Worker::connect(klaw_nats::NatsConfig::from_env()?).await?
///     .concurrency(8);
/// for task in worker.tasks() {
///     println!("serving {}", task.name());
/// }
/// worker.run().await?; // until cancelled: then running jobs go back to the queue
/// # Ok(()) }
/// ```
pub struct Worker {
    connection: Connection,
    queue: JobQueue,
    concurrency: usize,
    running: Arc<Running>,
    /// The claims of the jobs it runs, kept alive together (`claim.rs`).
    renewals: Arc<Renewals>,
    /// The consumer of the advisories of jobs out of deliveries, made (or found) by `connect`.
    buriers: PullConsumer,
}

/// The cancel tokens of the jobs this worker holds, by job id: one per delivery it holds, since
/// a job delivered again (its claim lapsed while the link was down) may reach the worker that
/// still runs it, and a cancel must reach both runs. Each is numbered, so a run that ends
/// removes its own.
#[derive(Default)]
struct Running {
    tokens: Mutex<HashMap<String, Vec<(u64, Token)>>>,
    registered: AtomicU64,
}

impl Running {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<(u64, Token)>>> {
        // Nothing under this lock panics; a poisoned map is still sound.
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("url", &crate::redact_url(&self.connection.config.url))
            .field("namespace", &self.connection.config.namespace)
            .field("concurrency", &self.concurrency)
            .field("running", &self.running.lock().len())
            .finish()
    }
}

impl Worker {
    /// Connects, and creates the streams, buckets and the consumer of jobs out of deliveries
    /// if needed, so that a least-privilege submitter, which may only find them, can start once
    /// this returns.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), klaw_nats::NatsError> {
    /// let worker = klaw_nats::Worker::connect(klaw_nats::NatsConfig::new("nats://127.0.0.1:4222")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: NatsConfig) -> Result<Self, NatsError> {
        let connection = Connection::open(config).await?;
        let queue = JobQueue::open(&connection).await?;
        let buriers = async_compat::Compat::new(queue.buriers_consumer()).await?;
        Ok(Self {
            connection,
            queue,
            concurrency: 16,
            running: Arc::default(),
            renewals: Arc::default(),
            buriers,
        })
    }

    /// How many jobs this worker runs at once (default 16).
    ///
    /// ```no_run
    /// # fn demo(worker: klaw_nats::Worker) { let worker = worker.concurrency(4); }
    /// ```
    #[must_use]
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = jobs.max(1);
        self
    }

    /// The remote tasks this worker can run: every `#[klaw::task(remote)]` linked into the
    /// binary. A task defined in another crate is linked only if that crate is used; write
    /// `use that_crate as _;` in the worker's main if nothing else names it.
    ///
    /// ```no_run
    /// # fn demo(worker: &klaw_nats::Worker) {
    /// assert!(!worker.tasks().is_empty(), "no remote task is linked into this worker");
    /// # }
    /// ```
    pub fn tasks(&self) -> Vec<&'static RemoteTaskDef> {
        let mut tasks: Vec<_> = remote_tasks().collect();
        tasks.sort_by_key(|task| task.name());
        tasks
    }

    /// Takes and runs jobs until cancelled (drop the future or cancel its task). Jobs still
    /// running then are cancelled and handed back to the queue for another worker; a job whose
    /// body had ended still has its outcome delivered and is settled, on the connection's
    /// runtime, within about a second after this returns (if the process lives that long; if
    /// not, the job is delivered again after the ack wait).
    ///
    /// # Errors
    /// The server went away or refused the consumer.
    ///
    /// ```no_run
    /// # async fn demo(worker: klaw_nats::Worker) -> Result<(), klaw::Error> {
    /// klaw::cancel::move_on_after(std::time::Duration::from_secs(60), worker.run()).await;
    /// # Ok(()) }
    /// ```
    pub async fn run(self) -> Result<(), klaw_rt::error::Error> {
        let tasks = self.tasks();
        tracing::info!(
            tasks = tasks.len(),
            names = ?tasks.iter().map(|t| t.name()).collect::<Vec<_>>(),
            concurrency = self.concurrency,
            "klaw-nats worker starting"
        );
        let consumer = compat(self.queue.workers_consumer(&self.connection.config)).await?;
        // The watchers serve this run only: they end when it ends (these guards are dropped
        // with the future), rather than at the next cancel marker or advisory, which may never
        // come, each keeping a server consumer or subscription and the connection meanwhile.
        let _stop_watching_cancels = self.watch_cancels().await?;
        let _stop_burying = self.bury_exhausted_jobs().await?;
        // The server redelivers a job on the consumer's ack wait, which is the one the consumer
        // was created with (by whichever worker came first), not necessarily this worker's.
        let ack_wait = consumer.cached_info().config.ack_wait;
        if ack_wait != self.connection.config.ack_wait {
            tracing::warn!(
                consumer = ?ack_wait,
                configured = ?self.connection.config.ack_wait,
                "the workers' consumer has another ack wait than this worker's config; \
                 claims are renewed on the consumer's"
            );
        }
        let configured = self.connection.config.ack_wait;
        let keep_alive = if ack_wait.is_zero() { configured } else { ack_wait.min(configured) } / 3;
        Renewals::start(&self.renewals, &self.connection.tokio, keep_alive);
        let taker = JobTaker {
            connection: self.connection.clone(),
            queue: self.queue.clone(),
            running: self.running.clone(),
            renewals: self.renewals.clone(),
            concurrency: self.concurrency,
        };
        // Jobs are taken and prepared on the tokio runtime where they arrive (`take.rs`); the
        // taker stops when this future ends or is dropped, and drops the jobs it holds.
        let (ready_tx, ready_rx) = klaw_rt::channel::unbounded::<ReadyJob>();
        let mut taking = OnTokio(self.connection.tokio.spawn(taker.take_jobs(consumer, ready_tx)));
        klaw_rt::scope::scope_with(
            ScopeOptions::new().name("klaw-nats worker").supervisor(),
            |s| {
                Box::pin(async move {
                    while let Ok(job) = ready_rx.recv().await {
                        s.spawn(job.run());
                    }
                    Ok(())
                })
            },
        )
        .await?;
        // The taker stopped, and every job it sent has ended: its error.
        match (&mut taking).await {
            Ok(result) => result,
            Err(error) => Err(klaw_rt::error::Error::other(error.to_string())),
        }
    }

    /// Dead-letters every job the server reports out of deliveries (its submitter may be gone,
    /// and a work queue would keep it forever), with every other worker and submitter
    /// (`dead::bury_exhausted_jobs`). Runs until the returned guard is dropped.
    async fn bury_exhausted_jobs(&self) -> Result<StopGuard, klaw_rt::error::Error> {
        let (stop, stopped) = klaw_rt::channel::oneshot::channel();
        dead::bury_exhausted_jobs(&self.connection, &self.queue, &self.buriers, |_| {}, stopped)
            .await
            .map_err(klaw_rt::error::Error::other)?;
        Ok(stop)
    }

    /// Forwards every cancel marker to the job it names, if this worker runs it, until the
    /// returned guard is dropped.
    async fn watch_cancels(&self) -> Result<StopGuard, klaw_rt::error::Error> {
        let (stop, stopped) = klaw_rt::channel::oneshot::channel();
        let client = &self.connection.client;
        let mut watch = compat(KvWatch::new(client, &self.queue.cancels, ">", stopped))
            .await
            .map_err(klaw_rt::error::Error::other)?;
        let running = Arc::downgrade(&self.running);
        self.connection.tokio.spawn(async move {
            while let Some(entry) = watch.next().await {
                let Some(running) = running.upgrade() else { break };
                // Cancelling runs the task's cancel hooks: not under the lock.
                let tokens: Vec<Token> = running
                    .lock()
                    .get(&entry.key)
                    .map(|runs| runs.iter().map(|(_, token)| token.clone()).collect())
                    .unwrap_or_default();
                for token in tokens {
                    token.cancel(cancel_reason(&entry.value));
                }
            }
            watch.end().await;
        });
        Ok(stop)
    }
}

/// Ends a watcher task when dropped (its receiving half resolves, and the task's stream ends).
type StopGuard = klaw_rt::channel::oneshot::Sender<()>;

fn cancel_reason(marker: &[u8]) -> CancelReason {
    CancelReason::user(format!("cancelled by the submitter ({})", String::from_utf8_lossy(marker)))
}

async fn compat<F: std::future::Future>(future: F) -> F::Output {
    async_compat::Compat::new(future).await
}

/// The job's cancel marker, if its submitter stored one: `Some(None)` if there is none. A job
/// whose submitter may have cancelled it must not run before that is known, so a read that
/// fails (the server unreachable, the bucket gone) is tried again until it is answered.
/// Meanwhile the job stays this worker's (its claim is renewed): a short outage is neither a
/// second delivery nor a run elsewhere. After failing for `give_up_after` (the ack wait) it
/// gives up (`None`): the job then goes back to the queue, and a job that can never be checked
/// ends in the dead letters after `max_deliver` deliveries, instead of holding a worker's slot
/// for ever. A worker that stops meanwhile drops this with the job's claim, which hands the job
/// back.
async fn read_cancel_marker(
    queue: &JobQueue,
    id: &str,
    give_up_after: Duration,
) -> Option<Option<bytes::Bytes>> {
    let mut backoff = Backoff::new();
    let mut told = false;
    let started = std::time::Instant::now();
    loop {
        match queue.cancels.get(id).await {
            Ok(marker) => return Some(marker),
            Err(error) if started.elapsed() >= give_up_after => {
                tracing::warn!(%error, "could not read the job's cancel marker; the job goes back to the queue");
                return None;
            }
            Err(error) if !told => {
                told = true;
                tracing::warn!(%error, "could not read the job's cancel marker; it runs once that is known");
            }
            Err(error) => tracing::debug!(%error, "the job's cancel marker is still unread"),
        }
        backoff.wait().await;
    }
}

/// A job's outcome, and how to settle the job once the outcome is stored.
struct Outcome {
    bytes: Vec<u8>,
    settle: AckKind,
}

/// The outcome, or, if the server cannot carry it (larger than its `max_payload`), a typed
/// refusal that says so, settled for good: neither the reply nor the outcomes bucket would take
/// it, and leaving the job unsettled would only run the task again until `max_deliver`.
fn within_max_payload(connection: &Connection, job: &JobEnvelope, outcome: Outcome) -> Outcome {
    let max = connection.client.server_info().max_payload;
    if outcome.bytes.len() <= max {
        return outcome;
    }
    let error = RemoteError::OutcomeTooLarge {
        name: job.task.clone(),
        bytes: outcome.bytes.len() as u64,
        max: max as u64,
    };
    tracing::warn!(%error, "outcome too large: the job is settled with an error");
    Outcome { bytes: WireOutcome::Refused(error).encode(), settle: AckKind::Term }
}

/// The outcome's key, `<client>.<job>`, if the job's reply subject is this namespace's
/// `<namespace>.reply.<client>.<job>` for this very job.
fn outcome_key(config: &NatsConfig, job: &JobEnvelope) -> Option<String> {
    let prefix = format!("{}.reply.", config.namespace);
    let key = job.reply.strip_prefix(&prefix)?;
    let (client, id) = key.split_once('.')?;
    let plain = crate::config::is_plain_name;
    (plain(client) && id == job.id && plain(id)).then(|| key.to_owned())
}

/// A job's cancel token, registered for the cancel watch while the job is held.
struct Registered {
    running: Arc<Running>,
    job: String,
    number: u64,
}

impl Registered {
    fn new(running: Arc<Running>, job: String, token: Token) -> Self {
        let number = running.registered.fetch_add(1, Ordering::Relaxed);
        running.lock().entry(job.clone()).or_default().push((number, token));
        Registered { running, job, number }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let removed = {
            let mut tokens = self.running.lock();
            let Some(runs) = tokens.get_mut(&self.job) else { return };
            let removed = runs
                .iter()
                .position(|(number, _)| *number == self.number)
                .map(|at| runs.swap_remove(at));
            if runs.is_empty() {
                tokens.remove(&self.job);
            }
            removed
        };
        // Outside the lock: the last token of a job's region drops the region, its waker and
        // its links to the task.
        drop(removed);
    }
}

/// The registered task for a job, if this worker has it in the same build.
fn check(job: &JobEnvelope) -> Result<&'static RemoteTaskDef, RemoteError> {
    let task =
        find_task(&job.task).ok_or_else(|| RemoteError::UnknownTask { name: job.task.clone() })?;
    if task.build() != job.build {
        return Err(RemoteError::BuildMismatch {
            name: job.task.clone(),
            job: job.build.clone(),
            worker: task.build().to_owned(),
        });
    }
    Ok(task)
}

/// Hands the outcome to its submitter, or stores it for the submitter to read later. False if
/// it could not be stored: the job is then not settled, and is delivered again.
///
/// The fast path is a request on the submitter's reply subject: a submitter listening now
/// answers once it holds the outcome, and then nothing is stored (nor purged). No answer
/// within [`CONFIRM_WAIT`] (the submitter is cut off, or gone: then the server says at once
/// that nobody listens) and the outcome goes into the bucket, where its submitter reads it
/// after a reconnect. A submitter that answered too late finds it there too; the TTL removes it.
async fn reply(
    connection: &Connection,
    queue: &JobQueue,
    job: &JobEnvelope,
    key: &str,
    outcome: Vec<u8>,
) -> bool {
    let request = connection.client.request(job.reply.clone(), outcome.clone().into());
    match tokio::time::timeout(CONFIRM_WAIT, request).await {
        Ok(Ok(_)) => return true,
        Ok(Err(error)) => tracing::debug!(%error, "the submitter did not take the outcome"),
        Err(_) => tracing::debug!("the submitter did not confirm the outcome in time"),
    }
    if let Err(error) = queue.outcomes.put(key, outcome.into()).await {
        tracing::warn!(%error, "could not store the job's outcome; the job will be delivered again");
        return false;
    }
    true
}
