//! Procedural macros of klaw. Use them through the `klaw` crate (`#[klaw::main]`,
//! `#[klaw::test]`); generated code names only `::klaw::__private`.
//!
//! Each macro is parsed (`impl Parse`), validated, then expanded, in separate files; errors are
//! `syn::Error`s at the user's tokens, turned into `compile_error!` in one place
//! (`diagnostic::emit`), next to a stub of the item so the user sees one error, not ten.
#![forbid(unsafe_code)]

mod diagnostic;
mod duration;
mod entry;
mod options;
mod scope;
mod task;

use proc_macro::TokenStream;

/// Runs an `async fn main` on a klaw runtime. See the `klaw` crate for the options.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::EntryKind::Main, args.into(), item.into()).into()
}

/// Runs an `async fn` test on its own klaw runtime. See the `klaw` crate for the options.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::EntryKind::Test, args.into(), item.into()).into()
}

/// Makes an `async fn` (or, with `blocking`, a sync fn) a task. See the `klaw` crate.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// Opens a nursery: `scope!(|s| { ... })`. See the `klaw` crate.
#[proc_macro]
pub fn scope(input: TokenStream) -> TokenStream {
    scope::expand(input.into()).into()
}
