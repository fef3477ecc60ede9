//! Parsing: `biased;`, then arms `kind => body`, separated by commas (optional after a block).

use syn::parse::{Parse, ParseStream, Parser, discouraged::Speculative};
use syn::spanned::Spanned;
use syn::{Expr, ExprCall, ExprPath, Pat, Token};

use crate::diagnostic::{Errors, error_at_next};
use crate::select::ARMS;

/// One arm's operation, as written.
pub(crate) enum ArmKind {
    Recv { receiver: Expr, binding: Pat },
    Send { sender: Expr, value: Expr, binding: Pat },
    Future { future: Expr, binding: Pat },
    After(Expr),
    At(Expr),
    Default,
}

pub(crate) struct Arm {
    pub(crate) kind: ArmKind,
    /// The arm's head, for errors about the arm as a whole.
    pub(crate) head: proc_macro2::TokenStream,
    pub(crate) body: Expr,
}

/// `select!` as written, before validation: the arms that parsed, and the errors of those that
/// did not (each skipped to the next `,`, so one bad arm does not hide the others' code).
pub(crate) struct ParsedSelect {
    pub(crate) biased: bool,
    pub(crate) arms: Vec<Arm>,
    pub(crate) span: proc_macro2::Span,
    pub(crate) errors: Errors,
}

fn keyword(expr: &Expr) -> Option<(String, &ExprCall)> {
    let Expr::Call(call) = expr else { return None };
    let Expr::Path(ExprPath { path, qself: None, .. }) = call.func.as_ref() else { return None };
    let ident = path.get_ident()?.to_string();
    matches!(ident.as_str(), "recv" | "send" | "after" | "at").then_some((ident, call))
}

fn is_default(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(ExprPath { path, qself: None, .. }) if path.is_ident("default"))
}

fn args(call: &ExprCall) -> Vec<Expr> {
    call.args.iter().cloned().collect()
}

fn binding(input: ParseStream<'_>, what: &str) -> syn::Result<Pat> {
    if !input.peek(Token![->]) {
        return Err(error_at_next(
            input,
            format!(
                "{what} binds its result so it is always handled: write `{what} -> name => ...`"
            ),
        ));
    }
    input.parse::<Token![->]>()?;
    pattern(input)
}

/// The pattern after `->`: everything up to the top-level `=>`.
fn pattern(input: ParseStream<'_>) -> syn::Result<Pat> {
    let mut tokens = proc_macro2::TokenStream::new();
    let mut last = input.span();
    while !input.is_empty() && !input.peek(Token![=>]) {
        if input.peek(Token![,]) && input.peek2(Token![if]) {
            let error = input.error(
                "select! arms take no `, if` condition (tokio's way to leave an arm out): give \
                 the arm a future that never completes when it should not run, e.g. \
                 `async { if ready { fut.await } else { std::future::pending().await } } -> x => ...`",
            );
            return Err(error);
        }
        let token: proc_macro2::TokenTree = input.parse()?;
        last = token.span();
        tokens.extend([token]);
    }
    if input.is_empty() {
        return Err(syn::Error::new(
            last,
            format!("expected `=>` and the arm's body after the pattern; valid arms: {ARMS}"),
        ));
    }
    if tokens.is_empty() {
        return Err(input.error("expected a pattern after `->`, e.g. `-> msg`"));
    }
    if let Some(colon) = type_ascription(&tokens) {
        return Err(syn::Error::new(
            colon,
            "a select! pattern takes no type: the arm gives it (a `recv` arm binds \
             `Result<T, RecvError>`, a `send` arm `Result<(), SendError<T>>`, a future arm the \
             future's output); to name it, write `let msg: Type = msg;` in the arm's body",
        ));
    }
    // An or-pattern (`Ok(v) | Err(v)`) is one pattern, as in a `match` arm.
    Pat::parse_multi_with_leading_vert.parse2(tokens)
}

/// The `:` of `pattern: Type`, if the pattern has one at its top level (not a path's `::`).
fn type_ascription(tokens: &proc_macro2::TokenStream) -> Option<proc_macro2::Span> {
    use proc_macro2::{Spacing, TokenTree};
    let mut after_joint_colon = false;
    for token in tokens.clone() {
        let TokenTree::Punct(punct) = &token else {
            after_joint_colon = false;
            continue;
        };
        let colon = punct.as_char() == ':';
        if colon && punct.spacing() == Spacing::Alone && !after_joint_colon {
            return Some(punct.span());
        }
        after_joint_colon = colon && punct.spacing() == Spacing::Joint;
    }
    None
}

