//! The submitter's side: `NatsBackend` publishes jobs to the work queue and routes each reply
//! to the task waiting for it.
//!
//! A worker sends each outcome as a request to the submitter's reply subject (the fast path):
//! a submitter listening answers once it holds the outcome, and nothing is stored. With no
//! answer (the submitter is cut off or gone) the worker stores the outcome in the outcomes
//! bucket, and settles the job only once the store is acknowledged (or the answer came). The
//! submitter reads the bucket for the jobs it still waits for after every reconnect and every
//! [`SWEEP_EVERY`] (what it missed while disconnected), so no outcome is lost, and purges each
//! outcome it read there; the bucket's TTL removes whatever a submitter that went away left
//! (and the rare outcome stored because its submitter's answer came too late).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use klaw_rt::remote::{
    BackendFactory, JobId, Relay, RemoteBackend, RemoteError, RemoteJob, SubmitFuture, WireOutcome,
};
use klaw_rt::task::CancelReason;

use crate::backoff::Backoff;
use crate::connection::{Connection, JobQueue};
use crate::protocol::{JobEnvelope, MaxDeliveriesAdvisory};
use crate::{NatsConfig, NatsError};

/// A job waiting for its reply.
struct Pending {
    task: &'static str,
    reply: klaw_rt::channel::oneshot::Sender<Vec<u8>>,
    /// The job's place in the stream once the server stored it: a cancel removes it from there.
    sequence: Option<u64>,
    /// Its publish failed after the job was handed to the client, so it may have reached a
    /// worker, and its cancel marker is being stored: a cancellation that comes back was that
    /// marker's, and is reported as the failed publish (see [`Inner::publish`]).
    unpublished: bool,
}

struct Inner {
    connection: Connection,
    queue: JobQueue,
    client_id: String,
    pending: Mutex<HashMap<String, Pending>>,
    /// Set when one of this client's jobs was buried for running out of deliveries: the sweep
    /// then runs at its next tick, and tells the waiting task (after reading the outcomes
    /// bucket first, since an outcome stored just before the burial must win).
    sweep_asked: AtomicBool,
    /// Dropped with the backend: stops the listeners, which unsubscribes them.
    _stop_listeners: [klaw_rt::channel::oneshot::Sender<()>; 3],
}

/// How often, at most, the submitter reads the outcomes bucket for the jobs it still waits
/// for, even with no reconnect seen (one is also read at once after every reconnect); twice
/// within the outcomes bucket's TTL if that is shorter. A job that left the queue
/// without an outcome its submitter can read (it expired after `outcome_ttl`) ends with
/// `RemoteError::OutcomeExpired` within this long.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// How often the submitter reads the outcomes bucket with no reconnect seen: every
/// [`SWEEP_EVERY`], or twice within the bucket's TTL if that is shorter. A worker also stores
/// an outcome while its submitter stays connected, when its request goes unanswered (a link
/// that lost what it carried for a moment, without closing): nothing then prompts a read but
/// this, and it must come before the TTL removes the outcome. The TTL is the bucket's own, which
/// the process that created the bucket chose, not necessarily this client's `outcome_ttl`.
fn sweep_every(outcomes: &async_nats::jetstream::kv::Store) -> Duration {
    bucket_ttl(outcomes).map_or(SWEEP_EVERY, |ttl| SWEEP_EVERY.min(ttl / 2))
}

/// The TTL the outcomes bucket applies (`None`: it keeps outcomes for ever).
fn bucket_ttl(outcomes: &async_nats::jetstream::kv::Store) -> Option<Duration> {
    let ttl = outcomes.stream.cached_info().config.max_age;
    (!ttl.is_zero()).then_some(ttl)
}

/// How long the read of a job's outcome waits when the server reports the job out of
/// deliveries; past it, the sweep reads it.
const EXHAUSTED_READ_WAIT: Duration = Duration::from_secs(5);

/// How many waiting jobs a sweep reads at once.
const SWEEP_READS_AT_ONCE: usize = 32;

/// How often the sweeper looks whether the connection came back.
const SWEEP_TICK: Duration = Duration::from_millis(250);

