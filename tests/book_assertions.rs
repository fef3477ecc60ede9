//! Every assertion in the book runs. The snippets are doc-tests (`src/lib.rs`, `mod book`), but
//! a doc-test passes as well when an assertion is never reached: one inside a scope body that
//! was cancelled first, say. So each snippet with assertions starts (inside its `main`) with two
//! hidden lines:
//!
//! ```text
//! # use klaw::__private::book::{assert, assert_eq, assert_ne};
//! # let _asserts = klaw::__private::book::Expect::new(module_path!(), n);
//! ```
//!
//! The first makes every assertion record that it ran; the second fails the snippet, when it
//! ends, unless all `n` assertion sites did. This test checks that every snippet with assertions
//! has both lines, and that `n` is the number of assertions it contains.

use std::path::Path;

/// A fenced Rust block of a chapter: where it starts, and its lines.
struct Snippet {
    chapter: String,
    line: usize,
    body: Vec<String>,
}

/// The blocks rustdoc runs: ```rust (with no `ignore`, `no_run`, `compile_fail`).
fn runnable_snippets(chapter: &Path) -> Vec<Snippet> {
    let text = std::fs::read_to_string(chapter).unwrap();
    let mut snippets = Vec::new();
    let mut current: Option<Snippet> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            if let Some(snippet) = current.take() {
                snippets.push(snippet);
                continue;
            }
            let flags: Vec<&str> = info.split(',').map(str::trim).collect();
            let rust = flags.first() == Some(&"rust");
            let runs = !flags.iter().any(|f| matches!(*f, "ignore" | "no_run" | "compile_fail"));
            current = Some(Snippet {
                chapter: chapter.display().to_string(),
                line: index + 1,
                body: Vec::new(),
            });
            if !(rust && runs) {
                // Still consume the block, but do not keep it.
                current.as_mut().unwrap().line = 0;
            }
            continue;
        }
        if let Some(snippet) = current.as_mut() {
            snippet.body.push(line.to_owned());
        }
    }
    snippets.retain(|snippet| snippet.line != 0);
    snippets
}

/// Occurrences of `assert!(`, `assert_eq!(` and `assert_ne!(` (not `debug_assert…`).
fn assertions(line: &str) -> usize {
    let mut count = 0;
    for name in ["assert!(", "assert_eq!(", "assert_ne!("] {
        let mut rest = line;
        while let Some(at) = rest.find(name) {
            let before = &rest[..at];
            let is_word_start =
                !before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
            if is_word_start {
                count += 1;
            }
            rest = &rest[at + name.len()..];
        }
    }
    count
}

const USE_LINE: &str = "# use klaw::__private::book::{assert, assert_eq, assert_ne};";

fn declared(line: &str) -> Option<usize> {
    let inner = line
        .trim()
        .strip_prefix('#')?
        .trim()
        .strip_prefix("let _asserts = klaw::__private::book::Expect::new(module_path!(), ")?
        .strip_suffix(");")?;
    Some(inner.parse().expect("the count is a number"))
}

#[test]
fn every_book_snippet_with_assertions_counts_them() {
    let chapters = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"));
    let mut problems = Vec::new();
    let mut checked = 0;
    for chapter in chapters {
        for snippet in runnable_snippets(&chapter) {
            let found: usize = snippet.body.iter().map(|line| assertions(line)).sum();
            let declarations: Vec<usize> =
                snippet.body.iter().filter_map(|line| declared(line)).collect();
            let place = format!("{}:{}", snippet.chapter, snippet.line);
            let counts = snippet.body.iter().any(|line| line.trim() == USE_LINE);
            match (found, declarations.as_slice()) {
                (0, []) => {}
                (_, [_]) if !counts => problems.push(format!("{place}: no `{USE_LINE}`")),
                (n, [declared]) if *declared == n => checked += 1,
                (n, []) => problems.push(format!("{place}: {n} assertions, not counted")),
                (n, declared) => {
                    problems.push(format!("{place}: {n} assertions, but it declares {declared:?}"))
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "snippets whose assertions are not all counted:\n{}",
        problems.join("\n")
    );
    assert!(checked >= 20, "only {checked} snippets were checked: did the book move?");
}

#[test]
fn the_counter_catches_an_assertion_that_never_runs() {
    // What a doc-test would do: two assertion sites, one of them never reached.
    let result = std::panic::catch_unwind(|| {
        use klaw::__private::book::{assert, assert_eq};
        let _asserts = klaw::__private::book::Expect::new(module_path!(), 2);
        assert_eq!(1 + 1, 2);
        if false {
            assert!(false, "never reached");
        }
    });
    let message = result.unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("only 1 of this snippet's 2 assertions ran"), "{message}");
}
