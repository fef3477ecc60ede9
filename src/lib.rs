//! # klaw: structured concurrency for Rust
//!
//! Tasks whose first terminal state wins, cancel tokens that exist before a task is scheduled,
//! nurseries that never leak a child, and a runtime on smol-rs's `async-task` whose shutdown reports
//! what happened to every task.
//!
//! ```
//! use klaw::prelude::*;
//! use std::time::Duration;
//!
//! #[klaw::main(workers = 2)]
//! async fn main() -> Result<(), klaw::Error> {
//!     let rt = klaw::Handle::current()?;
//!     let answer = rt.spawn(async { 6 * 7 });
//!     let stuck = rt.spawn(std::future::pending::<()>());
//!     stuck.cancel("not needed");
//!
//!     assert_eq!(answer.await?, 42);
//!     assert!(matches!(stuck.await, Err(TaskError::Cancelled(_))));
//!     let slow = klaw::cancel::fail_after(Duration::from_millis(1), klaw::time::sleep(Duration::from_secs(9)));
//!     assert!(slow.await.is_err());
//!     Ok(())
//! }
//! ```
//!
//! The everyday names live at the root: the macros, [`Scope`], [`Task`], [`TaskHandle`],
//! [`Runtime`], [`Error`]... Everything else lives in one module per concept, reachable by one
//! path: [`task`](mod@task), [`scope`](mod@scope), [`runtime`], [`cancel`], [`channel`], [`sync`], [`time`],
//! [`remote`], and with their features `log` and `signal`.
//!
//! No feature is on by default. `log` (the subscriber and hooks), `json` (JSON log lines),
//! `remote` (`#[klaw::task(remote)]`), `signal` (Ctrl-C), `nats` (the NATS backend) and `tokio`
//! (tokio-based crates in klaw tasks) each add what their name says; using one of their items
//! without the feature is a compile error that names it.
//!
//! The tutorial is the book in `book/` (every snippet in it is compiled and run by
//! `cargo test`); `ARCHITECTURE.md` is the map of the code.
#![forbid(unsafe_code)]

pub use klaw_macros::{main, task, test};
pub use klaw_rt::error::Error;
pub use klaw_rt::runtime::{Handle, Runtime};
pub use klaw_rt::scope::{Scope, ScopeHandle};
pub use klaw_rt::task::{CancelReason, Task, TaskError, TaskHandle};

/// Tasks: what can be spawned or awaited as a task, how a task ended, and handles to it.
pub mod task {
    pub use klaw_rt::coop::{Unconstrained, YieldNow, consume_budget, unconstrained, yield_now};
    pub use klaw_rt::runtime::InlineTask;
    pub use klaw_rt::scope::InlineBlockingTask;
    pub use klaw_rt::task::{
        BlockingTask, BoxError, ExitReason, Fallible, IntoTask, Outcome, Plain, TakenFailure,
        TaskFailure, TaskId, TaskInfo, TaskRef, current_task_id,
    };
}

/// Scopes (nurseries): their options, the failures of one scope, children collected as they
/// finish ([`ChildSet`](scope::ChildSet)), readiness ([`Ready`](scope::Ready)), and
/// `scope_with`, the function `scope!` expands to. (`Scope` and `ScopeHandle` are at the root.)
pub mod scope {
    pub use klaw_rt::error::ScopeError;
    pub use klaw_rt::scope::{
        ChildKind, ChildOutput, ChildSet, IsTask, NotReady, PlainValue, Ready,
        ResultNeedsTaskFallibleOrTaskNew, ScopeBody, ScopeBodyError, ScopeOptions, ScopeResult,
        SpawnTarget, Spawnable, scope_with, scope_with_error, typed_scope_body,
    };
}

