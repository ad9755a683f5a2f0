//! The contract between the kernel and the thing that runs code: [`KernelBackend`]
//! (implemented by the Tessera session) and the values that cross it.
//!
//! Positions (`cursor_pos`, `cursor_start`, `cursor_end`) on this side are **byte
//! offsets** into the code, always on a `char` boundary; the kernel converts them from
//! and to the Unicode code-point offsets the Jupyter protocol uses.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// A handle another thread uses to interrupt the running cell (cancel its jobs, and stop a
/// cell that does not stop by itself).
pub type Interrupter = Box<dyn Fn() + Send + Sync>;

/// What a kernel needs from the thing that runs code.
///
/// The kernel calls every method from one dedicated thread, one call at a time, except
/// that it calls `interrupter`, `language_info` and `banner` once at start-up (before
/// that thread exists) and calls the returned [`Interrupter`] from another thread,
/// possibly while `execute` runs. A panic in a method is caught and reported to the
/// client as an error; the kernel keeps serving.
pub trait KernelBackend: Send + 'static {
    /// Runs one cell. Output produced while running goes to `sink` as it happens; the
    /// value of the cell (if any) is returned. An interrupted cell returns an error.
    fn execute(
        &mut self,
        code: &str,
        sink: &mut dyn OutputSink,
    ) -> Result<ExecuteOutput, ExecuteError>;

    /// Completions for the identifier around byte offset `cursor_pos`.
    fn complete(&mut self, code: &str, cursor_pos: usize) -> Completion;

    /// Documentation or type of what is at byte offset `cursor_pos`, in one or more MIME
    /// types (`text/plain`, and `text/html` when there is a formatted form); `None` when
    /// nothing is known there (the reply says `found: false`).
    fn inspect(&mut self, code: &str, cursor_pos: usize) -> Option<MimeBundle>;

    /// Whether `code` is a complete cell (used by consoles to decide whether Enter
    /// runs the cell or adds a line).
    fn is_complete(&mut self, code: &str) -> IsComplete;

    /// A handle another thread can call to interrupt the running cell.
    fn interrupter(&self) -> Interrupter;

    /// Language metadata for `kernel_info_reply`.
    fn language_info(&self) -> LanguageInfo;

    /// Text shown by consoles when they connect.
    fn banner(&self) -> String;
}

/// Where a running cell sends its output. Every call becomes one iopub message,
/// published at once.
pub trait OutputSink: Send {
    /// Text the cell printed to standard output.
    fn stdout(&mut self, text: &str);
    /// Text the cell printed to standard error.
    fn stderr(&mut self, text: &str);
    /// Rich output. With a `display_id`, later calls with `update = true` and the same
    /// id replace it in place (live job progress): the first call becomes
    /// `display_data`, updates become `update_display_data`.
    fn display(&mut self, data: MimeBundle, display_id: Option<&str>, update: bool);
    /// Clears the cell's output so far (with `wait`, once new output arrives).
    fn clear_output(&mut self, wait: bool);
    /// Asks the person at the front end for a line (an `input_request` on the stdin channel)
    /// showing `prompt`, and blocks until the answer comes. Sinks that cannot ask say so.
    fn read_input(&mut self, prompt: &str, password: bool) -> Result<String, StdinError> {
        let _ = (prompt, password);
        Err(StdinError::NotAllowed)
    }
}

/// Why a cell got no line of input from the front end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StdinError {
    /// The execute request said `allow_stdin: false` (nbclient runs, for one).
    #[error("this front end does not answer input requests (allow_stdin is false)")]
    NotAllowed,
    /// The cell was interrupted while waiting.
    #[error("interrupted while waiting for input")]
    Interrupted,
    /// The kernel is shutting down.
    #[error("the kernel is shutting down")]
    Closed,
}

/// A MIME bundle: MIME type → content, e.g. `text/plain` → `"42"`, `text/html` →
/// `"<table>…</table>"`, `application/json` → any JSON value.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct MimeBundle(BTreeMap<String, Value>);

impl MimeBundle {
    /// An empty bundle.
    pub fn new() -> Self {
        Self::default()
    }

    /// A bundle holding only `text/plain`.
    pub fn plain(text: impl Into<String>) -> Self {
        Self::new().with("text/plain", text.into())
    }

    /// Adds (or replaces) one representation, builder style.
    pub fn with(mut self, mime: impl Into<String>, content: impl Into<Value>) -> Self {
        self.insert(mime, content);
        self
    }

