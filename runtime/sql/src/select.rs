//! A `SELECT` body: its result columns, computed row by row, or — with `GROUP BY`, `HAVING` or
//! an aggregate among them — from the groups' aggregates; then `DISTINCT`, `ORDER BY` and
//! `LIMIT`.
//!
//! An aggregating query is planned as a cell would write it: computed group keys added as
//! columns, one `group_by(keys).agg(...)` of every distinct aggregate the query uses, then the
//! `HAVING` filter and the result columns as expressions of keys and aggregates. The driver
//! runs that aggregation in two phases around a shuffle by the keys.

use crate::eager;
use crate::error::SqlError;
use crate::expr::translate;
use crate::from;
use crate::order::{OrderItem, sorted, whole_number};
use crate::planner::{Planned, Planner};
use crate::relation::Relation;
use crate::scope::{Scope, fresh_name, qualifiers_of};
use sqlparser::ast::{self as sql, SelectItem, SelectItemQualifiedWildcardKind};
use tessera_plan::frame::{Expr, FrameStep, col};

/// A result column: its expression and name.
#[derive(Clone, Debug)]
struct Item {
    expr: Expr,
    name: String,
}

impl Item {
    /// The expression named as the result column (no alias when it already has the name).
    fn named(&self) -> Expr {
        match &self.expr {
            Expr::Column(c) if *c == self.name => self.expr.clone(),
            e => e.clone().alias(&self.name),
        }
    }
}

/// What an `ORDER BY` item sorts by.
enum SortKey {
    /// A result column.
    Result(String),
    /// An expression that is not one.
    Computed(Expr),
}

