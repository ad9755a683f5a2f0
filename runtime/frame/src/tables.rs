//! The built-in operators ([`tessera_plan::builtin::Builtin`]) as the C ABI's tables, which the
//! executor calls as it calls a cell library's: sources that read line chunks and shuffle
//! buckets, operators that parse rows and run polars over a partition, a shuffle writer that
//! places rows by a hash of their keys, and the action that brings rows back to a cell.
//!
//! Operators that need a whole partition (every [`FrameStep`] may: an aggregation, a sort, a
//! distinct) gather its DataFrames and run when the partition ends.

use crate::batch::{
    FRAME_BATCH, JoinSide, LINES_BATCH, push_frame, push_lines, push_side_frame, report,
    take_frame, take_lines, take_side_frame,
};
use crate::convert::schema_to_polars;
use crate::error::FrameError;
use crate::mask::RowTest;
use crate::merge_join::{self, BroadcastSide};
use crate::{files, ipc, join, ranges, read, rows, runtime_filter, shuffle, steps};
use polars_core::prelude::{Column, DataFrame};
use polars_core::utils::accumulate_dataframes_vertical;
use serde::de::DeserializeOwned;
use std::ffi::c_void;
use tessera_plan::abi::{
    ABI_VERSION, ActionVTable, Batch, BatchSink, ByteSink, ErrorSink, Host, MALFORMED_PREFIX,
    OpenArgs, OperatorVTable, RawBytes, STATUS_ERROR, STATUS_OK, SourceVTable, Status, TableEntry,
};
use tessera_plan::builtin::{
    BroadcastJoinParams, Builtin, CsvParams, FrameShuffleParams, JoinParams, JsonParams,
    MeasureParams, ParquetPiece, RangeShuffleParams, RowsParams, SampleParams, SkippedRows,
    StepsParams, WriteParams,
};
use tessera_plan::frame::Schema;

/// The entry point of `builtin`: it returns the built-in's table, as a cell library's entry
/// returns its operator's.
pub fn entry(builtin: Builtin) -> TableEntry {
    match builtin {
        Builtin::Lines => lines_source,
        Builtin::ParseCsv => parse_csv_table,
        Builtin::ParseJson => parse_json_table,
        Builtin::Steps => steps_table,
        Builtin::HashWriter => hash_writer_table,
        Builtin::IpcReader => ipc_reader,
        Builtin::Rows => rows_table,
        Builtin::IpcReaderRight => ipc_reader_right,
        Builtin::Join => join_table,
        Builtin::BroadcastJoin => broadcast_join_table,
        Builtin::Ipc => ipc_table,
        Builtin::ParquetPiece => parquet_piece_source,
        Builtin::Write => write_table,
        Builtin::RowsWriter => rows_writer_table,
        Builtin::ParseRecords => parse_records_table,
        Builtin::Measure => measure_table,
        Builtin::SampleSortKeys => sample_sort_keys_table,
        Builtin::RangeWriter => range_writer_table,
    }
}

/// Reports `error` (a malformed row's with the prefix the executor looks for) and fails.
fn fail(err: ErrorSink, error: &FrameError) -> Status {
    match error {
        FrameError::MalformedRow { .. } => report(err, &format!("{MALFORMED_PREFIX}{error}")),
        _ => report(err, &error.to_string()),
    }
    STATUS_ERROR
}

/// Writes an action's result bytes to `out`, or reports why there are none.
fn answer(out: ByteSink, err: ErrorSink, result: Result<Vec<u8>, FrameError>) -> Status {
    match result {
        Ok(bytes) => {
            unsafe { (out.write)(out.ctx, RawBytes::from_slice(&bytes)) };
            STATUS_OK
        }
        Err(e) => fail(err, &e),
    }
}

/// Hands an operator's DataFrame to `out`, or reports why there is none.
fn pass_on(out: BatchSink, err: ErrorSink, result: Result<DataFrame, FrameError>) -> Status {
    match result {
        Ok(frame) => push_frame(out, frame),
        Err(e) => fail(err, &e),
    }
}

