//! Combiners by key: how the values of a key become one combiner (Spark's `createCombiner`
//! and `mergeValue`), the map that keeps them and what it is estimated to hold; and the
//! combining of a partition whose keys no other partition holds, which needs no shuffle.

use super::placement::WriterParams;
use crate::batch::{BatchOut, Stop};
use crate::combine_table::{CombineTable, Found};
use crate::data::Data;
use crate::op_error::OpError;
use crate::ops::{Transform, decode_params};
use crate::spill::SizeEstimate;
use serde::Serialize;
use std::hash::Hash;
use std::marker::PhantomData;

/// How the values of one key become its combiner on the map side: Spark's `createCombiner`
/// and `mergeValue`.
pub(crate) trait MapCombine<V>: Sized + Send + 'static {
    type C: Data;
    type Func: Send + Sync + 'static;
    fn open(func: Self::Func, zero: &[u8]) -> Result<Self, OpError>;
    fn create(&self, value: V) -> Self::C;
    fn merge_value(&self, combiner: Self::C, value: V) -> Self::C;
}

/// `reduce_by_key`: the first value is the combiner; later ones are merged into it by `f`.
pub(crate) struct ReduceValues<V, F>(F, PhantomData<fn(V)>);
impl<V: Data, F: Fn(V, V) -> V + Send + Sync + 'static> MapCombine<V> for ReduceValues<V, F> {
    type C = V;
    type Func = F;
    fn open(f: F, _: &[u8]) -> Result<Self, OpError> {
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
    fn open(f: F, zero: &[u8]) -> Result<Self, OpError> {
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

/// Combiners by key.
pub(super) struct Combiners<K, C>(CombineTable<K, C>);

impl<K: Hash + Eq + 'static, C> Combiners<K, C> {
    pub(super) fn new() -> Self {
        Combiners(CombineTable::new())
    }

    /// Combines each record's value into its key's combiner, first telling `noted` the value
    /// and, if the key is new to the map, the key.
    pub(super) fn add_all<V>(
        &mut self,
        records: Vec<(K, V)>,
        combine: &impl MapCombine<V, C = C>,
        mut noted: impl FnMut(Option<&K>, &V),
    ) {
        self.0.upsert_all(records, |found, value| match found {
            Found::New(key) => {
                noted(Some(key), &value);
                combine.create(value)
            }
            Found::Held(combiner) => {
                noted(None, &value);
                combine.merge_value(combiner, value)
            }
        });
    }

    /// Merges `combiner` into `key`'s with `merge`, first telling `noted` the combiner and, if
    /// the key is new to the map, the key.
    pub(super) fn merge(
        &mut self,
        key: K,
        combiner: C,
        merge: impl Fn(C, C) -> C,
        noted: impl FnOnce(Option<&K>, &C),
    ) {
        self.0.upsert(key, |found| match found {
            Found::New(key) => {
                noted(Some(key), &combiner);
                combiner
            }
            Found::Held(existing) => {
                noted(None, &combiner);
                merge(existing, combiner)
            }
        });
    }

    pub(super) fn drain(&mut self) -> impl Iterator<Item = (K, C)> + '_ {
        self.0.drain()
    }
}

/// What a map of combiners holds, estimated from what was added to it: a new key adds itself
/// and a combiner made of its value; a value merged into a key's combiner adds itself if the
/// combiner can grow, that is if it owns memory elsewhere (a list keeps its values). One that
/// owns none (a sum, a count, a tuple or array of numbers) keeps its size however much is
/// merged into it, and merging adds nothing.
///
/// Counting every record as a new key overstated word count's map about sevenfold, and drained
/// it, with its hundred thousand keys, in the middle of every task; counting every merged value
/// still made a map of a few thousand counts look as large as its input.
pub(super) struct HeldCombiners<K, C> {
    keys: SizeEstimate,
    merged: SizeEstimate,
    _types: PhantomData<fn() -> (K, C)>,
}

