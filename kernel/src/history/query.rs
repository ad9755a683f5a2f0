//! What a `history_request` asks for, and the cells that answer it. The three access types
//! follow IPython's `HistoryManager`:
//! * `tail`: the last `n` cells over all sessions;
//! * `range`: cells of one session (0 is the current one, negative numbers count back
//!   from it) with execution counts from `start` up to `stop` (excluded; none or 0 means
//!   to the end; negative values count back from the end). As in IPython, the cells of
//!   the current session asked for as session 0 come back with session number 0.
//! * `search`: cells whose whole input matches the glob `pattern` (`*`, `?` and `[…]`
//!   as in SQLite's `GLOB`, case-sensitive; wrap it in `*` to match anywhere), the `n`
//!   most recent if `n` is given, with `unique` keeping only the latest of equal inputs.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};
use tracing::debug;

use super::glob::glob_matches;
use super::records::HistoryEntry;

/// What a `history_request` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Which cells to return (`hist_access_type` and its parameters).
    pub access: HistoryAccess,
    /// Whether each entry carries the cell's output too.
    pub output: bool,
}

/// The three ways of reading history the Jupyter protocol defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryAccess {
    /// The last `n` cells over all sessions (`None`: all of them).
    Tail {
        /// How many of the latest cells to return; `None` for all.
        n: Option<usize>,
    },
    /// The cells of `session` (0 the current, negative counts back) with execution counts
    /// in `start..stop`.
    Range {
        /// The session number; 0 for the current session, negative to count back from it.
        session: i64,
        /// The first execution count returned; negative counts back from the session's end.
        start: i64,
        /// The execution count to stop before; `None` or 0 for the session's end, negative
        /// to count back from it.
        stop: Option<i64>,
    },
    /// The cells whose input matches the glob `pattern`: the `n` most recent (`None`: all),
    /// each distinct input once (its latest run) with `unique`.
    Search {
        /// The glob a cell's whole input must match (`*`, `?`, `[…]`; case-sensitive).
        pattern: String,
        /// How many of the most recent matches to return; `None` for all.
        n: Option<usize>,
        /// Whether to keep only the latest run of each distinct input.
        unique: bool,
    },
    /// An access type this kernel does not know: answered with no entries, as IPython does.
    Unknown(String),
}

/// The content of a `history_request`, as clients send it.
#[derive(Deserialize)]
struct RequestContent {
    hist_access_type: String,
    #[serde(default)]
    output: bool,
    #[serde(default)]
    session: Option<i64>,
    #[serde(default)]
    start: Option<i64>,
    #[serde(default)]
    stop: Option<i64>,
    #[serde(default)]
    n: Option<i64>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    unique: bool,
}

impl HistoryQuery {
    /// Reads a `history_request`'s content. A negative `n` means no limit, as in SQLite; a
    /// search without a pattern matches everything (`*`, IPython's default).
    pub fn from_content(content: &Value) -> Result<HistoryQuery, serde_json::Error> {
        let request = RequestContent::deserialize(content)?;
        let n = request.n.and_then(|n| usize::try_from(n).ok());
        let access = match request.hist_access_type.as_str() {
            "tail" => HistoryAccess::Tail { n },
            "range" => HistoryAccess::Range {
                session: request.session.unwrap_or(0),
                start: request.start.unwrap_or(0),
                stop: request.stop,
            },
            "search" => HistoryAccess::Search {
                pattern: request.pattern.unwrap_or_else(|| "*".to_owned()),
                n,
                unique: request.unique,
            },
            other => HistoryAccess::Unknown(other.to_owned()),
        };
        Ok(HistoryQuery {
            access,
            output: request.output,
        })
    }
}

/// The `history` list of a `history_reply`: what `query` selects from `entries` (cells of
/// every session, in any order) while `current_session` runs. Each entry is
/// `[session, line, input]`, or `[session, line, [input, output]]` with `output`.
pub fn answer(query: &HistoryQuery, current_session: u64, entries: &[HistoryEntry]) -> Vec<Value> {
    let mut ordered: Vec<&HistoryEntry> = entries.iter().collect();
    ordered.sort_by_key(|entry| (entry.session, entry.line));
    let selected: Vec<(u64, &HistoryEntry)> = match &query.access {
        HistoryAccess::Tail { n } => tail(&ordered, *n)
            .iter()
            .map(|entry| (entry.session, *entry))
            .collect(),
        HistoryAccess::Range {
            session,
            start,
            stop,
        } => range(&ordered, current_session, *session, *start, *stop),
        HistoryAccess::Search { pattern, n, unique } => search(&ordered, pattern, *n, *unique)
            .into_iter()
            .map(|entry| (entry.session, entry))
            .collect(),
        HistoryAccess::Unknown(access) => {
            debug!(%access, "history_request with an unknown access type; answering nothing");
            Vec::new()
        }
    };
    selected
        .into_iter()
        .map(|(session, entry)| {
            if query.output {
                json!([session, entry.line, [entry.input, entry.output]])
            } else {
                json!([session, entry.line, entry.input])
            }
        })
        .collect()
}

