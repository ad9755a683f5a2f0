//! What the driver sends an executor to run, and what comes back.

use crate::decode::{DecodeError, decode_bincode};
use crate::rdd::{CodeRef, FileSplit, Operator, RddId, StorageLevel};
use crate::replica::ReplicaPeer;
use serde::{Deserialize, Serialize};

/// How deeply partitionwise unions may nest in one task. A task is a tree of chains, and
/// decoding recurses once per level: bytes that nested without end would exhaust the
/// executor's stack, which no error can report.
pub const MAX_CHAIN_NESTING: usize = 128;

/// Keeps decoding within [`MAX_CHAIN_NESTING`] levels of chains.
mod nesting {
    use super::{Chain, MAX_CHAIN_NESTING};
    use serde::{Deserialize, Deserializer, de::Error};
    use std::cell::Cell;

    thread_local! {
        /// Levels of chains being decoded on this thread.
        static DEPTH: Cell<usize> = const { Cell::new(0) };
    }

    /// Restores the depth when a level ends, however it ends.
    struct Level(usize);

    impl Drop for Level {
        fn drop(&mut self) {
            DEPTH.set(self.0);
        }
    }

    pub(super) fn chains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Chain>, D::Error> {
        let depth = DEPTH.get();
        if depth >= MAX_CHAIN_NESTING {
            return Err(D::Error::custom(format!(
                "unions nest more than {MAX_CHAIN_NESTING} levels deep"
            )));
        }
        let _level = Level(depth);
        DEPTH.set(depth + 1);
        Vec::<Chain>::deserialize(d)
    }
}

/// Decodes a task the driver sent.
pub fn decode_task(bytes: &[u8]) -> Result<TaskSpec, DecodeError> {
    decode_bincode("a task from the driver", bytes)
}

/// Decodes what an executor answered a task with.
pub fn decode_outcome(bytes: &[u8]) -> Result<TaskOutcome, DecodeError> {
    decode_bincode("a task's outcome from an executor", bytes)
}

/// Where a task's records start when no step of its chain is cached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TaskSource {
    /// The serialized records of this partition.
    Records {
        /// The partition's records, as the cell serialized them.
        #[serde(with = "crate::bytes")]
        bytes: Vec<u8>,
        /// The source that decodes them into batches.
        decoder: Operator<CodeRef>,
    },
    /// A byte range of a text file, read by the executor.
    TextSplit {
        /// The byte range read.
        split: FileSplit,
        /// The source that turns the split's lines, a chunk at a time, into batches.
        decoder: Operator<CodeRef>,
    },
    /// One partition of a shuffle's output: bucket `partition` of every map output, fetched
    /// from the executors that wrote them, each decoded by `decoder`.
    ShuffleRead {
        /// The shuffle read, known by the id of its output RDD.
        shuffle: ShuffleId,
        /// The bucket read from every map output: this partition of the shuffle's output RDD.
        partition: u32,
        /// The source that decodes each record frame of the buckets.
        decoder: Operator<CodeRef>,
        /// Filled in by the scheduler just before the task is sent.
        locations: Vec<MapOutputLocation>,
    },
    /// A partition saved by `checkpoint`: a file holding one encoded batch.
    SavedPartition {
        /// The file, as the executor opens it.
        path: String,
        /// The source that decodes the file's bytes into batches.
        decoder: Operator<CodeRef>,
    },
    /// A partitionwise union of co-partitioned RDDs: the records of each chain in turn.
    Concat(#[serde(deserialize_with = "nesting::chains")] Vec<Chain>),
}

/// Records from a source through a chain of narrow steps: a task is one chain and an action.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chain {
    /// `None` when the executor is expected to hold a cached step of the chain.
    pub source: Option<TaskSource>,
    /// Every RDD of the chain, from the one its source makes to the last, in order.
    pub steps: Vec<Step>,
}

impl TaskSource {
    /// Every shuffle this source reads: its id, the partition read, and where the map outputs are.
    pub fn shuffle_reads(&self) -> Vec<(ShuffleId, u32, &[MapOutputLocation])> {
        match self {
            TaskSource::ShuffleRead {
                shuffle,
                partition,
                locations,
                ..
            } => vec![(*shuffle, *partition, locations.as_slice())],
            TaskSource::Concat(chains) => chains
                .iter()
                .filter_map(|c| c.source.as_ref())
                .flat_map(TaskSource::shuffle_reads)
                .collect(),
            TaskSource::Records { .. }
            | TaskSource::TextSplit { .. }
            | TaskSource::SavedPartition { .. } => Vec::new(),
        }
    }

