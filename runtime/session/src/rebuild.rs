//! What survives when the child process that runs cells is restarted (an interrupted cell that would not
//! stop, or a cell that crashed its process): every variable lived in that process, but the
//! handles among them are only ids of what the driver holds, so they can be made again.
//!
//! * `sc` and any other `Context` variable: bound again to the same driver.
//! * `Rdd<T>`, `DataFrame` and `Accumulator<T>` variables: declared again with their type and
//!   id (`Rdd::__rebuilt`, `DataFrame::__rebuilt`, `Accumulator::__rebuilt`); the driver kept the RDDs' lineage (the
//!   executors their cached partitions) and the accumulators' sums. The session learns each such
//!   variable's id after a cell that may have bound it (`to_read`), by asking the child
//!   (`snapshot_code`), since the child alone holds the values.
//! * Everything else (numbers, strings, vectors, broadcast values, whose copy in the cell is
//!   gone) is lost, and the person is told which, by name and type ([`RestartReport`]).
//!
//! Items (functions, types, `use`s) are not variables: the engine compiles them into every
//! cell, so they survive a restart by themselves.

use std::collections::{BTreeMap, BTreeSet};

/// The kinds of session variables a restart can make again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handle {
    /// A `tessera::Context`: every one is a handle on the session's one driver.
    Context,
    /// A `tessera::Rdd<T>`: an id in the driver's lineage.
    Rdd,
    /// A `tessera::Accumulator<T>`: an id of a sum the driver keeps.
    Accumulator,
    /// A `tessera::DataFrame`: the id of its RDD in the driver's lineage.
    DataFrame,
}

impl Handle {
    /// The expression that reads the id a variable `name` of this kind holds, if it holds one.
    fn id_expression(self, name: &str) -> Option<String> {
        match self {
            Handle::Context => None,
            Handle::Rdd | Handle::DataFrame => Some(format!("{name}.id()")),
            Handle::Accumulator => Some(format!("{name}.__id()")),
        }
    }

    /// The expression that makes a handle of this kind on `id` again, in a cell where `sc` is
    /// bound.
    fn rebuilt_expression(self, id: u64) -> String {
        match self {
            Handle::Context => "sc".to_string(),
            Handle::Rdd => format!("tessera::Rdd::__rebuilt(sc, {id})"),
            Handle::Accumulator => format!("tessera::Accumulator::__rebuilt(sc, {id})"),
            Handle::DataFrame => format!("tessera::DataFrame::__rebuilt(sc, {id})"),
        }
    }
}

/// The kind of handle a variable of type `type_name` (as evcxr spells it: `Rdd<u64>`,
/// `tessera::Rdd<(String, u64)>`, `tessera::Context`, `Accumulator<f64>`) is, if it is one.
pub(crate) fn handle_kind(type_name: &str) -> Option<Handle> {
    let mut name = type_name.trim().trim_start_matches("::");
    for prefix in [
        "tessera::rdd::",
        "tessera::context::",
        "tessera::shared::",
        "tessera::data_frame::",
        "tessera::",
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest;
            break;
        }
    }
    if name == "Context" {
        Some(Handle::Context)
    } else if name.starts_with("Rdd<") && name.ends_with('>') {
        Some(Handle::Rdd)
    } else if name.starts_with("Accumulator<") && name.ends_with('>') {
        Some(Handle::Accumulator)
    } else if name == "DataFrame" {
        Some(Handle::DataFrame)
    } else {
        None
    }
}

/// The ids the session's RDD and accumulator variables hold, as last read from the child:
/// name → (type, id); and the variables whose ids could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KnownIds {
    ids: BTreeMap<String, (String, u64)>,
    /// (name, type) of variables whose ids could not be read: not tried again until a cell
    /// binds them anew, so that one odd variable does not cost every cell a failing read.
    unreadable: BTreeSet<(String, String)>,
}

impl KnownIds {
    /// Forgets variables that no longer exist, or no longer have the type they had.
    pub(crate) fn keep_only(&mut self, variables: &[(String, String)]) {
        self.ids.retain(|name, (type_name, _)| {
            variables.iter().any(|(n, t)| n == name && t == type_name)
        });
        self.unreadable.retain(|v| variables.contains(v));
    }

