//! A filter's comparisons of a column with a literal, joined by `and` (TPC-H's date ranges,
//! discounts and quantities), evaluated here rather than by polars.
//!
//! Why: polars' comparison and filter kernels, built on stable Rust without their nightly
//! `simd` feature, push one `bool` at a time into a bitmap and look at every row of every
//! column they filter; on TPC-H Q6 over cached lineitem that was two thirds of the executors'
//! CPU. Here one pass over each column's values does all of that column's comparisons, 64 rows
//! at a time, packing their outcomes into a word in a loop LLVM vectorizes, and the words of
//! all the columns are and-ed in place. Where the mask keeps few rows, they are gathered here
//! by index; where it keeps many, it joins the partition as a boolean column for polars'
//! filter to read; where it keeps nearly all and a group-by by packed keys follows, the rows
//! it leaves out are grouped apart and that group dropped, and no row is copied. polars does everything else (which columns to filter, what follows). A
//! comparison whose types polars would coerce otherwise than plain arithmetic does (a
//! `Float32` column, an integer column against a float, strings) stays polars' to evaluate,
//! so results never depend on which of the two evaluated it.

use crate::keeps_column::keeps_column;
use crate::packed_keys;
use crate::row_bits::and_words;
use polars_arrow::array::{Array, BooleanArray, PrimitiveArray};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::ArrowDataType;
use polars_arrow::types::NativeType;
use polars_core::prelude::{
    BooleanChunked, Column, DataFrame, DataType, IdxCa, IdxSize, IntoColumn, IntoSeries,
};
use tessera_plan::frame::{BinaryOp, Expr, FrameStep, Value, col};

/// The column a mask is added as (`__tessera_` names are the engine's own).
const MASK_COLUMN: &str = "__tessera_mask";

/// `column op literal`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Comparison<'a> {
    column: &'a str,
    op: BinaryOp,
    literal: &'a Value,
}

/// `expr` as a comparison of a column with a literal, either way round.
fn comparison(expr: &Expr) -> Option<Comparison<'_>> {
    let Expr::Binary { left, op, right } = expr else {
        return None;
    };
    let flipped = match op {
        BinaryOp::Eq => BinaryOp::Eq,
        BinaryOp::NotEq => BinaryOp::NotEq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        _ => return None,
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(column), Expr::Literal(literal)) => Some(Comparison {
            column,
            op: *op,
            literal,
        }),
        (Expr::Literal(literal), Expr::Column(column)) => Some(Comparison {
            column,
            op: flipped,
            literal,
        }),
        _ => None,
    }
}

/// The terms of `predicate`'s `and`s, in order.
fn conjuncts(predicate: &Expr) -> Vec<&Expr> {
    match predicate {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => {
            let mut terms = conjuncts(left);
            terms.extend(conjuncts(right));
            terms
        }
        other => vec![other],
    }
}

/// A test of a column's rows that a mask ands in beside the filter's own comparisons: a
/// broadcast join's runtime filter ([`crate::runtime_filter::and_present`]), which drops the rows
/// the join would drop before any column is copied.
pub(crate) struct RowTest<'a> {
    /// The column it tests, which must reach the end of the steps as it was.
    pub column: &'a str,
    /// Clears the bit of each row it drops (bit `i % 64` of word `i / 64` for row `i`);
    /// `false`, with nothing cleared, where it cannot tell.
    pub and_into: &'a dyn Fn(&Column, &mut [u64]) -> bool,
}

/// The first filter of `steps` that reads the partition's own columns (only selections of
/// columns by name before it), with its position.
fn first_filter(steps: &[FrameStep]) -> Option<(usize, &Expr)> {
    for (index, step) in steps.iter().enumerate() {
        match step {
            FrameStep::Filter(predicate) => return Some((index, predicate)),
            FrameStep::Select(exprs) if exprs.iter().all(|e| matches!(e, Expr::Column(_))) => {}
            _ => return None,
        }
    }
    None
}

