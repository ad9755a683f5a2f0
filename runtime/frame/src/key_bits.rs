//! A broadcast side's keys as a bitmap over the range they span, and the test of a
//! partition's keys against it: the runtime filter's exact test of a side whose keys are dense
//! enough. A file of its own, so that the broadcast side (`BroadcastSide`), which makes the
//! bitmap once for all of an executor's tasks, holds it without reaching up into the runtime
//! filter that reads it.

use crate::key_values::{KeyValues, chunks};
use crate::row_bits::and_tested;

/// The most bits a side's bitmap takes per row of the side (a cache line's worth): a
/// bitmap is then at most eight times the side's key column, and the orders of one quarter in
/// TPC-H (the side of Q10's lineitem join, one key in 105 of their range) fit it.
pub const BITS_PER_KEY: u64 = 512;

/// The bits a bitmap may take whatever the side's rows (8 KiB): a small side over a small
/// range, such as days or a dimension's ids, gets one.
const ANY_SIDE_BITS: u64 = 1 << 16;

/// The keys of a broadcast side as a bitmap: bit `k - low` is set for each key `k`.
#[derive(Debug)]
pub(crate) struct KeyBits {
    /// Whether the keys are 64-bit (else 32-bit integers or dates): a partition's key is
    /// tested only against a side's of its own width, as polars joins only equal types.
    pub(crate) wide: bool,
    low: i64,
    /// The bits the range spans.
    bits: u64,
    /// The range's bits and one more, never set, that keys outside the range read.
    words: Vec<u64>,
}

impl KeyBits {
    /// The bitmap of the side's key column `values`, or `None` where its range is too wide for
    /// its rows.
    pub(crate) fn of(values: &KeyValues) -> Option<KeyBits> {
        match values {
            KeyValues::I64(values) => KeyBits::of_chunks(&chunks(values), true),
            KeyValues::I32(values) => KeyBits::of_chunks(&chunks(values), false),
        }
    }

    fn of_chunks<T: Copy + Into<i64>>(chunks: &[&[T]], wide: bool) -> Option<KeyBits> {
        let keys = || {
            chunks
                .iter()
                .flat_map(|chunk| chunk.iter().map(|&k| k.into()))
        };
        let rows = chunks.iter().map(|chunk| chunk.len() as u64).sum::<u64>();
        let (low, high) = keys().fold((i64::MAX, i64::MIN), |(low, high), key: i64| {
            (low.min(key), high.max(key))
        });
        let span = if rows == 0 {
            0
        } else {
            u64::try_from(i128::from(high) - i128::from(low) + 1).ok()?
        };
        if span > ANY_SIDE_BITS.max(rows.saturating_mul(BITS_PER_KEY)) {
            return None;
        }
        let mut words = vec![0u64; (span + 1).div_ceil(64) as usize];
        for key in keys() {
            let at = key.wrapping_sub(low) as u64;
            words[(at / 64) as usize] |= 1 << (at % 64);
        }
        Some(KeyBits {
            wide,
            low,
            bits: span,
            words,
        })
    }

    /// Whether `key` is one of the side's.
    #[inline(always)]
    fn has(&self, key: i64) -> bool {
        // A key outside the range reads bit `bits`, which is never set: no branch to
        // mispredict.
        let at = (key.wrapping_sub(self.low) as u64).min(self.bits);
        self.words[(at / 64) as usize] >> (at % 64) & 1 == 1
    }

    /// Clears the bit in `words` of each row of `large` (a column's chunks, in any order)
    /// whose key is not the side's, and the bits past its rows.
    pub(crate) fn and_into<T: Copy + Into<i64>>(&self, large: &[&[T]], words: &mut [u64]) {
        and_tested(large, words, |key| self.has(key.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_values::key_values;
    use crate::merge_join::tests::draws;
    use crate::row_bits::tests::kept;
    use polars_core::df;

    #[test]
    fn a_bitmap_spans_its_side_s_range_and_no_more_than_it_may() {
        let bits = |values: Vec<i64>| {
            let frame = df!("k" => values).unwrap();
            KeyBits::of(&key_values(frame.column("k").unwrap()).unwrap())
        };
        // Negative keys, and the widest range a small side may have.
        let negative = bits(vec![-5, -1, -3]).unwrap();
        assert_eq!((negative.low, negative.bits), (-5, 5));
        assert!(negative.has(-5) && negative.has(-1) && !negative.has(-2));
        assert!(!negative.has(0) && !negative.has(-6) && !negative.has(i64::MIN));
        assert!(bits(vec![0, ANY_SIDE_BITS as i64 - 1]).is_some());
        assert!(bits(vec![0, ANY_SIDE_BITS as i64]).is_none());
        // A range of BITS_PER_KEY bits a key for a larger side; the whole of i64's is refused.
        let many: Vec<i64> = (0..2000).map(|k| k * BITS_PER_KEY as i64).collect();
        assert!(bits(many.clone()).is_some());
        assert!(bits([many, vec![2000 * BITS_PER_KEY as i64]].concat()).is_some());
        let sparse: Vec<i64> = (0..2000).map(|k| k * (BITS_PER_KEY as i64 + 1)).collect();
        assert!(bits(sparse).is_none());
        assert!(bits(vec![i64::MIN, i64::MAX]).is_none());
        // An empty side has every row dropped.
        let empty = bits(Vec::new()).unwrap();
        assert!(!empty.has(0) && !empty.has(1));
        let mut words = vec![u64::MAX; 2];
        empty.and_into(&[&[0i64, 1, 2][..]], &mut words);
        assert_eq!(words, [0, 0]);
    }

    #[test]
    fn a_bitmap_tests_every_row_of_chunks_of_any_length() {
        let mut next = draws(0x51_7cc1_b727_220a);
        for round in 0..100 {
            let side: Vec<i64> = (0..1 + next(50)).map(|_| next(300) - 100).collect();
            let bits = KeyBits::of_chunks(&[&side[..]], true).unwrap();
            // Chunks that start and end inside words and across them, some empty.
            let chunks: Vec<Vec<i64>> = (0..next(6))
                .map(|_| {
                    (0..[0, 3, 64, 70, 130][next(5) as usize])
                        .map(|_| next(400) - 150)
                        .collect()
                })
                .collect();
            let slices: Vec<&[i64]> = chunks.iter().map(Vec::as_slice).collect();
            let rows: Vec<i64> = chunks.concat();
            // A word more than the rows need, whose bits must be cleared too.
            let mut words = vec![u64::MAX; rows.len() / 64 + 2];
            bits.and_into(&slices, &mut words);
            let expected: Vec<u32> = (0..rows.len() as u32)
                .filter(|&row| side.contains(&rows[row as usize]))
                .collect();
            assert_eq!(
                kept(&words, 64 * words.len() as u32),
                expected,
                "round {round}"
            );
        }
    }
}
