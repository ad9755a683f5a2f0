//! How a DataFrame step is computed over partitions — a decision over plain plans, tested
//! here: row by row within each partition; around a shuffle (an aggregation runs partially on
//! each partition, the partial rows are shuffled by their keys, and a final aggregation
//! combines them, as Spark's two-phase aggregation does; a limit takes each partition's first
//! rows, shuffled into one partition); or, for a sort, shuffled by ranges of its keys drawn
//! from a sample, as Spark's `RangePartitioner` places rows, then sorted in each partition.

use tessera_plan::builtin::SortKeys;
use tessera_plan::frame::{
    AggFunc, DataType, Expr, FrameStep, JoinKind, Schema, Value, col, lit, when,
};

/// A step that cannot be computed over partitions as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramePlanError {
    /// An aggregation where only row-by-row expressions can go.
    #[error(
        "{step} cannot aggregate (`{expr}`): aggregate with group_by(...).agg(...), or select only aggregations to aggregate the whole DataFrame"
    )]
    AggregationInRowStep {
        /// `filter` or `with_columns`.
        step: &'static str,
        /// The expression's output name.
        expr: String,
    },
    /// A select that mixes aggregations with row-by-row columns.
    #[error(
        "select mixes aggregations with row-by-row columns ({rows}): select only aggregations, or group by the row-by-row columns"
    )]
    MixedSelect {
        /// The row-by-row columns.
        rows: String,
    },
    /// An aggregation that cannot run in two phases, grouped by a computed key.
    #[error(
        "group_by on the expression `{key}` with an aggregation that only runs whole ({agg}): add the key as a column with with_columns first, then group by its name"
    )]
    ComputedKey {
        /// The key's output name.
        key: String,
        /// The aggregation's output name.
        agg: String,
    },
}

/// How a step runs over partitions.
#[derive(Debug, Clone, PartialEq)]
pub enum Distributed {
    /// On each partition on its own.
    Narrow(FrameStep),
    /// `before` on each partition (skipping partitions without rows), a shuffle that puts rows
    /// with equal `keys` in one partition (all rows in one, without keys), then `after` on each
    /// partition.
    Shuffle {
        before: Option<FrameStep>,
        keys: Vec<String>,
        after: FrameStep,
    },
    /// Each row shuffled to the partition of the range its sort keys fall in, then each
    /// partition sorted by `keys`: the partitions in their order hold the rows in the sort's
    /// order. The ranges are drawn from a sample of the input
    /// ([`tessera_plan::range_bounds::range_bounds`], as `sort_by_key` draws an RDD's) when a job
    /// first needs the shuffle, as Spark's `RangePartitioner` samples its input. The shuffle
    /// keeps the partitions' order and equal keys share a range, so ties come out as one stable
    /// sort of every row gives them.
    SortedRanges(SortKeys),
    /// The first `n` rows by `sort`, over the DataFrame the sort would have sorted (Spark's
    /// `TakeOrderedAndProject`): each partition's first `n` by it, in tasks of their own, then
    /// those of every partition shuffled into one, sorted and cut again. The shuffle keeps the
    /// partitions' order, so a stable sort's ties come out as one sort of every row gives them.
    FirstSorted { sort: FrameStep, n: u64 },
}

/// Largest side of a join sent whole to every executor rather than shuffled, by default:
/// Spark's `spark.sql.autoBroadcastJoinThreshold`.
pub const BROADCAST_JOIN_BYTES: u64 = 10 << 20;

/// How a join runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinStrategy {
    /// One side (the right one, or the left) is collected and broadcast to every executor;
    /// each partition of the other side joins with all of it, where it is.
    Broadcast { right: bool },
    /// Both sides are shuffled by their keys into as many partitions as the larger has; the
    /// partitions of equal index join.
    Shuffle,
}