/// How a partition's rows are cut down to those a mask keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// The mask is added as a column for polars' filter to read: most rows are kept, and
    /// polars' filter copies runs of them.
    MaskColumn,
    /// The rows kept are gathered here first: few are kept, and polars' filter (built without
    /// its `simd` feature) would look at every row of every column to find them.
    Gathered,
    /// No row is cut: the rows left out are grouped apart by the group-by that follows, and
    /// their group dropped after it ([`packed_keys::excluding`]). Where nearly every row is
    /// kept, aggregating the few left out costs less than copying every column of the rest:
    /// TPC-H Q1's date filter keeps 98.6% of lineitem.
    GroupedApart,
}

/// Rows kept, out of every this many, at or under which a mask's rows are [`Cut::Gathered`].
const GATHER_WHEN_ONE_IN: usize = 8;

/// Rows left out, out of every this many, at or under which they are [`Cut::GroupedApart`]
/// where the steps allow it.
const GROUP_APART_WHEN_ONE_IN: usize = 8;

/// How to cut `rows` rows to `kept` of them, given whether the steps after the filter could
/// group the others apart.
fn cut(rows: usize, kept: usize, can_group_apart: bool) -> Cut {
    if kept.saturating_mul(GATHER_WHEN_ONE_IN) <= rows && IdxSize::try_from(rows).is_ok() {
        Cut::Gathered
    } else if can_group_apart && (rows - kept).saturating_mul(GROUP_APART_WHEN_ONE_IN) <= rows {
        Cut::GroupedApart
    } else {
        Cut::MaskColumn
    }
}

/// `steps` with the filter at `index` done by `cut`: the predicate's `rest` (the terms the
/// mask does not cover) kept as a filter of their own; with a mask column, the selections
/// before it keeping the column, the filter reading it and the column dropped after it.
fn rewritten(steps: &[FrameStep], index: usize, rest: Vec<&Expr>, cut: Cut) -> Vec<FrameStep> {
    let mut out = Vec::with_capacity(steps.len() + 2);
    for step in &steps[..index] {
        match (step, cut) {
            (FrameStep::Select(exprs), Cut::MaskColumn) => {
                let mut exprs = exprs.clone();
                exprs.push(col(MASK_COLUMN));
                out.push(FrameStep::Select(exprs));
            }
            (other, _) => out.push(other.clone()),
        }
    }
    if cut == Cut::MaskColumn {
        out.push(FrameStep::Filter(col(MASK_COLUMN)));
    }
    let mut rest = rest.into_iter().cloned();
    if let Some(first) = rest.next() {
        out.push(FrameStep::Filter(
            rest.fold(first, |all, term| all.and(term)),
        ));
    }
    if cut == Cut::MaskColumn {
        out.push(FrameStep::Drop(vec![MASK_COLUMN.to_string()]));
    }
    out.extend_from_slice(&steps[index + 1..]);
    out
}

/// The columns the steps before the filter at `index` keep: those of the first selection, or
/// all of `frame`'s.
fn kept_columns(frame: &DataFrame, steps: &[FrameStep], index: usize) -> Vec<String> {
    match steps[..index].first() {
        Some(FrameStep::Select(exprs)) => exprs.iter().map(Expr::output_name).collect(),
        _ => frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect(),
    }
}

