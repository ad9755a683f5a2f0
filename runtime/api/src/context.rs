//! The entry point of a session: its handle on the driver, the calls cells make through it,
//! and what it shows. The RDDs it starts are made in `context_rdds.rs`.

use crate::client::Endpoint;
use crate::error::Error;
use std::fmt;
use tessera_plan::cell_protocol::{CellRequest, CellResponse};

/// A handle on the session's driver (`sc` in the REPL). Copying it is free.
#[derive(Clone, Copy)]
pub struct Context {
    endpoint: Endpoint,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Context")
    }
}

impl Context {
    /// Connects to the driver listening on the abstract socket `socket_name`. Sessions do this
    /// for you and bind the result to `sc`.
    pub fn connect(socket_name: &str, token: u64) -> Context {
        Context {
            endpoint: Endpoint::new(socket_name, token),
        }
    }

    /// Connects to the driver of the session this code runs in (the session tells its cells
    /// where in two environment variables). Sessions do this for you and bind the result to
    /// `sc`; functions, which cannot capture `sc`, can call it.
    pub fn from_session() -> Context {
        use tessera_plan::cell_protocol::{CELL_SOCKET_ENV, CELL_TOKEN_ENV};
        let socket = std::env::var(CELL_SOCKET_ENV);
        let token = std::env::var(CELL_TOKEN_ENV)
            .ok()
            .and_then(|t| t.parse().ok());
        match (socket, token) {
            (Ok(socket), Some(token)) => Context::connect(&socket, token),
            _ => Error::NotInSession.raise(),
        }
    }

    pub(crate) fn call(&self, request: CellRequest) -> Result<CellResponse, Error> {
        self.endpoint.call(request)
    }

    /// Sends a request that adds an RDD and returns its id. Not generic, and never inlined, so
    /// that the request's encoding is compiled once here rather than in every cell that defines
    /// an RDD of a new type (cells compile in well under a second because of such funnels).
    #[inline(never)]
    pub(crate) fn define_untyped(&self, request: CellRequest) -> tessera_plan::RddId {
        match self.call(request) {
            Ok(CellResponse::Defined { rdd, .. }) => rdd,
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }

    /// Runs a job on RDD `rdd` and returns one result per partition (all, or those given).
    /// Not generic, and never inlined, for the reason [`Context::define_untyped`] is not.
    #[inline(never)]
    pub(crate) fn run_job(
        &self,
        rdd: tessera_plan::RddId,
        name: &str,
        action: tessera_plan::cell_protocol::CellAction,
        partitions: Option<Vec<u32>>,
    ) -> Vec<Vec<u8>> {
        let request = CellRequest::RunJob {
            rdd,
            action,
            partitions,
            name: name.to_string(),
        };
        match self.call(request) {
            Ok(CellResponse::JobResult { results }) => results,
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }

    /// Sets (or with `None` clears) the storage level of RDD `rdd` (a DataFrame's too).
    pub(crate) fn set_storage(
        &self,
        rdd: tessera_plan::RddId,
        level: Option<tessera_plan::StorageLevel>,
    ) {
        if let Err(e) = self.call(CellRequest::Persist { rdd, level }) {
            e.raise()
        }
    }

    /// Runs a job whose tasks each answer a count (`u64`, little-endian) and sums them.
    pub(crate) fn run_count_job(
        &self,
        rdd: tessera_plan::RddId,
        name: &str,
        action: tessera_plan::cell_protocol::CellAction,
    ) -> u64 {
        self.run_job(rdd, name, action, None)
            .iter()
            .map(|bytes| match <[u8; 8]>::try_from(bytes.as_slice()) {
                Ok(count) => u64::from_le_bytes(count),
                // Never a wrong count: a result of another size means the executor and the
                // cell disagree on the protocol.
                Err(_) => Error::MalformedCount { bytes: bytes.len() }.raise(),
            })
            .sum()
    }

    /// Sends the file at `path` to every executor of the session, as Spark's
    /// `SparkContext.addFile`: code on executors (and in cells) reads it at
    /// [`files::get(name)`](crate::files::get), where `name` is the file's name. Adding a file
    /// of the same name again replaces it. For small side inputs (a lookup table, a model); large
    /// data belongs in [`text_file`](Context::text_file) on a file system every host sees.
    pub fn add_file(&self, path: &str) {
        self.done(CellRequest::AddFile {
            path: path.to_string(),
        })
    }

    /// Shows `value` under the cell now, before the cell ends (its `{:#?}` text), as
    /// Jupyter's `display`; the terminal prints it.
    pub fn display<T: fmt::Debug + ?Sized>(&self, value: &T) {
        self.display_data(&[("text/plain", &format!("{value:#?}"))]);
    }

    /// Shows `html` under the cell (a notebook renders it; a terminal prints it as text).
    pub fn display_html(&self, html: &str) {
        self.display_data(&[("text/html", html), ("text/plain", html)]);
    }

    /// Shows one output in several forms at once, by MIME type (`text/plain`, `text/html`,
    /// `image/svg+xml`, ...): the front end picks the richest it can show.
    pub fn display_data(&self, data: &[(&str, &str)]) {
        self.done(CellRequest::Display {
            data: data
                .iter()
                .map(|(mime, content)| (mime.to_string(), content.to_string()))
                .collect(),
            display_id: None,
            update: false,
        })
    }

    /// Shows `value` under the cell now, in every form it has (a table of records, a plot, an
    /// RDD's lineage): as a cell's last value would show, but from anywhere in the cell, as
    /// Spark's `show()`.
    pub fn show<T: crate::rich::RichDisplay + ?Sized>(&self, value: &T) {
        let bundle = value.mime_bundle();
        let data: Vec<(&str, &str)> = bundle
            .iter()
            .map(|(mime, content)| (mime.as_str(), content.as_str()))
            .collect();
        self.display_data(&data);
    }

    /// Asks the person running the session for a line of text, as Python's `input()`: the
    /// terminal prints `prompt` and reads a line; a notebook shows an input box. Returns the
    /// line without its line break. Panics (failing the cell) when the front end cannot ask,
    /// e.g. a notebook run without a person.
    pub fn input(&self, prompt: &str) -> String {
        self.read_line(prompt, false)
    }

    /// As [`input`](Self::input), without showing what is typed.
    pub fn password(&self, prompt: &str) -> String {
        self.read_line(prompt, true)
    }

    fn read_line(&self, prompt: &str, password: bool) -> String {
        match self.call(CellRequest::Input {
            prompt: prompt.to_string(),
            password,
        }) {
            Ok(CellResponse::Line(line)) => line,
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }

    /// Clears what the cell has shown so far, as Jupyter's `clear_output`.
    pub fn clear_output(&self) {
        self.done(CellRequest::ClearOutput { wait: false })
    }

    /// Sends a request the driver answers with `Done`.
    pub(crate) fn done(&self, request: CellRequest) {
        match self.call(request) {
            Ok(CellResponse::Done) => {}
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }
}
