//! What can go wrong with a DataFrame on an executor or in the driver's planning, each saying
//! what to do.

use polars_core::error::PolarsError;

/// A DataFrame operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// polars refused or failed an operation.
    #[error("{what} failed: {source}")]
    Polars {
        /// What was being done.
        what: String,
        /// polars' own error.
        source: PolarsError,
    },
    /// polars panicked (a bug in polars, or an input it does not expect).
    #[error("{what} failed: polars panicked: {message}")]
    Panicked {
        /// What was being done.
        what: String,
        /// The panic's message.
        message: String,
    },
    /// A column type Tessera cannot cast to.
    #[error(
        "type {name} cannot be used here: cast to one of bool, integers, floats, str, date or datetime"
    )]
    UnsupportedType {
        /// polars' name for it.
        name: String,
    },
    /// A row of a CSV or JSON file that does not parse.
    #[error(
        "a row does not parse as the schema says ({reason}); fix the row, or give a schema that fits it"
    )]
    MalformedRow {
        /// polars' reason.
        reason: String,
    },
    /// A file that cannot be opened, read or written.
    #[error(
        "{path}: {reason}; check that the path exists and is readable (or writable) on every executor's host"
    )]
    File {
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Bytes that should hold a DataFrame (Arrow IPC) do not.
    #[error("{what} is not a DataFrame in Arrow IPC: {reason}")]
    NotIpc {
        /// Whose bytes.
        what: &'static str,
        /// polars' reason.
        reason: String,
    },
    /// Bytes that should hold records for a DataFrame (`Vec<Vec<Value>>`) do not.
    #[error(
        "records for a DataFrame do not decode ({reason}): make the DataFrame of an Rdd<Vec<Value>>"
    )]
    NotRecords {
        /// bincode's reason.
        reason: String,
    },
    /// A record with another number of values than the schema has columns.
    #[error(
        "a record has {values} values for {columns} columns: give every record a value for each column of the schema (Value::Null for none)"
    )]
    RecordWidth {
        /// Values in the record.
        values: usize,
        /// Columns in the schema.
        columns: usize,
    },
    /// A plan's parameters did not decode.
    #[error(
        "the parameters of {what} do not decode ({reason}): the driver and this executor are of different Tessera versions"
    )]
    Params {
        /// Which operator's.
        what: &'static str,
        /// bincode's reason.
        reason: String,
    },
    /// A sort's range shuffle asked to place rows before the driver chose its ranges.
    #[error(
        "a sort's shuffle ran before the driver sampled its ranges: a bug in Tessera's driver: report it with the query that ran"
    )]
    RangesNotSampled,
}

impl FrameError {
    /// A function that wraps polars' error in [`FrameError::Polars`] for `what` (for
    /// `map_err`).
    pub fn polars(what: &str) -> impl FnOnce(PolarsError) -> FrameError + '_ {
        move |source| FrameError::Polars {
            what: what.to_string(),
            source,
        }
    }
}

/// Runs `f`, turning a panic inside polars into [`FrameError::Panicked`].
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, FrameError>) -> Result<T, FrameError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(FrameError::Panicked {
            what: what.to_string(),
            message: tessera_plan::panic_text::panic_text(payload.as_ref())
                .unwrap_or_else(|| "(no message)".to_string()),
        }),
    }
}
