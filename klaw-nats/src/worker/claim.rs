//! A worker's claim on a job it took: settled once the job's outcome is stored, handed back if
//! the worker lets go of it first, and kept alive while the job runs.
//!
//! Every claim of a worker is renewed by one task on the connection's tokio runtime
//! ([`Renewals`]), not beside its job: a body that blocks its thread (it should not, but a long
//! computation does) would otherwise starve its own keep-alive, and the job would be delivered
//! again while it runs. One task for all of them, so that a job costs a map entry, not a tokio
//! task whose spawn and end would each wake the tokio thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message, message::Acker};

/// A job taken by this worker: its delivery, until settled. Dropped unsettled, it hands the job
/// back (a worker that stops mid-job lets another worker take it now rather than after the ack
/// wait).
pub(super) struct Claim {
    acker: Option<Acker>,
    tokio: tokio::runtime::Handle,
}

impl Claim {
    /// Claims `message`'s delivery: the claim, the message's content, and a second acker of
    /// the same delivery, for [`Renewals::keep`].
    pub(super) fn take(
        message: Message,
        tokio: tokio::runtime::Handle,
    ) -> (Self, async_nats::Message, Acker) {
        let renewal = Acker::new(message.context.clone(), message.message.reply.clone());
        let (message, acker) = message.split();
        (Claim { acker: Some(acker), tokio }, message, renewal)
    }

    pub(super) async fn settle(mut self, kind: AckKind) {
        if let Some(acker) = self.acker.take() {
            let settled = match kind {
                AckKind::Ack => acker.double_ack().await,
                other => acker.ack_with(other).await,
            };
            if let Err(error) = settled {
                tracing::warn!(%error, "could not settle a job; it will be redelivered");
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take() {
            self.tokio.spawn(async move {
                let _ = acker.ack_with(AckKind::Nak(None)).await;
            });
        }
    }
}

/// The claims of the jobs a worker runs, renewed together every `ack_wait / 3` by one task on
/// the tokio runtime ([`Renewals::start`]): each claim is renewed within a third of the ack
/// wait of its start, and then every third of it.
#[derive(Default)]
pub(super) struct Renewals(Mutex<Claims>);

#[derive(Default)]
struct Claims {
    next: u64,
    renewing: HashMap<u64, Arc<Acker>>,
}

impl Renewals {
    fn lock(&self) -> MutexGuard<'_, Claims> {
        // Nothing under this lock panics; a poisoned map is still sound.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Renews every claim kept here, every `every`, until `renewals` is dropped.
    pub(super) fn start(renewals: &Arc<Self>, tokio: &tokio::runtime::Handle, every: Duration) {
        let renewals: Weak<Self> = Arc::downgrade(renewals);
        tokio.spawn(async move {
            loop {
                // Real time even under a paused clock: the server's ack wait is.
                async_io::Timer::after(every).await;
                let Some(renewals) = renewals.upgrade() else { return };
                // Taken out, and sent after the lock is released; all at once, so that one slow
                // publish delays no other claim.
                let claims: Vec<Arc<Acker>> = renewals.lock().renewing.values().cloned().collect();
                drop(renewals);
                let renewing = claims.iter().map(|claim| claim.ack_with(AckKind::Progress));
                futures_util::future::join_all(renewing).await;
            }
        });
    }

    /// Keeps the claim `renewal` acks for alive until the returned guard is dropped.
    pub(super) fn keep(self: &Arc<Self>, renewal: Acker) -> Renewing {
        let mut claims = self.lock();
        let key = claims.next;
        claims.next += 1;
        claims.renewing.insert(key, Arc::new(renewal));
        Renewing { renewals: self.clone(), key }
    }
}

/// Renews a claim until dropped (when the job has ended, or its worker stopped).
pub(super) struct Renewing {
    renewals: Arc<Renewals>,
    key: u64,
}

impl Drop for Renewing {
    fn drop(&mut self) {
        let removed = self.renewals.lock().renewing.remove(&self.key);
        drop(removed); // outside the lock
    }
}