    /// Records that variable `name` of type `type_name` holds the handle on `id`.
    pub(crate) fn record(&mut self, name: &str, type_name: &str, id: u64) {
        self.unreadable
            .remove(&(name.to_string(), type_name.to_string()));
        self.ids
            .insert(name.to_string(), (type_name.to_string(), id));
    }

    /// Records that what variable `name` of type `type_name` holds could not be read: it will
    /// be reported lost if the session restarts.
    pub(crate) fn unreadable(&mut self, name: &str, type_name: &str) {
        self.ids.remove(name);
        self.unreadable
            .insert((name.to_string(), type_name.to_string()));
    }

    /// The id variable `name` of type `type_name` held when last read.
    pub(crate) fn id(&self, name: &str, type_name: &str) -> Option<u64> {
        self.ids
            .get(name)
            .filter(|(t, _)| t == type_name)
            .map(|(_, id)| *id)
    }
}

/// The variables holding ids (RDDs, accumulators) that must be read after a cell of `code` ran,
/// leaving `variables`: those not known yet (new, or of a new type), and those the cell may have
/// bound anew.
pub(crate) fn to_read(
    code: &str,
    variables: &[(String, String)],
    known: &KnownIds,
) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = variables
        .iter()
        .filter(|(name, type_name)| {
            let unknown = known.id(name, type_name).is_none()
                && !known
                    .unreadable
                    .contains(&(name.clone(), type_name.clone()));
            handle_kind(type_name).is_some_and(|kind| kind.id_expression(name).is_some())
                && (unknown || may_rebind(code, name))
        })
        .cloned()
        .collect();
    found.sort();
    found
}

/// Whether `code` may bind variable `name` anew: it names it in a `let` pattern, assigns to it
/// (`name =`, `name += ..`), lends it mutably (`&mut name`) or calls `clone_from` on it. Text
/// that only looks so (in a string, a comment, a shadowing inner `let`) costs one needless read;
/// a miss would rebuild a handle on an older RDD, so the test leans to yes.
pub(crate) fn may_rebind(code: &str, name: &str) -> bool {
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut from = 0;
    while let Some(found) = code[from..].find(name) {
        let start = from + found;
        let end = start + name.len();
        from = end;
        let whole_word = (start == 0 || !is_ident(bytes[start - 1]))
            && (end == bytes.len() || !is_ident(bytes[end]));
        if !whole_word {
            continue;
        }
        let before = &code[..start];
        let after = code[end..].trim_start();
        let statement = &before[before.rfind([';', '{', '}']).map_or(0, |i| i + 1)..];
        let in_let_pattern = find_word(statement, "let").is_some_and(|at| {
            let pattern = &statement[at..];
            !pattern.contains('=')
        });
        let assigned =
            after.starts_with('=') && !after.starts_with("==") && !after.starts_with("=>")
                || ["+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "<<=", ">>="]
                    .iter()
                    .any(|op| after.starts_with(op));
        let lent_mutably = before.trim_end().ends_with("&mut");
        if in_let_pattern || assigned || lent_mutably || after.starts_with(".clone_from") {
            return true;
        }
    }
    false
}

/// Where the word `word` (not part of a longer identifier) last occurs in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.rmatch_indices(word).map(|(at, _)| at).find(|&at| {
        let before_ok = text[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let after_ok = text[at + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !is_ident(c));
        before_ok && after_ok
    })
}

/// A cell that hands the session the ids the `variables` (name, type) hold, in order, as its
/// result's text, `[3, 5]`; each must be a handle that holds an id ([`to_read`] finds them). A
/// boxed slice, whose `Debug` text is that, and which no rich display (arrays as tables)
/// shows otherwise.
pub(crate) fn snapshot_code(variables: &[(String, String)]) -> String {
    let ids: Vec<String> = variables
        .iter()
        .filter_map(|(name, type_name)| handle_kind(type_name)?.id_expression(name))
        .collect();
    format!("std::boxed::Box::<[u64]>::from([{}])", ids.join(", "))
}

