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
    NoPartition {
        /// The RDD asked for.
        rdd: RddId,
        /// The partition index asked for, past the RDD's last.
        partition: u32,
    },
    /// A DataFrame operation on an RDD that is not a DataFrame.
    #[error(
        "rdd {0} is not a DataFrame of this session; make one with read_csv, read_json or to_df"
    )]
    NotADataFrame(RddId),
    /// polars could not plan or read a DataFrame.
    #[error("{what}: {source}")]
    Frame {
        /// What the driver was doing: the DataFrame operation's name, or reading or inferring
        /// the schema of a file.
        what: String,
        /// polars' error.
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
    FrameUnionOfSchemas {
        /// The first DataFrame's schema, as `name: type, ...`.
        first: String,
        /// The schema of the first DataFrame that differs from it, in the same form.
        other: String,
    },
    /// A union of RDDs of different element types.
    #[error("union: rdd {parent} holds `{holds}`, not `{wanted}`; unite RDDs of one type")]
    UnionOfTypes {
        /// The first parent RDD whose element type differs from the union's.
        parent: RddId,
        /// That parent's element type (its Rust type name).
        holds: String,
        /// The union's element type, as the cell declared it.
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
    /// The compiled code a closure lives in cannot be read, or is not a shared library.
    #[error(transparent)]
    Artifact(#[from] crate::artifacts::ArtifactError),
    /// An input path (of `text_file`, or of a DataFrame's file) matches no file.
    #[error("no file matches `{pattern}` (relative paths start at {cwd}); check the path")]
    NoInputFile {
        /// The path as the cell gave it: a file, a directory, or a glob in its last component.
        pattern: String,
        /// The session's working directory, where a relative `pattern` starts.
        cwd: PathBuf,
    },
    /// An input file (of `text_file`, or of a DataFrame) cannot be read.
    #[error("cannot read {path}: {source}")]
    UnreadableInput {
        /// The file that cannot be read.
        path: PathBuf,
        /// Why it cannot be read.
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
        /// The checkpointed RDD.
        rdd: RddId,
        /// The first partition file (`dir/part-NNNNN`) the driver did not find.
        missing: String,
        /// The checkpoint's directory: `rdd-N` under the one `checkpoint` was given.
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
        /// The partition whose task failed.
        partition: u32,
        /// Attempts that failed: `MAX_TASK_ATTEMPTS`, 4.
        attempts: u32,
        /// The id of the executor the last attempt ran on.
        executor: String,
        /// The last attempt's error: its code's (a panic, a returned error, a record it could
        /// not decode), or how its executor was lost.
        message: String,
    },
    /// A task could not fetch a shuffle's map output in `attempts` rounds of its stage in a row.
    #[error(
        "task for partition {partition} could not fetch the output of shuffle {shuffle} \
         {attempts} times; most recent failure from executor {executor}: {message}; check that \
         executors can reach each other (their addresses in `:executors`) and have disk room"
    )]
    FetchFailed {
        /// The partition of the task whose fetch failed.
        partition: u32,
        /// The shuffle whose map output it could not fetch.
        shuffle: ShuffleId,
        /// Rounds in a row in which a fetch failed: `MAX_STAGE_ATTEMPTS`, 4.
        attempts: u32,
        /// The id of the executor that held the map output.
        executor: String,
        /// The last failed fetch's error.
        message: String,
    },
    /// No executor came to run a task.
    #[error(
        "no executor registered within {}s; check that the cluster has free resources \
         (`tessera cluster status`) and look at the executor logs: {logs}",
        waited.as_secs()
    )]
    NoExecutors {
        /// How long the task waited for an executor: `EXECUTOR_WAIT`, 120 s.
        waited: Duration,
        /// Where the executors' logs are: a file, or where to find them on a cluster.
        logs: String,
    },
    /// The scheduler itself failed; the job cannot go on.
    #[error("the scheduler failed ({0}); this is a bug in Tessera: restart the session")]
    Scheduler(String),
    /// The map outputs a stage reads kept being lost while it ran (executors dying).
    #[error(
        "the map outputs of shuffle {shuffle} were lost {rounds} times while the job ran; \
         executors keep dying: look at the executor logs: {logs}"
    )]
    MapOutputsKeptLost {
        /// A shuffle whose map outputs the last round found missing.
        shuffle: ShuffleId,
        /// Rounds the stage ran again in all: `MAX_STAGE_ROUNDS`, 16.
        rounds: u32,
        /// Where the executors' logs are: a file, or where to find them on a cluster.
        logs: String,
    },
    /// A job stopped because of `cause`.
    #[error("Job {job} failed: {cause}")]
    JobFailed {
        /// The job's id in the session (`:jobs`).
        job: u64,
        /// The error that stopped it.
        cause: Box<DriverError>,
    },
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
    fn an_artifact_error_reads_as_the_artifact_stores_own() {
        let error = DriverError::from(crate::artifacts::ArtifactError::NotASharedLibrary(
            "/bin/tool".into(),
        ));
        assert_eq!(
            error.to_string(),
            "/bin/tool is not a shared library: closures that run on executors must be compiled \
             into one (a REPL or notebook cell, or a `cdylib` crate), not into an executable"
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