/// The last `n` of `ordered` (all of them for `None`).
fn tail<'a>(ordered: &'a [&'a HistoryEntry], n: Option<usize>) -> &'a [&'a HistoryEntry] {
    let n = n.unwrap_or(ordered.len()).min(ordered.len());
    &ordered[ordered.len() - n..]
}

/// The cells of one session with execution counts in `start..stop`, each with the session
/// number to report: the one asked for, so 0 when the current session was asked for as 0 (as
/// IPython reports it) and its own number when asked for by number (as a client that read
/// the number from `tail` expects — jupyter_kernel_test checks it). `session` 0 or less
/// counts back from the current one; a negative `start` or `stop` counts back from the
/// end of the session, and `stop` none or 0 means to its end (Python's slices).
fn range<'a>(
    ordered: &[&'a HistoryEntry],
    current_session: u64,
    session: i64,
    start: i64,
    stop: Option<i64>,
) -> Vec<(u64, &'a HistoryEntry)> {
    let current = i64::try_from(current_session).unwrap_or(i64::MAX);
    let wanted = if session <= 0 {
        current.saturating_add(session)
    } else {
        session
    };
    let Ok(wanted) = u64::try_from(wanted) else {
        return Vec::new();
    };
    let cells: Vec<&'a HistoryEntry> = ordered
        .iter()
        .copied()
        .filter(|entry| entry.session == wanted)
        .collect();
    // As IPython's `input_hist`, which holds lines 0..=last.
    let end = cells
        .iter()
        .map(|entry| i64::try_from(entry.line).unwrap_or(i64::MAX))
        .max()
        .map_or(0, |last| last.saturating_add(1));
    let start = if start < 0 { start + end } else { start };
    let stop = match stop {
        None | Some(0) => end,
        Some(stop) if stop > end => end,
        Some(stop) if stop < 0 => stop + end,
        Some(stop) => stop,
    };
    let reported = if session == 0 { 0 } else { wanted };
    cells
        .into_iter()
        .filter(|entry| {
            let line = i64::try_from(entry.line).unwrap_or(i64::MAX);
            start <= line && line < stop
        })
        .map(|entry| (reported, entry))
        .collect()
}

/// The cells of `ordered` whose whole input matches `pattern`; with `unique` only the
/// latest of each distinct input; with `n` only the `n` most recent; oldest first.
fn search<'a>(
    ordered: &[&'a HistoryEntry],
    pattern: &str,
    n: Option<usize>,
    unique: bool,
) -> Vec<&'a HistoryEntry> {
    let mut found: Vec<&'a HistoryEntry> = ordered
        .iter()
        .copied()
        .filter(|entry| glob_matches(pattern, &entry.input))
        .collect();
    if unique {
        let mut seen = HashSet::new();
        found.reverse();
        found.retain(|entry| seen.insert(entry.input.as_str()));
        found.reverse();
    }
    if let Some(n) = n {
        found.drain(..found.len().saturating_sub(n));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::records::cell;

    /// Session 1: three cells; session 2: two; session 3 (current): two.
    fn sample() -> Vec<HistoryEntry> {
        vec![
            cell(1, 1, "let a = 1;", None),
            cell(1, 2, "a + 1", Some("2")),
            cell(1, 3, "println!(\"hi\");", None),
            cell(2, 1, "a + 1", Some("2")),
            cell(2, 2, "let b = 2;", None),
            cell(3, 1, "b * 10", Some("20")),
            cell(3, 2, "a + 1", None),
        ]
    }

    fn query(access: HistoryAccess) -> HistoryQuery {
        HistoryQuery {
            access,
            output: false,
        }
    }

    fn ask(access: HistoryAccess) -> Vec<Value> {
        answer(&query(access), 3, &sample())
    }
    #[test]
    fn tail_is_the_last_cells_over_all_sessions() {
        assert_eq!(
            ask(HistoryAccess::Tail { n: Some(3) }),
            [
                json!([2, 2, "let b = 2;"]),
                json!([3, 1, "b * 10"]),
                json!([3, 2, "a + 1"])
            ]
        );
        assert_eq!(ask(HistoryAccess::Tail { n: Some(100) }).len(), 7);
        assert_eq!(ask(HistoryAccess::Tail { n: None }).len(), 7);
        assert!(ask(HistoryAccess::Tail { n: Some(0) }).is_empty());
        // Order comes from (session, line), not from the order of the file.
        let mut shuffled = sample();
        shuffled.reverse();
        assert_eq!(
            answer(&query(HistoryAccess::Tail { n: Some(2) }), 3, &shuffled),
            [json!([3, 1, "b * 10"]), json!([3, 2, "a + 1"])]
        );
    }

    #[test]
    fn range_of_the_current_session_reports_it_as_asked_for() {
        let range = |session, start, stop| HistoryAccess::Range {
            session,
            start,
            stop,
        };
        assert_eq!(
            ask(range(0, 0, None)),
            [json!([0, 1, "b * 10"]), json!([0, 2, "a + 1"])]
        );
        assert_eq!(
            ask(range(3, 2, None)),
            [json!([3, 2, "a + 1"])],
            "asked for by number"
        );
        assert_eq!(
            ask(range(0, 1, Some(2))),
            [json!([0, 1, "b * 10"])],
            "stop excluded"
        );
        assert_eq!(
            ask(range(0, -1, None)),
            [json!([0, 2, "a + 1"])],
            "from the end"
        );
        assert_eq!(ask(range(0, 0, Some(-1))), [json!([0, 1, "b * 10"])]);
        assert_eq!(ask(range(0, 1, Some(0))).len(), 2, "stop 0 is the end");
        assert!(ask(range(0, 5, None)).is_empty());
    }

    #[test]
    fn range_of_earlier_sessions_counts_back_from_the_current_one() {
        let range = |session, start, stop| HistoryAccess::Range {
            session,
            start,
            stop,
        };
        assert_eq!(
            ask(range(-1, 1, None)),
            [json!([2, 1, "a + 1"]), json!([2, 2, "let b = 2;"])]
        );
        assert_eq!(
            ask(range(-2, 2, Some(4))),
            [json!([1, 2, "a + 1"]), json!([1, 3, "println!(\"hi\");"])]
        );
        assert_eq!(ask(range(1, 1, Some(2))), [json!([1, 1, "let a = 1;"])]);
        assert!(
            ask(range(-3, 0, None)).is_empty(),
            "before the first session"
        );
        assert!(ask(range(-100, 0, None)).is_empty());
        assert!(ask(range(9, 0, None)).is_empty(), "no such session");
    }

    #[test]
    fn search_matches_whole_inputs_and_keeps_the_most_recent() {
        let search = |pattern: &str, n, unique| HistoryAccess::Search {
            pattern: pattern.to_owned(),
            n,
            unique,
        };
        assert_eq!(
            ask(search("a + 1", None, false)),
            [
                json!([1, 2, "a + 1"]),
                json!([2, 1, "a + 1"]),
                json!([3, 2, "a + 1"])
            ]
        );
        assert!(
            ask(search("+", None, false)).is_empty(),
            "not wrapped in `*`"
        );
        assert_eq!(ask(search("*+*", None, false)).len(), 3);
        assert_eq!(
            ask(search("let*", Some(1), false)),
            [json!([2, 2, "let b = 2;"])],
            "the n most recent"
        );
        assert_eq!(
            ask(search("*", None, true)),
            [
                json!([1, 1, "let a = 1;"]),
                json!([1, 3, "println!(\"hi\");"]),
                json!([2, 2, "let b = 2;"]),
                json!([3, 1, "b * 10"]),
                json!([3, 2, "a + 1"])
            ],
            "unique keeps the latest run of each input"
        );
        assert_eq!(
            ask(search("*", Some(2), true)),
            [json!([3, 1, "b * 10"]), json!([3, 2, "a + 1"])]
        );
    }

    #[test]
    fn output_pairs_input_with_the_value_text() {
        let with_output = HistoryQuery {
            access: HistoryAccess::Tail { n: Some(2) },
            output: true,
        };
        assert_eq!(
            answer(&with_output, 3, &sample()),
            [
                json!([3, 1, ["b * 10", "20"]]),
                json!([3, 2, ["a + 1", null]])
            ]
        );
    }

    #[test]
    fn requests_are_read_as_clients_send_them() {
        let parsed = |content: Value| HistoryQuery::from_content(&content).unwrap();
        assert_eq!(
            parsed(json!({"hist_access_type": "tail", "n": 10, "output": false, "raw": true})),
            query(HistoryAccess::Tail { n: Some(10) })
        );
        assert_eq!(
            parsed(json!({"hist_access_type": "tail", "n": -1})).access,
            HistoryAccess::Tail { n: None },
            "a negative limit is no limit"
        );
        assert_eq!(
            parsed(
                json!({"hist_access_type": "range", "session": -1, "start": 1, "stop": null, "output": true})
            ),
            HistoryQuery {
                access: HistoryAccess::Range {
                    session: -1,
                    start: 1,
                    stop: None
                },
                output: true
            }
        );
        assert_eq!(
            parsed(json!({"hist_access_type": "search", "pattern": "*x*", "unique": true})).access,
            HistoryAccess::Search {
                pattern: "*x*".into(),
                n: None,
                unique: true
            }
        );
        assert_eq!(
            parsed(json!({"hist_access_type": "search"})).access,
            HistoryAccess::Search {
                pattern: "*".into(),
                n: None,
                unique: false
            }
        );
        assert_eq!(
            parsed(json!({"hist_access_type": "sideways"})).access,
            HistoryAccess::Unknown("sideways".into())
        );
        assert!(ask(HistoryAccess::Unknown("sideways".into())).is_empty());
        assert!(HistoryQuery::from_content(&json!({"n": 3})).is_err());
        assert!(
            HistoryQuery::from_content(&json!({"hist_access_type": "tail", "n": "3"})).is_err()
        );
    }
}
