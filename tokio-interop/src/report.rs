//! What a check found: the report, its broken links and why each is broken, and the progress
//! handed to the caller while it runs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use klaw::CancelReason;

/// Why a URL is broken (after the retries its kind of failure gets).
///
/// ```
/// use klaw_tokio_interop::Problem;
/// assert_eq!(Problem::Status(404).to_string(), "HTTP 404");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The server answered with this status, which is not a success.
    #[error("HTTP {0}")]
    Status(u16),
    /// No answer within the per-attempt deadline.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The request failed: the connection was refused or broke, say.
    #[error("request failed")]
    Request(#[source] Arc<reqwest::Error>),
}

/// A URL that did not answer with a page, and the pages that link to it.
///
/// ```
/// use klaw_tokio_interop::{Broken, Problem};
/// let broken = Broken { url: "http://127.0.0.1:1/missing/3".into(), problem: Problem::Status(404), found_on: vec!["http://127.0.0.1:1/page/3".into()] };
/// assert_eq!(broken.found_on.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Broken {
    /// The URL.
    pub url: String,
    /// What went wrong.
    pub problem: Problem,
    /// The pages that link to it, in order (empty for the root).
    pub found_on: Vec<String>,
}

/// How a check ended.
///
/// ```
/// use klaw_tokio_interop::Ending;
/// assert_eq!(Ending::Interrupted.to_string(), "interrupted (Ctrl-C)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// Every reachable link was checked.
    Complete,
    /// The check's deadline passed; the report is partial.
    Deadline(Duration),
    /// The caller's interrupt (Ctrl-C) came; the report is partial.
    Interrupted,
    /// The check was cancelled for another reason; the report is partial.
    Cancelled(CancelReason),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Complete => f.write_str("complete"),
            Ending::Deadline(timeout) => write!(f, "stopped at the deadline ({timeout:?})"),
            Ending::Interrupted => f.write_str("interrupted (Ctrl-C)"),
            Ending::Cancelled(reason) => write!(f, "cancelled: {reason}"),
        }
    }
}

/// Where a check is: handed to the progress callback every `progress_every` pages.
///
/// ```
/// let progress = klaw_tokio_interop::Progress { checked: 50, queued: 8, broken: 2, retries: 1, elapsed: std::time::Duration::from_millis(120) };
/// assert!(progress.to_string().starts_with("50 checked"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// URLs checked so far.
    pub checked: usize,
    /// Fetches running or waiting for a fetcher.
    pub queued: usize,
    /// Broken links so far.
    pub broken: usize,
    /// Retries so far.
    pub retries: u64,
    /// Since the check started.
    pub elapsed: Duration,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Progress { checked, queued, broken, retries, elapsed } = self;
        write!(
            f,
            "{checked} checked, {queued} in flight or queued, {broken} broken, {retries} retries \
             ({:.1}s)",
            elapsed.as_secs_f64()
        )
    }
}

/// What a check found. Its `Display` is the report a person reads.
///
/// ```
/// use klaw_tokio_interop::{Ending, Report};
/// let report = Report { root: "http://127.0.0.1:1/".into(), ending: Ending::Complete, checked: 3, ok: 3, broken: vec![], external: 0, unchecked: 0, retries: 0, elapsed: Default::default() };
/// assert!(report.to_string().contains("3 pages checked"));
/// assert_eq!(report.exit_code(false), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Report {
    /// Where the check started.
    pub root: String,
    /// Whether it finished.
    pub ending: Ending,
    /// URLs fetched to an answer: `ok` plus the broken ones.
    pub checked: usize,
    /// URLs that answered with a page.
    pub ok: usize,
    /// URLs that did not, in URL order.
    pub broken: Vec<Broken>,
    /// Distinct links to other hosts, not checked.
    pub external: usize,
    /// URLs found but not checked because the check stopped early (0 when complete).
    pub unchecked: usize,
    /// Attempts beyond the first, over all URLs.
    pub retries: u64,
    /// How long the check took.
    pub elapsed: Duration,
}

impl Report {
    /// The process's exit code for this report: 0 when complete (or 1 with `strict` and any
    /// broken link), 124 at the deadline (as `timeout(1)`), 130 when interrupted (as a shell
    /// reports SIGINT), 1 when cancelled otherwise.
    ///
    /// ```
    /// use klaw_tokio_interop::{Ending, Report};
    /// let mut report = Report { root: String::new(), ending: Ending::Interrupted, checked: 0, ok: 0, broken: vec![], external: 0, unchecked: 4, retries: 0, elapsed: Default::default() };
    /// assert_eq!(report.exit_code(false), 130);
    /// report.ending = Ending::Deadline(std::time::Duration::from_secs(1));
    /// assert_eq!(report.exit_code(false), 124);
    /// ```
    pub fn exit_code(&self, strict: bool) -> u8 {
        match self.ending {
            Ending::Complete if strict && !self.broken.is_empty() => 1,
            Ending::Complete => 0,
            Ending::Deadline(_) => 124,
            Ending::Interrupted => 130,
            Ending::Cancelled(_) => 1,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "link check of {}: {}", self.root, self.ending)?;
        writeln!(
            f,
            "  {} pages checked ({} ok, {} broken), {} retries, {:.2}s; links to other hosts \
             skipped: {}",
            self.checked,
            self.ok,
            self.broken.len(),
            self.retries,
            self.elapsed.as_secs_f64(),
            self.external,
        )?;
        if self.unchecked > 0 {
            writeln!(
                f,
                "  {} links found but not checked (the check stopped early)",
                self.unchecked
            )?;
        }
        if !self.broken.is_empty() {
            writeln!(f, "broken links:")?;
        }
        for broken in &self.broken {
            write!(f, "  {} ({}", broken.url, broken.problem)?;
            // The causes too: "request failed: connection refused".
            let mut cause = std::error::Error::source(&broken.problem);
            while let Some(error) = cause {
                write!(f, ": {error}")?;
                cause = error.source();
            }
            writeln!(f, ")")?;
            match broken.found_on.as_slice() {
                [] => writeln!(f, "    the root itself")?,
                sources => {
                    for source in sources {
                        writeln!(f, "    linked from {source}")?;
                    }
                }
            }
        }
        Ok(())
    }
}
