//! Errors a cell can see, and how they are shown: one enum, [`Error`], whose messages say what
//! went wrong and, where the person at the cell can act, what to do. A message that comes from
//! the driver (a failed or cancelled job, a refused request) is passed on unchanged: the session
//! tells a failed job from a panic of the cell's own by its `Job N failed: ` and
//! `Job N was cancelled` forms.

use crate::plot_error::PlotError;
use crate::side_file_error::SideFileError;
use std::fmt;
use std::path::PathBuf;
use tessera_plan::decode::DecodeError;

/// What to do when the cell and the driver do not understand each other: either side may be
/// from another build, or it is a bug; a new session has both from one build.
const RESTART: &str = "the session's driver and this cell run different builds of Tessera, or \
                       this is a bug in Tessera: restart the session";

/// What makes bincode (the encoding of everything that leaves the cell) refuse a value.
const BINCODE_SERIALIZE: &str = "its type's `Serialize` must suit bincode: derived \
                                 implementations do; sequences and maps of unknown length \
                                 (`#[serde(flatten)]`, hand-written `serialize_seq(None)`) do not";

/// What makes bytes a value was written as not read back as that value.
const BINCODE_DECODE: &str = "its type's `Serialize` and `Deserialize` must agree (derived ones \
                              do; `#[serde(untagged)]` and `#[serde(flatten)]` do not suit \
                              bincode), and executors must run the Tessera this session runs";

/// A failed Tessera operation: a job whose task failed, a driver that is gone, a closure whose
/// captures cannot be shipped. Actions raise it as a panic payload (like an exception in Spark),
/// which the session reports without losing the cell's earlier variables.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A job the cell ran failed: its tasks failed after their retries, or its stage could not
    /// run. Shown as the driver put it, `Job N failed: <cause>`.
    JobFailed {
        /// The job's number in the session.
        job: u64,
        /// Why, as the driver said (what failed, and what to do).
        cause: String,
    },
    /// A job the cell ran was cancelled (an interrupt). Shown as the driver put it,
    /// `Job N was cancelled`.
    JobCancelled {
        /// The job's number in the session.
        job: u64,
    },
    /// The driver refused a request and said why (an RDD of another session, a path that
    /// matches no file, ...). Shown as the driver put it: its message says what to do.
    Refused {
        /// The driver's message.
        message: String,
    },
    /// The session's driver cannot be reached: its process is gone.
    DriverUnreachable {
        /// Why the socket to the driver failed.
        source: std::io::Error,
    },
    /// The driver answered a request with something else than the answer to it.
    UnexpectedReply {
        /// The answer, as `Debug` shows it.
        reply: String,
    },
    /// The driver's answer does not decode.
    UndecodableReply {
        /// Why it does not.
        source: DecodeError,
    },
    /// A request to the driver could not be encoded.
    RequestEncode {
        /// bincode's reason.
        source: bincode::Error,
    },
    /// A partition's count came back as something else than 8 bytes.
    MalformedCount {
        /// The bytes that came.
        bytes: usize,
    },
    /// [`Context::from_session`](crate::Context::from_session) was called outside a session.
    NotInSession,
    /// `first()` or `reduce()` on an RDD without records, which have no record to return.
    EmptyRdd {
        /// `"first"` or `"reduce"`.
        action: &'static str,
        /// The RDD, as `Debug` shows it.
        rdd: String,
    },
    /// `sc.union(&[])`: a union of no RDDs has no type to take its records from.
    EmptyUnion,
    /// A value the cell sends (records, an action's argument, a broadcast value) does not
    /// serialize.
    Serialize {
        /// What it is: "the collection", "an action's argument".
        what: &'static str,
        /// bincode's reason.
        source: bincode::Error,
    },
    /// A value that came back to the cell (a task's result, an accumulator update) does not
    /// decode.
    Decode {
        /// What it is: "a task's result", "an accumulator update".
        what: &'static str,
        /// bincode's reason.
        source: bincode::Error,
    },
    /// The rows collected for a polars DataFrame are not an Arrow IPC stream polars reads.
    NotArrow {
        /// polars' reason.
        reason: String,
    },
    /// A path given to an action could not be made absolute.
    UnresolvedPath {
        /// The action: `"save_as_text_file"`, `"checkpoint"`.
        operation: &'static str,
        /// The path as given.
        path: String,
        /// Why (no working directory, an empty path).
        source: std::io::Error,
    },
    /// The directory an action writes into could not be created.
    CreateDirectory {
        /// The action: `"save_as_text_file"`, `"checkpoint"`.
        operation: &'static str,
        /// The directory.
        path: PathBuf,
        /// Why it could not be made.
        source: std::io::Error,
    },
    /// A plot could not be drawn or saved.
    Plot(PlotError),
    /// A file added with `sc.add_file` could not be found.
    SideFile(SideFileError),
    /// A closure captures variables (not through `capture!`) that Tessera cannot send to
    /// executors.
    UnlistedCaptures {
        /// The size of the closure's captures.
        size: usize,
    },
    /// The values a `capture!` closure captured do not serialize.
    CapturesNotSerializable {
        /// bincode's reason (for a value the session captured for the cell, which names it).
        source: bincode::Error,
    },
    /// The code of a closure is in no library this process loaded.
    CodeNotFound,
    /// A broadcast's value was read where there is none: in a closure that runs in the cell
    /// but was not made by the cell that made the broadcast.
    BroadcastUnavailable {
        /// The broadcast, as `Debug` shows it.
        broadcast: String,
    },
    /// An accumulator was added to outside both the cell and an executor's closure.
    AccumulatorNotAddable {
        /// The accumulator's id.
        id: u64,
    },
    /// An accumulator's value was read on an executor, where only this task's part is known.
    AccumulatorNotReadable,
    /// A `*_by_key` operation was asked to shuffle by a partitioner other than a hash one.
    NotHashPartitioned {
        /// The operation.
        operation: String,
        /// The partitioner given, as `Debug` shows it.
        partitioner: String,
    },
}

