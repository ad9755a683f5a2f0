//! A join key column's values as integers (64 or 32 bits, a date as its days) where it has no
//! nulls, read in place as slices of its chunks: what the merge join merges on and the
//! runtime filter's bitmap (`KeyBits`) is made of. A file of its own, below both.

use polars_core::prelude::{
    ChunkedArray, Column, DataType, Int32Chunked, Int64Chunked, PolarsNumericType,
};

/// The integer values of a key column without nulls (its chunks share the column's memory).
pub(crate) enum KeyValues {
    I64(Int64Chunked),
    I32(Int32Chunked),
}

/// The values of `column` if it can be merged on: integers or dates (64 or 32 bits), no nulls.
pub(crate) fn key_values(column: &Column) -> Option<KeyValues> {
    if column.null_count() > 0 {
        return None;
    }
    match column.dtype() {
        DataType::Int64 => Some(KeyValues::I64(column.i64().ok()?.clone())),
        DataType::Int32 => Some(KeyValues::I32(column.i32().ok()?.clone())),
        DataType::Date => Some(KeyValues::I32(
            column.to_physical_repr().i32().ok()?.clone(),
        )),
        _ => None,
    }
}

/// A column's chunks as slices, without copying them into one.
pub(crate) fn chunks<T: PolarsNumericType>(values: &ChunkedArray<T>) -> Vec<&[T::Native]> {
    values
        .downcast_iter()
        .map(|array| array.values().as_slice())
        .collect()
}
