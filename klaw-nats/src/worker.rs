//! The worker's side: take jobs from the work queue, run each task in its own cancel scope,
//! keep the claim alive while it runs, publish the outcome, then acknowledge.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use futures_util::StreamExt;
use klaw_rt::cancel::{Region, Token};
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

use claim::{Claim, Renewals};

/// How long one fetch waits for jobs before it looks again.
const FETCH_WAIT: Duration = Duration::from_secs(1);
/// How long a worker waits for a submitter to confirm it holds an outcome before it stores the
/// outcome for the submitter to read later.
const CONFIRM_WAIT: Duration = Duration::from_secs(1);

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

/// The cancel tokens of the jobs this worker holds, by job id.
#[derive(Default)]
struct Running(Mutex<HashMap<String, Token>>);

impl Running {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Token>> {
        // Nothing under this lock panics; a poisoned map is still sound.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    /// running then are cancelled and handed back to the queue for another worker.
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
        let keep_alive = self.connection.config.ack_wait / 3;
        Renewals::start(&self.renewals, &self.connection.tokio, keep_alive);
        let connection = &self.connection;
        let queue = &self.queue;
        let running = &self.running;
        let renewals = &self.renewals;
        let concurrency = self.concurrency;
        let (slot_tx, slot_rx) = klaw_rt::channel::bounded::<()>(concurrency);
        klaw_rt::scope::scope_with(ScopeOptions::new().name("klaw-nats worker").supervisor(), |s| {
            Box::pin(async move {
                loop {
                    // Wait for a free slot before taking a job: a job taken is a job claimed.
                    slot_tx.send(()).await.map_err(klaw_rt::error::Error::other)?;
                    let free =
                        1 + (0..concurrency).take_while(|_| slot_tx.try_send(()).is_ok()).count();
                    let batch = compat(async {
                        consumer.batch().max_messages(free).expires(FETCH_WAIT).messages().await
                    })
                    .await
                    .map_err(|error| klaw_rt::error::Error::other(error.to_string()))?;
                    let mut batch = std::pin::pin!(batch);
                    let mut taken = 0;
                    while let Some(message) = compat(batch.next()).await {
                        let Ok(message) = message else { break };
                        taken += 1;
                        let connection = connection.clone();
                        let queue = queue.clone();
                        let running = running.clone();
                        let renewals = renewals.clone();
                        let slot = slot_rx.clone();
                        s.spawn(async move {
                            compat(run_job(connection, queue, running, renewals, message)).await;
                            let _ = slot.try_recv(); // the slot is free again
                        });
                    }
                    for _ in taken..free {
                        let _ = slot_rx.try_recv();
                    }
                }
            })
        })
        .await
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
                let token = running.lock().get(&entry.key).cloned();
                if let Some(token) = token {
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

/// Runs one job to its end and replies. Never fails: whatever goes wrong is the job's reply.
/// The job is settled only once its outcome is stored: an outcome that could not be stored
/// leaves the job to be delivered again, never acknowledged and lost.
async fn run_job(
    connection: Connection,
    queue: JobQueue,
    running: Arc<Running>,
    renewals: Arc<Renewals>,
    message: Message,
) {
    let (deliveries, origin) = message
        .info()
        .map(|info| (info.delivered.max(1) as u64, info.stream_sequence))
        .unwrap_or((1, 0));
    let (claim, message, renewal) = Claim::take(message, connection.tokio.clone());
    // A poison job goes to the dead letters, with its reason, before it leaves the queue (if
    // it cannot be kept there, it stays in the queue and comes back).
    let bury = |reason: String| {
        let payload = message.payload.clone();
        let connection = &connection;
        async move { dead::bury(connection, origin, deliveries, &reason, payload).await }
    };
    let job = match JobEnvelope::decode(&message.payload) {
        Ok(job) => job,
        Err(error) => {
            if bury(format!("not a klaw job: {error}")).await.is_ok() {
                claim.settle(AckKind::Term).await;
            }
            return;
        }
    };
    let span = tracing::info_span!("remote job", job = %job.id, task = %job.task, deliveries);
    let _entered = span.enter();
    // Outcomes go only to this namespace's replies: a job cannot name another subject.
    let Some(key) = outcome_key(&connection.config, &job) else {
        let reason = format!("its reply subject `{}` is not this namespace's", job.reply);
        if bury(reason).await.is_ok() {
            claim.settle(AckKind::Term).await;
        }
        return;
    };
    // Renewed until the job is settled or handed back: through the outcome's storing too.
    let ack_wait = connection.config.ack_wait;
    let (outcome, renewing) = match check(&job) {
        Ok(task) => {
            let renewing = renewals.keep(renewal);
            let Some(outcome) = run_task(&queue, &running, &job, task, ack_wait).await else {
                // Not run: back to the queue, for a later delivery (each counts towards
                // `max_deliver`, so a job that can never be checked ends in the dead letters).
                drop(renewing);
                claim.settle(AckKind::Nak(Some(ack_wait / 3))).await;
                return;
            };
            (outcome, Some(renewing))
        }
        Err(error) => {
            tracing::warn!(%error, "job refused");
            (Outcome { bytes: WireOutcome::Refused(error).encode(), settle: AckKind::Term }, None)
        }
    };
    let outcome = within_max_payload(&connection, &job, outcome);
    let stored = reply(&connection, &queue, &job, &key, outcome.bytes).await;
    drop(renewing); // no renewal after the settling
    if stored {
        claim.settle(outcome.settle).await;
    }
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

/// Runs a job's task: its outcome, or `None` if the job's cancel marker could not be read
/// (see [`read_cancel_marker`]), when it must not run now.
async fn run_task(
    queue: &JobQueue,
    running: &Running,
    job: &JobEnvelope,
    task: &'static RemoteTaskDef,
    ack_wait: Duration,
) -> Option<Outcome> {
    // The token exists before the task runs, and is registered before the marker is checked:
    // a cancel that comes at any moment from here on reaches the task.
    let region = Region::new();
    let displaced = running.lock().insert(job.id.clone(), region.token());
    drop(displaced); // outside the lock: a token's drop may drop its region's waker
    let _registered = Unregister { running, job: &job.id };
    if let Some(marker) = read_cancel_marker(queue, &job.id, ack_wait).await? {
        region.token().cancel(cancel_reason(&marker));
    }
    let run = match task.start(&job.args) {
        Ok(run) => run,
        Err(error) => {
            let refused = WireOutcome::Refused(error).encode();
            return Some(Outcome { bytes: refused, settle: AckKind::Term });
        }
    };
    Some(match region.run(run).await {
        Ok(reply_bytes) => Outcome { bytes: reply_bytes, settle: AckKind::Ack },
        Err(reason) => {
            tracing::info!(%reason, "job cancelled");
            let cancelled = WireOutcome::Cancelled(reason.to_string());
            Outcome { bytes: cancelled.encode(), settle: AckKind::Term }
        }
    })
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

struct Unregister<'a> {
    running: &'a Running,
    job: &'a str,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        let removed = self.running.lock().remove(self.job);
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
