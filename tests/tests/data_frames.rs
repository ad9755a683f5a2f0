//! DataFrames against polars on one node (the oracle): a script runs each operation, and SQL
//! queries that join several tables, on CSV files split into partitions — with nulls, a skewed
//! key and a file with no rows — on `local[2]` and on a loopback cluster, and every result must
//! be the rows polars computes over the same files in this process. Floats may differ in their
//! last digits (partial sums add in another order).

use polars_core::prelude::*;
use polars_io::prelude::*;
use polars_lazy::prelude::*;
use std::collections::BTreeMap;
use std::io::Cursor;
use tessera_e2e::{REPORT_PEAKS, Scratch, peaks, tessera_run, tessera_run_with_env};
use tessera_frame::convert::value_from_polars;

/// Sales rows: id, region (four in five are `north`, some missing), product (one of 20),
/// amount (some missing), quantity.
fn sales_rows(first_id: u64, count: u64) -> String {
    let mut x = first_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = String::new();
    for id in first_id..first_id + count {
        let region = match next() % 20 {
            0 => "",
            1 => "south",
            2 => "east",
            3 => "west",
            _ => "north",
        };
        let product = format!("p{}", next() % 20);
        let amount = match next() % 20 {
            0 => String::new(),
            n => format!("{}.{:02}", n * 7 + next() % 50, next() % 100),
        };
        let qty = 1 + next() % 9;
        out.push_str(&format!("{id},{region},{product},{amount},{qty}\n"));
    }
    out
}

const HEADER: &str = "id,region,product,amount,qty\n";

/// The products (each with a category and a price) and the regions with a manager (`west` has
/// none, and `north-east` has no sales).
const PRODUCTS: &str = "product,category,price\n";
const REGIONS: &str = "name,manager\nnorth,ann\nsouth,bob\neast,cy\nnorth-east,di\n";

fn products() -> String {
    let mut text = PRODUCTS.to_string();
    for p in 0..20 {
        text.push_str(&format!("p{p},c{},{}.5\n", p % 4, p + 1));
    }
    text
}

/// Writes the data set: two files of rows and one with only a header (an empty partition),
/// and the small tables; returns every sales row (with one header).
fn write_sales(dir: &Scratch) -> String {
    dir.write("products.csv", &products());
    dir.write("regions.csv", REGIONS);
    std::fs::create_dir_all(dir.0.join("sales")).unwrap();
    let files = [
        ("sales/part-0.csv", sales_rows(1, 3000)),
        ("sales/part-1.csv", sales_rows(3001, 2000)),
        ("sales/part-2.csv", String::new()),
    ];
    let mut all = HEADER.to_string();
    for (name, rows) in files {
        dir.write(name, &format!("{HEADER}{rows}"));
        all.push_str(&rows);
    }
    all
}

/// The tables the queries read, as polars reads them.
struct Tables {
    sales: LazyFrame,
    products: LazyFrame,
    regions: LazyFrame,
}

impl Tables {
    /// Sales joined with their product's row and their region's.
    fn sales_with_products_and_regions(&self) -> LazyFrame {
        self.sales
            .clone()
            .inner_join(self.products.clone(), col("product"), col("product"))
            .inner_join(self.regions.clone(), col("region"), col("name"))
    }
}

/// Each query: its name, whether its rows come in a defined order, the DataFrame code of the
/// script, and the same query in polars.
type Oracle = fn(&Tables) -> LazyFrame;

