//! Functions that move records between partitions: the `*_by_key` family, joins, `distinct`,
//! `repartition`, sorting. Each is a shuffle (a stage boundary), except when the input is
//! already partitioned the way the operation needs: then it runs within each partition, as
//! Spark does, and nothing crosses the network.

use crate::data::Data;
use crate::encoding::encode_params;
use crate::error::Error;
use crate::ops::{
    ByCustom, ByHash, ByRange, CombineLocally, CombineWriter, FoldValues, GroupValues, MapCombine,
    MergeCombiners, PairWriter, ReduceValues, RoundRobinWriter, SampleKeys, SortByKey,
    WriterParams,
};
use crate::partitioner::CustomPartitioner;
use crate::rdd::{Rdd, transform_operator};
use crate::side::Side;
use std::hash::Hash;
use tessera_plan::Partitioner;
use tessera_plan::range_bounds::range_bounds;

/// Keys of pair RDDs that are shuffled: equal keys must hash alike in every process.
pub trait Key: Data + Hash + Eq {}
impl<K: Data + Hash + Eq> Key for K {}

/// Keys sampled per partition to choose `sort_by_key`'s range bounds (Spark samples about 20
/// per output partition; the bounds only balance the work, they never change the result).
const SAMPLES_PER_PARTITION: u64 = 60;

/// Shuffles place keys by hash unless they are the typed `partition_by_custom`: the code of a
/// custom partitioner is only known where its type is.
fn must_hash(partitioner: &Partitioner, operation: &str) {
    if !matches!(partitioner, Partitioner::Hash { .. }) {
        Error::NotHashPartitioned {
            operation: operation.to_string(),
            partitioner: format!("{partitioner:?}"),
        }
        .raise()
    }
}

/// The output partitioner of a cogroup (and so of the joins): the inputs' own when they share
/// it, else one input's hash partitioner (as Spark's `defaultPartitioner`), else a new hash
/// partitioner. A custom partitioner is kept only when both inputs already have it, since
/// reshuffling the other input by it would need its type.
fn cogroup_partitioner(
    left: Option<Partitioner>,
    right: Option<Partitioner>,
    partitions: u32,
) -> Partitioner {
    match (left, right) {
        (Some(l), Some(r)) if l == r && l.places_keys() => l,
        (Some(p @ Partitioner::Hash { .. }), _) | (_, Some(p @ Partitioner::Hash { .. })) => p,
        _ => Partitioner::hash(partitions),
    }
}

/// Every pairing of a value of `vs` with one of `ws`, in order. Each value is cloned for all
/// its pairings but the last, which takes it: a key with one value on each side (PageRank's
/// links and rank) clones nothing.
fn cross<V: Clone, W: Clone>(mut vs: Vec<V>, ws: Vec<W>) -> Vec<(V, W)> {
    let mut pairs = Vec::with_capacity(vs.len() * ws.len());
    let Some(last_v) = vs.pop() else {
        return pairs;
    };
    for v in &vs {
        pairs.extend(ws.iter().map(|w| (v.clone(), w.clone())));
    }
    let mut ws = ws.into_iter();
    let last_w = ws.next_back();
    pairs.extend(ws.map(|w| (last_v.clone(), w)));
    pairs.extend(last_w.map(|w| (last_v, w)));
    pairs
}

/// The values of one side of an outer join: each as `Some`, or a single `None` if there are
/// none.
fn or_none<V>(values: Vec<V>) -> Vec<Option<V>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.into_iter().map(Some).collect()
    }
}

impl<T: Data> Rdd<T> {
    /// The distinct records, in `num_partitions()` partitions.
    pub fn distinct(&self) -> Rdd<T>
    where
        T: Hash + Eq,
    {
        self.map(|t: T| (t, ()))
            .reduce_by_key(|a: (), _: ()| a)
            .keys()
    }

    /// The records dealt round-robin into `partitions` partitions (always a shuffle).
    pub fn repartition(&self, partitions: u32) -> Rdd<T> {
        self.shuffle::<RoundRobinWriter<T>, T, T>(
            Partitioner::RoundRobin {
                partitions: partitions.max(1),
            },
            &(),
            Vec::new(),
            None,
            "repartition",
        )
    }

    /// The writer `repartition(partitions)` shuffles with: records dealt round-robin.
    pub(crate) fn round_robin_writer(
        &self,
        partitions: u32,
    ) -> Result<tessera_plan::Operator<tessera_plan::LocalCodeRef>, Error> {
        let params = encode_params(&WriterParams {
            partitioner: Partitioner::RoundRobin { partitions },
            zero: Vec::new(),
        });
        crate::rdd::action_operator::<RoundRobinWriter<T>>(&(), params)
    }

    /// The records sorted by the key `f` computes, ascending or not, range-partitioned so that
    /// partition order is key order.
    pub fn sort_by<K, F>(&self, f: F, ascending: bool) -> Rdd<T>
    where
        K: Data + Ord,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        self.key_by(f).sort_by_key(ascending).values()
    }
}

