//! Closures that capture as in Spark: the session rewrites each `move` closure of a cell that
//! uses variables so that what it captures travels to executors, without `capture!`.
//!
//! A cell is parsed with rust-analyzer's parser (evcxr's own). For every `move` closure outside
//! the cell's `fn`/`impl` items and outside other rewritten closures, its *captures* are the
//! names its body uses (paths of one segment, struct shorthand fields, identifiers and `{name}`
//! format arguments inside macro calls) that are not bound inside it and that name a variable:
//! one the session holds, or one a pattern of the cell binds. The closure becomes a block that
//! puts each capture in a slot of an `Env` (see the API crate's `auto_capture` module, which
//! chooses by type: shipped by value, shipped as a clone, or kept for local use) and a closure
//! that captures only that `Env`, with each name rebound at the top of its body. Nothing is
//! inserted on a new line, so compiler messages keep the cell's line numbers.
//!
//! What this cannot do, and what happens then:
//! - A capture is taken by reference and cloned (`Copy` values copied), so the variable stays
//!   usable after the cell, as a Spark closure's serialized copy leaves it. A body that mutates
//!   a capture (`move |x| { n += x; n }`), or a value that is neither `Copy` nor `Clone`, does
//!   not compile rewritten: the session then compiles the cell as written, as Rust would.
//!   Should such a closure go to an RDD, its error names the captures that were neither `Copy`
//!   nor `Clone`, with their types and what to do instead ([`explain_uncopied`]).
//! - A name bound anywhere inside the closure counts as the closure's own, even where it is
//!   used before that binding; a capture the scan misses (inside a macro that hides names)
//!   leaves the closure capturing it directly, and shipping it fails at run time asking for
//!   `capture!`, which stays available as the explicit form.
//! - Closures inside the cell's functions and generic code are not rewritten: their variables
//!   are the function's, whose types the rewrite cannot see through.

use ra_ap_syntax::ast::{self, AstNode, HasName};
use ra_ap_syntax::{Edition, SourceFile, SyntaxKind, SyntaxNode, TextRange};
use std::collections::BTreeSet;
use tessera_cells::format_arguments;

/// A cell as the session compiles it, with its `move` closures rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The code evcxr compiles.
    pub code: String,
    /// The rewritten closures, in the order they appear.
    pub closures: Vec<RewrittenClosure>,
}

/// One closure the rewrite changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrittenClosure {
    /// The 1-based line of the cell it starts on.
    pub line: usize,
    /// The variables it captures, in order of first use.
    pub captures: Vec<String>,
}

/// `code` (one cell; `:dep`-style command lines first are left alone) with every `move` closure
/// that captures variables rewritten; `None` when no closure needs it. `session_variables` are
/// the names of the variables earlier cells left.
pub fn rewrite<S: AsRef<str>>(code: &str, session_variables: &[S]) -> Option<Rewrite> {
    let rust_start = crate::cell_syntax::rust_start(code);
    let known = session_variables
        .iter()
        .map(|name| name.as_ref().to_string())
        .collect();
    let (rust, found) = rewrite_statements(&code[rust_start..], CELL_WRAP, &known)?;
    let closures = found
        .into_iter()
        .map(|(offset, captures)| RewrittenClosure {
            line: code[..rust_start + offset].matches('\n').count() + 1,
            captures,
        })
        .collect();
    Some(Rewrite {
        code: format!("{}{rust}", &code[..rust_start]),
        closures,
    })
}

/// What makes a piece of a cell parse: the cell's statements are a function's body, a macro
/// call's arguments are a function call's.
type Wrap = (&'static str, &'static str);
const CELL_WRAP: Wrap = ("fn __tessera_cell() {\n", "\n}");
const ARGUMENTS_WRAP: Wrap = ("fn __tessera_cell() { __tessera_arguments(", "); }");

