//! A broadcast inner join on one integer key, merged instead of hashed when the partition's
//! keys are already in order.
//!
//! polars hashes the broadcast side again in every task's join and probes every row of the
//! partition: over TPC-H's lineitem, six tasks each built a table of the same 147,000 orders
//! (a quarter of the executor's time in Q3). Files written in key order (lineitem by
//! `l_orderkey`, a log by time, any table by its id) are read into partitions whose key column
//! is in order. The executor keeps one decoded broadcast side for all its tasks
//! ([`BroadcastSide`]), so it sorts that side's keys once, and each task walks its partition's
//! keys beside the stretch of them its keys span, then gathers only the rows that meet. The
//! result is the rows and columns polars' join gives, in the partition's order.
//!
//! Anything else — another kind of join, several keys, keys that are not integers or dates,
//! nulls, a partition not in key order — is polars' own hash join, as before.

use crate::error::FrameError;
use crate::join;
use crate::key_bits::KeyBits;
use crate::key_values::{KeyValues, chunks, key_values};
use polars_core::prelude::{DataFrame, IdxCa, IdxSize, SchemaRef};
use std::sync::OnceLock;
use tessera_plan::frame::{JoinKind, JoinOn};

/// The small side of a broadcast join as an executor keeps it for its tasks: the rows, and —
/// made by the first task that needs them — its keys in order, its keys as a bitmap and how to
/// merge with it.
pub struct BroadcastSide {
    frame: DataFrame,
    /// The key column the keys were sorted by, and the keys.
    sorted: OnceLock<Option<(String, SortedKeys)>>,
    /// The key column the bitmap was made of, and the bitmap (the runtime filter's).
    bits: OnceLock<Option<(String, KeyBits)>>,
    merge: OnceLock<Option<Merge>>,
}

impl BroadcastSide {
    /// The side `frame` holds (one chunk a column, as the executor decodes it).
    pub fn new(frame: DataFrame) -> BroadcastSide {
        BroadcastSide {
            frame,
            sorted: OnceLock::new(),
            bits: OnceLock::new(),
            merge: OnceLock::new(),
        }
    }

    /// The side's values of `key` in order, sorted by the first task that asks; `None` where
    /// they are not integers or dates without nulls, or were sorted by another key.
    pub(crate) fn sorted_keys(&self, key: &str) -> Option<&SortedKeys> {
        let (sorted_by, keys) = self
            .sorted
            .get_or_init(|| {
                let keys = match key_values(self.frame.column(key).ok()?)? {
                    KeyValues::I64(values) => SortedKeys::I64(Sorted::of(chunks(&values).concat())),
                    KeyValues::I32(values) => SortedKeys::I32(Sorted::of(chunks(&values).concat())),
                };
                Some((key.to_string(), keys))
            })
            .as_ref()?;
        (sorted_by == key).then_some(keys)
    }

    /// The side's values of `key` as a bitmap, made by the first task that asks; `None` where
    /// they are not integers or dates without nulls, span too wide a range, or the bitmap was
    /// made of another key.
    pub(crate) fn key_bits(&self, key: &str) -> Option<&KeyBits> {
        let (made_of, bits) = self
            .bits
            .get_or_init(|| {
                let bits = KeyBits::of(&key_values(self.frame.column(key).ok()?)?)?;
                Some((key.to_string(), bits))
            })
            .as_ref()?;
        (made_of == key).then_some(bits)
    }
}

/// What a join needs to merge partitions with the side, for the columns and the partition
/// schema the first task had.
struct Merge {
    large_key: String,
    small_key: String,
    /// The columns of the join as polars plans them, which a merged result must have.
    schema: SchemaRef,
}

/// A side's keys in ascending order, each with the row it came from.
pub(crate) enum SortedKeys {
    I64(Sorted<i64>),
    I32(Sorted<i32>),
}

/// Keys in ascending order and their rows in the side.
#[derive(Debug, PartialEq)]
pub(crate) struct Sorted<T> {
    pub(crate) keys: Vec<T>,
    rows: Vec<IdxSize>,
}

impl<T: Ord + Copy> Sorted<T> {
    /// `values` sorted, rows of equal keys in their order.
    fn of(values: Vec<T>) -> Sorted<T> {
        let rows = 0..values.len() as IdxSize;
        if is_ascending(&values) {
            return Sorted {
                keys: values,
                rows: rows.collect(),
            };
        }
        let mut pairs: Vec<(T, IdxSize)> = values.into_iter().zip(rows).collect();
        pairs.sort_unstable();
        pairs.into_iter().collect()
    }
}

impl<T> FromIterator<(T, IdxSize)> for Sorted<T> {
    fn from_iter<I: IntoIterator<Item = (T, IdxSize)>>(pairs: I) -> Sorted<T> {
        let (keys, rows) = pairs.into_iter().unzip();
        Sorted { keys, rows }
    }
}