/// `frame` with a mask column and the `steps` that read it, when `steps` begin (after
/// selections of columns) with a filter some of whose terms this module evaluates; `None`
/// when polars is left the whole query.
pub(crate) fn masked(
    frame: &DataFrame,
    steps: &[FrameStep],
    also: Option<&RowTest>,
) -> Option<(DataFrame, Vec<FrameStep>)> {
    let (index, predicate) = first_filter(steps)?;
    let rows = frame.height();
    if rows == 0 || frame.column(MASK_COLUMN).is_ok() {
        return None;
    }
    // The comparisons of each column, so that one pass over its values does them all.
    let mut by_column: Vec<(&str, Vec<(BinaryOp, &Value)>, Vec<&Expr>)> = Vec::new();
    let mut rest = Vec::new();
    for term in conjuncts(predicate) {
        // The driver plans no filter of a column the selections before it dropped; should one
        // come, polars says so.
        let Some(c) = comparison(term).filter(|c| keeps_column(&steps[..index], c.column)) else {
            rest.push(term);
            continue;
        };
        match by_column
            .iter_mut()
            .find(|(column, ..)| *column == c.column)
        {
            Some((_, comparisons, terms)) => {
                comparisons.push((c.op, c.literal));
                terms.push(term);
            }
            None => by_column.push((c.column, vec![(c.op, c.literal)], vec![term])),
        }
    }
    let mut words = vec![u64::MAX; rows.div_ceil(64)];
    let mut covered = false;
    for (column, comparisons, terms) in by_column {
        if and_into(frame, column, &comparisons, &mut words) {
            covered = true;
        } else {
            rest.extend(terms);
        }
    }
    if let Some(test) = also.filter(|test| keeps_column(steps, test.column))
        && let Ok(column) = frame.column(test.column)
    {
        covered |= (test.and_into)(column, &mut words);
    }
    if !covered {
        return None;
    }
    let kept: usize = words.iter().map(|w| w.count_ones() as usize).sum();
    let can_group_apart = rest.is_empty() && packed_keys::can_group_excluded(&steps[index + 1..]);
    let how = cut(rows, kept, can_group_apart);
    let frame = match how {
        Cut::GroupedApart => packed_keys::excluding(frame, &words)?,
        Cut::Gathered => {
            let mut indices: Vec<IdxSize> = Vec::with_capacity(kept);
            for (w, &word) in words.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    indices.push((w * 64) as IdxSize + bits.trailing_zeros() as IdxSize);
                    bits &= bits - 1;
                }
            }
            let indices = IdxCa::from_vec("".into(), indices);
            frame
                .select(kept_columns(frame, steps, index))
                .and_then(|columns| columns.take(&indices))
                .ok()?
        }
        Cut::MaskColumn => {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let bits = Bitmap::from_u8_vec(bytes, rows);
            let array = BooleanArray::new(ArrowDataType::Boolean, bits, None);
            let mask = BooleanChunked::with_chunk(MASK_COLUMN.into(), array);
            let mut frame = frame.clone();
            frame.with_column(mask.into_series().into_column()).ok()?;
            frame
        }
    };
    Some((frame, rewritten(steps, index, rest, how)))
}

/// Ands the outcomes of `comparisons` (`column op literal`, all of them) over `frame` into
/// `words`, a null failing them; `false`, with `words` untouched, when the column's type and a
/// literal are not ones this module compares.
fn and_into(
    frame: &DataFrame,
    column: &str,
    comparisons: &[(BinaryOp, &Value)],
    words: &mut [u64],
) -> bool {
    let Ok(column) = frame.column(column) else {
        return false;
    };
    let series = column.as_materialized_series();
    if series.n_chunks() != 1 {
        return false;
    }
    let array = series.chunks()[0].as_ref();
    let integers = |date: bool| -> Option<Vec<(BinaryOp, i64)>> {
        comparisons
            .iter()
            .map(|&(op, literal)| match (literal, date) {
                (Value::Int(v), false) => Some((op, *v)),
                (Value::Date(v), true) => Some((op, i64::from(*v))),
                _ => None,
            })
            .collect()
    };
    let done = match series.dtype() {
        DataType::Float64 => comparisons
            .iter()
            .map(|&(op, literal)| Some((op, float_literal(literal)?)))
            .collect::<Option<Vec<_>>>()
            .and_then(|c| and_floats(array, &c, words)),
        DataType::Int64 => integers(false).and_then(|c| and_integers::<i64>(array, &c, words)),
        DataType::Int32 => integers(false).and_then(|c| and_integers::<i32>(array, &c, words)),
        DataType::UInt32 => integers(false).and_then(|c| and_integers::<u32>(array, &c, words)),
        DataType::Date => integers(true).and_then(|c| and_integers::<i32>(array, &c, words)),
        _ => None,
    };
    let Some(validity) = done else {
        return false;
    };
    if let Some(validity) = validity.filter(|v| v.unset_bits() > 0) {
        and_validity(validity, words);
    }
    true
}

/// A numeric literal as a float column's comparisons read it (polars casts an integer literal
/// to the column's type); `None` for NaN, which polars orders as no plain comparison does.
fn float_literal(literal: &Value) -> Option<f64> {
    let value = match literal {
        Value::Float(v) => *v,
        Value::Int(v) => *v as f64,
        Value::UInt(v) => *v as f64,
        _ => return None,
    };
    (!value.is_nan()).then_some(value)
}

