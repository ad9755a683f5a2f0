//! `DataFrame`: a handle on a distributed DataFrame whose partitions are polars DataFrames on
//! the executors.
//!
//! Its operations build plans as data — expressions ([`col`](crate::col), [`lit`](crate::lit),
//! ...) and steps — that the driver plans over partitions and executors run with polars; this
//! crate never links polars, so cells that use DataFrames compile as fast as any. Like
//! [`Rdd`](crate::Rdd), a handle is `Copy` and holds nothing: the driver keeps the plan and the
//! schema, so a cell that fails loses nothing.
//!
//! ```ignore
//! let sales = sc.read_csv("sales/*.csv");
//! let by_region = sales
//!     .filter(col("amount").gt(lit(100)))
//!     .group_by(["region"])
//!     .agg([col("amount").sum().alias("total"), len().alias("orders")]);
//! by_region.cache();
//! by_region.show(10);
//! ```

use crate::context::Context;
use crate::error::Error;
use crate::ops::RecordsSource;
use crate::rdd::{Rdd, source_operator};
use crate::rich::{RichDisplay, shorten, table_bundle};
use std::fmt;
use tessera_plan::cell_protocol::{CellAction, CellRequest, CellResponse};
use tessera_plan::frame::{
    CsvOptions, Expr, FileFormat, FrameStep, JoinKind, JoinOn, JsonOptions, Rows, Schema, Value,
    WriteFormat, col,
};
use tessera_plan::{RddId, StorageLevel};
use tessera_table::Table;

#[cfg(feature = "polars")]
mod collect;

/// A distributed DataFrame of the session.
#[derive(Clone, Copy)]
pub struct DataFrame {
    ctx: Context,
    id: RddId,
}

impl fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataFrame#{}", self.id)
    }
}

/// What the driver says a DataFrame is.
struct Described {
    id: RddId,
    num_partitions: u32,
    schema: Schema,
}

/// Sends a request that adds or describes a DataFrame. Not generic, and never inlined, so that
/// its encoding is compiled once here, not in every cell.
#[inline(never)]
fn frame_request(ctx: &Context, request: CellRequest) -> Described {
    match ctx.call(request) {
        Ok(CellResponse::FrameDefined {
            rdd,
            num_partitions,
            schema,
        }) => Described {
            id: rdd,
            num_partitions,
            schema,
        },
        Ok(other) => Error::unexpected_reply(&other).raise(),
        Err(e) => e.raise(),
    }
}

impl Context {
    /// A DataFrame of the CSV files `path` names (a file, a directory, or a glob in the last
    /// component), with a header line, comma-separated, its schema inferred from the first
    /// file's first rows as polars infers it. Each file is split into partitions by byte
    /// ranges, of up to 128 MiB (Spark SQL's `maxPartitionBytes`; `TESSERA_FRAME_SPLIT_BYTES`
    /// sets it for the session).
    pub fn read_csv(&self, path: &str) -> DataFrame {
        self.read_csv_with(path, CsvOptions::default(), None)
    }

    /// [`read_csv`](Context::read_csv) with `options` (header, separator, null values), and
    /// `schema` instead of the inferred one when given.
    pub fn read_csv_with(
        &self,
        path: &str,
        options: CsvOptions,
        schema: Option<Schema>,
    ) -> DataFrame {
        self.read_frame(path, FileFormat::Csv(options), schema, "read_csv")
    }

    /// A DataFrame of newline-delimited JSON files (one object per line), its schema inferred
    /// from the first file's first lines.
    pub fn read_json(&self, path: &str) -> DataFrame {
        self.read_json_with(path, JsonOptions::default())
    }

    /// [`read_json`](Context::read_json) with `options` (skipping malformed lines).
    pub fn read_json_with(&self, path: &str, options: JsonOptions) -> DataFrame {
        self.read_frame(path, FileFormat::Json(options), None, "read_json")
    }

    /// A DataFrame of the Parquet files `path` names, with the first file's schema; each
    /// partition reads whole row groups of one file.
    pub fn read_parquet(&self, path: &str) -> DataFrame {
        self.read_frame(path, FileFormat::Parquet, None, "read_parquet")
    }

