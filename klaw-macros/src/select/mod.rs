//! `select!`: wait for the first of several channel operations, futures and timers.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diagnostic;

/// The arms `select!` accepts, for every message about its shape.
pub(crate) const ARMS: &str = "`recv(rx) -> msg => ...`, `send(tx, value) -> res => ...`, \
     `future -> pattern => ...`, `after(duration) => ...`, `at(instant) => ...`, `default => ...` \
     (and `biased;` first, for top-to-bottom order)";

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let result = syn::parse2(input).and_then(validate::validate).map(expand::expand);
    // On error the expansion is a block that never returns (`loop {}` has type `!`), so the
    // caller's code still type-checks and the user sees only select!'s own message.
    let expansion = diagnostic::emit(result, || quote!(loop {}));
    quote!({ #expansion })
}
