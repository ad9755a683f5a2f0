//! rust-analyzer over a real cargo project written to a temporary directory: a library crate
//! (what cells compile as) with a path dependency on a second crate, loaded with the toolchain's
//! sysroot. Nothing needs the network: the only dependency is a path.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use tessera_analysis::{Analysis, AnalysisError, Completion, Completions};

const DEPENDENCY: &str = r#"//! The dependency.

/// Returns the largest of `values`, or `None` when it is empty.
///
/// Reads <em onclick="steal()">every</em> value <img src=x onerror=steal()>once.
pub fn largest(values: Vec<u64>) -> Option<u64> {
    values.into_iter().max()
}

/// Not documented on purpose below.
pub mod shapes {
    pub struct Square {
        pub side: u32,
    }
}
"#;

fn write_project(dir: &Path) {
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "cells/Cargo.toml",
        r#"[package]
name = "cells"
version = "0.1.0"
edition = "2024"

[lib]
path = "src/lib.rs"

[dependencies]
dep = { path = "../dep" }

[workspace]
"#,
    );
    write("cells/src/lib.rs", "pub fn cell() {}\n");
    write(
        "dep/Cargo.toml",
        "[package]\nname = \"dep\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    write("dep/src/lib.rs", DEPENDENCY);
}

/// One loaded project shared by the tests (loading takes seconds); each test sets its own
/// source while it holds the lock.
fn analysis() -> MutexGuard<'static, Analysis> {
    static ANALYSIS: OnceLock<Mutex<Analysis>> = OnceLock::new();
    let analysis = ANALYSIS.get_or_init(|| {
        // The project is only read by `load`: the directory can go once it is loaded.
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path());
        let analysis = Analysis::load(&dir.path().join("cells")).unwrap();
        Mutex::new(analysis)
    });
    analysis
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `source` without its `$0` marker, and the marker's byte offset.
fn at(source: &str) -> (String, usize) {
    let offset = source
        .find("$0")
        .expect("the source marks the cursor with $0");
    (source.replacen("$0", "", 1), offset)
}

fn complete(source: &str) -> (Completions, usize) {
    let (source, offset) = at(source);
    let mut analysis = analysis();
    analysis.set_source(source);
    (analysis.completions(offset).unwrap(), offset)
}

fn item<'a>(completions: &'a Completions, name: &str) -> &'a Completion {
    completions
        .items
        .iter()
        .find(|item| item.name == name)
        .unwrap_or_else(|| panic!("no completion `{name}` in {:#?}", completions.items))
}

#[test]
fn methods_of_a_typed_variable() {
    let (completions, offset) =
        complete("pub fn cell() {\n    let v: Vec<u64> = Vec::new();\n    v.$0\n}\n");
    assert_eq!((completions.start, completions.end), (offset, offset));
    let len = item(&completions, "len");
    assert_eq!(len.kind, "method");
    let detail = len.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("usize"), "len's detail: {detail}");
    assert_eq!(item(&completions, "push").kind, "method");
    let mut names: Vec<&str> = completions
        .items
        .iter()
        .map(|item| item.name.as_str())
        .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate names");
    // Names only: no call parentheses, argument placeholders or snippet markers.
    for item in &completions.items {
        assert!(
            !item.name.contains(['(', '$', '{', ' ']),
            "not a bare name: {item:?}"
        );
    }
}

#[test]
fn a_path_into_the_dependency() {
    let (completions, offset) = complete("pub fn cell() {\n    dep::$0\n}\n");
    assert_eq!((completions.start, completions.end), (offset, offset));
    let largest = item(&completions, "largest");
    assert_eq!(largest.kind, "function");
    assert_eq!(
        largest.detail.as_deref(),
        Some("pub fn largest(values: Vec<u64>) -> Option<u64>")
    );
    assert_eq!(item(&completions, "shapes").kind, "module");
}

#[test]
fn a_partial_name_is_replaced_exactly() {
    let (completions, offset) =
        complete("pub fn cell() {\n    let mut v: Vec<u64> = Vec::new();\n    v.pus$0\n}\n");
    assert_eq!((completions.start, completions.end), (offset - 3, offset));
    assert_eq!(item(&completions, "push").kind, "method");
    assert!(
        completions
            .items
            .iter()
            .all(|item| item.name.starts_with("pus")),
        "only names starting with what was typed: {:#?}",
        completions.items
    );
}