/// `text` (parsed inside `wrap`) with its capturing `move` closures rewritten, and each
/// rewritten closure's byte offset in `text` and captures; `None` when nothing changed.
/// `known` are the variables bound around `text`.
fn rewrite_statements(
    text: &str,
    (before, after): Wrap,
    known: &BTreeSet<String>,
) -> Option<(String, Vec<(usize, Vec<String>)>)> {
    let wrapped = format!("{before}{text}{after}");
    let parsed = SourceFile::parse(&wrapped, Edition::Edition2021);
    if before == ARGUMENTS_WRAP.0 && !parsed.errors().is_empty() {
        // Not a macro whose arguments are expressions (`vec![x; n]`, a DSL): left alone.
        return None;
    }
    let root = parsed.tree().syntax().clone();
    let cell_body = root.descendants().find_map(ast::Fn::cast)?;
    let mut known = known.clone();
    known.extend(
        root.descendants()
            .filter_map(ast::IdentPat::cast)
            .filter_map(|pattern| pattern.name())
            .map(|name| name.text().to_string())
            .filter(|name| is_variable_name(name)),
    );
    // Byte ranges in `text` of the parse's ranges.
    let span = |range: TextRange| {
        usize::from(range.start()) - before.len()..usize::from(range.end()) - before.len()
    };
    let in_text = |range: TextRange| {
        usize::from(range.start()) >= before.len()
            && usize::from(range.end()) <= before.len() + text.len()
    };

    let mut edits: Vec<Edit> = Vec::new();
    let already_rewritten = |edits: &[Edit], node: &SyntaxNode| {
        let start = span(node.text_range()).start;
        edits.iter().any(|edit| edit.range.contains(&start))
    };
    for node in root.descendants() {
        if !in_text(node.text_range())
            || inside_item(&node, cell_body.syntax())
            || already_rewritten(&edits, &node)
        {
            continue;
        }
        let range = span(node.text_range());
        if let Some(closure) = ast::ClosureExpr::cast(node.clone()) {
            if closure.move_token().is_none() || closure.async_token().is_some() {
                continue;
            }
            let captures = captures_of(&closure, &known);
            if captures.is_empty() {
                continue;
            }
            if let Some(replacement) = expand(&closure, &captures) {
                edits.push(Edit {
                    closures: vec![(range.start, captures)],
                    range,
                    replacement,
                });
            }
        } else if let Some(call) = ast::MacroCall::cast(node.clone()) {
            // Closures in a macro's arguments (`println!("{}", r.map(move |x| x * k).count())`)
            // are rewritten when the arguments parse as expressions. `capture!` is the
            // explicit form: left as written.
            let is_capture = call
                .path()
                .and_then(|p| p.segment())
                .is_some_and(|s| s.syntax().text() == "capture");
            let Some(tokens) = call.token_tree().filter(|_| !is_capture) else {
                continue;
            };
            let tokens_range = span(tokens.syntax().text_range());
            // Inside the delimiters.
            let inner = tokens_range.start + 1..tokens_range.end - 1;
            if inner.start > inner.end {
                continue;
            }
            if let Some((replacement, found)) =
                rewrite_statements(&text[inner.clone()], ARGUMENTS_WRAP, &known)
            {
                edits.push(Edit {
                    closures: found
                        .into_iter()
                        .map(|(at, captures)| (inner.start + at, captures))
                        .collect(),
                    range: inner,
                    replacement,
                });
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = text.to_string();
    let mut closures = Vec::new();
    for edit in edits.into_iter().rev() {
        out.replace_range(edit.range, &edit.replacement);
        closures.splice(0..0, edit.closures);
    }
    Some((out, closures))
}

/// One change to a piece of a cell.
struct Edit {
    /// The bytes of the piece it replaces.
    range: std::ops::Range<usize>,
    replacement: String,
    /// The closures it rewrites: each one's offset in the piece, and its captures.
    closures: Vec<(usize, Vec<String>)>,
}

/// Whether `node` is inside an item of the cell (a `fn`, `impl`, `const`...), not its
/// statements.
pub(crate) fn inside_item(node: &SyntaxNode, cell_body: &SyntaxNode) -> bool {
    node.ancestors()
        .take_while(|ancestor| ancestor != cell_body)
        .any(|ancestor| {
            matches!(
                ancestor.kind(),
                SyntaxKind::FN
                    | SyntaxKind::IMPL
                    | SyntaxKind::TRAIT
                    | SyntaxKind::CONST
                    | SyntaxKind::STATIC
                    | SyntaxKind::MODULE
                    | SyntaxKind::MACRO_RULES
            )
        })
}

/// The variables `closure` uses that are bound outside it (among `known`), in order of first
/// use.
fn captures_of(closure: &ast::ClosureExpr, known: &BTreeSet<String>) -> Vec<String> {
    let bound_inside: BTreeSet<String> = closure
        .syntax()
        .descendants()
        .filter_map(ast::IdentPat::cast)
        .filter_map(|pattern| pattern.name())
        .map(|name| name.text().to_string())
        .collect();
    let mut captures = Vec::new();
    for usage in uses(closure.syntax()) {
        if known.contains(&usage.name)
            && !bound_inside.contains(&usage.name)
            && !captures.contains(&usage.name)
        {
            captures.push(usage.name);
        }
    }
    captures
}

/// Binding names are snake case; a capitalised pattern (`None`, `Ok`) names a constant or a
/// variant, not a variable.
fn is_variable_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_lowercase())
        && name != "_"
}

/// A place where code may use a variable.
struct Use {
    name: String,
    /// Where, in the parsed text.
    range: TextRange,
    kind: UseKind,
}

enum UseKind {
    /// A path expression, or an identifier among a macro's arguments: replaced by the place.
    Expression,
    /// `Point { x }`: becomes `Point { x: place }`.
    Shorthand,
    /// `{x}` in the format string of a formatting macro: the macro gets an argument
    /// `x = place`, before its closing delimiter (`range` is that delimiter).
    FormatArgument,
}

/// Macros whose string arguments are format strings, where `{name}` uses a variable.
const FORMATTING_MACROS: &[&str] = &[
    "print",
    "println",
    "eprint",
    "eprintln",
    "format",
    "write",
    "writeln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "unreachable",
    "todo",
    "unimplemented",
    "format_args",
];

/// Every place in `node` that may use a variable, in order.
fn uses(node: &SyntaxNode) -> Vec<Use> {
    let mut found = Vec::new();
    for descendant in node.descendants() {
        if let Some(path) = ast::PathExpr::cast(descendant.clone()) {
            if let Some(name) = path.path().and_then(|p| p.as_single_name_ref()) {
                // `Point { x }` is a field whose expression is the path `x`, without a name.
                let shorthand = path
                    .syntax()
                    .parent()
                    .and_then(ast::RecordExprField::cast)
                    .is_some_and(|field| field.name_ref().is_none());
                found.push(Use {
                    name: name.text().to_string(),
                    range: path.syntax().text_range(),
                    kind: if shorthand {
                        UseKind::Shorthand
                    } else {
                        UseKind::Expression
                    },
                });
            }
        } else if let Some(call) = ast::MacroCall::cast(descendant.clone())
            && let Some(tokens) = call.token_tree()
        {
            // Macro arguments are not parsed: any identifier in them may be a variable, and so
            // may a `{name}` in a formatting macro's string.
            let formats = call.path().and_then(|p| p.segment()).is_some_and(|s| {
                FORMATTING_MACROS.contains(&s.syntax().text().to_string().as_str())
            });
            found.extend(uses_in_tokens(tokens.syntax(), formats));
        }
    }
    found
}

/// Identifiers in a macro call's tokens that are not field or method names (`.x`), paths'
/// later segments (`a::b`), or macro names (`m!`); and, when `formats`, `{name}` arguments of
/// its own string literals.
fn uses_in_tokens(tokens: &SyntaxNode, formats: bool) -> Vec<Use> {
    let all: Vec<_> = tokens
        .descendants_with_tokens()
        .filter_map(|element| element.into_token())
        .filter(|token| !token.kind().is_trivia())
        .collect();
    let closing = tokens.last_token().map(|t| t.text_range());
    let mut found = Vec::new();
    for (i, token) in all.iter().enumerate() {
        match token.kind() {
            SyntaxKind::IDENT => {
                let before = i.checked_sub(1).map(|j| all[j].kind());
                let after = all.get(i + 1).map(|t| t.kind());
                if !matches!(before, Some(SyntaxKind::DOT | SyntaxKind::COLON2))
                    && !matches!(after, Some(SyntaxKind::BANG | SyntaxKind::COLON2))
                {
                    found.push(Use {
                        name: token.text().to_string(),
                        range: token.text_range(),
                        kind: UseKind::Expression,
                    });
                }
            }
            SyntaxKind::STRING if formats && token.parent().as_ref() == Some(tokens) => {
                let Some(closing) = closing else { continue };
                found.extend(
                    format_arguments(token.text())
                        .into_iter()
                        .filter(|n| is_variable_name(n))
                        .map(|name| Use {
                            name,
                            range: closing,
                            kind: UseKind::FormatArgument,
                        }),
                );
            }
            _ => {}
        }
    }
    found
}

/// The block that replaces `closure`, capturing `captures` through an `Env`; on one line.
///
/// The body's uses of a capture become `(*place)`, where `place` is a reference to the value
/// in the `Env`: an expression of the variable's own type that is a place, as the captured
/// field of a `move` closure is, so the body means what it meant (`*w == s`, `s.len()`,
/// `k * x` all type-check as before).
fn expand(closure: &ast::ClosureExpr, captures: &[String]) -> Option<String> {
    let params = closure.param_list()?.syntax().text().to_string();
    let body = closure.body()?;
    let ret = closure
        .ret_type()
        .map(|r| format!("{} ", r.syntax().text()))
        .unwrap_or_default();
    let api = "::tessera::__private::auto";
    let place = |i: usize| format!("(*{api}::Slot::place(&__tessera_env.value().{i}))");

    // Edits inside the body, by range relative to its start.
    let body_start = body.syntax().text_range().start();
    let mut edits: Vec<(TextRange, String)> = Vec::new();
    for usage in uses(body.syntax()) {
        let Some(i) = captures.iter().position(|c| *c == usage.name) else {
            continue;
        };
        let range = usage.range - body_start;
        match usage.kind {
            UseKind::Expression => edits.push((range, place(i))),
            UseKind::Shorthand => edits.push((range, format!("{}: {}", usage.name, place(i)))),
            UseKind::FormatArgument => {
                let argument = format!("{} = {}", usage.name, place(i));
                match edits.iter_mut().find(|(r, _)| *r == range) {
                    Some((_, inserted)) => {
                        inserted.insert_str(inserted.len() - 1, &format!(", {argument}"))
                    }
                    None => {
                        let delimiter = &body.syntax().text().to_string()
                            [usize::from(range.start())..usize::from(range.end())];
                        let before = body.syntax().text().to_string()[..usize::from(range.start())]
                            .trim_end()
                            .to_string();
                        let comma = if before.ends_with(',') { " " } else { ", " };
                        edits.push((range, format!("{comma}{argument}{delimiter}")));
                    }
                }
            }
        }
    }
    edits.sort_by_key(|(range, _)| range.start());
    let mut body_text = body.syntax().text().to_string();
    for (range, replacement) in edits.iter().rev() {
        body_text.replace_range(
            usize::from(range.start())..usize::from(range.end()),
            replacement,
        );
    }

    let mut out = String::from("{ ");
    for name in captures {
        out.push_str(&format!(
            "#[allow(non_camel_case_types, dead_code)] struct {}(::core::cell::Cell<()>); ",
            marker(name)
        ));
    }
    out.push_str(&format!(
        "#[allow(unused_imports)] use {api}::{{ViaStr as _, ViaShip as _, ViaConjure as _, \
         ViaLocal as _, ViaNothing as _}}; let __tessera_env = {api}::env(("
    ));
    for name in captures {
        out.push_str(&format!(
            "(&&&&{api}::Probe(&{name})).tag().take(&{name}, {:?}, \
             ::core::marker::PhantomData::<{}>), ",
            unraw(name),
            marker(name)
        ));
    }
    // Nested `move` closures capture the reference, not the `Env` this closure owns.
    out.push_str(&format!(
        ")); move {params} {ret}{{ let __tessera_env = &__tessera_env; {body_text} }} }}"
    ));
    Some(out)
}

/// The type that names `variable` in compiler messages about it.
fn marker(variable: &str) -> String {
    format!("__tessera_capture_{}", unraw(variable))
}

fn unraw(name: &str) -> &str {
    name.strip_prefix("r#").unwrap_or(name)
}

/// A compile error of a rewritten cell, as the session sees it.
pub struct CompileError {
    /// The message and its notes, as rustc rendered them.
    pub text: String,
    /// The line of the cell the error points at, when it points into the cell.
    pub line: Option<usize>,
}

/// What to tell the user when the rewritten cell failed because a closure that runs on
/// executors captures a variable that cannot be sent there; `None` when the errors are about
/// something else (then the cell is compiled as written, and its own errors shown).
pub fn explain_capture_errors(errors: &[CompileError]) -> Option<String> {
    let mut explained: Vec<(String, Option<String>, Option<usize>)> = Vec::new();
    for error in errors {
        if !error
            .text
            .contains("cannot be shared between threads safely")
        {
            continue;
        }
        let Some(name) = marked_variable(&error.text) else {
            continue;
        };
        if explained.iter().any(|(seen, _, _)| *seen == name) {
            continue;
        }
        explained.push((name, captured_type(&error.text), error.line));
    }
    if explained.is_empty() {
        return None;
    }
    let mut message = String::new();
    for (name, type_name, line) in explained {
        let at = line.map(|l| format!(" on line {l}")).unwrap_or_default();
        let of_type = type_name.map(|t| format!(" (a `{t}`)")).unwrap_or_default();
        message.push_str(&format!(
            "error: the closure{at} runs on executors but captures `{name}`{of_type}, which \
             cannot be sent to them: captured values must implement serde's Serialize and \
             Deserialize.\n  help: derive them on your own types \
             (`#[derive(Serialize, Deserialize)]`), capture a serializable part of `{name}`, \
             or build the value inside the closure.\n"
        ));
    }
    Some(message)
}

/// A variable a closure captures that the rewrite could not copy (it is neither `Copy` nor
/// `Clone`), so that the cell ran as written, the closure capturing it as Rust does. Should the
/// closure go to an RDD, that capture cannot travel, and the error says which it was
/// ([`explain_uncopied`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncopied {
    /// The variable.
    pub name: String,
    /// Its type, as rustc names it.
    pub type_name: String,
    /// The line of the cell its capture is on, when known.
    pub line: Option<usize>,
}

