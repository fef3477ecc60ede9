//! Dead letters: jobs that could not run (a payload that is not a klaw job, a reply subject
//! outside the namespace, a job that used up its deliveries), kept with their reason in the
//! `<namespace>_dead` stream ([`NatsConfig::dead_letters_stream`]) for an operator to inspect,
//! replay or remove.

use std::fmt;

use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::RawMessageErrorKind;
use futures_util::StreamExt;

use crate::connection::{Connection, JobQueue};
use crate::protocol::{JobEnvelope, MaxDeliveriesAdvisory};
use crate::{NatsConfig, NatsError};

const REASON: &str = "Klaw-Reason";
const DELIVERIES: &str = "Klaw-Deliveries";

/// Puts `payload` in the dead-letter stream with `reason`. `origin` (the job's place in the jobs
/// stream) makes it idempotent: several processes may dead-letter the same job; it is kept once.
pub(crate) async fn bury(
    connection: &Connection,
    origin: u64,
    deliveries: u64,
    reason: &str,
    payload: bytes::Bytes,
) -> Result<(), NatsError> {
    let mut headers = HeaderMap::new();
    headers.insert(REASON, reason);
    headers.insert(DELIVERIES, deliveries.to_string().as_str());
    let message = PublishMessage::build()
        .payload(payload)
        .headers(headers)
        .message_id(format!("dead-{}-{origin}", connection.config.jobs_stream()));
    let subject = connection.config.dead_letter_subject(origin);
    let published =
        async { connection.jetstream.send_publish(subject, message).await?.await.map(drop) };
    published
        .await
        .map_err(|error| NatsError::jetstream("keeping a dead letter")(error.to_string()))?;
    tracing::warn!(origin, deliveries, reason, "a job went to the dead letters");
    Ok(())
}

/// How the reason of a job buried for running out of deliveries ends.
const EXHAUSTED: &str = "never finished (its workers died or lost it)";

/// Whether a dead letter's reason says its job ran out of deliveries (rather than being
/// poison): whatever `max_deliver` the reader itself is configured with.
pub(crate) fn is_exhausted(reason: &str) -> bool {
    reason.ends_with(EXHAUSTED)
}

/// Dead-letters a job that used up its deliveries (the server's advisory names it), then removes
/// it from the queue, where it would otherwise stay. `Ok` once it is not in the queue any more
/// (buried now, or earlier by another process, or cancelled); `Err` if it is still there (the
/// server could not be asked, or refused), for the advisory to be read again.
pub(crate) async fn bury_exhausted(
    connection: &Connection,
    queue: &JobQueue,
    sequence: u64,
    deliveries: u64,
) -> Result<(), String> {
    let message = match queue.jobs.get_raw_message(sequence).await {
        Ok(message) => message,
        Err(error) if error.kind() == RawMessageErrorKind::NoMessageFound => return Ok(()),
        Err(error) => return Err(error.to_string()),
    };
    let reason = format!("delivered {deliveries} times and {EXHAUSTED}");
    bury(connection, sequence, deliveries, &reason, message.payload)
        .await
        .map_err(|error| error.to_string())?;
    queue.jobs.delete_message(sequence).await.map(drop).map_err(|error| error.to_string())
}

/// Buries every job the server reports out of deliveries, from the advisories the namespace's
/// exhausted stream keeps ([`NatsConfig::exhausted_stream`]) and `buriers` reads
/// (`JobQueue::buriers_consumer`), and tells `buried` of each, until `stopped` resolves. Every
/// worker and every submitter runs this, on that one shared consumer: each
/// advisory is read by one of them, and taken off the stream only once its job has left the
/// queue, so an advisory sent while nobody listened, or read by a process that died before it
/// was done, is read again. Runs on the connection's tokio runtime.
pub(crate) async fn bury_exhausted_jobs(
    connection: &Connection,
    queue: &JobQueue,
    buriers: &PullConsumer,
    buried: impl Fn(&MaxDeliveriesAdvisory) + Send + 'static,
    stopped: klaw_rt::channel::oneshot::Receiver<()>,
) -> Result<(), NatsError> {
    let advisories = async_compat::Compat::new(buriers.messages())
        .await
        .map_err(|error| NatsError::jetstream("reading the exhausted stream")(error.to_string()))?;
    let (connection, queue) = (connection.clone(), queue.clone());
    connection.tokio.clone().spawn(async move {
        let mut advisories = advisories.take_until(stopped);
        while let Some(message) = advisories.next().await {
            // An error here is the stream's (a missed heartbeat): it goes on by itself.
            let Ok(message) = message else { continue };
            let Ok(advisory) = serde_json::from_slice::<MaxDeliveriesAdvisory>(&message.payload)
            else {
                let _ = message.ack_with(AckKind::Term).await; // not an advisory of ours
                continue;
            };
            match bury_exhausted(&connection, &queue, advisory.stream_seq, advisory.deliveries)
                .await
            {
                Ok(()) => {
                    buried(&advisory);
                    let _ = message.ack().await;
                }
                Err(error) => {
                    tracing::debug!(%error, sequence = advisory.stream_seq, "could not bury an exhausted job; reading it again later");
                    let _ = message.ack_with(AckKind::Nak(Some(RETRY_BURIAL))).await;
                }
            }
        }
    });
    Ok(())
}

