//! A final group-by's short string keys packed into one integer key.
//!
//! Why: polars groups by several string columns through its row encoding, each row's keys
//! encoded and compared as bytes. TPC-H Q1 groups lineitem by two one-letter flags; over cached
//! lineitem (`local[2]`, medians of 15, three interleaved rounds) it took 0.103–0.109 s, and
//! 0.056–0.063 s grouped by one integer column instead.
//!
//! How: where every key of a partition's final group-by is a string column of the partition,
//! kept as it is by the steps before, and the longest value of each key leaves room for all of
//! them in eight bytes (a length byte per key, then its bytes), each row's keys are packed
//! into one `UInt64` column. The group-by groups by it alone, and the keys are unpacked from it
//! in the rows the group-by makes, one per group. Two rows get the same packed key exactly
//! when their keys are equal, null included, so the groups are polars' own.

use crate::error::FrameError;
use crate::keeps_column::keeps_column;
use polars_arrow::array::{Array, View};
use polars_core::prelude::{
    ChunkCompareEq, Column, DataFrame, DataType, IntoColumn, NamedFrom, PolarsResult, Series,
    StringChunked, UInt64Chunked,
};
use tessera_plan::frame::{BinaryOp, Expr, FrameStep, col};

/// The packed key's column (`__tessera_` names are the engine's own).
const KEY: &str = "__tessera_key";

/// Bytes in the packed key.
const KEY_BYTES: usize = 8;

/// The packed key of the rows a filter leaves out where they are grouped apart
/// ([`excluding`]): no row's keys pack to it, as its first byte would be a length of 254.
const EXCLUDED: u64 = u64::MAX;

/// Where each key of a group-by sits in the packed key, in the group-by's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Packing {
    keys: Vec<PackedKey>,
}

/// One key: its column, the byte that holds its length plus one (0 for null), and its bytes
/// after it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PackedKey {
    name: String,
    offset: usize,
}

/// `frame` with the packed key of its final group-by's keys, and `steps` grouping by it;
/// `None` where the keys are not all string columns of `frame`, or do not fit.
pub(crate) fn packed(
    frame: &DataFrame,
    steps: &[FrameStep],
) -> Option<(DataFrame, Vec<FrameStep>, Packing)> {
    let (FrameStep::GroupBy { keys, aggs }, before) = steps.split_last()? else {
        return None;
    };
    if keys.is_empty() || frame.column(KEY).is_ok() {
        return None;
    }
    let mut names: Vec<&str> = Vec::with_capacity(keys.len());
    let mut columns = Vec::with_capacity(keys.len());
    for key in keys {
        let Expr::Column(name) = key else {
            return None;
        };
        if names.contains(&name.as_str()) || !keeps_column(before, name) {
            return None;
        }
        let column = frame.column(name).ok()?;
        if column.dtype() != &DataType::String {
            return None;
        }
        names.push(name);
        columns.push(column.str().ok()?);
    }
    // The layout the first values need, checked against the longest value of each key while
    // every value is packed: reading each key's views once more to find the longest first
    // took as long as packing them.
    let first: Vec<usize> = (columns.iter())
        .map(|strings| longest(&strings.slice(0, LAYOUT_FROM)))
        .collect();
    let packing = layout(&names, &first)?;
    let (key, longest) = pack(&columns, &packing, frame.height());
    let (key, packing) = if longest.iter().zip(&first).all(|(seen, laid)| seen <= laid) {
        (key, packing)
    } else {
        let packing = layout(&names, &longest)?;
        (pack(&columns, &packing, frame.height()).0, packing)
    };
    let mut frame = frame.clone();
    frame.with_column(key.into_column()).ok()?;
    let mut rewritten: Vec<FrameStep> = before
        .iter()
        .map(|step| match step {
            // `keeps_column` let only plain selections through: the key is kept alongside.
            FrameStep::Select(exprs) => {
                let mut exprs = exprs.clone();
                exprs.push(col(KEY));
                FrameStep::Select(exprs)
            }
            other => other.clone(),
        })
        .collect();
    rewritten.push(FrameStep::GroupBy {
        keys: vec![col(KEY)],
        aggs: aggs.clone(),
    });
    Some((frame, rewritten, packing))
}