/// The runtime: building one, its configuration, its shutdown report, and `block_on`.
/// (`Runtime` and `Handle` are at the root.)
pub mod runtime {
    pub use klaw_rt::runtime::{
        BuildError, Builder, ConfigError, DEFAULT_MAX_BLOCKING_THREADS, MAX_BLOCKING_THREADS,
        MAX_WORKERS, MachineInfo, NoRuntime, RuntimeConfig, RuntimeDump, ShutdownReport,
        ShutdownTimedOut, Spawnable, WORKERS_ENV, WorkersFrom, block_on,
    };
}

/// Cancellation: cancel regions with deadlines (`move_on_after`, `fail_after`, [`Region`]),
/// tokens, shields for cleanup, and `is_cancelled` for code that cannot be interrupted.
/// (`CancelReason` is at the root.)
///
/// [`Region`]: cancel::Region
pub mod cancel {
    pub use klaw_rt::cancel::{
        CancelOnDrop, Cancellable, Cancelled, CancelledOwned, Region, Shielded, Token, checkpoint,
        fail_after, fail_at, is_cancelled, move_on_after, move_on_at, shield,
    };
}

/// Channels: MPMC ([`bounded`](channel::bounded), [`unbounded`](channel::unbounded)), and the
/// [`oneshot`](channel::oneshot), [`broadcast`](channel::broadcast) and [`watch`](channel::watch)
/// modules, each with its `channel` constructor (as in tokio). Every operation returns a typed
/// `Result`.
pub mod channel {
    pub use klaw_rt::channel::{
        Closed, OwnedPermit, Permit, Receiver, Recv, RecvError, RecvMany, Reserve, ReserveOwned,
        Send, SendError, Sender, TryRecvError, TrySendError, WeakSender, bounded, broadcast,
        oneshot, select_any, unbounded, watch,
    };
}

/// Time: `sleep`, `sleep_until`, intervals, the clock ([`now`](time::now), and under a paused
/// clock [`advance`](time::advance)), and [`Elapsed`](time::Elapsed), the error of a deadline
/// that passed. (A timeout is a cancel region: `cancel::fail_after`.) Every klaw timer follows
/// the runtime's clock: real time, or the virtual clock of `#[klaw::test(start_paused = true)]`.
pub mod time {
    pub use klaw_rt::time::{
        Elapsed, Interval, MissedTickBehavior, Sleep, advance, interval, interval_at, now, sleep,
        sleep_until,
    };
}

/// Locks, semaphores and events for tasks: [`Mutex`](sync::Mutex), [`RwLock`](sync::RwLock),
/// [`Semaphore`](sync::Semaphore) (with owned permits and several permits at once),
/// [`Barrier`](sync::Barrier), and the signals [`Event`](sync::Event) (set once, wakes every
/// waiter, as in trio) and [`Notify`](sync::Notify) (as in tokio). They work under any
/// executor; waiters of a `Mutex`, an `RwLock`, a `Semaphore` or a `Notify` are served first
/// come, first served; none wakes a waker under its own lock; and every async method says in
/// its `# Cancel safety` section what a dropped future leaves behind.
pub mod sync {
    pub use klaw_rt::primitives::{
        Acquire, AcquireError, AcquireOwned, Barrier, BarrierWait, BarrierWaitResult, Event,
        EventWait, Lock, LockOwned, MappedMutexGuard, MappedRwLockReadGuard,
        MappedRwLockWriteGuard, Mutex, MutexGuard, Notified, Notify, OwnedMappedMutexGuard,
        OwnedMutexGuard, OwnedNotified, OwnedRwLockReadGuard, OwnedRwLockWriteGuard,
        OwnedSemaphorePermit, Read, ReadOwned, RwLock, RwLockReadGuard, RwLockWriteGuard,
        Semaphore, SemaphorePermit, TryAcquireError, Write, WriteOwned,
    };
}

#[cfg(feature = "log")]
pub use klaw_rt::log;
pub use klaw_rt::remote;
#[cfg(feature = "signal")]
pub use klaw_rt::signal;