fn queries() -> Vec<(&'static str, bool, &'static str, Oracle)> {
    vec![
        (
            "filter_select",
            false,
            r#"sales.filter(col("amount").gt(lit(50.0)).and(col("region").eq(lit("north")))).select([col("id"), (col("amount") * lit(2)).alias("double"), col("qty")])"#,
            |t| {
                let s = t.sales.clone();
                s.filter(
                    col("amount")
                        .gt(lit(50.0))
                        .and(col("region").eq(lit("north"))),
                )
                .select([
                    col("id"),
                    (col("amount") * lit(2)).alias("double"),
                    col("qty"),
                ])
            },
        ),
        (
            "group_by",
            false,
            r#"sales.group_by(["region"]).agg([col("amount").sum().alias("total"), col("amount").mean().alias("avg"), col("amount").min().alias("lo"), col("amount").max().alias("hi"), col("amount").count().alias("priced"), len().alias("n")])"#,
            |t| {
                let s = t.sales.clone();
                s.group_by([col("region")]).agg([
                    col("amount").sum().alias("total"),
                    col("amount").mean().alias("avg"),
                    col("amount").min().alias("lo"),
                    col("amount").max().alias("hi"),
                    col("amount").count().alias("priced"),
                    len().alias("n"),
                ])
            },
        ),
        (
            "group_by_two_keys",
            false,
            r#"sales.group_by(["region", "product"]).agg([col("qty").sum().alias("units"), (col("amount").max() - col("amount").min()).alias("spread")])"#,
            |t| {
                let s = t.sales.clone();
                s.group_by([col("region"), col("product")]).agg([
                    col("qty").sum().alias("units"),
                    (col("amount").max() - col("amount").min()).alias("spread"),
                ])
            },
        ),
        (
            // The filter keeps about 19 rows in 20 (it leaves out the rows without an amount):
            // those it leaves out are grouped apart on each partition, under a key of their
            // own, and that group is dropped (regions, null among them, are short enough to
            // be packed into one key).
            "group_by_most_rows_kept",
            false,
            r#"sales.filter(col("amount").gt(lit(10.0))).with_columns([(col("amount") * (lit(1) + col("qty"))).alias("gross")]).group_by(["region"]).agg([col("gross").sum().alias("total"), col("amount").mean().alias("avg"), col("amount").count().alias("priced"), len().alias("n")])"#,
            |t| {
                let s = t.sales.clone();
                s.filter(col("amount").gt(lit(10.0)))
                    .with_columns([(col("amount") * (lit(1) + col("qty"))).alias("gross")])
                    .group_by([col("region")])
                    .agg([
                        col("gross").sum().alias("total"),
                        col("amount").mean().alias("avg"),
                        col("amount").count().alias("priced"),
                        len().alias("n"),
                    ])
            },
        ),
        (
            "whole",
            false,
            r#"sales.select([col("amount").sum().alias("total"), col("qty").mean().alias("avg_qty"), len().alias("n")])"#,
            |t| {
                let s = t.sales.clone();
                s.select([
                    col("amount").sum().alias("total"),
                    col("qty").mean().alias("avg_qty"),
                    len().alias("n"),
                ])
            },
        ),
        (
            "distinct",
            false,
            r#"sales.select([col("region"), col("product")]).distinct()"#,
            |t| {
                let s = t.sales.clone();
                s.select([col("region"), col("product")])
                    .unique_stable(None, UniqueKeepStrategy::First)
            },
        ),
        (
            "with_drop_rename",
            false,
            r#"sales.with_columns([(col("amount") * col("qty")).alias("revenue")]).drop(&["product"]).rename("qty", "units").filter(col("id").lt(lit(100)))"#,
            |t| {
                let s = t.sales.clone();
                s.with_columns([(col("amount") * col("qty")).alias("revenue")])
                    .drop(Selector::ByName {
                        names: [PlSmallStr::from_static("product")].into(),
                        strict: true,
                    })
                    .rename(["qty"], ["units"], true)
                    .filter(col("id").lt(lit(100)))
            },
        ),
        (
            "sorted_top",
            true,
            r#"sales.filter(col("amount").is_not_null()).sort_by(&["amount", "id"], &[true, false]).limit(7)"#,
            |t| {
                let s = t.sales.clone();
                s.filter(col("amount").is_not_null())
                    .sort(
                        ["amount", "id"],
                        SortMultipleOptions::default().with_order_descending_multi([true, false]),
                    )
                    .limit(7)
            },
        ),
        (
            // The first rows of the first partitions, in the order the files hold them.
            "first_rows",
            true,
            r#"sales.filter(col("qty").gt(lit(2))).limit(6)"#,
            |t| {
                let s = t.sales.clone();
                s.filter(col("qty").gt(lit(2))).limit(6)
            },
        ),
        (
            // Quantities repeat: the first nine by it keep the order of the rows they came in,
            // across partitions too, as one stable sort of every row gives them.
            "sorted_top_with_ties",
            true,
            r#"sales.sort_by(&["qty"], &[false]).limit(9)"#,
            |t| {
                let s = t.sales.clone();
                s.sort(
                    ["qty"],
                    SortMultipleOptions::default().with_maintain_order(true),
                )
                .limit(9)
            },
        ),
        (
            // Every row, by a string descending then a column with nulls: ranges of the keys
            // in as many partitions as the files were read in, ties in the files' order.
            "sorted_every_row",
            true,
            r#"sales.sort_by(&["region", "amount"], &[true, false])"#,
            |t| {
                let s = t.sales.clone();
                s.sort(
                    ["region", "amount"],
                    SortMultipleOptions::default()
                        .with_order_descending_multi([true, false])
                        .with_maintain_order(true),
                )
            },
        ),
        (
            "group_by_sorted",
            true,
            r#"sales.group_by(["product"]).agg([col("qty").sum().alias("units")]).sort_by(&["units", "product"], &[true, false])"#,
            |t| {
                let s = t.sales.clone();
                s.group_by([col("product")])
                    .agg([col("qty").sum().alias("units")])
                    .sort(
                        ["units", "product"],
                        SortMultipleOptions::default().with_order_descending_multi([true, false]),
                    )
            },
        ),
        (
            "union",
            false,
            r#"sales.union(&[sales.filter(col("qty").eq(lit(3)))]).group_by(["region"]).agg([len().alias("n")])"#,
            |t| {
                let s = t.sales.clone();
                concat(
                    [s.clone(), s.filter(col("qty").eq(lit(3)))],
                    UnionArgs::default(),
                )
                .unwrap()
                .group_by([col("region")])
                .agg([len().alias("n")])
            },
        ),
        (
            "n_unique",
            false,
            r#"sales.group_by(["region"]).agg([col("product").n_unique().alias("products")])"#,
            |t| {
                t.sales
                    .clone()
                    .group_by([col("region")])
                    .agg([col("product").n_unique().alias("products")])
            },
        ),
        (
            "when",
            false,
            r#"sales.select([when(col("amount").gt(lit(50.0))).then(lit("big")).otherwise(lit("small")).alias("size")]).group_by(["size"]).agg([len().alias("n")])"#,
            |t| {
                let s = t.sales.clone();
                s.select([when(col("amount").gt(lit(50.0)))
                    .then(lit("big"))
                    .otherwise(lit("small"))
                    .alias("size")])
                    .group_by([col("size")])
                    .agg([len().alias("n")])
            },
        ),
        (
            "join_small_side",
            false,
            r#"sales.join(&products, &["product"], &["product"], JoinKind::Inner).group_by(["category"]).agg([col("qty").sum().alias("units"), (col("qty") * col("price")).sum().alias("list_value")])"#,
            |t| {
                t.sales
                    .clone()
                    .inner_join(t.products.clone(), col("product"), col("product"))
                    .group_by([col("category")])
                    .agg([
                        col("qty").sum().alias("units"),
                        (col("qty") * col("price")).sum().alias("list_value"),
                    ])
            },
        ),
        (
            // Each partition of sales is in `id` order, as its file is: merged with the
            // broadcast side's ids rather than hashed.
            "join_merged_in_key_order",
            false,
            r#"sales.join(&sales.filter(col("qty").gt(lit(7))).select([col("id"), col("amount").alias("other")]), &["id"], &["id"], JoinKind::Inner).select([col("id"), col("region"), col("other")])"#,
            |t| {
                let other = t
                    .sales
                    .clone()
                    .filter(col("qty").gt(lit(7)))
                    .select([col("id"), col("amount").alias("other")]);
                t.sales
                    .clone()
                    .inner_join(other, col("id"), col("id"))
                    .select([col("id"), col("region"), col("other")])
            },
        ),
        (
            // The filter before the join is fused into it, and the side's keys drop the rows
            // they do not meet along with it.
            "join_filtered_with_the_side_s_keys",
            false,
            r#"sales.filter(col("amount").gt(lit(30.0))).join(&sales.filter(col("qty").gt(lit(7))).select([col("id"), col("amount").alias("other")]), &["id"], &["id"], JoinKind::Inner).select([col("id"), col("amount"), col("other")])"#,
            |t| {
                let other = t
                    .sales
                    .clone()
                    .filter(col("qty").gt(lit(7)))
                    .select([col("id"), col("amount").alias("other")]);
                t.sales
                    .clone()
                    .filter(col("amount").gt(lit(30.0)))
                    .inner_join(other, col("id"), col("id"))
                    .select([col("id"), col("amount"), col("other")])
            },
        ),
        (
            // A partition's `qty` is in no order: the side's keys, a bitmap over their range,
            // drop the rows they do not meet all the same.
            "join_filtered_out_of_key_order",
            false,
            r#"sales.filter(col("amount").gt(lit(30.0))).join(&sales.filter(col("qty").gt(lit(6))).group_by(["qty"]).agg([len().alias("n")]), &["qty"], &["qty"], JoinKind::Inner).select([col("id"), col("qty"), col("n")])"#,
            |t| {
                let counts = t
                    .sales
                    .clone()
                    .filter(col("qty").gt(lit(6)))
                    .group_by([col("qty")])
                    .agg([len().alias("n")]);
                t.sales
                    .clone()
                    .filter(col("amount").gt(lit(30.0)))
                    .inner_join(counts, col("qty"), col("qty"))
                    .select([col("id"), col("qty"), col("n")])
            },
        ),
        (
            "join_left",
            false,
            r#"sales.join(&regions, &["region"], &["name"], JoinKind::Left).filter(col("id").lt(lit(300))).select([col("id"), col("manager")])"#,
            |t| {
                t.sales
                    .clone()
                    .join(
                        t.regions.clone(),
                        [col("region")],
                        [col("name")],
                        JoinArgs::new(JoinType::Left),
                    )
                    .filter(col("id").lt(lit(300)))
                    .select([col("id"), col("manager")])
            },
        ),
        (
            "join_semi_anti",
            false,
            r#"sales.join(&regions, &["region"], &["name"], JoinKind::Anti).group_by(["region"]).agg([len().alias("n")]).union(&[sales.join(&regions, &["region"], &["name"], JoinKind::Semi).group_by(["region"]).agg([len().alias("n")])])"#,
            |t| {
                let by = |how| {
                    t.sales
                        .clone()
                        .join(
                            t.regions.clone(),
                            [col("region")],
                            [col("name")],
                            JoinArgs::new(how),
                        )
                        .group_by([col("region")])
                        .agg([len().alias("n")])
                };
                concat(
                    [by(JoinType::Anti), by(JoinType::Semi)],
                    UnionArgs::default(),
                )
                .unwrap()
            },
        ),
        (
            "join_full",
            false,
            r#"regions.join(&sales.group_by(["region"]).agg([len().alias("n")]), &["name"], &["region"], JoinKind::Full)"#,
            |t| {
                t.regions.clone().join(
                    t.sales
                        .clone()
                        .group_by([col("region")])
                        .agg([len().alias("n")]),
                    [col("name")],
                    [col("region")],
                    JoinArgs::new(JoinType::Full),
                )
            },
        ),
        (
            "join_three",
            false,
            r#"sales.join(&products, &["product"], &["product"], JoinKind::Inner).join(&regions, &["region"], &["name"], JoinKind::Inner).join(&sales.select([col("id"), col("qty").alias("qty_again")]), &["id"], &["id"], JoinKind::Inner).group_by(["manager", "category"]).agg([col("qty_again").sum().alias("units"), col("amount").mean().alias("avg")])"#,
            |t| {
                let again = t
                    .sales
                    .clone()
                    .select([col("id"), col("qty").alias("qty_again")]);
                t.sales_with_products_and_regions()
                    .inner_join(again, col("id"), col("id"))
                    .group_by([col("manager"), col("category")])
                    .agg([
                        col("qty_again").sum().alias("units"),
                        col("amount").mean().alias("avg"),
                    ])
            },
        ),
        (
            "sql_comma_joins_grouped",
            false,
            r#"sc.sql("SELECT r.manager, p.category, sum(s.qty) AS units, count(*) AS n, avg(s.amount) AS avg_amount FROM sales s, products p, regions r WHERE s.product = p.product AND s.region = r.name AND s.amount > 20 GROUP BY r.manager, p.category HAVING count(*) > 5")"#,
            |t| {
                t.sales_with_products_and_regions()
                    .filter(col("amount").gt(lit(20)))
                    .group_by([col("manager"), col("category")])
                    .agg([
                        col("qty").sum().alias("units"),
                        len().alias("n"),
                        col("amount").mean().alias("avg_amount"),
                    ])
                    .filter(col("n").gt(lit(5)))
            },
        ),
        (
            "sql_left_join_subquery_ordered",
            true,
            r#"sc.sql("SELECT r.name, r.manager, t.total FROM regions r LEFT JOIN (SELECT region, sum(amount) AS total FROM sales GROUP BY region) t ON r.name = t.region ORDER BY r.name")"#,
            |t| {
                let totals = t
                    .sales
                    .clone()
                    .group_by([col("region")])
                    .agg([col("amount").sum().alias("total")]);
                t.regions
                    .clone()
                    .join(
                        totals,
                        [col("name")],
                        [col("region")],
                        JoinArgs::new(JoinType::Left),
                    )
                    .select([col("name"), col("manager"), col("total")])
                    .sort(["name"], SortMultipleOptions::default())
            },
        ),
        (
            "sql_union_case",
            false,
            r#"sc.sql("SELECT product, CASE WHEN qty > 5 THEN 'many' ELSE 'few' END AS size FROM sales WHERE region = 'east' UNION SELECT product, 'any' AS size FROM sales WHERE region IS NULL")"#,
            |t| {
                let east = t
                    .sales
                    .clone()
                    .filter(col("region").eq(lit("east")))
                    .select([
                        col("product"),
                        when(col("qty").gt(lit(5)))
                            .then(lit("many"))
                            .otherwise(lit("few"))
                            .alias("size"),
                    ]);
                let unknown = t
                    .sales
                    .clone()
                    .filter(col("region").is_null())
                    .select([col("product"), lit("any").alias("size")]);
                concat([east, unknown], UnionArgs::default())
                    .unwrap()
                    .unique(None, UniqueKeepStrategy::First)
            },
        ),
        (
            "sql_count_distinct_between_like_ordered",
            true,
            r#"sc.sql("SELECT region, count(DISTINCT product) AS products, count(amount) AS priced, min(id) AS first FROM sales WHERE qty BETWEEN 2 AND 7 AND product IN ('p1', 'p2', 'p3', 'p11') AND product LIKE 'p1%' GROUP BY region ORDER BY first")"#,
            |t| {
                let product = |p: &str| col("product").eq(lit(p.to_string()));
                t.sales
                    .clone()
                    .filter(
                        col("qty")
                            .gt_eq(lit(2))
                            .and(col("qty").lt_eq(lit(7)))
                            .and(
                                product("p1")
                                    .or(product("p2"))
                                    .or(product("p3"))
                                    .or(product("p11")),
                            )
                            .and(col("product").str().starts_with(lit("p1"))),
                    )
                    .group_by([col("region")])
                    .agg([
                        col("product").n_unique().alias("products"),
                        col("amount").count().alias("priced"),
                        col("id").min().alias("first"),
                    ])
                    .sort(["first"], SortMultipleOptions::default())
            },
        ),
        (
            "sql_group_keys_only",
            false,
            r#"sc.sql("SELECT region, product FROM sales WHERE qty > 7 GROUP BY region, product")"#,
            |t| {
                t.sales
                    .clone()
                    .filter(col("qty").gt(lit(7)))
                    .select([col("region"), col("product")])
                    .unique(None, UniqueKeepStrategy::First)
            },
        ),
        (
            "sql_explicit_joins_top_three",
            true,
            r#"sc.sql("SELECT p.category, r.manager, sum(s.amount * p.price) AS value FROM sales s JOIN products p ON s.product = p.product JOIN regions r ON r.name = s.region WHERE p.price > 5 GROUP BY 1, 2 ORDER BY value DESC LIMIT 3")"#,
            |t| {
                t.sales_with_products_and_regions()
                    .filter(col("price").gt(lit(5)))
                    .group_by([col("category"), col("manager")])
                    .agg([(col("amount") * col("price")).sum().alias("value")])
                    .sort(
                        ["value"],
                        SortMultipleOptions::default().with_order_descending(true),
                    )
                    .limit(3)
            },
        ),
        (
            // Grouped by the product's columns, summing sales: the sales are summed by product
            // before they meet the products (eager aggregation).
            "sql_summed_before_the_join",
            false,
            r#"sc.sql("SELECT p.product, p.category, sum(s.qty) AS units, max(s.amount) AS top FROM sales s, products p WHERE s.product = p.product AND s.qty > 2 GROUP BY p.product, p.category")"#,
            |t| {
                t.sales
                    .clone()
                    .filter(col("qty").gt(lit(2)))
                    .inner_join(t.products.clone(), col("product"), col("product"))
                    .group_by([col("product"), col("category")])
                    .agg([
                        col("qty").sum().alias("units"),
                        col("amount").max().alias("top"),
                    ])
            },
        ),
        (
            // Two grouped tables: the sums by product and region meet the products, listed
            // first, before the regions.
            "sql_summed_before_two_joins",
            false,
            r#"sc.sql("SELECT p.product, r.manager, sum(s.qty) AS units FROM products p, sales s, regions r WHERE s.product = p.product AND s.region = r.name GROUP BY p.product, p.category, r.name, r.manager")"#,
            |t| {
                t.sales
                    .clone()
                    .inner_join(t.products.clone(), col("product"), col("product"))
                    .inner_join(t.regions.clone(), col("region"), col("name"))
                    .group_by([
                        col("product"),
                        col("category"),
                        col("region"),
                        col("manager"),
                    ])
                    .agg([col("qty").sum().alias("units")])
                    .select([col("product"), col("manager"), col("units")])
            },
        ),
        (
            // The other side's columns are renamed apart, and those the query does not read
            // are pruned before their renaming.
            "sql_self_join",
            false,
            r#"sc.sql("SELECT a.id, b.amount FROM sales a JOIN sales b ON a.id = b.id WHERE b.qty > 8")"#,
            |t| {
                t.sales
                    .clone()
                    .filter(col("qty").gt(lit(8)))
                    .select([col("id"), col("amount")])
            },
        ),
    ]
}

