//! The planner's state and what it makes: the registered tables and the `WITH` queries in
//! reach ([`Planner`]), and a relation planned so far with the columns SQL can name in it
//! ([`Planned`]).
//!
//! A file of its own, below every part of the planner, as DataFusion keeps its `SqlToRel`:
//! a query's parts plan each other recursively (a `SELECT` plans its `FROM`, whose subquery is
//! a query again), and each part adds its methods to [`Planner`] or takes it as an argument,
//! so that the recursion runs through the type, not through imports between the parts.

use crate::error::SqlError;
use crate::relation::{Relation, Tables};
use crate::scope::{Scope, ScopeColumn};
use tessera_plan::frame::FrameStep;

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

/// Plans queries over `tables` and the `WITH` queries in reach.
pub(crate) struct Planner<'t> {
    tables: &'t Tables,
    /// The `WITH` queries in reach, each with its name, the innermost last (a query pushes its
    /// own and drops them when it is planned).
    pub(crate) with: Vec<(String, Planned)>,
}

impl<'t> Planner<'t> {
    pub fn new(tables: &'t Tables) -> Planner<'t> {
        Planner {
            tables,
            with: Vec::new(),
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
