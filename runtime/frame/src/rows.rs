//! DataFrame rows as plain values ([`Rows`]), for a cell that shows or collects them without
//! linking polars.

use crate::convert::{schema_from_polars, value_from_polars};
use crate::error::FrameError;
use polars_core::prelude::DataFrame;
use tessera_plan::frame::Rows;

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