/// How a join of sides of about `left_bytes` and `right_bytes` (their input's size) runs: the
/// smaller side that may be broadcast, if it is at most `threshold` bytes, else a shuffle. A
/// side may be broadcast when every row the join keeps of it is found by looking at one
/// partition of the other side: the right side of an inner, left, semi or anti join, the left
/// side of an inner or right one; never a side of a full join.
pub fn join_strategy(
    how: JoinKind,
    left_bytes: u64,
    right_bytes: u64,
    threshold: u64,
) -> JoinStrategy {
    broadcastable_sides(how, left_bytes, right_bytes)
        .into_iter()
        .filter(|(_, bytes)| *bytes <= threshold)
        .min_by_key(|(_, bytes)| *bytes)
        .map_or(JoinStrategy::Shuffle, |(right, _)| {
            JoinStrategy::Broadcast { right }
        })
}

/// How many times the broadcast threshold a side's estimate may be for the side to be
/// measured (see [`sides_to_measure`]): a side estimated larger is not worth the count.
pub const MEASURED_BROADCAST_FACTOR: u64 = 8;

/// The sides of a join that [`join_strategy`] shuffles which are still measured, smaller
/// estimate first (`true` for the right side): those that may be broadcast and whose estimate
/// is over `threshold` but at most [`MEASURED_BROADCAST_FACTOR`] times it. An estimate does
/// not shrink through a filter, so a side filtered down to a few rows is planned as large as
/// its files: Spark's adaptive execution measures a join's sides once their shuffles have run
/// and broadcasts one that turned out small. Tessera, whose map outputs tell the driver no
/// sizes, counts such a side's rows and broadcasts it if its [`measured_bytes`] are at most
/// `threshold`; a side found too large costs the count (its rows computed, not collected).
pub fn sides_to_measure(
    how: JoinKind,
    left_bytes: u64,
    right_bytes: u64,
    threshold: u64,
) -> Vec<bool> {
    let limit = threshold.saturating_mul(MEASURED_BROADCAST_FACTOR);
    let mut sides: Vec<(bool, u64)> = broadcastable_sides(how, left_bytes, right_bytes)
        .into_iter()
        .filter(|(_, bytes)| *bytes > threshold && *bytes <= limit)
        .collect();
    sides.sort_by_key(|(_, bytes)| *bytes);
    sides.into_iter().map(|(right, _)| right).collect()
}

/// Whether a DataFrame that `made_by` made (the step that made it, then the one that made its
/// input, and so on back) is an aggregation's result, seen through row-wise steps above it:
/// it has a row a group, however large its input.
pub fn is_aggregation(made_by: impl IntoIterator<Item = FrameStep>) -> bool {
    for step in made_by {
        match step {
            FrameStep::GroupBy { .. } => return true,
            FrameStep::Select(exprs) if exprs.iter().any(Expr::has_agg) => return true,
            FrameStep::Select(_)
            | FrameStep::Rename(_)
            | FrameStep::Drop(_)
            | FrameStep::WithColumns(_)
            | FrameStep::Filter(_) => {}
            _ => return false,
        }
    }
    false
}

/// The size a join plans a side by: its estimate, except that an aggregation estimated over
/// `threshold` is taken to be just over it, so that it is measured, and first
/// ([`sides_to_measure`]). An aggregation has as many rows as groups, which no estimate of its
/// input bounds (Spark's estimate does not shrink through one either; its adaptive execution
/// measures the aggregation's shuffle and broadcasts a result found small). Counting it runs
/// the aggregation, whose map outputs the join then reads rather than computing them again.
pub fn side_estimate(bytes: u64, aggregation: bool, threshold: u64) -> u64 {
    if aggregation && bytes > threshold {
        threshold.saturating_add(1)
    } else {
        bytes
    }
}

/// The size of a DataFrame of schema `schema` with `rows` rows, as Spark estimates a plan's
/// size once it knows its row count: rows times the row's width by default sizes
/// ([`row_width`]).
pub fn measured_bytes(rows: u64, schema: &Schema) -> u64 {
    rows.saturating_mul(row_width(schema))
}

