//! Eager aggregation: an aggregation over a join whose groups are rows of some tables (a
//! customer, with its name and address) and whose sums are of the others' (lines of their
//! orders) sums those per join key first, then joins the sums to the groups' rows.
//!
//! TPC-H Q10 groups by seven columns of the customer and its nation and sums returned lines.
//! Planned as written, every matching line was joined to its customer's strings, shuffled by
//! all seven keys and summed there. Summed by `o_custkey` first (Yan and Larson's eager
//! group-by), the lines' side is one number a customer, and only those rows meet the strings.
//! Neither Spark nor polars plans this; it is a rewrite of the `SELECT` the rest of the planner
//! then plans as it plans any query with a subquery in `FROM`.
//!
//! It applies only where it cannot change the answer nor multiply the groups: tables listed
//! with commas (no explicit `JOIN`s); `sum`, `min` and `max` of columns of the tables summed
//! (which no other part of the query reads); every join of those tables to the others an
//! equality to a column the query groups by, so that summing by the join key makes no more
//! rows than the query's own groups; no `HAVING` or `DISTINCT`. Anything else is planned as
//! written.

use crate::order::OrderItem;
use crate::parse::parse;
use sqlparser::ast::{
    self as sql, BinaryOperator, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    SelectItem, SetExpr, TableFactor,
};
use std::collections::BTreeSet;

/// The alias of the subquery that sums ahead of the join.
const SUMMED: &str = "__eager";

/// A table listed in `FROM`.
struct Listed {
    /// As the query lists it (`orders o`).
    text: String,
    /// The name its columns are qualified with.
    qualifier: String,
    columns: Vec<String>,
}

/// An aggregate this rewrite splits: the same function over the sums ahead of the join.
#[derive(Clone, Copy, PartialEq)]
enum Split {
    Sum,
    Min,
    Max,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Sum => "sum",
            Split::Min => "min",
            Split::Max => "max",
        }
    }
}

/// What a function call is here: `Ok(Some(..))` an aggregate to split, `Ok(None)` not an
/// aggregate, `Err(())` an aggregate this rewrite leaves alone (`avg`, `count`, `DISTINCT`).
fn aggregate(function: &sql::Function) -> Result<Option<Split>, ()> {
    let split = match function.name.to_string().to_ascii_lowercase().as_str() {
        "sum" => Split::Sum,
        "min" => Split::Min,
        "max" => Split::Max,
        "avg" | "count" => return Err(()),
        _ => return Ok(None),
    };
    let plain = function.over.is_none()
        && function.filter.is_none()
        && function.within_group.is_empty()
        && matches!(&function.args, FunctionArguments::List(list)
            if list.duplicate_treatment.is_none() && list.clauses.is_empty() && list.args.len() == 1);
    if plain { Ok(Some(split)) } else { Err(()) }
}

/// The expressions directly inside `expr`, or `None` for a kind of expression this rewrite
/// does not look into (it then leaves the query as written).
fn children(expr: &mut sql::Expr) -> Option<Vec<&mut sql::Expr>> {
    use sql::Expr as E;
    Some(match expr {
        E::Identifier(_) | E::CompoundIdentifier(_) | E::Value(_) | E::TypedString(_) => vec![],
        E::Interval(interval) => vec![&mut *interval.value],
        E::BinaryOp { left, right, .. } => vec![&mut **left, &mut **right],
        E::UnaryOp { expr, .. }
        | E::Nested(expr)
        | E::Cast { expr, .. }
        | E::IsNull(expr)
        | E::IsNotNull(expr)
        | E::Extract { expr, .. } => vec![&mut **expr],
        E::Between {
            expr, low, high, ..
        } => vec![&mut **expr, &mut **low, &mut **high],
        E::InList { expr, list, .. } => {
            let mut all = vec![&mut **expr];
            all.extend(list.iter_mut());
            all
        }
        E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => {
            vec![&mut **expr, &mut **pattern]
        }
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let mut all: Vec<&mut sql::Expr> = operand.iter_mut().map(|e| &mut **e).collect();
            for when in conditions.iter_mut() {
                all.push(&mut when.condition);
                all.push(&mut when.result);
            }
            all.extend(else_result.iter_mut().map(|e| &mut **e));
            all
        }
        E::Function(function) => match &mut function.args {
            // A name without parentheses (`user`) may be a column.
            FunctionArguments::None => return None,
            FunctionArguments::List(list) => {
                let mut all = Vec::new();
                for arg in list.args.iter_mut() {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => all.push(e),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => {}
                        _ => return None,
                    }
                }
                all
            }
            FunctionArguments::Subquery(_) => return None,
        },
        _ => return None,
    })
}

