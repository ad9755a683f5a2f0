//! The operators of a shuffle. Map side: writers, actions that split a partition into one
//! bucket per output partition (combining values of a key first where the operation allows).
//! Reduce side: mergers, transformations that combine, group or sort what the buckets hold.
//! When the input is already partitioned as wanted, a merger (or [`CombineLocally`]) runs as a
//! narrow transformation instead, and nothing is shuffled.

use super::{Action, Transform, decode_params, encode};
use crate::Data;
use crate::batch::{BatchOut, Stop};
use crate::hash::{KeyMap, hash_partition};
use crate::partitioner::CustomPartitioner;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::hash::Hash;
use std::marker::PhantomData;
use tessera_plan::Partitioner;

/// What every writer is opened with.
#[derive(Serialize, Deserialize)]
pub(crate) struct WriterParams {
    pub partitioner: Partitioner,
    /// The zero value of `fold_by_key` or `aggregate_by_key` (bincode), if any.
    pub zero: Vec<u8>,
}

/// Picks the output partition of a key.
pub(crate) trait Placement<K>: Sized + Send + 'static {
    fn new(partitioner: &Partitioner) -> Result<Self, String>;
    fn partitions(&self) -> usize;
    fn place(&self, key: &K) -> usize;
}

/// The hash partitioner.
pub(crate) struct ByHash(u32);
impl<K: Hash> Placement<K> for ByHash {
    fn new(partitioner: &Partitioner) -> Result<Self, String> {
        match partitioner {
            Partitioner::Hash { partitions } => Ok(ByHash(*partitions)),
            other => Err(format!("a hash writer cannot place keys by {other:?}")),
        }
    }
    fn partitions(&self) -> usize {
        self.0 as usize
    }
    fn place(&self, key: &K) -> usize {
        hash_partition(key, self.0) as usize
    }
}

/// A user-defined partitioner, rebuilt from its value in the plan.
pub(crate) struct ByCustom<P>(P, u32);
impl<K, P: CustomPartitioner<K>> Placement<K> for ByCustom<P> {
    fn new(partitioner: &Partitioner) -> Result<Self, String> {
        match partitioner {
            Partitioner::Custom {
                partitions, state, ..
            } => Ok(ByCustom(decode_params(state)?, *partitions)),
            other => Err(format!("a custom writer cannot place keys by {other:?}")),
        }
    }
    fn partitions(&self) -> usize {
        self.1 as usize
    }
    fn place(&self, key: &K) -> usize {
        let partition = self.0.partition(key);
        if partition >= self.1 {
            // Caught at the ABI boundary: the task fails with this message.
            panic!(
                "the custom partitioner {} placed a key in partition {partition}, but it has \
                 {} partitions; `partition` must return a value below `num_partitions()`",
                std::any::type_name::<P>(),
                self.1
            );
        }
        partition as usize
    }
}

/// The range partitioner: partition `i` holds the keys up to `bounds[i]` (reversed when
/// descending), the last one the rest.
pub(crate) struct ByRange<K> {
    bounds: Vec<K>,
    ascending: bool,
}
impl<K: Ord + DeserializeOwned + Send + 'static> Placement<K> for ByRange<K> {
    fn new(partitioner: &Partitioner) -> Result<Self, String> {
        match partitioner {
            Partitioner::Range {
                bounds, ascending, ..
            } => Ok(ByRange {
                bounds: decode_params(bounds)?,
                ascending: *ascending,
            }),
            other => Err(format!("a range writer cannot place keys by {other:?}")),
        }
    }
    fn partitions(&self) -> usize {
        self.bounds.len() + 1
    }
    fn place(&self, key: &K) -> usize {
        let below = self.bounds.partition_point(|bound| bound < key);
        if self.ascending {
            below
        } else {
            self.bounds.len() - below
        }
    }
}

