//! Batches: the unit in which records cross the executor boundary, as a `Box<Vec<T>>`.

use crate::data::Data;
use crate::op_error::OpError;
use std::mem::size_of;
use tessera_plan::abi::{
    Batch, BatchSink, BatchVTable, ByteSink, ErrorSink, FlatRecords, RawBytes, RunsVTable,
    STATUS_ERROR, STATUS_OK, SharedRecords, Status,
};

/// Records per batch: large enough to amortize a call per batch, small enough to stay in cache.
pub(crate) const BATCH_RECORDS: usize = 4096;

pub(crate) fn into_batch<T>(records: Vec<T>) -> Batch {
    Box::into_raw(Box::new(records)) as Batch
}

/// # Safety
/// `batch` must be a `Box<Vec<T>>` made by [`into_batch`] and not used afterwards.
pub(crate) unsafe fn from_batch<T>(batch: Batch) -> Vec<T> {
    *unsafe { Box::from_raw(batch as *mut Vec<T>) }
}

/// Bytes of records a run of a cached partition is made with room for ([`RunsVTable`]): a pass
/// over LR's points leaves one stretch of memory for another every 95,000 points rather than
/// every 4096 (its 250,000-point partitions, 21 MiB, are three runs), and a partition of a few
/// records gives back, when it is sealed, the room it did not use.
const RUN_BYTES: usize = 8 << 20;

/// The records of a batch its owner keeps.
///
/// # Safety
/// `batch` must be a `Box<Vec<T>>` made by [`into_batch`], alive and unchanged for `'a`.
pub(crate) unsafe fn shared_batch<'a, T>(batch: Batch) -> &'a [T] {
    unsafe { &*(batch as *const Vec<T>) }
}

/// The records `records` names, of a batch its owner keeps (a range past the batch's end is
/// cut at it) or in memory the executor keeps.
///
/// # Safety
/// As [`shared_batch`], for `records.batch`; or `records.first` must be where `records.len`
/// records of type `T` are, copied from records of `T` ([`FlatRecords`]), alive and
/// unchanged for `'a`.
pub(crate) unsafe fn shared_records<'a, T>(records: SharedRecords) -> &'a [T] {
    if !records.first.is_null() {
        return unsafe { std::slice::from_raw_parts(records.first as *const T, records.len) };
    }
    let all = unsafe { shared_batch::<T>(records.batch) };
    let start = records.start.min(all.len());
    &all[start..start.saturating_add(records.len).min(all.len())]
}

pub(crate) unsafe extern "C" fn type_name_of<T>() -> RawBytes {
    RawBytes::from_slice(std::any::type_name::<T>().as_bytes())
}

/// Why an operator stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A later stage failed and has already reported why.
    Downstream,
    /// This operator failed: the executor is told why at the ABI boundary ([`guarded`]).
    Failed(OpError),
}

impl From<OpError> for Stop {
    fn from(error: OpError) -> Stop {
        Stop::Failed(error)
    }
}

/// Buffers records into batches and hands them on.
pub(crate) struct BatchOut<T> {
    sink: BatchSink,
    buffer: Vec<T>,
}

impl<T> BatchOut<T> {
    pub fn new(sink: BatchSink) -> Self {
        BatchOut {
            sink,
            buffer: Vec::new(),
        }
    }

    pub fn push(&mut self, record: T) -> Result<(), Stop> {
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(BATCH_RECORDS);
        }
        self.buffer.push(record);
        if self.buffer.len() >= BATCH_RECORDS {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Hands on a whole batch, after what is buffered.
    pub fn push_batch(&mut self, records: Vec<T>) -> Result<(), Stop> {
        self.flush()?;
        self.send(records)
    }

    pub fn flush(&mut self) -> Result<(), Stop> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let full = std::mem::take(&mut self.buffer);
        self.send(full)
    }

