//! SQL expressions as DataFrame expressions ([`tessera_plan::frame::Expr`]), their columns
//! resolved in a [`Scope`]. Aggregate functions become aggregations here; where they may stand
//! is the caller's to check. Dates moved by intervals are computed here, once.

use crate::error::SqlError;
use crate::scope::Scope;
use sqlparser::ast::{
    self as sql, BinaryOperator, DateTimeField, DuplicateTreatment, FunctionArg, FunctionArgExpr,
    FunctionArguments, UnaryOperator,
};
use tessera_plan::frame::{AggFunc, BinaryOp, DataType, Expr, Value, civil_from_days, when};

/// `expr` over the columns of `scope`.
pub(crate) fn translate(expr: &sql::Expr, scope: &Scope) -> Result<Expr, SqlError> {
    let go = |e: &sql::Expr| translate(e, scope);
    Ok(match expr {
        sql::Expr::Identifier(ident) => column(scope, std::slice::from_ref(&ident.value))?,
        sql::Expr::CompoundIdentifier(idents) => {
            let parts: Vec<String> = idents.iter().map(|i| i.value.clone()).collect();
            column(scope, &parts)?
        }
        sql::Expr::Value(value) => Expr::Literal(literal(&value.value)?),
        sql::Expr::TypedString(typed) => Expr::Literal(typed_string(typed)?),
        sql::Expr::Nested(inner) => go(inner)?,
        sql::Expr::IsNull(inner) => go(inner)?.is_null(),
        sql::Expr::IsNotNull(inner) => go(inner)?.is_not_null(),
        sql::Expr::UnaryOp { op, expr } => match (op, go(expr)?) {
            (UnaryOperator::Not, e) => !e,
            (UnaryOperator::Plus, e) => e,
            (UnaryOperator::Minus, Expr::Literal(Value::Int(n))) => Expr::Literal(Value::Int(-n)),
            (UnaryOperator::Minus, Expr::Literal(Value::Float(f))) => {
                Expr::Literal(Value::Float(-f))
            }
            (UnaryOperator::Minus, e) => -e,
            (other, _) => {
                return Err(SqlError::unsupported(
                    format!("the operator {other}"),
                    "use NOT, + or -",
                ));
            }
        },
        sql::Expr::BinaryOp { left, op, right } => binary(left, op, right, scope)?,
        sql::Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let value = go(expr)?;
            let within = value.clone().gt_eq(go(low)?).and(value.lt_eq(go(high)?));
            unless(*negated, within)
        }
        sql::Expr::InList {
            expr,
            list,
            negated,
        } => {
            let values = list
                .iter()
                .map(|item| match go(item)? {
                    Expr::Literal(value) => Ok(value),
                    _ => Err(SqlError::unsupported(
                        format!("`{item}` in an IN list"),
                        "list literal values only",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            unless(*negated, go(expr)?.is_in(values))
        }
        sql::Expr::Like {
            negated,
            any: false,
            expr: value,
            pattern,
            escape_char: None,
        }
        | sql::Expr::ILike {
            negated,
            any: false,
            expr: value,
            pattern,
            escape_char: None,
        } => {
            let matched = if matches!(expr, sql::Expr::ILike { .. }) {
                let lowered = sql::Expr::Function(lowercase_call(pattern));
                like(go(value)?.to_lowercase(), &lowered)?
            } else {
                like(go(value)?, pattern)?
            };
            unless(*negated, matched)
        }
        sql::Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let mut result = match else_result {
                Some(e) => go(e)?,
                None => Expr::Literal(Value::Null),
            };
            for case in conditions.iter().rev() {
                let condition = match operand {
                    Some(operand) => go(operand)?.eq(go(&case.condition)?),
                    None => go(&case.condition)?,
                };
                result = when(condition).then(go(&case.result)?).otherwise(result);
            }
            result
        }
        sql::Expr::Cast {
            expr,
            data_type,
            format: None,
            array: false,
            ..
        } => go(expr)?.cast(data_type_of(data_type)?),
        sql::Expr::Extract { field, expr, .. } => {
            let value = go(expr)?;
            match field {
                DateTimeField::Year => value.year(),
                DateTimeField::Month => value.month(),
                DateTimeField::Day => value.day(),
                other => {
                    return Err(SqlError::unsupported(
                        format!("EXTRACT({other} ...)"),
                        "extract YEAR, MONTH or DAY",
                    ));
                }
            }
        }
        sql::Expr::Function(function) => call(function, scope)?,
        sql::Expr::Interval(_) => {
            return Err(SqlError::unsupported(
                format!("`{expr}` on its own"),
                "add an INTERVAL to or subtract it from a DATE literal",
            ));
        }
        sql::Expr::Subquery(_) | sql::Expr::Exists { .. } | sql::Expr::InSubquery { .. } => {
            return Err(SqlError::unsupported(
                "a subquery in an expression",
                "join the subquery's table in FROM instead",
            ));
        }
        other => {
            return Err(SqlError::unsupported(
                format!("the expression `{other}`"),
                "see the SQL that sc.sql plans in the documentation of DataFrames",
            ));
        }
    })
}

/// `condition`, or its negation for `NOT BETWEEN`, `NOT IN`, `NOT LIKE`.
fn unless(negated: bool, condition: Expr) -> Expr {
    if negated { !condition } else { condition }
}

fn column(scope: &Scope, parts: &[String]) -> Result<Expr, SqlError> {
    Ok(Expr::Column(scope.resolve(parts)?.column.clone()))
}

fn binary(
    left: &sql::Expr,
    op: &BinaryOperator,
    right: &sql::Expr,
    scope: &Scope,
) -> Result<Expr, SqlError> {
    match (left, op, right) {
        (date, BinaryOperator::Plus | BinaryOperator::Minus, sql::Expr::Interval(interval)) => {
            let sign = if *op == BinaryOperator::Plus { 1 } else { -1 };
            return moved_date(translate(date, scope)?, interval, sign, left);
        }
        (sql::Expr::Interval(interval), BinaryOperator::Plus, date) => {
            return moved_date(translate(date, scope)?, interval, 1, right);
        }
        _ => {}
    }
    let op = match op {
        BinaryOperator::Plus => BinaryOp::Add,
        BinaryOperator::Minus => BinaryOp::Sub,
        BinaryOperator::Multiply => BinaryOp::Mul,
        BinaryOperator::Divide => BinaryOp::Div,
        BinaryOperator::Modulo => BinaryOp::Rem,
        BinaryOperator::Gt => BinaryOp::Gt,
        BinaryOperator::Lt => BinaryOp::Lt,
        BinaryOperator::GtEq => BinaryOp::GtEq,
        BinaryOperator::LtEq => BinaryOp::LtEq,
        BinaryOperator::Eq => BinaryOp::Eq,
        BinaryOperator::NotEq => BinaryOp::NotEq,
        BinaryOperator::And => BinaryOp::And,
        BinaryOperator::Or => BinaryOp::Or,
        other => {
            return Err(SqlError::unsupported(
                format!("the operator {other}"),
                "use arithmetic (+ - * / %), comparisons, AND and OR",
            ));
        }
    };
    Ok(Expr::Binary {
        left: Box::new(translate(left, scope)?),
        op,
        right: Box::new(translate(right, scope)?),
    })
}

/// A date literal moved by an interval (`DATE '1998-12-01' - INTERVAL '90' DAY`), computed now.
fn moved_date(
    date: Expr,
    interval: &sql::Interval,
    sign: i64,
    written: &sql::Expr,
) -> Result<Expr, SqlError> {
    let Expr::Literal(Value::Date(days)) = date else {
        return Err(SqlError::unsupported(
            format!("interval arithmetic on `{written}`"),
            "move a DATE literal by the interval instead, and compare the column with it",
        ));
    };
    let (amount, unit) = interval_of(interval)?;
    let amount = amount * sign;
    let moved = match unit {
        Unit::Days => i64::from(days) + amount,
        Unit::Months => add_months(i64::from(days), amount),
    };
    Ok(Expr::Literal(Value::Date(moved as i32)))
}

enum Unit {
    Days,
    Months,
}

/// How far an interval reaches: `INTERVAL '90' DAY`, `INTERVAL '1' YEAR`, `INTERVAL '3 months'`.
fn interval_of(interval: &sql::Interval) -> Result<(i64, Unit), SqlError> {
    let bad = || SqlError::BadLiteral {
        what: "interval",
        text: interval.to_string(),
        expected: "write a whole number of days, weeks, months or years, as INTERVAL '90' DAY",
    };
    let text = match interval.value.as_ref() {
        sql::Expr::Value(value) => match &value.value {
            sql::Value::SingleQuotedString(s) | sql::Value::Number(s, _) => s.clone(),
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    let mut words = text.split_whitespace();
    let amount: i64 = words.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let unit = match (&interval.leading_field, words.next()) {
        (Some(field), None) => field.to_string(),
        (None, Some(word)) => word.to_string(),
        _ => return Err(bad()),
    };
    if interval.last_field.is_some() || words.next().is_some() {
        return Err(bad());
    }
    match unit.to_ascii_lowercase().trim_end_matches('s') {
        "day" => Ok((amount, Unit::Days)),
        "week" => Ok((amount * 7, Unit::Days)),
        "month" => Ok((amount, Unit::Months)),
        "year" => Ok((amount * 12, Unit::Months)),
        _ => Err(bad()),
    }
}

/// Days since 1970-01-01 of a (year, month, day), proleptic Gregorian: the inverse of
/// [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    (days_from_civil(next_year, next_month, 1) - days_from_civil(year, month, 1)) as u32
}

/// `days` moved by `months` calendar months, the day of the month kept where the month has
/// it, else the month's last day (as SQL engines do: Jan 31 + 1 month is Feb 28 or 29).
fn add_months(days: i64, months: i64) -> i64 {
    let (year, month, day) = civil_from_days(days);
    let index = year * 12 + i64::from(month) - 1 + months;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
    days_from_civil(year, month, day.min(days_in_month(year, month)))
}

/// A `YYYY-MM-DD` date as days since 1970-01-01.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    valid.then(|| days_from_civil(year, month, day))
}

/// A `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` timestamp as microseconds since 1970-01-01 00:00.
fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, "00:00:00"));
    let days = parse_date(date)?;
    let (time, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next().unwrap_or(Some(0))?);
    if h > 23 || m > 59 || s > 59 || fraction.len() > 6 {
        return None;
    }
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").parse().ok()?
    };
    Some(((days * 86_400 + h * 3600 + m * 60 + s) * 1_000_000) + micros)
}

