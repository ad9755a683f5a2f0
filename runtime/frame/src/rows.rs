//! DataFrame rows as plain values ([`Rows`]), for a cell that shows or collects them without
//! linking polars.

use crate::convert::{any_value, dtype_to_polars, schema_from_polars, value_from_polars};
use crate::error::FrameError;
use polars_core::prelude::{AnyValue, Column, DataFrame, PlSmallStr, Series};
use tessera_plan::frame::{Rows, Schema, Value};

/// The first `limit` rows of `frame` (all without a limit) as plain values.
pub fn rows(frame: &DataFrame, limit: Option<u64>) -> Result<Rows, FrameError> {
    let height = limit.map_or(frame.height(), |n| frame.height().min(n as usize));
    let mut rows = Vec::with_capacity(height);
    for i in 0..height {
        let row = frame
            .columns()
            .iter()
            .map(|c| c.get(i).map(|v| value_from_polars(&v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(FrameError::polars("reading a row"))?;
        rows.push(row);
    }
    Ok(Rows {
        schema: schema_from_polars(frame.schema()),
        rows,
    })
}

/// [`rows`] of a partition (empty for a partition without DataFrames), bincode-encoded.
pub fn encode_rows(frame: Option<&DataFrame>, limit: Option<u64>) -> Result<Vec<u8>, FrameError> {
    let rows = match frame {
        Some(frame) => rows(frame, limit)?,
        None => Rows::default(),
    };
    bincode::serialize(&rows).map_err(|e| FrameError::Params {
        what: "rows for the cell",
        reason: e.to_string(),
    })
}

/// Rows per record frame of [`record_buckets`]: a reducer decodes one frame at a time.
const ROWS_PER_FRAME: usize = 4096;

/// A map output holding `frame`'s rows (none for an empty partition) as records for cell code
/// — record frames of a bincode `Vec<Vec<Value>>` — all in bucket `partition` of
/// `partitions`.
pub fn record_buckets(
    frame: Option<&DataFrame>,
    partition: u32,
    partitions: u32,
) -> Result<Vec<u8>, FrameError> {
    let mut buckets = vec![Vec::new(); partitions.max(1) as usize];
    if let Some(frame) = frame {
        let bucket = &mut buckets[(partition as usize).min(partitions.max(1) as usize - 1)];
        let mut offset = 0;
        while offset < frame.height() {
            let part = frame.slice(offset as i64, ROWS_PER_FRAME);
            let records = rows(&part, None)?.rows;
            let encoded = bincode::serialize(&records).map_err(|e| FrameError::Params {
                what: "rows for cell code",
                reason: e.to_string(),
            })?;
            tessera_plan::map_output::push_frame(bucket, &encoded);
            offset += ROWS_PER_FRAME;
        }
    }
    Ok(tessera_plan::map_output::frame(&buckets))
}

/// The DataFrame of `schema` that cell records (a bincode `Vec<Vec<Value>>`, a value per
/// column) make; a value that does not fit its column's type is null there, as polars casts.
pub fn frame_of_records(bytes: &[u8], schema: &Schema) -> Result<DataFrame, FrameError> {
    let records: Vec<Vec<Value>> =
        bincode::deserialize(bytes).map_err(|e| FrameError::NotRecords {
            reason: e.to_string(),
        })?;
    if let Some(row) = records.iter().find(|r| r.len() != schema.fields.len()) {
        return Err(FrameError::RecordWidth {
            values: row.len(),
            columns: schema.fields.len(),
        });
    }
    let columns = schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let values: Vec<AnyValue> = records.iter().map(|r| any_value(&r[i])).collect();
            let dtype = dtype_to_polars(&field.dtype)?;
            Series::from_any_values_and_dtype(
                PlSmallStr::from_str(&field.name),
                &values,
                &dtype,
                false,
            )
            .map(Column::from)
            .map_err(FrameError::polars("making a DataFrame of records"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    DataFrame::new(records.len(), columns)
        .map_err(FrameError::polars("making a DataFrame of records"))
}
