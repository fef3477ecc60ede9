//! Procedural macros of klaw. Use them through the `klaw` crate (`#[klaw::main]`,
//! `#[klaw::test]`); generated code names only klaw's hidden `__private` module, under the
//! name the user's `Cargo.toml` gives klaw (`::klaw` unless renamed).
//!
//! Each macro is parsed (`impl Parse`), validated, then expanded, in separate files; errors are
//! `syn::Error`s at the user's tokens, turned into `compile_error!` in one place
//! (`diagnostic::emit`), next to a stub of the item so the user sees one error, not ten.
#![forbid(unsafe_code)]

mod diagnostic;
mod duration;
mod entry;
mod options;
mod path;
mod scope;
mod select;
mod task;

use proc_macro::TokenStream;

/// Runs an `async fn main` on a klaw runtime built for it, then shuts the runtime down.
/// Options: `workers = N` (default: detected, or `KLAW_WORKERS`), `max_blocking_threads = N`,
/// and `cancel_on_ctrl_c`: Ctrl-C cancels the body with `CancelReason::Interrupted`, and if the
/// body then gives no value the process prints the reason and exits with code 130 (klaw's
/// `signal` feature), and `tokio`: the runtime owns a tokio runtime, so tokio-based crates
/// (reqwest, hyper, axum, sqlx...) work inside its tasks (klaw's `tokio` feature; see
/// `Builder::tokio`). A runtime that cannot be built (a bad `KLAW_WORKERS`) ends the program with the error and
/// exit code 2.
///
/// ```
/// #[klaw::main(workers = 2)]
/// async fn main() -> Result<(), klaw::Error> {
///     let answer = klaw::Handle::current()?.spawn(async { 6 * 7 }).await?;
///     assert_eq!(answer, 42);
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::EntryKind::Main, args.into(), item.into()).into()
}

/// Runs an `async fn` test on its own klaw runtime. Options: `workers = N`,
/// `max_blocking_threads = N`, `timeout = "10s"` (or a `Duration` expression): past it the
/// test fails with a message and the runtime's tree (what was still running, see
/// `Runtime::dump`) instead of hanging, and `start_paused = true`: a virtual clock that jumps to
/// the next timer whenever every task waits (one worker), and `tokio`, as for `#[klaw::main]`.
///
/// ```
/// #[klaw::test(workers = 2, timeout = "5s")]
/// async fn adds() {
///     assert_eq!(klaw::Handle::current().unwrap().spawn(async { 2 + 2 }).await, Ok(4));
/// }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::EntryKind::Test, args.into(), item.into()).into()
}

/// Makes an `async fn` (or, with `blocking`, a sync `fn`) a task: the call syntax stays, and a
/// call gives a task value that can be awaited inline, spawned in a scope or submitted to a
/// runtime. It runs in a `tracing` span with its name and id.
///
/// Options: `name = "..."` (default: the function's name), `timeout = "5s"` (or a `Duration`
/// expression; not for blocking tasks), `blocking`. A function returning a `Result` is
/// fallible: its `Err` is a failure (`TaskError::Failed`), which cancels the siblings in a scope.
///
/// ```
/// #[klaw::task(timeout = "1s")]
/// async fn double(x: u32) -> Result<u32, std::num::TryFromIntError> {
///     u32::try_from(u64::from(x) * 2)
/// }
///
/// #[klaw::task(blocking, name = "sum")]
/// fn sum(values: Vec<u64>) -> u64 {
///     values.iter().sum()
/// }
///
/// #[klaw::main(workers = 2)]
/// async fn main() -> Result<(), klaw::Error> {
///     assert_eq!(double(21).await?, 42);
///     let total = klaw::scope!(|s| {
///         let a = s.spawn(sum(vec![1, 2, 3]));
///         assert_eq!(a.name(), Some("sum"));
///         Ok(a.await?)
///     })?;
///     assert_eq!(total, 6);
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
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
#[proc_macro]
pub fn scope(input: TokenStream) -> TokenStream {
    scope::expand(input.into()).into()
}

/// Waits for the first of several operations: channel `recv` and `send`, any future, a timer.
/// Channel arms bind typed `Result`s, so closing is always handled and no arm is silently
/// disabled; a losing arm consumes nothing. Fair by default (polling starts at a random arm);
/// `biased;` polls top to bottom. `default` runs if no arm is ready at once.
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
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into()).into()
}