impl Error {
    /// The error for a driver's refusal, `message`: a failed or cancelled job when the message
    /// has one of the driver's forms for them, else a refusal. The message reads the same.
    pub(crate) fn from_driver(message: String) -> Error {
        let job = |rest: &str| -> Option<(u64, String)> {
            let digits = rest.find(|c: char| !c.is_ascii_digit())?;
            let job: u64 = rest[..digits].parse().ok()?;
            // Only a number the driver could have written: the message must read the same.
            (job.to_string() == rest[..digits]).then(|| (job, rest[digits..].to_string()))
        };
        match message.strip_prefix("Job ").and_then(job) {
            Some((job, rest)) if rest == " was cancelled" => Error::JobCancelled { job },
            Some((job, rest)) if rest.starts_with(" failed: ") => Error::JobFailed {
                job,
                cause: rest[" failed: ".len()..].to_string(),
            },
            _ => Error::Refused { message },
        }
    }

    /// The error for a reply of the driver the request does not expect.
    pub(crate) fn unexpected_reply(reply: &impl fmt::Debug) -> Error {
        Error::UnexpectedReply {
            reply: format!("{reply:?}"),
        }
    }

    /// The text shown for this error (its `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// Raises this error in the calling cell.
    pub(crate) fn raise(self) -> ! {
        std::panic::panic_any(self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::JobFailed { job, cause } => write!(f, "Job {job} failed: {cause}"),
            Error::JobCancelled { job } => write!(f, "Job {job} was cancelled"),
            Error::Refused { message } => f.write_str(message),
            Error::DriverUnreachable { source } => write!(
                f,
                "the Tessera driver of this session is not reachable ({source}); the session \
                 host may have exited — restart the session"
            ),
            Error::UnexpectedReply { reply } => {
                write!(f, "unexpected reply from the driver: {reply}; {RESTART}")
            }
            Error::UndecodableReply { source } => {
                write!(f, "cannot decode the driver's reply ({source}); {RESTART}")
            }
            Error::RequestEncode { source } => write!(
                f,
                "cannot encode a request to the driver: {source}; this is a bug in Tessera"
            ),
            Error::MalformedCount { bytes } => write!(
                f,
                "cannot decode a partition's count: {bytes} bytes where 8 were expected; the \
                 executors run another Tessera than this session — restart the session"
            ),
            Error::NotInSession => {
                use tessera_plan::cell_protocol::{CELL_SOCKET_ENV, CELL_TOKEN_ENV};
                write!(
                    f,
                    "this code does not run in a Tessera session ({CELL_SOCKET_ENV} and \
                     {CELL_TOKEN_ENV} are not set): run it in `tessera`, `tessera run` or the \
                     Tessera Jupyter kernel"
                )
            }
            Error::EmptyRdd { action, rdd } => {
                write!(
                    f,
                    "{action}() on an empty RDD ({rdd}); check for emptiness first \
                     (`rdd.take(1).is_empty()`), or "
                )?;
                match *action {
                    "first" => f.write_str("use `take(1)`, which is empty for an empty RDD"),
                    _ => f.write_str("use `fold(zero, f)`, which returns `zero` for an empty RDD"),
                }
            }
            Error::EmptyUnion => f.write_str("union of no RDDs: pass at least one"),
            Error::Serialize { what, source } => {
                write!(f, "cannot serialize {what}: {source}; {BINCODE_SERIALIZE}")
            }
            Error::Decode { what, source } => {
                write!(f, "cannot decode {what}: {source}; {BINCODE_DECODE}")
            }
            Error::NotArrow { reason } => write!(
                f,
                "the collected rows do not read as an Arrow IPC stream ({reason}); the cell's \
                 polars must be the executors' version: enable it with `:dep tessera = {{ \
                 features = [\"polars\"] }}` rather than a `:dep polars` of another version"
            ),
            Error::UnresolvedPath {
                operation,
                path,
                source,
            } => write!(
                f,
                "{operation}({path}): {source}; pass a non-empty path (an absolute one if the \
                 session's working directory was removed)"
            ),
            Error::CreateDirectory {
                operation,
                path,
                source,
            } => write!(
                f,
                "{operation}: cannot create {}: {source}; choose a directory this session can \
                 write, on a file system every executor host sees at the same path",
                path.display()
            ),
            Error::Plot(error) => fmt::Display::fmt(error, f),
            Error::SideFile(error) => fmt::Display::fmt(error, f),
            Error::UnlistedCaptures { size } => write!(
                f,
                "a closure passed to an RDD captures variables ({size} bytes) that Tessera cannot \
                 send to executors: list them with `capture!([a, b] move |..| ..)` so they are \
                 serialized, or capture only what `capture!` lists"
            ),
            Error::CapturesNotSerializable { source } => write!(
                f,
                "cannot serialize the values a closure captured: {source}"
            ),
            Error::CodeNotFound => f.write_str(
                "cannot locate the code of a closure in any loaded library; closures that run \
                 on executors must be compiled into a shared library (a session's cell, or a \
                 `cdylib` crate)",
            ),
            Error::BroadcastUnavailable { broadcast } => write!(
                f,
                "{broadcast} has no value here: use it inside a capture! closure that runs on \
                 executors, or in the cell that made it"
            ),
            Error::AccumulatorNotAddable { id } => write!(
                f,
                "accumulator {id} cannot be added to here: capture it in a closure that runs on \
                 executors"
            ),
            Error::AccumulatorNotReadable => {
                f.write_str("an accumulator's value can be read only in the cell")
            }
            Error::NotHashPartitioned {
                operation,
                partitioner,
            } => write!(
                f,
                "{operation} shuffles by a hash partitioner (Partitioner::hash(n)), not by \
                 {partitioner}; to place keys by a partitioner of your own, call \
                 partition_by_custom(&p) first: {operation} then keeps that placement without a \
                 shuffle"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::DriverUnreachable { source }
            | Error::UnresolvedPath { source, .. }
            | Error::CreateDirectory { source, .. } => Some(source),
            Error::UndecodableReply { source } => Some(source),
            Error::RequestEncode { source }
            | Error::Serialize { source, .. }
            | Error::Decode { source, .. }
            | Error::CapturesNotSerializable { source } => Some(source),
            Error::Plot(error) => Some(error),
            Error::SideFile(error) => Some(error),
            _ => None,
        }
    }
}

impl From<PlotError> for Error {
    fn from(error: PlotError) -> Error {
        Error::Plot(error)
    }
}

impl From<SideFileError> for Error {
    fn from(error: SideFileError) -> Error {
        Error::SideFile(error)
    }
}

/// The message of a caught panic: its text, or the [`Error`] a Tessera call raised.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = tessera_plan::panic_text::panic_text(payload) {
        text
    } else if let Some(e) = payload.downcast_ref::<Error>() {
        e.to_string()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    use crate::test_messages::says;

    #[test]
    fn the_drivers_messages_pass_through_unchanged_and_jobs_are_told_apart() {
        let failed = "Job 3 failed: task for partition 1 failed 4 times; most recent failure on \
                      executor e1: closure panicked: boom";
        let error = Error::from_driver(failed.to_string());
        assert!(
            matches!(&error, Error::JobFailed { job: 3, cause } if cause.starts_with("task for")),
            "{error:?}"
        );
        assert_eq!(error.to_string(), failed);
        assert_eq!(error.message(), failed);

        let error = Error::from_driver("Job 12 was cancelled".to_string());
        assert!(
            matches!(error, Error::JobCancelled { job: 12 }),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "Job 12 was cancelled");

        for refusal in [
            "rdd 9 is not defined in this session; define the RDD again",
            "Job x failed: not a job's form",
            "Job 4 was cancelled by nobody",
            "Job 5",
            "Job 05 was cancelled",
        ] {
            let error = Error::from_driver(refusal.to_string());
            assert!(matches!(error, Error::Refused { .. }), "{error:?}");
            assert_eq!(error.to_string(), refusal);
        }
    }

    #[test]
    fn a_lost_or_confused_driver_asks_for_a_restart() {
        let gone = Error::DriverUnreachable {
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        says(&gone, &["is not reachable", "restart the session"]);
        assert!(gone.source().is_some(), "the io::Error is the source");
        says(
            &Error::unexpected_reply(&"Done"),
            &[
                "unexpected reply from the driver: \"Done\"",
                "restart the session",
            ],
        );
        says(
            &Error::MalformedCount { bytes: 3 },
            &["3 bytes where 8", "restart the session"],
        );
    }

    #[test]
    fn an_empty_rdd_says_to_check_for_emptiness_or_use_another_action() {
        let first = Error::EmptyRdd {
            action: "first",
            rdd: "Rdd<u64>#3".into(),
        };
        says(
            &first,
            &[
                "first() on an empty RDD (Rdd<u64>#3)",
                "check for emptiness first",
                "take(1)",
            ],
        );
        let reduce = Error::EmptyRdd {
            action: "reduce",
            rdd: "Rdd<u64>#3".into(),
        };
        says(
            &reduce,
            &[
                "reduce() on an empty RDD",
                "check for emptiness first",
                "fold",
            ],
        );
    }

    #[test]
    fn file_system_errors_name_the_path_keep_the_io_error_and_say_what_to_do() {
        let error = Error::CreateDirectory {
            operation: "save_as_text_file",
            path: "/data/out".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        says(
            &error,
            &[
                "save_as_text_file: cannot create /data/out",
                "choose a directory this session can write",
                "every executor host",
            ],
        );
        assert!(error.source().is_some(), "the io::Error is the source");
    }

    #[test]
    fn values_that_do_not_encode_say_what_bincode_needs() {
        let refused = || bincode::Error::new(bincode::ErrorKind::SequenceMustHaveLength);
        says(
            &Error::Serialize {
                what: "the collection",
                source: refused(),
            },
            &[
                "cannot serialize the collection",
                "`Serialize` must suit bincode",
            ],
        );
        says(
            &Error::Decode {
                what: "a task's result",
                source: refused(),
            },
            &["cannot decode a task's result", "must agree"],
        );
    }

    #[test]
    fn captures_that_cannot_ship_say_how_to_list_them() {
        says(
            &Error::UnlistedCaptures { size: 8 },
            &["(8 bytes)", "capture!([a, b] move |..| ..)"],
        );
        says(
            &Error::NotHashPartitioned {
                operation: "reduce_by_key".into(),
                partitioner: "Range".into(),
            },
            &["not by Range", "partition_by_custom(&p) first"],
        );
    }
}
