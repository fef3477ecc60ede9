//! `Nats`: one connection to the server, from which distributed channels are made.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::{broadcast, mpmc, watch};
use crate::connection::Connection;
use crate::{NatsConfig, NatsError};

/// A connection to a NATS server for klaw's distributed channels. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let nats = klaw_nats::Nats::connect(klaw_nats::NatsConfig::from_env()?).await?;
/// let (tx, rx) = nats.channel::<String>("orders", 64).await?;
/// tx.send("one".to_owned()).await?;
/// assert_eq!(rx.recv().await?, "one");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Nats {
    pub(crate) connection: Arc<Connection>,
}

impl Nats {
    /// Connects.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), klaw_nats::NatsError> {
    /// let nats = klaw_nats::Nats::connect(klaw_nats::NatsConfig::new("nats://127.0.0.1:4222")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: NatsConfig) -> Result<Self, NatsError> {
        Ok(Self { connection: Arc::new(Connection::open(config).await?) })
    }

    /// True while the client holds a connection to the server, as far as it knows (a server
    /// that just died may still count as connected for a moment). The client reconnects by
    /// itself; a health check can report this.
    ///
    /// ```no_run
    /// # async fn demo(nats: klaw_nats::Nats) {
    /// if !nats.is_connected() { eprintln!("NATS is away; sends wait up to publish_retry") }
    /// # }
    /// ```
    pub fn is_connected(&self) -> bool {
        self.connection.client.connection_state() == async_nats::connection::State::Connected
    }

    /// A bounded MPMC channel named `name`, shared by every process that opens it: each
    /// message goes to exactly one receiver, in any process. At most `capacity` messages are
    /// queued or being received; `try_send` on a full channel gives `Full`, `send` waits.
    /// The first process to open it sets its capacity.
    ///
    /// ```no_run
    /// # async fn demo(nats: klaw_nats::Nats) -> Result<(), Box<dyn std::error::Error>> {
    /// let (tx, rx) = nats.channel::<u64>("jobs", 128).await?;
    /// # Ok(()) }
    /// ```
    pub async fn channel<T>(
        &self,
        name: &str,
        capacity: usize,
    ) -> Result<(mpmc::Sender<T>, mpmc::Receiver<T>), NatsError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        mpmc::open(self.connection.clone(), name, capacity).await
    }

    /// A broadcast channel named `name`: every receiver, in any process, sees every message
    /// sent after it subscribed; one that falls more than `capacity` behind gets `Lagged(n)`.
    ///
    /// ```no_run
    /// # async fn demo(nats: klaw_nats::Nats) -> Result<(), Box<dyn std::error::Error>> {
    /// let (tx, mut rx) = nats.broadcast::<String>("events", 256).await?;
    /// # Ok(()) }
    /// ```
    pub async fn broadcast<T>(
        &self,
        name: &str,
        capacity: usize,
    ) -> Result<(broadcast::Sender<T>, broadcast::Receiver<T>), NatsError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        broadcast::open(self.connection.clone(), name, capacity).await
    }

    /// A watch channel named `name`, in a key-value bucket: every process sees its latest
    /// value. `initial` is used only if nobody set one yet. The receiver is klaw's local
    /// `watch::Receiver`, kept current from the server.
    ///
    /// ```no_run
    /// # async fn demo(nats: klaw_nats::Nats) -> Result<(), Box<dyn std::error::Error>> {
    /// let (tx, mut rx) = nats.watch::<u32>("config-version", 1).await?;
    /// tx.send(2).await?;
    /// rx.changed().await?;
    /// assert_eq!(*rx.borrow(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn watch<T>(
        &self,
        name: &str,
        initial: T,
    ) -> Result<(watch::Sender<T>, klaw_rt::channel::watch::Receiver<T>), NatsError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        watch::open(self.connection.clone(), name, initial).await
    }
}

/// The process's shared connection for the free functions: from the environment, made on
/// first use (a failed attempt is tried again next time).
async fn from_env() -> Result<Nats, NatsError> {
    static SHARED: std::sync::OnceLock<Nats> = std::sync::OnceLock::new();
    if let Some(nats) = SHARED.get() {
        return Ok(nats.clone());
    }
    let nats = Nats::connect(NatsConfig::from_env()?).await?;
    Ok(SHARED.get_or_init(|| nats).clone())
}

/// [`Nats::channel`] on the connection `KLAW_NATS_URL` names (shared by the process).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let (tx, rx) = klaw_nats::channel::<u64>("jobs", 64).await?;
/// # Ok(()) }
/// ```
pub async fn channel<T>(
    name: &str,
    capacity: usize,
) -> Result<(mpmc::Sender<T>, mpmc::Receiver<T>), NatsError>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    from_env().await?.channel(name, capacity).await
}

/// [`Nats::broadcast`] on the connection `KLAW_NATS_URL` names (shared by the process).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let (tx, rx) = klaw_nats::broadcast::<String>("events", 256).await?;
/// # Ok(()) }
/// ```
pub async fn broadcast<T>(
    name: &str,
    capacity: usize,
) -> Result<(broadcast::Sender<T>, broadcast::Receiver<T>), NatsError>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    from_env().await?.broadcast(name, capacity).await
}

/// [`Nats::watch`] on the connection `KLAW_NATS_URL` names (shared by the process).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let (tx, rx) = klaw_nats::watch::<u32>("version", 1).await?;
/// # Ok(()) }
/// ```
pub async fn watch<T>(
    name: &str,
    initial: T,
) -> Result<(watch::Sender<T>, klaw_rt::channel::watch::Receiver<T>), NatsError>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    from_env().await?.watch(name, initial).await
}
