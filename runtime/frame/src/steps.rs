//! One partition's DataFrame through a list of [`FrameStep`]s, as one polars lazy query; and
//! what such a query's result schema and plan are, for the driver's planning and `explain`.

use crate::convert::{expr_to_polars, exprs_to_polars, schema_from_polars, schema_to_polars};
use crate::error::{FrameError, guard};
use crate::mask::RowTest;
use crate::{counts, mask, packed_keys};
use polars_core::prelude::{DataFrame, PlSmallStr, SortMultipleOptions, UniqueKeepStrategy};
use polars_lazy::prelude::{Engine, IntoLazy, LazyFrame, Selector, col};
use std::sync::OnceLock;
use tessera_plan::frame::{FrameStep, Schema};

fn names(columns: &[String]) -> Vec<PlSmallStr> {
    columns.iter().map(|c| PlSmallStr::from_str(c)).collect()
}

/// `lazy` followed by `step`.
fn add_step(lazy: LazyFrame, step: &FrameStep) -> Result<LazyFrame, FrameError> {
    Ok(match step {
        FrameStep::Select(exprs) => lazy.select(exprs_to_polars(exprs)?),
        FrameStep::Filter(predicate) => lazy.filter(expr_to_polars(predicate)?),
        FrameStep::WithColumns(exprs) => lazy.with_columns(exprs_to_polars(exprs)?),
        FrameStep::Drop(columns) => lazy.drop(Selector::ByName {
            names: names(columns).into(),
            strict: true,
        }),
        FrameStep::Rename(pairs) => {
            let (old, new): (Vec<&str>, Vec<&str>) =
                pairs.iter().map(|(o, n)| (o.as_str(), n.as_str())).unzip();
            lazy.rename(old, new, true)
        }
        FrameStep::Head(n) => lazy.limit((*n).min(u64::from(u32::MAX)) as _),
        FrameStep::Distinct { subset } => lazy.unique_stable_generic(
            subset
                .as_ref()
                .map(|columns| columns.iter().map(|c| col(c.as_str())).collect()),
            UniqueKeepStrategy::First,
        ),
        FrameStep::Sort { by, descending } => lazy.sort(
            names(by),
            SortMultipleOptions::default()
                .with_order_descending_multi(descending.clone())
                .with_maintain_order(true),
        ),
        // Groups in no particular order, as polars' own `group_by` gives them (keeping their
        // first rows' order costs a sort of the groups, and a shuffle reorders them anyway).
        FrameStep::GroupBy { keys, aggs } => lazy
            .group_by(exprs_to_polars(keys)?)
            .agg(exprs_to_polars(aggs)?),
    })
}

/// `frame` as a lazy query through `steps`.
fn query(frame: DataFrame, steps: &[FrameStep]) -> Result<LazyFrame, FrameError> {
    steps.iter().try_fold(frame.lazy(), add_step)
}

/// The engine a partition of `rows` rows runs its steps on. From [`STREAMING_ROWS`] rows,
/// polars' streaming engine, which Python polars runs a query on by default: it feeds a filter
/// into an aggregation in morsels where the in-memory engine materializes the rows kept and
/// gathers each aggregate's values by group. Measured on TPC-H Q1 over cached lineitem
/// (`local[2]`, six partitions of 1M rows), 0.17 s against 0.39 s in memory (with the steps of
/// a chain fused). What the streaming engine lacks, polars runs in memory itself.
fn engine(rows: usize) -> Engine {
    if rows >= streaming_rows() {
        Engine::Streaming
    } else {
        Engine::InMemory
    }
}

/// The rows from which a partition's steps run on polars' streaming engine: below, starting
/// its pipeline costs more than it saves. The final aggregations of TPC-H Q3 and Q10 (a few
/// thousand rows a task) took 1.2-1.5 ms a task in memory against 1.8-2.9 ms streaming.
const STREAMING_ROWS: usize = 1 << 16;

/// [`STREAMING_ROWS`], or `TESSERA_FRAME_STREAMING_ROWS` where set: tests set it to 0 so that
/// their small partitions run on the engine large ones do.
fn streaming_rows() -> usize {
    static ROWS: OnceLock<usize> = OnceLock::new();
    *ROWS.get_or_init(|| {
        std::env::var("TESSERA_FRAME_STREAMING_ROWS")
            .ok()
            .and_then(|rows| rows.parse().ok())
            .unwrap_or(STREAMING_ROWS)
    })
}

/// Runs `steps` over `frame`: the comparisons of a leading filter that [`mask`] evaluates
/// there, the rest in polars, with a final aggregation's short string keys packed into one
/// ([`packed_keys`]) and its counts of columns that hold no nulls made one ([`counts`]).
pub fn run_steps(frame: DataFrame, steps: &[FrameStep]) -> Result<DataFrame, FrameError> {
    run_steps_testing(frame, steps, None)
}

