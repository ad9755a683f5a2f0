//! DataFrames from and to files other than line by line: Parquet files split by row groups,
//! and each partition written as one CSV or Parquet file (`write_csv`, `write_parquet`, one
//! file per partition, as Spark writes).

use crate::convert::schema_from_polars;
use crate::error::{FrameError, guard};
use polars_core::prelude::{DataFrame, SchemaExt};
use polars_io::prelude::{
    CsvWriter, ParquetCompression, ParquetReader, ParquetWriter, SerReader, SerWriter,
};
use std::fs::File;
use std::path::Path;
use tessera_plan::builtin::ParquetPiece;
use tessera_plan::frame::{Schema, WriteFormat};

/// A Parquet file's schema and its row groups: (rows, uncompressed bytes) of each.
pub fn parquet_layout(path: &Path) -> Result<(Schema, Vec<(u64, u64)>), FrameError> {
    let what = format!("reading the Parquet footer of {}", path.display());
    let file = File::open(path).map_err(|e| FrameError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    guard(&what, || {
        let mut reader = ParquetReader::new(file);
        let schema = reader.schema().map_err(FrameError::polars(&what))?;
        let metadata = reader.get_metadata().map_err(FrameError::polars(&what))?;
        let groups = metadata
            .row_groups
            .iter()
            .map(|g| (g.num_rows() as u64, g.total_byte_size() as u64))
            .collect();
        let schema = polars_core::prelude::Schema::from_arrow_schema(&schema);
        Ok((schema_from_polars(&schema), groups))
    })
}

/// The rows of a Parquet file that `piece` names.
pub fn read_parquet_piece(piece: &ParquetPiece) -> Result<DataFrame, FrameError> {
    let what = format!("reading rows of {}", piece.path);
    let file = File::open(&piece.path).map_err(|e| FrameError::File {
        path: piece.path.clone(),
        reason: e.to_string(),
    })?;
    guard(&what, || {
        ParquetReader::new(file)
            .with_slice(Some((piece.first_row as usize, piece.rows as usize)))
            .finish()
            .map_err(FrameError::polars(&what))
    })
}

/// Writes `frame` to `dir/part-NNNNN.EXT` (NNNNN is `partition`) in `format`; the rows
/// written.
pub fn write_partition(
    frame: &mut DataFrame,
    dir: &Path,
    partition: u32,
    format: WriteFormat,
) -> Result<u64, FrameError> {
    let path = dir.join(format!("part-{partition:05}.{}", format.extension()));
    let file_error = |e: std::io::Error| FrameError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(file_error)?;
    let file = File::create(&path).map_err(file_error)?;
    let what = format!("writing {}", path.display());
    guard(&what, || {
        match format {
            WriteFormat::Csv => CsvWriter::new(file)
                .include_header(true)
                .finish(frame)
                .map_err(FrameError::polars(&what))?,
            // zstd, polars' own default: smaller files than Spark's snappy, as fast to read.
            WriteFormat::Parquet => {
                ParquetWriter::new(file)
                    .with_compression(ParquetCompression::Zstd(None))
                    .finish(frame)
                    .map_err(FrameError::polars(&what))?;
            }
        }
        Ok(frame.height() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_core::df;

    #[test]
    fn a_written_parquet_file_reads_back_by_row_ranges() {
        let dir = std::env::temp_dir().join(format!("tessera-frame-files-{}", std::process::id()));
        let mut frame = df!("a" => (0..1000i64).collect::<Vec<_>>()).unwrap();
        assert_eq!(
            write_partition(&mut frame, &dir, 3, WriteFormat::Parquet).unwrap(),
            1000
        );
        let path = dir.join("part-00003.parquet");
        let (schema, groups) = parquet_layout(&path).unwrap();
        assert_eq!(schema.names(), ["a"]);
        assert_eq!(groups.iter().map(|g| g.0).sum::<u64>(), 1000);
        let piece = ParquetPiece {
            path: path.display().to_string(),
            first_row: 10,
            rows: 5,
            bytes: 0,
        };
        let rows = read_parquet_piece(&piece).unwrap();
        assert!(rows.equals(&df!("a" => [10i64, 11, 12, 13, 14]).unwrap()));
        let missing = parquet_layout(&dir.join("none.parquet")).unwrap_err();
        assert!(missing.to_string().contains("none.parquet"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