/// Why the ids a cell's handle variables hold could not be read.
#[derive(Debug)]
pub(crate) enum ReadIdsError {
    /// The cell that hands them over failed.
    Run(tessera_cells::CellsError),
    /// It handed over something else than one id per variable (what it handed over).
    Answer(Option<String>),
}

impl std::fmt::Display for ReadIdsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadIdsError::Run(e) => write!(f, "the cell that reads them failed: {e}"),
            ReadIdsError::Answer(answer) => {
                write!(f, "it answered {answer:?} instead of one id per variable")
            }
        }?;
        f.write_str("; if the session's process restarts, they are reported lost, not rebuilt")
    }
}

/// The ids a [`snapshot_code`] cell handed over (`[3, 5]`), if there are `count` of them.
pub(crate) fn parse_snapshot(text: &str, count: usize) -> Option<Vec<u64>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let ids: Vec<u64> = inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    (ids.len() == count).then_some(ids)
}

/// The expression that connects a cell to the session's driver.
pub(crate) const CONNECT: &str = "tessera::Context::from_session()";

/// The cell that binds `sc` to the driver in a new child process, as the session's prelude did.
pub(crate) fn bind_context_code(connect: &str) -> String {
    format!("let sc: tessera::Context = {connect}; tessera::install_panic_hook(sc);")
}

/// How to make the handles among `variables` (the session's variables before its child was
/// restarted) again: a cell to run, and the variables it makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rebuild {
    /// Binds `sc`, then declares each rebuilt variable again.
    pub code: String,
    /// The variables the code declares again (name, type), `sc` among them.
    pub rebuilt: Vec<(String, String)>,
}

/// Plans the [`Rebuild`] of `variables` with `sc` connecting through `connect`.
pub(crate) fn plan(connect: &str, variables: &[(String, String)], known: &KnownIds) -> Rebuild {
    let mut code = bind_context_code(connect);
    let mut rebuilt = vec![("sc".to_string(), "tessera::Context".to_string())];
    let mut sorted = variables.to_vec();
    sorted.sort();
    for (name, type_name) in sorted {
        let value = match handle_kind(&type_name) {
            Some(Handle::Context) if name == "sc" => continue,
            Some(Handle::Context) => Handle::Context.rebuilt_expression(0),
            Some(kind) => match known.id(&name, &type_name) {
                Some(id) => kind.rebuilt_expression(id),
                None => continue,
            },
            None => continue,
        };
        // Mutable, as it may have been: a later cell may assign to it.
        code.push_str(&format!(
            "\n#[allow(unused_mut)] let mut {name}: {type_name} = {value};"
        ));
        rebuilt.push((name, type_name));
    }
    Rebuild { code, rebuilt }
}

/// What a restart of the cell's process did to the session's variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartReport {
    /// Variables made again (name, type).
    pub rebuilt: Vec<(String, String)>,
    /// Variables gone (name, type): they must be computed again.
    pub lost: Vec<(String, String)>,
}

impl RestartReport {
    /// The report for a session that held `before` and made `rebuilt` again.
    pub fn new(before: &[(String, String)], rebuilt: &[(String, String)]) -> RestartReport {
        let mut lost: Vec<(String, String)> = before
            .iter()
            .filter(|(name, _)| !rebuilt.iter().any(|(n, _)| n == name))
            .cloned()
            .collect();
        lost.sort();
        RestartReport {
            rebuilt: rebuilt.to_vec(),
            lost,
        }
    }