fn typed_string(typed: &sql::TypedString) -> Result<Value, SqlError> {
    let text = match &typed.value.value {
        sql::Value::SingleQuotedString(s) => s.as_str(),
        _ => "",
    };
    match typed.data_type {
        sql::DataType::Date => {
            parse_date(text)
                .map(|days| Value::Date(days as i32))
                .ok_or(SqlError::BadLiteral {
                    what: "date",
                    text: text.to_string(),
                    expected: "write a date as DATE 'YYYY-MM-DD'",
                })
        }
        sql::DataType::Timestamp(..) | sql::DataType::Datetime(_) => parse_timestamp(text)
            .map(Value::Datetime)
            .ok_or(SqlError::BadLiteral {
                what: "timestamp",
                text: text.to_string(),
                expected: "write a timestamp as TIMESTAMP 'YYYY-MM-DD HH:MM:SS'",
            }),
        ref other => Err(SqlError::unsupported(
            format!("a {other} literal"),
            "write DATE '...' or TIMESTAMP '...' literals, or cast a string",
        )),
    }
}

/// A literal: numbers without a point or exponent are integers (64-bit), others floats.
fn literal(value: &sql::Value) -> Result<Value, SqlError> {
    match value {
        sql::Value::Number(text, _) => text
            .parse::<i64>()
            .map(Value::Int)
            .or_else(|_| text.parse::<f64>().map(Value::Float))
            .map_err(|_| SqlError::BadLiteral {
                what: "number",
                text: text.clone(),
                expected: "write numbers as 42, 4.2 or 4.2e1",
            }),
        sql::Value::SingleQuotedString(s)
        | sql::Value::EscapedStringLiteral(s)
        | sql::Value::NationalStringLiteral(s) => Ok(Value::String(s.clone())),
        sql::Value::Boolean(b) => Ok(Value::Boolean(*b)),
        sql::Value::Null => Ok(Value::Null),
        other => Err(SqlError::unsupported(
            format!("the literal {other}"),
            "write numbers, 'strings', TRUE, FALSE, NULL, DATE '...' or TIMESTAMP '...'",
        )),
    }
}