/// A function of the scripts: prints a DataFrame's rows as `NAME<TAB>v1<TAB>v2...`.
const EMIT: &str = "fn emit(name: &str, df: &DataFrame) { for row in df.collect_rows().rows { \
    println!(\"{name}\\t{}\", row.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(\"\\t\")); } }\n";

/// The script: reads the files, prints every query's rows as `NAME<TAB>v1<TAB>v2...`.
fn script(dir: &Scratch) -> String {
    let mut script = format!(
        "let sales = sc.read_csv(\"{0}/sales/*.csv\");\n\
         let products = sc.read_csv(\"{0}/products.csv\");\n\
         let regions = sc.read_csv(\"{0}/regions.csv\");\n\
         sales.register(\"sales\");\n\
         products.register(\"products\");\n\
         regions.register(\"regions\");\n\
         {EMIT}\
         println!(\"partitions\\t{{}}\", sales.num_partitions());\n\
         println!(\"count\\t{{}}\", sales.count());\n",
        dir.0.display()
    );
    for (name, _, code, _) in queries() {
        script.push_str(&format!("// %%\nemit(\"{name}\", &{code});\n"));
    }
    script
}

/// CSV text with a header, as polars reads it.
fn read_csv_text(text: &str) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .into_reader_with_file_handle(Cursor::new(text.as_bytes().to_vec()))
        .finish()
        .unwrap()
}

