//! Command-line arguments (clap gives bad ones a clear message and exit code 2).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clap::builder::TypedValueParser as _;

/// Hash every file of a directory tree with klaw: a walker feeds N hashing tasks through a
/// bounded channel, all inside one scope.
#[derive(Debug, Parser)]
#[command(name = "dir_hasher", version)]
pub(crate) struct Args {
    /// The tree to hash (default: the klaw repository). `.gitignore` rules are honoured.
    #[arg(default_value = env!("CARGO_MANIFEST_DIR"))]
    pub(crate) root: PathBuf,

    /// Hashing tasks and runtime workers (default: detected from the machine).
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    pub(crate) workers: Option<usize>,

    /// Stop after this long and report what was done: `500ms`, `2s`, `1m`.
    #[arg(short, long, value_parser = humantime::parse_duration)]
    pub(crate) timeout: Option<Duration>,

    /// How many paths may wait between the walker and the hashing tasks (they travel in
    /// batches of 64, so the channel holds this many divided by 64, rounded up).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub(crate) queue: usize,
}
