//! `FROM` and `WHERE`: the tables a query reads, joined on the equalities that relate them,
//! with each condition on one table alone applied to that table before any join.
//!
//! Tables listed with commas are joined in the order they are listed, each to the ones before
//! it on every `WHERE` equality between their columns (Spark without cost-based reordering
//! does the same); the driver then broadcasts a small side or shuffles both, per join. A table
//! nothing relates to the others is an error: Tessera runs no cross joins.

use crate::error::SqlError;
use crate::expr::translate;
use crate::planner::{Planned, Planner};
use crate::relation::Relation;
use crate::scope::{Scope, fresh_name, qualifiers_of};
use sqlparser::ast::{self as sql, JoinConstraint, JoinOperator, TableFactor, TableWithJoins};
use std::collections::{BTreeSet, HashMap};
use tessera_plan::frame::{BinaryOp, Expr, FrameStep, JoinKind, JoinOn, col};

/// The rows of `from`'s tables that `selection` keeps, joined.
pub(crate) fn plan(
    planner: &mut Planner<'_>,
    from: &[TableWithJoins],
    selection: Option<&sql::Expr>,
) -> Result<Planned, SqlError> {
    if from.is_empty() {
        return Err(SqlError::unsupported(
            "SELECT without FROM",
            "select from a table registered with df.register(\"t\")",
        ));
    }
    // Each listed item, its columns renamed apart from the earlier items' so that a condition
    // over all of them names each column once.
    let mut items: Vec<Planned> = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    for listed in from {
        let item = apart(table_with_joins(planner, listed)?, &taken);
        taken.extend(item.scope.frame_columns());
        items.push(item);
    }
    let conditions = selection.map(conjuncts).unwrap_or_default();
    let all = Scope {
        columns: items.iter().flat_map(|i| i.scope.columns.clone()).collect(),
    };
    let owner = |column: &str| {
        items
            .iter()
            .position(|i| i.scope.columns.iter().any(|c| c.column == column))
    };
    let mut on_one: Vec<Vec<Expr>> = vec![Vec::new(); items.len()];
    let mut equalities: Vec<[(usize, String); 2]> = Vec::new();
    let mut after_joins: Vec<&sql::Expr> = Vec::new();
    for condition in conditions {
        let predicate = row_predicate(condition, &all)?;
        if let Some((a, b)) = column_equality(&predicate)
            && let (Some(i), Some(j)) = (owner(a), owner(b))
            && i != j
        {
            equalities.push([(i, a.to_string()), (j, b.to_string())]);
            continue;
        }
        let mut owners = BTreeSet::new();
        predicate.visit(&mut |e| {
            if let Expr::Column(c) = e {
                owners.insert(owner(c));
            }
        });
        match owners.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(i)] => on_one[*i].push(predicate),
            _ => after_joins.push(condition),
        }
    }
    let items: Vec<Planned> = items
        .into_iter()
        .zip(on_one)
        .map(|(item, predicates)| filtered(item, predicates))
        .collect();
    // Joined in the order listed: each next item that an equality relates to those joined.
    let mut joined = vec![0];
    let mut current = items[0].clone();
    // Right keys of inner joins, dropped by the join, and the left keys that hold their values.
    let mut replaced: HashMap<String, String> = HashMap::new();
    while joined.len() < items.len() {
        let relates = |j: usize, [(i, a), (k, b)]: &[(usize, String); 2]| {
            if *k == j && joined.contains(i) {
                Some((a.clone(), b.clone()))
            } else if *i == j && joined.contains(k) {
                Some((b.clone(), a.clone()))
            } else {
                None
            }
        };
        let next = (0..items.len())
            .filter(|j| !joined.contains(j))
            .find(|&j| equalities.iter().any(|e| relates(j, e).is_some()));
        let Some(next) = next else {
            let unjoined: Vec<String> = (0..items.len())
                .filter(|j| !joined.contains(j))
                .map(|j| qualifiers_of(&items[j].scope))
                .collect();
            return Err(SqlError::CrossJoin(unjoined.join(", ")));
        };
        let mut keys: Vec<(String, String)> = Vec::new();
        for (left, right) in equalities.iter().filter_map(|e| relates(next, e)) {
            let mut left = left;
            while let Some(holder) = replaced.get(&left) {
                left = holder.clone();
            }
            if !keys.iter().any(|(_, r)| *r == right) {
                keys.push((left, right));
            }
        }
        for (left, right) in &keys {
            replaced.insert(right.clone(), left.clone());
        }
        current = join(current, items[next].clone(), &keys, JoinKind::Inner);
        joined.push(next);
    }
    let remaining = after_joins
        .into_iter()
        .map(|c| row_predicate(c, &current.scope))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(filtered(current, remaining))
}