/// The rows a script's `emit(name, ..)` printed.
fn emitted(stdout: &str, name: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}\t")))
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

/// The rows of `frame` as the script prints them.
fn printed_rows(frame: &DataFrame) -> Vec<Vec<String>> {
    (0..frame.height())
        .map(|i| {
            frame
                .columns()
                .iter()
                .map(|c| value_from_polars(&c.get(i).unwrap()).to_string())
                .collect()
        })
        .collect()
}

/// Rows of each query as polars computes them over all the rows at once.
fn oracle(all: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let read = read_csv_text;
    let sales = read(all);
    let tables = Tables {
        sales: sales.clone().lazy(),
        products: read(&products()).lazy(),
        regions: read(REGIONS).lazy(),
    };
    let mut expected = BTreeMap::new();
    expected.insert("count".to_string(), vec![vec![sales.height().to_string()]]);
    for (name, _, _, query) in queries() {
        let frame = query(&tables).collect().unwrap();
        expected.insert(name.to_string(), printed_rows(&frame));
    }
    expected
}

/// Whether two printed values are equal: as text, or as floats within a relative 1e-9.
fn same_value(a: &str, b: &str) -> bool {
    a == b
        || match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => false,
        }
}

fn assert_same_rows(name: &str, ordered: bool, got: &[Vec<String>], expected: &[Vec<String>]) {
    let (mut got, mut expected) = (got.to_vec(), expected.to_vec());
    if !ordered {
        got.sort();
        expected.sort();
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "{name}: {} rows, polars has {}",
        got.len(),
        expected.len()
    );
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            g.len() == e.len() && g.iter().zip(e).all(|(a, b)| same_value(a, b)),
            "{name}: row {g:?}, polars has {e:?}"
        );
    }
}

/// Runs the script on `master` (with the session's `env`) and checks every query's rows, and
/// that the sales files were read as at least `min_partitions` partitions.
fn check_against_polars(master: &str, env: &[(&str, &str)], min_partitions: u32) {
    let dir = Scratch::new(&format!(
        "data-frames-{}",
        master.replace(['[', ']', ','], "-")
    ));
    let all = write_sales(&dir);
    let run = tessera_run_with_env(&dir.0, &script(&dir), master, &[], env);
    run.expect_success();
    let mut got: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for line in run.stdout.lines() {
        let mut fields = line.split('\t').map(String::from);
        if let Some(name) = fields.next() {
            got.entry(name).or_default().push(fields.collect());
        }
    }
    let partitions: u32 = got["partitions"][0][0].parse().unwrap();
    assert!(
        partitions >= min_partitions,
        "the files were read as {partitions} partitions"
    );
    for (name, expected) in oracle(&all) {
        let ordered = queries().iter().any(|q| q.0 == name && q.1);
        let rows = got.get(&name).map(Vec::as_slice).unwrap_or_default();
        assert!(!expected.is_empty(), "{name}: polars gave no rows");
        assert_same_rows(&name, ordered, rows, &expected);
    }
}

/// The small tables are broadcast to the joins; the partitions, of a few thousand rows, run
/// on polars' in-memory engine.
#[test]
fn every_operation_gives_polars_answer_on_local_two() {
    check_against_polars("local[2]", &[], 3);
}

/// Every join shuffles both its sides (no side is small enough to broadcast), and the sales
/// files (3,000 and 2,000 rows) are split in pieces of at most 16 KiB (Spark's
/// `maxPartitionBytes`), most of which start and end inside a row: eight partitions, not three.
/// Their partitions run on polars' streaming engine, as large ones do (small ones, as on
/// `local[2]` above, run in memory).
#[test]
fn every_operation_gives_polars_answer_across_two_executors_joining_by_shuffles() {
    check_against_polars(
        "local-cluster[2,1,1024]",
        &[
            ("TESSERA_BROADCAST_JOIN_BYTES", "0"),
            ("TESSERA_FRAME_SPLIT_BYTES", "16384"),
            ("TESSERA_FRAME_STREAMING_ROWS", "0"),
        ],
        8,
    );
}