#[test]
fn a_macro_completes_as_its_name_and_bang() {
    let (completions, offset) = complete("pub fn cell() {\n    let v = ve$0\n}\n");
    assert_eq!((completions.start, completions.end), (offset - 2, offset));
    assert_eq!(item(&completions, "vec!").kind, "macro");
}

#[test]
fn hover_on_a_documented_function_of_the_dependency() {
    let (source, offset) = at("pub fn cell() {\n    let top = dep::lar$0gest(vec![1, 2]);\n}\n");
    let mut analysis = analysis();
    analysis.set_source(source);
    let hover = analysis
        .hover(offset)
        .unwrap()
        .expect("a hover for dep::largest");

    let signature = "pub fn largest(values: Vec<u64>) -> Option<u64>";
    assert!(hover.text.contains(signature), "text: {}", hover.text);
    assert!(
        hover
            .text
            .contains("Returns the largest of values, or None when it is empty."),
        "text: {}",
        hover.text
    );
    let signature_at = hover.text.find(signature).unwrap();
    assert!(
        signature_at < hover.text.find("Returns").unwrap(),
        "signature first: {}",
        hover.text
    );
    assert!(
        !hover.text.contains("```"),
        "Markdown left in the text: {}",
        hover.text
    );

    assert!(
        hover
            .html
            .contains("pub fn largest(values: Vec&lt;u64&gt;) -&gt; Option&lt;u64&gt;"),
        "html: {}",
        hover.html
    );
    let pre = hover.html.find("<pre>").expect("the signature in <pre>");
    let paragraph = hover
        .html
        .find("<p>Returns the largest of <code>values</code>")
        .unwrap_or_else(|| panic!("the docs as a paragraph: {}", hover.html));
    assert!(pre < paragraph, "html: {}", hover.html);
    assert!(
        hover.text.contains("Reads every value once."),
        "text: {}",
        hover.text
    );
    // The docs' own HTML keeps its formatting and loses anything active.
    assert!(
        hover.html.contains("<em>every</em>"),
        "html: {}",
        hover.html
    );
    assert!(!hover.html.contains("steal"), "html: {}", hover.html);
}

#[test]
fn hover_on_a_variable_gives_its_type() {
    let (source, offset) =
        at("pub fn cell() {\n    let items: Vec<u64> = Vec::new();\n    it$0ems.len();\n}\n");
    let mut analysis = analysis();
    analysis.set_source(source);
    let hover = analysis
        .hover(offset)
        .unwrap()
        .expect("a hover for a local");
    assert!(
        hover.text.contains("let items: Vec<u64>"),
        "text: {}",
        hover.text
    );
}

#[test]
fn hover_on_nothing_is_none() {
    let (source, whitespace) = at("pub fn cell() {\n  $0  let x = nosuchthing;\n}\n");
    let unknown = source.find("nosuch").unwrap() + 2;
    let mut analysis = analysis();
    analysis.set_source(source);
    assert_eq!(analysis.hover(whitespace).unwrap(), None);
    assert_eq!(analysis.hover(unknown).unwrap(), None);
}

#[test]
fn an_offset_outside_the_source_is_an_error() {
    let mut analysis = analysis();
    let source = "pub fn cell() { let é = 1; }";
    analysis.set_source(source.to_string());
    let inside_e_acute = "pub fn cell() { let é".len() - 1;
    for offset in [inside_e_acute, 1000] {
        match analysis.completions(offset) {
            Err(AnalysisError::Offset {
                offset: reported,
                len,
            }) => {
                assert_eq!((reported, len), (offset, source.len()));
            }
            other => panic!("offset {offset}: {other:?}"),
        }
        assert!(matches!(
            analysis.hover(offset),
            Err(AnalysisError::Offset { .. })
        ));
    }
}

#[test]
fn a_missing_project_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-project");
    let error = Analysis::load(&missing).err().expect("no project there");
    assert!(matches!(error, AnalysisError::Load { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("Cargo.toml"), "{message}");
}

#[test]
fn a_broken_manifest_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package\nname = ").unwrap();
    let error = Analysis::load(dir.path()).err().expect("a broken manifest");
    assert!(matches!(error, AnalysisError::Load { .. }), "{error:?}");
    // Cargo's own complaint is part of the message.
    let message = error.to_string();
    assert!(message.contains("cargo metadata"), "{message}");
    assert!(message.contains("Cargo.toml:1"), "{message}");
}

#[test]
fn analysis_can_move_to_a_background_thread() {
    fn send<T: Send>() {}
    send::<Analysis>();
}
