//! Range partitioning for a sort, as Spark's `RangePartitioner` does it: a sample of each
//! partition's sort keys, from which the driver draws the bounds of the ranges, and the map
//! side of the shuffle that sends each row to the partition of the range its keys fall in. Each
//! partition, sorted on its own, then holds its rows in the sort's order, and the partitions in
//! their order hold every row in it: no partition needs every row, as a sort gathered into one
//! did.
//!
//! Keys are compared as polars' row encoding of them, whose bytes order as polars' sort orders
//! the rows (nulls first, NaN above every number, `-0.0` as `0.0`, descending columns
//! inverted), so the bounds are plain bytes the driver can choose among without polars.

use crate::error::FrameError;
use crate::shuffle;
use polars_arrow::array::BinaryArray;
use polars_core::chunked_array::ops::row_encode::_get_rows_encoded_arr;
use polars_core::prelude::{Column, DataFrame};
use tessera_plan::builtin::{KeySample, RangeShuffleParams, SampleParams, SortKeys};

/// Each row's sort keys of `frame`, encoded so that bytes compare as `keys` sorts the rows.
fn encoded_keys(frame: &DataFrame, keys: &SortKeys) -> Result<BinaryArray<i64>, FrameError> {
    let columns: Vec<Column> = keys
        .by
        .iter()
        .map(|name| frame.column(name).cloned())
        .collect::<Result<_, _>>()
        .map_err(FrameError::polars("finding a sort's key columns"))?;
    // polars' sort puts nulls first unless told otherwise, and Tessera's sort does not tell it.
    let nulls_last = vec![false; columns.len()];
    _get_rows_encoded_arr(&columns, &keys.descending, &nulls_last, false)
        .map_err(FrameError::polars("encoding a sort's keys"))
}

/// At most `params.rows` rows' keys of `frame` (none for an empty partition), and its row
/// count: a row at random from each of as many equal stretches of it, so that the sample spans
/// the partition and no period in the data lines up with it. The draws are seeded by the
/// partition's index and rows, as Spark seeds its sample by the partition, so that sampling the
/// same partition again draws the same ranges.
pub fn sample(
    frame: Option<&DataFrame>,
    params: &SampleParams,
    partition: u32,
) -> Result<KeySample, FrameError> {
    let Some(frame) = frame.filter(|f| f.height() > 0) else {
        return Ok(KeySample::default());
    };
    let height = frame.height() as u64;
    let taken = params.rows.clamp(1, height);
    let encoded = encoded_keys(frame, &params.keys)?;
    let mut random = SplitMix64(u64::from(partition) << 32 ^ height);
    let keys = (0..taken)
        .map(|i| {
            let (start, end) = (i * height / taken, (i + 1) * height / taken);
            let row = start + random.next() % (end - start);
            encoded.value(row as usize).to_vec()
        })
        .collect();
    Ok(KeySample { rows: height, keys })
}

/// A small, seeded generator of pseudo-random numbers (Steele, Lea and Flood's SplitMix64):
/// good enough to pick sample rows, the same on every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Rows of each input partition sampled to draw a sort's ranges over `partitions` partitions
/// from, as Spark's `RangePartitioner` samples: 20 keys per output partition (at most a
/// million in all), over-sampled three times, split evenly among the `input_partitions`.
pub fn sample_rows(partitions: u32, input_partitions: u32) -> u64 {
    let sample = (20 * u64::from(partitions)).min(1_000_000);
    (3 * sample).div_ceil(u64::from(input_partitions.max(1)))
}

/// The bucket of a row whose encoded keys are `key`, among the ranges `bounds` end.
pub fn bucket_of(key: &[u8], bounds: &[Vec<u8>]) -> u32 {
    bounds.partition_point(|bound| bound.as_slice() < key) as u32
}

