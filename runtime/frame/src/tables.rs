//! The built-in operators ([`tessera_plan::builtin::Builtin`]) as the C ABI's tables, which the
//! executor calls as it calls a cell library's: sources that read line chunks and shuffle
//! buckets, operators that parse rows and run polars over a partition, a shuffle writer that
//! places rows by a hash of their keys, and the action that brings rows back to a cell.
//!
//! Operators that need a whole partition (every [`FrameStep`] may: an aggregation, a sort, a
//! distinct) gather its DataFrames and run when the partition ends.

use crate::batch::{
    FRAME_BATCH, FRAME_TYPE, LINES_BATCH, LINES_TYPE, push_frame, push_lines, report, take_frame,
    take_lines,
};
use crate::convert::schema_to_polars;
use crate::error::FrameError;
use crate::{ipc, read, rows, shuffle, steps};
use polars_core::prelude::DataFrame;
use polars_core::utils::accumulate_dataframes_vertical;
use serde::de::DeserializeOwned;
use std::ffi::c_void;
use tessera_plan::abi::{
    ABI_VERSION, ActionVTable, Batch, BatchSink, ByteSink, ErrorSink, MALFORMED_PREFIX, OpenArgs,
    OperatorVTable, RawBytes, STATUS_ERROR, STATUS_OK, SourceVTable, Status, TableEntry,
};
use tessera_plan::builtin::{Builtin, CsvParams, FrameShuffleParams, RowsParams, StepsParams};
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

unsafe fn state<'a, S>(state: *mut c_void) -> &'a mut S {
    unsafe { &mut *(state as *mut S) }
}

unsafe fn close<S>(state: *mut c_void) {
    drop(unsafe { Box::from_raw(state as *mut S) });
}

unsafe extern "C" fn frame_type() -> RawBytes {
    RawBytes::from_slice(FRAME_TYPE.as_bytes())
}

unsafe extern "C" fn lines_type() -> RawBytes {
    RawBytes::from_slice(LINES_TYPE.as_bytes())
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

enum Parser {
    Csv(CsvParams),
    Json(Schema),
}

impl Parser {
    fn parse(&self, lines: &[u8]) -> Result<DataFrame, FrameError> {
        match self {
            Parser::Csv(p) => read::parse_csv(lines, &p.schema, &p.options),
            Parser::Json(schema) => read::parse_json(lines, schema),
        }
    }
}

unsafe extern "C" fn parse_csv_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    open_with(params(&args, "a CSV reader").map(Parser::Csv), out, err)
}

unsafe extern "C" fn parse_json_open(
    args: OpenArgs,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    open_with(params(&args, "a JSON reader").map(Parser::Json), out, err)
}

unsafe extern "C" fn parse_push(
    state: *mut c_void,
    batch: Batch,
    out: BatchSink,
    err: ErrorSink,
) -> Status {
    let parser: &mut Parser = unsafe { self::state(state) };
    let lines = unsafe { take_lines(batch) };
    match parser.parse(&lines) {
        Ok(frame) => push_frame(out, frame),
        Err(e) => fail(err, &e),
    }
}

unsafe extern "C" fn nothing_to_finish(_: *mut c_void, _: BatchSink, _: ErrorSink) -> Status {
    STATUS_OK
}

unsafe extern "C" fn parse_close(state: *mut c_void) {
    unsafe { close::<Parser>(state) }
}

static PARSE_CSV: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: lines_type,
    output: FRAME_BATCH,
    open: parse_csv_open,
    push: parse_push,
    finish: nothing_to_finish,
    close: parse_close,
};

static PARSE_JSON: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: lines_type,
    output: FRAME_BATCH,
    open: parse_json_open,
    push: parse_push,
    finish: nothing_to_finish,
    close: parse_close,
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
    let gather: &mut Gather<P> = unsafe { self::state(state) };
    gather.frames.push(unsafe { take_frame(batch) });
    STATUS_OK
}

unsafe extern "C" fn gather_close<P>(state: *mut c_void) {
    unsafe { close::<Gather<P>>(state) }
}

unsafe extern "C" fn steps_open(args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    let gather = params::<StepsParams>(&args, "a DataFrame operation").map(|params| Gather {
        params,
        frames: Vec::new(),
    });
    open_with(gather, out, err)
}

