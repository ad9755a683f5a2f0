//! A cell split into what the crate compiled for it is made of: `:dep` lines, crate
//! attributes, items (kept for every later cell), the statements that run once, the last
//! expression (shown as the cell's result), the variables its `let`s bind, and every
//! identifier it mentions (to know which earlier variables it uses, even inside macros).
//!
//! rust-analyzer's parser reads the cell as the body of a function, which is what a cell is
//! to rustc too; ranges are byte ranges of the cell as typed.

use ra_ap_syntax::ast::{self, AstNode, HasAttrs, HasName};
use ra_ap_syntax::{Edition, SourceFile, SyntaxKind, TextRange};
use std::collections::BTreeSet;
use std::ops::Range;

/// What an item is keyed by: a later item with the same key replaces it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKey {
    /// A named item (fn, struct, enum, union, trait, type, const, static, mod, macro_rules),
    /// in the namespace Rust resolves it in.
    Named {
        /// `true` for types, traits and modules, `false` for values and macros.
        type_namespace: bool,
        /// Its name.
        name: String,
    },
    /// An item without a name of its own (`impl`, `use`, `extern crate`): its text.
    Text(String),
}

/// One item of a cell.
#[derive(Clone, Debug)]
pub struct Item {
    /// What a later definition replaces it by.
    pub key: ItemKey,
    /// Whether it defines a type (struct, enum, union, type alias): variables of the old type
    /// cannot be kept when it changes.
    pub defines_type: bool,
    /// Whether it is a `use` (emitted before other items).
    pub is_use: bool,
    /// Where it is in the cell.
    pub range: Range<usize>,
}

/// A variable a top-level `let` binds.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// Its name.
    pub name: String,
    /// Its type when the `let` names it completely (`let x: Vec<u64>`; not `Vec<_>`), and the
    /// pattern is just the name.
    pub annotated: Option<String>,
}

/// A cell, split.
#[derive(Clone, Debug, Default)]
pub struct CellParts {
    /// `:dep` lines, without `:dep`.
    pub dependencies: Vec<String>,
    /// `#![...]` lines.
    pub crate_attributes: Vec<String>,
    /// Items, in order.
    pub items: Vec<Item>,
    /// Statements that run, in order (byte ranges of the cell).
    pub statements: Vec<Range<usize>>,
    /// The last expression, shown as the result.
    pub tail: Option<Range<usize>>,
    /// Variables bound by top-level `let`s, in order, each once (the last binding wins).
    pub bindings: Vec<Binding>,
    /// Every identifier in the cell.
    pub identifiers: BTreeSet<String>,
    /// Whether the code uses `?` outside closures (the cell then runs in a function that
    /// returns a `Result`).
    pub uses_question_mark: bool,
}

