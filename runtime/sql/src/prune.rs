//! Column pruning: each table is read down to the columns the query uses, before any join or
//! shuffle, as Spark and polars prune columns. A cached table keeps all of its columns; the
//! pruning selects from it (polars shares the column buffers), so a join or aggregation moves
//! only what the query reads.
//!
//! A pass over the planned [`Relation`], from the result down: each step says which of its
//! input's columns it needs to make the columns needed of it.

use crate::relation::{Relation, Tables};
use std::collections::BTreeSet;
use tessera_plan::frame::{Expr, FrameStep, JoinKind, col};

/// `relation` with each table cut to the columns the steps above it read.
pub(crate) fn pruned(relation: Relation, tables: &Tables) -> Relation {
    prune(relation, None, tables)
}

/// Columns needed of a relation: `None` for all of them.
type Needed = Option<BTreeSet<String>>;

fn prune(relation: Relation, needed: Needed, tables: &Tables) -> Relation {
    match relation {
        Relation::Table(name) => {
            let (Some(needed), Some(columns)) = (needed, tables.get(&name)) else {
                return Relation::Table(name);
            };
            let mut kept: Vec<&String> = columns.iter().filter(|c| needed.contains(*c)).collect();
            if kept.len() == columns.len() {
                return Relation::Table(name);
            }
            // A frame without columns has no rows either: keep one for `count(*)`.
            if kept.is_empty() {
                kept.extend(columns.first());
            }
            let kept = kept.into_iter().map(|c| col(c)).collect();
            Relation::Table(name).then(FrameStep::Select(kept))
        }
        Relation::Step { input, step } => {
            let step = match (step, &needed) {
                // Columns of a select that nothing above reads are not computed (a join's
                // select of both sides' columns, say); one stays, to keep the rows.
                (FrameStep::Select(exprs), Some(needed)) => {
                    let first = exprs.first().cloned();
                    let mut kept: Vec<Expr> = exprs
                        .into_iter()
                        .filter(|e| needed.contains(&e.output_name()))
                        .collect();
                    if kept.is_empty() {
                        kept.extend(first);
                    }
                    FrameStep::Select(kept)
                }
                // A column renamed (a self-join's other side, say) that nothing above reads is
                // pruned below: renaming it would name a column that is not there.
                (FrameStep::Rename(pairs), Some(needed)) => FrameStep::Rename(
                    pairs
                        .into_iter()
                        .filter(|(_, new)| needed.contains(new))
                        .collect(),
                ),
                (step, _) => step,
            };
            let above = needed.clone();
            let below = needed_below(&step, needed);
            let input = prune(*input, below, tables);
            match (&step, above) {
                (FrameStep::Filter(_), Some(above)) => filtered(input, step, &above, tables),
                _ => Relation::Step {
                    input: Box::new(input),
                    step,
                },
            }
        }
        Relation::Join { left, right, on } => {
            let side = |names: Vec<String>, keys: &[String]| -> Needed {
                needed.as_ref().map(|needed| {
                    names
                        .into_iter()
                        .filter(|n| needed.contains(n))
                        .chain(keys.iter().cloned())
                        .collect()
                })
            };
            let left_needed = side(names(&left, tables), &on.left_on);
            let right_needed = match on.how {
                // Only the keys of a semi or anti join's right side are read.
                JoinKind::Semi | JoinKind::Anti => Some(on.right_on.iter().cloned().collect()),
                _ => side(names(&right, tables), &on.right_on),
            };
            Relation::Join {
                left: Box::new(prune(*left, left_needed, tables)),
                right: Box::new(prune(*right, right_needed, tables)),
                on,
            }
        }
        // The inputs of a union must keep one schema: each is pruned below its own columns.
        Relation::Union(inputs) => Relation::Union(
            inputs
                .into_iter()
                .map(|input| prune(input, None, tables))
                .collect(),
        ),
    }
}