fn no_binding(input: ParseStream<'_>, head: &Expr, what: &str) -> syn::Result<()> {
    if input.peek(Token![->]) {
        let arrow: Token![->] = input.parse()?;
        return Err(syn::Error::new(
            arrow.span().join(head.span()).unwrap_or_else(|| arrow.span()),
            format!("`{what}` binds nothing: remove the `-> ...`"),
        ));
    }
    Ok(())
}

impl Parse for Arm {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // The head ends at a top-level `->` or `=>`. Collect it first: syn's expression parser
        // would read the `-` of `->` as a subtraction. A `->` inside a turbofish's angle brackets
        // (`ready::<fn() -> u8>(f)`) is the head's own, not the arrow to the pattern.
        let mut tokens = proc_macro2::TokenStream::new();
        let mut angles = 0usize;
        while !input.is_empty() && !input.peek(Token![=>]) {
            if input.peek(Token![->]) {
                if angles == 0 || syn::parse2::<Expr>(tokens.clone()).is_ok() {
                    break;
                }
                let arrow: Token![->] = input.parse()?;
                quote::ToTokens::to_tokens(&arrow, &mut tokens);
                continue;
            }
            let token = input.parse::<proc_macro2::TokenTree>()?;
            if let proc_macro2::TokenTree::Punct(punct) = &token {
                match punct.as_char() {
                    '<' => angles += 1,
                    '>' => angles = angles.saturating_sub(1),
                    _ => {}
                }
            }
            tokens.extend([token]);
        }
        if tokens.is_empty() {
            return Err(input.error(format!("expected a select! arm; valid arms: {ARMS}")));
        }
        if let Some(proc_macro2::TokenTree::Ident(word)) = tokens.clone().into_iter().next() {
            if word == "else" {
                return Err(syn::Error::new(
                    word.span(),
                    "select! has no `else` arm (tokio's, for when every arm is disabled): klaw's \
                     arms are never disabled. `default => ...` runs when no arm is ready at once; \
                     a `recv` arm gets `Err(RecvError::Closed)` when its channel is closed",
                ));
            }
        }
        let head: Expr = syn::parse2(tokens)?;
        if let Expr::Assign(assign) = &head {
            return Err(syn::Error::new_spanned(
                assign,
                format!(
                    "select! binds an arm's output after an arrow: write `{} -> {} => ...`, not \
                     tokio's `pattern = future`",
                    quote::ToTokens::to_token_stream(&assign.right),
                    quote::ToTokens::to_token_stream(&assign.left),
                ),
            ));
        }
        let head_tokens = quote::ToTokens::to_token_stream(&head);
        let kind = if let Some((name, call)) = keyword(&head) {
            let args = args(call);
            match (name.as_str(), args.as_slice()) {
                ("recv", [receiver]) => ArmKind::Recv {
                    receiver: receiver.clone(),
                    binding: binding(input, "recv(rx)")?,
                },
                ("recv", _) => {
                    return Err(syn::Error::new_spanned(
                        &call.args,
                        "`recv` takes one receiver: `recv(rx) -> msg => ...`",
                    ));
                }
                ("send", [sender, value]) => ArmKind::Send {
                    sender: sender.clone(),
                    value: value.clone(),
                    binding: binding(input, "send(tx, value)")?,
                },
                ("send", _) => {
                    return Err(syn::Error::new_spanned(
                        call,
                        "`send` takes a sender and the value to send: `send(tx, value) -> res => ...`",
                    ));
                }
                ("after", [duration]) => {
                    no_binding(input, &head, "after(..)")?;
                    ArmKind::After(duration.clone())
                }
                ("at", [deadline]) => {
                    no_binding(input, &head, "at(..)")?;
                    ArmKind::At(deadline.clone())
                }
                (other, _) => {
                    return Err(syn::Error::new_spanned(
                        call,
                        format!("`{other}` takes one argument: `{other}(...)`"),
                    ));
                }
            }
        } else if is_default(&head) {
            no_binding(input, &head, "default")?;
            ArmKind::Default
        } else if input.peek(Token![->]) {
            input.parse::<Token![->]>()?;
            ArmKind::Future { future: head, binding: pattern(input)? }
        } else {
            return Err(syn::Error::new_spanned(
                &head,
                format!(
                    "unknown select! arm: a future arm binds its output with `-> pattern`; valid arms: {ARMS}"
                ),
            ));
        };
        if !input.peek(Token![=>]) {
            return Err(error_at_next(
                input,
                format!("expected `=>` and the arm's body; valid arms: {ARMS}"),
            ));
        }
        input.parse::<Token![=>]>()?;
        // As in a `match` arm: a block body ends at its `}`, so the next arm may begin with
        // `&`, `*`, `(`, `-`... without a comma between them.
        let body = Expr::parse_with_earlier_boundary_rule(input)?;
        Ok(Arm { kind, head: head_tokens, body })
    }
}