/// Whether the rows a filter before `steps` leaves out could be grouped apart under the
/// [`EXCLUDED`] key instead, and that group dropped: `steps` compute row by row with nothing
/// that fails on some values (a cast may), then group by the packed key alone with
/// aggregations that cannot fail either, then compute row by row over the groups.
pub(crate) fn can_group_excluded(steps: &[FrameStep]) -> bool {
    let Some(at) = steps
        .iter()
        .position(|s| matches!(s, FrameStep::GroupBy { .. }))
    else {
        return false;
    };
    let FrameStep::GroupBy { keys, aggs } = &steps[at] else {
        return false;
    };
    let row_by_row = |step: &FrameStep| match step {
        FrameStep::Select(exprs) | FrameStep::WithColumns(exprs) => {
            exprs.iter().all(|e| cannot_fail(e, false))
        }
        FrameStep::Drop(_) | FrameStep::Rename(_) => true,
        _ => false,
    };
    keys == &[col(KEY)]
        && aggs.iter().all(|e| cannot_fail(e, true))
        && steps[..at].iter().all(row_by_row)
        && steps[at + 1..].iter().all(row_by_row)
}

/// Whether `expr` computes each row from that row alone (or, with `aggregating`, each group
/// from its rows) without failing on any value: no casts (a strict cast fails on values it
/// cannot convert) and no remainders (of an integer by zero).
fn cannot_fail(expr: &Expr, aggregating: bool) -> bool {
    let mut fine = true;
    expr.visit(&mut |e| {
        fine &= match e {
            Expr::Cast { .. } => false,
            Expr::Binary { op, .. } => *op != BinaryOp::Rem,
            Expr::Agg { .. } | Expr::Len => aggregating,
            _ => true,
        }
    });
    fine
}

/// `frame`'s packed keys with the key of each row whose bit in `kept` (bit `i % 64` of word
/// `i / 64`) is clear made [`EXCLUDED`].
pub(crate) fn excluding(frame: &DataFrame, kept: &[u64]) -> Option<DataFrame> {
    let keys = frame.column(KEY).ok()?.u64().ok()?.rechunk();
    let keys = keys.cont_slice().ok()?;
    let mut excluded = Vec::with_capacity(keys.len());
    for (values, &word) in keys.chunks(64).zip(kept) {
        if word == u64::MAX {
            excluded.extend_from_slice(values);
        } else {
            let bits = (0..values.len()).map(|bit| word >> bit & 1 == 1);
            excluded.extend(
                (values.iter().zip(bits)).map(|(&key, kept)| if kept { key } else { EXCLUDED }),
            );
        }
    }
    let mut frame = frame.clone();
    (frame.with_column(UInt64Chunked::from_vec(KEY.into(), excluded).into_column())).ok()?;
    Some(frame)
}

/// How many values of each key decide the layout first tried.
const LAYOUT_FROM: usize = 1024;

/// Each key after the one before, in as many bytes as its `longest` value needs; `None` where
/// they do not fit in the key.
fn layout(names: &[&str], longest: &[usize]) -> Option<Packing> {
    let mut offset = 0;
    let mut keys = Vec::with_capacity(names.len());
    for (name, longest) in names.iter().zip(longest) {
        keys.push(PackedKey {
            name: name.to_string(),
            offset,
        });
        offset += 1 + longest;
    }
    (offset <= KEY_BYTES).then_some(Packing { keys })
}

/// The bytes of the longest value of `strings` (0 when all are null).
fn longest(strings: &StringChunked) -> usize {
    strings
        .downcast_iter()
        .filter_map(|array| {
            let lengths = array.views().iter().map(|view| view.length);
            match array.validity().filter(|v| v.unset_bits() > 0) {
                None => lengths.max(),
                Some(validity) => lengths
                    .zip(validity.iter())
                    .filter_map(|(length, valid)| valid.then_some(length))
                    .max(),
            }
        })
        .max()
        .map_or(0, |length| length as usize)
}

