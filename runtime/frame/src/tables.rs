//! The built-in operators ([`tessera_plan::builtin::Builtin`]) as the C ABI's tables, which the
//! executor calls as it calls a cell library's: sources that read line chunks and shuffle
//! buckets, operators that parse rows and run polars over a partition, a shuffle writer that
//! places rows by a hash of their keys, and the action that brings rows back to a cell.
//!
//! Operators that need a whole partition (every [`FrameStep`] may: an aggregation, a sort, a
//! distinct) gather its DataFrames and run when the partition ends.
//!
//! One file per kind: [`sources`], the parsing operators ([`parse`]), the operators over a
//! whole partition ([`operators`]) and the actions ([`actions`]), with what those last two
//! share in [`gather`]. No table reads a shared batch in place (`push_shared: None`): the
//! executor pushes a copy of a cached DataFrame instead, which costs little, since a
//! DataFrame's clone shares its columns.

mod actions;
mod gather;
mod operators;
mod parse;
mod sources;

use actions::*;
use operators::*;
use parse::*;
use sources::*;

use crate::batch::{push_frame, report};
use crate::error::FrameError;
use polars_core::prelude::DataFrame;
use polars_core::utils::accumulate_dataframes_vertical;
use serde::de::DeserializeOwned;
use std::ffi::c_void;
use tessera_plan::abi::{
    BatchSink, ByteSink, ErrorSink, MALFORMED_PREFIX, OpenArgs, RawBytes, STATUS_ERROR, STATUS_OK,
    Status, TableEntry,
};
use tessera_plan::builtin::Builtin;

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
