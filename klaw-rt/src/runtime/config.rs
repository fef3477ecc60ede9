//! How many workers a runtime gets: detected from the machine, overridable by `KLAW_WORKERS`.
//!
//! The detected value is exactly what `Runtime::builder().build()` uses when nothing overrides
//! it (`tests/runtime_config.rs` checks it): a detected setting that nothing uses is a bug.
#![forbid(unsafe_code)]

use std::fmt;

/// The environment variable that overrides the detected worker count.
///
/// ```
/// assert_eq!(klaw::runtime::WORKERS_ENV, "KLAW_WORKERS");
/// ```
pub const WORKERS_ENV: &str = "KLAW_WORKERS";
/// The most worker threads a runtime accepts.
///
/// ```
/// assert!(klaw::Runtime::builder().workers(klaw::runtime::MAX_WORKERS + 1).build().is_err());
/// ```
pub const MAX_WORKERS: usize = 1024;
/// The most blocking-pool threads a runtime accepts.
///
/// ```
/// let too_many = klaw::runtime::MAX_BLOCKING_THREADS + 1;
/// assert!(klaw::Runtime::builder().max_blocking_threads(too_many).build().is_err());
/// ```
pub const MAX_BLOCKING_THREADS: usize = 4096;
/// The default bound of the blocking pool.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// assert_eq!(rt.config().max_blocking_threads, klaw::runtime::DEFAULT_MAX_BLOCKING_THREADS);
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;
/// Memory below which each worker costs more than it gives: fewer workers on a small box.
const MEMORY_PER_WORKER: u64 = 256 * 1024 * 1024;

/// A setting was given a value klaw cannot use. The message names the setting, the value, and
/// the accepted range.
///
/// ```
/// use klaw::{runtime::{ConfigError, MachineInfo, RuntimeConfig}};
/// let machine = MachineInfo { physical_cores: 4, logical_cores: 8, memory_bytes: None };
/// let err = RuntimeConfig::from_env(|_| Some("abc".into()), machine).unwrap_err();
/// assert!(matches!(err, ConfigError::NotANumber { .. }));
/// assert_eq!(
///     err.to_string(),
///     "KLAW_WORKERS=\"abc\" is not a whole number: expected 1 to 1024 \
///      (unset it to use the detected count)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The value is not a whole number.
    #[error("{setting}={value:?} is not a whole number: expected {min} to {max}{hint}")]
    NotANumber {
        /// Where the value came from, e.g. `KLAW_WORKERS`.
        setting: &'static str,
        /// The value as given.
        value: String,
        /// The smallest accepted value.
        min: usize,
        /// The largest accepted value.
        max: usize,
        /// What else the user can do.
        hint: &'static str,
    },
    /// The value is a number outside the accepted range.
    #[error("{setting}={value} is out of range: expected {min} to {max}{hint}")]
    OutOfRange {
        /// Where the value came from, e.g. `KLAW_WORKERS` or `Builder::workers`.
        setting: &'static str,
        /// The value as given.
        value: String,
        /// The smallest accepted value.
        min: usize,
        /// The largest accepted value.
        max: usize,
        /// What else the user can do.
        hint: &'static str,
    },
    /// The value holds something the setting cannot take.
    ///
    /// ```
    /// let err = klaw::Runtime::builder().thread_name("my\0app").build().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "Builder::thread_name=\"my\\0app\" is not usable: a thread name cannot hold a NUL byte"
    /// );
    /// ```
    #[error("{setting}={value:?} is not usable: {problem}")]
    Invalid {
        /// Where the value came from, e.g. `Builder::thread_name`.
        setting: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it, and so what to change.
        problem: &'static str,
    },
}

const ENV_HINT: &str = " (unset it to use the detected count)";

/// Checks that `value` of `setting` lies in `min..=max`.
pub(crate) fn check_range(
    setting: &'static str,
    value: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    check_range_with_hint(setting, value, min, max, "")
}

/// [`check_range`], with `hint` after the range in the message.
pub(crate) fn check_range_with_hint(
    setting: &'static str,
    value: usize,
    min: usize,
    max: usize,
    hint: &'static str,
) -> Result<usize, ConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::OutOfRange { setting, value: value.to_string(), min, max, hint })
    }
}

