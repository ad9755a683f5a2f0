//! Messages between a cell (the thin `tessera` crate, in the evcxr child process) and the driver
//! (in the session host), over a local socket: a little-endian `u32` length, then bincode.

use crate::rdd::{LocalCodeRef, Operator, Partitioner, RddId, RddNode, StorageLevel};
use serde::{Deserialize, Serialize};

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
    /// The cell running now panicked (reported by the session's panic hook, so that front ends
    /// can tell a failed cell from a quiet one).
    CellPanicked { message: String },
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
    /// One result per requested partition, in the order requested.
    JobResult {
        results: Vec<Vec<u8>>,
    },
    Error(String),
}