impl<K: Serialize, C> HeldCombiners<K, C> {
    /// Whether merging into a combiner can make it hold more: a type without drop glue owns
    /// no memory beyond its own bytes.
    const MERGES_GROW: bool = std::mem::needs_drop::<C>();

    /// An empty map's.
    pub(super) fn new() -> Self {
        HeldCombiners {
            keys: SizeEstimate::default(),
            merged: SizeEstimate::default(),
            _types: PhantomData,
        }
    }

    /// Notes `value` added to the map, and `new_key` if its key was new to it.
    pub(super) fn note<V: Serialize>(&mut self, new_key: Option<&K>, value: &V) {
        match new_key {
            Some(key) => self.keys.add(&(key, value)),
            None if Self::MERGES_GROW => self.merged.add(value),
            None => {}
        }
    }

    /// Notes a record that is kept whole, as a key of its own would be.
    pub(super) fn note_kept<T: Serialize>(&mut self, record: &T) {
        self.keys.add(record);
    }

    pub(super) fn bytes(&self) -> u64 {
        self.keys.bytes::<(K, C)>() + self.merged.bytes::<()>()
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
    fn open(func: M::Func, params: &[u8], _: u32) -> Result<Self, OpError> {
        let params: WriterParams = decode_params(params)?;
        Ok(CombineLocally {
            combine: M::open(func, &params.zero)?,
            combiners: Combiners::new(),
        })
    }
    fn push(&mut self, batch: Vec<(K, V)>, _: &mut BatchOut<(K, M::C)>) -> Result<(), Stop> {
        self.combiners.add_all(batch, &self.combine, |_, _| {});
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, M::C)>) -> Result<(), Stop> {
        for pair in self.combiners.drain() {
            out.push(pair)?;
        }
        Ok(())
    }
}

/// `b`'s values after `a`'s.
pub(super) fn append_lists<V>(mut a: Vec<V>, mut b: Vec<V>) -> Vec<V> {
    a.append(&mut b);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a map of combiners is estimated to hold once `records` are combined into it.
    fn held_after<V: Data, C: Data>(
        records: Vec<(String, V)>,
        combine: &impl MapCombine<V, C = C>,
    ) -> u64 {
        let mut combiners = Combiners::new();
        let mut held = HeldCombiners::<String, C>::new();
        combiners.add_all(records, combine, |key, value| held.note(key, value));
        held.bytes()
    }

    #[test]
    fn a_map_of_counts_holds_its_keys_and_a_map_of_lists_its_values_too() {
        // Word count's shape: 10,000 records of 100 words.
        let word = |i: u64| format!("word {}", i % 100);
        let counts: Vec<(String, u64)> = (0..10_000).map(|i| (word(i), 1)).collect();
        let lists: Vec<(String, Vec<u64>)> = (0..10_000).map(|i| (word(i), vec![i])).collect();
        let sum: fn(u64, u64) -> u64 = |a, b| a + b;
        let append: fn(Vec<u64>, Vec<u64>) -> Vec<u64> = append_lists;
        let counted = held_after(counts.clone(), &ReduceValues(sum, PhantomData));
        let listed = held_after(lists, &ReduceValues(append, PhantomData));
        // The counts: 100 keys, each a word and a number (under 80 bytes with its entry); the
        // 9,900 counts merged into them take no room.
        assert!(counted <= 100 * 80, "{counted} bytes held for 100 counts");
        // The lists hold every value (16 bytes encoded each).
        let values = 10_000 * 16;
        assert!(
            listed >= values,
            "{listed} bytes held for {values} bytes of values"
        );
        // Each record as a key of its own: what the writer counted at first.
        let mut per_record = SizeEstimate::default();
        for record in &counts {
            per_record.add(record);
        }
        assert!(per_record.bytes::<(String, u64)>() > 50 * counted);
    }
}
