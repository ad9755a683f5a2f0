//! What can go wrong in the operators an executor runs from a cell library: parameters and
//! records that do not decode or encode, files a task writes, spilling to disk, a user closure
//! that panics. Every message says what happened and, where the user can act, what to do; a
//! closure's own message is passed on unchanged.
//!
//! The executor hears of a failure as text, through the ABI's [`ErrorSink`]: an error becomes
//! its message only in [`OpError::report`], where it crosses into the sink.

use std::fmt;
use std::path::PathBuf;
use tessera_plan::abi::{ErrorSink, PANIC_PREFIX, RawBytes};

/// Where an executor's files are, for messages that ask to free disk space there. The executor
/// says the same in its own messages (its crate is not a dependency of this one).
const WORK_DIR: &str = "executors keep their files in their sandbox under the agent's \
                        --work-dir, or in $TMPDIR (default /tmp) when the session starts them \
                        itself";

/// What makes a task's operators spill less: the budget each gets is the executor's shuffle
/// memory shared by its task threads.
const SPILL_MEMORY: &str = "give executors more shuffle memory ($TESSERA_SHUFFLE_SPILL_MB where \
                            they start; by default a quarter of --executor-memory-mb)";

/// What makes records encode: bincode refuses some shapes serde allows.
const BINCODE_SERIALIZE: &str = "the type's `Serialize` must suit bincode: derived \
                                 implementations do; sequences and maps of unknown length \
                                 (`#[serde(flatten)]`, hand-written `serialize_seq(None)`) do not";

/// What makes encoded values read back.
const BINCODE_DECODE: &str = "the type's `Serialize` and `Deserialize` must agree (derived ones \
                              do; `#[serde(untagged)]` and `#[serde(flatten)]` do not suit \
                              bincode)";