/// A side of a float range: none, or a bound the values must be beyond (`strict`) or may
/// equal.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Open,
    Strict(f64),
    Inclusive(f64),
}

/// The range of floats `comparisons` allow (the tightest bound on each side), and the values
/// they must not equal.
fn float_range(comparisons: &[(BinaryOp, f64)]) -> Option<(Side, Side, Vec<f64>)> {
    let (mut lower, mut upper, mut unequal) = (Side::Open, Side::Open, Vec::new());
    // Whether bound `new` is tighter than `old`, `beyond` saying which way is tighter.
    let tighter = |new: Side, old: Side, beyond: fn(f64, f64) -> bool| match (new, old) {
        (_, Side::Open) => true,
        (Side::Strict(n), Side::Strict(o) | Side::Inclusive(o)) => beyond(n, o) || n == o,
        (Side::Inclusive(n), Side::Strict(o) | Side::Inclusive(o)) => beyond(n, o),
        (Side::Open, _) => false,
    };
    let narrow = |side: &mut Side, new: Side, beyond: fn(f64, f64) -> bool| {
        if tighter(new, *side, beyond) {
            *side = new;
        }
    };
    for &(op, v) in comparisons {
        match op {
            BinaryOp::Gt => narrow(&mut lower, Side::Strict(v), |a, b| a > b),
            BinaryOp::GtEq => narrow(&mut lower, Side::Inclusive(v), |a, b| a > b),
            BinaryOp::Lt => narrow(&mut upper, Side::Strict(v), |a, b| a < b),
            BinaryOp::LtEq => narrow(&mut upper, Side::Inclusive(v), |a, b| a < b),
            BinaryOp::Eq => {
                narrow(&mut lower, Side::Inclusive(v), |a, b| a > b);
                narrow(&mut upper, Side::Inclusive(v), |a, b| a < b);
            }
            BinaryOp::NotEq => unequal.push(v),
            _ => return None,
        }
    }
    Some((lower, upper, unequal))
}

/// Ands a float range's outcomes over `array` into `words`; the array's validity, or `None`
/// if `array` holds no `f64`s.
// `!(v <= l)` is meant: NaN passes it, as polars orders NaN above every value, and it stays one
// comparison in the vectorised loop.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn and_floats<'a>(
    array: &'a dyn Array,
    comparisons: &[(BinaryOp, f64)],
    words: &mut [u64],
) -> Option<Option<&'a Bitmap>> {
    let array = array.as_any().downcast_ref::<PrimitiveArray<f64>>()?;
    let (lower, upper, unequal) = float_range(comparisons)?;
    let values = array.values().as_slice();
    // polars orders NaN above every other value: it passes every lower bound ("above" is
    // "not at most", which NaN is not) and fails every upper one (which plain comparisons do).
    // One loop for each kind of range, so that no loop looks at the kind for each value.
    use Side::{Inclusive, Open, Strict};
    match (lower, upper) {
        (Open, Open) => {}
        (Open, Strict(u)) => and_words(values, words, |v| v < u),
        (Open, Inclusive(u)) => and_words(values, words, |v| v <= u),
        (Strict(l), Open) => and_words(values, words, |v| !(v <= l)),
        (Inclusive(l), Open) => and_words(values, words, |v| !(v < l)),
        (Strict(l), Strict(u)) => and_words(values, words, |v| (v > l) & (v < u)),
        (Strict(l), Inclusive(u)) => and_words(values, words, |v| (v > l) & (v <= u)),
        (Inclusive(l), Strict(u)) => and_words(values, words, |v| (v >= l) & (v < u)),
        (Inclusive(l), Inclusive(u)) => and_words(values, words, |v| (v >= l) & (v <= u)),
    }
    for u in unequal {
        and_words(values, words, |v| v != u);
    }
    Some(array.validity())
}

