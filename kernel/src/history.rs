//! The history of executed cells, kept as IPython keeps it and read back by
//! `history_request`.
//!
//! Every cell a client asks to be remembered (`store_history` and not `silent`) is
//! appended to a per-user history file that outlives the kernel: `$TESSERA_HISTORY_FILE`,
//! else `$XDG_DATA_HOME/tessera/kernel-history.jsonl`, else
//! `~/.local/share/tessera/kernel-history.jsonl`. The file holds one JSON object per line:
//!
//! ```text
//! {"session":7,"started":"2025-06-01T09:30:00.000000Z","kernel":"5b0c…"}
//! {"session":7,"line":1,"input":"let x = 40 + 2;"}
//! {"session":7,"line":2,"input":"x","output":"42"}
//! ```
//!
//! The first kind says a kernel process began session 7; the second is one cell: its
//! session, its execution count (`line`), its code, and the `text/plain` of its value if it
//! had one. Each kernel process is a new session, one above the highest number in the file.
//! Kernels running at the same time append to the same file; a session number belongs to
//! the kernel whose start line for it came first, and the others take the next one.
//!
//! A request reads the file again, so it sees the cells of kernels running beside this
//! one, as IPython's shared database does. Reading or writing the file never fails a cell:
//! errors are logged, and the current session's cells, held in memory, still answer.
//!
//! The three access types follow IPython's `HistoryManager`:
//! * `tail`: the last `n` cells over all sessions;
//! * `range`: cells of one session (0 is the current one, negative numbers count back
//!   from it) with execution counts from `start` up to `stop` (excluded; none or 0 means
//!   to the end; negative values count back from the end). As in IPython, the cells of
//!   the current session asked for as session 0 come back with session number 0.
//! * `search`: cells whose whole input matches the glob `pattern` (`*`, `?` and `[…]`
//!   as in SQLite's `GLOB`, case-sensitive; wrap it in `*` to match anywhere), the `n`
//!   most recent if `n` is given, with `unique` keeping only the latest of equal inputs.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::error::HistoryError;

/// The environment variable that names the history file (tests point it at a scratch
/// file).
pub const HISTORY_FILE_ENV: &str = "TESSERA_HISTORY_FILE";

/// How often a kernel tries for a session number other kernels keep taking.
const SESSION_CLAIM_ATTEMPTS: usize = 10;

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

/// One element of a glob pattern; each but `AnyRun` matches exactly one character.
#[derive(Debug, PartialEq, Eq)]
enum GlobPart {
    /// `*`: any run of characters, newlines included, or none.
    AnyRun,
    /// `?`: any one character.
    AnyOne,
    /// `[…]`: one character in (or, with `[^…]`, not in) the inclusive ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Literal(char),
}

impl GlobPart {
    fn matches(&self, c: char) -> bool {
        match self {
            GlobPart::AnyRun | GlobPart::AnyOne => true,
            GlobPart::Set { negated, ranges } => {
                ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
            }
            GlobPart::Literal(literal) => *literal == c,
        }
    }
}

/// `pattern` as parts, or `None` if a `[` is never closed (such a pattern matches
/// nothing, as in SQLite).
fn parse_glob(pattern: &str) -> Option<Vec<GlobPart>> {
    let mut parts = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '*' => GlobPart::AnyRun,
            '?' => GlobPart::AnyOne,
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges: Vec<(char, char)> = Vec::new();
                // The last single member, which a following `-x` turns into a range.
                let mut prior: Option<char> = None;
                // A `]` right after `[` or `[^` is a member, not the end.
                if chars.next_if_eq(&']').is_some() {
                    ranges.push((']', ']'));
                    prior = Some(']');
                }
                loop {
                    match chars.next()? {
                        ']' => break,
                        '-' if prior.is_some() && chars.peek().is_some_and(|&c| c != ']') => {
                            let high = chars.next()?;
                            let low = prior.take().unwrap_or('-');
                            ranges.pop();
                            ranges.push((low, high));
                        }
                        member => {
                            ranges.push((member, member));
                            prior = Some(member);
                        }
                    }
                }
                GlobPart::Set { negated, ranges }
            }
            literal => GlobPart::Literal(literal),
        });
    }
    Some(parts)
}

