//! Parsing: the option list and the function.

use proc_macro2::TokenStream;
use syn::ItemFn;

use crate::entry::{EntryKind, OPTIONS};
use crate::options::{OptionList, valid_forms};

/// An entry attribute as written, before validation.
pub(crate) struct ParsedEntry {
    pub(crate) options: OptionList,
    pub(crate) item: ItemFn,
}

/// The item under the attribute, which must be a function.
pub(crate) fn parse_function(kind: EntryKind, item: TokenStream) -> syn::Result<ItemFn> {
    syn::parse2(item).map_err(|error| {
        syn::Error::new(error.span(), format!("{} goes on an `async fn`", kind.attribute()))
    })
}

/// The attribute's options.
pub(crate) fn parse_options(kind: EntryKind, args: TokenStream) -> syn::Result<OptionList> {
    syn::parse2(args).map_err(|error| {
        syn::Error::new(
            error.span(),
            format!(
                "malformed {} options ({error}); valid options are: {}",
                kind.attribute(),
                valid_forms(OPTIONS)
            ),
        )
    })
}
