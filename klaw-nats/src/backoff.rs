//! The pause between the tries of a loop that asks the server again until it answers: storing
//! a job's cancel marker, storing a channel's close, reading a job's cancel marker.

use std::time::Duration;

/// The first pause; each failed try doubles it, up to [`LONGEST`].
const FIRST: Duration = Duration::from_millis(50);
const LONGEST: Duration = Duration::from_secs(1);

/// A pause that doubles after each try, from 50 ms up to 1 s.
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { next: FIRST }
    }

    /// Waits the next pause, and doubles the one after. Real time, whatever clock the runtime
    /// around it keeps (a paused tokio or klaw clock would turn the pauses into a spin of
    /// requests): the server's answers come in real time.
    pub(crate) async fn wait(&mut self) {
        async_io::Timer::after(self.next).await;
        self.next = (self.next * 2).min(LONGEST);
    }
}
