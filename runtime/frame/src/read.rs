//! Rows of CSV and newline-delimited JSON files into DataFrames: a chunk of whole lines at a
//! time, with the schema the driver decided for the whole input (so every partition reads the
//! same types), and that schema inferred from a sample, as polars infers it.

use crate::convert::{schema_from_polars, schema_to_polars};
use crate::error::{FrameError, guard};
use polars_core::prelude::{DataFrame, PlSmallStr};
use polars_io::prelude::{
    CsvParseOptions, CsvReadOptions, JsonFormat, JsonReader, NullValues, SerReader,
};
use std::io::Cursor;
use std::num::NonZeroUsize;
use std::sync::Arc;
use tessera_plan::frame::{CsvOptions, Schema};

/// Rows polars looks at to infer a schema (its own default is 100).
pub const INFER_ROWS: usize = 1000;

/// The first `n` lines of `text` (all of a shorter text): polars parses a whole sample in
/// chunks even when told to stop after `n` rows, so a bad row past them would fail inference.
fn first_lines(text: &[u8], n: usize) -> &[u8] {
    let end = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n.saturating_sub(1))
        .map_or(text.len(), |(i, _)| i + 1);
    &text[..end]
}

/// A malformed row's error: polars' reason's first line (the rest suggests options of its
/// Python API).
fn malformed(error: impl std::fmt::Display) -> FrameError {
    let reason = error.to_string();
    FrameError::MalformedRow {
        reason: reason.lines().next().unwrap_or_default().trim().to_string(),
    }
}

fn parse_options(options: &CsvOptions) -> impl Fn(CsvParseOptions) -> CsvParseOptions + '_ {
    move |parse| {
        let nulls = (!options.null_values.is_empty()).then(|| {
            NullValues::AllColumns(
                options
                    .null_values
                    .iter()
                    .map(|v| PlSmallStr::from_str(v))
                    .collect(),
            )
        });
        parse
            .with_separator(options.separator)
            .with_null_values(nulls)
    }
}

/// The rows of `lines` (whole CSV lines, no header) as `schema` says.
pub fn parse_csv(
    lines: &[u8],
    schema: &Schema,
    options: &CsvOptions,
) -> Result<DataFrame, FrameError> {
    let schema = Arc::new(schema_to_polars(schema)?);
    guard("reading CSV rows", || {
        CsvReadOptions::default()
            .with_has_header(false)
            .with_schema(Some(schema))
            .with_n_threads(Some(1))
            .map_parse_options(parse_options(options))
            .into_reader_with_file_handle(Cursor::new(lines))
            .finish()
            .map_err(malformed)
    })
}

/// The rows of `lines` that parse as `schema` says, and how many lines did not: halves of the
/// chunk are parsed again until each malformed line stands alone, so a chunk with a few bad
/// lines costs a few parses more, not one per line.
pub fn parse_csv_skipping(
    lines: &[u8],
    schema: &Schema,
    options: &CsvOptions,
) -> Result<(DataFrame, u64), FrameError> {
    parse_skipping(lines, schema, |chunk| parse_csv(chunk, schema, options))
}

/// As [`parse_csv_skipping`], for newline-delimited JSON.
pub fn parse_json_skipping(lines: &[u8], schema: &Schema) -> Result<(DataFrame, u64), FrameError> {
    parse_skipping(lines, schema, |chunk| parse_json(chunk, schema))
}

/// The rows of `lines` that `parse` reads, and how many lines it cannot read.
fn parse_skipping(
    lines: &[u8],
    schema: &Schema,
    parse: impl Fn(&[u8]) -> Result<DataFrame, FrameError>,
) -> Result<(DataFrame, u64), FrameError> {
    fn split_parse(
        lines: &[&[u8]],
        parse: &dyn Fn(&[u8]) -> Result<DataFrame, FrameError>,
        kept: &mut Vec<DataFrame>,
    ) -> Result<u64, FrameError> {
        if lines.is_empty() {
            return Ok(0);
        }
        match parse(&lines.concat()) {
            Ok(frame) => {
                kept.push(frame);
                Ok(0)
            }
            Err(FrameError::MalformedRow { .. }) if lines.len() == 1 => Ok(1),
            Err(FrameError::MalformedRow { .. }) => {
                let (a, b) = lines.split_at(lines.len() / 2);
                Ok(split_parse(a, parse, kept)? + split_parse(b, parse, kept)?)
            }
            Err(other) => Err(other),
        }
    }
    match parse(lines) {
        Err(FrameError::MalformedRow { .. }) => {
            let lines: Vec<&[u8]> = lines.split_inclusive(|&b| b == b'\n').collect();
            let mut kept = Vec::new();
            let skipped = split_parse(&lines, &parse, &mut kept)?;
            let frame = match kept.len() {
                0 => DataFrame::empty_with_schema(&schema_to_polars(schema)?),
                _ => polars_core::utils::accumulate_dataframes_vertical(kept)
                    .map_err(FrameError::polars("putting the rows that parsed together"))?,
            };
            Ok((frame, skipped))
        }
        other => other.map(|frame| (frame, 0)),
    }
}