impl Inner {
    fn pending(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        // No code that can panic runs under this lock, so a poisoned lock still holds sound data.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands the outcome to the waiting task (the task may be gone, cancelled: then nobody
    /// wants it).
    fn deliver(&self, job: &str, reply: Vec<u8>) {
        // Sending wakes the waiting task: not under the lock.
        let pending = self.pending().remove(job);
        if let Some(pending) = pending {
            let reply = if pending.unpublished && is_cancellation(pending.task, &reply) {
                unpublished(None).encode()
            } else {
                reply
            };
            let _ = pending.reply.send(reply);
        }
    }

    /// Hands an outcome read from the bucket to the waiting task, then purges it from the
    /// bucket (one nobody waits for any more too), on the tokio runtime.
    fn complete(self: &Arc<Self>, job: &str, reply: Vec<u8>) {
        self.deliver(job, reply);
        let inner = self.clone();
        let key = self.outcome_key(job);
        self.connection.tokio.spawn(async move {
            // Through the stream's purge API rather than the bucket's purge marker: that is a
            // write to the key, so a submitter allowed to purge could also forge an outcome,
            // and the marker itself would stay in the bucket until the TTL.
            let outcomes = &inner.queue.outcomes;
            let subject = crate::connection::key_subject(outcomes, &key);
            if let Err(error) = outcomes.stream.purge().filter(subject).await {
                tracing::debug!(%error, "could not purge a taken outcome; the TTL will");
            }
        });
    }

    /// Whether the server says the job at `sequence` is gone from the queue; false if it does
    /// not say so within `wait`.
    async fn job_left_the_queue(&self, sequence: u64, wait: Duration) -> bool {
        let read = tokio::time::timeout(wait, self.queue.jobs.get_raw_message(sequence)).await;
        // Gone from the queue, or the queue itself gone (an operator deleted the stream): no
        // worker will take the job now.
        read.is_ok_and(|read| {
            read.is_err_and(|error| match error.kind() {
                async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound => true,
                async_nats::jetstream::stream::LastRawMessageErrorKind::JetStream(error) => {
                    error.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
                }
                _ => false,
            })
        })
    }

    fn outcome_key(&self, job: &str) -> String {
        format!("{}.{job}", self.client_id)
    }

    /// Reads the bucket for every job still waiting: what was stored while this client was
    /// disconnected, or while its worker's request went unanswered. A job that left the queue
    /// with no outcome to read ends with a typed error. Each read waits at most `wait` (the
    /// time to the next sweep): over a link that died silently a request is never answered,
    /// and waits for the client's request timeout, which may be longer than the outcomes' TTL.
    async fn sweep(self: &Arc<Self>, wait: Duration) {
        let waiting: Vec<(String, Option<u64>, &'static str)> = self
            .pending()
            .iter()
            .map(|(job, pending)| (job.clone(), pending.sequence, pending.task))
            .collect();
        // Many jobs at a time: read one after another, a pass over thousands of waiting jobs
        // would outlast the outcomes' TTL, and an outcome stored meanwhile would expire unread.
        // A read the server does not answer stops the pass (the rest wait for the next).
        let stopped = AtomicBool::new(false);
        futures_util::stream::iter(waiting)
            .for_each_concurrent(SWEEP_READS_AT_ONCE, |(job, sequence, task)| {
                let stopped = &stopped;
                async move {
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    if self.sweep_one(&job, sequence, task, wait).await.is_none() {
                        stopped.store(true, Ordering::Relaxed);
                    }
                }
            })
            .await;
    }

    /// The sweep of one waiting job; `None` if the server did not answer.
    async fn sweep_one(
        self: &Arc<Self>,
        job: &str,
        sequence: Option<u64>,
        task: &'static str,
        wait: Duration,
    ) -> Option<()> {
        let key = self.outcome_key(job);
        // Most waiting jobs still run: one read of the bucket says so.
        if let Some(outcome) = self.read_outcome(&key, wait).await? {
            self.complete(job, outcome);
            return Some(());
        }
        // Then whether the job left the queue: a worker stores the outcome before it settles
        // the job, so one that left has its outcome stored (read it again), or it expired,
        // or the job was buried.
        let Some(sequence) = sequence else { return Some(()) };
        if !self.job_left_the_queue(sequence, wait).await {
            return Some(());
        }
        match self.read_outcome(&key, wait).await? {
            Some(outcome) => self.complete(job, outcome),
            None => {
                let error = self.why_gone(sequence, task).await;
                self.complete(job, WireOutcome::Refused(error).encode());
            }
        }
        Some(())
    }

    /// The stored outcome under `key`; `None` if the bucket could not be read within `wait`
    /// (the sweep stops, and looks again next time).
    async fn read_outcome(&self, key: &str, wait: Duration) -> Option<Option<Vec<u8>>> {
        match tokio::time::timeout(wait, self.queue.outcomes.get(key)).await {
            Ok(Ok(outcome)) => Some(outcome.map(|outcome| outcome.to_vec())),
            Ok(Err(error)) => {
                tracing::debug!(%error, "could not read the outcomes bucket; will look again");
                None
            }
            Err(_) => {
                tracing::debug!("the outcomes bucket did not answer in time; will look again");
                None
            }
        }
    }

    /// Why a job left the queue with no outcome to read: buried while this client could not
    /// hear of it (by a worker), or its outcome expired.
    async fn why_gone(&self, sequence: u64, task: &str) -> RemoteError {
        let config = &self.connection.config;
        match crate::dead::letter_of(&self.connection, &self.queue, sequence).await {
            Some((reason, deliveries)) if crate::dead::is_exhausted(&reason) => {
                RemoteError::MaxDeliveries { name: task.to_owned(), deliveries }
            }
            Some((reason, _)) => {
                RemoteError::Transport(format!("the job went to the dead letters: {reason}"))
            }
            // The TTL the bucket applies, which the process that created it chose (usually a
            // worker), not necessarily this client's `outcome_ttl`: the error tells the user
            // what to change, so it names the one that removed the outcome.
            None => RemoteError::OutcomeExpired {
                name: task.to_owned(),
                ttl_secs: bucket_ttl(&self.queue.outcomes).unwrap_or(config.outcome_ttl).as_secs(),
            },
        }
    }
}

/// Runs `#[klaw::task(remote)]` tasks on NATS JetStream workers: give it to
/// `Runtime::builder().backend(..)`, or set `KLAW_BACKEND=nats` and `KLAW_NATS_URL`.
///
/// Delivery is at least once: a job whose worker dies is delivered again (after the ack wait)
/// to another worker, up to `max_deliver` times, then reported as
/// [`RemoteError::MaxDeliveries`]. A task that may run twice must be idempotent.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = klaw_nats::NatsBackend::connect(klaw_nats::NatsConfig::from_env()?).await?;
/// let rt = klaw::Runtime::builder().backend(std::sync::Arc::new(backend)).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NatsBackend {
    inner: Arc<Inner>,
}

impl fmt::Debug for NatsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBackend")
            .field("url", &crate::redact_url(&self.inner.connection.config.url))
            .field("namespace", &self.inner.connection.config.namespace)
            .field("waiting", &self.inner.pending().len())
            .finish()
    }
}

