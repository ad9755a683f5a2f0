//! What can go wrong on an executor, as one typed error: fetching and loading a task's code,
//! running it, reading its source, caching partitions, and keeping, serving and fetching shuffle
//! output. Every message says what happened and, where the user can act, what to do; a message
//! that comes from cell code (a closure's panic, a serialization error) is passed on unchanged.
//!
//! A task's failure reaches the driver as text ([`tessera_plan::TaskOutcome`]): the executor
//! turns the error into its message where it builds the outcome.

use std::path::PathBuf;
use tessera_plan::ShuffleId;
use tessera_plan::decode::DecodeError;

/// Where an executor's files are, for messages that ask to free disk space there.
const WORK_DIR: &str = "executors keep their files in their sandbox under the agent's \
                        --work-dir, or in $TMPDIR (default /tmp) when the session starts them \
                        itself";

/// What makes a task's shuffle writers and fetched buckets go to disk less.
const SPILL_MEMORY: &str = "give executors more shuffle memory ($TESSERA_SHUFFLE_SPILL_MB where \
                            they start; by default a quarter of --executor-memory-mb)";

/// What makes finished map outputs go to disk less.
const OUTPUT_MEMORY: &str = "give executors more memory for map outputs \
                             ($TESSERA_SHUFFLE_MEMORY_MB where they start; by default a quarter \
                             of --executor-memory-mb)";

