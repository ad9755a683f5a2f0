//! The bytes of one shuffle map task's output: a table of bucket offsets, then every bucket
//! back to back. Cell code writes it in one piece; the executor keeps it as it is (in memory,
//! or written to a file unchanged) and hands a reducer the slice of its bucket, so no bucket is
//! copied between the writer and the wire.
//!
//! Layout, little-endian: `n` (u64), then `n + 1` offsets (u64) into the payload, then the
//! payload. Bucket `r` is `payload[offsets[r]..offsets[r + 1]]`.
//!
//! A bucket is a sequence of *record frames*: a little-endian `u64` length, then that many
//! bytes, the bincode encoding of a `Vec` of records. Frames are what lets a map task write a
//! bucket in pieces (from its spill files and its memory, concatenated unchanged) and a reduce
//! task read one frame at a time from memory or a file, so that neither holds a whole bucket
//! of decoded records. Spill files of sorted runs use the same frames.

use crate::decode::DecodeError;
use std::io::Read;

/// Bytes of a record frame's length prefix.
pub const FRAME_PREFIX: usize = 8;

/// Appends a record frame holding `encoded` (the bincode of a `Vec` of records) to `out`.
pub fn push_frame(out: &mut Vec<u8>, encoded: &[u8]) {
    out.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
    out.extend_from_slice(encoded);
}

/// Appends a record frame to `out` whose contents `write` appends, in place: no copy of them
/// is made. The frame's length is filled in when `write` returns; should it fail, `out` is
/// left as it was.
pub fn push_frame_with<E>(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_PREFIX]);
    if let Err(e) = write(out) {
        out.truncate(start);
        return Err(e);
    }
    let len = (out.len() - start - FRAME_PREFIX) as u64;
    out[start..start + FRAME_PREFIX].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn frame_error(reason: String) -> DecodeError {
    DecodeError::Malformed {
        what: "a shuffle bucket",
        reason,
    }
}

/// A record frame's contents and the bytes after it.
pub type SplitFrame<'a> = (&'a [u8], &'a [u8]);

/// Splits the first record frame off `bytes`: its contents and the rest; `None` at the end.
pub fn split_frame(bytes: &[u8]) -> Result<Option<SplitFrame<'_>>, DecodeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let Some(prefix) = bytes.get(..FRAME_PREFIX) else {
        return Err(frame_error("it ends inside a frame's length".into()));
    };
    let len = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    let rest = &bytes[FRAME_PREFIX..];
    if len > rest.len() as u64 {
        return Err(frame_error(format!(
            "a frame of {len} bytes where {} remain",
            rest.len()
        )));
    }
    Ok(Some(rest.split_at(len as usize)))
}

/// Reads the record frames in the next `len` bytes of `reader`, handing each frame's contents
/// to `each` until it returns false. Holds one frame at a time; a frame that claims more bytes
/// than remain is an `InvalidData` error, read before anything is allocated for it.
pub fn read_frames(
    mut reader: impl Read,
    len: u64,
    mut each: impl FnMut(&[u8]) -> bool,
) -> std::io::Result<()> {
    let invalid = |e: DecodeError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let mut left = len;
    let mut frame = Vec::new();
    while left > 0 {
        if left < FRAME_PREFIX as u64 {
            return Err(invalid(frame_error(
                "it ends inside a frame's length".into(),
            )));
        }
        let mut prefix = [0u8; FRAME_PREFIX];
        reader.read_exact(&mut prefix)?;
        left -= FRAME_PREFIX as u64;
        let size = u64::from_le_bytes(prefix);
        if size > left {
            return Err(invalid(frame_error(format!(
                "a frame of {size} bytes where {left} remain"
            ))));
        }
        frame.clear();
        frame.resize(size as usize, 0);
        reader.read_exact(&mut frame)?;
        left -= size;
        if !each(&frame) {
            break;
        }
    }
    Ok(())
}

/// Frames `buckets` as one map output.
pub fn frame(buckets: &[Vec<u8>]) -> Vec<u8> {
    let lens: Vec<u64> = buckets.iter().map(|b| b.len() as u64).collect();
    let mut out = header(&lens);
    for bucket in buckets {
        out.extend_from_slice(bucket);
    }
    out
}

/// The table of a map output whose buckets are `bucket_lens` bytes long; the buckets follow
/// it, in order (a writer that streams its output writes this first).
pub fn header(bucket_lens: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * (bucket_lens.len() + 2));
    out.extend_from_slice(&(bucket_lens.len() as u64).to_le_bytes());
    let mut offset = 0u64;
    out.extend_from_slice(&offset.to_le_bytes());
    for len in bucket_lens {
        offset += len;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    out
}