impl NatsBackend {
    /// Connects, creates the stream and bucket if needed, and starts listening for replies.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), klaw_nats::NatsError> {
    /// let backend = klaw_nats::NatsBackend::connect(klaw_nats::NatsConfig::new("nats://127.0.0.1:4222")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: NatsConfig) -> Result<Self, NatsError> {
        let connection = Connection::open(config).await?;
        let queue = JobQueue::open(&connection).await?;
        let client_id = JobId::random().to_string();
        let (stop_replies, replies_stopped) = klaw_rt::channel::oneshot::channel();
        let (stop_advisories, advisories_stopped) = klaw_rt::channel::oneshot::channel();
        let (stop_burying, burying_stopped) = klaw_rt::channel::oneshot::channel();
        let inner = Arc::new(Inner {
            connection,
            queue,
            client_id,
            pending: Mutex::default(),
            sweep_asked: AtomicBool::new(false),
            _stop_listeners: [stop_replies, stop_advisories, stop_burying],
        });
        let stopped = [replies_stopped, advisories_stopped, burying_stopped];
        async_compat::Compat::new(listen(inner.clone(), stopped)).await?;
        Ok(Self { inner })
    }

    /// Jobs submitted by this backend and not yet answered.
    ///
    /// ```no_run
    /// # fn demo(backend: &klaw_nats::NatsBackend) {
    /// println!("{} jobs in flight", backend.in_flight());
    /// # }
    /// ```
    pub fn in_flight(&self) -> usize {
        self.inner.pending().len()
    }

    /// Jobs in the queue, from every submitter: waiting for a worker, or held by one and not
    /// yet acknowledged.
    ///
    /// ```no_run
    /// # async fn demo(backend: &klaw_nats::NatsBackend) -> Result<(), klaw_nats::NatsError> {
    /// println!("{} jobs queued", backend.queued().await?);
    /// # Ok(()) }
    /// ```
    pub async fn queued(&self) -> Result<u64, NatsError> {
        let jobs = &self.inner.queue.jobs;
        let info = async_compat::Compat::new(jobs.get_info())
            .await
            .map_err(|error| NatsError::jetstream("reading the jobs stream")(error.to_string()))?;
        Ok(info.state.messages)
    }
}