    /// What to tell the person, after `what_happened` (a sentence saying why the process was
    /// restarted).
    pub fn message(&self, what_happened: &str) -> String {
        let list = |variables: &[(String, String)]| {
            variables
                .iter()
                .map(|(name, type_name)| format!("{name}: {}", short_type(type_name)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut message = format!(
            "{what_happened}\nRebuilt: {} (the driver kept the RDDs' lineage and cached partitions).",
            list(&self.rebuilt)
        );
        if self.lost.is_empty() {
            message.push_str("\nNo other variable was lost.");
        } else {
            message.push_str(&format!(
                "\nLost: {}. Run the cells that defined them again.",
                list(&self.lost)
            ));
        }
        message
    }
}

/// A type as people read it: without the `tessera::` path (`Rdd<u64>`, `Context`).
fn short_type(type_name: &str) -> &str {
    type_name.strip_prefix("tessera::").unwrap_or(type_name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (name, type) pairs as the engine lists variables.
    pub(crate) fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn handles_are_known_by_their_type() {
        assert_eq!(handle_kind("tessera::Context"), Some(Handle::Context));
        assert_eq!(handle_kind("Context"), Some(Handle::Context));
        assert_eq!(handle_kind("Rdd<u64>"), Some(Handle::Rdd));
        assert_eq!(
            handle_kind("tessera::Rdd<(String, Vec<u64>)>"),
            Some(Handle::Rdd)
        );
        assert_eq!(handle_kind("tessera::rdd::Rdd<u64>"), Some(Handle::Rdd));
        assert_eq!(handle_kind("DataFrame"), Some(Handle::DataFrame));
        assert_eq!(
            handle_kind("tessera::data_frame::DataFrame"),
            Some(Handle::DataFrame)
        );
        assert_eq!(handle_kind("Vec<Rdd<u64>>"), None);
        assert_eq!(handle_kind("Option<tessera::Context>"), None);
        assert_eq!(handle_kind("tessera::Broadcast<u64>"), None);
        assert_eq!(handle_kind("Accumulator<f64>"), Some(Handle::Accumulator));
        assert_eq!(
            handle_kind("tessera::Accumulator<u64>"),
            Some(Handle::Accumulator)
        );
        assert_eq!(handle_kind("u64"), None);
    }

    #[test]
    fn a_cell_may_rebind_what_it_lets_assigns_or_lends_mutably() {
        assert!(may_rebind("let nums = sc.parallelize(v, 2);", "nums"));
        assert!(may_rebind("let mut nums = x;", "nums"));
        assert!(may_rebind("let (a, nums) = (x, y);", "nums"));
        assert!(may_rebind("for i in 0..3 { nums = nums.map(f); }", "nums"));
        assert!(may_rebind("nums=x", "nums"));
        assert!(may_rebind("std::mem::swap(&mut nums, &mut other);", "nums"));
        assert!(may_rebind("nums.clone_from(&other);", "nums"));
        assert!(!may_rebind("nums.count()", "nums"));
        assert!(!may_rebind("let total = nums.count();", "nums"));
        assert!(!may_rebind("if nums.count() == 3 { 1 } else { 2 }", "nums"));
        assert!(!may_rebind(
            "let n = numsx; numsx = 1; let y = other_nums;",
            "nums"
        ));
        assert!(!may_rebind("match nums.count() { 0 => 1, _ => 2 }", "nums"));
        assert!(!may_rebind("nums == other", "nums"));
    }

    #[test]
    fn rdd_ids_are_read_for_new_and_rebound_variables_only() {
        let mut known = KnownIds::default();
        known.record("nums", "Rdd<u64>", 1);
        known.record("words", "Rdd<String>", 2);
        let after = vars(&[
            ("nums", "Rdd<u64>"),
            ("words", "Rdd<String>"),
            ("pairs", "Rdd<(String, u64)>"),
            ("k", "u64"),
            ("sc", "tessera::Context"),
        ]);
        assert_eq!(
            to_read("let pairs = words.map(f); nums.count()", &after, &known),
            vars(&[("pairs", "Rdd<(String, u64)>")])
        );
        assert_eq!(
            to_read("nums = nums.filter(g);", &after, &known),
            vars(&[("nums", "Rdd<u64>"), ("pairs", "Rdd<(String, u64)>")])
        );
        // A variable that changed type is read again.
        known.record("pairs", "Rdd<u64>", 3);
        assert_eq!(
            to_read("1 + 1", &after, &known),
            vars(&[("pairs", "Rdd<(String, u64)>")])
        );
        known.keep_only(&after);
        assert_eq!(known.id("pairs", "Rdd<u64>"), None);
        assert_eq!(known.id("nums", "Rdd<u64>"), Some(1));
        // A variable that could not be read is not tried again until a cell binds it.
        known.unreadable("pairs", "Rdd<(String, u64)>");
        assert_eq!(to_read("1 + 1", &after, &known), vec![]);
        assert_eq!(
            to_read("let pairs = words.map(g);", &after, &known),
            vars(&[("pairs", "Rdd<(String, u64)>")])
        );
        known.unreadable("nums", "Rdd<u64>");
        assert_eq!(known.id("nums", "Rdd<u64>"), None, "no stale id is kept");
    }

    #[test]
    fn snapshots_are_asked_for_and_read_back() {
        assert_eq!(
            snapshot_code(&vars(&[("a", "Rdd<u64>"), ("hits", "Accumulator<u64>")])),
            "std::boxed::Box::<[u64]>::from([a.id(), hits.__id()])"
        );
        assert_eq!(parse_snapshot("[3, 15]", 2), Some(vec![3, 15]));
        assert_eq!(parse_snapshot(" [7] \n", 1), Some(vec![7]));
        assert_eq!(parse_snapshot("[3, 15]", 3), None);
        assert_eq!(parse_snapshot("[3, x]", 2), None);
        assert_eq!(parse_snapshot("3, 15", 2), None);
    }

    #[test]
    fn a_rebuild_binds_sc_and_declares_known_handles_again() {
        let mut known = KnownIds::default();
        known.record("evens", "Rdd<u64>", 4);
        known.record("hits", "Accumulator<u64>", 2);
        let before = vars(&[
            ("sc", "tessera::Context"),
            ("evens", "Rdd<u64>"),
            ("unknown", "Rdd<u64>"),
            ("ctx", "tessera::Context"),
            ("hits", "Accumulator<u64>"),
            ("k", "u64"),
        ]);
        let rebuild = plan("tessera::Context::connect(\"s\", 7)", &before, &known);
        assert_eq!(
            rebuild.code,
            "let sc: tessera::Context = tessera::Context::connect(\"s\", 7); tessera::install_panic_hook(sc);\n\
             #[allow(unused_mut)] let mut ctx: tessera::Context = sc;\n\
             #[allow(unused_mut)] let mut evens: Rdd<u64> = tessera::Rdd::__rebuilt(sc, 4);\n\
             #[allow(unused_mut)] let mut hits: Accumulator<u64> = tessera::Accumulator::__rebuilt(sc, 2);"
        );
        assert_eq!(
            rebuild.rebuilt,
            vars(&[
                ("sc", "tessera::Context"),
                ("ctx", "tessera::Context"),
                ("evens", "Rdd<u64>"),
                ("hits", "Accumulator<u64>"),
            ])
        );
        let report = RestartReport::new(&before, &rebuild.rebuilt);
        assert_eq!(report.lost, vars(&[("k", "u64"), ("unknown", "Rdd<u64>")]));
    }

    #[test]
    fn sc_is_rebuilt_even_when_it_was_not_a_variable() {
        let rebuild = plan("c", &[], &KnownIds::default());
        assert_eq!(rebuild.rebuilt, vars(&[("sc", "tessera::Context")]));
    }

    #[test]
    fn the_report_names_what_was_rebuilt_and_what_was_lost() {
        let before = vars(&[
            ("sc", "tessera::Context"),
            ("nums", "tessera::Rdd<u64>"),
            ("names", "Vec<String>"),
        ]);
        let rebuilt = vars(&[("sc", "tessera::Context"), ("nums", "tessera::Rdd<u64>")]);
        let report = RestartReport::new(&before, &rebuilt);
        assert_eq!(
            report.message("Interrupted."),
            "Interrupted.\n\
             Rebuilt: sc: Context, nums: Rdd<u64> (the driver kept the RDDs' lineage and cached partitions).\n\
             Lost: names: Vec<String>. Run the cells that defined them again."
        );
        let nothing_lost = RestartReport::new(&rebuilt, &rebuilt);
        assert!(
            nothing_lost
                .message("x")
                .ends_with("No other variable was lost.")
        );
    }
}
