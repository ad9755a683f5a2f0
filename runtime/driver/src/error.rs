//! Why the driver could not do what a cell asked: one enum, whose messages say what went wrong
//! and what to do about it. A cell receives the message as its error; the session tells a failed
//! job from a panic of the cell's own by the `Job N failed: ` and `Job N was cancelled` forms.

use std::path::PathBuf;
use std::time::Duration;
use tessera_plan::{RddId, ShuffleId};

/// What went wrong in the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A cell named an RDD this session never defined (a handle kept from another session).
    #[error(
        "rdd {0} is not defined in this session; an RDD handle from another session (or from \
         before a restart) cannot be used here: define the RDD again"
    )]
    UnknownRdd(RddId),
    /// A partition past an RDD's last.
    #[error("rdd {rdd} has no partition {partition}")]
    NoPartition { rdd: RddId, partition: u32 },
    /// A DataFrame operation on an RDD that is not a DataFrame.
    #[error(
        "rdd {0} is not a DataFrame of this session; make one with read_csv, read_json or to_df"
    )]
    NotADataFrame(RddId),
    /// polars could not plan or read a DataFrame.
    #[error("{what}: {source}")]
    Frame {
        what: String,
        #[source]
        source: tessera_frame::FrameError,
    },
    /// A DataFrame step that cannot run over partitions as asked.
    #[error(transparent)]
    FramePlan(#[from] crate::frame_plan::FramePlanError),
    /// A SQL query that cannot be planned.
    #[error("SQL: {0}")]
    Sql(#[from] tessera_sql::SqlError),
    /// A union of no DataFrames.
    #[error("union of no DataFrames: name at least one")]
    EmptyFrameUnion,
    /// A union of DataFrames whose schemas differ.
    #[error(
        "union: the DataFrames have different schemas ({first}) and ({other}); select the same columns, with the same types, from each"
    )]
    FrameUnionOfSchemas { first: String, other: String },
    /// A union of RDDs of different element types.
    #[error("union: rdd {parent} holds `{holds}`, not `{wanted}`; unite RDDs of one type")]
    UnionOfTypes {
        parent: RddId,
        holds: String,
        wanted: String,
    },
    /// A kind of RDD only the driver makes came from a cell.
    #[error(
        "partitionwise unions and checkpoints are made by the driver; define a `union` or call \
         `checkpoint` instead"
    )]
    DriverMadeKind,
    /// A shuffle id that names an RDD made without a shuffle.
    #[error("rdd {0} is not the output of a shuffle")]
    NotAShuffle(RddId),
    /// The compiled code a closure lives in cannot be read.
    #[error("cannot read compiled code at {path}: {source}")]
    UnreadableCode {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Closures compiled into an executable rather than a library.
    #[error(
        "{0} is not a shared library: closures that run on executors must be compiled into one \
         (a REPL or notebook cell, or a `cdylib` crate), not into an executable"
    )]
    NotASharedLibrary(PathBuf),
    /// `text_file` found nothing at the path.
    #[error(
        "text_file: no file matches `{pattern}` (relative paths start at {cwd}); check the path"
    )]
    NoTextFile { pattern: String, cwd: PathBuf },
    /// A file `text_file` matched cannot be read.
    #[error("cannot read {path}: {source}")]
    UnreadableText {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The session's working directory is gone.
    #[error(
        "cannot find the session's working directory: {0}; start the session from an existing directory"
    )]
    NoWorkingDirectory(#[source] std::io::Error),
    /// A checkpoint's file is missing where the driver looks for it.
    #[error(
        "checkpoint of rdd {rdd}: {missing} was not written; is {dir} on a file system every \
         executor and this session share?"
    )]
    CheckpointNotShared {
        rdd: RddId,
        missing: String,
        dir: String,
    },
    /// An accumulator id this session never created.
    #[error("accumulator {0} is not defined in this session; create it with `sc.accumulator`")]
    UnknownAccumulator(u64),
    /// `sc.add_file` failed.
    #[error(transparent)]
    SideFile(#[from] crate::side_files::SideFileError),
    /// A cell's `input()` got no line.
    #[error(transparent)]
    Input(#[from] crate::cell_input::InputError),
    /// One task failed on every attempt: its closure's error is the last attempt's.
    #[error(
        "task for partition {partition} failed {attempts} times; most recent failure on executor \
         {executor}: {message}"
    )]
    TaskFailed {
        partition: u32,
        attempts: u32,
        executor: String,
        message: String,
    },
    /// A stage was run again this many times because the map outputs it reads kept being lost.
    #[error(
        "task for partition {partition} could not fetch the output of shuffle {shuffle} \
         {attempts} times; most recent failure from executor {executor}: {message}; check that \
         executors can reach each other (their addresses in `:executors`) and have disk room"
    )]
    FetchFailed {
        partition: u32,
        shuffle: ShuffleId,
        attempts: u32,
        executor: String,
        message: String,
    },
    /// No executor came to run a task.
    #[error(
        "no executor registered within {}s; check that the cluster has free resources \
         (`tessera cluster status`) and look at the executor logs: {logs}",
        waited.as_secs()
    )]
    NoExecutors { waited: Duration, logs: String },
    /// The scheduler itself failed; the job cannot go on.
    #[error("the scheduler failed ({0}); this is a bug in Tessera: restart the session")]
    Scheduler(String),
    /// The map outputs a stage reads kept being lost while it ran (executors dying).
    #[error(
        "the map outputs of shuffle {shuffle} were lost {rounds} times while the job ran; \
         executors keep dying: look at the executor logs: {logs}"
    )]
    MapOutputsKeptLost {
        shuffle: ShuffleId,
        rounds: u32,
        logs: String,
    },
    /// A job stopped because of `cause`.
    #[error("Job {job} failed: {cause}")]
    JobFailed { job: u64, cause: Box<DriverError> },
    /// A job was cancelled (an interrupt).
    #[error("Job {0} was cancelled")]
    JobCancelled(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_job_names_the_job_then_its_cause() {
        let failed = DriverError::JobFailed {
            job: 3,
            cause: Box::new(DriverError::TaskFailed {
                partition: 1,
                attempts: 4,
                executor: "e1".into(),
                message: "boom".into(),
            }),
        };
        assert_eq!(
            failed.to_string(),
            "Job 3 failed: task for partition 1 failed 4 times; most recent failure on executor \
             e1: boom"
        );
        assert_eq!(
            DriverError::JobCancelled(12).to_string(),
            "Job 12 was cancelled"
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        let no_executors = DriverError::NoExecutors {
            waited: Duration::from_secs(120),
            logs: "/tmp/x.log".into(),
        }
        .to_string();
        assert!(no_executors.contains("within 120s"), "{no_executors}");
        assert!(
            no_executors.contains("tessera cluster status"),
            "{no_executors}"
        );
        let fetch = DriverError::FetchFailed {
            partition: 0,
            shuffle: 7,
            attempts: 4,
            executor: "e2".into(),
            message: "connection refused".into(),
        }
        .to_string();
        assert!(fetch.contains("shuffle 7 4 times"), "{fetch}");
        assert!(fetch.contains("reach each other"), "{fetch}");
        assert!(
            DriverError::UnknownRdd(9)
                .to_string()
                .contains("define the RDD again")
        );
    }
}
