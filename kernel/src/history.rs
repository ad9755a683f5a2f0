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
//! The lines of the file are read and written by `records`; what a request can ask for, and
//! which cells answer it, is `query`'s (`tail`, `range`, and `search` by glob).

mod glob;
mod query;
mod records;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use tracing::{debug, warn};

use crate::error::HistoryError;
pub use glob::glob_matches;
pub use query::{HistoryAccess, HistoryQuery, answer};
pub use records::{HistoryEntry, HistoryRecord, SessionStart};
use records::{highest_session, parse_records, session_owner};

/// The environment variable that names the history file (tests point it at a scratch
/// file).
pub const HISTORY_FILE_ENV: &str = "TESSERA_HISTORY_FILE";

/// How often a kernel tries for a session number other kernels keep taking.
const SESSION_CLAIM_ATTEMPTS: usize = 10;
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
    use serde_json::json;

    fn query(access: HistoryAccess) -> HistoryQuery {
        HistoryQuery {
            access,
            output: false,
        }
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
