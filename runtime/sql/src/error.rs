//! What can be wrong with a query, each error saying what to write instead.

/// A query that cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The text is not SQL the parser reads.
    #[error("the query does not parse: {0}")]
    Parse(String),
    /// Not exactly one query.
    #[error("sc.sql runs one SELECT query; this text has {0}")]
    NotOneQuery(String),
    /// A table that is not registered.
    #[error(
        "no table named `{name}` (tables: {known}); register a DataFrame under that name with df.register(\"{name}\")"
    )]
    UnknownTable {
        /// The name the query used.
        name: String,
        /// The registered names.
        known: String,
    },
    /// A column no table of the query has.
    #[error("no column `{name}` here (columns: {known}); check its name and table")]
    UnknownColumn {
        /// The name the query used.
        name: String,
        /// The columns that could be meant.
        known: String,
    },
    /// An unqualified column that more than one table has.
    #[error("column `{name}` is in more than one table ({tables}): write it as table.{name}")]
    AmbiguousColumn {
        /// The column's name.
        name: String,
        /// The tables that have it.
        tables: String,
    },
    /// A column read in an aggregating query that is neither a group key nor aggregated.
    #[error(
        "column `{0}` is neither grouped nor aggregated: add it to GROUP BY, or aggregate it (sum, min, max, ...)"
    )]
    NotGrouped(String),
    /// Two result columns of one name.
    #[error("two columns of the result are named `{0}`: name one of them with AS")]
    DuplicateName(String),
    /// Tables with no join condition between them.
    #[error(
        "nothing joins {0} to the other tables: add a condition such as a.key = b.key to WHERE or ON (Tessera runs no cross joins)"
    )]
    CrossJoin(String),
    /// A UNION of results with different numbers of columns.
    #[error(
        "UNION of {left} columns with {right}: select the same number of columns, in the same order, on both sides"
    )]
    UnionWidth {
        /// Columns of the left side.
        left: usize,
        /// Columns of the right side.
        right: usize,
    },
    /// A literal that does not mean what its type says.
    #[error("{what} `{text}`: {expected}")]
    BadLiteral {
        /// What kind of literal.
        what: &'static str,
        /// The literal as written.
        text: String,
        /// How to write it.
        expected: &'static str,
    },
    /// Something of SQL this planner does not plan.
    #[error("{what} is not supported in Tessera's SQL: {instead}")]
    Unsupported {
        /// What the query used.
        what: String,
        /// What to write instead.
        instead: &'static str,
    },
}

impl SqlError {
    /// An unsupported construct, with what to write instead.
    pub(crate) fn unsupported(what: impl std::fmt::Display, instead: &'static str) -> SqlError {
        SqlError::Unsupported {
            what: what.to_string(),
            instead,
        }
    }
}
