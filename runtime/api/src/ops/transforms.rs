//! Narrow transformations: one partition in, one partition out.

use super::{Transform, decode_params};
use crate::batch::{BatchOut, Stop};
use crate::data::Data;
use crate::op_error::OpError;
use std::marker::PhantomData;

pub(crate) struct Map<T, U, F>(F, PhantomData<fn(T) -> U>);
impl<T: Data, U: Data, F: Fn(T) -> U + Send + Sync + 'static> Transform for Map<T, U, F> {
    type In = T;
    type Out = U;
    type Func = F;
    const RECORDWISE: bool = true;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(Map(func, PhantomData))
    }
    fn push(&mut self, batch: Vec<T>, out: &mut BatchOut<U>) -> Result<(), Stop> {
        out.push_batch(batch.into_iter().map(&self.0).collect())
    }
    fn push_shared(&mut self, batch: &[T], out: &mut BatchOut<U>) -> Result<(), Stop> {
        out.push_batch(batch.iter().cloned().map(&self.0).collect())
    }
}

pub(crate) struct Filter<T, F>(F, PhantomData<fn(T)>);
impl<T: Data, F: Fn(&T) -> bool + Send + Sync + 'static> Transform for Filter<T, F> {
    type In = T;
    type Out = T;
    type Func = F;
    const RECORDWISE: bool = true;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(Filter(func, PhantomData))
    }
    fn push(&mut self, mut batch: Vec<T>, out: &mut BatchOut<T>) -> Result<(), Stop> {
        batch.retain(|r| (self.0)(r));
        out.push_batch(batch)
    }
    // Only the records kept are copied: on a cached partition a selective filter copies little.
    fn push_shared(&mut self, batch: &[T], out: &mut BatchOut<T>) -> Result<(), Stop> {
        out.push_batch(batch.iter().filter(|r| (self.0)(r)).cloned().collect())
    }
}

pub(crate) struct FlatMap<T, U, I, F>(F, PhantomData<fn(T) -> (U, I)>);
impl<T: Data, U: Data, I: IntoIterator<Item = U> + 'static, F: Fn(T) -> I + Send + Sync + 'static>
    Transform for FlatMap<T, U, I, F>
{
    type In = T;
    type Out = U;
    type Func = F;
    const RECORDWISE: bool = true;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(FlatMap(func, PhantomData))
    }
    fn push(&mut self, batch: Vec<T>, out: &mut BatchOut<U>) -> Result<(), Stop> {
        for record in batch {
            for produced in (self.0)(record) {
                out.push(produced)?;
            }
        }
        Ok(())
    }
}

/// A closure over a whole partition: `Fn(records)` (marker `()`) or `Fn(index, records)`
/// (marker `u32`), for `map_partitions` and `map_partitions_with_index`.
pub(crate) trait PartitionFn<T, I, Marker>: Send + Sync + 'static {
    fn call(&self, partition: u32, records: std::vec::IntoIter<T>) -> I;
}
impl<T, I, F: Fn(std::vec::IntoIter<T>) -> I + Send + Sync + 'static> PartitionFn<T, I, ()> for F {
    fn call(&self, _: u32, records: std::vec::IntoIter<T>) -> I {
        self(records)
    }
}
impl<T, I, F: Fn(u32, std::vec::IntoIter<T>) -> I + Send + Sync + 'static> PartitionFn<T, I, u32>
    for F
{
    fn call(&self, partition: u32, records: std::vec::IntoIter<T>) -> I {
        self(partition, records)
    }
}

/// `map_partitions` and `map_partitions_with_index`: the closure sees the whole partition as
/// one iterator.
pub(crate) struct MapPartitions<T, U, I, F, M> {
    func: F,
    partition: u32,
    input: Vec<T>,
    _types: PhantomData<fn() -> (U, I, M)>,
}
impl<T, U, I, F, M> Transform for MapPartitions<T, U, I, F, M>
where
    T: Data,
    U: Data,
    I: IntoIterator<Item = U> + 'static,
    F: PartitionFn<T, I, M>,
    M: 'static,
{
    type In = T;
    type Out = U;
    type Func = F;
    fn open(func: F, _: &[u8], partition: u32) -> Result<Self, OpError> {
        Ok(MapPartitions {
            func,
            partition,
            input: Vec::new(),
            _types: PhantomData,
        })
    }
    fn push(&mut self, mut batch: Vec<T>, _: &mut BatchOut<U>) -> Result<(), Stop> {
        self.input.append(&mut batch);
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<U>) -> Result<(), Stop> {
        for produced in self
            .func
            .call(self.partition, std::mem::take(&mut self.input).into_iter())
        {
            out.push(produced)?;
        }
        Ok(())
    }
}

