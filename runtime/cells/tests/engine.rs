//! The engine end to end: real rustc, real cargo (for a small path dependency written here),
//! the real child binary.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use tessera_cells::{CellsError, ChildCommand, Engine, EngineConfig, Stream};

/// A dependency crate cells use: a function, and a trait results are shown with.
const HELPER: &str = r#"
pub fn answer() -> u64 { 42 }
pub trait Rich { fn mime_bundle(&self) -> Vec<(String, String)>; }
pub struct Table(pub Vec<u32>);
impl Rich for Table {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        vec![("text/plain".into(), format!("{} rows", self.0.len())),
             ("text/html".into(), format!("<table>{}</table>", self.0.len()))]
    }
}
"#;

/// One cache for every test: the dependency project is built once.
fn cache() -> &'static Path {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let helper = dir.path().join("helper");
            std::fs::create_dir_all(helper.join("src")).unwrap();
            std::fs::write(
                helper.join("Cargo.toml"),
                "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            )
            .unwrap();
            std::fs::write(helper.join("src/lib.rs"), HELPER).unwrap();
            dir
        })
        .path()
}

type Lines = Arc<Mutex<Vec<(Stream, String)>>>;

fn engine_in(cache_dir: &Path) -> (Engine, Lines) {
    let lines: Lines = Default::default();
    let sink_lines = lines.clone();
    let work = tempfile::tempdir().unwrap().keep();
    let engine = Engine::start(EngineConfig {
        toolchain: tessera_cells::Toolchain::find().expect("rustc runs"),
        cache_dir: cache_dir.to_path_buf(),
        work_dir: work,
        dependencies: vec![format!(
            "helper = {{ path = {:?} }}",
            cache().join("helper").display().to_string()
        )],
        rich_display_trait: Some("helper::Rich".into()),
        remote_markers: vec!["helper".into()],
        optimisation: tessera_cells::Optimisation::INTERACTIVE,
        child: ChildCommand {
            program: PathBuf::from(env!("CARGO_BIN_EXE_tessera-cell-child")),
            env: vec![],
        },
        sink: Arc::new(move |stream, line| sink_lines.lock().unwrap().push((stream, line.into()))),
        progress: Arc::new(|_| {}),
    })
    .expect("the engine starts");
    (engine, lines)
}

fn engine() -> (Engine, Lines) {
    engine_in(&cache().join("cache"))
}

/// The text/plain result of a cell that must run.
fn result(engine: &mut Engine, code: &str) -> String {
    let outcome = engine
        .execute(code)
        .unwrap_or_else(|e| panic!("`{code}` failed: {e}"));
    assert_eq!(outcome.panic, None, "{code}");
    outcome
        .bundle
        .iter()
        .find(|(mime, _)| mime == "text/plain")
        .map(|(_, text)| text.clone())
        .unwrap_or_default()
}

fn variables(engine: &Engine) -> Vec<(String, String)> {
    engine
        .variables()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

#[test]
fn variables_and_functions_live_from_cell_to_cell() {
    let (mut engine, _) = engine();
    assert_eq!(
        result(
            &mut engine,
            "let x = 40u64;\nlet names = vec![\"a\".to_string()];\nfn twice(n: u64) -> u64 { n * 2 }"
        ),
        ""
    );
    assert_eq!(
        variables(&engine),
        [
            (
                "names".to_string(),
                "std::vec::Vec<std::string::String>".to_string()
            ),
            ("x".to_string(), "u64".to_string()),
        ]
    );
    assert_eq!(result(&mut engine, "x + names.len() as u64 + 1"), "42");
    assert_eq!(result(&mut engine, "twice(helper::answer())"), "84");
    // Still there after being read.
    assert_eq!(result(&mut engine, "names"), "[\"a\"]");
}

#[test]
fn a_type_defined_in_a_cell_keeps_its_values_until_it_is_defined_again() {
    let (mut engine, _) = engine();
    result(
        &mut engine,
        "#[derive(Debug, Clone)]\nstruct Point { x: i32 }\nlet p = Point { x: 1 };",
    );
    assert_eq!(result(&mut engine, "p.x + 1"), "2");
    assert_eq!(result(&mut engine, "p.clone()"), "Point { x: 1 }");
    let outcome = engine
        .execute("#[derive(Debug)]\nstruct Point { x: i32, y: i32 }")
        .unwrap();
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("`p`") && n.contains("defined again")),
        "{:?}",
        outcome.notes
    );
    assert!(variables(&engine).is_empty());
    assert_eq!(
        result(&mut engine, "Point { x: 1, y: 2 }"),
        "Point { x: 1, y: 2 }"
    );
}

#[test]
fn a_compile_error_points_into_the_cell_and_loses_nothing() {
    let (mut engine, _) = engine();
    result(&mut engine, "let kept = 7;");
    let error = engine
        .execute("let a = 1;\nlet y: u32 = \"no\";")
        .unwrap_err();
    let CellsError::Compile { code, diagnostics } = &error else {
        panic!("expected a compile error, got {error}");
    };
    assert_eq!(diagnostics[0].message, "mismatched types");
    assert_eq!(diagnostics[0].line(code), Some(2));
    let text = error.to_string();
    assert!(text.contains("cell:2:"), "{text}");
    assert!(text.contains("let y: u32 = \"no\";"), "{text}");
    assert!(!text.contains("__tessera"), "{text}");
    assert_eq!(result(&mut engine, "kept"), "7");
}

