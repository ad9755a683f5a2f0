//! The reduce side of a shuffle: mergers, transformations that combine, group or sort what
//! the fetched buckets hold, spilling sorted runs past their budget and merging them.

use super::combiners::{Combiners, HeldCombiners, append_lists};
use crate::batch::{BatchOut, Stop};
use crate::data::Data;
use crate::hash::key_hash;
use crate::op_error::OpError;
use crate::ops::{Transform, decode_params};
use crate::spill::{MERGED_BATCH_BYTES, SizeEstimate, SpillConfig, SpilledRuns, merge_runs};
use serde::Serialize;
use std::hash::Hash;

/// The error of a merge of `runs` spilled runs (and what was in memory) that stopped at a
/// run's error, `source`.
fn merge_failed(runs: usize, source: OpError) -> OpError {
    OpError::MergeFailed {
        runs,
        source: Box::new(source),
    }
}

/// Hands on `record`, a merged one, flushing the batch once the records handed on since the
/// last flush take about [`MERGED_BATCH_BYTES`] (`emitted` estimates them).
fn push_bounded<R: Serialize>(
    out: &mut BatchOut<R>,
    emitted: &mut SizeEstimate,
    record: R,
) -> Result<(), Stop> {
    emitted.add(&record);
    out.push(record)?;
    if emitted.bytes::<R>() >= MERGED_BATCH_BYTES {
        emitted.clear();
        out.flush()?;
    }
    Ok(())
}

/// A map from keys to combiners that spills past its budget (Spark's
/// `ExternalAppendOnlyMap`): each spill is the map's pairs ordered by their key's hash, and
/// the end merges the runs by hash, combining the pairs of equal keys (a hash shared by
/// different keys only makes a short list to search).
struct ExternalCombiners<K, C> {
    combiners: Combiners<K, C>,
    held: HeldCombiners<K, C>,
    runs: SpilledRuns,
}

impl<K: Data + Hash + Eq, C: Data> ExternalCombiners<K, C> {
    fn new() -> Self {
        ExternalCombiners {
            combiners: Combiners::new(),
            held: HeldCombiners::new(),
            runs: SpilledRuns::new(SpillConfig::from_opening_host()),
        }
    }

    /// Merges `combiner` into `key`'s with `merge`; spills if the map then holds too much.
    fn merge(&mut self, key: K, combiner: C, merge: impl Fn(C, C) -> C) -> Result<(), Stop> {
        let held = &mut self.held;
        self.combiners.merge(key, combiner, merge, |key, combiner| {
            held.note(key, combiner)
        });
        self.spill_if_over()
    }

    /// Notes a record of `T` kept whole in the map (a value appended to its key's list);
    /// spills if the map holds too much.
    fn kept<T: Serialize>(&mut self, record: &T) -> Result<(), Stop> {
        self.held.note_kept(record);
        self.spill_if_over()
    }

    fn spill_if_over(&mut self) -> Result<(), Stop> {
        if self.runs.spill.over(self.held.bytes()) {
            let pairs = self.sorted_by_hash();
            self.runs.write(pairs)?;
            self.held = HeldCombiners::new();
        }
        Ok(())
    }

    /// Empties the map into a run ordered by hash.
    fn sorted_by_hash(&mut self) -> Vec<(K, C)> {
        let mut pairs: Vec<(u64, (K, C))> = self
            .combiners
            .drain()
            .map(|pair| (key_hash(&pair.0), pair))
            .collect();
        self.combiners = Combiners::new();
        pairs.sort_by_key(|(hash, _)| *hash);
        pairs.into_iter().map(|(_, pair)| pair).collect()
    }

    /// Hands every key with its combiner (merged by `merge` across spills) to `out`.
    fn finish(
        &mut self,
        merge: impl Fn(C, C) -> C,
        out: &mut BatchOut<(K, C)>,
    ) -> Result<(), Stop> {
        if self.runs.len() == 0 {
            for pair in self.combiners.drain() {
                out.push(pair)?;
            }
            return Ok(());
        }
        // Merged pairs go on in batches of bounded size.
        let mut emitted = SizeEstimate::default();
        let mut out = |pair: (K, C)| push_bounded(out, &mut emitted, pair);
        let mut runs = self.runs.readers::<(K, C)>()?;
        let spilled = runs.len();
        // What is still in memory is the last run: equal keys keep the order they came in.
        let in_memory = self.sorted_by_hash();
        runs.push(Box::new(in_memory.into_iter().map(Ok)));
        let mut same_hash: Vec<(K, C)> = Vec::new();
        let mut current = 0u64;
        for pair in merge_runs(runs, |a: &(K, C), b: &(K, C)| {
            key_hash(&a.0).cmp(&key_hash(&b.0))
        }) {
            let (key, combiner) = pair.map_err(|e| merge_failed(spilled, e))?;
            let hash = key_hash(&key);
            if hash != current {
                for pair in same_hash.drain(..) {
                    out(pair)?;
                }
                current = hash;
            }
            match same_hash.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    let (key, existing) = same_hash.swap_remove(i);
                    same_hash.push((key, merge(existing, combiner)));
                }
                None => same_hash.push((key, combiner)),
            }
        }
        for pair in same_hash.drain(..) {
            out(pair)?;
        }
        Ok(())
    }
}