fn params<P: DeserializeOwned>(args: &OpenArgs, what: &'static str) -> Result<P, FrameError> {
    bincode::deserialize(unsafe { args.params.as_slice() }).map_err(|e| FrameError::Params {
        what,
        reason: e.to_string(),
    })
}

/// Keeps `state` for the executor, or reports why it could not be made.
fn open_with<S>(state: Result<S, FrameError>, out: *mut *mut c_void, err: ErrorSink) -> Status {
    match state {
        Ok(state) => {
            unsafe { *out = Box::into_raw(Box::new(state)) as *mut c_void };
            STATUS_OK
        }
        Err(e) => fail(err, &e),
    }
}

/// The state an operator's `open` made.
unsafe fn state_of<'a, S>(state: *mut c_void) -> &'a mut S {
    unsafe { &mut *(state as *mut S) }
}

unsafe fn close<S>(state: *mut c_void) {
    drop(unsafe { Box::from_raw(state as *mut S) });
}

/// The DataFrames of a partition as one (none when it had none).
fn gathered(frames: Vec<DataFrame>) -> Result<Option<DataFrame>, FrameError> {
    match frames.len() {
        0 => Ok(None),
        1 => Ok(frames.into_iter().next()),
        _ => accumulate_dataframes_vertical(frames)
            .map(Some)
            .map_err(FrameError::polars(
                "putting a partition's DataFrames together",
            )),
    }
}

// Lines: a text split's chunks of whole lines, as they are.

unsafe extern "C" fn lines_decode(bytes: RawBytes, out: BatchSink, _err: ErrorSink) -> Status {
    push_lines(out, unsafe { bytes.as_slice() })
}

static LINES_SOURCE: SourceVTable = SourceVTable {
    abi_version: ABI_VERSION,
    output: LINES_BATCH,
    decode: lines_decode,
};

unsafe extern "C" fn lines_source() -> *const c_void {
    &LINES_SOURCE as *const SourceVTable as *const c_void
}

// ParseCsv and ParseJson: line chunks to DataFrames.

enum Format {
    Csv(CsvParams),
    Json(JsonParams),
    /// Cell records (`Vec<Vec<Value>>`), a record frame a chunk.
    Records(Schema),
}

/// A reader of line chunks: its format, what it parsed so far, the rows it skipped as
/// malformed, and where to report them.
struct Parser {
    format: Format,
    frames: Vec<DataFrame>,
    skipped: u64,
    partition: u32,
    host: *const Host,
}

impl Parser {
    fn new(format: Format, args: &OpenArgs) -> Parser {
        Parser {
            format,
            frames: Vec::new(),
            skipped: 0,
            partition: args.partition,
            host: args.host,
        }
    }

    fn parse(&mut self, lines: &[u8]) -> Result<DataFrame, FrameError> {
        match &self.format {
            Format::Csv(p) if p.options.skip_malformed => {
                let (frame, skipped) = read::parse_csv_skipping(lines, &p.schema, &p.options)?;
                self.skipped += skipped;
                Ok(frame)
            }
            Format::Csv(p) => read::parse_csv(lines, &p.schema, &p.options),
            Format::Json(p) if p.options.skip_malformed => {
                let (frame, skipped) = read::parse_json_skipping(lines, &p.schema)?;
                self.skipped += skipped;
                Ok(frame)
            }
            Format::Json(p) => read::parse_json(lines, &p.schema),
            Format::Records(schema) => rows::frame_of_records(lines, schema),
        }
    }
}

unsafe extern "C" fn parse_csv_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    let parser = params(&args, "a CSV reader").map(|p| Parser::new(Format::Csv(p), &args));
    open_with(parser, out, err)
}

unsafe extern "C" fn parse_json_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    let parser = params(&args, "a JSON reader").map(|p| Parser::new(Format::Json(p), &args));
    open_with(parser, out, err)
}

unsafe extern "C" fn parse_records_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    let parser =
        params(&args, "records for a DataFrame").map(|p| Parser::new(Format::Records(p), &args));
    open_with(parser, out, err)
}

