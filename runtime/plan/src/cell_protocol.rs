//! Messages between a cell (the thin `tessera` crate, in the evcxr child process) and the driver
//! (in the session host), over a local socket: a little-endian `u32` length, then bincode.

use crate::decode::{DecodeError, decode_bincode};
use crate::frame::{FileFormat, FrameStep, JoinOn, Schema};
use crate::rdd::{LocalCodeRef, Operator, Partitioner, RddId, RddNode, StorageLevel};
use serde::{Deserialize, Serialize};

/// What a request frame holds, for errors.
pub const REQUEST: &str = "a cell's request to the driver";
/// What a reply frame holds, for errors.
pub const RESPONSE: &str = "the driver's reply to a cell";

/// Decodes the body of a request frame (after its length).
pub fn decode_request(body: &[u8]) -> Result<Envelope, DecodeError> {
    decode_bincode(REQUEST, body)
}

/// Decodes the body of a reply frame (after its length).
pub fn decode_response(body: &[u8]) -> Result<CellResponse, DecodeError> {
    decode_bincode(RESPONSE, body)
}

/// The environment variables that tell the process running cells where the driver listens
/// (its abstract socket's name) and the token it accepts: `tessera::Context::from_session`
/// reads them, so the code that binds `sc` is the same in every session (and compiled once).
pub const CELL_SOCKET_ENV: &str = "TESSERA_CELL_SOCKET";
/// See [`CELL_SOCKET_ENV`].
pub const CELL_TOKEN_ENV: &str = "TESSERA_CELL_TOKEN";

/// Every request carries the session's token; the driver rejects any other.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The session's token ([`CELL_TOKEN_ENV`]), which the driver compares with its own in
    /// constant time.
    pub token: u64,
    /// What the cell asks.
    pub request: CellRequest,
}

