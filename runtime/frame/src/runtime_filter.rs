//! A broadcast join's runtime filter: the rows of a partition whose key meets none of the
//! broadcast side's keys, found before any other column is copied, as Spark's bloom-filter
//! joins and Trino's dynamic filters find them.
//!
//! The side's keys (integers or dates without nulls) are kept as a bitmap over the range they
//! span ([`KeyBits`]) where that range is at most [`BITS_PER_KEY`] times the side's rows: a
//! tenth of TPC-H's orders, or a quarter's, spans 6 million keys in 750 KiB, a fifth of its
//! customers 150,000 in 19 KiB. A row is then one load and a shift, whatever the partition's
//! order: lineitem in key order and orders in no order of `o_custkey` alike. An exact test,
//! unlike a bloom filter, since the range is known. A side too sparse for a bitmap tests only
//! partitions whose keys are in order, by walking them beside the side's sorted keys.

use crate::mask;
use crate::merge_join::{
    BroadcastSide, KeyValues, SortedKeys, chunks, gallop, in_order, key_values, keys,
};
use polars_core::prelude::Column;
use tessera_plan::frame::JoinOn;

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
    wide: bool,
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
    fn and_into<T: Copy + Into<i64>>(&self, large: &[&[T]], words: &mut [u64]) {
        and_tested(large, words, |key| self.has(key.into()));
    }
}

/// Clears the bit in `words` (bit `i % 64` of word `i / 64` for row `i`) of each row whose
/// `key`, a partition's column that joins with `side` on `on`, meets none of the side's keys:
/// the rows an inner join would drop. Where the side's keys fit a bitmap, in any order of the
/// partition's keys; else only where they are in order. `false`, with nothing cleared, where
/// the keys are not integers or dates of the side's type without nulls, or the join is not an
/// inner join on one key.
pub fn and_present(
    side: &BroadcastSide,
    on: &JoinOn,
    broadcast_right: bool,
    key: &Column,
    words: &mut [u64],
) -> bool {
    let Some((_, small_key)) = keys(on, broadcast_right) else {
        return false;
    };
    let Some(values) = key_values(key) else {
        return false;
    };
    if let Some(bits) = side.key_bits(small_key) {
        match values {
            KeyValues::I64(values) if bits.wide => bits.and_into(&chunks(&values), words),
            KeyValues::I32(values) if !bits.wide => bits.and_into(&chunks(&values), words),
            _ => return false,
        }
        return true;
    }
    match (values, side.sorted_keys(small_key)) {
        (KeyValues::I64(values), Some(SortedKeys::I64(keys))) => {
            and_present_in_order(&chunks(&values), &keys.keys, words)
        }
        (KeyValues::I32(values), Some(SortedKeys::I32(keys))) => {
            and_present_in_order(&chunks(&values), &keys.keys, words)
        }
        _ => false,
    }
}

/// The partition's key column of a broadcast join `on`, whose rows [`and_present`] can test.
pub fn partition_key(on: &JoinOn, broadcast_right: bool) -> Option<&str> {
    keys(on, broadcast_right).map(|(large, _)| large)
}

/// [`and_present`]'s test against keys too sparse for a bitmap, `keys` in ascending order:
/// `false`, with nothing cleared, when `large` is out of order.
fn and_present_in_order<T: Ord + Copy>(large: &[&[T]], keys: &[T], words: &mut [u64]) -> bool {
    if !in_order(large) {
        return false;
    }
    let mut at = 0;
    and_tested(large, words, |key| {
        at = gallop(keys, at, key);
        keys.get(at) == Some(&key)
    });
    true
}

