//! A job's way through a worker, on the two runtimes it crosses.
//!
//! Jobs arrive on the tokio runtime async-nats runs on, and every request a job makes before
//! and after its body (its cancel marker, its reply, its acknowledgement) is answered there.
//! So those steps run there, as tokio tasks ([`JobTaker::take_jobs`], [`prepare`],
//! [`finish`]), and only the body runs on a klaw worker ([`ReadyJob::run`], a child of the
//! worker's scope). A job crosses between the two threads twice, to its body and back, where
//! running every step on the klaw worker crossed at each request and each answer.
//!
//! Ownership: a job's claim, its renewal, its registration for cancels and its concurrency
//! slot travel with it from one step to the next, so wherever the job is dropped (a stopped
//! worker drops the taker, the jobs it prepares or has ready, and the scope's children, whose
//! bodies are cancelled) its claim hands it back and its slot is freed. A job whose body has
//! ended is in [`finish`], which a stopped worker lets end: its outcome is delivered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use futures_util::StreamExt;
use klaw_rt::cancel::Region;
use klaw_rt::channel::{Receiver, Sender};
use klaw_rt::remote::{RemoteTaskDef, WireOutcome};
use tracing::Instrument;

use super::claim::{Claim, Renewals, Renewing};
use super::{
    FETCH_WAIT, Outcome, Registered, Running, cancel_reason, check, compat, outcome_key,
    read_cancel_marker, reply, within_max_payload,
};
use crate::connection::{Connection, JobQueue};
use crate::dead;
use crate::protocol::JobEnvelope;

/// How long a worker waits after a pull of jobs failed before it pulls again.
const AFTER_A_FAILED_PULL: std::time::Duration = std::time::Duration::from_millis(100);

/// What every step of a job needs from its worker.
pub(super) struct JobTaker {
    pub(super) connection: Connection,
    pub(super) queue: JobQueue,
    pub(super) running: Arc<Running>,
    pub(super) renewals: Arc<Renewals>,
    pub(super) concurrency: usize,
}

impl JobTaker {
    /// Takes jobs while fewer than `concurrency` are held, prepares each ([`prepare`], several
    /// at once) and sends those ready to run to `ready`. Runs on the tokio runtime until it
    /// fails (the server refused a fetch) or is dropped, which drops the jobs it prepares.
    pub(super) async fn take_jobs(
        self,
        mut consumer: PullConsumer,
        ready: Sender<ReadyJob>,
    ) -> Result<(), klaw_rt::error::Error> {
        let concurrency = self.concurrency;
        let taker = Arc::new(self);
        let (slot_tx, slot_rx) = klaw_rt::channel::bounded::<()>(concurrency);
        let mut preparing = tokio::task::JoinSet::new();
        loop {
            // Wait for a free slot before taking a job: a job taken is a job claimed.
            slot_tx.send(()).await.map_err(klaw_rt::error::Error::other)?;
            let free = 1 + (0..concurrency).take_while(|_| slot_tx.try_send(()).is_ok()).count();
            let batch = consumer
                .batch()
                .max_messages(free)
                .expires(FETCH_WAIT)
                .messages()
                .await
                .map_err(|error| klaw_rt::error::Error::other(error.to_string()))?;
            let mut batch = std::pin::pin!(batch);
            let (mut taken, mut failed) = (0, false);
            while let Some(message) = batch.next().await {
                let Ok(message) = message else {
                    failed = true;
                    break;
                };
                taken += 1;
                let slot = Slot(slot_rx.clone());
                preparing.spawn(prepare(taker.clone(), message, slot, ready.clone()));
                while preparing.try_join_next().is_some() {}
            }
            for _ in taken..free {
                let _ = slot_rx.try_recv();
            }
            while preparing.try_join_next().is_some() {}
            if failed {
                // The pull failed: the consumer may be gone (an operator deleted it), and every
                // pull to it would fail for ever, leaving every job queued. Found or made again
                // (the same name and config); if the server does not answer, the next pull says.
                // A pull that fails at once (the server recovering) is not repeated at once.
                tracing::debug!("a pull of jobs failed; looking for the workers' consumer");
                tokio::time::sleep(AFTER_A_FAILED_PULL).await;
                let config = &taker.connection.config;
                if let Ok(found) = taker.queue.workers_consumer(config).await {
                    consumer = found;
                }
            }
        }
    }
}

/// A place among a worker's `concurrency`, freed when the job that holds it is dropped.
pub(super) struct Slot(Receiver<()>);

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = self.0.try_recv();
    }
}

/// A job checked and claimed, whose cancel marker was read: its body is next.
pub(super) struct ReadyJob {
    taker: Arc<JobTaker>,
    job: JobEnvelope,
    key: String,
    task: &'static RemoteTaskDef,
    /// Cancelled already if the job's submitter cancelled it.
    region: Region,
    registered: Registered,
    claim: Claim,
    renewing: Renewing,
    slot: Slot,
    span: tracing::Span,
}

