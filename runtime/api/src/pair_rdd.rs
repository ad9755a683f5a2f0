//! Functions of RDDs of key-value pairs that need no shuffle (Spark's `PairRDDFunctions`, the
//! narrow part).

use crate::data::Data;
use crate::ops::{FlatMapValues, MapValues};
use crate::rdd::Rdd;
use std::collections::HashMap;
use std::hash::Hash;

impl<K: Data, V: Data> Rdd<(K, V)> {
    /// Maps each value, keeping its key (and so the partitioner, if any).
    pub fn map_values<W: Data, F: Fn(V) -> W + Send + Sync + 'static>(&self, f: F) -> Rdd<(K, W)> {
        self.narrow_keeping::<MapValues<K, V, W, F>>(&f, Vec::new(), true, "map_values")
    }

    /// One pair per value `f` returns, each with the original key.
    pub fn flat_map_values<W, I, F>(&self, f: F) -> Rdd<(K, W)>
    where
        W: Data,
        I: IntoIterator<Item = W> + 'static,
        F: Fn(V) -> I + Send + Sync + 'static,
    {
        self.narrow_keeping::<FlatMapValues<K, V, W, I, F>>(&f, Vec::new(), true, "flat_map_values")
    }

    /// The keys.
    pub fn keys(&self) -> Rdd<K> {
        self.map(|(k, _)| k)
    }

    /// The values.
    pub fn values(&self) -> Rdd<V> {
        self.map(|(_, v)| v)
    }

    /// How many pairs each key has.
    pub fn count_by_key(&self) -> HashMap<K, u64>
    where
        K: Hash + Eq,
    {
        self.keys().count_by_value()
    }

    /// Every value of `key`.
    pub fn lookup(&self, key: K) -> Vec<V>
    where
        K: PartialEq,
    {
        self.filter(crate::capture!([key] |pair: &(K, V)| pair.0 == *key))
            .values()
            .collect()
    }
}
