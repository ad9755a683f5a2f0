//! The map side of a DataFrame shuffle: a partition's rows placed in buckets by a hash of their
//! key columns that every executor computes alike (a fixed seed), each bucket one Arrow IPC
//! record frame, laid out as the executor keeps map outputs ([`tessera_plan::map_output`]).

use crate::error::FrameError;
use crate::ipc;
use polars_core::prelude::*;
use polars_utils::aliases::{PlSeedableRandomStateQuality, SeedableFromU64SeedExt};
use tessera_plan::builtin::FrameShuffleParams;
use tessera_plan::map_output::{self, push_frame_with};

/// The seed of the row hash: the same in every process, so equal keys meet in one partition.
const SEED: u64 = 0x7e55_e7a0_f2a3_e5b1;

/// The bucket of each row of `frame` among `partitions`, by a hash of the `keys` columns (all
/// columns when `keys` is empty).
pub fn buckets_of_rows(
    frame: &DataFrame,
    keys: &[String],
    partitions: u32,
) -> Result<Vec<u32>, FrameError> {
    let columns = if keys.is_empty() {
        frame.columns().iter().collect::<Vec<_>>()
    } else {
        keys.iter()
            .map(|k| frame.column(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(FrameError::polars("finding a shuffle's key columns"))?
    };
    let hasher = PlSeedableRandomStateQuality::seed_from_u64(SEED);
    let mut hashes = Vec::with_capacity(frame.height());
    let hash = |e| FrameError::polars("hashing a shuffle's keys")(e);
    match columns.split_first() {
        None => hashes.resize(frame.height(), 0),
        Some((first, rest)) => {
            first.vec_hash(hasher.clone(), &mut hashes).map_err(hash)?;
            for column in rest {
                column
                    .vec_hash_combine(hasher.clone(), &mut hashes)
                    .map_err(hash)?;
            }
        }
    }
    let partitions = u64::from(partitions.max(1));
    Ok(hashes.iter().map(|h| (h % partitions) as u32).collect())
}

/// `frame` (none for an empty partition) split into `params.partitions` buckets, as one map
/// output.
pub fn map_output(
    frame: Option<DataFrame>,
    params: &FrameShuffleParams,
) -> Result<Vec<u8>, FrameError> {
    let Some(frame) = frame else {
        return Ok(empty_map_output(params.partitions));
    };
    let placed = buckets_of_rows(&frame, &params.keys, params.partitions)?;
    split_into_buckets(&frame, &placed, params.partitions)
}

/// The map output of a partition without rows, over `partitions` buckets.
pub(crate) fn empty_map_output(partitions: u32) -> Vec<u8> {
    map_output::frame(&vec![Vec::new(); partitions.max(1) as usize])
}

/// The rows of `frame` in the buckets `placed` gives each (one per row, below `partitions`),
/// each bucket's rows in the partition's order, as one map output.
pub(crate) fn split_into_buckets(
    frame: &DataFrame,
    placed: &[u32],
    partitions: u32,
) -> Result<Vec<u8>, FrameError> {
    let partitions = partitions.max(1) as usize;
    let mut rows: Vec<Vec<IdxSize>> = vec![Vec::new(); partitions];
    for (row, bucket) in placed.iter().enumerate() {
        rows[*bucket as usize].push(row as IdxSize);
    }
    // The buckets are encoded straight into the output, after room for its table, in memory
    // made once for all of them: encoded apart and then gathered, each was copied twice, into
    // buffers grown by doubling whose fresh pages the kernel zeroes (a fifth of TPC-H Q10's
    // executor time went to writing its 8 MiB shuffle of customers).
    let table = map_output::header_len(partitions as u64) as usize;
    let mut out = Vec::with_capacity(table + frame.estimated_size() + 4096 * partitions);
    out.resize(table, 0);
    let mut lens = Vec::with_capacity(partitions);
    for rows in rows {
        let start = out.len();
        if !rows.is_empty() {
            let part = frame
                .take(&IdxCa::from_vec(PlSmallStr::EMPTY, rows))
                .map_err(FrameError::polars("splitting a partition into buckets"))?;
            push_frame_with(&mut out, |out| ipc::append(&part, out))?;
        }
        lens.push((out.len() - start) as u64);
    }
    out[..table].copy_from_slice(&map_output::header(&lens));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_core::df;
    use tessera_plan::map_output::{MapOutput, split_frame};

    #[test]
    fn equal_keys_land_in_one_bucket_and_every_row_in_some_bucket() {
        let frame = df!(
            "k" => ["a", "b", "a", "c", "b", "a"],
            "v" => [1i64, 2, 3, 4, 5, 6],
        )
        .unwrap();
        let params = FrameShuffleParams {
            keys: vec!["k".into()],
            partitions: 3,
        };
        let output = MapOutput::parse(map_output(Some(frame.clone()), &params).unwrap()).unwrap();
        assert_eq!(output.buckets(), 3);
        let mut total = 0;
        let mut seen_in = std::collections::HashMap::new();
        for b in 0..3 {
            let bytes = &output.bytes()[output.range(b).unwrap()];
            let mut rest = bytes;
            while let Some((contents, after)) = split_frame(rest).unwrap() {
                let part = ipc::decode(contents, "a bucket").unwrap();
                total += part.height();
                let keys = part.column("k").unwrap();
                for i in 0..part.height() {
                    let key = keys.get(i).unwrap().to_string();
                    assert_eq!(*seen_in.entry(key.clone()).or_insert(b), b, "{key}");
                }
                rest = after;
            }
        }
        assert_eq!(total, frame.height());
        // The placement is a pure function of the keys: the same in every process.
        assert_eq!(
            buckets_of_rows(&frame, &params.keys, 3).unwrap(),
            buckets_of_rows(&frame, &params.keys, 3).unwrap()
        );
    }
}