unsafe extern "C" fn parse_push(
    state: *mut c_void,
    batch: Batch,
    _out: BatchSink,
    err: ErrorSink,
) -> Status {
    let parser: &mut Parser = unsafe { state_of(state) };
    let lines = unsafe { take_lines(batch) };
    match parser.parse(&lines) {
        Ok(frame) => {
            parser.frames.push(frame);
            STATUS_OK
        }
        Err(e) => fail(err, &e),
    }
}

/// Passes on the partition's rows as one DataFrame of contiguous columns — parsed a line chunk
/// at a time, they would stay in as many pieces, and every later query of a cached partition
/// would pay for each piece in each column — and reports the rows the partition skipped to the
/// read's accumulator (which reaches the driver if the task succeeds).
unsafe extern "C" fn parse_finish(state: *mut c_void, out: BatchSink, err: ErrorSink) -> Status {
    let parser: &mut Parser = unsafe { state_of(state) };
    let whole = gathered(std::mem::take(&mut parser.frames)).map(|frame| {
        frame.map(|mut frame| {
            frame.rechunk_mut();
            frame
        })
    });
    match whole {
        Ok(Some(frame)) => {
            let status = push_frame(out, frame);
            if status != STATUS_OK {
                return status;
            }
        }
        Ok(None) => {}
        Err(e) => return fail(err, &e),
    }
    let accumulator = match &parser.format {
        Format::Csv(p) => p.skipped_rows,
        Format::Json(p) => p.skipped_rows,
        Format::Records(_) => None,
    };
    if let Some(accumulator) = accumulator {
        let count = SkippedRows {
            partition: parser.partition,
            rows: parser.skipped,
        };
        let bytes = bincode::serialize(&count).expect("a count serializes");
        // SAFETY: the host table is valid while the task runs.
        unsafe {
            let host = &*parser.host;
            (host.accumulate)(host.ctx, accumulator, RawBytes::from_slice(&bytes));
        }
    }
    STATUS_OK
}

unsafe extern "C" fn parse_close(state: *mut c_void) {
    unsafe { close::<Parser>(state) }
}

// No table reads a shared batch in place (`push_shared: None`): the executor pushes a copy of a
// cached DataFrame instead, which costs little, since a DataFrame's clone shares its columns.
static PARSE_CSV: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: LINES_BATCH.type_name,
    output: FRAME_BATCH,
    open: parse_csv_open,
    push: parse_push,
    push_shared: None,
    finish: parse_finish,
    close: parse_close,
    recordwise: false,
};

static PARSE_JSON: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: LINES_BATCH.type_name,
    output: FRAME_BATCH,
    open: parse_json_open,
    push: parse_push,
    push_shared: None,
    finish: parse_finish,
    close: parse_close,
    recordwise: false,
};

unsafe extern "C" fn parse_csv_table() -> *const c_void {
    &PARSE_CSV as *const OperatorVTable as *const c_void
}

unsafe extern "C" fn parse_json_table() -> *const c_void {
    &PARSE_JSON as *const OperatorVTable as *const c_void
}

// Steps: a whole partition through polars.

/// A partition's DataFrames so far, and what is to be done with them.
struct Gather<P> {
    params: P,
    frames: Vec<DataFrame>,
}

unsafe extern "C" fn gather_push<P>(
    state: *mut c_void,
    batch: Batch,
    _out: BatchSink,
    _err: ErrorSink,
) -> Status {
    let gather: &mut Gather<P> = unsafe { state_of(state) };
    gather.frames.push(unsafe { take_frame(batch) });
    STATUS_OK
}

unsafe extern "C" fn gather_close<P>(state: *mut c_void) {
    unsafe { close::<Gather<P>>(state) }
}

unsafe extern "C" fn steps_open(args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    open_gather::<StepsParams>(args, "a DataFrame operation", out, err)
}

