//! Validation: the options' values and the closure's shape, every mistake at once.

use proc_macro2::TokenStream;
use syn::{Expr, ExprClosure, ExprLit, Ident, Lit, LitStr, Pat, ReturnType, Type};

use crate::diagnostic::Errors;
use crate::duration::duration_value;
use crate::options::{OptionArg, flag_value, known_options, str_value};
use crate::scope::parse::ParsedScope;
use crate::scope::{FORMS, MACRO, OPTIONS};

/// A valid scope: what expansion needs.
pub(crate) struct ScopePlan {
    pub(crate) name: Option<LitStr>,
    pub(crate) timeout: Option<TokenStream>,
    pub(crate) deadline: Option<Expr>,
    pub(crate) supervisor: bool,
    /// `limit = n`: a literal checked here, or any `usize` expression (0 panics at run time).
    pub(crate) limit: Option<Expr>,
    pub(crate) moves: bool,
    pub(crate) param: Ident,
    /// The body's own result type, from `|s| -> R { .. }`; `Result<_, BoxError>` without it.
    pub(crate) result: Option<Type>,
    pub(crate) body: Expr,
}

/// A plan, with defaults where something was wrong, and whether the body can still be expanded
/// with it (the errors go to `errors`).
pub(crate) struct Checked {
    pub(crate) plan: ScopePlan,
    pub(crate) body_usable: bool,
}

pub(crate) fn validate(scope: ParsedScope, errors: &mut Errors) -> Checked {
    let mut body_usable = true;
    let ExprClosure { asyncness, capture, inputs, output, body, .. } = &scope.closure;
    let mut plan = ScopePlan {
        name: None,
        timeout: None,
        deadline: None,
        supervisor: false,
        limit: None,
        moves: capture.is_some(),
        param: Ident::new("s", proc_macro2::Span::call_site()),
        result: None,
        body: (**body).clone(),
    };
    for (arg, name) in known_options(&scope.options, OPTIONS, MACRO, errors) {
        let checked = match name {
            "name" => str_value(arg).map(|name| plan.name = Some(name)),
            "timeout" => duration_value(arg).map(|timeout| plan.timeout = Some(timeout)),
            "deadline" => match &arg.value {
                Some(deadline) => {
                    plan.deadline = Some(deadline.clone());
                    Ok(())
                }
                None => Err(syn::Error::new_spanned(
                    &arg.key,
                    "`deadline` needs a `std::time::Instant`, e.g. `deadline = start + limit`",
                )),
            },
            "supervisor" => flag_value(arg).map(|()| plan.supervisor = true),
            "limit" => limit_value(arg).map(|limit| plan.limit = Some(limit)),
            other => unreachable!("option `{other}` is in OPTIONS but not validated"),
        };
        if let Err(error) = checked {
            errors.push(error);
        }
    }
    if let Some(asyncness) = asyncness {
        errors.push(syn::Error::new_spanned(
            asyncness,
            format!("remove `async`: {MACRO} runs its body as async code already; write {FORMS}"),
        ));
    }
    if let ReturnType::Type(_, ty) = output {
        plan.result = Some((**ty).clone());
    }
    match inputs.len() {
        1 => match &inputs[0] {
            Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                plan.param = ident.ident.clone();
            }
            Pat::Wild(wild) => plan.param = Ident::new("_", wild.underscore_token.span),
            other => {
                body_usable = false;
                errors.push(syn::Error::new_spanned(
                    other,
                    format!(
                        "the closure's parameter is the scope, a plain name such as `s`; write \
                         {FORMS}"
                    ),
                ));
            }
        },
        0 => errors.push(syn::Error::new_spanned(
            scope.closure.inputs_begin,
            format!("the closure takes the scope as its one parameter; write {FORMS}"),
        )),
        _ => {
            body_usable = false;
            errors.push(syn::Error::new_spanned(
                inputs,
                format!("the closure takes exactly one parameter, the scope; write {FORMS}"),
            ));
        }
    }
    Checked { plan, body_usable }
}

/// `limit = n`: how many children may run at once. A literal must be a whole number of at least
/// 1; anything else (a variable, a call) is taken as a `usize` expression.
fn limit_value(arg: &OptionArg) -> syn::Result<Expr> {
    let expected = "`limit` takes how many children may run at once, a whole number of at least \
                    1 (e.g. `limit = 8`) or a `usize` expression (e.g. `limit = workers * 2`)";
    let Some(value) = &arg.value else {
        return Err(syn::Error::new_spanned(&arg.key, format!("{expected}; the value is missing")));
    };
    match value {
        Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => {
            let suffix_ok = int.suffix().is_empty() || int.suffix() == "usize";
            match int.base10_parse::<usize>() {
                Ok(n) if n >= 1 && suffix_ok => Ok(value.clone()),
                Ok(0) => Err(syn::Error::new_spanned(
                    int,
                    format!("a limit of 0 would never run a child; {expected}"),
                )),
                _ => Err(syn::Error::new_spanned(int, expected)),
            }
        }
        Expr::Lit(_) => Err(syn::Error::new_spanned(value, expected)),
        _ => Ok(value.clone()),
    }
}