/// A SQL type as a DataFrame column type. DECIMAL and NUMERIC become 64-bit floats: that is
/// what Tessera reads such columns as (polars' CSV reader does not infer decimals either).
fn data_type_of(data_type: &sql::DataType) -> Result<DataType, SqlError> {
    use sql::DataType as T;
    Ok(match data_type {
        T::Boolean | T::Bool => DataType::Boolean,
        T::TinyInt(_) => DataType::Int8,
        T::SmallInt(_) | T::Int2(_) => DataType::Int16,
        T::Int(_) | T::Integer(_) | T::Int4(_) | T::Int32 => DataType::Int32,
        T::BigInt(_) | T::Int8(_) | T::Int64 => DataType::Int64,
        T::Real | T::Float4 | T::Float32 => DataType::Float32,
        T::Float(_)
        | T::Double(_)
        | T::DoublePrecision
        | T::Float8
        | T::Float64
        | T::Decimal(_)
        | T::Numeric(_)
        | T::Dec(_) => DataType::Float64,
        T::Varchar(_)
        | T::Char(_)
        | T::Character(_)
        | T::CharacterVarying(_)
        | T::CharVarying(_)
        | T::String(_)
        | T::Text => DataType::String,
        T::Date => DataType::Date,
        T::Timestamp(..) | T::Datetime(_) => DataType::Datetime,
        other => {
            return Err(SqlError::unsupported(
                format!("CAST to {other}"),
                "cast to BOOLEAN, an integer type, REAL, DOUBLE, DECIMAL, VARCHAR, DATE or TIMESTAMP",
            ));
        }
    })
}