/// Clears the bit in `words` of each row of `large` (a column's chunks) that `test`, called
/// on the rows in order, fails, and the bits past its rows. Whole words of 64 rows go through
/// the mask's kernel, the rows of a chunk before its first whole word and after its last one
/// row by row.
fn and_tested<T: Copy>(large: &[&[T]], words: &mut [u64], mut test: impl FnMut(T) -> bool) {
    let mut rows = RowBits::default();
    for chunk in large {
        let (lead, rest) = chunk.split_at(((64 - rows.row % 64) % 64).min(chunk.len()));
        let (whole, tail) = rest.split_at(rest.len() / 64 * 64);
        for &key in lead {
            rows.push(test(key), words);
        }
        let first = rows.row / 64;
        mask::and_words(
            whole,
            &mut words[first..first + whole.len() / 64],
            &mut test,
        );
        rows.row += whole.len();
        for &key in tail {
            rows.push(test(key), words);
        }
    }
    if rows.row % 64 != 0 {
        words[rows.row / 64] &= rows.found;
    }
    for word in words.iter_mut().skip(rows.row.div_ceil(64)) {
        *word = 0;
    }
}

/// Outcomes tested row by row, anded into `words` a whole word at a time.
#[derive(Default)]
struct RowBits {
    /// The rows tested so far.
    row: usize,
    /// The outcomes of the rows of the word `row` is in.
    found: u64,
}