#[test]
fn a_row_that_does_not_parse_names_its_file_and_line() {
    let dir = Scratch::new("data-frames-malformed");
    let mut rows = sales_rows(1, 1500);
    rows.push_str("1501,north,p1,seven,3\n");
    rows.push_str(&sales_rows(1502, 10));
    let path = dir.write("bad.csv", &format!("{HEADER}{rows}"));
    let script = format!(
        "let sales = sc.read_csv(\"{}\");\n// %%\nsales.count()\n// %%\nprintln!(\"not reached\");\n",
        path.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    assert!(!run.success, "a malformed row did not fail the job");
    let shown = format!("{}{}", run.stdout, run.stderr);
    assert!(
        shown.contains(&format!("line 1502 of {}", path.display())),
        "the error does not name the file and line:\n{shown}"
    );
    assert!(shown.contains("1501,north,p1,seven,3"), "{shown}");
    assert!(!shown.contains("not reached"));
}

/// A join whose sides hold more than an executor's memory: on two executors of 96 MiB each
/// (held by their agents to 160 MiB), SQL joins 4,000,000 rows with 2,000,000 (their columns
/// alone take 128 MB in polars), both sides shuffled by the key into partitions a task can
/// hold, and aggregates the matches; the answer is computed here, no executor is lost and each
/// stays under its agent's limit. Shuffle memory is 3 MiB, as in `shuffle_spill.rs`, so map
/// outputs go to disk. The data comes in files of 100,000 rows, so partitions are
/// small: a task's polars work takes several times its partition (parsed chunks, the partition
/// made contiguous, hash buckets, their IPC streams, a join's hash table), which with files of
/// 500,000 rows took the executors past the limit. Then the first rows of the left side by
/// its amounts (`ORDER BY .. LIMIT`): each partition's first rows are gathered, not its rows;
/// and the whole left side sorted by its amounts and written: shuffled by ranges of them, no
/// partition holds much more than its share. Memory that tasks freed and the allocator kept
/// counts too: near its limit an executor hands it back at once, which without that took
/// one past it.
#[test]
fn a_join_and_a_sort_larger_than_an_executors_memory_run_in_pieces_it_can_hold() {
    const LEFT: u64 = 4_000_000;
    const RIGHT: u64 = 2_000_000;
    const EXECUTOR_MEMORY_MB: u64 = 96;
    const CONTAINER_MB: u64 = EXECUTOR_MEMORY_MB + 64;
    let dir = Scratch::new("data-frames-big-join");
    let key = |i: u64| (i * 7) % 3_000_000;
    // Eight bytes a value in polars: three columns on the left, two on the right.
    const _: () = assert!(
        (LEFT * 3 + RIGHT * 2) * 8 > EXECUTOR_MEMORY_MB << 20,
        "the join must be larger than an executor's memory"
    );
    // In files of 100,000 rows, as a data set comes: partitions a task can hold.
    std::fs::create_dir_all(dir.0.join("left")).unwrap();
    std::fs::create_dir_all(dir.0.join("right")).unwrap();
    for file in 0..LEFT / 100_000 {
        let mut left = String::from("id,key,amount\n");
        for i in file * 100_000..(file + 1) * 100_000 {
            left.push_str(&format!("{i},{},{}\n", key(i), i % 1000));
        }
        dir.write(&format!("left/part-{file}.csv"), &left);
    }
    for file in 0..RIGHT / 100_000 {
        let mut right = String::from("key,weight\n");
        for k in file * 100_000..(file + 1) * 100_000 {
            right.push_str(&format!("{k},{}\n", k % 10));
        }
        dir.write(&format!("right/part-{file}.csv"), &right);
    }
    let script = format!(
        "{REPORT_PEAKS}\n\
         let left = sc.read_csv(\"{0}/left/*.csv\");\nleft.register(\"big\");\n\
         let right = sc.read_csv(\"{0}/right/*.csv\");\nright.register(\"small\");\n\
         report_peaks(\"before\", &sc);\n// %%\n\
         let joined = sc.sql(\"SELECT r.weight, count(*) AS n, sum(l.amount) AS total FROM big l JOIN small r ON l.key = r.key GROUP BY r.weight\");\n\
         for row in joined.collect_rows().rows {{ println!(\"weight {{}} {{}} {{}}\", row[0], row[1], row[2]); }}\n\
         let top = sc.sql(\"SELECT id, amount FROM big ORDER BY amount DESC, id LIMIT 5\");\n\
         for row in top.collect_rows().rows {{ println!(\"top {{}} {{}}\", row[0], row[1]); }}\n\
         let sorted = sc.sql(\"SELECT id, amount FROM big ORDER BY amount DESC, id\");\n\
         println!(\"sorted {{}}\", sorted.write_csv(\"{0}/sorted\"));\n\
         report_peaks(\"after\", &sc);\n",
        dir.0.display()
    );
    let memory = EXECUTOR_MEMORY_MB.to_string();
    let run = tessera_run_with_env(
        &dir.0,
        &script,
        "local-cluster[2,1,512]",
        &["--executor-memory-mb", &memory],
        &[
            ("TESSERA_SHUFFLE_SPILL_MB", "3"),
            ("TESSERA_SHUFFLE_MEMORY_MB", "3"),
        ],
    );
    run.expect_success();
    let mut expected: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for i in (0..LEFT).filter(|&i| key(i) < RIGHT) {
        let group = expected.entry(key(i) % 10).or_default();
        group.0 += 1;
        group.1 += i % 1000;
    }
    let mut got: Vec<String> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("weight "))
        .map(String::from)
        .collect();
    got.sort();
    let expected: Vec<String> = expected
        .iter()
        .map(|(w, (n, total))| format!("weight {w} {n} {total}"))
        .collect();
    assert_eq!(got, expected, "{}", run.stderr);
    let top: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("top "))
        .collect();
    let expected: Vec<String> = (0..LEFT)
        .filter(|i| i % 1000 == 999)
        .take(5)
        .map(|i| format!("top {i} 999"))
        .collect();
    assert_eq!(top, expected, "{}", run.stderr);
    // The whole side sorted, each partition written to a file: the files in their order hold
    // every row in the sort's order.
    assert!(
        run.stdout.contains(&format!("sorted {LEFT}\n")),
        "{}",
        run.stdout
    );
    let mut files: Vec<_> = std::fs::read_dir(dir.0.join("sorted"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() > 1, "the sort wrote {} file(s)", files.len());
    let mut expected = (0..1000u64)
        .rev()
        .flat_map(|amount| (amount..LEFT).step_by(1000).map(move |id| (id, amount)));
    let mut rows = 0u64;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines().skip(1) {
            let (id, amount) = line.split_once(',').unwrap();
            let got = (id.parse::<u64>().unwrap(), amount.parse::<u64>().unwrap());
            assert_eq!(
                Some(got),
                expected.next(),
                "row {rows} ({})",
                file.display()
            );
            rows += 1;
        }
    }
    assert_eq!(rows, LEFT);
    let (before, after) = (peaks(&run.stdout, "before"), peaks(&run.stdout, "after"));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "an executor was lost: {}",
        run.stderr
    );
    for (pid, peak) in &after {
        eprintln!(
            "executor {pid}: peak {peak} kB, before the join {} kB",
            before[pid]
        );
        assert!(
            *peak < CONTAINER_MB << 10,
            "executor {pid} peaked at {peak} kB, past its agent's limit of {CONTAINER_MB} MiB"
        );
    }
}

