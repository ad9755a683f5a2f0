//! The bytes of one shuffle map task's output: a table of bucket offsets, then every bucket
//! back to back. Cell code writes it in one piece; the executor keeps it as it is (in memory,
//! or written to a file unchanged) and hands a reducer the slice of its bucket, so no bucket is
//! copied between the writer and the wire.
//!
//! Layout, little-endian: `n` (u64), then `n + 1` offsets (u64) into the payload, then the
//! payload. Bucket `r` is `payload[offsets[r]..offsets[r + 1]]`.

use crate::decode::DecodeError;

/// Frames `buckets` as one map output.
pub fn frame(buckets: &[Vec<u8>]) -> Vec<u8> {
    let payload: usize = buckets.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(8 * (buckets.len() + 2) + payload);
    out.extend_from_slice(&(buckets.len() as u64).to_le_bytes());
    let mut offset = 0u64;
    out.extend_from_slice(&offset.to_le_bytes());
    for bucket in buckets {
        offset += bucket.len() as u64;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for bucket in buckets {
        out.extend_from_slice(bucket);
    }
    out
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

    proptest! {
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