/// The table of the listed ones a column reference names: `Ok(None)` where `expr` is not a
/// column of any (an output alias, say), `Err(())` where it is ambiguous.
fn table_of(tables: &[Listed], expr: &sql::Expr) -> Result<Option<usize>, ()> {
    let (qualifier, column) = match expr {
        sql::Expr::Identifier(column) => (None, &column.value),
        sql::Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [qualifier, column] => (Some(&qualifier.value), &column.value),
            _ => return Err(()),
        },
        _ => return Ok(None),
    };
    let mut having = tables
        .iter()
        .enumerate()
        .filter(|(_, t)| qualifier.is_none_or(|q| *q == t.qualifier) && t.columns.contains(column));
    match (having.next(), having.next()) {
        (Some((i, _)), None) => Ok(Some(i)),
        (None, _) if qualifier.is_none() => Ok(None),
        _ => Err(()),
    }
}

/// The tables `expr` reads into `reads`; each aggregate in it is handed to `on_aggregate`
/// (which may replace it) and not looked into. `None` where the rewrite must not apply.
fn scan(
    expr: &mut sql::Expr,
    tables: &[Listed],
    reads: &mut BTreeSet<usize>,
    on_aggregate: &mut dyn FnMut(&mut sql::Expr, Split) -> Option<()>,
) -> Option<()> {
    if let sql::Expr::Function(function) = &*expr
        && let Some(split) = aggregate(function).ok()?
    {
        return on_aggregate(expr, split);
    }
    if let Some(table) = table_of(tables, expr).ok()? {
        reads.insert(table);
        return Some(());
    }
    for child in children(expr)? {
        scan(child, tables, reads, on_aggregate)?;
    }
    Some(())
}

/// The tables `expr` reads, where it holds no aggregate.
fn reads_of(expr: &sql::Expr, tables: &[Listed]) -> Option<BTreeSet<usize>> {
    let mut reads = BTreeSet::new();
    scan(&mut expr.clone(), tables, &mut reads, &mut |_, _| None)?;
    Some(reads)
}

/// `expr`'s conjuncts.
fn conjuncts(expr: &sql::Expr) -> Vec<&sql::Expr> {
    match expr {
        sql::Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(left);
            all.extend(conjuncts(right));
            all
        }
        sql::Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

/// The two column references of `a = b` between two tables, as (table, reference) each.
fn equality<'e>(tables: &[Listed], expr: &'e sql::Expr) -> Option<[(usize, &'e sql::Expr); 2]> {
    let sql::Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = expr
    else {
        return None;
    };
    let (a, b) = (
        table_of(tables, left).ok()??,
        table_of(tables, right).ok()??,
    );
    (a != b).then_some([(a, &**left), (b, &**right)])
}

/// The name a column reference reads.
fn column_name(expr: &sql::Expr) -> String {
    match expr {
        sql::Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()),
        sql::Expr::Identifier(column) => Some(column.value.clone()),
        _ => None,
    }
    .unwrap_or_default()
}

/// The tables of `select`'s `FROM`, if they are registered tables listed with commas.
fn listed_tables(
    select: &sql::Select,
    columns_of: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Option<Vec<Listed>> {
    let mut tables = Vec::new();
    for item in &select.from {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = &item.relation
        else {
            return None;
        };
        let [sql::ObjectNamePart::Identifier(table)] = name.0.as_slice() else {
            return None;
        };
        if !item.joins.is_empty() || alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
            return None;
        }
        tables.push(Listed {
            text: item.to_string(),
            qualifier: alias
                .as_ref()
                .map_or(&table.value, |a| &a.name.value)
                .clone(),
            columns: columns_of(&table.value)?,
        });
    }
    Some(tables)
}

/// The tables to sum: `aggregated` (those the aggregates read), with every table the query
/// reads only in `WHERE` (not in `grouped`) that an equality joins to them.
fn summed_tables(
    tables: &[Listed],
    conditions: &[&sql::Expr],
    aggregated: &BTreeSet<usize>,
    grouped: &BTreeSet<usize>,
) -> BTreeSet<usize> {
    let mut summed = aggregated.clone();
    loop {
        let before = summed.len();
        for condition in conditions {
            if let Some([(a, _), (b, _)]) = equality(tables, condition) {
                let free = |t: usize| !grouped.contains(&t);
                if free(a) && free(b) && (summed.contains(&a) || summed.contains(&b)) {
                    summed.extend([a, b]);
                }
            }
        }
        if summed.len() == before {
            return summed;
        }
    }
}

