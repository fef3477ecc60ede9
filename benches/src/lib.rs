//! Shared support for klaw's comparative benchmarks.
//!
//! Every bench measures klaw and its peers in the same run, twice: criterion's usual statistics
//! per contender, then *interleaved* rounds (each contender once per round, the order rotating)
//! whose medians give the ratio table. Interleaving matters on small shared machines, where
//! throughput drifts over seconds and would otherwise favour whoever ran in a quiet moment.
//! With `KLAW_BENCH_TRACE=1` every round's time is printed as well.
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

/// Runs criterion over every contender, then `rounds` interleaved rounds, and prints ns/op and
/// the ratio of each median to `baseline`'s. Returns the (name, median ns/op) table.
pub fn compare(
    criterion: &mut Criterion,
    group: &str,
    ops_per_round: u64,
    rounds: usize,
    baseline: &str,
    mut contenders: Vec<Contender<'_>>,
) -> Vec<(&'static str, f64)> {
    {
        let mut bench_group = criterion.benchmark_group(group);
        bench_group.throughput(Throughput::Elements(ops_per_round));
        for contender in &mut contenders {
            bench_group.bench_function(contender.name, |b| b.iter(|| (contender.round)()));
        }
        bench_group.finish();
    }

    // `KLAW_BENCH_TRACE=1` prints every round: a host's slow phases show as runs of slow rounds.
    let trace = std::env::var_os("KLAW_BENCH_TRACE").is_some();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); contenders.len()];
    for round in 0..rounds {
        for offset in 0..contenders.len() {
            let index = (round + offset) % contenders.len();
            let start = Instant::now();
            (contenders[index].round)();
            samples[index].push(start.elapsed());
            if trace {
                let ns = start.elapsed().as_nanos() as f64 / ops_per_round as f64;
                println!("  round {round:>2}  {:<24} {ns:>9.1} ns", contenders[index].name);
            }
        }
    }
    let medians: Vec<(&'static str, f64)> = contenders
        .iter()
        .zip(&mut samples)
        .map(|(contender, times)| {
            times.sort();
            let median = times[times.len() / 2];
            (contender.name, median.as_nanos() as f64 / ops_per_round as f64)
        })
        .collect();
    let base = medians.iter().find(|(name, _)| *name == baseline).map(|(_, ns)| *ns);
    println!("\n{group}: median of {rounds} interleaved rounds, ns per op (ratio to {baseline})");
    for (name, ns) in &medians {
        let ratio = base.map_or_else(|| "n/a".to_owned(), |b| format!("{:.2}x", ns / b));
        println!("  {name:<24} {ns:>9.1} ns   {ratio}");
    }
    medians
}

/// Criterion settings that fit a 2-core machine: few samples, short windows.
pub fn criterion_config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}