/// The most rows of schema `schema` whose [`measured_bytes`] are at most `bytes`.
pub fn rows_within(bytes: u64, schema: &Schema) -> u64 {
    bytes / row_width(schema).max(1)
}

/// The sides of a join of kind `how` that may be broadcast, with their estimates (`true` for
/// the right side).
fn broadcastable_sides(how: JoinKind, left_bytes: u64, right_bytes: u64) -> Vec<(bool, u64)> {
    let right_may = matches!(
        how,
        JoinKind::Inner | JoinKind::Left | JoinKind::Semi | JoinKind::Anti
    );
    let left_may = matches!(how, JoinKind::Inner | JoinKind::Right);
    [
        (true, right_may, right_bytes),
        (false, left_may, left_bytes),
    ]
    .into_iter()
    .filter(|(_, may, _)| *may)
    .map(|(right, _, bytes)| (right, bytes))
    .collect()
}

/// Bytes a row of `schema` is taken to take, by Spark's default sizes of its types (a string
/// 20 bytes): what a projection's size estimate scales by.
pub fn row_width(schema: &Schema) -> u64 {
    schema
        .fields
        .iter()
        .map(|f| match f.dtype {
            DataType::Boolean | DataType::Int8 | DataType::UInt8 | DataType::Null => 1,
            DataType::Int16 | DataType::UInt16 => 2,
            DataType::Int32 | DataType::UInt32 | DataType::Float32 | DataType::Date => 4,
            DataType::String | DataType::Other(_) => 20,
            _ => 8,
        })
        .sum::<u64>()
        .max(1)
}