/// The NATS JetStream backend (feature `nats`): remote tasks on worker processes, and channels
/// across machines. Enabling it also lets `KLAW_BACKEND=nats` pick it.
#[cfg(feature = "nats")]
pub use klaw_nats as nats;

/// The names most programs need: `use klaw::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CancelReason, Error, Runtime, Scope, ScopeHandle, Task, TaskError, TaskHandle,
    };
}

/// Support for the macros' generated code. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    pub use klaw_macros::{scope as scope_macro, select as select_macro};
    pub use klaw_rt::channel::{
        __finish_send as finish_send, __growing_bounded as growing_bounded,
        __random_start as random_start, __select_join as select_join, __select_look as select_look,
        SelectFuture, SelectRecv, SelectSend,
    };
    pub use klaw_rt::coop::__poll_budget_available as poll_budget_available;
    pub use klaw_rt::error::Error;
    pub use klaw_rt::remote;
    pub use klaw_rt::runtime::entry::{EntryConfig, EntryKind, run_entry, run_test_within};
    pub use klaw_rt::scope::{Scope, ScopeOptions, scope_with, scope_with_error, typed_scope_body};
    pub use klaw_rt::task::BoxError;
    pub use klaw_rt::task::{BlockingTask, Fallible, Plain, Task};
    pub use klaw_rt::time::{sleep, sleep_until};
    pub use std::process::ExitCode;

    /// Gives a scope body the type `scope_with` expects; the `Future<Output = Result<T, BoxError>>`
    /// bound is what lets `?` in the body convert any error.
    pub fn scope_body<'s, T, F>(body: F) -> klaw_rt::scope::ScopeBody<'s, T>
    where
        F: Future<Output = Result<T, BoxError>> + Send + 's,
    {
        Box::pin(body)
    }

    pub use crate::__require_tokio_feature as require_tokio_feature;
    pub use crate::{
        __remote_task_body as remote_task_body, __require_signal_feature as require_signal_feature,
    };

    /// Stands in for a `scope!` with a compile error, so the caller's code still type-checks and
    /// the user sees only the macro's message.
    pub async fn scope_stub<T>() -> Result<T, Error> {
        unreachable!("scope! had a compile error")
    }

    /// Counting the assertions of a book snippet (see `__book_asserts!`).
    pub mod book {
        use std::collections::HashSet;
        use std::sync::{Mutex, PoisonError};

        pub use crate::{
            __book_assert as assert, __book_assert_eq as assert_eq, __book_assert_ne as assert_ne,
        };

        /// Where an assertion is: the module of its snippet, its line and its column.
        type Site = (&'static str, u32, u32);

        /// Every assertion site that ran.
        static REACHED: Mutex<Option<HashSet<Site>>> = Mutex::new(None);

        /// An assertion at this site is about to run.
        pub fn reached(module: &'static str, line: u32, column: u32) {
            let mut reached = REACHED.lock().unwrap_or_else(PoisonError::into_inner);
            reached.get_or_insert_with(HashSet::new).insert((module, line, column));
        }

        /// Checks, when the snippet ends, that `expected` assertion sites ran.
        #[derive(Debug)]
        pub struct Expect {
            module: &'static str,
            expected: usize,
        }

        impl Expect {
            /// Expects `expected` assertion sites in the snippet of `module`.
            pub fn new(module: &'static str, expected: usize) -> Self {
                Expect { module, expected }
            }
        }

        impl Drop for Expect {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    return;
                }
                let reached = REACHED.lock().unwrap_or_else(PoisonError::into_inner);
                let ran = reached
                    .iter()
                    .flatten()
                    .filter(|(module, _, _)| *module == self.module)
                    .count();
                drop(reached);
                ::core::assert_eq!(
                    ran,
                    self.expected,
                    "only {ran} of this snippet's {} assertions ran",
                    self.expected
                );
            }
        }
    }
}

