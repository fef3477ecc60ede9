//! Shared support for klaw's comparative benchmarks.
//!
//! Every bench measures klaw and its peers in the same run, twice: criterion's usual statistics
//! per contender, then *interleaved* rounds (each contender once per round, the order rotating)
//! whose medians give the ratio table. Interleaving matters on small shared machines, where
//! throughput drifts over seconds and would otherwise favour whoever ran in a quiet moment.
//! With `KLAW_BENCH_TRACE=1` every round's time is printed as well, with the context switches of
//! the process's threads during it (see [`context_switches`]).
#![allow(clippy::print_stdout, reason = "benchmarks report on stdout")]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

/// One contender: a name and a closure that performs one round of `ops_per_round` operations.
pub struct Contender<'a> {
    name: &'static str,
    round: Box<dyn FnMut() + 'a>,
}

impl<'a> Contender<'a> {
    /// A contender whose `round` performs the group's operations once.
    pub fn new(name: &'static str, round: impl FnMut() + 'a) -> Self {
        Contender { name, round: Box::new(round) }
    }
}

impl std::fmt::Debug for Contender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Runs criterion over every contender, then `rounds` interleaved rounds, and prints ns/op (wall
/// and CPU) and the ratio of each median to `baseline`'s. Returns the (name, median wall ns/op)
/// table.
pub fn compare(
    criterion: &mut Criterion,
    group: &str,
    ops_per_round: u64,
    rounds: usize,
    baseline: &str,
    mut contenders: Vec<Contender<'_>>,
) -> Vec<(&'static str, f64)> {
    // `--quick`: only the interleaved rounds, which give the ratios.
    if !flag("--quick") {
        let mut bench_group = criterion.benchmark_group(group);
        bench_group.throughput(Throughput::Elements(ops_per_round));
        for contender in &mut contenders {
            bench_group.bench_function(contender.name, |b| b.iter(|| (contender.round)()));
        }
        bench_group.finish();
    }

    // `KLAW_BENCH_TRACE=1` prints every round: a host's slow phases show as runs of slow rounds.
    let trace = std::env::var_os("KLAW_BENCH_TRACE").is_some();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::with_capacity(rounds); contenders.len()];
    for round in 0..rounds {
        for offset in 0..contenders.len() {
            let index = (round + offset) % contenders.len();
            let switches_before = if trace { context_switches() } else { (0, 0) };
            let (start, cpu_start) = (Instant::now(), process_cpu_time());
            (contenders[index].round)();
            let sample = Sample { wall: start.elapsed(), cpu: process_cpu_time() - cpu_start };
            samples[index].push(sample);
            if trace {
                let ns = sample.wall.as_nanos() as f64 / ops_per_round as f64;
                let (waits, preempted) = context_switches();
                let (waits, preempted) = (waits - switches_before.0, preempted - switches_before.1);
                println!(
                    "  round {round:>2}  {:<24} {ns:>9.1} ns  switches: {waits} waits, {preempted} preempted",
                    contenders[index].name
                );
            }
        }
    }
    let per_op = |time: Duration| time.as_nanos() as f64 / ops_per_round as f64;
    let medians: Vec<(&'static str, f64, f64)> = contenders
        .iter()
        .zip(&samples)
        .map(|(contender, times)| {
            let median = |key: fn(&Sample) -> Duration| {
                let mut times: Vec<Duration> = times.iter().map(key).collect();
                times.sort();
                times[times.len() / 2]
            };
            (contender.name, per_op(median(|s| s.wall)), per_op(median(|s| s.cpu)))
        })
        .collect();
    let base =
        medians.iter().find(|(name, ..)| *name == baseline).map(|&(_, wall, cpu)| (wall, cpu));
    println!(
        "\n{group}: median of {rounds} interleaved rounds, ns per op, wall and CPU (this \
         process's threads), with ratios to {baseline}"
    );
    for &(name, wall, cpu) in &medians {
        let ratio = |ns: f64, base: f64| format!("{:.2}x", ns / base);
        let (wall_ratio, cpu_ratio) = base.map_or_else(
            || ("n/a".to_owned(), "n/a".to_owned()),
            |(base_wall, base_cpu)| (ratio(wall, base_wall), ratio(cpu, base_cpu)),
        );
        println!(
            "  {name:<24} {wall:>11.1} ns  {wall_ratio:>6}   cpu {cpu:>11.1} ns  {cpu_ratio:>6}"
        );
    }
    medians.into_iter().map(|(name, wall, _)| (name, wall)).collect()
}

/// One round of one contender.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    /// User plus system time of every thread of this process during the round: what a
    /// contender's spinning or hand-offs cost beyond the wall clock.
    cpu: Duration,
}

