//! Chains of a cell that run in one pass: `v.map(f).reduce(g)`, where `v` is surely an `Rdd`,
//! is compiled as `v.map_reduce(f, g)`.
//!
//! `Rdd::map` returns an `Rdd<U>`, a handle that does not carry `f`'s type, so the `reduce`
//! after it runs over batches of mapped records gathered between the two. `map_reduce` has
//! both closures' types at once and folds each record as it is mapped: an iteration of the
//! logistic regression notebook is the one loop a programmer would write. Spark pipelines the
//! two in one task as well; it calls the reduce once per record through an iterator.
//!
//! The rewrite is syntactic, so it is kept to what it can be sure of. The receiver is a
//! variable of the session whose type is `Rdd<..>` and that the cell does not bind again, or
//! one the cell binds once, without a type written, to a chain of methods that only an `Rdd`
//! returns, from such a variable or from the session's `Context` (`let points =
//! sc.text_file(..).map(..).cache();`, as a script without cells has it), or such a chain
//! itself (`points.filter(..)`). `map` and `reduce` each take one argument without `::<..>`.
//! Chains inside the cell's items (`fn`, `impl`) or inside macro calls are left alone. Line
//! breaks are kept, so compiler messages keep the cell's line numbers; a cell whose fused form
//! does not compile runs with its captures rewritten only, then as written (see the session's
//! `compile_and_run`).

use crate::auto_capture::inside_item;
use ra_ap_syntax::ast::{self, AstNode, HasArgList, HasGenericArgs, HasName};
use ra_ap_syntax::{Edition, SourceFile, SyntaxKind, TextRange};
use std::collections::{BTreeMap, BTreeSet};

/// What makes a cell parse: its statements are a function's body.
const CELL_WRAP: (&str, &str) = ("fn __tessera_cell() {\n", "\n}");

/// Methods of `Context` that return an `Rdd`.
const CONTEXT_TO_RDD: &[&str] = &["text_file", "parallelize", "union"];

/// Methods of `Rdd` that return an `Rdd` and no `DataFrame` has: a chain of them from an RDD
/// ends in an RDD.
const RDD_TO_RDD: &[&str] = &[
    "map",
    "flat_map",
    "map_partitions",
    "map_partitions_with_index",
    "glom",
    "key_by",
    "sample",
    "coalesce",
    "cartesian",
    "zip_with_index",
    "checkpoint",
    "map_values",
    "flat_map_values",
    "keys",
    "values",
    "reduce_by_key",
    "reduce_by_key_with",
    "fold_by_key",
    "aggregate_by_key",
    "combine_by_key",
    "group_by_key",
    "group_by_key_with",
    "partition_by",
    "partition_by_custom",
    "cogroup",
    "left_outer_join",
    "right_outer_join",
    "full_outer_join",
    "subtract_by_key",
    "sort_by_key",
];

/// Methods that an `Rdd` and a `DataFrame` both have, each returning its own kind: they keep
/// a chain an RDD once it is one.
const SAME_KIND: &[&str] = &[
    "filter",
    "cache",
    "persist",
    "unpersist",
    "distinct",
    "repartition",
    "union",
    "join",
    "sort_by",
];

