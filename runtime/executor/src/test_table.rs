//! Batch tables for the executor's unit tests, as a cell library's would be.

/// A table of batches of bytes (a `Vec<u8>` each) whose runs have room for 10,000.
pub mod bytes {
    use tessera_plan::abi::{
        Batch, BatchSink, BatchVTable, ByteSink, ErrorSink, RawBytes, RunsVTable, STATUS_OK,
        SharedRecords, Status,
    };

    const ROOM: usize = 10_000;

    pub fn batch(records: Vec<u8>) -> Batch {
        Box::into_raw(Box::new(records)) as Batch
    }
    pub fn records<'a>(batch: Batch) -> &'a mut Vec<u8> {
        unsafe { &mut *(batch as *mut Vec<u8>) }
    }
    unsafe extern "C" fn type_name() -> RawBytes {
        RawBytes::from_slice(b"u8")
    }
    unsafe extern "C" fn len(batch: Batch) -> usize {
        records(batch).len()
    }
    unsafe extern "C" fn clone(batch: Batch) -> Batch {
        self::batch(records(batch).clone())
    }
    unsafe extern "C" fn drop(batch: Batch) {
        std::mem::drop(unsafe { Box::from_raw(batch as *mut Vec<u8>) });
    }
    unsafe extern "C" fn encode(_: Batch, _: ByteSink, _: ErrorSink) -> Status {
        STATUS_OK
    }
    unsafe extern "C" fn decode(_: RawBytes, _: BatchSink, _: ErrorSink) -> Status {
        STATUS_OK
    }
    unsafe extern "C" fn gather(run: Batch, from: Batch) -> Batch {
        let from = records(from);
        if !run.is_null() && records(run).capacity() - records(run).len() >= from.len() {
            records(run).extend_from_slice(from);
            return run;
        }
        if !run.is_null() {
            records(run).shrink_to_fit();
        }
        let mut new = Vec::with_capacity(ROOM.max(from.len()));
        new.extend_from_slice(from);
        batch(new)
    }
    unsafe extern "C" fn seal(run: Batch) {
        records(run).shrink_to_fit();
    }
    unsafe extern "C" fn copy(piece: SharedRecords) -> Batch {
        if !piece.first.is_null() {
            let kept = unsafe { std::slice::from_raw_parts(piece.first, piece.len) };
            return batch(kept.to_vec());
        }
        batch(records(piece.batch)[piece.start..piece.start + piece.len].to_vec())
    }
    unsafe extern "C" fn flat_bytes(batch: Batch) -> RawBytes {
        RawBytes::from_slice(records(batch))
    }
    pub const TABLE: BatchVTable = BatchVTable {
        type_name,
        len,
        memory_bytes: len,
        clone,
        drop,
        encode,
        decode,
        runs: Some(RunsVTable {
            gather,
            seal,
            copy,
            flat: None,
        }),
    };
    /// The same table, its records plain bytes.
    pub const FLAT: BatchVTable = BatchVTable {
        runs: Some(RunsVTable {
            flat: Some(tessera_plan::abi::FlatRecords {
                size: 1,
                align: 1,
                bytes: flat_bytes,
            }),
            ..TABLE.runs.unwrap()
        }),
        ..TABLE
    };
}