/// Reduce side of a combining shuffle: merges the combiners of a key from every map output
/// with `f` (Spark's `mergeCombiners`), spilling past its budget.
pub(crate) struct MergeCombiners<K, C, F> {
    f: F,
    combiners: ExternalCombiners<K, C>,
}
impl<K, C, F> Transform for MergeCombiners<K, C, F>
where
    K: Data + Hash + Eq,
    C: Data,
    F: Fn(C, C) -> C + Send + Sync + 'static,
{
    type In = (K, C);
    type Out = (K, C);
    type Func = F;
    fn open(f: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(MergeCombiners {
            f,
            combiners: ExternalCombiners::new(),
        })
    }
    fn push(&mut self, batch: Vec<(K, C)>, _: &mut BatchOut<(K, C)>) -> Result<(), Stop> {
        for (key, combiner) in batch {
            self.combiners.merge(key, combiner, &self.f)?;
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, C)>) -> Result<(), Stop> {
        let f = &self.f;
        self.combiners.finish(f, out)
    }
}

/// `group_by_key`: every value of a key, in one vector (in the order they came), spilling past
/// its budget.
pub(crate) struct GroupValues<K, V>(ExternalCombiners<K, Vec<V>>);
impl<K: Data + Hash + Eq, V: Data> Transform for GroupValues<K, V> {
    type In = (K, V);
    type Out = (K, Vec<V>);
    type Func = ();
    fn open(_: (), _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(GroupValues(ExternalCombiners::new()))
    }
    fn push(&mut self, batch: Vec<(K, V)>, _: &mut BatchOut<(K, Vec<V>)>) -> Result<(), Stop> {
        for (k, v) in batch {
            self.0.kept(&(&k, &v))?;
            self.0.combiners.merge(k, vec![v], append_lists, |_, _| {});
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, Vec<V>)>) -> Result<(), Stop> {
        self.0.finish(append_lists, out)
    }
}

/// Reduce side of `sort_by_key`: the partition's pairs sorted by key (stably). Past its budget
/// it sorts what it holds into a run on disk; the end merges the runs (Spark's
/// `ExternalSorter`).
pub(crate) struct SortByKey<K, V> {
    ascending: bool,
    pairs: Vec<(K, V)>,
    held: SizeEstimate,
    runs: SpilledRuns,
}
impl<K: Data + Ord, V: Data> SortByKey<K, V> {
    fn order(ascending: bool) -> impl Fn(&(K, V), &(K, V)) -> std::cmp::Ordering + Copy {
        move |a: &(K, V), b: &(K, V)| {
            if ascending {
                a.0.cmp(&b.0)
            } else {
                b.0.cmp(&a.0)
            }
        }
    }