/// Bytes of the table of a map output of `buckets` buckets.
pub fn header_len(buckets: u64) -> u64 {
    8 * (buckets + 2)
}

/// Reads the table at the start of a map output of `total` bytes kept in a file: where each
/// bucket is in it. Checked as [`MapOutput::parse`] checks, before anything is allocated for
/// the table.
pub fn read_index(
    mut reader: impl Read,
    total: u64,
) -> Result<Vec<std::ops::Range<u64>>, DecodeError> {
    let malformed = |reason: &str| DecodeError::Malformed {
        what: "a shuffle map output file",
        reason: reason.to_string(),
    };
    let mut word = || -> Result<u64, DecodeError> {
        let mut bytes = [0u8; 8];
        reader
            .read_exact(&mut bytes)
            .map_err(|e| malformed(&format!("its table cannot be read: {e}")))?;
        Ok(u64::from_le_bytes(bytes))
    };
    let n = word()?;
    let table = n
        .checked_add(2)
        .and_then(|words| words.checked_mul(8))
        .filter(|&bytes| bytes <= total)
        .ok_or_else(|| malformed("its offset table does not fit in it"))?;
    let offsets: Vec<u64> = (0..=n).map(|_| word()).collect::<Result<_, _>>()?;
    if offsets[0] != 0 || !offsets.windows(2).all(|w| w[0] <= w[1]) {
        return Err(malformed("its offsets are out of order"));
    }
    if table.checked_add(offsets[offsets.len() - 1]) != Some(total) {
        return Err(malformed("its payload is not as long as its offsets say"));
    }
    Ok(offsets
        .windows(2)
        .map(|w| table + w[0]..table + w[1])
        .collect())
}

/// Where an executor under an agent that serves its sandbox files keeps a copy of its output
/// of `map_partition` of `shuffle`, relative to its sandbox: its agent serves it from there
/// to reducers once the executor is gone.
pub fn served_path(shuffle: u64, map_partition: u32) -> String {
    format!("shuffle/shuffle-{shuffle}-map-{map_partition}.data")
}

/// Bytes at the start of a map output file that hold its bucket count and the offsets of
/// bucket `reduce`: what [`bucket_in_table`] reads.
pub fn table_prefix_len(reduce: u32) -> u64 {
    8 * (u64::from(reduce) + 3)
}

/// Where bucket `reduce` is in a map output file of which `prefix` is the first
/// [`table_prefix_len`] bytes (or all, if the file is shorter): checked as [`read_index`]
/// checks what it can see, the rest when the bucket is read.
pub fn bucket_in_table(prefix: &[u8], reduce: u32) -> Result<std::ops::Range<u64>, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed {
        what: "a shuffle map output file",
        reason,
    };
    let word = |i: u64| -> Result<u64, DecodeError> {
        let at = usize::try_from(i * 8).map_err(|_| malformed("too large".into()))?;
        prefix
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| malformed(format!("its table ends after {} bytes", prefix.len())))
    };
    let n = word(0)?;
    if u64::from(reduce) >= n {
        return Err(malformed(format!(
            "it has {n} buckets, and bucket {reduce} was asked for"
        )));
    }
    let (start, end) = (word(u64::from(reduce) + 1)?, word(u64::from(reduce) + 2)?);
    let table = n
        .checked_add(2)
        .and_then(|words| words.checked_mul(8))
        .ok_or_else(|| malformed("its bucket count is too large".into()))?;
    if start > end {
        return Err(malformed("its offsets are out of order".into()));
    }
    match (table.checked_add(start), table.checked_add(end)) {
        (Some(start), Some(end)) => Ok(start..end),
        _ => Err(malformed("its offsets are too large".into())),
    }
}

/// A framed map output, checked.
#[derive(Debug)]
pub struct MapOutput {
    bytes: Vec<u8>,
    /// Where the payload starts in `bytes`.
    payload: usize,
    offsets: Vec<u64>,
}

