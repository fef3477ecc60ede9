//! Expansion: `scope_with(options, |s| boxed async body).await`, or `scope_with_error` for a
//! body that names its result type.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::scope::validate::ScopePlan;

pub(crate) fn expand(plan: ScopePlan, private: &TokenStream) -> TokenStream {
    let ScopePlan { name, timeout, deadline, supervisor, limit, moves, param, result, body } = plan;
    let name = name.map(|name| quote!(.name(#name)));
    let timeout = timeout.map(|timeout| quote!(.timeout(#timeout)));
    let deadline = deadline.map(|deadline| {
        quote_spanned!(deadline.span()=> .deadline(::core::convert::identity::<::std::time::Instant>(#deadline)))
    });
    let supervisor = supervisor.then(|| quote!(.supervisor()));
    let limit = limit.map(
        |limit| quote_spanned!(limit.span()=> .limit(::core::convert::identity::<usize>(#limit))),
    );
    let capture = moves.then(|| quote!(move));
    let body_span = body.span();
    // A block body becomes the async block itself: no second pair of braces around it.
    let body = match &body {
        syn::Expr::Block(block) if block.attrs.is_empty() && block.label.is_none() => {
            let block = &block.block;
            quote_spanned! {body_span=> async #capture #block }
        }
        body => quote_spanned! {body_span=> async #capture { #body } },
    };
    // Without a named result type the body's error is `BoxError`, so `?` takes any error and
    // the scope returns `klaw::Error`; with one, the body and the scope both have that type.
    let (run, body) = match result {
        None => (quote!(scope_with), quote_spanned! {body_span=> #private::scope_body(#body) }),
        // Spanned at the named type: a type that cannot hold klaw's errors is reported there.
        Some(result) => (
            quote_spanned!(result.span()=> scope_with_error),
            quote_spanned! {result.span()=> #private::typed_scope_body::<#result, _>(#body) },
        ),
    };
    quote! {
        #private::#run(
            #private::ScopeOptions::new() #name #timeout #deadline #supervisor #limit,
            |#param| #body,
        )
        .await
    }
}
