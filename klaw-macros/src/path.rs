//! The path generated code uses to reach klaw.
//!
//! - `scope!` and `select!` are `macro_rules!` wrappers in the facade that hand their proc macro
//!   `$crate` first (`$crate; ...`). `$crate` always names klaw, however the user's `Cargo.toml`
//!   renamed it, so these two follow a rename by themselves.
//! - Attributes cannot see `$crate`. They reach klaw as `::klaw`, unless `crate = "path"` names
//!   it (tokio's and serde's convention). Reading the user's `Cargo.toml` instead would cost every
//!   build a TOML parser and its eight crates.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, Lit, Token};

use crate::options::OptionArg;

/// klaw's root, as generated code writes it.
#[derive(Clone)]
pub(crate) struct KlawPath(TokenStream);

impl Default for KlawPath {
    fn default() -> Self {
        KlawPath(quote!(::klaw))
    }
}

impl KlawPath {
    /// `<klaw>::__private`, the only module generated code refers to.
    pub(crate) fn private(&self) -> TokenStream {
        let root = &self.0;
        quote!(#root::__private)
    }

    /// For a function-like macro's expansion: a `use` of `__private` under a local name, and that
    /// name, which the expansion uses instead of the path. Every generated token then has the
    /// macro's own call-site span; the `$crate` token's span (the wrapper's) would otherwise
    /// give the generated expressions spans of their own, and the compiler would report a
    /// failed bound once per distinct span instead of once.
    pub(crate) fn private_alias(&self) -> (TokenStream, TokenStream) {
        let private = self.private();
        (quote!(use #private as __klaw_private;), quote!(__klaw_private))
    }

    /// The value of an attribute's `crate = "path"` option.
    pub(crate) fn from_option(arg: &OptionArg) -> syn::Result<Self> {
        const EXPECTED: &str = "`crate` takes the path klaw is known by in this crate, as a \
             string: `crate = \"my_klaw\"` when Cargo.toml has \
             `my_klaw = { package = \"klaw\", .. }`";
        let path = match &arg.value {
            Some(Expr::Lit(ExprLit { lit: Lit::Str(text), .. })) => {
                text.parse::<syn::Path>().map_err(|_| syn::Error::new_spanned(text, EXPECTED))?
            }
            Some(other) => return Err(syn::Error::new_spanned(other, EXPECTED)),
            None => {
                let message = format!("{EXPECTED}; the value is missing");
                return Err(syn::Error::new_spanned(&arg.key, message));
            }
        };
        Ok(KlawPath(quote!(#path)))
    }

    /// Splits `$crate;` off the front of a function-like macro's input, as the facade's wrapper
    /// passes it. Input without it (the proc macro called directly) reaches klaw as `::klaw`.
    pub(crate) fn split_leading(input: TokenStream) -> (Self, TokenStream) {
        let parser = |stream: ParseStream<'_>| {
            let fork = stream.fork();
            let leading = match fork.parse::<TokenTree>() {
                Ok(TokenTree::Ident(ident)) if ident == "$crate" && fork.peek(Token![;]) => ident,
                _ => return Ok((KlawPath::default(), stream.parse::<TokenStream>()?)),
            };
            stream.parse::<TokenTree>()?;
            stream.parse::<Token![;]>()?;
            Ok((KlawPath(quote!(#leading)), stream.parse::<TokenStream>()?))
        };
        parser.parse2(input.clone()).unwrap_or_else(|_: syn::Error| (KlawPath::default(), input))
    }
}
