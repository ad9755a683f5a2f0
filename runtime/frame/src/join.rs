//! Joins of two DataFrames with polars: a partition's rows of each side (after a shuffle that
//! put equal keys in the same partition of both), or a partition of the large side with all of
//! a small side broadcast to every executor. Either way it is polars' own join, so the rows,
//! columns and their names are those of one polars query over the whole of both sides.

use crate::convert::{schema_from_polars, schema_to_polars};
use crate::error::{FrameError, guard};
use polars_core::prelude::{DataFrame, SchemaRef};
use polars_lazy::prelude::{IntoLazy, JoinArgs, JoinType, LazyFrame, col};
use tessera_plan::frame::{JoinKind, Schema};

fn join_type(how: JoinKind) -> JoinType {
    match how {
        JoinKind::Inner => JoinType::Inner,
        JoinKind::Left => JoinType::Left,
        JoinKind::Right => JoinType::Right,
        JoinKind::Full => JoinType::Full,
        JoinKind::Semi => JoinType::Semi,
        JoinKind::Anti => JoinType::Anti,
    }
}

fn joined(
    left: DataFrame,
    right: DataFrame,
    left_on: &[String],
    right_on: &[String],
    how: JoinKind,
) -> LazyFrame {
    let on = |names: &[String]| names.iter().map(|n| col(n.as_str())).collect::<Vec<_>>();
    left.lazy().join(
        right.lazy(),
        on(left_on),
        on(right_on),
        JoinArgs::new(join_type(how)),
    )
}

/// `left` joined with `right` on `left_on` = `right_on`, as polars joins them.
pub fn join(
    left: DataFrame,
    right: DataFrame,
    left_on: &[String],
    right_on: &[String],
    how: JoinKind,
) -> Result<DataFrame, FrameError> {
    guard("a join", || {
        joined(left, right, left_on, right_on, how)
            .collect()
            .map_err(FrameError::polars("a join"))
    })
}

/// The schema of such a join of DataFrames of schemas `left` and `right` (a key missing on a
/// side, or keys of types that do not compare, is an error here, before any job runs).
pub fn join_schema(
    left: &Schema,
    right: &Schema,
    left_on: &[String],
    right_on: &[String],
    how: JoinKind,
) -> Result<Schema, FrameError> {
    let left = DataFrame::empty_with_schema(&schema_to_polars(left)?);
    let right = DataFrame::empty_with_schema(&schema_to_polars(right)?);
    let schema = polars_schema(left, right, left_on, right_on, how)?;
    Ok(schema_from_polars(&schema))
}

/// polars' schema for `left` joined with `right` (their rows do not matter).
pub(crate) fn polars_schema(
    left: DataFrame,
    right: DataFrame,
    left_on: &[String],
    right_on: &[String],
    how: JoinKind,
) -> Result<SchemaRef, FrameError> {
    guard("planning a join", || {
        joined(left, right, left_on, right_on, how)
            .collect_schema()
            .map_err(FrameError::polars("planning a join"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_core::df;

    #[test]
    fn a_left_join_keeps_every_left_row_and_names_columns_as_polars_does() {
        let orders = df!("customer" => [1i64, 2, 3], "amount" => [10i64, 20, 30]).unwrap();
        let customers = df!("id" => [1i64, 2], "name" => ["ann", "bob"]).unwrap();
        let keys = (vec!["customer".to_string()], vec!["id".to_string()]);
        let (left, right) = (
            schema_from_polars(orders.schema()),
            schema_from_polars(customers.schema()),
        );
        let out = join(orders, customers, &keys.0, &keys.1, JoinKind::Left).unwrap();
        assert_eq!(out.height(), 3);
        let names: Vec<&str> = out.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["customer", "amount", "name"]);
        // The schema is known before any row is joined; a missing key is named.
        let schema = join_schema(&left, &right, &keys.0, &keys.1, JoinKind::Left).unwrap();
        assert_eq!(schema, schema_from_polars(out.schema()));
        let missing = ["nobody".to_string()];
        let error = join_schema(&left, &right, &missing, &keys.1, JoinKind::Inner).unwrap_err();
        assert!(error.to_string().contains("nobody"), "{error}");
    }
}