/// `select` with its aggregation summed ahead of the join where that applies (see the
/// module's documentation), else `None`. `columns_of` gives a registered table's columns.
pub(crate) fn rewritten(
    select: &sql::Select,
    order: &[OrderItem<'_>],
    columns_of: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Option<sql::Select> {
    if select.having.is_some() || select.distinct.is_some() {
        return None;
    }
    let tables = listed_tables(select, columns_of)?;
    if tables.len() < 2 {
        return None;
    }
    // The result columns: aggregates of the summed tables (replaced by the same aggregate of
    // their sums), and expressions of the grouped tables.
    let mut summed_reads = BTreeSet::new();
    let mut grouped_reads = BTreeSet::new();
    let mut splits: Vec<(String, Split)> = Vec::new();
    let mut projection = Vec::new();
    for item in &select.projection {
        let (mut expr, alias) = match item {
            SelectItem::UnnamedExpr(expr) => (expr.clone(), None),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias)),
            _ => return None,
        };
        scan(
            &mut expr,
            &tables,
            &mut grouped_reads,
            &mut |call, split| {
                let sql::Expr::Function(function) = &*call else {
                    return None;
                };
                let FunctionArguments::List(list) = &function.args else {
                    return None;
                };
                let [FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))] = list.args.as_slice()
                else {
                    return None;
                };
                summed_reads.extend(reads_of(argument, &tables)?);
                let text = argument.to_string();
                let index = match splits.iter().position(|(t, s)| *t == text && *s == split) {
                    Some(index) => index,
                    None => {
                        splits.push((text, split));
                        splits.len() - 1
                    }
                };
                *call = parse_expr(&format!("{}({SUMMED}.{SUMMED}_{index})", split.name()))?;
                Some(())
            },
        )?;
        // An unnamed result column is named by its text: the rewritten one keeps the name.
        let original = match item {
            SelectItem::UnnamedExpr(original) => original,
            _ => &expr,
        };
        projection.push(match alias {
            Some(alias) => format!("{expr} AS {alias}"),
            None if expr != *original => {
                let name = sql::Ident::with_quote('"', original.to_string());
                format!("{expr} AS {name}")
            }
            None => expr.to_string(),
        });
    }
    let GroupByExpr::Expressions(group_by, modifiers) = &select.group_by else {
        return None;
    };
    if group_by.is_empty() || !modifiers.is_empty() || splits.is_empty() {
        return None;
    }
    let mut group_columns = BTreeSet::new();
    for key in group_by {
        grouped_reads.extend(reads_of(key, &tables)?);
        if let Some(table) = table_of(&tables, key).ok()? {
            group_columns.insert((table, column_name(key)));
        }
    }
    for item in order {
        grouped_reads.extend(reads_of(item.expr, &tables)?);
    }
    if summed_reads.is_empty() || !summed_reads.is_disjoint(&grouped_reads) {
        return None;
    }
    // The summed tables: those the aggregates read, with the tables the query reads only in
    // WHERE that join to them.
    let conditions: Vec<&sql::Expr> = select.selection.iter().flat_map(conjuncts).collect();
    let summed = summed_tables(&tables, &conditions, &summed_reads, &grouped_reads);
    if summed.len() == tables.len() {
        return None;
    }
    // Conditions on the summed tables go inside; the others outside, where each join of a
    // summed table to another must equal a grouped column.
    let (mut inside, mut outside, mut keys) =
        (Vec::new(), Vec::new(), Vec::<(String, String)>::new());
    // The first grouped table, as listed, that the sums join to.
    let mut first_joined: Option<usize> = None;
    for condition in &conditions {
        let reads = reads_of(condition, &tables)?;
        if reads.is_subset(&summed) {
            inside.push(condition.to_string());
        } else if reads.is_disjoint(&summed) {
            outside.push(condition.to_string());
        } else {
            let [(a, a_ref), (b, b_ref)] = equality(&tables, condition)?;
            let ((_, key), (other, other_ref)) = if summed.contains(&a) {
                ((a, a_ref), (b, b_ref))
            } else {
                ((b, b_ref), (a, a_ref))
            };
            if summed.contains(&other) || !group_columns.contains(&(other, column_name(other_ref)))
            {
                return None;
            }
            let name = column_name(key);
            match keys.iter().find(|(n, _)| *n == name) {
                Some((_, text)) if *text != key.to_string() => return None,
                Some(_) => {}
                None => keys.push((name.clone(), key.to_string())),
            }
            outside.push(format!("{other_ref} = {SUMMED}.{name}"));
            first_joined = Some(first_joined.map_or(other, |first| first.min(other)));
        }
    }
    // Sums joined to no grouped table have no key to be summed by.
    let first_joined = first_joined?;
    let summed_from = tables
        .iter()
        .enumerate()
        .filter(|(i, _)| summed.contains(i))
        .map(|(_, t)| t.text.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let sums = splits
        .iter()
        .enumerate()
        .map(|(i, (argument, split))| format!("{}({argument}) AS {SUMMED}_{i}", split.name()));
    let inner = format!(
        "SELECT {} FROM {}{} GROUP BY {}",
        keys.iter()
            .map(|(name, text)| format!("{text} AS {name}"))
            .chain(sums)
            .collect::<Vec<_>>()
            .join(", "),
        summed_from,
        if inside.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", inside.join(" AND "))
        },
        keys.iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );
    // The sums are listed (and so joined) right after the first grouped table they join to:
    // they are one row a join key, which every row of the query's groups has one value of, so
    // the join keeps at most that table's rows, and the grouped tables after it (a customer's
    // nation) meet only the rows that remain. Joined last, TPC-H Q10's 150,000 customers all
    // met their nations' names before the sums kept 38,000 of them.
    let mut outer_from = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        if summed.contains(&i) {
            continue;
        }
        outer_from.push(table.text.clone());
        if i == first_joined {
            outer_from.push(format!("({inner}) AS {SUMMED}"));
        }
    }
    let outer = format!(
        "SELECT {} FROM {} WHERE {} GROUP BY {}",
        projection.join(", "),
        outer_from.join(", "),
        outside.join(" AND "),
        group_by
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    match *parse(&outer).ok()?.body {
        SetExpr::Select(select) => Some(*select),
        _ => None,
    }
}

