//! The job: a walker and N hashing tasks in one scope, connected by a bounded channel; each
//! hasher returns what it hashed.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// Paths travel from the walker to the hashers in batches of this many: one hand-off, and at
/// most one wake-up of a sleeping hasher, per batch instead of per file.
const BATCH: usize = 64;

/// Walks `args.root` and hashes every file; the digest of the whole tree (the hash of every
/// file's path and hash, in path order) if it got to the end.
pub(crate) async fn hash_tree(
    args: &Args,
    hashers: usize,
    counters: Arc<Counters>,
) -> Result<String, klaw::Error> {
    let deadline = args.timeout.map(|timeout| Instant::now() + timeout);
    let deadline =
        deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(60 * 60 * 24 * 365));
    let root = args.root.clone();
    let progress = progress_bar();
    let mut hashed: Vec<Hashed> = klaw::scope!(name = "dir_hasher", deadline = deadline, |s| {
        // `--queue` counts paths; the channel holds batches of them.
        let (paths, to_hash) = klaw::channel::bounded::<Vec<PathBuf>>(args.queue.div_ceil(BATCH));

        let walker_counters = counters.clone();
        s.spawn_blocking(move || walk(&root, &paths, &walker_counters));
        // Each hasher gives back what it hashed through its handle: no second channel, and no
        // collector to wake for every file.
        let hashers: Vec<_> = (0..hashers)
            .map(|_| {
                let (to_hash, counters) = (to_hash.clone(), counters.clone());
                s.spawn_blocking(move || hash_files(&to_hash, &counters))
            })
            .collect();
        drop(to_hash); // the tasks hold the ends now: the channel closes with them

        // The bar is redrawn from the counters ten times a second; a background child, so it
        // does not keep the scope open once the hashers are done.
        let (bar, bar_counters) = (progress.clone(), counters.clone());
        s.spawn_background(async move {
            let mut ticks = klaw::time::interval(Duration::from_millis(100));
            loop {
                ticks.tick().await;
                bar.set_length(bar_counters.found.load(Ordering::Relaxed));
                bar.set_position(bar_counters.hashed.load(Ordering::Relaxed));
            }
        });

        let mut hashed = Vec::new();
        for hasher in hashers {
            hashed.extend(hasher.await?);
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

/// The walker: every file under `root` (`.gitignore` honoured) goes into the channel, in
/// batches of [`BATCH`].
fn walk(root: &Path, paths: &klaw::channel::Sender<Vec<PathBuf>>, counters: &Counters) {
    let mut batch = Vec::with_capacity(BATCH);
    for entry in ignore::WalkBuilder::new(root).build() {
        if klaw::cancel::is_cancelled() {
            return;
        }
        match entry {
            Ok(entry) if entry.file_type().is_some_and(|kind| kind.is_file()) => {
                batch.push(entry.into_path());
                if batch.len() < BATCH {
                    continue;
                }
                counters.found.fetch_add(BATCH as u64, Ordering::Relaxed);
                // A blocking task waits for room with `send_blocking`: no executor needed.
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if paths.send_blocking(full).is_err() {
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
    if !batch.is_empty() {
        counters.found.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let _ = paths.send_blocking(batch); // if every hasher is gone, the scope is ending
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

/// A hashing task: takes batches of paths until the channel closes or the scope is cancelled,
/// and returns what it hashed. The shared counters are updated once per batch: three counters
/// written by every thread for every file would keep their cache line moving between cores.
fn hash_files(to_hash: &klaw::channel::Receiver<Vec<PathBuf>>, counters: &Counters) -> Vec<Hashed> {
    let mut hashed = Vec::new();
    let mut buffer = vec![0; CHUNK];
    while let Ok(batch) = to_hash.recv_blocking() {
        let (mut files, mut bytes) = (0, 0);
        let mut cancelled = false;
        for path in batch {
            match hash_file(&path, &mut buffer) {
                Ok(Some((digest, size))) => {
                    (files, bytes) = (files + 1, bytes + size);
                    hashed.push(Hashed { path, digest });
                }
                Ok(None) => {
                    cancelled = true; // mid-file
                    break;
                }
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
        counters.hashed.fetch_add(files, Ordering::Relaxed);
        counters.bytes.fetch_add(bytes, Ordering::Relaxed);
        if cancelled {
            break;
        }
    }
    hashed
}

/// The file's hash and size, or `None` if the task was cancelled before it finished. `buffer`
/// is the hasher's own, reused for every file.
fn hash_file(path: &Path, buffer: &mut [u8]) -> std::io::Result<Option<(blake3::Hash, u64)>> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0;
    loop {
        if klaw::cancel::is_cancelled() {
            return Ok(None);
        }
        let read = file.read(buffer)?;
        if read == 0 {
            return Ok(Some((hasher.finalize(), size)));
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
}
