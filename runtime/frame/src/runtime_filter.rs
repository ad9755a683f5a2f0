//! A broadcast join's runtime filter: the rows of a partition whose key meets none of the
//! broadcast side's keys, found before any other column is copied, as Spark's bloom-filter
//! joins and Trino's dynamic filters find them.
//!
//! The side's keys (integers or dates without nulls) are kept as a bitmap over the range they
//! span ([`KeyBits`](crate::key_bits::KeyBits)) where that range is at most [`BITS_PER_KEY`]
//! times the side's rows: a tenth of TPC-H's orders, or a quarter's, spans 6 million keys in
//! 750 KiB, a fifth of its customers 150,000 in 19 KiB. A row is then one load and a shift,
//! whatever the partition's order: lineitem in key order and orders in no order of
//! `o_custkey` alike. An exact test, unlike a bloom filter, since the range is known. A side
//! too sparse for a bitmap tests only partitions whose keys are in order, by walking them
//! beside the side's sorted keys.

use crate::key_values::{KeyValues, chunks, key_values};
use crate::merge_join::{BroadcastSide, SortedKeys, gallop, in_order, keys};
use crate::row_bits::and_tested;
use polars_core::prelude::Column;
use tessera_plan::frame::JoinOn;

pub use crate::key_bits::BITS_PER_KEY;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge_join::broadcast_join;
    use crate::merge_join::tests::{draws, sorted_rows};
    use crate::row_bits::tests::kept;
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
