//! klaw-rt's top-level modules depend on each other in one direction only: no cycle, so each
//! concept can be read (and changed) with only the ones below it in mind.
//!
//! The check reads every `crate::<module>` path in the code (comments and strings aside) and
//! fails on a cycle, naming it. Items are imported by their module's path, never through the
//! crate root (`crate::Name`), which would hide the edge.
//!
//! `cargo test -p klaw-rt --test module_graph` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The code of a Rust file without its comments and string literals.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The top-level module a file belongs to (`lib.rs` belongs to none).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?.to_owned();
    (first != "lib.rs").then(|| first.trim_end_matches(".rs").to_owned())
}

/// Every `crate::x` in `code`, and every `crate::X` (an item through the root).
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro, or part of a longer name
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        paths.push(if name.is_empty() { "{".to_owned() } else { name });
    }
    paths
}

fn graph() -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut through_root = Vec::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else { continue };
        edges.entry(module.clone()).or_default();
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for path in crate_paths(&code) {
            if path == "{" || path.starts_with(char::is_uppercase) {
                through_root.push(format!("{}: crate::{path}", file.display()));
            } else if path != module {
                edges.entry(module.clone()).or_default().insert(path);
            }
        }
    }
    (edges, through_root)
}

/// A cycle through `start`, if there is one.
fn cycle_from(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        edges: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in edges.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(edges, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(edges, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_top_level_modules_form_no_cycle() {
    let (edges, _) = graph();
    #[allow(clippy::print_stdout, reason = "the graph is the test's report")]
    for (module, uses) in &edges {
        println!("{module} -> {}", uses.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    let cycles: Vec<String> = edges
        .keys()
        .filter_map(|module| cycle_from(&edges, module))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(
        cycles.is_empty(),
        "klaw-rt's modules depend on each other in a circle:\n{}",
        cycles.join("\n")
    );
    assert!(edges.len() >= 8, "the module list looks wrong: {edges:?}");
}

#[test]
fn items_are_imported_by_their_module_path() {
    let (_, through_root) = graph();
    assert!(
        through_root.is_empty(),
        "import these by their module's path (`crate::module::Item`), so the graph sees them:\n{}",
        through_root.join("\n")
    );
}

#[test]
fn the_check_sees_a_cycle_and_ignores_comments() {
    let code = code_only("use crate::a::X; // crate::b\nlet s = \"crate::c\"; /* crate::d */");
    assert_eq!(crate_paths(&code), ["a"]);
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(cycle_from(&edges, "a"), Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()]));
}
