//! DataFrame plans as plain data: the expressions a cell builds (`col("x").gt(lit(3))`), the
//! per-partition operations the driver plans from them, the files a scan reads, and the rows
//! that come back to a cell. Executors run them with polars; nothing here links it, so the
//! crate cells link stays thin.

use serde::{Deserialize, Serialize};

/// A column's type, named as polars names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// True or false.
    Boolean,
    /// A signed 8-bit integer.
    Int8,
    /// A signed 16-bit integer.
    Int16,
    /// A signed 32-bit integer.
    Int32,
    /// A signed 64-bit integer.
    Int64,
    /// An unsigned 8-bit integer.
    UInt8,
    /// An unsigned 16-bit integer.
    UInt16,
    /// An unsigned 32-bit integer.
    UInt32,
    /// An unsigned 64-bit integer.
    UInt64,
    /// A 32-bit float.
    Float32,
    /// A 64-bit float.
    Float64,
    /// UTF-8 text.
    String,
    /// Days since 1970-01-01.
    Date,
    /// Microseconds since 1970-01-01 00:00, without a time zone.
    Datetime,
    /// The type of a column that holds only nulls.
    Null,
    /// A type Tessera does not name (lists, structs, ...): shown by polars' name for it; it
    /// can be read and passed on, not cast to.
    Other(String),
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            DataType::Boolean => "bool",
            DataType::Int8 => "i8",
            DataType::Int16 => "i16",
            DataType::Int32 => "i32",
            DataType::Int64 => "i64",
            DataType::UInt8 => "u8",
            DataType::UInt16 => "u16",
            DataType::UInt32 => "u32",
            DataType::UInt64 => "u64",
            DataType::Float32 => "f32",
            DataType::Float64 => "f64",
            DataType::String => "str",
            DataType::Date => "date",
            DataType::Datetime => "datetime[μs]",
            DataType::Null => "null",
            DataType::Other(name) => name,
        };
        f.write_str(name)
    }
}

/// A named, typed column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// The column's name, as expressions refer to it (`col(name)`).
    pub name: String,
    /// The type of its values.
    pub dtype: DataType,
}

/// The columns of a DataFrame, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schema {
    /// Each column's name and type, in the DataFrame's order.
    pub fields: Vec<Field>,
}

impl Schema {
    /// The column names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A single value: a literal in an expression, or a cell of a row that came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A missing value.
    Null,
    /// True or false.
    Boolean(bool),
    /// A signed integer, widened to 64 bits.
    Int(i64),
    /// An unsigned integer, widened to 64 bits.
    UInt(u64),
    /// A float, widened to 64 bits.
    Float(f64),
    /// Text.
    String(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00.
    Datetime(i64),
    /// A value of a type Tessera does not name, as polars shows it.
    Other(String),
}

/// An operator between two expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `left == right`.
    Eq,
    /// `left != right`.
    NotEq,
    /// `left < right`.
    Lt,
    /// `left <= right`.
    LtEq,
    /// `left > right`.
    Gt,
    /// `left >= right`.
    GtEq,
    /// Both booleans hold.
    And,
    /// Either boolean holds.
    Or,
    /// `left + right`.
    Add,
    /// `left - right`.
    Sub,
    /// `left * right`.
    Mul,
    /// True division (`/` in polars: integers give floats).
    Div,
    /// `left % right`: the remainder of the division.
    Rem,
}

/// A function of one expression's values, row by row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnaryOp {
    /// Negation of a boolean.
    Not,
    /// `-value`.
    Negate,
    /// Whether the value is null.
    IsNull,
    /// Whether the value is not null.
    IsNotNull,
    /// The absolute value.
    Abs,
    /// Rounds floats to this many decimals.
    Round(u32),
    /// Characters of a string.
    StrLen,
    /// A string in lower case.
    Lowercase,
    /// A string in upper case.
    Uppercase,
    /// Whether a string contains this literal text (no pattern).
    Contains(String),
    /// Whether a string starts with this text.
    StartsWith(String),
    /// Whether a string ends with this text.
    EndsWith(String),
    /// The year, month or day of a date.
    Year,
    /// The month (1–12) of a date.
    Month,
    /// The day of the month of a date.
    Day,
}