unsafe extern "C" fn steps_finish(state: *mut c_void, out: BatchSink, err: ErrorSink) -> Status {
    let gather: &mut Gather<StepsParams> = unsafe { state_of(state) };
    let frames = std::mem::take(&mut gather.frames);
    match through_steps(frames, &gather.params, None) {
        Ok(Some(frame)) => push_frame(out, frame),
        Ok(None) => STATUS_OK,
        Err(e) => fail(err, &e),
    }
}

/// A partition's DataFrames put together and run through `params`' steps, with `also` anded
/// into their filter's mask; `None` for a partition without rows that the steps skip.
fn through_steps(
    frames: Vec<DataFrame>,
    params: &StepsParams,
    also: Option<&RowTest>,
) -> Result<Option<DataFrame>, FrameError> {
    match gathered(frames)? {
        Some(frame) => steps::run_steps_testing(frame, &params.steps, also).map(Some),
        None if params.run_on_empty => {
            let empty = DataFrame::empty_with_schema(&schema_to_polars(&params.input)?);
            steps::run_steps(empty, &params.steps).map(Some)
        }
        None => Ok(None),
    }
}

static STEPS: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    output: FRAME_BATCH,
    open: steps_open,
    push: gather_push::<StepsParams>,
    push_shared: None,
    finish: steps_finish,
    close: gather_close::<StepsParams>,
    recordwise: false,
};

unsafe extern "C" fn steps_table() -> *const c_void {
    &STEPS as *const OperatorVTable as *const c_void
}

// Actions: the shuffle writer and the rows for the cell, over a whole partition.

unsafe extern "C" fn action_push<P>(state: *mut c_void, batch: Batch, _err: ErrorSink) -> Status {
    let gather: &mut Gather<P> = unsafe { state_of(state) };
    gather.frames.push(unsafe { take_frame(batch) });
    STATUS_OK
}

fn open_gather<P: DeserializeOwned>(
    args: OpenArgs,
    what: &'static str,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    open_gather_as(args, what, out, err, |params: P, _| params)
}

/// Opens an action that gathers a partition's frames and needs, beside its params, the index
/// of the partition.
fn open_gather_for_partition<P: DeserializeOwned>(
    args: OpenArgs,
    what: &'static str,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    open_gather_as(args, what, out, err, |params: P, partition| {
        (params, partition)
    })
}

/// Opens a gathering action whose state is made of its params and the partition's index.
fn open_gather_as<P: DeserializeOwned, S>(
    args: OpenArgs,
    what: &'static str,
    out: *mut *mut c_void,
    err: ErrorSink,
    state: impl FnOnce(P, u32) -> S,
) -> Status {
    let partition = args.partition;
    let gather = params::<P>(&args, what).map(|params| Gather {
        params: state(params, partition),
        frames: Vec::new(),
    });
    open_with(gather, out, err)
}

/// Finishes an action that gathered its partition's frames: answers `answer` of them (none
/// for a partition without rows) and of its params.
///
/// # Safety
/// `state` is the `Gather<P>` the action's open made.
unsafe fn answer_gathered<P>(
    state: *mut c_void,
    out: ByteSink,
    err: ErrorSink,
    answer_of: impl FnOnce(Option<DataFrame>, &P) -> Result<Vec<u8>, FrameError>,
) -> Status {
    let gather: &mut Gather<P> = unsafe { state_of(state) };
    let frames = std::mem::take(&mut gather.frames);
    let result = gathered(frames).and_then(|frame| answer_of(frame, &gather.params));
    answer(out, err, result)
}

unsafe extern "C" fn hash_writer_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    open_gather::<FrameShuffleParams>(args, "a DataFrame shuffle", out, err)
}

unsafe extern "C" fn hash_writer_finish(
    state: *mut c_void,
    out: ByteSink,
    err: ErrorSink,
) -> Status {
    unsafe { answer_gathered(state, out, err, shuffle::map_output) }
}

static HASH_WRITER: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    open: hash_writer_open,
    push: action_push::<FrameShuffleParams>,
    push_shared: None,
    finish: hash_writer_finish,
    close: gather_close::<FrameShuffleParams>,
    replayable: false,
    merge: None,
};