fn is_ascending<T: Ord>(values: &[T]) -> bool {
    values.windows(2).all(|w| w[0] <= w[1])
}

/// The rows of the partition and of the side that meet: pairs, as two lists of row numbers.
#[derive(Debug, Default, PartialEq)]
struct Matches {
    large: Vec<IdxSize>,
    small: Vec<IdxSize>,
}

/// The first position from `from` on whose value is at least `target`, in ascending `values`:
/// galloping, since most of a partition's keys meet none of the side's (a side of a tenth of
/// the orders leaves nine lines in ten unmatched), nor most of the side's the partition's.
pub(crate) fn gallop<T: Ord + Copy>(values: &[T], from: usize, target: T) -> usize {
    let (mut low, mut high, mut step) = (from, from, 1);
    while high < values.len() && values[high] < target {
        low = high + 1;
        high += step;
        step *= 2;
    }
    let high = high.min(values.len());
    low + values[low..high].partition_point(|&v| v < target)
}

/// Whether the chunks of a column are in ascending order, within and across them.
pub(crate) fn in_order<T: Ord + Copy>(large: &[&[T]]) -> bool {
    let mut last: Option<T> = None;
    for chunk in large {
        let in_order_after_last = match (last, chunk.first()) {
            (Some(last), Some(&first)) => last <= first,
            _ => true,
        };
        if !in_order_after_last || !is_ascending(chunk) {
            return false;
        }
        last = chunk.last().copied().or(last);
    }
    true
}

/// Every pair of a row of `large` (its chunks, which must be in ascending order within and
/// across them) and a row of `small` with equal keys, in `large`'s order; `None` when `large`
/// is out of order.
fn merge<T: Ord + Copy>(large: &[&[T]], small: &Sorted<T>) -> Option<Matches> {
    if !in_order(large) {
        return None;
    }
    let mut matches = Matches::default();
    let mut offset = 0;
    for chunk in large {
        merge_chunk(chunk, offset as IdxSize, small, &mut matches);
        offset += chunk.len();
    }
    Some(matches)
}

/// The pairs of one ascending chunk of the partition, whose first row is row `offset`.
fn merge_chunk<T: Ord + Copy>(
    large: &[T],
    offset: IdxSize,
    small: &Sorted<T>,
    matches: &mut Matches,
) {
    let keys = &small.keys;
    let (mut i, mut j) = (0, 0);
    while i < large.len() && j < keys.len() {
        let (key, side_key) = (large[i], keys[j]);
        if key < side_key {
            i = gallop(large, i, side_key);
        } else if key > side_key {
            j = gallop(keys, j, key);
        } else {
            let end = j + keys[j..].partition_point(|&k| k == key);
            while i < large.len() && large[i] == key {
                for &side_row in &small.rows[j..end] {
                    matches.large.push(offset + i as IdxSize);
                    matches.small.push(side_row);
                }
                i += 1;
            }
            j = end;
        }
    }
}

impl Merge {
    /// The merge for joining partitions like `large` with `small` on one key each, if both
    /// keys are integer or date columns of one type without nulls.
    fn of(
        large: &DataFrame,
        small: &DataFrame,
        on: &JoinOn,
        broadcast_right: bool,
    ) -> Option<Merge> {
        let (large_key, small_key) = keys(on, broadcast_right)?;
        let side = small.column(small_key).ok()?;
        if large.column(large_key).ok()?.dtype() != side.dtype() {
            return None;
        }
        let (left, right) = if broadcast_right {
            (large.clear(), small.clear())
        } else {
            (small.clear(), large.clear())
        };
        let schema = join::polars_schema(left, right, &on.left_on, &on.right_on, on.how).ok()?;
        Some(Merge {
            large_key: large_key.to_string(),
            small_key: small_key.to_string(),
            schema,
        })
    }

    /// The rows of `large` and of the side (whose keys in order are `keys`) that meet, if
    /// `large`'s key is in order.
    fn matches(&self, large: &DataFrame, keys: &SortedKeys) -> Option<Matches> {
        let column = large.column(&self.large_key).ok()?;
        if IdxSize::try_from(large.height()).is_err() {
            return None;
        }
        match (key_values(column)?, keys) {
            (KeyValues::I64(values), SortedKeys::I64(keys)) => merge(&chunks(&values), keys),
            (KeyValues::I32(values), SortedKeys::I32(keys)) => merge(&chunks(&values), keys),
            _ => None,
        }
    }
}

/// Whether a broadcast join `on` these keys is merged where a partition's key is in order:
/// an inner join on one key each side (the key's type is known only to the executor).
pub fn mergeable(on: &JoinOn) -> bool {
    on.how == JoinKind::Inner && on.left_on.len() == 1 && on.right_on.len() == 1
}