/// What a cell asks the driver; each request is answered with one [`CellResponse`].
// Made once per request and encoded at once: an RDD's definition need not be boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub enum CellRequest {
    /// Adds an RDD to the lineage graph.
    Define(RddNode<LocalCodeRef>),
    /// Adds an RDD of the lines of the files that `path` (a file, directory or glob) names.
    TextFile {
        /// A file, directory or glob (`logs/*.txt`), relative to the session's working directory.
        path: String,
        /// The least number of partitions wanted, where the files are big enough for as many.
        min_partitions: u32,
        /// The cell's source that turns a split's bytes into lines.
        decoder: Operator<LocalCodeRef>,
        /// What built it (`text_file(PATH)`), shown in `:storage` and `:jobs`.
        name: String,
    },
    /// Asks for an RDD's partition count and partitioner (answered with `Defined`).
    Describe {
        /// The RDD described.
        rdd: RddId,
    },
    /// Sets (or with `None` clears) an RDD's storage level.
    Persist {
        /// The RDD whose storage level is set.
        rdd: RddId,
        /// The level to cache its partitions at; `None` uncaches it, and executors drop its blocks.
        level: Option<StorageLevel>,
    },
    /// The partitions of `rdd` were saved under `dir` (`part-NNNNN`, decoded by `decoder`):
    /// they replace its lineage.
    Checkpointed {
        /// The RDD checkpointed.
        rdd: RddId,
        /// The directory the partitions were saved in, which the session and every executor share.
        dir: String,
        /// The cell's source that decodes a saved partition's file into batches.
        decoder: Operator<LocalCodeRef>,
    },
    /// Keeps `value` (encoded) for executors to fetch once each; answered with `Created`.
    Broadcast {
        /// The value, encoded by the cell.
        value: Vec<u8>,
    },
    /// A new accumulator; answered with `Created`.
    Accumulator,
    /// Adds a partial value (encoded) to accumulator `id` from the cell itself.
    Accumulate {
        /// The accumulator added to.
        id: u64,
        /// The partial value, encoded by the cell.
        value: Vec<u8>,
    },
    /// Every partial value accumulator `id` received (answered with `Partials`).
    AccumulatorValue {
        /// The accumulator asked about.
        id: u64,
    },
    /// Sends the file at `path` (on the session's host) to every executor, as Spark's
    /// `SparkContext.addFile`; answered with `Done`.
    AddFile {
        /// The file's path on the session's host; executors keep it under its file name.
        path: String,
    },
    /// Shows `data` (MIME type, content) under the cell, as Jupyter's `display_data`; with a
    /// `display_id` and `update`, replaces what was shown under that id. Answered with `Done`.
    Display {
        /// (MIME type, content) pairs, each a representation of the same thing, as Jupyter's
        /// `display_data` carries them.
        data: Vec<(String, String)>,
        /// The id it is shown under, for a later `update` to replace it; `None`: not replaceable.
        display_id: Option<String>,
        /// Replace what was shown under `display_id` instead of showing it anew.
        update: bool,
    },
    /// Clears the cell's output (`wait`: once new output arrives), as Jupyter's `clear_output`.
    ClearOutput {
        /// Clear only once new output arrives, rather than now.
        wait: bool,
    },
    /// Asks the person running the session for a line (Python's `input()`; in Jupyter, an
    /// `input_request`), showing `prompt`; with `password`, what is typed is not shown.
    /// Answered with `Line`.
    Input {
        /// The text shown before the answer.
        prompt: String,
        /// Hide what is typed (a password).
        password: bool,
    },
    /// The cell running now panicked (reported by the session's panic hook, so that front ends
    /// can tell a failed cell from a quiet one).
    CellPanicked {
        /// The panic's message.
        message: String,
    },
    /// Describes `rdd` and the RDDs it is computed from, for its debug string (answered with
    /// `Lineage`).
    Lineage {
        /// The RDD whose lineage is described.
        rdd: RddId,
    },
    /// Adds a DataFrame read from the files that `path` (a file, directory or glob) names, in
    /// `format`, with `schema` or the one inferred from the first file (answered with
    /// `FrameDefined`).
    ReadFrame {
        /// A file, directory or glob, relative to the session's working directory.
        path: String,
        /// The files' format, with its options.
        format: FileFormat,
        /// The schema to read the files with; `None`: the one inferred from the first file.
        schema: Option<Schema>,
        /// The least number of partitions wanted, where the files are big enough for as many.
        min_partitions: u32,
        /// What built it (`read_csv(PATH)`, ...), shown in `:storage` and `:jobs`.
        name: String,
    },
    /// Adds the DataFrame `step` makes of DataFrame `input`; the driver plans it over the
    /// partitions, with a shuffle where the step needs one (answered with `FrameDefined`).
    Frame {
        /// The DataFrame the step applies to.
        input: RddId,
        /// The operation (a select, a filter, an aggregation, ...).
        step: FrameStep,
        /// What built it: the step's DataFrame method (`select`, `group_by`, ...).
        name: String,
    },
    /// Adds the rows of every DataFrame of `inputs`, which must have one schema (answered with
    /// `FrameDefined`).
    FrameUnion {
        /// The DataFrames, in order.
        inputs: Vec<RddId>,
        /// What built it (`union`).
        name: String,
    },
    /// Adds the join of DataFrames `left` and `right`; the driver broadcasts a small side or
    /// shuffles both by their keys (answered with `FrameDefined`).
    FrameJoin {
        /// The left DataFrame.
        left: RddId,
        /// The right DataFrame.
        right: RddId,
        /// The key columns of each side, and which rows the join keeps.
        on: JoinOn,
        /// What built it (`join (inner)`, ...).
        name: String,
    },
    /// Adds the RDD of DataFrame `frame`'s rows as records (`Vec<Value>`) for cell code, one
    /// partition per partition of the DataFrame; `reader` is the cell's decoder of those records
    /// (answered with `Defined`).
    FrameToRdd {
        /// The DataFrame whose rows the RDD holds.
        frame: RddId,
        /// The cell's source that decodes record frames of rows into its batches.
        reader: Operator<LocalCodeRef>,
        /// Type name of the records (`Vec<Value>`, as the cell names it).
        element_type: String,
        /// What built it (`to_rdd`).
        name: String,
    },
    /// Adds a DataFrame of `schema` made of RDD `rdd`'s records (`Vec<Value>`, a value per
    /// column), dealt into `partitions` partitions by the cell's `writer` (answered with
    /// `FrameDefined`).
    RddToFrame {
        /// The RDD of rows.
        rdd: RddId,
        /// The cell's shuffle writer (map side), which deals the records into `partitions` buckets.
        writer: Operator<LocalCodeRef>,
        /// How many partitions the DataFrame has.
        partitions: u32,
        /// The DataFrame's columns, one per value of a record.
        schema: Schema,
        /// What built it (`to_df`).
        name: String,
    },
    /// Asks how many malformed rows the reads of a DataFrame skipped so far (answered with
    /// `SkippedRows`).
    SkippedRows {
        /// The DataFrame asked about.
        rdd: RddId,
    },
    /// Asks for a DataFrame's distributed plan (answered with `Explained`).
    ExplainFrame {
        /// The DataFrame explained.
        rdd: RddId,
    },
    /// Asks for a DataFrame's schema and partitions (answered with `FrameDefined`).
    DescribeFrame {
        /// The DataFrame described.
        rdd: RddId,
    },
    /// Registers DataFrame `rdd` as table `name` for SQL, replacing a table of that name
    /// (answered with `Done`).
    RegisterTable {
        /// The DataFrame registered.
        rdd: RddId,
        /// The table's name in SQL queries.
        name: String,
    },
    /// Adds the DataFrame a SQL query over the registered tables makes (answered with
    /// `FrameDefined`).
    Sql {
        /// The SQL text.
        query: String,
    },
    /// Runs an action over some (default: all) partitions; blocks until the job ends.
    RunJob {
        /// The RDD the action runs on.
        rdd: RddId,
        /// What each task does with its partition.
        action: CellAction,
        /// The partitions to run on, in the order their results come back; `None` for all.
        partitions: Option<Vec<u32>>,
        /// The action's name (`collect`, `count`, ...): with the RDD's, it describes the job.
        name: String,
    },
}