unsafe extern "C" fn hash_writer_table() -> *const c_void {
    &HASH_WRITER as *const ActionVTable as *const c_void
}

// RangeWriter and SampleSortKeys: a sort's shuffle by ranges of its keys, and the sample its
// ranges are drawn from.

unsafe extern "C" fn range_writer_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    open_gather::<RangeShuffleParams>(args, "a sort's shuffle", out, err)
}

unsafe extern "C" fn range_writer_finish(
    state: *mut c_void,
    out: ByteSink,
    err: ErrorSink,
) -> Status {
    unsafe { answer_gathered(state, out, err, ranges::map_output) }
}

static RANGE_WRITER: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    open: range_writer_open,
    push: action_push::<RangeShuffleParams>,
    push_shared: None,
    finish: range_writer_finish,
    close: gather_close::<RangeShuffleParams>,
    replayable: false,
    merge: None,
};

unsafe extern "C" fn range_writer_table() -> *const c_void {
    &RANGE_WRITER as *const ActionVTable as *const c_void
}

unsafe extern "C" fn sample_open(args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    open_gather_for_partition::<SampleParams>(args, "sampling a sort's keys", out, err)
}

unsafe extern "C" fn sample_finish(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status {
    let sample = |frame: Option<DataFrame>, (params, partition): &(SampleParams, u32)| {
        let sample = ranges::sample(frame.as_ref(), params, *partition)?;
        Ok(bincode::serialize(&sample).expect("a key sample serializes"))
    };
    unsafe { answer_gathered(state, out, err, sample) }
}

static SAMPLE_SORT_KEYS: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    open: sample_open,
    push: action_push::<(SampleParams, u32)>,
    push_shared: None,
    finish: sample_finish,
    close: gather_close::<(SampleParams, u32)>,
    replayable: false,
    merge: None,
};

unsafe extern "C" fn sample_sort_keys_table() -> *const c_void {
    &SAMPLE_SORT_KEYS as *const ActionVTable as *const c_void
}

unsafe extern "C" fn rows_open(args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    open_gather::<RowsParams>(args, "bringing rows back", out, err)
}

unsafe extern "C" fn rows_finish(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status {
    let rows = |frame: Option<DataFrame>, params: &RowsParams| {
        rows::encode_rows(frame.as_ref(), params.limit)
    };
    unsafe { answer_gathered(state, out, err, rows) }
}

static ROWS: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    open: rows_open,
    push: action_push::<RowsParams>,
    push_shared: None,
    finish: rows_finish,
    close: gather_close::<RowsParams>,
    replayable: false,
    merge: None,
};

unsafe extern "C" fn rows_table() -> *const c_void {
    &ROWS as *const ActionVTable as *const c_void
}

// IpcReader and IpcReaderRight: a shuffle bucket's record frame as a DataFrame.

fn decode_bucket(bytes: RawBytes, out: BatchSink, err: ErrorSink, side: JoinSide) -> Status {
    match ipc::decode(unsafe { bytes.as_slice() }, "a shuffle bucket") {
        Ok(frame) => push_side_frame(out, frame, side),
        Err(e) => fail(err, &e),
    }
}