impl<K: Key, V: Data> Rdd<(K, V)> {
    /// Spark's default: keep this RDD's partitioner if it places keys, else hash into as many
    /// partitions as this RDD has.
    fn default_partitioner(&self) -> Partitioner {
        match self.partitioner() {
            Some(p) if p.places_keys() => p,
            _ => Partitioner::hash(self.num_partitions()),
        }
    }

    /// Combines the values of each key with `M`: in each partition when this RDD is already
    /// partitioned by `partitioner`, else on the map side, then across map outputs with `merge`.
    fn combine_values<M, F>(
        &self,
        partitioner: Partitioner,
        func: &M::Func,
        zero: Vec<u8>,
        merge: &F,
        name: &str,
    ) -> Rdd<(K, M::C)>
    where
        M: MapCombine<V>,
        F: Fn(M::C, M::C) -> M::C + Send + Sync + 'static,
    {
        if self.partitioner().as_ref() == Some(&partitioner) {
            let params = encode_params(&WriterParams { partitioner, zero });
            return self.narrow_keeping::<CombineLocally<K, V, M>>(func, params, true, name);
        }
        must_hash(&partitioner, name);
        let merge = transform_operator::<MergeCombiners<K, M::C, F>>(merge, Vec::new())
            .unwrap_or_else(|e| e.raise());
        self.shuffle::<CombineWriter<K, V, M, ByHash>, (K, M::C), (K, M::C)>(
            partitioner,
            func,
            zero,
            Some(merge),
            name,
        )
    }

    /// Merges the values of each key with `f` (associative and commutative), combining on the
    /// map side first.
    pub fn reduce_by_key<F>(&self, f: F) -> Rdd<(K, V)>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
    {
        self.reduce_by_key_with(self.default_partitioner(), f)
    }

    /// `reduce_by_key` into the partitions of `partitioner`.
    pub fn reduce_by_key_with<F>(&self, partitioner: Partitioner, f: F) -> Rdd<(K, V)>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
    {
        self.combine_values::<ReduceValues<V, F>, F>(
            partitioner,
            &f,
            Vec::new(),
            &f,
            "reduce_by_key",
        )
    }

    /// Folds the values of each key into `zero` with `f` (`zero` is used once per key and
    /// partition, so it must be neutral for `f`).
    pub fn fold_by_key<F>(&self, zero: V, f: F) -> Rdd<(K, V)>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
    {
        self.combine_values::<FoldValues<V, V, F>, F>(
            self.default_partitioner(),
            &f,
            encode_params(&zero),
            &f,
            "fold_by_key",
        )
    }

    /// Folds the values of each key into a `U`: within a partition with `seq` from `zero`, then
    /// across partitions with `comb`.
    pub fn aggregate_by_key<U, S, C>(&self, zero: U, seq: S, comb: C) -> Rdd<(K, U)>
    where
        U: Data,
        S: Fn(U, V) -> U + Send + Sync + 'static,
        C: Fn(U, U) -> U + Send + Sync + 'static,
    {
        self.combine_values::<FoldValues<V, U, S>, C>(
            self.default_partitioner(),
            &seq,
            encode_params(&zero),
            &comb,
            "aggregate_by_key",
        )
    }

    /// Turns each value into a combiner with `create`, and merges the combiners of a key with
    /// `merge` (map side first). Spark's third function, `mergeValue(c, v)`, must equal
    /// `merge(c, create(v))`, so it is not asked for.
    pub fn combine_by_key<C, Create, Merge>(&self, create: Create, merge: Merge) -> Rdd<(K, C)>
    where
        C: Data,
        Create: Fn(V) -> C + Send + Sync + 'static,
        Merge: Fn(C, C) -> C + Send + Sync + 'static,
    {
        self.map_values(create).reduce_by_key(merge)
    }

    /// Every value of each key, in one vector (no map-side combining: it would save nothing).
    pub fn group_by_key(&self) -> Rdd<(K, Vec<V>)> {
        self.group_by_key_with(self.default_partitioner())
    }

    /// `group_by_key` into the partitions of `partitioner`.
    pub fn group_by_key_with(&self, partitioner: Partitioner) -> Rdd<(K, Vec<V>)> {
        if self.partitioner().as_ref() == Some(&partitioner) {
            return self.narrow_keeping::<GroupValues<K, V>>(&(), Vec::new(), true, "group_by_key");
        }
        must_hash(&partitioner, "group_by_key");
        let merge =
            transform_operator::<GroupValues<K, V>>(&(), Vec::new()).unwrap_or_else(|e| e.raise());
        self.shuffle::<PairWriter<K, V, ByHash>, (K, V), (K, Vec<V>)>(
            partitioner,
            &(),
            Vec::new(),
            Some(merge),
            "group_by_key",
        )
    }

    /// The same pairs, placed by `partitioner`; nothing moves if they already are.
    pub fn partition_by(&self, partitioner: Partitioner) -> Rdd<(K, V)> {
        if self.partitioner().as_ref() == Some(&partitioner) {
            return *self;
        }
        must_hash(&partitioner, "partition_by");
        self.shuffle::<PairWriter<K, V, ByHash>, (K, V), (K, V)>(
            partitioner,
            &(),
            Vec::new(),
            None,
            "partition_by",
        )
    }

