//! The job: a walker and N hashing tasks in one scope, connected by bounded channels.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::Args;

/// What happened so far; shared with the tasks, so a cancelled run still reports its progress.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) found: AtomicU64,
    pub(crate) hashed: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) unreadable: Mutex<Vec<(PathBuf, String)>>,
}

/// A hashed file.
pub(crate) struct Hashed {
    path: PathBuf,
    digest: blake3::Hash,
}

/// Reading in chunks keeps a cancelled hash from finishing a large file first.
const CHUNK: usize = 256 * 1024;

/// Walks `args.root` and hashes every file; the digest of the whole tree (the hash of every
/// file's path and hash, in path order) if it got to the end.
pub(crate) async fn hash_tree(
    args: &Args,
    hashers: usize,
    counters: Arc<Counters>,
) -> Result<String, klaw::Error> {
    let deadline = args.timeout.map(|timeout| Instant::now() + timeout);
    let deadline = deadline
        .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(60 * 60 * 24 * 365));
    let root = args.root.clone();
    let progress = progress_bar();
    let mut hashed: Vec<Hashed> = klaw::scope!(name = "dir_hasher", deadline = deadline, |s| {
        let (paths, to_hash) = klaw::channel::bounded::<PathBuf>(args.queue);
        let (results, finished) = klaw::channel::bounded::<Hashed>(args.queue);

        let walker_counters = counters.clone();
        s.spawn_blocking(move || walk(&root, &paths, &walker_counters));
        for _ in 0..hashers {
            let (to_hash, results, counters) = (to_hash.clone(), results.clone(), counters.clone());
            s.spawn_blocking(move || hash_files(&to_hash, &results, &counters));
        }
        drop((to_hash, results)); // the tasks hold the ends now: the channels close with them

        let mut hashed = Vec::new();
        while let Ok(file) = finished.recv().await {
            progress.set_length(counters.found.load(Ordering::Relaxed));
            progress.inc(1);
            hashed.push(file);
        }
        Ok(hashed)
    })?;
    progress.finish_and_clear();
    hashed.sort_by(|a, b| a.path.cmp(&b.path));
    let mut tree = blake3::Hasher::new();
    for file in &hashed {
        tree.update(file.path.to_string_lossy().as_bytes());
        tree.update(file.digest.as_bytes());
    }
    Ok(tree.finalize().to_hex().to_string())
}

fn progress_bar() -> ProgressBar {
    // Hidden when stderr is not a terminal (pipes, tests, CI).
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} hashing [{bar:40}] {pos}/{len} files ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The walker: every file under `root` (`.gitignore` honoured) goes into the channel.
fn walk(root: &Path, paths: &klaw::channel::Sender<PathBuf>, counters: &Counters) {
    for entry in ignore::WalkBuilder::new(root).build() {
        if klaw::cancel::is_cancelled() {
            return;
        }
        match entry {
            Ok(entry) if entry.file_type().is_some_and(|kind| kind.is_file()) => {
                counters.found.fetch_add(1, Ordering::Relaxed);
                // A blocking task waits for room with `send_blocking`: no executor needed.
                if paths.send_blocking(entry.into_path()).is_err() {
                    return; // every hasher is gone: the scope is ending
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot walk an entry");
                let path = error_path(&error).unwrap_or_else(|| root.to_path_buf());
                counters
                    .unreadable
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((path, error.to_string()));
            }
        }
    }
}

fn error_path(error: &ignore::Error) -> Option<PathBuf> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

/// A hashing task: takes paths until the channel closes or the scope is cancelled.
fn hash_files(
    to_hash: &klaw::channel::Receiver<PathBuf>,
    results: &klaw::channel::Sender<Hashed>,
    counters: &Counters,
) {
    while let Ok(path) = to_hash.recv_blocking() {
        match hash_file(&path, counters) {
            Ok(Some(digest)) => {
                counters.hashed.fetch_add(1, Ordering::Relaxed);
                if results.send_blocking(Hashed { path, digest }).is_err() {
                    return; // the collector is gone: the scope is ending
                }
            }
            Ok(None) => return, // cancelled mid-file
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read a file");
                counters
                    .unreadable
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((path, error.to_string()));
            }
        }
    }
}

/// The file's hash, or `None` if the task was cancelled before it finished.
fn hash_file(path: &Path, counters: &Counters) -> std::io::Result<Option<blake3::Hash>> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0; CHUNK];
    loop {
        if klaw::cancel::is_cancelled() {
            return Ok(None);
        }
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(Some(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
        counters.bytes.fetch_add(read as u64, Ordering::Relaxed);
    }
}
