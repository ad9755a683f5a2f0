//! SQL queries over the session's registered tables: planned by [`tessera_sql`] into DataFrame
//! operations, each added here as the same operation from a cell would be — so a query's
//! aggregations run in two phases, its joins broadcast or shuffle, and its plan is explained,
//! cached and recovered like any DataFrame's.

use crate::error::DriverError;
use crate::frames::{self, Frame};
use crate::state::DriverState;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tessera_plan::RddId;
use tessera_sql::{Relation, SqlError, Tables};

/// Adds the DataFrame SQL `query` makes of the registered tables.
pub async fn run(state: &Arc<DriverState>, query: &str) -> Result<Frame, DriverError> {
    let tables = state.frames.tables();
    let columns = tables
        .iter()
        .map(|(name, &rdd)| {
            let schema = state.frames.get(rdd)?;
            let names = schema.names().into_iter().map(String::from).collect();
            Ok((name.clone(), names))
        })
        .collect::<Result<Tables, DriverError>>()?;
    let relation = tessera_sql::plan(query, &columns)?;
    add(state, &relation, &tables).await
}

type Added<'a> = Pin<Box<dyn Future<Output = Result<Frame, DriverError>> + Send + 'a>>;

/// Adds `relation`'s operations, inputs first.
fn add<'a>(
    state: &'a Arc<DriverState>,
    relation: &'a Relation,
    tables: &'a BTreeMap<String, RddId>,
) -> Added<'a> {
    Box::pin(async move {
        match relation {
            Relation::Table(name) => {
                let rdd = tables.get(name).ok_or_else(|| SqlError::UnknownTable {
                    name: name.clone(),
                    known: tables.keys().cloned().collect::<Vec<_>>().join(", "),
                })?;
                frames::describe(state, *rdd)
            }
            Relation::Step { input, step } => {
                let input = add(state, input, tables).await?;
                let name = format!("sql: {}", step.operation());
                frames::apply(state, input.rdd, step.clone(), &name)
            }
            Relation::Join { left, right, on } => {
                let left = add(state, left, tables).await?;
                let right = add(state, right, tables).await?;
                frames::join(state, left.rdd, right.rdd, on.clone(), "sql: join").await
            }
            Relation::Union(inputs) => {
                let mut rdds = Vec::new();
                for input in inputs {
                    rdds.push(add(state, input, tables).await?.rdd);
                }
                frames::union(state, &rdds, "sql: union")
            }
        }
    })
}
