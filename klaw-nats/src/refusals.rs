//! The subjects the server refused to let this connection publish to.
//!
//! A publish the user may not make is not answered: the server tells the connection, apart
//! from the request, with `-ERR 'Permissions Violation for Publish to "<subject>"'`, and the
//! request itself waits out the client's timeout. A request that knows its subject ends as soon
//! as that refusal arrives, with an error that says what is missing, instead of a timeout that
//! blames JetStream.

use std::collections::VecDeque;
use std::future::Future;

use klaw_rt::channel::watch;

/// How many recent refusals are kept: enough for the requests a process sends together when
/// it starts (five), and bounded whatever the server refuses afterwards.
const KEPT: usize = 32;

#[derive(Debug, Default)]
struct Refused {
    /// Refusals heard since the connection opened.
    total: u64,
    /// The most recent, each with its place in `total`.
    recent: VecDeque<(u64, String)>,
}

/// The server's refusals heard on one connection, for requests waiting on their subject.
#[derive(Debug)]
pub(crate) struct Refusals(watch::Sender<Refused>);

impl Default for Refusals {
    fn default() -> Self {
        Self(watch::channel(Refused::default()).0)
    }
}

impl Refusals {
    /// Notes the subject a server error refused, if it is a permission refusal of a publish.
    pub(crate) fn hear(&self, server_error: &str) {
        let Some(subject) = refused_subject(server_error) else { return };
        let subject = subject.to_owned();
        self.0.send_modify(move |refused| {
            refused.total += 1;
            if refused.recent.len() == KEPT {
                refused.recent.pop_front();
            }
            refused.recent.push_back((refused.total, subject));
        });
    }

    /// Runs `request`, a publish to a subject ending in `subject_tail` (the JetStream API's
    /// prefix can differ with a domain), and ends it with `None` if the server refuses such a
    /// publish meanwhile.
    pub(crate) async fn unless_refused<T>(
        &self,
        subject_tail: &str,
        request: impl Future<Output = T>,
    ) -> Option<T> {
        let mut refusals = self.0.subscribe();
        // Only a refusal heard after this request began answers it.
        let before = refusals.borrow().total;
        let refused = async move {
            let matches = |refused: &Refused| {
                let mut recent = refused.recent.iter();
                recent.any(|(n, subject)| *n > before && subject.ends_with(subject_tail))
            };
            // The sender lives as long as `self`, which outlives this call.
            let _ = refusals.wait_for(matches).await;
        };
        futures_util::pin_mut!(request, refused);
        match futures_util::future::select(request, refused).await {
            futures_util::future::Either::Left((answer, _)) => Some(answer),
            futures_util::future::Either::Right(((), _)) => None,
        }
    }
}

/// The subject in `Permissions Violation for Publish to "<subject>"`, as nats-server words it.
fn refused_subject(server_error: &str) -> Option<&str> {
    const REFUSAL: &str = "permissions violation for publish to";
    // ASCII lowercasing keeps every byte offset, so `at` is an offset into `server_error`.
    let at = server_error.to_ascii_lowercase().find(REFUSAL)?;
    let rest = &server_error[at + REFUSAL.len()..];
    let quoted = rest.trim_start().trim_start_matches(['"', '\'']);
    let end = quoted.find(['"', '\'']).unwrap_or(quoted.len());
    Some(quoted[..end].trim()).filter(|subject| !subject.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED_OTHER: &str = r#"Permissions Violation for Publish to "$JS.API.STREAM.CREATE.b""#;
    const REFUSED_NEW: &str = r#"Permissions Violation for Publish to "$JS.API.STREAM.CREATE.c""#;

    #[test]
    fn the_refused_subject_is_read_from_the_servers_words() {
        let error = r#"Permissions Violation for Publish to "$JS.API.STREAM.CREATE.app_jobs""#;
        assert_eq!(refused_subject(error), Some("$JS.API.STREAM.CREATE.app_jobs"));
        assert_eq!(refused_subject(r#"'permissions violation for publish to "a.b"'"#), Some("a.b"));
        assert_eq!(refused_subject(r#"Permissions Violation for Subscription to "a.b""#), None);
        assert_eq!(refused_subject("maximum payload exceeded"), None);
    }

    #[test]
    fn a_request_ends_at_a_refusal_of_its_subject_heard_after_it_began() {
        let refusals = Refusals::default();
        refusals.hear(r#"Permissions Violation for Publish to "$JS.API.STREAM.CREATE.a""#);
        klaw_rt::runtime::block_on(async {
            // A refusal heard before the request began does not end it.
            let (answer, answered) = klaw_rt::channel::oneshot::channel();
            let waiting = refusals.unless_refused(".STREAM.CREATE.a", answered);
            let answer = async move { answer.send(7).unwrap() };
            let (waited, ()) = futures_util::future::join(waiting, answer).await;
            assert_eq!(waited, Some(Ok(7)));
            // One heard while it waits does, if it names the request's subject.
            let never = std::future::pending::<u32>();
            let refused = refusals.unless_refused(".STREAM.CREATE.c", never);
            let refuse = async {
                refusals.hear(REFUSED_OTHER);
                refusals.hear(REFUSED_NEW);
            };
            let (refused, ()) = futures_util::future::join(refused, refuse).await;
            assert_eq!(refused, None);
        });
    }
}