#[test]
fn a_panic_is_reported_and_keeps_what_the_cell_did_not_move() {
    let (mut engine, _) = engine();
    result(&mut engine, "let mut n = 5;\nlet s = String::from(\"x\");");
    let outcome = engine
        .execute("n += 1;\nif n > 0 { panic!(\"boom {n}\") }")
        .unwrap();
    assert_eq!(outcome.panic.as_deref(), Some("boom 6"));
    assert_eq!(result(&mut engine, "n"), "6");
    assert_eq!(result(&mut engine, "s"), "\"x\"");
}

#[test]
fn a_moved_variable_leaves_the_session_and_its_new_owner_stays() {
    let (mut engine, _) = engine();
    result(&mut engine, "let s = String::from(\"moved\");");
    result(&mut engine, "let t = s;");
    let names: Vec<String> = variables(&engine).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["t"]);
    assert_eq!(result(&mut engine, "t"), "\"moved\"");
    let outcome = engine.execute("let v = vec![1];\nlet r = &v;").unwrap();
    assert!(
        outcome.notes.iter().any(|n| n.contains("`r` is not kept")),
        "{:?}",
        outcome.notes
    );
    assert_eq!(result(&mut engine, "v"), "[1]");
}

#[test]
fn output_arrives_before_the_cell_ends_even_without_a_newline() {
    let (mut engine, lines) = engine();
    result(
        &mut engine,
        "println!(\"hello\");\neprint!(\"no newline\");",
    );
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines.contains(&(Stream::Stdout, "hello".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(Stream::Stderr, "no newline".into())),
        "{lines:?}"
    );
}

#[test]
fn a_question_mark_returns_the_error_as_the_cells_outcome() {
    let (mut engine, _) = engine();
    let outcome = engine.execute("let n: u64 = \"x1\".parse()?;\nn").unwrap();
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("invalid digit")),
        "{outcome:?}"
    );
    assert!(outcome.bundle.is_empty());
}

#[test]
fn results_are_shown_with_the_rich_trait_when_they_have_it() {
    let (mut engine, _) = engine();
    let outcome = engine.execute("helper::Table(vec![1, 2, 3])").unwrap();
    assert_eq!(
        outcome.bundle,
        [
            ("text/plain".to_string(), "3 rows".to_string()),
            ("text/html".to_string(), "<table>3</table>".to_string())
        ]
    );
    // Neither rich nor Debug: nothing to show, and no error.
    let outcome = engine.execute("struct Opaque;\nOpaque").unwrap();
    assert!(outcome.bundle.is_empty());
}

#[test]
fn a_crashed_child_is_replaced_and_says_what_was_lost() {
    let (mut engine, _) = engine();
    result(&mut engine, "let gone = 1;\nfn kept() -> u8 { 3 }");
    let error = engine.execute("std::process::abort()").unwrap_err();
    assert!(matches!(error, CellsError::ChildDied { .. }), "{error}");
    assert!(error.to_string().contains("signal 6"), "{error}");
    assert!(variables(&engine).is_empty());
    assert_eq!(result(&mut engine, "kept()"), "3");
}

#[test]
fn a_dep_line_adds_a_crate_for_later_cells() {
    let extra = cache().join("extra");
    std::fs::create_dir_all(extra.join("src")).unwrap();
    std::fs::write(
        extra.join("Cargo.toml"),
        "[package]\nname = \"extra\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(extra.join("src/lib.rs"), "pub fn seven() -> u8 { 7 }\n").unwrap();
    let (mut engine, _) = engine();
    result(&mut engine, "let before = 1u8;");
    let dep = format!(
        ":dep extra = {{ path = {:?} }}",
        extra.display().to_string()
    );
    assert_eq!(
        result(&mut engine, &format!("{dep}\nextra::seven() + before")),
        "8"
    );
    assert_eq!(result(&mut engine, "extra::seven()"), "7");
    let error = engine.execute(":dep not a dependency").unwrap_err();
    assert!(matches!(error, CellsError::BadDependency { .. }), "{error}");
    assert!(error.to_string().contains(":dep NAME = "), "{error}");
}

#[test]
fn a_cell_compiled_before_is_not_compiled_again() {
    let cache_dir = cache().join("cache-reuse");
    let code = "let reused = helper::answer() + 1;\nreused * 2";
    let (mut first, _) = engine_in(&cache_dir);
    assert_eq!(result(&mut first, code), "86");
    let libraries = |dir: &Path| {
        let mut found: Vec<_> = std::fs::read_dir(dir.join("cells"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "so"))
            .collect();
        found.sort();
        found
    };
    let before = libraries(&cache_dir);
    let (mut second, _) = engine_in(&cache_dir);
    assert_eq!(result(&mut second, code), "86");
    assert_eq!(libraries(&cache_dir), before);
    assert_eq!(
        variables(&second),
        [("reused".to_string(), "u64".to_string())]
    );
}
