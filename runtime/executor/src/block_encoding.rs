//! How a cached partition is encoded: its batches one after another, each as its table's
//! `encode` writes it, preceded by its length (u64, little-endian).
//!
//! `MEMORY_ONLY_SER` blocks keep these bytes in memory ([`encode_owned`]), and a copy for
//! another executor is sent as them. `DISK_ONLY` blocks and the copies in host memory
//! (`host_copy.rs`) keep them in a file, written and read a frame at a time ([`encode_into`],
//! [`decode_each_from`]): a partition going to or coming from a file never needs a buffer of
//! its whole size beside its records. A `DISK_ONLY` or `MEMORY_ONLY_SER` partition is cut a run
//! a piece at a time ([`Framing::Pieces`]), so its frames stay a piece's size. A task reads a
//! partition kept either way a frame at a time ([`decode_each`]).

use std::ffi::c_void;
use std::io::{Read, Write};

use tessera_plan::abi::{Batch, BatchSink, BatchVTable, ByteSink, ErrorSink, RawBytes, STATUS_OK};
use tessera_plan::decode::DecodeError;

use crate::blocks::free;
use crate::error::ExecutorError;
use crate::runs::{PIECE_RECORDS, pieces};

/// What a serialized block holds, for errors.
const BLOCK: &str = "a cached partition";

unsafe extern "C" fn append(ctx: *mut c_void, bytes: RawBytes) {
    unsafe { (*(ctx as *mut Vec<u8>)).extend_from_slice(bytes.as_slice()) }
}

unsafe extern "C" fn keep_batch(ctx: *mut c_void, batch: Batch) -> i32 {
    unsafe { (*(ctx as *mut Vec<Batch>)).push(batch) };
    STATUS_OK
}

unsafe extern "C" fn keep_error(ctx: *mut c_void, message: RawBytes) {
    let message = String::from_utf8_lossy(unsafe { message.as_slice() }).into_owned();
    unsafe { *(ctx as *mut String) = message };
}

/// A sink for the cell code's message into `error`, if it fails.
fn error_sink(error: &mut String) -> ErrorSink {
    ErrorSink {
        ctx: error as *mut String as *mut c_void,
        set: keep_error,
    }
}

/// Encodes `batch` into `frame` (emptied first).
fn encode_frame(
    batch: Batch,
    vtable: &BatchVTable,
    frame: &mut Vec<u8>,
) -> Result<(), ExecutorError> {
    frame.clear();
    let mut error = String::new();
    let sink = ByteSink {
        ctx: frame as *mut Vec<u8> as *mut c_void,
        write: append,
    };
    // SAFETY: the batch was produced with this table, which encodes without consuming it.
    if unsafe { (vtable.encode)(batch, sink, error_sink(&mut error)) } != STATUS_OK {
        return Err(ExecutorError::CacheEncode { message: error });
    }
    Ok(())
}

/// How a partition's batches are cut into frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// A batch a frame: the fastest to encode, but a batch the block manager gathered records
    /// into (a run, `runs.rs`) may hold a large part of the partition, and so may its frame,
    /// with the cell code's buffer behind it.
    Batches,
    /// A run a piece at a time ([`PIECE_RECORDS`] records, copied out of the run): every frame
    /// stays a piece's size, for a copy of each record.
    Pieces,
}

/// Writes `batches` into `out` as length-prefixed frames cut as `framing` says, a frame at a
/// time; returns the bytes written. A failed write is told by `write_error`.
pub(crate) fn encode_into(
    batches: &[Batch],
    vtable: &BatchVTable,
    framing: Framing,
    out: &mut impl Write,
    write_error: impl Fn(std::io::Error) -> ExecutorError,
) -> Result<u64, ExecutorError> {
    let mut frame = Vec::new();
    let mut written = 0;
    let mut put = |frame: &[u8]| -> Result<(), ExecutorError> {
        out.write_all(&(frame.len() as u64).to_le_bytes())
            .and_then(|()| out.write_all(frame))
            .map_err(&write_error)?;
        written += 8 + frame.len() as u64;
        Ok(())
    };
    for &batch in batches {
        // SAFETY: the batch is a live batch of this table.
        let whole = framing == Framing::Batches
            || vtable.runs.is_none()
            || unsafe { (vtable.len)(batch) } <= PIECE_RECORDS;
        if whole {
            encode_frame(batch, vtable, &mut frame)?;
            put(&frame)?;
            continue;
        }
        for piece in pieces(&[batch], vtable) {
            // SAFETY: a piece of a live batch of this table, copied into a batch of its own.
            let copy = unsafe { crate::runs::copy(vtable, piece) };
            let encoded = encode_frame(copy, vtable, &mut frame);
            // SAFETY: the copy is ours, and freed once.
            unsafe { (vtable.drop)(copy) };
            encoded?;
            put(&frame)?;
        }
    }
    Ok(written)
}