/// Each row's keys packed: at each key's offset, its length plus one (0 for null) and then
/// its bytes, in a little-endian `u64`; with the bytes of each key's longest value, which the
/// packing holds only if they are at most those it was laid out for. Values that fit the key
/// are at most 7 bytes, so each is inline in its view (a view holds up to 12 bytes itself):
/// read from there, no buffer is.
fn pack(columns: &[&StringChunked], packing: &Packing, rows: usize) -> (UInt64Chunked, Vec<usize>) {
    let mut packed = vec![0u64; rows];
    let mut longest = Vec::with_capacity(columns.len());
    for (strings, key) in columns.iter().zip(&packing.keys) {
        let shift = 8 * key.offset;
        let mut most = 0;
        let mut rest = packed.as_mut_slice();
        for array in strings.downcast_iter() {
            let (out, after) = rest.split_at_mut(array.len());
            rest = after;
            let views = array.views().iter();
            // Most key columns have no nulls: a loop without a validity test per row.
            match array.validity().filter(|v| v.unset_bits() > 0) {
                None => (out.iter_mut().zip(views)).for_each(|(o, v)| {
                    most = most.max(v.length);
                    *o |= packed_value(v) << shift;
                }),
                Some(valid) => (out.iter_mut().zip(views).zip(valid.iter()))
                    .filter(|(_, valid)| *valid)
                    .for_each(|((o, v), _)| {
                        most = most.max(v.length);
                        *o |= packed_value(v) << shift;
                    }),
            }
        }
        longest.push(most as usize);
    }
    (UInt64Chunked::from_vec(KEY.into(), packed), longest)
}

/// `result` without the group of [`EXCLUDED`] rows, where it has one.
fn without_excluded(result: DataFrame) -> PolarsResult<DataFrame> {
    let key = result.column(KEY)?.u64()?;
    if !key.iter().any(|k| k == Some(EXCLUDED)) {
        return Ok(result);
    }
    let kept = key.not_equal(EXCLUDED);
    result.filter(&kept)
}

/// One value packed: its length plus one, then its bytes. A view's inline bytes follow its
/// 4-byte length. A value too long for the key makes a wrong key, which [`pack`]'s longest
/// value tells its caller to discard.
fn packed_value(view: &View) -> u64 {
    let length = u64::from(view.length.min(7));
    let bytes = (view.as_u128() >> 32) as u64 & low_bytes(length);
    bytes << 8 | (length + 1)
}

/// A mask of the low `bytes` bytes of a `u64` (`bytes` at most 7).
fn low_bytes(bytes: u64) -> u64 {
    (1 << (8 * bytes)) - 1
}