/// Why an executor could not do what a task or a peer asked.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The driver did not hand over a library or side file.
    #[error("cannot fetch {what} {hash} from the driver: {source}")]
    ArtifactFetch {
        /// "library", or "file NAME".
        what: String,
        /// The artifact's content hash.
        hash: String,
        /// The driver's answer.
        source: tonic::Status,
    },
    /// A library or side file arrived, but not with the content its hash names.
    #[error(
        "{what} {hash} arrived corrupted (its content hashes to {actual}); the driver or network \
         is faulty"
    )]
    ArtifactCorrupt {
        /// "library", or "file NAME".
        what: String,
        /// The hash asked for.
        hash: String,
        /// The hash of what came.
        actual: String,
    },
    /// A fetched library or side file could not be written to local disk.
    #[error(
        "cannot store {what} {hash} at {path}: {source}; free disk space there ({hint})",
        hint = WORK_DIR
    )]
    ArtifactStore {
        /// "library", or "file NAME".
        what: String,
        /// The artifact's content hash.
        hash: String,
        /// The file it was written to.
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// The dynamic loader refused a cell library (or the session's standard library).
    #[error(
        "cannot load library {hash} ({path}): {reason}. The session compiled it on its own host: \
         executors must run on hosts of the same architecture, with a glibc at least as new"
    )]
    LibraryLoad {
        /// The library's content hash.
        hash: String,
        /// Where it is on this executor.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// A task's code lies in a library this executor has not loaded.
    #[error("library {library} is not loaded")]
    LibraryNotLoaded {
        /// The library's content hash.
        library: String,
    },
    /// A cell library was built against another version of the executor's ABI.
    #[error(
        "cell library {library} speaks ABI version {library_version}, this executor \
         {executor_version}: rebuild the session and executors from one Tessera"
    )]
    AbiMismatch {
        /// The library's content hash.
        library: String,
        /// The ABI version its tables carry.
        library_version: u32,
        /// The ABI version of this executor.
        executor_version: u32,
    },
    /// A broadcast value could not be had from the driver.
    #[error("cannot fetch broadcast {id} from the driver: {}", .source.message())]
    BroadcastFetch {
        /// The broadcast's id.
        id: u64,
        /// The driver's answer.
        source: tonic::Status,
    },
    /// Cell code failed and said why (through the ABI's error sink): a closure's panic, a
    /// record that does not decode. Shown as the cell code put it.
    #[error("{message}")]
    UserCode {
        /// The cell code's own message.
        message: String,
    },
    /// An operator or action did not open, and its code gave no reason.
    #[error("{what} failed to open")]
    OpenFailed {
        /// "the action", or "rdd N".
        what: String,
    },
    /// The task's code failed and gave no reason.
    #[error("the task failed")]
    TaskFailed,
    /// A slot's thread helping the task with its batches panicked outside the task's code,
    /// which catches the panics of user code.
    #[error(
        "a thread helping the task panicked: {0}. This is a bug in Tessera; please report it \
         with the executor's log"
    )]
    HelperPanicked(String),
    /// The cached partitions a task starts from changed on this executor (another task cached
    /// or evicted one) between the task opening its steps and opening them again for a chunk
    /// of its records (`morsels.rs`).
    #[error(
        "the cached partitions this task starts from changed on this executor as it started \
         (another task cached or evicted one); the driver runs the task again"
    )]
    StartChanged,
    /// A step receives records of another type than it was compiled for.
    #[error(
        "{what} expects records of type `{expected}` but receives `{actual}`; re-run the cells \
         that define this RDD"
    )]
    InputTypeMismatch {
        /// "the action", "a union", or "rdd N".
        what: String,
        /// The type it takes.
        expected: String,
        /// The type it is given.
        actual: String,
    },
    /// A union task came with no chains to read.
    #[error("a union of no RDDs")]
    EmptyUnion,
    /// The driver cancelled the task's job while it ran.
    #[error("the job was cancelled")]
    Cancelled,
    /// A text file's split could not be read on this host.
    #[error(
        "cannot read {path} on host {host} (bytes {start}..{end}): {source}; every executor host \
         must see the file at the same path (a shared file system); send small files with \
         sc.add_file instead"
    )]
    SplitRead {
        /// The file, as the session named it.
        path: String,
        /// This executor's host name.
        host: String,
        /// The first byte of the split.
        start: u64,
        /// The byte after the split.
        end: u64,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// A partition saved by `checkpoint` could not be read.
    #[error(
        "cannot read the checkpoint file {path}: {source}; was it removed? A checkpointed RDD \
         reads its files for as long as it is used: keep them, on a file system every executor \
         host sees at the same path"
    )]
    CheckpointRead {
        /// The checkpoint file.
        path: String,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// A task reading a shuffle ran without its fetched buckets.
    #[error("the buckets of shuffle {shuffle} were not fetched")]
    ShuffleNotFetched {
        /// The shuffle.
        shuffle: ShuffleId,
    },
    /// A fetched or local bucket could not be read back.
    #[error("cannot read a bucket of shuffle {shuffle}: {source}")]
    ShuffleBucketRead {
        /// The shuffle.
        shuffle: ShuffleId,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// Cell code could not encode a partition to cache it serialized or on disk.
    #[error("cannot serialize a cached partition: {message}")]
    CacheEncode {
        /// The cell code's own message.
        message: String,
    },
    /// Cell code could not decode a partition cached serialized or on disk.
    #[error("cannot read a cached partition: {message}")]
    CacheDecode {
        /// The cell code's own message.
        message: String,
    },
    /// A partition cached on disk could not be read.
    #[error("cannot read the cached partition in {path}: {source}")]
    CacheRead {
        /// The block's file.
        path: PathBuf,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// A partition could not be cached on disk (it is then not cached, and recomputed when
    /// needed).
    #[error(
        "cannot write a cached partition to {path} ({source}); free disk space there ({hint})",
        hint = WORK_DIR
    )]
    CacheWrite {
        /// The block's file, or the directory it goes in.
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// A file of the host memory that cached partitions are kept in could not be made,
    /// written, mapped or moved.
    #[error(
        "cannot keep a cached partition in host memory at {path}: {source}; if its file system \
         is full, give it more room (a container's --shm-size), or start the agent with \
         --memory-dir none to keep cached partitions in executor memory, where they are lost \
         with their executor"
    )]
    HostMemory {
        /// The file, or its directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The driver asked this executor to adopt partitions kept in host memory, and its agent
    /// gave it none to keep them in.
    #[error(
        "this executor keeps no cached partitions in host memory (its agent gave it no \
         --memory-dir), so it cannot adopt a lost executor's"
    )]
    NoHostMemory,
    /// A lost executor's partition in host memory could not be adopted: its manifest or
    /// files do not agree. Nothing is lost but time: the partition is computed again.
    #[error("cannot adopt the cached partition of {path}: {reason}")]
    HostMemoryDamaged {
        /// The manifest or file.
        path: PathBuf,
        /// What does not agree.
        reason: String,
    },
    /// Bytes that do not decode as what they should be (a cached block, a map output).
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// Map outputs past the store's memory budget could not be written to disk.
    #[error(
        "cannot write shuffle output to {path} ({source}); free disk space there ({hint}), or \
         {remedy}",
        hint = WORK_DIR,
        remedy = OUTPUT_MEMORY
    )]
    MapOutputSpill {
        /// The file it was written to.
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// The copy of a map output that the agent serves once the executor is gone could not be
    /// written in the sandbox.
    #[error(
        "cannot keep a copy of shuffle output at {path} for the agent to serve ({source}); free \
         disk space in the agent's --work-dir, or run the session with --no-shuffle-service"
    )]
    ServedCopyWrite {
        /// The copy's path.
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// The directory map outputs go to could not be made.
    #[error(
        "cannot create the shuffle directory {dir} ({source}); free disk space there ({hint})",
        hint = WORK_DIR
    )]
    ShuffleDir {
        /// The shuffle directory.
        dir: PathBuf,
        /// Why it could not be made.
        source: std::io::Error,
    },
    /// A map task's output, larger than its memory budget, could not be streamed to its file.
    #[error(
        "cannot write the map output {path} ({source}); free disk space there ({hint}), or \
         {remedy}",
        hint = WORK_DIR,
        remedy = SPILL_MEMORY
    )]
    MapOutputWrite {
        /// The output's file.
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// A map output streamed to a file does not read back as one.
    #[error("cannot read back the map output {path} ({source})")]
    MapOutputReadBack {
        /// The output's file.
        path: PathBuf,
        /// Why it does not read back (`InvalidData` for a malformed table).
        source: std::io::Error,
    },
    /// This executor holds no such map output (or bucket of it).
    #[error("no output of map partition {map_partition} of shuffle {shuffle}")]
    NoMapOutput {
        /// The shuffle.
        shuffle: ShuffleId,
        /// The map partition.
        map_partition: u32,
    },
    /// A map output this executor wrote, which the driver expected here, is gone.
    #[error(
        "this executor lost a map output: no output of map partition {map_partition} of shuffle \
         {shuffle}"
    )]
    LocalMapOutputLost {
        /// The shuffle.
        shuffle: ShuffleId,
        /// The map partition.
        map_partition: u32,
    },
    /// The executor holding map outputs could not be reached.
    #[error(
        "cannot connect to {address}: {}",
        tessera_credentials::describe_error(.source)
    )]
    PeerConnect {
        /// The peer's address.
        address: String,
        /// Why the connection failed.
        source: tonic::transport::Error,
    },
    /// The executor holding map outputs refused them, or its stream broke.
    #[error("{}", .source.message())]
    PeerFailed {
        /// The peer's answer.
        source: tonic::Status,
    },
    /// The copy of a lost executor's map output that its agent serves is not a whole map
    /// output: the driver computes the output again.
    #[error(
        "the copy of map output {path} of executor {executor_id} that its agent serves is \
         unusable: {reason}"
    )]
    ServedCopyUnusable {
        executor_id: String,
        /// Relative to the executor's sandbox.
        path: String,
        reason: String,
    },
    /// A fetched bucket, past the task's memory budget, could not be written to disk.
    #[error(
        "cannot keep a fetched bucket in {dir} ({source}); free disk space there ({hint}), or \
         {remedy}",
        hint = WORK_DIR,
        remedy = SPILL_MEMORY
    )]
    FetchSpill {
        /// The spill directory.
        dir: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// A peer sent a piece of a bucket it was not asked for.
    #[error("sent a piece of bucket {bucket} of {asked} asked for")]
    UnaskedBucket {
        /// The bucket it named.
        bucket: u32,
        /// How many buckets were asked for.
        asked: usize,
    },
    /// A peer's stream ended before every bucket asked for came.
    #[error("the stream ended with {missing} of {asked} buckets missing")]
    BucketsMissing {
        /// Buckets that did not come.
        missing: usize,
        /// Buckets asked for.
        asked: usize,
    },
    /// The driver asked for a copy of a partition this executor no longer keeps (evicted): it
    /// is recomputed from lineage when next read.
    #[error("partition {partition} of rdd {rdd} is not cached on this executor any more")]
    NotCached { rdd: u64, partition: u32 },
    /// A copy of a cached partition came without its header.
    #[error("a copy of a cached partition came without its header")]
    ReplicaWithoutHeader,
    /// A copy of a cached partition is more than this executor may cache: it is not kept, and
    /// the partition has one copy fewer.
    #[error(
        "a copy of partition {partition} of rdd {rdd} is more than the {limit} bytes this \
         executor may cache; give executors more memory (--executor-memory-mb) or cache it at a \
         level that spills (MemoryAndDisk2)"
    )]
    ReplicaTooLarge {
        rdd: u64,
        partition: u32,
        /// The block manager's memory limit.
        limit: u64,
    },
    /// A partition cached `MemoryOnly` takes more than all the memory the executor may cache:
    /// it is not cached (its task goes on), and is recomputed when next read, as in Spark.
    #[error(
        "partition {partition} of rdd {rdd} takes more than the {limit} bytes this executor \
         may cache, and is not cached; it is computed again each time it is read. Cache it at \
         a level that goes to disk (MemoryAndDisk, DiskOnly), in more partitions \
         (repartition), or give executors more memory (--executor-memory-mb)"
    )]
    PartitionTooLarge {
        rdd: u64,
        partition: u32,
        /// The block manager's memory limit.
        limit: u64,
    },
    /// The driver has not answered heartbeats for the executor's driver timeout: its session
    /// is gone, and the executor ends ([`crate::driver_watch`]).
    #[error(
        "the driver at {driver} has not answered for {silent_s} s (the driver timeout is \
         {timeout_s} s): its session has ended, so this executor ends too; if the session's \
         driver can pause longer, start the session with a longer $TESSERA_DRIVER_TIMEOUT_S"
    )]
    DriverGone {
        /// The driver's executor endpoint.
        driver: String,
        /// How long it has been silent, in whole seconds.
        silent_s: u64,
        /// The driver timeout, in seconds.
        timeout_s: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    fn disk_full() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::StorageFull)
    }

    /// `error`'s message, checked to hold each of `parts`.
    fn says(error: &ExecutorError, parts: &[&str]) -> String {
        let message = error.to_string();
        for part in parts {
            assert!(message.contains(part), "{part:?} is not in {message:?}");
        }
        message
    }

    #[test]
    fn cell_code_messages_are_passed_on_unchanged() {
        let message = "closure panicked: bad record 50";
        let error = ExecutorError::UserCode {
            message: message.into(),
        };
        assert_eq!(error.to_string(), message);
    }

    #[test]
    fn disk_failures_name_the_place_the_io_error_and_how_to_make_room() {
        let work_dir = ["--work-dir", "$TMPDIR"];
        let error = ExecutorError::FetchSpill {
            dir: "/w/spill".into(),
            source: disk_full(),
        };
        says(
            &error,
            &[
                "fetched bucket in /w/spill",
                &disk_full().to_string(),
                "free disk space there",
                "$TESSERA_SHUFFLE_SPILL_MB",
                "--executor-memory-mb",
            ],
        );
        says(&error, &work_dir);
        assert!(error.source().is_some(), "the io::Error is the source");

        let error = ExecutorError::MapOutputWrite {
            path: "/w/shuffle/shuffle-1-map-2-3.data".into(),
            source: disk_full(),
        };
        says(
            &error,
            &[
                "the map output /w/shuffle/shuffle-1-map-2-3.data",
                "free disk space there",
                "$TESSERA_SHUFFLE_SPILL_MB",
            ],
        );
        says(&error, &work_dir);

        let error = ExecutorError::MapOutputSpill {
            path: "/w/shuffle/shuffle-1-map-2.data".into(),
            source: disk_full(),
        };
        says(
            &error,
            &[
                "shuffle output to /w/shuffle/shuffle-1-map-2.data",
                "free disk space there",
                "$TESSERA_SHUFFLE_MEMORY_MB",
            ],
        );
        says(&error, &work_dir);

        let error = ExecutorError::ShuffleDir {
            dir: "/w/shuffle".into(),
            source: disk_full(),
        };
        says(&error, &["shuffle directory /w/shuffle", "free disk space"]);
        says(&error, &work_dir);

        let error = ExecutorError::CacheWrite {
            path: "/w/blocks/rdd-3-0-7".into(),
            source: disk_full(),
        };
        says(&error, &["/w/blocks/rdd-3-0-7", "free disk space there"]);
        says(&error, &work_dir);

        let error = ExecutorError::ArtifactStore {
            what: "library".into(),
            hash: "ab12".into(),
            path: "/w/artifacts/ab12.so".into(),
            source: disk_full(),
        };
        says(
            &error,
            &["library ab12 at /w/artifacts/ab12.so", "free disk space"],
        );
        says(&error, &work_dir);
    }

    #[test]
    fn a_library_that_does_not_load_says_where_executors_must_run() {
        let error = ExecutorError::LibraryLoad {
            hash: "ab12".into(),
            path: "/w/artifacts/ab12.so".into(),
            reason: "version `GLIBC_2.39' not found".into(),
        };
        says(
            &error,
            &[
                "cannot load library ab12 (/w/artifacts/ab12.so)",
                "GLIBC_2.39",
                "same architecture",
                "glibc at least as new",
            ],
        );
    }

    #[test]
    fn an_abi_mismatch_says_to_rebuild_from_one_tessera() {
        let error = ExecutorError::AbiMismatch {
            library: "ab12".into(),
            library_version: 2,
            executor_version: 3,
        };
        says(
            &error,
            &[
                "library ab12 speaks ABI version 2, this executor 3",
                "rebuild the session and executors from one Tessera",
            ],
        );
    }

    #[test]
    fn records_of_the_wrong_type_ask_to_rerun_the_cells() {
        let error = ExecutorError::InputTypeMismatch {
            what: "rdd 4".into(),
            expected: "u64".into(),
            actual: "String".into(),
        };
        says(
            &error,
            &[
                "rdd 4 expects records of type `u64` but receives `String`",
                "re-run the cells",
            ],
        );
    }

    #[test]
    fn unreadable_inputs_say_every_host_must_see_them() {
        let error = ExecutorError::SplitRead {
            path: "/data/a.txt".into(),
            host: "node-2".into(),
            start: 0,
            end: 64,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        says(
            &error,
            &[
                "cannot read /data/a.txt on host node-2 (bytes 0..64)",
                "shared file system",
                "sc.add_file",
            ],
        );
        let error = ExecutorError::CheckpointRead {
            path: "/data/ckpt/part-0".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        says(
            &error,
            &[
                "checkpoint file /data/ckpt/part-0",
                "was it removed?",
                "every executor host sees at the same path",
            ],
        );
    }

    #[test]
    fn answers_of_the_driver_and_peers_are_quoted_by_their_message() {
        let error = ExecutorError::BroadcastFetch {
            id: 3,
            source: tonic::Status::unavailable("the driver is gone"),
        };
        assert_eq!(
            error.to_string(),
            "cannot fetch broadcast 3 from the driver: the driver is gone"
        );
        let held = "executor exec-2 holds no output of map partition 1 of shuffle 4";
        let error = ExecutorError::PeerFailed {
            source: tonic::Status::not_found(held),
        };
        assert_eq!(error.to_string(), held);
        // A peer answers "executor ID holds" followed by this.
        let missing = ExecutorError::NoMapOutput {
            shuffle: 4,
            map_partition: 1,
        };
        assert!(held.ends_with(&format!("holds {missing}")));
    }

    #[test]
    fn a_corrupt_artifact_blames_the_driver_or_network() {
        let error = ExecutorError::ArtifactCorrupt {
            what: "file lookup.csv".into(),
            hash: "ab12".into(),
            actual: "cd34".into(),
        };
        says(
            &error,
            &["file lookup.csv ab12 arrived corrupted", "cd34", "network"],
        );
    }
}