    /// The DataFrame a SQL query over the tables registered with
    /// [`DataFrame::register`] makes, planned as the DataFrame operations it amounts to (so
    /// it runs distributed, as they do):
    ///
    /// ```ignore
    /// orders.register("orders");
    /// products.register("products");
    /// let top = sc.sql("SELECT category, sum(quantity * price) AS revenue
    ///                   FROM orders JOIN products USING (product)
    ///                   GROUP BY category ORDER BY revenue DESC LIMIT 3");
    /// top.show(3);
    /// ```
    ///
    /// A query that does not plan (a table or column that is not there, SQL Tessera does not
    /// run) fails the cell with a message that names it.
    pub fn sql(&self, query: &str) -> DataFrame {
        let request = CellRequest::Sql {
            query: query.to_string(),
        };
        DataFrame {
            ctx: *self,
            id: frame_request(self, request).id,
        }
    }

    fn read_frame(
        &self,
        path: &str,
        format: FileFormat,
        schema: Option<Schema>,
        operation: &str,
    ) -> DataFrame {
        let request = CellRequest::ReadFrame {
            path: path.to_string(),
            format,
            schema,
            // As `text_file`'s default: at least two partitions, so both cores of a
            // `local[2]` session work.
            min_partitions: 2,
            name: format!("{operation}({path})"),
        };
        let described = frame_request(self, request);
        DataFrame {
            ctx: *self,
            id: described.id,
        }
    }
}

impl DataFrame {
    /// The DataFrame `step` makes of this one.
    fn then(&self, step: FrameStep) -> DataFrame {
        let request = CellRequest::Frame {
            input: self.id,
            name: step.operation().to_string(),
            step,
        };
        DataFrame {
            ctx: self.ctx,
            id: frame_request(&self.ctx, request).id,
        }
    }

    fn described(&self) -> Described {
        frame_request(&self.ctx, CellRequest::DescribeFrame { rdd: self.id })
    }

    /// Its id in the session's lineage.
    pub fn id(&self) -> RddId {
        self.id
    }

    /// Not for direct use: when the process that runs cells was restarted, the session
    /// declares a DataFrame variable again with the id it held (the driver kept its plan).
    #[doc(hidden)]
    pub fn __rebuilt(ctx: Context, id: RddId) -> DataFrame {
        DataFrame { ctx, id }
    }

    /// Its columns and their types.
    pub fn schema(&self) -> Schema {
        self.described().schema
    }

    /// Its column names, in order.
    pub fn columns(&self) -> Vec<String> {
        let schema = self.schema();
        schema.names().into_iter().map(String::from).collect()
    }

    /// How many partitions it has.
    pub fn num_partitions(&self) -> u32 {
        self.described().num_partitions
    }

    /// The columns `exprs` make, as polars' `select`: columns, computed columns, or only
    /// aggregations (which aggregate the whole DataFrame into one row).
    pub fn select(&self, exprs: impl IntoIterator<Item = impl Into<Expr>>) -> DataFrame {
        self.then(FrameStep::Select(exprs_of(exprs)))
    }

    /// The rows for which `predicate` holds.
    pub fn filter(&self, predicate: Expr) -> DataFrame {
        self.then(FrameStep::Filter(predicate))
    }

    /// All columns, with those `exprs` make added (or replaced, by name).
    pub fn with_columns(&self, exprs: impl IntoIterator<Item = Expr>) -> DataFrame {
        self.then(FrameStep::WithColumns(exprs.into_iter().collect()))
    }

    /// All columns, with the one `expr` makes added (or replaced, by name).
    pub fn with_column(&self, expr: Expr) -> DataFrame {
        self.with_columns([expr])
    }

    /// All columns but `columns`.
    pub fn drop(&self, columns: &[&str]) -> DataFrame {
        let columns = columns.iter().map(|c| c.to_string()).collect();
        self.then(FrameStep::Drop(columns))
    }

    /// The same columns, column `old` named `new`.
    pub fn rename(&self, old: &str, new: &str) -> DataFrame {
        self.then(FrameStep::Rename(vec![(old.to_string(), new.to_string())]))
    }

    /// Groups rows by `keys` (column names or expressions), to aggregate with
    /// [`GroupBy::agg`]. Aggregations run partially on each partition, the partial results
    /// are shuffled by key, then combined.
    pub fn group_by(&self, keys: impl IntoIterator<Item = impl Into<GroupKey>>) -> GroupBy {
        GroupBy {
            frame: *self,
            keys: keys.into_iter().map(|k| k.into().0).collect(),
        }
    }

