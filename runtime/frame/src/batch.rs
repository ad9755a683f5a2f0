//! The two kinds of batch the executor's own DataFrame code makes, as the C ABI's
//! [`BatchVTable`]s, so that the executor caches, counts, encodes and frees them as it does the
//! batches of cell code: a polars DataFrame (encoded as Arrow IPC), and a chunk of whole lines
//! of a text file on their way to a CSV or JSON parser.

use crate::ipc;
use polars_core::prelude::DataFrame;
use tessera_plan::abi::{
    Batch, BatchSink, BatchVTable, ByteSink, ErrorSink, RawBytes, STATUS_ERROR, STATUS_OK, Status,
};

/// The record type name of a DataFrame batch: what the executor checks operators' inputs
/// against.
pub const FRAME_TYPE: &str = "polars::DataFrame";

/// The record type name of a chunk of lines.
pub const LINES_TYPE: &str = "tessera_frame::Lines";

/// Reports `message` through `err`.
pub fn report(err: ErrorSink, message: &str) {
    // SAFETY: the sink is the caller's and valid for this call.
    unsafe { (err.set)(err.ctx, RawBytes::from_slice(message.as_bytes())) }
}

/// Which side of a join a DataFrame batch came from: a join's partition reads both sides'
/// shuffle outputs one after the other, and its operator tells them apart by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinSide {
    /// The left side, and every batch that is not a join's input.
    Left,
    /// The right side, as the right side's shuffle reader marks its batches.
    Right,
}

/// A DataFrame batch: the frame, and the join side it came from.
struct FrameBatch {
    frame: DataFrame,
    side: JoinSide,
}

/// Hands `frame` to `out` as a batch.
pub fn push_frame(out: BatchSink, frame: DataFrame) -> Status {
    push_side_frame(out, frame, JoinSide::Left)
}

/// Hands `frame`, from join side `side`, to `out` as a batch.
pub fn push_side_frame(out: BatchSink, frame: DataFrame, side: JoinSide) -> Status {
    let batch = Box::into_raw(Box::new(FrameBatch { frame, side })) as Batch;
    // SAFETY: the sink takes ownership of the batch, which `FRAME_BATCH.drop` frees.
    unsafe { (out.push)(out.ctx, batch) }
}

/// The DataFrame a frame batch holds.
///
/// # Safety
/// `batch` must be a live batch of [`FRAME_BATCH`].
pub unsafe fn frame_ref<'a>(batch: Batch) -> &'a DataFrame {
    unsafe { &(*(batch as *const FrameBatch)).frame }
}

/// Takes the DataFrame out of a frame batch, freeing the batch.
///
/// # Safety
/// `batch` must be a live batch of [`FRAME_BATCH`], not used afterwards.
pub unsafe fn take_frame(batch: Batch) -> DataFrame {
    unsafe { take_side_frame(batch) }.0
}

/// Takes the DataFrame and its join side out of a frame batch, freeing the batch.
///
/// # Safety
/// `batch` must be a live batch of [`FRAME_BATCH`], not used afterwards.
pub unsafe fn take_side_frame(batch: Batch) -> (DataFrame, JoinSide) {
    let batch = *unsafe { Box::from_raw(batch as *mut FrameBatch) };
    (batch.frame, batch.side)
}

unsafe extern "C" fn frame_type() -> RawBytes {
    RawBytes::from_slice(FRAME_TYPE.as_bytes())
}

unsafe extern "C" fn frame_len(batch: Batch) -> usize {
    unsafe { frame_ref(batch) }.height()
}

unsafe extern "C" fn frame_memory(batch: Batch) -> usize {
    // The Arrow buffers' sizes, as polars estimates them.
    unsafe { frame_ref(batch) }.estimated_size()
}

unsafe extern "C" fn frame_clone(batch: Batch) -> Batch {
    let batch = unsafe { &*(batch as *const FrameBatch) };
    // Columns are reference-counted Arrow arrays: a clone shares them.
    let clone = FrameBatch {
        frame: batch.frame.clone(),
        side: batch.side,
    };
    Box::into_raw(Box::new(clone)) as Batch
}

unsafe extern "C" fn frame_drop(batch: Batch) {
    drop(unsafe { take_frame(batch) });
}

unsafe extern "C" fn frame_encode(batch: Batch, out: ByteSink, err: ErrorSink) -> Status {
    match ipc::encode(unsafe { frame_ref(batch) }) {
        Ok(bytes) => {
            unsafe { (out.write)(out.ctx, RawBytes::from_slice(&bytes)) };
            STATUS_OK
        }
        Err(e) => {
            report(err, &e.to_string());
            STATUS_ERROR
        }
    }
}

unsafe extern "C" fn frame_decode(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status {
    match ipc::decode(unsafe { bytes.as_slice() }, "a serialized DataFrame") {
        Ok(frame) => push_frame(out, frame),
        Err(e) => {
            report(err, &e.to_string());
            STATUS_ERROR
        }
    }
}

/// Functions over DataFrame batches.
pub const FRAME_BATCH: BatchVTable = BatchVTable {
    type_name: frame_type,
    len: frame_len,
    memory_bytes: frame_memory,
    clone: frame_clone,
    drop: frame_drop,
    encode: frame_encode,
    decode: frame_decode,
    runs: None,
};

/// Hands a copy of `lines` to `out` as a batch.
pub fn push_lines(out: BatchSink, lines: &[u8]) -> Status {
    let batch = Box::into_raw(Box::new(lines.to_vec())) as Batch;
    // SAFETY: the sink takes ownership of the batch, which `LINES_BATCH.drop` frees.
    unsafe { (out.push)(out.ctx, batch) }
}

/// Takes the bytes out of a lines batch, freeing the batch.
///
/// # Safety
/// `batch` must be a live batch of [`LINES_BATCH`], not used afterwards.
pub unsafe fn take_lines(batch: Batch) -> Vec<u8> {
    *unsafe { Box::from_raw(batch as *mut Vec<u8>) }
}

unsafe fn lines_ref<'a>(batch: Batch) -> &'a Vec<u8> {
    unsafe { &*(batch as *const Vec<u8>) }
}

unsafe extern "C" fn lines_type() -> RawBytes {
    RawBytes::from_slice(LINES_TYPE.as_bytes())
}

unsafe extern "C" fn lines_len(batch: Batch) -> usize {
    unsafe { lines_ref(batch) }
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

unsafe extern "C" fn lines_memory(batch: Batch) -> usize {
    unsafe { lines_ref(batch) }.capacity()
}

unsafe extern "C" fn lines_clone(batch: Batch) -> Batch {
    Box::into_raw(Box::new(unsafe { lines_ref(batch) }.clone())) as Batch
}

unsafe extern "C" fn lines_drop(batch: Batch) {
    drop(unsafe { take_lines(batch) });
}

unsafe extern "C" fn lines_encode(batch: Batch, out: ByteSink, _err: ErrorSink) -> Status {
    unsafe { (out.write)(out.ctx, RawBytes::from_slice(lines_ref(batch))) };
    STATUS_OK
}

unsafe extern "C" fn lines_decode(bytes: RawBytes, out: BatchSink, _err: ErrorSink) -> Status {
    push_lines(out, unsafe { bytes.as_slice() })
}

/// Functions over chunks of lines.
pub const LINES_BATCH: BatchVTable = BatchVTable {
    type_name: lines_type,
    len: lines_len,
    memory_bytes: lines_memory,
    clone: lines_clone,
    drop: lines_drop,
    encode: lines_encode,
    decode: lines_decode,
    runs: None,
};