/// How long an advisory whose job could not be buried waits before it is read again.
const RETRY_BURIAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One dead letter.
///
/// ```no_run
/// # async fn demo(letters: klaw_nats::DeadLetters) -> Result<(), klaw_nats::NatsError> {
/// for letter in letters.list().await? {
///     println!("#{} {}: {}", letter.sequence, letter.task.as_deref().unwrap_or("?"), letter.reason);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its place in the dead-letter stream: what [`DeadLetters::replay`] and
    /// [`DeadLetters::remove`] take.
    pub sequence: u64,
    /// Why the job could not run.
    pub reason: String,
    /// How many times it had been delivered.
    pub deliveries: u64,
    /// The remote task it names, if it is a klaw job at all.
    pub task: Option<String>,
    /// The job's id, if it is a klaw job.
    pub job: Option<String>,
}

/// The dead letters of a namespace: inspect, replay (back to the queue), remove.
///
/// ```no_run
/// # async fn demo() -> Result<(), klaw_nats::NatsError> {
/// let letters = klaw_nats::DeadLetters::open(klaw_nats::NatsConfig::from_env()?).await?;
/// for letter in letters.list().await? {
///     letters.replay(letter.sequence).await?; // a worker will take it again
/// }
/// # Ok(()) }
/// ```
pub struct DeadLetters {
    connection: Connection,
    queue: JobQueue,
}

impl fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetters").field("namespace", &self.connection.config.namespace).finish()
    }
}

impl DeadLetters {
    /// Connects to the namespace's dead letters.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), klaw_nats::NatsError> {
    /// let letters = klaw_nats::DeadLetters::open(klaw_nats::NatsConfig::new("nats://127.0.0.1:4222")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open(config: NatsConfig) -> Result<Self, NatsError> {
        let connection = Connection::open(config).await?;
        let queue = JobQueue::open(&connection).await?;
        Ok(Self { connection, queue })
    }

    /// Every dead letter kept, oldest first.
    ///
    /// ```no_run
    /// # async fn demo(letters: klaw_nats::DeadLetters) -> Result<(), klaw_nats::NatsError> {
    /// println!("{} dead letters", letters.list().await?.len());
    /// # Ok(()) }
    /// ```
    pub async fn list(&self) -> Result<Vec<DeadLetter>, NatsError> {
        async_compat::Compat::new(async {
            let error = |e: String| NatsError::jetstream("reading the dead letters")(e);
            let mut stream = self.queue.dead.clone();
            let state = stream.info().await.map_err(|e| error(e.to_string()))?.state.clone();
            let mut letters = Vec::new();
            if state.messages == 0 {
                return Ok(letters);
            }
            for sequence in state.first_sequence..=state.last_sequence {
                let Ok(message) = stream.get_raw_message(sequence).await else { continue };
                let (reason, deliveries) = why(&message);
                let job = JobEnvelope::decode(&message.payload).ok();
                letters.push(DeadLetter {
                    sequence,
                    reason,
                    deliveries,
                    task: job.as_ref().map(|job| job.task.clone()),
                    job: job.map(|job| job.id),
                });
            }
            Ok(letters)
        })
        .await
    }

    /// Puts a dead letter's job back in the queue (for after a fix), and removes the letter.
    ///
    /// ```no_run
    /// # async fn demo(letters: klaw_nats::DeadLetters) -> Result<(), klaw_nats::NatsError> {
    /// letters.replay(1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn replay(&self, sequence: u64) -> Result<(), NatsError> {
        async_compat::Compat::new(async {
            let error = |e: String| NatsError::jetstream("replaying a dead letter")(e);
            let message = self
                .queue
                .dead
                .get_raw_message(sequence)
                .await
                .map_err(|e| error(e.to_string()))?;
            let subject = self.connection.config.jobs_subject();
            let ack = self.connection.jetstream.publish(subject, message.payload).await;
            ack.map_err(|e| error(e.to_string()))?.await.map_err(|e| error(e.to_string()))?;
            self.queue.dead.delete_message(sequence).await.map_err(|e| error(e.to_string()))?;
            Ok(())
        })
        .await
    }

    /// Removes a dead letter for good.
    ///
    /// ```no_run
    /// # async fn demo(letters: klaw_nats::DeadLetters) -> Result<(), klaw_nats::NatsError> {
    /// letters.remove(1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(&self, sequence: u64) -> Result<(), NatsError> {
        async_compat::Compat::new(self.queue.dead.delete_message(sequence))
            .await
            .map(drop)
            .map_err(|e| NatsError::jetstream("removing a dead letter")(e.to_string()))
    }
}

/// The reason and deliveries of the dead letter of the job at `origin`, if it has one.
pub(crate) async fn letter_of(
    connection: &Connection,
    queue: &JobQueue,
    origin: u64,
) -> Option<(String, u64)> {
    let subject = connection.config.dead_letter_subject(origin);
    let message = queue.dead.get_last_raw_message_by_subject(&subject).await.ok()?;
    Some(why(&message))
}

/// A dead letter's reason and deliveries, from the headers `bury` gave it.
fn why(message: &async_nats::jetstream::message::StreamMessage) -> (String, u64) {
    let header = |name: &str| message.headers.get(name).map(|value| value.as_str().to_owned());
    let deliveries = header(DELIVERIES).and_then(|n| n.parse().ok()).unwrap_or(0);
    (header(REASON).unwrap_or_default(), deliveries)
}