/// `collect()` gives a cell that turned on the `polars` feature a polars DataFrame of every row
/// (partitions in order), and of the schema when no row is left.
#[test]
fn collect_gives_a_polars_data_frame_to_a_cell_that_turns_on_the_feature() {
    let dir = Scratch::new("data-frames-collect");
    let all = write_sales(&dir);
    let script = format!(
        ":dep tessera = {{ features = [\"polars\"] }}\n\
         let sales = sc.read_csv(\"{}/sales/*.csv\");\n// %%\n\
         let frame = sales.filter(col(\"qty\").gt(lit(4))).collect();\n\
         println!(\"shape {{:?}}\", frame.shape());\n\
         let ids = frame.column(\"id\").unwrap().i64().unwrap();\n\
         println!(\"ids {{}}\", (0..ids.len()).filter_map(|i| ids.get(i)).map(|i| i.to_string()).collect::<Vec<_>>().join(\",\"));\n\
         // %%\n\
         let none = sales.filter(col(\"qty\").gt(lit(100))).collect();\n\
         println!(\"empty {{:?}} {{}}\", none.shape(), none.get_column_names().iter().map(|n| n.as_str()).collect::<Vec<_>>().join(\",\"));\n",
        dir.0.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    let expected = read_csv_text(&all)
        .lazy()
        .filter(col("qty").gt(lit(4)))
        .collect()
        .unwrap();
    let expected_ids = expected.column("id").unwrap().i64().unwrap();
    let ids: Vec<String> = (0..expected_ids.len())
        .filter_map(|i| expected_ids.get(i))
        .map(|i| i.to_string())
        .collect();
    let line = |prefix: &str| {
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{}", run.stdout))
            .to_string()
    };
    assert_eq!(line("shape "), format!("{:?}", expected.shape()));
    assert_eq!(line("ids "), ids.join(","), "rows in another order");
    assert_eq!(line("empty "), "(0, 5) id,region,product,amount,qty");
}

#[test]
fn a_sql_query_that_does_not_plan_names_what_is_wrong() {
    let dir = Scratch::new("data-frames-sql-mistakes");
    write_sales(&dir);
    let script = format!(
        "let sales = sc.read_csv(\"{}/sales/*.csv\");\nsales.register(\"sales\");\n// %%\n\
         println!(\"rows {{}}\", sc.sql(\"SELECT id FROM sales WHERE qty > 8\").count());\n// %%\n\
         sc.sql(\"SELECT region, sum(amount) FROM sales GROUP BY product\").count();\n// %%\n\
         println!(\"not reached\");\n",
        dir.0.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    assert!(
        !run.success,
        "a query that cannot plan did not fail its cell"
    );
    assert!(run.stdout.contains("rows "), "{}", run.stdout);
    let shown = format!("{}{}", run.stdout, run.stderr);
    assert!(
        shown.contains("column `sales.region` is neither grouped nor aggregated"),
        "{shown}"
    );
    assert!(!shown.contains("not reached"));
}

#[test]
fn a_cached_data_frame_is_kept_as_polars_frames_and_read_from_executor_memory() {
    let dir = Scratch::new("data-frames-cache");
    let all = write_sales(&dir);
    let script = format!(
        r#"let sales = sc.read_csv("{}/sales/*.csv");
let north = sales.filter(col("region").eq(lit("north"))).cache();
// %%
println!("first {{}}", north.count());
// %%
println!("second {{}}", north.count());
// %%
:storage
"#,
        dir.0.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    let north = all.lines().filter(|l| l.contains(",north,")).count();
    assert!(
        run.lines().contains(&format!("first {north}").as_str()),
        "{}",
        run.stdout
    );
    assert!(
        run.lines().contains(&format!("second {north}").as_str()),
        "{}",
        run.stdout
    );
    // The second count read every partition from the cache.
    let second: Vec<_> = run.tasks.iter().filter(|t| t.job == 1).collect();
    assert!(!second.is_empty());
    assert!(
        second.iter().all(|t| t.origin.starts_with("cached:")),
        "{second:?}"
    );
    // `:storage` lists it, every partition in memory, with the bytes of its Arrow buffers.
    let row = run
        .lines()
        .into_iter()
        .find(|l| l.contains("MEMORY_ONLY"))
        .unwrap_or_else(|| panic!("no cached DataFrame in :storage:\n{}", run.stdout))
        .to_string();
    let partitions = second.len();
    assert!(row.contains(&format!("{partitions}/{partitions}")), "{row}");
}

#[test]
fn json_lines_split_into_partitions_give_polars_answer() {
    let dir = Scratch::new("data-frames-json");
    let mut lines = String::new();
    for (i, row) in sales_rows(1, 4000).lines().enumerate() {
        let f: Vec<&str> = row.split(',').collect();
        let region = if f[1].is_empty() {
            "null".to_string()
        } else {
            format!("\"{}\"", f[1])
        };
        let amount = if f[3].is_empty() { "null" } else { f[3] };
        lines.push_str(&format!(
            "{{\"id\": {}, \"region\": {region}, \"amount\": {amount}, \"tag\": \"t{}\"}}\n",
            f[0],
            i % 3
        ));
    }
    let path = dir.write("sales.json", &lines);
    let script = format!(
        "let sales = sc.read_json(\"{}\");\nprintln!(\"partitions\\t{{}}\", sales.num_partitions());\n\
         for row in sales.group_by([\"region\", \"tag\"]).agg([col(\"amount\").sum().alias(\"total\"), len().alias(\"n\")]).collect_rows().rows {{ \
         println!(\"row\\t{{}}\", row.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(\"\\t\")); }}\n",
        path.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    let mut got = Vec::new();
    for line in run.stdout.lines() {
        let fields: Vec<String> = line.split('\t').map(String::from).collect();
        match fields[0].as_str() {
            "partitions" => assert!(fields[1].parse::<u32>().unwrap() >= 2, "{line}"),
            "row" => got.push(fields[1..].to_vec()),
            _ => {}
        }
    }
    let frame = JsonReader::new(Cursor::new(lines.into_bytes()))
        .with_json_format(JsonFormat::JsonLines)
        .finish()
        .unwrap()
        .lazy()
        .group_by([col("region"), col("tag")])
        .agg([col("amount").sum().alias("total"), len().alias("n")])
        .collect()
        .unwrap();
    assert_same_rows("json group_by", false, &got, &printed_rows(&frame));
}

#[test]
fn explain_shows_the_stages_shuffles_broadcasts_and_polars_plans() {
    let dir = Scratch::new("data-frames-explain");
    write_sales(&dir);
    let script = format!(
        r#"let sales = sc.read_csv("{0}/sales/*.csv");
let products = sc.read_csv("{0}/products.csv");
let by_category = sales.join(&products, &["product"], &["product"], JoinKind::Inner).group_by(["category"]).agg([col("qty").sum().alias("units")]);
println!("{{}}", by_category.explain());
let top = sales.sort_by(&["amount"], &[true]).limit(5);
println!("{{}}", top.explain());
let sorted = sales.sort_by(&["amount"], &[true]);
println!("{{}}", sorted.explain());
sorted.count();
println!("{{}}", sorted.explain());
"#,
        dir.0.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    let plans: Vec<&str> = run.stdout.split("== distributed plan").skip(1).collect();
    assert_eq!(plans.len(), 4, "{}", run.stdout);
    let (plan, top) = (plans[0], plans[1]);
    // A sort on its own: rows shuffled by ranges of the key, drawn from a sample by the first
    // job that needs them (here the count), then each partition sorted.
    let (sorted, counted) = (plans[2], plans[3]);
    assert!(
        sorted.contains("shuffle by ranges of [\"amount\"] (drawn from a sample when a job first runs it): stage 1"),
        "{sorted}"
    );
    assert!(sorted.contains("SORT BY"), "{sorted}");
    assert!(counted.contains("bounds sampled): stage 1"), "{counted}");
    // A limit after a sort: each partition's first five by the sort in a stage of their own,
    // and only those gathered into one partition, sorted and cut again.
    assert!(top.contains("first rows of each partition"), "{top}");
    assert!(top.contains("shuffle into one partition: stage 1"), "{top}");
    assert_eq!(top.matches("SORT BY [slice: (0, 5").count(), 2, "{top}");
    // Two stages: the partial aggregation's map stage, and the final one after the shuffle.
    assert!(
        plan.contains("shuffle by [\"category\"]: stage 1"),
        "{plan}"
    );
    // The products are small: broadcast, not shuffled.
    assert!(
        plan.contains("Inner join of each partition with the right side, collected and broadcast"),
        "{plan}"
    );
    // On one key, a partition whose key is in order is merged with the side's.
    assert!(
        plan.contains(
            "merged with the side's keys in order where a partition's integer key is in order"
        ),
        "{plan}"
    );
    // Each partition's polars plan: the partial, then the final aggregation.
    assert!(plan.contains("AGGREGATE"), "{plan}");
    assert!(plan.contains("__tessera_partial_0"), "{plan}");
    // The broadcast side's own plan: the products file.
    assert!(
        plan.contains("the broadcast side, collected by a job of its own"),
        "{plan}"
    );
    assert!(plan.contains("products.csv) (rdd"), "{plan}");
}

/// A join side filtered down to a few rows is broadcast once its size is measured, though its
/// files' size is over the threshold (Spark's adaptive execution does the same); a side that
/// is really large is shuffled.
#[test]
fn a_side_filtered_small_is_measured_and_broadcast_and_a_large_one_shuffled() {
    let dir = Scratch::new("data-frames-measured-broadcast");
    let all = write_sales(&dir);
    // The sales files take ~120 KB: over this threshold, within the sides that are measured.
    let threshold = "20000";
    let east = r#"col("region").eq(lit("east")).and(col("qty").eq(lit(1)))"#;
    let script = format!(
        r#"let sales = sc.read_csv("{0}/sales/*.csv");
let products = sc.read_csv("{0}/products.csv");
{EMIT}
let few = products.join(&sales.filter({east}), &["product"], &["product"], JoinKind::Left);
println!("{{}}", few.explain());
emit("few", &few.select([col("product"), col("id")]));
// %%
let all = products.join(&sales, &["product"], &["product"], JoinKind::Left);
println!("{{}}", all.explain());
emit("all", &all.select([col("product"), col("id")]));
// %%
:jobs
"#,
        dir.0.display()
    );
    let run = tessera_run_with_env(
        &dir.0,
        &script,
        "local[2]",
        &[],
        &[("TESSERA_BROADCAST_JOIN_BYTES", threshold)],
    );
    run.expect_success();
    let plans: Vec<&str> = run.stdout.split("== distributed plan").skip(1).collect();
    assert_eq!(plans.len(), 2, "{}", run.stdout);
    let broadcast = "Left join of each partition with the right side, collected and broadcast";
    assert!(plans[0].contains(broadcast), "{}", plans[0]);
    assert!(!plans[1].contains(broadcast), "{}", plans[1]);
    assert!(plans[1].contains("(right side shuffle)"), "{}", plans[1]);
    // Each side was measured by a job; the small one came back with its count, so no job
    // computed it again to collect it.
    let jobs = run.stdout.split(":jobs").last().unwrap_or_default();
    assert_eq!(jobs.matches("to measure it").count(), 2, "{}", run.stdout);
    assert!(!jobs.contains("collect the small side"), "{}", run.stdout);

    let sales = read_csv_text(&all).lazy();
    let products = read_csv_text(&products()).lazy();
    let left = || JoinArgs::new(JoinType::Left);
    let east = col("region").eq(lit("east")).and(col("qty").eq(lit(1)));
    for (name, right) in [("few", sales.clone().filter(east)), ("all", sales)] {
        let expected = products
            .clone()
            .join(right, [col("product")], [col("product")], left())
            .select([col("product"), col("id")])
            .collect()
            .unwrap();
        let got = emitted(&run.stdout, name);
        assert!(got.len() > 20, "{name}: {} rows", got.len());
        assert_same_rows(name, false, &got, &printed_rows(&expected));
    }
}

#[test]
fn partitions_written_as_parquet_and_csv_read_back_to_the_same_rows() {
    let dir = Scratch::new("data-frames-write");
    let all = write_sales(&dir);
    let query =
        r#"group_by(["region"]).agg([col("amount").sum().alias("total"), len().alias("n")])"#;
    let script = format!(
        r#"let sales = sc.read_csv("{0}/sales/*.csv");
{EMIT}
println!("written\t{{}}\t{{}}", sales.write_parquet("out-parquet"), sales.write_csv("out-csv"));
// %%
let parquet = sc.read_parquet("out-parquet");
println!("parquet partitions\t{{}}", parquet.num_partitions());
emit("parquet", &parquet.{query});
emit("csv", &sc.read_csv("out-csv").{query});
"#,
        dir.0.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    let sales = read_csv_text(&all);
    let rows = sales.height().to_string();
    assert!(
        run.lines()
            .contains(&format!("written\t{rows}\t{rows}").as_str()),
        "{}",
        run.stdout
    );
    // One file per partition with rows (the empty file's partition writes none).
    let files = |sub: &str| std::fs::read_dir(dir.0.join(sub)).unwrap().count();
    assert_eq!(files("out-parquet"), files("out-csv"));
    assert!(files("out-parquet") >= 3, "{} files", files("out-parquet"));
    let expected = region_totals(sales);
    for name in ["parquet", "csv"] {
        let got = emitted(&run.stdout, name);
        assert_same_rows(name, false, &got, &expected);
    }
}

/// The total amount and the rows of each region, as the Parquet tests' scripts print them.
fn region_totals(sales: DataFrame) -> Vec<Vec<String>> {
    printed_rows(
        &sales
            .lazy()
            .group_by([col("region")])
            .agg([col("amount").sum().alias("total"), len().alias("n")])
            .collect()
            .unwrap(),
    )
}

/// Parquet files as other tools write them — compressed with zstd and with snappy, in row
/// groups of 1,000 rows — are read split by row groups into the rows polars reads.
#[test]
fn compressed_parquet_files_of_other_writers_are_read() {
    let dir = Scratch::new("data-frames-compressed-parquet");
    let all = write_sales(&dir);
    let sales = read_csv_text(&all);
    std::fs::create_dir_all(dir.0.join("compressed")).unwrap();
    let half = sales.height() / 2;
    for (name, compression, rows) in [
        ("zstd", ParquetCompression::Zstd(None), sales.slice(0, half)),
        (
            "snappy",
            ParquetCompression::Snappy,
            sales.slice(half as i64, sales.height() - half),
        ),
    ] {
        let file = std::fs::File::create(dir.0.join(format!("compressed/{name}.parquet"))).unwrap();
        ParquetWriter::new(file)
            .with_compression(compression)
            .with_row_group_size(Some(1000))
            .finish(&mut rows.clone())
            .unwrap();
    }
    let script = format!(
        "let sales = sc.read_parquet(\"{}/compressed/*.parquet\");\n{EMIT}\
         println!(\"partitions\\t{{}}\", sales.num_partitions());\n\
         emit(\"by region\", &sales.group_by([\"region\"]).agg([col(\"amount\").sum().alias(\"total\"), len().alias(\"n\")]));\n",
        dir.0.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    let partitions: u32 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("partitions\t"))
        .expect("partitions printed")
        .parse()
        .unwrap();
    assert!(partitions >= 2, "{partitions} partitions");
    let expected = region_totals(sales);
    let got: Vec<Vec<String>> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("by region\t"))
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    assert_same_rows("by region", false, &got, &expected);
}

#[test]
fn malformed_rows_are_skipped_and_counted_when_the_reader_is_told_to() {
    let dir = Scratch::new("data-frames-skip");
    let mut rows = sales_rows(1, 1500);
    rows.push_str("1501,north,p1,seven,3\n");
    rows.push_str(&sales_rows(1502, 500));
    rows.push_str("2002,south,p2,1.5,many\n");
    let path = dir.write("bad.csv", &format!("{HEADER}{rows}"));
    let script = format!(
        r#"let options = CsvOptions {{ skip_malformed: true, ..CsvOptions::default() }};
let sales = sc.read_csv_with("{}", options, None);
println!("before {{}}", sales.skipped_rows());
println!("count {{}}", sales.count());
println!("skipped {{}}", sales.skipped_rows());
println!("count {{}}", sales.count());
println!("skipped {{}}", sales.skipped_rows());
"#,
        path.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    // Counted once per partition, however often it is read.
    assert_eq!(
        run.lines(),
        [
            "before 0",
            "count 2000",
            "skipped 2",
            "count 2000",
            "skipped 2"
        ],
        "{}",
        run.stderr
    );
}

#[test]
fn rust_closures_work_on_a_data_frames_rows_through_to_rdd() {
    let dir = Scratch::new("data-frames-to-rdd");
    let all = write_sales(&dir);
    let script = format!(
        r#"let sales = sc.read_csv("{}/sales/*.csv");
let rows = sales.filter(col("amount").is_not_null()).to_rdd();
println!("partitions {{}} {{}}", rows.num_partitions(), sales.num_partitions());
let by_qty = rows
    .map(|row: Vec<Value>| match (&row[4], &row[3]) {{
        (Value::Int(qty), Value::Float(amount)) => (*qty, *amount),
        other => panic!("unexpected {{other:?}}"),
    }})
    .reduce_by_key(|a: f64, b: f64| a + b);
let mut totals = by_qty.collect();
totals.sort_by_key(|t| t.0);
for (qty, total) in totals {{
    println!("qty {{qty}} {{total}}");
}}
"#,
        dir.0.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    let mut expected: BTreeMap<i64, f64> = BTreeMap::new();
    for line in all.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if let Ok(amount) = f[3].parse::<f64>() {
            *expected.entry(f[4].parse().unwrap()).or_default() += amount;
        }
    }
    let lines = run.lines();
    let partitions: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(
        partitions[1], partitions[2],
        "one partition per partition: {}",
        lines[0]
    );
    let got: Vec<(i64, f64)> = lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "{}", run.stdout);
    for ((qty, total), (eq, et)) in got.iter().zip(&expected) {
        assert_eq!(qty, eq);
        assert!(
            same_value(&total.to_string(), &et.to_string()),
            "{qty}: {total} vs {et}"
        );
    }
}

#[test]
fn an_rdd_of_records_becomes_a_data_frame_with_a_schema() {
    let dir = Scratch::new("data-frames-to-df");
    let script = r#"let schema = Schema { fields: vec![
    tessera::Field { name: "k".into(), dtype: DataType::String },
    tessera::Field { name: "v".into(), dtype: DataType::Float64 },
] };
let records = sc.parallelize((0..1000i64).map(|i| vec![Value::String(format!("k{}", i % 7)), if i % 100 == 0 { Value::Null } else { Value::Int(i) }]).collect::<Vec<_>>(), 4);
let df = records.to_df(schema);
for row in df.group_by(["k"]).agg([col("v").sum().alias("s"), col("v").count().alias("n")]).sort(&["k"]).collect_rows().rows {
    println!("{}", row.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "));
}
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    let mut expected: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for i in 0..1000i64 {
        let entry = expected.entry(format!("k{}", i % 7)).or_default();
        if i % 100 != 0 {
            entry.0 += i as f64;
            entry.1 += 1;
        }
    }
    let expected: Vec<String> = expected
        .iter()
        .map(|(k, (s, n))| format!("{k} {s} {n}"))
        .collect();
    assert_eq!(run.lines(), expected, "{}", run.stderr);
}

#[test]
fn malformed_json_lines_are_skipped_and_counted_when_the_reader_is_told_to() {
    let dir = Scratch::new("data-frames-skip-json");
    let mut lines = String::new();
    for i in 0..3000 {
        lines.push_str(&format!("{{\"id\": {i}, \"amount\": {}.5}}\n", i % 10));
        if i == 2000 {
            lines.push_str("{\"id\": 2000.5, \"amount\": \n");
        }
    }
    let path = dir.write("sales.json", &lines);
    let script = format!(
        r#"let sales = sc.read_json_with("{}", JsonOptions {{ skip_malformed: true }});
println!("count {{}}", sales.count());
println!("skipped {{}}", sales.skipped_rows());
"#,
        path.display()
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();
    assert_eq!(run.lines(), ["count 3000", "skipped 1"], "{}", run.stderr);
}