/// A column's integer type, compared in its own width.
trait Integer: NativeType + Ord + TryFrom<i64> + Into<i64> {
    const MIN: Self;
    const MAX: Self;
}
impl Integer for i32 {
    const MIN: Self = i32::MIN;
    const MAX: Self = i32::MAX;
}
impl Integer for i64 {
    const MIN: Self = i64::MIN;
    const MAX: Self = i64::MAX;
}
impl Integer for u32 {
    const MIN: Self = u32::MIN;
    const MAX: Self = u32::MAX;
}

/// The range `[lower, upper]` of `T`s that `comparisons` allow, and the values they must not
/// equal; `None` for the range when no `T` is in it.
fn integer_range<T: Integer>(comparisons: &[(BinaryOp, i64)]) -> Option<(Option<(T, T)>, Vec<T>)> {
    // In i128, where a bound moved by one for a strict comparison cannot overflow.
    let (mut lower, mut upper) = (i128::from(T::MIN.into()), i128::from(T::MAX.into()));
    let mut unequal = Vec::new();
    for &(op, v) in comparisons {
        let v = i128::from(v);
        match op {
            BinaryOp::Gt => lower = lower.max(v + 1),
            BinaryOp::GtEq => lower = lower.max(v),
            BinaryOp::Lt => upper = upper.min(v - 1),
            BinaryOp::LtEq => upper = upper.min(v),
            BinaryOp::Eq => (lower, upper) = (lower.max(v), upper.min(v)),
            // A value no `T` equals is unequal to every one.
            BinaryOp::NotEq => {
                unequal.extend(i64::try_from(v).ok().and_then(|v| T::try_from(v).ok()))
            }
            _ => return None,
        }
    }
    // Both bounds start at T's ends and only move inwards, so a non-empty range is within T.
    let within = |bound: i128| {
        i64::try_from(bound)
            .ok()
            .and_then(|b| T::try_from(b).ok())
            .expect("a bound within the type's range")
    };
    let range = (lower <= upper).then(|| (within(lower), within(upper)));
    Some((range, unequal))
}

/// Ands an integer range's outcomes over `array` into `words`; the array's validity, or
/// `None` if `array` holds no `T`s.
fn and_integers<'a, T: Integer>(
    array: &'a dyn Array,
    comparisons: &[(BinaryOp, i64)],
    words: &mut [u64],
) -> Option<Option<&'a Bitmap>> {
    let array = array.as_any().downcast_ref::<PrimitiveArray<T>>()?;
    let (range, unequal) = integer_range::<T>(comparisons)?;
    let values = array.values().as_slice();
    match range {
        None => words.fill(0),
        Some((lower, upper)) if lower == T::MIN && upper == T::MAX => {}
        Some((lower, upper)) => and_words(values, words, |v| (lower <= v) & (v <= upper)),
    }
    for u in unequal {
        and_words(values, words, |v| v != u);
    }
    Some(array.validity())
}