/// Skips the rest of a bad arm: everything up to and including the next top-level `,`.
fn skip_past_comma(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() {
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            break;
        }
        input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// Skips a bad arm from its first token: its head up to the top-level `=>` (past a tokio-style
/// `, if cond`, and a comma between angle brackets), then its body as an arm's body parses (a
/// block ends at its `}`), then the comma after it, if any. The arm after a bad one with a block
/// body and no comma is kept, where a skip to the next comma would swallow it, with its errors
/// and its code.
fn skip_bad_arm(input: ParseStream<'_>) -> syn::Result<()> {
    // Inside `<...>` (a type written in the pattern, `Result<u8, E>`), a comma ends nothing.
    let mut angles = 0usize;
    while !input.is_empty() && !input.peek(Token![=>]) {
        if input.peek(Token![,]) && !input.peek2(Token![if]) && angles == 0 {
            return skip_past_comma(input); // no `=>`: the arm ends at its comma
        }
        if input.peek(Token![->]) {
            input.parse::<Token![->]>()?;
            continue;
        }
        if let proc_macro2::TokenTree::Punct(punct) = input.parse::<proc_macro2::TokenTree>()? {
            match punct.as_char() {
                '<' => angles += 1,
                '>' => angles = angles.saturating_sub(1),
                _ => {}
            }
        }
    }
    if input.is_empty() {
        return Ok(());
    }
    input.parse::<Token![=>]>()?;
    let fork = input.fork();
    if Expr::parse_with_earlier_boundary_rule(&fork).is_ok() {
        input.advance_to(&fork);
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        return Ok(());
    }
    skip_past_comma(input)
}

fn is_block_like(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Block(_)
            | Expr::Const(_)
            | Expr::If(_)
            | Expr::Match(_)
            | Expr::Loop(_)
            | Expr::While(_)
            | Expr::ForLoop(_)
            | Expr::Unsafe(_)
    )
}

impl Parse for ParsedSelect {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let span = input.span();
        let mut biased = false;
        if input.peek(syn::Ident) && input.peek2(Token![;]) {
            let fork = input.fork();
            let ident: syn::Ident = fork.parse()?;
            if ident == "biased" {
                input.parse::<syn::Ident>()?;
                input.parse::<Token![;]>()?;
                biased = true;
            }
        }
        let mut arms = Vec::new();
        let mut errors = Errors::default();
        while !input.is_empty() {
            if input.peek(syn::Ident) && input.peek2(Token![;]) {
                let fork = input.fork();
                let ident: syn::Ident = fork.parse()?;
                if ident == "biased" {
                    let semi: Token![;] = fork.parse()?;
                    input.advance_to(&fork);
                    let span = ident.span().join(semi.span).unwrap_or_else(|| ident.span());
                    errors.push(syn::Error::new(
                        span,
                        "`biased;` goes first, before every arm: it makes select! try all its \
                         arms from top to bottom",
                    ));
                    continue;
                }
            }
            // Parsed on a fork: a bad arm is skipped from its start, whatever the parse took.
            let fork = input.fork();
            let arm = match fork.parse::<Arm>() {
                Ok(arm) => {
                    input.advance_to(&fork);
                    arm
                }
                Err(error) => {
                    errors.push(error);
                    skip_bad_arm(input)?;
                    continue;
                }
            };
            let needs_comma = !is_block_like(&arm.body);
            arms.push(arm);
            if input.is_empty() {
                break;
            }
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            } else if needs_comma {
                errors.push(input.error("expected `,` after an arm whose body is not a block"));
                skip_past_comma(input)?;
            }
        }
        Ok(ParsedSelect { biased, arms, span, errors })
    }
}