/// The assertion macros of the book's snippets: each records that it ran (see
/// `__private::book`), then asserts as `std`'s does.
#[doc(hidden)]
#[macro_export]
macro_rules! __book_assert {
    ($($arg:tt)*) => {{
        $crate::__private::book::reached(::core::module_path!(), ::core::line!(), ::core::column!());
        ::core::assert!($($arg)*)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __book_assert_eq {
    ($($arg:tt)*) => {{
        $crate::__private::book::reached(::core::module_path!(), ::core::line!(), ::core::column!());
        ::core::assert_eq!($($arg)*)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __book_assert_ne {
    ($($arg:tt)*) => {{
        $crate::__private::book::reached(::core::module_path!(), ::core::line!(), ::core::column!());
        ::core::assert_ne!($($arg)*)
    }};
}

/// The book's chapters, compiled and run as doc-tests so the tutorial cannot rot.
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../README.md")]
    mod readme {}
    #[doc = include_str!("../book/src/introduction.md")]
    mod introduction {}
    #[doc = include_str!("../book/src/why.md")]
    mod why {}
    #[doc = include_str!("../book/src/tasks.md")]
    mod tasks {}
    #[doc = include_str!("../book/src/scopes.md")]
    mod scopes {}
    #[doc = include_str!("../book/src/errors.md")]
    mod errors {}
    #[doc = include_str!("../book/src/cancellation.md")]
    mod cancellation {}
    #[doc = include_str!("../book/src/channels.md")]
    mod channels {}
    #[doc = include_str!("../book/src/sync.md")]
    mod sync {}
    #[doc = include_str!("../book/src/select.md")]
    mod select {}
    #[doc = include_str!("../book/src/time.md")]
    mod time {}
    #[doc = include_str!("../book/src/logging.md")]
    mod logging {}
    #[doc = include_str!("../book/src/runtime.md")]
    mod runtime {}
    #[doc = include_str!("../book/src/from_tokio.md")]
    mod from_tokio {}
    #[doc = include_str!("../book/src/io.md")]
    mod io {}
}

/// The body of a `#[klaw::task(remote)]` function: as it is with the `remote` feature, and
/// without it one error that names the feature (instead of one per missing registry item).
#[cfg(feature = "remote")]
#[doc(hidden)]
#[macro_export]
macro_rules! __remote_task_body {
    ($($body:tt)*) => {{ $($body)* }};
}

/// The body of a `#[klaw::task(remote)]` function: as it is with the `remote` feature, and
/// without it one error that names the feature (instead of one per missing registry item).
#[cfg(not(feature = "remote"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __remote_task_body {
    ($($body:tt)*) => {{
        ::core::compile_error!(
            "`#[klaw::task(remote)]` needs klaw's `remote` feature: in Cargo.toml, \
             `klaw = { version = \"..\", features = [\"remote\"] }` (`nats` turns it on too)"
        );
        loop {}
    }};
}

/// `#[klaw::main(cancel_on_ctrl_c)]` expands this: nothing with the `signal` feature, one error
/// that names the feature without it.
#[cfg(feature = "signal")]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_signal_feature {
    () => {};
}

/// `#[klaw::main(cancel_on_ctrl_c)]` expands this: nothing with the `signal` feature, one error
/// that names the feature without it.
#[cfg(not(feature = "signal"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_signal_feature {
    () => {
        ::core::compile_error!(
            "`cancel_on_ctrl_c` needs klaw's `signal` feature: in Cargo.toml, \
             `klaw = { version = \"..\", features = [\"signal\"] }`"
        );
    };
}

/// `#[klaw::main(tokio)]` and `#[klaw::test(tokio)]` expand this: nothing with the `tokio`
/// feature, one error that names the feature without it.
#[cfg(feature = "tokio")]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_tokio_feature {
    () => {};
}

/// `#[klaw::main(tokio)]` and `#[klaw::test(tokio)]` expand this: nothing with the `tokio`
/// feature, one error that names the feature without it.
#[cfg(not(feature = "tokio"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_tokio_feature {
    () => {
        ::core::compile_error!(
            "the `tokio` option needs klaw's `tokio` feature: in Cargo.toml, \
             `klaw = { version = \"..\", features = [\"tokio\"] }`"
        );
    };
}