/// What a write into memory cannot fail with, were it to.
fn memory_write_error(e: std::io::Error) -> ExecutorError {
    ExecutorError::CacheEncode {
        message: e.to_string(),
    }
}

/// Encodes batches as length-prefixed frames in memory, a batch a frame: for a copy sent to
/// another executor, whose bytes are sent whole anyway.
pub(crate) fn encode(batches: &[Batch], vtable: &BatchVTable) -> Result<Vec<u8>, ExecutorError> {
    let mut out = Vec::new();
    encode_into(
        batches,
        vtable,
        Framing::Batches,
        &mut out,
        memory_write_error,
    )?;
    Ok(out)
}

/// Encodes `batches` in memory, a run a piece at a time ([`Framing::Pieces`]), into
/// a buffer of `room` bytes to start with, freeing each batch as soon as it is encoded: caching
/// a partition serialized holds its records and its bytes together a batch at a time, not
/// whole.
pub(crate) fn encode_owned(
    batches: Vec<Batch>,
    vtable: &BatchVTable,
    room: usize,
) -> Result<Vec<u8>, ExecutorError> {
    let mut out = Vec::with_capacity(room);
    let mut batches = batches.into_iter();
    let mut encoded = Ok(0);
    for batch in batches.by_ref() {
        encoded = encode_into(
            &[batch],
            vtable,
            Framing::Pieces,
            &mut out,
            memory_write_error,
        );
        // SAFETY: the batch is ours, and freed once.
        unsafe { (vtable.drop)(batch) };
        if encoded.is_err() {
            break;
        }
    }
    free(batches.collect(), vtable);
    encoded?;
    out.shrink_to_fit();
    Ok(out)
}

/// Decodes one frame into `batches` (emptied, its batches freed, if it fails).
fn decode_frame(
    frame: &[u8],
    vtable: &BatchVTable,
    batches: &mut Vec<Batch>,
) -> Result<(), ExecutorError> {
    let mut error = String::new();
    let sink = BatchSink {
        ctx: batches as *mut Vec<Batch> as *mut c_void,
        push: keep_batch,
    };
    let frame = RawBytes::from_slice(frame);
    // SAFETY: the frame was written by this table's `encode`.
    if unsafe { (vtable.decode)(frame, sink, error_sink(&mut error)) } != STATUS_OK {
        free(std::mem::take(batches), vtable);
        return Err(ExecutorError::CacheDecode { message: error });
    }
    Ok(())
}

fn truncated(expected: u64, received: u64) -> DecodeError {
    DecodeError::Truncated {
        what: BLOCK,
        expected,
        received,
    }
}

/// The frames [`encode`] wrote, each checked to lie within `bytes`.
fn frames(mut bytes: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| truncated(8, bytes.len() as u64))?;
        let len = u64::from_le_bytes(*len);
        if len > rest.len() as u64 {
            return Err(truncated(len, rest.len() as u64));
        }
        let (frame, rest) = rest.split_at(len as usize);
        frames.push(frame);
        bytes = rest;
    }
    Ok(frames)
}

/// Decodes what [`encode`] wrote.
pub(crate) fn decode(bytes: &[u8], vtable: &BatchVTable) -> Result<Vec<Batch>, ExecutorError> {
    collect(vtable, |keep| decode_each(bytes, vtable, keep))
}