unsafe extern "C" fn steps_finish(state: *mut c_void, out: BatchSink, err: ErrorSink) -> Status {
    let gather: &mut Gather<StepsParams> = unsafe { self::state(state) };
    let frames = std::mem::take(&mut gather.frames);
    let params = &gather.params;
    let result = gathered(frames).and_then(|frame| match frame {
        Some(frame) => steps::run_steps(frame, &params.steps).map(Some),
        None if params.run_on_empty => {
            let empty = DataFrame::empty_with_schema(&schema_to_polars(&params.input)?);
            steps::run_steps(empty, &params.steps).map(Some)
        }
        None => Ok(None),
    });
    match result {
        Ok(Some(frame)) => push_frame(out, frame),
        Ok(None) => STATUS_OK,
        Err(e) => fail(err, &e),
    }
}

static STEPS: OperatorVTable = OperatorVTable {
    abi_version: ABI_VERSION,
    input_type: frame_type,
    output: FRAME_BATCH,
    open: steps_open,
    push: gather_push::<StepsParams>,
    finish: steps_finish,
    close: gather_close::<StepsParams>,
};

unsafe extern "C" fn steps_table() -> *const c_void {
    &STEPS as *const OperatorVTable as *const c_void
}

// Actions: the shuffle writer and the rows for the cell, over a whole partition.

unsafe extern "C" fn action_push<P>(state: *mut c_void, batch: Batch, _err: ErrorSink) -> Status {
    let gather: &mut Gather<P> = unsafe { self::state(state) };
    gather.frames.push(unsafe { take_frame(batch) });
    STATUS_OK
}

fn open_gather<P: DeserializeOwned>(
    args: OpenArgs,
    what: &'static str,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    let gather = params::<P>(&args, what).map(|params| Gather {
        params,
        frames: Vec::new(),
    });
    open_with(gather, out, err)
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
    let gather: &mut Gather<FrameShuffleParams> = unsafe { self::state(state) };
    let frames = std::mem::take(&mut gather.frames);
    let result = gathered(frames).and_then(|frame| shuffle::map_output(frame, &gather.params));
    match result {
        Ok(bytes) => {
            unsafe { (out.write)(out.ctx, RawBytes::from_slice(&bytes)) };
            STATUS_OK
        }
        Err(e) => fail(err, &e),
    }
}

static HASH_WRITER: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: frame_type,
    open: hash_writer_open,
    push: action_push::<FrameShuffleParams>,
    finish: hash_writer_finish,
    close: gather_close::<FrameShuffleParams>,
};

unsafe extern "C" fn hash_writer_table() -> *const c_void {
    &HASH_WRITER as *const ActionVTable as *const c_void
}

unsafe extern "C" fn rows_open(args: OpenArgs, out: *mut *mut c_void, err: ErrorSink) -> Status {
    open_gather::<RowsParams>(args, "bringing rows back", out, err)
}

unsafe extern "C" fn rows_finish(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status {
    let gather: &mut Gather<RowsParams> = unsafe { self::state(state) };
    let frames = std::mem::take(&mut gather.frames);
    let limit = gather.params.limit;
    let result = gathered(frames).and_then(|frame| rows::encode_rows(frame.as_ref(), limit));
    match result {
        Ok(bytes) => {
            unsafe { (out.write)(out.ctx, RawBytes::from_slice(&bytes)) };
            STATUS_OK
        }
        Err(e) => fail(err, &e),
    }
}

static ROWS: ActionVTable = ActionVTable {
    abi_version: ABI_VERSION,
    input_type: frame_type,
    open: rows_open,
    push: action_push::<RowsParams>,
    finish: rows_finish,
    close: gather_close::<RowsParams>,
};

unsafe extern "C" fn rows_table() -> *const c_void {
    &ROWS as *const ActionVTable as *const c_void
}

// IpcReader: a shuffle bucket's record frame as a DataFrame.

unsafe extern "C" fn ipc_decode(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status {
    match ipc::decode(unsafe { bytes.as_slice() }, "a shuffle bucket") {
        Ok(frame) => push_frame(out, frame),
        Err(e) => fail(err, &e),
    }
}

static IPC_READER: SourceVTable = SourceVTable {
    abi_version: ABI_VERSION,
    output: FRAME_BATCH,
    decode: ipc_decode,
};

unsafe extern "C" fn ipc_reader() -> *const c_void {
    &IPC_READER as *const SourceVTable as *const c_void
}