/// `LIKE` with `%` only at the ends of its pattern: equality, a prefix, a suffix, or a part.
fn like(value: Expr, pattern: &sql::Expr) -> Result<Expr, SqlError> {
    let text = match pattern {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::SingleQuotedString(s) => s.clone(),
            _ => String::new(),
        },
        sql::Expr::Function(f) => match lowercase_call_text(f) {
            Some(s) => s.to_lowercase(),
            None => String::new(),
        },
        _ => String::new(),
    };
    let inner = text.trim_start_matches('%').trim_end_matches('%');
    if text.is_empty() || inner.contains(['%', '_']) {
        return Err(SqlError::unsupported(
            format!("the LIKE pattern {pattern}"),
            "use a literal pattern with % only at its start or end ('abc%', '%abc', '%abc%'), or combine several LIKEs with AND",
        ));
    }
    let (starts, ends) = (text.starts_with('%'), text.ends_with('%') && text.len() > 1);
    Ok(match (starts, ends) {
        _ if inner.is_empty() => value.is_not_null(),
        (false, false) => value.eq(Expr::Literal(Value::String(inner.to_string()))),
        (false, true) => value.starts_with(inner),
        (true, false) => value.ends_with(inner),
        (true, true) => value.contains(inner),
    })
}

/// `lower(pattern)`, the pattern of an `ILIKE`.
fn lowercase_call(pattern: &sql::Expr) -> sql::Function {
    sql::Function {
        name: sql::ObjectName::from(vec![sql::Ident::new("lower")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(sql::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(pattern.clone()))],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    }
}

/// The literal text of `lower('...')`.
fn lowercase_call_text(function: &sql::Function) -> Option<String> {
    match &function.args {
        FunctionArguments::List(list) => match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(sql::Expr::Value(v)))] => match &v.value {
                sql::Value::SingleQuotedString(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn agg(func: AggFunc, expr: Expr) -> Expr {
    Expr::Agg {
        func,
        expr: Box::new(expr),
    }
}

/// A function call: an aggregate or a function of each row's values.
fn call(function: &sql::Function, scope: &Scope) -> Result<Expr, SqlError> {
    // A name the parser takes for a function without parentheses (`user`, `current_date`)
    // is a column where there is one of that name.
    if matches!(function.args, FunctionArguments::None) {
        let parts: Vec<String> = function.name.0.iter().map(|p| p.to_string()).collect();
        if let Ok(column) = scope.resolve(&parts) {
            return Ok(Expr::Column(column.column.clone()));
        }
    }
    let name = function.name.to_string().to_ascii_lowercase();
    if function.over.is_some() {
        return Err(SqlError::unsupported(
            format!("the window function {name}(...) OVER (...)"),
            "aggregate with GROUP BY and join the result back",
        ));
    }
    if function.filter.is_some() || !function.within_group.is_empty() {
        return Err(SqlError::unsupported(
            format!("FILTER or WITHIN GROUP on {name}"),
            "aggregate a CASE WHEN ... THEN x END instead",
        ));
    }
    let (distinct, args): (bool, Vec<&FunctionArgExpr>) = match &function.args {
        FunctionArguments::List(list) if list.clauses.is_empty() => (
            list.duplicate_treatment == Some(DuplicateTreatment::Distinct),
            list.args
                .iter()
                .map(|arg| match arg {
                    FunctionArg::Unnamed(arg) => Ok(arg),
                    _ => Err(SqlError::unsupported(
                        format!("named arguments of {name}"),
                        "pass arguments by position",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        FunctionArguments::None => (false, Vec::new()),
        _ => {
            return Err(SqlError::unsupported(
                format!("the arguments of {name}"),
                "pass plain expressions",
            ));
        }
    };
    if matches!(args.as_slice(), [FunctionArgExpr::Wildcard]) {
        return match (name.as_str(), distinct) {
            ("count", false) => Ok(Expr::Len),
            _ => Err(SqlError::unsupported(
                format!("{name}(*)"),
                "only count(*) takes *",
            )),
        };
    }
    let args: Vec<Expr> = args
        .iter()
        .map(|arg| match arg {
            FunctionArgExpr::Expr(e) => translate(e, scope),
            other => Err(SqlError::unsupported(
                format!("the argument {other} of {name}"),
                "pass plain expressions",
            )),
        })
        .collect::<Result<_, _>>()?;
    let one = |args: Vec<Expr>| -> Result<Expr, SqlError> {
        match <[Expr; 1]>::try_from(args) {
            Ok([arg]) => Ok(arg),
            Err(_) => Err(SqlError::unsupported(
                format!("{name} with other than one argument"),
                "pass it one argument",
            )),
        }
    };
    if distinct && !matches!(name.as_str(), "count" | "min" | "max") {
        return Err(SqlError::unsupported(
            format!("{name}(DISTINCT ...)"),
            "use count(DISTINCT x), or SELECT DISTINCT in a subquery first",
        ));
    }
    Ok(match name.as_str() {
        "count" if distinct => {
            // Distinct values that are not null: polars counts a null as a distinct value.
            let value = one(args)?;
            let has_null = agg(AggFunc::Max, value.clone().is_null().cast(DataType::Int64));
            agg(AggFunc::NUnique, value).cast(DataType::Int64) - has_null
        }
        "count" => agg(AggFunc::Count, one(args)?),
        "sum" => agg(AggFunc::Sum, one(args)?),
        "avg" | "mean" => agg(AggFunc::Mean, one(args)?),
        "min" => agg(AggFunc::Min, one(args)?),
        "max" => agg(AggFunc::Max, one(args)?),
        "upper" | "ucase" => one(args)?.to_uppercase(),
        "lower" | "lcase" => one(args)?.to_lowercase(),
        "length" | "char_length" | "character_length" => one(args)?.str_len(),
        "abs" => one(args)?.abs(),
        "year" => one(args)?.year(),
        "month" => one(args)?.month(),
        "day" | "dayofmonth" => one(args)?.day(),
        "round" => match <[Expr; 2]>::try_from(args) {
            Ok([value, Expr::Literal(Value::Int(decimals))]) if decimals >= 0 => {
                value.round(decimals as u32)
            }
            Ok(_) => {
                return Err(SqlError::unsupported(
                    "round with decimals that are not a whole number literal",
                    "write round(x, 2)",
                ));
            }
            Err(args) => one(args)?.round(0),
        },
        _ => {
            return Err(SqlError::unsupported(
                format!("the function {name}"),
                "use sum, avg, min, max, count, upper, lower, length, abs, round, year, month or day",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;
    use tessera_plan::frame::{col, lit};

    fn expr(text: &str) -> Result<Expr, SqlError> {
        let parsed = Parser::new(&GenericDialect {})
            .try_with_sql(text)
            .unwrap()
            .parse_expr()
            .unwrap();
        let scope = Scope::of_table("t", &["a".into(), "b".into(), "d".into(), "s".into()]);
        translate(&parsed, &scope)
    }

    fn date(text: &str) -> Expr {
        Expr::Literal(Value::Date(parse_date(text).unwrap() as i32))
    }

    #[test]
    fn dates_are_days_since_1970_and_intervals_move_them_by_the_calendar() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1998-12-01"), Some(10_561));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(
            expr("DATE '1998-12-01' - INTERVAL '90' DAY").unwrap(),
            date("1998-09-02")
        );
        assert_eq!(
            expr("date '1994-01-01' + interval '1' year").unwrap(),
            date("1995-01-01")
        );
        assert_eq!(
            expr("date '1993-10-01' + interval '3' month").unwrap(),
            date("1994-01-01")
        );
        assert_eq!(
            expr("date '2024-01-31' + interval '1 month'").unwrap(),
            date("2024-02-29")
        );
        let error = expr("d + interval '1' day").unwrap_err();
        assert!(error.to_string().contains("DATE literal"), "{error}");
        assert_eq!(
            expr("TIMESTAMP '1970-01-02 00:00:01.5'").unwrap(),
            Expr::Literal(Value::Datetime(86_401_500_000))
        );
    }

    #[test]
    fn predicates_become_the_dataframe_expressions_a_cell_would_write() {
        assert_eq!(
            expr("a BETWEEN 1 AND 3").unwrap(),
            col("a").gt_eq(lit(1)).and(col("a").lt_eq(lit(3)))
        );
        assert_eq!(
            expr("s NOT IN ('x', 'y')").unwrap(),
            !col("s").is_in(["x", "y"])
        );
        assert_eq!(expr("s LIKE 'ab%'").unwrap(), col("s").starts_with("ab"));
        assert_eq!(expr("s LIKE '%ab'").unwrap(), col("s").ends_with("ab"));
        assert_eq!(expr("s LIKE '%ab%'").unwrap(), col("s").contains("ab"));
        assert_eq!(expr("s LIKE 'ab'").unwrap(), col("s").eq(lit("ab")));
        assert!(expr("s LIKE 'a%b'").is_err());
        assert_eq!(
            expr("s NOT ILIKE 'AB%'").unwrap(),
            !col("s").to_lowercase().starts_with("ab")
        );
        assert_eq!(expr("-a * 0.5").unwrap(), -col("a") * lit(0.5));
        assert_eq!(expr("b IS NOT NULL").unwrap(), col("b").is_not_null());
        assert_eq!(
            expr("CASE WHEN a > 1 THEN 'big' ELSE 'small' END").unwrap(),
            when(col("a").gt(lit(1)))
                .then(lit("big"))
                .otherwise(lit("small"))
        );
        assert_eq!(
            expr("CAST(a AS DOUBLE)").unwrap(),
            col("a").cast(DataType::Float64)
        );
        assert_eq!(expr("extract(year from d)").unwrap(), col("d").year());
    }

    #[test]
    fn aggregates_and_functions() {
        assert_eq!(expr("COUNT(*)").unwrap(), Expr::Len);
        assert_eq!(
            expr("sum(a * (1 - b))").unwrap(),
            (col("a") * (lit(1) - col("b"))).sum()
        );
        assert_eq!(expr("avg(a)").unwrap(), col("a").mean());
        assert_eq!(expr("round(a, 2)").unwrap(), col("a").round(2));
        assert!(expr("count(DISTINCT a)").unwrap().has_agg());
        let error = expr("median(a)").unwrap_err();
        assert!(error.to_string().contains("median"), "{error}");
        let error = expr("nope + 1").unwrap_err();
        assert!(error.to_string().contains("t.a"), "{error}");
    }
}
