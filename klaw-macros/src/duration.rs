//! Duration literals in options: `"250ms"`, `"5s"`, `"1m30s"`, checked at compile time.

use proc_macro2::TokenStream;
use quote::quote_spanned;
use syn::{Expr, ExprLit, Lit, LitStr};

use crate::options::OptionArg;

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

fn help(key: &str) -> String {
    format!(
        "write `{key} = \"<number><unit>\"` with a unit among ns, us, ms, s, m, h \
         (e.g. `{key} = \"250ms\"`, `\"5s\"`, `\"1m30s\"`), or pass a `std::time::Duration` expression"
    )
}

/// Nanoseconds in a duration literal, or what is wrong with it.
fn parse(text: &str) -> Result<u128, String> {
    if text.trim().is_empty() {
        return Err("the duration is empty".into());
    }
    let mut total: u128 = 0;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{rest}` does not start with a whole number"));
        }
        let number: u128 = rest[..digits].parse().map_err(|_| format!("`{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let Some((_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(if unit.is_empty() {
                format!("`{text}` has no unit")
            } else {
                format!("`{unit}` is not a unit")
            });
        };
        total = number
            .checked_mul(*scale)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| format!("`{text}` is too large"))?;
        rest = &rest[unit_len..];
    }
    if total == 0 {
        return Err("a zero duration would cancel at once".into());
    }
    if total > u128::from(u64::MAX) {
        return Err(format!("`{text}` is too large"));
    }
    Ok(total)
}

/// `key = "5s"` (checked now) or `key = <Duration expression>` (checked by the type system):
/// tokens that evaluate to a `core::time::Duration`.
pub(crate) fn duration_value(arg: &OptionArg) -> syn::Result<TokenStream> {
    let key = arg.key.to_string();
    let Some(value) = &arg.value else {
        return Err(syn::Error::new_spanned(
            &arg.key,
            format!("`{key}` needs a value; {}", help(&key)),
        ));
    };
    match value {
        Expr::Lit(ExprLit { lit: Lit::Str(literal), .. }) => literal_duration(&key, literal),
        Expr::Lit(other) => Err(syn::Error::new_spanned(other, help(&key))),
        expression => Ok(quote_spanned! {syn::spanned::Spanned::span(expression)=>
            ::core::convert::identity::<::core::time::Duration>(#expression)
        }),
    }
}

fn literal_duration(key: &str, literal: &LitStr) -> syn::Result<TokenStream> {
    match parse(&literal.value()) {
        Ok(nanos) => {
            let nanos = u64::try_from(nanos).expect("checked against u64::MAX");
            Ok(quote_spanned! {literal.span()=> ::core::time::Duration::from_nanos(#nanos) })
        }
        Err(problem) => Err(syn::Error::new_spanned(
            literal,
            format!("bad duration for `{key}`: {problem}; {}", help(key)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepts_units_and_compounds() {
        assert_eq!(parse("250ms"), Ok(250_000_000));
        assert_eq!(parse("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse("7ns"), Ok(7));
        assert_eq!(parse("2h"), Ok(7_200_000_000_000));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert!(parse("").is_err());
        assert!(parse("5").unwrap_err().contains("no unit"));
        assert!(parse("5 seconds").unwrap_err().contains("not a unit"));
        assert!(parse("ms").unwrap_err().contains("whole number"));
        assert!(parse("1.5s").is_err());
        assert!(parse("0s").unwrap_err().contains("zero"));
        assert!(parse("99999999999999999999h").unwrap_err().contains("too large"));
    }
}
