//! The operators over a whole partition: DataFrame steps through polars (`Steps`), and the
//! joins, of two shuffled sides (`Join`) or of a partition with a broadcast side
//! (`BroadcastJoin`).

use super::gather::{Gather, gather_close, gather_push, open_gather};
use super::{close, fail, gathered, open_with, params, pass_on, state_of};
use crate::batch::{FRAME_BATCH, JoinSide, push_frame, take_frame, take_side_frame};
use crate::convert::schema_to_polars;
use crate::error::FrameError;
use crate::mask::RowTest;
use crate::merge_join::{self, BroadcastSide};
use crate::{ipc, join, runtime_filter, steps};
use polars_core::prelude::{Column, DataFrame};
use std::ffi::c_void;
use tessera_plan::abi::{
    ABI_VERSION, Batch, BatchSink, ErrorSink, OpenArgs, OperatorVTable, RawBytes, STATUS_ERROR,
    STATUS_OK, Status,
};
use tessera_plan::builtin::{BroadcastJoinParams, JoinParams, StepsParams};
use tessera_plan::frame::Schema;

// Steps: a whole partition through polars.

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

pub(super) unsafe extern "C" fn steps_table() -> *const c_void {
    &STEPS as *const OperatorVTable as *const c_void
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

pub(super) unsafe extern "C" fn join_table() -> *const c_void {
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

pub(super) unsafe extern "C" fn broadcast_join_table() -> *const c_void {
    &BROADCAST_JOIN as *const OperatorVTable as *const c_void
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
