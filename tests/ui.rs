//! Compile-fail and pass cases for the macros' diagnostics (`ui-tests/`).
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`, then review.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui-tests/fail/*.rs");
    cases.pass("ui-tests/pass/*.rs");
}
