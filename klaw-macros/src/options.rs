//! `key = value, ...` option lists, shared by every klaw attribute and macro.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitInt, Token};

use crate::diagnostic::Errors;

/// One option as written: `key = value`, or a bare `key` (a flag).
pub(crate) struct OptionArg {
    pub(crate) key: Ident,
    pub(crate) value: Option<Expr>,
}

/// A comma-separated list of options.
#[derive(Default)]
pub(crate) struct OptionList(pub(crate) Vec<OptionArg>);

impl Parse for OptionArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(OptionArg { key, value })
    }
}

impl Parse for OptionList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let list = Punctuated::<OptionArg, Token![,]>::parse_terminated(input)?;
        Ok(OptionList(list.into_iter().collect()))
    }
}

/// What an option accepts, for validation and for the message that lists the valid forms.
pub(crate) struct OptionSpec {
    pub(crate) name: &'static str,
    /// How the option is written, e.g. `workers = N`.
    pub(crate) form: &'static str,
}

/// "`workers = N`, `max_blocking_threads = N`": the valid forms, for error messages.
pub(crate) fn valid_forms(specs: &[OptionSpec]) -> String {
    specs.iter().map(|spec| format!("`{}`", spec.form)).collect::<Vec<_>>().join(", ")
}

/// Checks names and duplicates; returns the options that are known, in order.
pub(crate) fn known_options<'a>(
    list: &'a OptionList,
    specs: &[OptionSpec],
    attribute: &str,
    errors: &mut Errors,
) -> Vec<(&'a OptionArg, &'static str)> {
    let mut seen: Vec<&'static str> = Vec::new();
    let mut known = Vec::new();
    for arg in &list.0 {
        let key = arg.key.to_string();
        let Some(spec) = specs.iter().find(|spec| spec.name == key) else {
            errors.push(syn::Error::new_spanned(
                &arg.key,
                format!(
                    "unknown option `{key}` for `{attribute}`; valid options are: {}",
                    valid_forms(specs)
                ),
            ));
            continue;
        };
        if seen.contains(&spec.name) {
            errors.push(syn::Error::new_spanned(
                &arg.key,
                format!("option `{key}` is given more than once; keep one"),
            ));
            continue;
        }
        seen.push(spec.name);
        known.push((arg, spec.name));
    }
    known
}

/// The value of `key = N` as a whole number in `min..=max`.
pub(crate) fn int_value(arg: &OptionArg, min: usize, max: usize) -> syn::Result<usize> {
    let key = &arg.key;
    let expected = || format!("`{key}` takes a whole number from {min} to {max}, e.g. `{key} = 4`");
    let Some(value) = &arg.value else {
        return Err(syn::Error::new_spanned(key, format!("{}; the value is missing", expected())));
    };
    let Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) = value else {
        return Err(syn::Error::new_spanned(value, expected()));
    };
    let number = parse_int(int).filter(|n| (min..=max).contains(n));
    number.ok_or_else(|| syn::Error::new_spanned(int, expected()))
}

fn parse_int(int: &LitInt) -> Option<usize> {
    if !int.suffix().is_empty() && int.suffix() != "usize" {
        return None;
    }
    int.base10_parse().ok()
}

/// The value of `key = "text"`: a non-empty string literal.
pub(crate) fn str_value(arg: &OptionArg) -> syn::Result<syn::LitStr> {
    let key = &arg.key;
    let expected = || format!("`{key}` takes a non-empty string literal, e.g. `{key} = \"fetch\"`");
    match &arg.value {
        Some(Expr::Lit(ExprLit { lit: Lit::Str(text), .. })) if !text.value().is_empty() => {
            Ok(text.clone())
        }
        Some(other) => Err(syn::Error::new_spanned(other, expected())),
        None => Err(syn::Error::new_spanned(key, format!("{}; the value is missing", expected()))),
    }
}

/// A bare flag such as `supervisor`: it takes no value.
pub(crate) fn flag_value(arg: &OptionArg) -> syn::Result<()> {
    match &arg.value {
        None => Ok(()),
        Some(value) => Err(syn::Error::new_spanned(
            value,
            format!("`{}` is a flag and takes no value: write just `{}`", arg.key, arg.key),
        )),
    }
}
