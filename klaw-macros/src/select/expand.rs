//! Expansion: pin every arm's future, poll them from a random arm (or the first, if `biased`),
//! `recv` arms in two passes (a look, then a place in line only if no arm was ready), drop them
//! all, then run the winner's body with its result bound.
//!
//! A future arm's expression is first bound by a `let` of its own, as written, so temporaries it
//! borrows live through the `select!` (`&mut ready(x)`), as they do in tokio's. The winner's
//! pattern binds its result directly in the final `match`, so `ref mut` works and a body is a
//! plain match arm body (no braces added, which would trip `unused_braces`). An arm whose future
//! never completes (`!` output) makes the code that would use its output unreachable, which is
//! not the user's to see: those spots allow `unreachable_code`. (The pattern is matched in a
//! `match` of its own on the winner's output, spanned at the pattern: a refutable one is an
//! error there, in the user's terms.)

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::diagnostic::respanned;
use crate::select::parse::{Arm, ArmKind, ParsedSelect};

pub(crate) fn expand(select: ParsedSelect, private: &TokenStream) -> TokenStream {
    let waiting: Vec<_> =
        select.arms.iter().filter(|arm| !matches!(arm.kind, ArmKind::Default)).collect();
    let default = select.arms.iter().find(|arm| matches!(arm.kind, ArmKind::Default));
    let count = waiting.len();
    let variants: Vec<_> = (0..count).map(|i| format_ident!("Arm{i}")).collect();
    let params: Vec<_> = (0..count).map(|i| format_ident!("T{i}")).collect();
    let futures: Vec<_> = (0..count).map(|i| format_ident!("__klaw_arm_{i}")).collect();

    let make: Vec<TokenStream> = waiting
        .iter()
        .zip(&futures)
        .map(|(arm, name)| {
            // A receiver or sender is borrowed by a `let` of its own first: the borrow of a
            // temporary it names (`recv(&rx)`, `recv(inbox.receiver())`) then lives as long as
            // what borrows it (the arm's future; a `send` arm's permit).
            let future = match &arm.kind {
                ArmKind::Recv { receiver, .. } => {
                    let written = borrowed(name, receiver);
                    return quote_spanned! {receiver.span()=>
                        let #written = &(#receiver);
                        let mut #name = ::core::pin::pin!(
                            #private::SelectRecv::__select_recv(#written)
                        );
                    };
                }
                // The sender's borrow is bound before the arms' block (`borrowed_senders`):
                // the winning arm's permit borrows it until the arm's body sends.
                ArmKind::Send { sender, .. } => {
                    let written = borrowed(name, sender);
                    quote_spanned! {sender.span()=>
                        #private::SelectSend::__select_reserve(#written)
                    }
                }
                ArmKind::Future { future, .. } => {
                    // Bound as written first: a `let` extends the temporaries it borrows.
                    let written = format_ident!("{name}_written");
                    // At the future, as the polls below are: a value that is no future is one
                    // error, there (rustc keeps one of the same error at the same place).
                    let private = respanned(private, future.span());
                    let into = quote_spanned! {future.span()=>
                        #private::SelectFuture::__select_future(#written)
                    };
                    return quote! {
                        let #written = #future;
                        let mut #name = ::core::pin::pin!(#into);
                    };
                }
                ArmKind::After(duration) => quote_spanned! {duration.span()=>
                    #private::sleep(#duration)
                },
                ArmKind::At(deadline) => quote_spanned! {deadline.span()=>
                    #private::sleep_until(#deadline)
                },
                ArmKind::Default => unreachable!("filtered out"),
            };
            quote!(let mut #name = ::core::pin::pin!(#future);)
        })
        .collect();

    let borrowed_senders: Vec<TokenStream> = waiting
        .iter()
        .zip(&futures)
        .filter_map(|(arm, name)| match &arm.kind {
            ArmKind::Send { sender, .. } => {
                let written = borrowed(name, sender);
                Some(quote_spanned!(sender.span()=> let #written = &(#sender);))
            }
            _ => None,
        })
        .collect();

    // First pass: every arm in turn, a `recv` arm only looking for a message (it joins no wait
    // list, so an arm that loses to a ready sibling costs no join and leave). Second pass, only
    // when nothing was ready: the `recv` arms join their lines (each looks once more after it
    // joined, as every wait does).
    let poll_arm = |index: usize, poll: &TokenStream| {
        let variant = &variants[index];
        quote! {
            #index => {
                if let ::core::task::Poll::Ready(output) = #poll {
                    #[allow(unreachable_code)]
                    return ::core::task::Poll::Ready(__KlawSelected::#variant(output));
                }
            }
        }
    };
    let first_pass: Vec<TokenStream> = waiting
        .iter()
        .zip(&futures)
        .enumerate()
        .map(|(index, (arm, name))| {
            let poll = match &arm.kind {
                ArmKind::Recv { .. } => quote!(#private::select_look(#name.as_mut(), __klaw_cx)),
                _ => poll_future(arm, name),
            };
            poll_arm(index, &poll)
        })
        .collect();
    let second_pass: Vec<TokenStream> = waiting
        .iter()
        .zip(&futures)
        .enumerate()
        .filter(|(_, (arm, _))| matches!(arm.kind, ArmKind::Recv { .. }))
        .map(|(index, (_, name))| {
            poll_arm(index, &quote!(#private::select_join(#name.as_mut(), __klaw_cx)))
        })
        .collect();

    // Names the macro binds where user code runs (a send arm's value, an arm's body): at the
    // user's tokens for errors, but of the macro's own hygiene, so they never shadow the user's.
    let own_name = |name: &str, at: proc_macro2::Span| {
        proc_macro2::Ident::new(name, proc_macro2::Span::mixed_site().located_at(at))
    };
    // First the winner's outcome, as a value that borrows nothing of the arms: a send arm's
    // permit is used up here (only the winning arm evaluates its value, so a losing one consumes
    // nothing), before any body runs, so a body may use the sender again (drop it, or call a
    // `&mut self` method of what holds it).
    let outcomes = waiting.iter().zip(&variants).map(|(arm, variant)| match &arm.kind {
        ArmKind::Send { binding, value, .. } => {
            let reserved = own_name("__klaw_reserved", binding.span());
            quote! {
                __KlawSelected::#variant(#reserved) => __KlawSelected::#variant(
                    #private::finish_send(#reserved, #value)
                ),
            }
        }
        _ => quote! {
            __KlawSelected::#variant(__klaw_output) => __KlawSelected::#variant(__klaw_output),
        },
    });
    let bodies = waiting.iter().zip(&variants).map(|(arm, variant)| {
        let body = &arm.body;
        match &arm.kind {
            // Matched again as a temporary (a block's value, so the pattern may bind `ref mut`),
            // spanned at the pattern, where rustc then points if the pattern is refutable.
            ArmKind::Recv { binding, .. }
            | ArmKind::Future { binding, .. }
            | ArmKind::Send { binding, .. } => {
                let won = own_name("__klaw_won", binding.span());
                let output = quote_spanned! {binding.span()=> { #won }};
                // An arm whose future never completes (`!`) has an uninhabited output: its
                // pattern and what follows are unreachable, which is not the user's to see.
                quote! {
                    #[allow(unreachable_code, unreachable_patterns)]
                    __KlawSelected::#variant(#won) => match #output {
                        #binding => #body,
                    },
                }
            }
            ArmKind::After(_) | ArmKind::At(_) => quote! {
                __KlawSelected::#variant(()) => #body,
            },
            ArmKind::Default => unreachable!("filtered out"),
        }
    });

    let (default_variant, default_ready, default_body) = match default {
        Some(arm) => {
            let body = &arm.body;
            (
                quote!(Default,),
                // An arm may have spent the budget as it was polled (an `async` block that
                // receives in a loop), so that the arms after it yielded while values waited:
                // then yield too, rather than take `default`.
                quote! {
                    let _ = ::core::task::ready!(#private::poll_budget_available(__klaw_cx));
                    return ::core::task::Poll::Ready(__KlawSelected::Default);
                },
                quote!(__KlawSelected::Default => #body,),
            )
        }
        None => (quote!(), quote!(::core::task::Poll::Pending), quote!()),
    };
    let default_outcome =
        default.map(|_| quote!(__KlawSelected::Default => __KlawSelected::Default,));
    // Only with a send arm: a select without one hands its winner to the bodies as it is, so a
    // large output is not moved once more on the way (a small stack holds one copy less).
    let has_send = waiting.iter().any(|arm| matches!(arm.kind, ArmKind::Send { .. }));
    let outcome = has_send.then(|| {
        quote! {
            #[allow(unreachable_code, unreachable_patterns)]
            // A temporary, dropped at the end of this `let` with the permits' borrows.
            let __klaw_selected = match { __klaw_selected } {
                #(#outcomes)*
                #default_outcome
            };
        }
    });
    let start = if select.biased { quote!(0usize) } else { quote!(#private::random_start(#count)) };
    // One arm has no order to rotate (and `x % 1` would trip clippy in the user's crate).
    let poll_all = if count == 1 {
        let name = &futures[0];
        let variant = &variants[0];
        let poll = poll_future(waiting[0], name);
        quote! {
            if let ::core::task::Poll::Ready(output) = #poll {
                #[allow(unreachable_code)]
                return ::core::task::Poll::Ready(__KlawSelected::#variant(output));
            }
        }
    } else {
        // With a `default` arm nothing waits: no arm was ready, so `default` is taken.
        let second_pass = (!second_pass.is_empty() && default.is_none()).then(|| {
            quote! {
                for __klaw_offset in 0..#count {
                    match (__klaw_start + __klaw_offset) % #count {
                        #(#second_pass)*
                        _ => {}
                    }
                }
            }
        });
        quote! {
            for __klaw_offset in 0..#count {
                match (__klaw_start + __klaw_offset) % #count {
                    #(#first_pass)*
                    _ => {}
                }
            }
            #second_pass
        }
    };
    let start = if count == 1 { quote!() } else { quote!(let __klaw_start: usize = #start;) };

    quote! {
        enum __KlawSelected<#(#params),*> {
            #(#variants(#params),)*
            #default_variant
        }
        #(#borrowed_senders)*
        // The arms' futures are the block's locals: all dropped before the winner's body runs.
        #[allow(unreachable_code, unreachable_patterns)]
        let __klaw_selected = {
            #(#make)*
            #start
            ::core::future::poll_fn(|__klaw_cx| {
                // With the task's cooperative budget spent, yield rather than poll the arms
                // (which would all yield) and take `default` while values wait. Cancelled
                // beside a shield that holds the cancellation, poll them (they take nothing, and
                // pass on wake-ups) but never take `default`.
                let __klaw_held = ::core::task::ready!(#private::poll_budget_available(__klaw_cx));
                #poll_all
                if __klaw_held {
                    return ::core::task::Poll::Pending;
                }
                #default_ready
            })
            .await
        };
        #outcome
        // The winner is matched as a temporary, so its pattern may bind `ref mut`.
        match __klaw_selected {
            #(#bodies)*
            #default_body
        }
    }
}

/// A poll of the arm's pinned future `name`; a future arm's at its future, as its creation is.
fn poll_future(arm: &Arm, name: &proc_macro2::Ident) -> TokenStream {
    let span = match &arm.kind {
        ArmKind::Future { future, .. } => future.span(),
        _ => proc_macro2::Span::call_site(),
    };
    // The names inside stay the macro's own, so they resolve at its call site; the argument's
    // braces are at the future, as is the error about it.
    let mut future = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, quote!(#name.as_mut()));
    future.set_span(span);
    let poll = quote_spanned!(span=> ::core::future::Future::poll);
    quote!(#poll(#future, __klaw_cx))
}

/// The `let` that borrows an arm's receiver or sender (`expr`), spanned at it, where rustc then
/// points if it is not one.
fn borrowed(arm: &proc_macro2::Ident, expr: &syn::Expr) -> proc_macro2::Ident {
    let span = proc_macro2::Span::mixed_site().located_at(expr.span());
    format_ident!("{arm}_written", span = span)
}