/// Runs `steps` over `frame` as [`run_steps`] does, with `also` anded into the mask of their
/// leading filter where it applies.
pub(crate) fn run_steps_testing(
    frame: DataFrame,
    steps: &[FrameStep],
    also: Option<&RowTest>,
) -> Result<DataFrame, FrameError> {
    if steps.is_empty() {
        return Ok(frame);
    }
    guard("a DataFrame operation", || {
        let (frame, packed, packing) = match packed_keys::packed(&frame, steps) {
            Some((frame, steps, packing)) => (frame, Some(steps), Some(packing)),
            None => (frame, None, None),
        };
        let steps = packed.as_deref().unwrap_or(steps);
        let shared = counts::shared_lengths(&frame, steps);
        let steps = shared.as_deref().unwrap_or(steps);
        let result = match mask::masked(&frame, steps, also) {
            Some((frame, steps)) => run_in_polars(frame, &steps),
            None => run_in_polars(frame, steps),
        }?;
        match packing {
            Some(packing) => packed_keys::unpacked(result, &packing),
            None => Ok(result),
        }
    })
}

/// Runs `steps` over `frame` as one polars query.
pub(crate) fn run_in_polars(
    frame: DataFrame,
    steps: &[FrameStep],
) -> Result<DataFrame, FrameError> {
    let engine = engine(frame.height());
    query(frame, steps)?
        .collect_with_engine(engine)
        .map(|result| result.unwrap_single())
        .map_err(FrameError::polars("a DataFrame operation"))
}

/// The schema `steps` make of a DataFrame of schema `input`, as polars resolves it (a step
/// that names a missing column, or mixes types that do not mix, is an error here, before any
/// job runs).
pub fn output_schema(input: &Schema, steps: &[FrameStep]) -> Result<Schema, FrameError> {
    let empty = DataFrame::empty_with_schema(&schema_to_polars(input)?);
    guard("planning a DataFrame operation", || {
        let mut lazy = query(empty, steps)?;
        let schema = lazy
            .collect_schema()
            .map_err(FrameError::polars("planning a DataFrame operation"))?;
        Ok(schema_from_polars(&schema))
    })
}

/// polars' optimized plan of `steps` over a DataFrame of schema `input`, as `explain` shows it.
pub fn describe(input: &Schema, steps: &[FrameStep]) -> Result<String, FrameError> {
    let empty = DataFrame::empty_with_schema(&schema_to_polars(input)?);
    guard("describing a DataFrame operation", || {
        query(empty, steps)?
            .describe_optimized_plan()
            .map_err(FrameError::polars("describing a DataFrame operation"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_core::df;
    use tessera_plan::frame::{DataType, Field, col as c, len, lit};

    fn sales() -> DataFrame {
        df!(
            "region" => ["north", "south", "north", "east"],
            "amount" => [10i64, 20, 30, 40],
        )
        .unwrap()
    }

    #[test]
    fn steps_run_in_order_as_polars_would() {
        let out = run_steps(
            sales(),
            &[
                FrameStep::Filter(c("amount").gt(lit(15))),
                FrameStep::GroupBy {
                    keys: vec![c("region")],
                    aggs: vec![c("amount").sum().alias("total"), len().alias("n")],
                },
                FrameStep::Sort {
                    by: vec!["region".into()],
                    descending: vec![false],
                },
            ],
        )
        .unwrap();
        let expected = df!(
            "region" => ["east", "north", "south"],
            "total" => [40i64, 30, 20],
            "n" => [1u32, 1, 1],
        )
        .unwrap();
        assert!(out.equals(&expected), "{out}");
    }

    #[test]
    fn the_output_schema_is_known_before_a_job_runs_and_a_missing_column_is_named() {
        let input = Schema {
            fields: vec![
                Field {
                    name: "region".into(),
                    dtype: DataType::String,
                },
                Field {
                    name: "amount".into(),
                    dtype: DataType::Int64,
                },
            ],
        };
        let schema = output_schema(
            &input,
            &[FrameStep::Select(vec![
                (c("amount") * lit(2.5)).alias("scaled"),
                c("region"),
            ])],
        )
        .unwrap();
        assert_eq!(schema.names(), ["scaled", "region"]);
        assert_eq!(schema.fields[0].dtype, DataType::Float64);
        let error = output_schema(&input, &[FrameStep::Filter(c("price").gt(lit(1)))]).unwrap_err();
        assert!(error.to_string().contains("price"), "{error}");
    }
}
