//! The text of one query, parsed by `sqlparser`: what [`crate::plan`] plans, and the text the
//! eager aggregation rewrites a `SELECT` into. A file of its own, below both.

use crate::error::SqlError;
use sqlparser::ast::{self as sql, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

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
