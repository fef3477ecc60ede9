//! The final report, complete or partial.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::hashing::Counters;

pub(crate) enum Ending {
    Complete(String),
    Interrupted(String),
    Deadline(Duration),
    Failed(String),
}

pub(crate) struct Report {
    root: PathBuf,
    hashers: usize,
    found: u64,
    hashed: u64,
    bytes: u64,
    unreadable: Vec<(PathBuf, String)>,
    ending: Ending,
    elapsed: Duration,
}

impl Report {
    pub(crate) fn new(
        root: &Path,
        hashers: usize,
        counters: &Counters,
        ending: Ending,
        elapsed: Duration,
    ) -> Self {
        Report {
            root: root.to_path_buf(),
            hashers,
            found: counters.found.load(Ordering::Relaxed),
            hashed: counters.hashed.load(Ordering::Relaxed),
            bytes: counters.bytes.load(Ordering::Relaxed),
            unreadable: counters.unreadable.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            ending,
            elapsed,
        }
    }

    /// 0 complete, 1 if files were unreadable, 130 interrupted (as a shell reports SIGINT), 124
    /// deadline (as `timeout(1)`), 2 failed.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self.ending {
            Ending::Complete(_) if self.unreadable.is_empty() => ExitCode::SUCCESS,
            Ending::Complete(_) => ExitCode::from(1),
            Ending::Interrupted(_) => ExitCode::from(130),
            Ending::Deadline(_) => ExitCode::from(124),
            Ending::Failed(_) => ExitCode::from(2),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unreadable = self.unreadable.len() as u64;
        let cancelled = self.found.saturating_sub(self.hashed + unreadable);
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "dir_hasher: {}", self.root.display())?;
        match &self.ending {
            Ending::Complete(digest) => {
                writeln!(f, "  result:      complete; tree digest {digest}")?
            }
            Ending::Interrupted(why) => writeln!(f, "  result:      partial: {why}")?,
            Ending::Deadline(after) => {
                writeln!(f, "  result:      partial: the deadline of {after:?} passed")?
            }
            Ending::Failed(error) => writeln!(f, "  result:      failed: {error}")?,
        }
        writeln!(f, "  files found: {}", self.found)?;
        writeln!(
            f,
            "  hashed:      {} ({:.1} MiB, {:.1} MiB/s)",
            self.hashed,
            self.bytes as f64 / 1048576.0,
            self.bytes as f64 / 1048576.0 / seconds
        )?;
        writeln!(f, "  cancelled:   {cancelled}")?;
        writeln!(f, "  unreadable:  {unreadable}")?;
        for (path, error) in self.unreadable.iter().take(10) {
            writeln!(f, "    {}: {error}", path.display())?;
        }
        if self.unreadable.len() > 10 {
            writeln!(f, "    ... and {} more", self.unreadable.len() - 10)?;
        }
        writeln!(
            f,
            "  tasks:       {} hashing, 1 walking; {:.3} s",
            self.hashers,
            self.elapsed.as_secs_f64()
        )
    }
}