/// `result` of the packed group-by, with the keys unpacked in the key's place.
pub(crate) fn unpacked(result: DataFrame, packing: &Packing) -> Result<DataFrame, FrameError> {
    const WHAT: &str = "unpacking a group-by's keys";
    let result = without_excluded(result).map_err(FrameError::polars(WHAT))?;
    let key = result
        .column(KEY)
        .and_then(Column::u64)
        .map_err(FrameError::polars(WHAT))?;
    let rows: Vec<[u8; KEY_BYTES]> = key.into_no_null_iter().map(u64::to_le_bytes).collect();
    let mut columns: Vec<Column> = packing
        .keys
        .iter()
        .map(|k| {
            let values: Vec<Option<&str>> = rows
                .iter()
                .map(|row| {
                    let length = usize::from(row[k.offset]).checked_sub(1)?;
                    let bytes = &row[k.offset + 1..k.offset + 1 + length];
                    // The bytes of one whole value of a string column.
                    Some(std::str::from_utf8(bytes).unwrap_or_default())
                })
                .collect();
            Series::new(k.name.as_str().into(), values).into_column()
        })
        .collect();
    columns.extend(
        result
            .columns()
            .iter()
            .filter(|c| c.name().as_str() != KEY)
            .cloned(),
    );
    DataFrame::new(rows.len(), columns).map_err(FrameError::polars(WHAT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::{run_in_polars, run_steps};
    use polars_core::prelude::SortMultipleOptions;
    use proptest::prelude::*;
    use tessera_plan::frame::{len, lit};

    fn group_by(keys: &[&str]) -> Vec<FrameStep> {
        vec![
            FrameStep::Filter(col("n").gt(lit(0i64))),
            FrameStep::GroupBy {
                keys: keys.iter().map(|k| col(k)).collect(),
                aggs: vec![col("n").sum().alias("total"), len().alias("rows")],
            },
        ]
    }

    fn sorted(frame: DataFrame, by: &[&str]) -> DataFrame {
        let by: Vec<String> = by.iter().map(|s| s.to_string()).collect();
        frame
            .sort(by, SortMultipleOptions::default().with_nulls_last(true))
            .unwrap()
    }

    #[test]
    fn keys_too_long_or_not_strings_are_left_to_polars() {
        let frame = DataFrame::new_infer_height(vec![
            Series::new("a".into(), ["abc", "e"]).into_column(),
            Series::new("b".into(), ["xyz", "w"]).into_column(),
            Series::new("c".into(), [Some("q"), None]).into_column(),
            Series::new("n".into(), [1i64, 2]).into_column(),
        ])
        .unwrap();
        // 1 + 3 and 1 + 3 bytes fit eight; a third key does not, nor a key twice.
        let (with_key, steps, _) = packed(&frame, &group_by(&["a", "b"])).unwrap();
        assert!(with_key.column(KEY).is_ok());
        assert!(matches!(&steps[1], FrameStep::GroupBy { keys, .. } if keys == &[col(KEY)]));
        assert!(packed(&frame, &group_by(&["a", "c"])).is_some());
        assert!(packed(&frame, &group_by(&["a", "b", "c"])).is_none());
        assert!(packed(&frame, &group_by(&["a", "a"])).is_none());
        assert!(packed(&frame, &group_by(&["a", "n"])).is_none());
        // A longer value after those the layout is first tried from: laid out again, or left
        // to polars where it does not fit.
        let late = |long: &str| {
            let mut a = vec!["x"; LAYOUT_FROM + 5];
            a.push(long);
            DataFrame::new_infer_height(vec![
                Series::new("a".into(), a).into_column(),
                Series::new("b".into(), vec!["y"; LAYOUT_FROM + 6]).into_column(),
                Series::new("n".into(), vec![1i64; LAYOUT_FROM + 6]).into_column(),
            ])
            .unwrap()
        };
        let steps = group_by(&["a", "b"]);
        let (_, _, packing) = packed(&late("abcd"), &steps).unwrap();
        assert_eq!(packing.keys[1].offset, 5);
        let got = sorted(run_steps(late("abcd"), &steps).unwrap(), &["a", "b"]);
        let expected = sorted(run_in_polars(late("abcd"), &steps).unwrap(), &["a", "b"]);
        assert!(got.equals_missing(&expected), "{got}\n{expected}");
        assert!(packed(&late("abcdefg"), &steps).is_none());
        // A key the steps before make is not the partition's column.
        let mut remade = group_by(&["a"]);
        remade.insert(0, FrameStep::WithColumns(vec![col("b").alias("a")]));
        assert!(packed(&frame, &remade).is_none());
    }

    /// Q1's shape: a date filter, prices computed row by row, sums, a mean and counts by two
    /// flags.
    fn filtered_sums(cutoff: i64, computed: Expr) -> Vec<FrameStep> {
        vec![
            FrameStep::Select(vec![col("a"), col("b"), col("n"), col("d")]),
            FrameStep::Filter(col("d").lt_eq(lit(cutoff))),
            FrameStep::WithColumns(vec![computed]),
            FrameStep::GroupBy {
                keys: vec![col("a"), col("b")],
                aggs: vec![
                    col("m").sum().alias("total"),
                    col("n").mean().alias("mean"),
                    col("n").count().alias("counted"),
                    len().alias("rows"),
                ],
            },
        ]
    }

    #[test]
    fn rows_a_filter_leaves_out_are_grouped_apart_only_where_nothing_can_tell() {
        let sums = |computed: Expr| filtered_sums(0, computed)[2..].to_vec();
        let row_wise = (col("n") * (lit(1i64) - col("d"))).alias("m");
        assert!(
            !can_group_excluded(&sums(row_wise.clone())),
            "grouped by the keys, not packed"
        );
        let packed_steps = |computed: Expr| {
            let mut steps = sums(computed);
            let last = steps.len() - 1;
            if let FrameStep::GroupBy { keys, .. } = &mut steps[last] {
                *keys = vec![col(KEY)];
            }
            steps
        };
        assert!(can_group_excluded(&packed_steps(row_wise)));
        // A cast may fail on a row the filter left out; an aggregate over the rows sees them.
        let cast = col("n").cast(tessera_plan::frame::DataType::Int32);
        assert!(!can_group_excluded(&packed_steps(cast.alias("m"))));
        assert!(!can_group_excluded(&packed_steps(
            col("n").sum().alias("m")
        )));
        // Eight rows, one left out by the filter: it is grouped apart, no filter is left for
        // polars to run, and its group (the only `N`) is not in the result.
        let frame = DataFrame::new_infer_height(vec![
            Series::new("a".into(), ["R", "A", "R", "N", "R", "A", "R", "R"]).into_column(),
            Series::new("b".into(), ["F", "F", "O", "O", "F", "F", "O", "O"]).into_column(),
            Series::new("n".into(), [1i64, 2, 3, 4, 5, 6, 7, 8]).into_column(),
            Series::new("d".into(), [1i64, 2, 3, 50, 5, 6, 7, 8]).into_column(),
        ])
        .unwrap();
        let steps = filtered_sums(10, (col("n") * lit(2i64)).alias("m"));
        let (with_key, packed_steps_of_q1, _) = packed(&frame, &steps).unwrap();
        let (apart, rewritten) = crate::mask::masked(&with_key, &packed_steps_of_q1, None).unwrap();
        assert!(!rewritten.iter().any(|s| matches!(s, FrameStep::Filter(_))));
        assert_eq!(
            apart.column(KEY).unwrap().u64().unwrap().get(3),
            Some(EXCLUDED)
        );
        let got = sorted(run_steps(frame.clone(), &steps).unwrap(), &["a", "b"]);
        let expected = sorted(run_in_polars(frame, &steps).unwrap(), &["a", "b"]);
        assert!(got.equals_missing(&expected), "{got}\n{expected}");
        assert_eq!(got.height(), 3);
        let mut limited = packed_steps(col("n").alias("m"));
        limited.insert(0, FrameStep::Head(3));
        assert!(!can_group_excluded(&limited));
    }

    proptest! {
        /// Whatever the share of rows the filter keeps (all, none, most), grouping the others
        /// apart gives polars' groups and aggregates.
        #[test]
        fn a_filter_with_its_left_out_rows_grouped_apart_gives_polars_groups(
            rows in prop::collection::vec(
                (prop::option::weighted(0.9, "[RAN]"), "[FO]", -3i64..9, 0i64..40),
                1..300,
            ),
            cutoff in 30i64..45,
        ) {
            let column = |i: usize| -> Vec<i64> { rows.iter().map(|r| if i == 2 { r.2 } else { r.3 }).collect() };
            let days = Series::new("d".into(), column(3));
            let frame = DataFrame::new_infer_height(vec![
                Series::new("a".into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()).into_column(),
                Series::new("b".into(), rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()).into_column(),
                Series::new("n".into(), column(2)).into_column(),
                days.into_column(),
            ])
            .unwrap();
            let steps = filtered_sums(cutoff, (col("n") * (lit(1i64) - col("d"))).alias("m"));
            let expected = sorted(run_in_polars(frame.clone(), &steps).unwrap(), &["a", "b"]);
            let got = sorted(run_steps(frame, &steps).unwrap(), &["a", "b"]);
            prop_assert!(got.equals_missing(&expected), "{got}\n{expected}");
        }

        #[test]
        fn packed_keys_group_as_polars_groups(
            rows in prop::collection::vec(
                (
                    prop::option::weighted(0.8, "[ab]{0,3}"),
                    prop::option::weighted(0.8, "[xyé]{0,1}"),
                    -2i64..5,
                ),
                0..60,
            ),
            split in 0usize..60,
        ) {
            let a: Vec<Option<String>> = rows.iter().map(|r| r.0.clone()).collect();
            let b: Vec<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
            let n: Vec<i64> = rows.iter().map(|r| r.2).collect();
            let whole = DataFrame::new_infer_height(vec![
                Series::new("a".into(), a).into_column(),
                Series::new("b".into(), b).into_column(),
                Series::new("n".into(), n).into_column(),
            ])
            .unwrap();
            // Columns of two chunks, as partitions put together from pieces are.
            let split = split.min(whole.height()) as i64;
            let mut frame = whole.slice(0, split as usize);
            frame.vstack_mut(&whole.slice(split, whole.height())).unwrap();
            let steps = group_by(&["a", "b"]);
            let expected = sorted(run_in_polars(frame.clone(), &steps).unwrap(), &["a", "b"]);
            let got = sorted(run_steps(frame, &steps).unwrap(), &["a", "b"]);
            prop_assert!(got.equals_missing(&expected), "{got}\n{expected}");
        }
    }
}