/// `input` filtered by `filter`, then cut to the columns read above it: a column the filter
/// alone reads (a date it compares, a flag) is not copied with the rows it keeps, nor carried
/// into a join or shuffle, as Spark's column pruning puts a projection over a filter. Only
/// over a table's own columns, whose names are known exactly.
fn filtered(
    input: Relation,
    filter: FrameStep,
    above: &BTreeSet<String>,
    tables: &Tables,
) -> Relation {
    let exact = match &input {
        Relation::Table(_) => true,
        Relation::Step { input, step } => {
            matches!(step, FrameStep::Select(_)) && matches!(**input, Relation::Table(_))
        }
        _ => false,
    };
    let columns = names(&input, tables);
    let kept: Vec<Expr> = columns
        .iter()
        .filter(|c| above.contains(*c))
        .map(|c| col(c))
        .collect();
    let filtered = input.then(filter);
    if !exact || kept.is_empty() || kept.len() == columns.len() {
        return filtered;
    }
    filtered.then(FrameStep::Select(kept))
}

/// The columns read by `exprs`.
fn read_by<'e>(exprs: impl IntoIterator<Item = &'e Expr>) -> BTreeSet<String> {
    let mut columns = BTreeSet::new();
    for expr in exprs {
        expr.visit(&mut |e| {
            if let Expr::Column(c) = e {
                columns.insert(c.clone());
            }
        });
    }
    columns
}

/// The columns of its input that `step` needs to make `needed` of its output.
fn needed_below(step: &FrameStep, needed: Needed) -> Needed {
    match step {
        FrameStep::Select(exprs) => Some(read_by(exprs)),
        FrameStep::GroupBy { keys, aggs } => Some(read_by(keys.iter().chain(aggs))),
        FrameStep::Filter(predicate) => needed.map(|mut n| {
            n.extend(read_by([predicate]));
            n
        }),
        FrameStep::WithColumns(exprs) => needed.map(|mut n| {
            for e in exprs {
                n.remove(&e.output_name());
            }
            n.extend(read_by(exprs));
            n
        }),
        FrameStep::Rename(pairs) => needed.map(|n| {
            n.into_iter()
                .map(|name| match pairs.iter().find(|(_, new)| *new == name) {
                    Some((old, _)) => old.clone(),
                    None => name,
                })
                .collect()
        }),
        FrameStep::Sort { by, .. } => needed.map(|mut n| {
            n.extend(by.iter().cloned());
            n
        }),
        FrameStep::Drop(_) | FrameStep::Head(_) => needed,
        // Which rows are distinct depends on every column.
        FrameStep::Distinct { .. } => None,
    }
}

/// The names of `relation`'s columns (a join's: both sides', whatever polars drops).
fn names(relation: &Relation, tables: &Tables) -> Vec<String> {
    match relation {
        Relation::Table(name) => tables.get(name).cloned().unwrap_or_default(),
        Relation::Step { input, step } => {
            let mut input = names(input, tables);
            match step {
                FrameStep::Select(exprs) => exprs.iter().map(Expr::output_name).collect(),
                FrameStep::GroupBy { keys, aggs } => {
                    keys.iter().chain(aggs).map(Expr::output_name).collect()
                }
                FrameStep::WithColumns(exprs) => {
                    for name in exprs.iter().map(Expr::output_name) {
                        if !input.contains(&name) {
                            input.push(name);
                        }
                    }
                    input
                }
                FrameStep::Drop(dropped) => {
                    input.retain(|n| !dropped.contains(n));
                    input
                }
                FrameStep::Rename(pairs) => input
                    .into_iter()
                    .map(|n| match pairs.iter().find(|(old, _)| *old == n) {
                        Some((_, new)) => new.clone(),
                        None => n,
                    })
                    .collect(),
                _ => input,
            }
        }
        Relation::Join { left, right, on } => {
            let mut out = names(left, tables);
            if !matches!(on.how, JoinKind::Semi | JoinKind::Anti) {
                out.extend(names(right, tables));
            }
            out
        }
        Relation::Union(inputs) => inputs
            .first()
            .map(|first| names(first, tables))
            .unwrap_or_default(),
    }
}
