//! Actions: what a task does with its partition's records, producing bytes for the cell.

use super::{Action, decode_params, encode, encode_into};
use crate::batch::Stop;
use crate::data::Data;
use crate::op_error::OpError;
use crate::stats::{Numeric, Stats};
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::marker::PhantomData;

/// `collect`: every record of the partition.
///
/// The records are encoded as they come, not kept: the bincode of a `Vec` is its length, then
/// each record's bincode, so the records are written one after the other and the length is put
/// in front at the end. A cached partition is read in place rather than copied record by record
/// first, and the task holds the encoded partition only, not the records beside it.
pub(crate) struct Collect<T> {
    records: u64,
    /// The length's place, then the records encoded so far.
    bytes: Vec<u8>,
    _records: PhantomData<fn(T)>,
}
impl<T> Collect<T> {
    fn new() -> Self {
        Collect {
            records: 0,
            bytes: vec![0; std::mem::size_of::<u64>()],
            _records: PhantomData,
        }
    }
}
impl<T: Data> Action for Collect<T> {
    type In = T;
    type Func = ();
    const MERGES: bool = true;
    fn open(_: (), _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(Collect::new())
    }
    fn merge(&mut self, later: &mut Self) -> Result<(), Stop> {
        self.bytes
            .extend_from_slice(&later.bytes[std::mem::size_of::<u64>()..]);
        self.records += later.records;
        Ok(())
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        self.push_shared(&batch)
    }
    fn push_shared(&mut self, batch: &[T]) -> Result<(), Stop> {
        for record in batch {
            encode_into("collect", &mut self.bytes, record)?;
        }
        self.records += batch.len() as u64;
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        let mut bytes = std::mem::take(&mut self.bytes);
        // bincode's length of a sequence: a little-endian `u64`.
        bytes[..std::mem::size_of::<u64>()].copy_from_slice(&self.records.to_le_bytes());
        Ok(bytes)
    }
}

/// The first `n` records of a partition.
pub(crate) struct Take<T> {
    limit: usize,
    taken: Vec<T>,
}
impl<T: Data> Action for Take<T> {
    type In = T;
    type Func = ();
    fn open(_: (), params: &[u8], _: u32) -> Result<Self, OpError> {
        let limit: u64 = decode_params(params)?;
        Ok(Take {
            limit: limit as usize,
            taken: Vec::new(),
        })
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        let room = self.limit - self.taken.len();
        self.taken.extend(batch.into_iter().take(room));
        Ok(())
    }
    fn push_shared(&mut self, batch: &[T]) -> Result<(), Stop> {
        let room = self.limit - self.taken.len();
        self.taken.extend(batch.iter().take(room).cloned());
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode("take", &self.taken)
    }
}

pub(crate) struct Reduce<T, F>(F, Option<T>);
impl<T, F: Fn(T, T) -> T> Reduce<T, F> {
    fn fold(&mut self, mut records: impl Iterator<Item = T>) {
        let Some(first) = self.1.take().or_else(|| records.next()) else {
            return;
        };
        self.1 = Some(records.fold(first, &self.0));
    }
}
impl<T: Data, F: Fn(T, T) -> T + Send + Sync + 'static> Action for Reduce<T, F> {
    type In = T;
    type Func = F;
    const REPLAYABLE: bool = true;
    const MERGES: bool = true;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(Reduce(func, None))
    }
    fn merge(&mut self, other: &mut Self) -> Result<(), Stop> {
        self.fold(other.1.take().into_iter());
        Ok(())
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        self.fold(batch.into_iter());
        Ok(())
    }
    fn push_shared(&mut self, batch: &[T]) -> Result<(), Stop> {
        self.fold(batch.iter().cloned());
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode("reduce", &self.1)
    }
}

/// `map(f).reduce(g)` in one pass: each record is mapped and folded in at once, so that no
/// batch of mapped records is written and read back between the two (the session turns that
/// chain into [`crate::Rdd::map_reduce`]). `g` captures nothing: it is conjured here, and only
/// `f` travels as the action's closure.
pub(crate) struct MapReduce<T, U, F, G> {
    map: F,
    reduce: Reduce<U, G>,
    _records: std::marker::PhantomData<fn(T)>,
}
impl<
    T: Data,
    U: Data,
    F: Fn(T) -> U + Send + Sync + 'static,
    G: Fn(U, U) -> U + Send + Sync + 'static,
