//! Procedural macros of klaw. Use them through the `klaw` crate (`#[klaw::main]`,
//! `#[klaw::test]`, `klaw::scope!`); generated code names only klaw's hidden `__private`
//! module: through `$crate` for `scope!` and `select!` (the facade's `macro_rules!` wrappers pass
//! it), and as `::klaw` or the attributes' `crate = "..."` for the attributes.
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
/// `Builder::tokio`), and `crate = "my_klaw"` when `Cargo.toml` renames the klaw dependency
/// (generated code otherwise names `::klaw`). A runtime that cannot be built (a bad
/// `KLAW_WORKERS`) ends the program with the error and exit code 2.
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
/// `max_blocking_threads = N`, `timeout = "10s"` (or a `Duration` expression; real time, even
/// with `start_paused`), `start_paused = true`: a virtual clock that jumps to the next timer
/// whenever every task waits (one worker), and `tokio` and `crate = "..."`, as for
/// `#[klaw::main]`.
///
/// With a `timeout`, the body and its runtime run on a thread of their own, which the test's
/// thread waits for: past the timeout the test fails with a message and the runtime's tree (what
/// was still running, see `Runtime::dump`), whatever the body is doing, even blocking its thread
/// or waiting in a `shield` that never ends. The body is cancelled then (at its next `.await`)
/// and given one second to end, so that what it started is cleaned up; one that has not ended
/// by then is left running on its thread, which ends with the test process. Its panics and its
/// `Err` fail the test as they would without a timeout, and its error type need not be `Send`
/// (it is printed on the body's thread; the test function then returns the `ExitCode` of that
/// report, or `()` if the body returns `()`). The body logs to the `tracing` subscriber and span
/// current on the test's thread (what a log-capturing attribute such as tracing-test's
/// `#[traced_test]` sets up); other thread-locals of the test's thread are not the body's. A
/// test without a timeout runs on the test's thread.
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
/// expression; not for blocking tasks), `blocking`, and `crate = "my_klaw"` when `Cargo.toml`
/// renames the klaw dependency. A function returning a `Result` is
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

/// The proc macro behind `klaw::scope!`, which passes `$crate;` first so that generated code
/// reaches klaw under any name. Use `klaw::scope!`; its documentation is in the facade.
#[proc_macro]
pub fn scope(input: TokenStream) -> TokenStream {
    scope::expand(input.into()).into()
}

/// The proc macro behind `klaw::select!`, which passes `$crate;` first so that generated code
/// reaches klaw under any name. Use `klaw::select!`; its documentation is in the facade.
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into()).into()
}