/// The names a format string uses inline: `{k}`, `{k:>5}`, not `{{`, `{0}` or `{}`.
pub fn format_arguments(literal: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = literal;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(after) = rest.strip_prefix('{') {
            rest = after;
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let is_name = name
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_alphabetic());
        if is_name && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The wrapper the parser sees around a cell.
const PREFIX: &str = "fn __cell() {\n";

/// Splits `code`. Syntax errors are not reported here: rustc reports them, better.
pub fn split(code: &str) -> CellParts {
    let mut parts = CellParts::default();
    // `:dep` and `#![...]` lines come first; they are not Rust statements. They are blanked
    // (same length) so that ranges stay those of the cell.
    let mut body = String::with_capacity(code.len());
    let mut in_header = true;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim();
        if in_header && trimmed.starts_with(":dep ") {
            parts
                .dependencies
                .push(trimmed[":dep ".len()..].trim().to_string());
            body.push_str(&blank(line));
        } else if in_header && trimmed.starts_with("#![") {
            parts.crate_attributes.push(trimmed.to_string());
            body.push_str(&blank(line));
        } else {
            if !trimmed.is_empty() && !trimmed.starts_with("//") {
                in_header = false;
            }
            body.push_str(line);
        }
    }
    let wrapped = format!("{PREFIX}{body}\n}}");
    let offset = PREFIX.len();
    let cell_range = |range: TextRange| -> Range<usize> {
        let start = usize::from(range.start())
            .saturating_sub(offset)
            .min(code.len());
        let end = usize::from(range.end())
            .saturating_sub(offset)
            .min(code.len());
        start..end
    };
    let parsed = SourceFile::parse(&wrapped, Edition::Edition2024);
    let root = parsed.tree();
    for token in root
        .syntax()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
    {
        match token.kind() {
            SyntaxKind::IDENT => {
                parts.identifiers.insert(token.text().to_string());
            }
            // `println!("{total}")` uses `total` too, though no identifier names it.
            SyntaxKind::STRING
                if token
                    .parent()
                    .is_some_and(|p| p.kind() == SyntaxKind::TOKEN_TREE) =>
            {
                parts.identifiers.extend(format_arguments(token.text()));
            }
            _ => {}
        }
    }
    let Some(list) = root
        .syntax()
        .descendants()
        .find_map(ast::Fn::cast)
        .and_then(|f| f.body())
        .and_then(|b| b.stmt_list())
    else {
        return parts;
    };
    parts.uses_question_mark = uses_question_mark(list.syntax());
    for statement in list.statements() {
        match statement {
            ast::Stmt::Item(item) => {
                if let Some(item) = item_of(&item, cell_range(item.syntax().text_range())) {
                    parts.items.push(item);
                }
            }
            ast::Stmt::LetStmt(let_statement) => {
                for binding in bindings_of(&let_statement) {
                    parts.bindings.retain(|b| b.name != binding.name);
                    parts.bindings.push(binding);
                }
                parts
                    .statements
                    .push(cell_range(let_statement.syntax().text_range()));
            }
            ast::Stmt::ExprStmt(expression) => {
                parts
                    .statements
                    .push(cell_range(expression.syntax().text_range()));
            }
        }
    }
    if let Some(tail) = list.tail_expr() {
        parts.tail = Some(cell_range(tail.syntax().text_range()));
    }
    parts
}

fn blank(line: &str) -> String {
    line.chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect()
}

fn item_of(item: &ast::Item, range: Range<usize>) -> Option<Item> {
    let named = |type_namespace: bool, name: Option<ast::Name>| {
        name.map(|n| ItemKey::Named {
            type_namespace,
            name: n.text().to_string(),
        })
    };
    let text = || ItemKey::Text(item.syntax().text().to_string());
    let (key, defines_type) = match item {
        ast::Item::Fn(f) => (named(false, f.name())?, false),
        ast::Item::Struct(s) => (named(true, s.name())?, true),
        ast::Item::Enum(e) => (named(true, e.name())?, true),
        ast::Item::Union(u) => (named(true, u.name())?, true),
        ast::Item::TypeAlias(t) => (named(true, t.name())?, true),
        ast::Item::Trait(t) => (named(true, t.name())?, false),
        ast::Item::Module(m) => (named(true, m.name())?, false),
        ast::Item::Const(c) => match c.name() {
            Some(name) => (named(false, Some(name))?, false),
            None => (text(), false),
        },
        ast::Item::Static(s) => (named(false, s.name())?, false),
        ast::Item::MacroRules(m) => (named(false, m.name())?, false),
        _ => (text(), false),
    };
    // `#[derive]`d or otherwise attributed items keep their attributes: they are in the range.
    let _ = item.attrs();
    Some(Item {
        key,
        defines_type,
        is_use: matches!(item, ast::Item::Use(_) | ast::Item::ExternCrate(_)),
        range,
    })
}

/// The variables a `let` binds, with its annotated type when the pattern is a single name.
fn bindings_of(statement: &ast::LetStmt) -> Vec<Binding> {
    let Some(pattern) = statement.pat() else {
        return Vec::new();
    };
    if let ast::Pat::IdentPat(ident) = &pattern
        && ident.pat().is_none()
    {
        let Some(name) = ident.name() else {
            return Vec::new();
        };
        let annotated = statement
            .ty()
            .filter(is_fully_specified)
            .map(|ty| ty.syntax().text().to_string());
        return vec![Binding {
            name: name.text().to_string(),
            annotated,
        }];
    }
    pattern
        .syntax()
        .descendants()
        .filter_map(ast::IdentPat::cast)
        .filter_map(|ident| ident.name())
        .map(|name| Binding {
            name: name.text().to_string(),
            annotated: None,
        })
        .collect()
}