/// Why an operator, an action or a decoder of a cell library failed on an executor.
#[derive(Debug)]
pub(crate) enum OpError {
    /// A user closure (or a custom partitioner) panicked. Shown as `closure panicked: ` and the
    /// panic's own message, unchanged: the executor tells such failures by that prefix.
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// An operator's parameters (its argument, a fold's zero value, a partitioner's state, a
    /// sort's bounds) do not decode.
    Params {
        /// bincode's reason.
        source: bincode::Error,
    },
    /// A shuffle writer was opened with a partitioner of another kind than its own.
    Placement {
        /// The writer's kind: "hash", "custom", "range".
        writer: &'static str,
        /// The partitioner it was given, as `Debug` shows it.
        partitioner: String,
    },
    /// `sample` was given a fraction it cannot sample with.
    SampleFraction {
        /// The fraction.
        fraction: f64,
    },
    /// Records do not encode (into a batch's bytes, or a spill or shuffle frame).
    RecordsEncode {
        /// The records' type.
        type_name: &'static str,
        /// bincode's reason.
        source: bincode::Error,
    },
    /// Bytes do not decode as records of the type expected.
    RecordsDecode {
        /// The records' type.
        type_name: &'static str,
        /// bincode's reason.
        source: bincode::Error,
    },
    /// An action's result does not encode.
    ResultEncode {
        /// The action, or what its result is: "collect", "a checkpointed partition".
        what: &'static str,
        /// bincode's reason.
        source: bincode::Error,
    },
    /// A file `save_as_text_file` writes could not be created.
    OutputCreate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file `save_as_text_file` or `checkpoint` writes could not be written.
    OutputWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An operator had to spill but its executor gave it no spill directory.
    NoSpillDirectory,
    /// A spill file could not be created in the executor's spill directory.
    SpillCreate {
        /// The spill directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A spill file could not be written, flushed or opened.
    SpillIo {
        /// The spill file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A run written to a spill file does not read back (`InvalidData` for a frame or records
    /// that do not decode, `UnexpectedEof` for a run cut short).
    SpillReadBack {
        /// The spill file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A merge of spilled runs stopped at a run's error.
    MergeFailed {
        /// How many runs the operator spilled.
        runs: usize,
        /// The run's error.
        source: Box<OpError>,
    },
    /// A closure's captured environment is not the size of the closure being rebuilt.
    CapturesSize {
        /// The size of the environment the cell library knows.
        captured: usize,
        /// The size of the closure the executor rebuilds.
        closure: usize,
    },
    /// A closure needs captured values the plan does not hold.
    NoCapturedEnvironment,
    /// A closure's captured values, or a broadcast value, do not decode.
    ValuesDecode {
        /// "captured values", "a broadcast value".
        what: &'static str,
        /// bincode's reason.
        source: bincode::Error,
    },
    /// Decoding a closure's captured values, or a broadcast value, panicked (in a
    /// `Deserialize` of the user's).
    DecodePanicked {
        /// "captured values", "a broadcast value".
        what: &'static str,
        /// The panic's message.
        message: String,
    },
}

impl OpError {
    /// Hands this error's message to the executor: the one place an operator's error becomes
    /// text.
    pub(crate) fn report(&self, err: ErrorSink) {
        let message = self.to_string();
        // SAFETY: the executor's sink copies the message before returning.
        unsafe { (err.set)(err.ctx, RawBytes::from_slice(message.as_bytes())) }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Panicked { message } => write!(f, "{PANIC_PREFIX}{message}"),
            OpError::Params { source } => write!(
                f,
                "cannot decode an operator's parameters: {source}; the values they hold (a \
                 fold's zero value, a custom partitioner, a sort's keys) must read back what \
                 they write, as derived `Serialize` and `Deserialize` do"
            ),
            OpError::Placement {
                writer,
                partitioner,
            } => write!(
                f,
                "a {writer} writer cannot place keys by {partitioner}; this is a bug in Tessera"
            ),
            OpError::SampleFraction { fraction } => write!(
                f,
                "sample: fraction {fraction} must be in [0, 1] without replacement, or at least \
                 0 with it"
            ),
            OpError::RecordsEncode { type_name, source } => write!(
                f,
                "cannot serialize records of type {type_name}: {source}; {BINCODE_SERIALIZE}"
            ),
            OpError::RecordsDecode { type_name, source } => write!(
                f,
                "cannot decode records of type {type_name}: {source}; {BINCODE_DECODE}"
            ),
            OpError::ResultEncode { what, source } => write!(
                f,
                "cannot serialize the result of {what}: {source}; {BINCODE_SERIALIZE}"
            ),
            OpError::OutputCreate { path, source } => write!(
                f,
                "cannot create {}: {source}; executors write the output themselves: its \
                 directory must be writable by them, at the same path on every executor host \
                 (a shared file system)",
                path.display()
            ),
            OpError::OutputWrite { path, source } => write!(
                f,
                "cannot write {}: {source}; free disk space there",
                path.display()
            ),
            OpError::NoSpillDirectory => f.write_str(
                "spilling needs the executor's spill directory, and the executor gave none; \
                 this is a bug in Tessera",
            ),
            OpError::SpillCreate { dir, source } => write!(
                f,
                "cannot write a spill file in {} ({source}); free disk space there \
                 ({WORK_DIR}), or {SPILL_MEMORY}",
                dir.display()
            ),
            OpError::SpillIo { path, source } => write!(
                f,
                "cannot use the spill file {} ({source}); free disk space there ({WORK_DIR}), \
                 or {SPILL_MEMORY}",
                path.display()
            ),
            OpError::SpillReadBack { path, source } => write!(
                f,
                "cannot read back the spill file {} ({source}); was it removed? A task's spill \
                 files stay until the task ends ({WORK_DIR}): do not clean their directory \
                 while executors run",
                path.display()
            ),
            OpError::MergeFailed { runs, source } => write!(
                f,
                "cannot merge the {runs} runs of records this operator spilled: {source}"
            ),
            OpError::CapturesSize { captured, closure } => write!(
                f,
                "captured environment has size {captured} but the closure has size {closure}; \
                 the cell library and the plan disagree (was the cell recompiled?): re-run the \
                 cells that define this RDD"
            ),
            OpError::NoCapturedEnvironment => {
                f.write_str("the plan has no captured environment for a closure that needs one")
            }
            OpError::ValuesDecode { what, source } => {
                write!(f, "cannot decode {what}: {source}; {BINCODE_DECODE}")
            }
            OpError::DecodePanicked { what, message } => {
                write!(f, "decoding {what} panicked: {message}")
            }
        }
    }
}

impl std::error::Error for OpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpError::Params { source }
            | OpError::RecordsEncode { source, .. }
            | OpError::RecordsDecode { source, .. }
            | OpError::ResultEncode { source, .. }
            | OpError::ValuesDecode { source, .. } => Some(source),
            OpError::OutputCreate { source, .. }
            | OpError::OutputWrite { source, .. }
            | OpError::SpillCreate { source, .. }
            | OpError::SpillIo { source, .. }
            | OpError::SpillReadBack { source, .. } => Some(source),
            OpError::MergeFailed { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::ffi::c_void;

    fn disk_full() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::StorageFull)
    }