/// The steps of a job before its body, on the tokio runtime: a poison job goes to the dead
/// letters, a job this worker cannot run is refused, and a job it runs is registered for
/// cancels before its cancel marker is read, so a cancel that comes at any moment from then
/// on reaches it. Dropped anywhere, it hands the job back (its claim) and frees its slot.
async fn prepare(taker: Arc<JobTaker>, message: Message, slot: Slot, ready: Sender<ReadyJob>) {
    let connection = &taker.connection;
    let (deliveries, origin) = message
        .info()
        .map(|info| (info.delivered.max(1) as u64, info.stream_sequence))
        .unwrap_or((1, 0));
    let (claim, message, renewal) = Claim::take(message, connection.tokio.clone());
    // A poison job goes to the dead letters, with its reason, before it leaves the queue (if
    // it cannot be kept there, it stays in the queue and comes back).
    let bury = |reason: String| {
        let payload = message.payload.clone();
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
    async {
        // Outcomes go only to this namespace's replies: a job cannot name another subject.
        let Some(key) = outcome_key(&connection.config, &job) else {
            let reason = format!("its reply subject `{}` is not this namespace's", job.reply);
            if bury(reason).await.is_ok() {
                claim.settle(AckKind::Term).await;
            }
            return;
        };
        let task = match check(&job) {
            Ok(task) => task,
            Err(error) => {
                tracing::warn!(%error, "job refused");
                let refused =
                    Outcome { bytes: WireOutcome::Refused(error).encode(), settle: AckKind::Term };
                let refused = within_max_payload(connection, &job, refused);
                finish(&taker, &job, &key, refused, claim, None).await;
                return;
            }
        };
        // Renewed until the job is settled or handed back: through the outcome's storing too.
        let renewing = taker.renewals.keep(renewal);
        // The token exists before the task runs, and is registered before the marker is read.
        let region = Region::new();
        let registered = Registered::new(taker.running.clone(), job.id.clone(), region.token());
        let ack_wait = connection.config.ack_wait;
        match read_cancel_marker(&taker.queue, &job.id, ack_wait).await {
            // Not known: back to the queue, for a later delivery (each counts towards
            // `max_deliver`, so a job that can never be checked ends in the dead letters).
            None => {
                drop(renewing);
                claim.settle(AckKind::Nak(Some(ack_wait / 3))).await;
                return;
            }
            Some(Some(marker)) => {
                region.token().cancel(cancel_reason(&marker));
            }
            Some(None) => {}
        }
        let job = ReadyJob {
            taker: taker.clone(),
            job,
            key,
            task,
            region,
            registered,
            claim,
            renewing,
            slot,
            span: tracing::Span::current(),
        };
        // Refused only once the worker has stopped: the job is dropped, and handed back.
        drop(ready.try_send(job));
    }
    .instrument(span)
    .await;
}

impl ReadyJob {
    /// Runs the job's body in its cancel region, on the klaw worker this is spawned on, then
    /// hands its outcome to [`finish`], a task on the tokio runtime, and ends: the klaw worker
    /// is not woken again for the job's last steps. The job keeps its slot until it is
    /// settled, and a body that has ended has its outcome delivered even if the worker stops
    /// meanwhile (the outcome is not thrown away for the job to run again elsewhere).
    pub(super) async fn run(self) {
        let ReadyJob { taker, job, key, task, region, registered, claim, renewing, slot, span } =
            self;
        let outcome = async {
            let run = match task.start(&job.args) {
                Ok(run) => run,
                Err(error) => {
                    let refused = WireOutcome::Refused(error).encode();
                    return Outcome { bytes: refused, settle: AckKind::Term };
                }
            };
            // The body keeps a tokio context, for the tokio-based crates it may use.
            match compat(region.run(run)).await {
                Ok(reply_bytes) => Outcome { bytes: reply_bytes, settle: AckKind::Ack },
                Err(reason) => {
                    tracing::info!(%reason, "job cancelled");
                    let cancelled = WireOutcome::Cancelled(reason.to_string());
                    Outcome { bytes: cancelled.encode(), settle: AckKind::Term }
                }
            }
        }
        .instrument(span.clone())
        .await;
        drop(registered);
        let outcome = within_max_payload(&taker.connection, &job, outcome);
        let tokio = taker.connection.tokio.clone();
        // The job's slot goes with its outcome, and is freed once the job is settled.
        let finishing = async move {
            finish(&taker, &job, &key, outcome, claim, Some(renewing)).await;
            drop(slot);
        };
        drop(tokio.spawn(finishing.instrument(span)));
    }
}

/// Hands the outcome to its submitter or stores it ([`reply`]), then settles the job; a job
/// whose outcome could not be stored is not settled, and is delivered again.
async fn finish(
    taker: &JobTaker,
    job: &JobEnvelope,
    key: &str,
    outcome: Outcome,
    claim: Claim,
    renewing: Option<Renewing>,
) {
    let stored = reply(&taker.connection, &taker.queue, job, key, outcome.bytes).await;
    drop(renewing); // no renewal after the settling
    if stored {
        claim.settle(outcome.settle).await;
    }
}

/// A tokio task awaited from a klaw task, aborted if the klaw task lets go of it first (the
/// taker, whose jobs' claims then hand them back, on the tokio runtime).
pub(super) struct OnTokio<T>(pub(super) tokio::task::JoinHandle<T>);

impl<T> Future for OnTokio<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for OnTokio<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
