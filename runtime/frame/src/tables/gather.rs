//! What the operators and actions over a whole partition share: the partition's DataFrames
//! gathered as they come ([`Gather`]), opened with their params and answered at its end.

use super::{answer, close, gathered, open_with, params, state_of};
use crate::batch::take_frame;
use crate::error::FrameError;
use polars_core::prelude::DataFrame;
use serde::de::DeserializeOwned;
use std::ffi::c_void;
use tessera_plan::abi::{Batch, BatchSink, ByteSink, ErrorSink, OpenArgs, STATUS_OK, Status};

/// A partition's DataFrames so far, and what is to be done with them.
pub(super) struct Gather<P> {
    pub(super) params: P,
    pub(super) frames: Vec<DataFrame>,
}

pub(super) unsafe extern "C" fn gather_push<P>(
    state: *mut c_void,
    batch: Batch,
    _out: BatchSink,
    _err: ErrorSink,
) -> Status {
    let gather: &mut Gather<P> = unsafe { state_of(state) };
    gather.frames.push(unsafe { take_frame(batch) });
    STATUS_OK
}

pub(super) unsafe extern "C" fn gather_close<P>(state: *mut c_void) {
    unsafe { close::<Gather<P>>(state) }
}

pub(super) unsafe extern "C" fn action_push<P>(
    state: *mut c_void,
    batch: Batch,
    _err: ErrorSink,
) -> Status {
    let gather: &mut Gather<P> = unsafe { state_of(state) };
    gather.frames.push(unsafe { take_frame(batch) });
    STATUS_OK
}

pub(super) fn open_gather<P: DeserializeOwned>(
    args: OpenArgs,
    what: &'static str,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> Status {
    open_gather_as(args, what, out, err, |params: P, _| params)
}

/// Opens an action that gathers a partition's frames and needs, beside its params, the index
/// of the partition.
pub(super) fn open_gather_for_partition<P: DeserializeOwned>(
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
pub(super) fn open_gather_as<P: DeserializeOwned, S>(
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
pub(super) unsafe fn answer_gathered<P>(
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
