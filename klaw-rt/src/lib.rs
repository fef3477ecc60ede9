//! The implementation of [klaw](https://docs.rs/klaw): executor, tasks, scopes, cancellation,
//! channels and time. Use it through the `klaw` crate, which arranges these modules into its
//! public API (one path per item) next to the macros.
//!
//! The modules depend on each other in one direction only (`tests/module_graph.rs` checks it):
//! `sync`, `coop` (the cooperative budget) and `time` at the bottom, then `task`, then `cancel`
//! and `remote`, then `runtime`,
//! `error` and `scope` on top; `channel`, `primitives`, `log` and `signal` stand apart. `ARCHITECTURE.md` is the map.
//!
//! The concurrency core is modelled with loom, one model file per module (`task/loom.rs`,
//! `scope/loom.rs`, `cancel/loom.rs`, `channel/loom.rs`, `primitives/loom.rs`):
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`.
#![deny(unsafe_code)]

pub mod cancel;
pub mod channel;
pub mod coop;
pub mod error;
#[cfg(feature = "log")]
pub mod log;
mod poller;
pub mod primitives;
pub mod remote;
pub mod runtime;
pub mod scope;
#[cfg(feature = "signal")]
pub mod signal;
mod sync;
pub mod task;
pub mod time;