> Action for MapReduce<T, U, F, G>
{
    type In = T;
    type Func = F;
    const REPLAYABLE: bool = true;
    const MERGES: bool = true;
    fn open(map: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        // SAFETY: `G` is the type of the closure the cell passed to `map_reduce`.
        let reduce =
            unsafe { crate::ship::conjure::<G>() }.ok_or(OpError::NoCapturedEnvironment)?;
        Ok(MapReduce {
            map,
            reduce: Reduce(reduce, None),
            _records: std::marker::PhantomData,
        })
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        self.reduce.fold(batch.into_iter().map(&self.map));
        Ok(())
    }
    fn push_shared(&mut self, batch: &[T]) -> Result<(), Stop> {
        self.reduce.fold(batch.iter().cloned().map(&self.map));
        Ok(())
    }
    fn merge(&mut self, other: &mut Self) -> Result<(), Stop> {
        self.reduce.merge(&mut other.reduce)
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        self.reduce.finish()
    }
}

/// `foreach`: runs `f` on every record for its side effects.
pub(crate) struct Foreach<T, F>(F, std::marker::PhantomData<fn(T)>);
impl<T: Data, F: Fn(T) + Send + Sync + 'static> Action for Foreach<T, F> {
    type In = T;
    type Func = F;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(Foreach(func, std::marker::PhantomData))
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        batch.into_iter().for_each(&self.0);
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode("foreach", &())
    }
}

/// `foreach_partition`: runs `f` once per partition, on an iterator over its records.
pub(crate) struct ForeachPartition<T, F>(F, Vec<T>);
impl<T: Data, F: Fn(std::vec::IntoIter<T>) + Send + Sync + 'static> Action
    for ForeachPartition<T, F>
{
    type In = T;
    type Func = F;
    fn open(func: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(ForeachPartition(func, Vec::new()))
    }
    fn push(&mut self, mut batch: Vec<T>) -> Result<(), Stop> {
        self.1.append(&mut batch);
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        (self.0)(std::mem::take(&mut self.1).into_iter());
        encode("foreach_partition", &())
    }
}

/// `aggregate` (and `fold`): folds a partition into a `U` with `seq_op`, from the shipped zero
/// value; the cell combines the partitions' results.
pub(crate) struct Aggregate<T, U, F>(F, Option<U>, std::marker::PhantomData<fn(T)>);
impl<T, U, F: Fn(U, T) -> U> Aggregate<T, U, F> {
    fn fold(&mut self, records: impl Iterator<Item = T>) {
        let acc = self
            .1
            .take()
            .expect("aggregate state is present between batches");
        self.1 = Some(records.fold(acc, &self.0));
    }
}
impl<T: Data, U: Data, F: Fn(U, T) -> U + Send + Sync + 'static> Action for Aggregate<T, U, F> {
    type In = T;
    type Func = F;
    const REPLAYABLE: bool = true;
    fn open(func: F, params: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(Aggregate(
            func,
            Some(decode_params(params)?),
            std::marker::PhantomData,
        ))
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        self.fold(batch.into_iter());
        Ok(())
    }
    fn push_shared(&mut self, batch: &[T]) -> Result<(), Stop> {
        self.fold(batch.iter().cloned());
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode(
            "aggregate",
            &self
                .1
                .take()
                .expect("aggregate state is present at the end"),
        )
    }
}

/// Parameters of `take_ordered` and `top`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct OrderedParams {
    pub n: u64,
    pub largest: bool,
}

/// The `n` smallest (or largest) records of a partition, sorted.
pub(crate) struct TakeOrdered<T: Ord> {
    n: usize,
    largest: bool,
    /// Max-heap of the smallest seen (or, with `largest`, of reversed order).
    heap: BinaryHeap<Ordered<T>>,
}