/// Plans a `SELECT` body with the `ORDER BY` and `LIMIT` of its query.
pub(crate) fn plan(
    planner: &mut Planner<'_>,
    select: &sql::Select,
    order: &[OrderItem<'_>],
    limit: Option<u64>,
) -> Result<Planned, SqlError> {
    unsupported_clauses(select)?;
    let columns_of = |name: &str| planner.registered_columns(name);
    // Summing ahead of a join is an optimisation, never a new error: where the rewritten
    // query does not plan, the query is planned as written.
    if let Some(summed_first) = eager::rewritten(select, order, &columns_of)
        && let Ok(planned) = plan(planner, &summed_first, order, limit)
    {
        return Ok(planned);
    }
    let from = from::plan(planner, &select.from, select.selection.as_ref())?;
    let items = items(select, &from.scope)?;
    let group_by = match &select.group_by {
        sql::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs,
        other => {
            return Err(SqlError::unsupported(
                format!("`{other}`"),
                "GROUP BY the columns or expressions to group on",
            ));
        }
    };
    let distinct = match &select.distinct {
        None | Some(sql::Distinct::All) => false,
        Some(sql::Distinct::Distinct) => true,
        Some(sql::Distinct::On(_)) => {
            return Err(SqlError::unsupported(
                "DISTINCT ON",
                "GROUP BY the columns, aggregating the others (min, max, ...)",
            ));
        }
    };
    let aggregating =
        !group_by.is_empty() || select.having.is_some() || items.iter().any(|i| i.expr.has_agg());
    let (relation, items, keys) = if aggregating {
        aggregated(from, items, group_by, select.having.as_ref(), order)?
    } else {
        let keys = sort_keys(order, &items, |e| translate(e, &from.scope))?;
        (from.relation, items, keys)
    };
    finished(relation, items, keys, distinct, limit)
}

fn unsupported_clauses(select: &sql::Select) -> Result<(), SqlError> {
    let unsupported = select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.connect_by.is_empty()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || select.value_table_mode.is_some()
        || select.exclude.is_some()
        || select.select_modifiers.is_some();
    if unsupported {
        return Err(SqlError::unsupported(
            format!("the query `{select}`"),
            "write SELECT ... FROM ... [WHERE] [GROUP BY] [HAVING] [ORDER BY] [LIMIT]",
        ));
    }
    Ok(())
}

/// The result columns, `*` and `t.*` expanded. A column of a join's other side whose name
/// `*` already gave is left out when it is the same column (a key of an inner join), else named
/// `table.column`.
fn items(select: &sql::Select, scope: &Scope) -> Result<Vec<Item>, SqlError> {
    let mut items: Vec<Item> = Vec::new();
    let expand = |items: &mut Vec<Item>, columns: Vec<&crate::scope::ScopeColumn>| {
        for c in columns {
            let expr = col(&c.column);
            match items.iter().find(|i| i.name == c.name) {
                Some(earlier) if earlier.expr == expr => {}
                Some(_) => items.push(Item {
                    expr,
                    name: format!("{}.{}", c.qualifier.as_deref().unwrap_or("t"), c.name),
                }),
                None => items.push(Item {
                    expr,
                    name: c.name.clone(),
                }),
            }
        }
    };
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) => {
                let name = match e {
                    sql::Expr::Identifier(ident) => scope
                        .resolve(std::slice::from_ref(&ident.value))?
                        .name
                        .clone(),
                    sql::Expr::CompoundIdentifier(idents) => {
                        let parts: Vec<String> = idents.iter().map(|i| i.value.clone()).collect();
                        scope.resolve(&parts)?.name.clone()
                    }
                    other => other.to_string(),
                };
                items.push(Item {
                    expr: translate(e, scope)?,
                    name,
                });
            }
            SelectItem::ExprWithAlias { expr, alias } => items.push(Item {
                expr: translate(expr, scope)?,
                name: alias.value.clone(),
            }),
            SelectItem::Wildcard(options) if plain_wildcard(options) => {
                expand(&mut items, scope.columns.iter().collect());
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                options,
            ) if plain_wildcard(options) => {
                let columns = scope.of_qualifier(&name.to_string());
                if columns.is_empty() {
                    return Err(SqlError::UnknownTable {
                        name: name.to_string(),
                        known: qualifiers_of(scope),
                    });
                }
                expand(&mut items, columns);
            }
            other => {
                return Err(SqlError::unsupported(
                    format!("`{other}` in SELECT"),
                    "select expressions, *, or table.*",
                ));
            }
        }
    }
    for (i, item) in items.iter().enumerate() {
        if items[..i].iter().any(|earlier| earlier.name == item.name) {
            return Err(SqlError::DuplicateName(item.name.clone()));
        }
    }
    Ok(items)
}

fn plain_wildcard(options: &sql::WildcardAdditionalOptions) -> bool {
    options.opt_ilike.is_none()
        && options.opt_exclude.is_none()
        && options.opt_except.is_none()
        && options.opt_replace.is_none()
        && options.opt_rename.is_none()
        && options.opt_alias.is_none()
}

/// The result column at 1-based `position`, as `clause` (`ORDER BY 2`, `GROUP BY 1`) names it.
fn item_at<'i>(items: &'i [Item], position: u64, clause: &str) -> Result<&'i Item, SqlError> {
    usize::try_from(position)
        .ok()
        .and_then(|p| p.checked_sub(1))
        .and_then(|p| items.get(p))
        .ok_or_else(|| {
            SqlError::unsupported(
                format!("{clause} {position}"),
                "name a position between 1 and the number of result columns",
            )
        })
}