/// A function of a group's (or a whole partition's) values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AggFunc {
    /// The sum.
    Sum,
    /// The mean.
    Mean,
    /// The least value.
    Min,
    /// The greatest value.
    Max,
    /// Values that are not null.
    Count,
    /// The first value.
    First,
    /// The last value.
    Last,
    /// Distinct values (nulls count as one).
    NUnique,
}

/// An expression over a DataFrame's columns, as polars' `Expr` (a subset of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// The values of the column of this name.
    Column(String),
    /// A constant value, the same for every row.
    Literal(Value),
    /// `expr`, the column it makes named `name`.
    Alias {
        /// The expression named.
        expr: Box<Expr>,
        /// The name of the column it makes.
        name: String,
    },
    /// `left op right`, row by row.
    Binary {
        /// The left operand.
        left: Box<Expr>,
        /// The operator.
        op: BinaryOp,
        /// The right operand.
        right: Box<Expr>,
    },
    /// `op` applied to `expr`'s values.
    Unary {
        /// The function applied.
        op: UnaryOp,
        /// The expression it applies to.
        expr: Box<Expr>,
    },
    /// `expr`'s values converted to type `to` (null where one does not convert).
    Cast {
        /// The expression whose values are converted.
        expr: Box<Expr>,
        /// The type they are converted to.
        to: DataType,
    },
    /// Whether the value is one of `values`.
    IsIn {
        /// The expression whose values are tested.
        expr: Box<Expr>,
        /// The values it may be one of.
        values: Vec<Value>,
    },
    /// `when(condition).then(then).otherwise(otherwise)`.
    When {
        /// Where it holds, the value is `then`'s.
        condition: Box<Expr>,
        /// The value where `condition` holds.
        then: Box<Expr>,
        /// The value where it does not.
        otherwise: Box<Expr>,
    },
    /// `func` of `expr`'s values, per group (or over the whole partition).
    Agg {
        /// The aggregation.
        func: AggFunc,
        /// The expression aggregated.
        expr: Box<Expr>,
    },
    /// The number of rows (of a group, or of the partition).
    Len,
}

impl Expr {
    /// The name of the column this expression makes, as polars names it: its alias, else the
    /// first column it reads (`len` for [`Expr::Len`], `literal` for a literal).
    pub fn output_name(&self) -> String {
        match self {
            Expr::Column(name) | Expr::Alias { name, .. } => name.clone(),
            Expr::Literal(_) => "literal".to_string(),
            Expr::Len => "len".to_string(),
            Expr::Binary { left, .. } => left.output_name(),
            Expr::Unary { expr, .. }
            | Expr::Cast { expr, .. }
            | Expr::IsIn { expr, .. }
            | Expr::Agg { expr, .. } => expr.output_name(),
            Expr::When { then, .. } => then.output_name(),
        }
    }

    /// Whether an aggregation (or `len`) is part of it.
    pub fn has_agg(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, Expr::Agg { .. } | Expr::Len));
        found
    }

    /// Calls `f` on this expression and every expression inside it.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::Len => {}
            Expr::Alias { expr, .. }
            | Expr::Unary { expr, .. }
            | Expr::Cast { expr, .. }
            | Expr::IsIn { expr, .. }
            | Expr::Agg { expr, .. } => expr.visit(f),
            Expr::Binary { left, right, .. } => {
                left.visit(f);
                right.visit(f);
            }
            Expr::When {
                condition,
                then,
                otherwise,
            } => {
                condition.visit(f);
                then.visit(f);
                otherwise.visit(f);
            }
        }
    }
}

/// A column, by name: `col("price")`.
pub fn col(name: &str) -> Expr {
    Expr::Column(name.to_string())
}