/// User plus system CPU time of the whole process so far.
pub fn process_cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF is a valid `who`.
    let result = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(result, 0, "getrusage(RUSAGE_SELF) cannot fail with valid arguments");
    let time = |t: libc::timeval| {
        Duration::new(t.tv_sec as u64, 0) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// This process's context switches so far, all threads: those where a thread waited (voluntary)
/// and those where the kernel took its CPU (involuntary). A round that is slow with many of the
/// second kind lost its CPU to another process; with many of the first, its threads slept and
/// were woken.
pub fn context_switches() -> (i64, i64) {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF is a valid `who`.
    let result = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(result, 0, "getrusage(RUSAGE_SELF) cannot fail with valid arguments");
    (usage.ru_nvcsw, usage.ru_nivcsw)
}

/// Criterion settings that fit a 2-core machine: few samples, short windows.
///
/// With `--load` (`cargo bench -p klaw-benches --bench channel -- --load`), a CPU hog runs in a
/// second process for the whole bench, as on a user's busy machine. With `--quick`, criterion's
/// own measurement is skipped and only the interleaved rounds (the ratio table) run. Criterion's
/// own options are not read with either (it rejects flags it does not know); a bench name
/// filter still is.
pub fn criterion_config() -> Criterion {
    let criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let load = flag("--load");
    if !load && !flag("--quick") {
        return criterion.configure_from_args();
    }
    if load {
        start_cpu_hog();
    }
    match std::env::args().skip(1).find(|arg| !arg.starts_with('-')) {
        Some(filter) => criterion.with_filter(filter.as_str()),
        None => criterion,
    }
}

/// True if the bench was given `name` (`cargo bench ... -- --load --quick`).
fn flag(name: &str) -> bool {
    std::env::args().skip(1).any(|arg| arg == name)
}

/// The environment variable that turns a bench process into the hog of another one.
const HOG_ENV: &str = "KLAW_BENCH_CPU_HOG";

/// Starts the hog: this same executable, re-run with [`HOG_ENV`], which [`run_cpu_hog_if_asked`]
/// turns into a busy loop. A process, not a thread, so it competes the way another program
/// does (its own address space, scheduled by the OS against the bench's workers).
fn start_cpu_hog() {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let mut hog = std::process::Command::new(exe)
        .env(HOG_ENV, std::process::id().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("could not start the CPU hog");
    println!("--load: CPU hog running as process {}", hog.id());
    // The hog ends when this process does; an idle thread reaps it if it ends before.
    std::thread::spawn(move || hog.wait());
}

/// In the hog process: spins until its parent, the bench, is gone (the parent id changes when
/// it exits), so that an interrupted bench leaves nothing running. Call first thing in `main`.
pub fn run_cpu_hog_if_asked() {
    let Some(parent) = std::env::var_os(HOG_ENV) else { return };
    let parent: u32 = parent.to_string_lossy().parse().expect("the hog's parent id");
    let mut spin = 0u64;
    while std::os::unix::process::parent_id() == parent {
        let until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < until {
            spin = std::hint::black_box(spin.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    std::process::exit(0);
}