/// Hands `each` the batches of what [`encode`] wrote, a frame's at a time, until it returns
/// false. Every frame is checked to lie within `bytes` before any is decoded.
pub(crate) fn decode_each(
    bytes: &[u8],
    vtable: &BatchVTable,
    mut each: impl FnMut(Batch) -> bool,
) -> Result<(), ExecutorError> {
    let mut batches = Vec::new();
    for frame in frames(bytes)? {
        decode_frame(frame, vtable, &mut batches)?;
        if !hand_on(&mut batches, vtable, &mut each) {
            break;
        }
    }
    Ok(())
}

/// Decodes the `len` bytes [`encode_into`] wrote, read from `from` a frame at a time (as
/// [`decode_each_from`] reads them).
pub(crate) fn decode_from(
    from: impl Read,
    len: u64,
    vtable: &BatchVTable,
    read_error: impl Fn(std::io::Error) -> ExecutorError,
) -> Result<Vec<Batch>, ExecutorError> {
    collect(vtable, |keep| {
        decode_each_from(from, len, vtable, read_error, keep)
    })
}

/// Hands `each` the batches of the `len` bytes [`encode_into`] wrote, read from `from` a frame
/// at a time, until it returns false: only a frame and its batches are in memory at once. A
/// frame is read only once it is known to lie within `len`, so a damaged length asks for no
/// more than what is there; a failed read is told by `read_error`.
pub(crate) fn decode_each_from(
    mut from: impl Read,
    len: u64,
    vtable: &BatchVTable,
    read_error: impl Fn(std::io::Error) -> ExecutorError,
    mut each: impl FnMut(Batch) -> bool,
) -> Result<(), ExecutorError> {
    let mut frame = Vec::new();
    let mut batches = Vec::new();
    let mut left = len;
    while left > 0 {
        read_frame(&mut from, &mut left, &mut frame, &read_error)?;
        decode_frame(&frame, vtable, &mut batches)?;
        if !hand_on(&mut batches, vtable, &mut each) {
            break;
        }
    }
    Ok(())
}

/// Every batch that `decode` hands on, or none (those it handed freed) if it fails.
pub(crate) fn collect(
    vtable: &BatchVTable,
    decode: impl FnOnce(&mut dyn FnMut(Batch) -> bool) -> Result<(), ExecutorError>,
) -> Result<Vec<Batch>, ExecutorError> {
    let mut batches = Vec::new();
    let decoded = decode(&mut |batch| {
        batches.push(batch);
        true
    });
    match decoded {
        Ok(()) => Ok(batches),
        Err(e) => {
            free(batches, vtable);
            Err(e)
        }
    }
}

/// Hands `each` the batches of a frame, emptying `batches`, until it returns false (the rest
/// are freed); returns whether it wants more.
fn hand_on(
    batches: &mut Vec<Batch>,
    vtable: &BatchVTable,
    each: &mut impl FnMut(Batch) -> bool,
) -> bool {
    let mut more = true;
    for batch in batches.drain(..) {
        if more {
            more = each(batch);
        } else {
            // SAFETY: a batch decoded here, not handed on, freed once.
            unsafe { (vtable.drop)(batch) };
        }
    }
    more
}