/// `code` (one cell, after any `:` command lines) with each `v.map(f).reduce(g)` written
/// `v.map_reduce(f, g)`, where `v` is surely an RDD: one of `rdd_variables`, a variable the
/// cell binds once to an RDD, or a chain of RDD methods from one of those or from one of
/// `contexts` (`sc.text_file(..).filter(..)`); `None` when there is none.
pub fn fuse<S: AsRef<str>>(code: &str, rdd_variables: &[S], contexts: &[S]) -> Option<String> {
    if !code.contains("reduce") {
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
    // A variable the cell binds anywhere may not be the session's where the chain uses it,
    // unless its one binding is to an RDD.
    let mut bindings: BTreeMap<String, usize> = BTreeMap::new();
    for pattern in root.descendants().filter_map(ast::IdentPat::cast) {
        if let Some(name) = pattern.name() {
            *bindings.entry(name.text().to_string()).or_default() += 1;
        }
    }
    let contexts: BTreeSet<&str> = contexts
        .iter()
        .map(AsRef::as_ref)
        .filter(|name| !bindings.contains_key(*name))
        .collect();
    let mut fusable: BTreeSet<String> = rdd_variables
        .iter()
        .map(AsRef::as_ref)
        .filter(|name| !bindings.contains_key(*name))
        .map(str::to_string)
        .collect();
    // In the cell's order, so that a binding may build on an earlier one.
    for binding in root.descendants().filter_map(ast::LetStmt::cast) {
        if inside_item(binding.syntax(), cell_body.syntax()) || binding.ty().is_some() {
            continue;
        }
        let (Some(ast::Pat::IdentPat(pattern)), Some(value)) =
            (binding.pat(), binding.initializer())
        else {
            continue;
        };
        let Some(name) = pattern.name().map(|n| n.text().to_string()) else {
            continue;
        };
        if bindings.get(&name) == Some(&1) && is_rdd_chain(&value, &fusable, &contexts) {
            fusable.insert(name);
        }
    }
    // Byte offsets in `code` of the parse's offsets.
    let at = |offset: ra_ap_syntax::TextSize| usize::from(offset) - before.len() + rust_start;

    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for reduce in root.descendants().filter_map(ast::MethodCallExpr::cast) {
        if inside_item(reduce.syntax(), cell_body.syntax()) {
            continue;
        }
        let Some(chain) = Chain::of(&reduce, &fusable, &contexts) else {
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
    fn of(
        reduce: &ast::MethodCallExpr,
        fusable: &BTreeSet<String>,
        contexts: &BTreeSet<&str>,
    ) -> Option<Chain> {
        let (reduce_name, reduce_args) = one_argument_call(reduce, "reduce")?;
        let ast::Expr::MethodCallExpr(map) = reduce.receiver()? else {
            return None;
        };
        let (map_name, map_args) = one_argument_call(&map, "map")?;
        if !is_rdd_chain(&map.receiver()?, fusable, contexts) {
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

/// Whether `expr` is surely an `Rdd`: a method chain from a variable of `rdds` through
/// [`RDD_TO_RDD`] and [`SAME_KIND`] methods, or from one of `contexts` through a
/// [`CONTEXT_TO_RDD`] method and then those.
fn is_rdd_chain(expr: &ast::Expr, rdds: &BTreeSet<String>, contexts: &BTreeSet<&str>) -> bool {
    let mut methods = Vec::new();
    let mut at = expr.clone();
    while let ast::Expr::MethodCallExpr(call) = &at {
        let (Some(name), Some(receiver)) = (call.name_ref(), call.receiver()) else {
            return false;
        };
        methods.push(name.text().to_string());
        at = receiver;
    }
    let ast::Expr::PathExpr(root) = at else {
        return false;
    };
    let Some(root) = root.path().filter(|p| p.qualifier().is_none()) else {
        return false;
    };
    let root = root.syntax().text().to_string();
    // `methods` runs from the last call to the first.
    let mut from_root = methods.iter().rev();
    let starts_as_rdd = if contexts.contains(root.as_str()) {
        from_root
            .next()
            .is_some_and(|first| CONTEXT_TO_RDD.contains(&first.as_str()))
    } else {
        rdds.contains(&root)
    };
    starts_as_rdd
        && from_root.all(|m| RDD_TO_RDD.contains(&m.as_str()) || SAME_KIND.contains(&m.as_str()))
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
        let fused = fuse(code, &["points"], &[]).unwrap();
        assert_eq!(
            fused,
            "let (g, n) = points\n    .map_reduce(move |p| (p * w, 1u64),\n    // add them\n    |a, b| (a.0 + b.0, a.1 + b.1));\nw -= g;"
        );
        assert_eq!(fused.lines().count(), code.lines().count());
        // On one line, and with a trailing comma after the map's argument.
        assert_eq!(
            fuse("nums.map(|x| x * 2,).reduce(|a, b| a + b)", &["nums"], &[]).unwrap(),
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
            "other_context.parallelize(vec![1], 1).map(|x| x).reduce(|a, b| a + b)",
            "sc.read_csv(\"t.csv\").filter(|r| true).map(|x| x).reduce(|a, b| a + b)",
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
            assert_eq!(fuse(code, &session, &["sc"]), None, "{code}");
        }
        assert_eq!(
            fuse("nums.map(|x| x).reduce(|a, b| a + b)", &[] as &[&str], &[]),
            None
        );
    }

    #[test]
    fn a_variable_the_cell_binds_once_to_an_rdd_chain_is_fused_on() {
        let code = "let points = sc.text_file(\"p.txt\", 4).map(|l: String| l.len()).cache();\nlet evens = points.filter(|n| n % 2 == 0);\nlet total = evens.map(|n| n * 2).reduce(|a, b| a + b);";
        assert_eq!(
            fuse(code, &[] as &[&str], &["sc"]).unwrap(),
            "let points = sc.text_file(\"p.txt\", 4).map(|l: String| l.len()).cache();\nlet evens = points.filter(|n| n % 2 == 0);\nlet total = evens.map_reduce(|n| n * 2,|a, b| a + b);"
        );
        // On a chain of RDD methods itself.
        assert_eq!(
            fuse(
                "sc.parallelize(v, 2).filter(|x| *x > 1).map(|x| x).reduce(|a, b| a + b)",
                &[] as &[&str],
                &["sc"]
            )
            .unwrap(),
            "sc.parallelize(v, 2).filter(|x| *x > 1).map_reduce(|x| x,|a, b| a + b)"
        );
        // From a session RDD, through methods that keep it one.
        assert!(
            fuse("let pairs = nums.key_by(|n| n % 3).reduce_by_key(|a, b| a + b).values();\npairs.map(|n| n).reduce(|a, b| a + b)", &["nums"], &["sc"])
                .unwrap()
                .contains("pairs.map_reduce(")
        );
        for code in [
            // A DataFrame's chain, a chain through a method the list does not know, a type
            // written out, a variable bound twice, a context the cell binds again.
            "let df = sc.read_csv(\"t.csv\").cache();\ndf.map(|r| r).reduce(|a, b| a)",
            "let v = nums.collect();\nv.map(|x| x).reduce(|a, b| a + b)",
            "let r: Rdd<u64> = nums.map(|x| x);\nr.map(|x| x).reduce(|a, b| a + b)",
            "let r = nums.map(|x| x);\nlet r = r.into_iter();\nr.map(|x| x).reduce(|a, b| a + b)",
            "let sc = other();\nlet r = sc.parallelize(vec![1], 1);\nr.map(|x| x).reduce(|a, b| a + b)",
        ] {
            assert_eq!(fuse(code, &["nums"], &["sc"]), None, "{code}");
        }
    }

    #[test]
    fn chains_inside_each_other_and_after_command_lines_are_each_fused() {
        let code = ":dep rand = \"0.8\"\nlet t = nums.map(move |x| x + other.map(|y| y).reduce(|a, b| a.max(b))).reduce(|a, b| a + b);";
        assert_eq!(
            fuse(code, &["nums", "other"], &[]).unwrap(),
            ":dep rand = \"0.8\"\nlet t = nums.map_reduce(move |x| x + other.map_reduce(|y| y,|a, b| a.max(b)),|a, b| a + b);"
        );
    }
}
