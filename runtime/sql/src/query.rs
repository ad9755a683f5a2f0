//! A whole query: its `WITH` queries, its body (a `SELECT`, or a `UNION` of bodies), and the
//! `ORDER BY` and `LIMIT` after it.
//!
//! Planned by [`Planner`]'s methods here, the planner's entry: a subquery in `FROM` calls them
//! on the planner it was given, without importing this file.

use crate::error::SqlError;
use crate::order::{limit_of, order_items, ordered};
use crate::planner::{Planned, Planner};
use crate::relation::Relation;
use crate::select;
use sqlparser::ast::{self as sql, SetExpr, SetOperator, SetQuantifier};
use tessera_plan::frame::{FrameStep, col};

impl Planner<'_> {
    /// A query, its `WITH` queries in reach of its body only.
    pub fn query(&mut self, query: &sql::Query) -> Result<Planned, SqlError> {
        let outer = self.with.len();
        let planned = self.query_in_reach(query);
        self.with.truncate(outer);
        planned
    }

    fn query_in_reach(&mut self, query: &sql::Query) -> Result<Planned, SqlError> {
        if query.fetch.is_some()
            || !query.locks.is_empty()
            || query.for_clause.is_some()
            || query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return Err(SqlError::unsupported(
                format!("the query `{query}`"),
                "write SELECT ... FROM ... [WHERE] [GROUP BY] [HAVING] [ORDER BY] [LIMIT]",
            ));
        }
        if let Some(with) = &query.with {
            if with.recursive {
                return Err(SqlError::unsupported(
                    "WITH RECURSIVE",
                    "iterate in the cell with the DataFrame API",
                ));
            }
            for named in &with.cte_tables {
                if !named.alias.columns.is_empty() {
                    return Err(SqlError::unsupported(
                        format!("column names after `{}`", named.alias.name),
                        "name the columns with AS inside the WITH query",
                    ));
                }
                let planned = self.query(&named.query)?;
                self.with.push((named.alias.name.value.clone(), planned));
            }
        }
        let order = order_items(query.order_by.as_ref())?;
        let limit = limit_of(query.limit_clause.as_ref())?;
        match query.body.as_ref() {
            SetExpr::Select(body) => select::plan(self, body, &order, limit),
            body => {
                let planned = self.set_expr(body)?;
                ordered(planned, &order, limit)
            }
        }
    }

    fn set_expr(&mut self, body: &SetExpr) -> Result<Planned, SqlError> {
        match body {
            SetExpr::Select(body) => select::plan(self, body, &[], None),
            SetExpr::Query(query) => self.query(query),
            SetExpr::SetOperation {
                left,
                op: SetOperator::Union,
                set_quantifier,
                right,
            } => {
                let distinct = match set_quantifier {
                    SetQuantifier::All => false,
                    SetQuantifier::Distinct | SetQuantifier::None => true,
                    other => {
                        return Err(SqlError::unsupported(
                            format!("UNION {other}"),
                            "write UNION or UNION ALL, the columns in the same order",
                        ));
                    }
                };
                let left = self.set_expr(left)?;
                let right = self.set_expr(right)?;
                union(left, right, distinct)
            }
            SetExpr::SetOperation { op, .. } => Err(SqlError::unsupported(
                op.to_string(),
                "use UNION [ALL], or a join (LEFT JOIN ... WHERE key IS NULL for EXCEPT)",
            )),
            other => Err(SqlError::unsupported(
                format!("`{other}`"),
                "sc.sql runs SELECT queries",
            )),
        }
    }
}

/// The rows of both, as columns of `left`'s names (matched by position), each row once when
/// `distinct`.
fn union(left: Planned, right: Planned, distinct: bool) -> Result<Planned, SqlError> {
    let (names, theirs) = (left.scope.frame_columns(), right.scope.frame_columns());
    if names.len() != theirs.len() {
        return Err(SqlError::UnionWidth {
            left: names.len(),
            right: theirs.len(),
        });
    }
    let right = if names == theirs {
        right.relation
    } else {
        let renamed = theirs
            .iter()
            .zip(&names)
            .map(|(theirs, name)| col(theirs).alias(name))
            .collect();
        right.relation.then(FrameStep::Select(renamed))
    };
    let mut relation = Relation::Union(vec![left.relation, right]);
    if distinct {
        relation = relation.then(FrameStep::Distinct { subset: None });
    }
    Ok(Planned::result(relation, names))
}
