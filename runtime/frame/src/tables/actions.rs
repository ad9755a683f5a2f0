//! The actions over a whole partition: the shuffle writers (by a hash of the keys, by ranges of
//! a sort's keys, as records for cell code), a sample of a sort's keys, a join side measured,
//! rows for the cell, a partition as an Arrow IPC stream, and files written.

use super::gather::{
    Gather, action_push, answer_gathered, gather_close, open_gather, open_gather_for_partition,
};
use super::open_with;
use crate::batch::FRAME_BATCH;
use crate::error::FrameError;
use crate::{files, ipc, ranges, rows, shuffle};
use polars_core::prelude::DataFrame;
use std::ffi::c_void;
use tessera_plan::abi::{ABI_VERSION, ActionVTable, ByteSink, ErrorSink, OpenArgs, Status};
use tessera_plan::builtin::{
    FrameShuffleParams, MeasureParams, RangeShuffleParams, RowsParams, SampleParams, WriteParams,
};

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

pub(super) unsafe extern "C" fn hash_writer_table() -> *const c_void {
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

pub(super) unsafe extern "C" fn range_writer_table() -> *const c_void {
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

pub(super) unsafe extern "C" fn sample_sort_keys_table() -> *const c_void {
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

pub(super) unsafe extern "C" fn rows_table() -> *const c_void {
    &ROWS as *const ActionVTable as *const c_void
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

pub(super) unsafe extern "C" fn ipc_table() -> *const c_void {
    &IPC as *const ActionVTable as *const c_void
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

pub(super) unsafe extern "C" fn measure_table() -> *const c_void {
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

pub(super) unsafe extern "C" fn write_table() -> *const c_void {
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

pub(super) unsafe extern "C" fn rows_writer_table() -> *const c_void {
    &ROWS_WRITER as *const ActionVTable as *const c_void
}
