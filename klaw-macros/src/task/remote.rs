//! Expansion of `remote`: the task registers itself by name at link time, checks that its
//! arguments and output are serde types, and attaches its encoded call to the task value.
//!
//! The task value itself is built by a nested `fn __klaw_task`, with the function's own
//! signature and body. The function encodes its arguments and attaches the call; a worker
//! calls `__klaw_task` directly, so it does not encode again the arguments it just decoded.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, ReturnType};

/// The body of a remote task's function. `local_task` is `fn __klaw_task(..) -> Task<..>`,
/// which builds the task value.
pub(crate) fn remote_body(
    private: &TokenStream,
    item: &ItemFn,
    names: &[Ident],
    custom_name: Option<&LitStr>,
    local_task: &TokenStream,
) -> TokenStream {
    let sig = &item.sig;
    let ident = &sig.ident;
    let registered = match custom_name {
        Some(name) => quote!(#name),
        None => {
            let ident = ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    let types: Vec<_> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(arg) => Some(arg.ty.as_ref()),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    // The build a worker must share: crate, version, and the signature as written.
    let signature = format!("{}({}) -> {}", ident, quote!(#(#types),*), output);
    // One codec per argument and one for the output, each in a `const` spanned at its type:
    // a type that cannot travel gives exactly one error, at its own tokens.
    let arg_codecs: Vec<_> =
        (0..types.len()).map(|index| format_ident!("__KLAW_ARG{index}")).collect();
    let codec_items = types.iter().zip(&arg_codecs).map(|(ty, codec)| {
        quote_spanned! {ty.span()=>
            const #codec: #private::remote::Codec<#ty> = #private::remote::__codec::<#ty>();
        }
    });
    let output_codec = quote_spanned! {sig.output.span()=>
        const __KLAW_OUTPUT: #private::remote::Codec<#output> =
            #private::remote::__codec::<#output>();
    };
    let count = types.len();
    let indices = 0..count;
    let fresh: Vec<_> = (0..names.len()).map(|index| format_ident!("__klaw_arg{index}")).collect();
    quote! {
        #local_task
        const __KLAW_NAME: &str = #registered;
        #(#codec_items)*
        #output_codec
        fn __klaw_start(
            args: &[u8],
        ) -> ::core::result::Result<#private::remote::RemoteRun, #private::remote::RemoteError> {
            let parts = #private::remote::__split_args(__KLAW_NAME, args, #count)?;
            #(let #fresh = #arg_codecs.decode_arg(__KLAW_NAME, &parts, #indices)?;)*
            ::core::result::Result::Ok(#private::remote::__run(
                __KLAW_NAME,
                __klaw_task(#(#fresh),*),
                __KLAW_OUTPUT,
            ))
        }
        static __KLAW_REMOTE: #private::remote::RemoteTaskDef = #private::remote::RemoteTaskDef::new(
            __KLAW_NAME,
            ::core::concat!(
                ::core::env!("CARGO_PKG_NAME"), "@", ::core::env!("CARGO_PKG_VERSION"), " ", #signature
            ),
            __klaw_start,
        );
        #private::remote::inventory::submit! {
            #private::remote::Registration(&__KLAW_REMOTE)
        }
        let __klaw_args =
            #private::remote::__encode_args(__KLAW_NAME, [#(#arg_codecs.encode(&#names)),*]);
        __klaw_task(#(#names),*).__remote(&__KLAW_REMOTE, __klaw_args, __KLAW_OUTPUT)
    }
}