/// The parts of `condition` joined by `AND`.
fn conjuncts(condition: &sql::Expr) -> Vec<&sql::Expr> {
    match condition {
        sql::Expr::BinaryOp {
            left,
            op: sql::BinaryOperator::And,
            right,
        } => {
            let mut parts = conjuncts(left);
            parts.extend(conjuncts(right));
            parts
        }
        sql::Expr::Nested(inner) => match inner.as_ref() {
            sql::Expr::BinaryOp {
                op: sql::BinaryOperator::And,
                ..
            } => conjuncts(inner),
            _ => vec![condition],
        },
        _ => vec![condition],
    }
}

/// The two columns of `a = b`.
fn column_equality(predicate: &Expr) -> Option<(&str, &str)> {
    match predicate {
        Expr::Binary {
            left,
            op: BinaryOp::Eq,
            right,
        } => match (left.as_ref(), right.as_ref()) {
            (Expr::Column(a), Expr::Column(b)) => Some((a, b)),
            _ => None,
        },
        _ => None,
    }
}

/// A condition on each row, which may not aggregate.
fn row_predicate(condition: &sql::Expr, scope: &Scope) -> Result<Expr, SqlError> {
    let predicate = translate(condition, scope)?;
    if predicate.has_agg() {
        return Err(SqlError::unsupported(
            format!("the aggregate in `{condition}` in WHERE or ON"),
            "filter on aggregates with HAVING",
        ));
    }
    Ok(predicate)
}

/// `item`'s rows for which every one of `predicates` holds.
fn filtered(item: Planned, predicates: Vec<Expr>) -> Planned {
    match predicates.into_iter().reduce(Expr::and) {
        Some(predicate) => item.then(FrameStep::Filter(predicate)),
        None => item,
    }
}

/// `item` with each column that `taken` holds renamed `table.column` (numbered if need be).
fn apart(item: Planned, taken: &[String]) -> Planned {
    let columns = item.scope.frame_columns();
    let mut names: Vec<String> = taken.iter().chain(&columns).cloned().collect();
    let mut renames: Vec<(String, String)> = Vec::new();
    for column in columns.iter().filter(|c| taken.contains(c)) {
        let known = item.scope.columns.iter().find(|c| c.column == *column);
        let wanted = match known {
            Some(c) => format!("{}.{}", c.qualifier.as_deref().unwrap_or("t"), c.name),
            None => column.clone(),
        };
        let new = fresh_name(&wanted, &names);
        names.push(new.clone());
        renames.push((column.clone(), new));
    }
    if renames.is_empty() {
        return item;
    }
    let mut scope = item.scope;
    for c in &mut scope.columns {
        if let Some((_, new)) = renames.iter().find(|(old, _)| *old == c.column) {
            c.column = new.clone();
        }
    }
    Planned {
        relation: item.relation.then(FrameStep::Rename(renames)),
        scope,
    }
}

