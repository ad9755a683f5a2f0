//! A whole query: its `WITH` queries, its body (a `SELECT`, or a `UNION` of bodies), and the
//! `ORDER BY` and `LIMIT` after it.

use crate::scope::{Scope, ScopeColumn};
use crate::{Relation, SqlError, Tables, select};
use sqlparser::ast::{self as sql, SetExpr, SetOperator, SetQuantifier, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use tessera_plan::frame::{FrameStep, col};

/// Parses `text`, which must be one query.
pub(crate) fn parse(text: &str) -> Result<sql::Query, SqlError> {
    let statements = Parser::parse_sql(&GenericDialect {}, text)
        .map_err(|error| SqlError::Parse(error.to_string()))?;
    match <[Statement; 1]>::try_from(statements) {
        Ok([Statement::Query(query)]) => Ok(*query),
        Ok([other]) => {
            let text = other.to_string();
            let verb = text.split_whitespace().next().unwrap_or("").to_string();
            Err(SqlError::NotOneQuery(format!("a {verb} statement")))
        }
        Err(statements) => Err(SqlError::NotOneQuery(format!(
            "{} statements",
            statements.len()
        ))),
    }
}

/// A relation planned so far, with the columns SQL can name in it.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    pub relation: Relation,
    pub scope: Scope,
}

impl Planned {
    /// This relation with `step` applied; the same columns.
    pub fn then(self, step: FrameStep) -> Planned {
        Planned {
            relation: self.relation.then(step),
            scope: self.scope,
        }
    }

    /// A query's result: columns `names`, which are its DataFrame's columns.
    pub fn result(relation: Relation, names: Vec<String>) -> Planned {
        let columns = names
            .into_iter()
            .map(|name| ScopeColumn {
                qualifier: None,
                column: name.clone(),
                name,
            })
            .collect();
        Planned {
            relation,
            scope: Scope { columns },
        }
    }
}

/// An `ORDER BY` item.
pub(crate) struct OrderItem<'q> {
    pub expr: &'q sql::Expr,
    pub descending: bool,
}

/// Plans queries over `tables` and the `WITH` queries in reach.
pub(crate) struct Planner<'t> {
    tables: &'t Tables,
    with: Vec<(String, Planned)>,
}

impl<'t> Planner<'t> {
    pub fn new(tables: &'t Tables) -> Planner<'t> {
        Planner {
            tables,
            with: Vec::new(),
        }
    }

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

    /// The columns of the registered table `name`, if no `WITH` query in reach has that name.
    pub fn registered_columns(&self, name: &str) -> Option<Vec<String>> {
        if self.with.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return None;
        }
        self.tables.get(name).cloned()
    }

    /// The table or `WITH` query `name` (an exact match first, else one that differs in case
    /// only), its columns known as `qualifier`'s.
    pub fn table(&self, name: &str, qualifier: &str) -> Result<Planned, SqlError> {
        let with = |exact: bool| {
            self.with
                .iter()
                .rev()
                .find(|(n, _)| n == name || (!exact && n.eq_ignore_ascii_case(name)))
        };
        if let Some((_, planned)) = with(true).or_else(|| with(false)) {
            return Ok(Planned {
                relation: planned.relation.clone(),
                scope: planned.scope.clone().qualified(qualifier),
            });
        }
        let registered = self.tables.get_key_value(name).or_else(|| {
            self.tables
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
        });
        match registered {
            Some((name, columns)) => Ok(Planned {
                relation: Relation::Table(name.clone()),
                scope: Scope::of_table(qualifier, columns),
            }),
            None => Err(SqlError::UnknownTable {
                name: name.to_string(),
                known: self.tables.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
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
fn limit_of(limit: Option<&sql::LimitClause>) -> Result<Option<u64>, SqlError> {
    match limit {
        None => Ok(None),
        Some(sql::LimitClause::LimitOffset {
            limit,
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => match limit {
            None => Ok(None),
            Some(expr) => whole_number(expr).map(Some).ok_or_else(|| {
                SqlError::unsupported(format!("LIMIT {expr}"), "write LIMIT n, n a whole number")
            }),
        },
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
fn ordered(
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