/// Subscribes to this client's replies and to the server's max-deliveries advisories, and
/// routes both to the waiting tasks, on the tokio runtime async-nats uses; and takes its turn
/// at burying the jobs out of deliveries from the advisories the server keeps. A job of this
/// client's that it buries so (one whose advisory it missed while it was disconnected) is
/// reported by the next sweep, at its next tick.
async fn listen(
    inner: Arc<Inner>,
    stopped: [klaw_rt::channel::oneshot::Receiver<()>; 3],
) -> Result<(), NatsError> {
    let [replies_stopped, advisories_stopped, burying_stopped] = stopped;
    let connection = &inner.connection;
    let subscribe_error = |error: async_nats::SubscribeError| NatsError::JetStream {
        action: "subscribing",
        message: error.to_string(),
    };
    let prefix = connection.config.reply_prefix(&inner.client_id);
    let replies =
        connection.client.subscribe(format!("{prefix}.*")).await.map_err(subscribe_error)?;
    let mut replies = replies.take_until(replies_stopped);
    let advisories = connection
        .client
        .subscribe(connection.config.max_deliveries_advisory())
        .await
        .map_err(subscribe_error)?;
    let mut advisories = advisories.take_until(advisories_stopped);
    let weak = Arc::downgrade(&inner);
    let every = sweep_every(&inner.queue.outcomes);
    connection.tokio.spawn(async move {
        let mut seen = 0;
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(SWEEP_TICK).await;
            let Some(inner) = weak.upgrade() else { return };
            let reconnects = inner.connection.reconnects.load(Ordering::SeqCst);
            let asked = inner.sweep_asked.swap(false, Ordering::SeqCst);
            if asked || reconnects != seen || last.elapsed() >= every {
                seen = reconnects;
                last = Instant::now();
                inner.sweep(every).await;
            }
        }
    });
    let weak = Arc::downgrade(&inner);
    connection.tokio.spawn(async move {
        while let Some(message) = replies.next().await {
            let Some(inner) = weak.upgrade() else { return };
            let Some(job) = message.subject.rsplit('.').next() else { continue };
            match message.reply {
                // The worker asks whether we hold the outcome: we do now, so it stores nothing.
                Some(confirm) => {
                    inner.deliver(job, message.payload.to_vec());
                    let _ = inner.connection.client.publish(confirm, bytes::Bytes::new()).await;
                }
                None => inner.complete(job, message.payload.to_vec()),
            }
        }
    });
    let weak = Arc::downgrade(&inner);
    connection.tokio.spawn(async move {
        while let Some(message) = advisories.next().await {
            let Some(inner) = weak.upgrade() else { return };
            let Ok(advisory) = serde_json::from_slice::<MaxDeliveriesAdvisory>(&message.payload)
            else {
                continue;
            };
            // The fast way to the waiting task; the job itself is buried from the kept
            // advisories, by this process or another.
            inner.exhausted(&advisory);
        }
    });
    let weak = Arc::downgrade(&inner);
    let buried = move |advisory: &MaxDeliveriesAdvisory| {
        if let Some(inner) = weak.upgrade()
            && inner.job_at(advisory.stream_seq).is_some()
        {
            inner.sweep_asked.store(true, Ordering::SeqCst);
        }
    };
    let buriers = inner.queue.buriers_consumer().await?;
    crate::dead::bury_exhausted_jobs(
        &inner.connection,
        &inner.queue,
        &buriers,
        buried,
        burying_stopped,
    )
    .await?;
    Ok(())
}