/// The join of `left` and `right` (whose columns are named apart) on `keys` (left column,
/// right column), as SQL has it: every column of both sides, a right-side key of an inner join
/// read from the left key that equals it.
fn join(left: Planned, right: Planned, keys: &[(String, String)], how: JoinKind) -> Planned {
    let on = |left_on: Vec<String>, right_on: Vec<String>| JoinOn {
        left_on,
        right_on,
        how,
    };
    let (left_keys, right_keys): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
    match how {
        JoinKind::Semi | JoinKind::Anti => Planned {
            relation: Relation::Join {
                left: Box::new(left.relation),
                right: Box::new(right.relation),
                on: on(left_keys, right_keys),
            },
            scope: left.scope,
        },
        JoinKind::Inner => {
            let mut scope = left.scope;
            for mut column in right.scope.columns {
                if let Some((l, _)) = keys.iter().find(|(_, r)| *r == column.column) {
                    column.column = l.clone();
                }
                scope.columns.push(column);
            }
            let relation = Relation::Join {
                left: Box::new(left.relation),
                right: Box::new(right.relation),
                on: on(left_keys, right_keys),
            };
            exactly(relation, scope)
        }
        JoinKind::Left | JoinKind::Right | JoinKind::Full => {
            // Outer joins coalesce or drop key columns as polars decides; joined on copies of
            // the keys, each side keeps its own key columns, null where it had no match.
            let mut names: Vec<String> = left.scope.frame_columns();
            names.extend(right.scope.frame_columns());
            let mut copies = |side: &str, keys: &[String]| -> (Vec<String>, Vec<Expr>) {
                keys.iter()
                    .enumerate()
                    .map(|(i, key)| {
                        let copy = fresh_name(&format!("__{side}_key_{i}"), &names);
                        names.push(copy.clone());
                        (copy.clone(), col(key).alias(&copy))
                    })
                    .unzip()
            };
            let (left_on, left_copies) = copies("left", &left_keys);
            let (right_on, right_copies) = copies("right", &right_keys);
            let mut scope = left.scope;
            scope.columns.extend(right.scope.columns);
            let relation = Relation::Join {
                left: Box::new(left.relation.then(FrameStep::WithColumns(left_copies))),
                right: Box::new(right.relation.then(FrameStep::WithColumns(right_copies))),
                on: on(left_on, right_on),
            };
            exactly(relation, scope)
        }
    }
}

/// `relation` cut to exactly the columns of `scope`, in its order: whatever key columns a
/// join kept, coalesced or suffixed, go.
fn exactly(relation: Relation, scope: Scope) -> Planned {
    let columns = scope.frame_columns().iter().map(|c| col(c)).collect();
    Planned {
        relation: relation.then(FrameStep::Select(columns)),
        scope,
    }
}

/// A listed item: a table or subquery and the tables `JOIN`ed to it.
fn table_with_joins(
    planner: &mut Planner<'_>,
    listed: &TableWithJoins,
) -> Result<Planned, SqlError> {
    let mut left = factor(planner, &listed.relation)?;
    for joined in &listed.joins {
        let (how, constraint) = match &joined.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinKind::Inner, c),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (JoinKind::Right, c),
            JoinOperator::FullOuter(c) => (JoinKind::Full, c),
            JoinOperator::Semi(c) | JoinOperator::LeftSemi(c) => (JoinKind::Semi, c),
            JoinOperator::Anti(c) | JoinOperator::LeftAnti(c) => (JoinKind::Anti, c),
            _ => {
                return Err(SqlError::unsupported(
                    format!("`{joined}`"),
                    "use [INNER | LEFT | RIGHT | FULL | LEFT SEMI | LEFT ANTI] JOIN ... ON or USING",
                ));
            }
        };
        if joined.global {
            return Err(SqlError::unsupported("GLOBAL JOIN", "write JOIN"));
        }
        let right = apart(
            factor(planner, &joined.relation)?,
            &left.scope.frame_columns(),
        );
        left = explicit_join(left, right, how, constraint)?;
    }
    Ok(left)
}