/// Encodes every bucket as a `Vec` of its records, framed as the one map output the executor
/// keeps.
fn encode_buckets<R: Serialize>(buckets: &[Vec<R>]) -> Result<Vec<u8>, Stop> {
    let encoded = buckets
        .iter()
        .map(|bucket| {
            if bucket.is_empty() {
                Ok(Vec::new())
            } else {
                encode("a shuffle bucket", bucket)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tessera_plan::map_output::frame(&encoded))
}

/// Map side without combining: each pair goes to its key's bucket as it is (`group_by_key`,
/// `partition_by`, `sort_by_key`, `cogroup`).
pub(crate) struct PairWriter<K, V, P> {
    placement: P,
    buckets: Vec<Vec<(K, V)>>,
}
impl<K: Data, V: Data, P: Placement<K>> Action for PairWriter<K, V, P> {
    type In = (K, V);
    type Func = ();
    fn open(_: (), params: &[u8], _: u32) -> Result<Self, String> {
        let params: WriterParams = decode_params(params)?;
        let placement = P::new(&params.partitioner)?;
        let buckets = (0..placement.partitions()).map(|_| Vec::new()).collect();
        Ok(PairWriter { placement, buckets })
    }
    fn push(&mut self, batch: Vec<(K, V)>) -> Result<(), Stop> {
        for (k, v) in batch {
            let bucket = self.placement.place(&k);
            self.buckets[bucket].push((k, v));
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode_buckets(&self.buckets)
    }
}

/// Map side of `repartition`: records dealt round-robin, from a starting bucket that depends on
/// the partition, so that small partitions do not all fill bucket 0.
pub(crate) struct RoundRobinWriter<T> {
    next: usize,
    buckets: Vec<Vec<T>>,
}
impl<T: Data> Action for RoundRobinWriter<T> {
    type In = T;
    type Func = ();
    fn open(_: (), params: &[u8], partition: u32) -> Result<Self, String> {
        let params: WriterParams = decode_params(params)?;
        let partitions = params.partitioner.partitions().max(1) as usize;
        Ok(RoundRobinWriter {
            next: hash_partition(&partition, partitions as u32) as usize,
            buckets: (0..partitions).map(|_| Vec::new()).collect(),
        })
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        for record in batch {
            self.buckets[self.next].push(record);
            self.next = (self.next + 1) % self.buckets.len();
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode_buckets(&self.buckets)
    }
}

/// How the values of one key become its combiner on the map side: Spark's `createCombiner`
/// and `mergeValue`.
pub(crate) trait MapCombine<V>: Sized + Send + 'static {
    type C: Data;
    type Func: Send + Sync + 'static;
    fn open(func: Self::Func, zero: &[u8]) -> Result<Self, String>;
    fn create(&self, value: V) -> Self::C;
    fn merge_value(&self, combiner: Self::C, value: V) -> Self::C;
}

/// `reduce_by_key`: the first value is the combiner; later ones are merged into it by `f`.
pub(crate) struct ReduceValues<V, F>(F, PhantomData<fn(V)>);
impl<V: Data, F: Fn(V, V) -> V + Send + Sync + 'static> MapCombine<V> for ReduceValues<V, F> {
    type C = V;
    type Func = F;
    fn open(f: F, _: &[u8]) -> Result<Self, String> {
        Ok(ReduceValues(f, PhantomData))
    }
    fn create(&self, value: V) -> V {
        value
    }
    fn merge_value(&self, combiner: V, value: V) -> V {
        (self.0)(combiner, value)
    }
}

/// `fold_by_key` and `aggregate_by_key`: values are folded into a copy of `zero` by `f`.
pub(crate) struct FoldValues<V, U, F> {
    f: F,
    zero: U,
    _values: PhantomData<fn(V)>,
}
impl<V: Data, U: Data, F: Fn(U, V) -> U + Send + Sync + 'static> MapCombine<V>
    for FoldValues<V, U, F>
{
    type C = U;
    type Func = F;
    fn open(f: F, zero: &[u8]) -> Result<Self, String> {
        Ok(FoldValues {
            f,
            zero: decode_params(zero)?,
            _values: PhantomData,
        })
    }
    fn create(&self, value: V) -> U {
        (self.f)(self.zero.clone(), value)
    }
    fn merge_value(&self, combiner: U, value: V) -> U {
        (self.f)(combiner, value)
    }
}

/// Combiners by key. A slot is `None` only while its combiner is being replaced.
struct Combiners<K, C>(KeyMap<K, Option<C>>);

impl<K: Hash + Eq, C> Combiners<K, C> {
    fn new() -> Self {
        Combiners(KeyMap::default())
    }

    fn add<V>(&mut self, key: K, value: V, combine: &impl MapCombine<V, C = C>) {
        let slot = self.0.entry(key).or_insert(None);
        *slot = Some(match slot.take() {
            Some(combiner) => combine.merge_value(combiner, value),
            None => combine.create(value),
        });
    }

    fn merge(&mut self, key: K, combiner: C, merge: impl Fn(C, C) -> C) {
        let slot = self.0.entry(key).or_insert(None);
        *slot = Some(match slot.take() {
            Some(existing) => merge(existing, combiner),
            None => combiner,
        });
    }

    fn drain(&mut self) -> impl Iterator<Item = (K, C)> + '_ {
        self.0.drain().filter_map(|(k, c)| c.map(|c| (k, c)))
    }
}

/// Map side with combining: one combiner per key crosses the network (`reduce_by_key`,
/// `fold_by_key`, `aggregate_by_key`, `combine_by_key`, `distinct`). Keys are combined in one
/// map for the whole partition and placed in buckets only at the end, once per distinct key
/// rather than once per record.
pub(crate) struct CombineWriter<K, V, M: MapCombine<V>, P> {
    combine: M,
    placement: P,
    combiners: Combiners<K, M::C>,
}
impl<K, V, M, P> Action for CombineWriter<K, V, M, P>
where
    K: Data + Hash + Eq,
    V: Data,
    M: MapCombine<V>,
    P: Placement<K>,
{
    type In = (K, V);
    type Func = M::Func;
    fn open(func: M::Func, params: &[u8], _: u32) -> Result<Self, String> {
        let params: WriterParams = decode_params(params)?;
        Ok(CombineWriter {
            combine: M::open(func, &params.zero)?,
            placement: P::new(&params.partitioner)?,
            combiners: Combiners::new(),
        })
    }
    fn push(&mut self, batch: Vec<(K, V)>) -> Result<(), Stop> {
        for (k, v) in batch {
            self.combiners.add(k, v, &self.combine);
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        let mut buckets: Vec<Vec<(K, M::C)>> = (0..self.placement.partitions())
            .map(|_| Vec::new())
            .collect();
        for (k, c) in self.combiners.drain() {
            buckets[self.placement.place(&k)].push((k, c));
        }
        encode_buckets(&buckets)
    }
}

/// Combines the values of each key within one partition, whose keys no other partition holds:
/// the whole of a `*_by_key` on an RDD already partitioned as asked.
pub(crate) struct CombineLocally<K, V, M: MapCombine<V>> {
    combine: M,
    combiners: Combiners<K, M::C>,
}
impl<K, V, M> Transform for CombineLocally<K, V, M>
where
    K: Data + Hash + Eq,
    V: Data,
    M: MapCombine<V>,
{
    type In = (K, V);
    type Out = (K, M::C);
    type Func = M::Func;
    fn open(func: M::Func, params: &[u8], _: u32) -> Result<Self, String> {
        let params: WriterParams = decode_params(params)?;
        Ok(CombineLocally {
            combine: M::open(func, &params.zero)?,
            combiners: Combiners::new(),
        })
    }
    fn push(&mut self, batch: Vec<(K, V)>, _: &mut BatchOut<(K, M::C)>) -> Result<(), Stop> {
        for (k, v) in batch {
            self.combiners.add(k, v, &self.combine);
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, M::C)>) -> Result<(), Stop> {
        for pair in self.combiners.drain() {
            out.push(pair)?;
        }
        Ok(())
    }
}

/// Reduce side of a combining shuffle: merges the combiners of a key from every map output
/// with `f` (Spark's `mergeCombiners`).
pub(crate) struct MergeCombiners<K, C, F> {
    f: F,
    combiners: Combiners<K, C>,
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
    fn open(f: F, _: &[u8], _: u32) -> Result<Self, String> {
        Ok(MergeCombiners {
            f,
            combiners: Combiners::new(),
        })
    }
    fn push(&mut self, batch: Vec<(K, C)>, _: &mut BatchOut<(K, C)>) -> Result<(), Stop> {
        for (k, c) in batch {
            self.combiners.merge(k, c, &self.f);
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, C)>) -> Result<(), Stop> {
        for pair in self.combiners.drain() {
            out.push(pair)?;
        }
        Ok(())
    }
}

/// `group_by_key`: every value of a key, in one vector.
pub(crate) struct GroupValues<K, V>(KeyMap<K, Vec<V>>);
impl<K: Data + Hash + Eq, V: Data> Transform for GroupValues<K, V> {
    type In = (K, V);
    type Out = (K, Vec<V>);
    type Func = ();
    fn open(_: (), _: &[u8], _: u32) -> Result<Self, String> {
        Ok(GroupValues(KeyMap::default()))
    }
    fn push(&mut self, batch: Vec<(K, V)>, _: &mut BatchOut<(K, Vec<V>)>) -> Result<(), Stop> {
        for (k, v) in batch {
            self.0.entry(k).or_default().push(v);
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, Vec<V>)>) -> Result<(), Stop> {
        for pair in self.0.drain() {
            out.push(pair)?;
        }
        Ok(())
    }
}

/// Reduce side of `sort_by_key`: the partition's pairs sorted by key (stably).
pub(crate) struct SortByKey<K, V> {
    ascending: bool,
    pairs: Vec<(K, V)>,
}
impl<K: Data + Ord, V: Data> Transform for SortByKey<K, V> {
    type In = (K, V);
    type Out = (K, V);
    type Func = ();
    fn open(_: (), params: &[u8], _: u32) -> Result<Self, String> {
        Ok(SortByKey {
            ascending: decode_params(params)?,
            pairs: Vec::new(),
        })
    }
    fn push(&mut self, mut batch: Vec<(K, V)>, _: &mut BatchOut<(K, V)>) -> Result<(), Stop> {
        self.pairs.append(&mut batch);
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, V)>) -> Result<(), Stop> {
        let mut pairs = std::mem::take(&mut self.pairs);
        if self.ascending {
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
        } else {
            pairs.sort_by(|a, b| b.0.cmp(&a.0));
        }
        out.push_batch(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_placement_puts_each_key_at_or_below_its_bound() {
        let bounds = bincode::serialize(&vec![10u32, 20]).unwrap();
        let partitioner = |ascending| Partitioner::Range {
            partitions: 3,
            bounds: bounds.clone(),
            ascending,
        };
        let up = <ByRange<u32> as Placement<u32>>::new(&partitioner(true)).unwrap();
        let placed: Vec<usize> = [0, 10, 11, 20, 21, 99]
            .iter()
            .map(|k| up.place(k))
            .collect();
        assert_eq!(placed, vec![0, 0, 1, 1, 2, 2]);
        let down = <ByRange<u32> as Placement<u32>>::new(&partitioner(false)).unwrap();
        let placed: Vec<usize> = [0, 10, 11, 20, 21, 99]
            .iter()
            .map(|k| down.place(k))
            .collect();
        assert_eq!(placed, vec![2, 2, 1, 1, 0, 0]);
    }
}