unsafe extern "C" fn ipc_decode(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status {
    decode_bucket(bytes, out, err, JoinSide::Left)
}

unsafe extern "C" fn ipc_decode_right(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status {
    decode_bucket(bytes, out, err, JoinSide::Right)
}

static IPC_READER_RIGHT: SourceVTable = SourceVTable {
    abi_version: ABI_VERSION,
    output: FRAME_BATCH,
    decode: ipc_decode_right,
};

unsafe extern "C" fn ipc_reader_right() -> *const c_void {
    &IPC_READER_RIGHT as *const SourceVTable as *const c_void
}

static IPC_READER: SourceVTable = SourceVTable {
    abi_version: ABI_VERSION,
    output: FRAME_BATCH,
    decode: ipc_decode,
};

unsafe extern "C" fn ipc_reader() -> *const c_void {
    &IPC_READER as *const SourceVTable as *const c_void
}

/// The DataFrames of a partition as one, or an empty DataFrame of `schema`.
fn gathered_or_empty(frames: Vec<DataFrame>, schema: &Schema) -> Result<DataFrame, FrameError> {
    or_empty(gathered(frames)?, schema)
}

/// `frame`, or an empty DataFrame of `schema` for a partition without one.
fn or_empty(frame: Option<DataFrame>, schema: &Schema) -> Result<DataFrame, FrameError> {
    match frame {
        Some(frame) => Ok(frame),
        None => Ok(DataFrame::empty_with_schema(&schema_to_polars(schema)?)),
    }
}

// Join: both sides of a partition, told apart by the side their shuffle reader marked.

/// A join's partition so far: each side's DataFrames.
struct JoinGather {
    params: JoinParams,
    left: Vec<DataFrame>,
    right: Vec<DataFrame>,
}

unsafe extern "C" fn join_open(args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    let gather = params::<JoinParams>(&args, "a join").map(|params| JoinGather {
        params,
        left: Vec::new(),
        right: Vec::new(),
    });
    open_with(gather, out, err)
}

unsafe extern "C" fn join_push(
    state: *mut c_void,
    batch: Batch,
    _out: BatchSink,
    _err: ErrorSink,
) -> Status {
    let gather: &mut JoinGather = unsafe { state_of(state) };
    match unsafe { take_side_frame(batch) } {
        (frame, JoinSide::Left) => gather.left.push(frame),
        (frame, JoinSide::Right) => gather.right.push(frame),
    }
    STATUS_OK
}

unsafe extern "C" fn join_finish(state: *mut c_void, out: BatchSink, err: ErrorSink) -> Status {
    let gather: &mut JoinGather = unsafe { state_of(state) };
    let (left, right) = (
        std::mem::take(&mut gather.left),
        std::mem::take(&mut gather.right),
    );
    let p = &gather.params;
    let result = gathered_or_empty(left, &p.left).and_then(|left| {
        let right = gathered_or_empty(right, &p.right)?;
        join::join(left, right, &p.on.left_on, &p.on.right_on, p.on.how)
    });
    pass_on(out, err, result)
}

unsafe extern "C" fn join_close(state: *mut c_void) {
    unsafe { close::<JoinGather>(state) }
}

static JOIN: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    output: FRAME_BATCH,
    open: join_open,
    push: join_push,
    push_shared: None,
    finish: join_finish,
    close: join_close,
    recordwise: false,
};

unsafe extern "C" fn join_table() -> *const c_void {
    &JOIN as *const OperatorVTable as *const c_void
}

// BroadcastJoin: a partition of the large side with all of the small one, fetched once per
// executor.

/// Decodes the small side's broadcast bytes, once per executor (which keeps the result until
/// the driver releases the broadcast), into one chunk a column: the broadcast holds a record
/// batch for each partition it came from, and polars would otherwise put the side's columns
/// together again for every task's join. The tasks share it as a [`BroadcastSide`], which
/// also keeps its keys in order once a task has merged with them.
unsafe extern "C" fn decode_broadcast(bytes: RawBytes, err: ErrorSink) -> *mut c_void {
    match ipc::decode(unsafe { bytes.as_slice() }, "a broadcast join side") {
        Ok(mut frame) => {
            frame.rechunk_mut_par();
            Box::into_raw(Box::new(BroadcastSide::new(frame))) as *mut c_void
        }
        Err(e) => {
            fail(err, &e);
            std::ptr::null_mut()
        }
    }
}

/// Frees a side [`decode_broadcast`] made.
unsafe extern "C" fn drop_broadcast(value: *mut c_void) {
    drop(unsafe { Box::from_raw(value as *mut BroadcastSide) })
}

/// A broadcast join's partition so far, and the small side.
struct BroadcastGather {
    params: BroadcastJoinParams,
    frames: Vec<DataFrame>,
    /// The executor's decoded side, which it keeps while the task runs.
    small: *const BroadcastSide,
}

unsafe extern "C" fn broadcast_join_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    let params = match params::<BroadcastJoinParams>(&args, "a broadcast join") {
        Ok(params) => params,
        Err(e) => return fail(err, &e),
    };
    // SAFETY: the host table, and the value it returns, are valid while the task runs.
    let small = unsafe {
        let host = &*args.host;
        (host.broadcast)(
            host.ctx,
            params.broadcast,
            decode_broadcast,
            drop_broadcast,
            err,
        )
    };
    if small.is_null() {
        return STATUS_ERROR;
    }
    let gather = BroadcastGather {
        params,
        frames: Vec::new(),
        small: small as *const BroadcastSide,
    };
    open_with(Ok(gather), out, err)
}

