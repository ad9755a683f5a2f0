//! Chains of a cell that run in one pass: `v.map(f).reduce(g)`, where `v` is a variable an
//! earlier cell left holding an `Rdd`, is compiled as `v.map_reduce(f, g)`.
//!
//! `Rdd::map` returns an `Rdd<U>`, a handle that does not carry `f`'s type, so the `reduce`
//! after it runs over batches of mapped records gathered between the two. `map_reduce` has
//! both closures' types at once and folds each record as it is mapped: an iteration of the
//! logistic regression notebook is the one loop a programmer would write. Spark pipelines the
//! two in one task as well; it calls the reduce once per record through an iterator.
//!
//! The rewrite is syntactic, so it is kept to what it can be sure of: the receiver is a
//! variable of the session whose type is `Rdd<..>` and that the cell does not bind again, and
//! `map` and `reduce` each take one argument without `::<..>`. Chains inside the cell's items
//! (`fn`, `impl`) or inside macro calls are left alone. Line breaks are kept, so compiler
//! messages keep the cell's line numbers; a cell whose fused form does not compile runs with
//! its captures rewritten only, then as written (see the session's `compile_and_run`).

use crate::auto_capture::inside_item;
use ra_ap_syntax::ast::{self, AstNode, HasArgList, HasGenericArgs, HasName};
use ra_ap_syntax::{Edition, SourceFile, SyntaxKind, TextRange};
use std::collections::BTreeSet;

/// What makes a cell parse: its statements are a function's body.
const CELL_WRAP: (&str, &str) = ("fn __tessera_cell() {\n", "\n}");