    /// Every operator that turns this source's bytes into batches (a concatenation has one per
    /// chain), with the operators of the chains' steps.
    pub fn operators(&self) -> Vec<&Operator<CodeRef>> {
        match self {
            TaskSource::Records { decoder, .. }
            | TaskSource::TextSplit { decoder, .. }
            | TaskSource::ShuffleRead { decoder, .. }
            | TaskSource::SavedPartition { decoder, .. } => vec![decoder],
            TaskSource::Concat(chains) => chains.iter().flat_map(Chain::operators).collect(),
        }
    }
}

impl Chain {
    /// Every operator the chain runs, its source's included.
    pub fn operators(&self) -> Vec<&Operator<CodeRef>> {
        let mut operators: Vec<&Operator<CodeRef>> =
            self.steps.iter().filter_map(|s| s.op.as_ref()).collect();
        if let Some(source) = &self.source {
            operators.extend(source.operators());
        }
        operators
    }

    /// How many executors keep each block the chain caches: the most any of its steps (or of
    /// the chains it concatenates) asks for.
    pub fn replication(&self) -> usize {
        let own = self
            .steps
            .iter()
            .filter_map(|s| s.persist)
            .map(StorageLevel::replication)
            .max()
            .unwrap_or(1);
        match &self.source {
            Some(TaskSource::Concat(chains)) => {
                chains.iter().map(Chain::replication).fold(own, usize::max)
            }
            _ => own,
        }
    }
}

impl TaskSpec {
    /// Every operator the task runs: its chain's and its action's.
    pub fn operators(&self) -> Vec<&Operator<CodeRef>> {
        let mut operators = self.chain.operators();
        if let TaskAction::Run(action) | TaskAction::ShuffleWrite { writer: action, .. } =
            &self.action
        {
            operators.push(action);
        }
        operators
    }
}

/// A shuffle is known by the id of the RDD its output forms.
pub type ShuffleId = RddId;

/// Where some map outputs of a shuffle are kept: an executor, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapOutputLocation {
    /// The executor that wrote the outputs.
    pub executor_id: String,
    /// `host:port` of that executor's service, or, with `from_agent`, of the sandbox files
    /// service of the agent that ran it.
    pub address: String,
    /// The map partitions (partitions of the shuffle's parent) whose outputs it holds.
    pub map_partitions: Vec<u32>,
    /// The executor is gone: its outputs are read from the copies in its sandbox
    /// ([`crate::map_output::served_path`]), through its agent.
    pub from_agent: bool,
}

/// One RDD in a task's chain of narrow transformations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// The RDD this step computes.
    pub rdd: RddId,
    /// This RDD's partition that the task computes (below a union it differs from the task's).
    pub partition: u32,
    /// `None` for the first step, whose records come from the task's source, and for a union,
    /// which passes its parent's records on unchanged.
    pub op: Option<Operator<CodeRef>>,
    /// Keep this RDD's partition in the executor's block manager.
    pub persist: Option<StorageLevel>,
    /// Type name of its records.
    pub element_type: String,
}

/// What to do with the records of the last step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TaskAction {
    /// Count records; the executor does it without calling user code.
    Count,
    /// An action operator whose result bytes go back to the cell.
    Run(Operator<CodeRef>),
    /// The map side of a shuffle: `writer` splits the partition into buckets, which the
    /// executor keeps for reducers to fetch; the task's result is empty.
    ShuffleWrite {
        /// The shuffle whose map side this is, known by the id of its output RDD.
        shuffle: ShuffleId,
        /// The action that splits the partition into buckets.
        writer: Operator<CodeRef>,
    },
}

/// A file the session added with `sc.add_file`: executors keep a copy named `name` in their
/// side-file directory, fetched from the driver by content hash before a task needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideFile {
    /// The file's name, without the directory it was added from.
    pub name: String,
    /// SHA-256 of the contents, hex.
    pub hash: String,
}

/// The environment variable that names a process's side-file directory: set for the session's
/// cells and in every executor; `tessera::files::get` reads it.
pub const FILES_DIR_ENV: &str = "TESSERA_FILES_DIR";

/// The directory of an executor's work directory where it keeps the libraries it loads, each
/// named by its hash (`HASH.so`), unless its agent gives it one that the session's executors
/// on the host share. A library there is loaded without a fetch from the driver.
pub const EXECUTOR_LIBRARY_DIR: &str = "artifacts";