/// Removes a pending entry when its submit future ends. An entry still there was not
/// answered: its task was cancelled (a submit future is only dropped early when its task
/// ends without it), so its job is deleted from the queue if it is still there.
struct PendingGuard {
    inner: Arc<Inner>,
    job: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let abandoned = self.inner.pending().remove(&self.job);
        if let Some(sequence) = abandoned.and_then(|pending| pending.sequence) {
            let inner = self.inner.clone();
            self.inner.connection.tokio.spawn(async move { inner.delete_job(sequence).await });
        }
    }
}

impl Inner {
    /// Ends the waiting task of the job `advisory` reports out of deliveries, if it is one of
    /// this client's: with the outcome stored for it, if there is one (the last delivery's
    /// worker stored it, its request unanswered, and then lost its acknowledgement with its
    /// connection: that outcome wins), else with `MaxDeliveries`. If the bucket cannot be read
    /// now, the sweep that the job's burial asks for reads it again.
    fn exhausted(self: &Arc<Self>, advisory: &MaxDeliveriesAdvisory) {
        let Some((job, task)) = self.job_at(advisory.stream_seq) else { return };
        let deliveries = advisory.deliveries;
        let inner = self.clone();
        self.connection.tokio.spawn(async move {
            let key = inner.outcome_key(&job);
            match inner.read_outcome(&key, EXHAUSTED_READ_WAIT).await {
                Some(Some(outcome)) => inner.complete(&job, outcome),
                Some(None) => {
                    let name = task.to_owned();
                    let refused =
                        WireOutcome::Refused(RemoteError::MaxDeliveries { name, deliveries });
                    inner.complete(&job, refused.encode());
                }
                None => inner.sweep_asked.store(true, Ordering::SeqCst),
            }
        });
    }

    /// The id and task of this client's waiting job at `sequence` in the jobs stream, if any.
    fn job_at(&self, sequence: u64) -> Option<(String, &'static str)> {
        self.pending()
            .iter()
            .find(|(_, p)| p.sequence == Some(sequence))
            .map(|(job, p)| (job.clone(), p.task))
    }

    /// Removes a job from the queue; fails harmlessly if a worker already acknowledged it.
    async fn delete_job(&self, sequence: u64) {
        let _ = self.queue.jobs.delete_message(sequence).await;
    }

