//! `select!`: wait for the first of several channel operations, futures and timers.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diagnostic;
use crate::path::KlawPath;
use crate::select::parse::ArmKind;

/// The arms `select!` accepts, for every message about its shape.
pub(crate) const ARMS: &str = "`recv(rx) -> msg => ...`, `send(tx, value) -> res => ...`, \
     `future -> pattern => ...`, `after(duration) => ...`, `at(instant) => ...`, `default => ...` \
     (and `biased;` first, for top-to-bottom order)";

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let (krate, input) = KlawPath::split_leading(input);
    let (use_private, private) = krate.private_alias();
    let expansion = match syn::parse2::<parse::ParsedSelect>(input) {
        // Nothing usable at all: a block that never returns (`loop {}` has type `!`) keeps the
        // caller's code type-checking, and the user sees only select!'s own message.
        Err(error) => diagnostic::emit(Err(error), || quote!(loop {})),
        Ok(parsed) => {
            let mut select = validate::validate(parsed);
            let errors = std::mem::take(&mut select.errors).into_error();
            // The arms that parsed still expand, so errors in their bodies show too.
            let waits = select.arms.iter().any(|arm| !matches!(arm.kind, ArmKind::Default));
            let default = select.arms.iter().find(|arm| matches!(arm.kind, ArmKind::Default));
            let expansion = match (waits, default) {
                (true, _) => expand::expand(select, &private),
                (false, Some(default)) => {
                    let body = &default.body;
                    quote!(#body)
                }
                (false, None) => quote!(loop {}),
            };
            diagnostic::emit_with(errors, expansion)
        }
    };
    quote!({ #use_private #expansion })
}