    /// The same pairs, placed by a partitioner of the user's own (see [`CustomPartitioner`]);
    /// nothing moves if they already are. The result keeps that partitioner, so `*_by_key`
    /// operations and joins with RDDs placed by an equal value of it run without a shuffle.
    pub fn partition_by_custom<P: CustomPartitioner<K>>(&self, partitioner: &P) -> Rdd<(K, V)> {
        let described = crate::partitioner::describe(partitioner);
        if self.partitioner().as_ref() == Some(&described) {
            return *self;
        }
        self.shuffle::<PairWriter<K, V, ByCustom<P>>, (K, V), (K, V)>(
            described,
            &(),
            Vec::new(),
            None,
            "partition_by_custom",
        )
    }

    /// The pairs of both RDDs grouped by key: for each key, its values in this RDD and in
    /// `other`. Co-partitioned inputs are not shuffled again when they already share the
    /// output's partitioner.
    pub fn cogroup<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (Vec<V>, Vec<W>))> {
        let partitioner = cogroup_partitioner(
            self.partitioner(),
            other.partitioner(),
            self.num_partitions().max(other.num_partitions()),
        );
        let left = self.map_values(|v: V| Side::<V, W>::Left(v));
        let right = other.map_values(|w: W| Side::<V, W>::Right(w));
        left.union(&right)
            .group_by_key_with(partitioner)
            .map_values(|sides: Vec<Side<V, W>>| {
                let (mut vs, mut ws) = (Vec::new(), Vec::new());
                for side in sides {
                    match side {
                        Side::Left(v) => vs.push(v),
                        Side::Right(w) => ws.push(w),
                    }
                }
                (vs, ws)
            })
    }

    /// Pairs of values of each key found in both RDDs.
    pub fn join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, W))> {
        self.cogroup(other)
            .flat_map_values(|(vs, ws): (Vec<V>, Vec<W>)| cross(vs, ws))
    }

    /// Every pair of this RDD, with each value of its key in `other` (or `None`).
    pub fn left_outer_join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, Option<W>))> {
        self.cogroup(other)
            .flat_map_values(|(vs, ws): (Vec<V>, Vec<W>)| cross(vs, or_none(ws)))
    }

    /// Every pair of `other`, with each value of its key in this RDD (or `None`).
    pub fn right_outer_join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (Option<V>, W))> {
        self.cogroup(other)
            .flat_map_values(|(vs, ws): (Vec<V>, Vec<W>)| cross(or_none(vs), ws))
    }

    /// Every key of either RDD, with each pairing of its values (`None` for a missing side).
    pub fn full_outer_join<W: Data>(
        &self,
        other: &Rdd<(K, W)>,
    ) -> Rdd<(K, (Option<V>, Option<W>))> {
        self.cogroup(other)
            .flat_map_values(|(vs, ws): (Vec<V>, Vec<W>)| cross(or_none(vs), or_none(ws)))
    }

    /// The pairs whose key `other` does not have.
    pub fn subtract_by_key<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, V)> {
        self.cogroup(other).flat_map_values(
            |(vs, ws): (Vec<V>, Vec<W>)| if ws.is_empty() { vs } else { Vec::new() },
        )
    }
}

impl<K: Data + Ord, V: Data> Rdd<(K, V)> {
    /// The pairs sorted by key, range-partitioned (bounds from a sample of the keys, one job)
    /// so that partition order is key order: `collect()` returns them sorted.
    pub fn sort_by_key(&self, ascending: bool) -> Rdd<(K, V)> {
        let partitions = self.num_partitions();
        let samples: Vec<(u64, Vec<K>)> = self.run_action::<SampleKeys<K, V>, (u64, Vec<K>)>(
            "sort_by_key (sampling)",
            &(),
            encode_params(&SAMPLES_PER_PARTITION),
            None,
        );
        let bounds = range_bounds(samples, partitions);
        let merge = transform_operator::<SortByKey<K, V>>(&(), encode_params(&ascending))
            .unwrap_or_else(|e| e.raise());
        self.shuffle::<PairWriter<K, V, ByRange<K>>, (K, V), (K, V)>(
            Partitioner::Range {
                partitions: bounds.len() as u32 + 1,
                bounds: encode_params(&bounds),
                ascending,
            },
            &(),
            Vec::new(),
            Some(merge),
            "sort_by_key",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{cross, or_none};

    #[test]
    fn cross_pairs_every_value_of_one_side_with_every_value_of_the_other_in_order() {
        let pairs = cross(vec!["a", "b"], vec![1, 2, 3]);
        assert_eq!(
            pairs,
            [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 3)]
        );
        assert!(cross(Vec::<u8>::new(), vec![1]).is_empty());
        assert!(cross(vec![1], Vec::<u8>::new()).is_empty());
        assert_eq!(cross(or_none(Vec::<u8>::new()), vec![7]), [(None, 7)]);
    }
}