/// Whether a type names everything (no `_`, no `impl Trait`, no elided reference lifetime
/// that would need to be `'static` to be kept).
fn is_fully_specified(ty: &ast::Type) -> bool {
    !ty.syntax().descendants().any(|node| {
        matches!(
            node.kind(),
            SyntaxKind::INFER_TYPE | SyntaxKind::IMPL_TRAIT_TYPE
        ) || ast::RefType::cast(node).is_some_and(|r| r.lifetime().is_none())
    })
}

/// Whether `?` is used in `node` outside closures and nested functions (which have their own
/// return types).
fn uses_question_mark(node: &ra_ap_syntax::SyntaxNode) -> bool {
    let mut preorder = node.preorder();
    while let Some(event) = preorder.next() {
        let ra_ap_syntax::WalkEvent::Enter(node) = event else {
            continue;
        };
        match node.kind() {
            SyntaxKind::CLOSURE_EXPR | SyntaxKind::FN | SyntaxKind::IMPL | SyntaxKind::TRAIT => {
                preorder.skip_subtree();
            }
            SyntaxKind::TRY_EXPR => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(code: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|r| &code[r.clone()]).collect()
    }

    #[test]
    fn items_statements_and_the_last_expression_are_told_apart() {
        let code = "use std::collections::HashMap;\nfn double(x: u64) -> u64 { x * 2 }\n\
                    let mut m = HashMap::new();\nm.insert(1, double(2));\n#[derive(Debug)]\nstruct P { x: u8 }\nm.len()";
        let parts = split(code);
        let items: Vec<_> = parts.items.iter().map(|i| &code[i.range.clone()]).collect();
        assert_eq!(
            items,
            [
                "use std::collections::HashMap;",
                "fn double(x: u64) -> u64 { x * 2 }",
                "#[derive(Debug)]\nstruct P { x: u8 }"
            ]
        );
        assert!(parts.items[0].is_use);
        assert!(parts.items[2].defines_type);
        assert_eq!(
            texts(code, &parts.statements),
            ["let mut m = HashMap::new();", "m.insert(1, double(2));"]
        );
        assert_eq!(&code[parts.tail.clone().unwrap()], "m.len()");
        assert_eq!(
            parts.bindings,
            [Binding {
                name: "m".into(),
                annotated: None
            }]
        );
    }

    #[test]
    fn annotated_types_are_kept_only_when_complete() {
        let parts = split(
            "let a: Vec<u64> = vec![];\nlet b: Vec<_> = vec![1];\nlet (c, mut d) = (1, 2);\nlet e: &str = \"x\";",
        );
        let found: Vec<_> = parts
            .bindings
            .iter()
            .map(|b| (b.name.as_str(), b.annotated.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("a", Some("Vec<u64>")),
                ("b", None),
                ("c", None),
                ("d", None),
                ("e", None)
            ]
        );
    }

    #[test]
    fn dep_lines_and_crate_attributes_are_not_code() {
        let code = ":dep rand = \"0.8\"\n#![allow(unused)]\nlet x = 1;";
        let parts = split(code);
        assert_eq!(parts.dependencies, ["rand = \"0.8\""]);
        assert_eq!(parts.crate_attributes, ["#![allow(unused)]"]);
        assert_eq!(texts(code, &parts.statements), ["let x = 1;"]);
    }

    #[test]
    fn identifiers_inside_macros_count() {
        let parts = split("println!(\"{}\", total);");
        assert!(parts.identifiers.contains("total"));
        // Inline format arguments use variables as well: an earlier cell's `data` must be
        // brought into a cell that only names it in a format string.
        let parts = split("let path = format!(\"{data}/{name:>5}.csv {{not}} {0}\", 1);");
        assert!(parts.identifiers.contains("data"));
        assert!(parts.identifiers.contains("name"));
        assert!(!parts.identifiers.contains("not"));
        assert!(!split("let s = \"{data}\";").identifiers.contains("data"));
    }

    #[test]
    fn question_marks_in_closures_do_not_count() {
        assert!(split("let n: u64 = \"4\".parse()?;").uses_question_mark);
        assert!(
            !split("let f = |s: &str| -> Result<u64, std::num::ParseIntError> { Ok(s.parse()?) };")
                .uses_question_mark
        );
    }
}