/// The size of a DataFrame of schema `output` made row by row of one of `bytes` bytes and
/// schema `input`, as Spark estimates a projection's: scaled by the ratio of their rows'
/// widths (a filter keeps the estimate; without statistics nothing says how many rows pass).
pub fn projected_bytes(bytes: u64, input: &Schema, output: &Schema) -> u64 {
    let scaled = u128::from(bytes) * u128::from(row_width(output)) / u128::from(row_width(input));
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// Prefix of the columns of partial aggregates, which only the shuffle between the two
/// phases sees.
const PARTIAL: &str = "__tessera_partial_";

/// How `step`, over a DataFrame of schema `input`, runs over partitions. `output` is the
/// schema polars gives the step over the whole DataFrame: the distributed result is cast to
/// it, so it has the types a single polars query would have.
pub fn distribute(
    step: FrameStep,
    input: &Schema,
    output: &Schema,
) -> Result<Distributed, FramePlanError> {
    match step {
        FrameStep::Select(exprs) if exprs.iter().any(Expr::has_agg) => {
            let rows: Vec<String> = exprs
                .iter()
                .filter(|e| !e.has_agg())
                .map(Expr::output_name)
                .collect();
            if !rows.is_empty() {
                return Err(FramePlanError::MixedSelect {
                    rows: rows.join(", "),
                });
            }
            aggregation(&[], &exprs, input, output)
        }
        FrameStep::Filter(predicate) if predicate.has_agg() => {
            Err(FramePlanError::AggregationInRowStep {
                step: "filter",
                expr: predicate.output_name(),
            })
        }
        FrameStep::WithColumns(exprs) if exprs.iter().any(Expr::has_agg) => {
            let agg = exprs.iter().find(|e| e.has_agg()).expect("one has");
            Err(FramePlanError::AggregationInRowStep {
                step: "with_columns",
                expr: agg.output_name(),
            })
        }
        FrameStep::GroupBy { keys, aggs } => aggregation(&keys, &aggs, input, output),
        FrameStep::Distinct { subset } => Ok(Distributed::Shuffle {
            before: Some(FrameStep::Distinct {
                subset: subset.clone(),
            }),
            keys: subset
                .clone()
                .unwrap_or_else(|| input.names().into_iter().map(String::from).collect()),
            after: FrameStep::Distinct { subset },
        }),
        // Each partition's first rows in a task of its own, where the partition is: gathered
        // into one task, the partitions of a DataFrame cached on two executors of 1 GiB (TPC-H
        // lineitem) had put one past its memory limit.
        FrameStep::Head(n) => Ok(Distributed::Shuffle {
            before: Some(FrameStep::Head(n)),
            keys: Vec::new(),
            after: FrameStep::Head(n),
        }),
        // Gathered into one partition, a sort of a DataFrame larger than an executor's memory
        // would not fit in the one task that sorts it.
        FrameStep::Sort { by, descending } => {
            Ok(Distributed::SortedRanges(SortKeys { by, descending }))
        }
        row_step @ (FrameStep::Select(_)
        | FrameStep::Filter(_)
        | FrameStep::WithColumns(_)
        | FrameStep::Drop(_)
        | FrameStep::Rename(_)) => Ok(Distributed::Narrow(row_step)),
    }
}

/// A limit of `n` rows over a DataFrame that `made_by` made from another, if it is better
/// planned over that other one: after a sort, the first `n` rows of each partition by it
/// ([`Distributed::FirstSorted`]), rather than every row gathered into one partition and
/// sorted there.
pub fn limit_over_its_input(n: u64, made_by: &FrameStep) -> Option<Distributed> {
    match made_by {
        sort @ FrameStep::Sort { .. } => Some(Distributed::FirstSorted {
            sort: sort.clone(),
            n,
        }),
        _ => None,
    }
}

/// `aggs` of the groups of `keys` (of the whole DataFrame without keys), in two phases where
/// every aggregation can be, else whole after a shuffle of the rows. `input` is the schema of
/// the rows aggregated.
fn aggregation(
    keys: &[Expr],
    aggs: &[Expr],
    input: &Schema,
    output: &Schema,
) -> Result<Distributed, FramePlanError> {
    let key_names: Vec<String> = keys.iter().map(Expr::output_name).collect();
    let key_columns: Vec<Expr> = key_names.iter().map(|k| col(k)).collect();
    let grouped = |keys: Vec<Expr>, aggs: Vec<Expr>| {
        if keys.is_empty() {
            FrameStep::Select(aggs)
        } else {
            FrameStep::GroupBy { keys, aggs }
        }
    };
    let mut partials = Vec::new();
    let finals: Option<Vec<Expr>> = aggs
        .iter()
        .map(|agg| {
            let name = agg.output_name();
            let combined = two_phase(unaliased(agg), input, &mut partials)?;
            let combined = match output.field(&name) {
                Some(field) => combined.cast(field.dtype.clone()),
                None => combined,
            };
            Some(combined.alias(&name))
        })
        .collect();
    match finals {
        Some(finals) => Ok(Distributed::Shuffle {
            before: Some(grouped(keys.to_vec(), partials)),
            keys: key_names,
            after: grouped(key_columns, finals),
        }),
        None => {
            if let Some(key) = keys.iter().find(|k| !matches!(k, Expr::Column(_))) {
                let agg = aggs
                    .iter()
                    .find(|a| two_phase(unaliased(a), input, &mut Vec::new()).is_none())
                    .map(Expr::output_name)
                    .unwrap_or_default();
                return Err(FramePlanError::ComputedKey {
                    key: key.output_name(),
                    agg,
                });
            }
            Ok(Distributed::Shuffle {
                before: None,
                keys: key_names,
                after: grouped(keys.to_vec(), aggs.to_vec()),
            })
        }
    }
}

/// `expr` without the aliases around it (the final phase names the column).
fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias { expr, .. } => unaliased(expr),
        other => other,
    }
}

/// The column the final phase reads partial aggregate `expr` from: one already in `partials`
/// (as `avg(x)` and `sum(x)` both need `x`'s sum: each is computed once per partition, as
/// Spark plans a query's equal aggregate functions once), else a new one.
fn partial(expr: Expr, partials: &mut Vec<Expr>) -> Expr {
    let index = partials
        .iter()
        .position(|p| unaliased(p) == &expr)
        .unwrap_or_else(|| {
            partials.push(expr.alias(&format!("{PARTIAL}{}", partials.len())));
            partials.len() - 1
        });
    col(&format!("{PARTIAL}{index}"))
}