    /// The distinct rows (in no particular order, as in Spark).
    pub fn distinct(&self) -> DataFrame {
        self.then(FrameStep::Distinct { subset: None })
    }

    /// Rows that differ in `columns`, one of each.
    pub fn distinct_on(&self, columns: &[&str]) -> DataFrame {
        let subset = Some(columns.iter().map(|c| c.to_string()).collect());
        self.then(FrameStep::Distinct { subset })
    }

    /// The first `n` rows, in partition order.
    pub fn limit(&self, n: u64) -> DataFrame {
        self.then(FrameStep::Head(n))
    }

    /// The rows sorted by `by`, ascending.
    pub fn sort(&self, by: &[&str]) -> DataFrame {
        self.sort_by(by, &vec![false; by.len()])
    }

    /// The rows sorted by `by`, each column descending where `descending` says (nulls first,
    /// as polars sorts; rows of equal keys in the order they came). Each row is shuffled to
    /// the partition of its keys' range, drawn from a sample of the keys by the first job that
    /// needs the sort (as Spark's sort does: that job computes the input once more unless it
    /// is cached), and each partition is sorted: the partitions in their order hold the rows
    /// in order, and none needs them all.
    pub fn sort_by(&self, by: &[&str], descending: &[bool]) -> DataFrame {
        let step = FrameStep::Sort {
            by: by.iter().map(|c| c.to_string()).collect(),
            descending: descending.to_vec(),
        };
        self.then(step)
    }

    /// This DataFrame's rows joined with `other`'s where `left_on` (its columns) equal
    /// `right_on` (`other`'s), keeping rows as `how` says, as polars' `join`. A side small
    /// enough (10 MiB of input, as Spark's threshold; `TESSERA_BROADCAST_JOIN_BYTES` for the
    /// session) is collected at once and broadcast to every executor; otherwise both sides
    /// are shuffled by their keys.
    pub fn join(
        &self,
        other: &DataFrame,
        left_on: &[&str],
        right_on: &[&str],
        how: JoinKind,
    ) -> DataFrame {
        let names = |columns: &[&str]| columns.iter().map(|c| c.to_string()).collect();
        let request = CellRequest::FrameJoin {
            left: self.id,
            right: other.id,
            on: JoinOn {
                left_on: names(left_on),
                right_on: names(right_on),
                how,
            },
            name: format!("join ({how:?})").to_lowercase(),
        };
        DataFrame {
            ctx: self.ctx,
            id: frame_request(&self.ctx, request).id,
        }
    }

    /// The inner join with `other` on columns named `on` in both.
    pub fn join_on(&self, other: &DataFrame, on: &[&str]) -> DataFrame {
        self.join(other, on, on, JoinKind::Inner)
    }

    /// Registers this DataFrame as table `name` for [`Context::sql`], replacing a table of
    /// that name (Spark's `createOrReplaceTempView`). The session keeps a registered table's
    /// cached partitions while it lasts, held by a variable or not.
    pub fn register(&self, name: &str) {
        self.ctx.done(CellRequest::RegisterTable {
            rdd: self.id,
            name: name.to_string(),
        })
    }

    /// The rows of this DataFrame and of `others`, which must have its schema.
    pub fn union(&self, others: &[DataFrame]) -> DataFrame {
        let request = CellRequest::FrameUnion {
            inputs: std::iter::once(self.id)
                .chain(others.iter().map(|o| o.id))
                .collect(),
            name: "union".to_string(),
        };
        DataFrame {
            ctx: self.ctx,
            id: frame_request(&self.ctx, request).id,
        }
    }

    /// Keeps its partitions in executor memory, as polars DataFrames, once computed (Spark's
    /// `cache()`); later queries read them from there.
    pub fn cache(&self) -> DataFrame {
        self.persist(StorageLevel::MemoryOnly)
    }

    /// Keeps its partitions at `level` once computed.
    pub fn persist(&self, level: StorageLevel) -> DataFrame {
        self.set_storage(Some(level));
        *self
    }

    /// Drops its cached partitions from every executor.
    pub fn unpersist(&self) -> DataFrame {
        self.set_storage(None);
        *self
    }

    fn set_storage(&self, level: Option<StorageLevel>) {
        self.ctx.set_storage(self.id, level)
    }

    /// The number of rows (a job).
    pub fn count(&self) -> u64 {
        self.ctx.run_count_job(self.id, "count", CellAction::Count)
    }

