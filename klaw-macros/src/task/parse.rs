//! Parsing: the option list and the function.

use proc_macro2::TokenStream;
use syn::ItemFn;

use crate::options::{OptionList, valid_forms};
use crate::task::{ATTRIBUTE, OPTIONS};

/// `#[klaw::task]` as written, before validation.
pub(crate) struct ParsedTask {
    pub(crate) options: OptionList,
    pub(crate) item: ItemFn,
}

pub(crate) fn parse_function(item: TokenStream) -> syn::Result<ItemFn> {
    syn::parse2(item).map_err(|error| {
        syn::Error::new(
            error.span(),
            format!(
                "{ATTRIBUTE} goes on a function: an `async fn`, or a sync `fn` with \
                 #[klaw::task(blocking)]"
            ),
        )
    })
}

pub(crate) fn parse_options(args: TokenStream) -> syn::Result<OptionList> {
    syn::parse2(args).map_err(|error| {
        syn::Error::new(
            error.span(),
            format!(
                "malformed {ATTRIBUTE} options ({error}); valid options are: {}",
                valid_forms(OPTIONS)
            ),
        )
    })
}