    /// Publishes a job and records where the server stored it. Runs on its own, so that a
    /// job published after its task was cancelled is still found and deleted.
    ///
    /// A failure is reported only once the job can never run: the job is never handed to a
    /// client that knows it is disconnected (it waits for the connection for `publish_retry`),
    /// and it is handed over once, with no message id (so the server does no duplicate lookup
    /// per job). If that attempt failed (it may reach the server after all, even once the
    /// connection is back), the job's cancel marker is stored first, which every worker checks
    /// before it runs a job, and an outcome of a worker that ran it before wins over the
    /// failure ([`ran_although_unpublished`](Self::ran_although_unpublished)).
    async fn publish(self: Arc<Self>, id: String, envelope: JobEnvelope) {
        // A task cancelled before its job went out has dropped its entry: its job would only
        // reach a worker to be refused by its cancel marker, or be deleted again.
        if !self.pending().contains_key(&id) {
            return;
        }
        let config = &self.connection.config;
        let encoded = envelope.encode();
        let max = self.connection.client.server_info().max_payload;
        if max != 0 && encoded.len() > max {
            // It can never be sent: a typed refusal that says what to do, not a `Transport`
            // error a caller would retry on.
            let error = too_large_to_send(&envelope.task, Some(encoded.len()), max);
            self.complete(&id, WireOutcome::Refused(error).encode());
            return;
        }
        let published = crate::channel::publish::publish_with_id(
            &self.connection,
            &config.jobs_subject(),
            encoded.into(),
            None, // no duplicate lookup per job: a failed hand-over is not retried
            "a job",
            None,
        )
        .await;
        match published {
            Ok(sequence) => {
                let waiting = self.pending().get_mut(&id).map(|p| p.sequence = Some(sequence));
                tracing::debug!(job = %id, task = %envelope.task, sequence, "job submitted");
                if waiting.is_none() {
                    self.delete_job(sequence).await; // cancelled while being published
                }
            }
            Err(not_published) => {
                if let (crate::channel::publish::Refused::Rejected(_), false) =
                    (&not_published.refused, not_published.handed_over)
                {
                    // Refused by the client before anything was sent (its headers took it past
                    // the server's limit): it never ran, and never can as it is.
                    let max = self.connection.client.server_info().max_payload;
                    let error = too_large_to_send(&envelope.task, None, max);
                    self.complete(&id, WireOutcome::Refused(error).encode());
                    return;
                }
                let why = match &not_published.refused {
                    crate::channel::publish::Refused::Rejected(reason) => reason.clone(),
                    _ => not_published.last_error.clone().unwrap_or_else(|| {
                        format!("no connection to the server for {:?}", config.publish_retry)
                    }),
                };
                if not_published.handed_over && self.ran_although_unpublished(&id).await {
                    return;
                }
                self.complete(&id, unpublished(Some(&why)).encode());
            }
        }
    }
}

impl Inner {
    /// A job whose publish failed after it was handed to the client may have reached the server
    /// and a worker all the same (only the server's acknowledgement was lost), and run. Its
    /// cancel marker is stored first, so that no worker runs it from then on; then whatever a
    /// worker that took it before made of it is awaited: the worker's request with the outcome
    /// (answered meanwhile, since the job still waits), or the outcome it stored when nobody
    /// answered within its [`CONFIRM_WAIT`](crate::worker::CONFIRM_WAIT). True if the outcome
    /// was there: the call then ends with it, not with the failed publish.
    async fn ran_although_unpublished(self: &Arc<Self>, id: &str) -> bool {
        if let Some(pending) = self.pending().get_mut(id) {
            pending.unpublished = true;
        }
        let marker = bytes::Bytes::from_static(b"its submitter could not publish it");
        store_cancel_marker(Arc::downgrade(self), id, marker).await;
        // A worker that had the job when the marker landed stops it and replies at once, or
        // stores its outcome after one unanswered request; twice that covers the store too.
        tokio::time::sleep(2 * crate::worker::CONFIRM_WAIT).await;
        // Read until the server answers: a read lost on a link that died silently says
        // nothing, and an outcome unread there would be lost with the call reported failed.
        let key = self.outcome_key(id);
        let mut backoff = Backoff::new();
        loop {
            if !self.pending().contains_key(id) {
                return true; // its outcome came meanwhile, or its task went away
            }
            match self.read_outcome(&key, LATE_OUTCOME_READ_WAIT).await {
                Some(Some(outcome)) => {
                    self.complete(id, outcome);
                    return true;
                }
                Some(None) => return false,
                None => backoff.wait().await,
            }
        }
    }
}

/// How long the read of an unpublished job's outcome waits (see
/// [`Inner::ran_although_unpublished`]).
const LATE_OUTCOME_READ_WAIT: Duration = Duration::from_secs(5);

/// What a call whose job is larger than the server carries in one message ends with: its
/// arguments could not be sent, with both sizes (`bytes` if known) and what to do.
fn too_large_to_send(task: &str, bytes: Option<usize>, max: usize) -> RemoteError {
    let size = bytes.map_or_else(|| "the job is".to_owned(), |b| format!("the job is {b} bytes,"));
    RemoteError::Arguments {
        name: task.to_owned(),
        action: "sent".to_owned(),
        message: format!(
            "{size} more than the server's maximum message of {max} bytes (its max_payload): \
             pass large data by reference (store it elsewhere and pass where it is), or raise \
             the server's max_payload"
        ),
    }
}

