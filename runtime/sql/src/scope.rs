//! The columns a query's expressions can name at one point of its plan: each with the table
//! (alias) it came from, the name SQL knows it by, and the column it is in the DataFrame
//! there (renamed where two joined tables share a name).

use crate::error::SqlError;

/// A column SQL can name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScopeColumn {
    /// The table or alias it belongs to (`None` for a query's own result columns).
    pub qualifier: Option<String>,
    /// Its name in SQL.
    pub name: String,
    /// Its column in the DataFrame.
    pub column: String,
}

/// The columns SQL can name, in the order `*` lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    pub columns: Vec<ScopeColumn>,
}

fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Scope {
    /// The columns `names` of a table known as `qualifier`.
    pub fn of_table(qualifier: &str, names: &[String]) -> Scope {
        Scope {
            columns: names
                .iter()
                .map(|name| ScopeColumn {
                    qualifier: Some(qualifier.to_string()),
                    name: name.clone(),
                    column: name.clone(),
                })
                .collect(),
        }
    }

    /// The same columns, all known as `qualifier`'s (a subquery's result under its alias).
    pub fn qualified(mut self, qualifier: &str) -> Scope {
        for column in &mut self.columns {
            column.qualifier = Some(qualifier.to_string());
        }
        self
    }

    /// The DataFrame columns, each once, in order.
    pub fn frame_columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.columns {
            if !out.contains(&c.column) {
                out.push(c.column.clone());
            }
        }
        out
    }

    /// The columns of table `qualifier` (for `t.*`).
    pub fn of_qualifier(&self, qualifier: &str) -> Vec<&ScopeColumn> {
        self.columns
            .iter()
            .filter(|c| {
                c.qualifier
                    .as_deref()
                    .is_some_and(|q| same_name(q, qualifier))
            })
            .collect()
    }

    /// The column `parts` (`name` or `table.name`) names: an exact match of its name first,
    /// else one that differs in case only (unquoted SQL names ignore case).
    pub fn resolve(&self, parts: &[String]) -> Result<&ScopeColumn, SqlError> {
        let (qualifier, name) = match parts {
            [name] => (None, name),
            [qualifier, name] => (Some(qualifier), name),
            _ => {
                return Err(SqlError::unsupported(
                    format!("the name `{}`", parts.join(".")),
                    "name a column as column or table.column",
                ));
            }
        };
        let of_table = |c: &&ScopeColumn| match qualifier {
            None => true,
            Some(q) => c.qualifier.as_deref().is_some_and(|cq| same_name(cq, q)),
        };
        let exact: Vec<&ScopeColumn> = self
            .columns
            .iter()
            .filter(of_table)
            .filter(|c| c.name == *name)
            .collect();
        let found = if exact.is_empty() {
            self.columns
                .iter()
                .filter(of_table)
                .filter(|c| same_name(&c.name, name))
                .collect()
        } else {
            exact
        };
        match found.as_slice() {
            [] => Err(SqlError::UnknownColumn {
                name: parts.join("."),
                known: self.describe(),
            }),
            [one] => Ok(one),
            [first, rest @ ..] if rest.iter().all(|c| c.column == first.column) => Ok(first),
            many => Err(SqlError::AmbiguousColumn {
                name: name.clone(),
                tables: many
                    .iter()
                    .map(|c| c.qualifier.clone().unwrap_or_else(|| "the query".into()))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// `table.name, ...`, for messages.
    fn describe(&self) -> String {
        self.columns
            .iter()
            .map(|c| match &c.qualifier {
                Some(q) => format!("{q}.{}", c.name),
                None => c.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The tables (or aliases) a scope's columns come from, for messages.
pub(crate) fn qualifiers_of(scope: &Scope) -> String {
    let mut names: Vec<String> = Vec::new();
    for c in &scope.columns {
        let q = c.qualifier.clone().unwrap_or_else(|| "a subquery".into());
        if !names.contains(&q) {
            names.push(q);
        }
    }
    names.join(" and ")
}

/// `wanted`, or `wanted` with a number after it, whichever `taken` does not hold yet.
pub(crate) fn fresh_name(wanted: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == wanted) {
        return wanted.to_string();
    }
    (2..)
        .map(|n| format!("{wanted}_{n}"))
        .find(|candidate| !taken.contains(candidate))
        .expect("some number is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined() -> Scope {
        let mut scope = Scope::of_table("o", &["id".into(), "customer".into()]);
        let mut customers = Scope::of_table("c", &["id".into(), "name".into()]);
        customers.columns[0].column = "c.id".into();
        scope.columns.extend(customers.columns);
        scope
    }

    fn parts(text: &str) -> Vec<String> {
        text.split('.').map(String::from).collect()
    }

    #[test]
    fn a_qualified_name_finds_its_tables_column_and_an_unqualified_shared_one_is_ambiguous() {
        let scope = joined();
        assert_eq!(scope.resolve(&parts("c.id")).unwrap().column, "c.id");
        assert_eq!(scope.resolve(&parts("O.ID")).unwrap().column, "id");
        assert_eq!(scope.resolve(&parts("name")).unwrap().column, "name");
        let error = scope.resolve(&parts("id")).unwrap_err();
        assert!(error.to_string().contains("o, c"), "{error}");
        let error = scope.resolve(&parts("price")).unwrap_err();
        assert!(error.to_string().contains("c.name"), "{error}");
    }

    #[test]
    fn names_that_are_one_column_are_not_ambiguous() {
        let mut scope = joined();
        scope.columns[2].column = "id".into();
        assert_eq!(scope.resolve(&parts("id")).unwrap().column, "id");
        assert_eq!(scope.frame_columns(), ["id", "customer", "name"]);
    }

    #[test]
    fn fresh_names_avoid_taken_ones() {
        let taken = vec!["a".to_string(), "a_2".to_string()];
        assert_eq!(fresh_name("b", &taken), "b");
        assert_eq!(fresh_name("a", &taken), "a_3");
    }
}