/// Ands a validity bitmap into `words`: a null row fails every comparison.
fn and_validity(validity: &Bitmap, words: &mut [u64]) {
    let mut iter = validity.fast_iter_u64();
    let mut filled = 0;
    for (word, valid) in words.iter_mut().zip(&mut iter) {
        *word &= valid;
        filled += 1;
    }
    // The iterator leaves its last 64 to 127 bits to `remainder`.
    let (last, _) = iter.remainder();
    for (word, valid) in words[filled..].iter_mut().zip(last) {
        *word &= valid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::run_in_polars;
    use polars_core::df;
    use polars_core::prelude::{NamedFrom, Series};
    use proptest::prelude::*;
    use tessera_plan::frame::lit;

    fn cmp(column: &str, op: BinaryOp, literal: Value) -> Expr {
        Expr::Binary {
            left: Box::new(col(column)),
            op,
            right: Box::new(Expr::Literal(literal)),
        }
    }

    #[test]
    fn a_filter_after_selections_reads_the_mask_and_keeps_what_the_mask_does_not_cover() {
        let covered = cmp("d", BinaryOp::GtEq, Value::Date(10));
        let left = cmp("s", BinaryOp::Eq, Value::String("R".into()));
        let steps = vec![
            FrameStep::Select(vec![col("d"), col("s")]),
            FrameStep::Filter(covered.clone().and(left.clone())),
            FrameStep::Head(3),
        ];
        assert_eq!(first_filter(&steps).map(|(i, _)| i), Some(1));
        assert_eq!(
            rewritten(&steps, 1, vec![&left], Cut::MaskColumn),
            vec![
                FrameStep::Select(vec![col("d"), col("s"), col(MASK_COLUMN)]),
                FrameStep::Filter(col(MASK_COLUMN)),
                FrameStep::Filter(left.clone()),
                FrameStep::Drop(vec![MASK_COLUMN.to_string()]),
                FrameStep::Head(3),
            ]
        );
        assert_eq!(
            rewritten(&steps, 1, vec![], Cut::Gathered),
            vec![
                FrameStep::Select(vec![col("d"), col("s")]),
                FrameStep::Head(3)
            ]
        );
        assert!(keeps_column(&steps[..1], "d"));
        assert!(!keeps_column(&steps[..1], "x"));
        // A computed column before the filter: the filter may read it, the mask cannot.
        let computed = vec![
            FrameStep::WithColumns(vec![col("d").alias("e")]),
            FrameStep::Filter(covered),
        ];
        assert_eq!(first_filter(&computed), None);
    }

    #[test]
    fn few_rows_kept_are_gathered_many_filtered_by_polars_and_nearly_all_grouped_apart() {
        for can_group_apart in [false, true] {
            assert_eq!(cut(800, 0, can_group_apart), Cut::Gathered);
            assert_eq!(cut(800, 100, can_group_apart), Cut::Gathered);
            assert_eq!(cut(800, 101, can_group_apart), Cut::MaskColumn);
            assert_eq!(cut(800, 699, can_group_apart), Cut::MaskColumn);
        }
        // Nearly all kept: the rest grouped apart, where the steps after can.
        assert_eq!(cut(800, 700, true), Cut::GroupedApart);
        assert_eq!(cut(800, 800, true), Cut::GroupedApart);
        assert_eq!(cut(800, 800, false), Cut::MaskColumn);
    }

    #[test]
    fn a_column_s_comparisons_make_one_range_the_tightest_bound_on_each_side() {
        use BinaryOp::*;
        assert_eq!(
            float_range(&[(GtEq, 0.05), (LtEq, 0.07), (Gt, 0.05), (Lt, 1.0)]),
            Some((Side::Strict(0.05), Side::Inclusive(0.07), vec![]))
        );
        assert_eq!(
            float_range(&[(Eq, 2.0), (NotEq, 3.0)]),
            Some((Side::Inclusive(2.0), Side::Inclusive(2.0), vec![3.0]))
        );
        assert_eq!(
            integer_range::<i32>(&[(GtEq, 10), (Lt, 20), (Gt, 12)]),
            Some((Some((13, 19)), vec![]))
        );
        // Bounds past the type's ends, and a range no value is in.
        assert_eq!(
            integer_range::<i32>(&[(Lt, i64::MAX), (NotEq, i64::MIN)]),
            Some((Some((i32::MIN, i32::MAX)), vec![]))
        );
        assert_eq!(integer_range::<u32>(&[(Lt, 0)]), Some((None, vec![])));
        assert_eq!(
            integer_range::<i64>(&[(Gt, i64::MAX)]),
            Some((None, vec![]))
        );
    }

    #[test]
    fn a_literal_on_the_left_is_compared_the_other_way_round() {
        let flipped = Expr::Binary {
            left: Box::new(lit(3)),
            op: BinaryOp::Lt,
            right: Box::new(col("x")),
        };
        let found = comparison(&flipped).expect("a comparison");
        assert_eq!((found.column, found.op), ("x", BinaryOp::Gt));
    }

    #[test]
    fn a_partition_masked_keeps_the_rows_and_columns_polars_keeps() {
        let days = Series::new("d".into(), [Some(1i32), Some(5), None, Some(9), Some(5)]);
        let frame = DataFrame::new_infer_height(vec![
            days.cast(&DataType::Date).unwrap().into_column(),
            Series::new(
                "x".into(),
                [Some(0.5f64), Some(f64::NAN), Some(2.0), None, Some(7.0)],
            )
            .into_column(),
            Series::new("s".into(), ["a", "R", "R", "b", "R"]).into_column(),
        ])
        .unwrap();
        let predicate = cmp("d", BinaryOp::GtEq, Value::Date(5))
            .and(cmp("x", BinaryOp::Gt, Value::Int(1)))
            .and(cmp("s", BinaryOp::Eq, Value::String("R".into())));
        let steps = vec![
            FrameStep::Select(vec![col("d"), col("x"), col("s")]),
            FrameStep::Filter(predicate),
        ];
        let (with_mask, rewritten) = masked(&frame, &steps, None).expect("masked");
        let ours = run_in_polars(with_mask, &rewritten).unwrap();
        let theirs = run_in_polars(frame, &steps).unwrap();
        assert_eq!(ours.get_column_names(), theirs.get_column_names());
        assert!(ours.equals_missing(&theirs), "{ours}\n{theirs}");
        // NaN is above 1 in polars' order: row 1 is kept, as is row 4.
        assert_eq!(ours.height(), 2);
    }

    #[test]
    fn a_filter_with_nothing_this_module_compares_is_left_to_polars() {
        let frame = df!("s" => ["a", "b"], "f" => [1.0f32, 2.0]).unwrap();
        let on_strings = vec![FrameStep::Filter(cmp(
            "s",
            BinaryOp::Eq,
            Value::String("a".into()),
        ))];
        assert!(masked(&frame, &on_strings, None).is_none());
        let on_f32 = vec![FrameStep::Filter(cmp("f", BinaryOp::Lt, Value::Float(1.5)))];
        assert!(masked(&frame, &on_f32, None).is_none());
        let not_first = vec![FrameStep::Head(1), on_f32[0].clone()];
        assert!(masked(&frame, &not_first, None).is_none());
    }

    fn ops() -> impl Strategy<Value = BinaryOp> {
        prop::sample::select(vec![
            BinaryOp::Eq,
            BinaryOp::NotEq,
            BinaryOp::Lt,
            BinaryOp::LtEq,
            BinaryOp::Gt,
            BinaryOp::GtEq,
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the values (nulls, NaNs, a slice of a longer column), the lengths (within
        /// a word, across words) and the comparisons, a masked filter keeps exactly the rows
        /// polars' own filter keeps.
        #[test]
        fn masked_filters_keep_the_rows_polars_keeps(
            floats in prop::collection::vec(
                prop::option::weighted(0.9, prop_oneof![
                    4 => (-4i32..4).prop_map(|v| f64::from(v) / 2.0),
                    1 => Just(f64::NAN),
                ]),
                0..200,
            ),
            offset in 0usize..70,
            float_op in ops(),
            float_literal in (-4i32..4).prop_map(|v| f64::from(v) / 2.0),
            int_op in ops(),
            int_literal in -3i64..3,
            date_ops in prop::collection::vec(ops(), 0..3),
            date_literal in 0i32..11,
        ) {
            let rows = floats.len();
            let ints: Vec<Option<i64>> = (0..rows)
                .map(|i| (i % 7 != 3).then_some((i as i64 % 5) - 2))
                .collect();
            let days: Vec<i32> = (0..rows).map(|i| (i * 7 % 11) as i32).collect();
            let dates = Series::new("d".into(), days).cast(&DataType::Date).unwrap();
            let mut frame = df!("f" => floats, "i" => ints).unwrap();
            frame.with_column(dates.into_column()).unwrap();
            // A slice starts within a word of the arrays' values and validity.
            let frame = frame.slice(offset.min(rows) as i64, rows);
            let predicate = date_ops.iter().fold(
                cmp("f", float_op, Value::Float(float_literal))
                    .and(cmp("i", int_op, Value::Int(int_literal))),
                |all, &op| all.and(cmp("d", op, Value::Date(date_literal))),
            );
            let steps = vec![FrameStep::Filter(predicate)];
            let theirs = run_in_polars(frame.clone(), &steps).unwrap();
            match masked(&frame, &steps, None) {
                Some((with_mask, rewritten)) => {
                    let ours = run_in_polars(with_mask, &rewritten).unwrap();
                    prop_assert!(ours.equals_missing(&theirs), "{}\n{}", ours, theirs);
                }
                None => prop_assert_eq!(frame.height(), 0),
            }
        }
    }
}