    fn sorted(&mut self) -> Vec<(K, V)> {
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.sort_by(Self::order(self.ascending));
        self.held.clear();
        pairs
    }
}
impl<K: Data + Ord, V: Data> Transform for SortByKey<K, V> {
    type In = (K, V);
    type Out = (K, V);
    type Func = ();
    fn open(_: (), params: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(SortByKey {
            ascending: decode_params(params)?,
            pairs: Vec::new(),
            held: SizeEstimate::default(),
            runs: SpilledRuns::new(SpillConfig::from_opening_host()),
        })
    }
    fn push(&mut self, mut batch: Vec<(K, V)>, _: &mut BatchOut<(K, V)>) -> Result<(), Stop> {
        for pair in &batch {
            self.held.add(pair);
        }
        self.pairs.append(&mut batch);
        if self.runs.spill.over(self.held.bytes::<(K, V)>()) {
            let run = self.sorted();
            self.runs.write(run)?;
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, V)>) -> Result<(), Stop> {
        let last = self.sorted();
        if self.runs.len() == 0 {
            return out.push_batch(last);
        }
        let mut runs = self.runs.readers::<(K, V)>()?;
        let spilled = runs.len();
        runs.push(Box::new(last.into_iter().map(Ok)));
        let mut emitted = SizeEstimate::default();
        for pair in merge_runs(runs, Self::order(self.ascending)) {
            let pair = pair.map_err(|e| merge_failed(spilled, e))?;
            push_bounded(out, &mut emitted, pair)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::output;
    use crate::spill::tests::TestDir;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    fn pairs(n: u64, keys: u64) -> Vec<(u64, u64)> {
        (0..n).map(|i| ((i * 7919) % keys, i)).collect()
    }

    #[test]
    fn a_sort_past_its_budget_merges_sorted_runs_stably() {
        let dir = TestDir::new("sort");
        let input = pairs(100_000, 1000);
        for ascending in [true, false] {
            let mut sort = SortByKey::<u64, u64> {
                ascending,
                pairs: Vec::new(),
                held: SizeEstimate::default(),
                runs: SpilledRuns::new(SpillConfig::in_dir(1, dir.0.clone())),
            };
            let sorted = output(|out| {
                for chunk in input.chunks(3000) {
                    sort.push(chunk.to_vec(), out)?;
                }
                assert!(sort.runs.len() >= 3, "{} runs", sort.runs.len());
                sort.finish(out)
            });
            let mut expected = input.clone();
            if ascending {
                expected.sort_by_key(|p| p.0);
            } else {
                expected.sort_by_key(|p| std::cmp::Reverse(p.0));
            }
            assert_eq!(sorted, expected, "ascending: {ascending}");
        }
    }

    #[test]
    fn a_group_past_its_budget_merges_runs_keeping_each_keys_values_in_order() {
        let dir = TestDir::new("group");
        let input = pairs(100_000, 5000);
        let mut group = GroupValues::<u64, u64>(ExternalCombiners::new());
        group.0.runs = SpilledRuns::new(SpillConfig::in_dir(1, dir.0.clone()));
        let grouped = output(|out| {
            for chunk in input.chunks(3000) {
                group.push(chunk.to_vec(), out)?;
            }
            assert!(group.0.runs.len() >= 3, "{} runs", group.0.runs.len());
            group.finish(out)
        });
        let mut expected: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (k, v) in &input {
            expected.entry(*k).or_default().push(*v);
        }
        assert_eq!(grouped.len(), expected.len(), "each key once");
        assert_eq!(grouped.into_iter().collect::<BTreeMap<_, _>>(), expected);
    }

    /// A key whose hash is the same for every value: every pair shares one hash.
    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    struct Colliding(u32);
    impl Hash for Colliding {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            state.write_u8(0);
        }
    }

    #[test]
    fn merging_spilled_combiners_tells_apart_keys_of_one_hash() {
        let dir = TestDir::new("collide");
        // Lists, which grow as they merge, so that the map spills.
        let mut merge = MergeCombiners::<Colliding, Vec<u64>, _> {
            f: append_lists::<u64>,
            combiners: ExternalCombiners::new(),
        };
        merge.combiners.runs = SpilledRuns::new(SpillConfig::in_dir(1, dir.0.clone()));
        let input: Vec<(Colliding, Vec<u64>)> = (0..40_000u64)
            .map(|i| (Colliding((i % 3) as u32), vec![i]))
            .collect();
        let merged = output(|out| {
            for chunk in input.chunks(1000) {
                merge.push(chunk.to_vec(), out)?;
            }
            assert!(merge.combiners.runs.len() > 0);
            merge.finish(out)
        });
        let mut expected: BTreeMap<Colliding, Vec<u64>> = BTreeMap::new();
        for (k, v) in input {
            expected.entry(k).or_default().extend(v);
        }
        assert_eq!(merged.len(), 3);
        let merged: BTreeMap<Colliding, Vec<u64>> = merged
            .into_iter()
            .map(|(k, mut values)| {
                values.sort_unstable();
                (k, values)
            })
            .collect();
        assert_eq!(merged, expected);
    }

    #[test]
    fn merging_counts_into_few_keys_holds_the_keys_only_and_does_not_spill() {
        let dir = TestDir::new("counts");
        let mut merge = MergeCombiners::<u64, u64, _> {
            f: |a: u64, b: u64| a + b,
            combiners: ExternalCombiners::new(),
        };
        merge.combiners.runs = SpilledRuns::new(SpillConfig::in_dir(1, dir.0.clone()));
        // 100 keys' counts from 400 map outputs: 40,000 pairs, 1.3 MB counted one by one, past
        // the least budget (256 KiB); the map holds 100 counts.
        let input = pairs(40_000, 100);
        let merged = output(|out| {
            for chunk in input.chunks(1000) {
                merge.push(chunk.to_vec(), out)?;
            }
            merge.finish(out)
        });
        assert_eq!(merge.combiners.runs.len(), 0, "nothing spilled");
        assert_eq!(dir.files(), 0);
        let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
        for (k, v) in input {
            *expected.entry(k).or_default() += v;
        }
        assert_eq!(merged.into_iter().collect::<BTreeMap<_, _>>(), expected);
    }
}