/// The final phase of `expr` over the partial aggregates it adds to `partials`; `None` when
/// an aggregation in it cannot run in two phases (distinct counts, aggregations of
/// aggregations, a column outside any aggregation). `input` is the schema of the rows.
fn two_phase(expr: &Expr, input: &Schema, partials: &mut Vec<Expr>) -> Option<Expr> {
    let boxed = |e: &Expr, partials: &mut Vec<Expr>| two_phase(e, input, partials).map(Box::new);
    Some(match expr {
        Expr::Len => partial(Expr::Len, partials).sum(),
        Expr::Agg { expr: inner, .. } if inner.has_agg() => return None,
        Expr::Agg { func, expr: inner } => {
            let agg = |func| Expr::Agg {
                func,
                expr: inner.clone(),
            };
            match func {
                AggFunc::Sum | AggFunc::Count => partial(agg(*func), partials).sum(),
                AggFunc::Min => partial(agg(AggFunc::Min), partials).min(),
                AggFunc::Max => partial(agg(AggFunc::Max), partials).max(),
                AggFunc::First => partial(agg(AggFunc::First), partials).first(),
                AggFunc::Last => partial(agg(AggFunc::Last), partials).last(),
                AggFunc::Mean => {
                    // A mean is a float's; a column that is one already is summed as it is,
                    // so that `sum(x)` beside `avg(x)` is the same partial.
                    let summed = match inner.as_ref() {
                        Expr::Column(name)
                            if input
                                .field(name)
                                .is_some_and(|f| f.dtype == DataType::Float64) =>
                        {
                            inner.as_ref().clone()
                        }
                        other => other.clone().cast(DataType::Float64),
                    };
                    let sum = Expr::Agg {
                        func: AggFunc::Sum,
                        expr: Box::new(summed),
                    };
                    let sum = partial(sum, partials).sum();
                    let count = partial(agg(AggFunc::Count), partials).sum();
                    // polars' mean of no values is null, not NaN.
                    when(count.clone().eq(lit(0)))
                        .then(lit(Value::Null))
                        .otherwise(sum / count)
                }
                AggFunc::NUnique => return None,
            }
        }
        Expr::Column(_) => return None,
        Expr::Literal(_) => expr.clone(),
        Expr::Alias { expr, name } => Expr::Alias {
            expr: boxed(expr, partials)?,
            name: name.clone(),
        },
        Expr::Binary { left, op, right } => Expr::Binary {
            left: boxed(left, partials)?,
            op: *op,
            right: boxed(right, partials)?,
        },
        Expr::Unary { op, expr } => Expr::Unary {
            op: op.clone(),
            expr: boxed(expr, partials)?,
        },
        Expr::Cast { expr, to } => Expr::Cast {
            expr: boxed(expr, partials)?,
            to: to.clone(),
        },
        Expr::IsIn { expr, values } => Expr::IsIn {
            expr: boxed(expr, partials)?,
            values: values.clone(),
        },
        Expr::When {
            condition,
            then,
            otherwise,
        } => Expr::When {
            condition: boxed(condition, partials)?,
            then: boxed(then, partials)?,
            otherwise: boxed(otherwise, partials)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projection_is_estimated_by_the_width_of_the_columns_it_keeps() {
        let schema = |types: &[DataType]| Schema {
            fields: types
                .iter()
                .enumerate()
                .map(|(i, t)| Field {
                    name: format!("c{i}"),
                    dtype: t.clone(),
                })
                .collect(),
        };
        let customer = schema(&[DataType::Int64, DataType::String, DataType::String]);
        let keys = schema(&[DataType::Int64]);
        assert_eq!(row_width(&customer), 48);
        assert_eq!(projected_bytes(24 << 20, &customer, &keys), 4 << 20);
        // A small side once its unread columns are pruned: broadcast.
        assert_eq!(
            join_strategy(
                JoinKind::Inner,
                100 << 20,
                projected_bytes(24 << 20, &customer, &keys),
                BROADCAST_JOIN_BYTES
            ),
            JoinStrategy::Broadcast { right: true }
        );
        assert_eq!(projected_bytes(u64::MAX, &keys, &customer), u64::MAX);
    }
    use tessera_plan::frame::{Field, len};

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema {
            fields: fields
                .iter()
                .map(|(n, t)| Field {
                    name: n.to_string(),
                    dtype: t.clone(),
                })
                .collect(),
        }
    }

    #[test]
    fn row_steps_stay_in_their_partition() {
        let input = schema(&[("a", DataType::Int64)]);
        let step = FrameStep::Filter(col("a").gt(lit(1)));
        assert_eq!(
            distribute(step.clone(), &input, &input),
            Ok(Distributed::Narrow(step))
        );
    }

    #[test]
    fn a_sum_and_a_mean_run_partially_then_combine_after_a_shuffle_by_key() {
        let input = schema(&[("k", DataType::String), ("v", DataType::Int64)]);
        let output = schema(&[
            ("k", DataType::String),
            ("total", DataType::Int64),
            ("v", DataType::Float64),
            ("n", DataType::UInt32),
        ]);
        let step = FrameStep::GroupBy {
            keys: vec![col("k")],
            aggs: vec![
                col("v").sum().alias("total"),
                col("v").mean(),
                len().alias("n"),
            ],
        };
        let Distributed::Shuffle {
            before:
                Some(FrameStep::GroupBy {
                    keys,
                    aggs: partials,
                }),
            keys: shuffle_keys,
            after: FrameStep::GroupBy { aggs: finals, .. },
        } = distribute(step, &input, &output).unwrap()
        else {
            panic!("not a two-phase aggregation");
        };
        assert_eq!(keys, vec![col("k")]);
        assert_eq!(shuffle_keys, vec!["k".to_string()]);
        // sum; the mean's sum and count; len.
        assert_eq!(partials.len(), 4);
        assert_eq!(partials[0], col("v").sum().alias("__tessera_partial_0"));
        assert_eq!(partials[3], len().alias("__tessera_partial_3"));
        // Each final is cast to the type polars gives the whole query, under its name.
        assert_eq!(
            finals[0],
            col("__tessera_partial_0")
                .sum()
                .cast(DataType::Int64)
                .alias("total")
        );
        assert_eq!(
            finals.iter().map(Expr::output_name).collect::<Vec<_>>(),
            ["total", "v", "n"]
        );
    }

    #[test]
    fn equal_partial_aggregates_are_computed_once() {
        // TPC-H Q1's shape: a sum, a mean and a count of one float column.
        let input = schema(&[("k", DataType::String), ("v", DataType::Float64)]);
        let output = schema(&[
            ("k", DataType::String),
            ("s", DataType::Float64),
            ("v", DataType::Float64),
            ("c", DataType::UInt32),
        ]);
        let step = FrameStep::GroupBy {
            keys: vec![col("k")],
            aggs: vec![
                col("v").sum().alias("s"),
                col("v").mean(),
                col("v").count().alias("c"),
            ],
        };
        let Ok(Distributed::Shuffle {
            before: Some(FrameStep::GroupBy { aggs: partials, .. }),
            after: FrameStep::GroupBy { aggs: finals, .. },
            ..
        }) = distribute(step, &input, &output)
        else {
            panic!("not a two-phase aggregation");
        };
        // The mean's sum is the sum's partial, its count the count's.
        assert_eq!(
            partials,
            vec![
                col("v").sum().alias("__tessera_partial_0"),
                col("v").count().alias("__tessera_partial_1"),
            ]
        );
        assert_eq!(
            finals[2],
            col("__tessera_partial_1")
                .sum()
                .cast(DataType::UInt32)
                .alias("c")
        );
    }

    #[test]
    fn a_distinct_count_runs_whole_after_a_shuffle_unless_its_key_is_computed() {
        let input = schema(&[("k", DataType::String), ("v", DataType::Int64)]);
        let aggs = vec![col("v").n_unique()];
        let step = FrameStep::GroupBy {
            keys: vec![col("k")],
            aggs: aggs.clone(),
        };
        assert_eq!(
            distribute(step.clone(), &input, &input),
            Ok(Distributed::Shuffle {
                before: None,
                keys: vec!["k".into()],
                after: step,
            })
        );
        let computed = FrameStep::GroupBy {
            keys: vec![col("k").to_lowercase().alias("lower")],
            aggs,
        };
        let error = distribute(computed, &input, &input).unwrap_err();
        assert!(error.to_string().contains("with_columns"), "{error}");
    }

    #[test]
    fn aggregating_selects_aggregate_everything_into_one_partition_and_mixed_ones_are_refused() {
        let input = schema(&[("v", DataType::Int64)]);
        let Ok(Distributed::Shuffle {
            before: Some(FrameStep::Select(_)),
            keys,
            after: FrameStep::Select(finals),
        }) = distribute(FrameStep::Select(vec![col("v").max()]), &input, &input)
        else {
            panic!("not a two-phase aggregation");
        };
        assert!(keys.is_empty());
        assert_eq!(finals.len(), 1);
        let mixed = distribute(
            FrameStep::Select(vec![col("v"), col("v").sum().alias("s")]),
            &input,
            &input,
        );
        assert!(matches!(mixed, Err(FramePlanError::MixedSelect { .. })));
        let filter = distribute(
            FrameStep::Filter(col("v").gt(col("v").mean())),
            &input,
            &input,
        );
        assert!(matches!(
            filter,
            Err(FramePlanError::AggregationInRowStep { step: "filter", .. })
        ));
    }

    #[test]
    fn rows_within_a_size_are_the_most_whose_measure_fits_it() {
        let schema = schema(&[("id", DataType::Int64), ("price", DataType::Float64)]);
        let width = row_width(&schema);
        for bytes in [0, width - 1, width, 10 * width + 3] {
            let rows = rows_within(bytes, &schema);
            assert!(measured_bytes(rows, &schema) <= bytes, "{bytes}");
            assert!(measured_bytes(rows + 1, &schema) > bytes, "{bytes}");
        }
    }

    #[test]
    fn an_aggregation_is_measured_first_however_large_its_input() {
        let group_by = FrameStep::GroupBy {
            keys: vec![col("k")],
            aggs: vec![col("v").sum()],
        };
        let select = FrameStep::Select(vec![col("k").alias("key")]);
        assert!(is_aggregation([select.clone(), group_by.clone()]));
        assert!(is_aggregation([FrameStep::Select(vec![col("v").sum()])]));
        assert!(!is_aggregation([select]));
        assert!(!is_aggregation([FrameStep::Head(5), group_by]));
        let t = 1000;
        let limit = t * MEASURED_BROADCAST_FACTOR;
        let aggregated = side_estimate(limit * 100, true, t);
        assert_eq!(
            sides_to_measure(JoinKind::Inner, 3000, aggregated, t),
            [true, false]
        );
        // Under the threshold it is broadcast by its estimate; other sides keep theirs.
        assert_eq!(side_estimate(500, true, t), 500);
        assert_eq!(side_estimate(limit * 100, false, t), limit * 100);
    }

    #[test]
    fn sides_over_the_threshold_by_estimate_are_measured_smaller_first_within_a_bound() {
        let t = 1000;
        let limit = t * MEASURED_BROADCAST_FACTOR;
        assert_eq!(
            sides_to_measure(JoinKind::Inner, 5000, 3000, t),
            [true, false]
        );
        assert_eq!(
            sides_to_measure(JoinKind::Inner, 3000, 5000, t),
            [false, true]
        );
        // Beyond the bound, or under the threshold (broadcast without measuring): not measured.
        assert_eq!(
            sides_to_measure(JoinKind::Inner, limit + 1, 3000, t),
            [true]
        );
        assert_eq!(sides_to_measure(JoinKind::Inner, limit, 500, t), [false]);
        // Only a side that may be broadcast: a left join keeps every left row.
        assert_eq!(sides_to_measure(JoinKind::Left, 3000, 5000, t), [true]);
        assert!(sides_to_measure(JoinKind::Full, 3000, 5000, t).is_empty());
        // A threshold of 0 turns broadcasts off, measured ones too.
        assert!(sides_to_measure(JoinKind::Inner, 1, 1, 0).is_empty());
    }

    #[test]
    fn the_smaller_side_that_may_go_whole_to_every_executor_is_broadcast_under_the_threshold() {
        let t = BROADCAST_JOIN_BYTES;
        let broadcast = |right| JoinStrategy::Broadcast { right };
        assert_eq!(
            join_strategy(JoinKind::Inner, 1 << 30, 1000, t),
            broadcast(true)
        );
        assert_eq!(
            join_strategy(JoinKind::Inner, 1000, 1 << 30, t),
            broadcast(false)
        );
        assert_eq!(
            join_strategy(JoinKind::Inner, 500, 1000, t),
            broadcast(false)
        );
        // A left join keeps every left row: only its right side may be broadcast.
        assert_eq!(
            join_strategy(JoinKind::Left, 10, 1 << 30, t),
            JoinStrategy::Shuffle
        );
        assert_eq!(
            join_strategy(JoinKind::Left, 1 << 30, 10, t),
            broadcast(true)
        );
        assert_eq!(
            join_strategy(JoinKind::Right, 10, 1 << 30, t),
            broadcast(false)
        );
        assert_eq!(
            join_strategy(JoinKind::Anti, 1 << 30, 10, t),
            broadcast(true)
        );
        assert_eq!(
            join_strategy(JoinKind::Full, 10, 10, t),
            JoinStrategy::Shuffle
        );
        // Both sides too large, or a threshold of 0: shuffle.
        assert_eq!(
            join_strategy(JoinKind::Inner, t + 1, t + 1, t),
            JoinStrategy::Shuffle
        );
        assert_eq!(
            join_strategy(JoinKind::Inner, 10, 10, 0),
            JoinStrategy::Shuffle
        );
    }

    #[test]
    fn a_limit_after_a_sort_is_planned_over_what_was_sorted_and_after_other_steps_over_its_input() {
        let sort = FrameStep::Sort {
            by: vec!["v".into()],
            descending: vec![true],
        };
        assert_eq!(
            limit_over_its_input(10, &sort),
            Some(Distributed::FirstSorted { sort, n: 10 })
        );
        assert_eq!(
            limit_over_its_input(10, &FrameStep::Filter(col("v").gt(lit(1)))),
            None
        );
        assert_eq!(limit_over_its_input(10, &FrameStep::Head(20)), None);
    }

    #[test]
    fn a_limit_takes_the_first_rows_of_each_partition_then_of_them_all() {
        let input = schema(&[("v", DataType::Int64)]);
        assert_eq!(
            distribute(FrameStep::Head(5), &input, &input),
            Ok(Distributed::Shuffle {
                before: Some(FrameStep::Head(5)),
                keys: Vec::new(),
                after: FrameStep::Head(5),
            })
        );
    }

    #[test]
    fn a_sort_is_planned_by_ranges_of_its_keys() {
        let input = schema(&[("v", DataType::Int64), ("w", DataType::String)]);
        let sort = FrameStep::Sort {
            by: vec!["w".into(), "v".into()],
            descending: vec![true, false],
        };
        assert_eq!(
            distribute(sort, &input, &input),
            Ok(Distributed::SortedRanges(SortKeys {
                by: vec!["w".into(), "v".into()],
                descending: vec![true, false],
            }))
        );
    }
}