/// The partition's key and the side's, for a join this module can merge.
pub(crate) fn keys(on: &JoinOn, broadcast_right: bool) -> Option<(&str, &str)> {
    if !mergeable(on) {
        return None;
    }
    let (left, right) = (on.left_on[0].as_str(), on.right_on[0].as_str());
    Some(if broadcast_right {
        (left, right)
    } else {
        (right, left)
    })
}

/// `large` (a partition) joined with the broadcast `side` on `on`: merged when the partition's
/// key is in order, else polars' join.
pub fn broadcast_join(
    large: DataFrame,
    side: &BroadcastSide,
    on: &JoinOn,
    broadcast_right: bool,
) -> Result<DataFrame, FrameError> {
    if let Some(joined) = merged(&large, side, on, broadcast_right) {
        return Ok(joined);
    }
    let small = side.frame.clone();
    let (left, right) = if broadcast_right {
        (large, small)
    } else {
        (small, large)
    };
    join::join(left, right, &on.left_on, &on.right_on, on.how)
}

/// The merged join, or `None` where polars' must do.
fn merged(
    large: &DataFrame,
    side: &BroadcastSide,
    on: &JoinOn,
    broadcast_right: bool,
) -> Option<DataFrame> {
    let merge = side
        .merge
        .get_or_init(|| Merge::of(large, &side.frame, on, broadcast_right))
        .as_ref()?;
    if keys(on, broadcast_right)? != (merge.large_key.as_str(), merge.small_key.as_str()) {
        return None;
    }
    let matches = merge.matches(large, side.sorted_keys(&merge.small_key)?)?;
    let large_rows = IdxCa::from_vec("".into(), matches.large);
    let small_rows = IdxCa::from_vec("".into(), matches.small);
    // SAFETY: every row number came from a row of its frame.
    let (large, small) = unsafe {
        (
            large.take_unchecked_impl(&large_rows, false),
            side.frame.take_unchecked_impl(&small_rows, false),
        )
    };
    let (left, right, right_key) = if broadcast_right {
        (large, small, &merge.small_key)
    } else {
        (small, large, &merge.large_key)
    };
    let right = right.drop(right_key).ok()?;
    let joined = polars_ops::frame::join::_finish_join(left, right, None).ok()?;
    (joined.schema() == &merge.schema).then_some(joined)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use polars_core::df;
    use polars_core::prelude::{DataType, SortMultipleOptions};

    /// `frame`'s rows sorted by every column: a join's rows, whatever order it gave them in.
    pub(crate) fn sorted_rows(frame: DataFrame) -> DataFrame {
        let by: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        frame.sort(by, SortMultipleOptions::default()).unwrap()
    }

    #[test]
    fn a_merge_pairs_every_equal_key_in_the_partitions_order() {
        let side = Sorted::of(vec![7i64, 3, 5, 3, 9]);
        assert_eq!(side.keys, [3, 3, 5, 7, 9]);
        assert_eq!(side.rows, [1, 3, 2, 0, 4]);
        let matches = merge(&[&[1i64, 3, 3, 4, 7, 7, 10]], &side).unwrap();
        // Rows 1 and 2 (key 3) each meet the side's rows 1 and 3; rows 4 and 5 (key 7) row 0.
        assert_eq!(matches.large, [1, 1, 2, 2, 4, 5]);
        assert_eq!(matches.small, [1, 3, 1, 3, 0, 0]);
        assert_eq!(merge(&[], &side), Some(Matches::default()));
        assert_eq!(merge(&[&[100i64, 200]], &side), Some(Matches::default()));
        // A key repeated across chunks meets the side in each of them.
        let chunked = merge(&[&[1i64, 3], &[3, 4, 7], &[], &[7, 10]], &side).unwrap();
        assert_eq!(chunked, matches);
        // A partition out of order, within a chunk or across two, is left to the hash join.
        assert_eq!(merge(&[&[3i64, 1]], &side), None);
        assert_eq!(merge(&[&[20i64, 30], &[1]], &side), None);
    }

    /// Numbers below the argument, drawn from `seed` (a xorshift: the same every run).
    pub(crate) fn draws(mut seed: u64) -> impl FnMut(u64) -> i64 {
        move |below| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below) as i64
        }
    }

    #[test]
    fn a_merge_finds_what_comparing_every_pair_finds() {
        // Runs of equal keys, gaps on either side and either side longer, drawn from a fixed
        // seed.
        let mut next = draws(0x2545_f491_4f6c_dd1d);
        for round in 0..200 {
            let spread = [3, 40, 1000][round % 3];
            let mut large: Vec<i64> = (0..next(300)).map(|_| next(spread)).collect();
            large.sort_unstable();
            let small: Vec<i64> = (0..next(100)).map(|_| next(spread)).collect();
            let cut = large.len() / 3;
            let matches =
                merge(&[&large[..cut], &large[cut..]], &Sorted::of(small.clone())).unwrap();
            let mut expected = Matches::default();
            for (i, a) in large.iter().enumerate() {
                let mut rows: Vec<IdxSize> = (0..small.len() as IdxSize)
                    .filter(|&j| small[j as usize] == *a)
                    .collect();
                rows.sort_unstable();
                for j in rows {
                    expected.large.push(i as IdxSize);
                    expected.small.push(j);
                }
            }
            assert_eq!(matches, expected, "large {large:?} small {small:?}");
        }
        assert_eq!(gallop(&[1, 2, 2, 5, 9], 0, 2), 1);
        assert_eq!(gallop(&[1, 2, 2, 5, 9], 2, 6), 4);
        assert_eq!(gallop(&[1, 2, 2, 5, 9], 0, 10), 5);
    }

    #[test]
    fn a_merged_join_gives_polars_rows_and_columns_and_leaves_other_joins_to_it() {
        let orders = df!(
            "o_orderkey" => [5i64, 1, 3, 8],
            "amount" => [50.0, 10.0, 30.0, 80.0],
            "name" => ["e", "a", "c", "h"]
        )
        .unwrap();
        let lines = df!(
            "l_orderkey" => [1i64, 1, 2, 3, 5, 5, 5, 9],
            "amount" => [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
        )
        .unwrap();
        for broadcast_right in [false, true] {
            let on = if broadcast_right {
                JoinOn {
                    left_on: vec!["l_orderkey".into()],
                    right_on: vec!["o_orderkey".into()],
                    how: JoinKind::Inner,
                }
            } else {
                JoinOn {
                    left_on: vec!["o_orderkey".into()],
                    right_on: vec!["l_orderkey".into()],
                    how: JoinKind::Inner,
                }
            };
            let side = BroadcastSide::new(orders.clone());
            let merged = merged(&lines, &side, &on, broadcast_right).expect("merged");
            let (left, right) = if broadcast_right {
                (lines.clone(), orders.clone())
            } else {
                (orders.clone(), lines.clone())
            };
            let polars = join::join(left, right, &on.left_on, &on.right_on, on.how).unwrap();
            assert_eq!(
                merged.schema(),
                polars.schema(),
                "names, the clash's suffix and types"
            );
            assert_eq!(merged.height(), 6);
            assert!(sorted_rows(merged.clone()).equals(&sorted_rows(polars)));
            // A partition out of order is joined by polars, with the same answer.
            let shuffled = lines.reverse();
            assert!(super::merged(&shuffled, &side, &on, broadcast_right).is_none());
            let joined = broadcast_join(shuffled, &side, &on, broadcast_right).unwrap();
            assert!(sorted_rows(joined).equals(&sorted_rows(merged)));
            // A left join is polars' own.
            let left_join = JoinOn {
                how: JoinKind::Left,
                ..on.clone()
            };
            assert!(super::merged(&lines, &side, &left_join, broadcast_right).is_none());
        }
    }

    fn with_dates(mut frame: DataFrame, name: &str) -> DataFrame {
        let dates = frame.column(name).unwrap().cast(&DataType::Date).unwrap();
        frame.with_column(dates).unwrap();
        frame
    }

    #[test]
    fn dates_merge_and_nulls_or_other_types_are_left_to_polars() {
        let side = with_dates(
            df!("day" => [3i32, 1, 2], "what" => ["c", "a", "b"]).unwrap(),
            "day",
        );
        let days = with_dates(
            df!("d" => [1i32, 2, 2, 4], "n" => [1i64, 2, 3, 4]).unwrap(),
            "d",
        );
        let on = JoinOn {
            left_on: vec!["d".into()],
            right_on: vec!["day".into()],
            how: JoinKind::Inner,
        };
        let joined =
            merged(&days, &BroadcastSide::new(side.clone()), &on, true).expect("dates merge");
        assert_eq!(joined.height(), 3);
        // Nulls in the side's key, or keys of strings, are polars' to join.
        let nullable = df!("k" => [Some(1i64), None], "v" => [1i64, 2]).unwrap();
        let partition = df!("k" => [1i64, 2]).unwrap();
        let on = JoinOn {
            left_on: vec!["k".into()],
            right_on: vec!["k".into()],
            how: JoinKind::Inner,
        };
        assert!(merged(&partition, &BroadcastSide::new(nullable), &on, true).is_none());
        let strings = df!("k" => ["a", "b"]).unwrap();
        assert!(merged(&strings, &BroadcastSide::new(strings.clone()), &on, true).is_none());
    }
}