/// `frame` (none for an empty partition) split into `params.partitions` buckets by the ranges
/// of its sort keys, as one map output.
pub fn map_output(
    frame: Option<DataFrame>,
    params: &RangeShuffleParams,
) -> Result<Vec<u8>, FrameError> {
    let bounds = params
        .bounds
        .as_deref()
        .ok_or(FrameError::RangesNotSampled)?;
    let Some(frame) = frame else {
        return Ok(shuffle::empty_map_output(params.partitions));
    };
    let placed: Vec<u32> = encoded_keys(&frame, &params.keys)?
        .values_iter()
        .map(|key| bucket_of(key, bounds).min(params.partitions.saturating_sub(1)))
        .collect();
    shuffle::split_into_buckets(&frame, &placed, params.partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc;
    use polars_core::df;
    use polars_core::prelude::{PlSmallStr, SortMultipleOptions};
    use polars_lazy::prelude::IntoLazy;
    use tessera_plan::map_output::{MapOutput, split_frame};
    use tessera_plan::range_bounds::range_bounds;

    fn keys(by: &[&str], descending: &[bool]) -> SortKeys {
        SortKeys {
            by: by.iter().map(|s| s.to_string()).collect(),
            descending: descending.to_vec(),
        }
    }

    fn frame() -> DataFrame {
        df!(
            "x" => [Some(2.0), None, Some(f64::NAN), Some(-0.0), Some(0.0), Some(-3.5), Some(2.0), None],
            "s" => [Some("b"), Some("a"), None, Some("ab"), Some("a"), Some(""), Some("a"), Some("c")],
            "i" => [0i64, 1, 2, 3, 4, 5, 6, 7],
        )
        .unwrap()
    }

    /// The rows' order by their encoded keys (ties by position) is polars' stable sort's.
    fn assert_encoding_sorts_as_polars(frame: &DataFrame, keys: &SortKeys) {
        let encoded = encoded_keys(frame, keys).unwrap();
        let mut by_bytes: Vec<usize> = (0..frame.height()).collect();
        by_bytes.sort_by(|a, b| encoded.value(*a).cmp(encoded.value(*b)));
        let sorted = frame
            .clone()
            .lazy()
            .sort(
                keys.by
                    .iter()
                    .map(|s| PlSmallStr::from_str(s))
                    .collect::<Vec<_>>(),
                SortMultipleOptions::default()
                    .with_order_descending_multi(keys.descending.clone())
                    .with_maintain_order(true),
            )
            .collect()
            .unwrap();
        let polars_order: Vec<i64> = sorted
            .column("i")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let bytes_order: Vec<i64> = by_bytes.iter().map(|r| *r as i64).collect();
        assert_eq!(bytes_order, polars_order, "{keys:?}");
    }

    #[test]
    fn encoded_keys_order_rows_as_polars_sorts_them_with_nulls_nan_and_either_direction() {
        let frame = frame();
        for (by, descending) in [
            (&["x"][..], &[false][..]),
            (&["x"], &[true]),
            (&["s"], &[false]),
            (&["s"], &[true]),
            (&["x", "s"], &[false, true]),
            (&["s", "x"], &[true, false]),
        ] {
            assert_encoding_sorts_as_polars(&frame, &keys(by, descending));
        }
    }

    #[test]
    fn a_sample_takes_a_row_of_each_stretch_and_draws_the_same_rows_again() {
        let frame = df!("i" => (0i64..100).collect::<Vec<_>>()).unwrap();
        let params = SampleParams {
            keys: keys(&["i"], &[false]),
            rows: 4,
        };
        let first = sample(Some(&frame), &params, 3).unwrap();
        assert_eq!(first.rows, 100);
        let all = encoded_keys(&frame, &params.keys).unwrap();
        let row_of = |key: &Vec<u8>| (0..100).find(|r| all.value(*r) == key.as_slice()).unwrap();
        let rows: Vec<usize> = first.keys.iter().map(row_of).collect();
        for (stretch, row) in rows.iter().enumerate() {
            assert!((stretch * 25..(stretch + 1) * 25).contains(row), "{rows:?}");
        }
        assert_eq!(sample(Some(&frame), &params, 3).unwrap(), first);
        // Another partition of the same rows draws other rows.
        assert_ne!(sample(Some(&frame), &params, 4).unwrap(), first);
        // Fewer rows than asked for: all of them.
        let few = df!("i" => [5i64, 3]).unwrap();
        assert_eq!(sample(Some(&few), &params, 0).unwrap().keys.len(), 2);
        assert_eq!(sample(None, &params, 0).unwrap(), KeySample::default());
    }

    /// Evenly spaced rows of data whose keys repeat with a period that lines up with them see
    /// a few keys only (here six of a thousand), and drew a few ranges, one of them empty.
    #[test]
    fn a_sample_of_periodic_data_draws_even_ranges() {
        let partitions = 8u32;
        let frames: Vec<DataFrame> = (0..partitions)
            .map(|p| {
                let rows = (i64::from(p) * 50_000..i64::from(p + 1) * 50_000)
                    .map(|i| i % 1000)
                    .collect::<Vec<_>>();
                df!("k" => rows).unwrap()
            })
            .collect();
        let params = SampleParams {
            keys: keys(&["k"], &[false]),
            rows: 60,
        };
        let samples: Vec<KeySample> = frames
            .iter()
            .enumerate()
            .map(|(p, f)| sample(Some(f), &params, p as u32).unwrap())
            .collect();
        let mut all: Vec<Vec<u8>> = Vec::new();
        for frame in &frames {
            let encoded = encoded_keys(frame, &params.keys).unwrap();
            all.extend(encoded.values_iter().map(<[u8]>::to_vec));
        }
        let samples = samples.into_iter().map(|s| (s.rows, s.keys)).collect();
        let bounds = range_bounds(samples, partitions);
        let mut sizes = vec![0usize; partitions as usize];
        for key in &all {
            sizes[bucket_of(key, &bounds) as usize] += 1;
        }
        let even = all.len() / partitions as usize;
        assert!(
            sizes.iter().all(|s| *s > even / 2 && *s < even * 2),
            "{sizes:?}"
        );
    }

    #[test]
    fn rows_go_to_the_range_their_keys_fall_in_and_equal_keys_together() {
        let frame = df!(
            "k" => [5i64, 1, 9, 5, 3, 7, 5, 2],
            "v" => [0i64, 1, 2, 3, 4, 5, 6, 7],
        )
        .unwrap();
        let sort = keys(&["k"], &[true]);
        let bound = |k: i64| {
            encoded_keys(&df!("k" => [k]).unwrap(), &sort)
                .unwrap()
                .value(0)
                .to_vec()
        };
        // Descending: 9, 7 up to the first bound (7), 5s and 3 up to the second (3), then the rest.
        let params = RangeShuffleParams {
            keys: sort.clone(),
            partitions: 3,
            bounds: Some(vec![bound(7), bound(3)]),
        };
        let output = MapOutput::parse(map_output(Some(frame), &params).unwrap()).unwrap();
        let mut buckets = Vec::new();
        for b in 0..3 {
            let mut rest = &output.bytes()[output.range(b).unwrap()];
            let mut values = Vec::new();
            while let Some((contents, after)) = split_frame(rest).unwrap() {
                let part = ipc::decode(contents, "a bucket").unwrap();
                values.extend(part.column("v").unwrap().i64().unwrap().into_no_null_iter());
                rest = after;
            }
            buckets.push(values);
        }
        // Each bucket keeps the partition's order.
        assert_eq!(buckets, vec![vec![2, 5], vec![0, 3, 4, 6], vec![1, 7]]);
    }

    #[test]
    fn a_shuffle_whose_bounds_were_not_sampled_says_so() {
        let params = RangeShuffleParams {
            keys: keys(&["k"], &[false]),
            partitions: 2,
            bounds: None,
        };
        let error = map_output(None, &params).unwrap_err().to_string();
        assert!(
            error.contains("before the driver sampled its ranges"),
            "{error}"
        );
    }

    #[test]
    fn a_sort_samples_as_spark_does_three_times_twenty_keys_a_range() {
        assert_eq!(sample_rows(6, 6), 60);
        assert_eq!(sample_rows(4, 8), 30);
        assert_eq!(sample_rows(200_000, 10), 300_000);
        assert_eq!(sample_rows(3, 0), 180);
    }
}