/// One task: compute one partition of the last step and apply the action to it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The job this task belongs to, numbered by the driver from 0.
    pub job_id: u64,
    /// This attempt's id, unique in the session: every attempt of a task gets a new one.
    pub task_id: u64,
    /// How many earlier attempts of this task failed, through its code or the loss of their
    /// executor (0 for the first).
    pub attempt: u32,
    /// The partition of the last step's RDD that the task computes.
    pub partition: u32,
    /// From the source RDD to the RDD the action runs on. Its source is `None` when the
    /// driver's block map says the executor caches a step of this partition: parallelized
    /// records are then not shipped again. If the block is gone after all, the executor
    /// answers [`TaskOutcome::CacheMiss`] and the driver resends with the source.
    pub chain: Chain,
    /// What to do with the last step's records.
    pub action: TaskAction,
    /// Every file added so far, as Spark's tasks carry the session's added files: the executor
    /// fetches those it lacks (or holds an older version of) before running the task.
    pub files: Vec<SideFile>,
    /// Executors to copy each block the task caches at a replicated level to, as many as the
    /// level keeps beyond this executor's (none when it caches nothing replicated).
    pub replicate_to: Vec<ReplicaPeer>,
}

/// How a task obtained the partition its action ran on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionOrigin {
    /// Every step was computed from the source.
    Computed,
    /// Read from the block manager: the cached RDD the chain resumed from.
    Cached {
        /// The RDD whose cached partition the chain resumed from.
        rdd: RddId,
    },
    /// Carried on from part of a partition a lost executor had computed and cached in host
    /// memory when it died: `records` records of RDD `rdd` came from there, the rest from the
    /// source.
    Resumed {
        /// The RDD whose partial partition the task carried on from.
        rdd: RddId,
        /// The records it found there.
        records: u64,
    },
}

/// A block the task left in the executor's block manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlock {
    /// The RDD whose partition the block holds.
    pub rdd: RddId,
    /// The partition it holds.
    pub partition: u32,
    /// Bytes of executor memory it holds (0 when it is kept on disk).
    pub bytes: u64,
    /// The storage level it is kept at.
    pub level: StorageLevel,
    /// The other executors that now keep a copy of it (a replicated level's).
    pub replicas: Vec<String>,
}

/// A partition the task was asked to cache and did not: the task succeeded without it, and
/// the partition is computed again when next read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotCached {
    /// The RDD whose partition it is.
    pub rdd: RddId,
    /// The partition.
    pub partition: u32,
    /// Why, and what to do about it, for the user.
    pub reason: String,
}

/// Per-task metrics, reported with every result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMetrics {
    /// The executor that ran the task.
    pub executor_id: String,
    /// That executor's process id.
    pub executor_pid: u32,
    /// Whether the partition was computed or read from the cache.
    pub origin: PartitionOrigin,
    /// Records the action received.
    pub records: u64,
    /// Microseconds from the executor starting the task to its end.
    pub run_micros: u64,
    /// Microseconds the task waited on its executor for a core before it started: a task
    /// sent ahead of a free one (the executor's `task_slots.rs`) waits there for the task
    /// before it to end.
    pub slot_wait_micros: u64,
    /// Blocks the task cached.
    pub stored: Vec<StoredBlock>,
    /// Partial values of accumulators the task's code added to (id, encoded value).
    pub accumulator_updates: Vec<(u64, Vec<u8>)>,
    /// Cached partitions (rdd, partition) the executor dropped to make room for `stored`.
    pub evicted: Vec<(RddId, u32)>,
    /// Partitions the task was asked to cache and did not.
    pub not_cached: Vec<NotCached>,
    /// Bytes of shuffle buckets this task fetched (reduce side) and wrote (map side).
    pub shuffle_read_bytes: u64,
    /// Bytes of shuffle buckets this task wrote (map side).
    pub shuffle_write_bytes: u64,
    /// Bytes the task wrote to spill files (writers, merges and sorts past their budget) and
    /// of fetched buckets it kept on disk rather than in memory.
    pub spilled_bytes: u64,
    /// Threads the task's records went through: 1, or more when idle slots of its executor
    /// took some of a cached partition's batches (the executor's `morsels.rs`).
    pub threads: u32,
}