/// What the machine offers, as far as choosing a worker count goes.
///
/// ```
/// let machine = klaw::runtime::MachineInfo::probe();
/// assert!(machine.logical_cores >= 1);
/// assert!(machine.recommended_workers() <= machine.logical_cores);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineInfo {
    /// Physical cores (hyper-threads of one core count once).
    pub physical_cores: usize,
    /// Cores this process may run on (affinity and cgroup quota applied).
    pub logical_cores: usize,
    /// Memory this process may use (the cgroup limit if lower than the machine's), if known.
    pub memory_bytes: Option<u64>,
}

impl MachineInfo {
    /// Reads the machine's cores and memory.
    ///
    /// ```
    /// let machine = klaw::runtime::MachineInfo::probe();
    /// assert!(machine.physical_cores >= 1 && machine.logical_cores >= 1);
    /// ```
    pub fn probe() -> Self {
        let logical_cores = std::thread::available_parallelism().map_or(1, usize::from);
        MachineInfo {
            physical_cores: num_cpus::get_physical().max(1),
            logical_cores,
            memory_bytes: memory_bytes(),
        }
    }

    /// One worker per physical core the process may use, fewer if memory is short (at least
    /// 256 MiB each), never fewer than one.
    ///
    /// ```
    /// use klaw::runtime::MachineInfo;
    /// let big = MachineInfo { physical_cores: 8, logical_cores: 16, memory_bytes: Some(64 << 30) };
    /// assert_eq!(big.recommended_workers(), 8);
    /// let small = MachineInfo { physical_cores: 8, logical_cores: 16, memory_bytes: Some(512 << 20) };
    /// assert_eq!(small.recommended_workers(), 2);
    /// ```
    pub fn recommended_workers(&self) -> usize {
        let cores = self.physical_cores.min(self.logical_cores).max(1);
        let by_memory = self.memory_bytes.map_or(usize::MAX, |bytes| {
            usize::try_from(bytes / MEMORY_PER_WORKER).unwrap_or(usize::MAX)
        });
        cores.min(by_memory).clamp(1, MAX_WORKERS)
    }
}

/// Total memory from `/proc/meminfo`, lowered to the cgroup v2 limit if there is one.
fn memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let total = total_kib * 1024;
    let cgroup_limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|limit| limit.trim().parse::<u64>().ok());
    Some(cgroup_limit.map_or(total, |limit| limit.min(total)))
}

/// Where a runtime's worker count came from.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(2).build()?;
/// assert_eq!(rt.config().workers_from, klaw::runtime::WorkersFrom::Builder);
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkersFrom {
    /// Detected from the machine.
    Detected,
    /// The `KLAW_WORKERS` environment variable.
    Env,
    /// `Builder::workers` (or `#[klaw::main(workers = N)]`).
    Builder,
    /// `Builder::start_paused(true)` (or `#[klaw::test(start_paused = true)]`): a runtime with
    /// a paused clock has one worker.
    Paused,
}

impl fmt::Display for WorkersFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Detected => "detected",
            Self::Env => WORKERS_ENV,
            Self::Builder => "builder",
            Self::Paused => "start_paused",
        })
    }
}

/// The settings a runtime runs with. `RuntimeConfig::detect()` is what a runtime built with
/// defaults uses; [`Runtime::config`](crate::runtime::Runtime::config) shows what one actually got.
///
/// ```
/// let detected = klaw::runtime::RuntimeConfig::detect()?;
/// let rt = klaw::Runtime::builder().build()?;
/// assert_eq!(rt.config().workers, detected.workers);
/// assert_eq!(rt.worker_count(), detected.workers);
/// # Ok::<(), klaw::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// Worker threads that poll tasks.
    pub workers: usize,
    /// Where `workers` came from.
    pub workers_from: WorkersFrom,
    /// The most threads the blocking pool starts at once.
    pub max_blocking_threads: usize,
    /// The machine the detection looked at.
    pub machine: MachineInfo,
    /// Whether the runtime's clock is virtual (`Builder::start_paused`): it stands still while
    /// any task can make progress, and jumps to the next timer when every task waits.
    pub start_paused: bool,
    /// Whether the runtime owns a tokio runtime for tokio-based crates (`Builder::tokio`, with
    /// klaw's `tokio` feature; always `false` without it).
    pub tokio: bool,
}