unsafe extern "C" fn broadcast_join_push(
    state: *mut c_void,
    batch: Batch,
    _out: BatchSink,
    _err: ErrorSink,
) -> Status {
    let gather: &mut BroadcastGather = unsafe { state_of(state) };
    gather.frames.push(unsafe { take_frame(batch) });
    STATUS_OK
}

unsafe extern "C" fn broadcast_join_finish(
    state: *mut c_void,
    out: BatchSink,
    err: ErrorSink,
) -> Status {
    let gather: &mut BroadcastGather = unsafe { state_of(state) };
    let frames = std::mem::take(&mut gather.frames);
    let p = &gather.params;
    // SAFETY: the executor keeps the side until the task that opened with it is closed.
    let small = unsafe { &*gather.small };
    let large = match &p.before {
        None => gathered_or_empty(frames, &p.partition_schema),
        // The steps fused into the join filter the partition with the side's keys too.
        Some(before) => {
            let present = |key: &Column, words: &mut [u64]| {
                runtime_filter::and_present(small, &p.on, p.broadcast_right, key, words)
            };
            let test =
                runtime_filter::partition_key(&p.on, p.broadcast_right).map(|column| RowTest {
                    column,
                    and_into: &present,
                });
            through_steps(frames, before, test.as_ref())
                .and_then(|large| or_empty(large, &p.partition_schema))
        }
    };
    let result =
        large.and_then(|large| merge_join::broadcast_join(large, small, &p.on, p.broadcast_right));
    pass_on(out, err, result)
}

unsafe extern "C" fn broadcast_join_close(state: *mut c_void) {
    unsafe { close::<BroadcastGather>(state) }
}

static BROADCAST_JOIN: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    output: FRAME_BATCH,
    open: broadcast_join_open,
    push: broadcast_join_push,
    push_shared: None,
    finish: broadcast_join_finish,
    close: broadcast_join_close,
    recordwise: false,
};

unsafe extern "C" fn broadcast_join_table() -> *const c_void {
    &BROADCAST_JOIN as *const OperatorVTable as *const c_void
}

// Ipc: a partition as one Arrow IPC stream.

unsafe extern "C" fn ipc_open(_args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    open_with(
        Ok(Gather {
            params: (),
            frames: Vec::new(),
        }),
        out,
        err,
    )
}

/// A partition's rows as one Arrow IPC stream, empty for a partition without rows.
fn encoded(frame: Option<DataFrame>) -> Result<Vec<u8>, FrameError> {
    match frame {
        Some(frame) => ipc::encode(&frame),
        None => Ok(Vec::new()),
    }
}

unsafe extern "C" fn ipc_finish(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status {
    unsafe { answer_gathered(state, out, err, |frame, _: &()| encoded(frame)) }
}

static IPC: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    open: ipc_open,
    push: action_push::<()>,
    push_shared: None,
    finish: ipc_finish,
    close: gather_close::<()>,
    replayable: false,
    merge: None,
};

unsafe extern "C" fn ipc_table() -> *const c_void {
    &IPC as *const ActionVTable as *const c_void
}

// ParquetPiece: a partition's rows of a Parquet file.

unsafe extern "C" fn parquet_piece_decode(
    bytes: RawBytes,
    out: BatchSink,
    err: ErrorSink,
) -> Status {
    let piece: Result<ParquetPiece, FrameError> = bincode::deserialize(unsafe { bytes.as_slice() })
        .map_err(|e| FrameError::Params {
            what: "a Parquet reader",
            reason: e.to_string(),
        });
    pass_on(
        out,
        err,
        piece.and_then(|piece| files::read_parquet_piece(&piece)),
    )
}

