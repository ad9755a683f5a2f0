//! DataFrames on the wire and on disk: Arrow IPC streams, as the design says (shuffle buckets,
//! serialized cached partitions, results brought back to a cell that asked for a polars
//! DataFrame).

use crate::convert::schema_to_polars;
use crate::error::{FrameError, guard};
use polars_core::prelude::{CompatLevel, DataFrame};
use polars_core::utils::accumulate_dataframes_vertical;
use polars_io::prelude::{IpcStreamReader, IpcStreamWriter, SerReader, SerWriter};
use std::io::Cursor;
use tessera_plan::frame::{DataType, Schema};

/// `frame` as an Arrow IPC stream.
pub fn encode(frame: &DataFrame) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_into(frame, &mut out)?;
    Ok(out)
}

/// Appends `frame` as an Arrow IPC stream to `out`, which is first made room for: grown as the
/// stream is written, a buffer of megabytes is moved to new memory at each doubling. Encoding
/// a 25,000-row side of 5.6 MB (four string columns) took 2.4-2.6 ms so against 2.8-4.0 ms.
pub fn encode_into(frame: &DataFrame, out: &mut Vec<u8>) -> Result<(), FrameError> {
    // The columns' buffers, which the stream holds once each (views into a larger buffer are
    // counted whole: room never used is never touched), and its messages' headers.
    out.reserve(frame.estimated_size() + 4096);
    append(frame, out)
}

/// Appends `frame` as an Arrow IPC stream to `out`, as much room as `out` has: for a writer
/// that made room for several frames at once.
pub(crate) fn append(frame: &DataFrame, out: &mut Vec<u8>) -> Result<(), FrameError> {
    guard("writing a DataFrame as Arrow IPC", || {
        let mut frame = frame.clone();
        // The newest level writes strings as Arrow's views, as polars holds them: the oldest
        // (polars' default, for other readers) copies them into offsets and values, and every
        // reader copies them back (a fifth of TPC-H Q10's driver time). Every reader of these
        // streams is polars of the same version.
        IpcStreamWriter::new(out)
            .with_compat_level(CompatLevel::newest())
            .finish(&mut frame)
            .map_err(FrameError::polars("writing a DataFrame as Arrow IPC"))
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
    let parts: Vec<&[u8]> = parts
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return empty(schema);
    }
    if let Some(whole) = spliceable(schema).then(|| spliced(&parts)).flatten() {
        return Ok(whole);
    }
    let frames = parts
        .into_iter()
        .map(|p| decode(p, "a collected partition"))
        .collect::<Result<Vec<_>, _>>()?;
    let whole = accumulate_dataframes_vertical(frames)
        .map_err(FrameError::polars("putting collected partitions together"))?;
    encode(&whole)
}

/// An Arrow IPC stream's end: a continuation marker and a message length of zero.
const END_OF_STREAM: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// Whether streams of `schema` may be [`spliced`]: none of its types is one polars writes with
/// dictionary batches (which each stream numbers from the start), as a type Tessera does not
/// name may be.
fn spliceable(schema: &Schema) -> bool {
    !schema
        .fields
        .iter()
        .any(|f| matches!(f.dtype, DataType::Other(_)))
}

/// `parts`, streams [`encode`] wrote of one schema, as one stream of all their record batches,
/// without decoding them: the first part's schema message, every part's batches in order, one
/// end of stream. Decoding, putting together and encoding again cost the driver 25 to 80 ms on
/// the 12 MB side of TPC-H Q10's join; this copies it. `None` where a part is not laid out so
/// (no end of stream, a schema message that differs), for [`concat`] to decode instead.
fn spliced(parts: &[&[u8]]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    let mut schema: Option<&[u8]> = None;
    for part in parts {
        let messages = part.strip_suffix(&END_OF_STREAM)?;
        let (first, batches) = split_first_message(messages)?;
        match schema {
            None => {
                schema = Some(first);
                out.extend_from_slice(first);
            }
            Some(schema) if schema == first => {}
            Some(_) => return None,
        }
        out.extend_from_slice(batches);
    }
    out.extend_from_slice(&END_OF_STREAM);
    Some(out)
}

/// A stream's first message (its schema, which has no body: only the continuation marker, the
/// metadata's length and the metadata, padded) and the messages after it.
fn split_first_message(messages: &[u8]) -> Option<(&[u8], &[u8])> {
    let (marker, rest) = messages.split_first_chunk::<4>()?;
    if *marker != END_OF_STREAM[..4] {
        return None;
    }
    let (length, _) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(i32::from_le_bytes(*length)).ok()?;
    let end = length.checked_add(8)?;
    (end <= messages.len()).then(|| messages.split_at(end))
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

    #[test]
    fn streams_put_together_read_as_their_frames_one_after_another() {
        let first = df!("a" => [Some(1i64), None], "b" => ["a long string past twelve bytes", "x"])
            .unwrap();
        let second = df!("a" => [Some(3i64)], "b" => [None::<&str>]).unwrap();
        let schema = crate::convert::schema_from_polars(first.schema());
        let parts = [
            encode(&first).unwrap(),
            Vec::new(),
            encode(&second).unwrap(),
        ];
        let borrowed: Vec<&[u8]> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| &p[..])
            .collect();
        assert!(spliced(&borrowed).is_some(), "streams of one schema splice");
        let whole = decode(&concat(&parts, &schema).unwrap(), "a test").unwrap();
        let mut expected = first.clone();
        expected.vstack_mut(&second).unwrap();
        assert!(whole.equals_missing(&expected), "{whole}\n{expected}");
        // Another schema's stream is not spliced; nor bytes that are no stream.
        let other = encode(&df!("c" => [1.5f64]).unwrap()).unwrap();
        assert!(spliced(&[&parts[0], &other]).is_none());
        assert!(spliced(&[&parts[0], b"not a stream"]).is_none());
        assert_eq!(
            decode(&concat(&[Vec::<u8>::new()], &schema).unwrap(), "a test")
                .unwrap()
                .height(),
            0
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