/// Reads the next frame of `from` into `frame`, `left` bytes being all that is left of it.
fn read_frame(
    from: &mut impl Read,
    left: &mut u64,
    frame: &mut Vec<u8>,
    read_error: impl Fn(std::io::Error) -> ExecutorError,
) -> Result<(), ExecutorError> {
    if *left < 8 {
        return Err(truncated(8, *left).into());
    }
    let mut prefix = [0; 8];
    from.read_exact(&mut prefix).map_err(&read_error)?;
    *left -= 8;
    let size = u64::from_le_bytes(prefix);
    if size > *left {
        return Err(truncated(size, *left).into());
    }
    frame.clear();
    from.take(size).read_to_end(frame).map_err(&read_error)?;
    if frame.len() as u64 != size {
        return Err(truncated(size, frame.len() as u64).into());
    }
    *left -= size;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    // Batches of this test table are `Box<Vec<u8>>`; a batch's memory is its length.
    unsafe extern "C" fn type_name() -> RawBytes {
        RawBytes::from_slice(b"u8")
    }
    pub(crate) unsafe extern "C" fn len(b: Batch) -> usize {
        unsafe { (*(b as *const Vec<u8>)).len() }
    }
    unsafe extern "C" fn clone(b: Batch) -> Batch {
        Box::into_raw(Box::new(unsafe { (*(b as *const Vec<u8>)).clone() })) as Batch
    }
    pub(crate) unsafe extern "C" fn drop_batch(b: Batch) {
        drop(unsafe { Box::from_raw(b as *mut Vec<u8>) })
    }
    unsafe extern "C" fn encode(b: Batch, out: ByteSink, _: ErrorSink) -> i32 {
        let bytes = unsafe { &*(b as *const Vec<u8>) };
        unsafe { (out.write)(out.ctx, RawBytes::from_slice(bytes)) };
        STATUS_OK
    }
    unsafe extern "C" fn decode(bytes: RawBytes, out: BatchSink, _: ErrorSink) -> i32 {
        let batch = Box::into_raw(Box::new(unsafe { bytes.as_slice() }.to_vec())) as Batch;
        unsafe { (out.push)(out.ctx, batch) }
    }
    /// A table of byte batches.
    pub(crate) const VTABLE: BatchVTable = BatchVTable {
        type_name,
        len,
        memory_bytes: len,
        clone,
        drop: drop_batch,
        encode,
        decode,
        runs: None,
    };

    /// Byte batches of these contents.
    pub(crate) fn batches_of(contents: &[Vec<u8>]) -> Vec<Batch> {
        contents
            .iter()
            .map(|c| Box::into_raw(Box::new(c.clone())) as Batch)
            .collect()
    }

    /// The contents of byte batches, which it frees.
    pub(crate) fn contents_of(batches: Vec<Batch>) -> Vec<Vec<u8>> {
        let read = batches
            .iter()
            .map(|&b| unsafe { (*(b as *const Vec<u8>)).clone() })
            .collect();
        free(batches, &VTABLE);
        read
    }

    fn read_error(e: std::io::Error) -> ExecutorError {
        ExecutorError::CacheDecode {
            message: e.to_string(),
        }
    }

    /// A writer that keeps what it is given and notes the largest single write.
    #[derive(Default)]
    struct Noting {
        written: Vec<u8>,
        largest: usize,
    }

    impl Write for Noting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.largest = self.largest.max(buf.len());
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_partition_goes_to_a_file_a_frame_at_a_time_and_reads_back_the_same() {
        let contents: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 1000]).collect();
        let batches = batches_of(&contents);
        let mut out = Noting::default();
        let written =
            encode_into(&batches, &VTABLE, Framing::Pieces, &mut out, read_error).unwrap();
        assert_eq!(written, 10 * 1008);
        assert_eq!(out.written, super::encode(&batches, &VTABLE).unwrap());
        // Never the whole partition in one buffer: a batch's frame at most.
        assert!(out.largest <= 1000, "a write of {} bytes", out.largest);
        free(batches, &VTABLE);
        // Read back through a reader that gives a few bytes at a time.
        let reader = std::io::BufReader::with_capacity(7, out.written.as_slice());
        let back = decode_from(reader, written, &VTABLE, read_error).unwrap();
        assert_eq!(contents_of(back), contents);
    }

    #[test]
    fn a_run_goes_to_a_file_a_piece_at_a_time() {
        // The same byte batches, gathered into runs.
        let runs = BatchVTable {
            runs: crate::test_table::bytes::TABLE.runs,
            ..VTABLE
        };
        let records: Vec<u8> = (0..25_000u32).map(|i| (i % 251) as u8).collect();
        let batches = batches_of(std::slice::from_ref(&records));
        let mut out = Noting::default();
        let written = encode_into(&batches, &runs, Framing::Pieces, &mut out, read_error).unwrap();
        assert!(
            out.largest <= PIECE_RECORDS,
            "a write of {} bytes",
            out.largest
        );
        // Seven pieces, each with its length.
        assert_eq!(written, 25_000 + 7 * 8);
        free(batches, &runs);
        let back = decode_from(out.written.as_slice(), written, &runs, read_error).unwrap();
        assert_eq!(contents_of(back).concat(), records);
    }

    #[test]
    fn a_partition_encoded_as_it_is_freed_reads_back_the_same() {
        let runs = BatchVTable {
            runs: crate::test_table::bytes::TABLE.runs,
            ..VTABLE
        };
        let contents: Vec<Vec<u8>> = vec![vec![1; 10_000], vec![2; 30], vec![3; 5_000]];
        let encoded = encode_owned(batches_of(&contents), &runs, 16).unwrap();
        // Pieces of 4,096 records: 3 + 1 + 2 frames.
        assert_eq!(encoded.len(), 15_030 + 6 * 8);
        let back = super::decode(&encoded, &runs).unwrap();
        assert_eq!(contents_of(back).concat(), contents.concat());
    }

    /// A reader that fails.
    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("the disk went away"))
        }
    }

    #[test]
    fn a_file_is_handed_on_a_frame_at_a_time_before_the_rest_is_read() {
        let contents: Vec<Vec<u8>> = vec![vec![1; 50], vec![2; 60], vec![3; 70]];
        let batches = batches_of(&contents);
        let bytes = super::encode(&batches, &VTABLE).unwrap();
        free(batches, &VTABLE);
        let len = bytes.len() as u64;
        // Only the first frame can be read; the rest of the file fails.
        let first_only = || bytes[..58].chain(Failing);
        let mut handed = Vec::new();
        let stopped = decode_each_from(first_only(), len, &VTABLE, read_error, |batch| {
            handed.push(batch);
            false
        });
        assert!(stopped.is_ok(), "no more was read once the reader stopped");
        assert_eq!(contents_of(std::mem::take(&mut handed)), [vec![1; 50]]);
        let failed = decode_each_from(first_only(), len, &VTABLE, read_error, |batch| {
            handed.push(batch);
            true
        });
        assert!(
            failed
                .unwrap_err()
                .to_string()
                .contains("the disk went away")
        );
        assert_eq!(
            contents_of(handed),
            [vec![1; 50]],
            "handed on before the failure"
        );
    }

    #[test]
    fn a_frame_longer_than_the_block_is_an_error_not_an_overflow_or_an_allocation() {
        let mut bytes = (u64::MAX - 3).to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let error = frames(&bytes).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("a cached partition is cut short: 3 of"),
            "{error}"
        );
        assert!(frames(&[1, 0, 0]).is_err(), "a length cut short");
        // From a file: refused before a buffer of that length is asked for.
        let error = decode_from(bytes.as_slice(), 11, &VTABLE, read_error).unwrap_err();
        assert!(error.to_string().contains("cut short: 3 of"), "{error}");
        // A file shorter than its length says: cut short, not a panic.
        let whole = super::encode(&batches_of(&[vec![1; 20]]), &VTABLE).unwrap();
        let error = decode_from(&whole[..15], 28, &VTABLE, read_error).unwrap_err();
        assert!(error.to_string().contains("cut short: 7 of 20"), "{error}");
    }

    proptest! {
        #[test]
        fn arbitrary_blocks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(batches) = super::decode(&bytes, &VTABLE) {
                let total: usize = batches.iter().map(|&b| unsafe { len(b) }).sum();
                prop_assert!(total <= bytes.len());
                free(batches, &VTABLE);
            }
            let streamed = decode_from(bytes.as_slice(), bytes.len() as u64, &VTABLE, read_error);
            if let Ok(batches) = streamed {
                let total: usize = batches.iter().map(|&b| unsafe { len(b) }).sum();
                prop_assert!(total <= bytes.len());
                free(batches, &VTABLE);
            }
        }

        #[test]
        fn encoded_blocks_read_back_and_damaged_ones_never_panic(
            contents in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..5),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let batches = batches_of(&contents);
            let mut bytes = super::encode(&batches, &VTABLE).unwrap();
            free(batches, &VTABLE);
            prop_assert_eq!(contents_of(super::decode(&bytes, &VTABLE).unwrap()), contents.clone());
            let streamed = decode_from(bytes.as_slice(), bytes.len() as u64, &VTABLE, read_error);
            prop_assert_eq!(contents_of(streamed.unwrap()), contents);
            if !bytes.is_empty() {
                for (at, byte) in edits {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                // Damaged: both readers agree, and neither panics.
                let whole = super::decode(&bytes, &VTABLE).map(contents_of);
                let streamed = decode_from(bytes.as_slice(), bytes.len() as u64, &VTABLE, read_error)
                    .map(contents_of);
                prop_assert_eq!(whole.ok(), streamed.ok());
            }
        }
    }
}