/// What each `ORDER BY` item sorts by: a result column named by its name or position, the
/// result column an expression computes, or another expression (`computed` translates it).
fn sort_keys(
    order: &[OrderItem<'_>],
    items: &[Item],
    mut computed: impl FnMut(&sql::Expr) -> Result<Expr, SqlError>,
) -> Result<Vec<(SortKey, bool)>, SqlError> {
    order
        .iter()
        .map(|item| {
            let by_name = match item.expr {
                sql::Expr::Identifier(ident) => {
                    items.iter().find(|i| i.name == ident.value).or_else(|| {
                        items
                            .iter()
                            .find(|i| i.name.eq_ignore_ascii_case(&ident.value))
                    })
                }
                _ => None,
            };
            let key = if let Some(found) = by_name {
                SortKey::Result(found.name.clone())
            } else if let Some(position) = whole_number(item.expr) {
                SortKey::Result(item_at(items, position, "ORDER BY")?.name.clone())
            } else {
                let expr = computed(item.expr)?;
                match items.iter().find(|i| i.expr == expr) {
                    Some(found) => SortKey::Result(found.name.clone()),
                    None => SortKey::Computed(expr),
                }
            };
            Ok((key, item.descending))
        })
        .collect()
}

/// The result columns as a step, `DISTINCT`, sorted by `keys` (computed ones as hidden
/// columns, dropped after), cut to `limit` rows.
fn finished(
    relation: Relation,
    items: Vec<Item>,
    keys: Vec<(SortKey, bool)>,
    distinct: bool,
    limit: Option<u64>,
) -> Result<Planned, SqlError> {
    let names: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    let mut columns: Vec<Expr> = items.iter().map(Item::named).collect();
    let mut taken = names.clone();
    let mut by = Vec::new();
    let mut hidden = false;
    for (i, (key, descending)) in keys.into_iter().enumerate() {
        let name = match key {
            SortKey::Result(name) => name,
            SortKey::Computed(expr) => {
                if distinct {
                    return Err(SqlError::unsupported(
                        "ORDER BY an expression not selected, with SELECT DISTINCT",
                        "select what you order by",
                    ));
                }
                let name = fresh_name(&format!("__order_{i}"), &taken);
                taken.push(name.clone());
                columns.push(expr.alias(&name));
                hidden = true;
                name
            }
        };
        by.push((name, descending));
    }
    let mut planned = Planned::result(relation.then(FrameStep::Select(columns)), names.clone());
    if distinct {
        planned = planned.then(FrameStep::Distinct { subset: None });
    }
    planned = sorted(planned, by, limit);
    if hidden {
        let visible = names.iter().map(|n| col(n)).collect();
        planned = planned.then(FrameStep::Select(visible));
    }
    Ok(planned)
}

/// The relation of groups with their aggregates, the result columns and sort keys as
/// expressions of its columns.
fn aggregated(
    from: Planned,
    items: Vec<Item>,
    group_by: &[sql::Expr],
    having: Option<&sql::Expr>,
    order: &[OrderItem<'_>],
) -> Result<(Relation, Vec<Item>, Vec<(SortKey, bool)>), SqlError> {
    let scope = &from.scope;
    let mut taken: Vec<String> = scope.frame_columns();
    taken.extend(items.iter().map(|i| i.name.clone()));
    let mut keys: Vec<(Expr, String)> = Vec::new();
    let mut computed_keys = Vec::new();
    for (i, g) in group_by.iter().enumerate() {
        let expr = match (whole_number(g), g) {
            (Some(position), _) => item_at(&items, position, "GROUP BY")?.expr.clone(),
            (None, sql::Expr::Identifier(ident))
                if scope.resolve(std::slice::from_ref(&ident.value)).is_err()
                    && items.iter().any(|i| i.name == ident.value) =>
            {
                let item = items.iter().find(|i| i.name == ident.value).expect("found");
                item.expr.clone()
            }
            (None, g) => translate(g, scope)?,
        };
        if expr.has_agg() {
            return Err(SqlError::unsupported(
                format!("the aggregate in GROUP BY {g}"),
                "group by columns or expressions of them",
            ));
        }
        let column = match &expr {
            Expr::Column(c) => c.clone(),
            _ => {
                let name = fresh_name(&format!("__key_{i}"), &taken);
                taken.push(name.clone());
                computed_keys.push(expr.clone().alias(&name));
                name
            }
        };
        keys.push((expr, column));
    }
    let mut aggs: Vec<(Expr, String)> = Vec::new();
    let mut grouped = Grouped {
        keys: &keys,
        aggs: &mut aggs,
        taken: &mut taken,
        scope,
    };
    let items = items
        .into_iter()
        .map(|item| {
            Ok(Item {
                expr: grouped.rewrite(&item.expr)?,
                name: item.name,
            })
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    let having = match having {
        Some(h) => Some(grouped.rewrite(&translate(h, scope)?)?),
        None => None,
    };
    let sort = sort_keys(order, &items, |e| grouped.rewrite(&translate(e, scope)?))?;
    let mut relation = from.relation;
    if !computed_keys.is_empty() {
        relation = relation.then(FrameStep::WithColumns(computed_keys));
    }
    let agg_columns: Vec<Expr> = aggs.iter().map(|(e, name)| e.clone().alias(name)).collect();
    relation = if keys.is_empty() {
        relation.then(FrameStep::Select(agg_columns))
    } else {
        relation.then(FrameStep::GroupBy {
            keys: keys.iter().map(|(_, c)| col(c)).collect(),
            aggs: agg_columns,
        })
    };
    if let Some(having) = having {
        relation = relation.then(FrameStep::Filter(having));
    }
    Ok((relation, items, sort))
}

/// Rewrites expressions over rows as expressions over groups: a group key's expression reads
/// its key column, each aggregate its own aggregate column.
struct Grouped<'a> {
    keys: &'a [(Expr, String)],
    aggs: &'a mut Vec<(Expr, String)>,
    taken: &'a mut Vec<String>,
    scope: &'a Scope,
}

impl Grouped<'_> {
    fn rewrite(&mut self, expr: &Expr) -> Result<Expr, SqlError> {
        if let Some((_, column)) = self.keys.iter().find(|(k, _)| k == expr) {
            return Ok(col(column));
        }
        match expr {
            Expr::Agg { expr: inner, .. } if inner.has_agg() => Err(SqlError::unsupported(
                "an aggregate of an aggregate",
                "aggregate in a subquery, then aggregate its result",
            )),
            Expr::Agg { .. } | Expr::Len => {
                if let Some((_, name)) = self.aggs.iter().find(|(a, _)| a == expr) {
                    return Ok(col(name));
                }
                let name = fresh_name(&format!("__agg_{}", self.aggs.len()), self.taken);
                self.taken.push(name.clone());
                self.aggs.push((expr.clone(), name.clone()));
                Ok(col(&name))
            }
            Expr::Column(column) => {
                let named = self.scope.columns.iter().find(|c| c.column == *column);
                Err(SqlError::NotGrouped(named.map_or(
                    column.clone(),
                    |c| match &c.qualifier {
                        Some(q) => format!("{q}.{}", c.name),
                        None => c.name.clone(),
                    },
                )))
            }
            Expr::Literal(_) => Ok(expr.clone()),
            Expr::Alias { expr, name } => Ok(self.rewrite(expr)?.alias(name)),
            Expr::Binary { left, op, right } => Ok(Expr::Binary {
                left: Box::new(self.rewrite(left)?),
                op: *op,
                right: Box::new(self.rewrite(right)?),
            }),
            Expr::Unary { op, expr } => Ok(Expr::Unary {
                op: op.clone(),
                expr: Box::new(self.rewrite(expr)?),
            }),
            Expr::Cast { expr, to } => Ok(self.rewrite(expr)?.cast(to.clone())),
            Expr::IsIn { expr, values } => Ok(Expr::IsIn {
                expr: Box::new(self.rewrite(expr)?),
                values: values.clone(),
            }),
            Expr::When {
                condition,
                then,
                otherwise,
            } => Ok(Expr::When {
                condition: Box::new(self.rewrite(condition)?),
                then: Box::new(self.rewrite(then)?),
                otherwise: Box::new(self.rewrite(otherwise)?),
            }),
        }
    }
}