    /// Every row, as plain values, in partition order (a job).
    pub fn collect_rows(&self) -> Rows {
        self.rows(None)
    }

    /// The first `n` rows, as plain values (a job).
    pub fn head(&self, n: usize) -> Rows {
        let mut rows = self.rows(Some(n as u64));
        rows.rows.truncate(n);
        rows
    }

    #[inline(never)]
    fn rows(&self, limit: Option<u64>) -> Rows {
        let schema = self.schema();
        let parts = self
            .ctx
            .run_job(self.id, "collect", CellAction::Rows { limit }, None);
        let mut rows = Vec::new();
        for bytes in parts {
            let part: Rows = bincode::deserialize(&bytes).unwrap_or_else(|source| {
                Error::Decode {
                    what: "a partition's rows",
                    source,
                }
                .raise()
            });
            rows.extend(part.rows);
            if limit.is_some_and(|n| rows.len() as u64 >= n) {
                break;
            }
        }
        Rows { schema, rows }
    }

    /// Its rows as an RDD of records (`Vec<Value>`, a value per column), one partition per
    /// partition, for Rust closures: `df.to_rdd().map(|row: Vec<Value>| ...)`.
    pub fn to_rdd(&self) -> Rdd<Vec<Value>> {
        let reader =
            source_operator(RecordsSource::<Vec<Value>>::entry).unwrap_or_else(|e| e.raise());
        let request = CellRequest::FrameToRdd {
            frame: self.id,
            reader,
            element_type: std::any::type_name::<Vec<Value>>().to_string(),
            name: "to_rdd".to_string(),
        };
        Rdd::new(self.ctx, self.ctx.define_untyped(request))
    }

    /// How many rows of its input files were skipped as malformed so far (read with
    /// `CsvOptions { skip_malformed: true, .. }`): each partition's count from the last job
    /// that read it.
    pub fn skipped_rows(&self) -> u64 {
        match self.ctx.call(CellRequest::SkippedRows { rdd: self.id }) {
            Ok(CellResponse::SkippedRows(rows)) => rows,
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }

    /// Its distributed plan: the stages and shuffles it runs in, which side of a join is
    /// broadcast, and the polars plan each partition runs (no job runs).
    pub fn explain(&self) -> Explain {
        match self.ctx.call(CellRequest::ExplainFrame { rdd: self.id }) {
            Ok(CellResponse::Explained(text)) => Explain(text),
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }

    /// Writes each partition to `dir/part-NNNNN.csv` (with a header line), as Spark writes;
    /// returns the rows written. On a cluster, `dir` must be on a file system every executor
    /// sees.
    pub fn write_csv(&self, dir: &str) -> u64 {
        self.write(dir, WriteFormat::Csv, "write_csv")
    }

    /// Writes each partition to `dir/part-NNNNN.parquet` (uncompressed); returns the rows
    /// written.
    pub fn write_parquet(&self, dir: &str) -> u64 {
        self.write(dir, WriteFormat::Parquet, "write_parquet")
    }

    #[inline(never)]
    fn write(&self, dir: &str, format: WriteFormat, operation: &'static str) -> u64 {
        let dir = std::path::absolute(dir).unwrap_or_else(|source| {
            Error::UnresolvedPath {
                operation,
                path: dir.to_string(),
                source,
            }
            .raise()
        });
        let action = CellAction::WriteFrame {
            dir: dir.to_string_lossy().into_owned(),
            format,
        };
        self.ctx.run_count_job(self.id, operation, action)
    }

    /// Shows its first `n` rows as a table: a grid in the terminal, an HTML table in Jupyter.
    pub fn show(&self, n: usize) {
        self.ctx.show(&RowsShown(self.head(n + 1), n));
    }
}

/// A DataFrame's distributed plan, as [`DataFrame::explain`] gives it.
pub struct Explain(pub String);

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The plan as text: preformatted in a notebook.
impl RichDisplay for Explain {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        vec![
            ("text/plain".to_string(), self.0.clone()),
            (
                "text/html".to_string(),
                format!("<pre>{}</pre>", tessera_table::escape_html(&self.0)),
            ),
        ]
    }
}

impl Rdd<Vec<Value>> {
    /// A DataFrame of `schema` made of these records, a value per column in the schema's order
    /// (a value that does not fit its column's type is null there, as polars casts), as many
    /// partitions as this RDD has.
    pub fn to_df(&self, schema: Schema) -> DataFrame {
        let partitions = self.num_partitions();
        let writer = self
            .round_robin_writer(partitions)
            .unwrap_or_else(|e| e.raise());
        let request = CellRequest::RddToFrame {
            rdd: self.id(),
            writer,
            partitions,
            schema,
            name: "to_df".to_string(),
        };
        DataFrame {
            ctx: self.context(),
            id: frame_request(&self.context(), request).id,
        }
    }
}

/// A group key: a column name or an expression.
pub struct GroupKey(Expr);

impl From<&str> for GroupKey {
    fn from(name: &str) -> GroupKey {
        GroupKey(col(name))
    }
}

impl From<String> for GroupKey {
    fn from(name: String) -> GroupKey {
        GroupKey(col(&name))
    }
}

impl From<Expr> for GroupKey {
    fn from(expr: Expr) -> GroupKey {
        GroupKey(expr)
    }
}

/// A DataFrame's rows grouped by keys, waiting for their aggregations.
pub struct GroupBy {
    frame: DataFrame,
    keys: Vec<Expr>,
}

impl GroupBy {
    /// One row per group: its keys, then `aggs` (`col("x").sum()`, `len()`, ...).
    pub fn agg(&self, aggs: impl IntoIterator<Item = Expr>) -> DataFrame {
        let step = FrameStep::GroupBy {
            keys: self.keys.clone(),
            aggs: aggs.into_iter().collect(),
        };
        self.frame.then(step)
    }
}

fn exprs_of(exprs: impl IntoIterator<Item = impl Into<Expr>>) -> Vec<Expr> {
    exprs.into_iter().map(Into::into).collect()
}

/// The table of `rows`, each column headed by its name and type; the first `shown` rows, with
/// a note when there were more.
fn rows_table(rows: &Rows, shown: usize) -> Table {
    let header: Vec<String> = rows
        .schema
        .fields
        .iter()
        .map(|f| format!("{}\n{}", f.name, f.dtype))
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let table = Table::new(
        &header,
        rows.rows
            .iter()
            .take(shown)
            .map(|row| row.iter().map(|v| shorten(&v.to_string())).collect()),
    );
    if rows.rows.len() > shown {
        table.noted(&format!("only showing the first {shown} rows"))
    } else {
        table
    }
}

/// Rows that came back: a table of them.
impl RichDisplay for Rows {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        table_bundle(&rows_table(self, self.rows.len()))
    }
}