    /// Adds (or replaces) the content for one MIME type.
    pub fn insert(&mut self, mime: impl Into<String>, content: impl Into<Value>) {
        self.0.insert(mime.into(), content.into());
    }

    /// The content for MIME type `mime`, if the bundle has it.
    pub fn get(&self, mime: &str) -> Option<&Value> {
        self.0.get(mime)
    }

    /// Whether the bundle holds no MIME type at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each MIME type with its content, in the order of the MIME types' names.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }
}

impl FromIterator<(String, Value)> for MimeBundle {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        MimeBundle(iter.into_iter().collect())
    }
}

/// The value of a cell.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecuteOutput {
    /// The cell's value in one or more MIME types; empty means the cell has no value
    /// (no `execute_result` is published).
    pub data: MimeBundle,
}

impl ExecuteOutput {
    /// A cell with no value (e.g. it ended in a statement).
    pub fn none() -> Self {
        Self::default()
    }

    /// A cell whose value is shown as plain text.
    pub fn plain(text: impl Into<String>) -> Self {
        ExecuteOutput {
            data: MimeBundle::plain(text),
        }
    }
}

/// A cell that failed: a compile error, a panic, a failed job, an interrupt.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecuteError {
    /// The kind of error, e.g. `CompileError`, `Panic`, `JobFailed`, `JobCancelled`.
    pub ename: String,
    /// The message.
    pub evalue: String,
    /// Lines shown to the person (may contain ANSI colour codes).
    pub traceback: Vec<String>,
}

impl ExecuteError {
    /// An error whose traceback is the single line `ename: evalue`.
    pub fn new(ename: impl Into<String>, evalue: impl Into<String>) -> Self {
        let (ename, evalue) = (ename.into(), evalue.into());
        ExecuteError {
            traceback: vec![format!("{ename}: {evalue}")],
            ename,
            evalue,
        }
    }
}

impl std::fmt::Display for ExecuteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.ename, self.evalue)
    }
}

impl std::error::Error for ExecuteError {}

/// Completions: `matches` replace the text between byte offsets `cursor_start` and
/// `cursor_end`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// The candidate completions, each the whole text to put in place of the replaced span.
    pub matches: Vec<String>,
    /// Byte offset in the code where the text a match replaces starts.
    pub cursor_start: usize,
    /// Byte offset in the code where the text a match replaces ends (exclusive).
    pub cursor_end: usize,
    /// The kind of each match (`function`, `variable`, ...), in the order of `matches`;
    /// empty when the backend does not know.
    pub types: Vec<String>,
}

impl Completion {
    /// No completions at `cursor_pos`.
    pub fn nothing_at(cursor_pos: usize) -> Self {
        Completion {
            matches: Vec::new(),
            cursor_start: cursor_pos,
            cursor_end: cursor_pos,
            types: Vec::new(),
        }
    }
}

/// Whether code is ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsComplete {
    /// Ready to run.
    Complete,
    /// Needs more lines; `indent` is the suggested indentation of the next one.
    Incomplete {
        /// Whitespace a console puts at the start of the next line (e.g. four spaces).
        indent: String,
    },
    /// Cannot become valid by adding lines.
    Invalid,
    /// The backend cannot tell.
    Unknown,
}

/// Language metadata sent in `kernel_info_reply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LanguageInfo {
    /// The language cells are written in (`rust`).
    pub name: String,
    /// The language's version: that of the compiler cells are built with (e.g. `1.88.0`).
    pub version: String,
    /// The MIME type of a cell's code (`text/rust`).
    pub mimetype: String,
    /// The extension, with its dot, of a script exported from a notebook (`.rs`).
    pub file_extension: String,
    /// The Pygments lexer that highlights code outside the editor, e.g. in nbconvert's HTML.
    pub pygments_lexer: String,
    /// The CodeMirror mode the notebook editor highlights cells with.
    pub codemirror_mode: String,
    /// The nbconvert exporter for notebooks of this kernel (`script`, the generic one).
    pub nbconvert_exporter: String,
}

impl LanguageInfo {
    /// Rust, at the given compiler version (e.g. `"1.88.0"`).
    pub fn rust(version: impl Into<String>) -> Self {
        LanguageInfo {
            name: "rust".to_owned(),
            version: version.into(),
            mimetype: "text/rust".to_owned(),
            file_extension: ".rs".to_owned(),
            pygments_lexer: "rust".to_owned(),
            codemirror_mode: "rust".to_owned(),
            nbconvert_exporter: "script".to_owned(),
        }
    }
}
