//! Which RDDs the session's variables can still reach, so that the driver can drop the shuffle
//! outputs and cached partitions of every other RDD (Spark's ContextCleaner, which learns the
//! same from the JVM's garbage collector). An `Rdd<T>` (or a `DataFrame`) is a `Copy` id, so nothing is told when
//! one goes out of scope; instead, after each cell, the session's variables are the roots: the
//! ids its `Rdd` variables hold (read after the cell, see [`rebuild`](crate::rebuild)) reach
//! their lineage, and nothing else can reach an RDD.
//!
//! Only when every variable's holdings are known: a variable of a type of the cell's own (a
//! struct that may hold an `Rdd`), a `Vec<Rdd<T>>`, or an `Rdd` whose id could not be read
//! keeps everything, as before. What is dropped is recomputable from the lineage the driver
//! keeps, so a wrong root costs time, never an answer.

use crate::rebuild::{Handle, KnownIds, handle_kind};

/// Names in a type that hold no RDD handle: primitives, the standard library's containers and
/// paths, and the values of the `tessera` crate that are not `Rdd`s.
const HOLDS_NO_RDD: &[&str] = &[
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "bool",
    "char",
    "str",
    "static",
    "String",
    "Vec",
    "VecDeque",
    "HashMap",
    "BTreeMap",
    "HashSet",
    "BTreeSet",
    "BinaryHeap",
    "Option",
    "Result",
    "Box",
    "Arc",
    "Rc",
    "Cow",
    "Duration",
    "Instant",
    "PathBuf",
    "Path",
    "std",
    "core",
    "alloc",
    "collections",
    "vec",
    "string",
    "hash_map",
    "btree_map",
    "hash_set",
    "btree_set",
    "binary_heap",
    "vec_deque",
    "sync",
    "rc",
    "borrow",
    "boxed",
    "option",
    "result",
    "time",
    "path",
    "mut",
    "tessera",
    "Context",
    "Accumulator",
    "Broadcast",
    "Stats",
    "Error",
    "StorageLevel",
    "Partitioner",
    "Lineage",
    "LineageEntry",
    // DataFrame plans and results (a `GroupBy` holds a DataFrame: not listed).
    "Schema",
    "Field",
    "DataType",
    "Expr",
    "Value",
    "Rows",
    "CsvOptions",
    "JoinKind",
    "Explain",
];

/// The RDD ids the session's `variables` (name, type) hold, with `known` the ids read after
/// the last cell; `None` when some variable may hold an RDD whose id the session cannot know.
pub(crate) fn live_roots(variables: &[(String, String)], known: &KnownIds) -> Option<Vec<u64>> {
    let mut roots = Vec::new();
    for (name, type_name) in variables {
        match handle_kind(type_name) {
            Some(Handle::Rdd | Handle::DataFrame) => roots.push(known.id(name, type_name)?),
            Some(Handle::Context | Handle::Accumulator) => {}
            None if holds_no_rdd(type_name) => {}
            None => return None,
        }
    }
    roots.sort_unstable();
    roots.dedup();
    Some(roots)
}

/// Whether a value of type `type_name` (as evcxr spells it) surely holds no `Rdd`: every name
/// in it is one of [`HOLDS_NO_RDD`].
fn holds_no_rdd(type_name: &str) -> bool {
    type_name
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit()))
        .all(|word| HOLDS_NO_RDD.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rebuild::tests::vars;

    #[test]
    fn rdd_variables_are_the_roots_when_every_other_variable_holds_plain_data() {
        let mut known = KnownIds::default();
        known.record("ranks", "Rdd<(String, f64)>", 12);
        known.record("links", "tessera::Rdd<(String, Vec<String>)>", 4);
        known.record("again", "Rdd<(String, f64)>", 12);
        let variables = vars(&[
            ("sc", "tessera::Context"),
            ("ranks", "Rdd<(String, f64)>"),
            ("links", "tessera::Rdd<(String, Vec<String>)>"),
            ("again", "Rdd<(String, f64)>"),
            ("iterations", "usize"),
            ("weights", "Vec<f64>"),
            ("centers", "[[f64; 2]; 3]"),
            (
                "lookup",
                "std::collections::HashMap<String, (u64, Option<f32>)>",
            ),
            ("shared", "tessera::Broadcast<Vec<f64>>"),
            ("seen", "Accumulator<u64>"),
            ("name", "&'static str"),
        ]);
        assert_eq!(live_roots(&variables, &known), Some(vec![4, 12]));
    }

    #[test]
    fn data_frame_variables_are_roots_and_their_plans_and_rows_hold_none() {
        let mut known = KnownIds::default();
        known.record("sales", "DataFrame", 7);
        known.record("totals", "tessera::DataFrame", 9);
        let variables = vars(&[
            ("sales", "DataFrame"),
            ("totals", "tessera::DataFrame"),
            ("schema", "tessera::Schema"),
            ("rows", "Rows"),
            ("amount", "Expr"),
            ("options", "CsvOptions"),
        ]);
        assert_eq!(live_roots(&variables, &known), Some(vec![7, 9]));
        // A grouping holds a DataFrame the session cannot read: everything is kept.
        let variables = vars(&[("sales", "DataFrame"), ("grouped", "GroupBy")]);
        assert_eq!(live_roots(&variables, &known), None);
    }

    #[test]
    fn a_variable_that_may_hide_an_rdd_keeps_everything() {
        let mut known = KnownIds::default();
        known.record("ranks", "Rdd<f64>", 12);
        for hidden in [
            "Vec<Rdd<f64>>",
            "Model",
            "(u64, tessera::Rdd<u64>)",
            "Option<Point>",
        ] {
            let variables = vars(&[("ranks", "Rdd<f64>"), ("other", hidden)]);
            assert_eq!(live_roots(&variables, &known), None, "{hidden}");
        }
        // An RDD variable whose id was never read (or could not be).
        let variables = vars(&[("ranks", "Rdd<f64>"), ("fresh", "Rdd<u64>")]);
        assert_eq!(live_roots(&variables, &known), None);
        known.unreadable("ranks", "Rdd<f64>");
        assert_eq!(live_roots(&vars(&[("ranks", "Rdd<f64>")]), &known), None);
    }

    #[test]
    fn a_session_without_rdd_variables_reaches_none() {
        let variables = vars(&[("sc", "tessera::Context"), ("n", "u64")]);
        assert_eq!(
            live_roots(&variables, &KnownIds::default()),
            Some(Vec::new())
        );
    }
}