/// A literal value: `lit(3)`, `lit("north")`, `lit(2.5)`.
pub fn lit(value: impl Into<Value>) -> Expr {
    Expr::Literal(value.into())
}

/// The number of rows (of each group, in an aggregation): polars' `len()`, SQL's `COUNT(*)`.
pub fn len() -> Expr {
    Expr::Len
}

/// `when(condition).then(a).otherwise(b)`: `a` where `condition` holds, else `b`.
pub fn when(condition: Expr) -> When {
    When { condition }
}

/// The first part of a [`when`] expression.
pub struct When {
    condition: Expr,
}

/// A [`when`] expression waiting for its `otherwise`.
pub struct WhenThen {
    condition: Expr,
    then: Expr,
}

impl When {
    /// The value where the condition holds; `otherwise` completes the expression.
    pub fn then(self, value: Expr) -> WhenThen {
        WhenThen {
            condition: self.condition,
            then: value,
        }
    }
}

impl WhenThen {
    /// The value where the condition does not hold: the whole `when` expression.
    pub fn otherwise(self, value: Expr) -> Expr {
        Expr::When {
            condition: Box::new(self.condition),
            then: Box::new(self.then),
            otherwise: Box::new(value),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident as $as:ty),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant(v as $as)
            }
        })*
    };
}

value_from!(i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int as i64,
    u8 => Int as i64, u16 => Int as i64, u32 => Int as i64, u64 => UInt as u64,
    usize => UInt as u64, f32 => Float as f64, f64 => Float as f64);

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Boolean(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Boolean(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::String(v) | Value::Other(v) => f.write_str(v),
            Value::Date(days) => {
                let (y, m, d) = civil_from_days(i64::from(*days));
                write!(f, "{y:04}-{m:02}-{d:02}")
            }
            Value::Datetime(micros) => {
                let secs = micros.div_euclid(1_000_000);
                let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
                let s = secs.rem_euclid(86_400);
                let frac = micros.rem_euclid(1_000_000);
                write!(
                    f,
                    "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                )?;
                if frac != 0 {
                    write!(f, ".{frac:06}")?;
                }
                Ok(())
            }
        }
    }
}

/// The (year, month, day) of a day count since 1970-01-01, proleptic Gregorian (Howard
/// Hinnant's algorithm): how dates show, in a DataFrame's rows and in the kernel's timestamps.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        $($(#[$doc])* pub fn $name(self, other: impl Into<Expr>) -> Expr {
            self.binary(BinaryOp::$op, other.into())
        })*
    };
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:expr),* $(,)?) => {
        $($(#[$doc])* pub fn $name(self) -> Expr {
            Expr::Unary { op: $op, expr: Box::new(self) }
        })*
    };
}