/// A record ordered naturally, or reversed.
#[derive(PartialEq, Eq)]
struct Ordered<T: Ord>(T, bool);
impl<T: Ord> PartialOrd for Ordered<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: Ord> Ord for Ordered<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.1 {
            other.0.cmp(&self.0)
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl<T: Ord> TakeOrdered<T> {
    /// Keeps `record` if it is among the `n` first seen so far.
    fn offer(&mut self, record: Ordered<T>) {
        if self.heap.len() < self.n {
            self.heap.push(record);
        } else if self.heap.peek().is_some_and(|worst| record < *worst) {
            self.heap.pop();
            self.heap.push(record);
        }
    }
}

impl<T: Data + Ord> Action for TakeOrdered<T> {
    type In = T;
    type Func = ();
    fn open(_: (), params: &[u8], _: u32) -> Result<Self, OpError> {
        let params: OrderedParams = decode_params(params)?;
        Ok(TakeOrdered {
            n: params.n as usize,
            largest: params.largest,
            heap: BinaryHeap::new(),
        })
    }
    const MERGES: bool = true;
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        for record in batch {
            self.offer(Ordered(record, self.largest));
        }
        Ok(())
    }
    fn merge(&mut self, other: &mut Self) -> Result<(), Stop> {
        for record in std::mem::take(&mut other.heap) {
            self.offer(record);
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        let sorted: Vec<T> = std::mem::take(&mut self.heap)
            .into_sorted_vec()
            .into_iter()
            .map(|o| o.0)
            .collect();
        encode("take_ordered", &sorted)
    }
}

/// `count_by_value`: how many times each distinct record occurs in a partition.
pub(crate) struct CountByValue<T>(HashMap<T, u64>);
impl<T: Data + Hash + Eq> Action for CountByValue<T> {
    type In = T;
    type Func = ();
    const MERGES: bool = true;
    fn open(_: (), _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(CountByValue(HashMap::new()))
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        for record in batch {
            *self.0.entry(record).or_insert(0) += 1;
        }
        Ok(())
    }
    // A value seen before is counted without a copy.
    fn push_shared(&mut self, batch: &[T]) -> Result<(), Stop> {
        for record in batch {
            match self.0.get_mut(record) {
                Some(count) => *count += 1,
                None => {
                    self.0.insert(record.clone(), 1);
                }
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &mut Self) -> Result<(), Stop> {
        for (record, count) in other.0.drain() {
            *self.0.entry(record).or_insert(0) += count;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode(
            "count_by_value",
            &std::mem::take(&mut self.0)
                .into_iter()
                .collect::<Vec<(T, u64)>>(),
        )
    }
}

/// `stats`: count, mean, variance, min and max of a partition of numbers.
pub(crate) struct PartitionStats<T>(Stats, std::marker::PhantomData<fn(T)>);
impl<T: Numeric> Action for PartitionStats<T> {
    type In = T;
    type Func = ();
    const MERGES: bool = true;
    fn open(_: (), _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(PartitionStats(Stats::default(), std::marker::PhantomData))
    }
    fn merge(&mut self, other: &mut Self) -> Result<(), Stop> {
        self.0 = std::mem::take(&mut self.0).merge(std::mem::take(&mut other.0));
        Ok(())
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        self.push_shared(&batch)
    }
    fn push_shared(&mut self, batch: &[T]) -> Result<(), Stop> {
        for x in batch {
            self.0.add(x.to_f64());
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode("stats", &self.0)
    }
}

/// `save_as_text_file`: writes a partition's records, one `Display` a line, to
/// `DIR/part-NNNNN` on the executor's file system.
pub(crate) struct SaveAsText<T> {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    _records: std::marker::PhantomData<fn(T)>,
}
impl<T> SaveAsText<T> {
    fn write_failed(&self, source: std::io::Error) -> OpError {
        OpError::OutputWrite {
            path: self.path.clone(),
            source,
        }
    }
}
impl<T: Data + std::fmt::Display> Action for SaveAsText<T> {
    type In = T;
    type Func = ();
    fn open(_: (), params: &[u8], partition: u32) -> Result<Self, OpError> {
        let dir: String = decode_params(params)?;
        let path = std::path::Path::new(&dir).join(format!("part-{partition:05}"));
        let file = std::fs::File::create(&path).map_err(|source| OpError::OutputCreate {
            path: path.clone(),
            source,
        })?;
        Ok(SaveAsText {
            path,
            out: std::io::BufWriter::new(file),
            _records: std::marker::PhantomData,
        })
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        use std::io::Write;
        for record in batch {
            writeln!(self.out, "{record}").map_err(|source| self.write_failed(source))?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        use std::io::Write;
        self.out
            .flush()
            .map_err(|source| self.write_failed(source))?;
        encode("save_as_text_file", &())
    }
}

/// A partition's size and a uniform sample of at most `size` of its keys (reservoir sampling,
/// seeded by the partition), from which `sort_by_key` picks its range bounds.
pub(crate) struct SampleKeys<K, V> {
    size: usize,
    seen: u64,
    reservoir: Vec<K>,
    rng: super::SplitMix64,
    _values: std::marker::PhantomData<fn(V)>,
}
impl<K: Data, V: Data> Action for SampleKeys<K, V> {
    type In = (K, V);
    type Func = ();
    fn open(_: (), params: &[u8], partition: u32) -> Result<Self, OpError> {
        let size: u64 = decode_params(params)?;
        Ok(SampleKeys {
            size: size as usize,
            seen: 0,
            reservoir: Vec::new(),
            rng: super::SplitMix64(0x5EED ^ partition as u64),
            _values: std::marker::PhantomData,
        })
    }
    fn push(&mut self, batch: Vec<(K, V)>) -> Result<(), Stop> {
        for (key, _) in batch {
            self.seen += 1;
            if self.reservoir.len() < self.size {
                self.reservoir.push(key);
            } else {
                let slot = self.rng.next_u64() % self.seen;
                if (slot as usize) < self.size {
                    self.reservoir[slot as usize] = key;
                }
            }
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode("a sample of keys", &(self.seen, &self.reservoir))
    }
}

/// `checkpoint`: writes a partition as one encoded batch to `DIR/part-NNNNN`, through a
/// temporary file renamed into place, so that a retried task never leaves half a file.
pub(crate) struct SaveCheckpoint<T> {
    dir: std::path::PathBuf,
    partition: u32,
    records: Vec<T>,
}
impl<T: Data> Action for SaveCheckpoint<T> {
    type In = T;
    type Func = ();
    fn open(_: (), params: &[u8], partition: u32) -> Result<Self, OpError> {
        let dir: String = decode_params(params)?;
        Ok(SaveCheckpoint {
            dir: dir.into(),
            partition,
            records: Vec::new(),
        })
    }
    fn push(&mut self, mut batch: Vec<T>) -> Result<(), Stop> {
        self.records.append(&mut batch);
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        let bytes = encode("a checkpointed partition", &self.records)?;
        let path = self.dir.join(format!("part-{:05}", self.partition));
        let temporary = self.dir.join(format!(
            ".part-{:05}.{}.tmp",
            self.partition,
            std::process::id()
        ));
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|source| OpError::OutputWrite { path, source })?;
        encode("checkpoint", &())
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    /// `action`'s result for `records` pushed in two batches as its own, and as shared.
    fn both<X: Action>(open: impl Fn() -> X, records: &[X::In]) -> (Vec<u8>, Vec<u8>) {
        let (first, second) = records.split_at(records.len() / 2);
        let mut owned = open();
        owned.push(first.to_vec()).unwrap();
        owned.push(second.to_vec()).unwrap();
        let mut shared = open();
        shared.push_shared(first).unwrap();
        shared.push_shared(second).unwrap();
        (owned.finish().unwrap(), shared.finish().unwrap())
    }

    #[test]
    fn reading_shared_batches_gives_the_result_taking_them_does() {
        let numbers: Vec<u64> = (1..=1000).collect();
        let (owned, shared) = both(|| Reduce(|a: u64, b: u64| a + b, None), &numbers);
        assert_eq!(owned, shared);
        let aggregate = || {
            let params = bincode::serialize(&7u64).unwrap();
            Aggregate::open(|acc: u64, x: u64| acc.max(x % 97), &params, 0).unwrap()
        };
        let (owned, shared) = both(aggregate, &numbers);
        assert_eq!(owned, shared);
        let take = || Take::open((), &bincode::serialize(&5u64).unwrap(), 0).unwrap();
        let (owned, shared) = both(take, &numbers);
        assert_eq!(owned, shared);
        let (owned, shared) = both(
            || PartitionStats::<u64>::open((), &[], 0).unwrap(),
            &numbers,
        );
        assert_eq!(owned, shared);
        // Counts by value: the map's order differs from run to run, so compare decoded.
        let words: Vec<String> = (0..300).map(|i| format!("w{}", i % 11)).collect();
        let counted = |bytes: &[u8]| {
            let mut counts: Vec<(String, u64)> = crate::encoding::decode(bytes).unwrap();
            counts.sort();
            counts
        };
        let (owned, shared) = both(|| CountByValue(HashMap::new()), &words);
        assert_eq!(counted(&owned), counted(&shared));
        assert_eq!(counted(&owned).len(), 11);
    }

    /// The `MapReduce` action of closures `f` and `g`, opened as an executor opens it: `g`
    /// is rebuilt from its type alone.
    fn map_reduce<T: Data, U: Data, F, G>(f: F, _g: &G) -> Result<MapReduce<T, U, F, G>, OpError>
    where
        F: Fn(T) -> U + Send + Sync + 'static,
        G: Fn(U, U) -> U + Send + Sync + 'static,
    {
        MapReduce::open(f, &[], 0)
    }

    #[test]
    fn a_fused_map_and_reduce_gives_what_the_two_give_bit_for_bit() {
        // Floating-point sums depend on their order: equal bytes mean the same fold.
        let points: Vec<(f64, [f64; 3])> = (0..5000)
            .map(|i| {
                (
                    (i % 2) as f64 * 2.0 - 1.0,
                    [i as f64 / 7.0, 1.0 / (i as f64 + 1.0), 0.1],
                )
            })
            .collect();
        let w = [0.3, -0.2, 0.7];
        let f = move |(y, x): (f64, [f64; 3])| {
            let dot: f64 = x.iter().zip(w.iter()).map(|(a, b)| a * b).sum();
            ([x[0] * y * dot, x[1] * dot, x[2]], (-y * dot).exp(), 1u64)
        };
        let g = |a: ([f64; 3], f64, u64), b: ([f64; 3], f64, u64)| {
            (
                [a.0[0] + b.0[0], a.0[1] + b.0[1], a.0[2] + b.0[2]],
                a.1 + b.1,
                a.2 + b.2,
            )
        };
        let (fused, fused_shared) = both(|| map_reduce(f, &g).unwrap(), &points);
        assert_eq!(fused, fused_shared);
        let mapped: Vec<_> = points.iter().copied().map(f).collect();
        let (two_steps, _) = both(|| Reduce(g, None), &mapped);
        assert_eq!(fused, two_steps);
        let sum: Option<([f64; 3], f64, u64)> = crate::encoding::decode(&fused).unwrap();
        assert_eq!(sum.unwrap().2, 5000);

        // An empty partition folds to nothing, as `reduce`'s does.
        let mut empty = map_reduce(f, &g).unwrap();
        empty.push(Vec::new()).unwrap();
        let nothing: Option<([f64; 3], f64, u64)> =
            crate::encoding::decode(&empty.finish().unwrap()).unwrap();
        assert!(nothing.is_none());
    }

    #[test]
    fn a_reduce_closure_that_captures_is_not_rebuilt_from_its_type() {
        let offset = 3u64;
        let g = move |a: u64, b: u64| a + b + offset;
        let opened = map_reduce(|x: u64| x * 2, &g);
        assert!(matches!(opened, Err(OpError::NoCapturedEnvironment)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::decode;
    use serde::de::DeserializeOwned;

    /// The result of `open()` pushed every record in one batch, and the result of two states
    /// pushed its two halves in several batches, the second (the later records) merged into
    /// the first.
    fn whole_and_merged<A: Action, R: DeserializeOwned>(
        open: impl Fn() -> A,
        records: Vec<A::In>,
    ) -> (R, R) {
        let mut whole = open();
        whole.push(records.clone()).unwrap();
        let whole = decode(&whole.finish().unwrap()).unwrap();
        let (first_half, second_half) = records.split_at(records.len() / 2);
        let (mut first, mut second) = (open(), open());
        for batch in first_half.chunks(7) {
            first.push_shared(batch).unwrap();
        }
        for batch in second_half.chunks(5) {
            second.push(batch.to_vec()).unwrap();
        }
        first.merge(&mut second).unwrap();
        (whole, decode(&first.finish().unwrap()).unwrap())
    }

    fn numbers() -> Vec<u64> {
        (0..1000u64)
            .map(|x| x.wrapping_mul(2654435761) % 997)
            .collect()
    }

    #[test]
    fn merged_reductions_equal_one_pass() {
        let (whole, merged): (Option<u64>, _) =
            whole_and_merged(|| Reduce(|a: u64, b: u64| a + b, None), numbers());
        assert_eq!(whole, Some(numbers().iter().sum()));
        assert_eq!(merged, whole);
        // A state that saw nothing merges into one that did, and the other way round.
        let add = |a: u64, b: u64| a + b;
        let (mut empty, mut full) = (Reduce(add, None), Reduce(add, Some(5)));
        empty.merge(&mut full).unwrap();
        assert_eq!(empty.1, Some(5));
        empty.merge(&mut Reduce(add, None)).unwrap();
        assert_eq!(empty.1, Some(5));
    }

    #[test]
    fn merged_collections_keep_the_records_order() {
        let (whole, merged): (Vec<u64>, Vec<u64>) = whole_and_merged(Collect::new, numbers());
        assert_eq!(whole, numbers());
        assert_eq!(merged, whole);
        // Encoded as it comes, the result is the bincode of the records' `Vec`, text included.
        let words: Vec<(String, u64)> = (0..100).map(|i| (format!("w{i}"), i)).collect();
        let mut collect = Collect::new();
        collect.push_shared(&words[..40]).unwrap();
        collect.push(words[40..].to_vec()).unwrap();
        assert_eq!(
            collect.finish().unwrap(),
            crate::encoding::encode(&words).unwrap()
        );
    }

    #[test]
    fn merged_counts_by_value_equal_one_pass() {
        let (whole, merged): (Vec<(u64, u64)>, Vec<(u64, u64)>) = whole_and_merged(
            || CountByValue(HashMap::new()),
            numbers().iter().map(|x| x % 10).collect(),
        );
        let (mut whole, mut merged) = (whole, merged);
        whole.sort();
        merged.sort();
        assert_eq!(whole.iter().map(|(_, n)| n).sum::<u64>(), 1000);
        assert_eq!(merged, whole);
    }

    #[test]
    fn merged_smallest_and_largest_equal_one_pass() {
        for largest in [false, true] {
            let open = || TakeOrdered {
                n: 5,
                largest,
                heap: BinaryHeap::new(),
            };
            let (whole, merged): (Vec<u64>, Vec<u64>) = whole_and_merged(open, numbers());
            let mut sorted = numbers();
            sorted.sort();
            if largest {
                sorted.reverse();
            }
            assert_eq!(whole, sorted[..5]);
            assert_eq!(merged, whole);
        }
    }

    #[test]
    fn merged_statistics_equal_one_pass() {
        let values: Vec<f64> = numbers().iter().map(|x| *x as f64 / 7.0).collect();
        let (whole, merged): (Stats, Stats) = whole_and_merged(
            || PartitionStats(Stats::default(), std::marker::PhantomData),
            values,
        );
        assert_eq!(merged.count(), whole.count());
        assert_eq!((merged.min(), merged.max()), (whole.min(), whole.max()));
        assert!(
            (merged.mean() - whole.mean()).abs() < 1e-9,
            "{merged:?} {whole:?}"
        );
        assert!(
            (merged.variance() - whole.variance()).abs() < 1e-9,
            "{merged:?} {whole:?}"
        );
    }
}
