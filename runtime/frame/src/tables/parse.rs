//! The parsing operators (`ParseCsv`, `ParseJson`, `ParseRecords`): line chunks to DataFrames,
//! a partition's rows passed on as one DataFrame of contiguous columns.

use super::{close, fail, gathered, open_with, params, state_of};
use crate::batch::{FRAME_BATCH, LINES_BATCH, push_frame, take_lines};
use crate::error::FrameError;
use crate::{read, rows};
use polars_core::prelude::DataFrame;
use std::ffi::c_void;
use tessera_plan::abi::{
    ABI_VERSION, Batch, BatchSink, ErrorSink, Host, OpenArgs, OperatorVTable, RawBytes, STATUS_OK,
    Status,
};
use tessera_plan::builtin::{CsvParams, JsonParams, SkippedRows};
use tessera_plan::frame::Schema;

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

pub(super) unsafe extern "C" fn parse_csv_table() -> *const c_void {
    &PARSE_CSV as *const OperatorVTable as *const c_void
}

pub(super) unsafe extern "C" fn parse_json_table() -> *const c_void {
    &PARSE_JSON as *const OperatorVTable as *const c_void
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

pub(super) unsafe extern "C" fn parse_records_table() -> *const c_void {
    &PARSE_RECORDS as *const OperatorVTable as *const c_void
}