/// `glom`: a partition's records as one vector.
pub(crate) struct Glom<T>(Vec<T>);
impl<T: Data> Transform for Glom<T> {
    type In = T;
    type Out = Vec<T>;
    type Func = ();
    fn open(_: (), _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(Glom(Vec::new()))
    }
    fn push(&mut self, mut batch: Vec<T>, _: &mut BatchOut<Vec<T>>) -> Result<(), Stop> {
        self.0.append(&mut batch);
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<Vec<T>>) -> Result<(), Stop> {
        out.push(std::mem::take(&mut self.0))
    }
}

/// `key_by`: pairs each record with the key `f` computes from it.
pub(crate) struct KeyBy<T, K, F>(F, PhantomData<fn(T) -> K>);
impl<T: Data, K: Data, F: Fn(&T) -> K + Send + Sync + 'static> Transform for KeyBy<T, K, F> {
    type In = T;
    type Out = (K, T);
    type Func = F;
    const RECORDWISE: bool = true;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(KeyBy(func, PhantomData))
    }
    fn push(&mut self, batch: Vec<T>, out: &mut BatchOut<(K, T)>) -> Result<(), Stop> {
        out.push_batch(batch.into_iter().map(|t| ((self.0)(&t), t)).collect())
    }
    fn push_shared(&mut self, batch: &[T], out: &mut BatchOut<(K, T)>) -> Result<(), Stop> {
        out.push_batch(batch.iter().map(|t| ((self.0)(t), t.clone())).collect())
    }
}

/// `map_values`: maps the value of each pair, keeping its key.
pub(crate) struct MapValues<K, V, W, F>(F, PhantomData<fn(K, V) -> W>);
impl<K: Data, V: Data, W: Data, F: Fn(V) -> W + Send + Sync + 'static> Transform
    for MapValues<K, V, W, F>
{
    type In = (K, V);
    type Out = (K, W);
    type Func = F;
    const RECORDWISE: bool = true;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(MapValues(func, PhantomData))
    }
    fn push(&mut self, batch: Vec<(K, V)>, out: &mut BatchOut<(K, W)>) -> Result<(), Stop> {
        out.push_batch(batch.into_iter().map(|(k, v)| (k, (self.0)(v))).collect())
    }
    fn push_shared(&mut self, batch: &[(K, V)], out: &mut BatchOut<(K, W)>) -> Result<(), Stop> {
        out.push_batch(
            batch
                .iter()
                .map(|(k, v)| (k.clone(), (self.0)(v.clone())))
                .collect(),
        )
    }
}

/// `flat_map_values`: one pair per value `f` returns, each with the original key.
pub(crate) struct FlatMapValues<K, V, W, I, F>(F, PhantomData<fn(K, V) -> (W, I)>);
impl<K, V, W, I, F> Transform for FlatMapValues<K, V, W, I, F>
where
    K: Data,
    V: Data,
    W: Data,
    I: IntoIterator<Item = W> + 'static,
    F: Fn(V) -> I + Send + Sync + 'static,
{
    type In = (K, V);
    type Out = (K, W);
    type Func = F;
    const RECORDWISE: bool = true;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(FlatMapValues(func, PhantomData))
    }
    fn push(&mut self, batch: Vec<(K, V)>, out: &mut BatchOut<(K, W)>) -> Result<(), Stop> {
        for (k, v) in batch {
            for w in (self.0)(v) {
                out.push((k.clone(), w))?;
            }
        }
        Ok(())
    }
}

/// Parameters of `sample`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SampleParams {
    pub with_replacement: bool,
    pub fraction: f64,
    pub seed: u64,
}

/// `sample`: Bernoulli sampling without replacement, Poisson sampling with replacement, from a
/// generator seeded by the seed and the partition index, so a recomputed partition samples
/// the same records.
pub(crate) struct Sample<T> {
    params: SampleParams,
    rng: SplitMix64,
    _records: PhantomData<fn(T)>,
}