    use crate::test_messages::says;

    #[test]
    fn a_closures_panic_is_passed_on_unchanged_after_the_prefix() {
        let error = OpError::Panicked {
            message: "bad record 50".into(),
        };
        assert_eq!(error.to_string(), "closure panicked: bad record 50");
    }

    #[test]
    fn spill_failures_name_the_place_the_io_error_and_how_to_make_room() {
        let remedies = [
            "free disk space there",
            "--work-dir",
            "$TMPDIR",
            "$TESSERA_SHUFFLE_SPILL_MB",
            "--executor-memory-mb",
        ];
        let error = OpError::SpillCreate {
            dir: "/w/spill".into(),
            source: disk_full(),
        };
        says(
            &error,
            &["spill file in /w/spill", &disk_full().to_string()],
        );
        says(&error, &remedies);
        assert!(error.source().is_some(), "the io::Error is the source");

        let error = OpError::SpillIo {
            path: "/w/spill/spill-1-2-0".into(),
            source: disk_full(),
        };
        says(&error, &["the spill file /w/spill/spill-1-2-0"]);
        says(&error, &remedies);

        let lost = OpError::SpillReadBack {
            path: "/w/spill/spill-1-2-0".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let merge = OpError::MergeFailed {
            runs: 3,
            source: Box::new(lost),
        };
        says(
            &merge,
            &[
                "cannot merge the 3 runs",
                "cannot read back the spill file /w/spill/spill-1-2-0",
                "was it removed?",
                "do not clean their directory",
            ],
        );
        assert!(merge.source().is_some(), "the run's error is the source");
    }

    #[test]
    fn undecodable_values_say_what_was_expected_and_what_to_check() {
        let malformed = || bincode::Error::new(bincode::ErrorKind::InvalidTagEncoding(9));
        let error = OpError::RecordsDecode {
            type_name: "(u64, alloc::string::String)",
            source: malformed(),
        };
        let message = says(&error, &["must agree", "derived ones"]);
        assert!(
            message.starts_with("cannot decode records of type (u64, alloc::string::String): "),
            "{message}"
        );
        says(
            &OpError::Params {
                source: malformed(),
            },
            &[
                "cannot decode an operator's parameters",
                "derived `Serialize`",
            ],
        );
        says(
            &OpError::RecordsEncode {
                type_name: "my::Row",
                source: bincode::Error::new(bincode::ErrorKind::SequenceMustHaveLength),
            },
            &["records of type my::Row", "must suit bincode"],
        );
    }

    #[test]
    fn output_files_say_executors_must_share_the_directory() {
        says(
            &OpError::OutputCreate {
                path: "/out/part-00001".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
            &["cannot create /out/part-00001", "shared file system"],
        );
        says(
            &OpError::OutputWrite {
                path: "/out/part-00001".into(),
                source: disk_full(),
            },
            &["cannot write /out/part-00001", "free disk space there"],
        );
    }

    unsafe extern "C" fn keep(ctx: *mut c_void, message: RawBytes) {
        let message = String::from_utf8_lossy(unsafe { message.as_slice() }).into_owned();
        unsafe { *(ctx as *mut String) = message };
    }

    #[test]
    fn the_sink_receives_the_message() {
        let mut received = String::new();
        let sink = ErrorSink {
            ctx: &mut received as *mut String as *mut c_void,
            set: keep,
        };
        let error = OpError::SampleFraction { fraction: -1.0 };
        error.report(sink);
        assert_eq!(received, error.to_string());
    }
}
