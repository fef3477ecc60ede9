//! The submitter's side: `NatsBackend` publishes jobs to the work queue and routes each reply
//! to the task waiting for it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_nats::jetstream::message::PublishMessage;
use futures_util::StreamExt;
use klaw_rt::CancelReason;
use klaw_rt::remote::{
    BackendFactory, JobId, RemoteBackend, RemoteError, RemoteJob, SubmitFuture, WireOutcome,
};

use crate::connection::Connection;
use crate::protocol::{JobEnvelope, MaxDeliveriesAdvisory};
use crate::{NatsConfig, NatsError};

/// A job waiting for its reply.
struct Pending {
    task: &'static str,
    reply: klaw_rt::channel::oneshot::Sender<Vec<u8>>,
    /// The job's place in the stream once the server stored it: a cancel removes it from there.
    sequence: Option<u64>,
}

struct Inner {
    connection: Connection,
    client_id: String,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Inner {
    fn pending(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        // No code that can panic runs under this lock, so a poisoned lock still holds sound data.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn complete(&self, job: &str, reply: Vec<u8>) {
        if let Some(pending) = self.pending().remove(job) {
            // The waiting task may be gone (cancelled): then nobody wants the reply.
            let _ = pending.reply.send(reply);
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
/// let backend = klaw_nats::NatsBackend::connect(klaw_nats::NatsConfig::from_env()).await?;
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
            .field("url", &self.inner.connection.config.url)
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
        let client_id = JobId::random().to_string();
        let inner = Arc::new(Inner { connection, client_id, pending: Mutex::default() });
        async_compat::Compat::new(listen(inner.clone())).await?;
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
        let jobs = &self.inner.connection.jobs;
        let info = async_compat::Compat::new(jobs.get_info())
            .await
            .map_err(|error| NatsError::jetstream("reading the jobs stream")(error.to_string()))?;
        Ok(info.state.messages)
    }
}

/// Subscribes to this client's replies and to the server's max-deliveries advisories, and
/// routes both to the waiting tasks, on the tokio runtime async-nats uses.
async fn listen(inner: Arc<Inner>) -> Result<(), NatsError> {
    let connection = &inner.connection;
    let subscribe_error = |error: async_nats::SubscribeError| NatsError::JetStream {
        action: "subscribing",
        message: error.to_string(),
    };
    let prefix = connection.config.reply_prefix(&inner.client_id);
    let mut replies =
        connection.client.subscribe(format!("{prefix}.*")).await.map_err(subscribe_error)?;
    let mut advisories = connection
        .client
        .subscribe(connection.config.max_deliveries_advisory())
        .await
        .map_err(subscribe_error)?;
    let weak = Arc::downgrade(&inner);
    connection.tokio.spawn(async move {
        while let Some(message) = replies.next().await {
            let Some(inner) = weak.upgrade() else { return };
            if let Some(job) = message.subject.rsplit('.').next() {
                inner.complete(job, message.payload.to_vec());
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
            let found = inner
                .pending()
                .iter()
                .find(|(_, p)| p.sequence == Some(advisory.stream_seq))
                .map(|(job, p)| (job.clone(), p.task));
            if let Some((job, task)) = found {
                let refused = WireOutcome::<(), ()>::Refused(RemoteError::MaxDeliveries {
                    name: task.to_owned(),
                    deliveries: advisory.deliveries,
                });
                inner.complete(&job, refused.encode().expect("a refusal always encodes"));
                // A work queue keeps a message that ran out of deliveries: nobody will take it.
                let _ = inner.connection.jobs.delete_message(advisory.stream_seq).await;
            }
        }
    });
    Ok(())
}

/// Removes a pending entry when its submit future ends or is dropped.
struct PendingGuard<'a> {
    inner: &'a Inner,
    job: &'a str,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.inner.pending().remove(self.job);
    }
}

impl RemoteBackend for NatsBackend {
    fn submit(&self, job: RemoteJob) -> SubmitFuture {
        let inner = self.inner.clone();
        Box::pin(async_compat::Compat::new(async move {
            let id = job.id.to_string();
            let (reply_tx, reply_rx) = klaw_rt::oneshot();
            inner
                .pending()
                .insert(id.clone(), Pending { task: job.task, reply: reply_tx, sequence: None });
            let _guard = PendingGuard { inner: &inner, job: &id };
            let config = &inner.connection.config;
            let envelope = JobEnvelope {
                id: id.clone(),
                task: job.task.to_owned(),
                build: job.build.to_owned(),
                args: job.args,
                reply: format!("{}.{id}", config.reply_prefix(&inner.client_id)),
            };
            let transport = |error: String| RemoteError::Transport(error);
            let publish = PublishMessage::build().payload(envelope.encode().into()).message_id(&id);
            let ack = inner
                .connection
                .jetstream
                .send_publish(config.jobs_subject(), publish)
                .await
                .map_err(|error| transport(error.to_string()))?
                .await
                .map_err(|error| transport(error.to_string()))?;
            if let Some(pending) = inner.pending().get_mut(&id) {
                pending.sequence = Some(ack.sequence);
            }
            tracing::debug!(job = %id, task = job.task, sequence = ack.sequence, "job submitted");
            reply_rx.await.map_err(|_| transport("the reply listener stopped".to_owned()))
        }))
    }

    fn cancel(&self, job: &JobId, reason: &CancelReason) {
        let inner = self.inner.clone();
        let id = job.to_string();
        let sequence = inner.pending().get(&id).and_then(|pending| pending.sequence);
        let reason = reason.to_string();
        let tokio = inner.connection.tokio.clone();
        tokio.spawn(async move {
            // The marker first: a worker that takes the job from now on skips it, and one
            // running it sees the marker through its watch.
            if let Err(error) = inner.connection.cancels.put(&id, reason.into_bytes().into()).await
            {
                tracing::warn!(job = %id, %error, "could not publish a cancel");
            }
            if let Some(sequence) = sequence {
                // Still queued? Then no worker will ever see it.
                let _ = inner.connection.jobs.delete_message(sequence).await;
            }
        });
    }
}

/// `KLAW_BACKEND=nats`: connects with [`NatsConfig::from_env`].
fn connect_from_env() -> Result<Arc<dyn RemoteBackend>, klaw_rt::BoxError> {
    let backend = klaw_rt::block_on(NatsBackend::connect(NatsConfig::from_env()))?;
    Ok(Arc::new(backend))
}

inventory::submit! {
    BackendFactory { name: "nats", connect: connect_from_env }
}
