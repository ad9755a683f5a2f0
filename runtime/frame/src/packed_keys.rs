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
use crate::steps::keeps_column;
use polars_arrow::array::Array;
use polars_core::prelude::{
    Column, DataFrame, DataType, IntoColumn, NamedFrom, Series, StringChunked, UInt64Chunked,
};
use tessera_plan::frame::{Expr, FrameStep, col};

/// The packed key's column (`__tessera_` names are the engine's own).
const KEY: &str = "__tessera_key";

/// Bytes in the packed key.
const KEY_BYTES: usize = 8;

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
    let mut columns = Vec::with_capacity(keys.len());
    let mut packing = Packing { keys: Vec::new() };
    let mut offset = 0;
    for key in keys {
        let Expr::Column(name) = key else {
            return None;
        };
        if packing.keys.iter().any(|k| &k.name == name) || !keeps_column(before, name) {
            return None;
        }
        let column = frame.column(name).ok()?;
        if column.dtype() != &DataType::String {
            return None;
        }
        let strings = column.str().ok()?;
        packing.keys.push(PackedKey {
            name: name.clone(),
            offset,
        });
        offset += 1 + longest(strings);
        if offset > KEY_BYTES {
            return None;
        }
        columns.push(strings);
    }
    let key = pack(&columns, &packing, frame.height());
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
/// its bytes, in a little-endian `u64`. Values that fit the key are at most 7 bytes, so each
/// is inline in its view (a view holds up to 12 bytes itself): read from there, no buffer is.
fn pack(columns: &[&StringChunked], packing: &Packing, rows: usize) -> UInt64Chunked {
    let mut packed = vec![0u64; rows];
    for (strings, key) in columns.iter().zip(&packing.keys) {
        let shift = 8 * key.offset;
        let mut row = 0;
        for array in strings.downcast_iter() {
            let validity = array.validity().filter(|v| v.unset_bits() > 0);
            for (i, view) in array.views().iter().enumerate() {
                if validity.is_none_or(|v| v.get_bit(i)) {
                    let length = u64::from(view.length);
                    // A view's inline bytes follow its 4-byte length.
                    let bytes = (view.as_u128() >> 32) as u64 & low_bytes(length);
                    packed[row] |= (bytes << 8 | (length + 1)) << shift;
                }
                row += 1;
            }
        }
    }
    UInt64Chunked::from_vec(KEY.into(), packed)
}

/// A mask of the low `bytes` bytes of a `u64` (`bytes` at most 7).
fn low_bytes(bytes: u64) -> u64 {
    (1 << (8 * bytes)) - 1
}

/// `result` of the packed group-by, with the keys unpacked in the key's place.
pub(crate) fn unpacked(result: DataFrame, packing: &Packing) -> Result<DataFrame, FrameError> {
    const WHAT: &str = "unpacking a group-by's keys";
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
        // A key the steps before make is not the partition's column.
        let mut remade = group_by(&["a"]);
        remade.insert(0, FrameStep::WithColumns(vec![col("b").alias("a")]));
        assert!(packed(&frame, &remade).is_none());
    }

    proptest! {
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
