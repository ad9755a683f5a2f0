//! The bytes of one shuffle map task's output: a table of bucket offsets, then every bucket
//! back to back. Cell code writes it in one piece; the executor keeps it as it is (in memory,
//! or written to a file unchanged) and hands a reducer the slice of its bucket, so no bucket is
//! copied between the writer and the wire.
//!
//! Layout, little-endian: `n` (u64), then `n + 1` offsets (u64) into the payload, then the
//! payload. Bucket `r` is `payload[offsets[r]..offsets[r + 1]]`.

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
    /// Checks what [`frame`] wrote.
    pub fn parse(bytes: Vec<u8>) -> Result<MapOutput, String> {
        let word = |i: usize| -> Option<u64> {
            let b = bytes.get(8 * i..8 * i + 8)?;
            Some(u64::from_le_bytes(b.try_into().ok()?))
        };
        let malformed = || "a shuffle map output is malformed".to_string();
        let n = word(0).ok_or_else(malformed)? as usize;
        let offsets: Vec<u64> = (1..n.saturating_add(2))
            .map(word)
            .collect::<Option<_>>()
            .ok_or_else(malformed)?;
        let payload = 8 * (n + 2);
        let sorted = offsets.windows(2).all(|w| w[0] <= w[1]);
        if !sorted || offsets[0] != 0 || payload as u64 + offsets[n] != bytes.len() as u64 {
            return Err(malformed());
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
        assert!(MapOutput::parse(u64::MAX.to_le_bytes().to_vec()).is_err());
    }
}
