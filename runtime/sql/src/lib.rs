//! SQL over the DataFrames a session registered as tables (`df.register("t")`,
//! `sc.sql("SELECT ...")`).
//!
//! A query is parsed by `sqlparser` — the parser polars' own SQL front end uses — and planned
//! here into a [`Relation`]: a tree of the same DataFrame operations a cell builds with the
//! DataFrame API (steps, joins, unions over registered tables). The driver adds each node as
//! it adds any DataFrame operation, so a SQL query is distributed, cached, explained and
//! recovered as those are, and runs with polars on the executors.
//!
//! Planning is a pure function of the query text and the tables' column names
//! ([`plan`]); nothing here reads data or links polars. Why not polars' SQL front end itself:
//! it plans into polars' single-node logical plan, whose joins of `FROM a, b WHERE ...` are
//! cross joins under a filter and whose aggregates are not split into the partial and final
//! phases a distributed aggregation needs; translating that plan back would be as large as
//! this planner, and polars-sql's compile time is beyond this project's build budget.
//!
//! What a query may use: `SELECT [DISTINCT]` of columns, `*`, `t.*` and expressions with
//! aliases; `FROM` tables, subqueries and `WITH` queries, joined with commas (their join
//! conditions in `WHERE`) or `[INNER | LEFT | RIGHT | FULL] JOIN ... ON/USING` on equalities
//! of columns; `WHERE`; `GROUP BY` (columns, expressions, output aliases or positions) with
//! `sum`, `avg`, `min`, `max`, `count(*)`, `count(x)`, `count(DISTINCT x)`; `HAVING`;
//! `ORDER BY` (any expression, `ASC`/`DESC`); `LIMIT`; `UNION [ALL]`. Expressions: arithmetic,
//! comparisons, `AND`/`OR`/`NOT`, `IS [NOT] NULL`, `BETWEEN`, `IN (...)`, `LIKE` with `%` at
//! the ends, `CASE`, `CAST`, `EXTRACT(YEAR|MONTH|DAY FROM ...)`, `upper`, `lower`, `length`,
//! `abs`, `round`, and `DATE '...'` literals with `± INTERVAL 'n' DAY|MONTH|YEAR`. Anything
//! else is an error that names it.

#![deny(missing_docs)]

mod eager;
mod error;
mod expr;
mod from;
mod order;
mod parse;
mod planner;
mod prune;
mod query;
mod relation;
mod scope;
mod select;

pub use error::SqlError;
pub use relation::{Relation, Tables};