/// What a job does with each partition, as a cell asks it; the driver turns it into a
/// [`crate::TaskAction`].
#[derive(Debug, Serialize, Deserialize)]
pub enum CellAction {
    /// Counts the partition's records; its result is the count (`u64`, little-endian).
    Count,
    /// Runs the cell's action operator; its result is the bytes the action writes.
    Run(Operator<LocalCodeRef>),
    /// A DataFrame's rows as plain values (a bincode [`crate::frame::Rows`] per partition), at
    /// most `limit` of each partition.
    Rows {
        /// At most this many rows of each partition; `None` for all.
        limit: Option<u64>,
    },
    /// Each partition's rows as an Arrow IPC stream of the DataFrame's schema (at least one,
    /// of no rows when there are none), for a cell that collects a polars DataFrame.
    Ipc,
    /// Writes each partition of a DataFrame to `dir/part-NNNNN.EXT` in `format`; a partition's
    /// result is the rows it wrote (`u64`, little-endian).
    WriteFrame {
        /// The directory the files are written to.
        dir: String,
        /// The files' format.
        format: crate::frame::WriteFormat,
    },
}

/// The driver's answer to a [`CellRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum CellResponse {
    /// An RDD as the driver holds it (the answer to `Define`, `TextFile`, `Describe` and
    /// `FrameToRdd`).
    Defined {
        /// The RDD's id in the session's lineage graph.
        rdd: RddId,
        /// How many partitions it has.
        num_partitions: u32,
        /// How the RDD's keys are placed, when a shuffle placed them and nothing moved them since.
        partitioner: Option<Partitioner>,
    },
    /// A DataFrame: its RDD, partitions and schema.
    FrameDefined {
        /// The RDD that holds the DataFrame's partitions.
        rdd: RddId,
        /// How many partitions it has.
        num_partitions: u32,
        /// Its columns.
        schema: Schema,
    },
    /// A DataFrame's distributed plan, as text.
    Explained(String),
    /// Malformed rows skipped.
    SkippedRows(u64),
    /// The request was carried out; there is nothing else to answer.
    Done,
    /// The id of a new broadcast variable or accumulator.
    Created {
        /// Its id, unique among the session's broadcasts and accumulators.
        id: u64,
    },
    /// Every partial value an accumulator received (the answer to `AccumulatorValue`).
    Partials {
        /// Each partial value, as the code that added it encoded it.
        #[serde(with = "crate::bytes::lists")]
        values: Vec<Vec<u8>>,
    },
    /// What the person typed, without the line break.
    Line(String),
    /// One result per requested partition, in the order requested.
    JobResult {
        /// Each requested partition's result bytes.
        #[serde(with = "crate::bytes::lists")]
        results: Vec<Vec<u8>>,
    },
    /// An RDD and those it is computed from, depth first, as Spark's `toDebugString` lists them.
    Lineage {
        /// The entries, the RDD asked about first.
        rdds: Vec<LineageEntry>,
    },
    /// The request failed: the driver's message saying why.
    Error(String),
}

