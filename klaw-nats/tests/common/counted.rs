//! A remote task that counts its runs, for the tests of redelivery: how many times a job ran is
//! what they check. Included with `#[path = "common/counted.rs"] mod counted;`.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// How many times `counted(n, ..)` ran, by `n`.
pub static RUNS: Mutex<BTreeMap<u64, u32>> = Mutex::new(BTreeMap::new());

pub fn runs_of(n: u64) -> u32 {
    RUNS.lock().unwrap().get(&n).copied().unwrap_or(0)
}

/// Counts a run of `n`, works `millis`, returns `2n`.
#[klaw::task(remote)]
pub async fn counted(n: u64, millis: u64) -> u64 {
    *RUNS.lock().unwrap().entry(n).or_default() += 1;
    klaw::time::sleep(Duration::from_millis(millis)).await;
    2 * n
}
