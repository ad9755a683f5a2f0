//! `ORDER BY` and `LIMIT`: a query's items checked for what Tessera sorts by, the number of
//! rows it keeps, and a plan sorted and cut by them; with the whole numbers that name a result
//! column by its position (`ORDER BY 2`, `GROUP BY 1`). A file of its own, below the query
//! and the `SELECT` that both sort, and the eager aggregation that reads the items.

use crate::error::SqlError;
use crate::planner::Planned;
use sqlparser::ast as sql;
use tessera_plan::frame::FrameStep;

/// An `ORDER BY` item.
pub(crate) struct OrderItem<'q> {
    pub expr: &'q sql::Expr,
    pub descending: bool,
}

/// The `ORDER BY` items, each checked for what Tessera sorts by.
pub(crate) fn order_items(order: Option<&sql::OrderBy>) -> Result<Vec<OrderItem<'_>>, SqlError> {
    let Some(order) = order else {
        return Ok(Vec::new());
    };
    let sql::OrderByKind::Expressions(items) = &order.kind else {
        return Err(SqlError::unsupported(
            "ORDER BY ALL",
            "name the columns to sort by",
        ));
    };
    items
        .iter()
        .map(|item| {
            if item.options.nulls_first.is_some() || item.with_fill.is_some() {
                return Err(SqlError::unsupported(
                    format!("ORDER BY {item}"),
                    "sort by columns ASC or DESC (nulls sort first)",
                ));
            }
            Ok(OrderItem {
                expr: &item.expr,
                descending: item.options.asc == Some(false),
            })
        })
        .collect()
}

/// The number of rows `LIMIT` keeps (`None`: all).
pub(crate) fn limit_of(limit: Option<&sql::LimitClause>) -> Result<Option<u64>, SqlError> {
    match limit {
        None => Ok(None),
        Some(sql::LimitClause::LimitOffset {
            limit: None,
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => Ok(None),
        Some(sql::LimitClause::LimitOffset {
            limit: Some(expr),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => whole_number(expr).map(Some).ok_or_else(|| {
            SqlError::unsupported(format!("LIMIT {expr}"), "write LIMIT n, n a whole number")
        }),
        Some(other) => Err(SqlError::unsupported(
            format!("`{other}`"),
            "write LIMIT n without OFFSET (sort, and filter on the sort key, to page)",
        )),
    }
}

/// The value of a whole number literal.
pub(crate) fn whole_number(expr: &sql::Expr) -> Option<u64> {
    match expr {
        sql::Expr::Value(value) => match &value.value {
            sql::Value::Number(text, _) => text.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Sorted by `order` (result columns by name or position) and cut to `limit` rows.
pub(crate) fn ordered(
    planned: Planned,
    order: &[OrderItem<'_>],
    limit: Option<u64>,
) -> Result<Planned, SqlError> {
    let columns = planned.scope.frame_columns();
    let mut by = Vec::new();
    for item in order {
        let column = match item.expr {
            sql::Expr::Identifier(ident) => planned
                .scope
                .resolve(std::slice::from_ref(&ident.value))?
                .column
                .clone(),
            other => match whole_number(other) {
                Some(position) if (1..=columns.len() as u64).contains(&position) => {
                    columns[position as usize - 1].clone()
                }
                _ => {
                    return Err(SqlError::unsupported(
                        format!("ORDER BY {other} after a UNION"),
                        "order by a result column's name or position",
                    ));
                }
            },
        };
        by.push((column, item.descending));
    }
    Ok(sorted(planned, by, limit))
}

/// `planned` sorted by `by` (column, descending) and cut to `limit` rows.
pub(crate) fn sorted(mut planned: Planned, by: Vec<(String, bool)>, limit: Option<u64>) -> Planned {
    if !by.is_empty() {
        let (by, descending) = by.into_iter().unzip();
        planned = planned.then(FrameStep::Sort { by, descending });
    }
    match limit {
        Some(n) => planned.then(FrameStep::Head(n)),
        None => planned,
    }
}