/// Opens a nursery and awaits it: `scope!(|s| { ... })` evaluates to `Result<T, klaw::Error>`
/// once the body and every child have ended. The first failure cancels the rest
/// (`CancelReason::SiblingFailed`) and is returned; several failures come back together as
/// `klaw::Error::Scope`.
///
/// Forms: `scope!(|s| body)`, `scope!(move |s| body)`, with options first:
/// `name = "..."`, `timeout = "5s"` (or a `Duration` expression), `deadline = <Instant>`,
/// `supervisor` (failures cancel nobody; all are collected). The body returns
/// `Result<T, klaw::task::BoxError>`, so `?` takes any error. `scope!(|s| -> R { body })`
/// names the body's result type instead (`anyhow::Result<_>`, `Result<_, MyError>` with a
/// `#[from] klaw::Error` variant): the scope then evaluates to `R`. Use it only inside async
/// code.
///
/// ```
/// # #[klaw::main(workers = 2)]
/// # async fn main() -> Result<(), klaw::Error> {
/// let names = vec!["ada".to_string(), "grace".to_string()];
/// let (parallel, borrowed) = klaw::scope!(timeout = "5s", |s| {
///     let parallel = s.spawn(async { 40 + 2 });
///     let borrowed = s.spawn_local(async { names.len() });
///     Ok((parallel.await?, borrowed.await?))
/// })?;
/// assert_eq!((parallel, borrowed), (42, 2));
/// # Ok(())
/// # }
/// ```
///
/// A renamed dependency (`my_klaw = { package = "klaw", .. }`) needs nothing here: the macro
/// reaches klaw through `$crate`.
#[macro_export]
macro_rules! scope {
    ($($tokens:tt)*) => {
        $crate::__private::scope_macro!($crate; $($tokens)*)
    };
}

/// Waits for the first of several operations: channel `recv` and `send`, any future, a timer.
/// Channel arms bind typed `Result`s, so closing is always handled and no arm is silently
/// disabled; a losing arm consumes nothing. Fair by default (polling starts at a random arm);
/// `biased;` polls top to bottom. `default` runs if no arm is ready at once (with the task's
/// cooperative budget spent, by the select or by one of its arms, it yields first and looks
/// again, so `default` is never taken while a value waits).
///
/// Arms: `recv(rx) -> msg => ...` (`msg: Result<T, RecvError>`), `send(tx, value) -> res => ...`
/// (`res: Result<(), SendError<T>>`; `value` is evaluated only if this arm wins),
/// `future -> pattern => ...` (the pattern must be irrefutable), `after(duration) => ...`,
/// `at(instant) => ...`, `default => ...`.
///
/// ```
/// use std::time::Duration;
/// use klaw::channel::RecvError;
///
/// # klaw::runtime::block_on(async {
/// let (tx, rx) = klaw::channel::bounded::<u32>(1);
/// let (out_tx, out_rx) = klaw::channel::bounded::<u32>(1);
/// tx.try_send(7).unwrap();
/// let got = klaw::select! {
///     recv(rx) -> msg => match msg {
///         Ok(v) => v,
///         Err(RecvError::Closed) => 0,
///     },
///     after(Duration::from_secs(1)) => 0,
/// };
/// assert_eq!(got, 7);
/// klaw::select! {
///     biased;
///     send(out_tx, got * 2) -> res => res.unwrap(),
///     default => unreachable!("the channel has room"),
/// }
/// assert_eq!(out_rx.try_recv(), Ok(14));
/// # });
/// ```
///
/// A renamed dependency needs nothing here: the macro reaches klaw through `$crate`.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__private::select_macro!($crate; $($tokens)*)
    };
}