/// `code` (one cell, after any `:` command lines) with each `v.map(f).reduce(g)` on one of
/// `rdd_variables` written `v.map_reduce(f, g)`; `None` when there is none.
pub fn fuse<S: AsRef<str>>(code: &str, rdd_variables: &[S]) -> Option<String> {
    if rdd_variables.is_empty() || !code.contains("reduce") {
        return None;
    }
    let rust_start = crate::cell_syntax::rust_start(code);
    let text = &code[rust_start..];
    let (before, after) = CELL_WRAP;
    let wrapped = format!("{before}{text}{after}");
    let root = SourceFile::parse(&wrapped, Edition::Edition2021)
        .tree()
        .syntax()
        .clone();
    let cell_body = root.descendants().find_map(ast::Fn::cast)?;
    // A variable the cell binds anywhere may not be the session's where the chain uses it.
    let bound_here: BTreeSet<String> = root
        .descendants()
        .filter_map(ast::IdentPat::cast)
        .filter_map(|pattern| pattern.name())
        .map(|name| name.text().to_string())
        .collect();
    let fusable: BTreeSet<&str> = rdd_variables
        .iter()
        .map(AsRef::as_ref)
        .filter(|name| !bound_here.contains(*name))
        .collect();
    // Byte offsets in `code` of the parse's offsets.
    let at = |offset: ra_ap_syntax::TextSize| usize::from(offset) - before.len() + rust_start;

    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for reduce in root.descendants().filter_map(ast::MethodCallExpr::cast) {
        if inside_item(reduce.syntax(), cell_body.syntax()) {
            continue;
        }
        let Some(chain) = Chain::of(&reduce, &fusable) else {
            continue;
        };
        // `map` becomes `map_reduce`; from the map's `)` to the reduce's `(`, only what is not
        // `.reduce` stays (line breaks, comments), after a comma between the two arguments.
        edits.push((
            at(chain.map_name.start())..at(chain.map_name.end()),
            "map_reduce".to_string(),
        ));
        let comma = if chain.map_trailing_comma { "" } else { "," };
        let mut between = String::from(comma);
        between
            .push_str(&wrapped[usize::from(chain.map_close.end())..usize::from(chain.dot.start())]);
        between.push_str(
            &wrapped[usize::from(chain.reduce_name.end())..usize::from(chain.reduce_open.start())],
        );
        edits.push((
            at(chain.map_close.start())..at(chain.reduce_open.end()),
            between,
        ));
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut fused = code.to_string();
    for (range, replacement) in edits {
        fused.replace_range(range, &replacement);
    }
    Some(fused)
}

/// The tokens of a `v.map(f).reduce(g)` the rewrite changes, as ranges of the parse.
struct Chain {
    map_name: TextRange,
    /// The `)` that closes `map`'s arguments.
    map_close: TextRange,
    /// Whether `f` is followed by a comma.
    map_trailing_comma: bool,
    /// The `.` before `reduce`.
    dot: TextRange,
    reduce_name: TextRange,
    /// The `(` that opens `reduce`'s arguments.
    reduce_open: TextRange,
}

impl Chain {
    /// The chain that `reduce` ends, when it is one the rewrite may fuse.
    fn of(reduce: &ast::MethodCallExpr, fusable: &BTreeSet<&str>) -> Option<Chain> {
        let (reduce_name, reduce_args) = one_argument_call(reduce, "reduce")?;
        let ast::Expr::MethodCallExpr(map) = reduce.receiver()? else {
            return None;
        };
        let (map_name, map_args) = one_argument_call(&map, "map")?;
        let ast::Expr::PathExpr(receiver) = map.receiver()? else {
            return None;
        };
        let path = receiver.path()?;
        if path.qualifier().is_some()
            || !fusable.contains(path.syntax().text().to_string().as_str())
        {
            return None;
        }
        let map_close = map_args.r_paren_token()?;
        let map_trailing_comma = std::iter::successors(map_close.prev_token(), |t| t.prev_token())
            .find(|t| !t.kind().is_trivia())
            .is_some_and(|t| t.kind() == SyntaxKind::COMMA);
        Some(Chain {
            map_name: map_name.syntax().text_range(),
            map_close: map_close.text_range(),
            map_trailing_comma,
            dot: reduce.dot_token()?.text_range(),
            reduce_name: reduce_name.syntax().text_range(),
            reduce_open: reduce_args.l_paren_token()?.text_range(),
        })
    }
}

/// The name and arguments of `call` when it calls method `name` with one argument and no
/// `::<..>`.
fn one_argument_call(
    call: &ast::MethodCallExpr,
    name: &str,
) -> Option<(ast::NameRef, ast::ArgList)> {
    let name_ref = call.name_ref()?;
    let args = call.arg_list()?;
    (name_ref.text() == name && call.generic_arg_list().is_none() && args.args().count() == 1)
        .then_some((name_ref, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_then_reduce_on_an_rdd_variable_becomes_one_call_on_the_same_lines() {
        let code = "let (g, n) = points\n    .map(move |p| (p * w, 1u64))\n    // add them\n    .reduce(|a, b| (a.0 + b.0, a.1 + b.1));\nw -= g;";
        let fused = fuse(code, &["points"]).unwrap();
        assert_eq!(
            fused,
            "let (g, n) = points\n    .map_reduce(move |p| (p * w, 1u64),\n    // add them\n    |a, b| (a.0 + b.0, a.1 + b.1));\nw -= g;"
        );
        assert_eq!(fused.lines().count(), code.lines().count());
        // On one line, and with a trailing comma after the map's argument.
        assert_eq!(
            fuse("nums.map(|x| x * 2,).reduce(|a, b| a + b)", &["nums"]).unwrap(),
            "nums.map_reduce(|x| x * 2,|a, b| a + b)"
        );
    }

    #[test]
    fn only_chains_it_can_be_sure_of_are_fused() {
        let session = ["nums", "other"];
        for code in [
            // Not a variable of the session that holds an RDD.
            "words.map(|w| w.len()).reduce(|a, b| a + b)",
            "(1..4).map(|x| x).reduce(|a, b| a + b)",
            "sc.parallelize(vec![1], 1).map(|x| x).reduce(|a, b| a + b)",
            // Bound again by the cell: no longer the session's RDD.
            "let nums = vec![1u64].into_iter();\nnums.map(|x| x).reduce(|a, b| a + b)",
            "for nums in groups { nums.map(|x| x).reduce(|a, b| a + b); }",
            // Something between the two, turbofish, other arities.
            "nums.map(|x| x).filter(|x| *x > 1).reduce(|a, b| a + b)",
            "nums.map::<u64, _>(|x| x).reduce(|a, b| a + b)",
            "nums.map(|x| x).fold(0, |a, b| a + b)",
            // Inside an item, or a macro's arguments.
            "fn total(nums: Rdd<u64>) -> u64 { nums.map(|x| x).reduce(|a, b| a + b) }",
            "println!(\"{}\", nums.map(|x| x).reduce(|a, b| a + b));",
        ] {
            assert_eq!(fuse(code, &session), None, "{code}");
        }
        assert_eq!(
            fuse("nums.map(|x| x).reduce(|a, b| a + b)", &[] as &[&str]),
            None
        );
    }

    #[test]
    fn chains_inside_each_other_and_after_command_lines_are_each_fused() {
        let code = ":dep rand = \"0.8\"\nlet t = nums.map(move |x| x + other.map(|y| y).reduce(|a, b| a.max(b))).reduce(|a, b| a + b);";
        assert_eq!(
            fuse(code, &["nums", "other"]).unwrap(),
            ":dep rand = \"0.8\"\nlet t = nums.map_reduce(move |x| x + other.map_reduce(|y| y,|a, b| a.max(b)),|a, b| a + b);"
        );
    }
}
