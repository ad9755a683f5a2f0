//! Messages between a cell (the thin `tessera` crate, in the evcxr child process) and the driver
//! (in the session host), over a local socket: a little-endian `u32` length, then bincode.

use crate::rdd::{LocalCodeRef, Operator, Partitioner, RddId, RddNode, StorageLevel};
use serde::{Deserialize, Serialize};

/// The environment variables that tell the process running cells where the driver listens
/// (its abstract socket's name) and the token it accepts: `tessera::Context::from_session`
/// reads them, so the code that binds `sc` is the same in every session (and compiled once).
pub const CELL_SOCKET_ENV: &str = "TESSERA_CELL_SOCKET";
/// See [`CELL_SOCKET_ENV`].
pub const CELL_TOKEN_ENV: &str = "TESSERA_CELL_TOKEN";

/// Every request carries the session's token; the driver rejects any other.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub token: u64,
    pub request: CellRequest,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum CellRequest {
    /// Adds an RDD to the lineage graph.
    Define(RddNode<LocalCodeRef>),
    /// Adds an RDD of the lines of the files that `path` (a file, directory or glob) names.
    TextFile {
        path: String,
        min_partitions: u32,
        decoder: Operator<LocalCodeRef>,
        name: String,
    },
    /// Asks for an RDD's partition count and partitioner (answered with `Defined`).
    Describe { rdd: RddId },
    /// Sets (or with `None` clears) an RDD's storage level.
    Persist {
        rdd: RddId,
        level: Option<StorageLevel>,
    },
    /// The partitions of `rdd` were saved under `dir` (`part-NNNNN`, decoded by `decoder`):
    /// they replace its lineage.
    Checkpointed {
        rdd: RddId,
        dir: String,
        decoder: Operator<LocalCodeRef>,
    },
    /// Keeps `value` (encoded) for executors to fetch once each; answered with `Created`.
    Broadcast { value: Vec<u8> },
    /// A new accumulator; answered with `Created`.
    Accumulator,
    /// Adds a partial value (encoded) to accumulator `id` from the cell itself.
    Accumulate { id: u64, value: Vec<u8> },
    /// Every partial value accumulator `id` received (answered with `Partials`).
    AccumulatorValue { id: u64 },
    /// Sends the file at `path` (on the session's host) to every executor, as Spark's
    /// `SparkContext.addFile`; answered with `Done`.
    AddFile { path: String },
    /// Shows `data` (MIME type, content) under the cell, as Jupyter's `display_data`; with a
    /// `display_id` and `update`, replaces what was shown under that id. Answered with `Done`.
    Display {
        data: Vec<(String, String)>,
        display_id: Option<String>,
        update: bool,
    },
    /// Clears the cell's output (`wait`: once new output arrives), as Jupyter's `clear_output`.
    ClearOutput { wait: bool },
    /// Asks the person running the session for a line (Python's `input()`; in Jupyter, an
    /// `input_request`), showing `prompt`; with `password`, what is typed is not shown.
    /// Answered with `Line`.
    Input { prompt: String, password: bool },
    /// The cell running now panicked (reported by the session's panic hook, so that front ends
    /// can tell a failed cell from a quiet one).
    CellPanicked { message: String },
    /// Describes `rdd` and the RDDs it is computed from, for its debug string (answered with
    /// `Lineage`).
    Lineage { rdd: RddId },
    /// Runs an action over some (default: all) partitions; blocks until the job ends.
    RunJob {
        rdd: RddId,
        action: CellAction,
        partitions: Option<Vec<u32>>,
        name: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum CellAction {
    Count,
    Run(Operator<LocalCodeRef>),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum CellResponse {
    Defined {
        rdd: RddId,
        num_partitions: u32,
        /// How the RDD's keys are placed, when a shuffle placed them and nothing moved them since.
        partitioner: Option<Partitioner>,
    },
    Done,
    /// The id of a new broadcast variable or accumulator.
    Created {
        id: u64,
    },
    Partials {
        values: Vec<Vec<u8>>,
    },
    /// What the person typed, without the line break.
    Line(String),
    /// One result per requested partition, in the order requested.
    JobResult {
        results: Vec<Vec<u8>>,
    },
    /// An RDD and those it is computed from, depth first, as Spark's `toDebugString` lists them.
    Lineage {
        rdds: Vec<LineageEntry>,
    },
    Error(String),
}

/// One RDD in a lineage, as its debug string shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineageEntry {
    pub rdd: RddId,
    /// The operation that made it (`map`, `reduce_by_key`, `text_file(PATH)`, ...).
    pub name: String,
    /// How its partitions are computed: `parallelize`, `text file`, `narrow`, `union`,
    /// `partitionwise union`, `concatenated`, `checkpoint` or `shuffle`.
    pub kind: String,
    /// The type name of its records.
    pub element_type: String,
    pub partitions: u32,
    /// How its keys are placed (`hash`, `range`, `round robin`, a custom partitioner's type), if
    /// a shuffle placed them and nothing moved them since.
    pub partitioner: Option<String>,
    /// Its storage level, if it is persisted.
    pub storage: Option<StorageLevel>,
    /// How many of its partitions executors hold now.
    pub cached_partitions: u32,
    /// The entry (by its index in the list) of the RDD computed from this one; `None` for the
    /// first.
    pub reader: Option<u32>,
    /// It is the last parent its reader lists.
    pub last_parent: bool,
    /// Its reader reads it through a shuffle: a stage ends with it.
    pub shuffle_parent: bool,
    /// It was listed above already (a lineage is a graph, not a tree): its parents are not
    /// listed again.
    pub repeated: bool,
}