/// What rustc says of a capture that is neither `Copy` nor `Clone` (the API crate's
/// `CopyOrClone` bound), after the type.
const NOT_COPY_NOR_CLONE: &str = "` is neither Copy nor Clone: Tessera captures it as the cell";

/// The captures of a rewritten cell that were neither `Copy` nor `Clone`, from its compile
/// errors.
pub fn uncopied_captures(errors: &[CompileError]) -> Vec<Uncopied> {
    let mut found: Vec<Uncopied> = Vec::new();
    for error in errors {
        let Some(at) = error.text.find(NOT_COPY_NOR_CLONE) else {
            continue;
        };
        let Some(type_start) = error.text[..at].rfind('`') else {
            continue;
        };
        // The rewrite passes each capture's name to `take` beside the value.
        let name = taken_name(&error.text).or_else(|| marked_variable(&error.text));
        let Some(name) = name else {
            continue;
        };
        if found.iter().any(|seen| seen.name == name) {
            continue;
        }
        found.push(Uncopied {
            name,
            type_name: error.text[type_start + 1..at].to_string(),
            line: error.line,
        });
    }
    found
}

/// The name in a rewritten capture's `.take(&value, "name", ..)`, if `text` shows one.
fn taken_name(text: &str) -> Option<String> {
    let after = &text[text.find(".take(&")? + ".take(&".len()..];
    let quoted = &after[after.find(", \"")? + 3..];
    let name = &quoted[..quoted.find('"')?];
    (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then(|| name.to_string())
}

/// What to add to the error of a closure whose captures cannot be sent to executors, when the
/// cell ran as written because of `uncopied`: which captures those were, and what to do.
pub fn explain_uncopied(uncopied: &[Uncopied]) -> String {
    let mut note = String::new();
    for capture in uncopied {
        let at = capture
            .line
            .map(|l| format!(" on line {l}"))
            .unwrap_or_default();
        note.push_str(&format!(
            "\n  note: the closure{at} captures `{}` (a `{}`), which is neither Copy nor Clone: \
             it was captured as Rust captures it, and only values that serde can serialize \
             travel to executors.\n  help: make the value inside the closure (open a file or a \
             connection there), or capture what executors need from `{}` (its contents, a \
             path, a setting).",
            capture.name, capture.type_name, capture.name
        ));
    }
    note
}

/// The variable a rewrite marker in `text` names.
fn marked_variable(text: &str) -> Option<String> {
    let start = text.find("__tessera_capture_")? + "__tessera_capture_".len();
    let name: String = text[start..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The captured type in a note such as "within the type `Local<Rc<i32>, __tessera_capture_x>`".
fn captured_type(text: &str) -> Option<String> {
    let marker_at = text.find("__tessera_capture_")?;
    let before = &text[..marker_at];
    let open = before
        .rfind("Local<")
        .or_else(|| before.rfind("LocalCopy<"))?;
    let inner = &before[open..];
    let inner = &inner[inner.find('<')? + 1..];
    // Up to the `, ` before the marker (and its module path, if any).
    let end = inner.rfind(", ")?;
    Some(inner[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captures(code: &str, session: &[&str]) -> Vec<Vec<String>> {
        rewrite(code, session)
            .map(|r| r.closures.into_iter().map(|c| c.captures).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_move_closure_captures_cell_and_session_variables() {
        let code = "let k = 3u64;\nnums.filter(move |x| x % k == 0 && *x > limit).count()";
        assert_eq!(captures(code, &["nums", "limit"]), [["k", "limit"]]);
    }

    #[test]
    fn closures_without_move_or_captures_are_left_alone() {
        assert_eq!(
            rewrite("let k = 1;\nnums.map(|x| x + k)", &[] as &[&str]),
            None
        );
        assert_eq!(rewrite("nums.map(move |x| x + 1)", &["nums"]), None);
        // Constants, functions and variants are not variables.
        assert_eq!(
            rewrite(
                "const K: u64 = 2;\nnums.map(move |x| f(x) + K).filter(move |x| Some(*x) != None)",
                &["nums"]
            ),
            None
        );
    }

    #[test]
    fn the_closures_own_names_are_not_captures() {
        let code =
            "let (a, b) = (1, 2);\nr.map(move |(a, y)| { let z = y + b; match z { n => n + a } })";
        assert_eq!(captures(code, &["r"]), [["b"]]);
    }

    #[test]
    fn names_in_macros_and_struct_shorthand_are_captures() {
        let code = "let p = 1; let q = 2; let w = 3;\n\
                    r.map(move |x| { println!(\"{p} {x:>4} {{q}}\", x.len); Point { w, x } })";
        assert_eq!(captures(code, &["r"]), [["p", "w"]]);
        let code = "let k = 1;\nr.map(move |x| format!(\"{}\", k.max(x)))";
        assert_eq!(captures(code, &[]), [["k"]]);
    }

    #[test]
    fn loop_variables_are_captures_and_nested_closures_belong_to_the_outer_one() {
        let code = "for k in 1..4 {\n    r.filter(move |x| v.iter().any(move |y| y + k == *x)).count();\n}";
        assert_eq!(captures(code, &["r", "v"]), [["v", "k"]]);
    }

    #[test]
    fn closures_in_macro_arguments_are_rewritten_and_capture_stays_explicit() {
        let code = "let k = 3;\nprintln!(\"{}\", nums.filter(move |x| x % k == 0).count());\n\
                    let c = nums.map(capture!([k] move |x| x + k));\nlet v = vec![k; 2];";
        let rewritten = rewrite(code, &["nums"]).expect("rewritten");
        assert_eq!(captures(code, &["nums"]), [["k"]]);
        assert_eq!(rewritten.closures[0].line, 2);
        assert!(
            rewritten
                .code
                .starts_with("let k = 3;\nprintln!(\"{}\", nums.filter({ ")
        );
        assert!(
            rewritten
                .code
                .ends_with("capture!([k] move |x| x + k));\nlet v = vec![k; 2];")
        );
    }

    #[test]
    fn uses_become_places_shorthand_fields_and_named_format_arguments() {
        let code = "let (k, p, s) = (1, 2, 3);\n\
                    r.map(move |x| { println!(\"{k} {p:>3} {}\", s,); P { k, x: p } })";
        let rewritten = rewrite(code, &["r"]).expect("rewritten").code;
        let place = |i: usize| {
            format!("(*::tessera::__private::auto::Slot::place(&__tessera_env.value().{i}))")
        };
        assert!(
            rewritten.contains(&format!(
                "println!(\"{{k}} {{p:>3}} {{}}\", {}, k = {}, p = {}); P {{ k: {}, x: {} }}",
                place(2),
                place(0),
                place(1),
                place(0),
                place(1)
            )),
            "{rewritten}"
        );
    }

    #[test]
    fn closures_inside_functions_are_left_alone() {
        let code = "fn f(k: u64) -> impl Fn(u64) -> u64 { move |x| x + k }\nlet k = 1;";
        assert_eq!(rewrite(code, &[] as &[&str]), None);
    }

    #[test]
    fn the_rewrite_keeps_lines_commands_and_the_rest_of_the_cell() {
        let code =
            ":dep foo\nlet k = 2;\nlet r = nums\n    .map(move |x| -> u64 { x * k });\nr.count()";
        let rewritten = rewrite(code, &["nums"]).expect("rewritten");
        assert_eq!(rewritten.closures[0].line, 4);
        assert_eq!(rewritten.code.lines().count(), code.lines().count());
        assert!(
            rewritten
                .code
                .starts_with(":dep foo\nlet k = 2;\nlet r = nums\n    .map({ ")
        );
        assert!(rewritten.code.contains(
            "move |x| -> u64 { let __tessera_env = &__tessera_env; \
             { x * (*::tessera::__private::auto::Slot::place(&__tessera_env.value().0)) } } });\nr.count()"
        ));
        assert!(rewritten.code.contains("Probe(&k)).tag().take(&k, \"k\""));
    }

    #[test]
    fn capture_errors_name_the_variable_its_type_and_the_fix() {
        let errors = [CompileError {
            text: "error[E0277]: `Cell<()>` cannot be shared between threads safely\n\
                   note: required because it appears within the type \
                   `tessera::__private::auto::Local<Rc<Vec<u8>>, __tessera_capture_shared>`"
                .into(),
            line: Some(3),
        }];
        let message = explain_capture_errors(&errors).expect("explained");
        assert!(
            message.contains("on line 3 runs on executors but captures `shared` (a `Rc<Vec<u8>>`)"),
            "{message}"
        );
        assert!(message.contains("#[derive(Serialize, Deserialize)]"));
        let other = [CompileError {
            text: "error[E0384]: cannot assign twice to immutable variable `n`".into(),
            line: Some(1),
        }];
        assert_eq!(explain_capture_errors(&other), None);
    }

    #[test]
    fn captures_neither_copy_nor_clone_are_named_with_their_type_and_line() {
        let errors = [
            CompileError {
                text: "`File` is neither Copy nor Clone: Tessera captures it as the cell wrote \
                       it\nnote: required for `File` to implement `CopyOrClone`\n 97 | \
                       ...Probe(&conn)).tag().take(&conn, \"conn\", ::core::marker::Phant"
                    .into(),
                line: Some(2),
            },
            CompileError {
                text: "`Mutex<u64>` is neither Copy nor Clone: Tessera captures it as the cell \
                       wrote it\n ... PhantomData::<__tessera_capture_guarded>"
                    .into(),
                line: None,
            },
            CompileError {
                text: "error[E0384]: cannot assign twice to immutable variable `n`".into(),
                line: Some(1),
            },
        ];
        let uncopied = uncopied_captures(&errors);
        assert_eq!(
            uncopied,
            [
                Uncopied {
                    name: "conn".into(),
                    type_name: "File".into(),
                    line: Some(2)
                },
                Uncopied {
                    name: "guarded".into(),
                    type_name: "Mutex<u64>".into(),
                    line: None
                },
            ]
        );
        let note = explain_uncopied(&uncopied[..1]);
        assert!(
            note.contains("the closure on line 2 captures `conn` (a `File`)"),
            "{note}"
        );
        assert!(note.contains("make the value inside the closure"), "{note}");
    }
}