/// A finished task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TaskOutcome {
    /// The task ran to its end.
    Success {
        /// The action's result bytes (empty for a shuffle's map side).
        #[serde(with = "crate::bytes")]
        result: Vec<u8>,
        /// What the task did, and where.
        metrics: TaskMetrics,
    },
    /// User code failed (a panic, an error it returned, a record it could not decode).
    Failed {
        /// Why, as the executor reports it.
        message: String,
    },
    /// The task came without its source and the executor no longer caches the partition.
    CacheMiss,
    /// A map output the task needed could not be fetched from `executor_id`: the driver
    /// recomputes it (resubmitting the map stage) and runs the task again.
    FetchFailed {
        /// The shuffle whose map output could not be fetched.
        shuffle: ShuffleId,
        /// The executor that held it.
        executor_id: String,
        /// Whether the outputs were read through the agent that ran the executor (its copies)
        /// rather than from the executor.
        through_agent: bool,
        /// Why the fetch failed.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::damage::{damaged, edits};
    use proptest::prelude::*;

    fn operator(name: &str) -> Operator<CodeRef> {
        Operator {
            entry: CodeRef {
                library: name.to_string(),
                offset: 16,
            },
            env_decoder: None,
            captures: vec![1, 2, 3],
            params: Vec::new(),
        }
    }

    fn task() -> TaskSpec {
        let chain = |path: &str| Chain {
            source: Some(TaskSource::TextSplit {
                split: FileSplit {
                    path: path.to_string(),
                    start: 0,
                    end: 100,
                },
                decoder: operator("text"),
            }),
            steps: vec![Step {
                rdd: 3,
                partition: 1,
                op: Some(operator("map")),
                persist: Some(StorageLevel::MemoryOnly),
                element_type: "alloc::string::String".to_string(),
            }],
        };
        TaskSpec {
            job_id: 1,
            task_id: 2,
            attempt: 0,
            partition: 1,
            chain: Chain {
                source: Some(TaskSource::Concat(vec![chain("/a"), chain("/b")])),
                steps: Vec::new(),
            },
            action: TaskAction::ShuffleWrite {
                shuffle: 4,
                writer: operator("writer"),
            },
            files: vec![SideFile {
                name: "lookup.csv".to_string(),
                hash: "ab".to_string(),
            }],
            replicate_to: vec![ReplicaPeer {
                executor_id: "exec-2".to_string(),
                address: "127.0.0.1:4000".to_string(),
            }],
        }
    }

    /// One level of `TaskSource::Concat` holding one chain with a source, as bincode writes it:
    /// the variant's index, the vector's length, `Some`.
    fn nested_concat(levels: usize) -> Vec<u8> {
        let mut level = 4u32.to_le_bytes().to_vec();
        level.extend_from_slice(&1u64.to_le_bytes());
        level.push(1);
        level.repeat(levels)
    }

    #[test]
    fn unions_nested_without_end_are_an_error_not_a_stack_overflow() {
        let error = decode_bincode::<TaskSource>("a task", &nested_concat(1_000_000)).unwrap_err();
        assert!(
            error.to_string().contains("more than 128 levels"),
            "{error}"
        );
        // Within the limit, nesting decodes as far as the bytes go (here: they end).
        let error = decode_bincode::<TaskSource>("a task", &nested_concat(100)).unwrap_err();
        assert!(!error.to_string().contains("levels"), "{error}");
        let task = decode_task(&bincode::serialize(&task()).unwrap()).unwrap();
        assert_eq!(task.operators().len(), 5);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_task(&bytes);
            let _ = decode_outcome(&bytes);
        }

        #[test]
        fn damaged_tasks_never_panic(
            edits in edits(8),
            cut in any::<prop::sample::Index>(),
        ) {
            let valid = bincode::serialize(&task()).unwrap();
            // Every field is read in turn to the last byte: a cut encoding cannot decode.
            prop_assert!(decode_task(&valid[..cut.index(valid.len())]).is_err());
            let _ = decode_task(&damaged(valid, &edits));
        }

        #[test]
        fn damaged_outcomes_never_panic(
            edits in edits(8),
        ) {
            let outcome = TaskOutcome::Success {
                result: vec![7; 40],
                metrics: TaskMetrics {
                    executor_id: "exec-1".to_string(),
                    executor_pid: 10,
                    origin: PartitionOrigin::Cached { rdd: 3 },
                    records: 5,
                    run_micros: 6,
                    slot_wait_micros: 7,
                    stored: Vec::new(),
                    accumulator_updates: vec![(1, vec![2; 8])],
                    evicted: vec![(3, 1)],
                    not_cached: vec![NotCached { rdd: 3, partition: 2, reason: "too large".into() }],
                    shuffle_read_bytes: 0,
                    shuffle_write_bytes: 9,
                    spilled_bytes: 0,
                    threads: 1,
                },
            };
            let _ = decode_outcome(&damaged(bincode::serialize(&outcome).unwrap(), &edits));
        }
    }
}