static PARQUET_PIECE: SourceVTable = SourceVTable {
    abi_version: ABI_VERSION,
    output: FRAME_BATCH,
    decode: parquet_piece_decode,
};

unsafe extern "C" fn parquet_piece_source() -> *const c_void {
    &PARQUET_PIECE as *const SourceVTable as *const c_void
}

// Measure: a join side's partition counted, and sent along if it is small.

unsafe extern "C" fn measure_open(args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    open_gather::<MeasureParams>(args, "measuring a join side", out, err)
}

unsafe extern "C" fn measure_finish(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status {
    let measure = |frame: Option<DataFrame>, params: &MeasureParams| {
        let rows = frame.as_ref().map_or(0, |frame| frame.height() as u64);
        let mut result = rows.to_le_bytes().to_vec();
        if let Some(frame) = frame.filter(|_| rows <= params.max_rows) {
            ipc::encode_into(&frame, &mut result)?;
        }
        Ok(result)
    };
    unsafe { answer_gathered(state, out, err, measure) }
}

static MEASURE: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    open: measure_open,
    push: action_push::<MeasureParams>,
    push_shared: None,
    finish: measure_finish,
    close: gather_close::<MeasureParams>,
    replayable: false,
    merge: None,
};

unsafe extern "C" fn measure_table() -> *const c_void {
    &MEASURE as *const ActionVTable as *const c_void
}

// Write: a partition's rows to one file.

unsafe extern "C" fn write_open(args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    open_gather_for_partition::<WriteParams>(args, "writing files", out, err)
}

unsafe extern "C" fn write_finish(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status {
    let write = |frame: Option<DataFrame>, (params, partition): &(WriteParams, u32)| {
        // A partition without rows writes no file.
        let rows = match frame {
            Some(mut frame) => files::write_partition(
                &mut frame,
                std::path::Path::new(&params.dir),
                *partition,
                params.format,
            )?,
            None => 0,
        };
        Ok(rows.to_le_bytes().to_vec())
    };
    unsafe { answer_gathered(state, out, err, write) }
}

static WRITE: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    open: write_open,
    push: action_push::<(WriteParams, u32)>,
    push_shared: None,
    finish: write_finish,
    close: gather_close::<(WriteParams, u32)>,
    replayable: false,
    merge: None,
};

unsafe extern "C" fn write_table() -> *const c_void {
    &WRITE as *const ActionVTable as *const c_void
}

// RowsWriter: a partition's rows as records for cell code, in the bucket of its own index.

unsafe extern "C" fn rows_writer_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    open_gather_for_partition::<u32>(args, "rows for cell code", out, err)
}

unsafe extern "C" fn rows_writer_finish(
    state: *mut c_void,
    out: ByteSink,
    err: ErrorSink,
) -> Status {
    let buckets = |frame: Option<DataFrame>, &(partitions, partition): &(u32, u32)| {
        rows::record_buckets(frame.as_ref(), partition, partitions)
    };
    unsafe { answer_gathered(state, out, err, buckets) }
}

static ROWS_WRITER: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: FRAME_BATCH.type_name,
    open: rows_writer_open,
    push: action_push::<(u32, u32)>,
    push_shared: None,
    finish: rows_writer_finish,
    close: gather_close::<(u32, u32)>,
    replayable: false,
    merge: None,
};

unsafe extern "C" fn rows_writer_table() -> *const c_void {
    &ROWS_WRITER as *const ActionVTable as *const c_void
}

static PARSE_RECORDS: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: LINES_BATCH.type_name,
    output: FRAME_BATCH,
    open: parse_records_open,
    push: parse_push,
    push_shared: None,
    finish: parse_finish,
    close: parse_close,
    recordwise: false,
};

unsafe extern "C" fn parse_records_table() -> *const c_void {
    &PARSE_RECORDS as *const OperatorVTable as *const c_void
}
