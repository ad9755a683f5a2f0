//! Tessera's plain-data plans in polars' terms, and polars' values back as plain data: types,
//! schemas, expressions and values.

use crate::error::FrameError;
use polars_core::prelude::{
    AnyValue, DataType as PlType, Field as PlField, PlSmallStr, Schema as PlSchema, Series,
    TimeUnit,
};
use polars_lazy::prelude::{Expr as PlExpr, NULL, col, len, lit, when};
use polars_ops::series::RoundMode;
use tessera_plan::frame::{AggFunc, BinaryOp, DataType, Expr, Field, Schema, UnaryOp, Value};

/// `dtype` as polars names it; `Other` types have no polars counterpart to cast to.
pub fn dtype_to_polars(dtype: &DataType) -> Result<PlType, FrameError> {
    Ok(match dtype {
        DataType::Boolean => PlType::Boolean,
        DataType::Int8 => PlType::Int8,
        DataType::Int16 => PlType::Int16,
        DataType::Int32 => PlType::Int32,
        DataType::Int64 => PlType::Int64,
        DataType::UInt8 => PlType::UInt8,
        DataType::UInt16 => PlType::UInt16,
        DataType::UInt32 => PlType::UInt32,
        DataType::UInt64 => PlType::UInt64,
        DataType::Float32 => PlType::Float32,
        DataType::Float64 => PlType::Float64,
        DataType::String => PlType::String,
        DataType::Date => PlType::Date,
        DataType::Datetime => PlType::Datetime(TimeUnit::Microseconds, None),
        DataType::Null => PlType::Null,
        DataType::Other(name) => {
            return Err(FrameError::UnsupportedType { name: name.clone() });
        }
    })
}

/// polars' `dtype` as Tessera names it.
pub fn dtype_from_polars(dtype: &PlType) -> DataType {
    match dtype {
        PlType::Boolean => DataType::Boolean,
        PlType::Int8 => DataType::Int8,
        PlType::Int16 => DataType::Int16,
        PlType::Int32 => DataType::Int32,
        PlType::Int64 => DataType::Int64,
        PlType::UInt8 => DataType::UInt8,
        PlType::UInt16 => DataType::UInt16,
        PlType::UInt32 => DataType::UInt32,
        PlType::UInt64 => DataType::UInt64,
        PlType::Float32 => DataType::Float32,
        PlType::Float64 => DataType::Float64,
        PlType::String => DataType::String,
        PlType::Date => DataType::Date,
        PlType::Datetime(TimeUnit::Microseconds, None) => DataType::Datetime,
        PlType::Null => DataType::Null,
        other => DataType::Other(other.to_string()),
    }
}

/// `schema` as polars' schema.
pub fn schema_to_polars(schema: &Schema) -> Result<PlSchema, FrameError> {
    schema
        .fields
        .iter()
        .map(|f| {
            Ok(PlField::new(
                PlSmallStr::from_str(&f.name),
                dtype_to_polars(&f.dtype)?,
            ))
        })
        .collect()
}

/// polars' `schema` as Tessera's.
pub fn schema_from_polars(schema: &PlSchema) -> Schema {
    Schema {
        fields: schema
            .iter()
            .map(|(name, dtype)| Field {
                name: name.to_string(),
                dtype: dtype_from_polars(dtype),
            })
            .collect(),
    }
}

/// A literal of `value`.
fn literal(value: &Value) -> PlExpr {
    match value {
        Value::Null => lit(NULL),
        Value::Boolean(v) => lit(*v),
        Value::Int(v) => lit(*v),
        Value::UInt(v) => lit(*v),
        Value::Float(v) => lit(*v),
        Value::String(v) | Value::Other(v) => lit(v.as_str()),
        Value::Date(days) => lit(*days).cast(PlType::Date),
        Value::Datetime(micros) => {
            lit(*micros).cast(PlType::Datetime(TimeUnit::Microseconds, None))
        }
    }
}

/// `value` as polars' value.
pub fn any_value(value: &Value) -> AnyValue<'_> {
    match value {
        Value::Null => AnyValue::Null,
        Value::Boolean(v) => AnyValue::Boolean(*v),
        Value::Int(v) => AnyValue::Int64(*v),
        Value::UInt(v) => AnyValue::UInt64(*v),
        Value::Float(v) => AnyValue::Float64(*v),
        Value::String(v) | Value::Other(v) => AnyValue::String(v),
        Value::Date(days) => AnyValue::Date(*days),
        Value::Datetime(micros) => AnyValue::Datetime(*micros, TimeUnit::Microseconds, None),
    }
}