/// The first rows of a DataFrame, and how many to show (one more came back if there are more).
struct RowsShown(Rows, usize);

impl RichDisplay for RowsShown {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        table_bundle(&rows_table(&self.0, self.1))
    }
}

/// A DataFrame handle: its columns and their types (no job runs).
impl RichDisplay for DataFrame {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        let described = self.described();
        let table = Table::new(
            &["column", "type"],
            described
                .schema
                .fields
                .iter()
                .map(|f| vec![f.name.clone(), f.dtype.to_string()]),
        )
        .titled(&format!(
            "DataFrame#{} ({} partitions)",
            described.id, described.num_partitions
        ));
        table_bundle(&table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rich::MAX_CELL_CHARS;
    use tessera_plan::frame::{DataType, Field, Value};

    #[test]
    fn rows_show_under_their_names_and_types_with_a_note_for_rows_left_out() {
        let rows = Rows {
            schema: Schema {
                fields: vec![
                    Field {
                        name: "region".into(),
                        dtype: DataType::String,
                    },
                    Field {
                        name: "total".into(),
                        dtype: DataType::Int64,
                    },
                ],
            },
            rows: vec![
                vec![Value::String("north".into()), Value::Int(40)],
                vec![Value::String("south".into()), Value::Null],
                vec![Value::String("x".repeat(80)), Value::Int(1)],
            ],
        };
        let table = rows_table(&rows, 2);
        assert_eq!(table.header, ["region\nstr", "total\ni64"]);
        assert_eq!(table.rows, [["north", "40"], ["south", "null"]]);
        assert_eq!(table.note.as_deref(), Some("only showing the first 2 rows"));
        let all = rows_table(&rows, 3);
        assert!(all.note.is_none());
        assert_eq!(all.rows[2][0].chars().count(), MAX_CELL_CHARS);
    }
}