impl RuntimeConfig {
    /// The configuration for this machine and process environment.
    ///
    /// # Errors
    /// [`ConfigError`] if `KLAW_WORKERS` is set to anything but a number from 1 to 1024.
    ///
    /// ```
    /// let config = klaw::runtime::RuntimeConfig::detect()?;
    /// assert!((1..=klaw::runtime::MAX_WORKERS).contains(&config.workers));
    /// # Ok::<(), klaw::runtime::ConfigError>(())
    /// ```
    pub fn detect() -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        Self::from_env(env, MachineInfo::probe())
    }

    /// The configuration for `machine`, reading variables through `env` (for tests and for
    /// embedding klaw where the process environment is not the right source).
    ///
    /// # Errors
    /// [`ConfigError`] if `KLAW_WORKERS` is set to anything but a number from 1 to 1024.
    ///
    /// ```
    /// use klaw::{runtime::{MachineInfo, RuntimeConfig, WorkersFrom}};
    /// let machine = MachineInfo { physical_cores: 8, logical_cores: 16, memory_bytes: None };
    /// let config = RuntimeConfig::from_env(|name| (name == "KLAW_WORKERS").then(|| "3".into()), machine)?;
    /// assert_eq!((config.workers, config.workers_from), (3, WorkersFrom::Env));
    /// # Ok::<(), klaw::runtime::ConfigError>(())
    /// ```
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        machine: MachineInfo,
    ) -> Result<Self, ConfigError> {
        let (workers, workers_from) = match env(WORKERS_ENV) {
            Some(value) => (parse_workers(&value)?, WorkersFrom::Env),
            None => (machine.recommended_workers(), WorkersFrom::Detected),
        };
        Ok(RuntimeConfig {
            workers,
            workers_from,
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            machine,
            start_paused: false,
            tokio: false,
        })
    }
}

fn parse_workers(value: &str) -> Result<usize, ConfigError> {
    let not_a_number = || ConfigError::NotANumber {
        setting: WORKERS_ENV,
        value: value.to_owned(),
        min: 1,
        max: MAX_WORKERS,
        hint: ENV_HINT,
    };
    let trimmed = value.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    // All digits: the only parse failure left is overflow, which is out of range, not garbage.
    let workers = trimmed.parse::<usize>().unwrap_or(usize::MAX);
    check_range(WORKERS_ENV, workers, 1, MAX_WORKERS).map_err(|_| ConfigError::OutOfRange {
        setting: WORKERS_ENV,
        value: trimmed.to_owned(),
        min: 1,
        max: MAX_WORKERS,
        hint: ENV_HINT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACHINE: MachineInfo =
        MachineInfo { physical_cores: 6, logical_cores: 12, memory_bytes: Some(32 << 30) };

    fn with_env(value: Option<&str>) -> Result<RuntimeConfig, ConfigError> {
        let value = value.map(str::to_owned);
        RuntimeConfig::from_env(
            |name| (name == WORKERS_ENV).then(|| value.clone()).flatten(),
            MACHINE,
        )
    }

    #[test]
    fn detection_uses_physical_cores_when_env_is_unset() {
        let config = with_env(None).unwrap();
        assert_eq!((config.workers, config.workers_from), (6, WorkersFrom::Detected));
    }

    #[test]
    fn env_overrides_detection() {
        let config = with_env(Some(" 3 ")).unwrap();
        assert_eq!((config.workers, config.workers_from), (3, WorkersFrom::Env));
    }

    #[test]
    fn bad_env_values_are_typed_errors_naming_the_variable_and_range() {
        for bad in ["abc", "", "-1", "1.5", "4 workers"] {
            let err = with_env(Some(bad)).unwrap_err();
            assert!(matches!(err, ConfigError::NotANumber { setting: WORKERS_ENV, .. }), "{bad}");
            assert!(err.to_string().contains("KLAW_WORKERS"), "{err}");
            assert!(err.to_string().contains("1 to 1024"), "{err}");
        }
        for bad in ["0", "1025", "99999999999999999999999"] {
            let err = with_env(Some(bad)).unwrap_err();
            assert!(matches!(err, ConfigError::OutOfRange { setting: WORKERS_ENV, .. }), "{bad}");
            assert!(err.to_string().contains(&format!("KLAW_WORKERS={bad} ")), "{err}");
        }
    }

    #[test]
    fn small_memory_reduces_workers_but_never_below_one() {
        let tiny = MachineInfo { memory_bytes: Some(100 << 20), ..MACHINE };
        assert_eq!(tiny.recommended_workers(), 1);
        let affinity_limited = MachineInfo { logical_cores: 2, ..MACHINE };
        assert_eq!(affinity_limited.recommended_workers(), 2);
        let unknown_memory = MachineInfo { memory_bytes: None, ..MACHINE };
        assert_eq!(unknown_memory.recommended_workers(), 6);
    }
}