/// `left JOIN right ON ...` or `USING (...)`: the equalities of a left and a right column are
/// its keys; other conditions filter the joined rows of an inner join.
fn explicit_join(
    left: Planned,
    right: Planned,
    how: JoinKind,
    constraint: &JoinConstraint,
) -> Result<Planned, SqlError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut others: Vec<&sql::Expr> = Vec::new();
    match constraint {
        JoinConstraint::On(condition) => {
            let both = Scope {
                columns: left
                    .scope
                    .columns
                    .iter()
                    .chain(&right.scope.columns)
                    .cloned()
                    .collect(),
            };
            let left_columns = left.scope.frame_columns();
            for part in conjuncts(condition) {
                let predicate = row_predicate(part, &both)?;
                match column_equality(&predicate) {
                    Some((a, b))
                        if left_columns.iter().any(|c| c == a)
                            != left_columns.iter().any(|c| c == b) =>
                    {
                        let (l, r) = if left_columns.iter().any(|c| c == a) {
                            (a, b)
                        } else {
                            (b, a)
                        };
                        keys.push((l.to_string(), r.to_string()));
                    }
                    _ => others.push(part),
                }
            }
        }
        JoinConstraint::Using(names) => {
            for name in names {
                let name = vec![name.to_string()];
                keys.push((
                    left.scope.resolve(&name)?.column.clone(),
                    right.scope.resolve(&name)?.column.clone(),
                ));
            }
        }
        JoinConstraint::Natural | JoinConstraint::None => {
            return Err(SqlError::unsupported(
                "a JOIN without ON or USING",
                "join ON a.key = b.key (Tessera runs no cross joins)",
            ));
        }
    }
    if keys.is_empty() {
        return Err(SqlError::CrossJoin(qualifiers_of(&right.scope)));
    }
    if how != JoinKind::Inner
        && let Some(other) = others.first()
    {
        return Err(SqlError::unsupported(
            format!("the condition `{other}` in ON of an outer, semi or anti join"),
            "join on equalities of columns, and filter a side in a subquery first",
        ));
    }
    let joined = join(left, right, &keys, how);
    let remaining = others
        .into_iter()
        .map(|c| row_predicate(c, &joined.scope))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(filtered(joined, remaining))
}

/// A table, `WITH` query or subquery in `FROM`, its columns known by its alias.
fn factor(planner: &mut Planner<'_>, factor: &TableFactor) -> Result<Planned, SqlError> {
    let no_column_names = |alias: &Option<sql::TableAlias>| match alias {
        Some(alias) if !alias.columns.is_empty() => Err(SqlError::unsupported(
            format!("column names after the alias {}", alias.name),
            "name the columns with AS in a subquery",
        )),
        _ => Ok(()),
    };
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            with_ordinality: false,
            partitions,
            json_path: None,
            sample: None,
            index_hints,
        } if with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty() => {
            no_column_names(alias)?;
            let [sql::ObjectNamePart::Identifier(table)] = name.0.as_slice() else {
                return Err(SqlError::unsupported(
                    format!("the table name {name}"),
                    "name a registered table by the one name it was registered under",
                ));
            };
            let qualifier = alias.as_ref().map_or(&table.value, |a| &a.name.value);
            planner.table(&table.value, qualifier)
        }
        TableFactor::Derived {
            lateral: false,
            subquery,
            alias,
            sample: None,
        } => {
            no_column_names(alias)?;
            let planned = planner.query(subquery)?;
            Ok(match alias {
                Some(alias) => Planned {
                    scope: planned.scope.qualified(&alias.name.value),
                    relation: planned.relation,
                },
                None => planned,
            })
        }
        TableFactor::NestedJoin {
            table_with_joins,
            alias: None,
        } => self::table_with_joins(planner, table_with_joins),
        other => Err(SqlError::unsupported(
            format!("`{other}` in FROM"),
            "read registered tables, WITH queries and subqueries, and join them",
        )),
    }
}
