//! DataFrames on the wire and on disk: Arrow IPC streams, as the design says (shuffle buckets,
//! serialized cached partitions, results brought back to a cell that asked for a polars
//! DataFrame).

use crate::convert::schema_to_polars;
use crate::error::{FrameError, guard};
use polars_core::prelude::DataFrame;
use polars_core::utils::accumulate_dataframes_vertical;
use polars_io::prelude::{IpcStreamReader, IpcStreamWriter, SerReader, SerWriter};
use std::io::Cursor;
use tessera_plan::frame::Schema;

/// `frame` as an Arrow IPC stream.
pub fn encode(frame: &DataFrame) -> Result<Vec<u8>, FrameError> {
    guard("writing a DataFrame as Arrow IPC", || {
        let mut out = Vec::new();
        let mut frame = frame.clone();
        IpcStreamWriter::new(&mut out)
            .finish(&mut frame)
            .map_err(FrameError::polars("writing a DataFrame as Arrow IPC"))?;
        Ok(out)
    })
}

/// The DataFrame in an Arrow IPC stream; `what` names whose bytes they are, for the error.
pub fn decode(bytes: &[u8], what: &'static str) -> Result<DataFrame, FrameError> {
    guard("reading Arrow IPC", || {
        IpcStreamReader::new(Cursor::new(bytes))
            .finish()
            .map_err(|e| FrameError::NotIpc {
                what,
                reason: e.to_string(),
            })
    })
}

/// An Arrow IPC stream of no rows, of `schema`.
pub fn empty(schema: &Schema) -> Result<Vec<u8>, FrameError> {
    encode(&DataFrame::empty_with_schema(&schema_to_polars(schema)?))
}

/// The DataFrames of `parts` (Arrow IPC streams; an empty one holds no rows) as one stream of
/// all their rows, of `schema` when there are none.
pub fn concat(parts: &[impl AsRef<[u8]>], schema: &Schema) -> Result<Vec<u8>, FrameError> {
    let frames = parts
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| !p.is_empty())
        .map(|p| decode(p, "a collected partition"))
        .collect::<Result<Vec<_>, _>>()?;
    if frames.is_empty() {
        return empty(schema);
    }
    let whole = accumulate_dataframes_vertical(frames)
        .map_err(FrameError::polars("putting collected partitions together"))?;
    encode(&whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_core::df;
    use proptest::prelude::*;

    #[test]
    fn a_frame_comes_back_as_it_went() {
        let frame = df!("a" => [Some(1i64), None, Some(3)], "b" => ["x", "y", "z"]).unwrap();
        assert!(
            decode(&encode(&frame).unwrap(), "a test frame")
                .unwrap()
                .equals_missing(&frame)
        );
    }

    proptest! {
        /// Hostile bytes (cut, damaged or random) are an error, never a panic.
        #[test]
        fn damaged_ipc_is_an_error_not_a_panic(cut in 0usize..400, flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..4), random in proptest::collection::vec(any::<u8>(), 0..64)) {
            let frame = df!("a" => [1i64, 2, 3], "b" => ["x", "y", "z"]).unwrap();
            let mut bytes = encode(&frame).unwrap();
            for (at, byte) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= byte;
                }
            }
            bytes.truncate(cut);
            let _ = decode(&bytes, "fuzzed bytes");
            let _ = decode(&random, "random bytes");
        }
    }
}