macro_rules! agg_methods {
    ($($(#[$doc:meta])* $name:ident => $func:ident),* $(,)?) => {
        $($(#[$doc])* pub fn $name(self) -> Expr {
            Expr::Agg { func: AggFunc::$func, expr: Box::new(self) }
        })*
    };
}

/// Building expressions, as polars' `Expr` methods.
impl Expr {
    fn binary(self, op: BinaryOp, right: Expr) -> Expr {
        Expr::Binary {
            left: Box::new(self),
            op,
            right: Box::new(right),
        }
    }

    binary_methods!(
        /// `self == other`.
        eq => Eq,
        /// `self != other`.
        neq => NotEq,
        /// `self < other`.
        lt => Lt,
        /// `self <= other`.
        lt_eq => LtEq,
        /// `self > other`.
        gt => Gt,
        /// `self >= other`.
        gt_eq => GtEq,
        /// Both hold.
        and => And,
        /// Either holds.
        or => Or,
    );

    unary_methods!(
        /// Negation of a boolean.
        // polars' name, so that `col("a").not()` reads as it does there.
        #[allow(clippy::should_implement_trait)]
        not => UnaryOp::Not,
        /// Whether the value is null.
        is_null => UnaryOp::IsNull,
        /// Whether the value is not null.
        is_not_null => UnaryOp::IsNotNull,
        /// The absolute value.
        abs => UnaryOp::Abs,
        /// The number of characters of a string.
        str_len => UnaryOp::StrLen,
        /// A string in lower case.
        to_lowercase => UnaryOp::Lowercase,
        /// A string in upper case.
        to_uppercase => UnaryOp::Uppercase,
        /// The year of a date.
        year => UnaryOp::Year,
        /// The month (1–12) of a date.
        month => UnaryOp::Month,
        /// The day of the month of a date.
        day => UnaryOp::Day,
    );

    agg_methods!(
        /// The sum (of a group's values, in an aggregation).
        sum => Sum,
        /// The mean.
        mean => Mean,
        /// The least value.
        min => Min,
        /// The greatest value.
        max => Max,
        /// The number of values that are not null.
        count => Count,
        /// The first value.
        first => First,
        /// The last value.
        last => Last,
        /// The number of distinct values.
        n_unique => NUnique,
    );

    /// The value rounded to `decimals` decimals.
    pub fn round(self, decimals: u32) -> Expr {
        Expr::Unary {
            op: UnaryOp::Round(decimals),
            expr: Box::new(self),
        }
    }

    /// Whether a string contains `text` (literally, not as a pattern).
    pub fn contains(self, text: &str) -> Expr {
        Expr::Unary {
            op: UnaryOp::Contains(text.to_string()),
            expr: Box::new(self),
        }
    }

    /// Whether a string starts with `text`.
    pub fn starts_with(self, text: &str) -> Expr {
        Expr::Unary {
            op: UnaryOp::StartsWith(text.to_string()),
            expr: Box::new(self),
        }
    }

    /// Whether a string ends with `text`.
    pub fn ends_with(self, text: &str) -> Expr {
        Expr::Unary {
            op: UnaryOp::EndsWith(text.to_string()),
            expr: Box::new(self),
        }
    }

    /// Names the column the expression makes.
    pub fn alias(self, name: &str) -> Expr {
        Expr::Alias {
            expr: Box::new(self),
            name: name.to_string(),
        }
    }

    /// The value converted to type `to` (null where it does not convert).
    pub fn cast(self, to: DataType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            to,
        }
    }

    /// Whether the value is one of `values`.
    pub fn is_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Expr {
        Expr::IsIn {
            expr: Box::new(self),
            values: values.into_iter().map(Into::into).collect(),
        }
    }
}

impl<V: Into<Value>> From<V> for Expr {
    fn from(value: V) -> Expr {
        Expr::Literal(value.into())
    }
}

macro_rules! arithmetic {
    ($($trait:ident $method:ident => $op:ident),* $(,)?) => {
        $(impl<R: Into<Expr>> std::ops::$trait<R> for Expr {
            type Output = Expr;
            fn $method(self, right: R) -> Expr {
                self.binary(BinaryOp::$op, right.into())
            }
        })*
    };
}

arithmetic!(Add add => Add, Sub sub => Sub, Mul mul => Mul, Div div => Div, Rem rem => Rem);

impl std::ops::Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        Expr::Unary {
            op: UnaryOp::Negate,
            expr: Box::new(self),
        }
    }
}

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Unary {
            op: UnaryOp::Not,
            expr: Box::new(self),
        }
    }
}

/// How a join keeps rows, as polars' `JoinType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JoinKind {
    /// Rows with a match on both sides.
    Inner,
    /// Every row of the left side, with its matches on the right (nulls where none).
    Left,
    /// Every row of the right side, with its matches on the left (nulls where none).
    Right,
    /// Every row of both sides, matched where they match (nulls where not).
    Full,
    /// Rows of the left side with a match on the right, once each.
    Semi,
    /// Rows of the left side without a match on the right.
    Anti,
}

/// How two DataFrames join: on `left_on` = `right_on`, keeping rows as `how` says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinOn {
    /// The key columns of the left DataFrame.
    pub left_on: Vec<String>,
    /// The key columns of the right DataFrame, one per column of `left_on`.
    pub right_on: Vec<String>,
    /// Which rows the join keeps.
    pub how: JoinKind,
}

