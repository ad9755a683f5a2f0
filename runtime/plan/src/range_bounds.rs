//! The bounds of key ranges drawn from samples of the keys, as Spark's
//! `RangePartitioner.determineBounds` draws them: for `sort_by_key` on RDDs (typed keys) and
//! for a DataFrame sort (keys row-encoded as bytes).

/// The bounds of `partitions` ranges drawn from samples of each partition's keys, each a pair
/// of the partition's rows and the keys sampled from it: each sampled key stands for its
/// partition's rows over its sample's keys, and a bound closes a range each time the keys so
/// far stand for another `partitions`-th of every row. Ascending and distinct, at most
/// `partitions - 1`: fewer where the samples hold fewer distinct keys (rows of one key cannot
/// be split), none without keys.
pub fn range_bounds<K: Ord>(samples: Vec<(u64, Vec<K>)>, partitions: u32) -> Vec<K> {
    let mut weighted: Vec<(K, f64)> = samples
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .flat_map(|(rows, keys)| {
            let weight = rows as f64 / keys.len() as f64;
            keys.into_iter().map(move |k| (k, weight))
        })
        .collect();
    weighted.sort_by(|a, b| a.0.cmp(&b.0));
    let total: f64 = weighted.iter().map(|(_, w)| w).sum();
    let step = total / f64::from(partitions.max(1));
    let wanted = partitions.saturating_sub(1) as usize;
    let mut bounds: Vec<K> = Vec::with_capacity(wanted);
    let (mut so_far, mut target) = (0.0, step);
    for (key, weight) in weighted {
        if bounds.len() == wanted {
            break;
        }
        so_far += weight;
        if so_far >= target && bounds.last().is_none_or(|last| *last < key) {
            bounds.push(key);
            target += step;
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::range_bounds;

    #[test]
    fn ranges_split_the_rows_the_samples_stand_for_into_even_shares() {
        // Two partitions of 100 keys each, fully sampled: 0..100 and 100..200.
        let samples = vec![(100, (0..100).collect()), (100, (100..200).collect())];
        assert_eq!(range_bounds::<u32>(samples, 4), vec![49, 99, 149]);
        // Keys 0..12 sampled evenly from one partition: four ranges of three keys each.
        let even = vec![(1200, (0..12).collect())];
        assert_eq!(range_bounds::<u8>(even, 4), vec![2, 5, 8]);
        // A key sampled from a partition of few rows stands for fewer rows: the ten rows of
        // keys 1..=5 share the first range with keys 20 and 21, of the 1,000-row partition.
        let small_and_large = vec![(10, vec![1, 2, 3, 4, 5]), (1000, vec![20, 21, 22, 23, 24])];
        assert_eq!(range_bounds::<u8>(small_and_large, 4), vec![21, 22, 23]);
    }

    #[test]
    fn ranges_have_distinct_bounds_fewer_where_keys_repeat_and_none_without_rows() {
        // One key in most rows: rows of one key cannot be split, so it ends one range.
        let skewed = vec![(100, vec![1, 7, 7, 7, 7, 7, 7, 7, 7, 9])];
        assert_eq!(range_bounds::<u8>(skewed, 4), vec![7, 9]);
        assert_eq!(range_bounds::<u32>(vec![(10, vec![7; 10])], 4), vec![7]);
        assert!(range_bounds::<u32>(vec![(0, vec![]), (0, vec![])], 4).is_empty());
        assert!(range_bounds::<u8>(vec![(100, vec![1, 2, 3])], 1).is_empty());
    }
}