    fn send(&mut self, records: Vec<T>) -> Result<(), Stop> {
        if records.is_empty() {
            return Ok(());
        }
        // SAFETY: the sink takes ownership of the batch.
        let status = unsafe { (self.sink.push)(self.sink.ctx, into_batch(records)) };
        if status == STATUS_OK {
            Ok(())
        } else {
            Err(Stop::Downstream)
        }
    }
}

/// Runs `body` so that neither a panic nor an error crosses the ABI boundary.
pub(crate) fn guarded(err: ErrorSink, body: impl FnOnce() -> Result<(), Stop>) -> Status {
    let mut body = Some(body);
    guarded_dyn(err, &mut || match body.take() {
        Some(body) => body(),
        None => Ok(()),
    })
}

/// [`guarded`] without generics, and never inlined, so that the unwinding and reporting are
/// compiled once here rather than for every operator of every cell (cells compile faster).
#[inline(never)]
fn guarded_dyn(err: ErrorSink, body: &mut dyn FnMut() -> Result<(), Stop>) -> Status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => STATUS_OK,
        Ok(Err(Stop::Downstream)) => STATUS_ERROR,
        Ok(Err(Stop::Failed(error))) => {
            error.report(err);
            STATUS_ERROR
        }
        Err(payload) => {
            let message = crate::error::panic_message(payload.as_ref());
            OpError::Panicked { message }.report(err);
            STATUS_ERROR
        }
    }
}

pub(crate) fn write_bytes(out: ByteSink, bytes: &[u8]) {
    // SAFETY: the executor's sink copies the bytes before returning.
    unsafe { (out.write)(out.ctx, RawBytes::from_slice(bytes)) }
}

/// The batch functions for records of type `T`.
pub(crate) struct Batches<T>(std::marker::PhantomData<T>);

impl<T: Data> Batches<T> {
    pub const VTABLE: BatchVTable = BatchVTable {
        type_name: type_name_of::<T>,
        len: Self::len,
        memory_bytes: Self::memory_bytes,
        clone: Self::clone,
        drop: Self::drop,
        encode: Self::encode,
        decode: Self::decode,
        runs: Some(RunsVTable {
            gather: Self::gather,
            seal: Self::seal,
            copy: Self::copy,
            flat: Self::FLAT,
        }),
    };

    /// Records without drop glue own no memory elsewhere: their bytes are the records. (A
    /// reference, the one other thing that would tie them to a place, is no `Data`: records
    /// deserialize into values they own.) A record of no bytes is nothing to keep.
    const FLAT: Option<FlatRecords> = if !std::mem::needs_drop::<T>() && size_of::<T>() > 0 {
        Some(FlatRecords {
            size: size_of::<T>(),
            align: std::mem::align_of::<T>(),
            bytes: Self::bytes,
        })
    } else {
        None
    };

    unsafe fn records<'a>(batch: Batch) -> &'a Vec<T> {
        unsafe { &*(batch as *const Vec<T>) }
    }

    unsafe extern "C" fn len(batch: Batch) -> usize {
        unsafe { Self::records(batch) }.len()
    }

    unsafe extern "C" fn memory_bytes(batch: Batch) -> usize {
        let records = unsafe { Self::records(batch) };
        let inline = records.capacity() * size_of::<T>() + size_of::<Vec<T>>();
        if !std::mem::needs_drop::<T>() || records.is_empty() {
            // Types without drop glue own no heap memory.
            return inline;
        }
        // Estimate owned heap memory from a sample's serialized size.
        let sample = records.len().min(64);
        let sampled: u64 = records[..sample]
            .iter()
            .map(|r| bincode::serialized_size(r).unwrap_or(0))
            .sum();
        inline + (sampled as usize * records.len()) / sample
    }

    unsafe extern "C" fn clone(batch: Batch) -> Batch {
        into_batch(unsafe { Self::records(batch) }.clone())
    }

    unsafe extern "C" fn drop(batch: Batch) {
        drop(unsafe { from_batch::<T>(batch) });
    }

