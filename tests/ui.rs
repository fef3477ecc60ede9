//! Compile-fail and pass cases for the macros' diagnostics (`ui-tests/`).
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`, then review.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui-tests/fail/*.rs");
    cases.pass("ui-tests/pass/*.rs");
}

/// The book's diagnostics gallery shows every compile-fail case: adding a case without listing
/// it there fails here.
#[test]
fn the_diagnostics_gallery_lists_every_case() {
    let gallery = std::fs::read_to_string("book/src/diagnostics.md").unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir("ui-tests/fail").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(case) = name.strip_suffix(".rs") {
            if !gallery.contains(&format!("ui-tests/fail/{case}.stderr")) {
                missing.push(case.to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "add these to book/src/diagnostics.md: {missing:?}");
}
