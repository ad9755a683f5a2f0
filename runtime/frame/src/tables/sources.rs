//! The built-in sources: a text split's line chunks as they are, a shuffle bucket's record
//! frame as a DataFrame (marked with its join side), and a partition's rows of a Parquet file.

use super::{fail, pass_on};
use crate::batch::{FRAME_BATCH, JoinSide, LINES_BATCH, push_lines, push_side_frame};
use crate::error::FrameError;
use crate::{files, ipc};
use std::ffi::c_void;
use tessera_plan::abi::{ABI_VERSION, BatchSink, ErrorSink, RawBytes, SourceVTable, Status};
use tessera_plan::builtin::ParquetPiece;

// Lines: a text split's chunks of whole lines, as they are.

unsafe extern "C" fn lines_decode(bytes: RawBytes, out: BatchSink, _err: ErrorSink) -> Status {
    push_lines(out, unsafe { bytes.as_slice() })
}

static LINES_SOURCE: SourceVTable = SourceVTable {
    abi_version: ABI_VERSION,
    output: LINES_BATCH,
    decode: lines_decode,
};

pub(super) unsafe extern "C" fn lines_source() -> *const c_void {
    &LINES_SOURCE as *const SourceVTable as *const c_void
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

pub(super) unsafe extern "C" fn ipc_reader_right() -> *const c_void {
    &IPC_READER_RIGHT as *const SourceVTable as *const c_void
}

static IPC_READER: SourceVTable = SourceVTable {
    abi_version: ABI_VERSION,
    output: FRAME_BATCH,
    decode: ipc_decode,
};

pub(super) unsafe extern "C" fn ipc_reader() -> *const c_void {
    &IPC_READER as *const SourceVTable as *const c_void
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

pub(super) unsafe extern "C" fn parquet_piece_source() -> *const c_void {
    &PARQUET_PIECE as *const SourceVTable as *const c_void
}