/// Plans `sql`, one `SELECT` query, over `tables`.
pub fn plan(sql: &str, tables: &Tables) -> Result<Relation, SqlError> {
    let query = parse::parse(sql)?;
    let planned = planner::Planner::new(tables).query(&query)?;
    Ok(prune::pruned(planned.relation, tables))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plan::frame::{Expr, FrameStep, JoinKind, col, lit};

    fn tables() -> Tables {
        let table = |name: &str, columns: &[&str]| {
            (
                name.to_string(),
                columns.iter().map(|c| c.to_string()).collect(),
            )
        };
        Tables::from([
            table(
                "customer",
                &["c_custkey", "c_name", "c_mktsegment", "c_nationkey"],
            ),
            table(
                "orders",
                &["o_orderkey", "o_custkey", "o_orderdate", "o_total"],
            ),
            table(
                "lineitem",
                &["l_orderkey", "l_price", "l_discount", "l_flag"],
            ),
            table("users", &["id", "name"]),
            table("visits", &["id", "user", "page"]),
        ])
    }

    /// The relation as text: each node and its inputs, for comparing shapes.
    fn shape(relation: &Relation) -> String {
        match relation {
            Relation::Table(name) => name.clone(),
            Relation::Step { input, step } => {
                let name = format!("{step:?}");
                let kind = name.split(['(', ' ', '{']).next().unwrap_or("").to_string();
                format!("{}.{kind}", shape(input))
            }
            Relation::Join { left, right, on } => format!(
                "join({}, {} on {:?}={:?} {:?})",
                shape(left),
                shape(right),
                on.left_on,
                on.right_on,
                on.how
            ),
            Relation::Union(inputs) => {
                let inputs: Vec<String> = inputs.iter().map(shape).collect();
                format!("union({})", inputs.join(", "))
            }
        }
    }

    /// The join nearest the result.
    fn first_join(relation: &Relation) -> &Relation {
        match relation {
            Relation::Step { input, .. } => first_join(input),
            other => other,
        }
    }

    fn steps_of(relation: &Relation) -> Vec<FrameStep> {
        match relation {
            Relation::Step { input, step } => {
                let mut steps = steps_of(input);
                steps.push(step.clone());
                steps
            }
            _ => Vec::new(),
        }
    }

    #[test]
    fn comma_joins_join_on_their_where_equalities_with_one_table_filters_applied_first() {
        let planned = plan(
            "SELECT l_orderkey, sum(l_price * (1 - l_discount)) AS revenue, o_orderdate
             FROM customer, orders, lineitem
             WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey
               AND l_orderkey = o_orderkey AND o_orderdate < DATE '1995-03-15'
             GROUP BY l_orderkey, o_orderdate
             ORDER BY revenue DESC, o_orderdate
             LIMIT 10",
            &tables(),
        )
        .unwrap();
        assert_eq!(
            shape(&planned),
            "join(join(customer.Select.Filter.Select, orders.Select.Filter on [\"c_custkey\"]=[\"o_custkey\"] Inner).Select, \
             lineitem.Select on [\"o_orderkey\"]=[\"l_orderkey\"] Inner).Select\
             .GroupBy.Select.Sort.Head"
        );
        let steps = steps_of(&planned);
        // The right key of the second join is read from the left key that equals it.
        assert_eq!(
            steps[1],
            FrameStep::GroupBy {
                keys: vec![col("o_orderkey"), col("o_orderdate")],
                aggs: vec![
                    (col("l_price") * (lit(1) - col("l_discount")))
                        .sum()
                        .alias("__agg_0")
                ],
            }
        );
        assert_eq!(
            steps[2],
            FrameStep::Select(vec![
                col("o_orderkey").alias("l_orderkey"),
                col("__agg_0").alias("revenue"),
                col("o_orderdate"),
            ])
        );
        assert_eq!(
            steps[3],
            FrameStep::Sort {
                by: vec!["revenue".into(), "o_orderdate".into()],
                descending: vec![true, false],
            }
        );
        assert_eq!(steps[4], FrameStep::Head(10));
    }

    #[test]
    fn shared_column_names_are_told_apart_by_table() {
        let planned = plan(
            "SELECT u.name, count(*) AS visits, count(DISTINCT v.page) AS pages
             FROM users u JOIN visits v ON u.id = v.user
             GROUP BY u.name HAVING count(*) > 1",
            &tables(),
        )
        .unwrap();
        let text = shape(&planned);
        assert!(
            text.starts_with(
                "join(users, visits.Select.Rename on [\"id\"]=[\"user\"] Inner).Select.GroupBy.Filter.Select"
            ),
            "{text}"
        );
        let error = plan(
            "SELECT id FROM users u JOIN visits v ON u.id = v.user",
            &tables(),
        )
        .unwrap_err();
        assert!(matches!(error, SqlError::AmbiguousColumn { .. }), "{error}");
        // `*` of an inner join on a shared name keeps one key column, the others by table.
        let star = plan("SELECT * FROM users JOIN visits USING (id)", &tables()).unwrap();
        let Some(FrameStep::Select(columns)) = steps_of(&star).last().cloned() else {
            panic!("{star:?}")
        };
        let names: Vec<String> = columns.iter().map(Expr::output_name).collect();
        assert_eq!(names, ["id", "name", "user", "page"]);
    }

    #[test]
    fn a_column_only_a_filter_reads_is_dropped_after_it() {
        let planned = plan(
            "SELECT sum(l_price) AS total FROM orders, lineitem
             WHERE l_orderkey = o_orderkey AND l_flag = 'R' AND o_orderdate < DATE '1995-03-15'",
            &tables(),
        )
        .unwrap();
        let Relation::Join { left, right, .. } = first_join(&planned) else {
            panic!("{planned:?}")
        };
        // lineitem's flag is read by its filter alone: the filter's rows go on without it.
        assert_eq!(
            steps_of(right),
            [
                FrameStep::Select(vec![col("l_orderkey"), col("l_price"), col("l_flag")]),
                FrameStep::Filter(col("l_flag").eq(lit("R"))),
                FrameStep::Select(vec![col("l_orderkey"), col("l_price")]),
            ],
            "{}",
            shape(&planned)
        );
        // So is the orders' date.
        assert_eq!(
            steps_of(left).last(),
            Some(&FrameStep::Select(vec![col("o_orderkey")])),
            "{}",
            shape(&planned)
        );
    }

    #[test]
    fn a_self_join_renames_only_the_columns_of_the_other_side_it_reads() {
        let planned = plan(
            "SELECT a.id, b.page FROM visits a JOIN visits b ON a.id = b.id",
            &tables(),
        )
        .unwrap();
        let Relation::Join { right, .. } = first_join(&planned) else {
            panic!("{planned:?}")
        };
        // Of the other side, its key and `page` are read, and only they are renamed: `user` is
        // pruned below the renaming.
        let steps = steps_of(right);
        assert_eq!(
            steps[..2],
            [
                FrameStep::Select(vec![col("id"), col("page")]),
                FrameStep::Rename(vec![
                    ("id".into(), "b.id".into()),
                    ("page".into(), "b.page".into())
                ]),
            ],
            "{}",
            shape(&planned)
        );
    }

    #[test]
    fn outer_joins_keep_both_sides_key_columns() {
        let planned = plan(
            "SELECT u.id, v.id AS visit FROM users u LEFT JOIN visits v ON u.id = v.id",
            &tables(),
        )
        .unwrap();
        let Relation::Join { on, .. } = first_join(&planned) else {
            panic!("{planned:?}")
        };
        assert_eq!(on.how, JoinKind::Left);
        assert_eq!(on.left_on, ["__left_key_0"]);
        assert_eq!(on.right_on, ["__right_key_0"]);
        let Some(FrameStep::Select(columns)) = steps_of(&planned).last().cloned() else {
            panic!()
        };
        assert_eq!(columns, [col("id"), col("v.id").alias("visit")]);
    }

    #[test]
    fn order_by_an_expression_not_selected_sorts_on_a_hidden_column() {
        let planned = plan(
            "SELECT name FROM users WHERE id > 3 ORDER BY id % 10 DESC",
            &tables(),
        )
        .unwrap();
        let steps = steps_of(&planned);
        assert_eq!(steps[0], FrameStep::Filter(col("id").gt(lit(3))));
        assert_eq!(
            steps[1],
            FrameStep::Select(vec![col("name"), (col("id") % lit(10)).alias("__order_0")])
        );
        assert_eq!(steps.last(), Some(&FrameStep::Select(vec![col("name")])));
    }

    #[test]
    fn unions_subqueries_and_with_queries() {
        let planned = plan(
            "WITH busy AS (SELECT user, count(*) AS n FROM visits GROUP BY user)
             SELECT name FROM users, busy WHERE id = user AND n > 2
             UNION ALL SELECT page FROM (SELECT * FROM visits) v",
            &tables(),
        )
        .unwrap();
        let Relation::Union(sides) = &planned else {
            panic!("{planned:?}")
        };
        assert_eq!(sides.len(), 2);
        let Some(FrameStep::Select(renamed)) = steps_of(&sides[1]).last().cloned() else {
            panic!()
        };
        assert_eq!(renamed, [col("page").alias("name")]);
        let error = plan(
            "SELECT id FROM users UNION SELECT id, page FROM visits",
            &tables(),
        )
        .unwrap_err();
        assert_eq!(error, SqlError::UnionWidth { left: 1, right: 2 });
    }

    #[test]
    fn tables_are_read_down_to_the_columns_the_query_uses() {
        let planned = plan(
            "SELECT c_name FROM customer JOIN orders ON c_custkey = o_custkey WHERE o_total > 3",
            &tables(),
        )
        .unwrap();
        let Relation::Join { left, right, .. } = first_join(&planned) else {
            panic!("{planned:?}")
        };
        assert_eq!(
            steps_of(left),
            [FrameStep::Select(vec![col("c_custkey"), col("c_name")])]
        );
        assert_eq!(
            steps_of(right)[0],
            FrameStep::Select(vec![col("o_custkey"), col("o_total")])
        );
        // count(*) reads no column, but a frame without columns would have no rows.
        let count = plan("SELECT count(*) AS n FROM users", &tables()).unwrap();
        assert_eq!(steps_of(&count)[0], FrameStep::Select(vec![col("id")]));
    }

    #[test]
    fn mistakes_are_named_with_what_to_write_instead() {
        let message = |sql: &str| plan(sql, &tables()).unwrap_err().to_string();
        assert!(message("SELECT * FROM nope").contains("df.register(\"nope\")"));
        assert!(message("SELECT nope FROM users").contains("users.name"));
        assert!(message("SELECT name, count(*) FROM users").contains("GROUP BY"));
        assert!(message("SELECT * FROM users, visits").contains("nothing joins visits"));
        assert!(message("SELECT name AS a, id AS a FROM users").contains("AS"));
        assert!(message("SELECT * FROM users WHERE sum(id) > 1").contains("HAVING"));
        assert!(message("DELETE FROM users").contains("one SELECT"));
        assert!(message("SELECT 1; SELECT 2").contains("2 statements"));
        assert!(message("SELEC name FROM users").contains("does not parse"));
        assert!(message("SELECT name FROM users LIMIT 5 OFFSET 2").contains("OFFSET"));
        let deep = format!("SELECT {}1{} FROM users", "(".repeat(500), ")".repeat(500));
        assert!(message(&deep).contains("does not parse"));
    }
}