/// Whether all of `text` matches the glob `pattern`, as SQLite's `GLOB` (which IPython's
/// history search uses) decides: `*` any run of characters, `?` one character, `[abc]`,
/// `[a-z]` and `[^…]` one character of a set; everything else, case included, stands for
/// itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let Some(parts) = parse_glob(pattern) else {
        return false;
    };
    let text: Vec<char> = text.chars().collect();
    // Greedy matching that backtracks to the last `*`: O(parts × text).
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match parts.get(p) {
            Some(GlobPart::AnyRun) => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(part) if part.matches(text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some((star, matched_up_to)) => {
                    p = star + 1;
                    t = matched_up_to + 1;
                    last_star = Some((star, t));
                }
                None => return false,
            },
        }
    }
    parts[p..].iter().all(|part| *part == GlobPart::AnyRun)
}

/// Where the history file is: `$TESSERA_HISTORY_FILE`, else
/// `$XDG_DATA_HOME/tessera/kernel-history.jsonl`, else
/// `~/.local/share/tessera/kernel-history.jsonl`; `None` without a home directory.
pub fn history_file_from_env() -> Option<PathBuf> {
    history_file_location(
        std::env::var_os(HISTORY_FILE_ENV),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`history_file_from_env`] over given values. Empty values count as unset, and so does a
/// relative `XDG_DATA_HOME` (the XDG base directory specification says to ignore it).
fn history_file_location(
    history_file: Option<OsString>,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let set = |value: Option<OsString>| value.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(file) = set(history_file) {
        return Some(file);
    }
    let data_home = set(xdg_data_home)
        .filter(|dir| dir.is_absolute())
        .or_else(|| set(home).map(|home| home.join(".local").join("share")))?;
    Some(data_home.join("tessera").join("kernel-history.jsonl"))
}

/// The records in the text of a history file, and how many lines were not records (a
/// line cut short by a crash, say), which are skipped.
fn parse_records(text: &str) -> (Vec<HistoryRecord>, usize) {
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
fn highest_session(records: &[HistoryRecord]) -> u64 {
    records
        .iter()
        .map(HistoryRecord::session)
        .max()
        .unwrap_or(0)
}

/// The kernel whose start line for `session` comes first in `records`: the owner of that
/// session number.
fn session_owner(records: &[HistoryRecord], session: u64) -> Option<&str> {
    records.iter().find_map(|record| match record {
        HistoryRecord::SessionStart(start) if start.session == session => {
            Some(start.kernel.as_str())
        }
        _ => None,
    })
}

/// The history of executed cells: the current session's in memory, every session's in the
/// history file (if there is one).
#[derive(Debug)]
pub struct History {
    file: Option<PathBuf>,
    session: u64,
    /// The current session's cells, which answer even when the file cannot be read.
    current: Vec<HistoryEntry>,
    /// A failed write is logged once as a warning, then only at debug level.
    write_failure_logged: bool,
}

impl History {
    /// History kept in memory only, as session 1: nothing outlives the kernel.
    pub fn in_memory() -> History {
        History {
            file: None,
            session: 1,
            current: Vec::new(),
            write_failure_logged: false,
        }
    }

    /// History persisted in `file` (created when first needed), in a new session. If the
    /// file cannot be used the error is logged and the kernel carries on.
    pub fn open(file: PathBuf) -> History {
        let kernel = crate::wire::new_id();
        let session = claim_session(&file, &kernel).unwrap_or_else(|err| {
            warn!("{err}");
            read_records(&file).map_or(1, |records| highest_session(&records) + 1)
        });
        debug!(file = %file.display(), session, "kernel history");
        History {
            file: Some(file),
            session,
            current: Vec::new(),
            write_failure_logged: false,
        }
    }

    /// History in the file [`history_file_from_env`] names, or in memory if there is none.
    pub fn open_default() -> History {
        match history_file_from_env() {
            Some(file) => History::open(file),
            None => {
                warn!(
                    "no home directory (HOME is not set): the kernel keeps its history in memory only; set {HISTORY_FILE_ENV} to keep it in a file"
                );
                History::in_memory()
            }
        }
    }

    /// This kernel's session number.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Remembers cell `line` of this session: its code and the `text/plain` of its value.
    /// Blank cells are not remembered, and trailing newlines are dropped, as IPython does.
    pub fn record(&mut self, line: u64, input: &str, output: Option<String>) {
        let input = input.trim_end_matches(['\n', '\r']);
        if input.trim().is_empty() {
            return;
        }
        let entry = HistoryEntry {
            session: self.session,
            line,
            input: input.to_owned(),
            output,
        };
        let written = match &self.file {
            Some(file) => append_record(file, &entry),
            None => Ok(()),
        };
        if let Err(err) = written {
            if self.write_failure_logged {
                debug!("{err}");
            } else {
                warn!("{err}");
                self.write_failure_logged = true;
            }
        }
        self.current.push(entry);
    }

    /// The `history` list of the reply to `query`.
    pub fn answer(&self, query: &HistoryQuery) -> Vec<Value> {
        let mut entries: Vec<HistoryEntry> = match &self.file {
            Some(file) => match read_records(file) {
                Ok(records) => records
                    .into_iter()
                    .filter_map(|record| match record {
                        HistoryRecord::Cell(cell) if cell.session != self.session => Some(cell),
                        _ => None,
                    })
                    .collect(),
                Err(err) => {
                    warn!("{err}; answering from this session's cells only");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        entries.extend(self.current.iter().cloned());
        answer(query, self.session, &entries)
    }
}

/// Claims a new session number in `file` for `kernel`: one above the highest, unless a
/// kernel starting at the same moment wrote its claim first, in which case the next one.
fn claim_session(file: &Path, kernel: &str) -> Result<u64, HistoryError> {
    for _ in 0..SESSION_CLAIM_ATTEMPTS {
        let session = highest_session(&read_records(file)?) + 1;
        let start = SessionStart {
            session,
            started: crate::wire::now_iso8601(),
            kernel: kernel.to_owned(),
        };
        append_record(file, &start)?;
        if session_owner(&read_records(file)?, session) == Some(kernel) {
            return Ok(session);
        }
    }
    Err(HistoryError::SessionContended {
        path: file.to_owned(),
    })
}

/// The records in `file`; none if it does not exist yet.
fn read_records(file: &Path) -> Result<Vec<HistoryRecord>, HistoryError> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HistoryError::Read {
                path: file.to_owned(),
                source,
            });
        }
    };
    let (records, unreadable) = parse_records(&String::from_utf8_lossy(&bytes));
    if unreadable > 0 {
        debug!(file = %file.display(), unreadable, "skipped lines of the history file that are not history records");
    }
    Ok(records)
}

/// Appends `record` as one line, in one write, so that lines from kernels writing at the
/// same time never mix. The file is readable by its owner only: cells may hold secrets.
fn append_record(file: &Path, record: &impl Serialize) -> Result<(), HistoryError> {
    let write_error = |source| HistoryError::Write {
        path: file.to_owned(),
        source,
    };
    let mut line =
        serde_json::to_string(record).map_err(|err| write_error(std::io::Error::other(err)))?;
    line.push('\n');
    if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut opened = options.open(file).map_err(write_error)?;
    opened.write_all(line.as_bytes()).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(session: u64, line: u64, input: &str, output: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            session,
            line,
            input: input.to_owned(),
            output: output.map(str::to_owned),
        }
    }

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
    fn glob_matches_the_whole_text_as_sqlite_does() {
        assert!(glob_matches("a + 1", "a + 1"));
        assert!(!glob_matches("a", "a + 1"), "no implicit wildcards");
        assert!(glob_matches("a*", "a + 1"));
        assert!(glob_matches("*+*", "a + 1"));
        assert!(glob_matches("*1", "a + 1"));
        assert!(!glob_matches("*2", "a + 1"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("?", ""));
        assert!(glob_matches("a?+?1", "a + 1"));
        assert!(!glob_matches("a?1", "a + 1"));
        assert!(glob_matches("A*", "A"));
        assert!(!glob_matches("A*", "a"), "case-sensitive");
        assert!(glob_matches("*x*", "let y = 1;\nx"), "`*` crosses lines");
        assert!(glob_matches("?é?", "日é本"), "characters, not bytes");
        assert!(glob_matches("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob_matches("*a*b*c*", "xxaxxcxxbxx"));
        assert!(glob_matches("**?", "z"));
    }

    #[test]
    fn glob_sets() {
        assert!(glob_matches("[abc]1", "b1"));
        assert!(!glob_matches("[abc]1", "d1"));
        assert!(glob_matches("x[0-9]", "x7"));
        assert!(!glob_matches("x[0-9]", "xa"));
        assert!(glob_matches("x[^0-9]", "xa"));
        assert!(!glob_matches("x[^0-9]", "x7"));
        assert!(glob_matches("v[[]0]", "v[0]"), "`[[]` is a literal `[`");
        assert!(glob_matches("[]]", "]"), "`]` first is a member");
        assert!(glob_matches("[a-]", "-"), "`-` last is a member");
        assert!(
            glob_matches("[a-c-e]", "-"),
            "`-` after a range is a member"
        );
        assert!(!glob_matches("[a-c-e]", "d"));
        assert!(glob_matches("*[*]*", "a * b"), "`[*]` is a literal `*`");
        assert!(
            !glob_matches("v[0", "v[0"),
            "an unclosed set matches nothing"
        );
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

    #[test]
    fn the_history_file_is_found_as_the_xdg_specification_says() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            history_file_location(os("/tmp/h.jsonl"), os("/data"), os("/home/u")),
            Some(PathBuf::from("/tmp/h.jsonl"))
        );
        assert_eq!(
            history_file_location(None, os("/data"), os("/home/u")),
            Some(PathBuf::from("/data/tessera/kernel-history.jsonl"))
        );
        assert_eq!(
            history_file_location(os(""), os("relative"), os("/home/u")),
            Some(PathBuf::from(
                "/home/u/.local/share/tessera/kernel-history.jsonl"
            ))
        );
        assert_eq!(history_file_location(None, None, None), None);
        assert_eq!(history_file_location(None, os(""), os("")), None);
    }

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

    #[test]
    fn history_persists_across_kernels_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("history.jsonl");
        let mut first = History::open(file.clone());
        assert_eq!(first.session(), 1);
        first.record(1, "let x = 40 + 2;\n", None);
        first.record(2, "   \n", None);
        first.record(3, "x", Some("42".into()));
        let second = History::open(file.clone());
        assert_eq!(second.session(), 2);
        // A kernel that ran no cell still took its number.
        let mut third = History::open(file.clone());
        assert_eq!(third.session(), 3);
        third.record(1, "x + 1", Some("43".into()));

        let tail = HistoryQuery {
            access: HistoryAccess::Tail { n: Some(10) },
            output: true,
        };
        assert_eq!(
            third.answer(&tail),
            [
                json!([1, 1, ["let x = 40 + 2;", null]]),
                json!([1, 3, ["x", "42"]]),
                json!([3, 1, ["x + 1", "43"]])
            ]
        );
        // The first kernel, still running, sees the third's cell too.
        assert_eq!(first.answer(&tail).len(), 3);
        let previous = query(HistoryAccess::Range {
            session: -2,
            start: 0,
            stop: None,
        });
        assert_eq!(
            third.answer(&previous),
            [json!([1, 1, "let x = 40 + 2;"]), json!([1, 3, "x"])]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_unusable_history_file_never_loses_the_current_session() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reads and writes fail.
        let mut history = History::open(dir.path().to_owned());
        assert_eq!(history.session(), 1);
        history.record(1, "1 + 1", Some("2".into()));
        history.record(2, "2 + 2", Some("4".into()));
        assert_eq!(
            history.answer(&query(HistoryAccess::Tail { n: Some(1) })),
            [json!([1, 2, "2 + 2"])]
        );

        let mut in_memory = History::in_memory();
        in_memory.record(1, "7", Some("7".into()));
        assert_eq!(
            in_memory.answer(&query(HistoryAccess::Range {
                session: 0,
                start: 1,
                stop: None
            })),
            [json!([0, 1, "7"])]
        );
    }
}