/// polars' `value` as plain data.
pub fn value_from_polars(value: &AnyValue) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(v) => Value::Boolean(*v),
        AnyValue::String(v) => Value::String(v.to_string()),
        AnyValue::StringOwned(v) => Value::String(v.to_string()),
        AnyValue::UInt8(v) => Value::UInt(u64::from(*v)),
        AnyValue::UInt16(v) => Value::UInt(u64::from(*v)),
        AnyValue::UInt32(v) => Value::UInt(u64::from(*v)),
        AnyValue::UInt64(v) => Value::UInt(*v),
        AnyValue::Int8(v) => Value::Int(i64::from(*v)),
        AnyValue::Int16(v) => Value::Int(i64::from(*v)),
        AnyValue::Int32(v) => Value::Int(i64::from(*v)),
        AnyValue::Int64(v) => Value::Int(*v),
        AnyValue::Float32(v) => Value::Float(f64::from(*v)),
        AnyValue::Float64(v) => Value::Float(*v),
        AnyValue::Date(days) => Value::Date(*days),
        AnyValue::Datetime(v, unit, None) => Value::Datetime(match unit {
            TimeUnit::Nanoseconds => v / 1000,
            TimeUnit::Microseconds => *v,
            TimeUnit::Milliseconds => v * 1000,
        }),
        other => Value::Other(other.to_string()),
    }
}

/// `expr` as polars' expression.
pub fn expr_to_polars(expr: &Expr) -> Result<PlExpr, FrameError> {
    let boxed = |e: &Expr| expr_to_polars(e);
    Ok(match expr {
        Expr::Column(name) => col(name.as_str()),
        Expr::Literal(value) => literal(value),
        Expr::Alias { expr, name } => boxed(expr)?.alias(name.as_str()),
        Expr::Binary { left, op, right } => {
            let (l, r) = (boxed(left)?, boxed(right)?);
            match op {
                BinaryOp::Eq => l.eq(r),
                BinaryOp::NotEq => l.neq(r),
                BinaryOp::Lt => l.lt(r),
                BinaryOp::LtEq => l.lt_eq(r),
                BinaryOp::Gt => l.gt(r),
                BinaryOp::GtEq => l.gt_eq(r),
                BinaryOp::And => l.and(r),
                BinaryOp::Or => l.or(r),
                BinaryOp::Add => l + r,
                BinaryOp::Sub => l - r,
                BinaryOp::Mul => l * r,
                BinaryOp::Div => l.true_div(r),
                BinaryOp::Rem => l % r,
            }
        }
        Expr::Unary { op, expr } => {
            let e = boxed(expr)?;
            match op {
                UnaryOp::Not => e.not(),
                UnaryOp::Negate => -e,
                UnaryOp::IsNull => e.is_null(),
                UnaryOp::IsNotNull => e.is_not_null(),
                UnaryOp::Abs => e.abs(),
                UnaryOp::Round(decimals) => e.round(*decimals, RoundMode::HalfAwayFromZero),
                UnaryOp::StrLen => e.str().len_chars(),
                UnaryOp::Lowercase => e.str().to_lowercase(),
                UnaryOp::Uppercase => e.str().to_uppercase(),
                UnaryOp::Contains(text) => e.str().contains_literal(lit(text.as_str())),
                UnaryOp::StartsWith(text) => e.str().starts_with(lit(text.as_str())),
                UnaryOp::EndsWith(text) => e.str().ends_with(lit(text.as_str())),
                UnaryOp::Year => e.dt().year(),
                UnaryOp::Month => e.dt().month(),
                UnaryOp::Day => e.dt().day(),
            }
        }
        Expr::Cast { expr, to } => boxed(expr)?.cast(dtype_to_polars(to)?),
        Expr::IsIn { expr, values } => {
            let values: Vec<AnyValue> = values.iter().map(any_value).collect();
            let set = Series::from_any_values(PlSmallStr::from_static("values"), &values, false)
                .map_err(FrameError::polars("a list of values for is_in"))?;
            boxed(expr)?.is_in(lit(set).implode(false), false)
        }
        Expr::When {
            condition,
            then,
            otherwise,
        } => when(boxed(condition)?)
            .then(boxed(then)?)
            .otherwise(boxed(otherwise)?),
        Expr::Agg { func, expr } => {
            let e = boxed(expr)?;
            match func {
                AggFunc::Sum => e.sum(),
                AggFunc::Mean => e.mean(),
                AggFunc::Min => e.min(),
                AggFunc::Max => e.max(),
                AggFunc::Count => e.count(),
                AggFunc::First => e.first(),
                AggFunc::Last => e.last(),
                AggFunc::NUnique => e.n_unique(),
            }
        }
        Expr::Len => len(),
    })
}

/// Every expression of `exprs` in polars' terms.
pub fn exprs_to_polars(exprs: &[Expr]) -> Result<Vec<PlExpr>, FrameError> {
    exprs.iter().map(expr_to_polars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_type_goes_to_polars_and_back() {
        for dtype in [
            DataType::Boolean,
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt8,
            DataType::UInt16,
            DataType::UInt32,
            DataType::UInt64,
            DataType::Float32,
            DataType::Float64,
            DataType::String,
            DataType::Date,
            DataType::Datetime,
            DataType::Null,
        ] {
            assert_eq!(dtype_from_polars(&dtype_to_polars(&dtype).unwrap()), dtype);
        }
        let error = dtype_to_polars(&DataType::Other("list[i64]".into())).unwrap_err();
        assert!(error.to_string().contains("list[i64]"), "{error}");
    }
}
