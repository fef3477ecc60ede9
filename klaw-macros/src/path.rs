//! The path generated code uses to reach klaw: `::klaw`, or the name the user's `Cargo.toml`
//! gives the dependency (`my_klaw = { package = "klaw", .. }`).

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

/// `::klaw::__private`, under whatever name the crate being compiled knows klaw by.
pub(crate) fn private() -> TokenStream {
    match crate_name("klaw") {
        Ok(FoundCrate::Name(name)) if name != "klaw" => {
            let name = Ident::new(&name, Span::call_site());
            quote!(::#name::__private)
        }
        // `Itself` is klaw's own doc-tests and integration tests, which see it as `klaw`; and if
        // the manifest cannot be read, `::klaw` is the best guess.
        _ => quote!(::klaw::__private),
    }
}