/// One expression, parsed.
fn parse_expr(text: &str) -> Option<sql::Expr> {
    match *parse(&format!("SELECT {text}")).ok()?.body {
        SetExpr::Select(select) => match select.projection.into_iter().next()? {
            SelectItem::UnnamedExpr(expr) => Some(expr),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn columns(name: &str) -> Option<Vec<String>> {
        let columns: &[&str] = match name {
            "customer" => &["c_custkey", "c_name", "c_address", "c_nationkey"],
            "nation" => &["n_nationkey", "n_name"],
            "orders" => &["o_orderkey", "o_custkey", "o_orderdate"],
            "lineitem" => &["l_orderkey", "l_price", "l_discount", "l_flag"],
            _ => return None,
        };
        Some(columns.iter().map(|c| c.to_string()).collect())
    }

    /// The query's `SELECT` rewritten, as text.
    fn rewrite(text: &str) -> Option<String> {
        let query = parse(text).unwrap();
        let SetExpr::Select(select) = *query.body else {
            panic!()
        };
        let order: Vec<OrderItem<'_>> = Vec::new();
        rewritten(&select, &order, &columns).map(|s| s.to_string())
    }

    #[test]
    fn lines_are_summed_by_customer_before_they_meet_the_customers_columns() {
        let summed = rewrite(
            "SELECT c_custkey, c_name, sum(l_price * (1 - l_discount)) AS revenue, n_name
             FROM customer, orders, lineitem, nation
             WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey
               AND o_orderdate >= DATE '1993-10-01' AND l_flag = 'R'
               AND c_nationkey = n_nationkey
             GROUP BY c_custkey, c_name, n_name",
        );
        assert_eq!(
            summed.as_deref(),
            Some(
                "SELECT c_custkey, c_name, sum(__eager.__eager_0) AS revenue, n_name \
                 FROM customer, (SELECT o_custkey AS o_custkey, \
                 sum(l_price * (1 - l_discount)) AS __eager_0 FROM orders, lineitem \
                 WHERE l_orderkey = o_orderkey AND o_orderdate >= DATE '1993-10-01' \
                 AND l_flag = 'R' GROUP BY o_custkey) AS __eager, nation \
                 WHERE c_custkey = __eager.o_custkey AND c_nationkey = n_nationkey \
                 GROUP BY c_custkey, c_name, n_name"
            )
        );
        // Listed after the grouped table they join to, wherever it is listed.
        let customer_last = rewrite(
            "SELECT c_custkey, n_name, sum(l_price) AS revenue
             FROM nation, orders, lineitem, customer
             WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey
               AND c_nationkey = n_nationkey
             GROUP BY c_custkey, n_name",
        )
        .unwrap();
        assert!(
            customer_last.contains("FROM nation, customer, (SELECT o_custkey")
                && customer_last.contains("GROUP BY o_custkey) AS __eager WHERE"),
            "{customer_last}"
        );
        // The rewritten query plans (its subquery is not rewritten again: its join key,
        // `o_orderkey`, is not what it groups by).
        let tables: crate::relation::Tables = ["customer", "nation", "orders", "lineitem"]
            .into_iter()
            .map(|t| (t.to_string(), columns(t).unwrap()))
            .collect();
        crate::plan(&summed.unwrap(), &tables).unwrap();
        // Grouped tables related to each other only through the summed ones are joined
        // through the sums.
        let apart = "SELECT c_name, n_name, sum(l_price) AS total
             FROM customer, orders, lineitem, nation
             WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND n_nationkey = o_custkey
             GROUP BY c_custkey, c_name, n_nationkey, n_name";
        let planned = crate::plan(apart, &tables).unwrap();
        assert!(format!("{planned:?}").contains("__eager_0"), "{planned:?}");
    }

    #[test]
    fn an_aggregation_that_could_change_or_grow_is_planned_as_written() {
        // Grouped by a column of the summed table itself (TPC-H Q3's shape).
        assert_eq!(
            rewrite(
                "SELECT l_orderkey, sum(l_price) FROM orders, lineitem
                 WHERE l_orderkey = o_orderkey GROUP BY l_orderkey, o_orderdate"
            ),
            None
        );
        // Joined on a column that is not a group key: summing by it first could make more rows
        // than the query's groups (TPC-H Q5's shape).
        assert_eq!(
            rewrite(
                "SELECT n_name, sum(l_price) FROM customer, orders, lineitem, nation
                 WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey
                   AND c_nationkey = n_nationkey GROUP BY n_name"
            ),
            None
        );
        // Summed tables joined to no grouped table: there is no key to sum by.
        assert_eq!(
            rewrite(
                "SELECT c_name, sum(l_price) FROM customer, lineitem
                 WHERE c_custkey > 3 GROUP BY c_name"
            ),
            None
        );
        // Aggregates whose parts do not add up as written, HAVING, explicit joins.
        for query in [
            "SELECT c_custkey, avg(l_price) FROM customer, orders, lineitem
             WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey GROUP BY c_custkey",
            "SELECT c_custkey, count(*) FROM customer, orders, lineitem
             WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey GROUP BY c_custkey",
            "SELECT c_custkey, sum(DISTINCT l_price) FROM customer, orders, lineitem
             WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey GROUP BY c_custkey",
            "SELECT c_custkey, sum(l_price) FROM customer, orders, lineitem
             WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey GROUP BY c_custkey
             HAVING sum(l_price) > 10",
            "SELECT c_custkey, sum(l_price) FROM customer JOIN orders ON c_custkey = o_custkey
             JOIN lineitem ON l_orderkey = o_orderkey GROUP BY c_custkey",
        ] {
            assert_eq!(rewrite(query), None, "{query}");
        }
    }

    #[test]
    fn tables_named_by_aliases_and_unnamed_results_keep_their_names() {
        let summed = rewrite(
            "SELECT c.c_custkey, min(l.l_price), max(l.l_price) AS top
             FROM customer c, orders o, lineitem l
             WHERE c.c_custkey = o.o_custkey AND l.l_orderkey = o.o_orderkey
             GROUP BY c.c_custkey",
        );
        assert_eq!(
            summed.as_deref(),
            Some(
                "SELECT c.c_custkey, min(__eager.__eager_0) AS \"min(l.l_price)\", \
                 max(__eager.__eager_1) AS top FROM customer c, (SELECT o.o_custkey AS \
                 o_custkey, min(l.l_price) AS __eager_0, max(l.l_price) AS __eager_1 FROM \
                 orders o, lineitem l WHERE l.l_orderkey = o.o_orderkey GROUP BY \
                 o.o_custkey) AS __eager WHERE c.c_custkey = __eager.o_custkey GROUP BY \
                 c.c_custkey"
            )
        );
    }
}
