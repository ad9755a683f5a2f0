//! The lines of the history file: a cell, or a kernel's claim of a session number, one JSON
//! object a line; and what the lines say together (the highest session number, who owns one).

use serde::{Deserialize, Serialize};

/// One executed cell, as the history file keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The kernel process that ran it (1, 2, …).
    pub session: u64,
    /// Its execution count in that session.
    pub line: u64,
    /// Its code.
    pub input: String,
    /// The `text/plain` of its value, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The line a kernel writes when it starts, claiming its session number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStart {
    /// The session number claimed: one above the highest in the file at the time.
    pub session: u64,
    /// When the session began (ISO 8601, UTC).
    pub started: String,
    /// A random id of the kernel process, to tell whose claim came first.
    pub kernel: String,
}

/// One line of the history file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum HistoryRecord {
    /// One executed cell.
    Cell(HistoryEntry),
    /// A kernel's claim of a session number, written as it starts.
    SessionStart(SessionStart),
}

impl HistoryRecord {
    fn session(&self) -> u64 {
        match self {
            HistoryRecord::Cell(cell) => cell.session,
            HistoryRecord::SessionStart(start) => start.session,
        }
    }
}

/// The records in the text of a history file, and how many lines were not records (a
/// line cut short by a crash, say), which are skipped.
pub(super) fn parse_records(text: &str) -> (Vec<HistoryRecord>, usize) {
    let mut records = Vec::new();
    let mut unreadable = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(_) => unreadable += 1,
        }
    }
    (records, unreadable)
}

/// The highest session number in `records` (0 for none).
pub(super) fn highest_session(records: &[HistoryRecord]) -> u64 {
    records
        .iter()
        .map(HistoryRecord::session)
        .max()
        .unwrap_or(0)
}

/// The kernel whose start line for `session` comes first in `records`: the owner of that
/// session number.
pub(super) fn session_owner(records: &[HistoryRecord], session: u64) -> Option<&str> {
    records.iter().find_map(|record| match record {
        HistoryRecord::SessionStart(start) if start.session == session => {
            Some(start.kernel.as_str())
        }
        _ => None,
    })
}

/// A cell of `session`, for tests.
#[cfg(test)]
pub(crate) fn cell(session: u64, line: u64, input: &str, output: Option<&str>) -> HistoryEntry {
    HistoryEntry {
        session,
        line,
        input: input.to_owned(),
        output: output.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_line_by_line_skipping_broken_ones() {
        let text = concat!(
            "{\"session\":4,\"started\":\"2025-01-01T00:00:00.000000Z\",\"kernel\":\"k1\"}\n",
            "{\"session\":4,\"line\":1,\"input\":\"x\",\"output\":\"1\"}\n",
            "\n",
            "{\"session\":4,\"line\":2,\"inp\n",
            "{\"session\":5,\"line\":1,\"input\":\"y\"}\n",
        );
        let (records, unreadable) = parse_records(text);
        assert_eq!(unreadable, 1);
        assert_eq!(
            records,
            [
                HistoryRecord::SessionStart(SessionStart {
                    session: 4,
                    started: "2025-01-01T00:00:00.000000Z".into(),
                    kernel: "k1".into()
                }),
                HistoryRecord::Cell(cell(4, 1, "x", Some("1"))),
                HistoryRecord::Cell(cell(5, 1, "y", None)),
            ]
        );
        assert_eq!(highest_session(&records), 5);
        assert_eq!(highest_session(&[]), 0);
    }

    #[test]
    fn the_first_start_line_owns_a_session_number() {
        let start = |session, kernel: &str| {
            HistoryRecord::SessionStart(SessionStart {
                session,
                started: String::new(),
                kernel: kernel.into(),
            })
        };
        let records = [
            start(1, "a"),
            HistoryRecord::Cell(cell(1, 1, "x", None)),
            start(2, "b"),
            start(2, "c"),
            start(3, "c"),
        ];
        assert_eq!(session_owner(&records, 1), Some("a"));
        assert_eq!(session_owner(&records, 2), Some("b"));
        assert_eq!(session_owner(&records, 3), Some("c"));
        assert_eq!(session_owner(&records, 4), None);
    }
}