/// The schema of CSV text starting at a file's beginning, as polars infers it from its first
/// [`INFER_ROWS`] rows (column names from the header, if the options say there is one).
pub fn infer_csv_schema(sample: &[u8], options: &CsvOptions) -> Result<Schema, FrameError> {
    guard("inferring a CSV file's schema", || {
        let frame = CsvReadOptions::default()
            .with_has_header(options.has_header)
            .with_infer_schema_length(Some(INFER_ROWS))
            .with_n_rows(Some(INFER_ROWS))
            .with_n_threads(Some(1))
            .map_parse_options(parse_options(options))
            .into_reader_with_file_handle(Cursor::new(first_lines(
                sample,
                INFER_ROWS + usize::from(options.has_header),
            )))
            .finish()
            .map_err(malformed)?;
        Ok(schema_from_polars(frame.schema()))
    })
}

/// The rows of `lines` (whole lines of newline-delimited JSON) as `schema` says.
pub fn parse_json(lines: &[u8], schema: &Schema) -> Result<DataFrame, FrameError> {
    let schema = Arc::new(schema_to_polars(schema)?);
    let read = guard("reading JSON rows", || {
        JsonReader::new(Cursor::new(lines))
            .with_json_format(JsonFormat::JsonLines)
            .with_schema(schema)
            .finish()
            .map_err(malformed)
    });
    // polars' JSON reader panics on some broken lines (a line cut short) rather than erring:
    // for rows read from a file that is a malformed row too.
    read.map_err(|e| match e {
        FrameError::Panicked { message, .. } => malformed(format!("polars panicked: {message}")),
        other => other,
    })
}

/// The schema of newline-delimited JSON, as polars infers it from its first [`INFER_ROWS`]
/// lines.
pub fn infer_json_schema(sample: &[u8]) -> Result<Schema, FrameError> {
    guard("inferring a JSON file's schema", || {
        let frame = JsonReader::new(Cursor::new(first_lines(sample, INFER_ROWS)))
            .with_json_format(JsonFormat::JsonLines)
            .infer_schema_len(NonZeroUsize::new(INFER_ROWS))
            .finish()
            .map_err(malformed)?;
        Ok(schema_from_polars(frame.schema()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plan::frame::DataType;

    #[test]
    fn a_chunk_reads_with_the_schema_inferred_from_the_start_of_its_file() {
        let options = CsvOptions {
            null_values: vec!["NA".into()],
            ..CsvOptions::default()
        };
        let schema = infer_csv_schema(b"id,name,score\n1,ann,2.5\n2,bob,NA\n", &options).unwrap();
        assert_eq!(schema.names(), ["id", "name", "score"]);
        assert_eq!(schema.fields[0].dtype, DataType::Int64);
        assert_eq!(schema.fields[2].dtype, DataType::Float64);
        let frame = parse_csv(b"3,cy,NA\n4,di,1.0\n", &schema, &options).unwrap();
        assert_eq!(frame.height(), 2);
        assert_eq!(frame.column("score").unwrap().null_count(), 1);
    }

    #[test]
    fn a_schema_is_inferred_from_the_first_rows_only() {
        let mut text = "a\n".to_string();
        for i in 0..INFER_ROWS {
            text.push_str(&format!("{i}\n"));
        }
        text.push_str("seven\n");
        let schema = infer_csv_schema(text.as_bytes(), &CsvOptions::default()).unwrap();
        assert_eq!(schema.fields[0].dtype, DataType::Int64);
        assert_eq!(first_lines(b"x\ny\nz", 2), b"x\ny\n");
        assert_eq!(first_lines(b"x\ny", 5), b"x\ny");
    }

    #[test]
    fn a_row_that_does_not_fit_the_schema_is_a_malformed_row() {
        let options = CsvOptions::default();
        let schema = infer_csv_schema(b"id,score\n1,2\n", &options).unwrap();
        let error = parse_csv(b"2,3\nseven,4\n", &schema, &options).unwrap_err();
        assert!(matches!(error, FrameError::MalformedRow { .. }), "{error}");
    }

    #[test]
    fn malformed_rows_are_skipped_and_counted_when_asked() {
        let options = CsvOptions {
            skip_malformed: true,
            ..CsvOptions::default()
        };
        let schema = infer_csv_schema(b"id,score\n1,2\n", &options).unwrap();
        let mut lines = String::new();
        for i in 0..100 {
            let score = if i % 30 == 7 {
                "x".to_string()
            } else {
                i.to_string()
            };
            lines.push_str(&format!("{i},{score}\n"));
        }
        let (frame, skipped) = parse_csv_skipping(lines.as_bytes(), &schema, &options).unwrap();
        assert_eq!((frame.height(), skipped), (96, 4));
        let (all_bad, skipped) = parse_csv_skipping(b"a,b\n", &schema, &options).unwrap();
        assert_eq!((all_bad.height(), skipped), (0, 1));
    }

    #[test]
    fn json_lines_read_with_their_inferred_schema() {
        let sample = b"{\"a\": 1, \"b\": \"x\"}\n{\"a\": 2, \"b\": null}\n";
        let schema = infer_json_schema(sample).unwrap();
        assert_eq!(schema.names(), ["a", "b"]);
        let frame = parse_json(b"{\"a\": 5, \"b\": \"z\"}\n", &schema).unwrap();
        assert_eq!(frame.height(), 1);
    }
}
