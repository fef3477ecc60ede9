//! The README's main job against the program a Rust user would write without klaw.
//!
//! - `dir_hasher`: `examples/dir_hasher`'s own hashing module (compiled in from the example), on
//!   a klaw runtime: in one `scope!`, a blocking walker sends batches of paths through a bounded
//!   channel to N blocking hashers, each of which returns what it hashed.
//! - `rayon + ignore`: the same walk (`ignore`, `.gitignore` honoured), then rayon's
//!   `par_iter` hashing each file with blake3's `update_reader`, then the same sort and tree
//!   digest.
//!
//! Both hash the same generated tree (20,000 files, about 350 MiB, under the system's temp
//! directory, made once and reused), so after the first round it is in the page cache and the
//! bench measures the program, not the disk. Both give the same digest, checked before timing.
//!
//! `cargo bench -p klaw-benches --bench main_job` (add `-- --load` for a CPU hog beside it)
//! prints the wall and CPU time per file of each, and their ratios to the rayon program.
#![allow(dead_code, unreachable_pub, reason = "the example's modules, compiled into a bench")]

#[path = "../../examples/dir_hasher/cli.rs"]
mod cli;
#[path = "../../examples/dir_hasher/hashing.rs"]
mod hashing;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use klaw_benches::{Contender, compare, criterion_config};
use rayon::prelude::*;

const FILES: u64 = 20_000;
const DIRECTORIES: u64 = 200;
const ROUNDS: usize = 7;

/// Makes the tree once: every 100th file is 1 MiB, the rest 5-11 KiB, of deterministic bytes.
/// A marker file records that it is complete, so an interrupted run starts over.
fn tree() -> PathBuf {
    let root = std::env::temp_dir().join("klaw-bench-main-job-tree-v1");
    let marker = root.join(".complete");
    if marker.exists() {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state
    };
    let mut bytes = Vec::new();
    for file in 0..FILES {
        let directory = root.join(format!("d{:03}", file % DIRECTORIES));
        std::fs::create_dir_all(&directory).expect("cannot create the bench tree");
        let size = if file % 100 == 0 { 1 << 20 } else { 5 * 1024 + next() as usize % (6 * 1024) };
        bytes.clear();
        bytes.extend((0..size.div_ceil(8)).flat_map(|_| next().to_le_bytes()).take(size));
        File::create(directory.join(format!("f{file:05}.bin")))
            .and_then(|mut out| out.write_all(&bytes))
            .expect("cannot write the bench tree");
    }
    File::create(&marker).expect("cannot mark the bench tree complete");
    root
}

/// The peer: walk, then hash in parallel on rayon's pool, then the same tree digest.
fn rayon_digest(root: &Path) -> String {
    let paths: Vec<PathBuf> = ignore::WalkBuilder::new(root)
        .build()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
        .map(ignore::DirEntry::into_path)
        .collect();
    let mut hashed: Vec<(PathBuf, blake3::Hash)> = paths
        .into_par_iter()
        .filter_map(|path| {
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(File::open(&path).ok()?).ok()?;
            Some((path, hasher.finalize()))
        })
        .collect();
    hashed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tree = blake3::Hasher::new();
    for (path, digest) in &hashed {
        tree.update(path.to_string_lossy().as_bytes());
        tree.update(digest.as_bytes());
    }
    tree.finalize().to_hex().to_string()
}

fn main() {
    klaw_benches::run_cpu_hog_if_asked();
    let root = tree();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = klaw::Runtime::builder().workers(workers).build().unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap();
    let args = cli::Args::parse_from([Path::new("dir_hasher"), &root]);
    let klaw_digest = || {
        let counters = Arc::new(hashing::Counters::default());
        runtime.block_on(hashing::hash_tree(&args, workers, counters)).unwrap()
    };
    let peer_digest = || pool.install(|| rayon_digest(&root));
    assert_eq!(klaw_digest(), peer_digest(), "both programs must hash the same tree the same way");

    let mut criterion = criterion_config();
    compare(
        &mut criterion,
        "main_job_20k_files",
        FILES,
        ROUNDS,
        "rayon + ignore",
        vec![
            Contender::new("dir_hasher", || {
                std::hint::black_box(klaw_digest());
            }),
            Contender::new("rayon + ignore", || {
                std::hint::black_box(peer_digest());
            }),
        ],
    );
    criterion.final_summary();
}