/// What a call whose job could not be published ends with: `why` the publish failed, if known
/// (a cancellation by the job's own cancel marker, which a worker that took it anyway hit,
/// says no more).
fn unpublished(why: Option<&str>) -> WireOutcome {
    let why = why.map_or_else(String::new, |why| format!(": {why}"));
    WireOutcome::Refused(RemoteError::Transport(format!(
        "could not publish the job (it did not run, or a worker that took it all the same was \
         stopped by its cancel marker){why}"
    )))
}

/// Whether `reply` is a cancellation.
fn is_cancellation(task: &str, reply: &[u8]) -> bool {
    matches!(WireOutcome::decode(task, reply), Ok(WireOutcome::Cancelled(_)))
}

/// Stores a job's cancel marker, which every worker checks before it runs a job and watches
/// while it runs one. Tried until the server stores it, while the backend lives: a put lost
/// with its connection (one that died silently, so the client hears of it only at its next
/// ping) is sent again, so a cancel reaches the worker whatever the link did meanwhile. For a
/// job that may have reached the server although its publish failed, its task is told of the
/// failure only once this returns, since until then the job could still run.
async fn store_cancel_marker(inner: std::sync::Weak<Inner>, id: &str, marker: bytes::Bytes) {
    let mut backoff = Backoff::new();
    loop {
        let Some(inner) = inner.upgrade() else { return };
        let connected =
            inner.connection.client.connection_state() == async_nats::connection::State::Connected;
        if connected {
            match inner.queue.cancels.put(id, marker.clone()).await {
                Ok(_) => return,
                Err(error) => {
                    tracing::debug!(job = %id, %error, "could not store a job's cancel marker; trying again")
                }
            }
        }
        drop(inner);
        backoff.wait().await;
    }
}

impl RemoteBackend for NatsBackend {
    fn submit(&self, job: RemoteJob) -> SubmitFuture {
        let inner = self.inner.clone();
        let id = job.id.to_string();
        let (reply_tx, reply_rx) = klaw_rt::channel::oneshot::channel();
        let pending =
            Pending { task: job.task, reply: reply_tx, sequence: None, unpublished: false };
        let displaced = inner.pending().insert(id.clone(), pending);
        // Never one (job ids are random), but a reply sender wakes its receiver when dropped:
        // not under the lock.
        drop(displaced);
        let guard = PendingGuard { inner: inner.clone(), job: id.clone() };
        let envelope = JobEnvelope {
            id: id.clone(),
            task: job.task.to_owned(),
            build: job.build.to_owned(),
            args: job.args,
            reply: format!("{}.{id}", inner.connection.config.reply_prefix(&inner.client_id)),
        };
        inner.connection.tokio.spawn(inner.clone().publish(id, envelope));
        Box::pin(async move {
            let _guard = guard;
            reply_rx
                .await
                .map_err(|_| RemoteError::Transport("the reply listener stopped".to_owned()))
        })
    }

    /// Relays run on the tokio runtime async-nats runs on, where this client's replies arrive:
    /// an outcome goes from the socket to its task's handle with no hop to a worker thread.
    fn run_relay(&self, relay: Relay) -> Result<(), Relay> {
        self.inner.connection.tokio.spawn(relay);
        Ok(())
    }

    fn cancel(&self, job: &JobId, reason: &CancelReason) {
        // A worker that takes the job from now on skips it, and one running it sees the marker
        // through its watch. (A job still queued is deleted when its submit future ends.)
        let inner = Arc::downgrade(&self.inner);
        let id = job.to_string();
        let reason = reason.to_string();
        self.inner.connection.tokio.spawn(async move {
            store_cancel_marker(inner, &id, reason.into_bytes().into()).await;
        });
    }
}

/// `KLAW_BACKEND=nats`: connects with [`NatsConfig::from_env`].
fn connect_from_env() -> Result<Arc<dyn RemoteBackend>, klaw_rt::task::BoxError> {
    let backend = klaw_rt::runtime::block_on(NatsBackend::connect(NatsConfig::from_env()?))?;
    Ok(Arc::new(backend))
}

inventory::submit! {
    BackendFactory { name: "nats", connect: connect_from_env }
}