/// One RDD in a lineage, as its debug string shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineageEntry {
    /// The RDD this entry describes.
    pub rdd: RddId,
    /// The operation that made it (`map`, `reduce_by_key`, `text_file(PATH)`, ...).
    pub name: String,
    /// How its partitions are computed: `parallelize`, `text file`, `narrow`, `union`,
    /// `partitionwise union`, `concatenated`, `checkpoint` or `shuffle`.
    pub kind: String,
    /// The type name of its records.
    pub element_type: String,
    /// How many partitions it has.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::damage::{damaged, edits};
    use crate::decode::{framed, read_frame};
    use crate::rdd::RddKind;
    use proptest::prelude::*;

    fn operator() -> Operator<LocalCodeRef> {
        Operator {
            entry: LocalCodeRef {
                library_path: "/cells/libctx.so".to_string(),
                offset: 4096,
            },
            env_decoder: None,
            captures: vec![5; 12],
            params: vec![1, 0, 0, 0],
        }
    }

    fn requests() -> Vec<Envelope> {
        let requests = vec![
            CellRequest::Define(RddNode {
                kind: RddKind::Narrow {
                    parent: 1,
                    op: operator(),
                    preserves_partitioning: false,
                },
                num_partitions: 4,
                element_type: "u64".to_string(),
                name: "map at cell 2".to_string(),
            }),
            CellRequest::TextFile {
                path: "app.log".to_string(),
                min_partitions: 8,
                decoder: operator(),
                name: "text_file".to_string(),
            },
            CellRequest::Persist {
                rdd: 3,
                level: Some(StorageLevel::MemoryOnlySer),
            },
            CellRequest::Display {
                data: vec![("text/plain".to_string(), "1".to_string())],
                display_id: Some("d".to_string()),
                update: true,
            },
            CellRequest::RunJob {
                rdd: 2,
                action: CellAction::Run(operator()),
                partitions: Some(vec![0, 3]),
                name: "collect".to_string(),
            },
        ];
        requests
            .into_iter()
            .map(|request| Envelope { token: 77, request })
            .collect()
    }

    fn responses() -> Vec<CellResponse> {
        vec![
            CellResponse::Defined {
                rdd: 4,
                num_partitions: 2,
                partitioner: Some(Partitioner::Hash { partitions: 2 }),
            },
            CellResponse::JobResult {
                results: vec![vec![1; 9], Vec::new()],
            },
            CellResponse::Lineage {
                rdds: vec![LineageEntry {
                    rdd: 1,
                    name: "map".to_string(),
                    kind: "narrow".to_string(),
                    element_type: "u64".to_string(),
                    partitions: 2,
                    partitioner: None,
                    storage: Some(StorageLevel::DiskOnly),
                    cached_partitions: 1,
                    reader: Some(0),
                    last_parent: true,
                    shuffle_parent: false,
                    repeated: false,
                }],
            },
            CellResponse::Error("no".to_string()),
        ]
    }

    #[test]
    fn requests_and_replies_read_back_from_frames() {
        for envelope in requests() {
            let bytes = framed(&bincode::serialize(&envelope).unwrap());
            let body = read_frame(REQUEST, &mut &bytes[..]).unwrap();
            let back = decode_request(&body).unwrap();
            assert_eq!(format!("{back:?}"), format!("{envelope:?}"));
        }
        for response in responses() {
            let body = bincode::serialize(&response).unwrap();
            let back = decode_response(&body).unwrap();
            assert_eq!(format!("{back:?}"), format!("{response:?}"));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_streams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut stream = &bytes[..];
            while let Ok(body) = read_frame(REQUEST, &mut stream) {
                prop_assert!(body.len() <= bytes.len());
                let _ = decode_request(&body);
                let _ = decode_response(&body);
            }
        }

        #[test]
        fn damaged_requests_never_panic(
            which in any::<prop::sample::Index>(),
            edits in edits(8),
            cut in any::<prop::sample::Index>(),
        ) {
            let all = requests();
            let valid = framed(&bincode::serialize(which.get(&all)).unwrap());
            let keep = cut.index(valid.len());
            prop_assert!(read_frame(REQUEST, &mut &valid[..keep]).is_err());
            let bytes = damaged(valid, &edits);
            if let Ok(body) = read_frame(REQUEST, &mut &bytes[..]) {
                let _ = decode_request(&body);
            }
        }

        #[test]
        fn damaged_replies_never_panic(
            which in any::<prop::sample::Index>(),
            edits in edits(8),
        ) {
            let all = responses();
            let bytes = damaged(bincode::serialize(which.get(&all)).unwrap(), &edits);
            let _ = decode_response(&bytes);
        }
    }
}