impl<T> Sample<T> {
    /// How many times the next record is drawn.
    fn copies(&mut self) -> u32 {
        if self.params.with_replacement {
            self.rng.poisson(self.params.fraction)
        } else {
            (self.rng.unit() < self.params.fraction) as u32
        }
    }
}
impl<T: Data> Transform for Sample<T> {
    type In = T;
    type Out = T;
    type Func = ();
    fn open(_: (), params: &[u8], partition: u32) -> Result<Self, OpError> {
        let params: SampleParams = decode_params(params)?;
        if params.fraction.is_nan()
            || params.fraction < 0.0
            || (!params.with_replacement && params.fraction > 1.0)
        {
            return Err(OpError::SampleFraction {
                fraction: params.fraction,
            });
        }
        let rng = SplitMix64(params.seed ^ (partition as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Ok(Sample {
            params,
            rng,
            _records: PhantomData,
        })
    }
    fn push(&mut self, batch: Vec<T>, out: &mut BatchOut<T>) -> Result<(), Stop> {
        for record in batch {
            let copies = self.copies();
            for _ in 1..copies {
                out.push(record.clone())?;
            }
            if copies > 0 {
                out.push(record)?;
            }
        }
        Ok(())
    }
    // Only the records drawn are copied.
    fn push_shared(&mut self, batch: &[T], out: &mut BatchOut<T>) -> Result<(), Stop> {
        for record in batch {
            for _ in 0..self.copies() {
                out.push(record.clone())?;
            }
        }
        Ok(())
    }
}

/// A small, fast, seedable generator (SplitMix64).
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Poisson-distributed with mean `lambda` (Knuth's method; sampling fractions are small).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = self.unit();
        while p > limit {
            k += 1;
            p *= self.unit();
        }
        k
    }
}

/// `cartesian`: a partition of each side arrives tagged; every pair of them goes out.
pub(crate) struct Product<T, U> {
    left: Vec<T>,
    right: Vec<U>,
}
impl<T: Data, U: Data> Transform for Product<T, U> {
    type In = crate::side::Side<T, U>;
    type Out = (T, U);
    type Func = ();
    fn open(_: (), _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(Product {
            left: Vec::new(),
            right: Vec::new(),
        })
    }
    fn push(
        &mut self,
        batch: Vec<crate::side::Side<T, U>>,
        _: &mut BatchOut<(T, U)>,
    ) -> Result<(), Stop> {
        for side in batch {
            match side {
                crate::side::Side::Left(t) => self.left.push(t),
                crate::side::Side::Right(u) => self.right.push(u),
            }
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(T, U)>) -> Result<(), Stop> {
        for t in &self.left {
            for u in &self.right {
                out.push((t.clone(), u.clone()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::output;

    /// What `op` hands on for `records` pushed as its own, and pushed as shared.
    fn both<X: Transform>(mut op: X, records: &[X::In]) -> (Vec<X::Out>, Vec<X::Out>) {
        let owned = output(|out| op.push(records.to_vec(), out));
        let shared = output(|out| op.push_shared(records, out));
        (owned, shared)
    }

    #[test]
    fn reading_a_shared_batch_hands_on_what_taking_it_does() {
        let words: Vec<String> = (0..100).map(|i| format!("w{}", i % 7)).collect();
        let (owned, shared) = both(Map(|w: String| w.len(), PhantomData), &words);
        assert_eq!(owned, shared);
        let (owned, shared) = both(Filter(|w: &String| w.ends_with('3'), PhantomData), &words);
        assert_eq!((owned.len(), &owned), (14, &shared));
        let (owned, shared) = both(KeyBy(|w: &String| w.len(), PhantomData), &words);
        assert_eq!(owned, shared);
        let pairs: Vec<(u32, String)> = words
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, w)| (i as u32, w))
            .collect();
        let (owned, shared) = both(MapValues(|w: String| w + "!", PhantomData), &pairs);
        assert_eq!(owned, shared);
        // A sample draws the same records from the same seed either way.
        let params = |replace| {
            bincode::serialize(&SampleParams {
                with_replacement: replace,
                fraction: 0.4,
                seed: 9,
            })
            .unwrap()
        };
        for replace in [false, true] {
            let open = || Sample::<String>::open((), &params(replace), 2).unwrap();
            let owned = output(|out| open().push(words.clone(), out));
            let shared = output(|out| open().push_shared(&words, out));
            assert_eq!(owned, shared);
        }
    }
}