/// What one partition's task does to its DataFrame: polars run over it, row order kept
/// within the partition. The driver plans whole-DataFrame operations (an aggregation, a
/// distinct, a limit) as such steps on either side of a shuffle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FrameStep {
    /// Only the columns these expressions make, in order.
    Select(Vec<Expr>),
    /// The rows where the predicate holds.
    Filter(Expr),
    /// The columns these expressions make added (replacing those of the same name).
    WithColumns(Vec<Expr>),
    /// Without the columns of these names.
    Drop(Vec<String>),
    /// (old name, new name) pairs.
    Rename(Vec<(String, String)>),
    /// The first `n` rows.
    Head(u64),
    /// Rows that differ in the `subset` columns (all of them when `None`), first ones kept.
    Distinct {
        /// The columns compared; `None` for all of them.
        subset: Option<Vec<String>>,
    },
    /// The rows sorted by the `by` columns; rows with equal keys keep their order.
    Sort {
        /// The columns to sort by, most significant first.
        by: Vec<String>,
        /// Per column of `by`, whether it sorts descending.
        descending: Vec<bool>,
    },
    /// Groups rows by `keys` and computes `aggs` for each group (one row per group).
    GroupBy {
        /// The expressions whose values make a group.
        keys: Vec<Expr>,
        /// The aggregations, each making one column.
        aggs: Vec<Expr>,
    },
}

impl FrameStep {
    /// The DataFrame method that makes this step, which names the RDD it adds.
    pub fn operation(&self) -> &'static str {
        match self {
            FrameStep::Select(_) => "select",
            FrameStep::Filter(_) => "filter",
            FrameStep::WithColumns(_) => "with_columns",
            FrameStep::Drop(_) => "drop",
            FrameStep::Rename(_) => "rename",
            FrameStep::Head(_) => "limit",
            FrameStep::Distinct { subset: None } => "distinct",
            FrameStep::Distinct { subset: Some(_) } => "distinct_on",
            FrameStep::Sort { .. } => "sort",
            FrameStep::GroupBy { .. } => "group_by",
        }
    }
}

/// The format of files a DataFrame is read from, with its options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FileFormat {
    /// Comma-separated values (or another separator), read as its options say.
    Csv(CsvOptions),
    /// Newline-delimited JSON: one object per line.
    Json(JsonOptions),
    /// Parquet: split by row groups, its schema from the file's own.
    Parquet,
}

/// The format `write_csv` and `write_parquet` write each partition's file in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteFormat {
    /// CSV with a header line.
    Csv,
    /// Parquet, compressed with zstd (polars' default).
    Parquet,
}

impl WriteFormat {
    /// The extension of its files.
    pub fn extension(self) -> &'static str {
        match self {
            WriteFormat::Csv => "csv",
            WriteFormat::Parquet => "parquet",
        }
    }
}

/// How a CSV file is read, as polars' `CsvReadOptions` has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// The first line of each file names the columns.
    pub has_header: bool,
    /// The byte between fields (`,` by default).
    pub separator: u8,
    /// Texts read as null (besides an empty field).
    pub null_values: Vec<String>,
    /// Rows that do not parse as the schema says are skipped (and counted: see the
    /// DataFrame's `skipped_rows`) instead of failing the job.
    pub skip_malformed: bool,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            has_header: true,
            separator: b',',
            null_values: Vec::new(),
            skip_malformed: false,
        }
    }
}

/// How newline-delimited JSON is read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonOptions {
    /// Lines that do not parse as the schema says are skipped (and counted: see the
    /// DataFrame's `skipped_rows`) instead of failing the job.
    pub skip_malformed: bool,
}

/// Rows of a DataFrame as they come back to a cell: its schema and each row's values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rows {
    /// The columns of the rows.
    pub schema: Schema,
    /// Each row's values, in the schema's column order.
    pub rows: Vec<Vec<Value>>,
}