    unsafe extern "C" fn encode(batch: Batch, out: ByteSink, err: ErrorSink) -> Status {
        guarded(err, || {
            let bytes =
                crate::encoding::encode(unsafe { Self::records(batch) }).map_err(|source| {
                    OpError::RecordsEncode {
                        type_name: std::any::type_name::<T>(),
                        source,
                    }
                })?;
            write_bytes(out, &bytes);
            Ok(())
        })
    }

    unsafe extern "C" fn decode(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status {
        guarded(err, || {
            let records: Vec<T> =
                crate::encoding::decode(unsafe { bytes.as_slice() }).map_err(|source| {
                    OpError::RecordsDecode {
                        type_name: std::any::type_name::<T>(),
                        source,
                    }
                })?;
            let mut out = BatchOut::new(out);
            for chunk in chunked(records) {
                out.push_batch(chunk)?;
            }
            Ok(())
        })
    }

    unsafe extern "C" fn gather(run: Batch, from: Batch) -> Batch {
        let from = unsafe { Self::records(from) };
        if !run.is_null() {
            let records = unsafe { &mut *(run as *mut Vec<T>) };
            if records.capacity() - records.len() >= from.len() {
                records.extend_from_slice(from);
                return run;
            }
            records.shrink_to_fit();
        }
        let room = (RUN_BYTES / size_of::<T>().max(1)).max(from.len());
        let mut records = Vec::with_capacity(room);
        records.extend_from_slice(from);
        into_batch(records)
    }

    unsafe extern "C" fn seal(run: Batch) {
        unsafe { &mut *(run as *mut Vec<T>) }.shrink_to_fit();
    }

    unsafe extern "C" fn bytes(batch: Batch) -> RawBytes {
        let records = unsafe { Self::records(batch) };
        RawBytes {
            ptr: records.as_ptr() as *const u8,
            len: std::mem::size_of_val(records.as_slice()),
        }
    }

    unsafe extern "C" fn copy(records: SharedRecords) -> Batch {
        into_batch(unsafe { shared_records::<T>(records) }.to_vec())
    }
}

/// Splits `records` into batches of at most [`BATCH_RECORDS`].
pub(crate) fn chunked<T>(records: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut records = records.into_iter();
    std::iter::from_fn(move || {
        let chunk: Vec<T> = records.by_ref().take(BATCH_RECORDS).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}

/// The records an operator hands on while `drive` pushes into it.
#[cfg(test)]
pub(crate) fn output<T>(drive: impl FnOnce(&mut BatchOut<T>) -> Result<(), Stop>) -> Vec<T> {
    unsafe extern "C" fn keep(ctx: *mut std::ffi::c_void, batch: Batch) -> i32 {
        unsafe { (*(ctx as *mut Vec<Batch>)).push(batch) };
        STATUS_OK
    }
    let mut batches: Vec<Batch> = Vec::new();
    let sink = BatchSink {
        ctx: &mut batches as *mut Vec<Batch> as *mut std::ffi::c_void,
        push: keep,
    };
    let mut out = BatchOut::new(sink);
    assert!(drive(&mut out).and_then(|()| out.flush()).is_ok());
    batches
        .into_iter()
        .flat_map(|b| unsafe { from_batch::<T>(b) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records of a batch made by `Batches::<u64>`, which keeps it.
    fn records(batch: Batch) -> Vec<u64> {
        unsafe { shared_batch::<u64>(batch) }.to_vec()
    }

    #[test]
    fn a_partition_gathered_into_runs_keeps_its_records_in_order_in_few_allocations() {
        let runs = Batches::<u64>::VTABLE
            .runs
            .expect("records gather into runs");
        let room = RUN_BYTES / size_of::<u64>();
        // Batches of 4096 records, as operators hand them on, until a run is full and the
        // next one starts: its old run is left with no room to spare.
        let batches: Vec<Vec<u64>> = (0..(room / BATCH_RECORDS + 2) as u64)
            .map(|b| (b * 4096..(b + 1) * 4096).collect())
            .collect();
        let (mut run, mut full) = (std::ptr::null_mut(), Vec::new());
        for batch in &batches {
            let from = into_batch(batch.clone());
            let gathered = unsafe { (runs.gather)(run, from) };
            if gathered != run && !run.is_null() {
                full.push(run);
            }
            run = gathered;
            unsafe { Batches::<u64>::drop(from) };
        }
        unsafe { (runs.seal)(run) };
        full.push(run);
        assert_eq!(full.len(), 2, "a run holds {room} records");
        let lens: Vec<usize> = full
            .iter()
            .map(|&b| unsafe { Batches::<u64>::len(b) })
            .collect();
        assert_eq!(lens, [room, 2 * BATCH_RECORDS]);
        for &b in &full {
            let held = unsafe { Batches::<u64>::memory_bytes(b) };
            let len = unsafe { Batches::<u64>::len(b) };
            assert_eq!(held, len * 8 + size_of::<Vec<u64>>(), "no room left over");
        }
        let all: Vec<u64> = full.iter().flat_map(|&b| records(b)).collect();
        assert_eq!(all, (0..all.len() as u64).collect::<Vec<_>>());

        // A piece of a run, read in place and copied; a range past the end is cut at it.
        let piece = SharedRecords {
            batch: full[1],
            start: 4000,
            len: 200,
            first: std::ptr::null(),
        };
        let copy = unsafe { (runs.copy)(piece) };
        let expected: Vec<u64> = (room as u64 + 4000..room as u64 + 4200).collect();
        assert_eq!(records(copy), expected);
        assert_eq!(unsafe { shared_records::<u64>(piece) }, &expected[..]);
        let past = SharedRecords {
            start: 2 * BATCH_RECORDS - 3,
            len: 10,
            ..piece
        };
        assert_eq!(unsafe { shared_records::<u64>(past) }.len(), 3);
        let beyond = SharedRecords {
            start: 1 << 20,
            ..past
        };
        assert!(unsafe { shared_records::<u64>(beyond) }.is_empty());
        for batch in full.into_iter().chain([copy]) {
            unsafe { Batches::<u64>::drop(batch) };
        }
    }

    #[test]
    fn records_owning_nothing_elsewhere_are_copied_as_bytes_and_read_back_from_the_copy() {
        type Point = (f64, [f64; 3]);
        let flat = Batches::<Point>::FLAT.expect("a point owns nothing elsewhere");
        assert_eq!((flat.size, flat.align), (32, 8));
        for owning in [
            Batches::<String>::FLAT.is_some(),
            Batches::<(u32, Vec<u64>)>::FLAT.is_some(),
            Batches::<()>::FLAT.is_some(),
        ] {
            assert!(
                !owning,
                "records owning memory, or of no bytes, are not flat"
            );
        }

        let points: Vec<Point> = (0..10).map(|i| (i as f64, [i as f64 * 0.5; 3])).collect();
        let batch = into_batch(points.clone());
        let bytes = unsafe { (flat.bytes)(batch) };
        assert_eq!(bytes.len, 10 * 32);
        // Memory of the executor's own, with the records' alignment.
        let mut kept = vec![0f64; bytes.len / 8];
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.ptr, kept.as_mut_ptr() as *mut u8, bytes.len)
        };
        let piece = SharedRecords {
            batch: std::ptr::null_mut(),
            start: 0,
            len: 4,
            first: unsafe { (kept.as_ptr() as *const u8).add(3 * 32) },
        };
        assert_eq!(unsafe { shared_records::<Point>(piece) }, &points[3..7]);
        let runs = Batches::<Point>::VTABLE.runs.unwrap();
        let copy = unsafe { (runs.copy)(piece) };
        assert_eq!(unsafe { shared_batch::<Point>(copy) }, &points[3..7]);
        for batch in [batch, copy] {
            unsafe { Batches::<Point>::drop(batch) };
        }
    }
}