impl MapOutput {
    /// Checks what [`frame`] wrote: a table that fits the bytes, offsets in order, a payload
    /// that ends where the last offset says.
    pub fn parse(bytes: Vec<u8>) -> Result<MapOutput, DecodeError> {
        let word = |i: usize| -> Option<u64> {
            let b = bytes.get(8 * i..8 * i + 8)?;
            Some(u64::from_le_bytes(b.try_into().ok()?))
        };
        let malformed = |reason: &str| DecodeError::Malformed {
            what: "a shuffle map output",
            reason: reason.to_string(),
        };
        let n = word(0).ok_or_else(|| malformed("shorter than its bucket count"))?;
        // The table of n + 1 offsets must fit in the bytes: checked before reading it.
        let table_words = n
            .checked_add(2)
            .filter(|&words| words <= (bytes.len() / 8) as u64)
            .ok_or_else(|| malformed("its offset table does not fit in it"))?
            as usize;
        let offsets: Vec<u64> = (1..table_words)
            .map(word)
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("its offset table does not fit in it"))?;
        let payload = 8 * table_words;
        if offsets[0] != 0 || !offsets.windows(2).all(|w| w[0] <= w[1]) {
            return Err(malformed("its offsets are out of order"));
        }
        if payload as u64 + offsets[offsets.len() - 1] != bytes.len() as u64 {
            return Err(malformed("its payload is not as long as its offsets say"));
        }
        Ok(MapOutput {
            bytes,
            payload,
            offsets,
        })
    }

    /// How many buckets (reduce partitions) the output has.
    pub fn buckets(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Where bucket `reduce` is in [`MapOutput::bytes`].
    pub fn range(&self, reduce: usize) -> Option<std::ops::Range<usize>> {
        let (start, end) = (*self.offsets.get(reduce)?, *self.offsets.get(reduce + 1)?);
        Some(self.payload + start as usize..self.payload + end as usize)
    }

    /// The framed bytes, as written.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes of bucket payload (what the map task wrote for reducers).
    pub fn payload_len(&self) -> u64 {
        self.bytes.len() as u64 - self.payload as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::damage::{damaged, edits};
    use proptest::prelude::*;

    #[test]
    fn framed_buckets_read_back_and_damage_is_caught() {
        let buckets = vec![b"ab".to_vec(), Vec::new(), b"cde".to_vec()];
        let output = MapOutput::parse(frame(&buckets)).unwrap();
        assert_eq!(output.buckets(), 3);
        for (r, bucket) in buckets.iter().enumerate() {
            assert_eq!(&output.bytes()[output.range(r).unwrap()], &bucket[..]);
        }
        assert!(output.range(3).is_none());
        assert_eq!(output.payload_len(), 5);
        let mut cut = frame(&buckets);
        cut.pop();
        assert!(MapOutput::parse(cut).is_err());
        assert!(MapOutput::parse(vec![1, 2, 3]).is_err());
        let error = MapOutput::parse(u64::MAX.to_le_bytes().to_vec()).unwrap_err();
        assert!(error.to_string().contains("offset table"), "{error}");
    }

    /// Every bucket range of a parsed output lies within its bytes, in order.
    fn check_ranges(output: &MapOutput) -> Result<(), TestCaseError> {
        let mut end = 0;
        for r in 0..output.buckets() {
            let range = output.range(r).unwrap();
            prop_assert!(range.start >= end && range.start <= range.end);
            prop_assert!(range.end <= output.bytes().len());
            end = range.end;
        }
        prop_assert!(output.range(output.buckets()).is_none());
        Ok(())
    }

    #[test]
    fn frames_split_and_stream_back_as_written() {
        let mut bucket = Vec::new();
        push_frame(&mut bucket, b"abc");
        push_frame(&mut bucket, b"");
        push_frame(&mut bucket, b"defgh");
        let mut split = Vec::new();
        let mut rest = &bucket[..];
        while let Some((frame, after)) = split_frame(rest).unwrap() {
            split.push(frame.to_vec());
            rest = after;
        }
        assert_eq!(split, [b"abc".to_vec(), Vec::new(), b"defgh".to_vec()]);
        let mut streamed = Vec::new();
        read_frames(&bucket[..], bucket.len() as u64, |f| {
            streamed.push(f.to_vec());
            true
        })
        .unwrap();
        assert_eq!(streamed, split);
        // Stopping early reads no further; a cut bucket is an error, not a short read.
        let mut first = 0;
        read_frames(&bucket[..], bucket.len() as u64, |_| {
            first += 1;
            false
        })
        .unwrap();
        assert_eq!(first, 1);
        let cut = &bucket[..bucket.len() - 1];
        assert!(split_frame(&cut[cut.len() - 13..]).is_err());
        let error = read_frames(cut, cut.len() as u64, |_| true).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_frame_written_in_place_is_the_frame_of_its_contents() {
        let mut copied = Vec::new();
        push_frame(&mut copied, b"abc");
        push_frame(&mut copied, b"");
        let mut in_place = Vec::new();
        let write = |contents: &'static [u8]| {
            move |out: &mut Vec<u8>| {
                out.extend_from_slice(contents);
                Ok::<(), ()>(())
            }
        };
        push_frame_with(&mut in_place, write(b"abc")).unwrap();
        push_frame_with(&mut in_place, write(b"")).unwrap();
        assert_eq!(in_place, copied);
        // A write that fails leaves nothing of its frame behind.
        let failed = push_frame_with(&mut in_place, |out| {
            out.extend_from_slice(b"half");
            Err("no room")
        });
        assert_eq!(failed, Err("no room"));
        assert_eq!(in_place, copied);
    }

    #[test]
    fn an_index_read_from_a_file_finds_every_bucket_and_refuses_damage() {
        let buckets = vec![b"ab".to_vec(), Vec::new(), b"cde".to_vec()];
        let bytes = frame(&buckets);
        let ranges = read_index(&bytes[..], bytes.len() as u64).unwrap();
        assert_eq!(ranges.len(), 3);
        for (range, bucket) in ranges.iter().zip(&buckets) {
            assert_eq!(
                &bytes[range.start as usize..range.end as usize],
                &bucket[..]
            );
        }
        assert_eq!(header(&[2, 0, 3]), bytes[..header_len(3) as usize]);
        assert!(read_index(&bytes[..], bytes.len() as u64 + 1).is_err());
        assert!(read_index(&u64::MAX.to_le_bytes()[..], 1 << 40).is_err());
        let mut disordered = bytes.clone();
        disordered[16] = 9;
        assert!(read_index(&disordered[..], disordered.len() as u64).is_err());
    }

    #[test]
    fn a_bucket_is_found_from_the_start_of_its_file() {
        let framed = frame(&[b"ab".to_vec(), Vec::new(), b"cde".to_vec()]);
        let whole = MapOutput::parse(framed.clone()).unwrap();
        for reduce in 0..3u32 {
            let prefix = &framed[..(table_prefix_len(reduce) as usize).min(framed.len())];
            let range = bucket_in_table(prefix, reduce).unwrap();
            let expected = whole.range(reduce as usize).unwrap();
            assert_eq!(range.start as usize..range.end as usize, expected);
        }
        let error = bucket_in_table(&framed, 3).unwrap_err().to_string();
        assert!(error.contains("3 buckets, and bucket 3"), "{error}");
        let error = bucket_in_table(&framed[..12], 0).unwrap_err().to_string();
        assert!(error.contains("table ends after 12 bytes"), "{error}");
    }

    proptest! {
        /// A table prefix from a file read through an agent: any bytes, any bucket.
        #[test]
        fn arbitrary_table_prefixes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            reduce in any::<u32>(),
        ) {
            if let Ok(range) = bucket_in_table(&bytes, reduce) {
                prop_assert!(range.start <= range.end);
            }
        }

        #[test]
        fn arbitrary_indexes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..128),
            total in 0u64..1 << 20,
        ) {
            if let Ok(ranges) = read_index(&bytes[..], total) {
                prop_assert!(ranges.iter().all(|r| r.start <= r.end && r.end <= total));
            }
        }

        #[test]
        fn arbitrary_frames_never_panic_or_overallocate(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut rest = &bytes[..];
            while let Ok(Some((frame, after))) = split_frame(rest) {
                prop_assert!(frame.len() <= rest.len());
                rest = after;
            }
            let mut seen = 0usize;
            let _ = read_frames(&bytes[..], bytes.len() as u64, |f| {
                seen += f.len();
                true
            });
            prop_assert!(seen <= bytes.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(output) = MapOutput::parse(bytes) {
                check_ranges(&output)?;
            }
        }

        #[test]
        fn damaged_outputs_never_panic_and_ranges_stay_inside(
            buckets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..6),
            edits in edits(6),
            cut in any::<prop::sample::Index>(),
        ) {
            let framed = frame(&buckets);
            let whole = MapOutput::parse(framed.clone()).unwrap();
            prop_assert_eq!(whole.buckets(), buckets.len());
            let keep = cut.index(framed.len());
            prop_assert!(MapOutput::parse(framed[..keep].to_vec()).is_err());
            if let Ok(output) = MapOutput::parse(damaged(framed, &edits)) {
                check_ranges(&output)?;
            }
        }
    }
}