impl RowBits {
    fn push(&mut self, kept: bool, words: &mut [u64]) {
        self.found |= u64::from(kept) << (self.row % 64);
        self.row += 1;
        if self.row % 64 == 0 {
            words[self.row / 64 - 1] &= self.found;
            self.found = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge_join::broadcast_join;
    use crate::merge_join::tests::{draws, sorted_rows};
    use polars_core::df;
    use polars_core::prelude::DataFrame;
    use tessera_plan::frame::JoinKind;

    fn inner_on(left: &str, right: &str) -> JoinOn {
        JoinOn {
            left_on: vec![left.into()],
            right_on: vec![right.into()],
            how: JoinKind::Inner,
        }
    }

    /// The rows of the first `rows` whose bit is set.
    fn kept(words: &[u64], rows: u32) -> Vec<u32> {
        (0..rows)
            .filter(|&row| words[row as usize / 64] >> (row % 64) & 1 == 1)
            .collect()
    }

    #[test]
    fn the_side_s_keys_drop_the_rows_an_inner_join_would_drop() {
        let side = BroadcastSide::new(df!("k" => [9i64, 4, 2, 4], "v" => [1i64, 2, 3, 4]).unwrap());
        let on = inner_on("a", "k");
        // A partition of two chunks.
        let mut partition = df!("a" => [1i64, 2, 2, 3, 4]).unwrap();
        partition
            .vstack_mut(&df!("a" => [4i64, 5, 9, 10]).unwrap())
            .unwrap();
        // The test of column `a` of `frame`, the partition's key of an inner join.
        let test = |frame: &DataFrame, words: &mut [u64]| {
            and_present(&side, &on, true, frame.column("a").unwrap(), words)
        };
        let mut words = vec![u64::MAX];
        assert!(test(&partition, &mut words));
        assert_eq!(kept(&words, 64), [1, 2, 4, 5, 7]);
        // Rows past a word's first: the bits of rows 64 and up are in the second word, and
        // the bits past the rows are cleared.
        let long = df!("a" => (0..130i64).collect::<Vec<_>>()).unwrap();
        let mut words = vec![u64::MAX; 3];
        assert!(test(&long, &mut words));
        assert_eq!(words, [1 << 2 | 1 << 4 | 1 << 9, 0, 0]);
        // Out of order, too: the bitmap does not need the partition's order.
        let mut words = vec![u64::MAX];
        let unordered = df!("a" => [4i64, 1, 9, 3, 2]).unwrap();
        assert!(test(&unordered, &mut words));
        assert_eq!(kept(&words, 64), [0, 2, 4]);
        // A bit the filter cleared stays clear.
        let mut words = vec![!1u64];
        assert!(test(&unordered, &mut words));
        assert_eq!(kept(&words, 64), [2, 4]);
        // Another key type, or not an inner join: nothing is cleared.
        let mut words = vec![u64::MAX];
        let narrow = df!("a" => [1i32, 2]).unwrap();
        assert!(!test(&narrow, &mut words));
        let left = JoinOn {
            how: JoinKind::Left,
            ..on.clone()
        };
        let key = partition.column("a").unwrap();
        assert!(!and_present(&side, &left, true, key, &mut words));
        assert_eq!(words, [u64::MAX]);
    }

    #[test]
    fn a_side_too_sparse_for_a_bitmap_tests_only_partitions_in_order() {
        // Three keys over a range past any side's bitmap.
        let far = 1i64 << 40;
        let side = BroadcastSide::new(df!("k" => [far, 7, -far]).unwrap());
        assert!(side.key_bits("k").is_none());
        let on = inner_on("a", "k");
        let test = |keys: Vec<i64>, words: &mut [u64]| {
            let frame = df!("a" => keys).unwrap();
            and_present(&side, &on, true, frame.column("a").unwrap(), words)
        };
        let mut words = vec![u64::MAX];
        assert!(test(vec![-far, 0, 7, 8, far], &mut words));
        assert_eq!(kept(&words, 64), [0, 2, 4]);
        let mut words = vec![u64::MAX];
        assert!(!test(vec![far, 7], &mut words));
        assert_eq!(words, [u64::MAX]);
    }

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

    #[test]
    fn a_partition_filtered_with_the_side_s_keys_joins_to_the_same_rows() {
        use crate::mask::RowTest;
        use crate::steps::{run_steps, run_steps_testing};
        use tessera_plan::frame::{FrameStep, col, lit};
        let mut next = draws(0x9e37_79b9_7f4a_7c15);
        let on = inner_on("a", "k");
        for round in 0..90 {
            let spread = [20, 400, 5000][round % 3];
            let mut keys: Vec<i64> = (0..next(2000)).map(|_| next(spread)).collect();
            // In order, as files written in key order are read; or not.
            if round % 6 < 3 {
                keys.sort_unstable();
            }
            let days: Vec<i64> = keys.iter().map(|_| next(10)).collect();
            let flags: Vec<&str> = keys.iter().map(|_| ["x", "y"][next(2) as usize]).collect();
            let partition = df!("a" => keys, "d" => days, "s" => flags).unwrap();
            // A side of spread-out keys at times, too sparse for a bitmap.
            let sparse = if round % 9 == 0 { 1 << 20 } else { 1 };
            let side_keys: Vec<i64> = (0..next(300)).map(|_| next(spread) * sparse).collect();
            let values: Vec<i64> = (0..side_keys.len() as i64).collect();
            let side = BroadcastSide::new(df!("k" => side_keys, "v" => values).unwrap());
            // A filter on strings is polars' to evaluate: the side's keys are then the only
            // test the mask has.
            let filter = match round % 2 {
                0 => col("d").gt(lit(next(10))),
                _ => col("s").eq(lit("y")),
            };
            let steps = vec![FrameStep::Filter(filter), FrameStep::Select(vec![col("a")])];
            let present =
                |key: &Column, words: &mut [u64]| and_present(&side, &on, true, key, words);
            let test = RowTest {
                column: "a",
                and_into: &present,
            };
            let tested = run_steps_testing(partition.clone(), &steps, Some(&test)).unwrap();
            let plain = run_steps(partition, &steps).unwrap();
            assert!(tested.height() <= plain.height());
            let ours = broadcast_join(tested, &side, &on, true).unwrap();
            let theirs = broadcast_join(plain, &side, &on, true).unwrap();
            // A partition out of order is hash-joined, in an order of polars' choosing.
            let (ours, theirs) = (sorted_rows(ours), sorted_rows(theirs));
            assert!(
                ours.equals_missing(&theirs),
                "round {round}: {ours}\n{theirs}"
            );
        }
    }
}
